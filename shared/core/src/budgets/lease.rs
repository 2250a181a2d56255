//! Per-account budgets: an account made from a lease template with a
//! budget is weighed against that budget (its template version's: an
//! account keeps the version it was made with) as a team is against its
//! own, and its actions apply to that account only.
//!
//! The period is the lease, not a calendar month: from the request
//! (`created_at`, which `lease_end` counts from; an account spends nothing
//! before it exists) to now, extensions included, so each threshold fires
//! once per lease. A per-account budget is given for a lease (a two-day
//! hackathon, a month of feature work), as lease budgets are elsewhere; a
//! calendar month would hand a hackathon a fresh budget at midnight on the
//! 1st.
//!
//! Nothing lifts an account's own freeze within its lease but its spend
//! falling back under the budget (a settlement correcting the counters):
//! the budget is the template version's, which a new version of the
//! template does not change (a running lease never changes silently). A
//! team's budget raised, or a new month, lifts only the team's freeze
//! (`Account::frozen_by` records each cause).

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::accounts::{Account, rfc3339};
use crate::budgets::{Budget, BudgetAction, BudgetMode};
use crate::leases::{AccountBudget, TemplateRef};
use crate::ports::Marker;

/// What `scope` a `BudgetThresholdCrossed` of an account's own budget says.
pub const ACCOUNT_SCOPE: &str = "account";
/// What `scope` a `BudgetThresholdCrossed` of a team's budget says.
pub const TEAM_SCOPE: &str = "team";
/// `period` of an account's crossing: its lease (from `lease_start`).
pub const LEASE_PERIOD: &str = "lease";

/// How long an account's threshold claim stands past its lease's end (or,
/// without a lease end, past the claim): past any extension's reach.
const CLAIM_DAYS: i64 = 400;

/// An account weighed against its own budget over its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStanding {
    pub account: Account,
    pub template: TemplateRef,
    /// The template version's budget in a team budget's form: `revision`
    /// is the template version, `mode` actual.
    pub budget: Budget,
    pub lease_start: DateTime<Utc>,
    pub spend: Decimal,
    /// The spend at the lease's end at the run-rate so far (the spend
    /// without a lease end).
    pub forecast: Decimal,
}

impl AccountStanding {
    /// `account`, made from `template` with `budget`, having spent `spend`
    /// in its lease at `now`.
    pub fn of(
        account: Account,
        template: TemplateRef,
        budget: &AccountBudget,
        spend: Decimal,
        now: DateTime<Utc>,
    ) -> Self {
        let lease_start = account.created_at;
        let budget = Budget {
            team: account.team.clone(),
            amount: budget.amount,
            currency: budget.currency.clone(),
            thresholds: budget.thresholds.clone(),
            actions: budget.actions.clone(),
            mode: BudgetMode::Actual,
            runaway: Vec::new(),
            revision: template.version,
            updated_at: lease_start,
        };
        let forecast = lease_forecast(spend, lease_start, account.lease_end, now);
        Self {
            account,
            template,
            budget,
            lease_start,
            spend,
            forecast,
        }
    }

    /// The AWS account id (accounts weighed all have one).
    pub fn account_id(&self) -> &str {
        self.account.account_id.as_deref().unwrap_or_default()
    }

    /// The thresholds the lease's spend has reached, in order.
    pub fn crossed(&self) -> Vec<u32> {
        self.budget.crossed(self.spend)
    }

    /// Whether a reached threshold asks for `action`.
    pub fn demands(&self, action: BudgetAction) -> bool {
        self.budget.demands(self.spend, action)
    }

    /// The claim that threshold `t` was announced for this lease.
    pub fn threshold_key(&self, t: u32) -> Marker {
        Marker::AccountThresholdCrossed {
            account_id: self.account_id().to_string(),
            lease_start: self.lease_start,
            percent: t,
        }
    }

