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
//! For budgets (shared/core/src/budgets/service.rs): `BudgetChanged` and
//! `BudgetThresholdCrossed` as the code builds them validate, and so do
//! `AccountFrozen`, `AccountUnfrozen` and `AccountFreezeFailed` (the detail
//! of account events, with their reason); the events the local runtime
//! archives while it really sets budgets, weighs spend and freezes and
//! unfreezes accounts validate too; broken details do not.
//! And docs/events.md is the catalog generated from the schemas, not stale
//! (`PURSER_REGENERATE_DOCS=1 cargo test --test system schemas::` writes it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use jsonschema::Validator;
use purser_core::accounts::Caller;
use purser_core::accounts::TeamName;
use purser_core::accounts::{Account, AccountState, NewAccount, new_id, rfc3339};
use purser_core::budgets::throttle::{self, ChangedFunction};
use purser_core::budgets::{self, PeriodSpend};
use purser_core::budgets::{Budget, forecast, period_of};
use purser_core::events::catalog::{self, ACCOUNT_EVENTS, AccountEvent};
use purser_core::events::{EventEntry, PURSER_BUS, PURSER_SOURCE};
use purser_core::lake::{self, DeploymentReported, InvocationsReported, StackStatusChange};
use purser_core::ports::{
    MAX_POLICIES_PER_TARGET, ServiceEvent, explain_failure, parse_service_event,
};
use purser_core::ports::{Marker, SpendAdd};
use purser_core::spend::{from_nanos, to_nanos};
use purser_core::{Organization, Store};
use purser_local::LOCAL_ADMIN;
use purser_local::inspect::{self, ArchiveFilter};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// The AWS service events Purser accepts (source `aws.organizations`).
const AWS_EVENTS: [&str; 2] = ["CreateAccountResult", "CloseAccountResult"];
/// The lake's events: accepted from member accounts and CI
/// (`InvocationsReported`, `DeploymentReported`) or emitted by the recorder
/// and spend functions (`TeamSpendUpdated`).
const LAKE_EVENTS: [&str; 4] = [
    lake::INVOCATIONS_REPORTED,
    lake::DEPLOYMENT_REPORTED,
    lake::TEAM_SPEND_UPDATED,
    lake::UNPRICED_USAGE,
];
/// What runs in member accounts and costs by the second, as their
/// forwarding rules deliver it to the recorder: schema, source, detail-type.
const RESOURCE_EVENTS: [(&str, &str, &str); 5] = [
    (
        "EC2InstanceStateChangeNotification",
        "aws.ec2",
        lake::EC2_STATE_CHANGE,
    ),
    ("EC2InstanceLaunchCall", "aws.ec2", lake::API_CALL),
    ("ECSTaskStateChange", "aws.ecs", lake::ECS_TASK_STATE_CHANGE),
    (
        "SageMakerTrainingJobStateChange",
        "aws.sagemaker",
        lake::SAGEMAKER_TRAINING_JOB_STATE_CHANGE,
    ),
    (
        "SageMakerEndpointStateChange",
        "aws.sagemaker",
        lake::SAGEMAKER_ENDPOINT_STATE_CHANGE,
    ),
];
/// The schema of CloudFormation's `CloudFormation Stack Status Change`
/// (a detail-type with spaces, so the file is named without them).
const STACK_STATUS_CHANGE_SCHEMA: &str = "CloudFormationStackStatusChange";
/// CloudFormation's `CloudFormation StackSet Operation Status Change`: a
/// blueprint's deployment ended (account-events).
const STACK_SET_OPERATION_SCHEMA: &str = "CloudFormationStackSetOperationStatusChange";
const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS Service Event via CloudTrail";
/// The budget's own events, emitted by the api (`BudgetChanged`) and the
/// budgets function (`BudgetThresholdCrossed`).
const BUDGET_EVENTS: [&str; 3] = [
    budgets::BUDGET_CHANGED,
    budgets::BUDGET_THRESHOLD_CROSSED,
    budgets::BUDGET_EVALUATION_DUE,
];
/// What `throttle-lambdas` does to an account's functions, emitted by the
/// budgets function (shared/core/src/budgets/throttle.rs).
const THROTTLE_EVENTS: [&str; 2] = [throttle::LAMBDAS_THROTTLED, throttle::LAMBDAS_RESTORED];
/// The runaway guard's episodes, emitted by the budgets function
/// (shared/core/src/budgets/guard.rs; tests/system/runaway.rs validates
/// what it emits).
pub const RUNAWAY_EVENTS: [&str; 1] = [budgets::SPEND_RATE_EXCEEDED];
/// What budgets do to accounts: events with the detail of account events
/// (`AccountEvent`), emitted by the budgets function.
const FREEZE_EVENTS: [&str; 3] = [
    budgets::ACCOUNT_FROZEN,
    budgets::ACCOUNT_UNFROZEN,
    budgets::ACCOUNT_FREEZE_FAILED,
];
/// The one `reason_code` each of the freeze events carries (budgets/service.rs).
const FREEZE_REASONS: [(&str, &str); 3] = [
    (budgets::ACCOUNT_FROZEN, "BUDGET_EXCEEDED"),
    (budgets::ACCOUNT_UNFROZEN, "BUDGET_RESTORED"),
    (budgets::ACCOUNT_FREEZE_FAILED, "POLICY_LIMIT"),
];
/// The generated event catalog, and how to bring it up to date.
const CATALOG: &str = "docs/events.md";
const REGENERATE: &str = "PURSER_REGENERATE_DOCS";

