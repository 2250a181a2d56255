//! Contract of [`MemberLambdasClient`] against moto's STS and Lambda: the
//! adapter assumes the member role in an account of its own (moto acts in
//! the role's account with the credentials `AssumeRole` returns), lists the
//! functions there in every managed region with their reserved
//! concurrency, throttles them to 0 and gives them back what they had.
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
use purser_aws::MemberLambdasClient;
use purser_core::{LambdasError, MemberFunction, MemberLambdas};

const ROLE: &str = "OrganizationAccountAccessRole";
const HOME: &str = "us-east-1";
const AWAY: &str = "eu-west-1";

/// An account id no other test uses.
fn account_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

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
        let account_id = account_id();
        let assumed = aws_sdk_sts::Client::new(config)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account_id}:role/{ROLE}"))
            .role_session_name("team")
            .send()
            .await
            .expect("AssumeRole");
        let c = assumed.credentials().expect("credentials");
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "member",
        );
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

    fn function(&self, region: &str, name: &str) -> MemberFunction {
        MemberFunction {
            account_id: self.account_id.clone(),
            region: region.into(),
            name: name.into(),
            reserved_concurrency: None,
        }
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

#[tokio::test]
async fn lists_throttles_and_restores_the_functions_of_a_member_account() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let member = Member::new(&config).await;
    member.create_function(HOME, "api", Some(5)).await;
    member.create_function(HOME, "worker", None).await;
    member.create_function(AWAY, "etl", Some(2)).await;
    let adapter = MemberLambdasClient::from_config(&config, ROLE, vec![HOME.into(), AWAY.into()]);

    let functions = adapter.functions(&member.account_id).await.unwrap();
    let seen: Vec<(&str, &str, Option<u32>)> = functions
        .iter()
        .map(|f| (f.region.as_str(), f.name.as_str(), f.reserved_concurrency))
        .collect();
    assert_eq!(
        seen,
        [
            (AWAY, "etl", Some(2)),
            (HOME, "api", Some(5)),
            (HOME, "worker", None)
        ],
        "every managed region, by region then name"
    );
    assert!(functions.iter().all(|f| f.account_id == member.account_id));

    // Throttled: reserved concurrency 0, twice over (a retried evaluation).
    for f in &functions {
        adapter.set_reserved_concurrency(f, Some(0)).await.unwrap();
        adapter.set_reserved_concurrency(f, Some(0)).await.unwrap();
    }
    assert_eq!(member.reserved(HOME, "api").await, Some(0));
    assert_eq!(member.reserved(HOME, "worker").await, Some(0));
    assert_eq!(member.reserved(AWAY, "etl").await, Some(0));
    let listed = adapter.functions(&member.account_id).await.unwrap();
    assert!(listed.iter().all(|f| f.reserved_concurrency == Some(0)));

    // Restored: the previous values back, a setting that was not there
    // removed again (and removing it twice is no error).
    for f in &functions {
        adapter
            .set_reserved_concurrency(f, f.reserved_concurrency)
            .await
            .unwrap();
    }
    adapter
        .set_reserved_concurrency(&member.function(HOME, "worker"), None)
        .await
        .unwrap();
    assert_eq!(member.reserved(HOME, "api").await, Some(5));
    assert_eq!(member.reserved(HOME, "worker").await, None);
    assert_eq!(member.reserved(AWAY, "etl").await, Some(2));
    assert_eq!(
        adapter.functions(&member.account_id).await.unwrap(),
        functions
    );
}

#[tokio::test]
async fn acts_in_the_member_account_only() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let (one, other) = (Member::new(&config).await, Member::new(&config).await);
    one.create_function(HOME, "mine", None).await;
    let adapter = MemberLambdasClient::from_config(&config, ROLE, vec![HOME.into()]);
    assert_eq!(adapter.functions(&one.account_id).await.unwrap().len(), 1);
    assert!(
        adapter
            .functions(&other.account_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account's function of that name is not there.
    let err = adapter
        .set_reserved_concurrency(&other.function(HOME, "mine"), Some(0))
        .await
        .unwrap_err();
    assert_eq!(err, LambdasError::NotFound("mine".into()));
    assert_eq!(one.reserved(HOME, "mine").await, None);
}

#[tokio::test]
async fn a_vanished_function_is_not_found() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let member = Member::new(&config).await;
    member.create_function(HOME, "short-lived", Some(3)).await;
    let adapter = MemberLambdasClient::from_config(&config, ROLE, vec![HOME.into()]);
    let listed = adapter.functions(&member.account_id).await.unwrap();
    member
        .lambda(HOME)
        .delete_function()
        .function_name("short-lived")
        .send()
        .await
        .expect("DeleteFunction");
    for reserved in [Some(0), Some(3), None] {
        let err = adapter
            .set_reserved_concurrency(&listed[0], reserved)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LambdasError::NotFound("short-lived".into()),
            "{reserved:?}"
        );
    }
    assert!(
        adapter
            .functions(&member.account_id)
            .await
            .unwrap()
            .is_empty()
    );
}
