//! What a team has spent (`GET /teams/{team}/costs`): by day and account
//! from the streaming counters (seconds behind) plus what the spend function
//! last settled from the lake and the CUR; by function from the lake
//! (`cost_per_function`, minutes behind).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::accounts::{Caller, Team, TeamName, rfc3339};
use crate::lake::named_queries;
use crate::ports::{
    AccountStore, Clock, DeploymentLog, QueryEngine, QueryError, SettlementStore, SpendCounters,
    Store, StoreError,
};
use crate::spend::{
    SpendSource, account_spend, cost_day, from_nanos, provenance, settlements, team_spend_settled,
};
use crate::validation::{ValidationError, invalid};

/// The longest range one request covers.
pub const MAX_COST_DAYS: i64 = 366;
/// The longest range costs by function cover: each is an Athena query,
/// billed by the data it scans.
pub const MAX_FUNCTION_DAYS: i64 = 92;
/// Accounts read per page when costs are broken down by account.
const ACCOUNT_PAGE: usize = 200;

/// A costs request as the caller wrote it (the query string's fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct CostsAsked<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub by: Option<&'a str>,
}

/// How costs are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostsBy {
    Day,
    Account,
    Function,
}

/// A costs request, parsed: a range within [`MAX_COST_DAYS`] and a
/// breakdown. Defaults: the month to date, by day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostsRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: CostsBy,
}

impl CostsRequest {
    pub fn parse(asked: CostsAsked<'_>, today: NaiveDate) -> Result<Self, ValidationError> {
        let day = |field: &str, text: Option<&str>, default: NaiveDate| match text {
            None => Ok(default),
            Some(text) => cost_day(text).map_err(|m| invalid(Some(field), &format!("{field} {m}"))),
        };
        let from = day("from", asked.from, today.with_day0(0).unwrap_or(today))?;
        let to = day("to", asked.to, today)?;
        if to < from {
            return Err(invalid(Some("to"), "to is before from"));
        }
        if (to - from).num_days() > MAX_COST_DAYS {
            return Err(invalid(
                Some("from"),
                &format!("ask for at most {MAX_COST_DAYS} days at a time"),
            ));
        }
        let by = match asked.by.unwrap_or("day") {
            "day" => CostsBy::Day,
            "account" => CostsBy::Account,
            "function" => CostsBy::Function,
            _ => return Err(invalid(Some("by"), "by must be day, account or function")),
        };
        if by == CostsBy::Function && (to - from).num_days() >= MAX_FUNCTION_DAYS {
            return Err(invalid(
                Some("from"),
                &format!(
                    "costs by function cover at most {MAX_FUNCTION_DAYS} days at a time (the lake is scanned for each request); for longer ranges run the named query top_functions on Athena"
                ),
            ));
        }
        Ok(Self { from, to, by })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CostsError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lake did not answer in time, or could not now: worth a retry.
    #[error("the lake could not answer: {0}")]
    LakeUnavailable(String),
    /// The lake refused the query. Its words (which name the workgroup,
    /// buckets and SQL) are for the log, not the caller.
    #[error("the lake query failed: {0}")]
    LakeFailed(String),
}

/// The costs use case, on the roles it reads.
pub struct Costs {
    accounts: Arc<dyn AccountStore>,
    counters: Arc<dyn SpendCounters>,
    settlements: Arc<dyn SettlementStore>,
    deployments: Arc<dyn DeploymentLog>,
    lake: Arc<dyn QueryEngine>,
    clock: Arc<dyn Clock>,
}

/// How many functions and accounts the month's view names.
const TOP: usize = 10;
/// How many function counters the month's view reads to rank accounts.
const FUNCTIONS_READ: usize = 1000;
/// How many deployments the month's view marks.
const DEPLOYMENTS_SHOWN: usize = 200;

impl Costs {
    pub fn new(store: Arc<dyn Store>, lake: Arc<dyn QueryEngine>, clock: Arc<dyn Clock>) -> Self {
        Self {
            accounts: store.clone(),
            counters: store.clone(),
            settlements: store.clone(),
            deployments: store,
            lake,
            clock,
        }
    }

