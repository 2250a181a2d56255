//! `POST /deployments`: a CI deployment, straight into the lake.

use purser_core::lake::{Recorded, RecorderError};
use serde_json::{Value, json};

use super::{Answer, Call};
use crate::reply::Reply;
use crate::request::body_json;

pub async fn record(
    Call {
        api,
        request,
        caller,
    }: Call<'_>,
) -> Answer {
    let caller_account = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.account_id.clone())
        .ok_or_else(|| {
            Reply::error(403, "forbidden", "the request carries no AWS account", None)
        })?;
    let mut body = body_json(request)?;
    let named = match body.as_object_mut().and_then(|b| b.remove("account_id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => {
            Some(id)
        }
        Some(_) => {
            return Err(Reply::bad(
                "account_id",
                "account_id must be a 12-digit AWS account id",
            ));
        }
    };
    // A member account reports its own deployments, and only those. A
    // caller in Purser's own account (HTTP APIs take no cross-account IAM
    // callers, so CI may assume a role there) names the member account,
    // and must be of the team it is lent to, or an admin.
    let own_account = request.request_context.account_id.as_deref();
    let account_id = if own_account == Some(caller_account.as_str()) {
        let named = named.ok_or_else(|| {
            Reply::bad(
                "account_id",
                "account_id is required from Purser's own account: name the member account the deployment went to",
            )
        })?;
        api.accounts.may_report_for(&named, caller).await?;
        named
    } else {
        if named.as_ref().is_some_and(|n| *n != caller_account) {
            return Err(Reply::error(
                403,
                "forbidden",
                "a member account reports only its own deployments",
                None,
            ));
        }
        caller_account
    };
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
