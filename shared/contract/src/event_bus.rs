//! The [`EventBus`] port's contract: what every adapter (`LocalBus`,
//! `EventBridgeBus`) must do, each behaviour one scenario, driven through
//! the trait, and read back through an [`Observer`] for what the port does
//! not return (the events the bus took: the local archive, or on moto a
//! rule forwarding them to an SQS queue).
//!
//! Every scenario puts events of source [`SOURCE`] on a bus of its own
//! fixture. What only one adapter or backend does is tested beside it, not
//! here: rule matching and delivery (`shared/local/src/bus.rs` and the
//! local runtime's tests; a rule that does not match on moto,
//! `shared/aws/tests/contract/event_bus.rs`), and the retry of entries
//! refused for a passing reason (the unit tests of `shared/aws/src/event_bus.rs`,
//! with a fake `PutEvents`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::event_bus::Fixture<MyObserver>> { … }
//!
//! purser_contract::event_bus_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;

use purser_core::events::{MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES};
use purser_core::{BusError, Event, EventBus, EventEntry};
use serde_json::{Value, json};

/// The source of every event the scenarios put.
pub const SOURCE: &str = "purser.contract";

/// What a scenario reads of the bus besides the port: each adapter's test
/// answers from its backend, and panics if it cannot.
pub trait Observer: Send + Sync {
    /// The events of source [`SOURCE`] the bus took so far, in any order:
    /// waits (a few seconds at most) until at least `expected` are there,
    /// then long enough that extra ones would be seen too.
    fn events(&self, expected: usize) -> impl Future<Output = Vec<Event>> + Send;
}

