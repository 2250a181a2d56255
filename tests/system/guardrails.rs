//! Guardrails on vended accounts, end to end on `purser up` (issue 14):
//! every account becomes ready with the guardrail SCPs attached, so the
//! simulated organization refuses what a developer account must not do
//! (reserved capacity, the largest instances) while the roles a freeze
//! exempts keep working; a lease template's regions keep its accounts to
//! them.

use purser_local::organization::{Decision, ScpRequest};
use serde_json::json;

use crate::common::local::{DEV, Local, start};

const DEVELOPER: &str = "arn:aws:iam::{account}:role/developer";

async fn may(local: &Local, account: &str, action: &str, region: &str) -> Decision {
    let principal = DEVELOPER.replace("{account}", account);
    local
        .running
        .organization()
        .authorize(account, &ScpRequest::new(&principal, action, region))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ready_account_works_under_the_guardrails() {
    let local = start().await;
    let (_, account) = local.ready_account().await;
    assert!(
        may(&local, &account, "ec2:DescribeInstances", "us-east-1")
            .await
            .is_allowed()
    );
    let denied = may(
        &local,
        &account,
        "ec2:PurchaseReservedInstancesOffering",
        "us-east-1",
    )
    .await;
    assert!(
        matches!(&denied, Decision::ExplicitlyDenied { policy, .. } if policy.starts_with("purser-guardrail")),
        "{denied:?}"
    );
    assert!(
        !may(
            &local,
            &account,
            "organizations:LeaveOrganization",
            "us-east-1"
        )
        .await
        .is_allowed()
    );
    // The role Purser reaches member accounts through is not bound.
    let purser = format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole");
    let decision = local
        .running
        .organization()
        .authorize(
            &account,
            &ScpRequest::new(
                &purser,
                "ec2:PurchaseReservedInstancesOffering",
                "us-east-1",
            ),
        )
        .await
        .unwrap();
    assert!(decision.is_allowed(), "{decision:?}");
}

#[tokio::test]
async fn a_template_keeps_its_accounts_to_its_regions() {
    let local = start().await;
    local
        .call("PUT", "/teams/payments", Some(json!({"members": [DEV]})))
        .await;
    let (status, t) = local
        .call(
            "PUT",
            "/templates/eu-only",
            Some(
                json!({"description": "work in Ireland", "default_lease_days": 3,
                "max_lease_days": 7, "approval": "never", "regions": ["eu-west-1"]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    let (status, body) = local
        .call(
            "POST",
            "/accounts",
            Some(
                json!({"team": "payments", "owner": "ana@example.com", "purpose": "eu",
                "template": "eu-only"}),
            ),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mut account = String::new();
    local
        .until("the account is ready", async |l| {
            let (_, a) = l.call("GET", &format!("/accounts/{id}"), None).await;
            account = a["account_id"].as_str().unwrap_or_default().to_string();
            a["state"] == "ready"
        })
        .await;
    assert!(
        may(&local, &account, "s3:CreateBucket", "eu-west-1")
            .await
            .is_allowed()
    );
    assert!(
        !may(&local, &account, "s3:CreateBucket", "us-east-1")
            .await
            .is_allowed()
    );
    // Global services are not regional.
    assert!(
        may(&local, &account, "iam:CreateRole", "us-east-1")
            .await
            .is_allowed()
    );
    let names: Vec<String> = local
        .running
        .organization()
        .attached_policies(&account)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert!(
        names.iter().any(|n| n.contains("eu-only-v1")),
        "the template's guardrails are attached: {names:?}"
    );
}
