//! The Store port: Purser's state (teams, accounts, spend counters,
//! budgets, settlements, markers and recent deployments), DynamoDB on AWS
//! and SQLite locally.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::accounts::{Account, AccountState, Team, TeamName};
use crate::budgets::Budget;
use crate::leases::{LeaseTemplate, TemplateName};
use crate::ports::{Marker, Markers};

use crate::spend::SettledSpend;

/// How many of a team's accounts one read of `team_accounts_in` asks for.
const TEAM_PAGE: usize = 200;

/// Teams and their accounts, with the counters that keep their rules (a
/// team's quota of open accounts, the organization's concurrent creations):
/// one role, because an account's writes move those counters in the same
/// transaction. Every write is conditional, so a repeated or concurrent
/// event cannot apply twice.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError>;

    /// The team's settings, `None` when it was never configured.
    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError>;

    /// Every configured team (every one `put_team` wrote), in name order.
    async fn teams(&self) -> Result<Vec<Team>, StoreError>;

    /// Accounts of the team that count against its quota.
    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError>;

    /// Inserts a new request in one atomic step with the team's quota
    /// (`open_accounts < quota`) and the idempotency key, if any.
    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError>;

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;

    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError>;

    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError>;

    /// A team's accounts (all teams' when `None`), newest first, a page at a
    /// time; `page` is the `next` of the previous page.
    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError>;

    /// Every account in `state`, oldest first.
    async fn accounts_in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError>;

    /// The team's accounts with an AWS account id in one of `states`, read
    /// by team (never by scanning every team's accounts in a state, which
    /// grows with the organization, not the team).
    async fn team_accounts_in(
        &self,
        team: &TeamName,
        states: &[AccountState],
    ) -> Result<Vec<Account>, StoreError> {
        let mut found = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let accounts = self
                .list_accounts(Some(team), page.as_deref(), TEAM_PAGE)
                .await?;
            found.extend(accounts.items.into_iter().filter(|a| {
                a.team == *team && a.account_id.is_some() && states.contains(&a.state)
            }));
            match accounts.next {
                Some(next) => page = Some(next),
                None => return Ok(found),
            }
        }
    }

    /// Writes `next` if the stored account is still in state `from` and at
    /// the revision `next` was made from (`next.version - 1`: see
    /// `Account::next_revision`), in one atomic step with the counters the
    /// change moves: the team's open accounts, and the organization's
    /// creations in flight (refused with `NoCreationSlot` when
    /// `MAX_CONCURRENT_CREATIONS` are in flight). Anything else is `Stale`,
    /// with the account as it stands: a write is never applied over a
    /// revision it did not see.
    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError>;

    /// How many accounts had `CloseAccount` called since `since`.
    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError>;
}

/// The streaming spend counters, per team and account and day, and per
/// team, month and function.
#[async_trait]
pub trait SpendCounters: Send + Sync {
    /// Claims `batch` (as `Markers::claim_once`, in the same namespace) and
    /// adds each amount to its team's and its account's counter for its
    /// day, all in one atomic step: `false`, and nothing added, when the
    /// batch was already claimed. This is how a
    /// batch that arrives twice is counted once.
    ///
    /// In the same step each of `rates` adds to its account's counter of
    /// its hour and, with a resource, to that resource's: the hourly
    /// counters the runaway guard weighs (`hourly_spend`).
    async fn record_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError>;

    /// As `record_spend_once`, and in the same atomic step adds each add of
    /// a known team to that team's counter of `function` (of the add's
    /// account) for the add's month (`YYYY-MM`): a batch reports one
    /// function, so what a team's functions spent adds up to what the team
    /// spent through them. `function` is the name as reported, at most
    /// [`MAX_FUNCTION_NAME`] characters (the recorder bounds what member
    /// accounts send); adds of accounts Purser does not know count for no
    /// function, as they count for no team.
    async fn record_function_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: &str,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError>;

