//! What every Purser Lambda function's `main` does: read its configuration
//! from the environment the template sets, build the ports on AWS, and run
//! the handler on `lambda_runtime`.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use purser_aws::{DynamoStore, EventBridgeBus, MemberLambdasClient, OrganizationsClient};
use purser_core::access::{AccessSettings, PermissionSet};
use purser_core::budgets::FreezeExemptions;
use purser_core::guardrails::{GuardrailSettings, Guardrails};
use purser_core::leases::{APPROVAL_EXPIRY_DAYS, DEFAULT_APPROVAL_EXPIRY_DAYS};
use purser_core::notify::NotifySettings;
use purser_core::ports::{
    Blueprints, Cleaner, DeadLetterCount, IdentityCenter, Notifier, QueryEngine,
};
use purser_core::recycling::Protected;
use purser_core::{Handler, LakeSink, Ports, RecyclingSettings, Settings, SystemClock, Unwired};
use serde_json::Value;

/// What a function's `main` does: tracing, the ports from the environment,
/// the handler `build` makes of them, and `lambda_runtime` until Lambda
/// stops the sandbox.
pub async fn run<H: Handler + 'static>(
    build: impl FnOnce(&Ports) -> Result<H, Unwired>,
) -> Result<(), Error> {
    init_tracing();
    let ports = ports().await?;
    serve(build(&ports)?).await
}

/// The ports on AWS, as infra/template.yaml configures each function in
/// its environment.
pub async fn ports() -> Result<Ports, Error> {
    let config = purser_aws::load_config().await;
    ports_from(&config, &|name| std::env::var(name).ok())
}

/// The variables a function reads, by name (its environment on Lambda).
pub type Variables<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The ports on `config` with the settings of `vars`: `PURSER_TABLE`,
/// `PURSER_BUS`, `PURSER_ADMIN_PRINCIPALS`, `PURSER_MEMBER_ROLE` and
/// `PURSER_BREAK_GLASS_ROLES` for all; the lake streams
/// (`PURSER_INVOCATIONS_STREAM`, `PURSER_DEPLOYMENTS_STREAM`, `PURSER_USAGE_STREAM`,
/// `PURSER_LEASES_STREAM`, `PURSER_LAKE_BUCKET`) and the Athena workgroup
/// (`PURSER_ATHENA_WORKGROUP`, `PURSER_LAKE_DATABASE`,
/// `PURSER_QUERY_TIMEOUT_SECONDS`, `PURSER_CUR`) only for the functions that
/// write or query the lake.
pub fn ports_from(config: &aws_config::SdkConfig, vars: Variables) -> Result<Ports, Error> {
    let get = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
    let list = |name: &str| list(&get(name).unwrap_or_default());
    let member_role =
        get("PURSER_MEMBER_ROLE").unwrap_or_else(|| "OrganizationAccountAccessRole".into());
    // `throttle-lambdas` assumes `PURSER_THROTTLE_ROLE` (the member role
    // when unset) in the regions of `PURSER_THROTTLE_REGIONS` (the
    // function's own when unset).
    let throttle_role = get("PURSER_THROTTLE_ROLE").unwrap_or_else(|| member_role.clone());
    // A frozen account must still let Purser throttle its functions; the
    // member role people sign in with is not exempt unless named as a
    // break-glass role.
    let freeze_exemptions = FreezeExemptions {
        break_glass_roles: list("PURSER_BREAK_GLASS_ROLES"),
        purser_role: throttle_role.clone(),
        control_tower: get("PURSER_CONTROL_TOWER").is_some_and(|v| v == "true"),
    };
    // A wildcard in BreakGlassRoles would exempt any role an account
    // admin creates to match it: refuse to start rather than freeze badly.
    freeze_exemptions
        .validate()
        .map_err(|e| format!("BreakGlassRoles / ThrottleRoleName: {}", e.message))?;
    // Guardrails a function would refuse to make: refuse to start instead
    // of vending accounts without them.
    let guardrails = GuardrailSettings::from_lists(
        // Set and empty is none; unset (an older template) the defaults.
        vars("PURSER_GUARDRAIL_REGIONS").as_deref(),
        vars("PURSER_GUARDRAIL_DENIED_ACTIONS").as_deref(),
        vars("PURSER_GUARDRAIL_DENIED_INSTANCE_TYPES").as_deref(),
    );
    Guardrails::new(guardrails.clone(), freeze_exemptions.clone())
        .and_then(|g| g.policies())
        .map_err(|e| format!("the Guardrail* parameters: {e}"))?;
    let approval_expiry_days = approval_expiry_days(get("PURSER_APPROVAL_EXPIRY_DAYS"))?;
    Ok(Ports {
        store: Arc::new(DynamoStore::from_config(
            config,
            required(vars, "PURSER_TABLE")?,
        )),
        bus: Arc::new(EventBridgeBus::from_config(
            config,
            required(vars, "PURSER_BUS")?,
        )),
        organization: Arc::new(OrganizationsClient::from_config(config)),
        clock: Arc::new(SystemClock),
        member_lambdas: Arc::new(MemberLambdasClient::from_config(
            config,
            &throttle_role,
            list("PURSER_THROTTLE_REGIONS"),
        )),
        lake: lake(config, vars)?,
        queries: queries(config, vars)?,
        identity_center: identity_center(config, vars),
        notifier: notifier(config, vars),
        dead_letters: dead_letters(config, vars),
        blueprints: blueprints(config),
        cleaner: cleaner(config, vars),
        landing: landing(config, vars),
        running: Arc::new(DynamoStore::from_config(
            config,
            required(vars, "PURSER_TABLE")?,
        )),
        // The recorder's describe-only role where the template names one;
        // the throttle role (budgets' stop-resource) otherwise.
        member_resources: member_resources(
            config,
            &get("PURSER_MEMBER_RESOURCES_ROLE").unwrap_or_else(|| throttle_role.clone()),
        ),
        settings: Settings {
            guardrails,
            guardrails_on_ou: get("PURSER_GUARDRAILS_ON_OU").is_some_and(|v| v == "true"),
            recycling: recycling(vars),
            admins: admins(list("PURSER_ADMIN_PRINCIPALS")),
            region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            freeze_exemptions,
            cur: get("PURSER_CUR").is_some_and(|v| v == "true"),
            owner_domains: list("PURSER_OWNER_DOMAINS"),
            approval_expiry_days,
            access: access(vars),
            notify: NotifySettings {
                admin_emails: list("PURSER_ADMIN_EMAILS"),
                topic: vars("PURSER_NOTIFY_TOPIC").is_some(),
                email: vars("PURSER_NOTIFY_SENDER").is_some_and(|s| !s.is_empty()),
            },
        },
    })
}