    /// Until when a threshold's claim stands.
    pub fn claim_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.account.lease_end.unwrap_or(now).max(now) + Duration::days(CLAIM_DAYS)
    }

    /// The detail of `BudgetThresholdCrossed` for threshold `t`: a team's
    /// shape, with `scope: account`, the account and its template, `period`
    /// `lease` from `lease_start`, and the template version as `revision`.
    pub fn crossed_detail(&self, t: u32, now: DateTime<Utc>) -> Value {
        let actions = self.budget.actions.get(&t).cloned().unwrap_or_default();
        json!({"version": 1, "scope": ACCOUNT_SCOPE, "team": self.account.team,
            "account_id": self.account_id(), "request_id": self.account.id,
            "template": self.template.to_view(),
            "period": LEASE_PERIOD, "lease_start": rfc3339(self.lease_start), "threshold": t,
            "amount": self.budget.amount.normalize().to_string(),
            "spend": self.spend.round_dp(6).normalize().to_string(),
            "forecast": self.forecast.round_dp(6).normalize().to_string(),
            "currency": self.budget.currency, "mode": self.budget.mode, "actions": actions,
            "revision": self.budget.revision, "at": rfc3339(now)})
    }

    /// The account in `GET /teams/{team}/budget`'s `accounts`: its budget,
    /// its lease's spend, the thresholds announced this lease, and whether
    /// (and why) it is frozen.
    pub fn to_view(&self, crossed: &[u32]) -> Value {
        let mut view = crate::leases::AccountBudget {
            amount: self.budget.amount,
            currency: self.budget.currency.clone(),
            thresholds: self.budget.thresholds.clone(),
            actions: self.budget.actions.clone(),
        }
        .to_view();
        let causes: Vec<&str> = self
            .account
            .freeze_causes()
            .iter()
            .map(|c| c.as_str())
            .collect();
        view["request_id"] = json!(self.account.id);
        view["account_id"] = json!(self.account_id());
        view["owner"] = json!(self.account.owner);
        view["state"] = json!(self.account.state);
        view["template"] = self.template.to_view();
        view["period"] = json!(LEASE_PERIOD);
        view["lease_start"] = json!(rfc3339(self.lease_start));
        view["lease_end"] = json!(self.account.lease_end.map(rfc3339));
        view["spend"] = json!(self.spend.round_dp(6).normalize().to_string());
        view["forecast"] = json!(self.forecast.round_dp(6).normalize().to_string());
        view["crossed_thresholds"] = json!(crossed);
        view["frozen"] = json!(!causes.is_empty());
        view["frozen_by"] = json!(causes);
        view
    }

    /// Why the account's own budget froze it, in words for its events.
    pub fn freeze_reason(&self) -> String {
        format!(
            "the account is over its own budget ({} {} for its lease, from template {} version {})",
            self.budget.amount.normalize(),
            self.budget.currency,
            self.template.name,
            self.template.version
        )
    }
}