    /// The team's `limit` costliest functions of `period` (`YYYY-MM`), by
    /// nanos descending (then by account id and function name), from the
    /// counters `record_function_spend_once` moves.
    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError>;

    /// A team's spend per day (nano-units of the currency), for the days
    /// from `from` to `to` inclusive that have any; in day order.
    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError>;

    /// An account's spend per day, as `team_spend`.
    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError>;

    /// An account's hourly counters (`RateAdd`) for the hours from `from`
    /// to `to` inclusive (both whole hours): its own (`resource: None`)
    /// and its resources', in hour order (the account's first in an hour,
    /// then its resources by name). Hours with none are absent.
    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError>;
}

/// Teams' budgets, each a revision that only the next revision replaces.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Stores `budget` as the team's budget with revision `budget.revision`,
    /// if the stored one's revision is `budget.revision - 1` (or there is
    /// none and it is 1): `false` when another change came first.
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError>;

    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError>;

    /// Every team's budget (for the start of a period).
    async fn budgets(&self) -> Result<Vec<Budget>, StoreError>;
}

/// What the spend function last settled per team and period.
#[async_trait]
pub trait SettlementStore: Send + Sync {
    /// Stores a team's settled spend for its period, replacing the stored
    /// one unless that was settled later (`settled_at`): `false` then, and
    /// nothing written. Equal times replace, so a settlement can be stored
    /// again once it is announced.
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError>;

    /// The team's settled spend for `period` (`YYYY-MM`), if any.
    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError>;
}

/// The recent deployments of teams' accounts, for the console: a short
/// log beside the lake's full history, which a page cannot wait on.
#[async_trait]
pub trait DeploymentLog: Send + Sync {
    /// Keeps `mark` under its team, `at` and `id`: a mark written again
    /// (a redelivered event) is the same entry, not another. Marks are kept
    /// [`DEPLOYMENTS_KEPT`] after their `at`, and may be gone after that.
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError>;

    /// The team's marks at or after `since`, newest first (by `at`, then
    /// `id`, both descending), at most `limit` of them.
    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError>;
}

/// Lease templates, every version of each: a change writes the next
/// version, on the condition that the one before it is the latest, so of
/// two changes made from one version one is stored. Versions are kept, so
/// an account made from an earlier one still reads its terms.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Stores `template` as version `template.version` of its name if the
    /// latest stored version is `template.version - 1` (or there is none
    /// and it is 1): `false`, and nothing written, otherwise.
    async fn put_template(&self, template: &LeaseTemplate) -> Result<bool, StoreError>;

    /// The latest version of the template, `None` when there is none.
    async fn template(&self, name: &TemplateName) -> Result<Option<LeaseTemplate>, StoreError>;

    /// One version of the template, as it was stored.
    async fn template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError>;

    /// The latest version of every template, in name order.
    async fn templates(&self) -> Result<Vec<LeaseTemplate>, StoreError>;
}

/// Purser's state, every role in one (the DynamoDB table on AWS, one SQLite
/// file locally), for wiring: services take the roles they use.
pub trait Store:
    AccountStore
    + SpendCounters
    + BudgetStore
    + SettlementStore
    + Markers
    + DeploymentLog
    + TemplateStore
{
}

impl<T> Store for T where
    T: AccountStore
        + SpendCounters
        + BudgetStore
        + SettlementStore
        + Markers
        + DeploymentLog
        + TemplateStore
        + ?Sized
{
}

/// An amount of spend for a team's and an account's counters of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendAdd {
    /// `None` for accounts Purser does not know: only the account counts it.
    pub team: Option<TeamName>,
    pub account_id: String,
    pub day: NaiveDate,
    /// Nano-units of the currency (see `pricing::to_nanos`).
    pub nanos: i64,
}