// Each optional adapter below is built only into the functions whose crate
// turns on its feature; without it the port is `None`, and a handler that
// needs it refuses to start (`Unwired`).

/// IAM Identity Center, where the template names an instance.
#[cfg(feature = "identity-center")]
fn identity_center(
    config: &aws_config::SdkConfig,
    vars: Variables,
) -> Option<Arc<dyn IdentityCenter>> {
    let instance = vars("PURSER_IDC_INSTANCE_ARN").filter(|v| !v.is_empty())?;
    let store = vars("PURSER_IDENTITY_STORE_ID").unwrap_or_default();
    Some(Arc::new(purser_aws::IdentityCenterClient::from_config(
        config, &instance, &store,
    )))
}

#[cfg(not(feature = "identity-center"))]
fn identity_center(_: &aws_config::SdkConfig, _: Variables) -> Option<Arc<dyn IdentityCenter>> {
    None
}

/// The console's admin page counts the dead letters; only the API function
/// is given the queue.
#[cfg(feature = "dead-letter-count")]
fn dead_letters(
    config: &aws_config::SdkConfig,
    vars: Variables,
) -> Option<Arc<dyn DeadLetterCount>> {
    let url = vars("PURSER_DEAD_LETTER_QUEUE_URL").filter(|url| !url.is_empty())?;
    Some(Arc::new(purser_aws::SqsDeadLetterCount::from_config(
        config, url,
    )))
}

#[cfg(not(feature = "dead-letter-count"))]
fn dead_letters(_: &aws_config::SdkConfig, _: Variables) -> Option<Arc<dyn DeadLetterCount>> {
    None
}

/// CloudFormation StackSets, for the blueprints of lease templates: the
/// function that makes accounts ready (account-events).
#[cfg(feature = "blueprints")]
fn blueprints(config: &aws_config::SdkConfig) -> Option<Arc<dyn Blueprints>> {
    Some(Arc::new(purser_aws::CloudFormationStackSets::from_config(
        config,
    )))
}

