//! [`DeadLetterQueue`] against moto's SQS and Lambda: dead letters as
//! EventBridge (and Lambda's on-failure destination) put them in the
//! queue, redriven by invoking their function; and messages SQS moved there
//! from a queue with a redrive policy (the fair queues), sent back to it.
//!
//! Each test has its own queue and functions, so tests run in parallel on
//! one server without resetting it. moto's Lambda is left in its default
//! (docker) mode on purpose: switching it to `use_docker: false` is global
//! and swaps in another backend, whose functions are not the ones other
//! tests created, and whose `Invoke` succeeds even for a function that does
//! not exist. In the default mode, with no docker daemon, moto still
//! answers an `Event` invocation of an existing function with 202 (and a
//! log stream per invocation, which is how these tests count invocations),
//! and a missing function with `ResourceNotFoundException`, as AWS does.
//!
//! Where moto is not AWS: the payload a function receives is not visible
//! (the unit tests of `dead_letters.rs` check what is sent); `Invoke`
//! cannot be refused for permissions; a message moto moves to a dead-letter
//! queue lacks the `DeadLetterQueueSourceArn` AWS gives it (moto 5.2.5), so
//! the tests that send one back add it as AWS sets it, and one shows what
//! `redrive` does without it.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_sqs::types::{
    Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use purser_aws::{DeadLetter, DeadLetterQueue, LeftReason, Origin};
use serde_json::{Value, json};

use crate::common::{http, moto_config, unique};

/// moto's default account, the one the `testing` credentials act in.
const ACCOUNT: &str = "123456789012";

struct Fixture {
    config: SdkConfig,
    endpoint: String,
    queue_url: String,
    role: String,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let config = moto_config().await?;
        let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").expect("moto's endpoint");
        let queue_url = aws_sdk_sqs::Client::new(&config)
            .create_queue()
            .queue_name(unique("dlq"))
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("a queue URL");
        let mut fixture = Self {
            config,
            endpoint,
            queue_url,
            role: String::new(),
        };
        fixture.role = fixture.create_role(&unique("exec")).await;
        Some(fixture)
    }

    fn queue(&self) -> DeadLetterQueue {
        DeadLetterQueue::from_config(&self.config, &self.queue_url)
            .with_visibility_timeout(Duration::from_secs(30))
    }

    /// moto's own protocols, by hand: IAM `CreateRole` and CloudWatch
    /// Logs' `DescribeLogStreams` are not worth an SDK client each. moto
    /// routes a request to `/` by the service of its credential scope.
    async fn call(&self, service: &str, target: Option<&str>, body: String) -> (u16, Value) {
        let mut request = http().post(format!("{}/", self.endpoint)).header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        );
        request = match target {
            Some(target) => request
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.1"),
            None => request.header("content-type", "application/x-www-form-urlencoded"),
        };
        let reply = request.body(body).send().await.expect("moto");
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create_role(&self, name: &str) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let encoded: String = trust
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, reply) = self
            .call(
                "iam",
                None,
                format!(
                    "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={encoded}"
                ),
            )
            .await;
        assert_eq!(status, 200, "CreateRole: {reply}");
        format!("arn:aws:iam::{ACCOUNT}:role/{name}")
    }

    /// A function with a dummy package (moto never runs it); its ARN.
    async fn create_function(&self, name: &str) -> String {
        let mut zip = b"PK\x05\x06".to_vec();
        zip.extend([0u8; 18]);
        aws_sdk_lambda::Client::new(&self.config)
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .handler("index.handler")
            .role(&self.role)
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
            .await
            .expect("CreateFunction")
            .function_arn
            .expect("a function ARN")
    }

    /// How many times moto invoked the function: one log stream each.
    async fn invocations(&self, function: &str) -> usize {
        let (status, reply) = self
            .call(
                "logs",
                Some("Logs_20140328.DescribeLogStreams"),
                json!({"logGroupName": format!("/aws/lambda/{function}")}).to_string(),
            )
            .await;
        match status {
            200 => reply["logStreams"].as_array().map_or(0, Vec::len),
            // No log group: never invoked.
            400 if reply.to_string().contains("ResourceNotFoundException") => 0,
            _ => panic!("DescribeLogStreams: {status} {reply}"),
        }
    }

    /// A dead letter as EventBridge sends it, for `target`; its event.
    async fn dead_letter(&self, target: &str) -> Value {
        let event = json!({
            "version": "0", "id": unique("e"), "detail-type": "CreateAccountResult",
            "source": "aws.organizations", "account": ACCOUNT, "time": "2026-11-21T10:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {"state": "SUCCEEDED"}
        });
        let attribute = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .unwrap()
        };
        let attributes = HashMap::from([
            (
                "RULE_ARN".to_owned(),
                attribute(&format!(
                    "arn:aws:events:us-east-1:{ACCOUNT}:rule/purser-AccountEvents"
                )),
            ),
            ("TARGET_ARN".to_owned(), attribute(target)),
            ("ERROR_CODE".to_owned(), attribute("SDK_CLIENT_ERROR")),
            (
                "ERROR_MESSAGE".to_owned(),
                attribute("Unable to invoke Lambda function"),
            ),
            (
                "EXHAUSTED_RETRY_CONDITION".to_owned(),
                attribute("MaximumRetryAttempts"),
            ),
            ("RETRY_ATTEMPTS".to_owned(), attribute("8")),
        ]);
        self.send(event.to_string(), Some(attributes)).await;
        event
    }

    async fn send(&self, body: String, attributes: Option<HashMap<String, MessageAttributeValue>>) {
        aws_sdk_sqs::Client::new(&self.config)
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_message_attributes(attributes)
            .send()
            .await
            .expect("SendMessage");
    }

    /// Messages visible in the queue now (received, then made visible
    /// again by `list`).
    async fn visible(&self) -> usize {
        self.queue().list(100).await.expect("list").len()
    }
}

