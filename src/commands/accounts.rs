//! `purser accounts request|list|show|close|login`

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::client::{ApiError, Client};
use crate::cli::{CloseArgs, ListArgs, LoginArgs, MayArgs, Output, RequestArgs, ShowArgs};
use crate::output::{cell, print_json, println, record, table};

pub async fn request(args: RequestArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let mut body = json!({"team": args.team, "owner": args.owner, "purpose": args.purpose});
    if let Some(days) = args.lease_days {
        body["lease_days"] = json!(days);
    }
    if let Some(template) = &args.template {
        body["template"] = json!(template);
    }
    let headers: Vec<(&str, String)> = args
        .idempotency_key
        .iter()
        .map(|k| ("Idempotency-Key", k.clone()))
        .collect();
    let account = client
        .post(&["accounts"], &body, &headers)
        .await
        .map_err(|e| {
            ApiError::rehint(
                e,
                "not_found",
                format!(
                    "create the team first: `purser teams set {} --quota N --member ARN`",
                    args.team
                ),
            )
        })?;
    let id = text(&account, "id");
    if account["state"] == "pending_approval" {
        eprintln!(
            "{id} waits for an approver of team {} (`purser approvals list`); follow it with `purser accounts show {id}`",
            args.team
        );
    }
    if !args.wait || account["state"] == "pending_approval" {
        return match args.output {
            Output::Json => print_json(&account),
            Output::Table => {
                println(account_record(&account))?;
                eprintln!(
                    "\nfollow it with `purser accounts show {id}` (or request with --wait next time)"
                );
                Ok(())
            }
        };
    }
    let account = wait_for(
        &client,
        &id,
        &account,
        &["ready", "frozen"],
        Duration::from_secs(args.timeout),
    )
    .await?;
    match args.output {
        Output::Json => print_json(&account),
        // The account id alone, for `ID=$(purser accounts request … --wait)`.
        Output::Table => println(text(&account, "account_id")),
    }
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(team) = &args.team {
        query.push(("team", team.clone()));
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let mut next = args.next.clone();
    let mut items: Vec<Value> = Vec::new();
    let last_page = loop {
        let mut q = query.clone();
        if let Some(token) = &next {
            q.push(("next", token.clone()));
        }
        let page = client.get(&["accounts"], &q).await?;
        if !args.all_pages {
            break page;
        }
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => break json!({"items": items, "next": null}),
        }
    };
    match args.output {
        Output::Json => print_json(&last_page),
        Output::Table => {
            let items = last_page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() && args.next.is_none() {
                println(format!(
                    "no accounts yet: request one with `purser accounts request --team {} --owner EMAIL --purpose TEXT`",
                    args.team.as_deref().unwrap_or("TEAM")
                ))?;
                return Ok(());
            }
            let rows = items
                .iter()
                .map(|a| {
                    vec![
                        text(a, "id"),
                        text(a, "state"),
                        cell(&a["account_id"]),
                        text(a, "team"),
                        text(a, "owner"),
                        text(a, "purpose"),
                        cell(&a["lease_end"]),
                    ]
                })
                .collect();
            println(table(
                &[
                    "ID",
                    "STATE",
                    "ACCOUNT",
                    "TEAM",
                    "OWNER",
                    "PURPOSE",
                    "LEASE END",
                ],
                rows,
            ))?;
            if let Some(token) = last_page["next"].as_str() {
                eprintln!(
                    "\nmore accounts: add --next {token} for the next page, or --all-pages for all"
                );
            }
            Ok(())
        }
    }
}

pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let account = client.get(&["accounts", &args.id], &[]).await?;
    match args.output {
        Output::Json => print_json(&account),
        Output::Table => println(account_record(&account)),
    }
}

