//! The [`MemberResources`] port on EC2 and SageMaker, in member accounts.
//!
//! Purser assumes the member role (`arn:{partition}:iam::{account}:role/{role}`,
//! the throttle role of infra/member-account.yaml) with STS, as
//! [`MemberLambdasClient`](crate::MemberLambdasClient) does, and calls EC2
//! and SageMaker with those credentials in the resource's region:
//!
//! - an instance: `StopInstances` (EC2's Query protocol), whose answer
//!   says the state it was in; where EC2 refuses the state
//!   (`IncorrectInstanceState`), `DescribeInstances` tells why;
//! - an endpoint: `DescribeEndpoint` (its configuration's name, kept to
//!   bring it back, and whether it is being deleted), then `DeleteEndpoint`
//!   (SageMaker's JSON 1.1 protocol); SageMaker has no stop;
//! - an instance's type: `DescribeInstances`;
//! - an endpoint's instances: `DescribeEndpoint` (its configuration's
//!   name and each variant's current instance count), then
//!   `DescribeEndpointConfig` (each variant's instance type).
//!
//! The requests are signed by hand with `aws-sigv4` and sent through the
//! SDK's own connector (hyper 1 and rustls on ring, the stack every client
//! already builds): the aws-sdk-ec2 and aws-sdk-sagemaker crates would
//! compile for minutes each (aws-sdk-ec2 alone 3.5 minutes and a 1.46 GB
//! rlib in the dev profile on one core) for five calls. EC2's XML is read
//! with `aws-smithy-xml`, the SDK's own reader; no answer is read beyond
//! [`MAX_ANSWER`] bytes.
//!
//! Assumed credentials are kept per account until five minutes before they
//! expire (`member_role`). They are never logged, nor put in an error.
//!
//! Errors: an id that is not one (checked before any request) is
//! `Refused`; a refused `AssumeRole` or call (`AccessDenied`,
//! `UnauthorizedOperation`, `AuthFailure`, a region not enabled) is
//! `AccessDenied` naming the role; throttling, 5xx, timeouts and the
//! network are `Unavailable`, for the caller to retry; what else the
//! service refuses (a Spot instance that cannot stop, an instance still
//! `pending`, which can be stopped once it runs) is `Refused` with its
//! message.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::error::DisplayErrorContext;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use purser_core::ports::{SagemakerInstances, is_instance_id, is_sagemaker_name};
use purser_core::{MemberResource, MemberResources, ResourcesError, StopOutcome, Stoppable};

use crate::member_role::{AssumeError, MemberRole, is_denial};

const SESSION_NAME: &str = "purser-member-resources";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole call, answer read.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The most bytes of an answer read: one instance's description is a few
/// kilobytes, an endpoint's less.
pub const MAX_ANSWER: usize = 256 * 1024;
/// The most production variants (and as many shadow variants) an endpoint
/// has: SageMaker allows 10.
const MAX_VARIANTS: usize = 10;
/// The most instances one variant is read with (SageMaker's quotas are far
/// lower).
const MAX_VARIANT_INSTANCES: u64 = 1_000;
const EC2_VERSION: &str = "2016-11-15";

/// The two services, as signed and named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Ec2,
    Sagemaker,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Sagemaker => "sagemaker",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Ec2 => "EC2",
            Service::Sagemaker => "SageMaker",
        }
    }

    /// The variable naming this service's endpoint, as the SDK reads it.
    fn endpoint_var(self) -> &'static str {
        match self {
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
            Service::Sagemaker => "AWS_ENDPOINT_URL_SAGEMAKER",
        }
    }

    /// The regional endpoint of AWS.
    fn regional_endpoint(self, region: &str) -> String {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        match self {
            Service::Ec2 => format!("https://ec2.{region}.{suffix}/"),
            Service::Sagemaker => format!("https://api.sagemaker.{region}.{suffix}/"),
        }
    }
}

/// A service's answer: its status and body (at most [`MAX_ANSWER`] bytes).
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// An error a service answered with: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceError {
    status: u16,
    code: String,
    message: String,
}

/// EC2 instances and SageMaker endpoints of member accounts, through the
/// member role.
#[derive(Debug)]
pub struct MemberResourcesClient {
    role: MemberRole,
    /// Where EC2 and SageMaker are called instead of AWS (moto, in tests).
    endpoint: Option<String>,
    http: Connector,
}

