//! The ports through which the domain reaches the world. Each has an AWS
//! adapter (`purser-aws`) and an embedded one (`purser-local`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::account::{Account, AccountState};
use crate::event::EventEntry;
use crate::team::{Team, TeamName};

/// Puts events on an event bus.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts every entry, splitting into calls within the bus's limits and
    /// retrying entries the bus refused for a passing reason. Returns an
    /// error naming the entries that still were not accepted.
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{} of {total} events were not accepted: {}", .rejected.len(), summarize(.rejected))]
    Rejected {
        total: usize,
        rejected: Vec<RejectedEntry>,
    },
    #[error("the event bus could not be reached: {0}")]
    Unavailable(String),
}

/// An entry the bus refused, with the bus's own error code and message.
#[derive(Debug, Clone)]
pub struct RejectedEntry {
    pub entry: EventEntry,
    pub code: String,
    pub message: String,
}

fn summarize(rejected: &[RejectedEntry]) -> String {
    rejected
        .iter()
        .map(|r| format!("{} ({})", r.code, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Purser's state: teams, accounts and the counters that keep their rules
/// (a team's quota of open accounts, the organization's concurrent
/// creations), and idempotency keys. Every write is conditional, so a
/// repeated or concurrent event cannot apply twice.
#[async_trait]
pub trait Store: Send + Sync {
    /// Claims `key` until `expires_at`. Returns `true` for the first claim
    /// and `false` while an earlier claim stands; an expired claim can be
    /// taken again. Atomic: of concurrent claims exactly one wins.
    async fn claim_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn put_team(&self, team: &Team) -> Result<(), StoreError>;

    /// The team's settings, `None` when it was never configured.
    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError>;

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

    /// Writes `next` if the stored account is still in state `from`, in one
    /// atomic step with the counters the change moves: the team's open
    /// accounts, and the organization's creations in flight (refused with
    /// `NoCreationSlot` when `MAX_CONCURRENT_CREATIONS` are in flight).
    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError>;

    /// How many accounts had `CloseAccount` called since `since`.
    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError>;
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
    /// The account was not in the expected state (another event moved it);
    /// here is how it stands, if it exists.
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
