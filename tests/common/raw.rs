//! Raw TCP and hand-built WebSocket frames, for clients that misbehave in
//! ways a WebSocket library would refuse to: half-sent requests, floods of
//! pings from a peer that never reads.

use super::DEADLINE;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A TCP connection with a small receive buffer (a peer that does not read
/// fills it quickly, and the hub's writes block).
pub async fn small_buffer(addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("tcp connect")
}

/// Sends a WebSocket upgrade for `/v1/ws` with `extra` header lines; returns
/// the HTTP status of the answer.
pub async fn upgrade(stream: &mut TcpStream, extra: &str) -> u16 {
    upgrade_to(stream, "/v1/ws", extra).await
}

/// As [`upgrade`], for the WebSocket at `path`.
pub async fn upgrade_to(stream: &mut TcpStream, path: &str, extra: &str) -> u16 {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(DEADLINE, async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read");
            assert!(n == 1, "closed during the handshake: {head:?}");
            head.push(byte[0]);
        }
    })
    .await
    .expect("an answer to the upgrade");
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status")
}

/// One masked client frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A frame written with the first header byte as given (FIN, RSV and
/// opcode), masked.
pub fn frame_with(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame(b0 & 0x0F, payload);
    bytes[0] = b0;
    bytes
}

/// The first header byte's FIN bit: the message's last frame.
pub const FIN: u8 = 0x80;

/// `message` as one text message in `n` frames (at least one), masked: a
/// TEXT frame, then continuations, the last with FIN when `last_final`
/// (without it the message stays open); empty ones where the message is
/// shorter than `n`.
pub fn fragments(message: &[u8], n: usize, last_final: bool) -> Vec<Vec<u8>> {
    let n = n.max(1);
    let cut = |i: usize| i * message.len() / n;
    (0..n)
        .map(|i| {
            let opcode = if i == 0 { TEXT } else { CONTINUATION };
            let fin = if i + 1 == n && last_final { FIN } else { 0 };
            frame_with(fin | opcode, &message[cut(i)..cut(i + 1)])
        })
        .collect()
}

/// The next frame from the hub (never masked): its opcode and payload.
pub async fn next_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(DEADLINE, async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.expect("a frame header");
        assert_eq!(head[0] & 0x80, 0x80, "the hub's frames are final");
        assert_eq!(head[1] & 0x80, 0, "the hub's frames are not masked");
        let len = match head[1] & 0x7F {
            126 => u64::from(stream.read_u16().await.expect("length")),
            127 => stream.read_u64().await.expect("length"),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await.expect("a payload");
        (head[0] & 0x0F, payload)
    })
    .await
    .expect("a frame from the hub in time")
}

/// The next text frame, as JSON (pings and pongs skipped).
pub async fn next_json(stream: &mut TcpStream) -> Value {
    loop {
        let (opcode, payload) = next_frame(stream).await;
        match opcode {
            TEXT => return serde_json::from_slice(&payload).expect("JSON"),
            PING | PONG => continue,
            other => panic!("expected text, got opcode {other}: {payload:?}"),
        }
    }
}

/// The code of the hub's next close frame (the frames before it skipped).
pub async fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = next_frame(stream).await;
        if opcode == CLOSE {
            assert!(payload.len() >= 2, "a close with a code: {payload:?}");
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Writes `count` pings (in chunks) without ever reading. Stops early when
/// a chunk cannot be written for `stall` (the hub stopped reading) or the
/// connection broke. Returns how many were written.
pub async fn flood_pings(
    stream: &mut TcpStream,
    count: usize,
    stall: std::time::Duration,
) -> usize {
    // The largest control payload: each pong echoes it.
    let chunk: Vec<u8> = (0..1_000).flat_map(|_| frame(PING, &[b'p'; 125])).collect();
    let mut sent = 0;
    while sent < count {
        match tokio::time::timeout(stall, stream.write_all(&chunk)).await {
            Ok(Ok(())) => sent += 1_000,
            _ => break,
        }
    }
    sent
}

/// Keeps writing pings, never reading, until the hub has dropped the
/// connection (a write fails); panics when it is still open after `within`.
/// Reading would unblock the hub's writes: a peer that never reads is what
/// is tested.
pub async fn until_dropped_unread(stream: &mut TcpStream, within: std::time::Duration) {
    until_dropped_writing(stream, &frame(PING, &[b'p'; 125]), within).await;
}

/// As [`until_dropped_unread`], writing `payload` over and over (pings, or
/// pipelined HTTP requests).
pub async fn until_dropped_writing(
    stream: &mut TcpStream,
    payload: &[u8],
    within: std::time::Duration,
) {
    let ping = payload;
    let until = tokio::time::Instant::now() + within;
    loop {
        assert!(
            tokio::time::Instant::now() < until,
            "the hub did not drop a peer that never reads"
        );
        // Blocks while the hub does not read; fails once it closed.
        let write = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            stream.write_all(ping),
        );
        if let Ok(Err(_)) = write.await {
            return;
        }
    }
}

/// Reads (and discards) until the hub closes the connection; panics when
/// it is still open after the deadline.
pub async fn until_closed(stream: &mut TcpStream, within: std::time::Duration) {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the hub closes the connection");
}
