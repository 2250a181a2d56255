//! The named queries of infra/queries: each parses as Trino SQL (Athena
//! engine v3) by sqlglot, the catalog compiled into purser-core holds
//! exactly the files, and `purser query` runs them on a generated lake.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use purser_core::lake::named_queries;
use purser_query::fixture::Lake;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn query_files() -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(repo().join("infra/queries"))
        .expect("infra/queries exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect()
}

/// The Python of the test virtualenv that scripts/test creates.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("PURSER_VENV")
        .map(PathBuf::from)
        .map(|v| if v.is_absolute() { v } else { repo().join(v) })
        .unwrap_or_else(|| repo().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test (it creates the virtualenv with sqlglot \
         from scripts/requirements.txt), or set PURSER_VENV to a virtualenv that has it",
        python.display()
    );
    python
}

/// Parses each file as one Trino statement and lists the functions sqlglot
/// does not know as Trino functions (a typo, or another engine's function).
const CHECK: &str = r#"
import sys, sqlglot
from sqlglot import exp
failed = False
for path in sys.argv[1:]:
    try:
        statements = [s for s in sqlglot.parse(open(path).read(), read="trino") if s is not None]
        assert len(statements) == 1, f"{len(statements)} statements, not 1"
        unknown = sorted({f.name for f in statements[0].find_all(exp.Anonymous)})
        assert not unknown, f"functions sqlglot does not know in Trino: {unknown}"
    except Exception as e:
        failed = True
        print(f"{path}: {e}")
sys.exit(1 if failed else 0)
"#;

#[test]
fn every_query_parses_as_trino_with_sqlglot() {
    let files = query_files();
    assert!(!files.is_empty());
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(CHECK)
        .args(files.values())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlglot (read='trino') refused:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And the check does refuse what Trino would.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sql");
    std::fs::write(&bad, "SELECT FROM WHERE (").unwrap();
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(CHECK)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a broken query is refused");
}

#[test]
fn every_file_of_infra_queries_is_in_the_catalog_and_back() {
    let files = query_files();
    let on_disk: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let catalog: BTreeSet<&str> = named_queries::names().into_iter().collect();
    assert_eq!(
        on_disk, catalog,
        "every infra/queries/*.sql is listed in shared/core/src/lake/named_queries.rs, and back"
    );
    for query in named_queries::all() {
        let text = std::fs::read_to_string(&files[&query.name]).unwrap();
        assert_eq!(
            query.sql, text,
            "{}: the catalog compiles the file in",
            query.name
        );
    }
}

// ------------------------------------------------------------ purser query

