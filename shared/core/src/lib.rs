//! Purser's domain, by folder, mirroring the functions: `accounts` (vend,
//! account-events, reaper, the api's accounts and teams), `budgets` (with
//! the throttle), `spend` (pricing and settlement), `lake` (recorder and
//! named queries), `events` (the envelope and catalog) and `ports` (one
//! file per port); `services` builds every service from one `Ports`. Nothing here knows AWS or does I/O. EventBridge's own
//! decisions (patterns, schedules) live in `purser-eventbridge`.

pub mod access;
pub mod accounts;
pub mod budgets;
pub mod events;
#[cfg(test)]
pub(crate) mod fakes;
pub mod guardrails;
pub mod handler;
pub mod lake;
pub mod leases;
pub mod notify;
pub mod ports;
pub mod recycling;
pub mod services;
pub mod spend;
pub mod validation;

pub use accounts::{Account, AccountState, NewAccount, Team, TeamName, TeamNotify};
pub use events::{EntryError, Event, EventEntry};
pub use handler::{Handler, HandlerError};
pub use ports::{
    AccountStore, Appended, BudgetStore, BusError, Clock, CreationState, CreationStatus,
    DeploymentLog, DeploymentMark, DeploymentSource, EventBus, FunctionSpend, HourlySpend,
    IdempotencyKey, Inserted, LakeError, LakeSink, LambdasError, ManualClock, Marker, Markers,
    MemberFunction, MemberLambdas, MemberResource, MemberResources, MemberStatus, NoLambdas,
    Organization, OrganizationError, Page, RateAdd, RejectedEntry, ResourcesError, SettlementStore,
    ShiftedClock, SpendAdd, SpendCounters, StopOutcome, Stoppable, Store, StoreError, SystemClock,
    TemplateStore, Transitioned,
};
pub use services::{Ports, RecyclingSettings, Settings, Unwired};
pub use validation::ValidationError;
