//! The recorder's hot path: a batch of `InvocationsReported` normalised into
//! priced lake records and encoded as newline-delimited JSON, as the lake
//! sinks write it. Throughput is invocation records per second (one core).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use purser_core::lake::{InvocationsReported, invocation_records};
use purser_core::spend::PriceTable;
use serde_json::{Value, json};

fn batch(reports: usize) -> Value {
    let reports: Vec<Value> = (0..reports)
        .map(|i| {
            json!({"request_id": format!("8f5b3c1e-2d4a-4b6f-9e0d-{i:012}"),
                   "timestamp": "2026-11-21T10:00:00.123Z", "duration_ms": 12.75 + i as f64,
                   "billed_duration_ms": 13 + i as u64, "max_memory_used_mb": 70,
                   "init_duration_ms": if i % 50 == 0 { json!(180.2) } else { Value::Null }})
        })
        .collect();
    json!({"version": 1, "batch_id": "b-42", "function_name": "checkout-api", "architecture": "arm64",
           "memory_mb": 512, "reports": reports})
}

fn normalise_and_encode(c: &mut Criterion) {
    let prices = PriceTable::builtin();
    let detail = batch(1_000);
    let now: chrono::DateTime<chrono::Utc> = "2026-11-21T10:05:00Z".parse().unwrap();
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("parse_price_encode_1000_invocations", |b| {
        let mut out = Vec::with_capacity(400_000);
        b.iter(|| {
            let (batch, arch) = InvocationsReported::parse(&detail).unwrap();
            let screened = batch.screen(now);
            let priced = invocation_records(
                &batch,
                &screened.valid,
                arch,
                "210987654321",
                "us-east-1",
                Some("payments"),
                |day| prices.lambda("us-east-1", day).ok().cloned(),
            )
            .unwrap();
            out.clear();
            for p in &priced {
                serde_json::to_writer(&mut out, &p.record).unwrap();
                out.push(b'\n');
            }
            std::hint::black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, normalise_and_encode);
criterion_main!(benches);
