//! Purser's HTTP API, as one Lambda handler behind API Gateway's HTTP API
//! (payload format 2.0, IAM auth). The same handler serves `purser up`.
//!
//! Every error has one shape, `{"error": {"code", "message", "field"}}`,
//! and nothing is written for a refused request.

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;
use purser_core::accounts::{AccountError, Accounts, Caller};
use purser_core::budgets::Budget;
use purser_core::budgets::{BudgetError, Budgets};
use purser_core::lake::{Recorded, Recorder, RecorderError};
use purser_core::spend::{Costs, CostsAsked, CostsError};
use purser_core::validation::ValidationError;
use purser_core::{Handler, HandlerError, IdempotencyKey, NewAccount, Team, TeamName};
use serde_json::{Value, json};

/// Bodies larger than this are refused before they are parsed.
pub const MAX_BODY: usize = 64 * 1024;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

pub struct Api {
    accounts: Accounts,
    recorder: Recorder,
    budgets: Budgets,
    /// What teams spent: the counters, settlements and the lake.
    costs: Costs,
    admins: Vec<String>,
    /// The region the API runs in: the region of deployments it records.
    region: String,
}

impl Api {
    /// `admins` are the IAM principal ARNs of platform admins.
    pub fn new(
        accounts: Accounts,
        recorder: Recorder,
        budgets: Budgets,
        costs: Costs,
        admins: Vec<String>,
        region: String,
    ) -> Self {
        Self {
            accounts,
            recorder,
            budgets,
            costs,
            admins,
            region,
        }
    }

    fn caller(&self, request: &ApiGatewayV2httpRequest) -> Option<Caller> {
        let arn = request
            .request_context
            .authorizer
            .as_ref()?
            .iam
            .as_ref()?
            .user_arn
            .clone()?;
        let mut caller = Caller { arn, admin: false };
        caller.admin = self.admins.iter().any(|a| caller.is(a));
        Some(caller)
    }

