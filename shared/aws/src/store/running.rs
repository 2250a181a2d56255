//! What runs in member accounts: one item a resource in the partition
//! `RUNNING`, sorted by `<account>#<region>#<service>#<resource>`, so the
//! accrual lists them with one `Query` (`DynamoStore::partition`). A start
//! is a conditional `PutItem`, an advance a conditional `UpdateItem` on
//! `priced_until`, a stop a read and an `UpdateItem` on the condition that
//! nothing changed in between (or a tombstone put where nothing was).
//! Times are epoch milliseconds; a stopped item carries `expires_at` for
//! TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use purser_core::StoreError;
use purser_core::ports::{Run, RunKey, RunWhat, RunningResources, TOMBSTONE_KEPT, to_millis};
use purser_core::spend::Service;

use super::DynamoStore;
use super::items::{self, EXPIRES_AT, Item, PK, SK, n, s, unavailable};

/// The partition of every running resource.
const RUNNING_PK: &str = "RUNNING";
const ACCOUNT_ID: &str = "account_id";
const REGION: &str = "region";
const SERVICE: &str = "service";
const RESOURCE: &str = "resource";
/// The run's kind as JSON; absent on a tombstone.
const WHAT: &str = "what";
const STARTED_AT: &str = "started_at";
const PRICED_UNTIL: &str = "priced_until";
const STOPPED_AT: &str = "stopped_at";

/// How often a stop reads and writes again when another write came between.
const STOP_ATTEMPTS: usize = 5;

fn key_item(key: &RunKey) -> Item {
    Item::from([
        (PK.to_owned(), s(RUNNING_PK)),
        (SK.to_owned(), s(key.joined())),
    ])
}

fn ms(t: DateTime<Utc>) -> AttributeValue {
    n(to_millis(t).timestamp_millis())
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    let value = items::number(item, name)?;
    DateTime::from_timestamp_millis(value).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "{name} of item {} is out of range",
            items::describe_key(item)
        ))
    })
}

fn full_item(
    key: &RunKey,
    what: Option<&RunWhat>,
    started: DateTime<Utc>,
    priced: DateTime<Utc>,
) -> Result<Item, StoreError> {
    let mut item = key_item(key);
    item.insert(ACCOUNT_ID.into(), s(&key.account_id));
    item.insert(REGION.into(), s(&key.region));
    item.insert(SERVICE.into(), s(key.service.as_str()));
    item.insert(RESOURCE.into(), s(&key.resource));
    if let Some(what) = what {
        let json = serde_json::to_string(what)
            .map_err(|e| StoreError::Corrupt(format!("a run's kind: {e}")))?;
        item.insert(WHAT.into(), s(json));
    }
    item.insert(STARTED_AT.into(), ms(started));
    item.insert(PRICED_UNTIL.into(), ms(priced));
    Ok(item)
}

/// The run of an item; `None` for a tombstone.
fn decode(item: &Item) -> Result<Option<Run>, StoreError> {
    let Some(AttributeValue::S(what)) = item.get(WHAT) else {
        return Ok(None);
    };
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("{}: {e}", items::describe_key(item)));
    let service: Service = serde_json::from_value(serde_json::Value::String(
        items::string(item, SERVICE)?.to_owned(),
    ))
    .map_err(corrupt)?;
    Ok(Some(Run {
        key: RunKey {
            account_id: items::string(item, ACCOUNT_ID)?.to_owned(),
            region: items::string(item, REGION)?.to_owned(),
            service,
            resource: items::string(item, RESOURCE)?.to_owned(),
        },
        what: serde_json::from_str(what).map_err(corrupt)?,
        started_at: time(item, STARTED_AT)?,
        priced_until: time(item, PRICED_UNTIL)?,
        stopped_at: match item.get(STOPPED_AT) {
            Some(_) => Some(time(item, STOPPED_AT)?),
            None => None,
        },
    }))
}

fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[async_trait]
impl RunningResources for DynamoStore {
    async fn start_run(&self, run: &Run) -> Result<bool, StoreError> {
        let item = full_item(&run.key, Some(&run.what), run.started_at, run.priced_until)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR (attribute_exists(#stopped) AND #stopped < :started)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#stopped", STOPPED_AT)
            .expression_attribute_values(":started", ms(run.started_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("PutItem (running resource)", &self.table, &e)),
        }
    }

    async fn advance_run(
        &self,
        key: &RunKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .update_expression("SET #priced = :to")
            .condition_expression("#priced = :from AND attribute_exists(#what)")
            .expression_attribute_names("#priced", PRICED_UNTIL)
            .expression_attribute_names("#what", WHAT)
            .expression_attribute_values(":from", ms(from))
            .expression_attribute_values(":to", ms(to))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(
                "UpdateItem (running resource)",
                &self.table,
                &e,
            )),
        }
    }

    async fn stop_run(&self, key: &RunKey, at: DateTime<Utc>) -> Result<Option<Run>, StoreError> {
        let at = to_millis(at);
        for _ in 0..STOP_ATTEMPTS {
            let Some(item) = self.get(key_item(key), "running resource").await? else {
                // A tombstone, unless something was put meanwhile.
                let mut item = full_item(key, None, at, at)?;
                item.insert(STOPPED_AT.into(), ms(at));
                item.insert(EXPIRES_AT.into(), n((at + TOMBSTONE_KEPT).timestamp()));
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .send()
                    .await;
                match result {
                    Ok(_) => return Ok(None),
                    Err(e) if is_condition_failed(&e) => continue,
                    Err(e) => {
                        return Err(unavailable("PutItem (running resource)", &self.table, &e));
                    }
                }
            };
            if item.contains_key(STOPPED_AT) {
                return decode(&item);
            }
            let started = time(&item, STARTED_AT)?;
            if started > at {
                // The stop of an earlier run than this one.
                return Ok(None);
            }
            let priced = time(&item, PRICED_UNTIL)?;
            let stopped = at.max(priced);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(key)))
                .update_expression("SET #stopped = :stopped, #expires = :expires")
                .condition_expression(
                    "attribute_not_exists(#stopped) AND #priced = :priced AND #started = :started",
                )
                .expression_attribute_names("#stopped", STOPPED_AT)
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_names("#priced", PRICED_UNTIL)
                .expression_attribute_names("#started", STARTED_AT)
                .expression_attribute_values(":stopped", ms(stopped))
                .expression_attribute_values(":expires", n((stopped + TOMBSTONE_KEPT).timestamp()))
                .expression_attribute_values(":priced", ms(priced))
                .expression_attribute_values(":started", ms(started))
                .send()
                .await;
            match result {
                Ok(_) => {
                    let mut item = item;
                    item.insert(STOPPED_AT.into(), ms(stopped));
                    return decode(&item);
                }
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => {
                    return Err(unavailable(
                        "UpdateItem (running resource)",
                        &self.table,
                        &e,
                    ));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "the run of {} changed under {STOP_ATTEMPTS} stops in a row",
            key.joined()
        )))
    }

    async fn running(&self, _now: DateTime<Utc>) -> Result<Vec<Run>, StoreError> {
        let mut runs = Vec::new();
        for item in self.partition(RUNNING_PK, "running resources").await? {
            let Some(run) = decode(&item)? else {
                continue;
            };
            if run.stopped_at.is_none_or(|s| run.priced_until < s) {
                runs.push(run);
            }
        }
        runs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(runs)
    }
}
