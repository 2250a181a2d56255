//! The Organization port: what Purser asks of AWS Organizations.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where an asynchronous `CreateAccount` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CreationState {
    InProgress,
    Succeeded,
    Failed,
}

/// `CreateAccountStatus`, as `CreateAccount`, `DescribeCreateAccountStatus`
/// and the `CreateAccountResult` event report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreationStatus {
    /// The `CreateAccountRequestId` (`car-…`).
    pub id: String,
    pub state: CreationState,
    pub account_id: Option<String>,
    /// AWS's reason code when the creation failed (`EMAIL_ALREADY_EXISTS`, …).
    pub failure_reason: Option<String>,
}

/// A member account's status in the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberStatus {
    Active,
    Suspended,
    PendingClosure,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    #[error("AWS Organizations is throttling Purser: {0}")]
    Throttled(String),
    #[error("another change to the organization is in progress: {0}")]
    ConcurrentModification(String),
    /// A quota or rule of Organizations refused the call; `reason` is AWS's
    /// code (`ACCOUNT_NUMBER_LIMIT_EXCEEDED`, `CLOSE_ACCOUNT_QUOTA_EXCEEDED`, …).
    #[error("AWS Organizations refused: {reason}: {message}")]
    Constraint { reason: String, message: String },
    #[error("not found in the organization: {0}")]
    NotFound(String),
    #[error("AWS Organizations could not be reached: {0}")]
    Unavailable(String),
}

impl OrganizationError {
    /// Worth retrying with backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled(_) | Self::ConcurrentModification(_) | Self::Unavailable(_)
        )
    }
}

