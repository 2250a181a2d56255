//! The [`Store`] port's contract: what every adapter (`SqliteStore`,
//! `DynamoStore`) must do, each behaviour one scenario, driven through the
//! traits only. Every scenario starts from a fresh, empty store and uses
//! fixed instants (from 2026-11-20T10:00:00Z), never the host's clock, so
//! it passes on any day.
//!
//! What only one adapter does or how it lays its data out (SQLite's
//! millisecond expiries and ordered listing of every team, DynamoDB's
//! items, TTL attribute and transaction limit) is tested beside that
//! adapter, not here.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use purser_core::accounts::new_id;
use purser_core::budgets::Budget;
use purser_core::leases::{LeaseTemplate, TemplateName};
use purser_core::ports::{DeploymentMark, DeploymentSource, FunctionSpend};
use purser_core::ports::{MAX_CONCURRENT_CREATIONS, Marker, RateAdd, Store};
use purser_core::spend::{CurDay, DayFigures, SettledSpend, SpendSource};
use purser_core::{
    Account, AccountState, IdempotencyKey, Inserted, NewAccount, SpendAdd, StoreError, Team,
    TeamName, Transitioned,
};

/// A store on fresh state, for one scenario.
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The same state, for the concurrent scenarios to race their calls
    /// on: `store` itself where the backend isolates concurrent writes.
    /// moto's server does not (see `shared/aws/tests/contract/store.rs`),
    /// so there it is a store that sends moto one request at a time while
    /// the tasks still race to send them: what a race then shows is that
    /// the adapter's conditional writes decide, where a read followed by a
    /// write would let several through.
    pub racing: Arc<dyn Store>,
    /// What must outlive the store (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            racing: Arc::clone(&store),
            store,
            _keep: None,
        }
    }

    /// Races the concurrent scenarios' calls on `racing`, a store on the
    /// same state as `store`.
    pub fn racing_on(mut self, racing: Arc<dyn Store>) -> Self {
        self.racing = racing;
        self
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

// ------------------------------------------------------------ helpers

/// `minutes` after 2026-11-20T10:00:00Z.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .expect("a valid time")
        + Duration::minutes(minutes)
}

// Builders the adapters' own tests share with the scenarios.

/// The team `name`.
pub fn team(name: &str) -> TeamName {
    TeamName::parse(name).expect("a team name")
}

/// A marker named `name`: which kind does not matter to a store, only the
/// key it is stored under.
pub fn marker(name: &str) -> Marker {
    Marker::Closing {
        account_id: name.into(),
    }
}

/// A fresh request of `team_name`, made at `created_at`.
fn request(team_name: &str, created_at: DateTime<Utc>) -> Account {
    Account::request(
        new_id(),
        NewAccount {
            team: team(team_name),
            owner: "ana@example.com".into(),
            purpose: "contract tests".into(),
            lease_days: Some(7),
            template: None,
        },
        "arn:aws:iam::123456789012:user/ana",
        created_at,
    )
    .expect("a valid request")
}

/// The template name `name`.
fn template_name(name: &str) -> TemplateName {
    TemplateName::parse(name).expect("a template name")
}

/// Template `name` at `version`, its default lease `days`.
fn lease_template(name: &str, days: u32, version: u64) -> LeaseTemplate {
    let mut template = LeaseTemplate::from_json(
        template_name(name),
        &serde_json::json!({"description": format!("{days} days"), "default_lease_days": days,
            "max_lease_days": 30, "approval": {"auto": [{"rule": "lease_at_most", "days": 7}]},
            "budget": {"amount": "50.00", "thresholds": [80, 100]},
            "regions": ["us-east-1"], "teams": ["payments"]}),
        at(0),
    )
    .expect("a valid template");
    template.version = version;
    template
}

/// `account` moved to `state` at `minutes`.
fn moved(account: &Account, state: AccountState, minutes: i64) -> Account {
    let mut next = account.next_revision();
    next.state = state;
    next.updated_at = at(minutes);
    next
}

const ANA: &str = "arn:aws:iam::123456789012:user/ana";
const BOB: &str = "arn:aws:iam::123456789012:user/bob";

fn key(scope: &str, key: &str, fingerprint: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: scope.into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
    }
}

async fn insert(store: &Arc<dyn Store>, account: &Account, quota: u32) {
    assert_eq!(
        store.insert_account(account, quota, None).await.unwrap(),
        Inserted::Created,
        "inserting {}",
        account.id
    );
}

async fn transition(store: &Arc<dyn Store>, from: AccountState, next: &Account) {
    assert_eq!(
        store.transition(from, next).await.unwrap(),
        Transitioned::Applied,
        "{from} -> {}",
        next.state
    );
}

/// `accounts` by id, to compare listings whose order is not promised.
fn by_id(accounts: &[Account]) -> BTreeMap<String, Account> {
    accounts.iter().map(|a| (a.id.clone(), a.clone())).collect()
}

/// The day `d` (YYYY-MM-DD).
pub fn day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a day")
}

/// `nanos` spent by `account_id` (of `team_name`, if any) on day `d`.
pub fn add(team_name: Option<&str>, account_id: &str, d: &str, nanos: i64) -> SpendAdd {
    SpendAdd {
        team: team_name.map(team),
        account_id: account_id.into(),
        day: day(d),
        nanos,
    }
}

/// November 2026, where the spend scenarios' days fall.
fn november() -> (NaiveDate, NaiveDate) {
    (day("2026-11-01"), day("2026-11-30"))
}

/// A budget of `team_name` of `amount` dollars, at revision `revision`.
fn budget(team_name: &str, amount: &str, revision: u64) -> Budget {
    let mut budget = Budget::from_json(
        team(team_name),
        &serde_json::json!({
            "amount": amount,
            "thresholds": [50, 80, 100],
            "actions": {"100": ["notify", "freeze"]},
            "mode": "forecast",
        }),
        at(i64::try_from(revision).expect("a small revision")),
    )
    .expect("a valid budget");
    budget.revision = revision;
    budget
}

fn settlement(team_name: &str, total: i64, settled_at: DateTime<Utc>) -> SettledSpend {
    let day = day("2026-11-02");
    SettledSpend {
        team: team(team_name),
        period: "2026-11".into(),
        source: SpendSource::Cur,
        accounts: [(
            "111111111111".to_string(),
            [
                (
                    day,
                    DayFigures {
                        missed: 9_000,
                        cur: None,
                        lake: [("lambda".to_string(), 12_000), ("bedrock".to_string(), 7)].into(),
                    },
                ),
                (
                    day.succ_opt().expect("a next day"),
                    DayFigures {
                        missed: 0,
                        cur: Some(CurDay {
                            total: -3,
                            lambda: 0,
                            services: [("ec2".to_string(), 2)].into(),
                        }),
                        lake: Default::default(),
                    },
                ),
            ]
            .into(),
        )]
        .into(),
        total,
        settled_at,
        announced: false,
    }
}

// ------------------------------------------------------------ claims

pub async fn a_released_claim_can_be_taken_again(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, until) = (at(0), at(60));
    let m = marker("announce-1");
    assert!(store.claim_once(&m, now, until).await.unwrap());
    store.remember(&m, "a value", now, until).await.unwrap();
    // What the claim stood for failed: it is given back...
    store.release(&m).await.unwrap();
    assert!(!store.is_claimed(&m, now).await.unwrap());
    assert_eq!(
        store.recall(&m, now).await.unwrap().as_deref(),
        Some("a value"),
        "releasing a claim forgets no remembered value"
    );
    // ...and the next claim takes it, once.
    assert!(store.claim_once(&m, now, until).await.unwrap());
    assert!(!store.claim_once(&m, now, until).await.unwrap());
    // Releasing what is not claimed does nothing.
    store.release(&marker("never-claimed")).await.unwrap();
    assert!(
        !store
            .is_claimed(&marker("never-claimed"), now)
            .await
            .unwrap()
    );
}

pub async fn a_claim_is_taken_once_until_it_expires(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, until) = (at(0), at(60));
    assert!(!store.is_claimed(&marker("event-1"), now).await.unwrap());
    assert!(
        store
            .claim_once(&marker("event-1"), now, until)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_once(&marker("event-1"), now, until)
            .await
            .unwrap(),
        "a repeat is refused"
    );
    let before = at(59);
    assert!(
        !store
            .claim_once(&marker("event-1"), before, before + Duration::hours(1))
            .await
            .unwrap(),
        "a claim stands until it expires"
    );
    assert!(
        !store
            .claim_once(&marker("event-1"), until, until + Duration::hours(1))
            .await
            .unwrap(),
        "and at its expiry instant"
    );
    assert!(store.is_claimed(&marker("event-1"), until).await.unwrap());
    assert!(
        store
            .claim_once(&marker("event-2"), now, until)
            .await
            .unwrap(),
        "keys are independent"
    );

    // Expired (whole seconds: the second after), the claim can be taken
    // again; the refused claims above did not extend it.
    let after = until + Duration::seconds(1);
    assert!(!store.is_claimed(&marker("event-1"), after).await.unwrap());
    assert!(
        store
            .claim_once(&marker("event-1"), after, after + Duration::minutes(5))
            .await
            .unwrap(),
        "an expired claim can be taken again"
    );
    assert!(
        !store
            .claim_once(&marker("event-1"), after, after + Duration::minutes(5))
            .await
            .unwrap(),
        "and then stands again"
    );
    assert!(store.is_claimed(&marker("event-1"), after).await.unwrap());
}

