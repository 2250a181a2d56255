//! `purser pool show` and `purser accounts release`: the pools of recycled
//! accounts of lease templates with `lease_end: recycle`, and a
//! quarantined account let out after a look (admins).

use serde_json::{Value, json};

use super::client::Client;
use crate::cli::{Output, PoolShowArgs, ReleaseArgs};
use crate::output::{cell, print_json, println, record, table};

/// Per template: sizes by state, the ages, and what is cleaning or
/// quarantined (with why), one table each.
pub async fn show(args: PoolShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let view = client.get(&["pool"], &[]).await?;
    match args.output {
        Output::Json => print_json(&view),
        Output::Table => {
            let pools = view["pools"].as_array().cloned().unwrap_or_default();
            if pools.is_empty() {
                return println("no lease template recycles, and no account is in a pool");
            }
            let rows = pools
                .iter()
                .map(|p| {
                    let n = |state: &str| cell(&p["counts"][state]);
                    vec![
                        cell(&p["template"]),
                        cell(&p["pool_size"]),
                        n("cleaning"),
                        n("cooling"),
                        n("available"),
                        n("quarantined"),
                        hours(&p["oldest_available_hours"]),
                        hours(&p["oldest_cooling_hours"]),
                    ]
                })
                .collect();
            println(table(
                &[
                    "template",
                    "pool size",
                    "cleaning",
                    "cooling",
                    "available",
                    "quarantined",
                    "oldest available",
                    "oldest cooling",
                ],
                rows,
            ))?;
            let watched: Vec<Vec<String>> = pools
                .iter()
                .flat_map(|p| {
                    let template = cell(&p["template"]);
                    p["accounts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|a| a["state"] == "cleaning" || a["state"] == "quarantined")
                        .map(move |a| {
                            vec![
                                template.clone(),
                                cell(&a["request_id"]),
                                cell(&a["account_id"]),
                                cell(&a["state"]),
                                hours(&a["hours_in_state"]),
                                format!(
                                    "{} clean, {} failed",
                                    cell(&a["clean_passes"]),
                                    cell(&a["failed_runs"])
                                ),
                                cell(&a["reason"]),
                            ]
                        })
                })
                .collect();
            if !watched.is_empty() {
                println("")?;
                println(table(
                    &[
                        "template", "request", "account", "state", "for", "runs", "why",
                    ],
                    watched,
                ))?;
            }
            Ok(())
        }
    }
}

/// `12.5 h`, or `-`.
fn hours(value: &Value) -> String {
    match value.as_f64() {
        Some(h) => format!("{h:.1} h"),
        None => "-".into(),
    }
}

pub async fn release(args: ReleaseArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let account = client
        .post(&["accounts", &args.id, "release"], &json!({}), &[])
        .await?;
    if account["released"] == "runaway_freeze" {
        // The runaway guard's hold let go: the budgets function unfreezes.
        return match args.output {
            Output::Json => print_json(&account),
            Output::Table => println(record(&[
                ("request", cell(&account["account"]["id"])),
                ("account", cell(&account["account"]["account_id"])),
                ("state", cell(&account["account"]["state"])),
                ("released", cell(&account["message"])),
            ])),
        };
    }
    match args.output {
        Output::Json => print_json(&account),
        Output::Table => println(record(&[
            ("request", cell(&account["id"])),
            ("account", cell(&account["account_id"])),
            ("state", cell(&account["state"])),
            (
                "cooling until",
                cell(&account["recycling"]["cooling_until"]),
            ),
            ("released by", cell(&account["recycling"]["released_by"])),
        ])),
    }
}
