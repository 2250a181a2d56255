//! The MemberLambdas port: the Lambda functions of member accounts, as the
//! budget action `throttle-lambdas` sees them. Reserved concurrency 0 is what
//! stops invocations that are already coming (an SCP only denies new API
//! calls; a function's triggers keep invoking it).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A Lambda function of a member account, with its reserved concurrency
/// (`None`: it has none, and draws on the account's unreserved pool).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberFunction {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub reserved_concurrency: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LambdasError {
    /// The function is gone (deleted since it was listed).
    #[error("no such function: {0}")]
    NotFound(String),
    /// Purser may not act in the account: `role` is the member role to
    /// deploy there (infra/member-account.yaml) or to let Purser assume.
    #[error(
        "Purser may not manage Lambda functions in account {account_id} through role {role}: {message}"
    )]
    AccessDenied {
        account_id: String,
        role: String,
        message: String,
    },
    #[error("AWS Lambda could not be reached: {0}")]
    Unavailable(String),
}

/// The Lambda functions of member accounts, in the regions Purser manages.
#[async_trait]
pub trait MemberLambdas: Send + Sync {
    /// Every function of `account_id`, with its reserved concurrency, in
    /// every region Purser manages; ordered by region, then name.
    async fn functions(&self, account_id: &str) -> Result<Vec<MemberFunction>, LambdasError>;

    /// Sets the reserved concurrency of `function` (its account, region and
    /// name; its `reserved_concurrency` is ignored) to `reserved`, or
    /// removes the setting for `None`. Idempotent.
    async fn set_reserved_concurrency(
        &self,
        function: &MemberFunction,
        reserved: Option<u32>,
    ) -> Result<(), LambdasError>;
}

/// A `MemberLambdas` for deployments that throttle nothing: no account has
/// functions. Budgets that ask for `throttle-lambdas` then only notify.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLambdas;

#[async_trait]
impl MemberLambdas for NoLambdas {
    async fn functions(&self, _account_id: &str) -> Result<Vec<MemberFunction>, LambdasError> {
        Ok(Vec::new())
    }

    async fn set_reserved_concurrency(
        &self,
        function: &MemberFunction,
        _reserved: Option<u32>,
    ) -> Result<(), LambdasError> {
        Err(LambdasError::NotFound(function.name.clone()))
    }
}
