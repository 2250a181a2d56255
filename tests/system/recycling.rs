//! Recycling (issue 16), end to end through the HTTP API of a local
//! `purser up` on a manual clock: a lease template that recycles; a lease
//! that ends (the reaper's schedule); cleaning by the simulated cleaner in
//! two passes, which removes the account's simulated functions; cooling
//! for 72 hours of the manual clock; a second request served from the pool
//! at once (no account created); a cleanup that keeps failing quarantines
//! the account after three runs and tells the admins; an admin releases it.
//! Pooled accounts count against no team's quota, and `GET /pool` shows it.
//! Cost across leases: a late CUR line of a day of the first lease is the
//! first team's, in the named queries (by the lake's lease history) and in
//! the spend settlement, not the team that holds the account when it comes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use purser_core::ManualClock;
use purser_core::events::catalog;
use serde_json::{Value, json};

use crate::common::local::{self, DEV, Local, Options, TEST_START};

async fn start() -> (Local, Arc<ManualClock>) {
    let at: DateTime<Utc> = TEST_START.parse().unwrap();
    let clock = Arc::new(ManualClock::new(at));
    let local = local::start_with(Options {
        manual: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    (local, clock)
}

/// Team payments (the developer, quota 2) and template `sandbox`: 7 days,
/// recycled, cooling 72 hours, a pool of 2.
async fn setup(local: &Local) {
    let (status, team) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"quota": 2, "members": [DEV]})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    let (status, t) = local
        .call(
            "PUT",
            "/templates/sandbox",
            Some(
                json!({"description": "sandboxes, recycled", "default_lease_days": 7,
                "lease_end": "recycle", "pool_size": 2}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["lease_end"], "recycle");
    assert_eq!(t["cooling_hours"], 72);
    assert_eq!(t["pool_size"], 2);
    // Bounded, by field.
    let (status, refused) = local
        .call(
            "PUT",
            "/templates/sandbox",
            Some(json!({"description": "x", "default_lease_days": 7,
                "lease_end": "recycle", "cooling_hours": 10000})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "cooling_hours", "{refused}");
}

/// A request of `sandbox` by the developer, until ready: its view.
async fn lease(local: &Local) -> Value {
    let (status, asked) = local
        .call_as(
            "POST",
            "/accounts",
            Some(DEV),
            Some(json!({"team": "payments", "owner": "ana@example.com",
                "purpose": "sandbox", "template": "sandbox"})),
            None,
        )
        .await;
    assert_eq!(status, 202, "{asked}");
    let id = asked["id"].as_str().unwrap().to_string();
    state_becomes(local, &id, "ready").await
}

async fn account(local: &Local, id: &str) -> Value {
    local.call("GET", &format!("/accounts/{id}"), None).await.1
}

async fn state_becomes(local: &Local, id: &str, state: &str) -> Value {
    for _ in 0..500 {
        let a = account(local, id).await;
        if a["state"] == state {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} never {state}: {:#}", account(local, id).await);
}

/// The reaper's schedule, fired now, then everything it put delivered.
async fn reap(local: &Local) {
    local
        .running
        .run_schedule("ReaperFunction")
        .await
        .expect("the reaper runs");
    local.settle().await;
}

#[tokio::test]
async fn a_recycled_lease_is_cleaned_cooled_and_lent_again_and_a_failing_one_quarantined() {
    let (local, clock) = start().await;
    setup(&local).await;
    let first = lease(&local).await;
    let id = first["id"].as_str().unwrap().to_string();
    let account_id = first["account_id"].as_str().unwrap().to_string();
    local
        .running
        .lambdas()
        .create_function(&account_id, local::REGION, "checkout", None)
        .await
        .unwrap();
    assert_eq!(local.functions(&account_id).len(), 1);

    // The lease ends: the reaper starts cleaning, not closing.
    clock.advance(Span::days(7) + Span::minutes(1));
    reap(&local).await;
    reap(&local).await;
    let pooled = state_becomes(&local, &id, "cooling").await;
    assert_eq!(pooled["recycling"]["clean_passes"], 2, "{pooled:#}");
    assert_eq!(pooled["access"]["status"], "removed");
    let runs = local.running.cleaner().runs(&account_id).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.pass, r.attempt)).collect::<Vec<_>>(),
        [(1, 1), (2, 1)],
        "two clean passes"
    );
    assert!(
        local.functions(&account_id).is_empty(),
        "cleaning removed its functions"
    );
    assert!(local.archived(catalog::ACCOUNT_CLOSE_REQUESTED).is_empty());
    let started = local.archived(catalog::ACCOUNT_CLEANING_STARTED);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["reason_code"], "LEASE_ENDED");
    assert_eq!(local.archived(catalog::ACCOUNT_CLEANED).len(), 1);
    let timeline: Vec<&str> = pooled["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert!(
        timeline.ends_with(&["AccountCleaningStarted", "AccessRemoved", "AccountCleaned"]),
        "{timeline:?}"
    );
    // The pooled account is no longer the team's: its quota is free.
    let (_, team) = local.call("GET", "/teams/payments", None).await;
    assert_eq!(team["open_accounts"], 0, "{team}");

    // Cooling on the manual clock: not before 72 hours after the lease.
    clock.advance(Span::hours(71));
    reap(&local).await;
    assert_eq!(account(&local, &id).await["state"], "cooling");
    clock.advance(Span::hours(1));
    reap(&local).await;
    state_becomes(&local, &id, "available").await;
    let (status, pool) = local.call("GET", "/pool", None).await;
    assert_eq!(status, 200, "{pool}");
    assert_eq!(pool["pools"][0]["template"], "sandbox");
    assert_eq!(pool["pools"][0]["counts"]["available"], 1, "{pool}");
    let (status, _) = local.call_as("GET", "/pool", Some(DEV), None, None).await;
    assert_eq!(status, 403, "admins only");

    // The next request is served from the pool, in well under a second,
    // and no account is created.
    let creations = local.archived(catalog::ACCOUNT_CREATION_STARTED).len();
    let began = Instant::now();
    let second = lease(&local).await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "served in {took:?}");
    assert_eq!(second["account_id"], account_id.as_str());
    assert_eq!(second["recycled_from"], id.as_str());
    assert_eq!(
        local.archived(catalog::ACCOUNT_CREATION_STARTED).len(),
        creations,
        "no account created"
    );
    state_becomes(&local, &id, "closed").await;
    assert_eq!(local.archived(catalog::ACCOUNT_RECYCLED).len(), 1);
    assert!(
        local.archived(catalog::ACCOUNT_CLOSED).is_empty(),
        "lent again, not closed"
    );

    // The second lease ends early, and its cleanup keeps failing.
    let second_id = second["id"].as_str().unwrap().to_string();
    local
        .running
        .cleaner()
        .fail_account(&account_id, 3)
        .await
        .unwrap();
    let (status, ended) = local
        .call_as(
            "DELETE",
            &format!("/accounts/{second_id}"),
            Some(DEV),
            None,
            None,
        )
        .await;
    assert_eq!(status, 202, "{ended}");
    assert_eq!(ended["state"], "cleaning");
    for _ in 0..3 {
        reap(&local).await;
    }
    let quarantined = state_becomes(&local, &second_id, "quarantined").await;
    assert_eq!(
        quarantined["recycling"]["failed_runs"], 3,
        "{quarantined:#}"
    );
    let events = local.archived(catalog::ACCOUNT_QUARANTINED);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason_code"], "CLEANING_FAILED");
    // Admins are told.
    let (_, pool) = local.call("GET", "/pool", None).await;
    assert_eq!(pool["pools"][0]["counts"]["quarantined"], 1, "{pool}");
    reap(&local).await;
    assert_eq!(
        local
            .running
            .cleaner()
            .runs(&account_id)
            .await
            .unwrap()
            .len(),
        5,
        "no run after the quarantine"
    );

    // Released by an admin after a look: it cools (its lease ended long
    // enough ago?) then is available again.
    let (status, _) = local
        .call_as(
            "POST",
            &format!("/accounts/{second_id}/release"),
            Some(DEV),
            None,
            None,
        )
        .await;
    assert_eq!(status, 403, "admins only");
    // What an admin sees with the CLI, and the release by the CLI.
    let shown = local.cli(&["pool", "show"]).await;
    assert!(
        shown.contains("quarantined") && shown.contains(&second_id),
        "{shown}"
    );
    assert!(shown.contains("3 failed"), "{shown}");
    let released = local
        .cli(&["accounts", "release", &second_id, "--output", "json"])
        .await;
    let released: Value = serde_json::from_str(&released).unwrap();
    assert_eq!(released["state"], "cooling");
    clock.advance(Span::hours(72));
    reap(&local).await;
    state_becomes(&local, &second_id, "available").await;
    assert_eq!(local.archived(catalog::ACCOUNT_RELEASED).len(), 1);
}

