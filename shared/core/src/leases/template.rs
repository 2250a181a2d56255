//! Lease templates: the kinds of account a platform team hands out (a
//! two-day hackathon sandbox, a month of feature work), each with its
//! lease, budget, permissions, regions and who may use it. Templates are
//! versioned: every change is a new version, and an account keeps the
//! version it was made with.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::accounts::{TeamName, reject_unknown, rfc3339};
use crate::budgets::{Budget, BudgetAction};
use crate::leases::ApprovalPolicy;
use crate::validation::{ValidationError, invalid, is_region};

/// The longest lease a template may allow (as a request without one).
pub const MAX_LEASE_DAYS: u32 = 365;
/// Maximum length of a template's description.
pub const MAX_DESCRIPTION: usize = 512;
/// At most this many regions a template allows.
pub const MAX_REGIONS: usize = 40;

crate::validation::slug_name!(
    /// A template's name: `[a-z0-9-]{2,32}`, like a team's.
    TemplateName,
    "template"
);

/// Which version of which template an account was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: TemplateName,
    pub version: u64,
}

impl TemplateRef {
    pub fn to_view(&self) -> Value {
        json!({"name": self.name, "version": self.version})
    }
}

/// Hours an account cools after its lease by default, before it is lent
/// again: its late charges (CUR lines) land on the team that spent them.
pub const DEFAULT_COOLING_HOURS: u32 = 72;
/// The longest cooling a template may ask for (30 days).
pub const MAX_COOLING_HOURS: u32 = 720;
/// The largest pool a template may keep.
pub const MAX_POOL_SIZE: u32 = 500;

/// What happens to an account when its lease ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseEnd {
    /// Closed (`CloseAccount`, within the organization's closure quota).
    #[default]
    Close,
    /// Cleaned (aws-nuke, two clean passes), cooled and lent again from
    /// the template's pool.
    Recycle,
}

impl LeaseEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Close => "close",
            Self::Recycle => "recycle",
        }
    }
}

fn default_cooling_hours() -> u32 {
    DEFAULT_COOLING_HOURS
}

/// The prefix of the StackSets a template may name as its blueprint.
pub const BLUEPRINT_PREFIX: &str = "purser-";

/// A budget for each account made from a template: the shape of a team's
/// budget (amount, currency, thresholds, actions), validated by the same
/// code. Enforcing it is for the per-account budgets to build on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountBudget {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    pub thresholds: Vec<u32>,
    pub actions: std::collections::BTreeMap<u32, Vec<BudgetAction>>,
}

impl AccountBudget {
    /// `{"amount", "currency", "thresholds", "actions"}`, as a team's
    /// budget takes them; errors name `budget.<field>`.
    pub fn from_json(value: &Value, now: DateTime<Utc>) -> Result<Self, ValidationError> {
        let Some(fields) = value.as_object() else {
            return Err(invalid(
                Some("budget"),
                "budget must be an object like {\"amount\": \"50.00\"}",
            ));
        };
        let nested = |e: ValidationError| ValidationError {
            field: Some(match e.field {
                Some(f) => format!("budget.{f}"),
                None => "budget".into(),
            }),
            message: e.message,
        };
        reject_unknown(fields, &["amount", "currency", "thresholds", "actions"]).map_err(nested)?;
        // A team's budget validates the same fields; the name is a stand-in.
        let stand_in = TeamName::parse("template").expect("a valid team name");
        let budget = Budget::from_json(stand_in, value, now).map_err(nested)?;
        Ok(Self {
            amount: budget.amount,
            currency: budget.currency,
            thresholds: budget.thresholds,
            actions: budget.actions,
        })
    }

    pub fn to_view(&self) -> Value {
        let actions: Map<String, Value> = self
            .actions
            .iter()
            .map(|(t, a)| (t.to_string(), json!(a)))
            .collect();
        json!({
            "amount": self.amount.normalize().to_string(),
            "currency": self.currency,
            "thresholds": self.thresholds,
            "actions": actions,
        })
    }
}

