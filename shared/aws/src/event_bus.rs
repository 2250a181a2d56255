//! The [`EventBus`] port on EventBridge `PutEvents`.
//!
//! `PutEvents` takes at most 10 entries and 256 KiB a call, and answers
//! per entry: a call can succeed while some of its entries were refused.
//! Entries refused for a passing reason (throttling, an internal failure)
//! are sent again with backoff; entries refused for good (malformed detail,
//! a source the caller may not use) are reported at once, with AWS's code.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use purser_core::events::{MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES};
use purser_core::{BusError, EventBus, EventEntry, RejectedEntry};

/// Puts events on one EventBridge bus (entries that name no bus go to it).
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// An adapter whose unnamed entries go to `bus_name` (a name or an ARN).
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(config), bus_name)
    }

    /// Replaces the default retry policy for refused entries.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError> {
        put_all(&self.client, &self.bus_name, &self.retry, entries).await
    }
}

/// How entries that EventBridge refused for a passing reason are sent
/// again. Call-level failures (network, 5xx, throttling of the whole call)
/// are not this policy's business: the SDK's own retry strategy handles
/// those before an error reaches the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls that carry a given entry, the first one included (at least 1).
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles with each retry.
    pub base_delay: Duration,
    /// The longest delay between two attempts, so a Lambda's few seconds
    /// are not spent waiting.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): exponential,
    /// capped, with "equal jitter" (half fixed, half random) so that many
    /// functions throttled at once do not come back in step, yet every one
    /// still backs off.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Per-entry error codes worth sending again. AWS documents
/// `InternalFailure` and `ThrottlingException` as the retryable ones; the
/// others are the spellings AWS services use for the same passing causes.
/// Any other code is taken as permanent: it is reported, not retried
/// blindly.
fn is_transient(code: &str) -> bool {
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

/// What EventBridge did with one entry of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused { code: String, message: String },
}

/// Sends one `PutEvents` call and returns one outcome per entry, in order.
/// The seam that lets batching and retries be tested without the network.
trait SendBatch: Sync {
    fn send(
        &self,
        batch: &[EventEntry],
    ) -> impl Future<Output = Result<Vec<Outcome>, BusError>> + Send;
}

impl SendBatch for aws_sdk_eventbridge::Client {
    async fn send(&self, batch: &[EventEntry]) -> Result<Vec<Outcome>, BusError> {
        let output = self
            .put_events()
            .set_entries(Some(batch.iter().map(request_entry).collect()))
            .send()
            .await
            .map_err(|e| {
                BusError::Unavailable(format!("PutEvents: {}", DisplayErrorContext(&e)))
            })?;
        Ok(outcomes(output.failed_entry_count(), output.entries()))
    }
}

fn request_entry(entry: &EventEntry) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .set_source(entry.source.clone())
        .set_detail_type(entry.detail_type.clone())
        .set_detail(entry.detail.clone())
        .set_resources((!entry.resources.is_empty()).then(|| entry.resources.clone()))
        .set_time(
            entry
                .time
                .map(|t| AwsDateTime::from_millis(t.timestamp_millis())),
        )
        .set_event_bus_name(entry.event_bus_name.clone())
        .set_trace_header(entry.trace_header.clone())
        .build()
}

/// Reads the per-entry results of a call: one per entry, in order.
fn outcomes(failed_entry_count: i32, results: &[PutEventsResultEntry]) -> Vec<Outcome> {
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
    if usize::try_from(failed_entry_count).ok() != Some(refused) {
        tracing::warn!(
            failed_entry_count,
            refused,
            "PutEvents' FailedEntryCount disagrees with its entries; trusting the entries"
        );
    }
    outcomes
}

