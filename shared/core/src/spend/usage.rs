//! What everything but Lambda costs, as it happens: usage records, the
//! versioned usage price table (`infra/prices.json`'s `usage` section), and
//! the two ways usage arrives.
//!
//! - **CloudWatch metric streams** (JSON output format, newline-delimited, one
//!   data point a line) for Bedrock, NAT gateways, API Gateway, DynamoDB
//!   on-demand and Step Functions: [`parse_metric_stream`] /
//!   [`parse_metric_line`] turn each line into a [`Usage`] of one minute.
//!   Metrics Purser does not price are skipped; a malformed line is an error
//!   naming its line and field.
//! - **State changes** of EC2 instances, Fargate tasks and SageMaker jobs and
//!   endpoints: [`ec2_instance`], [`fargate_task`] and [`sagemaker_instances`]
//!   turn a running [`Interval`] into usage, with AWS's billing minimums.
//!
//! Either way the caller then prices it: `usage.priced(&UsagePrices::builtin())`
//! sets `cost` from the price in force at the usage's start in its region
//! (else `*`). A usage with no price keeps its quantity and `cost: None`:
//! unpriced, and never to be counted as 0. Costs are in USD. The parser never
//! fills `team`: the recorder attributes the account, and must refuse a
//! record whose `account_id` differs from the account its object was written
//! under.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use purser_core::spend::{Interval, UsagePrices, ec2_instance, parse_metric_stream};
//!
//! let prices = UsagePrices::builtin(); // parses the table: once, then keep it
//! let object = r#"{"metric_stream_name":"purser","account_id":"210987654321","region":"us-east-1","namespace":"AWS/Bedrock","metric_name":"OutputTokenCount","dimensions":{"ModelId":"anthropic.claude-3-haiku-20240307-v1:0"},"timestamp":1795000000000,"value":{"max":900.0,"min":100.0,"sum":4000.0,"count":5.0},"unit":"Count"}"#;
//! for usage in parse_metric_stream(object) {
//!     let usage = usage.unwrap().priced(&prices);
//!     assert_eq!(usage.cost, Some("0.005".parse().unwrap())); // 4K tokens at $0.00125
//! }
//! let started = Utc.with_ymd_and_hms(2026, 11, 21, 22, 0, 0).unwrap();
//! let night = Interval::run("210987654321", "us-east-1", "i-0abc", started, started + Duration::hours(10));
//! let usage = ec2_instance(&night, "g5.xlarge").unwrap().priced(&prices);
//! assert_eq!(usage.cost, Some("10.06".parse().unwrap()));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::spend::BUILTIN_PRICES;

// ------------------------------------------------------------ vocabulary

/// The services Purser prices from usage (Lambda has its own table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Ec2,
    Fargate,
    Sagemaker,
    Bedrock,
    NatGateway,
    ApiGateway,
    Dynamodb,
    StepFunctions,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ec2 => "ec2",
            Self::Fargate => "fargate",
            Self::Sagemaker => "sagemaker",
            Self::Bedrock => "bedrock",
            Self::NatGateway => "nat_gateway",
            Self::ApiGateway => "api_gateway",
            Self::Dynamodb => "dynamodb",
            Self::StepFunctions => "step_functions",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a quantity counts. A price applies only to usage in its own unit, so
/// a table that says "per hour" can never price seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "hour")]
    Hour,
    #[serde(rename = "vcpu-hour")]
    VcpuHour,
    #[serde(rename = "gb-hour")]
    GbHour,
    /// 2^30 bytes, as AWS bills data.
    #[serde(rename = "gb")]
    Gb,
    #[serde(rename = "request")]
    Request,
    /// DynamoDB's read or write request units.
    #[serde(rename = "request-unit")]
    RequestUnit,
    #[serde(rename = "1k-tokens")]
    ThousandTokens,
    #[serde(rename = "state-transition")]
    StateTransition,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::VcpuHour => "vcpu-hour",
            Self::GbHour => "gb-hour",
            Self::Gb => "gb",
            Self::Request => "request",
            Self::RequestUnit => "request-unit",
            Self::ThousandTokens => "1k-tokens",
            Self::StateTransition => "state-transition",
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a usage record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    MetricStream,
    Ec2State,
    EcsTask,
    Sagemaker,
}

// Usage types: the CUR's and the Price List's, without their region prefix
// (`USE1-`), so a price list maps onto the table by stripping it.
pub const NAT_GATEWAY_BYTES: &str = "NatGateway-Bytes";
pub const NAT_GATEWAY_HOURS: &str = "NatGateway-Hours";
pub const API_GATEWAY_REST_REQUEST: &str = "ApiGatewayRequest";
pub const API_GATEWAY_HTTP_REQUEST: &str = "ApiGatewayHttpRequest";
pub const DYNAMODB_READ_REQUEST_UNITS: &str = "ReadRequestUnits";
pub const DYNAMODB_WRITE_REQUEST_UNITS: &str = "WriteRequestUnits";
pub const STEP_FUNCTIONS_STATE_TRANSITION: &str = "StateTransition";

/// `BoxUsage:g5.xlarge`: on-demand Linux, shared tenancy.
pub fn ec2_usage_type(instance_type: &str) -> String {
    format!("BoxUsage:{instance_type}")
}

/// `InputTokens:<ModelId>` or `OutputTokens:<ModelId>`, the ModelId as
/// Bedrock's CloudWatch dimension gives it.
pub fn bedrock_usage_type(model_id: &str, output: bool) -> String {
    let direction = if output {
        "OutputTokens"
    } else {
        "InputTokens"
    };
    format!("{direction}:{model_id}")
}

