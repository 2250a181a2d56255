//! The `api` Lambda function: starts the runtime and hands it the handler.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use purser_api::Api;
use purser_core::{Handler, SystemClock};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let api = Arc::new(Api::new(Arc::new(SystemClock)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let api = Arc::clone(&api);
        async move {
            api.handle(event.payload).await.map_err(|e| Diagnostic {
                error_type: e.kind,
                error_message: e.message,
            })
        }
    }))
    .await
}
