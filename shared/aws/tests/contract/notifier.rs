//! [`AwsNotifier`] against moto's SES v2 and SNS, through the Notifier
//! port's contract (`purser_contract::notifier`, written once for every
//! adapter); the chat webhooks are the contract's own local receivers.
//!
//! Each test sends from a sender of its own, verified with SES v2
//! `CreateEmailIdentity` (moto refuses `SendEmail` from an unverified one
//! with `MessageRejected`, as AWS does), to an address of its own, and
//! publishes to a topic of its own with an SQS queue subscribed to it.
//!
//! What moto shows: the `SendEmail` requests it took, through its request
//! recorder (started by the fixture; `scripts/test` points its file at a
//! temporary one with `MOTO_RECORDER_FILEPATH`); SNS
//! delivers to the subscribed queue the notification JSON AWS does
//! (`Subject`, `Message`, `MessageAttributes`). Where moto is not AWS: it
//! does not check the recipient in the sandbox, configuration sets or
//! sending quotas, so SES's and SNS's refusals and throttling are unit-tested
//! in `src/notifier.rs`.

use std::sync::Arc;

use aws_config::SdkConfig;
use purser_aws::{AwsNotifier, NotifierSettings};
use purser_contract::notifier::{Email, Fixture, Observer, Published};

struct Moto {
    endpoint: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Observer for Moto {
    /// The SES v2 `SendEmail` calls moto received for `address`, from
    /// moto's request recorder: moto keeps the messages, but its only API
    /// for them (`/moto-api/data.json`) fails once any Lambda function
    /// exists in it (it asks Docker about them), as in a whole test run.
    async fn emails(&self, address: &str) -> Vec<Email> {
        let recording = crate::common::http()
            .get(format!(
                "{}/moto-api/recorder/download-recording",
                self.endpoint
            ))
            .send()
            .await
            .expect("moto's recording")
            .text()
            .await
            .expect("the recording");
        recording
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| {
                entry["url"]
                    .as_str()
                    .is_some_and(|u| u.contains("/v2/email/outbound-emails"))
            })
            .filter_map(|entry| {
                let body = entry["body"].as_str()?;
                let body = if entry["body_encoded"] == true {
                    use base64::Engine;
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .ok()?,
                    )
                    .ok()?
                } else {
                    body.to_owned()
                };
                serde_json::from_str::<serde_json::Value>(&body).ok()
            })
            .filter(|sent| {
                sent["Destination"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|to| to.iter().any(|a| a == address))
            })
            .map(|sent| Email {
                subject: sent["Content"]["Simple"]["Subject"]["Data"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                text: sent["Content"]["Simple"]["Body"]["Text"]["Data"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect()
    }

    async fn published(&self) -> Vec<Published> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let mut published = Vec::new();
        for m in received.messages() {
            let v: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS's JSON");
            published.push(Published {
                subject: v["Subject"].as_str().map(str::to_owned),
                text: v["Message"].as_str().unwrap_or_default().to_owned(),
                kind: v["MessageAttributes"]["kind"]["Value"]
                    .as_str()
                    .map(str::to_owned),
            });
            if let Some(handle) = m.receipt_handle() {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        published
    }
}

async fn topic_with_queue(config: &SdkConfig) -> (String, aws_sdk_sqs::Client, String) {
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let topic_arn = sns
        .create_topic()
        .name(crate::common::unique("notify"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("a topic ARN")
        .to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name(crate::common::unique("notified"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("QueueArn")
        .to_owned();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("Subscribe");
    (topic_arn, sqs, queue_url)
}

async fn fresh() -> Option<Fixture<Moto>> {
    let config = crate::common::moto_config().await?;
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").expect("moto's endpoint");
    let sender = format!("{}@example.com", crate::common::unique("purser"));
    aws_sdk_sesv2::Client::new(&config)
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("CreateEmailIdentity");
    let (topic_arn, sqs, queue_url) = topic_with_queue(&config).await;
    // The observer reads the SendEmail calls moto recorded.
    crate::common::http()
        .post(format!("{endpoint}/moto-api/recorder/start-recording"))
        .send()
        .await
        .expect("moto records requests");
    let notifier = AwsNotifier::from_config(
        &config,
        NotifierSettings {
            sender,
            configuration_set: None,
            topic_arn: Some(topic_arn),
        },
    );
    Some(Fixture::new(
        Arc::new(notifier),
        Moto {
            endpoint,
            sqs,
            queue_url,
        },
        format!("{}@example.com", crate::common::unique("ana")),
    ))
}

purser_contract::notifier_contract!(fresh);

/// An unverified sender is refused, saying to verify it.
#[tokio::test]
async fn an_unverified_sender_is_refused_with_what_to_do() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let sender = format!("{}@example.com", crate::common::unique("nobody"));
    let notifier = AwsNotifier::from_config(
        &config,
        NotifierSettings {
            sender: sender.clone(),
            configuration_set: None,
            topic_arn: None,
        },
    );
    let m = purser_core::ports::Message {
        event_id: "evt-unverified".into(),
        kind: "AccountReady".into(),
        subject: "s".into(),
        text: "t".into(),
        link: None,
    };
    let err = purser_core::ports::Notifier::send(
        &notifier,
        &purser_core::ports::Recipient::Email {
            address: "ana@example.com".into(),
        },
        &m,
    )
    .await
    .unwrap_err();
    match err {
        purser_core::ports::NotifyError::Refused { message, .. } => {
            assert!(message.contains(&format!("verify {sender}")), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
