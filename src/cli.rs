//! The command line, as clap parses it.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Purser: developer AWS accounts, what they cost, and budgets enforced in minutes.
///
/// Run the whole control plane on this machine with `purser up`; talk to it
/// (or to a deployed Purser) with the other commands.
#[derive(Debug, Parser)]
#[command(name = "purser", version, propagate_version = true)]
pub struct Cli {
    /// Use this SAM template instead of the built-in infra/template.yaml.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "PURSER_TEMPLATE",
        display_order = 900
    )]
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
    /// Tell Purser's story in half a minute, with the real handlers on a fresh data dir.
    ///
    /// Three teams with budgets, account requests (one refused by AWS
    /// Organizations), deployments, a stream of invocation reports, a team
    /// crossing its thresholds and frozen, its budget raised and unfrozen,
    /// then the cost per team from the named query Athena runs.
    #[command(
        after_help = "Examples:\n  purser demo\n  purser demo --data-dir /tmp/purser-demo\n  purser up --data-dir .purser-demo     # then explore what the demo left"
    )]
    Demo(DemoArgs),
    /// Request, list, show, close and sign in to developer accounts.
    #[command(
        after_help = "Examples:\n  purser accounts request --team payments --owner ana@example.com --purpose 'load tests' --wait\n  purser accounts login r-0123456789ab             # the sign-in link, opened in your browser"
    )]
    Accounts(AccountsArgs),
    /// Create or change a team (its quota of open accounts, its members) and show it.
    Teams(TeamsArgs),
    /// What a team has spent, by day, account or function.
    #[command(
        after_help = "Examples:\n  purser costs --team payments\n  purser costs --team payments --from 2026-11-01 --to 2026-11-30 --by account\n  purser costs --team payments --by function          # from the lake (cost_per_function)\n  purser costs --team payments --output json"
    )]
    Costs(CostsArgs),
    /// Set and show a team's monthly budget, its thresholds and what they do.
    Budgets(BudgetsArgs),
    /// Set, list and show lease templates: the kinds of account people ask for.
    Templates(TemplatesArgs),
    /// Requests and extensions waiting for an approver: list, approve, deny.
    Approvals(ApprovalsArgs),
    /// The pools of recycled accounts (lease templates with lease_end recycle).
    Pool(PoolArgs),
    /// Put, follow, inspect and test events.
    Events(EventsArgs),
    /// The notifications a local `purser up` sent: emails, chat webhooks, the topic.
    Notifications(NotificationsArgs),
    /// Run a named query (infra/queries) or SQL on the local lake with DataFusion, or on Athena.
    #[command(
        after_help = "Examples:\n  purser query --list\n  purser query cost_per_team_daily --param 2026-11-01 --param 2026-11-30\n  purser query top_functions --param 2026-11 --param 10 --output json\n  purser query --sql 'SELECT team, count(*) AS n FROM invocations WHERE dt = ? GROUP BY team' --param 2026-11-21\n  purser query cost_per_team_monthly --param 2026-11 --athena          # on Athena, with your AWS credentials\n  purser query top_functions --param 2026-11 --param 5 --athena --workgroup purser --database purser_lake"
    )]
    Query(QueryArgs),
    /// Rebuild the usage price table from AWS Price List bulk files (offline).
    Prices(PricesArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  purser completions bash > ~/.local/share/bash-completion/completions/purser\n  purser completions zsh > \"${fpath[1]}/_purser\"\n  purser completions fish > ~/.config/fish/completions/purser.fish"
    )]
    Completions(CompletionsArgs),
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

