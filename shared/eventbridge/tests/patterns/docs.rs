//! The examples of the Amazon EventBridge user guide's pages on event
//! patterns ("Event patterns", "Comparison operators", "Content filtering",
//! "Arrays", "Null values and empty strings") and of aws/event-ruler's README,
//! each pattern with events it does and does not match; then behaviour
//! EventBridge's `TestEventPattern` shows beyond the examples; then refusals.

use purser_eventbridge::{EventPattern, PatternError};
use serde_json::{Value, json};

fn compile(pattern: Value) -> EventPattern {
    EventPattern::from_value(&pattern).unwrap_or_else(|e| panic!("{pattern} refused: {e}"))
}

#[track_caller]
fn assert_matches(pattern: &Value, event: &Value) {
    assert!(
        compile(pattern.clone()).matches(event),
        "{pattern}\nshould match\n{event}"
    );
}

#[track_caller]
fn assert_no_match(pattern: &Value, event: &Value) {
    assert!(
        !compile(pattern.clone()).matches(event),
        "{pattern}\nshould not match\n{event}"
    );
}

/// An EventBridge envelope around `detail`.
fn envelope(detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": detail
    })
}

/// `envelope` with one more top-level field.
fn with(mut event: Value, key: &str, value: Value) -> Value {
    event[key] = value;
    event
}

// ---------------------------------------------------------------------------
// "Amazon EventBridge event patterns"
// ---------------------------------------------------------------------------

#[test]
fn ec2_termination_pattern_matches_the_terminated_instance_event() {
    let pattern = json!({
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["terminated"]}
    });
    let terminated = envelope(json!({"instance-id": "i-1234567890abcdef0", "state": "terminated"}));
    assert_matches(&pattern, &terminated);
    let running = envelope(json!({"instance-id": "i-1234567890abcdef0", "state": "running"}));
    assert_no_match(&pattern, &running);
    let from_elsewhere = with(terminated, "source", json!("aws.autoscaling"));
    assert_no_match(&pattern, &from_elsewhere);
}

#[test]
fn fields_missing_from_the_event_fail_the_match() {
    // The event must contain every field the pattern names, with the same
    // nesting.
    let pattern = json!({"detail": {"state": ["terminated"]}});
    assert_no_match(&pattern, &json!({"source": "aws.ec2"}));
    assert_no_match(&pattern, &json!({"state": "terminated"}));
    assert_no_match(
        &pattern,
        &json!({"detail": {"nested": {"state": "terminated"}}}),
    );
}

#[test]
fn match_values_source_is_ec2_or_fargate() {
    let pattern = json!({"source": ["aws.ec2", "aws.fargate"]});
    assert_matches(
        &pattern,
        &with(envelope(json!({})), "source", json!("aws.ec2")),
    );
    assert_matches(
        &pattern,
        &with(envelope(json!({})), "source", json!("aws.fargate")),
    );
    assert_no_match(
        &pattern,
        &with(envelope(json!({})), "source", json!("aws.ecs")),
    );
}

#[test]
fn strings_match_character_by_character_without_case_folding() {
    let pattern = json!({"source": ["aws.ec2"]});
    assert_no_match(
        &pattern,
        &with(envelope(json!({})), "source", json!("AWS.EC2")),
    );
    assert_no_match(
        &pattern,
        &with(envelope(json!({})), "source", json!("aws.ec2 ")),
    );
    let emoji = json!({"string": ["A CamelCase string with an emoji 🚀 and trailing whitespace "]});
    assert_matches(
        &emoji,
        &json!({"string": "A CamelCase string with an emoji 🚀 and trailing whitespace "}),
    );
}

#[test]
fn field_names_are_case_sensitive() {
    assert_no_match(
        &json!({"MY_KEY": ["my-value"]}),
        &json!({"my_key": "my-value"}),
    );
}

fn autoscaling_launch() -> Value {
    json!({
        "version": "0",
        "id": "3e3c153a-8339-4e30-8c35-687ebef853fe",
        "detail-type": "EC2 Instance Launch Successful",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2015-11-11T21:31:47Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"eventVersion": "", "responseElements": null}
    })
}

#[test]
fn field_matching_null_response_elements() {
    let pattern = json!({
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance Launch Successful"],
        "detail": {"responseElements": [null]}
    });
    assert_matches(&pattern, &autoscaling_launch());
}

#[test]
fn value_matching_macie_severity_score_and_count() {
    let pattern = json!({
        "source": ["aws.macie"],
        "detail-type": ["Macie Finding"],
        "detail": {"severity": {"score": [1]}, "count": [2]}
    });
    let finding = json!({
        "version": "0",
        "id": "0948ba87-d3b8-c6d4-f2da-732a1example",
        "detail-type": "Macie Finding",
        "source": "aws.macie",
        "account": "123456789012",
        "time": "2021-04-29T23:12:15Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "schemaVersion": "1.0",
            "id": "64b917aa-3843-014c-91d8-937ffexample",
            "accountId": "123456789012",
            "partition": "aws",
            "region": "us-east-1",
            "type": "Policy:IAMUser/S3BucketEncryptionDisabled",
            "title": "Encryption is disabled for the S3 bucket",
            "severity": {"score": 1, "description": "Low"},
            "createdAt": "2021-04-29T15:46:02Z",
            "updatedAt": "2021-04-29T23:12:15Z",
            "count": 2
        }
    });
    assert_matches(&pattern, &finding);
    let mut higher = finding.clone();
    higher["detail"]["severity"]["score"] = json!(7);
    assert_no_match(&pattern, &higher);
    let mut string_count = finding;
    string_count["detail"]["count"] = json!("2");
    assert_no_match(&pattern, &string_count);
}

// ---------------------------------------------------------------------------
// "Comparison operators for use in event patterns": one row each.
// ---------------------------------------------------------------------------

#[test]
fn operator_table_and_location_and_day() {
    let pattern = json!({"Location": ["New York"], "Day": ["Monday"]});
    assert_matches(&pattern, &json!({"Location": "New York", "Day": "Monday"}));
    assert_no_match(&pattern, &json!({"Location": "New York", "Day": "Tuesday"}));
    assert_no_match(&pattern, &json!({"Location": "New York"}));
}

#[test]
fn operator_table_anything_but_initializing() {
    let pattern = json!({"state": [{"anything-but": "initializing"}]});
    assert_matches(&pattern, &json!({"state": "running"}));
    assert_no_match(&pattern, &json!({"state": "initializing"}));
}

#[test]
fn operator_table_anything_but_begins_with_us() {
    let pattern = json!({"Region": [{"anything-but": {"prefix": "us-"}}]});
    assert_matches(&pattern, &json!({"Region": "eu-west-1"}));
    assert_no_match(&pattern, &json!({"Region": "us-east-1"}));
}

#[test]
fn operator_table_anything_but_ends_with_png() {
    let pattern = json!({"FileName": [{"anything-but": {"suffix": ".png"}}]});
    assert_matches(&pattern, &json!({"FileName": "photo.jpg"}));
    assert_no_match(&pattern, &json!({"FileName": "photo.png"}));
}

