//! `GET /teams/{team}/costs?from=&to=&by=day|account|function` and the
//! console's `GET /teams/{team}/spend`: the use case is
//! `purser_core::spend::Costs`; this maps its answers to replies.

use purser_core::accounts::AccountError;
use purser_core::budgets::BudgetError;
use purser_core::spend::{CostsAsked, CostsError};
use serde_json::Value;

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::team;

pub async fn get(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let name = team(request)?;
    let query = &request.query_string_parameters;
    let asked = CostsAsked {
        from: query.first("from"),
        to: query.first("to"),
        by: query.first("by"),
    };
    match api.costs.report(&name, asked, caller).await {
        Ok(report) => Ok(Reply::json(200, report)),
        Err(e) => Err(refusal(&name, e)),
    }
}

/// `GET /teams/{team}/spend`: the month so far with the team's budget
/// (`null` without one), from the store and counters only.
pub async fn spend(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let name = team(request)?;
    let mut month = api
        .costs
        .month(&name, caller)
        .await
        .map_err(|e| refusal(&name, e))?;
    month["budget"] = match api.budgets.view(&name, caller).await {
        Ok(budget) => budget,
        Err(BudgetError::NotFound(_)) => Value::Null,
        Err(e) => return Err(Reply::from(e)),
    };
    Ok(Reply::json(200, month))
}

fn refusal(name: &purser_core::TeamName, e: CostsError) -> Reply {
    match e {
        CostsError::Invalid(v) => Reply::invalid(v),
        CostsError::Forbidden(m) => Reply::error(403, "forbidden", &m, None),
        CostsError::Store(e) => Reply::from(AccountError::from(e)),
        e @ CostsError::LakeUnavailable(_) => {
            tracing::error!(team = %name, error = %e, "costs by function failed");
            Reply::error(
                503,
                "unavailable",
                "the lake could not answer now; try again in a minute",
                None,
            )
        }
        e @ CostsError::LakeFailed(_) => {
            // Athena's own words stay in the log: they name the workgroup,
            // buckets and SQL, which callers need not see.
            tracing::error!(team = %name, error = %e, "costs by function failed");
            Reply::error(
                500,
                "internal",
                "the lake query failed; the request id in this answer finds it in the log",
                None,
            )
        }
    }
}
