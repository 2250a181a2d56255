//! One module per resource of infra/openapi.json.

pub mod accounts;
pub mod budgets;
pub mod costs;
pub mod deployments;
pub mod teams;
