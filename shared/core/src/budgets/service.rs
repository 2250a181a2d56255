//! Budgets enforced within minutes: each change of a team's spend (from the
//! streaming counters) is weighed against its budget; thresholds fire once
//! per period and budget revision; crossing a `freeze` threshold attaches a
//! deny-all SCP to the team's accounts, and falling back under it (a raised
//! budget, a new period) takes it off again; `throttle-lambdas` likewise
//! sets, and restores, the reserved concurrency of their Lambda functions
//! (`LambdaThrottle`, throttle.rs).
//!
//! Everything is derived from the counters and the budget as they stand, not
//! from the event that triggered the evaluation, so updates may arrive in
//! any order, or twice, and the outcome is the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::access::AccessGrants;
use crate::accounts::{Account, AccountState, FreezeCause, rfc3339};
use crate::accounts::{AccountError, Caller};
use crate::accounts::{Team, TeamName};
use crate::budgets::LambdaThrottle;
use crate::budgets::{AccountStanding, TEAM_SCOPE};
use crate::budgets::{Budget, BudgetAction, forecast, period_of};
use crate::events::Announcement;
use crate::events::EventEntry;
use crate::events::announce::{
    AnnounceError, announce_once, announce_pending, transition_announcing,
};
use crate::events::catalog::ACCESS_CHANGED;
use crate::events::catalog::AccountEvent;
use crate::ports::{
    AccountStore, BudgetStore, Clock, EventBus, Marker, Markers, SettlementStore, SpendCounters,
    Store, StoreError, TemplateStore, Transitioned,
};
use crate::ports::{LambdasError, MemberLambdas};
use crate::ports::{MAX_POLICIES_PER_TARGET, MAX_POLICY_CHARS, Organization, OrganizationError};
use crate::validation::{ValidationError, invalid};

pub const BUDGET_CHANGED: &str = "BudgetChanged";
pub const BUDGET_THRESHOLD_CROSSED: &str = "BudgetThresholdCrossed";
pub const ACCOUNT_FROZEN: &str = "AccountFrozen";
pub const ACCOUNT_UNFROZEN: &str = "AccountUnfrozen";
pub const ACCOUNT_FREEZE_FAILED: &str = "AccountFreezeFailed";
/// One team's evaluation, asked for by the hourly sweep.
pub const BUDGET_EVALUATION_DUE: &str = "BudgetEvaluationDue";

/// The name of the SCP Purser attaches to freeze an account.
pub const FREEZE_POLICY: &str = "purser-budget-freeze";

/// Who must still be able to act in a frozen account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeExemptions {
    /// Break-glass role names (a template parameter).
    pub break_glass_roles: Vec<String>,
    /// The role Purser itself acts through in a frozen account: the
    /// throttle role. Not the member role people sign in with (by default
    /// `OrganizationAccountAccessRole`): exempting that would leave a
    /// frozen account working for whoever uses it; name it among the
    /// break-glass roles to keep it.
    pub purser_role: String,
    /// Whether AWS Control Tower governs the member accounts (the
    /// `ControlTower` parameter): its own functions then keep running.
    pub control_tower: bool,
}

/// The roles service-managed StackSets deploy the member stack through
/// (`stacksets-exec-<hash>`, made by StackSets' service-linked role): a
/// frozen account's stack still updates. The guard SCP of Purser's OU
/// (infra/template.yaml, MemberGuardPolicy) keeps anyone else from
/// creating or changing a role of that name.
pub const STACK_SETS_ROLE: &str = "stacksets-exec-*";

/// The role Control Tower manages the accounts it governs through.
pub const CONTROL_TOWER_ROLE: &str = "AWSControlTowerExecution";

/// The function Control Tower runs in every account it governs.
pub const CONTROL_TOWER_FUNCTIONS: &[&str] = &["aws-controltower-NotificationForwarder"];

