//! Purser's local `QueryEngine`: the named Athena queries of infra/queries
//! run on Apache DataFusion over the local lake's files.
//!
//! Tables, as Athena has them:
//! - `invocations`, `deployments`, `usage` and `leases`: listing tables over
//!   `<data-dir>/lake/<table>/dt=YYYY-MM-DD/*.json` (newline-delimited JSON,
//!   Hive partitions on `dt`, a string), with the explicit schema of the
//!   Glue tables, so an empty or missing folder is an empty table;
//! - `accounts (account_id, team)`: Purser's registry, from the `accounts`
//!   table of `<data-dir>/purser.db` (or rows the caller gives);
//! - `cur`: the CUR 2.0 columns the queries use, over
//!   `<data-dir>/lake/cur/*.json` if that folder exists, empty otherwise.
//!
//! Athena's positional `?` placeholders become DataFusion's `$1, $2, …`,
//! and the parameters are bound as strings, never spliced into the SQL.

pub mod fixture;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use purser_core::lake::named_queries::{numbered_placeholders, placeholders};
use purser_core::ports::{
    Column, ColumnType, NamedQuery, QueryEngine, QueryError, QueryParam, QueryResult,
};
use serde_json::{Number, Value};

/// The local database file of `purser up` (see purser-local's `DB_FILE`).
pub const DB_FILE: &str = "purser.db";

/// The lake's tables read from NDJSON files, partitioned by `dt`.
pub const LAKE_TABLES: [&str; 4] = ["invocations", "deployments", "usage", "leases"];

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// The columns of `invocations` (shared/core/src/lake/records.rs `InvocationRecord`,
/// the Glue table of infra/template.yaml), without the partition `dt`.
pub fn invocations_schema() -> Schema {
    Schema::new(vec![
        Field::new("schema_version", DataType::Int32, true),
        utf8("account_id"),
        utf8("team"),
        utf8("region"),
        utf8("function_name"),
        utf8("architecture"),
        Field::new("memory_mb", DataType::Int32, true),
        utf8("request_id"),
        utf8("timestamp"),
        Field::new("duration_ms", DataType::Float64, true),
        Field::new("billed_duration_ms", DataType::Int64, true),
        Field::new("max_memory_used_mb", DataType::Int32, true),
        Field::new("init_duration_ms", DataType::Float64, true),
        Field::new("cost_usd", DataType::Float64, true),
    ])
}

/// The columns of `deployments` (`DeploymentRecord`), without `dt`.
pub fn deployments_schema() -> Schema {
    Schema::new(vec![
        Field::new("schema_version", DataType::Int32, true),
        utf8("account_id"),
        utf8("team"),
        utf8("region"),
        utf8("source"),
        utf8("stack"),
        utf8("status"),
        utf8("status_reason"),
        utf8("commit"),
        utf8("ref"),
        utf8("pipeline"),
        utf8("started_at"),
        utf8("finished_at"),
        Field::new("duration_s", DataType::Float64, true),
        utf8("timestamp"),
    ])
}

/// The columns of `usage` (`UsageRecord`: usage beyond Lambda, priced as
/// it happens), without `dt`.
pub fn usage_schema() -> Schema {
    Schema::new(vec![
        Field::new("schema_version", DataType::Int32, true),
        utf8("usage_id"),
        utf8("account_id"),
        utf8("team"),
        utf8("region"),
        utf8("service"),
        utf8("resource"),
        utf8("usage_type"),
        utf8("unit"),
        Field::new("quantity", DataType::Float64, true),
        Field::new("cost_usd", DataType::Float64, true),
        utf8("timestamp"),
        utf8("end_timestamp"),
        utf8("source"),
    ])
}

/// The columns of `leases` (`LeaseRecord`: each lease's start and end),
/// without `dt`.
pub fn leases_schema() -> Schema {
    Schema::new(vec![
        Field::new("schema_version", DataType::Int32, true),
        utf8("lease_id"),
        utf8("account_id"),
        utf8("team"),
        utf8("template"),
        utf8("event"),
        utf8("cause"),
        utf8("timestamp"),
    ])
}

