//! `purser events …`

use anyhow::{Context, bail};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Duration, Utc};
use purser_eventbridge::EventPattern;
use purser_local::{Db, inspect};
use serde_json::Value;

use super::json_argument;
use crate::cli::{
    ArchiveArgs, DeadLetterQueueArgs, DlqArgs, Output, PutArgs, RedriveArgs, ReplayArgs, TailArgs,
    TestPatternArgs,
};
use crate::output::{print_json, table};

pub async fn put(args: PutArgs) -> anyhow::Result<()> {
    let detail = json_argument("detail", &args.detail)?;
    if !detail.is_object() {
        bail!("--detail must be a JSON object, like '{{\"key\": \"value\"}}'");
    }
    let local = args.endpoint.starts_with("http://127.0.0.1")
        || args.endpoint.starts_with("http://localhost");
    let mut loader = purser_aws::config_loader()
        .region(aws_config::Region::new(args.region.clone()))
        .endpoint_url(&args.endpoint);
    if let Some(account) = &args.account
        && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
    {
        bail!("--account must be a 12-digit AWS account id, got {account:?}");
    }
    // A local endpoint needs no real credentials; its access key id names
    // the caller's account.
    if local || args.account.is_some() {
        let key = args
            .account
            .clone()
            .unwrap_or_else(|| "purser-local".into());
        loader = loader.credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            key,
            "local",
            None,
            None,
            "purser-cli",
        ));
    }
    let client = aws_sdk_eventbridge::Client::new(&loader.load().await);
    let entry = PutEventsRequestEntry::builder()
        .source(&args.source)
        .detail_type(&args.detail_type)
        .detail(detail.to_string())
        .set_resources((!args.resources.is_empty()).then(|| args.resources.clone()))
        .event_bus_name(&args.bus)
        .build();
    let reply = client
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_eventbridge::error::DisplayErrorContext(e)))
        .with_context(|| {
            format!(
                "could not put the event on {}{}",
                args.endpoint,
                if local {
                    " (is `purser up` running?)"
                } else {
                    ""
                }
            )
        })?;
    for entry in reply.entries() {
        match (entry.event_id(), entry.error_code()) {
            (Some(id), _) => println!("{id}"),
            (None, code) => bail!(
                "the bus refused the event: {} ({})",
                entry.error_message().unwrap_or("no message"),
                code.unwrap_or("no code")
            ),
        }
    }
    Ok(())
}

/// RFC 3339, or an age like `90s`, `15m`, `2h`, `7d`.
fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().ok().filter(|n| *n >= 0).with_context(|| {
        format!(
            "--since {text:?}: give RFC 3339 (2026-11-21T10:00:00Z) or an age like 30s, 15m, 2h, 7d"
        )
    })?;
    let age = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => bail!("--since {text:?}: the unit must be s, m, h or d"),
    };
    Ok(now - age)
}

fn open(data_dir: &std::path::Path) -> anyhow::Result<Db> {
    if !data_dir.join(purser_local::db::DB_FILE).exists() {
        bail!(
            "no local Purser state in {} yet: start it with `purser up` (or pass --data-dir)",
            data_dir.display()
        );
    }
    Ok(Db::open(data_dir)?)
}

pub fn archive(args: ArchiveArgs) -> anyhow::Result<()> {
    let db = open(&args.data_dir)?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now()))
        .transpose()?;
    let filter = inspect::ArchiveFilter {
        detail_type: args.detail_type,
        source: args.source,
        since_ms: since.map(|t| t.timestamp_millis()),
        after_seq: None,
        limit: args.limit,
    };
    let events = inspect::archive(&db, &filter)?;
    match args.output {
        Output::Json => print_json(&events.iter().map(|e| &e.envelope).collect::<Vec<_>>()),
        Output::Table => {
            let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
            let rows = events
                .iter()
                .map(|e| {
                    let v = &e.envelope;
                    vec![
                        text(v, "time"),
                        e.bus.clone(),
                        text(v, "source"),
                        text(v, "detail-type"),
                        text(v, "account"),
                        text(v, "id"),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["TIME", "BUS", "SOURCE", "DETAIL-TYPE", "ACCOUNT", "ID"],
                    rows
                )
            );
            if events.is_empty() {
                println!("no events yet: put one with `purser events put`");
            }
            Ok(())
        }
    }
}

