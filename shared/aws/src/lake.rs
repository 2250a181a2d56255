//! The [`LakeSink`] port on Amazon Data Firehose `PutRecordBatch`, one
//! Direct PUT delivery stream per lake table.
//!
//! Each record is sent as one line of JSON, its `\n` included: Firehose
//! concatenates records as they come and adds no delimiter of its own, and
//! objects of undelimited JSON cannot be read line by line (nor by Athena).
//!
//! `PutRecordBatch` takes at most 500 records and 4 MiB a call, and 1,000
//! KiB a record, and answers per record: a call can succeed while some of
//! its records were refused (`FailedPutCount`). Refused records, and those
//! of a call that failed as a whole (after the SDK's own retries: the
//! stream is missing or unreachable), are sent again alone, with backoff.
//! What Firehose still has not taken after the last attempt, and a record
//! too large for it ever to take, goes to S3 under the dead-letter prefix
//! as newline-delimited JSON, like the lake itself, so it can be replayed:
//! nothing is dropped. Only when even that write fails is the lake
//! `Unavailable`, and the caller's event is retried whole.
//!
//! Delivery is at least once: a call whose answer was lost, or an append
//! retried after `Unavailable`, sends records Firehose may already hold.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_firehose::error::DisplayErrorContext;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{PutRecordBatchResponseEntry, Record};
use purser_core::lake::LakeTable;
use purser_core::{Appended, Clock, LakeError, LakeSink, SystemClock};
use serde_json::Value;

use crate::RetryPolicy;

/// Records per `PutRecordBatch` call.
const MAX_RECORDS_PER_CALL: usize = 500;
/// Bytes of record data per call (the data, as Firehose's quota counts it,
/// not its base64 encoding on the wire).
const MAX_CALL_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of one record, its newline included.
const MAX_RECORD_BYTES: usize = 1_000 * 1024;
/// S3 limits a user metadata header to 2 KiB in all.
const MAX_REASON_BYTES: usize = 1_024;

/// The delivery stream of each lake table (names, not ARNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeStreams {
    pub invocations: String,
    pub deployments: String,
    pub usage: String,
    pub leases: String,
}

impl LakeStreams {
    pub fn of(&self, table: LakeTable) -> &str {
        match table {
            LakeTable::Invocations => &self.invocations,
            LakeTable::Deployments => &self.deployments,
            LakeTable::Usage => &self.usage,
            LakeTable::Leases => &self.leases,
        }
    }
}

/// Where records Firehose did not take are kept:
/// `s3://<bucket>/<prefix><table>/dt=YYYY-MM-DD/<uuid>.json`, the day being
/// the day of the write. The prefix is used as given: end it with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterBucket {
    pub bucket: String,
    pub prefix: String,
}

/// Appends records to the lake's Firehose delivery streams.
#[derive(Clone)]
pub struct FirehoseSink {
    firehose: aws_sdk_firehose::Client,
    s3: aws_sdk_s3::Client,
    streams: LakeStreams,
    dead_letter: DeadLetterBucket,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FirehoseSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirehoseSink")
            .field("streams", &self.streams)
            .field("dead_letter", &self.dead_letter)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl FirehoseSink {
    pub fn new(
        firehose: aws_sdk_firehose::Client,
        s3: aws_sdk_s3::Client,
        streams: LakeStreams,
        dead_letter: DeadLetterBucket,
    ) -> Self {
        Self {
            firehose,
            s3,
            streams,
            dead_letter,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn from_config(
        config: &aws_config::SdkConfig,
        streams: LakeStreams,
        dead_letter: DeadLetterBucket,
    ) -> Self {
        Self::new(
            aws_sdk_firehose::Client::new(config),
            aws_sdk_s3::Client::new(config),
            streams,
            dead_letter,
        )
    }

    /// Replaces how refused records and failed calls are sent again. The
    /// default tries four times, waiting at most 0.7 s in all, so that a
    /// Lambda's time is not spent waiting on a stream that is down.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the clock that dates dead-letter objects.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn streams(&self) -> &LakeStreams {
        &self.streams
    }

    pub fn dead_letter(&self) -> &DeadLetterBucket {
        &self.dead_letter
    }
}

#[async_trait]
impl LakeSink for FirehoseSink {
    async fn append(&self, table: LakeTable, records: Vec<Value>) -> Result<Appended, LakeError> {
        let target = Target {
            table,
            stream: self.streams.of(table),
            dead_letter: &self.dead_letter,
        };
        append_all(
            &self.firehose,
            &self.s3,
            &target,
            &self.retry,
            self.clock.as_ref(),
            records,
        )
        .await
    }
}

/// Where one append goes.
struct Target<'a> {
    table: LakeTable,
    stream: &'a str,
    dead_letter: &'a DeadLetterBucket,
}

/// What Firehose did with one record of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused { code: String, message: String },
}

