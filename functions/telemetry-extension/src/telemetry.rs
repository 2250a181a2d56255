//! What the Lambda Telemetry API posts to the extension, read leniently.
//!
//! Lambda posts a JSON array of events (`{"time", "type", "record"}`); the
//! extension subscribes to `platform` events only. Each event is read on
//! its own, so an event type this code does not know (`platform.restore*`
//! under SnapStart, a type AWS adds later) or an odd record never costs
//! the other events of the post: it is counted and skipped.
//!
//! Only two types matter: `platform.report`, which becomes an
//! [`InvocationReport`], and `platform.start`, whose request id tells, at
//! shutdown, whether a report is still to come.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::batch::InvocationReport;

/// One post of the Telemetry API, sorted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Telemetry {
    /// Reports of finished invocations, in the order Lambda posted them.
    pub reports: Vec<InvocationReport>,
    /// Request ids of the `platform.start` events of the post.
    pub started: Vec<String>,
    /// `platform.report` events that cannot be billed: a malformed record,
    /// or the metrics of Lambda Managed Instances, which carry
    /// `durationMs` only (no billed duration, no memory).
    pub unusable_reports: usize,
    /// Events of other types, or that are not events at all.
    pub ignored: usize,
}

/// The body of a post is not a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnArray(pub String);

impl std::fmt::Display for NotAnArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a Telemetry API post must be a JSON array of events: {}",
            self.0
        )
    }
}

impl std::error::Error for NotAnArray {}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    time: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    record: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlatformStart {
    request_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlatformReport {
    request_id: String,
    metrics: ReportMetrics,
}

/// `ReportMetrics` of the Telemetry API reference. The integers are read
/// as numbers, whatever their spelling (`694` or `694.0`).
#[derive(Deserialize)]
struct ReportMetrics {
    #[serde(rename = "durationMs")]
    duration_ms: f64,
    #[serde(rename = "billedDurationMs", default)]
    billed_duration_ms: Option<f64>,
    #[serde(rename = "maxMemoryUsedMB", default)]
    max_memory_used_mb: Option<f64>,
    #[serde(rename = "initDurationMs", default)]
    init_duration_ms: Option<f64>,
}

/// Sorts one Telemetry API post. `received` stands in for an event whose
/// `time` is missing or unreadable.
pub fn parse_post(body: &[u8], received: DateTime<Utc>) -> Result<Telemetry, NotAnArray> {
    let events: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| NotAnArray(e.to_string()))?;
    let mut out = Telemetry::default();
    for event in events {
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(event.get()) else {
            out.ignored += 1;
            continue;
        };
        match (&*envelope.kind, envelope.record) {
            ("platform.report", Some(record)) => {
                let time = envelope
                    .time
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(received, |t| t.with_timezone(&Utc));
                match report(record, time) {
                    Some(r) => out.reports.push(r),
                    None => out.unusable_reports += 1,
                }
            }
            ("platform.report", None) => out.unusable_reports += 1,
            ("platform.start", Some(record)) => {
                match serde_json::from_str::<PlatformStart>(record.get()) {
                    Ok(start) => out.started.push(start.request_id),
                    Err(_) => out.ignored += 1,
                }
            }
            _ => out.ignored += 1,
        }
    }
    Ok(out)
}

