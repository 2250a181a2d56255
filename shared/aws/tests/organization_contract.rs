//! Contract of [`OrganizationsClient`] against moto's Organizations: the
//! calls Purser makes to vend an account into its team's OU, tag it and
//! close it, read back with the SDK.
//!
//! moto keeps one organization per server (per caller account), shared by
//! every test that runs against it: the first test creates it, and each
//! test uses emails and OU names of its own. Where moto is not AWS:
//!
//! - `CreateAccount` is `SUCCEEDED` at once (AWS: `IN_PROGRESS` for minutes,
//!   completion announced by a `CreateAccountResult` event), never fails,
//!   and accepts an email already in use (AWS: `FAILED` with
//!   `EMAIL_ALREADY_EXISTS`). The failure path is covered in the domain
//!   with a test double of the port, and in `src/organization.rs`.
//! - `CloseAccount` goes straight to `SUSPENDED` (AWS: `PENDING_CLOSURE`
//!   first), and has no closure quota.
//! - `CreateOrganizationalUnit` accepts a second OU of the same name under
//!   the same parent (AWS refuses it with `DuplicateOrganizationalUnitException`,
//!   which the adapter takes as "already there"): so tests never create the
//!   same OU concurrently, and each uses a top-level OU of its own instead
//!   of sharing `purser`.
//! - An unknown `CreateAccountRequestId` is `AccountNotFoundException`
//!   (AWS: `CreateAccountStatusNotFoundException`); both are `NotFound`.
//! - It never throttles nor reports a concurrent modification: the mapping
//!   of those errors is unit-tested with the SDK's own error types.

mod common;

use aws_config::SdkConfig;
use aws_sdk_organizations::types::OrganizationFeatureSet;
use purser_aws::OrganizationsClient;
use purser_core::{CreationState, MemberStatus, Organization, OrganizationError};
use tokio::sync::OnceCell;

/// Whether this process made sure moto has an organization.
static ORGANIZATION: OnceCell<()> = OnceCell::const_new();

/// The adapter and a plain SDK client on moto, with an organization (all
/// features) in place. Tests share it, so its creation happens once.
async fn organization() -> Option<(OrganizationsClient, aws_sdk_organizations::Client)> {
    let config: SdkConfig = common::moto_config().await?;
    let client = aws_sdk_organizations::Client::new(&config);
    ORGANIZATION
        .get_or_init(|| async {
            let created = client
                .create_organization()
                .feature_set(OrganizationFeatureSet::All)
                .send()
                .await;
            match created {
                Ok(_) => {}
                // Another test run against the same server made it.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_already_in_organization_exception()) => {}
                Err(e) => panic!(
                    "CreateOrganization: {}",
                    aws_sdk_organizations::error::DisplayErrorContext(&e)
                ),
            }
        })
        .await;
    Some((OrganizationsClient::from_config(&config), client))
}

/// An email no other account of the shared organization has.
fn email() -> String {
    format!("{}@example.com", common::unique("dev"))
}

fn tags(team: &str) -> Vec<(String, String)> {
    vec![
        ("purser:team".to_owned(), team.to_owned()),
        ("purser:owner".to_owned(), "ana@example.com".to_owned()),
    ]
}

/// The account's parent, as ListParents reports it.
async fn parent(client: &aws_sdk_organizations::Client, account_id: &str) -> String {
    let parents = client
        .list_parents()
        .child_id(account_id)
        .send()
        .await
        .expect("ListParents");
    let [parent] = parents.parents() else {
        panic!("one parent, got {:?}", parents.parents());
    };
    parent.id().expect("a parent id").to_owned()
}

