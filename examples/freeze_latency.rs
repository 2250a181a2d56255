//! The headline figure: from the `InvocationsReported` that takes a team
//! over 100 % of its budget to its account being `frozen`, on `purser up`'s
//! embedded backends, through the real endpoint and handlers.
//!
//!     cargo run --example freeze_latency [ROUNDS] [lambda|bedrock|gpu]
//!
//! Each round: a fresh data dir, a team with a ready account and a $1
//! budget, then what takes it over: one batch of invocation reports costing
//! $1.20 put with the member account's key (`lambda`, the default), or a
//! minute of Bedrock output tokens costing $1.25 landed as the account's
//! metric stream writes it (`bedrock`: the landing watcher, S3's event, the
//! recorder reading and pricing the object); the clock runs until the
//! account reads `frozen`.
//!
//! `gpu` measures the runaway guard instead: a p4d.24xlarge launched 20
//! minutes ago (its launch call and state change put as the member account
//! forwards them), a team rule stopping any resource over $5 an hour; the
//! clock runs from the recorder's accrual (which prices the 20 minutes,
//! $10.92) until EC2's `stopped` state change, which the stop puts on the
//! bus, is there.

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
    let source = match std::env::args().nth(2).as_deref() {
        None | Some("lambda") => Source::Lambda,
        Some("bedrock") => Source::Bedrock,
        Some("gpu") => Source::Gpu,
        Some(other) => anyhow::bail!("the source is lambda, bedrock or gpu, not {other:?}"),
    };
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        samples.push(one_round(round, source).await?);
    }
    samples.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} over {rounds} rounds: min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        match source {
            Source::Lambda => "freeze latency (lambda reports)",
            Source::Bedrock => "freeze latency (bedrock metric stream)",
            Source::Gpu => "stop latency (runaway guard, GPU instance)",
        },
        ms(&samples[0]),
        ms(&samples[samples.len() / 2]),
        ms(&samples[samples.len() * 9 / 10]),
        ms(samples.last().expect("at least one round")),
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Lambda,
    Bedrock,
    Gpu,
}

async fn one_round(round: usize, source: Source) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut config = RuntimeConfig::new(dir.path(), 0);
    config.organization.delay = Duration::from_millis(20);
    // The GPU's launch call and state change, put as the member account.
    config.allow_aws_sources = true;
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
            Some(&match source {
                Source::Gpu => json!({"amount": "1000", "runaway": [{"per": "resource",
                    "usd_per_hour": "5", "actions": ["notify", "stop-resource"]}]}),
                _ => json!({"amount": "1"}),
            }),
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
    if source == Source::Gpu {
        let took = gpu_round(&running, &driver, &account_id).await;
        running.shutdown().await;
        return took;
    }
    let started = Instant::now();
    if source == Source::Bedrock {
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

/// The runaway guard's round: from the accrual that prices a GPU instance's
/// 20 minutes to EC2's `stopped` state change on the bus.
async fn gpu_round(
    running: &purser_local::Running,
    driver: &Driver,
    account_id: &str,
) -> anyhow::Result<Duration> {
    let instance = "i-0123456789abcdef0";
    let launched = chrono::Utc::now() - chrono::Duration::minutes(20);
    driver
        .put(
            account_id,
            "aws.ec2",
            "AWS API Call via CloudTrail",
            &json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "requestParameters": {"instanceType": "p4d.24xlarge"},
                "responseElements": {"instancesSet": {"items": [
                    {"instanceId": instance, "instanceType": "p4d.24xlarge"}]}}}),
            Some(launched),
            vec![],
        )
        .await?;
    driver
        .put(
            account_id,
            "aws.ec2",
            "EC2 Instance State-change Notification",
            &json!({"instance-id": instance, "state": "running"}),
            Some(launched),
            vec![],
        )
        .await?;
    driver.settle().await?;
    let started = Instant::now();
    running.run_schedule("RecorderFunction").await?;
    loop {
        let stopped = driver
            .archived("EC2 Instance State-change Notification", 0)?
            .into_iter()
            .any(|e| e.envelope["detail"]["state"] == "stopped");
        if stopped {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("the GPU instance was not stopped after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
