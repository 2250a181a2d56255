//! `reaper`: leases. On a schedule it warns of leases ending within three
//! days (`LeaseExpiring`) and starts closing accounts whose lease ended; on
//! `AccountCloseRequested` (and on the schedule) it calls `CloseAccount`
//! within the organization's rolling 30-day closure quota, deferring the rest.
//! Recycling (lease templates with `lease_end: recycle`): on the schedule,
//! and at once on `AccountCleaningStarted`, it moves pooled accounts on
//! (the pool's OU, the cleaner's runs, cooling, available) and closes
//! available accounts above their template's `pool_size`.

use async_trait::async_trait;
use purser_core::accounts::Accounts;
use purser_core::events::catalog;
use purser_core::handler::{SCHEDULED_EVENT, event_of};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct Reaper {
    accounts: Accounts,
}

impl Reaper {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.accounts()))
    }

    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

fn failed(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::new("ReaperFailed", e.to_string())
}

#[async_trait]
impl Handler for Reaper {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        match event.detail_type.as_str() {
            SCHEDULED_EVENT => self.accounts.reap().await.map_err(failed)?,
            catalog::ACCOUNT_CLOSE_REQUESTED => {
                self.accounts.close_pending().await.map_err(failed)?
            }
            catalog::ACCOUNT_CLEANING_STARTED => self.accounts.recycle().await.map_err(failed)?,
            other => {
                tracing::warn!(detail_type = other, "reaper ignores this event");
                return Ok(Value::Null);
            }
        }
        Ok(json!({"reaped": true}))
    }
}
