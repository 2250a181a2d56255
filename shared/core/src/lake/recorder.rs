//! What the recorder does with deployments and invocations: normalise them
//! into lake records, send them to the lake, add invocation costs to the
//! streaming spend counters (once per batch, however often it arrives) and
//! tell budgets about it with `TeamSpendUpdated`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::accounts::TeamName;
use crate::events::{Event, EventEntry};
use crate::lake::{
    self, DeploymentReported, InvocationsReported, LakeTable, RecordError, ReportRefusal,
    StackStatusChange, TeamSpendUpdated,
};
use crate::ports::Clock;
use crate::ports::{
    AccountStore, BusError, EventBus, LakeError, LakeSink, Marker, Markers, SpendAdd,
    SpendCounters, StoreError,
};
use crate::spend::{PriceTable, from_nanos, to_nanos};

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("the event cannot be recorded: {0}")]
    Invalid(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Records written to the lake (and, for invocations, counted).
    Written {
        records: usize,
        dead_lettered: usize,
        /// Reports refused as impossible (see `InvocationsReported::screen`).
        refused: usize,
    },
    /// This batch was recorded before: nothing was written or counted again.
    Duplicate,
}

/// How long a batch id is remembered: longer than any redelivery, and
/// longer than a month so a late batch cannot be counted twice.
const BATCH_MEMORY: Duration = Duration::days(40);
/// How long a stack operation's start is kept for pairing with its end.
const STACK_MEMORY: Duration = Duration::days(3);

/// The recorder function: deployments and invocations into the lake, and
/// invocation costs onto the spend counters.
pub struct Recorder {
    accounts: Arc<dyn AccountStore>,
    counters: Arc<dyn SpendCounters>,
    markers: Arc<dyn Markers>,
    lake: Arc<dyn LakeSink>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    prices: PriceTable,
}

