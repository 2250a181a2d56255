//! Purser's telemetry extension: a Lambda extension, added to any function
//! as a layer, that reports every invocation's `platform.report` (billed
//! duration, memory, init duration) to Purser as `InvocationsReported`
//! events, so that the recorder can price it within minutes.
//!
//! - It registers for `SHUTDOWN` only: Lambda never waits for it on an
//!   invoke, so it adds nothing to the invoke path.
//! - It subscribes to the Telemetry API for `platform` events and serves
//!   the posts itself ([`listener`]), which only buffer ([`pipeline`]).
//! - A background task cuts batches ([`batch`]) by count, by age and at
//!   shutdown, and puts them with `PutEvents` ([`eventbridge`]), at most 10
//!   entries and 256 KiB a call, retrying failed entries with the same
//!   `batch_id`, from a bounded queue ([`outbox`]).
//!
//! `main.rs` only calls [`run`]; everything else is testable without
//! Lambda. See `docs/telemetry-extension.md`.

pub mod batch;
pub mod eventbridge;
pub mod listener;
pub mod outbox;
pub mod pipeline;
pub mod send;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use lambda_extension::{Error, Extension, LambdaEvent, NextEvent, service_fn};

use crate::batch::{BatchLimits, Batcher, FunctionInfo};
use crate::eventbridge::EventBridgeClient;
use crate::outbox::{Outbox, OutboxLimits};
use crate::pipeline::Pipeline;

/// The port the extension listens on for the Telemetry API, by default.
pub const DEFAULT_PORT: u16 = 4243;
/// The bus events go to by default: the member account's default bus, from
/// which the StackSet's rule forwards them to Purser's bus.
pub const DEFAULT_BUS: &str = "default";
/// A batch holds at most this many reports (the recorder takes 2,000).
pub const MAX_REPORTS_LIMIT: usize = 2_000;

/// The Telemetry API's buffering of the subscription: Lambda posts when
/// 1,000 events, 256 KiB or one second have gathered, whichever first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryBuffering {
    pub max_items: u32,
    pub max_bytes: u32,
    pub timeout_ms: u32,
}

impl Default for TelemetryBuffering {
    fn default() -> Self {
        Self {
            max_items: 1_000,
            max_bytes: 256 * 1024,
            timeout_ms: 1_000,
        }
    }
}

/// What the extension is configured with, from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub function: FunctionInfo,
    /// `PURSER_TELEMETRY_BUS`: a bus name or ARN.
    pub bus: String,
    /// `PURSER_TELEMETRY_PORT`.
    pub port: u16,
    pub batch: BatchLimits,
    pub outbox: OutboxLimits,
    pub buffering: TelemetryBuffering,
}

/// The configuration cannot be read; the extension then reports nothing
/// (it never fails the function it sits beside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// `arm64` or `x86_64`, Lambda's names for the architecture this binary
/// was built for.
pub fn architecture(arch: &str) -> Option<&'static str> {
    match arch {
        "aarch64" => Some("arm64"),
        "x86_64" => Some("x86_64"),
        _ => None,
    }
}

