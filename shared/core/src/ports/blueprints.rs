//! The Blueprints port: a lease template's blueprint, a service-managed
//! StackSet of which Purser deploys an instance into each account the
//! template makes before announcing the account ready. CloudFormation
//! StackSets on AWS; locally, deployments recorded as done.

use async_trait::async_trait;

/// One account's instance of a StackSet, in the account's OU (a
/// service-managed StackSet deploys to OUs; the account filter narrows the
/// OU to this account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueprintDeployment<'a> {
    pub stack_set: &'a str,
    pub account_id: &'a str,
    pub ou: &'a str,
    pub regions: &'a [String],
    /// The deployment's name, the same on every retry: asking again with it
    /// answers the operation the first ask started instead of a second one.
    pub operation: &'a str,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlueprintOutcome {
    Running,
    Succeeded,
    /// CloudFormation's reason (the instance's, where it gave one).
    Failed {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BlueprintError {
    /// The StackSet (or the operation) does not exist: the template names
    /// what is not there, which no retry mends.
    #[error("{0}")]
    NotFound(String),
    /// CloudFormation refused the deployment for good (a bad parameter, a
    /// target outside the organization).
    #[error("{0}")]
    Refused(String),
    /// Throttled, a StackSet busy with another operation, or no answer: try
    /// again later.
    #[error("CloudFormation StackSets is unavailable: {0}")]
    Unavailable(String),
}

impl BlueprintError {
    /// Whether waiting and asking again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[async_trait]
pub trait Blueprints: Send + Sync {
    /// Starts the deployment and answers its operation's id; a repeat with
    /// the same `operation` starts nothing new.
    async fn deploy(&self, deployment: &BlueprintDeployment<'_>) -> Result<String, BlueprintError>;

    /// How the operation `operation_id` of `stack_set` went for `account_id`.
    async fn outcome(
        &self,
        stack_set: &str,
        operation_id: &str,
        account_id: &str,
    ) -> Result<BlueprintOutcome, BlueprintError>;
}

/// CloudFormation's event when a StackSet operation changes
/// (`CloudFormation StackSet Operation Status Change`).
pub const STACK_SET_OPERATION_CHANGE: &str = "CloudFormation StackSet Operation Status Change";

/// What Purser reads of that event: which operation, and whether it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSetOperationChange {
    pub operation_id: String,
    pub status: String,
}

impl StackSetOperationChange {
    /// Whether the operation is over (succeeded, failed or stopped).
    pub fn ended(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED" | "STOPPED")
    }
}

/// Reads the event's `detail`; names the field it cannot read.
pub fn parse_stack_set_operation_change(
    detail: &serde_json::Value,
) -> Result<StackSetOperationChange, String> {
    let text = |pointer: &str| {
        detail
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_string)
            .ok_or_else(|| format!("detail{pointer} is missing or not a string"))
    };
    Ok(StackSetOperationChange {
        operation_id: text("/stack-set-operation-id")?,
        status: text("/status-details/status")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_operation_change_is_read_and_its_end_known() {
        let change = parse_stack_set_operation_change(&json!({
            "stack-set-arn": "arn:aws:cloudformation:us-east-1:111111111111:stackset/purser-baseline:1a2b",
            "stack-set-operation-id": "purser-r-0123456789ab",
            "status-details": {"status": "SUCCEEDED"}
        }))
        .unwrap();
        assert_eq!(change.operation_id, "purser-r-0123456789ab");
        assert!(change.ended());
        let running = parse_stack_set_operation_change(&json!({
            "stack-set-operation-id": "op", "status-details": {"status": "RUNNING"}
        }))
        .unwrap();
        assert!(!running.ended());
        let err =
            parse_stack_set_operation_change(&json!({"status-details": {"status": "FAILED"}}))
                .unwrap_err();
        assert!(err.contains("stack-set-operation-id"), "{err}");
    }
}
