//! The `purser` CLI against a real `purser up`, as a developer drives it:
//! teams, accounts (`--wait`), budgets, costs, errors that name the field,
//! `events tail` following the bus, completions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

const ANA: &str = "arn:aws:iam::123456789012:user/ana";

fn purser() -> Command {
    Command::cargo_bin("purser").unwrap()
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

/// `purser up` on a free port and a fresh data dir, killed if a test
/// fails before it stops it.
struct Up {
    child: Option<Child>,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Up {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = purser()
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "purser up did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// `purser ARGS` against this `purser up`, as the local admin unless `--as`.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = purser();
        cmd.args(args).env("PURSER_ENDPOINT", &self.endpoint);
        cmd.env_remove("PURSER_PRINCIPAL");
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let (code, out, err) = run(&mut self.cli(&all));
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Ctrl-C, and a clean stop.
    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        interrupt(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "purser up stopped with {status}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Retries `check` until it gives a value, for what happens asynchronously.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_developer_session_against_purser_up() {
    let up = Up::start();

    // Teams: set, then change only the quota (the members stay).
    let (code, out, err) =
        run(&mut up.cli(&["teams", "set", "payments", "--quota", "2", "--member", ANA]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("payments") && out.contains(ANA), "{out}");
    let (code, _, err) = run(&mut up.cli(&["teams", "set", "payments", "--quota", "3"]));
    assert_eq!(code, 0, "{err}");
    let team = up.json(&["teams", "show", "payments"]);
    assert_eq!(team["quota"], 3);
    assert_eq!(team["members"], json!([ANA]));
    let (code, out, _) = run(&mut up.cli(&["teams", "show", "payments"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("QUOTA") && out.contains("3 open accounts"),
        "{out}"
    );

    // Ana asks for an account and waits for it: the account id, alone.
    let (code, out, err) = run(&mut up.cli(&[
        "accounts",
        "request",
        "--team",
        "payments",
        "--owner",
        "ana@example.com",
        "--purpose",
        "load tests",
        "--idempotency-key",
        "ana-1",
        "--as",
        ANA,
        "--wait",
    ]));
    assert_eq!(code, 0, "{err}");
    let account_id = out.trim().to_string();
    assert!(
        account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()),
        "prints the 12-digit account id: {out:?} ({err})"
    );
    assert!(err.contains("ready"), "says it is ready: {err}");

    // List: a table for people, the API's JSON for scripts.
    let (code, out, err) = run(&mut up.cli(&["accounts", "list", "--team", "payments"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("STATE") && out.contains("ready") && out.contains(&account_id),
        "{out}"
    );
    let page = up.json(&["accounts", "list", "--team", "payments", "--all-pages"]);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["account_id"], account_id.as_str());
    let request_id = items[0]["id"].as_str().unwrap().to_string();

    // Show.
    let (code, out, _) = run(&mut up.cli(&["accounts", "show", &request_id]));
    assert_eq!(code, 0);
    assert!(out.contains(&account_id) && out.contains("ready"), "{out}");
    let shown = up.json(&["accounts", "show", &request_id, "--as", ANA]);
    assert_eq!(shown["state"], "ready");
    assert_eq!(shown["team"], "payments");

    // A refused request names the field and the flag, and exits 1.
    let (code, out, err) = run(&mut up.cli(&[
        "accounts",
        "request",
        "--team",
        "payments",
        "--owner",
        "not-an-email",
        "--purpose",
        "x",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("invalid_request") && err.contains("field: owner") && err.contains("--owner"),
        "{err}"
    );
    let (code, _, err) = run(&mut up.cli(&["budgets", "show", "payments"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("not_found") && err.contains("purser budgets set payments"),
        "{err}"
    );

    // Budgets.
    let (code, out, err) = run(&mut up.cli(&[
        "budgets",
        "set",
        "payments",
        "--amount",
        "10",
        "--threshold",
        "50",
        "--threshold",
        "100",
        "--action",
        "50=notify",
        "--action",
        "100=notify,freeze",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("10 USD") && out.contains("notify, freeze"),
        "{out}"
    );
    let budget = up.json(&["budgets", "show", "payments"]);
    assert_eq!(budget["amount"], "10");
    assert_eq!(budget["thresholds"], json!([50, 100]));
    assert_eq!(budget["actions"]["100"], json!(["notify", "freeze"]));
    let (code, _, err) = run(&mut up.cli(&[
        "budgets",
        "set",
        "payments",
        "--amount",
        "10",
        "--action",
        "100=explode",
    ]));
    assert_eq!(code, 2, "a malformed --action is a usage error: {err}");

    // `events tail` follows the bus: an event put meanwhile shows up.
    let mut tail = purser()
        .args(["events", "tail", "--interval", "100", "--data-dir"])
        .arg(up.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tail_err = BufReader::new(tail.stderr.take().unwrap());
    let mut line = String::new();
    tail_err.read_line(&mut line).unwrap();
    assert!(line.contains("following"), "{line}");
    let (lines_tx, lines) = mpsc::channel();
    let tail_out = BufReader::new(tail.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in tail_out.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let reports: Vec<Value> = (0..3)
        .map(|i| json!({"request_id": format!("q-{i}"), "timestamp": now, "duration_ms": 950.5,
                        "billed_duration_ms": 1000, "max_memory_used_mb": 70, "init_duration_ms": null}))
        .collect();
    let detail = json!({"version": 1, "batch_id": "b-1", "function_name": "checkout",
                        "architecture": "arm64", "memory_mb": 1024, "reports": reports});
    let (code, _, err) = run(&mut up.cli(&[
        "events",
        "put",
        "--endpoint",
        &up.endpoint,
        "--account",
        &account_id,
        "--source",
        "purser.telemetry",
        "--detail-type",
        "InvocationsReported",
        "--detail",
        &detail.to_string(),
    ]));
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("InvocationsReported") => break line,
            Ok(_) => continue,
            Err(e) => panic!("events tail printed no InvocationsReported: {e}"),
        }
    };
    assert!(
        seen.contains(&account_id) && seen.contains("purser.telemetry"),
        "{seen}"
    );
    interrupt(&tail);
    let status = tail.wait().unwrap();
    assert!(
        status.success(),
        "Ctrl-C stops events tail cleanly: {status}"
    );

    // Costs: the stream's estimate, JSON as the API gives it, a table with
    // the currency; by function from the lake.
    let costs = eventually("the team's spend", || {
        let costs = up.json(&["costs", "--team", "payments"]);
        (costs["total"] != "0").then_some(costs)
    });
    assert_eq!(costs["currency"], "USD");
    assert_eq!(costs["team"], "payments");
    assert_eq!(costs["items"].as_array().unwrap().len(), 1, "{costs}");
    let total = costs["total"].as_str().unwrap().to_string();
    let (code, out, _) = run(&mut up.cli(&["costs", "--team", "payments", "--by", "account"]));
    assert_eq!(code, 0);
    assert!(
        out.contains(&account_id) && out.contains(&format!("{total} USD")),
        "{out}"
    );
    let by_function = eventually("the invocations in the lake", || {
        let (code, out, _) = run(&mut up.cli(&["costs", "--team", "payments", "--by", "function"]));
        (code == 0 && out.contains("checkout")).then_some(out)
    });
    assert!(
        by_function.contains(&format!("{total} USD")),
        "{by_function}"
    );

    // Close, and follow it to the end.
    let closed = up.json(&["accounts", "close", &request_id, "--wait"]);
    assert_eq!(closed["state"], "closed");

    up.stop();
}

#[test]
fn without_purser_up_the_error_says_to_start_it() {
    let port = free_port();
    let (code, _, err) = run(purser()
        .args(["accounts", "list", "--endpoint"])
        .arg(format!("http://127.0.0.1:{port}")));
    assert_eq!(code, 1);
    assert!(err.contains("is `purser up` running?"), "{err}");
}

#[test]
fn acting_as_someone_else_is_local_only() {
    let (code, _, err) = run(purser().args([
        "teams",
        "show",
        "payments",
        "--endpoint",
        "https://abc123.execute-api.us-east-1.amazonaws.com",
        "--as",
        ANA,
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("--as works only with a local"), "{err}");
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(purser().args(["completions", shell]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("purser") && out.contains("accounts"),
            "{shell}: {out}"
        );
    }
    let (code, _, _) = run(purser().args(["completions", "tcsh"]));
    assert_eq!(code, 2);
}

#[test]
fn every_command_has_help_with_examples() {
    for args in [
        &["accounts", "request"][..],
        &["accounts", "list"],
        &["accounts", "show"],
        &["accounts", "close"],
        &["teams", "set"],
        &["teams", "show"],
        &["costs"],
        &["budgets", "set"],
        &["budgets", "show"],
        &["events", "tail"],
        &["query"],
        &["completions"],
        &["demo"],
    ] {
        let (code, out, err) = run(purser().args(args).arg("--help"));
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Examples:"), "{args:?}: {out}");
    }
}
