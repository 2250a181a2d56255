//! `purser costs --team T [--from D] [--to D] [--by day|account|function]`
//!
//! From the API: by day and by account the streaming counters (seconds
//! behind) plus what the spend function settled from the lake and the CUR;
//! by function the lake's `cost_per_function` (minutes behind).

use serde_json::Value;

use super::client::{ApiError, Client};
use crate::cli::{CostsArgs, CostsBy, Output};
use crate::output::{cell, money, print_json, println, table_right};

pub async fn run(args: CostsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let mut query = vec![(
        "by",
        match args.by {
            CostsBy::Account => "account",
            CostsBy::Function => "function",
            CostsBy::Day => "day",
        }
        .to_string(),
    )];
    if let Some(from) = args.from {
        query.push(("from", from.to_string()));
    }
    if let Some(to) = args.to {
        query.push(("to", to.to_string()));
    }
    let costs = client
        .get(&["teams", &args.team, "costs"], &query)
        .await
        .map_err(|e| {
            ApiError::rehint(
                e,
                "not_found",
                format!(
                    "there is no team {}: `purser teams set {} --quota N` creates it",
                    args.team, args.team
                ),
            )
        })?;
    if let Output::Json = args.output {
        return print_json(&costs);
    }
    let currency = costs["currency"].as_str().unwrap_or("USD");
    let items = costs["items"].as_array().cloned().unwrap_or_default();
    let table = match args.by {
        CostsBy::Account => table_right(
            &["ACCOUNT", "REQUEST", "AMOUNT"],
            items
                .iter()
                .map(|i| {
                    vec![
                        cell(&i["account_id"]),
                        cell(&i["request_id"]),
                        money(&i["amount"], currency),
                    ]
                })
                .collect(),
            &[2],
        ),
        CostsBy::Function => table_right(
            &["ACCOUNT", "REGION", "FUNCTION", "INVOCATIONS", "AMOUNT"],
            items
                .iter()
                .map(|i| {
                    vec![
                        cell(&i["account_id"]),
                        cell(&i["region"]),
                        cell(&i["function_name"]),
                        cell(&i["invocations"]),
                        money(&i["amount"], currency),
                    ]
                })
                .collect(),
            &[3, 4],
        ),
        CostsBy::Day => table_right(
            &["DAY", "AMOUNT"],
            items
                .iter()
                .map(|i| vec![cell(&i["day"]), money(&i["amount"], currency)])
                .collect(),
            &[1],
        ),
    };
    if items.is_empty() {
        println(format!(
            "no spend recorded for team {} from {} to {}",
            cell(&costs["team"]),
            cell(&costs["from"]),
            cell(&costs["to"])
        ))?;
    } else {
        println(table)?;
    }
    println(format!(
        "\ntotal {}  ({} to {}; {})",
        money(&costs["total"], currency),
        cell(&costs["from"]),
        cell(&costs["to"]),
        sources(&costs["source"])
    ))
}

/// Where the figures come from, as the API says: `stream` first.
fn sources(source: &Value) -> String {
    let Some(map) = source.as_object() else {
        return "estimated from invocation reports".into();
    };
    let mut parts: Vec<String> = ["stream", "athena", "cur"]
        .iter()
        .filter_map(|k| map.get(*k).and_then(Value::as_str).map(String::from))
        .collect();
    if let Some(at) = map.get("settled_at").and_then(Value::as_str) {
        parts.push(format!("last settled {at}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_read_in_order() {
        assert_eq!(
            sources(&json!({"cur": "c", "stream": "s", "settled_at": "2026-11-21T10:00:00Z"})),
            "s; c; last settled 2026-11-21T10:00:00Z"
        );
        assert_eq!(sources(&json!({"athena": "a"})), "a");
        assert_eq!(sources(&Value::Null), "estimated from invocation reports");
    }
}