pub async fn of_concurrent_claims_exactly_one_wins(fixture: &Fixture) {
    let (now, until) = (at(0), at(60));
    let claims: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&fixture.racing);
            tokio::spawn(async move { store.claim_once(&marker("contended"), now, until).await })
        })
        .collect();
    let mut wins = 0;
    for claim in claims {
        if claim
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert!(
        fixture
            .racing
            .is_claimed(&marker("contended"), now)
            .await
            .unwrap()
    );
}

// ------------------------------------------------------------ teams and accounts

pub async fn teams_read_back_as_written_and_unknown_ones_are_none(fixture: &Fixture) {
    let store = &fixture.store;
    assert_eq!(store.team(&team("payments")).await.unwrap(), None);
    let mut payments = Team {
        name: team("payments"),
        quota: 3,
        members: vec![
            "arn:aws:iam::123456789012:role/Developers".into(),
            "arn:aws:iam::123456789012:user/ana".into(),
            "bob@example.com".into(),
        ],
        notify: purser_core::TeamNotify {
            emails: vec!["payments-leads@example.com".into()],
            slack_webhook: Some(
                purser_core::ports::WebhookUrl::parse(
                    "https://hooks.slack.com/services/T0/B0/secret",
                )
                .unwrap(),
            ),
            teams_webhook: Some(
                purser_core::ports::WebhookUrl::parse(
                    "https://example.webhook.office.com/webhookb2/x",
                )
                .unwrap(),
            ),
        },
        leases: purser_core::accounts::TeamLeases {
            default_template: Some(template_name("hackathon")),
            approvers: vec!["bob@example.com".into()],
        },
    };
    store.put_team(&payments).await.unwrap();
    assert_eq!(
        store.team(&team("payments")).await.unwrap(),
        Some(payments.clone())
    );

    payments.quota = 10;
    payments.members.clear();
    payments.notify = purser_core::TeamNotify::default();
    payments.leases = Default::default();
    store.put_team(&payments).await.unwrap();
    assert_eq!(store.team(&team("payments")).await.unwrap(), Some(payments));
    assert_eq!(
        store.open_accounts(&team("payments")).await.unwrap(),
        0,
        "a team's settings open no account"
    );

    assert_eq!(store.team(&team("nobody")).await.unwrap(), None);
    assert_eq!(store.open_accounts(&team("nobody")).await.unwrap(), 0);
}

pub async fn teams_are_listed_in_name_order_once_each(fixture: &Fixture) {
    let store = &fixture.store;
    assert_eq!(store.teams().await.unwrap(), Vec::new());
    // Written out of order, among things of other kinds in their partitions.
    for name in ["zeta", "alpha", "mid"] {
        let mut t = Team::unconfigured(team(name));
        t.members = vec![format!("{name}@example.com")];
        store.put_team(&t).await.unwrap();
        assert!(store.put_budget(&budget(name, "100", 1)).await.unwrap());
    }
    insert(store, &request("alpha", at(0)), 3).await;
    let names = |teams: &[Team]| teams.iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
    let listed = store.teams().await.unwrap();
    assert_eq!(names(&listed), ["alpha", "mid", "zeta"]);
    assert_eq!(listed[1].members, ["mid@example.com"]);

    // Written again: listed once, as it now stands.
    let mut alpha = listed[0].clone();
    alpha.quota = 9;
    alpha.members.push("bob@example.com".into());
    store.put_team(&alpha).await.unwrap();
    store.put_team(&alpha).await.unwrap();
    let listed = store.teams().await.unwrap();
    assert_eq!(names(&listed), ["alpha", "mid", "zeta"]);
    assert_eq!(listed[0], alpha);
    assert_eq!(
        listed,
        [
            store.team(&team("alpha")).await.unwrap().unwrap(),
            store.team(&team("mid")).await.unwrap().unwrap(),
            store.team(&team("zeta")).await.unwrap().unwrap(),
        ],
        "each listed as `team` reads it"
    );
}

pub async fn an_inserted_account_reads_back_and_counts_as_open(fixture: &Fixture) {
    let store = &fixture.store;
    let account = request("payments", at(0));
    insert(store, &account, 5).await;

    assert_eq!(
        store.account(&account.id).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(store.account("r-000000000000").await.unwrap(), None);
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    assert_eq!(store.open_accounts(&team("core")).await.unwrap(), 0);
}

pub async fn requests_count_against_the_team_quota_until_closed(fixture: &Fixture) {
    let store = &fixture.store;
    let first = request("payments", at(0));
    let second = request("payments", at(0));
    insert(store, &first, 2).await;
    insert(store, &second, 2).await;
    let third = request("payments", at(1));
    assert_eq!(
        store.insert_account(&third, 2, None).await.unwrap(),
        Inserted::QuotaExceeded { quota: 2 }
    );
    assert_eq!(
        store.account(&third.id).await.unwrap(),
        None,
        "a refused request leaves nothing behind"
    );
    // Another team has its own quota.
    insert(store, &request("search", at(1)), 2).await;
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 2);
    assert_eq!(store.open_accounts(&team("search")).await.unwrap(), 1);
    assert_eq!(store.open_accounts(&team("nobody")).await.unwrap(), 0);

    // A withdrawn request no longer counts.
    transition(
        store,
        AccountState::Requested,
        &moved(&first, AccountState::Closed, 2),
    )
    .await;
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    insert(store, &third, 2).await;
    assert_eq!(store.account(&third.id).await.unwrap(), Some(third));
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 2);
}

pub async fn a_quota_of_zero_refuses_the_first_request(fixture: &Fixture) {
    let store = &fixture.store;
    let account = request("payments", at(0));
    assert_eq!(
        store.insert_account(&account, 0, None).await.unwrap(),
        Inserted::QuotaExceeded { quota: 0 }
    );
    assert_eq!(store.account(&account.id).await.unwrap(), None);
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 0);
}

pub async fn closing_and_failing_give_back_the_teams_quota(fixture: &Fixture) {
    let store = &fixture.store;
    let payments = team("payments");
    let a = request("payments", at(0));
    let b = request("payments", at(1));
    insert(store, &a, 2).await;
    insert(store, &b, 2).await;
    assert_eq!(
        store
            .insert_account(&request("payments", at(2)), 2, None)
            .await
            .unwrap(),
        Inserted::QuotaExceeded { quota: 2 }
    );

    // a: requested -> creating -> ready -> frozen -> ready -> closing -> closed
    let mut current = a.clone();
    for (minutes, state) in [
        (3, AccountState::Creating),
        (4, AccountState::Ready),
        (5, AccountState::Frozen),
        (6, AccountState::Ready),
    ] {
        let next = moved(&current, state, minutes);
        transition(store, current.state, &next).await;
        current = next;
        assert_eq!(
            store.open_accounts(&payments).await.unwrap(),
            2,
            "{state} is open"
        );
    }
    let closing = moved(&current, AccountState::Closing, 7);
    transition(store, AccountState::Ready, &closing).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);
    transition(
        store,
        AccountState::Closing,
        &moved(&closing, AccountState::Closed, 8),
    )
    .await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);

    // b: withdrawn before creation.
    transition(
        store,
        AccountState::Requested,
        &moved(&b, AccountState::Closed, 9),
    )
    .await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 0);

    let c = request("payments", at(10));
    insert(store, &c, 2).await;
    insert(store, &request("payments", at(11)), 2).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 2);

    // c: its creation fails.
    let creating = moved(&c, AccountState::Creating, 12);
    transition(store, AccountState::Requested, &creating).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 2);
    transition(
        store,
        AccountState::Creating,
        &moved(&creating, AccountState::Failed, 13),
    )
    .await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);
    insert(store, &request("payments", at(14)), 2).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 2);
}

// ------------------------------------------------------------ idempotency keys

pub async fn a_replayed_key_returns_the_first_account_and_a_reused_one_is_refused(
    fixture: &Fixture,
) {
    let store = &fixture.store;
    let payments = team("payments");
    let first = request("payments", at(0));
    let k = key(ANA, "key-1", "fingerprint-a");
    assert_eq!(
        store.insert_account(&first, 2, Some(&k)).await.unwrap(),
        Inserted::Created
    );

    // The client retries: a new request id, the same key and body.
    let retry = request("payments", at(1));
    assert_eq!(
        store.insert_account(&retry, 2, Some(&k)).await.unwrap(),
        Inserted::Replayed(first.clone())
    );
    assert_eq!(store.account(&retry.id).await.unwrap(), None);
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);

    // The same key with another body.
    let other = request("payments", at(2));
    assert_eq!(
        store
            .insert_account(&other, 2, Some(&key(ANA, "key-1", "fingerprint-b")))
            .await
            .unwrap(),
        Inserted::KeyReused
    );
    assert_eq!(store.account(&other.id).await.unwrap(), None);
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);

    // The quota fills; a replay is still a replay, not a refusal, whatever
    // the quota says now.
    insert(store, &request("payments", at(3)), 2).await;
    for quota in [2, 1] {
        assert_eq!(
            store
                .insert_account(&request("payments", at(4)), quota, Some(&k))
                .await
                .unwrap(),
            Inserted::Replayed(first.clone()),
            "quota {quota}"
        );
    }
    assert_eq!(
        store
            .insert_account(
                &request("payments", at(5)),
                2,
                Some(&key(ANA, "key-2", "x"))
            )
            .await
            .unwrap(),
        Inserted::QuotaExceeded { quota: 2 }
    );
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 2);

    // Keys are scoped to their caller.
    let elsewhere = request("core", at(6));
    assert_eq!(
        store
            .insert_account(&elsewhere, 2, Some(&key(BOB, "key-1", "fingerprint-b")))
            .await
            .unwrap(),
        Inserted::Created
    );
    assert_eq!(store.account(&elsewhere.id).await.unwrap(), Some(elsewhere));
}

