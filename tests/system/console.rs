//! The web console's side of the API on `purser up` (issue 13): the page
//! and its files, who a person named by email is, and the three reads the
//! pages make (`/me`, `/teams`, `/teams/{team}/spend`), team-scoped as
//! every other route. The page itself is driven in Chromium by
//! tests/console/test_console.py.

use serde_json::{Value, json};

use crate::common::local::{DEV, Local, amount, start};

const ANA: &str = "ana@example.com";
const CY: &str = "cy@example.com";

async fn teams(local: &Local) {
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments",
            Some(json!({"quota": 3, "members": [DEV, "Ana@Example.com"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = local
        .call("PUT", "/teams/search", Some(json!({"members": [CY]})))
        .await;
    assert_eq!(status, 200);
}

/// `GET` of a path without the API's JSON handling: status, headers, body.
async fn fetch(local: &Local, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = local
        .http
        .get(format!("{}{path}", local.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let local = start().await;
    let (status, headers, page) = fetch(&local, "/").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.contains(r#"id="purser-config">{"auth":"local"}"#),
        "{page}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    for asset in ["app.js", "app.css"] {
        let (status, headers, text) = fetch(&local, &format!("/console/{asset}")).await;
        assert_eq!(status, 200, "{asset}");
        assert!(!text.is_empty());
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let (status, _, body) = fetch(&local, "/console/..%2FCargo.toml").await;
    assert_eq!(status, 404, "{body}");
    // Nothing of the page is fetched from elsewhere.
    for (_, _, text) in [
        fetch(&local, "/").await,
        fetch(&local, "/console/app.js").await,
        fetch(&local, "/console/app.css").await,
    ] {
        for line in text.lines() {
            assert!(
                !(line.contains("src=\"http") || line.contains("href=\"http")),
                "the console loads something from elsewhere: {line}"
            );
        }
    }
}

#[tokio::test]
async fn a_person_named_by_email_sees_their_teams_only() {
    let local = start().await;
    teams(&local).await;

    let (status, me) = local.call_as("GET", "/me", Some(ANA), None, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        json!({"principal": ANA, "admin": false, "teams": ["payments"]})
    );
    let (_, me) = local.call_as("GET", "/me", Some(DEV), None, None).await;
    assert_eq!(me["teams"], json!(["payments"]));
    let (_, me) = local.call("GET", "/me", None).await;
    assert_eq!(me["admin"], true);
    assert_eq!(me["teams"], json!(["payments", "search"]));

    let (status, list) = local.call_as("GET", "/teams", Some(CY), None, None).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search"]);
    assert_eq!(list["items"][0]["status"], "no_budget");
    // Dead letters are the admins' to see.
    assert!(list.get("dead_letters").is_none(), "{list}");
    let (_, list) = local.call("GET", "/teams", None).await;
    assert_eq!(list["dead_letters"], json!({"waiting": 0}), "{list}");

    for path in [
        "/teams/payments/spend",
        "/teams/payments",
        "/teams/payments/budget",
        "/accounts?team=payments",
    ] {
        let (status, body) = local.call_as("GET", path, Some(CY), None, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a member of team payments"),
            "{body}"
        );
    }
    // Only admins change teams, whoever the token says they are.
    let (status, _) = local
        .call_as(
            "PUT",
            "/teams/payments",
            Some(ANA),
            Some(json!({"quota": 9})),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_account_requested_from_the_console_keeps_its_story() {
    let local = start().await;
    teams(&local).await;
    let (status, body) = local
        .call_as(
            "POST",
            "/accounts",
            Some(ANA),
            Some(json!({"team": "payments", "owner": ANA, "purpose": "console"})),
            Some("console-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mut account = Value::Null;
    local
        .until("the account is ready", async |l| {
            account = l
                .call_as("GET", &format!("/accounts/{id}"), Some(ANA), None, None)
                .await
                .1;
            account["state"] == "ready"
        })
        .await;
    let events: Vec<&str> = account["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "AccountRequested",
            "AccountCreationStarted",
            "AccountReady",
            "AccessGranted"
        ],
        "{account}"
    );
    let states: Vec<&str> = account["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["requested", "creating", "ready", "ready"]);
    // A team-mate known by IAM sees it; to a stranger it does not exist.
    let (status, _) = local
        .call_as("GET", &format!("/accounts/{id}"), Some(DEV), None, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = local
        .call_as("GET", &format!("/accounts/{id}"), Some(CY), None, None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_month_shows_spend_by_day_function_and_account_and_the_deployments() {
    let local = start().await;
    let (_, account_id) = local.ready_account().await;
    local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1000"})),
        )
        .await;
    local.report(&account_id, "checkout", "b-1", 3).await;
    local.report(&account_id, "search-index", "b-2", 1).await;
    local.report(&account_id, "checkout", "b-1", 3).await; // again: counted once
    let (status, body) = local
        .call(
            "POST",
            "/deployments",
            Some(json!({"version": 1, "stack": "web", "status": "SUCCEEDED", "account_id": account_id})),
        )
        .await;
    assert!(status == 202 || status == 200, "{status} {body}");
    local.settle().await;

    let (status, month) = local
        .call_as("GET", "/teams/payments/spend", Some(DEV), None, None)
        .await;
    assert_eq!(status, 200, "{month}");
    let total = amount(&month["total"]);
    assert!(
        (total - 4.0 * crate::common::local::COST).abs() < 1e-6,
        "{month}"
    );
    assert_eq!(month["days"].as_array().unwrap().len(), 1, "{month}");
    assert_eq!(month["source"], "stream");
    assert_eq!(month["top_functions"][0]["function"], "checkout");
    assert!(
        (amount(&month["top_functions"][0]["amount"]) - 3.0 * crate::common::local::COST).abs()
            < 1e-6,
        "{month}"
    );
    assert_eq!(month["top_functions"][1]["function"], "search-index");
    assert_eq!(month["top_accounts"][0]["account_id"], account_id.as_str());
    assert_eq!(month["top_accounts"][0]["owner"], ANA);
    assert_eq!(month["deployments"][0]["stack"], "web", "{month}");
    assert_eq!(month["budget"]["amount"], "1000");
    assert_eq!(month["budget"]["frozen"], false);

    let (_, list) = local.call("GET", "/teams", None).await;
    assert_eq!(list["items"][0]["team"], "payments");
    assert_eq!(list["items"][0]["status"], "ok");
}
