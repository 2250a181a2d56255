//! `purser demo`: Purser's story in half a minute, told by the real handlers
//! of `infra/template.yaml` on `purser up`'s embedded backends, in a fresh
//! data directory.
//!
//! The local runtime starts in process on a free port and is driven only
//! from outside, as users and member accounts drive it: its HTTP API (the
//! same routes API Gateway serves) and its EventBridge `PutEvents` endpoint,
//! with a member account's 12-digit access key id standing for the caller's
//! account. What happened is read back from the bus archive, the simulated
//! organization and the lake, and the cost table comes from the named query
//! Athena runs, on DataFusion.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, NaiveDate, Utc};
use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use purser_core::ports::{QueryEngine, QueryResult};
use purser_local::{RetryTiming, Running, RuntimeConfig, Template, inspect};
use serde_json::{Value, json};

use crate::driver::{As, Driver};

/// How long the simulated AWS Organizations takes to create an account.
const ORG_DELAY: Duration = Duration::from_millis(200);
/// How long any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// The IAM account the developers' principals live in.
const IDENTITY_ACCOUNT: &str = purser_local::LOCAL_ACCOUNT;
const REGION: &str = purser_local::LOCAL_REGION;

/// The three teams: name, developer, what their account is for, monthly budget (USD).
const TEAMS: [(&str, &str, &str, &str); 3] = [
    ("payments", "ana", "checkout service", "25.00"),
    ("search", "raj", "search indexer", "10.00"),
    ("ml", "li", "model training", "5.00"),
];
/// The lease template of step 3: two days, at most seven, and an approver
/// says yes first; payments' approver is maria.
const TEMPLATE: &str = "hackathon";
/// The template's blueprint, a StackSet deployed into its accounts before
/// they are ready (recorded as deployed on `purser up`).
const BLUEPRINT: &str = "purser-hackathon-baseline";
const TEMPLATE_TEAM: &str = "payments";
const APPROVER: &str = "maria";

/// The team whose training job runs away, and the budget it is given after.
const RUNAWAY_TEAM: &str = "ml";
const RAISED_BUDGET: &str = "20.00";

/// Runs the demo in `data_dir`, which must be empty or absent, and leaves
/// its state there for `purser up --data-dir` and `purser query`.
pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    ensure_fresh(data_dir)?;
    let started = Instant::now();
    println!("Purser demo: the whole control plane on this machine, with the real handlers");
    println!("of infra/template.yaml on embedded backends (SQLite, local lake files, DataFusion).");

    let mut config = RuntimeConfig::new(data_dir, 0);
    config.allow_aws_sources = true; // to play CloudFormation in member accounts
    config.organization.delay = ORG_DELAY;
    config.retry_timing = RetryTiming {
        base: Duration::from_millis(50),
        cap: Duration::from_secs(1),
    };
    config.shutdown_grace = Duration::from_secs(2);
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &crate::registry::handlers(),
        None,
    )
    .await
    .context("the local runtime could not start")?;
    let s = &running.summary;
    println!(
        "Purser is up at http://{}: {} functions, {} rules, {} schedules, {} routes from the template.",
        running.addr(),
        s.functions.len(),
        s.rules.len(),
        s.timers.len(),
        s.routes.len()
    );

    let demo = Demo::new(&running, data_dir)?;
    let told = demo.tell().await;
    println!();
    println!("Stopping Purser: in-flight deliveries finish first.");
    running.shutdown().await;
    let story = told?;
    epilogue(data_dir, &story, started.elapsed());
    Ok(())
}

/// Refuses a data directory that holds anything: the demo's story needs
/// an empty organization, an empty bus and an empty lake.
fn ensure_fresh(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.exists() {
        ensure!(
            data_dir.is_dir(),
            "{} is not a directory; give `purser demo --data-dir` a new or empty directory",
            data_dir.display()
        );
        let mut entries = std::fs::read_dir(data_dir)
            .with_context(|| format!("cannot read {}", data_dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: the demo needs a fresh data dir, so it never mixes its story \
                 into existing state. Give another with `purser demo --data-dir DIR`, or remove \
                 this one; to explore what is already there, run `purser up --data-dir {}`",
                data_dir.display(),
                data_dir.display()
            );
        }
    } else {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
    }
    Ok(())
}

/// What the story leaves behind, for the closing lines.
struct Story {
    from_day: NaiveDate,
    to_day: NaiveDate,
}

/// An account the story created.
struct Vended {
    team: &'static str,
    request_id: String,
    account_id: String,
}

/// One Lambda function of a team, as the telemetry extension reports it.
struct Workload {
    team: &'static str,
    function: &'static str,
    architecture: &'static str,
    memory_mb: u32,
    /// Mean billed duration of an invocation.
    millis: u64,
    batches: usize,
    per_batch: usize,
}

const WORKLOADS: [Workload; 5] = [
    Workload {
        team: "payments",
        function: "checkout",
        architecture: "arm64",
        memory_mb: 1024,
        millis: 220,
        batches: 4,
        per_batch: 250,
    },
    Workload {
        team: "payments",
        function: "invoice-pdf",
        architecture: "x86_64",
        memory_mb: 2048,
        millis: 2_600,
        batches: 2,
        per_batch: 200,
    },
    Workload {
        team: "search",
        function: "indexer",
        architecture: "arm64",
        memory_mb: 3008,
        millis: 41_000,
        batches: 2,
        per_batch: 60,
    },
    Workload {
        team: "search",
        function: "query-api",
        architecture: "arm64",
        memory_mb: 512,
        millis: 45,
        batches: 2,
        per_batch: 250,
    },
    Workload {
        team: "ml",
        function: "feature-api",
        architecture: "x86_64",
        memory_mb: 1769,
        millis: 310,
        batches: 1,
        per_batch: 200,
    },
];

