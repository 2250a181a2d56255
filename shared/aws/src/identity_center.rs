//! The [`IdentityCenter`] port on IAM Identity Center: its identity store
//! (users, found by email) and SSO admin (account assignments).
//!
//! The adapter is configured with the Identity Center instance's ARN and its
//! identity store's id. `user_by_email` is identitystore `GetUserId` on the
//! unique attribute `emails.value`; `assign` and `unassign` are
//! `CreateAccountAssignment` and `DeleteAccountAssignment` (target type
//! `AWS_ACCOUNT`, principal type `USER`), whose requests are then asked
//! about with `DescribeAccountAssignmentCreationStatus` and
//! `DescribeAccountAssignmentDeletionStatus`; `assignments` is
//! `ListAccountAssignments` (paged), its users only (not groups), in user id
//! order, each once; `permission_set` is `ListPermissionSets` (every page)
//! and `DescribePermissionSet` of each until one has the name (names are
//! unique in an instance, and compared as given).
//!
//! Removing what is not assigned succeeds: when `DeleteAccountAssignment`
//! answers `ResourceNotFoundException`, the adapter lists the assignments
//! of that account and permission set and, if the user is not among them,
//! answers a request already [`Succeeded`](RequestState::Succeeded) under
//! the id [`ALREADY_ABSENT`] (whose status is `Succeeded` too). If the
//! listing fails the same way, the permission set or instance is wrong:
//! `Denied`.
//!
//! Errors: a refusal (`AccessDeniedException`, a `ValidationException`, an
//! unknown instance or permission set, a quota) is `Denied`, with what to
//! check (the instance ARN, the permission set, Purser's role) in the
//! message; throttling, AWS's own failures (5xx), a conflicting operation in
//! progress and the network are `Unavailable`, for the caller to retry. An
//! unknown request id is `NotFound`; an email no user has is `None`, but an
//! unknown identity store is `Denied`.

use async_trait::async_trait;
use aws_sdk_identitystore::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_identitystore::operation::get_user_id::GetUserIdError;
use aws_sdk_identitystore::types::{AlternateIdentifier, ResourceType, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, PrincipalType, StatusValues, TargetType,
};
use aws_smithy_types::Document;
use purser_core::access::PermissionSet;
use purser_core::ports::{
    AccessError, Assignment, AssignmentRequest, IdentityCenter, RequestState,
};

/// The id of the request [`IdentityCenterClient::unassign`] answers when
/// there was nothing to remove: it has succeeded, and asking its status
/// says so.
pub const ALREADY_ABSENT: &str = "already-absent";

/// IAM Identity Center, through one instance and its identity store.
#[derive(Debug, Clone)]
pub struct IdentityCenterClient {
    identity_store: aws_sdk_identitystore::Client,
    sso_admin: aws_sdk_ssoadmin::Client,
    instance_arn: String,
    identity_store_id: String,
}

/// What a failed call means, before the operation says what to make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotFound,
    Denied,
    Unavailable,
}

/// Sorts an error code (and the HTTP status, when there was a response).
fn kind(code: Option<&str>, status: Option<u16>) -> Kind {
    match code {
        Some("ResourceNotFoundException") => Kind::NotFound,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "ValidationException"
            | "ServiceQuotaExceededException",
        ) => Kind::Denied,
        Some(_) | None => match status {
            // A refusal AWS gave no known code (403 without a body).
            Some(403) => Kind::Denied,
            // Throttling, ConflictException (another operation on the
            // same assignment in progress), 5xx, no response at all.
            _ => Kind::Unavailable,
        },
    }
}

/// AWS's message (or the whole error, when there was no service error).
fn message<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => {
            let code = s.code().unwrap_or("an error");
            match s.message() {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_owned(),
            }
        }
        None => DisplayErrorContext(e).to_string(),
    }
}

fn classify<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Kind
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.as_service_error().and_then(|s| s.code());
    let status = e.raw_response().map(|r| r.status().as_u16());
    kind(code, status)
}

/// A request's state from AWS's answer.
fn request(
    status: Option<&AccountAssignmentOperationStatus>,
    operation: &str,
) -> Result<AssignmentRequest, AccessError> {
    let Some(status) = status else {
        return Err(AccessError::Unavailable(format!(
            "{operation} answered no request status"
        )));
    };
    let Some(id) = status.request_id().filter(|id| !id.is_empty()) else {
        return Err(AccessError::Unavailable(format!(
            "{operation} answered a request without an id"
        )));
    };
    let state = match status.status() {
        Some(StatusValues::InProgress) => RequestState::InProgress,
        Some(StatusValues::Succeeded) => RequestState::Succeeded,
        Some(StatusValues::Failed) => RequestState::Failed(
            status
                .failure_reason()
                .filter(|r| !r.is_empty())
                .unwrap_or("IAM Identity Center gave no reason")
                .to_owned(),
        ),
        Some(other) => {
            return Err(AccessError::Unavailable(format!(
                "{operation} answered an unknown status {}",
                other.as_str()
            )));
        }
        None => {
            return Err(AccessError::Unavailable(format!(
                "{operation} answered request {id} without a status"
            )));
        }
    };
    Ok(AssignmentRequest {
        id: id.to_owned(),
        state,
    })
}

