//! What `Accounts` does for templates that recycle (`lease_end: recycle`):
//! a lease's end sends the account to its template's pool (`cleaning`,
//! sign-in removed), the reaper's schedule moves it to the pool's OU and
//! runs the cleaner on it until two passes in a row are clean (`cooling`)
//! or three runs failed (`quarantined`, admins told), it cools for the
//! template's `cooling_hours` after the lease (`available`), and a request
//! of the template takes it (`requested → ready`, placed, tagged, guarded
//! and granted like a new account) before any account is created. The
//! reaper closes available accounts beyond the template's `pool_size`,
//! within the closure quota.
//!
//! Every step is a conditional transition from the revision it read, and
//! each side effect may be repeated: a retried or overlapping run does
//! nothing twice that matters (a cleaner run is named by its account, pass
//! and attempt, which CodeBuild's idempotency token makes one build).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::accounts::{
    Account, AccountError, AccountState, Accounts, Caller, Started, rfc3339, service::STALE_RETRIES,
};
use crate::budgets::FreezeExemptions;
use crate::events::Announcement;
use crate::events::announce::transition_announcing;
use crate::events::catalog::{self, AccountEvent};
use crate::leases::{LeaseEnd, LeaseTemplate, TemplateName};
use crate::ports::{Cleaner, CleanerError, CleaningStatus, Transitioned, closure_quota};
use crate::recycling::{
    CLEAN_PASSES, CleaningRun, MAX_FAILED_RUNS, Next, NukeTarget, Protected, Recycling,
};

/// The OU pooled accounts wait in, under Purser's OU. A team cannot be
/// named `_pool` (team names are `[a-z0-9-]`), so no team's OU is it.
pub const POOL_OU: [&str; 2] = ["purser", "_pool"];

/// How pooled accounts are cleaned: the cleaner, and what the generated
/// aws-nuke configuration says beyond the account.
#[derive(Clone)]
pub struct AccountRecycling {
    pub cleaner: Arc<dyn Cleaner>,
    /// The regions cleaned when the template names none: the deployment's
    /// guardrail regions, else Purser's own.
    pub regions: Vec<String>,
    /// Accounts aws-nuke must never touch: Purser's and the management
    /// account.
    pub blocklist: Vec<String>,
    /// What Purser installs in member accounts, which survives.
    pub protected: Protected,
    /// The freeze's exemptions, to find the freeze SCP a frozen account
    /// leaves the pool without.
    pub freeze: FreezeExemptions,
}

impl Accounts {
    /// Cleans pooled accounts with `recycling` (the reaper).
    pub fn with_recycling(mut self, recycling: AccountRecycling) -> Self {
        self.recycling = Some(recycling);
        self
    }

    /// The template version `account` was made from, if it recycles.
    pub(super) async fn recycling_template(
        &self,
        account: &Account,
    ) -> Result<Option<LeaseTemplate>, AccountError> {
        let (Some(reference), Some(templates)) = (&account.template, &self.templates) else {
            return Ok(None);
        };
        Ok(templates
            .template_version(&reference.name, reference.version)
            .await?
            .filter(|t| t.lease_end == LeaseEnd::Recycle))
    }