/// Fargate's vCPU-hour and GB-hour usage types for an architecture.
pub fn fargate_usage_types(
    architecture: crate::spend::Architecture,
) -> (&'static str, &'static str) {
    match architecture {
        crate::spend::Architecture::X86_64 => ("Fargate-vCPU-Hours:perCPU", "Fargate-GB-Hours"),
        crate::spend::Architecture::Arm64 => {
            ("Fargate-ARM-vCPU-Hours:perCPU", "Fargate-ARM-GB-Hours")
        }
    }
}

/// What a SageMaker instance is doing: each is priced on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagemakerUse {
    Training,
    Hosting,
}

/// `Train:ml.g5.xlarge` or `Host:ml.g5.xlarge`.
pub fn sagemaker_usage_type(use_: SagemakerUse, instance_type: &str) -> String {
    match use_ {
        SagemakerUse::Training => format!("Train:{instance_type}"),
        SagemakerUse::Hosting => format!("Host:{instance_type}"),
    }
}

// ------------------------------------------------------------ prices

/// One price of one usage type in one region from one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePrice {
    pub service: Service,
    /// A region, or `*` for every region without its own entry.
    pub region: String,
    pub usage_type: String,
    pub unit: Unit,
    /// Per one `unit`.
    pub price: Decimal,
    pub currency: String,
    pub effective: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The highest price per unit the table accepts: ten times the dearest
/// instance-hour AWS sells, so a misplaced decimal point is caught.
const MAX_PRICE: Decimal = Decimal::from_parts(1_000, 0, 0, false, 0);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsagePriceError {
    #[error("the usage price table is not valid: {0}")]
    Invalid(String),
    #[error("no {service} price for {usage_type} in {region} on {on}")]
    Missing {
        service: Service,
        region: String,
        usage_type: String,
        on: NaiveDate,
    },
    #[error("unit: the {service} price for {usage_type} is per {price}, the usage counts {usage}")]
    UnitMismatch {
        service: Service,
        usage_type: String,
        price: Unit,
        usage: Unit,
    },
}

/// Every usage price by service, region and usage type, each with its
/// versions oldest first. Nested maps so a lookup allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsagePrices {
    by: HashMap<Service, HashMap<String, HashMap<String, Vec<UsagePrice>>>>,
}

impl UsagePrices {
    /// The `usage` section of a price file (other sections are ignored).
    pub fn parse(json: &str) -> Result<Self, UsagePriceError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            usage: Vec<UsagePrice>,
        }
        let file: File =
            serde_json::from_str(json).map_err(|e| UsagePriceError::Invalid(e.to_string()))?;
        Self::from_prices(file.usage)
    }

    /// A table from its entries, refusing any the lookup could not trust.
    pub fn from_prices(prices: Vec<UsagePrice>) -> Result<Self, UsagePriceError> {
        let mut table = Self::default();
        for p in prices {
            let what = format!(
                "{} {} {} {}",
                p.service, p.region, p.usage_type, p.effective
            );
            if p.currency != "USD" {
                return Err(UsagePriceError::Invalid(format!(
                    "{what}: currency {} (usage is costed in USD)",
                    p.currency
                )));
            }
            if p.price.is_sign_negative() || p.price > MAX_PRICE {
                return Err(UsagePriceError::Invalid(format!(
                    "{what}: price {} is not between 0 and {MAX_PRICE}",
                    p.price
                )));
            }
            if p.region.is_empty() || p.usage_type.is_empty() {
                return Err(UsagePriceError::Invalid(format!(
                    "{what}: region and usage_type must not be empty"
                )));
            }
            let versions = table
                .by
                .entry(p.service)
                .or_default()
                .entry(p.region.clone())
                .or_default()
                .entry(p.usage_type.clone())
                .or_default();
            if versions.iter().any(|v| v.effective == p.effective) {
                return Err(UsagePriceError::Invalid(format!("{what}: listed twice")));
            }
            versions.push(p);
            versions.sort_by_key(|v| v.effective);
        }
        Ok(table)
    }

    /// The table Purser ships in `infra/prices.json` (parsed on each call:
    /// keep the result).
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_PRICES).expect("infra/prices.json is valid (a test checks it)")
    }

    /// The price in force on `on`: the latest effective on or before that
    /// day, from the region's own entries or else from `*`.
    pub fn price(
        &self,
        service: Service,
        region: &str,
        usage_type: &str,
        on: NaiveDate,
    ) -> Option<&UsagePrice> {
        let regions = self.by.get(&service)?;
        let latest = |r: &str| {
            regions
                .get(r)?
                .get(usage_type)?
                .iter()
                .rev()
                .find(|p| p.effective <= on)
        };
        latest(region).or_else(|| latest("*"))
    }

    /// What `usage` costs: its quantity times the price in force on its
    /// start day, in the price's own unit.
    pub fn cost(&self, usage: &Usage) -> Result<Decimal, UsagePriceError> {
        let on = usage.start.date_naive();
        let price = self
            .price(usage.service, &usage.region, &usage.usage_type, on)
            .ok_or_else(|| UsagePriceError::Missing {
                service: usage.service,
                region: usage.region.clone(),
                usage_type: usage.usage_type.clone(),
                on,
            })?;
        if price.unit != usage.unit {
            return Err(UsagePriceError::UnitMismatch {
                service: usage.service,
                usage_type: usage.usage_type.clone(),
                price: price.unit,
                usage: usage.unit,
            });
        }
        // Quantities and prices are bounded, so this cannot overflow; if it
        // ever did, unpriced beats wrong.
        usage
            .quantity
            .checked_mul(price.price)
            .ok_or_else(|| UsagePriceError::Invalid(format!("{} overflows", usage.usage_type)))
    }

    /// Every entry, sorted by service, region, usage type and date.
    pub fn entries(&self) -> Vec<&UsagePrice> {
        let mut all: Vec<&UsagePrice> = self
            .by
            .values()
            .flat_map(|r| r.values())
            .flat_map(|u| u.values())
            .flatten()
            .collect();
        all.sort_by(|a, b| {
            (a.service, &a.region, &a.usage_type, a.effective).cmp(&(
                b.service,
                &b.region,
                &b.usage_type,
                b.effective,
            ))
        });
        all
    }
}

