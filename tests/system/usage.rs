//! Usage beyond Lambda on `purser up` (issue 15): a member account's metric
//! stream lands newline-delimited JSON under
//! `<data-dir>/landing/metrics/account=<id>/`, as its Firehose writes into
//! the lake bucket; the watcher announces it as S3 would, the recorder
//! prices it into the lake's `usage` table and the spend counters once, and
//! the team's budget freezes the account, all within a second or two.
//! A line that names another account is refused; usage no price covers is
//! recorded, counted as nothing, and announced as `UnpricedUsage`.

use serde_json::{Value, json};

use crate::common::local::{Local, amount, start};

/// Claude 3 Haiku's output tokens in us-east-1 (infra/prices.json).
const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// One metric-stream line (CloudWatch's JSON output format).
fn line(account: &str, model: &str, tokens: f64, at_ms: i64) -> String {
    json!({
        "metric_stream_name": "purser-usage",
        "account_id": account,
        "region": "us-east-1",
        "namespace": "AWS/Bedrock",
        "metric_name": "OutputTokenCount",
        "dimensions": {"ModelId": model},
        "timestamp": at_ms,
        "value": {"max": tokens, "min": 0.0, "sum": tokens, "count": 60.0},
        "unit": "Count"
    })
    .to_string()
}

impl Local {
    /// Writes `lines` as one landed object of `account`, under `name`.
    fn land(&self, account: &str, name: &str, lines: &[String]) -> String {
        let key = format!("metrics/account={account}/2026/12/07/10/{name}");
        let path = self.dir.path().join("landing").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Written aside and renamed, as a writer that never shows half a file.
        let partial = path.with_file_name(format!(".{name}.partial"));
        std::fs::write(&partial, lines.join("\n") + "\n").unwrap();
        std::fs::rename(&partial, &path).unwrap();
        key
    }

    fn usage_rows(&self) -> Vec<Value> {
        let root = self.dir.path().join("lake").join("usage");
        let mut rows = Vec::new();
        for part in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(part.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(file.path()).unwrap();
                rows.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
        rows
    }
}

#[tokio::test]
async fn a_landed_metric_stream_is_priced_counted_once_and_freezes_the_team() {
    let local = start().await;
    let (request, account) = local.ready_account().await;
    let (status, budget) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(
                json!({"amount": "2.00", "currency": "USD", "thresholds": [100],
                "actions": {"100": ["notify", "freeze"]}, "mode": "actual"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{budget}");

    let now = local.now().timestamp_millis();
    // 1.2 M output tokens of Haiku at $0.00125 per 1,000: $1.50; then
    // another account's line (refused) and a model with no price.
    let key = local.land(
        &account,
        "purser-usage-1",
        &[
            line(&account, HAIKU, 800_000.0, now - 120_000),
            line(&account, HAIKU, 400_000.0, now - 60_000),
            line("999999999999", HAIKU, 9_000_000.0, now - 60_000),
            line(
                &account,
                "us.anthropic.claude-future-v9:0",
                5_000.0,
                now - 60_000,
            ),
        ],
    );
    local
        .until("the usage is counted", async |l| {
            let (_, b) = l.call("GET", "/teams/payments/budget", None).await;
            amount(&b["spend"]) > 1.0
        })
        .await;
    let (_, b) = local.call("GET", "/teams/payments/budget", None).await;
    assert!((amount(&b["spend"]) - 1.5).abs() < 1e-6, "{b}");
    assert_eq!(
        local
            .call("GET", &format!("/accounts/{request}"), None)
            .await
            .1["state"],
        "ready",
        "under its budget"
    );

    // The lake holds the account's three lines, priced or unpriced (null),
    // none of the other account's.
    let rows = local.usage_rows();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["account_id"] == account.as_str() && r["team"] == "payments")
    );
    let unpriced: Vec<&Value> = rows.iter().filter(|r| r["cost_usd"].is_null()).collect();
    assert_eq!(unpriced.len(), 1);
    assert_eq!(unpriced[0]["quantity"], json!(5.0));
    local.settle().await;
    let announced = local.archived("UnpricedUsage");
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0]["usage"][0]["quantity"], "5");
    assert_eq!(announced[0]["team"], "payments");
    // As its schema describes it.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("infra/schemas/UnpricedUsage.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    assert!(validator.is_valid(&announced[0]), "{}", announced[0]);

    // S3 announcing the same object again counts nothing twice.
    let again = purser_core::events::EventEntry {
        source: Some("aws.s3".into()),
        detail_type: Some("Object Created".into()),
        detail: Some(json!({"bucket": {"name": "LakeBucket"}, "object": {"key": key}}).to_string()),
        event_bus_name: Some("default".into()),
        ..Default::default()
    };
    local
        .running
        .bus()
        .put_service_events(vec![again])
        .await
        .unwrap();
    local.settle().await;
    let (_, b) = local.call("GET", "/teams/payments/budget", None).await;
    assert!(
        (amount(&b["spend"]) - 1.5).abs() < 1e-6,
        "counted once: {b}"
    );

    // Another minute of the runaway loop takes the team over: frozen.
    let started = std::time::Instant::now();
    local.land(
        &account,
        "purser-usage-2",
        &[line(&account, HAIKU, 600_000.0, now)],
    );
    local
        .until("the account is frozen", async |l| {
            let (_, a) = l.call("GET", &format!("/accounts/{request}"), None).await;
            a["state"] == "frozen"
        })
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "frozen within seconds of landing: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn named_queries_count_streamed_usage_per_service() {
    let local = start().await;
    let (_, account) = local.ready_account().await;
    let now = local.now();
    local.land(
        &account,
        "purser-usage-q",
        &[line(&account, HAIKU, 800_000.0, now.timestamp_millis())],
    );
    local
        .until("the usage is in the lake", async |l| {
            !l.usage_rows().is_empty()
        })
        .await;
    let day = now.format("%Y-%m-%d").to_string();
    let result = local.lake_query("cost_per_service", &[&day, &day]).await;
    let bedrock: Vec<&Vec<Value>> = result
        .rows
        .iter()
        .filter(|r| r[0] == "payments" && r[1] == "bedrock")
        .collect();
    assert_eq!(bedrock.len(), 1, "{:?}", result.rows);
    assert!(
        (amount(&bedrock[0][5]) - 1.0).abs() < 1e-6,
        "{:?}",
        bedrock[0]
    );
}