/// The runaway training job: 15-minute invocations at 10 GB on x86_64,
/// $0.15 each, in batches that take the team's $5 budget over 50, 80 and
/// 100 %.
const RUNAWAY_FUNCTION: &str = "train-model";
/// Step 8: a chatbot's retry loop on Bedrock in search's account, Claude
/// 3.5 Sonnet at 200,000 input and 100,000 output tokens a minute ($2.10),
/// for four minutes of its metric stream: 84 % of search's $10.
const BEDROCK_TEAM: &str = "search";
const BEDROCK_MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const BEDROCK_MINUTES: i64 = 4;
const BEDROCK_TOKENS_PER_MINUTE: (f64, f64) = (200_000.0, 100_000.0);
/// search's runaway rule: an hour of its account over 10 times its trailing
/// week's hourly median (0: the account is new) and at least 3 USD freezes
/// it. The loop's 4 minutes (8.40 USD) put at least 2 of them (4.20 USD)
/// in one clock hour, wherever the hour turns.
const BEDROCK_RULE_AT_LEAST_USD: &str = "3";
/// The hackathon template's runaway rule: a resource over 5 USD an hour is
/// stopped.
const GPU_RULE_USD_PER_HOUR: &str = "5";
/// The GPU instance left running: a p4d.24xlarge (32.7726 USD an hour in
/// us-east-1, infra/prices.json), launched this many minutes before the
/// accrual that prices it: 10.92 USD, over 5 USD in one clock hour even
/// were the slice split at the hour, and under half payments' budget.
const GPU_TYPE: &str = "p4d.24xlarge";
const GPU_PRICE: f64 = 32.7726;
const GPU_MINUTES: i64 = 20;
const GPU_INSTANCE: &str = "i-0a1b2c3d4e5f60718";
const RUNAWAY_BATCHES: [usize; 3] = [17, 10, 7];

struct Demo<'a> {
    running: &'a Running,
    driver: Driver,
    data_dir: PathBuf,
    today: NaiveDate,
}

