//! What runs and costs by the second, on `purser up` (issue 15): a member
//! account's EC2 instance, Fargate task and SageMaker training job, their
//! state changes put on the local endpoint as that account (as its
//! forwarding rules would deliver them), priced within minutes by the
//! recorder's `Accrual` schedule while they run, and their last slice at
//! their stop; a redelivered event counts nothing twice. On a manual
//! clock, so the schedule's slices are exact.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use purser_core::ManualClock;
use serde_json::{Value, json};

use crate::common;
use crate::common::local::{Local, Options};

const INSTANCE: &str = "i-0123456789abcdef0";
/// g5.xlarge in us-east-1, per hour (infra/prices.json).
const G5_XLARGE: f64 = 1.006;

async fn start() -> Local {
    common::local::start_with(Options {
        manual: Some(Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 21, 22, 0, 0).unwrap(),
        ))),
        organization_delay: Duration::from_millis(100),
        allow_aws_sources: true,
        ..Options::default()
    })
    .await
}

impl Local {
    async fn instance_state(&self, account: &str, state: &str) {
        self.forward(
            account,
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": INSTANCE, "state": state}),
        )
        .await;
    }

    fn lake_usage(&self) -> Vec<Value> {
        let root = self.dir.path().join("lake").join("usage");
        let mut rows = Vec::new();
        for part in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(part.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(file.path()).unwrap();
                rows.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
        rows
    }
}

fn near(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual} is not {expected}"
    );
}

#[tokio::test]
async fn a_gpu_instance_is_priced_while_it_runs_and_its_stop_once() {
    let local = start().await;
    let (_, account) = local.ready_account().await;
    // The launch call (where a trail logs it) tells the type; the state
    // change that the instance runs starts its run.
    local.launch(&account, INSTANCE, "g5.xlarge").await;
    near(local.team_spent().await, 0.0, "nothing yet");

    // Five minutes on, the accrual counts them.
    local.advance(5);
    let accrued = local.accrue().await;
    assert_eq!(accrued["runs"], 1, "{accrued}");
    near(
        local.team_spent().await,
        G5_XLARGE * 5.0 / 60.0,
        "5 minutes",
    );
    // An hour later, it has grown by the hour.
    local.advance(60);
    local.accrue().await;
    near(
        local.team_spent().await,
        G5_XLARGE * 65.0 / 60.0,
        "65 minutes",
    );
    // The same schedule again at the same time counts nothing.
    local.accrue().await;
    near(local.team_spent().await, G5_XLARGE * 65.0 / 60.0, "again");

    // Stopped after 95 minutes: the last slice is priced.
    local.advance(30);
    local.instance_state(&account, "stopping").await;
    let stopped = G5_XLARGE * 95.0 / 60.0;
    near(local.team_spent().await, stopped, "stopped");
    // Redelivered, or followed by its later states, it counts nothing;
    // and nothing runs for the schedule to price.
    local.instance_state(&account, "stopping").await;
    local.instance_state(&account, "stopped").await;
    local.advance(10);
    let accrued = local.accrue().await;
    assert_eq!(accrued["runs"], 0, "{accrued}");
    near(local.team_spent().await, stopped, "nothing twice");

    let rows = local.lake_usage();
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["account_id"], account.as_str());
        assert_eq!(row["team"], "payments");
        assert_eq!(row["service"], "ec2");
        assert_eq!(row["usage_type"], "BoxUsage:g5.xlarge");
        assert_eq!(row["resource"], INSTANCE);
    }
    let hours: f64 = rows.iter().map(|r| r["quantity"].as_f64().unwrap()).sum();
    near(hours, 95.0 / 60.0, "instance-hours in the lake");
    // The budgets heard of it.
    assert!(!local.archived("TeamSpendUpdated").is_empty());
}

#[tokio::test]
async fn a_fargate_task_and_a_training_job_are_priced_from_start_to_stop() {
    let local = start().await;
    let (_, account) = local.ready_account().await;
    let task =
        format!("arn:aws:ecs:us-east-1:{account}:task/default/0123456789abcdef0123456789abcdef");
    let ecs = |status: &str| {
        json!({"taskArn": task, "launchType": "FARGATE", "lastStatus": status,
            "cpu": "1024", "memory": "2048", "desiredStatus": "RUNNING"})
    };
    let job = format!("arn:aws:sagemaker:us-east-1:{account}:training-job/fine-tune-1");
    let training = |status: &str| {
        json!({"TrainingJobName": "fine-tune-1", "TrainingJobArn": job,
            "TrainingJobStatus": status,
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}})
    };
    local
        .forward(&account, "aws.ecs", "ECS Task State Change", ecs("RUNNING"))
        .await;
    local
        .forward(
            &account,
            "aws.sagemaker",
            "SageMaker Training Job State Change",
            training("InProgress"),
        )
        .await;
    local.advance(60);
    local.accrue().await;
    // 1 vCPU and 2 GB of Fargate (x86) and two ml.g5.xlarge, an hour.
    let fargate_hour = 0.04048 + 2.0 * 0.004445;
    let training_hour = 2.0 * 1.408;
    near(
        local.team_spent().await,
        fargate_hour + training_hour,
        "an hour of each",
    );
    local.advance(30);
    local
        .forward(&account, "aws.ecs", "ECS Task State Change", ecs("STOPPED"))
        .await;
    local
        .forward(
            &account,
            "aws.sagemaker",
            "SageMaker Training Job State Change",
            training("Completed"),
        )
        .await;
    // Redelivered stops count nothing.
    local
        .forward(&account, "aws.ecs", "ECS Task State Change", ecs("STOPPED"))
        .await;
    local.advance(30);
    local.accrue().await;
    near(
        local.team_spent().await,
        1.5 * (fargate_hour + training_hour),
        "an hour and a half of each",
    );
    let services: std::collections::BTreeSet<String> = local
        .lake_usage()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["service"].as_str().unwrap(),
                r["usage_type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        [
            "fargate Fargate-GB-Hours",
            "fargate Fargate-vCPU-Hours:perCPU",
            "sagemaker Train:ml.g5.xlarge",
        ]
    );
}
