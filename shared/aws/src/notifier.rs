//! The [`Notifier`] port on AWS: email through SES v2 `SendEmail` (Simple
//! content: the subject and a text body, from a verified sender, in an
//! optional configuration set), Purser's SNS topic through `Publish` (the
//! subject SNS accepts, the text as the message, the message's kind as the
//! `kind` attribute), and Slack's and Teams' incoming webhooks through an
//! HTTPS POST of `purser_core::notify::channels`' payloads.
//!
//! The webhooks are posted with the SDK's own connector (hyper 1 and
//! rustls on ring, `aws-smithy-http-client`), which every client already
//! builds: no second HTTP client in the Lambda packages. It connects within
//! 3 seconds, and the whole POST must be answered within 5.
//!
//! Errors: what retrying will not mend is `Refused`, with what to do (SES's
//! `MessageRejected`, an unverified MAIL FROM domain, a suspended account or
//! paused sending; an SNS topic that is gone or may not be published to; a
//! webhook answering 4xx other than 429); throttling, 5xx, 429, timeouts
//! and the network are `Unavailable`. A webhook's URL is a secret: errors
//! and logs show only its host ([`WebhookUrl::redacted`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use purser_core::notify::channels::{
    plain_text, scrub, slack_payload, sns_subject, subject_line, teams_payload, webhook_answer,
    webhook_error,
};
use purser_core::ports::{Message, Notifier, NotifyError, Recipient, WebhookUrl};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the AWS notifier sends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierSettings {
    /// The From address: an identity verified in SES (the address or its
    /// domain).
    pub sender: String,
    /// SES's configuration set (event destinations, a dedicated IP pool).
    pub configuration_set: Option<String>,
    /// Purser's SNS topic, for `Recipient::Topic`.
    pub topic_arn: Option<String>,
}

/// Email, the topic and chat webhooks, on AWS.
#[derive(Debug)]
pub struct AwsNotifier {
    ses: aws_sdk_sesv2::Client,
    sns: aws_sdk_sns::Client,
    http: Connector,
    settings: NotifierSettings,
}

impl AwsNotifier {
    pub fn from_config(config: &aws_config::SdkConfig, settings: NotifierSettings) -> Self {
        let http = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(WEBHOOK_TIMEOUT)
                    .build(),
            )
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build();
        Self {
            ses: aws_sdk_sesv2::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            http,
            settings,
        }
    }

    async fn email(&self, address: &str, message: &Message) -> Result<(), NotifyError> {
        let refused = |e: aws_sdk_sesv2::error::BuildError| NotifyError::Refused {
            channel: "email".into(),
            message: e.to_string(),
        };
        let content = |data: String| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(refused)
        };
        let simple = aws_sdk_sesv2::types::Message::builder()
            .subject(content(subject_line(message))?)
            .body(Body::builder().text(content(plain_text(message))?).build())
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.settings.sender)
            .destination(Destination::builder().to_addresses(address).build())
            .content(EmailContent::builder().simple(simple).build())
            .set_configuration_set_name(self.settings.configuration_set.clone())
            .send()
            .await
            .map_err(|e| {
                let (code, text) = service_error(&e);
                ses_error(code, &text, &self.settings.sender, address)
            })?;
        Ok(())
    }

    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        let Some(topic) = &self.settings.topic_arn else {
            return Err(NotifyError::Refused {
                channel: "sns".into(),
                message: "Purser has no SNS topic configured: give it the topic's ARN".into(),
            });
        };
        let mut publish = self
            .sns
            .publish()
            .topic_arn(topic)
            .subject(sns_subject(message))
            .message(plain_text(message));
        if !message.kind.is_empty() {
            let kind = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(&message.kind)
                .build()
                .map_err(|e| NotifyError::Refused {
                    channel: "sns".into(),
                    message: e.to_string(),
                })?;
            publish = publish.message_attributes("kind", kind);
        }
        publish.send().await.map_err(|e| {
            let (code, text) = service_error(&e);
            sns_error(code, &text, topic)
        })?;
        Ok(())
    }

    async fn post(
        &self,
        channel: &str,
        webhook: &WebhookUrl,
        body: &serde_json::Value,
    ) -> Result<(), NotifyError> {
        let unavailable = |message: String| NotifyError::Unavailable {
            channel: format!("{channel} webhook {}", webhook.redacted()),
            message,
        };
        let mut request = HttpRequest::new(SdkBody::from(body.to_string()));
        request
            .set_method("POST")
            .map_err(|e| unavailable(e.to_string()))?;
        request
            .set_uri(webhook.expose())
            .map_err(|_| NotifyError::Refused {
                channel: format!("{channel} webhook {}", webhook.redacted()),
                message: "its URL is not one Purser can post to".into(),
            })?;
        request
            .headers_mut()
            .insert("content-type", "application/json");
        let response = match tokio::time::timeout(WEBHOOK_TIMEOUT, self.http.call(request)).await {
            Err(_) => return Err(unavailable(format!("no answer within {WEBHOOK_TIMEOUT:?}"))),
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_io() {
                    "could not connect"
                } else {
                    "failed"
                };
                let detail = scrub(&DisplayErrorContext(&e).to_string(), webhook);
                tracing::warn!(channel, webhook = %webhook.redacted(), error = %detail, "webhook POST {kind}");
                return Err(unavailable(format!("the POST {kind}: {detail}")));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            ByteStream::new(response.into_body()).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| webhook_answer(&String::from_utf8_lossy(&b.into_bytes()), webhook))
        .unwrap_or_default();
        tracing::warn!(channel, webhook = %webhook.redacted(), status, answer, "webhook refused the POST");
        Err(webhook_error(channel, webhook, status, &answer))
    }
}

