//! The Markers port: what Purser remembers for a while so that a repeated
//! or concurrent event does a thing once — claims (a threshold announced,
//! a batch counted, an account being closed) and small remembered values
//! (a throttled function's previous setting, an evaluation's lease).
//!
//! Keys are a typed [`Marker`]: the services never format a key, and the
//! text each marker is stored under is written once, here.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::ports::StoreError;

/// Everything Purser marks, and what each marks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Marker {
    /// A batch of invocation reports counted by the spend counters (claimed
    /// by `SpendCounters::record_spend_once`).
    SpendBatch {
        account_id: String,
        batch_id: String,
    },
    /// When a stack's operation began, remembered until it ends.
    StackOperation {
        account_id: String,
        stack_id: String,
    },
    /// A budget threshold announced for a period and budget revision.
    ThresholdCrossed {
        team: String,
        period: String,
        revision: u64,
        percent: u32,
    },
    /// An account's own budget threshold (its template's per-account
    /// budget) announced for its lease, which starts at `lease_start`.
    AccountThresholdCrossed {
        account_id: String,
        lease_start: DateTime<Utc>,
        percent: u32,
    },
    /// The lease of the one evaluation of a team's budget that runs.
    Evaluating { team: String },
    /// `AccountFreezeFailed` announced for an account request on a day.
    FreezeFailed { request_id: String, day: NaiveDate },
    /// `LeaseExpiring` announced for an account request.
    LeaseExpiring { request_id: String },
    /// An account being closed by one reaper run.
    Closing { account_id: String },
    /// `AccountCloseDeferred` announced for an account request on a day.
    CloseDeferred { request_id: String, day: NaiveDate },
    /// An account's throttle episode (its id is the value).
    ThrottleEpisode { account_id: String },
    /// A throttled function's reserved concurrency before the episode.
    ThrottledFunction {
        account_id: String,
        episode: String,
        region: String,
        name: String,
    },
    /// `LambdasThrottled` announced for a set of functions (by fingerprint).
    ThrottleAnnounced {
        account_id: String,
        episode: String,
        fingerprint: u64,
    },
    /// That an episode was announced at all, so its end is announced too.
    EpisodeAnnounced { account_id: String, episode: String },
    /// How many functions of an account the last throttle covered.
    ThrottledCount { account_id: String },
    /// `LambdasRestored` announced for an episode.
    RestoreAnnounced { account_id: String, episode: String },
    /// An event's message sent to a recipient (as `Recipient::describe`).
    Notified { event_id: String, recipient: String },
    /// An EC2 instance's type, from the call that launched it.
    InstanceType {
        account_id: String,
        region: String,
        instance_id: String,
    },
    /// A runaway rule over its limit for an account (or one resource of
    /// it) in an hour; an hour whose previous hour is claimed continues
    /// that episode.
    Runaway {
        rule: String,
        account_id: String,
        resource: Option<String>,
        hour: DateTime<Utc>,
    },
    /// An account frozen by the runaway guard, held until an admin
    /// releases it (`purser accounts release`).
    RunawayFreeze { request_id: String },
    /// A resource the runaway guard stopped (what brings it back is the
    /// value).
    RunawayStopped {
        account_id: String,
        region: String,
        resource: String,
    },
}

impl Marker {
    /// The key the marker is stored under (stable: stores hold these).
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::SpendBatch {
                account_id,
                batch_id,
            } => write!(f, "batch#{account_id}#{batch_id}"),
            Marker::StackOperation {
                account_id,
                stack_id,
            } => write!(f, "stack#{account_id}#{stack_id}"),
            Marker::ThresholdCrossed {
                team,
                period,
                revision,
                percent,
            } => write!(f, "threshold#{team}#{period}#{revision}#{percent}"),
            Marker::AccountThresholdCrossed {
                account_id,
                lease_start,
                percent,
            } => write!(
                f,
                "account-threshold#{account_id}#{}#{percent}",
                lease_start.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            Marker::Evaluating { team } => write!(f, "evaluating#{team}"),
            Marker::FreezeFailed { request_id, day } => {
                write!(f, "freeze-failed#{request_id}#{}", day.format("%Y-%m-%d"))
            }
            Marker::LeaseExpiring { request_id } => write!(f, "lease-expiring#{request_id}"),
            Marker::Closing { account_id } => write!(f, "closing#{account_id}"),
            Marker::CloseDeferred { request_id, day } => {
                write!(f, "close-deferred#{request_id}#{}", day.format("%Y-%m-%d"))
            }
            Marker::ThrottleEpisode { account_id } => write!(f, "throttled#{account_id}"),
            Marker::ThrottledFunction {
                account_id,
                episode,
                region,
                name,
            } => write!(f, "throttled#{account_id}#{episode}#{region}#{name}"),
            Marker::ThrottleAnnounced {
                account_id,
                episode,
                fingerprint,
            } => write!(
                f,
                "lambdas-throttled#{account_id}#{episode}#{fingerprint:016x}"
            ),
            Marker::EpisodeAnnounced {
                account_id,
                episode,
            } => write!(f, "lambdas-throttled#{account_id}#{episode}"),
            Marker::ThrottledCount { account_id } => write!(f, "throttled-count#{account_id}"),
            Marker::RestoreAnnounced {
                account_id,
                episode,
            } => write!(f, "lambdas-restored#{account_id}#{episode}"),
            Marker::Notified {
                event_id,
                recipient,
            } => write!(f, "notified#{event_id}#{recipient}"),
            Marker::InstanceType {
                account_id,
                region,
                instance_id,
            } => write!(f, "instance-type#{account_id}#{region}#{instance_id}"),
            Marker::Runaway {
                rule,
                account_id,
                resource,
                hour,
            } => write!(
                f,
                "runaway#{rule}#{account_id}#{}#{}",
                hour.format("%Y-%m-%dT%H"),
                resource.as_deref().unwrap_or("*")
            ),
            Marker::RunawayFreeze { request_id } => write!(f, "runaway-freeze#{request_id}"),
            Marker::RunawayStopped {
                account_id,
                region,
                resource,
            } => write!(f, "runaway-stopped#{account_id}#{region}#{resource}"),
        }
    }
}

