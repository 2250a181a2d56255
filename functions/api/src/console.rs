//! The web console: one page and its two assets, served by this function
//! (`GET /`, `GET /console/{asset}`) without authentication, and who a
//! caller known by a JWT (the console's HttpApi) is.
//!
//! The page calls the same JSON routes as the CLI, so the console has no
//! route the API would refuse. On AWS it signs in with the authorization
//! code flow and PKCE against the identity provider the template names;
//! on `purser up` a picker chooses whom to act as.

use std::collections::HashMap;

use purser_core::accounts::Caller;
use serde_json::json;

use crate::reply::{File, Reply};

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// Where `GET /` puts the console's settings for the page's script.
const CONFIG_PLACEHOLDER: &str = "<!--PURSER_CONFIG-->";

/// How people sign into the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAuth {
    /// `purser up`: no sign-in; the page's picker names the caller.
    Local,
    /// An OpenID Connect provider (Cognito by default), by the
    /// authorization code flow with PKCE; API Gateway checks the token.
    Oidc(Oidc),
    /// Deployed without an identity provider: the page says so.
    NotConfigured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub scope: String,
    pub logout_url: Option<String>,
}

/// The console's sign-in and who among its users are admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub auth: ConsoleAuth,
    /// The claim that names the caller (an email address).
    pub email_claim: String,
    /// The claim that lists the caller's groups.
    pub groups_claim: String,
    /// Members of this group are platform admins.
    pub admin_group: Option<String>,
}

impl ConsoleSettings {
    pub fn local() -> Self {
        Self {
            auth: ConsoleAuth::Local,
            email_claim: "email".into(),
            groups_claim: "cognito:groups".into(),
            admin_group: None,
        }
    }

    /// From the function's environment, as infra/template.yaml sets it:
    /// `PURSER_CONSOLE_AUTHORIZE_URL`, `_TOKEN_URL`, `_CLIENT_ID`,
    /// `_LOGOUT_URL`, `_SCOPE`, `_GROUPS_CLAIM`, `_ADMIN_GROUP`. Without an
    /// authorize URL the console has no sign-in (never the local picker).
    pub fn from_env(vars: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
        let auth = match (
            var("PURSER_CONSOLE_AUTHORIZE_URL"),
            var("PURSER_CONSOLE_TOKEN_URL"),
            var("PURSER_CONSOLE_CLIENT_ID"),
        ) {
            (Some(authorize_url), Some(token_url), Some(client_id)) => ConsoleAuth::Oidc(Oidc {
                authorize_url,
                token_url,
                client_id,
                scope: var("PURSER_CONSOLE_SCOPE").unwrap_or_else(|| "openid email".into()),
                logout_url: var("PURSER_CONSOLE_LOGOUT_URL"),
            }),
            _ => ConsoleAuth::NotConfigured,
        };
        Self {
            auth,
            email_claim: "email".into(),
            groups_claim: var("PURSER_CONSOLE_GROUPS_CLAIM")
                .unwrap_or_else(|| "cognito:groups".into()),
            admin_group: var("PURSER_CONSOLE_ADMIN_GROUP"),
        }
    }

    /// Who a JWT's claims (as API Gateway passes them: every value a
    /// string) name: refused without an email address, or with one the
    /// provider says is not verified (anyone could claim any address).
    pub fn caller(&self, claims: &HashMap<String, String>) -> Result<Caller, String> {
        let email = claims
            .get(&self.email_claim)
            .map(|e| e.trim())
            .filter(|e| purser_core::accounts::validate_email(e).is_ok())
            .ok_or_else(|| {
                format!(
                    "the token has no {} claim with an email address; ask for the `email` scope",
                    self.email_claim
                )
            })?;
        if claims
            .get("email_verified")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            return Err(format!(
                "the identity provider has not verified {email}; verify it, then sign in again"
            ));
        }
        let admin = self.admin_group.as_deref().is_some_and(|admin| {
            claims
                .get(&self.groups_claim)
                .is_some_and(|groups| groups_of(groups).any(|g| g == admin))
        });
        Ok(Caller::by_email(email, admin))
    }

    /// The page, with these settings for its script.
    pub fn page(&self) -> Reply {
        let config = match &self.auth {
            ConsoleAuth::Local => json!({"auth": "local"}),
            ConsoleAuth::NotConfigured => json!({"auth": "none"}),
            ConsoleAuth::Oidc(o) => json!({
                "auth": "oidc",
                "authorize_url": o.authorize_url,
                "token_url": o.token_url,
                "client_id": o.client_id,
                "scope": o.scope,
                "logout_url": o.logout_url,
            }),
        };
        // `<` escaped, so nothing in a setting can close the script element.
        let config = config.to_string().replace('<', "\\u003c");
        let tag =
            format!(r#"<script type="application/json" id="purser-config">{config}</script>"#);
        self.file(
            "text/html; charset=utf-8",
            INDEX.replace(CONFIG_PLACEHOLDER, &tag),
        )
    }

    /// `GET /console/{asset}`.
    pub fn asset(&self, name: &str) -> Option<Reply> {
        let (content_type, text) = match name {
            "app.js" => ("text/javascript; charset=utf-8", APP_JS),
            "app.css" => ("text/css; charset=utf-8", APP_CSS),
            _ => return None,
        };
        Some(self.file(content_type, text.to_string()))
    }

    /// A file with headers that keep the page to itself: its own scripts
    /// and styles only, no framing, calls only to this API (and the
    /// identity provider's token endpoint).
    fn file(&self, content_type: &'static str, text: String) -> Reply {
        let connect = match &self.auth {
            ConsoleAuth::Oidc(o) => match origin(&o.token_url) {
                Some(token_origin) => format!("'self' {token_origin}"),
                None => "'self'".into(),
            },
            _ => "'self'".into(),
        };
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        Reply::file(File {
            content_type,
            text,
            headers: vec![
                ("content-security-policy", csp),
                ("x-content-type-options", "nosniff".into()),
                ("referrer-policy", "no-referrer".into()),
                ("cache-control", "no-cache".into()),
            ],
        })
    }
}

