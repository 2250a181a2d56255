//! [`DynamoStore`] against moto's DynamoDB, on a table shaped as in
//! `infra/template.yaml`: `pk`/`sk` strings, TTL on `expires_at`, and the
//! four global secondary indexes `by-team`, `by-state`, `by-creation` and
//! `by-account-id` (string keys, every attribute projected). First the
//! Store's contract (`purser_contract::store`, written once and run against
//! `SqliteStore` too), then what only this adapter does: its items as the
//! layout in `src/store.rs` says, TTL attributes in epoch seconds, reads
//! past DynamoDB's 1 MB pages, page tokens bound to their listing, its
//! transaction limit and a missing table.
//!
//! moto evaluates condition expressions, transactions (with their
//! cancellation reasons, in order, and `ReturnValuesOnConditionCheckFailure`),
//! `ADD` and queries on indexes as DynamoDB does. Where it is not faithful:
//!
//! - it never deletes expired items: which is what the adapter must not rely
//!   on anyway, since DynamoDB deletes them lazily, so the contract's
//!   expired claims, keys and markers hold for both;
//! - its indexes are updated with the write, where DynamoDB's are eventually
//!   consistent: the adapter reads accounts found through an index again by
//!   key, so the lookups hold for both, but listings may lag on AWS;
//! - it does not lock conditional writes: moto's server handles requests on
//!   threads, and a transaction checks its conditions, writes, and on
//!   failure restores a copy of the whole table, with nothing keeping a
//!   concurrent request out in between; nor is a transaction ever cancelled
//!   with `TransactionConflict`, as DynamoDB cancels one that touches an
//!   item another is writing. So the contract's races (of claims, of
//!   requests against a quota, of creation slots, of replays of one key, of
//!   recordings of one spend batch, of budget changes) run on the fixture's
//!   `racing` store, which sends moto one request at a time while the tasks
//!   still race to send them: what they show is the adapter's part, one
//!   conditional write deciding where a read followed by a write would let
//!   several through. Raced on moto directly they would test moto: two
//!   creations may both pass the counter's condition under load, a
//!   cancelled recording undoes the winner's adds in about a third of runs,
//!   and even claims and requests against a quota, short as they are, now
//!   and then let two through (a claim won twice in one of fifteen runs of
//!   this file, a fourth account against a quota of three in one of sixty).
//!   The retry of conflicts is unit-tested (`src/store/transact.rs`), and
//!   real concurrency is tested on Purser's SQLite store, which serializes
//!   writers, by the same scenarios.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use chrono::{DateTime, Duration, TimeZone, Utc};
use purser_aws::DynamoStore;
use purser_contract::store::{Fixture, add, day, marker, team};
use purser_core::accounts::new_id;
use purser_core::budgets::Budget;
use purser_core::ports::{AccountStore, BudgetStore, Markers, SettlementStore, SpendCounters};
use purser_core::spend::{DayFigures, SettledSpend, SpendSource};
use purser_core::{Account, Inserted, NewAccount, SpendAdd, StoreError, Team};

/// A fresh table for each of the contract's scenarios, its racing calls
/// sent to moto one at a time (see the module doc).
async fn fresh() -> Option<Fixture> {
    let config = crate::common::moto_config().await?;
    let (_, name) = table(&config).await;
    let store = DynamoStore::from_config(&config, &name);
    let racing = DynamoStore::from_config(&one_request_at_a_time(&config), &name);
    Some(Fixture::new(Arc::new(store)).racing_on(Arc::new(racing)))
}

purser_contract::store_contract!(fresh);

