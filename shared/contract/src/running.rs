//! The [`RunningResources`] port's contract, run by `SqliteStore`'s unit
//! tests (`shared/local/src/store/running.rs`) and by `DynamoStore`'s
//! contract tests against moto (`shared/aws/tests/contract/running.rs`):
//! starts that are stored once, a `priced_until` that moves only from the
//! value it had, stops that return the run once and keep a late start out.
//! Fixed instants, from 2026-11-20T10:00:00Z.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use purser_core::ports::{Run, RunWhat, RunningResources, SagemakerInstances};
use purser_core::spend::{Architecture, SagemakerUse};

/// A store on fresh state, for one scenario.
pub struct Fixture {
    pub running: Arc<dyn RunningResources>,
    /// The same state for the concurrent scenario (see `store::Fixture`).
    pub racing: Arc<dyn RunningResources>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    pub fn new(running: Arc<dyn RunningResources>) -> Self {
        Self {
            racing: Arc::clone(&running),
            running,
            _keep: None,
        }
    }

    pub fn racing_on(mut self, racing: Arc<dyn RunningResources>) -> Self {
        self.racing = racing;
        self
    }

    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

/// One `#[tokio::test]` per scenario, on a fresh fixture from `$fresh`, an
/// `async fn() -> Option<running::Fixture>` (`None` skips it).
#[macro_export]
macro_rules! running_contract {
    ($fresh:path) => {
        $crate::__running_scenarios!(__contract_tests; running, $fresh);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __running_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                a_start_is_stored_once_and_listed,
                priced_until_moves_only_from_the_value_it_has,
                a_stop_returns_the_run_until_its_last_slice_is_priced,
                a_stop_before_any_start_keeps_a_late_start_out,
                a_stale_stop_leaves_a_later_run_running,
                a_stop_before_priced_until_stops_there,
                of_8_concurrent_advances_from_one_value_one_wins,
            ]
        }
    };
}

/// The names of the scenarios, as `running_contract!` runs them.
pub const RUNNING_SCENARIOS: &[&str] = __running_scenarios!(__scenario_list;);

/// `minutes` after 2026-11-20T10:00:00Z.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .expect("a valid time")
        + Duration::minutes(minutes)
}

const MEMBER: &str = "210987654321";

fn instance(id: &str, minutes: i64) -> Run {
    Run::new(
        MEMBER,
        "us-east-1",
        id,
        RunWhat::Ec2 {
            instance_type: Some("g5.xlarge".into()),
        },
        at(minutes),
    )
}

fn task(minutes: i64) -> Run {
    Run::new(
        MEMBER,
        "eu-west-1",
        format!("arn:aws:ecs:eu-west-1:{MEMBER}:task/default/0123456789abcdef0123456789abcdef"),
        RunWhat::Fargate {
            architecture: Architecture::Arm64,
            cpu_units: 1024,
            memory_mib: 2048,
        },
        at(minutes),
    )
}

fn training(minutes: i64) -> Run {
    Run::new(
        "123456789012",
        "us-east-1",
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/fine-tune-1",
        RunWhat::Sagemaker {
            use_: SagemakerUse::Training,
            instances: vec![
                SagemakerInstances {
                    instance_type: Some("ml.p3.2xlarge".into()),
                    count: 2,
                },
                SagemakerInstances {
                    instance_type: None,
                    count: 1,
                },
            ],
        },
        at(minutes),
    )
}

async fn listed(f: &Fixture) -> Vec<Run> {
    f.running.running(at(0)).await.expect("a listing")
}

pub async fn a_start_is_stored_once_and_listed(f: &Fixture) {
    let (a, b, c) = (instance("i-0123456789abcdef0", 0), task(1), training(2));
    for run in [&a, &b, &c] {
        assert!(f.running.start_run(run).await.unwrap(), "{run:?}");
    }
    // The same start again, or another start of a running resource.
    assert!(!f.running.start_run(&a).await.unwrap());
    assert!(
        !f.running
            .start_run(&instance("i-0123456789abcdef0", 5))
            .await
            .unwrap()
    );
    // Key order: account, region, service, resource.
    assert_eq!(listed(f).await, vec![c, b, a]);
}