impl Config {
    /// Reads the configuration through `var` (the environment in `run`).
    /// `Ok(None)` when `PURSER_TELEMETRY_DISABLED` is `true` or `1`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("PURSER_TELEMETRY_DISABLED")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        {
            return Ok(None);
        }
        fn number<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
            default: Option<T>,
            valid: impl Fn(&T) -> bool,
            expected: &str,
        ) -> Result<T, ConfigError> {
            match value {
                None => default.ok_or_else(|| ConfigError(format!("{name} is not set"))),
                Some(v) => v
                    .parse::<T>()
                    .ok()
                    .filter(|n| valid(n))
                    .ok_or_else(|| ConfigError(format!("{name}={v:?}: expected {expected}"))),
            }
        }
        let function_name = set("AWS_LAMBDA_FUNCTION_NAME")
            .ok_or_else(|| ConfigError("AWS_LAMBDA_FUNCTION_NAME is not set".into()))?;
        let memory_mb = number::<u32>(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            None,
            |m| (128..=10_240).contains(m),
            "128 to 10240",
        )?;
        let architecture = architecture(std::env::consts::ARCH).ok_or_else(|| {
            ConfigError(format!(
                "Lambda runs arm64 and x86_64, not {}",
                std::env::consts::ARCH
            ))
        })?;
        let defaults = BatchLimits::default();
        let max_reports = number(
            "PURSER_TELEMETRY_MAX_REPORTS",
            set("PURSER_TELEMETRY_MAX_REPORTS"),
            Some(defaults.max_reports),
            |n| (1..=MAX_REPORTS_LIMIT).contains(n),
            "1 to 2000",
        )?;
        let max_age_ms = number(
            "PURSER_TELEMETRY_MAX_AGE_MS",
            set("PURSER_TELEMETRY_MAX_AGE_MS"),
            Some(defaults.max_age.as_millis() as u64),
            |n| (100..=900_000).contains(n),
            "100 to 900000",
        )?;
        let outbox = OutboxLimits::default();
        let max_batches = number(
            "PURSER_TELEMETRY_MAX_QUEUED_BATCHES",
            set("PURSER_TELEMETRY_MAX_QUEUED_BATCHES"),
            Some(outbox.max_batches),
            |n| (1..=1_000).contains(n),
            "1 to 1000",
        )?;
        let port = number(
            "PURSER_TELEMETRY_PORT",
            set("PURSER_TELEMETRY_PORT"),
            Some(DEFAULT_PORT),
            |p| *p >= 1024,
            "a port from 1024 to 65535",
        )?;
        Ok(Some(Self {
            function: FunctionInfo {
                function_name,
                architecture: architecture.into(),
                memory_mb,
            },
            bus: set("PURSER_TELEMETRY_BUS").unwrap_or_else(|| DEFAULT_BUS.into()),
            port,
            batch: BatchLimits {
                max_reports,
                max_age: Duration::from_millis(max_age_ms),
                ..defaults
            },
            outbox: OutboxLimits {
                max_batches,
                ..outbox
            },
            buffering: TelemetryBuffering::default(),
        }))
    }

    /// The body of the Telemetry API subscription: platform events only.
    pub fn subscription(&self) -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "buffering": {
                "maxItems": self.buffering.max_items,
                "maxBytes": self.buffering.max_bytes,
                "timeoutMs": self.buffering.timeout_ms,
            },
            "destination": {
                "protocol": "HTTP",
                "URI": format!("http://sandbox.localdomain:{}", self.port),
            },
        })
    }
}

