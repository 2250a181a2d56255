//! The Notifier port: telling people what happened, through the channels a
//! team chose: email (SES v2 on AWS), chat (Slack's and Microsoft Teams'
//! incoming webhooks) and Purser's SNS topic (AWS Chatbot and anything else).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An incoming webhook's URL. It is a secret (whoever has it may post to
/// the channel): it never shows in `Debug`, in logs or in read responses.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// A webhook URL: `https://`, a host, at most 2,048 characters (locally
    /// also `http://127.0.0.1` or `http://localhost`, for a test receiver).
    pub fn parse(url: &str) -> Result<Self, String> {
        let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
        if url.len() > 2048 {
            return Err("is longer than 2048 characters".into());
        }
        if !(url.starts_with("https://") || local) {
            return Err("must be an https:// URL".into());
        }
        let host = url.split("://").nth(1).unwrap_or("").split('/').next();
        if host.is_none_or(str::is_empty) || url.chars().any(char::is_whitespace) {
            return Err("is not a URL".into());
        }
        Ok(Self(url.to_string()))
    }

    /// The URL itself, to post to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What may be shown of it: its host.
    pub fn redacted(&self) -> String {
        let host = self.0.split("://").nth(1).unwrap_or("").split('/').next();
        format!(
            "{}://{}/…",
            self.0.split("://").next().unwrap_or("https"),
            host.unwrap_or("")
        )
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.redacted())
    }
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Recipient {
    Email {
        address: String,
    },
    Slack {
        webhook: WebhookUrl,
    },
    Teams {
        webhook: WebhookUrl,
    },
    /// Purser's SNS topic.
    Topic,
}

impl Recipient {
    /// Who it is, as logs and `purser notifications list` show it (a
    /// webhook by its host only).
    pub fn describe(&self) -> String {
        match self {
            Recipient::Email { address } => format!("email {address}"),
            Recipient::Slack { webhook } => format!("slack {}", webhook.redacted()),
            Recipient::Teams { webhook } => format!("teams {}", webhook.redacted()),
            Recipient::Topic => "sns topic".into(),
        }
    }

    pub fn channel(&self) -> &'static str {
        match self {
            Recipient::Email { .. } => "email",
            Recipient::Slack { .. } => "slack",
            Recipient::Teams { .. } => "teams",
            Recipient::Topic => "sns",
        }
    }
}

/// One message: what happened, why, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The event it tells of (its id), and the event's detail-type.
    pub event_id: String,
    pub kind: String,
    pub subject: String,
    /// Plain text, a few short paragraphs.
    pub text: String,
    /// The one link that matters (a sign-in link), if any.
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The channel refused this message for good (an unverified address, a
    /// webhook that is gone): retrying will not help.
    #[error("{channel} refused the message: {message}")]
    Refused { channel: String, message: String },
    #[error("{channel} could not be reached: {message}")]
    Unavailable { channel: String, message: String },
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends `message` to `recipient`.
    async fn send(&self, recipient: &Recipient, message: &Message) -> Result<(), NotifyError>;
}
