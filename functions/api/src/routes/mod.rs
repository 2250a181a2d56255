//! One module per resource of infra/openapi.json; each route is an async
//! fn of a [`Call`] that answers a [`Reply`] either way.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::accounts::Caller;

use crate::Api;
use crate::reply::Reply;

pub mod accounts;
pub mod approvals;
pub mod budgets;
pub mod costs;
pub mod deployments;
pub mod pool;
pub mod teams;
pub mod templates;

/// One request to one route: the API's services, the request, and who
/// made it (already known by IAM).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub api: &'a Api,
    pub request: &'a ApiGatewayV2httpRequest,
    pub caller: &'a Caller,
}

/// A route's answer: `Err` for a refusal, which is a reply too.
pub type Answer = Result<Reply, Reply>;
