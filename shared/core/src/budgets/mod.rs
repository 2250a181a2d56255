//! Team budgets: the budget itself (`budget`), its enforcement within
//! seconds of a spend change (`service`), and the `throttle-lambdas` action
//! (`throttle`); per-account budgets, a lease template's, weighed over the
//! account's lease in the same evaluation (`lease`); spend-rate rules, the
//! runaway guard, in that evaluation too (`runaway`).

pub mod budget;
pub mod guard;
pub mod lease;
pub mod runaway;
pub mod service;
pub mod throttle;

pub use budget::*;
pub use guard::SPEND_RATE_EXCEEDED;
pub use lease::*;
pub use service::*;
pub use throttle::*;
