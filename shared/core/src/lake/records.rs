//! The data lake's records, and how the events Purser receives become them.
//!
//! The account and region of a record always come from the EventBridge
//! envelope (set by EventBridge, so a member account cannot forge them),
//! never from the detail.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spend::{Architecture, LambdaPrices};

/// The lake's tables (and Firehose streams, Glue tables, local folders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LakeTable {
    Invocations,
    Deployments,
    /// Usage beyond Lambda, priced as it happens (`UsageRecord`).
    Usage,
    /// Each lease's start and end (`LeaseRecord`): which team held an
    /// account when, for attributing cost by lease.
    Leases,
}

impl LakeTable {
    pub const ALL: [LakeTable; 4] = [
        Self::Invocations,
        Self::Deployments,
        Self::Usage,
        Self::Leases,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Invocations => "invocations",
            Self::Deployments => "deployments",
            Self::Usage => "usage",
            Self::Leases => "leases",
        }
    }
}

impl std::fmt::Display for LakeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every record carries the version of its shape.
pub const LAKE_SCHEMA_VERSION: u32 = 1;

pub const INVOCATIONS_REPORTED: &str = "InvocationsReported";
pub const TELEMETRY_SOURCE: &str = "purser.telemetry";
pub const DEPLOYMENT_REPORTED: &str = "DeploymentReported";
pub const STACK_STATUS_CHANGE: &str = "CloudFormation Stack Status Change";
pub const TEAM_SPEND_UPDATED: &str = "TeamSpendUpdated";

/// Why a detail cannot be recorded; `field` names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RecordError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> RecordError {
    RecordError {
        field: field.into(),
        message: message.into(),
    }
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ------------------------------------------------------------ invocations

/// `InvocationsReported`, as the telemetry extension sends it.
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

/// One `platform.report` of the Telemetry API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationReport {
    pub request_id: String,
    pub timestamp: DateTime<Utc>,
    pub duration_ms: f64,
    pub billed_duration_ms: u64,
    pub max_memory_used_mb: u32,
    #[serde(default)]
    pub init_duration_ms: Option<f64>,
}

/// A batch may hold at most this many reports (EventBridge's 256 KB fits
/// about 1,000 of them; the extension sends far fewer).
pub const MAX_REPORTS: usize = 2_000;

impl InvocationsReported {
    pub fn parse(detail: &Value) -> Result<(Self, Architecture), RecordError> {
        let batch: Self = serde_json::from_value(detail.clone())
            .map_err(|e| bad("detail", format!("not an InvocationsReported detail: {e}")))?;
        if batch.version != 1 {
            return Err(bad(
                "version",
                format!("version {} is not supported (1 is)", batch.version),
            ));
        }
        if batch.batch_id.is_empty() || batch.batch_id.len() > 128 {
            return Err(bad("batch_id", "batch_id must be 1 to 128 characters"));
        }
        if batch.function_name.is_empty() || batch.function_name.len() > 170 {
            return Err(bad(
                "function_name",
                "function_name must be 1 to 170 characters",
            ));
        }
        let arch = Architecture::parse(&batch.architecture)
            .ok_or_else(|| bad("architecture", "architecture must be arm64 or x86_64"))?;
        if !(128..=10_240).contains(&batch.memory_mb) {
            return Err(bad("memory_mb", "memory_mb must be 128 to 10240"));
        }
        if batch.reports.is_empty() || batch.reports.len() > MAX_REPORTS {
            return Err(bad(
                "reports",
                format!("reports must hold 1 to {MAX_REPORTS} reports"),
            ));
        }
        Ok((batch, arch))
    }

    /// The batch's reports that Lambda could have produced, as of `now`,
    /// and the others with why they were refused. A member account is not
    /// trusted: one impossible report must neither count nor stop the
    /// valid reports of its batch.
    pub fn screen(&self, now: DateTime<Utc>) -> Screened<'_> {
        let mut screened = Screened::default();
        for (index, report) in self.reports.iter().enumerate() {
            match report.refusal(self.memory_mb, now) {
                None => screened.valid.push(report),
                Some(reason) => screened.refused.push(RefusedReport {
                    index,
                    request_id: report.request_id.chars().take(128).collect(),
                    reason,
                }),
            }
        }
        screened
    }
}

/// Lambda's longest invocation, 15 minutes: no report bills more.
pub const MAX_BILLED_MS: u64 = 900_000;
/// How old a report may be: the lake's window. A batch id is remembered
/// for 40 days, so an older report could be counted twice.
pub const MAX_REPORT_AGE: Duration = Duration::days(40);
/// How far ahead of Purser's clock a report may be (clock skew).
pub const MAX_REPORT_LEAD: Duration = Duration::minutes(5);

