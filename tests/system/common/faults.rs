//! Fault injection: the ports of `purser up` behind a wrapper that counts
//! every call the handlers make and fails exactly the k-th one, with the
//! port's own "unavailable" error (what a network blip or a throttled AWS
//! API gives, and what every caller retries), passing everything else
//! through to the embedded adapters.
//!
//! What is wrapped is what `Ports` holds, so the handlers' calls: the
//! Store's roles, the Organization, the EventBus, the LakeSink and
//! MemberLambdas (not the Clock, which cannot fail, nor the QueryEngine,
//! which no flow under test calls). The simulated organization completes
//! creations and announces them on the bus by itself, and the HTTP
//! endpoint's `PutEvents` puts on the bus directly: both play AWS, not
//! Purser, so they never fail here.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use purser_core::Ports;
use purser_core::accounts::{Account, AccountState, Team, TeamName};
use purser_core::budgets::Budget;
use purser_core::events::EventEntry;
use purser_core::lake::LakeTable;
use purser_core::ports::{
    AccountStore, Appended, BudgetStore, BusError, CreationStatus, DeploymentLog, DeploymentMark,
    EventBus, FunctionSpend, IdempotencyKey, Inserted, LakeError, LakeSink, LambdasError, Marker,
    Markers, MemberFunction, MemberLambdas, MemberStatus, Organization, OrganizationError, Page,
    SettlementStore, SpendAdd, SpendCounters, Store, StoreError, Transitioned,
};
use purser_core::spend::SettledSpend;
use purser_local::runtime::PortsHook;
use serde_json::Value;

/// One call a handler made through a wrapped port.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its position among the calls counted since [`Faults::arm`], from 1.
    pub n: usize,
    /// `Port::method`, e.g. `EventBus::put`.
    pub name: String,
    /// What it was about: the detail types put, the state left, the marker.
    pub what: String,
    /// Whether this is the call that was failed.
    pub failed: bool,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}({})", self.n, self.name, self.what)?;
        if self.failed {
            f.write_str(" FAILED")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct State {
    armed: bool,
    fail_at: Option<usize>,
    calls: Vec<Call>,
}

/// The counter and the switch the wrappers share.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts counting calls from 1 (forgetting earlier ones), failing the
    /// `fail_at`-th, if any. Calls before are passed through uncounted.
    pub fn arm(&self, fail_at: Option<usize>) {
        let mut state = self.lock();
        *state = State {
            armed: true,
            fail_at,
            calls: Vec::new(),
        };
    }

    /// Stops counting and failing (the calls counted so far are kept).
    pub fn disarm(&self) {
        self.lock().armed = false;
    }

    /// The calls counted since [`Faults::arm`], in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The call that was failed, if the count reached it.
    pub fn failed(&self) -> Option<Call> {
        self.lock().calls.iter().find(|c| c.failed).cloned()
    }

    /// How many calls passed through to `name` (`Port::method`) and the
    /// adapter (the failed one does not reach it).
    pub fn passed(&self, name: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.name == name && !c.failed)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a call; `Err` with a message when it is the one to fail.
    fn enter(&self, name: &str, what: String) -> Result<(), String> {
        let mut state = self.lock();
        if !state.armed {
            return Ok(());
        }
        let n = state.calls.len() + 1;
        let failed = state.fail_at == Some(n);
        state.calls.push(Call {
            n,
            name: name.to_string(),
            what: what.clone(),
            failed,
        });
        if failed {
            Err(format!("injected fault: call #{n}, {name}({what})"))
        } else {
            Ok(())
        }
    }

    /// The hook for `RuntimeConfig::wrap_ports`: every port but the clock
    /// and the query engine behind this counter.
    pub fn hook(self: &Arc<Self>) -> PortsHook {
        let faults = Arc::clone(self);
        PortsHook::new(move |ports: Ports| {
            let lake = ports.lake.clone().map(|inner| {
                Arc::new(FaultyLake {
                    inner,
                    faults: Arc::clone(&faults),
                }) as Arc<dyn LakeSink>
            });
            Ports {
                store: Arc::new(FaultyStore {
                    inner: ports.store.clone(),
                    faults: Arc::clone(&faults),
                }),
                bus: Arc::new(FaultyBus {
                    inner: ports.bus.clone(),
                    faults: Arc::clone(&faults),
                }),
                organization: Arc::new(FaultyOrganization {
                    inner: ports.organization.clone(),
                    faults: Arc::clone(&faults),
                }),
                member_lambdas: Arc::new(FaultyLambdas {
                    inner: ports.member_lambdas.clone(),
                    faults: Arc::clone(&faults),
                }),
                lake,
                ..ports
            }
        })
    }
}

