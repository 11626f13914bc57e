//! The hub's own WebSocket (`src/ws/`) against hand-built frames on a raw
//! TCP socket, through the real binary: what a WebSocket library would never
//! send — fragments with a ping between them, a hello written one byte at a
//! time or in the same packet as the upgrade, frames that break RFC 6455,
//! text that is not UTF-8, a close and its echo, bad upgrade requests (a
//! key that is not a 16-byte nonce among them), an endless run of empty
//! continuations.

mod common;

use common::process::Proc;
use common::raw::{
    self, close_code, frame, frame_with, next_frame, next_json, BINARY, CLOSE, CONTINUATION, PING,
    PONG, TEXT,
};
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn node() -> Proc {
    let dir = format!("{}/tests/common/directory.json", env!("CARGO_MANIFEST_DIR"));
    Proc::start(
        &["--listen", "127.0.0.1:0", "--directory", &dir],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await
}

async fn upgraded(node: &Proc) -> TcpStream {
    let mut stream = TcpStream::connect(&node.addr).await.expect("connect");
    assert_eq!(raw::upgrade(&mut stream, "").await, 101);
    stream
}

fn hello() -> Vec<u8> {
    json!({"type": "hello", "token": token("acme", "s1"), "role": "supervisor"})
        .to_string()
        .into_bytes()
}

/// The hub's close frame (its code), then the end of the connection.
async fn closed_with(stream: &mut TcpStream) -> u16 {
    let code = close_code(stream).await;
    let mut rest = [0u8; 64];
    let end = tokio::time::timeout(DEADLINE, stream.read(&mut rest)).await;
    assert!(
        matches!(end, Ok(Ok(0)) | Ok(Err(_))),
        "the connection ends after the close: {end:?} {:?}",
        &rest[..4]
    );
    code
}

#[tokio::test]
async fn a_hello_in_fragments_with_a_ping_between_them_is_one_message() {
    let node = node().await;
    let mut s = upgraded(&node).await;
    let hello = hello();
    let (a, rest) = hello.split_at(10);
    let (b, c) = rest.split_at(20);
    let mut bytes = frame_with(TEXT, a); // FIN clear: a first fragment
    bytes.extend(frame(PING, b"between"));
    bytes.extend(frame_with(CONTINUATION, b));
    bytes.extend(frame(CONTINUATION, c));
    s.write_all(&bytes).await.expect("write");
    assert_eq!(next_frame(&mut s).await, (PONG, b"between".to_vec()));
    let welcome = next_json(&mut s).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

#[tokio::test]
async fn a_hello_written_a_byte_at_a_time_or_with_the_upgrade_is_read() {
    let node = node().await;
    let mut s = upgraded(&node).await;
    // Each byte its own segment, so the hub sees every header cut.
    s.set_nodelay(true).expect("nodelay");
    for byte in frame(TEXT, &hello()) {
        s.write_all(&[byte]).await.expect("write");
        s.flush().await.expect("flush");
    }
    assert_eq!(next_json(&mut s).await["type"], "welcome");

    // The upgrade and the first frame in one write: the frame arrives in
    // what the HTTP server read past the request.
    let mut s = TcpStream::connect(&node.addr).await.expect("connect");
    let mut bytes = b"GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    bytes.extend(frame(TEXT, &hello()));
    s.write_all(&bytes).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.expect("the upgrade's answer"));
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455 §1.3's example key and its accept value.
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert_eq!(next_json(&mut s).await["type"], "welcome");
}

#[tokio::test]
async fn frames_that_break_the_rfc_are_closed_with_1002() {
    let node = node().await;
    let mut unmasked = frame(TEXT, b"{}");
    unmasked[1] &= 0x7F;
    unmasked.truncate(2);
    unmasked.extend_from_slice(b"{}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an unmasked frame", unmasked),
        ("a reserved bit", frame_with(0x80 | 0x40 | TEXT, b"{}")),
        ("an unknown opcode", frame_with(0x80 | 0x3, b"{}")),
        (
            "a continuation without a message",
            frame(CONTINUATION, b"{}"),
        ),
        ("a fragmented ping", frame_with(PING, b"p")),
        ("a close of one byte", frame(CLOSE, &[3])),
        (
            "a close code that is not sent",
            frame(CLOSE, &1005u16.to_be_bytes()),
        ),
        ("a new message inside a fragmented one", {
            let mut b = frame_with(TEXT, b"{");
            b.extend(frame(BINARY, b"}"));
            b
        }),
    ];
    for (case, bytes) in cases {
        let mut s = upgraded(&node).await;
        s.write_all(&bytes).await.expect("write");
        assert_eq!(closed_with(&mut s).await, 1002, "{case}");
    }
    // More bytes behind the bad frame than the kernel's buffers hold: the
    // hub drains them until the client is done, rather than dropping the
    // connection with bytes unread (a reset, which fails this write and can
    // lose the close frame).
    let mut s = upgraded(&node).await;
    let mut bytes = frame_with(0x80 | 0x40 | TEXT, b"{}");
    bytes.extend(vec![0u8; 32 * 1024 * 1024]);
    s.write_all(&bytes).await.expect("write");
    assert_eq!(closed_with(&mut s).await, 1002, "with a tail");
    // The node still serves.
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
}