pub async fn close(args: CloseArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let mut account = client.delete(&["accounts", &args.id]).await?;
    if args.wait {
        account = wait_for(
            &client,
            &args.id,
            &account,
            &["closed"],
            Duration::from_secs(args.timeout),
        )
        .await?;
    }
    match args.output {
        Output::Json => print_json(&account),
        Output::Table => {
            println(account_record(&account))?;
            if !args.wait {
                eprintln!(
                    "\nit is closing: AWS Organizations closes it shortly \
                     (`purser accounts show {}` follows it)",
                    args.id
                );
            }
            Ok(())
        }
    }
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api).await?;
    let account = client.get(&["accounts", &args.id], &[]).await?;
    let access = &account["access"];
    if let Output::Json = args.output {
        print_json(access)?;
    }
    let link = match sign_in(&args.id, &account) {
        Ok(link) => link,
        Err(why) => bail!("{why}"),
    };
    if let Output::Json = args.output {
        return Ok(());
    }
    let mut fields = vec![
        ("ACCOUNT", cell(&account["account_id"])),
        ("PERMISSION SET", cell(&access["permission_set"])),
        ("SIGN-IN LINK", link.clone()),
    ];
    if text(&account, "state") == "frozen" {
        fields.push((
            "NOTE",
            "the account is frozen: you sign in read-only until its team's budget allows again"
                .into(),
        ));
    }
    println(record(&fields))?;
    if !args.no_browser && std::io::stdout().is_terminal() && open_browser(&link) {
        eprintln!("\nopening it in your browser");
    }
    Ok(())
}

/// The account's sign-in link, or why there is none.
fn sign_in(id: &str, account: &Value) -> Result<String, String> {
    let state = text(account, "state");
    let access = &account["access"];
    let status = access["status"].as_str().unwrap_or("not_configured");
    let reason = access["reason"].as_str().filter(|r| !r.is_empty());
    if let Some(link) = access["link"].as_str().filter(|l| !l.is_empty())
        && (state == "ready" || state == "frozen")
    {
        return Ok(link.to_string());
    }
    if state != "ready" && state != "frozen" {
        let next = match state.as_str() {
            "requested" | "creating" => {
                format!("; wait for it with `purser accounts show {id}`")
            }
            "failed" => account["failure_reason"]
                .as_str()
                .map_or(String::new(), |r| format!(": {r}")),
            _ => String::new(),
        };
        return Err(format!("account {id} is {state}{next}"));
    }
    Err(match status {
        "not_configured" => "this Purser grants no sign-in; ask a platform admin".to_string(),
        "no_user" => reason.map_or_else(
            || format!("the owner of {id} has no IAM Identity Center user yet"),
            str::to_string,
        ),
        "pending" => format!(
            "the sign-in to {id} is still being set up; try again in a moment{}",
            reason.map_or(String::new(), |r| format!(" ({r})"))
        ),
        other => format!(
            "no sign-in to {id} ({other}){}",
            reason.map_or(String::new(), |r| format!(": {r}"))
        ),
    })
}

/// Opens `link` in the desktop's browser; false where there is none to ask.
fn open_browser(link: &str) -> bool {
    use std::process::{Command, Stdio};
    let mut command = if cfg!(target_os = "macos") {
        let mut c = Command::new("open");
        c.arg(link);
        c
    } else if cfg!(windows) {
        // Not `cmd /c start`: cmd would read the link's `&` as its own.
        let mut c = Command::new("rundll32");
        c.args(["url.dll,FileProtocolHandler", link]);
        c
    } else {
        // Without a display xdg-open may start a text browser in this terminal.
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return false;
        }
        let mut c = Command::new("xdg-open");
        c.arg(link);
        c
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

/// Follows an account request until it reaches one of `done` (or fails),
/// with a spinner showing its state and the time taken.
async fn wait_for(
    client: &Client,
    id: &str,
    first: &Value,
    done: &[&str],
    timeout: Duration,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner:.cyan} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(100));
    let poll = if client.is_local() {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(2)
    };
    let mut account = first.clone();
    let mut last_state = String::new();
    let mut server_errors = 0;
    loop {
        let state = text(&account, "state");
        let elapsed = started.elapsed().as_secs_f64();
        spinner.set_message(format!("{id}: {state}  {elapsed:.1}s"));
        if state != last_state && !interactive {
            // No spinner where stderr is not a terminal: one line a state.
            eprintln!("{id}: {state} ({elapsed:.1}s)");
        }
        last_state = state.clone();
        if done.contains(&state.as_str()) {
            spinner.finish_and_clear();
            eprintln!("{}", arrived(&account, elapsed));
            return Ok(account);
        }
        if state == "failed" {
            spinner.finish_and_clear();
            let reason = account["failure_reason"]
                .as_str()
                .unwrap_or("no reason given");
            bail!(
                "account request {id} failed after {elapsed:.1}s: {reason}\n  next:  \
                 fix what the reason names (an owner email already used by an AWS account \
                 needs another --owner) and request again with a new --idempotency-key"
            );
        }
        if state == "closed" && !done.contains(&"closed") {
            spinner.finish_and_clear();
            bail!("account request {id} is closed: it will not become ready");
        }
        if started.elapsed() >= timeout {
            spinner.finish_and_clear();
            bail!(
                "account request {id} is still {state} after {}s; follow it with \
                 `purser accounts show {id}` (or wait longer with --timeout SECS)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(poll).await;
        match client.get(&["accounts", id], &[]).await {
            Ok(next) => {
                account = next;
                server_errors = 0;
            }
            Err(e)
                if server_errors < 5
                    && e.downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status >= 500) =>
            {
                server_errors += 1;
            }
            Err(e) => {
                spinner.finish_and_clear();
                return Err(e).with_context(|| format!("while following {id}"));
            }
        }
    }
}

