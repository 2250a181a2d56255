//! Accounts and teams: the request a developer makes and its lifecycle
//! (`account`), who may ask for what (`team`), and what Purser does with
//! them on the ports (`service`).

pub mod account;
pub mod blueprinting;
pub mod guardrailing;
mod leasing;
pub mod recycling;
pub mod service;
pub mod team;

pub use account::*;
pub use blueprinting::{AccountBlueprints, BlueprintRun, BlueprintStatus};
pub use guardrailing::AccountGuardrails;
pub use recycling::{AccountRecycling, POOL_OU};
pub use service::*;
pub use team::*;