impl<'a> Demo<'a> {
    fn new(running: &'a Running, data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            running,
            driver: Driver::new(running)?,
            data_dir: data_dir.to_path_buf(),
            today: Utc::now().date_naive(),
        })
    }

    async fn tell(&self) -> anyhow::Result<Story> {
        self.teams().await.context("setting up the teams")?;
        let accounts = self.accounts().await.context("vending the accounts")?;
        let hackathon = self
            .lease_template()
            .await
            .context("the lease template and its approval")?;
        self.deployments(&accounts)
            .await
            .context("recording the deployments")?;
        self.invocations(&accounts)
            .await
            .context("recording the invocations")?;
        let runaway = accounts
            .iter()
            .find(|a| a.team == RUNAWAY_TEAM)
            .context("the runaway team has no account")?;
        self.runaway(runaway)
            .await
            .context("the runaway training job")?;
        self.raise(runaway).await.context("raising the budget")?;
        let looping = accounts
            .iter()
            .find(|a| a.team == BEDROCK_TEAM)
            .context("the Bedrock team has no account")?;
        self.bedrock_loop(looping)
            .await
            .context("the Bedrock loop")?;
        self.gpu_left_running(&hackathon)
            .await
            .context("the GPU instance left running")?;
        let to_day = Utc::now().date_naive();
        self.costs(to_day).await.context("the cost table")?;
        self.notifications()
            .await
            .context("the notifications sent")?;
        Ok(Story {
            from_day: self.today,
            to_day,
        })
    }

    // ------------------------------------------------------------ the story

    async fn teams(&self) -> anyhow::Result<()> {
        heading(1, "Three teams, each with a monthly budget");
        let mut rows = Vec::new();
        for (team, dev, _, amount) in TEAMS {
            // Each developer by IAM principal (for the API) and by email
            // (for IAM Identity Center, which signs them into what is vended).
            let mut members = vec![principal(dev), format!("{dev}@example.com")];
            if team == "search" {
                members.push(principal("bob"));
            }
            let mut body = json!({"quota": 3, "members": members});
            if team == TEMPLATE_TEAM {
                // maria decides the team's requests that need an approver
                // (and is told of them by email).
                let approver = [principal(APPROVER), format!("{APPROVER}@example.com")];
                members.extend(approver.iter().cloned());
                body = json!({"quota": 3, "members": members, "approvers": approver});
            }
            if team == RUNAWAY_TEAM {
                body["notify"] = json!({"emails": [format!("{team}-leads@example.com")]});
            }
            self.api("PUT", &format!("/teams/{team}"), Some(&body), None, 200)
                .await?;
            let mut budget = json!({"amount": amount, "currency": "USD", "thresholds": [50, 80, 100], "mode": "actual"});
            if team == BEDROCK_TEAM {
                // The runaway guard: an hour far above the account's usual.
                budget["runaway"] = json!([{"per": "account", "median_multiple": "10",
                    "at_least_usd": BEDROCK_RULE_AT_LEAST_USD, "actions": ["notify", "freeze"]}]);
            }
            if team == RUNAWAY_TEAM {
                // Freezing stops new deployments; throttling stops what runs.
                budget["actions"] = json!({"50": ["notify"], "80": ["notify"],
                    "100": ["notify", "freeze", "throttle-lambdas"]});
            }
            let view = self
                .api(
                    "PUT",
                    &format!("/teams/{team}/budget"),
                    Some(&budget),
                    None,
                    200,
                )
                .await?;
            let thresholds: Vec<String> = view["thresholds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| format!("{t} %"))
                .collect();
            let mut actions: Vec<(u64, String)> = view["actions"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(t, a)| (t.parse().unwrap_or(0), format!("{t} %: {}", words(a))))
                .collect();
            actions.sort();
            let actions: Vec<String> = actions.into_iter().map(|(_, a)| a).collect();
            rows.push(vec![
                team.to_string(),
                members.len().to_string(),
                money(text(&view["amount"]), text(&view["currency"])),
                thresholds.join(", "),
                actions.join("; "),
            ]);
        }
        say("PUT /teams/{team} and PUT /teams/{team}/budget, as a platform admin:");
        print_table(
            &["team", "members", "budget a month", "thresholds", "actions"],
            rows,
        );
        Ok(())
    }

    async fn accounts(&self) -> anyhow::Result<Vec<Vended>> {
        heading(2, "Developers ask for accounts");
        let mut requested = Vec::new();
        for (team, dev, purpose, _) in TEAMS {
            let reply = self.request_account(team, dev, purpose).await?;
            let id = text(&reply["id"]).to_string();
            say(&format!(
                "{dev} asks for an account of team {team} ({purpose}): POST /accounts -> 202 {id} {}",
                text(&reply["state"])
            ));
            requested.push((team, id));
        }
        say(&format!(
            "AWS Organizations creates them (simulated: {} ms each, then CreateAccountResult",
            ORG_DELAY.as_millis()
        ));
        say("arrives on the bus as from CloudTrail); account-events moves each to its team's OU.");
        let mut vended = Vec::new();
        let mut rows = Vec::new();
        for (team, id) in requested {
            let view = self.account_until(&id, &["ready"]).await?;
            rows.push(vec![
                id.clone(),
                team.to_string(),
                text(&view["owner"]).to_string(),
                text(&view["state"]).to_string(),
                text(&view["account_id"]).to_string(),
                text(&view["ou"]).to_string(),
            ]);
            vended.push(Vended {
                team,
                request_id: id,
                account_id: text(&view["account_id"]).to_string(),
            });
        }
        print_table(
            &["request", "team", "owner", "state", "account", "OU"],
            rows,
        );
        say(
            "Each owner is a member of the team by email, so IAM Identity Center (simulated) has a",
        );
        say(
            "user for them: AccountReady came once they could sign in. `purser accounts login ID`:",
        );
        for v in &vended {
            let view = self
                .api(
                    "GET",
                    &format!("/accounts/{}", v.request_id),
                    None,
                    None,
                    200,
                )
                .await?;
            say(&format!(
                "  {} ({}): {} {}",
                text(&view["owner"]),
                text(&view["access"]["status"]),
                text(&view["access"]["permission_set"]),
                text(&view["access"]["link"])
            ));
        }
        say("and the notify function emailed each owner the link (see the outbox, step 9).");

        // The next creation AWS completes fails, as it does for an address
        // another AWS account already has.
        self.running
            .organization()
            .fail_next_creation("EMAIL_ALREADY_EXISTS");
        let reply = self
            .request_account("search", "bob", "search experiments")
            .await?;
        let id = text(&reply["id"]).to_string();
        say(&format!(
            "bob asks for a search account too, but an AWS account already uses bob@example.com: {id}"
        ));
        let failed = self.account_until(&id, &["failed"]).await?;
        say(&format!(
            "  {id} failed: {}",
            text(&failed["failure_reason"])
        ));
        let event = self.event_of("AccountFailed", "request_id", &id).await?;
        say(&format!(
            "  AccountFailed on the bus, reason_code {}",
            text(&event.envelope["detail"]["reason_code"])
        ));
        Ok(vended)
    }

    async fn lease_template(&self) -> anyhow::Result<Vended> {
        heading(3, "A lease template that needs an approver");
        let template = self
            .api(
                "PUT",
                &format!("/templates/{TEMPLATE}"),
                Some(
                    &json!({"description": "two days to try things", "default_lease_days": 2,
                    "max_lease_days": 7, "approval": "always", "teams": [TEMPLATE_TEAM],
                    "blueprint": BLUEPRINT,
                    "runaway": [{"per": "resource", "usd_per_hour": GPU_RULE_USD_PER_HOUR,
                        "actions": ["notify", "stop-resource"]}]}),
                ),
                None,
                200,
            )
            .await?;
        say(&format!(
            "A platform admin sets template {TEMPLATE}: PUT /templates/{TEMPLATE} -> version {}, {} days (at most {}), approval {}, blueprint {}",
            cell(&template["version"]),
            cell(&template["default_lease_days"]),
            cell(&template["max_lease_days"]),
            cell(&template["approval"]),
            cell(&template["blueprint"])
        ));
        say(&format!(
            "  and a runaway rule: any one resource of its accounts spending more than {GPU_RULE_USD_PER_HOUR} USD in an hour is stopped"
        ));
        let (dev, purpose) = ("ana", "hackathon bot");
        let ana = principal(dev);
        let ask = |lease_days: Option<u32>| {
            let mut body = json!({"team": TEMPLATE_TEAM, "owner": format!("{dev}@example.com"),
                "purpose": purpose, "template": TEMPLATE});
            if let Some(days) = lease_days {
                body["lease_days"] = json!(days);
            }
            body
        };
        let pending = self
            .driver
            .call(
                As::Principal(&ana),
                "POST",
                "/accounts",
                Some(&ask(None)),
                None,
            )
            .await?
            .expect("POST /accounts", 202)?;
        let id = text(&pending["id"]).to_string();
        say(&format!(
            "{dev} asks for a {TEMPLATE} account: POST /accounts with \"template\": \"{TEMPLATE}\" -> 202 {id} {}",
            text(&pending["state"])
        ));
        self.event_of("AccountApprovalRequested", "request_id", &id)
            .await?;
        say(&format!(
            "  AccountApprovalRequested: {APPROVER}, {TEMPLATE_TEAM}' approver, is emailed what was asked and `purser approvals approve {id}`"
        ));
        let approver = principal(APPROVER);
        let approved = self
            .driver
            .call(
                As::Principal(&approver),
                "POST",
                &format!("/accounts/{id}/approve"),
                Some(&json!({"reason": "have fun"})),
                None,
            )
            .await?
            .expect("POST /accounts/{id}/approve", 200)?;
        say(&format!(
            "{APPROVER} approves: POST /accounts/{id}/approve -> 200 {}; AccountApproved, then made as any request",
            text(&approved["state"])
        ));
        let ready = self.account_until(&id, &["ready"]).await?;
        say(&format!(
            "  {id} ready: account {}, lease ends {}; blueprint {} {}{}",
            text(&ready["account_id"]),
            text(&ready["lease_end"]),
            text(&ready["blueprint"]["stack_set"]),
            text(&ready["blueprint"]["status"]),
            ready["blueprint"]["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
        let refused = self
            .driver
            .call(
                As::Principal(&ana),
                "POST",
                "/accounts",
                Some(&ask(Some(10))),
                None,
            )
            .await?
            .expect("POST /accounts", 400)?;
        say(&format!(
            "{dev} asks for 10 days of {TEMPLATE}: POST /accounts -> 400 {}: {}",
            text(&refused["error"]["field"]),
            text(&refused["error"]["message"])
        ));
        Ok(Vended {
            team: TEMPLATE_TEAM,
            request_id: id,
            account_id: text(&ready["account_id"]).to_string(),
        })
    }

    async fn deployments(&self, accounts: &[Vended]) -> anyhow::Result<()> {
        heading(4, "Deployments, from CI and from CloudFormation");
        let now = Utc::now();
        let start_of_day = self.today.and_hms_opt(0, 0, 0).map_or(now, |t| t.and_utc());
        let ago = |secs: i64| (now - chrono::Duration::seconds(secs)).max(start_of_day);
        let of = |team: &str| {
            accounts
                .iter()
                .find(|a| a.team == team)
                .map(|a| a.account_id.clone())
                .with_context(|| format!("team {team} has no account"))
        };

        let payments = of("payments")?;
        self.put(
            &payments,
            "ci.github",
            "DeploymentReported",
            json!({"version": 1, "stack": "checkout-api",
            "status": "SUCCEEDED", "commit": "4f2a9c1", "ref": "main", "pipeline": "deploy #812",
            "started_at": rfc3339(ago(184)), "finished_at": rfc3339(now)}),
            None,
            vec![],
        )
        .await?;
        say(&format!(
            "payments' CI (source ci.github) puts DeploymentReported as {payments}: checkout-api SUCCEEDED in 3 min"
        ));

        let search = of("search")?;
        for (commit, status) in [("9b1d0e7", "FAILED"), ("c03a5f2", "SUCCEEDED")] {
            let body = json!({"version": 1, "stack": "indexer", "status": status, "commit": commit, "ref": "main",
                "started_at": rfc3339(ago(75)), "finished_at": rfc3339(now)});
            let reply = self
                .api("POST", "/deployments", Some(&body), Some(&search), 202)
                .await?;
            say(&format!(
                "search's CI prefers HTTP: POST /deployments as {} -> 202, indexer {status} ({commit})",
                text(&reply["account_id"])
            ));
        }

        let ml = of(RUNAWAY_TEAM)?;
        let stack_id = format!(
            "arn:aws:cloudformation:{REGION}:{ml}:stack/feature-store/5d3c0e20-1f7b-11f0-9a51-0a4b1c7e2f11"
        );
        for (status, at) in [("CREATE_IN_PROGRESS", ago(95)), ("CREATE_COMPLETE", now)] {
            let reason = if status == "CREATE_IN_PROGRESS" {
                "User Initiated"
            } else {
                ""
            };
            let detail = json!({"stack-id": stack_id, "status-details": {"status": status, "status-reason": reason},
                "client-request-token": ""});
            self.put(
                &ml,
                "aws.cloudformation",
                "CloudFormation Stack Status Change",
                detail,
                Some(at),
                vec![stack_id.clone()],
            )
            .await?;
        }
        say(&format!(
            "ml's account {ml} forwards CloudFormation Stack Status Change: feature-store CREATE_IN_PROGRESS, then CREATE_COMPLETE"
        ));

        let expected = 5;
        self.until("the deployments are in the lake", async || {
            Ok((lake_lines(&self.data_dir, "deployments")? >= expected).then_some(()))
        })
        .await?;
        say(&format!(
            "The recorder wrote {expected} records to {}; deployments_per_team reads them:",
            self.data_dir.join("lake").join("deployments").display()
        ));
        let day = self.today.to_string();
        let result = self
            .named_query("deployments_per_team", &[day.clone(), day])
            .await?;
        let rows = self.rows(&result, |row| {
            vec![
                text(&row["team"]).to_string(),
                cell(&row["stacks"]),
                cell(&row["succeeded"]),
                cell(&row["failed"]),
                format!("{} s", cell(&row["avg_duration_s"])),
            ]
        });
        print_table(
            &["team", "stacks", "succeeded", "failed", "mean duration"],
            rows,
        );
        Ok(())
    }

    /// Puts the teams' ordinary invocation reports.
    async fn invocations(&self, accounts: &[Vended]) -> anyhow::Result<()> {
        heading(
            5,
            "Invocation reports, as the telemetry extension sends them",
        );
        say("Each team's functions carry the purser-telemetry layer: batches of platform.report");
        say(
            "records arrive as InvocationsReported (source purser.telemetry) from the member account.",
        );
        let mut batches = 0;
        let mut total = 0;
        let mut rows = Vec::new();
        for w in &WORKLOADS {
            let account = accounts
                .iter()
                .find(|a| a.team == w.team)
                .with_context(|| format!("team {} has no account", w.team))?;
            for b in 0..w.batches {
                let batch_id = format!("{}-{}", w.function, b + 1);
                let detail = invocation_batch(&batch_id, w, w.per_batch);
                self.put(
                    &account.account_id,
                    "purser.telemetry",
                    "InvocationsReported",
                    detail,
                    None,
                    vec![],
                )
                .await?;
                batches += 1;
            }
            let n = w.batches * w.per_batch;
            total += n;
            rows.push(vec![
                w.team.to_string(),
                account.account_id.clone(),
                w.function.to_string(),
                format!("{}, {} MB", w.architecture, w.memory_mb),
                format!("{:.2} s", w.millis as f64 / 1000.0),
                format!(
                    "{n} in {} batch{}",
                    w.batches,
                    if w.batches == 1 { "" } else { "es" }
                ),
            ]);
        }
        print_table(
            &[
                "team",
                "account",
                "function",
                "runs on",
                "billed each",
                "invocations",
            ],
            rows,
        );
        self.until("the invocations are priced and counted", async || {
            let counted = self.archived("TeamSpendUpdated", 0).await?.len();
            let lines = lake_lines(&self.data_dir, "invocations")?;
            Ok((counted >= batches && lines >= total).then_some(()))
        })
        .await?;
        say(&format!(
            "The recorder priced {total} invocations into the lake and added them to the streaming"
        ));
        say("spend counters (TeamSpendUpdated per batch); the budgets see them within seconds:");
        self.budget_table().await?;
        Ok(())
    }

    async fn runaway(&self, account: &Vended) -> anyhow::Result<()> {
        heading(6, &format!("{RUNAWAY_TEAM}'s training job runs away"));
        say(&format!(
            "{RUNAWAY_FUNCTION} runs 15-minute invocations at 10,240 MB on x86_64, about 0.15 USD each."
        ));
        let workload = Workload {
            team: RUNAWAY_TEAM,
            function: RUNAWAY_FUNCTION,
            architecture: "x86_64",
            memory_mb: 10_240,
            millis: 900_000,
            batches: RUNAWAY_BATCHES.len(),
            per_batch: 0,
        };
        let mut seen = 0;
        let mut crossed = 0;
        let mut put_last = Instant::now();
        for (i, n) in RUNAWAY_BATCHES.into_iter().enumerate() {
            let batch_id = format!("{RUNAWAY_FUNCTION}-{}", i + 1);
            put_last = Instant::now();
            self.put(
                &account.account_id,
                "purser.telemetry",
                "InvocationsReported",
                invocation_batch(&batch_id, &workload, n),
                None,
                vec![],
            )
            .await?;
            say(&format!(
                "{n} more {RUNAWAY_FUNCTION} invocations reported from {}",
                account.account_id
            ));
            crossed += 1;
            let events = self
                .until(
                    &format!("threshold {} of {RUNAWAY_TEAM} is crossed", crossed),
                    async || {
                        let events = self.crossings(RUNAWAY_TEAM).await?;
                        Ok((events.len() >= crossed).then_some(events))
                    },
                )
                .await?;
            for event in &events[seen..] {
                let d = &event["detail"];
                let currency = text(&d["currency"]);
                say(&format!(
                    "  BudgetThresholdCrossed: {} at {} %, spend {} of {} ({}); actions: {}",
                    text(&d["team"]),
                    cell(&d["threshold"]),
                    money(text(&d["spend"]), currency),
                    money(text(&d["amount"]), currency),
                    text(&d["period"]),
                    words(&d["actions"])
                ));
            }
            seen = events.len();
        }

        let view = self.account_until(&account.request_id, &["frozen"]).await?;
        let took = put_last.elapsed();
        let frozen = self
            .event_of("AccountFrozen", "account_id", &account.account_id)
            .await?;
        say(&format!(
            "  AccountFrozen: {} is {} ({} ms after the report that crossed 100 %)",
            account.account_id,
            text(&view["state"]),
            took.as_millis()
        ));
        say(&format!(
            "    {}",
            text(&frozen.envelope["detail"]["reason"])
        ));
        self.show_policies(&account.account_id).await?;
        let throttled = self
            .event_of("LambdasThrottled", "account_id", &account.account_id)
            .await?;
        say(&format!(
            "  LambdasThrottled: {} function(s) of {} at reserved concurrency 0, so what already runs stops too:",
            cell(&throttled.envelope["detail"]["count"]),
            account.account_id
        ));
        for f in throttled.envelope["detail"]["functions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            say(&format!(
                "    {} in {} (it had {})",
                text(&f["name"]),
                text(&f["region"]),
                match f["previous_reserved_concurrency"].as_u64() {
                    Some(n) => format!("reserved concurrency {n}"),
                    None => "no reserved concurrency".to_string(),
                }
            ));
        }
        Ok(())
    }

    async fn raise(&self, account: &Vended) -> anyhow::Result<()> {
        heading(7, "The budget is raised, and the account unfrozen");
        let body = json!({"amount": RAISED_BUDGET, "currency": "USD", "thresholds": [50, 80, 100]});
        let view = self
            .api(
                "PUT",
                &format!("/teams/{RUNAWAY_TEAM}/budget"),
                Some(&body),
                None,
                200,
            )
            .await?;
        say(&format!(
            "A platform admin raises {RUNAWAY_TEAM}'s budget to {}: PUT /teams/{RUNAWAY_TEAM}/budget -> BudgetChanged",
            money(text(&view["amount"]), text(&view["currency"]))
        ));
        let ready = self.account_until(&account.request_id, &["ready"]).await?;
        self.event_of("AccountUnfrozen", "account_id", &account.account_id)
            .await?;
        say(&format!(
            "  AccountUnfrozen: {} is {} again; the freeze SCP is detached",
            account.account_id,
            text(&ready["state"])
        ));

        self.show_policies(&account.account_id).await?;
        let restored = self
            .event_of("LambdasRestored", "account_id", &account.account_id)
            .await?;
        say(&format!(
            "  LambdasRestored: {} function(s) of {} have their reserved concurrency back",
            cell(&restored.envelope["detail"]["count"]),
            account.account_id
        ));
        say("Spend stays counted: the streaming estimate against the new budget:");
        self.budget_table().await?;
        Ok(())
    }

    async fn bedrock_loop(&self, account: &Vended) -> anyhow::Result<()> {
        heading(
            8,
            &format!("{BEDROCK_TEAM}'s chatbot loops on Bedrock: spend beyond Lambda"),
        );
        say(&format!(
            "{BEDROCK_TEAM}'s budget has a runaway rule: an hour of an account's spend over 10 times its trailing week's hourly median, and over {BEDROCK_RULE_AT_LEAST_USD} USD, freezes the account."
        ));
        let (input, output) = BEDROCK_TOKENS_PER_MINUTE;
        say(&format!(
            "A retry loop calls Claude 3.5 Sonnet: {}k input and {}k output tokens a minute, about 2.10 USD.",
            input / 1000.0,
            output / 1000.0
        ));
        say(&format!(
            "{}'s CloudWatch metric stream lands a minute of Bedrock's token counts at a time in the lake",
            account.account_id
        ));
        say(&format!(
            "bucket, under metrics/account={}/ (here {}/landing/):",
            account.account_id,
            self.data_dir.display()
        ));
        let folder = self
            .data_dir
            .join("landing")
            .join(format!("metrics/account={}", account.account_id))
            .join(self.today.format("%Y/%m/%d").to_string());
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let spend_of = |view: &Value| text(&view["spend"]).parse::<f64>().unwrap_or(0.0);
        let before = spend_of(
            &self
                .api(
                    "GET",
                    &format!("/teams/{BEDROCK_TEAM}/budget"),
                    None,
                    None,
                    200,
                )
                .await?,
        );
        // The loop's minutes end now, but never start before today (UTC):
        // at midnight on the 1st they would count for last month's budget.
        let midnight = self
            .today
            .and_hms_opt(0, 0, 0)
            .map_or(Utc::now(), |t| t.and_utc());
        let start = (Utc::now() - chrono::Duration::minutes(BEDROCK_MINUTES)).max(midnight);
        let mut landed_last = Instant::now();
        for minute in 0..BEDROCK_MINUTES {
            let at = (start + chrono::Duration::minutes(minute)).timestamp_millis();
            let lines: Vec<String> = [("InputTokenCount", input), ("OutputTokenCount", output)]
                .into_iter()
                .map(|(metric, tokens)| {
                    json!({"metric_stream_name": "purser-usage", "account_id": account.account_id,
                        "region": "us-east-1", "namespace": "AWS/Bedrock", "metric_name": metric,
                        "dimensions": {"ModelId": BEDROCK_MODEL}, "timestamp": at,
                        "value": {"max": tokens / 20.0, "min": 0.0, "sum": tokens, "count": 60.0},
                        "unit": "Count"})
                    .to_string()
                })
                .collect();
            let name = format!("purser-usage-{}", minute + 1);
            // Written aside and renamed: the watcher never sees half a file.
            let partial = folder.join(format!(".{name}"));
            std::fs::write(&partial, lines.join("\n") + "\n")?;
            landed_last = Instant::now();
            std::fs::rename(&partial, folder.join(&name))?;
            let spent = self
                .until(
                    &format!("minute {} of the loop is counted", minute + 1),
                    async || {
                        let view = self
                            .api(
                                "GET",
                                &format!("/teams/{BEDROCK_TEAM}/budget"),
                                None,
                                None,
                                200,
                            )
                            .await?;
                        let floor = before + 2.1 * (minute + 1) as f64 - 0.001;
                        Ok((spend_of(&view) >= floor).then_some(view))
                    },
                )
                .await?;
            say(&format!(
                "  minute {}: {} landed, {}'s spend {} ({} of its budget)",
                minute + 1,
                name,
                BEDROCK_TEAM,
                money(text(&spent["spend"]), text(&spent["currency"])),
                percent(text(&spent["spend"]), text(&spent["amount"]))
            ));
        }
        let crossing = self
            .until("search's 80 % threshold is crossed", async || {
                let events = self.crossings(BEDROCK_TEAM).await?;
                Ok(events.into_iter().find(|e| e["detail"]["threshold"] == 80))
            })
            .await?;
        let d = &crossing["detail"];
        say(&format!(
            "  BudgetThresholdCrossed: {} at 80 %, spend {} of {}, {} ms after the minute that crossed it landed; actions: {}",
            BEDROCK_TEAM,
            money(text(&d["spend"]), text(&d["currency"])),
            money(text(&d["amount"]), text(&d["currency"])),
            landed_last.elapsed().as_millis(),
            words(&d["actions"])
        ));
        let episode = self
            .event_of("SpendRateExceeded", "account_id", &account.account_id)
            .await?;
        let d = &episode.envelope["detail"];
        say(&format!(
            "  SpendRateExceeded: {} spent {} in the hour from {}, over {} (10 x a median of {}); actions: {}",
            account.account_id,
            money(text(&d["spend"]), text(&d["currency"])),
            text(&d["hour"]),
            money(text(&d["limit"]), text(&d["currency"])),
            money(text(&d["median"]), text(&d["currency"])),
            words(&d["actions"])
        ));
        let view = self.account_until(&account.request_id, &["frozen"]).await?;
        say(&format!(
            "  {} is {} by the runaway guard: no call to Bedrock goes through until a platform admin runs `purser accounts release {}`.",
            account.account_id,
            text(&view["state"]),
            account.request_id
        ));
        let per_day = 2.10 * 60.0 * 24.0;
        say(&format!(
            "AWS Budgets and Cost Explorer see Bedrock when the bill does, about a day later: polled hourly, the same loop would have run about 25 hours, {:.0} USD, before anything noticed.",
            per_day * 25.0 / 24.0
        ));
        Ok(())
    }

    async fn gpu_left_running(&self, account: &Vended) -> anyhow::Result<()> {
        heading(9, "A GPU instance left running: the runaway guard stops it");
        say(&format!(
            "ana launches a {GPU_TYPE} ({GPU_PRICE} USD an hour) in her {TEMPLATE} account {} and forgets it;",
            account.account_id
        ));
        say(
            "its RunInstances call and EC2's state change reach Purser through the account's forwarding rules.",
        );
        let launched = Utc::now() - chrono::Duration::minutes(GPU_MINUTES);
        self.put(
            &account.account_id,
            "aws.ec2",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "requestParameters": {"instanceType": GPU_TYPE},
                "responseElements": {"instancesSet": {"items": [
                    {"instanceId": GPU_INSTANCE, "instanceType": GPU_TYPE}]}}}),
            Some(launched),
            vec![],
        )
        .await?;
        self.put(
            &account.account_id,
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": GPU_INSTANCE, "state": "running"}),
            Some(launched),
            vec![],
        )
        .await?;
        self.driver.settle().await?;
        say(&format!(
            "The recorder's Accrual schedule prices what runs every 5 minutes; its run {GPU_MINUTES} minutes after the launch prices {:.2} USD:",
            GPU_PRICE * GPU_MINUTES as f64 / 60.0
        ));
        let accrued = Instant::now();
        self.running
            .run_schedule("RecorderFunction")
            .await
            .context("the recorder's Accrual schedule")?;
        let episode = self
            .event_of("SpendRateExceeded", "account_id", &account.account_id)
            .await?;
        let took = accrued.elapsed();
        let d = &episode.envelope["detail"];
        say(&format!(
            "  SpendRateExceeded: {} spent {} in the hour from {}, over the template's {}; {} ms after the accrual",
            text(&d["resource"]),
            money(text(&d["spend"]), text(&d["currency"])),
            text(&d["hour"]),
            money(text(&d["limit"]), text(&d["currency"])),
            took.as_millis()
        ));
        for stop in d["stopped"].as_array().into_iter().flatten() {
            say(&format!(
                "    stop-resource: {} {} in {}: {} (StopInstances through Purser's member role; its disks are kept)",
                text(&stop["kind"]),
                text(&stop["id"]),
                text(&stop["region"]),
                text(&stop["outcome"])
            ));
        }
        self.until("EC2 says the instance stopped", async || {
            Ok(self
                .archived("EC2 Instance State-change Notification", 0)
                .await?
                .into_iter()
                .find(|e| {
                    e.envelope["detail"]["instance-id"] == GPU_INSTANCE
                        && e.envelope["detail"]["state"] == "stopped"
                }))
        })
        .await?;
        say(
            "  EC2 Instance State-change Notification: stopped, so the recorder ends its run and nothing more is priced.",
        );
        say(&format!(
            "Polled hourly on a bill a day late, the same instance would have run about 25 hours, {:.0} USD, before anything noticed; over a weekend, {:.0} USD.",
            GPU_PRICE * 25.0,
            GPU_PRICE * 64.0
        ));
        Ok(())
    }

    async fn costs(&self, to_day: NaiveDate) -> anyhow::Result<()> {
        heading(10, "Cost per team, from the lake");
        let (from, to) = (month(self.today), month(to_day));
        say(
            "The named query cost_per_team_monthly (infra/queries/cost_per_team_monthly.sql), the SQL",
        );
        say(&format!(
            "Athena runs, here on DataFusion over the local lake, with from_month {from} and to_month {to}:"
        ));
        let result = self
            .named_query("cost_per_team_monthly", &[from, to])
            .await?;
        let rows = self.rows(&result, |row| {
            vec![
                text(&row["month"]).to_string(),
                text(&row["team"]).to_string(),
                cell(&row["accounts"]),
                cell(&row["invocations"]),
                money(text(&row["cost_usd"]), "USD"),
            ]
        });
        ensure!(
            !rows.is_empty(),
            "cost_per_team_monthly found no invocations in the lake"
        );
        print_table(&["month", "team", "accounts", "invocations", "cost"], rows);

        // The spend function runs every 15 minutes on its own; run it once now.
        let settled = self
            .running
            .run_schedule("SpendFunction")
            .await
            .map_err(|e| anyhow::anyhow!("the spend function failed: {e}"))?;
        if let Some(skipped) = settled["skipped_accounts"]
            .as_array()
            .filter(|a| !a.is_empty())
        {
            anyhow::bail!(
                "the spend function could not read the lake's rows of {} (see its log)",
                words(&Value::Array(skipped.clone()))
            );
        }
        say("");
        say(
            "Every 15 minutes the spend function settles each team's month to date against the lake",
        );
        say(
            "(stream_cost_per_account_day) and, where a CUR 2.0 export is configured, AWS's own bill.",
        );
        say(&format!(
            "Run now for {}: {} team(s) settled, {} figure(s) changed{}.",
            text(&settled["period"]),
            cell(&settled["teams"]),
            cell(&settled["announced"]),
            if settled["announced"] == 0 {
                ": the streaming counters and the lake agree"
            } else {
                " and announced with TeamSpendUpdated (source athena)"
            }
        ));
        Ok(())
    }

    // ------------------------------------------------------------ helpers

    /// Who was told what, as `purser notifications list` shows it.
    async fn notifications(&self) -> anyhow::Result<()> {
        heading(11, "Who was told");
        self.running
            .settle(Duration::from_secs(30))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sent = purser_local::notifier::sent(self.running.db())?;
        let mut by_kind: std::collections::BTreeMap<
            String,
            (usize, std::collections::BTreeSet<String>),
        > = Default::default();
        for n in &sent {
            let entry = by_kind.entry(n.kind.clone()).or_default();
            entry.0 += 1;
            entry.1.insert(n.channel.clone());
        }
        say(&format!(
            "The notify function sent {} message(s), each recipient once per event (`purser notifications list`):",
            sent.len()
        ));
        print_table(
            &["event", "messages", "channels"],
            by_kind
                .into_iter()
                .map(|(kind, (n, channels))| {
                    vec![
                        kind,
                        n.to_string(),
                        channels.into_iter().collect::<Vec<_>>().join(", "),
                    ]
                })
                .collect(),
        );
        if let Some(n) = sent
            .iter()
            .find(|n| n.kind == "BudgetThresholdCrossed" && n.channel == "email")
        {
            say(&format!("  e.g. to {}: \"{}\"", n.recipient, n.subject));
        }
        say(&format!(
            "  The emails are .eml files in {}/outbox/; on AWS they go through SES, chat webhooks and SNS.",
            self.data_dir.display()
        ));
        Ok(())
    }

    async fn request_account(&self, team: &str, dev: &str, purpose: &str) -> anyhow::Result<Value> {
        let body = json!({"team": team, "owner": format!("{dev}@example.com"), "purpose": purpose, "lease_days": 30});
        let who = principal(dev);
        self.driver
            .call(As::Principal(&who), "POST", "/accounts", Some(&body), None)
            .await?
            .expect("POST /accounts", 202)
    }

    /// Calls the HTTP API as the local platform admin, or as `account`
    /// (a member account's IAM identity), expecting `status`.
    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        account: Option<&str>,
        status: u16,
    ) -> anyhow::Result<Value> {
        let who = account.map_or(As::Admin, As::Account);
        self.driver
            .call(who, method, path, body, None)
            .await?
            .expect(&format!("{method} {path}"), status)
    }

    async fn account_until(&self, id: &str, states: &[&str]) -> anyhow::Result<Value> {
        self.driver.account_until(id, states).await
    }

    async fn put(
        &self,
        account: &str,
        source: &str,
        detail_type: &str,
        detail: Value,
        time: Option<DateTime<Utc>>,
        resources: Vec<String>,
    ) -> anyhow::Result<()> {
        self.driver
            .put(account, source, detail_type, &detail, time, resources)
            .await
    }

    async fn archived(
        &self,
        detail_type: &str,
        after: i64,
    ) -> anyhow::Result<Vec<inspect::ArchivedEvent>> {
        self.driver.archived(detail_type, after)
    }

    /// Waits until an event of `detail_type` whose detail has `field` equal
    /// to `value` is on the bus, and returns it.
    async fn event_of(
        &self,
        detail_type: &str,
        field: &str,
        value: &str,
    ) -> anyhow::Result<inspect::ArchivedEvent> {
        self.until(&format!("{detail_type} is on the bus"), async || {
            Ok(self
                .archived(detail_type, 0)
                .await?
                .into_iter()
                .find(|e| e.envelope["detail"][field] == value))
        })
        .await
    }

    /// `team`'s BudgetThresholdCrossed events, in the order they were archived.
    async fn crossings(&self, team: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .archived("BudgetThresholdCrossed", 0)
            .await?
            .into_iter()
            .map(|e| e.envelope)
            .filter(|e| e["detail"]["team"] == team)
            .collect())
    }

    async fn show_policies(&self, account_id: &str) -> anyhow::Result<()> {
        let policies = self
            .running
            .organization()
            .attached_policies(account_id)
            .await
            .with_context(|| format!("the SCPs attached to {account_id}"))?;
        let names: Vec<String> = policies
            .iter()
            .map(|(id, name)| format!("{name} ({id})"))
            .collect();
        say(&format!(
            "    SCPs attached to {account_id}: {}",
            names.join(", ")
        ));
        Ok(())
    }

    /// The teams' budgets as `GET /teams/{team}/budget` shows them.
    async fn budget_table(&self) -> anyhow::Result<()> {
        let mut rows = Vec::new();
        for (team, ..) in TEAMS {
            let view = self
                .api("GET", &format!("/teams/{team}/budget"), None, None, 200)
                .await?;
            let currency = text(&view["currency"]);
            let crossed: Vec<String> = view["crossed_thresholds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| format!("{t} %"))
                .collect();
            rows.push(vec![
                team.to_string(),
                money(text(&view["spend"]), currency),
                money(text(&view["amount"]), currency),
                percent(text(&view["spend"]), text(&view["amount"])),
                if crossed.is_empty() {
                    "-".to_string()
                } else {
                    crossed.join(", ")
                },
                if view["frozen"] == true { "yes" } else { "no" }.to_string(),
            ]);
        }
        print_table(
            &[
                "team",
                "spend this month",
                "budget",
                "used",
                "crossed",
                "frozen",
            ],
            rows,
        );
        Ok(())
    }

    async fn named_query(&self, name: &str, params: &[String]) -> anyhow::Result<QueryResult> {
        let query = purser_core::lake::named_queries::named(name)
            .with_context(|| format!("there is no named query {name}"))?;
        let engine = purser_query::LocalQueryEngine::new(&self.data_dir)
            .with_context(|| format!("opening the lake in {}", self.data_dir.display()))?;
        engine
            .run(&query, params)
            .await
            .with_context(|| format!("running {name}"))
    }

    fn rows(
        &self,
        result: &QueryResult,
        row: impl Fn(&serde_json::Map<String, Value>) -> Vec<String>,
    ) -> Vec<Vec<String>> {
        result.objects().iter().map(row).collect()
    }

    /// Polls `check` until it gives a value, for at most STEP_TIMEOUT.
    async fn until<T>(
        &self,
        what: &str,
        check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        self.driver.until(what, STEP_TIMEOUT, check).await
    }
}

