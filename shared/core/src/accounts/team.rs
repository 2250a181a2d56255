//! Teams: who may use Purser for what, and how many accounts they may hold.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::{reject_unknown, validate_email};
use crate::ports::WebhookUrl;
use crate::validation::{ValidationError, invalid};

/// At most this many contact addresses a team.
pub const MAX_NOTIFY_EMAILS: usize = 20;

/// Who a team's notifications go to besides an account's owner: contact
/// addresses, and a Slack and a Microsoft Teams incoming webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamNotify {
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_webhook: Option<WebhookUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_webhook: Option<WebhookUrl>,
}

impl TeamNotify {
    /// `{"emails": [...], "slack_webhook": URL, "teams_webhook": URL}`, each
    /// optional.
    pub fn from_json(value: &Value) -> Result<Self, ValidationError> {
        let Some(fields) = value.as_object() else {
            return Err(invalid(Some("notify"), "notify must be a JSON object"));
        };
        reject_unknown(fields, &["emails", "slack_webhook", "teams_webhook"])
            .map_err(|e| invalid(Some("notify"), &e.to_string()))?;
        let emails = match fields.get("emails") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_NOTIFY_EMAILS => items
                .iter()
                .map(|e| {
                    let address = e.as_str().unwrap_or_default();
                    validate_email(address)
                        .map(|()| address.to_string())
                        .map_err(|why| invalid(Some("notify.emails"), &format!("{e}: {why}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(invalid(
                    Some("notify.emails"),
                    &format!(
                        "notify.emails must be a list of at most {MAX_NOTIFY_EMAILS} addresses"
                    ),
                ));
            }
        };
        let webhook = |field: &str| -> Result<Option<WebhookUrl>, ValidationError> {
            match fields.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(url)) => WebhookUrl::parse(url).map(Some).map_err(|why| {
                    invalid(
                        Some(&format!("notify.{field}")),
                        &format!("notify.{field} {why}"),
                    )
                }),
                Some(_) => Err(invalid(
                    Some(&format!("notify.{field}")),
                    &format!("notify.{field} must be a URL"),
                )),
            }
        };
        Ok(Self {
            emails,
            slack_webhook: webhook("slack_webhook")?,
            teams_webhook: webhook("teams_webhook")?,
        })
    }

    /// As read responses show it: the webhooks by their host only.
    pub fn to_view(&self) -> Value {
        serde_json::json!({
            "emails": self.emails,
            "slack_webhook": self.slack_webhook.as_ref().map(WebhookUrl::redacted),
            "teams_webhook": self.teams_webhook.as_ref().map(WebhookUrl::redacted),
        })
    }
}

crate::validation::slug_name!(
    /// A team's name: `[a-z0-9-]{2,32}`, also used as its OU's name.
    TeamName,
    "team"
);

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

/// A team: its quota of open accounts, its members (IAM principal ARNs,
/// and people's email addresses, as IAM Identity Center knows them) and who
/// its notifications go to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub name: TeamName,
    pub quota: u32,
    pub members: Vec<String>,
    #[serde(default)]
    pub notify: TeamNotify,
    /// Its default lease template and who of its members approves requests.
    #[serde(default)]
    pub leases: TeamLeases,
}

