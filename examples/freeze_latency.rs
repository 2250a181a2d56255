//! The headline figure: from the `InvocationsReported` that takes a team
//! over 100 % of its budget to its account being `frozen`, on `purser up`'s
//! embedded backends, through the real endpoint and handlers.
//!
//!     cargo run --example freeze_latency [ROUNDS]
//!
//! Each round: a fresh data dir, a team with a ready account and a $1
//! budget, then one batch of invocation reports costing $1.20 put with the
//! member account's key; the clock runs until the account reads `frozen`.

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
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        samples.push(one_round(round).await?);
    }
    samples.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "freeze latency over {rounds} rounds: min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(&samples[0]),
        ms(&samples[samples.len() / 2]),
        ms(&samples[samples.len() * 9 / 10]),
        ms(samples.last().expect("at least one round")),
    );
    Ok(())
}

async fn one_round(round: usize) -> anyhow::Result<Duration> {
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
