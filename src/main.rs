//! The `presence-hub` binary: flags in, node out. Everything else lives in
//! the library (see `lib.rs`).

use clap::Parser;
use presence_hub::config::{Cli, Command, DirectoryCommand, EventsCommand, LogFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.config.worker_threads {
        runtime.worker_threads(usize::from(threads));
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("presence-hub: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    init_logging(cli.config.log_format);
    match cli.command {
        Some(Command::Token(args)) => {
            let Some(secret) = args
                .jwt_secret
                .as_deref()
                .or(cli.config.jwt_secret.as_deref())
            else {
                eprintln!("presence-hub token: set --jwt-secret (or PRESENCE_HUB_JWT_SECRET) to the hub's secret");
                return ExitCode::from(2);
            };
            match presence_hub::auth::mint(secret, &args.tenant, &args.user, args.ttl_s) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("presence-hub token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Healthcheck(args)) => {
            let timeout = std::time::Duration::from_millis(args.timeout_ms);
            match presence_hub::node::healthcheck(cli.config.listen, &args.path, timeout).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("presence-hub healthcheck: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Directory(command)) => directory(command).await,
        Some(Command::Events(EventsCommand::Tail {
            hub,
            after,
            from_now,
            max_events,
        })) => {
            let tail = presence_hub::events::tail::Tail {
                after,
                from_now,
                max_events,
            };
            let mut out = std::io::stdout().lock();
            match presence_hub::events::tail::run(&hub.url, &hub.token, tail, &mut out).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("presence-hub events tail: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => match presence_hub::node::run(cli.config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("presence-hub: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `presence-hub directory export|import`.
async fn directory(command: DirectoryCommand) -> ExitCode {
    use presence_hub::directory::transfer;
    let outcome = match command {
        DirectoryCommand::Export(hub) => transfer::export(&hub.url, &hub.token)
            .await
            .map(|file| print!("{file}")),
        DirectoryCommand::Import { hub, file, prune } => match std::fs::read_to_string(&file) {
            Err(e) => {
                eprintln!(
                    "presence-hub directory import: cannot read {}: {e}",
                    file.display()
                );
                return ExitCode::FAILURE;
            }
            Ok(text) => transfer::import(&hub.url, &hub.token, &text, prune)
                .await
                .map(|done| {
                    println!(
                        "imported: {} changed, {} unchanged, {} deleted",
                        done.changed, done.unchanged, done.deleted
                    )
                }),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("presence-hub directory: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald, `docker logs` and log shippers
    // get plain text, not escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
