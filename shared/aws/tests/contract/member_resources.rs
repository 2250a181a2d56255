//! [`MemberResourcesClient`] against moto's STS, EC2 and SageMaker, through
//! the MemberResources port's contract (`purser_contract::member_resources`,
//! written once for every adapter): the adapter assumes the member role in
//! an account of its own (moto acts in the role's account with the
//! credentials `AssumeRole` returns), signs its own Query and JSON calls,
//! stops instances and deletes endpoints there.
//!
//! Each test plays member accounts with fresh ids, so tests run in parallel
//! against one server. The team launches instances (`RunInstances`) and
//! endpoints (`CreateModel`, `CreateEndpointConfig`, `CreateEndpoint`) and
//! reads them (`DescribeInstances`, `DescribeEndpoint`) with raw calls, as
//! the lambdas test makes its IAM role: moto reads the caller's account
//! from the access key and the service from the credential scope, and does
//! not check signatures, so no EC2 or SageMaker client is built for it.
//!
//! Where moto is not AWS: `AssumeRole` never refuses; a stopping instance
//! is stopped at once, and an endpoint deleted is gone at once (AWS:
//! `stopping`, then `stopped`; `Deleting`, then gone), which the contract
//! allows both of; `StopInstances` on a terminated instance answers as for
//! a stopped one (AWS: `IncorrectInstanceState`, which the adapter
//! resolves with `DescribeInstances`); SageMaker's instance types are
//! checked against an older list than AWS's.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_sqs::config::Credentials;
use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};

use purser_aws::MemberResourcesClient;
use purser_contract::member_resources::{Fixture, Observer};

const ROLE: &str = "purser-lambda-throttle";
const REGION: &str = "eu-west-1";

/// A member account as its team sees it: credentials of a role there.
struct Member {
    endpoint: String,
    account_id: String,
    credentials: Credentials,
}

impl Member {
    async fn new(config: &SdkConfig) -> Self {
        let account_id = crate::common::account_id();
        let credentials = crate::common::member_credentials(config, &account_id, "team").await;
        let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").expect("moto's endpoint");
        Self {
            endpoint,
            account_id,
            credentials,
        }
    }

    /// A raw call to `service` in `region` (moto checks no signature).
    async fn call(
        &self,
        service: &str,
        region: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> String {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0",
            self.credentials.access_key_id()
        );
        let mut request = crate::common::http()
            .post(format!("{}/", self.endpoint))
            .header("authorization", authorization)
            .header(
                "x-amz-security-token",
                self.credentials.session_token().unwrap_or_default(),
            );
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let reply = request.body(body).send().await.expect("a call to moto");
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        assert!(
            status.is_success() || status.as_u16() == 400,
            "{service}: {status} {text}"
        );
        text
    }

    async fn ec2(&self, region: &str, query: &str) -> String {
        self.call(
            "ec2",
            region,
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("{query}&Version=2016-11-15"),
        )
        .await
    }

    async fn sagemaker(&self, region: &str, target: &str, body: serde_json::Value) -> String {
        self.call(
            "sagemaker",
            region,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            body.to_string(),
        )
        .await
    }
}

/// The text at `path` (element names, each found at any depth below the
/// one before) of an XML document.
fn xml_text(xml: &str, path: &[&str]) -> Option<String> {
    fn find(tag: &mut ScopedDecoder<'_, '_>, path: &[&str]) -> Option<String> {
        while let Some(mut child) = tag.next_tag() {
            if child.start_el().local() == path[0] {
                if path.len() == 1 {
                    return try_data(&mut child).ok().map(|t| t.into_owned());
                }
                if let Some(found) = find(&mut child, &path[1..]) {
                    return Some(found);
                }
            } else if let Some(found) = find(&mut child, path) {
                return Some(found);
            }
        }
        None
    }
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().ok()?;
    find(&mut root, path)
}

/// Two member accounts, each acted in as its team.
struct Teams([Member; 2]);

impl Teams {
    fn member(&self, account_id: &str) -> &Member {
        self.0
            .iter()
            .find(|m| m.account_id == account_id)
            .unwrap_or_else(|| panic!("{account_id} is not a member of the fixture"))
    }
}

impl Observer for Teams {
    async fn run_instance(&self, account_id: &str, region: &str, instance_type: &str) -> String {
        let answer = self
            .member(account_id)
            .ec2(
                region,
                &format!(
                    "Action=RunInstances&ImageId=ami-12345678&MinCount=1&MaxCount=1&InstanceType={instance_type}"
                ),
            )
            .await;
        xml_text(&answer, &["instancesSet", "instanceId"])
            .unwrap_or_else(|| panic!("RunInstances: {answer}"))
    }

    async fn instance_state(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Option<String> {
        let answer = self
            .member(account_id)
            .ec2(
                region,
                &format!("Action=DescribeInstances&InstanceId.1={instance_id}"),
            )
            .await;
        if answer.contains("InvalidInstanceID.NotFound") {
            return None;
        }
        Some(
            xml_text(&answer, &["instanceState", "name"])
                .unwrap_or_else(|| panic!("DescribeInstances: {answer}")),
        )
    }

    async fn create_endpoint(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        instance_type: &str,
        count: u32,
    ) -> String {
        let member = self.member(account_id);
        let (model, config) = (format!("{name}-model"), format!("{name}-config"));
        member
            .sagemaker(
                region,
                "SageMaker.CreateModel",
                serde_json::json!({
                    "ModelName": model,
                    "ExecutionRoleArn": format!("arn:aws:iam::{account_id}:role/sagemaker"),
                    "PrimaryContainer": {"Image": format!("{account_id}.dkr.ecr.{region}.amazonaws.com/model:1")},
                }),
            )
            .await;
        member
            .sagemaker(
                region,
                "SageMaker.CreateEndpointConfig",
                serde_json::json!({
                    "EndpointConfigName": config,
                    "ProductionVariants": [{
                        "VariantName": "main",
                        "ModelName": model,
                        "InitialInstanceCount": count,
                        "InstanceType": instance_type,
                    }],
                }),
            )
            .await;
        let answer = member
            .sagemaker(
                region,
                "SageMaker.CreateEndpoint",
                serde_json::json!({"EndpointName": name, "EndpointConfigName": config}),
            )
            .await;
        assert!(answer.contains("EndpointArn"), "CreateEndpoint: {answer}");
        config
    }

    async fn endpoint_status(&self, account_id: &str, region: &str, name: &str) -> Option<String> {
        let answer = self
            .member(account_id)
            .sagemaker(
                region,
                "SageMaker.DescribeEndpoint",
                serde_json::json!({"EndpointName": name}),
            )
            .await;
        let value: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        value["EndpointStatus"].as_str().map(str::to_owned)
    }
}

async fn fresh() -> Option<Fixture<Teams>> {
    let config = crate::common::moto_config().await?;
    let members = [Member::new(&config).await, Member::new(&config).await];
    let accounts = [members[0].account_id.clone(), members[1].account_id.clone()];
    let adapter = MemberResourcesClient::from_config(&config, ROLE);
    Some(Fixture::new(
        Arc::new(adapter),
        Teams(members),
        accounts,
        REGION.into(),
    ))
}

purser_contract::member_resources_contract!(fresh);
