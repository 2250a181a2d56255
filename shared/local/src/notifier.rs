//! The [`Notifier`] port for `purser up`: nothing leaves the machine but
//! chat webhooks. An email is written to the outbox as the message SES
//! would send (`<data-dir>/outbox/<UTC time>-<event id>-<recipient>.eml`,
//! which any mail client opens), a message for the SNS topic as SNS's
//! notification JSON (`<data-dir>/outbox/sns/<UTC time>-<event id>.json`),
//! and Slack and Teams webhooks really receive their payloads, so a team can
//! try its channel locally (`http://127.0.0.1` and `http://localhost`
//! webhooks are allowed for a receiver of its own).
//!
//! Every send, delivered or not, is a row of the `notifications` table
//! ([`sent`], `purser notifications list`), its recipient as
//! [`Recipient::describe`] shows it: a webhook by its host, never its URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use purser_core::notify::channels::{
    email_mime, plain_text, scrub, slack_payload, sns_subject, teams_payload, webhook_answer,
    webhook_error,
};
use purser_core::ports::{Message, Notifier, NotifyError, Recipient, WebhookUrl};
use rusqlite::params;
use serde::Serialize;

use crate::db::{Db, DbError};

/// Who local emails are from.
pub const LOCAL_SENDER: &str = "purser@purser.localhost";
/// The topic's ARN in the SNS JSON the outbox keeps.
const LOCAL_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:purser-notifications";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Notifications of `purser up`.
#[derive(Debug, Clone)]
pub struct LocalNotifier {
    outbox: PathBuf,
    db: Db,
    http: reqwest::Client,
}

/// One notification as `purser notifications list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentNotification {
    pub id: i64,
    /// When it was sent or tried (RFC 3339, UTC).
    pub at: String,
    pub event_id: String,
    pub kind: String,
    pub channel: String,
    /// `Recipient::describe`: an address, a webhook's host, the topic.
    pub recipient: String,
    pub subject: String,
    /// `sent`, or the error.
    pub outcome: String,
}

impl LocalNotifier {
    /// Writes to `<data_dir>/outbox` and records in `db`.
    pub fn new(data_dir: &Path, db: Db) -> Self {
        // Err only when a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            outbox: data_dir.join("outbox"),
            db,
            http,
        }
    }

    /// Where emails (and, under `sns/`, topic messages) are written.
    pub fn outbox(&self) -> &Path {
        &self.outbox
    }

    async fn write(&self, dir: PathBuf, name: String, contents: String) -> Result<(), NotifyError> {
        let path = dir.join(name);
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, contents)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| NotifyError::Unavailable {
            channel: "outbox".into(),
            message: format!("cannot write to {}: {e}", self.outbox.display()),
        })
    }

    async fn email(&self, address: &str, message: &Message) -> Result<(), NotifyError> {
        let now = Utc::now();
        let mime = email_mime(LOCAL_SENDER, address, message, now);
        let name = format!(
            "{}-{}-{}.eml",
            now.format("%Y%m%dT%H%M%S%.6fZ"),
            slug(&message.event_id),
            slug(address)
        );
        self.write(self.outbox.clone(), name, mime).await
    }

    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        let now = Utc::now();
        let notification = serde_json::json!({
            "Type": "Notification",
            "MessageId": uuid::Uuid::new_v4().to_string(),
            "TopicArn": LOCAL_TOPIC_ARN,
            "Subject": sns_subject(message),
            "Message": plain_text(message),
            "Timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "MessageAttributes": {
                "kind": { "Type": "String", "Value": message.kind },
            },
        });
        let name = format!(
            "{}-{}.json",
            now.format("%Y%m%dT%H%M%S%.6fZ"),
            slug(&message.event_id)
        );
        self.write(self.outbox.join("sns"), name, format!("{notification:#}\n"))
            .await
    }

    async fn post(
        &self,
        channel: &str,
        webhook: &WebhookUrl,
        body: &serde_json::Value,
    ) -> Result<(), NotifyError> {
        let named = format!("{channel} webhook {}", webhook.redacted());
        let response = self
            .http
            .post(webhook.expose())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                NotifyError::Unavailable {
                    channel: named.clone(),
                    message: format!(
                        "the POST {kind}: {}",
                        scrub(&e.without_url().to_string(), webhook)
                    ),
                }
            })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let answer = webhook_answer(&response.text().await.unwrap_or_default(), webhook);
        Err(webhook_error(channel, webhook, status, &answer))
    }

    async fn record(&self, recipient: &Recipient, message: &Message, outcome: String) {
        let row = (
            Utc::now().timestamp_millis(),
            message.event_id.clone(),
            message.kind.clone(),
            recipient.channel().to_owned(),
            recipient.describe(),
            message.subject.clone(),
            outcome,
        );
        let recorded = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO notifications (at_ms, event_id, kind, channel, recipient, subject, outcome)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![row.0, row.1, row.2, row.3, row.4, row.5, row.6],
                )
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "a notification was not recorded");
        }
    }
}

