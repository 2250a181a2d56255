//! No handler panics, whatever it is handed: arbitrary JSON, and arbitrary
//! values in the shapes its triggers deliver (EventBridge envelopes, API
//! Gateway requests). A handler may refuse a payload; it may not crash.

use std::sync::Arc;

use crate::common;
use crate::common::local::{Local, Options};
use proptest::prelude::*;
use purser_core::Handler;
use serde_json::{Map, Value, json};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("requested"),
            Just("AccountRequested"),
            Just("Scheduled Event"),
            Just("CreateAccountResult"),
            Just("r-000000000000"),
            Just("payments"),
            Just("POST /accounts"),
            Just("GET /accounts/{id}"),
            Just("DELETE /accounts/{id}"),
            Just("PUT /teams/{team}"),
            Just("SUCCEEDED"),
            Just("FAILED"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,12}",
                    prop_oneof![
                        Just("detail"),
                        Just("detail-type"),
                        Just("source"),
                        Just("request_id"),
                        Just("eventName"),
                        Just("serviceEventDetails"),
                        Just("createAccountStatus"),
                        Just("id"),
                        Just("state"),
                        Just("accountId"),
                        Just("team"),
                        Just("owner"),
                        Just("purpose"),
                        Just("lease_days"),
                        Just("quota"),
                        Just("members"),
                    ]
                    .prop_map(String::from)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn envelope(detail_type: Value, source: Value, detail: Value) -> Value {
    json!({"version": "0", "id": "e", "detail-type": detail_type, "source": source,
           "account": "123456789012", "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
           "resources": [], "detail": detail})
}

fn api_request(route: Value, body: Value, params: Value, query: Value) -> Value {
    json!({"version": "2.0", "routeKey": route, "rawPath": "/x", "rawQueryString": "",
           "headers": {"idempotency-key": "k"}, "pathParameters": params, "queryStringParameters": query,
           "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "l", "domainPrefix": "l",
               "authorizer": {"iam": {"userArn": purser_local::LOCAL_ADMIN, "accountId": "123456789012", "accessKey": "k", "callerId": "c", "userId": "u"}},
               "http": {"method": "POST", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
               "requestId": "r", "routeKey": route, "stage": "$default", "time": "21/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
           "body": if body.is_string() { body } else { Value::String(body.to_string()) },
           "isBase64Encoded": false})
}

struct Handlers {
    all: Vec<(String, Arc<dyn Handler>)>,
    rt: tokio::runtime::Runtime,
    _local: Local,
}

fn handlers() -> Handlers {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = rt.block_on(common::local::start_with(Options::default()));
    let all = purser::registry::handlers()
        .build(local.running.ports())
        .unwrap()
        .into_iter()
        .collect();
    Handlers {
        all,
        rt,
        _local: local,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_handler_panics_on_any_input(
        raw in arbitrary_json(),
        detail_type in arbitrary_json(),
        source in arbitrary_json(),
        detail in arbitrary_json(),
        route in arbitrary_json(),
        body in arbitrary_json(),
        params in arbitrary_json(),
        query in arbitrary_json(),
    ) {
        thread_local! { static H: Handlers = handlers(); }
        H.with(|h| {
            let payloads = [
                raw.clone(),
                envelope(detail_type.clone(), source.clone(), detail.clone()),
                envelope(json!("AccountRequested"), json!("purser"), detail.clone()),
                envelope(json!("AWS Service Event via CloudTrail"), json!("aws.organizations"), detail.clone()),
                api_request(route.clone(), body.clone(), params.clone(), query.clone()),
                api_request(json!("POST /accounts"), body.clone(), json!({}), json!({})),
                api_request(json!("PUT /teams/{team}"), body.clone(), params.clone(), json!({})),
            ];
            for (name, handler) in &h.all {
                for payload in &payloads {
                    let handler = Arc::clone(handler);
                    let payload = payload.clone();
                    // A panic inside the spawned task surfaces as a JoinError.
                    let joined = h.rt.block_on(async move {
                        tokio::spawn(async move { handler.handle(payload).await }).await
                    });
                    prop_assert!(joined.is_ok(), "{} panicked", name);
                }
            }
            Ok(())
        })?;
    }
}

/// A lake that fails the way Athena does, with words that name its insides.
struct FailingLake;

#[async_trait::async_trait]
impl purser_core::ports::QueryEngine for FailingLake {
    async fn run(
        &self,
        _query: &purser_core::ports::NamedQuery,
        _params: &[String],
    ) -> Result<purser_core::ports::QueryResult, purser_core::ports::QueryError> {
        Err(purser_core::ports::QueryError::Failed(
            "SYNTAX_ERROR: line 3: s3://purser-athena-results-secret/ workgroup purser-internal"
                .into(),
        ))
    }
}

/// Athena's error text stays in the log: the caller gets what to do and a
/// request id, not the workgroup, buckets or SQL.
#[test]
fn a_failing_lake_query_is_not_echoed_to_the_caller() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = rt.block_on(common::local::start_with(Options::default()));
    let mut ports = local.running.ports().clone();
    ports.queries = Some(Arc::new(FailingLake));
    let api = purser_api::Api::from_ports(&ports).unwrap();
    let team = json!({"team": "payments"});
    let created = rt
        .block_on(api.handle(api_request(
            json!("PUT /teams/{team}"),
            json!({"quota": 3}),
            team.clone(),
            Value::Null,
        )))
        .unwrap();
    assert_eq!(created["statusCode"], 200, "{created}");
    let reply = rt
        .block_on(api.handle(api_request(
            json!("GET /teams/{team}/costs"),
            Value::Null,
            team,
            json!({"by": "function"}),
        )))
        .unwrap();
    assert_eq!(reply["statusCode"], 500, "{reply}");
    let body = reply["body"].as_str().unwrap();
    for inside in ["SYNTAX_ERROR", "s3://", "workgroup"] {
        assert!(!body.contains(inside), "{body}");
    }
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["request_id"], "r", "{body}");
    rt.block_on(local.running.shutdown());
}