/// Archive rows read at a time while following.
const TAIL_BATCH: usize = 500;

/// Follows the archive: the last `--last` events, then every new one as it
/// is archived, until Ctrl-C (or until the reader of stdout goes away).
pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let db = open(&args.data_dir)?;
    let filter = |after_seq: Option<i64>| inspect::ArchiveFilter {
        detail_type: args.detail_type.clone(),
        source: args.source.clone(),
        since_ms: None,
        after_seq,
        limit: TAIL_BATCH,
    };
    // To the end of the archive, keeping the last N.
    let mut after: Option<i64> = None;
    let mut last = std::collections::VecDeque::new();
    loop {
        let batch = inspect::archive(&db, &filter(after))?;
        let n = batch.len();
        for event in batch {
            after = Some(event.seq);
            if args.last > 0 {
                if last.len() == args.last {
                    last.pop_front();
                }
                last.push_back(event);
            }
        }
        if n < TAIL_BATCH {
            break;
        }
    }
    for event in &last {
        if !emit(&tail_line(event, args.output))? {
            return Ok(());
        }
    }
    eprintln!(
        "following the events of {} (Ctrl-C to stop)",
        args.data_dir.display()
    );
    let interval = std::time::Duration::from_millis(args.interval.max(10));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
        loop {
            let batch = inspect::archive(&db, &filter(after))?;
            let n = batch.len();
            for event in &batch {
                after = Some(event.seq);
                if !emit(&tail_line(event, args.output))? {
                    return Ok(());
                }
            }
            if n < TAIL_BATCH {
                break;
            }
        }
    }
}

/// One event on one line: for people, its time, source, detail-type,
/// account and detail; for scripts, its envelope as JSON.
fn tail_line(event: &inspect::ArchivedEvent, output: Output) -> String {
    let v = &event.envelope;
    match output {
        Output::Json => v.to_string(),
        Output::Table => {
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            format!(
                "{}  {:<18}  {:<24}  {:<12}  {}",
                text("time"),
                text("source"),
                text("detail-type"),
                text("account"),
                v["detail"]
            )
        }
    }
}

/// Writes a line to stdout at once; `false` when its reader went away.
fn emit(line: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn dlq(args: DlqArgs) -> anyhow::Result<()> {
    if args.queue.on_aws() {
        // As `redrive`: called without awaiting, run on the CLI's runtime.
        return tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(dlq_aws(args))
        });
    }
    let db = open(&args.data_dir)?;
    let letters = inspect::dead_letters(&db, args.limit)?;
    match args.output {
        Output::Json => print_json(&letters),
        Output::Table => {
            let rows = letters
                .iter()
                .map(|d| {
                    vec![
                        d.failed_at.clone(),
                        d.target.clone(),
                        d.attempts.to_string(),
                        d.error.clone(),
                        d.event_id.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["FAILED AT", "TARGET", "ATTEMPTS", "ERROR", "EVENT ID"],
                    rows
                )
            );
            if letters.is_empty() {
                println!("no dead letters: every delivery succeeded or is still being retried");
            }
            Ok(())
        }
    }
}