// ------------------------------------------------------------ usage

/// Usage of one resource over a stretch of time, priced or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub account_id: String,
    /// Set by the recorder from Purser's registry, never from the source.
    pub team: Option<String>,
    pub region: String,
    pub service: Service,
    /// The instance, task, job, endpoint, model, gateway, API, table, or
    /// `*` where AWS measures the account (Step Functions' transitions).
    pub resource: String,
    pub usage_type: String,
    pub unit: Unit,
    pub quantity: Decimal,
    /// In USD; `None` is unpriced usage, never zero.
    pub cost: Option<Decimal>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: UsageSource,
}

impl Usage {
    /// This usage with its cost from `prices`, or `None` when no price in
    /// its unit is in force (see [`UsagePrices::cost`] for why).
    pub fn priced(mut self, prices: &UsagePrices) -> Usage {
        self.cost = prices.cost(&self).ok();
        self
    }
}

/// Why a usage record cannot be made; `field` names what is wrong, `line`
/// (1-based) where, for a metric stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct UsageError {
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> UsageError {
    UsageError {
        line: None,
        field: field.into(),
        message: message.into(),
    }
}

fn check_account(account_id: &str) -> Result<(), UsageError> {
    if account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(bad(
            "account_id",
            format!("{account_id:?} is not 12 digits"),
        ))
    }
}

fn check_region(region: &str) -> Result<(), UsageError> {
    if crate::validation::is_region(region) {
        Ok(())
    } else {
        Err(bad("region", format!("{region:?} is not a region")))
    }
}

/// A resource or dimension value: non-empty, bounded, no control characters.
fn check_name<'a>(field: &str, value: &'a str) -> Result<&'a str, UsageError> {
    if value.is_empty() || value.len() > 1024 || value.chars().any(char::is_control) {
        Err(bad(field, "must be 1 to 1,024 printable characters"))
    } else {
        Ok(value)
    }
}

/// An instance type like `g5.xlarge` or `ml.g5.xlarge`.
fn check_instance_type(value: &str) -> Result<(), UsageError> {
    let ok = (3..=40).contains(&value.len())
        && value.contains('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "instance_type",
            format!("{value:?} is not an instance type"),
        ))
    }
}

// ------------------------------------------------------------ intervals

/// The longest stretch priced at once. A resource left running is priced as
/// it runs (in slices), so the runaway guard sees it within minutes; a
/// longer stretch is a bug upstream, not usage.
pub const MAX_INTERVAL: Duration = Duration::days(31);

/// A resource running from `run_start`; `start..end` is the stretch priced,
/// the whole run or a slice of it. AWS's minimum (EC2's and Fargate's
/// 60 s) counts from `run_start`, so slices after the first minute are
/// billed as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub account_id: String,
    pub region: String,
    pub resource: String,
    pub run_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    /// A whole run, from `start` to `end`.
    pub fn run(
        account_id: impl Into<String>,
        region: impl Into<String>,
        resource: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            region: region.into(),
            resource: resource.into(),
            run_start: start,
            start,
            end,
        }
    }

    /// Billed hours: whole seconds (rounded up), at least `minimum_seconds`
    /// after `run_start`.
    fn billed_hours(&self, minimum_seconds: i64) -> Result<Decimal, UsageError> {
        check_account(&self.account_id)?;
        check_region(&self.region)?;
        check_name("resource", &self.resource)?;
        if self.start < self.run_start {
            return Err(bad("start", "is before the run started"));
        }
        if self.end < self.start {
            return Err(bad("end", "is before start"));
        }
        if self.end - self.start > MAX_INTERVAL {
            return Err(bad(
                "end",
                format!("more than {} days after start", MAX_INTERVAL.num_days()),
            ));
        }
        let end = self
            .end
            .max(self.run_start + Duration::seconds(minimum_seconds));
        let millis = (end - self.start).num_milliseconds();
        let seconds = (millis + 999) / 1000;
        Ok(Decimal::from(seconds) / Decimal::from(3600))
    }

    fn usage(
        &self,
        service: Service,
        usage_type: String,
        unit: Unit,
        quantity: Decimal,
        source: UsageSource,
    ) -> Usage {
        Usage {
            account_id: self.account_id.clone(),
            team: None,
            region: self.region.clone(),
            service,
            resource: self.resource.clone(),
            usage_type,
            unit,
            quantity,
            cost: None,
            start: self.start,
            end: self.end,
            source,
        }
    }
}

/// An EC2 instance running (on-demand Linux): per second, 60 s minimum.
pub fn ec2_instance(interval: &Interval, instance_type: &str) -> Result<Usage, UsageError> {
    check_instance_type(instance_type)?;
    let hours = interval.billed_hours(60)?;
    Ok(interval.usage(
        Service::Ec2,
        ec2_usage_type(instance_type),
        Unit::Hour,
        hours,
        UsageSource::Ec2State,
    ))
}

/// A Fargate task running with `cpu_units` (1,024 a vCPU) and `memory_mib`,
/// as ECS's task state changes give them: per second, 1 minute minimum;
/// its vCPU-hours and its GB-hours.
pub fn fargate_task(
    interval: &Interval,
    architecture: crate::spend::Architecture,
    cpu_units: u32,
    memory_mib: u32,
) -> Result<[Usage; 2], UsageError> {
    // Fargate's largest task: 16 vCPU, 120 GB.
    if !(128..=16_384).contains(&cpu_units) {
        return Err(bad(
            "cpu",
            format!("{cpu_units} is not 128 to 16,384 CPU units"),
        ));
    }
    if !(512..=122_880).contains(&memory_mib) {
        return Err(bad(
            "memory",
            format!("{memory_mib} is not 512 to 122,880 MiB"),
        ));
    }
    let hours = interval.billed_hours(60)?;
    let (vcpu_type, gb_type) = fargate_usage_types(architecture);
    let vcpu = Decimal::from(cpu_units) / Decimal::from(1024);
    let gb = Decimal::from(memory_mib) / Decimal::from(1024);
    Ok([
        interval.usage(
            Service::Fargate,
            vcpu_type.into(),
            Unit::VcpuHour,
            hours * vcpu,
            UsageSource::EcsTask,
        ),
        interval.usage(
            Service::Fargate,
            gb_type.into(),
            Unit::GbHour,
            hours * gb,
            UsageSource::EcsTask,
        ),
    ])
}

