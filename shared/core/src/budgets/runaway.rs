//! The runaway guard: spend-rate rules, a team's (its budget's `runaway`)
//! or a lease template's (`runaway`), weighed on every change of a team's
//! spend against the hourly counters the recorder keeps per account and
//! per resource (`SpendCounters::hourly_spend`).
//!
//! A rule fires when an account's (or one resource's) spend in a clock hour
//! goes over `usd_per_hour`, or over `median_multiple` times its trailing
//! 7-day hourly median (and at least `at_least_usd`). It fires once per
//! episode: an hour over the limit right after another one continues the
//! episode of that one. Its actions: `notify` (`SpendRateExceeded`),
//! `freeze` (held until an admin releases the account), `throttle-lambdas`
//! (for the episode) and `stop-resource` (the EC2 instances and SageMaker
//! endpoints that spent, through the member role).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, Duration, DurationRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::accounts::reject_unknown;
use crate::ports::{HourlySpend, MemberResource, RateAdd, Stoppable};
use crate::spend::from_nanos;
use crate::validation::{ValidationError, invalid};

/// At most this many rules a team or template.
pub const MAX_RULES: usize = 10;
/// The trailing window of the median.
pub const MEDIAN_HOURS: i64 = 7 * 24;
/// The floor of a median rule when it names none: a week of idle hours
/// has a median of 0, and any spend is more than N times 0.
pub const DEFAULT_AT_LEAST_USD: Decimal = Decimal::ONE;
/// How far back a late report still opens an episode: the current hour
/// and the one before.
pub const HOURS_WEIGHED: i64 = 2;

/// What a rule weighs: each account, or each resource of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateScope {
    Account,
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunawayAction {
    Notify,
    Freeze,
    ThrottleLambdas,
    StopResource,
}

impl RunawayAction {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "notify" => Some(Self::Notify),
            "freeze" => Some(Self::Freeze),
            "throttle-lambdas" => Some(Self::ThrottleLambdas),
            "stop-resource" => Some(Self::StopResource),
            _ => None,
        }
    }
}

/// One spend-rate rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunawayRule {
    pub per: RateScope,
    /// More than this many USD in an hour.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub usd_per_hour: Option<Decimal>,
    /// More than this many times the trailing 7-day hourly median.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub median_multiple: Option<Decimal>,
    /// The median part fires only above this many USD in the hour.
    #[serde(with = "rust_decimal::serde::str")]
    pub at_least_usd: Decimal,
    pub actions: Vec<RunawayAction>,
}

fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

fn bounded(
    fields: &Map<String, Value>,
    name: &str,
    field: &str,
    min: Decimal,
    max: Decimal,
) -> Result<Option<Decimal>, ValidationError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => decimal(v)
            .filter(|d| *d >= min && *d <= max && d.scale() <= 6)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    Some(field),
                    &format!("{name} must be a decimal from {min} to {max} (a string like \"20\" or a number)"),
                )
            }),
    }
}

