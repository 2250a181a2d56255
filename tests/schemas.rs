//! The JSON Schemas in infra/schemas/ kept in step with the code: every
//! account event Purser emits has a schema and every schema names an event
//! Purser emits or accepts; every schema is a valid draft 2020-12 schema whose
//! examples validate; the details Purser really builds (`AccountEvent::of`,
//! serialized with serde_json, in the states the lifecycle gives them) validate
//! against their schema, with `format` checked; and broken details (a required
//! field missing, a wrong state, an extra field, a malformed value) do not.
//! For the lake's events: the examples of what Purser accepts parse with the
//! parsers the recorder uses, schema and parser refuse the same broken
//! details, and `TeamSpendUpdated` as the code builds it validates.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use jsonschema::Validator;
use purser_core::account::{Account, AccountState, NewAccount, new_id, rfc3339};
use purser_core::catalog::{self, ACCOUNT_EVENTS, AccountEvent};
use purser_core::event::{PURSER_BUS, PURSER_SOURCE};
use purser_core::lake::{self, DeploymentReported, InvocationsReported, StackStatusChange};
use purser_core::organization::{ServiceEvent, explain_failure, parse_service_event};
use purser_core::team::TeamName;
use serde_json::{Value, json};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// The AWS service events Purser accepts (source `aws.organizations`).
const AWS_EVENTS: [&str; 2] = ["CreateAccountResult", "CloseAccountResult"];
/// The lake's events: accepted from member accounts and CI
/// (`InvocationsReported`, `DeploymentReported`) or emitted by the recorder
/// and spend functions (`TeamSpendUpdated`).
const LAKE_EVENTS: [&str; 3] = [
    lake::INVOCATIONS_REPORTED,
    lake::DEPLOYMENT_REPORTED,
    lake::TEAM_SPEND_UPDATED,
];
/// The schema of CloudFormation's `CloudFormation Stack Status Change`
/// (a detail-type with spaces, so the file is named without them).
const STACK_STATUS_CHANGE_SCHEMA: &str = "CloudFormationStackStatusChange";
const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS Service Event via CloudTrail";

/// What the code guarantees of each detail-type, beyond the fields
/// `AccountEvent` always serializes: the states it carries and the optional
/// fields it always sets.
const CONTRACT: [(&str, &[&str], &[&str]); 8] = [
    (catalog::ACCOUNT_REQUESTED, &["requested"], &[]),
    (
        catalog::ACCOUNT_CREATION_STARTED,
        &["creating"],
        &["creation_id"],
    ),
    (
        catalog::ACCOUNT_READY,
        &["ready"],
        &["account_id", "ou", "creation_id"],
    ),
    (
        catalog::ACCOUNT_FAILED,
        &["failed"],
        &["reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_CLOSE_REQUESTED,
        &["closing"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_CLOSE_DEFERRED,
        &["closing"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        catalog::LEASE_EXPIRING,
        &["ready", "frozen"],
        &["lease_end", "account_id"],
    ),
    (catalog::ACCOUNT_CLOSED, &["closed"], &[]),
];

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra/schemas")
}

/// The names of the schema files (without `.json`); any other file fails.
fn schema_names() -> BTreeSet<String> {
    let entries = std::fs::read_dir(schema_dir()).expect("infra/schemas/ exists");
    entries
        .map(|entry| {
            let path = entry.expect("a readable directory entry").path();
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("json"),
                "{} is not a .json schema",
                path.display()
            );
            path.file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_string()
        })
        .collect()
}

fn schema(name: &str) -> Value {
    let path = schema_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A draft 2020-12 validator that also checks `format` (an annotation only,
/// unless asked).
fn validator(name: &str) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema(name))
        .unwrap_or_else(|e| panic!("{name}.json does not compile: {e}"))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(name: &str, validator: &Validator, instance: &Value) {
    let errors = errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{name}: {instance:#} should validate, but: {errors:#?}"
    );
}

fn assert_invalid(name: &str, validator: &Validator, instance: &Value, why: &str) {
    assert!(
        !validator.is_valid(instance),
        "{name}: a detail with {why} should not validate: {instance:#}"
    );
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{value} is not an object"))
        .keys()
        .cloned()
        .collect()
}

fn contract(detail_type: &str) -> (&'static [&'static str], &'static [&'static str]) {
    CONTRACT
        .iter()
        .find(|(t, _, _)| *t == detail_type)
        .map(|(_, states, extra)| (*states, *extra))
        .unwrap_or_else(|| panic!("no contract for {detail_type}"))
}

