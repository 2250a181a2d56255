//! What each of Purser's events tells people: what happened, why, and what
//! to do next (the command or the link). One message per event, the same
//! for every recipient.

use serde_json::Value;

use crate::budgets::{
    ACCOUNT_FROZEN, ACCOUNT_UNFROZEN, BUDGET_THRESHOLD_CROSSED, LAMBDAS_RESTORED,
    LAMBDAS_THROTTLED, SPEND_RATE_EXCEEDED,
};
use crate::events::Event;
use crate::events::catalog::{
    ACCOUNT_APPROVAL_REQUESTED, ACCOUNT_APPROVED, ACCOUNT_CLOSED, ACCOUNT_DENIED, ACCOUNT_FAILED,
    ACCOUNT_QUARANTINED, ACCOUNT_READY, LEASE_EXPIRING, LEASE_EXTENDED,
};
use crate::leases::{AUTO_APPROVER, EXPIRY};
use crate::ports::Message;

/// Every detail-type the notify function tells people about (its rule in
/// infra/template.yaml matches these, and a template test holds it to it).
pub const NOTIFIED: [&str; 15] = [
    ACCOUNT_READY,
    ACCOUNT_FAILED,
    LEASE_EXPIRING,
    BUDGET_THRESHOLD_CROSSED,
    ACCOUNT_FROZEN,
    ACCOUNT_UNFROZEN,
    LAMBDAS_THROTTLED,
    LAMBDAS_RESTORED,
    ACCOUNT_CLOSED,
    ACCOUNT_APPROVAL_REQUESTED,
    ACCOUNT_APPROVED,
    ACCOUNT_DENIED,
    LEASE_EXTENDED,
    ACCOUNT_QUARANTINED,
    SPEND_RATE_EXCEEDED,
];

/// The reason codes of an `AccountClosed` that follows an `AccountDenied`
/// (a request denied or expired before any account was made): the denial
/// told the owner already.
const CLOSED_BY_DENIAL: [&str; 2] = ["DENIED", "APPROVAL_EXPIRED"];

/// `payments' template hackathon (version 2)`, or that none was named.
fn template_of(detail: &Value) -> String {
    match detail["template"]["name"].as_str() {
        Some(name) => match detail["template"]["version"].as_u64() {
            Some(version) => format!("template {name} (version {version})"),
            None => format!("template {name}"),
        },
        None => "no template".into(),
    }
}