/// A fresh table shaped like Purser's, its indexes included.
pub(crate) async fn table(config: &SdkConfig) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(config);
    let name = crate::common::unique("purser");
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("a key schema element")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("an attribute definition")
    };
    let index = |name: &str, hash: &str, range: Option<&str>| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .set_key_schema(Some(
                std::iter::once(key(hash, KeyType::Hash))
                    .chain(range.map(|r| key(r, KeyType::Range)))
                    .collect(),
            ))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("an index")
    };
    let mut create = client
        .create_table()
        .table_name(&name)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(index("by-team", "gsi1pk", Some("gsi1sk")))
        .global_secondary_indexes(index("by-state", "gsi2pk", Some("gsi2sk")))
        .global_secondary_indexes(index("by-creation", "gsi3pk", None))
        .global_secondary_indexes(index("by-account-id", "gsi4pk", None))
        .billing_mode(BillingMode::PayPerRequest);
    for name in [
        "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi4pk",
    ] {
        create = create.attribute_definitions(attribute(name));
    }
    create.send().await.expect("CreateTable");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .expect("a TTL specification"),
        )
        .send()
        .await
        .expect("UpdateTimeToLive");
    (client, name)
}

/// A store on a fresh table, or `None` when contract tests are skipped.
async fn store() -> Option<(DynamoStore, aws_sdk_dynamodb::Client, String)> {
    let config = crate::common::moto_config().await?;
    let (client, name) = table(&config).await;
    Some((DynamoStore::from_config(&config, &name), client, name))
}

/// A connector that lets one request at a time through to moto.
#[derive(Debug)]
struct OneAtATime {
    inner: SharedHttpConnector,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for OneAtATime {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, turn) = (self.inner.clone(), Arc::clone(&self.turn));
        HttpConnectorFuture::new(async move {
            let _turn = turn.lock().await;
            inner.call(request).await
        })
    }
}

/// `config`, its requests sent one at a time: each then runs alone in
/// moto, as a transaction is isolated in DynamoDB.
pub(crate) fn one_request_at_a_time(config: &SdkConfig) -> SdkConfig {
    // Plain HTTP, as moto listens on the loopback.
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    let client = http_client_fn(move |settings, components| {
        SharedHttpConnector::new(OneAtATime {
            inner: inner.http_connector(settings, components),
            turn: Arc::clone(&turn),
        })
    });
    config.to_builder().http_client(client).build()
}

/// A fixed instant, so items' times are known.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0)
        .single()
        .expect("a valid time")
        + Duration::minutes(minutes)
}

/// A fresh request of `team`, made at `created_at`.
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

async fn insert(store: &DynamoStore, account: &Account, quota: u32) {
    assert_eq!(
        store.insert_account(account, quota, None).await.unwrap(),
        Inserted::Created
    );
}

// ------------------------------------------------------------ claims

#[tokio::test]
async fn stores_the_claim_with_its_ttl_attribute() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let now = at(0);
    let until = now + Duration::days(7);
    assert!(
        store
            .claim_once(&marker("event-1"), now, until)
            .await
            .unwrap()
    );

    let item = client
        .get_item()
        .table_name(&name)
        .key(
            "pk",
            AttributeValue::S(format!("IDEMPOTENCY#{}", marker("event-1").key())),
        )
        .key("sk", AttributeValue::S("IDEMPOTENCY".into()))
        .send()
        .await
        .expect("GetItem");
    let item = item.item().expect("the claim is stored");
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(until.timestamp().to_string())),
        "epoch seconds, a Number, as TTL requires"
    );
}

#[tokio::test]
async fn a_missing_table_makes_the_store_unavailable_and_says_why() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let name = crate::common::unique("missing");
    let store = DynamoStore::from_config(&config, &name);
    let now = at(0);
    let err = store
        .claim_once(&marker("event-1"), now, now + Duration::hours(1))
        .await
        .unwrap_err();
    let StoreError::Unavailable(message) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains(&name), "{message}");
    assert!(message.contains("ResourceNotFoundException"), "{message}");
}

// ------------------------------------------------------------ accounts

#[tokio::test]
async fn an_account_is_stored_as_the_template_indexes_it() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let account = request("payments", at(0));
    insert(&store, &account, 5).await;

    // The layout infra/template.yaml is written for.
    let item = client
        .get_item()
        .table_name(&name)
        .key("pk", AttributeValue::S(format!("ACCOUNT#{}", account.id)))
        .key("sk", AttributeValue::S("ACCOUNT".into()))
        .send()
        .await
        .expect("GetItem");
    let item = item.item().expect("the account is stored");
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(text("state").as_deref(), Some("requested"));
    assert_eq!(text("gsi1pk").as_deref(), Some("TEAM#payments"));
    assert_eq!(
        text("gsi1sk"),
        Some(format!("2025-06-01T08:00:00.000000Z#{}", account.id))
    );
    assert_eq!(text("gsi2pk").as_deref(), Some("STATE#requested"));
    assert!(!item.contains_key("gsi3pk") && !item.contains_key("gsi4pk"));
}

