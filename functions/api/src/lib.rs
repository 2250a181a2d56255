//! Purser's HTTP API, as one Lambda handler behind API Gateway's HTTP API
//! (payload format 2.0, IAM auth). The same handler serves `purser up`.
//!
//! `routes/` holds one module per resource; each parses what it is sent
//! into the domain's own types (`NewAccount`, `Team`, `Budget`,
//! `CostsRequest`, which refuse unknown fields and name the field at
//! fault) and hands them to a service. Every error has one shape,
//! `{"error": {"code", "message", "field"}}` (`reply.rs`), and nothing is
//! written for a refused request.

mod reply;
mod request;
mod routes;

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::accounts::{Accounts, Caller};
use purser_core::budgets::Budgets;
use purser_core::lake::Recorder;
use purser_core::spend::Costs;
use purser_core::{Handler, HandlerError, Ports, Unwired};
use serde_json::{Value, json};

use reply::Reply;
pub use request::MAX_BODY;

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
    /// The API on the composition root's ports: it records deployments into
    /// the lake and answers costs from its queries, so it needs both.
    pub fn from_ports(ports: &Ports) -> Result<Self, Unwired> {
        Ok(Self::new(
            ports.accounts(),
            ports.recorder()?,
            ports.budgets(),
            ports.costs()?,
            ports.settings.admins.clone(),
            ports.settings.region.clone(),
        ))
    }

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
        let call = routes::Call {
            api: self,
            request,
            caller: &caller,
        };
        match route {
            "POST /accounts" => routes::accounts::request(call).await,
            "GET /accounts" => routes::accounts::list(call).await,
            "GET /accounts/{id}" => routes::accounts::get(call).await,
            "DELETE /accounts/{id}" => routes::accounts::close(call).await,
            "PUT /teams/{team}" => routes::teams::put(call).await,
            "GET /teams/{team}" => routes::teams::get(call).await,
            "PUT /teams/{team}/budget" => routes::budgets::put(call).await,
            "GET /teams/{team}/budget" => routes::budgets::get(call).await,
            "GET /teams/{team}/costs" => routes::costs::get(call).await,
            "POST /deployments" => routes::deployments::record(call).await,
            _ => Err(Reply::error(
                404,
                "not_found",
                &format!("no route {route}"),
                None,
            )),
        }
    }
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
