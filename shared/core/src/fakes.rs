//! Small in-memory fakes of the ports, for the services' unit tests: one
//! per role of the store (and `FakeStore`, all of them in one, for what
//! takes a whole `Store`), a bus that records, an organization that records
//! and answers as scripted, and a query engine with scripted results. Each
//! keeps what its port promises (conditional writes, the quota, creation
//! slots, idempotency keys, expiring claims) and nothing more.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;

use crate::accounts::{Account, AccountState, Team, TeamName};
use crate::budgets::Budget;
use crate::events::EventEntry;
use crate::leases::{LeaseTemplate, TemplateName};
use crate::ports::TemplateStore;
use crate::ports::{
    AccountStore, BudgetStore, BusError, Column, ColumnType, CreationState, CreationStatus,
    DeploymentLog, DeploymentMark, FunctionSpend, HourlySpend, IdempotencyKey, Inserted,
    MAX_CONCURRENT_CREATIONS, Marker, Markers, MemberStatus, NamedQuery, Organization,
    OrganizationError, Page, QueryEngine, QueryError, QueryResult, RateAdd, SettlementStore,
    SpendAdd, SpendCounters, StoreError, Transitioned,
};
use crate::spend::SettledSpend;

pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long an idempotency key is held after its request.
const KEY_TTL: Duration = Duration::hours(24);

/// Teams and accounts; the open-account and in-flight counters are counted
/// from the accounts' states, which is what the real counters track.
#[derive(Default)]
pub struct FakeAccounts {
    pub teams: Mutex<HashMap<TeamName, Team>>,
    /// In insertion order.
    pub accounts: Mutex<Vec<Account>>,
    /// Idempotency keys by storage key.
    keys: Mutex<HashMap<String, HeldKey>>,
}

impl FakeAccounts {
    /// An account as if stored already, in whatever state it is.
    pub fn add(&self, account: Account) {
        locked(&self.accounts).push(account);
    }

    pub fn get(&self, id: &str) -> Option<Account> {
        locked(&self.accounts).iter().find(|a| a.id == id).cloned()
    }

    fn find(&self, found: impl Fn(&Account) -> bool) -> Option<Account> {
        locked(&self.accounts).iter().find(|a| found(a)).cloned()
    }
}

/// A key's request fingerprint, its account's id, and when it expires.
type HeldKey = (String, String, DateTime<Utc>);

fn open_of(accounts: &[Account], team: &TeamName) -> u32 {
    accounts
        .iter()
        .filter(|a| &a.team == team && a.state.is_open())
        .count() as u32
}

