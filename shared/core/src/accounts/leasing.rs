//! What `Accounts` does with lease templates: the terms a request gets
//! from its template (the lease, whether an approver must say yes), the
//! templates themselves, approvals and denials, extensions, and requests
//! that waited too long.
//!
//! An account keeps `template: {name, version}` and the template keeps
//! every version (`TemplateStore`), rather than a copy of the template in
//! each account: accounts stay small, the terms an account was given are
//! read back exactly (its version is never rewritten), and a template's
//! history is there to audit. Changing a template never changes a running
//! lease: an extension is weighed against the version the account has.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::accounts::{
    Account, AccountError, AccountState, Accounts, Caller, NewAccount, Team, TeamName,
};
use crate::events::Announcement;
use crate::events::announce::transition_announcing;
use crate::events::catalog::{self, AccountEvent};
use crate::leases::{
    AUTO_APPROVER, Decision, EXPIRY, Facts, LeaseTemplate, MAX_LEASE_DAYS, Outcome,
    PendingExtension, TemplateName, Verdict,
};
use crate::ports::{Marker, TemplateStore, Transitioned};
use crate::validation::invalid;

/// How long a request or an extension waits for an approver by default.
pub const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::days(7);

/// What a request gets from its template.
pub(super) struct Terms {
    template: Option<LeaseTemplate>,
    verdict: Verdict,
}

/// `AccountApprovalRequested` for a request waiting for an approver.
pub(crate) fn approval_requested(account: &Account, at: DateTime<Utc>) -> AccountEvent {
    let why = account
        .decision
        .as_ref()
        .and_then(|d| d.reason.clone())
        .unwrap_or_else(|| "the template asks an approver".into());
    AccountEvent::of(account, at).because("APPROVAL_REQUIRED", &why)
}

impl Terms {
    /// Gives the new request its template and state, and returns the
    /// events that announce it: `AccountRequested` (after
    /// `AccountApproved` when the template's rules approved it), or
    /// `AccountApprovalRequested`.
    pub(super) fn apply(self, account: &mut Account, now: DateTime<Utc>) -> Vec<Announcement> {
        account.template = self.template.as_ref().map(LeaseTemplate::reference);
        match self.verdict {
            Verdict::Approved { rule: None } => vec![Announcement::of(
                catalog::ACCOUNT_REQUESTED,
                AccountEvent::of(account, now),
            )],
            Verdict::Approved { rule: Some(rule) } => {
                account.decision = Some(Decision {
                    outcome: Outcome::Approved,
                    by: AUTO_APPROVER.into(),
                    reason: None,
                    rule: Some(rule.clone()),
                    extension_days: None,
                    at: now,
                });
                account.remember(catalog::ACCOUNT_APPROVED);
                vec![
                    Announcement::of(
                        catalog::ACCOUNT_APPROVED,
                        AccountEvent::of(account, now).decided_by(AUTO_APPROVER, Some(&rule)),
                    ),
                    Announcement::of(catalog::ACCOUNT_REQUESTED, AccountEvent::of(account, now)),
                ]
            }
            Verdict::Ask { why } => {
                account.state = AccountState::PendingApproval;
                // The lease starts when it is approved.
                account.lease_end = None;
                account.decision = Some(Decision {
                    outcome: Outcome::Pending,
                    by: account.requested_by.clone(),
                    reason: Some(why),
                    rule: None,
                    extension_days: None,
                    at: now,
                });
                account.timeline.clear();
                account.remember(catalog::ACCOUNT_APPROVAL_REQUESTED);
                vec![Announcement::of(
                    catalog::ACCOUNT_APPROVAL_REQUESTED,
                    approval_requested(account, now),
                )]
            }
        }
    }
}

