//! How fast the console's pages answer with a big organization and a big
//! lake: every page must answer in under 200 ms (issue 13).
//!
//!     cargo run --release --example console_pages [ACCOUNTS] [INVOCATIONS] [ROUNDS]
//!
//! One `purser up` (embedded backends, through the real endpoint and
//! handlers): ten teams sharing ACCOUNTS ready accounts (default 1,000),
//! each account reporting its share of INVOCATIONS (default 1,000,000)
//! through the telemetry path, three functions each, so the lake and the
//! counters hold them all. Then each page's calls are made ROUNDS times
//! (default 30), one after the other as a page load makes them, and the
//! time to the last answer is printed: p50, p95 and max per page.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use purser::driver::{As, Driver};
use purser_core::AccountState;
use purser_local::{RuntimeConfig, Template};
use serde_json::{Value, json};

const TEAMS: usize = 10;
const REPORTS_PER_EVENT: usize = 100;
const FUNCTIONS: [&str; 3] = ["checkout", "search-index", "thumbnails"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let invocations: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);

    let dir = tempfile::tempdir()?;
    let mut config = RuntimeConfig::new(dir.path(), 0);
    config.organization.delay = Duration::from_millis(5);
    config.organization.account_limit = u32::try_from(accounts + 1)?;
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &purser::registry::handlers(),
        None,
    )
    .await?;
    let driver = Driver::new(&running)?;

    // The organization: TEAMS teams, each with a member known by email and
    // a budget, and their share of the accounts.
    let started = Instant::now();
    let per_team = accounts.div_ceil(TEAMS);
    for t in 0..TEAMS {
        let team = format!("team-{t}");
        let members = json!({"quota": per_team, "members": [format!("dev{t}@example.com")]});
        driver
            .call(
                As::Admin,
                "PUT",
                &format!("/teams/{team}"),
                Some(&members),
                None,
            )
            .await?
            .expect("PUT team", 200)?;
        let budget = json!({"amount": "1000000", "thresholds": [50, 80, 100]});
        driver
            .call(
                As::Admin,
                "PUT",
                &format!("/teams/{team}/budget"),
                Some(&budget),
                None,
            )
            .await?
            .expect("PUT budget", 200)?;
    }
    let mut requests = Vec::with_capacity(accounts);
    for a in 0..accounts {
        let team = format!("team-{}", a % TEAMS);
        let body = json!({"team": team, "owner": format!("dev{}@example.com", a % TEAMS),
            "purpose": format!("bench {a}"), "lease_days": 30});
        let reply = driver
            .call(As::Admin, "POST", "/accounts", Some(&body), None)
            .await?
            .expect("POST /accounts", 202)?;
        requests.push(reply["id"].as_str().unwrap_or_default().to_string());
    }
    // Creations run five at a time (Organizations' limit), so wait on the
    // store rather than on each account in turn.
    let mut account_ids = Vec::with_capacity(accounts);
    let deadline = Instant::now() + Duration::from_secs(1800);
    for id in &requests {
        loop {
            let account = running.ports().store.account(id).await?;
            if let Some(account) = account.filter(|a| a.state == AccountState::Ready) {
                account_ids.push(account.account_id.unwrap_or_default());
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{id} was never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "{accounts} accounts of {TEAMS} teams ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The lake: every account reports its share, 10 entries of
    // REPORTS_PER_EVENT reports per PutEvents.
    let started = Instant::now();
    let per_account = invocations / accounts.max(1);
    let mut sent = 0usize;
    for (a, account_id) in account_ids.iter().enumerate() {
        let client = driver.events_client(account_id);
        let events = per_account.div_ceil(REPORTS_PER_EVENT);
        let entries: Vec<PutEventsRequestEntry> = (0..events)
            .map(|e| {
                let count = REPORTS_PER_EVENT.min(per_account - e * REPORTS_PER_EVENT);
                sent += count;
                entry(
                    &format!("bench-{a}-{e}"),
                    FUNCTIONS[e % FUNCTIONS.len()],
                    count,
                )
            })
            .collect();
        for chunk in entries.chunks(10) {
            let reply = client
                .put_events()
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .context("putting invocation reports")?;
            anyhow::ensure!(
                reply.failed_entry_count() == 0,
                "refused reports: {:?}",
                reply.entries()
            );
        }
    }
    running
        .settle(Duration::from_secs(600))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{sent} invocations recorded (lake and counters) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The pages, as their loads call the API.
    let member = "dev0@example.com";
    let account = &requests[0];
    let pages: Vec<(&str, As<'_>, Vec<String>)> = vec![
        (
            "the page itself (/, app.js, app.css)",
            As::Admin,
            vec![
                "/".into(),
                "/console/app.js".into(),
                "/console/app.css".into(),
            ],
        ),
        (
            "my accounts (member; /me, /teams, a team's 100 accounts)",
            As::Principal(member),
            vec![
                "/me".into(),
                "/teams".into(),
                "/accounts?team=team-0".into(),
            ],
        ),
        (
            "an account (member)",
            As::Principal(member),
            vec!["/me".into(), format!("/accounts/{account}")],
        ),
        (
            "team spend (member; the month, budget, top functions, deployments)",
            As::Principal(member),
            vec!["/me".into(), "/teams/team-0/spend".into()],
        ),
        (
            "admin (every team against its budget)",
            As::Admin,
            vec!["/me".into(), "/teams".into()],
        ),
    ];
    println!("\n{rounds} loads of each page, calls one after the other:");
    println!("| page | p50 | p95 | max |\n|---|---|---|---|");
    for (page, who, paths) in &pages {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            for path in paths {
                let reply = driver.call(*who, "GET", path, None, None).await?;
                anyhow::ensure!(reply.status == 200, "{path}: {}", reply.status);
            }
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {page} | {} | {} | {} |",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 95 / 100).min(times.len() - 1)]),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
        );
    }
    running.shutdown().await;
    Ok(())
}

/// One `InvocationsReported` entry of `count` one-second reports.
fn entry(batch_id: &str, function: &str, count: usize) -> PutEventsRequestEntry {
    let now = chrono::Utc::now().to_rfc3339();
    let reports: Vec<Value> = (0..count)
        .map(|i| {
            json!({"request_id": format!("{batch_id}-{i}"), "timestamp": now,
                "duration_ms": 950.0, "billed_duration_ms": 1000,
                "max_memory_used_mb": 100, "init_duration_ms": null})
        })
        .collect();
    let detail = json!({"version": 1, "batch_id": batch_id, "function_name": function,
        "architecture": "arm64", "memory_mb": 512, "reports": reports});
    PutEventsRequestEntry::builder()
        .source("purser.telemetry")
        .detail_type("InvocationsReported")
        .detail(detail.to_string())
        .event_bus_name("purser")
        .build()
}