#[async_trait]
pub trait Organization: Send + Sync {
    /// Starts creating a member account; creation completes asynchronously.
    async fn create_account(
        &self,
        email: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<CreationStatus, OrganizationError>;

    async fn creation_status(&self, creation_id: &str)
    -> Result<CreationStatus, OrganizationError>;

    /// A creation that did not fail of the account Purser would create
    /// with `email` and `name`: the succeeded one whose account has that
    /// root email, else one in progress named `name` (AWS tells an
    /// account's email only once it exists). How a `CreateAccount` whose
    /// answer was lost is found again, instead of asked for twice.
    async fn find_creation(
        &self,
        email: &str,
        name: &str,
    ) -> Result<Option<CreationStatus>, OrganizationError>;

    /// The id of the OU at `path` below the root, creating what is missing.
    async fn ensure_ou(&self, path: &[&str]) -> Result<String, OrganizationError>;

    /// Moves an account from wherever it is to `ou_id` (a no-op if it is there).
    async fn move_account(&self, account_id: &str, ou_id: &str) -> Result<(), OrganizationError>;

    async fn tag_account(
        &self,
        account_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), OrganizationError>;

    /// Starts closing an account; closure completes asynchronously.
    async fn close_account(&self, account_id: &str) -> Result<(), OrganizationError>;

    async fn member_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError>;

    /// Member accounts in the organization (for the closure quota).
    async fn member_account_count(&self) -> Result<u32, OrganizationError>;

    /// The id of the service control policy named `name`, created with
    /// `content` if missing and updated if its content differs.
    async fn ensure_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, OrganizationError>;

    /// Attaches a policy to an account; attaching it again is a no-op.
    /// Refused with `Constraint { reason: "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED" }`
    /// when the account has its five SCPs already.
    async fn attach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError>;

    /// Detaches a policy from an account; detaching what is not attached is a no-op.
    async fn detach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError>;

    /// The ids of the service control policies attached directly to an account.
    async fn policies_of(&self, account_id: &str) -> Result<Vec<String>, OrganizationError>;
}

/// At most this many SCPs may be attached to one target.
pub const MAX_POLICIES_PER_TARGET: usize = 5;
/// An SCP's document may hold at most this many characters.
pub const MAX_POLICY_CHARS: usize = 5120;

/// At most this many `CreateAccount`s may be in progress at once.
pub const MAX_CONCURRENT_CREATIONS: u32 = 5;

/// `CloseAccount` allows 10 % of member accounts, between 10 and 1,000,
/// per rolling 30 days.
pub fn closure_quota(member_accounts: u32) -> u32 {
    (member_accounts / 10).clamp(10, 1000)
}

/// AWS's creation failure reasons, in words a developer can act on.
pub fn explain_failure(reason: &str) -> String {
    let words = match reason {
        "EMAIL_ALREADY_EXISTS" => {
            "an AWS account already uses this email address; ask again with another owner address, or close the account that has it"
        }
        "ACCOUNT_LIMIT_EXCEEDED" => {
            "the organization has reached its limit of accounts; ask your platform team to raise the AWS Organizations account quota or close unused accounts"
        }
        "CONCURRENT_ACCOUNT_MODIFICATION" => {
            "the organization was busy with another change; ask again in a minute"
        }
        "INVALID_EMAIL" => {
            "AWS does not accept this email address; ask again with another owner address"
        }
        "INVALID_ADDRESS" => {
            "the organization's contact address is invalid; ask your platform team to fix it"
        }
        "INTERNAL_FAILURE" => "AWS failed internally; ask again in a few minutes",
        "GOVCLOUD_ACCOUNT_ALREADY_EXISTS" => "a GovCloud account already exists for this account",
        "MISSING_BUSINESS_VALIDATION"
        | "PENDING_BUSINESS_VALIDATION"
        | "FAILED_BUSINESS_VALIDATION"
        | "UNKNOWN_BUSINESS_VALIDATION"
        | "INVALID_IDENTITY_FOR_BUSINESS_VALIDATION" => {
            "AWS has not finished validating the organization's business details; ask your platform team"
        }
        "MISSING_PAYMENT_INSTRUMENT" => {
            "the organization's management account has no valid payment method; ask your platform team"
        }
        "UPDATE_EXISTING_RESOURCE_POLICY_WITH_TAGS_NOT_SUPPORTED" => {
            "AWS could not apply the account's tags; ask again without tags, or ask your platform team"
        }
        _ => "AWS did not create the account",
    };
    format!("{reason}: {words}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closure_quota_is_a_tenth_between_10_and_1000() {
        assert_eq!(closure_quota(0), 10);
        assert_eq!(closure_quota(150), 15);
        assert_eq!(closure_quota(99_999), 1000);
    }

    #[test]
    fn failures_are_explained() {
        let text = explain_failure("EMAIL_ALREADY_EXISTS");
        assert!(text.starts_with("EMAIL_ALREADY_EXISTS: an AWS account already uses"));
        assert!(explain_failure("SOMETHING_NEW").starts_with("SOMETHING_NEW: "));
    }
}

/// What an Organizations CloudTrail service event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// `CreateAccountResult`: a creation finished (or failed).
    CreateAccountResult {
        status: CreationStatus,
        completed_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// `CloseAccountResult`: a closure finished.
    CloseAccountResult { account_id: String, succeeded: bool },
}

/// Reads the `detail` of an "AWS Service Event via CloudTrail" from
/// `aws.organizations`. `Ok(None)` for other Organizations events.
pub fn parse_service_event(detail: &serde_json::Value) -> Result<Option<ServiceEvent>, String> {
    let name = detail["eventName"].as_str().unwrap_or_default();
    let details = &detail["serviceEventDetails"];
    let text = |v: &serde_json::Value, field: &str| v[field].as_str().map(String::from);
    match name {
        "CreateAccountResult" => {
            let s = &details["createAccountStatus"];
            let id = text(s, "id").ok_or("createAccountStatus.id is missing")?;
            let state = match s["state"].as_str() {
                Some("SUCCEEDED") => CreationState::Succeeded,
                Some("FAILED") => CreationState::Failed,
                Some("IN_PROGRESS") => CreationState::InProgress,
                other => return Err(format!("createAccountStatus.state {other:?} is unknown")),
            };
            Ok(Some(ServiceEvent::CreateAccountResult {
                status: CreationStatus {
                    id,
                    state,
                    account_id: text(s, "accountId"),
                    failure_reason: text(s, "failureReason"),
                },
                completed_at: s["completedTimestamp"]
                    .as_str()
                    .and_then(parse_cloudtrail_time),
            }))
        }
        "CloseAccountResult" => {
            let s = &details["closeAccountStatus"];
            let account_id =
                text(s, "accountId").ok_or("closeAccountStatus.accountId is missing")?;
            Ok(Some(ServiceEvent::CloseAccountResult {
                account_id,
                succeeded: s["state"].as_str() == Some("SUCCEEDED"),
            }))
        }
        _ => Ok(None),
    }
}

/// CloudTrail's service events write times like "Sep 16, 2020 9:20:50 PM" (UTC).
pub fn parse_cloudtrail_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%b %d, %Y %I:%M:%S %p")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod service_event_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_aws_create_account_result() {
        // The shape AWS documents for the CloudTrail service event.
        let detail = json!({
            "eventVersion": "1.08",
            "userIdentity": {"accountId": "111111111111", "invokedBy": "AWS Internal"},
            "eventTime": "2020-09-16T21:20:54Z",
            "eventSource": "organizations.amazonaws.com",
            "eventName": "CreateAccountResult",
            "awsRegion": "us-east-1",
            "eventType": "AwsServiceEvent",
            "serviceEventDetails": {"createAccountStatus": {
                "id": "car-7a9e8f4a0b1c4d2e", "state": "SUCCEEDED", "accountName": "****",
                "accountId": "222222222222",
                "requestedTimestamp": "Sep 16, 2020 9:20:50 PM",
                "completedTimestamp": "Sep 16, 2020 9:20:54 PM"
            }}
        });
        let Some(ServiceEvent::CreateAccountResult {
            status,
            completed_at,
        }) = parse_service_event(&detail).unwrap()
        else {
            panic!("not a creation result")
        };
        assert_eq!(status.state, CreationState::Succeeded);
        assert_eq!(status.account_id.as_deref(), Some("222222222222"));
        assert_eq!(
            completed_at.unwrap().to_rfc3339(),
            "2020-09-16T21:20:54+00:00"
        );
    }

    #[test]
    fn reads_failures_closures_and_ignores_the_rest() {
        let failed = json!({"eventName": "CreateAccountResult", "serviceEventDetails": {"createAccountStatus": {"id": "car-1", "state": "FAILED", "failureReason": "EMAIL_ALREADY_EXISTS", "completedTimestamp": "Jan 2, 2026 12:05:09 AM"}}});
        match parse_service_event(&failed).unwrap() {
            Some(ServiceEvent::CreateAccountResult {
                status,
                completed_at,
            }) => {
                assert_eq!(
                    status.failure_reason.as_deref(),
                    Some("EMAIL_ALREADY_EXISTS")
                );
                assert_eq!(
                    completed_at.unwrap().to_rfc3339(),
                    "2026-01-02T00:05:09+00:00"
                );
            }
            other => panic!("{other:?}"),
        }
        let closed = json!({"eventName": "CloseAccountResult", "serviceEventDetails": {"closeAccountStatus": {"accountId": "222222222222", "state": "SUCCEEDED"}}});
        assert_eq!(
            parse_service_event(&closed).unwrap(),
            Some(ServiceEvent::CloseAccountResult {
                account_id: "222222222222".into(),
                succeeded: true
            })
        );
        assert_eq!(
            parse_service_event(&json!({"eventName": "CreateOrganizationalUnit"})).unwrap(),
            None
        );
        assert!(parse_service_event(&json!({"eventName": "CreateAccountResult"})).is_err());
        assert_eq!(
            parse_cloudtrail_time("Dec 31, 2025 11:59:59 PM")
                .unwrap()
                .to_rfc3339(),
            "2025-12-31T23:59:59+00:00"
        );
        assert_eq!(parse_cloudtrail_time("31/12/2025"), None);
    }
}