pub async fn priced_until_moves_only_from_the_value_it_has(f: &Fixture) {
    let run = instance("i-0123456789abcdef0", 0);
    f.running.start_run(&run).await.unwrap();
    assert!(!f.running.advance_run(&run.key, at(1), at(5)).await.unwrap());
    assert!(f.running.advance_run(&run.key, at(0), at(5)).await.unwrap());
    assert!(
        !f.running.advance_run(&run.key, at(0), at(6)).await.unwrap(),
        "the slice from 0 was taken"
    );
    // Given back, then taken again.
    assert!(f.running.advance_run(&run.key, at(5), at(0)).await.unwrap());
    assert!(f.running.advance_run(&run.key, at(0), at(7)).await.unwrap());
    assert_eq!(listed(f).await[0].priced_until, at(7));
    let other = instance("i-0fedcba9876543210", 0);
    assert!(
        !f.running
            .advance_run(&other.key, at(0), at(1))
            .await
            .unwrap(),
        "no run, nothing moves"
    );
}

pub async fn a_stop_returns_the_run_until_its_last_slice_is_priced(f: &Fixture) {
    let run = task(0);
    f.running.start_run(&run).await.unwrap();
    f.running.advance_run(&run.key, at(0), at(5)).await.unwrap();
    let stopped = f.running.stop_run(&run.key, at(8)).await.unwrap();
    let expected = Run {
        priced_until: at(5),
        stopped_at: Some(at(8)),
        ..run.clone()
    };
    assert_eq!(stopped.as_ref(), Some(&expected));
    assert_eq!(
        listed(f).await,
        vec![expected.clone()],
        "listed until priced"
    );
    // A repeated stop, later or not, changes nothing.
    assert_eq!(
        f.running.stop_run(&run.key, at(9)).await.unwrap(),
        Some(expected)
    );
    assert!(f.running.advance_run(&run.key, at(5), at(8)).await.unwrap());
    assert!(listed(f).await.is_empty(), "priced to its stop");
    let again = f.running.stop_run(&run.key, at(8)).await.unwrap().unwrap();
    assert_eq!(again.priced_until, again.stopped_at.unwrap());
    // The redelivered start of the run that stopped stays out; a later
    // start of the same resource (an instance started again) runs.
    assert!(!f.running.start_run(&run).await.unwrap());
    assert!(f.running.start_run(&task(9)).await.unwrap());
    assert_eq!(listed(f).await, vec![task(9)]);
}

pub async fn a_stop_before_any_start_keeps_a_late_start_out(f: &Fixture) {
    let run = task(0);
    assert_eq!(f.running.stop_run(&run.key, at(10)).await.unwrap(), None);
    assert!(!f.running.start_run(&run).await.unwrap(), "started before");
    assert!(
        !f.running.start_run(&task(10)).await.unwrap(),
        "at its stop"
    );
    assert!(listed(f).await.is_empty());
    assert!(
        !f.running
            .advance_run(&run.key, at(10), at(11))
            .await
            .unwrap(),
        "a tombstone is never priced"
    );
    assert_eq!(
        f.running.stop_run(&run.key, at(12)).await.unwrap(),
        None,
        "nor returned"
    );
    assert!(f.running.start_run(&task(11)).await.unwrap());
    assert_eq!(listed(f).await, vec![task(11)]);
}

pub async fn a_stale_stop_leaves_a_later_run_running(f: &Fixture) {
    let run = instance("i-0123456789abcdef0", 10);
    f.running.start_run(&run).await.unwrap();
    assert_eq!(f.running.stop_run(&run.key, at(5)).await.unwrap(), None);
    assert_eq!(listed(f).await, vec![run]);
}

pub async fn a_stop_before_priced_until_stops_there(f: &Fixture) {
    let run = instance("i-0123456789abcdef0", 0);
    f.running.start_run(&run).await.unwrap();
    f.running
        .advance_run(&run.key, at(0), at(10))
        .await
        .unwrap();
    let stopped = f.running.stop_run(&run.key, at(7)).await.unwrap().unwrap();
    assert_eq!(stopped.stopped_at, Some(at(10)));
    assert!(listed(f).await.is_empty(), "nothing is left to price");
}

pub async fn of_8_concurrent_advances_from_one_value_one_wins(f: &Fixture) {
    let run = instance("i-0123456789abcdef0", 0);
    f.running.start_run(&run).await.unwrap();
    let mut tasks = Vec::new();
    for i in 1..=8 {
        let racing = Arc::clone(&f.racing);
        let key = run.key.clone();
        tasks.push(tokio::spawn(async move {
            racing.advance_run(&key, at(0), at(i)).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("running.rs"), super::RUNNING_SCENARIOS);
    }
}