/// A lease template, one version of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseTemplate {
    pub name: TemplateName,
    /// What people read when they choose.
    pub description: String,
    /// The lease of a request that names none.
    pub default_lease_days: u32,
    /// The longest lease, extensions included, granted without approval.
    pub max_lease_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<AccountBudget>,
    pub approval: ApprovalPolicy,
    /// The IAM Identity Center permission set the owner gets (the
    /// deployment's developer set when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_set: Option<String>,
    /// The regions the account may use; any when empty.
    #[serde(default)]
    pub regions: Vec<String>,
    /// A service-managed StackSet, named `purser-…`, of which an instance
    /// is deployed into each account before it is announced ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    /// The teams that may use it; every team when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<TeamName>>,
    /// Close or recycle at lease end (templates stored before it: close).
    #[serde(default)]
    pub lease_end: LeaseEnd,
    /// With `recycle`: hours from a lease's end before its account is lent again.
    #[serde(default = "default_cooling_hours")]
    pub cooling_hours: u32,
    /// With `recycle`: how many accounts the pool keeps; the reaper closes
    /// available accounts above it (within the closure quota).
    #[serde(default)]
    pub pool_size: u32,
    /// Spend-rate rules for each account made from it (the runaway guard).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runaway: Vec<crate::budgets::runaway::RunawayRule>,
    /// 1 for the first version, one more at every change.
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

