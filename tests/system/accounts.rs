//! Account vending end to end on the embedded backends: the real handlers,
//! the real template's wiring, the simulated organization, driven through
//! the HTTP API as a developer and a platform admin would.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use purser_core::{Handler, ManualClock};
use purser_local::inspect;

use crate::common;
use crate::common::local::{Local, Options};
use serde_json::{Value, json};

const DEV: &str = "arn:aws:iam::123456789012:user/ana";
const OUTSIDER: &str = "arn:aws:iam::123456789012:user/mallory";
const TEAMMATE: &str = "arn:aws:iam::123456789012:user/bob";

/// Vending runs on a manual clock from 2026-11-21T09:00Z, with creations
/// slow enough (150 ms) to be seen in flight.
async fn start() -> Local {
    common::local::start_with(Options {
        manual: Some(Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap(),
        ))),
        organization_delay: Duration::from_millis(150),
        shutdown_grace: Some(Duration::from_millis(200)),
        ..Options::default()
    })
    .await
}

/// What these tests ask of the shared harness.
impl Local {
    fn clock(&self) -> &ManualClock {
        self.manual
            .as_deref()
            .expect("vending tests run on a manual clock")
    }

    async fn team(&self, team: &str, quota: u32) {
        let (status, body) = self
            .call_as(
                "PUT",
                &format!("/teams/{team}"),
                None,
                Some(json!({"quota": quota, "members": [DEV]})),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn request(&self, team: &str, purpose: &str) -> (u16, Value) {
        self.call_as(
            "POST",
            "/accounts",
            Some(DEV),
            Some(json!({"team": team, "owner": "ana@example.com", "purpose": purpose, "lease_days": 30})),
            None,
        )
        .await
    }

    /// Polls the account until it reaches `state`.
    async fn until_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self
                .call_as("GET", &format!("/accounts/{id}"), Some(DEV), None, None)
                .await;
            assert_eq!(status, 200, "{body}");
            if body["state"] == state {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never became {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn events(&self, detail_type: &str) -> Vec<Value> {
        inspect::archive(
            self.running.db(),
            &inspect::ArchiveFilter {
                detail_type: Some(detail_type.into()),
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| e.envelope)
        .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_becomes_a_ready_account_in_the_teams_ou() {
    let local = start().await;
    local.team("payments", 5).await;
    let (status, body) = local.request("payments", "load tests").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "requested");
    assert_eq!(body["team"], "payments");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(
        body["lease_end"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-21")
    );

    let ready = local.until_state(&id, "ready").await;
    let account_id = ready["account_id"].as_str().unwrap();
    assert_eq!(account_id.len(), 12);
    assert!(account_id.bytes().all(|b| b.is_ascii_digit()));
    assert!(ready["ou"].as_str().unwrap().starts_with("ou-"));
    let email = ready["email"].as_str().unwrap();
    assert!(
        email.starts_with("ana+purser-") && email.ends_with("@example.com"),
        "{email}"
    );

    // One event per transition, with the account on AccountReady.
    for dt in ["AccountRequested", "AccountCreationStarted", "AccountReady"] {
        let events = local.events(dt);
        assert_eq!(events.len(), 1, "{dt}: {events:?}");
        assert_eq!(events[0]["source"], "purser");
        assert_eq!(events[0]["detail"]["request_id"], id.as_str());
    }
    assert_eq!(
        local.events("AccountReady")[0]["detail"]["account_id"],
        account_id
    );
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let local = start().await;
    local.team("payments", 5).await;
    let body = json!({"team": "payments", "owner": "ana@example.com", "purpose": "ci"});
    let (s1, first) = local
        .call_as(
            "POST",
            "/accounts",
            Some(DEV),
            Some(body.clone()),
            Some("k-1"),
        )
        .await;
    let (s2, again) = local
        .call_as(
            "POST",
            "/accounts",
            Some(DEV),
            Some(body.clone()),
            Some("k-1"),
        )
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(
        first["id"], again["id"],
        "the same key and body give the same request"
    );
    let other =
        json!({"team": "payments", "owner": "ana@example.com", "purpose": "something else"});
    let (s3, reused) = local
        .call_as("POST", "/accounts", Some(DEV), Some(other), Some("k-1"))
        .await;
    assert_eq!(s3, 409);
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    let (_, list) = local
        .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_name_the_field_and_write_nothing() {
    let local = start().await;
    local.team("payments", 5).await;
    let good =
        json!({"team": "payments", "owner": "ana@example.com", "purpose": "x", "lease_days": 7});
    let mut cases: Vec<(Value, Option<&str>)> = Vec::new();
    for (field, value) in [
        ("team", json!("Payments!")),
        ("owner", json!("not an email")),
        ("purpose", json!("")),
        ("purpose", json!("p".repeat(129))),
        ("lease_days", json!(0)),
        ("lease_days", json!(366)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        cases.push((body, Some(field)));
    }
    let mut unknown = good.clone();
    unknown["colour"] = json!("red");
    cases.push((unknown, Some("colour")));
    for (body, field) in cases {
        let (status, reply) = local
            .call_as("POST", "/accounts", Some(DEV), Some(body.clone()), None)
            .await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["error"]["code"], "invalid_request");
        assert_eq!(reply["error"]["field"].as_str(), field, "{reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    // Malformed JSON and oversized bodies.
    let raw = local
        .http
        .post(format!("{}/accounts", local.url))
        .header("content-type", "application/json")
        .body("{\"team\":")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let big =
        json!({"team": "payments", "owner": "ana@example.com", "purpose": "x".repeat(70 * 1024)});
    let (status, reply) = local
        .call_as("POST", "/accounts", Some(DEV), Some(big), None)
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536")
    );

    let (_, list) = local
        .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
        .await;
    assert_eq!(list["items"], json!([]), "nothing was written");
    assert!(local.events("AccountRequested").is_empty());
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_members_and_admins_reach_a_team() {
    let local = start().await;
    local.team("payments", 5).await;
    let body = json!({"team": "payments", "owner": "m@example.com", "purpose": "x"});
    let (status, reply) = local
        .call_as("POST", "/accounts", Some(OUTSIDER), Some(body), None)
        .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["error"]["code"], "forbidden");
    let (_, mine) = local.request("payments", "mine").await;
    let id = mine["id"].as_str().unwrap();
    let (status, _) = local
        .call_as(
            "GET",
            &format!("/accounts/{id}"),
            Some(OUTSIDER),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "an outsider does not learn the account exists");
    let (status, _) = local
        .call_as(
            "DELETE",
            &format!("/accounts/{id}"),
            Some(OUTSIDER),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = local
        .call_as("GET", "/accounts?team=payments", Some(OUTSIDER), None, None)
        .await;
    assert_eq!(status, 403);
    let (status, reply) = local
        .call_as(
            "PUT",
            "/teams/payments",
            Some(DEV),
            Some(json!({"quota": 50})),
            None,
        )
        .await;
    assert_eq!(status, 403, "only admins change teams: {reply}");
    let (status, team) = local
        .call_as("GET", "/teams/payments", Some(DEV), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(team["quota"], 5);
    assert_eq!(team["open_accounts"], 1);
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quota_holds_under_eight_concurrent_requests() {
    let local = Arc::new(start().await);
    local.team("payments", 3).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let local = Arc::clone(&local);
            tokio::spawn(async move { local.request("payments", &format!("burst {i}")).await })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            202 => accepted += 1,
            409 => {
                assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((accepted, refused), (3, 5));
    let (_, list) = local
        .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        3,
        "nothing beyond the quota was created"
    );
    assert_eq!(local.events("AccountRequested").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_its_requester_or_an_admin_closes_an_account() {
    let local = start().await;
    let (status, body) = local
        .call_as(
            "PUT",
            "/teams/payments",
            None,
            Some(json!({"quota": 5, "members": [DEV, TEAMMATE]})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = local.request("payments", "ana's").await;
    let id = body["id"].as_str().unwrap().to_string();
    local.until_state(&id, "ready").await;

    let (status, refused) = local
        .call_as(
            "DELETE",
            &format!("/accounts/{id}"),
            Some(TEAMMATE),
            None,
            None,
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");
    let (status, seen) = local
        .call_as(
            "GET",
            &format!("/accounts/{id}"),
            Some(TEAMMATE),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "a teammate still sees it: {seen}");
    assert_eq!(seen["state"], "ready", "and nothing was closed");

    // A platform admin may (no principal header: the local admin).
    let (status, closing) = local
        .call_as("DELETE", &format!("/accounts/{id}"), None, None, None)
        .await;
    assert_eq!(status, 202, "{closing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_account_is_closed_and_frees_the_quota() {
    let local = start().await;
    local.team("payments", 1).await;
    let (_, body) = local.request("payments", "short").await;
    let id = body["id"].as_str().unwrap().to_string();
    local.until_state(&id, "ready").await;
    let (status, _) = local.request("payments", "second").await;
    assert_eq!(status, 409, "the quota of one is used");

    let (status, closing) = local
        .call_as("DELETE", &format!("/accounts/{id}"), Some(DEV), None, None)
        .await;
    assert_eq!(status, 202, "{closing}");
    assert_eq!(closing["state"], "closing");
    let (status, again) = local
        .call_as("DELETE", &format!("/accounts/{id}"), Some(DEV), None, None)
        .await;
    assert_eq!(status, 202, "closing twice is harmless: {again}");
    local.until_state(&id, "closed").await;
    assert_eq!(local.events("AccountCloseRequested").len(), 1);
    assert_eq!(local.events("AccountClosed").len(), 1);
    let (status, _) = local.request("payments", "second").await;
    assert_eq!(status, 202, "closing freed the quota");
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_email_fails_with_awss_reason_in_words() {
    let local = start().await;
    local.team("payments", 5).await;
    local
        .running
        .organization()
        .fail_next_creation("EMAIL_ALREADY_EXISTS");
    let (_, body) = local.request("payments", "dup").await;
    let id = body["id"].as_str().unwrap().to_string();
    let failed = local.until_state(&id, "failed").await;
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("EMAIL_ALREADY_EXISTS: an AWS account already uses this email"),
        "{reason}"
    );
    let events = local.events("AccountFailed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["reason_code"], "EMAIL_ALREADY_EXISTS");
    let (_, team) = local
        .call_as("GET", "/teams/payments", Some(DEV), None, None)
        .await;
    assert_eq!(
        team["open_accounts"], 0,
        "a failed request does not hold the quota"
    );
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_more_than_five_creations_at_once_and_the_rest_wait_their_turn() {
    let local = start().await;
    local.team("payments", 8).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let (status, body) = local.request("payments", &format!("p{i}")).await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = local
            .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
            .await;
        let states: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["state"].as_str().unwrap().to_string())
            .collect();
        let creating = states.iter().filter(|s| *s == "creating").count();
        assert!(creating <= 5, "{creating} creations in flight: {states:?}");
        assert!(
            !states.iter().any(|s| s == "failed"),
            "none is failed for waiting: {states:?}"
        );
        if states.iter().all(|s| s == "ready") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all ready: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reaper_warns_before_a_lease_ends_and_closes_after() {
    let local = start().await;
    local.team("payments", 5).await;
    let (_, body) = local
        .call_as("POST", "/accounts", Some(DEV), Some(json!({"team": "payments", "owner": "ana@example.com", "purpose": "lease", "lease_days": 5})), None)
        .await;
    let id = body["id"].as_str().unwrap().to_string();
    local.until_state(&id, "ready").await;
    let reaper = purser_reaper::Reaper::new(local.running.ports().accounts());
    let tick = json!({"version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-21T09:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});

    reaper.handle(tick.clone()).await.unwrap();
    assert!(
        local.events("LeaseExpiring").is_empty(),
        "five days out: no warning yet"
    );
    local.clock().advance(chrono::Duration::days(3));
    reaper.handle(tick.clone()).await.unwrap();
    reaper.handle(tick.clone()).await.unwrap();
    assert_eq!(
        local.events("LeaseExpiring").len(),
        1,
        "warned once, within three days"
    );
    local.clock().advance(chrono::Duration::days(3));
    reaper.handle(tick.clone()).await.unwrap();
    local.until_state(&id, "closed").await;
    let requested = local.events("AccountCloseRequested");
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["detail"]["reason_code"], "LEASE_ENDED");
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closures_beyond_the_30_day_quota_are_deferred_and_said_so() {
    let local = common::local::start_with(Options {
        account_limit: Some(50),
        ..Options::default()
    })
    .await;
    local.team("payments", 20).await;
    let mut ids = Vec::new();
    for i in 0..11 {
        let (_, body) = local.request("payments", &format!("c{i}")).await;
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        local.until_state(id, "ready").await;
    }
    // 12 member accounts (11 and the management account): the quota is the minimum, 10.
    for id in &ids {
        let (status, _) = local
            .call_as("DELETE", &format!("/accounts/{id}"), Some(DEV), None, None)
            .await;
        assert_eq!(status, 202);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = local
            .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
            .await;
        let items = list["items"].as_array().unwrap();
        let closed = items.iter().filter(|a| a["state"] == "closed").count();
        let closing = items.iter().filter(|a| a["state"] == "closing").count();
        if closed == 10 && closing == 1 && !local.events("AccountCloseDeferred").is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed {closed}, closing {closing}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deferred = local.events("AccountCloseDeferred");
    assert_eq!(deferred.len(), 1, "said once a day, not on every try");
    assert_eq!(deferred[0]["detail"]["reason_code"], "CLOSURE_QUOTA");
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passing_creation_failure_is_retried_not_reported() {
    let local = start().await;
    local.team("payments", 5).await;
    local
        .running
        .organization()
        .fail_next_creation("CONCURRENT_ACCOUNT_MODIFICATION");
    let (_, body) = local.request("payments", "busy org").await;
    let id = body["id"].as_str().unwrap().to_string();
    local.until_state(&id, "ready").await;
    assert!(local.events("AccountFailed").is_empty());
    assert_eq!(
        local.events("AccountCreationStarted").len(),
        2,
        "a second CreateAccount was made"
    );
    local.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaying_every_event_in_any_order_changes_nothing() {
    let local = start().await;
    local.team("payments", 5).await;
    let (_, a) = local.request("payments", "kept").await;
    let (_, b) = local.request("payments", "closed").await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    local.until_state(&a, "ready").await;
    local.until_state(&b, "ready").await;
    local
        .running
        .organization()
        .fail_next_creation("EMAIL_ALREADY_EXISTS");
    let (_, c) = local.request("payments", "failed").await;
    let c = c["id"].as_str().unwrap().to_string();
    local
        .call_as("DELETE", &format!("/accounts/{b}"), Some(DEV), None, None)
        .await;
    local.until_state(&b, "closed").await;
    local.until_state(&c, "failed").await;
    local
        .running
        .settle(std::time::Duration::from_secs(10))
        .await
        .expect("every delivery is done");

    let snapshot = |local: &Local| {
        let archive = inspect::archive(
            local.running.db(),
            &inspect::ArchiveFilter {
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
        archive.into_iter().map(|e| e.envelope).collect::<Vec<_>>()
    };
    let before = snapshot(&local);
    let (_, list_before) = local
        .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
        .await;

    // Every event, newest first, to every event-driven handler, twice.
    let handlers = purser::registry::handlers()
        .build(local.running.ports())
        .unwrap();
    for round in 0..2 {
        for event in before.iter().rev() {
            for name in ["VendFunction", "AccountEventsFunction", "ReaperFunction"] {
                let _ = handlers[name].handle(event.clone()).await;
            }
        }
        let (_, list_after) = local
            .call_as("GET", "/accounts?team=payments", Some(DEV), None, None)
            .await;
        let states = |l: &Value| {
            l["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["id"].clone(), a["state"].clone(), a["account_id"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(states(&list_after), states(&list_before), "round {round}");
    }
    local
        .running
        .settle(std::time::Duration::from_secs(10))
        .await
        .expect("every delivery is done");
    assert_eq!(snapshot(&local).len(), before.len(), "no new events");
    local.running.shutdown().await;
}

/// purser up has no authentication, so a web page must not drive it: a
/// form post (text or form data), a cross-site fetch (its Origin) and a
/// rebound name (its Host) are refused, and nothing is written.
#[tokio::test]
async fn a_web_page_cannot_drive_purser_up() {
    let local = start().await;
    let team = json!({"quota": 3, "members": [DEV]}).to_string();
    let put = |content_type: &'static str| {
        local
            .http
            .put(format!("{}/teams/payments", local.url))
            .header("content-type", content_type)
            .body(team.clone())
    };
    let form = put("text/plain").send().await.unwrap();
    assert_eq!(form.status(), 415);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let urlencoded = put("application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(urlencoded.status(), 415);
    let cross_site = put("application/json")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let rebound = put("application/json")
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let (status, unconfigured) = local.call("GET", "/teams/payments", None).await;
    assert_eq!(status, 200);
    assert_eq!(unconfigured["members"], json!([]), "nothing was written");
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"quota": 3, "members": [DEV]})),
        )
        .await;
    assert_eq!(status, 200, "the same request from a tool is served");
    local.running.shutdown().await;
}

/// With OwnerDomains, an owner's address must be at one of them: another
/// domain, or a subdomain, is a 400 naming `owner`, and nothing is written.
#[tokio::test]
async fn owners_must_be_at_an_allowed_domain() {
    let local = start().await;
    local.team("payments", 3).await;
    let mut ports = local.running.ports().clone();
    ports.settings.owner_domains = vec!["Example.com".into()];
    let accounts = ports.accounts();
    let dev = purser_core::accounts::Caller {
        principal: DEV.into(),
        admin: false,
    };
    let input = |owner: &str| purser_core::NewAccount {
        team: purser_core::TeamName::parse("payments").unwrap(),
        owner: owner.into(),
        purpose: "domains".into(),
        lease_days: None,
        template: None,
    };
    for owner in ["ana@elsewhere.org", "ana@mail.example.com"] {
        match accounts.request(input(owner), &dev, None).await {
            Err(purser_core::accounts::AccountError::Invalid(e)) => {
                assert_eq!(e.field.as_deref(), Some("owner"), "{owner}");
                assert!(e.message.contains("example.com"), "{}", e.message);
            }
            other => panic!("{owner}: expected a refusal, got {other:?}"),
        }
    }
    let (status, list) = local.call("GET", "/accounts?team=payments", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"], json!([]), "nothing was written");
    let (account, new) = accounts
        .request(input("ana@EXAMPLE.com"), &dev, None)
        .await
        .unwrap();
    assert!(new);
    assert_eq!(account.owner, "ana@EXAMPLE.com");
    local.running.shutdown().await;
}