#[test]
fn operator_table_anything_but_ignore_case_initializing() {
    let pattern = json!({"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]});
    assert_matches(&pattern, &json!({"state": "running"}));
    assert_no_match(&pattern, &json!({"state": "INITIALIZING"}));
    assert_no_match(&pattern, &json!({"state": "Initializing"}));
}

#[test]
fn operator_table_anything_but_wildcard_lib_path() {
    let pattern = json!({"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]});
    assert_matches(&pattern, &json!({"FilePath": "/usr/bin/tool"}));
    assert_no_match(&pattern, &json!({"FilePath": "/usr/lib/libc.so"}));
}

#[test]
fn operator_table_begins_with_us() {
    let pattern = json!({"Region": [{"prefix": "us-"}]});
    assert_matches(&pattern, &json!({"Region": "us-west-2"}));
    assert_no_match(&pattern, &json!({"Region": "eu-west-1"}));
}

#[test]
fn operator_table_begins_with_ignore_case_eventb() {
    let pattern = json!({"service": [{"prefix": {"equals-ignore-case": "eventb"}}]});
    assert_matches(&pattern, &json!({"service": "EventBridge"}));
    assert_matches(&pattern, &json!({"service": "EVENTBRIDGE"}));
    assert_no_match(&pattern, &json!({"service": "Lambda"}));
}

#[test]
fn operator_table_empty_last_name() {
    let pattern = json!({"LastName": [""]});
    assert_matches(&pattern, &json!({"LastName": ""}));
    assert_no_match(&pattern, &json!({"LastName": "Doe"}));
    assert_no_match(&pattern, &json!({"LastName": null}));
}

#[test]
fn operator_table_equals_alice() {
    let pattern = json!({"Name": ["Alice"]});
    assert_matches(&pattern, &json!({"Name": "Alice"}));
    assert_no_match(&pattern, &json!({"Name": "alice"}));
}

#[test]
fn operator_table_equals_ignore_case_alice() {
    let pattern = json!({"Name": [{"equals-ignore-case": "alice"}]});
    assert_matches(&pattern, &json!({"Name": "Alice"}));
    assert_matches(&pattern, &json!({"Name": "ALICE"}));
    assert_no_match(&pattern, &json!({"Name": "Alicia"}));
}

#[test]
fn operator_table_ends_with_png() {
    let pattern = json!({"FileName": [{"suffix": ".png"}]});
    assert_matches(&pattern, &json!({"FileName": "image.png"}));
    assert_no_match(&pattern, &json!({"FileName": "image.PNG"}));
}

#[test]
fn operator_table_ends_with_ignore_case_tbridge() {
    let pattern = json!({"service": [{"suffix": {"equals-ignore-case": "tBridge"}}]});
    assert_matches(&pattern, &json!({"service": "EventBridge"}));
    assert_matches(&pattern, &json!({"service": "EVENTBRIDGE"}));
    assert_no_match(&pattern, &json!({"service": "EventBus"}));
}

#[test]
fn operator_table_exists_product_name() {
    let pattern = json!({"ProductName": [{"exists": true}]});
    assert_matches(&pattern, &json!({"ProductName": "Widget"}));
    assert_no_match(&pattern, &json!({"ProductId": 7}));
}

#[test]
fn operator_table_does_not_exist_product_name() {
    let pattern = json!({"ProductName": [{"exists": false}]});
    assert_matches(&pattern, &json!({"ProductId": 7}));
    assert_no_match(&pattern, &json!({"ProductName": "Widget"}));
}

#[test]
fn operator_table_not_raining() {
    let pattern = json!({"Weather": [{"anything-but": ["Raining"]}]});
    assert_matches(&pattern, &json!({"Weather": "Sunny"}));
    assert_no_match(&pattern, &json!({"Weather": "Raining"}));
}

#[test]
fn operator_table_null_user_id() {
    let pattern = json!({"UserID": [null]});
    assert_matches(&pattern, &json!({"UserID": null}));
    assert_no_match(&pattern, &json!({"UserID": "null"}));
    assert_no_match(&pattern, &json!({}));
}

#[test]
fn operator_table_numeric_equals_price_100() {
    let pattern = json!({"Price": [{"numeric": ["=", 100]}]});
    assert_matches(&pattern, &json!({"Price": 100}));
    assert_matches(&pattern, &json!({"Price": 100.0}));
    assert_no_match(&pattern, &json!({"Price": 100.5}));
    assert_no_match(&pattern, &json!({"Price": "100"}));
}

#[test]
fn operator_table_numeric_range_price_above_10_up_to_20() {
    let pattern = json!({"Price": [{"numeric": [">", 10, "<=", 20]}]});
    assert_matches(&pattern, &json!({"Price": 20}));
    assert_matches(&pattern, &json!({"Price": 10.01}));
    assert_no_match(&pattern, &json!({"Price": 10}));
    assert_no_match(&pattern, &json!({"Price": 20.5}));
}

#[test]
fn operator_table_or_payment_type() {
    let pattern = json!({"PaymentType": ["Credit", "Debit"]});
    assert_matches(&pattern, &json!({"PaymentType": "Debit"}));
    assert_no_match(&pattern, &json!({"PaymentType": "Cash"}));
}

#[test]
fn operator_table_or_across_fields_location_or_day() {
    let pattern = json!({"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]});
    assert_matches(&pattern, &json!({"Location": "New York", "Day": "Sunday"}));
    assert_matches(&pattern, &json!({"Location": "Paris", "Day": "Monday"}));
    assert_no_match(&pattern, &json!({"Location": "Paris", "Day": "Sunday"}));
}

#[test]
fn operator_table_wildcard_dir_png() {
    let pattern = json!({"FileName": [{"wildcard": "dir/*.png"}]});
    assert_matches(&pattern, &json!({"FileName": "dir/image.png"}));
    assert_matches(&pattern, &json!({"FileName": "dir/sub/image.png"}));
    assert_no_match(&pattern, &json!({"FileName": "other/image.png"}));
    assert_no_match(&pattern, &json!({"FileName": "dir/image.png.bak"}));
}

// ---------------------------------------------------------------------------
// "Matching null values and empty strings"
// ---------------------------------------------------------------------------

#[test]
fn empty_string_event_version_matches_empty_string_pattern() {
    assert_matches(
        &json!({"detail": {"eventVersion": [""]}}),
        &autoscaling_launch(),
    );
}

#[test]
fn null_response_elements_matches_null_pattern() {
    assert_matches(
        &json!({"detail": {"responseElements": [null]}}),
        &autoscaling_launch(),
    );
}

#[test]
fn null_and_empty_string_are_not_interchangeable() {
    assert_no_match(
        &json!({"detail": {"responseElements": [""]}}),
        &autoscaling_launch(),
    );
    assert_no_match(
        &json!({"detail": {"eventVersion": [null]}}),
        &autoscaling_launch(),
    );
    let mut quoted = autoscaling_launch();
    quoted["detail"]["responseElements"] = json!("null");
    assert_no_match(&json!({"detail": {"responseElements": [null]}}), &quoted);
}

// ---------------------------------------------------------------------------
// "Arrays in Amazon EventBridge event patterns"
// ---------------------------------------------------------------------------

#[test]
fn arrays_match_when_pattern_and_event_arrays_intersect() {
    let pattern = json!({"resources": [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"
    ]});
    let event = json!({"resources": [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"
    ]});
    assert_matches(&pattern, &event);
    let disjoint = json!({"resources": [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate"
    ]});
    assert_no_match(&pattern, &disjoint);
}

#[test]
fn an_empty_event_array_matches_no_value() {
    assert_no_match(&json!({"resources": [null]}), &autoscaling_launch());
    assert_no_match(&json!({"resources": [""]}), &autoscaling_launch());
}

// ---------------------------------------------------------------------------
// "Content filtering in Amazon EventBridge event patterns"
// ---------------------------------------------------------------------------

#[test]
fn prefix_matching_time_on_2017_10_02() {
    let pattern = json!({"time": [{"prefix": "2017-10-02"}]});
    assert_matches(
        &pattern,
        &with(envelope(json!({})), "time", json!("2017-10-02T18:43:48Z")),
    );
    assert_no_match(
        &pattern,
        &with(envelope(json!({})), "time", json!("2017-10-03T18:43:48Z")),
    );
}

#[test]
fn prefix_matching_ignoring_case_service_eventb() {
    let pattern = json!({"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}});
    for service in ["EventBridge", "EVENTBRIDGE", "eventbus", "EvEnTb"] {
        assert_matches(&pattern, &envelope(json!({"service": service})));
    }
    assert_no_match(&pattern, &envelope(json!({"service": "Event"})));
    assert_no_match(&pattern, &envelope(json!({"service": "MyEventBridge"})));
}

#[test]
fn suffix_matching_file_name_png() {
    let pattern = json!({"FileName": [{"suffix": ".png"}]});
    assert_matches(&pattern, &json!({"FileName": "image.png"}));
    assert_no_match(&pattern, &json!({"FileName": "image.png.txt"}));
    assert_no_match(
        &json!({"FileName": [{"suffix": ".PNG"}]}),
        &json!({"FileName": "image.png"}),
    );
}

#[test]
fn suffix_matching_ignoring_case_file_name_png() {
    let pattern = json!({"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}});
    assert_matches(&pattern, &envelope(json!({"FileName": "image.png"})));
    assert_matches(&pattern, &envelope(json!({"FileName": "image.PNG"})));
    assert_matches(&pattern, &envelope(json!({"FileName": "image.Png"})));
    assert_no_match(&pattern, &envelope(json!({"FileName": "image.jpg"})));
}

#[test]
fn anything_but_string_initializing() {
    let pattern = json!({"detail": {"state": [{"anything-but": "initializing"}]}});
    assert_matches(&pattern, &envelope(json!({"state": "pending"})));
    assert_no_match(&pattern, &envelope(json!({"state": "initializing"})));
}

#[test]
fn anything_but_number_123() {
    let pattern = json!({"detail": {"x-limit": [{"anything-but": 123}]}});
    assert_matches(&pattern, &envelope(json!({"x-limit": 789})));
    assert_no_match(&pattern, &envelope(json!({"x-limit": 123})));
    assert_no_match(&pattern, &envelope(json!({"x-limit": 123.0})));
}

#[test]
fn anything_but_list_of_strings_stopped_overloaded() {
    let pattern = json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}});
    assert_matches(&pattern, &envelope(json!({"state": "pending"})));
    assert_no_match(&pattern, &envelope(json!({"state": "stopped"})));
    assert_no_match(&pattern, &envelope(json!({"state": "overloaded"})));
}

#[test]
fn anything_but_list_of_numbers_100_200_300() {
    let pattern = json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}});
    assert_matches(&pattern, &envelope(json!({"x-limit": 999})));
    assert_no_match(&pattern, &envelope(json!({"x-limit": 100})));
    assert_no_match(&pattern, &envelope(json!({"x-limit": 3e2})));
}

#[test]
fn anything_but_prefix_init() {
    let pattern = json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}});
    assert_matches(&pattern, &envelope(json!({"state": "post-init"})));
    assert_no_match(&pattern, &envelope(json!({"state": "init-prefix"})));
    assert_no_match(&pattern, &envelope(json!({"state": "initializing"})));
}

#[test]
fn anything_but_prefix_list_init_error() {
    let pattern = json!({"detail": {"state": [{"anything-but": {"prefix": ["init", "error"]}}]}});
    assert_matches(&pattern, &envelope(json!({"state": "running"})));
    assert_no_match(&pattern, &envelope(json!({"state": "initializing"})));
    assert_no_match(&pattern, &envelope(json!({"state": "error-disk"})));
}

#[test]
fn anything_but_suffix_txt() {
    let pattern = json!({"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}});
    assert_matches(&pattern, &envelope(json!({"FileName": "file.txt.bak"})));
    assert_no_match(&pattern, &envelope(json!({"FileName": "file.txt"})));
}

#[test]
fn anything_but_suffix_list_1234_6789() {
    let pattern =
        json!({"detail": {"instance-id": [{"anything-but": {"suffix": ["1234", "6789"]}}]}});
    assert_matches(&pattern, &envelope(json!({"instance-id": "i-0000"})));
    assert_no_match(&pattern, &envelope(json!({"instance-id": "i-1234"})));
    assert_no_match(&pattern, &envelope(json!({"instance-id": "i-6789"})));
}

#[test]
fn anything_but_ignore_case_stopped() {
    let pattern =
        json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": "Stopped"}}]}});
    assert_matches(&pattern, &envelope(json!({"state": "running"})));
    assert_no_match(&pattern, &envelope(json!({"state": "STOPPED"})));
    assert_no_match(&pattern, &envelope(json!({"state": "stopped"})));
}

#[test]
fn anything_but_ignore_case_list_stopped_overloaded() {
    let pattern = json!({"detail": {"state": [
        {"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}
    ]}});
    assert_matches(&pattern, &envelope(json!({"state": "pending"})));
    assert_no_match(&pattern, &envelope(json!({"state": "stopped"})));
    assert_no_match(&pattern, &envelope(json!({"state": "OVERLOADED"})));
}

#[test]
fn anything_but_wildcard_bin_jar() {
    let pattern = json!({"detail": {"state": [{"anything-but": {"wildcard": "*/bin/*.jar"}}]}});
    assert_matches(&pattern, &envelope(json!({"state": "/usr/lib/app.jar"})));
    assert_no_match(&pattern, &envelope(json!({"state": "/usr/bin/app.jar"})));
}

#[test]
fn anything_but_wildcard_list_jar_and_class() {
    let pattern = json!({"detail": {"state": [
        {"anything-but": {"wildcard": ["*/bin/*.jar", "*/bin/*.class"]}}
    ]}});
    assert_matches(&pattern, &envelope(json!({"state": "/opt/bin/app.war"})));
    assert_no_match(&pattern, &envelope(json!({"state": "/opt/bin/App.class"})));
    assert_no_match(&pattern, &envelope(json!({"state": "/opt/bin/app.jar"})));
}

#[test]
fn anything_but_empty_wildcard_excludes_only_the_empty_string() {
    let pattern = json!({"detail": {"FilePath": [{"anything-but": {"wildcard": ""}}]}});
    assert_matches(&pattern, &envelope(json!({"FilePath": "dir/init/file"})));
    assert_no_match(&pattern, &envelope(json!({"FilePath": ""})));
}

#[test]
fn numeric_matching_all_fields_must_hold() {
    let pattern = json!({"detail": {
        "c-count": [{"numeric": [">", 0, "<=", 5]}],
        "d-count": [{"numeric": ["<", 10]}],
        "x-limit": [{"numeric": ["=", 3.018e2]}]
    }});
    assert_matches(
        &pattern,
        &envelope(json!({"c-count": 5, "d-count": 9, "x-limit": 301.8})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"c-count": 0, "d-count": 9, "x-limit": 301.8})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"c-count": 42, "d-count": 9, "x-limit": 301.8})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"c-count": 3, "d-count": 10, "x-limit": 301.8})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"c-count": 3, "d-count": 9, "x-limit": 301.9})),
    );
}

