//! `PutEvents` with SigV4 (`aws-sigv4`) over a small hyper + rustls (ring)
//! client, instead of the AWS SDK: the SDK client made the extension's
//! resident memory 10 to 11.6 MB before it had seen a report, this client
//! keeps it near 5 MB (figures in `docs/telemetry-extension.md`).
//!
//! It does what the SDK would do for this one call and nothing else:
//! credentials from the environment (Lambda puts the function's there) or
//! from the container credentials endpoint (where Lambda puts them under
//! SnapStart), the regional endpoint or `AWS_ENDPOINT_URL_EVENTBRIDGE` /
//! `AWS_ENDPOINT_URL`, the JSON 1.1 protocol, per-entry results. Retrying
//! is the outbox's business.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::batch::{DETAIL_TYPE, SOURCE};
use crate::outbox::EntryOutcome;
use crate::send::PutEvents;

/// The longest a call may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest response read (a `PutEvents` answer is ~100 bytes an entry).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Container credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Where the credentials come from. Its `Debug` redacts the secrets, so
/// no log line of the client (which holds it) can carry them.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Environment {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (or the ECS relative URI),
    /// with `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `…_TOKEN_FILE`.
    Container {
        uri: String,
        token: Option<String>,
        token_file: Option<String>,
    },
    Missing,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REDACTED: &str = "** redacted **";
        let redacted = |v: &Option<String>| v.as_ref().map(|_| REDACTED);
        match self {
            Self::Environment {
                access_key_id,
                session_token,
                ..
            } => f
                .debug_struct("Environment")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &REDACTED)
                .field("session_token", &redacted(session_token))
                .finish(),
            Self::Container {
                uri,
                token,
                token_file,
            } => f
                .debug_struct("Container")
                .field("uri", uri)
                .field("token", &redacted(token))
                .field("token_file", token_file)
                .finish(),
            Self::Missing => f.write_str("Missing"),
        }
    }
}

impl CredentialSource {
    pub fn from_env(var: &impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let (Some(access_key_id), Some(secret_access_key)) =
            (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY"))
        {
            return Self::Environment {
                access_key_id,
                secret_access_key,
                session_token: set("AWS_SESSION_TOKEN"),
            };
        }
        let uri = set("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
            set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .map(|p| format!("http://169.254.170.2{p}"))
        });
        match uri {
            Some(uri) => Self::Container {
                uri,
                token: set("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
                token_file: set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            },
            None => Self::Missing,
        }
    }
}

/// The endpoint of EventBridge for `region`, unless overridden.
pub fn endpoint(region: &str, var: &impl Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    set("AWS_ENDPOINT_URL_EVENTBRIDGE")
        .or_else(|| set("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://events.{region}.{suffix}")
        })
}

#[derive(Serialize)]
struct PutEventsRequest<'a> {
    #[serde(rename = "Entries")]
    entries: Vec<RequestEntry<'a>>,
}

#[derive(Serialize)]
struct RequestEntry<'a> {
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "DetailType")]
    detail_type: &'a str,
    #[serde(rename = "Detail")]
    detail: &'a str,
    #[serde(rename = "EventBusName")]
    event_bus_name: &'a str,
}

#[derive(Deserialize)]
struct PutEventsResponse {
    #[serde(rename = "FailedEntryCount", default)]
    failed_entry_count: i64,
    #[serde(rename = "Entries", default)]
    entries: Vec<ResultEntry>,
}

#[derive(Deserialize)]
struct ResultEntry {
    #[serde(rename = "ErrorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "ErrorMessage", default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(rename = "__type", default)]
    kind: Option<String>,
    #[serde(alias = "Message", default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ContainerCredentials {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: String,
    #[serde(rename = "Token", default)]
    token: Option<String>,
    #[serde(rename = "Expiration", default)]
    expiration: Option<String>,
}

/// The body of a `PutEvents` call for `details` on `bus`.
pub fn request_body(details: &[String], bus: &str) -> String {
    let request = PutEventsRequest {
        entries: details
            .iter()
            .map(|detail| RequestEntry {
                source: SOURCE,
                detail_type: DETAIL_TYPE,
                detail,
                event_bus_name: bus,
            })
            .collect(),
    };
    serde_json::to_string(&request).expect("serializing a request cannot fail")
}

