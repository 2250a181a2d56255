//! The spend function on the AWS adapters, against moto's server: the
//! settler runs the named queries on Athena (moto's canned rows stand for
//! what Athena would answer: it executes no SQL), reads the streaming
//! counters and the registry from DynamoDB (the template's own table),
//! stores the settlement there, and announces it on EventBridge, where a
//! rule delivers it to a queue the test reads.

use std::sync::Arc;

use crate::common::aws::{bus_into_queue, create_table_from_template, moto_in, next_event, unique};
use aws_sdk_athena::types::{ResultConfiguration, WorkGroupConfiguration};
use chrono::{Duration, Utc};
use purser_aws::{AthenaEngine, DynamoStore, EventBridgeBus};
use purser_core::accounts::{Account, AccountState, new_id};
use purser_core::ports::{
    AccountStore, Inserted, Marker, SettlementStore, SpendAdd, SpendCounters, Transitioned,
};
use purser_core::spend::{CurDay, SpendSettler, SpendSource};
use purser_core::{ManualClock, NewAccount, TeamName};
use serde_json::{Value, json};

/// A region of its own: moto's canned Athena rows are queued per region.
const REGION: &str = "ca-central-1";
const ACCOUNT_ID: &str = "210987654321";

fn column(name: &str, athena_type: &str) -> Value {
    json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
        "Type": athena_type, "Precision": 18, "Scale": 9, "Nullable": "UNKNOWN", "CaseSensitive": true})
}

fn row(values: &[&str]) -> Value {
    json!({"Data": values.iter().map(|v| json!({"VarCharValue": v})).collect::<Vec<_>>()})
}

/// Athena's answer with no rows: the header row alone, as Athena sends it.
fn no_rows(columns: &[(&str, &str)]) -> Value {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    json!({"rows": [row(&names)],
           "column_info": columns.iter().map(|(name, t)| column(name, t)).collect::<Vec<_>>()})
}

/// On a fixed clock, on a day in the middle of a month and on days when the
/// previous month is settled too (a leap month's end, a year's end): the
/// canned answers are consumed in the order the settlement asks.
#[tokio::test]
async fn the_spend_function_settles_on_athena_dynamodb_and_eventbridge() {
    use chrono::TimeZone;
    for now in [
        Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2028, 3, 1, 0, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 3, 23, 59, 0).unwrap(),
    ] {
        if !settles_on(now).await {
            return;
        }
    }
}