#[tokio::test]
async fn text_that_is_not_utf8_is_closed_with_1007() {
    let node = node().await;
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
    // Valid bytes split inside a character across two fragments are fine...
    // (An unknown type: its error reply carries the id back.)
    let text = "{\"type\":\"nope\",\"id\":\"é\"}".as_bytes();
    let cut = text.iter().position(|&b| b == 0xC3).expect("é") + 1;
    let mut bytes = frame_with(TEXT, &text[..cut]);
    bytes.extend(frame(CONTINUATION, &text[cut..]));
    s.write_all(&bytes).await.expect("write");
    let reply = next_json(&mut s).await;
    assert_eq!(reply["id"], "é", "{reply}");
    // ...a byte that is not UTF-8 is not.
    s.write_all(&frame(TEXT, b"{\"type\":\"nope\",\"id\":\"\xff\"}"))
        .await
        .expect("write");
    assert_eq!(closed_with(&mut s).await, 1007);
}

#[tokio::test]
async fn a_close_is_echoed_and_an_oversized_frame_is_refused_unread() {
    let node = node().await;
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
    let mut close = 4321u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    s.write_all(&frame(CLOSE, &close)).await.expect("write");
    assert_eq!(closed_with(&mut s).await, 4321);

    // A header announcing 1 GiB: refused at once (the payload never comes).
    let mut s = upgraded(&node).await;
    let mut header = vec![0x80 | TEXT, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&header).await.expect("write");
    assert_eq!(closed_with(&mut s).await, 1009);
}

#[tokio::test]
async fn requests_that_are_not_upgrades_are_refused_with_the_reason() {
    let node = node().await;
    for (request, status) in [
        ("GET /v1/ws HTTP/1.1\r\nHost: hub\r\n\r\n", 400),
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
        ),
        // Keys that are not a 16-byte nonce in base64 (RFC 6455 §4.2.1):
        // 15 bytes, not base64, 17 bytes, and empty.
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            "GET /v1/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: \r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
    ] {
        let mut s = TcpStream::connect(&node.addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while !head.ends_with(b"\r\n\r\n") {
                head.push(s.read_u8().await.expect("an answer"));
            }
        })
        .await
        .expect("an answer in time");
        let answer = String::from_utf8_lossy(&head);
        let got: u16 = answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert_eq!(got, status, "{request:?} → {answer}");
        if status == 426 {
            // The version the hub speaks (RFC 6455 §4.4).
            assert!(
                answer
                    .to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{answer}"
            );
        }
    }
}

#[tokio::test]
async fn a_close_between_fragments_is_echoed_and_a_ping_after_the_hubs_close_is_not() {
    let node = node().await;
    let mut s = upgraded(&node).await;
    let mut bytes = frame_with(TEXT, b"{\"type\":");
    bytes.extend(frame(CLOSE, &1000u16.to_be_bytes()));
    s.write_all(&bytes).await.expect("write");
    assert_eq!(closed_with(&mut s).await, 1000);

    // The hub closes first (no hello in time: 4001) and then reads until the
    // client is done: a ping in between gets no pong (the client then ends
    // its side, which makes the hub write out whatever it had queued).
    let quick = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            &format!("{}/tests/common/directory.json", env!("CARGO_MANIFEST_DIR")),
            "--auth-timeout-ms",
            "300",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let mut s = upgraded(&quick).await;
    let (opcode, payload) = next_frame(&mut s).await;
    assert_eq!((opcode, &payload[..2]), (CLOSE, &4001u16.to_be_bytes()[..]));
    s.write_all(&frame(PING, b"late")).await.expect("write");
    s.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    let end = tokio::time::timeout(DEADLINE, s.read_to_end(&mut rest)).await;
    assert!(
        matches!(end, Ok(Ok(_))),
        "the hub ends the connection: {end:?}"
    );
    assert!(rest.is_empty(), "nothing after the hub's close: {rest:?}");
}