/// The listed assignments that are a user's, for `account_id` and
/// `permission_set`, in user id order, each once.
fn users_assigned(
    listed: &[aws_sdk_ssoadmin::types::AccountAssignment],
    account_id: &str,
    permission_set: &str,
) -> Vec<Assignment> {
    let mut assignments: Vec<Assignment> = listed
        .iter()
        .filter(|a| a.principal_type() == Some(&PrincipalType::User))
        .filter_map(|a| a.principal_id())
        .map(|user_id| Assignment {
            account_id: account_id.to_owned(),
            permission_set: permission_set.to_owned(),
            user_id: user_id.to_owned(),
        })
        .collect();
    assignments.sort();
    assignments.dedup();
    assignments
}

impl IdentityCenterClient {
    /// `instance_arn` is the Identity Center instance
    /// (`arn:aws:sso:::instance/ssoins-…`), `identity_store_id` its identity
    /// store (`d-…`).
    pub fn from_config(
        config: &aws_config::SdkConfig,
        instance_arn: &str,
        identity_store_id: &str,
    ) -> Self {
        Self {
            identity_store: aws_sdk_identitystore::Client::new(config),
            sso_admin: aws_sdk_ssoadmin::Client::new(config),
            instance_arn: instance_arn.to_owned(),
            identity_store_id: identity_store_id.to_owned(),
        }
    }

    pub fn instance_arn(&self) -> &str {
        &self.instance_arn
    }

    pub fn identity_store_id(&self) -> &str {
        &self.identity_store_id
    }

    /// A refusal of `operation` (the IAM action `action`), with what to
    /// check.
    fn denied(&self, operation: &str, action: &str, detail: &str) -> AccessError {
        AccessError::Denied(format!(
            "{operation}: {detail}. Check that the Identity Center instance is {} \
             (identity store {}), that the permission set belongs to it, and that \
             Purser's role may call {action}",
            self.instance_arn, self.identity_store_id
        ))
    }

    /// Maps a failed call whose `ResourceNotFoundException` is not an
    /// answer of its own (see the module doc).
    fn error<E>(
        &self,
        operation: &str,
        action: &str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> AccessError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match classify(&e) {
            Kind::NotFound | Kind::Denied => self.denied(operation, action, &message(&e)),
            Kind::Unavailable => {
                AccessError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&e)))
            }
        }
    }

    /// Maps a failed status call: an unknown request is `NotFound`.
    fn status_error<E>(
        &self,
        operation: &str,
        action: &str,
        request_id: &str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> AccessError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if classify(&e) == Kind::NotFound {
            AccessError::NotFound(request_id.to_owned())
        } else {
            self.error(operation, action, e)
        }
    }

    async fn listed(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, AccessError> {
        let mut listed = Vec::new();
        let mut pages = self
            .sso_admin
            .list_account_assignments()
            .instance_arn(&self.instance_arn)
            .account_id(account_id)
            .permission_set_arn(permission_set)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                self.error("ListAccountAssignments", "sso:ListAccountAssignments", e)
            })?;
            listed.extend_from_slice(page.account_assignments());
        }
        Ok(users_assigned(&listed, account_id, permission_set))
    }
}

