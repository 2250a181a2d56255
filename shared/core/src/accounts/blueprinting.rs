//! Blueprints on a vended account: a lease template may name a
//! service-managed StackSet, of which Purser deploys an instance into each
//! account the template makes. The account stays `creating` (placed,
//! tagged, guarded) until the deployment has succeeded or failed, and is
//! then announced ready with the outcome: a failure carries
//! CloudFormation's reason, and the account is usable all the same.
//!
//! The account-events function learns of the outcome from CloudFormation's
//! `CloudFormation StackSet Operation Status Change` events, and from its
//! one-minute poll when an event is lost.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::{Account, AccountError, AccountState, Accounts};
use crate::ports::{BlueprintDeployment, BlueprintError, BlueprintOutcome, Blueprints};

/// How long a deployment may run before Purser stops waiting and announces
/// the account with the blueprint failed.
pub const BLUEPRINT_TIMEOUT: Duration = Duration::hours(2);

/// How the accounts' blueprints are deployed.
#[derive(Clone)]
pub struct AccountBlueprints {
    pub blueprints: Arc<dyn Blueprints>,
    /// Where a blueprint goes when its template names no regions: the
    /// region Purser runs in.
    pub home_region: String,
}

/// Where an account's blueprint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlueprintStatus {
    Deploying,
    Succeeded,
    Failed,
}

impl BlueprintStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploying => "deploying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// An account's instance of its template's blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueprintRun {
    pub stack_set: String,
    pub regions: Vec<String>,
    /// The StackSet operation that deploys it, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    pub status: BlueprintStatus,
    /// CloudFormation's reason, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl BlueprintRun {
    pub fn is_finished(&self) -> bool {
        self.status != BlueprintStatus::Deploying
    }

    fn finish(&mut self, status: BlueprintStatus, reason: Option<String>, at: DateTime<Utc>) {
        self.status = status;
        self.reason = reason;
        self.finished_at = Some(at);
    }

    pub fn to_view(&self) -> Value {
        json!({
            "stack_set": self.stack_set,
            "regions": self.regions,
            "status": self.status.as_str(),
            "reason": self.reason,
        })
    }
}

/// The StackSet operation's name for `account`: the same on every retry,
/// so a repeat never starts a second deployment.
pub fn operation_name(account: &Account) -> String {
    format!("purser-{}", account.id)
}

/// What `complete_creation` does next with a placed account.
pub(super) enum BlueprintStep {
    /// No blueprint, or it finished: announce the account ready.
    Ready(Option<BlueprintRun>),
    /// Deploying: keep the account `creating` with the run.
    Deploying(BlueprintRun),
    /// The template names a blueprint but this function cannot deploy one:
    /// leave the account for the function that can (account-events' poll).
    NotHere,
}

impl Accounts {
    /// Deploys the blueprints of accounts' templates before they are ready.
    pub fn with_blueprints(mut self, blueprints: AccountBlueprints) -> Self {
        self.blueprints = Some(blueprints);
        self
    }

    /// The StackSet and regions of `account`'s template version, if any.
    async fn blueprint_of(
        &self,
        account: &Account,
    ) -> Result<Option<(String, Vec<String>)>, AccountError> {
        let (Some(reference), Some(templates)) = (&account.template, &self.templates) else {
            return Ok(None);
        };
        let Some(template) = templates
            .template_version(&reference.name, reference.version)
            .await?
        else {
            return Ok(None);
        };
        Ok(template
            .blueprint
            .map(|stack_set| (stack_set, template.regions)))
    }

    /// Starts the blueprint of a placed account (in `ou`), or says there is
    /// none; a deployment that finishes at once (locally) is ready at once.
    pub(super) async fn start_blueprint(
        &self,
        account: &Account,
        account_id: &str,
        ou: &str,
    ) -> Result<BlueprintStep, AccountError> {
        let Some((stack_set, regions)) = self.blueprint_of(account).await? else {
            return Ok(BlueprintStep::Ready(None));
        };
        let Some(setting) = &self.blueprints else {
            tracing::info!(request_id = %account.id, stack_set,
                "this function does not deploy blueprints: the account waits for account-events");
            return Ok(BlueprintStep::NotHere);
        };
        let regions = if regions.is_empty() {
            vec![setting.home_region.clone()]
        } else {
            regions
        };
        let now = self.clock.now();
        let mut run = BlueprintRun {
            stack_set,
            regions,
            operation_id: None,
            status: BlueprintStatus::Deploying,
            reason: None,
            started_at: now,
            finished_at: None,
        };
        let operation = operation_name(account);
        let deployment = BlueprintDeployment {
            stack_set: &run.stack_set,
            account_id,
            ou,
            regions: &run.regions,
            operation: &operation,
        };
        match setting.blueprints.deploy(&deployment).await {
            Ok(id) => run.operation_id = Some(id),
            Err(e) if e.is_retryable() => return Err(e.into()),
            // A StackSet that is not there or a refusal: no retry mends
            // it, and the account is usable without its blueprint.
            Err(e) => {
                run.finish(BlueprintStatus::Failed, Some(e.to_string()), now);
                tracing::warn!(request_id = %account.id, account_id, stack_set = %run.stack_set,
                    error = %e, "the blueprint could not be deployed");
                return Ok(BlueprintStep::Ready(Some(run)));
            }
        }
        tracing::info!(request_id = %account.id, account_id, stack_set = %run.stack_set,
            operation_id = run.operation_id.as_deref().unwrap_or(""), "blueprint deploying");
        self.check_blueprint(setting, account_id, &mut run).await?;
        Ok(if run.is_finished() {
            BlueprintStep::Ready(Some(run))
        } else {
            BlueprintStep::Deploying(run)
        })
    }

