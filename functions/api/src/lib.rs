//! Purser's HTTP API, as one Lambda handler behind API Gateway's HTTP API
//! (payload format 2.0). The same handler serves `purser up` locally.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use purser_core::{Clock, Handler, HandlerError};
use serde_json::{Value, json};

pub struct Api {
    clock: Arc<dyn Clock>,
}

impl Api {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }

    fn route(&self, request: &ApiGatewayV2httpRequest) -> Reply {
        let method = request.request_context.http.method.as_str();
        let path = request.raw_path.as_deref().unwrap_or("/");
        match (method, path) {
            ("GET", "/health") => Reply::json(
                200,
                json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "time": self.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
            ),
            _ => Reply::error(
                404,
                "not_found",
                &format!("no route for {method} {path}"),
                None,
            ),
        }
    }
}

#[async_trait]
impl Handler for Api {
    async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
            .map_err(|e| HandlerError::bad_payload(format!("not an HTTP API (v2) request: {e}")))?;
        let reply = self.route(&request);
        tracing::info!(
            request_id = request.request_context.request_id.as_deref().unwrap_or(""),
            method = %request.request_context.http.method,
            path = request.raw_path.as_deref().unwrap_or(""),
            status = reply.status,
            "request"
        );
        Ok(reply.into_value())
    }
}

/// An HTTP API (payload 2.0) response with a JSON body.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// Every error has one shape: `{"error": {"code", "message", "field"}}`.
    fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Self {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message, "field": field}}),
        )
    }

    fn into_value(self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use purser_core::ManualClock;

    fn request(method: &str, path: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": format!("{method} {path}"),
            "rawPath": path,
            "rawQueryString": "",
            "headers": {},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r1", "routeKey": format!("{method} {path}"), "stage": "$default",
                "time": "21/Nov/2026:10:00:00 +0000", "timeEpoch": 0
            },
            "isBase64Encoded": false
        })
    }

    fn api() -> Api {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        Api::new(Arc::new(ManualClock::new(at)))
    }

    #[tokio::test]
    async fn health_reports_version_and_time() {
        let reply = api().handle(request("GET", "/health")).await.unwrap();
        assert_eq!(reply["statusCode"], 200);
        let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["time"], "2026-11-21T10:00:00Z");
    }

    #[tokio::test]
    async fn unknown_routes_are_404_in_the_error_shape() {
        let reply = api().handle(request("GET", "/nope")).await.unwrap();
        assert_eq!(reply["statusCode"], 404);
        let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn a_payload_that_is_not_a_request_is_an_error_not_a_panic() {
        let err = api().handle(json!({"hello": 1})).await.unwrap_err();
        assert_eq!(err.kind, "InvalidPayload");
    }
}
