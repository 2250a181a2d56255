//! Purser's domain: the event envelope, EventBridge event patterns, schedule
//! expressions, the ports the domain talks through and the handler contract
//! every function implements. Nothing here knows AWS or does I/O.

pub mod clock;
pub mod event;
pub mod handler;
pub mod pattern;
pub mod ports;
pub mod schedule;

pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{EntryError, Event, EventEntry};
pub use handler::{Handler, HandlerError};
pub use pattern::{EventPattern, PatternError};
pub use ports::{BusError, EventBus, RejectedEntry, Store, StoreError};
