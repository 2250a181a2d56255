//! Lease templates, approvals and extensions, end to end through the HTTP
//! API of a local `purser up`: a template that needs approval is pending,
//! then approved by the team's approver and ready; an auto rule approves at
//! once and the account records its rule; a denial's reason reaches the
//! requester on the account; an extension within the template's maximum
//! applies, one beyond it waits for an approver; a request over the
//! template's lease is refused naming lease_days; pending requests count
//! against the team's quota.

use serde_json::{Value, json};

use crate::common::local;

const ANA: &str = "arn:aws:iam::123456789012:user/ana";
const BOB: &str = "arn:aws:iam::123456789012:user/bob";

/// Team payments (ana and bob, bob the approver, `quota`) and templates
/// `hackathon` (always approved by a person, 2 to 7 days) and `sandbox`
/// (auto: at most 3 days, the team under its quota).
async fn setup(local: &local::Local, quota: u32) {
    let (status, team) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"quota": quota, "members": [ANA, BOB], "approvers": [BOB]})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["approvers"], json!([BOB]));
    let (status, t) = local
        .call(
            "PUT",
            "/templates/hackathon",
            Some(
                json!({"description": "two days to try things", "default_lease_days": 2,
                "max_lease_days": 7, "approval": "always",
                "budget": {"amount": "50.00", "currency": "USD", "thresholds": [80, 100],
                    "actions": {"100": ["notify", "freeze"]}},
                "regions": ["us-east-1"]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["version"], 1);
    let (status, t) = local
        .call(
            "PUT",
            "/templates/sandbox",
            Some(
                json!({"description": "a few days, no questions", "default_lease_days": 3,
                "max_lease_days": 10, "approval": {"auto": [
                    {"rule": "lease_at_most", "days": 3}, {"rule": "team_under_quota"}]}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{t}");
}

async fn ask(local: &local::Local, template: &str, lease_days: Option<u32>) -> (u16, Value) {
    let mut body = json!({"team": "payments", "owner": "ana@example.com",
        "purpose": "hackathon", "template": template});
    if let Some(days) = lease_days {
        body["lease_days"] = json!(days);
    }
    local
        .call_as("POST", "/accounts", Some(ANA), Some(body), None)
        .await
}

async fn account(local: &local::Local, id: &str) -> Value {
    local
        .call_as("GET", &format!("/accounts/{id}"), Some(ANA), None, None)
        .await
        .1
}

async fn until_ready(local: &local::Local, id: &str) -> Value {
    local
        .until("the account is ready", async |l| {
            account(l, id).await["state"] == "ready"
        })
        .await;
    account(local, id).await
}

#[tokio::test]
async fn a_request_that_needs_approval_is_approved_by_an_approver_and_made() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (status, pending) = ask(&local, "hackathon", None).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["state"], "pending_approval");
    assert_eq!(
        pending["template"],
        json!({"name": "hackathon", "version": 1})
    );
    assert_eq!(pending["lease_days"], 2);
    let id = pending["id"].as_str().unwrap().to_string();

    // Bob sees it waiting; ana may not approve her own request.
    let (status, waiting) = local
        .call_as("GET", "/approvals", Some(BOB), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(waiting["items"][0]["id"], id.as_str());
    let (status, _) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/approve"),
            Some(ANA),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(status, 403);
    local.settle().await;
    assert_eq!(account(&local, &id).await["state"], "pending_approval");

    let (status, approved) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/approve"),
            Some(BOB),
            Some(json!({"reason": "enjoy"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["decision"]["by"], BOB);
    let ready = until_ready(&local, &id).await;
    assert!(ready["lease_end"].is_string());
    assert_eq!(local.archived("AccountApprovalRequested").len(), 1);
    assert_eq!(local.archived("AccountApproved")[0]["approver"], BOB);
}

#[tokio::test]
async fn an_auto_rule_approves_at_once_and_the_account_records_it() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (status, asked) = ask(&local, "sandbox", None).await;
    assert_eq!(status, 202, "{asked}");
    assert_eq!(asked["state"], "requested");
    assert_eq!(asked["decision"]["by"], "auto");
    assert_eq!(
        asked["decision"]["rule"],
        "auto: lease_at_most 3, team_under_quota"
    );
    let id = asked["id"].as_str().unwrap();
    until_ready(&local, id).await;
    let approved = local.archived("AccountApproved");
    assert_eq!(
        approved[0]["rule"],
        "auto: lease_at_most 3, team_under_quota"
    );

    // Longer than the rule allows: it waits for a person.
    let (_, waits) = ask(&local, "sandbox", Some(5)).await;
    assert_eq!(waits["state"], "pending_approval");
}

#[tokio::test]
async fn a_denial_reaches_the_requester_with_its_reason() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (_, pending) = ask(&local, "hackathon", None).await;
    let id = pending["id"].as_str().unwrap();
    let (status, refused) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/deny"),
            Some(BOB),
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["field"], "reason");
    let (status, _) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/deny"),
            Some(BOB),
            Some(json!({"reason": "use the shared sandbox this week"})),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let seen = account(&local, id).await;
    assert_eq!(seen["state"], "closed");
    assert_eq!(seen["decision"]["outcome"], "denied");
    assert_eq!(
        seen["decision"]["reason"],
        "use the shared sandbox this week"
    );
    local.settle().await;
    assert_eq!(
        local.archived("AccountDenied")[0]["reason"],
        "use the shared sandbox this week"
    );
}

/// The emails in the local outbox, soft line breaks undone.
fn mails(local: &local::Local) -> Vec<String> {
    crate::access::outbox(local.dir.path())
        .into_iter()
        .map(|m| m.replace("=\r\n", "").replace("=3D", "="))
        .collect()
}

#[tokio::test]
async fn the_approver_is_emailed_the_request_and_the_owner_the_denial_with_its_reason() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (status, team) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"quota": 3, "members": [ANA, "bob@example.com"],
                "approvers": ["bob@example.com"]})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    let (_, pending) = ask(&local, "hackathon", None).await;
    assert_eq!(pending["state"], "pending_approval");
    let id = pending["id"].as_str().unwrap();

    local.settle().await;
    let mails_now = mails(&local);
    let to_bob = mails_now
        .iter()
        .find(|m| m.contains("To: bob@example.com") && m.contains("Approval needed"))
        .unwrap_or_else(|| panic!("no approval request to bob among {mails_now:?}"));
    for part in [
        "ana@example.com asks for an AWS account in team payments",
        "Template: template hackathon (version 1)",
        "Lease: 2 days from approval",
        &format!("purser approvals approve {id}"),
    ] {
        assert!(to_bob.contains(part), "{part} in {to_bob}");
    }
    assert!(
        !mails_now
            .iter()
            .any(|m| m.contains("To: ana@example.com") && m.contains("Approval needed")),
        "the requester cannot decide: {mails_now:?}"
    );

    let (status, denied) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/deny"),
            Some("bob@example.com"),
            Some(json!({"reason": "use the shared sandbox this week"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{denied}");
    local.settle().await;
    let mails_now = mails(&local);
    let to_ana: Vec<&String> = mails_now
        .iter()
        .filter(|m| m.contains("To: ana@example.com"))
        .collect();
    assert_eq!(
        to_ana.len(),
        1,
        "the denial, not its closing too: {to_ana:?}"
    );
    assert!(
        to_ana[0].contains(&format!("request {id} is denied"))
            && to_ana[0].contains("denied by bob@example.com")
            && to_ana[0].contains("Reason: use the shared sandbox this week"),
        "{}",
        to_ana[0]
    );
    let kinds: Vec<String> = purser_local::notifier::sent(local.running.db())
        .unwrap()
        .into_iter()
        .filter(|n| n.recipient == "email ana@example.com")
        .map(|n| n.kind)
        .collect();
    assert_eq!(kinds, ["AccountDenied"]);
}

#[tokio::test]
async fn an_extension_within_the_maximum_applies_and_one_beyond_waits_for_approval() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (_, asked) = ask(&local, "sandbox", Some(2)).await;
    let id = asked["id"].as_str().unwrap();
    let ready = until_ready(&local, id).await;
    let end = ready["lease_end"].as_str().unwrap().to_string();

    let (status, extended) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/extend"),
            Some(ANA),
            Some(json!({"days": 3})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{extended}");
    assert_eq!(extended["lease_days"], 5);
    assert_ne!(extended["lease_end"], end.as_str());

    let (status, waiting) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/extend"),
            Some(ANA),
            Some(json!({"days": 30})),
            None,
        )
        .await;
    assert_eq!(status, 202, "{waiting}");
    assert_eq!(waiting["pending_extension"]["days"], 30);
    assert_eq!(waiting["lease_end"], extended["lease_end"], "not yet");
    let (status, approved) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/approve"),
            Some(BOB),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["lease_days"], 35);
    assert!(approved["pending_extension"].is_null());
    local.settle().await;
    assert_eq!(local.archived("LeaseExtended").len(), 2);
    let (status, bad) = local
        .call_as(
            "POST",
            &format!("/accounts/{id}/extend"),
            Some(ANA),
            Some(json!({"days": 0})),
            None,
        )
        .await;
    assert_eq!((status, &bad["error"]["field"]), (400, &json!("days")));
}

#[tokio::test]
async fn a_request_over_the_templates_lease_is_refused_naming_lease_days() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (status, refused) = ask(&local, "hackathon", Some(8)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "lease_days");
    let (status, refused) = ask(&local, "no-such", None).await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (400, &json!("template"))
    );
}

