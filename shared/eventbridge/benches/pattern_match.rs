//! How fast one event is checked against a bus's worth of rules: 100 varied,
//! realistic patterns (exact, prefix, suffix, numeric, anything-but, cidr,
//! wildcard, exists, `$or`, nested `detail` fields), compiled once, then each
//! of a few representative events evaluated against all of them. Throughput
//! is reported in events per second.
//!
//! `cargo bench -p purser-core --bench pattern_match`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use purser_eventbridge::EventPattern;
use serde_json::{Value, json};

const TEAMS: [&str; 5] = ["payments", "search", "platform", "growth", "data"];
const STATES: [&str; 4] = ["pending", "running", "stopping", "terminated"];

/// 100 rule patterns, ten of each of ten shapes, varied by index.
fn rules() -> Vec<Value> {
    let mut rules = Vec::with_capacity(100);
    for i in 0..10 {
        let team = TEAMS[i % TEAMS.len()];
        let state = STATES[i % STATES.len()];
        let suffix = [".png", ".jpg", ".csv", ".json", ".parquet"][i % 5];
        rules.extend([
            // EC2 lifecycle, the user guide's first example.
            json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance State-change Notification"],
                "detail": {"state": [state, STATES[(i + 1) % STATES.len()]]}
            }),
            // Purser's own events, per team.
            json!({
                "source": ["purser"],
                "detail-type": ["AccountReady", "AccountFailed", "AccountClosed"],
                "detail": {"team": [team], "purpose": [{"anything-but": ["sandbox", "scratch"]}]}
            }),
            // Budget alerts above a threshold, by team prefix.
            json!({
                "source": ["purser"],
                "detail-type": ["BudgetThresholdCrossed"],
                "detail": {
                    "team": [{"prefix": format!("{team}-")}, team],
                    "percent": [{"numeric": [">=", 50 + i * 5, "<", 200]}]
                }
            }),
            // Organizations account creation through CloudTrail, nested.
            json!({
                "source": ["aws.organizations"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {
                    "eventName": ["CreateAccountResult"],
                    "serviceEventDetails": {"createAccountStatus": {
                        "state": [if i % 2 == 0 { "SUCCEEDED" } else { "FAILED" }],
                        "accountName": [{"prefix": format!("dev-{team}")}]
                    }}
                }
            }),
            // S3 uploads by key suffix and bucket prefix.
            json!({
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [{"prefix": format!("uploads-{i}")}]},
                    "object": {"key": [{"suffix": suffix}], "size": [{"numeric": [">", 0]}]}
                }
            }),
            // Anything but noisy sources, deployments by prefix.
            json!({
                "source": [{"anything-but": ["aws.config", "aws.health", "aws.trustedadvisor"]}],
                "detail-type": [{"prefix": "Deployment"}],
                "detail": {"stack": [{"equals-ignore-case": format!("{team}-API")}]}
            }),
            // $or across detail fields.
            json!({
                "source": ["purser"],
                "$or": [
                    {"detail": {"severity": ["HIGH", "CRITICAL"]}},
                    {"detail": {"cost": [{"numeric": [">", 1000 * (i + 1)]}]}},
                    {"detail-type": ["AccountFrozen"]}
                ]
            }),
            // Console sign-ins from outside the office network.
            json!({
                "detail-type": ["AWS Console Sign In via CloudTrail"],
                "detail": {
                    "sourceIPAddress": [{"anything-but": {"prefix": format!("10.{i}.")}}],
                    "userIdentity": {"type": ["Root", "IAMUser"]}
                }
            }),
            // Lambda resources by wildcard, plus an exists check.
            json!({
                "resources": [{"wildcard": format!("arn:aws:lambda:*:function:{team}-*")}],
                "detail": {"requestId": [{"exists": true}], "errorCode": [{"exists": false}]}
            }),
            // Network events by CIDR and region.
            json!({
                "region": ["us-east-1", "eu-west-1"],
                "detail": {"network": {"clientIp": [{"cidr": format!("10.{i}.0.0/16")}]}}
            }),
        ]);
    }
    rules
}

