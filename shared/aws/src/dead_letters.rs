//! Purser's dead-letter queue on Amazon SQS (`DeadLetterQueue` in
//! infra/template.yaml, the stack's `DeadLetterQueueUrl` output), read and
//! redriven by an operator with `purser events redrive --queue-url`.
//!
//! Three kinds of message land there. The first two are redriven by
//! invoking the function that failed asynchronously (`InvocationType=Event`,
//! as EventBridge and Lambda's own retries invoke it), the third by sending
//! it back to its queue; each is deleted once that is done:
//!
//! - **A rule's delivery that failed** after its retry policy: EventBridge
//!   sends the event itself as the body, with the message attributes
//!   `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`,
//!   `EXHAUSTED_RETRY_CONDITION` and `RETRY_ATTEMPTS`. The event is not put
//!   on the bus again: `PutEvents` refuses `aws.*` sources (Organizations'
//!   CloudTrail events), and every rule would receive it again, not only
//!   the target that failed.
//! - **A handler that failed** its asynchronous invocation and Lambda's two
//!   retries (the template's `EventInvokeConfig` on-failure destination):
//!   Lambda sends an invocation record, whose `requestContext.functionArn`
//!   is the function and `requestPayload` the event it was given.
//! - **A message a fair queue gave up on** (`InvocationsQueue`,
//!   `SpendQueue`): its consumer failed it `maxReceiveCount` times, and SQS
//!   moved it here as it was, the body the EventBridge event, with the system
//!   attribute `DeadLetterQueueSourceArn` naming the queue. It is sent back
//!   to that queue (with its `MessageGroupId`, the tenant, when it had one),
//!   so it reaches its function through the queue again, fairly; the queue
//!   is found beside this one (SQS only redrives within an account and
//!   region).
//!
//! A message whose target is not a Lambda function, whose invocation
//! Lambda refuses, or that its queue refuses, stays in the queue and is
//! reported with the reason; so does one the user's target filter leaves
//! out (a fair queue's message is of its queue: `--target InvocationsQueue`).
//! Handlers are idempotent, so a message redriven but not deleted (its
//! deletion failed) is only delivered again by the next redrive.
//!
//! Messages are received ten at a time and held invisible (the visibility
//! timeout, 120 s by default) while the redrive goes on, so a page never
//! returns one already handled; a message seen again (a redrive longer than
//! the timeout) is not handled twice. The redrive ends when a receive
//! returns nothing, or nothing not seen yet; what is left is made visible
//! again at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
};
use serde_json::Value;

/// Messages per `ReceiveMessage`, the most SQS gives.
const PAGE: i32 = 10;
/// How long a receive waits for messages: long polling asks every SQS
/// server, so an empty answer means an empty queue (short polling samples
/// a few and may answer empty while messages wait).
const WAIT_SECONDS: i32 = 1;

/// What a redrive could not do at all (a message it could not redrive is a
/// [`Left`] of the report instead).
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(
        "could not receive from the dead-letter queue {queue_url}: {message}; check the queue URL \
         (the stack's DeadLetterQueueUrl output), its region, and that your credentials may \
         sqs:ReceiveMessage on it"
    )]
    Receive { queue_url: String, message: String },
}

/// One message of the dead-letter queue, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    /// Where it came from.
    pub origin: Origin,
    /// What failed: the rule's target ARN, the function's ARN, or the ARN
    /// of the queue SQS moved it from.
    pub target: Option<String>,
    /// The error that dead-lettered it, as its sender said it.
    pub error: Option<String>,
    /// How many times it was tried before it was dead-lettered.
    pub attempts: Option<String>,
    /// What the target is invoked with: the event.
    pub payload: Option<String>,
    receipt_handle: String,
}

/// Who put a message in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An EventBridge rule's target, after the rule's retry policy.
    Rule { rule_arn: Option<String> },
    /// Lambda, for a handler that failed its asynchronous invocation and
    /// Lambda's retries (an on-failure destination record).
    FunctionFailure,
    /// SQS, for a message of a queue (`InvocationsQueue`, `SpendQueue`)
    /// received `maxReceiveCount` times without success; the target is the
    /// queue's ARN (its `DeadLetterQueueSourceArn`).
    Queue {
        /// The message's group in its queue (the tenant of a fair queue).
        message_group: Option<String>,
    },
    /// None of these: no `TARGET_ARN`, not an invocation record, not moved
    /// by SQS.
    Unknown,
}

