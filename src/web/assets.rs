//! The embedded pages (`/`, `/agent`) and every file they load (the
//! wallboard's and the agent page's modules and stylesheets, the client
//! library at `/client/`), served with their exact `Content-Type` and with
//! cache headers that never mix two builds:
//!
//! - each file under a versioned path, `/assets/<version>/<path>` (e.g.
//!   `/assets/<version>/wallboard/main.js`), where `<version>` is a content
//!   hash of all the embedded files computed once at start, served
//!   `public, max-age=31536000, immutable`: a browser fetches it once per
//!   build;
//! - the pages rewritten to load those paths, served `no-cache` (with an
//!   `ETag`, so a revalidation costs a 304): a new binary's page names a new
//!   version and so new files, never an old cached module;
//! - each file under its plain path too (`/wallboard/main.js`,
//!   `/client/presence-hub-client.js`), `no-cache`, for whoever links to it
//!   (the client library's users).
//!
//! The modules import each other by relative paths (`./list.js`,
//! `../client/presence-hub-client.js`), so a versioned module's imports stay
//! in its versioned directory. A request for another build's version (a
//! page from a node not yet upgraded, during a rolling restart behind a
//! balancer) is redirected to the plain path, `no-store`, rather than
//! answered with this build's bytes under a name that caches them forever.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub const JS: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Under this prefix, then the version, are the versioned paths.
pub const PREFIX: &str = "/assets";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// One embedded file a page loads.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its plain path, e.g. `/wallboard/main.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// One embedded HTML page.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub path: &'static str,
    pub html: &'static str,
}

/// Everything served from here, built once.
struct Registry {
    version: String,
    /// `"<version>"`, the `ETag` of every `no-cache` answer: the build
    /// decides every byte served here.
    etag: HeaderValue,
    files: Vec<Asset>,
    /// Each page with its references rewritten to the versioned paths.
    pages: Vec<(&'static str, String)>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let files: Vec<Asset> = crate::wallboard::ASSETS
        .iter()
        .chain(crate::agent_page::ASSETS)
        .chain(crate::client_lib::ASSETS)
        .copied()
        .collect();
    let pages = [crate::wallboard::PAGE, crate::agent_page::PAGE];
    let mut hash = Sha256::new();
    for file in &files {
        hash.update(file.path.as_bytes());
        hash.update([0]);
        hash.update(file.body.as_bytes());
        hash.update([0]);
    }
    for page in &pages {
        hash.update(page.html.as_bytes());
    }
    let digest = hash.finalize();
    // 64 bits: ample to tell builds apart, short in a URL.
    let version: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let pages = pages
        .iter()
        .map(|page| (page.path, versioned_html(page.html, &files, &version)))
        .collect();
    let etag = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    Registry {
        version,
        etag,
        files,
        pages,
    }
});

/// The version in this build's asset paths.
pub fn version() -> &'static str {
    &REGISTRY.version
}

/// Where `path` (a plain asset path) is served for good.
pub fn versioned_path(path: &str) -> String {
    format!("{PREFIX}/{}{path}", version())
}

/// `html` with every `src="/x"` / `href="/x"` of an embedded file pointing
/// at its versioned path.
fn versioned_html(html: &str, files: &[Asset], version: &str) -> String {
    let mut out = html.to_string();
    for file in files {
        for attr in ["src", "href"] {
            out = out.replace(
                &format!("{attr}=\"{}\"", file.path),
                &format!("{attr}=\"{PREFIX}/{version}{}\"", file.path),
            );
        }
    }
    out
}

/// The pages and every file, plain and versioned.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let registry = &*REGISTRY;
    let mut router = Router::new();
    for (path, html) in &registry.pages {
        let html: &'static str = html.as_str();
        router = router.route(
            path,
            get(move |headers: HeaderMap| async move { revalidated(&headers, HTML, html) }),
        );
    }
    for file in &registry.files {
        let Asset {
            path,
            content_type,
            body,
        } = *file;
        router =
            router
                .route(
                    path,
                    get(move |headers: HeaderMap| async move {
                        revalidated(&headers, content_type, body)
                    }),
                )
                .route(
                    &format!("{PREFIX}/{}{path}", registry.version),
                    get(move || async move {
                        (
                            [(CONTENT_TYPE, content_type), (CACHE_CONTROL, IMMUTABLE)],
                            body,
                        )
                    }),
                );
    }
    router.route(&format!("{PREFIX}/{{version}}/{{*path}}"), get(other_build))
}