#[test]
fn ip_address_matching_ipv4_10_0_0_0_slash_24() {
    let pattern = json!({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}});
    assert_matches(&pattern, &envelope(json!({"sourceIPAddress": "10.0.0.0"})));
    assert_matches(
        &pattern,
        &envelope(json!({"sourceIPAddress": "10.0.0.255"})),
    );
    assert_no_match(&pattern, &envelope(json!({"sourceIPAddress": "10.0.1.0"})));
    assert_no_match(
        &pattern,
        &envelope(json!({"sourceIPAddress": "10.0.0.256"})),
    );
    assert_no_match(&pattern, &envelope(json!({"sourceIPAddress": 123})));
}

#[test]
fn ip_address_matching_ipv6() {
    let pattern = json!({"detail": {"sourceIPAddress": [{"cidr": "2001:db8:1234:1a00::/64"}]}});
    let inside = "2001:0db8:1234:1a00:0000:0000:0000:0000";
    assert_matches(&pattern, &envelope(json!({"sourceIPAddress": inside})));
    assert_matches(
        &pattern,
        &envelope(json!({"sourceIPAddress": "2001:db8:1234:1a00:ffff::1"})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"sourceIPAddress": "2001:0db8:123f:1a01:0000:0000:0000:0000"})),
    );
    assert_no_match(&pattern, &envelope(json!({"sourceIPAddress": "10.0.0.1"})));
}

