//! The one shape of every answer: a status and a JSON body; errors are
//! `{"error": {"code", "message", "field"}}`, server errors with the
//! request id.

use purser_core::accounts::AccountError;
use purser_core::budgets::BudgetError;
use purser_core::validation::ValidationError;
use serde_json::{Value, json};

/// An HTTP API (payload 2.0) response: a JSON body, or one of the
/// console's files.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    body: Value,
    /// The console's page or asset, served as is instead of `body`.
    file: Option<File>,
}

/// A text file of the console, with the headers it is served with.
#[derive(Debug)]
pub struct File {
    pub content_type: &'static str,
    pub text: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            file: None,
        }
    }

    pub fn file(file: File) -> Self {
        Self {
            status: 200,
            body: Value::Null,
            file: Some(file),
        }
    }

    pub fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Self {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message, "field": field}}),
        )
    }

    pub fn bad(field: &str, message: &str) -> Self {
        Self::error(400, "invalid_request", message, Some(field))
    }

    pub fn bad_body(message: &str) -> Self {
        Self::error(400, "invalid_request", message, None)
    }

    pub fn invalid(e: ValidationError) -> Self {
        Self::error(400, "invalid_request", &e.message, e.field.as_deref())
    }

    /// Server errors name the request id, so a user can report it.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        if self.status >= 500
            && let Some(error) = self.body.get_mut("error")
        {
            error["request_id"] = json!(request_id);
        }
        self
    }

    pub fn into_value(self) -> Value {
        if let Some(file) = self.file {
            let mut headers = serde_json::Map::new();
            headers.insert("content-type".into(), json!(file.content_type));
            for (name, value) in file.headers {
                headers.insert(name.into(), json!(value));
            }
            return json!({
                "statusCode": self.status,
                "headers": headers,
                "body": file.text,
                "isBase64Encoded": false,
            });
        }
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

impl From<BudgetError> for Reply {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::Invalid(v) => Reply::invalid(v),
            BudgetError::Accounts(a) => Reply::from(a),
            BudgetError::Forbidden(m) => Reply::error(403, "forbidden", &m, None),
            BudgetError::NotFound(m) => Reply::error(404, "not_found", &m, None),
            BudgetError::Conflict => Reply::error(409, "conflict", &e.to_string(), None),
            other => {
                tracing::error!(error = %other, "budget request failed");
                Reply::error(
                    503,
                    "unavailable",
                    "Purser could not complete the request; it is safe to retry",
                    None,
                )
            }
        }
    }
}

impl From<AccountError> for Reply {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(v) => Reply::invalid(v),
            AccountError::Forbidden(m) => Reply::error(403, "forbidden", &m, None),
            AccountError::NotFound(m) => Reply::error(404, "not_found", &m, None),
            AccountError::Conflict { code, message } => Reply::error(409, code, &message, None),
            AccountError::Store(purser_core::StoreError::BadPageToken(m)) => Reply::bad(
                "next",
                &format!("next is not a page token from this API: {m}"),
            ),
            other => {
                tracing::error!(error = %other, "request failed");
                Reply::error(
                    503,
                    "unavailable",
                    "Purser could not complete the request; it is safe to retry (with the same Idempotency-Key)",
                    None,
                )
            }
        }
    }
}
