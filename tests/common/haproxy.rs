//! A real HAProxy (Debian's `haproxy`) running `deploy/haproxy.cfg` as
//! shipped, with the test's ports substituted through the environment
//! variables the file reads.

use super::process::http_get;
use super::redis::free_port;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Haproxy {
    child: Child,
    /// Where clients connect.
    pub addr: String,
    /// HAProxy's status page (`/stats;csv`).
    pub ops: String,
    /// HAProxy's log lines and alerts (stdout and stderr), as they come.
    pub logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// Whether `haproxy` is installed; when not, the caller fails (see
/// [`super::missing`]: the test is ignored at build time where that is
/// allowed).
pub fn available() -> bool {
    std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Haproxy {
    /// Starts HAProxy in front of `nodes` (three `host:port`), checking
    /// `/readyz` every 100 ms.
    pub async fn start(nodes: [&str; 3]) -> Haproxy {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let addr = format!("127.0.0.1:{}", free_port());
        let ops = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new("haproxy")
            .arg("-db") // foreground, logs to stdout
            .arg("-f")
            .arg(&config)
            .env("PRESENCE_LB_BIND", &addr)
            .env("PRESENCE_LB_OPS_BIND", &ops)
            .env("PRESENCE_HUB1", nodes[0])
            .env("PRESENCE_HUB2", nodes[1])
            .env("PRESENCE_HUB3", nodes[2])
            .env("PRESENCE_LB_CHECK_INTER", "100ms")
            .stdout(Stdio::piped())
            // Its alerts ("Server hubs/hub1 is DOWN") are what the tests
            // provoke: collected with the logs, not printed into the test
            // output (PRESENCE_HUB_TEST_LOGS=1 shows both).
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy on PATH (apt-get install haproxy)");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
        forward_lines(stdout, tx.clone());
        forward_lines(stderr, tx);
        let lb = Haproxy {
            child,
            addr,
            ops,
            logs,
        };
        super::process::eventually(
            "HAProxy answers on its status page",
            super::DEADLINE,
            Duration::from_millis(20),
            || async {
                tokio::net::TcpStream::connect(&lb.ops).await.is_ok()
                    && tokio::net::TcpStream::connect(&lb.addr).await.is_ok()
            },
        )
        .await;
        lb
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Each server's status on the stats page: `UP`, `DOWN`, `UP 1/2`, …
    pub async fn server_states(&self) -> HashMap<String, String> {
        let (code, body) = http_get(&self.ops, "/stats;csv").await;
        assert_eq!(code, 200, "{body}");
        let csv = dechunk(body.split_once("\r\n\r\n").map_or("", |(_, b)| b));
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("csv header")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let (px, sv, status) = (col("pxname"), col("svname"), col("status"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[px] == "hubs" && f[sv].starts_with("hub"))
            .map(|f| (f[sv].to_string(), f[status].to_string()))
            .collect()
    }

    /// Waits until HAProxy reports `server` exactly `want` (`UP` or `DOWN`).
    pub async fn wait_state(&self, server: &str, want: &str) {
        super::process::eventually(
            &format!("HAProxy reports {server} {want}"),
            super::DEADLINE,
            Duration::from_millis(20),
            || async { self.server_states().await.get(server).map(String::as_str) == Some(want) },
        )
        .await;
    }

    /// Every log line received so far.
    pub fn drain_logs(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.logs.try_recv() {
            out.push(line);
        }
        out
    }
}

/// Sends each line of HAProxy's `out` to `tx` (and to the test output
/// with PRESENCE_HUB_TEST_LOGS set).
fn forward_lines(
    out: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if std::env::var_os("PRESENCE_HUB_TEST_LOGS").is_some() {
                eprintln!("haproxy: {line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// The body of a chunked response (HAProxy chunks its stats even to
/// HTTP/1.0 clients).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
