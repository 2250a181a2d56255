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
}

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
        "INVALID_EMAIL" => "AWS does not accept this email address; ask again with another owner address",
        "INVALID_ADDRESS" => "the organization's contact address is invalid; ask your platform team to fix it",
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
