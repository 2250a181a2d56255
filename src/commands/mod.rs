pub mod accounts;
pub mod budgets;
pub mod client;
pub mod costs;
pub mod events;
pub mod leases;
pub mod notifications;
pub mod pool;
pub mod prices;
pub mod query;
pub mod teams;
pub mod up;

use anyhow::Context;

/// A JSON argument given inline or as `file://PATH`, as the AWS CLI takes them.
pub fn json_argument(name: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    let text = match text.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--{name}: cannot read {path}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).with_context(|| format!("--{name} is not valid JSON"))
}