/// A token names the key of its listing's index, and a team's its team:
/// SQLite's tokens are a position in one order, which any listing can
/// resume from.
#[tokio::test]
async fn a_page_token_from_another_listing_is_refused() {
    let Some((store, _, _)) = store().await else {
        return;
    };
    for m in 0..3 {
        insert(&store, &request("payments", at(m)), 10).await;
    }
    let page = store
        .list_accounts(Some(&team("payments")), None, 1)
        .await
        .unwrap();
    let token = page.next.expect("a next page");
    assert!(
        store
            .list_accounts(Some(&team("payments")), Some(&token), 1)
            .await
            .is_ok(),
        "the token resumes its own listing"
    );

    for listing in [Some(team("core")), None] {
        let err = store
            .list_accounts(listing.as_ref(), Some(&token), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::BadPageToken(_)),
            "{listing:?}: {err:?}"
        );
    }
}

// ------------------------------------------------------------ spend counters

#[tokio::test]
async fn spend_counters_are_stored_as_the_layout_says() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let (now, later) = (at(0), at(60));
    let batches = [
        vec![
            add(Some("payments"), "111111111111", "2026-11-20", 100),
            add(Some("payments"), "111111111111", "2026-11-21", 200),
            add(Some("search"), "333333333333", "2026-11-21", 4),
        ],
        vec![
            add(Some("payments"), "111111111111", "2026-11-21", 5),
            // An account Purser does not know: only the account counts it.
            add(None, "444444444444", "2026-11-21", 9_000),
        ],
    ];
    for (i, adds) in batches.iter().enumerate() {
        assert!(
            store
                .record_spend_once(&marker(&format!("batch#{i}")), now, later, adds, &[])
                .await
                .unwrap()
        );
    }

    let get = |pk: &str, sk: &str| {
        client
            .get_item()
            .table_name(&name)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .send()
    };
    let known = get("SPEND#ACCOUNT#111111111111", "DAY#2026-11-21")
        .await
        .expect("GetItem")
        .item
        .expect("the account's counter");
    assert_eq!(known.get("nanos"), Some(&AttributeValue::N("205".into())));
    assert_eq!(
        known.get("team"),
        Some(&AttributeValue::S("payments".into()))
    );
    let unknown = get("SPEND#ACCOUNT#444444444444", "DAY#2026-11-21")
        .await
        .expect("GetItem")
        .item
        .expect("the unknown account's counter");
    assert!(!unknown.contains_key("team"), "{unknown:?}");
    let team_day = get("SPEND#TEAM#payments", "DAY#2026-11-20")
        .await
        .expect("GetItem")
        .item
        .expect("the team's counter");
    assert_eq!(
        team_day.get("nanos"),
        Some(&AttributeValue::N("100".into()))
    );
    // The unknown account's spend went to no team's counter.
    let teams = client
        .scan()
        .table_name(&name)
        .filter_expression("begins_with(pk, :teams)")
        .expression_attribute_values(":teams", AttributeValue::S("SPEND#TEAM#".into()))
        .send()
        .await
        .expect("Scan");
    let total: i64 = teams
        .items()
        .iter()
        .map(|i| match i.get("nanos") {
            Some(AttributeValue::N(n)) => n.parse::<i64>().expect("a whole number"),
            other => panic!("a team counter without nanos: {other:?}"),
        })
        .sum();
    assert_eq!(total, 100 + 205 + 4);
}

