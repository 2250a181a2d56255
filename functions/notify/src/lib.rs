//! `notify`: tells people what happened to their accounts and budgets, by
//! email, chat webhook and Purser's SNS topic (`purser_core::notify`).
//!
//! Triggered by Purser's own events (`NotifyFunction.Events` in the
//! template). Each recipient hears of an event once, however often it is
//! delivered; a channel that cannot be reached makes the invocation fail, so
//! the event comes back for that channel alone.

use async_trait::async_trait;
use purser_core::handler::event_of;
use purser_core::notify::{Notifications, NotifyFailed};
use purser_core::{Handler, HandlerError};
use serde_json::{Value, json};

pub struct NotifyHandler {
    notifications: Notifications,
}

impl NotifyHandler {
    /// The handler on the composition root's ports.
    pub fn from_ports(ports: &purser_core::Ports) -> Result<Self, purser_core::Unwired> {
        Ok(Self::new(ports.notifications()?))
    }

    pub fn new(notifications: Notifications) -> Self {
        Self { notifications }
    }
}

#[async_trait]
impl Handler for NotifyHandler {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = event_of(payload)?;
        match self.notifications.notify(&event).await {
            Ok(sent) => Ok(json!({
                "sent": sent.sent,
                "already": sent.already,
                "refused": sent.refused,
            })),
            Err(e @ NotifyFailed::Unsent(..)) => Err(HandlerError::new("NotSent", e.to_string())),
            Err(e @ NotifyFailed::Store(_)) => {
                Err(HandlerError::new("NotifyFailed", e.to_string()))
            }
        }
    }
}
