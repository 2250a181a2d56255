//! The local runtime end to end: a template's rules, routes and schedules
//! running real handlers in process, driven through its HTTP endpoint with
//! the AWS SDK, as a user's tools would drive it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use purser_core::{Handler, HandlerError};
use purser_local::{Registry, RetryTiming, Running, RuntimeConfig, Template, inspect};
use serde_json::{Value, json};

const TEMPLATE: &str = include_str!("../fixtures/wiring.yaml");

/// Records what it receives; answers HTTP requests with what it saw.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Value>>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        self.seen.lock().unwrap().push(payload.clone());
        if payload.get("routeKey").is_some() {
            let body = json!({
                "route": payload["routeKey"],
                "id": payload["pathParameters"]["id"],
                "query": payload["queryStringParameters"],
                "body": payload["body"],
                "user": payload["requestContext"]["authorizer"]["iam"]["userArn"],
            });
            return Ok(
                json!({"statusCode": 201, "headers": {"x-test": "yes"}, "body": body.to_string()}),
            );
        }
        Ok(Value::Null)
    }
}

/// Fails its first `failures` invocations.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl Handler for Flaky {
    async fn handle(&self, _: Value) -> Result<Value, HandlerError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(HandlerError::new("Transient", format!("failure {}", n + 1)));
        }
        Ok(Value::Null)
    }
}

/// Takes its time, counting the invocations it finished.
struct Slow {
    takes: Duration,
    done: AtomicUsize,
}

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, _: Value) -> Result<Value, HandlerError> {
        tokio::time::sleep(self.takes).await;
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(Value::Null)
    }
}

struct Panics;

#[async_trait]
impl Handler for Panics {
    async fn handle(&self, _: Value) -> Result<Value, HandlerError> {
        panic!("a bug in a handler")
    }
}

struct Harness {
    recorder: Arc<Recorder>,
    flaky: Arc<Flaky>,
    slow: Arc<Slow>,
    running: Running,
}

fn config(dir: &std::path::Path) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(dir, 0);
    config.retry_timing = RetryTiming {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
    };
    config.shutdown_grace = Duration::from_millis(200);
    config
}

async fn start_with(config: RuntimeConfig, slow: Duration) -> Harness {
    let recorder = Arc::new(Recorder::default());
    let flaky = Arc::new(Flaky {
        failures: 2,
        calls: AtomicUsize::new(0),
    });
    let slow = Arc::new(Slow {
        takes: slow,
        done: AtomicUsize::new(0),
    });
    let (r, f, s) = (recorder.clone(), flaky.clone(), slow.clone());
    let registry = Registry::default()
        .register("Recorder", move |_| r.clone())
        .register("Flaky", move |_| f.clone())
        .register("Broken", |_| Arc::new(Panics))
        .register("Slow", move |_| s.clone());
    let template = Template::parse(TEMPLATE).unwrap();
    let running = purser_local::start(config, &template, &registry, None)
        .await
        .expect("the runtime starts");
    Harness {
        recorder,
        flaky,
        slow,
        running,
    }
}

impl Harness {
    fn url(&self) -> String {
        format!("http://{}", self.running.addr())
    }

    /// An EventBridge client of the AWS SDK pointed at the local endpoint,
    /// calling as `access_key` (a 12-digit key is taken as the account).
    async fn events(&self, access_key: &str) -> aws_sdk_eventbridge::Client {
        let config = purser_aws::config_loader()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                access_key, "secret", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_eventbridge::Client::new(&config)
    }
}

