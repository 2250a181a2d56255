//! `purser demo` end to end: the scripted story runs on a fresh data dir,
//! within a minute, and leaves the state it narrates (read back here from
//! the SQLite file, the bus archive and the lake files, after the runtime
//! has stopped); a data dir that holds anything is refused untouched.

use std::path::Path;
use std::time::Duration;

use purser_core::{AccountState, AccountStore, BudgetStore, TeamName};
use purser_local::{Db, SqliteStore, inspect};
use serde_json::Value;

fn archived(db: &Db, detail_type: &str) -> Vec<Value> {
    inspect::archive(
        db,
        &inspect::ArchiveFilter {
            detail_type: Some(detail_type.into()),
            limit: 10_000,
            ..Default::default()
        },
    )
    .unwrap()
    .into_iter()
    .map(|e| e.envelope)
    .collect()
}

/// Non-empty `.json` files under `lake/<table>/dt=YYYY-MM-DD/`.
fn lake_files(dir: &Path, table: &str) -> usize {
    let root = dir.join("lake").join(table);
    let mut n = 0;
    for partition in std::fs::read_dir(&root).unwrap() {
        let partition = partition.unwrap().path();
        let name = partition.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("dt="), "{name}");
        for file in std::fs::read_dir(&partition).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json")
                && std::fs::metadata(&file).unwrap().len() > 0
            {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_tells_the_whole_story_and_leaves_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), purser::demo::run(&data))
        .await
        .expect("the demo finishes within 60 s")
        .expect("the demo succeeds");
    eprintln!("the demo took {:.1} s", started.elapsed().as_secs_f64());

    let db = Db::open(&data).unwrap();

    // The team that went over budget was frozen, then unfrozen.
    let crossed: Vec<(String, u64)> = archived(&db, "BudgetThresholdCrossed")
        .iter()
        .map(|e| {
            (
                e["detail"]["team"].as_str().unwrap().to_string(),
                e["detail"]["threshold"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        crossed,
        [
            ("ml".into(), 50),
            ("ml".into(), 80),
            ("ml".into(), 100),
            ("search".into(), 50),
            ("search".into(), 80)
        ],
        "each threshold once, in order: the runaway training job's, then the Bedrock loop's"
    );
    let store = SqliteStore::new(db.clone());
    let ml = TeamName::parse("ml").unwrap();
    let accounts = store.list_accounts(Some(&ml), None, 10).await.unwrap();
    assert_eq!(accounts.items.len(), 1);
    let account = &accounts.items[0];
    assert_eq!(account.state, AccountState::Ready, "unfrozen: {account:?}");
    let account_id = account.account_id.clone().unwrap();
    for detail_type in ["AccountFrozen", "AccountUnfrozen"] {
        let events: Vec<Value> = archived(&db, detail_type)
            .into_iter()
            .filter(|e| e["detail"]["team"] == "ml")
            .collect();
        assert_eq!(events.len(), 1, "{detail_type}: {events:?}");
        assert_eq!(events[0]["detail"]["account_id"], account_id.as_str());
    }

    // The runaway guard: search's Bedrock loop froze its account (held until
    // released); the hackathon account's GPU instance was stopped, once.
    let episodes = archived(&db, "SpendRateExceeded");
    assert_eq!(episodes.len(), 2, "{episodes:#?}");
    let search = &episodes[0]["detail"];
    assert_eq!(search["team"], "search");
    assert_eq!(search["resource"], Value::Null);
    let gpu = &episodes[1]["detail"];
    assert_eq!(gpu["team"], "payments");
    assert_eq!(gpu["rule"]["origin"]["name"], "hackathon");
    assert_eq!(gpu["stopped"][0]["outcome"], "stopped", "{gpu:#}");
    let frozen: Vec<Value> = archived(&db, "AccountFrozen")
        .into_iter()
        .filter(|e| e["detail"]["team"] == "search")
        .collect();
    assert_eq!(frozen.len(), 1, "{frozen:?}");
    let budget = store.budget(&ml).await.unwrap().unwrap();
    assert_eq!(budget.amount.to_string(), "20.00", "the raised budget");

    // One request failed with AWS's reason; the others are ready, but
    // search's, which the runaway guard froze.
    let failed = archived(&db, "AccountFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["detail"]["reason_code"], "EMAIL_ALREADY_EXISTS");
    assert_eq!(failed[0]["detail"]["team"], "search");
    // Delivery is at least once: two handlers completing one creation at
    // the same moment may both announce it (a known race, docs/architecture.md).
    let ready: std::collections::BTreeSet<String> = archived(&db, "AccountReady")
        .iter()
        .map(|e| e["detail"]["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ready.len(), 4, "3 teams' and one hackathon");
    let all = store.list_accounts(None, None, 50).await.unwrap().items;
    assert_eq!(
        all.iter()
            .filter(|a| a.state == AccountState::Failed)
            .count(),
        1
    );
    assert!(
        all.iter()
            .filter(|a| a.state != AccountState::Failed)
            .all(|a| a.state == AccountState::Ready
                || (a.state == AccountState::Frozen && a.team.as_str() == "search")),
        "{all:?}"
    );

    // The hackathon account waited for payments' approver, who approved it;
    // a request over the template's maximum was refused, so made nothing.
    let asked = archived(&db, "AccountApprovalRequested");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        asked[0]["detail"]["template"],
        serde_json::json!({"name": "hackathon", "version": 1})
    );
    let approved = archived(&db, "AccountApproved");
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(
        approved[0]["detail"]["approver"],
        "arn:aws:iam::123456789012:user/maria"
    );
    let payments = TeamName::parse("payments").unwrap();
    assert_eq!(
        store
            .list_accounts(Some(&payments), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // The lake holds the invocations and deployments it reported, and the
    // Bedrock loop's usage, every token priced.
    assert!(lake_files(&data, "invocations") >= 1);
    assert!(lake_files(&data, "deployments") >= 1);
    assert!(lake_files(&data, "usage") >= 1);
    assert!(archived(&db, "UnpricedUsage").is_empty());
    assert!(archived(&db, "TeamSpendUpdated").len() >= 14);
    // The runaway team's functions were throttled, then given back.
    assert_eq!(archived(&db, "LambdasThrottled").len(), 1);
    assert_eq!(archived(&db, "LambdasRestored").len(), 1);
    assert!(
        inspect::dead_letters(&db, 10).unwrap().is_empty(),
        "no delivery failed for good"
    );

    // Every owner could sign in, and was told; so were ml's leads, of the
    // crossings.
    for ready in archived(&db, "AccountReady") {
        assert_eq!(ready["detail"]["access"]["status"], "assigned", "{ready}");
    }
    let sent = purser_local::notifier::sent(&db).unwrap();
    for owner in ["ana@example.com", "raj@example.com", "li@example.com"] {
        assert!(
            sent.iter()
                .any(|n| n.kind == "AccountReady" && n.recipient == format!("email {owner}")),
            "{owner}: {sent:?}"
        );
    }
    for (kind, to) in [
        ("AccountApprovalRequested", "email maria@example.com"),
        ("AccountApproved", "email ana@example.com"),
    ] {
        assert!(
            sent.iter().any(|n| n.kind == kind && n.recipient == to),
            "{kind} to {to}: {sent:?}"
        );
    }
    assert_eq!(
        sent.iter()
            .filter(|n| n.kind == "BudgetThresholdCrossed"
                && n.recipient == "email ml-leads@example.com")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_data_dir_that_holds_anything_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let error = purser::demo::run(dir.path())
        .await
        .expect_err("a non-empty data dir is refused");
    let message = format!("{error:#}");
    assert!(message.contains("is not empty"), "{message}");
    assert!(message.contains("--data-dir"), "{message}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["notes.txt"], "nothing was written");

    let file = dir.path().join("notes.txt");
    let error = purser::demo::run(&file)
        .await
        .expect_err("a file is no data dir");
    assert!(format!("{error:#}").contains("not a directory"));
}
