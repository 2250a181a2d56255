//! `purser accounts login` and `purser notifications list` against a real
//! `purser up`: a team member named by email is an IAM Identity Center user
//! of the simulation, so their account is ready with a sign-in link and they
//! are emailed; an owner without a user gets no link and is told why.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

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

/// `purser up` on a free port and a fresh data dir, killed when dropped.
struct Up {
    child: Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Up {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = purser();
        cmd.args(args)
            .env("PURSER_ENDPOINT", &self.endpoint)
            .env_remove("PURSER_PRINCIPAL")
            .env_remove("PURSER_DATA_DIR");
        cmd
    }

    /// A team whose members are these emails.
    fn team(&self, team: &str, members: &[&str]) {
        let mut args = vec!["teams", "set", team, "--quota", "5"];
        for m in members {
            args.extend(["--member", m]);
        }
        let (code, out, err) = run(&mut self.cli(&args));
        assert_eq!(code, 0, "{out}{err}");
    }

    /// A ready account of `owner`; its request id.
    fn ready_account(&self, team: &str, owner: &str) -> String {
        let (code, out, err) = run(&mut self.cli(&[
            "accounts",
            "request",
            "--team",
            team,
            "--owner",
            owner,
            "--purpose",
            "sign in",
            "--wait",
            "--timeout",
            "60",
            "--output",
            "json",
        ]));
        assert_eq!(code, 0, "{out}{err}");
        let account: Value = serde_json::from_str(&out).unwrap();
        account["id"].as_str().unwrap().to_string()
    }

    fn notifications(&self) -> Vec<Value> {
        let (code, out, err) = run(&mut self.cli(&[
            "notifications",
            "list",
            "--data-dir",
            self.dir.path().to_str().unwrap(),
            "--output",
            "json",
        ]));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out)
            .unwrap_or_else(|e| panic!("{e}: {out}"))
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn login_prints_the_sign_in_link_and_notifications_list_shows_the_ready_email() {
    let up = Up::start();
    up.team("payments", &["ana@example.com"]);
    let id = up.ready_account("payments", "ana@example.com");

    let (code, out, err) = run(&mut up.cli(&["accounts", "login", &id, "--no-browser"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("https://") && out.contains("role_name=PurserDeveloper"),
        "the link: {out}"
    );
    assert!(
        out.contains("PERMISSION SET") && out.contains("PurserDeveloper"),
        "{out}"
    );
    assert!(
        !err.contains("browser"),
        "--no-browser opens nothing: {err}"
    );

    let (code, out, err) = run(&mut up.cli(&["accounts", "login", &id, "--output", "json"]));
    assert_eq!(code, 0, "{err}");
    let access: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(access["status"], "assigned", "{access}");
    assert_eq!(access["permission_set"], "PurserDeveloper");
    assert!(access["link"].as_str().unwrap().starts_with("https://"));

    // The AccountReady email to Ana, once the notify function has run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let sent = up.notifications();
        if let Some(n) = sent.iter().find(|n| {
            n["kind"] == "AccountReady"
                && n["channel"] == "email"
                && n["recipient"]
                    .as_str()
                    .is_some_and(|r| r.contains("ana@example.com"))
        }) {
            break n.clone();
        }
        assert!(Instant::now() < deadline, "no AccountReady email: {sent:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ready["outcome"], "sent", "{ready}");

    let dir = up.dir.path().to_str().unwrap();
    let (code, out, err) = run(&mut up.cli(&["notifications", "list", "--data-dir", dir]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("TIME") && out.contains("SUBJECT") && out.contains("OUTCOME"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.contains("AccountReady") && l.contains("ana@example.com"))
        .unwrap_or_else(|| panic!("no AccountReady row: {out}"));
    assert!(row.contains("email") && row.contains("sent"), "{row}");
    let (code, out, _) = run(&mut up.cli(&[
        "notifications",
        "list",
        "--data-dir",
        dir,
        "--last",
        "1",
        "--output",
        "json",
    ]));
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn login_without_an_identity_center_user_exits_1_with_the_reason() {
    let up = Up::start();
    up.team("payments", &["arn:aws:iam::123456789012:user/dev"]);
    let id = up.ready_account("payments", "carol@example.com");
    let (code, out, err) = run(&mut up.cli(&["accounts", "login", &id, "--no-browser"]));
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("carol@example.com"), "the reason: {err}");
    assert!(!out.contains("https://"), "{out}");
}

#[test]
fn notifications_list_without_local_state_says_to_start_purser_up() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(purser()
        .args(["notifications", "list", "--data-dir"])
        .arg(dir.path().join("none")));
    assert_eq!(code, 1);
    assert!(err.contains("purser up"), "{err}");
}

/// `purser accounts may`: the simulated organization's answer from the
/// data dir, as people try a guardrail locally (exit code 3 when refused, 1
/// when the command cannot answer).
#[test]
fn accounts_may_answers_from_the_guardrails_attached_to_the_account() {
    let up = Up::start();
    up.team("payments", &["ana@example.com"]);
    let id = up.ready_account("payments", "ana@example.com");
    let (_, out, _) = run(&mut up.cli(&["accounts", "show", &id, "--output", "json"]));
    let account: Value = serde_json::from_str(&out).unwrap();
    let account_id = account["account_id"].as_str().unwrap().to_string();
    let dir = up.dir.path().to_str().unwrap().to_string();
    let may = |extra: &[&str]| {
        let mut args = vec!["accounts", "may", &account_id];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--data-dir", &dir]);
        run(&mut up.cli(&args))
    };

    let (code, out, err) = may(&["ec2:DescribeInstances"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("allowed:"), "{out}");
    let (code, out, _) = may(&["savingsplans:CreateSavingsPlan"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("explicit deny in a service control policy (purser-guardrail"),
        "{out}"
    );
    let (code, out, _) = may(&[
        "ec2:RunInstances",
        "--instance-type",
        "p5.48xlarge",
        "--output",
        "json",
    ]);
    assert_eq!(code, 3, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["allowed"], false);
    let (code, _, _) = may(&["ec2:RunInstances", "--instance-type", "t3.micro"]);
    assert_eq!(code, 0);
    let (code, _, err) = may(&["not-an-action"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("service:Action"), "{err}");
}