#[test]
fn exists_matching_state_exists() {
    let pattern = json!({"detail": {"state": [{"exists": true}]}});
    let pending = json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2015-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-abcd1111", "state": "pending"}
    });
    assert_matches(&pattern, &pending);
    let without_state = json!({
        "detail-type": ["EC2 Instance State-change Notification"],
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"],
        "detail": {"c-count": {"c1": 100}}
    });
    assert_no_match(&pattern, &without_state);
}

#[test]
fn exists_false_matches_events_without_the_field() {
    let pattern = json!({"detail": {"state": [{"exists": false}]}});
    assert_matches(&pattern, &envelope(json!({"instance-id": "i-abcd1111"})));
    assert_no_match(&pattern, &envelope(json!({"state": "pending"})));
    // A missing parent counts as a missing field.
    assert_matches(&pattern, &json!({"source": "aws.ec2"}));
}

#[test]
fn exists_works_on_leaf_nodes_only() {
    // event-ruler's README: c-count holding an object is not a leaf, so
    // "exists: false" matches and "exists: true" does not.
    let event = json!({
        "detail-type": ["EC2 Instance State-change Notification"],
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
        "detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}
    });
    assert_matches(&json!({"detail": {"c-count": [{"exists": false}]}}), &event);
    assert_no_match(&json!({"detail": {"c-count": [{"exists": true}]}}), &event);
    assert_matches(
        &json!({"detail": {"c-count": {"c1": [{"exists": true}]}}}),
        &event,
    );
}

#[test]
fn equals_ignore_case_detail_type() {
    let pattern =
        json!({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]});
    let event = json!({
        "detail-type": ["EC2 Instance State-change Notification"],
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"],
        "detail": {"c-count": {"c1": 100}}
    });
    assert_matches(&pattern, &event);
    assert_no_match(
        &json!({"detail-type": [{"equals-ignore-case": "I do not match"}]}),
        &event,
    );
}

#[test]
fn equals_ignore_case_of_the_empty_string() {
    let pattern = json!({"detail": {"value": [{"equals-ignore-case": ""}]}});
    assert_matches(&pattern, &envelope(json!({"value": ""})));
    assert_no_match(&pattern, &envelope(json!({"value": "test-value"})));
}

#[test]
fn wildcard_event_bus_arn_any_account() {
    let pattern = json!({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]});
    let arn = "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus";
    assert_matches(&pattern, &json!({"EventBusArn": arn}));
    assert_no_match(
        &pattern,
        &json!({"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/myEventBus"}),
    );
}

#[test]
fn wildcard_spans_repeated_directories() {
    let file = "/Users/ls_user/dir/dir/dir/dir/dir/doc.txt";
    assert_matches(
        &json!({"FileName": [{"wildcard": "/Users/*/doc.txt"}]}),
        &json!({"FileName": file}),
    );
    assert_matches(
        &json!({"FileName": [{"wildcard": "/Users/*/dir/dir/dir/dir/dir/doc.txt"}]}),
        &json!({"FileName": file}),
    );
    assert_no_match(
        &json!({"FileName": [{"wildcard": "/Users/*/dir/dir/dir/dir/dir/doc.txt"}]}),
        &json!({"FileName": "/Users/ls_user/dir/dir/dir/dir/otherdir/doc.txt"}),
    );
    assert_no_match(
        &json!({"FileName": [{"wildcard": "/Users/*/doc.txt"}]}),
        &json!({"FileName": "/Users/ls_user/notmatchingdoc.txt.bak"}),
    );
}

#[test]
fn wildcard_escapes_match_a_literal_star_and_backslash() {
    let pattern = json!({"detail": {
        "escape_star": [{"wildcard": "\\*"}],
        "escape_backslash": [{"wildcard": "\\\\"}]
    }});
    assert_matches(
        &pattern,
        &envelope(json!({"escape_star": "*", "escape_backslash": "\\"})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"escape_star": "x", "escape_backslash": "\\"})),
    );
}

#[test]
fn wildcard_empty_matches_only_the_empty_string() {
    let pattern = json!({"EventBusArn": [{"wildcard": ""}]});
    assert_matches(&pattern, &json!({"EventBusArn": ""}));
    assert_no_match(
        &pattern,
        &json!({"EventBusArn": "arn:aws:events:us-east-1:1:event-bus/b"}),
    );
}

#[test]
fn complex_example_with_multiple_matching() {
    let pattern = json!({
        "time": [{"prefix": "2017-10-02"}],
        "detail": {
            "state": [{"anything-but": "initializing"}],
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"anything-but": [100, 200, 300]}]
        }
    });
    let event = |x_limit: Value| {
        with(
            envelope(
                json!({"state": "processing", "c-count": 3, "d-count": 9, "x-limit": x_limit}),
            ),
            "time",
            json!("2017-10-02T16:24:49Z"),
        )
    };
    assert_matches(&pattern, &event(json!(999)));
    assert_no_match(&pattern, &event(json!(300)));
}

#[test]
fn a_key_given_twice_keeps_its_last_value() {
    let text = r#"{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}"#;
    let pattern = EventPattern::parse(text).unwrap();
    assert!(pattern.matches(&envelope(json!({"location": "eu-central-1"}))));
    assert!(!pattern.matches(&envelope(json!({"location": "us-east"}))));
}

