//! Spend as Purser knows it, and how it is settled.
//!
//! The recorder's streaming counters see an invocation within seconds of its
//! report: they drive budgets. Every 15 minutes the `spend` function settles
//! each team's month to date from slower, authoritative figures: the lake
//! through Athena (each invocation and usage record once) and, where a CUR
//! 2.0 export is configured, AWS's own bill, per account, day and streamed
//! service S (Lambda, Bedrock, NAT gateways, EC2, …):
//!
//! ```text
//! lake_S   = what the lake holds of S that day
//! missed   = what the lake held beyond the counters when settled
//! streamed = counters now + missed
//! settled  = CUR unstreamed + max(Σ_S max(CUR_S, lake_S), streamed)   (with CUR)
//!          = streamed                                                  (without)
//! ```
//!
//! Each streamed service is the bill where it has arrived and the stream
//! where it has not (the larger of the two, since a day's bill arrives
//! line by line); what Purser does not stream is the bill's; and the whole
//! is never less than the counters, whose freshest spend the lake and the
//! bill have not seen yet. With Lambda alone this is `max(CUR total, CUR
//! non-Lambda + streamed)`.
//!
//! Figures are settled by lease: the lake's records carry the team that
//! held the account when they were made, and each CUR line goes to the team
//! of the lease that covered its account at its usage start (the lake's
//! `leases`, joined by `cur_cost_per_account_day`), so a late line of a
//! recycled account lands on the team that spent it, not on the account's
//! next holder. Figures the lake names no team for (an account with no
//! lease in the lake, made before leases were exported) are the account's
//! current holder's. An account-day is settled whole for one team: where
//! two leases meet in a day, the one with the larger share (see
//! [`by_lease`]).
//!
//! The settlement stores these figures per team, month, account and day,
//! and every read weighs them against the counters as they
//! stand then: spend streamed after a settlement counts at once, and a CUR
//! line that covers it is not added on top. One case counts twice, for a
//! settlement's lifetime at most: an invocation the lake held before its
//! counter write (a recorder retry after the lake write) is in `missed` and,
//! once retried, in the counter too, until the next settlement finds the
//! counter caught up. That errs toward enforcing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::TeamName;
use crate::budgets::period_of;
use crate::events::EventEntry;
use crate::lake;
use crate::lake::last_day_of_month;
use crate::lake::named_queries;
use crate::ports::Clock;
use crate::ports::{AccountStore, BusError, EventBus, SettlementStore, SpendCounters, StoreError};
use crate::ports::{QueryEngine, QueryError, QueryResult};
use crate::spend::{from_nanos, to_nanos};

/// Where a spend figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpendSource {
    /// The recorder's counters, from invocation reports as they arrive.
    Stream,
    /// Settled from the lake through Athena (locally, DataFusion).
    Athena,
    /// Settled with the CUR 2.0 export, AWS's own bill.
    Cur,
}

impl SpendSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Athena => "athena",
            Self::Cur => "cur",
        }
    }

    /// What the source means, for API answers.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Stream => "estimated from invocation reports as they arrive",
            Self::Athena => "settled from the data lake (each invocation once)",
            Self::Cur => "settled with AWS's Cost and Usage Report (all services)",
        }
    }
}

/// Differences below this (nano-USD per account and day) are rounding, not
/// spend: the lake keeps each invocation's cost as a double, the counters in
/// whole nano-USD per batch.
pub const NOISE_NANOS: i64 = 1_000;

/// What the spend function settled for a team's month: what the lake and
/// the CUR said, per account and day. Stored as those figures, not as a
/// difference from the counters, so counters that catch up after the
/// settlement are never counted twice: every read weighs the figures
/// against the counters as they stand then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledSpend {
    pub team: TeamName,
    /// `YYYY-MM`.
    pub period: String,
    pub source: SpendSource,
    /// Figures by account id, then day: only the days where they may add
    /// to the counters (a CUR line, or a lake above its counter).
    pub accounts: BTreeMap<String, BTreeMap<NaiveDate, DayFigures>>,
    /// The team's month to date when it was settled.
    pub total: i64,
    pub settled_at: DateTime<Utc>,
    /// `false` while a `TeamSpendUpdated` for this settlement is due: a run
    /// that failed to announce it announces it the next time.
    pub announced: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What the lake and the CUR said of one account's day, in nano-USD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFigures {
    /// Streamed spend the lake held beyond the counter when settled.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed: i64,
    /// The CUR's line items, where the export has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cur: Option<CurDay>,
    /// What the lake held per streamed service (`lambda`, `bedrock`, …);
    /// empty in settlements from before usage beyond Lambda.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lake: BTreeMap<String, i64>,
}

impl DayFigures {
    /// These figures against a counter.
    pub fn against(&self, counted: i64) -> AccountDay {
        AccountDay {
            counted,
            missed: self.missed,
            cur: self.cur.clone(),
            lake: self.lake.clone(),
        }
    }

    /// What the lake (per service, where it has records) and the CUR said,
    /// against the counter when settled; a lake within rounding of its
    /// counter missed nothing.
    pub fn settled(lake: BTreeMap<String, i64>, cur: Option<CurDay>, counted: i64) -> Self {
        let held = lake.values().fold(0i64, |a, n| a.saturating_add(*n));
        let missed = Some(held.saturating_sub(counted))
            .filter(|m| !lake.is_empty() && *m > NOISE_NANOS)
            .unwrap_or(0);
        Self { missed, cur, lake }
    }

    /// Whether the figures can add anything to a counter.
    fn may_add(&self) -> bool {
        self.cur.is_some() || self.missed != 0
    }

    fn close_to(&self, other: &Self) -> bool {
        let near = |a: i64, b: i64| a.abs_diff(b) <= NOISE_NANOS as u64;
        let near_all = |a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((k, x), (l, y))| k == l && near(*x, *y))
        };
        let cur = match (&self.cur, &other.cur) {
            (Some(a), Some(b)) => {
                near(a.total, b.total)
                    && near(a.lambda, b.lambda)
                    && near_all(&a.services, &b.services)
            }
            (a, b) => a == b,
        };
        near(self.missed, other.missed) && cur && near_all(&self.lake, &other.lake)
    }
}

impl SettledSpend {
    /// What the figures add to an account's counters from `from` to `to`,
    /// given its counters per day as they stand.
    pub fn added_to(
        &self,
        account_id: &str,
        counted: &BTreeMap<NaiveDate, i64>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BTreeMap<NaiveDate, i64> {
        let mut added = BTreeMap::new();
        if let Some(days) = self.accounts.get(account_id) {
            for (day, figures) in days.range(from..=to) {
                let n = figures
                    .against(counted.get(day).copied().unwrap_or(0))
                    .adjustment();
                if n != 0 {
                    added.insert(*day, n);
                }
            }
        }
        added
    }

    /// Whether `other` holds other figures than rounding explains.
    fn differs(&self, other: &Self) -> bool {
        self.source != other.source
            || self.accounts.len() != other.accounts.len()
            || self
                .accounts
                .iter()
                .zip(&other.accounts)
                .any(|((a, x), (b, y))| {
                    a != b
                        || x.len() != y.len()
                        || x.iter()
                            .zip(y)
                            .any(|((d, f), (e, g))| d != e || !f.close_to(g))
                })
    }
}

/// One account's figures for one day, in nano-USD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountDay {
    /// The streaming counter.
    pub counted: i64,
    /// Streamed spend the lake held beyond the counter when settled.
    pub missed: i64,
    /// The CUR's line items, where the export has any.
    pub cur: Option<CurDay>,
    /// What the lake held per streamed service.
    pub lake: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurDay {
    /// All services.
    pub total: i64,
    /// The AWSLambda part of `total`.
    pub lambda: i64,
    /// The part of `total` of each service Purser streams (`lambda`,
    /// `bedrock`, `ec2`, …); empty in settlements from before usage beyond
    /// Lambda, which knew only `lambda`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, i64>,
}

impl CurDay {
    /// The bill's part of each streamed service.
    fn streamed_parts(&self) -> BTreeMap<String, i64> {
        if self.services.is_empty() {
            BTreeMap::from([("lambda".to_string(), self.lambda)])
        } else {
            self.services.clone()
        }
    }
}

impl AccountDay {
    /// The streamed cost: the counter, plus what the lake held that the
    /// counter lacked (the lake lags the counters by Firehose's buffer,
    /// so it is only ever ahead where a counter write was lost).
    pub fn streamed(&self) -> i64 {
        self.counted.saturating_add(self.missed)
    }

