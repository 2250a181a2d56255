//! Contract of [`AthenaEngine`] against moto's Athena: a workgroup of its
//! own, a named query started, polled and read through the adapter, and
//! the execution moto recorded read back with the SDK.
//!
//! Where moto is not faithful to Athena:
//!
//! - it executes no SQL: results are canned rows, queued with
//!   `POST /moto-api/static/athena/query-results` (header row included, as
//!   Athena sends it) and taken, in order, by the next executions started
//!   in that account and region. The queue is per region, so each test
//!   here runs in a region of its own and cannot take another's rows;
//! - by default an execution is `SUCCEEDED` at the first
//!   `GetQueryExecution`. The tests make moto's state manager move each
//!   execution one state every two polls (`QUEUED`, `RUNNING`, `RUNNING`,
//!   `SUCCEEDED`) so the adapter really polls, and so a query can be
//!   caught running and stopped. That setting is the server's, for every
//!   Athena execution: Athena is used by these tests only;
//! - it ignores `MaxResults` and `NextToken` (one page, whatever its size),
//!   reports 0 bytes scanned, never fails a query (no `FAILED` state, no
//!   `AthenaError`) and enforces no workgroup setting: paging, the header
//!   row across pages, failures and the conversion of every Athena type are
//!   unit-tested with a fake (`src/query.rs`);
//! - `GetQueryExecution` echoes the `ResultConfiguration` of the request
//!   (AWS answers the workgroup's), which shows here that the adapter sets
//!   none of its own.

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_athena::types::{
    QueryExecution, QueryExecutionState, ResultConfiguration, WorkGroupConfiguration,
};
use purser_aws::AthenaEngine;
use purser_core::ports::{
    Column, ColumnType, NamedQuery, QueryEngine, QueryError, QueryParam, QueryResult,
};
use serde_json::{Value, json};

const SQL: &str = "SELECT team, sum(cost_usd) AS total FROM invocations \
                   WHERE substr(dt, 1, 7) = ? GROUP BY team";

const DATABASE: &str = "purser_lake";

fn cost_per_team_monthly() -> NamedQuery {
    NamedQuery {
        name: "cost_per_team_monthly".into(),
        sql: SQL.into(),
        params: vec![QueryParam {
            name: "month".into(),
            doc: "YYYY-MM: the month".into(),
        }],
        description: "Lambda cost per team in a month".into(),
    }
}

/// moto's configuration, in `region` (the region isolates the tests'
/// queues of canned results), or `None` when contract tests are skipped.
async fn moto_in(region: &'static str) -> Option<(SdkConfig, String)> {
    let config = crate::common::moto_config().await?;
    let endpoint = std::env::var("PURSER_MOTO_ENDPOINT").expect("moto's endpoint");
    let config = config.to_builder().region(Region::new(region)).build();
    Some((config, endpoint.trim_end_matches('/').to_owned()))
}

/// POSTs `body` to one of moto's own endpoints.
async fn moto_api(endpoint: &str, path: &str, body: &Value) {
    let response = crate::common::http()
        .post(format!("{endpoint}{path}"))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {path}: {status} {text}");
}

/// Makes every Athena execution move one state every two polls.
async fn slow_executions(endpoint: &str) {
    moto_api(
        endpoint,
        "/moto-api/state-manager/set-transition",
        &json!({
            "model_name": "athena::execution",
            "transition": {"progression": "manual", "times": 2},
        }),
    )
    .await;
}

/// Queues the rows the next execution in `region` returns.
async fn queue_results(endpoint: &str, region: &str, rows: Value, column_info: Value) {
    moto_api(
        endpoint,
        "/moto-api/static/athena/query-results",
        &json!({
            "account_id": "123456789012",
            "region": region,
            "results": [{"rows": rows, "column_info": column_info}],
        }),
    )
    .await;
}

fn column_info(name: &str, athena_type: &str) -> Value {
    json!({
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": 0,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": true,
    })
}

/// A workgroup as the template defines it: results location, enforced
/// settings and a cutoff on the bytes a query may scan.
async fn workgroup(config: &SdkConfig) -> String {
    let name = crate::common::unique("purser");
    let configuration = WorkGroupConfiguration::builder()
        .result_configuration(
            ResultConfiguration::builder()
                .output_location("s3://purser-athena-results/")
                .build(),
        )
        .enforce_work_group_configuration(true)
        .bytes_scanned_cutoff_per_query(10 * 1024 * 1024 * 1024)
        .build();
    aws_sdk_athena::Client::new(config)
        .create_work_group()
        .name(&name)
        .configuration(configuration)
        .send()
        .await
        .expect("CreateWorkGroup");
    name
}

/// The executions moto recorded in `workgroup`.
async fn executions(config: &SdkConfig, workgroup: &str) -> Vec<QueryExecution> {
    let client = aws_sdk_athena::Client::new(config);
    let ids = client
        .list_query_executions()
        .work_group(workgroup)
        .send()
        .await
        .expect("ListQueryExecutions")
        .query_execution_ids
        .unwrap_or_default();
    let mut executions = Vec::new();
    for id in ids {
        let execution = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .expect("GetQueryExecution")
            .query_execution
            .expect("an execution");
        executions.push(execution);
    }
    executions
}

