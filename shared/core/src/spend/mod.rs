//! Spend: what Lambda costs (`pricing`), what other usage costs as it
//! happens (`usage`), and how a team's month is settled from the lake and
//! the bill (`settlement`).

pub mod costs;
pub mod pricing;
pub mod settlement;
pub mod usage;

pub use costs::*;
pub use pricing::*;
pub use settlement::*;
pub use usage::*;
