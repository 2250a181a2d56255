//! `Landing` on S3: the objects member accounts' metric streams write into
//! the lake bucket under `metrics/account=<id>/`, read with one `GetObject`
//! each, refused when larger than a metric stream's Firehose writes.

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use purser_core::ports::{Landing, LandingError, MAX_LANDED_OBJECT};

#[derive(Debug, Clone)]
pub struct S3Landing {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Landing {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(aws_sdk_s3::Client::new(config), bucket)
    }
}

fn error<E, R>(what: &str, error: SdkError<E, R>) -> LandingError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error().and_then(|e| e.code()) {
        Some("NoSuchKey" | "NotFound") => LandingError::NotFound(format!("{what} is gone")),
        _ => LandingError::Unavailable(format!("{what}: {}", DisplayErrorContext(&error))),
    }
}

#[async_trait]
impl Landing for S3Landing {
    async fn read(&self, key: &str) -> Result<String, LandingError> {
        let what = format!("s3://{}/{key}", self.bucket);
        let output = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| error(&what, e))?;
        let size = output.content_length().unwrap_or(0).max(0) as u64;
        if size > MAX_LANDED_OBJECT {
            return Err(LandingError::Refused(format!(
                "{what} is {size} bytes, more than a metric stream's Firehose writes ({MAX_LANDED_OBJECT})"
            )));
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| LandingError::Unavailable(format!("{what}: {e}")))?
            .into_bytes();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| LandingError::Refused(format!("{what} is not UTF-8")))
    }
}
