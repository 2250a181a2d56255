//! What Purser does with accounts, on the ports: requests from developers,
//! creation within the organization's limits, completion, closing and
//! leases. The functions (api, vend, account-events, reaper) are thin doors
//! into this; each step is a conditional transition that emits one event,
//! so a repeated or reordered event changes nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::access::AccessGrants;
use crate::accounts::blueprinting::{BlueprintRun, BlueprintStep};
use crate::accounts::{Account, AccountState, NewAccount, new_id};
use crate::accounts::{Team, TeamName, session_role};
use crate::events::Announcement;
use crate::events::announce::transition_announcing;
use crate::events::announce::{
    AnnounceError, announce_once, announce_pending, transition_announced,
};
use crate::events::catalog::{self, AccountEvent};
use crate::ports::{
    AccessError, AccountStore, BusError, Clock, EventBus, IdempotencyKey, Inserted, Marker,
    Markers, Page, StoreError, Transitioned,
};
use crate::ports::{
    CreationState, CreationStatus, MemberStatus, Organization, OrganizationError, closure_quota,
    explain_failure,
};
use crate::validation::ValidationError;

/// Who is calling, as the API's authorizer established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The IAM principal ARN (for an assumed role, the STS session ARN),
    /// or, for a person signed into the console (known by a JWT), their
    /// email address in lower case.
    pub principal: String,
    pub admin: bool,
}

impl Caller {
    /// A person the console's identity provider vouches for: known by the
    /// email address of their token, in lower case (addresses compare
    /// without case, as the identity store's do).
    pub fn by_email(email: &str, admin: bool) -> Self {
        Self {
            principal: email.trim().to_ascii_lowercase(),
            admin,
        }
    }

    /// Whether `member` (a user or role ARN, or an email address, from a
    /// team's members) is this caller. A role stands for every session of
    /// it.
    pub fn is(&self, member: &str) -> bool {
        if self.principal == member {
            return true;
        }
        if !member.starts_with("arn:") {
            return !self.principal.starts_with("arn:")
                && self.principal.eq_ignore_ascii_case(member);
        }
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION is a session of
        // arn:aws:iam::ACCOUNT:role/ROLE (roles may have a path).
        let Some(rest) = self.principal.strip_prefix("arn:aws:sts::") else {
            return false;
        };
        let Some((account, session)) = rest.split_once(":assumed-role/") else {
            return false;
        };
        let Some((role, _)) = session.rsplit_once('/') else {
            return false;
        };
        member
            .strip_prefix(&format!("arn:aws:iam::{account}:role/"))
            .is_some_and(|path| path == role || path.ends_with(&format!("/{role}")))
    }

    pub fn may_use(&self, team: &Team) -> bool {
        self.admin || team.members.iter().any(|m| self.is(m))
    }

    /// Whether this caller is who made a request recorded as made by
    /// `requester`: the same principal, or for STS sessions the same role
    /// (whoever may assume a role picks the session name, so a session is
    /// no more particular than its role).
    pub fn requested(&self, requester: &str) -> bool {
        let principal = |arn: &str| session_role(arn).unwrap_or_else(|| arn.to_string());
        principal(&self.principal) == principal(requester)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Blueprint(#[from] crate::ports::BlueprintError),
    #[error(transparent)]
    Cleaner(#[from] crate::ports::CleanerError),
}

impl From<AnnounceError> for AccountError {
    fn from(e: AnnounceError) -> Self {
        match e {
            AnnounceError::Store(e) => Self::Store(e),
            AnnounceError::Bus(e) => Self::Bus(e),
        }
    }
}

/// What became of an attempt to start creating an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Started,
    /// Five creations are in flight: the request waits its turn.
    Waiting,
    /// Nothing to do: the account is past that point.
    Skipped,
    Failed,
}

/// How long a creation may stay unconfirmed before the poller asks AWS.
pub const POLL_AFTER: Duration = Duration::minutes(2);
/// Creation failures that say "try again", and how often Purser does.
pub const RETRIED_FAILURES: [&str; 2] = ["CONCURRENT_ACCOUNT_MODIFICATION", "INTERNAL_FAILURE"];
pub const MAX_CREATION_ATTEMPTS: u32 = 3;
/// `LeaseExpiring` is emitted this long before a lease ends.
pub const LEASE_WARNING: Duration = Duration::days(3);
pub(super) const CLOSURE_WINDOW: Duration = Duration::days(30);
/// How long one run holds an account it is closing before another may try.
const CLOSURE_CLAIM: Duration = Duration::minutes(10);
/// How often a write that lost a race to a newer revision in the same state
/// is made again over it.
pub(super) const STALE_RETRIES: usize = 3;

/// What Purser does with accounts; the api, vend, account-events and reaper
/// functions are doors into it.
pub struct Accounts {
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) markers: Arc<dyn Markers>,
    pub(super) organization: Arc<dyn Organization>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) clock: Arc<dyn Clock>,
    /// Waits between retries of throttled Organizations calls.
    backoff: Vec<StdDuration>,
    /// The mail domains an owner's address may be at; any when empty.
    owner_domains: Vec<String>,
    /// Sign-in through IAM Identity Center.
    pub(super) access: AccessGrants,
    /// Lease templates (`with_templates`); requests name none without them.
    pub(super) templates: Option<Arc<dyn crate::ports::TemplateStore>>,
    /// How long a request or extension waits for an approver before it
    /// expires (`with_approval_expiry`).
    pub(super) approval_expiry: Duration,
    /// The SCPs every account works under (`with_guardrails`).
    pub(super) guardrails: Option<crate::accounts::guardrailing::AccountGuardrails>,
    /// Deploys template blueprints before accounts are ready (`with_blueprints`).
    pub(super) blueprints: Option<crate::accounts::blueprinting::AccountBlueprints>,
    /// Cleans pooled accounts (`with_recycling`; the reaper has it).
    pub(super) recycling: Option<crate::accounts::recycling::AccountRecycling>,
}

