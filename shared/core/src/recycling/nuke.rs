//! The aws-nuke configuration that cleans one member account, in the
//! format of the maintained fork, ekristen/aws-nuke v3 (its docs/config.md,
//! config-filtering.md, config-presets.md and starter-config.md).
//!
//! It is written as JSON: YAML is a superset of JSON and aws-nuke reads
//! its configuration with a YAML parser, so serde_json (already in this
//! crate) does without a YAML crate, and quoted keys keep account ids
//! such as `012345678901` strings, where bare YAML would read a number.
//!
//! What survives (filters are "keep" rules in aws-nuke) is what Purser and
//! AWS put in every member account, in presets: `purser` (the StackSet's
//! stack and what it made, the member role, the throttle and break-glass
//! roles, StackSets' execution roles), `identity-center` (the
//! `AWSReservedSSO_*` roles and their SAML provider), `defaults` (the
//! default VPC, as a new account has it) and, where Control Tower governs
//! the accounts, `control-tower`. Everything else in the account's
//! regions and `global` goes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::budgets::{CONTROL_TOWER_FUNCTIONS, CONTROL_TOWER_ROLE, STACK_SETS_ROLE};
use crate::validation::is_region;

/// The role StackSets with self-managed permissions deploy through.
const SELF_MANAGED_STACK_SETS_ROLE: &str = "AWSCloudFormationStackSetExecutionRole";
/// infra/member-account.yaml's regional forwarding role and rules.
const FORWARD_ROLES: &str = "purser-forward-to-bus-*";
const FORWARD_RULES: &[&str] = &["purser-forward-stack-changes", "purser-forward-invocations"];

/// The account to clean and what must survive in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NukeTarget {
    /// The member account to clean.
    pub account_id: String,
    /// Its regions (`global` is always added; `all` is refused, as its
    /// meaning changes with the regions an account enables).
    pub regions: Vec<String>,
    /// Accounts aws-nuke must never touch: the management account and
    /// Purser's own. aws-nuke refuses to run without one.
    pub blocklist: Vec<String>,
    pub protected: Protected,
}

/// What Purser installs in member accounts, by the names its settings give
/// them (infra/template.yaml's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// The role Purser, and the cleaner, assume in member accounts
    /// (`MemberAccountRole`).
    pub member_role: String,
    /// The budgets function's throttle role (`ThrottleRoleName`).
    pub throttle_role: String,
    /// Break-glass roles a freeze exempts (`BreakGlassRoles`).
    pub break_glass_roles: Vec<String>,
    /// The telemetry managed policy's prefix: its name is `<prefix>-<region>`.
    pub telemetry_policy: String,
    /// The member StackSet (`MemberStackSetName`): its stacks are
    /// `StackSet-<name>-<id>`, and their queues are named after them.
    pub member_stack_set: String,
    /// Whether Control Tower governs the accounts (`ControlTower`).
    pub control_tower: bool,
}

