//! `purser budgets set|show`

use serde_json::{Map, Value, json};

use super::client::{ApiError, Client};
use crate::cli::{BudgetMode, BudgetSetArgs, BudgetShowArgs, Output};
use crate::output::{cell, money, print_json, println, record, table_right};

pub async fn set(args: BudgetSetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let mut body = json!({"amount": args.amount.trim()});
    if !args.thresholds.is_empty() {
        body["thresholds"] = json!(args.thresholds);
    }
    if !args.actions.is_empty() {
        let mut actions = Map::new();
        for (percent, list) in &args.actions {
            actions.insert(percent.to_string(), json!(list));
        }
        body["actions"] = Value::Object(actions);
    }
    if !args.runaway.is_empty() {
        body["runaway"] = json!(args.runaway);
    }
    if let Some(mode) = args.mode {
        body["mode"] = json!(match mode {
            BudgetMode::Actual => "actual",
            BudgetMode::Forecast => "forecast",
        });
    }
    let budget = client
        .put(&["teams", &args.team, "budget"], &body)
        .await
        .map_err(|e| no_team(e, &args.team))?;
    match args.output {
        Output::Json => print_json(&budget),
        Output::Table => println(budget_view(&budget)),
    }
}

pub async fn show(args: BudgetShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let budget = client
        .get(&["teams", &args.team, "budget"], &[])
        .await
        .map_err(|e| {
            ApiError::rehint(
                e,
                "not_found",
                format!(
                    "set one with `purser budgets set {} --amount AMOUNT` \
                     (or create the team first with `purser teams set {}`)",
                    args.team, args.team
                ),
            )
        })?;
    match args.output {
        Output::Json => print_json(&budget),
        Output::Table => println(budget_view(&budget)),
    }
}

fn no_team(e: anyhow::Error, team: &str) -> anyhow::Error {
    ApiError::rehint(
        e,
        "not_found",
        format!("create the team first: `purser teams set {team} --quota N --member ARN`"),
    )
}

/// The team's budget (when it has one), then its accounts' own budgets.
fn budget_view(b: &Value) -> String {
    let mut text = if b["amount"].is_null() {
        record(&[
            ("TEAM", cell(&b["team"])),
            ("AMOUNT", "no team budget".to_string()),
        ])
    } else {
        team_budget_view(b)
    };
    if let Some(accounts) = b["accounts"].as_array().filter(|a| !a.is_empty()) {
        text.push_str("\n\nACCOUNTS' OWN BUDGETS (their lease template's, for the lease)\n");
        text.push_str(&accounts_table(accounts).to_string());
    }
    text
}

