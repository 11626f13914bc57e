//! A bare WebSocket client for actors that must survive faults: unlike the
//! harness's `Client` it never panics on a close or a silent node, it
//! reports them, so the actor can reconnect as a real client would.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What reading a connection gave.
#[derive(Debug)]
pub enum Incoming {
    Msg(Value),
    /// The connection ended: the close code (1006 without a close frame)
    /// and reason.
    Closed(u16, String),
}

/// Connects within `within`; `None` when the node is down or frozen.
pub async fn connect(url: &str, within: Duration) -> Option<Ws> {
    match tokio::time::timeout(within, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

/// Opens the integration WebSocket (`GET /api/v1/ws`, docs/API.md "Over
/// one WebSocket") of the node at `addr` with a service key, within
/// `within`; `None` when the node is down, frozen or refuses.
pub async fn api_connect(addr: &str, key: &str, within: Duration) -> Option<Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .ok()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().ok()?);
    match tokio::time::timeout(within, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

/// The next JSON message (pings and pongs skipped; tungstenite queues the
/// answer to a ping and sends it with the next write).
pub async fn next(ws: &mut Ws) -> Incoming {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str(&t) {
                Ok(v) => return Incoming::Msg(v),
                Err(e) => return Incoming::Closed(0, format!("not JSON from the hub: {e}: {t}")),
            },
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) => Incoming::Closed(u16::from(f.code), f.reason.to_string()),
                    None => Incoming::Closed(1005, String::new()),
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Incoming::Closed(1006, e.to_string()),
            None => return Incoming::Closed(1006, "eof".into()),
        }
    }
}

/// Sends one message; false when the connection is gone.
pub async fn send(ws: &mut Ws, v: &Value) -> bool {
    ws.send(Message::text(v.to_string())).await.is_ok()
}

/// Writes several messages with one flush (a burst).
pub async fn burst(ws: &mut Ws, vs: &[Value]) -> bool {
    for v in vs {
        if ws.feed(Message::text(v.to_string())).await.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

pub fn token(user: &str) -> String {
    // An hour: a reconnect mints a new one, so a long soak never meets
    // an expired token.
    presence_hub::auth::mint(crate::common::SECRET, "acme", user, 3600).expect("mint")
}

/// Connects and says hello; returns the socket and the `welcome`, or why
/// not (node down, store unreachable: 1011, …) within `within`.
pub async fn hello(
    url: &str,
    user: &str,
    role: &str,
    device: Option<&str>,
    within: Duration,
) -> Result<(Ws, Value), String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut ws = connect(url, within).await.ok_or("no connection")?;
    let mut hello = json!({"type": "hello", "token": token(user), "role": role});
    if let Some(d) = device {
        hello["device"] = json!({"id": d, "kind": "softphone"});
    }
    if !send(&mut ws, &hello).await {
        return Err("hello not sent".into());
    }
    loop {
        match tokio::time::timeout_at(deadline, next(&mut ws)).await {
            Err(_) => return Err("no welcome in time".into()),
            Ok(Incoming::Closed(code, reason)) => return Err(format!("closed {code} {reason}")),
            Ok(Incoming::Msg(v)) if v["type"] == "welcome" => return Ok((ws, v)),
            Ok(Incoming::Msg(_)) => continue,
        }
    }
}

/// One request on a fresh connection, waiting for its reply (`None`: no
/// reply within `within`). Other messages are dropped.
pub async fn request(ws: &mut Ws, mut body: Value, id: &str, within: Duration) -> Option<Value> {
    body["id"] = json!(id);
    if !send(ws, &body).await {
        return None;
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, next(ws)).await {
            Ok(Incoming::Msg(v)) if v["type"] == "reply" && v["id"] == id => return Some(v),
            Ok(Incoming::Msg(_)) => continue,
            _ => return None,
        }
    }
}

/// How [`broken_request`] breaks its frame.
#[derive(Clone, Copy, Debug)]
pub enum Broken {
    /// A reserved bit set (PROTOCOL.md §1: close 1002).
    ReservedBit,
    /// A byte that is not UTF-8 after the JSON (close 1007).
    NotUtf8,
}