impl Default for Protected {
    fn default() -> Self {
        Self {
            member_role: "OrganizationAccountAccessRole".into(),
            throttle_role: "purser-lambda-throttle".into(),
            break_glass_roles: vec![],
            telemetry_policy: "PurserTelemetryPolicy".into(),
            member_stack_set: "purser-member".into(),
            control_tower: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NukeConfigError {
    #[error("{0:?} is not an AWS account id (12 digits)")]
    AccountId(String),
    #[error("{0:?} is not an AWS region name (like eu-west-1)")]
    Region(String),
    #[error("no region to clean: give the account's regions (global is added)")]
    NoRegions,
    #[error("the blocklist is empty: aws-nuke refuses to run without one")]
    EmptyBlocklist,
    #[error("account {0} is in its own blocklist: aws-nuke would refuse to clean it")]
    TargetBlocked(String),
    #[error("{field} {value:?} is not {what}")]
    Name {
        field: &'static str,
        value: String,
        what: &'static str,
    },
}

impl NukeTarget {
    /// The configuration, as compact JSON (it travels in an environment
    /// variable of the cleaning build), or what is wrong with the target.
    pub fn config(&self) -> Result<String, NukeConfigError> {
        let config = self.document()?;
        Ok(serde_json::to_string(&config).expect("strings and string-keyed maps serialize"))
    }

    fn document(&self) -> Result<Document<'_>, NukeConfigError> {
        if !is_account_id(&self.account_id) {
            return Err(NukeConfigError::AccountId(self.account_id.clone()));
        }
        let mut regions = vec!["global".to_string()];
        for region in &self.regions {
            if !is_region(region) {
                return Err(NukeConfigError::Region(region.clone()));
            }
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        if regions.len() == 1 {
            return Err(NukeConfigError::NoRegions);
        }
        let mut blocklist: Vec<&str> = vec![];
        for id in &self.blocklist {
            if !is_account_id(id) {
                return Err(NukeConfigError::AccountId(id.clone()));
            }
            if *id == self.account_id {
                return Err(NukeConfigError::TargetBlocked(id.clone()));
            }
            if !blocklist.contains(&id.as_str()) {
                blocklist.push(id);
            }
        }
        if blocklist.is_empty() {
            return Err(NukeConfigError::EmptyBlocklist);
        }
        let presets = self.protected.presets()?;
        let account = Account {
            presets: presets.keys().copied().collect(),
        };
        Ok(Document {
            regions,
            blocklist,
            // Accounts made by Organizations have no alias, which aws-nuke
            // otherwise demands (docs/features/bypass-alias-check.md).
            bypass_alias_check_accounts: vec![&self.account_id],
            accounts: BTreeMap::from([(self.account_id.as_str(), account)]),
            presets,
            resource_types: ResourceTypes { excludes: EXCLUDES },
            settings: settings(),
        })
    }
}

impl Protected {
    fn validate(&self) -> Result<(), NukeConfigError> {
        let roles = [
            ("member_role", &self.member_role),
            ("throttle_role", &self.throttle_role),
        ]
        .into_iter()
        .chain(
            self.break_glass_roles
                .iter()
                .map(|role| ("break_glass_roles", role)),
        );
        for (field, role) in roles {
            if !is_iam_name(role, 64) {
                return Err(name_error(field, role, "an IAM role name"));
            }
        }
        // Room for `-<region>` within IAM's 128 characters of a policy name.
        if !is_iam_name(&self.telemetry_policy, 100) {
            return Err(name_error(
                "telemetry_policy",
                &self.telemetry_policy,
                "an IAM policy name prefix",
            ));
        }
        let set = &self.member_stack_set;
        let valid_set = set.len() <= 128
            && set.starts_with(|c: char| c.is_ascii_alphabetic())
            && set.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_set {
            return Err(name_error("member_stack_set", set, "a StackSet name"));
        }
        Ok(())
    }

    fn presets(&self) -> Result<BTreeMap<&'static str, Preset>, NukeConfigError> {
        self.validate()?;
        let mut presets = BTreeMap::from([
            ("purser", self.purser()),
            ("identity-center", identity_center()),
            ("defaults", default_vpc()),
        ]);
        if self.control_tower {
            presets.insert("control-tower", control_tower());
        }
        Ok(presets)
    }

    /// infra/member-account.yaml's stack and resources, and the roles
    /// Purser and StackSets act through.
    fn purser(&self) -> Preset {
        let mut roles = vec![
            Keep::exact(&self.member_role),
            Keep::exact(&self.throttle_role),
            Keep::exact(SELF_MANAGED_STACK_SETS_ROLE),
            Keep::glob(STACK_SETS_ROLE),
            Keep::glob(FORWARD_ROLES),
        ];
        roles.extend(self.break_glass_roles.iter().map(|r| Keep::exact(r)));
        let stack = format!("StackSet-{}-", self.member_stack_set);
        let mut preset = Preset::roles(&roles);
        preset.keep(
            "IAMPolicy",
            vec![Keep::glob(&format!("{}-*", self.telemetry_policy)).on("Name")],
        );
        preset.keep(
            "CloudFormationStack",
            vec![Keep::glob(&format!("{stack}*")).on("Name")],
        );
        let rules: Vec<Keep> = FORWARD_RULES
            .iter()
            .map(|rule| Keep::exact(rule).on("Name"))
            .collect();
        preset.keep("CloudWatchEventsRule", rules.clone());
        preset.keep("CloudWatchEventsTarget", rules);
        // The forwarding dead-letter queue: CloudFormation names it after
        // the stack, and the URL is `https://…/<account>/<name>`.
        preset.keep(
            "SQSQueue",
            vec![Keep::contains(&format!("/{stack}")).on("QueueURL")],
        );
        preset
    }
}

/// Identity Center's roles (`/aws-reserved/sso.amazonaws.com/`) and the
/// SAML provider they trust (`AWSSSO_<id>_DO_NOT_DELETE`).
fn identity_center() -> Preset {
    let mut preset = Preset::roles(&[Keep::glob("AWSReservedSSO_*")]);
    preset.keep(
        "IAMSAMLProvider",
        vec![Keep::contains(":saml-provider/AWSSSO_").on("ARN")],
    );
    preset
}

/// The default VPC, as a new account has it (starter-config.md's
/// `defaults` preset): the next lease starts where a new account would.
fn default_vpc() -> Preset {
    let mut preset = Preset::default();
    for kind in [
        "EC2Subnet",
        "EC2DefaultSecurityGroupRule",
        "EC2DHCPOption",
        "EC2InternetGateway",
        "EC2InternetGatewayAttachment",
    ] {
        preset.keep(kind, vec![Keep::exact("true").on("DefaultVPC")]);
    }
    preset.keep("EC2VPC", vec![Keep::exact("true").on("IsDefault")]);
    preset
}

/// What Control Tower's baseline stacks put in the accounts it governs
/// (its names all start `aws-controltower-`), and its execution role.
fn control_tower() -> Preset {
    let ours = "aws-controltower-*";
    let mut preset = Preset::roles(&[Keep::exact(CONTROL_TOWER_ROLE), Keep::glob(ours)]);
    preset.keep(
        "CloudFormationStack",
        vec![Keep::glob("StackSet-AWSControlTower*").on("Name")],
    );
    for kind in [
        "CloudWatchEventsRule",
        "CloudWatchEventsTarget",
        "ConfigServiceConfigurationRecorder",
        "ConfigServiceDeliveryChannel",
    ] {
        preset.keep(kind, vec![Keep::glob(ours).on("Name")]);
    }
    preset.keep(
        "CloudWatchLogsLogGroup",
        vec![Keep::contains("aws-controltower").on("Name")],
    );
    // No documented properties: their string, which holds the name.
    let functions = CONTROL_TOWER_FUNCTIONS
        .iter()
        .map(|f| Keep::contains(f))
        .collect();
    preset.keep("LambdaFunction", functions);
    preset.keep("SNSTopic", vec![Keep::contains(":aws-controltower-")]);
    preset
}

/// starter-config.md's excludes that stand for this use: S3 objects go
/// with their bucket, and services AWS no longer offers (listing them
/// only fails). Its other excludes (Cloud9, CloudSearch, Redshift
/// Serverless) still cost money where they exist, so they are cleaned.
const EXCLUDES: &[&str] = &[
    "S3Object",
    // rebuy-de/aws-nuke#515: tag options cannot be listed reliably.
    "ServiceCatalogTagOption",
    "ServiceCatalogTagOptionPortfolioAttachment",
    "FMSNotificationChannel",
    "FMSPolicy",
    "MachineLearningMLModel",
    "MachineLearningDataSource",
    "MachineLearningBranchPrediction",
    "MachineLearningEvaluation",
    "RoboMakerDeploymentJob",
    "RoboMakerFleet",
    "RoboMakerRobot",
    "RoboMakerSimulationJob",
    "RoboMakerRobotApplication",
    "RoboMakerSimulationApplication",
    "OpsWorksApp",
    "OpsWorksInstance",
    "OpsWorksLayer",
    "OpsWorksUserProfile",
    "OpsWorksCMBackup",
    "OpsWorksCMServer",
    "OpsWorksCMServerState",
    "CodeStarProject",
    "CodeStarConnection",
    "CodeStarNotification",
];

/// starter-config.md's settings: a lease's protected instance, image,
/// table or stack would otherwise fail every run and quarantine the account.
fn settings() -> BTreeMap<&'static str, BTreeMap<&'static str, bool>> {
    let protection = |names: &[&'static str]| names.iter().map(|n| (*n, true)).collect();
    BTreeMap::from([
        (
            "EC2Image",
            protection(&[
                "IncludeDisabled",
                "IncludeDeprecated",
                "DisableDeregistrationProtection",
            ]),
        ),
        (
            "EC2Instance",
            protection(&["DisableStopProtection", "DisableDeletionProtection"]),
        ),
        ("RDSInstance", protection(&["DisableDeletionProtection"])),
        (
            "CloudFormationStack",
            protection(&["DisableDeletionProtection"]),
        ),
        ("DynamoDBTable", protection(&["DisableDeletionProtection"])),
    ])
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Document<'a> {
    regions: Vec<String>,
    blocklist: Vec<&'a str>,
    bypass_alias_check_accounts: Vec<&'a str>,
    accounts: BTreeMap<&'a str, Account>,
    presets: BTreeMap<&'static str, Preset>,
    resource_types: ResourceTypes,
    settings: BTreeMap<&'static str, BTreeMap<&'static str, bool>>,
}

#[derive(Serialize)]
struct Account {
    presets: Vec<&'static str>,
}

#[derive(Serialize)]
struct ResourceTypes {
    excludes: &'static [&'static str],
}

#[derive(Debug, Default, Serialize)]
struct Preset {
    filters: BTreeMap<&'static str, Vec<Keep>>,
}

impl Preset {
    /// Roles kept with what is attached to them: managed policies
    /// (`IAMRolePolicyAttachment`, by `RoleName`) and inline ones
    /// (`IAMRolePolicy`, whose string is `<role> -> <policy>`).
    fn roles(roles: &[Keep]) -> Self {
        let mut preset = Self::default();
        let named = |property| roles.iter().map(|r| r.clone().on(property)).collect();
        preset.keep("IAMRole", named("Name"));
        preset.keep("IAMRolePolicyAttachment", named("RoleName"));
        let inline = roles
            .iter()
            .map(|r| {
                // An exact role name becomes a glob over its policies;
                // IAM names hold no glob characters to escape.
                Keep::glob(&format!("{} -> *", r.value))
            })
            .collect();
        preset.keep("IAMRolePolicy", inline);
        preset
    }

    fn keep(&mut self, resource_type: &'static str, filters: Vec<Keep>) {
        self.filters
            .entry(resource_type)
            .or_default()
            .extend(filters);
    }
}

/// One filter (config-filtering.md): what matches is kept. Always the
/// object form, so the comparison is never left to the default.
#[derive(Debug, Clone, Serialize)]
struct Keep {
    #[serde(skip_serializing_if = "Option::is_none")]
    property: Option<&'static str>,
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
}

impl Keep {
    fn exact(value: &str) -> Self {
        Self::new("exact", value)
    }

    fn glob(value: &str) -> Self {
        Self::new("glob", value)
    }

    fn contains(value: &str) -> Self {
        Self::new("contains", value)
    }

    fn new(kind: &'static str, value: &str) -> Self {
        Self {
            property: None,
            kind,
            value: value.into(),
        }
    }

    fn on(mut self, property: &'static str) -> Self {
        self.property = Some(property);
        self
    }
}

fn name_error(field: &'static str, value: &str, what: &'static str) -> NukeConfigError {
    NukeConfigError::Name {
        field,
        value: value.into(),
        what,
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// IAM's name characters only: none of them is special to a glob.
fn is_iam_name(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn target() -> NukeTarget {
        NukeTarget {
            account_id: "012345678901".into(),
            regions: vec!["eu-west-1".into(), "us-east-1".into(), "eu-west-1".into()],
            blocklist: vec!["111122223333".into()],
            protected: Protected::default(),
        }
    }

    fn config(target: &NukeTarget) -> Value {
        serde_json::from_str(&target.config().expect("a config")).expect("JSON")
    }

    fn kept(config: &Value, preset: &str, resource_type: &str) -> Vec<Value> {
        config["presets"][preset]["filters"][resource_type]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn lists_global_and_the_regions_once_and_blocks_purser() {
        let config = config(&target());
        assert_eq!(
            config["regions"],
            json!(["global", "eu-west-1", "us-east-1"])
        );
        assert_eq!(config["blocklist"], json!(["111122223333"]));
        assert_eq!(
            config["bypass-alias-check-accounts"],
            json!(["012345678901"])
        );
        assert_eq!(
            config["accounts"]["012345678901"]["presets"],
            json!(["defaults", "identity-center", "purser"])
        );
    }

    #[test]
    fn keeps_purser_roles_with_their_policies() {
        let mut target = target();
        target.protected.break_glass_roles = vec!["BreakGlass".into()];
        let config = config(&target);
        let roles = kept(&config, "purser", "IAMRole");
        for role in [
            json!({"property": "Name", "type": "exact", "value": "OrganizationAccountAccessRole"}),
            json!({"property": "Name", "type": "exact", "value": "purser-lambda-throttle"}),
            json!({"property": "Name", "type": "exact", "value": "BreakGlass"}),
            json!({"property": "Name", "type": "exact", "value": "AWSCloudFormationStackSetExecutionRole"}),
            json!({"property": "Name", "type": "glob", "value": "stacksets-exec-*"}),
            json!({"property": "Name", "type": "glob", "value": "purser-forward-to-bus-*"}),
        ] {
            assert!(roles.contains(&role), "{role} not kept");
        }
        assert!(kept(&config, "purser", "IAMRolePolicyAttachment").contains(
            &json!({"property": "RoleName", "type": "glob", "value": "stacksets-exec-*"})
        ));
        assert!(
            kept(&config, "purser", "IAMRolePolicy")
                .contains(&json!({"type": "glob", "value": "OrganizationAccountAccessRole -> *"}))
        );
        assert_eq!(
            kept(&config, "purser", "IAMPolicy"),
            vec![json!({"property": "Name", "type": "glob", "value": "PurserTelemetryPolicy-*"})]
        );
        assert_eq!(
            kept(&config, "purser", "CloudFormationStack"),
            vec![json!({"property": "Name", "type": "glob", "value": "StackSet-purser-member-*"})]
        );
        assert_eq!(kept(&config, "purser", "CloudWatchEventsRule").len(), 2);
        assert_eq!(
            kept(&config, "purser", "SQSQueue"),
            vec![
                json!({"property": "QueueURL", "type": "contains", "value": "/StackSet-purser-member-"})
            ]
        );
    }

    #[test]
    fn keeps_identity_center_and_the_default_vpc() {
        let config = config(&target());
        assert_eq!(
            kept(&config, "identity-center", "IAMRole"),
            vec![json!({"property": "Name", "type": "glob", "value": "AWSReservedSSO_*"})]
        );
        assert_eq!(kept(&config, "identity-center", "IAMSAMLProvider").len(), 1);
        assert_eq!(
            kept(&config, "defaults", "EC2VPC"),
            vec![json!({"property": "IsDefault", "type": "exact", "value": "true"})]
        );
        assert!(config["presets"].get("control-tower").is_none());
    }

    #[test]
    fn keeps_control_tower_where_it_governs() {
        let mut target = target();
        target.protected.control_tower = true;
        let config = config(&target);
        assert!(kept(&config, "control-tower", "IAMRole").contains(
            &json!({"property": "Name", "type": "exact", "value": "AWSControlTowerExecution"})
        ));
        let presets = &config["accounts"]["012345678901"]["presets"];
        assert!(
            presets
                .as_array()
                .unwrap()
                .contains(&json!("control-tower"))
        );
    }

    #[test]
    fn excludes_and_settings_are_aws_nukes_documented_ones() {
        let config = config(&target());
        let excludes = config["resource-types"]["excludes"].as_array().unwrap();
        assert!(excludes.contains(&json!("S3Object")));
        assert!(!excludes.contains(&json!("IAMRole")));
        assert_eq!(
            config["settings"]["EC2Instance"]["DisableDeletionProtection"],
            json!(true)
        );
    }

    #[test]
    fn refuses_what_aws_nuke_would_refuse_or_misread() {
        type Change = fn(&mut NukeTarget);
        let cases: Vec<(Change, NukeConfigError)> = vec![
            (
                |t| t.account_id = "12345".into(),
                NukeConfigError::AccountId("12345".into()),
            ),
            (
                |t| t.blocklist.push("012345678901".into()),
                NukeConfigError::TargetBlocked("012345678901".into()),
            ),
            (|t| t.blocklist.clear(), NukeConfigError::EmptyBlocklist),
            (
                |t| t.blocklist = vec!["1111-2222-3333".into()],
                NukeConfigError::AccountId("1111-2222-3333".into()),
            ),
            (|t| t.regions.clear(), NukeConfigError::NoRegions),
            (
                |t| t.regions.push("all".into()),
                NukeConfigError::Region("all".into()),
            ),
            (
                |t| t.regions.push("global".into()),
                NukeConfigError::Region("global".into()),
            ),
            (
                |t| t.regions.push("EU-WEST-1".into()),
                NukeConfigError::Region("EU-WEST-1".into()),
            ),
            (
                |t| t.protected.member_role = "admin*".into(),
                name_error("member_role", "admin*", "an IAM role name"),
            ),
            (
                |t| t.protected.break_glass_roles = vec!["".into()],
                name_error("break_glass_roles", "", "an IAM role name"),
            ),
            (
                |t| t.protected.member_stack_set = "purser/*".into(),
                name_error("member_stack_set", "purser/*", "a StackSet name"),
            ),
        ];
        for (change, expected) in cases {
            let mut target = target();
            change(&mut target);
            assert_eq!(target.config(), Err(expected));
        }
    }

    #[test]
    fn region_names() {
        for region in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-2",
        ] {
            assert!(is_region(region), "{region}");
        }
        for text in [
            "",
            "us",
            "us-east",
            "us-east-",
            "u-east-1",
            "us--1",
            "us-east-1a",
        ] {
            assert!(!is_region(text), "{text}");
        }
    }
}
