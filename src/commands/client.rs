//! A client of Purser's HTTP API: a local `purser up` (where `--as ARN`
//! names the caller in `X-Purser-Principal`), or a deployed API behind API
//! Gateway's IAM auth, whose requests are signed with SigV4 from the
//! caller's AWS credentials.
//!
//! The API's errors (`{"error": {"code", "message", "field"}}`) become an
//! [`ApiError`] that says what went wrong and what to do next.

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::cli::ApiArgs;

/// The header a local `purser up` takes as the caller's IAM principal.
const PRINCIPAL_HEADER: &str = "x-purser-principal";

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    http: reqwest::Client,
    base: Url,
    principal: Option<String>,
    signer: Option<Signer>,
}

/// What signs requests to a deployed API.
struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
}

/// An error the API answered with, or could not answer because it was not
/// there, told so that the user knows what to do next.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub request_id: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        write!(f, "\n  code:  {} (HTTP {})", self.code, self.status)?;
        if let Some(field) = &self.field {
            match flag(field) {
                Some(flag) => write!(f, "\n  field: {field} (give it with {flag})")?,
                None => write!(f, "\n  field: {field}")?,
            }
        }
        if let Some(id) = &self.request_id {
            write!(f, "\n  request id: {id}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  next:  {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The command-line option that carries a field of the API.
fn flag(field: &str) -> Option<&'static str> {
    Some(match field {
        "team" => "--team (or the TEAM argument)",
        "owner" => "--owner",
        "purpose" => "--purpose",
        "lease_days" => "--lease-days",
        "Idempotency-Key" => "--idempotency-key",
        "quota" => "--quota",
        "members" => "--member",
        "amount" => "--amount",
        "currency" => "--amount (budgets are in USD)",
        "thresholds" => "--threshold",
        "actions" => "--action",
        "mode" => "--mode",
        "from" => "--from",
        "to" => "--to",
        "by" => "--by",
        "limit" => "--limit",
        "next" => "--next",
        _ => return None,
    })
}

impl ApiError {
    /// Replaces the hint of an error with this code, for a command that
    /// knows better what to do next.
    pub fn rehint(error: anyhow::Error, code: &str, hint: impl Into<String>) -> anyhow::Error {
        match error.downcast::<ApiError>() {
            Ok(mut e) if e.code == code => {
                e.hint = Some(hint.into());
                e.into()
            }
            Ok(e) => e.into(),
            Err(other) => other,
        }
    }
}

/// Whether a URL names this machine: `purser up`, which takes no signature.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The region in an API Gateway URL
/// (`https://abc123.execute-api.eu-west-1.amazonaws.com`).
fn region_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let mut labels = host.split('.');
    labels
        .by_ref()
        .find(|l| *l == "execute-api")
        .and_then(|_| labels.next())
        .map(String::from)
}

