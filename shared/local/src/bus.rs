//! The in-process event bus: EventBridge's `PutEvents` semantics on SQLite.
//! Accepted events are archived and matched against the template's rules;
//! each match becomes a persisted delivery that the dispatcher invokes.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use purser_core::events::{MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES};
use purser_core::{BusError, Clock, EntryError, Event, EventBus, EventEntry, RejectedEntry};
use purser_eventbridge::EventPattern;
use rusqlite::{Transaction, params};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::db::{Db, DbError, epoch_ms};
use crate::template::{QueueTarget, RetryPolicy, Trigger};

/// A rule of the template: events on `bus` matching `pattern` go to
/// `function`, shaped by `input` / `input_path`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub function: String,
    pub bus: String,
    pub pattern: EventPattern,
    pub retry: RetryPolicy,
    pub input: Option<Value>,
    pub input_path: Option<String>,
    /// The SQS queue between the rule and the function, if any.
    pub queue: Option<QueueTarget>,
}

impl Rule {
    /// The rule a wire of the template's makes, for the target it names.
    pub fn of(
        wire: &crate::template::Wire,
        bus: &str,
        pattern: &EventPattern,
        retry: RetryPolicy,
        input: &Option<Value>,
        input_path: &Option<String>,
    ) -> Self {
        Self {
            name: wire.name(),
            function: wire.function.clone(),
            bus: bus.to_string(),
            pattern: pattern.clone(),
            retry,
            input: input.clone(),
            input_path: input_path.clone(),
            queue: match &wire.trigger {
                Trigger::Rule { queue, .. } => queue.clone(),
                _ => None,
            },
        }
    }

    /// Every rule of `wiring` (the template's EventBridge rules).
    pub fn all_of(wiring: &crate::template::Wiring) -> Vec<Self> {
        wiring
            .wires
            .iter()
            .filter_map(|wire| match &wire.trigger {
                crate::template::Trigger::Rule {
                    bus,
                    pattern,
                    retry,
                    input,
                    input_path,
                    ..
                } => Some(Self::of(wire, bus, pattern, *retry, input, input_path)),
                _ => None,
            })
            .collect()
    }

    /// The payload the target receives for `event`, as EventBridge's
    /// `Input` (a constant) or `InputPath` (a JSONPath into the event) shape
    /// it; through a queue, the SQS event Lambda's event source mapping
    /// hands the function, one message a batch.
    pub fn payload(&self, event: &Value, region: &str) -> Value {
        let sent = if let Some(input) = &self.input {
            input.clone()
        } else {
            match &self.input_path {
                Some(path) => select_path(event, path).cloned().unwrap_or(Value::Null),
                None => event.clone(),
            }
        };
        let Some(queue) = &self.queue else {
            return sent;
        };
        let mut attributes = serde_json::json!({"ApproximateReceiveCount": "1"});
        if let Some(group) = self.message_group(event) {
            attributes["MessageGroupId"] = Value::String(group);
        }
        serde_json::json!({"Records": [{
            "messageId": uuid::Uuid::new_v4().to_string(),
            "receiptHandle": "local",
            "body": sent.to_string(),
            "attributes": attributes,
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": queue.arn,
            "awsRegion": region,
        }]})
    }

    /// The message group EventBridge gives `event` in the rule's fair queue
    /// (the target's `SqsParameters.MessageGroupId`, a path into the event).
    fn message_group(&self, event: &Value) -> Option<String> {
        let path = self.queue.as_ref()?.message_group.as_deref()?;
        if !path.starts_with('$') {
            return Some(path.to_string());
        }
        Some(match select_path(event, path)? {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    }

    /// The lane the dispatcher queues `event`'s delivery in: the queue's
    /// message group (so one tenant's backlog waits behind its own events
    /// only), one lane for every direct target.
    pub fn lane(&self, event: &Value) -> String {
        match &self.queue {
            Some(queue) => format!(
                "{}/{}",
                queue.name,
                self.message_group(event).unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}

/// `$`, `$.a.b`: the JSONPath subset `InputPath` is used with.
fn select_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    rest.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(value, |v, key| v.get(key))
}

/// Why a whole `PutEvents` call is refused (EventBridge's `ValidationException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutEventsError {
    #[error(
        "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1"
    )]
    NoEntries,
    #[error(
        "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES_PER_PUT} (got {0})"
    )]
    TooManyEntries(usize),
    #[error(
        "Total size of the entries in the request is over the limit ({0} bytes > {MAX_PUT_BYTES})."
    )]
    TooLarge(usize),
    #[error("the local bus could not store the events: {0}")]
    Storage(String),
}

