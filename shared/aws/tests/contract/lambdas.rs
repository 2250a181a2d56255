//! [`MemberLambdasClient`] against moto's STS and Lambda, through the
//! MemberLambdas port's contract (`purser_contract::member_lambdas`,
//! written once for every adapter): the adapter assumes the member role in
//! an account of its own (moto acts in the role's account with the
//! credentials `AssumeRole` returns), lists the functions there in every
//! managed region with their reserved concurrency, throttles them to 0 and
//! gives them back what they had.
//!
//! Each test plays member accounts with fresh ids, so tests run in parallel
//! against one server. The functions are created the way a team would, in
//! the member account; moto's `CreateFunction` wants an execution role that
//! exists in that account, made with a raw IAM `CreateRole` (moto reads the
//! caller's account from the access key and does not check signatures).
//!
//! Where moto is not AWS: `ListFunctions` returns every function in one page
//! (AWS: 50 a page, with `NextMarker`; the adapter uses the SDK's
//! paginator), `AssumeRole` never refuses (AWS: `AccessDenied` when the
//! member role is missing or does not trust Purser; the domain's handling
//! of `AccessDenied` is unit-tested in purser-core's budgets/throttle.rs), and no
//! account concurrency quota is enforced.

use aws_config::SdkConfig;
use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use std::sync::Arc;

use purser_aws::MemberLambdasClient;
use purser_contract::member_lambdas::{Fixture, Observer};

const ROLE: &str = "OrganizationAccountAccessRole";
const HOME: &str = "us-east-1";
const AWAY: &str = "eu-west-1";

/// A member account as its team sees it: credentials of the member role,
/// an execution role for functions, and functions created in it.
struct Member {
    config: SdkConfig,
    endpoint: String,
    account_id: String,
    credentials: Credentials,
    execution_role: String,
}

impl Member {
    async fn new(config: &SdkConfig) -> Self {
        let account_id = crate::common::account_id();
        let credentials = crate::common::member_credentials(config, &account_id, ROLE).await;
        let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").expect("moto's endpoint");
        let mut member = Self {
            config: config.clone(),
            endpoint,
            account_id,
            credentials,
            execution_role: String::new(),
        };
        member.execution_role = member.create_role(&crate::common::unique("exec")).await;
        member
    }

    /// IAM `CreateRole` in the member account (the query protocol, by hand:
    /// no IAM client is worth its build time for one call).
    async fn create_role(&self, name: &str) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
            encode(trust)
        );
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            self.credentials.access_key_id()
        );
        let reply = crate::common::http()
            .post(format!("{}/", self.endpoint))
            .header("authorization", authorization)
            .header(
                "x-amz-security-token",
                self.credentials.session_token().unwrap_or_default(),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("CreateRole");
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        assert!(status.is_success(), "CreateRole: {status} {text}");
        format!("arn:aws:iam::{}:role/{name}", self.account_id)
    }

    fn lambda(&self, region: &str) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&self.config)
                .credentials_provider(self.credentials.clone())
                .region(Region::new(region.to_owned()))
                .build(),
        )
    }

    async fn create_function(&self, region: &str, name: &str, reserved: Option<i32>) {
        // The smallest valid zip: an empty archive's end record.
        let mut zip = b"PK\x05\x06".to_vec();
        zip.extend([0u8; 18]);
        let lambda = self.lambda(region);
        lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .handler("index.handler")
            .role(&self.execution_role)
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
            .await
            .expect("CreateFunction");
        if let Some(n) = reserved {
            lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .expect("PutFunctionConcurrency");
        }
    }

    /// The reserved concurrency as the team would read it.
    async fn reserved(&self, region: &str, name: &str) -> Option<i32> {
        self.lambda(region)
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .expect("GetFunctionConcurrency")
            .reserved_concurrent_executions()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
    async fn create_function(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        reserved: Option<u32>,
    ) {
        let reserved = reserved.map(|n| i32::try_from(n).expect("a concurrency"));
        self.member(account_id)
            .create_function(region, name, reserved)
            .await;
    }

    async fn reserved(&self, account_id: &str, region: &str, name: &str) -> Option<u32> {
        self.member(account_id)
            .reserved(region, name)
            .await
            .map(|n| u32::try_from(n).expect("a concurrency of 0 or more"))
    }

    async fn delete_function(&self, account_id: &str, region: &str, name: &str) {
        self.member(account_id)
            .lambda(region)
            .delete_function()
            .function_name(name)
            .send()
            .await
            .expect("DeleteFunction");
    }
}

async fn fresh() -> Option<Fixture<Teams>> {
    let config = crate::common::moto_config().await?;
    let members = [Member::new(&config).await, Member::new(&config).await];
    let accounts = [members[0].account_id.clone(), members[1].account_id.clone()];
    let adapter = MemberLambdasClient::from_config(&config, ROLE, vec![HOME.into(), AWAY.into()]);
    Some(Fixture::new(
        Arc::new(adapter),
        Teams(members),
        accounts,
        [HOME.into(), AWAY.into()],
    ))
}

purser_contract::member_lambdas_contract!(fresh);