/// The groups of a claim as API Gateway passes it: `[a b]` for a JSON
/// array, or a comma- or space-separated list.
fn groups_of(claim: &str) -> impl Iterator<Item = &str> {
    claim
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|g| g.trim_matches('"'))
        .filter(|g| !g.is_empty())
}

/// `https://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn oidc() -> ConsoleSettings {
        let env = |name: &str| {
            match name {
                "PURSER_CONSOLE_AUTHORIZE_URL" => {
                    Some("https://purser.auth.eu-west-1.amazoncognito.com/oauth2/authorize")
                }
                "PURSER_CONSOLE_TOKEN_URL" => {
                    Some("https://purser.auth.eu-west-1.amazoncognito.com/oauth2/token")
                }
                "PURSER_CONSOLE_CLIENT_ID" => Some("client-1"),
                "PURSER_CONSOLE_ADMIN_GROUP" => Some("purser-admins"),
                _ => None,
            }
            .map(String::from)
        };
        ConsoleSettings::from_env(&env)
    }

    #[test]
    fn a_token_names_its_caller_by_email_and_admins_by_group() {
        let settings = oidc();
        let ana = settings
            .caller(&claims(&[
                ("email", "Ana@Example.com"),
                ("email_verified", "true"),
            ]))
            .unwrap();
        assert_eq!(ana.principal, "ana@example.com");
        assert!(!ana.admin);
        let maria = settings
            .caller(&claims(&[
                ("email", "maria@example.com"),
                ("cognito:groups", "[developers purser-admins]"),
            ]))
            .unwrap();
        assert!(maria.admin);
        // A group whose name merely contains the admin group's is not it.
        let eve = settings
            .caller(&claims(&[
                ("email", "eve@example.com"),
                ("cognito:groups", "[purser-admins-not]"),
            ]))
            .unwrap();
        assert!(!eve.admin);
    }

    #[test]
    fn a_token_without_a_verified_address_is_no_one() {
        let settings = oidc();
        assert!(settings.caller(&claims(&[("sub", "x")])).is_err());
        assert!(
            settings
                .caller(&claims(&[("email", "not an address")]))
                .is_err()
        );
        let unverified = settings
            .caller(&claims(&[
                ("email", "ana@example.com"),
                ("email_verified", "false"),
            ]))
            .unwrap_err();
        assert!(unverified.contains("not verified"), "{unverified}");
    }

    #[test]
    fn without_a_group_setting_no_token_makes_an_admin() {
        let settings = ConsoleSettings::from_env(&|_| None);
        assert_eq!(settings.auth, ConsoleAuth::NotConfigured);
        let caller = settings
            .caller(&claims(&[
                ("email", "maria@example.com"),
                ("cognito:groups", "[purser-admins]"),
            ]))
            .unwrap();
        assert!(!caller.admin);
    }

    #[test]
    fn the_page_carries_its_settings_and_keeps_to_itself() {
        let page = oidc().page().into_value();
        let body = page["body"].as_str().unwrap();
        assert!(body.contains(r#"id="purser-config""#), "{body}");
        assert!(body.contains(r#""client_id":"client-1""#), "{body}");
        assert!(!body.contains(CONFIG_PLACEHOLDER));
        let csp = page["headers"]["content-security-policy"].as_str().unwrap();
        assert!(
            csp.contains("connect-src 'self' https://purser.auth.eu-west-1.amazoncognito.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(ConsoleSettings::local().asset("app.js").is_some());
        assert!(ConsoleSettings::local().asset("../Cargo.toml").is_none());
    }

    #[test]
    fn a_setting_cannot_close_the_script_element() {
        let mut settings = oidc();
        if let ConsoleAuth::Oidc(o) = &mut settings.auth {
            o.client_id = "</script><script>alert(1)</script>".into();
        }
        let page = settings.page().into_value();
        let body = page["body"].as_str().unwrap();
        assert!(!body.contains("</script><script>alert"), "{body}");
    }
}