fn entry(source: &str, detail_type: &str, detail: Value) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .event_bus_name("purser")
        .build()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn put_events_from_the_sdk_reach_the_rules_target_with_the_callers_account() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let client = h.events("210987654321").await;
    let reply = client
        .put_events()
        .entries(entry("ci", "DeploymentReported", json!({"stack": "web"})))
        .entries(entry("ci", "SomethingElse", json!({})))
        .entries(entry("elsewhere", "DeploymentReported", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.failed_entry_count(), 0);
    assert!(reply.entries().iter().all(|e| e.event_id().is_some()));

    eventually("the matching event is delivered", || {
        !h.recorder.seen.lock().unwrap().is_empty()
    })
    .await;
    h.running
        .settle(std::time::Duration::from_secs(10))
        .await
        .expect("every delivery is done");
    let seen = h.recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "only the matching event arrives: {seen:?}");
    let event = &seen[0];
    assert_eq!(event["account"], "210987654321");
    assert_eq!(event["detail"]["stack"], "web");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(
        event["id"],
        reply.entries()[0].event_id().unwrap(),
        "the target gets the id PutEvents returned"
    );

    // Every event is archived, matched or not.
    let archived = inspect::archive(
        h.running.db(),
        &inspect::ArchiveFilter {
            limit: 100,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(archived.len(), 3);
    h.running.shutdown().await;
}

#[tokio::test]
async fn input_path_shapes_what_the_target_receives() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let client = h.events("local").await;
    client
        .put_events()
        .entries(entry("anyone", "OnlyDetail", json!({"just": "this"})))
        .send()
        .await
        .unwrap();
    eventually("the detail is delivered", || {
        !h.recorder.seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(h.recorder.seen.lock().unwrap()[0], json!({"just": "this"}));
    h.running.shutdown().await;
}

#[tokio::test]
async fn entries_are_refused_per_entry_as_eventbridge_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let client = h.events("local").await;
    let reply = client
        .put_events()
        .entries(entry(
            "aws.cloudformation",
            "CloudFormation Stack Status Change",
            json!({}),
        ))
        .entries(
            PutEventsRequestEntry::builder()
                .source("ci")
                .detail_type("X")
                .detail("{not json")
                .event_bus_name("purser")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("ci")
                .detail_type("X")
                .detail("{}")
                .event_bus_name("nope")
                .build(),
        )
        .entries(entry("ci", "Fine", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.failed_entry_count(), 3);
    let codes: Vec<_> = reply.entries().iter().map(|e| e.error_code()).collect();
    assert_eq!(
        codes,
        [
            Some("NotAuthorizedForSourceException"),
            Some("MalformedDetail"),
            Some("ResourceNotFoundException"),
            None
        ]
    );
    h.running.shutdown().await;
}

#[tokio::test]
async fn aws_sources_are_accepted_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.allow_aws_sources = true;
    let h = start_with(config, Duration::ZERO).await;
    let reply = h
        .events("local")
        .await
        .put_events()
        .entries(entry(
            "aws.cloudformation",
            "CloudFormation Stack Status Change",
            json!({}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.failed_entry_count(), 0);
    h.running.shutdown().await;
}

#[tokio::test]
async fn calls_over_eventbridge_limits_fail_whole() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let client = h.events("local").await;
    let mut eleven = client.put_events();
    for i in 0..11 {
        eleven = eleven.entries(entry("ci", "X", json!({"i": i})));
    }
    let err = eleven.send().await.unwrap_err();
    let err = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
    assert!(
        err.contains("ValidationException") && err.contains("10"),
        "{err}"
    );

    let big = "x".repeat(200 * 1024);
    let err = client
        .put_events()
        .entries(entry("ci", "X", json!({"a": big})))
        .entries(entry("ci", "X", json!({"b": big})))
        .send()
        .await
        .unwrap_err();
    let err = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
    assert!(err.contains("over the limit"), "{err}");
    h.running.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let client = h.events("local").await;
    client
        .put_events()
        .entries(entry("ci", "Flaky", json!({})))
        .entries(entry("ci", "Broken", json!({"why": "panics"})))
        .send()
        .await
        .unwrap();
    eventually("the flaky target succeeds on its third attempt", || {
        h.flaky.calls.load(Ordering::SeqCst) == 3
    })
    .await;
    let db = h.running.db().clone();
    eventually("the broken target is dead-lettered", || {
        !inspect::dead_letters(&db, 10).unwrap().is_empty()
    })
    .await;
    let letters = inspect::dead_letters(&db, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].target, "Broken.Broken");
    assert_eq!(letters[0].attempts, 3, "one attempt and two retries");
    assert!(
        letters[0].error.contains("panicked"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].payload["detail"]["why"], "panics");
    h.running
        .settle(std::time::Duration::from_secs(10))
        .await
        .expect("every delivery is done");
    assert_eq!(
        h.flaky.calls.load(Ordering::SeqCst),
        3,
        "no delivery after success"
    );
    assert_eq!(inspect::pending_deliveries(&db).unwrap(), 0);

    // A redrive puts the dead letters of a target back on the queue with
    // their rule's retries, at once; what fails again comes back.
    assert_eq!(inspect::redrive(&db, Some("Flaky.Flaky")).unwrap(), 0);
    let event_id = letters[0].event_id.clone();
    assert_eq!(inspect::redrive(&db, Some("Broken.Broken")).unwrap(), 1);
    assert!(inspect::dead_letters(&db, 10).unwrap().is_empty());
    eventually("the redriven delivery is dead-lettered again", || {
        !inspect::dead_letters(&db, 10).unwrap().is_empty()
    })
    .await;
    let again = inspect::dead_letters(&db, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event_id, event_id, "the same event");
    assert_eq!(again[0].attempts, 3, "retried as its rule says");
    assert_eq!(inspect::redrive(&db, None).unwrap(), 1, "every target");
    h.running.shutdown().await;
}

#[tokio::test]
async fn http_routes_reach_their_function_as_api_gateway_requests() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::ZERO).await;
    let http = purser::http_client().build().unwrap();
    let reply = http
        .post(format!("{}/things/t-1?x=a%20b", h.url()))
        .header("x-purser-principal", "arn:aws:iam::123456789012:user/dev")
        .header("content-type", "application/json")
        .body(r#"{"k":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    assert_eq!(reply.headers()["x-test"], "yes");
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["route"], "POST /things/{id}");
    assert_eq!(body["id"], "t-1");
    assert_eq!(body["query"]["x"], "a b");
    assert_eq!(body["body"], r#"{"k":1}"#);
    assert_eq!(body["user"], "arn:aws:iam::123456789012:user/dev");

    let missing = http
        .get(format!("{}/things/t-1", h.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "GET is not a declared route");
    h.running.shutdown().await;
}

#[tokio::test]
async fn stopping_loses_nothing_the_next_start_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(config(dir.path()), Duration::from_secs(60)).await;
    let client = h.events("local").await;
    client
        .put_events()
        .entries(entry("ci", "Slow", json!({})))
        .send()
        .await
        .unwrap();
    let db = h.running.db().clone();
    // The slow delivery keeps the bus from settling.
    let unsettled = h.running.settle(Duration::from_millis(100)).await;
    assert!(
        unsettled
            .unwrap_err()
            .to_string()
            .contains("1 deliveries still queued"),
        "a running delivery is not settled"
    );
    h.running.shutdown().await;
    assert_eq!(h.slow.done.load(Ordering::SeqCst), 0);
    assert_eq!(
        inspect::pending_deliveries(&db).unwrap(),
        1,
        "the in-flight delivery stays queued"
    );
    drop(db);

    let again = start_with(config(dir.path()), Duration::ZERO).await;
    eventually("the queued delivery is made after the restart", || {
        again.slow.done.load(Ordering::SeqCst) == 1
    })
    .await;
    let db = again.running.db().clone();
    eventually("the queue is empty", || {
        inspect::pending_deliveries(&db).unwrap() == 0
    })
    .await;
    again.running.shutdown().await;
}

#[tokio::test]
async fn a_function_without_a_handler_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let template = Template::parse(TEMPLATE).unwrap();
    let registry = Registry::default().register("Recorder", |_| Arc::new(Recorder::default()));
    let err = purser_local::start(config(dir.path()), &template, &registry, None)
        .await
        .err()
        .expect("start-up is refused");
    let text = err.to_string();
    assert!(
        text.contains("Broken") && text.contains("Flaky") && text.contains("Slow"),
        "{text}"
    );

    let registry = Registry::default()
        .register("Recorder", |_| Arc::new(Recorder::default()))
        .register("Flaky", |_| Arc::new(Recorder::default()))
        .register("Broken", |_| Arc::new(Recorder::default()))
        .register("Slow", |_| Arc::new(Recorder::default()))
        .register("Ghost", |_| Arc::new(Recorder::default()));
    let err = purser_local::start(config(dir.path()), &template, &registry, None)
        .await
        .err()
        .expect("start-up is refused");
    assert!(err.to_string().contains("Ghost"), "{err}");
}
