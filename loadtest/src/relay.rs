//! `relay`: the bare broadcast fed the way the hub is. A server in a
//! process of its own (this tool, run as `relay-server`) takes the agents'
//! `set_status` frames over WebSocket, answers each with an acknowledgement
//! and broadcasts a delta of the same size as the hub's to every
//! supervisor; the agents and supervisors are `fanout`'s, driven the same
//! way. No hub logic at all, but every hop and every process boundary of
//! `fanout`: agent → server → supervisors, two processes on one machine.
//! By default it speaks through the hub's own WebSocket
//! (`presence_hub::ws::Socket`): the hub's transport without its logic.
//!
//! `ceiling` is the machine's limit for one process that both writes and
//! reads; this is the limit for the hub's own shape, so `fanout` against
//! `relay` at the same load is what the hub's logic costs, and `relay`
//! against `ceiling` what the second process and the agents' hop cost
//! (BENCHMARKS.md, "Freshness: the hub against a bare relay").

use crate::report::latency_ms;
use crate::Load;
use futures_util::{SinkExt, StreamExt};
use presence_hub::ws::{Message as WsMessage, Out, Socket};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A write the peer does not take within this ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server prints once it listens, before its address.
const LISTENING: &str = "relay listening on ";

/// Which WebSocket the relay server speaks through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// The hub's own (`presence_hub::ws::Socket`): the hub minus its logic.
    Hub,
    /// tokio-tungstenite's, written as `ceiling` writes.
    Tungstenite,
}

/// The server: one broadcast to every `/supervisor` connection of what the
/// `/agent` connections send. Runs until killed.
pub async fn serve(frame_bytes: usize, transport: Transport) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{LISTENING}{addr}");
    let (tx, _) = broadcast::channel::<Utf8Bytes>(1024);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        // As the hub does.
        let _ = stream.set_nodelay(true);
        // Subscribed before the handshake ends, so a supervisor misses
        // nothing sent once its connect returns.
        let rx = tx.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            match transport {
                Transport::Hub => {
                    let Some((agent, socket)) = hub_handshake(stream, frame_bytes).await else {
                        return;
                    };
                    if agent {
                        drop(rx);
                        hub_agent(socket, tx, frame_bytes).await;
                    } else {
                        hub_supervisor(socket, rx).await;
                    }
                }
                Transport::Tungstenite => {
                    let mut agent = false;
                    // The callback's type is tungstenite's: its error is an
                    // HTTP response, large or not.
                    #[allow(clippy::result_large_err)]
                    let route = |request: &Request, response: Response| {
                        agent = request.uri().path() == "/agent";
                        Ok(response)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, route).await else {
                        return;
                    };
                    if agent {
                        drop(rx);
                        tungstenite_agent(ws, tx, frame_bytes).await;
                    } else {
                        crate::ceiling::feed(ws, rx).await;
                    }
                }
            }
        });
    }
}

/// The delta a change becomes (the pause reason, which carries the send
/// time, copied over), and the acknowledgement it gets.
fn relayed(text: &str, frame_bytes: usize) -> (String, String) {
    let delta = match reason(text) {
        Some(reason) => padded(
            &format!("{{\"type\":\"agent\",\"agent\":{{\"status\":\"paused\",\"pause_reason\":\"{reason}\",\"p\":\""),
            "\"}}",
            frame_bytes,
        ),
        None => padded(
            "{\"type\":\"agent\",\"agent\":{\"status\":\"available\",\"pause_reason\":null,\"p\":\"",
            "\"}}",
            frame_bytes,
        ),
    };
    let ack = padded(
        "{\"type\":\"reply\",\"ok\":true,\"p\":\"",
        "\"}",
        frame_bytes,
    );
    (delta, ack)
}

/// An agent's frames through tungstenite: each answered and broadcast.
async fn tungstenite_agent(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tx: broadcast::Sender<Utf8Bytes>,
    frame_bytes: usize,
) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let (delta, ack) = relayed(&text, frame_bytes);
        let _ = tx.send(Utf8Bytes::from(delta));
        if ws.send(Message::text(ack)).await.is_err() {
            return;
        }
    }
}

/// The opening handshake by hand (RFC 6455 §4.2), then the hub's own
/// socket; whether the path was `/agent`.
async fn hub_handshake(mut stream: TcpStream, frame_bytes: usize) -> Option<(bool, Socket)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let request = std::str::from_utf8(&head[..end]).ok()?;
    let agent = request.starts_with("GET /agent ");
    let key = request.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim())
    })?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).await.ok()?;
    let already = bytes::Bytes::copy_from_slice(&head[end..]);
    Some((
        agent,
        Socket::new(stream, already, 4 * frame_bytes.max(1024)),
    ))
}