fn purser(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("purser")
        .unwrap()
        .arg("query")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("PURSER_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::generate(dir.path(), 11, true).unwrap();
    (dir, lake)
}

#[test]
fn query_runs_a_named_query_on_the_local_lake_as_json() {
    let (dir, lake) = lake();
    let (code, out, err) = purser(
        dir.path(),
        &[
            "cost_per_team_monthly",
            "--param",
            "2026-11",
            "--param",
            "2026-11",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut expected: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in lake
        .invocations
        .iter()
        .filter(|r| r.timestamp.starts_with("2026-11"))
    {
        let e = expected
            .entry(r.team.clone().unwrap_or_else(|| "(none)".into()))
            .or_default();
        e.0 += 1;
        e.1 += r.cost_usd;
    }
    // Streamed usage beyond Lambda counts in the cost, unpriced as nothing.
    for u in lake
        .usage
        .iter()
        .filter(|u| u.timestamp.starts_with("2026-11"))
    {
        let e = expected
            .entry(u.team.clone().unwrap_or_else(|| "(none)".into()))
            .or_default();
        e.1 += u.cost_usd.unwrap_or(0.0);
    }
    assert_eq!(rows.len(), expected.len());
    for (row, (team, (count, cost))) in rows.iter().zip(&expected) {
        assert_eq!(row["month"], "2026-11");
        assert_eq!(row["team"], team.as_str());
        assert_eq!(row["invocations"], *count, "{team}");
        let got: f64 = row["cost_usd"].as_str().unwrap().parse().unwrap();
        assert!((got - cost).abs() < 1.1e-9, "{team}: {got} vs {cost}");
    }
}

#[test]
fn query_prints_an_aligned_table() {
    let (dir, _) = lake();
    let (code, out, err) = purser(
        dir.path(),
        &["top_functions", "--param", "2026-11", "--param", "3"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 4, "a header and three rows:\n{out}");
    for column in ["rank", "account_id", "function_name", "cost_usd"] {
        assert!(lines[0].contains(column), "{out}");
    }
    // Aligned: each column starts at the same place on every line.
    let at = lines[0].find("account_id").unwrap();
    for line in &lines[1..] {
        assert_eq!(
            line[at..].split_whitespace().next().unwrap().len(),
            12,
            "{out}"
        );
    }
    assert!(err.contains("3 rows"), "{err}");
}

#[test]
fn query_lists_the_named_queries_with_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = purser(dir.path(), &["--list"]);
    assert_eq!(code, 0);
    for q in named_queries::all() {
        let usage: String = q
            .params
            .iter()
            .map(|p| format!(" --param <{}>", p.name))
            .collect();
        assert!(out.contains(&format!("{}{usage}\n", q.name)), "{out}");
    }
    let (code, out, _) = purser(dir.path(), &["--list", "--output", "json"]);
    assert_eq!(code, 0);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), named_queries::all().len());
    assert_eq!(list[0]["params"][0]["name"], "from");
}

#[test]
fn query_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = purser(dir.path(), &["cost_per_tem"]);
    assert_eq!(code, 1);
    assert!(err.contains("no named query \"cost_per_tem\""), "{err}");
    for name in named_queries::names() {
        assert!(err.contains(name), "{err}");
    }
    let (code, _, err) = purser(
        dir.path(),
        &["cost_per_team_daily", "--param", "2026-11-01"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("takes 2 --param, in this order; 1 given"),
        "{err}"
    );
    assert!(err.contains("--param <from>  YYYY-MM-DD"), "{err}");
    assert!(err.contains("--param <to>  YYYY-MM-DD"), "{err}");
    let (code, _, err) = purser(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("name a query or give --sql"), "{err}");
    let (code, _, err) = purser(dir.path(), &["--sql", "SELECT nope FROM invocations"]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn query_runs_ad_hoc_sql_with_parameters() {
    let (dir, lake) = lake();
    let (code, out, err) = purser(
        dir.path(),
        &[
            "--sql",
            "SELECT count(DISTINCT request_id) AS n FROM invocations WHERE dt = ? AND team = ?",
            "--param",
            "2026-11-02",
            "--param",
            "web",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let expected = lake
        .invocations
        .iter()
        .filter(|r| r.timestamp.starts_with("2026-11-02") && r.team.as_deref() == Some("web"))
        .count();
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([{"n": expected}])
    );
}

#[test]
fn query_takes_teams_from_the_leases_and_else_the_local_registry() {
    let (dir, lake) = lake();
    // The registry of `purser up`, its real schema: 333333333333 (which
    // has no lease in the lake) was web's, then lent to pay: the newest
    // request's team is its team.
    let db = purser_local::Db::open(dir.path()).unwrap();
    db.call_blocking(|conn| {
        for (id, team, created_at) in [("acc-0", "web", "0"), ("acc-1", "pay", "1")] {
            conn.execute(
                "INSERT INTO accounts (id, state, team, created_at, account_id, data) \
                 VALUES (?1, 'ready', ?2, ?3, '333333333333', '{}')",
                [id, team, created_at],
            )?;
        }
        Ok(())
    })
    .unwrap();
    drop(db);
    let (code, out, err) = purser(
        dir.path(),
        &[
            "cur_cost_per_team",
            "--param",
            "2026-11",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let teams: BTreeMap<&str, u64> = rows
        .iter()
        .map(|r| (r["team"].as_str().unwrap(), r["accounts"].as_u64().unwrap()))
        .collect();
    // Leases: web's two accounts and the days of 444444444444 before it
    // was lent to data; the registry: pay's; 555555555555 is no one's.
    assert_eq!(
        teams,
        BTreeMap::from([("(none)", 1), ("data", 1), ("pay", 1), ("web", 3)])
    );
    let total: f64 = rows
        .iter()
        .map(|r| r["cost_usd"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    let expected: f64 = lake
        .cur
        .iter()
        .filter(|c| c.usage_start.format("%Y-%m").to_string() == "2026-11")
        .map(|c| c.unblended_cost)
        .sum();
    assert!((total - expected).abs() < 1e-8, "{total} vs {expected}");
}
