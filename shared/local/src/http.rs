//! The local endpoint: the template's `HttpApi` routes, served the way API
//! Gateway serves them (payload format 2.0), and EventBridge's `PutEvents`
//! (AWS JSON 1.1) on the same port, for the AWS CLI and SDKs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use purser_core::{EventEntry, Handler};
use serde_json::{Map, Value, json};

use crate::bus::{LocalBus, PutEventsError};

/// A route of the HTTP API: `GET /accounts/{id}`, `ANY /{proxy+}`, `$default`.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Route {
    pub fn new(method: &str, path: &str, function: &str) -> Self {
        let segments = if path == "/$default" || path == "$default" {
            vec![Segment::Greedy(String::new())]
        } else {
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => match name.strip_suffix('+') {
                            Some(greedy) => Segment::Greedy(greedy.into()),
                            None => Segment::Param(name.into()),
                        },
                        None => Segment::Literal(s.into()),
                    },
                )
                .collect()
        };
        Self {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            function: function.into(),
            segments,
        }
    }

    /// The route key API Gateway puts in the request context.
    pub fn key(&self) -> String {
        if self.path.ends_with("$default") {
            "$default".into()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }

    fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    if i >= parts.len() && !name.is_empty() {
                        return None;
                    }
                    if !name.is_empty() {
                        params.insert(name.clone(), parts[i..].join("/"));
                    }
                    return Some(params);
                }
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), (*parts.get(i)?).to_string());
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// API Gateway prefers the most specific route: more literal segments
    /// first, greedy routes and `$default` last.
    fn specificity(&self) -> (usize, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        (
            usize::from(!greedy),
            literals,
            usize::from(self.method != "ANY"),
        )
    }
}

pub struct HttpState {
    pub routes: Vec<Route>,
    pub handlers: BTreeMap<String, Arc<dyn Handler>>,
    pub bus: LocalBus,
    pub own_account: String,
    pub region: String,
    /// Accept `X-Purser-Principal` to act as another caller (local only).
    pub principal_header: bool,
    /// The OpenAPI document served at `GET /openapi.json`.
    pub openapi: Option<String>,
}

impl HttpState {
    pub fn new(
        mut routes: Vec<Route>,
        handlers: BTreeMap<String, Arc<dyn Handler>>,
        bus: LocalBus,
        own_account: String,
        region: String,
    ) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        Self {
            routes,
            handlers,
            bus,
            own_account,
            region,
            principal_header: true,
            openapi: None,
        }
    }
}

pub fn router(state: Arc<HttpState>) -> axum::Router {
    axum::Router::new()
        .fallback(serve)
        .layer(axum::extract::DefaultBodyLimit::max(6 * 1024 * 1024))
        .with_state(state)
}

async fn serve(
    State(state): State<Arc<HttpState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = Caller::from_headers(&headers, &state.own_account);
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return aws_json(&state, target, &caller, &body).await;
    }
    if let Some(refused) = refuse_cross_site(&method, &headers, &body) {
        return refused;
    }
    let path = uri.path();
    if method == Method::GET
        && path == "/openapi.json"
        && let Some(doc) = &state.openapi
    {
        let mut response = doc.clone().into_response();
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    }
    let Some((route, params)) = state
        .routes
        .iter()
        .find_map(|r| r.matches(method.as_str(), path).map(|p| (r, p)))
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    let Some(handler) = state.handlers.get(&route.function) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"message": "Internal Server Error"})),
        )
            .into_response();
    };
    let principal = headers
        .get("x-purser-principal")
        .filter(|_| state.principal_header)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let request = api_gateway_request(
        &state, route, params, &method, &uri, &headers, &body, &caller, principal,
    );
    let request_id = request["requestContext"]["requestId"].clone();
    match handler.handle(request).await {
        Ok(reply) => api_gateway_response(reply),
        Err(e) => {
            tracing::error!(function = %route.function, request_id = %request_id, error = %e, "handler failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"message": "Internal Server Error"})),
            )
                .into_response()
        }
    }
}

/// `purser up` has no authentication (you are whoever `X-Purser-Principal`
/// says), so it must not be reachable from web pages: a page's script or
/// form may send requests to 127.0.0.1. Refused: a request whose `Host` is
/// not a loopback name (DNS rebinding: a page's own name pointed at
/// 127.0.0.1), one with an `Origin` other than a loopback one (any
/// cross-site fetch or form), and a body that is not declared JSON (the
/// only types a form can send without the CORS preflight we never answer
/// are form data and text). SDK calls (`X-Amz-Target`) need a preflight
/// from a page and are not affected.
fn refuse_cross_site(method: &Method, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let loopback = |authority: &str| {
        let host = match authority.strip_prefix('[') {
            // [::1]:8787
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let refuse = |status: StatusCode, code: &str, message: &str| {
        Some(
            (
                status,
                axum::Json(json!({"error": {"code": code, "message": message, "field": null}})),
            )
                .into_response(),
        )
    };
    if header("host").is_some_and(|host| !loopback(host)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "purser up answers only requests addressed to 127.0.0.1 or localhost",
        );
    }
    if let Some(origin) = header("origin") {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(loopback) {
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "purser up takes no requests from web pages of other sites",
            );
        }
    }
    let declared_json = header("content-type").is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && !body.is_empty() && !declared_json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with Content-Type: application/json",
        );
    }
    None
}