#[tokio::test]
async fn vends_an_account_into_its_team_ou_and_closes_it() {
    let Some((organization, client)) = organization().await else {
        return;
    };
    let members_before = organization.member_account_count().await.unwrap();

    let email = email();
    let created = organization
        .create_account(&email, "payments-contract tests", &tags("payments"))
        .await
        .unwrap();
    assert!(created.id.starts_with("car-"), "{created:?}");
    // moto: at once. AWS: IN_PROGRESS, with no account id yet.
    assert_eq!(created.state, CreationState::Succeeded);
    let account_id = created.account_id.clone().expect("an account id");
    assert_eq!(account_id.len(), 12);
    assert_eq!(created.failure_reason, None);

    assert_eq!(
        organization.creation_status(&created.id).await.unwrap(),
        created
    );
    let described = client
        .describe_account()
        .account_id(&account_id)
        .send()
        .await
        .expect("DescribeAccount");
    let described = described.account().expect("the account");
    assert_eq!(described.email(), Some(email.as_str()));
    assert_eq!(described.name(), Some("payments-contract tests"));

    // The team's OU, below a top-level OU of this test's own (see above).
    let top = common::unique("purser");
    let ou = organization.ensure_ou(&[&top, "payments"]).await.unwrap();
    assert!(ou.starts_with("ou-"), "{ou}");
    assert_eq!(
        organization.ensure_ou(&[&top, "payments"]).await.unwrap(),
        ou,
        "the second call finds what the first made"
    );
    let other = organization.ensure_ou(&[&top, "core"]).await.unwrap();
    assert_ne!(other, ou);
    let top_id = organization.ensure_ou(&[&top]).await.unwrap();
    assert_eq!(parent(&client, &ou).await, top_id);
    assert_eq!(parent(&client, &other).await, top_id);

    let root = parent(&client, &account_id).await;
    assert!(
        root.starts_with("r-"),
        "new accounts start in the root: {root}"
    );
    organization.move_account(&account_id, &ou).await.unwrap();
    assert_eq!(parent(&client, &account_id).await, ou);
    organization
        .move_account(&account_id, &ou)
        .await
        .expect("moving it where it is changes nothing");
    assert_eq!(parent(&client, &account_id).await, ou);

    let mut wanted = tags("payments");
    wanted.push(("purser:request".to_owned(), "r-0123456789ab".to_owned()));
    organization
        .tag_account(&account_id, &wanted)
        .await
        .unwrap();
    let listed = client
        .list_tags_for_resource()
        .resource_id(&account_id)
        .send()
        .await
        .expect("ListTagsForResource");
    let mut found: Vec<(String, String)> = listed
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    found.sort();
    wanted.sort();
    assert_eq!(found, wanted);

    assert_eq!(
        organization.member_status(&account_id).await.unwrap(),
        MemberStatus::Active
    );
    let members_after = organization.member_account_count().await.unwrap();
    assert!(
        members_after > members_before,
        "{members_before} then {members_after} (other tests may add accounts, none removes one)"
    );

    organization.close_account(&account_id).await.unwrap();
    // moto: straight to SUSPENDED. AWS: PENDING_CLOSURE for a while first.
    assert_eq!(
        organization.member_status(&account_id).await.unwrap(),
        MemberStatus::Suspended
    );
    organization
        .close_account(&account_id)
        .await
        .expect("closing a closed account is what was asked");
}

#[tokio::test]
async fn the_management_account_is_not_counted_as_a_member() {
    let Some((organization, client)) = organization().await else {
        return;
    };
    organization
        .create_account(&email(), "core-count", &[])
        .await
        .unwrap();
    let management = client
        .describe_organization()
        .send()
        .await
        .expect("DescribeOrganization")
        .organization()
        .and_then(|o| o.master_account_id().map(str::to_owned))
        .expect("a management account");
    // Counted between two listings, as other tests may add accounts meanwhile.
    let listed_before = list_accounts(&client).await;
    let members = organization.member_account_count().await.unwrap();
    let listed_after = list_accounts(&client).await;
    assert!(listed_before.contains(&management));
    let (low, high) = (listed_before.len() - 1, listed_after.len() - 1);
    assert!(
        (low..=high).contains(&usize::try_from(members).unwrap()),
        "{members} members, {low}..={high} accounts besides the management one"
    );
}

async fn list_accounts(client: &aws_sdk_organizations::Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListAccounts");
        ids.extend(
            page.accounts()
                .iter()
                .filter_map(|a| a.id().map(str::to_owned)),
        );
    }
    ids
}

#[tokio::test]
async fn unknown_accounts_and_creations_are_not_found() {
    let Some((organization, _)) = organization().await else {
        return;
    };
    let unknown = "000000000000";
    for err in [
        organization.member_status(unknown).await.unwrap_err(),
        organization
            .move_account(unknown, "ou-abcd-12345678")
            .await
            .unwrap_err(),
        organization
            .tag_account(unknown, &tags("payments"))
            .await
            .unwrap_err(),
        organization.close_account(unknown).await.unwrap_err(),
        organization
            .creation_status("car-0123456789abcdef0123456789abcdef")
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, OrganizationError::NotFound(_)),
            "expected NotFound, got {err:?}"
        );
        assert!(!err.is_retryable());
    }
}
