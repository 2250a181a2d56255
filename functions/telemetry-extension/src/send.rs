//! The one thing the extension asks of EventBridge: a `PutEvents` call.
//!
//! [`PutEvents`] is the seam: the extension runs on
//! [`crate::eventbridge::EventBridgeClient`] (SigV4 over a small HTTPS
//! client), the tests on fakes that fail on demand.

use std::future::Future;

use crate::outbox::EntryOutcome;

/// Puts `details` as `InvocationsReported` entries in one call and answers
/// one outcome per entry, in order; `Err` when the call failed as a whole.
pub trait PutEvents: Send + Sync + 'static {
    fn put_events(
        &self,
        details: Vec<String>,
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, String>> + Send;
}