/// A `platform.report` record as a report, or `None` when it cannot be
/// billed (the recorder would refuse the whole batch for one bad report).
fn report(record: &RawValue, time: DateTime<Utc>) -> Option<InvocationReport> {
    let PlatformReport {
        request_id,
        metrics,
    } = serde_json::from_str(record.get()).ok()?;
    let non_negative = |v: f64| v.is_finite() && v >= 0.0;
    if request_id.is_empty() || !non_negative(metrics.duration_ms) {
        return None;
    }
    let billed = metrics.billed_duration_ms.filter(|v| non_negative(*v))?;
    let memory = metrics.max_memory_used_mb.filter(|v| non_negative(*v))?;
    Some(InvocationReport {
        request_id,
        timestamp: time,
        duration_ms: metrics.duration_ms,
        // Whole numbers on the wire; `as` saturates at the type's bounds.
        billed_duration_ms: billed.ceil() as u64,
        max_memory_used_mb: memory.ceil() as u32,
        init_duration_ms: metrics.init_duration_ms.filter(|v| non_negative(*v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    /// The `platform.report` example of the Telemetry API `Event` schema
    /// reference, as AWS prints it except for the trailing comma after
    /// `requestId`, which makes the printed example invalid JSON.
    const REFERENCE_REPORT: &str = r#"{
        "time": "2022-10-12T00:01:15.000Z",
        "type": "platform.report",
        "record": {
            "metrics": {
                "billedDurationMs": 694,
                "durationMs": 693.92,
                "initDurationMs": 397.68,
                "maxMemoryUsedMB": 84,
                "memorySizeMB": 128
            },
            "requestId": "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"
        }
    }"#;

    #[test]
    fn reads_the_reference_platform_report() {
        let post = format!("[{REFERENCE_REPORT}]");
        let t = parse_post(post.as_bytes(), received()).unwrap();
        assert_eq!(
            t.reports,
            vec![InvocationReport {
                request_id: "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa".into(),
                timestamp: Utc.with_ymd_and_hms(2022, 10, 12, 0, 1, 15).unwrap(),
                duration_ms: 693.92,
                billed_duration_ms: 694,
                max_memory_used_mb: 84,
                init_duration_ms: Some(397.68),
            }]
        );
        assert_eq!((t.unusable_reports, t.ignored), (0, 0));
    }

    /// A whole post as Lambda sends it to a SnapStart function: the restore
    /// events are unknown to `lambda-extension`'s typed records (which
    /// would refuse the whole post); here they are only counted.
    #[test]
    fn a_post_with_unknown_event_types_keeps_its_reports() {
        let post = r#"[
          {"time":"2022-10-12T00:00:15.064Z","type":"platform.restoreStart","record":{"runtimeVersion":"python:3.12.v30","runtimeVersionArn":"arn","functionName":"f","functionVersion":"3","instanceId":"82561ce0","instanceMaxMemory":256}},
          {"time":"2022-10-12T00:00:15.064Z","type":"platform.restoreRuntimeDone","record":{"status":"success"}},
          {"time":"2022-10-12T00:00:15.080Z","type":"platform.initStart","record":{"initializationType":"snap-start","phase":"snap-start"}},
          {"time":"2022-10-21T14:05:03.165Z","type":"platform.start","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","version":"3","tracing":{"spanId":"24cd7d670fa455f0","type":"X-Amzn-Trace-Id","value":"Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"}}},
          {"time":"2022-10-21T14:05:05.764Z","type":"platform.runtimeDone","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","status":"success","metrics":{"durationMs":2599.0,"producedBytes":8}}},
          {"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","status":"timeout","metrics":{"durationMs":2599.4,"billedDurationMs":2600,"memorySizeMB":256,"maxMemoryUsedMB":94,"restoreDurationMs":120.5},"spans":[{"name":"responseLatency","start":"2022-10-21T14:05:03.165Z","durationMs":2598.0}]}},
          {"time":"2022-10-21T14:05:06.000Z","type":"platform.somethingNew","record":{}},
          "not an event",
          {"time":"2022-10-21T14:05:06.000Z","type":"platform.logsDropped","record":{"droppedBytes":1,"droppedRecords":1,"reason":"slow"}}
        ]"#;
        let t = parse_post(post.as_bytes(), received()).unwrap();
        assert_eq!(t.started, vec!["459921b5-681c-4a96-beb0-81e0aa586026"]);
        assert_eq!(t.reports.len(), 1);
        let r = &t.reports[0];
        assert_eq!(r.billed_duration_ms, 2600);
        assert_eq!(r.max_memory_used_mb, 94);
        assert_eq!(r.init_duration_ms, None);
        assert_eq!(t.ignored, 7);
    }

    #[test]
    fn managed_instance_reports_without_billing_metrics_are_unusable() {
        let post = r#"[{"time":"2025-12-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"r1","status":"success","metrics":{"durationMs":12.5}}},
                       {"time":"2025-12-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"","metrics":{"durationMs":1,"billedDurationMs":1,"maxMemoryUsedMB":1}}},
                       {"time":"2025-12-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"r3","metrics":{"durationMs":-1,"billedDurationMs":1,"maxMemoryUsedMB":1}}},
                       {"time":"2025-12-01T00:00:00.000Z","type":"platform.report"}]"#;
        let t = parse_post(post.as_bytes(), received()).unwrap();
        assert!(t.reports.is_empty());
        assert_eq!(t.unusable_reports, 4);
    }

    #[test]
    fn a_missing_or_odd_time_falls_back_to_the_receipt_time_and_floats_are_whole() {
        let post = r#"[{"type":"platform.report","record":{"requestId":"a","metrics":{"durationMs":1.5,"billedDurationMs":2.0,"maxMemoryUsedMB":30.2}}},
                       {"time":"yesterday","type":"platform.report","record":{"requestId":"b","metrics":{"durationMs":1.5,"billedDurationMs":2,"maxMemoryUsedMB":30}}},
                       {"time":"2024-02-29T23:59:59.123+02:00","type":"platform.report","record":{"requestId":"c","metrics":{"durationMs":1.5,"billedDurationMs":2,"maxMemoryUsedMB":30}}}]"#;
        let t = parse_post(post.as_bytes(), received()).unwrap();
        assert_eq!(t.reports[0].timestamp, received());
        assert_eq!(t.reports[0].billed_duration_ms, 2);
        assert_eq!(t.reports[0].max_memory_used_mb, 31);
        assert_eq!(t.reports[1].timestamp, received());
        assert_eq!(
            t.reports[2].timestamp,
            Utc.with_ymd_and_hms(2024, 2, 29, 21, 59, 59).unwrap()
                + chrono::Duration::milliseconds(123)
        );
    }

    #[test]
    fn a_body_that_is_not_an_array_is_refused() {
        assert!(parse_post(b"{}", received()).is_err());
        assert!(parse_post(b"[", received()).is_err());
        assert_eq!(parse_post(b"[]", received()).unwrap(), Telemetry::default());
    }
}