/// The line that says an account got where it was going.
fn arrived(account: &Value, elapsed: f64) -> String {
    let id = text(account, "id");
    let state = text(account, "state");
    match account["account_id"].as_str() {
        Some(account_id) if state == "ready" || state == "frozen" => format!(
            "✓ {id} {state} in {elapsed:.1}s: account {account_id} in {}, root email {}",
            cell(&account["ou"]),
            cell(&account["email"])
        ),
        _ => format!("✓ {id} {state} in {elapsed:.1}s"),
    }
}

fn account_record(a: &Value) -> String {
    let mut fields = vec![
        ("ID", text(a, "id")),
        ("STATE", text(a, "state")),
        ("TEAM", text(a, "team")),
        ("OWNER", text(a, "owner")),
        ("PURPOSE", text(a, "purpose")),
        ("ACCOUNT", cell(&a["account_id"])),
        ("EMAIL", cell(&a["email"])),
        ("OU", cell(&a["ou"])),
        ("LEASE END", cell(&a["lease_end"])),
        ("CREATED", cell(&a["created_at"])),
        ("UPDATED", cell(&a["updated_at"])),
    ];
    if let Some(reason) = a["failure_reason"].as_str() {
        fields.push(("FAILURE", reason.to_string()));
    }
    // The template's StackSet: deploying, succeeded, or failed and why.
    let blueprint = &a["blueprint"];
    if let Some(stack_set) = blueprint["stack_set"].as_str() {
        let mut line = format!("{stack_set} {}", text(blueprint, "status"));
        if let Some(reason) = blueprint["reason"].as_str() {
            line.push_str(&format!(": {reason}"));
        }
        fields.push(("BLUEPRINT", line));
    }
    record(&fields)
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// `purser accounts may`: what `purser up`'s simulated organization decides
/// of one request in a member account, from the SCPs attached to it.
pub async fn may(args: MayArgs) -> anyhow::Result<()> {
    let id = args.account_id.trim();
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("ACCOUNT_ID must be a 12-digit AWS account id, got {id:?}");
    }
    let Some((service, name)) = args.action.split_once(':') else {
        bail!(
            "ACTION must be service:Action, like ec2:RunInstances, got {:?}",
            args.action
        );
    };
    if service.is_empty() || name.is_empty() {
        bail!("ACTION must be service:Action, like ec2:RunInstances");
    }
    if !args.data_dir.join(purser_local::db::DB_FILE).exists() {
        bail!(
            "no local Purser state in {} yet: start it with `purser up` (or pass --data-dir); on AWS, IAM's policy simulator answers this",
            args.data_dir.display()
        );
    }
    let principal = args
        .principal
        .clone()
        .unwrap_or_else(|| format!("arn:aws:iam::{id}:role/developer"));
    let mut request =
        purser_local::organization::ScpRequest::new(&principal, &args.action, &args.region);
    if let Some(t) = &args.instance_type {
        request = request.with("ec2:InstanceType", t);
    }
    let db = purser_local::Db::open(&args.data_dir)?;
    let decision =
        purser_local::organization::authorize(&db, purser_local::LOCAL_ACCOUNT, id, &request)
            .await
            .with_context(|| format!("asking the simulated organization about account {id}"))?;
    let why = decision.explain(&request);
    match args.output {
        Output::Json => print_json(&json!({
            "account_id": id, "principal": principal, "action": args.action,
            "region": args.region, "instance_type": args.instance_type,
            "allowed": decision.is_allowed(), "reason": why,
        }))?,
        Output::Table => match &why {
            None => println(format!(
                "allowed: {principal} may {} in {} ({id})",
                args.action, args.region
            ))?,
            Some(reason) => println(format!("refused: {reason}"))?,
        },
    }
    // Not an error: a distinct code, so a script tells "refused" (3) from
    // a command that failed (1).
    if !decision.is_allowed() {
        std::process::exit(3);
    }
    Ok(())
}
