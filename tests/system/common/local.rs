//! `purser up` in-process for end-to-end tests of budgets, spend and
//! throttling: a fresh data dir, fast retries, and the calls a developer,
//! the telemetry layer and a schedule would make.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use purser::driver::{As, Driver};
use purser_core::ports::{QueryEngine, QueryResult};
use purser_core::{Clock, ManualClock};
use purser_local::lambdas::{self, SimulatedFunction};
use purser_local::{RetryTiming, Running, RuntimeConfig, Template, inspect};
use serde_json::{Value, json};

pub const DEV: &str = "arn:aws:iam::123456789012:user/ana";
pub const REGION: &str = purser_local::LOCAL_REGION;
/// One report of [`Local::report`]: 900 s billed at 10,240 MB on arm64,
/// 9,000 GB-s × $0.0000133334 + $0.0000002.
pub const COST: f64 = 9000.0 * 0.0000133334 + 0.0000002;

pub struct Local {
    pub running: Running,
    /// What drives it from outside, as the demo does.
    pub driver: Driver,
    pub http: reqwest::Client,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The clock, when the test moves time itself.
    pub manual: Option<Arc<ManualClock>>,
}

/// Where the harness's clock starts: the middle of a day in the middle of a
/// month, so no test depends on the day it runs. Time runs from there.
pub const TEST_START: &str = "2026-11-18T12:00:00Z";

/// How a test wants its `purser up`.
pub struct Options {
    /// The system clock when `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// A manual clock (wins over `clock`): time moves only when told.
    pub manual: Option<Arc<ManualClock>>,
    /// How long the simulated organization takes to create an account.
    pub organization_delay: Duration,
    pub account_limit: Option<u32>,
    pub shutdown_grace: Option<Duration>,
    /// Whether member accounts may put `aws.*` events (CloudFormation).
    pub allow_aws_sources: bool,
    /// Puts the handlers' ports behind this fault injector.
    pub faults: Option<Arc<super::faults::Faults>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: None,
            manual: None,
            organization_delay: Duration::from_millis(50),
            account_limit: None,
            shutdown_grace: None,
            allow_aws_sources: false,
            faults: None,
        }
    }
}

/// `purser up` on a clock shifted to [`TEST_START`].
pub async fn start() -> Local {
    let start = chrono::DateTime::parse_from_rfc3339(TEST_START)
        .unwrap()
        .with_timezone(&Utc);
    start_with_clock(Some(Arc::new(purser_core::ShiftedClock::starting_at(
        start,
    ))))
    .await
}

/// `purser up` on `clock` (the system clock when `None`).
pub async fn start_with_clock(clock: Option<Arc<dyn Clock>>) -> Local {
    start_with(Options {
        clock,
        ..Options::default()
    })
    .await
}

/// `purser up` in a fresh data dir with fast retries, as `options` say.
pub async fn start_with(options: Options) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(dir.path(), 0);
    config.retry_timing = RetryTiming {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    config.organization.delay = options.organization_delay;
    config.allow_aws_sources = options.allow_aws_sources;
    if let Some(limit) = options.account_limit {
        config.organization.account_limit = limit;
    }
    config.wrap_ports = options.faults.as_ref().map(|f| f.hook());
    if let Some(grace) = options.shutdown_grace {
        config.shutdown_grace = grace;
    }
    let clock = match &options.manual {
        Some(manual) => Some(manual.clone() as Arc<dyn Clock>),
        None => options.clock,
    };
    let running = purser_local::start(
        config,
        &Template::builtin(),
        &purser::registry::handlers(),
        clock,
    )
    .await
    .expect("purser starts");
    Local {
        url: format!("http://{}", running.addr()),
        driver: Driver::new(&running).unwrap(),
        running,
        http: purser::http_client().build().unwrap(),
        dir,
        manual: options.manual,
    }
}

