//! The extension binary through a whole Lambda lifecycle, on loopback:
//! it registers for `SHUTDOWN` only, subscribes to platform telemetry,
//! reads Lambda's posts (SnapStart events included), puts signed
//! `PutEvents` calls on the configured bus with the AWS SDK, retries a
//! throttled entry with the same batch, and flushes everything at
//! `SHUTDOWN`.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use hyper::StatusCode;
use purser_telemetry_extension::batch::InvocationsReported;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_every_invocation_through_a_lambda_lifecycle() {
    let runtime = FakeRuntimeApi::start().await;
    let bus = FakeEventBridge::start().await;
    // The second call (the first batch is cut at 50 reports) refuses one entry.
    bus.script([vec![], vec![0]]);
    let port = free_port().await;
    let child = Child(
        Command::new(env!("CARGO_BIN_EXE_purser-telemetry-extension"))
            .env_clear()
            .envs(extension_env(&runtime, &bus, port))
            .env("PURSER_TELEMETRY_MAX_REPORTS", "50")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let subscription = tokio::time::timeout(Duration::from_secs(20), runtime.subscribed())
        .await
        .expect("the extension subscribes within 20 s");
    assert_eq!(
        runtime.registered_events(),
        Some(serde_json::json!({"events": ["SHUTDOWN"]})),
        "registered for SHUTDOWN only: never on the invoke path"
    );
    assert_eq!(
        runtime.extension_name().as_deref(),
        Some("purser-telemetry-extension")
    );
    assert_eq!(subscription["types"], serde_json::json!(["platform"]));
    assert_eq!(
        subscription["destination"]["URI"],
        format!("http://sandbox.localdomain:{port}")
    );

    // 120 invocations in three posts: two full batches go at once.
    for first in [0, 40, 80] {
        assert_eq!(
            post_telemetry(port, telemetry_post(first, 40)).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        post_telemetry(port, "not json".into()).await,
        StatusCode::BAD_REQUEST
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus.accepted().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", bus.calls());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // SHUTDOWN flushes the 20 buffered reports.
    tokio::time::timeout(Duration::from_secs(5), runtime.shut_down(2_000))
        .await
        .expect("the extension is done with SHUTDOWN before its deadline");

    let calls = bus.calls();
    for call in &calls {
        for (bus_name, source, detail_type, _) in call {
            assert_eq!(bus_name, "purser-test");
            assert_eq!(source, "purser.telemetry");
            assert_eq!(detail_type, "InvocationsReported");
        }
    }
    assert_eq!(bus.unsigned_calls(), 0, "every call is SigV4-signed");
    // The refused entry was sent again, byte for byte.
    let refused = &calls[1][0].3;
    assert!(
        calls[2..].iter().flatten().any(|e| &e.3 == refused),
        "{calls:#?}"
    );

    let mut seen = HashMap::new();
    let mut batch_ids = HashMap::new();
    for detail in bus.accepted() {
        let batch: InvocationsReported = serde_json::from_str(&detail).unwrap();
        assert_eq!(batch.function_name, "orders-api");
        assert_eq!(batch.memory_mb, 1024);
        *batch_ids.entry(batch.batch_id).or_insert(0) += 1;
        for r in batch.reports {
            assert_eq!(r.billed_duration_ms, 12);
            assert_eq!(r.max_memory_used_mb, 71);
            *seen.entry(r.request_id).or_insert(0) += 1;
        }
    }
    assert_eq!(batch_ids.len(), 3, "50 + 50 + 20 at shutdown");
    assert!(batch_ids.values().all(|&n| n == 1));
    assert_eq!(seen.len(), 120);
    assert!(seen.values().all(|&n| n == 1));
    for i in 0..120 {
        assert!(seen.contains_key(&request_id(i)));
    }
    drop(child);
}