fn events() -> Vec<(&'static str, Value)> {
    let envelope = |source: &str, detail_type: &str, resources: Value, detail: Value| {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": source,
            "account": "111122223333",
            "time": "2026-05-02T18:43:48Z",
            "region": "us-east-1",
            "resources": resources,
            "detail": detail
        })
    };
    vec![
        (
            "ec2_state_change",
            envelope(
                "aws.ec2",
                "EC2 Instance State-change Notification",
                json!(["arn:aws:ec2:us-east-1:111122223333:instance/i-1234567890abcdef0"]),
                json!({"instance-id": "i-1234567890abcdef0", "state": "running"}),
            ),
        ),
        (
            "purser_budget_crossed",
            envelope(
                "purser",
                "BudgetThresholdCrossed",
                json!([]),
                json!({"team": "search-core", "percent": 85, "period": "2026-05", "cost": 4250.75, "limit": 5000}),
            ),
        ),
        (
            "cloudtrail_create_account",
            envelope(
                "aws.organizations",
                "AWS Service Event via CloudTrail",
                json!([]),
                json!({
                    "eventVersion": "1.08",
                    "eventSource": "organizations.amazonaws.com",
                    "eventName": "CreateAccountResult",
                    "awsRegion": "us-east-1",
                    "userIdentity": {"accountId": "111122223333", "invokedBy": "AWS Internal"},
                    "serviceEventDetails": {"createAccountStatus": {
                        "id": "car-123456789012",
                        "state": "SUCCEEDED",
                        "accountName": "dev-platform-alice",
                        "accountId": "444455556666",
                        "requestedTimestamp": "May 2, 2026 6:40:12 PM",
                        "completedTimestamp": "May 2, 2026 6:43:48 PM"
                    }}
                }),
            ),
        ),
        (
            "s3_object_created",
            envelope(
                "aws.s3",
                "Object Created",
                json!(["arn:aws:s3:::uploads-3-media"]),
                json!({
                    "version": "0",
                    "bucket": {"name": "uploads-3-media"},
                    "object": {"key": "exports/2026/05/02/report.json", "size": 48213, "etag": "d41d8cd98f00b204e9800998ecf8427e"},
                    "request-id": "57H08PA84AB1JZW0",
                    "requester": "111122223333",
                    "source-ip-address": "10.3.4.5",
                    "reason": "PutObject"
                }),
            ),
        ),
        (
            "health_event",
            envelope(
                "aws.health",
                "AWS Health Event",
                json!(["arn:aws:lambda:us-east-1:111122223333:function:growth-api"]),
                json!({"eventTypeCode": "AWS_LAMBDA_OPERATIONAL_ISSUE", "service": "LAMBDA", "statusCode": "open", "requestId": "b1e2"}),
            ),
        ),
    ]
}

fn compiled() -> Vec<EventPattern> {
    rules()
        .iter()
        .map(|rule| EventPattern::from_value(rule).expect("benchmark rules are valid"))
        .collect()
}

fn match_all_rules(c: &mut Criterion) {
    let patterns = compiled();
    let mut group = c.benchmark_group("match_one_event_against_100_rules");
    // One element is one event checked against all 100 rules.
    group.throughput(Throughput::Elements(1));
    for (name, event) in events() {
        let matched = patterns.iter().filter(|p| p.matches(&event)).count();
        assert!(
            matched < patterns.len(),
            "{name} should not match every rule"
        );
        group.bench_function(format!("{name}/{matched}_of_100_match"), |b| {
            b.iter(|| {
                let event = black_box(&event);
                patterns.iter().filter(|p| p.matches(event)).count()
            })
        });
    }
    group.finish();
}

fn compile_rules(c: &mut Criterion) {
    let rules = rules();
    let mut group = c.benchmark_group("compile");
    group.throughput(Throughput::Elements(rules.len() as u64));
    group.bench_function("100_rules", |b| {
        b.iter(|| {
            black_box(&rules)
                .iter()
                .filter(|rule| EventPattern::from_value(rule).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, match_all_rules, compile_rules);
criterion_main!(benches);
