//! `purser teams set|show`

use serde_json::{Value, json};

use super::client::{ApiError, Client};
use crate::cli::{Output, TeamSetArgs, TeamShowArgs};
use crate::output::{print_json, println, record};

pub async fn set(args: TeamSetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    // What is not given stays as it was: read the team first.
    let existing = match client.get(&["teams", &args.team], &[]).await {
        Ok(team) => Some(team),
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|a| a.status == 404) =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    let mut body = json!({});
    match (args.quota, &existing) {
        (Some(quota), _) => body["quota"] = json!(quota),
        (None, Some(team)) => body["quota"] = team["quota"].clone(),
        (None, None) => {}
    }
    match (args.members.is_empty(), &existing) {
        (false, _) => body["members"] = json!(args.members),
        (true, Some(team)) => body["members"] = team["members"].clone(),
        (true, None) => {}
    }
    // Its default template and approvers stay as they were too.
    if let Some(team) = &existing {
        for field in ["default_template", "approvers"] {
            if !team[field].is_null() {
                body[field] = team[field].clone();
            }
        }
    }
    let team = client.put(&["teams", &args.team], &body).await?;
    match args.output {
        Output::Json => print_json(&team),
        Output::Table => {
            println(team_record(&team))?;
            if existing.is_none() {
                eprintln!(
                    "\nteam {} created: its members may now `purser accounts request --team {}`",
                    args.team, args.team
                );
            }
            Ok(())
        }
    }
}

pub async fn show(args: TeamShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let team = client.get(&["teams", &args.team], &[]).await.map_err(|e| {
        ApiError::rehint(
            e,
            "not_found",
            format!(
                "create it with `purser teams set {} --quota N --member ARN`",
                args.team
            ),
        )
    })?;
    match args.output {
        Output::Json => print_json(&team),
        Output::Table => println(team_record(&team)),
    }
}

fn team_record(team: &Value) -> String {
    let members: Vec<&str> = team["members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let quota = &team["quota"];
    let open = &team["open_accounts"];
    record(&[
        (
            "TEAM",
            team["team"].as_str().unwrap_or_default().to_string(),
        ),
        ("QUOTA", format!("{quota} open accounts")),
        ("OPEN", open.to_string()),
        (
            "MEMBERS",
            if members.is_empty() {
                "- (only platform admins may request accounts for it)".to_string()
            } else {
                members.join("\n         ")
            },
        ),
    ])
}
