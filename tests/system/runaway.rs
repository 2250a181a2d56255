//! The runaway guard on `purser up` (issue 15): spend-rate rules of a
//! team's budget weighed on every change of its spend. A GPU instance left
//! running is stopped within minutes of its first priced slice, through
//! the member role, and announced once; Lambda spending faster than an
//! account's hourly limit freezes and throttles the account until an admin
//! releases it, and the episode is announced once however long it lasts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use purser_core::ManualClock;
use serde_json::{Value, json};

use crate::common;
use crate::common::local::{Local, Options};
use crate::schemas::{assert_valid, validator};

const GPU: &str = "i-0fedcba9876543210";

fn exceeded(local: &Local) -> Vec<Value> {
    let details = local.archived("SpendRateExceeded");
    let schema = validator("SpendRateExceeded");
    for d in &details {
        assert_valid("SpendRateExceeded", &schema, d);
    }
    details
}

async fn budget(local: &Local, runaway: Value) {
    let (status, body) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "10000", "runaway": runaway})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runaway"][0]["per"], runaway[0]["per"], "{body}");
}

#[tokio::test]
async fn a_gpu_instance_left_running_is_stopped_within_minutes_and_announced_once() {
    let local = common::local::start_with(Options {
        manual: Some(Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 7, 2, 0, 0).unwrap(),
        ))),
        organization_delay: Duration::from_millis(100),
        allow_aws_sources: true,
        ..Options::default()
    })
    .await;
    let (id, account) = local.ready_account().await;
    budget(
        &local,
        json!([{"per": "resource", "usd_per_hour": "2", "actions": ["notify", "stop-resource"]}]),
    )
    .await;
    // A p4d.24xlarge ($32.77 an hour) launched and running.
    local.launch(&account, GPU, "p4d.24xlarge").await;
    assert!(exceeded(&local).is_empty());

    // Five minutes on, its first slice ($2.73) is over the $2 an hour.
    local.advance(5);
    local.accrue().await;
    local.settle().await;
    let episodes = exceeded(&local);
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let e = &episodes[0];
    assert_eq!(e["request_id"], id);
    assert_eq!(e["resource"], format!("ec2:us-east-1:{GPU}"));
    assert_eq!(e["rule"]["id"], "team-r1-0");
    assert_eq!(e["stopped"][0]["outcome"], "stopped", "{e:#}");
    assert_eq!(e["stopped"][0]["id"], GPU);
    let spent_then = local.team_spent().await;
    assert!((spent_then - 32.7726 / 12.0).abs() < 1e-6, "{spent_then}");

    // The stop was EC2's own: its state change ended the run, so later
    // accruals count nothing more, and nothing is announced again.
    local.advance(30);
    local.accrue().await;
    local.settle().await;
    assert_eq!(local.team_spent().await, spent_then);
    assert_eq!(exceeded(&local).len(), 1);
    // The owner and the team are told, with what was stopped.
    let sent = purser_local::notifier::sent(local.running.db()).unwrap();
    assert!(
        sent.iter()
            .any(|n| n.kind == "SpendRateExceeded" && n.subject.contains(&account)),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn lambda_spending_past_the_hourly_limit_freezes_the_account_until_released() {
    let local = common::local::start().await;
    let (id, account) = local.ready_account().await;
    budget(
        &local,
        json!([{"per": "account", "usd_per_hour": "1", "actions": ["notify", "freeze", "throttle-lambdas"]}]),
    )
    .await;
    local.report(&account, "runaway", "r1", 4).await; // 0.48: under $1
    local.settle().await;
    assert!(exceeded(&local).is_empty());
    local.report(&account, "runaway", "r2", 6).await; // 1.20 in the hour
    local
        .until("the account is frozen", async |l| {
            let (_, a) = l.call("GET", &format!("/accounts/{id}"), None).await;
            a["state"] == "frozen"
        })
        .await;
    let (_, view) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert!(
        view.to_string().contains("runaway"),
        "the freeze names its cause: {view:#}"
    );
    local
        .until("its functions are throttled", async |l| {
            l.functions(&account)
                .iter()
                .any(|(name, reserved)| name == "runaway" && *reserved == Some(0))
        })
        .await;
    // More spend in the same episode announces nothing more.
    local.report(&account, "runaway", "r3", 2).await;
    local.settle().await;
    let episodes = exceeded(&local);
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    assert_eq!(episodes[0]["resource"], Value::Null);
    assert!(episodes[0]["stopped"].as_array().unwrap().is_empty());

    // A developer cannot release it; an admin can, and it is unfrozen.
    let (status, _) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/release"),
            Some(common::local::DEV),
            None,
            None,
        )
        .await;
    assert_eq!(status, 403);
    let shown = local.cli(&["accounts", "release", &id]).await;
    assert!(shown.contains("runaway guard's hold is let go"), "{shown}");
    local
        .until("the account is unfrozen", async |l| {
            let (_, a) = l.call("GET", &format!("/accounts/{id}"), None).await;
            a["state"] == "ready"
        })
        .await;
}

#[tokio::test]
async fn rules_are_refused_with_the_field_at_fault() {
    let local = common::local::start().await;
    local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"members": [common::local::DEV]})),
        )
        .await;
    for (runaway, field) in [
        (
            json!([{"per": "team", "usd_per_hour": "1", "actions": ["notify"]}]),
            "runaway[0].per",
        ),
        (
            json!([{"per": "account", "actions": ["notify"]}]),
            "runaway[0]",
        ),
        (
            json!([{"per": "account", "usd_per_hour": "1", "actions": ["reboot"]}]),
            "runaway[0].actions",
        ),
    ] {
        let (status, body) = local
            .call(
                "PUT",
                "/teams/payments/budget",
                Some(json!({"amount": "100", "runaway": runaway})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    // The hourly sweep evaluates every team, budget or not: its accounts'
    // templates may hold rules, and an ended episode's throttle is lifted.
    local.running.run_schedule("BudgetsFunction").await.unwrap();
    local.settle().await;
    let due = local.archived("BudgetEvaluationDue");
    assert!(due.iter().any(|d| d["team"] == "payments"), "{due:?}");
}