    /// `GET /teams/{team}/spend`: the team's month so far, for the
    /// console: spend per day (counters plus what settlements added), the
    /// deployments of the month to mark on it, and the costliest functions
    /// and accounts. Read from the store only, never the lake, so a page
    /// answers at once however much the lake holds.
    pub async fn month(&self, team: &TeamName, caller: &Caller) -> Result<Value, CostsError> {
        self.check_member(team, caller).await?;
        let now = self.clock.now();
        let today = now.date_naive();
        let first = today.with_day(1).unwrap_or(today);
        let period = first.format("%Y-%m").to_string();
        let settled = settlements(self.settlements.as_ref(), team, first, today).await?;
        let spent =
            team_spend_settled(self.counters.as_ref(), team, &settled, first, today).await?;
        let days: Vec<Value> = spent
            .days
            .iter()
            .map(|(d, n)| json!({"day": d.to_string(), "amount": money(*n)}))
            .collect();
        let functions = self
            .counters
            .team_function_spend(team, &period, FUNCTIONS_READ)
            .await?;
        // Accounts ranked by what their functions streamed this month.
        let mut by_account: BTreeMap<&str, i64> = BTreeMap::new();
        for f in &functions {
            let sum = by_account.entry(f.account_id.as_str()).or_default();
            *sum = sum.saturating_add(f.nanos);
        }
        let mut ranked: Vec<(&str, i64)> = by_account.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut top_accounts = Vec::new();
        for (account_id, nanos) in ranked.into_iter().take(TOP) {
            let known = self.accounts.account_by_account_id(account_id).await?;
            top_accounts.push(json!({
                "account_id": account_id,
                "id": known.as_ref().map(|a| a.id.clone()),
                "owner": known.as_ref().map(|a| a.owner.clone()),
                "amount": money(nanos),
            }));
        }
        let top_functions: Vec<Value> = functions
            .iter()
            .take(TOP)
            .map(|f| json!({"account_id": f.account_id, "function": f.function, "amount": money(f.nanos)}))
            .collect();
        let since = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let deployments: Vec<Value> = self
            .deployments
            .recent_deployments(team, since, DEPLOYMENTS_SHOWN)
            .await?
            .iter()
            .map(|d| {
                json!({"at": rfc3339(d.at), "account_id": d.account_id, "stack": d.stack,
                       "status": d.status, "source": d.source.as_str()})
            })
            .collect();
        let (source, settled_at) = provenance(&settled);
        Ok(json!({
            "team": team, "period": period, "currency": "USD",
            "days": days, "total": money(spent.total),
            "forecast": crate::budgets::forecast(spent.amount(), now).round_dp(6).normalize().to_string(),
            "source": source.as_str(), "source_explained": source.explain(),
            "settled_at": settled_at.map(rfc3339),
            "top_accounts": top_accounts, "top_functions": top_functions,
            "functions_source": SpendSource::Stream.explain(),
            "deployments": deployments,
        }))
    }

    /// Refused unless `caller` may see `team` (checked before anything is
    /// read of it, so a stranger learns nothing).
    async fn check_member(&self, team: &TeamName, caller: &Caller) -> Result<(), CostsError> {
        let known = self
            .accounts
            .team(team)
            .await?
            .unwrap_or_else(|| Team::unconfigured(team.clone()));
        if !caller.may_use(&known) {
            return Err(CostsError::Forbidden(format!(
                "{} is not a member of team {team}",
                caller.principal
            )));
        }
        Ok(())
    }

    /// The team's costs as asked, for a caller who may see the team (checked
    /// before the request is parsed, so a stranger learns nothing of it).
    pub async fn report(
        &self,
        team: &TeamName,
        asked: CostsAsked<'_>,
        caller: &Caller,
    ) -> Result<Value, CostsError> {
        self.check_member(team, caller).await?;
        let request = CostsRequest::parse(asked, self.clock.now().date_naive())?;
        let CostsRequest { from, to, by } = request;
        if by == CostsBy::Function {
            return self.by_function(team, from, to).await;
        }
        let settled = settlements(self.settlements.as_ref(), team, from, to).await?;
        let (items, total) = match by {
            CostsBy::Day => {
                let spent =
                    team_spend_settled(self.counters.as_ref(), team, &settled, from, to).await?;
                let items: Vec<Value> = spent
                    .days
                    .iter()
                    .map(|(d, n)| json!({"day": d.to_string(), "amount": money(*n)}))
                    .collect();
                (items, spent.total)
            }
            _ => {
                let mut items = Vec::new();
                let mut total: i64 = 0;
                let mut page: Option<String> = None;
                loop {
                    let accounts = self
                        .accounts
                        .list_accounts(Some(team), page.as_deref(), ACCOUNT_PAGE)
                        .await?;
                    for account in &accounts.items {
                        let Some(id) = &account.account_id else {
                            continue;
                        };
                        let n =
                            account_spend(self.counters.as_ref(), &settled, id, from, to).await?;
                        total = total.saturating_add(n);
                        items.push(
                            json!({"account_id": id, "request_id": account.id, "amount": money(n)}),
                        );
                    }
                    match accounts.next {
                        Some(next) => page = Some(next),
                        None => break,
                    }
                }
                (items, total)
            }
        };
        let (origin, settled_at) = provenance(&settled);
        let mut source = serde_json::Map::new();
        source.insert("stream".into(), json!(SpendSource::Stream.explain()));
        if origin != SpendSource::Stream {
            source.insert(origin.as_str().into(), json!(origin.explain()));
        }
        if let Some(at) = settled_at {
            source.insert("settled_at".into(), json!(rfc3339(at)));
        }
        Ok(
            json!({"team": team, "currency": "USD", "from": from.to_string(), "to": to.to_string(),
                   "total": money(total), "items": items, "source": source}),
        )
    }

