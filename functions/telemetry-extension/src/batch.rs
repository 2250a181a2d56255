//! `InvocationsReported` batches, and the [`Batcher`] that cuts them.
//!
//! A batch is cut when it holds `max_reports` reports, when its first
//! report has waited `max_age`, when one more report would take its
//! `PutEvents` entry over the size limit, and at shutdown. Each batch gets
//! a fresh `batch_id` (a UUID v4) and is serialized once: a retry sends the
//! very same bytes, so the recorder can tell a retried batch from a new one.

use std::io;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// `PutEvents` takes at most this many entries a call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
/// `PutEvents` takes at most this many bytes a call, counted as EventBridge
/// counts them (see [`entry_size`]).
pub const MAX_PUT_BYTES: usize = 256 * 1024;
/// The source of the events the extension puts.
pub const SOURCE: &str = "purser.telemetry";
/// Their detail-type.
pub const DETAIL_TYPE: &str = "InvocationsReported";
/// The version of the detail's shape.
pub const DETAIL_VERSION: u32 = 1;

/// The size EventBridge counts for an entry of this extension: source,
/// detail-type and detail, in UTF-8 bytes (no `Time`, no `Resources`).
pub fn entry_size(detail: &str) -> usize {
    SOURCE.len() + DETAIL_TYPE.len() + detail.len()
}

/// The detail of an `InvocationsReported` event (the same shape as
/// `purser_core::lake::InvocationsReported`, which the recorder reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationsReported {
    pub version: u32,
    pub batch_id: String,
    pub function_name: String,
    pub architecture: String,
    pub memory_mb: u32,
    pub reports: Vec<InvocationReport>,
}

/// One `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationReport {
    pub request_id: String,
    /// The event's `time`, RFC 3339.
    pub timestamp: DateTime<Utc>,
    pub duration_ms: f64,
    pub billed_duration_ms: u64,
    pub max_memory_used_mb: u32,
    /// Present on a cold start; `null` otherwise.
    pub init_duration_ms: Option<f64>,
}

/// The function whose invocations are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub function_name: String,
    /// `arm64` or `x86_64`.
    pub architecture: String,
    pub memory_mb: u32,
}

/// When the [`Batcher`] cuts a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Reports in a batch (at least 1).
    pub max_reports: usize,
    /// How long the first report of a batch may wait.
    pub max_age: Duration,
    /// The largest `PutEvents` entry a batch may make ([`entry_size`]).
    pub max_entry_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_reports: 500,
            max_age: Duration::from_secs(10),
            max_entry_bytes: MAX_PUT_BYTES,
        }
    }
}

/// A batch ready to be put: its id and its serialized detail, which never
/// change again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch_id: String,
    pub reports: usize,
    pub detail: String,
}

impl Batch {
    pub fn entry_size(&self) -> usize {
        entry_size(&self.detail)
    }
}

/// Counts the bytes serde_json writes, without keeping them.
#[derive(Default)]
struct Count(usize);

impl io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn json_len<T: Serialize>(value: &T) -> usize {
    let mut count = Count::default();
    serde_json::to_writer(&mut count, value).expect("serializing a report cannot fail");
    count.0
}

fn new_batch_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Gathers reports into batches. Pure: the caller passes the time.
#[derive(Debug)]
pub struct Batcher {
    function: FunctionInfo,
    limits: BatchLimits,
    reports: Vec<InvocationReport>,
    /// Serialized size of `reports`, commas between them included.
    reports_bytes: usize,
    /// `entry_size` of a batch of this function with no report.
    empty_entry_bytes: usize,
    first_at: Option<Instant>,
    oversized: u64,
}

impl Batcher {
    pub fn new(function: FunctionInfo, mut limits: BatchLimits) -> Self {
        limits.max_reports = limits.max_reports.max(1);
        let empty = InvocationsReported {
            version: DETAIL_VERSION,
            batch_id: new_batch_id(),
            function_name: function.function_name.clone(),
            architecture: function.architecture.clone(),
            memory_mb: function.memory_mb,
            reports: Vec::new(),
        };
        let empty_entry_bytes = SOURCE.len() + DETAIL_TYPE.len() + json_len(&empty);
        Self {
            function,
            limits,
            reports: Vec::new(),
            reports_bytes: 0,
            empty_entry_bytes,
            first_at: None,
            oversized: 0,
        }
    }

