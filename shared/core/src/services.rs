//! The one composition root: every port a function may use, in one value,
//! and the services built from it. `purser-lambda` fills [`Ports`] from the
//! environment the template sets, `purser-local` from the embedded
//! backends; each function crate builds its handler from it (`from_ports`),
//! so the cloud and `purser up` wire every service the same way.

use std::sync::Arc;

use crate::access::{AccessGrants, AccessSettings};
use crate::accounts::{AccountGuardrails, Accounts};
use crate::budgets::{Budgets, FreezeExemptions};
use crate::guardrails::{GuardrailError, GuardrailSettings, Guardrails};
use crate::lake::Recorder;
use crate::notify::{Notifications, NotifySettings};
use crate::ports::{
    Clock, DeadLetterCount, EventBus, IdentityCenter, LakeSink, MemberLambdas, Notifier,
    Organization, QueryEngine, Store,
};
use crate::spend::{Costs, SpendSettler};

/// Every port, and the settings the services take.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub organization: Arc<dyn Organization>,
    pub clock: Arc<dyn Clock>,
    /// The member accounts' Lambda functions, which the throttle changes.
    pub member_lambdas: Arc<dyn MemberLambdas>,
    /// The lake's writer; on AWS only the functions the template gives the
    /// lake streams have one.
    pub lake: Option<Arc<dyn LakeSink>>,
    /// The lake's named queries; on AWS only the functions the template
    /// gives the Athena workgroup have them.
    pub queries: Option<Arc<dyn QueryEngine>>,
    /// IAM Identity Center, where the deployment has one (with
    /// `settings.access`): who may sign into vended accounts.
    pub identity_center: Option<Arc<dyn IdentityCenter>>,
    /// Email, chat and the SNS topic; on AWS only the notify function has it.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// How many dead letters wait; on AWS only the API (for the console's
    /// admin page) has it.
    pub dead_letters: Option<Arc<dyn DeadLetterCount>>,
    /// CloudFormation StackSets, for lease templates' blueprints; on AWS
    /// only the functions that make accounts ready have it.
    pub blueprints: Option<Arc<dyn crate::ports::Blueprints>>,
    /// Cleans pooled accounts (aws-nuke on CodeBuild); on AWS only the
    /// reaper has it.
    pub cleaner: Option<Arc<dyn crate::ports::Cleaner>>,
    /// Where member accounts' metric streams land; on AWS the functions
    /// with the lake have it.
    pub landing: Option<Arc<dyn crate::ports::Landing>>,
    /// What runs in member accounts and costs by the second (the
    /// recorder's), in the store's table or database.
    pub running: Arc<dyn crate::ports::RunningResources>,
    /// Stops member accounts' EC2 instances and SageMaker endpoints (the
    /// runaway guard's `stop-resource`) and describes instances; on AWS
    /// only the budgets function and the recorder have it.
    pub member_resources: Option<Arc<dyn crate::ports::MemberResources>>,
    pub settings: Settings,
}

/// What the services are told rather than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// IAM principal ARNs of platform admins (never STS sessions).
    pub admins: Vec<String>,
    /// The region Purser runs in: the region of deployments it records.
    pub region: String,
    /// Who may still act in a frozen account.
    pub freeze_exemptions: FreezeExemptions,
    /// Whether the lake has a `cur` table over a CUR 2.0 export.
    pub cur: bool,
    /// The mail domains an account owner's address may be at; any when
    /// empty (`OwnerDomains`).
    pub owner_domains: Vec<String>,
    /// How sign-in is granted (the access portal, the permission sets);
    /// `None` without Identity Center.
    pub access: Option<AccessSettings>,
    /// Who hears of what besides a team's own people.
    pub notify: NotifySettings,
    /// How many days a request or an extension waits for an approver
    /// before it is denied by `expiry` (`ApprovalExpiryDays`: 7 by default,
    /// [`APPROVAL_EXPIRY_DAYS`](crate::leases::APPROVAL_EXPIRY_DAYS)).
    pub approval_expiry_days: u32,
    /// What every vended account is kept from (`GuardrailRegions`,
    /// `GuardrailDeniedActions`, `GuardrailDeniedInstanceTypes`).
    pub guardrails: GuardrailSettings,
    /// Whether Purser's OU carries them already (on AWS, with `PurserOuId`:
    /// accounts then get only their template's region rule).
    pub guardrails_on_ou: bool,
    /// What cleaning a pooled account spares (lease templates that recycle).
    pub recycling: RecyclingSettings,
}

/// What the aws-nuke configuration of a pooled account is told beyond the
/// account: accounts never to touch, and what Purser installs in members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecyclingSettings {
    /// Purser's own account and the management account.
    pub blocklist: Vec<String>,
    pub protected: crate::recycling::Protected,
}

