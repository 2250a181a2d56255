//! The guardrails as SCP documents, within AWS's limits.

use serde_json::{Value, json};

use super::{GLOBAL_SERVICE_ACTIONS, GuardrailError, Guardrails};
use crate::ports::{MAX_POLICIES_PER_TARGET, MAX_POLICY_CHARS};

/// The name guardrail SCPs are created under, before their scope and
/// number.
pub const GUARDRAIL_POLICY: &str = "purser-guardrail";

/// `FullAWSAccess`, AWS's own SCP, stays attached to every target: SCPs
/// only take away, so without an allowing one beside Purser's deny-only
/// documents nothing at all would be allowed.
pub const FULL_AWS_ACCESS_POLICIES: usize = 1;
/// What Purser itself must still attach beside the guardrails on the same
/// target: on Purser's OU the member guard (`purser-member-guard`,
/// MemberGuardPolicy), on an account the budget freeze
/// (`purser-budget-freeze`), which must find room the moment a team goes
/// over budget.
pub const PURSER_POLICIES: usize = 1;
/// At most this many guardrail SCPs per target: five per target, less
/// `FullAWSAccess` and Purser's guard or freeze.
pub const MAX_GUARDRAIL_POLICIES: usize =
    MAX_POLICIES_PER_TARGET - FULL_AWS_ACCESS_POLICIES - PURSER_POLICIES;

/// The name of the `index`th (from 0) guardrail SCP of `scope`:
/// `purser-guardrail-ou-1`, `purser-guardrail-hackathon-2`.
pub fn policy_name(scope: &str, index: usize) -> String {
    format!("{GUARDRAIL_POLICY}-{scope}-{}", index + 1)
}

pub(super) const REGIONS_SID: &str = "PurserRegions";
pub(super) const DENIED_ACTIONS_SID: &str = "PurserDeniedActions";
pub(super) const LARGEST_INSTANCES_SID: &str = "PurserLargestInstances";

/// One statement to write: its fixed part, and the list that may be
/// spread over several statements (a union, so splitting keeps its
/// meaning) or not (the region rule's `NotAction`: split, each part would
/// deny what the other exempts).
/// Writes a rule's statement with (part of) its list.
type Build = Box<dyn Fn(&[String]) -> Value>;

struct Rule {
    sid: &'static str,
    field: &'static str,
    /// Builds the statement with (part of) the list.
    build: Build,
    list: Vec<String>,
    splittable: bool,
}

