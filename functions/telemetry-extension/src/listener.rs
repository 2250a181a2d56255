//! The HTTP endpoint the Telemetry API posts to.
//!
//! `lambda-extension`'s own telemetry processor reads a post into its typed
//! records, so a single event it does not know (`platform.restoreStart`
//! under SnapStart, `platform.initStart` with phase `snap-start`, a
//! `platform.report` without `status`, any type AWS adds later) makes it
//! refuse the whole post, reports included. This listener reads each event
//! on its own instead ([`crate::telemetry::parse_post`]), hands the post to
//! the [`Pipeline`] and answers at once: nothing here waits on the network.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::pipeline::Pipeline;
use crate::telemetry::parse_post;

/// The largest post read (the Telemetry API buffers at most 1 MiB).
pub const MAX_POST_BYTES: usize = 2 * 1024 * 1024;

/// Serves the Telemetry API's posts on `listener` until the process ends.
pub async fn serve(listener: TcpListener, pipeline: Arc<Pipeline>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a telemetry connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let pipeline = pipeline.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, pipeline.clone()));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "telemetry connection ended");
            }
        });
    }
}

fn status(code: StatusCode) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = code;
    response
}

async fn handle(
    req: Request<Incoming>,
    pipeline: Arc<Pipeline>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let body = match Limited::new(req.into_body(), MAX_POST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            tracing::warn!(%error, "reading a telemetry post failed");
            return Ok(status(StatusCode::BAD_REQUEST));
        }
    };
    match parse_post(&body, chrono::Utc::now()) {
        Ok(telemetry) => {
            pipeline.accept(telemetry);
            Ok(status(StatusCode::OK))
        }
        Err(error) => {
            tracing::warn!(%error, bytes = body.len(), "a telemetry post was not read");
            Ok(status(StatusCode::BAD_REQUEST))
        }
    }
}
