//! Teams: who may use Purser for what, and how many accounts they may hold.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::reject_unknown;
use crate::validation::{ValidationError, invalid};

/// A team's name: `[a-z0-9-]{2,32}`, also used as its OU's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamName(String);

impl TeamName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (2..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "team must be 2 to 32 characters of a-z, 0-9 and -, got {text:?}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TeamName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<TeamName> for String {
    fn from(t: TeamName) -> String {
        t.0
    }
}

impl std::fmt::Display for TeamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub const DEFAULT_QUOTA: u32 = 5;
pub const MAX_QUOTA: u32 = 1000;

/// The role of an STS session ARN: `arn:aws:iam::A:role/R` for
/// `arn:aws:sts::A:assumed-role/R/S`. Whoever may assume `R` picks `S`, so
/// lists of principals (members, admins) refuse sessions and name the role.
pub fn session_role(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":assumed-role/")?;
    let account = head.strip_prefix("arn:")?.split(':').nth(3)?;
    let partition = head.strip_prefix("arn:")?.split(':').next()?;
    let (role, _session) = rest.split_once('/')?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// A team: its quota of open accounts and its members (IAM principal ARNs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub name: TeamName,
    pub quota: u32,
    pub members: Vec<String>,
}

impl Team {
    /// A team Purser has not been told about: the default quota, no members.
    pub fn unconfigured(name: TeamName) -> Self {
        Self {
            name,
            quota: DEFAULT_QUOTA,
            members: Vec::new(),
        }
    }

    /// `PUT /teams/{team}`: `{"quota": n, "members": [arn, …]}`, both optional.
    pub fn from_json(name: TeamName, body: &Value) -> Result<Self, ValidationError> {
        let Some(fields) = body.as_object() else {
            return Err(invalid(None, "the body must be a JSON object"));
        };
        reject_unknown(fields, &["quota", "members"])?;
        let quota = match fields.get("quota") {
            None | Some(Value::Null) => DEFAULT_QUOTA,
            Some(v) => v
                .as_u64()
                .filter(|q| *q <= u64::from(MAX_QUOTA))
                .ok_or_else(|| {
                    invalid(
                        Some("quota"),
                        &format!("quota must be a whole number from 0 to {MAX_QUOTA}"),
                    )
                })? as u32,
        };
        let members = match fields.get("members") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| {
                    let arn = m
                        .as_str()
                        .filter(|s| s.starts_with("arn:aws") && s.split(':').count() >= 6)
                        .ok_or_else(|| {
                            invalid(
                                Some("members"),
                                &format!("members must be IAM principal ARNs, got {m}"),
                            )
                        })?;
                    if let Some(role) = session_role(arn) {
                        return Err(invalid(
                            Some("members"),
                            &format!(
                                "{arn} is a session, whose name anyone who may assume its role chooses: name the role, {role}"
                            ),
                        ));
                    }
                    Ok(arn.to_string())
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(invalid(
                    Some("members"),
                    "members must be a list of IAM principal ARNs",
                ));
            }
        };
        Ok(Self {
            name,
            quota,
            members,
        })
    }

    pub fn to_view(&self, open_accounts: u32) -> Value {
        serde_json::json!({
            "team": self.name,
            "quota": self.quota,
            "members": self.members,
            "open_accounts": open_accounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn team_names_are_lowercase_slugs() {
        assert!(TeamName::parse("payments-2").is_ok());
        for bad in ["a", "Payments", "pay ments", "pay_ments", &"a".repeat(33)] {
            assert!(TeamName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn team_settings_validate_by_field() {
        let name = TeamName::parse("pay").unwrap();
        let t = Team::from_json(
            name.clone(),
            &json!({"quota": 2, "members": ["arn:aws:iam::123456789012:user/ana"]}),
        )
        .unwrap();
        assert_eq!(t.quota, 2);
        let field = |b| Team::from_json(name.clone(), &b).unwrap_err().field;
        assert_eq!(field(json!({"quota": -1})), Some("quota".into()));
        assert_eq!(field(json!({"members": ["ana"]})), Some("members".into()));
        let session = json!({"members": ["arn:aws:sts::123456789012:assumed-role/dev/ana"]});
        let refused = Team::from_json(name.clone(), &session).unwrap_err();
        assert_eq!(refused.field, Some("members".into()));
        assert!(
            refused
                .message
                .contains("arn:aws:iam::123456789012:role/dev"),
            "{}",
            refused.message
        );
        let role = json!({"members": ["arn:aws:iam::123456789012:role/dev"]});
        assert!(Team::from_json(name.clone(), &role).is_ok());
        assert_eq!(field(json!({"owner": "x"})), Some("owner".into()));
    }
}