fn service_error<E, R>(e: &SdkError<E, R>) -> (String, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => (
            s.code().unwrap_or("").to_owned(),
            s.message().unwrap_or_default().to_owned(),
        ),
        None => (String::new(), DisplayErrorContext(e).to_string()),
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "TooManyRequestsException"
            | "LimitExceededException"
            | "Throttling"
            | "ThrottlingException"
            | "Throttled"
            | "ThrottledException"
            | "RequestLimitExceeded"
    )
}

/// SES v2's `SendEmail` error `code` as the port's error.
fn ses_error(code: String, text: &str, sender: &str, address: &str) -> NotifyError {
    let refused = |message: String| NotifyError::Refused {
        channel: format!("email to {address}"),
        message,
    };
    match code.as_str() {
        "MessageRejected" | "MessageRejectedException" => refused(format!(
            "SES rejected it ({text}): verify {sender} in SES; while the account is in the SES \
             sandbox, verify {address} too or request production access"
        )),
        "MailFromDomainNotVerifiedException" | "MailFromDomainNotVerified" => refused(format!(
            "the MAIL FROM domain of {sender} is not verified ({text}): publish its MX and SPF \
             records, or remove the custom MAIL FROM domain in SES"
        )),
        "AccountSuspendedException" | "AccountSuspended" => refused(format!(
            "SES has suspended sending for this account ({text}): see the reputation \
             dashboard in the SES console and ask AWS Support to reinstate it"
        )),
        "SendingPausedException" => refused(format!(
            "sending is paused for this account or configuration set ({text}): resume it in SES"
        )),
        "NotFoundException" => refused(format!(
            "SES could not find what the message names ({text}): check the configuration set"
        )),
        "BadRequestException" => refused(format!("SES refused the request: {text}")),
        code if is_throttling(code) => NotifyError::Unavailable {
            channel: "email".into(),
            message: format!("SES is throttling sends ({code}): {text}"),
        },
        code => NotifyError::Unavailable {
            channel: "email".into(),
            message: if code.is_empty() {
                text.to_owned()
            } else {
                format!("{code}: {text}")
            },
        },
    }
}

/// SNS's `Publish` error `code` as the port's error.
fn sns_error(code: String, text: &str, topic: &str) -> NotifyError {
    let refused = |message: String| NotifyError::Refused {
        channel: format!("sns topic {topic}"),
        message,
    };
    match code.as_str() {
        "NotFound" | "NotFoundException" => refused(format!(
            "the topic does not exist ({text}): create it or fix its ARN in Purser's settings"
        )),
        "AuthorizationError" | "AuthorizationErrorException" => refused(format!(
            "Purser may not publish to it ({text}): allow sns:Publish on it to Purser's role"
        )),
        "InvalidParameter" | "InvalidParameterException" | "InvalidParameterValue" => {
            refused(format!("SNS refused the message: {text}"))
        }
        code if code.starts_with("KMS") => refused(format!(
            "the topic's KMS key refused it ({code}: {text}): let Purser's role use the key"
        )),
        code if is_throttling(code) => NotifyError::Unavailable {
            channel: "sns".into(),
            message: format!("SNS is throttling publishes ({code}): {text}"),
        },
        code => NotifyError::Unavailable {
            channel: "sns".into(),
            message: if code.is_empty() {
                text.to_owned()
            } else {
                format!("{code}: {text}")
            },
        },
    }
}