impl Accounts {
    /// Lease templates, which requests may name.
    pub fn with_templates(mut self, templates: Arc<dyn TemplateStore>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// How long a request or extension waits for an approver.
    pub fn with_approval_expiry(mut self, expiry: Duration) -> Self {
        self.approval_expiry = expiry;
        self
    }

    /// The permission set `account`'s lease template version gives its
    /// owner, by name (none: the deployment's developer set).
    pub(super) async fn template_permission_set(
        &self,
        account: &Account,
    ) -> Result<Option<String>, AccountError> {
        let (Some(reference), Some(templates)) = (&account.template, &self.templates) else {
            return Ok(None);
        };
        Ok(templates
            .template_version(&reference.name, reference.version)
            .await?
            .and_then(|t| t.permission_set))
    }

    fn template_store(&self) -> Result<&Arc<dyn TemplateStore>, AccountError> {
        self.templates.as_ref().ok_or_else(|| {
            AccountError::Invalid(invalid(
                Some("template"),
                "this Purser has no lease templates",
            ))
        })
    }

    /// Puts the events of a change stored with `insert_account` (which
    /// stores none): the first put, its retry says them again.
    pub(super) async fn put_events(
        &self,
        account: &Account,
        events: Vec<Announcement>,
    ) -> Result<(), AccountError> {
        for event in &events {
            tracing::info!(request_id = %account.id, team = %account.team,
                state = %account.state, detail_type = %event.detail_type, "account event");
        }
        let entries = events
            .iter()
            .map(|a| a.event.entry(&a.detail_type))
            .collect();
        Ok(self.bus.put(entries).await?)
    }

    /// The request's terms: its template (named, or the team's default),
    /// the lease it defaults and bounds, and whether it needs approval.
    pub(super) async fn lease_terms(
        &self,
        mut input: NewAccount,
        team: &Team,
        caller: &Caller,
    ) -> Result<(NewAccount, Terms), AccountError> {
        let Some(name) = input
            .template
            .clone()
            .or_else(|| team.leases.default_template.clone())
        else {
            let terms = Terms {
                template: None,
                verdict: Verdict::Approved { rule: None },
            };
            return Ok((input, terms));
        };
        let template = self
            .template_store()?
            .template(&name)
            .await?
            .ok_or_else(|| {
                AccountError::Invalid(invalid(
                    Some("template"),
                    &format!("there is no template {name}; GET /templates lists them"),
                ))
            })?;
        if !template.allows(&team.name) {
            return Err(AccountError::Invalid(invalid(
                Some("template"),
                &format!(
                    "template {name} is not for team {}: it is for {}",
                    team.name,
                    template
                        .teams
                        .iter()
                        .flatten()
                        .map(TeamName::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
        let lease_days = input.lease_days.unwrap_or(template.default_lease_days);
        if lease_days > template.max_lease_days {
            return Err(AccountError::Invalid(invalid(
                Some("lease_days"),
                &format!(
                    "lease_days must be at most {} for template {name} (asked for {lease_days}); ask for an extension later",
                    template.max_lease_days
                ),
            )));
        }
        input.lease_days = Some(lease_days);
        input.template = Some(name);
        let facts = self.facts(&input, team, caller, &template).await?;
        let verdict = template.approval.decide(&facts);
        Ok((
            input,
            Terms {
                template: Some(template),
                verdict,
            },
        ))
    }

    async fn facts(
        &self,
        input: &NewAccount,
        team: &Team,
        caller: &Caller,
        template: &LeaseTemplate,
    ) -> Result<Facts, AccountError> {
        let open_accounts = self.accounts.open_accounts(&team.name).await?;
        let owner_has_frozen_account = self
            .accounts
            .team_accounts_in(&team.name, &[AccountState::Frozen])
            .await?
            .iter()
            .any(|a| {
                a.owner.eq_ignore_ascii_case(&input.owner) || caller.requested(&a.requested_by)
            });
        Ok(Facts {
            lease_days: input.lease_days,
            open_accounts,
            quota: team.quota,
            owner_has_frozen_account,
            budget_amount: template.budget.as_ref().map(|b| b.amount),
        })
    }

    // ------------------------------------------------------------ templates

    /// `PUT /templates/{name}` (admins): stores the next version, on the
    /// condition that no other change came first (`Conflict` then).
    pub async fn put_template(
        &self,
        mut template: LeaseTemplate,
        caller: &Caller,
    ) -> Result<LeaseTemplate, AccountError> {
        if !caller.admin {
            return Err(AccountError::Forbidden(
                "only platform admins may change a lease template".into(),
            ));
        }
        // Its accounts' guardrails must fit the SCP limits: refused now,
        // naming `regions`, rather than when an account becomes ready.
        if let Some(setting) = &self.guardrails {
            setting
                .guardrails
                .for_regions(&template.regions)
                .and_then(|g| g.policies())
                .map_err(|e| AccountError::Invalid(e.into()))?;
        }
        // Its permission set must be one Identity Center has (the
        // simulation, locally): refused now, naming `permission_set`,
        // rather than each account's owner left without access.
        if let Some(name) = &template.permission_set
            && self.access.configured()
            && self.access.permission_set(name).await?.is_none()
        {
            return Err(AccountError::Invalid(invalid(
                Some("permission_set"),
                &format!(
                    "IAM Identity Center has no permission set named {name}: create it in the instance first, or name another"
                ),
            )));
        }
        let store = self.template_store()?;
        let current = store.template(&template.name).await?;
        template.version = current.map_or(1, |c| c.version + 1);
        if !store.put_template(&template).await? {
            return Err(AccountError::Conflict {
                code: "conflict",
                message: format!(
                    "template {} was changed by someone else meanwhile; read it again and retry",
                    template.name
                ),
            });
        }
        tracing::info!(template = %template.name, version = template.version, by = %caller.principal, "template updated");
        Ok(template)
    }

    /// `GET /templates/{name}`: anyone may read templates, to choose one.
    pub async fn template(&self, name: &TemplateName) -> Result<LeaseTemplate, AccountError> {
        self.template_store()?
            .template(name)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("no template {name}")))
    }

    /// `GET /templates`: the latest version of each, by name.
    pub async fn templates(&self) -> Result<Vec<LeaseTemplate>, AccountError> {
        match &self.templates {
            Some(store) => Ok(store.templates().await?),
            None => Ok(Vec::new()),
        }
    }

    // ------------------------------------------------------------ approvals

    /// Whether `caller` may decide on `account`: a platform admin, or an
    /// approver of its team who did not ask for it.
    async fn check_approver(&self, account: &Account, caller: &Caller) -> Result<(), AccountError> {
        if caller.admin {
            return Ok(());
        }
        let team = self.team_or_default(&account.team).await?;
        if !team.leases.approvers.iter().any(|a| caller.is(a)) {
            return Err(AccountError::Forbidden(format!(
                "{} is no approver of team {}: platform admins and the team's approvers (PUT /teams/{} \"approvers\") decide",
                caller.principal, account.team, account.team
            )));
        }
        let asked = match &account.pending_extension {
            Some(extension) => &extension.requested_by,
            None => &account.requested_by,
        };
        if caller.requested(asked) {
            return Err(AccountError::Forbidden(
                "an approver may not approve or deny what they asked for themselves".into(),
            ));
        }
        Ok(())
    }

    /// `GET /approvals`: what waits for `caller` to decide (of `team`, or
    /// of every team they approve for), oldest first: requests pending
    /// approval and extensions beyond their template's maximum.
    pub async fn approvals(
        &self,
        team: Option<&TeamName>,
        caller: &Caller,
    ) -> Result<Vec<Account>, AccountError> {
        let mut waiting = self
            .accounts
            .accounts_in_state(AccountState::PendingApproval)
            .await?;
        for state in [AccountState::Ready, AccountState::Frozen] {
            waiting.extend(
                self.accounts
                    .accounts_in_state(state)
                    .await?
                    .into_iter()
                    .filter(|a| a.pending_extension.is_some()),
            );
        }
        let mut mine = Vec::new();
        for account in waiting {
            if team.is_some_and(|t| *t != account.team) {
                continue;
            }
            if caller.admin || self.check_approver(&account, caller).await.is_ok() {
                mine.push(account);
            }
        }
        mine.sort_by_key(|a| a.updated_at);
        Ok(mine)
    }

    /// `POST /accounts/{id}/approve`: a pending request becomes
    /// `requested` (and is announced as any request is, so vend takes it
    /// as it takes every request); a pending extension applies.
    pub async fn approve(
        &self,
        id: &str,
        caller: &Caller,
        reason: Option<String>,
    ) -> Result<Account, AccountError> {
        let account = self.get(id, caller).await?;
        self.check_approver(&account, caller).await?;
        let now = self.clock.now();
        let mut next = account.next_revision();
        next.updated_at = now;
        let decided = |event: AccountEvent| {
            let event = event.decided_by(&caller.principal, None);
            match &reason {
                Some(r) => event.because("APPROVED", r),
                None => event,
            }
        };
        let mut release_warning = false;
        let events = match (account.state, &account.pending_extension) {
            (AccountState::PendingApproval, _) => {
                next.state = AccountState::Requested;
                next.lease_end = next.lease_days.map(|d| now + Duration::days(i64::from(d)));
                next.decision = Some(self.decision(Outcome::Approved, caller, &reason, None, now));
                vec![
                    Announcement::of(
                        catalog::ACCOUNT_APPROVED,
                        decided(AccountEvent::of(&next, now)),
                    ),
                    Announcement::of(catalog::ACCOUNT_REQUESTED, AccountEvent::of(&next, now)),
                ]
            }
            (AccountState::Ready | AccountState::Frozen, Some(extension)) => {
                let days = extension.days;
                extend_lease(&mut next, days);
                next.pending_extension = None;
                next.decision =
                    Some(self.decision(Outcome::Approved, caller, &reason, Some(days), now));
                release_warning = true;
                vec![
                    Announcement::of(
                        catalog::ACCOUNT_APPROVED,
                        decided(AccountEvent::of(&next, now)).extending(days),
                    ),
                    Announcement::of(
                        catalog::LEASE_EXTENDED,
                        AccountEvent::of(&next, now).extending(days),
                    ),
                ]
            }
            _ => return Err(nothing_pending(&account)),
        };
        let next = self.decide(account.state, next, events).await?;
        if release_warning {
            self.rearm_lease_warning(&next).await;
        }
        Ok(next)
    }

    /// `POST /accounts/{id}/deny` with a reason: a pending request is
    /// closed; a pending extension is dropped. The requester reads the
    /// reason on the account (`decision`).
    pub async fn deny(
        &self,
        id: &str,
        caller: &Caller,
        reason: String,
    ) -> Result<Account, AccountError> {
        let account = self.get(id, caller).await?;
        self.check_approver(&account, caller).await?;
        let now = self.clock.now();
        let mut next = account.next_revision();
        next.updated_at = now;
        let reason = Some(reason);
        let events = self.denial(&account, &mut next, &caller.principal, &reason, now)?;
        next.decision = Some(Decision {
            by: caller.principal.clone(),
            ..self.decision(
                Outcome::Denied,
                caller,
                &reason,
                account.pending_extension.as_ref().map(|e| e.days),
                now,
            )
        });
        self.decide(account.state, next, events).await
    }

    /// What a denial (by `by`: an approver, or expiry) does to `next` and
    /// the events that say so.
    fn denial(
        &self,
        account: &Account,
        next: &mut Account,
        by: &str,
        reason: &Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Announcement>, AccountError> {
        let code = if by == EXPIRY {
            "APPROVAL_EXPIRED"
        } else {
            "DENIED"
        };
        let why = reason.clone().unwrap_or_default();
        match (account.state, &account.pending_extension) {
            (AccountState::PendingApproval, _) => {
                next.state = AccountState::Closed;
                next.failure_reason = Some(why.clone());
                Ok(vec![
                    Announcement::of(
                        catalog::ACCOUNT_DENIED,
                        AccountEvent::of(next, now)
                            .decided_by(by, None)
                            .because(code, &why),
                    ),
                    Announcement::of(
                        catalog::ACCOUNT_CLOSED,
                        AccountEvent::of(next, now).because(code, &why),
                    ),
                ])
            }
            (AccountState::Ready | AccountState::Frozen, Some(extension)) => {
                next.pending_extension = None;
                Ok(vec![Announcement::of(
                    catalog::ACCOUNT_DENIED,
                    AccountEvent::of(next, now)
                        .decided_by(by, None)
                        .because(code, &why)
                        .extending(extension.days),
                )])
            }
            _ => Err(nothing_pending(account)),
        }
    }

    fn decision(
        &self,
        outcome: Outcome,
        caller: &Caller,
        reason: &Option<String>,
        extension_days: Option<u32>,
        at: DateTime<Utc>,
    ) -> Decision {
        Decision {
            outcome,
            by: caller.principal.clone(),
            reason: reason.clone(),
            rule: None,
            extension_days,
            at,
        }
    }

    /// Stores a decision with its events; another change first is a
    /// conflict the approver retries (reading the account again).
    async fn decide(
        &self,
        from: AccountState,
        next: Account,
        events: Vec<Announcement>,
    ) -> Result<Account, AccountError> {
        let id = next.id.clone();
        match transition_announcing(
            self.accounts.as_ref(),
            self.bus.as_ref(),
            from,
            next,
            events,
        )
        .await?
        {
            (Transitioned::Applied, next) => Ok(next),
            _ => Err(AccountError::Conflict {
                code: "conflict",
                message: format!("account request {id} changed meanwhile; read it again and retry"),
            }),
        }
    }

    /// After a lease got longer, `LeaseExpiring` may be said again, for
    /// the new end (best effort: a claim left expires a day after the old end).
    async fn rearm_lease_warning(&self, account: &Account) {
        let marker = Marker::LeaseExpiring {
            request_id: account.id.clone(),
        };
        if let Err(e) = self.markers.release(&marker).await {
            tracing::warn!(request_id = %account.id, error = %e,
                "the lease warning could not be re-armed; it is until the old end's claim expires");
        }
    }

    // ------------------------------------------------------------ extensions

    /// `POST /accounts/{id}/extend` with `{"days": N}`, by who asked for the
    /// account or an admin: within the template's maximum (365 days
    /// without a template) it applies at once (`LeaseExtended`); beyond a
    /// template's maximum it waits for an approver
    /// (`AccountApprovalRequested`). Returns the account and whether it
    /// applied.
    pub async fn extend(
        &self,
        id: &str,
        caller: &Caller,
        days: u32,
    ) -> Result<(Account, bool), AccountError> {
        let account = self.get(id, caller).await?;
        if !caller.admin && !caller.requested(&account.requested_by) {
            return Err(AccountError::Forbidden(format!(
                "only who requested account request {id} ({}) or a platform admin may extend its lease",
                account.requested_by
            )));
        }
        if !matches!(account.state, AccountState::Ready | AccountState::Frozen) {
            return Err(AccountError::Conflict {
                code: "illegal_transition",
                message: format!(
                    "account {id} is {}: only a ready or frozen account's lease is extended",
                    account.state
                ),
            });
        }
        let Some(end) = account.lease_end else {
            return Err(AccountError::Conflict {
                code: "no_lease",
                message: format!("account {id} has no lease to extend"),
            });
        };
        if let Some(waiting) = &account.pending_extension {
            return Err(AccountError::Conflict {
                code: "extension_pending",
                message: format!(
                    "an extension of {} days already waits for an approver",
                    waiting.days
                ),
            });
        }
        let template = match &account.template {
            Some(t) => {
                self.template_store()?
                    .template_version(&t.name, t.version)
                    .await?
            }
            None => None,
        };
        let max = template
            .as_ref()
            .map_or(MAX_LEASE_DAYS, |t| t.max_lease_days);
        let now = self.clock.now();
        let so_far = account
            .lease_days
            .unwrap_or_else(|| (end - account.created_at).num_days().max(0) as u32);
        let total = so_far + days;
        let mut next = account.next_revision();
        next.updated_at = now;
        let (events, applied) = if total <= max {
            extend_lease(&mut next, days);
            next.lease_days = Some(total);
            (
                vec![Announcement::of(
                    catalog::LEASE_EXTENDED,
                    AccountEvent::of(&next, now).extending(days),
                )],
                true,
            )
        } else if template.is_some() {
            next.pending_extension = Some(PendingExtension {
                days,
                requested_by: caller.principal.clone(),
                requested_at: now,
            });
            let why = format!(
                "{total} days in all is beyond the template's maximum of {max}: an approver decides"
            );
            (
                vec![Announcement::of(
                    catalog::ACCOUNT_APPROVAL_REQUESTED,
                    AccountEvent::of(&next, now)
                        .because("EXTENSION_BEYOND_MAXIMUM", &why)
                        .extending(days),
                )],
                false,
            )
        } else {
            return Err(AccountError::Invalid(invalid(
                Some("days"),
                &format!("a lease is at most {MAX_LEASE_DAYS} days in all; this one is {so_far}"),
            )));
        };
        let next = self.decide(account.state, next, events).await?;
        if applied {
            self.rearm_lease_warning(&next).await;
        }
        Ok((next, applied))
    }

    // ------------------------------------------------------------ reaper

    /// Requests and extensions that waited longer than the approval expiry
    /// are denied by `expiry` (a request is closed), with the reason.
    pub(super) async fn expire_pending(&self) -> Result<(), AccountError> {
        let now = self.clock.now();
        let days = self.approval_expiry.num_days();
        let reason = Some(format!(
            "no approver decided within {days} days; ask again if it is still needed"
        ));
        let mut waiting: Vec<Account> = self
            .accounts
            .accounts_in_state(AccountState::PendingApproval)
            .await?
            .into_iter()
            .filter(|a| now - a.created_at >= self.approval_expiry)
            .collect();
        for state in [AccountState::Ready, AccountState::Frozen] {
            waiting.extend(
                self.accounts
                    .accounts_in_state(state)
                    .await?
                    .into_iter()
                    .filter(|a| {
                        a.pending_extension
                            .as_ref()
                            .is_some_and(|e| now - e.requested_at >= self.approval_expiry)
                    }),
            );
        }
        for account in waiting {
            let mut next = account.next_revision();
            next.updated_at = now;
            let events = self.denial(&account, &mut next, EXPIRY, &reason, now)?;
            next.decision = Some(Decision {
                outcome: Outcome::Expired,
                by: EXPIRY.into(),
                reason: reason.clone(),
                rule: None,
                extension_days: account.pending_extension.as_ref().map(|e| e.days),
                at: now,
            });
            // Another change first (a decision just made) wins; nothing to do.
            transition_announcing(
                self.accounts.as_ref(),
                self.bus.as_ref(),
                account.state,
                next,
                events,
            )
            .await?;
        }
        Ok(())
    }
}

/// Adds `days` to the lease's end and length.
fn extend_lease(account: &mut Account, days: u32) {
    let more = Duration::days(i64::from(days));
    account.lease_end = account.lease_end.map(|end| end + more);
    account.lease_days = account.lease_days.map(|d| d + days);
}

fn nothing_pending(account: &Account) -> AccountError {
    AccountError::Conflict {
        code: "nothing_pending",
        message: format!(
            "account request {} is {} with nothing waiting for approval",
            account.id, account.state
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fakes::{
        FakeAccounts, FakeBus, FakeMarkers, FakeOrganization, FakeTemplates, locked,
    };
    use crate::ports::{Clock, ManualClock};

    const ANA: &str = "arn:aws:iam::123456789012:user/ana";
    const BOB: &str = "arn:aws:iam::123456789012:user/bob";

    struct World {
        service: Accounts,
        store: Arc<FakeAccounts>,
        templates: Arc<FakeTemplates>,
        bus: Arc<FakeBus>,
        clock: Arc<ManualClock>,
    }

    fn payments() -> TeamName {
        TeamName::parse("payments").unwrap()
    }

    fn who(arn: &str) -> Caller {
        Caller {
            principal: arn.into(),
            admin: false,
        }
    }

    fn world(quota: u32) -> World {
        let store = Arc::new(FakeAccounts::default());
        let mut team = Team::unconfigured(payments());
        team.quota = quota;
        team.members = vec![ANA.into(), BOB.into()];
        team.leases.approvers = vec![BOB.into()];
        locked(&store.teams).insert(payments(), team);
        let templates = Arc::new(FakeTemplates::default());
        let bus = Arc::new(FakeBus::default());
        let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
        let service = Accounts::new(
            store.clone(),
            Arc::new(FakeMarkers::default()),
            Arc::new(FakeOrganization::default()),
            bus.clone(),
            clock.clone(),
        )
        .with_templates(templates.clone());
        World {
            service,
            store,
            templates,
            bus,
            clock,
        }
    }

    impl World {
        async fn template(&self, name: &str, body: serde_json::Value) -> LeaseTemplate {
            let template = LeaseTemplate::from_json(
                TemplateName::parse(name).unwrap(),
                &body,
                self.clock.now(),
            )
            .unwrap();
            let admin = Caller {
                principal: "arn:aws:iam::123456789012:role/platform".into(),
                admin: true,
            };
            self.service.put_template(template, &admin).await.unwrap()
        }

        async fn ask(
            &self,
            template: &str,
            lease_days: Option<u32>,
        ) -> Result<Account, AccountError> {
            let input = NewAccount {
                team: payments(),
                owner: "ana@example.com".into(),
                purpose: "hack".into(),
                lease_days,
                template: Some(TemplateName::parse(template).unwrap()),
            };
            Ok(self.service.request(input, &who(ANA), None).await?.0)
        }
    }

    fn hackathon(approval: serde_json::Value) -> serde_json::Value {
        json!({"description": "two days", "default_lease_days": 2, "max_lease_days": 7,
            "approval": approval})
    }

    #[tokio::test]
    async fn a_request_that_needs_approval_waits_then_goes_ahead_as_any() {
        let w = world(3);
        let t = w.template("hackathon", hackathon(json!("always"))).await;
        assert_eq!(t.version, 1);
        let pending = w.ask("hackathon", None).await.unwrap();
        assert_eq!(pending.state, AccountState::PendingApproval);
        assert_eq!(pending.lease_days, Some(2), "the template's default");
        assert_eq!(pending.lease_end, None, "the lease starts when approved");
        assert_eq!(w.bus.of(catalog::ACCOUNT_APPROVAL_REQUESTED).len(), 1);
        assert!(w.bus.of(catalog::ACCOUNT_REQUESTED).is_empty());

        // The requester may not approve; an approver who did not ask may.
        let refused = w.service.approve(&pending.id, &who(ANA), None).await;
        assert!(
            matches!(refused, Err(AccountError::Forbidden(_))),
            "{refused:?}"
        );
        let approved = w
            .service
            .approve(&pending.id, &who(BOB), None)
            .await
            .unwrap();
        assert_eq!(approved.state, AccountState::Requested);
        assert_eq!(approved.lease_end, Some(w.clock.now() + Duration::days(2)));
        assert_eq!(w.bus.of(catalog::ACCOUNT_APPROVED)[0]["approver"], BOB);
        assert_eq!(
            w.bus.of(catalog::ACCOUNT_REQUESTED).len(),
            1,
            "vend hears of it"
        );
        assert_eq!(approved.template.unwrap().version, 1);
    }

    #[tokio::test]
    async fn auto_rules_approve_at_once_and_record_the_rule_or_else_wait() {
        let w = world(3);
        w.template(
            "sandbox",
            hackathon(json!({"auto": [{"rule": "lease_at_most", "days": 3},
                {"rule": "team_under_quota"}]})),
        )
        .await;
        let at_once = w.ask("sandbox", Some(3)).await.unwrap();
        assert_eq!(at_once.state, AccountState::Requested);
        let decision = at_once.decision.unwrap();
        assert_eq!(decision.by, AUTO_APPROVER);
        assert_eq!(
            decision.rule.as_deref(),
            Some("auto: lease_at_most 3, team_under_quota")
        );
        let approved = w.bus.of(catalog::ACCOUNT_APPROVED);
        assert_eq!(
            approved[0]["rule"],
            "auto: lease_at_most 3, team_under_quota"
        );
        assert_eq!(w.bus.of(catalog::ACCOUNT_REQUESTED).len(), 1);

        let waits = w.ask("sandbox", Some(5)).await.unwrap();
        assert_eq!(waits.state, AccountState::PendingApproval);
        let asked = w.bus.of(catalog::ACCOUNT_APPROVAL_REQUESTED);
        assert!(
            asked[0]["reason"]
                .as_str()
                .unwrap()
                .contains("lease_at_most 3")
        );
    }

    #[tokio::test]
    async fn a_denial_closes_the_request_with_its_reason_and_frees_the_quota() {
        let w = world(1);
        w.template("hackathon", hackathon(json!("always"))).await;
        let pending = w.ask("hackathon", None).await.unwrap();
        // Pending counts against the quota.
        assert!(matches!(
            w.ask("hackathon", None).await,
            Err(AccountError::Conflict {
                code: "quota_exceeded",
                ..
            })
        ));
        let denied = w
            .service
            .deny(&pending.id, &who(BOB), "not this week".into())
            .await
            .unwrap();
        assert_eq!(denied.state, AccountState::Closed);
        let decision = denied.decision.unwrap();
        assert_eq!(
            (decision.outcome, decision.reason.as_deref()),
            (Outcome::Denied, Some("not this week"))
        );
        assert_eq!(
            w.bus.of(catalog::ACCOUNT_DENIED)[0]["reason"],
            "not this week"
        );
        assert_eq!(
            w.store.get(&pending.id).unwrap().state,
            AccountState::Closed
        );
        assert!(w.ask("hackathon", None).await.is_ok(), "its place is free");
    }

    #[tokio::test]
    async fn a_lease_over_the_templates_maximum_or_a_template_not_for_the_team_is_refused() {
        let w = world(3);
        w.template("hackathon", hackathon(json!("never"))).await;
        let err = w.ask("hackathon", Some(8)).await.unwrap_err();
        let AccountError::Invalid(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.field.as_deref(), Some("lease_days"));
        let mut other = hackathon(json!("never"));
        other["teams"] = json!(["ml"]);
        w.template("ml-only", other).await;
        let AccountError::Invalid(e) = w.ask("ml-only", None).await.unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field.as_deref(), Some("template"));
        let AccountError::Invalid(e) = w.ask("nothing", None).await.unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field.as_deref(), Some("template"));
    }

    #[tokio::test]
    async fn extensions_apply_within_the_maximum_and_wait_beyond_it() {
        let w = world(3);
        w.template("hackathon", hackathon(json!("never"))).await;
        let account = w.ask("hackathon", None).await.unwrap();
        let mut ready = account.next_revision();
        ready.state = AccountState::Ready;
        ready.account_id = Some("210987654321".into());
        locked(&w.store.accounts)[0] = ready.clone();
        let end = ready.lease_end.unwrap();

        let (extended, applied) = w.service.extend(&ready.id, &who(ANA), 3).await.unwrap();
        assert!(applied);
        assert_eq!(extended.lease_end, Some(end + Duration::days(3)));
        assert_eq!(extended.lease_days, Some(5));
        assert_eq!(w.bus.of(catalog::LEASE_EXTENDED)[0]["extension_days"], 3);

        // A new version of the template does not change this lease.
        w.template(
            "hackathon",
            json!({"description": "longer", "default_lease_days": 2,
            "max_lease_days": 30}),
        )
        .await;
        let (waiting, applied) = w.service.extend(&ready.id, &who(ANA), 5).await.unwrap();
        assert!(!applied, "10 days is beyond version 1's 7");
        assert_eq!(waiting.lease_end, Some(end + Duration::days(3)));
        assert_eq!(waiting.pending_extension.as_ref().unwrap().days, 5);
        assert!(matches!(
            w.service.extend(&ready.id, &who(ANA), 1).await,
            Err(AccountError::Conflict {
                code: "extension_pending",
                ..
            })
        ));
        let approved = w.service.approve(&ready.id, &who(BOB), None).await.unwrap();
        assert_eq!(approved.lease_end, Some(end + Duration::days(8)));
        assert_eq!(approved.pending_extension, None);
        assert_eq!(w.bus.of(catalog::LEASE_EXTENDED).len(), 2);
        assert_eq!(
            locked(&w.templates.versions).values().next().unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn a_request_nobody_decides_expires_closed_with_a_reason() {
        let w = world(3);
        w.template("hackathon", hackathon(json!("always"))).await;
        let pending = w.ask("hackathon", None).await.unwrap();
        w.clock.advance(Duration::days(6));
        w.service.expire_pending().await.unwrap();
        assert_eq!(
            w.store.get(&pending.id).unwrap().state,
            AccountState::PendingApproval
        );
        w.clock.advance(Duration::days(1));
        w.service.expire_pending().await.unwrap();
        let expired = w.store.get(&pending.id).unwrap();
        assert_eq!(expired.state, AccountState::Closed);
        assert_eq!(expired.decision.unwrap().outcome, Outcome::Expired);
        assert_eq!(
            w.bus.of(catalog::ACCOUNT_CLOSED)[0]["reason_code"],
            "APPROVAL_EXPIRED"
        );
    }
}
