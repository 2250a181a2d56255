//! `purser templates set|list|show` and `purser approvals list|approve|deny`,
//! and `purser accounts extend`: lease templates, the requests and
//! extensions waiting for an approver, and longer leases.

use serde_json::{Value, json};

use super::client::{ApiError, Client};
use super::json_argument;
use crate::cli::{
    ApprovalDecideArgs, ApprovalsListArgs, ExtendArgs, Output, TemplateSetArgs, TemplateShowArgs,
    TemplatesListArgs,
};
use crate::output::{cell, print_json, println, record, table};

pub async fn set_template(args: TemplateSetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let body = json_argument("body", &args.body)?;
    let template = client.put(&["templates", &args.name], &body).await?;
    match args.output {
        Output::Json => print_json(&template),
        Output::Table => println(template_record(&template)),
    }
}

pub async fn list_templates(args: TemplatesListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let listed = client.get(&["templates"], &[]).await?;
    match args.output {
        Output::Json => print_json(&listed),
        Output::Table => {
            let rows = items(&listed)
                .map(|t| {
                    vec![
                        cell(&t["name"]),
                        cell(&t["version"]),
                        format!("{} (max {})", t["default_lease_days"], t["max_lease_days"]),
                        approval(&t["approval"]),
                        cell(&t["description"]),
                    ]
                })
                .collect();
            println(table(
                &[
                    "TEMPLATE",
                    "VERSION",
                    "LEASE DAYS",
                    "APPROVAL",
                    "DESCRIPTION",
                ],
                rows,
            ))
        }
    }
}

pub async fn show_template(args: TemplateShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let template = client
        .get(&["templates", &args.name], &[])
        .await
        .map_err(|e| {
            ApiError::rehint(
                e,
                "not_found",
                "`purser templates list` shows the templates",
            )
        })?;
    match args.output {
        Output::Json => print_json(&template),
        Output::Table => println(template_record(&template)),
    }
}

pub async fn list_approvals(args: ApprovalsListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let query: Vec<(&str, String)> = args.team.iter().map(|t| ("team", t.clone())).collect();
    let listed = client.get(&["approvals"], &query).await?;
    match args.output {
        Output::Json => print_json(&listed),
        Output::Table => {
            let rows = items(&listed)
                .map(|a| {
                    let what = match a["pending_extension"]["days"].as_u64() {
                        Some(days) => format!("extension of {days} days"),
                        None => format!("request, {} days", cell(&a["lease_days"])),
                    };
                    vec![
                        cell(&a["id"]),
                        cell(&a["team"]),
                        cell(&a["owner"]),
                        cell(&a["template"]["name"]),
                        what,
                        cell(&a["decision"]["reason"]),
                    ]
                })
                .collect();
            println(table(
                &["ID", "TEAM", "OWNER", "TEMPLATE", "WAITING", "WHY"],
                rows,
            ))
        }
    }
}

pub async fn approve(args: ApprovalDecideArgs) -> anyhow::Result<()> {
    decide(args, "approve").await
}

pub async fn deny(args: ApprovalDecideArgs) -> anyhow::Result<()> {
    decide(args, "deny").await
}

async fn decide(args: ApprovalDecideArgs, verb: &str) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let body = match &args.reason {
        Some(reason) => json!({"reason": reason}),
        None => json!({}),
    };
    let account = client
        .post(&["accounts", &args.id, verb], &body, &[])
        .await?;
    match args.output {
        Output::Json => print_json(&account),
        Output::Table => println(decision_record(&account)),
    }
}

pub async fn extend(args: ExtendArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let account = client
        .post(
            &["accounts", &args.id, "extend"],
            &json!({"days": args.days}),
            &[],
        )
        .await?;
    match args.output {
        Output::Json => print_json(&account),
        Output::Table => {
            println(decision_record(&account))?;
            if account["pending_extension"].is_object() {
                eprintln!(
                    "\nbeyond the template's maximum: it waits for an approver (`purser approvals list`)"
                );
            }
            Ok(())
        }
    }
}

fn items(listed: &Value) -> impl Iterator<Item = &Value> {
    listed["items"].as_array().into_iter().flatten()
}

/// `never`, `always`, or `auto: lease_at_most 7, team_under_quota`.
fn approval(policy: &Value) -> String {
    match policy {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let rules: Vec<String> = o
                .get("auto")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| {
                    let mut text = cell(&r["rule"]);
                    for arg in ["days", "amount"] {
                        if !r[arg].is_null() {
                            text = format!("{text} {}", cell(&r[arg]));
                        }
                    }
                    text
                })
                .collect();
            format!("auto: {}", rules.join(", "))
        }
        _ => "-".into(),
    }
}

fn template_record(t: &Value) -> String {
    let list = |v: &Value| match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        _ => "-".into(),
    };
    record(&[
        ("TEMPLATE", cell(&t["name"])),
        ("VERSION", cell(&t["version"])),
        ("DESCRIPTION", cell(&t["description"])),
        (
            "LEASE",
            format!(
                "{} days by default, at most {} without approval",
                t["default_lease_days"], t["max_lease_days"]
            ),
        ),
        ("APPROVAL", approval(&t["approval"])),
        (
            "BUDGET",
            if t["budget"].is_object() {
                format!(
                    "{} {} per account",
                    cell(&t["budget"]["amount"]),
                    cell(&t["budget"]["currency"])
                )
            } else {
                "-".into()
            },
        ),
        ("REGIONS", list(&t["regions"])),
        (
            "TEAMS",
            if t["teams"].is_null() {
                "every team".into()
            } else {
                list(&t["teams"])
            },
        ),
        ("PERMISSIONS", cell(&t["permission_set"])),
        ("BLUEPRINT", cell(&t["blueprint"])),
    ])
}

fn decision_record(a: &Value) -> String {
    record(&[
        ("ID", cell(&a["id"])),
        ("STATE", cell(&a["state"])),
        ("LEASE END", cell(&a["lease_end"])),
        ("LEASE DAYS", cell(&a["lease_days"])),
        (
            "DECISION",
            match a["decision"]["outcome"].as_str() {
                Some(outcome) => format!(
                    "{outcome} by {}{}",
                    cell(&a["decision"]["by"]),
                    match a["decision"]["reason"].as_str() {
                        Some(r) => format!(": {r}"),
                        None => String::new(),
                    }
                ),
                None => "-".into(),
            },
        ),
        (
            "WAITING",
            match a["pending_extension"]["days"].as_u64() {
                Some(days) => format!("an extension of {days} days"),
                None => "-".into(),
            },
        ),
    ])
}
