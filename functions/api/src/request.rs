//! What every route reads of a request: its body as JSON (bounded), its
//! path parameters, and the `Idempotency-Key` header.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;
use purser_core::accounts::Caller;
use purser_core::{IdempotencyKey, NewAccount, TeamName};
use serde_json::{Value, json};

use crate::reply::Reply;

/// Bodies larger than this are refused before they are parsed.
pub const MAX_BODY: usize = 64 * 1024;

/// A path parameter (empty when absent: the route's parser refuses it).
pub fn param<'a>(request: &'a ApiGatewayV2httpRequest, name: &str) -> &'a str {
    request
        .path_parameters
        .get(name)
        .map(String::as_str)
        .unwrap_or_default()
}

/// The `{team}` of the path, parsed.
pub fn team(request: &ApiGatewayV2httpRequest) -> Result<TeamName, Reply> {
    TeamName::parse(param(request, "team")).map_err(|m| Reply::bad("team", &m))
}

/// The body as JSON, refusing what is too large or not JSON.
pub fn body_json(request: &ApiGatewayV2httpRequest) -> Result<Value, Reply> {
    let raw = request.body.as_deref().unwrap_or("");
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| Reply::bad_body("the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY {
        return Err(Reply::bad_body(&format!(
            "the body is {} bytes; at most {MAX_BODY} are accepted",
            bytes.len()
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::bad_body("a JSON body is required"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Reply::bad_body(&format!("the body is not valid JSON: {e}")))
}

/// The `Idempotency-Key` header, scoped to the caller, with a fingerprint of
/// the validated request (so the same key with another body is caught).
pub fn idempotency_key(
    request: &ApiGatewayV2httpRequest,
    caller: &Caller,
    input: &NewAccount,
) -> Result<Option<IdempotencyKey>, Reply> {
    let Some(value) = request.headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Reply::bad(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 128 visible ASCII characters",
            )
        })?;
    let fingerprint = match &input.template {
        None => json!([input.team, input.owner, input.purpose, input.lease_days]),
        Some(template) => json!([
            input.team,
            input.owner,
            input.purpose,
            input.lease_days,
            template
        ]),
    }
    .to_string();
    Ok(Some(IdempotencyKey {
        scope: caller.principal.clone(),
        key: key.to_string(),
        fingerprint,
    }))
}
