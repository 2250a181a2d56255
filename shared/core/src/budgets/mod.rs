//! Team budgets: the budget itself (`budget`), its enforcement within
//! seconds of a spend change (`service`), and the `throttle-lambdas` action
//! (`throttle`).

pub mod budget;
pub mod service;
pub mod throttle;

pub use budget::*;
pub use service::*;
pub use throttle::*;
