//! Web security (issue 28; README "Web security", `src/web/`), on real TCP:
//!
//! - every route (both pages, every embedded file plain and versioned, the
//!   client library, the probes, `/metrics`, the APIs, a 404) carries the
//!   CSP, `nosniff`, `no-referrer`, the Permissions-Policy and no framing,
//!   with its exact `Content-Type` and cache policy;
//! - `--frame-ancestors` names the portals allowed to frame the pages;
//! - `/metrics` on `--metrics-listen` only, behind `--metrics-token`, or open
//!   with a warning off loopback;
//! - CORS on the APIs: preflights and simple requests allowed only for
//!   `--cors-origins`, never with credentials; state-changing requests need
//!   a bearer token and a listed or own origin;
//! - in Chromium (`tests/browser/security.mjs`): both pages work under the
//!   CSP with live data and no violation, cannot be framed by another origin
//!   (the portal can), and another origin's `fetch` of an API is refused
//!   (the portal's allowed).

mod common;

use common::process::{Proc, BIN};
use common::*;
use presence_hub::config::Config;
use presence_hub::web::assets;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP response, headers by lower-case name.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The headers every response must carry; `what` names the request.
    fn assert_secure(&self, what: &str) {
        let csp = self
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no CSP in {self:?}"));
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{what}: CSP {csp:?} lacks {directive}"
            );
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'),
            "{what}: CSP {csp:?}"
        );
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            self.header("referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{what}");
        let permissions = self.header("permissions-policy").unwrap_or_default();
        for feature in ["camera=()", "microphone=()", "geolocation=()", "payment=()"] {
            assert!(permissions.contains(feature), "{what}: {permissions:?}");
        }
        assert!(
            !self.has("access-control-allow-credentials"),
            "{what}: credentials are never allowed"
        );
    }
}