impl Client {
    pub async fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let base = Url::parse(&args.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .with_context(|| {
                format!(
                    "--endpoint {:?} is not an http(s) URL, like http://127.0.0.1:8787 or \
                     https://abc123.execute-api.us-east-1.amazonaws.com",
                    args.endpoint
                )
            })?;
        let local = is_loopback(&base);
        let signer = if local {
            None
        } else {
            if args.principal.is_some() {
                bail!(
                    "--as works only with a local `purser up`; a deployed API knows you by your \
                     AWS credentials (use AWS_PROFILE or --region to choose them)"
                );
            }
            Some(Signer::load(args.region.clone(), region_of(&base)).await?)
        };
        let http = purser::http_client()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("purser-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            principal: args.principal.clone(),
            signer,
        })
    }

    pub fn is_local(&self) -> bool {
        self.signer.is_none()
    }

    /// The URL of a path (its segments are escaped) under the endpoint,
    /// which may carry a stage (`…/prod`).
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(Method::GET, segments, query, None, &[]).await
    }

    pub async fn put(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PUT, segments, &[], Some(body), &[]).await
    }

    pub async fn post(
        &self,
        segments: &[&str],
        body: &Value,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        self.send(Method::POST, segments, &[], Some(body), headers)
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> anyhow::Result<Value> {
        self.send(Method::DELETE, segments, &[], None, &[]).await
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let url = self.url(segments, query);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut all_headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        if !body.is_empty() {
            all_headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(principal) = &self.principal {
            all_headers.push((PRINCIPAL_HEADER.into(), principal.clone()));
        }
        if let Some(signer) = &self.signer {
            let signed = signer
                .sign(method.as_str(), &url, &all_headers, &body)
                .await?;
            all_headers.extend(signed);
        }
        let mut request = self.http.request(method.clone(), url.clone());
        for (name, value) in &all_headers {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(&method, &url, e))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {url}: the answer was cut off"))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return json.with_context(|| {
                format!(
                    "{method} {url} answered {status} with something that is not JSON: {}",
                    excerpt(&text)
                )
            });
        }
        Err(self.api_error(status, json, &text).into())
    }

    fn unreachable(&self, method: &Method, url: &Url, e: reqwest::Error) -> anyhow::Error {
        let base = self.base.as_str().trim_end_matches('/');
        if e.is_connect() && self.is_local() {
            anyhow::anyhow!(
                "cannot reach Purser at {base}: is `purser up` running? Start it in another \
                 terminal (`purser up`), or give --endpoint URL (or PURSER_ENDPOINT) for a deployed API"
            )
        } else if e.is_timeout() {
            anyhow::anyhow!(
                "{method} {url} did not answer within {} s; it is safe to retry",
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            anyhow::anyhow!(
                "cannot reach Purser at {base}: {}; check --endpoint (or PURSER_ENDPOINT)",
                error_chain(&e)
            )
        }
    }

    fn api_error(&self, status: u16, json: Option<Value>, text: &str) -> ApiError {
        let error = json.as_ref().and_then(|j| j.get("error"));
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
        if let Some(error) = error {
            let code = s(error.get("code")).unwrap_or_else(|| "error".into());
            let hint = self.hint(&code, status);
            return ApiError {
                status,
                message: s(error.get("message")).unwrap_or_else(|| "no message".into()),
                field: s(error.get("field")),
                request_id: s(error.get("request_id")),
                hint,
                code,
            };
        }
        // Not Purser's own answer: API Gateway's (`{"message": …}`) or
        // something else at that address.
        let message = json
            .as_ref()
            .and_then(|j| s(j.get("message")))
            .unwrap_or_else(|| excerpt(text));
        let (code, hint) = match status {
            401 | 403 if !self.is_local() => (
                "forbidden",
                "API Gateway refused your signature or identity: check your AWS credentials \
                 (`aws sts get-caller-identity`), --region, and that your role may call \
                 execute-api:Invoke on this API"
                    .to_string(),
            ),
            404 => (
                "not_found",
                format!(
                    "{} has no such route: is it Purser's API (try `curl {}/health`)?",
                    self.base.as_str().trim_end_matches('/'),
                    self.base.as_str().trim_end_matches('/')
                ),
            ),
            _ => (
                "http_error",
                "check --endpoint (or PURSER_ENDPOINT); server errors are safe to retry".into(),
            ),
        };
        ApiError {
            status,
            code: code.into(),
            message,
            field: None,
            request_id: None,
            hint: Some(hint),
        }
    }

    /// What to do about an error of the API, by its code.
    fn hint(&self, code: &str, status: u16) -> Option<String> {
        Some(match code {
            "forbidden" if self.is_local() => {
                "you act as --as (or the local admin without it): name a member of the team, \
                 or add one with `purser teams set TEAM --member ARN`"
                    .into()
            }
            "forbidden" => "ask a platform admin to add your IAM principal to the team \
                            (`purser teams set TEAM --member ARN`)"
                .into(),
            "not_found" => "check the name or id: `purser accounts list --team TEAM` lists \
                            a team's accounts, `purser teams show TEAM` a team"
                .into(),
            "quota_exceeded" => "close an account the team no longer needs \
                                 (`purser accounts close ID`) or raise the quota \
                                 (`purser teams set TEAM --quota N`)"
                .into(),
            "idempotency_key_reused" => {
                "that --idempotency-key was used for another request: pick a new key".into()
            }
            "illegal_transition" => "see where it stands with `purser accounts show ID`".into(),
            "conflict" => "someone changed it at the same time: run the command again".into(),
            "invalid_request" => "fix the value and run the command again (see --help)".into(),
            _ if status >= 500 => {
                "it is safe to retry (with the same --idempotency-key, if you gave one)".into()
            }
            _ => return None,
        })
    }
}

