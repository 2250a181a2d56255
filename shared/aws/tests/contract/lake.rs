//! [`FirehoseSink`] against moto's Firehose and S3: the LakeSink port's
//! contract (`purser_contract::lake_sink`, written once for every adapter),
//! and what only Firehose does (calls of 500 records, streams and buckets
//! that do not exist). Each table has a Direct PUT delivery stream with an
//! extended S3 destination, whose bucket the tests read back, and a
//! dead-letter prefix in the same bucket.
//!
//! Where moto is not faithful to Firehose:
//!
//! - it does not buffer: each `PutRecordBatch` call becomes one S3 object
//!   at once, under `<prefix>YYYY/MM/DD/HH/`, its records' data
//!   concatenated as sent. Like Firehose it adds no delimiter, so the lines
//!   read back are the producer's own newlines;
//! - it ignores buffering hints, dynamic partitioning, processors (such as
//!   `AppendDelimiterToRecord`) and conversion to Parquet;
//! - it never refuses a record (`FailedPutCount` is always 0) and checks
//!   none of the call's limits, so what the sink does with refused records
//!   and how it packs calls is unit-tested with a fake (`src/lake.rs`);
//! - a stream that does not exist fails the whole call with
//!   `ResourceNotFoundException`, as Firehose does: the sink retries it as
//!   a call-level failure and then dead-letters the records.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_firehose::types::{
    BufferingHints, DeliveryStreamType, ExtendedS3DestinationConfiguration,
};
use chrono::{TimeZone, Utc};
use purser_aws::{DeadLetterBucket, FirehoseSink, LakeStreams, RetryPolicy};
use purser_contract::lake_sink::{Fixture, Observer};
use purser_core::lake::LakeTable;
use purser_core::{Appended, LakeError, LakeSink, ManualClock};
use serde_json::{Value, json};

const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(20),
};

const DEAD_LETTERS: &str = "dead-letters/";

async fn bucket(config: &SdkConfig) -> String {
    let name = crate::common::unique("lake");
    aws_sdk_s3::Client::new(config)
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("CreateBucket");
    name
}

/// A Direct PUT stream delivering to `bucket` under `prefix`.
async fn stream(config: &SdkConfig, bucket: &str, prefix: &str) -> String {
    let name = crate::common::unique("purser");
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/purser-firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix(prefix)
        .buffering_hints(
            BufferingHints::builder()
                .interval_in_seconds(60)
                .size_in_mbs(64)
                .build(),
        )
        .build()
        .expect("a destination");
    aws_sdk_firehose::Client::new(config)
        .create_delivery_stream()
        .delivery_stream_name(&name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .expect("CreateDeliveryStream");
    name
}

/// A sink whose dead letters are dated 2026-11-21.
fn sink(config: &SdkConfig, streams: LakeStreams, bucket: &str) -> FirehoseSink {
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
            .single()
            .expect("a valid time"),
    );
    FirehoseSink::from_config(
        config,
        streams,
        DeadLetterBucket {
            bucket: bucket.into(),
            prefix: DEAD_LETTERS.into(),
        },
    )
    .with_retry(FAST)
    .with_clock(Arc::new(clock))
}

/// Every object under `prefix`, all pages, with its body and metadata.
async fn objects(
    config: &SdkConfig,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, Vec<u8>, Option<String>)> {
    let s3 = aws_sdk_s3::Client::new(config);
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        for object in page.expect("ListObjectsV2").contents() {
            let key = object.key().expect("a key").to_owned();
            let got = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("GetObject");
            let reasons = got
                .metadata()
                .and_then(|m| m.get("purser-reasons"))
                .cloned();
            let body = got.body.collect().await.expect("the body").to_vec();
            found.push((key, body, reasons));
        }
    }
    found
}

/// The lines of a body, each with its newline; panics on a last line
/// without one.
fn lines(body: &[u8]) -> Vec<Value> {
    body.split_inclusive(|b| *b == b'\n')
        .map(|line| {
            assert_eq!(line.last(), Some(&b'\n'), "a line without its newline");
            serde_json::from_slice(line).expect("a line of JSON")
        })
        .collect()
}

fn record(n: usize) -> Value {
    json!({
        "schema_version": 1,
        "n": n,
        "account_id": "111111111111",
        "function_name": "checkout",
        "note": "a value with a\nnewline stays on its line",
    })
}

/// The largest record Firehose takes.
const FIREHOSE_RECORD_LIMIT: usize = 1_000 * 1024;

/// A bucket with a stream per table, read back by prefix.
struct Lake {
    config: SdkConfig,
    bucket: String,
}

