//! Lambda and EventBridge on loopback, for running the real extension
//! binary: a fake Runtime API (Extensions API and Telemetry API
//! subscription), a fake EventBridge `PutEvents` endpoint, and a client
//! that posts telemetry as Lambda does. Shared by `tests/extension/lifecycle.rs` and
//! `examples/rss.rs`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// Serves `handle` on a loopback port until the process ends.
async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handle = handle.clone();
                    async move { Ok::<_, Infallible>(handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A loopback port free a moment ago.
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[derive(Default)]
struct RuntimeState {
    registered_events: Option<Value>,
    extension_name: Option<String>,
    subscription: Option<Value>,
    next_calls: usize,
}

/// The Runtime API's extension endpoints. The first `event/next` is
/// answered with `SHUTDOWN` once [`FakeRuntimeApi::shut_down`] is called;
/// later ones never are (Lambda stops the process).
#[derive(Clone)]
pub struct FakeRuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<RuntimeState>>,
    shutdown_deadline_ms: watch::Sender<Option<u64>>,
    changed: Arc<Notify>,
}

impl FakeRuntimeApi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(RuntimeState::default()));
        let (deadline_tx, _) = watch::channel(None);
        let changed = Arc::new(Notify::new());
        let (s, d, c) = (state.clone(), deadline_tx.clone(), changed.clone());
        let addr = serve(move |req: Request<Incoming>| {
            let (state, deadline, changed) = (s.clone(), d.clone(), c.clone());
            async move {
                let path = req.uri().path().to_owned();
                let method = req.method().clone();
                let name = req
                    .headers()
                    .get("Lambda-Extension-Name")
                    .map(|v| v.to_str().unwrap().to_owned());
                let id_ok = req
                    .headers()
                    .get("Lambda-Extension-Identifier")
                    .is_some_and(|v| v == "ext-1");
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let r = match (method.as_str(), path.as_str()) {
                    ("POST", "/2020-01-01/extension/register") => {
                        let mut s = state.lock().unwrap();
                        s.registered_events = Some(serde_json::from_slice(&body).unwrap());
                        s.extension_name = name;
                        let mut r = reply(
                            StatusCode::OK,
                            json!({"functionName": "orders-api", "functionVersion": "$LATEST", "handler": "bootstrap"})
                                .to_string(),
                        );
                        r.headers_mut()
                            .insert("Lambda-Extension-Identifier", "ext-1".parse().unwrap());
                        r
                    }
                    ("PUT", "/2022-07-01/telemetry") if id_ok => {
                        state.lock().unwrap().subscription =
                            Some(serde_json::from_slice(&body).unwrap());
                        reply(StatusCode::OK, "OK")
                    }
                    ("GET", "/2020-01-01/extension/event/next") if id_ok => {
                        let first = {
                            let mut s = state.lock().unwrap();
                            s.next_calls += 1;
                            s.next_calls == 1
                        };
                        changed.notify_waiters();
                        if !first {
                            std::future::pending::<()>().await;
                        }
                        let mut rx = deadline.subscribe();
                        let deadline_ms = *rx.wait_for(Option::is_some).await.unwrap();
                        reply(
                            StatusCode::OK,
                            json!({"eventType": "SHUTDOWN", "shutdownReason": "SPINDOWN", "deadlineMs": deadline_ms.unwrap()})
                                .to_string(),
                        )
                    }
                    _ => reply(StatusCode::NOT_FOUND, format!("{method} {path}")),
                };
                changed.notify_waiters();
                r
            }
        })
        .await;
        Self {
            addr,
            state,
            shutdown_deadline_ms: deadline_tx,
            changed,
        }
    }

    async fn wait_until<T>(&self, f: impl Fn(&RuntimeState) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            if let Some(v) = f(&self.state.lock().unwrap()) {
                return v;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// The subscription body, once the extension has subscribed and is
    /// waiting for its first event.
    pub async fn subscribed(&self) -> Value {
        self.wait_until(|s| s.subscription.clone().filter(|_| s.next_calls >= 1))
            .await
    }

    pub fn registered_events(&self) -> Option<Value> {
        self.state.lock().unwrap().registered_events.clone()
    }

    pub fn extension_name(&self) -> Option<String> {
        self.state.lock().unwrap().extension_name.clone()
    }

    /// Sends `SHUTDOWN` with a deadline `ms` from now and waits for the
    /// extension to be done with it (its next `event/next`).
    pub async fn shut_down(&self, ms: u64) {
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        self.shutdown_deadline_ms.send_replace(Some(now + ms));
        self.wait_until(|s| (s.next_calls >= 2).then_some(())).await;
    }
}

#[derive(Default)]
struct BusState {
    /// Per call: (bus, source, detail-type, detail) of each entry.
    calls: Vec<Vec<(String, String, String, String)>>,
    accepted: Vec<String>,
    script: VecDeque<Vec<usize>>,
    unsigned_calls: usize,
    /// Every call fails with HTTP 500 while set.
    down: bool,
}

/// EventBridge's `PutEvents` (JSON 1.1 protocol). Entries listed by the
/// script are refused with `ThrottlingException`, one script step a call.
#[derive(Clone)]
pub struct FakeEventBridge {
    pub addr: SocketAddr,
    state: Arc<Mutex<BusState>>,
}

impl FakeEventBridge {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(BusState::default()));
        let s = state.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let state = s.clone();
            async move {
                let target = req
                    .headers()
                    .get("X-Amz-Target")
                    .map(|v| v.to_str().unwrap().to_owned());
                let signed = req.headers().get("Authorization").is_some_and(|v| {
                    v.to_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                });
                let body = req.into_body().collect().await.unwrap().to_bytes();
                if target.as_deref() != Some("AWSEvents.PutEvents") {
                    return reply(StatusCode::BAD_REQUEST, "not PutEvents");
                }
                let request: Value = serde_json::from_slice(&body).unwrap();
                let field = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_owned();
                let entries: Vec<_> = request["Entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            field(e, "EventBusName"),
                            field(e, "Source"),
                            field(e, "DetailType"),
                            field(e, "Detail"),
                        )
                    })
                    .collect();
                let mut s = state.lock().unwrap();
                if s.down {
                    s.calls.push(Vec::new());
                    let mut r = reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"__type": "InternalException", "message": "down"}).to_string(),
                    );
                    r.headers_mut().insert(
                        "Content-Type",
                        "application/x-amz-json-1.1".parse().unwrap(),
                    );
                    return r;
                }
                if !signed {
                    s.unsigned_calls += 1;
                }
                let refuse = s.script.pop_front().unwrap_or_default();
                let mut results = Vec::new();
                for (i, entry) in entries.iter().enumerate() {
                    if refuse.contains(&i) {
                        results.push(json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}));
                    } else {
                        s.accepted.push(entry.3.clone());
                        results.push(json!({"EventId": format!("event-{}", s.accepted.len())}));
                    }
                }
                s.calls.push(entries);
                let mut r = reply(
                    StatusCode::OK,
                    json!({"FailedEntryCount": refuse.len(), "Entries": results}).to_string(),
                );
                r.headers_mut().insert(
                    "Content-Type",
                    "application/x-amz-json-1.1".parse().unwrap(),
                );
                r
            }
        })
        .await;
        Self { addr, state }
    }

    pub fn script(&self, refusals: impl IntoIterator<Item = Vec<usize>>) {
        self.state.lock().unwrap().script.extend(refusals);
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn call_count(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    pub fn accepted_count(&self) -> usize {
        self.state.lock().unwrap().accepted.len()
    }

    pub fn calls(&self) -> Vec<Vec<(String, String, String, String)>> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Details accepted, in order.
    pub fn accepted(&self) -> Vec<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub fn unsigned_calls(&self) -> usize {
        self.state.lock().unwrap().unsigned_calls
    }
}

/// Posts one Telemetry API body to the extension, as Lambda does, and
/// returns the status. Retries the connection while the listener starts.
pub async fn post_telemetry(port: u16, body: String) -> StatusCode {
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/")
        .header("Host", format!("sandbox.localdomain:{port}"))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    response.status()
}

/// A post of `n` invocations from `first` on, as Lambda sends them when
/// subscribed to platform events: `platform.start`, `platform.runtimeDone`
/// and `platform.report` for each, with a SnapStart restore up front.
pub fn telemetry_post(first: usize, n: usize) -> String {
    let mut events = vec![json!({
        "time": "2030-05-01T12:00:00.000Z", "type": "platform.restoreStart",
        "record": {"runtimeVersion": "python:3.13.v12", "functionName": "orders-api", "functionVersion": "7"}
    })];
    for i in first..first + n {
        let id = request_id(i);
        let time = format!(
            "2030-05-01T12:{:02}:{:02}.{:03}Z",
            (i / 60_000) % 60,
            (i / 1_000) % 60,
            i % 1_000
        );
        events.push(json!({"time": time, "type": "platform.start", "record": {"requestId": id, "version": "7"}}));
        events.push(
            json!({"time": time, "type": "platform.runtimeDone", "record": {
            "requestId": id, "status": "success",
            "metrics": {"durationMs": 11.2, "producedBytes": 52},
            "spans": [{"name": "responseLatency", "start": time, "durationMs": 10.9}]}}),
        );
        events.push(json!({"time": time, "type": "platform.report", "record": {
            "requestId": id, "status": "success",
            "metrics": {"durationMs": 11.77, "billedDurationMs": 12, "memorySizeMB": 1024, "maxMemoryUsedMB": 71},
            "spans": [{"name": "extensionOverhead", "start": time, "durationMs": 0.1}],
            "tracing": {"spanId": "24cd7d670fa455f0", "type": "X-Amzn-Trace-Id", "value": "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"}}}));
    }
    Value::Array(events).to_string()
}

pub fn request_id(i: usize) -> String {
    format!("{i:08x}-49c9-448d-89b8-7ca3e6dc66aa")
}

/// VmRSS and VmHWM of a process, in kB, from /proc.
pub fn memory_kb(pid: &str) -> (u64, u64) {
    (status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM"))
}

/// A `kB` field of `/proc/PID/status` (`RssAnon`, `RssFile`, …).
pub fn status_kb(pid: &str, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The extension binary's environment, against these fakes.
pub fn extension_env(
    runtime: &FakeRuntimeApi,
    bus: &FakeEventBridge,
    port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "orders-api".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        ),
        ("AWS_SESSION_TOKEN", "session".into()),
        (
            "AWS_ENDPOINT_URL_EVENTBRIDGE",
            format!("http://{}", bus.addr),
        ),
        ("PURSER_TELEMETRY_BUS", "purser-test".into()),
        ("PURSER_TELEMETRY_PORT", port.to_string()),
        ("AWS_LAMBDA_LOG_LEVEL", "info".into()),
    ]
}