#[async_trait]
impl AccountStore for FakeAccounts {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        locked(&self.teams).insert(team.name.clone(), team.clone());
        Ok(())
    }

    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        Ok(locked(&self.teams).get(name).cloned())
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let mut teams: Vec<Team> = locked(&self.teams).values().cloned().collect();
        teams.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(teams)
    }

    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError> {
        Ok(open_of(&locked(&self.accounts), team))
    }

    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        let mut accounts = locked(&self.accounts);
        let mut keys = locked(&self.keys);
        let now = account.created_at;
        if let Some(key) = key
            && let Some((fingerprint, id, _)) = keys
                .get(&key.storage_key())
                .filter(|(_, _, until)| *until > now)
        {
            if *fingerprint != key.fingerprint {
                return Ok(Inserted::KeyReused);
            }
            let held = accounts.iter().find(|a| &a.id == id).cloned();
            return held
                .map(Inserted::Replayed)
                .ok_or_else(|| StoreError::Corrupt(format!("key of a missing account {id}")));
        }
        if account.state.is_open() && open_of(&accounts, &account.team) >= quota {
            return Ok(Inserted::QuotaExceeded { quota });
        }
        if accounts.iter().any(|a| a.id == account.id) {
            return Err(StoreError::Corrupt(format!("{} exists", account.id)));
        }
        accounts.push(account.clone());
        if let Some(key) = key {
            keys.insert(
                key.storage_key(),
                (key.fingerprint.clone(), account.id.clone(), now + KEY_TTL),
            );
        }
        Ok(Inserted::Created)
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.get(id))
    }

    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.find(|a| a.creation_id.as_deref() == Some(creation_id)))
    }

    /// The newest request holding it (an account lent again is held by
    /// its pooled request and by the one it serves).
    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(locked(&self.accounts)
            .iter()
            .filter(|a| a.account_id.as_deref() == Some(account_id))
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .cloned())
    }

    /// Newest first; the page token is how many were listed before.
    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let skip = match page {
            Some(p) => p
                .parse::<usize>()
                .map_err(|e| StoreError::BadPageToken(e.to_string()))?,
            None => 0,
        };
        let mut all: Vec<Account> = locked(&self.accounts)
            .iter()
            .filter(|a| team.is_none_or(|t| &a.team == t))
            .cloned()
            .collect();
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let limit = limit.max(1);
        let items: Vec<Account> = all.iter().skip(skip).take(limit).cloned().collect();
        let next = (all.len() > skip + limit).then(|| (skip + limit).to_string());
        Ok(Page { items, next })
    }

    async fn accounts_in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError> {
        let mut found: Vec<Account> = locked(&self.accounts)
            .iter()
            .filter(|a| a.state == state)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        let mut accounts = locked(&self.accounts);
        let in_flight = accounts
            .iter()
            .filter(|a| a.state.holds_creation_slot())
            .count() as u32;
        let Some(stored) = accounts.iter_mut().find(|a| a.id == next.id) else {
            return Ok(Transitioned::Stale(None));
        };
        if stored.state != from || next.base_version() != Some(stored.version) {
            return Ok(Transitioned::Stale(Some(stored.clone())));
        }
        if next.state.holds_creation_slot()
            && !from.holds_creation_slot()
            && in_flight >= MAX_CONCURRENT_CREATIONS
        {
            return Ok(Transitioned::NoCreationSlot);
        }
        *stored = next.clone();
        Ok(Transitioned::Applied)
    }

    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        Ok(locked(&self.accounts)
            .iter()
            .filter(|a| matches!(a.state, AccountState::Closing | AccountState::Closed))
            .filter(|a| a.closure_started_at.is_some_and(|t| t >= since))
            .count() as u32)
    }
}

/// Claims and remembered values, two namespaces as in the stores, each
/// standing while `expires_at >= now`.
#[derive(Default)]
pub struct FakeMarkers {
    pub claims: Mutex<HashMap<String, DateTime<Utc>>>,
    pub values: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl FakeMarkers {
    /// The claim, unless an unexpired one stands.
    fn claim(&self, key: String, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> bool {
        let mut claims = locked(&self.claims);
        if claims.get(&key).is_some_and(|until| *until >= now) {
            return false;
        }
        claims.insert(key, expires_at);
        true
    }
}

#[async_trait]
impl Markers for FakeMarkers {
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.claim(marker.key(), now, expires_at))
    }

    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(locked(&self.claims)
            .get(&marker.key())
            .is_some_and(|until| *until >= now))
    }

    async fn remember(
        &self,
        marker: &Marker,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut values = locked(&self.values);
        if values
            .get(&marker.key())
            .is_some_and(|(_, until)| *until >= now)
        {
            return Ok(false);
        }
        values.insert(marker.key(), (value.into(), expires_at));
        Ok(true)
    }

    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        Ok(locked(&self.values)
            .get(&marker.key())
            .filter(|(_, until)| *until >= now)
            .map(|(v, _)| v.clone()))
    }

    async fn forget(&self, marker: &Marker) -> Result<(), StoreError> {
        locked(&self.values).remove(&marker.key());
        Ok(())
    }

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        locked(&self.claims).remove(&marker.key());
        Ok(())
    }
}

/// A function counter's key: team, month (`YYYY-MM`), account, function.
pub type FunctionCounter = (String, String, String, String);

/// An hourly counter's key: account, hour, resource (`None`: the account's).
pub type HourlyCounter = (String, DateTime<Utc>, Option<String>);

/// Counters per team and per account and day, and per team, month and
/// function; a batch is claimed in the markers' namespace.
#[derive(Default)]
pub struct FakeCounters {
    pub markers: Arc<FakeMarkers>,
    pub teams: Mutex<BTreeMap<(String, NaiveDate), i64>>,
    pub accounts: Mutex<BTreeMap<(String, NaiveDate), i64>>,
    pub functions: Mutex<BTreeMap<FunctionCounter, i64>>,
    /// Hourly counters by account, hour and resource (`None` first: the
    /// account's own).
    pub hourly: Mutex<BTreeMap<HourlyCounter, i64>>,
}

