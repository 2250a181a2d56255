//! What runs and costs by the second, priced as it runs: EC2 instances,
//! Fargate tasks, SageMaker training jobs and endpoints, from the state
//! changes member accounts forward to Purser's bus.
//!
//! - A resource's start (`running`, `RUNNING`, `InProgress`, `InService`)
//!   starts a run in the [`RunningResources`] port; a repeated or late
//!   start changes nothing.
//! - Every few minutes [`Recorder::accrue`] prices each run from its
//!   `priced_until` to now (split at UTC midnight, at most
//!   [`MAX_INTERVAL`] back), so a GPU left running overnight is counted
//!   within minutes, not when it stops.
//! - Its stop (`stopping`, `STOPPED`, `Completed`, `Deleting`, …) stops the
//!   run and prices the last slice.
//!
//! A slice is taken by moving `priced_until` forward on the condition that
//! it has not moved (two pricings never take the same slice), then priced
//! through [`Recorder::usage`] under a batch id of its resources and
//! bounds, so a redelivery counts once; a slice that could not be counted
//! is given back. EC2's state changes carry no instance type: the type is
//! remembered from the `RunInstances` call event (where a trail logs it),
//! else asked of EC2 (`DescribeInstances` through the [`MemberResources`]
//! port, where the recorder has it) as the instance starts running;
//! without either the run is priced as unpriced usage (`BoxUsage:unknown`),
//! recorded with its hours and announced as `UnpricedUsage`. SageMaker's
//! endpoint state change counts the variants' instances but names no type:
//! an endpoint whose event names none has its instances asked of SageMaker
//! (`DescribeEndpoint`, `DescribeEndpointConfig`, through the same port) as
//! it comes in service; without an answer its hours are recorded unpriced
//! (`Host:unknown`).
//!
//! The account is always the envelope's (set by EventBridge); every field
//! of the detail is bounded and checked, an ARN must name the envelope's
//! account and region, so a member account can neither crash the recorder
//! nor shift or inflate another account's spend.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

use super::{Recorded, Recorder, RecorderError};
use crate::events::Event;
use crate::lake::RecordError;
use crate::ports::{
    Marker, MemberResources, Run, RunKey, RunWhat, RunningResources, SagemakerInstances, to_millis,
};
use crate::spend::{
    Architecture, Interval, MAX_INTERVAL, SagemakerUse, Usage, ec2_instance, ec2_usage_type,
    fargate_task, sagemaker_instances, sagemaker_usage_type,
};

/// EC2's state change (`aws.ec2`).
pub const EC2_STATE_CHANGE: &str = "EC2 Instance State-change Notification";
/// A CloudTrail management event (`RunInstances`, `StartInstances`).
pub const API_CALL: &str = "AWS API Call via CloudTrail";
/// ECS's task state change (`aws.ecs`).
pub const ECS_TASK_STATE_CHANGE: &str = "ECS Task State Change";
pub const SAGEMAKER_TRAINING_JOB_STATE_CHANGE: &str = "SageMaker Training Job State Change";
pub const SAGEMAKER_ENDPOINT_STATE_CHANGE: &str = "SageMaker Endpoint State Change";

/// What an instance whose type is not known is priced as: no price has it,
/// so its usage is recorded unpriced.
pub const UNKNOWN_INSTANCE_TYPE: &str = "unknown";

/// How long an instance's type is remembered from its launch: a stopped
/// instance may be started again weeks later.
const INSTANCE_TYPE_MEMORY: Duration = Duration::days(400);
/// How far a time in the detail may lie before the envelope's and still be
/// believed (a task's image pull, a job's start).
const DETAIL_TIME_LEAD: Duration = Duration::days(1);
/// EC2's and Fargate's minimum: a running slice is priced once the run has
/// passed it, so the minimum is billed once.
const MINIMUM: Duration = Duration::seconds(60);
/// The most instances one `RunInstances` call event is read for.
const MAX_CALL_INSTANCES: usize = 1_000;
/// The most ARN or id characters kept as a resource.
const MAX_RESOURCE: usize = 256;

/// What a resource's state change asks of the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceChange {
    /// Instances launched, with their types (a call event).
    InstanceTypes(Vec<(String, String)>),
    Start(Run),
    Stop {
        key: RunKey,
        at: DateTime<Utc>,
    },
    /// A state that starts and stops nothing (`pending`, `Updating`, …).
    Ignored(String),
}

/// What one accrual did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accrued {
    /// Runs with something to price.
    pub runs: usize,
    /// Slices taken and priced.
    pub priced: usize,
    /// Accounts whose slices could not be counted (given back, for the
    /// next accrual).
    pub failed: usize,
}

fn bad(field: &str, message: impl Into<String>) -> RecordError {
    RecordError {
        field: field.into(),
        message: message.into(),
    }
}

use super::usage::fnv;

// ------------------------------------------------------------ the detail

/// The string at `pointer` of the detail; `field` names it in errors.
fn text<'a>(detail: &'a Value, pointer: &str, field: &str) -> Result<&'a str, RecordError> {
    match detail.pointer(pointer) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(field, "is not a string")),
        None => Err(bad(field, "is missing")),
    }
}

fn optional_text<'a>(
    detail: &'a Value,
    pointer: &str,
    field: &str,
) -> Result<Option<&'a str>, RecordError> {
    match detail.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(detail, pointer, field).map(Some),
    }
}

/// A whole number, as a JSON number (`2`, `2.0`) or a string of digits
/// (`"1024"`, as ECS writes its CPU units), within `range`.
fn whole(
    value: &Value,
    field: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, RecordError> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) if (1..=10).contains(&s.len()) => s.parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(field, "is not a whole number"))?;
    u32::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(
                field,
                format!("{n} is not {} to {}", range.start(), range.end()),
            )
        })
}

fn check_account(account: &str) -> Result<(), RecordError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(bad("account", "is not 12 digits"))
    }
}

fn check_region(region: &str) -> Result<(), RecordError> {
    if crate::validation::is_region(region) {
        Ok(())
    } else {
        Err(bad("region", "is not a region"))
    }
}

/// `i-` and 8 or 17 hexadecimal digits.
fn instance_id<'a>(value: &'a str, field: &str) -> Result<&'a str, RecordError> {
    let ok = value.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if ok {
        Ok(value)
    } else {
        Err(bad(field, "is not an instance id"))
    }
}

/// An instance type like `g5.xlarge` or `ml.g5.xlarge`.
fn instance_type<'a>(value: &'a str, field: &str) -> Result<&'a str, RecordError> {
    let ok = (3..=40).contains(&value.len())
        && value.contains('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(value)
    } else {
        Err(bad(field, "is not an instance type"))
    }
}

/// An ARN of `service`'s `kind` (`task/`, `training-job/`, `endpoint/`) in
/// the envelope's account and region: anything else is another account's.
fn own_arn<'a>(
    value: &'a str,
    field: &str,
    service: &str,
    kind: &str,
    event: &Event,
) -> Result<&'a str, RecordError> {
    if value.len() > MAX_RESOURCE
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'-' | b'_' | b'.'))
    {
        return Err(bad(
            field,
            format!("is not an ARN of at most {MAX_RESOURCE} characters"),
        ));
    }
    let rest = ["aws", "aws-cn", "aws-us-gov"]
        .iter()
        .find_map(|p| value.strip_prefix(&format!("arn:{p}:{service}:")))
        .ok_or_else(|| bad(field, format!("is not a {service} ARN")))?;
    let prefix = format!("{}:{}:{kind}", event.region, event.account);
    match rest.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() => Ok(value),
        _ => Err(bad(
            field,
            format!("is not a {kind} of this event's account and region"),
        )),
    }
}

/// A time in the detail (RFC 3339, or epoch milliseconds or seconds) if it
/// lies within a day before the envelope's time, else the envelope's.
fn detail_time(detail: &Value, pointers: &[&str], event: &Event) -> DateTime<Utc> {
    let parse = |v: &Value| -> Option<DateTime<Utc>> {
        match v {
            Value::String(s) if s.len() <= 40 => {
                DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc())
            }
            Value::Number(n) => {
                let n = n.as_f64()?;
                let millis = if n > 1e11 { n } else { n * 1000.0 };
                if !(0.0..4.2e12).contains(&millis) {
                    return None;
                }
                Utc.timestamp_millis_opt(millis as i64).single()
            }
            _ => None,
        }
    };
    pointers
        .iter()
        .filter_map(|p| detail.pointer(p).and_then(parse))
        .find(|t| *t <= event.time && *t >= event.time - DETAIL_TIME_LEAD)
        .unwrap_or(event.time)
}