/// False when moto is not running (the test is skipped).
async fn settles_on(now: chrono::DateTime<Utc>) -> bool {
    let Some(config) = moto_in(REGION).await else {
        return false;
    };
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").unwrap();
    let endpoint = endpoint.trim_end_matches('/');
    let table = unique("purser");
    create_table_from_template(&config, &table).await;
    let bus = unique("purser");
    let queue = bus_into_queue(&config, &bus).await;
    let workgroup = unique("purser");
    aws_sdk_athena::Client::new(&config)
        .create_work_group()
        .name(&workgroup)
        .configuration(
            WorkGroupConfiguration::builder()
                .result_configuration(
                    ResultConfiguration::builder()
                        .output_location("s3://purser-athena-results/")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateWorkGroup");

    // The registry: a ready account of team payments.
    let store = Arc::new(DynamoStore::from_config(&config, &table));
    let team = TeamName::parse("payments").unwrap();
    let input = NewAccount {
        team: team.clone(),
        owner: "ana@example.com".into(),
        purpose: "spend".into(),
        lease_days: None,
        template: None,
    };
    let requested = Account::request(new_id(), input, "arn:aws:iam::123456789012:user/ana", now)
        .expect("a valid request");
    assert_eq!(
        store.insert_account(&requested, 10, None).await.unwrap(),
        Inserted::Created
    );
    let mut ready = requested.next_revision();
    ready.state = AccountState::Ready;
    ready.account_id = Some(ACCOUNT_ID.into());
    assert_eq!(
        store
            .transition(AccountState::Requested, &ready)
            .await
            .unwrap(),
        Transitioned::Applied
    );
    // The counters streamed $4.80 today.
    let today = now.date_naive();
    let add = SpendAdd {
        team: Some(team.clone()),
        account_id: ACCOUNT_ID.into(),
        day: today,
        nanos: 4_800_000_000,
    };
    assert!(
        store
            .record_spend_once(&batch_1(), now, now + Duration::days(1), &[add], &[])
            .await
            .unwrap()
    );

    // Athena's answers: the lake holds $5.40 of Lambda (invocations the
    // counters missed), the CUR $4.50 of EC2 and $1.00 of Lambda.
    let day = today.format("%Y-%m-%d").to_string();
    let mut results = Vec::new();
    if purser_core::spend::months_to_settle(today).len() == 2 {
        // The previous month first: nothing in the lake or the CUR.
        results.push(no_rows(&[
            ("account_id", "varchar"),
            ("day", "varchar"),
            ("service", "varchar"),
            ("records", "bigint"),
            ("cost_usd", "decimal"),
            ("team", "varchar"),
        ]));
        results.push(no_rows(&[
            ("account_id", "varchar"),
            ("day", "varchar"),
            ("service", "varchar"),
            ("cost_usd", "decimal"),
            ("team", "varchar"),
            ("lease_id", "varchar"),
        ]));
    }
    // The lake's records name the team that held the account; the CUR's
    // lines the team of the lease that covered it.
    results.extend([
        json!({"rows": [row(&["account_id", "day", "service", "records", "cost_usd", "team"]),
                      row(&[ACCOUNT_ID, &day, "lambda", "45", "5.400000000", "payments"])],
             "column_info": [column("account_id", "varchar"), column("day", "varchar"),
                             column("service", "varchar"), column("records", "bigint"),
                             column("cost_usd", "decimal"), column("team", "varchar")]}),
        json!({"rows": [row(&["account_id", "day", "service", "cost_usd", "team", "lease_id"]),
                      row(&[ACCOUNT_ID, &day, "(other)", "4.500000000", "payments", "r-0123456789ab"]),
                      row(&[ACCOUNT_ID, &day, "lambda", "1.000000000", "payments", "r-0123456789ab"])],
             "column_info": [column("account_id", "varchar"), column("day", "varchar"),
                             column("service", "varchar"), column("cost_usd", "decimal"),
                             column("team", "varchar"), column("lease_id", "varchar")]}),
    ]);
    let response = purser::http_client()
        .build()
        .unwrap()
        .post(format!("{endpoint}/moto-api/static/athena/query-results"))
        .json(&json!({"account_id": "123456789012", "region": REGION, "results": results}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");

    let settler = SpendSettler::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(
            AthenaEngine::from_config(&config, &workgroup, "purser_lake").with_poll_delays(
                std::time::Duration::from_millis(20),
                std::time::Duration::from_millis(200),
            ),
        ),
        Arc::new(EventBridgeBus::from_config(&config, &bus)),
        Arc::new(ManualClock::new(now)),
        true,
    );
    let settled = settler.settle().await.expect("the settlement runs");
    assert_eq!((settled.teams, settled.announced), (1, 1), "{settled:?}");

    // max(CUR 5.50, CUR non-Lambda 4.50 + streamed Lambda max(4.80, 5.40)) = 9.90.
    let mut seen = Vec::new();
    let event = next_event(&config, &queue, &mut seen, "TeamSpendUpdated").await;
    assert_eq!(event["detail"]["team"], "payments");
    assert_eq!(event["detail"]["source"], "cur");
    assert_eq!(event["detail"]["spend"], "9.9");
    let stored = store
        .settled_spend(&team, &now.format("%Y-%m").to_string())
        .await
        .unwrap()
        .expect("the settlement is stored");
    assert_eq!(stored.source, SpendSource::Cur);
    assert_eq!(stored.total, 9_900_000_000);
    let figures = &stored.accounts[ACCOUNT_ID][&today];
    assert_eq!(
        figures.missed, 600_000_000,
        "the lake held 0.60 more than the counter"
    );
    assert_eq!(
        figures.cur,
        Some(CurDay {
            total: 5_500_000_000,
            lambda: 1_000_000_000,
            services: [("lambda".to_string(), 1_000_000_000)].into(),
        })
    );
    assert!(stored.announced);
    let month = purser_core::spend::month_to_date(store.as_ref(), store.as_ref(), &team, now)
        .await
        .unwrap();
    assert_eq!(month.total, 9_900_000_000, "counters + the settlement");
    true
}

/// The batch the test's counters were added by.
fn batch_1() -> Marker {
    Marker::SpendBatch {
        account_id: ACCOUNT_ID.into(),
        batch_id: "batch-1".into(),
    }
}
