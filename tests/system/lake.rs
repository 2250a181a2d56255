//! Recording end to end on the embedded backends: events put on the local
//! endpoint with a member account's access key, found in the lake files with
//! the right account, team, partition and cost, and counted once.

use std::time::Duration;

use serde_json::{Value, json};

use purser::driver::As;

use crate::common;
use crate::common::local::{Local, Options};

/// The reports of these tests ran on 2026-11-20: the clock starts the next
/// day, inside the lake's 40-day window whatever day the test runs; AWS
/// sources are allowed, to play CloudFormation.
async fn start() -> Local {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
        .unwrap()
        .to_utc();
    common::local::start_with(Options {
        clock: Some(std::sync::Arc::new(purser_core::ShiftedClock::starting_at(
            start,
        ))),
        organization_delay: Duration::from_millis(100),
        allow_aws_sources: true,
        ..Options::default()
    })
    .await
}

/// What these tests ask of the shared harness.
impl Local {
    /// A ready account of team `payments`; returns its 12-digit id.
    async fn member_account(&self) -> String {
        self.ready_account().await.1
    }

    async fn put(&self, account: &str, source: &str, detail_type: &str, detail: Value) {
        self.driver
            .put(account, source, detail_type, &detail, None, vec![])
            .await
            .unwrap();
    }

    fn lake_lines(&self, table: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let root = self.dir.path().join("lake").join(table);
        let Ok(parts) = std::fs::read_dir(&root) else {
            return out;
        };
        for part in parts {
            let part = part.unwrap().path();
            let dt = part.file_name().unwrap().to_string_lossy().to_string();
            for file in std::fs::read_dir(&part).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                for line in text.lines() {
                    out.push((dt.clone(), serde_json::from_str(line).unwrap()));
                }
            }
        }
        out
    }

    /// The envelopes of archived events of one type, oldest first.
    fn envelopes(&self, detail_type: &str) -> Vec<Value> {
        self.driver
            .archived(detail_type, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.envelope)
            .collect()
    }

    async fn eventually(&self, what: &str, mut check: impl FnMut(&Self) -> bool) {
        self.until(what, async |l| check(l)).await;
    }
}

fn batch(batch_id: &str, reports: usize) -> Value {
    let reports: Vec<Value> = (0..reports)
        .map(|i| json!({"request_id": format!("{batch_id}-{i}"), "timestamp": "2026-11-20T23:59:59.500Z",
            "duration_ms": 95.5, "billed_duration_ms": 100, "max_memory_used_mb": 70, "init_duration_ms": null}))
        .collect();
    json!({"version": 1, "batch_id": batch_id, "function_name": "checkout", "architecture": "arm64",
           "memory_mb": 512, "reports": reports})
}

/// 100 ms at 512 MB on arm64: 0.05 GB-s × $0.0000133334 + $0.0000002, computed here, not by Purser.
const COST_PER_INVOCATION: f64 = 0.05 * 0.0000133334 + 0.0000002;

