//! `PUT /teams/{team}/budget`, `GET /teams/{team}/budget`.

use purser_core::budgets::Budget;

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::{body_json, team};

pub async fn put(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let name = team(request)?;
    let body = body_json(request)?;
    let budget =
        Budget::from_json(name.clone(), &body, api.accounts.now()).map_err(Reply::invalid)?;
    api.budgets.put(budget, caller).await?;
    Ok(Reply::json(200, api.budgets.view(&name, caller).await?))
}

pub async fn get(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let name = team(request)?;
    Ok(Reply::json(200, api.budgets.view(&name, caller).await?))
}
