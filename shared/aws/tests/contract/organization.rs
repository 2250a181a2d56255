//! Contract of [`OrganizationsClient`] against moto's Organizations: the
//! Organization port's contract (`purser_contract::organization`, written
//! once and run against `SimulatedOrganization` too), read back with the
//! SDK, then what only this adapter does: AWS's answers taken as done
//! (an account already closed, a document that differs only in spacing, a
//! duplicate attachment or policy) or mapped to the port's errors, and the
//! management account left out of the member count.
//!
//! moto keeps one organization per server (per caller account), shared by
//! every test that runs against it: the first test creates it, and each
//! test uses emails, OU and policy names of its own (the contract's fixture
//! is `shared`). Where moto is not AWS:
//!
//! - `CreateAccount` is `SUCCEEDED` at once (AWS: `IN_PROGRESS` for minutes,
//!   completion announced by a `CreateAccountResult` event), never fails,
//!   and accepts an email already in use (AWS: `FAILED` with
//!   `EMAIL_ALREADY_EXISTS`). The failure path is covered in the domain
//!   with a test double of the port, and in the simulated organization.
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
//! - Service control policies: moto attaches and lists them without SCPs
//!   being enabled on the root (AWS: `PolicyTypeNotEnabledException`; the
//!   organization here enables them anyway, as AWS requires), attaches
//!   `FullAWSAccess` (`p-FullAWSAccess`) to every new account as AWS does,
//!   and accepts any text as a policy document (AWS:
//!   `MalformedPolicyDocumentException`, and
//!   `ConstraintViolationException` past 5,120 characters). It answers a
//!   second attachment and the detachment of a policy that is not attached
//!   with success (AWS: `DuplicatePolicyAttachmentException`,
//!   `PolicyNotAttachedException`), does not enforce AWS's five SCPs per
//!   target (AWS: `ConstraintViolationException` with reason
//!   `MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED`; the contract's fixture is
//!   `without_scp_limit`), and names an unknown
//!   account `AccountNotFoundException` (AWS: `TargetNotFoundException`;
//!   both `NotFound`). It lets the last SCP of a target be detached (AWS:
//!   `MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED`), which no test here does. The answers moto does not give are sent to the
//!   adapter as AWS documents them by a connector that stands in for
//!   Organizations on chosen operations (`aws_answers_moto_does_not_give`).

use aws_config::SdkConfig;
use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use purser_aws::OrganizationsClient;
use purser_contract::organization::{Fixture, Observer};
use purser_core::{CreationState, MemberStatus, Organization, OrganizationError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Whether this process made sure moto has an organization.
static ORGANIZATION: OnceCell<()> = OnceCell::const_new();

/// The adapter and a plain SDK client on moto, with an organization (all
/// features) in place. Tests share it, so its creation happens once.
async fn organization() -> Option<(OrganizationsClient, aws_sdk_organizations::Client)> {
    let config: SdkConfig = crate::common::moto_config().await?;
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
            // AWS attaches no SCP until they are enabled on the root; moto
            // does not require it, but the organization is set up as on AWS.
            let roots = client.list_roots().send().await.expect("ListRoots");
            let root = roots
                .roots()
                .first()
                .and_then(|r| r.id())
                .expect("a root")
                .to_owned();
            let enabled = client
                .enable_policy_type()
                .root_id(root)
                .policy_type(PolicyType::ServiceControlPolicy)
                .send()
                .await;
            match enabled {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_policy_type_already_enabled_exception()) => {}
                Err(e) => panic!(
                    "EnablePolicyType: {}",
                    aws_sdk_organizations::error::DisplayErrorContext(&e)
                ),
            }
        })
        .await;
    Some((OrganizationsClient::from_config(&config), client))
}

/// The organization's management account, as DescribeOrganization names it.
async fn management(client: &aws_sdk_organizations::Client) -> String {
    client
        .describe_organization()
        .send()
        .await
        .expect("DescribeOrganization")
        .organization()
        .and_then(|o| o.master_account_id().map(str::to_owned))
        .expect("a management account")
}

/// Organizations' own API, read with the SDK.
struct Sdk {
    client: aws_sdk_organizations::Client,
}

impl Observer for Sdk {
    async fn account(&self, account_id: &str) -> (String, String) {
        let described = self
            .client
            .describe_account()
            .account_id(account_id)
            .send()
            .await
            .expect("DescribeAccount");
        let account = described.account().expect("the account");
        (
            account.email().expect("an email").to_owned(),
            account.name().expect("a name").to_owned(),
        )
    }

    async fn parent(&self, child_id: &str) -> String {
        parent(&self.client, child_id).await
    }