/// The outcome of one entry: its event id, or why it was refused.
pub type EntryResult = Result<String, EntryError>;

#[derive(Clone)]
pub struct LocalBus {
    db: Db,
    rules: Arc<Vec<Rule>>,
    buses: Arc<Vec<String>>,
    region: String,
    own_account: String,
    allow_aws_sources: bool,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus")
            .field("rules", &self.rules.len())
            .field("buses", &self.buses)
            .finish()
    }
}

pub struct LocalBusConfig {
    pub rules: Vec<Rule>,
    pub buses: Vec<String>,
    pub region: String,
    /// The account of events Purser puts itself (the management account).
    pub own_account: String,
    pub allow_aws_sources: bool,
}

impl LocalBus {
    pub fn new(db: Db, config: LocalBusConfig, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        Self {
            db,
            rules: Arc::new(config.rules),
            buses: Arc::new(config.buses),
            region: config.region,
            own_account: config.own_account,
            allow_aws_sources: config.allow_aws_sources,
            clock,
            wake,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `PutEvents` from `account`: validates the call and each entry as
    /// EventBridge does, archives accepted events and queues a delivery per
    /// matching rule, all in one transaction.
    pub async fn put_events(
        &self,
        entries: Vec<EventEntry>,
        account: &str,
    ) -> Result<Vec<EntryResult>, PutEventsError> {
        if entries.is_empty() {
            return Err(PutEventsError::NoEntries);
        }
        if entries.len() > MAX_ENTRIES_PER_PUT {
            return Err(PutEventsError::TooManyEntries(entries.len()));
        }
        let size: usize = entries.iter().map(EventEntry::size).sum();
        if size > MAX_PUT_BYTES {
            return Err(PutEventsError::TooLarge(size));
        }
        let now = self.clock.now();
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted = Vec::new();
        for entry in &entries {
            let checked = entry.validate(self.allow_aws_sources).and_then(|detail| {
                let bus = entry.bus_name();
                if self.buses.iter().any(|b| b == bus) {
                    Ok((bus.to_string(), detail))
                } else {
                    Err(EntryError::UnknownBus(bus.into()))
                }
            });
            match checked {
                Ok((bus, detail)) => {
                    let event = Event::from_entry(entry, detail, account, &self.region, now);
                    results.push(Ok(event.id.clone()));
                    accepted.push((bus, event));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let rules = Arc::clone(&self.rules);
        let received = epoch_ms(Utc::now());
        let matched = self
            .db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let mut matched = 0;
                for (bus, event) in &accepted {
                    matched += record(&tx, &rules, bus, event, received)?;
                }
                tx.commit()?;
                Ok(matched)
            })
            .await
            .map_err(|e: DbError| PutEventsError::Storage(e.to_string()))?;
        tracing::debug!(
            account,
            entries = entries.len(),
            matched,
            "events put on the local bus"
        );
        if matched > 0 {
            self.wake.notify_one();
        }
        Ok(results)
    }

    /// `PutEvents` by an AWS service of this account (the simulated
    /// organization's CloudTrail events): `aws.*` sources are allowed,
    /// whatever callers from outside may use.
    pub async fn put_service_events(
        &self,
        entries: Vec<EventEntry>,
    ) -> Result<Vec<EntryResult>, PutEventsError> {
        let service = Self {
            allow_aws_sources: true,
            ..self.clone()
        };
        service.put_events(entries, &self.own_account).await
    }

    /// `PutEvents` by an AWS service of member account `account`, as its
    /// forwarding rules deliver them (a simulated stop's state change):
    /// `aws.*` sources are allowed.
    pub async fn put_member_service_events(
        &self,
        entries: Vec<EventEntry>,
        account: &str,
    ) -> Result<Vec<EntryResult>, PutEventsError> {
        let service = Self {
            allow_aws_sources: true,
            ..self.clone()
        };
        service.put_events(entries, account).await
    }

    /// Queues a delivery that no event caused (a schedule firing).
    pub async fn enqueue(
        &self,
        target: &str,
        function: &str,
        payload: &Value,
        retry: RetryPolicy,
    ) -> Result<(), DbError> {
        let (target, function, payload) = (
            target.to_string(),
            function.to_string(),
            payload.to_string(),
        );
        let event_id = uuid::Uuid::new_v4().to_string();
        let now = epoch_ms(Utc::now());
        self.db
            .call(move |conn| {
                let queued = Queued {
                    event_id: &event_id,
                    target: &target,
                    function: &function,
                    payload: &payload,
                    lane: "",
                };
                insert_delivery(conn, &queued, retry, now)
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Archives one event and queues its deliveries; returns how many rules matched.
fn record(
    tx: &Transaction<'_>,
    rules: &[Rule],
    bus: &str,
    event: &Event,
    received_ms: i64,
) -> Result<usize, rusqlite::Error> {
    let envelope = event.to_value();
    tx.execute(
        "INSERT INTO archive (id, bus, source, detail_type, account, time, received_ms, envelope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            event.id,
            bus,
            event.source,
            event.detail_type,
            event.account,
            envelope["time"].as_str().unwrap_or_default(),
            received_ms,
            envelope.to_string()
        ],
    )?;
    crate::lambdas::register_reporter(tx, event)?;
    crate::member_resources::register_resource(tx, event)?;
    queue_deliveries(tx, rules, bus, &event.id, &envelope, received_ms)
}

/// Queues a delivery of `envelope` per rule of `bus` that matches it;
/// returns how many matched.
fn queue_deliveries(
    conn: &rusqlite::Connection,
    rules: &[Rule],
    bus: &str,
    event_id: &str,
    envelope: &Value,
    now_ms: i64,
) -> Result<usize, rusqlite::Error> {
    let mut matched = 0;
    for rule in rules
        .iter()
        .filter(|r| r.bus == bus && r.pattern.matches(envelope))
    {
        // The queue is the bus's region's, where every local event is put.
        let region = envelope["region"].as_str().unwrap_or_default();
        let payload = rule.payload(envelope, region).to_string();
        insert_delivery(
            conn,
            &Queued {
                event_id,
                target: &rule.name,
                function: &rule.function,
                payload: &payload,
                lane: &rule.lane(envelope),
            },
            rule.retry,
            now_ms,
        )?;
        matched += 1;
    }
    Ok(matched)
}

/// A delivery to queue: what goes to which function, in which lane.
struct Queued<'a> {
    event_id: &'a str,
    target: &'a str,
    function: &'a str,
    payload: &'a str,
    lane: &'a str,
}

fn insert_delivery(
    conn: &rusqlite::Connection,
    queued: &Queued<'_>,
    retry: RetryPolicy,
    now_ms: i64,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO deliveries (event_id, target, function, payload, lane, max_retries, max_age_ms, first_ms, due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            queued.event_id,
            queued.target,
            queued.function,
            queued.payload,
            queued.lane,
            retry.maximum_retry_attempts,
            retry.maximum_event_age.as_millis() as i64,
            now_ms
        ],
    )?;
    Ok(())
}

/// Purser's own handlers put events through this port; they come from the
/// management account, like Purser's functions on AWS.
#[async_trait]
impl EventBus for LocalBus {
    async fn put(&self, entries: Vec<EventEntry>) -> Result<(), BusError> {
        let total = entries.len();
        let mut rejected = Vec::new();
        // Honour the same limits as EventBridge, so code that passes here
        // does not fail there.
        let mut batch: Vec<EventEntry> = Vec::new();
        let mut batch_size = 0;
        let mut batches = Vec::new();
        for mut entry in entries {
            // Purser's own events go to the purser bus unless they say otherwise.
            if entry.event_bus_name.as_deref().is_none_or(str::is_empty) {
                entry.event_bus_name = Some(purser_core::events::PURSER_BUS.into());
            }
            let size = entry.size();
            if size > MAX_PUT_BYTES {
                // No call can take it, and the one it were in would fail
                // whole: refuse it alone, as `EventBridgeBus` does.
                rejected.push(RejectedEntry {
                    entry,
                    code: "ValidationException".into(),
                    message: format!(
                        "the entry is {size} bytes; PutEvents takes at most {MAX_PUT_BYTES} bytes a call"
                    ),
                });
                continue;
            }
            if !batch.is_empty()
                && (batch.len() == MAX_ENTRIES_PER_PUT || batch_size + size > MAX_PUT_BYTES)
            {
                batches.push(std::mem::take(&mut batch));
                batch_size = 0;
            }
            batch_size += size;
            batch.push(entry);
        }
        batches.push(batch);
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            let results = self
                .put_events(batch.clone(), &self.own_account)
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            for (entry, result) in batch.into_iter().zip(results) {
                if let Err(e) = result {
                    rejected.push(RejectedEntry {
                        entry,
                        code: e.code().into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(BusError::Rejected { total, rejected })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_path_selects_part_of_the_event() {
        let event = json!({"detail": {"a": {"b": 1}}});
        assert_eq!(select_path(&event, "$.detail.a"), Some(&json!({"b": 1})));
        assert_eq!(select_path(&event, "$"), Some(&event));
        assert_eq!(select_path(&event, "$.nope"), None);
    }

    /// The EventBus port's contract (`purser_contract::event_bus`), on a
    /// bus of a fresh database, read back from its archive (which takes
    /// every accepted event, in the transaction that accepts it).
    mod contract {
        use std::sync::Arc;

        use purser_contract::event_bus::{Fixture, Observer, SOURCE};
        use purser_core::events::PURSER_BUS;
        use purser_core::{Event, SystemClock};
        use tokio::sync::Notify;

        use super::{LocalBus, LocalBusConfig};
        use crate::db::Db;
        use crate::inspect::{ArchiveFilter, archive};

        const ACCOUNT: &str = "111111111111";

        struct Archive(Db);

        impl Observer for Archive {
            async fn events(&self, _expected: usize) -> Vec<Event> {
                let filter = ArchiveFilter {
                    source: Some(SOURCE.into()),
                    limit: 10_000,
                    ..ArchiveFilter::default()
                };
                archive(&self.0, &filter)
                    .expect("the archive reads")
                    .into_iter()
                    .map(|archived| {
                        assert_eq!(archived.bus, PURSER_BUS, "on the purser bus");
                        serde_json::from_value(archived.envelope).expect("an event")
                    })
                    .collect()
            }
        }

        async fn fresh() -> Option<Fixture<Archive>> {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path()).unwrap();
            let bus = LocalBus::new(
                db.clone(),
                LocalBusConfig {
                    rules: vec![],
                    buses: vec![PURSER_BUS.into(), "default".into()],
                    region: "us-east-1".into(),
                    own_account: ACCOUNT.into(),
                    allow_aws_sources: false,
                },
                Arc::new(SystemClock),
                Arc::new(Notify::new()),
            );
            Some(
                Fixture::new(Arc::new(bus), Archive(db), PURSER_BUS, "us-east-1", ACCOUNT)
                    .keeping(dir),
            )
        }

        purser_contract::event_bus_contract!(fresh);
    }
}

/// Which archived events a replay sends again, as EventBridge's
/// `StartReplay` takes them: received in `[since, until)`, optionally of
/// one detail-type.
#[derive(Debug, Clone)]
pub struct ReplayFilter {
    pub name: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub detail_type: Option<String>,
}

/// What a replay queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub events: usize,
    pub deliveries: usize,
}

/// Replays the archive as EventBridge replays one: each event in the
/// window goes again, in the order it arrived, to the rules of its bus
/// that match it now, with `replay-name` set in its envelope and its id
/// unchanged (so handlers recognise what they already did); replayed
/// events are not archived again. A running `purser up` delivers them
/// within a second.
pub fn replay(db: &Db, rules: &[Rule], filter: &ReplayFilter) -> Result<Replayed, DbError> {
    let rules = rules.to_vec();
    let f = filter.clone();
    let now = epoch_ms(Utc::now());
    db.call_blocking(move |conn| {
        let tx = conn.transaction()?;
        let rows: Vec<(String, String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT id, bus, envelope FROM archive
                 WHERE received_ms >= ?1 AND received_ms < ?2
                   AND (?3 IS NULL OR detail_type = ?3)
                 ORDER BY seq",
            )?;
            stmt.query_map(
                params![epoch_ms(f.since), epoch_ms(f.until), f.detail_type],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<Result<_, _>>()?
        };
        let mut replayed = Replayed {
            events: 0,
            deliveries: 0,
        };
        for (id, bus, text) in rows {
            let Ok(mut envelope) = serde_json::from_str::<Value>(&text) else {
                tracing::warn!(event_id = %id, "an unreadable archived event is not replayed");
                continue;
            };
            envelope["replay-name"] = Value::String(f.name.clone());
            replayed.events += 1;
            replayed.deliveries += queue_deliveries(&tx, &rules, &bus, &id, &envelope, now)?;
        }
        tx.commit()?;
        Ok(replayed)
    })
}
