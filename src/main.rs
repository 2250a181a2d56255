//! `purser`: run Purser's control plane locally and talk to it.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{
    AccountsCommand, ApprovalsCommand, BudgetsCommand, Cli, Command, EventsCommand,
    NotificationsCommand, PoolCommand, PricesCommand, TeamsCommand, TemplatesCommand,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Up(_)));
    let result = match cli.command {
        Command::Up(args) => commands::up::run(args, cli.template.as_deref()).await,
        Command::Demo(args) => purser::demo::run(&args.data_dir).await,
        Command::Accounts(accounts) => match accounts.command {
            AccountsCommand::Request(args) => commands::accounts::request(args).await,
            AccountsCommand::List(args) => commands::accounts::list(args).await,
            AccountsCommand::Show(args) => commands::accounts::show(args).await,
            AccountsCommand::Close(args) => commands::accounts::close(args).await,
            AccountsCommand::Login(args) => commands::accounts::login(args).await,
            AccountsCommand::Extend(args) => commands::leases::extend(args).await,
            AccountsCommand::May(args) => commands::accounts::may(args).await,
            AccountsCommand::Release(args) => commands::pool::release(args).await,
        },
        Command::Pool(pool) => match pool.command {
            PoolCommand::Show(args) => commands::pool::show(args).await,
        },
        Command::Teams(teams) => match teams.command {
            TeamsCommand::Set(args) => commands::teams::set(args).await,
            TeamsCommand::Show(args) => commands::teams::show(args).await,
        },
        Command::Costs(args) => commands::costs::run(args).await,
        Command::Templates(templates) => match templates.command {
            TemplatesCommand::Set(args) => commands::leases::set_template(args).await,
            TemplatesCommand::List(args) => commands::leases::list_templates(args).await,
            TemplatesCommand::Show(args) => commands::leases::show_template(args).await,
        },
        Command::Approvals(approvals) => match approvals.command {
            ApprovalsCommand::List(args) => commands::leases::list_approvals(args).await,
            ApprovalsCommand::Approve(args) => commands::leases::approve(args).await,
            ApprovalsCommand::Deny(args) => commands::leases::deny(args).await,
        },
        Command::Budgets(budgets) => match budgets.command {
            BudgetsCommand::Set(args) => commands::budgets::set(args).await,
            BudgetsCommand::Show(args) => commands::budgets::show(args).await,
        },
        Command::Events(events) => match events.command {
            EventsCommand::Put(args) => commands::events::put(args).await,
            EventsCommand::Tail(args) => commands::events::tail(args).await,
            EventsCommand::Archive(args) => commands::events::archive(args),
            EventsCommand::Dlq(args) => commands::events::dlq(args),
            EventsCommand::Redrive(args) => commands::events::redrive(args),
            EventsCommand::Replay(args) => commands::events::replay(args),
            EventsCommand::TestPattern(args) => commands::events::test_pattern(args),
        },
        Command::Notifications(notifications) => match notifications.command {
            NotificationsCommand::List(args) => commands::notifications::list(args),
        },
        Command::Query(args) => commands::query::run(args).await,
        Command::Prices(prices) => match prices.command {
            PricesCommand::Update(args) => commands::prices::update(args),
        },
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "purser",
                &mut std::io::stdout(),
            );
            Ok(())
        }
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
