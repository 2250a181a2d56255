//! Checks of the usage sources of infra/member-account.yaml (issue 15): the
//! rules that forward what costs by the hour (EC2 instances, ECS tasks on
//! Fargate, SageMaker training jobs and endpoints) to Purser's bus, and the
//! metric stream that lands what costs by use in the lake bucket, under the
//! one prefix the bucket's policy lets the writing account write.
//!
//! Sample events are in the shape AWS documents for each detail-type (the
//! EventBridge envelope around each service's own detail); the rules are
//! evaluated with Purser's EventBridge matcher, as the local bus does.
//! infra/template.yaml's own checks of the member template (least privilege,
//! the guard SCP's names) are in template.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use purser_eventbridge::EventPattern;
use purser_local::template::Template;
use serde_json::{Value, json};

const MEMBER: &str = "210987654321";

fn member_account() -> Template {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/member-account.yaml");
    Template::parse(&std::fs::read_to_string(path).unwrap())
        .expect("infra/member-account.yaml parses")
}

fn resource<'a>(t: &'a Template, id: &str) -> &'a Value {
    let r = &t.document["Resources"][id];
    assert!(
        r.is_object(),
        "infra/member-account.yaml has no resource {id}"
    );
    r
}

fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

fn sub(v: &Value) -> &str {
    v["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("{v} is not a !Sub string"))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// An event as EventBridge delivers it from the member account's default bus.
fn envelope(source: &str, detail_type: &str, resources: Value, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": source,
        "account": MEMBER,
        "time": "2026-05-02T09:31:05Z",
        "region": "us-east-1",
        "resources": resources,
        "detail": detail,
    })
}

fn instance_state(state: &str) -> Value {
    envelope(
        "aws.ec2",
        "EC2 Instance State-change Notification",
        json!([format!(
            "arn:aws:ec2:us-east-1:{MEMBER}:instance/i-0123456789abcdef0"
        )]),
        json!({ "instance-id": "i-0123456789abcdef0", "state": state }),
    )
}

/// A CloudTrail management event as EventBridge delivers it; `error` makes
/// it a refused call (CloudTrail records those too).
fn ec2_call(name: &str, error: Option<&str>) -> Value {
    let mut detail = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEID:dev@example.com",
            "arn": format!("arn:aws:sts::{MEMBER}:assumed-role/Developer/dev@example.com"),
            "accountId": MEMBER,
        },
        "eventTime": "2026-05-02T09:30:58Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {
            "instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]},
            "instanceType": "g5.xlarge",
        },
        "responseElements": {
            "requestId": "b2c3d4e5-6789-4abc-8def-0123456789ab",
            "reservationId": "r-0123456789abcdef0",
            "ownerId": MEMBER,
            "instancesSet": {"items": [{
                "instanceId": "i-0123456789abcdef0",
                "instanceType": "g5.xlarge",
                "currentInstanceState": {"code": 0, "name": "pending"},
            }]},
        },
        "requestID": "b2c3d4e5-6789-4abc-8def-0123456789ab",
        "eventID": "e1f2a3b4-5678-49ab-8cde-f0123456789a",
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": MEMBER,
        "eventCategory": "Management",
    });
    if let Some(code) = error {
        detail["errorCode"] = json!(code);
        detail["errorMessage"] = json!("You are not authorized to perform this operation.");
        detail["responseElements"] = Value::Null;
    }
    envelope("aws.ec2", "AWS API Call via CloudTrail", json!([]), detail)
}