pub const DEFAULT_DEMO_DIR: &str = ".purser-demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A new or empty directory for the demo's state, left there to explore
    /// afterwards (with `purser up --data-dir`, `purser query --data-dir`).
    #[arg(long, default_value = DEFAULT_DEMO_DIR)]
    pub data_dir: PathBuf,
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
    /// Follow the local bus: print events as they are archived, until Ctrl-C.
    #[command(
        after_help = "Examples:\n  purser events tail\n  purser events tail --detail-type AccountReady\n  purser events tail --last 10 --output json | jq .detail"
    )]
    Tail(TailArgs),
    /// List the deliveries that failed after all their retries, with their errors.
    ///
    /// On AWS (`--queue-url`, the stack's DeadLetterQueueUrl output), the
    /// messages of the dead-letter queue, which stay in it.
    #[command(
        after_help = "Examples:\n  purser events dlq\n  purser events dlq --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/purser-DeadLetterQueue-AbC\n  PURSER_DLQ_URL=… purser events dlq --aws --output json | jq '.[].target'"
    )]
    Dlq(DlqArgs),
    /// Deliver the dead letters again (after fixing their cause): a running
    /// `purser up` takes them within a second; what fails again is
    /// dead-lettered again.
    ///
    /// On AWS (`--queue-url`, the stack's DeadLetterQueueUrl output), each
    /// message of the dead-letter queue invokes the function that failed,
    /// asynchronously as EventBridge does, with its event, and is deleted;
    /// a message for a target that is not a function, or whose invocation
    /// Lambda refuses, stays in the queue and is listed with the reason.
    #[command(
        after_help = "Examples:\n  purser events redrive\n  purser events redrive --target BudgetsFunction-TeamSpendUpdated\n  purser events redrive --queue-url \"$(aws cloudformation describe-stacks --stack-name purser \\\n      --query \"Stacks[0].Outputs[?OutputKey=='DeadLetterQueueUrl'].OutputValue\" --output text)\"\n  PURSER_DLQ_URL=https://sqs.us-east-1.amazonaws.com/123456789012/purser-DeadLetterQueue-AbC \\\n      purser events redrive --aws --target BudgetsFunction   # only the budgets function's"
    )]
    Redrive(RedriveArgs),
    /// Send archived events again, as EventBridge replays an archive: each
    /// event received in the window goes to the rules that match it now,
    /// with `replay-name` set and its id unchanged (handlers are idempotent,
    /// so what was done is not done twice). On AWS, the template's archive
    /// replays the same way: `aws events start-replay`.
    #[command(
        after_help = "Examples:\n  purser events replay --since 2026-12-01T00:00:00Z\n  purser events replay --since 2026-12-01T00:00:00Z --until 2026-12-01T12:00:00Z --detail-type InvocationsReported"
    )]
    Replay(ReplayArgs),
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
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub queue: DeadLetterQueueArgs,
}

/// The deployed stack's dead-letter queue, for `events dlq` and `events redrive`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "AWS")]
pub struct DeadLetterQueueArgs {
    /// Use the deployed stack's dead-letter queue (SQS) instead of the local
    /// dead letters, with your AWS credentials; the queue is --queue-url, or
    /// PURSER_DLQ_URL.
    #[arg(long)]
    pub aws: bool,
    /// The dead-letter queue's URL (the stack's DeadLetterQueueUrl output);
    /// implies --aws.
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// Send SQS and Lambda calls to this endpoint instead of AWS's (moto, a
    /// local stand-in).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The queue's region (the queue URL's, or your AWS config's, by default).
    #[arg(long)]
    pub region: Option<String>,
}

