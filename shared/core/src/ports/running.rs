//! The running-resources port: what runs in member accounts and costs by
//! the second (EC2 instances, Fargate tasks, SageMaker training jobs and
//! endpoints), from its start until it stops, and how far it is priced.
//!
//! The recorder starts a run on a resource's state change, prices its
//! slices every few minutes (`priced_until` moves forward, conditionally,
//! so two pricings never take the same slice), and stops it on the
//! resource's end. A stopped run stays as a tombstone for
//! [`TOMBSTONE_KEPT`], so that a start delivered late (EventBridge keeps no
//! order) cannot start again what has stopped.
//!
//! Times are kept to the millisecond: [`Run::new`] truncates them, and a
//! caller advancing a run passes the `priced_until` it read.

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;
use crate::spend::{Architecture, SagemakerUse, Service};

/// How long a stopped run is kept: longer than EventBridge retries an
/// event (at most 24 hours; Purser's rules say one), so that a start
/// delivered after its stop finds it.
pub const TOMBSTONE_KEPT: Duration = Duration::days(2);

/// Which resource runs: an account's, in a region, of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunKey {
    pub account_id: String,
    pub region: String,
    pub service: Service,
    /// The instance id, or the task's, training job's or endpoint's ARN.
    pub resource: String,
}

impl RunKey {
    /// The key as one string (`<account>#<region>#<service>#<resource>`),
    /// as the DynamoDB adapter sorts it.
    pub fn joined(&self) -> String {
        format!(
            "{}#{}#{}#{}",
            self.account_id, self.region, self.service, self.resource
        )
    }
}

/// Some instances of one type a SageMaker job or endpoint runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagemakerInstances {
    /// `None` when the event did not say (an endpoint's variants name no
    /// type): the usage is recorded, unpriced.
    pub instance_type: Option<String>,
    pub count: u32,
}

/// What runs, as far as its price goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunWhat {
    /// An EC2 instance; `None` until its type is known (the recorder looks
    /// it up again at each pricing).
    Ec2 { instance_type: Option<String> },
    /// A Fargate task: 1,024 CPU units a vCPU.
    Fargate {
        architecture: Architecture,
        cpu_units: u32,
        memory_mib: u32,
    },
    /// A SageMaker training job or endpoint.
    Sagemaker {
        #[serde(rename = "use")]
        use_: SagemakerUse,
        instances: Vec<SagemakerInstances>,
    },
}

impl RunWhat {
    pub fn service(&self) -> Service {
        match self {
            Self::Ec2 { .. } => Service::Ec2,
            Self::Fargate { .. } => Service::Fargate,
            Self::Sagemaker { .. } => Service::Sagemaker,
        }
    }
}

/// A resource's run: started at `started_at`, priced up to `priced_until`,
/// and once stopped, stopped at `stopped_at` (never before `priced_until`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub key: RunKey,
    pub what: RunWhat,
    pub started_at: DateTime<Utc>,
    pub priced_until: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// `t` to the millisecond, as stores keep it.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::milliseconds(1)).unwrap_or(t)
}

impl Run {
    /// A run of `what` from `started_at`, priced up to its start.
    pub fn new(
        account_id: impl Into<String>,
        region: impl Into<String>,
        resource: impl Into<String>,
        what: RunWhat,
        started_at: DateTime<Utc>,
    ) -> Self {
        let started_at = to_millis(started_at);
        Self {
            key: RunKey {
                account_id: account_id.into(),
                region: region.into(),
                service: what.service(),
                resource: resource.into(),
            },
            what,
            started_at,
            priced_until: started_at,
            stopped_at: None,
        }
    }

    /// Until when the run is to be priced at `now`: its stop, or `now`.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.stopped_at.unwrap_or(now)
    }
}

#[async_trait]
pub trait RunningResources: Send + Sync {
    /// Starts `run` (its `priced_until` is its start): `true` when stored;
    /// `false`, changing nothing, when the resource has a run already, or
    /// stopped at or after this start (a late or repeated start).
    async fn start_run(&self, run: &Run) -> Result<bool, StoreError>;

    /// Moves the run's `priced_until` from `from` to `to`, only if it is
    /// `from`: `false` when another pricing moved it first or the run is
    /// gone. (The recorder moves it back the same way when the slice it
    /// took could not be counted.)
    async fn advance_run(
        &self,
        key: &RunKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Stops the resource's run at `at` (or at its `priced_until`, if
    /// later) and returns it, its last slice from `priced_until` to
    /// `stopped_at` to be priced; a run stopped before is returned as it
    /// is. `None` when the resource has no run, or only one that started
    /// after `at`; with no run, a tombstone keeps a later-delivered start
    /// from `at` or before out.
    async fn stop_run(&self, key: &RunKey, at: DateTime<Utc>) -> Result<Option<Run>, StoreError>;

    /// Every run with something left to price: running, or stopped and not
    /// priced up to its stop; in key order. Tombstones older than
    /// [`TOMBSTONE_KEPT`] at `now` may be removed on the way.
    async fn running(&self, now: DateTime<Utc>) -> Result<Vec<Run>, StoreError>;
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory adapter for the domain's unit tests.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::fakes::locked;

    /// The port in a map, with tombstones as runs without a kind.
    #[derive(Default)]
    pub struct MemoryRunning {
        pub runs: Mutex<BTreeMap<RunKey, (Option<RunWhat>, Run)>>,
    }

    #[async_trait]
    impl RunningResources for MemoryRunning {
        async fn start_run(&self, run: &Run) -> Result<bool, StoreError> {
            let mut runs = locked(&self.runs);
            if let Some((_, old)) = runs.get(&run.key) {
                match old.stopped_at {
                    Some(stopped) if stopped < run.started_at => {}
                    _ => return Ok(false),
                }
            }
            runs.insert(run.key.clone(), (Some(run.what.clone()), run.clone()));
            Ok(true)
        }

        async fn advance_run(
            &self,
            key: &RunKey,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut runs = locked(&self.runs);
            match runs.get_mut(key) {
                Some((_, run)) if run.priced_until == from => {
                    run.priced_until = to;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }

        async fn stop_run(
            &self,
            key: &RunKey,
            at: DateTime<Utc>,
        ) -> Result<Option<Run>, StoreError> {
            let at = to_millis(at);
            let mut runs = locked(&self.runs);
            match runs.get_mut(key) {
                Some((what, run)) => {
                    if run.stopped_at.is_none() {
                        if run.started_at > at {
                            return Ok(None);
                        }
                        run.stopped_at = Some(at.max(run.priced_until));
                    }
                    Ok(what.as_ref().map(|_| run.clone()))
                }
                None => {
                    let tombstone = Run {
                        key: key.clone(),
                        what: RunWhat::Ec2 {
                            instance_type: None,
                        },
                        started_at: at,
                        priced_until: at,
                        stopped_at: Some(at),
                    };
                    runs.insert(key.clone(), (None, tombstone));
                    Ok(None)
                }
            }
        }

        async fn running(&self, _now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
            Ok(locked(&self.runs)
                .values()
                .filter(|(what, run)| {
                    what.is_some() && run.stopped_at.is_none_or(|s| run.priced_until < s)
                })
                .map(|(_, run)| run.clone())
                .collect())
        }
    }
}