    async fn tags(&self, account_id: &str) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        let mut pages = self
            .client
            .list_tags_for_resource()
            .resource_id(account_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.expect("ListTagsForResource");
            tags.extend(
                page.tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned())),
            );
        }
        tags
    }

    async fn document(&self, policy_id: &str) -> String {
        content(&self.client, policy_id).await
    }

    async fn policies_named(&self, name: &str) -> Vec<String> {
        named(&self.client, name).await
    }

    async fn pause(&self) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The shared organization on moto, for each of the contract's scenarios
/// (see the module doc).
async fn fresh() -> Option<Fixture<Sdk>> {
    let (organization, client) = organization().await?;
    let management = management(&client).await;
    Some(
        Fixture::new(Arc::new(organization), Sdk { client }, management)
            .shared()
            .without_scp_limit(),
    )
}

purser_contract::organization_contract!(fresh);

/// An email no other account of the shared organization has.
fn email() -> String {
    format!("{}@example.com", crate::common::unique("dev"))
}

/// The parent of an account or OU, as ListParents reports it.
async fn parent(client: &aws_sdk_organizations::Client, child_id: &str) -> String {
    let parents = client
        .list_parents()
        .child_id(child_id)
        .send()
        .await
        .expect("ListParents");
    let [parent] = parents.parents() else {
        panic!("one parent, got {:?}", parents.parents());
    };
    parent.id().expect("a parent id").to_owned()
}

/// moto creates and closes at once, where AWS takes minutes (the contract
/// polls for both); closing an account AWS has closed already, which it
/// refuses with `AccountAlreadyClosedException`, is what was asked.
#[tokio::test]
async fn moto_creates_and_closes_at_once_and_closing_a_closed_account_is_done() {
    let Some((organization, _)) = organization().await else {
        return;
    };
    let created = organization
        .create_account(&email(), "payments-at-once", &[])
        .await
        .unwrap();
    assert_eq!(created.state, CreationState::Succeeded);
    assert_eq!(
        organization.creation_status(&created.id).await.unwrap(),
        created
    );
    let account_id = created.account_id.expect("an account id");

    organization.close_account(&account_id).await.unwrap();
    assert_eq!(
        organization.member_status(&account_id).await.unwrap(),
        MemberStatus::Suspended
    );
    organization
        .close_account(&account_id)
        .await
        .expect("closing a closed account is what was asked");
    assert_eq!(
        organization.member_status(&account_id).await.unwrap(),
        MemberStatus::Suspended
    );
}

/// The members the closure quota is a tenth of are the accounts besides
/// the management one.
#[tokio::test]
async fn the_management_account_is_not_counted_as_a_member() {
    let Some((organization, client)) = organization().await else {
        return;
    };
    organization
        .create_account(&email(), "core-count", &[])
        .await
        .unwrap();
    let management = management(&client).await;
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

// ------------------------------------------------------------ policies

/// A deny-all document, as the freeze policy is (without its exemptions).
const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Freeze","Effect":"Deny","Action":"*","Resource":"*"}]}"#;

/// The document of policy `id`, as DescribePolicy gives it.
async fn content(client: &aws_sdk_organizations::Client, id: &str) -> String {
    client
        .describe_policy()
        .policy_id(id)
        .send()
        .await
        .expect("DescribePolicy")
        .policy()
        .and_then(|p| p.content())
        .expect("a document")
        .to_owned()
}

/// The ids of the organization's SCPs named `name`.
async fn named(client: &aws_sdk_organizations::Client, name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut pages = client
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListPolicies");
        ids.extend(
            page.policies()
                .iter()
                .filter(|p| p.name() == Some(name))
                .filter_map(|p| p.id().map(str::to_owned)),
        );
    }
    ids
}

/// The adapter compares documents as JSON: the same document, spaced
/// otherwise, is the policy as asked, and is not written again.
#[tokio::test]
async fn a_document_spaced_otherwise_is_not_written_again() {
    let Some((organization, client)) = organization().await else {
        return;
    };
    let name = crate::common::unique("purser-spaced");
    let description = "Purser: denies everything while the team is over budget";
    let id = organization
        .ensure_policy(&name, description, DENY_ALL)
        .await
        .unwrap();
    let spaced = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(DENY_ALL).expect("JSON"),
    )
    .expect("JSON");
    assert_ne!(spaced, DENY_ALL);
    assert_eq!(
        organization
            .ensure_policy(&name, description, &spaced)
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        content(&client, &id).await,
        DENY_ALL,
        "the same document, spaced otherwise, is not written again"
    );
    assert_eq!(named(&client, &name).await, [id.as_str()]);
}

