//! From received telemetry to accepted events.
//!
//! The telemetry listener only calls [`Pipeline::accept`], which buffers
//! under a lock held for microseconds and never waits on the network. One
//! background task, [`Pipeline::run`], cuts batches by age and puts them,
//! retrying with backoff. [`Pipeline::shutdown`] (on the `SHUTDOWN` event)
//! waits briefly for the reports of invocations that have started but not
//! reported yet, then flushes everything and sends it before the deadline.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until};

use crate::batch::{Batch, Batcher};
use crate::outbox::{EntryOutcome, Outbox, OutboxStats, Pending};
use crate::send::PutEvents;
use crate::telemetry::Telemetry;

/// How long shutdown may wait for the reports of started invocations.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1_000);
/// Time kept, before the shutdown deadline, for the last `PutEvents` call.
pub const SHUTDOWN_SEND_RESERVE: Duration = Duration::from_millis(600);
/// Request ids of started invocations remembered at most (a function
/// handles one invocation at a time; this only bounds a pathological case).
const MAX_OPEN_INVOCATIONS: usize = 64;
/// The longest wait between retries during shutdown.
pub const SHUTDOWN_RETRY_DELAY: Duration = Duration::from_millis(150);

/// Counters of what the pipeline saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub reports_received: u64,
    pub unusable_reports: u64,
    pub outbox: OutboxStats,
}

#[derive(Debug, Clone, Copy)]
struct Shutdown {
    /// Lambda's deadline for the shutdown phase.
    deadline: Instant,
    /// Until then, reports of started invocations are waited for.
    grace_end: Instant,
}

#[derive(Debug)]
struct State {
    batcher: Batcher,
    outbox: Outbox,
    /// Invocations started (`platform.start`) whose report has not come.
    open: Vec<String>,
    reports_received: u64,
    unusable_reports: u64,
    shutdown: Option<Shutdown>,
    /// Calls that failed in a row, and when to try again.
    failures: u32,
    retry_at: Option<Instant>,
}

impl State {
    fn queue(&mut self, batch: Option<Batch>) -> bool {
        match batch {
            Some(b) => {
                tracing::debug!(batch_id = %b.batch_id, reports = b.reports, bytes = b.detail.len(), "batch cut");
                self.outbox.push(b);
                true
            }
            None => false,
        }
    }
}

/// What the sender task does next.
enum Step {
    Send(Vec<Pending>),
    Wait(Option<Instant>),
    Finish,
}

#[derive(Debug)]
pub struct Pipeline {
    state: Mutex<State>,
    /// Wakes the sender task: a batch was queued, or shutdown began.
    wake: Notify,
    done: watch::Sender<bool>,
}