/// Claims and remembered values, each until it expires.
#[async_trait]
pub trait Markers: Send + Sync {
    /// Claims `marker` until `expires_at`. Returns `true` for the first
    /// claim and `false` while an earlier claim stands; an expired claim can
    /// be taken again. Atomic: of concurrent claims exactly one wins.
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Whether `marker` stands claimed (by `claim_once` or
    /// `record_spend_once`) and unexpired at `now`.
    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Keeps `value` under `marker` until `expires_at`, unless an unexpired
    /// value is there already (then returns `false` and keeps that one).
    async fn remember(
        &self,
        marker: &Marker,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The unexpired value under `marker`.
    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    async fn forget(&self, marker: &Marker) -> Result<(), StoreError>;

    /// Gives back a claim of `marker` taken by `claim_once`, so that the
    /// next `claim_once` takes it (when what the claim stood for could not
    /// be done). Releasing what is not claimed does nothing.
    async fn release(&self, marker: &Marker) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
    }

    #[test]
    fn every_marker_is_stored_under_the_key_stores_already_hold() {
        let id = || "210987654321".to_string();
        let cases = [
            (
                Marker::SpendBatch {
                    account_id: id(),
                    batch_id: "b-1".into(),
                },
                "batch#210987654321#b-1",
            ),
            (
                Marker::StackOperation {
                    account_id: id(),
                    stack_id: "arn:aws:cloudformation:x".into(),
                },
                "stack#210987654321#arn:aws:cloudformation:x",
            ),
            (
                Marker::ThresholdCrossed {
                    team: "payments".into(),
                    period: "2026-12".into(),
                    revision: 3,
                    percent: 80,
                },
                "threshold#payments#2026-12#3#80",
            ),
            (
                Marker::AccountThresholdCrossed {
                    account_id: id(),
                    lease_start: DateTime::parse_from_rfc3339("2026-12-02T09:30:15.250Z")
                        .unwrap()
                        .with_timezone(&Utc),
                    percent: 100,
                },
                "account-threshold#210987654321#2026-12-02T09:30:15Z#100",
            ),
            (
                Marker::Evaluating {
                    team: "payments".into(),
                },
                "evaluating#payments",
            ),
            (
                Marker::FreezeFailed {
                    request_id: "r-1".into(),
                    day: day(),
                },
                "freeze-failed#r-1#2026-12-02",
            ),
            (
                Marker::LeaseExpiring {
                    request_id: "r-1".into(),
                },
                "lease-expiring#r-1",
            ),
            (Marker::Closing { account_id: id() }, "closing#210987654321"),
            (
                Marker::CloseDeferred {
                    request_id: "r-1".into(),
                    day: day(),
                },
                "close-deferred#r-1#2026-12-02",
            ),
            (
                Marker::ThrottleEpisode { account_id: id() },
                "throttled#210987654321",
            ),
            (
                Marker::ThrottledFunction {
                    account_id: id(),
                    episode: "e".into(),
                    region: "eu-west-1".into(),
                    name: "f".into(),
                },
                "throttled#210987654321#e#eu-west-1#f",
            ),
            (
                Marker::ThrottleAnnounced {
                    account_id: id(),
                    episode: "e".into(),
                    fingerprint: 0xab,
                },
                "lambdas-throttled#210987654321#e#00000000000000ab",
            ),
            (
                Marker::EpisodeAnnounced {
                    account_id: id(),
                    episode: "e".into(),
                },
                "lambdas-throttled#210987654321#e",
            ),
            (
                Marker::ThrottledCount { account_id: id() },
                "throttled-count#210987654321",
            ),
            (
                Marker::RestoreAnnounced {
                    account_id: id(),
                    episode: "e".into(),
                },
                "lambdas-restored#210987654321#e",
            ),
        ];
        for (marker, key) in cases {
            assert_eq!(marker.key(), key, "{marker:?}");
        }
    }
}