pub async fn an_expired_key_can_be_used_again(fixture: &Fixture) {
    let store = &fixture.store;
    let first = request("payments", at(0));
    assert_eq!(
        store
            .insert_account(&first, 5, Some(&key(ANA, "key-1", "fingerprint-a")))
            .await
            .unwrap(),
        Inserted::Created
    );
    let other = key(ANA, "key-1", "fingerprint-b");
    assert_eq!(
        store
            .insert_account(&request("payments", at(24 * 60 - 1)), 5, Some(&other))
            .await
            .unwrap(),
        Inserted::KeyReused,
        "the key stands 24 hours from its request"
    );

    // After 24 hours it is free: another request takes it (expired keys may
    // still be stored, as DynamoDB deletes them lazily).
    let day_later = request("payments", at(24 * 60) + Duration::seconds(1));
    assert_eq!(
        store
            .insert_account(&day_later, 5, Some(&other))
            .await
            .unwrap(),
        Inserted::Created
    );
    assert_eq!(
        store
            .insert_account(&request("payments", day_later.created_at), 5, Some(&other))
            .await
            .unwrap(),
        Inserted::Replayed(day_later.clone()),
        "the key is the new request's now"
    );
    assert_eq!(
        store
            .insert_account(
                &request("payments", day_later.created_at),
                5,
                Some(&key(ANA, "key-1", "fingerprint-a"))
            )
            .await
            .unwrap(),
        Inserted::KeyReused
    );
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 2);
}

// ------------------------------------------------------------ transitions

pub async fn transitions_are_conditional_and_move_the_counters(fixture: &Fixture) {
    let store = &fixture.store;
    let payments = team("payments");
    let account = request("payments", at(0));
    insert(store, &account, 5).await;

    let creating = moved(&account, AccountState::Creating, 1);
    transition(store, AccountState::Requested, &creating).await;
    // A repeated event finds the account moved on, and writes nothing.
    assert_eq!(
        store
            .transition(AccountState::Requested, &creating)
            .await
            .unwrap(),
        Transitioned::Stale(Some(creating.clone()))
    );
    let failed = moved(&account, AccountState::Failed, 2);
    assert_eq!(
        store
            .transition(AccountState::Requested, &failed)
            .await
            .unwrap(),
        Transitioned::Stale(Some(creating.clone())),
        "a stale transition returns the account as it stands"
    );
    assert_eq!(
        store.account(&account.id).await.unwrap(),
        Some(creating.clone())
    );
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);

    // Updates within a state are conditional too, record what happened and
    // move no counter.
    let mut started = creating.next_revision();
    started.creation_id = Some("car-0123456789abcdef0123456789abcdef".into());
    transition(store, AccountState::Creating, &started).await;
    assert_eq!(
        store.account(&account.id).await.unwrap(),
        Some(started.clone())
    );
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);
    assert_eq!(
        store
            .account_by_creation("car-0123456789abcdef0123456789abcdef")
            .await
            .unwrap(),
        Some(started.clone())
    );
    assert_eq!(
        store
            .transition(
                AccountState::Ready,
                &moved(&started, AccountState::Ready, 3)
            )
            .await
            .unwrap(),
        Transitioned::Stale(Some(started.clone())),
        "from a state it is not in"
    );

    let mut ready = moved(&started, AccountState::Ready, 3);
    ready.account_id = Some("210987654321".into());
    transition(store, AccountState::Creating, &ready).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 1);
    assert_eq!(
        store.account_by_account_id("210987654321").await.unwrap(),
        Some(ready.clone())
    );
    assert_eq!(
        store.account_by_account_id("000000000000").await.unwrap(),
        None
    );

    let mut closing = moved(&ready, AccountState::Closing, 4);
    transition(store, AccountState::Ready, &closing).await;
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 0);
    assert_eq!(store.closures_since(at(0)).await.unwrap(), 0);
    closing = closing.next_revision();
    closing.closure_started_at = Some(at(5));
    transition(store, AccountState::Closing, &closing).await;
    assert_eq!(store.closures_since(at(0)).await.unwrap(), 1);
    assert_eq!(store.closures_since(at(6)).await.unwrap(), 0);
    let closed = moved(&closing, AccountState::Closed, 7);
    transition(store, AccountState::Closing, &closed).await;
    assert_eq!(store.closures_since(at(0)).await.unwrap(), 1);
    assert_eq!(store.open_accounts(&payments).await.unwrap(), 0);
    assert_eq!(store.account(&account.id).await.unwrap(), Some(closed));

    // An account that was never inserted.
    let ghost = moved(&request("payments", at(8)), AccountState::Creating, 9);
    assert_eq!(
        store
            .transition(AccountState::Requested, &ghost)
            .await
            .unwrap(),
        Transitioned::Stale(None)
    );
    assert_eq!(store.account(&ghost.id).await.unwrap(), None);
}

pub async fn a_write_from_a_revision_no_longer_stored_is_refused(fixture: &Fixture) {
    let store = &fixture.store;
    let account = request("payments", at(0));
    insert(store, &account, 5).await;
    let creating = moved(&account, AccountState::Creating, 1);
    transition(store, AccountState::Requested, &creating).await;
    assert_eq!(creating.version, 1);

    // Two handlers read `creating`; the first records its creation...
    let mut first = creating.next_revision();
    first.creation_id = Some("car-first".into());
    transition(store, AccountState::Creating, &first).await;
    // ...and the second, in the same state but from the older revision,
    // must not clear it (it would ask AWS for a second account).
    let mut second = creating.next_revision();
    second.creation_started_at = Some(at(2));
    assert_eq!(
        store
            .transition(AccountState::Creating, &second)
            .await
            .unwrap(),
        Transitioned::Stale(Some(first.clone())),
        "the same state at an older revision is stale"
    );
    // A revision that skips one is refused too, and revision 0 is only
    // ever inserted.
    let mut skipped = first.next_revision().next_revision();
    skipped.creation_id = Some("car-skipped".into());
    assert_eq!(
        store
            .transition(AccountState::Creating, &skipped)
            .await
            .unwrap(),
        Transitioned::Stale(Some(first.clone()))
    );
    assert_eq!(
        store
            .transition(AccountState::Requested, &account)
            .await
            .unwrap(),
        Transitioned::Stale(Some(first.clone()))
    );
    assert_eq!(
        store.account(&account.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.account_by_creation("car-first").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.account_by_creation("car-skipped").await.unwrap(),
        None
    );

    // The next revision of what is stored applies.
    let ready = moved(&first, AccountState::Ready, 3);
    transition(store, AccountState::Creating, &ready).await;
    assert_eq!(
        store.account(&account.id).await.unwrap().map(|a| a.version),
        Some(3)
    );
}

pub async fn at_most_five_creations_are_in_flight(fixture: &Fixture) {
    let store = &fixture.store;
    assert_eq!(MAX_CONCURRENT_CREATIONS, 5);
    let accounts: Vec<Account> = (0..6).map(|m| request("payments", at(m))).collect();
    for account in &accounts {
        insert(store, account, 10).await;
    }
    // One after another (the concurrent race is its own scenario).
    let mut applied = Vec::new();
    let mut waiting = Vec::new();
    for account in &accounts {
        let creating = moved(account, AccountState::Creating, 10);
        match store
            .transition(AccountState::Requested, &creating)
            .await
            .expect("the store answered")
        {
            Transitioned::Applied => applied.push(creating),
            Transitioned::NoCreationSlot => waiting.push(creating),
            Transitioned::Stale(current) => panic!("unexpected Stale({current:?})"),
        }
    }
    assert_eq!((applied.len(), waiting.len()), (5, 1));
    let waiting = &waiting[0];
    assert_eq!(waiting.id, accounts[5].id);
    assert_eq!(
        store.account(&waiting.id).await.unwrap(),
        Some(accounts[5].clone()),
        "a refused transition writes nothing"
    );

    // Failing a request frees nothing: it never held a slot.
    let withdrawn = request("payments", at(6));
    insert(store, &withdrawn, 10).await;
    transition(
        store,
        AccountState::Requested,
        &moved(&withdrawn, AccountState::Failed, 11),
    )
    .await;
    assert_eq!(
        store
            .transition(AccountState::Requested, waiting)
            .await
            .unwrap(),
        Transitioned::NoCreationSlot
    );

    // One creation completes: its slot goes to the request that waited.
    transition(
        store,
        AccountState::Creating,
        &moved(&applied[0], AccountState::Ready, 11),
    )
    .await;
    transition(store, AccountState::Requested, waiting).await;
    // And the organization is full again.
    let seventh = request("payments", at(12));
    insert(store, &seventh, 10).await;
    assert_eq!(
        store
            .transition(
                AccountState::Requested,
                &moved(&seventh, AccountState::Creating, 13)
            )
            .await
            .unwrap(),
        Transitioned::NoCreationSlot
    );
    // A failed creation frees its slot too.
    transition(
        store,
        AccountState::Creating,
        &moved(&applied[1], AccountState::Failed, 14),
    )
    .await;
    transition(
        store,
        AccountState::Requested,
        &moved(&seventh, AccountState::Creating, 15),
    )
    .await;
    let eighth = request("payments", at(16));
    insert(store, &eighth, 10).await;
    assert_eq!(
        store
            .transition(
                AccountState::Requested,
                &moved(&eighth, AccountState::Creating, 17)
            )
            .await
            .unwrap(),
        Transitioned::NoCreationSlot
    );

    let creating = store
        .accounts_in_state(AccountState::Creating)
        .await
        .unwrap();
    assert_eq!(creating.len(), 5);
    // Open: one ready, five creating, the eighth requested; the failed two
    // are not.
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 7);
}