/// Cost across leases: payments' lease of an account ends, the account is
/// cleaned, cooled and lent to search; then AWS bills a late line of a day
/// of payments' lease. The lake's lease history attributes it to payments
/// (the named queries say so, by lease), and the spend settlement counts
/// it in payments' spend, not in search's, which holds the account now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_cur_line_of_a_recycled_account_is_the_first_leases_team() {
    const BO: &str = "arn:aws:iam::123456789012:user/bo";
    let (local, clock) = start().await;
    setup(&local).await;
    let (status, team) = local
        .call(
            "PUT",
            "/teams/search",
            Some(json!({"quota": 2, "members": [BO]})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    let first = lease(&local).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let account_id = first["account_id"].as_str().unwrap().to_string();
    // Payments' developer runs something on the 18th.
    local.report(&account_id, "checkout", "b-pay", 5).await;
    local
        .until("the batch is counted", async |l| {
            l.call("GET", "/teams/payments/costs", None).await.1["total"] != "0"
        })
        .await;

    // The lease ends on the 25th; cleaned, cooled 72 hours, lent to search.
    clock.advance(Span::days(7) + Span::minutes(1));
    reap(&local).await;
    reap(&local).await;
    state_becomes(&local, &first_id, "cooling").await;
    clock.advance(Span::hours(72));
    reap(&local).await;
    state_becomes(&local, &first_id, "available").await;
    let (status, asked) = local
        .call_as(
            "POST",
            "/accounts",
            Some(BO),
            Some(json!({"team": "search", "owner": "bo@example.com",
                "purpose": "sandbox", "template": "sandbox"})),
            None,
        )
        .await;
    assert_eq!(status, 202, "{asked}");
    let second_id = asked["id"].as_str().unwrap().to_string();
    let second = state_becomes(&local, &second_id, "ready").await;
    assert_eq!(second["account_id"], account_id.as_str(), "from the pool");

    // The lake holds both leases of the account, the first one ended.
    let leases = local.lake_query("cost_per_lease", &["2026-11"]).await;
    let listed: Vec<(&str, &str, bool)> = leases
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap(),
                r[2].as_str().unwrap(),
                r[5].is_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(first_id.as_str(), "payments", true)],
        "only payments' lease streamed anything in November"
    );
    assert_eq!(leases.rows[0][6], json!(5), "its five invocations");

    // Two hours into search's lease, AWS bills: $7 of EC2 on the 20th
    // (payments' lease, late) and $1 today (search's).
    clock.advance(Span::hours(2));
    let line = |at: &str, cost: f64| {
        json!({"line_item_usage_account_id": account_id, "line_item_product_code": "AmazonEC2",
            "line_item_usage_type": "USE1-EBS:VolumeUsage.gp3",
            "line_item_usage_start_date": at, "line_item_unblended_cost": cost,
            "billing_period": "2026-11"})
    };
    local.drop_into_lake(
        "cur/late.json",
        &[
            line("2026-11-20T05:00:00", 7.0),
            line("2026-11-28T13:00:00", 1.0),
        ],
    );

    // The named queries attribute each line to its lease.
    let by_day = local
        .lake_query("cur_cost_per_account_day", &["2026-11"])
        .await;
    let lines: Vec<(&str, &str, &str)> = by_day
        .rows
        .iter()
        .map(|r| {
            (
                r[1].as_str().unwrap(),
                r[4].as_str().unwrap(),
                r[5].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("2026-11-20", "payments", first_id.as_str()),
            ("2026-11-28", "search", second_id.as_str()),
        ]
    );
    let by_team = local.lake_query("cur_cost_per_team", &["2026-11"]).await;
    let teams: Vec<(&str, f64)> = by_team
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap(),
                r[2].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(teams, [("payments", 7.0), ("search", 1.0)]);

    // The settlement: payments' spend includes the late line, search's
    // does not.
    let settled = local.settle_spend().await;
    assert_eq!(settled["teams"], 2, "{settled}");
    let november = "costs?from=2026-11-01&to=2026-11-30";
    let (_, payments) = local
        .call("GET", &format!("/teams/payments/{november}"), None)
        .await;
    let streamed = 5.0 * local::COST;
    assert!(
        (local::amount(&payments["total"]) - (streamed + 7.0)).abs() < 1e-6,
        "{payments}"
    );
    assert!(payments["source"]["cur"].is_string(), "{payments}");
    let (_, search) = local
        .call("GET", &format!("/teams/search/{november}"), None)
        .await;
    assert!(
        (local::amount(&search["total"]) - 1.0).abs() < 1e-6,
        "{search}"
    );
    let updates = local.archived("TeamSpendUpdated");
    let settled_for = |team: &str| {
        updates
            .iter()
            .rfind(|u| u["team"] == team && u["source"] == "cur")
            .map(|u| local::amount(&u["spend"]))
    };
    assert!((settled_for("payments").unwrap() - (streamed + 7.0)).abs() < 1e-6);
    assert!((settled_for("search").unwrap() - 1.0).abs() < 1e-6);
    local.running.shutdown().await;
}