/// Who decided: a person, the template's auto rules (and which), or expiry.
fn decided_by(detail: &Value) -> String {
    match detail["approver"].as_str() {
        Some(AUTO_APPROVER) => format!(
            "the template's rules ({})",
            detail["rule"].as_str().unwrap_or("auto")
        ),
        Some(EXPIRY) => "expiry: no approver decided in time".into(),
        Some(who) => who.to_string(),
        None => "an approver".into(),
    }
}

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
            // A blueprint that failed leaves the account usable, without
            // what the platform team meant to put in it: say so, and why.
            let blueprint = match d["blueprint"]["status"].as_str() {
                Some("failed") => format!(
                    "\n\nIts blueprint (StackSet {}) failed, so what it sets up is missing: {}. \
                     A platform admin can look at it.",
                    text(&d["blueprint"], "stack_set"),
                    text(&d["blueprint"], "reason")
                ),
                Some("succeeded") => format!(
                    "\n\nIts blueprint (StackSet {}) is deployed.",
                    text(&d["blueprint"], "stack_set")
                ),
                _ => String::new(),
            };
            (
                format!("Your AWS account {account} for {team} is ready"),
                format!(
                    "Account {account} ({}) is ready in team {team}'s OU.\n\n{sign_in}\n\nLease end: {}.{blueprint}",
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
        SPEND_RATE_EXCEEDED => {
            let actions: Vec<String> = d["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            let stopped: Vec<String> = d["stopped"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let restore = match s["restore"].as_str() {
                        Some(config) => {
                            format!(", endpoint configuration {config} kept to recreate it")
                        }
                        None => String::new(),
                    };
                    format!(
                        "{} {} in {}: {}{}",
                        text(s, "kind"),
                        text(s, "id"),
                        text(s, "region"),
                        text(s, "outcome"),
                        restore
                    )
                })
                .collect();
            let what = d["resource"].as_str().unwrap_or("the account as a whole");
            (
                format!("Runaway spend in AWS account {account}"),
                format!(
                    "In account {account} of team {team}, {what} spent {} {} in the hour from {}, over the limit of {} {} (rule {}).

What happens: {}.{}

What to do: look at what runs there (`purser costs --team {team} --by function`, `purser accounts show {}`). A frozen account stays frozen until a platform admin runs `purser accounts release {}`.",
                    text(d, "spend"),
                    text(d, "currency"),
                    text(d, "hour"),
                    text(d, "limit"),
                    text(d, "currency"),
                    text(&d["rule"], "id"),
                    if actions.is_empty() {
                        "nothing but this notice".into()
                    } else {
                        actions.join(", ")
                    },
                    if stopped.is_empty() {
                        String::new()
                    } else {
                        format!("\n\nStopped: {}.", stopped.join("; "))
                    },
                    text(d, "request_id"),
                    text(d, "request_id"),
                ),
            )
        }
        BUDGET_THRESHOLD_CROSSED if d["scope"] == "account" => {
            let actions: Vec<String> = d["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            let account = text(d, "account_id");
            (
                format!(
                    "AWS account {account} is at {}% of its lease's budget",
                    text(d, "threshold")
                ),
                format!(
                    "Account {account} of team {team} has spent {} {} of the {} {} its lease template ({}) allows for the whole lease, since {}.\n\nWhat happens, to this account only: {}. The team's other accounts are not affected.\n\nWhat to do: `purser costs --team {team} --by function` shows where it goes; the lease's budget is its template version's and does not change while the lease runs.",
                    text(d, "spend"),
                    text(d, "currency"),
                    text(d, "amount"),
                    text(d, "currency"),
                    template_of(d),
                    text(d, "lease_start"),
                    if actions.is_empty() {
                        "nothing but this notice".into()
                    } else {
                        actions.join(", ")
                    }
                ),
            )
        }
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
        ACCOUNT_APPROVAL_REQUESTED => {
            let owner = text(d, "owner");
            let decide = format!(
                "What to do: `purser approvals approve {id}` or `purser approvals deny {id} --reason '…'` (or POST /accounts/{id}/approve, /deny with a reason); `purser approvals list` shows what waits. The requester cannot decide it, and it expires if nobody does."
            );
            match d["extension_days"].as_u64() {
                Some(days) => (
                    format!(
                        "Approval needed: {days} more days for AWS account {account} of {team}"
                    ),
                    format!(
                        "{owner} asks to extend the lease of account {account} (team {team}, {}, {}) by {days} days; it ends at {} now. {}.\n\n{decide}",
                        text(d, "purpose"),
                        template_of(d),
                        d["lease_end"].as_str().unwrap_or("no end"),
                        text(d, "reason")
                    ),
                ),
                None => (
                    format!("Approval needed: an AWS account for {team} ({owner})"),
                    format!(
                        "{owner} asks for an AWS account in team {team}.\n\nPurpose: {}\nTemplate: {}\nLease: {}\nWhy it waits: {}.\n\n{decide}",
                        text(d, "purpose"),
                        template_of(d),
                        d["lease_days"]
                            .as_u64()
                            .map_or("as the template gives".into(), |days| format!(
                                "{days} days from approval"
                            )),
                        text(d, "reason")
                    ),
                ),
            }
        }
        ACCOUNT_APPROVED => match d["extension_days"].as_u64() {
            Some(days) => (
                format!("{days} more days for AWS account {account} are approved"),
                format!(
                    "The extension of account {account} (team {team}) by {days} days was approved by {}{}. The lease now ends at {}.",
                    decided_by(d),
                    d["reason"]
                        .as_str()
                        .map_or(String::new(), |r| format!(": {r}")),
                    d["lease_end"].as_str().unwrap_or("no end")
                ),
            ),
            None => (
                format!("Your AWS account request {id} for {team} is approved"),
                format!(
                    "Your request for an AWS account in team {team} ({}, {}) was approved by {}{}. It is being made now; you are told when it is ready.\n\nLease end: {}.",
                    text(d, "purpose"),
                    template_of(d),
                    decided_by(d),
                    d["reason"]
                        .as_str()
                        .map_or(String::new(), |r| format!(": {r}")),
                    d["lease_end"].as_str().unwrap_or("none")
                ),
            ),
        },
        ACCOUNT_DENIED => {
            let (subject, what, next) = match d["extension_days"].as_u64() {
                Some(days) => (
                    format!("The extension of AWS account {account} is denied"),
                    format!("The extension of account {account} (team {team}) by {days} days"),
                    format!(
                        "The lease still ends at {}; `purser accounts extend {id} --days N` asks again.",
                        d["lease_end"].as_str().unwrap_or("its end")
                    ),
                ),
                None => (
                    format!("Your AWS account request {id} is denied"),
                    format!(
                        "Your request {id} for an AWS account in team {team} ({}, {})",
                        text(d, "purpose"),
                        template_of(d)
                    ),
                    format!(
                        "No account was made. `purser accounts request --team {team}` asks again."
                    ),
                ),
            };
            (
                subject,
                format!(
                    "{what} was denied by {}.\n\nReason: {}\n\n{next}",
                    decided_by(d),
                    text(d, "reason")
                ),
            )
        }
        LEASE_EXTENDED => (
            format!("The lease of AWS account {account} is extended"),
            format!(
                "The lease of account {account} (team {team}, {}) is {} days longer: it now ends at {}. You are warned again before the new end.",
                text(d, "purpose"),
                text(d, "extension_days"),
                d["lease_end"].as_str().unwrap_or("no end")
            ),
        ),
        ACCOUNT_CLOSED
            if d["account_id"].is_null()
                && d["reason_code"]
                    .as_str()
                    .is_some_and(|code| CLOSED_BY_DENIAL.contains(&code)) =>
        {
            return None;
        }
        ACCOUNT_QUARANTINED => (
            format!("AWS account {account} is quarantined: its cleaning failed"),
            format!(
                "Account {account} (template {}, last lent to team {team} as request {id}) could not be cleaned for its next lease: {}\n\nIt stays out of the pool, lent to nobody, until a platform admin looks.\n\nWhat to do: read the cleaner's log (the CodeBuild project's builds for this account), remove or fix what aws-nuke could not delete, then `purser accounts release {id}` (it cools, then is lent again); or close it with `purser accounts close {id}`. `purser pool show` lists what is quarantined.",
                d["template"]["name"].as_str().unwrap_or("none"),
                text(d, "reason")
            ),
        ),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(detail_type: &str, detail: Value) -> Event {
        let mut d = json!({"version": 1, "request_id": "r-0123456789ab", "team": "payments",
            "owner": "ana@example.com", "purpose": "hackathon",
            "template": {"name": "hackathon", "version": 2}, "at": "2026-11-18T12:00:00Z"});
        for (k, v) in detail.as_object().unwrap() {
            d[k] = v.clone();
        }
        serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": detail_type, "source": "purser",
            "account": "123456789012", "time": "2026-11-18T12:00:00Z", "region": "us-east-1",
            "resources": [], "detail": d
        }))
        .unwrap()
    }

    fn message(detail_type: &str, detail: Value) -> Message {
        message_for(&event(detail_type, detail)).expect("a message")
    }

    #[test]
    fn an_accounts_own_budget_speaks_of_that_account_not_the_team() {
        let m = message(
            BUDGET_THRESHOLD_CROSSED,
            json!({"scope": "account", "account_id": "111122223333", "threshold": 100,
                "spend": "5.2", "amount": "5", "currency": "USD", "period": "lease",
                "lease_start": "2026-12-01T09:00:00Z", "actions": ["notify", "freeze"]}),
        );
        assert_eq!(
            m.subject,
            "AWS account 111122223333 is at 100% of its lease's budget"
        );
        for part in [
            "Account 111122223333 of team payments has spent 5.2 USD of the 5 USD",
            "to this account only: notify, freeze",
            "other accounts are not affected",
        ] {
            assert!(m.text.contains(part), "{part} in {}", m.text);
        }
    }

    #[test]
    fn a_quarantine_says_why_and_how_to_release() {
        let m = message(
            ACCOUNT_QUARANTINED,
            json!({"request_id": "r-0123456789ab", "account_id": "210987654321",
                "team": "payments", "owner": "ana@example.com", "state": "quarantined",
                "template": {"name": "sandbox", "version": 1}, "reason_code": "CLEANING_FAILED",
                "reason": "3 cleaning runs failed; the last: VPC has dependencies"}),
        );
        assert!(m.subject.contains("210987654321"), "{}", m.subject);
        assert!(m.text.contains("VPC has dependencies"), "{}", m.text);
        assert!(
            m.text.contains("purser accounts release r-0123456789ab"),
            "{}",
            m.text
        );
    }

    #[test]
    fn every_approval_and_extension_event_is_notified() {
        for kind in [
            ACCOUNT_APPROVAL_REQUESTED,
            ACCOUNT_APPROVED,
            ACCOUNT_DENIED,
            LEASE_EXTENDED,
        ] {
            assert!(NOTIFIED.contains(&kind), "{kind}");
        }
    }

    #[test]
    fn an_approval_request_says_what_was_asked_and_how_to_decide() {
        let m = message(
            ACCOUNT_APPROVAL_REQUESTED,
            json!({"state": "pending_approval", "lease_days": 2, "reason_code": "APPROVAL_REQUIRED",
                "reason": "the template asks an approver for every request"}),
        );
        assert_eq!(
            m.subject,
            "Approval needed: an AWS account for payments (ana@example.com)"
        );
        for part in [
            "ana@example.com asks for an AWS account in team payments",
            "Purpose: hackathon",
            "Template: template hackathon (version 2)",
            "Lease: 2 days from approval",
            "the template asks an approver for every request",
            "`purser approvals approve r-0123456789ab`",
            "`purser approvals deny r-0123456789ab --reason",
            "POST /accounts/r-0123456789ab/approve",
        ] {
            assert!(m.text.contains(part), "{part} in {}", m.text);
        }
        assert_eq!(m.link, None);
    }

    #[test]
    fn an_extension_beyond_the_maximum_asks_the_approvers_too() {
        let m = message(
            ACCOUNT_APPROVAL_REQUESTED,
            json!({"state": "ready", "account_id": "210987654321", "extension_days": 10,
                "lease_end": "2026-11-20T12:00:00Z", "reason_code": "EXTENSION_BEYOND_MAXIMUM",
                "reason": "12 days in all is beyond the template's maximum of 7: an approver decides"}),
        );
        assert!(
            m.subject
                .contains("10 more days for AWS account 210987654321")
        );
        assert!(m.text.contains("by 10 days"), "{}", m.text);
        assert!(m.text.contains("2026-11-20T12:00:00Z"), "{}", m.text);
        assert!(m.text.contains("beyond the template's maximum of 7"));
        assert!(m.text.contains("`purser approvals approve r-0123456789ab`"));
    }

    #[test]
    fn an_approval_names_the_approver_or_the_rule() {
        let by_bob = message(
            ACCOUNT_APPROVED,
            json!({"state": "requested", "approver": "bob@example.com", "reason_code": "APPROVED",
                "reason": "enjoy", "lease_end": "2026-11-20T12:00:00Z"}),
        );
        assert_eq!(
            by_bob.subject,
            "Your AWS account request r-0123456789ab for payments is approved"
        );
        assert!(
            by_bob.text.contains("approved by bob@example.com: enjoy"),
            "{}",
            by_bob.text
        );
        assert!(by_bob.text.contains("2026-11-20T12:00:00Z"));

        let auto = message(
            ACCOUNT_APPROVED,
            json!({"state": "requested", "approver": "auto",
                "rule": "auto: lease_at_most 3, team_under_quota"}),
        );
        assert!(
            auto.text.contains(
                "approved by the template's rules (auto: lease_at_most 3, team_under_quota)"
            ),
            "{}",
            auto.text
        );

        let extension = message(
            ACCOUNT_APPROVED,
            json!({"state": "ready", "account_id": "210987654321", "approver": "bob@example.com",
                "extension_days": 10, "lease_end": "2026-11-30T12:00:00Z"}),
        );
        assert!(extension.subject.contains("10 more days"));
        assert!(extension.text.contains("now ends at 2026-11-30T12:00:00Z"));
    }

    #[test]
    fn a_denial_gives_the_reason_and_what_to_do() {
        let m = message(
            ACCOUNT_DENIED,
            json!({"state": "closed", "approver": "bob@example.com", "reason_code": "DENIED",
                "reason": "use the shared sandbox this week"}),
        );
        assert_eq!(
            m.subject,
            "Your AWS account request r-0123456789ab is denied"
        );
        assert!(m.text.contains("denied by bob@example.com"), "{}", m.text);
        assert!(
            m.text.contains("Reason: use the shared sandbox this week"),
            "{}",
            m.text
        );
        assert!(m.text.contains("purser accounts request --team payments"));

        let expired = message(
            ACCOUNT_DENIED,
            json!({"state": "closed", "approver": "expiry", "reason_code": "APPROVAL_EXPIRED",
                "reason": "no approver decided within 7 days; ask again if it is still needed"}),
        );
        assert!(expired.text.contains("no approver decided in time"));

        let extension = message(
            ACCOUNT_DENIED,
            json!({"state": "ready", "account_id": "210987654321", "approver": "bob@example.com",
                "extension_days": 10, "reason_code": "DENIED", "reason": "wrap it up",
                "lease_end": "2026-11-20T12:00:00Z"}),
        );
        assert!(
            extension
                .subject
                .contains("extension of AWS account 210987654321")
        );
        assert!(
            extension
                .text
                .contains("still ends at 2026-11-20T12:00:00Z")
        );
        assert!(extension.text.contains("Reason: wrap it up"));
    }

    #[test]
    fn an_extension_gives_the_new_end() {
        let m = message(
            LEASE_EXTENDED,
            json!({"state": "ready", "account_id": "210987654321", "extension_days": 3,
                "lease_end": "2026-11-23T12:00:00Z"}),
        );
        assert_eq!(
            m.subject,
            "The lease of AWS account 210987654321 is extended"
        );
        assert!(
            m.text
                .contains("is 3 days longer: it now ends at 2026-11-23T12:00:00Z"),
            "{}",
            m.text
        );
    }

    #[test]
    fn a_request_closed_by_its_denial_is_not_told_twice() {
        let denied = event(
            ACCOUNT_CLOSED,
            json!({"state": "closed", "reason_code": "DENIED", "reason": "no"}),
        );
        assert!(message_for(&denied).is_none());
        let closed = event(
            ACCOUNT_CLOSED,
            json!({"state": "closed", "account_id": "210987654321", "reason_code": "LEASE_ENDED"}),
        );
        assert!(message_for(&closed).is_some());
    }
}