impl FakeCounters {
    pub fn on(markers: Arc<FakeMarkers>) -> Self {
        Self {
            markers,
            ..Self::default()
        }
    }

    /// Sets a team's counter of a day (as if counted so far).
    pub fn set_team(&self, team: &TeamName, day: NaiveDate, nanos: i64) {
        locked(&self.teams).insert((team.to_string(), day), nanos);
    }

    /// Sets an account's counter of a day (as if counted so far).
    pub fn set_account(&self, account_id: &str, day: NaiveDate, nanos: i64) {
        locked(&self.accounts).insert((account_id.to_string(), day), nanos);
    }

    /// Every team's counters, summed.
    pub fn teams_total(&self) -> i64 {
        locked(&self.teams).values().sum()
    }

    /// Claims the batch, then adds to the day counters and, with a
    /// function, to its counters of a known team's month.
    fn add_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: Option<&str>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> bool {
        if !self.markers.claim(batch.key(), now, expires_at) {
            return false;
        }
        {
            let mut hourly = locked(&self.hourly);
            for rate in rates {
                *hourly
                    .entry((rate.account_id.clone(), rate.hour, None))
                    .or_default() += rate.nanos;
                if rate.resource.is_some() {
                    *hourly
                        .entry((rate.account_id.clone(), rate.hour, rate.resource.clone()))
                        .or_default() += rate.nanos;
                }
            }
        }
        let (mut teams, mut accounts) = (locked(&self.teams), locked(&self.accounts));
        let mut functions = locked(&self.functions);
        for add in adds {
            if let Some(team) = &add.team {
                *teams.entry((team.to_string(), add.day)).or_default() += add.nanos;
                if let Some(function) = function {
                    let key = (
                        team.to_string(),
                        add.day.format("%Y-%m").to_string(),
                        add.account_id.clone(),
                        function.to_string(),
                    );
                    *functions.entry(key).or_default() += add.nanos;
                }
            }
            *accounts
                .entry((add.account_id.clone(), add.day))
                .or_default() += add.nanos;
        }
        true
    }
}

fn days_of(
    counters: &Mutex<BTreeMap<(String, NaiveDate), i64>>,
    key: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(NaiveDate, i64)> {
    locked(counters)
        .iter()
        .filter(|((k, d), _)| k == key && (from..=to).contains(d))
        .map(|((_, d), n)| (*d, *n))
        .collect()
}

#[async_trait]
impl SpendCounters for FakeCounters {
    async fn record_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        Ok(self.add_once(batch, now, expires_at, None, adds, rates))
    }

    async fn record_function_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: &str,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        Ok(self.add_once(batch, now, expires_at, Some(function), adds, rates))
    }

    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        let mut found: Vec<FunctionSpend> = locked(&self.functions)
            .iter()
            .filter(|((t, p, _, _), _)| t == team.as_str() && p == period)
            .map(|((_, _, account_id, function), nanos)| FunctionSpend {
                account_id: account_id.clone(),
                function: function.clone(),
                nanos: *nanos,
            })
            .collect();
        found.sort_by(|a, b| {
            (b.nanos, &a.account_id, &a.function).cmp(&(a.nanos, &b.account_id, &b.function))
        });
        found.truncate(limit);
        Ok(found)
    }

    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        Ok(days_of(&self.teams, team.as_str(), from, to))
    }

    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        Ok(days_of(&self.accounts, account_id, from, to))
    }

    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError> {
        Ok(locked(&self.hourly)
            .iter()
            .filter(|((a, h, _), _)| a == account_id && (from..=to).contains(h))
            .map(|((_, hour, resource), nanos)| HourlySpend {
                hour: *hour,
                resource: resource.clone(),
                nanos: *nanos,
            })
            .collect())
    }
}

/// Budgets by team, each replaced only by its next revision.
#[derive(Default)]
pub struct FakeBudgets(pub Mutex<BTreeMap<TeamName, Budget>>);

#[async_trait]
impl BudgetStore for FakeBudgets {
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        let mut budgets = locked(&self.0);
        let follows = match budgets.get(&budget.team) {
            Some(stored) => stored.revision + 1 == budget.revision,
            None => budget.revision == 1,
        };
        if follows {
            budgets.insert(budget.team.clone(), budget.clone());
        }
        Ok(follows)
    }

    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        Ok(locked(&self.0).get(team).cloned())
    }

    async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        Ok(locked(&self.0).values().cloned().collect())
    }
}

