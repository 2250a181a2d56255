//! `budgets`: weighs a team's spend against its budget and acts, on
//! `TeamSpendUpdated` (the recorder's streaming counters, within seconds of
//! the spend), on `BudgetChanged`, on `AccountReady` (a team already over
//! budget gets its new account frozen at once), and on an hourly schedule that
//! covers the start of each period: the scheduled run only asks for one
//! `BudgetEvaluationDue` per team, which this function then takes one team
//! at a time, in parallel invocations.

use async_trait::async_trait;
use purser_core::budgets::{BUDGET_CHANGED, BUDGET_EVALUATION_DUE, Budgets};
use purser_core::events::catalog::ACCOUNT_READY;
use purser_core::handler::{SCHEDULED_EVENT, each_queued_event, event_of, is_queue_batch};
use purser_core::lake::TEAM_SPEND_UPDATED;
use purser_core::{Handler, HandlerError, TeamName};
use serde_json::{Value, json};

pub struct BudgetsHandler {
    budgets: Budgets,
}

impl BudgetsHandler {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.budgets()))
    }

    pub fn new(budgets: Budgets) -> Self {
        Self { budgets }
    }
}

fn failed(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new("BudgetsFailed", e.to_string())
}

#[async_trait]
impl Handler for BudgetsHandler {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        // Spend changes come through a fair queue, a team a message group.
        if is_queue_batch(&payload) {
            return each_queued_event(payload, |event| self.handle_event(event)).await;
        }
        self.handle_event(payload).await
    }
}

impl BudgetsHandler {
    async fn handle_event(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        match event.detail_type.as_str() {
            // A new account of a team over budget is frozen as it becomes ready.
            TEAM_SPEND_UPDATED | BUDGET_CHANGED | ACCOUNT_READY | BUDGET_EVALUATION_DUE => {
                let team = event.detail["team"]
                    .as_str()
                    .and_then(|t| TeamName::parse(t).ok())
                    .ok_or_else(|| HandlerError::bad_payload("the detail has no valid team"))?;
                self.budgets.evaluate(&team).await.map_err(failed)?;
                Ok(json!({"team": team}))
            }
            SCHEDULED_EVENT => {
                let teams = self.budgets.request_evaluations().await.map_err(failed)?;
                Ok(json!({"evaluations_requested": teams}))
            }
            other => {
                tracing::warn!(detail_type = other, "budgets ignores this event");
                Ok(Value::Null)
            }
        }
    }
}
