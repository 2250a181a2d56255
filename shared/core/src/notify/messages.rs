//! What each of Purser's events tells people: what happened, why, and what
//! to do next (the command or the link). One message per event, the same
//! for every recipient.

use serde_json::Value;

use crate::budgets::{
    ACCOUNT_FROZEN, ACCOUNT_UNFROZEN, BUDGET_THRESHOLD_CROSSED, LAMBDAS_RESTORED, LAMBDAS_THROTTLED,
};
use crate::events::Event;
use crate::events::catalog::{ACCOUNT_CLOSED, ACCOUNT_FAILED, ACCOUNT_READY, LEASE_EXPIRING};
use crate::ports::Message;

/// Every detail-type the notify function tells people about (its rule in
/// infra/template.yaml matches these, and a template test holds it to it).
pub const NOTIFIED: [&str; 9] = [
    ACCOUNT_READY,
    ACCOUNT_FAILED,
    LEASE_EXPIRING,
    BUDGET_THRESHOLD_CROSSED,
    ACCOUNT_FROZEN,
    ACCOUNT_UNFROZEN,
    LAMBDAS_THROTTLED,
    LAMBDAS_RESTORED,
    ACCOUNT_CLOSED,
];

fn text(detail: &Value, field: &str) -> String {
    match &detail[field] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The message for `event`, or `None` for an event nobody needs to hear of.
pub fn message_for(event: &Event) -> Option<Message> {
    let d = &event.detail;
    let (id, team, account) = (
        text(d, "request_id"),
        text(d, "team"),
        text(d, "account_id"),
    );
    let link = d["access"]["link"].as_str().map(String::from);
    let access_status = d["access"]["status"].as_str().unwrap_or_default();
    let (subject, body) = match event.detail_type.as_str() {
        ACCOUNT_READY => {
            let sign_in = match access_status {
                "assigned" | "pending" => format!(
                    "Sign in through the AWS access portal as {}: {}\n(or: purser accounts login {id})",
                    text(&d["access"], "permission_set"),
                    link.clone().unwrap_or_default()
                ),
                "no_user" => format!("You cannot sign in yet: {}", text(&d["access"], "reason")),
                "failed" => format!(
                    "Sign-in could not be granted: {}. A platform admin can look at it.",
                    text(&d["access"], "reason")
                ),
                _ => "Ask a platform admin how to sign in: this Purser grants no sign-in.".into(),
            };
            (
                format!("Your AWS account {account} for {team} is ready"),
                format!(
                    "Account {account} ({}) is ready in team {team}'s OU.\n\n{sign_in}\n\nLease end: {}.",
                    text(d, "purpose"),
                    d["lease_end"].as_str().unwrap_or("none")
                ),
            )
        }
        ACCOUNT_FAILED => (
            format!("Your AWS account request {id} failed"),
            format!(
                "AWS Organizations could not create the account for team {team}: {}\n\nWhat to do: ask again with `purser accounts request --team {team}` once the cause is fixed; `purser accounts show {id}` has the details.",
                text(d, "reason")
            ),
        ),
        LEASE_EXPIRING => (
            format!("The lease of AWS account {account} ends soon"),
            format!(
                "The lease of account {account} (team {team}, {}) ends at {}. Then it is frozen and closed, and what runs in it stops.\n\nWhat to do: save what you need, or ask a platform admin to extend the lease.",
                text(d, "purpose"),
                text(d, "lease_end")
            ),
        ),
        BUDGET_THRESHOLD_CROSSED => {
            let actions: Vec<String> = d["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            (
                format!("Team {team} is at {}% of its budget", text(d, "threshold")),
                format!(
                    "Team {team} has spent {} {} of its {} {} budget for {} ({} mode; forecast {} {}).\n\nWhat happens: {}.\n\nWhat to do: `purser costs --team {team} --by function` shows where it goes; a platform admin can raise the budget with `purser budgets set {team} --amount N`.",
                    text(d, "spend"),
                    text(d, "currency"),
                    text(d, "amount"),
                    text(d, "currency"),
                    text(d, "period"),
                    text(d, "mode"),
                    text(d, "forecast"),
                    text(d, "currency"),
                    if actions.is_empty() {
                        "nothing but this notice".into()
                    } else {
                        actions.join(", ")
                    }
                ),
            )
        }
        ACCOUNT_FROZEN => (
            format!("AWS account {account} is frozen"),
            format!(
                "Account {account} of team {team} is frozen: {}. A deny-all policy stops every change in it{}.\n\nWhat to do: `purser budgets show {team}`; raising the budget or the next period unfreezes it.",
                text(d, "reason"),
                if access_status == "assigned" {
                    format!(
                        "; you can still look in, read-only: {}",
                        link.clone().unwrap_or_default()
                    )
                } else {
                    String::new()
                }
            ),
        ),
        ACCOUNT_UNFROZEN => (
            format!("AWS account {account} is unfrozen"),
            format!(
                "Account {account} of team {team} is usable again: {}.",
                text(d, "reason")
            ),
        ),
        LAMBDAS_THROTTLED | LAMBDAS_RESTORED => {
            let throttled = event.detail_type == LAMBDAS_THROTTLED;
            (
                format!(
                    "{} Lambda function(s) of account {account} {}",
                    text(d, "count"),
                    if throttled {
                        "are throttled to 0"
                    } else {
                        "have their concurrency back"
                    }
                ),
                format!(
                    "{}: {}.\n\n{}",
                    if throttled {
                        "Their reserved concurrency is 0, so nothing runs, not even what was already coming"
                    } else {
                        "Each has the reserved concurrency it had before"
                    },
                    text(d, "reason"),
                    if throttled {
                        format!(
                            "What to do: `purser budgets show {team}`; raising the budget restores them."
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        }
        ACCOUNT_CLOSED => (
            format!("AWS account {account} is closed"),
            format!(
                "Account {account} of team {team} ({}) is closed. AWS keeps it suspended for 90 days, then deletes it.",
                text(d, "purpose")
            ),
        ),
        _ => return None,
    };
    Some(Message {
        event_id: event.id.clone(),
        kind: event.detail_type.clone(),
        subject,
        text: body.trim_end().to_string(),
        link: if event.detail_type == ACCOUNT_READY {
            link
        } else {
            None
        },
    })
}
