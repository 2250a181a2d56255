//! The role Purser assumes in member accounts
//! (`arn:{partition}:iam::{account}:role/{role}`, infra/member-account.yaml)
//! with STS, shared by the adapters that act there (`MemberLambdasClient`,
//! `MemberResourcesClient`).
//!
//! Assumed credentials are kept per account until five minutes before they
//! expire: one throttle or stop makes a call per function or resource, and
//! an `AssumeRole` for each would only add latency and STS quota. They are
//! never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};

/// Credentials this close to their expiry are assumed anew.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Why no credentials: Purser may not assume the role there (STS's
/// message), or STS could not be reached or answered nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AssumeError {
    Denied(String),
    Unavailable(String),
}

/// One member role, its sessions by account.
#[derive(Debug)]
pub(crate) struct MemberRole {
    config: aws_config::SdkConfig,
    sts: aws_sdk_sts::Client,
    role: String,
    session_name: &'static str,
    credentials: Mutex<HashMap<String, Credentials>>,
}

impl MemberRole {
    /// `role` is the role's name; `session_name` says in CloudTrail which
    /// function of Purser's acted.
    pub(crate) fn new(
        config: &aws_config::SdkConfig,
        role: &str,
        session_name: &'static str,
    ) -> Self {
        Self {
            config: config.clone(),
            sts: aws_sdk_sts::Client::new(config),
            role: role.to_owned(),
            session_name,
            credentials: Mutex::new(HashMap::new()),
        }
    }

    /// The role's ARN in `account_id`, in the partition of the
    /// configuration's region.
    pub(crate) fn arn(&self, account_id: &str) -> String {
        let region = self.config.region().map(|r| r.as_ref()).unwrap_or("");
        format!(
            "arn:{}:iam::{account_id}:role/{}",
            partition(region),
            self.role
        )
    }

    /// The session's credentials in `account_id`: kept ones while they
    /// last, else a new `AssumeRole`.
    pub(crate) async fn credentials(&self, account_id: &str) -> Result<Credentials, AssumeError> {
        let cached = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account_id)
            .cloned();
        if let Some(c) = cached
            && c.expiry()
                .is_some_and(|e| e > SystemTime::now() + REFRESH_BEFORE)
        {
            return Ok(c);
        }
        let assumed = self
            .sts
            .assume_role()
            .role_arn(self.arn(account_id))
            .role_session_name(self.session_name)
            .send()
            .await
            .map_err(|e| {
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
                if is_denial(code) {
                    let message = e
                        .as_service_error()
                        .and_then(|s| s.message())
                        .unwrap_or(code);
                    AssumeError::Denied(format!("AssumeRole: {message}"))
                } else {
                    AssumeError::Unavailable(format!("STS AssumeRole: {}", DisplayErrorContext(&e)))
                }
            })?;
        let Some(c) = assumed.credentials() else {
            return Err(AssumeError::Unavailable(
                "STS AssumeRole returned no credentials".into(),
            ));
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            expiry,
            "purser-member-role",
        );
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account_id.to_owned(), credentials.clone());
        Ok(credentials)
    }
}

/// AWS's partition of a region.
pub(crate) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Codes that mean Purser may not act there: STS's, Lambda's, EC2's and
/// SageMaker's own, and the answer of a region not enabled in the account.
pub(crate) fn is_denial(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthFailure"
            | "OptInRequired"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "RegionDisabledException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_named_in_its_partition() {
        for (region, arn) in [
            (
                "us-east-1",
                "arn:aws:iam::210987654321:role/purser-lambda-throttle",
            ),
            (
                "cn-north-1",
                "arn:aws-cn:iam::210987654321:role/purser-lambda-throttle",
            ),
            (
                "us-gov-west-1",
                "arn:aws-us-gov:iam::210987654321:role/purser-lambda-throttle",
            ),
        ] {
            let config = aws_config::SdkConfig::builder()
                .http_client(crate::http_client())
                .region(aws_sdk_sts::config::Region::new(region))
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build();
            let role = MemberRole::new(&config, "purser-lambda-throttle", "purser-test");
            assert_eq!(role.arn("210987654321"), arn);
        }
    }
}
