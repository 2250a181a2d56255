//! `POST /accounts`, `GET /accounts`, `GET /accounts/{id}`,
//! `DELETE /accounts/{id}`.

use purser_core::{NewAccount, TeamName};
use serde_json::{Value, json};

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::{body_json, idempotency_key, param};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

pub async fn request(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let body = body_json(request)?;
    let input = NewAccount::from_json(&body).map_err(Reply::invalid)?;
    let key = idempotency_key(request, caller, &input)?;
    let (account, new) = api.accounts.request(input, caller, key).await?;
    tracing::info!(request_id = %account.id, team = %account.team, new, "account requested");
    Ok(Reply::json(202, account.to_view()))
}

/// `?team=&limit=&next=`: a page of the accounts the caller may see.
pub async fn list(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let query = &request.query_string_parameters;
    let team = match query.first("team") {
        Some(t) => Some(TeamName::parse(t).map_err(|m| Reply::bad("team", &m))?),
        None => None,
    };
    let limit = match query.first("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Reply::bad("limit", &format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    let page = api
        .accounts
        .list(team.as_ref(), caller, query.first("next"), limit)
        .await?;
    let items: Vec<Value> = page.items.iter().map(|a| a.to_view()).collect();
    Ok(Reply::json(200, json!({"items": items, "next": page.next})))
}

pub async fn get(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let account = api.accounts.get(param(request, "id"), caller).await?;
    Ok(Reply::json(200, account.to_view()))
}

pub async fn close(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let account = api.accounts.close(param(request, "id"), caller).await?;
    Ok(Reply::json(202, account.to_view()))
}