    /// The day's authoritative figure (see the module's doc): each streamed
    /// service the larger of its bill and its stream, the bill for the
    /// rest, never less than the counters.
    pub fn settled(&self) -> i64 {
        let streamed = self.streamed();
        let Some(cur) = &self.cur else {
            return streamed;
        };
        let parts = cur.streamed_parts();
        let billed = parts.values().fold(0i64, |a, n| a.saturating_add(*n));
        let unstreamed = cur.total.saturating_sub(billed);
        let services: BTreeSet<&String> = parts.keys().chain(self.lake.keys()).collect();
        let per_service = services.into_iter().fold(0i64, |sum, s| {
            let bill = parts.get(s).copied().unwrap_or(0);
            let lake = self.lake.get(s).copied().unwrap_or(0);
            sum.saturating_add(bill.max(lake))
        });
        unstreamed.saturating_add(per_service.max(streamed))
    }

    /// What the settled figure adds to the counter.
    pub fn adjustment(&self) -> i64 {
        self.settled().saturating_sub(self.counted)
    }
}

/// A team's spend over some days: counters plus what the last settlement
/// of each month added.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamSpend {
    /// Per day (nano-USD), days with any spend, in order.
    pub days: Vec<(NaiveDate, i64)>,
    pub total: i64,
    /// `Stream` when no settlement touched these days.
    pub source: SpendSource,
    /// When the latest settlement used was made.
    pub settled_at: Option<DateTime<Utc>>,
}

impl TeamSpend {
    pub fn amount(&self) -> Decimal {
        from_nanos(self.total)
    }
}

/// The first and last day a costs request may name: Purser's counters and
/// lake hold nothing outside them, and every date walk stays far from the
/// calendar's ends.
pub const FIRST_COST_DAY: &str = "2000-01-01";
pub const LAST_COST_DAY: &str = "2099-12-31";

/// A day of a costs request: `YYYY-MM-DD` with a four-digit year, from
/// [`FIRST_COST_DAY`] to [`LAST_COST_DAY`]. The error completes "from …".
pub fn cost_day(text: &str) -> Result<NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let day = shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| "must be a date like 2026-11-01".to_string())?;
    let bound = |b: &str| NaiveDate::parse_from_str(b, "%Y-%m-%d").ok();
    if bound(FIRST_COST_DAY).is_some_and(|f| day < f)
        || bound(LAST_COST_DAY).is_some_and(|l| day > l)
    {
        return Err(format!(
            "must be between {FIRST_COST_DAY} and {LAST_COST_DAY}"
        ));
    }
    Ok(day)
}

/// The team's settlements of the months `from..=to` spans: read once, to
/// weigh every account's counters of a request against.
pub async fn settlements(
    store: &dyn SettlementStore,
    team: &TeamName,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SettledSpend>, StoreError> {
    let mut found = Vec::new();
    let mut month = from.with_day(1).unwrap_or(from);
    while month <= to {
        if let Some(s) = store
            .settled_spend(team, &month.format("%Y-%m").to_string())
            .await?
        {
            found.push(s);
        }
        // Checked: a month past the calendar's last ends the walk.
        match last_day_of_month(month).succ_opt() {
            Some(next) if next > month => month = next,
            _ => break,
        }
    }
    Ok(found)
}

/// The first and last day of the month of `day`.
fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day.with_day(1).unwrap_or(day), last_day_of_month(day))
}