// ------------------------------------------------------------ real details

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-02T09:30:00Z")
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// A request as the api writes it.
fn requested(lease_days: Option<u32>) -> Account {
    let input = NewAccount {
        team: TeamName::parse("payments").expect("a valid team"),
        owner: "ana@example.com".into(),
        purpose: "load tests for the checkout service".into(),
        lease_days,
    };
    Account::request(new_id(), input, "arn:aws:iam::123456789012:user/ana", now())
        .expect("a valid request")
}

/// As vend leaves it once Organizations accepted CreateAccount.
fn creating(lease_days: Option<u32>) -> Account {
    let mut a = requested(lease_days);
    a.state = AccountState::Creating;
    a.creation_started_at = Some(now() + Duration::seconds(2));
    a.creation_id = Some("car-7a9e8f4a0b1c4d2e9f3a".into());
    a.updated_at = now() + Duration::seconds(4);
    a
}

/// As account-events leaves it once the creation succeeded.
fn ready(lease_days: Option<u32>) -> Account {
    let mut a = creating(lease_days);
    a.state = AccountState::Ready;
    a.account_id = Some("210987654321".into());
    a.ou = Some("ou-ab12-cdefgh34".into());
    a.updated_at = now() + Duration::minutes(3);
    a
}

fn with_state(mut account: Account, state: AccountState, at: DateTime<Utc>) -> Account {
    account.state = state;
    account.updated_at = at;
    account
}

