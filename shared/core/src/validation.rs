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

/// Whether `text` is an AWS region's code (`us-east-1`, `ap-southeast-2`,
/// `us-gov-west-1`): at most 25 characters of lowercase words, the first of
/// two letters, then a number of one or two digits. Where a region is read from a
/// caller, a template or a member account, this is the one rule.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    text.len() <= 25
        && words.len() >= 2
        && words[0].len() == 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `text` is a name of `[a-z0-9-]{2,32}`, as teams and lease
/// templates are named (a team's is also its OU's name).
pub fn is_slug(text: &str) -> bool {
    (2..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A newtype for a name checked by [`is_slug`], with its parsing (the
/// error names `$what`), serde through `String`, and `Display`.
macro_rules! slug_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, String> {
                if $crate::validation::is_slug(text) {
                    Ok(Self(text.to_string()))
                } else {
                    Err(format!(
                        concat!($what, " must be 2 to 32 characters of a-z, 0-9 and -, got {:?}"),
                        text
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use slug_name;
