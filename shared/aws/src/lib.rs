//! Purser's ports on AWS: the [`EventBus`](purser_core::EventBus) on Amazon
//! EventBridge, the [`Store`](purser_core::Store) on Amazon DynamoDB, the
//! [`Organization`](purser_core::Organization) on AWS Organizations and the
//! [`LakeSink`](purser_core::LakeSink) on Amazon Data Firehose (with S3 for
//! its dead letters), and [`MemberLambdas`](purser_core::MemberLambdas) on
//! AWS Lambda in member accounts (through STS `AssumeRole`), and
//! [`IdentityCenter`](purser_core::ports::IdentityCenter) on IAM Identity Center
//! (identity store and SSO admin). Beside the
//! ports, [`DeadLetterQueue`] redrives Purser's SQS dead-letter queue for
//! the CLI (`purser events redrive --queue-url`). [`AwsNotifier`] is the
//! [`Notifier`](purser_core::Notifier) on SES v2, SNS and chat webhooks, and
//! [`CloudFormationStackSets`] the [`Blueprints`](purser_core::ports::Blueprints)
//! of lease templates on CloudFormation StackSets.
//! [`MemberResourcesClient`] is [`MemberResources`](purser_core::MemberResources)
//! on EC2 and SageMaker in member accounts, its calls signed by hand.
//!
//! The domain never sees the SDK: functions build these adapters once per
//! cold start from [`load_config`] and hand them to their handlers as ports.
//! Their contract tests run against moto's server (`tests/`); what moto
//! cannot show (throttling, partial transient failures, transaction
//! conflicts, Firehose refusing records, AWS's error shapes) is covered by
//! unit tests with fakes.

#[cfg(feature = "blueprints")]
mod blueprints;
#[cfg(feature = "cleaner")]
mod cleaner;
#[cfg(feature = "dead-letter-count")]
mod dead_letter_count;
#[cfg(feature = "dead-letters")]
mod dead_letters;
#[cfg(feature = "event-bus")]
mod event_bus;
#[cfg(feature = "identity-center")]
mod identity_center;
#[cfg(feature = "lake")]
mod lake;
#[cfg(feature = "member-lambdas")]
mod lambdas;
#[cfg(feature = "lake")]
mod landing;
#[cfg(feature = "member-resources")]
mod member_resources;
#[cfg(any(feature = "member-lambdas", feature = "member-resources"))]
mod member_role;
#[cfg(feature = "notifier")]
mod notifier;
#[cfg(feature = "organization")]
mod organization;
#[cfg(feature = "query")]
mod query;
#[cfg(feature = "store")]
mod store;

#[cfg(feature = "blueprints")]
pub use blueprints::CloudFormationStackSets;
#[cfg(feature = "cleaner")]
pub use cleaner::{CodeBuildCleaner, MEMBER_ROLE_VAR, NUKE_CONFIG_VAR, TARGET_ACCOUNT_VAR};
#[cfg(feature = "dead-letter-count")]
pub use dead_letter_count::SqsDeadLetterCount;
#[cfg(feature = "dead-letters")]
pub use dead_letters::{
    DeadLetter, DeadLetterError, DeadLetterQueue, Left, LeftReason, Origin, RedriveReport,
};
#[cfg(feature = "event-bus")]
pub use event_bus::{EventBridgeBus, RetryPolicy};
#[cfg(feature = "identity-center")]
pub use identity_center::{ALREADY_ABSENT, IdentityCenterClient};
#[cfg(feature = "lake")]
pub use lake::{DeadLetterBucket, FirehoseSink, LakeStreams};
#[cfg(feature = "member-lambdas")]
pub use lambdas::MemberLambdasClient;
#[cfg(feature = "lake")]
pub use landing::S3Landing;
#[cfg(feature = "member-resources")]
pub use member_resources::MemberResourcesClient;
#[cfg(feature = "notifier")]
pub use notifier::{AwsNotifier, NotifierSettings};
#[cfg(feature = "organization")]
pub use organization::OrganizationsClient;
#[cfg(feature = "query")]
pub use query::AthenaEngine;
#[cfg(feature = "store")]
pub use store::DynamoStore;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The SDK configuration of the environment: the Lambda role's credentials
/// and region in the cloud. It honours `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>`, which is how the same binaries talk to moto
/// or to `purser up` instead of AWS.
pub async fn load_config() -> aws_config::SdkConfig {
    config_loader().load().await
}

/// The SDK's configuration loader with Purser's HTTP client; every
/// `aws_config` load in Purser (functions, CLI, tests) starts here.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// hyper 1 with rustls on ring (HTTPS, and plain HTTP for moto and `purser
/// up`). The SDK crates are built without their default client, which would
/// add aws-lc (a long C build and about a megabyte per function) and a
/// second, legacy hyper 0.14 stack.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