/// What the code guarantees of each detail-type, beyond the fields
/// `AccountEvent` always serializes: the states it carries and the optional
/// fields it always sets.
const CONTRACT: [(&str, &[&str], &[&str]); 24] = [
    (catalog::ACCOUNT_REQUESTED, &["requested"], &[]),
    (
        catalog::ACCOUNT_CREATION_STARTED,
        &["creating"],
        &["creation_id"],
    ),
    (
        catalog::ACCOUNT_READY,
        &["ready"],
        &["account_id", "ou", "creation_id", "access"],
    ),
    // Sign-in: granted with AccountReady, changed with AccountFrozen and
    // AccountUnfrozen, removed with AccountCloseRequested.
    (
        catalog::ACCESS_GRANTED,
        &["ready"],
        &["account_id", "ou", "creation_id", "access"],
    ),
    (
        catalog::ACCESS_CHANGED,
        &["frozen", "ready"],
        &["account_id", "reason_code", "reason", "access"],
    ),
    (
        catalog::ACCESS_REMOVED,
        &["closing", "cleaning"],
        &["account_id", "reason_code", "reason", "access"],
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
    // Approvals and extensions (shared/core/src/accounts/leasing.rs): a
    // request waits `pending_approval`, an extension on a running account.
    (
        catalog::ACCOUNT_APPROVAL_REQUESTED,
        &["pending_approval", "ready", "frozen"],
        &["reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_APPROVED,
        &["requested", "ready", "frozen"],
        &["approver"],
    ),
    (
        catalog::ACCOUNT_DENIED,
        &["closed", "ready", "frozen"],
        &["approver", "reason_code", "reason"],
    ),
    (
        catalog::LEASE_EXTENDED,
        &["ready", "frozen"],
        &["account_id", "lease_end", "extension_days"],
    ),
    // budgets: only accounts with an id are frozen or unfrozen, always
    // `.because(code, reason)`.
    (
        budgets::ACCOUNT_FROZEN,
        &["frozen"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        budgets::ACCOUNT_UNFROZEN,
        &["ready"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        budgets::ACCOUNT_FREEZE_FAILED,
        &["ready"],
        &["account_id", "reason_code", "reason"],
    ),
    // Recycling (shared/core/src/accounts/recycling.rs).
    (
        catalog::ACCOUNT_CLEANING_STARTED,
        &["cleaning"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_CLEANED,
        &["cooling"],
        &["account_id", "reason_code", "reason"],
    ),
    (catalog::ACCOUNT_AVAILABLE, &["available"], &["account_id"]),
    (
        catalog::ACCOUNT_QUARANTINED,
        &["quarantined"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_RELEASED,
        &["cooling"],
        &["account_id", "reason_code", "reason"],
    ),
    (
        catalog::ACCOUNT_RECYCLED,
        &["closed"],
        &["account_id", "reason_code", "reason"],
    ),
];

/// Every detail-type whose detail is an `AccountEvent`.
fn account_shaped() -> Vec<&'static str> {
    ACCOUNT_EVENTS
        .into_iter()
        .chain(FREEZE_EVENTS)
        .chain(catalog::ACCESS_EVENTS)
        .collect()
}

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
pub fn validator(name: &str) -> Validator {
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

pub fn assert_valid(name: &str, validator: &Validator, instance: &Value) {
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
        template: None,
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

/// As account-events leaves it once the creation succeeded: the owner
/// signs in with the developer permission set.
fn ready(lease_days: Option<u32>) -> Account {
    let mut a = creating(lease_days);
    a.state = AccountState::Ready;
    a.account_id = Some("210987654321".into());
    a.ou = Some("ou-ab12-cdefgh34".into());
    a.access = Some(access("assigned", "PurserDeveloper"));
    a.updated_at = now() + Duration::minutes(3);
    a
}

/// Sign-in as `AccessGrants` leaves it.
fn access(status: &str, set: &str) -> purser_core::access::Access {
    serde_json::from_value(json!({
        "status": status,
        "permission_set": set,
        "link": if status == "removed" { Value::Null } else {
            json!(format!("https://d-1234567890.awsapps.com/start/#/console?account_id=210987654321&role_name={set}"))
        },
        "owner": "u-0123456789",
        "granted": [{"account_id": "210987654321", "permission_set": "arn:aws:sso:::permissionSet/ssoins-1/ps-1", "user_id": "u-0123456789"}],
    }))
    .expect("an Access")
}

fn with_state(mut account: Account, state: AccountState, at: DateTime<Utc>) -> Account {
    account.state = state;
    account.updated_at = at;
    account
}

/// Every kind of detail Purser emits, as the flows in accounts/service.rs build them.
fn hackathon_v(version: u64) -> purser_core::leases::TemplateRef {
    purser_core::leases::TemplateRef {
        name: purser_core::leases::TemplateName::parse("hackathon").expect("a template name"),
        version,
    }
}

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

    // budgets: the team is over a `freeze` threshold; a ready account is
    // frozen (with or without a lease), as `Budgets::freeze` does it.
    for lease in [Some(30), None] {
        let a = with_state(ready(lease), AccountState::Frozen, t);
        cases.push((
            budgets::ACCOUNT_FROZEN,
            "frozen over budget",
            AccountEvent::of(&a, t).because("BUDGET_EXCEEDED", "the team is over its budget"),
        ));
    }
    // budgets: the team is back within its budget; `Budgets::unfreeze`.
    let frozen = with_state(ready(Some(30)), AccountState::Frozen, t);
    let a = with_state(frozen, AccountState::Ready, t + Duration::hours(3));
    cases.push((
        budgets::ACCOUNT_UNFROZEN,
        "back within budget",
        AccountEvent::of(&a, a.updated_at)
            .because("BUDGET_RESTORED", "the team is back within its budget"),
    ));
    // Sign-in: granted as the account is ready (account-events), swapped
    // with a freeze and back (budgets), removed as it closes (accounts).
    let a = ready(Some(30));
    cases.push((
        catalog::ACCESS_GRANTED,
        "the owner can sign in",
        AccountEvent::of(&a, a.updated_at),
    ));
    let mut a = with_state(ready(Some(30)), AccountState::Frozen, t);
    a.access = Some(access("assigned", "PurserReadOnly"));
    cases.push((
        catalog::ACCESS_CHANGED,
        "frozen: read-only",
        AccountEvent::of(&a, t).because("BUDGET_EXCEEDED", "the team is over its budget"),
    ));
    let a = with_state(ready(Some(30)), AccountState::Ready, t);
    cases.push((
        catalog::ACCESS_CHANGED,
        "unfrozen: the developer set again",
        AccountEvent::of(&a, t).because("BUDGET_RESTORED", "the team is back within its budget"),
    ));
    let mut a = with_state(ready(Some(30)), AccountState::Closing, t);
    a.access = Some(access("removed", "PurserDeveloper"));
    cases.push((
        catalog::ACCESS_REMOVED,
        "closing",
        AccountEvent::of(&a, t).because("LEASE_ENDED", "the lease ended"),
    ));

    // api: approvals and extensions (accounts/leasing.rs).
    let mut pending = requested(Some(2));
    pending.state = AccountState::PendingApproval;
    pending.lease_end = None;
    pending.template = Some(hackathon_v(1));
    cases.push((
        catalog::ACCOUNT_APPROVAL_REQUESTED,
        "a request the template asks approval for",
        AccountEvent::of(&pending, t).because(
            "APPROVAL_REQUIRED",
            "the template asks an approver for every request",
        ),
    ));
    let mut approved = with_state(pending.clone(), AccountState::Requested, t);
    approved.lease_end = Some(t + Duration::days(2));
    cases.push((
        catalog::ACCOUNT_APPROVED,
        "approved by an approver",
        AccountEvent::of(&approved, t)
            .decided_by("arn:aws:iam::123456789012:user/bob", None)
            .because("APPROVED", "fine"),
    ));
    cases.push((
        catalog::ACCOUNT_APPROVED,
        "approved by the template's rules",
        AccountEvent::of(&approved, t)
            .decided_by("auto", Some("auto: lease_at_most 7, team_under_quota")),
    ));
    let denied = with_state(pending.clone(), AccountState::Closed, t);
    cases.push((
        catalog::ACCOUNT_DENIED,
        "a request denied",
        AccountEvent::of(&denied, t)
            .decided_by("bob@example.com", None)
            .because("DENIED", "use the shared sandbox"),
    ));
    cases.push((
        catalog::ACCOUNT_DENIED,
        "a request nobody decided",
        AccountEvent::of(&denied, t)
            .decided_by("expiry", None)
            .because("APPROVAL_EXPIRED", "no approver decided within 7 days"),
    ));
    let mut running = ready(Some(7));
    running.template = Some(hackathon_v(1));
    cases.push((
        catalog::LEASE_EXTENDED,
        "an extension within the maximum",
        AccountEvent::of(&running, t).extending(3),
    ));
    cases.push((
        catalog::ACCOUNT_APPROVAL_REQUESTED,
        "an extension beyond the maximum",
        AccountEvent::of(&running, t)
            .because("EXTENSION_BEYOND_MAXIMUM", "12 days in all is beyond 7")
            .extending(5),
    ));
    cases.push((
        catalog::ACCOUNT_APPROVED,
        "an extension approved",
        AccountEvent::of(&running, t)
            .decided_by("bob@example.com", None)
            .extending(5),
    ));
    cases.push((
        catalog::ACCOUNT_DENIED,
        "an extension denied",
        AccountEvent::of(&running, t)
            .decided_by("bob@example.com", None)
            .because("DENIED", "finish this week")
            .extending(5),
    ));

    // budgets: the freeze SCP could not be attached; the account stays
    // ready, and the event carries it as it stands (no transition).
    let a = ready(None);
    let account_id = a.account_id.clone().expect("a ready account has an id");
    cases.push((
        budgets::ACCOUNT_FREEZE_FAILED,
        "five SCPs attached already",
        AccountEvent::of(&a, t).because(
            "POLICY_LIMIT",
            &format!(
                "account {account_id} already has {MAX_POLICIES_PER_TARGET} SCPs attached, the most AWS allows; detach one so Purser can freeze it"
            ),
        ),
    ));
    let (reason, message) = (
        "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
        format!("account {account_id} has 5 SCPs attached already"),
    );
    cases.push((
        budgets::ACCOUNT_FREEZE_FAILED,
        "AWS refused the attachment",
        AccountEvent::of(&a, t).because(
            "POLICY_LIMIT",
            &format!("AWS refused to attach the freeze policy: {reason}: {message}"),
        ),
    ));

    // Recycling: a lease of a template that recycles ends; the account is
    // cleaned, cools, is available, is lent again; or is quarantined and
    // released. The pool's OU is an OU like any.
    let mut pooled = ready(Some(30));
    pooled.template = Some(hackathon_v(2));
    let end = pooled.lease_end.expect("a lease");
    let mut a = with_state(pooled.clone(), AccountState::Cleaning, end);
    a.access = Some(access("removed", "PurserDeveloper"));
    cases.push((
        catalog::ACCOUNT_CLEANING_STARTED,
        "a recycled lease ended",
        AccountEvent::of(&a, end).because(
            "LEASE_ENDED",
            &format!("the lease ended at {}", rfc3339(end)),
        ),
    ));
    cases.push((
        catalog::ACCESS_REMOVED,
        "a recycled lease ended",
        AccountEvent::of(&a, end).because(
            "LEASE_ENDED",
            &format!("the lease ended at {}", rfc3339(end)),
        ),
    ));
    let mut a = with_state(a, AccountState::Cleaning, end + Duration::minutes(1));
    a.ou = Some("ou-ab12-pool0001".into());
    let cleaned = with_state(a.clone(), AccountState::Cooling, end + Duration::hours(1));
    cases.push((
        catalog::ACCOUNT_CLEANED,
        "two clean passes",
        AccountEvent::of(&cleaned, cleaned.updated_at).because(
            "CLEANED",
            &format!(
                "2 clean passes in a row; it cools until {}",
                rfc3339(end + Duration::hours(72))
            ),
        ),
    ));
    let available = with_state(cleaned, AccountState::Available, end + Duration::hours(72));
    cases.push((
        catalog::ACCOUNT_AVAILABLE,
        "cooled",
        AccountEvent::of(&available, available.updated_at),
    ));
    let lent = with_state(available, AccountState::Closed, end + Duration::hours(80));
    cases.push((
        catalog::ACCOUNT_RECYCLED,
        "lent again",
        AccountEvent::of(&lent, lent.updated_at).because(
            "LENT",
            "its account, cleaned and cooled, was lent to request r-8e1d0c2b3a49 of team search",
        ),
    ));
    let quarantined = with_state(a, AccountState::Quarantined, end + Duration::hours(2));
    cases.push((
        catalog::ACCOUNT_QUARANTINED,
        "three failed runs",
        AccountEvent::of(&quarantined, quarantined.updated_at).because(
            "CLEANING_FAILED",
            "3 cleaning runs failed; the last: BUILD: COMMAND_EXECUTION_ERROR: resources remain",
        ),
    ));
    let released = with_state(quarantined, AccountState::Cooling, end + Duration::hours(5));
    cases.push((
        catalog::ACCOUNT_RELEASED,
        "released by an admin",
        AccountEvent::of(&released, released.updated_at).because(
            "RELEASED",
            "released by arn:aws:iam::123456789012:role/platform after a look; it is lent again once cooled",
        ),
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
    for detail_type in account_shaped()
        .into_iter()
        .chain(BUDGET_EVENTS)
        .chain(THROTTLE_EVENTS)
        .chain(RUNAWAY_EVENTS)
    {
        assert!(
            names.contains(detail_type),
            "{detail_type} has no schema: add infra/schemas/{detail_type}.json"
        );
    }
    for name in &names {
        assert!(
            account_shaped().contains(&name.as_str())
                || BUDGET_EVENTS.contains(&name.as_str())
                || THROTTLE_EVENTS.contains(&name.as_str())
                || RUNAWAY_EVENTS.contains(&name.as_str())
                || AWS_EVENTS.contains(&name.as_str())
                || LAKE_EVENTS.contains(&name.as_str())
                || name == STACK_STATUS_CHANGE_SCHEMA
                || name == STACK_SET_OPERATION_SCHEMA
                || RESOURCE_EVENTS.iter().any(|(n, _, _)| n == name),
            "infra/schemas/{name}.json names no detail-type in catalog::ACCOUNT_EVENTS nor an event of budgets or of the lake nor an AWS event Purser accepts"
        );
    }
    for name in AWS_EVENTS
        .into_iter()
        .chain(LAKE_EVENTS)
        .chain([STACK_STATUS_CHANGE_SCHEMA, STACK_SET_OPERATION_SCHEMA])
        .chain(RESOURCE_EVENTS.map(|(name, _, _)| name))
    {
        assert!(names.contains(name), "{name} has no schema");
    }
    let contracted: BTreeSet<&str> = CONTRACT.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(
        contracted,
        account_shaped().into_iter().collect(),
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
    let full = full
        .decided_by("auto", Some("auto: lease_at_most 7"))
        .extending(3);
    let mut full = full;
    full.template = Some(hackathon_v(2));
    full.blueprint = Some(
        json!({"stack_set": "purser-baseline", "regions": ["us-east-1"],
        "status": "failed", "reason": "us-east-1: Bucket exists"}),
    );
    let all_fields = keys(&serde_json::to_value(&full).unwrap());
    // Every optional field unset: the keys are the fields always present.
    let bare = AccountEvent::of(&requested(None), now());
    let always = keys(&serde_json::to_value(&bare).unwrap());
    assert!(always.contains("state") && !always.contains("account_id"));

    for detail_type in account_shaped() {
        let schema = schema(detail_type);
        assert_eq!(schema["x-purser-source"], PURSER_SOURCE, "{detail_type}");
        assert_eq!(schema["x-purser-detail-type"], detail_type);
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
    // Each freeze event has one reason, and its schema holds it to that.
    for (detail_type, code) in FREEZE_REASONS {
        assert_eq!(
            schema(detail_type)["properties"]["reason_code"]["const"],
            code,
            "{detail_type}: reason_code"
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
        account_shaped().into_iter().collect(),
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
    for detail_type in account_shaped() {
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

#[test]
fn the_stack_set_operation_schema_matches_what_account_events_reads() {
    let schema = schema(STACK_SET_OPERATION_SCHEMA);
    assert_eq!(
        schema["x-purser-detail-type"],
        purser_core::ports::STACK_SET_OPERATION_CHANGE
    );
    for example in schema["examples"].as_array().unwrap() {
        let change = purser_core::ports::parse_stack_set_operation_change(example)
            .unwrap_or_else(|e| panic!("Purser cannot read its example: {e}"));
        assert!(change.operation_id.starts_with("purser-") && change.ended());
    }
    let validator = validator(STACK_SET_OPERATION_SCHEMA);
    let mut bad = schema["examples"][0].clone();
    bad.as_object_mut()
        .unwrap()
        .remove("stack-set-operation-id");
    assert_invalid(
        STACK_SET_OPERATION_SCHEMA,
        &validator,
        &bad,
        "no operation id",
    );
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
        (lake::UNPRICED_USAGE, Some(PURSER_SOURCE)),
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
    for (name, source, detail_type) in RESOURCE_EVENTS {
        let schema = schema(name);
        assert_eq!(schema["x-purser-bus"], PURSER_BUS, "{name}");
        assert_eq!(schema["x-purser-source"], source, "{name}");
        assert_eq!(schema["x-purser-detail-type"], detail_type, "{name}");
    }
}

/// `detail` as a member account's forwarding rule delivers it.
fn resource_event(source: &str, detail_type: &str, detail: &Value) -> purser_core::events::Event {
    serde_json::from_value(json!({
        "version": "0", "id": "e-1", "detail-type": detail_type, "source": source,
        "account": "210987654321", "region": "us-east-1", "time": "2026-11-21T22:00:00Z",
        "resources": [], "detail": detail,
    }))
    .unwrap()
}

#[test]
fn examples_of_resource_events_parse_as_the_recorder_reads_them() {
    use purser_core::lake::{ResourceChange, resource_change};
    for (name, source, detail_type) in RESOURCE_EVENTS {
        for example in examples(name) {
            let change = resource_change(&resource_event(source, detail_type, &example))
                .unwrap_or_else(|e| panic!("{name} example {example}: {e}"));
            let expected = match (name, &change) {
                ("EC2InstanceLaunchCall", ResourceChange::InstanceTypes(types)) => {
                    types.len() == usize::from(example["eventName"] == "RunInstances")
                }
                (_, ResourceChange::Start(run)) => {
                    run.key.account_id == "210987654321" && run.key.region == "us-east-1"
                }
                (_, ResourceChange::Stop { key, .. }) => key.account_id == "210987654321",
                _ => false,
            };
            assert!(expected, "{name} example {example}: {change:?}");
        }
    }
}

#[test]
fn broken_resource_events_are_refused_by_schema_and_parser_alike() {
    let cases = [
        (0, "/instance-id", json!("i-xyz")),
        (2, "/cpu", json!("999999")),
        (2, "/cpu", json!(99_999)),
        (2, "/memory", json!(256)),
        (3, "/ResourceConfig/InstanceCount", json!(1_000_000)),
        (3, "/ResourceConfig/InstanceType", json!("p3.2xlarge")),
        (
            4,
            "/ProductionVariants",
            json!(vec![json!({"DesiredInstanceCount": 1}); 11]),
        ),
        (
            4,
            "/EndpointArn",
            json!("arn:aws:sagemaker:us-east-1:210987654321:model/x"),
        ),
    ];
    for (i, pointer, value) in cases {
        let (name, source, detail_type) = RESOURCE_EVENTS[i];
        let example = if name == "SageMakerEndpointStateChange" {
            examples(name)[1].clone()
        } else {
            examples(name)[0].clone()
        };
        let broken = set(&example, pointer, Some(value));
        assert_invalid(name, &validator(name), &broken, pointer);
        assert!(
            purser_core::lake::resource_change(&resource_event(source, detail_type, &broken))
                .is_err(),
            "{name}{pointer}: the recorder refuses it too"
        );
    }
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

/// Whether the recorder would count every report of `detail`: it parses,
/// and screening on the day of the examples refuses none of its reports.
fn recorder_accepts(detail: &Value) -> bool {
    let now = "2026-11-21T10:05:00Z".parse().unwrap();
    InvocationsReported::parse(detail).is_ok_and(|(batch, _)| batch.screen(now).refused.is_empty())
}

#[test]
fn broken_accepted_events_are_refused_by_schema_and_parser_alike() {
    let invocations = validator(lake::INVOCATIONS_REPORTED);
    let good = examples(lake::INVOCATIONS_REPORTED)[0].clone();
    let broken: [(&str, Value); 15] = [
        ("/reports/0/billed_duration_ms", json!(0)),
        ("/reports/0/billed_duration_ms", json!(900_001)),
        ("/reports/0/billed_duration_ms", json!(u64::MAX)),
        ("/reports/0/duration_ms", json!(900_000.5)),
        ("/reports/0/max_memory_used_mb", json!(10_241)),
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
            !recorder_accepts(&bad),
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

// ------------------------------------------------------------ budgets

/// A platform admin, as the api sees one (an assumed role's session).
fn admin() -> Caller {
    Caller {
        principal: "arn:aws:sts::123456789012:assumed-role/platform-admin/maria".into(),
        admin: true,
    }
}

/// A budget as `PUT /teams/{team}/budget` takes it, stored at `revision`.
fn budget(team: &str, body: Value, revision: u64) -> Budget {
    let team = TeamName::parse(team).expect("a valid team");
    let mut budget =
        Budget::from_json(team, &body, now()).unwrap_or_else(|e| panic!("{body}: {e}"));
    budget.revision = revision;
    budget
}

/// The detail of `BudgetChanged`, built as `Budgets::put` builds it.
fn budget_changed(budget: &Budget, caller: &Caller) -> Value {
    json!({"version": 1, "team": budget.team, "revision": budget.revision,
        "amount": budget.amount.normalize().to_string(), "currency": budget.currency,
        "mode": budget.mode, "thresholds": budget.thresholds, "changed_by": caller.principal})
}

/// The details of `BudgetThresholdCrossed` when the team has spent `spend`
/// at `now`, built as `Budgets::evaluate` builds them: one per threshold
/// reached (each fires once; here every one is new).
fn thresholds_crossed(budget: &Budget, spend: Decimal, now: DateTime<Utc>) -> Vec<Value> {
    let (period, _, _) = period_of(now);
    let spend = PeriodSpend {
        period,
        forecast: forecast(spend, now),
        spend,
    };
    let team = &budget.team;
    let measure = budget.measure(spend.spend, spend.forecast);
    budget
        .crossed(measure)
        .into_iter()
        .map(|t| {
            let actions = budget.actions.get(&t).cloned().unwrap_or_default();
            json!({"version": 1, "scope": "team", "team": team, "period": spend.period,
                "threshold": t, "amount": budget.amount.normalize().to_string(),
                "spend": spend.spend.round_dp(6).normalize().to_string(),
                "forecast": spend.forecast.round_dp(6).normalize().to_string(),
                "currency": budget.currency, "mode": budget.mode, "actions": actions,
                "revision": budget.revision, "at": rfc3339(now)})
        })
        .collect()
}

/// The fields of `BudgetThresholdCrossed` only an account's own budget sets.
fn account_only() -> BTreeSet<String> {
    ["account_id", "request_id", "template", "lease_start"]
        .map(String::from)
        .into()
}

/// Budgets as admins set them: defaults, every option, the extremes.
fn budget_cases() -> Vec<Budget> {
    vec![
        budget("payments", json!({"amount": "250.00"}), 1),
        budget(
            "payments",
            json!({"amount": 12.5, "thresholds": [100, 50, 80], "mode": "forecast",
                "actions": {"100": ["notify", "freeze", "throttle-lambdas"]}}),
            2,
        ),
        budget(
            "data-eng",
            json!({"amount": "0.000001", "thresholds": [1, 1000],
                "actions": {"1": [], "1000": ["freeze", "freeze"]}}),
            17,
        ),
        budget(
            "ml",
            json!({"amount": "1000000000000", "currency": "USD", "thresholds": [75], "mode": "actual"}),
            1,
        ),
    ]
}

/// Times in a period: its first minute (the forecast runs far ahead), a
/// day in, its last second.
fn times_in_a_period() -> [DateTime<Utc>; 3] {
    [
        "2026-05-01T00:01:00Z",
        "2026-05-02T09:30:00Z",
        "2026-05-31T23:59:59Z",
    ]
    .map(|t| {
        DateTime::parse_from_rfc3339(t)
            .expect("a valid time")
            .with_timezone(&Utc)
    })
}

/// Spend as the counters hold it (nano-dollars), from a request's worth to
/// more than any team spends.
const SPENDS_NANOS: [i64; 6] = [
    0,
    16_867,
    1_200_000_000,
    3_333_333_333,
    1_234_567_891_234,
    999_999_999_999_999_999,
];

#[test]
fn budget_events_as_budgets_rs_builds_them_validate() {
    let changed = validator(budgets::BUDGET_CHANGED);
    let changed_fields = keys(&schema(budgets::BUDGET_CHANGED)["properties"]);
    let crossed = validator(budgets::BUDGET_THRESHOLD_CROSSED);
    let crossed_fields = keys(&schema(budgets::BUDGET_THRESHOLD_CROSSED)["properties"]);
    let users = [
        admin(),
        Caller {
            principal: "arn:aws:iam::123456789012:user/ana".into(),
            admin: true,
        },
        Caller {
            principal: LOCAL_ADMIN.into(),
            admin: true,
        },
    ];
    let (mut crossings, mut modes, mut actions) = (0, BTreeSet::new(), BTreeSet::new());
    for budget in budget_cases() {
        for caller in &users {
            let detail = budget_changed(&budget, caller);
            assert_valid(budgets::BUDGET_CHANGED, &changed, &detail);
            assert_eq!(
                keys(&detail),
                changed_fields,
                "the properties of BudgetChanged are the fields budgets/service.rs sets"
            );
        }
        for at in times_in_a_period() {
            for nanos in SPENDS_NANOS {
                for detail in thresholds_crossed(&budget, from_nanos(nanos), at) {
                    let name = format!(
                        "{} ({nanos} nano-USD at {at})",
                        budgets::BUDGET_THRESHOLD_CROSSED
                    );
                    assert_valid(&name, &crossed, &detail);
                    assert_eq!(
                        keys(&detail),
                        &crossed_fields - &account_only(),
                        "the properties of BudgetThresholdCrossed are the fields budgets/service.rs sets for a team"
                    );
                    modes.insert(detail["mode"].as_str().unwrap().to_string());
                    actions.extend(strings(&detail["actions"]));
                    crossings += 1;
                }
            }
        }
    }
    assert!(crossings > 20, "only {crossings} crossings were checked");
    // An account's own budget (its template's), as budgets/lease.rs
    // builds its crossings: every field, and the account's.
    let mut account_crossings = 0;
    for (template, version) in [
        (json!({"amount": "50.00"}), 1),
        (
            json!({"amount": "0.000001", "thresholds": [1, 1000],
                "actions": {"1": [], "1000": ["notify", "freeze", "throttle-lambdas"]}}),
            7,
        ),
    ] {
        let budget = purser_core::leases::AccountBudget::from_json(&template, now()).unwrap();
        for lease_days in [None, Some(2)] {
            let mut account = ready(lease_days);
            account.template = Some(purser_core::leases::TemplateRef {
                name: purser_core::leases::TemplateName::parse("hackathon").unwrap(),
                version,
            });
            for nanos in SPENDS_NANOS {
                for later in [Duration::minutes(1), Duration::days(5)] {
                    let at = account.created_at + later;
                    let standing = budgets::AccountStanding::of(
                        account.clone(),
                        account.template.clone().unwrap(),
                        &budget,
                        from_nanos(nanos),
                        at,
                    );
                    for t in standing.crossed() {
                        let detail = standing.crossed_detail(t, at);
                        assert_valid(budgets::BUDGET_THRESHOLD_CROSSED, &crossed, &detail);
                        assert_eq!(keys(&detail), crossed_fields, "an account's sets them all");
                        assert_eq!(detail["scope"], "account");
                        account_crossings += 1;
                    }
                }
            }
        }
    }
    assert!(
        account_crossings > 10,
        "only {account_crossings} were checked"
    );
    assert_eq!(
        modes,
        BTreeSet::from(["actual", "forecast"].map(String::from))
    );
    assert_eq!(
        actions,
        BTreeSet::from(["notify", "freeze", "throttle-lambdas"].map(String::from)),
        "every action is checked"
    );
}

/// Functions as a throttle changes them: with and without a reserved
/// concurrency, in two regions, and more than an event names.
fn changed_functions(n: usize) -> Vec<ChangedFunction> {
    (0..n)
        .map(|i| ChangedFunction {
            region: if i % 3 == 0 { "eu-west-1" } else { "us-east-1" }.into(),
            name: format!("function-{i:04}"),
            reserved_concurrency: (i % 2 == 0).then_some(i as u32),
        })
        .collect()
}

#[test]
fn throttle_events_as_throttle_rs_builds_them_validate() {
    let account = with_state(ready(Some(30)), AccountState::Frozen, now());
    for (name, build) in [
        (
            throttle::LAMBDAS_THROTTLED,
            throttle::throttled_detail as fn(&Account, &[ChangedFunction], DateTime<Utc>) -> Value,
        ),
        (throttle::LAMBDAS_RESTORED, throttle::restored_detail),
    ] {
        let validator = validator(name);
        let fields = keys(&schema(name)["properties"]);
        for n in [1, 2, 7, throttle::MAX_NAMED_FUNCTIONS, 600] {
            let detail = build(&account, &changed_functions(n), now());
            assert_valid(name, &validator, &detail);
            assert_eq!(
                keys(&detail),
                fields,
                "{name}: the fields budgets/throttle.rs sets"
            );
            assert_eq!(detail["count"], n);
            assert_eq!(
                detail["functions"].as_array().unwrap().len(),
                n.min(throttle::MAX_NAMED_FUNCTIONS)
            );
            assert!(
                EventEntry::purser(name, &detail).size() < 256 * 1024,
                "{name}: {n} functions fit an entry"
            );
        }
        let good = build(&account, &changed_functions(3), now());
        for field in strings(&schema(name)["required"]) {
            let bad = set(&good, &format!("/{field}"), None);
            assert_invalid(name, &validator, &bad, &format!("no {field}"));
        }
        for (pointer, value, why) in [
            ("/count", json!(0), "nothing changed"),
            ("/account_id", json!("12345"), "not an account id"),
            ("/functions/0/region", json!("Mars"), "not a region"),
            ("/functions/0/extra", json!(1), "an extra field"),
            ("/reason_code", json!("LEASE_ENDED"), "another reason"),
        ] {
            let bad = set(&good, pointer, Some(value));
            assert_invalid(name, &validator, &bad, why);
        }
    }
}

#[test]
fn broken_budget_details_fail_validation() {
    let changed = validator(budgets::BUDGET_CHANGED);
    let good = budget_changed(&budget_cases()[1], &admin());
    for field in strings(&schema(budgets::BUDGET_CHANGED)["required"]) {
        let bad = set(&good, &format!("/{field}"), None);
        assert_invalid(
            budgets::BUDGET_CHANGED,
            &changed,
            &bad,
            &format!("no {field}"),
        );
    }
    let broken: [(&str, Value); 20] = [
        ("/colour", json!("red")),
        ("/actions", json!({"100": ["freeze"]})),
        ("/version", json!(2)),
        ("/team", json!("Payments!")),
        ("/revision", json!(0)),
        ("/revision", json!("2")),
        ("/amount", json!(12.5)),
        ("/amount", json!("1e3")),
        ("/amount", json!("-5")),
        ("/amount", json!("12,50")),
        ("/amount", json!("0.0000001")),
        ("/currency", json!("usd")),
        ("/mode", json!("psychic")),
        ("/thresholds", json!([])),
        ("/thresholds", json!([50, 50])),
        ("/thresholds", json!([0, 50])),
        ("/thresholds", json!([1001])),
        ("/thresholds", json!(["50"])),
        ("/changed_by", json!("")),
        ("/changed_by", json!("maria")),
    ];
    for (pointer, value) in broken {
        let bad = set(&good, pointer, Some(value.clone()));
        assert_invalid(
            budgets::BUDGET_CHANGED,
            &changed,
            &bad,
            &format!("{pointer} = {value}"),
        );
    }

    let crossed = validator(budgets::BUDGET_THRESHOLD_CROSSED);
    let good = thresholds_crossed(&budget_cases()[1], from_nanos(12_600_000_000), now())
        .pop()
        .expect("100 % of 12.5 is crossed at 12.6");
    for field in strings(&schema(budgets::BUDGET_THRESHOLD_CROSSED)["required"]) {
        let bad = set(&good, &format!("/{field}"), None);
        assert_invalid(
            budgets::BUDGET_THRESHOLD_CROSSED,
            &crossed,
            &bad,
            &format!("no {field}"),
        );
    }
    let broken: [(&str, Value); 22] = [
        ("/colour", json!("red")),
        ("/version", json!(2)),
        ("/team", json!("Payments!")),
        ("/period", json!("2026-13")),
        ("/period", json!("2026-05-02")),
        ("/threshold", json!(0)),
        ("/threshold", json!("100")),
        ("/threshold", json!(99.5)),
        ("/amount", json!(12.5)),
        ("/spend", json!(12.6)),
        ("/spend", json!("12,60")),
        ("/spend", json!("-1")),
        ("/forecast", json!("1.2345678")),
        ("/forecast", json!(null)),
        ("/currency", json!("USD ")),
        ("/mode", json!(null)),
        ("/actions", json!("notify")),
        ("/actions", json!(["explode"])),
        ("/actions", json!(["notify", "notify"])),
        ("/revision", json!(0)),
        ("/at", json!("2026-05-02 09:30")),
        ("/at", json!("yesterday")),
    ];
    for (pointer, value) in broken {
        let bad = set(&good, pointer, Some(value.clone()));
        assert_invalid(
            budgets::BUDGET_THRESHOLD_CROSSED,
            &crossed,
            &bad,
            &format!("{pointer} = {value}"),
        );
    }
    // A team's crossing names no account, and an account's names it.
    for field in account_only() {
        let value = if field == "template" {
            json!({"name": "hackathon", "version": 1})
        } else {
            json!("x")
        };
        assert_invalid(
            budgets::BUDGET_THRESHOLD_CROSSED,
            &crossed,
            &set(&good, &format!("/{field}"), Some(value)),
            &format!("a team's crossing with {field}"),
        );
    }
    let account = examples(budgets::BUDGET_THRESHOLD_CROSSED)
        .into_iter()
        .find(|e| e["scope"] == "account")
        .expect("an example of an account's crossing");
    for field in account_only() {
        assert_invalid(
            budgets::BUDGET_THRESHOLD_CROSSED,
            &crossed,
            &set(&account, &format!("/{field}"), None),
            &format!("an account's crossing without {field}"),
        );
    }
    for (pointer, value) in [
        ("/period", json!("2026-05")),
        ("/mode", json!("forecast")),
        ("/account_id", json!("2353115318")),
    ] {
        assert_invalid(
            budgets::BUDGET_THRESHOLD_CROSSED,
            &crossed,
            &set(&account, pointer, Some(value.clone())),
            &format!("an account's crossing with {pointer} = {value}"),
        );
    }
    // No budget action is required, and none is missing from the enum.
    assert_valid(
        budgets::BUDGET_THRESHOLD_CROSSED,
        &crossed,
        &set(&good, "/actions", Some(json!([]))),
    );
}

#[test]
fn a_freeze_event_carries_only_its_own_reason() {
    for (detail_type, case, event) in real_details() {
        let Some((_, code)) = FREEZE_REASONS.iter().find(|(t, _)| *t == detail_type) else {
            continue;
        };
        assert_eq!(
            event.reason_code.as_deref(),
            Some(*code),
            "{detail_type} ({case})"
        );
        let validator = validator(detail_type);
        let good = detail(detail_type, &event);
        for (_, other) in FREEZE_REASONS.iter().filter(|(t, _)| *t != detail_type) {
            let bad = set(&good, "/reason_code", Some(json!(other)));
            assert_invalid(
                detail_type,
                &validator,
                &bad,
                &format!("reason_code {other}"),
            );
        }
        for code in ["REQUESTED", "LEASE_ENDED", ""] {
            let bad = set(&good, "/reason_code", Some(json!(code)));
            assert_invalid(
                detail_type,
                &validator,
                &bad,
                &format!("reason_code {code:?}"),
            );
        }
        let bad = set(&good, "/reason", Some(json!("")));
        assert_invalid(detail_type, &validator, &bad, "an empty reason");
    }
}

// ------------------------------------------------------------ budgets, for real

async fn until_ready(store: &dyn Store, id: &str) -> Account {
    for _ in 0..1000 {
        let account = store.account(id).await.expect("the store is readable");
        if let Some(account) = account.filter(|a| a.state == AccountState::Ready) {
            return account;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("account request {id} was not ready in 10 s");
}

/// The real code path on the embedded backends: an admin sets budgets, the
/// team spends, budgets weighs it (as its handler and directly), freezes one
/// account, fails to freeze another that has the most SCPs AWS allows, and
/// unfreezes when the budget is raised; a forecast-mode team crosses too.
/// Every event Purser archived meanwhile validates against its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_of_budgets_the_local_runtime_archives_validate() {
    let local = crate::common::local::start_with(crate::common::local::Options {
        organization_delay: std::time::Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let running = &local.running;
    let ports = running.ports();
    let admin = Caller {
        principal: LOCAL_ADMIN.into(),
        admin: true,
    };
    let payments = TeamName::parse("payments").unwrap();
    let data_eng = TeamName::parse("data-eng").unwrap();

    // Two ready accounts; the second already has the most SCPs AWS allows.
    let accounts = ports.accounts();
    let mut ready = Vec::new();
    for purpose in [
        "load tests for the checkout service",
        "a full house of SCPs",
    ] {
        let input = NewAccount {
            team: payments.clone(),
            owner: "ana@example.com".into(),
            purpose: purpose.into(),
            lease_days: Some(30),
            template: None,
        };
        let (account, _) = accounts
            .request(input, &admin, None)
            .await
            .expect("an admin may request an account");
        ready.push(until_ready(ports.store.as_ref(), &account.id).await);
    }
    let (open, full) = (&ready[0], &ready[1]);
    let id = |a: &Account| a.account_id.clone().expect("a ready account has an id");
    let (open_id, full_id) = (id(open), id(full));
    let org = running.organization();
    for i in 1.. {
        if org.policies_of(&full_id).await.unwrap().len() >= MAX_POLICIES_PER_TARGET {
            break;
        }
        let policy = org
            .ensure_policy(
                &format!("guardrail-{i}"),
                "a guardrail of the platform team",
                r#"{"Version": "2012-10-17", "Statement": []}"#,
            )
            .await
            .unwrap();
        org.attach_policy(&policy, &full_id).await.unwrap();
    }
    local.settle().await;

    // payments: $1.00 a month; the budgets function weighs it at once.
    let budgets = ports.budgets();
    let now = ports.clock.now();
    let body = json!({"amount": "1.00", "thresholds": [50, 80, 100], "mode": "actual",
        "actions": {"50": ["notify"], "80": ["notify", "throttle-lambdas"], "100": ["notify", "freeze"]}});
    budgets
        .put(
            Budget::from_json(payments.clone(), &body, now).unwrap(),
            &admin,
        )
        .await
        .expect("an admin sets a budget");
    local.settle().await;

    // $1.20 spent on the first account: over 100 %.
    let now = ports.clock.now();
    let spend = |team: &TeamName, account_id: &str, amount: &str| SpendAdd {
        team: Some(team.clone()),
        account_id: account_id.to_string(),
        day: now.date_naive(),
        nanos: to_nanos(Decimal::from_str(amount).unwrap()),
    };
    let recorded = ports
        .store
        .record_spend_once(
            &Marker::SpendBatch {
                account_id: open_id.clone(),
                batch_id: "schemas-test".into(),
            },
            now,
            now + Duration::days(1),
            &[spend(&payments, &open_id, "1.20")],
            &[],
        )
        .await
        .unwrap();
    assert!(recorded);
    budgets
        .evaluate(&payments)
        .await
        .expect("budgets weighs the spend");
    local.settle().await;

    // Raised to $100: within budget again.
    let raised = Budget::from_json(payments.clone(), &json!({"amount": "100"}), now).unwrap();
    budgets.put(raised, &admin).await.unwrap();
    local.settle().await;
    budgets.evaluate(&payments).await.unwrap();

    // data-eng weighs its forecast.
    let body = json!({"amount": "1", "thresholds": [10, 100], "mode": "forecast"});
    budgets
        .put(
            Budget::from_json(data_eng.clone(), &body, now).unwrap(),
            &admin,
        )
        .await
        .unwrap();
    local.settle().await;
    ports
        .store
        .record_spend_once(
            &Marker::SpendBatch {
                account_id: "345678901234".into(),
                batch_id: "schemas-test".into(),
            },
            now,
            now + Duration::days(1),
            // an account Purser does not know: the team counter takes it all the same
            &[spend(&data_eng, "345678901234", "0.2")],
            &[],
        )
        .await
        .unwrap();
    budgets.evaluate(&data_eng).await.unwrap();
    local.settle().await;

    // Every event Purser put on its bus has a schema and validates.
    let archived = inspect::archive(
        running.db(),
        &ArchiveFilter {
            source: Some(PURSER_SOURCE.into()),
            limit: 10_000,
            ..Default::default()
        },
    )
    .expect("the archive is readable");
    let names = schema_names();
    let mut validators: BTreeMap<String, Validator> = BTreeMap::new();
    let mut emitted: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in &archived {
        let detail_type = event.envelope["detail-type"]
            .as_str()
            .expect("an archived event has a detail-type");
        assert!(
            names.contains(detail_type),
            "Purser emitted {detail_type}, which has no schema: add infra/schemas/{detail_type}.json"
        );
        let validator = validators
            .entry(detail_type.to_string())
            .or_insert_with(|| validator(detail_type));
        let detail = &event.envelope["detail"];
        assert_valid(
            &format!("{detail_type} (archived as #{})", event.seq),
            validator,
            detail,
        );
        emitted
            .entry(detail_type.to_string())
            .or_default()
            .push(detail.clone());
    }
    assert!(
        inspect::dead_letters(running.db(), 10).unwrap().is_empty(),
        "no delivery failed"
    );

    // And they are the events the scenario makes.
    let of = |detail_type: &str| emitted.get(detail_type).cloned().unwrap_or_default();
    let changes: Vec<(String, u64)> = of(budgets::BUDGET_CHANGED)
        .iter()
        .map(|d| {
            (
                d["team"].as_str().unwrap().into(),
                d["revision"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("payments".into(), 1),
            ("payments".into(), 2),
            ("data-eng".into(), 1)
        ]
    );
    assert!(
        of(budgets::BUDGET_CHANGED)
            .iter()
            .all(|d| d["changed_by"] == LOCAL_ADMIN)
    );
    let crossings = of(budgets::BUDGET_THRESHOLD_CROSSED);
    let team_crossings = |team: &str| -> Vec<Value> {
        crossings
            .iter()
            .filter(|d| d["team"] == team)
            .cloned()
            .collect()
    };
    let thresholds: Vec<u64> = team_crossings("payments")
        .iter()
        .map(|d| d["threshold"].as_u64().unwrap())
        .collect();
    assert_eq!(thresholds, [50, 80, 100], "each once, in order");
    assert_eq!(
        team_crossings("payments")[1]["actions"],
        json!(["notify", "throttle-lambdas"])
    );
    assert!(
        team_crossings("payments")
            .iter()
            .all(|d| d["spend"] == "1.2" && d["mode"] == "actual" && d["revision"] == 1)
    );
    let forecasts = team_crossings("data-eng");
    assert_eq!(forecasts[0]["threshold"], 10, "{forecasts:?}");
    assert!(forecasts.iter().all(|d| d["mode"] == "forecast"));

    let only = |detail_type: &str| -> Value {
        let details = of(detail_type);
        assert_eq!(details.len(), 1, "{detail_type}: {details:?}");
        details[0].clone()
    };
    for (detail_type, account, state) in [
        (budgets::ACCOUNT_FROZEN, open, "frozen"),
        (budgets::ACCOUNT_UNFROZEN, open, "ready"),
        (budgets::ACCOUNT_FREEZE_FAILED, full, "ready"),
    ] {
        let detail = only(detail_type);
        assert_eq!(detail["request_id"], account.id.as_str(), "{detail_type}");
        assert_eq!(
            detail["account_id"],
            json!(account.account_id),
            "{detail_type}"
        );
        assert_eq!(detail["state"], state, "{detail_type}");
        let (_, code) = FREEZE_REASONS
            .iter()
            .find(|(t, _)| *t == detail_type)
            .unwrap();
        assert_eq!(detail["reason_code"], *code, "{detail_type}");
    }

    local.running.shutdown().await;
}

// ------------------------------------------------------------ the catalog

/// JSON with the keys of its objects in the order written: serde_json's
/// `Value` sorts them, and the catalog keeps the order of the schemas.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("a number that is not finite"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, Json>()? {
                    fields.push(field);
                }
                Ok(Json::Object(fields))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        self.fields().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn fields(&self) -> &[(String, Json)] {
        match self {
            Json::Object(fields) => fields,
            _ => &[],
        }
    }

    fn items(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            _ => &[],
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A value within text: a string as it is, anything else as JSON.
    fn inline(&self) -> String {
        match self {
            Json::String(s) => s.clone(),
            other => {
                let mut out = String::new();
                other.write(None, 0, &mut out);
                out
            }
        }
    }

    /// Written as JSON: compact (`indent` None) or pretty, two spaces a
    /// level, as `serde_json::to_string_pretty` writes it.
    fn write(&self, indent: Option<usize>, level: usize, out: &mut String) {
        let (open, close, items): (char, char, Vec<(Option<&str>, &Json)>) = match self {
            Json::Null => return out.push_str("null"),
            Json::Bool(b) => return out.push_str(&b.to_string()),
            Json::Number(n) => return out.push_str(&n.to_string()),
            Json::String(s) => return out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Array(items) => ('[', ']', items.iter().map(|v| (None, v)).collect()),
            Json::Object(fields) => (
                '{',
                '}',
                fields.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
            ),
        };
        out.push(open);
        for (i, (key, value)) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(width) = indent {
                out.push('\n');
                out.push_str(&" ".repeat(width * (level + 1)));
            }
            if let Some(key) = key {
                out.push_str(&serde_json::to_string(key).unwrap());
                out.push_str(if indent.is_some() { ": " } else { ":" });
            }
            value.write(indent, level + 1, out);
        }
        if let (Some(width), false) = (indent, items.is_empty()) {
            out.push('\n');
            out.push_str(&" ".repeat(width * level));
        }
        out.push(close);
    }
}

/// A schema, its keys in file order.
fn ordered_schema(name: &str) -> Json {
    let path = schema_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The keywords the catalog renders: any other in a schema fails the test,
/// so that the catalog never leaves a rule out.
const SCHEMA_KEYWORDS: [&str; 14] = [
    "$schema",
    "$id",
    "title",
    "description",
    "x-purser-source",
    "x-purser-source-pattern",
    "x-purser-bus",
    "x-purser-detail-type",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "allOf",
    "examples",
];
const FIELD_KEYWORDS: [&str; 17] = [
    "description",
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "items",
    "properties",
    "required",
    "additionalProperties",
];

/// Text for a cell of a Markdown table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn code(value: &Json) -> String {
    format!("`{}`", value.inline())
}

fn type_of(field: &Json) -> String {
    let one = |t: &Json| match t.str() {
        Some("array") => match field.get("items") {
            Some(items) => format!("array of {}", type_of(items)),
            None => "array".to_string(),
        },
        Some(t) => t.to_string(),
        None => t.inline(),
    };
    match field.get("type") {
        Some(Json::Array(types)) => types.iter().map(one).collect::<Vec<_>>().join(" or "),
        Some(t) => one(t),
        None => "any".to_string(),
    }
}

/// A range in words: "From 1 to 1000 items.", "At least 1 item.", "At
/// most 512 characters.", "At least 0."
fn range(low: Option<&Json>, high: Option<&Json>, unit: &str) -> Option<String> {
    let unit = |bound: &str| match unit {
        "" => String::new(),
        _ if bound == "1" => format!(" {unit}"),
        _ => format!(" {unit}s"),
    };
    let (low, high) = (low.map(Json::inline), high.map(Json::inline));
    match (low, high) {
        (Some(l), Some(h)) => Some(format!("From {l} to {h}{}.", unit(&h))),
        (Some(l), None) => Some(format!("At least {l}{}.", unit(&l))),
        (None, Some(h)) => Some(format!("At most {h}{}.", unit(&h))),
        (None, None) => None,
    }
}

/// The rules of a field, in words (its description first).
fn rules(field: &Json, what: &str) -> Vec<String> {
    for (keyword, _) in field.fields() {
        assert!(
            FIELD_KEYWORDS.contains(&keyword.as_str()),
            "{what}: the catalog does not render `{keyword}`; teach events_catalog() in tests/system/schemas.rs about it"
        );
    }
    let mut parts = Vec::new();
    if let Some(description) = field.get("description").and_then(Json::str) {
        parts.push(description.to_string());
    }
    if let Some(value) = field.get("const") {
        parts.push(format!("Always {}.", code(value)));
    }
    if let Some(values) = field.get("enum") {
        let values: Vec<String> = values.items().iter().map(code).collect();
        parts.push(format!("One of {}.", values.join(", ")));
    }
    if let Some(format) = field.get("format") {
        parts.push(format!("Format {}.", code(format)));
    }
    if let Some(pattern) = field.get("pattern") {
        parts.push(format!("Pattern {}.", code(pattern)));
    }
    parts.extend(range(
        field.get("minLength"),
        field.get("maxLength"),
        "character",
    ));
    parts.extend(range(field.get("minimum"), field.get("maximum"), ""));
    parts.extend(range(field.get("minItems"), field.get("maxItems"), "item"));
    if let Some(Json::Bool(true)) = field.get("uniqueItems") {
        parts.push("No duplicates.".to_string());
    }
    if let Some(items) = field.get("items") {
        let of_items = rules(items, &format!("{what}[]")).join(" ");
        if let Some(first) = of_items.chars().next() {
            // "Each item: one of …", unless the items have a description.
            let rest = &of_items[first.len_utf8()..];
            let first = match items.get("description") {
                Some(_) => first,
                None => first.to_ascii_lowercase(),
            };
            parts.push(format!("Each item: {first}{rest}"));
        }
    }
    match field.get("additionalProperties") {
        Some(Json::Bool(false)) => parts.push("No other fields.".to_string()),
        Some(Json::Bool(true)) => parts.push("Other fields are allowed.".to_string()),
        Some(other) => panic!("{what}: additionalProperties {}", other.inline()),
        None => {}
    }
    parts
}

/// The rows of the fields table: nested fields as `parent.field` and, in
/// the objects of an array, `parent[].field`.
fn field_rows(object: &Json, prefix: &str, what: &str, rows: &mut Vec<String>) {
    let required: Vec<&str> = object
        .get("required")
        .map(|r| r.items().iter().filter_map(Json::str).collect())
        .unwrap_or_default();
    for (name, field) in object
        .get("properties")
        .map(Json::fields)
        .unwrap_or_default()
    {
        let path = format!("{prefix}{name}");
        let what = format!("{what}: {path}");
        rows.push(format!(
            "| `{}` | {} | {} | {} |",
            cell(&path),
            cell(&type_of(field)),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            cell(&rules(field, &what).join(" ")),
        ));
        if field.get("properties").is_some() {
            field_rows(field, &format!("{path}."), &what, rows);
        }
        if let Some(items) = field.get("items").filter(|i| i.get("properties").is_some()) {
            field_rows(items, &format!("{path}[]."), &what, rows);
        }
    }
}

fn source_of(schema: &Json) -> String {
    match (
        schema.get("x-purser-source"),
        schema.get("x-purser-source-pattern"),
    ) {
        (Some(source), None) => code(source),
        (None, Some(pattern)) => format!("any that matches {}", code(pattern)),
        _ => panic!("a schema names its source or a source pattern, not both"),
    }
}

/// One event's section of the catalog.
fn catalog_section(name: &str, schema: &Json, out: &mut String) {
    for (keyword, _) in schema.fields() {
        assert!(
            SCHEMA_KEYWORDS.contains(&keyword.as_str()),
            "{name}.json: the catalog does not render `{keyword}`; teach events_catalog() in tests/system/schemas.rs about it"
        );
    }
    let text = |key: &str| {
        schema
            .get(key)
            .map(Json::inline)
            .unwrap_or_else(|| panic!("{name}.json has no {key}"))
    };
    writeln!(out, "### {name}\n").unwrap();
    writeln!(out, "- **detail-type:** `{}`", text("x-purser-detail-type")).unwrap();
    writeln!(out, "- **source:** {}", source_of(schema)).unwrap();
    writeln!(out, "- **bus:** `{}`", text("x-purser-bus")).unwrap();
    writeln!(
        out,
        "- **schema:** [`infra/schemas/{name}.json`](../infra/schemas/{name}.json)"
    )
    .unwrap();
    let others = match schema.get("additionalProperties") {
        Some(Json::Bool(false)) => "refused",
        Some(Json::Bool(true)) => "allowed",
        _ => panic!("{name}.json: say whether other fields are allowed"),
    };
    writeln!(out, "- **other fields:** {others}\n").unwrap();
    writeln!(out, "{}\n", text("description")).unwrap();

    writeln!(out, "| Field | Type | Required | Description |").unwrap();
    writeln!(out, "|---|---|---|---|").unwrap();
    let mut rows = Vec::new();
    field_rows(schema, "", name, &mut rows);
    for row in rows {
        writeln!(out, "{row}").unwrap();
    }
    if let Some(all_of) = schema.get("allOf") {
        let mut json = String::new();
        all_of.write(Some(2), 0, &mut json);
        writeln!(
            out,
            "\nWhich fields go together (JSON Schema `allOf`):\n\n```json\n{json}\n```"
        )
        .unwrap();
    }
    let examples = schema.get("examples").map(Json::items).unwrap_or_default();
    let label = if examples.len() == 1 {
        "Example"
    } else {
        "Examples"
    };
    writeln!(out, "\n{label}:\n").unwrap();
    for example in examples {
        let mut json = String::new();
        example.write(Some(2), 0, &mut json);
        writeln!(out, "```json\n{json}\n```\n").unwrap();
    }
}

/// The event catalog, docs/events.md, generated from infra/schemas/.
fn events_catalog() -> String {
    let schemas: Vec<(String, Json)> = schema_names()
        .into_iter()
        .map(|name| {
            let schema = ordered_schema(&name);
            (name, schema)
        })
        .collect();
    let (emitted, accepted): (Vec<_>, Vec<_>) = schemas.iter().partition(|(_, schema)| {
        schema.get("x-purser-source").and_then(Json::str) == Some(PURSER_SOURCE)
    });

    let mut out = String::new();
    writeln!(out, "# Event catalog\n").unwrap();
    writeln!(
        out,
        "<!-- Generated from infra/schemas/*.json by tests/system/schemas.rs: do not edit by hand.\n     \
         Regenerate with `{REGENERATE}=1 cargo test --test system schemas::`. -->\n"
    )
    .unwrap();
    writeln!(
        out,
        "Every event Purser emits or accepts, from its JSON Schema (draft 2020-12) in \
         [`infra/schemas/`](../infra/schemas/). A schema describes the event's `detail`; the \
         envelope (`source`, `detail-type`, `account`, `time`, …) is EventBridge's. A required \
         field is always present (a nested one, `parent.field` or `parent[].field`, whenever its \
         parent is); the others may be absent. Purser's own events carry a `version`: a breaking \
         change gets a new version.\n"
    )
    .unwrap();
    writeln!(
        out,
        "This file is generated: after changing a schema, run \
         `{REGENERATE}=1 cargo test --test system schemas::` (`cargo test --test system schemas::` fails while it \
         is stale).\n"
    )
    .unwrap();
    let groups = [
        (
            "Events Purser emits",
            "Purser's functions put these on the `purser` bus, with source `purser`.",
            &emitted,
        ),
        (
            "Events Purser accepts",
            "AWS services, member accounts, CI systems and the telemetry extension send these; \
             Purser's functions consume them.",
            &accepted,
        ),
    ];
    for (title, intro, group) in groups {
        writeln!(out, "## {title}\n\n{intro}\n").unwrap();
        writeln!(out, "| Event | detail-type | source | bus |").unwrap();
        writeln!(out, "|---|---|---|---|").unwrap();
        for (name, schema) in group.iter() {
            writeln!(
                out,
                "| [{name}](#{}) | `{}` | {} | `{}` |",
                name.to_lowercase(),
                cell(
                    &schema
                        .get("x-purser-detail-type")
                        .map(Json::inline)
                        .unwrap_or_default()
                ),
                cell(&source_of(schema)),
                cell(
                    &schema
                        .get("x-purser-bus")
                        .map(Json::inline)
                        .unwrap_or_default()
                ),
            )
            .unwrap();
        }
        writeln!(out).unwrap();
        for (name, schema) in group.iter() {
            catalog_section(name, schema, &mut out);
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[test]
fn the_event_catalog_is_generated_from_the_schemas() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CATALOG);
    let generated = events_catalog();
    if std::env::var_os(REGENERATE).is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let Ok(written) = std::fs::read_to_string(&path) else {
        panic!(
            "{CATALOG} is missing: generate it with `{REGENERATE}=1 cargo test --test system schemas::` and commit it with the schemas"
        );
    };
    if written != generated {
        let line = written
            .lines()
            .zip(generated.lines())
            .position(|(w, g)| w != g)
            .unwrap_or_else(|| written.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "{CATALOG} is stale (it differs from the schemas in infra/schemas/ from line {line}): \
             regenerate it with `{REGENERATE}=1 cargo test --test system schemas::` and commit it with the schemas"
        );
    }
}

#[test]
fn the_catalog_lists_every_schema_with_its_fields_and_examples() {
    let catalog = events_catalog();
    for name in schema_names() {
        let schema = ordered_schema(&name);
        assert!(
            catalog.contains(&format!("\n### {name}\n")),
            "{name} has no section"
        );
        let description = schema.get("description").and_then(Json::str).unwrap();
        assert!(catalog.contains(description), "{name}: its description");
        for (field, _) in schema
            .get("properties")
            .map(Json::fields)
            .unwrap_or_default()
        {
            assert!(
                catalog.contains(&format!("| `{field}` |")),
                "{name}: field {field}"
            );
        }
        for example in schema.get("examples").map(Json::items).unwrap_or_default() {
            // The pretty example is the same JSON as the schema's.
            let mut text = String::new();
            example.write(Some(2), 0, &mut text);
            assert!(catalog.contains(&text), "{name}: an example");
            let reparsed: Value = serde_json::from_str(&text).unwrap();
            assert!(schema_examples_contain(&name, &reparsed), "{name}: {text}");
        }
    }
}

fn schema_examples_contain(name: &str, example: &Value) -> bool {
    schema(name)["examples"]
        .as_array()
        .is_some_and(|examples| examples.contains(example))
}
