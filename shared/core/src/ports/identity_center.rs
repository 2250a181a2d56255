//! The IdentityCenter port: who may sign into a vended account. IAM
//! Identity Center's identity store knows the users (found by email); its
//! account assignments give a user a permission set in an account, which is
//! what the access portal signs them into. Assignments are asynchronous on
//! AWS: a request is made, then its status is asked until it is done.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::access::PermissionSet;

/// A permission set given to a user in an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Assignment {
    pub account_id: String,
    /// The permission set's ARN.
    pub permission_set: String,
    /// The identity store's user id.
    pub user_id: String,
}

/// Where a creation or deletion of an assignment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestState {
    InProgress,
    Succeeded,
    /// AWS's reason.
    Failed(String),
}

/// A request to create or delete an assignment, as Identity Center tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRequest {
    /// The request id to ask its status with.
    pub id: String,
    pub state: RequestState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Purser's role may not do this (or the instance or permission set is
    /// not the one configured): what to check is in the message.
    #[error("IAM Identity Center refused: {0}")]
    Denied(String),
    #[error("IAM Identity Center could not be reached: {0}")]
    Unavailable(String),
    /// No request of that id (it expired, or was never made).
    #[error("no such assignment request: {0}")]
    NotFound(String),
}

impl AccessError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AccessError::Unavailable(_))
    }
}

#[async_trait]
pub trait IdentityCenter: Send + Sync {
    /// The id of the user with `email` as an email address, if there is one
    /// (identitystore `GetUserId` on `emails.value`).
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, AccessError>;

    /// Asks for `assignment` (`CreateAccountAssignment`); assigning what is
    /// assigned already succeeds.
    async fn assign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError>;

    /// Where a creation request stands
    /// (`DescribeAccountAssignmentCreationStatus`).
    async fn assign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError>;

    /// Asks for `assignment` to go (`DeleteAccountAssignment`); removing
    /// what is not assigned succeeds.
    async fn unassign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError>;

    /// Where a deletion request stands
    /// (`DescribeAccountAssignmentDeletionStatus`).
    async fn unassign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError>;

    /// The users given `permission_set` in `account_id`
    /// (`ListAccountAssignments`), in user id order.
    async fn assignments(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, AccessError>;

    /// The instance's permission set named `name` (its ARN), if it has one
    /// (`ListPermissionSets` and `DescribePermissionSet`): what a lease
    /// template's `permission_set` names.
    async fn permission_set(&self, name: &str) -> Result<Option<PermissionSet>, AccessError>;
}
