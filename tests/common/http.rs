//! Plain HTTP/1.1 requests to a node's JSON APIs (`/api/v1`, `/scim/v2`),
//! over a raw TCP socket: what a script or an integration sends.

use super::DEADLINE;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request (`Connection: close`); the status and JSON body.
pub async fn request(
    addr: impl std::fmt::Display,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    extra: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let (status, _, json) = exchange(addr, method, path, bearer, extra, body).await;
    (status, json)
}

/// The first 1 000 events of acme's event stream, as its admin reads them
/// (`GET /api/v1/events`, protocol/EVENTS.md), heartbeats left out.
pub async fn acme_events(addr: impl std::fmt::Display) -> Vec<Value> {
    let token = super::token("acme", "ad1");
    let (status, body) = request(
        addr,
        "GET",
        "/api/v1/events?limit=1000",
        Some(&token),
        "",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] != "heartbeat")
        .cloned()
        .collect()
}

/// As [`request`], with the answer's header lines too (lowercase names,
/// `name: value` each).
pub async fn exchange(
    addr: impl std::fmt::Display,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    extra: &str,
    body: Option<&str>,
) -> (u16, Vec<String>, Value) {
    try_exchange(addr, method, path, bearer, extra, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// As [`request`], with what went wrong (no connection, no answer in time,
/// not HTTP, not JSON) as an error instead of a panic: for a reader that
/// carries on while nodes are killed (`tests/convergence`).
pub async fn try_request(
    addr: impl std::fmt::Display,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    extra: &str,
    body: Option<&str>,
) -> Result<(u16, Value), String> {
    let (status, _, json) = try_exchange(addr, method, path, bearer, extra, body).await?;
    Ok((status, json))
}

async fn try_exchange(
    addr: impl std::fmt::Display,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    extra: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<String>, Value), String> {
    let connect = tokio::net::TcpStream::connect(addr.to_string());
    let mut s = tokio::time::timeout(DEADLINE, connect)
        .await
        .map_err(|_| "no connection in time".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let json = match text.split_once("\r\n\r\n").map(|(_, b)| b.trim()) {
        Some(b) if !b.is_empty() => {
            serde_json::from_str(b).map_err(|e| format!("not JSON ({e}): {b}"))?
        }
        _ => Value::Null,
    };
    let headers = text
        .split_once("\r\n\r\n")
        .map_or("", |(h, _)| h)
        .lines()
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((name, value)) => format!("{}: {}", name.to_ascii_lowercase(), value.trim()),
            None => l.to_string(),
        })
        .collect();
    Ok((status, headers, json))
}
