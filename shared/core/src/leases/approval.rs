//! Whether a request needs someone to say yes: `never`, `always`, or
//! `{"auto": [rules]}`, where the rules are data (`{"rule":
//! "lease_at_most", "days": 7}`), all of which must hold for a request to
//! be approved at once; otherwise it waits for an approver.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::leases::MAX_LEASE_DAYS;
use crate::validation::{ValidationError, invalid};

/// At most this many rules an `auto` policy has.
pub const MAX_RULES: usize = 10;

/// How many days a request or an extension waits for an approver, unless
/// the deployment says otherwise (`ApprovalExpiryDays`).
pub const DEFAULT_APPROVAL_EXPIRY_DAYS: u32 = 7;

/// The days the approval expiry may be: at least a day, so nobody is denied
/// before an approver could look; at most 90, so a forgotten request does
/// not hold a place in the team's quota for a season.
pub const APPROVAL_EXPIRY_DAYS: std::ops::RangeInclusive<u32> = 1..=90;

/// How requests made from a template are approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// Every request goes ahead.
    Never,
    /// Every request waits for an approver.
    Always,
    /// A request goes ahead when every rule holds, else waits.
    Auto(Vec<AutoRule>),
}

/// One rule of an `auto` policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum AutoRule {
    /// The lease asked for is at most `days`.
    LeaseAtMost { days: u32 },
    /// The team's open accounts, this request and pending ones included,
    /// are within its quota (a request beyond it is refused anyway).
    TeamUnderQuota {},
    /// The owner has no frozen account in the team.
    NoFrozenAccount {},
    /// The template's per-account budget is at most `amount` (a template
    /// without a budget is unbounded: the rule does not hold).
    BudgetAtMost {
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
    },
}

/// What the rules are judged on.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub lease_days: Option<u32>,
    /// Open accounts of the team before this request.
    pub open_accounts: u32,
    pub quota: u32,
    pub owner_has_frozen_account: bool,
    pub budget_amount: Option<Decimal>,
}

/// What a policy decides of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It goes ahead; `rule` says which rule set decided (`None` for `never`).
    Approved { rule: Option<String> },
    /// It waits for an approver, for this reason.
    Ask { why: String },
}

impl AutoRule {
    pub fn holds(&self, facts: &Facts) -> bool {
        match self {
            Self::LeaseAtMost { days } => facts.lease_days.is_some_and(|d| d <= *days),
            Self::TeamUnderQuota {} => facts.open_accounts < facts.quota,
            Self::NoFrozenAccount {} => !facts.owner_has_frozen_account,
            Self::BudgetAtMost { amount } => facts.budget_amount.is_some_and(|b| b <= *amount),
        }
    }

    /// `lease_at_most 7`, `team_under_quota`, `budget_at_most 100`.
    pub fn describe(&self) -> String {
        match self {
            Self::LeaseAtMost { days } => format!("lease_at_most {days}"),
            Self::TeamUnderQuota {} => "team_under_quota".into(),
            Self::NoFrozenAccount {} => "no_frozen_account".into(),
            Self::BudgetAtMost { amount } => format!("budget_at_most {}", amount.normalize()),
        }
    }
}

