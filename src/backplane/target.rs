//! Where the shared Redis is and how to reach it: one server, the seed
//! nodes of a Redis Cluster, or the sentinels of a Sentinel-managed master;
//! with an ACL user and password, and TLS (README "Redis over TLS").
//!
//! A [`Target`] is what the flags say. [`Target::prepare`] reads the TLS
//! files and checks every address once, at start: a mistake there is the
//! operator's and no retry would fix it, so the node exits at once. What a
//! retry can fix — Redis not answering yet, a refused handshake while a
//! managed service rotates its certificates — is left to the connection
//! loop (`crate::node`), which keeps trying with backoff.
//!
//! TLS is rustls (no OpenSSL in the image), with the ring crypto provider,
//! verifying the server's certificate and name against `--redis-tls-ca`
//! or, without it, the system's roots. There is deliberately no way to
//! turn verification off: a test or a private deployment gives its CA.

use ::redis::{ConnectionAddr, IntoConnectionInfo, TlsCertificates};
use std::path::PathBuf;

/// Which Redis the nodes share, as configured.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Kind,
    pub auth: Auth,
    pub tls: Tls,
}

/// The shape of the deployment.
#[derive(Clone, Debug)]
pub enum Kind {
    /// One server (`--redis-url`).
    Single(String),
    /// Seed nodes of a Redis Cluster (`--redis-url` with `--redis-cluster`).
    Cluster(Vec<String>),
    /// The master that sentinels name (`--redis-sentinel`).
    Sentinel {
        /// `HOST:PORT` of each sentinel.
        sentinels: Vec<String>,
        /// The name the sentinels monitor the master under.
        master: String,
    },
}

/// Credentials. A username or password given here wins over one written in
/// the URL (so that neither needs to appear in a URL on a command line).
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// ACL user of the data nodes (`AUTH user pass`); `default` when unset.
    pub username: Option<String>,
    pub password: Option<String>,
    /// ACL user and password of the sentinels, if they require them.
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

/// TLS as configured: on by `--redis-tls` or a `rediss://` URL.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    pub enabled: bool,
    /// PEM certificate authorities to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) and its key, for servers that ask for
    /// one (`tls-auth-clients yes`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A configuration no retry would fix.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A [`Target`] whose files were read and addresses checked: what each
/// connection attempt starts from.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub kind: PreparedKind,
    pub auth: Auth,
    /// Set when TLS is on and a CA or a client certificate was given; with
    /// TLS on and neither, the system's roots verify the server.
    pub certs: Option<TlsCertificates>,
    pub tls: bool,
}

#[derive(Clone, Debug)]
pub enum PreparedKind {
    Single(::redis::ConnectionInfo),
    Cluster(Vec<::redis::ConnectionInfo>),
    Sentinel {
        sentinels: Vec<ConnectionAddr>,
        master: String,
    },
}

impl Target {
    /// Reads the TLS files and checks the addresses (see the module docs).
    pub fn prepare(&self) -> Result<Prepared, TargetError> {
        crate::tls::install_crypto_provider();
        let (kind, tls) = match &self.kind {
            Kind::Single(url) => {
                let (info, tls) = self.connection_info(url)?;
                (PreparedKind::Single(info), tls)
            }
            Kind::Cluster(seeds) => {
                let mut infos = Vec::with_capacity(seeds.len());
                let mut schemes = std::collections::BTreeSet::new();
                for seed in seeds {
                    let (info, tls) = self.connection_info(seed)?;
                    schemes.insert(tls);
                    infos.push(info);
                }
                if schemes.len() > 1 {
                    return Err(TargetError::Invalid(
                        "--redis-url mixes redis:// and rediss:// seed nodes: a cluster speaks TLS on every node or none".into(),
                    ));
                }
                let Some(&tls) = schemes.first() else {
                    return Err(TargetError::Invalid(
                        "--redis-url names no Redis Cluster seed node".into(),
                    ));
                };
                (PreparedKind::Cluster(infos), tls)
            }
            Kind::Sentinel { sentinels, master } => {
                let sentinels = sentinels
                    .iter()
                    .map(|s| sentinel_addr(s, self.tls.enabled))
                    .collect::<Result<Vec<_>, _>>()?;
                if sentinels.is_empty() {
                    return Err(TargetError::Invalid(
                        "--redis-sentinel names no sentinel".into(),
                    ));
                }
                if master.is_empty() {
                    return Err(TargetError::Invalid(
                        "--redis-sentinel needs --redis-sentinel-master".into(),
                    ));
                }
                let kind = PreparedKind::Sentinel {
                    sentinels,
                    master: master.clone(),
                };
                (kind, self.tls.enabled)
            }
        };
        self.files_need_tls(tls)?;
        Ok(Prepared {
            kind,
            auth: self.auth.clone(),
            certs: self.tls.certificates()?,
            tls,
        })
    }

