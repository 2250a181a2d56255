//! [`EventBridgeBus`] against moto's EventBridge: the EventBus port's
//! contract (`purser_contract::event_bus`, written once for every adapter),
//! and what only EventBridge does (rules that do not match). A rule on the
//! adapter's bus forwards matching events to an SQS queue, and the test
//! reads the queue to see what was emitted (as sls-test-tools does on AWS).
//!
//! moto evaluates rule patterns and delivers to SQS during `PutEvents`, and
//! reports malformed detail per entry as AWS does, but leaves `account` out
//! of the delivered envelope (see [`envelope`]). It never throttles nor
//! fails an entry for a passing reason, so the retry of such entries (and
//! that each call stays within the limits, which the contract's large puts
//! only show where the backend enforces them) is covered by the unit tests
//! in `src/event_bus.rs`, with a fake `PutEvents`.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use std::sync::Arc;

use purser_aws::EventBridgeBus;
use purser_contract::event_bus::{Fixture, Observer, SOURCE};
use purser_core::{Event, EventBus, EventEntry};
use serde_json::json;
use tokio::time::Instant;

/// A fresh bus whose one rule sends events of sources starting with
/// `purser.` to a fresh queue.
struct Wiring {
    bus: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Wiring {
    async fn new(config: &SdkConfig) -> Self {
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let bus = crate::common::unique("bus");
        events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("CreateEventBus");
        let queue = sqs
            .create_queue()
            .queue_name(crate::common::unique("events"))
            .send()
            .await
            .expect("CreateQueue");
        let queue_url = queue
            .queue_url()
            .expect("CreateQueue returns a URL")
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("the queue has an ARN")
            .clone();
        let rule = crate::common::unique("rule");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(json!({"source": [{"prefix": "purser."}]}).to_string())
            .send()
            .await
            .expect("PutRule");
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .expect("a target with an id and an ARN"),
            )
            .send()
            .await
            .expect("PutTargets");
        Self {
            bus,
            queue_url,
            sqs,
        }
    }

    /// Reads the queue until `expected` events arrived or `within` passed,
    /// then once more briefly, so that extra deliveries are seen too.
    async fn receive(&self, expected: usize, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        while events.len() < expected && Instant::now() < deadline {
            events.extend(self.poll(1).await);
        }
        events.extend(self.poll(1).await);
        events
    }

    async fn poll(&self, wait_seconds: i32) -> Vec<Event> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .expect("ReceiveMessage");
        output
            .messages()
            .iter()
            .map(|m| envelope(m.body().expect("a message body")))
            .collect()
    }
}

/// Reads a delivered event as Purser's [`Event`]. moto 5.2.5 leaves
/// `account` out of the events it delivers to targets (its default input
/// template omits it), where AWS always sets it; the test fills in a
/// placeholder so the rest of the envelope is still checked against
/// Purser's type.
fn envelope(body: &str) -> Event {
    let mut value: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the message is not JSON ({e}): {body}"));
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("account")
            .or_insert_with(|| json!(MOTO_OMITS_ACCOUNT));
    }
    serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("not an EventBridge event ({e}): {body}"))
}

const MOTO_OMITS_ACCOUNT: &str = "(left out by moto)";

fn entry(source: &str, detail: &serde_json::Value) -> EventEntry {
    EventEntry {
        source: Some(source.into()),
        detail_type: Some("ContractTested".into()),
        detail: Some(detail.to_string()),
        ..EventEntry::default()
    }
}

fn numbers(events: &[Event]) -> Vec<i64> {
    let mut numbers: Vec<_> = events
        .iter()
        .map(|e| e.detail["n"].as_i64().expect("detail.n is a number"))
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn does_not_deliver_an_event_the_rule_does_not_match() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let wiring = Wiring::new(&config).await;
    let bus = EventBridgeBus::from_config(&config, &wiring.bus);

    // The matching event is put after the other, in the same call: once it
    // has arrived, the other would have too.
    bus.put(vec![
        entry("elsewhere.contract", &json!({"n": 1})),
        entry(SOURCE, &json!({"n": 2})),
    ])
    .await
    .expect("both accepted");

    let events = wiring.receive(1, Duration::from_secs(10)).await;
    assert_eq!(numbers(&events), [2]);
}

/// The events the rule forwarded to the queue.
impl Observer for Wiring {
    async fn events(&self, expected: usize) -> Vec<Event> {
        self.receive(expected, Duration::from_secs(10)).await
    }
}

async fn fresh() -> Option<Fixture<Wiring>> {
    let config = crate::common::moto_config().await?;
    let wiring = Wiring::new(&config).await;
    let bus = EventBridgeBus::from_config(&config, &wiring.bus);
    let name = wiring.bus.clone();
    // moto leaves the account out of delivered events (see `envelope`).
    Some(Fixture::new(Arc::new(bus), wiring, name, "us-east-1", "").without_account())
}

purser_contract::event_bus_contract!(fresh);
