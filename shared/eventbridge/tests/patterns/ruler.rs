//! Where EventBridge decides otherwise than its documentation says, or where
//! the documentation is silent: behaviour read in aws/event-ruler (the matcher
//! EventBridge runs) and observed on EventBridge itself.

use purser_eventbridge::{EventPattern, validate_test_event};
use serde_json::{Value, json};

fn compile(pattern: &Value) -> EventPattern {
    EventPattern::from_value(pattern).unwrap_or_else(|e| panic!("{pattern} refused: {e}"))
}

#[track_caller]
fn assert_matches(pattern: &Value, event: &Value) {
    assert!(
        compile(pattern).matches(event),
        "{pattern}\nshould match\n{event}"
    );
}

#[track_caller]
fn assert_no_match(pattern: &Value, event: &Value) {
    assert!(
        !compile(pattern).matches(event),
        "{pattern}\nshould not match\n{event}"
    );
}

// ---------------------------------------------------------------------------
// Keys with dots. event-ruler names every leaf by its path joined with dots
// (Path.java, Event.java's addField, JsonRuleCompiler's writeRules), so
// `{"a": {"b": ..}}` and `{"a.b": ..}` are the same field, in patterns and in
// events alike (README, "Caveat: Compiled rules and JSON keys with dots";
// GenericMachine.isFieldStepUsed splits event keys at dots for that reason).
// ---------------------------------------------------------------------------

#[test]
fn a_dotted_pattern_key_matches_the_nested_event_field() {
    // The README's two rules and two events: every rule matches every event.
    let rules = [
        json!({"detail": {"state": {"status": ["running"]}}}),
        json!({"detail": {"state.status": ["running"]}}),
    ];
    let events = [
        json!({"detail": {"state": {"status": "running"}}}),
        json!({"detail": {"state.status": "running"}}),
    ];
    for rule in &rules {
        for event in &events {
            assert_matches(rule, event);
            let stopped = serde_json::to_string(event)
                .unwrap()
                .replace("running", "stopped");
            assert_no_match(rule, &serde_json::from_str(&stopped).unwrap());
        }
    }
    assert_matches(&json!({"detail.state.status": ["running"]}), &events[0]);
    assert_matches(
        &json!({"detail.state": {"status": ["running"]}}),
        &events[1],
    );
}

#[test]
fn dotted_and_nested_event_keys_under_one_parent_are_one_object() {
    // Both leaves are named detail.state.*, outside any array: consistent.
    let event = json!({"detail": {"state.status": "running", "state": {"code": 16}}});
    assert_matches(
        &json!({"detail": {"state": {"status": ["running"], "code": [16]}}}),
        &event,
    );
    assert_matches(
        &json!({"detail": {"state.status": ["running"], "state.code": [16]}}),
        &event,
    );
    assert_no_match(
        &json!({"detail": {"state": {"status": ["running"], "code": [17]}}}),
        &event,
    );
}

#[test]
fn dotted_pattern_keys_keep_array_consistency() {
    // a.b and a.c are one path prefix: taken from two elements of the same
    // array they are not array consistent (ArrayMembership.java).
    let pattern = json!({"a.b": [1], "a.c": [2]});
    assert_no_match(&pattern, &json!({"a": [{"b": 1}, {"c": 2}]}));
    assert_matches(&pattern, &json!({"a": [{"b": 1, "c": 2}]}));
    assert_matches(&pattern, &json!({"a": [{"b": 0}, {"c": 2, "b": 1}]}));
}

#[test]
fn a_dotted_event_key_beside_an_array_is_consistent_with_its_elements() {
    // a.b=1 sits in no array, so it goes with any element's a.c.
    let pattern = json!({"a": {"b": [1], "c": [2]}});
    assert_matches(&pattern, &json!({"a.b": 1, "a": [{"c": 3}, {"c": 2}]}));
    // An empty array offers no element, and the dotted keys need none.
    assert_matches(&pattern, &json!({"a.b": 1, "a": [], "a.c": 2}));
    assert_no_match(&pattern, &json!({"a.b": 1, "a": [{"c": 3}]}));
}