/// A bus for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub bus: Arc<dyn EventBus>,
    /// What the scenarios read besides the port.
    pub observer: O,
    /// The bus the adapter puts entries on that name none.
    pub bus_name: String,
    /// The region the bus stamps on its events.
    pub region: String,
    /// The account the bus stamps on its events, `None` where the backend
    /// leaves it out of what the observer sees (moto's delivered events).
    account: Option<String>,
    /// What must outlive the bus (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    /// A bus that puts unnamed entries on `bus_name` and stamps `region`
    /// and `account` on its events.
    pub fn new(
        bus: Arc<dyn EventBus>,
        observer: O,
        bus_name: impl Into<String>,
        region: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Self {
            bus,
            observer,
            bus_name: bus_name.into(),
            region: region.into(),
            account: Some(account.into()),
            _keep: None,
        }
    }

    /// The observer does not see the events' account (moto leaves it out
    /// of the events it delivers to targets): the scenarios then check it
    /// only where it is seen.
    pub fn without_account(mut self) -> Self {
        self.account = None;
        self
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

// ------------------------------------------------------------ helpers

fn entry(detail: &Value) -> EventEntry {
    EventEntry {
        source: Some(SOURCE.into()),
        detail_type: Some("ContractTested".into()),
        detail: Some(detail.to_string()),
        ..EventEntry::default()
    }
}

/// The `detail.n` of each event, sorted.
fn numbers(events: &[Event]) -> Vec<i64> {
    let mut numbers: Vec<_> = events
        .iter()
        .map(|e| e.detail["n"].as_i64().expect("detail.n is a number"))
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The bus stamped its region and account on `event`.
fn assert_stamped<O: Observer>(fixture: &Fixture<O>, event: &Event) {
    assert_eq!(event.region, fixture.region, "the bus sets the region");
    if let Some(account) = &fixture.account {
        assert_eq!(&event.account, account, "the bus sets the account");
    }
    assert!(!event.id.is_empty(), "the bus gives each event an id");
}

// ------------------------------------------------------------ scenarios

/// More entries than one `PutEvents` call takes are all put, each once,
/// on the adapter's bus when they name none.
pub async fn more_entries_than_one_call_takes_are_put_each_once<O: Observer>(fixture: &Fixture<O>) {
    let count = 2 * MAX_ENTRIES_PER_PUT + 5;
    let entries = (0..count)
        .map(|n| entry(&json!({"n": n, "team": "core"})))
        .collect();
    fixture.bus.put(entries).await.expect("all accepted");

    let events = fixture.observer.events(count).await;
    assert_eq!(
        numbers(&events),
        (0..count as i64).collect::<Vec<_>>(),
        "each event exactly once"
    );
    for event in &events {
        assert_eq!(event.source, SOURCE);
        assert_eq!(event.detail_type, "ContractTested");
        assert_eq!(event.detail["team"], "core");
        assert_stamped(fixture, event);
    }
}

/// Entries whose sizes add up to more than one call's bytes are all put.
pub async fn more_bytes_than_one_call_takes_are_put_whole<O: Observer>(fixture: &Fixture<O>) {
    let filler = "x".repeat(MAX_PUT_BYTES / 3);
    let entries = (0..4)
        .map(|n| entry(&json!({"n": n, "filler": filler})))
        .collect();
    fixture.bus.put(entries).await.expect("all accepted");

    let events = fixture.observer.events(4).await;
    assert_eq!(numbers(&events), [0, 1, 2, 3], "each event exactly once");
    for event in &events {
        assert_eq!(event.detail["filler"], filler.as_str(), "the detail whole");
    }
}

/// An event carries its entry's source, detail-type, detail and resources.
pub async fn an_event_keeps_its_entrys_source_detail_type_detail_and_resources<O: Observer>(
    fixture: &Fixture<O>,
) {
    let detail = json!({"n": 7, "account": {"id": "111111111111"}, "tags": ["a", "b"]});
    let resources = vec![
        "arn:aws:organizations::123456789012:account/o-abc/111111111111".to_owned(),
        "arn:aws:s3:::purser-lake".to_owned(),
    ];
    fixture
        .bus
        .put(vec![EventEntry {
            detail_type: Some("Account Created".into()),
            resources: resources.clone(),
            ..entry(&detail)
        }])
        .await
        .expect("accepted");

    let events = fixture.observer.events(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.source, SOURCE);
    assert_eq!(event.detail_type, "Account Created");
    assert_eq!(event.detail, detail);
    assert_eq!(event.resources, resources);
    assert_stamped(fixture, event);
}

/// Putting no entries succeeds and puts nothing.
pub async fn an_empty_put_succeeds_and_puts_nothing<O: Observer>(fixture: &Fixture<O>) {
    fixture.bus.put(Vec::new()).await.expect("nothing to put");
    let events = fixture.observer.events(0).await;
    assert!(events.is_empty(), "{events:?}");
}

/// An entry the bus refuses (here, malformed detail) is reported as
/// rejected, with the bus's code and message and the entry as sent to the
/// bus; the others of the same put are put.
pub async fn a_refused_entry_is_reported_by_name_and_the_others_are_put<O: Observer>(
    fixture: &Fixture<O>,
) {
    let mut malformed = entry(&json!({}));
    malformed.detail = Some("{not json".into());
    let err = fixture
        .bus
        .put(vec![
            entry(&json!({"n": 1})),
            malformed,
            entry(&json!({"n": 3})),
        ])
        .await
        .expect_err("the malformed entry is refused");

    let BusError::Rejected { total, rejected } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(*total, 3);
    assert_eq!(rejected.len(), 1, "{err}");
    assert_eq!(rejected[0].code, "MalformedDetail");
    assert_eq!(rejected[0].message, "Detail is malformed.");
    assert_eq!(rejected[0].entry.detail.as_deref(), Some("{not json"));
    assert_eq!(rejected[0].entry.bus_name(), fixture.bus_name);

    let events = fixture.observer.events(2).await;
    assert_eq!(numbers(&events), [1, 3]);
}

/// An entry larger than any call takes is refused alone, by name, as a
/// `ValidationException`; the others of the same put are put.
pub async fn an_entry_larger_than_a_call_is_refused_alone<O: Observer>(fixture: &Fixture<O>) {
    let oversized = entry(&json!({"n": 2, "filler": "x".repeat(MAX_PUT_BYTES)}));
    let err = fixture
        .bus
        .put(vec![
            entry(&json!({"n": 1})),
            oversized,
            entry(&json!({"n": 3})),
        ])
        .await
        .expect_err("the oversized entry is refused");

    let BusError::Rejected { total, rejected } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(*total, 3);
    assert_eq!(rejected.len(), 1, "{err}");
    assert_eq!(rejected[0].code, "ValidationException");
    assert!(rejected[0].entry.size() > MAX_PUT_BYTES);
    let detail: Value =
        serde_json::from_str(rejected[0].entry.detail.as_deref().expect("a detail")).unwrap();
    assert_eq!(detail["n"], 2, "the oversized entry is named");

    let events = fixture.observer.events(2).await;
    assert_eq!(numbers(&events), [1, 3]);
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`event_bus`](self), each named as
/// its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<event_bus::Fixture<_>>` (`None` skips the test,
/// as the moto tests do when told to).
#[macro_export]
macro_rules! event_bus_contract {
    ($fresh:path) => {
        $crate::__event_bus_scenarios!(__contract_tests; event_bus, $fresh);
    };
}

/// The bus's scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __event_bus_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                more_entries_than_one_call_takes_are_put_each_once,
                more_bytes_than_one_call_takes_are_put_whole,
                an_event_keeps_its_entrys_source_detail_type_detail_and_resources,
                an_empty_put_succeeds_and_puts_nothing,
                a_refused_entry_is_reported_by_name_and_the_others_are_put,
                an_entry_larger_than_a_call_is_refused_alone,
            ]
        }
    };
}

/// The names of the bus's scenarios, as `event_bus_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__event_bus_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("event_bus.rs"), super::SCENARIOS);
    }
}
