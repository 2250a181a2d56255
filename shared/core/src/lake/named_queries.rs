//! The catalog of Purser's named queries: every `infra/queries/<name>.sql`,
//! compiled in, with the parameters and description its header documents.
//!
//! A file starts with a header of `--` comments: the description (what the
//! query answers), then one `-- @param NAME DOC` a parameter, in the order
//! of the query's `?` placeholders, then one `-- @returns COLUMN TYPE: DOC`
//! a column of the result. The same text runs on Athena (engine v3, Trino)
//! and on DataFusion locally.

use crate::ports::{NamedQuery, QueryParam};

/// The files of infra/queries, by name.
const FILES: &[(&str, &str)] = &[
    (
        "cost_per_team_daily",
        include_str!("../../../../infra/queries/cost_per_team_daily.sql"),
    ),
    (
        "cost_per_team_monthly",
        include_str!("../../../../infra/queries/cost_per_team_monthly.sql"),
    ),
    (
        "cost_per_service",
        include_str!("../../../../infra/queries/cost_per_service.sql"),
    ),
    (
        "cost_per_account",
        include_str!("../../../../infra/queries/cost_per_account.sql"),
    ),
    (
        "top_functions",
        include_str!("../../../../infra/queries/top_functions.sql"),
    ),
    (
        "cost_per_deployment",
        include_str!("../../../../infra/queries/cost_per_deployment.sql"),
    ),
    (
        "deployments_per_team",
        include_str!("../../../../infra/queries/deployments_per_team.sql"),
    ),
    (
        "cur_cost_per_team",
        include_str!("../../../../infra/queries/cur_cost_per_team.sql"),
    ),
    (
        "cost_per_function",
        include_str!("../../../../infra/queries/cost_per_function.sql"),
    ),
    (
        "stream_cost_per_account_day",
        include_str!("../../../../infra/queries/stream_cost_per_account_day.sql"),
    ),
    (
        "cur_cost_per_account_day",
        include_str!("../../../../infra/queries/cur_cost_per_account_day.sql"),
    ),
    (
        "cost_per_lease",
        include_str!("../../../../infra/queries/cost_per_lease.sql"),
    ),
];

/// The names of the named queries, in catalog order.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(name, _)| *name).collect()
}

/// Every named query, in catalog order.
pub fn all() -> Vec<NamedQuery> {
    FILES.iter().map(|(name, sql)| parse(name, sql)).collect()
}

/// The named query `name`, if there is one.
pub fn named(name: &str) -> Option<NamedQuery> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(name, sql)| parse(name, sql))
}

/// A column a query's header says it returns (`-- @returns NAME TYPE: DOC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedColumn {
    pub name: String,
    /// As the header writes it: `string`, `integer`, `decimal`, `double`.
    pub column_type: String,
    pub doc: String,
}

/// The header of a query's SQL text: its leading `--` lines.
fn header(sql: &str) -> impl Iterator<Item = &str> {
    sql.lines()
        .map(str::trim)
        .take_while(|l| l.starts_with("--"))
        .map(|l| l.trim_start_matches('-').trim())
}

/// Parses a query's SQL text (its header) into a `NamedQuery`. Works on
/// any SQL text: one without a header has no description and no documented
/// parameters.
pub fn parse(name: &str, sql: &str) -> NamedQuery {
    let mut description: Vec<&str> = Vec::new();
    let mut params = Vec::new();
    let mut in_description = true;
    for line in header(sql) {
        if let Some(rest) = line.strip_prefix("@param ") {
            in_description = false;
            let rest = rest.trim();
            let (name, doc) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            params.push(QueryParam {
                name: name.to_string(),
                doc: doc.trim().to_string(),
            });
        } else if line.starts_with('@') {
            in_description = false;
        } else if in_description {
            description.push(line);
        }
    }
    // Paragraphs (separated by empty comment lines) become lines.
    let description = description
        .split(|l| l.is_empty())
        .filter(|p| !p.is_empty())
        .map(|p| p.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    NamedQuery {
        name: name.to_string(),
        sql: sql.to_string(),
        params,
        description,
    }
}

/// The columns the header of `query` says it returns, in order.
pub fn returns(query: &NamedQuery) -> Vec<ReturnedColumn> {
    header(&query.sql)
        .filter_map(|l| l.strip_prefix("@returns "))
        .map(|rest| {
            let (head, doc) = rest.split_once(':').unwrap_or((rest, ""));
            let mut words = head.split_whitespace();
            ReturnedColumn {
                name: words.next().unwrap_or_default().to_string(),
                column_type: words.next().unwrap_or_default().to_string(),
                doc: doc.trim().to_string(),
            }
        })
        .collect()
}

/// The byte offsets of the positional `?` placeholders of `sql`: those
/// outside string literals ('…', with '' inside), quoted identifiers ("…"),
/// `--` line comments and `/* */` block comments.
pub fn placeholders(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                // To the closing quote; a doubled quote is an escaped one.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'?' => found.push(i),
            _ => {}
        }
        i += 1;
    }
    found
}