/// A raw TCP connection to `addr`, upgraded to the WebSocket at `path`
/// with `extra` header lines (each ending in CRLF); `None` when the node is
/// down, frozen past the caller's deadline, or refuses the upgrade.
async fn raw_upgrade(addr: &str, path: &str, extra: &str) -> Option<TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.ok()?;
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(upgrade.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.ok()?);
    }
    head.starts_with(b"HTTP/1.1 101").then_some(s)
}

/// A raw TCP connection to the node of `url`, upgraded to its WebSocket and
/// signed in as `user` (the `welcome` read); `None` when the node is down,
/// frozen past the caller's deadline, or refuses.
async fn raw_session(url: &str, user: &str, role: &str) -> Option<TcpStream> {
    use crate::common::raw::{frame, CLOSE, TEXT};
    use tokio::io::AsyncWriteExt;
    let addr = url.strip_prefix("ws://")?.split('/').next()?;
    let mut s = raw_upgrade(addr, "/v1/ws", "").await?;
    let hello = json!({"type": "hello", "token": token(user), "role": role});
    s.write_all(&frame(TEXT, hello.to_string().as_bytes()))
        .await
        .ok()?;
    loop {
        let (opcode, payload) = server_frame(&mut s).await?;
        if opcode == CLOSE {
            return None; // refused at hello (a fault meanwhile)
        }
        let welcome = opcode == TEXT
            && serde_json::from_slice::<Value>(&payload).is_ok_and(|v| v["type"] == "welcome");
        if welcome {
            return Some(s);
        }
    }
}

/// The server's next frame (never masked): opcode and payload; `None` when
/// the connection ended.
async fn server_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.ok()?;
    let len = match h[1] & 0x7F {
        126 => u64::from(s.read_u16().await.ok()?),
        127 => s.read_u64().await.ok()?,
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0F, payload))
}

