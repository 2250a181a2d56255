//! `spend`: on a schedule (every 15 minutes by default), settles every
//! team's month to date from the lake through Athena and, where a CUR 2.0
//! export is configured, with AWS's own bill, and announces each team whose
//! figure changed with `TeamSpendUpdated` (source `athena` or `cur`).
//! Budgets run on the streaming counters within seconds; this corrects them
//! with what the counters cannot see (see purser_core::spend).

use async_trait::async_trait;
use purser_core::handler::{SCHEDULED_EVENT, event_of};
use purser_core::spend::SpendSettler;
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct SpendHandler {
    settler: SpendSettler,
}

impl SpendHandler {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.spend_settler()?))
    }

    pub fn new(settler: SpendSettler) -> Self {
        Self { settler }
    }
}

#[async_trait]
impl Handler for SpendHandler {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        if event.detail_type != SCHEDULED_EVENT {
            tracing::warn!(detail_type = %event.detail_type, "spend runs on its schedule only; event ignored");
            return Ok(Value::Null);
        }
        let settled = self
            .settler
            .settle()
            .await
            .map_err(|e| HandlerError::new("SpendFailed", e.to_string()))?;
        Ok(json!({
            "period": settled.period,
            "teams": settled.teams,
            "announced": settled.announced,
            "unknown_accounts": settled.unknown_accounts,
            "skipped_accounts": settled.skipped_accounts,
            "skipped_rows": settled.skipped_rows,
        }))
    }
}