#[tokio::test]
async fn a_dead_letter_invokes_its_function_and_leaves_the_queue() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let name = unique("fn");
    let arn = f.create_function(&name).await;
    // More than a page of ten.
    for _ in 0..12 {
        f.dead_letter(&arn).await;
    }
    assert_eq!(f.visible().await, 12);

    let report = f.queue().redrive(None).await.expect("redrive");
    assert_eq!(report.redriven.len(), 12, "left: {:?}", report.left);
    assert!(report.left.is_empty());
    assert_eq!(report.failed(), 0);
    let first = &report.redriven[0];
    assert_eq!(first.target.as_deref(), Some(arn.as_str()));
    assert_eq!(
        first.origin,
        Origin::Rule {
            rule_arn: Some(format!(
                "arn:aws:events:us-east-1:{ACCOUNT}:rule/purser-AccountEvents"
            ))
        }
    );
    assert_eq!(
        first.error.as_deref(),
        Some("SDK_CLIENT_ERROR: Unable to invoke Lambda function")
    );
    assert_eq!(first.attempts.as_deref(), Some("8"));
    assert_eq!(f.invocations(&name).await, 12);
    assert_eq!(f.visible().await, 0);

    // Nothing left: a second redrive does nothing.
    let again = f.queue().redrive(None).await.expect("redrive");
    assert!(again.redriven.is_empty() && again.left.is_empty());
    assert_eq!(f.invocations(&name).await, 12);
}

#[tokio::test]
async fn a_handler_failure_record_invokes_its_function_with_the_request() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let name = unique("fn");
    let arn = f.create_function(&name).await;
    let record = json!({
        "version": "1.0",
        "timestamp": "2026-11-21T10:00:00.000Z",
        "requestContext": {
            "requestId": "r1", "functionArn": format!("{arn}:$LATEST"),
            "condition": "RetriesExhausted", "approximateInvokeCount": 3
        },
        "requestPayload": {"id": "e1", "source": "purser", "detail": {"team": "ml"}},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Error", "errorMessage": "the store is unavailable"}
    });
    f.send(record.to_string(), None).await;

    let report = f.queue().redrive(None).await.expect("redrive");
    assert_eq!(report.redriven.len(), 1, "left: {:?}", report.left);
    assert_eq!(report.redriven[0].origin, Origin::FunctionFailure);
    assert_eq!(
        report.redriven[0].error.as_deref(),
        Some("Error: the store is unavailable")
    );
    assert_eq!(f.invocations(&name).await, 1);
    assert_eq!(f.visible().await, 0);
}

#[tokio::test]
async fn what_cannot_be_redriven_stays_in_the_queue_with_its_reason() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let missing = format!(
        "arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}",
        unique("gone")
    );
    let queue_target = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{}", unique("q"));
    f.dead_letter(&missing).await;
    f.dead_letter(&queue_target).await;
    f.send("a message nobody sent".into(), None).await;

    let report = f.queue().redrive(None).await.expect("redrive");
    assert!(report.redriven.is_empty());
    assert_eq!(report.left.len(), 3);
    assert_eq!(report.failed(), 1);
    let reason = |target: Option<&str>| {
        report
            .left
            .iter()
            .find(|l| l.letter.target.as_deref() == target)
            .map(|l| l.reason.clone())
            .unwrap_or_else(|| panic!("{target:?} is not in {:?}", report.left))
    };
    match reason(Some(&missing)) {
        LeftReason::InvokeFailed { code, message } => {
            assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reason(Some(&queue_target)), LeftReason::NotLambda);
    assert_eq!(reason(None), LeftReason::NoTarget);
    // Made visible again at once, not after the visibility timeout.
    assert_eq!(f.visible().await, 3);
}