fn ecs_task(launch_type: &str, last_status: &str) -> Value {
    let task =
        format!("arn:aws:ecs:us-east-1:{MEMBER}:task/default/0123456789abcdef0123456789abcdef");
    envelope(
        "aws.ecs",
        "ECS Task State Change",
        json!([task]),
        json!({
            "attachments": [{"id": "1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8", "type": "eni", "status": "ATTACHED",
                "details": [{"name": "subnetId", "value": "subnet-0123456789abcdef0"}]}],
            "availabilityZone": "us-east-1a",
            "clusterArn": format!("arn:aws:ecs:us-east-1:{MEMBER}:cluster/default"),
            "containers": [{"containerArn": format!("arn:aws:ecs:us-east-1:{MEMBER}:container/default/0123/abcd"),
                "lastStatus": last_status, "name": "web", "taskArn": task, "cpu": "0"}],
            "cpu": "1024",
            "memory": "2048",
            "createdAt": "2026-05-02T09:29:40.141Z",
            "desiredStatus": "RUNNING",
            "group": "service:web",
            "lastStatus": last_status,
            "launchType": launch_type,
            "platformVersion": "1.4.0",
            "connectivity": "CONNECTED",
            "startedAt": "2026-05-02T09:30:55.321Z",
            "taskArn": task,
            "taskDefinitionArn": format!("arn:aws:ecs:us-east-1:{MEMBER}:task-definition/web:3"),
            "updatedAt": "2026-05-02T09:30:55.321Z",
            "version": 3,
        }),
    )
}

fn training_job() -> Value {
    envelope(
        "aws.sagemaker",
        "SageMaker Training Job State Change",
        json!([format!(
            "arn:aws:sagemaker:us-east-1:{MEMBER}:training-job/fine-tune-1"
        )]),
        json!({
            "TrainingJobName": "fine-tune-1",
            "TrainingJobArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:training-job/fine-tune-1"),
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Training",
            "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest", "TrainingInputMode": "File"},
            "RoleArn": format!("arn:aws:iam::{MEMBER}:role/SageMakerRole"),
            "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "CreationTime": 1_777_714_140_000_i64,
            "TrainingStartTime": 1_777_714_260_000_i64,
            "LastModifiedTime": 1_777_714_265_000_i64,
            "Tags": {},
        }),
    )
}

fn endpoint() -> Value {
    envelope(
        "aws.sagemaker",
        "SageMaker Endpoint State Change",
        json!([format!(
            "arn:aws:sagemaker:us-east-1:{MEMBER}:endpoint/chat"
        )]),
        json!({
            "EndpointName": "chat",
            "EndpointArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:endpoint/chat"),
            "EndpointConfigName": "chat-config",
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0, "DesiredWeight": 1.0,
                "CurrentInstanceCount": 1, "DesiredInstanceCount": 1}],
            "EndpointStatus": "IN_SERVICE",
            "CreationTime": 1_777_714_140_000_i64,
            "LastModifiedTime": 1_777_714_440_000_i64,
            "Tags": {},
        }),
    )
}

/// Every rule of the member template, compiled as EventBridge would.
fn rules(m: &Template) -> Vec<(String, Value, EventPattern)> {
    m.resources()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .map(|(id, r)| {
            let pattern = EventPattern::from_value(&r["Properties"]["EventPattern"])
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            (id.clone(), r["Properties"].clone(), pattern)
        })
        .collect()
}

/// The usage rules and what each must forward.
fn usage_rules() -> Vec<(&'static str, Vec<(String, Value)>)> {
    let states = [
        "running",
        "stopping",
        "stopped",
        "shutting-down",
        "terminated",
    ];
    vec![
        (
            "ForwardInstanceStatesRule",
            states
                .iter()
                .map(|s| (format!("instance {s}"), instance_state(s)))
                .collect(),
        ),
        (
            "ForwardInstanceLaunchesRule",
            vec![
                ("RunInstances".into(), ec2_call("RunInstances", None)),
                ("StartInstances".into(), ec2_call("StartInstances", None)),
            ],
        ),
        (
            "ForwardFargateTasksRule",
            vec![
                (
                    "Fargate task RUNNING".into(),
                    ecs_task("FARGATE", "RUNNING"),
                ),
                (
                    "Fargate task STOPPED".into(),
                    ecs_task("FARGATE", "STOPPED"),
                ),
            ],
        ),
        (
            "ForwardSageMakerRule",
            vec![
                ("training job".into(), training_job()),
                ("endpoint".into(), endpoint()),
            ],
        ),
    ]
}

