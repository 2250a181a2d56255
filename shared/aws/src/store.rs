//! The [`Store`] port on Purser's single DynamoDB table.
//!
//! The table (`infra/template.yaml`) has a string partition key `pk`, a
//! string sort key `sk`, the TTL attribute `expires_at` (epoch seconds) and
//! four global secondary indexes, all projecting every attribute, all keyed
//! by strings:
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | account | `ACCOUNT#<id>` | `ACCOUNT` | `data` (the account as JSON), `state`, `closure_started_at`, index keys |
//! | team | `TEAM#<team>` | `TEAM` | `name`, `quota`, `members`, `notify`, `leases` |
//! | team's listing copy | `TEAMS` | `TEAM#<team>` | as the team's item |
//! | team counters | `TEAM#<team>` | `COUNTERS` | `open` |
//! | team budget | `TEAM#<team>` | `BUDGET` | `revision`, `data` (the budget as JSON) |
//! | team settled spend of a month | `TEAM#<team>` | `SETTLED#<YYYY-MM>` | `settled_at` (epoch ms), `data` (as JSON) |
//! | creations in flight | `ORG` | `CREATIONS` | `in_flight` |
//! | request idempotency key | `IDEMPOTENCY#<scope>#<key>` | `REQUEST` | `fingerprint`, `account`, `expires_at` |
//! | event claim | `IDEMPOTENCY#<key>` | `IDEMPOTENCY` | `expires_at` |
//! | team spend of a day | `SPEND#TEAM#<team>` | `DAY#<YYYY-MM-DD>` | `nanos` |
//! | account spend of a day | `SPEND#ACCOUNT#<account id>` | `DAY#<YYYY-MM-DD>` | `nanos`, `team` (once known) |
//! | team spend of a function of a month | `SPEND#FUNCTION#<team>#<YYYY-MM>` | `FUNCTION#<account id>#<function>` | `nanos`, `account_id`, `function` |
//! | deployment mark | `DEPLOYMENTS#<team>` | `<at, nine fractional digits>#<id>` | `team`, `at`, `id`, `account_id`, `stack`, `status`, `source`, `expires_at` |
//! | marker | `MARKER#<key>` | `MARKER` | `value`, `expires_at` |
//! | lease template, one version | `TEMPLATE#<name>` | `VERSION#<version, 20 digits>` | `revision`, `data` (as JSON) |
//! | lease template's latest version | `TEMPLATES` | `TEMPLATE#<name>` | `revision`, `data` |
//! | running resource (`store/running.rs`) | `RUNNING` | `<account>#<region>#<service>#<resource>` | `what` (JSON; none on a tombstone), `started_at`, `priced_until`, `stopped_at` (epoch ms), `expires_at` once stopped |
//!
//! | index | hash | range | on accounts |
//! |---|---|---|---|
//! | `by-team` | `gsi1pk` | `gsi1sk` | `TEAM#<team>`, `<created_at>#<id>` |
//! | `by-state` | `gsi2pk` | `gsi2sk` | `STATE#<state>`, `<created_at>#<id>` |
//! | `by-creation` | `gsi3pk` | | `CREATION#<creation id>`, once known |
//! | `by-account-id` | `gsi4pk` | | `AWSACCOUNT#<account id>`, once known |
//!
//! Counters move in the same transaction as the account that moves them,
//! so they never drift from the accounts they count; spend counters move in
//! the same transaction as the claim of the batch they add, so a batch
//! delivered twice adds once. A day's spend of a team or an account is one
//! item, and a range of days one `Query` on its partition; a team's
//! functions of a month are one partition, read whole. Claims and markers
//! carry `expires_at`, and every read and condition compares it with the
//! caller's `now` itself: TTL deletes expired items only lazily. Deployment
//! marks carry it too, `DEPLOYMENTS_KEPT` after their time, and are read by
//! time, not by expiry. Teams are listed from their copies in `TEAMS`,
//! written in one transaction with the team's item (`store/teams.rs`): a
//! team written before the copies existed is listed once written again.
//! A budget is replaced whole, on the condition that the stored revision is
//! the one before the new one, so of two changes from one revision one is
//! stored.

mod accounts;
mod budgets;
mod deployments;
mod items;
mod markers;
mod page;
mod running;
mod settled;
mod spend;
mod teams;
mod templates;
mod transact;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, Utc};
use purser_core::budgets::Budget;
use purser_core::leases::{LeaseTemplate, TemplateName};
use purser_core::ports::{
    AccountStore, BudgetStore, DeploymentLog, Marker, Markers, SettlementStore, SpendCounters,
    TemplateStore,
};
use purser_core::spend::SettledSpend;
use purser_core::{
    Account, AccountState, DeploymentMark, FunctionSpend, HourlySpend, IdempotencyKey, Inserted,
    Page, RateAdd, SpendAdd, StoreError, Team, TeamName, Transitioned,
};

use crate::RetryPolicy;

/// Claims a key only if nobody holds it: absent, or its claim expired.
/// DynamoDB deletes expired items lazily (up to days later), so the
/// condition must not rely on TTL having removed them.
const CLAIM_CONDITION: &str = "attribute_not_exists(#pk) OR #expires_at < :now";