/// Every kind of detail Purser emits, as the flows in accounts.rs build them.
fn real_details() -> Vec<(&'static str, &'static str, AccountEvent)> {
    let t = now() + Duration::days(1);
    let mut cases = Vec::new();

    // api: a new request, with and without a lease.
    for lease in [Some(30), None] {
        let a = requested(lease);
        cases.push((
            catalog::ACCOUNT_REQUESTED,
            "a new request",
            AccountEvent::of(&a, a.updated_at),
        ));
    }

    // vend: CreateAccount accepted.
    let a = creating(Some(30));
    cases.push((
        catalog::ACCOUNT_CREATION_STARTED,
        "creation started",
        AccountEvent::of(&a, a.updated_at),
    ));
    let a = creating(None);
    cases.push((
        catalog::ACCOUNT_CREATION_STARTED,
        "creation started, no lease",
        AccountEvent::of(&a, a.updated_at),
    ));

    // account-events: the creation succeeded.
    for lease in [Some(30), None] {
        let a = ready(lease);
        cases.push((
            catalog::ACCOUNT_READY,
            "ready",
            AccountEvent::of(&a, a.updated_at),
        ));
    }

    // account-events: the creation failed (AWS's reason).
    let mut a = with_state(creating(Some(30)), AccountState::Failed, t);
    let reason = explain_failure("EMAIL_ALREADY_EXISTS");
    a.failure_reason = Some(reason.clone());
    cases.push((
        catalog::ACCOUNT_FAILED,
        "creation failed",
        AccountEvent::of(&a, a.updated_at).because("EMAIL_ALREADY_EXISTS", &reason),
    ));
    // vend: Organizations refused CreateAccount (no creation id yet).
    let mut claimed = requested(None);
    claimed.state = AccountState::Creating;
    claimed.creation_started_at = Some(now());
    let mut a = with_state(claimed, AccountState::Failed, t);
    let reason = format!(
        "{}: You have exceeded the allowed number of AWS accounts.",
        explain_failure("ACCOUNT_LIMIT_EXCEEDED")
    );
    a.failure_reason = Some(reason.clone());
    cases.push((
        catalog::ACCOUNT_FAILED,
        "CreateAccount refused",
        AccountEvent::of(&a, a.updated_at).because("ACCOUNT_LIMIT_EXCEEDED", &reason),
    ));
    // account-events: AWS gave no reason.
    let a = with_state(creating(None), AccountState::Failed, t);
    cases.push((
        catalog::ACCOUNT_FAILED,
        "creation failed without a reason",
        AccountEvent::of(&a, a.updated_at).because("UNKNOWN", &explain_failure("UNKNOWN")),
    ));

    // api: the owner closes a ready account.
    let a = with_state(ready(Some(30)), AccountState::Closing, t);
    cases.push((
        catalog::ACCOUNT_CLOSE_REQUESTED,
        "closed by its owner",
        AccountEvent::of(&a, t)
            .because("REQUESTED", "closed by arn:aws:iam::123456789012:user/ana"),
    ));
    // reaper: a frozen account's lease ended.
    let frozen = with_state(ready(Some(30)), AccountState::Frozen, t);
    let end = frozen.lease_end.expect("a lease");
    let a = with_state(frozen, AccountState::Closing, end + Duration::minutes(5));
    cases.push((
        catalog::ACCOUNT_CLOSE_REQUESTED,
        "lease ended",
        AccountEvent::of(&a, a.updated_at).because(
            "LEASE_ENDED",
            &format!("the lease ended at {}", rfc3339(end)),
        ),
    ));

    // reaper: the closure quota is used up.
    let a = with_state(ready(None), AccountState::Closing, t);
    cases.push((
        catalog::ACCOUNT_CLOSE_DEFERRED,
        "closure quota used up",
        AccountEvent::of(&a, t + Duration::hours(1)).because(
            "CLOSURE_QUOTA",
            "10 of the 10 closures AWS allows per 30 days are used; it will be closed when the quota allows",
        ),
    ));
    cases.push((
        catalog::ACCOUNT_CLOSE_DEFERRED,
        "CloseAccount refused",
        AccountEvent::of(&a, t + Duration::hours(1)).because(
            "CLOSURE_QUOTA",
            "AWS refused: CLOSE_ACCOUNT_QUOTA_EXCEEDED: You have exceeded close account quota for the past 30 days.",
        ),
    ));

    // reaper: a lease ends within three days, ready or frozen.
    for state in [AccountState::Ready, AccountState::Frozen] {
        let a = with_state(ready(Some(3)), state, t);
        cases.push((
            catalog::LEASE_EXPIRING,
            "lease ending",
            AccountEvent::of(&a, t + Duration::hours(2)),
        ));
    }

    // account-events: Organizations closed the account.
    let closing = with_state(ready(Some(30)), AccountState::Closing, t);
    let a = with_state(closing, AccountState::Closed, t + Duration::hours(1));
    cases.push((
        catalog::ACCOUNT_CLOSED,
        "closed by Organizations",
        AccountEvent::of(&a, a.updated_at),
    ));
    // api: a request withdrawn before creation started.
    let a = with_state(requested(None), AccountState::Closed, t);
    cases.push((
        catalog::ACCOUNT_CLOSED,
        "request withdrawn",
        AccountEvent::of(&a, t)
            .because("REQUESTED", "closed by arn:aws:iam::123456789012:user/ana"),
    ));

    cases
}

/// The detail as it goes on the bus: serialized with serde_json, and the
/// same as the `PutEvents` entry carries.
fn detail(detail_type: &str, event: &AccountEvent) -> Value {
    let value = serde_json::to_value(event).expect("an account event serializes");
    let entry = event.entry(detail_type);
    let sent: Value = serde_json::from_str(entry.detail.as_deref().expect("an entry has a detail"))
        .expect("the entry's detail is JSON");
    assert_eq!(sent, value, "{detail_type}: the entry carries the detail");
    assert_eq!(entry.detail_type.as_deref(), Some(detail_type));
    value
}

// ------------------------------------------------------------ tests

#[test]
fn every_account_event_has_a_schema_and_every_schema_a_known_event() {
    let names = schema_names();
    for detail_type in ACCOUNT_EVENTS {
        assert!(
            names.contains(detail_type),
            "{detail_type} has no schema: add infra/schemas/{detail_type}.json"
        );
    }
    for name in &names {
        assert!(
            ACCOUNT_EVENTS.contains(&name.as_str())
                || AWS_EVENTS.contains(&name.as_str())
                || LAKE_EVENTS.contains(&name.as_str())
                || name == STACK_STATUS_CHANGE_SCHEMA,
            "infra/schemas/{name}.json names no detail-type in catalog::ACCOUNT_EVENTS nor an event of the lake nor an AWS event Purser accepts"
        );
    }
    for name in AWS_EVENTS
        .into_iter()
        .chain(LAKE_EVENTS)
        .chain([STACK_STATUS_CHANGE_SCHEMA])
    {
        assert!(names.contains(name), "{name} has no schema");
    }
    let contracted: BTreeSet<&str> = CONTRACT.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(
        contracted,
        ACCOUNT_EVENTS.into_iter().collect(),
        "every detail-type has a contract in this test"
    );
}