/// Sends one `PutRecordBatch` call and returns one outcome per record, in
/// order; `Err` when the call failed as a whole. The seam that lets
/// batching and retries be tested without the network.
trait PutRecords: Sync {
    fn put(
        &self,
        stream: &str,
        batch: &[Vec<u8>],
    ) -> impl Future<Output = Result<Vec<Outcome>, String>> + Send;
}

/// Writes one S3 object; `Err` says why not.
trait WriteObject: Sync {
    fn write(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        reasons: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

impl PutRecords for aws_sdk_firehose::Client {
    async fn put(&self, stream: &str, batch: &[Vec<u8>]) -> Result<Vec<Outcome>, String> {
        let records = batch
            .iter()
            .map(|line| Record::builder().data(Blob::new(line.clone())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("a Firehose record is incomplete: {e}"))?;
        let output = self
            .put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(records))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "PutRecordBatch to stream {stream}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(outcomes(
            output.failed_put_count(),
            output.request_responses(),
        ))
    }
}

impl WriteObject for aws_sdk_s3::Client {
    async fn write(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        reasons: &str,
    ) -> Result<(), String> {
        self.put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .metadata("purser-reasons", header_safe(reasons))
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "PutObject s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }
}

/// Reads the per-record results of a call: one per record, in order.
fn outcomes(failed_put_count: i32, results: &[PutRecordBatchResponseEntry]) -> Vec<Outcome> {
    let outcomes: Vec<Outcome> = results
        .iter()
        .map(|r| match r.error_code().filter(|c| !c.is_empty()) {
            None => Outcome::Accepted,
            Some(code) => Outcome::Refused {
                code: code.to_owned(),
                message: r.error_message().unwrap_or_default().to_owned(),
            },
        })
        .collect();
    let refused = outcomes.iter().filter(|o| **o != Outcome::Accepted).count();
    if usize::try_from(failed_put_count).ok() != Some(refused) {
        tracing::warn!(
            failed_put_count,
            refused,
            "PutRecordBatch's FailedPutCount disagrees with its records; trusting the records"
        );
    }
    outcomes
}

/// A record Firehose has not taken, and why (the last reason it got).
struct Failed {
    line: Vec<u8>,
    reason: String,
}

/// Sends `records` to the target's stream in calls within Firehose's
/// limits, resends what was refused, and dead-letters what never went in.
async fn append_all<F: PutRecords, S: WriteObject>(
    firehose: &F,
    s3: &S,
    target: &Target<'_>,
    retry: &RetryPolicy,
    clock: &dyn Clock,
    records: Vec<Value>,
) -> Result<Appended, LakeError> {
    let (table, stream) = (target.table.name(), target.stream);
    let mut dead: Vec<Failed> = Vec::new();
    let mut pending: Vec<Vec<u8>> = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            LakeError::Unavailable(format!("record {i} for table {table} is not JSON: {e}"))
        })?;
        line.push(b'\n');
        if line.len() > MAX_RECORD_BYTES {
            // Firehose would refuse the whole call for it: never send it.
            let reason = format!(
                "the record is {} bytes; Firehose takes at most {MAX_RECORD_BYTES}",
                line.len()
            );
            dead.push(Failed { line, reason });
        } else {
            pending.push(line);
        }
    }

    let mut written = 0;
    let mut attempt = 1;
    while !pending.is_empty() {
        let mut failed: Vec<Failed> = Vec::new();
        for batch in batches(pending) {
            let sent = batch.len();
            let before = failed.len();
            match firehose.put(stream, &batch).await {
                Ok(outcomes) if outcomes.len() == sent => {
                    for (line, outcome) in batch.into_iter().zip(outcomes) {
                        match outcome {
                            Outcome::Accepted => written += 1,
                            Outcome::Refused { code, message } => failed.push(Failed {
                                line,
                                reason: format!("{code}: {message}"),
                            }),
                        }
                    }
                }
                answer => {
                    // Which records were taken is unknown: all are sent
                    // again (at least once, never lost).
                    let reason = match answer {
                        Ok(outcomes) => format!(
                            "PutRecordBatch answered {} results for {sent} records",
                            outcomes.len()
                        ),
                        Err(why) => why,
                    };
                    tracing::warn!(table, stream, records = sent, attempt, error = %reason, "PutRecordBatch failed as a whole");
                    failed.extend(batch.into_iter().map(|line| Failed {
                        line,
                        reason: reason.clone(),
                    }));
                }
            }
            let refused = failed.len() - before;
            tracing::debug!(
                table,
                stream,
                records = sent,
                refused,
                attempt,
                "PutRecordBatch"
            );
        }
        if failed.is_empty() {
            break;
        }
        if attempt >= retry.max_attempts {
            dead.append(&mut failed);
            break;
        }
        let delay = retry.delay(attempt);
        tracing::warn!(
            table,
            stream,
            failed = failed.len(),
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason = %failed[0].reason,
            "Firehose did not take some records; sending them again"
        );
        tokio::time::sleep(delay).await;
        pending = failed.into_iter().map(|f| f.line).collect();
        attempt += 1;
    }

    let dead_lettered = dead.len();
    if !dead.is_empty() {
        write_dead_letters(s3, target, clock, dead).await?;
    }
    tracing::debug!(table, stream, written, dead_lettered, "appended");
    Ok(Appended {
        written,
        dead_lettered,
    })
}

