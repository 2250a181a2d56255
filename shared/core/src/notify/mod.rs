//! Notifications: what the [`Notifier`](crate::ports::Notifier) port's
//! adapters send, channel by channel ([`channels`]).

pub mod channels;