/// `body` sent as a frame that breaks RFC 6455, on a connection of its own
/// signed in as `user` (raw TCP: a WebSocket library would not send it).
/// The close code the hub answered it with; `None` when no answer came
/// within `within` (a node down or frozen: nothing can be concluded).
pub async fn broken_request(
    url: &str,
    user: &str,
    role: &str,
    body: &Value,
    how: Broken,
    within: Duration,
) -> Option<u16> {
    use crate::common::raw::{frame, CLOSE, TEXT};
    use tokio::io::AsyncWriteExt;
    let exchange = async {
        let mut s = raw_session(url, user, role).await?;
        let mut request = body.to_string().into_bytes();
        let bytes = match how {
            Broken::ReservedBit => {
                let mut b = frame(TEXT, &request);
                b[0] |= 0x40;
                b
            }
            Broken::NotUtf8 => {
                request.push(0xFF);
                frame(TEXT, &request)
            }
        };
        s.write_all(&bytes).await.ok()?;
        loop {
            let (opcode, payload) = server_frame(&mut s).await?;
            if opcode == CLOSE {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// `body` with `"id": id` sent as one text message in `fragments` frames
/// (the first a TEXT frame without FIN, then continuations, FIN on the
/// last; empty ones where the JSON is shorter than `fragments`), all in one
/// write, on a connection of its own signed in as `user`. PROTOCOL.md §1:
/// every frame counts for the rate limit, so a message in more fragments
/// than the limit leaves room for (the fresh connection's hello took one
/// token of `--rate-limit-per-sec`) is dropped and answered `rate_limited`
/// under its id. The reply that came under `id`; `None` when the hub
/// closed the connection or nothing came within `within` (a node down or
/// frozen: nothing can be concluded).
pub async fn fragmented_request(
    url: &str,
    user: &str,
    role: &str,
    mut body: Value,
    id: &str,
    fragments: usize,
    within: Duration,
) -> Option<Value> {
    use crate::common::raw::{self, CLOSE, TEXT};
    use tokio::io::AsyncWriteExt;
    body["id"] = json!(id);
    let request = body.to_string().into_bytes();
    let bytes = raw::fragments(&request, fragments.max(2), true).concat();
    let exchange = async {
        let mut s = raw_session(url, user, role).await?;
        s.write_all(&bytes).await.ok()?;
        loop {
            match server_frame(&mut s).await? {
                (CLOSE, _) => return None,
                (TEXT, payload) => {
                    let Ok(v) = serde_json::from_slice::<Value>(&payload) else {
                        continue;
                    };
                    if v["type"] == "reply" && v["id"] == id {
                        return Some(v);
                    }
                }
                _ => {} // pings (unanswered: the deadline is short), others
            }
        }
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// One request of the integration API on its WebSocket (`request` holds
/// its `id`), waiting for the reply under that id (`{"id", "status",
/// "body"}`); other messages are dropped. `None` when the connection ended
/// or no reply came within `within`.
pub async fn api_request(ws: &mut Ws, request: &Value, within: Duration) -> Option<Value> {
    if !send(ws, request).await {
        return None;
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, next(ws)).await {
            Ok(Incoming::Msg(v)) if v["id"] == request["id"] => return Some(v),
            Ok(Incoming::Msg(_)) => continue,
            _ => return None,
        }
    }
}

/// What [`api_fragmented_request`] got back.
pub struct FragmentedReply {
    /// The hub's first text frame after the request's last frame: on a
    /// connection that carried nothing else, its answer (whatever its
    /// `id`: the caller judges that too).
    pub reply: Value,
    /// From the start of the write of every frame but the last to the pong
    /// of the ping written after them: the hub read (and admitted or
    /// refused) all of them within it.
    pub read_within: Duration,
}

/// The payload of the ping that follows the early fragments.
const PROBE: &[u8] = b"fragments read";

/// An integration WebSocket (`GET /api/v1/ws` of the node at `addr` with
/// the service `key`) as raw TCP, so that a caller writes exactly the
/// frames it means to; `None` when the node is down, frozen, or refuses
/// within `within` (503 while its store does not answer: the key is
/// checked there).
pub async fn api_raw_connect(addr: &str, key: &str, within: Duration) -> Option<TcpStream> {
    let extra = format!("Authorization: Bearer {key}\r\n");
    let upgrade = raw_upgrade(addr, "/api/v1/ws", &extra);
    tokio::time::timeout(within, upgrade).await.ok().flatten()
}

/// `request` (an integration API request with its `id`) sent as one text
/// message in `fragments` frames (the first a TEXT frame without FIN, then
/// continuations; empty ones where the JSON is shorter) on `s`, an
/// integration WebSocket of its own ([`api_raw_connect`]). Every frame
/// but the last goes in one write, followed by a ping; once its pong
/// is back (the hub answers a ping before it reads on, so it has read them
/// all), `refill` passes — the budget coming back is what is tested, so
/// time has to pass — and the last frame goes. docs/API.md "Over one
/// WebSocket": each fragment counts for `--api-ws-rate-limit-per-sec`, and
/// a request with any fragment over it is answered 429 `rate_limited` and
/// dropped whole, even when its last frame comes once the budget is back.
/// `None` when the hub closed the connection or it did not all happen
/// within `within` (a node down or frozen: nothing can be concluded).
pub async fn api_fragmented_request(
    mut s: TcpStream,
    request: &Value,
    fragments: usize,
    refill: Duration,
    within: Duration,
) -> Option<FragmentedReply> {
    use crate::common::raw::{self, frame, CLOSE, PING, PONG, TEXT};
    use tokio::io::AsyncWriteExt;
    let text = request.to_string().into_bytes();
    let mut frames = raw::fragments(&text, fragments.max(2), true);
    let last = frames.pop().unwrap_or_default();
    let mut early = frames.concat();
    early.extend(frame(PING, PROBE));
    let exchange = async {
        let written = std::time::Instant::now();
        s.write_all(&early).await.ok()?;
        loop {
            match server_frame(&mut s).await? {
                (PONG, payload) if payload == PROBE => break,
                (CLOSE, _) => return None,
                _ => {} // the hub's own pings (unanswered: the deadline is short)
            }
        }
        let read_within = written.elapsed();
        tokio::time::sleep(refill).await;
        s.write_all(&last).await.ok()?;
        loop {
            match server_frame(&mut s).await? {
                (CLOSE, _) => return None,
                (TEXT, payload) => {
                    let reply = serde_json::from_slice::<Value>(&payload)
                        .unwrap_or_else(|e| json!({"not JSON from the hub": e.to_string()}));
                    return Some(FragmentedReply { reply, read_within });
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}
