//! Sign-in through an identity provider (README "Sign-in with your identity
//! provider (OIDC)"): the real binary verifying tokens with the keys a
//! local OpenID provider publishes — discovery, a JSON Web Key Set the test
//! rotates, takes down and floods — served in-process on a free port.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::process::{http_get_with, Proc};
use common::DEADLINE;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIRECTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/directory.json");
const AUDIENCE: &str = "presence-hub";

/// An ECDSA P-256 signing key of the provider, and its public JWK.
struct SigningKey {
    kid: String,
    pem: String,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        // The uncompressed point: 0x04, x, y.
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65);
        SigningKey {
            kid: kid.into(),
            pem: pair.serialize_pem(),
            jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).expect("PEM");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }
}

/// The local identity provider: what it publishes and how often it is asked.
struct Provider {
    issuer: String,
    keys: Arc<parking_lot::Mutex<Vec<Value>>>,
    jwks_hits: Arc<AtomicUsize>,
    /// The key set answers 503 while set.
    down: Arc<std::sync::atomic::AtomicBool>,
    /// Where the key set is, as discovery names it (`/keys` or `/moved-keys`).
    key_path: Arc<parking_lot::Mutex<String>>,
}

impl Provider {
    /// Serves on a free port.
    async fn start(keys: &[&SigningKey]) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Provider::serve(listener, keys)
    }

    /// Serves on `addr` (a port reserved before).
    async fn start_on(addr: std::net::SocketAddr, keys: &[&SigningKey]) -> Provider {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
        Provider::serve(listener, keys)
    }

    /// Serves over HTTPS as `localhost`, with `tls`'s server certificate.
    // ring, as the hub itself (see backplane/target.rs on its deprecation).
    #[allow(deprecated)]
    async fn start_https(tls: &common::tls::TlsFiles, keys: &[&SigningKey]) -> Provider {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(&tls.server_cert)
            .expect("cert file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = PrivateKeyDer::from_pem_file(&tls.server_key).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Provider::serve_with(
            listener,
            keys,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn serve(listener: tokio::net::TcpListener, keys: &[&SigningKey]) -> Provider {
        Provider::serve_with(listener, keys, None)
    }

    fn serve_with(
        listener: tokio::net::TcpListener,
        keys: &[&SigningKey],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Provider {
        let addr = listener.local_addr().expect("addr");
        let issuer = match &tls {
            None => format!("http://{addr}"),
            Some(_) => format!("https://localhost:{}", addr.port()),
        };
        let keys = Arc::new(parking_lot::Mutex::new(
            keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let key_path = Arc::new(parking_lot::Mutex::new("/keys".to_string()));
        // The key set, at `path` while it is the one discovery names.
        let key_set = |path: &'static str| {
            let (keys, hits, down, key_path) = (
                keys.clone(),
                jwks_hits.clone(),
                down.clone(),
                key_path.clone(),
            );
            axum::routing::get(move || async move {
                if *key_path.lock() != path {
                    return Err(axum::http::StatusCode::NOT_FOUND);
                }
                hits.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(axum::Json(json!({"keys": *keys.lock()})))
            })
        };
        let app = {
            let (issuer, key_path) = (issuer.clone(), key_path.clone());
            axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    axum::routing::get(move || async move {
                        let jwks_uri = format!("{issuer}{}", key_path.lock());
                        axum::Json(json!({"issuer": issuer, "jwks_uri": jwks_uri}))
                    }),
                )
                .route("/keys", key_set("/keys"))
                .route("/moved-keys", key_set("/moved-keys"))
        };
        match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            // A client that refuses our certificate ends here.
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            }
        }
        Provider {
            issuer,
            keys,
            jwks_hits,
            down,
            key_path,
        }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Claims the hub accepts: agent a1 of tenant acme.
    fn claims(&self) -> Value {
        json!({"sub": "a1", "tenant": "acme", "iss": self.issuer, "aud": AUDIENCE,
               "exp": now() + 600, "iat": now()})
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The hub trusting `issuer`, with the given extra flags.
async fn hub(issuer: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--directory",
        DIRECTORY,
        "--oidc-issuer",
        issuer,
        "--jwt-audience",
        AUDIENCE,
    ];
    args.extend_from_slice(extra);
    Proc::start_logged(&args, &[]).await
}

/// An agent hello with `token`: `Ok(())` on welcome, else the close code.
async fn hello(node: &Proc, token: &str) -> Result<(), u16> {
    let mut c = common::Client::connect(&node.ws_url()).await;
    c.send(json!({"type": "hello", "token": token, "role": "agent", "device": {"id": "d1", "kind": "web"}}))
        .await;
    match c.try_recv(DEADLINE).await {
        Ok(Some(v)) if v["type"] == "welcome" => Ok(()),
        Ok(Some(v)) => panic!("neither welcome nor a close: {v}"),
        Ok(None) => panic!("no answer to hello"),
        Err(closed) => Err(closed.code),
    }
}

/// Waits until `hello` with `token` gives `want` (deadline: 10 s).
async fn until(node: &Proc, token: &str, want: Result<(), u16>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = hello(node, token).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_rotate_without_a_restart() {
    let (k1, k2) = (SigningKey::generate("k1"), SigningKey::generate("k2"));
    let idp = Provider::start(&[&k1]).await;
    let node = hub(
        &idp.issuer,
        &["--jwks-min-refresh-ms", "0", "--jwks-max-age-ms", "1000"],
    )
    .await;
    let t1 = k1.sign(&idp.claims());
    assert_eq!(hello(&node, &t1).await, Ok(()), "key 1");
    // The agent page's API takes the same tokens.
    let (status, body) = http_get_with(
        &node.addr,
        "/agent/tenant",
        &format!("Authorization: Bearer {t1}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The provider adds key 2: a token naming it makes the hub fetch again.
    idp.publish(&[&k1, &k2]);
    let t2 = k2.sign(&idp.claims());
    assert_eq!(hello(&node, &t2).await, Ok(()), "key 2, no restart");

    // Key 1 withdrawn: refused once the hub's copy of the set aged out.
    idp.publish(&[&k2]);
    until(&node, &t1, Err(4003), "key 1 after its withdrawal").await;
    assert_eq!(hello(&node, &t2).await, Ok(()), "key 2 still");
}

#[tokio::test]
async fn wrong_issuer_audience_or_algorithm_is_refused() {
    let k1 = SigningKey::generate("k1");
    let stranger = SigningKey::generate("k1"); // the same kid, another key
    let idp = Provider::start(&[&k1]).await;
    // A symmetric key in the set: whoever reads the set could sign with it.
    let shared = b"a secret anyone can read";
    idp.keys
        .lock()
        .push(json!({"kty": "oct", "kid": "h1", "k": B64.encode(shared)}));
    let node = hub(&idp.issuer, &[]).await;
    let with = |field: &str, value: Value| {
        let mut claims = idp.claims();
        claims[field] = value;
        claims
    };
    let mut without_aud = idp.claims();
    without_aud.as_object_mut().expect("object").remove("aud");
    let header = |alg: &str| B64.encode(json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
    let payload = B64.encode(idp.claims().to_string());
    // alg confusion: HS256 "signed" with the public key's coordinates.
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("k1".into());
        let secret = k1.jwk.to_string();
        jsonwebtoken::encode(
            &h,
            &idp.claims(),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign")
    };
    let oct = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("h1".into());
        jsonwebtoken::encode(
            &h,
            &idp.claims(),
            &jsonwebtoken::EncodingKey::from_secret(shared),
        )
        .expect("sign")
    };
    let cases = [
        (
            "wrong iss",
            k1.sign(&with("iss", json!("http://evil.example"))),
        ),
        ("wrong aud", k1.sign(&with("aud", json!("another-app")))),
        ("no aud", k1.sign(&without_aud)),
        ("expired", k1.sign(&with("exp", json!(now() - 600)))),
        ("another key, same kid", stranger.sign(&idp.claims())),
        ("alg none", format!("{}.{payload}.", header("none"))),
        ("HS256 with a JWKS", hs256),
        ("HS256 with an oct key of the set", oct),
    ];
    for (what, token) in &cases {
        assert_eq!(hello(&node, token).await, Err(4003), "{what}");
    }
    assert_eq!(hello(&node, &k1.sign(&idp.claims())).await, Ok(()));
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let k1 = SigningKey::generate("k1");
    let idp = Provider::start(&[&k1]).await;
    let node = hub(&idp.issuer, &["--jwks-min-refresh-ms", "60000"]).await;
    assert_eq!(hello(&node, &k1.sign(&idp.claims())).await, Ok(()));
    assert_eq!(idp.hits(), 1, "the fetch at start");
    let floods = (0..30).map(|i| {
        let token = SigningKey::generate(&format!("made-up-{i}")).sign(&idp.claims());
        let node = &node;
        async move { hello(node, &token).await }
    });
    let refused = futures_util::future::join_all(floods).await;
    assert!(refused.iter().all(|r| *r == Err(4003)), "{refused:?}");
    assert_eq!(idp.hits(), 1, "no fetch within --jwks-min-refresh-ms");
    assert_eq!(hello(&node, &k1.sign(&idp.claims())).await, Ok(()));
}

#[tokio::test]
async fn a_node_started_before_its_identity_provider_waits_for_its_keys() {
    let k1 = SigningKey::generate("k1");
    // A port nobody answers on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let issuer = format!("http://{addr}");
    let mut node = hub(&issuer, &["--jwks-min-refresh-ms", "100"]).await;
    let claims =
        json!({"sub": "a1", "tenant": "acme", "iss": issuer, "aud": AUDIENCE, "exp": now() + 600});
    let token = k1.sign(&claims);
    assert_eq!(hello(&node, &token).await, Err(4003), "no keys yet");
    node.log_line(&["cannot fetch the identity provider's keys"])
        .await;

    let idp = Provider::start_on(addr, &[&k1]).await;
    // The node fetches by itself, without a token asking.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "no fetch once the provider is up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.log_line(&["identity provider keys fetched"]).await;
    assert_eq!(hello(&node, &token).await, Ok(()));
}

/// `--jwt-user-claim` and `--jwt-tenant`: a provider whose tokens name the
/// user in another claim and carry no tenant. The claim's value must be a
/// directory user id; `--jwt-jwks-url` skips discovery, and `--jwt-issuer`
/// then names the `iss`.
#[tokio::test]
async fn the_user_claim_and_a_fixed_tenant_are_configurable() {
    let k1 = SigningKey::generate("k1");
    let idp = Provider::start(&[&k1]).await;
    let jwks = format!("{}/keys", idp.issuer);
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--directory",
            DIRECTORY,
            "--jwt-jwks-url",
            &jwks,
            "--jwt-issuer",
            &idp.issuer,
            "--jwt-audience",
            AUDIENCE,
            "--jwt-user-claim",
            "preferred_username",
            "--jwt-tenant",
            "acme",
        ],
        &[],
    )
    .await;
    let claims = |user: &str| {
        json!({"sub": "5f0c2a9e-idp-uuid", "preferred_username": user, "iss": idp.issuer,
               "aud": AUDIENCE, "exp": now() + 600})
    };
    assert_eq!(hello(&node, &k1.sign(&claims("a1"))).await, Ok(()));
    assert_eq!(
        hello(&node, &k1.sign(&claims("ann@acme.example"))).await,
        Err(4003),
        "not a directory user id"
    );
}

/// HTTPS with `--oidc-ca`: the provider's certificate is verified (by
/// rustls with the ring provider), so another CA gets no keys; plain http
/// to a host that is not loopback stops the node at start.
#[tokio::test]
async fn the_provider_is_reached_over_https_and_its_certificate_checked() {
    let tls = common::tls::TlsFiles::generate();
    let k1 = SigningKey::generate("k1");
    let idp = Provider::start_https(&tls, &[&k1]).await;
    let token = k1.sign(&idp.claims());
    let ca = tls.ca.display().to_string();
    let node = hub(&idp.issuer, &["--oidc-ca", &ca]).await;
    assert_eq!(hello(&node, &token).await, Ok(()), "trusted CA");

    let other = tls.other_ca.display().to_string();
    let mut stranger = hub(&idp.issuer, &["--oidc-ca", &other]).await;
    assert_eq!(hello(&stranger, &token).await, Err(4003), "another CA");
    stranger
        .log_line(&["cannot fetch the identity provider's keys"])
        .await;

    let stderr = refused_at_start(&[
        "--oidc-issuer",
        "http://idp.example.com/realms/cc",
        "--jwt-audience",
        AUDIENCE,
    ])
    .await;
    assert!(stderr.contains("must come over https"), "{stderr}");
}

/// Runs the binary with `args`, which must stop it at start; its stderr.
async fn refused_at_start(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(common::process::BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("PRESENCE_HUB_NO_DEMO", "true")
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Flags that cannot work stop the node at once, naming the problem: no
/// audience (any application's token would do), or a provider beside a
/// shared secret (one kind of key per node).
#[tokio::test]
async fn flags_that_cannot_work_stop_the_node_at_start() {
    let no_audience = refused_at_start(&["--oidc-issuer", "http://127.0.0.1:9"]).await;
    assert!(no_audience.contains("--jwt-audience"), "{no_audience}");
    let both = refused_at_start(&[
        "--jwt-jwks-url",
        "http://127.0.0.1:9/keys",
        "--jwt-audience",
        AUDIENCE,
        "--jwt-secret",
        "s",
    ])
    .await;
    assert!(both.contains("--jwt-secret"), "{both}");
}

/// A provider that fails once the hub's copy of its keys aged out: the
/// keys in hand are kept, nobody is signed out.
#[tokio::test]
async fn a_provider_outage_keeps_the_keys_in_hand() {
    let k1 = SigningKey::generate("k1");
    let idp = Provider::start(&[&k1]).await;
    let node = hub(
        &idp.issuer,
        &["--jwks-min-refresh-ms", "0", "--jwks-max-age-ms", "200"],
    )
    .await;
    let token = k1.sign(&idp.claims());
    assert_eq!(hello(&node, &token).await, Ok(()));
    idp.down.store(true, Ordering::SeqCst);
    let before = idp.hits();
    // Hellos past the keys' age make the hub fetch, and fail; each is
    // still welcomed with the key in hand.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.hits() < before + 2 {
        assert!(Instant::now() < deadline, "no fetch after the keys aged");
        assert_eq!(hello(&node, &token).await, Ok(()), "during the outage");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hello(&node, &token).await, Ok(()), "after failed fetches");
}

/// The README's example, as written, against the local provider: its
/// issuer, listen address and directory swapped for the test's.
#[tokio::test]
async fn the_readme_example_runs() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### Sign-in with your identity provider (OIDC)")
        .nth(1)
        .expect("the README's OIDC section");
    let block = section
        .split("```")
        .nth(1)
        .expect("an example command")
        .replace("\\\n", " ");
    let words: Vec<&str> = block.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"presence-hub"), "{block}");
    let k1 = SigningKey::generate("k1");
    let idp = Provider::start(&[&k1]).await;
    let mut args: Vec<String> = Vec::new();
    let mut rest = words[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().expect("every flag of the example has a value");
        let value = match *flag {
            "--listen" => "127.0.0.1:0".to_string(),
            "--directory" => DIRECTORY.to_string(),
            "--oidc-issuer" => idp.issuer.clone(),
            _ => value.to_string(),
        };
        args.extend([flag.to_string(), value]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = Proc::start(&args, &[]).await;
    let audience = args
        .iter()
        .position(|a| *a == "--jwt-audience")
        .map(|i| args[i + 1])
        .expect("the example names the audience");
    // A Keycloak access token: the user in preferred_username, no tenant.
    let claims = json!({"sub": "0b6f7c1e-kc-uuid", "preferred_username": "a1",
                        "iss": idp.issuer, "aud": audience, "exp": now() + 600});
    assert_eq!(hello(&node, &k1.sign(&claims)).await, Ok(()));
}

/// A provider that moves its key set: the old address failing, the hub
/// asks discovery again and finds the keys there.
#[tokio::test]
async fn a_key_set_that_moved_is_found_again_through_discovery() {
    let (k1, k2) = (SigningKey::generate("k1"), SigningKey::generate("k2"));
    let idp = Provider::start(&[&k1]).await;
    let node = hub(&idp.issuer, &["--jwks-min-refresh-ms", "0"]).await;
    assert_eq!(hello(&node, &k1.sign(&idp.claims())).await, Ok(()));
    *idp.key_path.lock() = "/moved-keys".into();
    idp.publish(&[&k1, &k2]);
    until(
        &node,
        &k2.sign(&idp.claims()),
        Ok(()),
        "key 2 at the new address",
    )
    .await;
}