fn store_error(e: String) -> StoreError {
    StoreError::Unavailable(e)
}

fn org_error(e: String) -> OrganizationError {
    OrganizationError::Unavailable(e)
}

fn state(s: AccountState) -> String {
    format!("{s:?}").to_lowercase()
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    fn enter(&self, name: &str, what: impl Into<String>) -> Result<(), StoreError> {
        self.faults
            .enter(&format!("Store::{name}"), what.into())
            .map_err(store_error)
    }
}

#[async_trait]
impl AccountStore for FaultyStore {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        self.enter("put_team", team.name.to_string())?;
        self.inner.put_team(team).await
    }

    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        self.enter("team", name.to_string())?;
        self.inner.team(name).await
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.enter("teams", "")?;
        self.inner.teams().await
    }

    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError> {
        self.enter("open_accounts", team.to_string())?;
        self.inner.open_accounts(team).await
    }

    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        self.enter("insert_account", account.team.to_string())?;
        self.inner.insert_account(account, quota, key).await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.enter("account", id)?;
        self.inner.account(id).await
    }

    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError> {
        self.enter("account_by_creation", creation_id)?;
        self.inner.account_by_creation(creation_id).await
    }

    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        self.enter("account_by_account_id", account_id)?;
        self.inner.account_by_account_id(account_id).await
    }

    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        self.enter(
            "list_accounts",
            team.map(TeamName::to_string).unwrap_or_default(),
        )?;
        self.inner.list_accounts(team, page, limit).await
    }

    async fn accounts_in_state(&self, state_: AccountState) -> Result<Vec<Account>, StoreError> {
        self.enter("accounts_in_state", state(state_))?;
        self.inner.accounts_in_state(state_).await
    }

    async fn team_accounts_in(
        &self,
        team: &TeamName,
        states: &[AccountState],
    ) -> Result<Vec<Account>, StoreError> {
        let what: Vec<String> = states.iter().map(|s| state(*s)).collect();
        self.enter("team_accounts_in", format!("{team}, {}", what.join("|")))?;
        self.inner.team_accounts_in(team, states).await
    }

    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        self.enter(
            "transition",
            format!("{} -> {}", state(from), state(next.state)),
        )?;
        self.inner.transition(from, next).await
    }

    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        self.enter("closures_since", "")?;
        self.inner.closures_since(since).await
    }
}

#[async_trait]
impl SpendCounters for FaultyStore {
    async fn record_spend_once(
        &self,
        batch: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[purser_core::RateAdd],
    ) -> Result<bool, StoreError> {
        self.enter("record_spend_once", batch.key())?;
        self.inner
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
        rates: &[purser_core::RateAdd],
    ) -> Result<bool, StoreError> {
        self.enter("record_function_spend_once", batch.key())?;
        self.inner
            .record_function_spend_once(batch, now, expires_at, function, adds, rates)
            .await
    }

    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        self.enter("team_function_spend", format!("{team}, {period}"))?;
        self.inner.team_function_spend(team, period, limit).await
    }

    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.enter("team_spend", team.to_string())?;
        self.inner.team_spend(team, from, to).await
    }

    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.enter("account_spend", account_id)?;
        self.inner.account_spend(account_id, from, to).await
    }

    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<purser_core::HourlySpend>, StoreError> {
        self.enter("hourly_spend", account_id)?;
        self.inner.hourly_spend(account_id, from, to).await
    }
}

