//! Purser's HTTP API, as one Lambda handler behind API Gateway's HTTP API
//! (payload format 2.0). Two HttpApis reach it: one with IAM auth, for the
//! CLI and automation, and the console's, with a JWT authorizer, which also
//! serves the web console's page (`console.rs`). The same handler serves
//! `purser up`.
//!
//! `routes/` holds one module per resource; each parses what it is sent
//! into the domain's own types (`NewAccount`, `Team`, `Budget`,
//! `CostsRequest`, which refuse unknown fields and name the field at
//! fault) and hands them to a service. Every error has one shape,
//! `{"error": {"code", "message", "field"}}` (`reply.rs`), and nothing is
//! written for a refused request.

pub mod console;
mod reply;
mod request;
mod routes;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::accounts::{Accounts, Caller};
use purser_core::budgets::Budgets;
use purser_core::lake::Recorder;
use purser_core::ports::DeadLetterCount;
use purser_core::spend::Costs;
use purser_core::{Handler, HandlerError, Ports, Unwired};
use serde_json::{Value, json};

pub use console::ConsoleSettings;
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
    /// How people sign into the console, and which of them are admins.
    console: ConsoleSettings,
    /// What waits in the dead-letter queue, for admins' `GET /teams`.
    dead_letters: Option<Arc<dyn DeadLetterCount>>,
}

impl Api {
    /// The API on the composition root's ports: it records deployments into
    /// the lake and answers costs from its queries, so it needs both.
    pub fn from_ports(ports: &Ports) -> Result<Self, Unwired> {
        let mut api = Self::new(
            ports.accounts(),
            ports.recorder()?,
            ports.budgets(),
            ports.costs()?,
            ports.settings.admins.clone(),
            ports.settings.region.clone(),
        );
        api.dead_letters = ports.dead_letters.clone();
        Ok(api)
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
            console: ConsoleSettings::local(),
            dead_letters: None,
        }
    }

    /// The console's sign-in (`ConsoleSettings::local()` until told).
    pub fn with_console(mut self, console: ConsoleSettings) -> Self {
        self.console = console;
        self
    }

    /// Who is calling: the IAM principal of a signed request, or the
    /// person a JWT names (the console's API). Admins by IAM principal
    /// (`AdminPrincipals`) or by the console's admin group.
    fn caller(&self, request: &ApiGatewayV2httpRequest) -> Result<Caller, Reply> {
        let authorizer = request.request_context.authorizer.as_ref();
        if let Some(jwt) = authorizer.and_then(|a| a.jwt.as_ref()) {
            return self
                .console
                .caller(&jwt.claims)
                .map_err(|why| Reply::error(401, "unauthorized", &why, None));
        }
        let arn = authorizer
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone())
            .ok_or_else(|| {
                Reply::error(
                    403,
                    "forbidden",
                    "the request carries no IAM identity or token",
                    None,
                )
            })?;
        let mut caller = Caller {
            principal: arn,
            admin: false,
        };
        caller.admin = self.admins.iter().any(|a| caller.is(a));
        Ok(caller)
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
        if route == "GET /" {
            return Ok(self.console.page());
        }
        if route == "GET /console/{asset}" {
            let asset = request::param(request, "asset");
            return self.console.asset(asset).ok_or_else(|| {
                Reply::error(
                    404,
                    "not_found",
                    &format!("the console has no {asset}"),
                    None,
                )
            });
        }
        let caller = self.caller(request)?;
        let call = routes::Call {
            api: self,
            request,
            caller: &caller,
        };
        match route {
            "POST /accounts" => routes::accounts::request(call).await,
            "GET /accounts" => routes::accounts::list(call).await,
            "GET /accounts/{id}" => routes::accounts::get(call).await,
            "GET /me" => routes::teams::me(call).await,
            "GET /teams" => routes::teams::list(call).await,
            "GET /teams/{team}/spend" => routes::costs::spend(call).await,
            "DELETE /accounts/{id}" => routes::accounts::close(call).await,
            "PUT /teams/{team}" => routes::teams::put(call).await,
            "GET /teams/{team}" => routes::teams::get(call).await,
            "PUT /teams/{team}/budget" => routes::budgets::put(call).await,
            "GET /teams/{team}/budget" => routes::budgets::get(call).await,
            "GET /teams/{team}/costs" => routes::costs::get(call).await,
            "POST /deployments" => routes::deployments::record(call).await,
            "PUT /templates/{name}" => routes::templates::put(call).await,
            "GET /templates/{name}" => routes::templates::get(call).await,
            "GET /templates" => routes::templates::list(call).await,
            "GET /approvals" => routes::approvals::list(call).await,
            "POST /accounts/{id}/approve" => routes::approvals::approve(call).await,
            "POST /accounts/{id}/deny" => routes::approvals::deny(call).await,
            "POST /accounts/{id}/extend" => routes::approvals::extend(call).await,
            "POST /accounts/{id}/release" => routes::pool::release(call).await,
            "GET /pool" => routes::pool::show(call).await,
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
