//! Usage beyond Lambda, as it happens: the objects member accounts' metric
//! streams land in the lake bucket (Bedrock tokens, NAT bytes, API
//! requests, DynamoDB request units, Step Functions transitions), priced
//! with the usage price table, written to the lake's `usage` table and
//! added to the spend counters once per object, so budgets see them within
//! the stream's delivery.
//!
//! The account is the one the object's key names, which the bucket policy
//! lets only that account write; a line that names another account is
//! refused, never counted. Usage with no price is recorded with its
//! quantity, counted as nothing, and announced as `UnpricedUsage`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BATCH_MEMORY, Recorded, Recorder, RecorderError};
use crate::accounts::TeamName;
use crate::budgets::runaway;
use crate::events::EventEntry;
use crate::lake::{self, LakeTable, RecordError};
use crate::ports::{Landing, LandingError, MAX_BATCH_COUNTERS, Marker, SpendAdd, landed_account};
use crate::spend::{Usage, UsagePrices, parse_metric_stream, to_nanos};

/// Purser's event for usage it could not price.
pub const UNPRICED_USAGE: &str = "UnpricedUsage";

/// How many refused lines of one object are logged one by one.
const LOGGED_REFUSALS: usize = 5;

/// One row of the lake's `usage` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub schema_version: u32,
    /// What tells this usage from every other (the batch and its place in
    /// it): a row written twice by a retried delivery is counted once.
    pub usage_id: String,
    pub account_id: String,
    pub team: Option<String>,
    pub region: String,
    pub service: String,
    pub resource: String,
    pub usage_type: String,
    pub unit: String,
    pub quantity: f64,
    /// `None`: no price in force; the usage is not counted as 0 but as
    /// unpriced (`UnpricedUsage`).
    pub cost_usd: Option<f64>,
    /// When the usage began (RFC 3339 UTC): the table's partition day.
    pub timestamp: String,
    pub end_timestamp: String,
    pub source: String,
}