pub async fn of_6_concurrent_creations_exactly_5_get_a_slot(fixture: &Fixture) {
    let store = &fixture.racing;
    let accounts: Vec<Account> = (0..6).map(|m| request("payments", at(m))).collect();
    for account in &accounts {
        insert(store, account, 10).await;
    }
    let tasks: Vec<_> = accounts
        .iter()
        .map(|account| {
            let store = Arc::clone(store);
            let creating = moved(account, AccountState::Creating, 10);
            tokio::spawn(async move {
                store
                    .transition(AccountState::Requested, &creating)
                    .await
                    .map(|outcome| (creating, outcome))
            })
        })
        .collect();
    let (mut applied, mut refused) = (Vec::new(), Vec::new());
    for task in tasks {
        match task
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            (creating, Transitioned::Applied) => applied.push(creating),
            (creating, Transitioned::NoCreationSlot) => refused.push(creating),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((applied.len(), refused.len()), (5, 1));
    let refused = &refused[0];
    let original = accounts
        .iter()
        .find(|a| a.id == refused.id)
        .expect("one of the six");
    assert_eq!(
        store
            .accounts_in_state(AccountState::Requested)
            .await
            .unwrap(),
        vec![original.clone()],
        "the refused one is as it was"
    );
    assert_eq!(
        by_id(
            &store
                .accounts_in_state(AccountState::Creating)
                .await
                .unwrap()
        ),
        by_id(&applied)
    );

    // Exactly five are counted: the organization is full, and one freed
    // slot admits exactly one more.
    assert_eq!(
        store
            .transition(AccountState::Requested, refused)
            .await
            .unwrap(),
        Transitioned::NoCreationSlot
    );
    transition(
        store,
        AccountState::Creating,
        &moved(&applied[0], AccountState::Failed, 11),
    )
    .await;
    transition(store, AccountState::Requested, refused).await;
    let seventh = request("payments", at(12));
    insert(store, &seventh, 10).await;
    assert_eq!(
        store
            .transition(
                AccountState::Requested,
                &moved(&seventh, AccountState::Creating, 13)
            )
            .await
            .unwrap(),
        Transitioned::NoCreationSlot
    );
}

pub async fn accounts_are_found_by_creation_and_by_account_id(fixture: &Fixture) {
    let store = &fixture.store;
    let account = request("payments", at(0));
    let other = request("payments", at(1));
    insert(store, &account, 5).await;
    insert(store, &other, 5).await;
    assert_eq!(store.account_by_creation("car-1").await.unwrap(), None);

    let mut started = moved(&account, AccountState::Creating, 2);
    started.creation_id = Some("car-1".into());
    started.creation_started_at = Some(at(2));
    transition(store, AccountState::Requested, &started).await;
    assert_eq!(
        store.account_by_creation("car-1").await.unwrap(),
        Some(started.clone())
    );
    assert_eq!(
        store.account_by_account_id("111122223333").await.unwrap(),
        None
    );

    let mut ready = moved(&started, AccountState::Ready, 3);
    ready.account_id = Some("111122223333".into());
    ready.ou = Some("ou-ab12-cd34ef56".into());
    transition(store, AccountState::Creating, &ready).await;
    assert_eq!(
        store.account_by_account_id("111122223333").await.unwrap(),
        Some(ready.clone())
    );
    assert_eq!(
        store.account_by_creation("car-1").await.unwrap(),
        Some(ready),
        "found by its creation, as it stands now"
    );
    assert_eq!(
        store.account_by_account_id("999999999999").await.unwrap(),
        None
    );
    assert_eq!(store.account_by_creation("car-2").await.unwrap(), None);
    assert_eq!(store.account(&other.id).await.unwrap(), Some(other));
}

pub async fn closures_are_counted_from_when_close_account_was_called(fixture: &Fixture) {
    let store = &fixture.store;
    // Four accounts reach closing; CloseAccount was called for three of
    // them, at minutes 10, 20 and 30; one of those has closed since.
    let mut closing = Vec::new();
    for m in 0..4 {
        let account = request("payments", at(m));
        insert(store, &account, 10).await;
        let mut current = account;
        for state in [
            AccountState::Creating,
            AccountState::Ready,
            AccountState::Closing,
        ] {
            let next = moved(&current, state, 5);
            transition(store, current.state, &next).await;
            current = next;
        }
        closing.push(current);
    }
    for (account, minutes) in closing.iter_mut().zip([10, 20, 30]) {
        let mut called = account.next_revision();
        called.closure_started_at = Some(at(minutes));
        transition(store, AccountState::Closing, &called).await;
        *account = called;
    }
    transition(
        store,
        AccountState::Closing,
        &moved(&closing[0], AccountState::Closed, 40),
    )
    .await;
    // A request withdrawn before creation never called CloseAccount.
    let withdrawn = request("payments", at(50));
    insert(store, &withdrawn, 10).await;
    transition(
        store,
        AccountState::Requested,
        &moved(&withdrawn, AccountState::Closed, 51),
    )
    .await;

    assert_eq!(store.closures_since(at(0)).await.unwrap(), 3);
    assert_eq!(store.closures_since(at(10)).await.unwrap(), 3, "inclusive");
    assert_eq!(store.closures_since(at(11)).await.unwrap(), 2);
    assert_eq!(store.closures_since(at(30)).await.unwrap(), 1);
    assert_eq!(store.closures_since(at(31)).await.unwrap(), 0);
}

// ------------------------------------------------------------ listings

pub async fn a_teams_accounts_are_listed_newest_first_a_page_at_a_time(fixture: &Fixture) {
    let store = &fixture.store;
    let mut payments = Vec::new();
    for m in 0..7 {
        // The last two share a creation time: the id breaks the tie.
        let account = request("payments", at(m.min(5)));
        insert(store, &account, 100).await;
        payments.push(account);
    }
    let search = request("search", at(3));
    insert(store, &search, 100).await;
    payments.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = store
            .list_accounts(Some(&team("payments")), token.as_deref(), 3)
            .await
            .unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(token, None, "the last page says so");
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen, payments, "whole accounts, newest first, once each");

    let exact = store
        .list_accounts(Some(&team("payments")), None, 7)
        .await
        .unwrap();
    assert_eq!(exact.items, payments);
    assert_eq!(
        exact.next, None,
        "exactly a page's worth leaves no next page"
    );
    let roomy = store
        .list_accounts(Some(&team("payments")), None, 100)
        .await
        .unwrap();
    assert_eq!((roomy.items, roomy.next), (payments, None));
    let other = store
        .list_accounts(Some(&team("search")), None, 3)
        .await
        .unwrap();
    assert_eq!((other.items, other.next), (vec![search], None));
    let nobody = store
        .list_accounts(Some(&team("nobody")), None, 3)
        .await
        .unwrap();
    assert_eq!((nobody.items, nobody.next), (Vec::new(), None));
}

