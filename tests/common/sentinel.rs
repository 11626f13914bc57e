//! A Sentinel-managed Redis for tests: a master, two replicas and three
//! `redis-server --sentinel` processes (quorum 2, fast failure detection)
//! on free ports, with their config files in a temp dir. Killed with
//! SIGKILL, never shared.

use super::redis::{free_port, redis_cli_tls};
use super::tls::TlsFiles;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name the sentinels monitor the master under.
pub const MASTER: &str = "hub";

pub struct Daemon {
    pub port: u16,
    child: Option<Child>,
    tls: Option<Arc<TlsFiles>>,
}

impl Daemon {
    fn spawn(cmd: &mut Command, port: u16, tls: Option<Arc<TlsFiles>>) -> Daemon {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let d = Daemon {
            port,
            child: Some(child),
            tls,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.cli(&["ping"]) != "PONG" {
            assert!(Instant::now() < deadline, "no PONG from port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli_tls(self.port, self.tls.as_deref(), args)
    }

    /// Sends the daemon a signal (`STOP`, `CONT`, …).
    pub fn signal(&self, sig: &str) {
        super::process::signal(self.child.as_ref().expect("a running daemon").id(), sig);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct SentinelSet {
    pub master: Daemon,
    pub replicas: Vec<Daemon>,
    pub sentinels: Vec<Daemon>,
    dir: PathBuf,
}

fn server(
    dir: &PathBuf,
    port: u16,
    replica_of: Option<u16>,
    tls: &Option<Arc<TlsFiles>>,
) -> Daemon {
    let mut cmd = Command::new("redis-server");
    match tls {
        Some(tls) => cmd.args(tls.server_args(port)),
        None => cmd.args(["--port", &port.to_string()]),
    };
    cmd.args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        // A replica syncs at once (the default waits 5 s for more replicas).
        .args([
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .arg("--dir")
        .arg(dir);
    if let Some(master) = replica_of {
        cmd.args(["--replicaof", "127.0.0.1", &master.to_string()]);
    }
    Daemon::spawn(&mut cmd, port, tls.clone())
}

/// The value after `field` in redis-cli's one-item-per-line output.
fn field(out: &str, name: &str) -> Option<String> {
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next().map(str::to_string);
        }
    }
    None
}

impl SentinelSet {
    pub fn start() -> SentinelSet {
        SentinelSet::start_on(None)
    }

    /// Every server and sentinel speaking only TLS, with client
    /// certificates required.
    pub fn start_tls(tls: Arc<TlsFiles>) -> SentinelSet {
        SentinelSet::start_on(Some(tls))
    }

    fn start_on(tls: Option<Arc<TlsFiles>>) -> SentinelSet {
        let dir = std::env::temp_dir().join(format!(
            "presence-hub-sentinel-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let master = server(&dir, free_port(), None, &tls);
        let replicas: Vec<Daemon> = (0..2)
            .map(|i| {
                let d = dir.join(format!("replica{i}"));
                std::fs::create_dir_all(&d).expect("dir");
                server(&d, free_port(), Some(master.port), &tls)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !replicas.iter().all(|r| {
            r.cli(&["info", "replication"])
                .contains("master_link_status:up")
        }) {
            assert!(Instant::now() < deadline, "replicas did not sync");
            std::thread::sleep(Duration::from_millis(20));
        }
        let sentinels: Vec<Daemon> = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.join(format!("sentinel{i}.conf"));
                let listen = match &tls {
                    Some(tls) => tls.sentinel_conf(port),
                    None => format!("port {port}\n"),
                };
                std::fs::write(
                    &conf,
                    format!(
                        "{listen}bind 127.0.0.1\ndir {}\n\
                         sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                         sentinel down-after-milliseconds {MASTER} 400\n\
                         sentinel failover-timeout {MASTER} 2000\n\
                         sentinel parallel-syncs {MASTER} 2\n",
                        dir.display(),
                        master.port
                    ),
                )
                .expect("sentinel.conf");
                Daemon::spawn(
                    Command::new("redis-server").arg(&conf).arg("--sentinel"),
                    port,
                    tls.clone(),
                )
            })
            .collect();
        // Ready once every sentinel knows both replicas and both others.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sentinels.iter().all(|s| {
            let m = s.cli(&["sentinel", "master", MASTER]);
            field(&m, "num-slaves").as_deref() == Some("2")
                && field(&m, "num-other-sentinels").as_deref() == Some("2")
        }) {
            assert!(
                Instant::now() < deadline,
                "the sentinels did not discover each other and the replicas"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SentinelSet {
            master,
            replicas,
            sentinels,
            dir,
        }
    }

    /// `--redis-sentinel` for the nodes.
    pub fn addrs(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the master the (first live) sentinel names.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            s.cli(&["sentinel", "get-master-addr-by-name", MASTER])
                .lines()
                .nth(1)
                .and_then(|p| p.parse().ok())
        })
    }

    /// The server on `port` (the master or a replica).
    pub fn server(&self, port: u16) -> &Daemon {
        std::iter::once(&self.master)
            .chain(&self.replicas)
            .find(|d| d.port == port)
            .expect("a server of the set")
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for s in &mut self.sentinels {
            s.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
