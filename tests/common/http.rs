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
    let mut s = tokio::net::TcpStream::connect(addr.to_string())
        .await
        .expect("connect");
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .filter(|b| !b.is_empty())
        .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}")))
        .unwrap_or(Value::Null);
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
    (status, headers, json)
}