impl ApprovalPolicy {
    /// `"never"`, `"always"` or `{"auto": [rule, …]}`; errors name `approval`.
    pub fn from_json(value: &Value) -> Result<Self, ValidationError> {
        let shape = "approval must be \"never\", \"always\" or {\"auto\": [rules]}, rules like {\"rule\": \"lease_at_most\", \"days\": 7}, {\"rule\": \"team_under_quota\"}, {\"rule\": \"no_frozen_account\"}, {\"rule\": \"budget_at_most\", \"amount\": \"100\"}";
        let policy: Self = serde_json::from_value(value.clone())
            .map_err(|e| invalid(Some("approval"), &format!("{shape}: {e}")))?;
        if let Self::Auto(rules) = &policy {
            if rules.is_empty() || rules.len() > MAX_RULES {
                return Err(invalid(
                    Some("approval"),
                    &format!("auto takes 1 to {MAX_RULES} rules"),
                ));
            }
            for rule in rules {
                match rule {
                    AutoRule::LeaseAtMost { days } if !(1..=MAX_LEASE_DAYS).contains(days) => {
                        return Err(invalid(
                            Some("approval"),
                            &format!("lease_at_most takes days from 1 to {MAX_LEASE_DAYS}"),
                        ));
                    }
                    AutoRule::BudgetAtMost { amount } if *amount <= Decimal::ZERO => {
                        return Err(invalid(
                            Some("approval"),
                            "budget_at_most takes a positive amount",
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(policy)
    }

    /// What this policy decides of a request with `facts`.
    pub fn decide(&self, facts: &Facts) -> Verdict {
        match self {
            Self::Never => Verdict::Approved { rule: None },
            Self::Always => Verdict::Ask {
                why: "the template asks an approver for every request".into(),
            },
            Self::Auto(rules) => {
                let failed: Vec<String> = rules
                    .iter()
                    .filter(|r| !r.holds(facts))
                    .map(AutoRule::describe)
                    .collect();
                if failed.is_empty() {
                    let all: Vec<String> = rules.iter().map(AutoRule::describe).collect();
                    Verdict::Approved {
                        rule: Some(format!("auto: {}", all.join(", "))),
                    }
                } else {
                    Verdict::Ask {
                        why: format!(
                            "the template's auto rules did not all hold ({} did not), so an approver decides",
                            failed.join(", ")
                        ),
                    }
                }
            }
        }
    }

    pub fn to_view(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Facts {
        Facts {
            lease_days: Some(5),
            open_accounts: 1,
            quota: 3,
            owner_has_frozen_account: false,
            budget_amount: Some(Decimal::from(50)),
        }
    }

    #[test]
    fn policies_parse_from_the_issues_shapes() {
        assert_eq!(
            ApprovalPolicy::from_json(&json!("always")).unwrap(),
            ApprovalPolicy::Always
        );
        let auto = ApprovalPolicy::from_json(&json!({"auto": [
            {"rule": "lease_at_most", "days": 7}, {"rule": "team_under_quota"},
            {"rule": "no_frozen_account"}, {"rule": "budget_at_most", "amount": "100"}]}))
        .unwrap();
        let ApprovalPolicy::Auto(rules) = &auto else {
            panic!("{auto:?}")
        };
        assert_eq!(rules.len(), 4);
        assert_eq!(
            auto.to_view()["auto"][3],
            json!({"rule": "budget_at_most", "amount": "100"})
        );
        for bad in [
            json!("sometimes"),
            json!({"auto": []}),
            json!({"auto": [{"rule": "lease_at_most"}]}),
            json!({"auto": [{"rule": "lease_at_most", "days": 0}]}),
            json!({"auto": [{"rule": "team_under_quota", "extra": 1}]}),
            json!({"auto": [{"rule": "budget_at_most", "amount": "-3"}]}),
            json!({"auto": [{"rule": "be_nice"}]}),
        ] {
            let err = ApprovalPolicy::from_json(&bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("approval"), "{bad}");
        }
    }

    #[test]
    fn every_rule_must_hold_and_the_decision_names_them() {
        let policy = ApprovalPolicy::Auto(vec![
            AutoRule::LeaseAtMost { days: 7 },
            AutoRule::TeamUnderQuota {},
        ]);
        assert_eq!(
            policy.decide(&facts()),
            Verdict::Approved {
                rule: Some("auto: lease_at_most 7, team_under_quota".into())
            }
        );
        let long = Facts {
            lease_days: Some(8),
            ..facts()
        };
        let Verdict::Ask { why } = policy.decide(&long) else {
            panic!("a lease over 7 days waits")
        };
        assert!(why.contains("lease_at_most 7"), "{why}");
        let no_lease = Facts {
            lease_days: None,
            ..facts()
        };
        assert!(matches!(policy.decide(&no_lease), Verdict::Ask { .. }));
        let frozen = Facts {
            owner_has_frozen_account: true,
            ..facts()
        };
        assert!(!AutoRule::NoFrozenAccount {}.holds(&frozen));
        let cheap = AutoRule::BudgetAtMost {
            amount: Decimal::from(100),
        };
        assert!(cheap.holds(&facts()));
        assert!(!cheap.holds(&Facts {
            budget_amount: None,
            ..facts()
        }));
        assert_eq!(
            ApprovalPolicy::Never.decide(&facts()),
            Verdict::Approved { rule: None }
        );
        assert!(matches!(
            ApprovalPolicy::Always.decide(&facts()),
            Verdict::Ask { .. }
        ));
    }
}