pub fn redrive(args: RedriveArgs) -> anyhow::Result<()> {
    if args.queue.on_aws() {
        // The local redrive is one SQLite transaction, called without
        // awaiting; the AWS one runs on the CLI's (multi-threaded) runtime.
        return tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(redrive_aws(args))
        });
    }
    let db = open(&args.data_dir)?;
    let redriven = inspect::redrive(&db, args.target.as_deref())?;
    let which = args
        .target
        .as_deref()
        .map_or(String::new(), |t| format!(" of {t}"));
    match redriven {
        0 => println!("no dead letters{which} to redrive"),
        n => println!(
            "redrove {n} dead letter{}{which}: a running `purser up` delivers {} within a second; `purser events dlq` shows any that fail again",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        ),
    }
    Ok(())
}

const DLQ_URL_HINT: &str = "the stack's DeadLetterQueueUrl output: aws cloudformation describe-stacks \
     --stack-name purser --query \"Stacks[0].Outputs[?OutputKey=='DeadLetterQueueUrl'].OutputValue\" \
     --output text";

/// The deployed stack's dead-letter queue, from `--queue-url` (or
/// `PURSER_DLQ_URL`), with the caller's AWS credentials.
async fn dead_letter_queue(
    args: &DeadLetterQueueArgs,
) -> anyhow::Result<(purser_aws::DeadLetterQueue, String)> {
    let queue_url = match args.queue_url.clone().or_else(|| {
        std::env::var("PURSER_DLQ_URL")
            .ok()
            .filter(|u| !u.is_empty())
    }) {
        Some(url) => url,
        None => bail!(
            "--aws needs the dead-letter queue's URL: give --queue-url URL or set PURSER_DLQ_URL \
             ({DLQ_URL_HINT})"
        ),
    };
    if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
        bail!(
            "--queue-url must be the queue's URL, like \
             https://sqs.us-east-1.amazonaws.com/123456789012/purser-DeadLetterQueue-AbC, \
             got {queue_url:?} ({DLQ_URL_HINT})"
        );
    }
    let mut loader = purser_aws::config_loader();
    if let Some(region) = args.region.clone().or_else(|| region_of(&queue_url)) {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(endpoint) = &args.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!(
            "no AWS region for the dead-letter queue: give --region, or set AWS_REGION (or a \
             profile's region)"
        );
    }
    Ok((
        purser_aws::DeadLetterQueue::from_config(&config, &queue_url),
        queue_url,
    ))
}

