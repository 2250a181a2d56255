//! What every AWS contract test needs: an SDK configuration for the moto
//! server that `scripts/test` starts, and resource names of its own so tests
//! run in parallel against one server without resetting it.

use aws_config::{Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

/// The configuration for moto at `PURSER_MOTO_ENDPOINT`, or `None` (after
/// saying so) when `PURSER_SKIP_AWS_CONTRACT=1`. Without either the test
/// fails: a contract test that silently passes tests nothing.
pub async fn moto_config() -> Option<SdkConfig> {
    let endpoint = match std::env::var("PURSER_MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ if std::env::var("PURSER_SKIP_AWS_CONTRACT").as_deref() == Ok("1") => {
            eprintln!("skipped: PURSER_SKIP_AWS_CONTRACT=1 and no PURSER_MOTO_ENDPOINT");
            return None;
        }
        _ => panic!(
            "PURSER_MOTO_ENDPOINT is not set: run scripts/test (it starts moto), \
             or set PURSER_MOTO_ENDPOINT (PURSER_SKIP_AWS_CONTRACT=1 skips these tests)"
        ),
    };
    Some(
        purser_aws::config_loader()
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "purser-contract-tests",
            ))
            .load()
            .await,
    )
}

/// A resource name no other test uses (at most 40 characters with a short
/// prefix, within every service's limits).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A plain HTTP client for moto's own API. reqwest is built without a TLS
/// crypto provider of its own (the CLI's choice, unified into this build),
/// so the one every Purser binary uses is installed first.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// An account id no other test uses.
pub fn account_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

/// Credentials of `role` in member account `account_id`, as a team that
/// works there holds them (moto's STS grants any `AssumeRole`).
pub async fn member_credentials(
    config: &SdkConfig,
    account_id: &str,
    role: &str,
) -> aws_sdk_sts::config::Credentials {
    let assumed = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/{role}"))
        .role_session_name("team")
        .send()
        .await
        .expect("AssumeRole");
    let c = assumed.credentials().expect("credentials");
    aws_sdk_sts::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "member",
    )
}
