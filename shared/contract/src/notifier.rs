//! The [`Notifier`] port's contract: what every adapter (`LocalNotifier`,
//! `AwsNotifier`) must do, each behaviour one scenario, driven through the
//! trait. The port returns nothing, so what was delivered is read through
//! an [`Observer`] (the outbox locally, moto's sent emails and an SQS queue
//! subscribed to the topic on AWS), and chat webhooks are a [`Receiver`]
//! of the scenario's own: a local HTTP server that answers with a status
//! the scenario chooses and records every body it was sent.
//!
//! What only one adapter does is tested beside it: the local adapter's
//! `notifications` table, SES's and SNS's error mapping in the AWS one.
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::notifier::Fixture<MyObserver>> { … }
//!
//! purser_contract::notifier_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use purser_core::notify::channels::{plain_text, slack_payload, sns_subject, teams_payload};
use purser_core::ports::{Message, Notifier, NotifyError, Recipient, WebhookUrl};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An email as its recipient reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

/// A message published to the topic, as a subscriber reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub subject: Option<String>,
    pub text: String,
    /// Its `kind` message attribute.
    pub kind: Option<String>,
}

/// What was delivered, read where each channel delivers.
pub trait Observer: Send + Sync {
    /// Every email delivered to `address` so far.
    fn emails(&self, address: &str) -> impl Future<Output = Vec<Email>> + Send;
    /// Every message published to the topic so far (reading may consume
    /// them: each is returned at least once).
    fn published(&self) -> impl Future<Output = Vec<Published>> + Send;
}