impl MemberResourcesClient {
    /// `role` is the member role's name. The configuration's endpoint URL
    /// (`AWS_ENDPOINT_URL`), or `AWS_ENDPOINT_URL_EC2` and
    /// `AWS_ENDPOINT_URL_SAGEMAKER`, replace AWS's regional endpoints, as
    /// they do for the SDK's clients.
    pub fn from_config(config: &aws_config::SdkConfig, role: &str) -> Self {
        let http = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(CALL_TIMEOUT)
                    .build(),
            )
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build();
        Self {
            role: MemberRole::new(config, role, SESSION_NAME),
            endpoint: config.endpoint_url().map(str::to_owned),
            http,
        }
    }

    /// The member role's ARN in `account_id`, in the partition of the
    /// configuration's region.
    pub fn role_arn(&self, account_id: &str) -> String {
        self.role.arn(account_id)
    }

    fn endpoint(&self, service: Service, region: &str) -> String {
        std::env::var(service.endpoint_var())
            .ok()
            .filter(|e| !e.is_empty())
            .or_else(|| self.endpoint.clone())
            .unwrap_or_else(|| service.regional_endpoint(region))
    }

    fn denied(&self, account_id: &str, service: Service, message: String) -> ResourcesError {
        ResourcesError::AccessDenied {
            account_id: account_id.to_owned(),
            service: service.name().to_owned(),
            role: self.role_arn(account_id),
            message,
        }
    }

    async fn credentials(
        &self,
        account_id: &str,
        service: Service,
    ) -> Result<Credentials, ResourcesError> {
        self.role
            .credentials(account_id)
            .await
            .map_err(|e| match e {
                AssumeError::Denied(message) => self.denied(account_id, service, message),
                AssumeError::Unavailable(message) => ResourcesError::Unavailable(message),
            })
    }

    /// Signs and sends one POST of `body` to `service` in `region`, as the
    /// member role of `account_id`; the answer, whatever its status.
    async fn call(
        &self,
        account_id: &str,
        region: &str,
        service: Service,
        headers: &[(&'static str, &'static str)],
        body: String,
    ) -> Result<Answer, ResourcesError> {
        let credentials = self.credentials(account_id, service).await?;
        let endpoint = self.endpoint(service, region);
        let request = signed(
            &endpoint,
            service,
            region,
            headers,
            body,
            credentials,
            SystemTime::now(),
        )?;
        let unavailable = |what: String| {
            ResourcesError::Unavailable(format!("{} in {region}: {what}", service.name()))
        };
        let call = async {
            let response = self.http.call(request).await.map_err(|e| {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_io() {
                    "could not connect"
                } else {
                    "failed"
                };
                unavailable(format!("the call {kind}: {}", DisplayErrorContext(&e)))
            })?;
            let status = response.status().as_u16();
            let body = read_bounded(ByteStream::new(response.into_body()), MAX_ANSWER)
                .await
                .map_err(unavailable)?;
            Ok(Answer { status, body })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(unavailable(format!("no answer within {CALL_TIMEOUT:?}"))))
    }

    /// An EC2 Query call: `Action` with `params`.
    async fn ec2(
        &self,
        account_id: &str,
        region: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Result<Vec<u8>, ServiceError>, ResourcesError> {
        let mut body = format!("Action={action}&Version={EC2_VERSION}");
        for (k, v) in params {
            body.push('&');
            body.push_str(&form_encode(k));
            body.push('=');
            body.push_str(&form_encode(v));
        }
        let answer = self
            .call(
                account_id,
                region,
                Service::Ec2,
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body,
            )
            .await?;
        if (200..300).contains(&answer.status) {
            Ok(Ok(answer.body))
        } else {
            Ok(Err(ec2_error(answer.status, &answer.body)))
        }
    }

    /// A SageMaker JSON 1.1 call of `target` (`SageMaker.DescribeEndpoint`).
    async fn sagemaker(
        &self,
        account_id: &str,
        region: &str,
        target: &'static str,
        body: serde_json::Value,
    ) -> Result<Result<serde_json::Value, ServiceError>, ResourcesError> {
        let answer = self
            .call(
                account_id,
                region,
                Service::Sagemaker,
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", target),
                ],
                body.to_string(),
            )
            .await?;
        if (200..300).contains(&answer.status) {
            let value = if answer.body.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&answer.body).map_err(|e| {
                    ResourcesError::Unavailable(format!("SageMaker {target} answered no JSON: {e}"))
                })?
            };
            Ok(Ok(value))
        } else {
            Ok(Err(json_error(answer.status, &answer.body)))
        }
    }

    /// Maps what a service refused (see the module doc).
    fn refused(
        &self,
        account_id: &str,
        service: Service,
        operation: &str,
        e: ServiceError,
    ) -> ResourcesError {
        if is_denial(&e.code) {
            return self.denied(
                account_id,
                service,
                format!("{operation}: {} {}", e.code, e.message),
            );
        }
        if e.status >= 500 || e.status == 429 || is_throttling(&e.code) {
            return ResourcesError::Unavailable(format!(
                "{} {operation}: {} {} ({})",
                service.name(),
                e.code,
                e.message,
                e.status
            ));
        }
        ResourcesError::Refused {
            service: service.name().to_owned(),
            message: format!("{operation}: {} {}", e.code, e.message),
        }
    }

    /// The instance's description: its type and state, `None` when EC2
    /// knows no such instance.
    async fn describe_instance(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<Described>, ResourcesError> {
        match self
            .ec2(
                account_id,
                region,
                "DescribeInstances",
                &[("InstanceId.1", instance_id)],
            )
            .await?
        {
            Ok(body) => described(&body, instance_id).map_err(|e| {
                ResourcesError::Unavailable(format!("EC2 DescribeInstances answered {e}"))
            }),
            Err(e) if e.code == "InvalidInstanceID.NotFound" => Ok(None),
            Err(e) => Err(self.refused(account_id, Service::Ec2, "DescribeInstances", e)),
        }
    }

    async fn stop_instance(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Result<StopOutcome, ResourcesError> {
        match self
            .ec2(
                account_id,
                region,
                "StopInstances",
                &[("InstanceId.1", instance_id)],
            )
            .await?
        {
            Ok(body) => {
                let previous = previous_state(&body, instance_id).map_err(|e| {
                    ResourcesError::Unavailable(format!("EC2 StopInstances answered {e}"))
                })?;
                Ok(if is_stopped_state(&previous) {
                    StopOutcome::AlreadyStopped
                } else {
                    tracing::info!(
                        account_id,
                        region,
                        instance_id,
                        previous,
                        "instance stopped"
                    );
                    StopOutcome::Stopped { restore: None }
                })
            }
            Err(e) if e.code == "InvalidInstanceID.NotFound" => Ok(StopOutcome::NotFound),
            // Terminated, shutting down, or still pending: the state says.
            Err(e) if e.code == "IncorrectInstanceState" => {
                match self
                    .describe_instance(account_id, region, instance_id)
                    .await?
                {
                    None => Ok(StopOutcome::NotFound),
                    Some(d) if is_stopped_state(&d.state) => Ok(StopOutcome::AlreadyStopped),
                    Some(d) if d.state == "pending" => Err(ResourcesError::Refused {
                        service: Service::Ec2.name().into(),
                        message: format!(
                            "StopInstances: {instance_id} is pending: it can be stopped once it runs"
                        ),
                    }),
                    Some(_) => Err(self.refused(account_id, Service::Ec2, "StopInstances", e)),
                }
            }
            Err(e) => Err(self.refused(account_id, Service::Ec2, "StopInstances", e)),
        }
    }

    async fn delete_endpoint(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> Result<StopOutcome, ResourcesError> {
        let body = serde_json::json!({ "EndpointName": name });
        let described = match self
            .sagemaker(
                account_id,
                region,
                "SageMaker.DescribeEndpoint",
                body.clone(),
            )
            .await?
        {
            Ok(described) => described,
            Err(e) if is_missing_endpoint(&e) => return Ok(StopOutcome::NotFound),
            Err(e) => {
                return Err(self.refused(account_id, Service::Sagemaker, "DescribeEndpoint", e));
            }
        };
        let status = described
            .get("EndpointStatus")
            .and_then(|s| s.as_str())
            .unwrap_or("");
        if status == "Deleting" {
            return Ok(StopOutcome::AlreadyStopped);
        }
        let config = described
            .get("EndpointConfigName")
            .and_then(|s| s.as_str())
            .filter(|c| is_sagemaker_name(c))
            .map(str::to_owned);
        match self
            .sagemaker(account_id, region, "SageMaker.DeleteEndpoint", body)
            .await?
        {
            Ok(_) => {
                tracing::info!(account_id, region, endpoint = name, status, config = ?config,
                    "endpoint deleted (its configuration kept)");
                Ok(StopOutcome::Stopped { restore: config })
            }
            // Deleted since it was described.
            Err(e) if is_missing_endpoint(&e) => Ok(StopOutcome::AlreadyStopped),
            Err(e) => Err(self.refused(account_id, Service::Sagemaker, "DeleteEndpoint", e)),
        }
    }

    /// The endpoint's instances (see [`MemberResources::endpoint_instances`]),
    /// `None` when SageMaker knows no such endpoint.
    async fn describe_endpoint_instances(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<Vec<SagemakerInstances>>, ResourcesError> {
        let described = match self
            .sagemaker(
                account_id,
                region,
                "SageMaker.DescribeEndpoint",
                serde_json::json!({ "EndpointName": name }),
            )
            .await?
        {
            Ok(described) => described,
            Err(e) if is_missing_endpoint(&e) => return Ok(None),
            Err(e) => {
                return Err(self.refused(account_id, Service::Sagemaker, "DescribeEndpoint", e));
            }
        };
        let answered = |operation: &str, e: String| {
            ResourcesError::Unavailable(format!("SageMaker {operation} answered {e}"))
        };
        let Some(config) = described
            .get("EndpointConfigName")
            .and_then(|c| c.as_str())
            .filter(|c| is_sagemaker_name(c))
        else {
            return Err(answered(
                "DescribeEndpoint",
                "no endpoint configuration name".into(),
            ));
        };
        let configured = match self
            .sagemaker(
                account_id,
                region,
                "SageMaker.DescribeEndpointConfig",
                serde_json::json!({ "EndpointConfigName": config }),
            )
            .await?
        {
            Ok(configured) => Some(configured),
            // Deleted while the endpoint runs on it (SageMaker allows it).
            Err(e) if is_missing_endpoint_config(&e) => {
                tracing::warn!(
                    account_id,
                    region,
                    endpoint = name,
                    config,
                    "an endpoint's configuration is gone: its instance types are not known"
                );
                None
            }
            Err(e) => {
                return Err(self.refused(
                    account_id,
                    Service::Sagemaker,
                    "DescribeEndpointConfig",
                    e,
                ));
            }
        };
        endpoint_instances(&described, configured.as_ref())
            .map(Some)
            .map_err(|e| answered("DescribeEndpoint or DescribeEndpointConfig", e))
    }
}

#[async_trait]
impl MemberResources for MemberResourcesClient {
    async fn stop(&self, resource: &MemberResource) -> Result<StopOutcome, ResourcesError> {
        let (account_id, region) = (&resource.account_id, &resource.region);
        match &resource.resource {
            Stoppable::Ec2Instance { instance_id } => {
                check_place(Service::Ec2, account_id, region)?;
                check_instance_id(instance_id)?;
                self.stop_instance(account_id, region, instance_id).await
            }
            Stoppable::SagemakerEndpoint { name } => {
                check_place(Service::Sagemaker, account_id, region)?;
                check_endpoint_name(name)?;
                self.delete_endpoint(account_id, region, name).await
            }
        }
    }

    async fn instance_type(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<String>, ResourcesError> {
        check_place(Service::Ec2, account_id, region)?;
        check_instance_id(instance_id)?;
        Ok(self
            .describe_instance(account_id, region, instance_id)
            .await?
            .and_then(|d| d.instance_type))
    }

    async fn endpoint_instances(
        &self,
        account_id: &str,
        region: &str,
        endpoint_name: &str,
    ) -> Result<Option<Vec<SagemakerInstances>>, ResourcesError> {
        check_place(Service::Sagemaker, account_id, region)?;
        check_endpoint_name(endpoint_name)?;
        self.describe_endpoint_instances(account_id, region, endpoint_name)
            .await
    }
}

// ------------------------------------------------------------ requests

/// The signed POST of `body` to `endpoint`.
fn signed(
    endpoint: &str,
    service: Service,
    region: &str,
    headers: &[(&'static str, &'static str)],
    body: String,
    credentials: Credentials,
    time: SystemTime,
) -> Result<HttpRequest, ResourcesError> {
    let identity: Identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service.signing_name())
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| ResourcesError::Unavailable(format!("signing: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        endpoint,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| ResourcesError::Unavailable(format!("signing: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| ResourcesError::Unavailable(format!("signing: {e}")))?
        .into_parts();
    let mut request = HttpRequest::new(SdkBody::from(body));
    request
        .set_method("POST")
        .map_err(|e| ResourcesError::Unavailable(e.to_string()))?;
    request
        .set_uri(endpoint)
        .map_err(|_| ResourcesError::Unavailable(format!("{endpoint:?} is not an endpoint URL")))?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, *value);
    }
    for (name, value) in instructions.headers() {
        request
            .headers_mut()
            .insert(name.to_owned(), value.to_owned());
    }
    Ok(request)
}

/// `application/x-www-form-urlencoded`, for the few characters ids hold.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads `body` up to `limit` bytes; longer is an error, not a truncation.
async fn read_bounded(mut body: ByteStream, limit: usize) -> Result<Vec<u8>, String> {
    let mut read = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("reading the answer: {e}"))?;
        if read.len() + chunk.len() > limit {
            return Err(format!("an answer longer than {limit} bytes"));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}

// ------------------------------------------------------------ checks

fn check_place(service: Service, account_id: &str, region: &str) -> Result<(), ResourcesError> {
    let refused = |message: String| ResourcesError::Refused {
        service: service.name().into(),
        message,
    };
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(format!(
            "{:?} is not an account id",
            truncated(account_id)
        )));
    }
    if !purser_core::validation::is_region(region) {
        return Err(refused(format!("{:?} is not a region", truncated(region))));
    }
    Ok(())
}