/// `purser events dlq --queue-url`: the messages of the deployed stack's
/// dead-letter queue, left in it.
async fn dlq_aws(args: DlqArgs) -> anyhow::Result<()> {
    let (queue, queue_url) = dead_letter_queue(&args.queue).await?;
    let letters = queue.list(args.limit).await?;
    match args.output {
        Output::Json => print_json(&letters.iter().map(letter_json).collect::<Vec<_>>()),
        Output::Table => {
            let rows = letters
                .iter()
                .map(|l| {
                    vec![
                        l.message_id.clone(),
                        match l.origin {
                            purser_aws::Origin::Rule { .. } => "rule".into(),
                            purser_aws::Origin::FunctionFailure => "function".into(),
                            purser_aws::Origin::Queue { .. } => "queue".into(),
                            purser_aws::Origin::Unknown => "-".into(),
                        },
                        l.target.as_deref().map_or_else(|| "-".into(), target_name),
                        l.attempts.clone().unwrap_or_else(|| "-".into()),
                        l.error.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["MESSAGE ID", "FAILED IN", "TARGET", "ATTEMPTS", "ERROR"],
                    rows
                )
            );
            if letters.is_empty() {
                println!("no dead letters in {queue_url}");
            }
            Ok(())
        }
    }
}

/// `purser events redrive --queue-url`: the deployed stack's SQS
/// dead-letter queue, each message invoking the function that failed.
async fn redrive_aws(args: RedriveArgs) -> anyhow::Result<()> {
    let (queue, queue_url) = dead_letter_queue(&args.queue).await?;
    let report = queue.redrive(args.target.as_deref()).await?;
    let which = args
        .target
        .as_deref()
        .map_or(String::new(), |t| format!(" of {t}"));
    match args.output {
        Output::Json => print_json(&redrive_json(&queue_url, &report))?,
        Output::Table => {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let n = report.redriven.len();
            if n == 0 && report.left.is_empty() {
                println!("no dead letters{which} to redrive in {queue_url}");
            } else if n > 0 {
                let queued = report
                    .redriven
                    .iter()
                    .filter(|l| matches!(l.origin, purser_aws::Origin::Queue { .. }))
                    .count();
                let how = match (queued, n - queued) {
                    (0, _) => {
                        "each function was invoked with its event, asynchronously as \
                               EventBridge invokes it"
                    }
                    (_, 0) => {
                        "each message was sent back to the queue that gave up on it, in \
                               its message group"
                    }
                    _ => {
                        "each function was invoked with its event, asynchronously as \
                          EventBridge invokes it, and each message a fair queue gave up on was \
                          sent back to that queue, in its message group"
                    }
                };
                println!(
                    "redrove {n} dead letter{}{which}: {how}; what fails again comes back to \
                     the queue",
                    plural(n)
                );
            }
            if report.skipped > 0 {
                println!(
                    "{} other dead letter{} left alone (not of {})",
                    report.skipped,
                    plural(report.skipped),
                    args.target.as_deref().unwrap_or_default()
                );
            }
            if !report.left.is_empty() {
                let rows = report
                    .left
                    .iter()
                    .map(|l| {
                        vec![
                            l.letter.message_id.clone(),
                            l.letter
                                .target
                                .as_deref()
                                .map_or_else(|| "-".into(), target_name),
                            l.letter.error.clone().unwrap_or_else(|| "-".into()),
                            l.reason.to_string(),
                        ]
                    })
                    .collect();
                println!(
                    "{} dead letter{} left in the queue:",
                    report.left.len(),
                    plural(report.left.len())
                );
                println!(
                    "{}",
                    table(&["MESSAGE ID", "TARGET", "ERROR", "WHY LEFT"], rows)
                );
            }
        }
    }
    match report.failed() {
        0 => Ok(()),
        n => bail!(
            "{n} dead letter{} could not be redriven (WHY LEFT says why): fix the cause (does the \
             function or queue exist? may your credentials lambda:InvokeFunction on it, or \
             sqs:SendMessage on the queue it came from, and sqs:DeleteMessage on the dead-letter \
             queue?), then redrive again",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// The region of an SQS queue URL (`https://sqs.REGION.amazonaws.com/…`,
/// or the legacy `https://REGION.queue.amazonaws.com/…`).
fn region_of(queue_url: &str) -> Option<String> {
    let host = url::Url::parse(queue_url).ok()?.host_str()?.to_owned();
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        ["sqs", region, ..] if labels.len() > 3 => Some((*region).to_owned()),
        [region, "queue", ..] => Some((*region).to_owned()),
        _ => None,
    }
}

/// A function's or a queue's name rather than its whole ARN; any other
/// target as it is.
fn target_name(target: &str) -> String {
    let parts: Vec<&str> = target.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => (*name).to_owned(),
        ["arn", _, "sqs", _, _, name] => (*name).to_owned(),
        _ => target.to_owned(),
    }
}

/// A dead letter for scripts: its event, parsed when it is JSON.
fn letter_json(l: &purser_aws::DeadLetter) -> Value {
    serde_json::json!({
        "message_id": l.message_id,
        "origin": match &l.origin {
            purser_aws::Origin::Rule { .. } => "rule",
            purser_aws::Origin::FunctionFailure => "function",
            purser_aws::Origin::Queue { .. } => "queue",
            purser_aws::Origin::Unknown => "unknown",
        },
        "rule": match &l.origin {
            purser_aws::Origin::Rule { rule_arn } => rule_arn.clone(),
            _ => None,
        },
        "message_group": match &l.origin {
            purser_aws::Origin::Queue { message_group } => message_group.clone(),
            _ => None,
        },
        "target": l.target,
        "error": l.error,
        "attempts": l.attempts,
        "event": l.payload.as_deref().map(|p| {
            serde_json::from_str::<Value>(p).unwrap_or_else(|_| Value::String(p.to_owned()))
        }),
    })
}

fn redrive_json(queue_url: &str, report: &purser_aws::RedriveReport) -> Value {
    let letter = letter_json;
    serde_json::json!({
        "queue_url": queue_url,
        "redriven": report.redriven.iter().map(letter).collect::<Vec<_>>(),
        "left": report.left.iter().map(|l| {
            let mut v = letter(&l.letter);
            v["reason"] = Value::String(l.reason.to_string());
            v
        }).collect::<Vec<_>>(),
        "skipped": report.skipped,
    })
}

/// A time given on the command line, RFC 3339, with the flag named.
fn time_argument(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("--{flag} must be an RFC 3339 time like 2026-12-01T00:00:00Z, got {text:?}")
        })
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let since = time_argument("since", &args.since)?;
    let until = match &args.until {
        Some(text) => time_argument("until", text)?,
        None => Utc::now(),
    };
    if until <= since {
        bail!("--until ({until}) must be after --since ({since})");
    }
    let db = open(&args.data_dir)?;
    let wiring = purser_local::Template::builtin()
        .wiring(&purser_local::LocalContext::default())
        .context("the built-in template's rules")?;
    let rules = purser_local::Rule::all_of(&wiring);
    let name = args
        .name
        .unwrap_or_else(|| format!("purser-replay-{}", Utc::now().format("%Y%m%dT%H%M%SZ")));
    let replayed = purser_local::bus::replay(
        &db,
        &rules,
        &purser_local::bus::ReplayFilter {
            name: name.clone(),
            since,
            until,
            detail_type: args.detail_type.clone(),
        },
    )?;
    match replayed.events {
        0 => println!("no archived events in that window to replay"),
        n => println!(
            "replay {name}: {n} event{} sent again as {} deliver{}; a running `purser up` delivers them within a second (`purser events dlq` shows any that fail)",
            if n == 1 { "" } else { "s" },
            replayed.deliveries,
            if replayed.deliveries == 1 { "y" } else { "ies" }
        ),
    }
    Ok(())
}

