//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Purser: developer AWS accounts, what they cost, and budgets enforced in minutes.
///
/// Run the whole control plane on this machine with `purser up`; talk to it
/// (or to a deployed Purser) with the other commands.
#[derive(Debug, Parser)]
#[command(name = "purser", version, propagate_version = true)]
pub struct Cli {
    /// Use this SAM template instead of the built-in infra/template.yaml.
    #[arg(long, global = true, value_name = "PATH", env = "PURSER_TEMPLATE")]
    pub template: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane locally: the template's functions, rules, schedules and HTTP routes.
    #[command(
        after_help = "Examples:\n  purser up\n  purser up --port 9000 --data-dir /tmp/purser\n  purser up --allow-aws-sources   # accept aws.* events, to simulate AWS services"
    )]
    Up(UpArgs),
    /// Put, inspect and test events.
    Events(EventsArgs),
    /// Run a named query (infra/queries) or SQL on the local lake, with DataFusion.
    #[command(
        after_help = "Examples:\n  purser query --list\n  purser query cost_per_team_daily --param 2026-11-01 --param 2026-11-30\n  purser query top_functions --param 2026-11 --param 10 --output json\n  purser query --sql 'SELECT team, count(*) AS n FROM invocations WHERE dt = ? GROUP BY team' --param 2026-11-21"
    )]
    Query(QueryArgs),
}

pub const DEFAULT_DATA_DIR: &str = ".purser";
pub const DEFAULT_PORT: u16 = 8787;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the local state lives (SQLite database, lake files).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The port of the local API and EventBridge endpoint (on 127.0.0.1).
    #[arg(long, default_value_t = DEFAULT_PORT, env = "PURSER_PORT")]
    pub port: u16,
    /// Accept events whose source starts with `aws.` (AWS refuses them from
    /// callers; allow them to simulate CloudFormation or Organizations).
    #[arg(long)]
    pub allow_aws_sources: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Put one event on the bus (of `purser up`, or any EventBridge endpoint).
    #[command(
        after_help = "Examples:\n  purser events put --source ci --detail-type DeploymentReported --detail '{\"version\":1,\"stack\":\"web\",\"status\":\"SUCCEEDED\"}'\n  purser events put --account 210987654321 --source ci --detail-type Ping --detail file://event.json"
    )]
    Put(PutArgs),
    /// List the events the local bus has archived (every event put on it).
    #[command(
        after_help = "Examples:\n  purser events archive\n  purser events archive --detail-type AccountReady --since 15m --output json"
    )]
    Archive(ArchiveArgs),
    /// List the deliveries that failed after all their retries, with their errors.
    Dlq(DlqArgs),
    /// Test an event pattern against an event, like `aws events test-event-pattern`.
    #[command(
        after_help = "Examples:\n  purser events test-pattern --pattern '{\"source\":[\"ci\"]}' --event file://event.json"
    )]
    TestPattern(TestPatternArgs),
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The event's source (`aws.*` needs `purser up --allow-aws-sources`).
    #[arg(long)]
    pub source: String,
    /// The event's detail-type.
    #[arg(long)]
    pub detail_type: String,
    /// The detail: a JSON object, or file://PATH.
    #[arg(long)]
    pub detail: String,
    /// A resource ARN of the event (repeatable).
    #[arg(long = "resource", value_name = "ARN")]
    pub resources: Vec<String>,
    /// The event bus.
    #[arg(long, default_value = "purser")]
    pub bus: String,
    /// The EventBridge endpoint; `purser up`'s by default.
    #[arg(long, default_value = "http://127.0.0.1:8787", env = "PURSER_ENDPOINT")]
    pub endpoint: String,
    /// Put the event as this 12-digit account (a local endpoint takes the
    /// access key id as the caller's account, as moto does).
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
    /// The region to address.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    pub region: String,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Only events of this detail-type.
    #[arg(long)]
    pub detail_type: Option<String>,
    /// Only events from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only events received since TIME: RFC 3339 (2026-11-21T10:00:00Z) or an age (30s, 15m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct TestPatternArgs {
    /// The event pattern: JSON, or file://PATH.
    #[arg(long)]
    pub pattern: String,
    /// The event (a full envelope): JSON, or file://PATH.
    #[arg(long)]
    pub event: String,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The named query to run (see --list).
    #[arg(value_name = "NAME", conflicts_with_all = ["sql", "list"])]
    pub name: Option<String>,
    /// Run this SQL (Athena's dialect, `?` placeholders) instead of a named query.
    #[arg(long, value_name = "TEXT", conflicts_with = "list")]
    pub sql: Option<String>,
    /// A value for the query's next `?` placeholder, in order (repeatable).
    #[arg(long = "param", value_name = "VALUE")]
    pub params: Vec<String>,
    /// List the named queries with their parameters.
    #[arg(long)]
    pub list: bool,
    /// Where the local state lives; the lake is its lake/ folder.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// An aligned table, or JSON (an array of row objects).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}