impl DeadLetterQueueArgs {
    /// Whether the AWS queue is meant rather than the local dead letters.
    pub fn on_aws(&self) -> bool {
        self.aws || self.queue_url.is_some()
    }
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Only the dead letters of this target: locally the TARGET column of
    /// `events dlq`; on AWS, any part of the failed function's name or ARN, or of the
    /// fair queue's name (InvocationsQueue, SpendQueue) a message came from.
    #[arg(long)]
    pub target: Option<String>,
    /// On AWS: a line and a table for people, or the report as JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub queue: DeadLetterQueueArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Events received at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    pub since: String,
    /// Events received before this time (RFC 3339); now when not given.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this detail-type.
    #[arg(long)]
    pub detail_type: Option<String>,
    /// The replay's name, set as `replay-name` in each event.
    #[arg(long)]
    pub name: Option<String>,
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
    /// Run on Amazon Athena, with your AWS credentials, instead of the local lake.
    #[arg(long, conflicts_with = "list")]
    pub athena: bool,
    /// The Athena workgroup (it holds the results' location and the scan limit).
    #[arg(long, default_value = "purser", requires = "athena")]
    pub workgroup: String,
    /// The Glue database of the lake's tables.
    #[arg(long, default_value = "purser_lake", requires = "athena")]
    pub database: String,
    /// The AWS region of the Athena workgroup (your AWS config's by default).
    #[arg(long, requires = "athena")]
    pub region: Option<String>,
    /// An aligned table, or JSON (an array of row objects).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8787";

/// Where Purser's HTTP API is, and who calls it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "API")]
pub struct ApiArgs {
    /// Purser's HTTP API: a local `purser up` by default, or a deployed API's
    /// URL, whose requests are signed (SigV4) with your AWS credentials.
    #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT, env = "PURSER_ENDPOINT")]
    pub endpoint: String,
    /// Act as this IAM principal (a local `purser up` only; you are the local
    /// platform admin otherwise). A deployed API knows you by your credentials.
    #[arg(long = "as", value_name = "ARN", env = "PURSER_PRINCIPAL")]
    pub principal: Option<String>,
    /// The region a deployed API is in, to sign for (its URL's or your AWS
    /// config's by default).
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct AccountsArgs {
    #[command(subcommand)]
    pub command: AccountsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Ask for a new developer account for a team (`--wait` follows it until it is ready).
    #[command(
        after_help = "Examples:\n  purser accounts request --team payments --owner ana@example.com --purpose 'load tests' --wait\n  purser accounts request --team payments --owner ana@example.com --purpose demo --lease-days 7 --idempotency-key ana-1\n  ID=$(purser accounts request --team payments --owner ana@example.com --purpose ci --wait)   # prints the account id"
    )]
    Request(RequestArgs),
    /// List accounts, a page at a time (or every page with --all-pages).
    #[command(
        after_help = "Examples:\n  purser accounts list --team payments\n  purser accounts list --team payments --all-pages --output json"
    )]
    List(ListArgs),
    /// Show one account request: its state, account id, OU, email and lease.
    #[command(
        after_help = "Examples:\n  purser accounts show r-0123456789ab\n  purser accounts show r-0123456789ab --output json"
    )]
    Show(ShowArgs),
    /// Close an account: it is frozen, then closed through AWS Organizations.
    #[command(
        after_help = "Examples:\n  purser accounts close r-0123456789ab\n  purser accounts close r-0123456789ab --wait"
    )]
    Close(CloseArgs),
    /// Sign in to an account: print its sign-in link and permission set, and
    /// open the link in your browser (IAM Identity Center's access portal).
    #[command(
        after_help = "Examples:\n  purser accounts login r-0123456789ab\n  purser accounts login r-0123456789ab --no-browser      # print the link only\n  purser accounts login r-0123456789ab --output json | jq -r .link"
    )]
    Login(LoginArgs),
    /// Would a member account let someone do something? `purser up`'s
    /// simulated organization answers from the SCPs attached to the account
    /// (its guardrails, a freeze), as AWS would; exit code 3 when refused.
    #[command(
        after_help = "Examples:\n  purser accounts may 210987654321 ec2:RunInstances --region eu-west-1 --instance-type p5.48xlarge\n  purser accounts may 210987654321 savingsplans:CreateSavingsPlan\n  purser accounts may 210987654321 s3:CreateBucket --as arn:aws:iam::210987654321:role/break-glass"
    )]
    May(MayArgs),
    /// Extend an account's lease (beyond its template's maximum it waits for an approver).
    #[command(after_help = "Examples:\n  purser accounts extend r-0123456789ab --days 3")]
    Extend(ExtendArgs),
    /// Release an account after a look (admins): a quarantined one cools,
    /// then its template's pool lends it again; one the runaway guard froze
    /// is unfrozen (unless a budget still demands the freeze).
    #[command(
        after_help = "Examples:\n  purser pool show                       # what is quarantined, and why\n  purser accounts release r-0123456789ab"
    )]
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The request id (`r-…`) of the quarantined or runaway-frozen account.
    #[arg(value_name = "ID")]
    pub id: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(subcommand)]
    pub command: PoolCommand,
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Per lease template that recycles: how many accounts are cleaning,
    /// cooling, available and quarantined, their ages, and which are
    /// cleaning or quarantined and why (admins).
    #[command(after_help = "Examples:\n  purser pool show\n  purser pool show --output json")]
    Show(PoolShowArgs),
}

