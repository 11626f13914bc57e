//! Keys from an identity provider: the JSON Web Key Set at `--jwt-jwks-url`,
//! or the one `--oidc-issuer`'s discovery document names.
//!
//! The hello path only reads a cache ([`KeySet::key`]): a token whose `kid`
//! is cached and fresh costs a map lookup. A `kid` the cache does not hold,
//! or a cache past its age, starts one fetch in the background that every
//! token arriving meanwhile shares; a token waits for it at most the fetch
//! timeout. Fetches are rate-limited (at most one per `--jwks-min-refresh-ms`)
//! so a flood of made-up `kid`s cannot hammer the identity provider: when a
//! fetch is not allowed yet, the token is judged on the keys in hand.
//!
//! A failed fetch keeps the keys already held (an identity provider that is
//! down does not sign everyone out); a successful one replaces them whole,
//! so a key the provider removed is gone at the next refresh. A node whose
//! first fetch fails still starts: it retries in the background and refuses
//! tokens until keys arrive.
//!
//! Only asymmetric keys are taken (RSA, EC P-256/P-384, Ed25519): a
//! symmetric (`oct`) key in a key set would let anyone who can read the set
//! sign tokens, so such keys are skipped, and `none` is no algorithm at all.
//! Everything fetched is bounded: the response size ([`MAX_BYTES`]), the
//! number of keys ([`MAX_KEYS`]), the time (the fetch timeout).

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest discovery document or key set read (real ones are a few KiB).
pub const MAX_BYTES: usize = 256 * 1024;
/// Most keys kept from one key set (providers publish two or three).
pub const MAX_KEYS: usize = 64;

/// Where the keys are published.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--oidc-issuer`: `<issuer>/.well-known/openid-configuration` names
    /// the key set (`jwks_uri`); its `issuer` must be this one.
    Discovery { issuer: String },
    /// `--jwt-jwks-url`: the key set itself.
    Url(String),
}

/// How the keys are fetched and kept.
#[derive(Clone, Debug)]
pub struct Settings {
    pub source: Source,
    /// PEM certificate authorities trusted for the provider instead of the
    /// system's roots (`--oidc-ca`).
    pub ca: Option<PathBuf>,
    /// At most one fetch per this interval.
    pub min_refresh: Duration,
    /// Longest a key set is used before it is fetched again (a shorter
    /// `Cache-Control: max-age` wins, though never below `min_refresh`).
    pub max_age: Duration,
    /// Longest one fetch (discovery and key set) may take, and so the
    /// longest a token waits for it.
    pub fetch_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("{0} is plain http to a host that is not loopback: the keys that sign tokens must come over https")]
    Insecure(String),
    #[error("cannot read --oidc-ca {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url}: the discovery document names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error("no answer within {0} ms")]
    Timeout(u128),
}

/// A verification key and the algorithms it may verify.
pub struct Key {
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

/// The keys in hand.
#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<Key>>,
    /// When the set is to be fetched again; `None` before the first fetch.
    expires: Option<Instant>,
}

#[derive(Default)]
struct RefreshState {
    in_flight: bool,
    last_start: Option<Instant>,
}

/// The provider's key set, cached and refreshed (see the module docs).
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    client: reqwest::Client,
    cache: parking_lot::RwLock<Arc<Cache>>,
    /// The discovered `jwks_uri` (discovery runs until it succeeds once).
    jwks_uri: parking_lot::Mutex<Option<String>>,
    state: parking_lot::Mutex<RefreshState>,
    /// Bumped when a fetch ends, however it ended: what waiting tokens await.
    done: tokio::sync::watch::Sender<u64>,
}

