//! The extension's process: logging, then the extension itself. A single
//! thread is plenty for buffering and one `PutEvents` call at a time, and
//! keeps the resident memory small.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_extension::Error> {
    lambda_extension::tracing::init_default_subscriber();
    purser_telemetry_extension::run().await
}
