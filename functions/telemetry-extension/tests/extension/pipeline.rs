//! The pipeline end to end, on a fake `PutEvents` and tokio's paused clock:
//! telemetry in, batches cut by count, age and shutdown, calls within
//! EventBridge's limits, failed entries retried with the same batch.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use purser_telemetry_extension::batch::{
    BatchLimits, Batcher, FunctionInfo, InvocationReport, InvocationsReported, MAX_ENTRIES_PER_PUT,
    MAX_PUT_BYTES, entry_size,
};
use purser_telemetry_extension::outbox::{EntryOutcome, Outbox, OutboxLimits};
use purser_telemetry_extension::pipeline::Pipeline;
use purser_telemetry_extension::send::PutEvents;
use purser_telemetry_extension::telemetry::Telemetry;
use tokio::time::{Instant, sleep};

/// What the fake does with its next call.
#[derive(Debug, Clone)]
enum Answer {
    /// The call fails as a whole (network, 5xx).
    FailCall,
    /// These entries are refused with this code; the others accepted.
    Refuse(Vec<usize>, &'static str),
}

#[derive(Default)]
struct Recorded {
    calls: Vec<Vec<String>>,
    script: VecDeque<Answer>,
    /// Fails every call while set.
    down: bool,
    accepted: Vec<String>,
}

/// A `PutEvents` that checks EventBridge's limits on every call, records
/// what it was given, and fails as scripted.
#[derive(Clone, Default)]
struct FakeBus(Arc<Mutex<Recorded>>);

impl FakeBus {
    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.0.lock().unwrap().script.extend(answers);
    }
    fn set_down(&self, down: bool) {
        self.0.lock().unwrap().down = down;
    }
    fn calls(&self) -> Vec<Vec<String>> {
        self.0.lock().unwrap().calls.clone()
    }
    fn accepted(&self) -> Vec<InvocationsReported> {
        let r = self.0.lock().unwrap();
        r.accepted
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }
}

impl PutEvents for FakeBus {
    async fn put_events(&self, details: Vec<String>) -> Result<Vec<EntryOutcome>, String> {
        assert!(!details.is_empty());
        assert!(
            details.len() <= MAX_ENTRIES_PER_PUT,
            "{} entries",
            details.len()
        );
        let size: usize = details.iter().map(|d| entry_size(d)).sum();
        assert!(size <= MAX_PUT_BYTES, "{size} bytes in one call");
        // A call takes a little time, as on the network.
        sleep(Duration::from_millis(20)).await;
        let mut r = self.0.lock().unwrap();
        r.calls.push(details.clone());
        let answer = if r.down {
            Some(Answer::FailCall)
        } else {
            r.script.pop_front()
        };
        match answer {
            Some(Answer::FailCall) => Err("connection reset by peer".into()),
            refused => {
                let refused = match refused {
                    Some(Answer::Refuse(indices, code)) => (indices, code),
                    _ => (Vec::new(), ""),
                };
                Ok(details
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| {
                        if refused.0.contains(&i) {
                            EntryOutcome::Failed {
                                code: refused.1.into(),
                                message: "scripted".into(),
                            }
                        } else {
                            r.accepted.push(d);
                            EntryOutcome::Accepted
                        }
                    })
                    .collect())
            }
        }
    }
}

fn function() -> FunctionInfo {
    FunctionInfo {
        function_name: "orders-api".into(),
        architecture: "x86_64".into(),
        memory_mb: 1024,
    }
}

fn report(i: usize) -> InvocationReport {
    InvocationReport {
        request_id: format!("{i:08x}-0000-4000-8000-000000000000"),
        timestamp: Utc.with_ymd_and_hms(2030, 5, 1, 12, 0, 0).unwrap(),
        duration_ms: 12.5,
        billed_duration_ms: 13,
        max_memory_used_mb: 70,
        init_duration_ms: (i == 0).then_some(250.0),
    }
}

fn reports(range: std::ops::Range<usize>) -> Telemetry {
    Telemetry {
        reports: range.map(report).collect(),
        ..Telemetry::default()
    }
}

fn start(
    batch: BatchLimits,
    outbox: OutboxLimits,
) -> (Arc<Pipeline>, FakeBus, tokio::task::JoinHandle<()>) {
    let pipeline = Pipeline::new(Batcher::new(function(), batch), Outbox::new(outbox));
    let bus = FakeBus::default();
    let task = tokio::spawn(pipeline.clone().run(bus.clone()));
    (pipeline, bus, task)
}