/// An `InvocationsReported` detail as the telemetry extension writes it:
/// `n` reports of `w`, timestamped now.
fn invocation_batch(batch_id: &str, w: &Workload, n: usize) -> Value {
    let now = Utc::now();
    let reports: Vec<Value> = (0..n)
        .map(|i| {
            // Durations vary around the mean, deterministically; a function
            // that runs into Lambda's 15-minute timeout runs exactly that long
            // (the recorder refuses reports no Lambda function can produce).
            let spread = if w.millis >= purser_core::lake::MAX_BILLED_MS {
                0.0
            } else {
                (i as u64 * 37 % 21) as f64 / 100.0 - 0.1
            };
            let duration = w.millis as f64 * (1.0 + spread) - 0.4;
            let billed = duration.max(1.0).ceil() as u64;
            json!({
                "request_id": format!("{batch_id}-{i:04}"),
                "timestamp": rfc3339(now),
                "duration_ms": (duration.max(0.6) * 1000.0).round() / 1000.0,
                "billed_duration_ms": billed,
                "max_memory_used_mb": (w.memory_mb * 3 / 5).max(64),
                "init_duration_ms": if i == 0 { json!(412.5) } else { Value::Null },
            })
        })
        .collect();
    json!({"version": 1, "batch_id": batch_id, "function_name": w.function,
           "architecture": w.architecture, "memory_mb": w.memory_mb, "reports": reports})
}

