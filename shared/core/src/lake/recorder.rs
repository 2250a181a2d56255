//! What the recorder does with deployments and invocations: normalise them
//! into lake records, send them to the lake, add invocation costs to the
//! streaming spend counters (once per batch, however often it arrives) and
//! tell budgets about it with `TeamSpendUpdated`. The deployments of teams'
//! accounts are marked in the store's `DeploymentLog` too, and invocation
//! costs counted per function, for the console, which reads the store and
//! never the lake.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::accounts::TeamName;
use crate::budgets::runaway;
use crate::events::{Event, EventEntry};
use crate::lake::{
    self, DeploymentReported, InvocationsReported, LakeTable, RecordError, ReportRefusal,
    StackStatusChange, TeamSpendUpdated,
};
use crate::ports::Clock;
use crate::ports::{
    AccountStore, BusError, DeploymentLog, DeploymentMark, DeploymentSource, EventBus, LakeError,
    LakeSink, MAX_BATCH_COUNTERS, MAX_FUNCTION_NAME, Marker, Markers, SpendAdd, SpendCounters,
    StoreError,
};
use crate::spend::{PriceTable, UsagePrices, from_nanos, to_nanos};

mod leases;
mod resources;
mod usage;
pub use leases::{LEASE_ENDED, LEASE_ENDS, LEASE_STARTED, LEASE_STARTS, LeaseRecord};
pub use resources::*;
pub use usage::{UNPRICED_USAGE, UnpricedQuantity, UnpricedUsage, UsageRecord};

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
    #[error(transparent)]
    Landing(crate::ports::LandingError),
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

/// What the function counters count a batch under when its function name
/// is none Lambda could have reported. Lambda's names have no parentheses,
/// so no function is called this.
pub const UNRECOGNISED_FUNCTION: &str = "(unrecognised)";

/// The function a batch's spend is counted under: its name as reported, if
/// Lambda could have reported it (1 to `MAX_FUNCTION_NAME` characters of a
/// function's name or ARN: letters, digits, `-`, `_`, `:` and the `$` of
/// `$LATEST`), else [`UNRECOGNISED_FUNCTION`]. A member account is not
/// trusted, as with its reports: an odd name must neither reach a key nor
/// stop the batch, whose spend is real and still counts for the team.
pub fn counted_function(reported: &str) -> &str {
    let recognised = (1..=MAX_FUNCTION_NAME).contains(&reported.len())
        && reported
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'$'));
    if recognised {
        reported
    } else {
        UNRECOGNISED_FUNCTION
    }
}