/// A `no-cache` answer, or 304 when the browser holds this build's copy.
fn revalidated(headers: &HeaderMap, content_type: &'static str, body: &'static str) -> Response {
    let etag = REGISTRY.etag.clone();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t.as_bytes() == etag.as_bytes())
        });
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
                (ETAG, etag),
            ],
        )
            .into_response();
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
            (ETAG, etag),
        ],
        body,
    )
        .into_response()
}

/// `/assets/<another version>/<path>`: this build's file at its plain path
/// (see the module's doc), or 404 for a path no build of this one serves.
async fn other_build(
    axum::extract::Path((_, path)): axum::extract::Path<(String, String)>,
) -> Response {
    let plain = format!("/{path}");
    let known = REGISTRY.files.iter().any(|f| f.path == plain);
    match HeaderValue::from_str(&plain) {
        Ok(location) if known => (
            StatusCode::TEMPORARY_REDIRECT,
            [
                (LOCATION, location),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `src`/`href` of a served page names a versioned embedded file,
    /// and every relative import of an embedded module names one in the
    /// same tree, so nothing a page loads escapes the versioned directory.
    #[test]
    fn pages_load_only_versioned_files_whose_imports_are_served() {
        let registry = &*REGISTRY;
        let served: Vec<&str> = registry.files.iter().map(|f| f.path).collect();
        for (path, html) in &registry.pages {
            let mut refs = 0;
            for attr in ["src=\"", "href=\""] {
                for rest in html.split(attr).skip(1) {
                    let target = rest.split('"').next().unwrap_or_default();
                    let plain = target
                        .strip_prefix(&format!("{PREFIX}/{}", registry.version))
                        .unwrap_or_else(|| panic!("{path} loads {target}, not versioned"));
                    assert!(served.contains(&plain), "{path} loads {plain}, not served");
                    refs += 1;
                }
            }
            assert!(refs >= 2, "{path}: a stylesheet and a script");
        }
        for file in &registry.files {
            let dir = &file.path[..file.path.rfind('/').unwrap_or(0)];
            for line in file.body.lines() {
                let line = line.trim_start();
                if !["import ", "export ", "} from "]
                    .iter()
                    .any(|p| line.starts_with(p))
                {
                    continue;
                }
                let Some(spec) = line
                    .split(" from ")
                    .nth(1)
                    .map(|s| s.trim_matches(|c| matches!(c, '"' | '\'' | ';' | ' ')))
                else {
                    continue;
                };
                assert!(
                    spec.starts_with("./") || spec.starts_with("../"),
                    "{}: import {spec} is not relative: it would leave the versioned directory",
                    file.path
                );
                let target = match spec.strip_prefix("../") {
                    Some(up) => format!("{}/{up}", &dir[..dir.rfind('/').unwrap_or(0)]),
                    None => format!("{dir}/{}", &spec[2..]),
                };
                assert!(
                    served.contains(&target.as_str()),
                    "{} imports {spec} ({target}), which is not served",
                    file.path
                );
            }
        }
    }

    #[test]
    fn the_version_is_a_hash_of_the_files() {
        assert_eq!(version().len(), 16);
        assert!(version().bytes().all(|b| b.is_ascii_hexdigit()));
        let files = [Asset {
            path: "/x/a.js",
            content_type: JS,
            body: "",
        }];
        assert_eq!(
            versioned_html(
                r#"<script src="/x/a.js"></script><a href="/x/b.js">"#,
                &files,
                "v1"
            ),
            r#"<script src="/assets/v1/x/a.js"></script><a href="/x/b.js">"#
        );
    }
}