#[test]
fn every_schema_is_valid_draft_2020_12_and_its_examples_validate() {
    for name in schema_names() {
        let schema = schema(&name);
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{name}.json is not a valid draft 2020-12 schema: {e}");
        }
        assert_eq!(schema["$schema"], DRAFT_2020_12, "{name}: $schema");
        assert_eq!(
            schema["$id"],
            format!("https://purser.dev/schemas/{name}.json"),
            "{name}: $id"
        );
        assert_eq!(schema["title"], name.as_str(), "{name}: title");
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            description.len() > 80,
            "{name}: say when it is emitted and who consumes it"
        );
        assert_eq!(schema["type"], "object", "{name}: the detail is an object");
        let properties = keys(&schema["properties"]);
        let required = strings(&schema["required"]);
        assert!(
            required.is_subset(&properties),
            "{name}: required {:?} are not properties",
            required.difference(&properties).collect::<Vec<_>>()
        );

        let validator = validator(&name);
        let examples = schema["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no examples"));
        assert!(!examples.is_empty(), "{name}: no examples");
        for example in examples {
            assert_valid(&name, &validator, example);
        }
    }
}

#[test]
fn purser_schemas_describe_the_account_event_detail_exactly() {
    // Every optional field set: the keys are all the struct's fields.
    let mut full = AccountEvent::of(&ready(Some(30)), now()).because("CODE", "words");
    full.creation_id = Some("car-7a9e8f4a0b1c4d2e9f3a".into());
    let all_fields = keys(&serde_json::to_value(&full).unwrap());
    // Every optional field unset: the keys are the fields always present.
    let bare = AccountEvent::of(&requested(None), now());
    let always = keys(&serde_json::to_value(&bare).unwrap());
    assert!(always.contains("state") && !always.contains("account_id"));

    for detail_type in ACCOUNT_EVENTS {
        let schema = schema(detail_type);
        assert_eq!(schema["x-purser-source"], PURSER_SOURCE, "{detail_type}");
        assert_eq!(schema["x-purser-bus"], PURSER_BUS, "{detail_type}");
        assert_eq!(
            schema["additionalProperties"], false,
            "{detail_type}: the struct has no other fields"
        );
        assert_eq!(
            keys(&schema["properties"]),
            all_fields,
            "{detail_type}: the properties are the fields of AccountEvent"
        );
        let (states, extra) = contract(detail_type);
        let mut expected = always.clone();
        expected.extend(extra.iter().map(|f| f.to_string()));
        assert_eq!(
            strings(&schema["required"]),
            expected,
            "{detail_type}: required is what the code guarantees"
        );
        let state = &schema["properties"]["state"];
        let allowed: BTreeSet<String> = match states {
            [one] => {
                assert_eq!(state["const"], *one, "{detail_type}: state");
                BTreeSet::from([one.to_string()])
            }
            _ => strings(&state["enum"]),
        };
        assert_eq!(
            allowed,
            states.iter().map(|s| s.to_string()).collect(),
            "{detail_type}: state"
        );
        assert_eq!(
            schema["properties"]["version"]["const"],
            catalog::SCHEMA_VERSION
        );
    }
}

#[test]
fn the_details_purser_emits_validate() {
    let mut covered = BTreeSet::new();
    for (detail_type, case, event) in real_details() {
        let validator = validator(detail_type);
        let value = detail(detail_type, &event);
        assert_valid(&format!("{detail_type} ({case})"), &validator, &value);
        covered.insert(detail_type);

        // The state is the one the contract names, and the fields it
        // guarantees are there (the builders above follow the real flows).
        let (states, extra) = contract(detail_type);
        assert!(
            states.contains(&event.state.as_str()),
            "{detail_type} ({case})"
        );
        for field in extra {
            assert!(
                value.get(*field).is_some(),
                "{detail_type} ({case}): {field}"
            );
        }
    }
    assert_eq!(
        covered,
        ACCOUNT_EVENTS.into_iter().collect(),
        "a real detail of every detail-type is checked"
    );
}

