//! The budget action `throttle-lambdas`: while a budget demands it, every
//! Lambda function of the team's ready and frozen accounts has reserved
//! concurrency 0 (what stops invocations already coming, which an SCP does
//! not); when it no longer does (a raised budget, a new period), each
//! function gets back the setting it had.
//!
//! What is remembered, in the store, per account:
//!
//! - `throttled#{account}`: the episode, an id of the throttle. Written
//!   first and forgotten last, so a crash anywhere leaves a trace that the
//!   next evaluation finishes from; and an account never throttled costs
//!   one read to restore, with no call into the member account.
//! - `throttled#{account}#{episode}#{region}#{name}`: a function's reserved
//!   concurrency before the episode. `remember` keeps the first value, so
//!   a repeated throttle never overwrites the original with its own 0; the
//!   episode in the key keeps memories of an earlier episode (a function
//!   deleted while throttled) out of a later one.
//!
//! - `throttled-count#{account}`: how many functions the last announced
//!   throttle named, for `GET /teams/{team}/budget`.
//!
//! Announcements (`LambdasThrottled` per distinct set of functions,
//! `LambdasRestored` per episode) are remembered before they are put and
//! forgotten again if the put fails, so a retry announces what a failed
//! put did not, and a repeat announces nothing. A restoration is announced
//! only for an episode whose throttle was.
//!
//! Evaluations of one team run one at a time (`Budgets::evaluate` holds a
//! lease), so a throttle and a restore of the same account never overlap:
//! Purser's own 0 is never remembered as a function's original setting.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::accounts::TeamName;
use crate::accounts::{Account, AccountState, rfc3339};
use crate::budgets::BudgetError;
use crate::events::EventEntry;
use crate::ports::{
    AccountStore, Clock, EventBus, LambdasError, Marker, Markers, MemberFunction, MemberLambdas,
    StoreError,
};

pub const LAMBDAS_THROTTLED: &str = "LambdasThrottled";
pub const LAMBDAS_RESTORED: &str = "LambdasRestored";

/// How long what a throttle changed is remembered: well past a period,
/// after which a new period restores everything anyway.
const MEMORY_DAYS: i64 = 400;
/// How long an announcement is remembered (an episode ends with its period).
const ANNOUNCED_DAYS: i64 = 62;
/// At most this many functions are named in one event (256 KB per entry);
/// `count` always counts them all.
pub const MAX_NAMED_FUNCTIONS: usize = 250;

/// A function as an event names it, with a reserved concurrency: the one it
/// had before (`LambdasThrottled`) or has again (`LambdasRestored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFunction {
    pub region: String,
    pub name: String,
    pub reserved_concurrency: Option<u32>,
}

/// The detail of `LambdasThrottled`: each function with the reserved
/// concurrency it had before.
pub fn throttled_detail(
    account: &Account,
    functions: &[ChangedFunction],
    at: DateTime<Utc>,
) -> Value {
    functions_detail(
        account,
        functions,
        at,
        "previous_reserved_concurrency",
        ("BUDGET_EXCEEDED", "the team is over its budget"),
    )
}

/// The detail of `LambdasRestored`: each function with the reserved
/// concurrency it has again.
pub fn restored_detail(
    account: &Account,
    functions: &[ChangedFunction],
    at: DateTime<Utc>,
) -> Value {
    functions_detail(
        account,
        functions,
        at,
        "reserved_concurrency",
        ("BUDGET_RESTORED", "the team is back within its budget"),
    )
}

fn functions_detail(
    account: &Account,
    functions: &[ChangedFunction],
    at: DateTime<Utc>,
    concurrency_field: &str,
    (reason_code, reason): (&str, &str),
) -> Value {
    let named: Vec<Value> = functions
        .iter()
        .take(MAX_NAMED_FUNCTIONS)
        .map(|f| json!({"region": f.region, "name": f.name, concurrency_field: f.reserved_concurrency}))
        .collect();
    json!({"version": 1, "team": account.team, "request_id": account.id,
        "account_id": account.account_id, "functions": named, "count": functions.len(),
        "reason_code": reason_code, "reason": reason, "at": rfc3339(at)})
}