#[cfg(not(feature = "blueprints"))]
fn blueprints(_: &aws_config::SdkConfig) -> Option<Arc<dyn Blueprints>> {
    None
}

/// The cleaning project on CodeBuild, for the function the template gives
/// it (the reaper).
#[cfg(feature = "cleaner")]
fn cleaner(config: &aws_config::SdkConfig, vars: Variables) -> Option<Arc<dyn Cleaner>> {
    let project = vars("PURSER_CLEANER_PROJECT").filter(|p| !p.is_empty())?;
    let role = vars("PURSER_MEMBER_ROLE").unwrap_or_else(|| "OrganizationAccountAccessRole".into());
    Some(Arc::new(purser_aws::CodeBuildCleaner::from_config(
        config, project, role,
    )))
}

#[cfg(not(feature = "cleaner"))]
fn cleaner(_: &aws_config::SdkConfig, _: Variables) -> Option<Arc<dyn Cleaner>> {
    None
}

/// EC2 and SageMaker in member accounts, through `role`: the throttle role
/// for the budgets function's `stop-resource`, the describe-only
/// `purser-describe-instances` for the recorder's instance types. Each resource names its
/// region, so no list of regions is needed.
#[cfg(feature = "member-resources")]
fn member_resources(
    config: &aws_config::SdkConfig,
    role: &str,
) -> Option<Arc<dyn purser_core::MemberResources>> {
    Some(Arc::new(purser_aws::MemberResourcesClient::from_config(
        config, role,
    )))
}

#[cfg(not(feature = "member-resources"))]
fn member_resources(
    _: &aws_config::SdkConfig,
    _: &str,
) -> Option<Arc<dyn purser_core::MemberResources>> {
    None
}

/// What the aws-nuke configuration spares: Purser's and the management
/// account (`PURSER_CLEANER_BLOCKLIST`), and the names the template gives
/// what Purser installs in member accounts.
fn recycling(vars: Variables) -> RecyclingSettings {
    let list = |name: &str| -> Vec<String> {
        vars(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let defaults = Protected::default();
    let member_role = vars("PURSER_MEMBER_ROLE").unwrap_or(defaults.member_role);
    RecyclingSettings {
        blocklist: list("PURSER_CLEANER_BLOCKLIST"),
        protected: Protected {
            throttle_role: vars("PURSER_THROTTLE_ROLE").unwrap_or_else(|| member_role.clone()),
            member_role,
            break_glass_roles: list("PURSER_BREAK_GLASS_ROLES"),
            telemetry_policy: defaults.telemetry_policy,
            member_stack_set: vars("PURSER_MEMBER_STACK_SET")
                .filter(|s| !s.is_empty())
                .unwrap_or(defaults.member_stack_set),
            control_tower: vars("PURSER_CONTROL_TOWER").is_some_and(|v| v == "true"),
        },
    }
}

/// How sign-in is granted: the portal and the two permission sets.
fn access(vars: Variables) -> Option<AccessSettings> {
    let set = |arn: &str, name: &str| {
        Some(PermissionSet {
            arn: vars(arn).filter(|v| !v.is_empty())?,
            name: vars(name).filter(|v| !v.is_empty())?,
        })
    };
    vars("PURSER_IDC_INSTANCE_ARN").filter(|v| !v.is_empty())?;
    Some(AccessSettings {
        portal_url: vars("PURSER_ACCESS_PORTAL_URL").unwrap_or_default(),
        developer: set("PURSER_DEVELOPER_SET_ARN", "PURSER_DEVELOPER_SET_NAME")?,
        read_only: set("PURSER_READ_ONLY_SET_ARN", "PURSER_READ_ONLY_SET_NAME"),
    })
}

/// SES, SNS and chat webhooks, for the function the template gives the
/// notifications topic.
#[cfg(feature = "notifier")]
fn notifier(config: &aws_config::SdkConfig, vars: Variables) -> Option<Arc<dyn Notifier>> {
    let topic = vars("PURSER_NOTIFY_TOPIC")?;
    Some(Arc::new(purser_aws::AwsNotifier::from_config(
        config,
        purser_aws::NotifierSettings {
            sender: vars("PURSER_NOTIFY_SENDER").unwrap_or_default(),
            configuration_set: None,
            topic_arn: Some(topic),
        },
    )))
}

#[cfg(not(feature = "notifier"))]
fn notifier(_: &aws_config::SdkConfig, _: Variables) -> Option<Arc<dyn Notifier>> {
    None
}

/// Firehose, for the functions the template gives the lake streams.
#[cfg(feature = "lake")]
fn lake(
    config: &aws_config::SdkConfig,
    vars: Variables,
) -> Result<Option<Arc<dyn LakeSink>>, Error> {
    if vars("PURSER_INVOCATIONS_STREAM").is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(purser_aws::FirehoseSink::from_config(
        config,
        purser_aws::LakeStreams {
            invocations: required(vars, "PURSER_INVOCATIONS_STREAM")?,
            deployments: required(vars, "PURSER_DEPLOYMENTS_STREAM")?,
            usage: required(vars, "PURSER_USAGE_STREAM")?,
            leases: required(vars, "PURSER_LEASES_STREAM")?,
        },
        purser_aws::DeadLetterBucket {
            bucket: required(vars, "PURSER_LAKE_BUCKET")?,
            // The lake bucket's lifecycle rule expires this prefix.
            prefix: "dead-letter/".into(),
        },
    ))))
}

