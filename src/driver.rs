//! Drives a running local control plane from outside, as its users and
//! member accounts do: the HTTP API as a person (`X-Purser-Principal`) or
//! as a member account (its 12-digit access key id, as moto takes it), and
//! EventBridge `PutEvents` with a member account's key; then reads what
//! happened back from the bus archive and waits, by polling or until the
//! bus has settled. The demo, the examples and the system tests share it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use purser_local::{Db, Running, inspect};
use serde_json::Value;

/// How long one HTTP or PutEvents call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Driver::until`] polls before it gives up.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(10);

/// Who makes an HTTP call.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    /// The local platform admin (no header: `purser up`'s default caller).
    Admin,
    /// An IAM principal ARN, as `X-Purser-Principal`.
    Principal(&'a str),
    /// A member account's own IAM identity (its account id as the key id).
    Account(&'a str),
}

/// An HTTP answer: the status and the body as JSON (a string when the
/// body is not JSON, null when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The body, when the status is `status`; otherwise an error naming
    /// `what` and the API's own message.
    pub fn expect(self, what: &str, status: u16) -> anyhow::Result<Value> {
        if self.status == status {
            return Ok(self.body);
        }
        let message = self.body["error"]["message"]
            .as_str()
            .map_or_else(|| self.body.to_string(), String::from);
        bail!(
            "{what} answered {} (expected {status}): {message}",
            self.status
        )
    }
}

pub struct Driver {
    addr: SocketAddr,
    region: String,
    db: Db,
    http: reqwest::Client,
    events: aws_sdk_eventbridge::Config,
    clients: Mutex<HashMap<String, aws_sdk_eventbridge::Client>>,
}

impl Driver {
    pub fn new(running: &Running) -> anyhow::Result<Self> {
        let addr = running.addr();
        let region = purser_local::LOCAL_REGION.to_string();
        // Configured here rather than from the environment, so no AWS
        // profile or variable of the machine changes where events go.
        let events = aws_sdk_eventbridge::Config::builder()
            .http_client(purser_aws::http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(Credentials::new(
                purser_local::LOCAL_ACCOUNT,
                "local",
                None,
                None,
                "purser-driver",
            ))
            .build();
        Ok(Self {
            addr,
            region,
            db: running.db().clone(),
            http: crate::http_client()
                .build()
                .context("cannot set up the HTTP client")?,
            events,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls the HTTP API as `who`, with an `Idempotency-Key` when given.
    pub async fn call(
        &self,
        who: As<'_>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes())?,
                format!("{}{path}", self.url()),
            )
            .header("content-type", "application/json");
        match who {
            As::Admin => {}
            As::Principal(arn) => request = request.header("x-purser-principal", arn),
            // The local endpoint takes a 12-digit access key id as the
            // caller's account, as moto does; it verifies no signature.
            As::Account(account) => {
                request = request.header(
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential={account}/{}/{}/execute-api/aws4_request, SignedHeaders=host, Signature=local",
                        Utc::now().format("%Y%m%d"),
                        self.region
                    ),
                )
            }
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            anyhow::Ok(Reply { status, body })
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("no answer within {} s", CALL_TIMEOUT.as_secs()))
            .and_then(|r| r)
            .with_context(|| format!("{method} {path} on {}", self.url()))
    }

    /// Puts one event on Purser's bus as `account` would (its access key
    /// id is the account), at `time` when given; refused entries are errors.
    pub async fn put(
        &self,
        account: &str,
        source: &str,
        detail_type: &str,
        detail: &Value,
        time: Option<DateTime<Utc>>,
        resources: Vec<String>,
    ) -> anyhow::Result<()> {
        let mut entry = PutEventsRequestEntry::builder()
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .event_bus_name("purser")
            .set_resources(Some(resources));
        if let Some(time) = time {
            entry = entry.time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                time.timestamp(),
            ));
        }
        let what = || format!("PutEvents {detail_type} as account {account}");
        let reply = tokio::time::timeout(
            CALL_TIMEOUT,
            self.client(account)
                .put_events()
                .entries(entry.build())
                .send(),
        )
        .await
        .map_err(|_| anyhow!("no answer within {} s", CALL_TIMEOUT.as_secs()))
        .with_context(what)?
        .with_context(what)?;
        if reply.failed_entry_count() > 0 {
            let why: Vec<&str> = reply
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect();
            bail!("{}: refused: {}", what(), why.join("; "));
        }
        Ok(())
    }