/// Writes `dead` as one newline-delimited object under the dead-letter
/// prefix, dated the day of the write.
async fn write_dead_letters<S: WriteObject>(
    s3: &S,
    target: &Target<'_>,
    clock: &dyn Clock,
    dead: Vec<Failed>,
) -> Result<(), LakeError> {
    let (table, stream) = (target.table.name(), target.stream);
    let DeadLetterBucket { bucket, prefix } = target.dead_letter;
    let key = format!(
        "{prefix}{table}/dt={}/{}.json",
        clock.now().date_naive().format("%Y-%m-%d"),
        uuid::Uuid::new_v4()
    );
    let reasons = summarize(&dead);
    let count = dead.len();
    let body: Vec<u8> = dead.into_iter().flat_map(|f| f.line).collect();
    if let Err(why) = s3.write(bucket, &key, body, &reasons).await {
        tracing::error!(table, stream, bucket = %bucket, key, records = count, reasons, error = %why,
            "records Firehose did not take could not be dead-lettered either");
        return Err(LakeError::Unavailable(format!(
            "{count} records for stream {stream} (table {table}) were not taken by Firehose \
             ({reasons}) and could not be dead-lettered: {why}"
        )));
    }
    tracing::error!(table, stream, bucket = %bucket, key, dead_lettered = count, reasons,
        "records Firehose did not take were written to the dead-letter bucket");
    Ok(())
}

