//! How AWS weighs a request against the service control policies of an
//! account, as far as Purser's SCPs need: a request is allowed when an
//! attached policy allows it and none denies it. Statements match by
//! `Action` or `NotAction` (IAM's `*` and `?` wildcards, case-insensitive)
//! on any resource, under conditions of the String, Arn, Bool and Null
//! families (an `IfExists` suffix too) — the conditions Purser's freeze and
//! guardrails are written with (`ArnNotLike aws:PrincipalArn`,
//! `StringNotEquals aws:RequestedRegion`, `StringLike ec2:InstanceType`).
//! A condition key the request does not carry matches only a negated
//! operator, as in IAM. An operator outside these makes the evaluation
//! fail rather than guess.

use std::collections::BTreeMap;

use serde_json::Value;

/// A request as an SCP sees it: who asks, for what, and its context keys
/// (`aws:PrincipalArn` and `aws:RequestedRegion` are set from the
/// principal and the region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpRequest {
    pub principal_arn: String,
    pub action: String,
    /// Context keys, lower-cased (IAM's keys are case-insensitive).
    context: BTreeMap<String, String>,
}

impl ScpRequest {
    /// `principal_arn` asks for `action` (`service:Action`) in `region`.
    pub fn new(principal_arn: &str, action: &str, region: &str) -> Self {
        Self {
            principal_arn: principal_arn.into(),
            action: action.into(),
            context: BTreeMap::new(),
        }
        .with("aws:PrincipalArn", principal_arn)
        .with("aws:RequestedRegion", region)
    }

    /// With a context key, e.g. `ec2:InstanceType`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.context.insert(key.to_ascii_lowercase(), value.into());
        self
    }

    fn key(&self, key: &str) -> Option<&str> {
        self.context
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the SCPs decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// A statement denies it: the policy's name and the statement's Sid.
    ExplicitlyDenied {
        policy: String,
        sid: Option<String>,
    },
    /// No attached policy allows it.
    ImplicitlyDenied,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Self::Allowed
    }

    /// AWS's words for a refusal.
    pub fn explain(&self, request: &ScpRequest) -> Option<String> {
        let who = format!(
            "{} is not authorized to perform {}",
            request.principal_arn, request.action
        );
        match self {
            Self::Allowed => None,
            Self::ExplicitlyDenied { policy, sid } => Some(format!(
                "{who} with an explicit deny in a service control policy ({policy}{})",
                sid.as_deref().map(|s| format!(", {s}")).unwrap_or_default()
            )),
            Self::ImplicitlyDenied => Some(format!("{who}: no service control policy allows it")),
        }
    }
}

/// Weighs `request` against `policies` (name, document) attached to one
/// target.
pub fn evaluate(policies: &[(String, Value)], request: &ScpRequest) -> Result<Decision, String> {
    let mut allowed = false;
    for (name, document) in policies {
        for statement in statements(document) {
            if !applies(statement, request).map_err(|e| format!("policy {name}: {e}"))? {
                continue;
            }
            match statement["Effect"].as_str() {
                Some("Deny") => {
                    return Ok(Decision::ExplicitlyDenied {
                        policy: name.clone(),
                        sid: statement["Sid"].as_str().map(String::from),
                    });
                }
                Some("Allow") => allowed = true,
                other => return Err(format!("policy {name}: Effect {other:?}")),
            }
        }
    }
    Ok(if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitlyDenied
    })
}

