//! `GET /teams/{team}/costs?from=&to=&by=day|account|function`: the use
//! case is `purser_core::spend::Costs`; this maps its answers to replies.

use purser_core::accounts::AccountError;
use purser_core::spend::{CostsAsked, CostsError};

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
        Err(CostsError::Invalid(v)) => Err(Reply::invalid(v)),
        Err(CostsError::Forbidden(m)) => Err(Reply::error(403, "forbidden", &m, None)),
        Err(CostsError::Store(e)) => Err(Reply::from(AccountError::from(e))),
        Err(e @ CostsError::LakeUnavailable(_)) => {
            tracing::error!(team = %name, error = %e, "costs by function failed");
            Err(Reply::error(
                503,
                "unavailable",
                "the lake could not answer now; try again in a minute",
                None,
            ))
        }
        Err(e @ CostsError::LakeFailed(_)) => {
            // Athena's own words stay in the log: they name the workgroup,
            // buckets and SQL, which callers need not see.
            tracing::error!(team = %name, error = %e, "costs by function failed");
            Err(Reply::error(
                500,
                "internal",
                "the lake query failed; the request id in this answer finds it in the log",
                None,
            ))
        }
    }
}