/// An account whose member role refuses Purser is logged and skipped: one
/// account without the role must not keep the others running, and the
/// hourly evaluation tries it again.
fn skip_refused(
    team: &TeamName,
    what: &str,
    result: Result<(), BudgetError>,
) -> Result<(), BudgetError> {
    match result {
        Err(BudgetError::Lambdas(LambdasError::AccessDenied {
            account_id,
            role,
            message,
        })) => {
            tracing::error!(team = %team, account_id, role, %message,
                "cannot {what} the account's Lambda functions: deploy the member role (infra/member-account.yaml)");
            Ok(())
        }
        other => other,
    }
}

fn episode_key(account_id: &str) -> Marker {
    Marker::ThrottleEpisode {
        account_id: account_id.to_string(),
    }
}

fn memory_key(account_id: &str, episode: &str, f: &MemberFunction) -> Marker {
    Marker::ThrottledFunction {
        account_id: account_id.to_string(),
        episode: episode.to_string(),
        region: f.region.clone(),
        name: f.name.clone(),
    }
}

fn announced_key(account_id: &str, episode: &str) -> Marker {
    Marker::EpisodeAnnounced {
        account_id: account_id.to_string(),
        episode: episode.to_string(),
    }
}

fn count_key(account_id: &str) -> Marker {
    Marker::ThrottledCount {
        account_id: account_id.to_string(),
    }
}

/// A reserved concurrency as remembered: the number, or `none`.
fn encode(reserved: Option<u32>) -> String {
    reserved.map_or_else(|| "none".to_string(), |n| n.to_string())
}

fn decode(key: &Marker, text: &str) -> Result<Option<u32>, StoreError> {
    match text {
        "none" => Ok(None),
        n => n.parse().map(Some).map_err(|_| {
            StoreError::Corrupt(format!("{key}: {text:?} is not a reserved concurrency"))
        }),
    }
}