    /// Reports waiting for their batch.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Reports dropped because a batch of that one report alone would not
    /// fit in a `PutEvents` entry (a request id of many kilobytes).
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// The size [`Batch::entry_size`] of the batch the buffered reports
    /// would make now.
    pub fn entry_bytes(&self) -> usize {
        self.empty_entry_bytes + self.reports_bytes
    }

    /// When the buffered reports are due by age.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|t| t + self.limits.max_age)
    }

    /// Buffers `report`; returns the batch this completes, if any: the
    /// buffered reports when `report` would not fit beside them (it then
    /// starts the next batch), or the buffer with `report` when that makes
    /// `max_reports`. Age is left to [`Batcher::poll`].
    pub fn push(&mut self, report: InvocationReport, now: Instant) -> Option<Batch> {
        let size = json_len(&report);
        if self.empty_entry_bytes + size > self.limits.max_entry_bytes {
            self.oversized += 1;
            tracing::warn!(
                request_id_bytes = report.request_id.len(),
                "a report too large for any PutEvents entry was dropped"
            );
            return None;
        }
        let comma = usize::from(!self.reports.is_empty());
        let mut cut = None;
        if self.entry_bytes() + comma + size > self.limits.max_entry_bytes {
            cut = self.flush();
        }
        let comma = usize::from(!self.reports.is_empty());
        self.reports_bytes += comma + size;
        self.reports.push(report);
        self.first_at.get_or_insert(now);
        if cut.is_none() && self.reports.len() >= self.limits.max_reports {
            cut = self.flush();
        }
        cut
    }

    /// The buffered reports as a batch, if they are due by age at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Batch> {
        match self.deadline() {
            Some(due) if now >= due => self.flush(),
            _ => None,
        }
    }

    /// The buffered reports as a batch, whatever their number and age (at
    /// shutdown).
    pub fn flush(&mut self) -> Option<Batch> {
        if self.reports.is_empty() {
            return None;
        }
        let detail = InvocationsReported {
            version: DETAIL_VERSION,
            batch_id: new_batch_id(),
            function_name: self.function.function_name.clone(),
            architecture: self.function.architecture.clone(),
            memory_mb: self.function.memory_mb,
            reports: std::mem::take(&mut self.reports),
        };
        let text = serde_json::to_string(&detail).expect("serializing a batch cannot fail");
        debug_assert_eq!(entry_size(&text), self.entry_bytes());
        self.reports_bytes = 0;
        self.first_at = None;
        Some(Batch {
            batch_id: detail.batch_id,
            reports: detail.reports.len(),
            detail: text,
        })
    }

    /// Hands the buffer's allocation back when it has grown far beyond
    /// what the next batch needs (after a burst), so memory stays small.
    pub fn shrink(&mut self) {
        if self.reports.is_empty() && self.reports.capacity() > 64 {
            self.reports = Vec::new();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn function() -> FunctionInfo {
        FunctionInfo {
            function_name: "orders-api".into(),
            architecture: "arm64".into(),
            memory_mb: 512,
        }
    }

    pub(crate) fn report(i: usize) -> InvocationReport {
        InvocationReport {
            request_id: format!("{:08x}-49c9-448d-89b8-7ca3e6dc66aa", i),
            timestamp: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::milliseconds(i as i64),
            duration_ms: 693.92,
            billed_duration_ms: 694,
            max_memory_used_mb: 84,
            init_duration_ms: i.is_multiple_of(7).then_some(397.68),
        }
    }

    fn limits(max_reports: usize, max_age_s: u64) -> BatchLimits {
        BatchLimits {
            max_reports,
            max_age: Duration::from_secs(max_age_s),
            max_entry_bytes: MAX_PUT_BYTES,
        }
    }

    fn parse(batch: &Batch) -> InvocationsReported {
        serde_json::from_str(&batch.detail).unwrap()
    }

    #[test]
    fn a_batch_is_cut_when_it_holds_max_reports() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(3, 10));
        assert_eq!(b.push(report(0), t0), None);
        assert_eq!(b.push(report(1), t0), None);
        let batch = b
            .push(report(2), t0)
            .expect("the third report fills the batch");
        assert_eq!(batch.reports, 3);
        assert!(b.is_empty());
        assert_eq!(b.deadline(), None);
        let detail = parse(&batch);
        assert_eq!(detail.version, 1);
        assert_eq!(detail.batch_id, batch.batch_id);
        assert_eq!(detail.function_name, "orders-api");
        assert_eq!(detail.architecture, "arm64");
        assert_eq!(detail.memory_mb, 512);
        assert_eq!(detail.reports, vec![report(0), report(1), report(2)]);
    }

    #[test]
    fn a_batch_is_cut_when_its_first_report_is_max_age_old() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(500, 10));
        assert_eq!(b.poll(t0), None, "nothing buffered, nothing due");
        b.push(report(0), t0);
        b.push(report(1), t0 + Duration::from_secs(9));
        assert_eq!(b.deadline(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(b.poll(t0 + Duration::from_millis(9_999)), None);
        let batch = b.poll(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(batch.reports, 2);
        // The next batch's age counts from its own first report.
        b.push(report(2), t0 + Duration::from_secs(15));
        assert_eq!(b.deadline(), Some(t0 + Duration::from_secs(25)));
    }

    #[test]
    fn flush_cuts_whatever_is_buffered_and_nothing_when_empty() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(500, 10));
        assert_eq!(b.flush(), None);
        b.push(report(0), t0);
        assert_eq!(b.flush().unwrap().reports, 1);
        assert_eq!(b.flush(), None);
    }

    #[test]
    fn every_batch_gets_a_fresh_uuid_v4() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(1, 10));
        let ids: Vec<String> = (0..50)
            .map(|i| b.push(report(i), t0).unwrap().batch_id)
            .collect();
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn the_predicted_entry_size_is_the_serialized_size() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(500, 10));
        for i in 0..123 {
            b.push(report(i), t0);
        }
        let predicted = b.entry_bytes();
        let batch = b.flush().unwrap();
        assert_eq!(batch.entry_size(), predicted);
        assert_eq!(
            batch.entry_size(),
            SOURCE.len() + DETAIL_TYPE.len() + batch.detail.len()
        );
    }

    #[test]
    fn batches_are_split_to_stay_within_the_entry_limit() {
        let t0 = Instant::now();
        let mut lim = limits(100_000, 10);
        lim.max_entry_bytes = 10_000;
        let mut b = Batcher::new(function(), lim);
        let mut batches = Vec::new();
        for i in 0..1_000 {
            batches.extend(b.push(report(i), t0));
            assert!(b.entry_bytes() <= 10_000);
        }
        batches.extend(b.flush());
        assert!(batches.len() > 10);
        let mut seen = 0;
        for batch in &batches {
            assert!(batch.entry_size() <= 10_000, "{}", batch.entry_size());
            let detail = parse(batch);
            for r in detail.reports {
                assert_eq!(r, report(seen), "no report lost or reordered");
                seen += 1;
            }
        }
        assert_eq!(seen, 1_000);
        // Every batch but the last was cut because the next report did not
        // fit: it is nearly full.
        for batch in &batches[..batches.len() - 1] {
            assert!(batch.entry_size() > 10_000 - 200);
        }
    }

    #[test]
    fn full_default_batches_fit_a_put_events_call() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), BatchLimits::default());
        let batch = (0..500).find_map(|i| b.push(report(i), t0)).unwrap();
        assert_eq!(batch.reports, 500);
        assert!(batch.entry_size() < MAX_PUT_BYTES);
    }

    #[test]
    fn a_report_too_large_for_any_entry_is_dropped_alone() {
        let t0 = Instant::now();
        let mut lim = limits(500, 10);
        lim.max_entry_bytes = 2_000;
        let mut b = Batcher::new(function(), lim);
        b.push(report(0), t0);
        let mut huge = report(1);
        huge.request_id = "x".repeat(5_000);
        assert_eq!(b.push(huge, t0), None);
        assert_eq!(b.oversized(), 1);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn init_duration_is_null_when_absent() {
        let t0 = Instant::now();
        let mut b = Batcher::new(function(), limits(500, 10));
        b.push(report(1), t0);
        let batch = b.flush().unwrap();
        let value: serde_json::Value = serde_json::from_str(&batch.detail).unwrap();
        let r = &value["reports"][0];
        assert!(r["init_duration_ms"].is_null());
        assert_eq!(r["timestamp"], "2030-01-01T00:00:00.001Z");
    }
}