/// What a redrive did.
#[derive(Debug, Default)]
pub struct RedriveReport {
    /// Invoked and deleted from the queue.
    pub redriven: Vec<DeadLetter>,
    /// Still in the queue, with the reason.
    pub left: Vec<Left>,
    /// Left alone: not of the target asked for.
    pub skipped: usize,
}

impl RedriveReport {
    /// Messages whose redrive was tried and failed (not those that cannot
    /// be redriven at all, or were left out by the filter).
    pub fn failed(&self) -> usize {
        self.left
            .iter()
            .filter(|l| {
                matches!(
                    l.reason,
                    LeftReason::InvokeFailed { .. }
                        | LeftReason::SendFailed { .. }
                        | LeftReason::NotDeleted { .. }
                )
            })
            .count()
    }
}

/// A message left in the queue, and why.
#[derive(Debug)]
pub struct Left {
    pub letter: DeadLetter,
    pub reason: LeftReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftReason {
    /// It names no target to invoke.
    NoTarget,
    /// Its target is not a Lambda function (only functions are redriven).
    NotLambda,
    /// It has no event to invoke the target with.
    NoPayload,
    /// Lambda refused the invocation.
    InvokeFailed {
        code: Option<String>,
        message: String,
    },
    /// Its queue (a fair queue it was moved from) refused it back.
    SendFailed {
        code: Option<String>,
        message: String,
    },
    /// Redriven, but the message could not be deleted: the next redrive
    /// delivers it again (handlers are idempotent).
    NotDeleted { message: String },
}

impl fmt::Display for LeftReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTarget => write!(
                f,
                "no TARGET_ARN attribute, not a Lambda invocation record and no \
                 DeadLetterQueueSourceArn: nothing to redrive it to"
            ),
            Self::NotLambda => write!(
                f,
                "the target is not a Lambda function: only functions are redriven; \
                 deliver it by hand, then delete the message"
            ),
            Self::NoPayload => write!(f, "the message has no event to redrive"),
            Self::InvokeFailed { code, message } => match code {
                Some(code) => write!(f, "Lambda refused the invocation: {code}: {message}"),
                None => write!(f, "Lambda refused the invocation: {message}"),
            },
            Self::SendFailed { code, message } => match code {
                Some(code) => write!(f, "its queue refused it back: {code}: {message}"),
                None => write!(f, "its queue refused it back: {message}"),
            },
            Self::NotDeleted { message } => write!(
                f,
                "redriven, but not deleted from the queue ({message}): \
                 the next redrive delivers it again"
            ),
        }
    }
}

/// Purser's dead-letter queue, and Lambda to invoke what failed.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    queue_url: String,
    visibility_timeout: Duration,
}