/// Each usage event is forwarded by its own rule and by no other rule of
/// the member template; what bills nothing, or is counted elsewhere, is
/// forwarded by none.
#[test]
fn each_usage_rule_forwards_its_kind_of_event_and_no_other() {
    let m = member_account();
    let rules = rules(&m);
    for (expected, samples) in usage_rules() {
        assert!(
            rules.iter().any(|(id, _, _)| id == expected),
            "the member template has {expected}"
        );
        for (what, event) in samples {
            let matching: Vec<&str> = rules
                .iter()
                .filter(|(_, _, p)| p.matches(&event))
                .map(|(id, _, _)| id.as_str())
                .collect();
            assert_eq!(
                matching,
                [expected],
                "{what} is forwarded once, by {expected}"
            );
        }
    }

    let not_forwarded = [
        // Pending bills nothing; running follows.
        ("a pending instance", instance_state("pending")),
        // A refused call launched nothing.
        (
            "a refused RunInstances",
            ec2_call("RunInstances", Some("Client.UnauthorizedOperation")),
        ),
        (
            "a StopInstances call (the state change says it)",
            ec2_call("StopInstances", None),
        ),
        (
            "a DescribeInstances call",
            ec2_call("DescribeInstances", None),
        ),
        // Tasks on EC2 container instances: the instances' cost.
        ("an ECS task on EC2", ecs_task("EC2", "RUNNING")),
        (
            "a Fargate task still provisioning",
            ecs_task("FARGATE", "PROVISIONING"),
        ),
        ("a Fargate task pending", ecs_task("FARGATE", "PENDING")),
        (
            "a Fargate task deprovisioning",
            ecs_task("FARGATE", "DEPROVISIONING"),
        ),
        (
            "a Spot interruption warning",
            envelope(
                "aws.ec2",
                "EC2 Spot Instance Interruption Warning",
                json!([]),
                json!({"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}),
            ),
        ),
        (
            "a tuning job (its training jobs report themselves)",
            envelope(
                "aws.sagemaker",
                "SageMaker HyperParameter Tuning Job State Change",
                json!([]),
                json!({"HyperParameterTuningJobName": "tune-1", "HyperParameterTuningJobStatus": "InProgress"}),
            ),
        ),
        (
            "a training job's detail-type from another source",
            envelope(
                "purser.telemetry",
                "SageMaker Training Job State Change",
                json!([]),
                training_job()["detail"].clone(),
            ),
        ),
    ];
    for (what, event) in not_forwarded {
        let matching: Vec<&str> = rules
            .iter()
            .filter(|(_, _, p)| p.matches(&event))
            .map(|(id, _, _)| id.as_str())
            .collect();
        assert!(matching.is_empty(), "{what} is not forwarded: {matching:?}");
    }
}

/// Every forwarding rule, old and new: on the account's default bus, to
/// Purser's bus through the forwarding role, retried, and dead-lettered to
/// the queue whose policy names it; named purser-*, as the guard SCP of
/// Purser's OU protects such rules.
#[test]
fn usage_rules_forward_to_purser_s_bus_with_retries_and_the_dead_letter_queue() {
    let m = member_account();
    let rules = rules(&m);
    let sources = m.document["Resources"]["ForwardDeadLetterQueuePolicy"]["Properties"]
        ["PolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .expect("a list of rule ARNs")
        .clone();
    assert_eq!(sources.len(), rules.len(), "{sources:?}");
    for (id, props, _) in &rules {
        assert!(
            props["Name"]
                .as_str()
                .is_some_and(|n| n.starts_with("purser-")),
            "{id}: named purser-*"
        );
        assert_eq!(props["EventBusName"], "default", "{id}");
        assert_eq!(props["State"], "ENABLED", "{id}");
        assert!(
            resource(&m, id).get("Condition").is_none(),
            "{id}: forwarded wherever the stack is"
        );
        let targets = props["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{id}");
        let target = &targets[0];
        assert_eq!(target["Arn"], reference("PurserBusArn"), "{id}");
        assert_eq!(
            target["RoleArn"],
            get_att("ForwardToPurserRole", "Arn"),
            "{id}"
        );
        assert_eq!(
            target["RetryPolicy"],
            json!({"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}),
            "{id}"
        );
        assert_eq!(
            target["DeadLetterConfig"]["Arn"],
            get_att("ForwardDeadLetterQueue", "Arn"),
            "{id}"
        );
        assert!(
            sources.contains(&get_att(id, "Arn")),
            "{id} may dead-letter"
        );
    }
    // The forwarding role puts on the central bus and nowhere else.
    let role = &resource(&m, "ForwardToPurserRole")["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(as_list(&statements[0]["Action"]), ["events:PutEvents"]);
    assert_eq!(statements[0]["Resource"], reference("PurserBusArn"));
}

/// A line of a metric stream in JSON output format, as CloudWatch writes it.
fn metric_line(namespace: &str, metric: &str, dimensions: Value, sum: f64, unit: &str) -> String {
    json!({
        "metric_stream_name": "purser-usage",
        "account_id": MEMBER,
        "region": "us-east-1",
        "namespace": namespace,
        "metric_name": metric,
        "dimensions": dimensions,
        "timestamp": 1_777_714_260_000_i64,
        "value": {"max": sum, "min": 0.0, "sum": sum, "count": 3.0},
        "unit": unit,
    })
    .to_string()
}

/// One data point of each metric Purser prices, as it arrives.
fn priced_samples() -> BTreeMap<(&'static str, &'static str), String> {
    let model = json!({"ModelId": "anthropic.claude-3-haiku-20240307-v1:0"});
    let nat = json!({"NatGatewayId": "nat-0123456789abcdef0"});
    let table = json!({"TableName": "orders"});
    [
        (
            ("AWS/Bedrock", "InputTokenCount"),
            model.clone(),
            2000.0,
            "Count",
        ),
        (("AWS/Bedrock", "OutputTokenCount"), model, 1000.0, "Count"),
        (
            ("AWS/NATGateway", "BytesOutToDestination"),
            nat.clone(),
            1e9,
            "Bytes",
        ),
        (("AWS/NATGateway", "BytesOutToSource"), nat, 1e9, "Bytes"),
        (
            ("AWS/ApiGateway", "Count"),
            json!({"ApiName": "orders"}),
            1e4,
            "Count",
        ),
        (
            ("AWS/DynamoDB", "ConsumedReadCapacityUnits"),
            table.clone(),
            500.0,
            "Count",
        ),
        (
            ("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
            table,
            200.0,
            "Count",
        ),
        (
            ("AWS/States", "ConsumedCapacity"),
            json!({"ServiceMetric": "StateTransition"}),
            120.0,
            "Count",
        ),
    ]
    .into_iter()
    .map(|((ns, metric), dims, sum, unit)| ((ns, metric), metric_line(ns, metric, dims, sum, unit)))
    .collect()
}

/// The stream sends exactly the metrics `spend::parse_metric_line` prices:
/// one more filter would be billed for nothing, one fewer would leave spend
/// to the bill. Each filter's metric, as CloudWatch would stream it, parses
/// as usage; neighbours in the same namespaces (and elsewhere) that it does
/// not price are not streamed.
#[test]
fn the_metric_stream_streams_exactly_what_spend_prices() {
    let m = member_account();
    let stream = resource(&m, "MetricStream");
    assert_eq!(stream["Type"], "AWS::CloudWatch::MetricStream");
    let props = &stream["Properties"];
    assert_eq!(props["OutputFormat"], "json");
    assert_eq!(
        props["FirehoseArn"],
        get_att("MetricsDeliveryStream", "Arn")
    );
    assert_eq!(props["RoleArn"], get_att("MetricStreamRole", "Arn"));
    assert!(props.get("ExcludeFilters").is_none());
    // Additional statistics are billed as more updates; the sum is enough.
    assert!(props.get("StatisticsConfigurations").is_none());
    // A monitoring account's linked accounts would land under its prefix.
    assert_eq!(props["IncludeLinkedAccountsMetrics"], false);

    let mut streamed = BTreeSet::new();
    for filter in props["IncludeFilters"].as_array().unwrap() {
        let namespace = filter["Namespace"].as_str().unwrap();
        let names = as_list(&filter["MetricNames"]);
        assert!(
            !names.is_empty(),
            "{namespace}: named metrics only, not the whole namespace"
        );
        for name in names {
            assert!(
                streamed.insert((namespace.to_string(), name.clone())),
                "{namespace} {name} streamed once"
            );
        }
    }
    let samples = priced_samples();
    let priced: BTreeSet<(String, String)> = samples
        .keys()
        .map(|(ns, metric)| (ns.to_string(), metric.to_string()))
        .collect();
    assert_eq!(
        streamed, priced,
        "the stream's filters are the priced metrics"
    );
    for ((ns, metric), line) in &samples {
        let usage = purser_core::spend::parse_metric_line(line)
            .unwrap_or_else(|e| panic!("{ns} {metric}: {e}"))
            .unwrap_or_else(|| panic!("{ns} {metric}: priced as usage"));
        assert_eq!(usage.account_id, MEMBER);
    }

    let unpriced = [
        (
            "AWS/Bedrock",
            "Invocations",
            json!({"ModelId": "m"}),
            "Count",
        ),
        (
            "AWS/Bedrock",
            "InvocationLatency",
            json!({"ModelId": "m"}),
            "Milliseconds",
        ),
        (
            "AWS/NATGateway",
            "BytesInFromSource",
            json!({"NatGatewayId": "nat-1"}),
            "Bytes",
        ),
        (
            "AWS/NATGateway",
            "ActiveConnectionCount",
            json!({"NatGatewayId": "nat-1"}),
            "Count",
        ),
        (
            "AWS/ApiGateway",
            "Latency",
            json!({"ApiName": "a"}),
            "Milliseconds",
        ),
        (
            "AWS/ApiGateway",
            "4XXError",
            json!({"ApiName": "a"}),
            "Count",
        ),
        (
            "AWS/DynamoDB",
            "ProvisionedReadCapacityUnits",
            json!({"TableName": "t"}),
            "Count",
        ),
        (
            "AWS/DynamoDB",
            "ThrottledRequests",
            json!({"TableName": "t"}),
            "Count",
        ),
        (
            "AWS/States",
            "ExecutionsStarted",
            json!({"StateMachineArn": "arn:aws:states:us-east-1:210987654321:stateMachine:s"}),
            "Count",
        ),
        (
            "AWS/EC2",
            "CPUUtilization",
            json!({"InstanceId": "i-1"}),
            "Percent",
        ),
        (
            "AWS/Lambda",
            "Invocations",
            json!({"FunctionName": "f"}),
            "Count",
        ),
    ];
    for (ns, metric, dims, unit) in unpriced {
        let line = metric_line(ns, metric, dims, 5.0, unit);
        assert_eq!(
            purser_core::spend::parse_metric_line(&line)
                .unwrap_or_else(|e| panic!("{ns} {metric}: {e}"))
                .map(|u| u.usage_type),
            None,
            "{ns} {metric} is not priced"
        );
        assert!(
            !streamed.contains(&(ns.to_string(), metric.to_string())),
            "{ns} {metric} is not streamed"
        );
    }
}

/// The key prefix is the attribution: Firehose writes under
/// `metrics/account=<this account>/` and its role may write nowhere else;
/// the central bucket's policy grants every account of the organization
/// the same shape of prefix, with its own id.
#[test]
fn the_metrics_firehose_writes_only_this_account_s_prefix() {
    let m = member_account();
    let firehose = resource(&m, "MetricsDeliveryStream");
    assert_eq!(firehose["Type"], "AWS::KinesisFirehose::DeliveryStream");
    let props = &firehose["Properties"];
    assert_eq!(props["DeliveryStreamType"], "DirectPut");
    assert!(
        props["DeliveryStreamName"]
            .as_str()
            .is_some_and(|n| n.starts_with("purser-"))
    );
    let s3 = &props["ExtendedS3DestinationConfiguration"];
    assert_eq!(s3["BucketARN"], reference("LakeBucketArn"));
    assert_eq!(s3["RoleARN"], get_att("MetricsFirehoseRole", "Arn"));
    let prefix = sub(&s3["Prefix"]);
    assert_eq!(prefix, "metrics/account=${AWS::AccountId}/");
    assert!(
        sub(&s3["ErrorOutputPrefix"]).starts_with(prefix),
        "errors land under the same prefix, the only one the bucket takes"
    );
    assert_eq!(
        s3["BufferingHints"],
        json!({"IntervalInSeconds": 60, "SizeInMBs": 5})
    );
    // The recorder reads the lines as CloudWatch wrote them.
    assert_eq!(s3["CompressionFormat"], "UNCOMPRESSED");
    for absent in [
        "ProcessingConfiguration",
        "DataFormatConversionConfiguration",
        "DynamicPartitioningConfiguration",
    ] {
        assert!(s3.get(absent).is_none(), "{absent}: lines pass as written");
    }

    // Firehose's role: this account's prefix, and finding the bucket.
    let role = &resource(&m, "MetricsFirehoseRole")["Properties"];
    assert!(sub(&role["RoleName"]).starts_with("purser-"));
    let trust = &role["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().map(Vec::len), Some(1));
    assert_eq!(trust[0]["Principal"]["Service"], "firehose.amazonaws.com");
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["sts:ExternalId"],
        reference("AWS::AccountId")
    );
    let policies = role["Policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1);
    let mut granted: BTreeMap<String, Value> = BTreeMap::new();
    for s in policies[0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
    {
        assert_eq!(s["Effect"], "Allow", "{s}");
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
        for action in as_list(&s["Action"]) {
            assert!(
                granted
                    .insert(action.clone(), s["Resource"].clone())
                    .is_none(),
                "{action} granted once"
            );
        }
    }
    let objects = json!({"Fn::Sub": "${LakeBucketArn}/metrics/account=${AWS::AccountId}/*"});
    let bucket = reference("LakeBucketArn");
    let expected: BTreeMap<String, Value> = [
        ("s3:PutObject", &objects),
        ("s3:AbortMultipartUpload", &objects),
        ("s3:GetBucketLocation", &bucket),
        ("s3:ListBucket", &bucket),
        ("s3:ListBucketMultipartUploads", &bucket),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_string(), r.clone()))
    .collect();
    assert_eq!(granted, expected);
    assert!(
        sub(&objects).ends_with(&format!("/{prefix}*")),
        "the role writes what Firehose is told to"
    );

    // The metric stream's role: put on this delivery stream only.
    let role = &resource(&m, "MetricStreamRole")["Properties"];
    assert!(sub(&role["RoleName"]).starts_with("purser-"));
    let trust = &role["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().map(Vec::len), Some(1));
    assert_eq!(
        trust[0]["Principal"]["Service"],
        "streams.metrics.cloudwatch.amazonaws.com"
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(role["Policies"].as_array().map(Vec::len), Some(1));
    assert_eq!(statements.len(), 1);
    assert_eq!(
        as_list(&statements[0]["Action"]),
        ["firehose:PutRecord", "firehose:PutRecordBatch"]
    );
    assert_eq!(
        statements[0]["Resource"],
        get_att("MetricsDeliveryStream", "Arn")
    );
}

/// The bucket's side (infra/template.yaml's LakeBucketPolicy): the same
/// prefix, with the writer's own account, for the organization's
/// principals, and the bucket-level reads Firehose needs: what
/// `MetricsFirehoseRole` is granted, the bucket grants too.
#[test]
fn the_lake_bucket_lets_each_member_write_only_its_own_prefix() {
    let m = member_account();
    let role = &resource(&m, "MetricsFirehoseRole")["Properties"];
    let member_actions: BTreeSet<String> = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| as_list(&s["Action"]))
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/template.yaml");
    let central = Template::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let policy = &central.document["Resources"]["LakeBucketPolicy"]["Properties"]["PolicyDocument"]
        ["Statement"];
    let writes: Vec<&Value> = policy
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["Effect"] == "Allow" && as_list(&s["Action"]).contains(&"s3:PutObject".to_string())
        })
        .collect();
    assert_eq!(writes.len(), 1, "one statement lets member accounts write");
    assert_eq!(
        sub(&writes[0]["Resource"]),
        "${LakeBucket.Arn}/metrics/account=${!aws:PrincipalAccount}/*",
        "the bucket pins each writer to its own account's prefix"
    );
    assert!(
        writes[0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_object(),
        "for the organization's principals"
    );
    let mut bucket_actions: BTreeSet<String> = policy
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow" && s["Principal"]["AWS"] == "*")
        .flat_map(|s| as_list(&s["Action"]))
        .collect();
    bucket_actions.retain(|a| member_actions.contains(a));
    assert_eq!(
        bucket_actions, member_actions,
        "the bucket grants what the member role uses"
    );
}

/// Every name a resource refers to (`Ref`, `Fn::GetAtt`, `${…}` in `Fn::Sub`).
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("Ref") {
                found.insert(r.clone());
            }
            match map.get("Fn::GetAtt") {
                Some(Value::Array(parts)) => {
                    if let Some(Value::String(id)) = parts.first() {
                        found.insert(id.clone());
                    }
                }
                Some(Value::String(dotted)) => {
                    found.insert(dotted.split('.').next().unwrap_or_default().to_string());
                }
                _ => {}
            }
            let text = match map.get("Fn::Sub") {
                Some(Value::String(t)) => Some(t.as_str()),
                Some(Value::Array(parts)) => parts.first().and_then(Value::as_str),
                _ => None,
            };
            for part in text.unwrap_or_default().split("${").skip(1) {
                if let Some((name, _)) = part.split_once('}')
                    && !name.starts_with('!')
                {
                    found.insert(name.split('.').next().unwrap_or_default().to_string());
                }
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

/// Without `LakeBucketArn` (its default) the stack is what it was: the
/// metric stream, its Firehose and both roles are created only with it,
/// and nothing created without it refers to them.
#[test]
fn without_a_lake_bucket_nothing_of_the_stream_is_created() {
    let m = member_account();
    let parameter = &m.document["Parameters"]["LakeBucketArn"];
    assert_eq!(parameter["Default"], "");
    assert_eq!(
        m.document["Conditions"]["StreamMetrics"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "LakeBucketArn"}, ""]}]})
    );

    // What refers to the bucket, and what refers to that, transitively.
    let mut stream: BTreeSet<String> = BTreeSet::from(["LakeBucketArn".to_string()]);
    loop {
        let before = stream.len();
        for (id, r) in m.resources() {
            let mut refs = BTreeSet::new();
            references(r, &mut refs);
            if !refs.is_disjoint(&stream) {
                stream.insert(id.clone());
            }
        }
        if stream.len() == before {
            break;
        }
    }
    stream.remove("LakeBucketArn");
    assert_eq!(
        stream,
        [
            "MetricStream",
            "MetricStreamRole",
            "MetricsDeliveryStream",
            "MetricsFirehoseRole"
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>()
    );
    for (id, r) in m.resources() {
        let mut refs = BTreeSet::new();
        references(r, &mut refs);
        if stream.contains(id) {
            assert_eq!(r["Condition"], "StreamMetrics", "{id}");
        } else {
            assert!(
                refs.is_disjoint(&stream),
                "{id} is created without a lake bucket, so it may not refer to {refs:?}"
            );
            if matches!(
                r["Type"].as_str(),
                Some(
                    "AWS::CloudWatch::MetricStream"
                        | "AWS::KinesisFirehose::DeliveryStream"
                        | "AWS::S3::Bucket"
                )
            ) {
                panic!("{id} streams metrics without the condition");
            }
        }
    }
    if let Some(outputs) = m.document["Outputs"].as_object() {
        for (name, output) in outputs {
            let mut refs = BTreeSet::new();
            references(output, &mut refs);
            if !refs.is_disjoint(&stream) {
                assert_eq!(output["Condition"], "StreamMetrics", "output {name}");
            }
        }
    }
}
