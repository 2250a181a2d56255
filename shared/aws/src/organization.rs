//! The [`Organization`] port on AWS Organizations.
//!
//! Organizations changes slowly and asynchronously: `CreateAccount` and
//! `CloseAccount` only start work, and an OU or a move may already have
//! been made by an earlier attempt of the same step. Every method here is
//! therefore safe to repeat: it looks before it changes, and takes "it is
//! already so" answers (a duplicate OU, an account already in place or
//! already closed) as success.
//!
//! Service control policies are found by name (Purser names its own), and
//! their content is read before it is written, so `ensure_policy` changes
//! nothing when the policy is as asked. Attaching what is attached, and
//! detaching what is not, are taken as done.
//!
//! AWS's refusals reach the domain as [`OrganizationError`]s it can act on:
//! throttling and concurrent changes are retryable, a constraint carries
//! AWS's reason code (`ACCOUNT_NUMBER_LIMIT_EXCEEDED`, …), a missing
//! account, parent or policy is `NotFound`; a malformed policy document and
//! SCPs not enabled in the organization are constraints of their own
//! (`MALFORMED_POLICY_DOCUMENT`, `POLICY_TYPE_NOT_ENABLED`); anything else
//! is `Unavailable`, with the SDK's whole account of the failure.

use async_trait::async_trait;
use aws_sdk_organizations::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_organizations::operation::attach_policy::AttachPolicyError;
use aws_sdk_organizations::operation::close_account::CloseAccountError;
use aws_sdk_organizations::operation::create_account::CreateAccountError;
use aws_sdk_organizations::operation::create_organizational_unit::CreateOrganizationalUnitError;
use aws_sdk_organizations::operation::create_policy::CreatePolicyError;
use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
use aws_sdk_organizations::operation::describe_create_account_status::DescribeCreateAccountStatusError;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::operation::describe_policy::DescribePolicyError;
use aws_sdk_organizations::operation::detach_policy::DetachPolicyError;
use aws_sdk_organizations::operation::list_accounts::ListAccountsError;
use aws_sdk_organizations::operation::list_create_account_status::ListCreateAccountStatusError;
use aws_sdk_organizations::operation::list_organizational_units_for_parent::ListOrganizationalUnitsForParentError;
use aws_sdk_organizations::operation::list_parents::ListParentsError;
use aws_sdk_organizations::operation::list_policies::ListPoliciesError;
use aws_sdk_organizations::operation::list_policies_for_target::ListPoliciesForTargetError;
use aws_sdk_organizations::operation::list_roots::ListRootsError;
use aws_sdk_organizations::operation::move_account::MoveAccountError;
use aws_sdk_organizations::operation::tag_resource::TagResourceError;
use aws_sdk_organizations::operation::update_policy::UpdatePolicyError;
use aws_sdk_organizations::types::{
    AccountState, AccountStatus, CreateAccountState, CreateAccountStatus, PolicyType, Tag,
};
use purser_core::{CreationState, CreationStatus, MemberStatus, Organization, OrganizationError};

/// Purser's organization: the management account (or a delegated
/// administrator) that Purser's role acts in.
#[derive(Debug, Clone)]
pub struct OrganizationsClient {
    client: aws_sdk_organizations::Client,
}

