//! `purser notifications list`

use anyhow::bail;
use purser_local::Db;

use crate::cli::{NotificationsListArgs, Output};
use crate::output::{print_json, println, table};

/// The notifications a local `purser up` sent or tried, oldest first: the
/// `notifications` table, whose recipients are `Recipient::describe` forms
/// (an address, a webhook's host, the topic), never a webhook's URL.
pub fn list(args: NotificationsListArgs) -> anyhow::Result<()> {
    if !args.data_dir.join(purser_local::db::DB_FILE).exists() {
        bail!(
            "no local Purser state in {} yet: start it with `purser up` (or pass --data-dir)",
            args.data_dir.display()
        );
    }
    let db = Db::open(&args.data_dir)?;
    let mut sent = purser_local::notifier::sent(&db)?;
    if let Some(last) = args.last {
        sent.drain(..sent.len().saturating_sub(last));
    }
    match args.output {
        Output::Json => print_json(&sent),
        Output::Table => {
            if sent.is_empty() {
                return println(
                    "no notifications yet: Purser notifies as accounts become ready, budgets are \
                     crossed and accounts freeze or close (a team's `notify` says who hears)",
                );
            }
            let rows = sent
                .iter()
                .map(|n| {
                    vec![
                        n.at.clone(),
                        n.kind.clone(),
                        n.channel.clone(),
                        n.recipient.clone(),
                        n.subject.clone(),
                        n.outcome.clone(),
                    ]
                })
                .collect();
            println(table(
                &["TIME", "KIND", "CHANNEL", "RECIPIENT", "SUBJECT", "OUTCOME"],
                rows,
            ))?;
            let emails = sent.iter().filter(|n| n.channel == "email").count();
            if emails > 0 {
                eprintln!(
                    "\nthe emails are in {} (.eml files any mail client opens)",
                    args.data_dir.join("outbox").display()
                );
            }
            Ok(())
        }
    }
}