impl Lake {
    async fn new(config: &SdkConfig) -> (Self, FirehoseSink) {
        let bucket = bucket(config).await;
        let invocations = stream(config, &bucket, "invocations/").await;
        let deployments = stream(config, &bucket, "deployments/").await;
        let usage = stream(config, &bucket, "usage/").await;
        let leases = stream(config, &bucket, "leases/").await;
        let sink = sink(
            config,
            LakeStreams {
                invocations,
                deployments,
                usage,
                leases,
            },
            &bucket,
        );
        let lake = Self {
            config: config.clone(),
            bucket,
        };
        (lake, sink)
    }

    async fn lines_under(&self, prefix: &str) -> Vec<Value> {
        objects(&self.config, &self.bucket, prefix)
            .await
            .iter()
            .flat_map(|(_, body, _)| lines(body))
            .collect()
    }
}

/// Each table's stream delivers under the table's name; the sink
/// dead-letters under `dead-letters/<table>/dt=<its clock's day>/`.
impl Observer for Lake {
    async fn records(&self, table: LakeTable) -> Vec<Value> {
        self.lines_under(&format!("{}/", table.name())).await
    }

    async fn dead_letters(&self, table: LakeTable) -> Vec<Value> {
        let prefix = format!("{DEAD_LETTERS}{}/", table.name());
        let dated = format!("{prefix}dt=2026-11-21/");
        objects(&self.config, &self.bucket, &prefix)
            .await
            .iter()
            .flat_map(|(key, body, _)| {
                assert!(key.starts_with(&dated), "dead-lettered under {key}");
                lines(body)
            })
            .collect()
    }
}

async fn fresh() -> Option<Fixture<Lake>> {
    let config = crate::common::moto_config().await?;
    let (lake, sink) = Lake::new(&config).await;
    Some(Fixture::new(Arc::new(sink), lake).refusing_records_over(FIREHOSE_RECORD_LIMIT))
}

purser_contract::lake_sink_contract!(fresh);

#[tokio::test]
async fn records_are_put_in_calls_of_at_most_500_one_json_line_each() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let (lake, sink) = Lake::new(&config).await;
    let records: Vec<Value> = (0..1_200).map(record).collect();
    let appended = sink
        .append(LakeTable::Invocations, records)
        .await
        .expect("appended");
    assert_eq!(appended.written, 1_200);

    let delivered = objects(&config, &lake.bucket, "invocations/").await;
    // moto writes one object per call: 500 + 500 + 200 records.
    let mut per_object: Vec<usize> = delivered.iter().map(|(_, b, _)| lines(b).len()).collect();
    per_object.sort_unstable();
    assert_eq!(per_object, [200, 500, 500]);
}

#[tokio::test]
async fn records_for_a_stream_that_does_not_exist_are_dead_lettered() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let bucket = bucket(&config).await;
    let missing = crate::common::unique("absent");
    let sink = sink(
        &config,
        LakeStreams {
            invocations: crate::common::unique("absent"),
            deployments: missing.clone(),
            usage: crate::common::unique("absent"),
            leases: crate::common::unique("absent"),
        },
        &bucket,
    );
    let records: Vec<Value> = (0..5).map(record).collect();
    let appended = sink
        .append(LakeTable::Deployments, records.clone())
        .await
        .expect("the records are kept, in the dead letters");
    assert_eq!(
        appended,
        Appended {
            written: 0,
            dead_lettered: 5
        }
    );

    let dead = objects(&config, &bucket, DEAD_LETTERS).await;
    assert_eq!(dead.len(), 1, "one object per append");
    let (key, body, reasons) = &dead[0];
    let name = key
        .strip_prefix("dead-letters/deployments/dt=2026-11-21/")
        .unwrap_or_else(|| panic!("dead-lettered under {key}"));
    let id = name
        .strip_suffix(".json")
        .unwrap_or_else(|| panic!("dead-lettered as {key}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{key}");
    assert_eq!(lines(body), records, "each record once, in order");
    let reasons = reasons.as_deref().unwrap_or_default();
    assert!(
        reasons.starts_with("5 records: PutRecordBatch"),
        "{reasons}"
    );
    assert!(reasons.contains(&missing), "{reasons}");
    assert!(reasons.contains("ResourceNotFoundException"), "{reasons}");
}

#[tokio::test]
async fn when_nothing_can_be_stored_the_lake_is_unavailable_and_says_why() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let missing_bucket = crate::common::unique("absent");
    let sink = sink(
        &config,
        LakeStreams {
            invocations: crate::common::unique("absent"),
            deployments: crate::common::unique("absent"),
            usage: crate::common::unique("absent"),
            leases: crate::common::unique("absent"),
        },
        &missing_bucket,
    );
    let err = sink
        .append(LakeTable::Invocations, vec![record(0)])
        .await
        .unwrap_err();
    let LakeError::Unavailable(message) = err;
    eprintln!("{message}");
    assert!(message.contains("ResourceNotFoundException"), "{message}");
    assert!(message.contains(&missing_bucket), "{message}");
    assert!(message.contains("NoSuchBucket"), "{message}");
}
