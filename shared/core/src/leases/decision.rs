//! What an approver (or a template's rules, or time) decided of a request
//! or an extension, as the account keeps it: the requester reads it on
//! the account.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::{reject_unknown, rfc3339};
use crate::validation::{ValidationError, invalid};

/// Maximum length of an approver's reason.
pub const MAX_REASON: usize = 500;

/// Who decides when a template's rules approve: the rules themselves.
pub const AUTO_APPROVER: &str = "auto";
/// Who decides when a pending request waited too long.
pub const EXPIRY: &str = "expiry";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Waiting for an approver (`reason`: why the template asks one).
    Pending,
    Approved,
    Denied,
    Expired,
}

/// The last decision made on an account's request or extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// The approver's principal, [`AUTO_APPROVER`] or [`EXPIRY`].
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an auto-approval, the rules that decided (`auto: lease_at_most 7, …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Set when the decision was on an extension of these many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_days: Option<u32>,
    pub at: DateTime<Utc>,
}

impl Decision {
    pub fn to_view(&self) -> Value {
        json!({
            "outcome": self.outcome,
            "by": self.by,
            "reason": self.reason,
            "rule": self.rule,
            "extension_days": self.extension_days,
            "at": rfc3339(self.at),
        })
    }
}

/// The body of `POST /accounts/{id}/approve` (`{"reason"}` optional) or
/// `/deny` (`{"reason"}` required): the reason, trimmed and bounded.
pub fn reason_from_json(body: &Value, required: bool) -> Result<Option<String>, ValidationError> {
    let empty = serde_json::Map::new();
    let fields = match body {
        Value::Object(fields) => fields,
        Value::Null if !required => &empty,
        _ => return Err(invalid(None, "the body must be a JSON object")),
    };
    reject_unknown(fields, &["reason"])?;
    let reason = match fields.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.trim().to_string()).filter(|r| !r.is_empty()),
        Some(_) => return Err(invalid(Some("reason"), "reason must be a string")),
    };
    match &reason {
        None if required => Err(invalid(
            Some("reason"),
            "reason is required: say why, so the requester knows what to do",
        )),
        Some(r)
            if r.chars().count() > MAX_REASON || r.chars().any(|c| c.is_control() && c != '\n') =>
        {
            Err(invalid(
                Some("reason"),
                &format!(
                    "reason must be at most {MAX_REASON} characters without control characters"
                ),
            ))
        }
        _ => Ok(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_needs_a_bounded_reason() {
        let field = |body: Value, required| reason_from_json(&body, required).unwrap_err().field;
        assert_eq!(field(json!({}), true), Some("reason".into()));
        assert_eq!(field(json!({"reason": "  "}), true), Some("reason".into()));
        assert_eq!(field(json!({"reason": 3}), true), Some("reason".into()));
        assert_eq!(
            field(json!({"reason": "x".repeat(MAX_REASON + 1)}), true),
            Some("reason".into())
        );
        assert_eq!(field(json!({"why": "x"}), false), Some("why".into()));
        assert_eq!(
            reason_from_json(&json!({"reason": " too long a lease "}), true).unwrap(),
            Some("too long a lease".into())
        );
        assert_eq!(reason_from_json(&json!({}), false).unwrap(), None);
        assert_eq!(reason_from_json(&Value::Null, false).unwrap(), None);
    }
}