fn statements(document: &Value) -> Vec<&Value> {
    match &document["Statement"] {
        Value::Array(items) => items.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    }
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn applies(statement: &Value, request: &ScpRequest) -> Result<bool, String> {
    let action = request.action.to_ascii_lowercase();
    let matches = |patterns: &Value| {
        strings(patterns)
            .iter()
            .any(|p| glob(&p.to_ascii_lowercase(), &action))
    };
    let by_action = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(actions), None) => matches(actions),
        (None, Some(not)) => !matches(not),
        _ => return Err("a statement has exactly one of Action and NotAction".into()),
    };
    if !by_action {
        return Ok(false);
    }
    let Some(conditions) = statement.get("Condition") else {
        return Ok(true);
    };
    let conditions = conditions.as_object().ok_or("Condition is not an object")?;
    for (operator, keys) in conditions {
        let keys = keys
            .as_object()
            .ok_or_else(|| format!("{operator} is not an object"))?;
        for (key, values) in keys {
            if !condition(operator, request.key(key), &strings(values))? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// One operator on one key: true when the request's value matches any of
/// `values` (none of them, for a negated operator).
fn condition(operator: &str, actual: Option<&str>, values: &[&str]) -> Result<bool, String> {
    let (operator, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    if operator == "Null" {
        let wants_absent = values.contains(&"true");
        return Ok(actual.is_none() == wants_absent);
    }
    let (positive, negated) = match operator {
        "StringEquals"
        | "ArnEquals"
        | "StringLike"
        | "ArnLike"
        | "StringEqualsIgnoreCase"
        | "Bool" => (operator, false),
        "StringNotEquals" => ("StringEquals", true),
        "StringNotLike" => ("StringLike", true),
        "ArnNotEquals" => ("ArnEquals", true),
        "ArnNotLike" => ("ArnLike", true),
        "StringNotEqualsIgnoreCase" => ("StringEqualsIgnoreCase", true),
        other => return Err(format!("the simulation does not evaluate {other}")),
    };
    let Some(actual) = actual else {
        // An absent key matches no value: a negated operator holds, as does
        // any IfExists.
        return Ok(negated || if_exists);
    };
    let any = values.iter().any(|v| match positive {
        "StringEquals" | "ArnEquals" => *v == actual,
        "Bool" | "StringEqualsIgnoreCase" => v.eq_ignore_ascii_case(actual),
        _ => glob(v, actual),
    });
    Ok(any != negated)
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_iam_s() {
        assert!(glob("p5.*", "p5.48xlarge"));
        assert!(!glob("p5.*", "p5e.48xlarge"));
        assert!(glob("u-*", "u-6tb1.metal"));
        assert!(glob(
            "s3:getaccountpublic*",
            "s3:getaccountpublicaccessblock"
        ));
        assert!(glob(
            "arn:aws:iam::*:role/stacksets-exec-*",
            "arn:aws:iam::111111111111:role/stacksets-exec-abc"
        ));
        assert!(glob("ec2:describe?egions", "ec2:describeregions"));
        assert!(glob("*", ""));
        assert!(!glob("a?", "a"));
    }

    #[test]
    fn absent_keys_match_only_negated_operators() {
        assert!(condition("StringNotEquals", None, &["x"]).unwrap());
        assert!(!condition("StringEquals", None, &["x"]).unwrap());
        assert!(!condition("StringLike", None, &["p5.*"]).unwrap());
        assert!(condition("StringLikeIfExists", None, &["p5.*"]).unwrap());
        assert!(condition("Null", None, &["true"]).unwrap());
        assert!(condition("StringNotEquals", Some("eu-west-1"), &["us-east-1"]).unwrap());
        assert!(
            !condition(
                "StringNotEquals",
                Some("us-east-1"),
                &["us-east-1", "eu-west-1"]
            )
            .unwrap()
        );
        assert!(condition("NumericLessThan", Some("1"), &["2"]).is_err());
    }

    #[test]
    fn a_deny_wins_an_allow_is_needed() {
        let full = (
            "FullAWSAccess".to_string(),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        );
        let deny = (
            "deny-s3".to_string(),
            json!({"Statement": {"Sid": "NoS3", "Effect": "Deny", "Action": "S3:*", "Resource": "*"}}),
        );
        let put = ScpRequest::new("arn:aws:iam::1:user/a", "s3:PutObject", "eu-west-1");
        let run = ScpRequest::new("arn:aws:iam::1:user/a", "ec2:RunInstances", "eu-west-1");
        assert_eq!(
            evaluate(std::slice::from_ref(&full), &put).unwrap(),
            Decision::Allowed
        );
        let both = [full, deny.clone()];
        let denied = evaluate(&both, &put).unwrap();
        assert_eq!(
            denied,
            Decision::ExplicitlyDenied {
                policy: "deny-s3".into(),
                sid: Some("NoS3".into())
            }
        );
        assert!(denied.explain(&put).unwrap().contains("explicit deny"));
        assert!(evaluate(&both, &run).unwrap().is_allowed());
        assert_eq!(
            evaluate(&[deny], &run).unwrap(),
            Decision::ImplicitlyDenied,
            "without FullAWSAccess nothing is allowed"
        );
    }
}