pub async fn every_teams_accounts_are_listed_once_across_pages(fixture: &Fixture) {
    let store = &fixture.store;
    let mut expected = Vec::new();
    for (m, name) in ["payments", "core", "payments", "data", "core"]
        .into_iter()
        .enumerate()
    {
        let account = request(name, at(i64::try_from(m).unwrap()));
        insert(store, &account, 10).await;
        expected.push(account);
    }
    // Other things the store holds are not accounts and are not listed.
    store
        .put_team(&Team::unconfigured(team("payments")))
        .await
        .unwrap();
    assert!(
        store
            .claim_once(&marker("event-1"), at(0), at(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .remember(&marker("stack-1"), "value", at(0), at(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_budget(&budget("payments", "10", 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_spend_once(
                &marker("batch-1"),
                at(0),
                at(60),
                &[add(Some("payments"), "111111111111", "2026-11-20", 1)],
                &[]
            )
            .await
            .unwrap()
    );

    let mut listed = Vec::new();
    let mut token = None;
    for _ in 0..20 {
        let page = store
            .list_accounts(None, token.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2, "{} on a page", page.items.len());
        listed.extend(page.items);
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(token, None, "the listing ends");
    assert_eq!(listed.len(), expected.len(), "each account once");
    assert_eq!(by_id(&listed), by_id(&expected));

    let all = store.list_accounts(None, None, 100).await.unwrap();
    assert_eq!(all.next, None);
    assert_eq!(all.items.len(), expected.len());
    assert_eq!(by_id(&all.items), by_id(&expected));
}

pub async fn a_mangled_page_token_is_refused(fixture: &Fixture) {
    let store = &fixture.store;
    for m in 0..3 {
        insert(store, &request("payments", at(m)), 10).await;
    }
    for listing in [Some(team("payments")), None] {
        for token in ["%%%", "", "not-a-token", "bm90LWEtdG9rZW4", "eyJwayI6MX0"] {
            let err = store
                .list_accounts(listing.as_ref(), Some(token), 1)
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::BadPageToken(_)),
                "{listing:?} {token:?}: {err:?}"
            );
        }
    }
}

pub async fn accounts_in_a_state_come_oldest_first(fixture: &Fixture) {
    let store = &fixture.store;
    // Inserted out of order, across teams; two made at the same time come
    // by id.
    let mut twins = [request("core", at(1)), request("search", at(1))];
    twins.sort_by(|a, b| a.id.cmp(&b.id));
    let accounts = [
        request("payments", at(3)),
        twins[1].clone(),
        request("payments", at(2)),
        request("data", at(0)),
        twins[0].clone(),
    ];
    for account in &accounts {
        insert(store, account, 10).await;
    }
    let creating = moved(&accounts[2], AccountState::Creating, 5);
    transition(store, AccountState::Requested, &creating).await;

    assert_eq!(
        store
            .accounts_in_state(AccountState::Requested)
            .await
            .unwrap(),
        vec![
            accounts[3].clone(),
            twins[0].clone(),
            twins[1].clone(),
            accounts[0].clone()
        ]
    );
    assert_eq!(
        store
            .accounts_in_state(AccountState::Creating)
            .await
            .unwrap(),
        vec![creating]
    );
    for state in [
        AccountState::Ready,
        AccountState::Closed,
        AccountState::Failed,
    ] {
        assert!(
            store.accounts_in_state(state).await.unwrap().is_empty(),
            "{state}"
        );
    }
}

/// On DynamoDB, some of these transactions are cancelled with
/// `TransactionConflict` (they all update the team's counter) and sent
/// again by the adapter.
pub async fn of_8_concurrent_requests_against_quota_3_exactly_3_are_created(fixture: &Fixture) {
    let store = &fixture.racing;
    let tasks: Vec<_> = (0..8)
        .map(|m| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                store
                    .insert_account(&request("payments", at(m)), 3, None)
                    .await
            })
        })
        .collect();
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            Inserted::Created => created += 1,
            Inserted::QuotaExceeded { quota: 3 } => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, refused), (3, 5));
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 3);
    let listed = store
        .list_accounts(Some(&team("payments")), None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.items.len(),
        3,
        "refused requests left nothing behind"
    );
    assert_eq!(
        store
            .list_accounts(None, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

pub async fn concurrent_replays_of_one_key_create_one_account(fixture: &Fixture) {
    let store = &fixture.racing;
    let k = key(ANA, "same", "fingerprint");
    let tasks: Vec<_> = (0..8)
        .map(|m| {
            let (store, k) = (Arc::clone(store), k.clone());
            tokio::spawn(async move {
                let account = request("payments", at(m));
                store
                    .insert_account(&account, 5, Some(&k))
                    .await
                    .map(|outcome| (account, outcome))
            })
        })
        .collect();
    let (mut created, mut replayed) = (Vec::new(), Vec::new());
    for task in tasks {
        match task
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            (account, Inserted::Created) => created.push(account),
            (_, Inserted::Replayed(account)) => replayed.push(account),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    let [created] = created.as_slice() else {
        panic!("one request is created, not {created:?}");
    };
    assert_eq!(replayed.len(), 7);
    assert!(
        replayed.iter().all(|a| a == created),
        "every replay answers with the created account"
    );
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    assert_eq!(
        store
            .list_accounts(Some(&team("payments")), None, 10)
            .await
            .unwrap()
            .items,
        vec![created.clone()]
    );
}

// ------------------------------------------------------------ spend counters

pub async fn a_batch_recorded_twice_adds_once(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, later) = (at(0), at(60));
    let adds = [
        add(Some("payments"), "111111111111", "2026-11-21", 1_500),
        add(Some("payments"), "111111111111", "2026-11-22", 20),
    ];
    assert!(!store.is_claimed(&marker("batch#1"), now).await.unwrap());
    assert!(
        store
            .record_spend_once(&marker("batch#1"), now, later, &adds, &[])
            .await
            .unwrap()
    );
    assert!(store.is_claimed(&marker("batch#1"), now).await.unwrap());
    assert!(store.is_claimed(&marker("batch#1"), later).await.unwrap());
    assert!(
        !store
            .record_spend_once(&marker("batch#1"), now, later, &adds, &[])
            .await
            .unwrap(),
        "the key is claimed: nothing is added"
    );
    let (from, to) = november();
    let expected = vec![(day("2026-11-21"), 1_500), (day("2026-11-22"), 20)];
    assert_eq!(
        store.team_spend(&team("payments"), from, to).await.unwrap(),
        expected
    );
    assert_eq!(
        store.account_spend("111111111111", from, to).await.unwrap(),
        expected
    );

    // `claim_once` and `record_spend_once` share one namespace of keys.
    assert!(
        store
            .claim_once(&marker("batch#2"), now, later)
            .await
            .unwrap()
    );
    assert!(store.is_claimed(&marker("batch#2"), now).await.unwrap());
    assert!(
        !store
            .record_spend_once(&marker("batch#2"), now, later, &adds, &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_once(&marker("batch#1"), now, later)
            .await
            .unwrap(),
        "a recorded batch's key is claimed"
    );
    assert_eq!(
        store.account_spend("111111111111", from, to).await.unwrap(),
        expected,
        "refused batches added nothing"
    );

    // Once the claim expired (whole seconds: the second after it), the key
    // is free and adds again.
    let after = later + Duration::seconds(1);
    assert!(!store.is_claimed(&marker("batch#1"), after).await.unwrap());
    assert!(
        store
            .record_spend_once(
                &marker("batch#1"),
                after,
                after + Duration::hours(1),
                &adds,
                &[]
            )
            .await
            .unwrap()
    );
    assert!(store.is_claimed(&marker("batch#1"), after).await.unwrap());
    let doubled = vec![(day("2026-11-21"), 3_000), (day("2026-11-22"), 40)];
    assert_eq!(
        store.account_spend("111111111111", from, to).await.unwrap(),
        doubled
    );
    assert_eq!(
        store.team_spend(&team("payments"), from, to).await.unwrap(),
        doubled
    );

    // An empty batch still takes its key.
    assert!(
        store
            .record_spend_once(&marker("batch#3"), now, later, &[], &[])
            .await
            .unwrap()
    );
    assert!(store.is_claimed(&marker("batch#3"), now).await.unwrap());
    assert!(
        !store
            .record_spend_once(&marker("batch#3"), now, later, &adds, &[])
            .await
            .unwrap()
    );
}

pub async fn of_8_concurrent_recordings_of_one_batch_one_adds(fixture: &Fixture) {
    let store = &fixture.racing;
    let now = at(0);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let adds = [
                    add(Some("payments"), "111111111111", "2026-11-21", 7),
                    add(Some("payments"), "111111111111", "2026-11-22", 11),
                ];
                store
                    .record_spend_once(&marker("same"), now, now + Duration::minutes(5), &adds, &[])
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    let (from, to) = november();
    let expected = vec![(day("2026-11-21"), 7), (day("2026-11-22"), 11)];
    assert_eq!(
        store.team_spend(&team("payments"), from, to).await.unwrap(),
        expected
    );
    assert_eq!(
        store.account_spend("111111111111", from, to).await.unwrap(),
        expected
    );
}

pub async fn spend_sums_per_team_account_and_day_across_batches(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, later) = (at(0), at(60));
    let batches = [
        vec![
            add(Some("payments"), "111111111111", "2026-11-20", 100),
            add(Some("payments"), "111111111111", "2026-11-21", 200),
        ],
        vec![
            add(Some("payments"), "222222222222", "2026-11-21", 30),
            add(Some("search"), "333333333333", "2026-11-21", 4),
            // Two adds to the same counters in one batch: both count.
            add(Some("search"), "333333333333", "2026-11-21", 6),
        ],
        // One account in another batch, the same day: it adds up.
        vec![add(Some("payments"), "111111111111", "2026-11-21", 5)],
        // An account Purser does not know: only the account counts it.
        vec![add(None, "444444444444", "2026-11-21", 9_000)],
    ];
    for (i, adds) in batches.iter().enumerate() {
        assert!(
            store
                .record_spend_once(&marker(&format!("batch#{i}")), now, later, adds, &[])
                .await
                .unwrap()
        );
    }
    let (from, to) = november();
    assert_eq!(
        store.team_spend(&team("payments"), from, to).await.unwrap(),
        vec![(day("2026-11-20"), 100), (day("2026-11-21"), 235)]
    );
    assert_eq!(
        store.team_spend(&team("search"), from, to).await.unwrap(),
        vec![(day("2026-11-21"), 10)]
    );
    assert_eq!(
        store.account_spend("111111111111", from, to).await.unwrap(),
        vec![(day("2026-11-20"), 100), (day("2026-11-21"), 205)]
    );
    assert_eq!(
        store.account_spend("222222222222", from, to).await.unwrap(),
        vec![(day("2026-11-21"), 30)]
    );
    assert_eq!(
        store.account_spend("333333333333", from, to).await.unwrap(),
        vec![(day("2026-11-21"), 10)]
    );
    assert_eq!(
        store.account_spend("444444444444", from, to).await.unwrap(),
        vec![(day("2026-11-21"), 9_000)]
    );
    assert!(
        store
            .team_spend(&team("nobody"), from, to)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .account_spend("payments", from, to)
            .await
            .unwrap()
            .is_empty(),
        "team and account counters of the same name do not mix"
    );
}

pub async fn spend_ranges_are_inclusive_and_ordered(fixture: &Fixture) {
    let store = &fixture.store;
    // Out of order, across a month and a year, with a gap.
    let adds = [
        add(Some("payments"), "111111111111", "2027-01-01", 3),
        add(Some("payments"), "111111111111", "2026-12-31", 2),
        add(Some("payments"), "111111111111", "2026-11-30", 1),
        add(Some("payments"), "111111111111", "2027-01-03", 4),
    ];
    assert!(
        store
            .record_spend_once(&marker("k"), at(0), at(60), &adds, &[])
            .await
            .unwrap()
    );
    let payments = team("payments");
    let spend = |from: &str, to: &str| {
        let (from, to) = (day(from), day(to));
        let payments = &payments;
        async move { store.team_spend(payments, from, to).await.unwrap() }
    };
    assert_eq!(
        spend("2026-01-01", "2027-12-31").await,
        vec![
            (day("2026-11-30"), 1),
            (day("2026-12-31"), 2),
            (day("2027-01-01"), 3),
            (day("2027-01-03"), 4)
        ]
    );
    assert_eq!(
        spend("2026-12-31", "2027-01-01").await,
        vec![(day("2026-12-31"), 2), (day("2027-01-01"), 3)],
        "both ends inclusive"
    );
    assert_eq!(
        spend("2027-01-03", "2027-01-03").await,
        vec![(day("2027-01-03"), 4)]
    );
    assert!(spend("2026-12-01", "2026-12-30").await.is_empty());
    assert!(spend("2027-01-02", "2027-01-02").await.is_empty());
    assert!(spend("2027-01-04", "2027-12-31").await.is_empty());
    assert!(
        spend("2027-01-03", "2026-11-30").await.is_empty(),
        "a reversed range is empty, not an error"
    );
    assert_eq!(
        store
            .account_spend("111111111111", day("2026-12-01"), day("2027-01-02"))
            .await
            .unwrap(),
        vec![(day("2026-12-31"), 2), (day("2027-01-01"), 3)]
    );
}

pub async fn function_spend_is_counted_once_and_listed_costliest_first(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, later) = (at(0), at(60));
    let spend = |account: &str, function: &str, nanos| FunctionSpend {
        account_id: account.into(),
        function: function.into(),
        nanos,
    };
    assert!(
        store
            .team_function_spend(&team("payments"), "2026-11", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let batches = [
        (
            "checkout",
            vec![
                add(Some("payments"), "111111111111", "2026-11-29", 100),
                add(Some("payments"), "111111111111", "2026-11-30", 200),
                // The next month is another counter.
                add(Some("payments"), "111111111111", "2026-12-01", 7),
            ],
        ),
        // The same function in another account: another counter.
        (
            "checkout",
            vec![add(Some("payments"), "222222222222", "2026-11-30", 50)],
        ),
        (
            "refunds",
            vec![add(Some("payments"), "111111111111", "2026-11-30", 1_000)],
        ),
        // Ties are listed by account, then name.
        (
            "audit",
            vec![add(Some("payments"), "111111111111", "2026-11-30", 50)],
        ),
        (
            "search-indexer",
            vec![add(Some("search"), "333333333333", "2026-11-30", 9)],
        ),
        // An account Purser does not know counts for no team's function.
        (
            "stranger",
            vec![add(None, "444444444444", "2026-11-30", 5_000)],
        ),
    ];
    for (i, (function, adds)) in batches.iter().enumerate() {
        let batch = marker(&format!("batch#{i}"));
        assert!(
            store
                .record_function_spend_once(&batch, now, later, function, adds, &[])
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_function_spend_once(&batch, now, later, function, adds, &[])
                .await
                .unwrap(),
            "a batch arriving again counts nothing"
        );
        assert!(
            !store
                .record_spend_once(&batch, now, later, adds, &[])
                .await
                .unwrap(),
            "nor through record_spend_once: one claim"
        );
    }
    let payments = team("payments");
    assert_eq!(
        store
            .team_function_spend(&payments, "2026-11", 10)
            .await
            .unwrap(),
        [
            spend("111111111111", "refunds", 1_000),
            spend("111111111111", "checkout", 300),
            spend("111111111111", "audit", 50),
            spend("222222222222", "checkout", 50),
        ]
    );
    assert_eq!(
        store
            .team_function_spend(&payments, "2026-11", 2)
            .await
            .unwrap(),
        [
            spend("111111111111", "refunds", 1_000),
            spend("111111111111", "checkout", 300),
        ]
    );
    assert!(
        store
            .team_function_spend(&payments, "2026-11", 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .team_function_spend(&payments, "2026-12", 10)
            .await
            .unwrap(),
        [spend("111111111111", "checkout", 7)]
    );
    assert_eq!(
        store
            .team_function_spend(&team("search"), "2026-11", 10)
            .await
            .unwrap(),
        [spend("333333333333", "search-indexer", 9)]
    );
    // The day counters move as record_spend_once moves them.
    let (from, to) = november();
    assert_eq!(
        store.team_spend(&payments, from, to).await.unwrap(),
        vec![(day("2026-11-29"), 100), (day("2026-11-30"), 1_300)]
    );
    assert_eq!(
        store.account_spend("444444444444", from, to).await.unwrap(),
        vec![(day("2026-11-30"), 5_000)]
    );

    // A batch recorded without a function adds to no function's counter.
    assert!(
        store
            .record_spend_once(
                &marker("plain"),
                now,
                later,
                &[add(Some("payments"), "111111111111", "2026-11-30", 1)],
                &[],
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .team_function_spend(&payments, "2026-11", 10)
            .await
            .unwrap()
            .iter()
            .map(|f| f.nanos)
            .sum::<i64>(),
        1_400
    );
}

/// The runaway guard's hourly counters: each rate adds to its account's
/// counter of its hour and, with a resource, to that resource's; once per
/// batch; read back by hour range, the account's own first in an hour.
pub async fn hourly_spend_is_counted_once_per_account_and_resource(fixture: &Fixture) {
    let store = &fixture.store;
    let hour = |h: i64| at(0) + Duration::hours(h);
    let rate = |h: i64, resource: Option<&str>, nanos: i64| RateAdd {
        account_id: "666666666666".into(),
        hour: hour(h),
        resource: resource.map(String::from),
        nanos,
    };
    let gpu = "ec2:us-east-1:i-0abc";
    let model = "bedrock:us-east-1:anthropic.claude-3-haiku";
    let rates = [
        rate(0, Some(gpu), 5),
        rate(0, Some(model), 7),
        rate(0, None, 1),
        rate(1, Some(gpu), 11),
    ];
    let adds = [add(Some("payments"), "666666666666", "2026-11-20", 24)];
    for _ in 0..2 {
        store
            .record_spend_once(&marker("hourly"), at(0), at(60), &adds, &rates)
            .await
            .unwrap();
    }
    store
        .record_function_spend_once(
            &marker("hourly-2"),
            at(0),
            at(60),
            "f",
            &[],
            &[rate(1, Some(gpu), 100)],
        )
        .await
        .unwrap();
    let got = store
        .hourly_spend("666666666666", hour(0), hour(1))
        .await
        .unwrap();
    let view: Vec<(DateTime<Utc>, Option<&str>, i64)> = got
        .iter()
        .map(|h| (h.hour, h.resource.as_deref(), h.nanos))
        .collect();
    assert_eq!(
        view,
        [
            (hour(0), None, 13),
            (hour(0), Some(model), 7),
            (hour(0), Some(gpu), 5),
            (hour(1), None, 111),
            (hour(1), Some(gpu), 111),
        ]
    );
    // Ranges are inclusive, by whole hours; other accounts' are apart.
    let one = store
        .hourly_spend("666666666666", hour(1), hour(1))
        .await
        .unwrap();
    assert_eq!(one.len(), 2);
    assert!(
        store
            .hourly_spend("666666666666", hour(2), hour(9))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .hourly_spend("777777777777", hour(0), hour(1))
            .await
            .unwrap()
            .is_empty()
    );
    // The day counters moved once too.
    assert_eq!(
        store
            .account_spend("666666666666", day("2026-11-20"), day("2026-11-20"))
            .await
            .unwrap(),
        [(day("2026-11-20"), 24)]
    );
}

/// 99 counters in one batch: the most a DynamoDB transaction moves besides
/// the batch's claim.
pub async fn a_range_of_99_days_reads_back_whole_and_in_order(fixture: &Fixture) {
    let store = &fixture.store;
    let first = day("2026-01-01");
    let adds: Vec<SpendAdd> = (0..99)
        .map(|i| SpendAdd {
            team: None,
            account_id: "555555555555".into(),
            day: first + Duration::days(i),
            nanos: i + 1,
        })
        .collect();
    assert!(
        store
            .record_spend_once(&marker("days"), at(0), at(60), &adds, &[])
            .await
            .unwrap()
    );
    let expected: Vec<_> = (0..99)
        .map(|i| (first + Duration::days(i), i + 1))
        .collect();
    assert_eq!(
        store
            .account_spend("555555555555", first, first + Duration::days(98))
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        store
            .account_spend(
                "555555555555",
                first + Duration::days(10),
                first + Duration::days(20)
            )
            .await
            .unwrap(),
        expected[10..=20]
    );
}

// ------------------------------------------------------------ deployments

pub async fn deployments_are_kept_once_each_and_listed_newest_first(fixture: &Fixture) {
    let store = &fixture.store;
    let mark = |team_name: &str, minutes: i64, id: &str, status: &str| DeploymentMark {
        team: team(team_name),
        account_id: "111111111111".into(),
        // Not a whole second: marks keep their time exactly.
        at: at(minutes) + Duration::nanoseconds(123_456_789),
        stack: "checkout-api".into(),
        status: status.into(),
        source: if id.starts_with("ci") {
            DeploymentSource::Ci
        } else {
            DeploymentSource::CloudFormation
        },
        id: id.into(),
    };
    let payments = team("payments");
    assert!(
        store
            .recent_deployments(&payments, at(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let marks = [
        mark("payments", 10, "cf-1", "UPDATE_IN_PROGRESS"),
        mark("payments", 20, "cf-2", "UPDATE_COMPLETE"),
        mark("payments", 20, "ci-1", "SUCCEEDED"),
        mark("payments", 5, "ci-0", "STARTED"),
        mark("search", 15, "cf-9", "CREATE_COMPLETE"),
    ];
    for m in &marks {
        store.record_deployment(m).await.unwrap();
    }
    // A redelivered event writes its mark again: still one.
    store.record_deployment(&marks[1]).await.unwrap();
    store.record_deployment(&marks[3]).await.unwrap();

    let listed = store
        .recent_deployments(&payments, at(0), 10)
        .await
        .unwrap();
    assert_eq!(
        listed,
        [
            marks[2].clone(),
            marks[1].clone(),
            marks[0].clone(),
            marks[3].clone()
        ],
        "newest first; of one time, by id descending"
    );
    assert_eq!(
        store.recent_deployments(&payments, at(0), 2).await.unwrap(),
        listed[..2]
    );
    assert!(
        store
            .recent_deployments(&payments, at(0), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .recent_deployments(&payments, marks[0].at, 10)
            .await
            .unwrap(),
        listed[..3],
        "since is inclusive"
    );
    assert!(
        store
            .recent_deployments(&payments, at(21), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .recent_deployments(&team("search"), at(0), 10)
            .await
            .unwrap(),
        [marks[4].clone()],
        "teams are apart"
    );
}

// ------------------------------------------------------------ markers

pub async fn a_marker_is_remembered_once_recalled_until_it_expires_and_forgotten(
    fixture: &Fixture,
) {
    let store = &fixture.store;
    let (now, until) = (at(0), at(10));
    let eighty = marker("threshold#payments#80");
    assert_eq!(store.recall(&eighty, now).await.unwrap(), None);
    assert!(store.remember(&eighty, "fired", now, until).await.unwrap());
    assert!(
        !store.remember(&eighty, "again", now, until).await.unwrap(),
        "an unexpired marker is kept"
    );
    assert_eq!(
        store.recall(&eighty, now).await.unwrap().as_deref(),
        Some("fired")
    );
    assert_eq!(
        store.recall(&eighty, until).await.unwrap().as_deref(),
        Some("fired"),
        "still there at its expiry"
    );
    assert_eq!(
        store
            .recall(&marker("threshold#payments#100"), now)
            .await
            .unwrap(),
        None,
        "keys are independent"
    );
    let other = marker("stack#2");
    assert!(store.remember(&other, "other", now, until).await.unwrap());

    // Expired (a store may still hold it, as DynamoDB does for a while):
    // not recalled, and a new value takes its place.
    let after = until + Duration::seconds(1);
    assert_eq!(store.recall(&eighty, after).await.unwrap(), None);
    assert!(
        store
            .remember(&eighty, "next period", after, after + Duration::minutes(10))
            .await
            .unwrap()
    );
    assert_eq!(
        store.recall(&eighty, after).await.unwrap().as_deref(),
        Some("next period")
    );

    // Forgotten: gone at once, and free to remember again.
    store.forget(&eighty).await.unwrap();
    assert_eq!(store.recall(&eighty, after).await.unwrap(), None);
    assert_eq!(store.recall(&eighty, now).await.unwrap(), None);
    store
        .forget(&eighty)
        .await
        .expect("forgetting what is not there is no error");
    store
        .forget(&marker("never-there"))
        .await
        .expect("forgetting what never was is no error");
    assert!(
        store.remember(&eighty, "fresh", now, until).await.unwrap(),
        "a forgotten marker can be remembered again"
    );
    assert_eq!(
        store.recall(&eighty, now).await.unwrap().as_deref(),
        Some("fresh")
    );
    assert_eq!(
        store.recall(&other, now).await.unwrap().as_deref(),
        Some("other"),
        "forgetting one marker keeps the others"
    );
}

pub async fn markers_and_claims_do_not_share_keys(fixture: &Fixture) {
    let store = &fixture.store;
    let (now, later) = (at(0), at(60));
    assert!(store.remember(&marker("k"), "v", now, later).await.unwrap());
    assert!(!store.is_claimed(&marker("k"), now).await.unwrap());
    assert!(store.claim_once(&marker("k"), now, later).await.unwrap());
    assert_eq!(
        store.recall(&marker("k"), now).await.unwrap().as_deref(),
        Some("v")
    );
    // And the other way round.
    assert!(store.claim_once(&marker("j"), now, later).await.unwrap());
    assert_eq!(store.recall(&marker("j"), now).await.unwrap(), None);
    assert!(store.remember(&marker("j"), "w", now, later).await.unwrap());
    assert!(store.is_claimed(&marker("j"), now).await.unwrap());
    store.forget(&marker("j")).await.unwrap();
    assert!(
        store.is_claimed(&marker("j"), now).await.unwrap(),
        "forgetting a marker releases no claim"
    );
}

// ------------------------------------------------------------ budgets

pub async fn a_budget_is_stored_revision_after_revision_and_a_stale_one_refused(fixture: &Fixture) {
    let store = &fixture.store;
    let payments = team("payments");
    assert_eq!(store.budget(&payments).await.unwrap(), None);
    assert!(
        !store
            .put_budget(&budget("payments", "10", 2))
            .await
            .unwrap(),
        "revision 2 needs a revision 1"
    );
    assert!(
        !store
            .put_budget(&budget("payments", "10", 0))
            .await
            .unwrap(),
        "no budget comes before revision 0"
    );
    assert_eq!(store.budget(&payments).await.unwrap(), None);

    let first = budget("payments", "100.50", 1);
    assert!(store.put_budget(&first).await.unwrap());
    assert_eq!(store.budget(&payments).await.unwrap(), Some(first.clone()));
    assert!(
        !store
            .put_budget(&budget("payments", "999", 1))
            .await
            .unwrap(),
        "a second revision 1: another change came first"
    );
    assert!(
        !store
            .put_budget(&budget("payments", "999", 3))
            .await
            .unwrap(),
        "revision 3 does not follow 1"
    );
    assert_eq!(store.budget(&payments).await.unwrap(), Some(first));

    let second = budget("payments", "20.50", 2);
    assert!(store.put_budget(&second).await.unwrap());
    assert_eq!(store.budget(&payments).await.unwrap(), Some(second.clone()));
    // Stale, repeated and skipped revisions are all refused.
    for stale in [0, 1, 2, 4] {
        assert!(
            !store
                .put_budget(&budget("payments", "5", stale))
                .await
                .unwrap(),
            "revision {stale}"
        );
    }
    assert_eq!(store.budget(&payments).await.unwrap(), Some(second.clone()));

    // A team's settings live beside its budget: neither replaces the other.
    store
        .put_team(&Team {
            name: payments.clone(),
            quota: 3,
            members: Vec::new(),
            notify: Default::default(),
            leases: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(store.budget(&payments).await.unwrap(), Some(second));
    let third = budget("payments", "30", 3);
    assert!(store.put_budget(&third).await.unwrap());
    assert_eq!(store.budget(&payments).await.unwrap(), Some(third));
    assert_eq!(
        store.team(&payments).await.unwrap().map(|t| t.quota),
        Some(3)
    );

    // Another team counts its own revisions.
    assert_eq!(store.budget(&team("core")).await.unwrap(), None);
    let core = budget("core", "5", 1);
    assert!(store.put_budget(&core).await.unwrap());
    assert_eq!(store.budget(&team("core")).await.unwrap(), Some(core));
}

// ------------------------------------------------------------ lease templates

pub async fn a_template_is_stored_version_after_version_and_each_kept(fixture: &Fixture) {
    let store = &fixture.store;
    let hackathon = template_name("hackathon");
    assert_eq!(store.template(&hackathon).await.unwrap(), None);
    assert!(
        !store
            .put_template(&lease_template("hackathon", 2, 2))
            .await
            .unwrap(),
        "version 2 needs version 1 first"
    );
    assert!(
        !store
            .put_template(&lease_template("hackathon", 2, 0))
            .await
            .unwrap(),
        "no version comes before 0"
    );
    assert_eq!(store.template(&hackathon).await.unwrap(), None);

    let first = lease_template("hackathon", 2, 1);
    assert!(store.put_template(&first).await.unwrap());
    assert_eq!(
        store.template(&hackathon).await.unwrap(),
        Some(first.clone())
    );
    assert!(
        !store
            .put_template(&lease_template("hackathon", 3, 1))
            .await
            .unwrap(),
        "version 1 is stored already"
    );
    let second = lease_template("hackathon", 5, 2);
    assert!(store.put_template(&second).await.unwrap());
    assert!(
        !store
            .put_template(&lease_template("hackathon", 6, 2))
            .await
            .unwrap(),
        "a change from version 1 comes too late"
    );
    assert_eq!(
        store.template(&hackathon).await.unwrap(),
        Some(second.clone())
    );
    // Every version is kept, as it was: accounts keep theirs.
    assert_eq!(
        store.template_version(&hackathon, 1).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        store.template_version(&hackathon, 2).await.unwrap(),
        Some(second)
    );
    assert_eq!(store.template_version(&hackathon, 3).await.unwrap(), None);
    assert_eq!(
        store
            .template_version(&template_name("nothing"), 1)
            .await
            .unwrap(),
        None
    );
}

pub async fn templates_are_listed_latest_version_in_name_order(fixture: &Fixture) {
    let store = &fixture.store;
    assert_eq!(store.templates().await.unwrap(), Vec::new());
    for name in ["month", "hackathon", "team-test"] {
        assert!(
            store
                .put_template(&lease_template(name, 2, 1))
                .await
                .unwrap()
        );
    }
    let latest = lease_template("month", 20, 2);
    assert!(store.put_template(&latest).await.unwrap());
    // Teams are other things.
    store
        .put_team(&Team::unconfigured(team("payments")))
        .await
        .unwrap();
    let listed = store.templates().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hackathon", "month", "team-test"]);
    assert_eq!(listed[1], latest);
}

pub async fn a_pending_request_counts_against_the_quota_until_approved_or_closed(
    fixture: &Fixture,
) {
    let store = &fixture.store;
    let mut pending = request("payments", at(0));
    pending.state = AccountState::PendingApproval;
    insert(store, &pending, 2).await;
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    assert_eq!(
        store
            .accounts_in_state(AccountState::PendingApproval)
            .await
            .unwrap(),
        [pending.clone()]
    );
    insert(store, &request("payments", at(1)), 2).await;
    assert_eq!(
        store
            .insert_account(&request("payments", at(2)), 2, None)
            .await
            .unwrap(),
        Inserted::QuotaExceeded { quota: 2 },
        "the pending request holds a place"
    );
    // Approved: still open, now requested.
    let approved = moved(&pending, AccountState::Requested, 3);
    transition(store, AccountState::PendingApproval, &approved).await;
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 2);
    // Another, denied: its place is given back.
    let mut other = request("core", at(4));
    other.state = AccountState::PendingApproval;
    insert(store, &other, 1).await;
    assert_eq!(store.open_accounts(&team("core")).await.unwrap(), 1);
    transition(
        store,
        AccountState::PendingApproval,
        &moved(&other, AccountState::Closed, 5),
    )
    .await;
    assert_eq!(store.open_accounts(&team("core")).await.unwrap(), 0);
}

/// Recycling: a lease's end takes its account out of the team's quota
/// (cleaning to available count against none), the pool is read by state,
/// and an account lent again is found by its AWS id as the newest request
/// holding it, not the pooled one it came from.
pub async fn a_pooled_account_counts_for_no_team_and_its_newest_holder_is_found(fixture: &Fixture) {
    let store = &fixture.store;
    let first = request("payments", at(0));
    insert(store, &first, 2).await;
    let mut ready = moved(&first, AccountState::Ready, 1);
    ready.account_id = Some("111122223333".into());
    transition(store, AccountState::Requested, &ready).await;
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    let mut pooled = ready.clone();
    for (from, to, minutes) in [
        (AccountState::Ready, AccountState::Cleaning, 2),
        (AccountState::Cleaning, AccountState::Cooling, 3),
        (AccountState::Cooling, AccountState::Available, 4),
    ] {
        pooled = moved(&pooled, to, minutes);
        transition(store, from, &pooled).await;
        assert_eq!(
            store.open_accounts(&team("payments")).await.unwrap(),
            0,
            "{to} counts for no team"
        );
    }
    assert_eq!(
        store
            .accounts_in_state(AccountState::Available)
            .await
            .unwrap(),
        [pooled.clone()]
    );
    // Another team's request takes it: that team's quota, not the first's.
    let second = request("core", at(5));
    insert(store, &second, 1).await;
    let mut lent = moved(&second, AccountState::Ready, 6);
    lent.account_id = Some("111122223333".into());
    lent.recycled_from = Some(first.id.clone());
    transition(store, AccountState::Requested, &lent).await;
    assert_eq!(
        store.account_by_account_id("111122223333").await.unwrap(),
        Some(lent.clone()),
        "the request it serves now, not the pooled one"
    );
    let ended = moved(&pooled, AccountState::Closed, 7);
    transition(store, AccountState::Available, &ended).await;
    assert_eq!(
        store.account_by_account_id("111122223333").await.unwrap(),
        Some(lent)
    );
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 0);
    assert_eq!(store.open_accounts(&team("core")).await.unwrap(), 1);
    assert_eq!(store.account(&first.id).await.unwrap(), Some(ended));
    assert_eq!(
        store.closures_since(at(0)).await.unwrap(),
        0,
        "lent again, not closed: no closure counted"
    );
}

pub async fn of_8_concurrent_changes_of_one_template_version_one_is_stored(fixture: &Fixture) {
    let store = &fixture.racing;
    for version in [1, 2] {
        let tasks: Vec<_> = (1..=8)
            .map(|i| {
                let store = Arc::clone(store);
                let candidate = lease_template("hackathon", i, version);
                tokio::spawn(async move {
                    let stored = store.put_template(&candidate).await;
                    (candidate, stored)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (candidate, stored) = task.await.expect("the task ran");
            if stored.expect("the store answered") {
                winners.push(candidate);
            }
        }
        let [winner] = winners.as_slice() else {
            panic!("one of the version {version} changes is stored, not {winners:?}");
        };
        assert_eq!(
            store
                .template(&template_name("hackathon"))
                .await
                .unwrap()
                .as_ref(),
            Some(winner)
        );
    }
}

pub async fn of_8_concurrent_changes_from_one_revision_one_is_stored(fixture: &Fixture) {
    let store = &fixture.racing;
    for revision in [1, 2] {
        let tasks: Vec<_> = (1..=8)
            .map(|i| {
                let store = Arc::clone(store);
                let candidate = budget("payments", &format!("{i}00"), revision);
                tokio::spawn(async move {
                    let stored = store.put_budget(&candidate).await;
                    (candidate, stored)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (candidate, stored) = task.await.expect("the task ran");
            if stored.expect("the store answered") {
                winners.push(candidate);
            }
        }
        let [winner] = winners.as_slice() else {
            panic!("one of the revision {revision} changes is stored, not {winners:?}");
        };
        assert_eq!(
            store.budget(&team("payments")).await.unwrap().as_ref(),
            Some(winner),
            "the stored budget is the winner's"
        );
    }
}

pub async fn of_8_concurrent_claims_of_one_account_revision_one_applies(fixture: &Fixture) {
    let store = &fixture.racing;
    let account = request("payments", at(0));
    insert(store, &account, 5).await;
    let creating = moved(&account, AccountState::Creating, 1);
    transition(store, AccountState::Requested, &creating).await;
    // Eight handlers of one passing failure each claim the account for a
    // new CreateAccount from the revision they read: one may ask AWS.
    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let store = Arc::clone(store);
            let mut claim = creating.next_revision();
            claim.creation_id = Some(format!("car-{i}"));
            tokio::spawn(async move {
                let outcome = store.transition(AccountState::Creating, &claim).await;
                (claim, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("the task ran") {
            (claim, Ok(Transitioned::Applied)) => winners.push(claim),
            (_, Ok(Transitioned::Stale(Some(_)))) => {}
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    let [winner] = winners.as_slice() else {
        panic!("one claim of revision 1 applies, not {winners:?}");
    };
    assert_eq!(
        store.account(&account.id).await.unwrap().as_ref(),
        Some(winner)
    );
    assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
}

pub async fn every_teams_budget_is_listed_in_team_order(fixture: &Fixture) {
    let store = &fixture.store;
    assert_eq!(store.budgets().await.unwrap(), Vec::new());
    // Budgets of several revisions, written out of team order, among things
    // of other kinds.
    let mut expected = Vec::new();
    for (name, revisions) in [("zeta", 1), ("alpha", 2), ("ops", 3), ("mid", 2)] {
        let mut latest = None;
        for revision in 1..=revisions {
            let b = budget(name, &format!("{}", 100 * revision), revision);
            assert!(store.put_budget(&b).await.unwrap());
            latest = Some(b);
        }
        expected.push(latest.expect("a revision"));
        store
            .put_team(&Team::unconfigured(team(name)))
            .await
            .unwrap();
        assert!(
            store
                .remember(
                    &marker(&format!("threshold#{name}#50")),
                    "fired",
                    at(0),
                    at(60)
                )
                .await
                .unwrap()
        );
    }
    expected.sort_by(|a, b| a.team.as_str().cmp(b.team.as_str()));
    let listed = store.budgets().await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.team.as_str()).collect::<Vec<_>>(),
        ["alpha", "mid", "ops", "zeta"]
    );
    assert_eq!(listed, expected, "each team's latest revision, once");
}

// ------------------------------------------------------------ settlements

pub async fn a_settlement_is_replaced_by_a_later_one_only(fixture: &Fixture) {
    let store = &fixture.store;
    let payments = team("payments");
    assert_eq!(
        store.settled_spend(&payments, "2026-11").await.unwrap(),
        None
    );
    let first = settlement("payments", 10, at(0));
    assert!(store.put_settled_spend(&first).await.unwrap());
    assert_eq!(
        store.settled_spend(&payments, "2026-11").await.unwrap(),
        Some(first.clone())
    );
    let announced = SettledSpend {
        announced: true,
        ..first.clone()
    };
    assert!(
        store.put_settled_spend(&announced).await.unwrap(),
        "the same settlement, announced, replaces it"
    );
    assert_eq!(
        store.settled_spend(&payments, "2026-11").await.unwrap(),
        Some(announced)
    );
    let later = settlement("payments", 20, at(15));
    assert!(store.put_settled_spend(&later).await.unwrap());
    assert!(
        !store.put_settled_spend(&first).await.unwrap(),
        "an earlier settlement never replaces a later one"
    );
    assert_eq!(
        store.settled_spend(&payments, "2026-11").await.unwrap(),
        Some(later)
    );
    // Teams and periods are apart.
    assert_eq!(
        store.settled_spend(&payments, "2026-10").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .settled_spend(&team("search"), "2026-11")
            .await
            .unwrap(),
        None
    );
    let search = settlement("search", 5, at(0));
    assert!(store.put_settled_spend(&search).await.unwrap());
    assert_eq!(
        store
            .settled_spend(&team("search"), "2026-11")
            .await
            .unwrap(),
        Some(search)
    );
}