fn epilogue(data_dir: &Path, story: &Story, took: Duration) {
    let dir = data_dir.display();
    let (from_month, to_month) = (month(story.from_day), month(story.to_day));
    println!(
        "Done in {:.1} s. Everything stays in {dir}:",
        took.as_secs_f64()
    );
    println!(
        "  {dir}/purser.db   SQLite: accounts, teams, budgets, spend counters, the simulated organization, the bus archive"
    );
    println!(
        "  {dir}/lake/       invocations/ and deployments/ as newline-delimited JSON in dt=YYYY-MM-DD partitions"
    );
    println!();
    println!("Try next:");
    println!("  purser up --data-dir {dir}");
    println!("      the same control plane on 127.0.0.1:8787, with this state");
    println!(
        "  purser query cost_per_team_daily --param {} --param {} --data-dir {dir}",
        story.from_day, story.to_day
    );
    println!("  purser query top_functions --param {to_month} --param 5 --data-dir {dir}");
    println!(
        "  purser query cost_per_team_monthly --param {from_month} --param {to_month} --data-dir {dir} --output json"
    );
    println!("  purser events archive --detail-type BudgetThresholdCrossed --data-dir {dir}");
}

// ------------------------------------------------------------ output

fn heading(n: usize, title: &str) {
    println!();
    println!("{n}. {title}");
}