fn document(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn with_sid(mut statement: Value, sid: String) -> Value {
    statement["Sid"] = Value::String(sid);
    statement
}

pub(super) fn documents(guardrails: &Guardrails) -> Result<Vec<String>, GuardrailError> {
    let settings = guardrails.settings();
    let exempt = guardrails.exemptions().exemption_condition()?;
    let mut rules = Vec::new();
    if !settings.regions.is_empty() {
        let exempt = exempt.clone();
        rules.push(Rule {
            sid: REGIONS_SID,
            field: "regions",
            build: Box::new(move |regions| {
                let mut condition = exempt.clone();
                condition["StringNotEquals"] = json!({"aws:RequestedRegion": regions});
                json!({
                    "Sid": REGIONS_SID,
                    "Effect": "Deny",
                    "NotAction": GLOBAL_SERVICE_ACTIONS,
                    "Resource": "*",
                    "Condition": condition,
                })
            }),
            list: settings.regions.clone(),
            splittable: false,
        });
    }
    if !settings.denied_actions.is_empty() {
        let exempt = exempt.clone();
        rules.push(Rule {
            sid: DENIED_ACTIONS_SID,
            field: "denied_actions",
            build: Box::new(move |actions| {
                json!({
                    "Sid": DENIED_ACTIONS_SID,
                    "Effect": "Deny",
                    "Action": actions,
                    "Resource": "*",
                    "Condition": exempt,
                })
            }),
            list: settings.denied_actions.clone(),
            splittable: true,
        });
    }
    if !settings.denied_instance_types.is_empty() {
        let exempt = exempt.clone();
        rules.push(Rule {
            sid: LARGEST_INSTANCES_SID,
            field: "denied_instance_types",
            build: Box::new(move |types| {
                let mut condition = exempt.clone();
                condition["StringLike"] = json!({"ec2:InstanceType": types});
                json!({
                    "Sid": LARGEST_INSTANCES_SID,
                    "Effect": "Deny",
                    "Action": "ec2:RunInstances",
                    "Resource": "*",
                    "Condition": condition,
                })
            }),
            list: settings.denied_instance_types.clone(),
            splittable: true,
        });
    }

    // Packed in order: each statement in the last document while it fits;
    // a splittable list fills what room is left, then goes on, numbered
    // from its second part, in a new document.
    let mut docs: Vec<Vec<Value>> = vec![Vec::new()];
    let mut sizes: Vec<(&'static str, usize, usize)> = Vec::new();
    let fits = |doc: &[Value], statement: &Value| {
        let mut doc = doc.to_vec();
        doc.push(statement.clone());
        chars(&document(&doc)) <= MAX_POLICY_CHARS
    };
    for rule in &rules {
        sizes.push((
            rule.field,
            chars(&(rule.build)(&rule.list).to_string()),
            rule.list.len(),
        ));
        let whole = (rule.build)(&rule.list);
        if !rule.splittable {
            if !fits(docs.last().expect("a document"), &whole) {
                if !fits(&[], &whole) {
                    return Err(too_large(
                        rule.field,
                        format!(
                            "the guardrails' {} statement alone would be {} characters; an SCP holds at most {MAX_POLICY_CHARS}: name fewer {} (or fewer break-glass roles)",
                            rule.sid,
                            chars(&document(&[whole])),
                            rule.field.replace('_', " "),
                        ),
                    ));
                }
                docs.push(Vec::new());
            }
            docs.last_mut().expect("a document").push(whole);
            continue;
        }
        let mut parts = 0;
        let part_of = |items: &[String], index: usize| {
            let statement = (rule.build)(items);
            if index == 0 {
                statement
            } else {
                with_sid(statement, format!("{}{}", rule.sid, index + 1))
            }
        };
        let mut part: Vec<String> = Vec::new();
        for item in &rule.list {
            part.push(item.clone());
            if fits(docs.last().expect("a document"), &part_of(&part, parts)) {
                continue;
            }
            part.pop();
            if !part.is_empty() {
                let statement = part_of(&part, parts);
                docs.last_mut().expect("a document").push(statement);
                parts += 1;
            }
            if docs.last().is_some_and(|d| !d.is_empty()) {
                docs.push(Vec::new());
            }
            part = vec![item.clone()];
            if !fits(&[], &part_of(&part, parts)) {
                return Err(too_large(
                    rule.field,
                    format!(
                        "{item:?} makes a statement over {MAX_POLICY_CHARS} characters on its own: shorten {} or name fewer break-glass roles",
                        rule.field
                    ),
                ));
            }
        }
        let statement = part_of(&part, parts);
        docs.last_mut().expect("a document").push(statement);
    }
    docs.retain(|d| !d.is_empty());
    if docs.len() > MAX_GUARDRAIL_POLICIES {
        // The list that takes the most room is the one to shorten.
        let mut by_field = sizes;
        by_field.sort_by_key(|(_, size, _)| std::cmp::Reverse(*size));
        let (field, _, count) = by_field[0];
        return Err(too_large(
            field,
            format!(
                "the guardrails need {} SCPs of at most {MAX_POLICY_CHARS} characters, and a target takes {MAX_GUARDRAIL_POLICIES} (five SCPs, less FullAWSAccess and Purser's own guard or freeze): shorten {field} ({count} entries; a wildcard such as ec2:Purchase* stands for many)",
                docs.len()
            ),
        ));
    }
    Ok(docs.iter().map(|d| document(d)).collect())
}

fn too_large(field: &str, message: String) -> GuardrailError {
    GuardrailError::TooLarge {
        field: field.into(),
        message,
    }
}
