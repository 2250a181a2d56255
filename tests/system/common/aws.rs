//! AWS resources on moto's server for the end-to-end tests on the AWS
//! adapters: the template's own table, a bus whose events land in a queue
//! the test reads (as sls-test-tools asserts events).

// Each test binary uses its own part of the helpers.
#![allow(dead_code)]

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use purser_local::Template;
use serde_json::{Value, json};

/// moto's server as an AWS endpoint in `region`, or `None` when AWS
/// contract tests are skipped on purpose (`PURSER_SKIP_AWS_CONTRACT=1`).
pub async fn moto_in(region: &'static str) -> Option<SdkConfig> {
    let endpoint = match std::env::var("PURSER_MOTO_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ if std::env::var("PURSER_SKIP_AWS_CONTRACT").as_deref() == Ok("1") => {
            eprintln!("skipped: PURSER_SKIP_AWS_CONTRACT=1 and no PURSER_MOTO_ENDPOINT");
            return None;
        }
        _ => panic!(
            "PURSER_MOTO_ENDPOINT is not set: run scripts/test (it starts moto), or set PURSER_MOTO_ENDPOINT"
        ),
    };
    Some(
        purser_aws::config_loader()
            .endpoint_url(endpoint)
            .region(Region::new(region))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "purser-tests",
            ))
            .load()
            .await,
    )
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The table exactly as infra/template.yaml declares it.
pub async fn create_table_from_template(config: &SdkConfig, name: &str) {
    let template = Template::builtin();
    let props = &template.document["Resources"]["Table"]["Properties"];
    let key = |k: &Value| {
        KeySchemaElement::builder()
            .attribute_name(k["AttributeName"].as_str().unwrap())
            .key_type(KeyType::from(k["KeyType"].as_str().unwrap()))
            .build()
            .unwrap()
    };
    let mut request = aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(props["BillingMode"].as_str().unwrap()));
    for a in props["AttributeDefinitions"].as_array().unwrap() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(
                    a["AttributeType"].as_str().unwrap(),
                ))
                .build()
                .unwrap(),
        );
    }
    for k in props["KeySchema"].as_array().unwrap() {
        request = request.key_schema(key(k));
    }
    for g in props["GlobalSecondaryIndexes"].as_array().unwrap() {
        let mut index = GlobalSecondaryIndex::builder()
            .index_name(g["IndexName"].as_str().unwrap())
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            );
        for k in g["KeySchema"].as_array().unwrap() {
            index = index.key_schema(key(k));
        }
        request = request.global_secondary_indexes(index.build().unwrap());
    }
    request
        .send()
        .await
        .expect("the template's table can be created");
}

/// A bus whose `purser` events land in an SQS queue.
pub async fn bus_into_queue(config: &SdkConfig, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    events.create_event_bus().name(bus).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(bus)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name(bus)
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["purser"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(bus)
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    queue_url
}

/// Reads the queue until an event of `detail_type` arrives; returns it and
/// what came before it.
pub async fn next_event(
    config: &SdkConfig,
    queue: &str,
    seen: &mut Vec<Value>,
    detail_type: &str,
) -> Value {
    let sqs = aws_sdk_sqs::Client::new(config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = seen.iter().find(|e| e["detail-type"] == detail_type) {
            return found.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {detail_type} among {seen:#?}"
        );
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let mut event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            // moto's default target input leaves out the envelope's account.
            event
                .as_object_mut()
                .unwrap()
                .entry("account")
                .or_insert(json!("123456789012"));
            seen.push(event);
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}