    /// Costs by function, from the lake: what the team's functions cost,
    /// each invocation once. The lake lags the counters by Firehose's buffer.
    async fn by_function(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Value, CostsError> {
        let query = named_queries::named("cost_per_function").ok_or_else(|| {
            CostsError::LakeFailed("the query cost_per_function is missing".into())
        })?;
        let params = [team.to_string(), from.to_string(), to.to_string()];
        let result = self.lake.run(&query, &params).await.map_err(|e| match e {
            QueryError::Timeout(_) | QueryError::Unavailable(_) => {
                CostsError::LakeUnavailable(e.to_string())
            }
            _ => CostsError::LakeFailed(e.to_string()),
        })?;
        let mut total = Decimal::ZERO;
        let mut items = Vec::with_capacity(result.rows.len());
        for row in result.objects() {
            let cost = row
                .get("cost_usd")
                .and_then(|v| match v {
                    Value::String(s) => s.parse::<Decimal>().ok(),
                    Value::Number(n) => n.to_string().parse().ok(),
                    _ => None,
                })
                .unwrap_or_default();
            total = total.saturating_add(cost);
            items.push(json!({
                "account_id": row.get("account_id"),
                "region": row.get("region"),
                "function_name": row.get("function_name"),
                "invocations": row.get("invocations"),
                "amount": cost.round_dp(6).normalize().to_string(),
            }));
        }
        Ok(
            json!({"team": team, "currency": "USD", "from": from.to_string(), "to": to.to_string(),
                   "total": total.round_dp(6).normalize().to_string(), "items": items,
                   "source": {"athena": "the data lake's invocation records (each invocation once)"}}),
        )
    }
}

/// Nano-units as a decimal string.
fn money(nanos: i64) -> String {
    from_nanos(nanos).round_dp(6).normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn parse(
        from: Option<&str>,
        to: Option<&str>,
        by: Option<&str>,
    ) -> Result<CostsRequest, ValidationError> {
        CostsRequest::parse(CostsAsked { from, to, by }, d("2026-12-02"))
    }

    #[test]
    fn a_request_defaults_to_the_month_to_date_by_day() {
        assert_eq!(
            parse(None, None, None).unwrap(),
            CostsRequest {
                from: d("2026-12-01"),
                to: d("2026-12-02"),
                by: CostsBy::Day
            }
        );
    }

    #[test]
    fn each_wrong_field_is_named() {
        let field = |r: Result<CostsRequest, ValidationError>| r.unwrap_err().field.unwrap();
        assert_eq!(field(parse(Some("yesterday"), None, None)), "from");
        assert_eq!(field(parse(None, Some("+262142-12-31"), None)), "to");
        assert_eq!(
            field(parse(Some("2026-12-02"), Some("2026-12-01"), None)),
            "to"
        );
        assert_eq!(
            field(parse(Some("2024-01-01"), Some("2026-01-01"), None)),
            "from"
        );
        assert_eq!(field(parse(None, None, Some("week"))), "by");
        assert_eq!(
            field(parse(
                Some("2026-01-01"),
                Some("2026-06-01"),
                Some("function")
            )),
            "from"
        );
        assert!(parse(Some("2026-01-01"), Some("2026-06-01"), Some("account")).is_ok());
    }
}
