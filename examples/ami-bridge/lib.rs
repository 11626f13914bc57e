//! The AMI bridge's parts, shared by the example binary (`main.rs`) and
//! `tests/ami_bridge.rs`, which includes this file by `#[path]` so the
//! test calls the bridge directly instead of building and running it.
//! The `#[path]`s below are relative to this file in both cases.

#[path = "ami.rs"]
pub mod ami;
#[path = "bridge.rs"]
pub mod bridge;
#[path = "hub.rs"]
pub mod hub;

use ami::{Message, Parser};
use bridge::{Bridge, Call, Note};
use hub::{Hub, Outcome};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a run did, for the log and the tests.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub events: u64,
    /// Calls the hub applied (2xx), by path.
    pub done: Vec<(String, u16)>,
    /// Calls the hub refused: path, status, error code.
    pub refused: Vec<(String, u16, String)>,
    pub gave_up: Vec<String>,
    pub notes: Vec<Note>,
    pub malformed_lines: u64,
}

/// Seconds since the epoch, for events without a `Timestamp`.
fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn apply(hub: &Hub, calls: Vec<Call>, report: &mut Report) {
    for call in calls {
        let (_, path) = call.method_and_path();
        match hub.send(&call).await {
            Outcome::Done(status, _) => report.done.push((path, status)),
            Outcome::Refused(status, body) => {
                let code = body["error"]["code"].as_str().unwrap_or("").to_string();
                // 404 on a stats push: a hub without the queue statistics
                // route (or a queue it does not know); the rest goes on.
                tracing::warn!(%path, status, %body, "refused by the hub; skipped");
                report.refused.push((path, status, code));
            }
            Outcome::GaveUp(why) => {
                tracing::error!(%path, %why, "gave up; skipped");
                report.gave_up.push(path);
            }
        }
    }
}

/// Handles one message: maps it and sends what it maps to, in order.
pub async fn process(bridge: &mut Bridge, hub: &Hub, m: &Message, report: &mut Report) {
    if m.event().is_none() {
        return;
    }
    report.events += 1;
    let (calls, note) = bridge.handle(m, wall_clock());
    if let Some(note) = note {
        match &note {
            // By design (RingNoAnswer, Unhold, member added…) or unknown:
            // Asterisk sends many; only worth seeing when debugging.
            Note::Ignored(_) => tracing::debug!(?note, "not mapped"),
            Note::Membership(_) => tracing::info!(?note, "the directory owns assignments"),
            // A member missing from the mapping file, an event without its
            // fields: an operator should know.
            _ => tracing::warn!(?note, "not mapped"),
        }
        report.notes.push(note);
    }
    apply(hub, calls, report).await;
}

/// Reads AMI messages from `input` until it ends (a transcript, or a
/// socket after login) and bridges each.
pub async fn run_stream<R: AsyncRead + Unpin>(
    input: &mut R,
    mut parser: Parser,
    bridge: &mut Bridge,
    hub: &Hub,
) -> std::io::Result<Report> {
    let mut report = Report::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = input.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        for m in parser.push(&buf[..n]) {
            process(bridge, hub, &m, &mut report).await;
        }
    }
    if let Some(m) = parser.finish() {
        process(bridge, hub, &m, &mut report).await;
    }
    report.malformed_lines = parser.malformed;
    Ok(report)
}

/// Connects to AMI and logs in; the socket and the parser holding what
/// came after the login's response (events may follow in the same read).
pub async fn login(
    addr: &str,
    username: &str,
    secret: &str,
) -> Result<(TcpStream, Parser, Vec<Message>), String> {
    let mut socket = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("AMI {addr}: {e}"))?;
    let action = Message::from_pairs(&[
        ("Action", "Login"),
        ("ActionID", "ami-bridge-login"),
        ("Username", username),
        ("Secret", secret),
        ("Events", "on"),
    ]);
    socket
        .write_all(action.to_wire().as_bytes())
        .await
        .map_err(|e| format!("AMI {addr}: {e}"))?;
    let mut parser = Parser::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("AMI {addr}: {e}"))?;
        if n == 0 {
            return Err(format!("AMI {addr}: closed before the login's answer"));
        }
        let mut messages = parser.push(&buf[..n]).into_iter();
        while let Some(m) = messages.next() {
            if m.get("ActionID") != Some("ami-bridge-login") {
                continue; // Events before the answer are not ours yet.
            }
            return match m.get("Response") {
                Some(r) if r.eq_ignore_ascii_case("Success") => {
                    Ok((socket, parser, messages.collect()))
                }
                _ => Err(format!(
                    "AMI {addr}: login refused: {}",
                    m.get("Message").unwrap_or("no message")
                )),
            };
        }
    }
}

/// One AMI session: login, then every event until the socket closes.
pub async fn run_socket(
    addr: &str,
    username: &str,
    secret: &str,
    bridge: &mut Bridge,
    hub: &Hub,
) -> Result<Report, String> {
    let (mut socket, parser, early) = login(addr, username, secret).await?;
    let mut report = Report::default();
    for m in &early {
        process(bridge, hub, m, &mut report).await;
    }
    let rest = run_stream(&mut socket, parser, bridge, hub)
        .await
        .map_err(|e| format!("AMI {addr}: {e}"))?;
    report.events += rest.events;
    report.done.extend(rest.done);
    report.refused.extend(rest.refused);
    report.gave_up.extend(rest.gave_up);
    report.notes.extend(rest.notes);
    report.malformed_lines = rest.malformed_lines;
    Ok(report)
}