impl OrganizationsClient {
    pub fn new(client: aws_sdk_organizations::Client) -> Self {
        Self { client }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_organizations::Client::new(config))
    }

    /// The id of the organization's root (an organization has one).
    async fn root(&self) -> Result<String, OrganizationError> {
        let mut pages = self.client.list_roots().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListRoots", e))?;
            if let Some(id) = page.roots().iter().find_map(|r| r.id()) {
                return Ok(id.to_owned());
            }
        }
        Err(OrganizationError::NotFound(
            "ListRoots: the organization has no root".into(),
        ))
    }

    /// The id of the OU named `name` directly under `parent`, if any.
    async fn child_ou(
        &self,
        parent: &str,
        name: &str,
    ) -> Result<Option<String>, OrganizationError> {
        let mut pages = self
            .client
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListOrganizationalUnitsForParent", e))?;
            if let Some(id) = page
                .organizational_units()
                .iter()
                .find(|ou| ou.name() == Some(name))
                .and_then(|ou| ou.id())
            {
                return Ok(Some(id.to_owned()));
            }
        }
        Ok(None)
    }

    /// The OU named `name` under `parent`, created if missing. Two callers
    /// may create it at once: AWS refuses the second as a duplicate, which
    /// then finds the first's.
    async fn ensure_child_ou(&self, parent: &str, name: &str) -> Result<String, OrganizationError> {
        if let Some(id) = self.child_ou(parent, name).await? {
            return Ok(id);
        }
        let created = self
            .client
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await;
        match created {
            Ok(output) => {
                let id = output
                    .organizational_unit()
                    .and_then(|ou| ou.id())
                    .ok_or_else(|| {
                        OrganizationError::Unavailable(format!(
                            "CreateOrganizationalUnit {name:?} under {parent} answered without an id"
                        ))
                    })?;
                tracing::info!(parent, name, ou = id, "organizational unit created");
                Ok(id.to_owned())
            }
            Err(e)
                if e.as_service_error().is_some_and(
                    CreateOrganizationalUnitError::is_duplicate_organizational_unit_exception,
                ) =>
            {
                self.child_ou(parent, name).await?.ok_or_else(|| {
                    OrganizationError::ConcurrentModification(format!(
                        "CreateOrganizationalUnit: {name:?} under {parent} is said to exist, \
                         but is not listed yet"
                    ))
                })
            }
            Err(e) => Err(error("CreateOrganizationalUnit", e)),
        }
    }

    /// The account's parent (a root or an OU).
    async fn parent(&self, account_id: &str) -> Result<String, OrganizationError> {
        let output = self
            .client
            .list_parents()
            .child_id(account_id)
            .send()
            .await
            .map_err(|e| error("ListParents", e))?;
        output
            .parents()
            .iter()
            .find_map(|p| p.id())
            .map(str::to_owned)
            .ok_or_else(|| {
                OrganizationError::NotFound(format!(
                    "ListParents: account {account_id} has no parent"
                ))
            })
    }

    async fn describe_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError> {
        let output = self
            .client
            .describe_account()
            .account_id(account_id)
            .send()
            .await
            .map_err(|e| error("DescribeAccount", e))?;
        let account = output.account().ok_or_else(|| {
            OrganizationError::Unavailable(format!(
                "DescribeAccount {account_id} answered without an account"
            ))
        })?;
        member_status(account.state(), account.status()).ok_or_else(|| {
            OrganizationError::Unavailable(format!(
                "DescribeAccount {account_id}: a state Purser does not know ({:?}, {:?})",
                account.state(),
                account.status()
            ))
        })
    }

    /// The id of the service control policy named `name`, if any.
    async fn find_policy(&self, name: &str) -> Result<Option<String>, OrganizationError> {
        let mut pages = self
            .client
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListPolicies", e))?;
            if let Some(id) = page
                .policies()
                .iter()
                .find(|p| p.name() == Some(name))
                .and_then(|p| p.id())
            {
                return Ok(Some(id.to_owned()));
            }
        }
        Ok(None)
    }

    /// Gives policy `id` the document `content` (and `description`), unless
    /// it has that document already.
    async fn update_policy_if_changed(
        &self,
        id: &str,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<(), OrganizationError> {
        let described = self
            .client
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(|e| error("DescribePolicy", e))?;
        let current = described.policy().and_then(|p| p.content());
        if current.is_some_and(|current| same_document(current, content)) {
            tracing::debug!(policy_id = id, name, "policy already as asked");
            return Ok(());
        }
        self.client
            .update_policy()
            .policy_id(id)
            .description(description)
            .content(content)
            .send()
            .await
            .map_err(|e| error("UpdatePolicy", e))?;
        tracing::info!(policy_id = id, name, "policy updated");
        Ok(())
    }
}

