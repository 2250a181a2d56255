//! Guardrails: the service control policies that keep a developer account
//! from what it should never do, whatever its owner's permissions: work
//! outside the allowed regions, buy reserved capacity or savings plans,
//! subscribe to Marketplace products, leave the organization, change the
//! account's contacts or support plan, or start the largest instances.
//!
//! On AWS the deployment's guardrail is `GuardrailPolicy` on Purser's OU
//! (infra/template.yaml, from the `Guardrail*` parameters, the same
//! statements as [`Guardrails::policies`]); a lease template's regions
//! make an account's own (`Guardrails::for_regions`). Every statement
//! exempts the roles a budget freeze exempts ([`FreezeExemptions`]), so
//! break-glass access and Purser's own roles keep working.
//!
//! An SCP holds at most 5,120 characters, whitespace included, and a target
//! at most five SCPs: [`Guardrails::policies`] writes minified documents,
//! splits what does not fit in one, and refuses, naming the list to
//! shorten, what would take more than [`MAX_GUARDRAIL_POLICIES`].

mod policy;

pub use policy::{
    FULL_AWS_ACCESS_POLICIES, GUARDRAIL_POLICY, MAX_GUARDRAIL_POLICIES, PURSER_POLICIES,
    policy_name,
};

use crate::budgets::FreezeExemptions;
use crate::validation::{ValidationError, invalid, is_region};

/// What a developer account should never do, as IAM actions: commitments
/// that outlive the lease (reserved capacity, savings plans, capacity
/// blocks), Marketplace subscriptions, leaving the organization, and
/// changing the account's contacts or support plan (support cases stay
/// open to everyone: only `supportplans` changes are denied).
pub const DEFAULT_DENIED_ACTIONS: &[&str] = &[
    "ec2:PurchaseReservedInstancesOffering",
    "ec2:PurchaseHostReservation",
    "ec2:PurchaseScheduledInstances",
    "ec2:PurchaseCapacityBlock",
    "rds:PurchaseReservedDBInstancesOffering",
    "elasticache:PurchaseReservedCacheNodesOffering",
    "redshift:PurchaseReservedNodeOffering",
    "dynamodb:PurchaseReservedCapacityOfferings",
    "es:PurchaseReservedInstanceOffering",
    "es:PurchaseReservedElasticsearchInstanceOffering",
    "memorydb:PurchaseReservedNodesOffering",
    "savingsplans:CreateSavingsPlan",
    "aws-marketplace:Subscribe",
    "aws-marketplace:AcceptAgreementRequest",
    "organizations:LeaveOrganization",
    "account:PutContactInformation",
    "account:PutAlternateContact",
    "account:DeleteAlternateContact",
    "account:CloseAccount",
    "supportplans:StartSupportPlanUpdate",
    "supportplans:CreateSupportPlanSchedule",
];

/// The largest (and dearest) instance families, as `ec2:InstanceType`
/// patterns `ec2:RunInstances` is denied for: GPU and Trainium training
/// instances, high-memory `u-*`/`u7i*` and the largest memory-optimised.
pub const DEFAULT_DENIED_INSTANCE_TYPES: &[&str] = &[
    "p4d.*", "p4de.*", "p5.*", "p5e.*", "p5en.*", "p6-*", "p6e-*", "trn1.*", "trn1n.*", "trn2.*",
    "dl1.*", "u-*", "u7i-*", "u7in-*", "x1e.*", "x2iedn.*",
];

/// What the region rule never denies: global services, whose endpoints are
/// in us-east-1 whatever the allowed regions, and the few calls consoles
/// make wherever they are. AWS Organizations' documented example "Deny
/// access to AWS based on the requested AWS Region".
pub const GLOBAL_SERVICE_ACTIONS: &[&str] = &[
    "a4b:*",
    "acm:*",
    "aws-marketplace-management:*",
    "aws-marketplace:*",
    "aws-portal:*",
    "budgets:*",
    "ce:*",
    "chime:*",
    "cloudfront:*",
    "config:*",
    "cur:*",
    "directconnect:*",
    "ec2:DescribeRegions",
    "ec2:DescribeTransitGateways",
    "ec2:DescribeVpnGateways",
    "fms:*",
    "globalaccelerator:*",
    "health:*",
    "iam:*",
    "importexport:*",
    "kms:*",
    "mobileanalytics:*",
    "networkmanager:*",
    "organizations:*",
    "pricing:*",
    "route53:*",
    "route53domains:*",
    "route53-recovery-cluster:*",
    "route53-recovery-control-config:*",
    "route53-recovery-readiness:*",
    "s3:GetAccountPublic*",
    "s3:ListAllMyBuckets",
    "s3:ListMultiRegionAccessPoints",
    "s3:PutAccountPublic*",
    "shield:*",
    "sts:*",
    "support:*",
    "trustedadvisor:*",
    "waf-regional:*",
    "waf:*",
    "wafv2:*",
    "wellarchitected:*",
];

/// What the guardrails are made of, as the deployment's settings say
/// (`GuardrailRegions`, `GuardrailDeniedActions`,
/// `GuardrailDeniedInstanceTypes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailSettings {
    /// The regions accounts may work in; empty: no region rule.
    pub regions: Vec<String>,
    /// IAM actions denied (`service:Action`, wildcards allowed).
    pub denied_actions: Vec<String>,
    /// `ec2:InstanceType` patterns `ec2:RunInstances` is denied for.
    pub denied_instance_types: Vec<String>,
}

