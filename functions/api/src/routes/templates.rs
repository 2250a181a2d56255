//! `PUT /templates/{name}` (admins), `GET /templates`, `GET /templates/{name}`.

use purser_core::leases::{LeaseTemplate, TemplateName};
use serde_json::{Value, json};

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::{body_json, param};

fn name(call: &Call<'_>) -> Result<TemplateName, Reply> {
    TemplateName::parse(param(call.request, "name")).map_err(|m| Reply::bad("name", &m))
}

pub async fn put(call: Call<'_>) -> Answer {
    let name = name(&call)?;
    let body = body_json(call.request)?;
    let template =
        LeaseTemplate::from_json(name, &body, call.api.accounts.now()).map_err(Reply::invalid)?;
    let template = call
        .api
        .accounts
        .put_template(template, call.caller)
        .await?;
    Ok(Reply::json(200, template.to_view()))
}

pub async fn get(call: Call<'_>) -> Answer {
    let template = call.api.accounts.template(&name(&call)?).await?;
    Ok(Reply::json(200, template.to_view()))
}

pub async fn list(Call { api, .. }: Call<'_>) -> Answer {
    let items: Vec<Value> = api
        .accounts
        .templates()
        .await?
        .iter()
        .map(LeaseTemplate::to_view)
        .collect();
    Ok(Reply::json(200, json!({"items": items})))
}