#[tokio::test]
async fn a_target_filter_leaves_the_other_targets_alone() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (a, b) = (unique("budgets"), unique("vend"));
    let (arn_a, arn_b) = (f.create_function(&a).await, f.create_function(&b).await);
    f.dead_letter(&arn_a).await;
    f.dead_letter(&arn_b).await;
    f.dead_letter(&arn_b).await;

    let report = f.queue().redrive(Some(&a)).await.expect("redrive");
    assert_eq!(report.redriven.len(), 1);
    assert_eq!(report.redriven[0].target.as_deref(), Some(arn_a.as_str()));
    assert_eq!(report.skipped, 2);
    assert!(report.left.is_empty());
    assert_eq!(f.invocations(&a).await, 1);
    assert_eq!(f.invocations(&b).await, 0);
    let left = f.queue().list(10).await.expect("list");
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|l| l.target.as_deref() == Some(arn_b.as_str()))
    );
}

#[tokio::test]
async fn an_empty_queue_has_nothing_to_redrive() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let report = f.queue().redrive(None).await.expect("redrive");
    assert!(report.redriven.is_empty() && report.left.is_empty());
    assert_eq!(report.skipped, 0);
    assert!(f.queue().list(10).await.expect("list").is_empty());
}

#[tokio::test]
async fn a_queue_that_does_not_exist_says_what_to_check() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let url = format!("{}/{ACCOUNT}/{}", f.endpoint, unique("nope"));
    let error = DeadLetterQueue::from_config(&f.config, &url)
        .redrive(None)
        .await
        .expect_err("no such queue");
    let text = error.to_string();
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("DeadLetterQueueUrl"), "{text}");
}

/// A source queue redriving to the fixture's dead-letter queue after
/// `max_receives`, as `InvocationsQueue` and `SpendQueue` do; its URL and ARN.
async fn source_queue(f: &Fixture, max_receives: u32) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    let dlq_arn = queue_arn(&sqs, &f.queue_url).await;
    let url = sqs
        .create_queue()
        .queue_name(unique("fair"))
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string(),
        )
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL");
    let arn = queue_arn(&sqs, &url).await;
    (url, arn)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue ARN")
}

/// Receives from `url` once, with its system attributes, leaving what it
/// receives visible again at once.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .visibility_timeout(0)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default()
}

/// A message sent to `url` in a message group, the way a rule with
/// `SqsParameters.MessageGroupId` sends it, then failed by its consumer
/// until SQS moves it to the dead-letter queue: its event.
async fn given_up(f: &Fixture, url: &str, max_receives: u32, group: Option<&str>) -> Value {
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    let event = json!({
        "version": "0", "id": unique("e"), "detail-type": "InvocationsReported",
        "source": "purser.telemetry", "account": "210987654321", "time": "2026-11-21T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"batch_id": unique("b")}
    });
    sqs.send_message()
        .queue_url(url)
        .message_body(event.to_string())
        .set_message_group_id(group.map(String::from))
        .send()
        .await
        .expect("SendMessage");
    for _ in 0..max_receives {
        assert_eq!(receive(&sqs, url).await.len(), 1, "the consumer's receive");
    }
    // The next receive finds it received maxReceiveCount times: SQS moves it.
    assert!(receive(&sqs, url).await.is_empty());
    event
}

/// The dead-letter queue's message, with `DeadLetterQueueSourceArn` as SQS
/// sets it on AWS. moto 5.2.5 moves the message (body, message group and
/// all) but does not set that attribute, so it is added here when missing.
async fn moved(f: &Fixture, source_arn: &str) -> Message {
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    let mut messages = receive(&sqs, &f.queue_url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = messages.remove(0);
    let mut attributes = message.attributes.clone().unwrap_or_default();
    attributes
        .entry(MessageSystemAttributeName::DeadLetterQueueSourceArn)
        .or_insert_with(|| source_arn.to_owned());
    Message::builder()
        .set_message_id(message.message_id)
        .set_receipt_handle(message.receipt_handle)
        .set_body(message.body)
        .set_message_attributes(message.message_attributes)
        .set_attributes(Some(attributes))
        .build()
}

#[tokio::test]
async fn a_message_its_queue_gave_up_on_goes_back_to_that_queue_in_its_group() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    let (url, arn) = source_queue(&f, 2).await;
    let event = given_up(&f, &url, 2, Some("210987654321")).await;

    let message = moved(&f, &arn).await;
    assert_eq!(message.body(), Some(event.to_string().as_str()));
    let letter = DeadLetter::from_message(&message);
    assert_eq!(
        letter.origin,
        Origin::Queue {
            message_group: Some("210987654321".into())
        }
    );
    assert_eq!(letter.target.as_deref(), Some(arn.as_str()));

    f.queue().redrive_letter(&letter).await.expect("redriven");
    // Back in its queue, as it was, in its tenant's group; gone from here.
    let back = receive(&sqs, &url).await;
    assert_eq!(back.len(), 1);
    let back_event: Value = serde_json::from_str(back[0].body().unwrap()).unwrap();
    assert_eq!(back_event, event);
    assert_eq!(
        back[0]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .map(String::as_str),
        Some("210987654321")
    );
    assert_eq!(f.visible().await, 0);
}

