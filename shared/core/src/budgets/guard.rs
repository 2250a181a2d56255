//! The runaway guard in a team's evaluation: each ready or frozen account's
//! hourly counters weighed against the team's rules (its budget's
//! `runaway`) and its template version's, an episode announced once
//! (`SpendRateExceeded`), and its actions taken: `stop-resource` here,
//! through the member role; `freeze` and `throttle-lambdas` by the
//! evaluation's own enforcement, which this returns what to demand of.
//!
//! A freeze by the guard holds until an admin releases the account
//! (`POST /accounts/{id}/release`): the spend stops because of it, so the
//! rate falling back says nothing. A throttle holds while the episode's
//! hours stay over the limit. A stop is done once an episode and
//! remembered (`Marker::RunawayStopped`, with what brings it back).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::accounts::{Account, AccountState, Caller, TeamName, rfc3339};
use crate::budgets::runaway::{
    HOURS_WEIGHED, MEDIAN_HOURS, RateScope, RuleOrigin, RunawayAction, RunawayRule, hour_of,
    stoppable, trailing_median,
};
use crate::budgets::{Budget, BudgetError, Budgets};
use crate::events::EventEntry;
use crate::events::announce::announce_once;
use crate::ports::{HourlySpend, Marker, MemberResources, StopOutcome, Stoppable};
use crate::spend::from_nanos;

pub const SPEND_RATE_EXCEEDED: &str = "SpendRateExceeded";

/// How long a runaway freeze is held at most if no one releases it: past
/// any lease (365 days).
const FREEZE_HELD_DAYS: i64 = 400;
/// How long what was stopped is remembered.
const STOPPED_KEPT_DAYS: i64 = 90;

/// What the guard demands of a team's accounts, by request id.
#[derive(Debug, Default)]
pub(crate) struct RunawayDemands {
    /// Frozen until released, with the reason.
    pub freeze: BTreeMap<String, String>,
    /// Throttled for the episode.
    pub throttle: BTreeSet<String>,
    /// Whether any account is covered by a rule, or held: then the
    /// evaluation enforces even for a team without a budget.
    pub watched: bool,
}

/// One rule over its limit in an hour.
struct Over<'a> {
    origin: &'a RuleOrigin,
    index: usize,
    rule: &'a RunawayRule,
    spent: &'a HourlySpend,
    limit: Decimal,
    median: Option<Decimal>,
}

impl Budgets {
    /// Stops member accounts' EC2 instances and SageMaker endpoints for
    /// `stop-resource`; without it the action only notifies.
    pub fn with_member_resources(mut self, resources: Arc<dyn MemberResources>) -> Self {
        self.member_resources = Some(resources);
        self
    }

    /// Weighs each of `accounts` against the runaway rules that cover it,
    /// announces and acts on new episodes, and says what the evaluation's
    /// freeze and throttle must demand.
    pub(crate) async fn guard_runaways(
        &self,
        team: &TeamName,
        budget: Option<&Budget>,
        accounts: &[Account],
        now: DateTime<Utc>,
    ) -> Result<RunawayDemands, BudgetError> {
        let mut demands = RunawayDemands::default();
        let hour = hour_of(now);
        let mut templates: BTreeMap<(String, u64), Vec<RunawayRule>> = BTreeMap::new();
        for account in accounts {
            let Some(account_id) = account.account_id.as_deref() else {
                continue;
            };
            let hold = Marker::RunawayFreeze {
                request_id: account.id.clone(),
            };
            if self.markers.is_claimed(&hold, now).await? {
                demands
                    .freeze
                    .insert(account.id.clone(), held_reason(&account.id));
                demands.watched = true;
            }
            let mut rules: Vec<(RuleOrigin, usize, RunawayRule)> = Vec::new();
            if let Some(budget) = budget {
                let origin = RuleOrigin::Team {
                    revision: budget.revision,
                };
                for (i, r) in budget.runaway.iter().enumerate() {
                    rules.push((origin.clone(), i, r.clone()));
                }
            }
            if let Some(t) = &account.template {
                let key = (t.name.to_string(), t.version);
                if !templates.contains_key(&key) {
                    let found = self
                        .templates
                        .template_version(&t.name, t.version)
                        .await?
                        .map(|t| t.runaway)
                        .unwrap_or_default();
                    templates.insert(key.clone(), found);
                }
                let origin = RuleOrigin::Template {
                    name: key.0.clone(),
                    version: key.1,
                };
                for (i, r) in templates[&key].iter().enumerate() {
                    rules.push((origin.clone(), i, r.clone()));
                }
            }
            if rules.is_empty() {
                continue;
            }
            demands.watched = true;
            let recent = self
                .counters
                .hourly_spend(account_id, hour - Duration::hours(HOURS_WEIGHED - 1), hour)
                .await?;
            if recent.is_empty() {
                continue;
            }
            // The week before, read only when a median rule may fire.
            let needs_history = rules.iter().any(|(_, _, r)| {
                r.uses_median() && recent.iter().any(|h| from_nanos(h.nanos) > r.at_least_usd)
            });
            let history = if needs_history {
                self.counters
                    .hourly_spend(
                        account_id,
                        hour - Duration::hours(MEDIAN_HOURS + HOURS_WEIGHED),
                        hour - Duration::hours(1),
                    )
                    .await?
            } else {
                Vec::new()
            };
            for (origin, index, rule) in &rules {
                for spent in &recent {
                    let in_scope = match rule.per {
                        RateScope::Account => spent.resource.is_none(),
                        RateScope::Resource => spent.resource.is_some(),
                    };
                    if !in_scope {
                        continue;
                    }
                    let median = rule
                        .uses_median()
                        .then(|| trailing_median(&history, spent.resource.as_deref(), spent.hour));
                    let Some(limit) = rule.limit(median) else {
                        continue;
                    };
                    if from_nanos(spent.nanos) <= limit {
                        continue;
                    }
                    let over = Over {
                        origin,
                        index: *index,
                        rule,
                        spent,
                        limit,
                        median,
                    };
                    self.episode(team, account, account_id, &recent, &over, now, &mut demands)
                        .await?;
                }
            }
        }
        Ok(demands)
    }