impl Accounts {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        markers: Arc<dyn Markers>,
        organization: Arc<dyn Organization>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            accounts,
            markers,
            organization,
            bus,
            clock,
            backoff: [200, 800, 2_000].map(StdDuration::from_millis).to_vec(),
            owner_domains: Vec::new(),
            access: AccessGrants::none(),
            templates: None,
            approval_expiry: crate::accounts::leasing::DEFAULT_APPROVAL_EXPIRY,
            guardrails: None,
            blueprints: None,
            recycling: None,
        }
    }

    /// Accounts whose owner must have an address at one of `domains`
    /// (exactly, case aside: a subdomain is another domain); any when empty.
    /// Grants sign-in with `access` when an account is ready, removes it
    /// when it closes.
    pub fn with_access(mut self, access: AccessGrants) -> Self {
        self.access = access;
        self
    }

    pub fn with_owner_domains(mut self, domains: Vec<String>) -> Self {
        self.owner_domains = domains
            .into_iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        self
    }

    fn check_owner_domain(&self, owner: &str) -> Result<(), AccountError> {
        if self.owner_domains.is_empty() {
            return Ok(());
        }
        let domain = owner
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if self.owner_domains.contains(&domain) {
            return Ok(());
        }
        Err(AccountError::Invalid(crate::validation::invalid(
            Some("owner"),
            &format!(
                "owner must be an address at {} (the OwnerDomains this Purser accepts)",
                self.owner_domains.join(" or ")
            ),
        )))
    }

    /// The time by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(super) async fn team_or_default(&self, name: &TeamName) -> Result<Team, StoreError> {
        Ok(self
            .accounts
            .team(name)
            .await?
            .unwrap_or_else(|| Team::unconfigured(name.clone())))
    }

    /// Stores `next` (a revision of an account in state `from`) with the
    /// event that announces it, then puts the event (`events::announce`).
    async fn move_announced(
        &self,
        from: AccountState,
        next: Account,
        detail_type: &str,
        event: AccountEvent,
    ) -> Result<(Transitioned, Account), AccountError> {
        Ok(transition_announced(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            from,
            next,
            detail_type,
            event,
        )
        .await?)
    }

    /// Puts the event a change of `account` stored but could not put (its
    /// delivery is being retried); returns the account as it then stands.
    pub(super) async fn announced(&self, account: Account) -> Result<Account, AccountError> {
        Ok(announce_pending(self.accounts.as_ref(), self.bus.as_ref(), account).await?)
    }

    /// Announces `entries` once for `marker`'s claim (given back if the put
    /// fails, so a retry announces them).
    async fn emit_once(
        &self,
        marker: &Marker,
        expires_at: DateTime<Utc>,
        entries: Vec<crate::events::EventEntry>,
    ) -> Result<bool, AccountError> {
        let now = self.clock.now();
        Ok(announce_once(
            self.markers.as_ref(),
            self.bus.as_ref(),
            marker,
            now,
            expires_at,
            entries,
        )
        .await?)
    }

    pub(super) async fn emit(
        &self,
        detail_type: &str,
        event: AccountEvent,
    ) -> Result<(), BusError> {
        tracing::info!(
            request_id = %event.request_id,
            team = %event.team,
            account_id = event.account_id.as_deref().unwrap_or(""),
            state = %event.state,
            detail_type,
            "account event"
        );
        self.bus.put(vec![event.entry(detail_type)]).await
    }

    // ------------------------------------------------------------ the API

    /// Whether `caller` may report deployments of AWS account `account_id`
    /// from outside it: an admin, or a member of the team the account is
    /// lent to. An account Purser does not know is refused the same way,
    /// so a stranger learns nothing.
    pub async fn may_report_for(
        &self,
        account_id: &str,
        caller: &Caller,
    ) -> Result<(), AccountError> {
        if caller.admin {
            return Ok(());
        }
        if let Some(account) = self.accounts.account_by_account_id(account_id).await? {
            let team = self.team_or_default(&account.team).await?;
            if caller.may_use(&team) {
                return Ok(());
            }
        }
        Err(AccountError::Forbidden(format!(
            "{} may not report deployments of account {account_id}: only members of the team it is lent to, and admins, may",
            caller.principal
        )))
    }

    /// A developer asks for an account. Returns the request and whether it
    /// is new (false: the idempotency key replayed an earlier one).
    pub async fn request(
        &self,
        input: NewAccount,
        caller: &Caller,
        key: Option<IdempotencyKey>,
    ) -> Result<(Account, bool), AccountError> {
        let team = self.team_or_default(&input.team).await?;
        if !caller.may_use(&team) {
            return Err(AccountError::Forbidden(format!(
                "{} is not a member of team {}; ask a platform admin to add you (PUT /teams/{})",
                caller.principal, team.name, team.name
            )));
        }
        self.check_owner_domain(&input.owner)?;
        let now = self.clock.now();
        // The template (asked for, or the team's default) sets the lease
        // and says whether an approver must say yes first.
        let (input, terms) = self.lease_terms(input, &team, caller).await?;
        let mut account = Account::request(new_id(), input, &caller.principal, now)?;
        let events = terms.apply(&mut account, now);
        match self
            .accounts
            .insert_account(&account, team.quota, key.as_ref())
            .await?
        {
            Inserted::Created => {
                self.put_events(&account, events).await?;
                Ok((account, true))
            }
            Inserted::Replayed(existing) => {
                // The first attempt may have stopped before its event went
                // out; handlers are idempotent, so say it again.
                if existing.state == AccountState::Requested {
                    self.emit(catalog::ACCOUNT_REQUESTED, AccountEvent::of(&existing, now))
                        .await?;
                }
                if existing.state == AccountState::PendingApproval {
                    self.emit(
                        catalog::ACCOUNT_APPROVAL_REQUESTED,
                        crate::accounts::leasing::approval_requested(&existing, now),
                    )
                    .await?;
                }
                Ok((existing, false))
            }
            Inserted::KeyReused => Err(AccountError::Conflict {
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was used with a different request; use a new key for a new request".into(),
            }),
            Inserted::QuotaExceeded { quota } => Err(AccountError::Conflict {
                code: "quota_exceeded",
                message: format!(
                    "team {} already has its quota of {quota} open accounts; close one, or ask a platform admin to raise the quota",
                    team.name
                ),
            }),
        }
    }

    /// An account the caller may see.
    pub async fn get(&self, id: &str, caller: &Caller) -> Result<Account, AccountError> {
        let not_found = || AccountError::NotFound(format!("no account request {id}"));
        let account = self.accounts.account(id).await?.ok_or_else(not_found)?;
        let team = self.team_or_default(&account.team).await?;
        // Someone outside the team learns nothing, not even that it exists.
        if !caller.may_use(&team) {
            return Err(not_found());
        }
        Ok(account)
    }

    pub async fn list(
        &self,
        team: Option<&TeamName>,
        caller: &Caller,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, AccountError> {
        match team {
            Some(name) => {
                let team = self.team_or_default(name).await?;
                if !caller.may_use(&team) {
                    return Err(AccountError::Forbidden(format!(
                        "{} is not a member of team {name}",
                        caller.principal
                    )));
                }
            }
            None if !caller.admin => {
                return Err(AccountError::Invalid(crate::validation::invalid(
                    Some("team"),
                    "give ?team=TEAM (only platform admins may list every team's accounts)",
                )));
            }
            None => {}
        }
        Ok(self.accounts.list_accounts(team, page, limit).await?)
    }

    /// `DELETE /accounts/{id}`: a ready or frozen account starts closing; a
    /// request not yet being created is withdrawn. Repeating it is harmless.
    /// Only who requested it, or a platform admin, may: the rest of the
    /// team may see the account, not end someone else's work.
    pub async fn close(&self, id: &str, caller: &Caller) -> Result<Account, AccountError> {
        let account = self.get(id, caller).await?;
        if !caller.admin && !caller.requested(&account.requested_by) {
            return Err(AccountError::Forbidden(format!(
                "only who requested account request {id} ({}) or a platform admin may close it",
                account.requested_by
            )));
        }
        // Its lease is over: the account is the pool's, not the requester's.
        if !caller.admin
            && matches!(
                account.state,
                AccountState::Cooling | AccountState::Available | AccountState::Quarantined
            )
        {
            return Err(AccountError::Forbidden(format!(
                "account request {id}'s lease ended and its account is in its template's pool ({}); only a platform admin may close it",
                account.state
            )));
        }
        self.close_account(
            account,
            "REQUESTED",
            &format!("closed by {}", caller.principal),
        )
        .await
    }

    async fn close_account(
        &self,
        account: Account,
        code: &str,
        reason: &str,
    ) -> Result<Account, AccountError> {
        let now = self.clock.now();
        let (next_state, detail_type) = match account.state {
            // Its lease is over already (a repeat is harmless).
            AccountState::Closing | AccountState::Closed | AccountState::Cleaning => {
                return self.announced(account).await;
            }
            AccountState::Requested | AccountState::PendingApproval => {
                (AccountState::Closed, catalog::ACCOUNT_CLOSED)
            }
            AccountState::Ready | AccountState::Frozen => {
                // A template that recycles: cleaning, not closing.
                if let Some(template) = self.recycling_template(&account).await? {
                    let id = account.id.clone();
                    return match self
                        .start_recycling(account, &template, code, reason)
                        .await?
                    {
                        (Transitioned::Applied, next) => Ok(next),
                        (Transitioned::Stale(Some(current)), _) => {
                            Box::pin(self.close_account(current, code, reason)).await
                        }
                        (Transitioned::Stale(None), _) => {
                            Err(AccountError::NotFound(format!("no account request {id}")))
                        }
                        (Transitioned::NoCreationSlot, _) => unreachable_slot(),
                    };
                }
                (AccountState::Closing, catalog::ACCOUNT_CLOSE_REQUESTED)
            }
            // A pooled account an admin closes (`close` checks who).
            AccountState::Cooling | AccountState::Available | AccountState::Quarantined => {
                (AccountState::Closing, catalog::ACCOUNT_CLOSE_REQUESTED)
            }
            AccountState::Creating | AccountState::Failed => {
                return Err(AccountError::Conflict {
                    code: "illegal_transition",
                    message: format!(
                        "account {} is {} and cannot be closed now{}",
                        account.id,
                        account.state,
                        if account.state == AccountState::Creating {
                            "; wait until it is ready"
                        } else {
                            ""
                        }
                    ),
                });
            }
        };
        let mut next = account.next_revision();
        next.state = next_state;
        next.updated_at = now;
        // Nobody signs into an account that is closing.
        let removed = self.access.remove(&account).await?;
        let removed_any = removed.is_some();
        if let Some(access) = removed {
            next.access = Some(access);
        }
        let mut events = vec![Announcement::of(
            detail_type,
            AccountEvent::of(&next, now).because(code, reason),
        )];
        if removed_any {
            events.push(Announcement::of(
                catalog::ACCESS_REMOVED,
                AccountEvent::of(&next, now).because(code, reason),
            ));
        }
        match transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            account.state,
            next,
            events,
        )
        .await?
        {
            (Transitioned::Applied, next) => Ok(next),
            (Transitioned::Stale(Some(current)), _) => {
                Box::pin(self.close_account(current, code, reason)).await
            }
            (Transitioned::Stale(None), _) => Err(AccountError::NotFound(format!(
                "no account request {}",
                account.id
            ))),
            (Transitioned::NoCreationSlot, _) => unreachable_slot(),
        }
    }

    /// Stores `team`; unless `names_notify`, with the notification settings
    /// the team had (a read shows its webhooks redacted, so a client could
    /// not give them back).
    pub async fn put_team(
        &self,
        mut team: Team,
        names_notify: bool,
        caller: &Caller,
    ) -> Result<Team, AccountError> {
        if !caller.admin {
            return Err(AccountError::Forbidden(
                "only platform admins may change a team".into(),
            ));
        }
        if !names_notify && let Some(current) = self.accounts.team(&team.name).await? {
            team.notify = current.notify;
        }
        self.accounts.put_team(&team).await?;
        tracing::info!(team = %team.name, quota = team.quota, members = team.members.len(), "team updated");
        Ok(team)
    }

    pub async fn team(
        &self,
        name: &TeamName,
        caller: &Caller,
    ) -> Result<(Team, u32), AccountError> {
        let team = self.team_or_default(name).await?;
        if !caller.may_use(&team) {
            return Err(AccountError::Forbidden(format!(
                "{} is not a member of team {name}",
                caller.principal
            )));
        }
        let open = self.accounts.open_accounts(name).await?;
        Ok((team, open))
    }

    /// `GET /me`: the teams `caller` belongs to (every team, for an
    /// admin), in name order.
    pub async fn teams_of(&self, caller: &Caller) -> Result<Vec<TeamName>, AccountError> {
        Ok(self
            .accounts
            .teams()
            .await?
            .into_iter()
            .filter(|t| caller.may_use(t))
            .map(|t| t.name)
            .collect())
    }

    // ------------------------------------------------------------ vend

    /// Starts creating the account, if a creation slot is free.
    pub async fn start_creation(&self, id: &str) -> Result<Started, AccountError> {
        let Some(account) = self.accounts.account(id).await? else {
            return Ok(Started::Skipped);
        };
        let now = self.clock.now();
        let mut next = account.next_revision();
        match account.state {
            AccountState::Requested => {
                // A template that recycles lends an available account of
                // its pool first; only an empty pool makes one.
                if let Some(served) = self.serve_from_pool(&account).await? {
                    return Ok(served);
                }
                next.state = AccountState::Creating;
                next.creation_started_at = Some(now);
                next.updated_at = now;
                match self
                    .accounts
                    .transition(AccountState::Requested, &next)
                    .await?
                {
                    Transitioned::Applied => {}
                    Transitioned::NoCreationSlot => {
                        tracing::info!(
                            request_id = id,
                            "five creations in flight; the request waits its turn"
                        );
                        return Ok(Started::Waiting);
                    }
                    Transitioned::Stale(_) => return Ok(Started::Skipped),
                }
            }
            // Creation was claimed but CreateAccount never answered: ask
            // again, but only once the claim is overdue, or this would race
            // the caller still waiting for its answer (and AWS would refuse
            // the second creation as EMAIL_ALREADY_EXISTS).
            AccountState::Creating
                if account.creation_id.is_none()
                    && now - account.creation_started_at.unwrap_or(account.updated_at)
                        > POLL_AFTER =>
            {
                next.creation_started_at = Some(now);
                next.updated_at = now;
                if self
                    .accounts
                    .transition(AccountState::Creating, &next)
                    .await?
                    != Transitioned::Applied
                {
                    return Ok(Started::Skipped);
                }
                // The first CreateAccount may have gone through with its
                // answer lost: asking again would make a second account
                // (or fail as EMAIL_ALREADY_EXISTS, leaving the first one
                // unrecorded). Adopt it instead.
                if let Some(found) = self.lost_creation(&next).await? {
                    tracing::warn!(request_id = %next.id, creation_id = %found.id,
                        "a creation whose answer was lost is adopted, not asked for again");
                    return self.record_creation(next, found).await;
                }
            }
            // Its creation was recorded; a retried request announces it if
            // the first delivery could not.
            AccountState::Creating if !account.announcing.is_empty() => {
                self.announced(account).await?;
                return Ok(Started::Skipped);
            }
            _ => return Ok(Started::Skipped),
        }
        self.create(next).await
    }

    /// The organization's creation of `account` that Purser never recorded,
    /// if there is one (one recorded for another request is not it).
    async fn lost_creation(
        &self,
        account: &Account,
    ) -> Result<Option<CreationStatus>, AccountError> {
        let name = account.account_name();
        let found = self
            .with_retries(|| self.organization.find_creation(&account.email, &name))
            .await?;
        match found {
            Some(status)
                if self
                    .accounts
                    .account_by_creation(&status.id)
                    .await?
                    .is_none() =>
            {
                Ok(Some(status))
            }
            _ => Ok(None),
        }
    }

    /// Calls `CreateAccount` for an account this caller has claimed (it is
    /// `creating` without a creation id) and records the creation.
    async fn create(&self, next: Account) -> Result<Started, AccountError> {
        let (name, tags) = (next.account_name(), next.tags());
        let created = self
            .with_retries(|| self.organization.create_account(&next.email, &name, &tags))
            .await;
        match created {
            Ok(status) => self.record_creation(next, status).await,
            Err(OrganizationError::Constraint { reason, message }) => {
                self.fail(
                    next,
                    &reason,
                    &format!("{}: {message}", explain_failure(&reason)),
                )
                .await?;
                Ok(Started::Failed)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records the creation `status` of an account this caller has claimed,
    /// announces it, and completes it if it is done already.
    async fn record_creation(
        &self,
        next: Account,
        status: CreationStatus,
    ) -> Result<Started, AccountError> {
        let mut started = next.next_revision();
        started.creation_id = Some(status.id.clone());
        started.creation_attempts += 1;
        started.updated_at = self.clock.now();
        let event = AccountEvent::of(&started, started.updated_at);
        let (outcome, _) = self
            .move_announced(
                AccountState::Creating,
                started,
                catalog::ACCOUNT_CREATION_STARTED,
                event,
            )
            .await?;
        if outcome != Transitioned::Applied {
            return Ok(Started::Skipped);
        }
        // Some organizations (and moto) answer at once.
        if status.state != CreationState::InProgress {
            self.complete_creation(&status).await?;
        }
        Ok(Started::Started)
    }

    /// Starts waiting requests, oldest first, while slots are free; and
    /// asks again for creations whose `CreateAccount` never answered.
    pub async fn start_waiting(&self) -> Result<usize, AccountError> {
        let mut started = 0;
        for stuck in self
            .accounts
            .accounts_in_state(AccountState::Creating)
            .await?
        {
            if stuck.creation_id.is_none() {
                self.start_creation(&stuck.id).await?;
            }
        }
        for waiting in self
            .accounts
            .accounts_in_state(AccountState::Requested)
            .await?
        {
            match self.start_creation(&waiting.id).await? {
                Started::Waiting => break,
                Started::Started => started += 1,
                Started::Skipped | Started::Failed => {}
            }
        }
        Ok(started)
    }

    pub(super) async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<T, OrganizationError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OrganizationError>>,
    {
        let mut waits = self.backoff.iter();
        loop {
            match call().await {
                Err(e) if e.is_retryable() => match waits.next() {
                    Some(wait) => {
                        tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "retrying AWS Organizations");
                        tokio_sleep(*wait).await;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    async fn fail(&self, account: Account, code: &str, reason: &str) -> Result<(), AccountError> {
        let from = account.state;
        let mut next = account.next_revision();
        next.state = AccountState::Failed;
        next.failure_reason = Some(reason.to_string());
        next.updated_at = self.clock.now();
        let event = AccountEvent::of(&next, next.updated_at).because(code, reason);
        self.move_announced(from, next, catalog::ACCOUNT_FAILED, event)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------ account-events

    /// A creation finished (`CreateAccountResult`, or the poller's
    /// `DescribeCreateAccountStatus`). Repeats and strays change nothing.
    pub async fn complete_creation(&self, status: &CreationStatus) -> Result<(), AccountError> {
        let Some(account) = self.accounts.account_by_creation(&status.id).await? else {
            tracing::info!(creation_id = %status.id, "a creation Purser did not start; ignored");
            return Ok(());
        };
        if account.state != AccountState::Creating {
            // A repeat; if the first could not announce what it did (ready,
            // failed), this one does.
            self.announced(account).await?;
            return Ok(());
        }
        match status.state {
            CreationState::InProgress => Ok(()),
            CreationState::Failed => {
                let code = status.failure_reason.as_deref().unwrap_or("UNKNOWN");
                if RETRIED_FAILURES.contains(&code)
                    && account.creation_attempts < MAX_CREATION_ATTEMPTS
                {
                    // A passing failure: claim the account for a new
                    // creation (clearing this one) and ask again.
                    tracing::warn!(request_id = %account.id, reason = code, attempt = account.creation_attempts, "creation failed for a passing reason; asking again");
                    let mut again = account.next_revision();
                    again.creation_id = None;
                    again.creation_started_at = Some(self.clock.now());
                    again.updated_at = self.clock.now();
                    if self
                        .accounts
                        .transition(AccountState::Creating, &again)
                        .await?
                        == Transitioned::Applied
                    {
                        // `create` may complete at once and come back here.
                        Box::pin(self.create(again)).await?;
                    }
                    return Ok(());
                }
                self.fail(account, code, &explain_failure(code)).await
            }
            CreationState::Succeeded => {
                // Placed before, its blueprint deploying: only that is left.
                if account.blueprint.is_some() {
                    return self.blueprint_progress(account).await;
                }
                let Some(account_id) = status.account_id.clone() else {
                    return Err(OrganizationError::Unavailable(format!(
                        "creation {} succeeded without an account id",
                        status.id
                    ))
                    .into());
                };
                let ou = self.place(&account, &account_id).await?;
                match self.start_blueprint(&account, &account_id, &ou).await? {
                    BlueprintStep::Ready(run) => {
                        self.become_ready(AccountState::Creating, account, account_id, ou, run)
                            .await?;
                        Ok(())
                    }
                    BlueprintStep::Deploying(run) => {
                        let mut next = account.next_revision();
                        next.account_id = Some(account_id);
                        next.ou = Some(ou);
                        next.blueprint = Some(run);
                        next.updated_at = self.clock.now();
                        self.accounts
                            .transition(AccountState::Creating, &next)
                            .await?;
                        Ok(())
                    }
                    BlueprintStep::NotHere => Ok(()),
                }
            }
        }
    }

    /// Places AWS account `account_id` for `account`: in its team's OU
    /// (`purser/<team>`, returned), tagged, under its guardrails before
    /// anyone can sign in. Each step may be repeated: a retry redoes it.
    /// A new account and one lent again from a pool go through it alike.
    pub(super) async fn place(
        &self,
        account: &Account,
        account_id: &str,
    ) -> Result<String, AccountError> {
        let path = ["purser", account.team.as_str()];
        let ou = self
            .with_retries(|| self.organization.ensure_ou(&path))
            .await?;
        self.with_retries(|| self.organization.move_account(account_id, &ou))
            .await?;
        let tags = account.tags();
        self.with_retries(|| self.organization.tag_account(account_id, &tags))
            .await?;
        self.apply_guardrails(account, account_id).await?;
        Ok(ou)
    }

    /// A placed, tagged and guarded account (its blueprint, if any,
    /// finished), stored in state `from` (`creating`, or `requested` when
    /// lent from a pool): access is granted and `AccountReady` announced.
    /// `Stale` when the account moved on meanwhile.
    pub(super) async fn become_ready(
        &self,
        from: AccountState,
        account: Account,
        account_id: String,
        ou: String,
        blueprint: Option<BlueprintRun>,
    ) -> Result<Transitioned, AccountError> {
        let mut next = account.next_revision();
        next.state = AccountState::Ready;
        next.account_id = Some(account_id);
        next.ou = Some(ou);
        next.blueprint = blueprint;
        // AccountReady says the owner can sign in: access first.
        let team = self.team_or_default(&account.team).await?;
        let set = self.template_permission_set(&account).await?;
        let access = self.access.grant(&next, &team, set.as_deref()).await?;
        let granted = matches!(
            access.status,
            crate::access::AccessStatus::Assigned | crate::access::AccessStatus::Pending
        );
        next.access = Some(access);
        next.updated_at = self.clock.now();
        let mut events = vec![Announcement::of(
            catalog::ACCOUNT_READY,
            AccountEvent::of(&next, next.updated_at),
        )];
        if granted {
            events.push(Announcement::of(
                catalog::ACCESS_GRANTED,
                AccountEvent::of(&next, next.updated_at),
            ));
        }
        let (outcome, _) = transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            from,
            next,
            events,
        )
        .await?;
        Ok(outcome)
    }

    /// The fallback for CloudTrail's best-effort delivery: asks AWS about
    /// creations unconfirmed for over two minutes, and closures in progress.
    pub async fn poll(&self) -> Result<(), AccountError> {
        let now = self.clock.now();
        for account in self
            .accounts
            .accounts_in_state(AccountState::Creating)
            .await?
        {
            if account.blueprint.is_some() {
                self.blueprint_progress(account).await?;
                continue;
            }
            let since = account.creation_started_at.unwrap_or(account.updated_at);
            if let Some(creation_id) = &account.creation_id
                && now - since > POLL_AFTER
            {
                let status = self
                    .with_retries(|| self.organization.creation_status(creation_id))
                    .await?;
                self.complete_creation(&status).await?;
            }
        }
        for account in self
            .accounts
            .accounts_in_state(AccountState::Closing)
            .await?
        {
            if let (Some(account_id), Some(_)) = (&account.account_id, account.closure_started_at) {
                let status = self
                    .with_retries(|| self.organization.member_status(account_id))
                    .await?;
                if status == MemberStatus::Suspended {
                    self.closure_completed(account_id).await?;
                }
            }
        }
        Ok(())
    }

    /// `CloseAccountResult`, or the poller: the account is closed.
    pub async fn closure_completed(&self, account_id: &str) -> Result<(), AccountError> {
        let mut found = self.accounts.account_by_account_id(account_id).await?;
        // A closing account's revision moves while it closes (the reaper
        // records when it called CloseAccount): a write that lost that race
        // applies over the newer revision, as long as it is still closing.
        for _ in 0..STALE_RETRIES {
            let Some(account) = found.take() else {
                return Ok(());
            };
            if account.state != AccountState::Closing {
                if account.state == AccountState::Closed {
                    self.announced(account).await?;
                }
                return Ok(());
            }
            let mut next = account.next_revision();
            next.state = AccountState::Closed;
            next.updated_at = self.clock.now();
            let event = AccountEvent::of(&next, next.updated_at);
            match self
                .move_announced(AccountState::Closing, next, catalog::ACCOUNT_CLOSED, event)
                .await?
            {
                (Transitioned::Applied, _) => return Ok(()),
                (Transitioned::Stale(current), _) => found = current,
                (Transitioned::NoCreationSlot, _) => return unreachable_slot(),
            }
        }
        Err(AccountError::Store(StoreError::Unavailable(format!(
            "account {account_id} kept changing while it was being closed; the event will be retried"
        ))))
    }

    // ------------------------------------------------------------ reaper

    /// Warns of leases ending within three days, starts closing accounts
    /// whose lease ended, and closes what is closing within the quota.
    pub async fn reap(&self) -> Result<(), AccountError> {
        self.expire_pending().await?;
        let now = self.clock.now();
        for state in [AccountState::Ready, AccountState::Frozen] {
            for account in self.accounts.accounts_in_state(state).await? {
                let Some(end) = account.lease_end else {
                    continue;
                };
                if end <= now {
                    let reason = format!("the lease ended at {}", crate::accounts::rfc3339(end));
                    self.close_account(account, "LEASE_ENDED", &reason).await?;
                } else if end - now <= LEASE_WARNING {
                    let key = Marker::LeaseExpiring {
                        request_id: account.id.clone(),
                    };
                    let event = AccountEvent::of(&account, now).entry(catalog::LEASE_EXPIRING);
                    self.emit_once(&key, end + Duration::days(1), vec![event])
                        .await?;
                }
            }
        }
        self.recycle().await?;
        self.close_pending().await
    }

    /// Calls `CloseAccount` for closing accounts, never beyond the rolling
    /// 30-day closure quota; what must wait is deferred, and said so once a day.
    pub async fn close_pending(&self) -> Result<(), AccountError> {
        let now = self.clock.now();
        let pending: Vec<Account> = self
            .accounts
            .accounts_in_state(AccountState::Closing)
            .await?
            .into_iter()
            .filter(|a| a.closure_started_at.is_none())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let members = self
            .with_retries(|| self.organization.member_account_count())
            .await?;
        let quota = closure_quota(members);
        let mut used = self.accounts.closures_since(now - CLOSURE_WINDOW).await?;
        for account in pending {
            let Some(account_id) = account.account_id.clone() else {
                continue;
            };
            // Runs overlap (one per AccountCloseRequested, and the schedule):
            // each account is handled by one run at a time, so none is
            // closed twice, counted twice or deferred by a run that lost it.
            let claim = Marker::Closing {
                account_id: account_id.clone(),
            };
            if !self
                .markers
                .claim_once(&claim, now, now + CLOSURE_CLAIM)
                .await?
            {
                continue;
            }
            let refused = if used >= quota {
                Some(format!(
                    "{used} of the {quota} closures AWS allows per 30 days are used; it will be closed when the quota allows"
                ))
            } else {
                match self
                    .with_retries(|| self.organization.close_account(&account_id))
                    .await
                {
                    Ok(()) => None,
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    // Already closing or closed (an earlier run called
                    // CloseAccount but stopped before recording it): that
                    // closure is under way, not refused.
                    Err(e) => match self.organization.member_status(&account_id).await {
                        Ok(MemberStatus::PendingClosure | MemberStatus::Suspended) => None,
                        _ => Some(format!("AWS refused: {e}")),
                    },
                }
            };
            match refused {
                None => {
                    used += 1;
                    let mut next = account.next_revision();
                    next.closure_started_at = Some(now);
                    next.updated_at = now;
                    self.accounts
                        .transition(AccountState::Closing, &next)
                        .await?;
                    tracing::info!(request_id = %account.id, account_id, "CloseAccount called");
                }
                Some(reason) => {
                    let key = Marker::CloseDeferred {
                        request_id: account.id.clone(),
                        day: now.date_naive(),
                    };
                    let event = AccountEvent::of(&account, now)
                        .because("CLOSURE_QUOTA", &reason)
                        .entry(catalog::ACCOUNT_CLOSE_DEFERRED);
                    self.emit_once(&key, now + Duration::days(2), vec![event])
                        .await?;
                }
            }
        }
        Ok(())
    }
}

fn unreachable_slot<T>() -> Result<T, AccountError> {
    // Only a move into `creating` takes a creation slot.
    Err(AccountError::Conflict {
        code: "illegal_transition",
        message: "no creation slot is involved in closing".into(),
    })
}

/// The core crate stays runtime-agnostic but for this timer.
async fn tokio_sleep(d: StdDuration) {
    tokio::time::sleep(d).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_closed_by_its_requester_or_the_requesters_role() {
        let caller = |arn: &str| Caller {
            principal: arn.into(),
            admin: false,
        };
        let ana = "arn:aws:iam::123456789012:user/ana";
        assert!(caller(ana).requested(ana));
        assert!(!caller("arn:aws:iam::123456789012:user/bob").requested(ana));
        let session = "arn:aws:sts::123456789012:assumed-role/dev/ana";
        assert!(
            caller("arn:aws:sts::123456789012:assumed-role/dev/other").requested(session),
            "a session is only as particular as its role"
        );
        assert!(caller("arn:aws:iam::123456789012:role/dev").requested(session));
        assert!(!caller("arn:aws:sts::123456789012:assumed-role/ops/ana").requested(session));
        assert!(!caller("arn:aws:sts::210987654321:assumed-role/dev/ana").requested(session));
    }

    #[test]
    fn role_members_cover_their_sessions() {
        let caller = Caller {
            principal: "arn:aws:sts::123456789012:assumed-role/Developers/ana".into(),
            admin: false,
        };
        assert!(caller.is("arn:aws:iam::123456789012:role/Developers"));
        assert!(caller.is("arn:aws:iam::123456789012:role/teams/Developers"));
        assert!(!caller.is("arn:aws:iam::123456789012:role/Admins"));
        assert!(!caller.is("arn:aws:iam::210987654321:role/Developers"));
        let user = Caller {
            principal: "arn:aws:iam::123456789012:user/ana".into(),
            admin: false,
        };
        assert!(user.is("arn:aws:iam::123456789012:user/ana"));
        assert!(!user.is("arn:aws:iam::123456789012:user/bob"));
    }

    // ------------------------------------------------------------ on fakes

    use crate::fakes::{FakeAccounts, FakeBus, FakeMarkers, FakeOrganization, locked};
    use crate::ports::ManualClock;

    const ANA: &str = "arn:aws:iam::123456789012:user/ana";
    const BOB: &str = "arn:aws:iam::123456789012:user/bob";
    const EVE: &str = "arn:aws:iam::123456789012:user/eve";

    struct World {
        service: Accounts,
        store: Arc<FakeAccounts>,
        markers: Arc<FakeMarkers>,
        org: Arc<FakeOrganization>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn payments() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    fn member(arn: &str) -> Caller {
        Caller {
            principal: arn.into(),
            admin: false,
        }
    }

    fn admin() -> Caller {
        Caller {
            principal: "arn:aws:iam::123456789012:role/platform".into(),
            admin: true,
        }
    }

    /// Team payments (ana and bob, quota `quota`) on 2026-11-20.
    fn world(quota: u32) -> World {
        let store = Arc::new(FakeAccounts::default());
        locked(&store.teams).insert(
            payments(),
            Team {
                name: payments(),
                quota,
                members: vec![ANA.into(), BOB.into()],
                notify: Default::default(),
                leases: Default::default(),
            },
        );
        let markers = Arc::new(FakeMarkers::default());
        let org = Arc::new(FakeOrganization::default());
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new(at("2026-11-20T10:00:00Z")));
        let service = Accounts::new(
            store.clone(),
            markers.clone(),
            org.clone(),
            bus.clone(),
            clock.clone(),
        );
        World {
            service,
            store,
            markers,
            org,
            bus,
            clock,
        }
    }

    fn asking(owner: &str, lease_days: Option<u32>) -> NewAccount {
        NewAccount {
            team: payments(),
            owner: owner.into(),
            purpose: "checkout tests".into(),
            lease_days,
            template: None,
        }
    }

    fn key(fingerprint: &str) -> IdempotencyKey {
        IdempotencyKey {
            scope: ANA.into(),
            key: "k-1".into(),
            fingerprint: fingerprint.into(),
        }
    }

    fn succeeded(creation_id: &str, account_id: &str) -> CreationStatus {
        CreationStatus {
            id: creation_id.into(),
            state: CreationState::Succeeded,
            account_id: Some(account_id.into()),
            failure_reason: None,
        }
    }

    fn failed(creation_id: &str, reason: &str) -> CreationStatus {
        CreationStatus {
            id: creation_id.into(),
            state: CreationState::Failed,
            account_id: None,
            failure_reason: Some(reason.into()),
        }
    }

    impl World {
        async fn request(&self) -> Account {
            self.service
                .request(asking("ana@example.com", None), &member(ANA), None)
                .await
                .unwrap()
                .0
        }

        fn stored(&self, id: &str) -> Account {
            self.store.get(id).unwrap()
        }

        /// A ready account, created through the service.
        async fn ready(&self, lease_days: Option<u32>, account_id: &str) -> Account {
            let (account, _) = self
                .service
                .request(asking("ana@example.com", lease_days), &member(ANA), None)
                .await
                .unwrap();
            assert_eq!(
                self.service.start_creation(&account.id).await.unwrap(),
                Started::Started
            );
            let creation = self.stored(&account.id).creation_id.unwrap();
            self.service
                .complete_creation(&succeeded(&creation, account_id))
                .await
                .unwrap();
            let ready = self.stored(&account.id);
            assert_eq!(ready.state, AccountState::Ready);
            ready
        }
    }

    #[tokio::test]
    async fn a_non_member_is_refused_and_nothing_is_written() {
        let w = world(5);
        let refused = w
            .service
            .request(asking("eve@example.com", None), &member(EVE), None)
            .await;
        assert!(
            matches!(refused, Err(AccountError::Forbidden(_))),
            "{refused:?}"
        );
        // A role's session is a member when its role is.
        let session = "arn:aws:sts::123456789012:assumed-role/dev/eve";
        assert!(matches!(
            w.service
                .request(asking("eve@example.com", None), &member(session), None)
                .await,
            Err(AccountError::Forbidden(_))
        ));
        assert!(locked(&w.store.accounts).is_empty());
        assert!(w.bus.detail_types().is_empty());
        assert!(locked(&w.org.calls).is_empty());
    }

    #[tokio::test]
    async fn a_request_is_announced_once_and_a_replay_returns_it() {
        let w = world(5);
        let (first, new) = w
            .service
            .request(
                asking("ana@example.com", Some(7)),
                &member(ANA),
                Some(key("f-1")),
            )
            .await
            .unwrap();
        assert!(new);
        assert_eq!(first.state, AccountState::Requested);
        assert_eq!(first.requested_by, ANA);
        assert_eq!(first.lease_end, Some(at("2026-11-27T10:00:00Z")));
        assert_eq!(w.stored(&first.id), first);
        let requested = w.bus.of(catalog::ACCOUNT_REQUESTED);
        assert_eq!(requested.len(), 1);
        assert_eq!(requested[0]["request_id"], first.id.as_str());
        assert_eq!(requested[0]["state"], "requested");

        // The same key and request: the first account, announced again
        // while it is still requested (the first event may have been lost).
        let (again, new) = w
            .service
            .request(
                asking("ana@example.com", Some(7)),
                &member(ANA),
                Some(key("f-1")),
            )
            .await
            .unwrap();
        assert!(!new);
        assert_eq!(again, first);
        assert_eq!(w.bus.of(catalog::ACCOUNT_REQUESTED).len(), 2);
        assert_eq!(locked(&w.store.accounts).len(), 1);

        // Once creation started, a replay says nothing more.
        w.service.start_creation(&first.id).await.unwrap();
        let (later, new) = w
            .service
            .request(
                asking("ana@example.com", Some(7)),
                &member(ANA),
                Some(key("f-1")),
            )
            .await
            .unwrap();
        assert!(!new);
        assert_eq!(later.id, first.id);
        assert_eq!(later.state, AccountState::Creating);
        assert_eq!(w.bus.of(catalog::ACCOUNT_REQUESTED).len(), 2);

        // The key with another request is a conflict.
        let reused = w
            .service
            .request(
                asking("ana@example.com", Some(8)),
                &member(ANA),
                Some(key("f-2")),
            )
            .await;
        assert!(
            matches!(
                reused,
                Err(AccountError::Conflict {
                    code: "idempotency_key_reused",
                    ..
                })
            ),
            "{reused:?}"
        );
        assert_eq!(locked(&w.store.accounts).len(), 1);
    }

    #[tokio::test]
    async fn the_team_quota_is_enforced() {
        let w = world(2);
        let first = w.request().await;
        w.request().await;
        let over = w
            .service
            .request(asking("ana@example.com", None), &member(ANA), None)
            .await;
        match over {
            Err(AccountError::Conflict { code, message }) => {
                assert_eq!(code, "quota_exceeded");
                assert!(message.contains("quota of 2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(locked(&w.store.accounts).len(), 2);
        assert_eq!(w.bus.of(catalog::ACCOUNT_REQUESTED).len(), 2);
        // A withdrawn request frees its place.
        let withdrawn = w.service.close(&first.id, &member(ANA)).await.unwrap();
        assert_eq!(withdrawn.state, AccountState::Closed);
        assert_eq!(w.bus.of(catalog::ACCOUNT_CLOSED).len(), 1);
        w.request().await;
        let (_, open) = w.service.team(&payments(), &member(BOB)).await.unwrap();
        assert_eq!(open, 2);
    }

    #[tokio::test]
    async fn start_creation_calls_create_account_once() {
        let w = world(5);
        let account = w.request().await;
        assert_eq!(
            w.service.start_creation(&account.id).await.unwrap(),
            Started::Started
        );
        let creating = w.stored(&account.id);
        assert_eq!(creating.state, AccountState::Creating);
        assert_eq!(creating.creation_id.as_deref(), Some("car-1"));
        assert_eq!(creating.creation_attempts, 1);
        assert_eq!(creating.creation_started_at, Some(w.service.now()));
        assert_eq!(
            w.org.calls_of("create_account"),
            [format!(
                "create_account {} payments-checkout tests",
                account.email
            )]
        );
        assert_eq!(w.bus.of(catalog::ACCOUNT_CREATION_STARTED).len(), 1);

        // A redelivered AccountRequested: nothing more.
        assert_eq!(
            w.service.start_creation(&account.id).await.unwrap(),
            Started::Skipped
        );
        w.clock.advance(Duration::minutes(10));
        assert_eq!(
            w.service.start_creation(&account.id).await.unwrap(),
            Started::Skipped
        );
        assert_eq!(w.org.calls_of("create_account").len(), 1);
        assert_eq!(w.bus.of(catalog::ACCOUNT_CREATION_STARTED).len(), 1);
        assert_eq!(
            w.service.start_creation("r-000000000000").await.unwrap(),
            Started::Skipped,
            "an unknown request"
        );
    }

    #[tokio::test]
    async fn at_most_five_creations_are_in_flight_and_the_rest_wait() {
        let w = world(10);
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(w.request().await.id);
            w.clock.advance(Duration::seconds(1));
        }
        for id in &ids[..5] {
            assert_eq!(
                w.service.start_creation(id).await.unwrap(),
                Started::Started
            );
        }
        for id in &ids[5..] {
            assert_eq!(
                w.service.start_creation(id).await.unwrap(),
                Started::Waiting
            );
            assert_eq!(w.stored(id).state, AccountState::Requested);
        }
        assert_eq!(w.org.calls_of("create_account").len(), 5);
        assert_eq!(w.service.start_waiting().await.unwrap(), 0, "no slot yet");

        // One creation ends: the oldest waiting request takes its slot.
        w.service
            .complete_creation(&succeeded("car-1", "222222222222"))
            .await
            .unwrap();
        assert_eq!(w.service.start_waiting().await.unwrap(), 1);
        assert_eq!(w.stored(&ids[5]).state, AccountState::Creating);
        assert_eq!(w.stored(&ids[6]).state, AccountState::Requested);
        assert_eq!(w.org.calls_of("create_account").len(), 6);
    }

    #[tokio::test]
    async fn a_created_account_is_placed_tagged_and_ready() {
        let w = world(5);
        let account = w.request().await;
        w.service.start_creation(&account.id).await.unwrap();
        w.clock.advance(Duration::minutes(3));
        w.service
            .complete_creation(&succeeded("car-1", "222222222222"))
            .await
            .unwrap();
        let ready = w.stored(&account.id);
        assert_eq!(ready.state, AccountState::Ready);
        assert_eq!(ready.account_id.as_deref(), Some("222222222222"));
        assert_eq!(ready.ou.as_deref(), Some("ou-purser-payments"));
        assert_eq!(ready.updated_at, at("2026-11-20T10:03:00Z"));
        assert_eq!(w.org.calls_of("ensure_ou"), ["ensure_ou purser/payments"]);
        assert_eq!(
            w.org.calls_of("move_account"),
            ["move_account 222222222222 ou-purser-payments"]
        );
        assert_eq!(
            w.org.calls_of("tag_account"),
            [format!(
                "tag_account 222222222222 purser:team=payments,purser:owner=ana@example.com,purser:request={}",
                account.id
            )]
        );
        let events = w.bus.of(catalog::ACCOUNT_READY);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["account_id"], "222222222222");
        assert_eq!(events[0]["ou"], "ou-purser-payments");

        // CloudTrail and the poller both report it: once is enough.
        w.service
            .complete_creation(&succeeded("car-1", "222222222222"))
            .await
            .unwrap();
        assert_eq!(w.bus.of(catalog::ACCOUNT_READY).len(), 1);
        assert_eq!(w.org.calls_of("move_account").len(), 1);
        // A creation Purser did not start is ignored.
        w.service
            .complete_creation(&succeeded("car-999", "333333333333"))
            .await
            .unwrap();
        assert_eq!(w.bus.detail_types().len(), 3);
    }

    #[tokio::test]
    async fn a_placement_that_fails_is_finished_by_the_next_report() {
        let w = world(5);
        let account = w.request().await;
        w.service.start_creation(&account.id).await.unwrap();
        w.org
            .fail_next("move_account", OrganizationError::NotFound("ou".into()));
        let report = succeeded("car-1", "222222222222");
        assert!(matches!(
            w.service.complete_creation(&report).await,
            Err(AccountError::Organization(OrganizationError::NotFound(_)))
        ));
        assert_eq!(w.stored(&account.id).state, AccountState::Creating);
        assert!(w.bus.of(catalog::ACCOUNT_READY).is_empty());
        // The event is redelivered (or the poller asks): placed this time.
        w.service.complete_creation(&report).await.unwrap();
        assert_eq!(w.stored(&account.id).state, AccountState::Ready);
        assert_eq!(w.bus.of(catalog::ACCOUNT_READY).len(), 1);
        assert_eq!(w.org.calls_of("move_account").len(), 2);
    }

    #[tokio::test]
    async fn a_creation_whose_answer_was_lost_is_adopted_not_asked_for_again() {
        let w = world(5);
        let account = w.request().await;
        // CreateAccount went through, but its answer never came back.
        w.org
            .creations_fail(OrganizationError::NotFound("the answer was lost".into()));
        assert!(w.service.start_creation(&account.id).await.is_err());
        let claimed = w.stored(&account.id);
        assert_eq!(claimed.state, AccountState::Creating);
        assert_eq!(claimed.creation_id, None);
        locked(&w.org.found).insert(
            (claimed.email.clone(), claimed.account_name()),
            succeeded("car-lost", "333333333333"),
        );
        w.clock.advance(POLL_AFTER + Duration::seconds(1));
        w.service.start_waiting().await.unwrap();
        assert_eq!(w.org.calls_of("create_account").len(), 1, "not asked again");
        let adopted = w.stored(&account.id);
        assert_eq!(adopted.creation_id.as_deref(), Some("car-lost"));
        assert_eq!(adopted.state, AccountState::Ready);
        assert_eq!(adopted.account_id.as_deref(), Some("333333333333"));
        assert_eq!(w.bus.of(catalog::ACCOUNT_READY).len(), 1);
    }

    #[tokio::test]
    async fn a_lost_answer_with_nothing_found_is_asked_for_again() {
        let w = world(5);
        let account = w.request().await;
        w.org
            .creations_fail(OrganizationError::NotFound("the call never arrived".into()));
        assert!(w.service.start_creation(&account.id).await.is_err());
        w.clock.advance(POLL_AFTER + Duration::seconds(1));
        w.service.start_waiting().await.unwrap();
        assert_eq!(w.org.calls_of("find_creation").len(), 1);
        assert_eq!(w.org.calls_of("create_account").len(), 2);
        assert_eq!(w.stored(&account.id).creation_id.as_deref(), Some("car-2"));
    }

    #[tokio::test]
    async fn the_poller_completes_creations_unconfirmed_for_two_minutes() {
        let w = world(5);
        let account = w.request().await;
        w.service.start_creation(&account.id).await.unwrap();
        locked(&w.org.statuses).insert("car-1".into(), succeeded("car-1", "222222222222"));
        w.service.poll().await.unwrap();
        assert!(w.org.calls_of("creation_status").is_empty(), "too early");
        w.clock.advance(POLL_AFTER + Duration::seconds(1));
        w.service.poll().await.unwrap();
        assert_eq!(w.org.calls_of("creation_status"), ["creation_status car-1"]);
        assert_eq!(w.stored(&account.id).state, AccountState::Ready);
    }

    #[tokio::test]
    async fn a_passing_failure_is_retried_and_a_final_one_fails_the_account() {
        let w = world(5);
        let account = w.request().await;
        w.service.start_creation(&account.id).await.unwrap();
        for attempt in 1..MAX_CREATION_ATTEMPTS {
            w.service
                .complete_creation(&failed(&format!("car-{attempt}"), "INTERNAL_FAILURE"))
                .await
                .unwrap();
            let again = w.stored(&account.id);
            assert_eq!(again.state, AccountState::Creating);
            let next = format!("car-{}", attempt + 1);
            assert_eq!(again.creation_id.as_deref(), Some(next.as_str()));
            assert_eq!(again.creation_attempts, attempt + 1);
        }
        assert_eq!(
            w.org.calls_of("create_account").len() as u32,
            MAX_CREATION_ATTEMPTS
        );
        assert!(w.bus.of(catalog::ACCOUNT_FAILED).is_empty());

        // The last attempt fails too: the account fails, once.
        let last = failed(&format!("car-{MAX_CREATION_ATTEMPTS}"), "INTERNAL_FAILURE");
        w.service.complete_creation(&last).await.unwrap();
        w.service.complete_creation(&last).await.unwrap();
        let gone = w.stored(&account.id);
        assert_eq!(gone.state, AccountState::Failed);
        assert!(
            gone.failure_reason
                .as_deref()
                .unwrap()
                .starts_with("INTERNAL_FAILURE: "),
            "{:?}",
            gone.failure_reason
        );
        let events = w.bus.of(catalog::ACCOUNT_FAILED);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["reason_code"], "INTERNAL_FAILURE");
        assert_eq!(
            w.org.calls_of("create_account").len() as u32,
            MAX_CREATION_ATTEMPTS
        );
        // The failed account holds no slot and no place in the quota.
        assert_eq!(w.store.open_accounts(&payments()).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_final_failure_or_a_refused_creation_fails_at_once() {
        let w = world(5);
        let first = w.request().await;
        w.service.start_creation(&first.id).await.unwrap();
        w.service
            .complete_creation(&failed("car-1", "EMAIL_ALREADY_EXISTS"))
            .await
            .unwrap();
        assert_eq!(w.stored(&first.id).state, AccountState::Failed);
        assert_eq!(w.org.calls_of("create_account").len(), 1, "not retried");

        // Organizations refuses CreateAccount outright.
        let second = w.request().await;
        w.org.creations_fail(OrganizationError::Constraint {
            reason: "ACCOUNT_NUMBER_LIMIT_EXCEEDED".into(),
            message: "too many".into(),
        });
        assert_eq!(
            w.service.start_creation(&second.id).await.unwrap(),
            Started::Failed
        );
        assert_eq!(w.stored(&second.id).state, AccountState::Failed);
        let events = w.bus.of(catalog::ACCOUNT_FAILED);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["reason_code"], "EMAIL_ALREADY_EXISTS");
        assert_eq!(events[1]["reason_code"], "ACCOUNT_NUMBER_LIMIT_EXCEEDED");
    }

    #[tokio::test]
    async fn only_the_requester_or_an_admin_may_close() {
        let w = world(5);
        let account = w.ready(None, "222222222222").await;
        let refused = w.service.close(&account.id, &member(BOB)).await;
        assert!(
            matches!(refused, Err(AccountError::Forbidden(_))),
            "{refused:?}"
        );
        // Outside the team, the account does not exist.
        assert!(matches!(
            w.service.close(&account.id, &member(EVE)).await,
            Err(AccountError::NotFound(_))
        ));
        assert_eq!(w.stored(&account.id).state, AccountState::Ready);
        assert!(w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED).is_empty());

        let closing = w.service.close(&account.id, &admin()).await.unwrap();
        assert_eq!(closing.state, AccountState::Closing);
        let events = w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["reason_code"], "REQUESTED");
        // Again, by the requester: harmless.
        let again = w.service.close(&account.id, &member(ANA)).await.unwrap();
        assert_eq!(again.state, AccountState::Closing);
        assert_eq!(w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED).len(), 1);
    }

    #[tokio::test]
    async fn owners_must_be_at_an_allowed_domain() {
        let w = world(5);
        let service = Accounts::new(
            w.store.clone(),
            w.markers.clone(),
            w.org.clone(),
            w.bus.clone(),
            w.clock.clone(),
        )
        .with_owner_domains(vec![" Example.com ".into(), "".into()]);
        for owner in ["ana@other.org", "ana@dev.example.com"] {
            match service
                .request(asking(owner, None), &member(ANA), None)
                .await
            {
                Err(AccountError::Invalid(e)) => {
                    assert_eq!(e.field.as_deref(), Some("owner"));
                    assert!(e.message.contains("example.com"), "{}", e.message);
                }
                other => panic!("{owner}: {other:?}"),
            }
        }
        assert!(locked(&w.store.accounts).is_empty());
        assert!(w.bus.detail_types().is_empty());
        let (account, _) = service
            .request(asking("ana@EXAMPLE.com", None), &member(ANA), None)
            .await
            .unwrap();
        assert_eq!(account.owner, "ana@EXAMPLE.com");
    }

    #[tokio::test]
    async fn the_reaper_warns_of_a_lease_ending_and_closes_it_when_ended() {
        let w = world(5);
        let account = w.ready(Some(5), "222222222222").await;
        w.service.reap().await.unwrap();
        assert!(w.bus.of(catalog::LEASE_EXPIRING).is_empty(), "5 days left");

        // Three days before the end: warned, once.
        w.clock.advance(Duration::days(2));
        w.service.reap().await.unwrap();
        w.clock.advance(Duration::hours(1));
        w.service.reap().await.unwrap();
        let warned = w.bus.of(catalog::LEASE_EXPIRING);
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0]["request_id"], account.id.as_str());
        assert_eq!(w.stored(&account.id).state, AccountState::Ready);

        // The lease ends: closing, and CloseAccount called within the quota.
        w.clock.set(at("2026-11-25T10:00:00Z"));
        w.service.reap().await.unwrap();
        let closing = w.stored(&account.id);
        assert_eq!(closing.state, AccountState::Closing);
        assert_eq!(closing.closure_started_at, Some(w.service.now()));
        let events = w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["reason_code"], "LEASE_ENDED");
        assert_eq!(
            w.org.calls_of("close_account"),
            ["close_account 222222222222"]
        );
        w.service.reap().await.unwrap();
        assert_eq!(w.org.calls_of("close_account").len(), 1, "closed once");
        assert_eq!(w.bus.of(catalog::LEASE_EXPIRING).len(), 1);

        // AWS suspends it: the poller sees it closed.
        locked(&w.org.members).insert("222222222222".into(), MemberStatus::Suspended);
        w.service.poll().await.unwrap();
        assert_eq!(w.stored(&account.id).state, AccountState::Closed);
        assert_eq!(w.bus.of(catalog::ACCOUNT_CLOSED).len(), 1);
    }

    #[tokio::test]
    async fn closures_beyond_the_quota_are_deferred_once_a_day() {
        let w = world(20);
        // Ten closures in the last 30 days already (the quota for 10 members).
        for n in 0..10 {
            let mut done = Account::request(
                new_id(),
                asking("ana@example.com", None),
                ANA,
                at("2026-11-01T00:00:00Z"),
            )
            .unwrap();
            done.state = AccountState::Closed;
            done.account_id = Some(format!("3000000000{n:02}"));
            done.closure_started_at = Some(at("2026-11-10T00:00:00Z"));
            w.store.add(done);
        }
        let account = w.ready(None, "222222222222").await;
        w.service.close(&account.id, &member(ANA)).await.unwrap();
        w.service.close_pending().await.unwrap();
        assert!(w.org.calls_of("close_account").is_empty());
        let deferred = w.bus.of(catalog::ACCOUNT_CLOSE_DEFERRED);
        assert_eq!(deferred.len(), 1);
        assert_eq!(deferred[0]["reason_code"], "CLOSURE_QUOTA");
        w.clock.advance(Duration::minutes(11));
        w.service.close_pending().await.unwrap();
        assert_eq!(
            w.bus.of(catalog::ACCOUNT_CLOSE_DEFERRED).len(),
            1,
            "once a day"
        );
        // Thirty days on, the window has room again.
        w.clock.set(at("2026-12-11T00:00:00Z"));
        w.service.close_pending().await.unwrap();
        assert_eq!(
            w.org.calls_of("close_account"),
            ["close_account 222222222222"]
        );
    }
}