#[test]
fn broken_details_fail_validation() {
    for (detail_type, case, event) in real_details() {
        let name = format!("{detail_type} ({case})");
        let validator = validator(detail_type);
        let good = detail(detail_type, &event);
        let schema = schema(detail_type);

        for field in strings(&schema["required"]) {
            let mut bad = good.clone();
            bad.as_object_mut().unwrap().remove(&field);
            assert_invalid(&name, &validator, &bad, &format!("no {field}"));
        }

        let (states, _) = contract(detail_type);
        for state in AccountState::ALL {
            let mut other = good.clone();
            other["state"] = json!(state);
            if states.contains(&state.as_str()) {
                assert_valid(&name, &validator, &other);
            } else {
                assert_invalid(&name, &validator, &other, &format!("state {state}"));
            }
        }

        let broken: [(&str, Value); 11] = [
            ("colour", json!("red")),
            ("detail_type", json!(detail_type)),
            ("version", json!(2)),
            ("version", json!("1")),
            ("team", json!("Payments!")),
            ("owner", json!("ana at example.com")),
            ("account_id", json!("21098765432")),
            ("account_id", json!(210987654321_u64)),
            ("at", json!("2026-05-02 09:30")),
            ("lease_end", json!("next month")),
            ("request_id", json!("R-3F9C2A7B1D04")),
        ];
        for (field, value) in broken {
            let mut bad = good.clone();
            bad[field] = value.clone();
            assert_invalid(&name, &validator, &bad, &format!("{field} = {value}"));
        }
    }
}

#[test]
fn a_detail_validates_only_against_schemas_of_its_state() {
    // A ready account's detail is no AccountRequested, AccountClosed, …
    let ready = detail(
        catalog::ACCOUNT_READY,
        &AccountEvent::of(&ready(Some(30)), now()),
    );
    for detail_type in ACCOUNT_EVENTS {
        let (states, extra) = contract(detail_type);
        let fits = states.contains(&"ready") && extra.iter().all(|f| ready.get(*f).is_some());
        assert_eq!(
            validator(detail_type).is_valid(&ready),
            fits,
            "{detail_type} and an AccountReady detail"
        );
    }
}

