//! The QueryEngine port: Purser's named queries, run on Athena in AWS and
//! on Apache DataFusion over the local lake, from one SQL text.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// A query shipped in infra/queries/<name>.sql. Parameters are Athena's
/// positional `?`, documented in the file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuery {
    pub name: String,
    pub sql: String,
    /// The parameters, in order, with their documentation.
    pub params: Vec<QueryParam>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    pub name: String,
    pub doc: String,
}

/// A column's type, as both engines report it (simplified to what JSON carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Integer,
    Decimal,
    Double,
    Boolean,
    Date,
    Timestamp,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// Rows of typed values: strings, numbers (decimals as strings, to keep
/// every digit), booleans, nulls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// Bytes the engine scanned, where it says (Athena bills by them).
    pub bytes_scanned: Option<u64>,
}

impl QueryResult {
    /// Rows as objects keyed by column name (`--output json`).
    pub fn objects(&self) -> Vec<serde_json::Map<String, Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.name.clone(), v.clone()))
                    .collect()
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    InvalidParameters(String),
    #[error("the query failed: {0}")]
    Failed(String),
    #[error("the query was cancelled: {0}")]
    Cancelled(String),
    #[error("the query did not finish within {0} seconds")]
    Timeout(u64),
    #[error("the query engine could not be reached: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait QueryEngine: Send + Sync {
    /// Runs `query` with `params` bound to its `?` placeholders in order
    /// (never spliced into the SQL text).
    async fn run(&self, query: &NamedQuery, params: &[String]) -> Result<QueryResult, QueryError>;
}
