//! `PUT /teams/{team}/budget`, `GET /teams/{team}/budget`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::accounts::Caller;
use purser_core::budgets::Budget;

use crate::Api;
use crate::reply::Reply;
use crate::request::{body_json, team};

pub async fn put(
    api: &Api,
    request: &ApiGatewayV2httpRequest,
    caller: &Caller,
) -> Result<Reply, Reply> {
    let name = team(request)?;
    let body = body_json(request)?;
    let budget =
        Budget::from_json(name.clone(), &body, api.accounts.now()).map_err(Reply::invalid)?;
    api.budgets.put(budget, caller).await?;
    Ok(Reply::json(200, api.budgets.view(&name, caller).await?))
}

pub async fn get(
    api: &Api,
    request: &ApiGatewayV2httpRequest,
    caller: &Caller,
) -> Result<Reply, Reply> {
    let name = team(request)?;
    Ok(Reply::json(200, api.budgets.view(&name, caller).await?))
}