/// `METHOD path` with `headers` (lines ending in `\r\n`), over HTTP/1.0.
async fn request(addr: &str, method: &str, path: &str, headers: &str) -> Reply {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let body_headers = if matches!(method, "POST" | "PUT" | "PATCH") {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        s.write_all(
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}{body_headers}\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        out
    };
    let out = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn get(addr: &str, path: &str) -> Reply {
    request(addr, "GET", path, "").await
}

/// Every embedded file a page may load, by plain path.
fn embedded() -> Vec<assets::Asset> {
    presence_hub::wallboard::ASSETS
        .iter()
        .chain(presence_hub::agent_page::ASSETS)
        .chain(presence_hub::client_lib::ASSETS)
        .copied()
        .collect()
}

async fn node(tweak: impl FnOnce(&mut Config)) -> TestNode {
    let mut config = test_config();
    tweak(&mut config);
    TestNode::start(config).await
}

#[tokio::test]
async fn every_route_carries_the_security_headers_its_type_and_its_cache_policy() {
    let node = node(|_| {}).await;
    let addr = node.addr.to_string();
    let version = assets::version();

    // The pages: HTML, revalidated, loading only versioned files.
    for (path, title) in [
        ("/", "presence-hub wallboard"),
        ("/agent", "presence-hub agent"),
    ] {
        let page = get(&addr, path).await;
        assert_eq!(page.status, 200, "{path}");
        page.assert_secure(path);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
        assert!(page.body.contains(title));
        let refs: Vec<&str> = page
            .body
            .split(['"'])
            .filter(|s| s.starts_with('/') && (s.ends_with(".js") || s.ends_with(".css")))
            .collect();
        assert!(refs.len() >= 2, "{path}: {refs:?}");
        for r in refs {
            assert!(
                r.starts_with(&format!("/assets/{version}/")),
                "{path} loads {r}, not a versioned path"
            );
        }
        // No inline script, no inline style: the CSP would block them.
        assert!(!page.body.contains("style=") && !page.body.contains("<style"));
        for tag in page.body.split("<script").skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            assert!(
                tag.contains(" src=\""),
                "{path}: an inline script <script{tag}>"
            );
        }
        // Revalidation answers 304 for this build's copy.
        let etag = page.header("etag").expect("an ETag");
        let again = request(&addr, "GET", path, &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!(again.status, 304, "{path}");
        again.assert_secure(path);
    }

    // Every embedded file, plain (no-cache) and versioned (immutable).
    let files = embedded();
    assert!(files.len() >= 17, "{}", files.len());
    for file in &files {
        let expected = if file.path.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        let plain = get(&addr, file.path).await;
        assert_eq!(plain.status, 200, "{}", file.path);
        plain.assert_secure(file.path);
        assert_eq!(
            plain.header("content-type"),
            Some(expected),
            "{}",
            file.path
        );
        assert_eq!(
            plain.header("cache-control"),
            Some("no-cache"),
            "{}",
            file.path
        );
        assert_eq!(plain.body, file.body, "{}", file.path);
        let versioned_path = assets::versioned_path(file.path);
        let versioned = get(&addr, &versioned_path).await;
        assert_eq!(versioned.status, 200, "{versioned_path}");
        versioned.assert_secure(&versioned_path);
        assert_eq!(versioned.header("content-type"), Some(expected));
        assert_eq!(
            versioned.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{versioned_path}"
        );
        assert_eq!(versioned.body, file.body);
    }
    // The library's entry point, which external users link to.
    let client = get(&addr, "/client/presence-hub-client.js").await;
    assert_eq!(client.status, 200);
    assert!(client.body.contains("SupervisorClient"));

    // Another build's version: redirected to the plain path, never cached;
    // an unknown file under it: 404.
    let stale = get(&addr, "/assets/0123456789abcdef/wallboard/main.js").await;
    assert_eq!(stale.status, 307);
    assert_eq!(stale.header("location"), Some("/wallboard/main.js"));
    assert_eq!(stale.header("cache-control"), Some("no-store"));
    stale.assert_secure("stale version");
    let missing = get(&addr, &format!("/assets/{version}/wallboard/nope.js")).await;
    assert_eq!(missing.status, 404);
    missing.assert_secure("missing asset");

    // Probes, metrics, APIs, the dev sign-in (404: not dev mode), a 404.
    for (path, status, content_type) in [
        ("/healthz", 200, "text/plain; charset=utf-8"),
        ("/readyz", 200, "text/plain; charset=utf-8"),
        ("/metrics", 200, "text/plain; version=0.0.4; charset=utf-8"),
        ("/agent/tenant", 401, "text/plain; charset=utf-8"),
        ("/api/nothing", 404, "application/json"),
        ("/dev/signin", 404, "text/plain; charset=utf-8"),
        ("/no/such/page", 404, ""),
    ] {
        let reply = get(&addr, path).await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        reply.assert_secure(path);
        if !content_type.is_empty() {
            assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        }
    }
    let tenant = request(
        &addr,
        "GET",
        "/agent/tenant",
        &format!("Authorization: Bearer {}\r\n", token("acme", "a1")),
    )
    .await;
    assert_eq!(tenant.status, 200);
    assert_eq!(tenant.header("content-type"), Some("application/json"));
    tenant.assert_secure("/agent/tenant");
    // HEAD is answered with the same headers.
    let head = request(&addr, "HEAD", "/", "").await;
    assert_eq!(head.status, 200);
    head.assert_secure("HEAD /");

    // The WebSocket still upgrades through the layers.
    let mut agent = Client::connect(&node.url()).await;
    agent
        .send(json!({"type": "hello", "token": token("acme", "a1"), "role": "agent", "device": {"id": "d1"}}))
        .await;
    agent.recv_type("welcome").await;
}

#[tokio::test]
async fn frame_ancestors_names_the_portals_allowed_to_frame_the_pages() {
    let node = node(|c| {
        c.frame_ancestors = vec![
            "https://portal.example.com".into(),
            "http://127.0.0.3:8080".into(),
        ]
    })
    .await;
    let addr = node.addr.to_string();
    for path in ["/", "/agent", "/wallboard/main.js", "/healthz"] {
        let reply = get(&addr, path).await;
        let csp = reply.header("content-security-policy").expect("a CSP");
        assert!(
            csp.ends_with("frame-ancestors https://portal.example.com http://127.0.0.3:8080"),
            "{path}: {csp}"
        );
        // X-Frame-Options has no value listing origins: left out, or it
        // would forbid the portal what the CSP allows.
        assert!(!reply.has("x-frame-options"), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn an_origin_flag_that_is_not_an_origin_stops_the_node_at_start() {
    for (flag, value) in [
        (
            "--frame-ancestors",
            "https://portal.example.com; script-src *",
        ),
        ("--frame-ancestors", "*"),
        ("--cors-origins", "https://*.example.com"),
        ("--cors-origins", "portal.example.com"),
    ] {
        let out = tokio::process::Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", flag, value])
            .env("PRESENCE_HUB_NO_DEMO", "true")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(DEADLINE, out)
            .await
            .expect("exits at once")
            .expect("runs");
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not an origin"),
            "{flag} {value}: {stderr}"
        );
    }
    // A configuration built in code gets the same check.
    let mut config = test_config();
    config.cors_origins = vec!["https://x.example.com/path".into()];
    let refused = presence_hub::node::Node::bind(config).await;
    assert!(
        matches!(refused, Err(presence_hub::node::StartError::Web(_))),
        "a path in an origin accepted"
    );
    let mut config = test_config();
    config.metrics_token = Some("  ".into());
    assert!(presence_hub::node::Node::bind(config).await.is_err());
}

/// The Metrics line of the banner: where `--metrics-listen` bound.
fn metrics_addr(node: &Proc) -> String {
    node.banner
        .iter()
        .find_map(|l| l.split("Metrics: http://").nth(1))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no Metrics line in {:?}", node.banner))
        .to_string()
}

fn series_in(reply: &Reply) -> bool {
    reply.body.contains("presence_hub_ready")
}

#[tokio::test]
async fn metrics_listen_serves_metrics_there_and_only_there() {
    let node = Proc::start(
        &["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let metrics = metrics_addr(&node);
    assert_ne!(metrics, node.addr);
    let public = get(&node.addr, "/metrics").await;
    assert_eq!(public.status, 404, "the public port still serves /metrics");
    public.assert_secure("public /metrics");
    let private = get(&metrics, "/metrics").await;
    assert_eq!(private.status, 200);
    assert!(series_in(&private), "{}", private.body);
    assert_eq!(
        private.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    private.assert_secure("metrics listener");
    // The metrics listener serves nothing else.
    for path in ["/", "/healthz", "/v1/ws", "/agent/tenant"] {
        assert_eq!(get(&metrics, path).await.status, 404, "{path}");
    }
    // And the public port everything else.
    assert_eq!(get(&node.addr, "/readyz").await.status, 200);
}

#[tokio::test]
async fn a_metrics_token_is_required_wherever_metrics_are_served() {
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    // On the public port (the token from the environment, as deployments
    // set it).
    let node = Proc::start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("PRESENCE_HUB_JWT_SECRET", SECRET),
            ("PRESENCE_HUB_METRICS_TOKEN", "scrape-me"),
        ],
    )
    .await;
    for headers in [
        String::new(),
        bearer("wrong"),
        bearer("scrape-m"),
        "Authorization: Basic c2NyYXBlLW1l\r\n".into(),
    ] {
        let refused = request(&node.addr, "GET", "/metrics", &headers).await;
        assert_eq!(refused.status, 401, "{headers:?}");
        assert!(!series_in(&refused));
        assert_eq!(
            refused.header("www-authenticate"),
            Some("Bearer realm=\"metrics\"")
        );
        refused.assert_secure("refused /metrics");
    }
    let allowed = request(&node.addr, "GET", "/metrics", &bearer("scrape-me")).await;
    assert_eq!(allowed.status, 200);
    assert!(series_in(&allowed));
    // Only /metrics needs it.
    assert_eq!(get(&node.addr, "/readyz").await.status, 200);
    assert_eq!(get(&node.addr, "/").await.status, 200);

    // On the metrics listener too.
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-token",
            "scrape-me",
        ],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    let metrics = metrics_addr(&node);
    assert_eq!(get(&metrics, "/metrics").await.status, 401);
    assert_eq!(
        request(&metrics, "GET", "/metrics", &bearer("scrape-me"))
            .await
            .status,
        200
    );
    assert_eq!(
        request(&node.addr, "GET", "/metrics", &bearer("scrape-me"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn open_metrics_on_a_public_address_are_warned_about_at_start() {
    let mut node = Proc::start_logged(
        &["--listen", "0.0.0.0:0"],
        &[("PRESENCE_HUB_JWT_SECRET", SECRET)],
    )
    .await;
    node.log_line(&["/metrics is open", "--metrics-listen", "--metrics-token"])
        .await;
    let port = node.addr.rsplit(':').next().expect("a port");
    assert_eq!(
        get(&format!("127.0.0.1:{port}"), "/metrics").await.status,
        200,
        "open by default, as before"
    );
}

#[tokio::test]
async fn cors_is_refused_by_default_and_allowed_per_origin() {
    const PORTAL: &str = "https://portal.example.com";
    const OTHER: &str = "https://evil.example";
    let preflight = |origin: &str, method: &str| {
        format!(
            "Origin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n\
             Access-Control-Request-Headers: authorization, content-type, idempotency-key\r\n"
        )
    };
    let bearer = format!("Authorization: Bearer {}\r\n", token("acme", "a1"));

    // Default: no cross-origin access at all.
    let closed = node(|_| {}).await;
    let addr = closed.addr.to_string();
    for path in ["/readyz", "/metrics", "/agent/tenant", "/api/directory"] {
        let pre = request(&addr, "OPTIONS", path, &preflight(PORTAL, "GET")).await;
        assert_eq!(pre.status, 204, "{path}: {pre:?}");
        assert!(!pre.has("access-control-allow-origin"), "{path}: {pre:?}");
        pre.assert_secure(path);
        let simple = request(&addr, "GET", path, &format!("Origin: {PORTAL}\r\n")).await;
        assert!(!simple.has("access-control-allow-origin"), "{path}");
    }

    // --cors-origins: that origin only.
    let open = node(|c| c.cors_origins = vec![PORTAL.into()]).await;
    let addr = open.addr.to_string();
    for path in ["/readyz", "/metrics", "/agent/tenant", "/api/directory"] {
        let pre = request(&addr, "OPTIONS", path, &preflight(PORTAL, "POST")).await;
        assert_eq!(pre.status, 204, "{path}: {pre:?}");
        assert_eq!(pre.header("access-control-allow-origin"), Some(PORTAL));
        let methods = pre
            .header("access-control-allow-methods")
            .unwrap_or_default();
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(methods.contains(m), "{path}: {methods}");
        }
        let allowed = pre
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in ["authorization", "content-type", "idempotency-key"] {
            assert!(allowed.contains(h), "{path}: {allowed}");
        }
        assert!(pre
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
        assert!(pre.body.is_empty());
        pre.assert_secure(path);
        // Another origin's preflight: answered, but allows nothing.
        let other = request(&addr, "OPTIONS", path, &preflight(OTHER, "POST")).await;
        assert!(
            !other.has("access-control-allow-origin"),
            "{path}: {other:?}"
        );
    }
    let simple = request(&addr, "GET", "/readyz", &format!("Origin: {PORTAL}\r\n")).await;
    assert_eq!(simple.status, 200);
    assert_eq!(simple.header("access-control-allow-origin"), Some(PORTAL));
    assert!(simple
        .header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    simple.assert_secure("CORS GET /readyz");
    let tenant = request(
        &addr,
        "GET",
        "/agent/tenant",
        &format!("Origin: {PORTAL}\r\n{bearer}"),
    )
    .await;
    assert_eq!(tenant.status, 200);
    assert_eq!(tenant.header("access-control-allow-origin"), Some(PORTAL));
    let other = request(&addr, "GET", "/readyz", &format!("Origin: {OTHER}\r\n")).await;
    assert!(!other.has("access-control-allow-origin"));
    // The pages are not APIs: no CORS for them, whoever asks.
    let page = request(&addr, "GET", "/", &format!("Origin: {PORTAL}\r\n")).await;
    assert!(!page.has("access-control-allow-origin"));

    // State-changing requests: a bearer token and a listed (or the hub's
    // own) origin, before any handler runs.
    let post = |origin: String, auth: String| {
        let addr = addr.clone();
        async move { request(&addr, "POST", "/api/directory", &format!("{origin}{auth}")).await }
    };
    let from = |o: &str| format!("Origin: {o}\r\n");
    let refused = post(from(OTHER), bearer.clone()).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    refused.assert_secure("POST from another origin");
    let no_token = post(from(PORTAL), String::new()).await;
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.header("access-control-allow-origin"), Some(PORTAL));
    // A cookie is no credential here.
    let cookie = post(from(PORTAL), "Cookie: session=abc\r\n".into()).await;
    assert_eq!(cookie.status, 401);
    for origin in [from(PORTAL), from(&format!("http://{addr}")), String::new()] {
        let through = post(origin.clone(), bearer.clone()).await;
        assert_eq!(through.status, 404, "{origin:?}: reached the API router");
        let body: Value = serde_json::from_str(&through.body).expect("JSON");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test]
#[cfg_attr(
    ph_no_browser,
    ignore = "needs chromium, node and playwright-core (see build.rs)"
)]
async fn the_pages_work_under_the_csp_and_other_origins_can_neither_frame_them_nor_call_the_apis() {
    let tools = browser("browser test (tests/web_security.rs)");
    // The portal's origin must be known before the hub starts: a free port
    // on 127.0.0.3, which nothing else in the tests uses.
    let portal = {
        let probe = std::net::TcpListener::bind("127.0.0.3:0").expect("127.0.0.3 is loopback");
        format!(
            "http://127.0.0.3:{}",
            probe.local_addr().expect("addr").port()
        )
    };
    // Dev mode (generated secret) with the demo agents: live data, and the
    // banner's sign-in links.
    let node = Proc::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--frame-ancestors",
            &portal,
            "--cors-origins",
            &portal,
        ],
        &[("PRESENCE_HUB_NO_DEMO", "false")],
    )
    .await;
    let link = |needle: &str| -> String {
        node.banner
            .iter()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| panic!("no {needle} link in {:?}", node.banner))
    };
    let wallboard = link("/#role=supervisor&token=");
    let agent = link("/agent#token=");
    let agent_token = agent.split("token=").nth(1).expect("a token").to_string();
    let run = tools
        .run(
            "security.mjs",
            &[wallboard, agent, portal, agent_token],
            "security.png",
            Duration::from_secs(180),
        )
        .await;
    eprintln!("{}", run.stdout);
    run.assert_passed();
}