#[tokio::test]
async fn pending_requests_count_against_the_quota() {
    let local = local::start().await;
    setup(&local, 2).await;
    for _ in 0..2 {
        let (status, _) = ask(&local, "hackathon", None).await;
        assert_eq!(status, 202);
    }
    let (status, refused) = ask(&local, "hackathon", None).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    let (_, team) = local.call("GET", "/teams/payments", None).await;
    assert_eq!(team["open_accounts"], 2);
}

#[tokio::test]
async fn templates_are_versioned_and_only_admins_change_them() {
    let local = local::start().await;
    setup(&local, 2).await;
    let (status, _) = local
        .call_as(
            "PUT",
            "/templates/hackathon",
            Some(ANA),
            Some(json!({"description": "x", "default_lease_days": 1})),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, v2) = local
        .call(
            "PUT",
            "/templates/hackathon",
            Some(
                json!({"description": "three days", "default_lease_days": 3, "max_lease_days": 7}),
            ),
        )
        .await;
    assert_eq!((status, &v2["version"]), (200, &json!(2)));
    let (_, listed) = local
        .call_as("GET", "/templates", Some(ANA), None, None)
        .await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hackathon", "sandbox"]);
    let (status, bad) = local
        .call(
            "PUT",
            "/templates/hackathon",
            Some(json!({"description": "x", "default_lease_days": 2, "approval": "maybe"})),
        )
        .await;
    assert_eq!((status, &bad["error"]["field"]), (400, &json!("approval")));
}

