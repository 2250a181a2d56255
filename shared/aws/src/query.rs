//! The [`QueryEngine`] port on Amazon Athena: `StartQueryExecution`,
//! `GetQueryExecution` until the query is done, `GetQueryResults` page by
//! page.
//!
//! The named query's SQL is sent exactly as written; its parameters go in
//! `ExecutionParameters`, in order, never into the SQL text. Athena reads
//! each execution parameter as a literal, so each is sent as a varchar
//! literal (`'2026-11'`, a quote inside doubled): the parameters are
//! strings, as on the local engine, and a value cannot become SQL of its
//! own.
//!
//! The workgroup carries the results' location and encryption and the
//! `BytesScannedCutoffPerQuery` that bounds what a query may cost, so the
//! adapter sets no `ResultConfiguration` of its own.
//!
//! Values come back from Athena as text and are typed by the columns'
//! types, as the local engine types them: integers and doubles as JSON
//! numbers (a double that is not finite as text), decimals as text with
//! every digit, booleans as booleans, dates, timestamps and anything else
//! as text, and a cell without a value as null.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_athena::error::DisplayErrorContext;
use aws_sdk_athena::types::{
    AthenaError, ColumnInfo, QueryExecution, QueryExecutionContext, QueryExecutionState, ResultSet,
    Row,
};
use purser_core::ports::{Column, ColumnType, NamedQuery, QueryEngine, QueryError, QueryResult};
use serde_json::{Number, Value};
use tokio::time::Instant;

/// Rows per `GetQueryResults` page, the most Athena gives (the header row
/// of the first page included).
const PAGE_SIZE: i32 = 1_000;

/// Runs Purser's named queries on Athena, in one workgroup and database.
#[derive(Debug, Clone)]
pub struct AthenaEngine {
    client: aws_sdk_athena::Client,
    workgroup: String,
    database: String,
    polling: Polling,
}

impl AthenaEngine {
    /// An engine that runs queries in `workgroup` against the Glue
    /// `database` of the lake's tables.
    pub fn new(
        client: aws_sdk_athena::Client,
        workgroup: impl Into<String>,
        database: impl Into<String>,
    ) -> Self {
        Self {
            client,
            workgroup: workgroup.into(),
            database: database.into(),
            polling: Polling::default(),
        }
    }

    pub fn from_config(
        config: &aws_config::SdkConfig,
        workgroup: impl Into<String>,
        database: impl Into<String>,
    ) -> Self {
        Self::new(aws_sdk_athena::Client::new(config), workgroup, database)
    }

    /// How long a query may run, from its start until it is done, before
    /// it is stopped and the run is a [`QueryError::Timeout`] (60 s by
    /// default). Keep it below the caller's own limit (a Lambda's timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.polling.timeout = timeout;
        self
    }

    /// How often the query's state is asked for: first after `first`, the
    /// wait doubling up to `max` (200 ms and 2 s by default).
    pub fn with_poll_delays(mut self, first: Duration, max: Duration) -> Self {
        self.polling.first_delay = first;
        self.polling.max_delay = max.max(first);
        self
    }

    pub fn workgroup(&self) -> &str {
        &self.workgroup
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn timeout(&self) -> Duration {
        self.polling.timeout
    }
}

#[async_trait]
impl QueryEngine for AthenaEngine {
    async fn run(&self, query: &NamedQuery, params: &[String]) -> Result<QueryResult, QueryError> {
        let target = Target {
            workgroup: &self.workgroup,
            database: &self.database,
        };
        run_query(&self.client, &target, &self.polling, query, params).await
    }
}

/// How a running query is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Polling {
    timeout: Duration,
    first_delay: Duration,
    max_delay: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl Polling {
    /// The wait after poll number `poll` (1 for the first): doubling from
    /// the first delay, capped. No jitter: a query's polls do not compete
    /// with other callers' the way throttled puts do.
    fn delay(&self, poll: u32) -> Duration {
        let factor = 1u32.checked_shl(poll.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The timeout in whole seconds, rounded up, as `QueryError` has it.
    fn timeout_secs(&self) -> u64 {
        let t = self.timeout;
        t.as_secs() + u64::from(t.subsec_nanos() > 0)
    }
}

/// Where queries run.
struct Target<'a> {
    workgroup: &'a str,
    database: &'a str,
}

/// One `StartQueryExecution` request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Start<'a> {
    sql: &'a str,
    database: &'a str,
    workgroup: &'a str,
    /// The execution parameters, as Athena reads them (literals).
    parameters: Vec<String>,
}