impl FreezeExemptions {
    /// Every exempt role is one IAM role name: no wildcard (`*` or `?`
    /// would exempt whatever role an account admin creates to match it),
    /// no path, only the characters IAM allows, at most 64 of them.
    /// Functions check this at cold start, so a bad `BreakGlassRoles`
    /// stops the deployment's functions rather than a freeze.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let roles = self
            .break_glass_roles
            .iter()
            .map(|r| ("break_glass_roles", r))
            .chain(std::iter::once(("purser_role", &self.purser_role)));
        for (field, role) in roles {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            if role.is_empty() || role.chars().count() > 64 || !role.chars().all(allowed) {
                return Err(invalid(
                    Some(field),
                    &format!(
                        "{role:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-; no wildcards, no path): a freeze exempts roles by exact name"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Member functions no throttle touches, by exact name: Control
    /// Tower's, where it governs the accounts. A name prefix would let any
    /// team exempt its own functions by naming them so.
    pub fn platform_functions(&self) -> Vec<String> {
        if self.control_tower {
            CONTROL_TOWER_FUNCTIONS
                .iter()
                .map(|f| f.to_string())
                .collect()
        } else {
            Vec::new()
        }
    }

    /// The role ARN patterns an SCP of Purser's exempts: the break-glass
    /// roles, Purser's own, StackSets' execution roles and, where Control
    /// Tower governs, its execution role (validated first).
    pub fn exempt_principals(&self) -> Result<Vec<String>, ValidationError> {
        self.validate()?;
        let control_tower = self.control_tower.then(|| CONTROL_TOWER_ROLE.to_string());
        let stack_sets = STACK_SETS_ROLE.to_string();
        Ok(self
            .break_glass_roles
            .iter()
            .chain(std::iter::once(&self.purser_role))
            .chain(std::iter::once(&stack_sets))
            .chain(control_tower.iter())
            .filter(|r| !r.is_empty())
            .map(|r| format!("arn:aws:iam::*:role/{r}"))
            .collect())
    }

    /// The condition every statement of Purser's SCPs carries, so that the
    /// exempt roles keep working: `{"ArnNotLike": {"aws:PrincipalArn": […]}}`.
    pub fn exemption_condition(&self) -> Result<Value, ValidationError> {
        Ok(json!({"ArnNotLike": {"aws:PrincipalArn": self.exempt_principals()?}}))
    }

    /// The deny-all SCP, exempting exactly the break-glass roles, Purser's
    /// own and, where Control Tower governs, its execution role; checked
    /// against the 5,120-character limit.
    pub fn policy(&self) -> Result<String, ValidationError> {
        let doc = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "PurserBudgetFreeze",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": self.exemption_condition()?
            }]
        })
        .to_string();
        if doc.chars().count() > MAX_POLICY_CHARS {
            return Err(invalid(
                Some("break_glass_roles"),
                &format!(
                    "the freeze policy would be {} characters; SCPs hold at most {MAX_POLICY_CHARS}: name fewer break-glass roles",
                    doc.chars().count()
                ),
            ));
        }
        Ok(doc)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    #[error(transparent)]
    Bus(#[from] crate::ports::BusError),
    #[error(transparent)]
    Lambdas(#[from] LambdasError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the budget changed meanwhile; read it again and retry")]
    Conflict,
    #[error("team {0}'s budget is being evaluated by another invocation; retry shortly")]
    Busy(String),
}

impl From<AnnounceError> for BudgetError {
    fn from(e: AnnounceError) -> Self {
        match e {
            AnnounceError::Store(e) => Self::Store(e),
            AnnounceError::Bus(e) => Self::Bus(e),
        }
    }
}

/// How long an evaluation's lease stands if its holder dies: longer than
/// the budgets function's timeout (tests/system/template.rs checks it).
pub const EVALUATION_LEASE_SECS: i64 = 180;
/// How long an evaluation waits for another one of the same team.
const EVALUATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The budgets function: weighs each team's spend against its budget and
/// acts on what it crosses.
pub struct Budgets {
    pub(super) accounts: Arc<dyn AccountStore>,
    budgets: Arc<dyn BudgetStore>,
    pub(super) counters: Arc<dyn SpendCounters>,
    settlements: Arc<dyn SettlementStore>,
    pub(super) templates: Arc<dyn TemplateStore>,
    pub(super) markers: Arc<dyn Markers>,
    organization: Arc<dyn Organization>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) clock: Arc<dyn Clock>,
    exemptions: FreezeExemptions,
    /// The budget action `throttle-lambdas`.
    pub(crate) throttle: LambdaThrottle,
    /// Sign-in, swapped to read-only while an account is frozen.
    access: AccessGrants,
    /// The runaway guard's `stop-resource`.
    pub(crate) member_resources: Option<Arc<dyn crate::ports::MemberResources>>,
}

/// A team's spend and forecast this period, in the budget's currency.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodSpend {
    pub period: String,
    pub spend: Decimal,
    pub forecast: Decimal,
}

impl Budgets {
    /// Budgets on every role of `store` (a budget reads the team's accounts,
    /// counters and settlements, and marks what it announced); `lambdas`
    /// are the member accounts' functions, for `throttle-lambdas`.
    pub fn new(
        store: Arc<dyn Store>,
        organization: Arc<dyn Organization>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        lambdas: Arc<dyn MemberLambdas>,
        exemptions: FreezeExemptions,
    ) -> Self {
        let throttle = LambdaThrottle::new(
            store.clone(),
            store.clone(),
            lambdas,
            bus.clone(),
            clock.clone(),
            exemptions.platform_functions(),
        );
        Self {
            accounts: store.clone(),
            budgets: store.clone(),
            counters: store.clone(),
            settlements: store.clone(),
            templates: store.clone(),
            markers: store,
            organization,
            bus,
            clock,
            exemptions,
            throttle,
            access: AccessGrants::none(),
            member_resources: None,
        }
    }

    /// Swaps sign-in to read-only with `access` while an account is frozen.
    pub fn with_access(mut self, access: AccessGrants) -> Self {
        self.access = access;
        self
    }

    async fn team(&self, name: &TeamName) -> Result<Team, StoreError> {
        Ok(self
            .accounts
            .team(name)
            .await?
            .unwrap_or_else(|| Team::unconfigured(name.clone())))
    }

    /// `PUT /teams/{team}/budget` (admins).
    pub async fn put(&self, mut budget: Budget, caller: &Caller) -> Result<Budget, BudgetError> {
        if !caller.admin {
            return Err(BudgetError::Forbidden(
                "only platform admins may set a team's budget".into(),
            ));
        }
        self.exemptions.policy()?;
        let previous = self.budgets.budget(&budget.team).await?;
        budget.revision = previous.map_or(1, |b| b.revision + 1);
        budget.updated_at = self.clock.now();
        if !self.budgets.put_budget(&budget).await? {
            return Err(BudgetError::Conflict);
        }
        let detail = json!({"version": 1, "team": budget.team, "revision": budget.revision,
            "amount": budget.amount.normalize().to_string(), "currency": budget.currency,
            "mode": budget.mode, "thresholds": budget.thresholds, "changed_by": caller.principal});
        self.bus
            .put(vec![EventEntry::purser(BUDGET_CHANGED, &detail)])
            .await?;
        tracing::info!(team = %budget.team, revision = budget.revision, amount = %budget.amount, "budget set");
        Ok(budget)
    }

    pub async fn spend(
        &self,
        team: &TeamName,
        now: DateTime<Utc>,
    ) -> Result<PeriodSpend, StoreError> {
        // The counters, plus what the spend function last settled beyond
        // them (the CUR's other services, invocations the counters missed).
        let (period, _, _) = period_of(now);
        let spend = crate::spend::month_to_date(
            self.counters.as_ref(),
            self.settlements.as_ref(),
            team,
            now,
        )
        .await?
        .amount();
        Ok(PeriodSpend {
            period,
            forecast: forecast(spend, now),
            spend,
        })
    }

    /// `GET /teams/{team}/budget`: the budget and where the team stands.
    pub async fn view(&self, name: &TeamName, caller: &Caller) -> Result<Value, BudgetError> {
        let team = self.team(name).await?;
        if !caller.may_use(&team) {
            return Err(BudgetError::Forbidden(format!(
                "{} is not a member of team {name}",
                caller.principal
            )));
        }
        // `frozen`: an account the team's budget froze; the accounts' own
        // budgets, and what they froze, are each account's in `accounts`.
        let frozen = self
            .accounts
            .team_accounts_in(name, &[AccountState::Frozen])
            .await?
            .iter()
            .any(|a| a.freeze_causes().contains(&FreezeCause::Team));
        let accounts = self.account_views(name).await?;
        match self.standing(name, frozen).await? {
            Some(mut view) => {
                view["accounts"] = json!(accounts);
                Ok(view)
            }
            // No team budget, but accounts with their own.
            None if !accounts.is_empty() => Ok(json!({"team": name, "accounts": accounts})),
            None => Err(BudgetError::NotFound(format!(
                "team {name} has no budget; set one with PUT /teams/{name}/budget"
            ))),
        }
    }

    /// The team's ready and frozen accounts that have a budget of their
    /// own, each with its lease's spend, the thresholds announced this
    /// lease and whether (and why) it is frozen.
    async fn account_views(&self, team: &TeamName) -> Result<Vec<Value>, BudgetError> {
        let now = self.clock.now();
        let accounts = self
            .accounts
            .team_accounts_in(team, &[AccountState::Ready, AccountState::Frozen])
            .await?;
        let mut views = Vec::new();
        for standing in self.account_standings(team, &accounts, now).await? {
            let mut crossed = Vec::new();
            for t in &standing.budget.thresholds {
                if self
                    .markers
                    .is_claimed(&standing.threshold_key(*t), now)
                    .await?
                {
                    crossed.push(*t);
                }
            }
            views.push(standing.to_view(&crossed));
        }
        Ok(views)
    }

    /// `GET /teams`: every team the caller may see (all for an admin), each
    /// with its budget's standing and a `status` to sort them by: `frozen`,
    /// `over` (spent the budget), `near` (crossed a threshold, or 80 %),
    /// `ok`, or `no_budget`. Read from the store and counters, never the
    /// lake, so it stays fast however much the lake holds.
    pub async fn overview(&self, caller: &Caller) -> Result<Vec<Value>, BudgetError> {
        // Which teams have an account their budget froze (not one only its
        // own budget did), in one read for them all:
        // reading each team's accounts would grow with every team's size.
        let frozen: std::collections::BTreeSet<TeamName> = self
            .accounts
            .accounts_in_state(AccountState::Frozen)
            .await?
            .into_iter()
            .filter(|a| a.freeze_causes().contains(&FreezeCause::Team))
            .map(|a| a.team)
            .collect();
        let mut teams = Vec::new();
        for team in self.accounts.teams().await? {
            if !caller.may_use(&team) {
                continue;
            }
            let open = self.accounts.open_accounts(&team.name).await?;
            let mut view = team.to_view(open);
            let standing = self
                .standing(&team.name, frozen.contains(&team.name))
                .await?;
            view["status"] = json!(standing.as_ref().map_or("no_budget", status_of));
            view["budget"] = standing.unwrap_or(Value::Null);
            teams.push(view);
        }
        Ok(teams)
    }

    /// The team's budget with its spend, forecast, crossed thresholds and
    /// what it throttled, and whether it has a `frozen` account; `None`
    /// without a budget.
    async fn standing(&self, name: &TeamName, frozen: bool) -> Result<Option<Value>, BudgetError> {
        let Some(budget) = self.budgets.budget(name).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let spend = self.spend(name, now).await?;
        let mut crossed = Vec::new();
        for t in &budget.thresholds {
            if self
                .markers
                .is_claimed(&threshold_key(&budget, &spend.period, *t), now)
                .await?
            {
                crossed.push(*t);
            }
        }
        let mut view = budget.to_view();
        view["period"] = json!(spend.period);
        view["spend"] = json!(spend.spend.round_dp(6).normalize().to_string());
        view["forecast"] = json!(spend.forecast.round_dp(6).normalize().to_string());
        view["crossed_thresholds"] = json!(crossed);
        view["frozen"] = json!(frozen);
        view["throttled"] = json!(self.throttle.throttled_functions(name).await?);
        Ok(Some(view))
    }

    /// Weighs the team's spend against its budget and acts: on
    /// `TeamSpendUpdated`, `BudgetChanged` and the start of a period.
    ///
    /// One evaluation of a team runs at a time (a lease in the store):
    /// concurrent ones could each claim a threshold and announce them out
    /// of order, or freeze while another unfreezes. A waiting evaluation
    /// retries for a few seconds, then fails so its event is redelivered.
    pub async fn evaluate(&self, team: &TeamName) -> Result<(), BudgetError> {
        let lease = Marker::Evaluating {
            team: team.to_string(),
        };
        let holder = uuid::Uuid::new_v4().to_string();
        let mut wait = std::time::Duration::from_millis(20);
        let mut waited = std::time::Duration::ZERO;
        loop {
            let now = self.clock.now();
            // Longer than a budgets function may run (120 s), so a lease
            // outlives its holder only when the holder died.
            if self
                .markers
                .remember(
                    &lease,
                    &holder,
                    now,
                    now + Duration::seconds(EVALUATION_LEASE_SECS),
                )
                .await?
            {
                break;
            }
            if waited >= EVALUATION_WAIT {
                return Err(BudgetError::Busy(team.to_string()));
            }
            tokio::time::sleep(wait).await;
            waited += wait;
            wait = (wait * 2).min(std::time::Duration::from_millis(500));
        }
        let result = self.evaluate_alone(team).await;
        if let Err(e) = self.markers.forget(&lease).await {
            // The lease expires by itself; the next evaluation waits for it.
            tracing::warn!(team = %team, error = %e, "could not release the evaluation lease");
        }
        result
    }

    async fn evaluate_alone(&self, team: &TeamName) -> Result<(), BudgetError> {
        let budget = self.budgets.budget(team).await?;
        let now = self.clock.now();
        // What the team's budget demands of every account of the team.
        let (mut team_freeze, mut team_throttle) = (false, false);
        if let Some(budget) = &budget {
            let spend = self.spend(team, now).await?;
            let measure = budget.measure(spend.spend, spend.forecast);
            for t in budget.crossed(measure) {
                let key = threshold_key(budget, &spend.period, t);
                let actions = budget.actions.get(&t).cloned().unwrap_or_default();
                let detail = json!({"version": 1, "scope": TEAM_SCOPE, "team": team,
                    "period": spend.period, "threshold": t,
                    "amount": budget.amount.normalize().to_string(),
                    "spend": spend.spend.round_dp(6).normalize().to_string(),
                    "forecast": spend.forecast.round_dp(6).normalize().to_string(),
                    "currency": budget.currency, "mode": budget.mode, "actions": actions,
                    "revision": budget.revision, "at": rfc3339(now)});
                let entry = EventEntry::purser(BUDGET_THRESHOLD_CROSSED, &detail);
                if announce_once(
                    self.markers.as_ref(),
                    self.bus.as_ref(),
                    &key,
                    now,
                    now + Duration::days(62),
                    vec![entry],
                )
                .await?
                {
                    tracing::warn!(team = %team, threshold = t, spend = %spend.spend, "budget threshold crossed");
                }
            }
            team_freeze = budget.demands(measure, BudgetAction::Freeze);
            team_throttle = budget.demands(measure, BudgetAction::ThrottleLambdas);
        }
        // Each account's own budget (its template version's), over its
        // lease, in the same evaluation and under the same lease.
        let accounts = self
            .accounts
            .team_accounts_in(team, &[AccountState::Ready, AccountState::Frozen])
            .await?;
        let own = self.account_standings(team, &accounts, now).await?;
        // The runaway guard: episodes announced, resources stopped; what
        // it demands of freeze and throttle is enforced below.
        let runaway = self
            .guard_runaways(team, budget.as_ref(), &accounts, now)
            .await?;
        let held = accounts
            .iter()
            .any(|a| a.freeze_causes().contains(&FreezeCause::Runaway));
        if budget.is_none() && own.is_empty() && !runaway.watched && !held {
            return Ok(());
        }
        for standing in &own {
            for t in standing.crossed() {
                let entry =
                    EventEntry::purser(BUDGET_THRESHOLD_CROSSED, &standing.crossed_detail(t, now));
                if announce_once(
                    self.markers.as_ref(),
                    self.bus.as_ref(),
                    &standing.threshold_key(t),
                    now,
                    standing.claim_until(now),
                    vec![entry],
                )
                .await?
                {
                    tracing::warn!(team = %team, account_id = standing.account_id(),
                        request_id = %standing.account.id, threshold = t, spend = %standing.spend,
                        "account budget threshold crossed");
                }
            }
        }
        let own_freeze: BTreeMap<String, String> = own
            .iter()
            .filter(|s| s.demands(BudgetAction::Freeze))
            .map(|s| (s.account.id.clone(), s.freeze_reason()))
            .collect();
        let own_throttle: BTreeSet<String> = own
            .iter()
            .filter(|s| s.demands(BudgetAction::ThrottleLambdas))
            .map(|s| s.account.id.clone())
            .collect();
        let froze = self
            .enforce_freeze(team, accounts, team_freeze, &own_freeze, &runaway.freeze)
            .await;
        // Throttled whether or not the freeze went through: it stops what
        // is already running, the freeze only what is new.
        let throttled = self
            .throttle
            .enforce(team, |account| {
                if team_throttle {
                    Some(TEAM_OVER)
                } else if own_throttle.contains(&account.id) {
                    Some(ACCOUNT_OVER)
                } else if runaway.throttle.contains(&account.id) {
                    Some(RUNAWAY)
                } else {
                    None
                }
            })
            .await;
        froze.and(throttled)
    }

    /// The team's `accounts` that have a budget of their own (their
    /// template version's), each weighed over its lease: every template
    /// version is read once, the team's settlements once.
    pub async fn account_standings(
        &self,
        team: &TeamName,
        accounts: &[Account],
        now: DateTime<Utc>,
    ) -> Result<Vec<AccountStanding>, BudgetError> {
        let mut budgets = BTreeMap::new();
        let mut with_budget = Vec::new();
        for account in accounts {
            let (Some(template), Some(_)) = (&account.template, &account.account_id) else {
                continue;
            };
            let key = (template.name.clone(), template.version);
            if !budgets.contains_key(&key) {
                let budget = self
                    .templates
                    .template_version(&template.name, template.version)
                    .await?
                    .and_then(|t| t.budget);
                budgets.insert(key.clone(), budget);
            }
            if let Some(Some(budget)) = budgets.get(&key) {
                with_budget.push((account, template.clone(), budget.clone()));
            }
        }
        let today = now.date_naive();
        let Some(from) = with_budget
            .iter()
            .map(|(a, _, _)| a.created_at.date_naive())
            .min()
        else {
            return Ok(Vec::new());
        };
        let settled =
            crate::spend::settlements(self.settlements.as_ref(), team, from.min(today), today)
                .await?;
        let mut standings = Vec::with_capacity(with_budget.len());
        for (account, template, budget) in with_budget {
            let nanos = crate::spend::account_spend(
                self.counters.as_ref(),
                &settled,
                account.account_id.as_deref().unwrap_or_default(),
                account.created_at.date_naive(),
                today,
            )
            .await?;
            standings.push(AccountStanding::of(
                account.clone(),
                template,
                &budget,
                crate::spend::from_nanos(nanos),
                now,
            ));
        }
        Ok(standings)
    }

    /// The hourly sweep (the start of a period, and a safety net): one
    /// `BudgetEvaluationDue` per team, each evaluated by its own
    /// invocation, so the sweep takes the time of a few `PutEvents` calls
    /// however many teams there are, and one team's slow or failing
    /// evaluation delays no other (each is retried by its own delivery).
    /// Every team, not only those with a budget: a team's accounts may have
    /// budgets or runaway rules of their templates, and a throttle whose
    /// episode ended is lifted by an evaluation even when no spend changes.
    pub async fn request_evaluations(&self) -> Result<usize, BudgetError> {
        let mut teams: BTreeSet<TeamName> = self
            .accounts
            .teams()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        teams.extend(self.budgets.budgets().await?.into_iter().map(|b| b.team));
        let at = rfc3339(self.clock.now());
        let entries: Vec<EventEntry> = teams
            .iter()
            .map(|team| {
                EventEntry::purser(
                    BUDGET_EVALUATION_DUE,
                    &json!({"version": 1, "team": team, "at": at}),
                )
            })
            .collect();
        self.bus.put(entries).await?;
        tracing::info!(teams = teams.len(), "budget evaluations requested");
        Ok(teams.len())
    }

    /// The id of the freeze SCP, created or brought up to date.
    async fn freeze_policy(&self) -> Result<String, BudgetError> {
        Ok(self
            .organization
            .ensure_policy(
                FREEZE_POLICY,
                "Purser: denies everything but break-glass roles while the team is over budget",
                &self.exemptions.policy()?,
            )
            .await?)
    }

    /// Brings each of the team's ready and frozen `accounts` to what the
    /// budgets demand of it: frozen while the team's budget demands a
    /// freeze (`team_freeze`) or its own does (`own`, by request id, with
    /// the reason), each cause recorded on the account (`frozen_by`), so
    /// one budget back within bounds lifts its own cause only, and the
    /// account is unfrozen when no cause is left.
    async fn enforce_freeze(
        &self,
        team: &TeamName,
        accounts: Vec<Account>,
        team_freeze: bool,
        own: &BTreeMap<String, String>,
        runaway: &BTreeMap<String, String>,
    ) -> Result<(), BudgetError> {
        let mut changes = Vec::new();
        for account in accounts {
            // What an evaluation whose announcement failed changed (frozen,
            // unfrozen) is announced by this retry, before anything else.
            let account =
                announce_pending(self.accounts.as_ref(), self.bus.as_ref(), account).await?;
            let mut want = Vec::new();
            if team_freeze {
                want.push(FreezeCause::Team);
            }
            if own.contains_key(&account.id) {
                want.push(FreezeCause::Account);
            }
            if runaway.contains_key(&account.id) {
                want.push(FreezeCause::Runaway);
            }
            if account.freeze_causes() != want {
                changes.push((account, want));
            }
        }
        let moves = changes
            .iter()
            .any(|(a, want)| a.state == AccountState::Ready || want.is_empty());
        if changes.is_empty() {
            return Ok(());
        }
        let policy = if moves {
            Some(self.freeze_policy().await?)
        } else {
            None
        };
        for (account, want) in changes {
            match (&policy, account.state, want.is_empty()) {
                (Some(policy), AccountState::Ready, false) => {
                    let why = match want[0] {
                        FreezeCause::Team => TEAM_OVER.to_string(),
                        FreezeCause::Account => own
                            .get(&account.id)
                            .cloned()
                            .unwrap_or_else(|| ACCOUNT_OVER.to_string()),
                        FreezeCause::Runaway => runaway
                            .get(&account.id)
                            .cloned()
                            .unwrap_or_else(|| RUNAWAY.to_string()),
                    };
                    self.freeze(team, account, want, policy, &why).await?;
                }
                (Some(policy), AccountState::Frozen, true) => {
                    self.unfreeze(team, account, policy).await?;
                }
                _ => self.record_causes(team, account, want).await?,
            }
        }
        Ok(())
    }

    async fn freeze(
        &self,
        team: &TeamName,
        account: Account,
        causes: Vec<FreezeCause>,
        policy: &str,
        why: &str,
    ) -> Result<(), BudgetError> {
        let account_id = account.account_id.clone().unwrap_or_default();
        let attached = self.organization.policies_of(&account_id).await?;
        let refused = if attached.iter().any(|p| p == policy) {
            None
        } else if attached.len() >= MAX_POLICIES_PER_TARGET {
            Some(format!(
                "account {account_id} already has {} SCPs attached, the most AWS allows; detach one so Purser can freeze it",
                attached.len()
            ))
        } else {
            match self.organization.attach_policy(policy, &account_id).await {
                Ok(()) => None,
                Err(OrganizationError::Constraint { reason, message }) => Some(format!(
                    "AWS refused to attach the freeze policy: {reason}: {message}"
                )),
                Err(e) => return Err(e.into()),
            }
        };
        let now = self.clock.now();
        if let Some(reason) = refused {
            tracing::error!(team = %team, account_id, %reason, "could not freeze an account");
            let key = Marker::FreezeFailed {
                request_id: account.id.clone(),
                day: now.date_naive(),
            };
            let entry = AccountEvent::of(&account, now)
                .because("POLICY_LIMIT", &reason)
                .entry(ACCOUNT_FREEZE_FAILED);
            announce_once(
                self.markers.as_ref(),
                self.bus.as_ref(),
                &key,
                now,
                now + Duration::days(2),
                vec![entry],
            )
            .await?;
            return Ok(());
        }
        let mut next = account.next_revision();
        next.state = AccountState::Frozen;
        next.frozen_by = causes;
        next.updated_at = now;
        let events = self
            .with_access_swapped(&mut next, true, ACCOUNT_FROZEN, "BUDGET_EXCEEDED", why)
            .await?;
        let (outcome, _) = transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            AccountState::Ready,
            next,
            events,
        )
        .await?;
        if outcome == Transitioned::Applied {
            tracing::warn!(team = %team, account_id, request_id = %account.id, %why, "account frozen");
        }
        Ok(())
    }

    /// Records why a frozen account stays frozen when one budget lifted
    /// its cause and another still demands the freeze (or a second budget
    /// came to demand it too): no SCP changes, nothing to announce.
    async fn record_causes(
        &self,
        team: &TeamName,
        account: Account,
        causes: Vec<FreezeCause>,
    ) -> Result<(), BudgetError> {
        let mut next = account.next_revision();
        next.frozen_by = causes;
        next.updated_at = self.clock.now();
        // A stale write means another change came first: the next
        // evaluation weighs the account as it then stands.
        if self
            .accounts
            .transition(AccountState::Frozen, &next)
            .await?
            == Transitioned::Applied
        {
            tracing::info!(team = %team, request_id = %account.id, frozen_by = ?next.frozen_by,
                "account stays frozen");
        }
        Ok(())
    }

    /// Swaps `next`'s owner to the read-only permission set (`frozen`) or
    /// back, and gives the events that announce the change: `detail_type`,
    /// and `AccessChanged` when sign-in changed.
    async fn with_access_swapped(
        &self,
        next: &mut crate::accounts::Account,
        frozen: bool,
        detail_type: &str,
        code: &str,
        why: &str,
    ) -> Result<Vec<Announcement>, BudgetError> {
        let now = next.updated_at;
        let swapped = self
            .access
            .swap(next, frozen)
            .await
            .map_err(AccountError::from)?;
        let changed = swapped.is_some();
        if let Some(access) = swapped {
            next.access = Some(access);
        }
        let mut events = vec![Announcement::of(
            detail_type,
            AccountEvent::of(next, now).because(code, why),
        )];
        if changed {
            events.push(Announcement::of(
                ACCESS_CHANGED,
                AccountEvent::of(next, now).because(code, why),
            ));
        }
        Ok(events)
    }

    async fn unfreeze(
        &self,
        team: &TeamName,
        account: Account,
        policy: &str,
    ) -> Result<(), BudgetError> {
        let account_id = account.account_id.clone().unwrap_or_default();
        self.organization.detach_policy(policy, &account_id).await?;
        let now = self.clock.now();
        let why = match account.freeze_causes().as_slice() {
            [FreezeCause::Account] => "the account is back within its own budget",
            [FreezeCause::Team] => "the team is back within its budget",
            [FreezeCause::Runaway] => "an admin released it from the runaway guard's freeze",
            _ => "the team and the account are back within their budgets",
        };
        let mut next = account.next_revision();
        next.state = AccountState::Ready;
        next.frozen_by = Vec::new();
        next.updated_at = now;
        let events = self
            .with_access_swapped(&mut next, false, ACCOUNT_UNFROZEN, "BUDGET_RESTORED", why)
            .await?;
        let (outcome, _) = transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            AccountState::Frozen,
            next,
            events,
        )
        .await?;
        if outcome == Transitioned::Applied {
            tracing::info!(team = %team, account_id, request_id = %account.id, "account unfrozen");
        }
        Ok(())
    }
}

