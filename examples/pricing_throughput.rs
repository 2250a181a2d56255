//! Pricing throughput: CloudWatch metric-stream lines parsed into usage
//! records and priced, on one core.
//!
//!     cargo run --release --example pricing_throughput [LINES]
//!
//! Generates LINES (1,000,000 by default) lines in the stream's JSON output
//! format, a mix of every metric Purser prices (Bedrock tokens, NAT bytes,
//! API Gateway requests, DynamoDB units, Step Functions transitions) over
//! many resources, then times `parse_metric_stream` + `Usage::priced` with
//! the built-in price table. Generating the lines is not timed.

use std::fmt::Write;
use std::time::Instant;

use purser_core::spend::{UsagePrices, parse_metric_stream};
use rust_decimal::Decimal;

/// (namespace, metric, dimension name, dimension values' prefix, unit).
const METRICS: [(&str, &str, &str, &str, &str); 8] = [
    (
        "AWS/Bedrock",
        "InputTokenCount",
        "ModelId",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "Count",
    ),
    (
        "AWS/Bedrock",
        "OutputTokenCount",
        "ModelId",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Count",
    ),
    (
        "AWS/NATGateway",
        "BytesOutToDestination",
        "NatGatewayId",
        "nat-0a1b2c3d4e5f6",
        "Bytes",
    ),
    (
        "AWS/NATGateway",
        "BytesOutToSource",
        "NatGatewayId",
        "nat-0a1b2c3d4e5f6",
        "Bytes",
    ),
    ("AWS/ApiGateway", "Count", "ApiName", "orders-api-", "Count"),
    (
        "AWS/DynamoDB",
        "ConsumedReadCapacityUnits",
        "TableName",
        "orders-",
        "Count",
    ),
    (
        "AWS/DynamoDB",
        "ConsumedWriteCapacityUnits",
        "TableName",
        "orders-",
        "Count",
    ),
    (
        "AWS/States",
        "ConsumedCapacity",
        "ServiceMetric",
        "StateTransition",
        "Count",
    ),
];

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut text = String::with_capacity(lines * 320);
    for i in 0..lines {
        let (namespace, metric, dimension, value, unit) = METRICS[i % METRICS.len()];
        // Models and transitions are few; gateways, APIs and tables many.
        let value = match namespace {
            "AWS/Bedrock" | "AWS/States" => value.to_string(),
            _ => format!("{value}{}", i % 97),
        };
        let account = 100_000_000_000u64 + (i % 50) as u64;
        let timestamp = 1_795_000_000_000u64 + (i as u64 / 1000) * 60_000;
        let sum = (i % 5000 + 1) as f64 * 12.5;
        let _ = writeln!(
            text,
            r#"{{"metric_stream_name":"purser-usage","account_id":"{account}","region":"us-east-1","namespace":"{namespace}","metric_name":"{metric}","dimensions":{{"{dimension}":"{value}"}},"timestamp":{timestamp},"value":{{"max":{sum},"min":0.0,"sum":{sum},"count":60.0}},"unit":"{unit}"}}"#
        );
    }
    let prices = UsagePrices::builtin();

    let started = Instant::now();
    let (mut records, mut unpriced, mut total) = (0usize, 0usize, Decimal::ZERO);
    for usage in parse_metric_stream(&text) {
        let usage = usage.expect("generated lines are valid").priced(&prices);
        records += 1;
        match usage.cost {
            Some(cost) => total += cost,
            None => unpriced += 1,
        }
    }
    let elapsed = started.elapsed();

    let per_second = records as f64 / elapsed.as_secs_f64();
    println!(
        "{records} records ({} MB of lines) parsed and priced in {:.2} s on one core: \
         {:.0} records/s, {:.2} µs a record; {unpriced} unpriced, ${} in all",
        text.len() / 1_000_000,
        elapsed.as_secs_f64(),
        per_second,
        elapsed.as_secs_f64() * 1e6 / records as f64,
        total.round_dp(2),
    );
}
