//! [`CodeBuildCleaner`] against moto's CodeBuild, and the two documents a
//! run hands to CodeBuild and aws-nuke: the buildspec and the generated
//! aws-nuke configuration.
//!
//! Where moto is not AWS (moto 5.2.5): `StartBuild` ignores the
//! environment overrides and the idempotency token (so a repeated start
//! makes a second build there; the unit tests of `cleaner.rs` check what
//! is sent), and every build it is asked about is `SUCCEEDED` at once, even
//! a stopped one (the unit tests map the failed statuses). An unknown build
//! id is left out of `builds` rather than listed in `buildsNotFound`.

use std::collections::BTreeSet;

use aws_config::SdkConfig;
use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
    ProjectSource, SourceType,
};
use purser_aws::{CodeBuildCleaner, MEMBER_ROLE_VAR, NUKE_CONFIG_VAR, TARGET_ACCOUNT_VAR};
use purser_core::ports::{Cleaner, CleanerError, CleaningStatus};
use purser_core::recycling::{NukeTarget, Protected};
use serde_yaml_ng::Value;

use crate::common::{moto_config, unique};

/// moto's default account, the one the `testing` credentials act in.
const ACCOUNT: &str = "123456789012";
const MEMBER: &str = "012345678901";

fn buildspec() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/cleaner/buildspec.yml"
    );
    std::fs::read_to_string(path).expect("infra/cleaner/buildspec.yml")
}

fn config() -> String {
    NukeTarget {
        account_id: MEMBER.into(),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        blocklist: vec![ACCOUNT.into()],
        protected: Protected {
            break_glass_roles: vec!["purser-break-glass".into()],
            control_tower: true,
            ..Protected::default()
        },
    }
    .config()
    .expect("a configuration")
}

/// A cleaning project as the template declares it: no source, the
/// buildspec inline, no artifacts.
async fn project(config: &SdkConfig) -> String {
    let name = unique("cleaner");
    aws_sdk_codebuild::Client::new(config)
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::NoSource)
                .buildspec(buildspec())
                // moto wants a location even without a source; AWS does not.
                .location("none")
                .build()
                .expect("a source"),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts"),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .compute_type(ComputeType::BuildGeneral1Small)
                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .build()
                .expect("an environment"),
        )
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/purser-cleaner"))
        .send()
        .await
        .expect("CreateProject");
    name
}

#[tokio::test]
async fn a_run_starts_as_a_build_of_the_project_and_reports_its_end() {
    let Some(config) = moto_config().await else {
        return;
    };
    let project = project(&config).await;
    let cleaner = CodeBuildCleaner::from_config(&config, &project, "OrganizationAccountAccessRole");
    let run = cleaner
        .start(MEMBER, &self::config(), 1, 1)
        .await
        .expect("StartBuild");
    assert!(run.starts_with(&format!("{project}:")), "{run}");
    assert_eq!(cleaner.status(&run).await, Ok(CleaningStatus::Succeeded));
}

