//! The [`LakeSink`] port's contract: what every adapter (`LocalLakeSink`,
//! `FirehoseSink`) must do, each behaviour one scenario, driven through the
//! trait, and read back through an [`Observer`] for what the port does not
//! return (the records each table holds, the records dead-lettered).
//!
//! Every scenario runs on a lake of its own fixture. What only one adapter
//! or backend does is tested beside it, not here: the local lake's files,
//! partitions and concurrent writers (`shared/local/src/lake.rs`); how the
//! Firehose sink packs calls, retries refused records and dead-letters
//! what a missing stream or bucket refuses
//! (`shared/aws/src/lake.rs`, `shared/aws/tests/contract/lake.rs`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::lake_sink::Fixture<MyObserver>> { … }
//!
//! purser_contract::lake_sink_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;

use purser_core::lake::LakeTable;
use purser_core::{Appended, LakeSink};
use serde_json::{Value, json};

/// What a scenario reads of the lake besides the port: each adapter's test
/// answers from its backend, and panics if it cannot.
pub trait Observer: Send + Sync {
    /// Every record `table` holds, in any order.
    fn records(&self, table: LakeTable) -> impl Future<Output = Vec<Value>> + Send;
    /// Every record of `table` in the lake's dead-letter location, in any
    /// order (none where the lake has no such location).
    fn dead_letters(&self, table: LakeTable) -> impl Future<Output = Vec<Value>> + Send;
}

/// A lake for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub sink: Arc<dyn LakeSink>,
    /// What the scenarios read besides the port.
    pub observer: O,
    /// The largest record the lake takes, if it refuses larger ones.
    record_limit: Option<usize>,
    /// What must outlive the sink (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    /// A lake that takes records of any size.
    pub fn new(sink: Arc<dyn LakeSink>, observer: O) -> Self {
        Self {
            sink,
            observer,
            record_limit: None,
            _keep: None,
        }
    }

    /// The lake refuses records larger than `bytes` (Firehose's 1,000 KiB):
    /// the sink must dead-letter them.
    pub fn refusing_records_over(mut self, bytes: usize) -> Self {
        self.record_limit = Some(bytes);
        self
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

// ------------------------------------------------------------ helpers

/// A record as Purser's tables hold them, with a newline inside a value.
fn record(n: usize) -> Value {
    json!({
        "schema_version": 1,
        "n": n,
        "account_id": "111111111111",
        "function_name": "checkout",
        "note": "a value with a\nnewline stays on its line",
    })
}

/// The `n` of each record, sorted.
fn numbers(records: &[Value]) -> Vec<u64> {
    let mut n: Vec<u64> = records
        .iter()
        .map(|r| r["n"].as_u64().expect("a numbered record"))
        .collect();
    n.sort_unstable();
    n
}

fn written(written: usize) -> Appended {
    Appended {
        written,
        dead_lettered: 0,
    }
}

// ------------------------------------------------------------ scenarios

/// More records than one call of any lake takes (Firehose: 500) arrive
/// whole, each once, in their table and no other.
pub async fn records_arrive_whole_and_once_in_their_table<O: Observer>(fixture: &Fixture<O>) {
    let records: Vec<Value> = (0..1_200).map(record).collect();
    let appended = fixture
        .sink
        .append(LakeTable::Invocations, records.clone())
        .await
        .expect("appended");
    assert_eq!(appended, written(1_200));

    let held = fixture.observer.records(LakeTable::Invocations).await;
    assert_eq!(numbers(&held), (0..1_200).collect::<Vec<u64>>());
    for record in &held {
        assert_eq!(record, &records[record["n"].as_u64().unwrap() as usize]);
    }
    assert!(
        fixture
            .observer
            .records(LakeTable::Deployments)
            .await
            .is_empty()
    );
    for table in LakeTable::ALL {
        let dead = fixture.observer.dead_letters(table).await;
        assert!(dead.is_empty(), "{} dead letters in {table}", dead.len());
    }

    // The other table holds its own.
    let appended = fixture
        .sink
        .append(LakeTable::Deployments, vec![record(7)])
        .await
        .expect("appended");
    assert_eq!(appended, written(1));
    assert_eq!(
        fixture.observer.records(LakeTable::Deployments).await,
        [record(7)]
    );
}

/// A later append adds to what an earlier one wrote.
pub async fn an_append_adds_to_the_records_already_there<O: Observer>(fixture: &Fixture<O>) {
    for n in 0..3 {
        let appended = fixture
            .sink
            .append(LakeTable::Deployments, vec![record(n)])
            .await
            .expect("appended");
        assert_eq!(appended, written(1));
        let held = fixture.observer.records(LakeTable::Deployments).await;
        assert_eq!(numbers(&held), (0..=n as u64).collect::<Vec<_>>());
    }
}

/// Appending no records succeeds and stores nothing.
pub async fn an_empty_append_stores_nothing<O: Observer>(fixture: &Fixture<O>) {
    for table in LakeTable::ALL {
        let appended = fixture
            .sink
            .append(table, Vec::new())
            .await
            .expect("nothing to append");
        assert_eq!(appended, Appended::default());
        assert!(fixture.observer.records(table).await.is_empty());
        assert!(fixture.observer.dead_letters(table).await.is_empty());
    }
}

/// A record of over 1,000 KiB is never dropped: a lake that refuses it
/// dead-letters it alone (and counts it so), one that takes it writes it;
/// its neighbours arrive either way.
pub async fn a_large_record_is_written_or_dead_lettered_never_dropped<O: Observer>(
    fixture: &Fixture<O>,
) {
    let big = json!({"n": 1, "padding": "x".repeat(1_001 * 1024)});
    let size = big.to_string().len() + 1;
    let appended = fixture
        .sink
        .append(
            LakeTable::Invocations,
            vec![record(0), big.clone(), record(2)],
        )
        .await
        .expect("appended");

    let held = fixture.observer.records(LakeTable::Invocations).await;
    let dead = fixture.observer.dead_letters(LakeTable::Invocations).await;
    if fixture.record_limit.is_some_and(|limit| size > limit) {
        assert_eq!(
            appended,
            Appended {
                written: 2,
                dead_lettered: 1
            }
        );
        assert_eq!(numbers(&held), [0, 2]);
        assert_eq!(dead, [big]);
    } else {
        assert_eq!(appended, written(3));
        assert_eq!(numbers(&held), [0, 1, 2]);
        assert!(held.contains(&big), "the large record whole");
        assert!(dead.is_empty(), "{} dead letters", dead.len());
    }
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`lake_sink`](self), each named as
/// its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<lake_sink::Fixture<_>>` (`None` skips the test,
/// as the moto tests do when told to).
#[macro_export]
macro_rules! lake_sink_contract {
    ($fresh:path) => {
        $crate::__lake_sink_scenarios!(__contract_tests; lake_sink, $fresh);
    };
}

/// The lake's scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __lake_sink_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                records_arrive_whole_and_once_in_their_table,
                an_append_adds_to_the_records_already_there,
                an_empty_append_stores_nothing,
                a_large_record_is_written_or_dead_lettered_never_dropped,
            ]
        }
    };
}

/// The names of the lake's scenarios, as `lake_sink_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__lake_sink_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("lake_sink.rs"), super::SCENARIOS);
    }
}