#[test]
fn a_field_may_hold_a_value_and_dotted_children() {
    // "a" and "a.b" are different names: both can be matched.
    let pattern = json!({"a": [1], "a.b": [2]});
    assert_matches(&pattern, &json!({"a": 1, "a.b": 2}));
    assert_matches(&pattern, &json!({"a": [1, {"b": 2}]}));
    assert_no_match(&pattern, &json!({"a": 1}));
}

#[test]
fn exists_false_sees_dotted_event_keys() {
    let pattern = json!({"detail": {"state": {"status": [{"exists": false}]}}});
    assert_no_match(&pattern, &json!({"detail": {"state.status": "x"}}));
    assert_no_match(&pattern, &json!({"detail.state.status": "x"}));
    assert_matches(&pattern, &json!({"detail": {"state.code": 1}}));
    let pattern = json!({"detail.state.status": [{"exists": true}]});
    assert_matches(&pattern, &json!({"detail": {"state": {"status": null}}}));
}

#[test]
fn the_same_name_written_twice_keeps_the_last() {
    // JsonRuleCompiler.writeRules: rule.put(name, values), overriding.
    let p = EventPattern::parse(r#"{"a": {"b": [2]}, "a.b": [1]}"#).unwrap();
    assert!(p.matches(&json!({"a": {"b": 1}})));
    assert!(!p.matches(&json!({"a": {"b": 2}})));
}

#[test]
fn dotted_keys_inside_or_alternatives() {
    let pattern = json!({"detail": {"$or": [{"x.y": ["1"]}, {"z": ["2"]}]}});
    assert_matches(&pattern, &json!({"detail": {"x": {"y": "1"}}}));
    assert_matches(&pattern, &json!({"detail.x.y": "1"}));
    assert_no_match(&pattern, &json!({"detail": {"x": {"y": "2"}}}));
}

// ---------------------------------------------------------------------------
// Wildcard complexity. EventBridge puts a rule's wildcard sub-rules in one
// event-ruler Machine and refuses the rule when MachineComplexityEvaluator
// (how many wildcard prefixes one value can keep alive at once) exceeds its
// limit (README, "Limiting machine complexity"; EventBridge user guide,
// "Wildcards and event pattern complexity"). The limits below are EventBridge's
// observed answers (see the comments), which its documentation does not give.
// ---------------------------------------------------------------------------

const TOO_COMPLEX: &str = "Rule is too complex - try using fewer wildcard characters or fewer \
                           repeating character sequences after a wildcard character";

fn refusal(pattern: &Value) -> String {
    EventPattern::from_value(pattern).map(|_| ()).unwrap_err().0
}

fn wildcards(operands: &[&str]) -> Value {
    operands.iter().map(|w| json!({"wildcard": w})).collect()
}

#[test]
fn four_repeated_wildcard_paths_are_too_complex() {
    // Refused by EventBridge with this message in an S3 key filter; the same
    // two at a time were accepted (a public Terraform config records both).
    let key = |list: Value| json!({"detail": {"object": {"key": list}}});
    let four = key(wildcards(&[
        "*/datasync/*.bif",
        "*/datasync/*.tif",
        "*/datasync/*.tiff",
        "*/datasync/*.svs",
    ]));
    let reason = refusal(&four);
    assert!(reason.starts_with(TOO_COMPLEX), "{reason}");
    assert!(reason.ends_with("(at detail.object.key)"), "{reason}");
    compile(&key(wildcards(&["*/datasync/*.bif", "*/datasync/*.tif"])));
    compile(&key(wildcards(&["*/datasync/*.tiff", "*/datasync/*.svs"])));
    // Suffix-like wildcards alone were accepted in the same config.
    compile(&key(wildcards(&["*.bif", "*.tiff", "*.tif", "*.svs"])));
}

#[test]
fn stack_id_wildcards_stop_at_three() {
    // EventBridge accepted three `*:stack/<name>/*` filters and refused four
    // ("Rule is too complex", reported in a public pull request).
    let rule = |names: &[&str]| {
        let operands: Vec<String> = names.iter().map(|n| format!("*:stack/{n}/*")).collect();
        let operands: Vec<&str> = operands.iter().map(String::as_str).collect();
        json!({"detail": {"stack-id": wildcards(&operands)}})
    };
    compile(&rule(&["SharedStack", "ApiStack", "DataStack"]));
    let reason = refusal(&rule(&[
        "SharedStack",
        "ApiStack",
        "DataStack",
        "MonitoringStack",
    ]));
    assert!(reason.starts_with(TOO_COMPLEX), "{reason}");
}

#[test]
fn complexity_adds_up_across_or_alternatives_on_one_field() {
    // The sub-rules of a $or share the Machine, so one field's byte machine
    // holds the wildcards of every alternative.
    let pattern = json!({"$or": [
        {"key": wildcards(&["*/datasync/*.bif", "*/datasync/*.tif"])},
        {"key": wildcards(&["*/datasync/*.tiff", "*/datasync/*.svs"])}
    ]});
    assert!(refusal(&pattern).starts_with(TOO_COMPLEX));
}

#[test]
fn anything_but_wildcards_count_too() {
    // MATCH_TYPES_WITH_COMPLEXITY = WILDCARD, ANYTHING_BUT_WILDCARD.
    let pattern = json!({"key": [
        {"anything-but": {"wildcard": ["*/datasync/*.bif", "*/datasync/*.tif"]}},
        {"anything-but": {"wildcard": ["*/datasync/*.tiff", "*/datasync/*.svs"]}},
        {"wildcard": "*/datasync/*.png"}
    ]});
    assert!(refusal(&pattern).starts_with(TOO_COMPLEX));
}

#[test]
fn each_field_is_evaluated_on_its_own() {
    // Each field has its own byte machine; the evaluator takes the highest.
    compile(&json!({
        "a": wildcards(&["*/datasync/*.bif", "*/datasync/*.tif"]),
        "b": wildcards(&["*/datasync/*.tiff", "*/datasync/*.svs"])
    }));
    // So do the same field's wildcards behind different values of a field
    // the ruler reads before it (here "a" < "key"): different name states.
    compile(&json!({"$or": [
        {"a": ["x"], "key": wildcards(&["*/datasync/*.bif", "*/datasync/*.tif"])},
        {"a": ["y"], "key": wildcards(&["*/datasync/*.tiff", "*/datasync/*.svs"])}
    ]}));
}

// ---------------------------------------------------------------------------
// TestEventPattern's event. Its API reference lists id, account, source,
// time, region, resources and detail-type as mandatory, but EventBridge
// accepts an event without `resources` (LocalStack's EventBridge provider,
// validated against AWS: "the documentation says that `resources` is
// mandatory, but it is not in reality").
// ---------------------------------------------------------------------------

fn full_event() -> Value {
    json!({
        "id": "1", "account": "111122223333", "source": "ci", "time": "2024-01-01T00:00:00Z",
        "region": "eu-west-1", "resources": [], "detail-type": "t", "detail": {}
    })
}

#[test]
fn test_event_pattern_accepts_an_event_without_resources() {
    assert_eq!(validate_test_event(&full_event()), Ok(()));
    let mut event = full_event();
    event.as_object_mut().unwrap().remove("resources");
    assert_eq!(validate_test_event(&event), Ok(()));
    // detail is not required either.
    event.as_object_mut().unwrap().remove("detail");
    assert_eq!(validate_test_event(&event), Ok(()));
}

#[test]
fn test_event_pattern_still_requires_the_other_envelope_fields() {
    for field in ["id", "account", "source", "time", "region", "detail-type"] {
        let mut event = full_event();
        event.as_object_mut().unwrap().remove(field);
        let reason = validate_test_event(&event).unwrap_err();
        assert!(reason.contains(field), "{field}: {reason}");
    }
    assert!(validate_test_event(&json!([])).is_err());
    assert!(validate_test_event(&json!("event")).is_err());
}