/// Settlements by team and period; a later one is never replaced.
#[derive(Default)]
pub struct FakeSettlements(pub Mutex<BTreeMap<(TeamName, String), SettledSpend>>);

impl FakeSettlements {
    pub fn get(&self, team: &TeamName, period: &str) -> Option<SettledSpend> {
        locked(&self.0)
            .get(&(team.clone(), period.to_string()))
            .cloned()
    }
}

#[async_trait]
impl SettlementStore for FakeSettlements {
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError> {
        let mut stored = locked(&self.0);
        let key = (settled.team.clone(), settled.period.clone());
        if stored
            .get(&key)
            .is_some_and(|s| s.settled_at > settled.settled_at)
        {
            return Ok(false);
        }
        stored.insert(key, settled.clone());
        Ok(true)
    }

    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        Ok(self.get(team, period))
    }
}

/// Deployment marks by team, time and id: a mark written again replaces
/// itself. Kept forever (`DEPLOYMENTS_KEPT` allows it).
#[derive(Default)]
pub struct FakeDeployments(pub Mutex<BTreeMap<DeploymentKey, DeploymentMark>>);

/// A mark's key: team, time, id.
pub type DeploymentKey = (String, DateTime<Utc>, String);

impl FakeDeployments {
    /// Every mark, oldest first.
    pub fn all(&self) -> Vec<DeploymentMark> {
        locked(&self.0).values().cloned().collect()
    }
}

#[async_trait]
impl DeploymentLog for FakeDeployments {
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        let key = (mark.team.to_string(), mark.at, mark.id.clone());
        locked(&self.0).insert(key, mark.clone());
        Ok(())
    }

    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        Ok(locked(&self.0)
            .iter()
            .rev()
            .filter(|((t, at, _), _)| t == team.as_str() && *at >= since)
            .take(limit)
            .map(|(_, mark)| mark.clone())
            .collect())
    }
}

/// Every role in one, for what takes a whole `Store`.
#[derive(Default)]
pub struct FakeStore {
    pub accounts: FakeAccounts,
    pub counters: FakeCounters,
    pub budgets: FakeBudgets,
    pub settlements: FakeSettlements,
    pub deployments: FakeDeployments,
    pub templates: FakeTemplates,
}

/// Every version of every template, by name.
#[derive(Default)]
pub struct FakeTemplates {
    pub versions: Mutex<BTreeMap<TemplateName, Vec<LeaseTemplate>>>,
}

#[async_trait]
impl TemplateStore for FakeTemplates {
    async fn put_template(&self, template: &LeaseTemplate) -> Result<bool, StoreError> {
        let mut versions = locked(&self.versions);
        let stored = versions.entry(template.name.clone()).or_default();
        let latest = stored.last().map_or(0, |t| t.version);
        if template.version == 0 || template.version != latest + 1 {
            return Ok(false);
        }
        stored.push(template.clone());
        Ok(true)
    }
    async fn template(&self, name: &TemplateName) -> Result<Option<LeaseTemplate>, StoreError> {
        Ok(locked(&self.versions)
            .get(name)
            .and_then(|v| v.last().cloned()))
    }
    async fn template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        Ok(locked(&self.versions)
            .get(name)
            .and_then(|v| v.iter().find(|t| t.version == version).cloned()))
    }
    async fn templates(&self) -> Result<Vec<LeaseTemplate>, StoreError> {
        Ok(locked(&self.versions)
            .values()
            .filter_map(|v| v.last().cloned())
            .collect())
    }
}

#[async_trait]
impl TemplateStore for FakeStore {
    async fn put_template(&self, template: &LeaseTemplate) -> Result<bool, StoreError> {
        self.templates.put_template(template).await
    }
    async fn template(&self, name: &TemplateName) -> Result<Option<LeaseTemplate>, StoreError> {
        self.templates.template(name).await
    }
    async fn template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        self.templates.template_version(name, version).await
    }
    async fn templates(&self) -> Result<Vec<LeaseTemplate>, StoreError> {
        self.templates.templates().await
    }
}

impl FakeStore {
    pub fn markers(&self) -> &FakeMarkers {
        &self.counters.markers
    }
}