#[async_trait]
impl Organization for OrganizationsClient {
    async fn create_account(
        &self,
        email: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<CreationStatus, OrganizationError> {
        let output = self
            .client
            .create_account()
            .email(email)
            .account_name(name)
            .set_tags(aws_tags(tags)?)
            .send()
            .await
            .map_err(|e| error("CreateAccount", e))?;
        let status = creation_status("CreateAccount", output.create_account_status())?;
        tracing::info!(
            account_name = name,
            creation_id = %status.id,
            state = ?status.state,
            "CreateAccount started"
        );
        Ok(status)
    }

    async fn creation_status(
        &self,
        creation_id: &str,
    ) -> Result<CreationStatus, OrganizationError> {
        let output = self
            .client
            .describe_create_account_status()
            .create_account_request_id(creation_id)
            .send()
            .await
            .map_err(|e| error("DescribeCreateAccountStatus", e))?;
        creation_status(
            "DescribeCreateAccountStatus",
            output.create_account_status(),
        )
    }

    async fn find_creation(
        &self,
        email: &str,
        name: &str,
    ) -> Result<Option<CreationStatus>, OrganizationError> {
        let mut account_id = None;
        let mut accounts = self.client.list_accounts().into_paginator().send();
        while let Some(page) = accounts.next().await {
            let page = page.map_err(|e| error("ListAccounts", e))?;
            if let Some(found) = page
                .accounts()
                .iter()
                .find(|a| a.email().is_some_and(|e| e.eq_ignore_ascii_case(email)))
            {
                account_id = found.id().map(str::to_owned);
                break;
            }
        }
        // Once the account exists its creation is found by its id; before,
        // only the name tells (AWS reports no email of a creation).
        let state = if account_id.is_some() {
            CreateAccountState::Succeeded
        } else {
            CreateAccountState::InProgress
        };
        let matches = |s: &CreateAccountStatus| match &account_id {
            Some(id) => s.account_id() == Some(id.as_str()),
            None => s.account_name() == Some(name),
        };
        let mut statuses = self
            .client
            .list_create_account_status()
            .states(state)
            .into_paginator()
            .send();
        while let Some(page) = statuses.next().await {
            let page = page.map_err(|e| error("ListCreateAccountStatus", e))?;
            if let Some(found) = page.create_account_statuses().iter().find(|s| matches(s)) {
                return creation_status("ListCreateAccountStatus", Some(found)).map(Some);
            }
        }
        Ok(None)
    }

    async fn ensure_ou(&self, path: &[&str]) -> Result<String, OrganizationError> {
        let mut id = self.root().await?;
        for name in path {
            id = self.ensure_child_ou(&id, name).await?;
        }
        Ok(id)
    }

    /// `MoveAccount` needs the account's current parent: it is read first,
    /// and read again if the move is refused, since another call may have
    /// moved the account in between (or an earlier attempt of this one).
    async fn move_account(&self, account_id: &str, ou_id: &str) -> Result<(), OrganizationError> {
        let source = self.parent(account_id).await?;
        if source == ou_id {
            tracing::debug!(account_id, ou = ou_id, "account already in its OU");
            return Ok(());
        }
        let moved = self
            .client
            .move_account()
            .account_id(account_id)
            .source_parent_id(&source)
            .destination_parent_id(ou_id)
            .send()
            .await;
        match moved {
            Ok(_) => {
                tracing::info!(account_id, from = %source, ou = ou_id, "account moved");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(MoveAccountError::is_duplicate_account_exception) =>
            {
                tracing::debug!(account_id, ou = ou_id, "account already in its OU");
                Ok(())
            }
            Err(e) => {
                let refused = error("MoveAccount", e);
                if matches!(
                    refused,
                    OrganizationError::NotFound(_) | OrganizationError::ConcurrentModification(_)
                ) && self.parent(account_id).await? == ou_id
                {
                    return Ok(());
                }
                Err(refused)
            }
        }
    }

    async fn tag_account(
        &self,
        account_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), OrganizationError> {
        let Some(tags) = aws_tags(tags)? else {
            return Ok(());
        };
        self.client
            .tag_resource()
            .resource_id(account_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| error("TagResource", e))?;
        Ok(())
    }

    /// An account already closed, or whose closure is already under way,
    /// is what was asked for.
    async fn close_account(&self, account_id: &str) -> Result<(), OrganizationError> {
        let closed = self
            .client
            .close_account()
            .account_id(account_id)
            .send()
            .await;
        match closed {
            Ok(_) => {
                tracing::info!(account_id, "CloseAccount started");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(CloseAccountError::is_account_already_closed_exception) =>
            {
                tracing::debug!(account_id, "account already closed");
                Ok(())
            }
            // AWS documents no more than "conflicts with the current state":
            // a closure already in progress is one such state.
            Err(e)
                if e.as_service_error()
                    .is_some_and(CloseAccountError::is_conflict_exception) =>
            {
                match self.describe_status(account_id).await? {
                    MemberStatus::PendingClosure | MemberStatus::Suspended => Ok(()),
                    MemberStatus::Active => Err(OrganizationError::ConcurrentModification(
                        format!("CloseAccount: {}", message(&e)),
                    )),
                }
            }
            Err(e) => Err(error("CloseAccount", e)),
        }
    }

    async fn member_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError> {
        self.describe_status(account_id).await
    }

    /// Accounts listed in the organization, but for the management
    /// account, which is no member.
    async fn member_account_count(&self) -> Result<u32, OrganizationError> {
        let organization = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| error("DescribeOrganization", e))?;
        let management = organization
            .organization()
            .and_then(|o| o.master_account_id())
            .map(str::to_owned);
        let mut count: u32 = 0;
        let mut pages = self.client.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListAccounts", e))?;
            let members = page
                .accounts()
                .iter()
                .filter(|a| a.id().map(str::to_owned) != management)
                .count();
            count = count.saturating_add(u32::try_from(members).unwrap_or(u32::MAX));
        }
        Ok(count)
    }

    /// Found by name among the organization's SCPs (AWS refuses a second
    /// policy of one name), read, and updated only if its document differs.
    /// Two callers may create it at once: AWS refuses the second as a
    /// duplicate, which then finds the first's.
    async fn ensure_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, OrganizationError> {
        if let Some(id) = self.find_policy(name).await? {
            self.update_policy_if_changed(&id, name, description, content)
                .await?;
            return Ok(id);
        }
        let created = self
            .client
            .create_policy()
            .name(name)
            .description(description)
            .content(content)
            .r#type(PolicyType::ServiceControlPolicy)
            .send()
            .await;
        match created {
            Ok(output) => {
                let id = output
                    .policy()
                    .and_then(|p| p.policy_summary())
                    .and_then(|s| s.id())
                    .ok_or_else(|| {
                        OrganizationError::Unavailable(format!(
                            "CreatePolicy {name:?} answered without an id"
                        ))
                    })?;
                tracing::info!(policy_id = id, name, "policy created");
                Ok(id.to_owned())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(CreatePolicyError::is_duplicate_policy_exception) =>
            {
                let id = self.find_policy(name).await?.ok_or_else(|| {
                    OrganizationError::ConcurrentModification(format!(
                        "CreatePolicy: policy {name:?} is said to exist, but is not listed yet"
                    ))
                })?;
                self.update_policy_if_changed(&id, name, description, content)
                    .await?;
                Ok(id)
            }
            Err(e) => Err(error("CreatePolicy", e)),
        }
    }

    async fn attach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        let attached = self
            .client
            .attach_policy()
            .policy_id(policy_id)
            .target_id(account_id)
            .send()
            .await;
        match attached {
            Ok(_) => {
                tracing::info!(policy_id, account_id, "policy attached");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(AttachPolicyError::is_duplicate_policy_attachment_exception) =>
            {
                tracing::debug!(policy_id, account_id, "policy already attached");
                Ok(())
            }
            Err(e) => Err(error("AttachPolicy", e)),
        }
    }

    async fn detach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        let detached = self
            .client
            .detach_policy()
            .policy_id(policy_id)
            .target_id(account_id)
            .send()
            .await;
        match detached {
            Ok(_) => {
                tracing::info!(policy_id, account_id, "policy detached");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(DetachPolicyError::is_policy_not_attached_exception) =>
            {
                tracing::debug!(policy_id, account_id, "policy already detached");
                Ok(())
            }
            Err(e) => Err(error("DetachPolicy", e)),
        }
    }

    /// The SCPs attached to the account itself, not those it inherits from
    /// its OUs and the root (which count against their own targets' limit).
    async fn policies_of(&self, account_id: &str) -> Result<Vec<String>, OrganizationError> {
        let mut ids = Vec::new();
        let mut pages = self
            .client
            .list_policies_for_target()
            .target_id(account_id)
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListPoliciesForTarget", e))?;
            ids.extend(
                page.policies()
                    .iter()
                    .filter_map(|p| p.id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }
}

/// Whether two policy documents say the same: compared as JSON where both
/// are (AWS may give back the document with other spacing), else as text.
fn same_document(current: &str, wanted: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(current),
        serde_json::from_str::<serde_json::Value>(wanted),
    ) {
        (Ok(current), Ok(wanted)) => current == wanted,
        _ => current == wanted,
    }
}

fn aws_tags(tags: &[(String, String)]) -> Result<Option<Vec<Tag>>, OrganizationError> {
    if tags.is_empty() {
        return Ok(None);
    }
    tags.iter()
        .map(|(key, value)| {
            Tag::builder().key(key).value(value).build().map_err(|e| {
                OrganizationError::Unavailable(format!("a tag could not be built: {e}"))
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

fn creation_status(
    operation: &str,
    status: Option<&CreateAccountStatus>,
) -> Result<CreationStatus, OrganizationError> {
    let status = status.ok_or_else(|| {
        OrganizationError::Unavailable(format!("{operation} answered without a status"))
    })?;
    let id = status.id().ok_or_else(|| {
        OrganizationError::Unavailable(format!("{operation} answered a status without an id"))
    })?;
    let state = match status.state() {
        Some(CreateAccountState::Succeeded) => CreationState::Succeeded,
        Some(CreateAccountState::Failed) => CreationState::Failed,
        Some(CreateAccountState::InProgress) => CreationState::InProgress,
        // A state added after this SDK: still waiting, as far as Purser can
        // tell; the poller asks again.
        other => {
            tracing::warn!(creation_id = id, state = ?other, "an unknown creation state; taken as in progress");
            CreationState::InProgress
        }
    };
    Ok(CreationStatus {
        id: id.to_owned(),
        state,
        account_id: status.account_id().map(str::to_owned),
        failure_reason: status.failure_reason().map(|r| r.as_str().to_owned()),
    })
}

/// An account's status, from the `State` AWS reports since 2025 or else
/// the older `Status`. An account closed for good (`CLOSED`, after its 90
/// days suspended) is as closed as Purser needs; one still being activated
/// (`PENDING_ACTIVATION`) is open.
fn member_status(
    state: Option<&AccountState>,
    status: Option<&AccountStatus>,
) -> Option<MemberStatus> {
    let from_state = match state {
        Some(AccountState::Active | AccountState::PendingActivation) => Some(MemberStatus::Active),
        Some(AccountState::PendingClosure) => Some(MemberStatus::PendingClosure),
        Some(AccountState::Suspended | AccountState::Closed) => Some(MemberStatus::Suspended),
        _ => None,
    };
    from_state.or(match status {
        Some(AccountStatus::Active) => Some(MemberStatus::Active),
        Some(AccountStatus::PendingClosure) => Some(MemberStatus::PendingClosure),
        Some(AccountStatus::Suspended) => Some(MemberStatus::Suspended),
        _ => None,
    })
}

/// The `Reason` of an operation's `ConstraintViolationException`, for the
/// operations that can raise one.
trait ConstraintReason {
    fn constraint_reason(&self) -> Option<&str> {
        None
    }
}

macro_rules! constraint_reason {
    ($($error:ty),* $(,)?) => {
        $(impl ConstraintReason for $error {
            fn constraint_reason(&self) -> Option<&str> {
                match self {
                    Self::ConstraintViolationException(e) => e.reason().map(|r| r.as_str()),
                    _ => None,
                }
            }
        })*
    };
}

constraint_reason!(
    CreateAccountError,
    CreateOrganizationalUnitError,
    TagResourceError,
    CloseAccountError,
    CreatePolicyError,
    UpdatePolicyError,
    AttachPolicyError,
    DetachPolicyError,
);

impl ConstraintReason for DescribeCreateAccountStatusError {}
impl ConstraintReason for DescribeAccountError {}
impl ConstraintReason for DescribeOrganizationError {}
impl ConstraintReason for ListAccountsError {}
impl ConstraintReason for ListCreateAccountStatusError {}
impl ConstraintReason for ListOrganizationalUnitsForParentError {}
impl ConstraintReason for ListParentsError {}
impl ConstraintReason for ListRootsError {}
impl ConstraintReason for MoveAccountError {}
impl ConstraintReason for ListPoliciesError {}
impl ConstraintReason for DescribePolicyError {}
impl ConstraintReason for ListPoliciesForTargetError {}

/// AWS's message of a service error, or the SDK's account of a failure
/// that never reached the service.
fn message<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(e) => e.message().unwrap_or_default().to_owned(),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// Maps a failed call to what the domain can act on (see the module doc).
fn error<E, R>(operation: &str, error: SdkError<E, R>) -> OrganizationError
where
    E: ProvideErrorMetadata + ConstraintReason + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let Some(service) = error.as_service_error() else {
        return OrganizationError::Unavailable(format!(
            "{operation}: {}",
            DisplayErrorContext(&error)
        ));
    };
    let text = format!("{operation}: {}", message(&error));
    match service.code().unwrap_or_default() {
        "TooManyRequestsException" => OrganizationError::Throttled(text),
        // A change to a policy is still being applied: a passing state.
        "ConcurrentModificationException" | "PolicyChangesInProgressException" => {
            OrganizationError::ConcurrentModification(text)
        }
        "ConstraintViolationException" => OrganizationError::Constraint {
            reason: service.constraint_reason().unwrap_or("UNKNOWN").to_owned(),
            message: text,
        },
        "MalformedPolicyDocumentException" => OrganizationError::Constraint {
            reason: "MALFORMED_POLICY_DOCUMENT".into(),
            message: text,
        },
        "PolicyTypeNotEnabledException" => OrganizationError::Constraint {
            reason: "POLICY_TYPE_NOT_ENABLED".into(),
            message: format!(
                "{text} (enable service control policies in the organization: \
                 EnablePolicyType SERVICE_CONTROL_POLICY on its root)"
            ),
        },
        "PolicyTypeNotAvailableForOrganizationException" => OrganizationError::Constraint {
            reason: "POLICY_TYPE_NOT_AVAILABLE_FOR_ORGANIZATION".into(),
            message: format!(
                "{text} (service control policies need an organization with all features \
                 enabled, not only consolidated billing)"
            ),
        },
        code if is_not_found(code) => OrganizationError::NotFound(text),
        _ => {
            OrganizationError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error)))
        }
    }
}

fn is_not_found(code: &str) -> bool {
    matches!(
        code,
        "AccountNotFoundException"
            | "CreateAccountStatusNotFoundException"
            | "ParentNotFoundException"
            | "ChildNotFoundException"
            | "TargetNotFoundException"
            | "SourceParentNotFoundException"
            | "DestinationParentNotFoundException"
            | "OrganizationalUnitNotFoundException"
            | "RootNotFoundException"
            | "PolicyNotFoundException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_organizations::error::ErrorMetadata;
    use aws_sdk_organizations::types::ConstraintViolationExceptionReason;
    use aws_sdk_organizations::types::error::{
        AccountNotFoundException, ConcurrentModificationException, ConstraintViolationException,
        ServiceException, TooManyRequestsException,
    };

    type Failure<E> = SdkError<E, &'static str>;

    fn service<E>(e: E) -> Failure<E> {
        SdkError::service_error(e, "raw response")
    }

    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[test]
    fn throttling_and_concurrent_changes_are_retryable() {
        let throttled = service(CreateAccountError::TooManyRequestsException(
            TooManyRequestsException::builder()
                .message("slow down")
                .meta(meta("TooManyRequestsException", "slow down"))
                .build(),
        ));
        let err = error("CreateAccount", throttled);
        assert_eq!(
            err,
            OrganizationError::Throttled("CreateAccount: slow down".into())
        );
        assert!(err.is_retryable());

        let busy = service(CreateAccountError::ConcurrentModificationException(
            ConcurrentModificationException::builder()
                .message("busy")
                .meta(meta("ConcurrentModificationException", "busy"))
                .build(),
        ));
        assert!(matches!(
            error("CreateAccount", busy),
            OrganizationError::ConcurrentModification(m) if m == "CreateAccount: busy"
        ));
    }

    #[test]
    fn a_constraint_carries_aws_reason_code() {
        let refused = service(CloseAccountError::ConstraintViolationException(
            ConstraintViolationException::builder()
                .message("quota")
                .reason(ConstraintViolationExceptionReason::CloseAccountQuotaExceeded)
                .meta(meta("ConstraintViolationException", "quota"))
                .build(),
        ));
        let err = error("CloseAccount", refused);
        assert_eq!(
            err,
            OrganizationError::Constraint {
                reason: "CLOSE_ACCOUNT_QUOTA_EXCEEDED".into(),
                message: "CloseAccount: quota".into(),
            }
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn missing_things_are_not_found_and_the_rest_unavailable() {
        let missing = service(DescribeAccountError::AccountNotFoundException(
            AccountNotFoundException::builder()
                .message("no such account")
                .meta(meta("AccountNotFoundException", "no such account"))
                .build(),
        ));
        assert!(matches!(
            error("DescribeAccount", missing),
            OrganizationError::NotFound(m) if m == "DescribeAccount: no such account"
        ));

        let broken = service(DescribeAccountError::ServiceException(
            ServiceException::builder()
                .message("internal")
                .meta(meta("ServiceException", "internal"))
                .build(),
        ));
        let err = error("DescribeAccount", broken);
        assert!(
            matches!(&err, OrganizationError::Unavailable(m) if m.contains("ServiceException") && m.contains("internal")),
            "{err:?}"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn policy_refusals_say_what_to_do() {
        use aws_sdk_organizations::types::error::{
            MalformedPolicyDocumentException, PolicyChangesInProgressException,
            PolicyNotFoundException, PolicyTypeNotEnabledException,
        };
        let malformed = service(CreatePolicyError::MalformedPolicyDocumentException(
            MalformedPolicyDocumentException::builder()
                .message("bad JSON")
                .meta(meta("MalformedPolicyDocumentException", "bad JSON"))
                .build(),
        ));
        assert_eq!(
            error("CreatePolicy", malformed),
            OrganizationError::Constraint {
                reason: "MALFORMED_POLICY_DOCUMENT".into(),
                message: "CreatePolicy: bad JSON".into(),
            }
        );

        let disabled = service(AttachPolicyError::PolicyTypeNotEnabledException(
            PolicyTypeNotEnabledException::builder()
                .message("not enabled")
                .meta(meta("PolicyTypeNotEnabledException", "not enabled"))
                .build(),
        ));
        let err = error("AttachPolicy", disabled);
        assert!(
            matches!(&err, OrganizationError::Constraint { reason, message }
                if reason == "POLICY_TYPE_NOT_ENABLED"
                    && message.starts_with("AttachPolicy: not enabled")
                    && message.contains("EnablePolicyType SERVICE_CONTROL_POLICY")),
            "{err:?}"
        );
        assert!(!err.is_retryable());

        let full = service(AttachPolicyError::ConstraintViolationException(
            ConstraintViolationException::builder()
                .message("too many")
                .reason(ConstraintViolationExceptionReason::MaxPolicyTypeAttachmentLimitExceeded)
                .meta(meta("ConstraintViolationException", "too many"))
                .build(),
        ));
        assert_eq!(
            error("AttachPolicy", full),
            OrganizationError::Constraint {
                reason: "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED".into(),
                message: "AttachPolicy: too many".into(),
            }
        );

        let gone = service(DetachPolicyError::PolicyNotFoundException(
            PolicyNotFoundException::builder()
                .message("no such policy")
                .meta(meta("PolicyNotFoundException", "no such policy"))
                .build(),
        ));
        assert_eq!(
            error("DetachPolicy", gone),
            OrganizationError::NotFound("DetachPolicy: no such policy".into())
        );

        let applying = service(UpdatePolicyError::PolicyChangesInProgressException(
            PolicyChangesInProgressException::builder()
                .message("in progress")
                .meta(meta("PolicyChangesInProgressException", "in progress"))
                .build(),
        ));
        let err = error("UpdatePolicy", applying);
        assert_eq!(
            err,
            OrganizationError::ConcurrentModification("UpdatePolicy: in progress".into())
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn policy_documents_are_compared_as_json() {
        let wanted = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        let spaced = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\"}]\n}";
        assert!(same_document(spaced, wanted));
        assert!(!same_document(&wanted.replace("Deny", "Allow"), wanted));
        assert!(same_document("not json", "not json"));
        assert!(!same_document("not json", wanted));
    }

    #[test]
    fn the_new_state_wins_over_the_old_status() {
        assert_eq!(
            member_status(
                Some(&AccountState::PendingClosure),
                Some(&AccountStatus::Active)
            ),
            Some(MemberStatus::PendingClosure)
        );
        assert_eq!(
            member_status(Some(&AccountState::Closed), None),
            Some(MemberStatus::Suspended)
        );
        assert_eq!(
            member_status(None, Some(&AccountStatus::Suspended)),
            Some(MemberStatus::Suspended)
        );
        assert_eq!(
            member_status(Some(&AccountState::PendingActivation), None),
            Some(MemberStatus::Active)
        );
        assert_eq!(member_status(None, None), None);
    }

    #[test]
    fn creation_statuses_keep_aws_failure_reason() {
        let status = CreateAccountStatus::builder()
            .id("car-1")
            .state(CreateAccountState::Failed)
            .failure_reason(
                aws_sdk_organizations::types::CreateAccountFailureReason::EmailAlreadyExists,
            )
            .build();
        assert_eq!(
            creation_status("DescribeCreateAccountStatus", Some(&status)).unwrap(),
            CreationStatus {
                id: "car-1".into(),
                state: CreationState::Failed,
                account_id: None,
                failure_reason: Some("EMAIL_ALREADY_EXISTS".into()),
            }
        );
        assert!(matches!(
            creation_status("CreateAccount", None),
            Err(OrganizationError::Unavailable(_))
        ));
    }
}
