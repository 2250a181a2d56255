//! Budgets end to end on the embedded backends: invocation reports of known
//! cost cross 50/80/100 % of a budget, the team's account is frozen by SCP,
//! a raised budget unfreezes it; and, as a property, thresholds fire once
//! and in order whatever the order or repetition of spend updates.

use std::time::Duration;

use crate::common::local::{COST, DEV, amount, start, start_with_clock};
use chrono::Utc;
use proptest::prelude::*;
use purser_core::TeamName;
use purser_core::ports::SpendAdd;
use purser_local::Template;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_over_budget_is_frozen_and_a_raised_budget_unfreezes_it() {
    let local = start().await;
    let (id, account) = local.ready_account().await;
    let (status, budget) = local
        .call("PUT", "/teams/payments/budget", Some(json!({"amount": "10.00", "currency": "USD", "thresholds": [50, 80, 100],
            "actions": {"50": ["notify"], "80": ["notify"], "100": ["notify", "freeze"]}, "mode": "actual"})))
        .await;
    assert_eq!(status, 200, "{budget}");
    assert_eq!(budget["crossed_thresholds"], json!([]));

    local.report(&account, "runaway", "b1", 40).await; // 4.80: under 50 %
    local
        .until("the first batch is counted", async |l| {
            l.call("GET", "/teams/payments/budget", None).await.1["spend"] != "0"
        })
        .await;
    assert!(local.crossings().is_empty());
    local.report(&account, "runaway", "b2", 10).await; // 6.00
    local
        .until("50 % is crossed", async |l| l.crossings() == [50])
        .await;
    local.report(&account, "runaway", "b3", 20).await; // 8.40
    local
        .until("80 % is crossed", async |l| l.crossings() == [50, 80])
        .await;
    local.report(&account, "runaway", "b3", 20).await; // redelivered: not counted again
    local
        .running
        .settle(std::time::Duration::from_secs(10))
        .await
        .expect("every delivery is done");
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    let spend: f64 = view["spend"].as_str().unwrap().parse().unwrap();
    assert!(
        (spend - 70.0 * COST).abs() < 1e-6,
        "{spend} vs {}",
        70.0 * COST
    );

    local.report(&account, "runaway", "b4", 20).await; // 10.80: over
    local
        .until("the account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    assert_eq!(local.crossings(), [50, 80, 100], "each once, in order");
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    assert_eq!(view["frozen"], true);
    assert_eq!(view["crossed_thresholds"], json!([50, 80, 100]));
    let org = local.running.organization();
    let attached = purser_core::Organization::policies_of(org, &account)
        .await
        .unwrap();
    assert!(
        attached.len() >= 2,
        "the freeze SCP is attached: {attached:?}"
    );

    // The costs API, the lake's cost_per_team_monthly and this test's own
    // arithmetic agree: 90 invocations, the redelivered batch once.
    let expected = 90.0 * COST;
    let (_, costs) = local.call("GET", "/teams/payments/costs", None).await;
    assert!((amount(&costs["total"]) - expected).abs() < 1e-6, "{costs}");
    assert_eq!(costs["currency"], "USD");
    let (_, by_account) = local
        .call("GET", "/teams/payments/costs?by=account", None)
        .await;
    assert_eq!(by_account["items"][0]["account_id"], account.as_str());
    assert!((amount(&by_account["total"]) - expected).abs() < 1e-6);
    let month = local.now().format("%Y-%m").to_string();
    let monthly = local
        .lake_query("cost_per_team_monthly", &[&month, &month])
        .await;
    let row = monthly
        .objects()
        .into_iter()
        .find(|r| r["team"] == "payments")
        .expect("a row for payments");
    assert_eq!(row["invocations"], json!(90));
    assert!(
        (amount(&row["cost_usd"]) - expected).abs() < 1e-6,
        "{row:?}"
    );
    let (status, by_function) = local
        .call("GET", "/teams/payments/costs?by=function", None)
        .await;
    assert_eq!(status, 200, "{by_function}");
    assert_eq!(by_function["items"][0]["function_name"], "runaway");
    assert_eq!(by_function["items"][0]["invocations"], json!(90));
    assert!((amount(&by_function["total"]) - expected).abs() < 1e-6);

    // Raising the budget above spend undoes the freeze.
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "50"})),
        )
        .await;
    assert_eq!(status, 200);
    local
        .until("the account is unfrozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let detached = purser_core::Organization::policies_of(org, &account)
        .await
        .unwrap();
    assert_eq!(
        detached.len(),
        attached.len() - 1,
        "the freeze SCP is detached"
    );
    // The state changes first, then the announcement goes out.
    local
        .until("AccountUnfrozen is announced", async |l| {
            !l.archived("AccountUnfrozen").is_empty()
        })
        .await;
    assert_eq!(local.archived("AccountUnfrozen").len(), 1);
    local.running.shutdown().await;
}

