//! The lease history, exported to the lake: which team held an account
//! when. Each account request that becomes ready is one lease of its
//! account (a pooled account lent again is another request, another
//! lease, with the same account id); the recorder writes one `leases`
//! record when it starts (`AccountReady`) and one when it ends (the first
//! of `AccountCloseRequested`, `AccountCleaningStarted`, `AccountRecycled`
//! and `AccountClosed` that names its account).
//!
//! Cost is attributed by lease with it: a lease covers its account from
//! its start until the next lease of the account starts (so what is used
//! or billed while the account is cleaned and cools is the previous
//! lease's), and the first lease covers everything before it too. The
//! named queries join on these windows (see docs/queries.md), and the
//! spend settlement settles each CUR line with the team of the lease its
//! usage fell in.
//!
//! The records are written as the events arrive, at least once: a
//! redelivered event writes the same record again (its time is the
//! event's own `at`, never the time of delivery), and a lease's start or
//! end told twice is two records. The queries take each lease's earliest
//! record of each kind, as they take each invocation once.

use serde::{Deserialize, Serialize};

use super::{Recorded, Recorder, RecorderError};
use crate::accounts::TeamName;
use crate::events::Event;
use crate::events::catalog::{
    ACCOUNT_CLEANING_STARTED, ACCOUNT_CLOSE_REQUESTED, ACCOUNT_CLOSED, ACCOUNT_READY,
    ACCOUNT_RECYCLED, AccountEvent,
};
use crate::lake::{self, LakeTable, RecordError};

/// The account events that start a lease.
pub const LEASE_STARTS: [&str; 1] = [ACCOUNT_READY];
/// The account events that end one: the first that arrives is its end.
pub const LEASE_ENDS: [&str; 4] = [
    ACCOUNT_CLOSE_REQUESTED,
    ACCOUNT_CLEANING_STARTED,
    ACCOUNT_RECYCLED,
    ACCOUNT_CLOSED,
];

/// `started` or `ended`: what a `leases` record says of its lease.
pub const LEASE_STARTED: &str = "started";
pub const LEASE_ENDED: &str = "ended";

/// One row of the lake's `leases` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub schema_version: u32,
    /// The lease: the id of the account request (`r-…`).
    pub lease_id: String,
    pub account_id: String,
    /// The team that held the account during the lease.
    pub team: String,
    /// The lease template the request was made from, if any.
    pub template: Option<String>,
    /// `started` or `ended`.
    pub event: String,
    /// The account event it was recorded from (`AccountReady`,
    /// `AccountCleaningStarted`, …).
    pub cause: String,
    /// When the lease started or ended (RFC 3339, UTC, milliseconds): the
    /// transition's own time, so every delivery writes the same record.
    pub timestamp: String,
}

fn bad(field: &str, message: impl Into<String>) -> RecordError {
    RecordError {
        field: field.into(),
        message: message.into(),
    }
}

impl LeaseRecord {
    /// The record an account event makes, if it starts or ends a lease of
    /// an account (`None` for other events, and for a request that never
    /// had an account: it never leased one).
    pub fn of(detail_type: &str, detail: &serde_json::Value) -> Result<Option<Self>, RecordError> {
        let event = if LEASE_STARTS.contains(&detail_type) {
            LEASE_STARTED
        } else if LEASE_ENDS.contains(&detail_type) {
            LEASE_ENDED
        } else {
            return Ok(None);
        };
        let account: AccountEvent = serde_json::from_value(detail.clone())
            .map_err(|e| bad("detail", format!("not an account event's detail: {e}")))?;
        let Some(account_id) = account.account_id else {
            return Ok(None);
        };
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("account_id", "must be 12 digits"));
        }
        if account.request_id.is_empty() || account.request_id.len() > 128 {
            return Err(bad("request_id", "must be 1 to 128 characters"));
        }
        let team = TeamName::parse(&account.team)
            .map_err(|e| bad("team", format!("not a team name: {e}")))?;
        let at = chrono::DateTime::parse_from_rfc3339(&account.at)
            .map_err(|e| bad("at", format!("not an RFC 3339 time: {e}")))?
            .to_utc();
        Ok(Some(Self {
            schema_version: lake::LAKE_SCHEMA_VERSION,
            lease_id: account.request_id,
            account_id,
            team: team.to_string(),
            template: account.template.map(|t| t.name.to_string()),
            event: event.into(),
            cause: detail_type.into(),
            timestamp: lake::timestamp(at),
        }))
    }
}