impl Recorder {
    /// A recorder that prices invocations with the built-in price table.
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        counters: Arc<dyn SpendCounters>,
        markers: Arc<dyn Markers>,
        lake: Arc<dyn LakeSink>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            accounts,
            counters,
            markers,
            lake,
            bus,
            clock,
            prices: PriceTable::builtin(),
        }
    }

    /// The account's team in Purser's registry; `None` for accounts Purser
    /// does not know (their records are kept, with no team).
    async fn team_of(&self, account_id: &str) -> Result<Option<TeamName>, StoreError> {
        Ok(self
            .accounts
            .account_by_account_id(account_id)
            .await?
            .map(|a| a.team))
    }

    /// `InvocationsReported` from a member account.
    pub async fn invocations(&self, event: &Event) -> Result<Recorded, RecorderError> {
        let (batch, architecture) = InvocationsReported::parse(&event.detail)?;
        let key = Marker::SpendBatch {
            account_id: event.account.clone(),
            batch_id: batch.batch_id.clone(),
        };
        let team = self.team_of(&event.account).await?;
        let team_name = team.as_ref().map(TeamName::as_str).unwrap_or("");
        let screened = batch.screen(self.clock.now());
        // The latest day the batch counts on: its month is announced.
        let latest = screened
            .valid
            .iter()
            .map(|r| r.timestamp.date_naive())
            .max();
        if self.markers.is_claimed(&key, self.clock.now()).await? {
            tracing::info!(account_id = %event.account, batch_id = %batch.batch_id, "batch already recorded");
            return self.duplicate(team.as_ref(), latest).await;
        }
        let refused = screened.refused.len();
        // Per reason: how many, and the first request id to look for.
        let mut reasons: BTreeMap<ReportRefusal, (usize, &str)> = BTreeMap::new();
        for r in &screened.refused {
            reasons.entry(r.reason).or_insert((0, &r.request_id)).0 += 1;
        }
        for (reason, (count, first_request_id)) in reasons {
            tracing::warn!(account_id = %event.account, team = team_name, batch_id = %batch.batch_id,
                reason = reason.as_str(), count, first_request_id,
                "invocation reports refused: Lambda cannot have produced them");
        }
        let region = event.region.as_str();
        let priced = lake::invocation_records(
            &batch,
            &screened.valid,
            architecture,
            &event.account,
            region,
            team.as_ref().map(TeamName::as_str),
            |day| self.prices.lambda(region, day).ok().cloned(),
        )?;
        let records: Vec<Value> = priced
            .iter()
            .filter_map(|p| serde_json::to_value(&p.record).ok())
            .collect();
        let sent = if records.is_empty() {
            crate::ports::Appended::default()
        } else {
            self.lake.append(LakeTable::Invocations, records).await?
        };

        // Bounded reports cost at most cents each; checked all the same, so
        // no input can overflow a sum.
        let mut by_day: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        for p in &priced {
            let sum = by_day.entry(p.day).or_default();
            *sum = sum.checked_add(p.cost).ok_or_else(|| RecordError {
                field: "reports".into(),
                message: "the batch's cost overflows".into(),
            })?;
        }
        let adds: Vec<SpendAdd> = by_day
            .iter()
            .map(|(day, cost)| SpendAdd {
                team: team.clone(),
                account_id: event.account.clone(),
                day: *day,
                nanos: to_nanos(*cost),
            })
            .collect();
        let now = self.clock.now();
        if !self
            .counters
            .record_spend_once(&key, now, now + BATCH_MEMORY, &adds)
            .await?
        {
            // Another delivery of the same batch won the race; the lake may
            // hold it twice, which the queries handle.
            return self.duplicate(team.as_ref(), latest).await;
        }
        match &team {
            Some(team) => {
                let latest = latest.unwrap_or(now.date_naive());
                self.spend_updated(team, latest, now).await?;
            }
            None => tracing::warn!(
                account_id = %event.account,
                batch_id = %batch.batch_id,
                "invocations from an account Purser does not know: recorded without a team"
            ),
        }
        tracing::info!(account_id = %event.account, team = team_name, batch_id = %batch.batch_id, records = priced.len(), "invocations recorded");
        Ok(Recorded::Written {
            records: sent.written,
            dead_lettered: sent.dead_lettered,
            refused,
        })
    }

    /// A batch recorded before counts nothing again, but is announced again:
    /// if the delivery that counted it failed before its `TeamSpendUpdated`
    /// went out, this retry is the team's only news of the spend (and of a
    /// freeze it demands). Budgets evaluate idempotently.
    async fn duplicate(
        &self,
        team: Option<&TeamName>,
        latest: Option<NaiveDate>,
    ) -> Result<Recorded, RecorderError> {
        if let Some(team) = team {
            let now = self.clock.now();
            self.spend_updated(team, latest.unwrap_or(now.date_naive()), now)
                .await?;
        }
        Ok(Recorded::Duplicate)
    }

    /// Emits the team's month-to-date spend for the month of `day`.
    async fn spend_updated(
        &self,
        team: &TeamName,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), RecorderError> {
        let first = day.with_day(1).unwrap_or(day);
        let last = last_day_of_month(day);
        // The counters alone, as `source: stream` says: weighing the spend
        // function's settlement is the budgets' work, not every batch's.
        let days = self.counters.team_spend(team, first, last).await?;
        let total = days.iter().fold(0i64, |sum, (_, n)| sum.saturating_add(*n));
        let detail = TeamSpendUpdated {
            version: 1,
            team: team.to_string(),
            period: day.format("%Y-%m").to_string(),
            spend: from_nanos(total).normalize().to_string(),
            currency: "USD".into(),
            source: "stream".into(),
            as_of: lake::timestamp(now),
        };
        let detail = serde_json::to_value(&detail).unwrap_or_default();
        self.bus
            .put(vec![EventEntry::purser(lake::TEAM_SPEND_UPDATED, &detail)])
            .await?;
        Ok(())
    }

    /// `DeploymentReported` from CI, by event or `POST /deployments`; the
    /// account is the envelope's (or the API caller's), never the detail's.
    pub async fn ci_deployment(
        &self,
        account_id: &str,
        region: &str,
        detail: &Value,
        at: DateTime<Utc>,
    ) -> Result<Recorded, RecorderError> {
        let deployment = DeploymentReported::parse(detail)?;
        let team = self.team_of(account_id).await?;
        let record = deployment.record(account_id, region, team.as_ref().map(TeamName::as_str), at);
        self.write_deployment(record).await
    }

    /// `CloudFormation Stack Status Change` forwarded from a member account:
    /// an operation's end is paired with its start to give its duration.
    pub async fn cloudformation(&self, event: &Event) -> Result<Recorded, RecorderError> {
        let change = StackStatusChange::parse(&event.detail)?;
        let key = Marker::StackOperation {
            account_id: event.account.clone(),
            stack_id: change.stack_id.clone(),
        };
        let mut started_at = None;
        if change.starts() {
            // Only the first IN_PROGRESS of an operation marks its start.
            self.markers
                .remember(
                    &key,
                    &lake::timestamp(event.time),
                    self.clock.now(),
                    self.clock.now() + STACK_MEMORY,
                )
                .await?;
        } else if change.ends() {
            started_at = self
                .markers
                .recall(&key, self.clock.now())
                .await?
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.to_utc());
            self.markers.forget(&key).await?;
        }
        let team = self.team_of(&event.account).await?;
        let record = change.record(
            &event.account,
            &event.region,
            team.as_ref().map(TeamName::as_str),
            event.time,
            started_at,
        );
        self.write_deployment(record).await
    }

    async fn write_deployment(
        &self,
        record: lake::DeploymentRecord,
    ) -> Result<Recorded, RecorderError> {
        tracing::info!(account_id = %record.account_id, team = record.team.as_deref().unwrap_or(""), stack = %record.stack, status = %record.status, "deployment recorded");
        let value = serde_json::to_value(&record).expect("a record serializes");
        let sent = self
            .lake
            .append(LakeTable::Deployments, vec![value])
            .await?;
        Ok(Recorded::Written {
            records: sent.written,
            dead_lettered: sent.dead_lettered,
            refused: 0,
        })
    }
}

pub fn last_day_of_month(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(day)
}