/// Puts `entries` in calls within `PutEvents`' limits, retries the entries
/// refused for a passing reason and reports the rest.
///
/// A call that fails as a whole ends the put with `Unavailable`: entries of
/// earlier calls were accepted, and the caller retries the whole put, which
/// is safe because EventBridge delivers at least once anyway and handlers
/// are idempotent.
async fn put_all<S: SendBatch>(
    sender: &S,
    bus: &str,
    retry: &RetryPolicy,
    entries: Vec<EventEntry>,
) -> Result<(), BusError> {
    let total = entries.len();
    let mut rejected = Vec::new();
    let mut pending = Vec::with_capacity(total);
    for mut entry in entries {
        if entry.event_bus_name.as_deref().is_none_or(str::is_empty) {
            entry.event_bus_name = Some(bus.to_owned());
        }
        let size = entry.size();
        if size > MAX_PUT_BYTES {
            // AWS refuses the whole call for it (ValidationException), which
            // would take the entry's neighbours down too: refuse it alone.
            rejected.push(RejectedEntry {
                entry,
                code: "ValidationException".into(),
                message: format!(
                    "the entry is {size} bytes; PutEvents takes at most {MAX_PUT_BYTES} bytes a call \
                     (refused before sending)"
                ),
            });
        } else {
            pending.push(entry);
        }
    }

    let mut attempt = 1;
    while !pending.is_empty() {
        let mut passing = Vec::new();
        for batch in batches(pending) {
            let sent = batch.len();
            let outcomes = sender.send(&batch).await?;
            if outcomes.len() != sent {
                // Results cannot be matched to entries: which were accepted
                // is unknown, so the put as a whole did not go through.
                return Err(BusError::Unavailable(format!(
                    "PutEvents answered {} results for {sent} entries",
                    outcomes.len()
                )));
            }
            let mut failed = 0;
            for (entry, outcome) in batch.into_iter().zip(outcomes) {
                if let Outcome::Refused { code, message } = outcome {
                    failed += 1;
                    let refused = RejectedEntry {
                        entry,
                        code,
                        message,
                    };
                    if is_transient(&refused.code) {
                        passing.push(refused);
                    } else {
                        rejected.push(refused);
                    }
                }
            }
            tracing::debug!(bus, entries = sent, failed, attempt, "PutEvents");
        }
        if passing.is_empty() {
            break;
        }
        if attempt >= retry.max_attempts {
            rejected.append(&mut passing);
            break;
        }
        let delay = retry.delay(attempt);
        tracing::warn!(
            bus,
            failed = passing.len(),
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            code = %passing[0].code,
            "EventBridge refused entries for a passing reason; retrying them"
        );
        tokio::time::sleep(delay).await;
        pending = passing.into_iter().map(|r| r.entry).collect();
        attempt += 1;
    }

    if rejected.is_empty() {
        Ok(())
    } else {
        tracing::warn!(
            bus,
            entries = total,
            failed = rejected.len(),
            "events were not accepted"
        );
        Err(BusError::Rejected { total, rejected })
    }
}

