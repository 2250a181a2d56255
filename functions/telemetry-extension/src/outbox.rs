//! The batches waiting to be put, bounded, and how they are packed into
//! `PutEvents` calls and retried.
//!
//! The queue holds at most `max_batches` batches and `max_bytes` bytes:
//! past either, the OLDEST batch is dropped and counted, so that memory
//! stays bounded when EventBridge cannot be reached. A batch that fails is
//! put back at the front, unchanged (same `batch_id`, same bytes), until
//! it is accepted, refused for good, or has had `max_attempts` tries.

use std::collections::VecDeque;
use std::time::Duration;

use crate::batch::{Batch, MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES};

/// A batch in the queue, with the calls that already carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub batch: Batch,
    pub attempts: u32,
}

/// What EventBridge did with one entry of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    Accepted,
    Failed { code: String, message: String },
}

/// Per-entry error codes worth sending again (AWS documents
/// `InternalFailure` and `ThrottlingException`; the others are spellings
/// of the same passing causes). Any other code will fail again the same
/// way (`MalformedDetail`, `AccessDeniedException`, …): the batch is
/// dropped and the code logged.
pub fn is_transient(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "InternalFailure"
            | "InternalException"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
    )
}

/// Bounds of the queue and of the retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub max_batches: usize,
    pub max_bytes: usize,
    /// Calls that may carry a batch, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles with each failed call.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_batches: 20,
            max_bytes: 1024 * 1024,
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl OutboxLimits {
    /// The wait after `failures` failed calls in a row (1 for the first):
    /// exponential, capped, half of it random ("equal jitter") so that the
    /// functions of an account throttled together do not retry in step.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Counters the extension logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    pub batches_sent: u64,
    pub reports_sent: u64,
    /// Oldest batches dropped because the queue was full.
    pub batches_dropped_full: u64,
    pub reports_dropped_full: u64,
    /// Batches dropped after a permanent refusal or their last attempt.
    pub batches_dropped_failed: u64,
    pub reports_dropped_failed: u64,
}

/// The result of settling a call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    pub accepted: usize,
    /// Put back to be sent again.
    pub retrying: usize,
    /// Given up: refused for good or out of attempts.
    pub dropped: usize,
}