fn limits(max_reports: usize) -> BatchLimits {
    BatchLimits {
        max_reports,
        max_age: Duration::from_secs(10),
        ..BatchLimits::default()
    }
}

/// Every report accepted exactly once, in one batch each.
fn assert_all_delivered_once(bus: &FakeBus, n: usize) {
    let mut seen = HashMap::new();
    for batch in bus.accepted() {
        assert_eq!(batch.version, 1);
        assert_eq!(batch.function_name, "orders-api");
        assert_eq!(batch.architecture, "x86_64");
        assert_eq!(batch.memory_mb, 1024);
        for r in batch.reports {
            *seen.entry(r.request_id).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), n, "reports delivered");
    assert!(
        seen.values().all(|&c| c == 1),
        "a report was delivered twice"
    );
}

#[tokio::test(start_paused = true)]
async fn batches_are_put_when_full_and_when_old() {
    let (pipeline, bus, _task) = start(limits(500), OutboxLimits::default());
    pipeline.accept(reports(0..1_200));
    sleep(Duration::from_secs(1)).await;
    let accepted = bus.accepted();
    assert_eq!(
        accepted.iter().map(|b| b.reports.len()).collect::<Vec<_>>(),
        [500, 500],
        "two full batches go at once, in one call"
    );
    assert_eq!(bus.calls().len(), 1);
    assert_eq!(pipeline.buffered(), 200);

    sleep(Duration::from_millis(8_500)).await; // 9.5 s after the first report
    assert_eq!(bus.accepted().len(), 2, "not due yet");
    sleep(Duration::from_secs(1)).await;
    assert_eq!(bus.accepted().len(), 3, "due by age");
    assert_eq!(pipeline.buffered(), 0);
    assert_all_delivered_once(&bus, 1_200);
}

#[tokio::test(start_paused = true)]
async fn failed_entries_are_retried_with_the_same_batch_id_and_bytes() {
    let (pipeline, bus, _task) = start(limits(10), OutboxLimits::default());
    bus.script([
        Answer::Refuse(vec![1, 3], "ThrottlingException"),
        Answer::FailCall,
        Answer::Refuse(vec![0], "InternalFailure"),
    ]);
    pipeline.accept(reports(0..40)); // four batches of ten
    sleep(Duration::from_secs(30)).await;

    let calls = bus.calls();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    let ids = |call: &Vec<String>| -> Vec<String> {
        call.iter()
            .map(|d| {
                serde_json::from_str::<InvocationsReported>(d)
                    .unwrap()
                    .batch_id
            })
            .collect()
    };
    let first = ids(&calls[0]);
    assert_eq!(first.len(), 4);
    // Refused entries 1 and 3 are sent again, alone, unchanged.
    assert_eq!(ids(&calls[1]), [first[1].clone(), first[3].clone()]);
    assert_eq!(calls[1][0], calls[0][1]);
    assert_eq!(calls[1][1], calls[0][3]);
    // The whole call failed: the same two again.
    assert_eq!(calls[2], calls[1]);
    // Then the first of them was refused once more, and goes a fourth time.
    assert_eq!(calls[3], vec![calls[0][1].clone()]);
    assert_all_delivered_once(&bus, 40);
    let stats = pipeline.stats();
    assert_eq!(stats.outbox.batches_sent, 4);
    assert_eq!(stats.outbox.reports_sent, 40);
}

#[tokio::test(start_paused = true)]
async fn retries_back_off() {
    let (pipeline, bus, _task) = start(limits(10), OutboxLimits::default());
    bus.set_down(true);
    pipeline.accept(reports(0..10));
    sleep(Duration::from_secs(3)).await;
    // 200 ms, 400 ms, 800 ms, 1.6 s ceilings (half of each at least): a
    // handful of calls in 3 s, not hundreds.
    let n = bus.calls().len();
    assert!((3..=7).contains(&n), "{n} calls");
    bus.set_down(false);
    sleep(Duration::from_secs(10)).await;
    assert_all_delivered_once(&bus, 10);
}

