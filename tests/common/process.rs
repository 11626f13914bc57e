//! The real `presence-hub` binary as a child process, and plain HTTP GETs.

use super::DEADLINE;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_presence-hub");

/// A started node: its address and the banner lines it printed.
pub struct Proc {
    pub child: Child,
    pub addr: String,
    pub banner: Vec<String>,
    /// The node's log lines, when started with [`Proc::start_logged`].
    pub logs: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

impl Proc {
    /// Starts a node and collects its log lines (stderr).
    pub async fn start_logged(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::spawn(args, envs, true, None).await
    }

    pub async fn start(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::spawn(args, envs, false, None).await
    }

    /// Starts a node listening on `listen` (a fixed `host:port`), with its
    /// logs collected, without waiting for its banner: a node that waits
    /// for Redis prints it only once Redis answered. Its stdout is drained
    /// in the background.
    pub async fn start_unready(listen: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut all = vec!["--listen", listen];
        all.extend_from_slice(args);
        let (child, logs, stdout) = Proc::command(&all, envs, true, None);
        if let Some(mut lines) = stdout {
            // Read, not closed: `print!` to a closed pipe would end the node.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
        Proc {
            child,
            addr: listen.to_string(),
            banner: Vec::new(),
            logs,
        }
    }

    /// As [`Proc::start_logged`], with the node's open-file limit (soft
    /// and hard) set to `open_files`, as a tight `ulimit -n` would.
    pub async fn start_with_open_files(
        args: &[&str],
        envs: &[(&str, &str)],
        open_files: u64,
    ) -> Proc {
        Proc::spawn(args, envs, true, Some(open_files)).await
    }

    async fn spawn(
        args: &[&str],
        envs: &[(&str, &str)],
        capture: bool,
        open_files: Option<u64>,
    ) -> Proc {
        let (child, logs, stdout) = Proc::command(args, envs, capture, open_files);
        let mut lines = stdout.expect("stdout");
        let mut banner = Vec::new();
        let addr = tokio::time::timeout(DEADLINE, async {
            loop {
                let line = lines.next_line().await.expect("read").expect("banner line");
                banner.push(line.clone());
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    return rest.split_whitespace().next().expect("addr").to_string();
                }
            }
        })
        .await
        .expect("the node prints where it listens");
        // The rest of the banner follows at once.
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
        {
            banner.push(line);
        }
        Proc {
            child,
            addr,
            banner,
            logs,
        }
    }