/// The Athena calls a run makes. The seam that lets polling and paging be
/// tested without the network; answers are the SDK's own shapes.
trait Athena: Sync {
    /// Starts the query; its execution id.
    fn start(&self, request: &Start<'_>)
    -> impl Future<Output = Result<String, QueryError>> + Send;

    /// The execution as it stands (`GetQueryExecution`).
    fn execution(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<QueryExecution, QueryError>> + Send;

    /// Asks Athena to stop the query (`StopQueryExecution`).
    fn stop(&self, id: &str) -> impl Future<Output = Result<(), QueryError>> + Send;

    /// One page of results and the token of the next, if any.
    fn page(
        &self,
        id: &str,
        token: Option<&str>,
        max_results: i32,
    ) -> impl Future<Output = Result<(ResultSet, Option<String>), QueryError>> + Send;
}

impl Athena for aws_sdk_athena::Client {
    async fn start(&self, request: &Start<'_>) -> Result<String, QueryError> {
        let output = self
            .start_query_execution()
            .query_string(request.sql)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(request.database)
                    .build(),
            )
            .work_group(request.workgroup)
            .set_execution_parameters(execution_parameters(&request.parameters))
            .send()
            .await
            .map_err(|e| {
                let message = format!(
                    "StartQueryExecution in workgroup {}: {}",
                    request.workgroup,
                    DisplayErrorContext(&e)
                );
                // Athena refusing the request itself (a workgroup that does
                // not exist or is disabled, parameters that do not match the
                // placeholders) is the query's failure, not an outage.
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception())
                {
                    QueryError::Failed(message)
                } else {
                    QueryError::Unavailable(message)
                }
            })?;
        output
            .query_execution_id()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                QueryError::Unavailable("StartQueryExecution returned no execution id".into())
            })
    }

    async fn execution(&self, id: &str) -> Result<QueryExecution, QueryError> {
        let output = self
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| {
                QueryError::Unavailable(format!(
                    "GetQueryExecution {id}: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        output.query_execution.ok_or_else(|| {
            QueryError::Unavailable(format!("GetQueryExecution {id} returned no execution"))
        })
    }

    async fn stop(&self, id: &str) -> Result<(), QueryError> {
        self.stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .map_err(|e| {
                QueryError::Unavailable(format!(
                    "StopQueryExecution {id}: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }

    async fn page(
        &self,
        id: &str,
        token: Option<&str>,
        max_results: i32,
    ) -> Result<(ResultSet, Option<String>), QueryError> {
        let output = self
            .get_query_results()
            .query_execution_id(id)
            .set_next_token(token.map(str::to_owned))
            .max_results(max_results)
            .send()
            .await
            .map_err(|e| {
                QueryError::Unavailable(format!(
                    "GetQueryResults {id}: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        let next = output.next_token.filter(|t| !t.is_empty());
        let set = output
            .result_set
            .unwrap_or_else(|| ResultSet::builder().build());
        Ok((set, next))
    }
}

/// `ExecutionParameters` as sent: none rather than an empty list, which
/// Athena refuses (the list, when given, has at least one member).
fn execution_parameters(parameters: &[String]) -> Option<Vec<String>> {
    (!parameters.is_empty()).then(|| parameters.to_vec())
}

/// A parameter as the varchar literal Athena binds to its `?`: quoted, a
/// quote inside doubled (Trino's only escape in a string literal), so the
/// value is one string whatever it holds.
fn varchar_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Runs `query` with `params`: starts it, waits for it, reads its results.
async fn run_query<A: Athena>(
    athena: &A,
    target: &Target<'_>,
    polling: &Polling,
    query: &NamedQuery,
    params: &[String],
) -> Result<QueryResult, QueryError> {
    if params.len() != query.params.len() {
        return Err(wrong_parameters(query, params.len()));
    }
    let request = Start {
        sql: &query.sql,
        database: target.database,
        workgroup: target.workgroup,
        parameters: params.iter().map(|p| varchar_literal(p)).collect(),
    };
    let began = Instant::now();
    let id = athena.start(&request).await?;
    tracing::debug!(
        query = %query.name,
        execution = %id,
        workgroup = target.workgroup,
        database = target.database,
        "Athena query started"
    );
    let bytes_scanned = wait(athena, &id, polling, &query.name, began).await?;
    let (columns, rows) = read_results(athena, &id).await?;
    tracing::info!(
        query = %query.name,
        execution = %id,
        rows = rows.len(),
        bytes_scanned,
        elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
        "Athena query done"
    );
    Ok(QueryResult {
        columns,
        rows,
        bytes_scanned,
    })
}

/// The error for a wrong number of parameters, naming those expected.
fn wrong_parameters(query: &NamedQuery, given: usize) -> QueryError {
    let expected: Vec<String> = query
        .params
        .iter()
        .map(|p| {
            if p.doc.is_empty() {
                p.name.clone()
            } else {
                format!("{} ({})", p.name, p.doc)
            }
        })
        .collect();
    let needs = match expected.len() {
        0 => "takes no parameters".to_owned(),
        1 => format!("takes 1 parameter: {}", expected[0]),
        n => format!("takes {n} parameters, in order: {}", expected.join(", ")),
    };
    QueryError::InvalidParameters(format!("{} {needs}; {given} given", query.name))
}

/// Polls the execution until it is done or the time is up; the bytes it
/// scanned when it succeeded.
async fn wait<A: Athena>(
    athena: &A,
    id: &str,
    polling: &Polling,
    name: &str,
    began: Instant,
) -> Result<Option<u64>, QueryError> {
    let deadline = began + polling.timeout;
    let mut poll = 1;
    loop {
        let execution = match athena.execution(id).await {
            Ok(execution) => execution,
            Err(e) => {
                // The query may go on running (and scanning) unwatched.
                stop(athena, id, name).await;
                return Err(e);
            }
        };
        let status = execution.status();
        let reason = || {
            failure_reason(
                id,
                status.and_then(|s| s.state_change_reason()),
                status.and_then(|s| s.athena_error()),
            )
        };
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => {
                return Ok(execution
                    .statistics()
                    .and_then(|s| s.data_scanned_in_bytes())
                    .and_then(|b| u64::try_from(b).ok()));
            }
            Some(QueryExecutionState::Failed) => {
                let reason = reason();
                tracing::warn!(query = name, execution = id, reason, "Athena query failed");
                return Err(QueryError::Failed(reason));
            }
            Some(QueryExecutionState::Cancelled) => {
                let reason = reason();
                tracing::warn!(
                    query = name,
                    execution = id,
                    reason,
                    "Athena query was cancelled"
                );
                return Err(QueryError::Cancelled(reason));
            }
            // QUEUED, RUNNING, or a state this SDK does not know yet: not
            // done (the timeout bounds the wait whatever it is).
            state => {
                let now = Instant::now();
                if now >= deadline {
                    tracing::warn!(
                        query = name,
                        execution = id,
                        state = state.map(QueryExecutionState::as_str),
                        timeout_ms = u64::try_from(polling.timeout.as_millis()).unwrap_or(u64::MAX),
                        "Athena query did not finish in time; stopping it"
                    );
                    stop(athena, id, name).await;
                    return Err(QueryError::Timeout(polling.timeout_secs()));
                }
                let delay = polling.delay(poll).min(deadline - now);
                tracing::trace!(
                    query = name,
                    execution = id,
                    state = state.map(QueryExecutionState::as_str),
                    poll,
                    "Athena query not done"
                );
                tokio::time::sleep(delay).await;
                poll += 1;
            }
        }
    }
}

/// Stops the query, best effort: a failure to stop it is logged, and the
/// run's own error stands.
async fn stop<A: Athena>(athena: &A, id: &str, name: &str) {
    if let Err(e) = athena.stop(id).await {
        tracing::warn!(query = name, execution = id, error = %e, "could not stop the Athena query");
    }
}

/// Why a query failed or was cancelled, in Athena's words: its state change
/// reason, and its error's message, type and category where it gives them.
fn failure_reason(id: &str, reason: Option<&str>, error: Option<&AthenaError>) -> String {
    let reason = reason.filter(|r| !r.is_empty());
    let mut text = reason.unwrap_or("Athena gave no reason").to_owned();
    let mut details = Vec::new();
    if let Some(error) = error {
        // Athena's message often repeats the reason: say it once.
        if let Some(message) = error
            .error_message()
            .filter(|m| !m.is_empty() && reason != Some(*m))
        {
            text.push_str(": ");
            text.push_str(message);
        }
        if let Some(error_type) = error.error_type() {
            details.push(format!("error type {error_type}"));
        }
        match error.error_category() {
            Some(1) => details.push("system error".into()),
            Some(2) => details.push("user error".into()),
            Some(3) => details.push("other error".into()),
            Some(n) => details.push(format!("error category {n}")),
            None => {}
        }
    }
    details.push(format!("query execution {id}"));
    format!("{text} ({})", details.join(", "))
}

/// Reads every page of the results: the columns from the first page's
/// metadata, the rows of all pages but the first page's first row, which
/// is Athena's header row (the columns' names).
async fn read_results<A: Athena>(
    athena: &A,
    id: &str,
) -> Result<(Vec<Column>, Vec<Vec<Value>>), QueryError> {
    let mut columns: Vec<Column> = Vec::new();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u32;
    loop {
        let (set, next) = athena.page(id, token.as_deref(), PAGE_SIZE).await?;
        pages += 1;
        let mut page_rows = set.rows();
        if pages == 1 {
            let info = set
                .result_set_metadata()
                .map(|m| m.column_info())
                .unwrap_or_default();
            let header = page_rows.first();
            columns = if info.is_empty() {
                // No metadata: name the columns from the header, untyped.
                header.map(header_columns).unwrap_or_default()
            } else {
                info.iter().map(column).collect()
            };
            if let Some(header) = header {
                check_header(id, header, &columns);
                page_rows = &page_rows[1..];
            }
        }
        rows.extend(page_rows.iter().map(|row| typed_row(row, &columns)));
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    tracing::debug!(
        execution = id,
        pages,
        rows = rows.len(),
        "Athena results read"
    );
    Ok((columns, rows))
}

fn column(info: &ColumnInfo) -> Column {
    Column {
        name: info.name().to_owned(),
        column_type: column_type(info.r#type()),
    }
}

fn header_columns(header: &Row) -> Vec<Column> {
    header
        .data()
        .iter()
        .map(|d| Column {
            name: d.var_char_value().unwrap_or_default().to_owned(),
            column_type: ColumnType::Other,
        })
        .collect()
}

/// Athena's first row is the header; one that does not name the columns
/// is still skipped (Athena always sends it for a query), but said.
fn check_header(id: &str, header: &Row, columns: &[Column]) {
    let names: Vec<&str> = header
        .data()
        .iter()
        .map(|d| d.var_char_value().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    if names != expected {
        tracing::warn!(
            execution = id,
            header = ?names,
            columns = ?expected,
            "the first row of Athena's results is not the header row expected; skipped all the same"
        );
    }
}

/// An Athena type (`varchar`, `decimal(18,9)`, `timestamp with time
/// zone`, `array(varchar)`, ...) as the port's column type.
fn column_type(athena: &str) -> ColumnType {
    let athena = athena.trim().to_ascii_lowercase();
    let base = athena
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    match base {
        "varchar" | "char" | "string" => ColumnType::String,
        "tinyint" | "smallint" | "integer" | "int" | "bigint" => ColumnType::Integer,
        "decimal" => ColumnType::Decimal,
        "double" | "real" | "float" => ColumnType::Double,
        "boolean" => ColumnType::Boolean,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        _ => ColumnType::Other,
    }
}

/// A row's cells, typed by their columns; a cell missing from the row is
/// null, one beyond the columns is dropped.
fn typed_row(row: &Row, columns: &[Column]) -> Vec<Value> {
    let data = row.data();
    if data.len() != columns.len() {
        tracing::warn!(
            cells = data.len(),
            columns = columns.len(),
            "an Athena result row does not have one cell per column"
        );
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            data.get(i)
                .and_then(|d| d.var_char_value())
                .map_or(Value::Null, |text| typed_value(text, c.column_type))
        })
        .collect()
}

/// A cell's text as the JSON value of its column type. Text that does not
/// read as its type (which Athena does not send) is kept as text.
fn typed_value(text: &str, column_type: ColumnType) -> Value {
    match column_type {
        ColumnType::Integer => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        ColumnType::Double => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        ColumnType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        ColumnType::String
        | ColumnType::Decimal
        | ColumnType::Date
        | ColumnType::Timestamp
        | ColumnType::Other => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use aws_sdk_athena::types::{
        Datum, QueryExecutionStatistics, QueryExecutionStatus, ResultSetMetadata,
    };
    use purser_core::ports::QueryParam;
    use serde_json::json;

    const ID: &str = "exec-1";

    /// A call the fake received.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        Start {
            sql: String,
            database: String,
            workgroup: String,
            parameters: Vec<String>,
        },
        Execution(String),
        Stop(String),
        Page {
            token: Option<String>,
            max_results: i32,
        },
    }

    /// A fake Athena: the execution goes through `states`, one per poll
    /// (the last one repeats); its results are `rows`, the header row
    /// first, served in pages of the size asked, each with the metadata,
    /// as Athena does. It records every call.
    struct FakeAthena {
        states: Mutex<VecDeque<QueryExecution>>,
        columns: Vec<ColumnInfo>,
        rows: Vec<Row>,
        polls_fail: bool,
        calls: Mutex<Vec<Call>>,
    }

    impl FakeAthena {
        fn new(states: Vec<QueryExecution>, columns: Vec<ColumnInfo>, rows: Vec<Row>) -> Self {
            Self {
                states: Mutex::new(states.into()),
                columns,
                rows,
                polls_fail: false,
                calls: Mutex::new(Vec::new()),
            }
        }

        /// A query that succeeds at once with these results.
        fn succeeding(columns: Vec<ColumnInfo>, rows: Vec<Row>) -> Self {
            Self::new(vec![succeeded(Some(42))], columns, rows)
        }

        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn record(&self, call: Call) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl Athena for FakeAthena {
        async fn start(&self, request: &Start<'_>) -> Result<String, QueryError> {
            self.record(Call::Start {
                sql: request.sql.to_owned(),
                database: request.database.to_owned(),
                workgroup: request.workgroup.to_owned(),
                parameters: request.parameters.clone(),
            });
            Ok(ID.to_owned())
        }

        async fn execution(&self, id: &str) -> Result<QueryExecution, QueryError> {
            self.record(Call::Execution(id.to_owned()));
            if self.polls_fail {
                return Err(QueryError::Unavailable("dispatch failure".into()));
            }
            let mut states = self.states.lock().unwrap();
            let state = if states.len() > 1 {
                states.pop_front().unwrap()
            } else {
                states.front().cloned().expect("a state")
            };
            Ok(state)
        }

        async fn stop(&self, id: &str) -> Result<(), QueryError> {
            self.record(Call::Stop(id.to_owned()));
            Ok(())
        }

        async fn page(
            &self,
            id: &str,
            token: Option<&str>,
            max_results: i32,
        ) -> Result<(ResultSet, Option<String>), QueryError> {
            assert_eq!(id, ID);
            self.record(Call::Page {
                token: token.map(str::to_owned),
                max_results,
            });
            let start: usize =
                token.map_or(0, |t| t.strip_prefix("from-").unwrap().parse().unwrap());
            let end = (start + usize::try_from(max_results).unwrap()).min(self.rows.len());
            let set = ResultSet::builder()
                .set_rows(Some(self.rows[start..end].to_vec()))
                .result_set_metadata(
                    ResultSetMetadata::builder()
                        .set_column_info(Some(self.columns.clone()))
                        .build(),
                )
                .build();
            let next = (end < self.rows.len()).then(|| format!("from-{end}"));
            Ok((set, next))
        }
    }

    fn execution(state: QueryExecutionState) -> QueryExecution {
        QueryExecution::builder()
            .query_execution_id(ID)
            .status(QueryExecutionStatus::builder().state(state).build())
            .build()
    }

    fn succeeded(bytes: Option<i64>) -> QueryExecution {
        QueryExecution::builder()
            .query_execution_id(ID)
            .status(
                QueryExecutionStatus::builder()
                    .state(QueryExecutionState::Succeeded)
                    .build(),
            )
            .statistics(
                QueryExecutionStatistics::builder()
                    .set_data_scanned_in_bytes(bytes)
                    .build(),
            )
            .build()
    }

    fn ended(
        state: QueryExecutionState,
        reason: &str,
        error: Option<AthenaError>,
    ) -> QueryExecution {
        QueryExecution::builder()
            .query_execution_id(ID)
            .status(
                QueryExecutionStatus::builder()
                    .state(state)
                    .state_change_reason(reason)
                    .set_athena_error(error)
                    .build(),
            )
            .build()
    }

    fn info(name: &str, athena_type: &str) -> ColumnInfo {
        ColumnInfo::builder()
            .name(name)
            .label(name)
            .r#type(athena_type)
            .build()
            .expect("a column")
    }

    fn row(cells: &[Option<&str>]) -> Row {
        Row::builder()
            .set_data(Some(
                cells
                    .iter()
                    .map(|c| {
                        Datum::builder()
                            .set_var_char_value(c.map(str::to_owned))
                            .build()
                    })
                    .collect(),
            ))
            .build()
    }

    fn header(columns: &[ColumnInfo]) -> Row {
        let names: Vec<Option<&str>> = columns.iter().map(|c| Some(c.name())).collect();
        row(&names)
    }

    const MONTHLY_SQL: &str = "SELECT team, sum(cost_usd) AS total\nFROM invocations\n\
                               WHERE substr(dt, 1, 7) = ? -- the month\nGROUP BY team";

    fn monthly() -> NamedQuery {
        NamedQuery {
            name: "cost_per_team_monthly".into(),
            sql: MONTHLY_SQL.into(),
            params: vec![QueryParam {
                name: "month".into(),
                doc: "YYYY-MM: the month".into(),
            }],
            description: "Lambda cost per team in a month".into(),
        }
    }

    fn monthly_results() -> (Vec<ColumnInfo>, Vec<Row>) {
        let columns = vec![info("team", "varchar"), info("total", "decimal")];
        let rows = vec![
            header(&columns),
            row(&[Some("payments"), Some("1.250000000")]),
        ];
        (columns, rows)
    }

    const TARGET: Target<'static> = Target {
        workgroup: "purser",
        database: "purser_lake",
    };

    const FAST: Polling = Polling {
        timeout: Duration::from_secs(5),
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    };

    fn params(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[tokio::test]
    async fn sends_the_sql_unchanged_and_the_parameters_apart_as_literals() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::succeeding(columns, rows);
        let mut query = monthly();
        query.sql = "SELECT ? AS a, 'it''s' AS b, ? AS c -- what? \n".into();
        query.params.push(QueryParam {
            name: "other".into(),
            doc: String::new(),
        });
        let given = params(&["2026-11", "x' OR '1'='1"]);
        run_query(&fake, &TARGET, &FAST, &query, &given)
            .await
            .unwrap();
        let Call::Start {
            sql,
            database,
            workgroup,
            parameters,
        } = &fake.calls()[0]
        else {
            panic!("the first call starts the query: {:?}", fake.calls());
        };
        assert_eq!(sql, &query.sql, "the SQL text exactly as written");
        assert!(!sql.contains("2026-11"), "no value in the SQL text");
        assert_eq!(parameters, &["'2026-11'", "'x'' OR ''1''=''1'"]);
        assert_eq!(database, "purser_lake");
        assert_eq!(workgroup, "purser");
    }

    #[tokio::test]
    async fn refuses_a_wrong_number_of_parameters_before_any_call() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::succeeding(columns, rows);
        for given in [params(&[]), params(&["2026-11", "2026-12"])] {
            let err = run_query(&fake, &TARGET, &FAST, &monthly(), &given)
                .await
                .unwrap_err();
            let QueryError::InvalidParameters(message) = err else {
                panic!("expected InvalidParameters, got {err:?}");
            };
            assert_eq!(
                message,
                format!(
                    "cost_per_team_monthly takes 1 parameter: month (YYYY-MM: the month); {} given",
                    given.len()
                )
            );
        }
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());

        let mut none = monthly();
        none.params.clear();
        let err = run_query(&fake, &TARGET, &FAST, &none, &params(&["x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::InvalidParameters(ref m) if m == "cost_per_team_monthly takes no parameters; 1 given"),
            "{err:?}"
        );
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn reads_2500_rows_over_3_pages_skipping_the_header_once() {
        let columns = vec![info("n", "integer"), info("team", "varchar")];
        let mut rows = vec![header(&columns)];
        rows.extend((0..2_500).map(|n| {
            let n = n.to_string();
            row(&[Some(&n), Some("payments")])
        }));
        let fake = FakeAthena::succeeding(columns, rows);
        let result = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap();

        let pages: Vec<_> = fake
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Page { .. }))
            .collect();
        assert_eq!(
            pages,
            [
                Call::Page {
                    token: None,
                    max_results: 1_000
                },
                Call::Page {
                    token: Some("from-1000".into()),
                    max_results: 1_000
                },
                Call::Page {
                    token: Some("from-2000".into()),
                    max_results: 1_000
                },
            ]
        );
        assert_eq!(
            result.columns,
            [
                Column {
                    name: "n".into(),
                    column_type: ColumnType::Integer
                },
                Column {
                    name: "team".into(),
                    column_type: ColumnType::String
                },
            ]
        );
        assert_eq!(result.rows.len(), 2_500);
        let numbers: Vec<Value> = result.rows.iter().map(|r| r[0].clone()).collect();
        let expected: Vec<Value> = (0..2_500).map(Value::from).collect();
        assert_eq!(
            numbers, expected,
            "every row once, in order, no header among them"
        );
        assert_eq!(result.bytes_scanned, Some(42));
    }

    #[tokio::test]
    async fn a_result_without_rows_has_its_columns() {
        let columns = vec![info("team", "varchar"), info("total", "decimal")];
        let rows = vec![header(&columns)];
        let fake = FakeAthena::succeeding(columns, rows);
        let result = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap();
        assert!(result.rows.is_empty());
        assert_eq!(result.columns.len(), 2);
        assert_eq!(result.columns[1].column_type, ColumnType::Decimal);
    }

    #[tokio::test]
    async fn converts_athena_types_and_nulls() {
        let columns = vec![
            info("s", "varchar"),
            info("c", "char(3)"),
            info("i", "integer"),
            info("b", "bigint"),
            info("d", "decimal(38,9)"),
            info("f", "double"),
            info("r", "real"),
            info("t", "boolean"),
            info("day", "date"),
            info("at", "timestamp"),
            info("tags", "array(varchar)"),
        ];
        let rows = vec![
            header(&columns),
            row(&[
                Some("payments"),
                Some("abc"),
                Some("-7"),
                Some("9223372036854775807"),
                Some("12345678901234567890.123456789"),
                Some("1.25"),
                Some("1.0E-5"),
                Some("true"),
                Some("2026-11-21"),
                Some("2026-11-21 10:00:00.000"),
                Some("[a, b]"),
            ]),
            row(&[
                Some(""),
                None,
                None,
                None,
                None,
                Some("Infinity"),
                Some("NaN"),
                Some("false"),
                None,
                None,
                None,
            ]),
        ];
        let fake = FakeAthena::succeeding(columns, rows);
        let result = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap();
        let types: Vec<ColumnType> = result.columns.iter().map(|c| c.column_type).collect();
        use ColumnType::*;
        assert_eq!(
            types,
            [
                String, String, Integer, Integer, Decimal, Double, Double, Boolean, Date,
                Timestamp, Other
            ]
        );
        assert_eq!(
            result.rows,
            [
                vec![
                    json!("payments"),
                    json!("abc"),
                    json!(-7),
                    json!(9_223_372_036_854_775_807_i64),
                    json!("12345678901234567890.123456789"),
                    json!(1.25),
                    json!(0.00001),
                    json!(true),
                    json!("2026-11-21"),
                    json!("2026-11-21 10:00:00.000"),
                    json!("[a, b]"),
                ],
                vec![
                    json!(""),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    json!("Infinity"),
                    json!("NaN"),
                    json!(false),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            ]
        );
    }

    #[test]
    fn maps_athena_type_names() {
        use ColumnType::*;
        for (athena, expected) in [
            ("varchar", String),
            ("VARCHAR(64)", String),
            ("char", String),
            ("string", String),
            ("tinyint", Integer),
            ("smallint", Integer),
            ("integer", Integer),
            ("int", Integer),
            ("bigint", Integer),
            ("decimal", Decimal),
            ("decimal(18,9)", Decimal),
            ("double", Double),
            ("real", Double),
            ("float", Double),
            ("boolean", Boolean),
            ("date", Date),
            ("timestamp", Timestamp),
            ("timestamp(3)", Timestamp),
            ("timestamp with time zone", Timestamp),
            ("time", Other),
            ("varbinary", Other),
            ("map(varchar, bigint)", Other),
            ("row(a integer)", Other),
            ("json", Other),
            ("", Other),
        ] {
            assert_eq!(column_type(athena), expected, "{athena}");
        }
    }

    #[test]
    fn text_that_does_not_read_as_its_type_stays_text() {
        assert_eq!(typed_value("12.5", ColumnType::Integer), json!("12.5"));
        assert_eq!(
            typed_value("99999999999999999999", ColumnType::Integer),
            json!("99999999999999999999")
        );
        assert_eq!(
            typed_value("-Infinity", ColumnType::Double),
            json!("-Infinity")
        );
        assert_eq!(typed_value("TRUE", ColumnType::Boolean), json!("TRUE"));
        assert_eq!(typed_value("0.10", ColumnType::Decimal), json!("0.10"));
    }

    #[test]
    fn a_short_row_is_padded_with_nulls() {
        let columns = vec![
            Column {
                name: "a".into(),
                column_type: ColumnType::String,
            },
            Column {
                name: "b".into(),
                column_type: ColumnType::Integer,
            },
        ];
        assert_eq!(
            typed_row(&row(&[Some("x")]), &columns),
            [json!("x"), Value::Null]
        );
        assert_eq!(
            typed_row(&row(&[Some("x"), Some("1"), Some("extra")]), &columns),
            [json!("x"), json!(1)]
        );
    }

    #[tokio::test]
    async fn polls_until_the_query_succeeds_and_keeps_the_bytes_scanned() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::new(
            vec![
                execution(QueryExecutionState::Queued),
                execution(QueryExecutionState::Running),
                execution(QueryExecutionState::Running),
                succeeded(Some(10_485_760)),
            ],
            columns,
            rows,
        );
        let result = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap();
        assert_eq!(result.bytes_scanned, Some(10_485_760));
        assert_eq!(result.rows, [vec![json!("payments"), json!("1.250000000")]]);
        let calls = fake.calls();
        let polls = calls
            .iter()
            .filter(|c| **c == Call::Execution(ID.into()))
            .count();
        assert_eq!(polls, 4);
        assert!(!calls.contains(&Call::Stop(ID.into())));
        assert!(
            matches!(calls.last(), Some(Call::Page { .. })),
            "results are read after the last poll: {calls:?}"
        );
    }

    #[tokio::test]
    async fn bytes_scanned_are_absent_when_athena_does_not_say() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::new(vec![succeeded(None)], columns, rows);
        let result = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap();
        assert_eq!(result.bytes_scanned, None);
    }

    #[tokio::test]
    async fn a_failed_query_says_why_in_athenas_words() {
        let (columns, rows) = monthly_results();
        let reason = "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved";
        let error = AthenaError::builder()
            .error_category(2)
            .error_type(1006)
            .retryable(false)
            .error_message(reason)
            .build();
        let fake = FakeAthena::new(
            vec![
                execution(QueryExecutionState::Running),
                ended(QueryExecutionState::Failed, reason, Some(error)),
            ],
            columns,
            rows,
        );
        let err = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap_err();
        let QueryError::Failed(message) = err else {
            panic!("expected Failed, got {err:?}");
        };
        assert_eq!(
            message,
            format!("{reason} (error type 1006, user error, query execution {ID})")
        );
        assert!(
            !fake
                .calls()
                .iter()
                .any(|c| matches!(c, Call::Page { .. } | Call::Stop(_))),
            "no results read, nothing to stop: {:?}",
            fake.calls()
        );
    }

    #[test]
    fn a_failure_reason_keeps_an_error_message_that_says_more() {
        let error = AthenaError::builder()
            .error_category(1)
            .error_message("Internal error while reading s3://lake/x.parquet")
            .build();
        assert_eq!(
            failure_reason(ID, Some("Query failed"), Some(&error)),
            format!(
                "Query failed: Internal error while reading s3://lake/x.parquet \
                 (system error, query execution {ID})"
            )
        );
        assert_eq!(
            failure_reason(ID, None, None),
            format!("Athena gave no reason (query execution {ID})")
        );
        assert_eq!(
            failure_reason(ID, Some(""), None),
            format!("Athena gave no reason (query execution {ID})")
        );
    }

    #[tokio::test]
    async fn a_cancelled_query_says_so_with_its_reason() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::new(
            vec![ended(
                QueryExecutionState::Cancelled,
                "Query cancelled by user",
                None,
            )],
            columns,
            rows,
        );
        let err = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::Cancelled(ref m) if m == &format!("Query cancelled by user (query execution {ID})")),
            "{err:?}"
        );
        assert!(!fake.calls().iter().any(|c| matches!(c, Call::Page { .. })));
    }

    #[tokio::test]
    async fn a_query_that_runs_past_the_timeout_is_stopped() {
        let (columns, rows) = monthly_results();
        let fake = FakeAthena::new(vec![execution(QueryExecutionState::Running)], columns, rows);
        let polling = Polling {
            timeout: Duration::from_millis(50),
            first_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(8),
        };
        let began = std::time::Instant::now();
        let err = run_query(&fake, &TARGET, &polling, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap_err();
        let waited = began.elapsed();
        assert!(matches!(err, QueryError::Timeout(1)), "{err:?}");
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        let calls = fake.calls();
        assert_eq!(calls.last(), Some(&Call::Stop(ID.into())), "{calls:?}");
        let polls = calls
            .iter()
            .filter(|c| **c == Call::Execution(ID.into()))
            .count();
        assert!(polls >= 3, "polled {polls} times");
        assert!(!calls.iter().any(|c| matches!(c, Call::Page { .. })));
    }

    #[tokio::test]
    async fn a_poll_that_fails_stops_the_query_and_says_why() {
        let (columns, rows) = monthly_results();
        let mut fake = FakeAthena::succeeding(columns, rows);
        fake.polls_fail = true;
        let err = run_query(&fake, &TARGET, &FAST, &monthly(), &params(&["2026-11"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::Unavailable(ref m) if m == "dispatch failure"),
            "{err:?}"
        );
        assert_eq!(fake.calls().last(), Some(&Call::Stop(ID.into())));
    }

    #[test]
    fn polls_back_off_doubling_to_a_cap() {
        let polling = Polling::default();
        let delays: Vec<u64> = (1..=7)
            .map(|n| u64::try_from(polling.delay(n).as_millis()).unwrap())
            .collect();
        assert_eq!(delays, [200, 400, 800, 1_600, 2_000, 2_000, 2_000]);
        assert_eq!(polling.delay(500), Duration::from_secs(2));
        assert_eq!(polling.timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_timeout_is_told_in_whole_seconds_rounded_up() {
        let mut polling = Polling::default();
        assert_eq!(polling.timeout_secs(), 60);
        polling.timeout = Duration::from_millis(100);
        assert_eq!(polling.timeout_secs(), 1);
        polling.timeout = Duration::from_millis(2_500);
        assert_eq!(polling.timeout_secs(), 3);
    }

    #[test]
    fn parameters_are_varchar_literals_and_none_are_sent_as_none() {
        assert_eq!(varchar_literal("2026-11"), "'2026-11'");
        assert_eq!(varchar_literal("O'Brien"), "'O''Brien'");
        assert_eq!(varchar_literal(""), "''");
        assert_eq!(varchar_literal("a\\'b"), "'a\\''b'");
        assert_eq!(execution_parameters(&[]), None);
        assert_eq!(
            execution_parameters(&["'a'".to_owned()]),
            Some(vec!["'a'".to_owned()])
        );
    }

    #[test]
    fn the_engine_keeps_its_settings() {
        use aws_sdk_athena::config::{BehaviorVersion, Region};
        let config = aws_sdk_athena::Config::builder()
            .http_client(crate::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let engine = AthenaEngine::new(
            aws_sdk_athena::Client::from_conf(config),
            "purser",
            "purser_lake",
        )
        .with_timeout(Duration::from_secs(20))
        .with_poll_delays(Duration::from_millis(100), Duration::from_millis(50));
        assert_eq!(engine.workgroup(), "purser");
        assert_eq!(engine.database(), "purser_lake");
        assert_eq!(engine.timeout(), Duration::from_secs(20));
        assert_eq!(engine.polling.max_delay, Duration::from_millis(100));
    }

    /// The real client, pointed at a port where nothing listens: the error
    /// says why, with the SDK's whole chain of causes.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_with_its_cause() {
        use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
        let config = aws_sdk_athena::Config::builder()
            .http_client(crate::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .build();
        let engine = AthenaEngine::new(
            aws_sdk_athena::Client::from_conf(config),
            "purser",
            "purser_lake",
        );
        let err = engine
            .run(&monthly(), &params(&["2026-11"]))
            .await
            .unwrap_err();
        let QueryError::Unavailable(message) = err else {
            panic!("expected Unavailable, got {err:?}");
        };
        eprintln!("{message}");
        assert!(
            message.starts_with("StartQueryExecution in workgroup purser: "),
            "{message}"
        );
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