/// What tells a deployment from another of its team at the same time: an
/// FNV-1a of what the event said, never of what the recorder found beside
/// it (a stack operation's start, forgotten once its end is recorded), so
/// that every delivery of one event gives the same id and so the same mark.
fn deployment_id(record: &lake::DeploymentRecord) -> String {
    let fields = [
        Some(&record.source),
        Some(&record.account_id),
        Some(&record.region),
        Some(&record.stack),
        Some(&record.status),
        record.status_reason.as_ref(),
        record.commit.as_ref(),
        record.git_ref.as_ref(),
        record.pipeline.as_ref(),
        Some(&record.timestamp),
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in fields {
        // A missing field and an empty one differ.
        let (present, text) = match field {
            Some(text) => (1, text.as_str()),
            None => (0, ""),
        };
        for byte in [present].into_iter().chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The recorder function: deployments and invocations into the lake, and
/// invocation costs onto the spend counters.
pub struct Recorder {
    accounts: Arc<dyn AccountStore>,
    counters: Arc<dyn SpendCounters>,
    markers: Arc<dyn Markers>,
    deployments: Arc<dyn DeploymentLog>,
    lake: Arc<dyn LakeSink>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    prices: PriceTable,
    usage_prices: UsagePrices,
    /// Where member accounts' metric streams land (`with_landing`).
    landing: Option<Arc<dyn crate::ports::Landing>>,
    /// What runs in member accounts (`with_running`).
    running: Option<Arc<dyn crate::ports::RunningResources>>,
    /// Describes the member accounts' instances whose launch no call event
    /// told (`with_member_resources`).
    member_resources: Option<Arc<dyn crate::ports::MemberResources>>,
}

impl Recorder {
    /// A recorder that prices invocations with the built-in price table.
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        counters: Arc<dyn SpendCounters>,
        markers: Arc<dyn Markers>,
        deployments: Arc<dyn DeploymentLog>,
        lake: Arc<dyn LakeSink>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            accounts,
            counters,
            markers,
            deployments,
            lake,
            bus,
            clock,
            prices: PriceTable::builtin(),
            usage_prices: UsagePrices::builtin(),
            landing: None,
            running: None,
            member_resources: None,
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
        let function = counted_function(&batch.function_name);
        if function != batch.function_name {
            tracing::warn!(account_id = %event.account, team = team_name, batch_id = %batch.batch_id,
                // Debug: escaped, so an odd name cannot forge log lines.
                function_name = ?batch.function_name.chars().take(MAX_FUNCTION_NAME).collect::<String>(),
                counted_as = UNRECOGNISED_FUNCTION,
                "a function name Lambda cannot have reported: its spend counts under another name");
        }
        let now = self.clock.now();
        // The runaway guard's hourly counters, per function.
        let resource = runaway::resource_key("lambda", region, function);
        let rates = runaway::rate_adds(
            &event.account,
            now,
            priced.iter().filter_map(|p| {
                let at = DateTime::parse_from_rfc3339(&p.record.timestamp).ok()?;
                Some((resource.clone(), at.with_timezone(&Utc), to_nanos(p.cost)))
            }),
            MAX_BATCH_COUNTERS.saturating_sub(2 * adds.len() + 3),
        );
        // The reports are at most `MAX_REPORT_AGE` (40 days) old and
        // `MAX_REPORT_LEAD` ahead: at most 42 days, so 42 team and 42
        // account counters and 3 months of the function's, which one
        // DynamoDB transaction (99 counters besides the claim) holds
        // without splitting the batch.
        if !self
            .counters
            .record_function_spend_once(&key, now, now + BATCH_MEMORY, function, &adds, &rates)
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
        self.write_deployment(record, DeploymentSource::Ci, team, at)
            .await
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
        self.write_deployment(record, DeploymentSource::CloudFormation, team, event.time)
            .await
    }

    /// Marks the deployment in the team's log (when Purser knows the
    /// account), then writes it to the lake. The mark first: writing it
    /// again is harmless (it is the same item), so a retry after a failed
    /// append costs nothing, where the other order would append the lake's
    /// record once more for every failed mark.
    async fn write_deployment(
        &self,
        record: lake::DeploymentRecord,
        source: DeploymentSource,
        team: Option<TeamName>,
        at: DateTime<Utc>,
    ) -> Result<Recorded, RecorderError> {
        if let Some(team) = team {
            let mark = DeploymentMark {
                team,
                account_id: record.account_id.clone(),
                at,
                stack: record.stack.clone(),
                status: record.status.clone(),
                source,
                id: deployment_id(&record),
            };
            self.deployments.record_deployment(&mark).await?;
        }
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

#[cfg(test)]
mod tests {
    //! The recorder on small fakes of exactly the roles it takes: the
    //! shared fakes of the accounts, the counters, the markers, the
    //! deployment log and the bus, and a lake of its own.

    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::accounts::{Account, AccountState, NewAccount};
    use crate::fakes::{FakeAccounts, FakeBus, FakeCounters, FakeDeployments, FakeMarkers, locked};
    use crate::lake::{
        INVOCATIONS_REPORTED, STACK_STATUS_CHANGE, TEAM_SPEND_UPDATED, TELEMETRY_SOURCE,
    };
    use crate::ports::{Appended, ManualClock};

    const MEMBER: &str = "210987654321";
    /// An account Purser does not know.
    const STRANGER: &str = "333333333333";

    #[derive(Default)]
    struct Lake(Mutex<Vec<(LakeTable, Value)>>);

    #[async_trait]
    impl LakeSink for Lake {
        async fn append(
            &self,
            table: LakeTable,
            records: Vec<Value>,
        ) -> Result<Appended, LakeError> {
            let written = records.len();
            locked(&self.0).extend(records.into_iter().map(|r| (table, r)));
            Ok(Appended {
                written,
                dead_lettered: 0,
            })
        }
    }

    struct World {
        recorder: Recorder,
        counters: Arc<FakeCounters>,
        deployments: Arc<FakeDeployments>,
        lake: Arc<Lake>,
        bus: Arc<FakeBus>,
        now: DateTime<Utc>,
    }

    fn world() -> World {
        let now: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let request = NewAccount::from_json(
            &json!({"team": "payments", "owner": "ana@example.com", "purpose": "tests"}),
        )
        .unwrap();
        let mut account = Account::request(
            crate::accounts::new_id(),
            request,
            "arn:aws:iam::111111111111:user/ana",
            now,
        )
        .unwrap();
        account.state = AccountState::Ready;
        account.account_id = Some(MEMBER.into());
        let accounts = Arc::new(FakeAccounts::default());
        accounts.add(account);
        let markers = Arc::new(FakeMarkers::default());
        let counters = Arc::new(FakeCounters::on(markers.clone()));
        let deployments = Arc::new(FakeDeployments::default());
        let lake = Arc::new(Lake::default());
        let bus = Arc::new(FakeBus::default());
        let recorder = Recorder::new(
            accounts,
            counters.clone(),
            markers,
            deployments.clone(),
            lake.clone(),
            bus.clone(),
            Arc::new(ManualClock::new(now)),
        );
        World {
            recorder,
            counters,
            deployments,
            lake,
            bus,
            now,
        }
    }

    fn report(request_id: &str, at: DateTime<Utc>, billed_ms: u64) -> Value {
        json!({"request_id": request_id, "timestamp": at.to_rfc3339(), "duration_ms": billed_ms as f64,
               "billed_duration_ms": billed_ms, "max_memory_used_mb": 100})
    }

    fn batch(now: DateTime<Utc>, reports: Vec<Value>) -> Event {
        batch_of("b-1", "checkout", now, reports)
    }

    fn batch_of(batch_id: &str, function: &str, now: DateTime<Utc>, reports: Vec<Value>) -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": INVOCATIONS_REPORTED,
            "source": TELEMETRY_SOURCE, "account": MEMBER, "region": "us-east-1",
            "time": now.to_rfc3339(), "resources": [],
            "detail": {"version": 1, "batch_id": batch_id, "function_name": function,
                       "architecture": "arm64", "memory_mb": 1024, "reports": reports}
        }))
        .unwrap()
    }

    fn stack_change(account: &str, status: &str, at: DateTime<Utc>) -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": format!("e-{status}"), "detail-type": STACK_STATUS_CHANGE,
            "source": "aws.cloudformation", "account": account, "region": "us-east-1",
            "time": at.to_rfc3339(), "resources": [],
            "detail": {
                "stack-id": format!("arn:aws:cloudformation:us-east-1:{account}:stack/checkout-api/6c5e9a10-0000-11ef-9d6a-0a1b2c3d4e5f"),
                "status-details": {"status": status, "status-reason": ""}
            }
        }))
        .unwrap()
    }

    fn payments() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    /// The team's function counters of December 2026.
    async fn functions(w: &World) -> Vec<(String, i64)> {
        w.counters
            .team_function_spend(&payments(), "2026-12", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|f| {
                assert_eq!(f.account_id, MEMBER);
                (f.function, f.nanos)
            })
            .collect()
    }

    fn announced(bus: &FakeBus) -> Vec<String> {
        bus.of(TEAM_SPEND_UPDATED)
            .iter()
            .map(|detail| detail["spend"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_batch_is_counted_once_and_announced_at_each_delivery() {
        let w = world();
        let event = batch(
            w.now,
            vec![report("r-1", w.now, 1_000), report("r-2", w.now, 2_000)],
        );
        let first = w.recorder.invocations(&event).await.unwrap();
        assert_eq!(
            first,
            Recorded::Written {
                records: 2,
                dead_lettered: 0,
                refused: 0
            }
        );
        let again = w.recorder.invocations(&event).await.unwrap();
        assert_eq!(again, Recorded::Duplicate);
        assert_eq!(locked(&w.lake.0).len(), 2, "the lake is written once");
        let spend = announced(&w.bus);
        assert_eq!(spend.len(), 2, "each delivery announces the team's spend");
        assert_eq!(spend[0], spend[1], "and the repeat counts nothing more");
        let counted: i64 = w.counters.teams_total();
        assert!(counted > 0);
    }

    #[tokio::test]
    async fn impossible_reports_are_refused_and_the_valid_ones_kept() {
        let w = world();
        let event = batch(
            w.now,
            vec![
                report("ok", w.now, 1_000),
                report("too-long", w.now, u64::MAX),
                report("from-the-future", w.now + Duration::hours(1), 1_000),
            ],
        );
        let recorded = w.recorder.invocations(&event).await.unwrap();
        assert_eq!(
            recorded,
            Recorded::Written {
                records: 1,
                dead_lettered: 0,
                refused: 2
            }
        );
        let lake = locked(&w.lake.0);
        assert_eq!(lake[0].1["request_id"], "ok");
        let one_second_at_1024_mb = w.counters.teams_total();
        assert!(
            one_second_at_1024_mb < 1_000_000,
            "one second of 1 GB is a fraction of a cent: {one_second_at_1024_mb} nanos"
        );
    }

    #[tokio::test]
    async fn a_batch_counts_once_for_its_function_in_its_teams_month() {
        let w = world();
        let event = batch(
            w.now,
            vec![report("r-1", w.now, 1_000), report("r-2", w.now, 2_000)],
        );
        w.recorder.invocations(&event).await.unwrap();
        assert_eq!(
            w.recorder.invocations(&event).await.unwrap(),
            Recorded::Duplicate
        );
        let team_total = w.counters.teams_total();
        assert!(team_total > 0);
        assert_eq!(
            functions(&w).await,
            [("checkout".to_string(), team_total)],
            "the function's month holds what the team's days do, once"
        );

        // Another function's batch, costlier: listed first.
        let other = batch_of("b-2", "refunds", w.now, vec![report("r-3", w.now, 9_000)]);
        w.recorder.invocations(&other).await.unwrap();
        let listed = functions(&w).await;
        assert_eq!(
            listed.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            ["refunds", "checkout"]
        );
        assert!(listed[0].1 > listed[1].1);
    }

    #[tokio::test]
    async fn a_batch_over_two_months_counts_in_each() {
        let w = world();
        let november = w.now - Duration::days(3);
        let event = batch(
            w.now,
            vec![report("r-1", november, 1_000), report("r-2", w.now, 1_000)],
        );
        w.recorder.invocations(&event).await.unwrap();
        let month = |period: &'static str| {
            let counters = w.counters.clone();
            async move {
                counters
                    .team_function_spend(&payments(), period, 10)
                    .await
                    .unwrap()
            }
        };
        let (nov, dec) = (month("2026-11").await, month("2026-12").await);
        assert_eq!((nov.len(), dec.len()), (1, 1));
        assert_eq!(nov[0].nanos, dec[0].nanos, "one second each");
        assert_eq!(nov[0].nanos + dec[0].nanos, w.counters.teams_total());
    }

    #[tokio::test]
    async fn a_function_name_lambda_cannot_report_is_counted_under_one_other_name() {
        let w = world();
        let too_long = "f".repeat(MAX_FUNCTION_NAME + 1);
        for (i, name) in [
            too_long.as_str(),
            "check out",
            "checkout#2026-12",
            "chéckout",
            "../x",
        ]
        .into_iter()
        .enumerate()
        {
            let event = batch_of(
                &format!("b-{i}"),
                name,
                w.now,
                vec![report("r-1", w.now, 1_000)],
            );
            assert!(
                matches!(
                    w.recorder.invocations(&event).await.unwrap(),
                    Recorded::Written { records: 1, .. }
                ),
                "{name:?}: the batch is recorded"
            );
        }
        let listed = functions(&w).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].0, UNRECOGNISED_FUNCTION);
        assert_eq!(
            listed[0].1,
            w.counters.teams_total(),
            "their spend still counts for the team"
        );

        assert_eq!(counted_function("checkout"), "checkout");
        let longest = "f".repeat(MAX_FUNCTION_NAME);
        assert_eq!(counted_function(&longest), longest);
        let arn = "arn:aws:lambda:us-east-1:210987654321:function:checkout:$LATEST";
        assert_eq!(counted_function(arn), arn);
        assert_eq!(counted_function(""), UNRECOGNISED_FUNCTION);
    }

    #[tokio::test]
    async fn a_deployment_of_a_teams_account_is_marked_once_however_often_it_arrives() {
        let w = world();
        let at = w.now - Duration::minutes(5);
        let detail = json!({"version": 1, "stack": "checkout-api", "status": "SUCCEEDED",
                            "commit": "4f1c2e9", "ref": "main"});
        for _ in 0..2 {
            w.recorder
                .ci_deployment(MEMBER, "us-east-1", &detail, at)
                .await
                .unwrap();
        }
        let marks = w.deployments.all();
        assert_eq!(marks.len(), 1, "{marks:?}");
        let mark = &marks[0];
        assert_eq!(mark.team, payments());
        assert_eq!(
            (mark.account_id.as_str(), mark.at, mark.stack.as_str()),
            (MEMBER, at, "checkout-api")
        );
        assert_eq!(
            (mark.status.as_str(), mark.source),
            ("SUCCEEDED", DeploymentSource::Ci)
        );
        assert_eq!(locked(&w.lake.0).len(), 2, "the lake is written as before");

        // Another report at the same time is another mark.
        let failed = json!({"version": 1, "stack": "checkout-api", "status": "FAILED"});
        w.recorder
            .ci_deployment(MEMBER, "us-east-1", &failed, at)
            .await
            .unwrap();
        assert_eq!(w.deployments.all().len(), 2);
    }

    #[tokio::test]
    async fn a_stack_operations_start_and_end_are_marked_and_a_redelivered_end_is_not_again() {
        let w = world();
        let (start, end) = (w.now - Duration::minutes(10), w.now - Duration::minutes(2));
        let started = stack_change(MEMBER, "UPDATE_IN_PROGRESS", start);
        let ended = stack_change(MEMBER, "UPDATE_COMPLETE", end);
        w.recorder.cloudformation(&started).await.unwrap();
        w.recorder.cloudformation(&ended).await.unwrap();
        // The start was forgotten with the first end: the redelivery's
        // lake record has no duration, but its mark is the same.
        w.recorder.cloudformation(&ended).await.unwrap();
        let marks = w
            .deployments
            .recent_deployments(&payments(), start, 10)
            .await
            .unwrap();
        assert_eq!(
            marks
                .iter()
                .map(|m| (m.status.as_str(), m.at, m.source, m.stack.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "UPDATE_COMPLETE",
                    end,
                    DeploymentSource::CloudFormation,
                    "checkout-api"
                ),
                (
                    "UPDATE_IN_PROGRESS",
                    start,
                    DeploymentSource::CloudFormation,
                    "checkout-api"
                ),
            ]
        );
        assert_eq!(locked(&w.lake.0).len(), 3);
    }

    #[tokio::test]
    async fn a_deployment_of_an_account_purser_does_not_know_goes_to_the_lake_only() {
        let w = world();
        w.recorder
            .cloudformation(&stack_change(STRANGER, "CREATE_COMPLETE", w.now))
            .await
            .unwrap();
        let detail = json!({"version": 1, "stack": "x", "status": "STARTED"});
        w.recorder
            .ci_deployment(STRANGER, "us-east-1", &detail, w.now)
            .await
            .unwrap();
        assert!(w.deployments.all().is_empty());
        let lake = locked(&w.lake.0);
        assert_eq!(lake.len(), 2);
        assert!(
            lake.iter()
                .all(|(table, r)| *table == LakeTable::Deployments
                    && r["team"].is_null()
                    && r["account_id"] == STRANGER)
        );
    }
}
