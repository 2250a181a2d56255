//! Notifications: what the [`Notifier`](crate::ports::Notifier) port's
//! adapters send, channel by channel ([`channels`]).

pub mod channels;
pub mod messages;
pub mod service;

pub use messages::{NOTIFIED, message_for};
pub use service::{Notifications, NotifyFailed, NotifySettings, Sent};
