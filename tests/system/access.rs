//! Sign-in and notifications end to end on `purser up` (issue 12): the
//! simulated IAM Identity Center (a user for every team member named by
//! email) and the local notifier (emails in `<data-dir>/outbox/`, chat
//! webhooks really posted, here to a receiver of the test's own).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::local::{DEV, start};

/// A chat webhook: answers 200 and keeps every body posted to it.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/T0/B0/secret",
        listener.local_addr().unwrap()
    );
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    if let Ok(json) = serde_json::from_str(body) {
                        kept.lock().unwrap().push(json);
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (url, bodies)
}

pub(crate) fn outbox(dir: &std::path::Path) -> Vec<String> {
    let mut mails: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    mails.sort();
    mails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_developer_signs_in_is_told_and_loses_then_regains_and_finally_loses_access() {
    let local = start().await;
    let (hook, posted) = webhook().await;
    let (status, team) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"members": [DEV, "ana@example.com"],
                "notify": {"emails": ["leads@example.com"], "slack_webhook": hook}})),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    assert!(
        !team.to_string().contains("secret"),
        "the webhook shows redacted: {team}"
    );

    let (status, request) = local
        .call(
            "POST",
            "/accounts",
            Some(json!({"team": "payments", "owner": "ana@example.com", "purpose": "sign in"})),
        )
        .await;
    assert_eq!(status, 202, "{request}");
    let id = request["id"].as_str().unwrap().to_string();
    local
        .until("the account is ready", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let (_, account) = local.call("GET", &format!("/accounts/{id}"), None).await;
    let account_id = account["account_id"].as_str().unwrap().to_string();
    assert_eq!(account["access"]["status"], "assigned", "{account}");
    assert_eq!(account["access"]["permission_set"], "PurserDeveloper");
    assert_eq!(
        account["access"]["link"],
        format!(
            "{}/#/console?account_id={account_id}&role_name=PurserDeveloper",
            purser_local::runtime::LOCAL_PORTAL
        )
    );
    let ready = local.archived("AccountReady");
    assert_eq!(
        ready.last().unwrap()["access"]["status"],
        "assigned",
        "{ready:?}"
    );
    assert_eq!(local.archived("AccessGranted").len(), 1);

    // The owner and the team's contact are emailed, with the sign-in link.
    local.settle().await;
    let mails = outbox(local.dir.path());
    let to_ana: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("To: ana@example.com"))
        .collect();
    assert_eq!(to_ana.len(), 1, "{mails:?}");
    assert!(to_ana[0].contains("is ready") && to_ana[0].contains("role_name=PurserDeveloper"));
    assert!(mails.iter().any(|m| m.contains("To: leads@example.com")));

    // Over budget: frozen, the owner swapped to read-only, the team's chat
    // told in Slack's JSON.
    local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1.00", "thresholds": [100], "actions": {"100": ["notify", "freeze"]}})),
        )
        .await;
    local.report(&account_id, "runaway", "over", 9).await;
    local
        .until("the account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    let (_, frozen) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(
        frozen["access"]["permission_set"], "PurserReadOnly",
        "{frozen}"
    );
    assert_eq!(local.archived("AccessChanged").len(), 1);
    local.settle().await;
    let slack = posted.lock().unwrap().clone();
    let crossing = slack
        .iter()
        .find(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("100% of its budget"))
        })
        .unwrap_or_else(|| panic!("no budget message among {slack:?}"));
    assert!(crossing["blocks"].is_array(), "Slack's blocks: {crossing}");
    assert!(
        outbox(local.dir.path())
            .iter()
            .any(|m| m.contains("To: ana@example.com") && m.contains("100% of its budget")),
        "the owner is emailed of the crossing"
    );

    // Raised: unfrozen, the developer set back.
    local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "100.00"})),
        )
        .await;
    local
        .until("the account is ready again", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let (_, unfrozen) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(unfrozen["access"]["permission_set"], "PurserDeveloper");
    assert_eq!(local.archived("AccessChanged").len(), 2);

    // Closed: every assignment Purser made is removed.
    let (status, closing) = local.call("DELETE", &format!("/accounts/{id}"), None).await;
    assert_eq!(status, 202, "{closing}");
    let (_, closing) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(closing["access"]["status"], "removed", "{closing}");
    assert_eq!(local.archived("AccessRemoved").len(), 1);
    let db = local.running.db().clone();
    let left: i64 = db
        .call_blocking(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM sim_ic_assignments WHERE account_id = ?1",
                [account_id],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(left, 0, "nothing Purser granted is left");

    // Each recipient heard of each event once, whatever was redelivered.
    let sent = purser_local::notifier::sent(local.running.db()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for n in &sent {
        assert!(
            seen.insert((n.event_id.clone(), n.recipient.clone())),
            "{n:?} twice"
        );
        assert!(!n.recipient.contains("secret"), "{n:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_without_an_identity_center_user_gets_a_ready_account_and_is_told_what_to_do() {
    let local = start().await;
    local
        .call("PUT", "/teams/payments", Some(json!({"members": [DEV]})))
        .await;
    let (_, request) = local
        .call(
            "POST",
            "/accounts",
            Some(json!({"team": "payments", "owner": "carol@example.com", "purpose": "no user"})),
        )
        .await;
    let id = request["id"].as_str().unwrap().to_string();
    local
        .until("the account is ready", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let (_, account) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(account["access"]["status"], "no_user", "{account}");
    assert!(
        account["access"]["reason"]
            .as_str()
            .unwrap()
            .contains("carol@example.com")
    );
    assert!(local.archived("AccessGranted").is_empty());
    local.settle().await;
    let mails = outbox(local.dir.path());
    assert!(
        mails
            .iter()
            .any(|m| m.contains("To: carol@example.com") && m.contains("cannot sign in yet")),
        "{mails:?}"
    );
    // The platform admins are told too: they must act.
    let to_admins = format!("To: {}", purser_local::runtime::LOCAL_ADMIN_EMAIL);
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&to_admins) && m.contains("carol@example.com")),
        "{mails:?}"
    );
}

/// Issue 14: a lease template's permission set is what its accounts'
/// owners get, a freeze swaps it for the read-only set and an unfreeze
/// gives it back; a set Identity Center lacks is refused at PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_templates_permission_set_is_the_owners_and_comes_back_after_a_freeze() {
    let local = start().await;
    local
        .call(
            "PUT",
            "/teams/ml",
            Some(json!({"members": [DEV, "ana@example.com"]})),
        )
        .await;
    let (status, refused) = local
        .call(
            "PUT",
            "/templates/data-science",
            Some(json!({"description": "notebooks", "default_lease_days": 5,
                "permission_set": "PurserNobodyMade"})),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (400, &json!("permission_set")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PurserNobodyMade"),
        "{refused}"
    );
    let (status, template) = local
        .call(
            "PUT",
            "/templates/data-science",
            Some(json!({"description": "notebooks", "default_lease_days": 5,
                "permission_set": "PurserDataScience"})),
        )
        .await;
    assert_eq!(
        (status, &template["version"]),
        (200, &json!(1)),
        "{template}"
    );

    let (status, request) = local
        .call(
            "POST",
            "/accounts",
            Some(
                json!({"team": "ml", "owner": "ana@example.com", "purpose": "notebooks",
                "template": "data-science"}),
            ),
        )
        .await;
    assert_eq!(status, 202, "{request}");
    let id = request["id"].as_str().unwrap().to_string();
    local
        .until("the account is ready", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let (_, account) = local.call("GET", &format!("/accounts/{id}"), None).await;
    let account_id = account["account_id"].as_str().unwrap().to_string();
    assert_eq!(account["access"]["status"], "assigned", "{account}");
    assert_eq!(account["access"]["permission_set"], "PurserDataScience");
    assert_eq!(
        account["access"]["link"],
        format!(
            "{}/#/console?account_id={account_id}&role_name=PurserDataScience",
            purser_local::runtime::LOCAL_PORTAL
        )
    );
    let db = local.running.db().clone();
    let assigned = move |db: &purser_local::db::Db, account_id: &str| {
        let account_id = account_id.to_owned();
        db.call_blocking(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.name FROM sim_ic_assignments a
                 JOIN sim_ic_permission_sets s ON s.arn = a.permission_set
                 WHERE a.account_id = ?1 ORDER BY s.name",
            )?;
            stmt.query_map([account_id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap()
    };
    assert_eq!(assigned(&db, &account_id), ["PurserDataScience"]);

    // Frozen: read-only.
    local
        .call(
            "PUT",
            "/teams/ml/budget",
            Some(json!({"amount": "1.00", "thresholds": [100], "actions": {"100": ["freeze"]}})),
        )
        .await;
    local.report(&account_id, "runaway", "over", 9).await;
    local
        .until("the account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    let (_, frozen) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(
        frozen["access"]["permission_set"], "PurserReadOnly",
        "{frozen}"
    );
    assert_eq!(assigned(&db, &account_id), ["PurserReadOnly"]);

    // Unfrozen: the template's set again, not the developer set.
    local
        .call("PUT", "/teams/ml/budget", Some(json!({"amount": "100.00"})))
        .await;
    local
        .until("the account is ready again", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    let (_, unfrozen) = local.call("GET", &format!("/accounts/{id}"), None).await;
    assert_eq!(
        unfrozen["access"]["permission_set"], "PurserDataScience",
        "{unfrozen}"
    );
    assert!(
        unfrozen["access"]["link"]
            .as_str()
            .unwrap()
            .ends_with("role_name=PurserDataScience")
    );
    assert_eq!(assigned(&db, &account_id), ["PurserDataScience"]);

    // Closed: nothing left.
    let (status, _) = local.call("DELETE", &format!("/accounts/{id}"), None).await;
    assert_eq!(status, 202);
    assert!(assigned(&db, &account_id).is_empty());
}
