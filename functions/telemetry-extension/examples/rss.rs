//! Resident memory of the telemetry extension under load.
//!
//! ```text
//! export CARGO_TARGET_DIR=/work/.cache/target
//! cargo build --release -p purser-telemetry-extension --bins --examples
//! $CARGO_TARGET_DIR/release/examples/rss [REPORTS]
//! ```
//!
//! 1. **In process**: REPORTS (default 100,000) synthetic invocations, in
//!    Telemetry API posts of 250 invocations (`platform.start`,
//!    `platform.runtimeDone`, `platform.report`, about 220 KB a post, under
//!    the subscription's 256 KiB), parsed and batched by the pipeline and
//!    put on a fake `PutEvents` that accepts everything; prints this
//!    process's VmRSS / VmHWM from `/proc/self/status`.
//! 2. **The release binary**: `purser-telemetry-extension` started as
//!    Lambda starts it, against a fake Runtime API and a fake EventBridge
//!    on loopback (plain HTTP: the AWS SDK client signs and sends real
//!    `PutEvents` calls, without TLS); the same posts over HTTP, then
//!    `SHUTDOWN`; prints the child's VmRSS / VmHWM from `/proc/PID/status`.
//! 3. **The release binary, EventBridge down**: every call fails, so the
//!    queue fills to its bound and drops its oldest batches.

#[path = "../tests/extension/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use purser_telemetry_extension::batch::{BatchLimits, Batcher, FunctionInfo};
use purser_telemetry_extension::outbox::{EntryOutcome, Outbox, OutboxLimits};
use purser_telemetry_extension::pipeline::Pipeline;
use purser_telemetry_extension::send::PutEvents;
use purser_telemetry_extension::telemetry::parse_post;
use support::*;

const PER_POST: usize = 250;

struct AcceptAll;

impl PutEvents for AcceptAll {
    async fn put_events(&self, details: Vec<String>) -> Result<Vec<EntryOutcome>, String> {
        Ok(vec![EntryOutcome::Accepted; details.len()])
    }
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

async fn in_process(reports: usize) {
    let before = memory_kb("self");
    let pipeline = Pipeline::new(
        Batcher::new(
            FunctionInfo {
                function_name: "orders-api".into(),
                architecture: "x86_64".into(),
                memory_mb: 1024,
            },
            BatchLimits::default(),
        ),
        Outbox::new(OutboxLimits::default()),
    );
    let task = tokio::spawn(pipeline.clone().run(AcceptAll));
    let started = Instant::now();
    for first in (0..reports).step_by(PER_POST) {
        let post = telemetry_post(first, PER_POST.min(reports - first));
        let telemetry = parse_post(post.as_bytes(), chrono::Utc::now()).unwrap();
        pipeline.accept(telemetry);
        tokio::task::yield_now().await;
    }
    pipeline
        .shutdown(tokio::time::Instant::now() + Duration::from_secs(2))
        .await;
    task.await.unwrap();
    let stats = pipeline.stats();
    let (rss, hwm) = memory_kb("self");
    println!(
        "in process: {} reports parsed, batched and put ({} batches) in {:.2?}; \
         VmRSS {} (before {}), VmHWM {} (before {})",
        stats.outbox.reports_sent,
        stats.outbox.batches_sent,
        started.elapsed(),
        mb(rss),
        mb(before.0),
        mb(hwm),
        mb(before.1)
    );
    assert_eq!(stats.outbox.reports_sent, reports as u64);
}

async fn binary(reports: usize, eventbridge_down: bool) {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("purser-telemetry-extension"))
        .filter(|p| p.exists())
        .expect("build the binary first: cargo build --release -p purser-telemetry-extension --bins --examples");
    let runtime = FakeRuntimeApi::start().await;
    let bus = FakeEventBridge::start().await;
    bus.set_down(eventbridge_down);
    let port = free_port().await;
    let mut child = Command::new(&binary)
        .env_clear()
        .envs(extension_env(&runtime, &bus, port))
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    runtime.subscribed().await;
    let idle = memory_kb(&pid);
    let started = Instant::now();
    let mut peak_rss = 0;
    for first in (0..reports).step_by(PER_POST) {
        let post = telemetry_post(first, PER_POST.min(reports - first));
        assert!(post_telemetry(port, post).await.is_success());
        peak_rss = peak_rss.max(memory_kb(&pid).0);
    }
    let posted = started.elapsed();
    if !eventbridge_down {
        // Let the background task catch up, as it would between posts.
        while bus.accepted_count() * 500 + 500 < reports
            && started.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    runtime.shut_down(2_000).await;
    let (rss, hwm) = memory_kb(&pid);
    let sent: usize = bus
        .accepted()
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["reports"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    println!(
        "binary{}: {} reports posted in {:.2?}, {} accepted by EventBridge in {} calls; \
         idle VmRSS {}, peak sampled VmRSS {}, after SHUTDOWN VmRSS {} \
         (RssAnon {}, RssFile {}), VmHWM {}",
        if eventbridge_down {
            " (EventBridge down)"
        } else {
            ""
        },
        reports,
        posted,
        sent,
        bus.call_count(),
        mb(idle.0),
        mb(peak_rss),
        mb(rss),
        mb(status_kb(&pid, "RssAnon")),
        mb(status_kb(&pid, "RssFile")),
        mb(hwm)
    );
    if !eventbridge_down {
        assert_eq!(sent, reports);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let reports = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("REPORTS is a number"))
        .unwrap_or(100_000);
    in_process(reports).await;
    binary(reports, false).await;
    binary(reports, true).await;
    let _ = Arc::new(());
}