/// A report of a batch, refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedReport {
    /// Its position in the batch's `reports`.
    pub index: usize,
    pub request_id: String,
    pub reason: ReportRefusal,
}

/// Why a report cannot have come from Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportRefusal {
    NoRequestId,
    /// `billed_duration_ms` outside 1..=900,000.
    BilledDuration,
    /// `duration_ms` or `init_duration_ms` negative, not finite or over 15 minutes.
    Duration,
    /// `max_memory_used_mb` over the function's memory.
    MemoryUsed,
    /// More than 40 days old: outside the lake's window.
    TooOld,
    /// More than 5 minutes ahead of Purser's clock.
    InTheFuture,
}

impl ReportRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRequestId => "request_id is empty or over 128 characters",
            Self::BilledDuration => "billed_duration_ms must be 1 to 900000",
            Self::Duration => "duration_ms and init_duration_ms must be 0 to 900000",
            Self::MemoryUsed => "max_memory_used_mb is over the function's memory_mb",
            Self::TooOld => "timestamp is more than 40 days old",
            Self::InTheFuture => "timestamp is more than 5 minutes ahead",
        }
    }
}

impl std::fmt::Display for ReportRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch's reports, sorted by [`InvocationsReported::screen`].
#[derive(Debug, Default)]
pub struct Screened<'a> {
    pub valid: Vec<&'a InvocationReport>,
    pub refused: Vec<RefusedReport>,
}

impl InvocationReport {
    fn refusal(&self, memory_mb: u32, now: DateTime<Utc>) -> Option<ReportRefusal> {
        let duration = |v: f64| v.is_finite() && (0.0..=MAX_BILLED_MS as f64).contains(&v);
        if self.request_id.is_empty() || self.request_id.len() > 128 {
            Some(ReportRefusal::NoRequestId)
        } else if !(1..=MAX_BILLED_MS).contains(&self.billed_duration_ms) {
            Some(ReportRefusal::BilledDuration)
        } else if !duration(self.duration_ms) || self.init_duration_ms.is_some_and(|v| !duration(v))
        {
            Some(ReportRefusal::Duration)
        } else if self.max_memory_used_mb > memory_mb {
            Some(ReportRefusal::MemoryUsed)
        } else if self.timestamp < now - MAX_REPORT_AGE {
            Some(ReportRefusal::TooOld)
        } else if self.timestamp > now + MAX_REPORT_LEAD {
            Some(ReportRefusal::InTheFuture)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    pub schema_version: u32,
    pub account_id: String,
    pub team: Option<String>,
    pub region: String,
    pub function_name: String,
    pub architecture: String,
    pub memory_mb: u32,
    pub request_id: String,
    pub timestamp: String,
    pub duration_ms: f64,
    pub billed_duration_ms: u64,
    pub max_memory_used_mb: u32,
    pub init_duration_ms: Option<f64>,
    /// For analytics; the spend counters add exact decimals.
    pub cost_usd: f64,
}

/// One invocation, priced.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedInvocation {
    pub record: InvocationRecord,
    pub day: NaiveDate,
    pub cost: Decimal,
}

/// The batch's records, each priced with the prices in force on its day.
pub fn invocation_records(
    batch: &InvocationsReported,
    reports: &[&InvocationReport],
    architecture: Architecture,
    account_id: &str,
    region: &str,
    team: Option<&str>,
    prices: impl Fn(NaiveDate) -> Option<LambdaPrices>,
) -> Result<Vec<PricedInvocation>, RecordError> {
    // A batch spans a day or two: look prices up once per day.
    let mut in_force: Option<(NaiveDate, LambdaPrices)> = None;
    reports
        .iter()
        .map(|r| {
            let day = r.timestamp.date_naive();
            let price = match &in_force {
                Some((d, price)) if *d == day => price,
                _ => {
                    let price = prices(day).ok_or_else(|| {
                        bad(
                            "timestamp",
                            format!("no Lambda prices for {region} on {day}"),
                        )
                    })?;
                    &in_force.insert((day, price)).1
                }
            };
            let cost = price.invocation(architecture, r.billed_duration_ms, batch.memory_mb);
            Ok(PricedInvocation {
                record: InvocationRecord {
                    schema_version: LAKE_SCHEMA_VERSION,
                    account_id: account_id.into(),
                    team: team.map(String::from),
                    region: region.into(),
                    function_name: batch.function_name.clone(),
                    architecture: architecture.as_str().into(),
                    memory_mb: batch.memory_mb,
                    request_id: r.request_id.clone(),
                    timestamp: timestamp(r.timestamp),
                    duration_ms: r.duration_ms,
                    billed_duration_ms: r.billed_duration_ms,
                    max_memory_used_mb: r.max_memory_used_mb,
                    init_duration_ms: r.init_duration_ms,
                    cost_usd: cost.round_dp(12).to_f64().unwrap_or_default(),
                },
                day,
                cost,
            })
        })
        .collect()
}

// ------------------------------------------------------------ deployments

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub schema_version: u32,
    pub account_id: String,
    pub team: Option<String>,
    pub region: String,
    /// `cloudformation` or `ci`.
    pub source: String,
    pub stack: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub commit: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub pipeline: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_s: Option<f64>,
    pub timestamp: String,
}

