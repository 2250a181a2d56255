//! `purser events redrive --queue-url`, the binary as an operator runs it,
//! against moto's SQS and Lambda: the deployed stack's dead-letter queue
//! redriven by invoking the functions that failed (shared/aws's contract
//! tests cover the adapter's cases; this covers the command: its flags,
//! output and exit code).

use std::collections::HashMap;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::{Value, json};

use crate::common::aws::{moto_in, unique};

const ACCOUNT: &str = "123456789012";

/// The binary with moto's credentials and nothing of the caller's AWS
/// setup (no profile, no queue from the environment).
fn purser() -> Command {
    let mut cmd = Command::cargo_bin("purser").unwrap();
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("PURSER_DLQ_URL");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// IAM `CreateRole` on moto, by hand (moto routes `/` by the credential
/// scope's service); the role's ARN.
async fn create_role(endpoint: &str) -> String {
    let name = unique("exec");
    let trust = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
    let _ = rustls::crypto::ring::default_provider().install_default();
    let reply = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={trust}"
        ))
        .send()
        .await
        .expect("CreateRole");
    let status = reply.status();
    assert!(
        status.is_success(),
        "CreateRole: {status} {}",
        reply.text().await.unwrap_or_default()
    );
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

async fn create_function(config: &SdkConfig, role: &str, name: &str) -> String {
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    aws_sdk_lambda::Client::new(config)
        .create_function()
        .function_name(name)
        .runtime(Runtime::Python312)
        .handler("index.handler")
        .role(role)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .expect("CreateFunction")
        .function_arn
        .expect("a function ARN")
}