impl DeadLetterQueue {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        lambda: aws_sdk_lambda::Client,
        queue_url: impl Into<String>,
    ) -> Self {
        Self {
            sqs,
            lambda,
            queue_url: queue_url.into(),
            visibility_timeout: Duration::from_secs(120),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(
            aws_sdk_sqs::Client::new(config),
            aws_sdk_lambda::Client::new(config),
            queue_url,
        )
    }

    /// How long received messages stay hidden from other readers while a
    /// redrive or a listing goes on (120 s by default); what is left is
    /// made visible again at the end, or after this if the CLI is stopped.
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Up to `limit` messages of the queue, left in it (visible again when
    /// this returns).
    pub async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let mut seen = HashSet::new();
        let mut held = Vec::new();
        let mut letters = Vec::new();
        let result = async {
            while letters.len() < limit {
                let page = self.receive().await?;
                let mut new = 0;
                for message in page {
                    let letter = parse(&message);
                    held.push(letter.receipt_handle.clone());
                    if seen.insert(letter.message_id.clone()) && letters.len() < limit {
                        new += 1;
                        letters.push(letter);
                    }
                }
                if new == 0 {
                    break;
                }
            }
            Ok(())
        }
        .await;
        self.release(&held).await;
        result.map(|()| letters)
    }

    /// Invokes the target of every message (of the targets whose ARN
    /// contains `target`, when given) with its event, asynchronously, or
    /// sends a fair queue's message back to its queue, and deletes the
    /// messages whose invocation Lambda (or whose queue) accepted.
    #[tracing::instrument(skip(self), fields(queue_url = %self.queue_url))]
    pub async fn redrive(&self, target: Option<&str>) -> Result<RedriveReport, DeadLetterError> {
        let mut report = RedriveReport::default();
        let mut seen = HashSet::new();
        let mut held = Vec::new();
        let result = async {
            loop {
                let page = self.receive().await?;
                let mut new = 0;
                for message in page {
                    let letter = parse(&message);
                    if !seen.insert(letter.message_id.clone()) {
                        // Seen before, visible again: the redrive outlived
                        // the visibility timeout.
                        held.push(letter.receipt_handle);
                        continue;
                    }
                    new += 1;
                    if let Some(wanted) = target
                        && !letter.target.as_deref().is_some_and(|t| t.contains(wanted))
                    {
                        report.skipped += 1;
                        held.push(letter.receipt_handle);
                        continue;
                    }
                    match self.redrive_letter(&letter).await {
                        Ok(()) => {
                            tracing::info!(
                                message_id = %letter.message_id,
                                target = letter.target.as_deref().unwrap_or_default(),
                                "dead letter redriven"
                            );
                            report.redriven.push(letter);
                        }
                        Err(reason) => {
                            // The report carries it to the caller, who
                            // says it (the CLI, as a table).
                            tracing::info!(
                                message_id = %letter.message_id,
                                target = letter.target.as_deref().unwrap_or_default(),
                                %reason,
                                "dead letter left in the queue"
                            );
                            if !matches!(reason, LeftReason::NotDeleted { .. }) {
                                held.push(letter.receipt_handle.clone());
                            }
                            report.left.push(Left { letter, reason });
                        }
                    }
                }
                if new == 0 {
                    return Ok(());
                }
            }
        }
        .await;
        self.release(&held).await;
        result.map(|()| report)
    }

    /// Redrives one message received from this queue, as [`Self::redrive`]
    /// does each: its function invoked, or the message sent back to its
    /// fair queue; then deleted from this queue.
    pub async fn redrive_letter(&self, letter: &DeadLetter) -> Result<(), LeftReason> {
        let Some(target) = &letter.target else {
            return Err(LeftReason::NoTarget);
        };
        if let Origin::Queue { message_group } = &letter.origin {
            let Some(body) = &letter.payload else {
                return Err(LeftReason::NoPayload);
            };
            self.send_back(target, body, message_group.as_deref())
                .await?;
            return self.delete(letter).await;
        }
        if !is_function_arn(target) {
            return Err(LeftReason::NotLambda);
        }
        let Some(payload) = &letter.payload else {
            return Err(LeftReason::NoPayload);
        };
        self.lambda
            .invoke()
            .function_name(target)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.as_bytes()))
            .send()
            .await
            .map_err(|e| LeftReason::InvokeFailed {
                code: e.code().map(String::from),
                message: e
                    .message()
                    .map_or_else(|| DisplayErrorContext(&e).to_string(), String::from),
            })?;
        self.delete(letter).await
    }

    /// A fair queue's message back to its queue, in its message group.
    async fn send_back(
        &self,
        queue_arn: &str,
        body: &str,
        message_group: Option<&str>,
    ) -> Result<(), LeftReason> {
        let refused = |code: Option<&str>, message: String| LeftReason::SendFailed {
            code: code.map(String::from),
            message,
        };
        let queue_url = match source_queue_url(&self.queue_url, queue_arn) {
            Some(url) => url,
            // Not beside this queue's URL (another account or URL form):
            // SQS says where it is.
            None => {
                let (account, name) = arn_account_and_name(queue_arn).ok_or_else(|| {
                    refused(None, format!("{queue_arn} is not an SQS queue's ARN"))
                })?;
                self.sqs
                    .get_queue_url()
                    .queue_name(name)
                    .queue_owner_aws_account_id(account)
                    .send()
                    .await
                    .map_err(|e| {
                        refused(
                            e.code(),
                            e.message()
                                .map_or_else(|| DisplayErrorContext(&e).to_string(), String::from),
                        )
                    })?
                    .queue_url
                    .ok_or_else(|| refused(None, format!("no URL for {queue_arn}")))?
            }
        };
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .set_message_group_id(message_group.map(String::from))
            .send()
            .await
            .map_err(|e| {
                refused(
                    e.code(),
                    e.message()
                        .map_or_else(|| DisplayErrorContext(&e).to_string(), String::from),
                )
            })?;
        Ok(())
    }

    async fn delete(&self, letter: &DeadLetter) -> Result<(), LeftReason> {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&letter.receipt_handle)
            .send()
            .await
            .map_err(|e| LeftReason::NotDeleted {
                message: e
                    .message()
                    .map_or_else(|| DisplayErrorContext(&e).to_string(), String::from),
            })?;
        Ok(())
    }

    async fn receive(&self) -> Result<Vec<Message>, DeadLetterError> {
        let timeout = i32::try_from(self.visibility_timeout.as_secs()).unwrap_or(43_200);
        let reply = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(PAGE)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::DeadLetterQueueSourceArn)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .visibility_timeout(timeout)
            .wait_time_seconds(WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| DeadLetterError::Receive {
                queue_url: self.queue_url.clone(),
                message: match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    _ => DisplayErrorContext(&e).to_string(),
                },
            })?;
        Ok(reply.messages.unwrap_or_default())
    }

    /// Makes held messages visible again at once. A failure only delays
    /// them (until their visibility timeout), so it is logged, not raised.
    async fn release(&self, handles: &[String]) {
        for chunk in handles.chunks(PAGE as usize) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(reply) if reply.failed().is_empty() => {}
                Ok(reply) => tracing::warn!(
                    queue_url = %self.queue_url,
                    failed = reply.failed().len(),
                    "some dead letters stay hidden until their visibility timeout"
                ),
                Err(e) => tracing::warn!(
                    queue_url = %self.queue_url,
                    error = %DisplayErrorContext(&e),
                    "dead letters stay hidden until their visibility timeout"
                ),
            }
        }
    }
}