#[test]
fn complex_example_with_or_matching() {
    let pattern = json!({"detail": {"$or": [
        {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
        {"d-count": [{"numeric": ["<", 10]}]},
        {"x-limit": [{"numeric": ["=", 3.018e2]}]}
    ]}});
    assert_matches(
        &pattern,
        &envelope(json!({"c-count": 0, "d-count": 0, "x-limit": 901.8})),
    );
    assert_matches(
        &pattern,
        &envelope(json!({"c-count": 1, "d-count": 10, "x-limit": 901.8})),
    );
    assert_matches(
        &pattern,
        &envelope(json!({"c-count": 0, "d-count": 10, "x-limit": 301.8})),
    );
    assert_no_match(
        &pattern,
        &envelope(json!({"c-count": 0, "d-count": 10, "x-limit": 901.8})),
    );
}

#[test]
fn or_over_1000_rule_combinations_is_refused() {
    let alternatives = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({ format!("k{i}"): [i] }))
            .collect::<Vec<_>>()
            .into()
    };
    let ok = json!({"a": {"$or": alternatives(10)}, "b": {"$or": alternatives(100)}});
    assert!(EventPattern::from_value(&ok).is_ok());
    let too_many = json!({"a": {"$or": alternatives(11)}, "b": {"$or": alternatives(100)}});
    let err = EventPattern::from_value(&too_many).unwrap_err();
    assert!(err.0.contains("over 1000 rule combinations"), "{err}");
}

// ---------------------------------------------------------------------------
// aws/event-ruler README
// ---------------------------------------------------------------------------

fn ruler_example_event() -> Value {
    json!({
        "version": "0",
        "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "012345679012",
        "time": "2017-10-02T16:24:49Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
        "detail": {
            "c-count": 5,
            "d-count": 3,
            "x-limit": 301.8,
            "source-ip": "10.0.0.33",
            "instance-id": "i-000000aaaaaa00000",
            "state": "running"
        }
    })
}

#[test]
fn ruler_readme_rules_all_match_the_example_event() {
    let event = ruler_example_event();
    for rule in [
        json!({
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {"state": ["initializing", "running"]}
        }),
        json!({"time": [{"prefix": "2017-10-02"}]}),
        json!({"source": [{"prefix": {"equals-ignore-case": "AWS.EC"}}]}),
        json!({"source": [{"suffix": "ec2"}]}),
        json!({"source": [{"suffix": {"equals-ignore-case": "EC2"}}]}),
        json!({"source": [{"equals-ignore-case": "AWS.EC2"}]}),
        json!({"source": [{"wildcard": "aws.*"}]}),
        json!({"detail": {"state": [{"anything-but": "initializing"}]}}),
        json!({"detail": {"x-limit": [{"anything-but": 123}]}}),
        json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}),
        json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}),
        json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}),
        json!({"detail": {"instance-id": [{"anything-but": {"suffix": "1234"}}]}}),
        json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": "Stopped"}}]}}),
        json!({"detail": {"state": [{"anything-but": {"wildcard": "*/bin/*.jar"}}]}}),
        json!({"detail": {
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"numeric": ["=", 3.018e2]}]
        }}),
        json!({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}),
        json!({"detail": {"c-count": [{"exists": true}]}}),
        json!({
            "time": [{"prefix": "2017-10-02"}],
            "detail": {
                "state": [{"anything-but": "initializing"}],
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"anything-but": [100, 200, 300]}],
                "source-ip": [{"cidr": "10.0.0.0/8"}]
            }
        }),
    ] {
        assert_matches(&rule, &event);
    }
}

#[test]
fn ruler_readme_rules_that_do_not_match_the_example_event() {
    let event = ruler_example_event();
    for rule in [
        json!({"detail": {"c-count": [{"exists": false}]}}),
        json!({"detail": {"state": [{"anything-but": "running"}]}}),
        json!({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}),
        json!({"detail": {"c-count": [{"numeric": [">", 5]}]}}),
        json!({"source": [{"equals-ignore-case": "AWS.EC"}]}),
        json!({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}),
    ] {
        assert_no_match(&rule, &event);
    }
}

fn cloudwatch_event(fields: Value) -> Value {
    let mut event = json!({"source": "aws.cloudwatch"});
    if let (Some(event), Some(fields)) = (event.as_object_mut(), fields.as_object()) {
        event.extend(fields.clone());
    }
    event
}

#[test]
fn ruler_readme_normal_or() {
    let rule = json!({
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"namespace": ["AWS/EC2", "AWS/ES"]}
        ]
    });
    assert_matches(
        &rule,
        &cloudwatch_event(json!({"metricName": "ReadLatency"})),
    );
    assert_matches(&rule, &cloudwatch_event(json!({"namespace": "AWS/ES"})));
    assert_no_match(
        &rule,
        &cloudwatch_event(json!({"metricName": "Errors", "namespace": "AWS/S3"})),
    );
    assert_no_match(&rule, &json!({"source": "aws.ec2", "namespace": "AWS/ES"}));
}

#[test]
fn ruler_readme_parallel_or() {
    let rule = json!({
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"namespace": ["AWS/EC2", "AWS/ES"]}
        ],
        "detail": {"$or": [
            {"source": ["aws.cloudwatch"]},
            {"detail-type": ["CloudWatch Alarm State Change"]}
        ]}
    });
    assert_matches(
        &rule,
        &json!({"namespace": "AWS/EC2", "detail": {"detail-type": "CloudWatch Alarm State Change"}}),
    );
    assert_matches(
        &rule,
        &json!({"metricName": "CPUUtilization", "detail": {"source": "aws.cloudwatch"}}),
    );
    assert_no_match(
        &rule,
        &json!({"metricName": "CPUUtilization", "detail": {"source": "aws.ec2"}}),
    );
    assert_no_match(&rule, &json!({"detail": {"source": "aws.cloudwatch"}}));
}

#[test]
fn ruler_readme_or_with_and_inside() {
    let rule = json!({
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"]},
            {"scope": ["Service"]}
        ]
    });
    assert_matches(
        &rule,
        &cloudwatch_event(json!({"metricType": "MetricType", "namespace": "AWS/EC2"})),
    );
    assert_matches(&rule, &cloudwatch_event(json!({"scope": "Service"})));
    assert_no_match(
        &rule,
        &cloudwatch_event(json!({"metricType": "MetricType"})),
    );
    assert_no_match(&rule, &cloudwatch_event(json!({"namespace": "AWS/EC2"})));
}