#[tokio::test]
async fn a_message_of_a_queue_without_groups_goes_back_without_one() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    let (url, arn) = source_queue(&f, 1).await;
    given_up(&f, &url, 1, None).await;
    let letter = DeadLetter::from_message(&moved(&f, &arn).await);
    assert_eq!(
        letter.origin,
        Origin::Queue {
            message_group: None
        }
    );
    f.queue().redrive_letter(&letter).await.expect("redriven");
    let back = receive(&sqs, &url).await;
    assert_eq!(back.len(), 1);
    assert!(
        back[0]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .is_none()
    );
    assert_eq!(f.visible().await, 0);
}

#[tokio::test]
async fn a_moved_message_whose_queue_is_gone_stays_with_the_reason() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (url, arn) = source_queue(&f, 1).await;
    given_up(&f, &url, 1, Some("ml")).await;
    let gone = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{}", unique("gone"));
    let letter = DeadLetter::from_message(&moved(&f, &gone).await);
    assert_eq!(letter.target.as_deref(), Some(gone.as_str()));
    assert_ne!(gone, arn);
    match f.queue().redrive_letter(&letter).await {
        Err(LeftReason::SendFailed { message, .. }) => assert!(!message.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.visible().await, 1, "still in the dead-letter queue");
}

/// What `redrive` does with a moved message as moto gives it, without
/// `DeadLetterQueueSourceArn` (on AWS it always has one): it names nothing
/// to redrive it to, so it is left in the queue, never lost.
#[tokio::test]
async fn a_moved_message_naming_no_source_is_left_in_the_queue() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let (url, _) = source_queue(&f, 1).await;
    given_up(&f, &url, 1, Some("ml")).await;
    let report = f.queue().redrive(None).await.expect("redrive");
    assert!(report.redriven.is_empty());
    assert_eq!(report.left.len(), 1);
    match &report.left[0].letter.origin {
        // moto 5.2.5: the attribute is missing.
        Origin::Unknown => assert_eq!(report.left[0].reason, LeftReason::NoTarget),
        other => {
            panic!("moto now sets DeadLetterQueueSourceArn ({other:?}): test redrive() with it")
        }
    }
    assert_eq!(f.visible().await, 1);
}

/// `SqsDeadLetterCount`, the console's count: every message of the queue,
/// visible or held by a reader (a redrive under way), and 0 for an empty
/// queue; a queue that does not exist is an error, not 0.
#[tokio::test]
async fn the_count_is_every_message_visible_or_held() {
    use purser_aws::SqsDeadLetterCount;
    use purser_core::ports::DeadLetterCount;
    let Some(f) = Fixture::new().await else {
        return;
    };
    let count = SqsDeadLetterCount::from_config(&f.config, &f.queue_url);
    assert_eq!(count.waiting().await.unwrap(), 0);
    let sqs = aws_sdk_sqs::Client::new(&f.config);
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&f.queue_url)
            .message_body(format!("{{\"n\": {i}}}"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(count.waiting().await.unwrap(), 3);
    // One received and not yet deleted is still waiting.
    let held = sqs
        .receive_message()
        .queue_url(&f.queue_url)
        .max_number_of_messages(1)
        .visibility_timeout(60)
        .send()
        .await
        .unwrap();
    assert_eq!(held.messages().len(), 1);
    assert_eq!(count.waiting().await.unwrap(), 3);

    let gone = SqsDeadLetterCount::from_config(
        &f.config,
        f.queue_url.replace(
            &f.queue_url[f.queue_url.rfind('/').unwrap() + 1..],
            "no-such-queue",
        ),
    );
    let err = gone.waiting().await.unwrap_err().to_string();
    assert!(err.contains("no-such-queue"), "{err}");
}