    /// Asks how `run` went and records a finish in it.
    async fn check_blueprint(
        &self,
        setting: &AccountBlueprints,
        account_id: &str,
        run: &mut BlueprintRun,
    ) -> Result<(), AccountError> {
        let Some(operation_id) = run.operation_id.clone() else {
            return Ok(());
        };
        let now = self.clock.now();
        match setting
            .blueprints
            .outcome(&run.stack_set, &operation_id, account_id)
            .await
        {
            Ok(BlueprintOutcome::Running) if now - run.started_at > BLUEPRINT_TIMEOUT => {
                run.finish(
                    BlueprintStatus::Failed,
                    Some(format!(
                        "StackSet operation {operation_id} did not finish within {} hours; \
                         Purser stopped waiting for it",
                        BLUEPRINT_TIMEOUT.num_hours()
                    )),
                    now,
                );
            }
            Ok(BlueprintOutcome::Running) => {}
            Ok(BlueprintOutcome::Succeeded) => run.finish(BlueprintStatus::Succeeded, None, now),
            Ok(BlueprintOutcome::Failed { reason }) => {
                run.finish(BlueprintStatus::Failed, Some(reason), now)
            }
            Err(e @ BlueprintError::Unavailable(_)) => return Err(e.into()),
            Err(e) => run.finish(BlueprintStatus::Failed, Some(e.to_string()), now),
        }
        Ok(())
    }

    /// An account whose blueprint is deploying: ready once it finished.
    pub(super) async fn blueprint_progress(&self, account: Account) -> Result<(), AccountError> {
        let (Some(setting), Some(mut run), Some(account_id), Some(ou)) = (
            &self.blueprints,
            account.blueprint.clone(),
            account.account_id.clone(),
            account.ou.clone(),
        ) else {
            return Ok(());
        };
        if account.state != AccountState::Creating || run.is_finished() {
            return Ok(());
        }
        self.check_blueprint(setting, &account_id, &mut run).await?;
        if !run.is_finished() {
            return Ok(());
        }
        tracing::info!(request_id = %account.id, account_id, stack_set = %run.stack_set,
            status = run.status.as_str(), reason = run.reason.as_deref().unwrap_or(""),
            "blueprint finished");
        self.become_ready(AccountState::Creating, account, account_id, ou, Some(run))
            .await?;
        Ok(())
    }