#[async_trait]
impl BudgetStore for FaultyStore {
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        self.enter("put_budget", budget.team.to_string())?;
        self.inner.put_budget(budget).await
    }

    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        self.enter("budget", team.to_string())?;
        self.inner.budget(team).await
    }

    async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        self.enter("budgets", "")?;
        self.inner.budgets().await
    }
}

#[async_trait]
impl SettlementStore for FaultyStore {
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError> {
        self.enter("put_settled_spend", "")?;
        self.inner.put_settled_spend(settled).await
    }

    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        self.enter("settled_spend", format!("{team}, {period}"))?;
        self.inner.settled_spend(team, period).await
    }
}

#[async_trait]
impl purser_core::ports::TemplateStore for FaultyStore {
    async fn put_template(
        &self,
        template: &purser_core::leases::LeaseTemplate,
    ) -> Result<bool, StoreError> {
        self.enter("put_template", template.name.to_string())?;
        self.inner.put_template(template).await
    }

    async fn template(
        &self,
        name: &purser_core::leases::TemplateName,
    ) -> Result<Option<purser_core::leases::LeaseTemplate>, StoreError> {
        self.enter("template", name.to_string())?;
        self.inner.template(name).await
    }

    async fn template_version(
        &self,
        name: &purser_core::leases::TemplateName,
        version: u64,
    ) -> Result<Option<purser_core::leases::LeaseTemplate>, StoreError> {
        self.enter("template_version", format!("{name}, {version}"))?;
        self.inner.template_version(name, version).await
    }

    async fn templates(&self) -> Result<Vec<purser_core::leases::LeaseTemplate>, StoreError> {
        self.enter("templates", "")?;
        self.inner.templates().await
    }
}

#[async_trait]
impl DeploymentLog for FaultyStore {
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        self.enter(
            "record_deployment",
            format!("{}, {}", mark.team, mark.stack),
        )?;
        self.inner.record_deployment(mark).await
    }

    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        self.enter("recent_deployments", team.to_string())?;
        self.inner.recent_deployments(team, since, limit).await
    }
}

#[async_trait]
impl Markers for FaultyStore {
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.enter("claim_once", marker.key())?;
        self.inner.claim_once(marker, now, expires_at).await
    }

    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.enter("is_claimed", marker.key())?;
        self.inner.is_claimed(marker, now).await
    }

    async fn remember(
        &self,
        marker: &Marker,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.enter("remember", marker.key())?;
        self.inner.remember(marker, value, now, expires_at).await
    }

    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.enter("recall", marker.key())?;
        self.inner.recall(marker, now).await
    }

    async fn forget(&self, marker: &Marker) -> Result<(), StoreError> {
        self.enter("forget", marker.key())?;
        self.inner.forget(marker).await
    }
    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        self.enter("release", marker.key())?;
        self.inner.release(marker).await
    }
}

pub struct FaultyBus {
    inner: Arc<dyn EventBus>,
    faults: Arc<Faults>,
}

#[async_trait]
impl EventBus for FaultyBus {
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError> {
        let types: Vec<&str> = entries
            .iter()
            .map(|e| e.detail_type.as_deref().unwrap_or("?"))
            .collect();
        self.faults
            .enter("EventBus::put", types.join(", "))
            .map_err(BusError::Unavailable)?;
        self.inner.put(entries).await
    }
}

pub struct FaultyLake {
    inner: Arc<dyn LakeSink>,
    faults: Arc<Faults>,
}

