//! EventBridge event patterns, matched as Amazon EventBridge (and
//! [aws/event-ruler](https://github.com/aws/event-ruler), which it runs) match
//! them.
//!
//! A pattern is compiled once by [`EventPattern::parse`] or
//! [`EventPattern::from_value`], which refuse what EventBridge refuses, and
//! [`EventPattern::matches`] then only walks the event along the pattern's
//! fields: operands are already unescaped, lower-cased, split or parsed.
//!
//! # Semantics
//!
//! - A pattern is an object. Each field maps to a nested object pattern or to
//!   an array of matchers; all fields must match (AND), any matcher of a
//!   field may (OR). `"$or": [{..}, {..}]` at any level needs one of its
//!   alternatives to match at that level.
//! - Matchers: exact strings, numbers, booleans and `null`; `prefix`,
//!   `suffix` (each also `{"equals-ignore-case": ..}`), `equals-ignore-case`,
//!   `wildcard`, `anything-but` (a string, number, list of either, or
//!   `prefix`/`suffix`/`equals-ignore-case`/`wildcard` of a string or list),
//!   `numeric`, `cidr`, `exists` and event-ruler's `exactly`.
//! - Values only match operands of their own JSON type: `"5"` is not `5`,
//!   `prefix` and friends need strings, `numeric` needs numbers, `cidr` a
//!   string holding an IP address. Numbers compare by value (`300`, `300.0`
//!   and `3e2` are equal); integers beyond f64's precision compare exactly.
//! - Strings compare byte for byte, without normalisation.
//! - Field names are paths joined with dots, as event-ruler names them: a key
//!   `"a.b"` in a pattern or an event is the same field as `{"a": {"b": ..}}`
//!   (event-ruler's README, "Compiled rules and JSON keys with dots", which
//!   warns it may change; EventBridge does it today). Dotted event keys hold
//!   no array element, so they go with any element. A name written twice in
//!   a pattern keeps its last matchers, in the order of the parsed object's
//!   keys (sorted).
//! - `anything-but` matches any present leaf value it does not exclude,
//!   including `null`, booleans, and values of the other type; it never
//!   matches a missing field.
//! - `exists` looks at leaf values (strings, numbers, booleans, `null`):
//!   a field holding an object or an empty array does not exist.
//! - An array in the event matches a leaf matcher if any of its items does
//!   (nested arrays are looked through). An object pattern matched against
//!   an array of objects must be satisfied by one and the same element
//!   (event-ruler's array consistency); see the `tree` module for how this
//!   combines with `exists: false`.
//! - Duplicate keys in a pattern's text: the last one wins, as EventBridge
//!   documents.
//! - Wildcards too complex for EventBridge are refused with its message, by
//!   event-ruler's `MachineComplexityEvaluator` (see the `complexity`
//!   module), as are `$or`s expanding to over 1000 rules.

mod compile;
mod complexity;
mod leaf;
mod text;
mod tree;

use serde_json::Value;

/// A compiled, valid event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    root: tree::Node,
}

/// Why a pattern was refused. The reason uses event-ruler's wording where it
/// has one and ends with the path of the offending part, as in
/// `Unrecognized match type prefixx (at detail.state[0])`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Event pattern is not valid. Reason: {0}")]
pub struct PatternError(pub String);

impl EventPattern {
    /// Parses and compiles a pattern from its JSON text.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| PatternError(format!("Filter is not valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// Compiles a pattern already parsed as JSON.
    pub fn from_value(v: &Value) -> Result<Self, PatternError> {
        compile::compile(v).map(|root| Self { root })
    }

    /// Whether the event (the whole envelope, with `source`, `detail-type`,
    /// `detail`, ...) matches. An event that is not a JSON object matches
    /// nothing.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(event)
    }
}

/// The envelope fields EventBridge's `TestEventPattern` requires of its
/// event. Its API reference also lists `resources`, but EventBridge accepts
/// an event without it.
pub const TEST_EVENT_REQUIRED_FIELDS: [&str; 6] =
    ["id", "account", "source", "time", "region", "detail-type"];