/// A SageMaker training job or endpoint on `count` instances: per second
/// (SageMaker bills no minimum).
pub fn sagemaker_instances(
    interval: &Interval,
    use_: SagemakerUse,
    instance_type: &str,
    count: u32,
) -> Result<Usage, UsageError> {
    check_instance_type(instance_type)?;
    if !instance_type.starts_with("ml.") {
        return Err(bad(
            "instance_type",
            format!("{instance_type:?} is not an ml. type"),
        ));
    }
    if !(1..=1_000).contains(&count) {
        return Err(bad("count", format!("{count} is not 1 to 1,000 instances")));
    }
    let hours = interval.billed_hours(0)?;
    Ok(interval.usage(
        Service::Sagemaker,
        sagemaker_usage_type(use_, instance_type),
        Unit::Hour,
        hours * Decimal::from(count),
        UsageSource::Sagemaker,
    ))
}

// ------------------------------------------------------------ metric streams

/// A metric stream's data points cover one minute.
const METRIC_PERIOD: Duration = Duration::seconds(60);
/// No minute of a priced metric comes near this (a NAT gateway at its
/// 100 Gb/s moves 7.5 × 10^11 bytes a minute): a larger sum is refused.
const MAX_METRIC_SUM: f64 = 1e13;
const BYTES_PER_GB: Decimal = Decimal::from_parts(1 << 30, 0, 0, false, 0);
/// Metric timestamps from 2006 (CloudWatch's launch) to 2100.
const MIN_TIMESTAMP_MS: i64 = 1_136_073_600_000;
const MAX_TIMESTAMP_MS: i64 = 4_102_444_800_000;

/// One line of a metric stream, borrowed from it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    account_id: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    metric_name: Cow<'a, str>,
    #[serde(borrow, default)]
    dimensions: Dimensions<'a>,
    timestamp: i64,
    value: Statistics,
    #[serde(borrow, default)]
    unit: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Statistics {
    sum: f64,
}

/// A data point's dimensions, in a small vector: one to four of them, and
/// which set they form decides whether the point is counted.
#[derive(Default)]
struct Dimensions<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Dimensions<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Pairs<'a> {
            type Value = Dimensions<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of dimension names and string values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(2).min(8));
                while let Some((k, v)) = map.next_entry::<Cow<'a, str>, Cow<'a, str>>()? {
                    if pairs.len() == 30 {
                        // CloudWatch allows 30 dimensions a metric.
                        return Err(serde::de::Error::custom("more than 30 dimensions"));
                    }
                    pairs.push((k, v));
                }
                Ok(Dimensions(pairs))
            }
        }
        deserializer.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