#[async_trait]
impl AccountStore for FakeStore {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        self.accounts.put_team(team).await
    }
    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        self.accounts.team(name).await
    }
    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.accounts.teams().await
    }
    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError> {
        self.accounts.open_accounts(team).await
    }
    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        self.accounts.insert_account(account, quota, key).await
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.accounts.account(id).await
    }
    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError> {
        self.accounts.account_by_creation(creation_id).await
    }
    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        self.accounts.account_by_account_id(account_id).await
    }
    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        self.accounts.list_accounts(team, page, limit).await
    }
    async fn accounts_in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError> {
        self.accounts.accounts_in_state(state).await
    }
    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        self.accounts.transition(from, next).await
    }
    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        self.accounts.closures_since(since).await
    }
}

#[async_trait]
impl SpendCounters for FakeStore {
    async fn record_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        self.counters
            .record_spend_once(batch, now, expires_at, adds, rates)
            .await
    }
    async fn record_function_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: &str,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        self.counters
            .record_function_spend_once(batch, now, expires_at, function, adds, rates)
            .await
    }
    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        self.counters.team_function_spend(team, period, limit).await
    }
    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.counters.team_spend(team, from, to).await
    }
    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.counters.account_spend(account_id, from, to).await
    }
    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError> {
        self.counters.hourly_spend(account_id, from, to).await
    }
}

#[async_trait]
impl BudgetStore for FakeStore {
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        self.budgets.put_budget(budget).await
    }
    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        self.budgets.budget(team).await
    }
    async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        self.budgets.budgets().await
    }
}

#[async_trait]
impl SettlementStore for FakeStore {
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError> {
        self.settlements.put_settled_spend(settled).await
    }
    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        self.settlements.settled_spend(team, period).await
    }
}

#[async_trait]
impl DeploymentLog for FakeStore {
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        self.deployments.record_deployment(mark).await
    }
    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        self.deployments
            .recent_deployments(team, since, limit)
            .await
    }
}

#[async_trait]
impl Markers for FakeStore {
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.markers().claim_once(marker, now, expires_at).await
    }
    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.markers().is_claimed(marker, now).await
    }
    async fn remember(
        &self,
        marker: &Marker,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.markers()
            .remember(marker, value, now, expires_at)
            .await
    }
    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.markers().recall(marker, now).await
    }
    async fn forget(&self, marker: &Marker) -> Result<(), StoreError> {
        self.markers().forget(marker).await
    }
    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        self.markers().release(marker).await
    }
}

/// Records every entry put; refuses the next `refuse` puts.
#[derive(Default)]
pub struct FakeBus {
    pub entries: Mutex<Vec<EventEntry>>,
    pub refuse: Mutex<u32>,
}

impl FakeBus {
    /// The details of the events of `detail_type`, in the order put.
    pub fn of(&self, detail_type: &str) -> Vec<Value> {
        locked(&self.entries)
            .iter()
            .filter(|e| e.detail_type.as_deref() == Some(detail_type))
            .map(|e| serde_json::from_str(e.detail.as_deref().unwrap_or("null")).unwrap())
            .collect()
    }

    /// Every event's detail type, in the order put.
    pub fn detail_types(&self) -> Vec<String> {
        locked(&self.entries)
            .iter()
            .map(|e| e.detail_type.clone().unwrap_or_default())
            .collect()
    }
}

#[async_trait]
impl crate::ports::EventBus for FakeBus {
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError> {
        let mut refuse = locked(&self.refuse);
        if *refuse > 0 {
            *refuse -= 1;
            return Err(BusError::Unavailable("refused by the test".into()));
        }
        locked(&self.entries).extend(entries);
        Ok(())
    }
}

/// Records each call (`"name arg…"`); creations start `IN_PROGRESS` as
/// `car-1`, `car-2`, … unless scripted; statuses, member states and
/// failures are what the test says.
pub struct FakeOrganization {
    pub calls: Mutex<Vec<String>>,
    /// What the next `create_account`s answer, before the default.
    pub creations: Mutex<VecDeque<Result<CreationStatus, OrganizationError>>>,
    /// What `creation_status` answers, by creation id.
    pub statuses: Mutex<HashMap<String, CreationStatus>>,
    /// What the next calls of a name (`"move_account"`, …) fail with.
    pub failures: Mutex<HashMap<&'static str, VecDeque<OrganizationError>>>,
    /// Member states by account id; `Active` when unset.
    pub members: Mutex<HashMap<String, MemberStatus>>,
    pub member_count: Mutex<u32>,
    /// Attached policies by account id.
    pub attached: Mutex<HashMap<String, Vec<String>>>,
    /// What `find_creation` finds, by email and name (once).
    pub found: Mutex<HashMap<(String, String), CreationStatus>>,
}

