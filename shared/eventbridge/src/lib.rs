//! Amazon EventBridge's decisions, offline: whether an event pattern is valid
//! and what it matches ([`EventPattern`]), and when a schedule expression
//! fires ([`ScheduleExpression`]). The local runtime's bus and timers and
//! `purser events test-pattern` run on it; it knows nothing of Purser.

pub mod pattern;
pub mod schedule;

pub use pattern::{EventPattern, PatternError, validate_test_event};
pub use schedule::{ScheduleError, ScheduleExpression};