    /// One rule over its limit for one hour: a new episode is acted on and
    /// announced, a continuing one only keeps its throttle.
    #[allow(clippy::too_many_arguments)]
    async fn episode(
        &self,
        team: &TeamName,
        account: &Account,
        account_id: &str,
        recent: &[HourlySpend],
        over: &Over<'_>,
        now: DateTime<Utc>,
        demands: &mut RunawayDemands,
    ) -> Result<(), BudgetError> {
        let rule_id = over.origin.rule_id(over.index);
        let marker = |hour: DateTime<Utc>| Marker::Runaway {
            rule: rule_id.clone(),
            account_id: account_id.to_string(),
            resource: over.spent.resource.clone(),
            hour,
        };
        let this_hour = marker(over.spent.hour);
        let expires = over.spent.hour + Duration::hours(HOURS_WEIGHED + 2);
        if over.rule.actions.contains(&RunawayAction::ThrottleLambdas) {
            demands.throttle.insert(account.id.clone());
        }
        if self.markers.is_claimed(&this_hour, now).await? {
            return Ok(());
        }
        let previous = marker(over.spent.hour - Duration::hours(1));
        if self.markers.is_claimed(&previous, now).await? {
            // The episode goes on into this hour: carried, not announced.
            self.markers.claim_once(&this_hour, now, expires).await?;
            return Ok(());
        }
        let reason = format!(
            "{} spent {} USD in the hour from {}, over the {} USD of runaway rule {rule_id}",
            over.spent.resource.as_deref().unwrap_or("the account"),
            from_nanos(over.spent.nanos).round_dp(4).normalize(),
            rfc3339(over.spent.hour),
            over.limit.round_dp(4).normalize(),
        );
        // Acted on before it is announced: every action may be repeated by
        // a retry whose announcement failed.
        let mut stopped = Vec::new();
        if over.rule.actions.contains(&RunawayAction::StopResource) {
            stopped = self
                .stop_resources(account, account_id, recent, over, now)
                .await?;
        }
        if over.rule.actions.contains(&RunawayAction::Freeze) {
            let hold = Marker::RunawayFreeze {
                request_id: account.id.clone(),
            };
            self.markers
                .claim_once(&hold, now, now + Duration::days(FREEZE_HELD_DAYS))
                .await?;
            demands.freeze.insert(
                account.id.clone(),
                format!(
                    "{reason}; frozen until an admin releases it (purser accounts release {})",
                    account.id
                ),
            );
        }
        let detail = json!({
            "version": 1,
            "team": team,
            "account_id": account_id,
            "request_id": account.id,
            "owner": account.owner,
            "rule": {
                "id": rule_id,
                "origin": over.origin.to_view(),
                "per": over.rule.per,
                "usd_per_hour": over.rule.usd_per_hour.map(|d| d.normalize().to_string()),
                "median_multiple": over.rule.median_multiple.map(|d| d.normalize().to_string()),
                "at_least_usd": over.rule.at_least_usd.normalize().to_string(),
            },
            "resource": over.spent.resource,
            "hour": rfc3339(over.spent.hour),
            "spend": from_nanos(over.spent.nanos).round_dp(6).normalize().to_string(),
            "limit": over.limit.round_dp(6).normalize().to_string(),
            "median": over.median.map(|m| m.round_dp(6).normalize().to_string()),
            "currency": "USD",
            "actions": over.rule.actions,
            "stopped": stopped,
            "reason": reason,
            "at": rfc3339(now),
        });
        if announce_once(
            self.markers.as_ref(),
            self.bus.as_ref(),
            &this_hour,
            now,
            expires,
            vec![EventEntry::purser(SPEND_RATE_EXCEEDED, &detail)],
        )
        .await?
        {
            tracing::warn!(team = %team, account_id, request_id = %account.id, rule = %rule_id,
                resource = over.spent.resource.as_deref().unwrap_or("*"),
                spend = %from_nanos(over.spent.nanos), limit = %over.limit,
                stopped = stopped.len(), "runaway spend");
        }
        Ok(())
    }

