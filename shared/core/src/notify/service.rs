//! Who is told of an event, each exactly once: the account's owner, the
//! team's contacts and chat webhooks, Purser's SNS topic, and the platform
//! admins where they must act.

use std::sync::Arc;

use chrono::Duration;

use crate::accounts::{AccountState, Team, TeamName};
use crate::budgets::BUDGET_THRESHOLD_CROSSED;
use crate::events::Event;
use crate::events::catalog::{ACCOUNT_APPROVAL_REQUESTED, ACCOUNT_FAILED, ACCOUNT_READY};
use crate::notify::messages::message_for;
use crate::ports::{
    AccountStore, Clock, Marker, Markers, Notifier, NotifyError, Recipient, StoreError,
};

/// How long a message sent is remembered, so a redelivered event (within
/// EventBridge's retries, a day at most) sends nothing twice.
const SENT_FOR: Duration = Duration::days(2);

/// Who hears of what besides a team's own people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySettings {
    /// Told when they must act (a failed creation, an owner without a
    /// sign-in).
    pub admin_emails: Vec<String>,
    /// Whether Purser's SNS topic gets every message.
    pub topic: bool,
    /// Whether email can be sent (a sender is configured).
    pub email: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyFailed {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Some channels could not be reached; the others were told, and the
    /// retried event tells only these.
    #[error("{0} message(s) could not be sent yet: {1}")]
    Unsent(usize, String),
}

/// What became of an event's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: Vec<String>,
    /// Sent before (a redelivered event).
    pub already: usize,
    /// Refused for good by their channel (logged; not retried).
    pub refused: Vec<String>,
}

pub struct Notifications {
    accounts: Arc<dyn AccountStore>,
    markers: Arc<dyn Markers>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    settings: NotifySettings,
}