impl UsageRecord {
    fn of(usage: &Usage, usage_id: String) -> Self {
        Self {
            schema_version: lake::LAKE_SCHEMA_VERSION,
            usage_id,
            account_id: usage.account_id.clone(),
            team: usage.team.clone(),
            region: usage.region.clone(),
            service: usage.service.to_string(),
            resource: usage.resource.clone(),
            usage_type: usage.usage_type.clone(),
            unit: usage.unit.to_string(),
            quantity: usage.quantity.to_f64().unwrap_or(0.0),
            cost_usd: usage.cost.and_then(|c| c.to_f64()),
            timestamp: lake::timestamp(usage.start),
            end_timestamp: lake::timestamp(usage.end),
            source: serde_json::to_value(usage.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }
}

/// `UnpricedUsage`'s detail: what a batch used that no price covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnpricedUsage {
    pub version: u32,
    pub account_id: String,
    pub team: Option<String>,
    pub batch_id: String,
    /// Per service, region, usage type and unit: the quantity used.
    pub usage: Vec<UnpricedQuantity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnpricedQuantity {
    pub service: String,
    pub region: String,
    pub usage_type: String,
    pub unit: String,
    pub quantity: String,
}

/// FNV-1a of `text`, as hex: a short stable id.
pub(super) fn fnv(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl Recorder {
    /// Reads landed metric-stream objects with `landing`.
    pub fn with_landing(mut self, landing: Arc<dyn Landing>) -> Self {
        self.landing = Some(landing);
        self
    }

    /// Prices usage with `prices` instead of the built-in table.
    pub fn with_usage_prices(mut self, prices: UsagePrices) -> Self {
        self.usage_prices = prices;
        self
    }

    /// A metric-stream object landed under `key` (S3's `Object Created`).
    pub async fn landed(&self, key: &str) -> Result<Recorded, RecorderError> {
        let Some(account) = landed_account(key) else {
            return Err(RecordError {
                field: "detail.object.key".into(),
                message: format!(
                    "{key:?} is not under metrics/account=<12-digit account id>/, where member accounts' metric streams land"
                ),
            }
            .into());
        };
        let Some(landing) = &self.landing else {
            return Err(RecordError {
                field: "detail.object.key".into(),
                message: "this recorder reads no landed objects".into(),
            }
            .into());
        };
        let text = match landing.read(key).await {
            Ok(text) => text,
            Err(LandingError::NotFound(why)) => {
                tracing::warn!(account_id = account, key, why, "a landed object is gone");
                return Ok(Recorded::Duplicate);
            }
            Err(LandingError::Refused(why)) => {
                return Err(RecordError {
                    field: "detail.object".into(),
                    message: why,
                }
                .into());
            }
            Err(e @ LandingError::Unavailable(_)) => {
                return Err(RecorderError::Landing(e));
            }
        };
        let mut usages = Vec::new();
        let mut refused = 0usize;
        for parsed in parse_metric_stream(&text) {
            match parsed {
                Ok(usage) => usages.push(usage),
                Err(e) => {
                    refused += 1;
                    if refused <= LOGGED_REFUSALS {
                        tracing::warn!(account_id = account, key, error = %e, "a metric-stream line refused");
                    }
                }
            }
        }
        let batch_id = format!("metrics-{}", fnv(key));
        let recorded = self.usage(account, &batch_id, usages).await?;
        Ok(match recorded {
            Recorded::Written {
                records,
                dead_lettered,
                refused: more,
            } => Recorded::Written {
                records,
                dead_lettered,
                refused: refused + more,
            },
            other => other,
        })
    }

    /// Usage measured in `account_id` (the source's envelope or key, never
    /// the usage's own say), as one batch: priced, written to the lake,
    /// counted once however often the batch arrives, and announced.
    pub async fn usage(
        &self,
        account_id: &str,
        batch_id: &str,
        usages: Vec<Usage>,
    ) -> Result<Recorded, RecorderError> {
        let (own, foreign): (Vec<Usage>, Vec<Usage>) =
            usages.into_iter().partition(|u| u.account_id == account_id);
        if let Some(first) = foreign.first() {
            tracing::warn!(account_id, batch_id, count = foreign.len(), claimed = %first.account_id,
                "usage that names another account than the one that sent it: refused");
        }
        let key = Marker::SpendBatch {
            account_id: account_id.to_string(),
            batch_id: batch_id.to_string(),
        };
        let now = self.clock.now();
        let team = self.team_of(account_id).await?;
        let latest = own.iter().map(|u| u.start.date_naive()).max();
        if self.markers.is_claimed(&key, now).await? {
            tracing::info!(account_id, batch_id, "usage batch already recorded");
            return self.duplicate(team.as_ref(), latest).await;
        }
        let priced: Vec<Usage> = own
            .into_iter()
            .map(|u| {
                let mut u = u.priced(&self.usage_prices);
                u.team = team.as_ref().map(TeamName::to_string);
                u
            })
            .collect();
        let records: Vec<Value> = priced
            .iter()
            .enumerate()
            .filter_map(|(i, u)| {
                serde_json::to_value(UsageRecord::of(u, format!("{batch_id}-{i}"))).ok()
            })
            .collect();
        let sent = if records.is_empty() {
            crate::ports::Appended::default()
        } else {
            self.lake.append(LakeTable::Usage, records).await?
        };

        let mut by_day: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        let mut unpriced: BTreeMap<(String, String, String, String), Decimal> = BTreeMap::new();
        for u in &priced {
            match u.cost {
                Some(cost) => {
                    let sum = by_day.entry(u.start.date_naive()).or_default();
                    *sum = sum.checked_add(cost).ok_or_else(|| RecordError {
                        field: "usage".into(),
                        message: "the batch's cost overflows".into(),
                    })?;
                }
                None => {
                    let sum = unpriced
                        .entry((
                            u.service.to_string(),
                            u.region.clone(),
                            u.usage_type.clone(),
                            u.unit.to_string(),
                        ))
                        .or_default();
                    *sum = sum.saturating_add(u.quantity);
                }
            }
        }
        let adds: Vec<SpendAdd> = by_day
            .iter()
            .map(|(day, cost)| SpendAdd {
                team: team.clone(),
                account_id: account_id.to_string(),
                day: *day,
                nanos: to_nanos(*cost),
            })
            .collect();
        // The runaway guard's hourly counters, per resource.
        let rates = runaway::rate_adds(
            account_id,
            now,
            priced.iter().flat_map(|u| {
                let key = runaway::resource_key(u.service.as_str(), &u.region, &u.resource);
                let parts = match u.cost {
                    Some(cost) => runaway::by_hour(u.start, u.end, to_nanos(cost)),
                    None => Vec::new(),
                };
                parts.into_iter().map(move |(at, n)| (key.clone(), at, n))
            }),
            MAX_BATCH_COUNTERS.saturating_sub(2 * adds.len()),
        );
        if !self
            .counters
            .record_spend_once(&key, now, now + BATCH_MEMORY, &adds, &rates)
            .await?
        {
            return self.duplicate(team.as_ref(), latest).await;
        }
        if !unpriced.is_empty() {
            let detail = UnpricedUsage {
                version: 1,
                account_id: account_id.to_string(),
                team: team.as_ref().map(TeamName::to_string),
                batch_id: batch_id.to_string(),
                usage: unpriced
                    .into_iter()
                    .map(
                        |((service, region, usage_type, unit), quantity)| UnpricedQuantity {
                            service,
                            region,
                            usage_type,
                            unit,
                            quantity: quantity.normalize().to_string(),
                        },
                    )
                    .collect(),
            };
            tracing::warn!(
                account_id,
                batch_id,
                kinds = detail.usage.len(),
                "usage with no price: recorded with its quantity, not counted"
            );
            let detail = serde_json::to_value(&detail).unwrap_or_default();
            self.bus
                .put(vec![EventEntry::purser(UNPRICED_USAGE, &detail)])
                .await?;
        }
        if let Some(team) = &team {
            let day = latest.unwrap_or(now.date_naive());
            self.spend_updated(team, day, now).await?;
        }
        tracing::info!(
            account_id,
            team = team.as_ref().map(TeamName::as_str).unwrap_or(""),
            batch_id,
            records = priced.len(),
            refused = foreign.len(),
            "usage recorded"
        );
        Ok(Recorded::Written {
            records: sent.written,
            dead_lettered: sent.dead_lettered,
            refused: foreign.len(),
        })
    }
}