    /// `stop-resource`: the resource over its limit or, for an account
    /// rule, every stoppable resource that spent in that hour. Each
    /// outcome is reported; one that fails does not stop the others, nor
    /// the episode's other actions.
    async fn stop_resources(
        &self,
        account: &Account,
        account_id: &str,
        recent: &[HourlySpend],
        over: &Over<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, BudgetError> {
        let keys: Vec<&str> = match &over.spent.resource {
            Some(resource) => vec![resource.as_str()],
            None => recent
                .iter()
                .filter(|h| h.hour == over.spent.hour)
                .filter_map(|h| h.resource.as_deref())
                .collect(),
        };
        let mut outcomes = Vec::new();
        for key in keys {
            let Some(target) = stoppable(account_id, key) else {
                if over.spent.resource.is_some() {
                    outcomes.push(json!({"resource": key, "outcome": "not_stoppable",
                        "message": "only EC2 instances and SageMaker endpoints are stopped; freeze or throttle stops the rest"}));
                }
                continue;
            };
            let (kind, id) = match &target.resource {
                Stoppable::Ec2Instance { instance_id } => ("ec2_instance", instance_id.clone()),
                Stoppable::SagemakerEndpoint { name } => ("sagemaker_endpoint", name.clone()),
            };
            let Some(resources) = &self.member_resources else {
                outcomes.push(json!({"resource": key, "kind": kind, "id": id,
                    "region": target.region, "outcome": "failed",
                    "message": "this deployment cannot stop member resources (the budgets function has no member-resources adapter)"}));
                continue;
            };
            let outcome = match resources.stop(&target).await {
                Ok(StopOutcome::Stopped { restore }) => {
                    let remembered = Marker::RunawayStopped {
                        account_id: account_id.to_string(),
                        region: target.region.clone(),
                        resource: id.clone(),
                    };
                    let value = json!({"request_id": account.id, "kind": kind,
                        "restore": restore, "at": rfc3339(now)})
                    .to_string();
                    self.markers
                        .remember(
                            &remembered,
                            &value,
                            now,
                            now + Duration::days(STOPPED_KEPT_DAYS),
                        )
                        .await?;
                    tracing::warn!(account_id, request_id = %account.id, kind, id = %id,
                        region = %target.region, "runaway resource stopped");
                    json!({"outcome": "stopped", "restore": restore})
                }
                Ok(StopOutcome::AlreadyStopped) => json!({"outcome": "already_stopped"}),
                Ok(StopOutcome::NotFound) => json!({"outcome": "not_found"}),
                Err(e) => {
                    tracing::error!(account_id, request_id = %account.id, kind, id = %id,
                        error = %e, "a runaway resource could not be stopped");
                    json!({"outcome": "failed", "message": e.to_string()})
                }
            };
            let mut entry =
                json!({"resource": key, "kind": kind, "id": id, "region": target.region});
            if let (Some(entry), Some(outcome)) = (entry.as_object_mut(), outcome.as_object()) {
                entry.extend(outcome.clone());
            }
            outcomes.push(entry);
        }
        Ok(outcomes)
    }

    /// `POST /accounts/{id}/release` of an account the guard froze (admins):
    /// the hold is let go and the team's evaluation asked for, which
    /// unfreezes it unless a budget still demands the freeze. `None`: the
    /// account is not held by the guard.
    pub async fn release_runaway(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<Account>, BudgetError> {
        let Some(account) = self.accounts.account(id).await? else {
            return Ok(None);
        };
        let hold = Marker::RunawayFreeze {
            request_id: account.id.clone(),
        };
        let now = self.clock.now();
        if account.state != AccountState::Frozen || !self.markers.is_claimed(&hold, now).await? {
            return Ok(None);
        }
        if !caller.admin {
            return Err(BudgetError::Forbidden(
                "only platform admins may release an account the runaway guard froze".into(),
            ));
        }
        self.markers.release(&hold).await?;
        self.bus
            .put(vec![EventEntry::purser(
                super::BUDGET_EVALUATION_DUE,
                &json!({"version": 1, "team": account.team, "at": rfc3339(now)}),
            )])
            .await?;
        tracing::info!(request_id = %account.id, team = %account.team, by = %caller.principal,
            "runaway freeze released");
        Ok(Some(account))
    }
}

fn held_reason(request_id: &str) -> String {
    format!(
        "the runaway guard froze it; it stays frozen until an admin releases it (purser accounts release {request_id})"
    )
}