/// A member account's report of 18446744073709551615 ms at 10,240 MB once
/// froze its team at 9.2 billion USD and broke the month's queries for
/// every team: it is refused, and the valid reports of its batch count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_impossible_report_is_refused_and_its_batch_counted_without_it() {
    let local = start().await;
    let account = local.member_account().await;
    let mut poisoned = batch("b-poison", 3);
    poisoned["memory_mb"] = json!(10240);
    poisoned["reports"][1]["billed_duration_ms"] = json!(u64::MAX);
    local
        .put(
            &account,
            "purser.telemetry",
            "InvocationsReported",
            poisoned,
        )
        .await;
    local
        .eventually("the spend update", |l| {
            l.archived("TeamSpendUpdated").len() == 1
        })
        .await;
    assert_eq!(local.lake_lines("invocations").len(), 2, "the valid two");
    let update = &local.envelopes("TeamSpendUpdated")[0]["detail"];
    let spend: f64 = update["spend"].as_str().unwrap().parse().unwrap();
    // 100 ms at 10,240 MB: 1 GB-s × $0.0000133334 + $0.0000002, twice.
    assert!(
        (spend - 2.0 * (0.0000133334 + 0.0000002)).abs() < 1e-9,
        "{spend}"
    );
    let engine = purser_query::LocalQueryEngine::new(local.dir.path()).unwrap();
    let query = purser_core::lake::named_queries::named("cost_per_team_monthly").unwrap();
    let month = ["2026-11".to_string(), "2026-11".to_string()];
    let monthly = purser_core::ports::QueryEngine::run(&engine, &query, &month).await;
    assert!(
        monthly.is_ok(),
        "the month's query still answers: {monthly:?}"
    );
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocations_land_in_the_lake_priced_and_counted_once() {
    let local = start().await;
    let account = local.member_account().await;
    local
        .put(
            &account,
            "purser.telemetry",
            "InvocationsReported",
            batch("b-1", 3),
        )
        .await;
    local
        .eventually("three invocation records", |l| {
            l.lake_lines("invocations").len() == 3
        })
        .await;
    let lines = local.lake_lines("invocations");
    for (dt, record) in &lines {
        assert_eq!(dt, "dt=2026-11-20", "partitioned by the invocation's day");
        assert_eq!(
            record["account_id"],
            account.as_str(),
            "the envelope's account"
        );
        assert_eq!(record["team"], "payments");
        assert_eq!(record["region"], "us-east-1");
        assert_eq!(record["schema_version"], 1);
        let cost = record["cost_usd"].as_f64().unwrap();
        assert!((cost - COST_PER_INVOCATION).abs() < 1e-12, "{cost}");
    }
    local
        .eventually("the spend update", |l| {
            l.archived("TeamSpendUpdated").len() == 1
        })
        .await;
    let update = &local.envelopes("TeamSpendUpdated")[0]["detail"];
    assert_eq!(update["team"], "payments");
    assert_eq!(update["period"], "2026-11");
    let spend: f64 = update["spend"].as_str().unwrap().parse().unwrap();
    assert!((spend - 3.0 * COST_PER_INVOCATION).abs() < 1e-9, "{spend}");

    // The sender retries the same batch: neither the lake nor the counters see it again.
    local
        .put(
            &account,
            "purser.telemetry",
            "InvocationsReported",
            batch("b-1", 3),
        )
        .await;
    // It is announced again, with the same figure: had the first
    // announcement been lost, this one would carry the news.
    local
        .eventually("the spend announced again", |l| {
            l.archived("TeamSpendUpdated").len() == 2
        })
        .await;
    assert_eq!(local.lake_lines("invocations").len(), 3);
    assert_eq!(
        local.envelopes("TeamSpendUpdated")[1]["detail"]["spend"],
        update["spend"]
    );
    let team = purser_core::TeamName::parse("payments").unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let spend = local
        .running
        .ports()
        .store
        .team_spend(&team, day, day)
        .await
        .unwrap();
    assert_eq!(spend.len(), 1);
    assert_eq!(
        spend[0].1,
        purser_core::spend::to_nanos(
            rust_decimal::Decimal::try_from(3.0 * COST_PER_INVOCATION).unwrap()
        )
    );
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocations_from_unknown_accounts_are_recorded_without_a_team() {
    let local = start().await;
    local
        .put(
            "999999999999",
            "purser.telemetry",
            "InvocationsReported",
            batch("b-x", 2),
        )
        .await;
    local
        .eventually("two records", |l| l.lake_lines("invocations").len() == 2)
        .await;
    for (_, record) in local.lake_lines("invocations") {
        assert_eq!(record["account_id"], "999999999999");
        assert_eq!(record["team"], Value::Null);
    }
    // The recorder writes the lake first, then the counters.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut spend = Vec::new();
    for _ in 0..200 {
        spend = local
            .running
            .ports()
            .store
            .account_spend("999999999999", day, day)
            .await
            .unwrap();
        if !spend.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(spend.len(), 1, "counted on the account");
    assert!(local.envelopes("TeamSpendUpdated").is_empty());
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deployments_from_ci_and_cloudformation_are_recorded() {
    let local = start().await;
    let account = local.member_account().await;
    local.put(&account, "ci.github", "DeploymentReported", json!({"version": 1, "stack": "web", "status": "SUCCEEDED",
        "commit": "4f2a9c1", "ref": "main", "pipeline": "deploy", "started_at": "2026-11-21T10:00:00Z", "finished_at": "2026-11-21T10:03:00Z"})).await;
    let stack_id = format!(
        "arn:aws:cloudformation:us-east-1:{account}:stack/api/0c8e7f40-8238-11eb-b5e2-02a0b6a6ae39"
    );
    // The operation's two events, 90 seconds apart by their own times.
    let began = chrono::DateTime::from_timestamp(local.now().timestamp() - 120, 0).unwrap();
    let change = |status: &str, reason: &str| json!({"stack-id": stack_id, "status-details": {"status": status, "status-reason": reason}, "client-request-token": ""});
    local
        .driver
        .put(
            &account,
            "aws.cloudformation",
            "CloudFormation Stack Status Change",
            &change("UPDATE_IN_PROGRESS", "User Initiated"),
            Some(began),
            vec![],
        )
        .await
        .unwrap();
    local
        .eventually("the in-progress record", |l| {
            l.lake_lines("deployments").len() == 2
        })
        .await;
    local
        .driver
        .put(
            &account,
            "aws.cloudformation",
            "CloudFormation Stack Status Change",
            &change("UPDATE_COMPLETE", ""),
            Some(began + chrono::Duration::seconds(90)),
            vec![],
        )
        .await
        .unwrap();
    local
        .eventually("three deployment records", |l| {
            l.lake_lines("deployments").len() == 3
        })
        .await;

    let records: Vec<Value> = local
        .lake_lines("deployments")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let ci = records.iter().find(|r| r["source"] == "ci").unwrap();
    assert_eq!(ci["account_id"], account.as_str());
    assert_eq!(ci["team"], "payments");
    assert_eq!(ci["duration_s"], 180.0);
    assert_eq!(ci["ref"], "main");
    let done = records
        .iter()
        .find(|r| r["status"] == "UPDATE_COMPLETE")
        .unwrap();
    assert_eq!(done["stack"], "api");
    assert_eq!(done["source"], "cloudformation");
    assert_eq!(done["duration_s"], 90.0, "paired with its start: {done}");

    // CI systems that prefer HTTP: POST /deployments. A member account's
    // own identity reports for itself, and only for itself.
    let started = json!({"version": 1, "stack": "batch", "status": "STARTED"});
    let call = |who, body: Value| {
        let local = &local;
        async move {
            local
                .driver
                .call(who, "POST", "/deployments", Some(&body), None)
                .await
                .unwrap()
        }
    };
    let reply = call(As::Account(&account), started.clone()).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(reply.body["account_id"], account.as_str());
    let mut elsewhere = started.clone();
    elsewhere["account_id"] = json!("999999999999");
    let reply = call(As::Account(&account), elsewhere).await;
    assert_eq!(
        reply.status, 403,
        "not for another account: {:?}",
        reply.body
    );
    // From Purser's own account, the member account is named, and the
    // caller must be of its team (or an admin).
    let reply = call(As::Admin, started.clone()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["field"], "account_id");
    let mut named = started.clone();
    named["account_id"] = json!(account);
    let stranger = "arn:aws:iam::123456789012:user/mallory";
    let reply = call(As::Principal(stranger), named.clone()).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    let reply = call(As::Principal(common::local::DEV), named.clone()).await;
    assert_eq!(reply.status, 202, "a member of the team: {:?}", reply.body);
    assert_eq!(reply.body["account_id"], account.as_str());
    named["account_id"] = json!("12345");
    let reply = call(As::Admin, named).await;
    assert_eq!(reply.body["error"]["field"], "account_id");
    local
        .eventually("the HTTP deployments", |l| {
            l.lake_lines("deployments").len() == 5
        })
        .await;
    let http: Vec<Value> = local
        .lake_lines("deployments")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["stack"] == "batch")
        .collect();
    assert_eq!(http.len(), 2);
    assert!(
        http.iter()
            .all(|r| r["account_id"] == account.as_str() && r["team"] == "payments")
    );
    let bad = local
        .http
        .post(format!("{}/deployments", local.url))
        .header("content-type", "application/json")
        .body(
            json!({"account_id": account, "version": 1, "stack": "batch", "status": "DONE"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "status");
    local.running.shutdown().await;
}

/// `purser events replay` sends the archive again as EventBridge replays
/// one (same ids, `replay-name` set, to the rules that match): every
/// handler is idempotent under it, so the lake, the counters, the accounts
/// and the announcements of lasting facts stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_of_the_whole_archive_changes_nothing_that_was_done() {
    let local = start().await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let account = local.member_account().await;
    for id in ["r-1", "r-2"] {
        local
            .put(
                &account,
                "purser.telemetry",
                "InvocationsReported",
                batch(id, 3),
            )
            .await;
    }
    local.settle().await;
    let (_, accounts_before) = local.call("GET", "/accounts", None).await;
    let (_, costs_before) = local
        .call(
            "GET",
            "/teams/payments/costs?from=2026-11-01&to=2026-11-30",
            None,
        )
        .await;
    let lake_before = local.lake_lines("invocations").len();
    assert_eq!(lake_before, 6);
    let ready_before = local.archived("AccountReady").len();

    let rules = local.running.bus().rules().to_vec();
    let replayed = purser_local::bus::replay(
        local.running.db(),
        &rules,
        &purser_local::bus::ReplayFilter {
            name: "test-replay".into(),
            since,
            until: chrono::Utc::now() + chrono::Duration::minutes(1),
            detail_type: None,
        },
    )
    .unwrap();
    assert!(replayed.events >= 5, "{replayed:?}");
    assert!(replayed.deliveries >= replayed.events / 2, "{replayed:?}");
    local.settle().await;

    assert_eq!(
        local.lake_lines("invocations").len(),
        lake_before,
        "no record twice"
    );
    let (_, accounts_after) = local.call("GET", "/accounts", None).await;
    assert_eq!(accounts_after, accounts_before);
    let (_, costs_after) = local
        .call(
            "GET",
            "/teams/payments/costs?from=2026-11-01&to=2026-11-30",
            None,
        )
        .await;
    assert_eq!(costs_after["total"], costs_before["total"], "{costs_after}");
    assert_eq!(
        local.archived("AccountReady").len(),
        ready_before,
        "no account announced ready twice"
    );
    let dead = purser_local::inspect::dead_letters(local.running.db(), 10).unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    local.running.shutdown().await;
}
