//! The headline figure: from the `InvocationsReported` that takes a team
//! over 100 % of its budget to its account being `frozen`, on `purser up`'s
//! embedded backends, through the real endpoint and handlers.
//!
//!     cargo run --example freeze_latency [ROUNDS] [lambda|bedrock]
//!
//! Each round: a fresh data dir, a team with a ready account and a $1
//! budget, then what takes it over: one batch of invocation reports costing
//! $1.20 put with the member account's key (`lambda`, the default), or a
//! minute of Bedrock output tokens costing $1.25 landed as the account's
//! metric stream writes it (`bedrock`: the landing watcher, S3's event, the
//! recorder reading and pricing the object); the clock runs until the
//! account reads `frozen`.

use std::time::{Duration, Instant};

use purser::driver::{As, Driver};
use purser_core::AccountState;
use purser_local::{RuntimeConfig, Template};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let bedrock = match std::env::args().nth(2).as_deref() {
        None | Some("lambda") => false,
        Some("bedrock") => true,
        Some(other) => anyhow::bail!("the source is lambda or bedrock, not {other:?}"),
    };
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        samples.push(one_round(round, bedrock).await?);
    }
    samples.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "freeze latency ({}) over {rounds} rounds: min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        if bedrock {
            "bedrock metric stream"
        } else {
            "lambda reports"
        },
        ms(&samples[0]),
        ms(&samples[samples.len() / 2]),
        ms(&samples[samples.len() * 9 / 10]),
        ms(samples.last().expect("at least one round")),
    );
    Ok(())
}

async fn one_round(round: usize, bedrock: bool) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut config = RuntimeConfig::new(dir.path(), 0);
    config.organization.delay = Duration::from_millis(20);
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &purser::registry::handlers(),
        None,
    )
    .await?;
    let driver = Driver::new(&running)?;
    driver
        .call(As::Admin, "PUT", "/teams/ops", Some(&json!({})), None)
        .await?
        .expect("PUT /teams/ops", 200)?;
    let request = json!({"team": "ops", "owner": "ops@example.com", "purpose": "latency"});
    let reply = driver
        .call(As::Admin, "POST", "/accounts", Some(&request), None)
        .await?
        .expect("POST /accounts", 202)?;
    let id = reply["id"].as_str().unwrap_or_default().to_string();
    let ready = driver.account_until(&id, &["ready"]).await?;
    let account_id = ready["account_id"].as_str().unwrap_or_default().to_string();
    driver
        .call(
            As::Admin,
            "PUT",
            "/teams/ops/budget",
            Some(&json!({"amount": "1"})),
            None,
        )
        .await?
        .expect("PUT /teams/ops/budget", 200)?;

    // Eight 15-minute invocations at 10 GB on x86_64: 8 × $0.15 = $1.20.
    let reports: Vec<Value> = (0..8)
        .map(|i| json!({"request_id": format!("r{i}"), "timestamp": chrono::Utc::now().to_rfc3339(),
            "duration_ms": 900000.0, "billed_duration_ms": 900000, "max_memory_used_mb": 9000, "init_duration_ms": null}))
        .collect();
    let detail = json!({"version": 1, "batch_id": format!("over-{round}"), "function_name": "runaway",
        "architecture": "x86_64", "memory_mb": 10240, "reports": reports});
    let started = Instant::now();
    if bedrock {
        // A million Claude 3 Haiku output tokens ($1.25), as one minute of
        // the account's metric stream; written aside, then renamed.
        let line = json!({"metric_stream_name": "purser-usage", "account_id": account_id,
            "region": "us-east-1", "namespace": "AWS/Bedrock", "metric_name": "OutputTokenCount",
            "dimensions": {"ModelId": "anthropic.claude-3-haiku-20240307-v1:0"},
            "timestamp": chrono::Utc::now().timestamp_millis(),
            "value": {"max": 20000.0, "min": 0.0, "sum": 1_000_000.0, "count": 60.0}, "unit": "Count"});
        let folder = dir
            .path()
            .join(format!("landing/metrics/account={account_id}/now"));
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(".part"), format!("{line}\n"))?;
        std::fs::rename(
            folder.join(".part"),
            folder.join(format!("purser-usage-{round}")),
        )?;
    } else {
        driver
            .put(
                &account_id,
                "purser.telemetry",
                "InvocationsReported",
                &detail,
                None,
                vec![],
            )
            .await?;
    }
    loop {
        if running
            .ports()
            .store
            .account(&id)
            .await?
            .is_some_and(|a| a.state == AccountState::Frozen)
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("round {round}: not frozen after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    running.shutdown().await;
    Ok(took)
}