fn check_instance_id(id: &str) -> Result<(), ResourcesError> {
    if is_instance_id(id) {
        Ok(())
    } else {
        Err(ResourcesError::Refused {
            service: Service::Ec2.name().into(),
            message: format!("{:?} is not an instance id", truncated(id)),
        })
    }
}

fn check_endpoint_name(name: &str) -> Result<(), ResourcesError> {
    if is_sagemaker_name(name) {
        Ok(())
    } else {
        Err(ResourcesError::Refused {
            service: Service::Sagemaker.name().into(),
            message: format!("{:?} is not an endpoint name", truncated(name)),
        })
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(80).collect()
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "ServiceUnavailable"
            | "Unavailable"
            | "InternalError"
            | "InternalFailure"
            | "InsufficientInstanceCapacity"
    )
}

fn is_stopped_state(state: &str) -> bool {
    matches!(
        state,
        "stopping" | "stopped" | "shutting-down" | "terminated"
    )
}

/// SageMaker's answer for an endpoint it does not have (a
/// `ValidationException`, "Could not find endpoint …").
fn is_missing_endpoint(e: &ServiceError) -> bool {
    e.code == "ValidationException" && e.message.starts_with("Could not find endpoint")
}

/// SageMaker's answer for an endpoint configuration it does not have.
fn is_missing_endpoint_config(e: &ServiceError) -> bool {
    e.code == "ValidationException"
        && e.message
            .starts_with("Could not find endpoint configuration")
}