    async fn route(&self, request: &ApiGatewayV2httpRequest) -> Result<Reply, Reply> {
        let route = request.route_key.as_deref().unwrap_or_default();
        if route == "GET /health" {
            return Ok(Reply::json(
                200,
                json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"),
                       "time": purser_core::accounts::rfc3339(self.accounts.now())}),
            ));
        }
        let caller = self.caller(request).ok_or_else(|| {
            Reply::error(
                403,
                "forbidden",
                "the request carries no IAM identity",
                None,
            )
        })?;
        let param = |name: &str| {
            request
                .path_parameters
                .get(name)
                .map(String::as_str)
                .unwrap_or_default()
        };
        match route {
            "POST /accounts" => {
                let body = body_json(request)?;
                let input = NewAccount::from_json(&body).map_err(Reply::invalid)?;
                let key = idempotency_key(request, &caller, &input)?;
                let (account, new) = self.accounts.request(input, &caller, key).await?;
                tracing::info!(request_id = %account.id, team = %account.team, new, "account requested");
                Ok(Reply::json(202, account.to_view()))
            }
            "GET /accounts" => {
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
                        .ok_or_else(|| {
                            Reply::bad("limit", &format!("limit must be 1 to {MAX_PAGE}"))
                        })?,
                };
                let page = self
                    .accounts
                    .list(team.as_ref(), &caller, query.first("next"), limit)
                    .await?;
                let items: Vec<Value> = page.items.iter().map(|a| a.to_view()).collect();
                Ok(Reply::json(200, json!({"items": items, "next": page.next})))
            }
            "GET /accounts/{id}" => {
                let account = self.accounts.get(param("id"), &caller).await?;
                Ok(Reply::json(200, account.to_view()))
            }
            "DELETE /accounts/{id}" => {
                let account = self.accounts.close(param("id"), &caller).await?;
                Ok(Reply::json(202, account.to_view()))
            }
            "PUT /teams/{team}" => {
                let name = TeamName::parse(param("team")).map_err(|m| Reply::bad("team", &m))?;
                let body = body_json(request)?;
                let team = Team::from_json(name, &body).map_err(Reply::invalid)?;
                let team = self.accounts.put_team(team, &caller).await?;
                let (_, open) = self.accounts.team(&team.name, &caller).await?;
                Ok(Reply::json(200, team.to_view(open)))
            }
            "GET /teams/{team}" => {
                let name = TeamName::parse(param("team")).map_err(|m| Reply::bad("team", &m))?;
                let (team, open) = self.accounts.team(&name, &caller).await?;
                Ok(Reply::json(200, team.to_view(open)))
            }
            "PUT /teams/{team}/budget" => {
                let name = TeamName::parse(param("team")).map_err(|m| Reply::bad("team", &m))?;
                let body = body_json(request)?;
                let budget = Budget::from_json(name.clone(), &body, self.accounts.now())
                    .map_err(Reply::invalid)?;
                self.budgets.put(budget, &caller).await?;
                Ok(Reply::json(200, self.budgets.view(&name, &caller).await?))
            }
            "GET /teams/{team}/budget" => {
                let name = TeamName::parse(param("team")).map_err(|m| Reply::bad("team", &m))?;
                Ok(Reply::json(200, self.budgets.view(&name, &caller).await?))
            }
            "GET /teams/{team}/costs" => self.costs(request, param("team"), &caller).await,
            "POST /deployments" => {
                // The account is the caller's own, from its IAM identity, so
                // no account can report deployments for another.
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
                let now = self.accounts.now();
                let outcome = self
                    .recorder
                    .ci_deployment(&account_id, &self.region, &body, now)
                    .await
                    .map_err(|e| match e {
                        RecorderError::Invalid(e) => Reply::bad(&e.field, &e.message),
                        other => {
                            tracing::error!(error = %other, "recording a deployment failed");
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
            _ => Err(Reply::error(
                404,
                "not_found",
                &format!("no route {route}"),
                None,
            )),
        }
    }
}

impl Api {
    /// `GET /teams/{team}/costs?from=&to=&by=day|account|function`.
    async fn costs(
        &self,
        request: &ApiGatewayV2httpRequest,
        team: &str,
        caller: &Caller,
    ) -> Result<Reply, Reply> {
        let name = TeamName::parse(team).map_err(|m| Reply::bad("team", &m))?;
        let query = &request.query_string_parameters;
        let asked = CostsAsked {
            from: query.first("from"),
            to: query.first("to"),
            by: query.first("by"),
        };
        match self.costs.report(&name, asked, caller).await {
            Ok(report) => Ok(Reply::json(200, report)),
            Err(CostsError::Invalid(v)) => Err(Reply::invalid(v)),
            Err(CostsError::Forbidden(m)) => Err(Reply::error(403, "forbidden", &m, None)),
            Err(CostsError::Store(e)) => Err(Reply::from(AccountError::from(e))),
            Err(e @ CostsError::LakeUnavailable(_)) => {
                tracing::error!(team = %name, error = %e, "costs by function failed");
                Err(Reply::error(
                    503,
                    "unavailable",
                    "the lake could not answer now; try again in a minute",
                    None,
                ))
            }
            Err(e @ CostsError::LakeFailed(_)) => {
                // Athena's own words stay in the log: they name the
                // workgroup, buckets and SQL, which callers need not see.
                tracing::error!(team = %name, error = %e, "costs by function failed");
                Err(Reply::error(
                    500,
                    "internal",
                    "the lake query failed; the request id in this answer finds it in the log",
                    None,
                ))
            }
        }
    }
}

/// The body as JSON, refusing what is too large or not JSON.
fn body_json(request: &ApiGatewayV2httpRequest) -> Result<Value, Reply> {
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
fn idempotency_key(
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
    let fingerprint = json!([input.team, input.owner, input.purpose, input.lease_days]).to_string();
    Ok(Some(IdempotencyKey {
        scope: caller.arn.clone(),
        key: key.to_string(),
        fingerprint,
    }))
}

#[async_trait]
impl Handler for Api {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
            .map_err(|e| HandlerError::bad_payload(format!("not an HTTP API (v2) request: {e}")))?;
        let request_id = request
            .request_context
            .request_id
            .clone()
            .unwrap_or_default();
        let reply = match self.route(&request).await {
            Ok(reply) | Err(reply) => reply,
        };
        let reply = reply.with_request_id(&request_id);
        tracing::info!(
            request_id,
            route = request.route_key.as_deref().unwrap_or(""),
            status = reply.status,
            "request"
        );
        Ok(reply.into_value())
    }
}

/// An HTTP API (payload 2.0) response with a JSON body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Self {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message, "field": field}}),
        )
    }

    fn bad(field: &str, message: &str) -> Self {
        Self::error(400, "invalid_request", message, Some(field))
    }

    fn bad_body(message: &str) -> Self {
        Self::error(400, "invalid_request", message, None)
    }

    fn invalid(e: ValidationError) -> Self {
        Self::error(400, "invalid_request", &e.message, e.field.as_deref())
    }

    /// Server errors name the request id, so a user can report it.
    fn with_request_id(mut self, request_id: &str) -> Self {
        if self.status >= 500
            && let Some(error) = self.body.get_mut("error")
        {
            error["request_id"] = json!(request_id);
        }
        self
    }

    fn into_value(self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

impl From<BudgetError> for Reply {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::Invalid(v) => Reply::invalid(v),
            BudgetError::Accounts(a) => Reply::from(a),
            BudgetError::Forbidden(m) => Reply::error(403, "forbidden", &m, None),
            BudgetError::NotFound(m) => Reply::error(404, "not_found", &m, None),
            BudgetError::Conflict => Reply::error(409, "conflict", &e.to_string(), None),
            other => {
                tracing::error!(error = %other, "budget request failed");
                Reply::error(
                    503,
                    "unavailable",
                    "Purser could not complete the request; it is safe to retry",
                    None,
                )
            }
        }
    }
}

impl From<AccountError> for Reply {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(v) => Reply::invalid(v),
            AccountError::Forbidden(m) => Reply::error(403, "forbidden", &m, None),
            AccountError::NotFound(m) => Reply::error(404, "not_found", &m, None),
            AccountError::Conflict { code, message } => Reply::error(409, code, &message, None),
            AccountError::Store(purser_core::StoreError::BadPageToken(m)) => Reply::bad(
                "next",
                &format!("next is not a page token from this API: {m}"),
            ),
            other => {
                tracing::error!(error = %other, "request failed");
                Reply::error(
                    503,
                    "unavailable",
                    "Purser could not complete the request; it is safe to retry (with the same Idempotency-Key)",
                    None,
                )
            }
        }
    }
}
