//! `PUT /teams/{team}`, `GET /teams/{team}`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::Team;
use purser_core::accounts::Caller;

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
    let team = Team::from_json(name, &body).map_err(Reply::invalid)?;
    let team = api.accounts.put_team(team, caller).await?;
    let (_, open) = api.accounts.team(&team.name, caller).await?;
    Ok(Reply::json(200, team.to_view(open)))
}

pub async fn get(
    api: &Api,
    request: &ApiGatewayV2httpRequest,
    caller: &Caller,
) -> Result<Reply, Reply> {
    let (team, open) = api.accounts.team(&team(request)?, caller).await?;
    Ok(Reply::json(200, team.to_view(open)))
}
