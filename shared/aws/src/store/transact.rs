//! `TransactWriteItems` and what its cancellations mean.
//!
//! DynamoDB answers a cancelled transaction with one reason per item, in
//! order. A failed condition is an answer (the quota is full, the account
//! moved on); a conflict with another transaction on the same item, or
//! throttling, is a passing state: the transaction is sent again with
//! backoff. The SDK does not retry cancellations itself.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use super::DynamoStore;
use super::items::{Item, unavailable};
use purser_core::StoreError;

/// What became of one item of a cancelled transaction.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reason {
    /// Its condition held (or it had none); it was cancelled for another's.
    Passed,
    /// Its condition failed; with the item as it stood, when asked for
    /// (`ReturnValuesOnConditionCheckFailure`) and it existed.
    ConditionFailed(Option<Item>),
    /// A concurrent transaction held the item, or DynamoDB throttled it.
    Passing(String),
    /// Anything else (a validation error, an item too large): a fault.
    Fault { code: String, message: String },
}

impl Reason {
    fn of(reason: &CancellationReason) -> Self {
        match reason.code() {
            None | Some("None" | "") => Self::Passed,
            Some("ConditionalCheckFailed") => Self::ConditionFailed(reason.item().cloned()),
            Some(
                code @ ("TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded"),
            ) => Self::Passing(code.to_owned()),
            Some(code) => Self::Fault {
                code: code.to_owned(),
                message: reason.message().unwrap_or_default().to_owned(),
            },
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Transacted {
    Committed,
    /// A condition failed: one reason per item, in the order sent.
    Refused(Vec<Reason>),
}

/// What to do with a cancellation.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Refused(Vec<Reason>),
    Retry(String),
    Fail(String),
}

/// Reads a cancellation. The first item whose reason is not `Passed`
/// decides, so callers order their items by which answer matters most: the
/// idempotency key before the quota, so that a replay is recognised even
/// when the quota has filled since; a conflict on an earlier item means its
/// answer is not known yet, and the whole transaction is tried again.
fn verdict(items: usize, reasons: Vec<Reason>) -> Verdict {
    if reasons.len() != items {
        return Verdict::Fail(format!(
            "the transaction of {items} items was cancelled with {} reasons: {reasons:?}",
            reasons.len()
        ));
    }
    match reasons.iter().find(|r| **r != Reason::Passed) {
        Some(Reason::ConditionFailed(_)) => Verdict::Refused(reasons),
        Some(Reason::Passing(code)) => Verdict::Retry(code.clone()),
        Some(Reason::Fault { code, message }) => {
            Verdict::Fail(format!("the transaction was cancelled: {code}: {message}"))
        }
        Some(Reason::Passed) | None => Verdict::Fail(format!(
            "the transaction was cancelled without a reason: {reasons:?}"
        )),
    }
}

/// A request the SDK would not build lacks a required field: a bug here,
/// reported rather than unwrapped.
pub(super) fn built<T>(
    result: Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Unavailable(format!("a DynamoDB request is incomplete: {e}")))
}

impl DynamoStore {
    /// Writes `items` in one transaction, sending it again while it is
    /// cancelled for a passing reason. The SDK gives each call its own
    /// `ClientRequestToken` and reuses it for its own retries, so a call
    /// that committed but whose answer was lost is not applied twice.
    pub(super) async fn transact(
        &self,
        operation: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Transacted, StoreError> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Transacted::Committed),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            else {
                return Err(unavailable(
                    &format!("TransactWriteItems ({operation})"),
                    &self.table,
                    &error,
                ));
            };
            let reasons = cancelled
                .cancellation_reasons()
                .iter()
                .map(Reason::of)
                .collect();
            match verdict(items.len(), reasons) {
                Verdict::Refused(reasons) => return Ok(Transacted::Refused(reasons)),
                Verdict::Fail(why) => {
                    return Err(StoreError::Unavailable(format!(
                        "TransactWriteItems ({operation}) on table {}: {why}",
                        self.table
                    )));
                }
                Verdict::Retry(code) if attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::debug!(
                        table = %self.table,
                        operation,
                        code,
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "transaction cancelled for a passing reason; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Verdict::Retry(code) => {
                    return Err(StoreError::Unavailable(format!(
                        "TransactWriteItems ({operation}) on table {}: still cancelled \
                         ({code}) after {attempt} attempts",
                        self.table
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Reason {
        Reason::ConditionFailed(None)
    }

    fn conflict() -> Reason {
        Reason::Passing("TransactionConflict".into())
    }

    #[test]
    fn reads_dynamodb_reason_codes() {
        let reason = |code: Option<&str>| {
            Reason::of(
                &CancellationReason::builder()
                    .set_code(code.map(String::from))
                    .build(),
            )
        };
        assert_eq!(reason(None), Reason::Passed);
        assert_eq!(reason(Some("None")), Reason::Passed);
        assert_eq!(reason(Some("ConditionalCheckFailed")), failed());
        assert_eq!(reason(Some("TransactionConflict")), conflict());
        assert_eq!(
            reason(Some("ThrottlingError")),
            Reason::Passing("ThrottlingError".into())
        );
        assert!(matches!(
            reason(Some("ValidationError")),
            Reason::Fault { code, .. } if code == "ValidationError"
        ));
    }

    #[test]
    fn the_first_item_that_did_not_pass_decides() {
        let refused = vec![Reason::Passed, failed(), conflict()];
        assert_eq!(verdict(3, refused.clone()), Verdict::Refused(refused));
        // The idempotency key (first) is not known yet: the quota's answer
        // (second) must not be taken for the request's.
        assert_eq!(
            verdict(2, vec![conflict(), failed()]),
            Verdict::Retry("TransactionConflict".into())
        );
        assert!(matches!(
            verdict(
                2,
                vec![
                    Reason::Fault {
                        code: "ValidationError".into(),
                        message: "too large".into()
                    },
                    failed()
                ]
            ),
            Verdict::Fail(m) if m.contains("ValidationError: too large")
        ));
    }

    #[test]
    fn a_cancellation_that_explains_nothing_is_a_fault() {
        assert!(matches!(verdict(2, vec![]), Verdict::Fail(_)));
        assert!(matches!(
            verdict(2, vec![Reason::Passed, Reason::Passed]),
            Verdict::Fail(_)
        ));
    }
}
