//! Validation errors that name the field that is wrong.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    pub message: String,
}

pub fn invalid(field: Option<&str>, message: &str) -> ValidationError {
    ValidationError {
        field: field.map(String::from),
        message: message.into(),
    }
}
