//! Helpers shared by the end-to-end tests.

pub mod aws;
pub mod faults;
pub mod local;
