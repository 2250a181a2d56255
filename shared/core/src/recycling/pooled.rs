//! What an account in a template's pool carries (`Account::recycling`):
//! when its lease ended, when it may be lent again, how far its cleaning
//! is, and to which request it was lent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::rfc3339;
use crate::recycling::{CleaningProgress, CleaningRun};

/// An account's way through the pool, from the end of its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recycling {
    /// When the lease ended (the reaper, or `DELETE /accounts/{id}`).
    pub lease_ended_at: DateTime<Utc>,
    /// Not lent again before this: the lease's end and the template
    /// version's `cooling_hours`, so its late charges bill to its team.
    pub cooling_until: DateTime<Utc>,
    /// The pool's OU, once the account was moved there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_ou: Option<String>,
    /// Clean passes in a row and failed runs so far.
    #[serde(default)]
    pub progress: CleaningProgress,
    /// The run under way (or the last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<CleaningRun>,
    /// Why it is quarantined (the last failed run's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
    /// The request that took it from the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lent_to: Option<String>,
}

impl Recycling {
    pub fn new(lease_ended_at: DateTime<Utc>, cooling_until: DateTime<Utc>) -> Self {
        Self {
            lease_ended_at,
            cooling_until,
            pool_ou: None,
            progress: CleaningProgress::new(),
            run: None,
            reason: None,
            cleaned_at: None,
            released_by: None,
            lent_to: None,
        }
    }

    pub fn to_view(&self) -> Value {
        json!({
            "lease_ended_at": rfc3339(self.lease_ended_at),
            "cooling_until": rfc3339(self.cooling_until),
            "clean_passes": self.progress.clean_in_a_row(),
            "failed_runs": self.progress.failed_runs(),
            "run": self.run.as_ref().map(|r| json!({
                "id": r.id, "pass": r.pass, "attempt": r.attempt,
                "started_at": rfc3339(r.started_at),
            })),
            "reason": self.reason,
            "cleaned_at": self.cleaned_at.map(rfc3339),
            "released_by": self.released_by,
            "lent_to": self.lent_to,
        })
    }
}
