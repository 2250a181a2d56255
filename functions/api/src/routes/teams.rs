//! `PUT /teams/{team}`, `GET /teams/{team}`.

use purser_core::Team;
use serde_json::{Value, json};

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
    let team = Team::from_json(name, &body).map_err(Reply::invalid)?;
    let team = api
        .accounts
        .put_team(team, Team::names_notify(&body), caller)
        .await?;
    let (_, open) = api.accounts.team(&team.name, caller).await?;
    Ok(Reply::json(200, team.to_view(open)))
}

pub async fn get(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let (team, open) = api.accounts.team(&team(request)?, caller).await?;
    Ok(Reply::json(200, team.to_view(open)))
}

/// `GET /me`: who the caller is, whether an admin, and their teams.
pub async fn me(Call { api, caller, .. }: Call<'_>) -> Answer {
    let teams = api.accounts.teams_of(caller).await?;
    Ok(Reply::json(
        200,
        json!({"principal": caller.principal, "admin": caller.admin, "teams": teams}),
    ))
}

/// `GET /teams`: the teams the caller may see, each with where it stands
/// against its budget; for admins, the dead letters waiting too (`null`
/// when they cannot be counted now: the page still shows the teams).
pub async fn list(Call { api, caller, .. }: Call<'_>) -> Answer {
    let items = api.budgets.overview(caller).await?;
    let mut answer = json!({"items": items});
    if caller.admin
        && let Some(dead_letters) = &api.dead_letters
    {
        answer["dead_letters"] = match dead_letters.waiting().await {
            Ok(waiting) => json!({"waiting": waiting}),
            Err(e) => {
                tracing::warn!(error = %e, "dead letters not counted");
                Value::Null
            }
        };
    }
    Ok(Reply::json(200, answer))
}
