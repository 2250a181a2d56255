//! Team budgets: the budget itself (`budget`), its enforcement within
//! seconds of a spend change (`service`), and the `throttle-lambdas` action
//! (`throttle`); per-account budgets, a lease template's, weighed over the
//! account's lease in the same evaluation (`lease`).

pub mod budget;
pub mod lease;
pub mod service;
pub mod throttle;

pub use budget::*;
pub use lease::*;
pub use service::*;
pub use throttle::*;