/// A service was asked of ports that do not have what it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this function has no {0}: the template (infra/template.yaml) gives it only to the functions that need it"
)]
pub struct Unwired(pub &'static str);

impl Ports {
    pub fn accounts(&self) -> Accounts {
        let accounts = Accounts::new(
            self.store.clone(),
            self.store.clone(),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        )
        .with_owner_domains(self.settings.owner_domains.clone())
        .with_access(self.access_grants())
        .with_templates(self.store.clone())
        .with_approval_expiry(chrono::Duration::days(i64::from(
            self.settings.approval_expiry_days,
        )))
        .with_guardrails_if(self.account_guardrails());
        let accounts = match &self.cleaner {
            Some(cleaner) => accounts.with_recycling(self.account_recycling(Arc::clone(cleaner))),
            None => accounts,
        };
        match &self.blueprints {
            Some(blueprints) => accounts.with_blueprints(crate::accounts::AccountBlueprints {
                blueprints: Arc::clone(blueprints),
                home_region: self.settings.region.clone(),
            }),
            None => accounts,
        }
    }

    /// How pooled accounts are cleaned: the template's regions, else the
    /// deployment's guardrail regions, else Purser's own.
    fn account_recycling(
        &self,
        cleaner: Arc<dyn crate::ports::Cleaner>,
    ) -> crate::accounts::AccountRecycling {
        let mut regions = self.settings.guardrails.regions.clone();
        if regions.is_empty() {
            regions.push(self.settings.region.clone());
        }
        crate::accounts::AccountRecycling {
            cleaner,
            regions,
            blocklist: self.settings.recycling.blocklist.clone(),
            protected: self.settings.recycling.protected.clone(),
            freeze: self.settings.freeze_exemptions.clone(),
        }
    }

    /// The guardrails accounts get as they become ready: the deployment's
    /// settings, never binding the roles a freeze exempts. `purser-lambda`
    /// refuses to start on settings this refuses, so `Err` is only logged.
    pub fn account_guardrails(&self) -> Result<AccountGuardrails, GuardrailError> {
        Ok(AccountGuardrails {
            guardrails: Guardrails::new(
                self.settings.guardrails.clone(),
                self.settings.freeze_exemptions.clone(),
            )?,
            on_ou: self.settings.guardrails_on_ou,
        })
    }

    /// Sign-in through Identity Center, or `not_configured` without it.
    pub fn access_grants(&self) -> AccessGrants {
        match (&self.identity_center, &self.settings.access) {
            (Some(center), Some(settings)) => {
                AccessGrants::new(Arc::clone(center), settings.clone())
            }
            _ => AccessGrants::none(),
        }
    }

    pub fn budgets(&self) -> Budgets {
        let budgets = Budgets::new(
            Arc::clone(&self.store),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
            Arc::clone(&self.member_lambdas),
            self.settings.freeze_exemptions.clone(),
        )
        .with_access(self.access_grants());
        match &self.member_resources {
            Some(resources) => budgets.with_member_resources(Arc::clone(resources)),
            None => budgets,
        }
    }

    pub fn recorder(&self) -> Result<Recorder, Unwired> {
        let recorder = Recorder::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.lake()?,
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        )
        .with_running(Arc::clone(&self.running));
        let recorder = match &self.member_resources {
            Some(resources) => recorder.with_member_resources(Arc::clone(resources)),
            None => recorder,
        };
        Ok(match &self.landing {
            Some(landing) => recorder.with_landing(Arc::clone(landing)),
            None => recorder,
        })
    }

    /// What teams spent, with costs by function from the lake's queries.
    pub fn costs(&self) -> Result<Costs, Unwired> {
        Ok(Costs::new(
            self.store.clone(),
            self.queries()?,
            Arc::clone(&self.clock),
        ))
    }

    pub fn spend_settler(&self) -> Result<SpendSettler, Unwired> {
        Ok(SpendSettler::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.queries()?,
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
            self.settings.cur,
        ))
    }

    /// Tells people what happened (the notify function).
    pub fn notifications(&self) -> Result<Notifications, Unwired> {
        let notifier = self.notifier.clone().ok_or(Unwired("notifier"))?;
        Ok(Notifications::new(
            self.store.clone(),
            self.store.clone(),
            notifier,
            Arc::clone(&self.clock),
            self.settings.notify.clone(),
        ))
    }

    fn lake(&self) -> Result<Arc<dyn LakeSink>, Unwired> {
        self.lake.clone().ok_or(Unwired("lake sink"))
    }

    fn queries(&self) -> Result<Arc<dyn QueryEngine>, Unwired> {
        self.queries.clone().ok_or(Unwired("lake query engine"))
    }
}
