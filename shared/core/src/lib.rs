//! Purser's domain: the event envelope, the ports the domain talks through
//! and the handler contract every function implements. Nothing here knows
//! AWS or does I/O. EventBridge's own decisions (patterns, schedules) live
//! in `purser-eventbridge`.

pub mod account;
pub mod accounts;
pub mod budget;
pub mod budgets;
pub mod catalog;
pub mod clock;
pub mod event;
pub mod handler;
pub mod lake;
pub mod lambdas;
pub mod organization;
pub mod ports;
pub mod pricing;
pub mod queries;
pub mod query;
pub mod recorder;
pub mod spend;
pub mod team;
pub mod throttle;
pub mod validation;

pub use account::{Account, AccountState, NewAccount};
pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use event::{EntryError, Event, EventEntry};
pub use handler::{Handler, HandlerError};
pub use lambdas::{LambdasError, MemberFunction, MemberLambdas, NoLambdas};
pub use organization::{
    CreationState, CreationStatus, MemberStatus, Organization, OrganizationError,
};
pub use ports::{
    Appended, BusError, EventBus, IdempotencyKey, Inserted, LakeError, LakeSink, Page,
    RejectedEntry, SpendAdd, Store, StoreError, Transitioned,
};
pub use team::{Team, TeamName};
pub use validation::ValidationError;