impl KeySet {
    /// Checks the settings and starts fetching in the background (the node
    /// does not wait for the provider). Must run inside a Tokio runtime.
    pub fn start(settings: Settings) -> Result<KeySet, JwksError> {
        let first = match &settings.source {
            Source::Discovery { issuer } => discovery_url(issuer),
            Source::Url(url) => url.clone(),
        };
        check_url(&first)?;
        // reqwest uses the process's rustls provider: ring, as for Redis.
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            // A redirect could lead to plain http elsewhere: none followed.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.ca {
            let ca_error = |reason: String| JwksError::Ca {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no certificate in it".into()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| JwksError::Client(e.to_string()))?;
        let set = KeySet {
            inner: Arc::new(Inner {
                settings,
                client,
                cache: parking_lot::RwLock::new(Arc::new(Cache::default())),
                jwks_uri: parking_lot::Mutex::new(None),
                state: parking_lot::Mutex::new(RefreshState::default()),
                done: tokio::sync::watch::Sender::new(0),
            }),
        };
        set.fetch_until_loaded();
        Ok(set)
    }

    /// The key named `kid`, fetching the set again when the key is unknown
    /// or the set has aged out (rate-limited; awaited at most the fetch
    /// timeout). `None`: no such key, as far as can be told now.
    pub async fn key(&self, kid: &str) -> Option<Arc<Key>> {
        if let (Some(key), true) = self.cached(kid) {
            return Some(key);
        }
        let mut done = self.inner.done.subscribe();
        if self.start_fetch() {
            let _ = tokio::time::timeout(self.inner.settings.fetch_timeout, done.changed()).await;
        }
        // After a fetch, or when none is allowed yet: the keys in hand,
        // which after a failed fetch may be older than their age.
        self.cached(kid).0
    }

    /// The cached key and whether the set is fresh.
    fn cached(&self, kid: &str) -> (Option<Arc<Key>>, bool) {
        let cache = self.inner.cache.read().clone();
        let fresh = cache.expires.is_some_and(|at| Instant::now() < at);
        (cache.keys.get(kid).cloned(), fresh)
    }

    /// Starts a fetch unless one runs (then it is joined: `true`) or the
    /// last one started less than `min_refresh` ago (`false`).
    fn start_fetch(&self) -> bool {
        let mut state = self.inner.state.lock();
        if state.in_flight {
            return true;
        }
        if state
            .last_start
            .is_some_and(|at| at.elapsed() < self.inner.settings.min_refresh)
        {
            return false;
        }
        state.in_flight = true;
        state.last_start = Some(Instant::now());
        let inner = self.inner.clone();
        // Spawned, not run by the token that asked: a client that hangs up
        // must not cancel the fetch every other token is waiting for.
        tokio::spawn(async move {
            let timeout = inner.settings.fetch_timeout;
            let outcome = match tokio::time::timeout(timeout, inner.fetch()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(JwksError::Timeout(timeout.as_millis())),
            };
            let metrics = crate::metrics::get();
            match outcome {
                Ok(cache) => {
                    metrics.jwks_fetched(true);
                    metrics.jwks_keys.set(cache.keys.len() as f64);
                    tracing::info!(keys = cache.keys.len(), "identity provider keys fetched");
                    *inner.cache.write() = Arc::new(cache);
                }
                Err(e) => {
                    metrics.jwks_fetched(false);
                    tracing::warn!(error = %e, "cannot fetch the identity provider's keys (the keys in hand are kept)");
                }
            }
            inner.state.lock().in_flight = false;
            inner.done.send_modify(|n| *n += 1);
        });
        true
    }

    /// Until the first key set arrives, tries again each `min_refresh`
    /// (never more often than every 100 ms): a node started before its identity
    /// provider gets keys without waiting for a token to ask.
    fn fetch_until_loaded(&self) {
        let set = self.clone();
        let pause = set
            .inner
            .settings
            .min_refresh
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                let mut done = set.inner.done.subscribe();
                if set.start_fetch() {
                    let _ = done.changed().await;
                }
                if set.inner.cache.read().expires.is_some() {
                    return;
                }
                tokio::time::sleep(pause).await;
            }
        });
    }
}

impl Inner {
    /// One fetch: discovery if still needed, then the key set. A key set
    /// that cannot be fetched is looked up again next time (the provider
    /// may have moved it).
    async fn fetch(&self) -> Result<Cache, JwksError> {
        let fetched = self.fetch_once().await;
        if fetched.is_err() {
            *self.jwks_uri.lock() = None;
        }
        fetched
    }

