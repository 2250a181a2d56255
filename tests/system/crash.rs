//! A crash (issue 11): the real `purser up` is killed with SIGKILL while
//! 100,000 invocation reports arrive through its EventBridge endpoint, then
//! started again on the same data dir. Every report the endpoint accepted
//! (PutEvents answered 200 with no failed entry) must end in the lake and
//! on the spend counters exactly once by account and request id, and the
//! lake's named queries must agree with the counters.
//!
//! Four clients play a member account's telemetry layer, each putting its
//! share of 1,000 batches of 100 reports one after another; the kill comes
//! after a fixed count of accepted batches, so it lands mid-stream. A batch
//! not accepted (the connection died under it) is put again, with the same
//! batch and request ids, once `purser up` is back: it may have been
//! accepted unseen, which is what the recorder's once-per-batch counting
//! and the queries' once-per-request-id reading are for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use purser_core::ports::QueryEngine;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::common::local::{COST, amount};

const CLIENTS: usize = 4;
const BATCHES: usize = 1_000;
const REPORTS: usize = 100;
/// The kill comes once this many batches were accepted.
const KILL_AFTER: usize = 300;
const TEAM: &str = "crash";
const MEMBER: &str = "arn:aws:iam::123456789012:user/ana";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `purser up` as a process, killed when dropped (a failed test leaves no
/// server behind).
struct Up {
    child: Child,
}

impl Up {
    /// Starts `purser up` on `port` and `dir`, its output in `dir/up-N.log`,
    /// and waits until it listens.
    fn start(port: u16, dir: &Path, n: usize) -> Self {
        let log = std::fs::File::create(dir.join(format!("up-{n}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_purser"))
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .env_remove("PURSER_DATA_DIR")
            .env_remove("PURSER_PORT")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "purser up did not listen on {port}: {}",
                tail(dir, n)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }

    /// SIGKILL: no shutdown, no flushing, nothing finished.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines `purser up` number `n` wrote.
fn tail(dir: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(dir.join(format!("up-{n}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// An EventBridge client whose access key id is `account`, as the driver
/// makes them; no SDK retries, so an answer is the endpoint's own.
fn events_client(endpoint: &str, account: &str) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::Config::builder()
        .http_client(purser_aws::http_client())
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(purser_local::LOCAL_REGION))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_eventbridge::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .credentials_provider(Credentials::new(account, "local", None, None, "crash"))
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// Batch `b` of client `c`: 100 reports of 900 s at 10,240 MB on arm64
/// ([`COST`] each), all at `at`.
fn batch(c: usize, b: usize, at: DateTime<Utc>) -> Value {
    let reports: Vec<Value> = (0..REPORTS)
        .map(|i| {
            json!({"request_id": request_id(c, b, i), "timestamp": at.to_rfc3339(),
            "duration_ms": 899_999.0, "billed_duration_ms": 900_000, "max_memory_used_mb": 2000,
            "init_duration_ms": null})
        })
        .collect();
    json!({"version": 1, "batch_id": format!("c{c}-b{b}"), "function_name": format!("fn-{c}"),
        "architecture": "arm64", "memory_mb": 10240, "reports": reports})
}

fn request_id(c: usize, b: usize, i: usize) -> String {
    format!("c{c}-b{b}-r{i}")
}

/// Whether the endpoint accepted the batch: 200, and no failed entry.
async fn put(client: &aws_sdk_eventbridge::Client, detail: &Value) -> Result<(), String> {
    let entry = PutEventsRequestEntry::builder()
        .source("purser.telemetry")
        .detail_type("InvocationsReported")
        .detail(detail.to_string())
        .event_bus_name("purser")
        .build();
    let reply = client
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if reply.failed_entry_count() > 0 {
        return Err(format!("refused: {:?}", reply.entries()));
    }
    Ok(())
}

/// The HTTP API as the local admin (or `who`): `(status, body)`.
async fn api(
    http: &reqwest::Client,
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http
        .request(method.parse().unwrap(), format!("{endpoint}{path}"))
        .header("content-type", "application/json");
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// How many copies of each (account, request id) the lake's invocation
/// files hold, and how many lines are not a JSON record.
fn lake_copies(data: &Path) -> (BTreeMap<(String, String), usize>, usize) {
    let mut copies = BTreeMap::new();
    let mut torn = 0;
    let table = data.join("lake").join("invocations");
    for day in std::fs::read_dir(&table).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let Ok(record) = serde_json::from_str::<Value>(line) else {
                    torn += 1;
                    continue;
                };
                let key = (
                    record["account_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    record["request_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                *copies.entry(key).or_default() += 1;
            }
        }
    }
    (copies, torn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_report_survives_a_kill_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = purser::http_client().build().unwrap();
    let up = Up::start(port, dir.path(), 1);

    // A ready account of a team: the reports' caller.
    let (status, body) = api(
        &http,
        &endpoint,
        "PUT",
        &format!("/teams/{TEAM}"),
        Some(json!({"quota": 3, "members": [MEMBER]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(
        &http,
        &endpoint,
        "POST",
        "/accounts",
        Some(json!({"team": TEAM, "owner": "ana@example.com", "purpose": "crash"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let account = loop {
        let (_, view) = api(&http, &endpoint, "GET", &format!("/accounts/{id}"), None).await;
        if view["state"] == "ready" {
            break view["account_id"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "account {id} is not ready: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The reports: a minute old, inside the recorder's window on any day.
    let at = Utc::now() - chrono::Duration::minutes(1);
    let accepted = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(Notify::new());
    // Which `purser up` is running: a client whose put failed waits for
    // the next one.
    let (generation, _) = watch::channel(1usize);
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let client = events_client(&endpoint, &account);
        let (accepted, kill_now) = (accepted.clone(), kill_now.clone());
        let mut generation = generation.subscribe();
        clients.push(tokio::spawn(async move {
            let mut refused = Vec::new();
            for b in (c..BATCHES).step_by(CLIENTS) {
                let detail = batch(c, b, at);
                for attempt in 1.. {
                    let running = *generation.borrow_and_update();
                    match put(&client, &detail).await {
                        Ok(()) => {
                            if accepted.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                                kill_now.notify_one();
                            }
                            break;
                        }
                        Err(e) => {
                            assert!(
                                !e.starts_with("refused") && attempt < 100,
                                "batch c{c}-b{b} was not accepted after {attempt} attempts: {e}"
                            );
                            refused.push((running, format!("c{c}-b{b}: {e}")));
                            // Until the next `purser up` is listening; a
                            // pooled connection to the killed one may fail
                            // once more after it is.
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                generation.wait_for(|g| *g > running),
                            )
                            .await;
                        }
                    }
                }
            }
            refused
        }));
    }

    kill_now.notified().await;
    let seen = accepted.load(Ordering::SeqCst);
    up.kill();
    let killed_at = accepted.load(Ordering::SeqCst);
    eprintln!(
        "killed purser up after {seen} accepted batches ({:.1} s in)",
        started.elapsed().as_secs_f64()
    );
    let db = purser_local::Db::open(&data).unwrap();
    let queued = purser_local::inspect::pending_deliveries(&db).unwrap();
    eprintln!("{queued} deliveries were queued or running when it was killed");
    let up = Up::start(port, dir.path(), 2);
    generation.send_replace(2);
    let mut refused = Vec::new();
    for client in clients {
        refused.extend(client.await.unwrap());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), BATCHES);
    assert!(
        killed_at < BATCHES,
        "the kill came after every batch was accepted: it proves nothing"
    );
    assert!(
        !refused.is_empty(),
        "no put failed: the kill did not land mid-stream"
    );
    let after: Vec<&String> = refused
        .iter()
        .filter(|(g, _)| *g == 2)
        .map(|(_, e)| e)
        .collect();
    eprintln!(
        "{} puts failed around the kill and were put again ({} on the restarted purser up: {after:?}); every batch accepted after {:.1} s",
        refused.len(),
        after.len(),
        started.elapsed().as_secs_f64()
    );

    // Every queued delivery done, none dead-lettered.
    purser_local::inspect::settle(&db, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", tail(dir.path(), 2)));
    let dead = purser_local::inspect::dead_letters(&db, 10).unwrap();
    assert!(
        dead.is_empty(),
        "dead letters: {:?}",
        dead.iter()
            .map(|d| format!("{}: {}", d.function, d.error))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "every delivery done after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The lake: every (account, request id) there, whatever the copies.
    let (copies, torn) = lake_copies(&data);
    let want: BTreeSet<(String, String)> = (0..BATCHES)
        .flat_map(|b| (0..REPORTS).map(move |i| request_id(b % CLIENTS, b, i)))
        .map(|r| (account.clone(), r))
        .collect();
    let have: BTreeSet<(String, String)> = copies.keys().cloned().collect();
    let missing: Vec<_> = want.difference(&have).take(5).collect();
    let strays: Vec<_> = have.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && strays.is_empty(),
        "the lake lacks {} reports (e.g. {missing:?}) and has {} it should not (e.g. {strays:?})",
        want.difference(&have).count(),
        have.difference(&want).count()
    );
    let extra: usize = copies.values().map(|n| n - 1).sum();
    eprintln!(
        "the lake holds {} reports, {extra} of them more than once (redelivered), {torn} torn lines",
        have.len()
    );

    // The counters (the costs API) count each report once.
    let n = (BATCHES * REPORTS) as f64;
    let day = at.format("%Y-%m-%d").to_string();
    let month = at.format("%Y-%m").to_string();
    let (status, costs) = api(
        &http,
        &endpoint,
        "GET",
        &format!("/teams/{TEAM}/costs?from={day}&to={day}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{costs}");
    let counted = amount(&costs["total"]);
    assert!(
        (counted - n * COST).abs() < 1e-6,
        "the team's counters hold {counted} USD, not {} ({n} reports once): {costs}",
        n * COST
    );
    let (status, by_account) = api(
        &http,
        &endpoint,
        "GET",
        &format!("/teams/{TEAM}/costs?from={day}&to={day}&by=account"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{by_account}");
    assert_eq!(
        by_account["items"][0]["account_id"],
        account.as_str(),
        "{by_account}"
    );
    assert!(
        (amount(&by_account["items"][0]["amount"]) - n * COST).abs() < 1e-6,
        "the account's counters: {by_account}"
    );

    // The named queries agree with the counters.
    let engine = purser_query::LocalQueryEngine::new(&data).unwrap();
    let run = async |name: &str, params: &[&str]| {
        let query = purser_core::lake::named_queries::named(name).unwrap();
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        engine
            .run(&query, &params)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .objects()
    };
    let monthly = run("cost_per_team_monthly", &[&month, &month]).await;
    let row = monthly
        .iter()
        .find(|r| r["team"] == TEAM)
        .unwrap_or_else(|| panic!("no row for {TEAM}: {monthly:?}"));
    assert_eq!(row["invocations"], json!(BATCHES * REPORTS), "{row:?}");
    assert!(
        (amount(&row["cost_usd"]) - counted).abs() < 1e-6,
        "cost_per_team_monthly says {} USD, the counters {counted}",
        row["cost_usd"]
    );
    let accounts = run("cost_per_account", &[&month]).await;
    let row = accounts
        .iter()
        .find(|r| r["account_id"] == account.as_str())
        .unwrap_or_else(|| panic!("no row for {account}: {accounts:?}"));
    assert_eq!(row["invocations"], json!(BATCHES * REPORTS), "{row:?}");
    assert!(
        (amount(&row["cost_usd"]) - counted).abs() < 1e-6,
        "cost_per_account says {} USD, the counters {counted}",
        row["cost_usd"]
    );
    drop(up);
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}
