//! Certificates for Redis over TLS, made fresh by each test (rcgen): a CA,
//! one certificate that every `redis-server` (and sentinel) presents — for
//! `localhost` and 127.0.0.1, usable as a client certificate too, since
//! replicas and sentinels connect to their master with it — and the hub's
//! client certificate. Nothing is read from the machine's trust store.

use std::path::{Path, PathBuf};

pub struct TlsFiles {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A second CA, which signed nothing here: trusting it alone must fail.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("CA certificate");
    (rcgen::Issuer::new(params, key), cert.pem())
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    name: &str,
    sans: &[&str],
) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose};
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, issuer).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

impl TlsFiles {
    pub fn generate() -> TlsFiles {
        let dir = std::env::temp_dir().join(format!(
            "presence-hub-tls-{}-{}",
            std::process::id(),
            super::redis::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("tls dir");
        let (issuer, ca_pem) = ca("presence-hub test CA");
        let (_, other_pem) = ca("some other CA");
        let (server_pem, server_key) = leaf(&issuer, "redis", &["localhost", "127.0.0.1"]);
        let (client_pem, client_key) = leaf(&issuer, "presence-hub", &[]);
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        TlsFiles {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_pem),
            server_cert: write("redis.pem", &server_pem),
            server_key: write("redis.key", &server_key),
            client_cert: write("hub.pem", &client_pem),
            client_key: write("hub.key", &client_key),
            dir,
        }
    }

    /// `redis-server` (or sentinel) flags: TLS only on `port`, client
    /// certificates required, replication and the cluster bus over TLS.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            p(&self.server_cert),
            "--tls-key-file".into(),
            p(&self.server_key),
            "--tls-ca-cert-file".into(),
            p(&self.ca),
            "--tls-auth-clients".into(),
            "yes".into(),
            "--tls-replication".into(),
            "yes".into(),
        ]
    }

    /// The same, as lines of a sentinel's configuration file.
    pub fn sentinel_conf(&self, port: u16) -> String {
        format!(
            "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
             tls-ca-cert-file {}\ntls-auth-clients yes\ntls-replication yes\n",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca.display()
        )
    }

    /// `redis-cli` flags to reach those servers.
    pub fn cli_args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--tls".into(),
            "--cacert".into(),
            p(&self.ca),
            "--cert".into(),
            p(&self.server_cert),
            "--key".into(),
            p(&self.server_key),
        ]
    }

    /// The hub's flags: the CA, and its own client certificate.
    pub fn hub_args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--redis-tls-ca".into(),
            p(&self.ca),
            "--redis-tls-cert".into(),
            p(&self.client_cert),
            "--redis-tls-key".into(),
            p(&self.client_key),
        ]
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
