//! `GET /approvals`, `POST /accounts/{id}/approve`, `POST /accounts/{id}/deny`,
//! `POST /accounts/{id}/extend`.

use purser_core::TeamName;
use purser_core::leases::{extension_from_json, reason_from_json};
use serde_json::{Value, json};

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::{body_json, param};

/// The body of an approval, which may be empty.
fn optional_body(call: &Call<'_>) -> Result<Value, Reply> {
    let raw = call.request.body.as_deref().unwrap_or("");
    if raw.trim().is_empty() {
        return Ok(Value::Null);
    }
    body_json(call.request)
}

/// `?team=`: what waits for the caller to decide, oldest first.
pub async fn list(call: Call<'_>) -> Answer {
    let team = match call.request.query_string_parameters.first("team") {
        Some(t) => Some(TeamName::parse(t).map_err(|m| Reply::bad("team", &m))?),
        None => None,
    };
    let items: Vec<Value> = call
        .api
        .accounts
        .approvals(team.as_ref(), call.caller)
        .await?
        .iter()
        .map(|a| a.to_view())
        .collect();
    Ok(Reply::json(200, json!({"items": items})))
}

pub async fn approve(call: Call<'_>) -> Answer {
    let reason = reason_from_json(&optional_body(&call)?, false).map_err(Reply::invalid)?;
    let account = call
        .api
        .accounts
        .approve(param(call.request, "id"), call.caller, reason)
        .await?;
    Ok(Reply::json(200, account.to_view()))
}

pub async fn deny(call: Call<'_>) -> Answer {
    let reason = reason_from_json(&body_json(call.request)?, true)
        .map_err(Reply::invalid)?
        .unwrap_or_default();
    let account = call
        .api
        .accounts
        .deny(param(call.request, "id"), call.caller, reason)
        .await?;
    Ok(Reply::json(200, account.to_view()))
}

/// 200 when the extension applied, 202 when it waits for an approver.
pub async fn extend(call: Call<'_>) -> Answer {
    let days = extension_from_json(&body_json(call.request)?).map_err(Reply::invalid)?;
    let (account, applied) = call
        .api
        .accounts
        .extend(param(call.request, "id"), call.caller, days)
        .await?;
    Ok(Reply::json(
        if applied { 200 } else { 202 },
        account.to_view(),
    ))
}