    /// A CA or client certificate with TLS off is a mistake (the operator
    /// meant TLS), not something to ignore.
    fn files_need_tls(&self, tls: bool) -> Result<(), TargetError> {
        if !tls && self.tls.has_files() {
            return Err(TargetError::Invalid(
                "--redis-tls-ca/--redis-tls-cert given but TLS is off: add --redis-tls or use rediss://".into(),
            ));
        }
        Ok(())
    }

    /// A URL's connection info, switched to TLS by `--redis-tls`, with the
    /// flags' credentials; and whether it speaks TLS.
    fn connection_info(&self, url: &str) -> Result<(::redis::ConnectionInfo, bool), TargetError> {
        let url = url.trim();
        let url = match url.strip_prefix("redis://") {
            Some(rest) if self.tls.enabled => format!("rediss://{rest}"),
            _ => url.to_string(),
        };
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| TargetError::Invalid(format!("--redis-url {}: {e}", redact(&url))))?;
        let tls = match info.addr() {
            ConnectionAddr::TcpTls { .. } => true,
            ConnectionAddr::Tcp(..) => false,
            ConnectionAddr::Unix(_) => {
                if self.tls.enabled {
                    return Err(TargetError::Invalid(
                        "--redis-tls: a Unix socket does not speak TLS".into(),
                    ));
                }
                false
            }
            // `ConnectionAddr` is non-exhaustive.
            _ => false,
        };
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &self.auth.username {
            redis = redis.set_username(user);
        }
        if let Some(pw) = &self.auth.password {
            redis = redis.set_password(pw);
        }
        let info = info
            .set_redis_settings(redis.set_protocol(::redis::ProtocolVersion::RESP3))
            // Commands and pushes are small: no Nagle delay on them.
            .set_tcp_settings(::redis::io::tcp::TcpSettings::default().set_nodelay(true));
        Ok((info, tls))
    }
}

impl Tls {
    /// The CA and client certificate read from their files, if any was
    /// given. Parsed here too (not only at the first connection), so a
    /// wrong file is named at start.
    fn certificates(&self) -> Result<Option<TlsCertificates>, TargetError> {
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|source| TargetError::Read {
                what,
                path: path.clone(),
                source,
            })
        };
        let root_cert = self
            .ca
            .as_ref()
            .map(|p| read("the Redis CA file (--redis-tls-ca)", p))
            .transpose()?;
        let client_tls = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some(::redis::ClientTlsConfig {
                client_cert: read("the Redis client certificate (--redis-tls-cert)", cert)?,
                client_key: read("the Redis client key (--redis-tls-key)", key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(TargetError::Invalid(
                    "--redis-tls-cert and --redis-tls-key go together".into(),
                ))
            }
        };
        if root_cert.is_none() && client_tls.is_none() {
            return Ok(None);
        }
        let certs = TlsCertificates {
            client_tls,
            root_cert,
        };
        check_pem(&certs)?;
        Ok(Some(certs))
    }

    /// Whether any TLS file was given (they make no sense without TLS).
    pub fn has_files(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// Parses the PEM the way the connection will, so a broken file fails the
/// start with its name rather than every connection attempt.
fn check_pem(certs: &TlsCertificates) -> Result<(), TargetError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if let Some(ca) = &certs.root_cert {
        let mut store = rustls::RootCertStore::empty();
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| {
                TargetError::Invalid(format!("--redis-tls-ca: not a PEM certificate: {e}"))
            })?;
            store.add(cert).map_err(|e| {
                TargetError::Invalid(format!("--redis-tls-ca: not a usable CA certificate: {e}"))
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(TargetError::Invalid(
                "--redis-tls-ca: the file holds no PEM certificate".into(),
            ));
        }
    }
    if let Some(client) = &certs.client_tls {
        let chain = CertificateDer::pem_slice_iter(&client.client_cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                TargetError::Invalid(format!("--redis-tls-cert: not a PEM certificate: {e}"))
            })?;
        if chain.is_empty() {
            return Err(TargetError::Invalid(
                "--redis-tls-cert: the file holds no PEM certificate".into(),
            ));
        }
        PrivateKeyDer::from_pem_slice(&client.client_key).map_err(|e| {
            TargetError::Invalid(format!("--redis-tls-key: not a PEM private key: {e}"))
        })?;
    }
    Ok(())
}

