//! Spend as Purser knows it, and how it is settled.
//!
//! The recorder's streaming counters see an invocation within seconds of its
//! report: they drive budgets. Every 15 minutes the `spend` function settles
//! each team's month to date from slower, authoritative figures: the lake
//! through Athena (each invocation once, by request id) and, where a CUR 2.0
//! export is configured, AWS's own bill, per account and day:
//!
//! ```text
//! streamed Lambda = max(counters, lake)
//! settled         = max(CUR total, CUR non-Lambda + streamed Lambda)   (with CUR)
//!                 = streamed Lambda                                    (without)
//! ```
//!
//! What settling adds to the counters (the CUR's other services, invocations
//! the counters missed) is stored per team and month as an adjustment, so
//! counters that keep growing after a settlement still count at once:
//! month to date = counters now + the last settlement's adjustment.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::period_of;
use crate::clock::Clock;
use crate::event::EventEntry;
use crate::lake::{self, TeamSpendUpdated};
use crate::ports::{BusError, EventBus, Store, StoreError};
use crate::pricing::{from_nanos, to_nanos};
use crate::queries;
use crate::query::{QueryEngine, QueryError, QueryResult};
use crate::recorder::last_day_of_month;
use crate::team::TeamName;

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

/// What the spend function settled for a team's month: how far the
/// authoritative figures differ from the streaming counters, per account
/// and day, in nano-USD (negative where the CUR holds credits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledSpend {
    pub team: TeamName,
    /// `YYYY-MM`.
    pub period: String,
    pub source: SpendSource,
    /// Adjustments by account id, then day; only days that have one.
    pub accounts: BTreeMap<String, BTreeMap<NaiveDate, i64>>,
    /// The team's month to date when it was settled (counters + adjustment).
    pub total: i64,
    pub settled_at: DateTime<Utc>,
    /// `false` while a `TeamSpendUpdated` for this settlement is due: a run
    /// that failed to announce it announces it the next time.
    pub announced: bool,
}

impl SettledSpend {
    /// What settling adds to the counters over the whole month.
    pub fn adjustment(&self) -> i64 {
        self.accounts.values().flat_map(BTreeMap::values).sum()
    }

    /// What settling adds to the team's counter of each day.
    pub fn days(&self) -> BTreeMap<NaiveDate, i64> {
        let mut days = BTreeMap::new();
        for (day, n) in self.accounts.values().flatten() {
            *days.entry(*day).or_default() += n;
        }
        days
    }

    /// What settling adds to an account's counters from `from` to `to`.
    pub fn account_adjustment(&self, account_id: &str, from: NaiveDate, to: NaiveDate) -> i64 {
        self.accounts
            .get(account_id)
            .map_or(0, |days| days.range(from..=to).map(|(_, n)| n).sum())
    }

    /// Whether `other` settles the same figures (ignoring when and whether
    /// it was announced).
    fn same_figures(&self, other: &Self) -> bool {
        self.source == other.source && self.accounts == other.accounts && self.total == other.total
    }
}

/// One account's figures for one day, in nano-USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountDay {
    /// The streaming counter.
    pub counted: i64,
    /// Lambda cost from the lake, where it has records.
    pub lake: Option<i64>,
    /// The CUR's line items, where the export has any.
    pub cur: Option<CurDay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurDay {
    /// All services.
    pub total: i64,
    /// The AWSLambda part of `total`.
    pub lambda: i64,
}

impl AccountDay {
    /// Lambda cost as streamed: the lake lags the counters by Firehose's
    /// buffer and counters may miss what the lake holds, and both count each
    /// invocation once, so the larger of the two is the better estimate.
    pub fn streamed_lambda(&self) -> i64 {
        self.counted.max(self.lake.unwrap_or(0))
    }

    /// The day's authoritative figure: `max(CUR total, CUR non-Lambda +
    /// streamed Lambda)`: the CUR covers every service but arrives hours
    /// late; streamed Lambda covers today.
    pub fn settled(&self) -> i64 {
        let streamed = self.streamed_lambda();
        match self.cur {
            Some(cur) => cur.total.max(
                cur.total
                    .saturating_sub(cur.lambda)
                    .saturating_add(streamed),
            ),
            None => streamed,
        }
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

/// The settlements of the months `from..=to` spans.
async fn settlements(
    store: &dyn Store,
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
        month = last_day_of_month(month)
            .succ_opt()
            .unwrap_or(NaiveDate::MAX);
    }
    Ok(found)
}

/// The first and last day of the month of `day`.
fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day.with_day(1).unwrap_or(day), last_day_of_month(day))
}