/// Reads a `PutEvents` answer: one outcome per entry, or why the call
/// failed as a whole.
pub fn read_response(status: u16, body: &[u8], sent: usize) -> Result<Vec<EntryOutcome>, String> {
    if !(200..300).contains(&status) {
        let error: Option<ErrorResponse> = serde_json::from_slice(body).ok();
        let kind = error
            .as_ref()
            .and_then(|e| e.kind.as_deref())
            .map(|k| k.rsplit('#').next().unwrap_or(k).to_owned())
            .unwrap_or_else(|| "UnknownError".into());
        let message = error.and_then(|e| e.message).unwrap_or_default();
        return Err(format!("PutEvents: HTTP {status} {kind}: {message}"));
    }
    let response: PutEventsResponse =
        serde_json::from_slice(body).map_err(|e| format!("PutEvents: unreadable answer: {e}"))?;
    let outcomes: Vec<EntryOutcome> = response
        .entries
        .into_iter()
        .map(|e| match e.error_code.filter(|c| !c.is_empty()) {
            None => EntryOutcome::Accepted,
            Some(code) => EntryOutcome::Failed {
                code,
                message: e.error_message.unwrap_or_default(),
            },
        })
        .collect();
    if outcomes.len() != sent {
        return Err(format!(
            "PutEvents answered {} results for {sent} entries",
            outcomes.len()
        ));
    }
    let failed = outcomes
        .iter()
        .filter(|o| **o != EntryOutcome::Accepted)
        .count();
    if usize::try_from(response.failed_entry_count).ok() != Some(failed) {
        tracing::warn!(
            failed_entry_count = response.failed_entry_count,
            failed,
            "PutEvents' FailedEntryCount disagrees with its entries; trusting the entries"
        );
    }
    Ok(outcomes)
}

/// `PutEvents` on one bus.
#[derive(Debug)]
pub struct EventBridgeClient {
    http: HttpClient,
    endpoint: Uri,
    region: String,
    bus: String,
    source: CredentialSource,
    cached: tokio::sync::Mutex<Option<(Credentials, Option<SystemTime>)>>,
}

impl EventBridgeClient {
    /// A client for `bus` configured from `var` (the environment).
    pub fn from_env(
        bus: impl Into<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .filter(|r| !r.trim().is_empty())
            .ok_or("AWS_REGION is not set")?;
        let endpoint = endpoint(&region, &var);
        let endpoint: Uri = endpoint
            .parse()
            .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
        Ok(Self::new(
            endpoint,
            region,
            bus.into(),
            CredentialSource::from_env(&var),
        ))
    }

    pub fn new(endpoint: Uri, region: String, bus: String, source: CredentialSource) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        // An explicit provider: the process-wide default is ambiguous when
        // another crate of the build enables aws-lc-rs as well.
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "no root certificates found: HTTPS calls will fail");
                HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder_with_provider(
                        rustls::crypto::ring::default_provider().into(),
                    )
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default protocol versions")
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
                )
            })
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        Self {
            http,
            endpoint,
            region,
            bus,
            source,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn credentials(&self) -> Result<Credentials, String> {
        match &self.source {
            CredentialSource::Environment {
                access_key_id,
                secret_access_key,
                session_token,
            } => Ok(Credentials::new(
                access_key_id,
                secret_access_key,
                session_token.clone(),
                None,
                "environment",
            )),
            CredentialSource::Missing => Err("no AWS credentials in the environment".into()),
            CredentialSource::Container {
                uri,
                token,
                token_file,
            } => {
                let mut cached = self.cached.lock().await;
                if let Some((credentials, expiry)) = &*cached {
                    let fresh =
                        expiry.is_none_or(|e| SystemTime::now() + REFRESH_BEFORE_EXPIRY < e);
                    if fresh {
                        return Ok(credentials.clone());
                    }
                }
                let token = match (token, token_file) {
                    (Some(t), _) => Some(t.clone()),
                    (None, Some(file)) => Some(
                        std::fs::read_to_string(file)
                            .map_err(|e| format!("{file}: {e}"))?
                            .trim()
                            .to_owned(),
                    ),
                    (None, None) => None,
                };
                let mut request = Request::get(uri.as_str());
                if let Some(token) = token {
                    request = request.header("Authorization", token);
                }
                let request = request
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| format!("container credentials URI {uri:?}: {e}"))?;
                let (status, body) = self.call(request).await?;
                if status != 200 {
                    return Err(format!("container credentials: HTTP {status}"));
                }
                let c: ContainerCredentials = serde_json::from_slice(&body)
                    .map_err(|e| format!("container credentials: {e}"))?;
                let expiry = c
                    .expiration
                    .as_deref()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                    .map(SystemTime::from);
                let credentials = Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    c.token,
                    expiry,
                    "container",
                );
                *cached = Some((credentials.clone(), expiry));
                Ok(credentials)
            }
        }
    }

    /// Sends `request`; the status and body, within [`CALL_TIMEOUT`].
    async fn call(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let call = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("HTTP: {e:?}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {CALL_TIMEOUT:?}")))
    }

    /// The signed `PutEvents` request for `body`.
    pub fn signed_request(
        &self,
        body: String,
        credentials: Credentials,
        time: SystemTime,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut request = Request::post(self.endpoint.clone())
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", "AWSEvents.PutEvents")
            .body(body)
            .map_err(|e| e.to_string())?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("events")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            request
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
            SignableBody::Bytes(request.body().as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.map(|b| Full::new(Bytes::from(b))))
    }
}