/// A failed delivery as EventBridge dead-letters it.
async fn dead_letter(sqs: &aws_sdk_sqs::Client, queue_url: &str, target: &str) {
    let attribute = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    let event = json!({
        "version": "0", "id": unique("e"), "detail-type": "TeamSpendUpdated", "source": "purser",
        "account": ACCOUNT, "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"team": "ml"}
    });
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(event.to_string())
        .set_message_attributes(Some(HashMap::from([
            (
                "RULE_ARN".to_owned(),
                attribute(&format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/purser/r")),
            ),
            ("TARGET_ARN".to_owned(), attribute(target)),
            ("ERROR_CODE".to_owned(), attribute("SDK_CLIENT_ERROR")),
            (
                "ERROR_MESSAGE".to_owned(),
                attribute("Lambda was throttled"),
            ),
            ("RETRY_ATTEMPTS".to_owned(), attribute("8")),
        ])))
        .send()
        .await
        .expect("SendMessage");
}

#[tokio::test]
async fn redrive_on_aws_invokes_the_functions_and_lists_what_is_left() {
    let Some(config) = moto_in("us-east-1").await else {
        return;
    };
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("dlq"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .unwrap();
    let role = create_role(&endpoint).await;
    let budgets = unique("budgets");
    let budgets_arn = create_function(&config, &role, &budgets).await;
    let gone = unique("gone");
    let gone_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{gone}");
    dead_letter(&sqs, &queue_url, &budgets_arn).await;
    dead_letter(&sqs, &queue_url, &budgets_arn).await;
    dead_letter(&sqs, &queue_url, &gone_arn).await;

    // A look first: the three messages, left in the queue.
    for _ in 0..2 {
        let (code, out, err) = run(purser().args([
            "events",
            "dlq",
            "--queue-url",
            &queue_url,
            "--endpoint-url",
            &endpoint,
            "--output",
            "json",
        ]));
        assert_eq!(code, 0, "{out}\n{err}");
        let letters: Value = serde_json::from_str(&out).expect("JSON");
        let letters = letters.as_array().expect("an array");
        assert_eq!(letters.len(), 3, "{out}");
        assert_eq!(
            letters
                .iter()
                .filter(|l| l["target"] == json!(gone_arn))
                .count(),
            1,
            "{out}"
        );
        assert!(letters.iter().all(|l| l["origin"] == "rule"
            && l["attempts"] == "8"
            && l["event"]["detail-type"] == "TeamSpendUpdated"));
    }
    let (code, out, err) = run(purser()
        .args(["events", "dlq", "--aws", "--endpoint-url", &endpoint])
        .env("PURSER_DLQ_URL", &queue_url));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("FAILED IN"), "{out}");
    assert_eq!(out.matches(&budgets).count(), 2, "{out}");
    assert!(
        out.contains("SDK_CLIENT_ERROR: Lambda was throttled"),
        "{out}"
    );

    // With a target filter: the missing function's letter is left alone.
    let (code, out, err) = run(purser().args([
        "events",
        "redrive",
        "--queue-url",
        &queue_url,
        "--endpoint-url",
        &endpoint,
        "--target",
        &budgets,
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("redrove 2 dead letters of {budgets}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "1 other dead letter left alone (not of {budgets})"
        )),
        "{out}"
    );

    // Everything else, the queue from PURSER_DLQ_URL: the missing function
    // stays, with Lambda's answer, and the command fails.
    let (code, out, err) = run(purser()
        .args(["events", "redrive", "--aws", "--endpoint-url", &endpoint])
        .env("PURSER_DLQ_URL", &queue_url));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(!out.contains("redrove"), "{out}");
    assert!(out.contains("1 dead letter left in the queue:"), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains(&gone))
        .unwrap_or_else(|| panic!("no row for {gone}:\n{out}"));
    assert!(
        row.contains("SDK_CLIENT_ERROR: Lambda was throttled"),
        "{row}"
    );
    assert!(
        row.contains("Lambda refused the invocation: ResourceNotFoundException"),
        "{row}"
    );
    assert!(err.contains("1 dead letter could not be redriven"), "{err}");

    // For scripts: the same as JSON, and still there.
    let (code, out, err) = run(purser().args([
        "events",
        "redrive",
        "--queue-url",
        &queue_url,
        "--endpoint-url",
        &endpoint,
        "--output",
        "json",
    ]));
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["redriven"], json!([]));
    assert_eq!(report["left"][0]["target"], json!(gone_arn));
    assert_eq!(report["left"][0]["attempts"], json!("8"));
    assert!(
        report["left"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFoundException"),
        "{report}"
    );
}

#[tokio::test]
async fn redrive_on_an_empty_queue_says_so() {
    let Some(config) = moto_in("us-east-1").await else {
        return;
    };
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").unwrap();
    let queue_url = aws_sdk_sqs::Client::new(&config)
        .create_queue()
        .queue_name(unique("dlq"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .unwrap();
    let (code, out, err) = run(purser().args([
        "events",
        "redrive",
        "--queue-url",
        &queue_url,
        "--endpoint-url",
        &endpoint,
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, format!("no dead letters to redrive in {queue_url}\n"));
    let (code, out, err) = run(purser().args([
        "events",
        "dlq",
        "--queue-url",
        &queue_url,
        "--endpoint-url",
        &endpoint,
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.ends_with(&format!("no dead letters in {queue_url}\n")),
        "{out}"
    );
}

#[test]
fn redrive_on_aws_needs_a_queue() {
    let (code, _, err) = run(purser().args(["events", "redrive", "--aws"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("give --queue-url URL or set PURSER_DLQ_URL"),
        "{err}"
    );
    assert!(err.contains("DeadLetterQueueUrl"), "{err}");

    let (code, _, err) = run(purser().args(["events", "dlq", "--aws"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("give --queue-url URL or set PURSER_DLQ_URL"),
        "{err}"
    );

    let (code, _, err) = run(purser().args(["events", "redrive", "--queue-url", "purser-dlq"]));
    assert_eq!(code, 1);
    assert!(err.contains("--queue-url must be the queue's URL"), "{err}");
}

/// A message a fair queue gave up on, as moto moves it: moto 5.2.5 keeps its
/// body and message group but does not set `DeadLetterQueueSourceArn` (AWS
/// does, and `redrive` then sends it back to its queue: the contract tests
/// of shared/aws cover that), so here it names nowhere to go back to and is
/// listed, and left, with the reason, never deleted.
#[tokio::test]
async fn a_message_moto_moved_from_a_fair_queue_is_listed_and_left_with_the_reason() {
    let Some(config) = moto_in("us-east-1").await else {
        return;
    };
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dlq_url = sqs
        .create_queue()
        .queue_name(unique("dlq"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .unwrap();
    let dlq_arn = format!(
        "arn:aws:sqs:us-east-1:{ACCOUNT}:{}",
        dlq_url.rsplit('/').next().unwrap()
    );
    let fair_url = sqs
        .create_queue()
        .queue_name(unique("fair"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}).to_string(),
        )
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .unwrap();
    let event = json!({
        "version": "0", "id": unique("e"), "detail-type": "TeamSpendUpdated", "source": "purser",
        "account": ACCOUNT, "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"team": "ml"}
    });
    sqs.send_message()
        .queue_url(&fair_url)
        .message_body(event.to_string())
        .message_group_id("ml")
        .send()
        .await
        .expect("SendMessage");
    // The consumer fails it once (maxReceiveCount 1); the next receive
    // moves it to the dead-letter queue.
    for expected in [1, 0] {
        let got = sqs
            .receive_message()
            .queue_url(&fair_url)
            .visibility_timeout(0)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        assert_eq!(got.len(), expected);
    }

    let (code, out, err) = run(purser().args([
        "events",
        "dlq",
        "--queue-url",
        &dlq_url,
        "--endpoint-url",
        &endpoint,
        "--output",
        "json",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    let letters: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(letters[0]["event"], event, "{out}");

    let (code, out, err) = run(purser().args([
        "events",
        "redrive",
        "--queue-url",
        &dlq_url,
        "--endpoint-url",
        &endpoint,
    ]));
    // Nothing was tried and failed: nothing to fix but the message itself.
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 dead letter left in the queue:"), "{out}");
    assert!(out.contains("DeadLetterQueueSourceArn"), "{out}");
    let (_, out, _) = run(purser().args([
        "events",
        "dlq",
        "--queue-url",
        &dlq_url,
        "--endpoint-url",
        &endpoint,
        "--output",
        "json",
    ]));
    let letters: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        letters.as_array().map(Vec::len),
        Some(1),
        "still there: {out}"
    );
}
