//! Spend: what Lambda costs (`pricing`) and how a team's month is settled
//! from the lake and the bill (`settlement`).

pub mod costs;
pub mod pricing;
pub mod settlement;

pub use costs::*;
pub use pricing::*;
pub use settlement::*;
