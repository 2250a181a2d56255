//! What Purser does with accounts, on the ports: requests from developers,
//! creation within the organization's limits, completion, closing and
//! leases. The functions (api, vend, account-events, reaper) are thin doors
//! into this; each step is a conditional transition that emits one event,
//! so a repeated or reordered event changes nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::accounts::{Account, AccountState, NewAccount, new_id};
use crate::accounts::{Team, TeamName, session_role};
use crate::events::catalog::{self, AccountEvent};
use crate::ports::{
    AccountStore, BusError, Clock, EventBus, IdempotencyKey, Inserted, Marker, Markers, Page,
    StoreError, Transitioned,
};
use crate::ports::{
    CreationState, CreationStatus, MemberStatus, Organization, OrganizationError, closure_quota,
    explain_failure,
};
use crate::validation::ValidationError;

/// Who is calling, as the API's authorizer established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The IAM principal ARN (for an assumed role, the STS session ARN).
    pub arn: String,
    pub admin: bool,
}

impl Caller {
    /// Whether `member` (a user or role ARN from a team's members) is this
    /// caller. A role stands for every session of it.
    pub fn is(&self, member: &str) -> bool {
        if self.arn == member {
            return true;
        }
        // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION is a session of
        // arn:aws:iam::ACCOUNT:role/ROLE (roles may have a path).
        let Some(rest) = self.arn.strip_prefix("arn:aws:sts::") else {
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
        principal(&self.arn) == principal(requester)
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
const CLOSURE_WINDOW: Duration = Duration::days(30);
/// How long one run holds an account it is closing before another may try.
const CLOSURE_CLAIM: Duration = Duration::minutes(10);

/// What Purser does with accounts; the api, vend, account-events and reaper
/// functions are doors into it.
pub struct Accounts {
    accounts: Arc<dyn AccountStore>,
    markers: Arc<dyn Markers>,
    organization: Arc<dyn Organization>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    /// Waits between retries of throttled Organizations calls.
    backoff: Vec<StdDuration>,
    /// The mail domains an owner's address may be at; any when empty.
    owner_domains: Vec<String>,
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
        }
    }

    /// Accounts whose owner must have an address at one of `domains`
    /// (exactly, case aside: a subdomain is another domain); any when empty.
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

    async fn team_or_default(&self, name: &TeamName) -> Result<Team, StoreError> {
        Ok(self
            .accounts
            .team(name)
            .await?
            .unwrap_or_else(|| Team::unconfigured(name.clone())))
    }

    async fn emit(&self, detail_type: &str, event: AccountEvent) -> Result<(), BusError> {
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
            caller.arn
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
                caller.arn, team.name, team.name
            )));
        }
        self.check_owner_domain(&input.owner)?;
        let now = self.clock.now();
        let account = Account::request(new_id(), input, &caller.arn, now)?;
        match self
            .accounts
            .insert_account(&account, team.quota, key.as_ref())
            .await?
        {
            Inserted::Created => {
                self.emit(catalog::ACCOUNT_REQUESTED, AccountEvent::of(&account, now))
                    .await?;
                Ok((account, true))
            }
            Inserted::Replayed(existing) => {
                // The first attempt may have stopped before its event went
                // out; handlers are idempotent, so say it again.
                if existing.state == AccountState::Requested {
                    self.emit(catalog::ACCOUNT_REQUESTED, AccountEvent::of(&existing, now))
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
                        caller.arn
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
        self.close_account(account, "REQUESTED", &format!("closed by {}", caller.arn))
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
            AccountState::Closing | AccountState::Closed => return Ok(account),
            AccountState::Requested => (AccountState::Closed, catalog::ACCOUNT_CLOSED),
            AccountState::Ready | AccountState::Frozen => {
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
        let mut next = account.clone();
        next.state = next_state;
        next.updated_at = now;
        match self.accounts.transition(account.state, &next).await? {
            Transitioned::Applied => {
                self.emit(
                    detail_type,
                    AccountEvent::of(&next, now).because(code, reason),
                )
                .await?;
                Ok(next)
            }
            Transitioned::Stale(Some(current)) => {
                Box::pin(self.close_account(current, code, reason)).await
            }
            Transitioned::Stale(None) => Err(AccountError::NotFound(format!(
                "no account request {}",
                account.id
            ))),
            Transitioned::NoCreationSlot => unreachable_slot(),
        }
    }

    pub async fn put_team(&self, team: Team, caller: &Caller) -> Result<Team, AccountError> {
        if !caller.admin {
            return Err(AccountError::Forbidden(
                "only platform admins may change a team".into(),
            ));
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
                caller.arn
            )));
        }
        let open = self.accounts.open_accounts(name).await?;
        Ok((team, open))
    }

    // ------------------------------------------------------------ vend

    /// Starts creating the account, if a creation slot is free.
    pub async fn start_creation(&self, id: &str) -> Result<Started, AccountError> {
        let Some(account) = self.accounts.account(id).await? else {
            return Ok(Started::Skipped);
        };
        let now = self.clock.now();
        let mut next = account.clone();
        match account.state {
            AccountState::Requested => {
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
            }
            _ => return Ok(Started::Skipped),
        }
        self.create(next).await
    }

    /// Calls `CreateAccount` for an account this caller has claimed (it is
    /// `creating` without a creation id) and records the creation.
    async fn create(&self, next: Account) -> Result<Started, AccountError> {
        let (name, tags) = (next.account_name(), next.tags());
        let created = self
            .with_retries(|| self.organization.create_account(&next.email, &name, &tags))
            .await;
        match created {
            Ok(status) => {
                let mut started = next.clone();
                started.creation_id = Some(status.id.clone());
                started.creation_attempts += 1;
                started.updated_at = self.clock.now();
                match self
                    .accounts
                    .transition(AccountState::Creating, &started)
                    .await?
                {
                    Transitioned::Applied => {
                        self.emit(
                            catalog::ACCOUNT_CREATION_STARTED,
                            AccountEvent::of(&started, started.updated_at),
                        )
                        .await?;
                    }
                    _ => return Ok(Started::Skipped),
                }
                // Some organizations (and moto) answer at once.
                if status.state != CreationState::InProgress {
                    self.complete_creation(&status).await?;
                }
                Ok(Started::Started)
            }
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

    async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<T, OrganizationError>
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
        let mut next = account;
        next.state = AccountState::Failed;
        next.failure_reason = Some(reason.to_string());
        next.updated_at = self.clock.now();
        if let Transitioned::Applied = self.accounts.transition(from, &next).await? {
            self.emit(
                catalog::ACCOUNT_FAILED,
                AccountEvent::of(&next, next.updated_at).because(code, reason),
            )
            .await?;
        }
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
                    let mut again = account.clone();
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
                let Some(account_id) = status.account_id.clone() else {
                    return Err(OrganizationError::Unavailable(format!(
                        "creation {} succeeded without an account id",
                        status.id
                    ))
                    .into());
                };
                let path = ["purser", account.team.as_str()];
                let ou = self
                    .with_retries(|| self.organization.ensure_ou(&path))
                    .await?;
                self.with_retries(|| self.organization.move_account(&account_id, &ou))
                    .await?;
                let tags = account.tags();
                self.with_retries(|| self.organization.tag_account(&account_id, &tags))
                    .await?;
                let mut next = account.clone();
                next.state = AccountState::Ready;
                next.account_id = Some(account_id);
                next.ou = Some(ou);
                next.updated_at = self.clock.now();
                if let Transitioned::Applied = self
                    .accounts
                    .transition(AccountState::Creating, &next)
                    .await?
                {
                    self.emit(
                        catalog::ACCOUNT_READY,
                        AccountEvent::of(&next, next.updated_at),
                    )
                    .await?;
                }
                Ok(())
            }
        }
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
        let Some(account) = self.accounts.account_by_account_id(account_id).await? else {
            return Ok(());
        };
        if account.state != AccountState::Closing {
            return Ok(());
        }
        let mut next = account;
        next.state = AccountState::Closed;
        next.updated_at = self.clock.now();
        if let Transitioned::Applied = self
            .accounts
            .transition(AccountState::Closing, &next)
            .await?
        {
            self.emit(
                catalog::ACCOUNT_CLOSED,
                AccountEvent::of(&next, next.updated_at),
            )
            .await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ reaper

    /// Warns of leases ending within three days, starts closing accounts
    /// whose lease ended, and closes what is closing within the quota.
    pub async fn reap(&self) -> Result<(), AccountError> {
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
                    if self
                        .markers
                        .claim_once(&key, now, end + Duration::days(1))
                        .await?
                    {
                        self.emit(catalog::LEASE_EXPIRING, AccountEvent::of(&account, now))
                            .await?;
                    }
                }
            }
        }
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
                    let mut next = account.clone();
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
                    if self
                        .markers
                        .claim_once(&key, now, now + Duration::days(2))
                        .await?
                    {
                        self.emit(
                            catalog::ACCOUNT_CLOSE_DEFERRED,
                            AccountEvent::of(&account, now).because("CLOSURE_QUOTA", &reason),
                        )
                        .await?;
                    }
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
            arn: arn.into(),
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
            arn: "arn:aws:sts::123456789012:assumed-role/Developers/ana".into(),
            admin: false,
        };
        assert!(caller.is("arn:aws:iam::123456789012:role/Developers"));
        assert!(caller.is("arn:aws:iam::123456789012:role/teams/Developers"));
        assert!(!caller.is("arn:aws:iam::123456789012:role/Admins"));
        assert!(!caller.is("arn:aws:iam::210987654321:role/Developers"));
        let user = Caller {
            arn: "arn:aws:iam::123456789012:user/ana".into(),
            admin: false,
        };
        assert!(user.is("arn:aws:iam::123456789012:user/ana"));
        assert!(!user.is("arn:aws:iam::123456789012:user/bob"));
    }
}