/// Subscribes the registered extension to the Telemetry API.
pub async fn subscribe(extension_id: &str, config: &Config) -> Result<(), Error> {
    use http_body_util::BodyExt;
    let client = lambda_runtime_api_client::PooledClient::builder().build();
    let request = lambda_runtime_api_client::build_request()
        .method("PUT")
        .uri("/2022-07-01/telemetry")
        .header("Lambda-Extension-Identifier", extension_id)
        .header("Content-Type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(
            config.subscription().to_string(),
        ))?;
    let response = client.call(request).await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await?.to_bytes();
        return Err(format!(
            "the Telemetry API refused the subscription ({status}): {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}

/// `deadline_ms` of a `SHUTDOWN` event (milliseconds since the epoch) as
/// an instant of this process's clock.
pub fn instant_of_deadline(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Starts the pipeline (listener and sender task) for `config`.
async fn start(config: &Config) -> Result<Arc<Pipeline>, Error> {
    let sender = EventBridgeClient::from_env(config.bus.clone(), |name| std::env::var(name).ok())?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await?;
    let pipeline = Pipeline::new(
        Batcher::new(config.function.clone(), config.batch),
        Outbox::new(config.outbox),
    );
    tokio::spawn(listener::serve(listener, pipeline.clone()));
    tokio::spawn(pipeline.clone().run(sender));
    Ok(pipeline)
}

/// The extension: registers for `SHUTDOWN`, subscribes to the Telemetry
/// API and runs until Lambda shuts the environment down. Whatever goes
/// wrong in its own set-up is logged, and the extension then idles: it
/// never fails the function's init.
pub async fn run() -> Result<(), Error> {
    let config = match Config::from_env(|name| std::env::var(name).ok()) {
        Ok(Some(config)) => Some(config),
        Ok(None) => {
            tracing::info!("PURSER_TELEMETRY_DISABLED is set: reporting nothing");
            None
        }
        Err(error) => {
            tracing::error!(%error, "telemetry extension misconfigured: reporting nothing");
            None
        }
    };
    let pipeline = match &config {
        Some(config) => match start(config).await {
            Ok(p) => Some(p),
            Err(error) => {
                tracing::error!(%error, port = config.port, "telemetry listener not started: reporting nothing");
                None
            }
        },
        None => None,
    };
    let on_event = pipeline.clone();
    let extension = Extension::new()
        .with_events(&["SHUTDOWN"])
        .with_events_processor(service_fn(move |event: LambdaEvent| {
            let pipeline = on_event.clone();
            async move {
                if let (NextEvent::Shutdown(shutdown), Some(pipeline)) = (event.next, pipeline) {
                    tracing::debug!(reason = %shutdown.shutdown_reason, "SHUTDOWN");
                    pipeline
                        .shutdown(instant_of_deadline(shutdown.deadline_ms))
                        .await;
                }
                Ok::<(), Error>(())
            }
        }));
    let registered = extension.register().await?;
    if let (Some(config), Some(_)) = (&config, &pipeline) {
        match subscribe(&registered.extension_id, config).await {
            Ok(()) => tracing::debug!(
                function = %config.function.function_name,
                bus = %config.bus,
                "subscribed to the Telemetry API"
            ),
            Err(error) => {
                tracing::error!(%error, "Telemetry API subscription failed: reporting nothing")
            }
        }
    }
    registered.run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const LAMBDA: [(&str, &str); 2] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "orders-api"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769"),
    ];

    #[test]
    fn config_comes_from_the_lambda_environment_with_defaults() {
        let c = Config::from_env(env(&LAMBDA)).unwrap().unwrap();
        assert_eq!(c.function.function_name, "orders-api");
        assert_eq!(c.function.memory_mb, 1769);
        assert_eq!(
            c.function.architecture,
            architecture(std::env::consts::ARCH).unwrap()
        );
        assert_eq!(c.bus, "default");
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.batch, BatchLimits::default());
        assert_eq!(c.outbox, OutboxLimits::default());
    }

    #[test]
    fn config_overrides_and_their_bounds() {
        let mut pairs = LAMBDA.to_vec();
        pairs.extend([
            (
                "PURSER_TELEMETRY_BUS",
                "arn:aws:events:eu-west-1:111122223333:event-bus/purser",
            ),
            ("PURSER_TELEMETRY_PORT", "9100"),
            ("PURSER_TELEMETRY_MAX_REPORTS", "50"),
            ("PURSER_TELEMETRY_MAX_AGE_MS", "2500"),
            ("PURSER_TELEMETRY_MAX_QUEUED_BATCHES", "5"),
        ]);
        let c = Config::from_env(env(&pairs)).unwrap().unwrap();
        assert_eq!(
            c.bus,
            "arn:aws:events:eu-west-1:111122223333:event-bus/purser"
        );
        assert_eq!(c.port, 9100);
        assert_eq!(c.batch.max_reports, 50);
        assert_eq!(c.batch.max_age, Duration::from_millis(2500));
        assert_eq!(c.outbox.max_batches, 5);

        for (name, bad) in [
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "64"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
            ("PURSER_TELEMETRY_MAX_REPORTS", "5000"),
            ("PURSER_TELEMETRY_PORT", "80"),
        ] {
            let mut pairs: HashMap<&str, &str> = LAMBDA.into_iter().collect();
            pairs.insert(name, bad);
            let pairs: Vec<_> = pairs.into_iter().collect();
            let error = Config::from_env(env(&pairs)).unwrap_err();
            assert!(error.0.contains(name), "{error}");
        }
        assert!(Config::from_env(env(&LAMBDA[..1])).is_err());
        assert!(Config::from_env(env(&LAMBDA[1..])).is_err());
    }

    #[test]
    fn config_can_be_disabled() {
        let mut pairs = LAMBDA.to_vec();
        pairs.push(("PURSER_TELEMETRY_DISABLED", "true"));
        assert_eq!(Config::from_env(env(&pairs)), Ok(None));
    }

    #[test]
    fn architecture_uses_lambda_names() {
        assert_eq!(architecture("aarch64"), Some("arm64"));
        assert_eq!(architecture("x86_64"), Some("x86_64"));
        assert_eq!(architecture("riscv64"), None);
    }

    #[test]
    fn the_subscription_asks_for_platform_events_only() {
        let c = Config::from_env(env(&LAMBDA)).unwrap().unwrap();
        let s = c.subscription();
        assert_eq!(s["types"], serde_json::json!(["platform"]));
        assert_eq!(s["schemaVersion"], "2022-12-13");
        assert_eq!(s["destination"]["URI"], "http://sandbox.localdomain:4243");
        assert_eq!(s["buffering"]["maxItems"], 1000);
        assert_eq!(s["buffering"]["maxBytes"], 262_144);
        assert_eq!(s["buffering"]["timeoutMs"], 1000);
    }
}