/// A team's spend per day from `from` to `to`, inclusive: its counters,
/// plus what its settlements' figures add to its accounts' counters.
pub async fn team_spend(
    counters: &dyn SpendCounters,
    settlements_store: &dyn SettlementStore,
    team: &TeamName,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<TeamSpend, StoreError> {
    let settled = settlements(settlements_store, team, from, to).await?;
    team_spend_settled(counters, team, &settled, from, to).await
}

/// [`team_spend`] with the team's settlements already read.
pub async fn team_spend_settled(
    counters: &dyn SpendCounters,
    team: &TeamName,
    settled: &[SettledSpend],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<TeamSpend, StoreError> {
    let mut days: BTreeMap<NaiveDate, i64> = counters
        .team_spend(team, from, to)
        .await?
        .into_iter()
        .collect();
    for s in settled {
        for account_id in s.accounts.keys() {
            for (day, n) in added(counters, s, account_id, from, to).await? {
                let sum = days.entry(day).or_default();
                *sum = sum.saturating_add(n);
            }
        }
    }
    let total = days.values().fold(0i64, |a, n| a.saturating_add(*n));
    let (source, settled_at) = provenance(settled);
    Ok(TeamSpend {
        days: days.into_iter().collect(),
        total,
        source,
        settled_at,
    })
}

/// Where figures weighed with `settled` come from (`Stream` without any),
/// and when the latest of them was made.
pub fn provenance(settled: &[SettledSpend]) -> (SpendSource, Option<DateTime<Utc>>) {
    (
        settled
            .iter()
            .map(|s| s.source)
            .max()
            .unwrap_or(SpendSource::Stream),
        settled.iter().map(|s| s.settled_at).max(),
    )
}

/// What a settlement adds to one account's counters from `from` to `to`,
/// weighed against its counters now.
async fn added(
    counters: &dyn SpendCounters,
    settled: &SettledSpend,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, i64>, StoreError> {
    let in_range = settled
        .accounts
        .get(account_id)
        .is_some_and(|days| days.range(from..=to).next().is_some());
    if !in_range {
        return Ok(BTreeMap::new());
    }
    let counted: BTreeMap<NaiveDate, i64> = counters
        .account_spend(account_id, from, to)
        .await?
        .into_iter()
        .collect();
    Ok(settled.added_to(account_id, &counted, from, to))
}

/// An account's spend from `from` to `to`: its counters plus what its
/// team's settlements (see [`settlements`]) add to them.
pub async fn account_spend(
    counters: &dyn SpendCounters,
    settled: &[SettledSpend],
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64, StoreError> {
    let counted: BTreeMap<NaiveDate, i64> = counters
        .account_spend(account_id, from, to)
        .await?
        .into_iter()
        .collect();
    let mut total = counted.values().fold(0i64, |a, n| a.saturating_add(*n));
    for s in settled {
        for n in s.added_to(account_id, &counted, from, to).values() {
            total = total.saturating_add(*n);
        }
    }
    Ok(total)
}

/// A team's month to date at `now`.
pub async fn month_to_date(
    counters: &dyn SpendCounters,
    settlements_store: &dyn SettlementStore,
    team: &TeamName,
    now: DateTime<Utc>,
) -> Result<TeamSpend, StoreError> {
    let (_, first, last) = period_of(now);
    team_spend(counters, settlements_store, team, first, last).await
}

#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the named query {query} answered a row Purser cannot read: {message}")]
    UnexpectedRow { query: String, message: String },
}

/// What one run settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub period: String,
    /// Teams whose figures were settled.
    pub teams: usize,
    /// Teams whose figure changed with the settlement, announced with
    /// `TeamSpendUpdated`.
    pub announced: usize,
    /// Accounts in the lake or the CUR that Purser does not know.
    pub unknown_accounts: usize,
    /// Accounts left unsettled because a row of theirs could not be read
    /// (they keep their streamed figures), and rows that named no account.
    pub skipped_accounts: Vec<String>,
    pub skipped_rows: usize,
}

/// The first day of each month a run on `today` settles, oldest first and
/// never empty: the current month, preceded during its first [`LATE_DAYS`]
/// days by the previous one.
pub fn months_to_settle(today: NaiveDate) -> Vec<NaiveDate> {
    let (first, _) = month_of(today);
    let previous = first.pred_opt().map(|last| month_of(last).0);
    match previous {
        Some(previous) if today.day() <= LATE_DAYS => vec![previous, first],
        _ => vec![first],
    }
}

/// The `spend` function: settles every team's month to date.
pub struct SpendSettler {
    accounts: Arc<dyn AccountStore>,
    counters: Arc<dyn SpendCounters>,
    settlements: Arc<dyn SettlementStore>,
    query: Arc<dyn QueryEngine>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    /// Whether a CUR 2.0 export is configured (the `cur` table exists).
    cur: bool,
}

/// For this many days into a month the previous month is settled too: the
/// CUR bills its last days hours to a day late.
pub const LATE_DAYS: u32 = 3;

impl SpendSettler {
    /// `cur`: whether a CUR 2.0 export is configured (the `cur` table exists).
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        counters: Arc<dyn SpendCounters>,
        settlements: Arc<dyn SettlementStore>,
        query: Arc<dyn QueryEngine>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        cur: bool,
    ) -> Self {
        Self {
            accounts,
            counters,
            settlements,
            query,
            bus,
            clock,
            cur,
        }
    }

    /// Settles the current month, and the previous one during the first
    /// [`LATE_DAYS`] days of a month. Each month is settled whatever
    /// becomes of the other; the run fails (and is retried) if either did.
    pub async fn settle(&self) -> Result<Settled, SpendError> {
        let now = self.clock.now();
        let (period, _, _) = period_of(now);
        let mut settled = Settled {
            period,
            ..Settled::default()
        };
        let mut failed = None;
        let months = months_to_settle(now.date_naive());
        let Some((current, earlier)) = months.split_last() else {
            return Ok(settled);
        };
        for month in earlier {
            match self.settle_month(*month, now).await {
                Ok(previous) => {
                    settled.teams += previous.teams;
                    settled.announced += previous.announced;
                    settled.skipped_accounts.extend(previous.skipped_accounts);
                    settled.skipped_rows += previous.skipped_rows;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the previous month could not be settled");
                    failed = Some(e);
                }
            }
        }
        let current = self.settle_month(*current, now).await?;
        settled.teams += current.teams;
        settled.announced += current.announced;
        settled.unknown_accounts = current.unknown_accounts;
        settled.skipped_accounts.extend(current.skipped_accounts);
        settled.skipped_accounts.sort();
        settled.skipped_accounts.dedup();
        settled.skipped_rows += current.skipped_rows;
        match failed {
            Some(e) => Err(e),
            None => Ok(settled),
        }
    }

    /// Settles the month of `day`.
    async fn settle_month(
        &self,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Settled, SpendError> {
        let (first, last) = month_of(day);
        let period = first.format("%Y-%m").to_string();
        // Per account, day and team (the lease's: the records' own team in
        // the lake, the covering lease's for a CUR line; `None` where the
        // lake names none): the lake's cost per streamed service and the
        // CUR's lines.
        let mut figures: BTreeMap<String, BTreeMap<NaiveDate, BTreeMap<Option<TeamName>, Found>>> =
            BTreeMap::new();
        // A row that cannot be read leaves its account unsettled (it keeps
        // its streamed figures) and is reported; the others settle. A row
        // naming no account is skipped alone.
        let mut unreadable: BTreeSet<String> = BTreeSet::new();
        let mut skipped_rows = 0;
        let mut skip = |row: &Row<'_>, e: SpendError| {
            tracing::error!(period = %period, error = %e, "an unreadable row of the lake or the CUR: its account is not settled");
            match row.text(0) {
                Ok(account_id) => {
                    unreadable.insert(account_id);
                }
                Err(_) => skipped_rows += 1,
            }
        };
        let columns = ["account_id", "day", "service", "cost_usd", "team"];
        let lake_rows = self.run(STREAM_QUERY, &period).await?;
        for row in rows(&lake_rows, STREAM_QUERY, &columns)? {
            match row.service_cost() {
                Ok((account_id, on, service, nanos, team)) => {
                    let found = figures
                        .entry(account_id)
                        .or_default()
                        .entry(on)
                        .or_default()
                        .entry(team)
                        .or_default();
                    let sum = found.0.entry(service).or_default();
                    *sum = sum.saturating_add(nanos);
                }
                Err(e) => skip(&row, e),
            }
        }
        if self.cur {
            let cur_rows = self.run(CUR_QUERY, &period).await?;
            for row in rows(&cur_rows, CUR_QUERY, &columns)? {
                match row.service_cost() {
                    Ok((account_id, on, service, nanos, team)) => {
                        let found = figures
                            .entry(account_id)
                            .or_default()
                            .entry(on)
                            .or_default()
                            .entry(team)
                            .or_default();
                        let cur = found.1.get_or_insert_with(CurDay::default);
                        cur.total = cur.total.saturating_add(nanos);
                        if service != UNSTREAMED {
                            if service == "lambda" {
                                cur.lambda = cur.lambda.saturating_add(nanos);
                            }
                            let part = cur.services.entry(service).or_default();
                            *part = part.saturating_add(nanos);
                        }
                    }
                    Err(e) => skip(&row, e),
                }
            }
        }
        for account_id in &unreadable {
            figures.remove(account_id);
        }

        let mut teams: BTreeMap<TeamName, (SettledSpend, i64)> = BTreeMap::new();
        let mut settled = Settled {
            period: period.clone(),
            skipped_accounts: unreadable.into_iter().collect(),
            skipped_rows,
            ..Settled::default()
        };
        for (account_id, days) in figures {
            // Figures the lake names no team for (an account with no lease
            // in the lake: made before leases were exported) are its
            // current holder's.
            let holder = self
                .accounts
                .account_by_account_id(&account_id)
                .await?
                .map(|a| a.team);
            let (by_team, unknown) = by_lease(days, holder.as_ref());
            if unknown {
                tracing::debug!(
                    account_id,
                    "spend of an account Purser does not know: not settled"
                );
                settled.unknown_accounts += 1;
            }
            if by_team.is_empty() {
                continue;
            }
            let counted: BTreeMap<NaiveDate, i64> = self
                .counters
                .account_spend(&account_id, first, last)
                .await?
                .into_iter()
                .collect();
            for (name, days) in by_team {
                let (team, added) = teams.entry(name.clone()).or_insert_with(|| {
                    let team = SettledSpend {
                        team: name,
                        period: period.clone(),
                        source: SpendSource::Athena,
                        accounts: BTreeMap::new(),
                        total: 0,
                        settled_at: now,
                        announced: false,
                    };
                    (team, 0)
                });
                for (day, (lake, cur)) in days {
                    let on_day = counted.get(&day).copied().unwrap_or(0);
                    let f = DayFigures::settled(lake, cur, on_day);
                    if f.cur.is_some() {
                        team.source = SpendSource::Cur;
                    }
                    if f.may_add() {
                        *added = added.saturating_add(f.against(on_day).adjustment());
                        team.accounts
                            .entry(account_id.clone())
                            .or_default()
                            .insert(day, f);
                    }
                }
            }
        }

        for (name, (mut team, added)) in teams {
            let counted = self
                .counters
                .team_spend(&name, first, last)
                .await?
                .iter()
                .fold(0i64, |a, (_, n)| a.saturating_add(*n));
            team.total = counted.saturating_add(added);
            settled.teams += 1;
            let previous = self.settlements.settled_spend(&name, &period).await?;
            // What budgets see changes only with the figures: the recorder
            // announced the counters' own changes already.
            let news = previous.as_ref().map_or(!team.accounts.is_empty(), |p| {
                !p.announced || p.differs(&team)
            });
            team.announced = !news;
            if !self.settlements.put_settled_spend(&team).await? {
                // A later run settled this team already.
                continue;
            }
            if !news {
                tracing::debug!(team = %name, period, "spend settled: nothing new");
                continue;
            }
            let detail = json!({"version": 1, "team": name, "period": period,
                "spend": from_nanos(team.total).normalize().to_string(), "currency": "USD",
                "source": team.source.as_str(), "as_of": lake::timestamp(now)});
            self.bus
                .put(vec![EventEntry::purser(lake::TEAM_SPEND_UPDATED, &detail)])
                .await?;
            team.announced = true;
            self.settlements.put_settled_spend(&team).await?;
            settled.announced += 1;
            tracing::info!(team = %name, period, spend = %from_nanos(team.total), added = %from_nanos(added), source = team.source.as_str(), "team spend settled");
        }
        tracing::info!(
            period = settled.period,
            teams = settled.teams,
            announced = settled.announced,
            unknown_accounts = settled.unknown_accounts,
            "spend settled"
        );
        Ok(settled)
    }

    async fn run(&self, name: &str, period: &str) -> Result<QueryResult, SpendError> {
        // (Every named query it runs takes the month.)
        let query = named_queries::named(name).ok_or_else(|| SpendError::UnexpectedRow {
            query: name.into(),
            message: "no such named query is compiled in".into(),
        })?;
        Ok(self.query.run(&query, &[period.to_string()]).await?)
    }
}

/// What the lake and the CUR said of an account's day for one team: the
/// lake's cost per streamed service, and the CUR's lines.
type Found = (BTreeMap<String, i64>, Option<CurDay>);

/// Adds `more` to `found`.
fn merge(found: &mut Found, more: Found) {
    for (service, nanos) in more.0 {
        let sum = found.0.entry(service).or_default();
        *sum = sum.saturating_add(nanos);
    }
    if let Some(more) = more.1 {
        let cur = found.1.get_or_insert_with(CurDay::default);
        cur.total = cur.total.saturating_add(more.total);
        cur.lambda = cur.lambda.saturating_add(more.lambda);
        for (service, nanos) in more.services {
            let part = cur.services.entry(service).or_default();
            *part = part.saturating_add(nanos);
        }
    }
}

/// How much of an account's day `found` is: the bill's total and the
/// lake's figures together (only ever compared with another team's).
fn share(found: &Found) -> i64 {
    let lake = found.0.values().fold(0i64, |a, n| a.saturating_add(*n));
    let cur = found.1.as_ref().map_or(0, |c| c.total);
    lake.saturating_add(cur)
}

/// An account's figures per day and lease team, as each team settles
/// them: figures the lake names no team for are `holder`'s (the account's
/// current team: an account with no lease in the lake), and whether some
/// were left for want of one (an account Purser does not know).
///
/// An account-day is settled whole for one team, since the account's
/// counter it is weighed against is one figure for the day: where two
/// leases' figures meet in one day (an account lent again the day its
/// cooling ended, or cooled for no hours), the day goes to the team with
/// the larger share, ties to the first by name. The other team's streamed
/// spend still counts in its own counters; the day's correction (the bill
/// or the lake above the counter) goes to the larger.
fn by_lease(
    days: BTreeMap<NaiveDate, BTreeMap<Option<TeamName>, Found>>,
    holder: Option<&TeamName>,
) -> (BTreeMap<TeamName, BTreeMap<NaiveDate, Found>>, bool) {
    let mut by_team: BTreeMap<TeamName, BTreeMap<NaiveDate, Found>> = BTreeMap::new();
    let mut unknown = false;
    for (day, teams) in days {
        let mut resolved: BTreeMap<TeamName, Found> = BTreeMap::new();
        for (team, found) in teams {
            match team.or_else(|| holder.cloned()) {
                Some(team) => merge(resolved.entry(team).or_default(), found),
                None => unknown = true,
            }
        }
        let larger = resolved
            .iter()
            .fold(None::<(&TeamName, i64)>, |best, (team, found)| match best {
                Some((_, most)) if most >= share(found) => best,
                _ => Some((team, share(found))),
            })
            .map(|(team, _)| team.clone());
        let Some(larger) = larger else {
            continue;
        };
        let mut whole = Found::default();
        for (_, found) in resolved {
            merge(&mut whole, found);
        }
        by_team.entry(larger).or_default().insert(day, whole);
    }
    (by_team, unknown)
}

/// The lake's streamed cost per account, day, service and team.
const STREAM_QUERY: &str = "stream_cost_per_account_day";
/// The CUR's cost per account, day, service and lease team.
const CUR_QUERY: &str = "cur_cost_per_account_day";
/// What `cur_cost_per_account_day` calls the services Purser does not stream.
const UNSTREAMED: &str = "(other)";

/// A row's values in the order of the columns asked for.
struct Row<'a> {
    query: &'a str,
    values: Vec<&'a Value>,
}

