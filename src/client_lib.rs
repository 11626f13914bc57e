//! The JavaScript client library (`clients/js/`, npm package
//! `presence-hub-client`), embedded in the binary and served at
//! `/client/<file>.js` (`no-cache`, so a node upgrade never leaves a page
//! on an older library) and under the build's immutable versioned path (see
//! [`crate::web::assets`]). The hub's own pages import it relatively
//! (`../client/presence-hub-client.js`), so a versioned page gets the
//! versioned library, always the version that matches the node's protocol.

use crate::web::assets::{Asset, JS};

const fn module(path: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type: JS,
        body,
    }
}

/// The library's modules. The entry point imports the others by relative
/// path, so every module it reaches must be listed (a unit test checks
/// that).
pub const ASSETS: &[Asset] = &[
    module(
        "/client/presence-hub-client.js",
        include_str!("../clients/js/src/presence-hub-client.js"),
    ),
    module(
        "/client/agent.js",
        include_str!("../clients/js/src/agent.js"),
    ),
    module(
        "/client/supervisor.js",
        include_str!("../clients/js/src/supervisor.js"),
    ),
    module(
        "/client/connection.js",
        include_str!("../clients/js/src/connection.js"),
    ),
    module(
        "/client/store.js",
        include_str!("../clients/js/src/store.js"),
    ),
    module(
        "/client/channel.js",
        include_str!("../clients/js/src/channel.js"),
    ),
    module(
        "/client/errors.js",
        include_str!("../clients/js/src/errors.js"),
    ),
    module(
        "/client/emitter.js",
        include_str!("../clients/js/src/emitter.js"),
    ),
    module(
        "/client/backoff.js",
        include_str!("../clients/js/src/backoff.js"),
    ),
];

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every `from './x.js'` of an embedded module names an embedded module.
    #[test]
    fn every_relative_import_is_served() {
        let served: Vec<&str> = ASSETS
            .iter()
            .map(|a| a.path.trim_start_matches("/client/"))
            .collect();
        for a in ASSETS {
            let (name, source) = (a.path, a.body);
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