    async fn fetch_once(&self) -> Result<Cache, JwksError> {
        let url = match &self.settings.source {
            Source::Url(url) => url.clone(),
            Source::Discovery { issuer } => {
                let known = self.jwks_uri.lock().clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = self.discover(issuer).await?;
                        *self.jwks_uri.lock() = Some(url.clone());
                        url
                    }
                }
            }
        };
        let (body, max_age) = self.get(&url).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| JwksError::Fetch {
            url: url.clone(),
            reason: format!("not a JSON Web Key Set: {e}"),
        })?;
        let keys = usable_keys(&set.keys);
        if keys.len() > MAX_KEYS {
            return Err(JwksError::Fetch {
                url,
                reason: format!("{} keys, more than the {MAX_KEYS} kept", keys.len()),
            });
        }
        let s = &self.settings;
        let age = max_age.map_or(s.max_age, |cc| cc.max(s.min_refresh).min(s.max_age));
        Ok(Cache {
            keys,
            expires: Some(Instant::now() + age),
        })
    }

    /// The `jwks_uri` of `issuer`'s discovery document.
    async fn discover(&self, issuer: &str) -> Result<String, JwksError> {
        #[derive(serde::Deserialize)]
        struct Document {
            issuer: String,
            jwks_uri: String,
        }
        let url = discovery_url(issuer);
        let (body, _) = self.get(&url).await?;
        let doc: Document = serde_json::from_slice(&body).map_err(|e| JwksError::Fetch {
            url: url.clone(),
            reason: format!("not an OpenID Provider configuration: {e}"),
        })?;
        // OpenID Connect Discovery §4.3: exactly the issuer asked for, or
        // an impostor's document could name its own keys.
        if doc.issuer != issuer {
            return Err(JwksError::IssuerMismatch {
                url,
                found: doc.issuer,
                expected: issuer.to_string(),
            });
        }
        check_url(&doc.jwks_uri)?;
        Ok(doc.jwks_uri)
    }

    /// GETs `url`, at most [`MAX_BYTES`]; the body and the response's
    /// `Cache-Control: max-age`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), JwksError> {
        check_url(url)?;
        let fail = |reason: String| JwksError::Fetch {
            url: url.to_string(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BYTES as u64)
        {
            return Err(fail(format!("larger than {MAX_BYTES} bytes")));
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(cache_control_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(fail(format!("larger than {MAX_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// `https://` anywhere; `http://` only to a loopback host (a provider on
/// the same machine, a test): over plain http anyone on the path could swap
/// in their own keys and sign any token.
pub fn check_url(url: &str) -> Result<(), JwksError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| JwksError::BadUrl(url.to_string()))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(JwksError::Insecure(url.to_string()))
            }
        }
        _ => Err(JwksError::BadUrl(url.to_string())),
    }
}

/// `max-age=N` of one `Cache-Control` header value.
fn cache_control_max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// The signing keys of a set, by `kid`. Skipped: keys without a `kid`
/// (tokens choose by it), keys for encryption, symmetric keys, curves and
/// algorithms not supported, and keys that do not parse.
fn usable_keys(jwks: &[Jwk]) -> HashMap<String, Arc<Key>> {
    let mut keys = HashMap::new();
    for jwk in jwks {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let family: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                &[Algorithm::EdDSA]
            }
            // `oct` (HMAC) and anything else: never.
            _ => continue,
        };
        // A key that names its algorithm verifies that one only.
        let algorithms: Vec<Algorithm> = match &jwk.common.key_algorithm {
            None => family.to_vec(),
            Some(named) => {
                let named = serde_json::to_value(named)
                    .ok()
                    .and_then(|v| v.as_str().and_then(|s| Algorithm::from_str(s).ok()));
                match named {
                    Some(alg) if family.contains(&alg) => vec![alg],
                    _ => continue,
                }
            }
        };
        let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
            tracing::warn!(
                kid = kid.as_str(),
                "a key of the key set does not parse: skipped"
            );
            continue;
        };
        keys.entry(kid.clone()).or_insert(Arc::new(Key {
            decoding,
            algorithms,
        }));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com/keys",
            "http://127.0.0.1:9/keys",
            "http://localhost:9/k",
            "http://[::1]:9/k",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/keys",
            "http://10.0.0.1/k",
            "ftp://127.0.0.1/k",
            "keys",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_control_max_age_is_read() {
        assert_eq!(
            cache_control_max_age("public, max-age=300, must-revalidate"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(cache_control_max_age("no-store"), None);
    }

    #[test]
    fn symmetric_keys_and_keys_without_kid_are_skipped() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "enc", "crv": "P-256", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .expect("a key set");
        let keys = usable_keys(&set.keys);
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["e"]);
        assert_eq!(keys["e"].algorithms, vec![Algorithm::ES256]);
    }

    /// Tokens arriving while a fetch runs share it: twenty lookups of an
    /// unknown `kid`, one request at the provider.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_share_one_fetch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let app = {
            let (hits, gate) = (hits.clone(), gate.clone());
            axum::Router::new().route(
                "/keys",
                axum::routing::get(move || {
                    let (hits, gate) = (hits.clone(), gate.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        // Held until the test has asked twenty times. The
                        // permit is used up, not handed back: otherwise the
                        // first fetch's would let the second through early,
                        // and a lookup polled after it would start a third.
                        if let Ok(permit) = gate.acquire().await {
                            permit.forget();
                        }
                        r#"{"keys":[]}"#
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let set = KeySet::start(Settings {
            source: Source::Url(format!("http://{addr}/keys")),
            ca: None,
            min_refresh: Duration::ZERO,
            max_age: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(10),
        })
        .expect("settings");
        // The first fetch (at start) finds an empty set.
        gate.add_permits(1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while set.inner.cache.read().expires.is_none() {
            assert!(Instant::now() < deadline, "no first fetch");
            tokio::task::yield_now().await;
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let lookups = futures_util::future::join_all((0..20).map(|_| set.key("nope")));
        tokio::pin!(lookups);
        // One poll: every lookup has asked before the provider answers.
        tokio::select! {
            biased;
            _ = &mut lookups => panic!("answered before the provider did"),
            _ = std::future::ready(()) => {}
        }
        gate.add_permits(100);
        let found = lookups.await;
        assert!(found.iter().all(Option::is_none));
        assert_eq!(hits.load(Ordering::SeqCst), 2, "one shared fetch");
    }
}
