//! `purser`: run Purser's control plane locally and talk to it.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, EventsCommand};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Up(_)));
    let result = match cli.command {
        Command::Up(args) => commands::up::run(args, cli.template.as_deref()).await,
        Command::Events(events) => match events.command {
            EventsCommand::Put(args) => commands::events::put(args).await,
            EventsCommand::Archive(args) => commands::events::archive(args),
            EventsCommand::Dlq(args) => commands::events::dlq(args),
            EventsCommand::TestPattern(args) => commands::events::test_pattern(args),
        },
        Command::Query(args) => commands::query::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: `info` for `purser up`, warnings only otherwise;
/// `RUST_LOG` overrides both.
fn init_tracing(serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