impl DeadLetter {
    /// A message received from the dead-letter queue (with its message
    /// attributes and the system attributes `DeadLetterQueueSourceArn` and
    /// `MessageGroupId`), read as EventBridge, Lambda or SQS put it there.
    pub fn from_message(message: &Message) -> Self {
        parse(message)
    }
}

/// A message as EventBridge, Lambda or SQS sent it.
fn parse(message: &Message) -> DeadLetter {
    let attributes: HashMap<&str, &str> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.string_value()?)))
        .collect();
    let body = message.body().map(str::to_owned);
    let base = |origin, target, error, attempts, payload| DeadLetter {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        origin,
        target,
        error,
        attempts,
        payload,
        receipt_handle: message.receipt_handle().unwrap_or_default().to_owned(),
    };
    let system = message.attributes();
    let system = |name: &MessageSystemAttributeName| system.and_then(|a| a.get(name)).cloned();
    if let Some(source) = system(&MessageSystemAttributeName::DeadLetterQueueSourceArn) {
        return base(
            Origin::Queue {
                message_group: system(&MessageSystemAttributeName::MessageGroupId),
            },
            Some(source),
            Some("its consumer failed it maxReceiveCount times".into()),
            None,
            body,
        );
    }
    if let Some(target) = attributes.get("TARGET_ARN") {
        let error = match (
            attributes.get("ERROR_CODE"),
            attributes.get("ERROR_MESSAGE"),
        ) {
            (Some(code), Some(message)) => Some(format!("{code}: {message}")),
            (Some(text), None) | (None, Some(text)) => Some((*text).to_owned()),
            (None, None) => attributes
                .get("EXHAUSTED_RETRY_CONDITION")
                .map(|c| (*c).to_owned()),
        };
        return base(
            Origin::Rule {
                rule_arn: attributes.get("RULE_ARN").map(|r| (*r).to_owned()),
            },
            Some((*target).to_owned()),
            error,
            attributes.get("RETRY_ATTEMPTS").map(|a| (*a).to_owned()),
            body,
        );
    }
    if let Some(record) = body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        && let Some(function) = record["requestContext"]["functionArn"].as_str()
    {
        let context = &record["requestContext"];
        let response = &record["responsePayload"];
        let error = match (
            response["errorType"].as_str(),
            response["errorMessage"].as_str(),
        ) {
            (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
            (Some(text), None) | (None, Some(text)) => Some(text.to_owned()),
            (None, None) => context["condition"].as_str().map(str::to_owned),
        };
        let payload = match &record["requestPayload"] {
            Value::Null => None,
            payload => Some(payload.to_string()),
        };
        return base(
            Origin::FunctionFailure,
            Some(function.to_owned()),
            error,
            context["approximateInvokeCount"]
                .as_u64()
                .map(|n| n.to_string()),
            payload,
        );
    }
    base(Origin::Unknown, None, None, None, body)
}

