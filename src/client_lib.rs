//! The JavaScript client library (`clients/js/`, npm package
//! `presence-hub-client`), embedded in the binary and served at
//! `/client/<file>.js`, so a page on the hub imports it with
//! `import { SupervisorClient } from '/client/presence-hub-client.js'` and
//! always gets the version that matches the node's protocol.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The library's modules by file name. The entry point imports the others by
/// relative path, so every module it reaches must be listed (a unit test
/// checks that).
const FILES: &[(&str, &str)] = &[
    (
        "presence-hub-client.js",
        include_str!("../clients/js/src/presence-hub-client.js"),
    ),
    ("agent.js", include_str!("../clients/js/src/agent.js")),
    (
        "supervisor.js",
        include_str!("../clients/js/src/supervisor.js"),
    ),
    (
        "connection.js",
        include_str!("../clients/js/src/connection.js"),
    ),
    ("store.js", include_str!("../clients/js/src/store.js")),
    ("channel.js", include_str!("../clients/js/src/channel.js")),
    ("errors.js", include_str!("../clients/js/src/errors.js")),
    ("emitter.js", include_str!("../clients/js/src/emitter.js")),
    ("backoff.js", include_str!("../clients/js/src/backoff.js")),
];

/// `GET /client/<file>.js` for every module of the library.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES.iter().fold(Router::new(), |router, &(name, source)| {
        router.route(
            &format!("/client/{name}"),
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        // Revalidate: a node upgrade must not leave pages on
                        // an older library.
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    source,
                )
                    .into_response()
            }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// Every `from './x.js'` of an embedded module names an embedded module.
    #[test]
    fn every_relative_import_is_served() {
        let served: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
        for (name, source) in FILES {
            for line in source.lines() {
                let Some(rest) = line.split(" from './").nth(1) else {
                    continue;
                };
                let target = rest.split('\'').next().unwrap_or_default();
                assert!(
                    served.contains(&target),
                    "{name} imports ./{target}, which client_lib.rs does not serve"
                );
            }
        }
    }
}
