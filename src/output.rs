//! Tables for people, JSON for scripts.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};
use serde_json::Value;

pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
}

/// A table whose columns `right` (amounts, counts) are aligned right.
pub fn table_right(header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> Table {
    let mut table = table(header, rows);
    for i in right {
        if let Some(column) = table.column_mut(*i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// One record as `KEY  value` lines, the keys aligned.
pub fn record(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Writes to stdout; a reader that went away (`| head`) is no error.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A line of text on stdout.
pub fn println(text: impl std::fmt::Display) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}

/// An amount with its currency: `1.080007 USD`.
pub fn money(amount: &Value, currency: &str) -> String {
    match amount {
        Value::Null => "-".into(),
        Value::String(s) => format!("{s} {currency}"),
        other => format!("{other} {currency}"),
    }
}

/// A JSON value as a cell: text as is, null as `-`, anything else as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_carries_its_currency() {
        assert_eq!(money(&json!("1.080007"), "USD"), "1.080007 USD");
        assert_eq!(money(&json!(2), "USD"), "2 USD");
        assert_eq!(money(&Value::Null, "USD"), "-");
    }

    #[test]
    fn records_align_their_keys() {
        let text = record(&[("ID", "r-1".into()), ("STATE", "ready".into())]);
        assert_eq!(text, "ID     r-1\nSTATE  ready");
    }
}