pub fn test_pattern(args: TestPatternArgs) -> anyhow::Result<()> {
    let pattern = json_argument("pattern", &args.pattern)?;
    let pattern = EventPattern::from_value(&pattern).map_err(|e| anyhow::anyhow!("{e}"))?;
    let event = json_argument("event", &args.event)?;
    // What `aws events test-event-pattern` requires of the event: the
    // envelope fields, but not `resources`, whatever its API reference says.
    if let Err(reason) = purser_eventbridge::validate_test_event(&event) {
        bail!("Event is not valid. Reason: {reason}");
    }
    // Printed the way the AWS CLI prints it.
    println!("{{\n    \"Result\": {}\n}}", pattern.matches(&event));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_names_its_region() {
        assert_eq!(
            region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/q").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("https://us-east-2.queue.amazonaws.com/123456789012/q").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of("http://127.0.0.1:5055/123456789012/q"), None);
        assert_eq!(
            target_name("arn:aws:lambda:us-east-1:1:function:purser-VendFunction-AbC"),
            "purser-VendFunction-AbC"
        );
        // A fair queue a dead letter came from, by its name too.
        assert_eq!(target_name("arn:aws:sqs:us-east-1:1:q"), "q");
        assert_eq!(
            target_name("arn:aws:events:us-east-1:1:api-destination/x/y"),
            "arn:aws:events:us-east-1:1:api-destination/x/y"
        );
    }

    #[test]
    fn since_takes_times_and_ages() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("15m", now).unwrap().to_rfc3339(),
            "2026-11-21T09:45:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-20T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert!(parse_since("15x", now).is_err());
        assert!(parse_since("soon", now).is_err());
        assert!(parse_since("", now).is_err());
    }
}