/// A status compared without case or underscores (SageMaker's events say
/// `IN_SERVICE` where its API says `InService`).
fn status_of(value: &str) -> String {
    value
        .chars()
        .take(40)
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a state change or call event from a member account asks. The
/// account and region are the envelope's; `Err` names the detail's field
/// that is wrong.
pub fn resource_change(event: &Event) -> Result<ResourceChange, RecordError> {
    check_account(&event.account)?;
    check_region(&event.region)?;
    let detail = &event.detail;
    let key = |service, resource: &str| RunKey {
        account_id: event.account.clone(),
        region: event.region.clone(),
        service,
        resource: resource.to_string(),
    };
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.ec2", EC2_STATE_CHANGE) => {
            let id = instance_id(
                text(detail, "/instance-id", "detail.instance-id")?,
                "detail.instance-id",
            )?;
            let state = text(detail, "/state", "detail.state")?;
            Ok(match state {
                "running" => ResourceChange::Start(Run::new(
                    &event.account,
                    &event.region,
                    id,
                    RunWhat::Ec2 {
                        instance_type: None,
                    },
                    event.time,
                )),
                "stopping" | "stopped" | "shutting-down" | "terminated" => ResourceChange::Stop {
                    key: key(crate::spend::Service::Ec2, id),
                    at: to_millis(event.time),
                },
                other => ResourceChange::Ignored(format!("instance state {:.40}", other)),
            })
        }
        ("aws.ec2", API_CALL) => instance_types(detail),
        ("aws.ecs", ECS_TASK_STATE_CHANGE) => {
            let arn = own_arn(
                text(detail, "/taskArn", "detail.taskArn")?,
                "detail.taskArn",
                "ecs",
                "task/",
                event,
            )?;
            if optional_text(detail, "/launchType", "detail.launchType")? != Some("FARGATE") {
                return Ok(ResourceChange::Ignored("not on Fargate".into()));
            }
            match text(detail, "/lastStatus", "detail.lastStatus")? {
                "RUNNING" => {
                    let cpu = whole(
                        detail.get("cpu").unwrap_or(&Value::Null),
                        "detail.cpu",
                        128..=16_384,
                    )?;
                    let memory = whole(
                        detail.get("memory").unwrap_or(&Value::Null),
                        "detail.memory",
                        512..=122_880,
                    )?;
                    let started = detail_time(detail, &["/pullStartedAt", "/startedAt"], event);
                    Ok(ResourceChange::Start(Run::new(
                        &event.account,
                        &event.region,
                        arn,
                        RunWhat::Fargate {
                            architecture: task_architecture(detail)?,
                            cpu_units: cpu,
                            memory_mib: memory,
                        },
                        started,
                    )))
                }
                "STOPPED" => Ok(ResourceChange::Stop {
                    key: key(crate::spend::Service::Fargate, arn),
                    at: to_millis(detail_time(
                        detail,
                        &["/stoppedAt", "/executionStoppedAt"],
                        event,
                    )),
                }),
                other => Ok(ResourceChange::Ignored(format!("task status {other:.40}"))),
            }
        }
        ("aws.sagemaker", SAGEMAKER_TRAINING_JOB_STATE_CHANGE) => {
            let arn = own_arn(
                text(detail, "/TrainingJobArn", "detail.TrainingJobArn")?,
                "detail.TrainingJobArn",
                "sagemaker",
                "training-job/",
                event,
            )?;
            let status = text(detail, "/TrainingJobStatus", "detail.TrainingJobStatus")?;
            match status_of(status).as_str() {
                "inprogress" => Ok(ResourceChange::Start(Run::new(
                    &event.account,
                    &event.region,
                    arn,
                    RunWhat::Sagemaker {
                        use_: SagemakerUse::Training,
                        instances: training_instances(detail)?,
                    },
                    detail_time(detail, &["/TrainingStartTime"], event),
                ))),
                "completed" | "failed" | "stopped" => Ok(ResourceChange::Stop {
                    key: key(crate::spend::Service::Sagemaker, arn),
                    at: to_millis(detail_time(detail, &["/TrainingEndTime"], event)),
                }),
                _ => Ok(ResourceChange::Ignored(format!(
                    "training job status {status:.40}"
                ))),
            }
        }
        ("aws.sagemaker", SAGEMAKER_ENDPOINT_STATE_CHANGE) => {
            let arn = own_arn(
                text(detail, "/EndpointArn", "detail.EndpointArn")?,
                "detail.EndpointArn",
                "sagemaker",
                "endpoint/",
                event,
            )?;
            let status = text(detail, "/EndpointStatus", "detail.EndpointStatus")?;
            match status_of(status).as_str() {
                "inservice" => Ok(ResourceChange::Start(Run::new(
                    &event.account,
                    &event.region,
                    arn,
                    RunWhat::Sagemaker {
                        use_: SagemakerUse::Hosting,
                        instances: endpoint_instances(detail)?,
                    },
                    event.time,
                ))),
                "deleting" | "outofservice" | "failed" => Ok(ResourceChange::Stop {
                    key: key(crate::spend::Service::Sagemaker, arn),
                    at: to_millis(event.time),
                }),
                _ => Ok(ResourceChange::Ignored(format!(
                    "endpoint status {status:.40}"
                ))),
            }
        }
        (source, detail_type) => Err(bad(
            "detail-type",
            format!("{source:.40} {detail_type:.60} is no resource's state change"),
        )),
    }
}

/// The instances a `RunInstances` (or `StartInstances`) call event names,
/// with their types; a failed call started nothing.
fn instance_types(detail: &Value) -> Result<ResourceChange, RecordError> {
    let name = text(detail, "/eventName", "detail.eventName")?;
    if !matches!(name, "RunInstances" | "StartInstances") {
        return Ok(ResourceChange::Ignored(format!("call {name:.40}")));
    }
    if detail.get("errorCode").is_some_and(|e| !e.is_null()) {
        return Ok(ResourceChange::Ignored("a failed call".into()));
    }
    let requested = optional_text(
        detail,
        "/requestParameters/instanceType",
        "detail.requestParameters.instanceType",
    )?;
    let items = match detail.pointer("/responseElements/instancesSet/items") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Ok(ResourceChange::InstanceTypes(Vec::new())),
        Some(_) => {
            return Err(bad(
                "detail.responseElements.instancesSet.items",
                "is not a list",
            ));
        }
    };
    let mut types = Vec::new();
    for (i, item) in items.iter().take(MAX_CALL_INSTANCES).enumerate() {
        let field = format!("detail.responseElements.instancesSet.items[{i}]");
        let id = instance_id(
            text(item, "/instanceId", &format!("{field}.instanceId"))?,
            &format!("{field}.instanceId"),
        )?;
        let type_field = format!("{field}.instanceType");
        let Some(t) = optional_text(item, "/instanceType", &type_field)?.or(requested) else {
            // StartInstances' response names no type: the one remembered
            // from the launch stands.
            continue;
        };
        types.push((id.to_string(), instance_type(t, &type_field)?.to_string()));
    }
    Ok(ResourceChange::InstanceTypes(types))
}

/// A task's CPU architecture (`ecs.cpu-architecture`), x86_64 unless it
/// says arm64.
fn task_architecture(detail: &Value) -> Result<Architecture, RecordError> {
    let Some(Value::Array(attributes)) = detail.get("attributes") else {
        return Ok(Architecture::X86_64);
    };
    for attribute in attributes.iter().take(100) {
        if attribute.get("name").and_then(Value::as_str) == Some("ecs.cpu-architecture") {
            let value = attribute.get("value").and_then(Value::as_str).unwrap_or("");
            return Architecture::parse(value).ok_or_else(|| {
                bad(
                    "detail.attributes.ecs.cpu-architecture",
                    "is not arm64 or x86_64",
                )
            });
        }
    }
    Ok(Architecture::X86_64)
}

/// The most instances one job or endpoint is priced for (SageMaker's own
/// quotas are far lower).
const MAX_INSTANCES: u32 = 1_000;