// ------------------------------------------------------------ answers

/// An endpoint's instances from `DescribeEndpoint`'s answer (`endpoint`:
/// each variant's `CurrentInstanceCount`) and `DescribeEndpointConfig`'s
/// (`config`: each variant's `InstanceType` and `InitialInstanceCount`),
/// production and shadow variants alike, matched by `VariantName`.
/// Serverless variants (no `InstanceType`) and variants of no instances
/// are left out. Without the configuration (deleted), the endpoint's
/// counts, of no type.
fn endpoint_instances(
    endpoint: &serde_json::Value,
    config: Option<&serde_json::Value>,
) -> Result<Vec<SagemakerInstances>, String> {
    const LISTS: [&str; 2] = ["ProductionVariants", "ShadowProductionVariants"];
    fn variants<'a>(
        answer: &'a serde_json::Value,
        list: &str,
    ) -> Result<&'a [serde_json::Value], String> {
        match answer.get(list) {
            None | Some(serde_json::Value::Null) => Ok(&[]),
            Some(serde_json::Value::Array(v)) if v.len() <= MAX_VARIANTS => Ok(v),
            Some(serde_json::Value::Array(_)) => {
                Err(format!("{list} of more than {MAX_VARIANTS} variants"))
            }
            Some(_) => Err(format!("{list} that is not a list")),
        }
    }
    fn count(variant: &serde_json::Value, field: &str) -> Result<Option<u32>, String> {
        match variant.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .filter(|n| *n <= MAX_VARIANT_INSTANCES)
                .map(|n| Some(n as u32))
                .ok_or_else(|| format!("a {field} that is not 0 to {MAX_VARIANT_INSTANCES}")),
        }
    }
    fn name(variant: &serde_json::Value) -> Option<&str> {
        variant.get("VariantName").and_then(|n| n.as_str())
    }
    let mut instances = Vec::new();
    for list in LISTS {
        let running = variants(endpoint, list)?;
        let Some(config) = config else {
            for variant in running {
                if variant
                    .get("CurrentServerlessConfig")
                    .is_some_and(|c| !c.is_null())
                {
                    continue;
                }
                if let Some(n) = count(variant, "CurrentInstanceCount")?.filter(|n| *n > 0) {
                    instances.push(SagemakerInstances {
                        instance_type: None,
                        count: n,
                    });
                }
            }
            continue;
        };
        for variant in variants(config, list)? {
            let instance_type = match variant.get("InstanceType") {
                // Serverless: billed by request, not by the instance-hour.
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(t)) if (1..=64).contains(&t.len()) => t.clone(),
                Some(_) => return Err("an InstanceType that is not one".into()),
            };
            let current = match name(variant) {
                Some(n) => running
                    .iter()
                    .find(|r| name(r) == Some(n))
                    .map(|r| count(r, "CurrentInstanceCount"))
                    .transpose()?
                    .flatten(),
                None => None,
            };
            let n = match current {
                Some(n) => n,
                None => count(variant, "InitialInstanceCount")?.unwrap_or(0),
            };
            if n > 0 {
                instances.push(SagemakerInstances {
                    instance_type: Some(instance_type),
                    count: n,
                });
            }
        }
    }
    Ok(instances)
}