impl Notifications {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        markers: Arc<dyn Markers>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        settings: NotifySettings,
    ) -> Self {
        Self {
            accounts,
            markers,
            notifier,
            clock,
            settings,
        }
    }

    /// Tells whom `event` concerns; each recipient once, however often the
    /// event is delivered. A channel that cannot be reached does not stop
    /// the others: it is an error, so the event comes back for it alone.
    pub async fn notify(&self, event: &Event) -> Result<Sent, NotifyFailed> {
        let asked = self.with_lease_asked(event).await?;
        let event = asked.as_ref().unwrap_or(event);
        let Some(message) = message_for(event) else {
            return Ok(Sent::default());
        };
        let recipients = self.recipients(event).await?;
        let now = self.clock.now();
        let mut outcome = Sent::default();
        let mut unsent = Vec::new();
        for recipient in recipients {
            let who = recipient.describe();
            let marker = Marker::Notified {
                event_id: event.id.clone(),
                recipient: who.clone(),
            };
            if !self
                .markers
                .claim_once(&marker, now, now + SENT_FOR)
                .await?
            {
                outcome.already += 1;
                continue;
            }
            match self.notifier.send(&recipient, &message).await {
                Ok(()) => {
                    tracing::info!(event_id = %event.id, kind = %message.kind, to = %who, "notified");
                    outcome.sent.push(who);
                }
                Err(NotifyError::Refused { channel, message }) => {
                    tracing::warn!(event_id = %event.id, to = %who, %channel, %message,
                        "the channel refused the message; it is not sent again");
                    outcome.refused.push(who);
                }
                Err(e) => {
                    tracing::warn!(event_id = %event.id, to = %who, error = %e, "not sent; the event will be retried");
                    if let Err(release) = self.markers.release(&marker).await {
                        tracing::warn!(error = %release, "the claim could not be given back; this message is lost until it expires");
                    }
                    unsent.push(format!("{who}: {e}"));
                }
            }
        }
        if unsent.is_empty() {
            Ok(outcome)
        } else {
            Err(NotifyFailed::Unsent(unsent.len(), unsent.join("; ")))
        }
    }

    /// An approval request with the lease it asks for (`lease_days`, which
    /// the event does not carry: the lease starts when it is approved), read
    /// from the stored request; `None` for any other event.
    async fn with_lease_asked(&self, event: &Event) -> Result<Option<Event>, NotifyFailed> {
        if event.detail_type != ACCOUNT_APPROVAL_REQUESTED
            || !event.detail["extension_days"].is_null()
        {
            return Ok(None);
        }
        let Some(id) = event.detail["request_id"].as_str() else {
            return Ok(None);
        };
        let Some(days) = self.accounts.account(id).await?.and_then(|a| a.lease_days) else {
            return Ok(None);
        };
        let mut asked = event.clone();
        asked.detail["lease_days"] = days.into();
        Ok(Some(asked))
    }

    /// The owner (of an account event) or the owners of the team's open
    /// accounts (of a team's event), the team's contacts and webhooks, the
    /// topic, and the admins where they must act; each once. An approval
    /// request goes to those who decide instead: the team's approvers named
    /// by email and the admins, and the team's contacts when an approver
    /// cannot be emailed (an IAM principal) or nobody else would hear of it.
    async fn recipients(&self, event: &Event) -> Result<Vec<Recipient>, NotifyFailed> {
        let d = &event.detail;
        // A quarantined account is the pool's, not its last team's: the
        // admins must look at it (and the topic hears of it).
        if event.detail_type == crate::events::catalog::ACCOUNT_QUARANTINED {
            let mut recipients: Vec<Recipient> = Vec::new();
            if self.settings.email {
                for address in &self.settings.admin_emails {
                    let recipient = Recipient::Email {
                        address: address.to_ascii_lowercase(),
                    };
                    if !recipients.contains(&recipient) {
                        recipients.push(recipient);
                    }
                }
            }
            if self.settings.topic {
                recipients.push(Recipient::Topic);
            }
            return Ok(recipients);
        }
        let team = match d["team"].as_str().map(TeamName::parse) {
            Some(Ok(name)) => self
                .accounts
                .team(&name)
                .await?
                .unwrap_or_else(|| Team::unconfigured(name)),
            _ => return Ok(Vec::new()),
        };
        let mut emails: Vec<String> = Vec::new();
        if event.detail_type == ACCOUNT_APPROVAL_REQUESTED {
            let (by_email, unreachable): (Vec<&String>, Vec<&String>) = team
                .leases
                .approvers
                .iter()
                .partition(|a| !a.starts_with("arn:") && a.contains('@'));
            emails.extend(by_email.into_iter().cloned());
            emails.extend(self.settings.admin_emails.iter().cloned());
            if !unreachable.is_empty() || emails.is_empty() {
                emails.extend(team.notify.emails.iter().cloned());
            }
        } else if let Some(owner) = d["owner"].as_str() {
            emails.push(owner.to_string());
        } else if event.detail_type == BUDGET_THRESHOLD_CROSSED && d["scope"] == "account" {
            // An account's own budget: its owner, not the whole team.
            if let Some(account) = match d["account_id"].as_str() {
                Some(id) => self.accounts.account_by_account_id(id).await?,
                None => None,
            } {
                emails.push(account.owner);
            }
        } else if event.detail_type == BUDGET_THRESHOLD_CROSSED {
            for account in self
                .accounts
                .team_accounts_in(&team.name, &[AccountState::Ready, AccountState::Frozen])
                .await?
            {
                emails.push(account.owner);
            }
        }
        if event.detail_type != ACCOUNT_APPROVAL_REQUESTED {
            emails.extend(team.notify.emails.iter().cloned());
        }
        let must_act = event.detail_type == ACCOUNT_FAILED
            || (event.detail_type == ACCOUNT_READY
                && matches!(d["access"]["status"].as_str(), Some("no_user" | "failed")));
        if must_act {
            emails.extend(self.settings.admin_emails.iter().cloned());
        }
        let mut recipients: Vec<Recipient> = Vec::new();
        if !self.settings.email {
            emails.clear();
        }
        for address in emails {
            let recipient = Recipient::Email {
                address: address.to_ascii_lowercase(),
            };
            if !recipients.contains(&recipient) {
                recipients.push(recipient);
            }
        }
        if let Some(webhook) = &team.notify.slack_webhook {
            recipients.push(Recipient::Slack {
                webhook: webhook.clone(),
            });
        }
        if let Some(webhook) = &team.notify.teams_webhook {
            recipients.push(Recipient::Teams {
                webhook: webhook.clone(),
            });
        }
        if self.settings.topic {
            recipients.push(Recipient::Topic);
        }
        Ok(recipients)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::accounts::TeamNotify;
    use crate::fakes::{FakeAccounts, FakeMarkers, locked};
    use crate::ports::{ManualClock, Message, WebhookUrl};

    /// Records what it sends; fails `down` channels as unreachable.
    #[derive(Default)]
    struct FakeNotifier {
        sent: Mutex<Vec<(String, String)>>,
        down: Mutex<Vec<&'static str>>,
    }

    #[async_trait]
    impl Notifier for FakeNotifier {
        async fn send(&self, to: &Recipient, message: &Message) -> Result<(), NotifyError> {
            if locked(&self.down).contains(&to.channel()) {
                return Err(NotifyError::Unavailable {
                    channel: to.channel().into(),
                    message: "503".into(),
                });
            }
            locked(&self.sent).push((to.describe(), message.subject.clone()));
            Ok(())
        }
    }

    fn ready_event(access: serde_json::Value) -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": "AccountReady", "source": "purser",
            "account": "123456789012", "time": "2026-11-18T12:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {"version": 1, "request_id": "r-0123456789ab", "state": "ready", "team": "payments",
                "owner": "ana@example.com", "purpose": "tests", "account_id": "210987654321",
                "access": access, "at": "2026-11-18T12:00:00Z"}
        }))
        .unwrap()
    }

    fn world() -> (Notifications, Arc<FakeNotifier>) {
        let accounts = Arc::new(FakeAccounts::default());
        let mut team = Team::unconfigured(TeamName::parse("payments").unwrap());
        team.notify = TeamNotify {
            emails: vec!["leads@example.com".into(), "ANA@example.com".into()],
            slack_webhook: Some(
                WebhookUrl::parse("https://hooks.slack.com/services/T/B/secret").unwrap(),
            ),
            teams_webhook: None,
        };
        locked(&accounts.teams).insert(team.name.clone(), team);
        let notifier = Arc::new(FakeNotifier::default());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap(),
        ));
        let settings = NotifySettings {
            admin_emails: vec!["platform@example.com".into()],
            topic: true,
            email: true,
        };
        let n = Notifications::new(
            accounts,
            Arc::new(FakeMarkers::default()),
            notifier.clone(),
            clock,
            settings,
        );
        (n, notifier)
    }

    #[tokio::test]
    async fn each_recipient_hears_once_and_a_channel_that_is_down_comes_back_alone() {
        let (n, notifier) = world();
        let event = ready_event(
            json!({"status": "assigned", "permission_set": "PurserDeveloper",
            "link": "https://d-1.awsapps.com/start/#/console?account_id=210987654321&role_name=PurserDeveloper"}),
        );
        locked(&notifier.down).push("slack");
        let failed = n.notify(&event).await;
        assert!(
            matches!(failed, Err(NotifyFailed::Unsent(1, _))),
            "{failed:?}"
        );
        let to: Vec<String> = locked(&notifier.sent)
            .iter()
            .map(|(to, _)| to.clone())
            .collect();
        // The owner once (also a contact), the contact, the topic; no admin.
        assert_eq!(
            to,
            [
                "email ana@example.com",
                "email leads@example.com",
                "sns topic"
            ]
        );
        assert!(
            locked(&notifier.sent)[0]
                .1
                .contains("210987654321 for payments is ready")
        );

        locked(&notifier.down).clear();
        let retried = n.notify(&event).await.unwrap();
        assert_eq!(retried.sent, ["slack https://hooks.slack.com/…"]);
        assert_eq!(retried.already, 3);
        let again = n.notify(&event).await.unwrap();
        assert!(
            again.sent.is_empty() && again.already == 4,
            "a redelivery sends nothing"
        );
        assert!(!format!("{:?}", locked(&notifier.sent)).contains("secret"));
    }

    #[tokio::test]
    async fn an_owner_without_a_sign_in_and_the_admins_are_told_what_to_do() {
        let (n, notifier) = world();
        let event = ready_event(
            json!({"status": "no_user", "permission_set": "PurserDeveloper",
            "reason": "IAM Identity Center has no user with the address ana@example.com: add one"}),
        );
        n.notify(&event).await.unwrap();
        let sent = locked(&notifier.sent).clone();
        assert!(
            sent.iter()
                .any(|(to, _)| to == "email platform@example.com")
        );
        let message = message_for(&event).unwrap();
        assert!(message.text.contains("add one"), "{}", message.text);
    }

    fn approval_requested() -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": "e-2", "detail-type": "AccountApprovalRequested", "source": "purser",
            "account": "123456789012", "time": "2026-11-18T12:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {"version": 1, "request_id": "r-0123456789ab", "state": "pending_approval",
                "team": "payments", "owner": "ana@example.com", "purpose": "hackathon",
                "template": {"name": "hackathon", "version": 1}, "reason_code": "APPROVAL_REQUIRED",
                "reason": "the template asks an approver for every request",
                "at": "2026-11-18T12:00:00Z"}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_approval_request_goes_to_those_who_decide_not_to_the_requester() {
        let accounts = Arc::new(FakeAccounts::default());
        let mut team = Team::unconfigured(TeamName::parse("payments").unwrap());
        team.notify.emails = vec!["leads@example.com".into()];
        team.leases.approvers = vec!["Bob@example.com".into()];
        locked(&accounts.teams).insert(team.name.clone(), team.clone());
        let notifier = Arc::new(FakeNotifier::default());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap(),
        ));
        let settings = NotifySettings {
            admin_emails: vec!["platform@example.com".into()],
            topic: false,
            email: true,
        };
        let n = Notifications::new(
            accounts.clone(),
            Arc::new(FakeMarkers::default()),
            notifier.clone(),
            clock,
            settings,
        );
        let sent = n.notify(&approval_requested()).await.unwrap();
        assert_eq!(
            sent.sent,
            ["email bob@example.com", "email platform@example.com"],
            "the approver and the admins; not ana, nor the contacts"
        );

        // An approver known only by an IAM ARN cannot be emailed: the
        // team's contacts hear of it instead.
        team.leases.approvers = vec!["arn:aws:iam::123456789012:user/bob".into()];
        locked(&accounts.teams).insert(team.name.clone(), team);
        let mut again = approval_requested();
        again.id = "e-3".into();
        let sent = n.notify(&again).await.unwrap();
        assert_eq!(
            sent.sent,
            ["email platform@example.com", "email leads@example.com"]
        );
        assert!(
            locked(&notifier.sent)
                .iter()
                .all(|(_, subject)| subject.contains("Approval needed"))
        );
    }
}