impl Signer {
    async fn load(region: Option<String>, from_url: Option<String>) -> anyhow::Result<Self> {
        let mut loader = purser_aws::config_loader();
        if let Some(region) = region.or(from_url) {
            loader = loader.region(aws_config::Region::new(region));
        }
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).context(
            "no AWS region to sign for: give --region, or set AWS_REGION (or a profile's region)",
        )?;
        let credentials = config.credentials_provider().context(
            "no AWS credentials to sign with: configure them (`aws configure`, AWS_PROFILE, or \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
        )?;
        Ok(Self {
            credentials,
            region,
        })
    }

    /// The headers that sign this request for API Gateway (`execute-api`).
    async fn sign(
        &self,
        method: &str,
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
    ) -> anyhow::Result<Vec<(String, String)>> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;

        let credentials = self.credentials.provide_credentials().await.context(
            "cannot load your AWS credentials to sign the request (`aws sts get-caller-identity` \
             shows whether they work)",
        )?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("cannot build the SigV4 signing parameters")?
            .into();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .context("cannot sign the request")?;
        let (instructions, _) = sign(signable, &params)
            .context("cannot sign the request")?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(an empty body)".into();
    }
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_local() {
        for url in [
            "http://127.0.0.1:8787",
            "http://localhost:9000/",
            "http://[::1]:8787",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://abc.execute-api.us-east-1.amazonaws.com",
            "http://10.0.0.1",
        ] {
            assert!(!is_loopback(&Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn the_region_comes_from_an_api_gateway_url() {
        let url = Url::parse("https://abc123.execute-api.eu-west-1.amazonaws.com/prod").unwrap();
        assert_eq!(region_of(&url).as_deref(), Some("eu-west-1"));
        assert_eq!(
            region_of(&Url::parse("https://purser.example.com").unwrap()),
            None
        );
    }

    #[test]
    fn errors_name_code_field_and_flag() {
        let e = ApiError {
            status: 400,
            code: "invalid_request".into(),
            message: "quota must be a whole number from 0 to 100".into(),
            field: Some("quota".into()),
            request_id: None,
            hint: Some("fix it".into()),
        };
        let text = e.to_string();
        assert!(text.starts_with("quota must be"), "{text}");
        assert!(text.contains("code:  invalid_request (HTTP 400)"), "{text}");
        assert!(
            text.contains("field: quota (give it with --quota)"),
            "{text}"
        );
        assert!(text.contains("next:  fix it"), "{text}");
    }

    #[tokio::test]
    async fn requests_to_a_deployed_api_are_signed_for_execute_api() {
        let signer = Signer {
            credentials: SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                Some("token".into()),
                None,
                "test",
            )),
            region: "eu-west-1".into(),
        };
        let url =
            Url::parse("https://abc.execute-api.eu-west-1.amazonaws.com/teams/pay?x=1").unwrap();
        let headers = signer
            .sign("GET", &url, &[], b"")
            .await
            .unwrap()
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>();
        let auth = &headers["authorization"];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/eu-west-1/execute-api/aws4_request"),
            "{auth}"
        );
        assert!(headers.contains_key("x-amz-date"));
        assert_eq!(headers["x-amz-security-token"], "token");
    }

    #[test]
    fn paths_are_joined_under_the_stage_and_escaped() {
        let client = Client {
            http: purser::http_client().build().unwrap(),
            base: Url::parse("https://abc.execute-api.us-east-1.amazonaws.com/prod/").unwrap(),
            principal: None,
            signer: None,
        };
        let url = client.url(&["teams", "a/b"], &[("from", "2026-11-01".into())]);
        assert_eq!(
            url.as_str(),
            "https://abc.execute-api.us-east-1.amazonaws.com/prod/teams/a%2Fb?from=2026-11-01"
        );
    }
}