/// An instance as `DescribeInstances` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Described {
    instance_type: Option<String>,
    state: String,
}

fn xml(body: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(body).map_err(|_| "XML that is not UTF-8".to_string())
}

/// The text of a leaf element.
fn leaf(tag: &mut ScopedDecoder<'_, '_>) -> Result<String, String> {
    try_data(tag)
        .map(|t| t.chars().take(256).collect())
        .map_err(|e| format!("XML that cannot be read: {e}"))
}

/// The `name` of a state element (`<instanceState><code>16</code><name>running</name>`).
fn state_name(tag: &mut ScopedDecoder<'_, '_>) -> Result<String, String> {
    let mut name = String::new();
    while let Some(mut child) = tag.next_tag() {
        if child.start_el().local() == "name" {
            name = leaf(&mut child)?;
        }
    }
    Ok(name)
}

/// StopInstances' previous state of `instance_id`.
fn previous_state(body: &[u8], instance_id: &str) -> Result<String, String> {
    let text = xml(body)?;
    let mut doc = Document::new(text);
    let mut root = doc
        .root_element()
        .map_err(|e| format!("XML that cannot be read: {e}"))?;
    while let Some(mut set) = root.next_tag() {
        if set.start_el().local() != "instancesSet" {
            continue;
        }
        while let Some(mut item) = set.next_tag() {
            let (mut id, mut previous) = (String::new(), String::new());
            while let Some(mut field) = item.next_tag() {
                match field.start_el().local() {
                    "instanceId" => id = leaf(&mut field)?,
                    "previousState" => previous = state_name(&mut field)?,
                    _ => {}
                }
            }
            if id == instance_id && !previous.is_empty() {
                return Ok(previous);
            }
        }
    }
    Err(format!("no previous state of {instance_id}"))
}