/// `DeploymentReported` from CI (or `POST /deployments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentReported {
    pub version: u32,
    pub stack: String,
    pub status: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl DeploymentReported {
    pub fn parse(detail: &Value) -> Result<Self, RecordError> {
        let Some(fields) = detail.as_object() else {
            return Err(bad("detail", "the detail must be a JSON object"));
        };
        const KNOWN: [&str; 8] = [
            "version",
            "stack",
            "status",
            "commit",
            "ref",
            "pipeline",
            "started_at",
            "finished_at",
        ];
        if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(bad(
                unknown,
                format!("unknown field; the fields are {}", KNOWN.join(", ")),
            ));
        }
        for field in ["started_at", "finished_at"] {
            if let Some(v) = fields.get(field).filter(|v| !v.is_null())
                && v.as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_none()
            {
                return Err(bad(
                    field,
                    "must be an RFC 3339 time like 2026-11-21T10:00:00Z",
                ));
            }
        }
        let d: Self = serde_json::from_value(detail.clone())
            .map_err(|e| bad("detail", format!("not a DeploymentReported detail: {e}")))?;
        if d.version != 1 {
            return Err(bad("version", "version must be 1"));
        }
        if d.stack.is_empty() || d.stack.len() > 256 {
            return Err(bad("stack", "stack must be 1 to 256 characters"));
        }
        if !["STARTED", "SUCCEEDED", "FAILED"].contains(&d.status.as_str()) {
            return Err(bad("status", "status must be STARTED, SUCCEEDED or FAILED"));
        }
        for (field, value) in [
            ("commit", &d.commit),
            ("ref", &d.git_ref),
            ("pipeline", &d.pipeline),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > 512) {
                return Err(bad(field, "must be at most 512 characters"));
            }
        }
        if let (Some(s), Some(f)) = (d.started_at, d.finished_at)
            && f < s
        {
            return Err(bad("finished_at", "finished_at is before started_at"));
        }
        Ok(d)
    }

    pub fn record(
        &self,
        account_id: &str,
        region: &str,
        team: Option<&str>,
        at: DateTime<Utc>,
    ) -> DeploymentRecord {
        DeploymentRecord {
            schema_version: LAKE_SCHEMA_VERSION,
            account_id: account_id.into(),
            team: team.map(String::from),
            region: region.into(),
            source: "ci".into(),
            stack: self.stack.clone(),
            status: self.status.clone(),
            status_reason: None,
            commit: self.commit.clone(),
            git_ref: self.git_ref.clone(),
            pipeline: self.pipeline.clone(),
            started_at: self.started_at.map(timestamp),
            finished_at: self.finished_at.map(timestamp),
            duration_s: match (self.started_at, self.finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
                _ => None,
            },
            timestamp: timestamp(at),
        }
    }
}

/// A CloudFormation stack status change, as EventBridge delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct StackStatusChange {
    pub stack_id: String,
    pub stack: String,
    pub status: String,
    pub reason: Option<String>,
}