#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    queue: VecDeque<Pending>,
    bytes: usize,
    stats: OutboxStats,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            limits,
            queue: VecDeque::new(),
            bytes: 0,
            stats: OutboxStats::default(),
        }
    }

    pub fn limits(&self) -> &OutboxLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of the queued details.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn stats(&self) -> OutboxStats {
        self.stats
    }

    /// Ids of the queued batches, oldest first.
    pub fn batch_ids(&self) -> impl Iterator<Item = &str> {
        self.queue.iter().map(|p| p.batch.batch_id.as_str())
    }

    /// Queues a new batch at the back.
    pub fn push(&mut self, batch: Batch) {
        self.bytes += batch.detail.len();
        self.queue.push_back(Pending { batch, attempts: 0 });
        self.enforce_bounds();
    }

    fn enforce_bounds(&mut self) {
        while self.queue.len() > self.limits.max_batches.max(1)
            || (self.bytes > self.limits.max_bytes && self.queue.len() > 1)
        {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            self.bytes -= old.batch.detail.len();
            self.stats.batches_dropped_full += 1;
            self.stats.reports_dropped_full += old.batch.reports as u64;
            tracing::warn!(
                batch_id = %old.batch.batch_id,
                reports = old.batch.reports,
                dropped_batches = self.stats.batches_dropped_full,
                dropped_reports = self.stats.reports_dropped_full,
                "the queue of unsent batches is full: dropped the oldest"
            );
        }
    }

    /// Takes the batches of the next `PutEvents` call from the front: at
    /// most 10, at most 256 KiB together. The caller sends them and hands
    /// them back to [`Outbox::settle`].
    pub fn take_call(&mut self) -> Vec<Pending> {
        let mut call = Vec::new();
        let mut size = 0;
        while let Some(next) = self.queue.front() {
            let entry = next.batch.entry_size();
            if call.len() == MAX_ENTRIES_PER_PUT
                || (!call.is_empty() && size + entry > MAX_PUT_BYTES)
            {
                break;
            }
            size += entry;
            let p = self.queue.pop_front().expect("front exists");
            self.bytes -= p.batch.detail.len();
            call.push(p);
        }
        call
    }

    /// Records what happened to a call's batches: `outcomes` holds one
    /// outcome per batch, in order, or is an error when the call failed as
    /// a whole (every batch is then tried again).
    pub fn settle(
        &mut self,
        call: Vec<Pending>,
        outcomes: Result<Vec<EntryOutcome>, String>,
    ) -> Settled {
        let outcomes = match outcomes {
            Ok(o) if o.len() == call.len() => o,
            Ok(o) => {
                let error = format!(
                    "PutEvents answered {} results for {} entries",
                    o.len(),
                    call.len()
                );
                vec![
                    EntryOutcome::Failed {
                        code: "InternalFailure".into(),
                        message: error
                    };
                    call.len()
                ]
            }
            Err(error) => {
                tracing::warn!(%error, batches = call.len(), "PutEvents failed");
                vec![
                    EntryOutcome::Failed {
                        code: "InternalFailure".into(),
                        message: error
                    };
                    call.len()
                ]
            }
        };
        let mut settled = Settled::default();
        let mut again = Vec::new();
        for (mut pending, outcome) in call.into_iter().zip(outcomes) {
            pending.attempts += 1;
            match outcome {
                EntryOutcome::Accepted => {
                    settled.accepted += 1;
                    self.stats.batches_sent += 1;
                    self.stats.reports_sent += pending.batch.reports as u64;
                }
                EntryOutcome::Failed { code, message }
                    if is_transient(&code) && pending.attempts < self.limits.max_attempts =>
                {
                    tracing::debug!(batch_id = %pending.batch.batch_id, %code, %message, attempts = pending.attempts, "batch to retry");
                    settled.retrying += 1;
                    again.push(pending);
                }
                EntryOutcome::Failed { code, message } => {
                    settled.dropped += 1;
                    self.stats.batches_dropped_failed += 1;
                    self.stats.reports_dropped_failed += pending.batch.reports as u64;
                    tracing::error!(
                        batch_id = %pending.batch.batch_id,
                        reports = pending.batch.reports,
                        %code,
                        %message,
                        attempts = pending.attempts,
                        "PutEvents refused a batch: dropped"
                    );
                }
            }
        }
        // Back at the front, in their order: they are the oldest.
        for pending in again.into_iter().rev() {
            self.bytes += pending.batch.detail.len();
            self.queue.push_front(pending);
        }
        self.enforce_bounds();
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::entry_size;

    fn batch(id: usize, detail_bytes: usize) -> Batch {
        Batch {
            batch_id: format!("batch-{id}"),
            reports: 1,
            detail: "x".repeat(detail_bytes),
        }
    }

    fn ids(call: &[Pending]) -> Vec<&str> {
        call.iter().map(|p| p.batch.batch_id.as_str()).collect()
    }

    fn outbox(max_batches: usize) -> Outbox {
        Outbox::new(OutboxLimits {
            max_batches,
            max_bytes: usize::MAX,
            ..OutboxLimits::default()
        })
    }

    #[test]
    fn a_call_takes_at_most_ten_entries() {
        let mut o = outbox(100);
        for i in 0..25 {
            o.push(batch(i, 100));
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let c = o.take_call();
            (!c.is_empty()).then_some(c.len())
        })
        .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[test]
    fn a_call_takes_at_most_256_kib() {
        let mut o = outbox(100);
        let detail = 100 * 1024;
        for i in 0..7 {
            o.push(batch(i, detail));
        }
        let mut calls = Vec::new();
        loop {
            let call = o.take_call();
            if call.is_empty() {
                break;
            }
            let size: usize = call.iter().map(|p| p.batch.entry_size()).sum();
            assert!(size <= MAX_PUT_BYTES, "{size}");
            calls.push(ids(&call).join(","));
        }
        assert_eq!(
            calls,
            vec![
                "batch-0,batch-1",
                "batch-2,batch-3",
                "batch-4,batch-5",
                "batch-6"
            ]
        );
        // Exactly at the limit is allowed.
        let exact = MAX_PUT_BYTES / 2 - entry_size("");
        o.push(batch(7, exact));
        o.push(batch(8, exact));
        assert_eq!(o.take_call().len(), 2);
    }

    #[test]
    fn the_oldest_batch_is_dropped_when_the_queue_is_full() {
        let mut o = outbox(3);
        for i in 0..5 {
            o.push(batch(i, 10));
        }
        assert_eq!(
            o.batch_ids().collect::<Vec<_>>(),
            ["batch-2", "batch-3", "batch-4"]
        );
        assert_eq!(o.stats().batches_dropped_full, 2);
        assert_eq!(o.stats().reports_dropped_full, 2);
        assert_eq!(o.bytes(), 30);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        let mut o = Outbox::new(OutboxLimits {
            max_batches: 100,
            max_bytes: 1_000,
            ..OutboxLimits::default()
        });
        for i in 0..10 {
            o.push(batch(i, 300));
        }
        assert_eq!(o.len(), 3);
        assert!(o.bytes() <= 1_000);
        assert_eq!(o.stats().batches_dropped_full, 7);
    }

    #[test]
    fn failed_entries_go_back_to_the_front_unchanged() {
        let mut o = outbox(100);
        for i in 0..12 {
            o.push(batch(i, 10));
        }
        let call = o.take_call();
        let before: Vec<Batch> = call.iter().map(|p| p.batch.clone()).collect();
        let mut outcomes = vec![EntryOutcome::Accepted; 10];
        outcomes[3] = EntryOutcome::Failed {
            code: "ThrottlingException".into(),
            message: "slow down".into(),
        };
        outcomes[7] = EntryOutcome::Failed {
            code: "InternalFailure".into(),
            message: "oops".into(),
        };
        let settled = o.settle(call, Ok(outcomes));
        assert_eq!(
            settled,
            Settled {
                accepted: 8,
                retrying: 2,
                dropped: 0
            }
        );
        let next = o.take_call();
        assert_eq!(ids(&next), ["batch-3", "batch-7", "batch-10", "batch-11"]);
        assert_eq!(next[0].batch, before[3], "same id, same bytes");
        assert_eq!(next[1].batch, before[7]);
        assert_eq!((next[0].attempts, next[2].attempts), (1, 0));
        assert_eq!(o.stats().batches_sent, 8);
    }

    #[test]
    fn a_failed_call_puts_every_batch_back() {
        let mut o = outbox(100);
        for i in 0..3 {
            o.push(batch(i, 10));
        }
        let call = o.take_call();
        let settled = o.settle(call, Err("connection reset".into()));
        assert_eq!(settled.retrying, 3);
        assert_eq!(
            o.batch_ids().collect::<Vec<_>>(),
            ["batch-0", "batch-1", "batch-2"]
        );
        assert_eq!(o.bytes(), 30);
        // A call whose results cannot be matched to its entries too.
        let call = o.take_call();
        assert_eq!(o.settle(call, Ok(vec![EntryOutcome::Accepted])).retrying, 3);
    }

    #[test]
    fn permanent_refusals_and_exhausted_attempts_are_dropped() {
        let mut o = Outbox::new(OutboxLimits {
            max_attempts: 2,
            ..OutboxLimits::default()
        });
        o.push(batch(0, 10));
        o.push(batch(1, 10));
        let call = o.take_call();
        let refused = |code: &str| EntryOutcome::Failed {
            code: code.into(),
            message: String::new(),
        };
        let s = o.settle(
            call,
            Ok(vec![
                refused("MalformedDetail"),
                refused("ThrottlingException"),
            ]),
        );
        assert_eq!(
            s,
            Settled {
                accepted: 0,
                retrying: 1,
                dropped: 1
            }
        );
        let call = o.take_call();
        let s = o.settle(call, Ok(vec![refused("ThrottlingException")]));
        assert_eq!(
            s,
            Settled {
                accepted: 0,
                retrying: 0,
                dropped: 1
            }
        );
        assert!(o.is_empty());
        assert_eq!(o.stats().batches_dropped_failed, 2);
    }

    #[test]
    fn delays_grow_and_stay_capped() {
        let l = OutboxLimits::default();
        for failures in 1..40 {
            let ceiling = l
                .base_delay
                .saturating_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX))
                .min(l.max_delay);
            let d = l.delay(failures);
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
    }
}