/// Splits entries, in order, into calls of at most `MAX_ENTRIES_PER_PUT`
/// entries and `MAX_PUT_BYTES` bytes. Every entry fits a call on its own
/// (larger ones are refused before).
fn batches(entries: Vec<EventEntry>) -> Vec<Vec<EventEntry>> {
    let mut batches = Vec::new();
    let mut current: Vec<EventEntry> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let size = entry.size();
        if !current.is_empty()
            && (current.len() == MAX_ENTRIES_PER_PUT || bytes + size > MAX_PUT_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(entry);
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

    /// A fake `PutEvents`: `respond` decides each entry's outcome from the
    /// entry and how many times it was sent before. It records every call.
    struct FakePutEvents<F> {
        respond: F,
        calls: Mutex<Vec<Vec<EventEntry>>>,
        seen: Mutex<HashMap<String, u32>>,
    }

    impl<F: Fn(&EventEntry, u32) -> Outcome + Sync + Send> FakePutEvents<F> {
        fn new(respond: F) -> Self {
            Self {
                respond,
                calls: Mutex::new(Vec::new()),
                seen: Mutex::new(HashMap::new()),
            }
        }

        fn calls(&self) -> Vec<Vec<EventEntry>> {
            self.calls.lock().unwrap().clone()
        }

        fn times_sent(&self, entry: &EventEntry) -> u32 {
            self.seen
                .lock()
                .unwrap()
                .get(&key(entry))
                .copied()
                .unwrap_or(0)
        }
    }

    impl<F: Fn(&EventEntry, u32) -> Outcome + Sync + Send> SendBatch for FakePutEvents<F> {
        async fn send(&self, batch: &[EventEntry]) -> Result<Vec<Outcome>, BusError> {
            assert!(
                batch.len() <= MAX_ENTRIES_PER_PUT,
                "a call of {} entries",
                batch.len()
            );
            let bytes: usize = batch.iter().map(EventEntry::size).sum();
            assert!(bytes <= MAX_PUT_BYTES, "a call of {bytes} bytes");
            self.calls.lock().unwrap().push(batch.to_vec());
            let mut seen = self.seen.lock().unwrap();
            Ok(batch
                .iter()
                .map(|e| {
                    let n = seen.entry(key(e)).or_default();
                    let outcome = (self.respond)(e, *n);
                    *n += 1;
                    outcome
                })
                .collect())
        }
    }

    /// A fake whose calls fail as a whole.
    struct Unreachable;

    impl SendBatch for Unreachable {
        async fn send(&self, _: &[EventEntry]) -> Result<Vec<Outcome>, BusError> {
            Err(BusError::Unavailable("dispatch failure".into()))
        }
    }

    fn key(entry: &EventEntry) -> String {
        entry.detail.clone().unwrap_or_default()
    }

    fn entry(n: usize) -> EventEntry {
        EventEntry {
            source: Some("purser.test".into()),
            detail_type: Some("Tested".into()),
            detail: Some(format!(r#"{{"n":{n}}}"#)),
            ..EventEntry::default()
        }
    }

    /// An entry whose size, as EventBridge counts it, is `bytes`.
    fn sized(n: usize, bytes: usize) -> EventEntry {
        let mut e = entry(n);
        let pad = bytes - e.size();
        e.detail = Some(format!(r#"{{"n":{n},"p":"{}"}}"#, "x".repeat(pad - 7)));
        assert_eq!(e.size(), bytes);
        e
    }

    fn refused(code: &str, message: &str) -> Outcome {
        Outcome::Refused {
            code: code.into(),
            message: message.into(),
        }
    }

    const FAST: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    };

    fn detail_has(entry: &EventEntry, text: &str) -> bool {
        entry.detail.as_deref().is_some_and(|d| d.contains(text))
    }

    #[tokio::test]
    async fn splits_entries_into_calls_of_at_most_ten() {
        let fake = FakePutEvents::new(|_, _| Outcome::Accepted);
        let entries: Vec<_> = (0..25).map(entry).collect();
        put_all(&fake, "purser", &FAST, entries.clone())
            .await
            .unwrap();
        let calls = fake.calls();
        let sizes: Vec<_> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let sent: Vec<_> = calls.into_iter().flatten().map(|e| e.detail).collect();
        let given: Vec<_> = entries.into_iter().map(|e| e.detail).collect();
        assert_eq!(sent, given, "every entry once, in order");
    }

    #[tokio::test]
    async fn splits_entries_into_calls_of_at_most_256_kib() {
        let fake = FakePutEvents::new(|_, _| Outcome::Accepted);
        let mut entries: Vec<_> = (0..5).map(|n| sized(n, 100 * 1024)).collect();
        entries.push(sized(5, MAX_PUT_BYTES));
        entries.push(entry(6));
        put_all(&fake, "purser", &FAST, entries).await.unwrap();
        let sizes: Vec<_> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1, 1, 1]);
    }

    #[tokio::test]
    async fn refuses_an_entry_over_the_call_limit_without_sending_it() {
        let fake = FakePutEvents::new(|_, _| Outcome::Accepted);
        let big = sized(1, MAX_PUT_BYTES + 1);
        let err = put_all(
            &fake,
            "purser",
            &FAST,
            vec![entry(0), big.clone(), entry(2)],
        )
        .await
        .unwrap_err();
        let BusError::Rejected { total, rejected } = err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(total, 3);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].code, "ValidationException");
        assert_eq!(rejected[0].entry.detail, big.detail);
        assert_eq!(fake.times_sent(&big), 0);
        assert_eq!(fake.times_sent(&entry(0)), 1);
        assert_eq!(fake.times_sent(&entry(2)), 1);
    }

    #[tokio::test]
    async fn names_the_adapters_bus_on_entries_that_name_none() {
        let fake = FakePutEvents::new(|_, _| Outcome::Accepted);
        let mut empty = entry(1);
        empty.event_bus_name = Some(String::new());
        let mut named = entry(2);
        named.event_bus_name = Some("other".into());
        put_all(&fake, "purser", &FAST, vec![entry(0), empty, named])
            .await
            .unwrap();
        let buses: Vec<_> = fake.calls()[0]
            .iter()
            .map(|e| e.event_bus_name.clone().unwrap_or_default())
            .collect();
        assert_eq!(buses, ["purser", "purser", "other"]);
    }

    #[tokio::test]
    async fn retries_only_entries_refused_for_a_passing_reason() {
        // Entries 3 and 7 are throttled twice, entry 5 hits an internal
        // failure once; then all are accepted.
        let fake = FakePutEvents::new(|e, times| {
            if (detail_has(e, r#""n":3}"#) || detail_has(e, r#""n":7}"#)) && times < 2 {
                refused("ThrottlingException", "Rate exceeded")
            } else if detail_has(e, r#""n":5}"#) && times < 1 {
                refused("InternalFailure", "Internal error")
            } else {
                Outcome::Accepted
            }
        });
        put_all(&fake, "purser", &FAST, (0..10).map(entry).collect())
            .await
            .unwrap();
        let calls = fake.calls();
        let sizes: Vec<_> = calls.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [10, 3, 2],
            "each retry carries only the refused entries"
        );
        assert_eq!(fake.times_sent(&entry(3)), 3);
        assert_eq!(fake.times_sent(&entry(5)), 2);
        assert_eq!(fake.times_sent(&entry(0)), 1);
    }

    #[tokio::test]
    async fn reports_permanent_refusals_at_once_with_the_buses_code() {
        let fake = FakePutEvents::new(|e, times| {
            if detail_has(e, r#""n":1}"#) {
                refused("MalformedDetail", "Detail is malformed.")
            } else if detail_has(e, r#""n":2}"#) {
                refused(
                    "NotAuthorizedForSourceException",
                    "Not authorized for the source.",
                )
            } else if detail_has(e, r#""n":3}"#) && times == 0 {
                refused("ThrottlingException", "Rate exceeded")
            } else {
                Outcome::Accepted
            }
        });
        let err = put_all(&fake, "purser", &FAST, (0..5).map(entry).collect())
            .await
            .unwrap_err();
        let BusError::Rejected { total, rejected } = &err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(*total, 5);
        let codes: Vec<_> = rejected
            .iter()
            .map(|r| (r.entry.detail.clone().unwrap_or_default(), r.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (r#"{"n":1}"#.to_owned(), "MalformedDetail"),
                (r#"{"n":2}"#.to_owned(), "NotAuthorizedForSourceException")
            ]
        );
        assert_eq!(rejected[0].message, "Detail is malformed.");
        assert_eq!(fake.times_sent(&entry(1)), 1, "not retried");
        assert_eq!(fake.times_sent(&entry(2)), 1, "not retried");
        assert_eq!(fake.times_sent(&entry(3)), 2, "the throttled one was");
        assert!(
            err.to_string()
                .contains("MalformedDetail (Detail is malformed.)")
        );
    }

    #[tokio::test]
    async fn gives_up_on_passing_refusals_after_the_last_attempt() {
        let fake = FakePutEvents::new(|e, _| {
            if detail_has(e, r#""n":0}"#) {
                refused("ThrottlingException", "Rate exceeded")
            } else {
                Outcome::Accepted
            }
        });
        let err = put_all(&fake, "purser", &FAST, vec![entry(0), entry(1)])
            .await
            .unwrap_err();
        let BusError::Rejected { total: 2, rejected } = err else {
            panic!("expected Rejected of 2, got {err:?}");
        };
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].code, "ThrottlingException");
        assert_eq!(fake.times_sent(&entry(0)), FAST.max_attempts);
        assert_eq!(fake.times_sent(&entry(1)), 1);
    }

    #[tokio::test]
    async fn a_call_that_fails_as_a_whole_makes_the_bus_unavailable() {
        let err = put_all(&Unreachable, "purser", &FAST, vec![entry(0)])
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Unavailable(ref m) if m == "dispatch failure"));
    }

    #[tokio::test]
    async fn an_empty_put_makes_no_call() {
        let fake = FakePutEvents::new(|_, _| Outcome::Accepted);
        put_all(&fake, "purser", &FAST, Vec::new()).await.unwrap();
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn backoff_doubles_within_its_cap_with_jitter() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let first = policy.delay(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = policy.delay(3);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
            let late = policy.delay(40);
            assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&late));
        }
    }

    #[test]
    fn transient_codes_are_told_from_permanent_ones() {
        for code in [
            "ThrottlingException",
            "InternalFailure",
            "InternalException",
            "ServiceUnavailable",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in [
            "MalformedDetail",
            "InvalidArgument",
            "NotAuthorizedForSourceException",
            "AccessDeniedException",
            "SomethingNew",
        ] {
            assert!(!is_transient(code), "{code}");
        }
    }

    #[test]
    fn reads_per_entry_results_in_order() {
        let results = [
            PutEventsResultEntry::builder().event_id("a").build(),
            PutEventsResultEntry::builder()
                .error_code("MalformedDetail")
                .error_message("Detail is malformed.")
                .build(),
        ];
        assert_eq!(
            outcomes(1, &results),
            [
                Outcome::Accepted,
                refused("MalformedDetail", "Detail is malformed.")
            ]
        );
    }

    /// A fake that answers fewer results than entries.
    struct ShortAnswer;

    impl SendBatch for ShortAnswer {
        async fn send(&self, batch: &[EventEntry]) -> Result<Vec<Outcome>, BusError> {
            Ok(vec![Outcome::Accepted; batch.len() - 1])
        }
    }

    #[tokio::test]
    async fn results_that_do_not_match_the_entries_make_the_bus_unavailable() {
        let err = put_all(&ShortAnswer, "purser", &FAST, vec![entry(0), entry(1)])
            .await
            .unwrap_err();
        assert!(
            matches!(err, BusError::Unavailable(ref m) if m.contains("1 results for 2 entries")),
            "{err:?}"
        );
    }

    #[test]
    fn converts_entries_to_the_sdks_shape() {
        let mut e = entry(0);
        e.time = chrono::DateTime::from_timestamp_millis(1_700_000_000_500);
        e.resources = vec!["arn:aws:x".into()];
        e.event_bus_name = Some("purser".into());
        let r = request_entry(&e);
        assert_eq!(r.source(), Some("purser.test"));
        assert_eq!(r.detail_type(), Some("Tested"));
        assert_eq!(r.detail(), Some(r#"{"n":0}"#));
        assert_eq!(r.resources(), ["arn:aws:x"]);
        assert_eq!(r.event_bus_name(), Some("purser"));
        assert_eq!(
            r.time().map(|t| t.to_millis().ok()),
            Some(Some(1_700_000_000_500))
        );
        assert!(request_entry(&entry(0)).resources().is_empty());
    }

    /// The real client, pointed at a port where nothing listens: the error
    /// says why, with the SDK's whole chain of causes.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_with_its_cause() {
        use aws_sdk_eventbridge::config::{
            BehaviorVersion, Credentials, Region, retry::RetryConfig,
        };
        let config = aws_sdk_eventbridge::Config::builder()
            .http_client(crate::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .build();
        let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(config), "purser");
        let err = bus.put(vec![entry(0)]).await.unwrap_err();
        let BusError::Unavailable(message) = err else {
            panic!("expected Unavailable, got {err:?}");
        };
        eprintln!("{message}");
        assert!(message.starts_with("PutEvents: "), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