#[tokio::test(start_paused = true)]
async fn permanent_refusals_are_dropped_not_retried() {
    let (pipeline, bus, _task) = start(limits(10), OutboxLimits::default());
    bus.script([Answer::Refuse(vec![0], "MalformedDetail")]);
    pipeline.accept(reports(0..20));
    sleep(Duration::from_secs(30)).await;
    assert_eq!(bus.calls().len(), 1);
    let stats = pipeline.stats().outbox;
    assert_eq!((stats.batches_sent, stats.batches_dropped_failed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_queue_drops_the_oldest_batches_when_eventbridge_is_unreachable() {
    let outbox = OutboxLimits {
        max_batches: 5,
        ..OutboxLimits::default()
    };
    let (pipeline, bus, _task) = start(limits(10), outbox);
    bus.set_down(true);
    for i in 0..30 {
        pipeline.accept(reports(i * 10..i * 10 + 10));
        sleep(Duration::from_millis(100)).await;
        assert!(pipeline.queued() <= 5);
    }
    let stats = pipeline.stats().outbox;
    assert!(stats.batches_dropped_full >= 20, "{stats:?}");
    assert_eq!(stats.reports_dropped_full, stats.batches_dropped_full * 10);
    bus.set_down(false);
    sleep(Duration::from_secs(60)).await;
    // The newest batches made it; the oldest were dropped, none twice.
    let accepted = bus.accepted();
    assert!(
        !accepted.is_empty() && accepted.len() <= 6,
        "{}",
        accepted.len()
    );
    let last = accepted
        .iter()
        .flat_map(|b| &b.reports)
        .map(|r| r.request_id.clone());
    assert!(last.clone().any(|id| id == report(299).request_id));
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_everything_buffered() {
    let (pipeline, bus, task) = start(limits(500), OutboxLimits::default());
    pipeline.accept(reports(0..7));
    sleep(Duration::from_secs(1)).await;
    assert!(bus.calls().is_empty(), "neither full nor old: buffered");
    let began = Instant::now();
    pipeline.shutdown(began + Duration::from_secs(2)).await;
    assert!(
        began.elapsed() < Duration::from_millis(200),
        "no report pending: no wait"
    );
    assert_all_delivered_once(&bus, 7);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_the_whole_queue_despite_failures() {
    let (pipeline, bus, task) = start(limits(10), OutboxLimits::default());
    bus.set_down(true);
    pipeline.accept(reports(0..95));
    sleep(Duration::from_secs(20)).await; // backing off by now
    bus.set_down(false);
    bus.script([Answer::Refuse(vec![0, 2], "ThrottlingException")]);
    let began = Instant::now();
    pipeline.shutdown(began + Duration::from_secs(2)).await;
    assert!(began.elapsed() < Duration::from_secs(1));
    assert_all_delivered_once(&bus, 95);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_a_little_for_the_report_of_a_started_invocation() {
    let (pipeline, bus, _task) = start(limits(500), OutboxLimits::default());
    pipeline.accept(reports(0..3));
    pipeline.accept(Telemetry {
        started: vec![report(3).request_id],
        ..Telemetry::default()
    });
    let late = pipeline.clone();
    tokio::spawn(async move {
        sleep(Duration::from_millis(300)).await;
        late.accept(reports(3..4));
    });
    let began = Instant::now();
    pipeline.shutdown(began + Duration::from_secs(2)).await;
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(600),
        "{waited:?}"
    );
    assert_all_delivered_once(&bus, 4);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_waiting_and_keeps_to_the_deadline() {
    let (pipeline, bus, _task) = start(limits(500), OutboxLimits::default());
    pipeline.accept(Telemetry {
        started: vec!["never-reports".into()],
        ..reports(0..2)
    });
    let began = Instant::now();
    pipeline.shutdown(began + Duration::from_secs(2)).await;
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_millis(1_450),
        "{waited:?}"
    );
    assert_all_delivered_once(&bus, 2);

    // EventBridge down for good: shutdown still returns by its deadline.
    let (pipeline, bus, _task) = start(limits(500), OutboxLimits::default());
    bus.set_down(true);
    pipeline.accept(reports(0..2));
    let began = Instant::now();
    pipeline.shutdown(began + Duration::from_millis(500)).await;
    assert!(began.elapsed() <= Duration::from_millis(500));
    assert!(bus.calls().len() >= 2, "retried within the deadline");
}

#[tokio::test(start_paused = true)]
async fn limits_hold_under_load_with_large_reports_and_failures() {
    let batch = BatchLimits {
        max_reports: 100,
        max_age: Duration::from_secs(10),
        ..BatchLimits::default()
    };
    let outbox = OutboxLimits {
        max_batches: 1_000,
        max_bytes: usize::MAX,
        ..OutboxLimits::default()
    };
    let (pipeline, bus, task) = start(batch, outbox);
    // Rounds of 3 to 4 KB request ids (batches cut by size, at 256 KiB)
    // alternate with rounds of short ones (batches of 100, packed by ten).
    let mut next = 0;
    for round in 0..20 {
        if round % 3 == 0 {
            bus.script([Answer::Refuse(vec![0, 1, 5, 9], "ThrottlingException")]);
        }
        let (count, long) = if round % 2 == 0 {
            (300, true)
        } else {
            (1_500, false)
        };
        let reports = (next..next + count)
            .map(|i| InvocationReport {
                request_id: format!(
                    "{i:08}-{}",
                    "r".repeat(if long { 3_000 + i % 1_000 } else { i % 40 })
                ),
                ..report(i)
            })
            .collect();
        next += count;
        pipeline.accept(Telemetry {
            reports,
            ..Telemetry::default()
        });
        sleep(Duration::from_millis(50)).await;
    }
    // The backlog drains (20 ms a call, backoff after each refusal)...
    sleep(Duration::from_secs(30)).await;
    // ...and shutdown sends the last, partial batch.
    pipeline
        .shutdown(Instant::now() + Duration::from_secs(2))
        .await;
    task.await.unwrap();
    // The fake asserted ≤10 entries and ≤256 KiB on every call; both
    // limits were reached.
    let calls = bus.calls();
    let size = |c: &Vec<String>| c.iter().map(|d| entry_size(d)).sum::<usize>();
    assert!(calls.iter().any(|c| c.len() == MAX_ENTRIES_PER_PUT));
    assert!(calls.iter().any(|c| size(c) > MAX_PUT_BYTES - 8 * 1024));
    let cut_by_size = |b: &InvocationsReported| {
        let detail = serde_json::to_string(b).unwrap();
        b.reports.len() < 100 && entry_size(&detail) > MAX_PUT_BYTES - 8 * 1024
    };
    assert!(bus.accepted().iter().any(cut_by_size));
    assert_all_delivered_once(&bus, next);
}

/// The detail is what the recorder reads: `purser_core::lake` parses and
/// validates it (and refuses unknown fields), field for field.
#[test]
fn the_detail_is_what_the_recorder_reads() {
    let mut b = Batcher::new(function(), limits(500));
    b.push(report(0), Instant::now());
    b.push(report(1), Instant::now());
    let batch = b.flush().unwrap();
    let value: serde_json::Value = serde_json::from_str(&batch.detail).unwrap();
    let (parsed, _architecture) = purser_core::lake::InvocationsReported::parse(&value)
        .expect("the recorder accepts the extension's detail");
    assert_eq!(parsed.batch_id, batch.batch_id);
    assert_eq!(parsed.function_name, "orders-api");
    assert_eq!(parsed.architecture, "x86_64");
    assert_eq!(parsed.memory_mb, 1024);
    assert_eq!(parsed.reports.len(), 2);
    assert_eq!(parsed.reports[0].request_id, report(0).request_id);
    assert_eq!(parsed.reports[0].timestamp, report(0).timestamp);
    assert_eq!(parsed.reports[0].billed_duration_ms, 13);
    assert_eq!(parsed.reports[0].init_duration_ms, Some(250.0));
    assert_eq!(parsed.reports[1].init_duration_ms, None);
    // A batch never holds more reports than the recorder takes.
    const _: () =
        assert!(purser_telemetry_extension::MAX_REPORTS_LIMIT <= purser_core::lake::MAX_REPORTS);
    assert_eq!(
        value,
        serde_json::json!({
            "version": 1,
            "batch_id": batch.batch_id,
            "function_name": "orders-api",
            "architecture": "x86_64",
            "memory_mb": 1024,
            "reports": [
                {"request_id": report(0).request_id, "timestamp": "2030-05-01T12:00:00Z",
                 "duration_ms": 12.5, "billed_duration_ms": 13, "max_memory_used_mb": 70,
                 "init_duration_ms": 250.0},
                {"request_id": report(1).request_id, "timestamp": "2030-05-01T12:00:00Z",
                 "duration_ms": 12.5, "billed_duration_ms": 13, "max_memory_used_mb": 70,
                 "init_duration_ms": null},
            ]
        })
    );
    assert_eq!(
        purser_telemetry_extension::batch::MAX_PUT_BYTES,
        purser_core::events::MAX_PUT_BYTES
    );
    assert_eq!(
        purser_telemetry_extension::batch::MAX_ENTRIES_PER_PUT,
        purser_core::events::MAX_ENTRIES_PER_PUT
    );
}