/// A team over its budget does not get a free account by asking for one:
/// the account is frozen as it becomes ready, not at the hourly sweep.
/// A noisy neighbour: another team's account floods the bus with reports
/// queued ahead of the one that takes `payments` over its budget. The
/// local bus delivers in lanes by the template's message groups
/// (InvocationsRule's `$.account`, SpendRule's `$.detail.team`), as SQS fair
/// queues do on AWS, so `payments` is frozen while most of the flood still
/// waits; delivered oldest first, it would wait for all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_another_account_does_not_delay_a_teams_freeze() {
    const FLOOD: usize = 5_000;
    let local = start().await;
    let (id, account) = local.ready_account().await;
    local.call("PUT", "/teams/flood", Some(json!({}))).await;
    let (_, flood) = local
        .call(
            "POST",
            "/accounts",
            Some(json!({"team": "flood", "owner": "flood@example.com", "purpose": "a flood"})),
        )
        .await;
    let flood_id = flood["id"].as_str().unwrap().to_string();
    local
        .until("the flooding account is ready", async |l| {
            l.call("GET", &format!("/accounts/{flood_id}"), None)
                .await
                .1["state"]
                == "ready"
        })
        .await;
    let (_, flood) = local
        .call("GET", &format!("/accounts/{flood_id}"), None)
        .await;
    let flood_account = flood["account_id"].as_str().unwrap().to_string();
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1.00"})),
        )
        .await;
    assert_eq!(status, 200);
    local.settle().await;

    let now = local.now().to_rfc3339();
    let bus = local.running.bus();
    for call in 0..FLOOD / 10 {
        let entries = (0..10)
            .map(|e| {
                let detail = json!({"version": 1, "batch_id": format!("flood-{call}-{e}"),
                    "function_name": "feature-api", "architecture": "arm64", "memory_mb": 128,
                    "reports": [{"request_id": format!("f-{call}-{e}"), "timestamp": now, "duration_ms": 10.0,
                        "billed_duration_ms": 10, "max_memory_used_mb": 60, "init_duration_ms": null}]});
                purser_core::EventEntry {
                    source: Some("purser.telemetry".into()),
                    detail_type: Some("InvocationsReported".into()),
                    detail: Some(detail.to_string()),
                    event_bus_name: Some("purser".into()),
                    ..Default::default()
                }
            })
            .collect();
        let put = bus.put_events(entries, &flood_account).await.unwrap();
        assert!(put.iter().all(Result::is_ok));
    }
    local.report(&account, "runaway", "over", 9).await; // 1.08 of 1.00
    local
        .until("payments is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    let waiting = purser_local::inspect::pending_deliveries(local.running.db()).unwrap();
    assert!(
        waiting as usize > FLOOD / 2,
        "frozen with only {waiting} of the flood's {FLOOD} deliveries still queued: it waited for the flood"
    );
    local
        .running
        .settle(Duration::from_secs(120))
        .await
        .expect("the flood is delivered too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_account_of_a_team_over_budget_is_frozen_when_it_is_ready() {
    let local = start().await;
    let (first, account) = local.ready_account().await;
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1.00"})),
        )
        .await;
    assert_eq!(status, 200);
    local.report(&account, "runaway", "b1", 10).await; // 1.20: over 100 %
    local
        .until("the first account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{first}"), None).await.1["state"] == "frozen"
        })
        .await;
    let (status, body) = local
        .call(
            "POST",
            "/accounts",
            Some(json!({"team": "payments", "owner": "ana@example.com", "purpose": "another"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let second = body["id"].as_str().unwrap().to_string();
    local
        .until("the new account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{second}"), None).await.1["state"] == "frozen"
        })
        .await;
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_spend_function_settles_with_the_lake_and_the_cur_and_budgets_act_on_it() {
    let local = start().await;
    let (id, account) = local.ready_account().await;
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "10.00"})),
        )
        .await;
    assert_eq!(status, 200);
    local.report(&account, "runaway", "b1", 40).await; // 4.80 streamed
    local
        .until("the batch is counted", async |l| {
            l.call("GET", "/teams/payments/budget", None).await.1["spend"] != "0"
        })
        .await;
    assert!(local.crossings().is_empty());

    // Five invocations the counters never saw, only the lake (as if their
    // counter write had been lost): settling from the lake adds them.
    let now = local.now();
    let today = now.format("%Y-%m-%d").to_string();
    let missed: Vec<Value> = (0..5)
        .map(|i| json!({"schema_version": 1, "account_id": account, "team": "payments", "region": "us-east-1",
            "function_name": "runaway", "architecture": "arm64", "memory_mb": 10240,
            "request_id": format!("missed-{i}"), "timestamp": now.to_rfc3339(), "duration_ms": 899999.0,
            "billed_duration_ms": 900000, "max_memory_used_mb": 2000, "cost_usd": COST}))
        .collect();
    local.drop_into_lake(&format!("invocations/dt={today}/missed.json"), &missed);
    let settled = local.settle_spend().await;
    assert_eq!(settled["teams"], 1, "{settled}");
    assert_eq!(settled["announced"], 1, "{settled}");
    let updates = local.archived("TeamSpendUpdated");
    let athena = updates
        .iter()
        .find(|d| d["source"] == "athena")
        .expect("TeamSpendUpdated from the spend function");
    assert!(
        (amount(&athena["spend"]) - 45.0 * COST).abs() < 1e-6,
        "{athena}"
    );
    local
        .until("50 % is crossed on the settled figure", async |l| {
            l.crossings() == [50]
        })
        .await;
    let (_, costs) = local.call("GET", "/teams/payments/costs", None).await;
    assert!(
        (amount(&costs["total"]) - 45.0 * COST).abs() < 1e-6,
        "{costs}"
    );
    assert!(costs["source"]["athena"].is_string(), "{costs}");
    assert!(costs["source"]["settled_at"].is_string(), "{costs}");

    // Nothing changed: nothing is announced again.
    let again = local.settle_spend().await;
    assert_eq!(again["announced"], 0, "{again}");

    // The CUR arrives: $4.50 of EC2 and $1.00 of Lambda today. The day is
    // max(5.50, 4.50 + streamed Lambda 5.40) = 9.90: over 80 %, under 100 %.
    let start_of_day = format!("{today}T00:00:00");
    local.drop_into_lake(
        "cur/export-00001.json",
        &[
            json!({"line_item_usage_account_id": account, "line_item_product_code": "AmazonEC2",
                "line_item_usage_start_date": start_of_day, "line_item_unblended_cost": 4.5,
                "billing_period": &today[..7]}),
            json!({"line_item_usage_account_id": account, "line_item_product_code": "AWSLambda",
                "line_item_usage_start_date": start_of_day, "line_item_unblended_cost": 1.0,
                "billing_period": &today[..7]}),
        ],
    );
    let settled = local.settle_spend().await;
    assert_eq!(settled["announced"], 1, "{settled}");
    let expected = 45.0 * COST + 4.5;
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    assert!((amount(&view["spend"]) - expected).abs() < 1e-6, "{view}");
    local
        .until("80 % is crossed", async |l| l.crossings() == [50, 80])
        .await;
    let (_, costs) = local.call("GET", "/teams/payments/costs", None).await;
    assert!((amount(&costs["total"]) - expected).abs() < 1e-6, "{costs}");
    assert!(costs["source"]["cur"].is_string(), "{costs}");
    assert!((amount(&costs["items"][0]["amount"]) - expected).abs() < 1e-6);
    let (_, by_account) = local
        .call("GET", "/teams/payments/costs?by=account", None)
        .await;
    assert!((amount(&by_account["items"][0]["amount"]) - expected).abs() < 1e-6);

    // Streamed spend keeps counting on top of the settlement: two more
    // invocations (0.24) take the team over and freeze it within seconds,
    // without waiting for the next settlement.
    local.report(&account, "runaway", "b2", 2).await;
    local
        .until("the account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    assert_eq!(local.crossings(), [50, 80, 100]);
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_previous_month_is_settled_for_three_days_into_the_next() {
    use chrono::TimeZone;
    let clock = std::sync::Arc::new(purser_core::ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap(),
    ));
    let local = start_with_clock(Some(clock.clone())).await;
    let (_, account) = local.ready_account().await;
    // The CUR bills November's last day on December 2nd.
    let line = |day: &str, cost: f64| {
        json!({"line_item_usage_account_id": account, "line_item_product_code": "AmazonEC2",
            "line_item_usage_start_date": format!("{day}T00:00:00"), "line_item_unblended_cost": cost,
            "billing_period": &day[..7]})
    };
    local.drop_into_lake("cur/late.json", &[line("2026-11-30", 2.0)]);
    let settled = local.settle_spend().await;
    assert_eq!(settled["period"], "2026-12", "{settled}");
    assert_eq!(
        settled["announced"], 1,
        "November's figure changed: {settled}"
    );
    let november = "/teams/payments/costs?from=2026-11-01&to=2026-11-30";
    let (_, costs) = local.call("GET", november, None).await;
    assert_eq!(costs["total"], "2", "{costs}");
    assert!(costs["source"]["cur"].is_string(), "{costs}");
    let updates = local.archived("TeamSpendUpdated");
    assert_eq!(updates.last().unwrap()["period"], "2026-11");

    // From the 4th, November stands as last settled.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap());
    local.drop_into_lake("cur/later.json", &[line("2026-11-29", 3.0)]);
    let settled = local.settle_spend().await;
    assert_eq!(settled["announced"], 0, "{settled}");
    let (_, costs) = local.call("GET", november, None).await;
    assert_eq!(costs["total"], "2", "{costs}");
    local.running.shutdown().await;
}

