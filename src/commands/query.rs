//! `purser query …`: the named queries of infra/queries (or any SQL in
//! Athena's dialect) on the local lake with DataFusion, or on Athena (`--athena`).

use std::time::Duration;

use anyhow::bail;
use purser_core::lake::named_queries;
use purser_core::ports::{NamedQuery, QueryEngine, QueryError, QueryResult};
use purser_query::LocalQueryEngine;
use serde_json::Value;

use crate::cli::{Output, QueryArgs};
use crate::output::{print, print_json, table};

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    if args.list {
        return list(args.output);
    }
    let query = match (&args.name, &args.sql) {
        (Some(name), None) => match named_queries::named(name) {
            Some(query) => query,
            None => bail!(
                "there is no named query {name:?}; the named queries are: {} \
                 (`purser query --list` shows their parameters)",
                named_queries::names().join(", ")
            ),
        },
        (None, Some(sql)) => purser_query::ad_hoc(sql),
        _ => bail!(
            "name a query or give --sql TEXT; the named queries are: {} \
             (`purser query --list` shows their parameters)",
            named_queries::names().join(", ")
        ),
    };
    if args.params.len() != query.params.len() {
        bail!("{}", missing_params(&query, args.params.len()));
    }
    let result = if args.athena {
        on_athena(&args, &query).await?
    } else {
        let engine = LocalQueryEngine::new(&args.data_dir)?;
        match engine.run(&query, &args.params).await {
            Ok(result) => result,
            Err(QueryError::InvalidParameters(m)) => bail!("{m}"),
            Err(e) => bail!("{}: {e}", query.name),
        }
    };
    match args.output {
        Output::Json => print_json(&result.objects()),
        Output::Table => {
            print(&format!("{}\n", result_table(&result)))?;
            let n = result.rows.len();
            eprintln!("{n} row{}", if n == 1 { "" } else { "s" });
            Ok(())
        }
    }
}

/// How long a query may run on Athena before it is stopped.
const ATHENA_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the query on Athena, in the workgroup and database given, with the
/// caller's AWS credentials.
async fn on_athena(args: &QueryArgs, query: &NamedQuery) -> anyhow::Result<QueryResult> {
    let mut loader = purser_aws::config_loader();
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!("no AWS region for Athena: give --region, or set AWS_REGION (or a profile's region)");
    }
    let engine = purser_aws::AthenaEngine::from_config(&config, &args.workgroup, &args.database)
        .with_timeout(ATHENA_TIMEOUT);
    match engine.run(query, &args.params).await {
        Ok(result) => Ok(result),
        Err(QueryError::InvalidParameters(m)) => bail!("{m}"),
        Err(e @ QueryError::Unavailable(_)) => bail!(
            "{} on Athena (workgroup {}, database {}): {e}\n  next:  check your AWS credentials \
             (`aws sts get-caller-identity`), --region, and that the workgroup exists",
            query.name,
            args.workgroup,
            args.database
        ),
        Err(e) => bail!(
            "{} on Athena (workgroup {}, database {}): {e}",
            query.name,
            args.workgroup,
            args.database
        ),
    }
}

/// What a query takes, as `--param` flags to give.
fn missing_params(query: &NamedQuery, given: usize) -> String {
    let needs = query
        .params
        .iter()
        .map(|p| format!("  --param <{}>  {}", p.name, p.doc))
        .collect::<Vec<_>>()
        .join("\n");
    match query.params.len() {
        0 => format!("{} takes no --param; {given} given", query.name),
        n => format!(
            "{} takes {n} --param, in this order; {given} given:\n{needs}",
            query.name
        ),
    }
}

fn list(output: Output) -> anyhow::Result<()> {
    let all = named_queries::all();
    match output {
        Output::Json => {
            let list: Vec<Value> = all
                .iter()
                .map(|q| {
                    serde_json::json!({
                        "name": q.name,
                        "description": q.description,
                        "params": q.params.iter().map(|p| serde_json::json!({"name": p.name, "doc": p.doc})).collect::<Vec<_>>(),
                        "columns": named_queries::returns(q).iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            print_json(&list)
        }
        Output::Table => {
            let mut text = String::new();
            for (i, q) in all.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                let usage: String = q
                    .params
                    .iter()
                    .map(|p| format!(" --param <{}>", p.name))
                    .collect();
                text.push_str(&format!("{}{usage}\n", q.name));
                // Its first sentence says what it answers.
                let first = q.description.lines().next().unwrap_or_default();
                let sentence = first.split_once(". ").map_or(first, |(s, _)| s);
                text.push_str(&format!("  {}.\n", sentence.trim_end_matches('.')));
                for p in &q.params {
                    text.push_str(&format!("  <{}>  {}\n", p.name, p.doc));
                }
                let columns: Vec<String> = named_queries::returns(q)
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                text.push_str(&format!("  returns: {}\n", columns.join(", ")));
            }
            print(&text)
        }
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn result_table(result: &QueryResult) -> comfy_table::Table {
    let header: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let rows = result
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    table(&header, rows)
}