/// The CUR 2.0 columns the named queries use.
pub fn cur_schema() -> Schema {
    Schema::new(vec![
        utf8("line_item_usage_account_id"),
        Field::new("line_item_unblended_cost", DataType::Float64, true),
        Field::new(
            "line_item_usage_start_date",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        utf8("line_item_product_code"),
        // Which part of the product (`USE1-BoxUsage:g5.xlarge`,
        // `NatGateway-Bytes`, …): tells EC2 instances from NAT gateways.
        utf8("line_item_usage_type"),
        // The export's partition (its BILLING_PERIOD=YYYY-MM folder) in
        // Athena; locally a column of each line.
        utf8("billing_period"),
    ])
}

fn accounts_schema() -> Schema {
    Schema::new(vec![utf8("account_id"), utf8("team")])
}

fn failed(e: impl std::fmt::Display) -> QueryError {
    QueryError::Failed(e.to_string())
}

/// DataFusion over a data directory's lake. Cheap to share; each query
/// lists the files again, so it sees every record appended before it.
pub struct LocalQueryEngine {
    ctx: SessionContext,
    data_dir: PathBuf,
}

impl std::fmt::Debug for LocalQueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueryEngine")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl LocalQueryEngine {
    /// The engine over `<data_dir>/lake/`, with `accounts` read from
    /// `<data_dir>/purser.db` (empty when there is no database yet).
    /// Creates the lake's table folders if they are missing.
    pub fn new(data_dir: &Path) -> Result<Self, QueryError> {
        let accounts = registry_accounts(data_dir)?;
        Self::with_accounts(data_dir, accounts)
    }

    /// The engine over `<data_dir>/lake/`, with `accounts` holding these
    /// `(account_id, team)` rows.
    pub fn with_accounts(
        data_dir: &Path,
        accounts: Vec<(String, String)>,
    ) -> Result<Self, QueryError> {
        // information_schema lets ad hoc SQL list the tables and columns.
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        let lake = data_dir.join("lake");
        for (name, schema) in [
            (LAKE_TABLES[0], invocations_schema()),
            (LAKE_TABLES[1], deployments_schema()),
            (LAKE_TABLES[2], usage_schema()),
            (LAKE_TABLES[3], leases_schema()),
        ] {
            let dir = lake.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| {
                QueryError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
            let table = listing_table(&dir, schema, true)?;
            ctx.register_table(name, table).map_err(failed)?;
        }
        let cur_dir = lake.join("cur");
        let cur: Arc<dyn datafusion::catalog::TableProvider> = if cur_dir.is_dir() {
            listing_table(&cur_dir, cur_schema(), false)?
        } else {
            Arc::new(MemTable::try_new(Arc::new(cur_schema()), vec![vec![]]).map_err(failed)?)
        };
        ctx.register_table("cur", cur).map_err(failed)?;
        ctx.register_table("accounts", accounts_table(accounts)?)
            .map_err(failed)?;
        Ok(Self {
            ctx,
            data_dir: data_dir.to_path_buf(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs SQL written for Athena with `?` placeholders (ad hoc, not a
    /// named query): one parameter per placeholder.
    pub async fn sql(&self, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
        self.run(&ad_hoc(sql), params).await
    }
}

/// An ad hoc query as a `NamedQuery` named `sql`, its parameters `1`, `2`, …
pub fn ad_hoc(sql: &str) -> NamedQuery {
    let mut query = purser_core::lake::named_queries::parse("sql", sql);
    let count = placeholders(sql).len();
    if query.params.len() != count {
        query.params = (1..=count)
            .map(|n| QueryParam {
                name: n.to_string(),
                doc: format!("the value of the {}th `?`", n),
            })
            .collect();
    }
    query
}

fn listing_table(
    dir: &Path,
    schema: Schema,
    partitioned: bool,
) -> Result<Arc<ListingTable>, QueryError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| QueryError::Unavailable(format!("{}: {e}", dir.display())))?;
    let url = ListingTableUrl::parse(format!("{}/", dir.display())).map_err(failed)?;
    let mut options =
        ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json");
    if partitioned {
        options = options.with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)]);
    }
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::new(schema));
    Ok(Arc::new(ListingTable::try_new(config).map_err(failed)?))
}