/// The lake bucket's landing area (member accounts' metric streams), for
/// the functions the template gives the lake.
#[cfg(feature = "lake")]
fn landing(
    config: &aws_config::SdkConfig,
    vars: Variables,
) -> Option<Arc<dyn purser_core::ports::Landing>> {
    let bucket = vars("PURSER_LAKE_BUCKET").filter(|b| !b.is_empty())?;
    Some(Arc::new(purser_aws::S3Landing::from_config(config, bucket)))
}

#[cfg(not(feature = "lake"))]
fn landing(
    _: &aws_config::SdkConfig,
    _: Variables,
) -> Option<Arc<dyn purser_core::ports::Landing>> {
    None
}

#[cfg(not(feature = "lake"))]
fn lake(_: &aws_config::SdkConfig, _: Variables) -> Result<Option<Arc<dyn LakeSink>>, Error> {
    Ok(None)
}

/// Athena, for the functions the template gives the workgroup, stopped
/// after `PURSER_QUERY_TIMEOUT_SECONDS` (25 when unset: API Gateway gives
/// up on an integration after 30).
#[cfg(feature = "query")]
fn queries(
    config: &aws_config::SdkConfig,
    vars: Variables,
) -> Result<Option<Arc<dyn QueryEngine>>, Error> {
    if vars("PURSER_ATHENA_WORKGROUP").is_none() {
        return Ok(None);
    }
    let timeout = match vars("PURSER_QUERY_TIMEOUT_SECONDS") {
        None => 25,
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=900).contains(s))
            .ok_or("PURSER_QUERY_TIMEOUT_SECONDS must be 1 to 900 seconds")?,
    };
    Ok(Some(Arc::new(
        purser_aws::AthenaEngine::from_config(
            config,
            required(vars, "PURSER_ATHENA_WORKGROUP")?,
            required(vars, "PURSER_LAKE_DATABASE")?,
        )
        .with_timeout(std::time::Duration::from_secs(timeout)),
    )))
}

#[cfg(not(feature = "query"))]
fn queries(_: &aws_config::SdkConfig, _: Variables) -> Result<Option<Arc<dyn QueryEngine>>, Error> {
    Ok(None)
}

/// `PURSER_APPROVAL_EXPIRY_DAYS` (`ApprovalExpiryDays`): how many days a
/// request or an extension waits for an approver; 7 when unset.
fn approval_expiry_days(value: Option<String>) -> Result<u32, Error> {
    let Some(value) = value else {
        return Ok(DEFAULT_APPROVAL_EXPIRY_DAYS);
    };
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|days| APPROVAL_EXPIRY_DAYS.contains(days))
        .ok_or_else(|| {
            format!(
                "PURSER_APPROVAL_EXPIRY_DAYS (ApprovalExpiryDays) must be a whole number of days from {} to {}, not {value:?}",
                APPROVAL_EXPIRY_DAYS.start(),
                APPROVAL_EXPIRY_DAYS.end()
            )
            .into()
        })
}