/// `HOST:PORT` (or `[V6]:PORT`) of a sentinel.
fn sentinel_addr(s: &str, tls: bool) -> Result<ConnectionAddr, TargetError> {
    let bad = || {
        TargetError::Invalid(format!(
            "--redis-sentinel {s:?}: expected HOST:PORT (a sentinel's address, not a URL)"
        ))
    };
    let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok(if tls {
        ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_string(), port)
    })
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<credentials>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: Kind, tls: Tls) -> Target {
        Target {
            kind,
            auth: Auth::default(),
            tls,
        }
    }

    #[test]
    fn redis_tls_turns_a_plain_url_into_tls() {
        let t = target(
            Kind::Single("redis://127.0.0.1:6390".into()),
            Tls {
                enabled: true,
                ..Tls::default()
            },
        );
        let p = t.prepare().expect("valid");
        let PreparedKind::Single(info) = p.kind else {
            panic!("single")
        };
        assert!(matches!(info.addr(), ConnectionAddr::TcpTls { .. }));
        assert!(p.tls);
    }

    #[test]
    fn flags_credentials_win_over_the_urls() {
        let mut t = target(
            Kind::Single("redis://u:p@127.0.0.1:1".into()),
            Tls::default(),
        );
        t.auth.username = Some("hub".into());
        t.auth.password = Some("secret".into());
        let PreparedKind::Single(info) = t.prepare().expect("valid").kind else {
            panic!("single")
        };
        assert_eq!(info.redis_settings().username(), Some("hub"));
        assert_eq!(info.redis_settings().password(), Some("secret"));
    }

    #[test]
    fn mistakes_no_retry_fixes_are_refused_at_start() {
        let cases = [
            target(
                Kind::Cluster(vec!["redis://a:1".into(), "rediss://b:2".into()]),
                Tls::default(),
            ),
            target(Kind::Single("http://x".into()), Tls::default()),
            target(
                Kind::Sentinel {
                    sentinels: vec!["redis://a:1".into()],
                    master: "m".into(),
                },
                Tls::default(),
            ),
            target(
                Kind::Single("rediss://a:1".into()),
                Tls {
                    enabled: true,
                    ca: Some("/nonexistent/ca.pem".into()),
                    ..Tls::default()
                },
            ),
            target(
                Kind::Single("rediss://a:1".into()),
                Tls {
                    enabled: true,
                    cert: Some("/nonexistent/c.pem".into()),
                    ..Tls::default()
                },
            ),
        ];
        for t in cases {
            assert!(t.prepare().is_err(), "{t:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_pem_is_named() {
        let dir = std::env::temp_dir().join(format!("ph-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("write");
        let t = target(
            Kind::Single("rediss://a:1".into()),
            Tls {
                enabled: true,
                ca: Some(ca),
                ..Tls::default()
            },
        );
        let e = t.prepare().expect_err("not PEM").to_string();
        assert!(e.contains("--redis-tls-ca"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sentinel_addresses() {
        assert!(matches!(
            sentinel_addr("[::1]:26379", false),
            Ok(ConnectionAddr::Tcp(h, 26379)) if h == "::1"
        ));
        assert!(matches!(
            sentinel_addr("s1:26379", true),
            Ok(ConnectionAddr::TcpTls { port: 26379, .. })
        ));
        assert!(sentinel_addr("s1", false).is_err());
        assert!(sentinel_addr("s1:x", false).is_err());
    }

    #[test]
    fn messages_never_show_a_password() {
        assert_eq!(
            redact("rediss://hub:s3cret@redis:6380/0"),
            "rediss://<credentials>@redis:6380/0"
        );
    }
}