/// A training job's instances: `ResourceConfig`'s type and count, or its
/// heterogeneous cluster's instance groups.
fn training_instances(detail: &Value) -> Result<Vec<SagemakerInstances>, RecordError> {
    let config = detail
        .get("ResourceConfig")
        .ok_or_else(|| bad("detail.ResourceConfig", "is missing"))?;
    if let Some(Value::Array(groups)) = config.get("InstanceGroups")
        && !groups.is_empty()
    {
        if groups.len() > 5 {
            return Err(bad(
                "detail.ResourceConfig.InstanceGroups",
                "has more than 5 groups",
            ));
        }
        let mut instances = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            let field = format!("detail.ResourceConfig.InstanceGroups[{i}]");
            let t = text(group, "/InstanceType", &format!("{field}.InstanceType"))?;
            instances.push(SagemakerInstances {
                instance_type: Some(ml_type(t, &format!("{field}.InstanceType"))?.to_string()),
                count: whole(
                    group.get("InstanceCount").unwrap_or(&Value::Null),
                    &format!("{field}.InstanceCount"),
                    1..=MAX_INSTANCES,
                )?,
            });
        }
        return total_bounded(instances, "detail.ResourceConfig.InstanceGroups");
    }
    let t = text(
        config,
        "/InstanceType",
        "detail.ResourceConfig.InstanceType",
    )?;
    Ok(vec![SagemakerInstances {
        instance_type: Some(ml_type(t, "detail.ResourceConfig.InstanceType")?.to_string()),
        count: whole(
            config.get("InstanceCount").unwrap_or(&Value::Null),
            "detail.ResourceConfig.InstanceCount",
            1..=MAX_INSTANCES,
        )?,
    }])
}

fn ml_type<'a>(value: &'a str, field: &str) -> Result<&'a str, RecordError> {
    let t = instance_type(value, field)?;
    if t.starts_with("ml.") {
        Ok(t)
    } else {
        Err(bad(field, "is not an ml. instance type"))
    }
}

/// An endpoint's instances, from its production variants where the event
/// gives them (the current count, else the desired one; its type where
/// named); one instance of a type not known without them.
fn endpoint_instances(detail: &Value) -> Result<Vec<SagemakerInstances>, RecordError> {
    let variants = match detail.get("ProductionVariants") {
        Some(Value::Array(variants)) if !variants.is_empty() => variants,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            return Ok(vec![SagemakerInstances {
                instance_type: None,
                count: 1,
            }]);
        }
        Some(_) => return Err(bad("detail.ProductionVariants", "is not a list")),
    };
    if variants.len() > 10 {
        return Err(bad(
            "detail.ProductionVariants",
            "has more than 10 variants",
        ));
    }
    let mut instances = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        let field = format!("detail.ProductionVariants[{i}]");
        let type_field = format!("{field}.InstanceType");
        let instance_type = match optional_text(variant, "/InstanceType", &type_field)? {
            Some(t) => Some(ml_type(t, &type_field)?.to_string()),
            None => None,
        };
        let (count_field, count) = match (
            variant.get("CurrentInstanceCount"),
            variant.get("DesiredInstanceCount"),
        ) {
            (Some(c), _) if !c.is_null() => ("CurrentInstanceCount", c),
            (_, Some(d)) if !d.is_null() => ("DesiredInstanceCount", d),
            // A serverless variant: no instances of its own.
            _ => continue,
        };
        let count = whole(count, &format!("{field}.{count_field}"), 0..=MAX_INSTANCES)?;
        if count > 0 {
            instances.push(SagemakerInstances {
                instance_type,
                count,
            });
        }
    }
    total_bounded(instances, "detail.ProductionVariants")
}

/// The name of the endpoint `arn` (`…:endpoint/<name>`, which SageMaker
/// writes in lower case): the event's `EndpointName` where it is that name
/// in its own case, else the ARN's.
fn endpoint_name<'a>(event: &'a Event, arn: &'a str) -> Option<&'a str> {
    let from_arn = arn.split_once(":endpoint/").map(|(_, name)| name)?;
    let named = event
        .detail
        .get("EndpointName")
        .and_then(Value::as_str)
        .filter(|n| n.eq_ignore_ascii_case(from_arn));
    Some(named.unwrap_or(from_arn))
}

fn total_bounded(
    instances: Vec<SagemakerInstances>,
    field: &str,
) -> Result<Vec<SagemakerInstances>, RecordError> {
    let total: u32 = instances.iter().map(|i| i.count).sum();
    if total > MAX_INSTANCES {
        return Err(bad(
            field,
            format!("{total} instances in all, more than {MAX_INSTANCES}"),
        ));
    }
    Ok(instances)
}

// ------------------------------------------------------------ pricing

/// `from..to` cut at each UTC midnight: the counters count by day.
pub fn split_at_midnight(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut slices = Vec::new();
    let mut start = from;
    while start < to {
        let midnight = start
            .date_naive()
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
            .unwrap_or(to);
        let end = midnight.min(to);
        slices.push((start, end));
        start = end;
    }
    slices
}

