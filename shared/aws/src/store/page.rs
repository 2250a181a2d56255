//! Page tokens: the key of the last item a page returned, as URL-safe
//! base64 of a JSON object of its (string) key attributes. Opaque to
//! callers; checked on the way back in, so a token from another listing or
//! a mangled one is refused as a bad token rather than sent to DynamoDB.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use purser_core::StoreError;

use super::items::{Item, describe_key};

/// The token that resumes a listing after `item`: its attributes `names`
/// (the table's key and, for an index, the index's key).
pub(super) fn encode(item: &Item, names: &[&str]) -> Result<String, StoreError> {
    let mut key = BTreeMap::new();
    for name in names {
        match item.get(*name) {
            Some(AttributeValue::S(value)) => {
                key.insert(*name, value.as_str());
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "item {} has no string key attribute {name}",
                    describe_key(item)
                )));
            }
        }
    }
    let json = serde_json::to_vec(&key)
        .map_err(|e| StoreError::Corrupt(format!("a page key cannot be written: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `ExclusiveStartKey` a token stands for. It must name exactly the
/// attributes `names`, and those in `fixed` must have the given values (a
/// team's listing only resumes within that team).
pub(super) fn decode(
    token: &str,
    names: &[&str],
    fixed: &[(&str, &str)],
) -> Result<Item, StoreError> {
    let bad = |why: &str| StoreError::BadPageToken(why.to_owned());
    let json = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("it is not URL-safe base64"))?;
    let key: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| bad("it does not hold a key of this listing"))?;
    if key.len() != names.len() || !names.iter().all(|n| key.contains_key(*n)) {
        return Err(bad("it belongs to another listing"));
    }
    if fixed
        .iter()
        .any(|(name, value)| key.get(*name).map(String::as_str) != Some(*value))
    {
        return Err(bad("it belongs to another listing"));
    }
    Ok(key
        .into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Item {
        [
            ("pk", "ACCOUNT#r-1"),
            ("sk", "ACCOUNT"),
            ("gsi1pk", "TEAM#core"),
            ("gsi1sk", "2025-01-01T00:00:00.000000Z#r-1"),
            ("data", "{}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
        .collect()
    }

    const TEAM_KEY: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];

    #[test]
    fn a_token_carries_the_key_and_nothing_else() {
        let token = encode(&item(), &TEAM_KEY).unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let key = decode(&token, &TEAM_KEY, &[("gsi1pk", "TEAM#core")]).unwrap();
        let mut expected = item();
        expected.remove("data");
        assert_eq!(key, expected);
    }

    #[test]
    fn foreign_and_mangled_tokens_are_refused() {
        let token = encode(&item(), &TEAM_KEY).unwrap();
        let refused = |token: &str, names: &[&str], fixed: &[(&str, &str)]| {
            matches!(
                decode(token, names, fixed),
                Err(StoreError::BadPageToken(_))
            )
        };
        assert!(refused(&token, &TEAM_KEY, &[("gsi1pk", "TEAM#other")]));
        assert!(refused(&token, &["pk", "sk"], &[]));
        assert!(refused("not a token!", &TEAM_KEY, &[]));
        assert!(refused(&URL_SAFE_NO_PAD.encode("[1,2]"), &TEAM_KEY, &[]));
        assert!(refused(&token[..token.len() - 3], &TEAM_KEY, &[]));
    }
}