impl PutEvents for EventBridgeClient {
    async fn put_events(&self, details: Vec<String>) -> Result<Vec<EntryOutcome>, String> {
        let sent = details.len();
        let body = request_body(&details, &self.bus);
        drop(details);
        let credentials = self.credentials().await?;
        let request = self.signed_request(body, credentials, SystemTime::now())?;
        let (status, body) = self.call(request).await?;
        read_response(status, &body, sent)
    }
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

    #[test]
    fn the_endpoint_is_regional_unless_overridden() {
        assert_eq!(
            endpoint("eu-west-1", &env(&[])),
            "https://events.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("cn-north-1", &env(&[])),
            "https://events.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint(
                "eu-west-1",
                &env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8787")])
            ),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            endpoint(
                "eu-west-1",
                &env(&[
                    ("AWS_ENDPOINT_URL", "http://a"),
                    ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://b")
                ])
            ),
            "http://b"
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let environment = CredentialSource::Environment {
            access_key_id: "AKID".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            session_token: Some("IQoJb3JpZ2lu".into()),
        };
        let container = CredentialSource::Container {
            uri: "http://127.0.0.1:9001/creds".into(),
            token: Some("container-token".into()),
            token_file: None,
        };
        for (source, secrets) in [
            (environment, ["wJalrXUtnFEMI", "IQoJb3JpZ2lu"]),
            (container, ["container-token", "container-token"]),
        ] {
            let shown = format!("{source:?}");
            for secret in secrets {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn credentials_come_from_the_environment_or_the_container_endpoint() {
        assert_eq!(
            CredentialSource::from_env(&env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://127.0.0.1:9001/creds"
                ),
            ])),
            CredentialSource::Environment {
                access_key_id: "AKID".into(),
                secret_access_key: "secret".into(),
                session_token: Some("token".into()),
            }
        );
        assert_eq!(
            CredentialSource::from_env(&env(&[
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://127.0.0.1:9001/creds"
                ),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer x"),
            ])),
            CredentialSource::Container {
                uri: "http://127.0.0.1:9001/creds".into(),
                token: Some("Bearer x".into()),
                token_file: None,
            }
        );
        assert_eq!(
            CredentialSource::from_env(&env(&[])),
            CredentialSource::Missing
        );
    }

    #[test]
    fn the_request_is_json_1_1_with_one_entry_per_detail() {
        let body = request_body(&[r#"{"a":1}"#.into(), "{}".into()], "default");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"Entries": [
                {"Source": "purser.telemetry", "DetailType": "InvocationsReported", "Detail": "{\"a\":1}", "EventBusName": "default"},
                {"Source": "purser.telemetry", "DetailType": "InvocationsReported", "Detail": "{}", "EventBusName": "default"},
            ]})
        );
    }

    #[test]
    fn answers_are_read_per_entry() {
        let body = br#"{"FailedEntryCount":1,"Entries":[{"EventId":"e1"},{"ErrorCode":"ThrottlingException","ErrorMessage":"Rate exceeded"}]}"#;
        assert_eq!(
            read_response(200, body, 2).unwrap(),
            vec![
                EntryOutcome::Accepted,
                EntryOutcome::Failed {
                    code: "ThrottlingException".into(),
                    message: "Rate exceeded".into()
                }
            ]
        );
        assert!(
            read_response(200, body, 3).is_err(),
            "results must match entries"
        );
        let error = read_response(
            400,
            br#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"not authorized"}"#,
            2,
        )
        .unwrap_err();
        assert_eq!(
            error,
            "PutEvents: HTTP 400 AccessDeniedException: not authorized"
        );
        assert!(
            read_response(503, b"<html>", 1)
                .unwrap_err()
                .contains("HTTP 503")
        );
    }

    /// The signature of a fixed request, as botocore 1.x's `SigV4Auth`
    /// computes it for the same request, credentials and time (computed
    /// once with botocore and written here): the signing is AWS's.
    #[test]
    fn requests_are_signed_as_botocore_signs_them() {
        let client = EventBridgeClient::new(
            "https://events.us-east-1.amazonaws.com".parse().unwrap(),
            "us-east-1".into(),
            "default".into(),
            CredentialSource::Missing,
        );
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token".into()),
            None,
            "test",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01T00:00:00Z
        let body = request_body(&[r#"{"version":1}"#.into()], "default");
        let request = client.signed_request(body, credentials, time).unwrap();
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-amz-date"), "20300101T000000Z");
        assert_eq!(header("x-amz-security-token"), "session-token");
        assert_eq!(header("authorization"), BOTOCORE_AUTHORIZATION);
    }

    const BOTOCORE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20300101/us-east-1/events/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
        Signature=6319348480958d72759bc34e821fc0e3418b5d296710bd3d6c77f95a0ee8b9d5";
}
