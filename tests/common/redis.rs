//! A real `redis-server` per test, on a free port, that the test can kill
//! and restart (with its AOF file, or empty). Never a shared server.

use super::tls::TlsFiles;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    cluster: bool,
    /// TLS only (no plain port), client certificates required.
    tls: Option<Arc<TlsFiles>>,
    child: Option<Child>,
}

/// Runs a `redis-cli` command against the server on `port`.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    redis_cli_tls(port, None, args)
}

/// As [`redis_cli`], over TLS when `tls` is given.
pub fn redis_cli_tls(port: u16, tls: Option<&TlsFiles>, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(tls.map(TlsFiles::cli_args).unwrap_or_default())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A port that was free a moment ago, with its cluster bus port (+10 000)
/// free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// With `aof`, every write is appended to disk (appendfsync always), so
    /// a restart comes back with the data.
    pub fn start_with(aof: bool) -> RedisServer {
        RedisServer::start_on(aof, None)
    }

    /// A server that speaks only TLS, with `tls`'s certificates.
    pub fn start_tls(tls: Arc<TlsFiles>) -> RedisServer {
        RedisServer::start_on(false, Some(tls))
    }

    fn start_on(aof: bool, tls: Option<Arc<TlsFiles>>) -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("presence-hub-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut server = RedisServer {
            port,
            dir,
            aof,
            cluster: false,
            tls,
            child: None,
        };
        server.spawn_on_a_free_port();
        server
    }

    /// Starts the server on its port; panics unless it answers there.
    fn spawn(&mut self) {
        assert!(
            self.launch(),
            "redis-server exited at start on port {}",
            self.port
        );
    }

    /// Starts the server; `false` when it exited instead of answering.
    fn launch(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            Some(tls) => cmd.args(tls.server_args(self.port)),
            None => cmd.args(["--port", &self.port.to_string()]),
        };
        cmd.args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster && self.tls.is_some() {
            cmd.args(["--tls-cluster", "yes"]);
        }
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                // Replicas sync at once (the default waits 5 s for more).
                "--repl-diskless-sync-delay",
                "0",
            ]);
        }
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Starts the server on a free port, on another one if the first was
    /// taken between [`free_port`] and the server's bind (other test
    /// processes open ephemeral ports meanwhile): the server then exits.
    fn spawn_on_a_free_port(&mut self) {
        for _ in 0..5 {
            if self.launch() {
                return;
            }
            self.port = if self.cluster {
                free_cluster_port()
            } else {
                free_port()
            };
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Whether the server process has ended.
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Waits until the server answers PING; `false` when it exited instead.
    fn wait_ready(&mut self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.pings() {
                return true;
            }
            if self.exited() {
                return false;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not come up on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        if self.tls.is_some() {
            return self.cli(&["ping"]) == "PONG";
        }
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        use std::io::{Read, Write};
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 64];
        s.write_all(b"PING\r\n").is_ok()
            && matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// `kill -9`: no shutdown save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory (AOF data comes back
    /// when enabled; otherwise the store is empty).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs a `redis-cli` command against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli_tls(self.port, self.tls.as_deref(), args)
    }

    /// Sends the server a signal (`STOP`, `CONT`, …).
    pub fn signal(&self, sig: &str) {
        super::process::signal(self.child.as_ref().expect("a running server").id(), sig);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 3-shard Redis Cluster, created with `redis-cli --cluster create`:
/// no replicas, or two per master ([`RedisCluster::start_with_replicas`];
/// then `shards` holds all nine servers, masters and replicas alike).
pub struct RedisCluster {
    pub shards: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        RedisCluster::create(0, None)
    }

    /// 3 masters that speak only TLS, the cluster bus included.
    pub fn start_tls(tls: Arc<TlsFiles>) -> RedisCluster {
        RedisCluster::create(0, Some(tls))
    }

    /// 3 masters with 2 replicas each (`--cluster-replicas 2`), for
    /// failovers: a promoted replica still has a replica of its own.
    pub fn start_with_replicas() -> RedisCluster {
        RedisCluster::create(2, None)
    }

    fn create(replicas: usize, tls: Option<Arc<TlsFiles>>) -> RedisCluster {
        let shards: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                let port = free_cluster_port();
                let dir = std::env::temp_dir().join(format!(
                    "presence-hub-rcluster-{}-{port}",
                    std::process::id()
                ));
                std::fs::create_dir_all(&dir).expect("dir");
                let mut s = RedisServer {
                    port,
                    dir,
                    aof: false,
                    cluster: true,
                    tls: tls.clone(),
                    child: None,
                };
                s.spawn_on_a_free_port();
                s
            })
            .collect();
        let addrs: Vec<String> = shards
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(tls.as_deref().map(TlsFiles::cli_args).unwrap_or_default())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !shards
            .iter()
            .all(|s| s.cli(&["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the cluster did not become ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Replicas in sync with their masters.
        while !shards.iter().all(|s| {
            let info = s.cli(&["info", "replication"]);
            info.contains("role:master") || info.contains("master_link_status:up")
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "the replicas did not sync"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisCluster { shards }
    }

    /// Seed URLs for `--redis-url` with `--redis-cluster`.
    pub fn seeds(&self) -> String {
        self.shards
            .iter()
            .map(|s| s.url())
            .collect::<Vec<_>>()
            .join(",")
    }
}
