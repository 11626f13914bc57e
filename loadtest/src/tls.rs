//! `--redis-tls`: a CA and a certificate for `localhost`/127.0.0.1 made for
//! the run (rcgen), so the spawned Redis and its replicas speak only TLS
//! and the nodes verify them with `--redis-tls-ca`. Removed with the run.

use std::path::PathBuf;

pub struct Files {
    dir: PathBuf,
    pub ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    pub fn generate() -> Result<Files, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let e = |e: rcgen::Error| e.to_string();
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "presence-loadtest CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca.self_signed(&ca_key).map_err(e)?.pem();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(e)?;
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(e)?;
        let cert_pem = leaf.signed_by(&key, &issuer).map_err(e)?.pem();
        let dir =
            std::env::temp_dir().join(format!("presence-loadtest-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        };
        Ok(Files {
            ca: write("ca.pem", &ca_pem)?,
            cert: write("redis.pem", &cert_pem)?,
            key: write("redis.key", &key.serialize_pem())?,
            dir,
        })
    }

    /// `redis-cli` flags to reach the TLS servers.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.display().to_string(),
        ]
    }
}

/// `redis-server` flags to listen on `port`: plain, or TLS only (with
/// replication over TLS; clients need no certificate of their own).
pub fn listen_args(tls: Option<&Files>, port: u16) -> Vec<String> {
    match tls {
        None => vec!["--port".into(), port.to_string()],
        Some(f) => vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            f.cert.display().to_string(),
            "--tls-key-file".into(),
            f.key.display().to_string(),
            "--tls-ca-cert-file".into(),
            f.ca.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
            "--tls-replication".into(),
            "yes".into(),
        ],
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
