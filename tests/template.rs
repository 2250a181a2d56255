//! Checks of infra/template.yaml that cfn-lint does not make: it does not
//! flag a wrong runtime, architecture, memory size or timeout on
//! `AWS::Serverless::Function`, nor know Purser's own rules (every function
//! built from a crate of this workspace, every asynchronous target retried
//! and dead-lettered, no `*` action on `*` resource). cfn-lint itself runs
//! in scripts/test.

use std::path::Path;

use purser_local::template::{LocalContext, Template, Trigger};
use serde_json::Value;

fn template() -> Template {
    Template::builtin()
}

fn functions(t: &Template) -> Vec<(&String, &Value)> {
    t.resources()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .collect()
}

/// A function's property, or the Globals' when it sets none.
fn property<'a>(t: &'a Template, function: &'a Value, name: &str) -> Option<&'a Value> {
    function["Properties"]
        .get(name)
        .or_else(|| t.document.pointer(&format!("/Globals/Function/{name}")))
}

#[test]
fn is_a_sam_template() {
    assert_eq!(
        template().document["Transform"],
        "AWS::Serverless-2016-10-31"
    );
}

#[test]
fn every_function_runs_rust_on_al2023_arm64_with_json_logs_and_sane_limits() {
    let t = template();
    assert!(!functions(&t).is_empty());
    for (id, f) in functions(&t) {
        assert_eq!(
            property(&t, f, "Runtime").and_then(Value::as_str),
            Some("provided.al2023"),
            "{id}: Runtime"
        );
        assert_eq!(
            property(&t, f, "Architectures"),
            Some(&serde_json::json!(["arm64"])),
            "{id}: Architectures"
        );
        assert_eq!(
            property(&t, f, "Handler").and_then(Value::as_str),
            Some("bootstrap"),
            "{id}: Handler"
        );
        let memory = property(&t, f, "MemorySize").and_then(Value::as_u64);
        assert!(
            memory.is_some_and(|m| (128..=10_240).contains(&m)),
            "{id}: MemorySize {memory:?} is outside Lambda's 128..=10240 MB"
        );
        let timeout = property(&t, f, "Timeout").and_then(Value::as_u64);
        assert!(
            timeout.is_some_and(|s| (1..=900).contains(&s)),
            "{id}: Timeout {timeout:?} is outside Lambda's 1..=900 s"
        );
        assert_eq!(
            property(&t, f, "LoggingConfig").map(|l| &l["LogFormat"]),
            Some(&Value::from("JSON")),
            "{id}: structured JSON logs"
        );
        assert_eq!(
            f["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id}: BuildMethod"
        );
    }
}

#[test]
fn every_function_is_built_from_a_function_crate_of_this_workspace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = template();
    for (id, f) in functions(&t) {
        let code_uri = f["Properties"]["CodeUri"].as_str().unwrap_or_default();
        let workspace = root.join("infra").join(code_uri);
        assert!(
            workspace.join("Cargo.toml").is_file(),
            "{id}: CodeUri {code_uri} (from infra/) must be the workspace root"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary names the binary"));
        let crate_dir = std::fs::read_dir(root.join("functions"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|dir| {
                std::fs::read_to_string(dir.join("Cargo.toml"))
                    .is_ok_and(|m| m.contains(&format!("name = \"{binary}\"")))
            })
            .unwrap_or_else(|| panic!("{id}: no crate under functions/ builds {binary}"));
        assert!(
            crate_dir.join("src/main.rs").is_file() && crate_dir.join("src/lib.rs").is_file(),
            "{id}: {} needs main.rs (the runtime) and lib.rs (the handler)",
            crate_dir.display()
        );
    }
}

#[test]
fn every_rule_pattern_and_schedule_compiles() {
    // `wiring` compiles every pattern and schedule expression, and names
    // the event whose pattern is wrong.
    template()
        .wiring(&LocalContext::default())
        .expect("every pattern and schedule of the template is valid");
}

#[test]
fn every_asynchronous_target_is_retried_and_dead_lettered() {
    let t = template();
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    for wire in &wiring.wires {
        let spec = &t.document["Resources"][&wire.function]["Properties"]["Events"][&wire.event];
        match &wire.trigger {
            Trigger::Rule {
                dead_letter_queue, ..
            }
            | Trigger::Schedule {
                dead_letter_queue, ..
            } => {
                assert!(
                    spec["Properties"].get("RetryPolicy").is_some(),
                    "{}: an asynchronous target needs a RetryPolicy",
                    wire.name()
                );
                assert!(
                    dead_letter_queue,
                    "{}: an asynchronous target needs a DeadLetterConfig",
                    wire.name()
                );
            }
            Trigger::HttpRoute { .. } => {}
        }
    }
}

/// Every IAM statement of the template, wherever it sits.
fn statements(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("Statement") {
                found.extend(list.iter().cloned());
            }
            map.values().for_each(|v| statements(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| statements(v, found)),
        _ => {}
    }
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn no_statement_allows_every_action_on_every_resource() {
    let mut found = Vec::new();
    statements(&template().document, &mut found);
    for s in found {
        if s["Effect"] != "Allow" {
            continue;
        }
        let any_action = as_list(&s["Action"])
            .iter()
            .any(|a| a == "*" || a.ends_with(":*"));
        let any_resource = as_list(&s["Resource"]).iter().any(|r| r == "*");
        assert!(
            !(any_action && any_resource),
            "least privilege: {s} allows every action on every resource"
        );
    }
}

#[test]
fn the_table_is_on_demand_recoverable_and_expires_idempotency_keys() {
    let t = template();
    let table = &t.document["Resources"]["Table"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    // The DynamoDB store writes `expires_at` and keys items by pk/sk.
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    let keys: Vec<&str> = table["KeySchema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["pk", "sk"]);
}

#[test]
fn the_purser_bus_is_archived_and_has_a_dead_letter_queue() {
    let t = template();
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    assert!(wiring.buses.iter().any(|b| b == "purser"));
    let archived = t.resources().any(|(_, r)| {
        r["Type"] == "AWS::Events::Archive"
            && r["Properties"]["SourceArn"]
                == serde_json::json!({"Fn::GetAtt": ["PurserBus", "Arn"]})
    });
    assert!(archived, "the purser bus has an archive");
    assert!(
        t.resources().any(|(_, r)| r["Type"] == "AWS::SQS::Queue"),
        "a dead-letter queue exists"
    );
}