/// At most this many counters move in one batch (`record_spend_once`):
/// DynamoDB's transaction takes 100 items, one of them the batch's claim.
/// The recorder bounds its rates to what is left.
pub const MAX_BATCH_COUNTERS: usize = 99;

/// How long the hourly counters are kept: the runaway guard's trailing
/// week and a day.
pub const HOURLY_KEPT_DAYS: i64 = 8;

/// The longest resource name an hourly counter keeps: the longest
/// resource key the recorder forms (`<service>:<region>:<resource>`, an
/// ARN at most 2,048 characters long is cut to this).
pub const MAX_RATE_RESOURCE: usize = 300;

/// Spend of one hour, for an account's hourly counter and, with
/// `resource`, that resource's too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateAdd {
    pub account_id: String,
    /// The hour's start (whole hour).
    pub hour: DateTime<Utc>,
    /// `<service>:<region>:<resource>` (see `budgets::runaway`), at most
    /// [`MAX_RATE_RESOURCE`] characters; `None`: the account's counter only.
    pub resource: Option<String>,
    /// Nano-units of the currency.
    pub nanos: i64,
}

/// One hourly counter: an account's (`resource: None`) or a resource's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlySpend {
    pub hour: DateTime<Utc>,
    pub resource: Option<String>,
    pub nanos: i64,
}

/// The longest function name the function counters keep: Lambda's limit
/// on a function's name or ARN (a name alone is at most 64 characters).
pub const MAX_FUNCTION_NAME: usize = 140;

/// What a team's function spent in a month, from the function counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpend {
    /// The member account the function runs in.
    pub account_id: String,
    /// The function's name as its reports gave it.
    pub function: String,
    /// Nano-units of the currency (see `pricing::to_nanos`).
    pub nanos: i64,
}

/// How long a [`DeploymentMark`] is kept after its `at`: the console shows
/// recent deployments, the lake keeps them all.
pub const DEPLOYMENTS_KEPT: Duration = Duration::days(100);

/// A deployment of an account of a team, as the recorder saw it (a stack
/// status change, or a CI report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentMark {
    pub team: TeamName,
    pub account_id: String,
    /// When it happened: the event's time (or the report's arrival).
    pub at: DateTime<Utc>,
    /// The stack's name.
    pub stack: String,
    /// CloudFormation's status (`UPDATE_COMPLETE`, …) or CI's (`SUCCEEDED`, …).
    pub status: String,
    pub source: DeploymentSource,
    /// What tells this deployment from another of the team at the same
    /// `at`; the same for every delivery of one event.
    pub id: String,
}

/// Who reported a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentSource {
    /// `DeploymentReported` from CI (or `POST /deployments`).
    Ci,
    /// A CloudFormation stack status change forwarded by a member account.
    CloudFormation,
}

impl DeploymentSource {
    /// As the lake's `source` column spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ci => "ci",
            Self::CloudFormation => "cloudformation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ci" => Some(Self::Ci),
            "cloudformation" => Some(Self::CloudFormation),
            _ => None,
        }
    }
}

impl std::fmt::Display for DeploymentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `Idempotency-Key`, scoped to the caller, with a fingerprint of the
/// request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// The key as stored: one namespace per caller.
    pub fn storage_key(&self) -> String {
        format!("{}#{}", self.scope, self.key)
    }
}

// Returned once per write; boxing the account would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    Created,
    /// The key was used before with the same request: here is its account.
    Replayed(Account),
    /// The key was used before with another request.
    KeyReused,
    QuotaExceeded {
        quota: u32,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Transitioned {
    Applied,
    /// The account was not in the expected state or revision (another
    /// event moved it); here is how it stands, if it exists.
    Stale(Option<Account>),
    NoCreationSlot,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store could not be reached: {0}")]
    Unavailable(String),
    #[error("the store holds data Purser cannot read: {0}")]
    Corrupt(String),
    #[error("the page token is not valid: {0}")]
    BadPageToken(String),
}
