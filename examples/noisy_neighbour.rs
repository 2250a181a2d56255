//! Freeze latency for quiet teams while another team's account floods the
//! bus: one team's volume must not delay another team's enforcement.
//!
//!     cargo run --example noisy_neighbour [CLIENTS] [SECONDS]
//!
//! One `purser up` (embedded backends, through the real endpoint and
//! handlers): team `flood` with one account and no budget, and eight quiet
//! teams, each with one ready account and a $1 budget that freezes. CLIENTS
//! tasks (default 4) put `InvocationsReported` from the flooding account as
//! fast as the endpoint takes them (10 entries of 50 reports per call).
//! After a second of flooding, each quiet team in turn puts one batch that
//! takes it over its budget; the clock runs until its account reads
//! `frozen`. The flood runs on for SECONDS (default 5) in all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use purser::driver::{As, Driver};
use purser_core::AccountState;
use purser_local::{RuntimeConfig, Template, inspect};
use serde_json::{Value, json};

const QUIET_TEAMS: usize = 8;
const REPORTS_PER_EVENT: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);

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
    let driver = Arc::new(Driver::new(&running)?);

    let (flood_account, _) = ready_account(&driver, "flood").await?;
    let mut quiet = Vec::new();
    for t in 0..QUIET_TEAMS {
        let team = format!("quiet{t}");
        let (account_id, id) = ready_account(&driver, &team).await?;
        driver
            .call(
                As::Admin,
                "PUT",
                &format!("/teams/{team}/budget"),
                Some(&json!({"amount": "1"})),
                None,
            )
            .await?
            .expect("PUT budget", 200)?;
        quiet.push((team, account_id, id));
    }
    running
        .settle(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The flood: raw PutEvents of 10 entries as the flooding account.
    let client = driver.events_client(&flood_account);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    for c in 0..clients {
        let (client, stop, sent) = (client.clone(), Arc::clone(&stop), Arc::clone(&sent));
        flooders.push(tokio::spawn(async move {
            let mut batch = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let entries = (0..10)
                    .map(|e| {
                        batch += 1;
                        entry(&format!("flood-{c}-{batch}-{e}"), "feature-api", 128, 1)
                    })
                    .collect::<Vec<_>>();
                match client.put_events().set_entries(Some(entries)).send().await {
                    Ok(reply) if reply.failed_entry_count() == 0 => {
                        sent.fetch_add((10 * REPORTS_PER_EVENT) as u64, Ordering::Relaxed);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    let flood_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut latencies = Vec::new();
    for (team, account_id, id) in &quiet {
        // Eight 15-minute invocations at 10 GB on x86_64 in one report
        // batch: $1.20, over the $1 budget.
        let over = entry(&format!("over-{team}"), "runaway", 10_240, 900_000);
        let started = Instant::now();
        driver
            .events_client(account_id)
            .put_events()
            .entries(over)
            .send()
            .await
            .with_context(|| format!("the report that takes {team} over its budget"))?;
        loop {
            let state = running.ports().store.account(id).await?.map(|a| a.state);
            if state == Some(AccountState::Frozen) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                anyhow::bail!("{team}: not frozen after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    let remaining = Duration::from_secs(seconds).saturating_sub(flood_started.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.await?;
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let backlog = inspect::pending_deliveries(running.db())?;
    let accepted = sent.load(Ordering::Relaxed);

    latencies.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!(
        "flood: {clients} client(s), {accepted} reports accepted in {flood_secs:.1} s ({:.0} reports/s), {backlog} deliveries still queued at the end",
        accepted as f64 / flood_secs
    );
    println!(
        "freeze latency of {} quiet teams during the flood: min {:.1} ms, p50 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(&latencies[0]),
        ms(&latencies[latencies.len() / 2]),
        ms(latencies.last().expect("one team at least")),
    );
    running.shutdown().await;
    Ok(())
}

/// A team (created here) and a ready account of it: (AWS account id, request id).
async fn ready_account(driver: &Driver, team: &str) -> anyhow::Result<(String, String)> {
    driver
        .call(
            As::Admin,
            "PUT",
            &format!("/teams/{team}"),
            Some(&json!({})),
            None,
        )
        .await?
        .expect("PUT team", 200)?;
    let request =
        json!({"team": team, "owner": format!("{team}@example.com"), "purpose": "noisy neighbour"});
    let reply = driver
        .call(As::Admin, "POST", "/accounts", Some(&request), None)
        .await?
        .expect("POST /accounts", 202)?;
    let id = reply["id"].as_str().unwrap_or_default().to_string();
    let ready = driver.account_until(&id, &["ready"]).await?;
    let account_id = ready["account_id"].as_str().unwrap_or_default().to_string();
    Ok((account_id, id))
}

/// One `InvocationsReported` entry of `REPORTS_PER_EVENT` reports (one,
/// when it is the report that takes a team over: see `billed_ms`).
fn entry(batch_id: &str, function: &str, memory_mb: u32, billed_ms: u64) -> PutEventsRequestEntry {
    let now = chrono::Utc::now().to_rfc3339();
    let count = if billed_ms >= 900_000 {
        8
    } else {
        REPORTS_PER_EVENT
    };
    let reports: Vec<Value> = (0..count)
        .map(|i| {
            json!({"request_id": format!("{batch_id}-{i}"), "timestamp": now,
                "duration_ms": billed_ms as f64, "billed_duration_ms": billed_ms,
                "max_memory_used_mb": 100, "init_duration_ms": null})
        })
        .collect();
    let detail = json!({"version": 1, "batch_id": batch_id, "function_name": function,
        "architecture": "x86_64", "memory_mb": memory_mb, "reports": reports});
    PutEventsRequestEntry::builder()
        .source("purser.telemetry")
        .detail_type("InvocationsReported")
        .detail(detail.to_string())
        .event_bus_name("purser")
        .build()
}