/// Who is calling: the access key id of a SigV4 `Authorization` header, and
/// the account it stands for. As in moto, a 12-digit access key id is taken
/// as the caller's account; anything else is the local management account.
/// Signatures are not verified: there are no secrets locally.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key: Option<String>,
    pub account: String,
}

impl Caller {
    pub fn from_headers(headers: &HeaderMap, own_account: &str) -> Self {
        let access_key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|cred| cred.split('/').next())
            .map(String::from);
        let account = access_key
            .as_deref()
            .filter(|k| k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(own_account)
            .to_string();
        Self {
            access_key,
            account,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn api_gateway_request(
    state: &HttpState,
    route: &Route,
    params: BTreeMap<String, String>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    caller: &Caller,
    principal: Option<String>,
) -> Value {
    let mut header_map = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(|c| Value::String(c.into())));
            continue;
        }
        // API Gateway joins repeated headers with commas.
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().into(), Value::String(value));
            }
        }
    }
    let query = uri.query().unwrap_or("");
    let mut query_params: Map<String, Value> = Map::new();
    for (k, v) in url_pairs(query) {
        match query_params.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query_params.insert(k, Value::String(v));
            }
        }
    }
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (BASE64.encode(body), true),
    };
    let now = Utc::now();
    // A person named by email address is who the console's JWT authorizer
    // would pass on AWS; anyone else is an IAM principal, as SigV4 proves.
    let authorizer = match principal {
        Some(email) if !email.starts_with("arn:") => json!({"jwt": {
            "claims": {"email": email, "email_verified": "true"},
            "scopes": null,
        }}),
        principal => {
            let user_arn = principal.unwrap_or_else(|| {
                format!("arn:aws:iam::{}:role/purser-local-admin", caller.account)
            });
            json!({"iam": {
                "accessKey": caller.access_key.clone().unwrap_or_else(|| "local".into()),
                "accountId": caller.account,
                "callerId": user_arn.rsplit('/').next().unwrap_or_default(),
                "principalOrgId": null,
                "userArn": user_arn,
                "userId": user_arn.rsplit('/').next().unwrap_or_default(),
            }})
        }
    };
    let mut request = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": uri.path(),
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": state.own_account,
            "apiId": "local",
            "authorizer": authorizer,
            "domainName": header_map.get("host").cloned().unwrap_or(json!("localhost")),
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": header_map.get("user-agent").cloned().unwrap_or(json!("")),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route.key(),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": base64,
    });
    let obj = request.as_object_mut().expect("an object literal");
    if !cookies.is_empty() {
        obj.insert("cookies".into(), Value::Array(cookies));
    }
    if !query_params.is_empty() {
        obj.insert("queryStringParameters".into(), Value::Object(query_params));
    }
    if !params.is_empty() {
        obj.insert("pathParameters".into(), json!(params));
    }
    if !body.is_empty() {
        obj.insert("body".into(), Value::String(body));
    }
    request
}

/// `a=1&b=x%20y` into decoded pairs.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns a handler's reply into an HTTP response as API Gateway does for
/// payload format 2.0: a reply with `statusCode` is a response; anything
/// else is a JSON body with status 200.
fn api_gateway_response(reply: Value) -> Response {
    let Some(status) = reply.get("statusCode").and_then(Value::as_u64) else {
        return (StatusCode::OK, axum::Json(reply)).into_response();
    };
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = reply
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if reply.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        BASE64.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in reply
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), String::from);
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value),
        ) {
            headers.insert(n, v);
        }
    }
    for cookie in reply
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(v) = HeaderValue::try_from(cookie) {
            headers.append("set-cookie", v);
        }
    }
    response
}