fn required(vars: Variables, name: &str) -> Result<String, Error> {
    vars(name).ok_or_else(|| {
        format!("{name} is not set: the function must be deployed by infra/template.yaml").into()
    })
}

/// A comma-separated list.
fn list(value: &str) -> Vec<String> {
    value
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
    use std::collections::HashMap;

    fn config() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .http_client(purser_aws::http_client())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    fn ports(vars: &[(&str, &str)]) -> Result<purser_core::Ports, lambda_runtime::Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::ports_from(&config(), &|name| vars.get(name).cloned())
    }

    /// EC2 and SageMaker in member accounts only where the function's
    /// crate asks for them (budgets and the recorder).
    #[test]
    fn member_resources_are_built_with_their_feature_only() {
        let ports = ports(&[
            ("PURSER_TABLE", "purser"),
            ("PURSER_BUS", "purser-bus"),
            ("PURSER_THROTTLE_ROLE", "purser-throttle"),
        ])
        .unwrap();
        assert_eq!(
            ports.member_resources.is_some(),
            cfg!(feature = "member-resources")
        );
    }

    #[test]
    fn every_function_has_the_store_the_bus_and_the_settings_of_its_environment() {
        let ports = ports(&[
            ("PURSER_TABLE", "purser"),
            ("PURSER_BUS", "purser-bus"),
            (
                "PURSER_ADMIN_PRINCIPALS",
                "arn:aws:iam::123456789012:role/admin, ",
            ),
            ("PURSER_BREAK_GLASS_ROLES", "break-glass"),
            ("PURSER_THROTTLE_ROLE", "purser-throttle"),
            ("PURSER_OWNER_DOMAINS", "example.com, corp.example"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .unwrap();
        assert_eq!(
            ports.settings.owner_domains,
            ["example.com", "corp.example"]
        );
        assert_eq!(
            ports.settings.admins,
            ["arn:aws:iam::123456789012:role/admin"]
        );
        assert_eq!(ports.settings.region, "eu-west-1");
        assert_eq!(
            ports.settings.freeze_exemptions.break_glass_roles,
            ["break-glass"]
        );
        assert_eq!(
            ports.settings.freeze_exemptions.purser_role,
            "purser-throttle"
        );
        assert!(!ports.settings.cur);
        assert_eq!(ports.settings.approval_expiry_days, 7, "unset: 7 days");
        // Only the functions the template gives the lake have it.
        assert!(ports.lake.is_none() && ports.queries.is_none());
        let err = ports.recorder().err().unwrap().to_string();
        assert!(err.contains("lake sink"), "{err}");
    }

    // Built with the features its function crates turn on (`cargo test --workspace`).
    #[cfg(all(feature = "identity-center", feature = "notifier"))]
    #[test]
    fn sign_in_and_notifications_come_from_the_environment_the_template_sets() {
        let base = [("PURSER_TABLE", "t"), ("PURSER_BUS", "b")];
        // The template's empty parameters: neither is configured.
        let unconfigured = ports(&[
            base[0],
            base[1],
            ("PURSER_IDC_INSTANCE_ARN", ""),
            ("PURSER_NOTIFY_SENDER", ""),
        ])
        .unwrap();
        assert!(unconfigured.identity_center.is_none() && unconfigured.settings.access.is_none());
        assert!(unconfigured.notifier.is_none());
        let err = unconfigured.notifications().err().unwrap().to_string();
        assert!(err.contains("notifier"), "{err}");

        let ports = ports(&[
            base[0],
            base[1],
            (
                "PURSER_IDC_INSTANCE_ARN",
                "arn:aws:sso:::instance/ssoins-0123456789abcdef",
            ),
            ("PURSER_IDENTITY_STORE_ID", "d-0123456789"),
            (
                "PURSER_ACCESS_PORTAL_URL",
                "https://d-0123456789.awsapps.com/start",
            ),
            (
                "PURSER_DEVELOPER_SET_ARN",
                "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-1",
            ),
            ("PURSER_DEVELOPER_SET_NAME", "PurserDeveloper"),
            ("PURSER_READ_ONLY_SET_ARN", ""),
            ("PURSER_READ_ONLY_SET_NAME", "PurserReadOnly"),
            (
                "PURSER_NOTIFY_TOPIC",
                "arn:aws:sns:us-east-1:123456789012:notify",
            ),
            ("PURSER_NOTIFY_SENDER", "purser@example.com"),
            ("PURSER_ADMIN_EMAILS", "platform@example.com"),
        ])
        .unwrap();
        assert!(ports.identity_center.is_some());
        let access = ports.settings.access.clone().expect("configured");
        assert_eq!(access.developer.name, "PurserDeveloper");
        assert_eq!(access.read_only, None, "an empty ARN is no set");
        assert!(ports.notifier.is_some());
        assert!(ports.settings.notify.email && ports.settings.notify.topic);
        assert_eq!(ports.settings.notify.admin_emails, ["platform@example.com"]);
        assert!(ports.notifications().is_ok());
    }

    // Built with the features its function crates turn on (`cargo test --workspace`).
    #[cfg(feature = "query")]
    #[test]
    fn a_missing_or_out_of_range_setting_is_named() {
        let err = ports(&[("PURSER_BUS", "b")]).err().unwrap().to_string();
        assert!(err.contains("PURSER_TABLE is not set"), "{err}");
        let err = ports(&[
            ("PURSER_TABLE", "t"),
            ("PURSER_BUS", "b"),
            ("PURSER_ATHENA_WORKGROUP", "w"),
            ("PURSER_LAKE_DATABASE", "d"),
            ("PURSER_QUERY_TIMEOUT_SECONDS", "0"),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("PURSER_QUERY_TIMEOUT_SECONDS"), "{err}");
        let err = ports(&[
            ("PURSER_TABLE", "t"),
            ("PURSER_BUS", "b"),
            ("PURSER_INVOCATIONS_STREAM", "i"),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("PURSER_DEPLOYMENTS_STREAM is not set"),
            "{err}"
        );
        for (days, expected) in [
            ("1", Some(1)),
            ("30", Some(30)),
            (" 90 ", Some(90)),
            ("0", None),
            ("91", None),
            ("-1", None),
            ("7.5", None),
            ("a week", None),
        ] {
            let got = ports(&[
                ("PURSER_TABLE", "t"),
                ("PURSER_BUS", "b"),
                ("PURSER_APPROVAL_EXPIRY_DAYS", days),
            ]);
            match (got, expected) {
                (Ok(ports), Some(expected)) => {
                    assert_eq!(ports.settings.approval_expiry_days, expected, "{days}");
                }
                (Err(err), None) => {
                    let err = err.to_string();
                    assert!(
                        err.contains("PURSER_APPROVAL_EXPIRY_DAYS (ApprovalExpiryDays)")
                            && err.contains("from 1 to 90")
                            && err.contains(&format!("{days:?}")),
                        "{err}"
                    );
                }
                (got, _) => panic!("{days}: {:?}", got.map(|p| p.settings.approval_expiry_days)),
            }
        }
    }

    #[test]
    fn a_wildcard_break_glass_role_stops_the_function_at_cold_start() {
        let err = ports(&[
            ("PURSER_TABLE", "t"),
            ("PURSER_BUS", "b"),
            ("PURSER_BREAK_GLASS_ROLES", "break-glass,admin*"),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("BreakGlassRoles") && err.contains("\"admin*\""),
            "{err}"
        );
    }

    // Built with the features its function crates turn on (`cargo test --workspace`).
    #[cfg(all(feature = "lake", feature = "query"))]
    #[test]
    fn the_lake_functions_have_the_lake_and_its_queries() {
        let ports = ports(&[
            ("PURSER_TABLE", "t"),
            ("PURSER_BUS", "b"),
            ("PURSER_INVOCATIONS_STREAM", "i"),
            ("PURSER_DEPLOYMENTS_STREAM", "d"),
            ("PURSER_USAGE_STREAM", "u"),
            ("PURSER_LEASES_STREAM", "l"),
            ("PURSER_LAKE_BUCKET", "lake"),
            ("PURSER_ATHENA_WORKGROUP", "w"),
            ("PURSER_LAKE_DATABASE", "db"),
            ("PURSER_CUR", "true"),
        ])
        .unwrap();
        assert!(ports.settings.cur);
        assert!(ports.recorder().is_ok() && ports.costs().is_ok());
        assert!(ports.spend_settler().is_ok());
        assert!(
            ports.landing.is_some(),
            "the recorder reads landed metric streams"
        );
    }

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