/// A connector that answers one operation of Organizations with `answer`
/// (after moto has carried the request out, when `forward`), and sends
/// every other request to moto.
#[derive(Debug)]
struct Answering {
    inner: SharedHttpConnector,
    operation: &'static str,
    forward: bool,
    answer: &'static str,
}

impl HttpConnector for Answering {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = format!("AWSOrganizationsV20161128.{}", self.operation);
        if request.headers().get("x-amz-target") != Some(target.as_str()) {
            return self.inner.call(request);
        }
        let (inner, forward, answer) = (self.inner.clone(), self.forward, self.answer);
        HttpConnectorFuture::new(async move {
            if forward {
                inner.call(request).await?;
            }
            let mut response = HttpResponse::new(
                StatusCode::try_from(400).expect("a status"),
                SdkBody::from(answer),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
            Ok(response)
        })
    }
}

/// The adapter on `config`, with `operation` answered as `answer` says.
fn answering(
    config: &SdkConfig,
    operation: &'static str,
    forward: bool,
    answer: &'static str,
) -> OrganizationsClient {
    // Plain HTTP, as moto listens on the loopback.
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let client = http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Answering {
            inner: inner.http_connector(settings, components),
            operation,
            forward,
            answer,
        })
    });
    OrganizationsClient::from_config(&config.to_builder().http_client(client).build())
}

/// AWS's refusals that moto never sends, in the shape AWS documents them
/// (awsJson 1.1: `__type`, `Message`, and a `Reason` for constraints).
#[tokio::test]
async fn aws_answers_moto_does_not_give() {
    let Some((organization, client)) = organization().await else {
        return;
    };
    let config = crate::common::moto_config().await.expect("moto");
    let account_id = organization
        .create_account(&email(), "payments-answers", &[])
        .await
        .unwrap()
        .account_id
        .expect("an account id");
    let policy = organization
        .ensure_policy(
            &crate::common::unique("purser-answers"),
            "answers test",
            DENY_ALL,
        )
        .await
        .unwrap();

    answering(
        &config,
        "AttachPolicy",
        true,
        r#"{"__type":"DuplicatePolicyAttachmentException","Message":"The selected policy is already attached to the specified target."}"#,
    )
    .attach_policy(&policy, &account_id)
    .await
    .expect("already attached is attached");
    answering(
        &config,
        "DetachPolicy",
        true,
        r#"{"__type":"PolicyNotAttachedException","Message":"The policy isn't attached to the specified target in the specified root."}"#,
    )
    .detach_policy(&policy, &account_id)
    .await
    .expect("not attached is detached");

    let err = answering(
        &config,
        "AttachPolicy",
        false,
        r#"{"__type":"ConstraintViolationException","Message":"You attempted to exceed the number of policies of a certain type that can be attached to an entity at one time.","Reason":"MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"}"#,
    )
    .attach_policy(&policy, &account_id)
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OrganizationError::Constraint { reason, message }
            if reason == "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
                && message.starts_with("AttachPolicy: You attempted to exceed")),
        "{err:?}"
    );
    let err = answering(
        &config,
        "AttachPolicy",
        false,
        r#"{"__type":"PolicyTypeNotEnabledException","Message":"This operation can be performed only for enabled policy types."}"#,
    )
    .attach_policy(&policy, &account_id)
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OrganizationError::Constraint { reason, message }
            if reason == "POLICY_TYPE_NOT_ENABLED" && message.contains("EnablePolicyType")),
        "{err:?}"
    );
    let err = answering(
        &config,
        "CreatePolicy",
        false,
        r#"{"__type":"MalformedPolicyDocumentException","Message":"The provided policy document doesn't meet the requirements of the specified policy type."}"#,
    )
    .ensure_policy(&crate::common::unique("purser-malformed"), "malformed test", "{")
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OrganizationError::Constraint { reason, .. } if reason == "MALFORMED_POLICY_DOCUMENT"),
        "{err:?}"
    );

    // Another caller created the policy between this one's listing and its
    // CreatePolicy: AWS refuses the second as a duplicate, and the adapter
    // finds the first's.
    let name = crate::common::unique("purser-race");
    let id = answering(
        &config,
        "CreatePolicy",
        true,
        r#"{"__type":"DuplicatePolicyException","Message":"A policy with the same name already exists."}"#,
    )
    .ensure_policy(&name, "race test", DENY_ALL)
    .await
    .unwrap();
    assert_eq!(named(&client, &name).await, [id.as_str()]);
    assert_eq!(content(&client, &id).await, DENY_ALL);
}