impl StackStatusChange {
    pub fn parse(detail: &Value) -> Result<Self, RecordError> {
        let stack_id = detail["stack-id"]
            .as_str()
            .ok_or_else(|| bad("stack-id", "the stack id is missing"))?;
        // arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID
        let stack = stack_id
            .split(":stack/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("stack-id", format!("{stack_id:?} is not a stack ARN")))?;
        let status = detail["status-details"]["status"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("status-details.status", "the status is missing"))?;
        Ok(Self {
            stack_id: stack_id.into(),
            stack: stack.into(),
            status: status.into(),
            reason: detail["status-details"]["status-reason"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
        })
    }

    /// An operation begins (`CREATE_IN_PROGRESS`, `UPDATE_IN_PROGRESS`, …;
    /// not the cleanup phases, which belong to the operation under way).
    pub fn starts(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && !self.status.contains("CLEANUP")
    }

    /// An operation ended (`*_COMPLETE`, `*_FAILED`).
    pub fn ends(&self) -> bool {
        self.status.ends_with("_COMPLETE") || self.status.ends_with("_FAILED")
    }

    pub fn record(
        &self,
        account_id: &str,
        region: &str,
        team: Option<&str>,
        at: DateTime<Utc>,
        started_at: Option<DateTime<Utc>>,
    ) -> DeploymentRecord {
        let finished_at = self.ends().then_some(at);
        DeploymentRecord {
            schema_version: LAKE_SCHEMA_VERSION,
            account_id: account_id.into(),
            team: team.map(String::from),
            region: region.into(),
            source: "cloudformation".into(),
            stack: self.stack.clone(),
            status: self.status.clone(),
            status_reason: self.reason.clone(),
            commit: None,
            git_ref: None,
            pipeline: None,
            started_at: started_at.map(timestamp),
            finished_at: finished_at.map(timestamp),
            duration_s: match (started_at, finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
                _ => None,
            },
            timestamp: timestamp(at),
        }
    }
}

/// `TeamSpendUpdated`: a team's month-to-date spend after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamSpendUpdated {
    pub version: u32,
    pub team: String,
    /// `YYYY-MM`.
    pub period: String,
    /// Month to date, a decimal string in `currency`.
    pub spend: String,
    pub currency: String,
    /// `stream` (the recorder's estimate), `athena` or `cur`.
    pub source: String,
    pub as_of: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloudformation_events_from_the_aws_documentation_parse() {
        // The example in the CloudFormation user guide ("CloudFormation Stack Status Change").
        let detail = json!({
            "stack-id": "arn:aws:cloudformation:us-west-2:111122223333:stack/teststack/a8e2d6d0-8238-11eb-b5e2-02a0b6a6ae39",
            "status-details": {"status": "CREATE_COMPLETE", "status-reason": ""},
            "client-request-token": ""
        });
        let change = StackStatusChange::parse(&detail).unwrap();
        assert_eq!(change.stack, "teststack");
        assert!(change.ends() && !change.starts());
        assert_eq!(change.reason, None);
        let at = DateTime::parse_from_rfc3339("2021-03-10T21:40:24Z")
            .unwrap()
            .to_utc();
        let started = at - chrono::Duration::seconds(90);
        let record = change.record("111122223333", "us-west-2", Some("web"), at, Some(started));
        assert_eq!(record.duration_s, Some(90.0));
        assert_eq!(record.source, "cloudformation");
        let cleanup = StackStatusChange {
            status: "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS".into(),
            ..change.clone()
        };
        assert!(!cleanup.starts() && !cleanup.ends());
        assert!(
            StackStatusChange::parse(
                &json!({"stack-id": "nope", "status-details": {"status": "X"}})
            )
            .is_err()
        );
    }

    #[test]
    fn deployments_validate_by_field() {
        let ok = json!({"version": 1, "stack": "web", "status": "SUCCEEDED", "commit": "abc", "ref": "main",
            "started_at": "2026-11-21T10:00:00Z", "finished_at": "2026-11-21T10:02:30Z"});
        let d = DeploymentReported::parse(&ok).unwrap();
        let r = d.record("210987654321", "us-east-1", None, Utc::now());
        assert_eq!(r.duration_s, Some(150.0));
        assert_eq!(serde_json::to_value(&r).unwrap()["ref"], "main");
        let field = |v: Value| DeploymentReported::parse(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"version": 1, "stack": "web", "status": "DONE"})),
            "status"
        );
        assert_eq!(
            field(json!({"version": 1, "stack": "", "status": "STARTED"})),
            "stack"
        );
        assert_eq!(
            field(json!({"version": 2, "stack": "w", "status": "STARTED"})),
            "version"
        );
        assert_eq!(
            field(json!({"version": 1, "stack": "w", "status": "STARTED", "extra": 1})),
            "extra"
        );
        assert_eq!(
            field(
                json!({"version": 1, "stack": "w", "status": "STARTED", "started_at": "yesterday"})
            ),
            "started_at"
        );
    }

    #[test]
    fn invocation_batches_validate_by_field() {
        let ok = json!({"version": 1, "batch_id": "b1", "function_name": "f", "architecture": "arm64", "memory_mb": 128,
            "reports": [{"request_id": "r1", "timestamp": "2026-11-21T10:00:00Z", "duration_ms": 12.5,
                "billed_duration_ms": 13, "max_memory_used_mb": 60, "init_duration_ms": null}]});
        let (batch, arch) = InvocationsReported::parse(&ok).unwrap();
        assert_eq!(arch, Architecture::Arm64);
        let prices = crate::spend::PriceTable::builtin();
        let now = "2026-11-21T10:01:00Z".parse().unwrap();
        let screened = batch.screen(now);
        assert!(screened.refused.is_empty());
        let priced = invocation_records(
            &batch,
            &screened.valid,
            arch,
            "210987654321",
            "us-east-1",
            Some("pay"),
            |d| prices.lambda("us-east-1", d).ok().cloned(),
        )
        .unwrap();
        assert_eq!(priced[0].record.timestamp, "2026-11-21T10:00:00.000Z");
        assert!(priced[0].cost > Decimal::ZERO);
        let mut bad_arch = ok.clone();
        bad_arch["architecture"] = json!("sparc");
        assert_eq!(
            InvocationsReported::parse(&bad_arch).unwrap_err().field,
            "architecture"
        );
        let mut empty = ok.clone();
        empty["reports"] = json!([]);
        assert_eq!(
            InvocationsReported::parse(&empty).unwrap_err().field,
            "reports"
        );
    }

    /// Reports no Lambda function can produce are refused one by one, each
    /// with its reason; the batch's valid reports stay.
    #[test]
    fn impossible_reports_are_refused_and_the_rest_of_the_batch_kept() {
        let now: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
        let report = |billed: Value, extra: Value| {
            let mut r = json!({"request_id": "r", "timestamp": "2026-11-21T09:59:00Z", "duration_ms": 12.5,
                "billed_duration_ms": billed, "max_memory_used_mb": 60, "init_duration_ms": null});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            r
        };
        let cases = [
            (report(json!(13), json!({})), None),
            (
                report(json!(900_000), json!({"duration_ms": 899_999.5})),
                None,
            ),
            (
                report(json!(1), json!({"timestamp": "2026-10-12T10:00:00Z"})),
                None,
            ),
            (
                report(json!(1), json!({"timestamp": "2026-11-21T10:04:59Z"})),
                None,
            ),
            (
                report(json!(u64::MAX), json!({})),
                Some(ReportRefusal::BilledDuration),
            ),
            (
                report(json!(0), json!({})),
                Some(ReportRefusal::BilledDuration),
            ),
            (
                report(json!(900_001), json!({})),
                Some(ReportRefusal::BilledDuration),
            ),
            (
                report(json!(13), json!({"duration_ms": 1e300})),
                Some(ReportRefusal::Duration),
            ),
            (
                report(json!(13), json!({"duration_ms": -1.0})),
                Some(ReportRefusal::Duration),
            ),
            (
                report(json!(13), json!({"init_duration_ms": 900_001.0})),
                Some(ReportRefusal::Duration),
            ),
            (
                report(json!(13), json!({"request_id": ""})),
                Some(ReportRefusal::NoRequestId),
            ),
            (
                report(json!(13), json!({"max_memory_used_mb": 129})),
                Some(ReportRefusal::MemoryUsed),
            ),
            (
                report(json!(13), json!({"timestamp": "2026-10-12T09:59:59Z"})),
                Some(ReportRefusal::TooOld),
            ),
            (
                report(json!(13), json!({"timestamp": "2026-11-21T10:05:01Z"})),
                Some(ReportRefusal::InTheFuture),
            ),
            (
                report(json!(13), json!({"timestamp": "+262142-12-01T00:00:00Z"})),
                Some(ReportRefusal::InTheFuture),
            ),
        ];
        for (r, expected) in &cases {
            let detail = json!({"version": 1, "batch_id": "b1", "function_name": "f", "architecture": "arm64",
                "memory_mb": 128, "reports": [r, report(json!(13), json!({"request_id": "fine"}))]});
            let (batch, arch) =
                InvocationsReported::parse(&detail).unwrap_or_else(|e| panic!("{r}: {e}"));
            let screened = batch.screen(now);
            assert_eq!(screened.refused.first().map(|x| x.reason), *expected, "{r}");
            assert_eq!(
                screened.valid.len(),
                2 - usize::from(expected.is_some()),
                "{r}"
            );
            let prices = crate::spend::PriceTable::builtin();
            let priced = invocation_records(
                &batch,
                &screened.valid,
                arch,
                "210987654321",
                "us-east-1",
                None,
                |d| prices.lambda("us-east-1", d).ok().cloned(),
            )
            .unwrap();
            // What the recorder accepts costs at most cents a report, so no
            // sum of a month (nor a Decimal128(18, 9) in the lake) overflows.
            for p in priced {
                assert!(p.cost < Decimal::new(16, 2), "{r}: {}", p.cost);
            }
        }
    }
}
