//! The MemberResources port: the costly resources of member accounts the
//! runaway guard's `stop-resource` action stops (EC2 instances, SageMaker
//! real-time endpoints), and what EC2 and SageMaker say about a resource
//! whose launch Purser did not see (an instance's type, an endpoint's
//! instances: SageMaker's state change counts them but names no type).
//!
//! Purser acts through its member role, as `throttle-lambdas` does. A stop
//! is idempotent: stopping what is stopped (or gone) says so, not fails.
//!
//! Adapters: `MemberResourcesClient` (purser-aws, EC2 and SageMaker through
//! STS, its calls signed by hand) and `SimulatedResources` (purser-local,
//! what the member accounts' events told of; a stop puts AWS's state
//! change on the bus). Both run `purser_contract::member_resources`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::SagemakerInstances;

/// A resource Purser can stop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stoppable {
    /// `StopInstances`: the instance keeps its disks and can be started
    /// again. (Spot instances that cannot stop are terminated by EC2's own
    /// rules; Purser never terminates.)
    Ec2Instance { instance_id: String },
    /// `DeleteEndpoint`: a real-time endpoint bills by the instance-hour
    /// until it is deleted; SageMaker has no stop. Its endpoint
    /// configuration is kept, so `CreateEndpoint` with the name
    /// [`StopOutcome::Stopped::restore`] gives brings it back.
    SagemakerEndpoint { name: String },
}

/// One resource of a member account, in a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberResource {
    pub account_id: String,
    pub region: String,
    pub resource: Stoppable,
}

/// What a stop did. A second stop of an instance is `AlreadyStopped`; of an
/// endpoint, `AlreadyStopped` while SageMaker deletes it, `NotFound` once
/// it is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StopOutcome {
    /// It was running and is stopping now. `restore`: what brings it back
    /// (an endpoint's configuration name; `None` for an instance, which
    /// `StartInstances` starts again).
    Stopped { restore: Option<String> },
    /// It was stopped, stopping, terminated or deleted already.
    AlreadyStopped,
    /// No such resource in the account and region.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// Purser may not act in the account (`AssumeRole` refused, or the
    /// role may not make the call, or the region is not enabled): `role`
    /// is the member role to deploy there (infra/member-account.yaml) or
    /// to let Purser assume.
    #[error(
        "Purser may not manage {service} resources in account {account_id} through role {role}: {message}"
    )]
    AccessDenied {
        account_id: String,
        service: String,
        role: String,
        message: String,
    },
    /// The service refused the call for a reason of its own (its message:
    /// a Spot instance that cannot stop, an instance still `pending`), or
    /// what was asked is not an id, a name, an account or a region (refused
    /// before anything is asked of AWS).
    #[error("{service} refused: {message}")]
    Refused { service: String, message: String },
    /// Throttling, 5xx, timeouts, the network: for the caller to retry.
    #[error("{0} could not be reached")]
    Unavailable(String),
}

/// The stoppable resources of member accounts.
#[async_trait]
pub trait MemberResources: Send + Sync {
    /// Stops `resource`. Idempotent.
    async fn stop(&self, resource: &MemberResource) -> Result<StopOutcome, ResourcesError>;

    /// The instance type of an EC2 instance (`DescribeInstances`), `None`
    /// when there is no such instance.
    async fn instance_type(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<String>, ResourcesError>;

    /// The instances a SageMaker real-time endpoint runs on, one entry a
    /// production variant (shadow variants included, since they bill
    /// alike): its instance type (`DescribeEndpointConfig` of the
    /// configuration `DescribeEndpoint` names) and its current instance
    /// count (`CurrentInstanceCount`, else the configuration's
    /// `InitialInstanceCount`). Serverless variants run on no instances of
    /// their own and are left out, as are variants scaled to zero; a
    /// variant whose configuration is gone has `instance_type: None`.
    /// `None` when there is no such endpoint. `endpoint_name` is the
    /// endpoint's name, checked as [`MemberResources::stop`] checks it.
    async fn endpoint_instances(
        &self,
        account_id: &str,
        region: &str,
        endpoint_name: &str,
    ) -> Result<Option<Vec<SagemakerInstances>>, ResourcesError>;
}

/// An EC2 instance id: `i-` and 8 or 17 hexadecimal digits. Adapters
/// refuse any other before they ask anything.
pub fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A SageMaker name (an endpoint's, an endpoint configuration's):
/// `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`.
pub fn is_sagemaker_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.iter().filter(|b| b.is_ascii_alphanumeric()).count() <= 63
}