/// An agent's frames through the hub's socket: each answered and broadcast.
async fn hub_agent(mut socket: Socket, tx: broadcast::Sender<Utf8Bytes>, frame_bytes: usize) {
    while let Some(Ok(message)) = socket.recv().await {
        let WsMessage::Text(text) = message else {
            continue;
        };
        let (delta, ack) = relayed(&text, frame_bytes);
        let _ = tx.send(Utf8Bytes::from(delta));
        if !socket.send_within(Out::Text(&ack), WRITE_TIMEOUT).await {
            return;
        }
    }
}

/// Everything broadcast, through the hub's socket: all that is queued at
/// once, then one flush (the hub's writer batches the same way).
async fn hub_supervisor(mut socket: Socket, mut rx: broadcast::Receiver<Utf8Bytes>) {
    loop {
        let first = match rx.recv().await {
            Ok(frame) => frame,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        socket.queue(Out::Text(first.as_str()));
        while let Ok(frame) = rx.try_recv() {
            socket.queue(Out::Text(frame.as_str()));
        }
        if !socket.flush_within(WRITE_TIMEOUT).await {
            return;
        }
    }
}

/// `head`, then `x`s, then `tail`: `bytes` long in all (or just the two
/// when they are longer).
fn padded(head: &str, tail: &str, bytes: usize) -> String {
    let fill = bytes.saturating_sub(head.len() + tail.len());
    let mut frame = String::with_capacity(head.len() + fill + tail.len());
    frame.push_str(head);
    frame.extend(std::iter::repeat_n('x', fill));
    frame.push_str(tail);
    frame
}

/// The `reason` of a `set_status` frame, if it has one.
fn reason(text: &str) -> Option<&str> {
    let at = text.find("\"reason\":\"")? + "\"reason\":\"".len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

/// Starts the server (this tool, `relay-server`), drives `agents` at `rate`
/// changes/s while `supervisors` watch, and times change → delta.
pub async fn run(load: Load, frame_bytes: usize, transport: Transport) -> Result<Value, String> {
    let Load {
        agents,
        supervisors,
        changes_per_s: rate,
        duration_s,
    } = load;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let transport_arg = match transport {
        Transport::Hub => "hub",
        Transport::Tungstenite => "tungstenite",
    };
    let mut server = Command::new(exe)
        .args(["relay-server", "--frame-bytes", &frame_bytes.to_string()])
        .args(["--transport", transport_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("the relay server: {e}"))?;
    let stdout = server.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| "the relay server did not start")?
            .map_err(|e| e.to_string())?
            .ok_or("the relay server exited")?;
        if let Some(addr) = line.strip_prefix(LISTENING) {
            break addr.to_string();
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for i in 0..supervisors {
        let ws = crate::client::connect(&format!("ws://{addr}/supervisor"), i).await?;
        let watch = crate::client::time_deltas(ws, stopped.clone(), delivered.clone());
        watchers.push(tokio::spawn(watch));
    }
    let mut drivers = Vec::new();
    for i in 0..agents {
        drivers.push(crate::client::connect(&format!("ws://{addr}/agent"), supervisors + i).await?);
    }
    let errors = Arc::new(AtomicU64::new(0));
    let sent = crate::fanout::drive(drivers, rate, Duration::from_secs(duration_s), &errors).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let all = crate::report::merged(watchers).await;
    drop(server);
    let delivered = delivered.load(Ordering::Relaxed);
    let results = json!({
        "changes_sent": sent,
        "delivered": delivered,
        "delivered_per_s": (delivered as f64 / duration_s.max(1) as f64).round(),
        "latency_ms": latency_ms(&all),
        "errors": errors.load(Ordering::Relaxed),
    });
    let params = json!({"agents": agents, "supervisors": supervisors, "changes_per_s": rate,
        "duration_s": duration_s, "frame_bytes": frame_bytes, "transport": transport_arg});
    Ok(crate::report::make(
        "relay",
        params,
        json!({"rss_bytes": 0, "nodes": 0}),
        results,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_are_padded_to_the_size_asked() {
        let ack = super::padded("{\"p\":\"", "\"}", 700);
        assert_eq!(ack.len(), 700);
        assert!(serde_json::from_str::<serde_json::Value>(&ack).is_ok());
        assert_eq!(super::padded("abc", "de", 3), "abcde");
    }

    #[test]
    fn the_reason_is_read_from_a_set_status_frame() {
        let paused = r#"{"type":"set_status","status":"paused","reason":"t1234"}"#;
        assert_eq!(super::reason(paused), Some("t1234"));
        let available = r#"{"type":"set_status","status":"available"}"#;
        assert_eq!(super::reason(available), None);
    }
}