impl Default for FakeOrganization {
    fn default() -> Self {
        Self {
            calls: Mutex::default(),
            creations: Mutex::default(),
            statuses: Mutex::default(),
            failures: Mutex::default(),
            members: Mutex::default(),
            member_count: Mutex::new(10),
            attached: Mutex::default(),
            found: Mutex::default(),
        }
    }
}

impl FakeOrganization {
    /// The calls made of `name`, with their arguments.
    pub fn calls_of(&self, name: &str) -> Vec<String> {
        locked(&self.calls)
            .iter()
            .filter(|c| c.split(' ').next() == Some(name))
            .cloned()
            .collect()
    }

    /// The next `create_account` fails with `error`.
    pub fn creations_fail(&self, error: OrganizationError) {
        locked(&self.creations).push_back(Err(error));
    }

    /// The next call of `name` fails with `error`.
    pub fn fail_next(&self, name: &'static str, error: OrganizationError) {
        locked(&self.failures)
            .entry(name)
            .or_default()
            .push_back(error);
    }

    fn call(&self, name: &'static str, args: &[&str]) -> Result<(), OrganizationError> {
        let mut call = name.to_string();
        for a in args {
            call.push(' ');
            call.push_str(a);
        }
        locked(&self.calls).push(call);
        match locked(&self.failures)
            .get_mut(name)
            .and_then(VecDeque::pop_front)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Organization for FakeOrganization {
    async fn create_account(
        &self,
        email: &str,
        name: &str,
        _: &[(String, String)],
    ) -> Result<CreationStatus, OrganizationError> {
        self.call("create_account", &[email, name])?;
        if let Some(scripted) = locked(&self.creations).pop_front() {
            return scripted;
        }
        let n = self.calls_of("create_account").len();
        Ok(CreationStatus {
            id: format!("car-{n}"),
            state: CreationState::InProgress,
            account_id: None,
            failure_reason: None,
        })
    }

    async fn creation_status(
        &self,
        creation_id: &str,
    ) -> Result<CreationStatus, OrganizationError> {
        self.call("creation_status", &[creation_id])?;
        locked(&self.statuses)
            .get(creation_id)
            .cloned()
            .ok_or_else(|| OrganizationError::NotFound(creation_id.into()))
    }

    async fn find_creation(
        &self,
        email: &str,
        name: &str,
    ) -> Result<Option<CreationStatus>, OrganizationError> {
        self.call("find_creation", &[email, name])?;
        Ok(locked(&self.found).remove(&(email.to_string(), name.to_string())))
    }

    async fn ensure_ou(&self, path: &[&str]) -> Result<String, OrganizationError> {
        let path = path.join("/");
        self.call("ensure_ou", &[&path])?;
        Ok(format!("ou-{}", path.replace('/', "-")))
    }

    async fn move_account(&self, account_id: &str, ou_id: &str) -> Result<(), OrganizationError> {
        self.call("move_account", &[account_id, ou_id])
    }

    async fn tag_account(
        &self,
        account_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), OrganizationError> {
        let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.call("tag_account", &[account_id, &tags.join(",")])
    }

    async fn close_account(&self, account_id: &str) -> Result<(), OrganizationError> {
        self.call("close_account", &[account_id])?;
        locked(&self.members).insert(account_id.into(), MemberStatus::PendingClosure);
        Ok(())
    }

    async fn member_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError> {
        self.call("member_status", &[account_id])?;
        Ok(locked(&self.members)
            .get(account_id)
            .copied()
            .unwrap_or(MemberStatus::Active))
    }

    async fn member_account_count(&self) -> Result<u32, OrganizationError> {
        self.call("member_account_count", &[])?;
        Ok(*locked(&self.member_count))
    }

    async fn ensure_policy(
        &self,
        name: &str,
        _: &str,
        _: &str,
    ) -> Result<String, OrganizationError> {
        self.call("ensure_policy", &[name])?;
        Ok(format!("p-{name}"))
    }

    async fn attach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        self.call("attach_policy", &[policy_id, account_id])?;
        let mut attached = locked(&self.attached);
        let policies = attached.entry(account_id.into()).or_default();
        if !policies.iter().any(|p| p == policy_id) {
            policies.push(policy_id.into());
        }
        Ok(())
    }

    async fn detach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        self.call("detach_policy", &[policy_id, account_id])?;
        if let Some(policies) = locked(&self.attached).get_mut(account_id) {
            policies.retain(|p| p != policy_id);
        }
        Ok(())
    }

