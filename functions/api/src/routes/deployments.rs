//! `POST /deployments`: a CI deployment, straight into the lake.

use purser_core::lake::{Recorded, RecorderError};
use serde_json::json;

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::body_json;

pub async fn record(Call { api, request, .. }: Call<'_>) -> Answer {
    // The account is the caller's own, from its IAM identity, so no account
    // can report deployments for another.
    let account_id = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.account_id.clone())
        .ok_or_else(|| {
            Reply::error(403, "forbidden", "the request carries no AWS account", None)
        })?;
    let body = body_json(request)?;
    let now = api.accounts.now();
    let outcome = api
        .recorder
        .ci_deployment(&account_id, &api.region, &body, now)
        .await
        .map_err(|e| match e {
            RecorderError::Invalid(e) => Reply::bad(&e.field, &e.message),
            other => {
                tracing::error!(account_id = %account_id, error = %other, "recording a deployment failed");
                Reply::error(
                    503,
                    "unavailable",
                    "the deployment could not be recorded; it is safe to retry",
                    None,
                )
            }
        })?;
    let recorded = matches!(outcome, Recorded::Written { .. });
    Ok(Reply::json(
        202,
        json!({"recorded": recorded, "account_id": account_id}),
    ))
}