#[derive(Debug, Args)]
pub struct PoolShowArgs {
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct MayArgs {
    /// The member account's 12-digit id.
    #[arg(value_name = "ACCOUNT_ID")]
    pub account_id: String,
    /// The IAM action, `service:Action`.
    #[arg(value_name = "ACTION")]
    pub action: String,
    /// The region asked for (`aws:RequestedRegion`).
    #[arg(long, default_value = purser_local::LOCAL_REGION)]
    pub region: String,
    /// The instance type, for `ec2:RunInstances` (`ec2:InstanceType`).
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Who asks (a role or user ARN); a developer's role in the account by default.
    #[arg(long = "as", value_name = "ARN")]
    pub principal: Option<String>,
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The request id (`r-…`) of the account.
    #[arg(value_name = "ID")]
    pub id: String,
    /// How many days to add (1 to 90).
    #[arg(long, value_name = "N")]
    pub days: u32,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Create a template or write its next version (platform admins).
    #[command(
        after_help = "Examples:\n  purser templates set hackathon --body '{\"description\": \"two days to try things\", \"default_lease_days\": 2, \"max_lease_days\": 7, \"approval\": \"always\"}'\n  purser templates set sandbox --body file://sandbox.json"
    )]
    Set(TemplateSetArgs),
    /// List the templates (their latest versions).
    List(TemplatesListArgs),
    /// Show a template.
    Show(TemplateShowArgs),
}

#[derive(Debug, Args)]
pub struct TemplateSetArgs {
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The template as JSON (the body of PUT /templates/{name}), or file://PATH.
    #[arg(long, value_name = "JSON")]
    pub body: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TemplatesListArgs {
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TemplateShowArgs {
    #[arg(value_name = "NAME")]
    pub name: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// What waits for you to decide, oldest first.
    #[command(
        after_help = "Examples:\n  purser approvals list\n  purser approvals list --team payments --output json"
    )]
    List(ApprovalsListArgs),
    /// Approve a request or an extension.
    #[command(
        after_help = "Examples:\n  purser approvals approve r-0123456789ab --reason 'fine for the hackathon'"
    )]
    Approve(ApprovalDecideArgs),
    /// Deny a request or an extension, with a reason the requester reads.
    #[command(
        after_help = "Examples:\n  purser approvals deny r-0123456789ab --reason 'use the shared sandbox this week'"
    )]
    Deny(ApprovalDecideArgs),
}

#[derive(Debug, Args)]
pub struct ApprovalsListArgs {
    /// Only this team's.
    #[arg(long)]
    pub team: Option<String>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ApprovalDecideArgs {
    /// The request id (`r-…`) of the account.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why (required to deny; at most 500 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The team the account is for (its quota of open accounts applies).
    #[arg(long)]
    pub team: String,
    /// The owner's email address.
    #[arg(long, value_name = "EMAIL")]
    pub owner: String,
    /// What the account is for.
    #[arg(long)]
    pub purpose: String,
    /// Close the account this many days from now.
    #[arg(long, value_name = "N")]
    pub lease_days: Option<u32>,
    /// The lease template to make it from (else the team's default, if any).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// Makes the request safe to retry: the same key returns the same request.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Follow the request until the account is ready (or failed), then print its account id.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600, requires = "wait")]
    pub timeout: u64,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this team's accounts (platform admins may list every team's).
    #[arg(long)]
    pub team: Option<String>,
    /// Fetch every page, not only the first.
    #[arg(long, conflicts_with = "next")]
    pub all_pages: bool,
    /// Accounts per page (1 to 200).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// The page after this token (printed by the previous page).
    #[arg(long, value_name = "TOKEN")]
    pub next: Option<String>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The request id (`r-…`), as `accounts request` and `accounts list` print it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The request id (`r-…`) of the account to sign in to.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print the link without opening a browser (never opened when stdout is
    /// not a terminal).
    #[arg(long)]
    pub no_browser: bool,
    /// The link and permission set for people, or the account's access object
    /// as JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The request id (`r-…`) of the account to close.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Follow the closure until the account is closed.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600, requires = "wait")]
    pub timeout: u64,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    #[command(subcommand)]
    pub command: TeamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team or change it; what you do not give stays as it was.
    #[command(
        after_help = "Examples:\n  purser teams set payments --quota 3 --member arn:aws:iam::123456789012:user/ana\n  purser teams set payments --quota 5                     # members stay as they were\n  purser teams set payments --member arn:aws:iam::123456789012:role/ci --member arn:aws:iam::123456789012:user/bo"
    )]
    Set(TeamSetArgs),
    /// Show a team: its quota, open accounts and members.
    #[command(
        after_help = "Examples:\n  purser teams show payments\n  purser teams show payments --output json"
    )]
    Show(TeamShowArgs),
}