#[tokio::test]
async fn an_endless_run_of_empty_continuations_is_rate_limited() {
    // Every frame counts for the rate limit (PROTOCOL.md §1), the frames of
    // a message that never completes too: without that, a peer could make
    // the hub parse empty continuations at line rate, for ever.
    let node = node().await;
    let flood = || {
        let mut bytes = frame_with(TEXT, b"{");
        for _ in 0..200 {
            bytes.extend(frame_with(CONTINUATION, b""));
        }
        bytes
    };
    // Before hello: the connection is closed with 4008, not left to the
    // hello's timeout.
    let mut s = upgraded(&node).await;
    s.write_all(&flood()).await.expect("write");
    assert_eq!(policy_close(&mut s).await, 4008);
    // After hello, the same.
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
    s.write_all(&flood()).await.expect("write");
    assert_eq!(policy_close(&mut s).await, 4008);
}

/// The code of the hub's close, answered as a client does (the hub waits
/// for the answer to a close of its own policy); then the connection ends.
async fn policy_close(stream: &mut TcpStream) -> u16 {
    let code = close_code(stream).await;
    // The answer comes after the rest of the flood, in the same stream.
    stream
        .write_all(&frame(CLOSE, &code.to_be_bytes()))
        .await
        .expect("write");
    let mut rest = [0u8; 64];
    let end = tokio::time::timeout(DEADLINE, stream.read(&mut rest)).await;
    assert!(matches!(end, Ok(Ok(0)) | Ok(Err(_))), "ends: {end:?}");
    code
}

#[tokio::test]
async fn a_message_with_a_fragment_over_the_rate_limit_is_refused_whole() {
    // PROTOCOL.md §1: a message with any frame over the limit is dropped
    // whole and answered `rate_limited`, even when its last frame comes once
    // the budget is back; a ping over the limit still gets its pong.
    let node = node().await;
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
    // 60 frames at a budget of 50 (the hello took one): 11 refused.
    let search = json!({"type": "search", "id": "q1", "query": "a"}).to_string();
    let mut bytes = frame_with(TEXT, search.as_bytes());
    for _ in 0..59 {
        bytes.extend(frame_with(CONTINUATION, b""));
    }
    s.write_all(&bytes).await.expect("write");
    // The refill is what is tested, so time has to pass: a quarter of a
    // second gives twelve frames back at 50 a second.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    s.write_all(&frame_with(0x80 | CONTINUATION, b""))
        .await
        .expect("write");
    let reply = reply_to(&mut s).await;
    assert_eq!(
        (reply["id"].as_str(), reply["error"]["code"].as_str()),
        (Some("q1"), Some("rate_limited")),
        "{reply}"
    );
    // The same message whole, now within the budget: answered.
    s.write_all(&frame(TEXT, search.as_bytes()))
        .await
        .expect("write");
    let reply = reply_to(&mut s).await;
    assert_eq!(
        (reply["id"].as_str(), &reply["ok"]),
        (Some("q1"), &json!(true)),
        "{reply}"
    );

    // Pings over the limit are answered all the same, at once.
    let mut s = upgraded(&node).await;
    s.write_all(&frame(TEXT, &hello())).await.expect("write");
    assert_eq!(next_json(&mut s).await["type"], "welcome");
    let pings: Vec<u8> = (0..55).flat_map(|_| frame(PING, b"p")).collect();
    s.write_all(&pings).await.expect("write");
    for n in 0..55 {
        let (opcode, payload) = next_frame(&mut s).await;
        assert_eq!((opcode, payload.as_slice()), (PONG, &b"p"[..]), "pong {n}");
    }
}

/// The next reply (other frames skipped).
async fn reply_to(stream: &mut TcpStream) -> serde_json::Value {
    loop {
        let v = next_json(stream).await;
        if v["type"] == "reply" {
            return v;
        }
    }
}