/// The usage of `run` (of `what`, its EC2 type resolved) from `from` to
/// `to`, a day at a time. Usage that cannot be made (which checked runs
/// never are) is logged and left out.
pub fn run_usage(run: &Run, what: &RunWhat, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Usage> {
    let mut usages = Vec::new();
    for (start, end) in split_at_midnight(from, to) {
        let interval = Interval {
            account_id: run.key.account_id.clone(),
            region: run.key.region.clone(),
            resource: run.key.resource.clone(),
            run_start: run.started_at,
            start,
            end,
        };
        let made: Result<Vec<Usage>, _> = match what {
            RunWhat::Ec2 {
                instance_type: Some(t),
            } => ec2_instance(&interval, t).map(|u| vec![u]),
            RunWhat::Ec2 {
                instance_type: None,
            } => ec2_instance(&interval, "unknown.unknown").map(|mut u| {
                u.usage_type = ec2_usage_type(UNKNOWN_INSTANCE_TYPE);
                vec![u]
            }),
            RunWhat::Fargate {
                architecture,
                cpu_units,
                memory_mib,
            } => {
                fargate_task(&interval, *architecture, *cpu_units, *memory_mib).map(|u| u.to_vec())
            }
            RunWhat::Sagemaker { use_, instances } => instances
                .iter()
                .map(|i| match &i.instance_type {
                    Some(t) => sagemaker_instances(&interval, *use_, t, i.count),
                    None => {
                        sagemaker_instances(&interval, *use_, "ml.unknown", i.count).map(|mut u| {
                            u.usage_type = sagemaker_usage_type(*use_, UNKNOWN_INSTANCE_TYPE);
                            u
                        })
                    }
                })
                .collect(),
        };
        match made {
            Ok(made) => usages.extend(made.into_iter().map(|mut u| {
                u.cost = None;
                u
            })),
            Err(e) => {
                tracing::warn!(account_id = %run.key.account_id, resource = %run.key.resource,
                error = %e, "a run's slice cannot be priced")
            }
        }
    }
    usages
}

/// A slice of a run to take and price: `priced_until` moves from `from` to
/// `to`; usage is counted from `count_from` (later than `from` only when
/// more than `MAX_INTERVAL` went unpriced).
struct Slice {
    run: Run,
    from: DateTime<Utc>,
    count_from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Recorder {
    /// Keeps what runs in member accounts in `running`.
    pub fn with_running(mut self, running: Arc<dyn RunningResources>) -> Self {
        self.running = Some(running);
        self
    }

    /// Asks `resources` the type of an instance whose launch no call event
    /// told, when it starts running, and the instances of an endpoint whose
    /// state change names no type, when it comes in service.
    pub fn with_member_resources(mut self, resources: Arc<dyn MemberResources>) -> Self {
        self.member_resources = Some(resources);
        self
    }

    fn running_port(&self) -> Result<&Arc<dyn RunningResources>, RecorderError> {
        self.running
            .as_ref()
            .ok_or_else(|| bad("detail-type", "this recorder keeps no running resources").into())
    }

    /// An EC2, ECS or SageMaker state change, or an EC2 launch call,
    /// forwarded by a member account.
    pub async fn resource(&self, event: &Event) -> Result<Recorded, RecorderError> {
        let running = self.running_port()?;
        let now = self.clock.now();
        let nothing = Recorded::Written {
            records: 0,
            dead_lettered: 0,
            refused: 0,
        };
        match resource_change(event)? {
            ResourceChange::Ignored(why) => {
                tracing::debug!(account_id = %event.account, why, "a state change that starts and stops nothing");
                Ok(nothing)
            }
            ResourceChange::InstanceTypes(types) => {
                for (instance_id, instance_type) in types {
                    let marker = self.instance_marker(&event.account, &event.region, &instance_id);
                    self.markers
                        .remember(&marker, &instance_type, now, now + INSTANCE_TYPE_MEMORY)
                        .await?;
                }
                Ok(nothing)
            }
            ResourceChange::Start(mut run) => {
                if run.started_at > now {
                    run.started_at = to_millis(now);
                    run.priced_until = run.started_at;
                }
                if let RunWhat::Ec2 { instance_type } = &mut run.what {
                    *instance_type = match self.instance_type(&run.key).await? {
                        Some(told) => Some(told),
                        None => self.described_type(&run.key).await,
                    };
                    if instance_type.is_none() {
                        tracing::warn!(account_id = %run.key.account_id, instance = %run.key.resource,
                            "an instance runs whose type no launch call told: priced as unpriced usage until one does");
                    }
                }
                if let RunWhat::Sagemaker {
                    use_: SagemakerUse::Hosting,
                    instances,
                } = &mut run.what
                    && instances.iter().any(|i| i.instance_type.is_none())
                {
                    match self.described_endpoint(event, &run.key).await {
                        Some(described) => *instances = described,
                        None => {
                            tracing::warn!(account_id = %run.key.account_id, endpoint = %run.key.resource,
                                "an endpoint is in service whose instance type neither its event nor SageMaker told: its hours are recorded unpriced");
                        }
                    }
                }
                if running.start_run(&run).await? {
                    tracing::info!(account_id = %run.key.account_id, service = %run.key.service,
                        resource = %run.key.resource, "a run started");
                    Ok(nothing)
                } else {
                    Ok(Recorded::Duplicate)
                }
            }
            ResourceChange::Stop { key, at } => {
                let at = at.min(to_millis(now));
                let Some(run) = running.stop_run(&key, at).await? else {
                    tracing::info!(account_id = %key.account_id, resource = %key.resource,
                        "a stop of no known run: kept, so a late start stays out");
                    return Ok(nothing);
                };
                let Some(stopped) = run.stopped_at.filter(|s| *s > run.priced_until) else {
                    return Ok(Recorded::Duplicate);
                };
                let slice = Slice {
                    from: run.priced_until,
                    count_from: run.priced_until.max(stopped - MAX_INTERVAL),
                    to: stopped,
                    run,
                };
                match self
                    .price_slices(&key.account_id.clone(), vec![slice])
                    .await?
                {
                    Some(recorded) => Ok(recorded),
                    None => Ok(Recorded::Duplicate),
                }
            }
        }
    }

    /// The instance's type as EC2 describes it (`DescribeInstances`
    /// through the member role), where the recorder has member resources:
    /// for an instance whose launch no call event told (no trail, or one
    /// that logs no management events). A failure is logged, not raised:
    /// the run is then recorded unpriced, as without the port.
    async fn described_type(&self, key: &RunKey) -> Option<String> {
        let resources = self.member_resources.as_ref()?;
        match resources
            .instance_type(&key.account_id, &key.region, &key.resource)
            .await
        {
            Ok(Some(t)) if instance_type(&t, "instance_type").is_ok() => {
                tracing::info!(account_id = %key.account_id, instance = %key.resource,
                    instance_type = %t, "an instance's type described by EC2");
                Some(t)
            }
            Ok(Some(t)) => {
                tracing::warn!(account_id = %key.account_id, instance = %key.resource,
                    instance_type = %t.chars().take(40).collect::<String>(),
                    "EC2 described a type Purser cannot price");
                None
            }
            Ok(None) => {
                tracing::warn!(account_id = %key.account_id, instance = %key.resource,
                    "EC2 describes no such instance");
                None
            }
            Err(e) => {
                tracing::warn!(account_id = %key.account_id, instance = %key.resource,
                    error = %e, "an instance's type could not be described");
                None
            }
        }
    }

    /// The endpoint's instances as SageMaker describes them
    /// (`DescribeEndpoint`, `DescribeEndpointConfig` through the member
    /// role), where the recorder has member resources: for an endpoint whose
    /// state change names no instance type (AWS's never does). Used only if
    /// every instance has a type Purser can price; else, or on a failure,
    /// logged and `None`: the event's instances stand, recorded unpriced.
    async fn described_endpoint(
        &self,
        event: &Event,
        key: &RunKey,
    ) -> Option<Vec<SagemakerInstances>> {
        let resources = self.member_resources.as_ref()?;
        let name = endpoint_name(event, &key.resource)?;
        let (account_id, endpoint) = (&key.account_id, &key.resource);
        let instances = match resources
            .endpoint_instances(account_id, &key.region, name)
            .await
        {
            Ok(Some(instances)) => instances,
            Ok(None) => {
                tracing::warn!(%account_id, %endpoint, "SageMaker describes no such endpoint");
                return None;
            }
            Err(e) => {
                tracing::warn!(%account_id, %endpoint, error = %e,
                    "an endpoint's instances could not be described");
                return None;
            }
        };
        let priceable = !instances.is_empty()
            && instances.iter().all(|i| {
                (1..=MAX_INSTANCES).contains(&i.count)
                    && i.instance_type
                        .as_deref()
                        .is_some_and(|t| ml_type(t, "instance_type").is_ok())
            })
            && total_bounded(instances.clone(), "instances").is_ok();
        if !priceable {
            tracing::warn!(%account_id, %endpoint, instances = ?instances.iter().take(10).collect::<Vec<_>>(),
                "SageMaker described instances Purser cannot price");
            return None;
        }
        tracing::info!(%account_id, %endpoint, instances = ?instances,
            "an endpoint's instances described by SageMaker");
        Some(instances)
    }

    fn instance_marker(&self, account_id: &str, region: &str, instance_id: &str) -> Marker {
        Marker::InstanceType {
            account_id: account_id.to_string(),
            region: region.to_string(),
            instance_id: instance_id.to_string(),
        }
    }

    /// The instance's type as its launch call told, if one did.
    async fn instance_type(&self, key: &RunKey) -> Result<Option<String>, RecorderError> {
        let marker = self.instance_marker(&key.account_id, &key.region, &key.resource);
        let remembered = self.markers.recall(&marker, self.clock.now()).await?;
        Ok(remembered.filter(|t| instance_type(t, "instance_type").is_ok()))
    }

    /// What a run is priced as: an EC2 instance of unknown type looks its
    /// type up again (its launch call may have come after its start).
    async fn resolved(&self, run: &Run) -> Result<RunWhat, RecorderError> {
        match &run.what {
            RunWhat::Ec2 {
                instance_type: None,
            } => Ok(RunWhat::Ec2 {
                instance_type: self.instance_type(&run.key).await?,
            }),
            other => Ok(other.clone()),
        }
    }

    /// Takes each slice (moves its `priced_until` on condition) and prices
    /// the ones taken as one batch of `account_id`; gives them back if the
    /// batch could not be counted. `None` when another pricing took them
    /// all first.
    async fn price_slices(
        &self,
        account_id: &str,
        slices: Vec<Slice>,
    ) -> Result<Option<Recorded>, RecorderError> {
        let running = self.running_port()?;
        let mut taken = Vec::new();
        for slice in slices {
            if running
                .advance_run(&slice.run.key, slice.from, slice.to)
                .await?
            {
                taken.push(slice);
            }
        }
        if taken.is_empty() {
            return Ok(None);
        }
        let mut usages = Vec::new();
        let mut bounds = String::new();
        for slice in &taken {
            let what = match self.resolved(&slice.run).await {
                Ok(what) => what,
                Err(e) => {
                    self.give_back(&taken).await;
                    return Err(e);
                }
            };
            usages.extend(run_usage(&slice.run, &what, slice.count_from, slice.to));
            bounds.push_str(&format!(
                "{}|{}|{};",
                slice.run.key.joined(),
                slice.from.timestamp_millis(),
                slice.to.timestamp_millis()
            ));
        }
        let batch_id = format!("run-{}", fnv(&bounds));
        match self.usage(account_id, &batch_id, usages).await {
            Ok(recorded) => Ok(Some(recorded)),
            // Counted: only the news of it failed, which a retry repeats.
            Err(e @ RecorderError::Bus(_)) => Err(e),
            Err(e) => {
                self.give_back(&taken).await;
                Err(e)
            }
        }
    }

    /// Moves the slices' `priced_until` back where it was (each on the
    /// condition that nothing moved it since), for a later pricing.
    async fn give_back(&self, taken: &[Slice]) {
        let Some(running) = &self.running else {
            return;
        };
        for slice in taken {
            if let Err(e) = running
                .advance_run(&slice.run.key, slice.to, slice.from)
                .await
            {
                tracing::error!(account_id = %slice.run.key.account_id, resource = %slice.run.key.resource,
                    error = %e, "a slice taken could not be given back: it goes unpriced");
            }
        }
    }

    /// The schedule's accrual: every run priced from its `priced_until` to
    /// now (or its stop), one batch per account; a run left unpriced more
    /// than `MAX_INTERVAL` is priced for the last `MAX_INTERVAL` only.
    pub async fn accrue(&self) -> Result<Accrued, RecorderError> {
        let running = self.running_port()?;
        let now = to_millis(self.clock.now());
        let runs = running.running(now).await?;
        let mut accrued = Accrued {
            runs: runs.len(),
            ..Accrued::default()
        };
        let mut by_account: BTreeMap<String, Vec<Slice>> = BTreeMap::new();
        for run in runs {
            let to = run.until(now).min(now);
            let running_still = run.stopped_at.is_none();
            // A slice within a running resource's first minute waits: the
            // minimum is billed once, by the slice that passes it.
            let within_minimum = matches!(run.what, RunWhat::Ec2 { .. } | RunWhat::Fargate { .. })
                && to < run.started_at + MINIMUM;
            if to <= run.priced_until
                || (running_still
                    && (within_minimum || to - run.priced_until < Duration::seconds(1)))
            {
                continue;
            }
            let count_from = run.priced_until.max(to - MAX_INTERVAL);
            if count_from > run.priced_until {
                tracing::warn!(account_id = %run.key.account_id, resource = %run.key.resource,
                    unpriced_since = %run.priced_until,
                    "a run unpriced for longer than the longest interval: its last 31 days are priced");
            }
            by_account
                .entry(run.key.account_id.clone())
                .or_default()
                .push(Slice {
                    from: run.priced_until,
                    count_from,
                    to,
                    run,
                });
        }
        for (account_id, slices) in by_account {
            let count = slices.len();
            match self.price_slices(&account_id, slices).await {
                Ok(Some(_)) => accrued.priced += count,
                Ok(None) => {}
                Err(e) => {
                    accrued.failed += 1;
                    tracing::error!(account_id, error = %e, "a run's slices could not be priced: the next accrual tries again");
                }
            }
        }
        tracing::info!(
            runs = accrued.runs,
            priced = accrued.priced,
            failed = accrued.failed,
            "running resources accrued"
        );
        Ok(accrued)
    }
}

#[cfg(test)]
mod tests {
    //! The resource path on fakes: the shared fakes of the accounts, the
    //! counters, the markers and the bus; the running port in memory; a
    //! lake that can be told to fail; a manual clock.

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use rust_decimal::Decimal;
    use serde_json::json;

    use super::*;
    use crate::accounts::{Account, AccountState, NewAccount};
    use crate::fakes::{FakeAccounts, FakeBus, FakeCounters, FakeDeployments, FakeMarkers, locked};
    use crate::lake::{LakeTable, UNPRICED_USAGE};
    use crate::ports::memory::MemoryRunning;
    use crate::ports::{Appended, LakeError, LakeSink, ManualClock};
    use crate::spend::{Service, from_nanos};

    const MEMBER: &str = "210987654321";
    const OTHER: &str = "333333333333";
    const INSTANCE: &str = "i-0123456789abcdef0";

    #[derive(Default)]
    struct Lake {
        rows: Mutex<Vec<Value>>,
        failing: AtomicBool,
    }

    #[async_trait]
    impl LakeSink for Lake {
        async fn append(
            &self,
            table: LakeTable,
            records: Vec<Value>,
        ) -> Result<Appended, LakeError> {
            assert_eq!(table, LakeTable::Usage);
            if self.failing.load(Ordering::SeqCst) {
                return Err(LakeError::Unavailable("told to fail".into()));
            }
            let written = records.len();
            locked(&self.rows).extend(records);
            Ok(Appended {
                written,
                dead_lettered: 0,
            })
        }
    }

    struct World {
        recorder: Recorder,
        counters: Arc<FakeCounters>,
        running: Arc<MemoryRunning>,
        lake: Arc<Lake>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    /// 2026-11-21 22:00 UTC: a night ahead.
    fn evening() -> DateTime<Utc> {
        "2026-11-21T22:00:00Z".parse().unwrap()
    }

    fn world() -> World {
        let now = evening();
        let request = NewAccount::from_json(
            &json!({"team": "payments", "owner": "ana@example.com", "purpose": "tests"}),
        )
        .unwrap();
        let mut account = Account::request(
            crate::accounts::new_id(),
            request,
            "arn:aws:iam::111111111111:user/ana",
            now,
        )
        .unwrap();
        account.state = AccountState::Ready;
        account.account_id = Some(MEMBER.into());
        let accounts = Arc::new(FakeAccounts::default());
        accounts.add(account);
        let markers = Arc::new(FakeMarkers::default());
        let counters = Arc::new(FakeCounters::on(markers.clone()));
        let lake = Arc::new(Lake::default());
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new(now));
        let running = Arc::new(MemoryRunning::default());
        let recorder = Recorder::new(
            accounts,
            counters.clone(),
            markers,
            Arc::new(FakeDeployments::default()),
            lake.clone(),
            bus.clone(),
            clock.clone(),
        )
        .with_running(running.clone());
        World {
            recorder,
            counters,
            running,
            lake,
            bus,
            clock,
        }
    }

    fn event_of(
        account: &str,
        source: &str,
        detail_type: &str,
        at: DateTime<Utc>,
        detail: Value,
    ) -> Event {
        serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": detail_type, "source": source,
            "account": account, "region": "us-east-1", "time": at.to_rfc3339(),
            "resources": [], "detail": detail,
        }))
        .unwrap()
    }

    fn state(state: &str, at: DateTime<Utc>) -> Event {
        event_of(
            MEMBER,
            "aws.ec2",
            EC2_STATE_CHANGE,
            at,
            json!({"instance-id": INSTANCE, "state": state}),
        )
    }

    fn run_instances(instance_type: &str, at: DateTime<Utc>) -> Event {
        event_of(
            MEMBER,
            "aws.ec2",
            API_CALL,
            at,
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "requestParameters": {"instanceType": instance_type},
                "responseElements": {"instancesSet": {"items": [
                    {"instanceId": INSTANCE, "instanceType": instance_type}]}}}),
        )
    }

    fn task_arn(account: &str) -> String {
        format!("arn:aws:ecs:us-east-1:{account}:task/default/0123456789abcdef0123456789abcdef")
    }

    fn task(status: &str, at: DateTime<Utc>, cpu: Value, memory: Value) -> Event {
        event_of(
            MEMBER,
            "aws.ecs",
            ECS_TASK_STATE_CHANGE,
            at,
            json!({"taskArn": task_arn(MEMBER), "launchType": "FARGATE", "lastStatus": status,
                "cpu": cpu, "memory": memory}),
        )
    }

    fn training(status: &str, at: DateTime<Utc>, config: Value) -> Event {
        event_of(
            MEMBER,
            "aws.sagemaker",
            SAGEMAKER_TRAINING_JOB_STATE_CHANGE,
            at,
            json!({"TrainingJobName": "fine-tune-1",
                "TrainingJobArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:training-job/fine-tune-1"),
                "TrainingJobStatus": status, "ResourceConfig": config}),
        )
    }

    fn spent(w: &World) -> Decimal {
        from_nanos(w.counters.teams_total())
    }

    /// Equal to within the nano-units' rounding of a few slices.
    fn close(actual: Decimal, expected: Decimal) {
        assert!(
            (actual - expected).abs() < Decimal::new(1, 8),
            "{actual} is not {expected}"
        );
    }

    async fn accrue_at(w: &World, at: DateTime<Utc>) -> Accrued {
        w.clock.set(at);
        w.recorder.accrue().await.unwrap()
    }

    #[tokio::test]
    async fn a_gpu_left_running_overnight_is_counted_as_it_runs_and_once() {
        let w = world();
        let start = evening();
        w.recorder
            .resource(&run_instances("g5.xlarge", start))
            .await
            .unwrap();
        w.recorder.resource(&state("running", start)).await.unwrap();
        assert_eq!(
            w.recorder.resource(&state("running", start)).await.unwrap(),
            Recorded::Duplicate,
            "a redelivered start changes nothing"
        );
        // Within minutes, not when it stops.
        let five = accrue_at(&w, start + Duration::minutes(5)).await;
        assert_eq!((five.runs, five.priced, five.failed), (1, 1, 0));
        close(spent(&w), Decimal::new(1006, 3) / Decimal::from(12));
        // Through midnight, every hour.
        for hour in 1..=9 {
            accrue_at(&w, start + Duration::hours(hour)).await;
        }
        assert_eq!(spent(&w), Decimal::new(1006, 3) * Decimal::from(9));
        // The stop prices the last slice; its redelivery nothing.
        let stop = start + Duration::hours(10);
        w.clock.set(stop + Duration::seconds(3));
        w.recorder.resource(&state("stopping", stop)).await.unwrap();
        assert_eq!(
            w.recorder.resource(&state("stopped", stop)).await.unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(
            w.recorder.resource(&state("stopping", stop)).await.unwrap(),
            Recorded::Duplicate
        );
        assert_eq!(spent(&w), "10.06".parse::<Decimal>().unwrap());
        assert!(w.running.running(stop).await.unwrap().is_empty());
        let later = accrue_at(&w, stop + Duration::minutes(5)).await;
        assert_eq!(later.runs, 0);
        assert_eq!(spent(&w), "10.06".parse::<Decimal>().unwrap());
        // Each day counted on its own: 2h on the 21st, 8h on the 22nd.
        let rows = locked(&w.lake.rows);
        let day = |d: &str| -> f64 {
            rows.iter()
                .filter(|r| r["timestamp"].as_str().unwrap().starts_with(d))
                .map(|r| r["cost_usd"].as_f64().unwrap())
                .sum()
        };
        assert!(
            (day("2026-11-21") - 2.012).abs() < 1e-9,
            "{}",
            day("2026-11-21")
        );
        assert!((day("2026-11-22") - 8.048).abs() < 1e-9);
        assert!(rows.iter().all(|r| r["account_id"] == MEMBER
            && r["team"] == "payments"
            && r["usage_type"] == "BoxUsage:g5.xlarge"
            && r["source"] == "ec2_state"));
    }

    #[tokio::test]
    async fn an_instance_of_unknown_type_is_recorded_unpriced_until_its_launch_call_comes() {
        let w = world();
        let start = evening();
        w.recorder.resource(&state("running", start)).await.unwrap();
        accrue_at(&w, start + Duration::minutes(5)).await;
        assert_eq!(
            spent(&w),
            Decimal::ZERO,
            "never counted as 0 cost: unpriced"
        );
        let unpriced = w.bus.of(UNPRICED_USAGE);
        assert_eq!(unpriced.len(), 1);
        assert_eq!(unpriced[0]["usage"][0]["usage_type"], "BoxUsage:unknown");
        assert_eq!(locked(&w.lake.rows)[0]["cost_usd"], Value::Null);
        // The call event comes late: the next slices are priced.
        w.recorder
            .resource(&run_instances("g5.xlarge", start))
            .await
            .unwrap();
        accrue_at(&w, start + Duration::minutes(65)).await;
        assert_eq!(spent(&w), Decimal::new(1006, 3));
    }

    /// EC2 as `DescribeInstances` answers in the member account: `answer`
    /// for the one instance; how often it was asked.
    struct Ec2 {
        answer: Result<Option<String>, crate::ports::ResourcesError>,
        asked: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl MemberResources for Ec2 {
        async fn stop(
            &self,
            _: &crate::ports::MemberResource,
        ) -> Result<crate::ports::StopOutcome, crate::ports::ResourcesError> {
            unreachable!("the recorder stops nothing")
        }

        async fn instance_type(
            &self,
            account_id: &str,
            region: &str,
            instance_id: &str,
        ) -> Result<Option<String>, crate::ports::ResourcesError> {
            assert_eq!(
                (account_id, region, instance_id),
                (MEMBER, "us-east-1", INSTANCE)
            );
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.answer.clone()
        }

        async fn endpoint_instances(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<Option<Vec<SagemakerInstances>>, crate::ports::ResourcesError> {
            unreachable!("no endpoint here")
        }
    }

    fn described(
        answer: Result<Option<String>, crate::ports::ResourcesError>,
    ) -> (World, Arc<Ec2>) {
        let w = world();
        let ec2 = Arc::new(Ec2 {
            answer,
            asked: Default::default(),
        });
        let recorder = w.recorder.with_member_resources(ec2.clone());
        (World { recorder, ..w }, ec2)
    }

    #[tokio::test]
    async fn an_instance_no_launch_call_told_is_priced_as_ec2_describes_it() {
        let (w, ec2) = described(Ok(Some("g5.xlarge".into())));
        let start = evening();
        w.recorder.resource(&state("running", start)).await.unwrap();
        assert_eq!(ec2.asked.load(Ordering::SeqCst), 1);
        accrue_at(&w, start + Duration::minutes(60)).await;
        assert_eq!(spent(&w), Decimal::new(1006, 3));
        assert!(w.bus.of(UNPRICED_USAGE).is_empty());

        // A type a launch call told is not asked of EC2.
        let (w, ec2) = described(Ok(Some("t3.micro".into())));
        w.recorder
            .resource(&run_instances("g5.xlarge", start))
            .await
            .unwrap();
        w.recorder.resource(&state("running", start)).await.unwrap();
        accrue_at(&w, start + Duration::minutes(60)).await;
        assert_eq!(ec2.asked.load(Ordering::SeqCst), 0);
        assert_eq!(spent(&w), Decimal::new(1006, 3));
    }

    #[tokio::test]
    async fn an_instance_ec2_cannot_describe_is_still_recorded_unpriced() {
        for answer in [
            Err(crate::ports::ResourcesError::AccessDenied {
                account_id: MEMBER.into(),
                service: "EC2".into(),
                role: "arn:aws:iam::210987654321:role/purser-lambda-throttle".into(),
                message: "UnauthorizedOperation".into(),
            }),
            Err(crate::ports::ResourcesError::Unavailable(
                "EC2 timed out".into(),
            )),
            Ok(None),
            Ok(Some("not a type".into())),
        ] {
            let (w, ec2) = described(answer.clone());
            let start = evening();
            w.recorder.resource(&state("running", start)).await.unwrap();
            assert_eq!(ec2.asked.load(Ordering::SeqCst), 1, "{answer:?}");
            accrue_at(&w, start + Duration::minutes(5)).await;
            assert_eq!(spent(&w), Decimal::ZERO, "{answer:?}");
            let unpriced = w.bus.of(UNPRICED_USAGE);
            assert_eq!(unpriced.len(), 1, "the run is kept: {answer:?}");
            assert_eq!(unpriced[0]["usage"][0]["usage_type"], "BoxUsage:unknown");
        }
    }

    /// SageMaker as `DescribeEndpoint` and `DescribeEndpointConfig` answer
    /// in the member account: `answer` for the one endpoint; the names it
    /// was asked.
    struct Sagemaker {
        answer: Result<Option<Vec<SagemakerInstances>>, crate::ports::ResourcesError>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl MemberResources for Sagemaker {
        async fn stop(
            &self,
            _: &crate::ports::MemberResource,
        ) -> Result<crate::ports::StopOutcome, crate::ports::ResourcesError> {
            unreachable!("the recorder stops nothing")
        }

        async fn instance_type(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<Option<String>, crate::ports::ResourcesError> {
            unreachable!("no instance here")
        }

        async fn endpoint_instances(
            &self,
            account_id: &str,
            region: &str,
            endpoint_name: &str,
        ) -> Result<Option<Vec<SagemakerInstances>>, crate::ports::ResourcesError> {
            assert_eq!((account_id, region), (MEMBER, "us-east-1"));
            locked(&self.asked).push(endpoint_name.to_string());
            self.answer.clone()
        }
    }

    fn with_sagemaker(
        answer: Result<Option<Vec<SagemakerInstances>>, crate::ports::ResourcesError>,
    ) -> (World, Arc<Sagemaker>) {
        let w = world();
        let sagemaker = Arc::new(Sagemaker {
            answer,
            asked: Default::default(),
        });
        let recorder = w.recorder.with_member_resources(sagemaker.clone());
        (World { recorder, ..w }, sagemaker)
    }

    /// SageMaker's endpoint state change as AWS sends it: the variants'
    /// counts, no instance type; `variants` replaces them.
    fn endpoint(status: &str, at: DateTime<Utc>, variants: Value) -> Event {
        event_of(
            MEMBER,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            at,
            json!({"EndpointName": "Chat",
                "EndpointArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:endpoint/chat"),
                "EndpointConfigName": "chat-config",
                "EndpointStatus": status, "ProductionVariants": variants}),
        )
    }

    fn g5(count: u32) -> Vec<SagemakerInstances> {
        vec![SagemakerInstances {
            instance_type: Some("ml.g5.xlarge".into()),
            count,
        }]
    }

    #[tokio::test]
    async fn an_endpoint_whose_event_names_no_type_is_priced_as_sagemaker_describes_it() {
        let (w, sagemaker) = with_sagemaker(Ok(Some(g5(2))));
        let start = evening();
        let counts = json!([{"VariantName": "main", "CurrentInstanceCount": 2.0,
            "DesiredInstanceCount": 2.0, "DesiredWeight": 1.0}]);
        w.recorder
            .resource(&endpoint("IN_SERVICE", start, counts.clone()))
            .await
            .unwrap();
        assert_eq!(
            *locked(&sagemaker.asked),
            ["Chat"],
            "asked by its name, in its own case"
        );
        accrue_at(&w, start + Duration::hours(1)).await;
        // Two ml.g5.xlarge for an hour.
        assert_eq!(
            spent(&w),
            "1.408".parse::<Decimal>().unwrap() * Decimal::TWO
        );
        assert!(w.bus.of(UNPRICED_USAGE).is_empty());
        assert!(
            locked(&w.lake.rows)
                .iter()
                .all(|r| r["usage_type"] == "Host:ml.g5.xlarge")
        );
        let stop = start + Duration::hours(2);
        w.clock.set(stop);
        w.recorder
            .resource(&endpoint("DELETING", stop, counts))
            .await
            .unwrap();
        assert_eq!(
            spent(&w),
            "1.408".parse::<Decimal>().unwrap() * Decimal::from(4)
        );
        assert_eq!(locked(&sagemaker.asked).len(), 1, "a stop asks nothing");

        // An event that names its type is not asked of SageMaker.
        let (w, sagemaker) = with_sagemaker(Ok(Some(g5(5))));
        w.recorder
            .resource(&endpoint(
                "IN_SERVICE",
                start,
                json!([{"InstanceType": "ml.g5.xlarge", "CurrentInstanceCount": 1}]),
            ))
            .await
            .unwrap();
        accrue_at(&w, start + Duration::hours(1)).await;
        assert!(locked(&sagemaker.asked).is_empty());
        assert_eq!(spent(&w), "1.408".parse::<Decimal>().unwrap());
    }

    #[tokio::test]
    async fn an_endpoint_sagemaker_cannot_describe_is_still_recorded_unpriced() {
        let untyped = vec![SagemakerInstances {
            instance_type: None,
            count: 2,
        }];
        let not_ml = vec![SagemakerInstances {
            instance_type: Some("g5.xlarge".into()),
            count: 2,
        }];
        for answer in [
            Err(crate::ports::ResourcesError::AccessDenied {
                account_id: MEMBER.into(),
                service: "SageMaker".into(),
                role: "arn:aws:iam::210987654321:role/purser-describe-instances".into(),
                message: "AccessDeniedException".into(),
            }),
            Err(crate::ports::ResourcesError::Unavailable(
                "SageMaker timed out".into(),
            )),
            Ok(None),
            Ok(Some(vec![])),
            Ok(Some(untyped)),
            Ok(Some(not_ml)),
            Ok(Some(g5(1_001))),
        ] {
            let (w, sagemaker) = with_sagemaker(answer.clone());
            let start = evening();
            w.recorder
                .resource(&endpoint(
                    "IN_SERVICE",
                    start,
                    json!([{"CurrentInstanceCount": 2}]),
                ))
                .await
                .unwrap();
            assert_eq!(locked(&sagemaker.asked).len(), 1, "{answer:?}");
            accrue_at(&w, start + Duration::minutes(5)).await;
            assert_eq!(spent(&w), Decimal::ZERO, "{answer:?}");
            let unpriced = w.bus.of(UNPRICED_USAGE);
            assert_eq!(unpriced.len(), 1, "the run is kept: {answer:?}");
            assert_eq!(unpriced[0]["usage"][0]["usage_type"], "Host:unknown");
        }
        // Without the port, as before.
        let w = world();
        w.recorder
            .resource(&endpoint(
                "IN_SERVICE",
                evening(),
                json!([{"CurrentInstanceCount": 2}]),
            ))
            .await
            .unwrap();
        accrue_at(&w, evening() + Duration::minutes(5)).await;
        assert_eq!(w.bus.of(UNPRICED_USAGE).len(), 1);
    }

    #[tokio::test]
    async fn a_stop_delivered_before_its_start_keeps_the_start_out() {
        let w = world();
        let start = evening();
        let cpu = json!("1024");
        let memory = json!("2048");
        w.recorder
            .resource(&task(
                "STOPPED",
                start + Duration::minutes(3),
                cpu.clone(),
                memory.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(
            w.recorder
                .resource(&task("RUNNING", start, cpu, memory))
                .await
                .unwrap(),
            Recorded::Duplicate
        );
        assert!(w.running.running(start).await.unwrap().is_empty());
        accrue_at(&w, start + Duration::hours(1)).await;
        assert_eq!(spent(&w), Decimal::ZERO);
    }

    #[tokio::test]
    async fn a_fargate_task_and_a_training_job_are_priced_from_start_to_stop() {
        let w = world();
        let start = evening();
        w.recorder
            .resource(&task("RUNNING", start, json!("1024"), json!(2048)))
            .await
            .unwrap();
        let config =
            json!({"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50});
        w.recorder
            .resource(&training("InProgress", start, config.clone()))
            .await
            .unwrap();
        w.clock.set(start + Duration::hours(2));
        w.recorder
            .resource(&task(
                "STOPPED",
                start + Duration::hours(1),
                json!("1024"),
                json!(2048),
            ))
            .await
            .unwrap();
        w.recorder
            .resource(&training("Completed", start + Duration::hours(2), config))
            .await
            .unwrap();
        // 1 vCPU and 2 GB for an hour; 2 ml.g5.xlarge for two.
        let fargate = "0.04048".parse::<Decimal>().unwrap() + "0.00889".parse::<Decimal>().unwrap();
        let training = "1.408".parse::<Decimal>().unwrap() * Decimal::from(4);
        assert_eq!(spent(&w), fargate + training);
        let services: Vec<String> = locked(&w.lake.rows)
            .iter()
            .map(|r| r["service"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(services, ["fargate", "fargate", "sagemaker"]);
    }

    #[tokio::test]
    async fn a_slice_that_could_not_be_counted_is_given_back_and_counted_next_time() {
        let w = world();
        let start = evening();
        w.recorder
            .resource(&run_instances("g5.xlarge", start))
            .await
            .unwrap();
        w.recorder.resource(&state("running", start)).await.unwrap();
        w.lake.failing.store(true, Ordering::SeqCst);
        let failed = accrue_at(&w, start + Duration::minutes(30)).await;
        assert_eq!(failed.failed, 1);
        assert_eq!(spent(&w), Decimal::ZERO);
        assert_eq!(
            w.running.running(start).await.unwrap()[0].priced_until,
            start,
            "given back"
        );
        w.lake.failing.store(false, Ordering::SeqCst);
        accrue_at(&w, start + Duration::hours(1)).await;
        assert_eq!(spent(&w), Decimal::new(1006, 3));
    }

    #[tokio::test]
    async fn a_run_is_the_envelopes_accounts_and_never_another() {
        let w = world();
        let start = evening();
        // A task ARN naming another account is refused by field.
        let mut event = task("RUNNING", start, json!("1024"), json!("2048"));
        event.detail["taskArn"] = json!(task_arn(OTHER));
        let e = w.recorder.resource(&event).await.unwrap_err();
        assert!(e.to_string().contains("detail.taskArn"), "{e}");
        // An instance started by another account is that account's run.
        let mut other = state("running", start);
        other.account = OTHER.into();
        w.recorder.resource(&other).await.unwrap();
        let runs = w.running.running(start).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].key.account_id, OTHER);
        accrue_at(&w, start + Duration::hours(1)).await;
        assert_eq!(spent(&w), Decimal::ZERO, "no team of Purser's pays for it");
    }

    #[test]
    fn every_field_of_the_detail_is_bounded_and_named_when_wrong() {
        let at = evening();
        let cases: Vec<(Event, &str)> = vec![
            (
                event_of(
                    MEMBER,
                    "aws.ec2",
                    EC2_STATE_CHANGE,
                    at,
                    json!({"instance-id": "i-xyz", "state": "running"}),
                ),
                "detail.instance-id",
            ),
            (
                event_of(
                    MEMBER,
                    "aws.ec2",
                    EC2_STATE_CHANGE,
                    at,
                    json!({"instance-id": INSTANCE, "state": 7}),
                ),
                "detail.state",
            ),
            (
                task("RUNNING", at, json!("99999"), json!("2048")),
                "detail.cpu",
            ),
            (
                task("RUNNING", at, json!("1024"), json!(1e30)),
                "detail.memory",
            ),
            (
                task("RUNNING", at, json!("1024"), json!("-1")),
                "detail.memory",
            ),
            (
                training(
                    "InProgress",
                    at,
                    json!({"InstanceType": "ml.g5.xlarge", "InstanceCount": 1_000_000}),
                ),
                "detail.ResourceConfig.InstanceCount",
            ),
            (
                training(
                    "InProgress",
                    at,
                    json!({"InstanceType": "g5.xlarge", "InstanceCount": 1}),
                ),
                "detail.ResourceConfig.InstanceType",
            ),
            (
                training(
                    "InProgress",
                    at,
                    json!({"InstanceType": "ml.g5.xlarge\n", "InstanceCount": 1}),
                ),
                "detail.ResourceConfig.InstanceType",
            ),
            (
                event_of(
                    MEMBER,
                    "aws.ec2",
                    API_CALL,
                    at,
                    json!({"eventName": "RunInstances",
                    "responseElements": {"instancesSet": {"items": [{"instanceId": INSTANCE, "instanceType": "x".repeat(100)}]}}}),
                ),
                "detail.responseElements.instancesSet.items[0].instanceType",
            ),
            (
                event_of(
                    MEMBER,
                    "aws.sagemaker",
                    SAGEMAKER_ENDPOINT_STATE_CHANGE,
                    at,
                    json!({
                    "EndpointArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:endpoint/chat"),
                    "EndpointStatus": "IN_SERVICE",
                    "ProductionVariants": vec![json!({"DesiredInstanceCount": 1}); 11]}),
                ),
                "detail.ProductionVariants",
            ),
            (
                event_of(
                    MEMBER,
                    "aws.sagemaker",
                    SAGEMAKER_ENDPOINT_STATE_CHANGE,
                    at,
                    json!({
                    "EndpointArn": format!("arn:aws:sagemaker:eu-west-1:{MEMBER}:endpoint/chat"),
                    "EndpointStatus": "IN_SERVICE"}),
                ),
                "detail.EndpointArn",
            ),
            (
                event_of(
                    "21098765432x",
                    "aws.ec2",
                    EC2_STATE_CHANGE,
                    at,
                    json!({"instance-id": INSTANCE, "state": "running"}),
                ),
                "account",
            ),
        ];
        for (event, field) in cases {
            let e = resource_change(&event).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn state_changes_start_stop_or_are_ignored() {
        let at = evening();
        let change = resource_change(&state("running", at)).unwrap();
        assert!(matches!(change, ResourceChange::Start(ref run)
            if run.key.service == Service::Ec2 && run.started_at == at));
        for s in ["stopping", "stopped", "shutting-down", "terminated"] {
            assert!(
                matches!(
                    resource_change(&state(s, at)).unwrap(),
                    ResourceChange::Stop { .. }
                ),
                "{s}"
            );
        }
        assert!(matches!(
            resource_change(&state("pending", at)).unwrap(),
            ResourceChange::Ignored(_)
        ));
        // An endpoint's variants, as SageMaker's event gives them (counts as
        // decimals; a type only where named).
        let endpoint = event_of(
            MEMBER,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            at,
            json!({
            "EndpointArn": format!("arn:aws:sagemaker:us-east-1:{MEMBER}:endpoint/chat"),
            "EndpointStatus": "IN_SERVICE",
            "ProductionVariants": [{"DesiredWeight": 1.0, "DesiredInstanceCount": 2.0},
                {"InstanceType": "ml.g5.xlarge", "CurrentInstanceCount": 1}]}),
        );
        let ResourceChange::Start(run) = resource_change(&endpoint).unwrap() else {
            panic!("a start")
        };
        assert_eq!(
            run.what,
            RunWhat::Sagemaker {
                use_: SagemakerUse::Hosting,
                instances: vec![
                    SagemakerInstances {
                        instance_type: None,
                        count: 2
                    },
                    SagemakerInstances {
                        instance_type: Some("ml.g5.xlarge".into()),
                        count: 1
                    },
                ]
            }
        );
        // A task's pull start, when it is within a day before the event.
        let mut running = task("RUNNING", at, json!("512"), json!("1024"));
        running.detail["pullStartedAt"] = json!("2026-11-21T21:59:30.5Z");
        running.detail["attributes"] = json!([{"name": "ecs.cpu-architecture", "value": "arm64"}]);
        let ResourceChange::Start(run) = resource_change(&running).unwrap() else {
            panic!("a start")
        };
        assert_eq!(run.started_at, at - Duration::milliseconds(29_500));
        assert!(matches!(
            run.what,
            RunWhat::Fargate {
                architecture: Architecture::Arm64,
                cpu_units: 512,
                memory_mib: 1024
            }
        ));
        running.detail["pullStartedAt"] = json!("2020-01-01T00:00:00Z");
        let ResourceChange::Start(run) = resource_change(&running).unwrap() else {
            panic!("a start")
        };
        assert_eq!(run.started_at, at, "the envelope's time, not a far one");
        // Not on Fargate: the instances' cost, counted with them.
        let mut on_ec2 = task("RUNNING", at, json!("1024"), json!("2048"));
        on_ec2.detail["launchType"] = json!("EC2");
        assert!(matches!(
            resource_change(&on_ec2).unwrap(),
            ResourceChange::Ignored(_)
        ));
    }

    #[test]
    fn slices_are_cut_at_utc_midnight() {
        let from: DateTime<Utc> = "2026-11-21T22:30:00Z".parse().unwrap();
        let to: DateTime<Utc> = "2026-11-23T01:00:00Z".parse().unwrap();
        let slices = split_at_midnight(from, to);
        let midnight = |d: &str| -> DateTime<Utc> { format!("{d}T00:00:00Z").parse().unwrap() };
        assert_eq!(
            slices,
            vec![
                (from, midnight("2026-11-22")),
                (midnight("2026-11-22"), midnight("2026-11-23")),
                (midnight("2026-11-23"), to),
            ]
        );
        assert!(split_at_midnight(to, to).is_empty());
    }

    #[tokio::test]
    async fn a_run_unpriced_for_longer_than_31_days_is_priced_for_31() {
        let w = world();
        let start = evening();
        w.recorder
            .resource(&run_instances("g5.xlarge", start))
            .await
            .unwrap();
        w.recorder.resource(&state("running", start)).await.unwrap();
        accrue_at(&w, start + Duration::days(40)).await;
        assert_eq!(spent(&w), Decimal::new(1006, 3) * Decimal::from(24 * 31));
    }
}
