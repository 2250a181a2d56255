//! [`S3Landing`] against moto's S3: a metric stream's object read back by
//! its key as the recorder reads it, an object that is gone, and one that
//! is not text.

use aws_sdk_s3::primitives::ByteStream;
use purser_aws::S3Landing;
use purser_core::ports::{Landing, LandingError};

use crate::common::{moto_config, unique};

const KEY: &str =
    "metrics/account=210987654321/2026/12/07/10/purser-metrics-1-2026-12-07-10-01-00-abc";

#[tokio::test]
async fn a_landed_object_is_read_by_its_key_and_a_missing_one_is_not_found() {
    let Some(config) = moto_config().await else {
        return;
    };
    let s3 = aws_sdk_s3::Client::new(&config);
    let bucket = unique("lake");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let lines = "{\"account_id\":\"210987654321\"}\n{\"account_id\":\"210987654321\"}\n";
    s3.put_object()
        .bucket(&bucket)
        .key(KEY)
        .body(ByteStream::from_static(lines.as_bytes()))
        .send()
        .await
        .expect("PutObject");
    s3.put_object()
        .bucket(&bucket)
        .key("metrics/account=210987654321/binary")
        .body(ByteStream::from_static(&[0xff, 0xfe, 0x00, 0x9f]))
        .send()
        .await
        .expect("PutObject");

    let landing = S3Landing::from_config(&config, &bucket);
    assert_eq!(landing.read(KEY).await.expect("the object"), lines);
    assert!(matches!(
        landing.read("metrics/account=210987654321/gone").await,
        Err(LandingError::NotFound(_))
    ));
    assert!(matches!(
        landing.read("metrics/account=210987654321/binary").await,
        Err(LandingError::Refused(_))
    ));
}
