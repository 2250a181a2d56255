//! `account-events`: completes creations and closures from the CloudTrail
//! service events of AWS Organizations (`CreateAccountResult`,
//! `CloseAccountResult`), and, because CloudTrail's delivery to EventBridge
//! is best effort, from a schedule that asks AWS about what is overdue; and
//! announces accounts whose lease template's blueprint (a StackSet) was
//! deploying once CloudFormation says its operation ended.

use async_trait::async_trait;
use purser_core::accounts::Accounts;
use purser_core::handler::{SCHEDULED_EVENT, event_of};
use purser_core::ports::{
    STACK_SET_OPERATION_CHANGE, ServiceEvent, parse_service_event, parse_stack_set_operation_change,
};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct AccountEvents {
    accounts: Accounts,
}

impl AccountEvents {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.accounts()))
    }

    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

fn failed(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new("AccountEventsFailed", e.to_string())
}

#[async_trait]
impl Handler for AccountEvents {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        if event.detail_type == SCHEDULED_EVENT {
            self.accounts.poll().await.map_err(failed)?;
            return Ok(json!({"polled": true}));
        }
        if event.source == "aws.cloudformation" && event.detail_type == STACK_SET_OPERATION_CHANGE {
            let change = parse_stack_set_operation_change(&event.detail)
                .map_err(HandlerError::bad_payload)?;
            tracing::info!(operation_id = %change.operation_id, status = %change.status, "StackSet operation changed");
            if change.ended() {
                self.accounts
                    .blueprint_operation_changed(&change.operation_id)
                    .await
                    .map_err(failed)?;
            }
            return Ok(json!({"operation_id": change.operation_id}));
        }
        if event.source != "aws.organizations" {
            tracing::warn!(source = %event.source, "account-events ignores events not from AWS Organizations");
            return Ok(Value::Null);
        }
        match parse_service_event(&event.detail).map_err(HandlerError::bad_payload)? {
            Some(ServiceEvent::CreateAccountResult { status, .. }) => {
                tracing::info!(creation_id = %status.id, state = ?status.state, account_id = status.account_id.as_deref().unwrap_or(""), "CreateAccountResult");
                self.accounts
                    .complete_creation(&status)
                    .await
                    .map_err(failed)?;
                Ok(json!({"creation_id": status.id}))
            }
            Some(ServiceEvent::CloseAccountResult {
                account_id,
                succeeded,
            }) => {
                tracing::info!(account_id, succeeded, "CloseAccountResult");
                if succeeded {
                    self.accounts
                        .closure_completed(&account_id)
                        .await
                        .map_err(failed)?;
                }
                Ok(json!({"account_id": account_id}))
            }
            None => Ok(Value::Null),
        }
    }
}