/// A team's spend per day from `from` to `to`, inclusive.
pub async fn team_spend(
    store: &dyn Store,
    team: &TeamName,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<TeamSpend, StoreError> {
    let mut days: BTreeMap<NaiveDate, i64> = store
        .team_spend(team, from, to)
        .await?
        .into_iter()
        .collect();
    let settled = settlements(store, team, from, to).await?;
    for s in &settled {
        for (day, n) in s.days().range(from..=to) {
            *days.entry(*day).or_default() += n;
        }
    }
    let total = days.values().sum();
    Ok(TeamSpend {
        days: days.into_iter().collect(),
        total,
        source: settled
            .iter()
            .map(|s| s.source)
            .max()
            .unwrap_or(SpendSource::Stream),
        settled_at: settled.iter().map(|s| s.settled_at).max(),
    })
}

/// An account's spend from `from` to `to`: its counters plus what the
/// settlements of its team added to it.
pub async fn account_spend(
    store: &dyn Store,
    team: &TeamName,
    account_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64, StoreError> {
    let counted: i64 = store
        .account_spend(account_id, from, to)
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let added: i64 = settlements(store, team, from, to)
        .await?
        .iter()
        .map(|s| s.account_adjustment(account_id, from, to))
        .sum();
    Ok(counted + added)
}

/// A team's month to date at `now`.
pub async fn month_to_date(
    store: &dyn Store,
    team: &TeamName,
    now: DateTime<Utc>,
) -> Result<TeamSpend, StoreError> {
    let (_, first, last) = period_of(now);
    team_spend(store, team, first, last).await
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
}

/// The `spend` function: settles every team's month to date.
pub struct SpendSettler {
    pub store: Arc<dyn Store>,
    pub query: Arc<dyn QueryEngine>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    /// Whether a CUR 2.0 export is configured (the `cur` table exists).
    pub cur: bool,
}

/// For this many days into a month the previous month is settled too: the
/// CUR bills its last days hours to a day late.
pub const LATE_DAYS: u32 = 3;

impl SpendSettler {
    /// Settles the current month, and the previous one during the first
    /// [`LATE_DAYS`] days of a month.
    pub async fn settle(&self) -> Result<Settled, SpendError> {
        let now = self.clock.now();
        let (period, _, _) = period_of(now);
        let mut settled = Settled {
            period,
            ..Settled::default()
        };
        let today = now.date_naive();
        if today.day() <= LATE_DAYS {
            let (first, _) = month_of(today);
            let last_month = first.pred_opt().unwrap_or(first);
            let previous = self.settle_month(last_month, now).await?;
            settled.teams += previous.teams;
            settled.announced += previous.announced;
        }
        let current = self.settle_month(today, now).await?;
        settled.teams += current.teams;
        settled.announced += current.announced;
        settled.unknown_accounts = current.unknown_accounts;
        Ok(settled)
    }

    /// Settles the month of `day`.
    async fn settle_month(
        &self,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Settled, SpendError> {
        let (first, last) = month_of(day);
        let period = first.format("%Y-%m").to_string();
        let mut figures: BTreeMap<String, BTreeMap<NaiveDate, AccountDay>> = BTreeMap::new();
        let lake_rows = self.run("lambda_cost_per_account_day", &period).await?;
        for row in rows(
            &lake_rows,
            "lambda_cost_per_account_day",
            &["account_id", "day", "cost_usd"],
        )? {
            let day = figures
                .entry(row.text(0)?)
                .or_default()
                .entry(row.day(1)?)
                .or_default();
            day.lake = Some(day.lake.unwrap_or(0) + row.nanos(2)?);
        }
        if self.cur {
            let cur_rows = self.run("cur_cost_per_account_day", &period).await?;
            let columns = ["account_id", "day", "cost_usd", "lambda_cost_usd"];
            for row in rows(&cur_rows, "cur_cost_per_account_day", &columns)? {
                let day = figures
                    .entry(row.text(0)?)
                    .or_default()
                    .entry(row.day(1)?)
                    .or_default();
                let (total, lambda) = (row.nanos(2)?, row.nanos(3)?);
                let cur = day.cur.get_or_insert(CurDay {
                    total: 0,
                    lambda: 0,
                });
                cur.total += total;
                cur.lambda += lambda;
            }
        }

        let mut teams: BTreeMap<TeamName, SettledSpend> = BTreeMap::new();
        let mut settled = Settled {
            period: period.clone(),
            ..Settled::default()
        };
        for (account_id, mut days) in figures {
            let Some(account) = self.store.account_by_account_id(&account_id).await? else {
                tracing::debug!(
                    account_id,
                    "spend of an account Purser does not know: not settled"
                );
                settled.unknown_accounts += 1;
                continue;
            };
            for (day, n) in self.store.account_spend(&account_id, first, last).await? {
                days.entry(day).or_default().counted = n;
            }
            let team = teams
                .entry(account.team.clone())
                .or_insert_with(|| SettledSpend {
                    team: account.team.clone(),
                    period: period.clone(),
                    source: SpendSource::Athena,
                    accounts: BTreeMap::new(),
                    total: 0,
                    settled_at: now,
                    announced: false,
                });
            for (day, figure) in days {
                if figure.cur.is_some() {
                    team.source = SpendSource::Cur;
                }
                let added = figure.adjustment();
                if added != 0 {
                    team.accounts
                        .entry(account_id.clone())
                        .or_default()
                        .insert(day, added);
                }
            }
        }

        for (name, mut team) in teams {
            let counted: i64 = self
                .store
                .team_spend(&name, first, last)
                .await?
                .iter()
                .map(|(_, n)| n)
                .sum();
            team.total = counted + team.adjustment();
            settled.teams += 1;
            let previous = self.store.settled_spend(&name, &period).await?;
            if previous
                .as_ref()
                .is_some_and(|p| p.announced && p.same_figures(&team))
            {
                continue;
            }
            // What budgets see changes only with the adjustment: the
            // recorder announced the counters' own changes already.
            let news = previous.as_ref().map_or(team.adjustment() != 0, |p| {
                !p.announced || p.accounts != team.accounts
            });
            team.announced = !news;
            if !self.store.put_settled_spend(&team).await? {
                // A later run settled this team already.
                continue;
            }
            if !news {
                tracing::debug!(team = %name, period, "spend settled: the counters stand");
                continue;
            }
            let detail = TeamSpendUpdated {
                version: 1,
                team: name.to_string(),
                period: period.clone(),
                spend: from_nanos(team.total).normalize().to_string(),
                currency: "USD".into(),
                source: team.source.as_str().into(),
                as_of: lake::timestamp(now),
            };
            let detail = serde_json::to_value(&detail).map_err(|e| SpendError::UnexpectedRow {
                query: "TeamSpendUpdated".into(),
                message: e.to_string(),
            })?;
            self.bus
                .put(vec![EventEntry::purser(lake::TEAM_SPEND_UPDATED, &detail)])
                .await?;
            team.announced = true;
            self.store.put_settled_spend(&team).await?;
            settled.announced += 1;
            tracing::info!(team = %name, period, spend = %from_nanos(team.total), adjustment = %from_nanos(team.adjustment()), source = team.source.as_str(), "team spend settled");
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
        let query = queries::named(name).ok_or_else(|| SpendError::UnexpectedRow {
            query: name.into(),
            message: "no such named query is compiled in".into(),
        })?;
        Ok(self.query.run(&query, &[period.to_string()]).await?)
    }
}

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(counted: i64, lake: Option<i64>, cur: Option<(i64, i64)>) -> AccountDay {
        AccountDay {
            counted,
            lake,
            cur: cur.map(|(total, lambda)| CurDay { total, lambda }),
        }
    }

    #[test]
    fn without_cur_the_larger_streamed_figure_stands() {
        assert_eq!(day(100, None, None).settled(), 100);
        assert_eq!(day(100, Some(80), None).settled(), 100);
        assert_eq!(day(100, Some(130), None).settled(), 130);
        assert_eq!(day(100, Some(130), None).adjustment(), 30);
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
            prop_assert!(d.settled() >= d.streamed_lambda());
            prop_assert!(d.settled() >= counted);
            prop_assert_eq!(d.counted + d.adjustment(), d.settled());
            if let Some((total, _)) = cur {
                prop_assert!(d.settled() >= total);
                prop_assert!(d.settled() >= other + d.streamed_lambda());
            }
        }
    }

    #[test]
    fn adjustments_sum_per_day_and_per_account_range() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let settled = SettledSpend {
            team: TeamName::parse("payments").unwrap(),
            period: "2026-11".into(),
            source: SpendSource::Cur,
            accounts: BTreeMap::from([
                (
                    "111111111111".to_string(),
                    BTreeMap::from([(d("2026-11-01"), 5), (d("2026-11-02"), 7)]),
                ),
                (
                    "222222222222".to_string(),
                    BTreeMap::from([(d("2026-11-02"), -1)]),
                ),
            ]),
            total: 100,
            settled_at: Utc::now(),
            announced: true,
        };
        assert_eq!(settled.adjustment(), 11);
        assert_eq!(
            settled.days(),
            BTreeMap::from([(d("2026-11-01"), 5), (d("2026-11-02"), 6)])
        );
        assert_eq!(
            settled.account_adjustment("111111111111", d("2026-11-02"), d("2026-11-30")),
            7
        );
        assert_eq!(
            settled.account_adjustment("333333333333", d("2026-11-01"), d("2026-11-30")),
            0
        );
    }
}