#[tokio::test]
async fn a_range_over_several_pages_reads_them_all_in_order() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let (now, later) = (at(0), at(60));
    // 99 counters, the most one transaction moves besides the claim.
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
            .record_spend_once(&marker("days"), now, later, &adds, &[])
            .await
            .unwrap()
    );
    // Counters are small; padding six of them to 300 KB makes a Query
    // return more than DynamoDB's (and moto's) 1 MB a page.
    for i in [3, 20, 40, 60, 80, 98] {
        client
            .update_item()
            .table_name(&name)
            .key("pk", AttributeValue::S("SPEND#ACCOUNT#555555555555".into()))
            .key(
                "sk",
                AttributeValue::S(format!("DAY#{}", first + Duration::days(i))),
            )
            .update_expression("SET padding = :padding")
            .expression_attribute_values(":padding", AttributeValue::S("x".repeat(300_000)))
            .send()
            .await
            .expect("UpdateItem");
    }
    let one_page = client
        .query()
        .table_name(&name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S("SPEND#ACCOUNT#555555555555".into()),
        )
        .send()
        .await
        .expect("Query");
    assert!(
        one_page.last_evaluated_key.is_some(),
        "the range does not fit one page"
    );

    let all = store
        .account_spend("555555555555", first, first + Duration::days(98))
        .await
        .unwrap();
    let expected: Vec<_> = (0..99)
        .map(|i| (first + Duration::days(i), i + 1))
        .collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn a_batch_of_more_than_99_counters_is_refused_and_claims_nothing() {
    let Some((store, _, _)) = store().await else {
        return;
    };
    let (now, later) = (at(0), at(60));
    let first = day("2026-01-01");
    // 50 days of a known account: 100 counters (the team's and the account's).
    let adds: Vec<SpendAdd> = (0..50)
        .map(|i| SpendAdd {
            team: Some(team("payments")),
            account_id: "111111111111".into(),
            day: first + Duration::days(i),
            nanos: 1,
        })
        .collect();
    let err = store
        .record_spend_once(&marker("big"), now, later, &adds, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("100 spend counters") && m.contains("at most 99")),
        "{err:?}"
    );
    assert!(!store.is_claimed(&marker("big"), now).await.unwrap());
    assert!(
        store
            .record_spend_once(&marker("big"), now, later, &adds[..49], &[])
            .await
            .unwrap(),
        "98 counters fit"
    );
}

// ------------------------------------------------------------ markers

#[tokio::test]
async fn a_marker_is_stored_with_its_value_and_ttl_attribute() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let now = at(0);
    let until = now + Duration::minutes(10);
    assert!(
        store
            .remember(&marker("threshold#payments#80"), "fired", now, until)
            .await
            .unwrap()
    );

    // The item, as the layout in the store's module doc says.
    let item = client
        .get_item()
        .table_name(&name)
        .key(
            "pk",
            AttributeValue::S(format!("MARKER#{}", marker("threshold#payments#80").key())),
        )
        .key("sk", AttributeValue::S("MARKER".into()))
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the marker is stored");
    assert_eq!(item.get("value"), Some(&AttributeValue::S("fired".into())));
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(until.timestamp().to_string())),
        "epoch seconds, a Number, as TTL requires"
    );
}

// ------------------------------------------------------------ budgets

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

#[tokio::test]
async fn a_budget_is_stored_beside_its_team() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    let payments = team("payments");
    assert!(
        store
            .put_budget(&budget("payments", "100.50", 1))
            .await
            .unwrap()
    );
    let second = budget("payments", "250", 2);
    assert!(store.put_budget(&second).await.unwrap());

    // The item, as the layout in the store's module doc says, beside the
    // team's settings in its partition.
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
    let item = client
        .get_item()
        .table_name(&name)
        .key("pk", AttributeValue::S("TEAM#payments".into()))
        .key("sk", AttributeValue::S("BUDGET".into()))
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the budget is stored");
    assert_eq!(item.get("revision"), Some(&AttributeValue::N("2".into())));
    let Some(AttributeValue::S(data)) = item.get("data") else {
        panic!("data is a string: {item:?}");
    };
    assert_eq!(
        serde_json::from_str::<Budget>(data).expect("the budget as JSON"),
        second
    );
    let team_item = client
        .get_item()
        .table_name(&name)
        .key("pk", AttributeValue::S("TEAM#payments".into()))
        .key("sk", AttributeValue::S("TEAM".into()))
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the team is stored");
    assert_eq!(team_item.get("quota"), Some(&AttributeValue::N("3".into())));
}

