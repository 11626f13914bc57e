//! `ami-bridge`: Asterisk's queue events (AMI) to presence-hub's
//! integration API. See examples/ami-bridge/README.md for the mapping.
//!
//! ```text
//! export PRESENCE_HUB_KEY=phk_acme.asterisk.…   # never a flag: flags show in `ps`
//! export AMI_SECRET=…
//! cargo run --example ami-bridge -- --ami 127.0.0.1:5038 --ami-user hub \
//!     --hub http://127.0.0.1:8080 --map examples/ami-bridge/members.conf
//! cargo run --example ami-bridge -- --replay examples/ami-bridge/transcript.ami \
//!     --hub http://127.0.0.1:8080 --map examples/ami-bridge/members.conf
//! ```

// The test uses parts this binary does not.
#[allow(dead_code)]
#[path = "lib.rs"]
mod ami_bridge;

use ami_bridge::ami::Parser;
use ami_bridge::bridge::{Bridge, Mapping};
use ami_bridge::hub::{Hub, Retry};
use clap::Parser as _;
use std::time::Duration;

#[derive(clap::Parser, Debug)]
#[command(about = "Bridges Asterisk AMI queue events to presence-hub")]
struct Args {
    /// AMI address (host:port), when not replaying.
    #[arg(long, default_value = "127.0.0.1:5038")]
    ami: String,
    /// AMI user (manager.conf); its secret comes from $AMI_SECRET.
    #[arg(long, default_value = "presence-hub")]
    ami_user: String,
    /// Reads a recorded transcript instead of connecting to AMI.
    #[arg(long)]
    replay: Option<std::path::PathBuf>,
    /// The hub's base URL; the service key comes from $PRESENCE_HUB_KEY.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    hub: String,
    /// Member and queue mapping file (see README).
    #[arg(long)]
    map: Option<std::path::PathBuf>,
    /// Answered within this many seconds of waiting counts as in service level.
    #[arg(long, default_value_t = 20)]
    service_level_s: u32,
    /// Do not push queue statistics (an older hub without the queue statistics route).
    #[arg(long)]
    no_stats: bool,
    /// Attempts per request before it is logged and skipped.
    #[arg(long, default_value_t = 8)]
    attempts: u32,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = run(Args::parse()).await {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let key = std::env::var("PRESENCE_HUB_KEY")
        .map_err(|_| "set PRESENCE_HUB_KEY to the hub's service key".to_string())?;
    let mapping = match &args.map {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Mapping::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Mapping::default(),
    };
    let retry = Retry {
        attempts: args.attempts,
        ..Retry::default()
    };
    let hub = Hub::new(&args.hub, &key, retry)?;
    let mut bridge = Bridge::new(mapping, args.service_level_s, !args.no_stats);
    if let Some(path) = &args.replay {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let report = ami_bridge::run_stream(&mut file, Parser::new(), &mut bridge, &hub)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(
            events = report.events,
            done = report.done.len(),
            refused = report.refused.len(),
            gave_up = report.gave_up.len(),
            malformed = report.malformed_lines,
            "replayed"
        );
        return Ok(());
    }
    let secret = std::env::var("AMI_SECRET").unwrap_or_default();
    // AMI drops with Asterisk restarts: reconnect with backoff, forever.
    // The per-queue waiting lists are kept; Asterisk's Count on the next
    // join/leave corrects the count.
    let mut delay = Duration::from_secs(1);
    loop {
        match ami_bridge::run_socket(&args.ami, &args.ami_user, &secret, &mut bridge, &hub).await {
            Ok(report) => {
                tracing::warn!(events = report.events, "AMI closed; reconnecting");
                delay = Duration::from_secs(1);
            }
            Err(e) => tracing::warn!("{e}; retrying in {delay:?}"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
