//! Contract of [`DynamoStore`] against moto's DynamoDB, on a table shaped as
//! in `infra/template.yaml` (`pk`/`sk` strings, TTL on `expires_at`).
//!
//! moto evaluates condition expressions as DynamoDB does but never deletes
//! expired items: which is what the adapter must not rely on anyway, since
//! DynamoDB deletes them lazily, so the expired-claim test holds for both.

mod common;

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{Duration, Utc};
use purser_aws::DynamoStore;
use purser_core::{Store, StoreError};

/// A fresh table shaped like Purser's.
async fn table(config: &SdkConfig) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(config);
    let name = common::unique("purser");
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("a key schema element")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("an attribute definition")
    };
    client
        .create_table()
        .table_name(&name)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .expect("a TTL specification"),
        )
        .send()
        .await
        .expect("UpdateTimeToLive");
    (client, name)
}

#[tokio::test]
async fn the_first_claim_wins_and_a_repeat_is_refused() {
    let Some(config) = common::moto_config().await else {
        return;
    };
    let (_, name) = table(&config).await;
    let store = DynamoStore::from_config(&config, name);
    let now = Utc::now();
    let until = now + Duration::hours(1);

    assert!(store.claim_once("event-1", now, until).await.unwrap());
    assert!(!store.claim_once("event-1", now, until).await.unwrap());
    let later = now + Duration::minutes(59);
    assert!(
        !store
            .claim_once("event-1", later, later + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        store.claim_once("event-2", now, until).await.unwrap(),
        "keys are independent"
    );
}

#[tokio::test]
async fn stores_the_claim_with_its_ttl_attribute() {
    let Some(config) = common::moto_config().await else {
        return;
    };
    let (client, name) = table(&config).await;
    let store = DynamoStore::from_config(&config, &name);
    let now = Utc::now();
    let until = now + Duration::days(7);
    assert!(store.claim_once("event-1", now, until).await.unwrap());

    let item = client
        .get_item()
        .table_name(&name)
        .key("pk", AttributeValue::S("IDEMPOTENCY#event-1".into()))
        .key("sk", AttributeValue::S("IDEMPOTENCY".into()))
        .send()
        .await
        .expect("GetItem");
    let item = item.item().expect("the claim is stored");
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N(until.timestamp().to_string())),
        "epoch seconds, a Number, as TTL requires"
    );
}

#[tokio::test]
async fn of_concurrent_claims_exactly_one_wins() {
    let Some(config) = common::moto_config().await else {
        return;
    };
    let (_, name) = table(&config).await;
    let store = Arc::new(DynamoStore::from_config(&config, name));
    let now = Utc::now();
    let until = now + Duration::hours(1);

    let claims: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_once("contended", now, until).await })
        })
        .collect();
    let mut wins = 0;
    for claim in claims {
        if claim
            .await
            .expect("the task ran")
            .expect("the store answered")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn an_expired_claim_can_be_taken_again() {
    let Some(config) = common::moto_config().await else {
        return;
    };
    let (_, name) = table(&config).await;
    let store = DynamoStore::from_config(&config, name);
    let now = Utc::now();

    assert!(
        store
            .claim_once("event-1", now, now + Duration::minutes(5))
            .await
            .unwrap()
    );
    let after = now + Duration::minutes(6);
    assert!(
        store
            .claim_once("event-1", after, after + Duration::minutes(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_once("event-1", after, after + Duration::minutes(5))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_missing_table_makes_the_store_unavailable_and_says_why() {
    let Some(config) = common::moto_config().await else {
        return;
    };
    let name = common::unique("missing");
    let store = DynamoStore::from_config(&config, &name);
    let now = Utc::now();
    let err = store
        .claim_once("event-1", now, now + Duration::hours(1))
        .await
        .unwrap_err();
    let StoreError::Unavailable(message) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains(&name), "{message}");
    assert!(message.contains("ResourceNotFoundException"), "{message}");
}