/// A template's blueprint on `purser up`: recorded as deployed into each
/// account before it is ready; a StackSet told to fail leaves the account
/// ready with CloudFormation's reason, and its owner is told.
#[tokio::test]
async fn a_blueprint_is_deployed_before_ready_and_a_failure_reaches_the_owner() {
    let local = local::start().await;
    setup(&local, 3).await;
    let (status, refused) = local
        .call(
            "PUT",
            "/templates/baseline",
            Some(
                json!({"description": "with our baseline", "default_lease_days": 3,
                "max_lease_days": 7, "approval": "never", "blueprint": "team-baseline"}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "blueprint", "{refused}");
    for (name, stack_set) in [("baseline", "purser-baseline"), ("broken", "purser-broken")] {
        let (status, t) = local
            .call(
                "PUT",
                &format!("/templates/{name}"),
                Some(
                    json!({"description": "with our baseline", "default_lease_days": 3,
                    "max_lease_days": 7, "approval": "never", "blueprint": stack_set,
                    "regions": ["eu-west-1"]}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{t}");
    }
    local
        .running
        .stack_sets()
        .fail(
            "purser-broken",
            "eu-west-1: Bucket purser-logs already exists",
        )
        .await
        .unwrap();

    let (status, asked) = ask(&local, "baseline", None).await;
    assert_eq!(status, 202, "{asked}");
    let ready = until_ready(&local, asked["id"].as_str().unwrap()).await;
    assert_eq!(
        ready["blueprint"],
        json!({"stack_set": "purser-baseline", "regions": ["eu-west-1"],
            "status": "succeeded", "reason": null})
    );
    let account_id = ready["account_id"].as_str().unwrap();
    let deployed = local
        .running
        .stack_sets()
        .deployed_into(account_id)
        .await
        .unwrap();
    assert_eq!(deployed.len(), 1, "{deployed:?}");
    assert_eq!(deployed[0].stack_set, "purser-baseline");

    let (status, asked) = ask(&local, "broken", None).await;
    assert_eq!(status, 202, "{asked}");
    let ready = until_ready(&local, asked["id"].as_str().unwrap()).await;
    assert_eq!(ready["blueprint"]["status"], "failed");
    assert_eq!(
        ready["blueprint"]["reason"],
        "eu-west-1: Bucket purser-logs already exists"
    );
    local.settle().await;
    let account = ready["account_id"].as_str().unwrap();
    let told = mails(&local).into_iter().any(|m| {
        m.contains("To: ana@example.com")
            && m.contains(account)
            && m.contains("blueprint (StackSet purser-broken) failed")
            && m.contains("Bucket purser-logs already exists")
    });
    assert!(told, "the owner hears why: {:?}", mails(&local));
}