fn accounts_table(accounts: Vec<(String, String)>) -> Result<Arc<MemTable>, QueryError> {
    let schema: SchemaRef = Arc::new(accounts_schema());
    let (ids, teams): (Vec<String>, Vec<String>) = accounts.into_iter().unzip();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(teams)) as ArrayRef,
        ],
    )
    .map_err(failed)?;
    Ok(Arc::new(
        MemTable::try_new(schema, vec![vec![batch]]).map_err(failed)?,
    ))
}

/// `(account_id, team)` of every account of the local registry that has an
/// account id, the newest request's team for an account lent more than
/// once, or none when `purser up` has not created the database yet.
pub fn registry_accounts(data_dir: &Path) -> Result<Vec<(String, String)>, QueryError> {
    use rusqlite::{Connection, OpenFlags};
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let unavailable =
        |e: rusqlite::Error| QueryError::Unavailable(format!("{}: {e}", path.display()));
    let db = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    let has_accounts: bool = db
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'accounts'",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if !has_accounts {
        return Ok(Vec::new());
    }
    let mut statement = db
        // An account lent again from a pool is held by several requests:
        // its team is the newest's (SQLite takes a bare column from the
        // row of max()), as the Store's account_by_account_id answers.
        .prepare(
            "SELECT account_id, team, max(created_at) FROM accounts \
             WHERE account_id IS NOT NULL GROUP BY account_id ORDER BY account_id",
        )
        .map_err(unavailable)?;
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)
}

/// The error for a wrong number of parameters, naming those expected.
fn wrong_parameters(query: &NamedQuery, given: usize) -> QueryError {
    let expected = query
        .params
        .iter()
        .map(|p| {
            if p.doc.is_empty() {
                p.name.clone()
            } else {
                format!("{} ({})", p.name, p.doc)
            }
        })
        .collect::<Vec<_>>();
    let needs = match expected.len() {
        0 => "takes no parameters".to_string(),
        1 => format!("takes 1 parameter: {}", expected[0]),
        n => format!("takes {n} parameters, in order: {}", expected.join(", ")),
    };
    QueryError::InvalidParameters(format!("{} {needs}; {given} given", query.name))
}

fn datafusion_error(e: DataFusionError) -> QueryError {
    match e {
        DataFusionError::Plan(m) | DataFusionError::SQL(_, Some(m)) => QueryError::Failed(m),
        other => QueryError::Failed(other.to_string()),
    }
}

#[async_trait]
impl QueryEngine for LocalQueryEngine {
    async fn run(&self, query: &NamedQuery, params: &[String]) -> Result<QueryResult, QueryError> {
        let count = placeholders(&query.sql).len();
        if params.len() != count || params.len() != query.params.len() {
            return Err(wrong_parameters(query, params.len()));
        }
        let sql = numbered_placeholders(&query.sql);
        // Queries only: no DDL (CREATE, DROP), no DML (INSERT, COPY), no SET.
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut frame = self
            .ctx
            .sql_with_options(&sql, read_only)
            .await
            .map_err(datafusion_error)?;
        if !params.is_empty() {
            let values: Vec<ScalarValue> = params
                .iter()
                .map(|p| ScalarValue::Utf8(Some(p.clone())))
                .collect();
            frame = frame.with_param_values(values).map_err(datafusion_error)?;
        }
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await.map_err(datafusion_error)?;
        to_result(&schema, &batches)
    }
}

/// The local lake for a long-running process (`purser up`'s spend function
/// and API): each query opens the engine afresh, so it sees the lake's
/// folders (a CUR export dropped in later) and the registry as they are now.
#[derive(Debug, Clone)]
pub struct LocalLake {
    data_dir: PathBuf,
}

impl LocalLake {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }
}

#[async_trait]
impl QueryEngine for LocalLake {
    async fn run(&self, query: &NamedQuery, params: &[String]) -> Result<QueryResult, QueryError> {
        LocalQueryEngine::new(&self.data_dir)?
            .run(query, params)
            .await
    }
}