fn rows<'a>(
    result: &'a QueryResult,
    query: &'a str,
    columns: &[&str],
) -> Result<Vec<Row<'a>>, SpendError> {
    let positions = columns
        .iter()
        .map(|name| {
            result
                .columns
                .iter()
                .position(|c| c.name == *name)
                .ok_or_else(|| SpendError::UnexpectedRow {
                    query: query.into(),
                    message: format!("no column {name}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(result
        .rows
        .iter()
        .map(|row| Row {
            query,
            values: positions
                .iter()
                .map(|p| row.get(*p).unwrap_or(&Value::Null))
                .collect(),
        })
        .collect())
}

impl Row<'_> {
    fn bad(&self, message: String) -> SpendError {
        SpendError::UnexpectedRow {
            query: self.query.into(),
            message,
        }
    }

    fn text(&self, i: usize) -> Result<String, SpendError> {
        self.values[i]
            .as_str()
            .map(String::from)
            .ok_or_else(|| self.bad(format!("column {i} is not text: {}", self.values[i])))
    }

    fn day(&self, i: usize) -> Result<NaiveDate, SpendError> {
        let text = self.text(i)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map_err(|e| self.bad(format!("{text:?} is not a day: {e}")))
    }

    /// A decimal (as text or a number) in nano-USD; null is zero (a sum of
    /// no costs).
    fn nanos(&self, i: usize) -> Result<i64, SpendError> {
        let amount = match self.values[i] {
            Value::Null => return Ok(0),
            Value::String(s) => s.parse::<Decimal>().ok(),
            Value::Number(n) => n
                .to_string()
                .parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(&n.to_string()).ok()),
            _ => None,
        };
        amount
            .map(to_nanos)
            .ok_or_else(|| self.bad(format!("{} is not an amount", self.values[i])))
    }

    /// `account_id, day, service, cost_usd, team`: the service a short
    /// name of lowercase letters, digits and `_` (`ec2`, `nat_gateway`), or
    /// `(other)`, never a key of any
    /// shape; the team a team's name, or null where the lake names none.
    fn service_cost(
        &self,
    ) -> Result<(String, NaiveDate, String, i64, Option<TeamName>), SpendError> {
        let service = self.text(2)?;
        let known = service == UNSTREAMED
            || ((1..=32).contains(&service.len())
                && service.starts_with(|c: char| c.is_ascii_lowercase())
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        if !known {
            return Err(self.bad(format!("{service:?} is not a service")));
        }
        let team = match self.values[4] {
            Value::Null => None,
            _ => {
                let text = self.text(4)?;
                Some(
                    TeamName::parse(&text)
                        .map_err(|e| self.bad(format!("{text:?} is not a team: {e}")))?,
                )
            }
        };
        Ok((self.text(0)?, self.day(1)?, service, self.nanos(3)?, team))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A day of Lambda alone settled when its counter stood at `counted`,
    /// read then.
    fn day(counted: i64, lake: Option<i64>, cur: Option<(i64, i64)>) -> AccountDay {
        let cur = cur.map(|(total, lambda)| CurDay {
            total,
            lambda,
            services: BTreeMap::from([("lambda".to_string(), lambda)]),
        });
        let lake = lake
            .map(|l| BTreeMap::from([("lambda".to_string(), l)]))
            .unwrap_or_default();
        DayFigures::settled(lake, cur, counted).against(counted)
    }

    fn services(of: &[(&str, i64)]) -> BTreeMap<String, i64> {
        of.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    /// The lake's figures of a day of Lambda alone.
    fn lambda(nanos: i64) -> BTreeMap<String, i64> {
        services(&[("lambda", nanos)])
    }

    #[test]
    fn each_streamed_service_is_its_bill_or_its_stream_whichever_is_more() {
        // The bill: $5 of EBS (not streamed), $3 of EC2 (the morning's
        // hours), no Bedrock yet. The lake: $4 of EC2 (the whole day so
        // far), $6 of Bedrock. The counters: $10 (EC2 and Bedrock).
        let cur = CurDay {
            total: 8,
            lambda: 0,
            services: services(&[("ec2", 3)]),
        };
        let figures = DayFigures::settled(services(&[("ec2", 4), ("bedrock", 6)]), Some(cur), 10);
        // 5 + max(max(3, 4) + max(0, 6), 10) = 15: neither the bill's EC2
        // nor the stream's Bedrock is lost, and nothing counts twice.
        assert_eq!(figures.against(10).settled(), 15);
        // The counters ahead of the lake (minutes of spend not yet landed).
        assert_eq!(figures.against(12).settled(), 17);
        // A whole day's bill for EC2 larger than the stream saw.
        let billed = CurDay {
            total: 14,
            lambda: 0,
            services: services(&[("ec2", 9)]),
        };
        let figures =
            DayFigures::settled(services(&[("ec2", 4), ("bedrock", 6)]), Some(billed), 10);
        assert_eq!(figures.against(10).settled(), 5 + 9 + 6);
    }

    #[test]
    fn a_settlement_from_before_usage_reads_as_lambda_alone() {
        let stored: DayFigures =
            serde_json::from_value(json!({"missed": 2, "cur": {"total": 10, "lambda": 8}}))
                .unwrap();
        assert!(stored.lake.is_empty());
        // max(CUR 10, CUR non-Lambda 2 + streamed 3 + 2) = 10.
        assert_eq!(stored.against(3).settled(), 10);
        assert_eq!(stored.against(9).settled(), 2 + 11);
    }

    #[test]
    fn without_cur_the_lake_adds_what_the_counter_missed() {
        let lake = |n: i64| Some(n * 1_000_000);
        let m = 1_000_000;
        assert_eq!(day(100 * m, None, None).settled(), 100 * m);
        assert_eq!(day(100 * m, lake(80), None).settled(), 100 * m);
        assert_eq!(day(100 * m, lake(130), None).settled(), 130 * m);
        assert_eq!(day(100 * m, lake(130), None).adjustment(), 30 * m);
        // Rounding between the lake's doubles and the counter is no spend.
        assert_eq!(
            day(100 * m, Some(100 * m + NOISE_NANOS), None).adjustment(),
            0
        );
    }

    #[test]
    fn cur_adds_the_other_services_and_corrects_lambda() {
        // CUR: $5 of EC2 and $1 of Lambda; streamed Lambda $2 (today's
        // invocations the CUR has not seen yet): 5 + 2.
        assert_eq!(day(2, None, Some((6, 1))).settled(), 7);
        // The CUR bills more Lambda than was streamed (functions without the
        // telemetry layer): the CUR total stands.
        assert_eq!(day(2, Some(2), Some((10, 8))).settled(), 10);
        assert_eq!(day(2, Some(2), Some((10, 8))).adjustment(), 8);
    }

    #[test]
    fn credits_in_the_cur_can_lower_the_figure() {
        // CUR: $1 of Lambda and a $3 credit on the rest (total -$2);
        // streamed Lambda $2: non-Lambda -3 + 2 = -1 beats the total.
        let credited = day(2, None, Some((-2, 1)));
        assert_eq!(credited.settled(), -1);
        assert_eq!(credited.adjustment(), -3);
    }

    proptest! {
        #[test]
        fn settled_is_never_below_what_either_source_proves(
            counted in 0i64..1_000_000, lake in proptest::option::of(0i64..1_000_000),
            other in 0i64..1_000_000, cur_lambda in 0i64..1_000_000, with_cur: bool,
        ) {
            let cur = with_cur.then_some((other + cur_lambda, cur_lambda));
            let d = day(counted, lake, cur);
            prop_assert!(d.settled() >= d.streamed());
            prop_assert!(d.settled() >= counted);
            prop_assert_eq!(d.counted + d.adjustment(), d.settled());
            if let Some((total, _)) = cur {
                prop_assert!(d.settled() >= total);
                prop_assert!(d.settled() >= other + d.streamed());
            }
        }
    }

    fn settlement(accounts: BTreeMap<String, BTreeMap<NaiveDate, DayFigures>>) -> SettledSpend {
        SettledSpend {
            team: TeamName::parse("payments").unwrap(),
            period: "2026-11".into(),
            source: SpendSource::Cur,
            accounts,
            total: 0,
            settled_at: Utc::now(),
            announced: true,
        }
    }

    #[test]
    fn costs_days_are_four_digit_years_in_a_sane_window() {
        assert_eq!(cost_day("2026-11-01"), Ok(d("2026-11-01")));
        assert_eq!(cost_day("2000-01-01"), Ok(d("2000-01-01")));
        assert_eq!(cost_day("2099-12-31"), Ok(d("2099-12-31")));
        assert_eq!(cost_day("2028-02-29"), Ok(d("2028-02-29")));
        for shape in [
            "+262142-12-01",
            "262142-12-01",
            "2026-1-01",
            "2026/11/01",
            "2027-02-29",
            "",
            "2026-11-01T00:00:00Z",
            "２０２６-11-01",
        ] {
            assert_eq!(
                cost_day(shape),
                Err("must be a date like 2026-11-01".into()),
                "{shape}"
            );
        }
        for outside in ["1999-12-31", "2100-01-01", "9999-12-31", "0000-01-01"] {
            assert!(
                cost_day(outside).unwrap_err().contains("between"),
                "{outside}"
            );
        }
    }

    #[test]
    fn every_day_of_five_years_settles_its_month_and_late_the_previous_one() {
        let mut today = d("2024-01-01");
        while today <= d("2028-12-31") {
            let months = months_to_settle(today);
            let this = today.with_day(1).unwrap();
            assert_eq!(months.last(), Some(&this), "{today}");
            if today.day() <= LATE_DAYS {
                let previous = (this - chrono::Duration::days(1)).with_day(1).unwrap();
                assert_eq!(months, [previous, this], "{today}");
            } else {
                assert_eq!(months, [this], "{today}");
            }
            today = today.succ_opt().unwrap();
        }
    }

    #[test]
    fn month_ends_leap_days_and_year_ends_settle_the_right_months() {
        for (today, expected) in [
            ("2026-12-01", &["2026-11-01", "2026-12-01"][..]),
            ("2026-12-03", &["2026-11-01", "2026-12-01"]),
            ("2026-12-04", &["2026-12-01"]),
            ("2026-12-31", &["2026-12-01"]),
            ("2027-01-01", &["2026-12-01", "2027-01-01"]),
            ("2028-02-29", &["2028-02-01"]),
            ("2028-03-01", &["2028-02-01", "2028-03-01"]),
            ("2027-03-02", &["2027-02-01", "2027-03-01"]),
        ] {
            let expected: Vec<NaiveDate> = expected.iter().map(|e| d(e)).collect();
            assert_eq!(months_to_settle(d(today)), expected, "{today}");
        }
        let first = NaiveDate::MIN.with_day(1).unwrap();
        assert_eq!(
            months_to_settle(first),
            [first],
            "no month before the first"
        );
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn figures_are_weighed_against_the_counters_as_they_stand() {
        // Settled when the counter stood at 300 and the lake at 500.
        let lake = DayFigures::settled(lambda(500_000), None, 300_000);
        let settled = settlement(BTreeMap::from([(
            "111111111111".to_string(),
            BTreeMap::from([(d("2026-11-02"), lake)]),
        )]));
        let counted = |n: i64| BTreeMap::from([(d("2026-11-02"), n)]);
        let added = |n| {
            settled.added_to(
                "111111111111",
                &counted(n),
                d("2026-11-01"),
                d("2026-11-30"),
            )
        };
        assert_eq!(added(300_000), BTreeMap::from([(d("2026-11-02"), 200_000)]));
        // Spend streamed after the settlement counts at once, on top.
        assert_eq!(added(400_000), BTreeMap::from([(d("2026-11-02"), 200_000)]));
        // Outside the range, or another account: nothing.
        assert!(
            settled
                .added_to(
                    "111111111111",
                    &counted(0),
                    d("2026-11-03"),
                    d("2026-11-30")
                )
                .is_empty()
        );
        assert!(
            settled
                .added_to(
                    "222222222222",
                    &counted(0),
                    d("2026-11-01"),
                    d("2026-11-30")
                )
                .is_empty()
        );
    }

    #[test]
    fn rounding_is_not_news() {
        let at = |missed: i64, total: i64| {
            settlement(BTreeMap::from([(
                "111111111111".to_string(),
                BTreeMap::from([(
                    d("2026-11-02"),
                    DayFigures {
                        missed,
                        cur: Some(CurDay {
                            total,
                            lambda: 10,
                            services: BTreeMap::new(),
                        }),
                        lake: BTreeMap::new(),
                    },
                )]),
            )]))
        };
        assert!(!at(1_000_000, 5_000_000).differs(&at(1_000_000 + NOISE_NANOS, 5_000_000 - 3)));
        assert!(at(1_000_000, 5_000_000).differs(&at(1_000_000 + NOISE_NANOS + 1, 5_000_000)));
        assert!(at(1_000_000, 5_000_000).differs(&settlement(BTreeMap::new())));
        // A lake within rounding of its counter missed nothing.
        assert!(!DayFigures::settled(lambda(1_000_500), None, 1_000_000).may_add());
        assert!(
            DayFigures::settled(lambda(1_000_000 + NOISE_NANOS + 1), None, 1_000_000).may_add()
        );
    }

    // ------------------------------------------------------------ the settler on fakes

    use crate::accounts::{Account, AccountState, NewAccount};
    use crate::fakes::{FakeAccounts, FakeBus, FakeCounters, FakeQueries, FakeSettlements, locked};
    use crate::ports::ManualClock;

    const LAKE: &str = STREAM_QUERY;
    const CUR: &str = CUR_QUERY;
    const PAY: &str = "111111111111";
    const SEARCH: &str = "222222222222";
    const NANOS: i64 = 1_000_000_000;

    fn team(name: &str) -> TeamName {
        TeamName::parse(name).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    struct World {
        settler: SpendSettler,
        accounts: Arc<FakeAccounts>,
        counters: Arc<FakeCounters>,
        settlements: Arc<FakeSettlements>,
        queries: Arc<FakeQueries>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    /// Team payments with account PAY, team search with SEARCH, at `now`.
    fn world(now: &str, cur: bool) -> World {
        let accounts = Arc::new(FakeAccounts::default());
        for (name, account_id) in [("payments", PAY), ("search", SEARCH)] {
            let input = NewAccount {
                team: team(name),
                owner: "ana@example.com".into(),
                purpose: "tests".into(),
                lease_days: None,
                template: None,
            };
            let mut a = Account::request(
                crate::accounts::new_id(),
                input,
                "arn:aws:iam::123456789012:user/ana",
                at("2026-10-01T00:00:00Z"),
            )
            .unwrap();
            a.state = AccountState::Ready;
            a.account_id = Some(account_id.into());
            accounts.add(a);
        }
        let counters = Arc::new(FakeCounters::default());
        let settlements = Arc::new(FakeSettlements::default());
        let queries = Arc::new(FakeQueries::default());
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new(at(now)));
        let settler = SpendSettler::new(
            accounts.clone(),
            counters.clone(),
            settlements.clone(),
            queries.clone(),
            bus.clone(),
            clock.clone(),
            cur,
        );
        World {
            settler,
            accounts,
            counters,
            settlements,
            queries,
            bus,
            clock,
        }
    }

    impl World {
        /// What the counters streamed: an account's day and its team's.
        fn counted(&self, team_name: &str, account_id: &str, day: &str, nanos: i64) {
            self.counters.set_account(account_id, d(day), nanos);
            self.counters.set_team(&team(team_name), d(day), nanos);
        }

        /// The lake's rows for `period`: (account, day, cost in dollars).
        fn lake(&self, period: &str, rows: &[(&str, &str, &str)]) {
            let rows = rows
                .iter()
                .map(|(a, day, cost)| {
                    vec![json!(a), json!(day), json!("lambda"), json!(1), json!(cost)]
                })
                .collect();
            self.queries.answer(LAKE, &[period], Ok(rows));
        }

        fn announced(&self) -> Vec<Value> {
            self.bus.of(lake::TEAM_SPEND_UPDATED)
        }
    }

    #[tokio::test]
    async fn a_month_is_settled_per_team_and_announced_where_the_figure_changed() {
        let w = world("2026-11-20T10:00:00Z", false);
        w.counted("payments", PAY, "2026-11-19", 3 * NANOS / 10);
        w.counted("search", SEARCH, "2026-11-19", NANOS / 10);
        // The lake holds $0.20 the payments counter missed; search's is right.
        w.lake(
            "2026-11",
            &[
                (PAY, "2026-11-19", "0.500000000"),
                (SEARCH, "2026-11-19", "0.100000000"),
                ("999999999999", "2026-11-19", "1.000000000"),
            ],
        );
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(
            settled,
            Settled {
                period: "2026-11".into(),
                teams: 2,
                announced: 1,
                unknown_accounts: 1,
                ..Settled::default()
            }
        );
        assert_eq!(
            w.queries.runs(),
            [(LAKE.to_string(), vec!["2026-11".to_string()])]
        );

        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(payments.total, NANOS / 2);
        assert_eq!(payments.source, SpendSource::Athena);
        assert_eq!(payments.settled_at, at("2026-11-20T10:00:00Z"));
        assert!(payments.announced);
        assert_eq!(
            payments.accounts[PAY][&d("2026-11-19")],
            DayFigures {
                missed: NANOS / 5,
                cur: None,
                lake: lambda(NANOS / 2),
            }
        );
        let search = w.settlements.get(&team("search"), "2026-11").unwrap();
        assert_eq!(search.total, NANOS / 10);
        assert!(search.accounts.is_empty(), "nothing missed");

        let announced = w.announced();
        assert_eq!(announced.len(), 1, "{announced:?}");
        assert_eq!(announced[0]["team"], "payments");
        assert_eq!(announced[0]["period"], "2026-11");
        assert_eq!(announced[0]["spend"], "0.5");
        assert_eq!(announced[0]["source"], "athena");

        // The next run finds the same figures: nothing new to say.
        w.clock.advance(chrono::Duration::minutes(15));
        w.settler.settle().await.unwrap();
        assert_eq!(w.announced().len(), 1);
        assert_eq!(
            w.settlements
                .get(&team("payments"), "2026-11")
                .unwrap()
                .settled_at,
            at("2026-11-20T10:15:00Z"),
            "settled again all the same"
        );
        // The lake finds more: announced again.
        w.lake("2026-11", &[(PAY, "2026-11-19", "0.700000000")]);
        w.clock.advance(chrono::Duration::minutes(15));
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.announced, 1);
        let announced = w.announced();
        assert_eq!(announced.len(), 2);
        assert_eq!(announced[1]["spend"], "0.7");
    }

    #[tokio::test]
    async fn an_announcement_that_failed_is_made_by_the_next_run() {
        let w = world("2026-11-20T10:00:00Z", false);
        w.lake("2026-11", &[(PAY, "2026-11-19", "0.500000000")]);
        *locked(&w.bus.refuse) = 1;
        assert!(matches!(w.settler.settle().await, Err(SpendError::Bus(_))));
        let stored = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert!(!stored.announced, "still due");
        w.clock.advance(chrono::Duration::minutes(15));
        w.settler.settle().await.unwrap();
        assert_eq!(w.announced().len(), 1);
        assert!(
            w.settlements
                .get(&team("payments"), "2026-11")
                .unwrap()
                .announced
        );
    }

    #[tokio::test]
    async fn an_earlier_settlement_never_replaces_a_later_one() {
        let w = world("2026-11-20T10:00:00Z", false);
        let later = SettledSpend {
            team: team("payments"),
            period: "2026-11".into(),
            source: SpendSource::Athena,
            accounts: BTreeMap::new(),
            total: 7 * NANOS,
            settled_at: at("2026-11-20T11:00:00Z"),
            announced: true,
        };
        w.settlements.put_settled_spend(&later).await.unwrap();
        w.lake("2026-11", &[(PAY, "2026-11-19", "0.500000000")]);
        w.settler.settle().await.unwrap();
        assert_eq!(w.settlements.get(&team("payments"), "2026-11"), Some(later));
        assert!(w.announced().is_empty(), "a later run spoke already");
    }

    /// Today a failing query, or one unreadable row of one account, stops
    /// the month's settlement for every team (the query is one for all
    /// accounts): nothing is written and the run fails, to be retried.
    #[tokio::test]
    async fn a_failing_query_settles_no_team_of_the_month() {
        let w = world("2026-11-20T10:00:00Z", false);
        w.queries.answer(LAKE, &["2026-11"], Err("Athena is down"));
        assert!(matches!(
            w.settler.settle().await,
            Err(SpendError::Query(QueryError::Failed(_)))
        ));
        assert!(locked(&w.settlements.0).is_empty());
        assert!(w.bus.detail_types().is_empty());
    }

    /// One account's unreadable row does not stop the others: that account
    /// keeps its streamed figures and is reported, every other team settles.
    #[tokio::test]
    async fn an_unreadable_row_skips_its_account_and_the_others_settle() {
        let w = world("2026-11-20T10:00:00Z", false);
        let rows = vec![
            vec![
                json!(PAY),
                json!("2026-11-19"),
                json!("lambda"),
                json!(1),
                json!("0.5"),
            ],
            vec![
                json!(SEARCH),
                json!("2026-11-18"),
                json!("lambda"),
                json!(1),
                json!("0.2"),
            ],
            vec![
                json!(SEARCH),
                json!("19/11/2026"),
                json!("lambda"),
                json!(1),
                json!("0.1"),
            ],
            vec![
                json!(null),
                json!("2026-11-19"),
                json!("lambda"),
                json!(1),
                json!("0.1"),
            ],
        ];
        w.queries.answer(LAKE, &["2026-11"], Ok(rows));
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.teams, 1);
        assert_eq!(settled.skipped_accounts, [SEARCH]);
        assert_eq!(settled.skipped_rows, 1, "the row naming no account");
        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(payments.total, NANOS / 2);
        assert!(
            w.settlements.get(&team("search"), "2026-11").is_none(),
            "search keeps its streamed figures"
        );
        let announced: Vec<Value> = w.announced().iter().map(|a| a["team"].clone()).collect();
        assert_eq!(announced, [json!("payments")]);
    }

    /// Services are named as the lake names them, digits included (`ec2`);
    /// a name of any other shape is refused with its account.
    #[tokio::test]
    async fn streamed_services_with_digits_settle_and_odd_names_do_not() {
        let w = world("2026-11-20T10:00:00Z", false);
        w.counted("payments", PAY, "2026-11-19", NANOS);
        let row = |account: &str, service: &str, cost: &str| {
            vec![
                json!(account),
                json!("2026-11-19"),
                json!(service),
                json!(1),
                json!(cost),
            ]
        };
        let rows = vec![
            row(PAY, "ec2", "1.5"),
            row(PAY, "nat_gateway", "0.5"),
            row(SEARCH, "EC2; DROP", "0.1"),
        ];
        w.queries.answer(LAKE, &["2026-11"], Ok(rows));
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.skipped_accounts, [SEARCH]);
        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(
            payments.total,
            2 * NANOS,
            "the lake's 2 USD over the counted 1"
        );
    }

    #[tokio::test]
    async fn the_first_days_of_a_month_settle_the_previous_one_too() {
        let w = world("2026-12-02T10:00:00Z", false);
        w.lake("2026-11", &[(PAY, "2026-11-30", "0.400000000")]);
        w.lake("2026-12", &[(PAY, "2026-12-01", "0.100000000")]);
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.period, "2026-12");
        assert_eq!((settled.teams, settled.announced), (2, 2));
        assert_eq!(
            w.queries.runs(),
            [
                (LAKE.to_string(), vec!["2026-11".to_string()]),
                (LAKE.to_string(), vec!["2026-12".to_string()]),
            ]
        );
        let november = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(november.total, 4 * NANOS / 10);
        let december = w.settlements.get(&team("payments"), "2026-12").unwrap();
        assert_eq!(december.total, NANOS / 10);
        let periods: Vec<Value> = w.announced().iter().map(|a| a["period"].clone()).collect();
        assert_eq!(periods, [json!("2026-11"), json!("2026-12")]);

        // November failing does not stop December; the run fails all the same.
        w.queries.answer(LAKE, &["2026-11"], Err("Athena is down"));
        w.lake("2026-12", &[(PAY, "2026-12-01", "0.300000000")]);
        w.clock.advance(chrono::Duration::minutes(15));
        assert!(matches!(
            w.settler.settle().await,
            Err(SpendError::Query(_))
        ));
        let december = w.settlements.get(&team("payments"), "2026-12").unwrap();
        assert_eq!(december.total, 3 * NANOS / 10);

        // From the fourth, December alone.
        w.clock.set(at("2026-12-04T00:00:00Z"));
        let before = w.queries.runs().len();
        w.settler.settle().await.unwrap();
        assert_eq!(
            w.queries.runs()[before..],
            [(LAKE.to_string(), vec!["2026-12".to_string()])]
        );
    }

    #[tokio::test]
    async fn with_a_cur_export_its_lines_are_settled_too() {
        let w = world("2026-11-20T10:00:00Z", true);
        w.counted("payments", PAY, "2026-11-18", 3 * NANOS / 10);
        w.lake("2026-11", &[(PAY, "2026-11-18", "0.300000000")]);
        // The CUR bills $5 that day, $0.30 of it Lambda.
        w.queries.answer(
            CUR,
            &["2026-11"],
            Ok(vec![
                vec![
                    json!(PAY),
                    json!("2026-11-18"),
                    json!("(other)"),
                    json!("4.700000000"),
                ],
                vec![
                    json!(PAY),
                    json!("2026-11-18"),
                    json!("lambda"),
                    json!("0.300000000"),
                ],
            ]),
        );
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.announced, 1);
        assert_eq!(
            w.queries.runs(),
            [
                (LAKE.to_string(), vec!["2026-11".to_string()]),
                (CUR.to_string(), vec!["2026-11".to_string()]),
            ]
        );
        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(payments.source, SpendSource::Cur);
        assert_eq!(payments.total, 5 * NANOS);
        assert_eq!(
            payments.accounts[PAY][&d("2026-11-18")].cur,
            Some(CurDay {
                total: 5 * NANOS,
                lambda: 3 * NANOS / 10,
                services: BTreeMap::from([("lambda".to_string(), 3 * NANOS / 10)]),
            })
        );
        let announced = w.announced();
        assert_eq!(announced[0]["source"], "cur");
        assert_eq!(announced[0]["spend"], "5");
        // What budgets read weighs the settlement against the counters.
        let spend = month_to_date(
            w.counters.as_ref(),
            w.settlements.as_ref(),
            &team("payments"),
            at("2026-11-20T10:00:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(spend.total, 5 * NANOS);
        assert_eq!(spend.source, SpendSource::Cur);
    }

    impl World {
        /// `account_id` lent again, from the pool, to `team_name`: a newer
        /// request holds it, as `account_by_account_id` answers.
        fn lent_to(&self, team_name: &str, account_id: &str, at_: &str) {
            let input = NewAccount {
                team: team(team_name),
                owner: "bo@example.com".into(),
                purpose: "tests".into(),
                lease_days: None,
                template: None,
            };
            let mut a = Account::request(
                crate::accounts::new_id(),
                input,
                "arn:aws:iam::123456789012:user/bo",
                at(at_),
            )
            .unwrap();
            a.state = AccountState::Ready;
            a.account_id = Some(account_id.into());
            self.accounts.add(a);
        }

        /// The CUR's rows for `period`: (account, day, service, cost in
        /// dollars, the covering lease's team).
        fn cur(&self, period: &str, rows: &[(&str, &str, &str, &str, Option<&str>)]) {
            let rows = rows
                .iter()
                .map(|(a, day, service, cost, team)| {
                    vec![
                        json!(a),
                        json!(day),
                        json!(service),
                        json!(cost),
                        json!(team),
                        json!(team.map(|_| "r-lease")),
                    ]
                })
                .collect();
            self.queries.answer(CUR, &[period], Ok(rows));
        }

        /// The lake's rows for `period`, each with the team its records
        /// were made for.
        fn lake_of(&self, period: &str, rows: &[(&str, &str, &str, Option<&str>)]) {
            let rows = rows
                .iter()
                .map(|(a, day, cost, team)| {
                    vec![
                        json!(a),
                        json!(day),
                        json!("lambda"),
                        json!(1),
                        json!(cost),
                        json!(team),
                    ]
                })
                .collect();
            self.queries.answer(LAKE, &[period], Ok(rows));
        }
    }

    /// Payments' lease of PAY ended; the account was cleaned, cooled and
    /// lent to search, which holds it now. A late CUR line of a day of
    /// payments' lease is payments', not search's; the lines of search's
    /// lease are search's; and the lake's figures go to the team its
    /// records name.
    #[tokio::test]
    async fn a_late_cur_line_of_a_recycled_account_is_settled_for_the_lease_it_fell_in() {
        let w = world("2026-11-20T10:00:00Z", true);
        w.lent_to("search", PAY, "2026-11-10T12:00:00Z");
        // Payments streamed $1 on the 3rd, search $0.50 on the 15th.
        w.counted("payments", PAY, "2026-11-03", NANOS);
        w.counted("search", PAY, "2026-11-15", NANOS / 2);
        w.lake_of(
            "2026-11",
            &[
                (PAY, "2026-11-03", "1.000000000", Some("payments")),
                (PAY, "2026-11-15", "0.500000000", Some("search")),
            ],
        );
        w.cur(
            "2026-11",
            &[
                // EBS billed late for payments' days.
                (
                    PAY,
                    "2026-11-03",
                    "(other)",
                    "4.000000000",
                    Some("payments"),
                ),
                (PAY, "2026-11-03", "lambda", "1.000000000", Some("payments")),
                (PAY, "2026-11-15", "(other)", "2.000000000", Some("search")),
            ],
        );
        let settled = w.settler.settle().await.unwrap();
        assert_eq!((settled.teams, settled.unknown_accounts), (2, 0));
        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        assert_eq!(payments.total, 5 * NANOS, "its $1 streamed and the late $4");
        assert_eq!(
            payments.accounts[PAY].keys().collect::<Vec<_>>(),
            [&d("2026-11-03")]
        );
        let search = w.settlements.get(&team("search"), "2026-11").unwrap();
        assert_eq!(search.total, 5 * NANOS / 2, "its $0.50 and its own $2");
        assert_eq!(
            search.accounts[PAY].keys().collect::<Vec<_>>(),
            [&d("2026-11-15")]
        );
        // What each team's budget reads.
        let spend = |name: &'static str| {
            let (counters, settlements) = (w.counters.clone(), w.settlements.clone());
            async move {
                month_to_date(
                    counters.as_ref(),
                    settlements.as_ref(),
                    &team(name),
                    at("2026-11-20T10:00:00Z"),
                )
                .await
                .unwrap()
                .total
            }
        };
        assert_eq!(spend("payments").await, 5 * NANOS);
        assert_eq!(spend("search").await, 5 * NANOS / 2);
    }

    /// Figures the lake names no team for (an account with no lease in
    /// the lake) are the account's current holder's, as before leases.
    #[tokio::test]
    async fn figures_with_no_lease_go_to_the_accounts_current_holder() {
        let w = world("2026-11-20T10:00:00Z", true);
        w.lent_to("search", PAY, "2026-11-10T12:00:00Z");
        w.cur(
            "2026-11",
            &[
                (PAY, "2026-11-03", "(other)", "4.000000000", None),
                ("999999999999", "2026-11-03", "(other)", "1.000000000", None),
            ],
        );
        let settled = w.settler.settle().await.unwrap();
        assert_eq!(settled.unknown_accounts, 1);
        assert!(w.settlements.get(&team("payments"), "2026-11").is_none());
        let search = w.settlements.get(&team("search"), "2026-11").unwrap();
        assert_eq!(search.total, 4 * NANOS);
    }

    /// Two leases in one account-day (lent again the day its cooling
    /// ended): the day is settled whole for the team with the larger
    /// share, weighed against the account's one counter; the other keeps
    /// what its own counters streamed.
    #[tokio::test]
    async fn an_account_day_of_two_leases_is_settled_for_the_larger_share() {
        let w = world("2026-11-20T10:00:00Z", true);
        w.lent_to("search", PAY, "2026-11-15T18:00:00Z");
        w.counters
            .set_account(PAY, d("2026-11-15"), NANOS + NANOS / 10);
        w.counters
            .set_team(&team("payments"), d("2026-11-15"), NANOS);
        w.counters
            .set_team(&team("search"), d("2026-11-15"), NANOS / 10);
        w.cur(
            "2026-11",
            &[
                (
                    PAY,
                    "2026-11-15",
                    "(other)",
                    "3.000000000",
                    Some("payments"),
                ),
                (PAY, "2026-11-15", "(other)", "0.500000000", Some("search")),
            ],
        );
        w.settler.settle().await.unwrap();
        let payments = w.settlements.get(&team("payments"), "2026-11").unwrap();
        let day = &payments.accounts[PAY][&d("2026-11-15")];
        assert_eq!(
            day.cur.as_ref().unwrap().total,
            7 * NANOS / 2,
            "the whole day"
        );
        // 3.50 billed + 1.10 streamed, less the 1.10 the account counted:
        // payments' own 1 and the 3.50 of the day's correction.
        assert_eq!(payments.total, NANOS + 7 * NANOS / 2);
        let search = w.settlements.get(&team("search"), "2026-11");
        assert!(
            search.as_ref().is_none_or(|s| s.accounts.is_empty()),
            "search keeps its counters: {search:?}"
        );
        // Ties go to the first team by name.
        let tied = BTreeMap::from([(
            d("2026-11-15"),
            BTreeMap::from([
                (Some(team("search")), (lambda(5), None)),
                (Some(team("payments")), (lambda(5), None)),
            ]),
        )]);
        let (by_team, unknown) = by_lease(tied, None);
        assert!(!unknown);
        assert_eq!(by_team.keys().collect::<Vec<_>>(), [&team("payments")]);
        assert_eq!(by_team[&team("payments")][&d("2026-11-15")].0, lambda(10));
    }
}