/// DescribeInstances' description of `instance_id` (reservations, each
/// with its instances), `None` when it lists no such instance.
fn described(body: &[u8], instance_id: &str) -> Result<Option<Described>, String> {
    let text = xml(body)?;
    let mut doc = Document::new(text);
    let mut root = doc
        .root_element()
        .map_err(|e| format!("XML that cannot be read: {e}"))?;
    while let Some(mut reservations) = root.next_tag() {
        if reservations.start_el().local() != "reservationSet" {
            continue;
        }
        while let Some(mut reservation) = reservations.next_tag() {
            while let Some(mut instances) = reservation.next_tag() {
                if instances.start_el().local() != "instancesSet" {
                    continue;
                }
                while let Some(mut item) = instances.next_tag() {
                    let (mut id, mut instance_type, mut state) =
                        (String::new(), None, String::new());
                    while let Some(mut field) = item.next_tag() {
                        match field.start_el().local() {
                            "instanceId" => id = leaf(&mut field)?,
                            "instanceType" => instance_type = Some(leaf(&mut field)?),
                            "instanceState" => state = state_name(&mut field)?,
                            _ => {}
                        }
                    }
                    if id == instance_id {
                        return Ok(Some(Described {
                            instance_type: instance_type.filter(|t| !t.is_empty()),
                            state,
                        }));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// EC2's error: `<Response><Errors><Error><Code>…</Code><Message>…`.
fn ec2_error(status: u16, body: &[u8]) -> ServiceError {
    let mut error = ServiceError {
        status,
        code: String::new(),
        message: String::new(),
    };
    let read = || -> Result<(String, String), String> {
        let mut doc = Document::new(xml(body)?);
        let mut root = doc
            .root_element()
            .map_err(|e| format!("XML that cannot be read: {e}"))?;
        let (mut code, mut message) = (String::new(), String::new());
        while let Some(mut errors) = root.next_tag() {
            if errors.start_el().local() != "Errors" {
                continue;
            }
            while let Some(mut one) = errors.next_tag() {
                while let Some(mut field) = one.next_tag() {
                    match field.start_el().local() {
                        "Code" if code.is_empty() => code = leaf(&mut field)?,
                        "Message" if message.is_empty() => message = leaf(&mut field)?,
                        _ => {}
                    }
                }
            }
        }
        Ok((code, message))
    };
    match read() {
        Ok((code, message)) if !code.is_empty() => {
            error.code = code;
            error.message = message;
        }
        _ => error.code = format!("HTTP {status}"),
    }
    error
}

/// A JSON 1.1 error: `{"__type": "…#ValidationException", "message": "…"}`.
fn json_error(status: u16, body: &[u8]) -> ServiceError {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| value.get(*n).and_then(|v| v.as_str()))
            .unwrap_or("")
            .chars()
            .take(512)
            .collect::<String>()
    };
    let code = field(&["__type", "code"]);
    let code = code.rsplit('#').next().unwrap_or("").to_owned();
    ServiceError {
        status,
        code: if code.is_empty() {
            format!("HTTP {status}")
        } else {
            code
        },
        message: field(&["message", "Message"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_request() {
        assert!(check_instance_id("i-0123456789abcdef0").is_ok());
        assert!(check_instance_id("i-01234567").is_ok());
        for bad in [
            "i-012345",
            "i-0123456789abcdefg",
            "0123456789abcdef0",
            "i-01234567&Action=TerminateInstances",
        ] {
            assert!(
                matches!(check_instance_id(bad), Err(ResourcesError::Refused { .. })),
                "{bad}"
            );
        }
        assert!(is_sagemaker_name("a"));
        assert!(is_sagemaker_name("my--endpoint-1"));
        assert!(is_sagemaker_name(&"a".repeat(63)));
        assert!(!is_sagemaker_name(&"a".repeat(64)));
        for bad in ["", "-a", "a-", "a_b", "a b", "a/b", "ä"] {
            assert!(!is_sagemaker_name(bad), "{bad:?}");
        }
        assert!(check_place(Service::Ec2, "123456789012", "eu-west-1").is_ok());
        assert!(check_place(Service::Ec2, "12345678901", "eu-west-1").is_err());
        assert!(check_place(Service::Ec2, "123456789012", "eu-west-1/../x").is_err());
    }

    #[test]
    fn the_endpoint_is_regional_unless_overridden() {
        assert_eq!(
            Service::Ec2.regional_endpoint("eu-west-1"),
            "https://ec2.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            Service::Sagemaker.regional_endpoint("cn-north-1"),
            "https://api.sagemaker.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn requests_are_signed_for_the_service_and_region_without_showing_the_secret() {
        let credentials = Credentials::new("AKIDEXAMPLE", "s3cr3t", Some("tok".into()), None, "t");
        let request = signed(
            "https://ec2.eu-west-1.amazonaws.com/",
            Service::Ec2,
            "eu-west-1",
            &[("content-type", "application/x-www-form-urlencoded")],
            "Action=StopInstances".into(),
            credentials,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
        )
        .unwrap();
        let auth = request.headers().get("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/ec2/aws4_request"), "{auth}");
        assert!(!auth.contains("s3cr3t"));
        assert_eq!(request.headers().get("x-amz-security-token"), Some("tok"));
        assert!(request.headers().get("x-amz-date").is_some());
        assert_eq!(request.method(), "POST");
    }

    const STOPPED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<StopInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
    <instancesSet>
        <item>
            <instanceId>i-1234567890abcdef0</instanceId>
            <currentState><code>64</code><name>stopping</name></currentState>
            <previousState><code>16</code><name>running</name></previousState>
        </item>
    </instancesSet>
</StopInstancesResponse>"#;

    #[test]
    fn stop_instances_answers_the_previous_state() {
        assert_eq!(
            previous_state(STOPPED.as_bytes(), "i-1234567890abcdef0").unwrap(),
            "running"
        );
        assert!(previous_state(STOPPED.as_bytes(), "i-00000000").is_err());
        assert!(previous_state(b"<nope", "i-1234567890abcdef0").is_err());
    }

    #[test]
    fn describe_instances_gives_the_type_and_state_past_nested_items() {
        let body = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1234567890abcdef0</reservationId>
      <groupSet><item><groupId>sg-1</groupId></item></groupSet>
      <instancesSet>
        <item>
          <instanceId>i-00000001</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <instanceType>t3.micro</instanceType>
        </item>
        <item>
          <instanceId>i-1234567890abcdef0</instanceId>
          <imageId>ami-1</imageId>
          <instanceState><code>80</code><name>stopped</name></instanceState>
          <tagSet><item><key>instanceType</key><value>x</value></item></tagSet>
          <instanceType>g5.xlarge</instanceType>
          <blockDeviceMapping><item><deviceName>/dev/xvda</deviceName></item></blockDeviceMapping>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>"#;
        assert_eq!(
            described(body.as_bytes(), "i-1234567890abcdef0").unwrap(),
            Some(Described {
                instance_type: Some("g5.xlarge".into()),
                state: "stopped".into()
            })
        );
        assert_eq!(described(body.as_bytes(), "i-00000002").unwrap(), None);
        let empty = r#"<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>"#;
        assert_eq!(described(empty.as_bytes(), "i-00000002").unwrap(), None);
    }

    #[test]
    fn an_endpoint_s_instances_are_its_configuration_s_types_at_the_current_counts() {
        let endpoint = serde_json::json!({
            "EndpointName": "chat",
            "EndpointConfigName": "chat-v2",
            "EndpointStatus": "InService",
            "ProductionVariants": [
                {"VariantName": "main", "CurrentInstanceCount": 3, "DesiredInstanceCount": 3,
                 "CurrentWeight": 1.0},
                {"VariantName": "small", "CurrentServerlessConfig": {"MemorySizeInMB": 2048}},
                {"VariantName": "idle", "CurrentInstanceCount": 0}
            ],
            "ShadowProductionVariants": [{"VariantName": "shadow", "CurrentInstanceCount": 1}]
        });
        let config = serde_json::json!({
            "EndpointConfigName": "chat-v2",
            "ProductionVariants": [
                {"VariantName": "main", "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 2},
                {"VariantName": "small", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
                {"VariantName": "idle", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
                {"VariantName": "new", "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 1}
            ],
            "ShadowProductionVariants": [
                {"VariantName": "shadow", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2}
            ]
        });
        let of = |t: &str, count| SagemakerInstances {
            instance_type: Some(t.into()),
            count,
        };
        assert_eq!(
            endpoint_instances(&endpoint, Some(&config)).unwrap(),
            [
                of("ml.g5.2xlarge", 3),
                of("ml.c5.xlarge", 1),
                of("ml.g5.xlarge", 1)
            ],
            "the current counts; the initial one where the endpoint gives none; \
             serverless and idle variants left out"
        );
        assert_eq!(
            endpoint_instances(&endpoint, None).unwrap(),
            [
                SagemakerInstances {
                    instance_type: None,
                    count: 3
                },
                SagemakerInstances {
                    instance_type: None,
                    count: 1
                }
            ],
            "a configuration gone: the counts, of no type"
        );
        let mut huge = endpoint.clone();
        huge["ProductionVariants"][0]["CurrentInstanceCount"] = serde_json::json!(1e12);
        assert!(endpoint_instances(&huge, Some(&config)).is_err());
        let mut many = config.clone();
        many["ProductionVariants"] =
            serde_json::json!(vec![config["ProductionVariants"][0].clone(); 11]);
        assert!(endpoint_instances(&endpoint, Some(&many)).is_err());
        let mut odd = config.clone();
        odd["ProductionVariants"][0]["InstanceType"] = serde_json::json!(7);
        assert!(endpoint_instances(&endpoint, Some(&odd)).is_err());
        assert_eq!(
            endpoint_instances(&serde_json::json!({}), Some(&serde_json::json!({}))).unwrap(),
            []
        );
    }

    #[test]
    fn errors_are_read_from_either_protocol() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>ea966190</RequestID></Response>"#;
        let e = ec2_error(400, body.as_bytes());
        assert_eq!(e.code, "InvalidInstanceID.NotFound");
        assert_eq!(e.message, "The instance ID 'i-1' does not exist");
        assert_eq!(ec2_error(503, b"<html>").code, "HTTP 503");

        let e = json_error(
            400,
            br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Could not find endpoint \"x\"."}"#,
        );
        assert!(is_missing_endpoint(&e), "{e:?}");
        assert!(!is_missing_endpoint_config(&e), "{e:?}");
        let e = json_error(
            400,
            br#"{"__type":"ValidationException","message":"Could not find endpoint configuration \"arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/x\"."}"#,
        );
        assert!(is_missing_endpoint_config(&e), "{e:?}");
        let e = json_error(
            400,
            br#"{"__type":"ValidationException","Message":"Cannot update in-progress endpoint"}"#,
        );
        assert_eq!(e.code, "ValidationException");
        assert!(!is_missing_endpoint(&e));
        assert_eq!(json_error(500, b"").code, "HTTP 500");
    }

    #[test]
    fn refusals_map_to_the_port_s_errors() {
        let config = aws_config::SdkConfig::builder()
            .http_client(crate::http_client())
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = MemberResourcesClient::from_config(&config, "purser-lambda-throttle");
        let e = |status: u16, code: &str| ServiceError {
            status,
            code: code.into(),
            message: "m".into(),
        };
        for code in [
            "UnauthorizedOperation",
            "AccessDeniedException",
            "AuthFailure",
        ] {
            match client.refused("123456789012", Service::Ec2, "StopInstances", e(403, code)) {
                ResourcesError::AccessDenied { role, service, .. } => {
                    assert_eq!(
                        role,
                        "arn:aws:iam::123456789012:role/purser-lambda-throttle"
                    );
                    assert_eq!(service, "EC2");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        for (status, code) in [
            (503, "Unavailable"),
            (400, "RequestLimitExceeded"),
            (400, "ThrottlingException"),
            (500, "HTTP 500"),
        ] {
            assert!(
                matches!(
                    client.refused(
                        "123456789012",
                        Service::Sagemaker,
                        "DeleteEndpoint",
                        e(status, code)
                    ),
                    ResourcesError::Unavailable(_)
                ),
                "{code}"
            );
        }
        assert!(matches!(
            client.refused(
                "123456789012",
                Service::Ec2,
                "StopInstances",
                e(400, "UnsupportedOperation")
            ),
            ResourcesError::Refused { .. }
        ));
    }

    #[tokio::test]
    async fn answers_are_read_only_up_to_the_limit() {
        let small = ByteStream::from(vec![b'x'; 10]);
        assert_eq!(read_bounded(small, 10).await.unwrap().len(), 10);
        let large = ByteStream::from(vec![b'x'; 11]);
        assert!(read_bounded(large, 10).await.is_err());
    }
}