fn say(line: &str) {
    println!("  {line}");
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for line in table.to_string().lines() {
        println!("  {}", line.trim_end());
    }
}

fn principal(dev: &str) -> String {
    format!("arn:aws:iam::{IDENTITY_ACCOUNT}:user/{dev}")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn month(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A JSON value for a table cell: strings without quotes.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list of words (`["notify", "freeze"]`) as `notify, freeze`.
fn words(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(cell).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| cell(value))
}

/// A decimal string as billionths, exactly (digits past the ninth dropped).
fn nanos(amount: &str) -> Option<i128> {
    let amount = amount.trim();
    let (negative, amount) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let n = whole
        .checked_mul(1_000_000_000)?
        .checked_add(fraction.parse::<i128>().ok()?)?;
    Some(if negative { -n } else { n })
}

/// Money with its currency: to the cent, or to the millionth below a cent.
fn money(amount: &str, currency: &str) -> String {
    let currency = if currency.is_empty() { "USD" } else { currency };
    let Some(n) = nanos(amount) else {
        return format!("{amount} {currency}");
    };
    let sign = if n < 0 { "-" } else { "" };
    let n = n.abs();
    if n == 0 || n >= 10_000_000 {
        let cents = (n + 5_000_000) / 10_000_000;
        format!("{sign}{}.{:02} {currency}", cents / 100, cents % 100)
    } else {
        let micros = (n + 500) / 1000;
        format!("{sign}0.{micros:06} {currency}")
    }
}

/// `part` as a whole percentage of `whole`.
fn percent(part: &str, whole: &str) -> String {
    match (nanos(part), nanos(whole)) {
        (Some(p), Some(w)) if w > 0 => format!("{} %", p * 100 / w),
        _ => "-".to_string(),
    }
}

/// Lines in a lake table's files: the records written so far.
fn lake_lines(data_dir: &Path, table: &str) -> anyhow::Result<usize> {
    let root = data_dir.join("lake").join(table);
    let Ok(partitions) = std::fs::read_dir(&root) else {
        return Ok(0);
    };
    let mut lines = 0;
    for partition in partitions {
        let partition = partition.with_context(|| format!("listing {}", root.display()))?;
        let Ok(files) = std::fs::read_dir(partition.path()) else {
            continue;
        };
        for file in files {
            let path = file
                .with_context(|| format!("listing {}", partition.path().display()))?
                .path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            lines += text.lines().filter(|l| !l.trim().is_empty()).count();
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_to_the_cent_with_its_currency() {
        assert_eq!(money("25", "USD"), "25.00 USD");
        assert_eq!(money("5.151701", "USD"), "5.15 USD");
        assert_eq!(money("2.555", "USD"), "2.56 USD");
        assert_eq!(money("0.000420100", "USD"), "0.000420 USD");
        assert_eq!(money("0", ""), "0.00 USD");
        assert_eq!(money("ten", "USD"), "ten USD");
        assert_eq!(percent("2.55", "5"), "51 %");
    }
}
