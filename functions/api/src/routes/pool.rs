//! `GET /pool` and `POST /accounts/{id}/release` (admins): the lease
//! templates' pools of recycled accounts, and a quarantined account let
//! out after a look.

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::param;

/// Each recycling template's pool: sizes by state, ages, and what is
/// cleaning or quarantined.
pub async fn show(call: Call<'_>) -> Answer {
    let view = call.api.accounts.pool(call.caller).await?;
    Ok(Reply::json(200, view))
}

/// A quarantined account cools, then is lent again.
pub async fn release(call: Call<'_>) -> Answer {
    let account = call
        .api
        .accounts
        .release(param(call.request, "id"), call.caller)
        .await?;
    Ok(Reply::json(200, account.to_view()))
}