#[test]
fn ruler_readme_nested_or_and_and() {
    let rule = json!({
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {
                "metricType": ["MetricType"],
                "namespace": ["AWS/EC2", "AWS/ES"],
                "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]
            },
            {"scope": ["Service"]}
        ]
    });
    let both = json!({"metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000});
    assert_matches(&rule, &cloudwatch_event(both));
    let neither = json!({"metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1001});
    assert_no_match(&rule, &cloudwatch_event(neither));
    assert_matches(
        &rule,
        &cloudwatch_event(json!({"metricName": "CPUUtilization"})),
    );
}

#[test]
fn ruler_readme_array_matching_crushes_arrays_of_objects() {
    let rule = json!({"employees": {"firstName": ["Anna"]}});
    let flat = json!({"employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"}
    ]});
    assert_matches(&rule, &flat);
    let multi_level = json!({"employees": [
        [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
        [{"firstName": "Peter", "lastName": "Jones"}]
    ]});
    assert_matches(&rule, &multi_level);
}

#[test]
fn ruler_readme_array_consistency_refuses_fields_from_different_elements() {
    let rule = json!({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}});
    let event = json!({"employees": [
        [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
        [{"firstName": "Peter", "lastName": "Jones"}]
    ]});
    assert_no_match(&rule, &event);
    assert_matches(
        &json!({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}),
        &event,
    );
}

// ---------------------------------------------------------------------------
// Behaviour EventBridge's TestEventPattern shows beyond the examples.
// ---------------------------------------------------------------------------

#[test]
fn booleans_match_booleans() {
    assert_matches(&json!({"boolean": [false]}), &json!({"boolean": false}));
    assert_no_match(&json!({"boolean": [false]}), &json!({"boolean": true}));
    assert_no_match(&json!({"boolean": [true]}), &json!({"boolean": "true"}));
}

#[test]
fn numbers_match_by_value() {
    assert_matches(&json!({"number": [300]}), &json!({"number": 300.0}));
    assert_matches(&json!({"number": [300]}), &json!({"number": 3e2}));
    assert_matches(
        &json!({"number": [{"numeric": [">", 100]}]}),
        &json!({"number": 101.0}),
    );
    assert_no_match(
        &json!({"number": [{"numeric": [">", 100]}]}),
        &json!({"number": "300"}),
    );
    assert_no_match(
        &json!({"number": [{"numeric": [">", 100]}]}),
        &json!({"number": null}),
    );
    assert_no_match(&json!({"number": ["300"]}), &json!({"number": 300}));
}

#[test]
fn anything_but_matches_null_values() {
    let null_state = envelope(json!({"state": null}));
    for operand in [
        json!("initializing"),
        json!(["stopped", "running"]),
        json!({"prefix": "init"}),
        json!({"prefix": ["init", "test"]}),
        json!({"suffix": ".txt"}),
        json!({"suffix": [".txt", ".jpg"]}),
        json!({"equals-ignore-case": "initializing"}),
        json!({"equals-ignore-case": ["initializing", "stopped"]}),
        json!({"wildcard": "*/dir/*"}),
        json!({"wildcard": ["*/init/*", "*/dir/*"]}),
    ] {
        assert_matches(
            &json!({"detail": {"state": [{"anything-but": operand}]}}),
            &null_state,
        );
    }
}

#[test]
fn anything_but_never_matches_a_missing_field() {
    let missing = envelope(json!({}));
    for operand in [
        json!("initializing"),
        json!(123),
        json!(["stopped", "overloaded"]),
        json!({"prefix": "init"}),
        json!({"suffix": [".txt", ".jpg"]}),
        json!({"equals-ignore-case": "initializing"}),
        json!({"wildcard": "*/init/*"}),
    ] {
        assert_no_match(
            &json!({"detail": {"state": [{"anything-but": operand}]}}),
            &missing,
        );
    }
}

#[test]
fn anything_but_string_operators_match_numbers() {
    let numeric_state = envelope(json!({"state": 12}));
    for operand in [
        json!({"prefix": "init"}),
        json!({"prefix": ["init", "test"]}),
        json!({"wildcard": "*/dir/*"}),
        json!("12"),
    ] {
        assert_matches(
            &json!({"detail": {"state": [{"anything-but": operand}]}}),
            &numeric_state,
        );
    }
}

#[test]
fn exists_on_an_empty_list_does_not_match() {
    assert_no_match(
        &json!({"resources": [{"exists": true}]}),
        &autoscaling_launch(),
    );
}

#[test]
fn exists_inside_a_list_of_objects() {
    let event = json!({"detail": {"automations": [
        {"key1": "value1"}, {"id": "match-does-exist"}, {"key2": "value2"}
    ]}});
    assert_matches(
        &json!({"detail": {"automations": {"id": [{"exists": true}]}}}),
        &event,
    );
}

#[test]
fn exists_false_deep_under_a_misspelled_parent() {
    let event = envelope(json!({"level1": {"level2": "l2 value"}}));
    let pattern =
        json!({"detail": {"level1": {"level2:": {"level3": {"level4": [{"exists": false}]}}}}});
    assert_matches(&pattern, &event);
    let present = envelope(json!({"level1": {"level2": {"level3": {"level4": "l4 value"}}}}));
    let pattern =
        json!({"detail": {"level1": {"level2": {"level3": {"level4": [{"exists": false}]}}}}});
    assert_no_match(&pattern, &present);
}

#[test]
fn exists_true_on_an_object_valued_field_does_not_match() {
    let event = json!({"dynamodb": {"id": {"S": "test1234"}, "presentKey": {"S": "test123"}}});
    assert_matches(
        &json!({"dynamodb": {"presentKey": {"S": [{"exists": true}]}}}),
        &event,
    );
    assert_no_match(
        &json!({"dynamodb": {"presentKey": [{"exists": true}]}}),
        &event,
    );
}

#[test]
fn anything_but_or_exists_false_in_one_field() {
    let pattern = json!({"dynamodb": {"NewImage": {"homemade": {"S": [
        {"anything-but": ["roses"]},
        {"exists": false}
    ]}}}});
    let stream = |image: Value| json!({"source": "order", "dynamodb": {"NewImage": image}});
    assert_matches(
        &pattern,
        &stream(json!({"homemade": {"S": "ABCD", "N": "1234"}})),
    );
    assert_matches(&pattern, &stream(json!({"homemade": {"N": "789"}})));
    assert_matches(&pattern, &stream(json!({"purchased": {"N": "789"}})));
    assert_no_match(&pattern, &stream(json!({"homemade": {"S": "roses"}})));
}

#[test]
fn numeric_or_anything_but_on_a_string_number() {
    let pattern = json!({"dynamodb": {"NewImage": {"numericFilter": {"N": [
        {"numeric": [">", 100]},
        {"anything-but": "101"}
    ]}}}});
    let stream = |n: &str| json!({"dynamodb": {"NewImage": {"numericFilter": {"N": n}}}});
    assert_matches(&pattern, &stream("42"));
    assert_no_match(&pattern, &stream("101"));
}

#[test]
fn dynamodb_stream_keys_by_prefix() {
    let pattern = json!({"dynamodb": {"Keys": {
        "PK": {"S": [{"prefix": "COMPANY"}]},
        "SK": {"S": [{"prefix": "PRODUCT"}]}
    }}});
    let event = json!({"dynamodb": {"Keys": {
        "SK": {"S": "PRODUCT#CHOCOLATE#DARK#1000"},
        "PK": {"S": "COMPANY#1000"}
    }}});
    assert_matches(&pattern, &event);
    assert_matches(
        &json!({"dynamodb": {"NewImage": {"homemade": {"N": ["1234"]}}}}),
        &json!({
            "dynamodb": {"NewImage": {"homemade": {"S": "ABCD", "N": "1234"}}}
        }),
    );
}

#[test]
fn a_json_string_is_not_parsed_as_an_object() {
    assert_no_match(
        &json!({"detail": {"my-key": ["my-value"]}}),
        &json!({"detail": "{\"my-key\": \"my-value\"}"}),
    );
}

#[test]
fn several_matchers_in_one_field_are_alternatives() {
    let pattern =
        json!({"my_key": [{"exists": true}, {"prefix": "IGNORED"}, {"suffix": "IGNORED"}]});
    assert_matches(&pattern, &json!({"my_key": "my-value"}));
    let admins = json!({"admins": ["skyli", {"prefix": "hey"}, {"prefix": "ad"}]});
    assert_matches(&admins, &json!({"admins": "admin"}));
    assert_no_match(&admins, &json!({"admins": "root"}));
}

#[test]
fn empty_prefix_and_suffix_match_any_string() {
    let event = with(envelope(json!({})), "source", json!("test-source"));
    assert_matches(&json!({"source": [{"prefix": ""}]}), &event);
    assert_matches(&json!({"source": [{"suffix": ""}]}), &event);
    assert_no_match(
        &json!({"account": [{"prefix": ""}]}),
        &json!({"account": 123}),
    );
}

#[test]
fn many_rules_in_one_pattern() {
    let pattern = json!({
        "source": [{"exists": true}],
        "detail-type": [{"prefix": "core.app"}],
        "detail": {
            "description": ["this-is-event-details"],
            "amount": [200],
            "salary": [2000, 4000],
            "env": ["dev", "prod"],
            "user": ["user1", "user2", "user3"],
            "admins": ["skyli", {"prefix": "hey"}, {"prefix": "ad"}],
            "test1": [{"anything-but": 200}],
            "test2": [{"anything-but": "test2"}],
            "test3": [{"anything-but": ["test3", "test33"]}],
            "test4": [{"anything-but": {"prefix": "test4"}}],
            "ip": [{"cidr": "10.102.1.0/24"}],
            "num-test1": [{"numeric": ["<", 200]}],
            "num-test2": [{"numeric": ["<=", 200]}],
            "num-test3": [{"numeric": [">", 200]}],
            "num-test4": [{"numeric": [">=", 200]}],
            "num-test5": [{"numeric": [">=", 200, "<=", 500]}],
            "num-test6": [{"numeric": [">", 200, "<", 500]}],
            "num-test7": [{"numeric": [">=", 200, "<", 500]}]
        }
    });
    let mut event = json!({
        "source": "core.update-account-command",
        "detail-type": "core.app.backend",
        "detail": {
            "description": "this-is-event-details", "amount": 200, "salary": 2000,
            "env": "prod", "user": "user3", "admins": "admin", "test1": 300,
            "test2": "test22", "test3": "test333", "test4": "this test4",
            "ip": "10.102.1.100", "num-test1": 100, "num-test2": 200, "num-test3": 300,
            "num-test4": 200, "num-test5": 500, "num-test6": 300, "num-test7": 300
        }
    });
    assert_matches(&pattern, &event);
    event["detail"]["num-test7"] = json!(500);
    assert_no_match(&pattern, &event);
}

#[test]
fn the_pattern_can_be_parsed_from_text() {
    let pattern =
        EventPattern::parse(r#"{"source": ["aws.ec2"], "detail": {"state": ["terminated"]}}"#)
            .unwrap();
    assert!(pattern.matches(&envelope(json!({"state": "terminated"}))));
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

/// The pattern is refused with the message `expected`, which includes the
/// path of the offending part.
#[track_caller]
fn assert_refused(pattern: Value, expected: &str) {
    match EventPattern::from_value(&pattern) {
        Ok(_) => panic!("{pattern} was accepted"),
        Err(e) => {
            assert_eq!(e.0, expected, "{pattern}");
            assert_eq!(
                e.to_string(),
                format!("Event pattern is not valid. Reason: {expected}")
            );
        }
    }
}

#[test]
fn refuses_a_field_that_is_neither_object_nor_array() {
    assert_refused(
        json!({"source": "aws.ec2"}),
        r#""source" must be an object or an array (at source)"#,
    );
    assert_refused(
        json!({"int": 42}),
        r#""int" must be an object or an array (at int)"#,
    );
    assert_refused(
        json!({"detail": {"state": null}}),
        r#""state" must be an object or an array (at detail.state)"#,
    );
}

#[test]
fn refuses_a_pattern_that_is_not_an_object() {
    assert_refused(
        json!(["source"]),
        "Filter is not an object (at the top level)",
    );
    assert_refused(
        json!("source"),
        "Filter is not an object (at the top level)",
    );
    assert_refused(json!(null), "Filter is not an object (at the top level)");
}

#[test]
fn refuses_text_that_is_not_json() {
    let err: PatternError = EventPattern::parse(r#"{"source": ["aws.ec2"]"#).unwrap_err();
    assert!(err.0.starts_with("Filter is not valid JSON"), "{err}");
    let err = EventPattern::parse("[1, 2]").unwrap_err();
    assert!(err.0.starts_with("Filter is not an object"), "{err}");
}

#[test]
fn refuses_empty_arrays_and_objects() {
    assert_refused(
        json!({"resources": []}),
        "Empty arrays are not allowed (at resources)",
    );
    assert_refused(
        json!({}),
        "Empty objects are not allowed (at the top level)",
    );
    assert_refused(
        json!({"detail": {}}),
        "Empty objects are not allowed (at detail)",
    );
}

#[test]
fn refuses_nested_arrays_as_values() {
    assert_refused(
        json!({"resources": [["a"]]}),
        "Match value must be String, number, true, false, or null (at resources[0])",
    );
}

#[test]
fn refuses_unknown_operators() {
    assert_refused(
        json!({"detail": {"state": [{"prefixx": "init"}]}}),
        "Unrecognized match type prefixx (at detail.state[0])",
    );
    // Operators are case-sensitive.
    assert_refused(
        json!({"detail": {"equal": [{"NUMERIC": ["=", 5]}]}}),
        "Unrecognized match type NUMERIC (at detail.equal[0])",
    );
    assert_refused(
        json!({"my_key": [{"EXISTS": true}]}),
        "Unrecognized match type EXISTS (at my_key[0])",
    );
}

#[test]
fn refuses_match_expressions_without_exactly_one_key() {
    assert_refused(
        json!({"source": [{"prefix": "a", "suffix": "b"}]}),
        "Only one key allowed in match expression (at source[0])",
    );
    assert_refused(
        json!({"source": [{}]}),
        "Match expression name not found (at source[0])",
    );
}

#[test]
fn refuses_operands_of_the_wrong_type() {
    assert_refused(
        json!({"time": [{"prefix": 123}]}),
        "prefix match pattern must be a string (at time[0])",
    );
    assert_refused(
        json!({"time": [{"prefix": ["2022-07-13"]}]}),
        "prefix match pattern must be a string (at time[0])",
    );
    assert_refused(
        json!({"f": [{"suffix": 123}]}),
        "suffix match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"equals-ignore-case": ["x"]}]}),
        "equals-ignore-case match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"equals-ignore-case": {"prefix": "ec2"}}]}),
        "equals-ignore-case match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"wildcard": 123}]}),
        "wildcard match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"wildcard": ["*"]}]}),
        "wildcard match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"exists": "yes"}]}),
        "exists match pattern must be either true or false. (at f[0])",
    );
    assert_refused(
        json!({"f": [{"cidr": ["10.0.0.0/8"]}]}),
        "cidr match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"numeric": 10}]}),
        "Value of numeric must be an array. (at f[0])",
    );
    assert_refused(
        json!({"f": [{"exactly": 1}]}),
        "exact match pattern must be a string (at f[0])",
    );
}

#[test]
fn refuses_prefix_and_suffix_objects_other_than_equals_ignore_case() {
    assert_refused(
        json!({"f": [{"prefix": {"suffix": "x"}}]}),
        "Unsupported prefix pattern: suffix (at f[0])",
    );
    assert_refused(
        json!({"f": [{"suffix": {"prefix": "x"}}]}),
        "Unsupported suffix pattern: prefix (at f[0])",
    );
    assert_refused(
        json!({"f": [{"prefix": {"equals-ignore-case": 5}}]}),
        "equals-ignore-case match pattern must be a string (at f[0])",
    );
    assert_refused(
        json!({"f": [{"prefix": {}}]}),
        "Prefix expression name not found (at f[0])",
    );
}

#[test]
fn refuses_bad_numeric_expressions() {
    let refused = |terms: Value, reason: &str| {
        assert_refused(
            json!({"c-count": [{"numeric": terms}]}),
            &format!("{reason} (at c-count[0])"),
        );
    };
    refused(json!([">", 0, ">", 0]), "Bad numeric range operator: >");
    refused(json!([">", 5, "<", 1]), "Bottom must be less than top");
    refused(json!([">=", 5, "<=", 5]), "Bottom must be less than top");
    refused(json!([">", 0, "<"]), "Value of < must be numeric");
    refused(json!([">", "a"]), "Value of > must be numeric");
    refused(json!(["=", "5"]), "Value of equals must be numeric");
    refused(
        json!(["<", 1, ">", 0]),
        "Too many elements in numeric expression",
    );
    refused(
        json!(["=", 1, 2]),
        "Too many elements in numeric expression",
    );
    refused(
        json!([">", 0, "<", 5, 6]),
        "Too many terms in numeric range expression",
    );
    refused(json!([">", 0, 5]), "Bad value in numeric range: 5");
    refused(json!(["!=", 1]), "Unrecognized numeric range operator: !=");
    refused(json!([5]), "Invalid member in numeric match: 5");
    refused(json!([]), "Invalid member in numeric match: ]");
}

#[test]
fn refuses_bad_cidrs() {
    let refused = |cidr: &str, reason: &str| {
        assert_refused(
            json!({"ip": [{"cidr": cidr}]}),
            &format!("{reason} (at ip[0])"),
        );
    };
    refused("bad-filter", "Malformed CIDR, one '/' required");
    refused(
        "bad-/64filter",
        "Malformed CIDR, mask bits must be an integer",
    );
    refused("xx.11.xx/8", "Nonstandard IP address: xx.11.xx");
    refused(
        "xxxx:db8:1234:1a00::/64",
        "Nonstandard IP address: xxxx:db8:1234:1a00::",
    );
    refused("10.0.0.300/24", "Invalid IP address: 10.0.0.300");
    refused("10.0.0.0/33", "IPv4 mask bits must be < 32");
}

#[test]
fn refuses_bad_wildcards() {
    assert_refused(
        json!({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}),
        "Consecutive wildcard characters at pos 26 (at EventBusArn[0])",
    );
    assert_refused(
        json!({"f": [{"wildcard": "a\\b"}]}),
        "Invalid escape character at pos 2 (at f[0])",
    );
    assert_refused(
        json!({"f": [{"anything-but": {"wildcard": ["ok", "x**"]}}]}),
        "Consecutive wildcard characters at pos 2 (at f[0])",
    );
}

#[test]
fn refuses_bad_anything_but_operands() {
    let refused = |operand: Value, reason: &str| {
        assert_refused(
            json!({"state": [{"anything-but": operand}]}),
            &format!("{reason} (at state[0])"),
        );
    };
    let wrong_type = "Value of anything-but must be an array or single string/number value.";
    refused(json!(null), wrong_type);
    refused(json!(true), wrong_type);
    refused(
        json!({"prefix": {"equals-ignore-case": "file"}}),
        wrong_type,
    );
    refused(
        json!({"suffix": {"equals-ignore-case": ".png"}}),
        wrong_type,
    );
    refused(
        json!(["stopped", null]),
        "Inside anything but list, start|null|boolean is not supported.",
    );
    refused(
        json!(["stopped", 1]),
        "Inside anything but list, either all values are number or string, mixed type is not supported",
    );
    refused(
        json!([]),
        "Inside anything but list, either all values are number or string, mixed type is not supported",
    );
    refused(
        json!({"prefix": 123}),
        "prefix/suffix match pattern must be a string",
    );
    refused(
        json!({"suffix": [123, ".txt"]}),
        "prefix/suffix match pattern must be a string",
    );
    refused(
        json!({"suffix": [null, ".txt"]}),
        "prefix/suffix match pattern must be a string",
    );
    refused(json!({"prefix": ""}), "Null prefix/suffix not allowed");
    refused(json!({"suffix": ""}), "Null prefix/suffix not allowed");
    let ignore_case =
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.";
    refused(json!({"equals-ignore-case": 123}), ignore_case);
    refused(json!({"equals-ignore-case": [123, 456]}), ignore_case);
    refused(
        json!({"wildcard": 123}),
        "wildcard match pattern must be a string",
    );
    refused(
        json!({"wildcard": [123, "*/dir/*"]}),
        "wildcard match pattern must be a string",
    );
    refused(
        json!({"numeric": [">", 1]}),
        "Unsupported anything-but pattern: numeric",
    );
    refused(json!({}), "Anything-But expression name not found");
    refused(
        json!({"prefix": "a", "suffix": "b"}),
        "Only one key allowed in anything-but expression",
    );
}

#[test]
fn refuses_or_that_is_not_an_array_of_at_least_two_objects() {
    assert_refused(
        json!({"detail": {"$or": {"a": [1]}}}),
        "It must be an Array followed with $or. (at detail.$or)",
    );
    assert_refused(
        json!({"$or": [{"a": [1]}, "b"]}),
        "Only JSON object is allowed in array of $or relationship. (at $or[1])",
    );
    assert_refused(
        json!({"$or": [{"a": [1]}]}),
        "There must have at least 2 Objects in $or relationship. (at $or)",
    );
    assert_refused(
        json!({"$or": [{"a": [1]}, {}]}),
        "Empty objects are not allowed (at $or[1])",
    );
}

#[test]
fn refuses_operator_names_as_fields_inside_or() {
    assert_refused(
        json!({"$or": [{"numeric": [123]}, {"prefix": ["abc"]}]}),
        "numeric is Ruler reserved fieldName which cannot be used inside $or. (at $or[0])",
    );
    assert_refused(
        json!({"$or": [{"a": [1]}, {"b": {"exists": [true]}}]}),
        "exists is Ruler reserved fieldName which cannot be used inside $or. (at $or[1].b)",
    );
}