#[derive(Debug, Args)]
pub struct TeamSetArgs {
    /// The team's name: a lowercase slug, like `payments`.
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// How many accounts the team may have open at once.
    #[arg(long, value_name = "N")]
    pub quota: Option<u32>,
    /// An IAM principal ARN of a member (repeatable; replaces the members).
    #[arg(long = "member", value_name = "ARN")]
    pub members: Vec<String>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TeamShowArgs {
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostsBy {
    Day,
    Account,
    Function,
}

#[derive(Debug, Args)]
pub struct CostsArgs {
    /// The team.
    #[arg(long)]
    pub team: String,
    /// The first day (YYYY-MM-DD; the first of this month by default).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// The last day (YYYY-MM-DD; today by default).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// How to break the spend down; `function` comes from the lake (minutes
    /// behind), day and account from the streaming counters (seconds).
    #[arg(long, value_enum, default_value = "day")]
    pub by: CostsBy,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct BudgetsArgs {
    #[command(subcommand)]
    pub command: BudgetsCommand,
}

#[derive(Debug, Subcommand)]
pub enum BudgetsCommand {
    /// Set a team's monthly budget (it replaces the one before).
    #[command(
        after_help = "Examples:\n  purser budgets set payments --amount 100              # thresholds 50/80/100 %, freeze at 100 %\n  purser budgets set payments --amount 250.50 --threshold 80 --threshold 100 --action 80=notify --action 100=notify,freeze\n  purser budgets set payments --amount 100 --mode forecast --action 100=notify,freeze,throttle-lambdas"
    )]
    Set(BudgetSetArgs),
    /// Show a team's budget with this period's spend, forecast and crossed thresholds.
    #[command(
        after_help = "Examples:\n  purser budgets show payments\n  purser budgets show payments --output json"
    )]
    Show(BudgetShowArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BudgetMode {
    /// Act on spend to date.
    Actual,
    /// Act on the month-end forecast (run rate).
    Forecast,
}

#[derive(Debug, Args)]
pub struct BudgetSetArgs {
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// The monthly amount, in USD (up to 6 decimal places).
    #[arg(long)]
    pub amount: String,
    /// A threshold, in percent of the amount (repeatable; 50, 80 and 100 by default).
    #[arg(long = "threshold", value_name = "PERCENT")]
    pub thresholds: Vec<u32>,
    /// What a threshold does: PERCENT=ACTION[,ACTION] with the actions notify,
    /// freeze, throttle-lambdas (repeatable; notify, and freeze from 100 %, by default).
    #[arg(long = "action", value_name = "PERCENT=ACTIONS", value_parser = parse_action)]
    pub actions: Vec<(u32, Vec<String>)>,
    /// Act on spend to date, or on the month-end forecast.
    #[arg(long, value_enum)]
    pub mode: Option<BudgetMode>,
    /// A runaway rule (repeatable): per=account|resource, then
    /// usd_per_hour=X and/or median_multiple=N (with at_least_usd=Y), and
    /// actions=A[+A] of notify, freeze, throttle-lambdas, stop-resource;
    /// like per=resource,usd_per_hour=20,actions=notify+stop-resource.
    #[arg(long = "runaway", value_name = "RULE", value_parser = parse_runaway)]
    pub runaway: Vec<serde_json::Value>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `--runaway per=resource,usd_per_hour=20,actions=notify+stop-resource`
/// as the API's rule object; the API says what is wrong with its values.
fn parse_runaway(text: &str) -> Result<serde_json::Value, String> {
    let usage = "give KEY=VALUE pairs separated by commas, like per=resource,usd_per_hour=20,actions=notify+stop-resource";
    let mut rule = serde_json::Map::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not KEY=VALUE; {usage}"))?;
        let (key, value) = (key.trim(), value.trim());
        let value = match key {
            "actions" => serde_json::json!(
                value
                    .split('+')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect::<Vec<_>>()
            ),
            "per" | "usd_per_hour" | "median_multiple" | "at_least_usd" => {
                serde_json::json!(value)
            }
            _ => {
                return Err(format!(
                    "{key:?} is not a rule's field; the fields are per, usd_per_hour, median_multiple, at_least_usd, actions"
                ));
            }
        };
        if rule.insert(key.to_string(), value).is_some() {
            return Err(format!("{key} is given twice"));
        }
    }
    if rule.is_empty() {
        return Err(usage.to_string());
    }
    Ok(serde_json::Value::Object(rule))
}

#[derive(Debug, Args)]
pub struct BudgetShowArgs {
    #[arg(value_name = "TEAM")]
    pub team: String,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Only events of this detail-type.
    #[arg(long)]
    pub detail_type: Option<String>,
    /// Only events from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Print the last N archived events first.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub last: usize,
    /// How often to look for new events, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub interval: u64,
    /// One line per event, or one JSON envelope per line.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    #[command(subcommand)]
    pub command: NotificationsCommand,
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// List the notifications sent (or tried) by a local `purser up`, oldest
    /// first: emails (in the data dir's outbox/), Slack and Teams webhooks
    /// (by their host, never their URL) and the SNS topic.
    #[command(
        after_help = "Examples:\n  purser notifications list\n  purser notifications list --last 5\n  purser notifications list --data-dir .purser-demo --output json | jq '.[].subject'"
    )]
    List(NotificationsListArgs),
}