fn column_type(data_type: &DataType) -> ColumnType {
    use DataType::*;
    match data_type {
        Utf8 | LargeUtf8 | Utf8View => ColumnType::String,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => ColumnType::Integer,
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => ColumnType::Decimal,
        Float16 | Float32 | Float64 => ColumnType::Double,
        Boolean => ColumnType::Boolean,
        Date32 | Date64 => ColumnType::Date,
        Timestamp(..) => ColumnType::Timestamp,
        Dictionary(_, value) => column_type(value),
        _ => ColumnType::Other,
    }
}

/// Arrow batches as `QueryResult`: strings and booleans as such, integers
/// and doubles as JSON numbers (a double that is not finite as a string),
/// decimals, dates, timestamps and anything else as their text.
pub fn to_result(schema: &Schema, batches: &[RecordBatch]) -> Result<QueryResult, QueryError> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt64Type};

    let columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            column_type: column_type(f.data_type()),
        })
        .collect();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let options = FormatOptions::default().with_null("");
    for batch in batches {
        let start = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(columns.len())));
        for (array, column) in batch.columns().iter().zip(&columns) {
            let cells = &mut rows[start..];
            // Normalise the representation of each kind of column first.
            let values: Vec<Value> = match column.column_type {
                ColumnType::Integer if array.data_type() == &DataType::UInt64 => {
                    let a = array.as_primitive::<UInt64Type>();
                    (0..a.len())
                        .map(|i| (!a.is_null(i)).then(|| Value::from(a.value(i))))
                        .map(|v| v.unwrap_or(Value::Null))
                        .collect()
                }
                ColumnType::Integer => {
                    let a = cast(array, &DataType::Int64).map_err(failed)?;
                    let a = a.as_primitive::<Int64Type>();
                    (0..a.len())
                        .map(|i| (!a.is_null(i)).then(|| Value::from(a.value(i))))
                        .map(|v| v.unwrap_or(Value::Null))
                        .collect()
                }
                ColumnType::Double => {
                    let a = cast(array, &DataType::Float64).map_err(failed)?;
                    let a = a.as_primitive::<Float64Type>();
                    (0..a.len())
                        .map(|i| {
                            if a.is_null(i) {
                                Value::Null
                            } else {
                                let v = a.value(i);
                                Number::from_f64(v)
                                    .map_or_else(|| Value::String(v.to_string()), Value::Number)
                            }
                        })
                        .collect()
                }
                ColumnType::Boolean => {
                    let a = array.as_boolean();
                    (0..a.len())
                        .map(|i| {
                            if a.is_null(i) {
                                Value::Null
                            } else {
                                Value::Bool(a.value(i))
                            }
                        })
                        .collect()
                }
                _ => {
                    let formatter =
                        ArrayFormatter::try_new(array.as_ref(), &options).map_err(failed)?;
                    (0..array.len())
                        .map(|i| {
                            if array.is_null(i) {
                                Value::Null
                            } else {
                                Value::String(formatter.value(i).to_string())
                            }
                        })
                        .collect()
                }
            };
            for (cell, value) in cells.iter_mut().zip(values) {
                cell.push(value);
            }
        }
    }
    Ok(QueryResult {
        columns,
        rows,
        bytes_scanned: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_parameters_name_the_expected_ones() {
        let q = purser_core::lake::named_queries::named("cost_per_team_daily").unwrap();
        let QueryError::InvalidParameters(m) = wrong_parameters(&q, 1) else {
            panic!()
        };
        assert!(
            m.starts_with("cost_per_team_daily takes 2 parameters, in order: from (YYYY-MM-DD")
        );
        assert!(m.contains(", to (YYYY-MM-DD"), "{m}");
        assert!(m.ends_with("; 1 given"), "{m}");
        let QueryError::InvalidParameters(m) = wrong_parameters(&ad_hoc("SELECT 1"), 2) else {
            panic!()
        };
        assert_eq!(m, "sql takes no parameters; 2 given");
    }

    #[test]
    fn ad_hoc_queries_take_one_parameter_per_placeholder() {
        let q = ad_hoc("SELECT ? AS a, '?' AS b, ? AS c");
        assert_eq!(q.params.len(), 2);
        assert_eq!(q.params[1].name, "2");
    }
}
