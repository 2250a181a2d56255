//! A cleaning: runs of aws-nuke on one account until two in a row found
//! nothing left to fail on, or three failed. One clean run is not enough:
//! a deletion can bring back what another removed (a stack's rollback, a
//! service recreating its default resources), and only a second run that
//! also succeeds shows the account stays empty.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Clean runs in a row that make an account clean.
pub const CLEAN_PASSES: u32 = 2;
/// Failed runs (in all, not in a row) that quarantine an account.
pub const MAX_FAILED_RUNS: u32 = 3;

/// One run of the cleaner on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleaningRun {
    /// The cleaner's id for the run (a CodeBuild build id on AWS).
    pub id: String,
    pub account_id: String,
    /// The clean pass this run may become: 1 or 2 (see [`CleaningProgress::pass`]).
    pub pass: u32,
    /// 1 + the failed runs of the cleaning before it (see [`CleaningProgress::attempt`]).
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CleaningStatus {
    Running,
    Succeeded,
    /// `reason` is the cleaner's own account of the failure (on AWS the
    /// failed build phase's context message).
    Failed {
        reason: String,
    },
}

impl CleaningStatus {
    pub fn is_finished(&self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// What to do after a run's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The run is still going: ask again later.
    Wait,
    /// Start the next run, as [`CleaningProgress::pass`] and
    /// [`CleaningProgress::attempt`] now say.
    RunAgain,
    /// Two clean passes in a row: the account may cool.
    Clean,
    /// Too many failures: a person must look (`purser accounts release`).
    Quarantine { reason: String },
}

/// How far a cleaning is: a small state machine kept with the account
/// and advanced by each run's status, with no I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleaningProgress {
    clean_in_a_row: u32,
    failed: u32,
}

impl CleaningProgress {
    pub fn new() -> Self {
        Self::default()
    }

    /// The clean pass the next (or current) run may become: 1 or 2. With
    /// [`attempt`](Self::attempt) it names the run uniquely within a
    /// cleaning: the failures only grow, and between two failures the
    /// passes count up from 1.
    pub fn pass(&self) -> u32 {
        self.clean_in_a_row.min(CLEAN_PASSES - 1) + 1
    }

    /// 1 + the failed runs so far.
    pub fn attempt(&self) -> u32 {
        self.failed.min(MAX_FAILED_RUNS - 1) + 1
    }

    pub fn clean_in_a_row(&self) -> u32 {
        self.clean_in_a_row
    }

    pub fn failed_runs(&self) -> u32 {
        self.failed
    }

    /// Takes a run's status into account and says what comes next. A
    /// failure breaks the row of clean passes. Once `Clean` or
    /// `Quarantine`, the cleaning is over; more statuses keep it there.
    pub fn after(&mut self, status: &CleaningStatus) -> Next {
        match status {
            CleaningStatus::Running => Next::Wait,
            CleaningStatus::Succeeded => {
                self.clean_in_a_row = self.clean_in_a_row.saturating_add(1);
                if self.clean_in_a_row >= CLEAN_PASSES {
                    Next::Clean
                } else {
                    Next::RunAgain
                }
            }
            CleaningStatus::Failed { reason } => {
                self.clean_in_a_row = 0;
                self.failed = self.failed.saturating_add(1);
                if self.failed >= MAX_FAILED_RUNS {
                    Next::Quarantine {
                        reason: format!("{} cleaning runs failed; the last: {reason}", self.failed),
                    }
                } else {
                    Next::RunAgain
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str) -> CleaningStatus {
        CleaningStatus::Failed {
            reason: reason.into(),
        }
    }

    #[test]
    fn two_clean_passes_in_a_row_make_an_account_clean() {
        let mut progress = CleaningProgress::new();
        assert_eq!((progress.pass(), progress.attempt()), (1, 1));
        assert_eq!(progress.after(&CleaningStatus::Running), Next::Wait);
        assert_eq!(progress.after(&CleaningStatus::Succeeded), Next::RunAgain);
        assert_eq!((progress.pass(), progress.attempt()), (2, 1));
        assert_eq!(progress.after(&CleaningStatus::Succeeded), Next::Clean);
    }

    #[test]
    fn a_failure_breaks_the_row_of_clean_passes() {
        let mut progress = CleaningProgress::new();
        progress.after(&CleaningStatus::Succeeded);
        assert_eq!(progress.after(&failed("S3Bucket in use")), Next::RunAgain);
        assert_eq!((progress.pass(), progress.attempt()), (1, 2));
        assert_eq!(progress.after(&CleaningStatus::Succeeded), Next::RunAgain);
        assert_eq!(progress.after(&CleaningStatus::Succeeded), Next::Clean);
        assert_eq!(progress.failed_runs(), 1);
    }

    #[test]
    fn three_failed_runs_quarantine_even_with_clean_passes_between() {
        let mut progress = CleaningProgress::new();
        progress.after(&failed("one"));
        progress.after(&CleaningStatus::Succeeded);
        progress.after(&failed("two"));
        assert_eq!((progress.pass(), progress.attempt()), (1, 3));
        let Next::Quarantine { reason } = progress.after(&failed("build timed out")) else {
            panic!("three failures must quarantine");
        };
        assert_eq!(reason, "3 cleaning runs failed; the last: build timed out");
    }

    #[test]
    fn every_run_of_a_cleaning_has_its_own_pass_and_attempt() {
        let statuses = [
            CleaningStatus::Succeeded,
            failed("a"),
            CleaningStatus::Succeeded,
            failed("b"),
            CleaningStatus::Succeeded,
            CleaningStatus::Succeeded,
        ];
        let mut progress = CleaningProgress::new();
        let mut seen = vec![];
        for status in &statuses {
            let key = (progress.pass(), progress.attempt());
            assert!(!seen.contains(&key), "{key:?} twice");
            seen.push(key);
            progress.after(status);
        }
        assert_eq!(progress.after(&CleaningStatus::Running), Next::Wait);
    }

    #[test]
    fn a_finished_cleaning_stays_finished() {
        let mut progress = CleaningProgress::new();
        progress.after(&CleaningStatus::Succeeded);
        progress.after(&CleaningStatus::Succeeded);
        assert_eq!(progress.after(&CleaningStatus::Succeeded), Next::Clean);
        assert_eq!(progress.pass(), CLEAN_PASSES);
    }

    #[test]
    fn progress_and_status_round_trip_through_json() {
        let mut progress = CleaningProgress::new();
        progress.after(&failed("x"));
        let json = serde_json::to_string(&progress).unwrap();
        assert_eq!(
            serde_json::from_str::<CleaningProgress>(&json).unwrap(),
            progress
        );
        let status = serde_json::to_value(failed("why")).unwrap();
        assert_eq!(
            status,
            serde_json::json!({"status": "failed", "reason": "why"})
        );
    }
}