impl Pipeline {
    pub fn new(batcher: Batcher, outbox: Outbox) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                batcher,
                outbox,
                open: Vec::new(),
                reports_received: 0,
                unusable_reports: 0,
                shutdown: None,
                failures: 0,
                retry_at: None,
            }),
            wake: Notify::new(),
            done: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held leaves counters at worst: go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> Stats {
        let s = self.lock();
        Stats {
            reports_received: s.reports_received,
            unusable_reports: s.unusable_reports,
            outbox: s.outbox.stats(),
        }
    }

    /// Reports buffered and not yet in a batch.
    pub fn buffered(&self) -> usize {
        self.lock().batcher.len()
    }

    /// Batches queued to be put.
    pub fn queued(&self) -> usize {
        self.lock().outbox.len()
    }

    /// Buffers one Telemetry API post. Waits on nothing but the lock.
    pub fn accept(&self, telemetry: Telemetry) {
        let now = Instant::now();
        let mut wake = false;
        {
            let mut s = self.lock();
            for id in telemetry.started {
                if s.open.len() == MAX_OPEN_INVOCATIONS {
                    s.open.remove(0);
                }
                s.open.push(id);
            }
            if telemetry.unusable_reports > 0 {
                s.unusable_reports += telemetry.unusable_reports as u64;
                tracing::debug!(
                    count = telemetry.unusable_reports,
                    "platform.report events without billing metrics skipped"
                );
            }
            for report in telemetry.reports {
                s.open.retain(|id| *id != report.request_id);
                s.reports_received += 1;
                let batch = s.batcher.push(report, now);
                wake |= s.queue(batch);
            }
            wake |= s.shutdown.is_some();
        }
        if wake {
            self.wake.notify_one();
        }
    }

    /// Flushes everything and sends it before `deadline`; returns when all
    /// is sent or the deadline has come.
    pub async fn shutdown(&self, deadline: Instant) {
        let now = Instant::now();
        let grace_end = deadline
            .checked_sub(SHUTDOWN_SEND_RESERVE)
            .unwrap_or(now)
            .min(now + SHUTDOWN_GRACE)
            .max(now);
        {
            let mut s = self.lock();
            s.shutdown = Some(Shutdown {
                deadline,
                grace_end,
            });
            // A long backoff from before would outlast the deadline.
            s.retry_at = s.retry_at.map(|t| t.min(now + SHUTDOWN_RETRY_DELAY));
        }
        self.wake.notify_one();
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout_at(deadline, done.wait_for(|d| *d)).await;
        let s = self.stats();
        tracing::info!(
            received = s.reports_received,
            sent = s.outbox.reports_sent,
            batches = s.outbox.batches_sent,
            dropped_queue_full = s.outbox.reports_dropped_full,
            dropped_refused = s.outbox.reports_dropped_failed,
            unusable = s.unusable_reports,
            unsent_batches = self.queued(),
            unbatched_reports = self.buffered(),
            "telemetry extension shut down"
        );
    }

    /// The sender task. Returns once shutdown has sent everything, or its
    /// deadline has come.
    pub async fn run<S: PutEvents>(self: Arc<Self>, sender: S) {
        loop {
            match self.next_step(Instant::now()) {
                Step::Finish => break,
                Step::Wait(until) => {
                    let woken = self.wake.notified();
                    match until {
                        Some(t) => {
                            tokio::select! {
                                () = woken => {}
                                () = sleep_until(t) => {}
                            }
                        }
                        None => woken.await,
                    }
                }
                Step::Send(call) => {
                    let outcome = self.send(&sender, &call).await;
                    let mut s = self.lock();
                    let settled = s.outbox.settle(call, outcome);
                    tracing::debug!(?settled, "PutEvents call settled");
                    if settled.retrying > 0 {
                        s.failures = s.failures.saturating_add(1);
                        let mut delay = s.outbox.limits().delay(s.failures);
                        if s.shutdown.is_some() {
                            delay = delay.min(SHUTDOWN_RETRY_DELAY);
                        }
                        s.retry_at = Some(Instant::now() + delay);
                    } else {
                        s.failures = 0;
                        s.retry_at = None;
                    }
                }
            }
        }
        self.done.send_replace(true);
    }

    fn next_step(&self, now: Instant) -> Step {
        let mut s = self.lock();
        let batch = match s.shutdown {
            None => s.batcher.poll(now),
            Some(_) => s.batcher.flush(),
        };
        s.queue(batch);
        s.batcher.shrink();
        let backing_off = s.retry_at.filter(|t| now < *t);
        match s.shutdown {
            None => {
                if s.outbox.is_empty() {
                    Step::Wait(s.batcher.deadline())
                } else if let Some(t) = backing_off {
                    // Cutting aged batches goes on while backing off.
                    Step::Wait(Some(s.batcher.deadline().map_or(t, |d| d.min(t))))
                } else {
                    Step::Send(s.outbox.take_call())
                }
            }
            Some(Shutdown {
                deadline,
                grace_end,
            }) => {
                if now >= deadline {
                    Step::Finish
                } else if s.outbox.is_empty() {
                    if s.open.is_empty() || now >= grace_end {
                        Step::Finish
                    } else {
                        Step::Wait(Some(grace_end))
                    }
                } else if backing_off.is_some() {
                    Step::Wait(backing_off.map(|t| t.min(deadline)))
                } else {
                    Step::Send(s.outbox.take_call())
                }
            }
        }
    }

    /// One call; abandoned when the shutdown deadline comes first.
    async fn send<S: PutEvents>(
        &self,
        sender: &S,
        call: &[Pending],
    ) -> Result<Vec<EntryOutcome>, String> {
        let details = call.iter().map(|p| p.batch.detail.clone()).collect();
        let put = sender.put_events(details);
        tokio::pin!(put);
        loop {
            let deadline = self.lock().shutdown.map(|s| s.deadline);
            match deadline {
                Some(d) => {
                    return tokio::time::timeout_at(d, &mut put)
                        .await
                        .unwrap_or_else(|_| Err("the shutdown deadline came first".into()));
                }
                None => {
                    tokio::select! {
                        r = &mut put => return r,
                        // Shutdown began, or a batch came: look again.
                        () = self.wake.notified() => {}
                    }
                }
            }
        }
    }
}