#[async_trait]
impl IdentityCenter for IdentityCenterClient {
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, AccessError> {
        let unique = UniqueAttribute::builder()
            .attribute_path("emails.value")
            .attribute_value(Document::String(email.to_owned()))
            .build()
            .map_err(|e| AccessError::Unavailable(format!("GetUserId: {e}")))?;
        let answer = self
            .identity_store
            .get_user_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(unique))
            .send()
            .await;
        match answer {
            Ok(out) => Ok(Some(out.user_id().to_owned())),
            Err(e) => match e.as_service_error() {
                // No user has that email; an unknown identity store is a
                // configuration to fix, not an absent user.
                Some(GetUserIdError::ResourceNotFoundException(r))
                    if r.resource_type() != Some(&ResourceType::IdentityStore) =>
                {
                    Ok(None)
                }
                _ => Err(self.error("GetUserId", "identitystore:GetUserId", e)),
            },
        }
    }

    async fn assign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError> {
        let out = self
            .sso_admin
            .create_account_assignment()
            .instance_arn(&self.instance_arn)
            .target_id(&assignment.account_id)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&assignment.permission_set)
            .principal_type(PrincipalType::User)
            .principal_id(&assignment.user_id)
            .send()
            .await
            .map_err(|e| self.error("CreateAccountAssignment", "sso:CreateAccountAssignment", e))?;
        request(
            out.account_assignment_creation_status(),
            "CreateAccountAssignment",
        )
    }

    async fn assign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError> {
        const OPERATION: &str = "DescribeAccountAssignmentCreationStatus";
        let out = self
            .sso_admin
            .describe_account_assignment_creation_status()
            .instance_arn(&self.instance_arn)
            .account_assignment_creation_request_id(request_id)
            .send()
            .await
            .map_err(|e| {
                self.status_error(
                    OPERATION,
                    "sso:DescribeAccountAssignmentCreationStatus",
                    request_id,
                    e,
                )
            })?;
        request(out.account_assignment_creation_status(), OPERATION)
    }

    async fn unassign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError> {
        let answer = self
            .sso_admin
            .delete_account_assignment()
            .instance_arn(&self.instance_arn)
            .target_id(&assignment.account_id)
            .target_type(TargetType::AwsAccount)
            .permission_set_arn(&assignment.permission_set)
            .principal_type(PrincipalType::User)
            .principal_id(&assignment.user_id)
            .send()
            .await;
        match answer {
            Ok(out) => request(
                out.account_assignment_deletion_status(),
                "DeleteAccountAssignment",
            ),
            Err(e) if classify(&e) == Kind::NotFound => {
                let listed = self
                    .listed(&assignment.account_id, &assignment.permission_set)
                    .await?;
                if listed.contains(assignment) {
                    Err(self.error("DeleteAccountAssignment", "sso:DeleteAccountAssignment", e))
                } else {
                    Ok(AssignmentRequest {
                        id: ALREADY_ABSENT.to_owned(),
                        state: RequestState::Succeeded,
                    })
                }
            }
            Err(e) => Err(self.error("DeleteAccountAssignment", "sso:DeleteAccountAssignment", e)),
        }
    }

    async fn unassign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError> {
        const OPERATION: &str = "DescribeAccountAssignmentDeletionStatus";
        if request_id == ALREADY_ABSENT {
            return Ok(AssignmentRequest {
                id: ALREADY_ABSENT.to_owned(),
                state: RequestState::Succeeded,
            });
        }
        let out = self
            .sso_admin
            .describe_account_assignment_deletion_status()
            .instance_arn(&self.instance_arn)
            .account_assignment_deletion_request_id(request_id)
            .send()
            .await
            .map_err(|e| {
                self.status_error(
                    OPERATION,
                    "sso:DescribeAccountAssignmentDeletionStatus",
                    request_id,
                    e,
                )
            })?;
        request(out.account_assignment_deletion_status(), OPERATION)
    }

    async fn permission_set(&self, name: &str) -> Result<Option<PermissionSet>, AccessError> {
        let mut pages = self
            .sso_admin
            .list_permission_sets()
            .instance_arn(&self.instance_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.error("ListPermissionSets", "sso:ListPermissionSets", e))?;
            for arn in page.permission_sets() {
                let described = self
                    .sso_admin
                    .describe_permission_set()
                    .instance_arn(&self.instance_arn)
                    .permission_set_arn(arn)
                    .send()
                    .await
                    .map_err(|e| {
                        self.error("DescribePermissionSet", "sso:DescribePermissionSet", e)
                    })?;
                if described.permission_set().and_then(|p| p.name()) == Some(name) {
                    return Ok(Some(PermissionSet {
                        arn: arn.clone(),
                        name: name.to_owned(),
                    }));
                }
            }
        }
        Ok(None)
    }

    async fn assignments(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, AccessError> {
        self.listed(account_id, permission_set).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssoadmin::types::AccountAssignment as Listed;

    fn status(state: Option<&str>, reason: Option<&str>) -> AccountAssignmentOperationStatus {
        AccountAssignmentOperationStatus::builder()
            .request_id("7f2d1c4e-1b6a-4a55-9d0e-3a8e2f1c0b9a")
            .set_status(state.map(StatusValues::from))
            .set_failure_reason(reason.map(str::to_owned))
            .target_id("210987654321")
            .target_type(TargetType::AwsAccount)
            .principal_type(PrincipalType::User)
            .principal_id("u-1")
            .build()
    }

    #[test]
    fn a_request_reads_as_in_progress_succeeded_or_failed_with_aws_s_reason() {
        let id = "7f2d1c4e-1b6a-4a55-9d0e-3a8e2f1c0b9a".to_owned();
        let read = |s: AccountAssignmentOperationStatus| request(Some(&s), "Op");
        assert_eq!(
            read(status(Some("IN_PROGRESS"), None)).unwrap(),
            AssignmentRequest {
                id: id.clone(),
                state: RequestState::InProgress
            }
        );
        assert_eq!(
            read(status(Some("SUCCEEDED"), None)).unwrap().state,
            RequestState::Succeeded
        );
        assert_eq!(
            read(status(
                Some("FAILED"),
                Some("Received a 404 status error: Not supported account")
            ))
            .unwrap(),
            AssignmentRequest {
                id,
                state: RequestState::Failed(
                    "Received a 404 status error: Not supported account".into()
                )
            }
        );
        assert_eq!(
            read(status(Some("FAILED"), None)).unwrap().state,
            RequestState::Failed("IAM Identity Center gave no reason".into())
        );
    }

    #[test]
    fn an_answer_without_a_request_or_a_known_status_is_unavailable() {
        assert!(matches!(
            request(None, "Op"),
            Err(AccessError::Unavailable(m)) if m.contains("no request status")
        ));
        assert!(matches!(
            request(Some(&status(None, None)), "Op"),
            Err(AccessError::Unavailable(m)) if m.contains("without a status")
        ));
        assert!(matches!(
            request(Some(&status(Some("PAUSED"), None)), "Op"),
            Err(AccessError::Unavailable(m)) if m.contains("PAUSED")
        ));
        let no_id = AccountAssignmentOperationStatus::builder()
            .status(StatusValues::Succeeded)
            .build();
        assert!(matches!(
            request(Some(&no_id), "Op"),
            Err(AccessError::Unavailable(m)) if m.contains("without an id")
        ));
    }

    #[test]
    fn errors_are_sorted_into_refusals_absences_and_retryable_failures() {
        for code in [
            "AccessDeniedException",
            "ValidationException",
            "ServiceQuotaExceededException",
            "UnrecognizedClientException",
        ] {
            assert_eq!(kind(Some(code), Some(400)), Kind::Denied, "{code}");
        }
        assert_eq!(kind(None, Some(403)), Kind::Denied);
        assert_eq!(
            kind(Some("ResourceNotFoundException"), Some(400)),
            Kind::NotFound
        );
        for code in [
            "ThrottlingException",
            "InternalServerException",
            "ConflictException",
        ] {
            assert_eq!(kind(Some(code), Some(400)), Kind::Unavailable, "{code}");
        }
        assert_eq!(kind(None, Some(503)), Kind::Unavailable);
        assert_eq!(kind(None, None), Kind::Unavailable, "no response");
    }

    #[test]
    fn a_refusal_says_what_to_check() {
        let config = aws_config::SdkConfig::builder()
            .http_client(crate::http_client())
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = IdentityCenterClient::from_config(
            &config,
            "arn:aws:sso:::instance/ssoins-1234567890abcdef",
            "d-1234567890",
        );
        let AccessError::Denied(m) = client.denied(
            "CreateAccountAssignment",
            "sso:CreateAccountAssignment",
            "AccessDeniedException: User is not authorized",
        ) else {
            panic!("not a refusal");
        };
        assert!(m.contains("User is not authorized"), "{m}");
        assert!(
            m.contains("arn:aws:sso:::instance/ssoins-1234567890abcdef"),
            "{m}"
        );
        assert!(m.contains("d-1234567890"), "{m}");
        assert!(m.contains("permission set"), "{m}");
        assert!(m.contains("sso:CreateAccountAssignment"), "{m}");
    }

    #[test]
    fn only_users_are_listed_in_user_id_order_each_once() {
        let ps = "arn:aws:sso:::permissionSet/ssoins-1/ps-1";
        let entry = |kind: PrincipalType, id: &str| {
            Listed::builder()
                .account_id("210987654321")
                .permission_set_arn(ps)
                .principal_type(kind)
                .principal_id(id)
                .build()
        };
        let listed = [
            entry(PrincipalType::User, "u-2"),
            entry(PrincipalType::Group, "g-1"),
            entry(PrincipalType::User, "u-1"),
            entry(PrincipalType::User, "u-2"),
        ];
        let users: Vec<String> = users_assigned(&listed, "210987654321", ps)
            .into_iter()
            .map(|a| a.user_id)
            .collect();
        assert_eq!(users, ["u-1", "u-2"]);
    }
}