#[tokio::test]
async fn every_teams_budget_is_listed_in_team_order_across_scan_pages() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    assert_eq!(store.budgets().await.unwrap(), Vec::new());
    // Budgets between items of other kinds, two of them padded to 300 KB
    // after each budget: the Scan reads more than its 1 MB a page, and
    // (moto scans in the order items were written) the budgets span pages.
    let mut expected = Vec::new();
    for (i, name_of_team) in ["zeta", "alpha", "mid"].into_iter().enumerate() {
        let first = budget(name_of_team, "100", 1);
        assert!(store.put_budget(&first).await.unwrap());
        let latest = budget(name_of_team, &format!("{}", 200 + i), 2);
        assert!(store.put_budget(&latest).await.unwrap());
        expected.push(latest);
        store
            .put_team(&Team::unconfigured(team(name_of_team)))
            .await
            .unwrap();
        assert!(
            store
                .remember(
                    &marker(&format!("threshold#{name_of_team}#50")),
                    "fired",
                    at(0),
                    at(60)
                )
                .await
                .unwrap()
        );
        for pad in 0..2 {
            client
                .put_item()
                .table_name(&name)
                .item(
                    "pk",
                    AttributeValue::S(format!("PADDING#{name_of_team}#{pad}")),
                )
                .item("sk", AttributeValue::S("PADDING".into()))
                .item("padding", AttributeValue::S("x".repeat(300_000)))
                .send()
                .await
                .expect("PutItem");
        }
    }
    let first_page = client
        .scan()
        .table_name(&name)
        .filter_expression("sk = :budget")
        .expression_attribute_values(":budget", AttributeValue::S("BUDGET".into()))
        .send()
        .await
        .expect("Scan");
    assert!(
        first_page.last_evaluated_key.is_some() && first_page.items().len() < 3,
        "the budgets span pages: the first holds {} of 3",
        first_page.items().len()
    );

    expected.sort_by(|a, b| a.team.as_str().cmp(b.team.as_str()));
    let listed = store.budgets().await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.team.as_str()).collect::<Vec<_>>(),
        ["alpha", "mid", "zeta"]
    );
    assert_eq!(listed, expected, "each team's latest revision, once");
}

// ------------------------------------------------------------ settlements

fn settlement(total: i64, settled_at: DateTime<Utc>) -> SettledSpend {
    SettledSpend {
        team: team("payments"),
        period: "2026-11".into(),
        source: SpendSource::Cur,
        accounts: [(
            "111111111111".to_string(),
            [(
                day("2026-11-02"),
                DayFigures {
                    missed: 9_000,
                    cur: None,
                    lake: Default::default(),
                },
            )]
            .into(),
        )]
        .into(),
        total,
        settled_at,
        announced: false,
    }
}

#[tokio::test]
async fn a_settlement_is_stored_in_its_teams_partition() {
    let Some((store, client, name)) = store().await else {
        return;
    };
    assert!(
        store
            .put_settled_spend(&settlement(10, at(0)))
            .await
            .unwrap()
    );
    let later = settlement(20, at(15));
    assert!(store.put_settled_spend(&later).await.unwrap());

    // The item sits in the team's partition, with the time its condition
    // compares.
    let item = client
        .get_item()
        .table_name(&name)
        .key("pk", AttributeValue::S("TEAM#payments".into()))
        .key("sk", AttributeValue::S("SETTLED#2026-11".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the settlement's item");
    assert_eq!(
        item.get("settled_at"),
        Some(&AttributeValue::N(at(15).timestamp_millis().to_string()))
    );
    let Some(AttributeValue::S(data)) = item.get("data") else {
        panic!("data is a string: {item:?}");
    };
    assert_eq!(
        serde_json::from_str::<SettledSpend>(data).expect("the settlement as JSON"),
        later
    );
}
