//! `purser costs --team T [--from D] [--to D] [--by day|account|function]`
//!
//! By day and by account from the API (the streaming counters, within
//! seconds); by function from the lake, with the named query
//! `top_functions` that Athena runs too.

use std::str::FromStr;

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate, Utc};
use purser_core::queries;
use purser_core::query::{QueryEngine, QueryError};
use purser_query::LocalQueryEngine;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::client::{ApiError, Client};
use crate::cli::{CostsArgs, CostsBy, Output};
use crate::output::{cell, money, print_json, println, table_right};

/// Functions per month asked of `top_functions` (then kept to the team's).
const FUNCTIONS_PER_MONTH: u32 = 100_000;

pub async fn run(args: CostsArgs) -> anyhow::Result<()> {
    if args.by == CostsBy::Function {
        return by_function(args).await;
    }
    let client = Client::new(&args.api).await?;
    let mut query = vec![(
        "by",
        match args.by {
            CostsBy::Account => "account",
            _ => "day",
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
        _ => table_right(
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
        costs["source"]["stream"]
            .as_str()
            .unwrap_or("estimated from invocation reports")
    ))
}

/// The calendar months (`YYYY-MM`) from `from` to `to`.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = (from.year(), from.month());
    while (y, m) <= (to.year(), to.month()) {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

async fn by_function(args: CostsArgs) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let from = args
        .from
        .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let to = args.to.unwrap_or(today);
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let lake = args.data_dir.join("lake");
    if !lake.is_dir() {
        bail!(
            "costs by function come from the lake of invocation records, and there is no lake in {}:\n  \
             locally, run `purser up` (or `purser demo`) and report invocations, or pass --data-dir D;\n  \
             on AWS, run the same named query on Athena: `purser query top_functions --param {} --param 10 --athena`",
            lake.display(),
            &from.to_string()[..7]
        );
    }
    let query =
        queries::named("top_functions").context("the named query top_functions is missing")?;
    let engine = LocalQueryEngine::new(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot read the lake in {}: {e}", lake.display()))?;
    let mut items: Vec<Value> = Vec::new();
    let mut total = Decimal::ZERO;
    for month in months(from, to) {
        let result = match engine
            .run(&query, &[month.clone(), FUNCTIONS_PER_MONTH.to_string()])
            .await
        {
            Ok(result) => result,
            Err(QueryError::InvalidParameters(m)) => bail!("{m}"),
            Err(e) => bail!("top_functions for {month}: {e}"),
        };
        for row in result.objects() {
            if row.get("team").and_then(Value::as_str) != Some(args.team.as_str()) {
                continue;
            }
            let cost = row.get("cost_usd").cloned().unwrap_or(Value::Null);
            let amount = match &cost {
                Value::String(s) => Decimal::from_str(s).ok(),
                Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                _ => None,
            }
            .unwrap_or_default();
            total += amount;
            let get = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
            items.push(json!({
                "month": month,
                "account_id": get("account_id"),
                "region": get("region"),
                "function_name": get("function_name"),
                "invocations": get("invocations"),
                "cold_starts": get("cold_starts"),
                "avg_billed_ms": get("avg_billed_ms"),
                "amount": amount.round_dp(6).normalize().to_string(),
            }));
        }
    }
    let total = total.round_dp(6).normalize().to_string();
    match args.output {
        Output::Json => print_json(&json!({
            "team": args.team, "currency": "USD", "from": from.to_string(), "to": to.to_string(),
            "by": "function", "total": total, "items": items,
            "source": {"lake": "the named query top_functions, a calendar month at a time"},
        })),
        Output::Table => {
            if items.is_empty() {
                println(format!(
                    "no invocations recorded for team {} in {} (by function, the lake counts whole months)",
                    args.team,
                    months(from, to).join(", ")
                ))?;
                return Ok(());
            }
            let rows = items
                .iter()
                .map(|i| {
                    let ms = i["avg_billed_ms"]
                        .as_f64()
                        .map_or_else(|| cell(&i["avg_billed_ms"]), |ms| format!("{ms:.1}"));
                    vec![
                        cell(&i["month"]),
                        cell(&i["account_id"]),
                        cell(&i["region"]),
                        cell(&i["function_name"]),
                        cell(&i["invocations"]),
                        cell(&i["cold_starts"]),
                        ms,
                        money(&i["amount"], "USD"),
                    ]
                })
                .collect();
            println(table_right(
                &[
                    "MONTH",
                    "ACCOUNT",
                    "REGION",
                    "FUNCTION",
                    "INVOCATIONS",
                    "COLD STARTS",
                    "AVG BILLED MS",
                    "AMOUNT",
                ],
                rows,
                &[4, 5, 6, 7],
            ))?;
            println(format!(
                "\ntotal {total} USD  ({}; from the lake's invocation records, whole calendar months)",
                months(from, to).join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_cover_the_range() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(months(d("2026-11-03"), d("2026-11-20")), ["2026-11"]);
        assert_eq!(
            months(d("2026-11-03"), d("2027-01-02")),
            ["2026-11", "2026-12", "2027-01"]
        );
    }
}