    /// The lease of a ready or frozen account of a recycling template ended
    /// (`code`: `LEASE_ENDED` or `REQUESTED`): sign-in removed, it is
    /// `cleaning`, and the reaper takes it from there.
    pub(super) async fn start_recycling(
        &self,
        account: Account,
        template: &LeaseTemplate,
        code: &str,
        reason: &str,
    ) -> Result<(Transitioned, Account), AccountError> {
        let now = self.clock.now();
        let mut next = account.next_revision();
        next.state = AccountState::Cleaning;
        next.updated_at = now;
        next.recycling = Some(Recycling::new(
            now,
            now + Duration::hours(i64::from(template.cooling_hours)),
        ));
        let removed = self.access.remove(&account).await?;
        let removed_any = removed.is_some();
        if let Some(access) = removed {
            next.access = Some(access);
        }
        let mut events = vec![Announcement::of(
            catalog::ACCOUNT_CLEANING_STARTED,
            AccountEvent::of(&next, now).because(code, reason),
        )];
        if removed_any {
            events.push(Announcement::of(
                catalog::ACCESS_REMOVED,
                AccountEvent::of(&next, now).because(code, reason),
            ));
        }
        Ok(transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            account.state,
            next,
            events,
        )
        .await?)
    }

    // ------------------------------------------------------------ the reaper

    /// Moves every pooled account on as far as it can go now: cleaning
    /// (the pool's OU, then the cleaner's runs), cooling into available,
    /// lent accounts handed over, and available accounts beyond their
    /// template's `pool_size` closed within the closure quota.
    pub async fn recycle(&self) -> Result<(), AccountError> {
        if let Some(recycling) = &self.recycling {
            for account in self
                .accounts
                .accounts_in_state(AccountState::Cleaning)
                .await?
            {
                let id = account.id.clone();
                if let Err(e) = self.clean(recycling, account).await {
                    // One account's trouble does not hold up the others.
                    tracing::warn!(request_id = %id, error = %e, "cleaning step failed; the next run tries again");
                    if !is_passing(&e) {
                        return Err(e);
                    }
                }
            }
        } else if !self
            .accounts
            .accounts_in_state(AccountState::Cleaning)
            .await?
            .is_empty()
        {
            tracing::warn!("accounts wait to be cleaned, but this function has no cleaner");
        }
        let now = self.clock.now();
        for account in self
            .accounts
            .accounts_in_state(AccountState::Cooling)
            .await?
        {
            if account
                .recycling
                .as_ref()
                .is_some_and(|r| r.cooling_until <= now)
            {
                let mut next = account.next_revision();
                next.state = AccountState::Available;
                next.updated_at = now;
                let event = AccountEvent::of(&next, now);
                self.recycled_move(
                    AccountState::Cooling,
                    next,
                    catalog::ACCOUNT_AVAILABLE,
                    event,
                )
                .await?;
            }
        }
        self.settle_loans().await?;
        self.shrink_pools().await
    }

    async fn recycled_move(
        &self,
        from: AccountState,
        next: Account,
        detail_type: &str,
        event: AccountEvent,
    ) -> Result<Transitioned, AccountError> {
        let (outcome, _) = transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            from,
            next,
            vec![Announcement::of(detail_type, event)],
        )
        .await?;
        Ok(outcome)
    }

    /// One cleaning account, as far as it goes now.
    async fn clean(
        &self,
        recycling: &AccountRecycling,
        mut account: Account,
    ) -> Result<(), AccountError> {
        let Some(account_id) = account.account_id.clone() else {
            return Ok(());
        };
        let now = self.clock.now();
        let mut state = account
            .recycling
            .clone()
            .unwrap_or_else(|| Recycling::new(now, now));
        if state.pool_ou.is_none() {
            let ou = self.enter_pool(recycling, &account, &account_id).await?;
            let mut next = account.next_revision();
            state.pool_ou = Some(ou.clone());
            next.ou = Some(ou);
            next.frozen_by.clear();
            next.recycling = Some(state.clone());
            next.updated_at = now;
            if self
                .accounts
                .transition(AccountState::Cleaning, &next)
                .await?
                != Transitioned::Applied
            {
                return Ok(());
            }
            account = next;
        }
        // At most one start and one status per run a cleaning may have.
        for _ in 0..2 * (CLEAN_PASSES + MAX_FAILED_RUNS) {
            let Some(run) = state.run.clone() else {
                let run = self
                    .start_run(recycling, &account, &account_id, &state)
                    .await?;
                let mut next = account.next_revision();
                state.run = Some(run);
                next.recycling = Some(state.clone());
                next.updated_at = self.clock.now();
                if self
                    .accounts
                    .transition(AccountState::Cleaning, &next)
                    .await?
                    != Transitioned::Applied
                {
                    return Ok(());
                }
                account = next;
                continue;
            };
            let asked = match unstarted(&run.id) {
                Some(status) => Ok(status),
                None => recycling.cleaner.status(&run.id).await,
            };
            let status = match asked {
                Ok(status) => status,
                Err(e) if e.is_retryable() => return Err(cleaner_error(e)),
                // The run is gone: it counts as a failed one.
                Err(e) => CleaningStatus::Failed {
                    reason: e.to_string(),
                },
            };
            let step = state.progress.after(&status);
            let now = self.clock.now();
            let mut next = account.next_revision();
            next.updated_at = now;
            match step {
                Next::Wait => return Ok(()),
                Next::RunAgain => {
                    if let CleaningStatus::Failed { reason } = &status {
                        tracing::warn!(request_id = %account.id, account_id, run = %run.id,
                            reason, "a cleaning run failed; running it again");
                    }
                    state.run = None;
                    next.recycling = Some(state.clone());
                    if self
                        .accounts
                        .transition(AccountState::Cleaning, &next)
                        .await?
                        != Transitioned::Applied
                    {
                        return Ok(());
                    }
                    account = next;
                }
                Next::Clean => {
                    state.cleaned_at = Some(now);
                    next.state = AccountState::Cooling;
                    next.recycling = Some(state.clone());
                    let event = AccountEvent::of(&next, now).because(
                        "CLEANED",
                        &format!(
                            "{CLEAN_PASSES} clean passes in a row; it cools until {}",
                            rfc3339(state.cooling_until)
                        ),
                    );
                    self.recycled_move(
                        AccountState::Cleaning,
                        next,
                        catalog::ACCOUNT_CLEANED,
                        event,
                    )
                    .await?;
                    return Ok(());
                }
                Next::Quarantine { reason } => {
                    state.reason = Some(reason.clone());
                    next.state = AccountState::Quarantined;
                    next.recycling = Some(state.clone());
                    let event = AccountEvent::of(&next, now).because("CLEANING_FAILED", &reason);
                    tracing::warn!(request_id = %account.id, account_id, reason, "quarantined");
                    self.recycled_move(
                        AccountState::Cleaning,
                        next,
                        catalog::ACCOUNT_QUARANTINED,
                        event,
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Moves the account to the pool's OU and takes off what its lease
    /// left on it: the freeze SCP, and its template version's guardrails
    /// (the next lease gets its own). Returns the pool's OU.
    async fn enter_pool(
        &self,
        recycling: &AccountRecycling,
        account: &Account,
        account_id: &str,
    ) -> Result<String, AccountError> {
        let ou = self
            .with_retries(|| self.organization.ensure_ou(&POOL_OU))
            .await?;
        self.with_retries(|| self.organization.move_account(account_id, &ou))
            .await?;
        let attached = self
            .with_retries(|| self.organization.policies_of(account_id))
            .await?;
        let mut ours = Vec::new();
        if !account.frozen_by.is_empty() {
            let document = recycling.freeze.policy().map_err(|e| {
                AccountError::Invalid(crate::validation::invalid(None, &e.to_string()))
            })?;
            ours.push((crate::budgets::FREEZE_POLICY.to_string(), document));
        }
        if let Some((scope, guardrails)) = self.account_guardrails(account).await? {
            ours.extend(
                guardrails
                    .named_policies(&scope)
                    .map_err(|e| AccountError::Invalid(e.into()))?,
            );
        }
        for (name, document) in &ours {
            let id = self
                .with_retries(|| {
                    self.organization
                        .ensure_policy(name, "Purser: kept by name", document)
                })
                .await?;
            if attached.contains(&id) {
                self.with_retries(|| self.organization.detach_policy(&id, account_id))
                    .await?;
            }
        }
        tracing::info!(request_id = %account.id, account_id, ou, "moved to the pool");
        Ok(ou)
    }

    /// Starts the cleaning's next run with the account's configuration. A
    /// configuration that cannot be made, or a run the cleaner refuses,
    /// is recorded as a failed run (an admin hears of it at quarantine).
    async fn start_run(
        &self,
        recycling: &AccountRecycling,
        account: &Account,
        account_id: &str,
        state: &Recycling,
    ) -> Result<CleaningRun, AccountError> {
        let now = self.clock.now();
        let (pass, attempt) = (state.progress.pass(), state.progress.attempt());
        let regions = match self.recycling_template(account).await? {
            Some(t) if !t.regions.is_empty() => t.regions,
            _ => recycling.regions.clone(),
        };
        let target = NukeTarget {
            account_id: account_id.to_string(),
            regions,
            blocklist: recycling.blocklist.clone(),
            protected: recycling.protected.clone(),
        };
        let started = match target.config() {
            Ok(config) => {
                recycling
                    .cleaner
                    .start(account_id, &config, pass, attempt)
                    .await
            }
            Err(e) => Err(CleanerError::Refused(format!(
                "no aws-nuke configuration: {e}"
            ))),
        };
        let id = match started {
            Ok(id) => id,
            Err(e) if e.is_retryable() => return Err(cleaner_error(e)),
            // Recorded as a run that failed at once (`failed:` ids are
            // answered as failed below, never asked of the cleaner).
            Err(e) => format!("failed:{e}"),
        };
        tracing::info!(request_id = %account.id, account_id, run = %id, pass, attempt, "cleaning run started");
        Ok(CleaningRun {
            id,
            account_id: account_id.to_string(),
            pass,
            attempt,
            started_at: now,
        })
    }

    /// Lent accounts: a request that took one and is ready ends the
    /// pooled request (`AccountRecycled`); one that is gone without it
    /// gives the account back to the pool.
    async fn settle_loans(&self) -> Result<(), AccountError> {
        for pooled in self
            .accounts
            .accounts_in_state(AccountState::Available)
            .await?
        {
            let Some(lent_to) = pooled.recycling.as_ref().and_then(|r| r.lent_to.clone()) else {
                continue;
            };
            let taker = self.accounts.account(&lent_to).await?;
            match taker {
                Some(t) if t.state == AccountState::Requested => {}
                Some(t)
                    if t.account_id.is_some()
                        && t.account_id == pooled.account_id
                        && t.recycled_from.as_deref() == Some(pooled.id.as_str()) =>
                {
                    self.hand_over(pooled, &t).await?;
                }
                _ => {
                    // The request went away before it was ready: the
                    // account may be in its team's OU already.
                    if let Some(account_id) = &pooled.account_id {
                        let ou = self
                            .with_retries(|| self.organization.ensure_ou(&POOL_OU))
                            .await?;
                        self.with_retries(|| self.organization.move_account(account_id, &ou))
                            .await?;
                    }
                    let mut next = pooled.next_revision();
                    if let Some(r) = next.recycling.as_mut() {
                        r.lent_to = None;
                    }
                    next.updated_at = self.clock.now();
                    self.accounts
                        .transition(AccountState::Available, &next)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The pooled request ends: its account serves `taker` now.
    async fn hand_over(&self, pooled: Account, taker: &Account) -> Result<(), AccountError> {
        let now = self.clock.now();
        let mut next = pooled.next_revision();
        next.state = AccountState::Closed;
        next.updated_at = now;
        let event = AccountEvent::of(&next, now).because(
            "LENT",
            &format!(
                "its account, cleaned and cooled, was lent to request {} of team {}",
                taker.id, taker.team
            ),
        );
        self.recycled_move(
            AccountState::Available,
            next,
            catalog::ACCOUNT_RECYCLED,
            event,
        )
        .await?;
        Ok(())
    }

    /// Closes available accounts beyond their template's `pool_size`,
    /// oldest first, as far as the rolling closure quota has room (what is
    /// closing already counts); `close_pending` then calls `CloseAccount`.
    async fn shrink_pools(&self) -> Result<(), AccountError> {
        let Some(templates) = &self.templates else {
            return Ok(());
        };
        let mut by_template: BTreeMap<TemplateName, Vec<Account>> = BTreeMap::new();
        for account in self
            .accounts
            .accounts_in_state(AccountState::Available)
            .await?
        {
            if let Some(reference) = &account.template
                && account
                    .recycling
                    .as_ref()
                    .is_some_and(|r| r.lent_to.is_none())
            {
                by_template
                    .entry(reference.name.clone())
                    .or_default()
                    .push(account);
            }
        }
        let mut room: Option<u32> = None;
        for (name, mut accounts) in by_template {
            let size = templates
                .template(&name)
                .await?
                .map(|t| {
                    if t.lease_end == LeaseEnd::Recycle {
                        t.pool_size
                    } else {
                        0
                    }
                })
                .unwrap_or(0) as usize;
            if accounts.len() <= size {
                continue;
            }
            let room = match room {
                Some(room) => room,
                None => *room.insert(self.closure_room().await?),
            };
            // The longest available stay, the first to go.
            accounts
                .sort_by_key(|a| (a.updated_at, a.recycling.as_ref().map(|r| r.lease_ended_at)));
            let excess = (accounts.len() - size).min(room as usize);
            for account in accounts.into_iter().take(excess) {
                let now = self.clock.now();
                let mut next = account.next_revision();
                next.state = AccountState::Closing;
                next.updated_at = now;
                let event = AccountEvent::of(&next, now).because(
                    "POOL_FULL",
                    &format!("template {name}'s pool keeps {size} available accounts"),
                );
                self.recycled_move(
                    AccountState::Available,
                    next,
                    catalog::ACCOUNT_CLOSE_REQUESTED,
                    event,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// How many more closures the rolling 30-day quota allows, counting
    /// the accounts waiting to be closed.
    async fn closure_room(&self) -> Result<u32, AccountError> {
        let now = self.clock.now();
        let members = self
            .with_retries(|| self.organization.member_account_count())
            .await?;
        let used = self
            .accounts
            .closures_since(now - super::service::CLOSURE_WINDOW)
            .await?;
        let waiting = self
            .accounts
            .accounts_in_state(AccountState::Closing)
            .await?
            .iter()
            .filter(|a| a.closure_started_at.is_none())
            .count() as u32;
        Ok(closure_quota(members).saturating_sub(used + waiting))
    }

    // ------------------------------------------------------------ vend

    /// Serves `account` (requested, of a recycling template) with an
    /// available account of its template's pool, if there is one: claimed
    /// (`lent_to`), placed in the team's OU, tagged, guarded, granted, and
    /// `AccountReady`; the pooled request then ends. `None`: the pool is
    /// empty, create an account.
    pub(super) async fn serve_from_pool(
        &self,
        account: &Account,
    ) -> Result<Option<Started>, AccountError> {
        let Some(template) = self.recycling_template(account).await? else {
            return Ok(None);
        };
        let mut pool: Vec<Account> = self
            .accounts
            .accounts_in_state(AccountState::Available)
            .await?
            .into_iter()
            .filter(|a| {
                a.template.as_ref().is_some_and(|t| t.name == template.name)
                    && a.account_id.is_some()
            })
            .collect();
        // One this request claimed before (a retry) first, then the
        // longest available.
        pool.sort_by_key(|a| {
            let lent = a.recycling.as_ref().and_then(|r| r.lent_to.as_deref());
            (lent != Some(account.id.as_str()), a.updated_at)
        });
        for pooled in pool {
            let lent = pooled.recycling.as_ref().and_then(|r| r.lent_to.clone());
            let claimed = match lent.as_deref() {
                Some(id) if id == account.id => pooled,
                Some(_) => continue,
                None => {
                    let mut next = pooled.next_revision();
                    if let Some(r) = next.recycling.as_mut() {
                        r.lent_to = Some(account.id.clone());
                    }
                    next.updated_at = self.clock.now();
                    if self
                        .accounts
                        .transition(AccountState::Available, &next)
                        .await?
                        != Transitioned::Applied
                    {
                        continue;
                    }
                    next
                }
            };
            let account_id = claimed.account_id.clone().unwrap_or_default();
            tracing::info!(request_id = %account.id, pooled = %claimed.id, account_id,
                template = %template.name, "served from the pool");
            let mut taker = account.clone();
            taker.recycled_from = Some(claimed.id.clone());
            // The account's creation, as AccountReady reports it.
            taker.creation_id = claimed.creation_id.clone();
            let ou = self.place(&taker, &account_id).await?;
            let outcome = self
                .become_ready(AccountState::Requested, taker, account_id, ou, None)
                .await?;
            if outcome == Transitioned::Applied {
                let taker = self.accounts.account(&account.id).await?;
                if let Some(taker) = taker {
                    self.hand_over(claimed, &taker).await?;
                }
                return Ok(Some(Started::Started));
            }
            // The request moved on (withdrawn): the reaper gives the
            // account back to the pool.
            return Ok(Some(Started::Skipped));
        }
        Ok(None)
    }

    // ------------------------------------------------------------ the API

    /// `POST /accounts/{id}/release` (admins): a quarantined account,
    /// looked at, cools and then is lent again.
    pub async fn release(&self, id: &str, caller: &Caller) -> Result<Account, AccountError> {
        if !caller.admin {
            return Err(AccountError::Forbidden(
                "only platform admins may release a quarantined account".into(),
            ));
        }
        for _ in 0..STALE_RETRIES {
            let account = self
                .accounts
                .account(id)
                .await?
                .ok_or_else(|| AccountError::NotFound(format!("no account request {id}")))?;
            if account.state != AccountState::Quarantined {
                return Err(AccountError::Conflict {
                    code: "illegal_transition",
                    message: format!(
                        "account {id} is {}; only a quarantined account can be released",
                        account.state
                    ),
                });
            }
            let now = self.clock.now();
            let mut next = account.next_revision();
            next.state = AccountState::Cooling;
            next.updated_at = now;
            if let Some(r) = next.recycling.as_mut() {
                r.released_by = Some(caller.principal.clone());
                r.run = None;
            }
            let until = next
                .recycling
                .as_ref()
                .map(|r| rfc3339(r.cooling_until))
                .unwrap_or_default();
            let event = AccountEvent::of(&next, now).because(
                "RELEASED",
                &format!(
                    "released by {} after a look; it is lent again once cooled (until {until})",
                    caller.principal
                ),
            );
            let (outcome, next) = transition_announcing(
                self.accounts.as_ref(),
                self.bus.as_ref(),
                AccountState::Quarantined,
                next,
                vec![Announcement::of(catalog::ACCOUNT_RELEASED, event)],
            )
            .await?;
            if outcome == Transitioned::Applied {
                return Ok(next);
            }
        }
        Err(AccountError::Conflict {
            code: "changed",
            message: format!("account {id} kept changing; try again"),
        })
    }

    /// `GET /pool` (admins): each recycling template's pool, by state,
    /// with its accounts' ages and what is cleaning or quarantined.
    pub async fn pool(&self, caller: &Caller) -> Result<Value, AccountError> {
        if !caller.admin {
            return Err(AccountError::Forbidden(
                "only platform admins may see the pools".into(),
            ));
        }
        let now = self.clock.now();
        let mut pools: BTreeMap<String, (Option<LeaseTemplate>, Vec<Account>)> = BTreeMap::new();
        if let Some(templates) = &self.templates {
            for t in templates.templates().await? {
                if t.lease_end == LeaseEnd::Recycle {
                    pools.insert(t.name.to_string(), (Some(t), Vec::new()));
                }
            }
        }
        for state in AccountState::POOL {
            for account in self.accounts.accounts_in_state(state).await? {
                let name = account
                    .template
                    .as_ref()
                    .map(|t| t.name.to_string())
                    .unwrap_or_default();
                pools.entry(name).or_default().1.push(account);
            }
        }
        let hours = |since: DateTime<Utc>| (now - since).num_minutes() as f64 / 60.0;
        let views: Vec<Value> = pools
            .into_iter()
            .map(|(name, (template, accounts))| {
                let mut counts = serde_json::Map::new();
                for state in AccountState::POOL {
                    let n = accounts.iter().filter(|a| a.state == state).count();
                    counts.insert(state.as_str().into(), json!(n));
                }
                let oldest = |state: AccountState| {
                    accounts
                        .iter()
                        .filter(|a| a.state == state)
                        .map(|a| hours(a.updated_at))
                        .fold(None, |m: Option<f64>, h| Some(m.map_or(h, |m| m.max(h))))
                };
                let listed: Vec<Value> = accounts
                    .iter()
                    .map(|a| {
                        let r = a.recycling.as_ref();
                        json!({
                            "request_id": a.id,
                            "account_id": a.account_id,
                            "state": a.state,
                            "since": rfc3339(a.updated_at),
                            "hours_in_state": round1(hours(a.updated_at)),
                            "hours_since_lease_end": r.map(|r| round1(hours(r.lease_ended_at))),
                            "cooling_until": r.map(|r| rfc3339(r.cooling_until)),
                            "clean_passes": r.map(|r| r.progress.clean_in_a_row()),
                            "failed_runs": r.map(|r| r.progress.failed_runs()),
                            "reason": r.and_then(|r| r.reason.clone()),
                            "lent_to": r.and_then(|r| r.lent_to.clone()),
                        })
                    })
                    .collect();
                json!({
                    "template": name,
                    "pool_size": template.as_ref().map(|t| t.pool_size),
                    "cooling_hours": template.as_ref().map(|t| t.cooling_hours),
                    "counts": counts,
                    "oldest_available_hours": oldest(AccountState::Available).map(round1),
                    "oldest_cooling_hours": oldest(AccountState::Cooling).map(round1),
                    "accounts": listed,
                })
            })
            .collect();
        Ok(json!({"pools": views, "at": rfc3339(now)}))
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn cleaner_error(e: CleanerError) -> AccountError {
    AccountError::Cleaner(e)
}

/// Errors worth leaving for the next run of the schedule rather than
/// stopping the others' progress.
fn is_passing(e: &AccountError) -> bool {
    matches!(
        e,
        AccountError::Store(_)
            | AccountError::Organization(_)
            | AccountError::Bus(_)
            | AccountError::Cleaner(_)
    )
}

/// The status of a run the cleaner never started (see `start_run`).
fn unstarted(run_id: &str) -> Option<CleaningStatus> {
    run_id
        .strip_prefix("failed:")
        .map(|reason| CleaningStatus::Failed {
            reason: reason.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::accounts::{NewAccount, Team, TeamName};
    use crate::fakes::{
        FakeAccounts, FakeBus, FakeCleaner, FakeMarkers, FakeOrganization, FakeTemplates, locked,
    };
    use crate::ports::{AccountStore, Clock, CreationState, CreationStatus, ManualClock};

    const ANA: &str = "arn:aws:iam::123456789012:user/ana";

    struct World {
        service: Accounts,
        store: Arc<FakeAccounts>,
        org: Arc<FakeOrganization>,
        cleaner: Arc<FakeCleaner>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    fn payments() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    fn ana() -> Caller {
        Caller {
            principal: ANA.into(),
            admin: false,
        }
    }

    fn admin() -> Caller {
        Caller {
            principal: "arn:aws:iam::123456789012:role/platform".into(),
            admin: true,
        }
    }

    fn recycling(cleaner: Arc<FakeCleaner>) -> AccountRecycling {
        AccountRecycling {
            cleaner,
            regions: vec!["us-east-1".into()],
            blocklist: vec!["123456789012".into()],
            protected: Protected::default(),
            freeze: FreezeExemptions {
                break_glass_roles: vec![],
                purser_role: "OrganizationAccountAccessRole".into(),
                control_tower: false,
            },
        }
    }

    /// Team payments (ana, quota 3) and template `sandbox`, which recycles
    /// with `pool_size` 1, cooling 72 hours.
    async fn world() -> World {
        let store = Arc::new(FakeAccounts::default());
        let mut team = Team::unconfigured(payments());
        team.quota = 3;
        team.members = vec![ANA.into()];
        locked(&store.teams).insert(payments(), team);
        let templates = Arc::new(FakeTemplates::default());
        let org = Arc::new(FakeOrganization::default());
        let cleaner = Arc::new(FakeCleaner::default());
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
        let service = Accounts::new(
            store.clone(),
            Arc::new(FakeMarkers::default()),
            org.clone(),
            bus.clone(),
            clock.clone(),
        )
        .with_templates(templates)
        .with_recycling(recycling(cleaner.clone()));
        let body = json!({"description": "sandboxes", "default_lease_days": 7,
            "lease_end": "recycle", "pool_size": 1});
        let template =
            LeaseTemplate::from_json(TemplateName::parse("sandbox").unwrap(), &body, clock.now())
                .unwrap();
        service.put_template(template, &admin()).await.unwrap();
        World {
            service,
            store,
            org,
            cleaner,
            bus,
            clock,
        }
    }

    impl World {
        fn stored(&self, id: &str) -> Account {
            self.store.get(id).unwrap()
        }

        async fn ask(&self) -> Account {
            let input = NewAccount {
                team: payments(),
                owner: "ana@example.com".into(),
                purpose: "sandbox".into(),
                lease_days: None,
                template: Some(TemplateName::parse("sandbox").unwrap()),
            };
            self.service.request(input, &ana(), None).await.unwrap().0
        }

        /// A request served: from the pool, or created as `account_id`.
        async fn lease(&self, account_id: &str) -> Account {
            let account = self.ask().await;
            assert_eq!(
                self.service.start_creation(&account.id).await.unwrap(),
                Started::Started
            );
            let stored = self.stored(&account.id);
            if let Some(creation) = stored.creation_id.clone() {
                self.service
                    .complete_creation(&CreationStatus {
                        id: creation,
                        state: CreationState::Succeeded,
                        account_id: Some(account_id.into()),
                        failure_reason: None,
                    })
                    .await
                    .unwrap();
            }
            let ready = self.stored(&account.id);
            assert_eq!(ready.state, AccountState::Ready);
            ready
        }
    }

    #[tokio::test]
    async fn a_recycled_lease_is_cleaned_twice_cooled_and_lent_again_from_the_pool() {
        let w = world().await;
        let first = w.lease("222222222222").await;
        assert_eq!(w.org.calls_of("create_account").len(), 1);

        // The lease ends: cleaning, not closing; sign-in removed.
        w.clock.advance(Duration::days(7));
        w.service.reap().await.unwrap();
        let cleaning = w.stored(&first.id);
        assert_eq!(cleaning.state, AccountState::Cooling, "{cleaning:#?}");
        assert!(w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED).is_empty());
        let started = w.bus.of(catalog::ACCOUNT_CLEANING_STARTED);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0]["reason_code"], "LEASE_ENDED");
        assert!(w.org.calls_of("close_account").is_empty());
        // Moved to the pool's OU, cleaned in two passes with its config.
        assert_eq!(
            w.org.calls_of("move_account").last().unwrap(),
            "move_account 222222222222 ou-purser-_pool"
        );
        assert_eq!(
            *locked(&w.cleaner.starts),
            [
                ("222222222222".to_string(), 1, 1),
                ("222222222222".to_string(), 2, 1)
            ]
        );
        let config: Value = serde_json::from_str(&locked(&w.cleaner.configs)[0]).unwrap();
        assert_eq!(config["regions"], json!(["global", "us-east-1"]));
        assert_eq!(config["blocklist"], json!(["123456789012"]));
        assert_eq!(w.bus.of(catalog::ACCOUNT_CLEANED).len(), 1);
        // A pooled account counts against no quota.
        assert_eq!(w.store.open_accounts(&payments()).await.unwrap(), 0);

        // Cooling: 72 hours after the lease ended, not before.
        w.clock.advance(Duration::hours(71));
        w.service.reap().await.unwrap();
        assert_eq!(w.stored(&first.id).state, AccountState::Cooling);
        w.clock.advance(Duration::hours(1));
        w.service.reap().await.unwrap();
        assert_eq!(w.stored(&first.id).state, AccountState::Available);
        assert_eq!(w.bus.of(catalog::ACCOUNT_AVAILABLE).len(), 1);
        // Again: nothing more.
        w.service.reap().await.unwrap();
        assert_eq!(w.bus.of(catalog::ACCOUNT_AVAILABLE).len(), 1);
        assert_eq!(locked(&w.cleaner.starts).len(), 2);

        // The next request is served from the pool: no account created.
        let second = w.lease("999999999999").await;
        assert_eq!(w.org.calls_of("create_account").len(), 1);
        assert_eq!(second.account_id.as_deref(), Some("222222222222"));
        assert_eq!(second.recycled_from.as_deref(), Some(first.id.as_str()));
        assert_eq!(second.ou.as_deref(), Some("ou-purser-payments"));
        assert_eq!(
            w.org.calls_of("move_account").last().unwrap(),
            "move_account 222222222222 ou-purser-payments"
        );
        let pooled = w.stored(&first.id);
        assert_eq!(pooled.state, AccountState::Closed);
        let recycled = w.bus.of(catalog::ACCOUNT_RECYCLED);
        assert_eq!(recycled.len(), 1);
        assert_eq!(recycled[0]["reason_code"], "LENT");
        assert_eq!(w.bus.of(catalog::ACCOUNT_READY).len(), 2);
        // The account is the new request's now.
        let holder = w
            .store
            .account_by_account_id("222222222222")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder.id, second.id);
        // With the pool empty, the next request makes an account.
        w.lease("333333333333").await;
        assert_eq!(w.org.calls_of("create_account").len(), 2);
    }

    #[tokio::test]
    async fn three_failed_runs_quarantine_until_an_admin_releases() {
        let w = world().await;
        let first = w.lease("222222222222").await;
        let failed = |r: &str| CleaningStatus::Failed { reason: r.into() };
        locked(&w.cleaner.outcomes).extend([
            failed("S3Bucket in use"),
            CleaningStatus::Succeeded,
            failed("again"),
            failed("VPC has dependencies"),
        ]);
        // Ended early by its requester: the same path as the lease's end.
        let ended = w.service.close(&first.id, &ana()).await.unwrap();
        assert_eq!(ended.state, AccountState::Cleaning);
        let again = w.service.close(&first.id, &ana()).await.unwrap();
        assert_eq!(again.state, AccountState::Cleaning, "harmless");
        assert_eq!(w.bus.of(catalog::ACCOUNT_CLEANING_STARTED).len(), 1);
        w.service.reap().await.unwrap();
        let quarantined = w.stored(&first.id);
        assert_eq!(quarantined.state, AccountState::Quarantined);
        let r = quarantined.recycling.as_ref().unwrap();
        assert_eq!(r.progress.failed_runs(), 3);
        assert_eq!(
            r.reason.as_deref(),
            Some("3 cleaning runs failed; the last: VPC has dependencies")
        );
        let events = w.bus.of(catalog::ACCOUNT_QUARANTINED);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["reason_code"], "CLEANING_FAILED");
        w.service.reap().await.unwrap();
        assert_eq!(locked(&w.cleaner.starts).len(), 4, "no more runs");

        // Not for developers: released by an admin, it cools and is lent.
        assert!(matches!(
            w.service.release(&first.id, &ana()).await,
            Err(AccountError::Forbidden(_))
        ));
        assert!(matches!(
            w.service.close(&first.id, &ana()).await,
            Err(AccountError::Forbidden(_))
        ));
        let released = w.service.release(&first.id, &admin()).await.unwrap();
        assert_eq!(released.state, AccountState::Cooling);
        assert!(matches!(
            w.service.release(&first.id, &admin()).await,
            Err(AccountError::Conflict { .. })
        ));
        assert_eq!(w.bus.of(catalog::ACCOUNT_RELEASED).len(), 1);
        w.clock.advance(Duration::hours(72));
        w.service.reap().await.unwrap();
        assert_eq!(w.stored(&first.id).state, AccountState::Available);
    }

    #[tokio::test]
    async fn the_reaper_closes_available_accounts_above_the_pool_size() {
        let w = world().await;
        let a = w.lease("222222222222").await;
        let b = w.lease("333333333333").await;
        for account in [&a, &b] {
            w.service.close(&account.id, &ana()).await.unwrap();
            w.clock.advance(Duration::minutes(1));
        }
        w.clock.advance(Duration::hours(73));
        w.service.reap().await.unwrap();
        // Two available, a pool of 1: the one available longest closes.
        let (a, b) = (w.stored(&a.id), w.stored(&b.id));
        assert_eq!(a.state, AccountState::Closing);
        assert_eq!(b.state, AccountState::Available);
        let closing = w.bus.of(catalog::ACCOUNT_CLOSE_REQUESTED);
        assert_eq!(closing.len(), 1);
        assert_eq!(closing[0]["reason_code"], "POOL_FULL");
        assert_eq!(
            w.org.calls_of("close_account"),
            ["close_account 222222222222"]
        );
        let view = w.service.pool(&admin()).await.unwrap();
        let pool = &view["pools"][0];
        assert_eq!(pool["template"], "sandbox");
        assert_eq!(pool["counts"]["available"], 1);
        assert_eq!(pool["pool_size"], 1);
        assert!(matches!(
            w.service.pool(&ana()).await,
            Err(AccountError::Forbidden(_))
        ));
    }

    #[tokio::test]
    async fn a_closing_template_still_closes() {
        let w = world().await;
        let body = json!({"description": "short", "default_lease_days": 1});
        let template =
            LeaseTemplate::from_json(TemplateName::parse("short").unwrap(), &body, w.clock.now())
                .unwrap();
        w.service.put_template(template, &admin()).await.unwrap();
        let input = NewAccount {
            team: payments(),
            owner: "ana@example.com".into(),
            purpose: "short".into(),
            lease_days: None,
            template: Some(TemplateName::parse("short").unwrap()),
        };
        let account = w.service.request(input, &ana(), None).await.unwrap().0;
        w.service.start_creation(&account.id).await.unwrap();
        let creation = w.stored(&account.id).creation_id.unwrap();
        w.service
            .complete_creation(&CreationStatus {
                id: creation,
                state: CreationState::Succeeded,
                account_id: Some("444444444444".into()),
                failure_reason: None,
            })
            .await
            .unwrap();
        let closing = w.service.close(&account.id, &ana()).await.unwrap();
        assert_eq!(closing.state, AccountState::Closing);
        assert!(w.bus.of(catalog::ACCOUNT_CLEANING_STARTED).is_empty());
    }
}