/// Checks an event as `TestEventPattern` checks it before matching: a JSON
/// object with every field of [`TEST_EVENT_REQUIRED_FIELDS`]. The error
/// names what is wrong.
pub fn validate_test_event(event: &Value) -> Result<(), String> {
    let Some(fields) = event.as_object() else {
        return Err("the event must be a JSON object".into());
    };
    let missing: Vec<&str> = TEST_EVENT_REQUIRED_FIELDS
        .into_iter()
        .filter(|f| !fields.contains_key(*f))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "it lacks the mandatory field(s) {}",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pattern(v: Value) -> EventPattern {
        EventPattern::from_value(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn reason(v: Value) -> String {
        EventPattern::from_value(&v).unwrap_err().0
    }

    #[test]
    fn compiled_patterns_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<EventPattern>();
    }

    #[test]
    fn array_consistency_needs_one_element_for_a_sub_pattern() {
        let p = pattern(json!({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}));
        let split = json!({"employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"}
        ]});
        assert!(!p.matches(&split));
        let together = json!({"employees": [[{"firstName": "Anna", "lastName": "Jones"}]]});
        assert!(p.matches(&together));
    }

    #[test]
    fn or_alternatives_are_each_array_consistent() {
        let p = pattern(json!({"a": {"k": ["x"], "$or": [{"b": [1]}, {"c": [2]}]}}));
        assert!(!p.matches(&json!({"a": [{"k": "x"}, {"b": 1}]})));
        assert!(p.matches(&json!({"a": [{"k": "y", "b": 1}, {"k": "x", "c": 2}]})));
    }

    #[test]
    fn absence_is_checked_in_the_element_other_fields_bind() {
        // As event-ruler's testACWithExistFalseRule: the first task instance
        // is ACTIVE and has no interfaceName, the second has one.
        let p = pattern(json!({"tasks": {"state": ["ACTIVE"], "name": [{"exists": false}]}}));
        assert!(
            p.matches(&json!({"tasks": [{"state": "ACTIVE"}, {"state": "IDLE", "name": "n"}]}))
        );
        assert!(
            !p.matches(&json!({"tasks": [{"state": "ACTIVE", "name": "n"}, {"state": "IDLE"}]}))
        );
    }

    #[test]
    fn absence_alone_binds_no_element() {
        // Nothing picks an element, so the field must be absent from all.
        let p = pattern(json!({"a": {"b": [{"exists": false}]}}));
        assert!(!p.matches(&json!({"a": [{"b": 1}, {"c": 2}]})));
        assert!(p.matches(&json!({"a": [{"c": 1}, {"c": 2}]})));
        assert!(p.matches(&json!({"a": []})));
        assert!(p.matches(&json!({"a": "scalar"})));
        assert!(p.matches(&json!({})));
        // One branch of a $or absent everywhere is enough...
        let p = pattern(
            json!({"a": {"$or": [{"b": [{"exists": false}]}, {"c": [{"exists": false}]}]}}),
        );
        assert!(p.matches(&json!({"a": [{"b": 1}, {"b": 2}]})));
        // ...but each branch is judged across all elements.
        assert!(!p.matches(&json!({"a": [{"b": 1}, {"c": 2}]})));
    }

    #[test]
    fn absence_and_values_mix_in_one_field() {
        let p = pattern(json!({"s": [{"anything-but": ["roses"]}, {"exists": false}]}));
        assert!(p.matches(&json!({})));
        assert!(p.matches(&json!({"s": "tulips"})));
        assert!(!p.matches(&json!({"s": "roses"})));
    }

    #[test]
    fn exists_ignores_objects_and_empty_arrays() {
        let present = pattern(json!({"f": [{"exists": true}]}));
        let absent = pattern(json!({"f": [{"exists": false}]}));
        for (event, exists) in [
            (json!({"f": null}), true),
            (json!({"f": ""}), true),
            (json!({"f": [[], [0]]}), true),
            (json!({"f": {"g": 1}}), false),
            (json!({"f": []}), false),
            (json!({"f": [[], {}]}), false),
            (json!({"g": 1}), false),
        ] {
            assert_eq!(present.matches(&event), exists, "{event}");
            assert_eq!(absent.matches(&event), !exists, "{event}");
        }
    }

    #[test]
    fn non_object_events_match_nothing() {
        let p = pattern(json!({"f": [{"exists": false}]}));
        assert!(p.matches(&json!({})));
        assert!(!p.matches(&json!([])));
        assert!(!p.matches(&json!("x")));
        assert!(!p.matches(&json!(null)));
    }

    #[test]
    fn fields_are_evaluated_cheapest_first() {
        let p = pattern(json!({
            "a": {"x": [1]},
            "b": [{"prefix": "p"}],
            "c": ["exact"]
        }));
        let keys: Vec<&str> = p.root.fields.iter().map(|f| &*f.key).collect();
        assert_eq!(keys, ["c", "b", "a"]);
    }

    #[test]
    fn combinations_multiply_across_ors_and_add_within() {
        let three = json!([{"a": [1]}, {"b": [1]}, {"c": [1]}]);
        let two = json!([{"d": [1]}, {"e": [1]}]);
        let p = pattern(json!({"$or": three, "x": {"$or": two}}));
        assert_eq!(p.root.combinations(), 6);
        let nested = pattern(json!({"$or": [{"a": [1]}, {"$or": [{"b": [1]}, {"c": [1]}]}]}));
        assert_eq!(nested.root.combinations(), 3);
    }

    #[test]
    fn too_many_combinations_are_refused() {
        let ten: Vec<Value> = (0..10).map(|i| json!({ format!("f{i}"): [i] })).collect();
        let p = json!({"a": {"$or": ten}, "b": {"$or": ten}, "c": {"$or": ten}});
        assert!(
            EventPattern::from_value(&p).is_ok(),
            "exactly 1000 is allowed"
        );
        let p = json!({"a": {"$or": ten}, "b": {"$or": ten}, "c": {"$or": ten}, "$or": [{"x": [1]}, {"y": [1]}]});
        assert!(reason(p).contains("over 1000 rule combinations"));
    }

    #[test]
    fn error_paths_name_the_offending_part() {
        assert_eq!(
            reason(json!({"detail": {"state": ["ok", {"prefixx": "x"}]}})),
            "Unrecognized match type prefixx (at detail.state[1])"
        );
        assert_eq!(
            reason(json!({"detail": {"$or": [{"a": [1]}, {"b": {"c": []}}]}})),
            "Empty arrays are not allowed (at detail.$or[1].b.c)"
        );
        assert_eq!(
            reason(json!([])),
            "Filter is not an object (at the top level)"
        );
        assert_eq!(
            reason(json!({"$or": {}})),
            "It must be an Array followed with $or. (at $or)"
        );
    }

    #[test]
    fn reserved_names_are_refused_only_inside_or() {
        assert!(EventPattern::from_value(&json!({"prefix": ["x"]})).is_ok());
        let r = reason(json!({"$or": [{"a": [1]}, {"b": {"numeric": [1]}}]}));
        assert!(r.starts_with("numeric is Ruler reserved fieldName"), "{r}");
    }

    #[test]
    fn cidr_splits_like_java() {
        assert!(reason(json!({"ip": [{"cidr": "10.0.0.0/"}]})).contains("one '/' required"));
        assert!(
            reason(json!({"ip": [{"cidr": "10.0.0.0/x"}]}))
                .contains("mask bits must be an integer")
        );
        assert!(reason(json!({"ip": [{"cidr": "10.0.0.0//8"}]})).contains("one '/' required"));
        // Trailing slashes vanish in Java's split, so this one is accepted.
        assert!(EventPattern::from_value(&json!({"ip": [{"cidr": "10.0.0.0/8//"}]})).is_ok());
        assert!(reason(json!({"ip": [{"cidr": "10.0.0.0/-1"}]})).contains("must not be negative"));
        assert!(
            reason(json!({"ip": [{"cidr": "10.0.0.0/32"}]}))
                .contains("IPv4 mask bits must be < 32")
        );
        assert!(
            reason(json!({"ip": [{"cidr": "::/128"}]})).contains("IPv6 mask bits must be < 128")
        );
        assert!(
            reason(json!({"ip": [{"cidr": "999.0.0.0/8"}]}))
                .contains("Invalid IP address: 999.0.0.0")
        );
        // Host bits are cleared, as event-ruler floors the range.
        let p = pattern(json!({"ip": [{"cidr": "10.0.0.77/24"}]}));
        assert!(p.matches(&json!({"ip": "10.0.0.1"})));
    }

    #[test]
    fn deep_patterns_are_refused_not_overflowed() {
        let mut p = json!({"leaf": [1]});
        for _ in 0..200 {
            p = json!({ "n": p });
        }
        assert!(reason(p).contains("nested deeper than"));
    }
}