/// The claim of `key` until `expires_at`, in whole seconds (TTL's unit).
fn claim_item(key: &str, expires_at: DateTime<Utc>) -> items::Item {
    let mut item = items::claim_key(key);
    item.insert(
        items::EXPIRES_AT.to_owned(),
        items::n(expires_at.timestamp()),
    );
    item
}

/// Purser's state in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retry: RetryPolicy,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: RetryPolicy {
                max_attempts: 6,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(500),
            },
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    /// Replaces how transactions cancelled for a passing reason (a conflict
    /// with a concurrent transaction on the same item, throttling) are sent
    /// again. The default tries six times, waiting at most 0.62 s in all.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Every item of the partition `pk`, all pages, strongly consistent,
    /// in sort key order (the listing partitions of teams and templates, a
    /// team's function counters of a month).
    async fn partition(&self, pk: &str, what: &str) -> Result<Vec<items::Item>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<items::Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_values(":pk", items::s(pk))
                .consistent_read(true)
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| items::unavailable(&format!("Query ({what})"), &self.table, &e))?;
            found.extend(output.items().iter().cloned());
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(found),
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        self.write_team(team).await
    }

    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        self.read_team(name).await
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.all_teams().await
    }

    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError> {
        self.open_counter(team).await
    }

    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        self.insert(account, quota, key).await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.read_account(id).await
    }

    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError> {
        self.account_by(&items::BY_CREATION, &items::creation_partition(creation_id))
            .await
    }

    /// The newest request holding it: an account lent again from a pool
    /// is held by its pooled request and by the one it serves now.
    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        self.newest_by(
            &items::BY_ACCOUNT_ID,
            &items::account_id_partition(account_id),
        )
        .await
    }

    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        match team {
            Some(team) => self.list_team(team, page, limit).await,
            None => self.list_all(page, limit).await,
        }
    }

    async fn accounts_in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError> {
        self.in_state(state).await
    }

    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        self.apply_transition(from, next).await
    }

    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        self.count_closures(since).await
    }
}

#[async_trait]
impl SpendCounters for DynamoStore {
    async fn record_spend_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        self.add_spend_once(&key, now, expires_at, None, adds, rates)
            .await
    }

    async fn record_function_spend_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: &str,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        self.add_spend_once(&key, now, expires_at, Some(function), adds, rates)
            .await
    }

    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        self.top_functions(team, period, limit).await
    }

    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.spend_between(format!("{}{team}", items::SPEND_TEAM_PREFIX), from, to)
            .await
    }

    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.spend_between(
            format!("{}{account_id}", items::SPEND_ACCOUNT_PREFIX),
            from,
            to,
        )
        .await
    }

    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError> {
        self.hourly_between(account_id, from, to).await
    }
}

#[async_trait]
impl BudgetStore for DynamoStore {
    /// One conditional `PutItem` on the stored revision, so DynamoDB
    /// decides between concurrent changes.
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        self.write_budget(budget).await
    }

    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        self.read_budget(team).await
    }

    async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        self.all_budgets().await
    }
}

#[async_trait]
impl TemplateStore for DynamoStore {
    /// One transaction: the listing copy on its revision, the new version
    /// item on its absence (`store/templates.rs`).
    async fn put_template(&self, template: &LeaseTemplate) -> Result<bool, StoreError> {
        self.write_template(template).await
    }

    async fn template(&self, name: &TemplateName) -> Result<Option<LeaseTemplate>, StoreError> {
        self.read_template(name).await
    }

    async fn template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        self.read_template_version(name, version).await
    }

    async fn templates(&self) -> Result<Vec<LeaseTemplate>, StoreError> {
        self.all_templates().await
    }
}

#[async_trait]
impl SettlementStore for DynamoStore {
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError> {
        self.write_settled_spend(settled).await
    }

    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        self.read_settled_spend(team, period).await
    }
}

#[async_trait]
impl DeploymentLog for DynamoStore {
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        self.put_deployment(mark).await
    }

    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        self.deployments_since(team, since, limit).await
    }
}

#[async_trait]
impl Markers for DynamoStore {
    /// One conditional `PutItem`, so DynamoDB decides between concurrent
    /// claims. Times are whole seconds, the unit of DynamoDB's TTL: a claim
    /// is held until the whole second after `expires_at`, never less.
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim_item(key, expires_at)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(table = %self.table, key, claimed = true, "claim_once");
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!(table = %self.table, key, claimed = false, "claim_once");
                Ok(false)
            }
            Err(e) => Err(StoreError::Unavailable(format!(
                "PutItem on table {}: {}",
                self.table,
                DisplayErrorContext(&e)
            ))),
        }
    }

    /// A strongly consistent read of the claim, so a claim just taken by
    /// another function is seen.
    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        match self.get(items::claim_key(key), "claim").await? {
            Some(item) => items::unexpired(&item, now),
            None => Ok(false),
        }
    }

    async fn remember(
        &self,
        marker: &Marker,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        self.put_marker(key, value, now, expires_at).await
    }

    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        self.read_marker(key, now).await
    }

    async fn forget(&self, marker: &Marker) -> Result<(), StoreError> {
        let key = marker.key();
        let key = key.as_str();
        self.delete_marker(key).await
    }

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        let key = marker.key();
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::claim_key(&key)))
            .send()
            .await
            .map_err(|e| items::unavailable("DeleteItem (claim)", &self.table, &e))?;
        tracing::debug!(table = %self.table, key, "release");
        Ok(())
    }
}