#[test]
fn aws_service_event_schemas_match_what_purser_parses() {
    for name in AWS_EVENTS {
        let schema = schema(name);
        assert_eq!(schema["x-purser-source"], "aws.organizations", "{name}");
        assert_eq!(
            schema["x-purser-detail-type"], CLOUDTRAIL_DETAIL_TYPE,
            "{name}"
        );
        assert_eq!(
            schema["additionalProperties"], true,
            "{name}: AWS adds fields"
        );
        assert_eq!(schema["properties"]["eventName"]["const"], name);
        for example in schema["examples"].as_array().unwrap() {
            let parsed = parse_service_event(example)
                .unwrap_or_else(|e| panic!("{name}: Purser cannot read its example: {e}"));
            match (name, parsed) {
                (
                    "CreateAccountResult",
                    Some(ServiceEvent::CreateAccountResult {
                        status,
                        completed_at,
                    }),
                ) => {
                    assert!(status.id.starts_with("car-"));
                    assert!(completed_at.is_some(), "{name}: the completion time parses");
                }
                (
                    "CloseAccountResult",
                    Some(ServiceEvent::CloseAccountResult { succeeded, .. }),
                ) => {
                    assert!(succeeded);
                }
                (_, other) => panic!("{name}: its example reads as {other:?}"),
            }
        }
    }

    let create = validator("CreateAccountResult");
    let example = schema("CreateAccountResult")["examples"][0].clone();
    // A failure, in AWS's shape: no account id, a reason.
    let mut failed = example.clone();
    let status = &mut failed["serviceEventDetails"]["createAccountStatus"];
    status["state"] = json!("FAILED");
    status["failureReason"] = json!("EMAIL_ALREADY_EXISTS");
    status.as_object_mut().unwrap().remove("accountId");
    assert_valid("CreateAccountResult (failed)", &create, &failed);
    assert!(parse_service_event(&failed).is_ok());
    // Fields AWS may add are accepted, at every level.
    let mut more = example.clone();
    more["newTopLevelField"] = json!(true);
    more["serviceEventDetails"]["createAccountStatus"]["newField"] = json!("x");
    assert_valid("CreateAccountResult (more fields)", &create, &more);
    // What Purser cannot act on is refused.
    let status = "/serviceEventDetails/createAccountStatus";
    for (pointer, value) in [
        ("/eventName", Some(json!("CreateOrganizationalUnit"))),
        ("/serviceEventDetails", None),
        (&format!("{status}/id") as &str, None),
        (&format!("{status}/id"), Some(json!("7a9e8f4a"))),
        (&format!("{status}/state"), None),
        (&format!("{status}/state"), Some(json!("DONE"))),
        (&format!("{status}/accountId"), Some(json!("2109876543"))),
        (
            &format!("{status}/completedTimestamp"),
            Some(json!("2020-09-16T21:20:53Z")),
        ),
    ] {
        let mut bad = example.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let object = bad.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        match &value {
            Some(v) => object.insert(key.to_string(), v.clone()),
            None => object.remove(key),
        };
        assert_invalid(
            "CreateAccountResult",
            &create,
            &bad,
            &format!("{pointer} = {value:?}"),
        );
    }

    let close = validator("CloseAccountResult");
    let example = schema("CloseAccountResult")["examples"][0].clone();
    let mut more = example.clone();
    more["serviceEventDetails"]["closeAccountStatus"]["newField"] = json!(1);
    assert_valid("CloseAccountResult (more fields)", &close, &more);
    for field in ["accountId", "state"] {
        let mut bad = example.clone();
        bad["serviceEventDetails"]["closeAccountStatus"]
            .as_object_mut()
            .unwrap()
            .remove(field);
        assert_invalid("CloseAccountResult", &close, &bad, &format!("no {field}"));
    }
    let mut bad = example.clone();
    bad["eventName"] = json!("CreateAccountResult");
    assert_invalid("CloseAccountResult", &close, &bad, "another eventName");
}

// ------------------------------------------------------------ the lake's events