#[derive(Debug, Args)]
pub struct NotificationsListArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "PURSER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Only the last N notifications.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// An aligned table for people, or the JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct PricesArgs {
    #[command(subcommand)]
    pub command: PricesCommand,
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Merge the on-demand prices of Price List bulk offer files (EC2, ECS
    /// Fargate, SageMaker, Bedrock, API Gateway, DynamoDB, Step Functions)
    /// into the table, keeping other services and older versions, and
    /// print what changed.
    #[command(
        after_help = "Examples:\n  curl -o ec2.json https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json\n  purser prices update --from ec2.json\n  purser prices update --from bedrock.json --from dynamodb.json --to /tmp/prices.json --region us-east-1"
    )]
    Update(PricesUpdateArgs),
}

#[derive(Debug, Args)]
pub struct PricesUpdateArgs {
    /// Price List bulk offer files (`.../offers/v1.0/aws/<offer>/current/<region>/index.json`).
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub from: Vec<PathBuf>,
    /// The price table to update.
    #[arg(long, value_name = "PATH", default_value = "infra/prices.json")]
    pub to: PathBuf,
    /// Only this region's prices (repeatable); every region in the files otherwise.
    #[arg(long)]
    pub region: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The actions a budget threshold can take.
pub const BUDGET_ACTIONS: [&str; 3] = ["notify", "freeze", "throttle-lambdas"];

/// `--action 100=notify,freeze`.
fn parse_action(text: &str) -> Result<(u32, Vec<String>), String> {
    let usage = "give PERCENT=ACTION[,ACTION], like 100=notify,freeze";
    let (percent, actions) = text.split_once('=').ok_or(usage)?;
    let percent = percent
        .trim()
        .trim_end_matches('%')
        .parse::<u32>()
        .map_err(|_| format!("{percent:?} is not a whole percentage; {usage}"))?;
    let actions: Vec<String> = actions
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if actions.is_empty() {
        return Err(format!("no action for {percent} %; {usage}"));
    }
    if let Some(bad) = actions
        .iter()
        .find(|a| !BUDGET_ACTIONS.contains(&a.as_str()))
    {
        return Err(format!(
            "{bad:?} is not an action; the actions are {}",
            BUDGET_ACTIONS.join(", ")
        ));
    }
    Ok((percent, actions))
}

/// `--from 2026-11-01`.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date like 2026-11-01"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_runaway_rule_reads_as_the_api_s_object() {
        assert_eq!(
            parse_runaway("per=resource, usd_per_hour=20,actions=notify+stop-resource").unwrap(),
            serde_json::json!({"per": "resource", "usd_per_hour": "20",
                "actions": ["notify", "stop-resource"]})
        );
        assert!(
            parse_runaway("per=resource,colour=red")
                .unwrap_err()
                .contains("colour")
        );
        assert!(parse_runaway("per").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_runaway("per=a,per=b").unwrap_err().contains("twice"));
    }

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn actions_parse_percent_and_actions() {
        assert_eq!(
            parse_action("100=notify,freeze").unwrap(),
            (100, vec!["notify".to_string(), "freeze".to_string()])
        );
        assert_eq!(parse_action("80%=notify").unwrap().0, 80);
        assert!(parse_action("100").is_err());
        assert!(parse_action("x=notify").is_err());
        assert!(parse_action("100=").is_err());
        assert!(
            parse_action("100=explode")
                .unwrap_err()
                .contains("throttle-lambdas")
        );
    }
}