/// A decimal string (or a number) as f64, for comparisons within 1e-6.
pub fn amount(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

impl Local {
    /// Now on the running system's clock.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.running.ports().clock.now()
    }

    /// Calls the API as the local platform admin.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(method, path, None, body, None).await
    }

    /// Calls the API as `who` (an IAM principal ARN; the admin when `None`),
    /// with an `Idempotency-Key` when given.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let who = who.map_or(As::Admin, As::Principal);
        let reply = self
            .driver
            .call(who, method, path, body.as_ref(), key)
            .await
            .unwrap();
        (reply.status, reply.body)
    }

    /// Waits until every event put so far is delivered.
    pub async fn settle(&self) {
        self.driver.settle().await.unwrap();
    }

    /// Team `payments` with the developer as a member, and a ready account
    /// of it: `(request id, account id)`.
    pub async fn ready_account(&self) -> (String, String) {
        self.call("PUT", "/teams/payments", Some(json!({"members": [DEV]})))
            .await;
        let (_, body) = self
            .call(
                "POST",
                "/accounts",
                Some(json!({"team": "payments", "owner": "ana@example.com", "purpose": "budgets"})),
            )
            .await;
        let id = body["id"].as_str().unwrap().to_string();
        for _ in 0..500 {
            let (_, a) = self.call("GET", &format!("/accounts/{id}"), None).await;
            if a["state"] == "ready" {
                return (id, a["account_id"].as_str().unwrap().to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never ready");
    }

    /// `n` reports of [`COST`] each from `function` in `account`, put as
    /// the telemetry layer does; the same `batch_id` again is a redelivery.
    pub async fn report(&self, account: &str, function: &str, batch_id: &str, n: usize) {
        let reports: Vec<Value> = (0..n)
            .map(|i| json!({"request_id": format!("{batch_id}-{i}"), "timestamp": self.now().to_rfc3339(),
                "duration_ms": 899_999.0, "billed_duration_ms": 900_000, "max_memory_used_mb": 2000, "init_duration_ms": null}))
            .collect();
        let detail = json!({"version": 1, "batch_id": batch_id, "function_name": function, "architecture": "arm64", "memory_mb": 10240, "reports": reports});
        self.driver
            .put(
                account,
                "purser.telemetry",
                "InvocationsReported",
                &detail,
                None,
                vec![],
            )
            .await
            .unwrap();
    }

    /// The details of archived events of one type, oldest first.
    pub fn archived(&self, detail_type: &str) -> Vec<Value> {
        inspect::archive(
            self.running.db(),
            &inspect::ArchiveFilter {
                detail_type: Some(detail_type.into()),
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| e.envelope["detail"].clone())
        .collect()
    }

    /// The thresholds `BudgetThresholdCrossed` announced, in order.
    pub fn crossings(&self) -> Vec<u64> {
        self.archived("BudgetThresholdCrossed")
            .iter()
            .map(|d| d["threshold"].as_u64().unwrap())
            .collect()
    }

    /// The simulated functions of `account`: name and reserved concurrency.
    pub fn functions(&self, account: &str) -> Vec<(String, Option<u32>)> {
        lambdas::functions(self.running.db(), Some(account))
            .unwrap()
            .into_iter()
            .map(
                |SimulatedFunction {
                     name,
                     reserved_concurrency,
                     ..
                 }| (name, reserved_concurrency),
            )
            .collect()
    }

    /// A named query on this runtime's local lake.
    pub async fn lake_query(&self, name: &str, params: &[&str]) -> QueryResult {
        let query = purser_core::lake::named_queries::named(name).unwrap();
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        purser_query::LocalQueryEngine::new(self.dir.path())
            .unwrap()
            .run(&query, &params)
            .await
            .unwrap()
    }

    /// Runs the spend function as its schedule does.
    pub async fn settle_spend(&self) -> Value {
        self.running.run_schedule("SpendFunction").await.unwrap()
    }

    /// Writes NDJSON lines into a file of the local lake, as Firehose (or a
    /// CUR export) would have delivered them.
    pub fn drop_into_lake(&self, path: &str, lines: &[Value]) {
        let file = self.dir.path().join("lake").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(file, text).unwrap();
    }

    /// The `purser` CLI against this `purser up` (as its admin): its stdout.
    pub async fn cli(&self, args: &[&str]) -> String {
        use assert_cmd::cargo::CommandCargoExt;
        let mut cmd = std::process::Command::cargo_bin("purser").unwrap();
        cmd.args(args).env("PURSER_ENDPOINT", &self.url);
        let shown = format!("{args:?}");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "purser {shown}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The runtime's manual clock (a runtime started with one).
    pub fn manual_clock(&self) -> &ManualClock {
        self.manual.as_deref().expect("a manual clock")
    }

    /// Moves the manual clock on by `minutes`.
    pub fn advance(&self, minutes: i64) -> chrono::DateTime<Utc> {
        self.manual_clock()
            .advance(chrono::Duration::minutes(minutes));
        self.now()
    }

    /// An event as the member account's forwarding rule delivers it.
    pub async fn forward(&self, account: &str, source: &str, detail_type: &str, detail: Value) {
        self.driver
            .put(
                account,
                source,
                detail_type,
                &detail,
                Some(self.now()),
                vec![],
            )
            .await
            .unwrap();
        self.settle().await;
    }

    /// An EC2 instance launched in `account` and running, as its member
    /// account forwards it: the `RunInstances` call (where a trail logs it),
    /// which tells the type, then the state change that starts its run.
    pub async fn launch(&self, account: &str, instance_id: &str, instance_type: &str) {
        self.forward(
            account,
            "aws.ec2",
            "AWS API Call via CloudTrail",
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "requestParameters": {"instanceType": instance_type},
                "responseElements": {"instancesSet": {"items": [
                    {"instanceId": instance_id, "instanceType": instance_type}]}}}),
        )
        .await;
        self.forward(
            account,
            "aws.ec2",
            "EC2 Instance State-change Notification",
            json!({"instance-id": instance_id, "state": "running"}),
        )
        .await;
    }

    /// The recorder's `Accrual` schedule, run once: running resources'
    /// slices priced.
    pub async fn accrue(&self) -> Value {
        self.running.run_schedule("RecorderFunction").await.unwrap()
    }

    /// Team `payments`' spend counted this month and last, in USD.
    pub async fn team_spent(&self) -> f64 {
        let team = purser_core::TeamName::parse("payments").unwrap();
        let now = self.now().date_naive();
        let first = chrono::Datelike::with_day(&now, 1).unwrap() - chrono::Duration::days(31);
        let days = self
            .running
            .ports()
            .store
            .team_spend(&team, first, purser_core::lake::last_day_of_month(now))
            .await
            .unwrap();
        days.iter().map(|(_, nanos)| *nanos as f64 / 1e9).sum()
    }

    pub async fn until(&self, what: &str, mut check: impl AsyncFnMut(&Self) -> bool) {
        self.driver
            .until(what, Duration::from_secs(10), async || {
                Ok(check(self).await.then_some(()))
            })
            .await
            .unwrap();
    }
}