    /// CloudFormation says a StackSet operation changed: the accounts it
    /// deploys to are checked (only accounts being created can match).
    pub async fn blueprint_operation_changed(
        &self,
        operation_id: &str,
    ) -> Result<(), AccountError> {
        for account in self
            .accounts
            .accounts_in_state(AccountState::Creating)
            .await?
        {
            let ours = account
                .blueprint
                .as_ref()
                .is_some_and(|run| run.operation_id.as_deref() == Some(operation_id));
            if ours {
                self.blueprint_progress(account).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::accounts::{Caller, NewAccount, Started, Team, TeamName};
    use crate::events::catalog;
    use crate::fakes::{
        FakeAccounts, FakeBus, FakeMarkers, FakeOrganization, FakeTemplates, locked,
    };
    use crate::leases::{LeaseTemplate, TemplateName};
    use crate::ports::{Clock, CreationState, CreationStatus, ManualClock};

    const ANA: &str = "arn:aws:iam::123456789012:user/ana";

    /// A deployment as the fake saw it: StackSet, account, OU, regions
    /// and operation.
    type Deployed = (String, String, String, Vec<String>, String);

    /// StackSets that answer what a test tells them.
    #[derive(Default)]
    struct FakeStackSets {
        deployed: Mutex<Vec<Deployed>>,
        outcome: Mutex<Option<Result<BlueprintOutcome, BlueprintError>>>,
        refuse: Mutex<Option<BlueprintError>>,
    }

    #[async_trait]
    impl Blueprints for FakeStackSets {
        async fn deploy(&self, d: &BlueprintDeployment<'_>) -> Result<String, BlueprintError> {
            if let Some(e) = locked(&self.refuse).clone() {
                return Err(e);
            }
            locked(&self.deployed).push((
                d.stack_set.into(),
                d.account_id.into(),
                d.ou.into(),
                d.regions.to_vec(),
                d.operation.into(),
            ));
            Ok(format!("op-{}", d.operation))
        }

        async fn outcome(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<BlueprintOutcome, BlueprintError> {
            locked(&self.outcome)
                .clone()
                .unwrap_or(Ok(BlueprintOutcome::Running))
        }
    }

    struct World {
        service: Accounts,
        store: Arc<FakeAccounts>,
        stack_sets: Arc<FakeStackSets>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    fn payments() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    fn world(wired: bool) -> World {
        let store = Arc::new(FakeAccounts::default());
        let mut team = Team::unconfigured(payments());
        team.quota = 5;
        team.members = vec![ANA.into()];
        locked(&store.teams).insert(payments(), team);
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new("2026-12-07T10:00:00Z".parse().unwrap()));
        let stack_sets = Arc::new(FakeStackSets::default());
        let mut service = Accounts::new(
            store.clone(),
            Arc::new(FakeMarkers::default()),
            Arc::new(FakeOrganization::default()),
            bus.clone(),
            clock.clone(),
        )
        .with_templates(Arc::new(FakeTemplates::default()));
        if wired {
            service = service.with_blueprints(AccountBlueprints {
                blueprints: stack_sets.clone(),
                home_region: "eu-west-1".into(),
            });
        }
        World {
            service,
            store,
            stack_sets,
            bus,
            clock,
        }
    }

    impl World {
        /// A request of a template with a blueprint, being created:
        /// its id and creation id.
        async fn creating(&self, regions: serde_json::Value) -> (String, String) {
            let admin = Caller {
                principal: "arn:aws:iam::123456789012:role/platform".into(),
                admin: true,
            };
            let template = LeaseTemplate::from_json(
                TemplateName::parse("baseline").unwrap(),
                &serde_json::json!({"description": "with the team's baseline",
                    "default_lease_days": 7, "max_lease_days": 30, "approval": "never",
                    "blueprint": "purser-baseline", "regions": regions}),
                self.clock.now(),
            )
            .unwrap();
            self.service.put_template(template, &admin).await.unwrap();
            let input = NewAccount {
                team: payments(),
                owner: "ana@example.com".into(),
                purpose: "baseline".into(),
                lease_days: None,
                template: Some(TemplateName::parse("baseline").unwrap()),
            };
            let caller = Caller {
                principal: ANA.into(),
                admin: false,
            };
            let (account, _) = self.service.request(input, &caller, None).await.unwrap();
            assert_eq!(
                self.service.start_creation(&account.id).await.unwrap(),
                Started::Started
            );
            let creation = self.store.get(&account.id).unwrap().creation_id.unwrap();
            (account.id, creation)
        }

        /// Organizations' report that `creation` succeeded.
        async fn report(&self, creation: &str) -> Result<(), AccountError> {
            self.service
                .complete_creation(&CreationStatus {
                    id: creation.into(),
                    state: CreationState::Succeeded,
                    account_id: Some("210987654321".into()),
                    failure_reason: None,
                })
                .await
        }

        /// An account of a template with a blueprint, created by
        /// Organizations: where it then stands.
        async fn created(&self, regions: serde_json::Value) -> Account {
            let (id, creation) = self.creating(regions).await;
            self.report(&creation).await.unwrap();
            self.store.get(&id).unwrap()
        }
    }

    #[tokio::test]
    async fn an_account_is_ready_only_once_its_blueprint_succeeded() {
        let w = world(true);
        let deploying = w.created(serde_json::json!([])).await;
        assert_eq!(deploying.state, AccountState::Creating);
        assert_eq!(deploying.account_id.as_deref(), Some("210987654321"));
        let run = deploying.blueprint.clone().unwrap();
        assert_eq!(run.status, BlueprintStatus::Deploying);
        assert_eq!(run.regions, ["eu-west-1"], "no template regions: Purser's");
        let deployed = locked(&w.stack_sets.deployed).clone();
        assert_eq!(deployed.len(), 1);
        assert_eq!(deployed[0].4, operation_name(&deploying));
        assert!(w.bus.of(catalog::ACCOUNT_READY).is_empty());

        // The poll while it runs changes nothing; the operation's end does.
        w.service.poll().await.unwrap();
        assert_eq!(
            w.store.get(&deploying.id).unwrap().state,
            AccountState::Creating
        );
        *locked(&w.stack_sets.outcome) = Some(Ok(BlueprintOutcome::Succeeded));
        w.service
            .blueprint_operation_changed(run.operation_id.as_deref().unwrap())
            .await
            .unwrap();
        let ready = w.store.get(&deploying.id).unwrap();
        assert_eq!(ready.state, AccountState::Ready);
        assert_eq!(ready.blueprint.unwrap().status, BlueprintStatus::Succeeded);
        let announced = w.bus.of(catalog::ACCOUNT_READY);
        assert_eq!(announced.len(), 1);
        assert_eq!(announced[0]["blueprint"]["status"], "succeeded");
        assert_eq!(locked(&w.stack_sets.deployed).len(), 1, "deployed once");
    }

    #[tokio::test]
    async fn a_failed_blueprint_is_announced_with_cloudformations_reason() {
        let w = world(true);
        *locked(&w.stack_sets.outcome) = Some(Ok(BlueprintOutcome::Failed {
            reason: "us-east-1: Bucket purser-logs already exists".into(),
        }));
        // Finished by the time it is asked: ready at once.
        let ready = w.created(serde_json::json!(["us-east-1"])).await;
        assert_eq!(ready.state, AccountState::Ready);
        let run = ready.blueprint.unwrap();
        assert_eq!(run.status, BlueprintStatus::Failed);
        assert_eq!(run.regions, ["us-east-1"]);
        let announced = w.bus.of(catalog::ACCOUNT_READY);
        assert_eq!(
            announced[0]["blueprint"]["reason"],
            "us-east-1: Bucket purser-logs already exists"
        );
    }

    #[tokio::test]
    async fn a_stack_set_that_is_not_there_fails_the_blueprint_not_the_account() {
        let w = world(true);
        *locked(&w.stack_sets.refuse) = Some(BlueprintError::NotFound(
            "CreateStackInstances: StackSet purser-baseline not found".into(),
        ));
        let ready = w.created(serde_json::json!([])).await;
        assert_eq!(ready.state, AccountState::Ready);
        let run = ready.blueprint.unwrap();
        assert_eq!(run.status, BlueprintStatus::Failed);
        assert!(run.reason.unwrap().contains("not found"));
    }

    #[tokio::test]
    async fn a_busy_stack_set_is_tried_again_and_a_long_run_given_up() {
        let w = world(true);
        *locked(&w.stack_sets.refuse) = Some(BlueprintError::Unavailable(
            "OperationInProgressException".into(),
        ));
        let (id, creation) = w.creating(serde_json::json!([])).await;
        // The report fails, so EventBridge delivers it again.
        assert!(matches!(
            w.report(&creation).await,
            Err(AccountError::Blueprint(BlueprintError::Unavailable(_)))
        ));
        assert_eq!(w.store.get(&id).unwrap().blueprint, None);
        *locked(&w.stack_sets.refuse) = None;
        w.report(&creation).await.unwrap();
        let deploying = w.store.get(&id).unwrap();
        assert_eq!(deploying.state, AccountState::Creating);
        assert!(deploying.blueprint.is_some());
        w.clock.advance(BLUEPRINT_TIMEOUT + Duration::minutes(1));
        w.service.poll().await.unwrap();
        let ready = w.store.get(&id).unwrap();
        assert_eq!(ready.state, AccountState::Ready);
        let reason = ready.blueprint.unwrap().reason.unwrap();
        assert!(reason.contains("did not finish"), "{reason}");
    }

    #[tokio::test]
    async fn a_function_without_stack_sets_leaves_the_account_to_account_events() {
        let w = world(false);
        let waiting = w.created(serde_json::json!([])).await;
        assert_eq!(waiting.state, AccountState::Creating);
        assert_eq!(
            waiting.account_id, None,
            "nothing recorded: the poll redoes it"
        );
        assert!(w.bus.of(catalog::ACCOUNT_READY).is_empty());
    }

    #[test]
    fn a_run_shows_its_stack_set_status_and_reason() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut run = BlueprintRun {
            stack_set: "purser-baseline".into(),
            regions: vec!["us-east-1".into()],
            operation_id: Some("op-1".into()),
            status: BlueprintStatus::Deploying,
            reason: None,
            started_at: at,
            finished_at: None,
        };
        assert!(!run.is_finished());
        run.finish(BlueprintStatus::Failed, Some("Bucket exists".into()), at);
        assert!(run.is_finished());
        assert_eq!(
            run.to_view(),
            json!({"stack_set": "purser-baseline", "regions": ["us-east-1"],
                   "status": "failed", "reason": "Bucket exists"})
        );
    }
}
