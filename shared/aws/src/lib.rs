//! Purser's ports on AWS: the [`EventBus`](purser_core::EventBus) on Amazon
//! EventBridge, the [`Store`](purser_core::Store) on Amazon DynamoDB, the
//! [`Organization`](purser_core::Organization) on AWS Organizations and the
//! [`LakeSink`](purser_core::LakeSink) on Amazon Data Firehose (with S3 for
//! its dead letters), and [`MemberLambdas`](purser_core::MemberLambdas) on
//! AWS Lambda in member accounts (through STS `AssumeRole`).
//!
//! The domain never sees the SDK: functions build these adapters once per
//! cold start from [`load_config`] and hand them to their handlers as ports.
//! Their contract tests run against moto's server (`tests/`); what moto
//! cannot show (throttling, partial transient failures, transaction
//! conflicts, Firehose refusing records, AWS's error shapes) is covered by
//! unit tests with fakes.

mod event_bus;
mod lake;
mod lambdas;
mod organization;
mod query;
mod store;

pub use event_bus::{EventBridgeBus, RetryPolicy};
pub use lake::{DeadLetterBucket, FirehoseSink, LakeStreams};
pub use lambdas::MemberLambdasClient;
pub use organization::OrganizationsClient;
pub use query::AthenaEngine;
pub use store::DynamoStore;

use aws_config::BehaviorVersion;

/// The SDK configuration of the environment: the Lambda role's credentials
/// and region in the cloud. It honours `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>`, which is how the same binaries talk to moto
/// or to `purser up` instead of AWS.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
