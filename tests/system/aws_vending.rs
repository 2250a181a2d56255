//! Account vending on the AWS adapters, against moto's server: the real
//! handlers (api, vend, account-events, reaper) on DynamoDB, Organizations
//! and EventBridge, with the events each one emits asserted the way
//! sls-test-tools asserts them: a rule on the bus delivers them to an SQS
//! queue the test reads. The DynamoDB table is created from
//! infra/template.yaml itself, so the template and the store cannot disagree.
//!
//! moto differs from AWS where it matters here: `CreateAccount` succeeds at
//! once (so vend completes the creation itself), `CloseAccount` suspends at
//! once, and the envelopes its EventBridge delivers to SQS lack `account`
//! (the test fills it in). Waiting creations, failures and the closure quota
//! are exercised on the local backends (tests/system/accounts.rs).

use std::sync::Arc;

use crate::common::aws::{bus_into_queue, create_table_from_template, moto_in, next_event, unique};
use purser_core::Handler;
use serde_json::{Value, json};

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";

fn http(method: &str, path: &str, route: &str, params: Value, body: Option<Value>) -> Value {
    json!({
        "version": "2.0", "routeKey": format!("{method} {route}"), "rawPath": path, "rawQueryString": "",
        "headers": {}, "pathParameters": params,
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "d", "domainPrefix": "d",
            "authorizer": {"iam": {"userArn": ADMIN, "accountId": "123456789012", "accessKey": "k", "callerId": "c", "userId": "u"}},
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": format!("{method} {route}"), "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
        "body": body.map(|b| b.to_string()), "isBase64Encoded": false
    })
}

fn reply_body(reply: &Value) -> Value {
    serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn vending_and_closing_on_the_aws_adapters_emit_every_event() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let Some(config) = moto_in("us-east-1").await else {
        return;
    };
    let organizations = aws_sdk_organizations::Client::new(&config);
    // One organization per moto server; later tests find it there.
    let _ = organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;

    let (table, bus) = (unique("purser"), unique("purser-bus"));
    create_table_from_template(&config, &table).await;
    let queue = bus_into_queue(&config, &bus).await;
    // The ports exactly as a function's `main` builds them on AWS, from the
    // variables the template gives the api function (Athena and Firehose
    // are not exercised here: tests/system/lake.rs and the contract tests).
    let vars: std::collections::HashMap<&str, String> = [
        ("PURSER_TABLE", table.clone()),
        ("PURSER_BUS", bus.clone()),
        ("PURSER_ADMIN_PRINCIPALS", ADMIN.to_string()),
        ("PURSER_INVOCATIONS_STREAM", "none".into()),
        ("PURSER_DEPLOYMENTS_STREAM", "none".into()),
        ("PURSER_USAGE_STREAM", "none".into()),
        ("PURSER_LEASES_STREAM", "none".into()),
        ("PURSER_LAKE_BUCKET", "none".into()),
        ("PURSER_ATHENA_WORKGROUP", "primary".into()),
        ("PURSER_LAKE_DATABASE", "purser_lake".into()),
    ]
    .into_iter()
    .collect();
    let mut ports = purser_lambda::ports_from(&config, &|name| vars.get(name).cloned()).unwrap();
    // Throttling is contract-tested on its own (shared/aws/tests/contract/lambdas.rs).
    ports.member_lambdas = Arc::new(purser_core::NoLambdas);
    let vend = purser_vend::Vend::from_ports(&ports).unwrap();
    let api = purser_api::Api::from_ports(&ports).unwrap();
    let reaper = purser_reaper::Reaper::from_ports(&ports).unwrap();
    let account_events = purser_account_events::AccountEvents::from_ports(&ports).unwrap();
    let mut seen = Vec::new();

    let team = unique("t");
    let reply = api
        .handle(http(
            "PUT",
            &format!("/teams/{team}"),
            "/teams/{team}",
            json!({"team": team}),
            Some(json!({"quota": 2})),
        ))
        .await
        .unwrap();
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let owner = format!("{}@example.com", unique("dev"));
    let reply = api
        .handle(http(
            "POST",
            "/accounts",
            "/accounts",
            json!({}),
            Some(json!({"team": team, "owner": owner, "purpose": "contract"})),
        ))
        .await
        .unwrap();
    assert_eq!(reply["statusCode"], 202, "{reply}");
    let id = reply_body(&reply)["id"].as_str().unwrap().to_string();

    // api → AccountRequested → vend → AccountCreationStarted, AccountReady.
    let requested = next_event(&config, &queue, &mut seen, "AccountRequested").await;
    assert_eq!(requested["detail"]["request_id"], id.as_str());
    vend.handle(requested.clone()).await.unwrap();
    vend.handle(requested).await.unwrap(); // delivered twice: nothing more happens
    next_event(&config, &queue, &mut seen, "AccountCreationStarted").await;
    let ready = next_event(&config, &queue, &mut seen, "AccountReady").await;
    let account_id = ready["detail"]["account_id"].as_str().unwrap().to_string();
    assert_eq!(account_id.len(), 12);

    // The account sits in purser/<team>, tagged.
    let parents = organizations
        .list_parents()
        .child_id(&account_id)
        .send()
        .await
        .unwrap();
    let ou = parents.parents()[0].id().unwrap().to_string();
    assert_eq!(ready["detail"]["ou"], ou.as_str());
    let ou_name = organizations
        .describe_organizational_unit()
        .organizational_unit_id(&ou)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ou_name.organizational_unit().unwrap().name(),
        Some(team.as_str())
    );
    let tags = organizations
        .list_tags_for_resource()
        .resource_id(&account_id)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "purser:request" && t.value() == id)
    );

    let reply = api
        .handle(http(
            "GET",
            &format!("/accounts/{id}"),
            "/accounts/{id}",
            json!({"id": id}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(reply_body(&reply)["state"], "ready");

    // api DELETE → AccountCloseRequested → reaper → CloseAccount; the poller sees it suspended → AccountClosed.
    let reply = api
        .handle(http(
            "DELETE",
            &format!("/accounts/{id}"),
            "/accounts/{id}",
            json!({"id": id}),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(reply["statusCode"], 202);
    let close = next_event(&config, &queue, &mut seen, "AccountCloseRequested").await;
    reaper.handle(close).await.unwrap();
    let tick = json!({"version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2026-11-21T10:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    account_events.handle(tick).await.unwrap();
    let closed = next_event(&config, &queue, &mut seen, "AccountClosed").await;
    assert_eq!(closed["detail"]["account_id"], account_id.as_str());

    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    for once in [
        "AccountRequested",
        "AccountCreationStarted",
        "AccountReady",
        "AccountCloseRequested",
        "AccountClosed",
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == once).count(),
            1,
            "{once} exactly once in {kinds:?}"
        );
    }
}