impl Dimensions<'_> {
    /// The value of `name` when the dimensions are exactly `names`: a
    /// metric is published per several sets (an API, and per stage), and
    /// only the widest one may be counted, or a request counts twice.
    fn exactly(&self, names: &[&str]) -> Option<&str> {
        if self.0.len() != names.len() || !names.iter().all(|n| self.get(n).is_some()) {
            return None;
        }
        self.get(names[0])
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// What Purser prices from a metric, and how its sum becomes a quantity.
struct Priced {
    service: Service,
    usage_type: String,
    unit: Unit,
    resource: String,
    /// The metric's own unit, as CloudWatch names it.
    metric_unit: &'static str,
    divisor: Decimal,
}

/// Which metrics cost money, per the services' pricing pages:
///
/// - Bedrock: `InputTokenCount` / `OutputTokenCount` by `ModelId`, per 1,000.
/// - NAT gateway: data processed is billed in both directions; the bytes it
///   sent on (`BytesOutToDestination` out, `BytesOutToSource` back) count
///   each byte once. Hours are not in the stream.
/// - API Gateway: `Count` by `ApiName` (REST) or `ApiId` (HTTP).
/// - DynamoDB: `Consumed{Read,Write}CapacityUnits` by table and by global
///   secondary index (billed on their own), priced as on-demand request units.
/// - Step Functions: standard workflows bill state transitions, which only
///   the account-wide `ConsumedCapacity` with `ServiceMetric=StateTransition`
///   counts (`ExecutionsStarted` counts executions, not transitions).
fn classify(line: &Line<'_>) -> Result<Option<Priced>, UsageError> {
    let dims = &line.dimensions;
    let priced = |service, usage_type: String, unit, resource: &str, metric_unit, divisor| {
        Ok(Some(Priced {
            service,
            usage_type,
            unit,
            resource: check_name("dimensions", resource)?.to_string(),
            metric_unit,
            divisor,
        }))
    };
    let one = Decimal::ONE;
    match (line.namespace.as_ref(), line.metric_name.as_ref()) {
        ("AWS/Bedrock", m @ ("InputTokenCount" | "OutputTokenCount")) => {
            match dims.exactly(&["ModelId"]) {
                Some(model) => priced(
                    Service::Bedrock,
                    bedrock_usage_type(model, m == "OutputTokenCount"),
                    Unit::ThousandTokens,
                    model,
                    "Count",
                    Decimal::from(1000),
                ),
                None => Ok(None),
            }
        }
        ("AWS/NATGateway", "BytesOutToDestination" | "BytesOutToSource") => {
            match dims.exactly(&["NatGatewayId"]) {
                Some(id) => priced(
                    Service::NatGateway,
                    NAT_GATEWAY_BYTES.into(),
                    Unit::Gb,
                    id,
                    "Bytes",
                    BYTES_PER_GB,
                ),
                None => Ok(None),
            }
        }
        ("AWS/ApiGateway", "Count") => {
            let (usage_type, api) = match (dims.exactly(&["ApiName"]), dims.exactly(&["ApiId"])) {
                (Some(name), _) => (API_GATEWAY_REST_REQUEST, name),
                (_, Some(id)) => (API_GATEWAY_HTTP_REQUEST, id),
                _ => return Ok(None),
            };
            priced(
                Service::ApiGateway,
                usage_type.into(),
                Unit::Request,
                api,
                "Count",
                one,
            )
        }
        ("AWS/DynamoDB", m @ ("ConsumedReadCapacityUnits" | "ConsumedWriteCapacityUnits")) => {
            let usage_type = if m == "ConsumedReadCapacityUnits" {
                DYNAMODB_READ_REQUEST_UNITS
            } else {
                DYNAMODB_WRITE_REQUEST_UNITS
            };
            let resource = match (
                dims.exactly(&["TableName"]),
                dims.exactly(&["TableName", "GlobalSecondaryIndexName"]),
            ) {
                (Some(table), _) => table.to_string(),
                (_, Some(table)) => {
                    let index = dims.get("GlobalSecondaryIndexName").unwrap_or_default();
                    format!("{table}/index/{index}")
                }
                _ => return Ok(None),
            };
            priced(
                Service::Dynamodb,
                usage_type.into(),
                Unit::RequestUnit,
                &resource,
                "Count",
                one,
            )
        }
        ("AWS/States", "ConsumedCapacity") => match dims.exactly(&["ServiceMetric"]) {
            Some("StateTransition") => priced(
                Service::StepFunctions,
                STEP_FUNCTIONS_STATE_TRANSITION.into(),
                Unit::StateTransition,
                "*",
                "Count",
                one,
            ),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// One line of a CloudWatch metric stream (JSON output format) as usage
/// over its minute, unpriced; `Ok(None)` for a metric Purser does not price
/// or a minute with nothing in it. Every line's account, region and
/// timestamp are checked, priced metric or not.
pub fn parse_metric_line(line: &str) -> Result<Option<Usage>, UsageError> {
    let parsed: Line<'_> = serde_json::from_str(line).map_err(|e| diagnose(line, &e))?;
    check_account(&parsed.account_id)?;
    check_region(&parsed.region)?;
    if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&parsed.timestamp) {
        return Err(bad(
            "timestamp",
            format!(
                "{} is not epoch milliseconds from 2006 to 2100",
                parsed.timestamp
            ),
        ));
    }
    let sum = parsed.value.sum;
    // NaN is in no range, infinity beyond the bound.
    if !(0.0..=MAX_METRIC_SUM).contains(&sum) {
        return Err(bad(
            "value.sum",
            format!("{sum} is not between 0 and {MAX_METRIC_SUM}"),
        ));
    }
    let Some(priced) = classify(&parsed)? else {
        return Ok(None);
    };
    let unit = parsed.unit.as_deref().unwrap_or("None");
    if unit != priced.metric_unit {
        return Err(bad(
            "unit",
            format!(
                "{unit:?} for {}, not {:?}",
                parsed.metric_name, priced.metric_unit
            ),
        ));
    }
    if sum == 0.0 {
        return Ok(None);
    }
    let quantity = Decimal::from_f64(sum)
        .ok_or_else(|| bad("value.sum", format!("{sum} is not a decimal")))?
        / priced.divisor;
    let start = DateTime::from_timestamp_millis(parsed.timestamp)
        .ok_or_else(|| bad("timestamp", "is out of range"))?;
    Ok(Some(Usage {
        account_id: parsed.account_id.into_owned(),
        team: None,
        region: parsed.region.into_owned(),
        service: priced.service,
        resource: priced.resource,
        usage_type: priced.usage_type,
        unit: priced.unit,
        quantity,
        cost: None,
        start,
        end: start + METRIC_PERIOD,
        source: UsageSource::MetricStream,
    }))
}

/// Every priced data point of a metric stream object (newline-delimited
/// JSON), in order; blank lines and unpriced metrics are skipped, and an
/// error names its line. The caller decides whether one bad line refuses
/// the object.
pub fn parse_metric_stream(text: &str) -> impl Iterator<Item = Result<Usage, UsageError>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match parse_metric_line(l) {
            Ok(usage) => usage.map(Ok),
            Err(e) => Some(Err(UsageError {
                line: Some(i + 1),
                ..e
            })),
        })
}

/// Names the field of a line serde refused (its own message gives only a
/// column): reparsed loosely, only on the error path.
fn diagnose(line: &str, error: &serde_json::Error) -> UsageError {
    use serde_json::Value;
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return bad("line", format!("not JSON: {error}"));
    };
    let Some(object) = value.as_object() else {
        return bad("line", "not a JSON object");
    };
    for field in ["account_id", "region", "namespace", "metric_name"] {
        match object.get(field) {
            Some(Value::String(_)) => {}
            Some(_) => return bad(field, "must be a string"),
            None => return bad(field, "is missing"),
        }
    }
    match object.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(d)) if d.values().all(Value::is_string) && d.len() <= 30 => {}
        Some(_) => return bad("dimensions", "must be an object of up to 30 string values"),
    }
    match object.get("timestamp") {
        Some(t) if t.is_i64() => {}
        Some(_) => return bad("timestamp", "must be whole epoch milliseconds"),
        None => return bad("timestamp", "is missing"),
    }
    match object.get("value").map(|v| v.get("sum")) {
        Some(Some(s)) if s.is_number() => {}
        Some(_) => return bad("value.sum", "must be a number"),
        None => return bad("value", "is missing"),
    }
    match object.get("unit") {
        None | Some(Value::Null | Value::String(_)) => bad("line", error.to_string()),
        Some(_) => bad("unit", "must be a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spend::Architecture;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const ACCOUNT: &str = "210987654321";

    fn line(namespace: &str, metric: &str, dims: &str, sum: f64, unit: &str) -> String {
        format!(
            r#"{{"metric_stream_name":"purser","account_id":"{ACCOUNT}","region":"us-east-1","namespace":"{namespace}","metric_name":"{metric}","dimensions":{dims},"timestamp":1795000000000,"value":{{"max":1.0,"min":0.0,"sum":{sum},"count":3.0}},"unit":"{unit}"}}"#
        )
    }

    fn parse_one(l: &str) -> Usage {
        parse_metric_line(l).unwrap().expect("a priced metric")
    }

    #[test]
    fn the_builtin_table_prices_every_streamed_service_in_us_east_1() {
        let prices = UsagePrices::builtin();
        let lines = [
            line(
                "AWS/Bedrock",
                "InputTokenCount",
                r#"{"ModelId":"anthropic.claude-3-5-sonnet-20240620-v1:0"}"#,
                2000.0,
                "Count",
            ),
            line(
                "AWS/Bedrock",
                "OutputTokenCount",
                r#"{"ModelId":"anthropic.claude-3-haiku-20240307-v1:0"}"#,
                1000.0,
                "Count",
            ),
            line(
                "AWS/NATGateway",
                "BytesOutToDestination",
                r#"{"NatGatewayId":"nat-0123"}"#,
                1073741824.0,
                "Bytes",
            ),
            line(
                "AWS/ApiGateway",
                "Count",
                r#"{"ApiName":"orders"}"#,
                1000000.0,
                "Count",
            ),
            line(
                "AWS/ApiGateway",
                "Count",
                r#"{"ApiId":"a1b2c3"}"#,
                1000000.0,
                "Count",
            ),
            line(
                "AWS/DynamoDB",
                "ConsumedWriteCapacityUnits",
                r#"{"TableName":"t"}"#,
                1000000.0,
                "Count",
            ),
            line(
                "AWS/DynamoDB",
                "ConsumedReadCapacityUnits",
                r#"{"TableName":"t","GlobalSecondaryIndexName":"g"}"#,
                1000000.0,
                "Count",
            ),
            line(
                "AWS/States",
                "ConsumedCapacity",
                r#"{"ServiceMetric":"StateTransition"}"#,
                1000.0,
                "Count",
            ),
        ];
        let costs: Vec<Decimal> = lines
            .iter()
            .map(|l| parse_one(l).priced(&prices).cost.expect("priced"))
            .collect();
        // $3 / $15 per million tokens; $0.045 / GB; $3.50 and $1 per million
        // requests; $0.625 per million WRU (since 2024-11-01); $0.125 per
        // million RRU; $0.025 per 1,000 transitions.
        assert_eq!(
            costs,
            [
                d("0.006"),
                d("0.00125"),
                d("0.045"),
                d("3.5"),
                d("1"),
                d("0.625"),
                d("0.125"),
                d("0.025")
            ]
        );
        let gsi = parse_one(&lines[6]);
        assert_eq!(gsi.resource, "t/index/g");
        assert_eq!(gsi.start, at("2026-11-18T11:06:40Z"));
        assert_eq!(gsi.end - gsi.start, Duration::seconds(60));
        assert_eq!(gsi.source, UsageSource::MetricStream);
    }

    #[test]
    fn no_price_leaves_the_cost_unset_not_zero() {
        let prices = UsagePrices::builtin();
        let model = line(
            "AWS/Bedrock",
            "InputTokenCount",
            r#"{"ModelId":"acme.unknown-v1"}"#,
            5000.0,
            "Count",
        );
        let usage = parse_one(&model).priced(&prices);
        assert_eq!(usage.cost, None);
        assert_eq!(usage.quantity, d("5"));
        let mut far = parse_one(&line(
            "AWS/ApiGateway",
            "Count",
            r#"{"ApiName":"a"}"#,
            1.0,
            "Count",
        ));
        far.region = "eu-west-1".into();
        assert!(matches!(
            prices.cost(&far),
            Err(UsagePriceError::Missing { .. })
        ));
        // A price in another unit never applies.
        far.region = "us-east-1".into();
        far.unit = Unit::Gb;
        assert!(matches!(
            prices.cost(&far),
            Err(UsagePriceError::UnitMismatch { .. })
        ));
        assert_eq!(far.priced(&prices).cost, None);
    }

    #[test]
    fn effective_dates_pick_the_version_in_force() {
        let prices = UsagePrices::parse(r#"{"usage": [
            {"service": "dynamodb", "region": "us-east-1", "usage_type": "WriteRequestUnits", "unit": "request-unit", "price": "0.00000125", "currency": "USD", "effective": "2018-11-28"},
            {"service": "dynamodb", "region": "us-east-1", "usage_type": "WriteRequestUnits", "unit": "request-unit", "price": "0.000000625", "currency": "USD", "effective": "2024-11-01"},
            {"service": "dynamodb", "region": "*", "usage_type": "WriteRequestUnits", "unit": "request-unit", "price": "0.000001", "currency": "USD", "effective": "2018-11-28"}
        ]}"#).unwrap();
        let on = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let price = |region, day| {
            prices
                .price(Service::Dynamodb, region, "WriteRequestUnits", on(day))
                .map(|p| p.price)
        };
        assert_eq!(price("us-east-1", "2024-10-31"), Some(d("0.00000125")));
        assert_eq!(price("us-east-1", "2024-11-01"), Some(d("0.000000625")));
        assert_eq!(price("eu-west-1", "2025-01-01"), Some(d("0.000001")));
        assert_eq!(price("us-east-1", "2018-11-27"), None);
        // The builtin table carries both versions too.
        let builtin = UsagePrices::builtin();
        let write = builtin.price(
            Service::Dynamodb,
            "us-east-1",
            "WriteRequestUnits",
            on("2024-06-01"),
        );
        assert_eq!(write.map(|p| p.price), Some(d("0.00000125")));
    }

    #[test]
    fn a_table_with_a_bad_entry_is_refused() {
        let entry = |price: &str, currency: &str| {
            format!(
                r#"{{"service": "ec2", "region": "r", "usage_type": "u", "unit": "hour", "price": "{price}", "currency": "{currency}", "effective": "2025-01-01"}}"#
            )
        };
        let table = |entries: &[String]| {
            UsagePrices::parse(&format!(r#"{{"usage": [{}]}}"#, entries.join(",")))
        };
        assert!(table(&[entry("1", "USD")]).is_ok());
        assert!(table(&[entry("-1", "USD")]).is_err());
        assert!(table(&[entry("100000", "USD")]).is_err());
        assert!(table(&[entry("1", "EUR")]).is_err());
        assert!(table(&[entry("1", "USD"), entry("2", "USD")]).is_err());
        assert!(UsagePrices::parse(r#"{"usage": [{"service": "ec2"}]}"#).is_err());
        assert!(
            UsagePrices::parse(r#"{"lambda": []}"#)
                .unwrap()
                .entries()
                .is_empty()
        );
    }

    #[test]
    fn metrics_purser_does_not_price_are_skipped() {
        for l in [
            line(
                "AWS/EC2",
                "CPUUtilization",
                r#"{"InstanceId":"i-1"}"#,
                5.0,
                "Percent",
            ),
            line(
                "AWS/States",
                "ExecutionsStarted",
                r#"{"StateMachineArn":"arn"}"#,
                5.0,
                "Count",
            ),
            // Per stage and method: the API's own point counts them already.
            line(
                "AWS/ApiGateway",
                "Count",
                r#"{"ApiName":"a","Stage":"prod"}"#,
                5.0,
                "Count",
            ),
            // Across all models: each model's point counts them already.
            line("AWS/Bedrock", "InputTokenCount", "{}", 5.0, "Count"),
            line(
                "AWS/States",
                "ConsumedCapacity",
                r#"{"APIName":"StartExecution"}"#,
                5.0,
                "Count",
            ),
            // A quiet minute.
            line(
                "AWS/DynamoDB",
                "ConsumedReadCapacityUnits",
                r#"{"TableName":"t"}"#,
                0.0,
                "Count",
            ),
        ] {
            assert_eq!(parse_metric_line(&l).unwrap(), None, "{l}");
        }
    }

    #[test]
    fn malformed_lines_are_refused_naming_the_field() {
        let good = line(
            "AWS/ApiGateway",
            "Count",
            r#"{"ApiName":"a"}"#,
            5.0,
            "Count",
        );
        let field = |l: &str| parse_metric_line(l).unwrap_err().field;
        // The account as a number, or not 12 digits.
        assert_eq!(
            field(&good.replace(r#""210987654321""#, "210987654321")),
            "account_id"
        );
        assert_eq!(
            field(&good.replace("210987654321", "21098765432x")),
            "account_id"
        );
        assert_eq!(field(&good.replace("210987654321", "1234")), "account_id");
        assert_eq!(
            field(&good.replace(r#""us-east-1""#, r#""US EAST""#)),
            "region"
        );
        assert_eq!(field(&good.replace("1795000000000", "-5")), "timestamp");
        assert_eq!(
            field(&good.replace("1795000000000", "\"soon\"")),
            "timestamp"
        );
        assert_eq!(
            field(&good.replace(r#""sum":5"#, r#""sum":-5"#)),
            "value.sum"
        );
        assert_eq!(
            field(&good.replace(r#""sum":5"#, r#""sum":1e20"#)),
            "value.sum"
        );
        assert_eq!(
            field(&good.replace(r#""sum":5"#, r#""sum":"5""#)),
            "value.sum"
        );
        assert_eq!(
            field(&good.replace(r#""ApiName":"a""#, r#""ApiName":7"#)),
            "dimensions"
        );
        assert_eq!(
            field(&good.replace(r#""unit":"Count""#, r#""unit":"Bytes""#)),
            "unit"
        );
        assert_eq!(
            field(&good.replace(r#""namespace":"AWS/ApiGateway","#, "")),
            "namespace"
        );
        assert_eq!(field("{not json"), "line");
        assert_eq!(field("[1]"), "line");
        // An unpriced metric's line is checked all the same.
        let ec2 = line("AWS/EC2", "CPUUtilization", "{}", 1.0, "Percent");
        assert_eq!(field(&ec2.replace("210987654321", "1")), "account_id");
    }

    #[test]
    fn a_stream_names_the_line_that_is_wrong() {
        let good = line(
            "AWS/ApiGateway",
            "Count",
            r#"{"ApiName":"a"}"#,
            5.0,
            "Count",
        );
        let skipped = line("AWS/EC2", "CPUUtilization", "{}", 1.0, "Percent");
        let text = format!(
            "{good}\n\n{skipped}\n{}\n{good}\n",
            good.replace("210987654321", "x")
        );
        let results: Vec<_> = parse_metric_stream(&text).collect();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        let e = results[1].clone().unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(4), "account_id"));
        assert!(e.to_string().starts_with("line 4: account_id: "));
    }

    #[test]
    fn an_ec2_interval_is_billed_per_second_with_a_minute_minimum() {
        let prices = UsagePrices::builtin();
        let start = at("2026-11-21T10:00:00Z");
        let run = |secs: i64| {
            Interval::run(
                ACCOUNT,
                "us-east-1",
                "i-0abc",
                start,
                start + Duration::seconds(secs),
            )
        };
        let hour = ec2_instance(&run(3600), "g5.xlarge")
            .unwrap()
            .priced(&prices);
        assert_eq!(
            (hour.usage_type.as_str(), hour.unit),
            ("BoxUsage:g5.xlarge", Unit::Hour)
        );
        assert_eq!(hour.cost, Some(d("1.006")));
        assert_eq!(hour.source, UsageSource::Ec2State);
        // 10 s is billed as 60 s; 90.2 s as 91 s.
        let short = ec2_instance(&run(10), "g5.xlarge").unwrap();
        assert_eq!(short.quantity, Decimal::from(60) / Decimal::from(3600));
        let odd = Interval::run(
            ACCOUNT,
            "us-east-1",
            "i-0abc",
            start,
            start + Duration::milliseconds(90_200),
        );
        assert_eq!(
            ec2_instance(&odd, "t3.micro").unwrap().quantity,
            Decimal::from(91) / Decimal::from(3600)
        );
        // A later slice of a long run has no minimum of its own.
        let slice = Interval {
            start: start + Duration::seconds(600),
            end: start + Duration::seconds(610),
            ..run(0)
        };
        assert_eq!(
            ec2_instance(&slice, "t3.micro").unwrap().quantity,
            Decimal::from(10) / Decimal::from(3600)
        );
        // Unknown type: usage, unpriced.
        assert_eq!(
            ec2_instance(&run(60), "zz9.huge")
                .unwrap()
                .priced(&prices)
                .cost,
            None
        );
        assert_eq!(
            ec2_instance(&run(60), "g5 xlarge").unwrap_err().field,
            "instance_type"
        );
        assert_eq!(
            ec2_instance(&run(-1), "g5.xlarge").unwrap_err().field,
            "end"
        );
        assert_eq!(
            ec2_instance(&run(40 * 86_400), "g5.xlarge")
                .unwrap_err()
                .field,
            "end"
        );
        let foreign = Interval {
            account_id: "12".into(),
            ..run(5)
        };
        assert_eq!(
            ec2_instance(&foreign, "g5.xlarge").unwrap_err().field,
            "account_id"
        );
    }

    #[test]
    fn a_fargate_task_costs_its_vcpus_and_its_memory() {
        let prices = UsagePrices::builtin();
        let start = at("2026-11-21T10:00:00Z");
        let task = Interval::run(
            ACCOUNT,
            "us-east-1",
            "arn:aws:ecs:us-east-1:210987654321:task/c/1",
            start,
            start + Duration::hours(1),
        );
        let [cpu, mem] = fargate_task(&task, Architecture::X86_64, 1024, 2048)
            .unwrap()
            .map(|u| u.priced(&prices));
        assert_eq!(
            (cpu.unit, cpu.quantity, cpu.cost),
            (Unit::VcpuHour, d("1"), Some(d("0.04048")))
        );
        assert_eq!(
            (mem.unit, mem.quantity, mem.cost),
            (Unit::GbHour, d("2"), Some(d("0.00889")))
        );
        let [cpu, _] = fargate_task(&task, Architecture::Arm64, 512, 1024)
            .unwrap()
            .map(|u| u.priced(&prices));
        assert_eq!(cpu.cost, Some(d("0.01619")));
        // 20 s is billed as a minute.
        let short = Interval {
            end: start + Duration::seconds(20),
            ..task.clone()
        };
        let [cpu, _] = fargate_task(&short, Architecture::X86_64, 1024, 2048).unwrap();
        assert_eq!(cpu.quantity, Decimal::from(60) / Decimal::from(3600));
        assert_eq!(
            fargate_task(&task, Architecture::X86_64, 0, 2048)
                .unwrap_err()
                .field,
            "cpu"
        );
        assert_eq!(
            fargate_task(&task, Architecture::X86_64, 1024, 1 << 30)
                .unwrap_err()
                .field,
            "memory"
        );
    }

    #[test]
    fn sagemaker_instances_are_billed_by_use_and_count() {
        let prices = UsagePrices::builtin();
        let start = at("2026-11-21T10:00:00Z");
        let job = Interval::run(
            ACCOUNT,
            "us-east-1",
            "train-1",
            start,
            start + Duration::minutes(30),
        );
        let usage = sagemaker_instances(&job, SagemakerUse::Training, "ml.p3.2xlarge", 2)
            .unwrap()
            .priced(&prices);
        assert_eq!(usage.usage_type, "Train:ml.p3.2xlarge");
        assert_eq!(usage.cost, Some(d("3.825")));
        let endpoint = sagemaker_instances(&job, SagemakerUse::Hosting, "ml.m5.xlarge", 1)
            .unwrap()
            .priced(&prices);
        assert_eq!(endpoint.cost, Some(d("0.115")));
        assert_eq!(
            sagemaker_instances(&job, SagemakerUse::Hosting, "m5.xlarge", 1)
                .unwrap_err()
                .field,
            "instance_type"
        );
        assert_eq!(
            sagemaker_instances(&job, SagemakerUse::Hosting, "ml.m5.xlarge", 0)
                .unwrap_err()
                .field,
            "count"
        );
    }

    #[test]
    fn usage_serialises_for_the_lake() {
        let usage = parse_one(&line(
            "AWS/ApiGateway",
            "Count",
            r#"{"ApiId":"a1"}"#,
            3.0,
            "Count",
        ));
        let json = serde_json::to_value(&usage).unwrap();
        assert_eq!(json["service"], "api_gateway");
        assert_eq!(json["unit"], "request");
        assert_eq!(json["quantity"], "3");
        assert_eq!(json["cost"], serde_json::Value::Null);
        assert_eq!(json["source"], "metric_stream");
        let back: Usage = serde_json::from_value(json).unwrap();
        assert_eq!(back, usage);
    }
}
