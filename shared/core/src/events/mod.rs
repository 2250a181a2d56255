//! Purser's events: the EventBridge envelope and the entries producers put
//! (`envelope`), and the account events' detail-types and detail
//! (`catalog`).

pub mod announce;
pub mod catalog;
pub mod envelope;

pub use announce::{AnnounceError, Announcement};
pub use catalog::*;
pub use envelope::*;