/// Each account with a budget of its own: its budget, its lease's spend,
/// the thresholds crossed this lease, and whether (and by what) it is frozen.
fn accounts_table(accounts: &[Value]) -> comfy_table::Table {
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let currency = a["currency"].as_str().unwrap_or("USD");
            let crossed: Vec<String> = a["crossed_thresholds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(|t| format!("{t} %"))
                .collect();
            let by: Vec<&str> = a["frozen_by"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            vec![
                cell(&a["account_id"]),
                cell(&a["owner"]),
                format!(
                    "{} v{}",
                    a["template"]["name"].as_str().unwrap_or("-"),
                    a["template"]["version"]
                ),
                money(&a["amount"], currency),
                money(&a["spend"], currency),
                if crossed.is_empty() {
                    "-".into()
                } else {
                    crossed.join(", ")
                },
                if a["frozen"].as_bool().unwrap_or(false) {
                    format!("yes ({})", by.join(", "))
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    table_right(
        &[
            "ACCOUNT", "OWNER", "TEMPLATE", "BUDGET", "SPEND", "CROSSED", "FROZEN",
        ],
        rows,
        &[3, 4],
    )
}

/// The team's budget, this period's spend against it, and its thresholds.
fn team_budget_view(b: &Value) -> String {
    let currency = b["currency"].as_str().unwrap_or("USD");
    let amount: f64 = number(&b["amount"]).unwrap_or(0.0);
    let percent_of = |v: &Value| match number(v) {
        Some(x) if amount > 0.0 => format!(" ({:.1} % of the budget)", x / amount * 100.0),
        _ => String::new(),
    };
    let frozen = if b["frozen"].as_bool().unwrap_or(false) {
        "yes: the team's accounts are frozen (raise the budget, or wait for the next period)"
    } else {
        "no"
    };
    let mut text = record(&[
        ("TEAM", cell(&b["team"])),
        (
            "AMOUNT",
            format!(
                "{} a month, on {} spend",
                money(&b["amount"], currency),
                match b["mode"].as_str() {
                    Some("forecast") => "forecast",
                    _ => "actual",
                }
            ),
        ),
        ("PERIOD", cell(&b["period"])),
        (
            "SPEND",
            format!(
                "{}{}",
                money(&b["spend"], currency),
                percent_of(&b["spend"])
            ),
        ),
        (
            "FORECAST",
            format!(
                "{}{}",
                money(&b["forecast"], currency),
                percent_of(&b["forecast"])
            ),
        ),
        ("FROZEN", frozen.to_string()),
        (
            "THROTTLED",
            match b["throttled"].as_u64() {
                Some(0) | None => "no".to_string(),
                Some(n) => format!(
                    "{n} Lambda function{} at reserved concurrency 0 (restored when spend is back within the budget)",
                    if n == 1 { "" } else { "s" }
                ),
            },
        ),
    ]);
    let crossed: Vec<u64> = b["crossed_thresholds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = b["thresholds"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(Value::as_u64)
                .map(|t| {
                    let at = amount * t as f64 / 100.0;
                    let actions: Vec<&str> = b["actions"][t.to_string()]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    vec![
                        format!("{t} %"),
                        format!("{} {currency}", trim_number(at)),
                        if actions.is_empty() {
                            "-".into()
                        } else {
                            actions.join(", ")
                        },
                        if crossed.contains(&t) {
                            "crossed".into()
                        } else {
                            "-".into()
                        },
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if !rows.is_empty() {
        text.push_str("\n\n");
        text.push_str(
            &table_right(
                &["THRESHOLD", "AT", "ACTIONS", "THIS PERIOD"],
                rows,
                &[0, 1],
            )
            .to_string(),
        );
    }
    let rules: Vec<Vec<String>> = b["runaway"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut limits = Vec::new();
            if let Some(x) = r["usd_per_hour"].as_str() {
                limits.push(format!("> {x} {currency} in an hour"));
            }
            if let Some(n) = r["median_multiple"].as_str() {
                limits.push(format!(
                    "> {n} x the week's hourly median (and > {} {currency})",
                    cell(&r["at_least_usd"])
                ));
            }
            let actions: Vec<&str> = r["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            vec![cell(&r["per"]), limits.join(" or "), actions.join(", ")]
        })
        .collect();
    if !rules.is_empty() {
        text.push_str("\n\nRunaway rules (an episode is announced and acted on once):\n");
        text.push_str(&table_right(&["PER", "WHEN", "ACTIONS"], rules, &[]).to_string());
    }
    text
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A figure with at most 6 decimals and no trailing zeros.
fn trim_number(x: f64) -> String {
    let text = format!("{x:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_reads_with_its_currency_and_thresholds() {
        let view = budget_view(&json!({
            "team": "payments", "amount": "10", "currency": "USD", "mode": "actual",
            "thresholds": [50, 100], "actions": {"50": ["notify"], "100": ["notify", "freeze"]},
            "period": "2026-11", "spend": "6.5", "forecast": "12", "crossed_thresholds": [50],
            "frozen": false, "throttled": 3,
        }));
        assert!(view.contains("10 USD a month, on actual spend"), "{view}");
        assert!(view.contains("6.5 USD (65.0 % of the budget)"), "{view}");
        assert!(view.contains("notify, freeze"), "{view}");
        assert!(view.contains("crossed"), "{view}");
        assert!(view.contains("5 USD"), "{view}");
        assert!(
            view.contains("3 Lambda functions at reserved concurrency 0"),
            "{view}"
        );
        assert!(!view.contains("ACCOUNTS"), "{view}");
    }

    #[test]
    fn runaway_rules_read_as_a_table() {
        let view = team_budget_view(&json!({
            "team": "payments", "amount": "10", "currency": "USD", "mode": "actual",
            "thresholds": [100], "actions": {"100": ["notify"]}, "period": "2026-11",
            "spend": "1", "forecast": "2", "crossed_thresholds": [], "frozen": false,
            "throttled": 0, "runaway": [
                {"per": "resource", "usd_per_hour": "20", "median_multiple": null,
                 "at_least_usd": "1", "actions": ["notify", "stop-resource"]},
                {"per": "account", "usd_per_hour": null, "median_multiple": "10",
                 "at_least_usd": "3", "actions": ["freeze"]}]
        }));
        assert!(view.contains("Runaway rules"), "{view}");
        assert!(view.contains("> 20 USD in an hour"), "{view}");
        assert!(view.contains("notify, stop-resource"), "{view}");
        assert!(
            view.contains("> 10 x the week's hourly median (and > 3 USD)"),
            "{view}"
        );
    }

    #[test]
    fn accounts_with_their_own_budget_read_as_a_table() {
        let account = |id: &str, spend: &str, crossed: Value, frozen_by: Value| {
            json!({"account_id": id, "owner": "ana@example.com",
                "template": {"name": "hackathon", "version": 2}, "amount": "5",
                "currency": "USD", "spend": spend, "crossed_thresholds": crossed,
                "frozen": frozen_by != json!([]), "frozen_by": frozen_by})
        };
        let accounts = json!([
            account("210987654321", "6.2", json!([50, 100]), json!(["account"])),
            account("345678901234", "0.24", json!([]), json!([])),
        ]);
        let view = budget_view(&json!({"team": "payments", "accounts": accounts}));
        assert!(view.contains("no team budget"), "{view}");
        assert!(view.contains("ACCOUNTS' OWN BUDGETS"), "{view}");
        assert!(view.contains("hackathon v2"), "{view}");
        assert!(view.contains("50 %, 100 %"), "{view}");
        assert!(view.contains("yes (account)"), "{view}");
        let mut team = json!({"team": "payments", "amount": "10", "currency": "USD",
            "thresholds": [100], "actions": {}, "period": "2026-11", "spend": "6.44",
            "forecast": "12", "crossed_thresholds": [], "frozen": false, "throttled": 0});
        team["accounts"] = accounts;
        let view = budget_view(&team);
        assert!(view.contains("10 USD a month"), "{view}");
        assert!(view.contains("345678901234"), "{view}");
    }
}