/// A notifier for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub notifier: Arc<dyn Notifier>,
    pub observer: O,
    /// An address the adapter may send to (verified, on SES), of this
    /// fixture's own.
    pub address: String,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    pub fn new(notifier: Arc<dyn Notifier>, observer: O, address: impl Into<String>) -> Self {
        Self {
            notifier,
            observer,
            address: address.into(),
            _keep: None,
        }
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

/// A chat webhook on 127.0.0.1: answers every POST with `status` and keeps
/// its body. Its URL ends in a secret token, as Slack's and Teams' do.
pub struct Receiver {
    url: WebhookUrl,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// The secret part of every receiver's URL; nothing may show it.
pub const SECRET: &str = "T0PSECRET/B0PSECRET/xoxb0secret0token";

impl Receiver {
    pub async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/services/{SECRET}"))
            .expect("a webhook URL");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    if let Some(body) = read_request(&mut stream).await {
                        kept.lock().unwrap_or_else(|p| p.into_inner()).push(body);
                    }
                    let reason = if status < 400 { "OK" } else { "Error" };
                    let answer = if status < 400 { "ok" } else { "no_service" };
                    let reply = format!(
                        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, bodies, task }
    }

    pub fn url(&self) -> WebhookUrl {
        self.url.clone()
    }

    /// Every body received so far, as JSON.
    pub fn received(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|b| serde_json::from_slice(b).expect("a JSON body"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 request's body (by `content-length`), or `None`.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(data[head_end..head_end + length].to_vec())
}

fn message(event_id: &str) -> Message {
    Message {
        event_id: event_id.into(),
        kind: "BudgetThresholdReached".into(),
        subject: "Team payments reached 80% of its budget".into(),
        text: "Team payments has spent 80.00 USD of its 100.00 USD budget for 2026-11.\n\n\
               At 100% its accounts are frozen."
            .into(),
        link: Some("https://console.example.com/budgets/payments".into()),
    }
}

/// Polls `read` until `found` holds of what it returns (moto delivers to
/// SQS a moment after `Publish`), for a few seconds.
async fn eventually<T, F>(mut read: impl FnMut() -> F, found: impl Fn(&[T]) -> bool) -> Vec<T>
where
    F: Future<Output = Vec<T>>,
{
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.extend(read().await);
        if found(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

// ------------------------------------------------------------ scenarios

/// An email reaches its address with the message's subject, and its text
/// (then its link) as the body.
pub async fn an_email_reaches_its_address_with_the_subject_and_text<O: Observer>(
    fixture: &Fixture<O>,
) {
    let m = message("evt-email-1");
    let to = Recipient::Email {
        address: fixture.address.clone(),
    };
    fixture.notifier.send(&to, &m).await.unwrap();
    let emails = eventually(
        || fixture.observer.emails(&fixture.address),
        |e| !e.is_empty(),
    )
    .await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0].subject, m.subject);
    assert_eq!(
        emails[0].text.replace("\r\n", "\n").trim_end(),
        plain_text(&m)
    );
}

/// A message published to the topic has SNS's subject, the text (then the
/// link) as its body, and its kind as the `kind` attribute.
pub async fn a_message_reaches_the_topic<O: Observer>(fixture: &Fixture<O>) {
    let m = message("evt-topic-1");
    fixture.notifier.send(&Recipient::Topic, &m).await.unwrap();
    let published = eventually(
        || fixture.observer.published(),
        |p: &[Published]| p.iter().any(|p| p.text == plain_text(&m)),
    )
    .await;
    let p = published
        .iter()
        .find(|p| p.text == plain_text(&m))
        .unwrap_or_else(|| panic!("not published: {published:?}"));
    assert_eq!(p.subject.as_deref(), Some(sns_subject(&m).as_str()));
    assert_eq!(p.kind.as_deref(), Some("BudgetThresholdReached"));
}

/// A Slack webhook receives exactly `slack_payload`, once.
pub async fn a_slack_webhook_receives_the_slack_payload<O: Observer>(fixture: &Fixture<O>) {
    let receiver = Receiver::start(200).await;
    let m = message("evt-slack-1");
    let to = Recipient::Slack {
        webhook: receiver.url(),
    };
    fixture.notifier.send(&to, &m).await.unwrap();
    assert_eq!(receiver.received(), [slack_payload(&m)]);
}

/// A Teams webhook receives exactly `teams_payload`, once.
pub async fn a_teams_webhook_receives_the_teams_payload<O: Observer>(fixture: &Fixture<O>) {
    let receiver = Receiver::start(200).await;
    let m = message("evt-teams-1");
    let to = Recipient::Teams {
        webhook: receiver.url(),
    };
    fixture.notifier.send(&to, &m).await.unwrap();
    assert_eq!(receiver.received(), [teams_payload(&m)]);
}

/// A webhook that answers 404 (or 400, 403, 410) is gone for good:
/// `Refused`, naming the channel.
pub async fn a_webhook_answering_404_is_refused<O: Observer>(fixture: &Fixture<O>) {
    for status in [404, 400, 403, 410] {
        let receiver = Receiver::start(status).await;
        for to in [
            Recipient::Slack {
                webhook: receiver.url(),
            },
            Recipient::Teams {
                webhook: receiver.url(),
            },
        ] {
            let err = fixture
                .notifier
                .send(&to, &message("evt-refused"))
                .await
                .unwrap_err();
            match &err {
                NotifyError::Refused { channel, .. } => assert!(
                    channel.contains(to.channel()),
                    "{status}: {channel} names {}",
                    to.channel()
                ),
                other => panic!("{status}: {other:?}"),
            }
            assert!(!err.to_string().contains(SECRET), "{err}");
        }
    }
}

/// A webhook that answers 503 (or 500, 429) may answer later:
/// `Unavailable`; so is one nobody listens on.
pub async fn a_webhook_answering_503_is_unavailable<O: Observer>(fixture: &Fixture<O>) {
    for status in [503, 500, 429] {
        let receiver = Receiver::start(status).await;
        let to = Recipient::Slack {
            webhook: receiver.url(),
        };
        let err = fixture
            .notifier
            .send(&to, &message("evt-unavailable"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, NotifyError::Unavailable { .. }),
            "{status}: {err:?}"
        );
        assert!(!err.to_string().contains(SECRET), "{err}");
    }
    // Nobody listens: bind a port, then free it.
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        WebhookUrl::parse(&format!("http://127.0.0.1:{port}/services/{SECRET}")).unwrap()
    };
    let err = fixture
        .notifier
        .send(&Recipient::Teams { webhook: url }, &message("evt-nobody"))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable { .. }), "{err:?}");
    assert!(!err.to_string().contains(SECRET), "{err}");
}

/// Nothing shows a webhook's URL: not a recipient's `Debug` or
/// description, not an error's `Debug` or `Display`.
pub async fn no_webhook_url_shows<O: Observer>(fixture: &Fixture<O>) {
    let receiver = Receiver::start(404).await;
    let to = Recipient::Slack {
        webhook: receiver.url(),
    };
    assert!(!format!("{to:?}").contains(SECRET), "{to:?}");
    assert!(!to.describe().contains(SECRET));
    assert!(to.describe().contains("127.0.0.1"));
    let err = fixture
        .notifier
        .send(&to, &message("evt-secret"))
        .await
        .unwrap_err();
    assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!err.to_string().contains("/services/"), "{err}");
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`notifier`](self), each named as
/// its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<notifier::Fixture<_>>` (`None` skips the test).
#[macro_export]
macro_rules! notifier_contract {
    ($fresh:path) => {
        $crate::__notifier_scenarios!(__contract_tests; notifier, $fresh);
    };
}

/// The scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __notifier_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                an_email_reaches_its_address_with_the_subject_and_text,
                a_message_reaches_the_topic,
                a_slack_webhook_receives_the_slack_payload,
                a_teams_webhook_receives_the_teams_payload,
                a_webhook_answering_404_is_refused,
                a_webhook_answering_503_is_unavailable,
                no_webhook_url_shows,
            ]
        }
    };
}

/// The names of the scenarios, as `notifier_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__notifier_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("notifier.rs"), super::SCENARIOS);
    }
}