impl LeaseTemplate {
    /// `PUT /templates/{name}`, validated field by field. The version is
    /// 0 until the service gives it the next one.
    pub fn from_json(
        name: TemplateName,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let Some(fields) = body.as_object() else {
            return Err(invalid(None, "the body must be a JSON object"));
        };
        reject_unknown(
            fields,
            &[
                "description",
                "default_lease_days",
                "max_lease_days",
                "budget",
                "approval",
                "permission_set",
                "regions",
                "blueprint",
                "teams",
                "lease_end",
                "cooling_hours",
                "pool_size",
                "runaway",
            ],
        )?;
        let description = match fields.get("description") {
            Some(Value::String(d)) => d.trim(),
            None | Some(Value::Null) => {
                return Err(invalid(
                    Some("description"),
                    "description is required: say what the template is for",
                ));
            }
            Some(_) => return Err(invalid(Some("description"), "description must be a string")),
        };
        if description.is_empty()
            || description.chars().count() > MAX_DESCRIPTION
            || description.chars().any(char::is_control)
        {
            return Err(invalid(
                Some("description"),
                &format!(
                    "description must be 1 to {MAX_DESCRIPTION} characters without control characters"
                ),
            ));
        }
        let days = |field: &str| -> Result<Option<u32>, ValidationError> {
            match fields.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|d| (1..=u64::from(MAX_LEASE_DAYS)).contains(d))
                    .map(|d| Some(d as u32))
                    .ok_or_else(|| {
                        invalid(
                            Some(field),
                            &format!(
                                "{field} must be a whole number of days from 1 to {MAX_LEASE_DAYS}"
                            ),
                        )
                    }),
            }
        };
        let default_lease_days = days("default_lease_days")?
            .ok_or_else(|| invalid(Some("default_lease_days"), "default_lease_days is required"))?;
        let max_lease_days = days("max_lease_days")?.unwrap_or(default_lease_days);
        if max_lease_days < default_lease_days {
            return Err(invalid(
                Some("max_lease_days"),
                &format!(
                    "max_lease_days ({max_lease_days}) must be at least default_lease_days ({default_lease_days})"
                ),
            ));
        }
        let budget = match fields.get("budget") {
            None | Some(Value::Null) => None,
            Some(v) => Some(AccountBudget::from_json(v, now)?),
        };
        let approval = match fields.get("approval") {
            None | Some(Value::Null) => ApprovalPolicy::Never,
            Some(v) => ApprovalPolicy::from_json(v)?,
        };
        let permission_set = match fields.get("permission_set") {
            None | Some(Value::Null) => None,
            Some(Value::String(p))
                if (1..=32).contains(&p.len())
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b)) =>
            {
                Some(p.clone())
            }
            Some(_) => {
                return Err(invalid(
                    Some("permission_set"),
                    "permission_set must be a permission set's name: 1 to 32 characters of letters, digits and +=,.@-_",
                ));
            }
        };
        let regions = match fields.get("regions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_REGIONS => {
                let mut regions: Vec<String> = Vec::new();
                for item in items {
                    let region = item.as_str().filter(|r| is_region(r)).ok_or_else(|| {
                        invalid(
                            Some("regions"),
                            &format!("{item} is not an AWS region code like \"us-east-1\""),
                        )
                    })?;
                    if !regions.iter().any(|r| r == region) {
                        regions.push(region.to_string());
                    }
                }
                regions
            }
            Some(_) => {
                return Err(invalid(
                    Some("regions"),
                    &format!("regions must be a list of at most {MAX_REGIONS} region codes"),
                ));
            }
        };
        let blueprint = match fields.get("blueprint") {
            None | Some(Value::Null) => None,
            // Purser's role may deploy only StackSets named `purser-…`
            // (infra/template.yaml): a template naming another would fail
            // every request it serves.
            Some(Value::String(b))
                if (BLUEPRINT_PREFIX.len() + 1..=128).contains(&b.len())
                    && b.starts_with(BLUEPRINT_PREFIX)
                    && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') =>
            {
                Some(b.clone())
            }
            Some(_) => {
                return Err(invalid(
                    Some("blueprint"),
                    "blueprint must be the name of a service-managed StackSet that starts with purser- (then letters, digits and -, at most 128 in all): Purser may deploy only those",
                ));
            }
        };
        let teams = match fields.get("teams") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if !items.is_empty() => Some(
                items
                    .iter()
                    .map(|t| {
                        t.as_str()
                            .ok_or_else(|| "a team's name".to_string())
                            .and_then(TeamName::parse)
                            .map_err(|m| invalid(Some("teams"), &m))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => {
                return Err(invalid(
                    Some("teams"),
                    "teams must be a non-empty list of team names (leave it out for every team)",
                ));
            }
        };
        let lease_end = match fields.get("lease_end") {
            None | Some(Value::Null) => LeaseEnd::Close,
            Some(Value::String(v)) if v == "close" => LeaseEnd::Close,
            Some(Value::String(v)) if v == "recycle" => LeaseEnd::Recycle,
            Some(_) => {
                return Err(invalid(
                    Some("lease_end"),
                    "lease_end must be \"close\" (close the account when its lease ends) or \"recycle\" (clean it and lend it again from the template's pool)",
                ));
            }
        };
        if lease_end == LeaseEnd::Recycle && blueprint.is_some() {
            return Err(invalid(
                Some("lease_end"),
                "lease_end recycle cannot be combined with a blueprint yet: cleaning removes the blueprint's stacks, and a pooled account is lent without deploying it again",
            ));
        }
        let bounded = |field: &str, max: u32, default: u32| -> Result<u32, ValidationError> {
            match fields.get(field) {
                None | Some(Value::Null) => Ok(default),
                Some(_) if lease_end != LeaseEnd::Recycle => Err(invalid(
                    Some(field),
                    &format!("{field} applies only to lease_end \"recycle\""),
                )),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= u64::from(max))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        invalid(
                            Some(field),
                            &format!("{field} must be a whole number from 0 to {max}"),
                        )
                    }),
            }
        };
        let cooling_hours = bounded("cooling_hours", MAX_COOLING_HOURS, DEFAULT_COOLING_HOURS)?;
        let pool_size = bounded("pool_size", MAX_POOL_SIZE, 0)?;
        let runaway =
            crate::budgets::runaway::RunawayRule::parse_list(fields.get("runaway"), "runaway")?;
        Ok(Self {
            name,
            description: description.to_string(),
            default_lease_days,
            max_lease_days,
            budget,
            approval,
            permission_set,
            regions,
            blueprint,
            teams,
            lease_end,
            cooling_hours,
            pool_size,
            runaway,
            version: 0,
            updated_at: now,
        })
    }

    /// Whether `team` may make accounts from this template.
    pub fn allows(&self, team: &TeamName) -> bool {
        self.teams.as_ref().is_none_or(|teams| teams.contains(team))
    }

    pub fn reference(&self) -> TemplateRef {
        TemplateRef {
            name: self.name.clone(),
            version: self.version,
        }
    }

    pub fn to_view(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "default_lease_days": self.default_lease_days,
            "max_lease_days": self.max_lease_days,
            "budget": self.budget.as_ref().map(AccountBudget::to_view),
            "approval": self.approval.to_view(),
            "permission_set": self.permission_set,
            "regions": self.regions,
            "blueprint": self.blueprint,
            "teams": self.teams,
            "lease_end": self.lease_end.as_str(),
            "cooling_hours": self.cooling_hours,
            "pool_size": self.pool_size,
            "runaway": self.runaway.iter().map(crate::budgets::runaway::RunawayRule::to_view).collect::<Vec<_>>(),
            "version": self.version,
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hackathon() -> Value {
        json!({"description": "two days to try things", "default_lease_days": 2,
            "max_lease_days": 7, "approval": "always",
            "budget": {"amount": "50.00", "currency": "USD", "thresholds": [80, 100],
                "actions": {"100": ["notify", "freeze"]}},
            "regions": ["us-east-1"]})
    }

    fn name() -> TemplateName {
        TemplateName::parse("hackathon").unwrap()
    }

    #[test]
    fn the_issues_example_parses() {
        let t = LeaseTemplate::from_json(name(), &hackathon(), Utc::now()).unwrap();
        assert_eq!((t.default_lease_days, t.max_lease_days), (2, 7));
        assert_eq!(t.approval, ApprovalPolicy::Always);
        let budget = t.budget.as_ref().unwrap();
        assert_eq!(budget.thresholds, [80, 100]);
        assert_eq!(
            budget.actions[&100],
            [BudgetAction::Notify, BudgetAction::Freeze]
        );
        assert_eq!(t.regions, ["us-east-1"]);
        assert!(t.allows(&TeamName::parse("anyone").unwrap()));
        let view = t.to_view();
        assert_eq!(view["budget"]["amount"], "50");
        assert_eq!(view["approval"], "always");
    }

    #[test]
    fn templates_validate_each_field_by_name() {
        let field = |patch: Value| {
            let mut body = hackathon();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    body.as_object_mut().unwrap().remove(k);
                } else {
                    body[k] = v.clone();
                }
            }
            LeaseTemplate::from_json(name(), &body, Utc::now())
                .err()
                .and_then(|e| e.field)
        };
        assert_eq!(field(json!({})), None);
        assert_eq!(
            field(json!({"description": null})),
            Some("description".into())
        );
        assert_eq!(
            field(json!({"default_lease_days": 0})),
            Some("default_lease_days".into())
        );
        assert_eq!(
            field(json!({"max_lease_days": 1})),
            Some("max_lease_days".into())
        );
        assert_eq!(
            field(json!({"max_lease_days": 366})),
            Some("max_lease_days".into())
        );
        assert_eq!(
            field(json!({"budget": {"amount": "-1"}})),
            Some("budget.amount".into())
        );
        assert_eq!(
            field(json!({"budget": {"amount": "1", "mode": "forecast"}})),
            Some("budget.mode".into())
        );
        assert_eq!(
            field(json!({"budget": {"amount": "1", "actions": {"70": ["notify"]}}})),
            Some("budget.actions".into())
        );
        assert_eq!(
            field(json!({"approval": "sometimes"})),
            Some("approval".into())
        );
        assert_eq!(
            field(json!({"regions": ["mars-1"]})),
            Some("regions".into())
        );
        assert_eq!(
            field(json!({"regions": "us-east-1"})),
            Some("regions".into())
        );
        assert_eq!(
            field(json!({"permission_set": "no spaces"})),
            Some("permission_set".into())
        );
        assert_eq!(field(json!({"blueprint": "-x"})), Some("blueprint".into()));
        assert_eq!(field(json!({"teams": []})), Some("teams".into()));
        assert_eq!(field(json!({"teams": ["Pay!"]})), Some("teams".into()));
        assert_eq!(field(json!({"colour": "red"})), Some("colour".into()));
        assert_eq!(
            field(json!({"lease_end": "keep"})),
            Some("lease_end".into())
        );
        assert_eq!(
            field(json!({"cooling_hours": 24})),
            Some("cooling_hours".into()),
            "cooling applies to recycling only"
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "cooling_hours": 721})),
            Some("cooling_hours".into())
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "cooling_hours": -1})),
            Some("cooling_hours".into())
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "pool_size": 501})),
            Some("pool_size".into())
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "pool_size": "3"})),
            Some("pool_size".into())
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "blueprint": "purser-base"})),
            Some("lease_end".into())
        );
        assert_eq!(
            field(json!({"lease_end": "recycle", "cooling_hours": 0, "pool_size": 3})),
            None
        );
        assert!(is_region("us-gov-west-1") && is_region("ap-southeast-2"));
    }

    #[test]
    fn a_recycling_template_cools_72_hours_by_default_and_old_ones_close() {
        let mut body = hackathon();
        body["lease_end"] = json!("recycle");
        body["pool_size"] = json!(4);
        let t = LeaseTemplate::from_json(name(), &body, Utc::now()).unwrap();
        assert_eq!(t.lease_end, LeaseEnd::Recycle);
        assert_eq!((t.cooling_hours, t.pool_size), (72, 4));
        assert_eq!(t.to_view()["lease_end"], "recycle");
        // A version stored before recycling reads as closing.
        let mut stored = serde_json::to_value(&t).unwrap();
        for field in ["lease_end", "cooling_hours", "pool_size"] {
            stored.as_object_mut().unwrap().remove(field);
        }
        let old: LeaseTemplate = serde_json::from_value(stored).unwrap();
        assert_eq!(old.lease_end, LeaseEnd::Close);
        assert_eq!((old.cooling_hours, old.pool_size), (72, 0));
    }

    #[test]
    fn a_template_for_some_teams_allows_only_them() {
        let mut body = hackathon();
        body["teams"] = json!(["payments"]);
        let t = LeaseTemplate::from_json(name(), &body, Utc::now()).unwrap();
        assert!(t.allows(&TeamName::parse("payments").unwrap()));
        assert!(!t.allows(&TeamName::parse("ml").unwrap()));
        // Stored and read back, it is the same template.
        let stored: LeaseTemplate =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(stored, t);
    }
}