fn examples(name: &str) -> Vec<Value> {
    schema(name)["examples"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no examples"))
        .clone()
}

#[test]
fn lake_schemas_name_their_source_bus_and_detail_type() {
    for (name, source) in [
        (lake::INVOCATIONS_REPORTED, Some(lake::TELEMETRY_SOURCE)),
        (lake::TEAM_SPEND_UPDATED, Some(PURSER_SOURCE)),
        (STACK_STATUS_CHANGE_SCHEMA, Some("aws.cloudformation")),
        // CI chooses its source: any but AWS's.
        (lake::DEPLOYMENT_REPORTED, None),
    ] {
        let schema = schema(name);
        assert_eq!(
            schema["x-purser-bus"], PURSER_BUS,
            "{name}: consumed on the purser bus"
        );
        match source {
            Some(source) => assert_eq!(schema["x-purser-source"], source, "{name}"),
            None => assert_eq!(
                schema["x-purser-source-pattern"],
                json!([{"anything-but": {"prefix": "aws."}}]),
                "{name}"
            ),
        }
    }
    for name in LAKE_EVENTS {
        assert_eq!(schema(name)["x-purser-detail-type"], name);
    }
    assert_eq!(
        schema(STACK_STATUS_CHANGE_SCHEMA)["x-purser-detail-type"],
        lake::STACK_STATUS_CHANGE
    );
}

#[test]
fn accepted_purser_event_schemas_are_closed_like_the_structs() {
    // The structs deny unknown fields: so do their schemas, at every level,
    // and their properties are exactly the structs' fields.
    for name in [lake::INVOCATIONS_REPORTED, lake::DEPLOYMENT_REPORTED] {
        assert_eq!(schema(name)["additionalProperties"], false, "{name}");
    }
    let invocations = schema(lake::INVOCATIONS_REPORTED);
    let report_schema = &invocations["properties"]["reports"]["items"];
    assert_eq!(report_schema["additionalProperties"], false);
    assert_eq!(
        strings(&invocations["required"]),
        keys(&invocations["properties"]),
        "every field of InvocationsReported is required"
    );
    assert_eq!(
        strings(&report_schema["required"]),
        &keys(&report_schema["properties"]) - &BTreeSet::from(["init_duration_ms".to_string()]),
        "every field of a report but init_duration_ms (cold starts only) is required"
    );
    let deployments = schema(lake::DEPLOYMENT_REPORTED);
    assert_eq!(
        strings(&deployments["required"]),
        BTreeSet::from(["version", "stack", "status"].map(String::from))
    );

    // A parsed example serializes every field of the struct (options as null).
    let (batch, _) = InvocationsReported::parse(&examples(lake::INVOCATIONS_REPORTED)[0]).unwrap();
    let value = serde_json::to_value(&batch).unwrap();
    assert_eq!(keys(&value), keys(&invocations["properties"]));
    assert_eq!(
        keys(&value["reports"][0]),
        keys(&report_schema["properties"])
    );
    let deployment = DeploymentReported::parse(&examples(lake::DEPLOYMENT_REPORTED)[0]).unwrap();
    let value = serde_json::to_value(&deployment).unwrap();
    assert_eq!(keys(&value), keys(&deployments["properties"]));
}

#[test]
fn examples_of_accepted_events_parse_as_purser_reads_them() {
    for example in examples(lake::INVOCATIONS_REPORTED) {
        let (batch, arch) = InvocationsReported::parse(&example)
            .unwrap_or_else(|e| panic!("InvocationsReported example {example}: {e}"));
        assert_eq!(arch.as_str(), batch.architecture);
        assert_eq!(
            batch.reports.len(),
            example["reports"].as_array().unwrap().len()
        );
    }
    for example in examples(lake::DEPLOYMENT_REPORTED) {
        let d = DeploymentReported::parse(&example)
            .unwrap_or_else(|e| panic!("DeploymentReported example {example}: {e}"));
        assert_eq!(d.stack, example["stack"].as_str().unwrap());
    }
    for example in examples(STACK_STATUS_CHANGE_SCHEMA) {
        let change = StackStatusChange::parse(&example)
            .unwrap_or_else(|e| panic!("stack status change example {example}: {e}"));
        assert!(
            example["stack-id"]
                .as_str()
                .unwrap()
                .contains(&format!(":stack/{}/", change.stack))
        );
        assert_eq!(
            change.status,
            example["status-details"]["status"].as_str().unwrap()
        );
    }
}

#[test]
fn broken_accepted_events_are_refused_by_schema_and_parser_alike() {
    let invocations = validator(lake::INVOCATIONS_REPORTED);
    let good = examples(lake::INVOCATIONS_REPORTED)[0].clone();
    let broken: [(&str, Value); 10] = [
        ("/colour", json!("red")),
        ("/version", json!(2)),
        ("/batch_id", json!("")),
        ("/function_name", json!("")),
        ("/architecture", json!("sparc")),
        ("/memory_mb", json!(64)),
        ("/reports", json!([])),
        ("/reports/0/request_id", json!("")),
        ("/reports/0/duration_ms", json!(-1.0)),
        ("/reports/0/extra", json!(1)),
    ];
    for (pointer, value) in broken {
        let bad = set(&good, pointer, Some(value.clone()));
        assert_invalid(
            lake::INVOCATIONS_REPORTED,
            &invocations,
            &bad,
            &format!("{pointer} = {value}"),
        );
        assert!(
            InvocationsReported::parse(&bad).is_err(),
            "the recorder accepts what the schema refuses: {pointer} = {value}"
        );
    }
    for field in ["/version", "/batch_id", "/reports", "/reports/0/timestamp"] {
        let bad = set(&good, field, None);
        assert_invalid(
            lake::INVOCATIONS_REPORTED,
            &invocations,
            &bad,
            &format!("no {field}"),
        );
        assert!(InvocationsReported::parse(&bad).is_err(), "no {field}");
    }

    let deployments = validator(lake::DEPLOYMENT_REPORTED);
    let good = examples(lake::DEPLOYMENT_REPORTED)[0].clone();
    let broken: [(&str, Value); 7] = [
        ("/extra", json!(1)),
        ("/version", json!(2)),
        ("/stack", json!("")),
        ("/status", json!("DONE")),
        ("/started_at", json!("yesterday")),
        ("/commit", json!("x".repeat(513))),
        ("/ref", json!(7)),
    ];
    for (pointer, value) in broken {
        let bad = set(&good, pointer, Some(value.clone()));
        assert_invalid(
            lake::DEPLOYMENT_REPORTED,
            &deployments,
            &bad,
            &format!("{pointer} = {value}"),
        );
        assert!(
            DeploymentReported::parse(&bad).is_err(),
            "the recorder accepts what the schema refuses: {pointer} = {value}"
        );
    }
    // Optional fields may be absent or null, for schema and parser alike.
    let minimal = json!({"version": 1, "stack": "web", "status": "STARTED", "commit": null});
    assert_valid(lake::DEPLOYMENT_REPORTED, &deployments, &minimal);
    assert!(DeploymentReported::parse(&minimal).is_ok());

    let stacks = validator(STACK_STATUS_CHANGE_SCHEMA);
    let good = examples(STACK_STATUS_CHANGE_SCHEMA)[0].clone();
    // AWS adds fields: accepted at every level.
    let more = set(
        &set(&good, "/new-field", Some(json!(1))),
        "/status-details/new",
        Some(json!("x")),
    );
    assert_valid(STACK_STATUS_CHANGE_SCHEMA, &stacks, &more);
    assert!(StackStatusChange::parse(&more).is_ok());
    for (pointer, value) in [
        ("/stack-id", None),
        ("/stack-id", Some(json!("teststack"))),
        ("/status-details", None),
        ("/status-details/status", None),
    ] {
        let bad = set(&good, pointer, value.clone());
        assert_invalid(
            STACK_STATUS_CHANGE_SCHEMA,
            &stacks,
            &bad,
            &format!("{pointer} = {value:?}"),
        );
        assert!(
            StackStatusChange::parse(&bad).is_err(),
            "{pointer} = {value:?}"
        );
    }
}

/// `value` with the field at `pointer` set, or removed when `None`.
fn set(value: &Value, pointer: &str, field: Option<Value>) -> Value {
    let mut out = value.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let target = out
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match (target, field) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_string(), v);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(v)) => items[key.parse::<usize>().unwrap()] = v,
        (other, _) => panic!("{pointer}: cannot set a field of {other}"),
    }
    out
}

