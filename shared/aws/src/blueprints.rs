//! `Blueprints` on CloudFormation StackSets: an instance of a
//! service-managed StackSet in one account (`CreateStackInstances` on the
//! account's OU, narrowed to the account by an `INTERSECTION` filter), its
//! operation read back by `DescribeStackSetOperation`, and the account's
//! reason from `ListStackSetOperationResults` when it failed.
//!
//! Purser runs in the management account, so it calls as `SELF`. The
//! operation is named by the caller (`OperationId`), so a retry after a
//! lost answer gets `OperationIdAlreadyExistsException` and answers that
//! operation instead of starting a second.

use async_trait::async_trait;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{
    AccountFilterType, CallAs, DeploymentTargets, StackSetOperationStatus,
};
use purser_core::ports::{BlueprintDeployment, BlueprintError, BlueprintOutcome, Blueprints};

#[derive(Debug, Clone)]
pub struct CloudFormationStackSets {
    cloudformation: aws_sdk_cloudformation::Client,
}

impl CloudFormationStackSets {
    pub fn new(cloudformation: aws_sdk_cloudformation::Client) -> Self {
        Self { cloudformation }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_cloudformation::Client::new(config))
    }

    /// CloudFormation's reason for `account_id` in a failed operation.
    async fn reason(
        &self,
        stack_set: &str,
        operation_id: &str,
        account_id: &str,
    ) -> Result<Option<String>, BlueprintError> {
        let mut pages = self
            .cloudformation
            .list_stack_set_operation_results()
            .stack_set_name(stack_set)
            .operation_id(operation_id)
            .call_as(CallAs::SelfValue)
            .into_paginator()
            .send();
        let mut reasons = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListStackSetOperationResults", e))?;
            for summary in page.summaries() {
                if summary.account() == Some(account_id)
                    && let Some(reason) = summary.status_reason().filter(|r| !r.is_empty())
                {
                    let region = summary.region().unwrap_or_default();
                    reasons.push(format!("{region}: {reason}"));
                }
            }
        }
        Ok((!reasons.is_empty()).then(|| reasons.join("; ")))
    }
}

#[async_trait]
impl Blueprints for CloudFormationStackSets {
    async fn deploy(&self, d: &BlueprintDeployment<'_>) -> Result<String, BlueprintError> {
        let targets = DeploymentTargets::builder()
            .organizational_unit_ids(d.ou)
            .accounts(d.account_id)
            .account_filter_type(AccountFilterType::Intersection)
            .build();
        match self
            .cloudformation
            .create_stack_instances()
            .stack_set_name(d.stack_set)
            .deployment_targets(targets)
            .set_regions(Some(d.regions.to_vec()))
            .operation_id(d.operation)
            .call_as(CallAs::SelfValue)
            .send()
            .await
        {
            Ok(output) => Ok(output.operation_id().unwrap_or(d.operation).to_string()),
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("OperationIdAlreadyExistsException") =>
            {
                Ok(d.operation.to_string())
            }
            Err(e) => Err(error("CreateStackInstances", e)),
        }
    }

    async fn outcome(
        &self,
        stack_set: &str,
        operation_id: &str,
        account_id: &str,
    ) -> Result<BlueprintOutcome, BlueprintError> {
        let output = self
            .cloudformation
            .describe_stack_set_operation()
            .stack_set_name(stack_set)
            .operation_id(operation_id)
            .call_as(CallAs::SelfValue)
            .send()
            .await
            .map_err(|e| error("DescribeStackSetOperation", e))?;
        let operation = output.stack_set_operation();
        let status = operation.and_then(|o| o.status()).cloned();
        Ok(match status {
            Some(StackSetOperationStatus::Succeeded) => BlueprintOutcome::Succeeded,
            Some(StackSetOperationStatus::Failed | StackSetOperationStatus::Stopped) => {
                let reason = match self.reason(stack_set, operation_id, account_id).await? {
                    Some(reason) => reason,
                    None => operation
                        .and_then(|o| o.status_reason())
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("StackSet operation {operation_id} ended {status:?}")
                        }),
                };
                BlueprintOutcome::Failed { reason }
            }
            // RUNNING, QUEUED, STOPPING, or a status newer than this SDK.
            _ => BlueprintOutcome::Running,
        })
    }
}

/// Maps a failed call to what the domain can act on.
fn error<E, R>(operation: &str, error: SdkError<E, R>) -> BlueprintError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let Some(service) = error.as_service_error() else {
        return BlueprintError::Unavailable(format!(
            "{operation}: {}",
            DisplayErrorContext(&error)
        ));
    };
    let text = format!(
        "{operation}: {}",
        service
            .message()
            .unwrap_or(service.code().unwrap_or("failed"))
    );
    match service.code().unwrap_or_default() {
        "StackSetNotFoundException" | "OperationNotFoundException" => {
            BlueprintError::NotFound(text)
        }
        // The StackSet is busy with another operation, or throttled.
        "OperationInProgressException"
        | "StaleRequestException"
        | "Throttling"
        | "ThrottlingException"
        | "LimitExceededException" => BlueprintError::Unavailable(text),
        "ValidationError" | "InvalidOperationException" => BlueprintError::Refused(text),
        _ => BlueprintError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error))),
    }
}
