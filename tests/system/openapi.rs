//! The HTTP API's OpenAPI document (infra/openapi.json) describes exactly
//! the routes the template declares, and `purser up` serves it.

use std::collections::BTreeSet;

use purser_local::template::{LocalContext, Template, Trigger};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(purser::OPENAPI).expect("infra/openapi.json is JSON")
}

#[test]
fn every_route_of_the_template_is_documented_and_back() {
    let wiring = Template::builtin()
        .wiring(&LocalContext::default())
        .unwrap();
    let declared: BTreeSet<String> = wiring
        .wires
        .iter()
        .filter_map(|w| match &w.trigger {
            Trigger::HttpRoute { method, path } => Some(format!("{method} {path}")),
            _ => None,
        })
        .collect();
    let doc = document();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert_eq!(
        declared, documented,
        "infra/template.yaml's HttpApi routes and infra/openapi.json's operations differ"
    );
}

#[test]
fn the_document_is_openapi_3_with_an_error_shape() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["schemas"]["Error"]["properties"]["error"].is_object());
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has an operationId"
            );
            // The console's page and files are not JSON, and take nothing.
            let json = op["responses"]["200"]["content"]["application/json"].is_object()
                || !op["responses"]["200"].is_object();
            assert!(
                !json || op["responses"]["400"].is_object(),
                "{method} {path} documents 400"
            );
        }
    }
}

#[tokio::test]
async fn purser_up_serves_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = purser_local::RuntimeConfig::new(dir.path(), 0);
    config.openapi = Some(purser::OPENAPI.to_string());
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &purser::registry::handlers(),
        None,
    )
    .await
    .unwrap();
    let reply = purser::http_client()
        .build()
        .unwrap()
        .get(format!("http://{}/openapi.json", running.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    let served: Value = reply.json().await.unwrap();
    assert_eq!(served, document());
    running.shutdown().await;
}
