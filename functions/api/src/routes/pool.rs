//! `GET /pool` and `POST /accounts/{id}/release` (admins): the lease
//! templates' pools of recycled accounts, and a quarantined account let
//! out after a look.

use serde_json::json;

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::param;

/// Each recycling template's pool: sizes by state, ages, and what is
/// cleaning or quarantined.
pub async fn show(call: Call<'_>) -> Answer {
    let view = call.api.accounts.pool(call.caller).await?;
    Ok(Reply::json(200, view))
}

/// A quarantined account cools, then is lent again; an account the
/// runaway guard froze is unfrozen (by the budgets function's evaluation).
pub async fn release(call: Call<'_>) -> Answer {
    let id = param(call.request, "id");
    if let Some(account) = call.api.budgets.release_runaway(id, call.caller).await? {
        return Ok(Reply::json(
            202,
            json!({"account": account.to_view(), "released": "runaway_freeze",
                "message": "the runaway guard's hold is let go; the account is unfrozen within moments unless a budget still demands the freeze"}),
        ));
    }
    let account = call.api.accounts.release(id, call.caller).await?;
    Ok(Reply::json(200, account.to_view()))
}