#[tokio::test]
async fn an_unknown_build_or_project_is_not_found() {
    let Some(config) = moto_config().await else {
        return;
    };
    let project = project(&config).await;
    let cleaner = CodeBuildCleaner::from_config(&config, &project, "OrganizationAccountAccessRole");
    let unknown = format!("{project}:00000000-0000-4000-8000-000000000000");
    assert!(matches!(
        cleaner.status(&unknown).await,
        Err(CleanerError::NotFound(_))
    ));
    let missing =
        CodeBuildCleaner::from_config(&config, unique("gone"), "OrganizationAccountAccessRole");
    let refused = missing.start(MEMBER, &self::config(), 1, 1).await;
    assert!(
        matches!(refused, Err(CleanerError::NotFound(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_malformed_build_id_is_refused() {
    let Some(config) = moto_config().await else {
        return;
    };
    let cleaner = CodeBuildCleaner::from_config(&config, unique("cleaner"), "r");
    let answer = cleaner.status("no-colon").await;
    assert!(
        matches!(answer, Err(CleanerError::Refused(_))),
        "{answer:?}"
    );
}

/// The generated configuration, read as aws-nuke reads it (YAML), against
/// the format of ekristen/aws-nuke's docs/config.md (sections),
/// docs/config-filtering.md (filters: a string, or an object of
/// `property`, `type`, `value`, `invert`, `group`; the types),
/// docs/config-presets.md (an account's presets name global presets) and
/// docs/features/bypass-alias-check.md.
#[test]
fn the_configuration_has_aws_nukes_documented_format() {
    let config: Value = serde_yaml_ng::from_str(&config()).expect("YAML, as aws-nuke reads it");
    let top = mapping(&config);
    let documented = [
        "blocklist",
        "blocklist-terms",
        "no-blocklist-terms-default",
        "regions",
        "accounts",
        "resource-types",
        "feature-flags",
        "settings",
        "presets",
        "bypass-alias-check-accounts",
    ];
    for key in top.keys() {
        assert!(
            documented.contains(&key.as_str()),
            "undocumented section {key}"
        );
    }

    let regions = strings(&config["regions"]);
    assert!(regions.contains(&"global".to_string()));
    assert!(!regions.contains(&"all".to_string()));

    let blocklist = strings(&config["blocklist"]);
    assert!(!blocklist.is_empty(), "aws-nuke requires a blocklist");
    assert!(!blocklist.contains(&MEMBER.to_string()));
    assert_eq!(
        strings(&config["bypass-alias-check-accounts"]),
        vec![MEMBER]
    );

    // One account, its id a string (a leading zero survives).
    let accounts = mapping(&config["accounts"]);
    assert_eq!(accounts.keys().collect::<Vec<_>>(), vec![MEMBER]);
    let account = &config["accounts"][MEMBER];
    for key in mapping(account).keys() {
        assert!(
            ["presets", "filters", "resource-types"].contains(&key.as_str()),
            "{key}"
        );
    }
    let presets = mapping(&config["presets"]);
    for name in strings(&account["presets"]) {
        assert!(
            presets.contains_key(&name),
            "the account names preset {name}, not defined"
        );
    }

    let types = [
        "exact",
        "contains",
        "glob",
        "regex",
        "dateOlderThan",
        "dateOlderThanNow",
    ];
    let mut kept = BTreeSet::new();
    for (name, preset) in &presets {
        for key in mapping(preset).keys() {
            assert_eq!(key, "filters", "preset {name}");
        }
        for (resource_type, filters) in mapping(&preset["filters"]) {
            let filters = filters.as_sequence().expect("a list of filters");
            assert!(!filters.is_empty(), "{resource_type}");
            for filter in filters {
                if filter.is_string() {
                    continue;
                }
                let fields = mapping(filter);
                for key in fields.keys() {
                    assert!(
                        ["property", "type", "value", "invert", "group"].contains(&key.as_str()),
                        "{resource_type}: {key}"
                    );
                }
                assert!(filter["value"].is_string(), "{resource_type}: a value");
                let kind = filter["type"].as_str().unwrap_or("exact");
                assert!(types.contains(&kind), "{resource_type}: type {kind}");
                if filter["property"].is_string() {
                    kept.insert((
                        resource_type.clone(),
                        filter["value"].as_str().map(String::from),
                    ));
                }
            }
        }
    }
    // What must survive, by the properties the resource docs name.
    for (resource_type, value) in [
        ("IAMRole", "OrganizationAccountAccessRole"),
        ("IAMRole", "stacksets-exec-*"),
        ("IAMRole", "AWSReservedSSO_*"),
        ("IAMRole", "purser-break-glass"),
        ("IAMRole", "AWSControlTowerExecution"),
        ("IAMRolePolicyAttachment", "OrganizationAccountAccessRole"),
        ("IAMPolicy", "PurserTelemetryPolicy-*"),
        ("CloudFormationStack", "StackSet-purser-member-*"),
    ] {
        assert!(
            kept.contains(&(resource_type.to_string(), Some(value.to_string()))),
            "{resource_type} {value} is not kept"
        );
    }

    for (key, types) in mapping(&config["resource-types"]) {
        assert!(["includes", "excludes", "cloud-control", "targets"].contains(&key.as_str()));
        assert!(!strings(&types).is_empty());
    }
    for (resource_type, settings) in mapping(&config["settings"]) {
        assert!(!mapping(&settings).is_empty(), "{resource_type}");
    }
}

/// The buildspec reads what `StartBuild` sets, pins and checks aws-nuke,
/// and runs it as the docs' CLI (docs/cli-usage.md, aws-nuke run) says.
#[test]
fn the_buildspec_runs_what_start_sends() {
    let text = buildspec();
    let spec: Value = serde_yaml_ng::from_str(&text).expect("YAML");
    assert_eq!(spec["version"].as_f64(), Some(0.2));
    let version = spec["env"]["variables"]["AWS_NUKE_VERSION"]
        .as_str()
        .unwrap_or("");
    assert!(version.starts_with("v3."), "aws-nuke v3, pinned: {version}");
    let digest = spec["env"]["variables"]["AWS_NUKE_SHA256"]
        .as_str()
        .unwrap_or("");
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
    let install = commands(&spec, "install");
    assert!(install.contains("sha256sum --check"));
    let build = commands(&spec, "build");
    for var in [TARGET_ACCOUNT_VAR, MEMBER_ROLE_VAR, NUKE_CONFIG_VAR] {
        assert!(build.contains(var), "the buildspec does not read {var}");
    }
    for flag in [
        "aws-nuke run",
        "--config",
        "--no-dry-run",
        "--no-prompt",
        "--no-alias-check",
        "--quiet",
        "--assume-role-arn",
        "base64 --decode",
    ] {
        assert!(build.contains(flag), "the build phase lacks {flag}");
    }
}

fn commands(spec: &Value, phase: &str) -> String {
    spec["phases"][phase]["commands"]
        .as_sequence()
        .unwrap_or_else(|| panic!("phase {phase} has commands"))
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

fn mapping(value: &Value) -> std::collections::BTreeMap<String, Value> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("a mapping: {value:?}"))
        .iter()
        .map(|(k, v)| (k.as_str().expect("a string key").to_owned(), v.clone()))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}