impl Recorder {
    /// An account event of Purser's own (`source: purser`, from Purser's
    /// account, which the rule's pattern pins): a lease's start or end
    /// into the lake's `leases` table. Other account events write nothing.
    pub async fn lease(&self, event: &Event) -> Result<Recorded, RecorderError> {
        let Some(record) = LeaseRecord::of(&event.detail_type, &event.detail)? else {
            return Ok(Recorded::Written {
                records: 0,
                dead_lettered: 0,
                refused: 0,
            });
        };
        tracing::info!(account_id = %record.account_id, lease_id = %record.lease_id,
            team = %record.team, event = %record.event, cause = %record.cause, "lease recorded");
        let value = serde_json::to_value(&record).expect("a record serializes");
        let sent = self.lake.append(LakeTable::Leases, vec![value]).await?;
        Ok(Recorded::Written {
            records: sent.written,
            dead_lettered: sent.dead_lettered,
            refused: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn detail(request_id: &str, account_id: Option<&str>, team: &str) -> serde_json::Value {
        let mut d = json!({"version": 1, "request_id": request_id, "state": "ready", "team": team,
            "owner": "ana@example.com", "purpose": "tests",
            "template": {"name": "sandbox", "version": 3}, "at": "2026-11-18T12:00:05Z"});
        if let Some(a) = account_id {
            d["account_id"] = json!(a);
        }
        d
    }

    #[test]
    fn ready_starts_a_lease_and_the_first_end_event_ends_it() {
        let started = LeaseRecord::of(ACCOUNT_READY, &detail("r-1", Some("210987654321"), "pay"))
            .unwrap()
            .unwrap();
        assert_eq!(
            started,
            LeaseRecord {
                schema_version: 1,
                lease_id: "r-1".into(),
                account_id: "210987654321".into(),
                team: "pay".into(),
                template: Some("sandbox".into()),
                event: "started".into(),
                cause: "AccountReady".into(),
                timestamp: "2026-11-18T12:00:05.000Z".into(),
            }
        );
        for end in LEASE_ENDS {
            let ended = LeaseRecord::of(end, &detail("r-1", Some("210987654321"), "pay"))
                .unwrap()
                .unwrap();
            assert_eq!((ended.event.as_str(), ended.cause.as_str()), ("ended", end));
        }
        // Other events, and requests with no account, lease nothing.
        let other = detail("r-1", Some("210987654321"), "pay");
        assert_eq!(LeaseRecord::of("AccountFrozen", &other).unwrap(), None);
        assert_eq!(
            LeaseRecord::of(ACCOUNT_CLOSE_REQUESTED, &detail("r-2", None, "pay")).unwrap(),
            None
        );
    }

    #[test]
    fn a_detail_that_cannot_be_a_lease_is_refused_by_field() {
        let field = |d: serde_json::Value| LeaseRecord::of(ACCOUNT_READY, &d).unwrap_err().field;
        assert_eq!(field(detail("r-1", Some("2109"), "pay")), "account_id");
        assert_eq!(field(detail("", Some("210987654321"), "pay")), "request_id");
        assert_eq!(field(detail("r-1", Some("210987654321"), "Pay!")), "team");
        let mut late = detail("r-1", Some("210987654321"), "pay");
        late["at"] = json!("yesterday");
        assert_eq!(field(late), "at");
        assert_eq!(field(json!({"version": 1})), "detail");
    }
}