    /// Spawns the binary: the child, its logs (when `capture`) as a channel
    /// of lines, and its stdout as lines to read (the caller must keep
    /// reading them).
    #[allow(clippy::type_complexity)]
    fn command(
        args: &[&str],
        envs: &[(&str, &str)],
        capture: bool,
        open_files: Option<u64>,
    ) -> (
        Child,
        Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
        Option<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
    ) {
        let mut cmd = Command::new(BIN);
        if let Some(n) = open_files {
            // SAFETY: only setrlimit(2), async-signal-safe, runs between
            // fork and exec.
            unsafe {
                cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, n, n));
            }
        }
        // PRESENCE_HUB_TEST_LOGS=1 shows the nodes' logs when debugging a test.
        let logs = if capture {
            Stdio::piped()
        } else if std::env::var_os("PRESENCE_HUB_TEST_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(logs)
            .kill_on_drop(true);
        // No simulated demo agents unless a test asks for them.
        if !envs.iter().any(|(k, _)| *k == "PRESENCE_HUB_NO_DEMO") {
            cmd.env("PRESENCE_HUB_NO_DEMO", "true");
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn");
        let logs = child.stderr.take().map(|stderr| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        (child, logs, Some(lines))
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Sends the node a signal (`TERM`, `HUP`, `STOP`, …): see [`signal`].
    pub fn signal(&self, sig: &str) {
        signal(self.child.id().expect("a running node"), sig);
    }

    /// Waits until `/readyz` answers `want`, polling every 50 ms for at
    /// most `within`.
    pub async fn wait_readyz(&self, what: &str, want: u16, within: Duration) {
        eventually(what, within, Duration::from_millis(50), || async {
            self.status("/readyz").await == want
        })
        .await;
    }

    /// The HS256 secret a node in dev mode generated and printed.
    pub fn generated_secret(&self) -> String {
        self.banner
            .iter()
            .find_map(|l| {
                l.split("Dev JWT secret (generated, in-memory mode only): ")
                    .nth(1)
            })
            .expect("the generated secret in the banner")
            .trim()
            .to_string()
    }

    /// `kill -9`.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for a log line containing all of `needles`; returns it.
    pub async fn log_line(&mut self, needles: &[&str]) -> String {
        let logs = self.logs.as_mut().expect("started with start_logged");
        tokio::time::timeout(DEADLINE, async {
            while let Some(line) = logs.recv().await {
                if needles.iter().all(|n| line.contains(n)) {
                    return line;
                }
            }
            panic!("the node's log ended");
        })
        .await
        .unwrap_or_else(|_| panic!("no log line with {needles:?}"))
    }

    /// Every log line received so far.
    pub fn drain_logs(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(logs) = self.logs.as_mut() {
            while let Ok(line) = logs.try_recv() {
                out.push(line);
            }
        }
        out
    }

    /// Resident memory of the node process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS")
    }

    pub async fn status(&self, path: &str) -> u16 {
        http_get(&self.addr, path).await.0
    }
}

/// A cluster node for the fault tests: node TTL `ttl_ms`, and a 300 ms
/// reconnect grace and Redis timeout, so a kill or an outage shows within a
/// second; `extra` adds flags.
/// Sends `sig` (`STOP`, `CONT`, `TERM`, …) to `pid` with `kill`: for every
/// process a test starts (nodes, `redis-server`, sentinels).
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

pub async fn fault_node(redis_url: &str, id: &str, ttl_ms: u64, extra: &[&str]) -> Proc {
    fault_node_on(&["--redis-url", redis_url], id, ttl_ms, 300, extra).await
}

/// As [`fault_node`], on the Redis that `redis` names (a URL, sentinels, a
/// cluster: the flags themselves), with a Redis timeout of `redis_timeout_ms`.
pub async fn fault_node_on(
    redis: &[&str],
    id: &str,
    ttl_ms: u64,
    redis_timeout_ms: u64,
    extra: &[&str],
) -> Proc {
    let ttl = ttl_ms.to_string();
    let redis_timeout = redis_timeout_ms.to_string();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--node-id",
        id,
        "--node-ttl-ms",
        &ttl,
        "--reconnect-grace-ms",
        "300",
        "--redis-timeout-ms",
        &redis_timeout,
    ];
    args.extend_from_slice(redis);
    args.extend_from_slice(extra);
    Proc::start(&args, &[("PRESENCE_HUB_JWT_SECRET", super::SECRET)]).await
}

/// A cluster node on `listen` against `redis`, with the short timings of
/// the rolling-restart tests (node TTL 1 s, grace 3 s, drain 6 s).
pub async fn start_cluster_node(redis: &str, id: &str, listen: &str) -> Proc {
    Proc::start(
        &[
            "--listen",
            listen,
            "--redis-url",
            redis,
            "--node-id",
            id,
            "--node-ttl-ms",
            "1000",
            "--reconnect-grace-ms",
            "3000",
            "--drain-timeout-ms",
            "6000",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", super::SECRET)],
    )
    .await
}

pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_with(addr, path, "").await
}

/// As [`http_get`], with extra header lines (each ending in `\r\n`).
pub async fn http_get_with(addr: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// Waits (with the deadline) until `check` holds, polling every `every`.
/// Tries `attempt` until it gives a value (every 50 ms), within `deadline`.
pub async fn eventually_value<T, F, Fut>(what: &str, deadline: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn eventually<F, Fut>(what: &str, deadline: Duration, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Starts the binary with `cwd` as its working directory (and as its
/// `HOME` and `TMPDIR`), waiting for its banner; stdout is drained after.
/// For tests that look at what a node writes to disk.
pub async fn start_in_dir(cwd: &std::path::Path, args: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("TMPDIR", cwd)
        .env("PRESENCE_HUB_NO_DEMO", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = Vec::new();
    let addr = tokio::time::timeout(DEADLINE, async {
        loop {
            let line = lines.next_line().await.expect("read").expect("banner line");
            banner.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest.split_whitespace().next().expect("addr").to_string();
            }
        }
    })
    .await
    .expect("the node prints where it listens");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc {
        child,
        addr,
        banner,
        logs: None,
    }
}