/// `sql` with its `?` placeholders numbered: `$1`, `$2`, … (DataFusion's
/// and PostgreSQL's style), leaving literals and comments as they are.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut last = 0;
    for (n, at) in placeholders(sql).into_iter().enumerate() {
        out.push_str(&sql[last..at]);
        out.push('$');
        out.push_str(&(n + 1).to_string());
        last = at + 1;
    }
    out.push_str(&sql[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_query_has_a_description_and_documents_each_placeholder() {
        let queries = all();
        assert_eq!(queries.len(), FILES.len());
        for q in &queries {
            assert!(
                q.description.len() > 40,
                "{}: the header describes what it answers",
                q.name
            );
            assert!(
                !q.description.contains('@'),
                "{}: {:?}",
                q.name,
                q.description
            );
            assert_eq!(
                placeholders(&q.sql).len(),
                q.params.len(),
                "{}: one `-- @param` per `?`",
                q.name
            );
            for p in &q.params {
                assert!(!p.doc.is_empty(), "{}: @param {} has a doc", q.name, p.name);
            }
            let names: HashSet<_> = q.params.iter().map(|p| &p.name).collect();
            assert_eq!(names.len(), q.params.len(), "{}: parameter names", q.name);
            let columns = returns(q);
            assert!(!columns.is_empty(), "{}: documents its columns", q.name);
            for c in &columns {
                assert!(
                    ["string", "integer", "decimal", "double"].contains(&c.column_type.as_str()),
                    "{}: column {} has type {:?}",
                    q.name,
                    c.name,
                    c.column_type
                );
                assert!(!c.doc.is_empty(), "{}: column {} has a doc", q.name, c.name);
            }
        }
        let names: HashSet<_> = queries.iter().map(|q| q.name.clone()).collect();
        assert_eq!(names.len(), queries.len(), "names are unique");
    }

    #[test]
    fn month_parameters_are_documented_as_yyyy_mm() {
        for q in all() {
            for p in &q.params {
                if p.name.contains("month") {
                    assert!(p.doc.starts_with("YYYY-MM:"), "{}: {}", q.name, p.doc);
                }
            }
        }
        let monthly = named("cost_per_team_monthly").unwrap();
        assert_eq!(
            monthly
                .params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["from_month", "to_month"]
        );
    }

    #[test]
    fn named_finds_queries_by_name_only() {
        assert_eq!(named("top_functions").unwrap().name, "top_functions");
        assert!(named("top_function").is_none());
        assert!(named("").is_none());
        assert_eq!(names().len(), all().len());
    }

    #[test]
    fn the_header_is_parsed_into_description_params_and_columns() {
        let q = parse(
            "q",
            "-- What it answers,\n-- on two lines.\n--\n-- A second paragraph.\n--\n\
             -- @param month YYYY-MM: the month\n-- @param  limit  integer: how many\n\
             -- @returns team string: the team\n-- @returns n integer\n\
             SELECT ? AS a, ? AS b -- @param not_a_param\n",
        );
        assert_eq!(
            q.description,
            "What it answers, on two lines.\nA second paragraph."
        );
        assert_eq!(
            q.params,
            vec![
                QueryParam {
                    name: "month".into(),
                    doc: "YYYY-MM: the month".into()
                },
                QueryParam {
                    name: "limit".into(),
                    doc: "integer: how many".into()
                },
            ]
        );
        let columns = returns(&q);
        assert_eq!(columns.len(), 2);
        assert_eq!(
            (columns[1].name.as_str(), columns[1].column_type.as_str()),
            ("n", "integer")
        );
        assert_eq!(parse("bare", "SELECT 1").description, "");
    }

    #[test]
    fn placeholders_outside_literals_and_comments_are_numbered() {
        let sql =
            "SELECT '?', \"a?\", 'it''s ?' -- why?\n, ? /* ? */ FROM t WHERE x = ? AND y = '?'";
        assert_eq!(placeholders(sql).len(), 2);
        assert_eq!(
            numbered_placeholders(sql),
            "SELECT '?', \"a?\", 'it''s ?' -- why?\n, $1 /* ? */ FROM t WHERE x = $2 AND y = '?'"
        );
        assert_eq!(numbered_placeholders("a ? b ? c ?"), "a $1 b $2 c $3");
        // Unterminated literals and comments swallow the rest, as SQL does.
        assert!(placeholders("SELECT 'open ?").is_empty());
        assert!(placeholders("SELECT /* open ?").is_empty());
        assert_eq!(numbered_placeholders("é ? ü"), "é $1 ü");
    }
}