/// A team's side of lease templates and approvals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamLeases {
    /// The template of a request that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_template: Option<crate::leases::TemplateName>,
    /// Members given the `approver` role: they approve or deny the team's
    /// requests and extensions (besides platform admins).
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl Team {
    /// A team Purser has not been told about: the default quota, no members.
    pub fn unconfigured(name: TeamName) -> Self {
        Self {
            name,
            quota: DEFAULT_QUOTA,
            members: Vec::new(),
            notify: TeamNotify::default(),
            leases: TeamLeases::default(),
        }
    }

    /// The members named by email address.
    pub fn member_emails(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .map(String::as_str)
            .filter(|m| !m.starts_with("arn:"))
    }

    /// Whether `body` (of `PUT /teams/{team}`) says who to notify; when it
    /// does not, the team keeps what it had (a read shows webhooks redacted,
    /// so a read-modify-write could not give them back).
    pub fn names_notify(body: &Value) -> bool {
        body.get("notify").is_some()
    }

    /// `PUT /teams/{team}`: `{"quota": n, "members": [arn or email, …],
    /// "notify": {…}}`, each optional.
    pub fn from_json(name: TeamName, body: &Value) -> Result<Self, ValidationError> {
        let Some(fields) = body.as_object() else {
            return Err(invalid(None, "the body must be a JSON object"));
        };
        reject_unknown(
            fields,
            &[
                "quota",
                "members",
                "notify",
                "default_template",
                "approvers",
            ],
        )?;
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
                    if let Some(email) = m.as_str().filter(|s| !s.starts_with("arn:")) {
                        return validate_email(email).map(|()| email.to_string()).map_err(|why| {
                            invalid(
                                Some("members"),
                                &format!(
                                    "members must be IAM principal ARNs or email addresses: {m}: {why}"
                                ),
                            )
                        });
                    }
                    let arn = m
                        .as_str()
                        .filter(|s| s.starts_with("arn:aws") && s.split(':').count() >= 6)
                        .ok_or_else(|| {
                            invalid(
                                Some("members"),
                                &format!(
                                    "members must be IAM principal ARNs or email addresses, got {m}"
                                ),
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
                    "members must be a list of IAM principal ARNs or email addresses",
                ));
            }
        };
        let notify = match fields.get("notify") {
            None | Some(Value::Null) => TeamNotify::default(),
            Some(v) => TeamNotify::from_json(v)?,
        };
        let default_template = match fields.get("default_template") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(
                crate::leases::TemplateName::parse(t)
                    .map_err(|m| invalid(Some("default_template"), &m))?,
            ),
            Some(_) => {
                return Err(invalid(
                    Some("default_template"),
                    "default_template must be a template's name",
                ));
            }
        };
        let approvers = match fields.get("approvers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|a| {
                    a.as_str()
                        .filter(|a| members.iter().any(|m| m == a))
                        .map(str::to_string)
                        .ok_or_else(|| {
                            invalid(
                                Some("approvers"),
                                &format!(
                                    "approvers must be members of the team (as members names them), got {a}"
                                ),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(invalid(
                    Some("approvers"),
                    "approvers must be a list of the team's members",
                ));
            }
        };
        Ok(Self {
            name,
            quota,
            members,
            notify,
            leases: TeamLeases {
                default_template,
                approvers,
            },
        })
    }

    pub fn to_view(&self, open_accounts: u32) -> Value {
        serde_json::json!({
            "team": self.name,
            "quota": self.quota,
            "members": self.members,
            "notify": self.notify.to_view(),
            "default_template": self.leases.default_template,
            "approvers": self.leases.approvers,
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

    #[test]
    fn members_by_email_and_who_to_notify_are_validated_by_field() {
        let name = TeamName::parse("payments").unwrap();
        let field = |body: Value| {
            Team::from_json(name.clone(), &body)
                .err()
                .and_then(|e| e.field)
        };
        let team = Team::from_json(
            name.clone(),
            &json!({"members": ["ana@example.com", "arn:aws:iam::123456789012:user/bob"],
                "notify": {"emails": ["leads@example.com"],
                    "slack_webhook": "https://hooks.slack.com/services/T0/B0/s3cr3t"}}),
        )
        .unwrap();
        assert_eq!(
            team.member_emails().collect::<Vec<_>>(),
            ["ana@example.com"]
        );
        assert_eq!(team.notify.emails, ["leads@example.com"]);
        // The webhook is a secret: a read shows its host, Debug too.
        let view = team.to_view(0).to_string();
        assert!(!view.contains("s3cr3t"), "{view}");
        assert!(view.contains("hooks.slack.com"), "{view}");
        assert!(!format!("{team:?}").contains("s3cr3t"));

        assert_eq!(
            field(json!({"members": ["not an address"]})),
            Some("members".into())
        );
        assert_eq!(
            field(json!({"notify": {"emails": ["x"]}})),
            Some("notify.emails".into())
        );
        assert_eq!(
            field(json!({"notify": {"slack_webhook": "http://hooks.slack.com/x"}})),
            Some("notify.slack_webhook".into())
        );
        assert_eq!(
            field(json!({"notify": {"teams_webhook": 3}})),
            Some("notify.teams_webhook".into())
        );
        assert_eq!(
            field(json!({"notify": {"sms": "x"}})),
            Some("notify".into())
        );
        let many: Vec<String> = (0..=MAX_NOTIFY_EMAILS)
            .map(|i| format!("p{i}@example.com"))
            .collect();
        assert_eq!(
            field(json!({"notify": {"emails": many}})),
            Some("notify.emails".into())
        );
        assert!(Team::names_notify(&json!({"notify": {}})));
        let ana = "arn:aws:iam::123456789012:user/ana";
        let team = Team::from_json(
            name.clone(),
            &json!({"members": [ana, "bob@example.com"], "approvers": ["bob@example.com"],
                "default_template": "hackathon"}),
        )
        .unwrap();
        assert_eq!(team.leases.approvers, ["bob@example.com"]);
        assert_eq!(
            team.leases.default_template.as_ref().map(|t| t.as_str()),
            Some("hackathon")
        );
        assert_eq!(
            field(json!({"members": [ana], "approvers": ["eve@example.com"]})),
            Some("approvers".into())
        );
        assert_eq!(
            field(json!({"default_template": "Hack!"})),
            Some("default_template".into())
        );
        assert!(!Team::names_notify(&json!({"quota": 1})));
    }
}