impl Default for GuardrailSettings {
    /// No region rule; the default deny lists.
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            denied_actions: owned(DEFAULT_DENIED_ACTIONS),
            denied_instance_types: owned(DEFAULT_DENIED_INSTANCE_TYPES),
        }
    }
}

impl GuardrailSettings {
    /// From the comma-separated lists the template passes (a function's
    /// environment): `None` (unset) takes the default, an empty list none.
    pub fn from_lists(
        regions: Option<&str>,
        denied_actions: Option<&str>,
        denied_instance_types: Option<&str>,
    ) -> Self {
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        Self {
            regions: regions.map(split).unwrap_or_default(),
            denied_actions: denied_actions.map_or_else(|| owned(DEFAULT_DENIED_ACTIONS), split),
            denied_instance_types: denied_instance_types
                .map_or_else(|| owned(DEFAULT_DENIED_INSTANCE_TYPES), split),
        }
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardrailError {
    /// A region, action, instance type or exempt role is malformed.
    #[error(transparent)]
    Invalid(ValidationError),
    /// The documents would not fit the SCP limits; `field` names the list
    /// to shorten.
    #[error("{message}")]
    TooLarge { field: String, message: String },
}

impl GuardrailError {
    /// The setting at fault.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(e) => e.field.as_deref(),
            Self::TooLarge { field, .. } => Some(field),
        }
    }
}

impl From<ValidationError> for GuardrailError {
    fn from(e: ValidationError) -> Self {
        Self::Invalid(e)
    }
}

impl From<GuardrailError> for ValidationError {
    fn from(e: GuardrailError) -> Self {
        match e {
            GuardrailError::Invalid(e) => e,
            GuardrailError::TooLarge { field, message } => invalid(Some(&field), &message),
        }
    }
}

/// The guardrails of a deployment (or of a lease template): what is
/// denied, and whom it never binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrails {
    settings: GuardrailSettings,
    exemptions: FreezeExemptions,
}

impl Guardrails {
    /// Checks every entry: regions as AWS names them (`eu-west-1`),
    /// actions as `service:Action` (wildcards allowed, not `*` alone:
    /// that is the freeze), instance types in lower case; duplicates go.
    pub fn new(
        settings: GuardrailSettings,
        exemptions: FreezeExemptions,
    ) -> Result<Self, GuardrailError> {
        exemptions.validate()?;
        let settings = GuardrailSettings {
            regions: checked(
                settings.regions,
                "regions",
                is_region,
                "a region name such as eu-west-1",
            )?,
            denied_actions: checked(
                settings.denied_actions,
                "denied_actions",
                is_action,
                "an IAM action, service:Action (wildcards * and ? allowed in the action)",
            )?,
            denied_instance_types: checked(
                settings.denied_instance_types,
                "denied_instance_types",
                is_instance_type,
                "an EC2 instance type or pattern in lower case, such as p5.* or u-*",
            )?,
        };
        Ok(Self {
            settings,
            exemptions,
        })
    }

    pub fn settings(&self) -> &GuardrailSettings {
        &self.settings
    }

    pub fn exemptions(&self) -> &FreezeExemptions {
        &self.exemptions
    }

    /// The same guardrails with a lease template's regions: `regions`
    /// replace the deployment's when given; empty keeps the deployment's.
    /// (An SCP on the OU still applies beside an account's own: AWS allows
    /// only what every level allows, so a template narrows the
    /// deployment's regions and never widens them.)
    pub fn for_regions(&self, regions: &[String]) -> Result<Self, GuardrailError> {
        if regions.is_empty() {
            return Ok(self.clone());
        }
        let settings = GuardrailSettings {
            regions: regions.to_vec(),
            ..self.settings.clone()
        };
        Self::new(settings, self.exemptions.clone())
    }

    /// Only the region rule: for an account under an OU whose guardrail
    /// already denies the actions and instance types.
    pub fn only_regions(&self) -> Self {
        Self {
            settings: GuardrailSettings {
                regions: self.settings.regions.clone(),
                denied_actions: Vec::new(),
                denied_instance_types: Vec::new(),
            },
            exemptions: self.exemptions.clone(),
        }
    }

    /// Whether there is anything to deny (no SCP otherwise).
    pub fn is_empty(&self) -> bool {
        self.settings.regions.is_empty()
            && self.settings.denied_actions.is_empty()
            && self.settings.denied_instance_types.is_empty()
    }

    /// The SCP documents, minified, each at most 5,120 characters, at
    /// most [`MAX_GUARDRAIL_POLICIES`] of them (none when there is nothing
    /// to deny); refused, naming the list to shorten, when they do not fit.
    pub fn policies(&self) -> Result<Vec<String>, GuardrailError> {
        policy::documents(self)
    }

    /// The documents with the names to create them under
    /// ([`policy_name`]`(scope, i)`): `scope` tells one set of guardrails
    /// from another (`ou` for the deployment's, a template's name).
    pub fn named_policies(&self, scope: &str) -> Result<Vec<(String, String)>, GuardrailError> {
        Ok(self
            .policies()?
            .into_iter()
            .enumerate()
            .map(|(i, doc)| (policy_name(scope, i), doc))
            .collect())
    }
}

fn checked(
    items: Vec<String>,
    field: &str,
    ok: fn(&str) -> bool,
    what: &str,
) -> Result<Vec<String>, GuardrailError> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim().to_string();
        if !ok(&item) {
            return Err(invalid(Some(field), &format!("{item:?} is not {what}")).into());
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn is_action(text: &str) -> bool {
    let Some((service, action)) = text.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !action.is_empty()
        && action
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
}

fn is_instance_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text != "*"
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*?".contains(&b))
}

#[cfg(test)]
mod tests;
