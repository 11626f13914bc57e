//! WebSocket clients for the load: source addresses spread over
//! 127.0.0.0/8 (a few ports per address keep `bind()` fast), hello, and
//! a cheap look at message types without parsing whole JSON documents.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The source address for the `i`th connection: 1 000 per address.
/// `bind()` to port 0 draws from half of the ephemeral range (the other
/// half is kept for `connect()`) and its search slows sharply as that half
/// fills: at 20 000 per address, connecting 19 000 agents ran at 330/s;
/// at 4 000 per address 1 000/s; at 1 000 per address 2 500/s.
fn source(i: usize) -> Ipv4Addr {
    let n = 1 + (i / 1_000) as u32;
    Ipv4Addr::from(0x7f00_0000 | n)
}

pub async fn connect(url: &str, i: usize) -> Result<Ws, String> {
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let addr: SocketAddr = host.parse().map_err(|e| format!("{host}: {e}"))?;
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source(i).into(), 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    // A snapshot of 50 000 agents is one frame of ≈ 30 MB: above
    // tungstenite's default 16 MiB frame limit.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(256 << 20))
        .max_message_size(Some(256 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        url,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Sends hello and reads until `welcome` (and an agent's first `state`).
pub async fn hello(
    ws: &mut Ws,
    token: &str,
    role: &str,
    device: Option<&str>,
) -> Result<(), String> {
    let mut body = json!({"type": "hello", "token": token, "role": role});
    if let Some(d) = device {
        body["device"] = json!({"id": d, "kind": "load"});
    }
    ws.send(Message::text(body.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let want = if device.is_some() { "state" } else { "welcome" };
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["type"] == want {
                    return Ok(());
                }
            }
            Some(Ok(Message::Close(f))) => return Err(format!("closed: {f:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".into()),
        }
    }
}

/// `{"type":"agent",…}` frames start this way (the hub writes `type` first).
pub fn is_delta(text: &str) -> bool {
    text.starts_with("{\"type\":\"agent\"")
}

/// The send time (µs) carried in a pause reason `t<micros>`, if any.
pub fn stamp(text: &str) -> Option<u64> {
    let at = text.find("\"pause_reason\":\"t")? + "\"pause_reason\":\"t".len();
    let rest = &text[at..];
    rest[..rest.find('"')?].parse().ok()
}

/// Microseconds on the tool's one clock.
pub fn now_us() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
}

/// The agent records a message carries: all of a snapshot's, or a delta's one.
pub fn records(v: &Value) -> Vec<&Value> {
    match v["type"].as_str() {
        Some("snapshot") => v["agents"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some("agent") => vec![&v["agent"]],
        _ => vec![],
    }
}

/// The next text message, or `None` once `stop` fires or the connection
/// ends. No timer per message: receivers at 100 000 msg/s stay cheap.
pub async fn next_text(
    ws: &mut Ws,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes> {
    loop {
        tokio::select! {
            _ = stop.changed() => return None,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => return Some(t),
                Some(Ok(_)) => continue,
                _ => return None,
            },
        }
    }
}

/// Deltas until `stop`, each counted in `delivered` and, when it carries
/// a send time, timed: the watcher of `fanout`, `ceiling` and `relay`.
pub async fn time_deltas(
    mut ws: Ws,
    mut stop: tokio::sync::watch::Receiver<bool>,
    delivered: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> hdrhistogram::Histogram<u64> {
    let mut h = crate::report::histogram();
    while let Some(t) = next_text(&mut ws, &mut stop).await {
        if is_delta(&t) {
            delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(sent) = stamp(&t) {
                let _ = h.record(now_us().saturating_sub(sent));
            }
        }
    }
    h
}

/// What a watching supervisor saw until `stop`: change → delta latencies
/// (µs), the deltas, and whether a snapshot came (its subscription worked:
/// a refusal would be a reply).
pub async fn watch_deltas(
    mut ws: Ws,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (hdrhistogram::Histogram<u64>, u64, bool) {
    let (mut h, mut deltas, mut snapshot) = (crate::report::histogram(), 0u64, false);
    while let Some(t) = next_text(&mut ws, &mut stop).await {
        snapshot |= t.starts_with("{\"type\":\"snapshot\"");
        if is_delta(&t) {
            deltas += 1;
            if let Some(sent) = stamp(&t) {
                let _ = h.record(now_us().saturating_sub(sent));
            }
        }
    }
    (h, deltas, snapshot)
}