/// Why the team's budget freezes or throttles its accounts.
const TEAM_OVER: &str = "the team is over its budget";
/// Why an account's own budget throttles it.
const ACCOUNT_OVER: &str = "the account is over its own budget";
/// Why the runaway guard throttles or freezes it.
const RUNAWAY: &str = "its spend rate is over a runaway rule";

fn threshold_key(budget: &Budget, period: &str, t: u32) -> Marker {
    Marker::ThresholdCrossed {
        team: budget.team.to_string(),
        period: period.to_string(),
        revision: budget.revision,
        percent: t,
    }
}

/// Where a team stands against its budget, from its standing's view.
fn status_of(view: &Value) -> &'static str {
    let number = |field: &str| {
        view[field]
            .as_str()
            .and_then(|n| n.parse::<Decimal>().ok())
            .unwrap_or_default()
    };
    let (spend, amount) = (number("spend"), number("amount"));
    let crossed = view["crossed_thresholds"]
        .as_array()
        .is_some_and(|c| !c.is_empty());
    if view["frozen"].as_bool() == Some(true) {
        "frozen"
    } else if amount > Decimal::ZERO && spend >= amount {
        "over"
    } else if crossed
        || (amount > Decimal::ZERO && spend * Decimal::from(5) >= amount * Decimal::from(4))
    {
        "near"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::FreezeExemptions;

    fn exemptions(break_glass: &[&str]) -> FreezeExemptions {
        FreezeExemptions {
            break_glass_roles: break_glass.iter().map(|r| r.to_string()).collect(),
            purser_role: "OrganizationAccountAccessRole".into(),
            control_tower: false,
        }
    }

    /// Only the break-glass roles, Purser's throttle role and, under
    /// Control Tower, its execution role keep working in a frozen account.
    #[test]
    fn the_freeze_exempts_exactly_the_roles_that_must_keep_working() {
        let mut e = exemptions(&["break-glass"]);
        e.purser_role = "purser-lambda-throttle".into();
        let exempt = |e: &FreezeExemptions| {
            let policy: serde_json::Value = serde_json::from_str(&e.policy().unwrap()).unwrap();
            policy["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"].clone()
        };
        assert_eq!(
            exempt(&e),
            serde_json::json!([
                "arn:aws:iam::*:role/break-glass",
                "arn:aws:iam::*:role/purser-lambda-throttle",
                "arn:aws:iam::*:role/stacksets-exec-*"
            ]),
            "not the member role people sign in with"
        );
        e.control_tower = true;
        assert_eq!(
            exempt(&e).as_array().unwrap().last().unwrap(),
            "arn:aws:iam::*:role/AWSControlTowerExecution"
        );
    }

    #[test]
    fn break_glass_roles_are_exact_role_names() {
        let good = exemptions(&["break-glass", "Ops.Admin+1@team=a,b_c"]);
        assert!(good.validate().is_ok());
        let policy = good.policy().unwrap();
        assert!(
            policy.contains("arn:aws:iam::*:role/break-glass\""),
            "{policy}"
        );
        for bad in [
            "*",
            "admin*",
            "ops?",
            "team/admin",
            "",
            &"r".repeat(65),
            "a b",
        ] {
            let err = exemptions(&[bad]).validate().unwrap_err();
            assert_eq!(err.field.as_deref(), Some("break_glass_roles"), "{bad:?}");
            assert!(err.message.contains("IAM role name"), "{}", err.message);
            assert!(
                exemptions(&[bad]).policy().is_err(),
                "no policy for {bad:?}"
            );
        }
    }
}
