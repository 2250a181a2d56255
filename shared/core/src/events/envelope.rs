//! The EventBridge event envelope, and the entries producers put on a bus.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Purser's own events come from this source, on this bus.
pub const PURSER_SOURCE: &str = "purser";
pub const PURSER_BUS: &str = "purser";

/// EventBridge's limits on `PutEvents`.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
pub const MAX_PUT_BYTES: usize = 256 * 1024;

/// An event as EventBridge delivers it to a target: the envelope and the
/// producer's detail. `account` and `region` are set by the bus, never by
/// the producer, which is why Purser trusts them for attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    #[serde(with = "event_time")]
    pub time: DateTime<Utc>,
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: Value,
}

impl Event {
    /// The envelope a bus wraps around an accepted entry.
    pub fn from_entry(
        entry: &EventEntry,
        detail: Value,
        account: &str,
        region: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            version: "0".into(),
            id: uuid::Uuid::new_v4().to_string(),
            detail_type: entry.detail_type.clone().unwrap_or_default(),
            source: entry.source.clone().unwrap_or_default(),
            account: account.into(),
            time: entry.time.unwrap_or(now),
            region: region.into(),
            resources: entry.resources.clone(),
            detail,
        }
    }

    /// The envelope as the JSON value patterns are matched against.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an event envelope always serializes")
    }
}

/// EventBridge writes event times as `2026-11-21T10:00:00Z`, whole seconds.
mod event_time {
    use super::*;

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of a `PutEvents` call, in the API's own field names. Fields
/// are optional because the API accepts their absence and reports it per
/// entry rather than refusing the whole call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_type: Option<String>,
    /// The detail as JSON text, as the API carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "epoch_seconds"
    )]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bus_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
}

/// The AWS JSON protocol carries timestamps as epoch seconds (possibly
/// fractional).
mod epoch_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.serialize_f64(t.timestamp_millis() as f64 / 1000.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(value) = Option::<Value>::deserialize(d)? else {
            return Ok(None);
        };
        let seconds = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse::<f64>().ok(),
            _ => None,
        }
        .ok_or_else(|| serde::de::Error::custom("Time must be epoch seconds"))?;
        DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("Time is out of range"))
    }
}

/// Why EventBridge refuses one entry of a `PutEvents` call; the codes are
/// the ones the API returns in `Entries[].ErrorCode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("Parameter {field} is not valid. Reason: {field} is a required argument.")]
    Missing { field: &'static str },
    #[error("Detail is malformed.")]
    MalformedDetail,
    #[error("Not authorized for the source.")]
    SourceNotAuthorized,
    #[error("Event bus {0} does not exist.")]
    UnknownBus(String),
}

impl EntryError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "InvalidArgument",
            Self::MalformedDetail => "MalformedDetail",
            Self::SourceNotAuthorized => "NotAuthorizedForSourceException",
            Self::UnknownBus(_) => "ResourceNotFoundException",
        }
    }
}

impl EventEntry {
    /// A Purser event. The bus is the adapter's to choose (the `purser` bus
    /// the template defines), so it is left unnamed here.
    pub fn purser(detail_type: &str, detail: &Value) -> Self {
        Self {
            source: Some(PURSER_SOURCE.into()),
            detail_type: Some(detail_type.into()),
            detail: Some(detail.to_string()),
            ..Self::default()
        }
    }

    /// The size EventBridge counts against the 256 KB limit of a call.
    pub fn size(&self) -> usize {
        let text = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        (if self.time.is_some() { 14 } else { 0 })
            + text(&self.source)
            + text(&self.detail_type)
            + text(&self.detail)
            + self.resources.iter().map(String::len).sum::<usize>()
    }

    /// The bus this entry is for; EventBridge's default when unnamed. An ARN
    /// names the bus by its last path segment.
    pub fn bus_name(&self) -> &str {
        match self.event_bus_name.as_deref() {
            None | Some("") => "default",
            Some(name) => name.rsplit('/').next().unwrap_or(name),
        }
    }

    /// Checks an entry as EventBridge does and returns its parsed detail.
    /// `allow_aws_sources` admits `aws.*` sources, which AWS reserves for
    /// its own services (the local runtime allows them to simulate those).
    pub fn validate(&self, allow_aws_sources: bool) -> Result<Value, EntryError> {
        let source = self
            .source
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(EntryError::Missing { field: "Source" })?;
        self.detail_type
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(EntryError::Missing {
                field: "DetailType",
            })?;
        let detail = self
            .detail
            .as_deref()
            .ok_or(EntryError::Missing { field: "Detail" })?;
        let detail: Value =
            serde_json::from_str(detail).map_err(|_| EntryError::MalformedDetail)?;
        if !detail.is_object() {
            return Err(EntryError::MalformedDetail);
        }
        if source.starts_with("aws.") && !allow_aws_sources {
            return Err(EntryError::SourceNotAuthorized);
        }
        Ok(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(source: &str, detail: &str) -> EventEntry {
        EventEntry {
            source: Some(source.into()),
            detail_type: Some("Thing Happened".into()),
            detail: Some(detail.into()),
            ..EventEntry::default()
        }
    }

    #[test]
    fn envelope_serializes_like_eventbridge() {
        let e = entry("ci", r#"{"a":1}"#);
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = Event::from_entry(&e, json!({"a": 1}), "123456789012", "us-east-1", now);
        let v = event.to_value();
        assert_eq!(v["detail-type"], "Thing Happened");
        assert_eq!(v["time"], "2026-11-21T10:00:00Z");
        assert_eq!(v["account"], "123456789012");
        assert_eq!(v["version"], "0");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back.detail, json!({"a": 1}));
    }

    #[test]
    fn validation_reports_what_eventbridge_reports() {
        assert_eq!(
            entry("ci", "{").validate(false),
            Err(EntryError::MalformedDetail)
        );
        assert_eq!(
            entry("ci", "[1]").validate(false),
            Err(EntryError::MalformedDetail)
        );
        assert_eq!(
            entry("aws.cloudformation", "{}").validate(false),
            Err(EntryError::SourceNotAuthorized)
        );
        assert!(entry("aws.cloudformation", "{}").validate(true).is_ok());
        let mut missing = entry("ci", "{}");
        missing.detail_type = None;
        let err = missing.validate(false).unwrap_err();
        assert_eq!(err.code(), "InvalidArgument");
        assert!(err.to_string().contains("DetailType"));
    }

    #[test]
    fn size_counts_what_eventbridge_counts() {
        let mut e = entry("ci", r#"{"a":1}"#);
        assert_eq!(e.size(), 2 + 14 + 7);
        e.time = Some(Utc::now());
        e.resources = vec!["arn:x".into()];
        assert_eq!(e.size(), 14 + 2 + 14 + 7 + 5);
    }

    #[test]
    fn entries_round_trip_the_aws_json_shape() {
        let wire = json!({"Source": "ci", "DetailType": "X", "Detail": "{}", "Time": 1700000000.5, "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/purser"});
        let e: EventEntry = serde_json::from_value(wire).unwrap();
        assert_eq!(e.bus_name(), "purser");
        assert_eq!(e.time.unwrap().timestamp_millis(), 1_700_000_000_500);
    }
}
