//! The Landing port: the objects member accounts' CloudWatch metric streams
//! write through their own Firehose into the lake bucket, under
//! `metrics/account=<id>/`, a prefix the bucket policy lets only that
//! account write (`${aws:PrincipalAccount}`). S3 on AWS; files under
//! `<data-dir>/landing/` locally.

use async_trait::async_trait;

/// Where landed metric-stream objects start.
pub const METRICS_PREFIX: &str = "metrics/account=";

/// The largest object Purser reads: the member stack buffers Firehose at
/// 5 MiB, so anything much larger was not written by it.
pub const MAX_LANDED_OBJECT: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LandingError {
    /// The object is not there (deleted, or a stray event): nothing to do.
    #[error("{0}")]
    NotFound(String),
    /// The object cannot be what a metric stream writes (too large, not
    /// text): refused for good.
    #[error("{0}")]
    Refused(String),
    #[error("the landing bucket is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Landing: Send + Sync {
    /// The object's text (at most [`MAX_LANDED_OBJECT`] bytes).
    async fn read(&self, key: &str) -> Result<String, LandingError>;
}

/// The account a landed object's key says wrote it:
/// `metrics/account=<12 digits>/…`. `None` for any other key.
pub fn landed_account(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(METRICS_PREFIX)?;
    let (account, path) = rest.split_once('/')?;
    let ok = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !path.is_empty()
        && key.len() <= 1024
        && !key.split('/').any(|part| part == ".." || part == ".");
    ok.then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_is_read_from_the_key_and_nothing_else_is_taken() {
        assert_eq!(
            landed_account(
                "metrics/account=210987654321/2026/12/07/10/purser-1-2026-12-07-10-00-00-abc"
            ),
            Some("210987654321")
        );
        for key in [
            "metrics/account=21098765432/x",
            "metrics/account=210987654321/",
            "metrics/account=210987654321",
            "metrics/account=21098765432a/x",
            "invocations/dt=2026-12-07/x.parquet",
            "metrics/account=210987654321/../account=111111111111/x",
        ] {
            assert_eq!(landed_account(key), None, "{key}");
        }
    }
}