/// The account and name of `arn:<partition>:sqs:<region>:<account>:<name>`.
fn arn_account_and_name(arn: &str) -> Option<(&str, &str)> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, "sqs", region, account, name]
            if [partition, region, account, name]
                .iter()
                .all(|p| !p.is_empty()) =>
        {
            Some((account, name))
        }
        _ => None,
    }
}

/// The URL of the queue `queue_arn` from the URL of a queue of the same
/// account (`…/<account>/<name>`, on AWS and on moto alike): SQS moves a
/// message only to a dead-letter queue of the source's account and region.
fn source_queue_url(dead_letter_queue_url: &str, queue_arn: &str) -> Option<String> {
    let (account, name) = arn_account_and_name(queue_arn)?;
    let (prefix, _) = dead_letter_queue_url
        .trim_end_matches('/')
        .rsplit_once('/')?;
    let (_, owner) = prefix.rsplit_once('/')?;
    (owner == account).then(|| format!("{prefix}/{name}"))
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
fn is_function_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.len(), 7 | 8)
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && parts[1..].iter().all(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn attribute(value: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    }

    #[test]
    fn function_arns_are_told_from_other_targets() {
        assert!(is_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:purser-VendFunction-AbC"
        ));
        assert!(is_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"
        ));
        assert!(!is_function_arn(
            "arn:aws:sqs:us-east-1:123456789012:some-queue"
        ));
        assert!(!is_function_arn(
            "arn:aws:events:us-east-1:123456789012:api-destination/x/y"
        ));
        assert!(!is_function_arn(
            "arn:aws:lambda:us-east-1:123456789012:layer:l:1"
        ));
        assert!(!is_function_arn("purser-VendFunction"));
    }

    #[test]
    fn an_eventbridge_dead_letter_is_its_event_and_its_target() {
        let message = Message::builder()
            .message_id("m1")
            .receipt_handle("h1")
            .body(r#"{"id":"e1","source":"aws.organizations"}"#)
            .message_attributes("RULE_ARN", attribute("arn:aws:events:us-east-1:1:rule/r"))
            .message_attributes(
                "TARGET_ARN",
                attribute("arn:aws:lambda:us-east-1:1:function:f"),
            )
            .message_attributes("ERROR_CODE", attribute("SDK_CLIENT_ERROR"))
            .message_attributes("ERROR_MESSAGE", attribute("Unable to invoke"))
            .message_attributes("RETRY_ATTEMPTS", attribute("7"))
            .build();
        let letter = parse(&message);
        assert_eq!(
            letter.origin,
            Origin::Rule {
                rule_arn: Some("arn:aws:events:us-east-1:1:rule/r".into())
            }
        );
        assert_eq!(
            letter.target.as_deref(),
            Some("arn:aws:lambda:us-east-1:1:function:f")
        );
        assert_eq!(
            letter.error.as_deref(),
            Some("SDK_CLIENT_ERROR: Unable to invoke")
        );
        assert_eq!(letter.attempts.as_deref(), Some("7"));
        assert_eq!(
            letter.payload.as_deref(),
            Some(r#"{"id":"e1","source":"aws.organizations"}"#)
        );
    }

    #[test]
    fn a_lambda_failure_record_is_its_request_payload_and_its_function() {
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": "2026-11-21T10:00:00.000Z",
            "requestContext": {
                "requestId": "r1",
                "functionArn": "arn:aws:lambda:us-east-1:1:function:f:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"id": "e1", "detail": {"team": "ml"}},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Error", "errorMessage": "store unavailable"}
        });
        let message = Message::builder()
            .message_id("m2")
            .receipt_handle("h2")
            .body(record.to_string())
            .build();
        let letter = parse(&message);
        assert_eq!(letter.origin, Origin::FunctionFailure);
        assert_eq!(
            letter.target.as_deref(),
            Some("arn:aws:lambda:us-east-1:1:function:f:$LATEST")
        );
        assert_eq!(letter.error.as_deref(), Some("Error: store unavailable"));
        assert_eq!(letter.attempts.as_deref(), Some("3"));
        let payload: Value = serde_json::from_str(letter.payload.as_deref().unwrap()).unwrap();
        assert_eq!(payload, record["requestPayload"]);
    }

    /// moto (5.2.5) moves a message to its dead-letter queue but does not
    /// set `DeadLetterQueueSourceArn`, so the reading of it is tested here
    /// (the contract tests send it back on moto).
    #[test]
    fn a_message_sqs_moved_is_its_event_and_its_queue() {
        let event = r#"{"id":"e1","source":"purser.telemetry","account":"210987654321"}"#;
        let message = Message::builder()
            .message_id("m4")
            .receipt_handle("h4")
            .body(event)
            .attributes(
                MessageSystemAttributeName::DeadLetterQueueSourceArn,
                "arn:aws:sqs:us-east-1:123456789012:purser-InvocationsQueue-AbC",
            )
            .attributes(MessageSystemAttributeName::MessageGroupId, "210987654321")
            .build();
        let letter = DeadLetter::from_message(&message);
        assert_eq!(
            letter.origin,
            Origin::Queue {
                message_group: Some("210987654321".into())
            }
        );
        assert_eq!(
            letter.target.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:purser-InvocationsQueue-AbC")
        );
        assert_eq!(letter.payload.as_deref(), Some(event));
        assert!(letter.error.is_some());

        // A queue that had no message group sends it back without one.
        let message = Message::builder()
            .message_id("m5")
            .receipt_handle("h5")
            .body(event)
            .attributes(
                MessageSystemAttributeName::DeadLetterQueueSourceArn,
                "arn:aws:sqs:us-east-1:123456789012:q",
            )
            .build();
        assert_eq!(
            parse(&message).origin,
            Origin::Queue {
                message_group: None
            }
        );
    }

    #[test]
    fn a_source_queue_is_found_beside_the_dead_letter_queue() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:purser-SpendQueue-X";
        assert_eq!(
            source_queue_url(
                "https://sqs.us-east-1.amazonaws.com/123456789012/purser-DeadLetterQueue-AbC",
                arn
            )
            .as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/purser-SpendQueue-X")
        );
        assert_eq!(
            source_queue_url("http://127.0.0.1:5077/123456789012/dlq", arn).as_deref(),
            Some("http://127.0.0.1:5077/123456789012/purser-SpendQueue-X")
        );
        // Another account's queue, or not a queue: asked of SQS instead.
        assert_eq!(
            source_queue_url("http://127.0.0.1:5077/210987654321/dlq", arn),
            None
        );
        assert_eq!(
            source_queue_url(
                "http://127.0.0.1:5077/123456789012/dlq",
                "arn:aws:lambda:us-east-1:123456789012:function:f"
            ),
            None
        );
        assert_eq!(
            arn_account_and_name(arn),
            Some(("123456789012", "purser-SpendQueue-X"))
        );
        assert_eq!(arn_account_and_name("arn:aws:sqs:us-east-1::q"), None);
    }

    #[test]
    fn a_message_of_neither_kind_names_no_target() {
        let message = Message::builder()
            .message_id("m3")
            .receipt_handle("h3")
            .body("not json")
            .build();
        let letter = parse(&message);
        assert_eq!(letter.origin, Origin::Unknown);
        assert_eq!(letter.target, None);
    }
}