    /// An EventBridge client on the local endpoint whose access key id is
    /// `account`, for callers that put many entries a call (benchmarks).
    pub fn events_client(&self, account: &str) -> aws_sdk_eventbridge::Client {
        self.client(account)
    }

    /// An EventBridge client whose access key id is `account`.
    fn client(&self, account: &str) -> aws_sdk_eventbridge::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(account.to_string())
            .or_insert_with(|| {
                let config = self
                    .events
                    .to_builder()
                    .credentials_provider(Credentials::new(
                        account,
                        "local",
                        None,
                        None,
                        "purser-driver",
                    ))
                    .build();
                aws_sdk_eventbridge::Client::from_conf(config)
            })
            .clone()
    }

    /// Archived events of `detail_type` after archive position `after`,
    /// oldest first.
    pub fn archived(
        &self,
        detail_type: &str,
        after: i64,
    ) -> anyhow::Result<Vec<inspect::ArchivedEvent>> {
        inspect::archive(
            &self.db,
            &inspect::ArchiveFilter {
                detail_type: Some(detail_type.to_string()),
                after_seq: Some(after),
                limit: 10_000,
                ..Default::default()
            },
        )
        .context("reading the bus archive")
    }

    /// Polls `check` until it gives a value, for at most `within`; the
    /// error names what was awaited and any dead letters, which are most
    /// often why.
    pub async fn until<T>(
        &self,
        what: &str,
        within: Duration,
        mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = check().await? {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                let dlq = inspect::dead_letters(&self.db, 5)
                    .map(|d| {
                        d.iter()
                            .map(|d| format!("{} failed: {}", d.function, d.error))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                let hint = if dlq.is_empty() {
                    String::new()
                } else {
                    format!(" (dead letters: {})", dlq.join("; "))
                };
                bail!(
                    "gave up after {:.1} s waiting until {what}{hint}",
                    within.as_secs_f64()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the bus has delivered everything put so far (see
    /// [`Running::settle`]): to show that nothing more happens, without
    /// sleeping.
    pub async fn settle(&self) -> anyhow::Result<()> {
        inspect::settle(&self.db, STEP_TIMEOUT)
            .await
            .context("waiting for the bus to settle")
    }

    /// Polls `GET /accounts/{id}` (as the admin) until its state is one of
    /// `states`; a failed account is an error with its reason.
    pub async fn account_until(&self, id: &str, states: &[&str]) -> anyhow::Result<Value> {
        let mut last = Value::Null;
        let found = self
            .until(
                &format!("account {id} is {}", states.join(" or ")),
                STEP_TIMEOUT,
                async || {
                    let view = self
                        .call(As::Admin, "GET", &format!("/accounts/{id}"), None, None)
                        .await?
                        .expect("GET /accounts/{id}", 200)?;
                    let state = view["state"].as_str().unwrap_or_default().to_string();
                    if states.contains(&state.as_str()) {
                        return Ok(Some(view));
                    }
                    if state == "failed" && !states.contains(&"failed") {
                        bail!(
                            "account {id} failed: {}",
                            view["failure_reason"].as_str().unwrap_or_default()
                        );
                    }
                    last = view;
                    Ok(None)
                },
            )
            .await;
        found.with_context(|| {
            format!(
                "account {id} was last {}",
                last["state"].as_str().unwrap_or("unknown")
            )
        })
    }
}