/// FNV-1a of the throttled functions: an announcement per distinct set,
/// so a function created during an episode is announced too.
fn fingerprint(functions: &[ChangedFunction]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in functions {
        for byte in f.region.bytes().chain([0]).chain(f.name.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The budget action `throttle-lambdas`, on the accounts it reads, the
/// markers it remembers by, and the member accounts' functions.
pub struct LambdaThrottle {
    accounts: Arc<dyn AccountStore>,
    markers: Arc<dyn Markers>,
    lambdas: Arc<dyn MemberLambdas>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    /// Functions the platform itself runs in member accounts, by exact
    /// name (`FreezeExemptions::platform_functions`): never throttled.
    platform_functions: Vec<String>,
}

impl LambdaThrottle {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        markers: Arc<dyn Markers>,
        lambdas: Arc<dyn MemberLambdas>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        platform_functions: Vec<String>,
    ) -> Self {
        Self {
            accounts,
            markers,
            lambdas,
            bus,
            clock,
            platform_functions,
        }
    }

    /// The team's accounts whose functions a throttle covers.
    async fn throttle_accounts(&self, team: &TeamName) -> Result<Vec<Account>, StoreError> {
        self.accounts
            .team_accounts_in(team, &[AccountState::Ready, AccountState::Frozen])
            .await
    }

    /// How many functions of the team's accounts stand throttled, as of
    /// the last throttle (for `GET /teams/{team}/budget`).
    pub async fn throttled_functions(&self, team: &TeamName) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut total = 0;
        for account in self.throttle_accounts(team).await? {
            let account_id = account.account_id.unwrap_or_default();
            if let Some(n) = self.markers.recall(&count_key(&account_id), now).await? {
                total += n.parse::<u64>().unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Sets reserved concurrency 0 on every function of the team's ready
    /// and frozen accounts whose throttle `demanded` gives a reason for
    /// (the team's budget, or the account's own), remembering what each
    /// had, and gives every other account's functions back what they had.
    pub(crate) async fn enforce(
        &self,
        team: &TeamName,
        demanded: impl Fn(&Account) -> Option<&'static str>,
    ) -> Result<(), BudgetError> {
        for account in self.throttle_accounts(team).await? {
            match demanded(&account) {
                Some(reason) => skip_refused(
                    team,
                    "throttle",
                    self.throttle_account(&account, reason).await,
                )?,
                None => skip_refused(team, "restore", self.restore_account(&account).await)?,
            }
        }
        Ok(())
    }

    async fn throttle_account(&self, account: &Account, reason: &str) -> Result<(), BudgetError> {
        let account_id = account.account_id.clone().unwrap_or_default();
        let now = self.clock.now();
        let until = now + Duration::days(MEMORY_DAYS);
        let key = episode_key(&account_id);
        // Unique, not only a time: episodes may follow within a second.
        let new_episode = format!(
            "{}-{}",
            now.format("%Y%m%dT%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.markers
            .remember(&key, &new_episode, now, until)
            .await?;
        // Another evaluation may have begun the episode first: use its.
        let episode = self.markers.recall(&key, now).await?.unwrap_or(new_episode);
        let mut throttled = Vec::new();
        let functions = self.lambdas.functions(&account_id).await?;
        for f in functions
            .into_iter()
            .filter(|f| !self.platform_functions.contains(&f.name))
        {
            let memory = memory_key(&account_id, &episode, &f);
            let fresh = self
                .markers
                .remember(&memory, &encode(f.reserved_concurrency), now, until)
                .await?;
            let previous = if fresh {
                f.reserved_concurrency
            } else {
                match self.markers.recall(&memory, now).await? {
                    Some(text) => decode(&memory, &text)?,
                    None => f.reserved_concurrency,
                }
            };
            if fresh || f.reserved_concurrency != Some(0) {
                match self.lambdas.set_reserved_concurrency(&f, Some(0)).await {
                    Ok(()) => {}
                    Err(LambdasError::NotFound(_)) => {
                        // Deleted since it was listed: nothing to throttle.
                        self.markers.forget(&memory).await?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            throttled.push(ChangedFunction {
                region: f.region,
                name: f.name,
                reserved_concurrency: previous,
            });
        }
        if throttled.is_empty() {
            return Ok(());
        }
        let announced = Marker::ThrottleAnnounced {
            account_id: account_id.clone(),
            episode: episode.clone(),
            fingerprint: fingerprint(&throttled),
        };
        if self
            .markers
            .remember(&announced, "1", now, now + Duration::days(ANNOUNCED_DAYS))
            .await?
        {
            // That the episode was announced, so its end will be too.
            let episode_announced = announced_key(&account_id, &episode);
            let first = self
                .markers
                .remember(&episode_announced, "1", now, until)
                .await?;
            let mut detail = throttled_detail(account, &throttled, now);
            detail["reason"] = json!(reason);
            let entry = EventEntry::purser(LAMBDAS_THROTTLED, &detail);
            if let Err(e) = self.bus.put(vec![entry]).await {
                self.markers.forget(&announced).await?;
                if first {
                    self.markers.forget(&episode_announced).await?;
                }
                return Err(e.into());
            }
            // For the budget's view only, so a plain overwrite will do.
            let count = count_key(&account_id);
            self.markers.forget(&count).await?;
            self.markers
                .remember(&count, &throttled.len().to_string(), now, until)
                .await?;
            let names: Vec<&str> = throttled.iter().map(|f| f.name.as_str()).collect();
            tracing::warn!(team = %account.team, account_id, request_id = %account.id,
                functions = ?names, "Lambda functions throttled to reserved concurrency 0");
        }
        Ok(())
    }

    /// Gives every throttled function of the account back the reserved
    /// concurrency it had (or none).
    async fn restore_account(&self, account: &Account) -> Result<(), BudgetError> {
        let account_id = account.account_id.clone().unwrap_or_default();
        let now = self.clock.now();
        let key = episode_key(&account_id);
        let Some(episode) = self.markers.recall(&key, now).await? else {
            return Ok(());
        };
        let mut restored = Vec::new();
        let mut memories = Vec::new();
        for f in self.lambdas.functions(&account_id).await? {
            let memory = memory_key(&account_id, &episode, &f);
            let Some(text) = self.markers.recall(&memory, now).await? else {
                continue;
            };
            let previous = decode(&memory, &text)?;
            memories.push(memory);
            if f.reserved_concurrency != previous {
                match self.lambdas.set_reserved_concurrency(&f, previous).await {
                    Ok(()) => {}
                    Err(LambdasError::NotFound(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            restored.push(ChangedFunction {
                region: f.region,
                name: f.name,
                reserved_concurrency: previous,
            });
        }
        // Memories are forgotten only once the restoration is announced, so
        // a retry after a crash still names every function it restored. A
        // throttle that was never announced (it failed first) has no end to
        // announce.
        let episode_announced = announced_key(&account_id, &episode);
        if !restored.is_empty()
            && self
                .markers
                .recall(&episode_announced, now)
                .await?
                .is_some()
        {
            let announced = Marker::RestoreAnnounced {
                account_id: account_id.clone(),
                episode: episode.clone(),
            };
            if self
                .markers
                .remember(&announced, "1", now, now + Duration::days(ANNOUNCED_DAYS))
                .await?
            {
                let entry =
                    EventEntry::purser(LAMBDAS_RESTORED, &restored_detail(account, &restored, now));
                if let Err(e) = self.bus.put(vec![entry]).await {
                    self.markers.forget(&announced).await?;
                    return Err(e.into());
                }
                let names: Vec<&str> = restored.iter().map(|f| f.name.as_str()).collect();
                tracing::info!(team = %account.team, account_id, request_id = %account.id,
                    functions = ?names, "Lambda functions restored");
            }
        }
        for memory in memories {
            self.markers.forget(&memory).await?;
        }
        self.markers.forget(&count_key(&account_id)).await?;
        self.markers.forget(&episode_announced).await?;
        self.markers.forget(&key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! `throttle-lambdas` on in-memory ports: the shared fakes of the store,
    //! the bus (which records, and can refuse) and the organization, and
    //! member accounts whose functions can vanish, deny Purser or be
    //! unreachable.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use proptest::prelude::*;

    use super::*;
    use crate::accounts::Caller;
    use crate::accounts::NewAccount;
    use crate::budgets::Budget;
    use crate::budgets::{Budgets, FreezeExemptions};
    use crate::fakes::{FakeBus, FakeOrganization, FakeStore, locked};
    use crate::ports::ManualClock;
    use crate::ports::MemberLambdas;

    /// Functions by (account, region, name) with their reserved
    /// concurrency; accounts that deny Purser; an outage: with `Some(k)`,
    /// the call after the next `k` fails.
    #[derive(Default)]
    struct FakeLambdas {
        functions: Mutex<BTreeMap<(String, String, String), Option<u32>>>,
        denied: Mutex<Vec<String>>,
        outage: Mutex<Option<u32>>,
        /// Deleted between listing and the next change (a vanishing function).
        vanish_on_set: Mutex<Vec<String>>,
    }

    impl FakeLambdas {
        fn add(&self, account: &str, region: &str, name: &str, reserved: Option<u32>) {
            locked(&self.functions).insert((account.into(), region.into(), name.into()), reserved);
        }
        fn reserved(&self, account: &str, region: &str, name: &str) -> Option<Option<u32>> {
            locked(&self.functions)
                .get(&(account.into(), region.into(), name.into()))
                .copied()
        }
        fn down(&self) -> Result<(), LambdasError> {
            let mut outage = locked(&self.outage);
            match *outage {
                Some(0) => {
                    *outage = None;
                    Err(LambdasError::Unavailable("outage".into()))
                }
                Some(k) => {
                    *outage = Some(k - 1);
                    Ok(())
                }
                None => Ok(()),
            }
        }
    }

    #[async_trait]
    impl MemberLambdas for FakeLambdas {
        async fn functions(&self, account_id: &str) -> Result<Vec<MemberFunction>, LambdasError> {
            if locked(&self.denied).iter().any(|a| a == account_id) {
                return Err(LambdasError::AccessDenied {
                    account_id: account_id.into(),
                    role: "OrganizationAccountAccessRole".into(),
                    message: "not authorized to perform sts:AssumeRole".into(),
                });
            }
            self.down()?;
            Ok(locked(&self.functions)
                .iter()
                .filter(|((a, _, _), _)| a == account_id)
                .map(|((a, r, n), c)| MemberFunction {
                    account_id: a.clone(),
                    region: r.clone(),
                    name: n.clone(),
                    reserved_concurrency: *c,
                })
                .collect())
        }
        async fn set_reserved_concurrency(
            &self,
            f: &MemberFunction,
            reserved: Option<u32>,
        ) -> Result<(), LambdasError> {
            self.down()?;
            let key = (f.account_id.clone(), f.region.clone(), f.name.clone());
            let mut functions = locked(&self.functions);
            if locked(&self.vanish_on_set).contains(&f.name) {
                functions.remove(&key);
            }
            match functions.get_mut(&key) {
                Some(c) => {
                    *c = reserved;
                    Ok(())
                }
                None => Err(LambdasError::NotFound(f.name.clone())),
            }
        }
    }

    const A: &str = "210987654321";
    const B: &str = "345678901234";
    const R1: &str = "us-east-1";
    const R2: &str = "eu-west-1";

    struct World {
        budgets: Budgets,
        store: Arc<FakeStore>,
        bus: Arc<FakeBus>,
        lambdas: Arc<FakeLambdas>,
        team: TeamName,
        /// The budgets' clock, which these tests never move.
        now: DateTime<Utc>,
    }

    fn account(
        team: &TeamName,
        account_id: &str,
        state: AccountState,
        now: DateTime<Utc>,
    ) -> Account {
        let input = NewAccount {
            team: team.clone(),
            owner: "ana@example.com".into(),
            purpose: "tests".into(),
            lease_days: None,
            template: None,
        };
        let mut a = Account::request(
            crate::accounts::new_id(),
            input,
            "arn:aws:iam::123456789012:user/ana",
            now,
        )
        .unwrap();
        a.state = state;
        a.account_id = Some(account_id.into());
        a
    }

    /// Team `payments` with a ready account A and a frozen account B, a
    /// $1 budget whose 100 % asks for `actions`, and functions of every kind:
    /// with a reserved concurrency, without, already at 0, in two regions.
    fn world(actions: &[&str]) -> World {
        let now = DateTime::parse_from_rfc3339("2026-05-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let team = TeamName::parse("payments").unwrap();
        let store = Arc::new(FakeStore::default());
        locked(&store.accounts.accounts).extend([
            account(&team, A, AccountState::Ready, now),
            account(&team, B, AccountState::Frozen, now),
            account(
                &TeamName::parse("other").unwrap(),
                "456789012345",
                AccountState::Ready,
                now,
            ),
        ]);
        let mut budget = Budget::from_json(
            team.clone(),
            &json!({"amount": "1", "thresholds": [100], "actions": {"100": actions}}),
            now,
        )
        .unwrap();
        budget.revision = 1;
        locked(&store.budgets.0).insert(team.clone(), budget);
        let lambdas = Arc::new(FakeLambdas::default());
        lambdas.add(A, R1, "api", Some(5));
        lambdas.add(A, R1, "worker", None);
        lambdas.add(A, R2, "etl", Some(0));
        lambdas.add(B, R1, "runaway", None);
        lambdas.add("456789012345", R1, "bystander", Some(3));
        let bus = Arc::new(FakeBus::default());
        let budgets = Budgets::new(
            store.clone(),
            Arc::new(FakeOrganization::default()),
            bus.clone(),
            Arc::new(ManualClock::new(now)),
            lambdas.clone(),
            FreezeExemptions {
                break_glass_roles: vec![],
                purser_role: "OrganizationAccountAccessRole".into(),
                control_tower: true,
            },
        );
        World {
            budgets,
            store,
            bus,
            lambdas,
            team,
            now,
        }
    }

    impl World {
        /// Spend of `dollars` this period.
        fn spend(&self, dollars: i64) {
            self.store.counters.set_team(
                &self.team,
                self.now.date_naive(),
                dollars * 1_000_000_000,
            );
        }
        async fn evaluate(&self) -> Result<(), BudgetError> {
            self.budgets.evaluate(&self.team).await
        }
        fn originals(
            &self,
        ) -> [(
            &'static str,
            &'static str,
            &'static str,
            Option<Option<u32>>,
        ); 5] {
            [
                (A, R1, "api", Some(Some(5))),
                (A, R1, "worker", Some(None)),
                (A, R2, "etl", Some(Some(0))),
                (B, R1, "runaway", Some(None)),
                ("456789012345", R1, "bystander", Some(Some(3))),
            ]
        }
        fn assert_throttled(&self) {
            for (account, region, name, original) in self.originals() {
                let expected = if account == "456789012345" {
                    original
                } else {
                    Some(Some(0))
                };
                assert_eq!(
                    self.lambdas.reserved(account, region, name),
                    expected,
                    "{name}"
                );
            }
        }
        fn assert_restored(&self) {
            for (account, region, name, original) in self.originals() {
                assert_eq!(
                    self.lambdas.reserved(account, region, name),
                    original,
                    "{name}"
                );
            }
        }
    }

    fn names(detail: &Value) -> Vec<String> {
        detail["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn over_budget_throttles_every_function_of_the_team_once() {
        let w = world(&["notify", "throttle-lambdas"]);
        w.spend(2);
        w.evaluate().await.unwrap();
        w.assert_throttled();
        let throttled = w.bus.of(LAMBDAS_THROTTLED);
        assert_eq!(throttled.len(), 2, "one per account: {throttled:?}");
        let of_a = throttled.iter().find(|d| d["account_id"] == A).unwrap();
        assert_eq!(
            names(of_a),
            ["etl", "api", "worker"],
            "by region, then name"
        );
        assert_eq!(of_a["count"], 3);
        assert_eq!(
            of_a["functions"][1],
            json!({"region": R1, "name": "api", "previous_reserved_concurrency": 5})
        );
        assert_eq!(
            of_a["functions"][2]["previous_reserved_concurrency"],
            Value::Null
        );
        assert_eq!(of_a["team"], "payments");

        // Again, and again: nothing new to say, and the originals stand.
        w.evaluate().await.unwrap();
        w.evaluate().await.unwrap();
        assert_eq!(w.bus.of(LAMBDAS_THROTTLED).len(), 2);
        assert_eq!(
            w.budgets
                .throttle
                .throttled_functions(&w.team)
                .await
                .unwrap(),
            4
        );
        let view = w
            .budgets
            .view(
                &w.team,
                &Caller {
                    principal: "arn:aws:iam::123456789012:role/admin".into(),
                    admin: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(view["throttled"], 4);

        // Under budget again: every function has what it had.
        w.spend(0);
        w.evaluate().await.unwrap();
        w.assert_restored();
        let restored = w.bus.of(LAMBDAS_RESTORED);
        assert_eq!(restored.len(), 2);
        let of_a = restored.iter().find(|d| d["account_id"] == A).unwrap();
        assert_eq!(
            of_a["functions"][1],
            json!({"region": R1, "name": "api", "reserved_concurrency": 5})
        );
        assert_eq!(
            w.budgets
                .throttle
                .throttled_functions(&w.team)
                .await
                .unwrap(),
            0
        );
        assert!(
            locked(&w.store.markers().values)
                .keys()
                .all(|k| !k.starts_with("throttled")),
            "nothing is left remembered: {:?}",
            locked(&w.store.markers().values).keys().collect::<Vec<_>>()
        );
        w.evaluate().await.unwrap();
        assert_eq!(w.bus.of(LAMBDAS_RESTORED).len(), 2, "restored once");

        // A second episode (a new period spent over again) is announced anew.
        w.spend(3);
        w.evaluate().await.unwrap();
        w.assert_throttled();
        assert_eq!(w.bus.of(LAMBDAS_THROTTLED).len(), 4);
    }

    #[tokio::test]
    async fn a_budget_without_the_action_throttles_nothing() {
        let w = world(&["notify", "freeze"]);
        w.spend(2);
        w.evaluate().await.unwrap();
        w.assert_restored();
        assert!(w.bus.of(LAMBDAS_THROTTLED).is_empty());
        assert!(
            !w.bus.of(crate::budgets::ACCOUNT_FROZEN).is_empty(),
            "frozen all the same"
        );
    }

    #[tokio::test]
    async fn control_tower_functions_are_never_throttled() {
        let w = world(&["throttle-lambdas"]);
        w.lambdas
            .add(A, R1, "aws-controltower-NotificationForwarder", None);
        // A team's own function named like the platform's is not exempt.
        w.lambdas.add(A, R1, "aws-controltower-my-etl", None);
        w.spend(2);
        w.evaluate().await.unwrap();
        assert_eq!(
            w.lambdas
                .reserved(A, R1, "aws-controltower-NotificationForwarder"),
            Some(None),
            "the platform's own function keeps running"
        );
        assert_eq!(
            w.lambdas.reserved(A, R1, "aws-controltower-my-etl"),
            Some(Some(0)),
            "exempt by exact name only"
        );
        assert_eq!(w.lambdas.reserved(A, R1, "api"), Some(Some(0)));
    }

    #[test]
    fn only_control_tower_accounts_exempt_its_function() {
        let mut exemptions = FreezeExemptions {
            break_glass_roles: vec![],
            purser_role: "OrganizationAccountAccessRole".into(),
            control_tower: false,
        };
        assert!(exemptions.platform_functions().is_empty());
        exemptions.control_tower = true;
        assert_eq!(
            exemptions.platform_functions(),
            ["aws-controltower-NotificationForwarder"]
        );
    }

    #[tokio::test]
    async fn functions_created_and_deleted_during_a_throttle() {
        let w = world(&["throttle-lambdas"]);
        w.spend(2);
        w.evaluate().await.unwrap();
        // A function deployed meanwhile is throttled, and announced.
        w.lambdas.add(A, R1, "new", Some(7));
        w.evaluate().await.unwrap();
        assert_eq!(w.lambdas.reserved(A, R1, "new"), Some(Some(0)));
        let throttled = w.bus.of(LAMBDAS_THROTTLED);
        assert_eq!(throttled.len(), 3);
        assert_eq!(names(&throttled[2]), ["etl", "api", "new", "worker"]);
        // One deleted, one deleted between listing and restoring.
        locked(&w.lambdas.functions).remove(&(A.into(), R1.into(), "worker".into()));
        locked(&w.lambdas.vanish_on_set).push("api".into());
        w.spend(0);
        w.evaluate().await.unwrap();
        assert_eq!(w.lambdas.reserved(A, R1, "new"), Some(Some(7)));
        assert_eq!(w.lambdas.reserved(A, R2, "etl"), Some(Some(0)));
        let restored = w.bus.of(LAMBDAS_RESTORED);
        let of_a = restored.iter().find(|d| d["account_id"] == A).unwrap();
        assert_eq!(names(of_a), ["etl", "new"], "only what is still there");
        // What a deleted function had stays remembered under the ended
        // episode until it expires; the episode itself is over.
        let now = w.now;
        assert_eq!(
            w.store
                .recall(&episode_key("210987654321"), now)
                .await
                .unwrap(),
            None
        );
        // A function that vanishes as it is throttled is no error either.
        locked(&w.lambdas.vanish_on_set).push("new".into());
        w.spend(2);
        w.evaluate().await.unwrap();
        assert_eq!(w.lambdas.reserved(A, R1, "new"), None);
    }

    #[tokio::test]
    async fn an_account_that_denies_purser_does_not_stop_the_others() {
        let w = world(&["throttle-lambdas"]);
        locked(&w.lambdas.denied).push(A.into());
        w.spend(2);
        w.evaluate().await.unwrap();
        assert_eq!(w.lambdas.reserved(A, R1, "api"), Some(Some(5)));
        assert_eq!(w.lambdas.reserved(B, R1, "runaway"), Some(Some(0)));
        // The member role deployed, the next evaluation catches up.
        locked(&w.lambdas.denied).clear();
        w.evaluate().await.unwrap();
        w.assert_throttled();
    }

    #[tokio::test]
    async fn failures_are_retried_without_losing_an_original_or_an_event() {
        let w = world(&["throttle-lambdas"]);
        w.spend(2);
        // Lambda fails midway; the bus refuses the first announcement.
        *locked(&w.bus.refuse) = 1;
        assert!(matches!(w.evaluate().await, Err(BudgetError::Bus(_))));
        // A's listing and B's first function go through, then Lambda fails.
        *locked(&w.lambdas.outage) = Some(2);
        assert!(matches!(
            w.evaluate().await,
            Err(BudgetError::Lambdas(LambdasError::Unavailable(_)))
        ));
        w.evaluate().await.unwrap();
        w.assert_throttled();
        assert_eq!(
            w.bus.of(LAMBDAS_THROTTLED).len(),
            2,
            "announced once each, after all"
        );

        w.spend(0);
        // A's listing and first function are restored, then Lambda fails;
        // then the bus refuses A's announcement.
        *locked(&w.lambdas.outage) = Some(2);
        assert!(w.evaluate().await.is_err());
        *locked(&w.bus.refuse) = 1;
        assert!(w.evaluate().await.is_err());
        w.evaluate().await.unwrap();
        w.assert_restored();
        let restored = w.bus.of(LAMBDAS_RESTORED);
        assert_eq!(restored.len(), 2);
        let of_a = restored.iter().find(|d| d["account_id"] == A).unwrap();
        assert_eq!(
            names(of_a),
            ["etl", "api", "worker"],
            "the retry names every function"
        );
    }

    #[test]
    fn remembered_values_round_trip() {
        for v in [None, Some(0), Some(1), Some(1000)] {
            assert_eq!(decode(&count_key("k"), &encode(v)).unwrap(), v);
        }
        assert!(matches!(
            decode(&count_key("k"), "-1"),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// One step of the world: spend moves over or under the budget, an
    /// outage fails the next calls, the bus refuses, or budgets evaluate.
    #[derive(Debug, Clone)]
    enum Step {
        Over(bool),
        Outage(u32),
        Refuse,
        Evaluate,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                any::<bool>().prop_map(Step::Over),
                (0u32..6).prop_map(Step::Outage),
                Just(Step::Refuse),
                Just(Step::Evaluate),
                Just(Step::Evaluate),
            ],
            1..30,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the order and repetition of evaluations, and wherever
        /// they fail, the original settings come back once spend is under
        /// the budget, and every function is at 0 while it is over.
        #[test]
        fn evaluations_never_lose_an_original(steps in steps(), end_over in any::<bool>()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let w = world(&["throttle-lambdas"]);
                for step in &steps {
                    match step {
                        Step::Over(over) => w.spend(if *over { 2 } else { 0 }),
                        Step::Outage(n) => *locked(&w.lambdas.outage) = Some(*n),
                        Step::Refuse => *locked(&w.bus.refuse) = 1,
                        Step::Evaluate => { let _ = w.evaluate().await; }
                    }
                }
                *locked(&w.lambdas.outage) = None;
                *locked(&w.bus.refuse) = 0;
                w.spend(if end_over { 2 } else { 0 });
                w.evaluate().await.unwrap();
                if end_over {
                    w.assert_throttled();
                    w.spend(0);
                    w.evaluate().await.unwrap();
                }
                w.assert_restored();
                let (throttled, restored) = (w.bus.of(LAMBDAS_THROTTLED), w.bus.of(LAMBDAS_RESTORED));
                prop_assert!(restored.len() <= throttled.len());
                Ok(())
            })?;
        }
    }
}