impl RunawayRule {
    /// The `runaway` list of a budget or template, validated; `field` is
    /// the field as errors name it (`runaway`).
    pub fn parse_list(value: Option<&Value>, field: &str) -> Result<Vec<Self>, ValidationError> {
        let items = match value {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(invalid(
                    Some(field),
                    &format!(
                        "{field} must be a list of rules, like [{{\"per\": \"resource\", \"usd_per_hour\": \"20\", \"actions\": [\"notify\", \"stop-resource\"]}}]"
                    ),
                ));
            }
        };
        if items.len() > MAX_RULES {
            return Err(invalid(
                Some(field),
                &format!("{field} holds at most {MAX_RULES} rules"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Self::parse(item, &format!("{field}[{i}]")))
            .collect()
    }

    fn parse(value: &Value, field: &str) -> Result<Self, ValidationError> {
        let Some(fields) = value.as_object() else {
            return Err(invalid(Some(field), "a rule must be a JSON object"));
        };
        reject_unknown(
            fields,
            &[
                "per",
                "usd_per_hour",
                "median_multiple",
                "at_least_usd",
                "actions",
            ],
        )
        .map_err(|e| {
            let unknown = e.field.unwrap_or_default();
            invalid(Some(&format!("{field}.{unknown}")), &e.message)
        })?;
        let per = match fields.get("per").and_then(Value::as_str) {
            Some("account") => RateScope::Account,
            Some("resource") => RateScope::Resource,
            _ => {
                return Err(invalid(
                    Some(&format!("{field}.per")),
                    "per must be \"account\" or \"resource\" (a function, instance, model or endpoint)",
                ));
            }
        };
        let usd_per_hour = bounded(
            fields,
            "usd_per_hour",
            &format!("{field}.usd_per_hour"),
            Decimal::new(1, 2),
            Decimal::from(1_000_000),
        )?;
        let median_multiple = bounded(
            fields,
            "median_multiple",
            &format!("{field}.median_multiple"),
            Decimal::new(11, 1),
            Decimal::from(1000),
        )?;
        if usd_per_hour.is_none() && median_multiple.is_none() {
            return Err(invalid(
                Some(field),
                "a rule needs usd_per_hour, median_multiple or both",
            ));
        }
        let at_least_usd = bounded(
            fields,
            "at_least_usd",
            &format!("{field}.at_least_usd"),
            Decimal::new(1, 2),
            Decimal::from(1_000_000),
        )?
        .unwrap_or(DEFAULT_AT_LEAST_USD);
        let actions_field = format!("{field}.actions");
        let Some(list) = fields.get("actions").and_then(Value::as_array) else {
            return Err(invalid(
                Some(&actions_field),
                "actions must be a non-empty list of notify, freeze, throttle-lambdas, stop-resource",
            ));
        };
        let mut actions = Vec::new();
        for item in list {
            let action = item
                .as_str()
                .and_then(RunawayAction::parse)
                .ok_or_else(|| {
                    invalid(
                        Some(&actions_field),
                        &format!("{item} is not an action; the actions are notify, freeze, throttle-lambdas, stop-resource"),
                    )
                })?;
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        if actions.is_empty() {
            return Err(invalid(
                Some(&actions_field),
                "actions must name at least one action",
            ));
        }
        Ok(Self {
            per,
            usd_per_hour,
            median_multiple,
            at_least_usd,
            actions,
        })
    }

    pub fn to_view(&self) -> Value {
        json!({
            "per": self.per,
            "usd_per_hour": self.usd_per_hour.map(|d| d.normalize().to_string()),
            "median_multiple": self.median_multiple.map(|d| d.normalize().to_string()),
            "at_least_usd": self.at_least_usd.normalize().to_string(),
            "actions": self.actions,
        })
    }

    /// Whether the rule needs the trailing median.
    pub fn uses_median(&self) -> bool {
        self.median_multiple.is_some()
    }

    /// The spend in an hour above which the rule fires, given the trailing
    /// median (when the rule uses one): the lower of its two limits.
    pub fn limit(&self, median: Option<Decimal>) -> Option<Decimal> {
        let by_median = match (self.median_multiple, median) {
            (Some(n), Some(m)) => Some((n * m).max(self.at_least_usd)),
            _ => None,
        };
        match (self.usd_per_hour, by_median) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Where a rule comes from, which names its episodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// The team's budget, at a revision.
    Team { revision: u64 },
    /// A lease template's version.
    Template { name: String, version: u64 },
}

impl RuleOrigin {
    /// A stable name for rule `index` of this origin.
    pub fn rule_id(&self, index: usize) -> String {
        match self {
            Self::Team { revision } => format!("team-r{revision}-{index}"),
            Self::Template { name, version } => format!("template-{name}-v{version}-{index}"),
        }
    }

    pub fn to_view(&self) -> Value {
        match self {
            Self::Team { revision } => json!({"kind": "team", "revision": revision}),
            Self::Template { name, version } => {
                json!({"kind": "template", "name": name, "version": version})
            }
        }
    }
}

/// The whole hour `at` falls in.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1)).unwrap_or(at)
}

/// The median of `resource`'s hourly spend (`None`: the account's own) over
/// the [`MEDIAN_HOURS`] hours before `hour`, an hour with no counter
/// counting as 0.
pub fn trailing_median(
    history: &[HourlySpend],
    resource: Option<&str>,
    hour: DateTime<Utc>,
) -> Decimal {
    let from = hour - Duration::hours(MEDIAN_HOURS);
    let mut values: Vec<i64> = history
        .iter()
        .filter(|h| h.resource.as_deref() == resource && h.hour >= from && h.hour < hour)
        .map(|h| h.nanos)
        .collect();
    let hours = MEDIAN_HOURS as usize;
    if values.len() < hours {
        values.resize(hours, 0);
    }
    values.sort_unstable();
    let mid = hours / 2;
    // An even count: the mean of the two middle values.
    let m = (i128::from(values[mid - 1]) + i128::from(values[mid])) / 2;
    from_nanos(i64::try_from(m).unwrap_or(i64::MAX))
}

/// A resource key as the recorder forms it: `<service>:<region>:<resource>`.
pub fn resource_key(service: &str, region: &str, resource: &str) -> String {
    let mut key = format!("{service}:{region}:{resource}");
    if key.len() > crate::ports::MAX_RATE_RESOURCE {
        let mut end = crate::ports::MAX_RATE_RESOURCE;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

/// What `stop-resource` can stop of a resource key: an EC2 instance
/// (`ec2:<region>:i-…`) or a SageMaker endpoint (`sagemaker:<region>:` and
/// its ARN, `…:endpoint/<name>`). Others (functions, models, tables, NAT
/// gateways, training jobs) are not stopped: a freeze or a throttle is.
pub fn stoppable(account_id: &str, key: &str) -> Option<MemberResource> {
    let mut parts = key.splitn(3, ':');
    let (service, region, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let resource = match service {
        "ec2" if resource.starts_with("i-") => Stoppable::Ec2Instance {
            instance_id: resource.to_string(),
        },
        "sagemaker" => {
            let (_, name) = resource.split_once(":endpoint/")?;
            Stoppable::SagemakerEndpoint {
                name: name.to_string(),
            }
        }
        _ => return None,
    };
    Some(MemberResource {
        account_id: account_id.to_string(),
        region: region.to_string(),
        resource,
    })
}

/// `nanos` spent evenly from `start` to `end`, split at the clock hours it
/// spans, each part at the start of its hour (or at `start`): a running
/// resource's slice that crosses an hour counts in both.
pub fn by_hour(start: DateTime<Utc>, end: DateTime<Utc>, nanos: i64) -> Vec<(DateTime<Utc>, i64)> {
    let whole = (end - start).num_milliseconds();
    if whole <= 0 || hour_of(start) == hour_of(end - Duration::milliseconds(1)) {
        return vec![(start, nanos)];
    }
    let mut parts = Vec::new();
    let (mut from, mut given) = (start, 0i64);
    while from < end {
        let until = (hour_of(from) + Duration::hours(1)).min(end);
        let share = if until == end {
            nanos - given
        } else {
            let ms = (until - from).num_milliseconds();
            i64::try_from(i128::from(nanos) * i128::from(ms) / i128::from(whole)).unwrap_or(0)
        };
        parts.push((from, share));
        given = given.saturating_add(share);
        from = until;
    }
    parts
}

/// The hourly counters a batch moves: its spend per hour and resource
/// (`spent`: resource key, when, nano-units), for the hours the guard
/// weighs (the current one and the one before, and a few minutes ahead
/// as reports may be; an older hour opens no episode), in at most `room`
/// counters: the costliest resources get their own, the others count for
/// the account only.
pub fn rate_adds(
    account_id: &str,
    now: DateTime<Utc>,
    spent: impl IntoIterator<Item = (String, DateTime<Utc>, i64)>,
    room: usize,
) -> Vec<RateAdd> {
    let first = hour_of(now) - Duration::hours(HOURS_WEIGHED - 1);
    let last = hour_of(now + Duration::minutes(5));
    let mut sums: BTreeMap<(DateTime<Utc>, String), i64> = BTreeMap::new();
    for (resource, at, nanos) in spent {
        let hour = hour_of(at);
        if hour < first || hour > last || nanos <= 0 {
            continue;
        }
        let sum = sums.entry((hour, resource)).or_default();
        *sum = sum.saturating_add(nanos);
    }
    let hours: BTreeSet<DateTime<Utc>> = sums.keys().map(|(h, _)| *h).collect();
    // Each hour takes the account's own counter; what is left, resources.
    let Some(left) = room.checked_sub(hours.len()) else {
        return Vec::new();
    };
    let mut by_cost: Vec<((DateTime<Utc>, String), i64)> = sums.into_iter().collect();
    by_cost.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_cost
        .into_iter()
        .enumerate()
        .map(|(i, ((hour, resource), nanos))| RateAdd {
            account_id: account_id.to_string(),
            hour,
            resource: (i < left).then_some(resource),
            nanos,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Result<Vec<RunawayRule>, ValidationError> {
        RunawayRule::parse_list(Some(&v), "runaway")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn rules_are_validated_field_by_field() {
        let ok = rule(json!([{"per": "resource", "usd_per_hour": "20", "actions": ["notify", "stop-resource"]}])).unwrap();
        assert_eq!(ok[0].per, RateScope::Resource);
        assert_eq!(ok[0].usd_per_hour, Some(Decimal::from(20)));
        assert_eq!(ok[0].at_least_usd, DEFAULT_AT_LEAST_USD);
        let named = |v: Value| rule(v).unwrap_err().field;
        assert_eq!(named(json!({"per": "account"})), Some("runaway".into()));
        assert_eq!(
            named(json!([{"per": "team", "usd_per_hour": 1, "actions": ["notify"]}])),
            Some("runaway[0].per".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "usd_per_hour": -1, "actions": ["notify"]}])),
            Some("runaway[0].usd_per_hour".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "median_multiple": 1, "actions": ["notify"]}])),
            Some("runaway[0].median_multiple".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "actions": ["notify"]}])),
            Some("runaway[0]".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "usd_per_hour": 5, "actions": ["delete"]}])),
            Some("runaway[0].actions".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "usd_per_hour": 5, "actions": []}])),
            Some("runaway[0].actions".into())
        );
        assert_eq!(
            named(json!([{"per": "account", "usd_per_hour": 5, "actions": ["notify"], "x": 1}])),
            Some("runaway[0].x".into())
        );
        let many: Vec<Value> = (0..=MAX_RULES)
            .map(|_| json!({"per": "account", "usd_per_hour": 5, "actions": ["notify"]}))
            .collect();
        assert_eq!(named(Value::Array(many)), Some("runaway".into()));
    }

    #[test]
    fn the_limit_is_the_lower_of_the_rate_and_the_median_times_n_floored() {
        let r = &rule(
            json!([{"per": "account", "usd_per_hour": "50", "median_multiple": "5",
            "at_least_usd": "2", "actions": ["notify"]}]),
        )
        .unwrap()[0];
        assert_eq!(r.limit(Some(Decimal::from(4))), Some(Decimal::from(20)));
        assert_eq!(r.limit(Some(Decimal::from(40))), Some(Decimal::from(50)));
        // An idle week: the floor, not 0.
        assert_eq!(r.limit(Some(Decimal::ZERO)), Some(Decimal::from(2)));
        let rate_only =
            &rule(json!([{"per": "account", "usd_per_hour": "50", "actions": ["notify"]}]))
                .unwrap()[0];
        assert_eq!(rate_only.limit(None), Some(Decimal::from(50)));
    }

    #[test]
    fn the_median_counts_hours_without_spend_as_zero() {
        let hour = at("2026-12-07T12:00:00Z");
        let busy: Vec<HourlySpend> = (1..=100)
            .map(|h| HourlySpend {
                hour: hour - Duration::hours(h),
                resource: None,
                nanos: 3_000_000_000,
            })
            .collect();
        assert_eq!(trailing_median(&busy, None, hour), Decimal::from(3));
        assert_eq!(trailing_median(&busy[..50], None, hour), Decimal::ZERO);
        // Another resource's hours are not this one's.
        assert_eq!(
            trailing_median(&busy, Some("ec2:us-east-1:i-1"), hour),
            Decimal::ZERO
        );
        // The hour itself and hours beyond the week are not counted.
        let late = vec![HourlySpend {
            hour,
            resource: None,
            nanos: 1,
        }];
        assert_eq!(trailing_median(&late, None, hour), Decimal::ZERO);
    }

    #[test]
    fn instances_and_endpoints_are_stoppable_and_nothing_else() {
        let i = stoppable("111111111111", "ec2:us-east-1:i-0abc").unwrap();
        assert_eq!(i.region, "us-east-1");
        assert_eq!(
            i.resource,
            Stoppable::Ec2Instance {
                instance_id: "i-0abc".into()
            }
        );
        let e = stoppable(
            "111111111111",
            "sagemaker:eu-west-1:arn:aws:sagemaker:eu-west-1:111111111111:endpoint/llm",
        )
        .unwrap();
        assert_eq!(
            e.resource,
            Stoppable::SagemakerEndpoint { name: "llm".into() }
        );
        for other in [
            "lambda:us-east-1:fn",
            "bedrock:us-east-1:anthropic.claude",
            "sagemaker:us-east-1:arn:aws:sagemaker:us-east-1:1:training-job/t",
            "ec2:us-east-1:nat-1",
            "ec2",
        ] {
            assert_eq!(stoppable("111111111111", other), None, "{other}");
        }
    }

    #[test]
    fn a_batch_moves_the_recent_hours_and_its_costliest_resources_within_room() {
        let now = at("2026-12-07T12:30:00Z");
        let spent = vec![
            (
                "ec2:us-east-1:i-1".to_string(),
                at("2026-12-07T12:10:00Z"),
                500,
            ),
            (
                "ec2:us-east-1:i-1".to_string(),
                at("2026-12-07T12:20:00Z"),
                500,
            ),
            (
                "lambda:us-east-1:f".to_string(),
                at("2026-12-07T11:59:00Z"),
                10,
            ),
            (
                "lambda:us-east-1:g".to_string(),
                at("2026-12-07T12:01:00Z"),
                5,
            ),
            // Too old to open an episode, and nothing.
            (
                "lambda:us-east-1:f".to_string(),
                at("2026-12-07T10:59:00Z"),
                10,
            ),
            (
                "lambda:us-east-1:f".to_string(),
                at("2026-12-07T12:01:00Z"),
                0,
            ),
        ];
        let adds = rate_adds("111111111111", now, spent.clone(), 99);
        let view: Vec<_> = adds
            .iter()
            .map(|a| (a.hour.format("%H").to_string(), a.resource.clone(), a.nanos))
            .collect();
        assert_eq!(
            view,
            [
                ("12".into(), Some("ec2:us-east-1:i-1".into()), 1000),
                ("11".into(), Some("lambda:us-east-1:f".into()), 10),
                ("12".into(), Some("lambda:us-east-1:g".into()), 5),
            ]
        );
        // Room for the two hours and one resource: the costliest.
        let tight = rate_adds("111111111111", now, spent.clone(), 3);
        let named: Vec<_> = tight.iter().map(|a| a.resource.is_some()).collect();
        assert_eq!(named, [true, false, false]);
        assert_eq!(tight.iter().map(|a| a.nanos).sum::<i64>(), 1015);
        assert!(rate_adds("111111111111", now, spent, 1).is_empty());
    }

    #[test]
    fn a_slice_across_hours_counts_in_each_by_its_time() {
        let parts = by_hour(at("2026-12-07T11:50:00Z"), at("2026-12-07T13:05:00Z"), 750);
        assert_eq!(
            parts,
            [
                (at("2026-12-07T11:50:00Z"), 100),
                (at("2026-12-07T12:00:00Z"), 600),
                (at("2026-12-07T13:00:00Z"), 50),
            ]
        );
        let within = by_hour(at("2026-12-07T11:50:00Z"), at("2026-12-07T12:00:00Z"), 7);
        assert_eq!(within, [(at("2026-12-07T11:50:00Z"), 7)]);
        let instant = by_hour(at("2026-12-07T11:50:00Z"), at("2026-12-07T11:50:00Z"), 7);
        assert_eq!(instant, [(at("2026-12-07T11:50:00Z"), 7)]);
    }

    #[test]
    fn long_resource_keys_are_cut_on_a_character() {
        let key = resource_key("lambda", "us-east-1", &"é".repeat(400));
        assert!(key.len() <= crate::ports::MAX_RATE_RESOURCE);
    }
}