    async fn policies_of(&self, account_id: &str) -> Result<Vec<String>, OrganizationError> {
        self.call("policies_of", &[account_id])?;
        Ok(locked(&self.attached)
            .get(account_id)
            .cloned()
            .unwrap_or_default())
    }
}

/// A query's name and the parameters it was run with.
pub type Run = (String, Vec<String>);
/// Rows, or the message of the engine's failure.
pub type Answer = Result<Vec<Vec<Value>>, String>;

/// Answers each named query with the rows scripted for its parameters
/// (none when unscripted), in the columns its header declares; records
/// each run with its parameters.
#[derive(Default)]
pub struct FakeQueries {
    /// Rows, or the failure the engine reports, by run.
    pub results: Mutex<HashMap<Run, Answer>>,
    pub runs: Mutex<Vec<Run>>,
}

impl FakeQueries {
    /// `name` run with `params` answers `rows` (or fails with the message).
    pub fn answer(&self, name: &str, params: &[&str], rows: Result<Vec<Vec<Value>>, &str>) {
        let params = params.iter().map(|p| p.to_string()).collect();
        locked(&self.results).insert((name.into(), params), rows.map_err(String::from));
    }

    /// The queries run, with their parameters, in order.
    pub fn runs(&self) -> Vec<Run> {
        locked(&self.runs).clone()
    }
}

#[async_trait]
impl QueryEngine for FakeQueries {
    async fn run(&self, query: &NamedQuery, params: &[String]) -> Result<QueryResult, QueryError> {
        let key = (query.name.clone(), params.to_vec());
        locked(&self.runs).push(key.clone());
        let rows = match locked(&self.results).get(&key) {
            Some(Ok(rows)) => rows.clone(),
            Some(Err(message)) => return Err(QueryError::Failed(message.clone())),
            None => Vec::new(),
        };
        let columns = crate::lake::named_queries::returns(query)
            .into_iter()
            .map(|c| Column {
                name: c.name,
                column_type: ColumnType::Other,
            })
            .collect();
        Ok(QueryResult {
            columns,
            rows,
            bytes_scanned: None,
        })
    }
}

/// A cleaner whose runs finish when told: `Running` until `finish` (or at
/// once with `instant`), every start recorded as (account, pass, attempt).
#[derive(Debug, Default)]
pub struct FakeCleaner {
    pub starts: Mutex<Vec<(String, u32, u32)>>,
    pub statuses: Mutex<BTreeMap<String, crate::ports::CleaningStatus>>,
    /// Statuses new runs get at once, in order (then `Succeeded`).
    pub outcomes: Mutex<std::collections::VecDeque<crate::ports::CleaningStatus>>,
    pub configs: Mutex<Vec<String>>,
}

#[async_trait]
impl crate::ports::Cleaner for FakeCleaner {
    async fn start(
        &self,
        account_id: &str,
        config: &str,
        pass: u32,
        attempt: u32,
    ) -> Result<String, crate::ports::CleanerError> {
        let mut starts = locked(&self.starts);
        starts.push((account_id.to_string(), pass, attempt));
        locked(&self.configs).push(config.to_string());
        let id = format!("run-{}", starts.len());
        let status = locked(&self.outcomes)
            .pop_front()
            .unwrap_or(crate::ports::CleaningStatus::Succeeded);
        locked(&self.statuses).insert(id.clone(), status);
        Ok(id)
    }

    async fn status(
        &self,
        run_id: &str,
    ) -> Result<crate::ports::CleaningStatus, crate::ports::CleanerError> {
        locked(&self.statuses)
            .get(run_id)
            .cloned()
            .ok_or_else(|| crate::ports::CleanerError::NotFound(run_id.into()))
    }
}