/// A file name's part: letters, digits, `-`, `_`, `.` (`@` as `_at_`),
/// at most 64 characters.
fn slug(s: &str) -> String {
    s.replace('@', "_at_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// Every notification sent or tried, oldest first.
pub fn sent(db: &Db) -> Result<Vec<SentNotification>, DbError> {
    db.call_blocking(|conn| {
        let mut stmt = conn.prepare(
            "SELECT id, at_ms, event_id, kind, channel, recipient, subject, outcome
             FROM notifications ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            let at_ms: i64 = r.get(1)?;
            Ok(SentNotification {
                id: r.get(0)?,
                at: chrono::DateTime::from_timestamp_millis(at_ms)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                event_id: r.get(2)?,
                kind: r.get(3)?,
                channel: r.get(4)?,
                recipient: r.get(5)?,
                subject: r.get(6)?,
                outcome: r.get(7)?,
            })
        })?
        .collect()
    })
}

#[async_trait]
impl Notifier for LocalNotifier {
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
        let outcome = match &sent {
            Ok(()) => "sent".to_owned(),
            Err(e) => e.to_string(),
        };
        match &sent {
            Ok(()) => {
                tracing::info!(recipient = %recipient.describe(), event_id = %message.event_id, "notified")
            }
            Err(e) => {
                tracing::warn!(recipient = %recipient.describe(), event_id = %message.event_id, error = %e, "not notified")
            }
        }
        self.record(recipient, message, outcome).await;
        sent
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use purser_contract::notifier::{Email, Fixture, Observer, Published, Receiver, SECRET};

    use super::*;

    /// The outbox, read as a mail client and an SNS subscriber would.
    struct Outbox(PathBuf);

    fn files(dir: &Path, ext: &str) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    impl Observer for Outbox {
        async fn emails(&self, address: &str) -> Vec<Email> {
            files(&self.0, "eml")
                .into_iter()
                .filter_map(|mime| {
                    let (head, body) = mime.split_once("\r\n\r\n")?;
                    let header = |name: &str| {
                        head.split("\r\n")
                            .find_map(|l| l.strip_prefix(name).map(str::to_owned))
                    };
                    (header("To: ")? == address).then(|| Email {
                        subject: header("Subject: ").unwrap_or_default(),
                        text: body.to_owned(),
                    })
                })
                .collect()
        }

        async fn published(&self) -> Vec<Published> {
            files(&self.0.join("sns"), "json")
                .into_iter()
                .map(|json| {
                    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
                    Published {
                        subject: v["Subject"].as_str().map(str::to_owned),
                        text: v["Message"].as_str().unwrap_or_default().to_owned(),
                        kind: v["MessageAttributes"]["kind"]["Value"]
                            .as_str()
                            .map(str::to_owned),
                    }
                })
                .collect()
        }
    }

    async fn fresh() -> Option<Fixture<Outbox>> {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let notifier = LocalNotifier::new(dir.path(), db);
        let outbox = Outbox(notifier.outbox().to_owned());
        Some(Fixture::new(Arc::new(notifier), outbox, "ana@example.com").keeping(dir))
    }

    mod contract {
        use super::fresh;

        purser_contract::notifier_contract!(fresh);
    }

    fn message() -> Message {
        Message {
            event_id: "evt/1".into(),
            kind: "AccountReady".into(),
            subject: "Your account is ready".into(),
            text: "It is.".into(),
            link: None,
        }
    }

    #[tokio::test]
    async fn every_send_is_recorded_with_its_outcome_and_no_webhook_url() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let notifier = LocalNotifier::new(dir.path(), db.clone());
        let ok = Receiver::start(200).await;
        let gone = Receiver::start(404).await;
        let m = message();
        notifier
            .send(
                &Recipient::Email {
                    address: "ana@example.com".into(),
                },
                &m,
            )
            .await
            .unwrap();
        notifier
            .send(&Recipient::Slack { webhook: ok.url() }, &m)
            .await
            .unwrap();
        notifier
            .send(
                &Recipient::Teams {
                    webhook: gone.url(),
                },
                &m,
            )
            .await
            .unwrap_err();
        notifier.send(&Recipient::Topic, &m).await.unwrap();

        let rows = sent(&db).unwrap();
        let seen: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.channel.as_str(),
                    r.recipient.as_str(),
                    r.outcome.split(':').next().unwrap(),
                )
            })
            .collect();
        let port = |r: &Receiver| format!("{:?}", r.url());
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], ("email", "email ana@example.com", "sent"));
        assert_eq!(seen[1].0, "slack");
        assert_eq!(seen[1].2, "sent");
        assert!(
            port(&ok).contains(
                seen[1]
                    .1
                    .trim_start_matches("slack ")
                    .trim_end_matches("/…")
            )
        );
        assert_eq!(seen[2].0, "teams");
        assert!(rows[2].outcome.contains("refused"), "{}", rows[2].outcome);
        assert_eq!(seen[3], ("sns", "sns topic", "sent"));
        for r in &rows {
            assert_eq!(r.event_id, "evt/1");
            assert_eq!(r.kind, "AccountReady");
            assert_eq!(r.subject, "Your account is ready");
            assert!(!format!("{r:?}").contains(SECRET), "{r:?}");
            assert!(r.at.ends_with('Z'));
        }
    }

    #[tokio::test]
    async fn an_email_is_a_file_named_by_time_event_and_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let notifier = LocalNotifier::new(dir.path(), db);
        notifier
            .send(
                &Recipient::Email {
                    address: "ana@example.com".into(),
                },
                &message(),
            )
            .await
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].ends_with("Z-evt-1-ana_at_example.com.eml"),
            "{}",
            names[0]
        );
        assert!(names[0].starts_with("20"), "{}", names[0]);
    }

    #[test]
    fn slugs_keep_file_names_plain() {
        assert_eq!(slug("ana@example.com"), "ana_at_example.com");
        assert_eq!(slug("../../etc/passwd"), "-..-etc-passwd");
        assert_eq!(slug(&"x".repeat(100)).len(), 64);
    }
}
