//! Every named query of infra/queries, run by DataFusion on a generated lake
//! (with duplicate deliveries), against figures computed here in Rust from
//! the records the generator wrote, without SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use purser_core::lake::named_queries;
use purser_core::lake::{DeploymentRecord, InvocationRecord};
use purser_core::ports::{ColumnType, QueryEngine, QueryError, QueryResult};
use purser_query::LocalQueryEngine;
use purser_query::fixture::Lake;
use serde_json::{Value, json};

const NONE: &str = "(none)";

struct Setup {
    _dir: tempfile::TempDir,
    lake: Lake,
    engine: LocalQueryEngine,
}

fn setup(with_cur: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::generate(dir.path(), 7, with_cur).unwrap();
    assert!(lake.duplicates > 10, "the lake holds duplicate deliveries");
    let engine = LocalQueryEngine::with_accounts(dir.path(), lake.accounts.clone()).unwrap();
    Setup {
        _dir: dir,
        lake,
        engine,
    }
}

async fn run(engine: &LocalQueryEngine, name: &str, params: &[&str]) -> QueryResult {
    let query = named_queries::named(name).unwrap();
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    let result = engine
        .run(&query, &params)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    // The columns are those the header documents, with those types.
    let documented: Vec<(String, String)> = named_queries::returns(&query)
        .into_iter()
        .map(|c| (c.name, c.column_type))
        .collect();
    let actual: Vec<(String, String)> = result
        .columns
        .iter()
        .map(|c| {
            let t = serde_json::to_value(c.column_type).unwrap();
            (c.name.clone(), t.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(actual, documented, "{name}: the columns of its header");
    result
}

fn team(t: &Option<String>) -> String {
    t.clone().unwrap_or_else(|| NONE.to_string())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A decimal (a string) or a double (a number) as f64.
fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("{s} is a number")),
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("{other} is not a number"),
    }
}

fn close(actual: &Value, expected: f64, what: &str) {
    let a = number(actual);
    assert!(
        (a - expected).abs() <= 1.000_1e-9,
        "{what}: {a} != {expected}"
    );
    if let Value::String(s) = actual {
        // Decimals keep their 9 digits after the point.
        assert_eq!(s.split('.').nth(1).map(str::len), Some(9), "{what}: {s}");
    }
}

fn month(r: &InvocationRecord) -> &str {
    &r.timestamp[..7]
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_team_daily_counts_each_invocation_and_usage_once() {
    let s = setup(false);
    let (from, to) = ("2026-10-31", "2026-11-29");
    // (invocations, Lambda's cost, the other services' cost)
    let mut expected: BTreeMap<(String, String), (i64, f64, f64)> = BTreeMap::new();
    for r in &s.lake.invocations {
        let day = &r.timestamp[..10];
        if (from..=to).contains(&day) {
            let e = expected
                .entry((day.to_string(), team(&r.team)))
                .or_default();
            e.0 += 1;
            e.1 += r.cost_usd;
        }
    }
    for u in &s.lake.usage {
        let day = &u.timestamp[..10];
        if (from..=to).contains(&day) {
            let e = expected
                .entry((day.to_string(), team(&u.team)))
                .or_default();
            // Unpriced usage counts nothing, never a guess.
            e.2 += u.cost_usd.unwrap_or(0.0);
        }
    }
    assert!(expected.values().any(|e| e.2 > 0.0), "the lake holds usage");
    let result = run(&s.engine, "cost_per_team_daily", &[from, to]).await;
    assert_eq!(result.rows.len(), expected.len());
    assert!(expected.keys().any(|(_, t)| t == NONE));
    for (row, ((day, team), (count, lambda, other))) in result.rows.iter().zip(&expected) {
        assert_eq!((text(&row[0]), text(&row[1])), (day.clone(), team.clone()));
        assert_eq!(row[2], json!(count), "{day} {team}");
        close(&row[3], *lambda, &format!("{day} {team} lambda"));
        close(&row[4], *other, &format!("{day} {team} other"));
        close(&row[5], lambda + other, &format!("{day} {team}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_service_counts_each_record_once_and_unpriced_apart() {
    let s = setup(false);
    let (from, to) = ("2026-11-01", "2026-11-30");
    // (accounts, records, unpriced, cost)
    type Service = (BTreeSet<String>, i64, i64, f64);
    let mut expected: BTreeMap<(String, String), Service> = BTreeMap::new();
    for r in &s.lake.invocations {
        if (from..=to).contains(&&r.timestamp[..10]) {
            let e = expected
                .entry((team(&r.team), "lambda".into()))
                .or_default();
            e.0.insert(r.account_id.clone());
            e.1 += 1;
            e.3 += r.cost_usd;
        }
    }
    for u in &s.lake.usage {
        if (from..=to).contains(&&u.timestamp[..10]) {
            let e = expected
                .entry((team(&u.team), u.service.clone()))
                .or_default();
            e.0.insert(u.account_id.clone());
            e.1 += 1;
            match u.cost_usd {
                Some(c) => e.3 += c,
                None => e.2 += 1,
            }
        }
    }
    assert!(expected.values().any(|e| e.2 > 0), "some usage is unpriced");
    let result = run(&s.engine, "cost_per_service", &[from, to]).await;
    assert_eq!(result.rows.len(), expected.len());
    let costs: Vec<f64> = result.rows.iter().map(|r| number(&r[5])).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    for row in &result.rows {
        let key = (text(&row[0]), text(&row[1]));
        let (accounts, records, unpriced, cost) = &expected[&key];
        assert_eq!(row[2], json!(accounts.len()), "{key:?}");
        assert_eq!(row[3], json!(records), "{key:?}");
        assert_eq!(row[4], json!(unpriced), "{key:?}");
        close(&row[5], *cost, &format!("{key:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_team_monthly_spans_a_range_of_months() {
    let s = setup(false);
    type Month = (BTreeSet<String>, i64, f64, f64);
    let mut expected: BTreeMap<(String, String), Month> = BTreeMap::new();
    for r in &s.lake.invocations {
        if ("2026-10"..="2026-11").contains(&month(r)) {
            let e = expected
                .entry((month(r).to_string(), team(&r.team)))
                .or_default();
            e.0.insert(r.account_id.clone());
            e.1 += 1;
            e.2 += r.cost_usd;
        }
    }
    for u in &s.lake.usage {
        let m = &u.timestamp[..7];
        if ("2026-10"..="2026-11").contains(&m) {
            let e = expected.entry((m.to_string(), team(&u.team))).or_default();
            e.0.insert(u.account_id.clone());
            e.3 += u.cost_usd.unwrap_or(0.0);
        }
    }
    let result = run(&s.engine, "cost_per_team_monthly", &["2026-10", "2026-11"]).await;
    assert_eq!(result.rows.len(), expected.len());
    assert_eq!(
        result.rows.len(),
        7,
        "two months of four teams, data's account web's in October"
    );
    for (row, ((m, t), (accounts, count, lambda, other))) in result.rows.iter().zip(&expected) {
        assert_eq!((text(&row[0]), text(&row[1])), (m.clone(), t.clone()));
        assert_eq!(row[2], json!(accounts.len()));
        assert_eq!(row[3], json!(count));
        close(&row[4], *lambda, &format!("{m} {t} lambda"));
        close(&row[5], *other, &format!("{m} {t} other"));
        close(&row[6], lambda + other, &format!("{m} {t}"));
    }
    // One month is the same month twice.
    let one = run(&s.engine, "cost_per_team_monthly", &["2026-12", "2026-12"]).await;
    assert!(one.rows.iter().all(|r| r[0] == json!("2026-12")));
    assert!(!one.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_account_orders_accounts_by_cost() {
    let s = setup(false);
    type Functions = BTreeSet<(String, String)>;
    let mut expected: HashMap<(String, String), (Functions, i64, f64)> = HashMap::new();
    for r in s.lake.invocations.iter().filter(|r| month(r) == "2026-11") {
        let e = expected
            .entry((r.account_id.clone(), team(&r.team)))
            .or_default();
        e.0.insert((r.region.clone(), r.function_name.clone()));
        e.1 += 1;
        e.2 += r.cost_usd;
    }
    let result = run(&s.engine, "cost_per_account", &["2026-11"]).await;
    assert_eq!(result.rows.len(), expected.len());
    assert_eq!(
        result.rows.len(),
        6,
        "five accounts, one lent to a second team mid-month"
    );
    let costs: Vec<f64> = result.rows.iter().map(|r| number(&r[4])).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    for row in &result.rows {
        let key = (text(&row[0]), text(&row[1]));
        let (functions, count, cost) = &expected[&key];
        assert_eq!(row[2], json!(functions.len()), "{key:?}");
        assert_eq!(row[3], json!(count), "{key:?}");
        close(&row[4], *cost, &format!("{key:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn top_functions_ranks_the_most_expensive() {
    let s = setup(false);
    type Key = (String, String, String, String);
    let mut per: HashMap<Key, (i64, i64, f64, f64)> = HashMap::new();
    for r in s.lake.invocations.iter().filter(|r| month(r) == "2026-11") {
        let e = per
            .entry((
                r.account_id.clone(),
                team(&r.team),
                r.region.clone(),
                r.function_name.clone(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += i64::from(r.init_duration_ms.is_some());
        e.2 += r.billed_duration_ms as f64;
        e.3 += r.cost_usd;
    }
    let mut ranked: Vec<(Key, (i64, i64, f64, f64))> = per.into_iter().collect();
    ranked.sort_by(|(a, x), (b, y)| {
        y.3.total_cmp(&x.3)
            .then_with(|| (&a.0, &a.2, &a.3, &a.1).cmp(&(&b.0, &b.2, &b.3, &b.1)))
    });
    let result = run(&s.engine, "top_functions", &["2026-11", "5"]).await;
    assert_eq!(result.rows.len(), 5);
    for (n, (row, ((account, team, region, function), (count, cold, billed, cost)))) in
        result.rows.iter().zip(&ranked).enumerate()
    {
        assert_eq!(row[0], json!(n + 1));
        assert_eq!(
            (text(&row[1]), text(&row[2]), text(&row[3]), text(&row[4])),
            (
                account.clone(),
                team.clone(),
                region.clone(),
                function.clone()
            )
        );
        assert_eq!(row[5], json!(count));
        assert_eq!(row[6], json!(cold));
        assert!((number(&row[7]) - billed / *count as f64).abs() < 1e-6);
        close(&row[8], *cost, function);
    }
    let all = run(&s.engine, "top_functions", &["2026-11", "1000"]).await;
    assert_eq!(all.rows.len(), ranked.len());
}

fn succeeded(d: &DeploymentRecord) -> bool {
    [
        "SUCCEEDED",
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "IMPORT_COMPLETE",
    ]
    .contains(&d.status.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_deployment_attributes_invocations_to_the_live_deployment() {
    let s = setup(false);
    type Key = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut expected: BTreeMap<Key, (i64, f64)> = BTreeMap::new();
    let mut before_any = 0;
    for r in s.lake.invocations.iter().filter(|r| month(r) == "2026-11") {
        let live = s
            .lake
            .deployments
            .iter()
            .filter(|d| d.account_id == r.account_id && succeeded(d) && d.timestamp <= r.timestamp)
            .max_by(|a, b| a.timestamp.cmp(&b.timestamp));
        before_any += usize::from(live.is_none());
        let e = expected
            .entry((
                r.account_id.clone(),
                team(&r.team),
                live.map(|d| d.stack.clone()),
                live.map(|d| d.timestamp.clone()),
                live.and_then(|d| d.commit.clone()),
            ))
            .or_default();
        e.0 += 1;
        e.1 += r.cost_usd;
    }
    assert!(before_any > 0, "some invocations ran before any deployment");
    assert!(
        s.lake
            .invocations
            .iter()
            .any(|r| r.request_id == "at-the-deployment")
    );
    let result = run(&s.engine, "cost_per_deployment", &["2026-11"]).await;
    let mut actual: BTreeMap<Key, (i64, f64)> = BTreeMap::new();
    for row in &result.rows {
        let opt = |v: &Value| v.as_str().map(String::from);
        let key = (
            text(&row[0]),
            text(&row[1]),
            opt(&row[2]),
            opt(&row[3]),
            opt(&row[4]),
        );
        let previous = actual.insert(key.clone(), (row[5].as_i64().unwrap(), number(&row[6])));
        assert!(previous.is_none(), "{key:?} once");
    }
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, (count, cost)) in &expected {
        assert_eq!(actual[key].0, *count, "{key:?}");
        assert!((actual[key].1 - cost).abs() <= 1.000_1e-9, "{key:?}");
    }
    // Rows come by account, then deployment.
    let order: Vec<(String, String)> = result
        .rows
        .iter()
        .map(|r| (text(&r[0]), r[3].as_str().unwrap_or("").to_string()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_per_team_counts_outcomes() {
    let s = setup(false);
    let (from, to) = ("2026-11-01", "2026-11-30");
    #[derive(Default)]
    struct Expect {
        accounts: BTreeSet<String>,
        stacks: BTreeSet<(String, String, String)>,
        succeeded: i64,
        failed: i64,
        durations: Vec<f64>,
    }
    let mut expected: BTreeMap<String, Expect> = BTreeMap::new();
    for d in &s.lake.deployments {
        if !(from..=to).contains(&&d.timestamp[..10]) {
            continue;
        }
        let e = expected.entry(team(&d.team)).or_default();
        e.accounts.insert(d.account_id.clone());
        e.stacks
            .insert((d.account_id.clone(), d.region.clone(), d.stack.clone()));
        if succeeded(d) {
            e.succeeded += 1;
            e.durations.extend(d.duration_s);
        } else if ["FAILED", "UPDATE_ROLLBACK_COMPLETE"].contains(&d.status.as_str()) {
            e.failed += 1;
        }
    }
    let result = run(&s.engine, "deployments_per_team", &[from, to]).await;
    assert_eq!(
        result.rows.iter().map(|r| text(&r[0])).collect::<Vec<_>>(),
        expected.keys().cloned().collect::<Vec<_>>()
    );
    assert!(expected.values().any(|e| e.failed > 0));
    for (row, (team, e)) in result.rows.iter().zip(&expected) {
        assert_eq!(row[1], json!(e.accounts.len()), "{team}");
        assert_eq!(row[2], json!(e.stacks.len()), "{team}");
        assert_eq!(row[3], json!(e.succeeded), "{team}");
        assert_eq!(row[4], json!(e.failed), "{team}");
        let mean = e.durations.iter().sum::<f64>() / e.durations.len() as f64;
        assert!(
            (number(&row[5]) - mean).abs() <= 0.05 + 1e-9,
            "{team}: {} vs {mean}",
            row[5]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cur_cost_per_team_attributes_each_line_to_its_lease_or_the_registry() {
    let s = setup(true);
    let registry: HashMap<&str, &str> = s
        .lake
        .accounts
        .iter()
        .map(|(a, t)| (a.as_str(), t.as_str()))
        .collect();
    let mut expected: BTreeMap<String, (BTreeSet<String>, f64, f64)> = BTreeMap::new();
    for c in &s.lake.cur {
        if c.usage_start.format("%Y-%m").to_string() != "2026-11" {
            continue;
        }
        // The lease that covered the usage; the registry for an account
        // with no lease in the lake.
        let usage_start = purser_core::lake::timestamp(c.usage_start);
        let team = purser_query::fixture::lease_at(&c.account_id, &usage_start)
            .map(|(_, team)| team)
            .or(registry.get(c.account_id.as_str()).copied())
            .map_or(NONE.to_string(), |t| t.to_string());
        let e = expected.entry(team).or_default();
        e.0.insert(c.account_id.clone());
        e.1 += c.unblended_cost;
        if c.product_code == "AWSLambda" {
            e.2 += c.unblended_cost;
        }
    }
    let result = run(&s.engine, "cur_cost_per_team", &["2026-11"]).await;
    assert_eq!(result.rows.len(), 4);
    assert_eq!(
        expected["web"].0.len(),
        3,
        "web's two accounts, and the days of data's it held"
    );
    let costs: Vec<f64> = result.rows.iter().map(|r| number(&r[2])).collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    for row in &result.rows {
        let (accounts, cost, lambda) = &expected[&text(&row[0])];
        assert_eq!(row[1], json!(accounts.len()));
        close(&row[2], *cost, "cost");
        close(&row[3], *lambda, "lambda cost");
    }
    // Without a CUR export, the table is there and empty.
    let empty = setup(false);
    let result = run(&empty.engine, "cur_cost_per_team", &["2026-11"]).await;
    assert!(result.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_function_is_one_teams_functions_over_days() {
    let s = setup(false);
    let (from, to) = ("2026-11-02", "2026-11-20");
    let teams: BTreeSet<String> = s.lake.accounts.iter().map(|(_, t)| t.clone()).collect();
    let mut checked = 0;
    for t in &teams {
        let mut expected: BTreeMap<(String, String, String), (i64, f64)> = BTreeMap::new();
        for r in &s.lake.invocations {
            let day = &r.timestamp[..10];
            if r.team.as_deref() == Some(t.as_str()) && day >= from && day <= to {
                let e = expected
                    .entry((
                        r.account_id.clone(),
                        r.region.clone(),
                        r.function_name.clone(),
                    ))
                    .or_default();
                e.0 += 1;
                e.1 += r.cost_usd;
            }
        }
        let result = run(&s.engine, "cost_per_function", &[t, from, to]).await;
        assert_eq!(result.rows.len(), expected.len(), "team {t}");
        let costs: Vec<f64> = result.rows.iter().map(|r| number(&r[4])).collect();
        assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
        for row in &result.rows {
            let key = (text(&row[0]), text(&row[1]), text(&row[2]));
            let (count, cost) = expected[&key];
            assert_eq!(row[3], json!(count), "{key:?}");
            close(&row[4], cost, &format!("{key:?}"));
        }
        checked += result.rows.len();
    }
    assert!(checked > 3, "the fixture has functions to compare");
    let nobody = run(&s.engine, "cost_per_function", &["nobody", from, to]).await;
    assert!(nobody.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_cost_per_account_day_counts_each_record_once_per_service() {
    let s = setup(false);
    type Key = (String, String, String, String);
    let mut expected: BTreeMap<Key, (i64, f64)> = BTreeMap::new();
    for r in s.lake.invocations.iter().filter(|r| month(r) == "2026-11") {
        let e = expected
            .entry((
                r.account_id.clone(),
                r.timestamp[..10].to_string(),
                "lambda".into(),
                text(&json!(r.team)),
            ))
            .or_default();
        e.0 += 1;
        e.1 += r.cost_usd;
    }
    for u in s
        .lake
        .usage
        .iter()
        .filter(|u| &u.timestamp[..7] == "2026-11")
    {
        let e = expected
            .entry((
                u.account_id.clone(),
                u.timestamp[..10].to_string(),
                u.service.clone(),
                text(&json!(u.team)),
            ))
            .or_default();
        e.0 += 1;
        e.1 += u.cost_usd.unwrap_or(0.0);
    }
    // The day data's lease of 444444444444 began, web's records and data's.
    let teams_of = |day: &str| -> BTreeSet<&str> {
        expected
            .keys()
            .filter(|(a, d, _, _)| a == "444444444444" && d == day)
            .map(|(_, _, _, t)| t.as_str())
            .collect()
    };
    assert_eq!(teams_of("2026-11-15"), BTreeSet::from(["data", "web"]));
    assert_eq!(teams_of("2026-11-03"), BTreeSet::from(["web"]));
    let result = run(&s.engine, "stream_cost_per_account_day", &["2026-11"]).await;
    assert_eq!(result.rows.len(), expected.len());
    let keys: Vec<Key> = result
        .rows
        .iter()
        .map(|r| (text(&r[0]), text(&r[1]), text(&r[2]), text(&r[5])))
        .collect();
    assert_eq!(
        keys,
        expected.keys().cloned().collect::<Vec<_>>(),
        "in account, day, service and team order"
    );
    for row in &result.rows {
        let key = (text(&row[0]), text(&row[1]), text(&row[2]), text(&row[5]));
        let (count, cost) = expected[&key];
        assert_eq!(row[3], json!(count), "{key:?}");
        close(&row[4], cost, &format!("{key:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cur_cost_per_account_day_splits_the_streamed_services_out_per_lease() {
    let s = setup(true);
    type Key = (String, String, String, String, String);
    let mut expected: BTreeMap<Key, f64> = BTreeMap::new();
    for c in &s.lake.cur {
        if c.usage_start.format("%Y-%m").to_string() != "2026-11" {
            continue;
        }
        let service = purser_query::fixture::cur_service(&c.product_code, c.usage_type.as_deref());
        let usage_start = purser_core::lake::timestamp(c.usage_start);
        let lease = purser_query::fixture::lease_at(&c.account_id, &usage_start);
        *expected
            .entry((
                c.account_id.clone(),
                c.usage_start.format("%Y-%m-%d").to_string(),
                service.to_string(),
                lease.map_or("null".into(), |(_, team)| team.to_string()),
                lease.map_or("null".into(), |(id, _)| id.to_string()),
            ))
            .or_default() += c.unblended_cost;
    }
    // The lines of 444444444444 before data's lease (web's, cleaning and
    // cooling included) are web's lease's; those after it data's.
    let leases: BTreeSet<(&str, &str)> = expected
        .keys()
        .filter(|k| k.0 == "444444444444")
        .map(|k| (k.1.as_str(), k.4.as_str()))
        .filter(|(day, _)| *day == "2026-11-03" || *day == "2026-11-29")
        .collect();
    assert_eq!(
        leases,
        BTreeSet::from([("2026-11-03", "r-web-4"), ("2026-11-29", "r-data-4")])
    );
    // 111111111111's lines before its first lease are that lease's.
    assert!(
        expected
            .keys()
            .any(|k| k.0 == "111111111111" && k.1 == "2026-11-01" && k.4 == "r-web-1")
    );
    let services: BTreeSet<&str> = expected.keys().map(|k| k.2.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["(other)", "dynamodb", "ec2", "lambda", "nat_gateway"]),
        "EBS and S3 are not streamed; EC2 instances and NAT gateways are told apart"
    );
    let result = run(&s.engine, "cur_cost_per_account_day", &["2026-11"]).await;
    assert_eq!(result.rows.len(), expected.len());
    for row in &result.rows {
        let key = (
            text(&row[0]),
            text(&row[1]),
            text(&row[2]),
            text(&row[4]),
            text(&row[5]),
        );
        let cost = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is not expected"));
        close(&row[3], *cost, &format!("{key:?} cost"));
    }
    let empty = setup(false);
    let result = run(&empty.engine, "cur_cost_per_account_day", &["2026-11"]).await;
    assert!(result.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_per_lease_covers_each_accounts_records_from_each_lease_to_the_next() {
    use purser_query::fixture::{LEASES, lease_at};
    let s = setup(false);
    let mut expected: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    let records = s
        .lake
        .invocations
        .iter()
        .map(|r| (&r.account_id, &r.timestamp, r.cost_usd))
        .chain(
            s.lake
                .usage
                .iter()
                .map(|u| (&u.account_id, &u.timestamp, u.cost_usd.unwrap_or(0.0))),
        );
    for (account, at, cost) in records {
        if &at[..7] != "2026-11" {
            continue;
        }
        if let Some((lease, _)) = lease_at(account, at) {
            let e = expected.entry(lease).or_default();
            e.0 += 1;
            e.1 += cost;
        }
    }
    let result = run(&s.engine, "cost_per_lease", &["2026-11"]).await;
    let leases: Vec<String> = result.rows.iter().map(|r| text(&r[0])).collect();
    assert_eq!(
        leases,
        ["r-web-1", "r-web-2", "r-web-4", "r-data-4"],
        "by account, then start; 333333333333 has no lease"
    );
    for row in &result.rows {
        let id = text(&row[0]);
        let lease = LEASES.iter().find(|l| l.0 == id).unwrap();
        assert_eq!(
            (text(&row[1]), text(&row[2]), text(&row[4])),
            (lease.1.into(), lease.2.into(), lease.4.into())
        );
        assert_eq!(row[3], json!(lease.3), "{id}: template");
        // The first end told wins over the later one.
        assert_eq!(row[5], json!(lease.5), "{id}: ended");
        let (count, cost) = expected[id.as_str()];
        assert_eq!(row[6], json!(count), "{id}");
        close(&row[7], cost, &id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_named_query_runs_on_an_empty_lake() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalQueryEngine::new(dir.path()).unwrap();
    for query in named_queries::all() {
        let params: Vec<String> = query
            .params
            .iter()
            .map(|p| match p.doc.split(':').next().unwrap() {
                "YYYY-MM" => "2026-11".to_string(),
                "YYYY-MM-DD" => "2026-11-01".to_string(),
                _ => "10".to_string(),
            })
            .collect();
        let result = engine
            .run(&query, &params)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", query.name));
        assert!(result.rows.is_empty(), "{}", query.name);
        assert_eq!(result.columns.len(), named_queries::returns(&query).len());
    }
    // The missing folders were created.
    assert!(dir.path().join("lake/invocations").is_dir());
    assert!(dir.path().join("lake/deployments").is_dir());
    assert!(dir.path().join("lake/leases").is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_are_bound_never_spliced() {
    let s = setup(false);
    let query = named_queries::named("cost_per_account").unwrap();
    // A value that would break out of a spliced string matches nothing.
    let result = s
        .engine
        .run(&query, &["2026-11' OR '1'='1".to_string()])
        .await
        .unwrap();
    assert!(result.rows.is_empty());
    let err = s.engine.run(&query, &[]).await.unwrap_err();
    let QueryError::InvalidParameters(message) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message,
        "cost_per_account takes 1 parameter: month (YYYY-MM: the month); 0 given"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ad_hoc_sql_converts_every_arrow_type_it_meets() {
    let s = setup(false);
    let result = s
        .engine
        .sql(
            "SELECT count(*) AS n, CAST(1.5 AS DECIMAL(10, 2)) AS d, 2.5 AS f, true AS b, \
             CAST(NULL AS VARCHAR) AS nothing, ? AS p, '?' AS q, \
             CAST('2026-11-01' AS DATE) AS day FROM invocations WHERE dt = ?",
            &["x".to_string(), "2026-11-01".to_string()],
        )
        .await
        .unwrap();
    let types: Vec<ColumnType> = result.columns.iter().map(|c| c.column_type).collect();
    assert_eq!(
        types,
        [
            ColumnType::Integer,
            ColumnType::Decimal,
            ColumnType::Double,
            ColumnType::Boolean,
            ColumnType::String,
            ColumnType::String,
            ColumnType::String,
            ColumnType::Date,
        ]
    );
    let unique = s
        .lake
        .invocations
        .iter()
        .filter(|r| r.timestamp.starts_with("2026-11-01"))
        .count();
    assert_eq!(result.rows.len(), 1);
    assert_eq!(
        result.rows[0][1..],
        [
            json!("1.50"),
            json!(2.5),
            json!(true),
            Value::Null,
            json!("x"),
            json!("?"),
            json!("2026-11-01"),
        ]
    );
    assert!(
        result.rows[0][0].as_u64().unwrap() as usize > unique,
        "a plain count sees the duplicate deliveries"
    );
    // The tables and their columns can be listed.
    let tables = s
        .engine
        .sql(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        tables.rows,
        [
            "accounts",
            "cur",
            "deployments",
            "invocations",
            "leases",
            "usage"
        ]
        .map(|t| vec![json!(t)])
        .to_vec()
    );
    // Statements that change anything are refused.
    for statement in [
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE invocations",
        "SET datafusion.execution.batch_size = 1",
    ] {
        assert!(
            s.engine.sql(statement, &[]).await.is_err(),
            "{statement} is refused"
        );
    }
}
