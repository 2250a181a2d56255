//! Checks of infra/template.yaml that cfn-lint does not make: it does not
//! flag a wrong runtime, architecture, memory size or timeout on
//! `AWS::Serverless::Function`, nor know Purser's own rules (every function
//! built from a crate of this workspace, every asynchronous target retried
//! and dead-lettered, no `*` action on `*` resource, no event loop), nor
//! whether the lake's Glue tables, Firehose streams and bucket fit the
//! records the code writes. infra/member-account.yaml is checked too.
//! cfn-lint itself runs in scripts/test.

use std::collections::BTreeSet;
use std::path::Path;

use purser_core::lake::{
    self, DeploymentRecord, InvocationRecord, LakeTable, LeaseRecord, TeamSpendUpdated,
};
use purser_eventbridge::EventPattern;
use purser_local::template::{LocalContext, Template, Trigger};
use serde_json::{Value, json};

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
fn functions_read_queues_through_mappings_that_grant_one_queue() {
    // SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole, which reads
    // and deletes the messages of every queue of the account.
    let t = template();
    for (id, resource) in t.resources() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        for (name, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert_ne!(
                event["Type"], "SQS",
                "{id}.{name}: use an AWS::Lambda::EventSourceMapping"
            );
        }
    }
    let mappings: Vec<_> = t
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .collect();
    assert_eq!(
        mappings.len(),
        2,
        "the recorder's and the budgets function's"
    );
    for (id, mapping) in mappings {
        let function = mapping["Properties"]["FunctionName"]["Ref"]
            .as_str()
            .unwrap();
        let queue = &mapping["Properties"]["EventSourceArn"];
        let mut found = Vec::new();
        statements(&t.document["Resources"][function], &mut found);
        assert!(
            found.iter().any(|s| s["Resource"] == *queue
                && as_list(&s["Action"]).contains(&"sqs:ReceiveMessage".to_string())),
            "{id}: {function}'s role reads {queue} and only it"
        );
    }
}