/// The spend at `lease_end` at the run-rate since `start` (at least an
/// hour of it); `spend` itself without a lease end, or past it.
pub fn lease_forecast(
    spend: Decimal,
    start: DateTime<Utc>,
    lease_end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Decimal {
    let Some(end) = lease_end.filter(|end| *end > now) else {
        return spend;
    };
    let elapsed = (now - start).num_seconds().max(3600);
    let whole = (end - start).num_seconds().max(elapsed);
    spend * Decimal::from(whole) / Decimal::from(elapsed)
}

#[cfg(test)]
mod tests {
    //! Per-account budgets on the shared fakes: enforced per account, the
    //! team's budget on top, each freeze lifted only by its own budget.

    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};
    use serde_json::{Value, json};

    use super::*;
    use crate::accounts::{AccountState, Caller, FreezeCause, NewAccount, TeamName};
    use crate::budgets::{
        ACCOUNT_FROZEN, ACCOUNT_UNFROZEN, BUDGET_THRESHOLD_CROSSED, Budgets, FreezeExemptions,
    };
    use crate::fakes::{FakeBus, FakeOrganization, FakeStore, locked};
    use crate::leases::{LeaseTemplate, TemplateName};
    use crate::ports::{AccountStore, ManualClock, NoLambdas, TemplateStore};

    const A: &str = "210987654321";
    const B: &str = "345678901234";
    const NANOS: i64 = 1_000_000_000;

    struct World {
        budgets: Budgets,
        store: Arc<FakeStore>,
        bus: Arc<FakeBus>,
        organization: Arc<FakeOrganization>,
        team: TeamName,
        now: DateTime<Utc>,
        /// Request ids of A and B.
        ids: [String; 2],
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn admin() -> Caller {
        Caller {
            principal: "arn:aws:iam::123456789012:user/admin".into(),
            admin: true,
        }
    }

    /// Team `payments` with ready accounts A and B, both from template
    /// `hackathon` version 1 (a $5 budget, notify at 50 %, freeze at 100 %),
    /// made two days ago for a week; the team's budget is `team_amount`.
    async fn world(team_amount: &str) -> World {
        let now = at("2026-05-20T12:00:00Z");
        let made = now - Duration::days(2);
        let team = TeamName::parse("payments").unwrap();
        let store = Arc::new(FakeStore::default());
        let mut template = LeaseTemplate::from_json(
            TemplateName::parse("hackathon").unwrap(),
            &json!({"description": "two days to try things", "default_lease_days": 7,
                "max_lease_days": 14, "approval": "never",
                "budget": {"amount": "5", "thresholds": [50, 100],
                    "actions": {"50": ["notify"], "100": ["notify", "freeze"]}}}),
            made,
        )
        .unwrap();
        template.version = 1;
        assert!(store.put_template(&template).await.unwrap());
        let mut ids = Vec::new();
        for account_id in [A, B] {
            let input = NewAccount {
                team: team.clone(),
                owner: "ana@example.com".into(),
                purpose: "hackathon".into(),
                lease_days: Some(7),
                template: None,
            };
            let mut a = Account::request(
                crate::accounts::new_id(),
                input,
                "arn:aws:iam::123456789012:user/ana",
                made,
            )
            .unwrap();
            a.state = AccountState::Ready;
            a.account_id = Some(account_id.into());
            a.version = 3;
            a.template = Some(TemplateRef {
                name: template.name.clone(),
                version: 1,
            });
            ids.push(a.id.clone());
            locked(&store.accounts.accounts).push(a);
        }
        let bus = Arc::new(FakeBus::default());
        let organization = Arc::new(FakeOrganization::default());
        let budgets = Budgets::new(
            store.clone(),
            organization.clone(),
            bus.clone(),
            Arc::new(ManualClock::new(now)),
            Arc::new(NoLambdas),
            FreezeExemptions {
                break_glass_roles: vec![],
                purser_role: "purser-lambda-throttle".into(),
                control_tower: false,
            },
        );
        let w = World {
            budgets,
            store,
            bus,
            organization,
            team,
            now,
            ids: [ids[0].clone(), ids[1].clone()],
        };
        w.set_team_budget(team_amount).await;
        w
    }

    impl World {
        async fn set_team_budget(&self, amount: &str) {
            let budget = Budget::from_json(
                self.team.clone(),
                &json!({"amount": amount, "thresholds": [100],
                    "actions": {"100": ["notify", "freeze"]}}),
                self.now,
            )
            .unwrap();
            self.budgets.put(budget, &admin()).await.unwrap();
        }
        /// `dollars` spent by `account_id` yesterday (in its lease), and
        /// counted for the team too.
        fn spend(&self, account_id: &str, dollars: i64) {
            let day = self.now.date_naive() - Duration::days(1);
            self.store
                .counters
                .set_account(account_id, day, dollars * NANOS);
            let team: i64 = [A, B]
                .iter()
                .map(|a| {
                    locked(&self.store.counters.accounts)
                        .get(&(a.to_string(), day))
                        .copied()
                        .unwrap_or(0)
                })
                .sum();
            self.store.counters.set_team(&self.team, day, team);
        }
        async fn account(&self, i: usize) -> Account {
            self.store.account(&self.ids[i]).await.unwrap().unwrap()
        }
        fn of(&self, detail_type: &str) -> Vec<Value> {
            self.bus.of(detail_type)
        }
        fn attached(&self, account_id: &str) -> usize {
            locked(&self.organization.attached)
                .get(account_id)
                .map_or(0, Vec::len)
        }
    }

    #[tokio::test]
    async fn an_account_over_its_own_budget_is_frozen_alone_once() {
        let w = world("1000").await;
        w.spend(A, 6);
        w.spend(B, 1);
        w.budgets.evaluate(&w.team).await.unwrap();
        w.budgets.evaluate(&w.team).await.unwrap();

        let a = w.account(0).await;
        assert_eq!(a.state, AccountState::Frozen);
        assert_eq!(a.frozen_by, [FreezeCause::Account]);
        assert_eq!(w.attached(A), 1);
        let b = w.account(1).await;
        assert_eq!(b.state, AccountState::Ready, "its team-mate keeps working");
        assert_eq!(w.attached(B), 0);

        let crossed = w.of(BUDGET_THRESHOLD_CROSSED);
        assert_eq!(crossed.len(), 2, "50 and 100 % once each: {crossed:?}");
        for (detail, t) in crossed.iter().zip([50, 100]) {
            assert_eq!(detail["scope"], "account");
            assert_eq!(detail["account_id"], A);
            assert_eq!(detail["request_id"], json!(w.ids[0]));
            assert_eq!(detail["threshold"], t);
            assert_eq!(detail["period"], "lease");
            assert_eq!(detail["amount"], "5");
            assert_eq!(detail["spend"], "6");
            assert_eq!(
                detail["template"],
                json!({"name": "hackathon", "version": 1})
            );
            assert_eq!(detail["revision"], 1);
        }
        // Two days into a seven-day lease: 6 × 7/2.
        assert_eq!(crossed[0]["forecast"], "21");
        let frozen = w.of(ACCOUNT_FROZEN);
        assert_eq!(frozen.len(), 1);
        assert_eq!(frozen[0]["account_id"], A);
        assert!(
            frozen[0]["reason"]
                .as_str()
                .unwrap()
                .contains("its own budget"),
            "{}",
            frozen[0]
        );

        // The team's budget is untouched, and shows each account's own.
        let view = w.budgets.view(&w.team, &admin()).await.unwrap();
        assert_eq!(view["crossed_thresholds"], json!([]));
        assert_eq!(view["frozen"], false, "no account frozen by the team");
        let accounts = view["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 2);
        let of = |id: &str| accounts.iter().find(|v| v["account_id"] == id).unwrap();
        assert_eq!(of(A)["spend"], "6");
        assert_eq!(of(A)["amount"], "5");
        assert_eq!(of(A)["crossed_thresholds"], json!([50, 100]));
        assert_eq!(of(A)["frozen"], true);
        assert_eq!(of(A)["frozen_by"], json!(["account"]));
        assert_eq!(of(B)["spend"], "1");
        assert_eq!(of(B)["crossed_thresholds"], json!([]));
        assert_eq!(of(B)["frozen"], false);
    }

    #[tokio::test]
    async fn raising_the_teams_budget_does_not_lift_an_accounts_own_freeze() {
        let w = world("4").await;
        w.spend(A, 6);
        w.budgets.evaluate(&w.team).await.unwrap();
        assert_eq!(
            w.account(0).await.frozen_by,
            [FreezeCause::Team, FreezeCause::Account]
        );
        assert_eq!(w.account(1).await.frozen_by, [FreezeCause::Team]);
        assert_eq!(w.of(ACCOUNT_FROZEN).len(), 2);

        w.set_team_budget("1000").await;
        w.budgets.evaluate(&w.team).await.unwrap();
        let a = w.account(0).await;
        assert_eq!(a.state, AccountState::Frozen, "still over its own budget");
        assert_eq!(a.frozen_by, [FreezeCause::Account]);
        assert_eq!(w.attached(A), 1);
        let b = w.account(1).await;
        assert_eq!(b.state, AccountState::Ready);
        assert!(b.frozen_by.is_empty());
        assert_eq!(w.attached(B), 0);
        let unfrozen = w.of(ACCOUNT_UNFROZEN);
        assert_eq!(unfrozen.len(), 1, "{unfrozen:?}");
        assert_eq!(unfrozen[0]["account_id"], B);
        assert_eq!(unfrozen[0]["reason"], "the team is back within its budget");
    }

    #[tokio::test]
    async fn an_account_back_within_its_own_budget_stays_frozen_by_its_team() {
        let w = world("4").await;
        w.spend(A, 6);
        w.budgets.evaluate(&w.team).await.unwrap();
        // A settlement corrects A's lease down under its budget; the team
        // (B spending now) stays over its own.
        w.spend(A, 1);
        w.spend(B, 4);
        w.budgets.evaluate(&w.team).await.unwrap();
        let a = w.account(0).await;
        assert_eq!(a.state, AccountState::Frozen);
        assert_eq!(a.frozen_by, [FreezeCause::Team]);
        assert!(w.of(ACCOUNT_UNFROZEN).is_empty());

        // And once the team is raised too, it is unfrozen.
        w.set_team_budget("1000").await;
        w.budgets.evaluate(&w.team).await.unwrap();
        assert_eq!(w.account(0).await.state, AccountState::Ready);
        assert_eq!(w.attached(A), 0);
    }

    #[tokio::test]
    async fn an_account_frozen_before_causes_were_recorded_is_the_teams() {
        let w = world("1").await;
        w.spend(B, 2);
        w.budgets.evaluate(&w.team).await.unwrap();
        // As stored before `frozen_by`: frozen, no cause.
        let mut a = w.account(0).await;
        assert_eq!(a.frozen_by, [FreezeCause::Team]);
        let mut legacy = a.next_revision();
        legacy.frozen_by.clear();
        assert_eq!(
            w.store
                .transition(AccountState::Frozen, &legacy)
                .await
                .unwrap(),
            crate::ports::Transitioned::Applied
        );
        a = w.account(0).await;
        assert_eq!(a.freeze_causes(), [FreezeCause::Team]);
        w.set_team_budget("1000").await;
        w.budgets.evaluate(&w.team).await.unwrap();
        assert_eq!(w.account(0).await.state, AccountState::Ready);
    }

    #[tokio::test]
    async fn accounts_without_a_template_budget_follow_the_team_alone() {
        let w = world("1000").await;
        let mut template = w
            .store
            .template(&TemplateName::parse("hackathon").unwrap())
            .await
            .unwrap()
            .unwrap();
        // A later version without a budget does not change the running
        // leases (version 1's budget still holds).
        template.version = 2;
        template.budget = None;
        assert!(w.store.put_template(&template).await.unwrap());
        w.spend(A, 6);
        w.budgets.evaluate(&w.team).await.unwrap();
        assert_eq!(w.account(0).await.state, AccountState::Frozen);
    }

    #[test]
    fn a_lease_forecast_runs_to_the_lease_end() {
        let start = at("2026-05-01T00:00:00Z");
        let end = Some(start + Duration::days(4));
        let spend = Decimal::from(2);
        assert_eq!(
            lease_forecast(spend, start, end, start + Duration::days(1)),
            Decimal::from(8)
        );
        assert_eq!(
            lease_forecast(spend, start, end, start + Duration::minutes(1)),
            Decimal::from(192),
            "at least an hour of run-rate"
        );
        assert_eq!(
            lease_forecast(spend, start, None, start + Duration::days(1)),
            spend
        );
        assert_eq!(
            lease_forecast(spend, start, end, start + Duration::days(5)),
            spend,
            "past the end"
        );
    }
}