#[test]
fn team_spend_updated_as_purser_builds_it_validates() {
    let validator = validator(lake::TEAM_SPEND_UPDATED);
    let as_of = lake::timestamp(now());
    let detail = |spend: &str, source: &str| lake::TeamSpendUpdated {
        version: 1,
        team: "payments".into(),
        period: now().format("%Y-%m").to_string(),
        spend: spend.into(),
        currency: "USD".into(),
        source: source.into(),
        as_of: as_of.clone(),
    };
    // As the recorder writes spend: an exact decimal, normalized.
    for spend in ["0", "12.5", "0.0000021", "1312.07", "-3.2"] {
        for source in ["stream", "athena", "cur"] {
            let value = serde_json::to_value(detail(spend, source)).unwrap();
            assert_valid(lake::TEAM_SPEND_UPDATED, &validator, &value);
            assert_eq!(
                keys(&value),
                keys(&schema(lake::TEAM_SPEND_UPDATED)["properties"]),
                "the properties are the fields of TeamSpendUpdated"
            );
        }
    }
    let good = serde_json::to_value(detail("12.5", "stream")).unwrap();
    for (pointer, value) in [
        ("/colour", Some(json!("red"))),
        ("/version", Some(json!(2))),
        ("/team", Some(json!("Payments!"))),
        ("/period", Some(json!("2026-13"))),
        ("/period", Some(json!("2026-05-02"))),
        ("/spend", Some(json!(12.5))),
        ("/spend", Some(json!("1e3"))),
        ("/spend", Some(json!("12,50"))),
        ("/currency", Some(json!("usd"))),
        ("/source", Some(json!("guess"))),
        ("/as_of", Some(json!("yesterday"))),
        ("/as_of", None),
        ("/team", None),
    ] {
        let bad = set(&good, pointer, value.clone());
        assert_invalid(
            lake::TEAM_SPEND_UPDATED,
            &validator,
            &bad,
            &format!("{pointer} = {value:?}"),
        );
    }
}
