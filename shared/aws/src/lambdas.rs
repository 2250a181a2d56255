//! The [`MemberLambdas`] port on AWS Lambda, in member accounts.
//!
//! Purser's budgets function assumes the member role
//! (`arn:{partition}:iam::{account}:role/{role}`, infra/member-account.yaml)
//! with STS, and calls Lambda with those credentials in each region Purser
//! manages: `ListFunctions` (paged), then `GetFunctionConcurrency` per
//! function (the listing does not carry it), and `PutFunctionConcurrency`
//! or `DeleteFunctionConcurrency` to change it. Both changes are
//! idempotent, so a retried evaluation may repeat them.
//!
//! Assumed credentials are kept per account until five minutes before they
//! expire: one throttle makes a call per function, and an `AssumeRole` for
//! each would only add latency and STS quota.
//!
//! Errors: a function that is gone is `NotFound`; a refused `AssumeRole`
//! or Lambda call, or credentials a region does not accept (a region not
//! enabled in the account), is `AccessDenied` naming the role; anything
//! else (throttling included) is `Unavailable`, for the caller to retry.

use async_trait::async_trait;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use purser_core::{LambdasError, MemberFunction, MemberLambdas};

use crate::member_role::{AssumeError, MemberRole, is_denial};

const SESSION_NAME: &str = "purser-budgets";

/// The Lambda functions of member accounts, through the member role.
#[derive(Debug)]
pub struct MemberLambdasClient {
    config: aws_config::SdkConfig,
    role: MemberRole,
    regions: Vec<String>,
}

impl MemberLambdasClient {
    /// `role` is the member role's name; `regions` where functions are
    /// managed (the configuration's own region when empty).
    pub fn from_config(config: &aws_config::SdkConfig, role: &str, regions: Vec<String>) -> Self {
        let regions = if regions.is_empty() {
            config
                .region()
                .map(|r| vec![r.to_string()])
                .unwrap_or_default()
        } else {
            regions
        };
        Self {
            config: config.clone(),
            role: MemberRole::new(config, role, SESSION_NAME),
            regions,
        }
    }

    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The member role's ARN in `account_id`, in the partition of the
    /// configuration's region.
    pub fn role_arn(&self, account_id: &str) -> String {
        self.role.arn(account_id)
    }

    fn denied(&self, account_id: &str, message: String) -> LambdasError {
        LambdasError::AccessDenied {
            account_id: account_id.to_owned(),
            role: self.role_arn(account_id),
            message,
        }
    }

    async fn credentials(&self, account_id: &str) -> Result<Credentials, LambdasError> {
        self.role
            .credentials(account_id)
            .await
            .map_err(|e| match e {
                AssumeError::Denied(message) => self.denied(account_id, message),
                AssumeError::Unavailable(message) => LambdasError::Unavailable(message),
            })
    }

    async fn client(
        &self,
        account_id: &str,
        region: &str,
    ) -> Result<aws_sdk_lambda::Client, LambdasError> {
        let credentials = self.credentials(account_id).await?;
        let config = aws_sdk_lambda::config::Builder::from(&self.config)
            .credentials_provider(credentials)
            .region(Region::new(region.to_owned()))
            .build();
        Ok(aws_sdk_lambda::Client::from_conf(config))
    }

    /// Maps a failed Lambda call (see the module doc).
    fn error<E, R>(
        &self,
        account_id: &str,
        function: &str,
        operation: &str,
        e: SdkError<E, R>,
    ) -> LambdasError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
        match code {
            "ResourceNotFoundException" => LambdasError::NotFound(function.to_owned()),
            code if is_denial(code) => {
                self.denied(account_id, format!("{operation}: {}", message(&e)))
            }
            _ => LambdasError::Unavailable(format!(
                "{operation} {function}: {}",
                DisplayErrorContext(&e)
            )),
        }
    }
}

fn message<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => s.message().unwrap_or_default().to_owned(),
        None => DisplayErrorContext(e).to_string(),
    }
}

#[async_trait]
impl MemberLambdas for MemberLambdasClient {
    async fn functions(&self, account_id: &str) -> Result<Vec<MemberFunction>, LambdasError> {
        let mut functions = Vec::new();
        for region in &self.regions {
            let client = self.client(account_id, region).await?;
            let mut names = Vec::new();
            let mut pages = client.list_functions().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.error(account_id, "", "ListFunctions", e))?;
                names.extend(
                    page.functions()
                        .iter()
                        .filter_map(|f| f.function_name().map(str::to_owned)),
                );
            }
            for name in names {
                let reserved = match client
                    .get_function_concurrency()
                    .function_name(&name)
                    .send()
                    .await
                {
                    Ok(out) => out.reserved_concurrent_executions(),
                    // Deleted since it was listed.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        continue;
                    }
                    Err(e) => {
                        return Err(self.error(account_id, &name, "GetFunctionConcurrency", e));
                    }
                };
                functions.push(MemberFunction {
                    account_id: account_id.to_owned(),
                    region: region.clone(),
                    name,
                    reserved_concurrency: reserved.and_then(|n| u32::try_from(n).ok()),
                });
            }
        }
        functions.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        Ok(functions)
    }

    async fn set_reserved_concurrency(
        &self,
        function: &MemberFunction,
        reserved: Option<u32>,
    ) -> Result<(), LambdasError> {
        let account_id = &function.account_id;
        let client = self.client(account_id, &function.region).await?;
        match reserved {
            Some(n) => {
                let n = i32::try_from(n).map_err(|_| {
                    LambdasError::Unavailable(format!(
                        "{n} is not a reserved concurrency Lambda takes"
                    ))
                })?;
                client
                    .put_function_concurrency()
                    .function_name(&function.name)
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .map_err(|e| {
                        self.error(account_id, &function.name, "PutFunctionConcurrency", e)
                    })?;
            }
            None => {
                client
                    .delete_function_concurrency()
                    .function_name(&function.name)
                    .send()
                    .await
                    .map_err(|e| {
                        self.error(account_id, &function.name, "DeleteFunctionConcurrency", e)
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_default_to_the_configuration_s_own() {
        let config = aws_config::SdkConfig::builder()
            .http_client(crate::http_client())
            .region(Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client =
            MemberLambdasClient::from_config(&config, "OrganizationAccountAccessRole", vec![]);
        assert_eq!(client.regions(), ["eu-west-1"]);
        assert_eq!(
            client.role_arn("210987654321"),
            "arn:aws:iam::210987654321:role/OrganizationAccountAccessRole"
        );
        let client = MemberLambdasClient::from_config(
            &config,
            "PurserMember",
            vec!["us-east-1".into(), "eu-central-1".into()],
        );
        assert_eq!(client.regions(), ["us-east-1", "eu-central-1"]);
    }
}