#[async_trait]
impl Notifier for AwsNotifier {
    async fn send(&self, recipient: &Recipient, message: &Message) -> Result<(), NotifyError> {
        let sent = match recipient {
            Recipient::Email { address } => self.email(address, message).await,
            Recipient::Topic => self.publish(message).await,
            Recipient::Slack { webhook } => {
                self.post("slack", webhook, &slack_payload(message)).await
            }
            Recipient::Teams { webhook } => {
                self.post("teams", webhook, &teams_payload(message)).await
            }
        };
        match &sent {
            Ok(()) => tracing::info!(
                recipient = %recipient.describe(),
                event_id = %message.event_id,
                kind = %message.kind,
                "notified"
            ),
            Err(e) => tracing::warn!(
                recipient = %recipient.describe(),
                event_id = %message.event_id,
                kind = %message.kind,
                error = %e,
                "not notified"
            ),
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> WebhookUrl {
        WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/s3cr3t").unwrap()
    }

    #[test]
    fn a_webhook_s_4xx_is_refused_and_429_or_5xx_unavailable() {
        for status in [400, 403, 404, 410] {
            assert!(
                matches!(
                    webhook_error("slack", &webhook(), status, "no_service"),
                    NotifyError::Refused { .. }
                ),
                "{status}"
            );
        }
        for status in [429, 500, 502, 503, 504, 302] {
            assert!(
                matches!(
                    webhook_error("teams", &webhook(), status, ""),
                    NotifyError::Unavailable { .. }
                ),
                "{status}"
            );
        }
        let e = webhook_error("slack", &webhook(), 404, "no_service").to_string();
        assert!(
            e.contains("hooks.slack.com") && e.contains("no_service"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn no_error_text_keeps_the_webhook_s_url() {
        let w = webhook();
        let text = "error sending request for https://hooks.slack.com/services/T0/B0/s3cr3t: refused; path /services/T0/B0/s3cr3t";
        let scrubbed = scrub(text, &w);
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert!(scrubbed.contains("https://hooks.slack.com/…"));
        assert_eq!(
            webhook_answer(
                "invalid_token https://hooks.slack.com/services/T0/B0/s3cr3t\nmore",
                &w
            ),
            "invalid_token https://hooks.slack.com/…"
        );
    }

    #[test]
    fn ses_refusals_say_what_to_do_and_throttling_is_unavailable() {
        let e = ses_error(
            "MessageRejected".into(),
            "Email address is not verified.",
            "purser@example.com",
            "ana@example.com",
        );
        match &e {
            NotifyError::Refused { channel, message } => {
                assert_eq!(channel, "email to ana@example.com");
                assert!(message.contains("verify purser@example.com"), "{message}");
                assert!(message.contains("sandbox"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        for code in [
            "MailFromDomainNotVerifiedException",
            "AccountSuspendedException",
            "SendingPausedException",
            "NotFoundException",
            "BadRequestException",
        ] {
            assert!(
                matches!(
                    ses_error(code.into(), "x", "s@example.com", "a@example.com"),
                    NotifyError::Refused { .. }
                ),
                "{code}"
            );
        }
        for code in [
            "TooManyRequestsException",
            "LimitExceededException",
            "Throttling",
            "InternalFailure",
            "",
        ] {
            assert!(
                matches!(
                    ses_error(code.into(), "x", "s@example.com", "a@example.com"),
                    NotifyError::Unavailable { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn sns_refusals_and_throttling() {
        let topic = "arn:aws:sns:us-east-1:123456789012:purser";
        for code in [
            "NotFound",
            "AuthorizationError",
            "InvalidParameter",
            "KMSDisabled",
        ] {
            assert!(
                matches!(
                    sns_error(code.into(), "x", topic),
                    NotifyError::Refused { .. }
                ),
                "{code}"
            );
        }
        for code in ["Throttled", "InternalError", ""] {
            assert!(
                matches!(
                    sns_error(code.into(), "x", topic),
                    NotifyError::Unavailable { .. }
                ),
                "{code}"
            );
        }
    }

    #[tokio::test]
    async fn without_a_topic_the_topic_is_refused() {
        let config = aws_config::SdkConfig::builder()
            .http_client(crate::http_client())
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let notifier = AwsNotifier::from_config(
            &config,
            NotifierSettings {
                sender: "purser@example.com".into(),
                configuration_set: None,
                topic_arn: None,
            },
        );
        let m = Message {
            event_id: "e".into(),
            kind: "k".into(),
            subject: "s".into(),
            text: "t".into(),
            link: None,
        };
        let err = notifier.send(&Recipient::Topic, &m).await.unwrap_err();
        assert!(matches!(err, NotifyError::Refused { .. }), "{err:?}");
    }
}
