//! A longer lease, asked for after the account was made: within the
//! template's maximum it applies at once; beyond it, it waits on the
//! account for an approver.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::{reject_unknown, rfc3339};
use crate::validation::{ValidationError, invalid};

/// The most days one extension adds.
pub const MAX_EXTENSION_DAYS: u32 = 90;

/// An extension waiting for an approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExtension {
    pub days: u32,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
}

impl PendingExtension {
    pub fn to_view(&self) -> Value {
        json!({
            "days": self.days,
            "requested_by": self.requested_by,
            "requested_at": rfc3339(self.requested_at),
        })
    }
}

/// `POST /accounts/{id}/extend`: `{"days": N}`, 1 to [`MAX_EXTENSION_DAYS`].
pub fn extension_from_json(body: &Value) -> Result<u32, ValidationError> {
    let Some(fields) = body.as_object() else {
        return Err(invalid(None, "the body must be a JSON object"));
    };
    reject_unknown(fields, &["days"])?;
    fields
        .get("days")
        .and_then(Value::as_u64)
        .filter(|d| (1..=u64::from(MAX_EXTENSION_DAYS)).contains(d))
        .map(|d| d as u32)
        .ok_or_else(|| {
            invalid(
                Some("days"),
                &format!("days must be a whole number from 1 to {MAX_EXTENSION_DAYS}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_is_bounded_days() {
        assert_eq!(extension_from_json(&json!({"days": 3})).unwrap(), 3);
        for bad in [
            json!({}),
            json!({"days": 0}),
            json!({"days": 91}),
            json!({"days": "3"}),
        ] {
            assert_eq!(
                extension_from_json(&bad).unwrap_err().field.as_deref(),
                Some("days"),
                "{bad}"
            );
        }
        assert_eq!(
            extension_from_json(&json!({"days": 1, "why": "x"}))
                .unwrap_err()
                .field
                .as_deref(),
            Some("why")
        );
    }
}