#[async_trait]
impl LakeSink for FaultyLake {
    async fn append(&self, table: LakeTable, records: Vec<Value>) -> Result<Appended, LakeError> {
        self.faults
            .enter(
                "LakeSink::append",
                format!("{}, {} records", table.name(), records.len()),
            )
            .map_err(LakeError::Unavailable)?;
        self.inner.append(table, records).await
    }
}

pub struct FaultyLambdas {
    inner: Arc<dyn MemberLambdas>,
    faults: Arc<Faults>,
}

#[async_trait]
impl MemberLambdas for FaultyLambdas {
    async fn functions(&self, account_id: &str) -> Result<Vec<MemberFunction>, LambdasError> {
        self.faults
            .enter("MemberLambdas::functions", account_id.to_string())
            .map_err(LambdasError::Unavailable)?;
        self.inner.functions(account_id).await
    }

    async fn set_reserved_concurrency(
        &self,
        function: &MemberFunction,
        reserved: Option<u32>,
    ) -> Result<(), LambdasError> {
        self.faults
            .enter(
                "MemberLambdas::set_reserved_concurrency",
                format!("{}, {reserved:?}", function.name),
            )
            .map_err(LambdasError::Unavailable)?;
        self.inner
            .set_reserved_concurrency(function, reserved)
            .await
    }
}

pub struct FaultyOrganization {
    inner: Arc<dyn Organization>,
    faults: Arc<Faults>,
}

impl FaultyOrganization {
    fn enter(&self, name: &str, what: impl Into<String>) -> Result<(), OrganizationError> {
        self.faults
            .enter(&format!("Organization::{name}"), what.into())
            .map_err(org_error)
    }
}

#[async_trait]
impl Organization for FaultyOrganization {
    async fn create_account(
        &self,
        email: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<CreationStatus, OrganizationError> {
        self.enter("create_account", email)?;
        self.inner.create_account(email, name, tags).await
    }

    async fn creation_status(
        &self,
        creation_id: &str,
    ) -> Result<CreationStatus, OrganizationError> {
        self.enter("creation_status", creation_id)?;
        self.inner.creation_status(creation_id).await
    }

    async fn find_creation(
        &self,
        email: &str,
        name: &str,
    ) -> Result<Option<CreationStatus>, OrganizationError> {
        self.enter("find_creation", email)?;
        self.inner.find_creation(email, name).await
    }

    async fn ensure_ou(&self, path: &[&str]) -> Result<String, OrganizationError> {
        self.enter("ensure_ou", path.join("/"))?;
        self.inner.ensure_ou(path).await
    }

    async fn move_account(&self, account_id: &str, ou_id: &str) -> Result<(), OrganizationError> {
        self.enter("move_account", account_id)?;
        self.inner.move_account(account_id, ou_id).await
    }

    async fn tag_account(
        &self,
        account_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), OrganizationError> {
        self.enter("tag_account", account_id)?;
        self.inner.tag_account(account_id, tags).await
    }

    async fn close_account(&self, account_id: &str) -> Result<(), OrganizationError> {
        self.enter("close_account", account_id)?;
        self.inner.close_account(account_id).await
    }

    async fn member_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError> {
        self.enter("member_status", account_id)?;
        self.inner.member_status(account_id).await
    }

    async fn member_account_count(&self) -> Result<u32, OrganizationError> {
        self.enter("member_account_count", "")?;
        self.inner.member_account_count().await
    }

    async fn ensure_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, OrganizationError> {
        self.enter("ensure_policy", name)?;
        self.inner.ensure_policy(name, description, content).await
    }

    async fn attach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        self.enter("attach_policy", format!("{policy_id}, {account_id}"))?;
        self.inner.attach_policy(policy_id, account_id).await
    }

    async fn detach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        self.enter("detach_policy", format!("{policy_id}, {account_id}"))?;
        self.inner.detach_policy(policy_id, account_id).await
    }

    async fn policies_of(&self, account_id: &str) -> Result<Vec<String>, OrganizationError> {
        self.enter("policies_of", account_id)?;
        self.inner.policies_of(account_id).await
    }
}
