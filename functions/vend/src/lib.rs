//! `vend`: starts creating accounts, never more than five at once.
//!
//! Triggered by `AccountRequested` (start this one), by `AccountReady` and
//! `AccountFailed` (a creation slot came free: start the next waiting one),
//! and by a schedule that starts whatever still waits.

use async_trait::async_trait;
use purser_core::accounts::Accounts;
use purser_core::events::catalog;
use purser_core::handler::{SCHEDULED_EVENT, event_of};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct Vend {
    accounts: Accounts,
}

impl Vend {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.accounts()))
    }

    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

fn failed(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new("VendFailed", e.to_string())
}

#[async_trait]
impl Handler for Vend {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        match event.detail_type.as_str() {
            catalog::ACCOUNT_REQUESTED => {
                let id = event.detail["request_id"].as_str().ok_or_else(|| {
                    HandlerError::bad_payload("AccountRequested without detail.request_id")
                })?;
                let outcome = self.accounts.start_creation(id).await.map_err(failed)?;
                Ok(json!({"request_id": id, "outcome": format!("{outcome:?}")}))
            }
            catalog::ACCOUNT_READY | catalog::ACCOUNT_FAILED | SCHEDULED_EVENT => {
                let started = self.accounts.start_waiting().await.map_err(failed)?;
                Ok(json!({"started": started}))
            }
            other => {
                tracing::warn!(detail_type = other, "vend ignores this event");
                Ok(Value::Null)
            }
        }
    }
}