#[tokio::test]
async fn runs_a_named_query_and_types_its_rows() {
    const REGION: &str = "us-west-2";
    let Some((config, endpoint)) = moto_in(REGION).await else {
        return;
    };
    slow_executions(&endpoint).await;
    let workgroup = workgroup(&config).await;
    queue_results(
        &endpoint,
        REGION,
        json!([
            {"Data": [{"VarCharValue": "team"}, {"VarCharValue": "total"}]},
            {"Data": [{"VarCharValue": "payments"}, {"VarCharValue": "1.250000000"}]},
            {"Data": [{"VarCharValue": "search"}, {"VarCharValue": "12345678901.000000001"}]},
            {"Data": [{}, {"VarCharValue": "0.000000017"}]},
        ]),
        json!([
            column_info("team", "varchar"),
            column_info("total", "decimal")
        ]),
    )
    .await;

    let engine = AthenaEngine::from_config(&config, &workgroup, DATABASE);
    let result = engine
        .run(&cost_per_team_monthly(), &["2026-11".to_owned()])
        .await
        .expect("the query runs");

    assert_eq!(
        result,
        QueryResult {
            columns: vec![
                Column {
                    name: "team".into(),
                    column_type: ColumnType::String,
                },
                Column {
                    name: "total".into(),
                    column_type: ColumnType::Decimal,
                },
            ],
            rows: vec![
                vec![json!("payments"), json!("1.250000000")],
                vec![json!("search"), json!("12345678901.000000001")],
                vec![Value::Null, json!("0.000000017")],
            ],
            // moto scans nothing and says so.
            bytes_scanned: Some(0),
        }
    );

    let executions = executions(&config, &workgroup).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let execution = &executions[0];
    assert_eq!(execution.query(), Some(SQL), "the SQL text unchanged");
    assert_eq!(
        execution.execution_parameters(),
        ["'2026-11'"],
        "the month apart from the SQL, as a varchar literal"
    );
    assert_eq!(execution.work_group(), Some(workgroup.as_str()));
    assert_eq!(
        execution
            .query_execution_context()
            .and_then(|c| c.database()),
        Some(DATABASE)
    );
    assert!(
        execution.result_configuration().is_none(),
        "the workgroup's result configuration applies: {:?}",
        execution.result_configuration()
    );
    assert_eq!(
        execution.status().and_then(|s| s.state()),
        Some(&QueryExecutionState::Succeeded)
    );
}

#[tokio::test]
async fn a_query_still_running_at_the_timeout_is_stopped() {
    const REGION: &str = "eu-west-1";
    let Some((config, endpoint)) = moto_in(REGION).await else {
        return;
    };
    slow_executions(&endpoint).await;
    let workgroup = workgroup(&config).await;

    // Polled at once (QUEUED), then at the timeout (RUNNING): not done.
    let engine = AthenaEngine::from_config(&config, &workgroup, DATABASE)
        .with_timeout(Duration::from_millis(100));
    let err = engine
        .run(&cost_per_team_monthly(), &["2026-11".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout(1)), "{err:?}");
    assert_eq!(err.to_string(), "the query did not finish within 1 seconds");

    let executions = executions(&config, &workgroup).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(
        executions[0].status().and_then(|s| s.state()),
        Some(&QueryExecutionState::Cancelled),
        "the adapter stopped the query"
    );
}

#[tokio::test]
async fn a_wrong_number_of_parameters_never_reaches_athena() {
    const REGION: &str = "eu-central-1";
    let Some((config, _)) = moto_in(REGION).await else {
        return;
    };
    let workgroup = workgroup(&config).await;
    let engine = AthenaEngine::from_config(&config, &workgroup, DATABASE);
    let err = engine
        .run(
            &cost_per_team_monthly(),
            &["2026-10".to_owned(), "2026-11".to_owned()],
        )
        .await
        .unwrap_err();
    let QueryError::InvalidParameters(message) = err else {
        panic!("expected InvalidParameters, got {err:?}");
    };
    assert_eq!(
        message,
        "cost_per_team_monthly takes 1 parameter: month (YYYY-MM: the month); 2 given"
    );
    assert!(executions(&config, &workgroup).await.is_empty());
}

#[tokio::test]
async fn a_workgroup_that_does_not_exist_fails_the_query_with_athenas_words() {
    const REGION: &str = "ap-southeast-2";
    let Some((config, _)) = moto_in(REGION).await else {
        return;
    };
    let missing = crate::common::unique("missing");
    let engine = AthenaEngine::from_config(&config, &missing, DATABASE);
    let err = engine
        .run(&cost_per_team_monthly(), &["2026-11".to_owned()])
        .await
        .unwrap_err();
    let QueryError::Failed(message) = err else {
        panic!("expected Failed, got {err:?}");
    };
    eprintln!("{message}");
    assert!(
        message.starts_with(&format!("StartQueryExecution in workgroup {missing}: ")),
        "{message}"
    );
    assert!(message.contains("InvalidRequestException"), "{message}");
    assert!(message.contains("WorkGroup does not exist"), "{message}");
}