/// A bus that refuses everything, as EventBridge does when it is down.
struct DownBus;

#[async_trait::async_trait]
impl purser_core::EventBus for DownBus {
    async fn put(&self, _: Vec<purser_core::EventEntry>) -> Result<(), purser_core::BusError> {
        Err(purser_core::BusError::Unavailable(
            "down for the test".into(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_that_could_not_be_announced_is_announced_by_the_next_run() {
    let local = start().await;
    let (_, account) = local.ready_account().await;
    local.report(&account, "runaway", "b1", 3).await;
    local
        .until("the batch is counted", async |l| {
            l.call("GET", "/teams/payments/costs", None).await.1["total"] != "0"
        })
        .await;
    let now = local.now();
    let missed = json!({"schema_version": 1, "account_id": account, "team": "payments", "region": "us-east-1",
        "function_name": "runaway", "request_id": "missed-0", "timestamp": now.to_rfc3339(), "cost_usd": 0.25});
    local.drop_into_lake(
        &format!("invocations/dt={}/missed.json", now.format("%Y-%m-%d")),
        &[missed],
    );
    let ports = local.running.ports();
    let settler = |bus: std::sync::Arc<dyn purser_core::EventBus>| {
        purser_core::spend::SpendSettler::new(
            ports.store.clone(),
            ports.store.clone(),
            ports.store.clone(),
            std::sync::Arc::new(purser_query::LocalLake::new(local.dir.path())),
            bus,
            ports.clock.clone(),
            true,
        )
    };
    let failed = settler(std::sync::Arc::new(DownBus)).settle().await;
    assert!(
        failed.is_err(),
        "the bus is down: the run fails and is retried"
    );
    // The settlement counts at once, announced or not.
    let (_, costs) = local.call("GET", "/teams/payments/costs", None).await;
    assert!(
        (amount(&costs["total"]) - (3.0 * COST + 0.25)).abs() < 1e-6,
        "{costs}"
    );
    let before = local.archived("TeamSpendUpdated").len();
    let settled = settler(ports.bus.clone()).settle().await.unwrap();
    assert_eq!(settled.announced, 1, "the pending announcement goes out");
    assert_eq!(local.archived("TeamSpendUpdated").len(), before + 1);
    let settled = settler(ports.bus.clone()).settle().await.unwrap();
    assert_eq!(settled.announced, 0, "and only once");
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_requests_are_validated_and_admin_only() {
    let local = start().await;
    let (status, body) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "ten"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "amount");
    let (status, body) = local.call("GET", "/teams/payments/budget", None).await;
    assert_eq!(status, 404, "{body}");
    let reply = local
        .http
        .put(format!("{}/teams/payments/budget", local.url))
        .header("x-purser-principal", DEV)
        .header("content-type", "application/json")
        .body(json!({"amount": "1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    let (status, body) = local
        .call("GET", "/teams/payments/costs?from=2026-13-01", None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "from");
    // A year past 9999 once walked months until NaiveDate::MAX, forever.
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(5),
        local.call(
            "GET",
            "/teams/payments/costs?from=%2B262142-12-01&to=%2B262142-12-31",
            None,
        ),
    )
    .await
    .expect("a costs request answers at once");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "from");
    let (status, body) = local
        .call(
            "GET",
            "/teams/payments/costs?from=2026-11-01&to=2100-01-01",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "to");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2099-12-31"),
        "{body}"
    );
    let (status, body) = local
        .call(
            "GET",
            "/teams/payments/costs?by=function&from=2026-01-01&to=2026-11-30",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("92 days"),
        "{body}"
    );
    local.running.shutdown().await;
}

/// One step of a spend stream: a batch (possibly delivered again) followed
/// by an evaluation, in any order.
#[derive(Debug, Clone)]
enum Step {
    Add { batch: usize, cents: i64 },
    Evaluate,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0usize..12, 1i64..40).prop_map(|(batch, cents)| Step::Add { batch, cents }),
            Just(Step::Evaluate),
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn thresholds_fire_once_and_in_order_under_any_interleaving(steps in steps()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let local = start().await;
            let ports = local.running.ports().clone();
            let budgets = ports.budgets();
            let team = TeamName::parse("payments").unwrap();
            let budget = purser_core::budgets::Budget::from_json(team.clone(), &json!({"amount": "1", "thresholds": [25, 50, 75, 100], "actions": {}}), local.now()).unwrap();
            budgets.put(budget, &purser_core::accounts::Caller { principal: purser_local::LOCAL_ADMIN.into(), admin: true }).await.unwrap();
            let today = local.now().date_naive();
            let mut counted = std::collections::BTreeMap::new();
            for step in &steps {
                match step {
                    Step::Add { batch, cents } => {
                        // A batch id carries one amount; a repeat is a redelivery.
                        let cents = *counted.entry(*batch).or_insert(*cents);
                        let add = SpendAdd { team: Some(team.clone()), account_id: "210987654321".into(), day: today, nanos: cents * 10_000_000 };
                        ports.store.record_spend_once(&purser_core::Marker::SpendBatch { account_id: "210987654321".into(), batch_id: batch.to_string() }, local.now(), local.now() + chrono::Duration::days(1), &[add], &[]).await.unwrap();
                    }
                    Step::Evaluate => budgets.evaluate(&team).await.unwrap(),
                }
            }
            budgets.evaluate(&team).await.unwrap();
            let total_cents: i64 = counted.values().sum();
            let expected: Vec<u64> = [25u64, 50, 75, 100].into_iter().filter(|t| total_cents as u64 >= *t).collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let fired = local.crossings();
            local.running.shutdown().await;
            prop_assert_eq!(fired, expected);
            Ok(())
        })?;
    }
}

/// The hourly sweep at an organization's scale: 10,000 ready accounts in
/// 500 teams, one team in five over its budget. The scheduled run only
/// fans out one `BudgetEvaluationDue` per team, so it ends long within the
/// function's timeout; each team's evaluation then reads its own accounts,
/// and every account of every over-budget team is frozen, none other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_sweep_freezes_every_over_budget_team_of_ten_thousand_accounts() {
    const TEAMS: usize = 500;
    const PER_TEAM: usize = 20;
    let local = start().await;
    let ports = local.running.ports().clone();
    let now = local.now();
    let admin = purser_core::accounts::Caller {
        principal: purser_local::LOCAL_ADMIN.into(),
        admin: true,
    };
    let budgets = ports.budgets();
    let account_id = |team: usize, n: usize| format!("{:012}", 300_000_000_000 + team * 100 + n);
    let over = |team: usize| team.is_multiple_of(5);
    for t in 0..TEAMS {
        let team = TeamName::parse(&format!("team-{t:03}")).unwrap();
        let mut settings = purser_core::accounts::Team::unconfigured(team.clone());
        settings.quota = PER_TEAM as u32;
        ports.store.put_team(&settings).await.unwrap();
        let budget = purser_core::budgets::Budget::from_json(
            team.clone(),
            &json!({"amount": "10", "actions": {"100": ["notify", "freeze"]}}),
            now,
        )
        .unwrap();
        budgets.put(budget, &admin).await.unwrap();
        for n in 0..PER_TEAM {
            let id = account_id(t, n);
            let account = purser_core::accounts::Account {
                id: format!("req-{t:03}-{n:02}"),
                state: purser_core::accounts::AccountState::Ready,
                team: team.clone(),
                owner: "ana@example.com".into(),
                purpose: "scale".into(),
                lease_end: None,
                created_at: now,
                updated_at: now,
                account_id: Some(id.clone()),
                email: format!("{id}@example.com"),
                ou: None,
                failure_reason: None,
                creation_id: Some(format!("car-{id}")),
                creation_started_at: Some(now),
                creation_attempts: 1,
                closure_started_at: None,
                requested_by: DEV.into(),
                version: 0,
                announcing: Vec::new(),
                access: None,
                timeline: Vec::new(),
                template: None,
                lease_days: None,
                decision: None,
                pending_extension: None,
                frozen_by: Vec::new(),
                blueprint: None,
                recycling: None,
                recycled_from: None,
            };
            ports
                .store
                .insert_account(&account, PER_TEAM as u32, None)
                .await
                .unwrap();
        }
    }
    // The members, as the organization knows them (created long ago).
    let root = local.running.organization().root().await.unwrap();
    let members: Vec<String> = (0..TEAMS)
        .flat_map(|t| (0..PER_TEAM).map(move |n| account_id(t, n)))
        .collect();
    local
        .running
        .db()
        .call_blocking(move |c| {
            let tx = c.transaction()?;
            for id in &members {
                tx.execute(
                    "INSERT INTO org_accounts (account_id, email, name, status, parent)
                     VALUES (?1, ?1 || '@example.com', ?1, 'ACTIVE', ?2)",
                    [id.as_str(), root.as_str()],
                )?;
            }
            tx.commit()
        })
        .unwrap();
    local.settle().await; // the budgets' own BudgetChanged: nothing over yet
    // Spend counted without an announcement, as if TeamSpendUpdated was lost.
    for t in (0..TEAMS).filter(|t| over(*t)) {
        let team = TeamName::parse(&format!("team-{t:03}")).unwrap();
        let add = SpendAdd {
            team: Some(team),
            account_id: account_id(t, 0),
            day: now.date_naive(),
            nanos: 11_000_000_000,
        };
        let batch = purser_core::Marker::SpendBatch {
            account_id: account_id(t, 0),
            batch_id: "scale".into(),
        };
        ports
            .store
            .record_spend_once(&batch, now, now + chrono::Duration::days(1), &[add], &[])
            .await
            .unwrap();
    }
    assert!(
        ports
            .store
            .accounts_in_state(purser_core::accounts::AccountState::Frozen)
            .await
            .unwrap()
            .is_empty()
    );

    let timeout = Template::builtin()
        .resources()
        .find(|(name, _)| *name == "BudgetsFunction")
        .and_then(|(_, r)| r["Properties"]["Timeout"].as_u64())
        .expect("the budgets function has a timeout");
    let began = std::time::Instant::now();
    let answer = local.running.run_schedule("BudgetsFunction").await.unwrap();
    let took = began.elapsed();
    assert_eq!(answer["evaluations_requested"], TEAMS as u64, "{answer}");
    assert!(
        took < Duration::from_secs(timeout),
        "the sweep took {took:?}, over the function's {timeout} s"
    );
    local
        .running
        .settle(Duration::from_secs(300))
        .await
        .expect("every team's evaluation is delivered");

    let frozen = ports
        .store
        .accounts_in_state(purser_core::accounts::AccountState::Frozen)
        .await
        .unwrap();
    let mut frozen_ids: Vec<String> = frozen.iter().filter_map(|a| a.account_id.clone()).collect();
    frozen_ids.sort();
    let mut expected: Vec<String> = (0..TEAMS)
        .filter(|t| over(*t))
        .flat_map(|t| (0..PER_TEAM).map(move |n| account_id(t, n)))
        .collect();
    expected.sort();
    assert_eq!(frozen_ids.len(), TEAMS / 5 * PER_TEAM);
    assert_eq!(
        frozen_ids, expected,
        "every account of every over-budget team, none other"
    );
    assert_eq!(local.archived("BudgetEvaluationDue").len(), TEAMS);
}

/// Per-account budgets (issue 14): two accounts of team payments from
/// template `hackathon` (a $5 budget for the lease, freeze at 100 %); one
/// runs past it and is frozen alone, the other keeps working, the team's
/// own budget is untouched, and the crossings name the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_over_its_templates_budget_is_frozen_while_its_team_mate_keeps_working() {
    let local = start().await;
    let (status, team) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"members": [DEV], "quota": 5})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    let (status, template) = local
        .call(
            "PUT",
            "/templates/hackathon",
            Some(
                json!({"description": "two days to try things", "default_lease_days": 2,
                "max_lease_days": 7, "approval": "never",
                "budget": {"amount": "5.00", "currency": "USD", "thresholds": [50, 100],
                    "actions": {"50": ["notify"], "100": ["notify", "freeze"]}}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{template}");
    let (status, budget) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1000", "thresholds": [50, 100]})),
        )
        .await;
    assert_eq!(status, 200, "{budget}");

    let mut accounts = Vec::new();
    for purpose in ["hack one", "hack two"] {
        let (status, body) = local
            .call(
                "POST",
                "/accounts",
                Some(json!({"team": "payments", "owner": "ana@example.com",
                    "purpose": purpose, "template": "hackathon"})),
            )
            .await;
        assert!(
            status == 201 || status == 202 || status == 200,
            "{status} {body}"
        );
        accounts.push(body["id"].as_str().unwrap().to_string());
    }
    let state = async |l: &crate::common::local::Local, id: &str| -> Value {
        l.call("GET", &format!("/accounts/{id}"), None).await.1
    };
    let mut ids = Vec::new();
    for id in &accounts {
        local
            .until("the account is ready", async |l| {
                state(l, id).await["state"] == "ready"
            })
            .await;
        ids.push(
            state(&local, id).await["account_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (runaway, mate) = (&ids[0], &ids[1]);

    local.report(runaway, "runaway", "a1", 50).await; // 6.00 of its 5.00
    local
        .until("the runaway account is frozen", async |l| {
            state(l, &accounts[0]).await["state"] == "frozen"
        })
        .await;
    local.report(mate, "worker", "b1", 2).await; // 0.24
    local
        .until("the team-mate's spend is counted", async |l| {
            let (_, view) = l.call("GET", "/teams/payments/budget", None).await;
            view["accounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["account_id"] == mate.as_str() && a["spend"] != "0")
        })
        .await;
    local.settle().await;
    assert_eq!(
        state(&local, &accounts[1]).await["state"],
        "ready",
        "its team-mate keeps working"
    );

    let crossings = local.archived("BudgetThresholdCrossed");
    let thresholds: Vec<u64> = crossings
        .iter()
        .map(|d| d["threshold"].as_u64().unwrap())
        .collect();
    assert_eq!(thresholds, [50, 100], "each once: {crossings:?}");
    for crossed in &crossings {
        assert_eq!(crossed["scope"], "account");
        assert_eq!(crossed["account_id"], runaway.as_str());
        assert_eq!(crossed["request_id"], accounts[0].as_str());
        assert_eq!(
            crossed["template"],
            json!({"name": "hackathon", "version": 1})
        );
        assert_eq!(crossed["period"], "lease");
    }
    let frozen = local.archived("AccountFrozen");
    assert_eq!(frozen.len(), 1, "{frozen:?}");
    assert_eq!(frozen[0]["account_id"], runaway.as_str());

    let org = local.running.organization();
    let policies = |id: &str| {
        let id = id.to_string();
        async move {
            purser_core::Organization::policies_of(org, &id)
                .await
                .unwrap()
        }
    };
    let (runaway_policies, mate_policies) = (policies(runaway).await, policies(mate).await);
    assert!(
        runaway_policies.len() > mate_policies.len(),
        "the freeze SCP on the runaway only: {runaway_policies:?} vs {mate_policies:?}"
    );

    // The team's budget is untouched; the view shows each account's own.
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    assert_eq!(view["crossed_thresholds"], json!([]), "{view}");
    assert_eq!(view["frozen"], false, "the team's budget froze nothing");
    let listed = view["accounts"].as_array().unwrap();
    let of = |id: &str| listed.iter().find(|a| a["account_id"] == id).unwrap();
    assert_eq!(of(runaway)["amount"], "5");
    assert_eq!(of(runaway)["crossed_thresholds"], json!([50, 100]));
    assert_eq!(of(runaway)["frozen"], true);
    assert_eq!(of(runaway)["frozen_by"], json!(["account"]));
    assert!(amount(&of(runaway)["spend"]) > 5.0);
    assert_eq!(of(mate)["frozen"], false);
    assert_eq!(of(mate)["crossed_thresholds"], json!([]));
}
