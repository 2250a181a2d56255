//! The `purser` binary as a user runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::json;

fn purser() -> Command {
    Command::cargo_bin("purser").unwrap()
}

fn event(source: &str) -> String {
    json!({
        "id": "e1", "account": "123456789012", "source": source, "time": "2026-11-21T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail-type": "DeploymentReported",
        "detail": {"status": "SUCCEEDED", "duration": 42}
    })
    .to_string()
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_pattern_prints_the_result_like_the_aws_cli() {
    let pattern = r#"{"source":["ci"],"detail":{"duration":[{"numeric":[">",30]}]}}"#;
    let (code, out, _) = run(purser().args([
        "events",
        "test-pattern",
        "--pattern",
        pattern,
        "--event",
        &event("ci"),
    ]));
    assert_eq!(code, 0);
    assert_eq!(out, "{\n    \"Result\": true\n}\n");
    let (code, out, _) = run(purser().args([
        "events",
        "test-pattern",
        "--pattern",
        pattern,
        "--event",
        &event("other"),
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("\"Result\": false"));
}

#[test]
fn test_pattern_reads_file_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, event("ci")).unwrap();
    let (code, out, err) = run(purser().args([
        "events",
        "test-pattern",
        "--pattern",
        r#"{"detail-type":[{"prefix":"Deploy"}]}"#,
        "--event",
        &format!("file://{}", file.display()),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("true"));
}

#[test]
fn an_invalid_pattern_or_event_fails_with_the_reason() {
    let (code, _, err) = run(purser().args([
        "events",
        "test-pattern",
        "--pattern",
        r#"{"source":"ci"}"#,
        "--event",
        &event("ci"),
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains("Event pattern is not valid") && err.contains("source"),
        "{err}"
    );

    let (code, _, err) = run(purser().args([
        "events",
        "test-pattern",
        "--pattern",
        r#"{"source":["ci"]}"#,
        "--event",
        r#"{"source":"ci"}"#,
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains("mandatory") && err.contains("detail-type"),
        "{err}"
    );

    let (code, _, err) =
        run(purser().args(["events", "test-pattern", "--pattern", "{", "--event", "{}"]));
    assert_eq!(code, 1);
    assert!(err.contains("--pattern is not valid JSON"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(purser().args(["events", "test-pattern", "--pattern", "{}"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn reading_the_archive_before_any_start_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(purser()
        .args(["events", "archive", "--data-dir"])
        .arg(dir.path()));
    assert_eq!(code, 1);
    assert!(err.contains("purser up"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn up_then_put_then_archive_then_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = purser()
        .args(["up", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "purser up did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, out, err) = run(purser().args([
        "events",
        "put",
        "--endpoint",
        &endpoint,
        "--account",
        "210987654321",
        "--source",
        "ci",
        "--detail-type",
        "DeploymentReported",
        "--detail",
        r#"{"stack":"web"}"#,
    ]));
    assert_eq!(code, 0, "{err}");
    let event_id = out.trim().to_string();
    assert_eq!(event_id.len(), 36, "prints the event id: {out}");

    let (code, _, err) = run(purser().args([
        "events",
        "put",
        "--endpoint",
        &endpoint,
        "--source",
        "aws.organizations",
        "--detail-type",
        "X",
        "--detail",
        "{}",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("NotAuthorizedForSourceException"), "{err}");

    let (code, out, err) = run(purser()
        .args(["events", "archive", "--output", "json", "--data-dir"])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    let archived: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(archived[0]["id"], event_id.as_str());
    assert_eq!(archived[0]["account"], "210987654321");

    let (code, out, _) = run(purser()
        .args([
            "events",
            "archive",
            "--detail-type",
            "DeploymentReported",
            "--data-dir",
        ])
        .arg(dir.path()));
    assert_eq!(code, 0);
    assert!(
        out.contains("DETAIL-TYPE") && out.contains(&event_id),
        "{out}"
    );

    let (code, out, _) = run(purser()
        .args(["events", "dlq", "--data-dir"])
        .arg(dir.path()));
    assert_eq!(code, 0);
    assert!(out.contains("no dead letters"), "{out}");
    let (code, out, _) = run(purser()
        .args(["events", "redrive", "--data-dir"])
        .arg(dir.path()));
    assert_eq!(code, 0);
    assert!(out.contains("no dead letters to redrive"), "{out}");

    // The archive replayed: the one DeploymentReported goes to its rule again.
    let (code, out, err) = run(purser()
        .args([
            "events",
            "replay",
            "--since",
            "2000-01-01T00:00:00Z",
            "--detail-type",
            "DeploymentReported",
            "--data-dir",
        ])
        .arg(dir.path()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 event sent again"), "{out}");
    let (code, _, err) = run(purser()
        .args(["events", "replay", "--since", "yesterday", "--data-dir"])
        .arg(dir.path()));
    assert_eq!(code, 1);
    assert!(err.contains("--since must be an RFC 3339 time"), "{err}");

    // Ctrl-C: a clean stop.
    Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    let status = up.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(up.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.contains("Purser is up") && stdout.contains("stopped"),
        "{stdout}"
    );
}
