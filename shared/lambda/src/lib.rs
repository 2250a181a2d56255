//! What every Purser Lambda function's `main` does: read its configuration
//! from the environment the template sets, build the ports on AWS, and run
//! the handler on `lambda_runtime`.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use purser_aws::{
    AthenaEngine, DeadLetterBucket, DynamoStore, EventBridgeBus, FirehoseSink, LakeStreams,
    MemberLambdasClient, OrganizationsClient,
};
use purser_core::accounts::Accounts;
use purser_core::budgets::{Budgets, FreezeExemptions};
use purser_core::lake::Recorder;
use purser_core::ports::QueryEngine;
use purser_core::spend::{Costs, SpendSettler};
use purser_core::{Clock, EventBus, Handler, Organization, Store, SystemClock};
use serde_json::Value;

/// The ports on AWS, as the template configures them.
pub struct AwsPorts {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub organization: Arc<dyn Organization>,
    pub clock: Arc<dyn Clock>,
    /// IAM principal ARNs of platform admins (`AdminPrincipals`).
    pub admins: Vec<String>,
    config: aws_config::SdkConfig,
}

impl AwsPorts {
    pub fn accounts(&self) -> Accounts {
        Accounts::new(
            self.store.clone(),
            self.store.clone(),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        )
    }

    /// Budgets, with the roles a freeze exempts (`PURSER_BREAK_GLASS_ROLES`,
    /// `PURSER_MEMBER_ROLE`, and the throttle role); `throttle-lambdas`
    /// assumes `PURSER_THROTTLE_ROLE` (the member role when unset) in member
    /// accounts, in the regions of `PURSER_THROTTLE_REGIONS` (the function's
    /// own when unset).
    pub fn budgets(&self) -> Budgets {
        let member_role = member_role();
        let throttle_role = std::env::var("PURSER_THROTTLE_ROLE")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| member_role.clone());
        let mut break_glass_roles = list_env("PURSER_BREAK_GLASS_ROLES");
        // A frozen account must still let Purser throttle its functions.
        if throttle_role != member_role && !break_glass_roles.contains(&throttle_role) {
            break_glass_roles.push(throttle_role.clone());
        }
        Budgets::new(
            Arc::clone(&self.store),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
            Arc::new(MemberLambdasClient::from_config(
                &self.config,
                &throttle_role,
                list_env("PURSER_THROTTLE_REGIONS"),
            )),
            FreezeExemptions {
                break_glass_roles,
                purser_role: member_role,
            },
        )
    }

    /// The recorder on Firehose; only functions the template gives the lake
    /// streams (`PURSER_INVOCATIONS_STREAM`, `PURSER_DEPLOYMENTS_STREAM`,
    /// `PURSER_LAKE_BUCKET`) have one.
    pub fn recorder(&self) -> Result<Recorder, Error> {
        let lake = FirehoseSink::from_config(
            &self.config,
            LakeStreams {
                invocations: env("PURSER_INVOCATIONS_STREAM")?,
                deployments: env("PURSER_DEPLOYMENTS_STREAM")?,
            },
            DeadLetterBucket {
                bucket: env("PURSER_LAKE_BUCKET")?,
                // The lake bucket's lifecycle rule expires this prefix.
                prefix: "dead-letter/".into(),
            },
        );
        Ok(Recorder::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            Arc::new(lake),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        ))
    }

    /// The named queries on Athena: the workgroup and Glue database the
    /// template gives (`PURSER_ATHENA_WORKGROUP`, `PURSER_LAKE_DATABASE`),
    /// stopped after `timeout`.
    pub fn athena(&self, timeout: std::time::Duration) -> Result<Arc<dyn QueryEngine>, Error> {
        Ok(Arc::new(
            AthenaEngine::from_config(
                &self.config,
                env("PURSER_ATHENA_WORKGROUP")?,
                env("PURSER_LAKE_DATABASE")?,
            )
            .with_timeout(timeout),
        ))
    }

    /// What teams spent, with costs by function from `lake`.
    pub fn costs(&self, lake: Arc<dyn QueryEngine>) -> Costs {
        Costs::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            lake,
            Arc::clone(&self.clock),
        )
    }

    /// The spend settler on Athena; `PURSER_CUR` says whether the template
    /// created the `cur` table over a CUR 2.0 export.
    pub fn spend(&self) -> Result<SpendSettler, Error> {
        Ok(SpendSettler::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            // Well inside the function's 300-second timeout, for two queries.
            self.athena(std::time::Duration::from_secs(120))?,
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
            std::env::var("PURSER_CUR").is_ok_and(|v| v == "true"),
        ))
    }
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: the function must be deployed by infra/template.yaml").into()
    })
}

/// The role Purser acts through in member accounts (`PURSER_MEMBER_ROLE`).
fn member_role() -> String {
    std::env::var("PURSER_MEMBER_ROLE")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "OrganizationAccountAccessRole".into())
}

/// A comma-separated list from the environment (empty when unset).
fn list_env(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The admins of `PURSER_ADMIN_PRINCIPALS`, without STS sessions: whoever
/// may assume a session's role chooses its name, so a session is no one.
fn admins(listed: Vec<String>) -> Vec<String> {
    listed
        .into_iter()
        .filter(|arn| match purser_core::accounts::session_role(arn) {
            Some(role) => {
                lambda_runtime::tracing::error!(principal = %arn, role = %role,
                    "AdminPrincipals names a session, which anyone who may assume its role can impersonate: ignored; name the role instead");
                false
            }
            None => true,
        })
        .collect()
}

/// Reads `PURSER_TABLE`, `PURSER_BUS` and `PURSER_ADMIN_PRINCIPALS`.
pub async fn ports() -> Result<AwsPorts, Error> {
    let config = purser_aws::load_config().await;
    Ok(AwsPorts {
        store: Arc::new(DynamoStore::from_config(&config, env("PURSER_TABLE")?)),
        bus: Arc::new(EventBridgeBus::from_config(&config, env("PURSER_BUS")?)),
        organization: Arc::new(OrganizationsClient::from_config(&config)),
        clock: Arc::new(SystemClock),
        admins: admins(list_env("PURSER_ADMIN_PRINCIPALS")),
        config,
    })
}

/// Runs `handler` for every invocation; a handler error is reported to
/// Lambda as the invocation's error (EventBridge then retries it).
pub async fn serve(handler: impl Handler + 'static) -> Result<(), Error> {
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move {
            handler.handle(event.payload).await.map_err(|e| Diagnostic {
                error_type: e.kind,
                error_message: e.message,
            })
        }
    }))
    .await
}

/// Structured JSON logs, as the template's `LoggingConfig` asks.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

#[cfg(test)]
mod tests {
    #[test]
    fn admins_named_by_session_are_ignored() {
        let listed = vec![
            "arn:aws:iam::123456789012:role/platform-admin".to_string(),
            "arn:aws:sts::123456789012:assumed-role/platform-admin/maria".to_string(),
            "arn:aws:iam::123456789012:user/ana".to_string(),
        ];
        assert_eq!(
            super::admins(listed),
            [
                "arn:aws:iam::123456789012:role/platform-admin",
                "arn:aws:iam::123456789012:user/ana"
            ]
        );
    }
}