/// Why records were not taken: each reason once, with its count.
fn summarize(dead: &[Failed]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in dead {
        *counts.entry(f.reason.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(reason, n)| format!("{n} records: {reason}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Text an HTTP header can carry (S3 metadata travels as headers): printable
/// ASCII, within S3's size limit.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(MAX_REASON_BYTES)
        .collect()
}

/// Splits lines, in order, into calls of at most `MAX_RECORDS_PER_CALL`
/// records and `MAX_CALL_BYTES` bytes. Every line fits a call on its own
/// (larger ones are dead-lettered before).
fn batches(lines: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut batches = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for line in lines {
        if !current.is_empty()
            && (current.len() == MAX_RECORDS_PER_CALL || bytes + line.len() > MAX_CALL_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += line.len();
        current.push(line);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use purser_core::ManualClock;
    use serde_json::json;

    /// A fake `PutRecordBatch`: `respond` decides each record's outcome from
    /// the record (a line) and how many times it was sent before. It checks
    /// Firehose's limits on every call and records every call and every
    /// record it accepted.
    struct FakeFirehose<F> {
        respond: F,
        calls: Mutex<Vec<Vec<Vec<u8>>>>,
        seen: Mutex<HashMap<Vec<u8>, u32>>,
        accepted: Mutex<Vec<Vec<u8>>>,
    }

    impl<F: Fn(&[u8], u32) -> Outcome + Sync + Send> FakeFirehose<F> {
        fn new(respond: F) -> Self {
            Self {
                respond,
                calls: Mutex::new(Vec::new()),
                seen: Mutex::new(HashMap::new()),
                accepted: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<Vec<Vec<u8>>> {
            self.calls.lock().unwrap().clone()
        }

        fn sizes(&self) -> Vec<usize> {
            self.calls().iter().map(Vec::len).collect()
        }

        fn times_sent(&self, line: &[u8]) -> u32 {
            self.seen.lock().unwrap().get(line).copied().unwrap_or(0)
        }

        fn accepted(&self) -> Vec<Vec<u8>> {
            self.accepted.lock().unwrap().clone()
        }
    }

    impl<F: Fn(&[u8], u32) -> Outcome + Sync + Send> PutRecords for FakeFirehose<F> {
        async fn put(&self, stream: &str, batch: &[Vec<u8>]) -> Result<Vec<Outcome>, String> {
            assert_eq!(stream, "purser-invocations");
            assert!(!batch.is_empty(), "an empty call");
            assert!(
                batch.len() <= MAX_RECORDS_PER_CALL,
                "a call of {} records",
                batch.len()
            );
            let bytes: usize = batch.iter().map(Vec::len).sum();
            assert!(bytes <= MAX_CALL_BYTES, "a call of {bytes} bytes");
            for line in batch {
                assert!(
                    line.len() <= MAX_RECORD_BYTES,
                    "a record of {} bytes",
                    line.len()
                );
            }
            self.calls.lock().unwrap().push(batch.to_vec());
            let mut seen = self.seen.lock().unwrap();
            let mut accepted = self.accepted.lock().unwrap();
            Ok(batch
                .iter()
                .map(|line| {
                    let n = seen.entry(line.clone()).or_default();
                    let outcome = (self.respond)(line, *n);
                    *n += 1;
                    if outcome == Outcome::Accepted {
                        accepted.push(line.clone());
                    }
                    outcome
                })
                .collect())
        }
    }

    /// An object written: bucket, key, body, reasons.
    type Object = (String, String, Vec<u8>, String);

    /// A fake S3 that keeps what it is given, or refuses every write.
    #[derive(Default)]
    struct FakeS3 {
        refuse: bool,
        objects: Mutex<Vec<Object>>,
    }

    impl FakeS3 {
        fn objects(&self) -> Vec<Object> {
            self.objects.lock().unwrap().clone()
        }

        /// Every line of every object, in order.
        fn lines(&self) -> Vec<Vec<u8>> {
            self.objects()
                .into_iter()
                .flat_map(|(_, _, body, _)| split_lines(&body))
                .collect()
        }
    }

    impl WriteObject for FakeS3 {
        async fn write(
            &self,
            bucket: &str,
            key: &str,
            body: Vec<u8>,
            reasons: &str,
        ) -> Result<(), String> {
            if self.refuse {
                return Err(format!("PutObject s3://{bucket}/{key}: AccessDenied"));
            }
            self.objects
                .lock()
                .unwrap()
                .push((bucket.into(), key.into(), body, reasons.into()));
            Ok(())
        }
    }

    /// A fake whose calls fail as a whole the first `failures` times.
    struct Flaky {
        failures: u32,
        calls: Mutex<u32>,
    }

    impl PutRecords for Flaky {
        async fn put(&self, _: &str, batch: &[Vec<u8>]) -> Result<Vec<Outcome>, String> {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            if *calls <= self.failures {
                Err(
                    "PutRecordBatch to stream purser-invocations: dispatch failure: \
                     connection refused"
                        .into(),
                )
            } else {
                Ok(vec![Outcome::Accepted; batch.len()])
            }
        }
    }

    /// Keeps a line's trailing newline, as the lake does.
    fn split_lines(body: &[u8]) -> Vec<Vec<u8>> {
        body.split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn record(n: usize) -> Value {
        json!({"schema_version": 1, "n": n, "note": "line\nbreak"})
    }

    fn line(value: &Value) -> Vec<u8> {
        let mut line = serde_json::to_vec(value).unwrap();
        line.push(b'\n');
        line
    }

    /// A record whose line, newline included, is `bytes` long.
    fn sized(n: usize, bytes: usize) -> Value {
        let bare = line(&json!({"n": n, "p": ""})).len();
        let value = json!({"n": n, "p": "x".repeat(bytes - bare)});
        assert_eq!(line(&value).len(), bytes);
        value
    }

    fn is(line: &[u8], n: usize) -> bool {
        serde_json::from_slice::<Value>(line).is_ok_and(|v| v["n"] == n)
    }

    fn refused(code: &str) -> Outcome {
        Outcome::Refused {
            code: code.into(),
            message: "Some internal error occurred when attempting to put the record".into(),
        }
    }

    const FAST: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    };

    fn dead_letter() -> DeadLetterBucket {
        DeadLetterBucket {
            bucket: "purser-lake".into(),
            prefix: "dead-letters/".into(),
        }
    }

    fn clock() -> ManualClock {
        ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 21, 23, 59, 0).unwrap())
    }

    async fn append<F: PutRecords>(
        firehose: &F,
        s3: &FakeS3,
        records: Vec<Value>,
    ) -> Result<Appended, LakeError> {
        let dead_letter = dead_letter();
        let target = Target {
            table: LakeTable::Invocations,
            stream: "purser-invocations",
            dead_letter: &dead_letter,
        };
        append_all(firehose, s3, &target, &FAST, &clock(), records).await
    }

    /// Every record was taken by Firehose or dead-lettered, and only once.
    fn assert_each_once<F: Fn(&[u8], u32) -> Outcome + Sync + Send>(
        records: &[Value],
        fake: &FakeFirehose<F>,
        s3: &FakeS3,
    ) {
        let mut expected: Vec<_> = records.iter().map(line).collect();
        let mut got = fake.accepted();
        got.extend(s3.lines());
        expected.sort();
        got.sort();
        assert_eq!(
            got.len(),
            expected.len(),
            "records written or dead-lettered"
        );
        assert!(got == expected, "each record exactly once");
    }

    #[tokio::test]
    async fn packs_calls_of_at_most_500_records_one_json_line_each() {
        let fake = FakeFirehose::new(|_, _| Outcome::Accepted);
        let s3 = FakeS3::default();
        let records: Vec<_> = (0..1_200).map(record).collect();
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 1_200,
                dead_lettered: 0
            }
        );
        assert_eq!(fake.sizes(), [500, 500, 200]);
        let sent: Vec<_> = fake.calls().into_iter().flatten().collect();
        let given: Vec<_> = records.iter().map(line).collect();
        assert!(sent == given, "every record once, in order");
        for line in &sent {
            assert_eq!(line.last(), Some(&b'\n'), "a line ends with its newline");
            assert_eq!(
                line.iter().filter(|b| **b == b'\n').count(),
                1,
                "and has no other: newlines in values are escaped"
            );
        }
        assert!(s3.objects().is_empty());
    }

    #[tokio::test]
    async fn packs_calls_of_at_most_4_mib() {
        let fake = FakeFirehose::new(|_, _| Outcome::Accepted);
        let s3 = FakeS3::default();
        // Four of 1,000 KiB fit 4 MiB (4,096,000 of 4,194,304 bytes); a
        // fifth does not.
        let mut records: Vec<_> = (0..9).map(|n| sized(n, MAX_RECORD_BYTES)).collect();
        records.push(sized(9, 100_000));
        records.push(sized(10, 100_000));
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(appended.written, 11);
        assert_eq!(fake.sizes(), [4, 4, 3]);
        assert_each_once(&records, &fake, &s3);
    }

    #[tokio::test]
    async fn a_record_over_1000_kib_goes_straight_to_the_dead_letters() {
        let fake = FakeFirehose::new(|_, _| Outcome::Accepted);
        let s3 = FakeS3::default();
        let big = sized(1, 1_001 * 1024);
        let largest = sized(2, MAX_RECORD_BYTES);
        let records = vec![record(0), big.clone(), largest.clone(), record(3)];
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 3,
                dead_lettered: 1
            }
        );
        assert_eq!(fake.times_sent(&line(&big)), 0, "never sent");
        assert_eq!(fake.times_sent(&line(&largest)), 1, "1,000 KiB is allowed");
        let objects = s3.objects();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].2, line(&big));
        assert!(objects[0].3.contains("at most 1024000"), "{}", objects[0].3);
        assert_each_once(&records, &fake, &s3);
    }

    #[tokio::test]
    async fn resends_only_the_records_refused_the_first_time() {
        // Every seventh record is refused on its first send only.
        let fake = FakeFirehose::new(|line, times| {
            let n = serde_json::from_slice::<Value>(line).unwrap()["n"]
                .as_u64()
                .unwrap();
            if n.is_multiple_of(7) && times == 0 {
                refused("ServiceUnavailableException")
            } else {
                Outcome::Accepted
            }
        });
        let s3 = FakeS3::default();
        let records: Vec<_> = (0..1_000).map(record).collect();
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 1_000,
                dead_lettered: 0
            }
        );
        let calls = fake.calls();
        assert_eq!(
            fake.sizes(),
            [500, 500, 143],
            "the retry carries only the refused"
        );
        assert!(
            calls[2]
                .iter()
                .all(|l| (0..1_000).step_by(7).any(|n| is(l, n)))
        );
        for (n, r) in records.iter().enumerate() {
            let expected = if n.is_multiple_of(7) { 2 } else { 1 };
            assert_eq!(fake.times_sent(&line(r)), expected, "record {n}");
        }
        assert!(s3.objects().is_empty());
        assert_each_once(&records, &fake, &s3);
    }

    #[tokio::test]
    async fn records_refused_every_time_are_dead_lettered_after_the_last_attempt() {
        let fake = FakeFirehose::new(|line, _| {
            if is(line, 3) || is(line, 8) {
                refused("InternalFailure")
            } else {
                Outcome::Accepted
            }
        });
        let s3 = FakeS3::default();
        let records: Vec<_> = (0..10).map(record).collect();
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 8,
                dead_lettered: 2
            }
        );
        assert_eq!(fake.sizes(), [10, 2, 2, 2]);
        assert_eq!(fake.times_sent(&line(&records[3])), FAST.max_attempts);
        assert_eq!(fake.times_sent(&line(&records[0])), 1);
        let objects = s3.objects();
        assert_eq!(objects.len(), 1, "one object per append");
        let (bucket, key, body, reasons) = &objects[0];
        assert_eq!(bucket, "purser-lake");
        let name = key
            .strip_prefix("dead-letters/invocations/dt=2026-11-21/")
            .unwrap_or_else(|| panic!("{key}"));
        let uuid = name
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("{key}"));
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{key}");
        assert_eq!(split_lines(body), [line(&records[3]), line(&records[8])]);
        assert!(
            reasons.starts_with("2 records: InternalFailure: "),
            "{reasons}"
        );
        assert_each_once(&records, &fake, &s3);
    }

    #[tokio::test]
    async fn random_refusals_lose_and_double_nothing() {
        let mut rng = fastrand::Rng::with_seed(7);
        let verdicts: Vec<Vec<bool>> = (0..700)
            .map(|_| (0..FAST.max_attempts).map(|_| rng.u8(..) < 100).collect())
            .collect();
        let fake = FakeFirehose::new(move |line, times| {
            let n = serde_json::from_slice::<Value>(line).unwrap()["n"]
                .as_u64()
                .unwrap();
            if verdicts[n as usize][times as usize] {
                refused("ServiceUnavailableException")
            } else {
                Outcome::Accepted
            }
        });
        let s3 = FakeS3::default();
        let records: Vec<_> = (0..700).map(record).collect();
        let appended = append(&fake, &s3, records.clone()).await.unwrap();
        assert_eq!(appended.written + appended.dead_lettered, 700);
        assert!(
            appended.dead_lettered > 0 && appended.written > 0,
            "{appended:?}"
        );
        assert_eq!(s3.lines().len(), appended.dead_lettered);
        assert_eq!(fake.accepted().len(), appended.written);
        assert_each_once(&records, &fake, &s3);
    }

    #[tokio::test]
    async fn a_call_that_fails_once_is_sent_again() {
        let flaky = Flaky {
            failures: 1,
            calls: Mutex::new(0),
        };
        let s3 = FakeS3::default();
        let appended = append(&flaky, &s3, (0..3).map(record).collect())
            .await
            .unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 3,
                dead_lettered: 0
            }
        );
        assert_eq!(*flaky.calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn records_of_calls_that_keep_failing_are_dead_lettered_with_the_cause() {
        let flaky = Flaky {
            failures: u32::MAX,
            calls: Mutex::new(0),
        };
        let s3 = FakeS3::default();
        let records: Vec<_> = (0..600).map(record).collect();
        let appended = append(&flaky, &s3, records.clone()).await.unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 0,
                dead_lettered: 600
            }
        );
        assert_eq!(*flaky.calls.lock().unwrap(), 2 * FAST.max_attempts);
        let lines = s3.lines();
        let given: Vec<_> = records.iter().map(line).collect();
        assert!(lines == given, "every record once, in order");
        let reasons = &s3.objects()[0].3;
        assert!(reasons.contains("600 records: PutRecordBatch"), "{reasons}");
        assert!(reasons.contains("connection refused"), "{reasons}");
    }

    #[tokio::test]
    async fn when_the_dead_letters_cannot_be_written_the_lake_is_unavailable() {
        let fake = FakeFirehose::new(|line, _| {
            if is(line, 1) {
                refused("ServiceUnavailableException")
            } else {
                Outcome::Accepted
            }
        });
        let s3 = FakeS3 {
            refuse: true,
            ..FakeS3::default()
        };
        let err = append(&fake, &s3, (0..3).map(record).collect())
            .await
            .unwrap_err();
        let LakeError::Unavailable(message) = err;
        assert!(
            message.contains("1 records for stream purser-invocations"),
            "{message}"
        );
        assert!(message.contains("ServiceUnavailableException"), "{message}");
        assert!(
            message.contains("PutObject s3://purser-lake/dead-letters/invocations/dt=2026-11-21/"),
            "{message}"
        );
        assert!(message.contains("AccessDenied"), "{message}");
    }

    #[tokio::test]
    async fn an_empty_append_makes_no_call() {
        let fake = FakeFirehose::new(|_, _| Outcome::Accepted);
        let s3 = FakeS3::default();
        assert_eq!(
            append(&fake, &s3, Vec::new()).await.unwrap(),
            Appended::default()
        );
        assert!(fake.calls().is_empty());
        assert!(s3.objects().is_empty());
    }

    /// A fake that answers fewer results than records.
    struct ShortAnswer {
        calls: Mutex<u32>,
    }

    impl PutRecords for ShortAnswer {
        async fn put(&self, _: &str, batch: &[Vec<u8>]) -> Result<Vec<Outcome>, String> {
            *self.calls.lock().unwrap() += 1;
            Ok(vec![Outcome::Accepted; batch.len() - 1])
        }
    }

    #[tokio::test]
    async fn results_that_do_not_match_the_records_count_as_a_failed_call() {
        let short = ShortAnswer {
            calls: Mutex::new(0),
        };
        let s3 = FakeS3::default();
        let appended = append(&short, &s3, (0..2).map(record).collect())
            .await
            .unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 0,
                dead_lettered: 2
            }
        );
        assert_eq!(*short.calls.lock().unwrap(), FAST.max_attempts);
        assert!(
            s3.objects()[0]
                .3
                .contains("answered 1 results for 2 records")
        );
    }

    #[test]
    fn reads_per_record_results_in_order() {
        let results = [
            PutRecordBatchResponseEntry::builder()
                .record_id("a")
                .build(),
            PutRecordBatchResponseEntry::builder()
                .error_code("ServiceUnavailableException")
                .error_message("Slow down.")
                .build(),
            PutRecordBatchResponseEntry::builder()
                .record_id("c")
                .error_code("")
                .build(),
        ];
        assert_eq!(
            outcomes(1, &results),
            [
                Outcome::Accepted,
                Outcome::Refused {
                    code: "ServiceUnavailableException".into(),
                    message: "Slow down.".into()
                },
                Outcome::Accepted
            ]
        );
    }

    #[test]
    fn reasons_become_a_header_s3_accepts() {
        let text = format!("été\r\n{}", "x".repeat(5_000));
        let safe = header_safe(&text);
        assert!(safe.starts_with("?t???x"));
        assert_eq!(safe.len(), MAX_REASON_BYTES);
    }

    #[test]
    fn each_table_has_its_stream() {
        let streams = LakeStreams {
            invocations: "purser-invocations".into(),
            deployments: "purser-deployments".into(),
            usage: "purser-usage".into(),
            leases: "purser-leases".into(),
        };
        assert_eq!(streams.of(LakeTable::Invocations), "purser-invocations");
        assert_eq!(streams.of(LakeTable::Deployments), "purser-deployments");
        assert_eq!(streams.of(LakeTable::Usage), "purser-usage");
        assert_eq!(streams.of(LakeTable::Leases), "purser-leases");
    }

    /// The real clients, pointed at a port where nothing listens: records
    /// cannot go to Firehose nor to the dead letters, and the error says
    /// why, with the SDK's chain of causes.
    #[tokio::test]
    async fn unreachable_endpoints_make_the_lake_unavailable_with_the_cause() {
        use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
        let firehose = aws_sdk_firehose::Config::builder()
            .http_client(crate::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .http_client(crate::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .force_path_style(true)
            .retry_config(RetryConfig::disabled())
            .build();
        let sink = FirehoseSink::new(
            aws_sdk_firehose::Client::from_conf(firehose),
            aws_sdk_s3::Client::from_conf(s3),
            LakeStreams {
                invocations: "purser-invocations".into(),
                deployments: "purser-deployments".into(),
                usage: "purser-usage".into(),
                leases: "purser-leases".into(),
            },
            dead_letter(),
        )
        .with_retry(FAST);
        let err = sink
            .append(LakeTable::Invocations, vec![record(0)])
            .await
            .unwrap_err();
        let LakeError::Unavailable(message) = err;
        eprintln!("{message}");
        assert!(
            message.contains("PutRecordBatch to stream purser-invocations"),
            "{message}"
        );
        assert!(
            message.contains("PutObject s3://purser-lake/dead-letters/invocations/"),
            "{message}"
        );
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