/// The AWS JSON 1.1 protocol: `X-Amz-Target: AWSEvents.<Operation>`.
async fn aws_json(state: &HttpState, target: &str, caller: &Caller, body: &Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let reply = |status: StatusCode, body: Value| {
        let mut r = (status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        if let Ok(v) = HeaderValue::try_from(request_id.as_str()) {
            h.insert("x-amzn-requestid", v);
        }
        r
    };
    let error = |kind: &str, message: String| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"__type": kind, "message": message}),
        )
    };
    if target != "AWSEvents.PutEvents" {
        return error(
            "UnknownOperationException",
            format!("{target} is not served by purser up; only AWSEvents.PutEvents is"),
        );
    }
    #[derive(serde::Deserialize)]
    struct PutEventsRequest {
        #[serde(rename = "Entries")]
        entries: Option<Vec<EventEntry>>,
    }
    let request: PutEventsRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return error("SerializationException", e.to_string()),
    };
    let entries = request.entries.unwrap_or_default();
    match state.bus.put_events(entries, &caller.account).await {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count();
            let entries: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!({"EventId": id}),
                    Err(e) => json!({"ErrorCode": e.code(), "ErrorMessage": e.to_string()}),
                })
                .collect();
            reply(
                StatusCode::OK,
                json!({"FailedEntryCount": failed, "Entries": entries}),
            )
        }
        Err(e @ PutEventsError::Storage(_)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"__type": "InternalException", "message": e.to_string()}),
        ),
        Err(e) => error("ValidationException", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn pages_of_other_sites_and_rebound_names_are_refused() {
        let json_body = Bytes::from_static(br#"{"quota": 3}"#);
        let status = |method: Method, pairs: &[(&'static str, &'static str)], body: &Bytes| {
            refuse_cross_site(&method, &headers(pairs), body).map(|r| r.status().as_u16())
        };
        let local = [
            ("host", "127.0.0.1:8787"),
            ("content-type", "application/json"),
        ];
        assert_eq!(status(Method::PUT, &local, &json_body), None);
        assert_eq!(
            status(
                Method::PUT,
                &[
                    ("host", "localhost:8787"),
                    ("content-type", "application/json; charset=utf-8")
                ],
                &json_body
            ),
            None
        );
        assert_eq!(
            status(Method::GET, &[("host", "[::1]:8787")], &Bytes::new()),
            None
        );
        assert_eq!(
            status(Method::DELETE, &[("host", "127.0.0.1:8787")], &Bytes::new()),
            None,
            "no body, nothing to declare"
        );
        // A form post from a web page: text or form data, and its origin.
        assert_eq!(
            status(
                Method::POST,
                &[("host", "127.0.0.1:8787"), ("content-type", "text/plain")],
                &json_body
            ),
            Some(415)
        );
        assert_eq!(
            status(Method::POST, &[("host", "127.0.0.1:8787")], &json_body),
            Some(415),
            "an undeclared body"
        );
        assert_eq!(
            status(
                Method::POST,
                &[
                    ("host", "127.0.0.1:8787"),
                    ("origin", "https://evil.example"),
                    ("content-type", "application/json")
                ],
                &json_body
            ),
            Some(403)
        );
        assert_eq!(
            status(
                Method::GET,
                &[("host", "127.0.0.1:8787"), ("origin", "null")],
                &Bytes::new()
            ),
            Some(403),
            "a sandboxed page's opaque origin"
        );
        assert_eq!(
            status(
                Method::GET,
                &[
                    ("host", "127.0.0.1:8787"),
                    ("origin", "http://localhost:3000")
                ],
                &Bytes::new()
            ),
            None
        );
        // DNS rebinding: evil.example resolved to 127.0.0.1.
        assert_eq!(
            status(Method::GET, &[("host", "evil.example:8787")], &Bytes::new()),
            Some(403)
        );
    }

    #[test]
    fn routes_bind_path_parameters() {
        let r = Route::new("GET", "/accounts/{id}", "Api");
        let p = r.matches("GET", "/accounts/abc").unwrap();
        assert_eq!(p["id"], "abc");
        assert!(r.matches("POST", "/accounts/abc").is_none());
        assert!(r.matches("GET", "/accounts").is_none());
        assert!(r.matches("GET", "/accounts/abc/x").is_none());
    }

    #[test]
    fn greedy_routes_take_the_rest() {
        let r = Route::new("ANY", "/files/{proxy+}", "Api");
        assert_eq!(r.matches("PUT", "/files/a/b/c").unwrap()["proxy"], "a/b/c");
        assert!(r.matches("PUT", "/files").is_none());
        let d = Route::new("ANY", "$default", "Api");
        assert!(d.matches("GET", "/anything/at/all").is_some());
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            url_pairs("team=a%2Db&x=y+z&flag"),
            vec![
                ("team".into(), "a-b".into()),
                ("x".into(), "y z".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn the_caller_account_comes_from_a_numeric_access_key() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=210987654321/20261121/us-east-1/events/aws4_request, SignedHeaders=host, Signature=x"));
        assert_eq!(
            Caller::from_headers(&h, "123456789012").account,
            "210987654321"
        );
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261121/us-east-1/events/aws4_request",
            ),
        );
        assert_eq!(
            Caller::from_headers(&h, "123456789012").account,
            "123456789012"
        );
        assert_eq!(
            Caller::from_headers(&HeaderMap::new(), "123456789012").account,
            "123456789012"
        );
    }

    #[test]
    fn replies_without_status_code_are_json_bodies() {
        let r = api_gateway_response(json!({"ok": true}));
        assert_eq!(r.status(), StatusCode::OK);
        let r = api_gateway_response(
            json!({"statusCode": 404, "body": "{}", "headers": {"content-type": "application/json"}}),
        );
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}
