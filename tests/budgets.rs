//! Budgets end to end on the embedded backends: invocation reports of known
//! cost cross 50/80/100 % of a budget, the team's account is frozen by SCP,
//! a raised budget unfreezes it; and, as a property, thresholds fire once
//! and in order whatever the order or repetition of spend updates.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::Utc;
use proptest::prelude::*;
use purser_core::TeamName;
use purser_core::ports::SpendAdd;
use purser_local::{RetryTiming, Running, RuntimeConfig, Template, inspect};
use serde_json::{Value, json};

const DEV: &str = "arn:aws:iam::123456789012:user/ana";
/// 900 s billed at 10,240 MB on arm64: 9,000 GB-s × $0.0000133334 + $0.0000002.
const COST: f64 = 9000.0 * 0.0000133334 + 0.0000002;

struct Local {
    running: Running,
    http: reqwest::Client,
    url: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(dir.path(), 0);
    config.retry_timing = RetryTiming {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    config.organization.delay = Duration::from_millis(50);
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &purser::registry::handlers(),
        None,
    )
    .await
    .unwrap();
    Local {
        url: format!("http://{}", running.addr()),
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Local {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.url),
        );
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let reply = r.send().await.unwrap();
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    async fn ready_account(&self) -> (String, String) {
        self.call("PUT", "/teams/payments", Some(json!({"members": [DEV]})))
            .await;
        let (_, body) = self
            .call(
                "POST",
                "/accounts",
                Some(json!({"team": "payments", "owner": "ana@example.com", "purpose": "budget"})),
            )
            .await;
        let id = body["id"].as_str().unwrap().to_string();
        for _ in 0..500 {
            let (_, a) = self.call("GET", &format!("/accounts/{id}"), None).await;
            if a["state"] == "ready" {
                return (id, a["account_id"].as_str().unwrap().to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never ready");
    }

    async fn report(&self, account: &str, batch_id: &str, n: usize) {
        let reports: Vec<Value> = (0..n)
            .map(|i| json!({"request_id": format!("{batch_id}-{i}"), "timestamp": Utc::now().to_rfc3339(),
                "duration_ms": 899_999.0, "billed_duration_ms": 900_000, "max_memory_used_mb": 2000, "init_duration_ms": null}))
            .collect();
        let detail = json!({"version": 1, "batch_id": batch_id, "function_name": "runaway", "architecture": "arm64", "memory_mb": 10240, "reports": reports});
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                account, "x", None, None, "t",
            ))
            .load()
            .await;
        let reply = aws_sdk_eventbridge::Client::new(&config)
            .put_events()
            .entries(
                PutEventsRequestEntry::builder()
                    .source("purser.telemetry")
                    .detail_type("InvocationsReported")
                    .detail(detail.to_string())
                    .event_bus_name("purser")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(reply.failed_entry_count(), 0);
    }

    fn crossings(&self) -> Vec<u64> {
        inspect::archive(
            self.running.db(),
            &inspect::ArchiveFilter {
                detail_type: Some("BudgetThresholdCrossed".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap()
        .iter()
        .map(|e| e.envelope["detail"]["threshold"].as_u64().unwrap())
        .collect()
    }

    async fn until(&self, what: &str, mut check: impl AsyncFnMut(&Self) -> bool) {
        for _ in 0..500 {
            if check(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_over_budget_is_frozen_and_a_raised_budget_unfreezes_it() {
    let local = start().await;
    let (id, account) = local.ready_account().await;
    let (status, budget) = local
        .call("PUT", "/teams/payments/budget", Some(json!({"amount": "1.00", "currency": "USD", "thresholds": [50, 80, 100],
            "actions": {"50": ["notify"], "80": ["notify"], "100": ["notify", "freeze"]}, "mode": "actual"})))
        .await;
    assert_eq!(status, 200, "{budget}");
    assert_eq!(budget["crossed_thresholds"], json!([]));

    local.report(&account, "b1", 4).await; // 0.48: under 50 %
    local
        .until("the first batch is counted", async |l| {
            l.call("GET", "/teams/payments/budget", None).await.1["spend"] != "0"
        })
        .await;
    assert!(local.crossings().is_empty());
    local.report(&account, "b2", 1).await; // 0.60
    local
        .until("50 % is crossed", async |l| l.crossings() == [50])
        .await;
    local.report(&account, "b3", 2).await; // 0.84
    local
        .until("80 % is crossed", async |l| l.crossings() == [50, 80])
        .await;
    local.report(&account, "b3", 2).await; // redelivered: not counted again
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    let spend: f64 = view["spend"].as_str().unwrap().parse().unwrap();
    assert!(
        (spend - 7.0 * COST).abs() < 1e-6,
        "{spend} vs {}",
        7.0 * COST
    );

    local.report(&account, "b4", 2).await; // 1.08: over
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

    let (_, costs) = local.call("GET", "/teams/payments/costs", None).await;
    let total: f64 = costs["total"].as_str().unwrap().parse().unwrap();
    assert!((total - 9.0 * COST).abs() < 1e-6, "{costs}");
    assert_eq!(costs["currency"], "USD");
    let (_, by_account) = local
        .call("GET", "/teams/payments/costs?by=account", None)
        .await;
    assert_eq!(by_account["items"][0]["account_id"], account.as_str());

    // Raising the budget above spend undoes the freeze.
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "5"})),
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
    let unfrozen = inspect::archive(
        local.running.db(),
        &inspect::ArchiveFilter {
            detail_type: Some("AccountUnfrozen".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(unfrozen.len(), 1);
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
            let budget = purser_core::budget::Budget::from_json(team.clone(), &json!({"amount": "1", "thresholds": [25, 50, 75, 100], "actions": {}}), Utc::now()).unwrap();
            budgets.put(budget, &purser_core::accounts::Caller { arn: purser_local::LOCAL_ADMIN.into(), admin: true }).await.unwrap();
            let today = Utc::now().date_naive();
            let mut counted = std::collections::BTreeMap::new();
            for step in &steps {
                match step {
                    Step::Add { batch, cents } => {
                        // A batch id carries one amount; a repeat is a redelivery.
                        let cents = *counted.entry(*batch).or_insert(*cents);
                        let add = SpendAdd { team: Some(team.clone()), account_id: "210987654321".into(), day: today, nanos: cents * 10_000_000 };
                        ports.store.record_spend_once(&format!("batch#{batch}"), Utc::now(), Utc::now() + chrono::Duration::days(1), &[add]).await.unwrap();
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