#[test]
fn every_asynchronous_target_is_retried_and_dead_lettered() {
    let t = template();
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    for wire in &wiring.wires {
        // A SAM event of the function, or a resource of its own (an event
        // source mapping).
        let event = &t.document["Resources"][&wire.function]["Properties"]["Events"][&wire.event];
        let spec = if event.is_null() {
            &t.document["Resources"][&wire.event]
        } else {
            event
        };
        match &wire.trigger {
            // Through a queue: the rule's target is retried and dead-lettered,
            // and so is the queue's message, by its redrive policy.
            Trigger::Rule {
                queue: Some(queue),
                dead_letter_queue,
                ..
            } => {
                let targets = t.document["Resources"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter(|r| r["Type"] == "AWS::Events::Rule")
                    .flat_map(|r| {
                        r["Properties"]["Targets"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter(|target| target["Arn"]["Fn::GetAtt"][0] == queue.name.as_str())
                    .collect::<Vec<_>>();
                assert_eq!(
                    targets.len(),
                    1,
                    "{}: one rule feeds {}",
                    wire.name(),
                    queue.name
                );
                assert!(
                    targets[0].get("RetryPolicy").is_some() && *dead_letter_queue,
                    "{}: the rule's target needs a RetryPolicy and a DeadLetterConfig",
                    wire.name()
                );
                let redrive = &t.document["Resources"][&queue.name]["Properties"]["RedrivePolicy"];
                assert!(
                    redrive["deadLetterTargetArn"].is_object()
                        && redrive["maxReceiveCount"].is_u64(),
                    "{}: a message that keeps failing goes to a dead-letter queue",
                    queue.name
                );
                assert_eq!(
                    spec["Properties"]["FunctionResponseTypes"][0],
                    "ReportBatchItemFailures",
                    "{}: one failed message must not bring back its whole batch",
                    wire.name()
                );
            }
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
            match map.get("Statement") {
                Some(Value::Array(list)) => found.extend(list.iter().cloned()),
                // An event bus policy holds one statement, not a list.
                Some(one @ Value::Object(_)) => found.push(one.clone()),
                _ => {}
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
    assert_least_privilege(&template().document);
}

fn assert_least_privilege(document: &Value) {
    let mut found = Vec::new();
    statements(document, &mut found);
    assert!(!found.is_empty(), "the template has IAM statements");
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

// ------------------------------------------------------------ the lake

fn resource<'a>(t: &'a Template, id: &str) -> &'a Value {
    let r = &t.document["Resources"][id];
    assert!(r.is_object(), "the template has no resource {id}");
    r
}

fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

/// The text of a `!Sub` without variables map.
fn sub(v: &Value) -> &str {
    v["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("{v} is not a !Sub string"))
}

/// The statements of a function's inline `Statement` policies.
fn inline_statements(function: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    for policy in function["Properties"]["Policies"].as_array().unwrap() {
        if let Some(Value::Array(list)) = policy.get("Statement") {
            found.extend(list.iter().cloned());
        }
    }
    found
}

fn statement_with_action<'a>(statements: &'a [Value], action: &str) -> &'a Value {
    let with: Vec<&Value> = statements
        .iter()
        .filter(|s| as_list(&s["Action"]).iter().any(|a| a == action))
        .collect();
    assert_eq!(with.len(), 1, "one statement allows {action}: {with:?}");
    with[0]
}

#[test]
fn the_lake_bucket_is_private_encrypted_and_denies_plain_http() {
    let t = template();
    let bucket = &resource(&t, "LakeBucket")["Properties"];
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            bucket["PublicAccessBlockConfiguration"][flag], true,
            "LakeBucket: {flag}"
        );
    }
    assert_eq!(
        bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"], "BucketOwnerEnforced",
        "ACLs are off"
    );
    let sse = &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        ["SSEAlgorithm"];
    assert!(
        ["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse.as_str().unwrap_or_default()),
        "LakeBucket: default encryption, found {sse}"
    );
    assert_eq!(resource(&t, "LakeBucket")["DeletionPolicy"], "Retain");

    // A bucket policy on the lake bucket denies every request without TLS,
    // on the bucket and on its objects.
    let policies: Vec<&Value> = t
        .resources()
        .filter(|(_, r)| {
            r["Type"] == "AWS::S3::BucketPolicy"
                && r["Properties"]["Bucket"] == reference("LakeBucket")
        })
        .map(|(_, r)| r)
        .collect();
    assert_eq!(policies.len(), 1, "the lake bucket has one bucket policy");
    let statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let deny_http = statements.iter().find(|s| {
        s["Effect"] == "Deny"
            && s["Condition"]["Bool"]["aws:SecureTransport"].as_str().or(
                s["Condition"]["Bool"]["aws:SecureTransport"]
                    .as_bool()
                    .map(|b| if b { "true" } else { "false" }),
            ) == Some("false")
    });
    let deny_http = deny_http.expect("a statement denies aws:SecureTransport false");
    assert_eq!(deny_http["Principal"], "*", "for everyone");
    assert!(
        as_list(&deny_http["Action"]).contains(&"s3:*".to_string()),
        "every S3 action"
    );
    let resources = deny_http["Resource"].as_array().unwrap();
    assert!(
        resources.contains(&get_att("LakeBucket", "Arn")),
        "the bucket"
    );
    assert!(
        resources
            .iter()
            .any(|r| r.get("Fn::Sub").and_then(Value::as_str) == Some("${LakeBucket.Arn}/*")),
        "its objects"
    );
}

#[test]
fn the_lake_bucket_expires_what_is_not_the_lake() {
    let t = template();
    let rules = resource(&t, "LakeBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap();
    let expiry = |prefix: &str| {
        rules
            .iter()
            .find(|r| r["Prefix"] == prefix && r["Status"] == "Enabled")
            .and_then(|r| r["ExpirationInDays"].as_u64())
            .unwrap_or_else(|| panic!("objects under {prefix} expire"))
    };
    assert_eq!(expiry("dead-letter/"), 90);
    assert_eq!(expiry("errors/"), 90);
    assert_eq!(expiry("athena-results/"), 30);
    for table in LakeTable::ALL {
        let prefix = format!("{table}/");
        let rule = rules
            .iter()
            .find(|r| r["Prefix"] == prefix.as_str())
            .unwrap_or_else(|| panic!("a lifecycle rule for {prefix}"));
        assert!(
            rule.get("ExpirationInDays").is_none(),
            "the lake's own data never expires by itself"
        );
        assert_eq!(
            rule["Transitions"][0]["StorageClass"],
            "INTELLIGENT_TIERING"
        );
    }
}

/// A record of each table with every optional field set, as the recorder
/// writes it.
fn sample_records() -> Vec<(LakeTable, Value)> {
    let invocation = InvocationRecord {
        schema_version: lake::LAKE_SCHEMA_VERSION,
        account_id: "210987654321".into(),
        team: Some("payments".into()),
        region: "eu-west-1".into(),
        function_name: "checkout-api".into(),
        architecture: "arm64".into(),
        memory_mb: 512,
        request_id: "5f0e4a0c-9b1d-4c2e-8f3a-6b7c8d9e0f1a".into(),
        timestamp: "2026-05-02T09:30:00.125Z".into(),
        duration_ms: 182.36,
        billed_duration_ms: 183,
        max_memory_used_mb: 96,
        init_duration_ms: Some(241.5),
        cost_usd: 0.0000014203,
    };
    let deployment = DeploymentRecord {
        schema_version: lake::LAKE_SCHEMA_VERSION,
        account_id: "210987654321".into(),
        team: Some("payments".into()),
        region: "eu-west-1".into(),
        source: "ci".into(),
        stack: "checkout-service".into(),
        status: "SUCCEEDED".into(),
        status_reason: Some("deployed".into()),
        commit: Some("9fceb02".into()),
        git_ref: Some("main".into()),
        pipeline: Some("https://ci.example.com/runs/1".into()),
        started_at: Some("2026-05-02T09:28:10.000Z".into()),
        finished_at: Some("2026-05-02T09:31:42.000Z".into()),
        duration_s: Some(212.0),
        timestamp: "2026-05-02T09:31:43.000Z".into(),
    };
    let lease = LeaseRecord {
        schema_version: lake::LAKE_SCHEMA_VERSION,
        lease_id: "r-0a1b2c3d4e5f".into(),
        account_id: "210987654321".into(),
        team: "payments".into(),
        template: Some("sandbox".into()),
        event: lake::LEASE_STARTED.into(),
        cause: "AccountReady".into(),
        timestamp: "2026-05-02T09:31:43.000Z".into(),
    };
    vec![
        (
            LakeTable::Invocations,
            serde_json::to_value(invocation).unwrap(),
        ),
        (
            LakeTable::Deployments,
            serde_json::to_value(deployment).unwrap(),
        ),
        (LakeTable::Leases, serde_json::to_value(lease).unwrap()),
    ]
}

fn glue_table(t: &Template, table: LakeTable) -> (&String, &Value) {
    let found: Vec<_> = t
        .resources()
        .filter(|(_, r)| {
            r["Type"] == "AWS::Glue::Table" && r["Properties"]["TableInput"]["Name"] == table.name()
        })
        .collect();
    assert_eq!(found.len(), 1, "one Glue table {table}");
    found[0]
}

#[test]
fn the_glue_tables_project_days_and_have_the_records_columns() {
    let t = template();
    let database = &resource(&t, "LakeDatabase")["Properties"]["DatabaseInput"]["Name"];
    assert!(database.is_string(), "the lake database is named");
    for (table, record) in sample_records() {
        let (id, glue) = glue_table(&t, table);
        let props = &glue["Properties"];
        assert_eq!(props["DatabaseName"], reference("LakeDatabase"), "{id}");
        let input = &props["TableInput"];
        assert_eq!(input["TableType"], "EXTERNAL_TABLE", "{id}");

        // Partitioned by day only; team and account_id are columns.
        assert_eq!(
            input["PartitionKeys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| (k["Name"].as_str().unwrap(), k["Type"].as_str().unwrap()))
                .collect::<Vec<_>>(),
            [("dt", "string")],
            "{id}: partitioned by dt"
        );
        let p = &input["Parameters"];
        assert_eq!(p["projection.enabled"], "true", "{id}");
        assert_eq!(p["projection.dt.type"], "date", "{id}");
        assert_eq!(p["projection.dt.format"], "yyyy-MM-dd", "{id}");
        assert_eq!(p["projection.dt.interval"], "1", "{id}");
        assert_eq!(p["projection.dt.interval.unit"], "DAYS", "{id}");
        let range = p["projection.dt.range"].as_str().unwrap();
        let (start, end) = range.split_once(',').expect("a range is start,end");
        assert!(
            chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").is_ok(),
            "{id}: range starts on a day: {range}"
        );
        assert_eq!(end, "NOW", "{id}: the range ends today");
        // `${!dt}` in a !Sub is the literal `${dt}` Athena fills in.
        assert_eq!(
            sub(&p["storage.location.template"]),
            format!("s3://${{LakeBucket}}/{table}/dt=${{!dt}}/"),
            "{id}: the location template"
        );

        let storage = &input["StorageDescriptor"];
        assert_eq!(
            sub(&storage["Location"]),
            format!("s3://${{LakeBucket}}/{table}/"),
            "{id}"
        );
        assert_eq!(
            storage["SerdeInfo"]["SerializationLibrary"],
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        );
        assert_eq!(
            storage["InputFormat"],
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
        );
        assert_eq!(
            storage["OutputFormat"],
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
        );

        // The columns are the record's fields, in order, with types that
        // hold the JSON values serde writes.
        let columns: Vec<(String, String)> = storage["Columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_string(),
                    c["Type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let fields: Vec<&String> = record.as_object().unwrap().keys().collect();
        let names: Vec<&String> = columns.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names.iter().collect::<BTreeSet<_>>(),
            fields.iter().collect::<BTreeSet<_>>(),
            "{id}: the Glue columns are the fields of the {table} record"
        );
        for (name, kind) in &columns {
            let value = &record[name];
            let fits = match kind.as_str() {
                "string" => value.is_string(),
                "int" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "bigint" => value.is_i64() || value.is_u64(),
                "double" => value.is_f64(),
                other => panic!("{id}.{name}: unexpected column type {other}"),
            };
            assert!(fits, "{id}.{name}: a {kind} column cannot hold {value}");
        }
    }
    // Where integers could exceed an int, the column is a bigint.
    let t = template();
    let (_, invocations) = glue_table(&t, LakeTable::Invocations);
    let billed = invocations["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Name"] == "billed_duration_ms")
        .unwrap();
    assert_eq!(billed["Type"], "bigint");
}

#[test]
fn each_lake_stream_converts_to_parquet_by_day_and_keeps_its_errors() {
    let t = template();
    for (stream, table) in [
        ("InvocationsStream", LakeTable::Invocations),
        ("DeploymentsStream", LakeTable::Deployments),
        ("LeasesStream", LakeTable::Leases),
    ] {
        let props = &resource(&t, stream)["Properties"];
        assert_eq!(props["DeliveryStreamType"], "DirectPut", "{stream}");
        assert!(
            props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"].is_string(),
            "{stream}: server-side encryption"
        );
        let s3 = &props["ExtendedS3DestinationConfiguration"];
        assert_eq!(s3["BucketARN"], get_att("LakeBucket", "Arn"), "{stream}");

        let conversion = &s3["DataFormatConversionConfiguration"];
        assert_eq!(conversion["Enabled"], true, "{stream}: converts");
        assert!(
            conversion["InputFormatConfiguration"]["Deserializer"]
                .get("OpenXJsonSerDe")
                .is_some(),
            "{stream}: reads JSON"
        );
        assert!(
            conversion["OutputFormatConfiguration"]["Serializer"]
                .get("ParquetSerDe")
                .is_some(),
            "{stream}: writes Parquet"
        );
        let (glue_id, _) = glue_table(&t, table);
        assert_eq!(
            conversion["SchemaConfiguration"]["TableName"],
            reference(glue_id),
            "{stream}: with the schema of the {table} table"
        );
        assert_eq!(
            conversion["SchemaConfiguration"]["DatabaseName"],
            reference("LakeDatabase")
        );
        assert_eq!(
            s3["CompressionFormat"], "UNCOMPRESSED",
            "{stream}: Parquet compresses itself"
        );

        // Dynamic partitioning on the record's own day.
        assert_eq!(s3["DynamicPartitioningConfiguration"]["Enabled"], true);
        assert_eq!(
            s3["Prefix"],
            format!("{table}/dt=!{{partitionKeyFromQuery:dt}}/"),
            "{stream}: the prefix the Glue projection reads"
        );
        let processors = s3["ProcessingConfiguration"]["Processors"]
            .as_array()
            .unwrap();
        let extraction = processors
            .iter()
            .find(|p| p["Type"] == "MetadataExtraction")
            .expect("a MetadataExtraction processor");
        let parameter = |name: &str| {
            extraction["Parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["ParameterName"] == name)
                .map(|p| p["ParameterValue"].clone())
        };
        assert_eq!(
            parameter("MetadataExtractionQuery"),
            Some(json!("{dt: .timestamp[0:10]}"))
        );
        assert_eq!(parameter("JsonParsingEngine"), Some(json!("JQ-1.6")));

        let errors = s3["ErrorOutputPrefix"].as_str().unwrap_or_default();
        assert!(
            errors.starts_with(&format!("errors/{table}/"))
                && errors.contains("!{firehose:error-output-type}"),
            "{stream}: failures go to errors/ (which expires), by error type: {errors:?}"
        );

        // 64 MB is the minimum with conversion and dynamic partitioning.
        let size = s3["BufferingHints"]["SizeInMBs"].as_u64().unwrap();
        assert!((64..=128).contains(&size), "{stream}: SizeInMBs {size}");
        let interval = &s3["BufferingHints"]["IntervalInSeconds"];
        let interval = match interval.get("Ref").and_then(Value::as_str) {
            Some(param) => t.document["Parameters"][param]["Default"].as_u64(),
            None => interval.as_u64(),
        };
        assert!(
            interval.is_some_and(|s| (60..=900).contains(&s)),
            "{stream}: IntervalInSeconds {interval:?}"
        );
        assert_eq!(s3["CloudWatchLoggingOptions"]["Enabled"], true, "{stream}");
    }
    // The JQ query's slice is the record's UTC day, as the lake writes it.
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-05-02T23:59:59.999+00:00")
        .unwrap()
        .to_utc();
    assert_eq!(&lake::timestamp(t0)[0..10], "2026-05-02");
    for (table, record) in sample_records() {
        let ts = record["timestamp"].as_str().unwrap();
        assert!(
            chrono::NaiveDate::parse_from_str(&ts[0..10], "%Y-%m-%d").is_ok(),
            "{table}: {ts}"
        );
    }
}

#[test]
fn firehose_may_write_only_the_lake_and_read_only_its_tables() {
    let t = template();
    let role = &resource(&t, "FirehoseRole")["Properties"];
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "firehose.amazonaws.com"
    );
    let mut found = Vec::new();
    statements(&role["Policies"], &mut found);
    for s in &found {
        for action in as_list(&s["Action"]) {
            let service = action.split(':').next().unwrap();
            assert!(
                ["s3", "glue", "logs"].contains(&service),
                "FirehoseRole: {action} is more than delivery needs"
            );
            assert!(!action.ends_with('*'), "FirehoseRole: {action}");
        }
        assert!(
            !as_list(&s["Resource"]).contains(&"*".to_string()),
            "FirehoseRole: {s} names its resources"
        );
    }
    let glue = statement_with_action(&found, "glue:GetTable");
    let texts: Vec<String> = glue["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| sub(r).to_string())
        .collect();
    for (table, _) in sample_records() {
        let (id, _) = glue_table(&t, table);
        assert!(
            texts
                .iter()
                .any(|r| r.ends_with(&format!(":table/${{LakeDatabase}}/${{{id}}}"))),
            "FirehoseRole reads the {table} table: {texts:?}"
        );
    }
}

// ------------------------------------------------------------ the recorder

/// An event as EventBridge delivers it.
fn envelope(source: &str, detail_type: &str, account: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": "2026-05-02T09:31:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// Every rule of a function, compiled as EventBridge would.
fn rules_of(t: &Template, function: &str) -> Vec<(String, String, EventPattern)> {
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    wiring
        .wires
        .iter()
        .filter(|w| w.function == function)
        .filter_map(|w| match &w.trigger {
            Trigger::Rule {
                bus, pattern_json, ..
            } => Some((
                w.event.clone(),
                bus.clone(),
                EventPattern::from_value(pattern_json)
                    .unwrap_or_else(|e| panic!("{}: {e}", w.name())),
            )),
            _ => None,
        })
        .collect()
}

fn schema_example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("infra/schemas/{name}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["examples"][0].clone()
}

#[test]
fn no_rule_of_the_recorder_matches_its_own_output() {
    let t = template();
    let rules = rules_of(&t, "RecorderFunction");
    assert_eq!(
        rules.len(),
        9,
        "the recorder's rules: {:?}",
        rules.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let detail = serde_json::to_value(TeamSpendUpdated {
        version: 1,
        team: "payments".into(),
        period: "2026-05".into(),
        spend: "41.0273318".into(),
        currency: "USD".into(),
        source: "stream".into(),
        as_of: "2026-05-02T09:31:05.412Z".into(),
    })
    .unwrap();
    let ctx = LocalContext::default();
    // From Purser's own account, and as a member account might forge it.
    for account in [ctx.account_id.as_str(), "210987654321"] {
        let own = envelope(
            purser_core::events::PURSER_SOURCE,
            lake::TEAM_SPEND_UPDATED,
            account,
            detail.clone(),
        );
        for (event, _, pattern) in &rules {
            assert!(
                !pattern.matches(&own),
                "RecorderFunction.{event} matches the recorder's own TeamSpendUpdated: an event loop"
            );
        }
    }
}

#[test]
fn the_notify_function_hears_exactly_the_events_it_has_words_for() {
    let t = template();
    let rules = rules_of(&t, "NotifyFunction");
    assert_eq!(rules.len(), 1);
    let pattern = &t.document["Resources"]["NotifyFunction"]["Properties"]["Events"]["PurserEvents"]
        ["Properties"]["Pattern"];
    let heard: BTreeSet<&str> = pattern["detail-type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        heard,
        purser_core::notify::NOTIFIED
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn the_recorder_takes_what_it_records_and_nothing_from_aws_posing_as_ci() {
    let t = template();
    let rules = rules_of(&t, "RecorderFunction");
    let member = "210987654321";
    let ctx = LocalContext::default();
    let cases = [
        (
            envelope(
                lake::TELEMETRY_SOURCE,
                lake::INVOCATIONS_REPORTED,
                member,
                schema_example(lake::INVOCATIONS_REPORTED),
            ),
            Some("RecorderInvocations"),
        ),
        (
            envelope(
                "ci.github",
                lake::DEPLOYMENT_REPORTED,
                member,
                schema_example(lake::DEPLOYMENT_REPORTED),
            ),
            Some("CiDeployments"),
        ),
        (
            envelope(
                "aws.cloudformation",
                lake::STACK_STATUS_CHANGE,
                member,
                schema_example("CloudFormationStackStatusChange"),
            ),
            Some("StackChanges"),
        ),
        // Only AWS sends `aws.*`; a DeploymentReported from it is no CI's.
        (
            envelope(
                "aws.codepipeline",
                lake::DEPLOYMENT_REPORTED,
                member,
                schema_example(lake::DEPLOYMENT_REPORTED),
            ),
            None,
        ),
        (
            envelope(
                "purser",
                lake::INVOCATIONS_REPORTED,
                member,
                schema_example(lake::INVOCATIONS_REPORTED),
            ),
            None,
        ),
        // A metric stream's object in the lake bucket (S3, on Purser's own
        // default bus): the landing area only, not the lake's own tables.
        (
            envelope(
                "aws.s3",
                "Object Created",
                &ctx.account_id,
                json!({"bucket": {"name": "LakeBucket"},
                    "object": {"key": "metrics/account=210987654321/2026/12/07/10/purser-1"}}),
            ),
            Some("LandedMetrics"),
        ),
        (
            envelope(
                "aws.s3",
                "Object Created",
                &ctx.account_id,
                json!({"bucket": {"name": "LakeBucket"},
                    "object": {"key": "usage/dt=2026-12-07/part.parquet"}}),
            ),
            None,
        ),
        (
            envelope(
                "aws.s3",
                "Object Created",
                &ctx.account_id,
                json!({"bucket": {"name": "someone-elses-bucket"},
                    "object": {"key": "metrics/account=210987654321/x"}}),
            ),
            None,
        ),
        // A lease starts or ends: Purser's own account events, from its
        // own account only, and only those.
        (
            envelope(
                "purser",
                purser_core::events::ACCOUNT_READY,
                &ctx.account_id,
                schema_example(purser_core::events::ACCOUNT_READY),
            ),
            Some("Leases"),
        ),
        (
            envelope(
                "purser",
                purser_core::events::ACCOUNT_CLEANING_STARTED,
                &ctx.account_id,
                schema_example(purser_core::events::ACCOUNT_CLEANING_STARTED),
            ),
            Some("Leases"),
        ),
        (
            envelope(
                "purser",
                purser_core::events::ACCOUNT_READY,
                member,
                schema_example(purser_core::events::ACCOUNT_READY),
            ),
            None,
        ),
        (
            envelope(
                "purser",
                purser_core::events::ACCOUNT_CLEANED,
                &ctx.account_id,
                schema_example(purser_core::events::ACCOUNT_CLEANED),
            ),
            None,
        ),
        // What runs in member accounts, forwarded from their buses.
        (
            envelope(
                "aws.ec2",
                lake::EC2_STATE_CHANGE,
                member,
                schema_example("EC2InstanceStateChangeNotification"),
            ),
            Some("InstanceStates"),
        ),
        (
            envelope(
                "aws.ec2",
                lake::EC2_STATE_CHANGE,
                member,
                json!({"instance-id": "i-0123456789abcdef0", "state": "pending"}),
            ),
            None,
        ),
        (
            envelope(
                "aws.ec2",
                lake::API_CALL,
                member,
                schema_example("EC2InstanceLaunchCall"),
            ),
            Some("InstanceLaunches"),
        ),
        (
            envelope(
                "aws.ecs",
                lake::ECS_TASK_STATE_CHANGE,
                member,
                schema_example("ECSTaskStateChange"),
            ),
            Some("FargateTasks"),
        ),
        (
            envelope(
                "aws.sagemaker",
                lake::SAGEMAKER_TRAINING_JOB_STATE_CHANGE,
                member,
                schema_example("SageMakerTrainingJobStateChange"),
            ),
            Some("SageMakerStates"),
        ),
        (
            envelope(
                "aws.sagemaker",
                lake::SAGEMAKER_ENDPOINT_STATE_CHANGE,
                member,
                schema_example("SageMakerEndpointStateChange"),
            ),
            Some("SageMakerStates"),
        ),
    ];
    for (event, expected) in cases {
        let matched: Vec<&str> = rules
            .iter()
            .filter(|(_, _, p)| p.matches(&event))
            .map(|(name, _, _)| name.as_str())
            .collect();
        assert_eq!(
            matched,
            expected.into_iter().collect::<Vec<_>>(),
            "{} / {}",
            event["source"],
            event["detail-type"]
        );
    }
    for (name, bus, _) in &rules {
        // S3 tells the default bus of the bucket's account; the rest comes
        // to Purser's bus.
        let expected = if name == "LandedMetrics" {
            "default"
        } else {
            purser_core::events::PURSER_BUS
        };
        assert_eq!(bus, expected, "RecorderFunction.{name}");
    }
}

/// The recorder's Leases rule takes exactly the account events that start
/// and end a lease, as the recorder reads them.
#[test]
fn the_recorder_hears_every_event_that_starts_or_ends_a_lease() {
    let t = template();
    let pattern = &t.document["Resources"]["RecorderFunction"]["Properties"]["Events"]["Leases"]["Properties"]
        ["Pattern"];
    let heard: BTreeSet<&str> = pattern["detail-type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let read: BTreeSet<&str> = lake::LEASE_STARTS
        .into_iter()
        .chain(lake::LEASE_ENDS)
        .collect();
    assert_eq!(heard, read);
    assert_eq!(pattern["source"], json!(["purser"]));
    assert_eq!(pattern["account"], json!([reference("AWS::AccountId")]));
}

#[test]
fn the_recorder_and_the_api_write_only_their_streams_and_dead_letters() {
    let t = template();
    for (function, streams) in [
        (
            "RecorderFunction",
            vec![
                get_att("InvocationsStream", "Arn"),
                get_att("DeploymentsStream", "Arn"),
                get_att("UsageStream", "Arn"),
                get_att("LeasesStream", "Arn"),
            ],
        ),
        ("ApiFunction", vec![get_att("DeploymentsStream", "Arn")]),
    ] {
        let f = resource(&t, function);
        let vars = &f["Properties"]["Environment"]["Variables"];
        assert_eq!(
            vars["PURSER_INVOCATIONS_STREAM"],
            reference("InvocationsStream"),
            "{function}"
        );
        assert_eq!(
            vars["PURSER_DEPLOYMENTS_STREAM"],
            reference("DeploymentsStream"),
            "{function}"
        );
        assert_eq!(
            vars["PURSER_USAGE_STREAM"],
            reference("UsageStream"),
            "{function}"
        );
        assert_eq!(
            vars["PURSER_LEASES_STREAM"],
            reference("LeasesStream"),
            "{function}"
        );
        assert_eq!(
            vars["PURSER_LAKE_BUCKET"],
            reference("LakeBucket"),
            "{function}"
        );

        let statements = inline_statements(f);
        let put = statement_with_action(&statements, "firehose:PutRecordBatch");
        let resources = match &put["Resource"] {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        assert_eq!(
            resources, streams,
            "{function}: PutRecordBatch on its streams only"
        );
        let dead = statement_with_action(&statements, "s3:PutObject");
        assert_eq!(
            sub(&dead["Resource"]),
            "${LakeBucket.Arn}/dead-letter/*",
            "{function}: writes dead letters only"
        );
    }
    let t = template();
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    assert!(
        wiring.wires.iter().any(|w| w.function == "ApiFunction"
            && matches!(&w.trigger, Trigger::HttpRoute { method, path } if method == "POST" && path == "/deployments")),
        "the API records deployments at POST /deployments"
    );
}

#[test]
fn the_purser_bus_takes_events_from_the_organization_only() {
    let t = template();
    let policy = &resource(&t, "PurserBusPolicy")["Properties"];
    assert_eq!(policy["EventBusName"], reference("PurserBus"));
    let s = &policy["Statement"];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(as_list(&s["Action"]), ["events:PutEvents"]);
    assert_eq!(s["Resource"], get_att("PurserBus", "Arn"));
    assert_eq!(
        s["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        reference("OrganizationId")
    );
}

#[test]
fn the_telemetry_layers_are_shared_with_the_organization() {
    let t = template();
    let mut uris = BTreeSet::new();
    for (layer, arch) in [
        ("TelemetryLayerArm64", "arm64"),
        ("TelemetryLayerX8664", "x86_64"),
    ] {
        let props = &resource(&t, layer)["Properties"];
        assert_eq!(resource(&t, layer)["Type"], "AWS::Serverless::LayerVersion");
        assert_eq!(props["CompatibleArchitectures"], json!([arch]), "{layer}");
        let uri = props["ContentUri"].as_str().unwrap();
        assert!(
            uri.contains(arch) || uri.contains(&arch.replace('_', "-")),
            "{layer}: {uri}"
        );
        uris.insert(uri.to_string());
        let permission = t
            .resources()
            .find(|(_, r)| {
                r["Type"] == "AWS::Lambda::LayerVersionPermission"
                    && r["Properties"]["LayerVersionArn"] == reference(layer)
            })
            .map(|(_, r)| &r["Properties"])
            .unwrap_or_else(|| panic!("{layer} is shared"));
        assert_eq!(permission["Action"], "lambda:GetLayerVersion");
        assert_eq!(permission["OrganizationId"], reference("OrganizationId"));
        assert!(
            t.document["Outputs"]
                .as_object()
                .unwrap()
                .values()
                .any(|o| o["Value"] == reference(layer)),
            "{layer}: an output gives its ARN"
        );
    }
    assert_eq!(
        uris.len(),
        2,
        "each architecture has its own build directory"
    );
}

#[test]
fn the_lake_is_in_the_outputs() {
    let t = template();
    let outputs: Vec<&Value> = t.document["Outputs"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| &o["Value"])
        .collect();
    for id in [
        "LakeBucket",
        "LakeDatabase",
        "InvocationsStream",
        "DeploymentsStream",
    ] {
        assert!(outputs.contains(&&reference(id)), "an output gives {id}");
    }
}

// ------------------------------------------------------------ member accounts

fn member_account() -> Template {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/member-account.yaml");
    Template::parse(&std::fs::read_to_string(path).unwrap())
        .expect("infra/member-account.yaml parses")
}

#[test]
fn the_member_account_template_grants_least_privilege() {
    let m = member_account();
    assert_least_privilege(&m.document);
    let mut found = Vec::new();
    statements(&m.document["Resources"], &mut found);
    // The throttle role, the recorder's describe role and the metric
    // stream's two roles grant their own (member_account.rs checks the
    // stream's: its Firehose, its prefix; the describe role's reads are
    // checked with the recorder's, below).
    let mut throttle = Vec::new();
    for role in [
        "PurserThrottleRole",
        "PurserDescribeRole",
        "MetricStreamRole",
        "MetricsFirehoseRole",
    ] {
        statements(
            &m.document["Resources"][role]["Properties"]["Policies"],
            &mut throttle,
        );
    }
    for s in found
        .iter()
        .filter(|s| s["Effect"] == "Allow" && !throttle.contains(s))
    {
        if s["Action"] == "sts:AssumeRole" || s["Action"] == "sqs:SendMessage" {
            continue;
        }
        assert_eq!(
            as_list(&s["Action"]),
            ["events:PutEvents"],
            "member accounts grant only PutEvents (and the roles above their own): {s}"
        );
    }
    let role = &m.document["Resources"]["ForwardToPurserRole"]["Properties"];
    assert_eq!(
        role["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"],
        reference("PurserBusArn"),
        "the forwarding role may put on the central bus only"
    );
    let telemetry = &m.document["Resources"]["PurserTelemetryPolicy"];
    assert_eq!(telemetry["Type"], "AWS::IAM::ManagedPolicy");
    let s = &telemetry["Properties"]["PolicyDocument"]["Statement"][0];
    assert!(
        sub(&s["Resource"]).ends_with(":event-bus/default"),
        "PurserTelemetryPolicy: the default bus only"
    );
}

/// `throttle-lambdas`: the budgets function may assume the throttle role of
/// accounts of the organization and nothing else; the role, created once
/// per account, trusts that function's role only and may list functions
/// and set their reserved concurrency, stop instances and delete endpoints
/// of its own account, and describe instances, nothing more. The recorder
/// may assume only the describe-only role, which trusts its role alone
/// (where PurserRecorderRoleArn is given) and may only describe instances.
#[test]
fn only_the_budgets_function_throttles_and_only_reserved_concurrency() {
    let t = template();
    let m = member_account();
    let budgets = resource(&t, "BudgetsFunction");
    let assume: Vec<Value> = inline_statements(budgets)
        .into_iter()
        .filter(|s| as_list(&s["Action"]).iter().any(|a| a.starts_with("sts:")))
        .collect();
    assert_eq!(assume.len(), 1, "{assume:?}");
    assert_eq!(as_list(&assume[0]["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        sub(&assume[0]["Resource"]),
        "arn:${AWS::Partition}:iam::*:role/${ThrottleRoleName}"
    );
    assert_eq!(
        assume[0]["Condition"]["StringEquals"]["aws:ResourceOrgID"],
        reference("OrganizationId")
    );
    // The recorder asks EC2 an instance's type through the describe-only
    // role, in the same accounts.
    let recorder = resource(&t, "RecorderFunction");
    let described: Vec<Value> = inline_statements(recorder)
        .into_iter()
        .filter(|s| as_list(&s["Action"]).iter().any(|a| a.starts_with("sts:")))
        .collect();
    assert_eq!(described.len(), 1, "{described:?}");
    assert_eq!(described[0]["Action"], assume[0]["Action"]);
    assert_eq!(
        sub(&described[0]["Resource"]),
        "arn:${AWS::Partition}:iam::*:role/purser-describe-instances"
    );
    assert_eq!(described[0]["Condition"], assume[0]["Condition"]);
    assert_eq!(
        recorder["Properties"]["Environment"]["Variables"]["PURSER_MEMBER_RESOURCES_ROLE"],
        "purser-describe-instances"
    );
    let describe = &m.document["Resources"]["PurserDescribeRole"];
    assert_eq!(describe["Condition"], "CreateDescribeRole");
    assert_eq!(
        describe["Properties"]["RoleName"],
        "purser-describe-instances"
    );
    let trust = &describe["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().map(Vec::len), Some(1));
    assert_eq!(
        trust[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        reference("PurserRecorderRoleArn"),
        "only the recorder's role"
    );
    let mut reads = Vec::new();
    statements(&describe["Properties"]["Policies"], &mut reads);
    let read_actions: BTreeSet<String> = reads.iter().flat_map(|s| as_list(&s["Action"])).collect();
    assert_eq!(
        read_actions,
        BTreeSet::from([
            "ec2:DescribeInstances".to_string(),
            "sagemaker:DescribeEndpoint".to_string(),
            "sagemaker:DescribeEndpointConfig".to_string(),
        ])
    );
    // SageMaker's reads on this account's endpoints and their
    // configurations only.
    for read in reads.iter().filter(|s| {
        as_list(&s["Action"])
            .iter()
            .any(|a| a.starts_with("sagemaker:"))
    }) {
        let resources: BTreeSet<&str> = read["Resource"]
            .as_array()
            .expect("a list of resources")
            .iter()
            .map(sub)
            .collect();
        assert_eq!(
            resources,
            BTreeSet::from([
                "arn:${AWS::Partition}:sagemaker:*:${AWS::AccountId}:endpoint/*",
                "arn:${AWS::Partition}:sagemaker:*:${AWS::AccountId}:endpoint-config/*",
            ])
        );
    }
    assert_eq!(
        t.document["Outputs"]["RecorderFunctionRoleArn"]["Value"],
        get_att("RecorderFunctionRole", "Arn")
    );
    for (id, function) in functions(&t) {
        if id == "RecorderFunction" {
            let mut found = Vec::new();
            statements(&function["Properties"], &mut found);
            assert!(
                found.iter().all(|s| !as_list(&s["Action"])
                    .iter()
                    .any(|a| a.starts_with("lambda:"))),
                "{id} may not change functions"
            );
        } else if id != "BudgetsFunction" {
            let mut found = Vec::new();
            statements(&function["Properties"], &mut found);
            assert!(
                found.iter().all(|s| !as_list(&s["Action"])
                    .iter()
                    .any(|a| a.starts_with("sts:") || a.starts_with("lambda:"))),
                "{id} may not act in member accounts"
            );
        }
    }
    let env = &budgets["Properties"]["Environment"]["Variables"];
    assert_eq!(env["PURSER_THROTTLE_ROLE"], reference("ThrottleRoleName"));
    assert!(env["PURSER_THROTTLE_REGIONS"].is_object());
    assert_eq!(
        t.document["Outputs"]["BudgetsFunctionRoleArn"]["Value"],
        get_att("BudgetsFunctionRole", "Arn")
    );
    assert_eq!(
        t.document["Parameters"]["ThrottleRoleName"]["Default"],
        m.document["Parameters"]["ThrottleRoleName"]["Default"],
        "both templates name the same role"
    );

    let role = &m.document["Resources"]["PurserThrottleRole"];
    assert_eq!(
        role["Condition"], "CreateThrottleRole",
        "IAM is global: one per account"
    );
    let properties = &role["Properties"];
    assert_eq!(properties["RoleName"], reference("ThrottleRoleName"));
    let trust = &properties["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().map(Vec::len), Some(1));
    assert_eq!(
        trust[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        reference("PurserBudgetsRoleArn"),
        "only the budgets function's role"
    );
    assert_eq!(
        m.document["Conditions"]["TrustsRecorder"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [reference("PurserRecorderRoleArn"), ""]}]})
    );
    let mut allowed = Vec::new();
    statements(&properties["Policies"], &mut allowed);
    let actions: BTreeSet<String> = allowed.iter().flat_map(|s| as_list(&s["Action"])).collect();
    assert_eq!(
        actions,
        BTreeSet::from(
            [
                "lambda:ListFunctions",
                "lambda:GetFunctionConcurrency",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
                "ec2:StopInstances",
                "ec2:DescribeInstances",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
            ]
            .map(String::from)
        )
    );
    let stop = statement_with_action(&allowed, "ec2:StopInstances");
    assert_eq!(
        sub(&stop["Resource"]),
        "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*",
        "this account's instances only"
    );
    let delete = statement_with_action(&allowed, "sagemaker:DeleteEndpoint");
    assert_eq!(
        sub(&delete["Resource"]),
        "arn:${AWS::Partition}:sagemaker:*:${AWS::AccountId}:endpoint/*",
        "this account's endpoints only"
    );
    assert_eq!(
        as_list(&statement_with_action(&allowed, "ec2:DescribeInstances")["Action"]),
        ["ec2:DescribeInstances"],
        "only DescribeInstances takes every resource"
    );
    let concurrency = statement_with_action(&allowed, "lambda:PutFunctionConcurrency");
    assert!(
        sub(&concurrency["Resource"]).ends_with(":${AWS::AccountId}:function:*"),
        "this account's functions only"
    );
}

#[test]
fn member_accounts_forward_what_the_recorder_takes() {
    let m = member_account();
    let t = template();
    let recorder = rules_of(&t, "RecorderFunction");
    let rules: Vec<(&String, &Value)> = m
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .collect();
    // Stack changes, invocation reports and the four usage rules of issue 15
    // (member_account.rs checks which events those forward).
    assert_eq!(
        rules.len(),
        6,
        "{:?}",
        rules.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    let all_rules = rules.clone();
    let rules: Vec<(&String, &Value)> = rules
        .into_iter()
        .filter(|(id, _)| {
            ["ForwardStackChangesRule", "ForwardInvocationsRule"].contains(&id.as_str())
        })
        .collect();
    let member = "210987654321";
    let events = [
        envelope(
            "aws.cloudformation",
            lake::STACK_STATUS_CHANGE,
            member,
            schema_example("CloudFormationStackStatusChange"),
        ),
        envelope(
            lake::TELEMETRY_SOURCE,
            lake::INVOCATIONS_REPORTED,
            member,
            schema_example(lake::INVOCATIONS_REPORTED),
        ),
    ];
    for (id, rule) in &rules {
        let props = &rule["Properties"];
        assert!(
            props.get("EventBusName").is_none_or(|b| b == "default"),
            "{id}: on the member account's default bus"
        );
        let pattern = EventPattern::from_value(&props["EventPattern"])
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        // Whatever a member rule forwards, a rule of the recorder takes.
        let forwarded: Vec<&Value> = events.iter().filter(|e| pattern.matches(e)).collect();
        assert_eq!(forwarded.len(), 1, "{id} forwards one kind of event");
        assert!(
            recorder.iter().any(|(_, _, p)| p.matches(forwarded[0])),
            "{id}: the recorder takes what it forwards"
        );
        let targets = props["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{id}");
        let target = &targets[0];
        assert_eq!(
            target["Arn"],
            reference("PurserBusArn"),
            "{id}: to the central bus"
        );
        assert_eq!(
            target["RoleArn"],
            get_att("ForwardToPurserRole", "Arn"),
            "{id}"
        );
        assert!(
            target["RetryPolicy"]["MaximumRetryAttempts"].is_u64(),
            "{id}: retried"
        );
        assert_eq!(
            target["DeadLetterConfig"]["Arn"],
            get_att("ForwardDeadLetterQueue", "Arn"),
            "{id}: dead-lettered"
        );
    }
    // The dead-letter queue lets these rules, and only them, send to it.
    let policy = &m.document["Resources"]["ForwardDeadLetterQueuePolicy"]["Properties"];
    let sources =
        &policy["PolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"];
    let sources = sources.as_array().expect("a list of rule ARNs");
    assert_eq!(sources.len(), all_rules.len(), "{sources:?}");
    for (id, _) in &all_rules {
        assert!(
            sources.contains(&get_att(id, "Arn")),
            "{id} may dead-letter"
        );
    }
}

#[test]
fn every_named_query_ships_the_text_of_its_file_and_back() {
    let t = template();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/queries");
    let shipped: std::collections::BTreeMap<String, String> = t
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::Athena::NamedQuery")
        .map(|(_, r)| {
            (
                r["Properties"]["Name"].as_str().unwrap().to_string(),
                r["Properties"]["QueryString"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            shipped.get(&name).map(|s| s.trim_end()),
            Some(text.trim_end()),
            "infra/queries/{name}.sql and its AWS::Athena::NamedQuery differ: copy the file's text into the template"
        );
        files.push(name);
    }
    files.sort();
    assert_eq!(
        shipped.keys().cloned().collect::<Vec<_>>(),
        files,
        "a NamedQuery without its file"
    );
}

#[test]
fn the_athena_workgroup_caps_scans_and_encrypts_results() {
    let t = template();
    let wg = &t.document["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"];
    let cutoff = wg["BytesScannedCutoffPerQuery"].as_u64().unwrap();
    assert!(
        (10_000_000..=100 * 1024 * 1024 * 1024).contains(&cutoff),
        "{cutoff}"
    );
    assert_eq!(wg["EnforceWorkGroupConfiguration"], true);
    assert!(wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"].is_string());
    assert_eq!(
        wg["EngineVersion"]["SelectedEngineVersion"],
        "Athena engine version 3"
    );
}

#[test]
fn a_budget_evaluation_lease_outlives_the_budgets_function() {
    let t = template();
    let (_, budgets) = functions(&t)
        .into_iter()
        .find(|(id, _)| id.as_str() == "BudgetsFunction")
        .expect("the budgets function");
    let timeout = property(&t, budgets, "Timeout")
        .and_then(Value::as_u64)
        .expect("a timeout");
    assert!(
        purser_core::budgets::EVALUATION_LEASE_SECS as u64 > timeout,
        "an evaluation lease of {} s could expire while its budgets function (Timeout {timeout} s) still runs",
        purser_core::budgets::EVALUATION_LEASE_SECS
    );
}

/// No caller can starve the API, and no flood can starve enforcement: every
/// route is throttled, and the recorder and budgets functions reserve
/// concurrency (unless the account cannot: `EnforcementConcurrency` 0).
#[test]
fn the_api_is_throttled_and_enforcement_reserves_concurrency() {
    let t = template();
    let api = resource(&t, "HttpApi");
    let settings = &api["Properties"]["DefaultRouteSettings"];
    assert_eq!(settings["ThrottlingRateLimit"], reference("ApiRateLimit"));
    assert_eq!(settings["ThrottlingBurstLimit"], reference("ApiBurstLimit"));
    for parameter in ["ApiRateLimit", "ApiBurstLimit"] {
        let p = &t.document["Parameters"][parameter];
        assert!(p["Default"].as_u64().is_some_and(|d| d >= 1), "{parameter}");
        assert_eq!(p["MinValue"], 1, "{parameter} cannot switch throttling off");
    }
    for function in ["RecorderFunction", "BudgetsFunction"] {
        let reserved = &resource(&t, function)["Properties"]["ReservedConcurrentExecutions"];
        assert_eq!(
            reserved,
            &json!({"Fn::If": ["ReservesConcurrency", {"Ref": "EnforcementConcurrency"}, {"Ref": "AWS::NoValue"}]}),
            "{function}"
        );
    }
    assert!(
        t.document["Parameters"]["EnforcementConcurrency"]["Default"]
            .as_u64()
            .is_some_and(|d| d > 0)
    );
}

/// Someone is told: the dead-letter queue holding anything, any function's
/// errors or throttles, and either lake stream failing to deliver each
/// raise an alarm on the topic the stack outputs.
#[test]
fn alarms_tell_a_topic_about_dead_letters_failures_throttles_and_the_lake() {
    let t = template();
    let topic = reference("AlarmTopic");
    let alarms: Vec<(&String, &Value)> = t
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    for (id, alarm) in &alarms {
        assert_eq!(alarm["Properties"]["AlarmActions"], json!([topic]), "{id}");
        assert!(
            alarm["Properties"]["AlarmDescription"]
                .as_str()
                .is_some_and(|d| d.len() > 40),
            "{id} says what to do"
        );
    }
    let watched = |namespace: &str, metric: &str| -> Vec<Value> {
        let mut found = Vec::new();
        for (_, alarm) in &alarms {
            let p = &alarm["Properties"];
            if p["Namespace"] == namespace && p["MetricName"] == metric {
                found.extend(
                    p["Dimensions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["Value"].clone()),
                );
            }
            for m in p["Metrics"].as_array().into_iter().flatten() {
                let stat = &m["MetricStat"]["Metric"];
                if stat["Namespace"] == namespace && stat["MetricName"] == metric {
                    found.extend(
                        stat["Dimensions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d["Value"].clone()),
                    );
                }
            }
        }
        found
    };
    assert_eq!(
        watched("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        [get_att("DeadLetterQueue", "QueueName")]
    );
    let functions: BTreeSet<String> = functions(&t)
        .iter()
        .map(|(id, _)| reference(id).to_string())
        .collect();
    for metric in ["Errors", "Throttles"] {
        let covered: BTreeSet<String> = watched("AWS/Lambda", metric)
            .iter()
            .map(Value::to_string)
            .collect();
        assert_eq!(covered, functions, "{metric} of every function");
    }
    let streams: BTreeSet<String> = watched("AWS/Firehose", "DeliveryToS3.Success")
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from([
            reference("InvocationsStream").to_string(),
            reference("DeploymentsStream").to_string()
        ])
    );
    assert_eq!(t.document["Outputs"]["AlarmTopicArn"]["Value"], topic);
    assert_eq!(
        resource(&t, "AlarmEmailSubscription")["Condition"],
        "HasAlarmEmail"
    );
}

/// Every function's log group exists with a retention (Lambda's own would
/// keep logs forever), and the API writes an access log.
#[test]
fn every_function_and_the_api_log_for_a_limited_time() {
    let t = template();
    let groups: Vec<&Value> = t
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::Logs::LogGroup")
        .map(|(_, r)| r)
        .collect();
    for group in &groups {
        assert_eq!(
            group["Properties"]["RetentionInDays"],
            reference("LogRetentionDays")
        );
    }
    for (id, _) in functions(&t) {
        let name = json!({"Fn::Sub": format!("/aws/lambda/${{{id}}}")});
        assert!(
            groups
                .iter()
                .any(|g| g["Properties"]["LogGroupName"] == name),
            "{id} has a log group"
        );
    }
    let access = &resource(&t, "HttpApi")["Properties"]["AccessLogSettings"];
    assert_eq!(
        access["DestinationArn"],
        get_att("ApiAccessLogGroup", "Arn")
    );
    let format: Value = serde_json::from_str(access["Format"].as_str().unwrap()).unwrap();
    assert_eq!(format["status"], "$context.status");
    assert_eq!(format["caller"], "$context.identity.userArn");
}

/// The guard SCP on Purser's OU: every statement denies, exempts only
/// StackSets' execution role (and Control Tower's where it governs), and
/// covers what a member account's admin could otherwise change to escape a
/// freeze or hide spend: Purser's roles (the throttle role, every `purser-*`
/// role, and the break-glass names), the forwarding rules, the telemetry
/// policy and the member stack. Every such resource of
/// infra/member-account.yaml is named so the guard matches it.
#[test]
fn a_guard_scp_keeps_member_admins_off_purser_s_resources() {
    let t = template();
    let guard = &t.document["Resources"]["MemberGuardPolicy"];
    assert_eq!(guard["Type"], "AWS::Organizations::Policy");
    assert_eq!(guard["Condition"], "GuardsMembers");
    let props = &guard["Properties"];
    assert_eq!(props["Type"], "SERVICE_CONTROL_POLICY");
    assert_eq!(props["TargetIds"], json!([{"Ref": "PurserOuId"}]));
    let statements = props["Content"]["Statement"].as_array().unwrap();
    let text = props["Content"].to_string();
    for s in statements {
        assert_eq!(s["Effect"], "Deny", "{s}");
        let exempt = s["Condition"]["ArnNotLike"]["aws:PrincipalArn"].to_string();
        assert!(exempt.contains("role/stacksets-exec-*"), "{s}");
        assert!(!exempt.contains("OrganizationAccountAccessRole"), "{s}");
        let actions: Vec<&str> = s["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            actions.iter().all(|a| !a.contains('*')),
            "actions are named, not wildcards: {actions:?}"
        );
    }
    for needed in [
        "role/${ThrottleRoleName}",
        "role/purser-*",
        "role/stacksets-exec-*",
        "BreakGlassRoles",
        "iam:UpdateAssumeRolePolicy",
        "iam:CreateRole",
        "policy/PurserTelemetryPolicy-*",
        "rule/purser-*",
        "events:RemoveTargets",
        "stack/StackSet-${MemberStackSetName}-*/*",
        "cloudformation:DeleteStack",
        "metric-stream/purser-*",
        "deliverystream/purser-*",
        "cloudwatch:StopMetricStreams",
        "firehose:UpdateDestination",
    ] {
        assert!(text.contains(needed), "the guard covers {needed}: {text}");
    }
    // AWS takes at most 5,120 characters of an SCP (with whitespace).
    assert!(text.len() < 4_000, "{} characters", text.len());

    let member = member_account();
    for (name, r) in member.resources() {
        let props = &r["Properties"];
        match r["Type"].as_str().unwrap() {
            "AWS::Events::Rule" => assert!(
                props["Name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("purser-")),
                "{name} is named purser-*, as the guard matches"
            ),
            "AWS::IAM::Role" => {
                let role = props["RoleName"].to_string();
                assert!(
                    role.contains("purser-") || role.contains("ThrottleRoleName"),
                    "{name} has a name the guard matches: {role}"
                );
            }
            "AWS::IAM::ManagedPolicy" => assert!(
                props["ManagedPolicyName"]
                    .to_string()
                    .contains("PurserTelemetryPolicy-"),
                "{name}"
            ),
            "AWS::CloudWatch::MetricStream" => assert!(
                props["Name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("purser-")),
                "{name} is named purser-*, as the guard matches"
            ),
            "AWS::KinesisFirehose::DeliveryStream" => assert!(
                props["DeliveryStreamName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("purser-")),
                "{name} is named purser-*, as the guard matches"
            ),
            _ => {}
        }
    }
}

/// No function may change what Purser did not make: every Organizations
/// write is scoped, to the organization's ARNs (accounts only with the
/// `purser:request` tag CreateAccount gave them) or by a condition
/// (policies by type, tags by the tag Purser puts). CreateAccount alone
/// makes something new from nothing.
#[test]
fn organizations_writes_are_scoped_to_what_purser_made() {
    const READS: [&str; 3] = [
        "organizations:Describe",
        "organizations:List",
        "organizations:CreateAccount",
    ];
    let t = template();
    let mut scoped = 0;
    for (name, function) in functions(&t) {
        let Some(policies) = function["Properties"]["Policies"].as_array() else {
            continue;
        };
        for statement in policies
            .iter()
            .filter_map(|p| p["Statement"].as_array())
            .flatten()
        {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let writes: Vec<&str> = actions
                .into_iter()
                .filter(|a| {
                    a.starts_with("organizations:") && !READS.iter().any(|r| a.starts_with(r))
                })
                .collect();
            if writes.is_empty() {
                continue;
            }
            let resource = statement["Resource"].to_string();
            let condition = &statement["Condition"];
            if statement["Resource"] == "*" {
                assert!(
                    condition.is_object(),
                    "{name}: {writes:?} on every resource, unconditionally"
                );
            } else {
                assert!(
                    resource.contains("${OrganizationId}"),
                    "{name}: {writes:?} on {resource}"
                );
            }
            if resource.contains(":account/") {
                assert_eq!(
                    condition["Null"]["aws:ResourceTag/purser:request"], "false",
                    "{name}: {writes:?} on accounts Purser did not make"
                );
            }
            scoped += 1;
        }
    }
    assert!(
        scoped >= 8,
        "the freeze, the placement and the closure are all scoped: {scoped}"
    );
}

/// The console's HttpApi (issue 13): its page loads without a token, every
/// JSON route takes the JWT authorizer, and each is a route of the IAM API
/// too, so the console can do nothing the API would refuse. `purser up`
/// serves them all.
#[test]
fn the_console_serves_only_routes_the_api_has_each_behind_its_jwt_authorizer() {
    let t = template();
    let iam_routes: BTreeSet<String> = functions(&t)
        .iter()
        .flat_map(|(_, f)| f["Properties"]["Events"].as_object().into_iter().flatten())
        .filter(|(_, e)| e["Type"] == "HttpApi" && e["Properties"]["ApiId"] == reference("HttpApi"))
        .map(|(_, e)| {
            format!(
                "{} {}",
                e["Properties"]["Method"].as_str().unwrap(),
                e["Properties"]["Path"].as_str().unwrap()
            )
        })
        .collect();
    let pages = BTreeSet::from(["GET /".to_string(), "GET /console/{asset}".to_string()]);
    let mut console = BTreeSet::new();
    for (id, route) in t
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::ApiGatewayV2::Route")
    {
        let props = &route["Properties"];
        assert_eq!(props["ApiId"], reference("ConsoleApi"), "{id}");
        let key = props["RouteKey"].as_str().unwrap().to_string();
        if pages.contains(&key) {
            assert_eq!(props["AuthorizationType"], "NONE", "{id}");
        } else {
            assert_eq!(props["AuthorizationType"], "JWT", "{id}");
            assert_eq!(
                props["AuthorizerId"],
                reference("ConsoleAuthorizer"),
                "{id}"
            );
            assert!(
                iam_routes.contains(&key),
                "{id}: {key} is not a route of the IAM API"
            );
        }
        console.insert(key);
    }
    for page in &pages {
        assert!(console.contains(page), "the console has no {page}");
    }
    for needed in [
        "GET /me",
        "GET /teams",
        "GET /teams/{team}/spend",
        "POST /accounts",
    ] {
        assert!(console.contains(needed), "the console has no {needed}");
    }
    let authorizer = &resource(&t, "ConsoleAuthorizer")["Properties"];
    assert_eq!(authorizer["AuthorizerType"], "JWT");
    assert_eq!(
        authorizer["IdentitySource"],
        json!(["$request.header.Authorization"])
    );
    // Only the console's API may invoke the function through this grant.
    let permission = &resource(&t, "ConsoleInvokesApi")["Properties"];
    assert_eq!(permission["Principal"], "apigateway.amazonaws.com");
    assert!(sub(&permission["SourceArn"]).contains("${ConsoleApi}/"));
    // People cannot sign themselves up, nor take another's address.
    let pool = &resource(&t, "ConsoleUserPool")["Properties"];
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        true
    );
    let client = &resource(&t, "ConsoleUserPoolClient")["Properties"];
    assert_eq!(client["GenerateSecret"], false);
    assert_eq!(client["AllowedOAuthFlows"], json!(["code"]));
    assert!(
        !as_list(&client["WriteAttributes"]).contains(&"email".to_string()),
        "people must not change the address the console knows them by"
    );

    // purser up serves every one of them, once.
    let wiring = t.wiring(&LocalContext::default()).unwrap();
    let local: Vec<String> = wiring
        .wires
        .iter()
        .filter_map(|w| match &w.trigger {
            Trigger::HttpRoute { method, path } => Some(format!("{method} {path}")),
            _ => None,
        })
        .collect();
    for key in &console {
        assert!(local.contains(key), "purser up does not serve {key}");
    }
}

/// Resolves the intrinsic functions of a policy document the way
/// CloudFormation would with `parameters` (defaults for the rest):
/// `Ref`, `Fn::If` (with `AWS::NoValue`), `Fn::Sub`, `Fn::Join`,
/// `Fn::Split` and the template's conditions.
struct Resolver<'a> {
    template: &'a Template,
    parameters: std::collections::BTreeMap<&'a str, &'a str>,
}

impl Resolver<'_> {
    fn parameter(&self, name: &str) -> Value {
        let declared = &self.template.document["Parameters"][name];
        assert!(declared.is_object(), "no parameter {name}");
        let text = self
            .parameters
            .get(name)
            .map(|v| v.to_string())
            .unwrap_or_else(|| declared["Default"].as_str().unwrap_or_default().to_string());
        if declared["Type"] == "CommaDelimitedList" {
            // CloudFormation keeps an empty list as one empty string.
            json!(text.split(',').collect::<Vec<_>>())
        } else {
            json!(text)
        }
    }

    fn condition(&self, name: &str) -> bool {
        let c = &self.template.document["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> bool {
        let (key, arg) = v.as_object().unwrap().iter().next().unwrap();
        match key.as_str() {
            "Fn::Not" => !self.truth(&arg[0]),
            "Fn::And" => arg.as_array().unwrap().iter().all(|c| self.truth(c)),
            "Fn::Or" => arg.as_array().unwrap().iter().any(|c| self.truth(c)),
            "Fn::Equals" => self.resolve(&arg[0]) == self.resolve(&arg[1]),
            "Condition" => self.condition(arg.as_str().unwrap()),
            other => panic!("condition function {other}"),
        }
    }

    fn text(&self, v: &Value) -> String {
        self.resolve(v).unwrap().as_str().unwrap().to_string()
    }

    /// `None` for `AWS::NoValue`.
    fn resolve(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.resolve(i)).collect(),
            )),
            Value::Object(map)
                if map.len() == 1 && map.keys().next().unwrap().starts_with("Fn::")
                    || map.contains_key("Ref") && map.len() == 1 =>
            {
                let (key, arg) = map.iter().next().unwrap();
                match key.as_str() {
                    "Ref" => match arg.as_str().unwrap() {
                        "AWS::NoValue" => None,
                        "AWS::Partition" => Some(json!("aws")),
                        name => Some(self.parameter(name)),
                    },
                    "Fn::If" => {
                        let branch = if self.condition(arg[0].as_str().unwrap()) {
                            1
                        } else {
                            2
                        };
                        self.resolve(&arg[branch])
                    }
                    "Fn::Join" => {
                        let items = self.resolve(&arg[1]).unwrap();
                        let texts: Vec<String> = items
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|i| i.as_str().unwrap().to_string())
                            .collect();
                        Some(json!(texts.join(arg[0].as_str().unwrap())))
                    }
                    "Fn::Split" => {
                        let text = self.text(&arg[1]);
                        Some(json!(
                            text.split(arg[0].as_str().unwrap()).collect::<Vec<_>>()
                        ))
                    }
                    "Fn::Sub" => {
                        let (mut text, vars) = match arg {
                            Value::String(s) => (s.clone(), None),
                            _ => (arg[0].as_str().unwrap().to_string(), arg[1].as_object()),
                        };
                        while let Some(start) = text.find("${") {
                            let end = start + text[start..].find('}').unwrap();
                            let name = &text[start + 2..end];
                            let value = match vars.and_then(|v| v.get(name)) {
                                Some(v) => self.text(v),
                                None => self.text(&json!({"Ref": name})),
                            };
                            text.replace_range(start..=end, &value);
                        }
                        Some(json!(text))
                    }
                    other => panic!("intrinsic {other}"),
                }
            }
            Value::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| self.resolve(v).map(|v| (k.clone(), v)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }
}

/// GuardrailPolicy says what the domain's guardrails say: for the default
/// deny lists, some regions and break-glass roles, with and without
/// Control Tower, the same statements (the template names the break-glass
/// roles in any partition, `arn:*:`), within one SCP's 5,120 characters;
/// its parameters' defaults are the domain's; and it exists only with
/// Purser's OU and something to deny.
#[test]
fn the_guardrail_scp_is_the_domain_s() {
    use purser_core::budgets::FreezeExemptions;
    use purser_core::guardrails::{
        DEFAULT_DENIED_ACTIONS, DEFAULT_DENIED_INSTANCE_TYPES, GuardrailSettings, Guardrails,
    };
    let t = template();
    let policy = &t.document["Resources"]["GuardrailPolicy"];
    assert_eq!(policy["Type"], "AWS::Organizations::Policy");
    assert_eq!(policy["Condition"], "HasGuardrail");
    assert_eq!(policy["Properties"]["Type"], "SERVICE_CONTROL_POLICY");
    assert_eq!(
        policy["Properties"]["TargetIds"],
        json!([{"Ref": "PurserOuId"}])
    );
    let default = |name: &str| {
        t.document["Parameters"][name]["Default"]
            .as_str()
            .unwrap()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(default("GuardrailDeniedActions"), DEFAULT_DENIED_ACTIONS);
    assert_eq!(
        default("GuardrailDeniedInstanceTypes"),
        DEFAULT_DENIED_INSTANCE_TYPES
    );
    assert!(default("GuardrailRegions").is_empty());

    for control_tower in ["false", "true"] {
        let resolver = Resolver {
            template: &t,
            parameters: [
                ("PurserOuId", "ou-abcd-12345678"),
                ("GuardrailRegions", "eu-west-1,eu-central-1"),
                ("BreakGlassRoles", "break-glass,ops-admin"),
                ("ControlTower", control_tower),
            ]
            .into(),
        };
        assert!(resolver.condition("HasGuardrail"));
        let content = resolver.resolve(&policy["Properties"]["Content"]).unwrap();
        let text = content.to_string().replace("arn:*:", "arn:aws:");
        assert!(
            text.chars().count() <= 5_120,
            "{} characters",
            text.chars().count()
        );
        let ours: Value = serde_json::from_str(&text).unwrap();
        let domain = Guardrails::new(
            GuardrailSettings {
                regions: vec!["eu-west-1".into(), "eu-central-1".into()],
                ..GuardrailSettings::default()
            },
            FreezeExemptions {
                break_glass_roles: vec!["break-glass".into(), "ops-admin".into()],
                purser_role: "purser-lambda-throttle".into(),
                control_tower: control_tower == "true",
            },
        )
        .unwrap()
        .policies()
        .unwrap();
        assert_eq!(domain.len(), 1);
        let domain: Value = serde_json::from_str(&domain[0]).unwrap();
        assert_eq!(ours, domain, "ControlTower {control_tower}");
    }

    // No region rule without regions; no policy without the OU, nor
    // with nothing to deny.
    let without_regions = Resolver {
        template: &t,
        parameters: [("PurserOuId", "ou-abcd-12345678")].into(),
    };
    let content = without_regions
        .resolve(&policy["Properties"]["Content"])
        .unwrap();
    let sids: Vec<&Value> = content["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["Sid"])
        .collect();
    assert_eq!(
        sids,
        [
            &json!("PurserDeniedActions"),
            &json!("PurserLargestInstances")
        ]
    );
    let without_ou = Resolver {
        template: &t,
        parameters: [("GuardrailRegions", "eu-west-1")].into(),
    };
    assert!(!without_ou.condition("HasGuardrail"));
    let nothing = Resolver {
        template: &t,
        parameters: [
            ("PurserOuId", "ou-abcd-12345678"),
            ("GuardrailDeniedActions", ""),
            ("GuardrailDeniedInstanceTypes", ""),
        ]
        .into(),
    };
    assert!(!nothing.condition("HasGuardrail"));
}

/// The cleaning project runs infra/cleaner/buildspec.yml, the reviewed
/// file (contract-tested against aws-nuke's format by the cleaner's
/// contract test), inline: the two must not drift. Its role assumes only
/// the member role, only in the organization's accounts, and the reaper
/// may start and read builds of that project only.
#[test]
fn the_cleaning_project_runs_the_reviewed_buildspec_with_least_privilege() {
    let t = template();
    let project = t
        .resources()
        .find(|(id, _)| *id == "CleanerProject")
        .map(|(_, r)| r)
        .expect("a CleanerProject");
    assert_eq!(project["Type"], "AWS::CodeBuild::Project");
    let inline = project["Properties"]["Source"]["BuildSpec"]
        .as_str()
        .expect("an inline buildspec");
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/cleaner/buildspec.yml"),
    )
    .expect("infra/cleaner/buildspec.yml");
    assert_eq!(
        inline, file,
        "CleanerProject's BuildSpec differs from infra/cleaner/buildspec.yml"
    );
    let role = t
        .resources()
        .find(|(id, _)| *id == "CleanerRole")
        .map(|(_, r)| r)
        .expect("a CleanerRole");
    let mut found = Vec::new();
    statements(&role["Properties"]["Policies"], &mut found);
    let assume: Vec<&Value> = found
        .iter()
        .filter(|s| s["Action"] == "sts:AssumeRole" && s.get("Principal").is_none())
        .collect();
    assert_eq!(assume.len(), 1, "{found:#?}");
    assert_eq!(
        assume[0]["Condition"]["StringEquals"]["aws:ResourceOrgID"],
        json!({"Ref": "OrganizationId"})
    );
    assert!(
        assume[0]["Resource"]
            .to_string()
            .contains("${MemberAccountRole}"),
        "{}",
        assume[0]["Resource"]
    );
    assert_least_privilege(&role["Properties"]);
    let reaper = t
        .resources()
        .find(|(id, _)| *id == "ReaperFunction")
        .map(|(_, r)| r)
        .expect("a ReaperFunction");
    let mut reaper_statements = Vec::new();
    statements(&reaper["Properties"]["Policies"], &mut reaper_statements);
    let codebuild: Vec<&Value> = reaper_statements
        .iter()
        .filter(|s| s["Action"].to_string().contains("codebuild:"))
        .collect();
    assert_eq!(codebuild.len(), 1);
    assert_eq!(
        codebuild[0]["Action"],
        json!(["codebuild:StartBuild", "codebuild:BatchGetBuilds"])
    );
    let resource = codebuild[0]["Resource"].to_string();
    assert!(
        resource.contains("CleanerProject") && resource.contains("Arn"),
        "{resource}"
    );
    let env = &reaper["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["PURSER_CLEANER_PROJECT"],
        json!({"Ref": "CleanerProject"})
    );
    assert!(env.get("PURSER_CLEANER_BLOCKLIST").is_some());
    // Only the reaper cleans.
    for (id, function) in functions(&t) {
        if id != "ReaperFunction" {
            assert!(
                function["Properties"]["Environment"]["Variables"]
                    .get("PURSER_CLEANER_PROJECT")
                    .is_none(),
                "{id} is given the cleaner"
            );
        }
    }
}
