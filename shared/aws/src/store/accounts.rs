//! Accounts: inserting requests within their team's quota, moving them
//! through their lifecycle together with the counters they move, finding
//! and listing them.
//!
//! Reads by key are strongly consistent. Reads through an index are not
//! (DynamoDB offers no consistent reads on global secondary indexes): a
//! lookup by creation or account id therefore only takes the account's id
//! from the index and reads the account itself by key, and listings may
//! lag a write by a moment, which every writer tolerates because writes
//! are conditional on the state they expect.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, Update,
};
use chrono::{DateTime, Duration, Utc};
use purser_core::ports::MAX_CONCURRENT_CREATIONS;
use purser_core::{
    Account, AccountState, IdempotencyKey, Inserted, Page, StoreError, TeamName, Transitioned,
};

use super::DynamoStore;
use super::items::{
    self, ACCOUNT_PREFIX, BY_STATE, BY_TEAM, CLOSURE_STARTED_AT, EXPIRES_AT, FINGERPRINT,
    IN_FLIGHT, Index, Item, KEY_ACCOUNT, OPEN, PK, SK, STATE, VERSION, n, s, unavailable,
};
use super::page;
use super::transact::{Reason, Transacted};

/// How long a request's idempotency key stands: a client retrying within a
/// day gets the same account back.
const KEY_LIFETIME: Duration = Duration::hours(24);

/// Items a scan of the whole table reads per call when listing every
/// team's accounts (at least one more than the page asks for).
const SCAN_BATCH: usize = 100;

/// The key attributes a page token of each listing carries.
const TEAM_PAGE_KEY: [&str; 4] = [PK, SK, "gsi1pk", "gsi1sk"];
const TABLE_PAGE_KEY: [&str; 2] = [PK, SK];

/// Which accounts a listing pages through.
enum Listing<'a> {
    /// One team's, newest first, through `by-team`.
    Team(&'a str),
    /// Every account, in the table's order, by a filtered scan.
    All,
}

impl DynamoStore {
    /// One transaction, its items in the order their refusals matter: the
    /// idempotency key (a replay is a replay even if the quota has filled
    /// since), the account, then the team's counter of open accounts.
    pub(super) async fn insert(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        let mut transaction = Vec::with_capacity(3);
        if let Some(key) = key {
            transaction.push(self.put_request_key(key, account)?);
        }
        let account_at = transaction.len();
        transaction.push(self.put_account(
            account,
            "attribute_not_exists(#pk)",
            &[("#pk", PK)],
            &[],
        )?);
        let counter_at = transaction.len();
        transaction.push(self.take_quota(&account.team, quota)?);

        let reasons = match self.transact("insert_account", transaction).await? {
            Transacted::Committed => {
                tracing::debug!(
                    table = %self.table,
                    request_id = %account.id,
                    team = %account.team,
                    quota,
                    outcome = "created",
                    "insert_account"
                );
                return Ok(Inserted::Created);
            }
            Transacted::Refused(reasons) => reasons,
        };
        let outcome = match (key, reasons.first()) {
            (Some(key), Some(Reason::ConditionFailed(held))) => {
                self.replay(key, held.as_ref()).await?
            }
            _ => match (reasons.get(account_at), reasons.get(counter_at)) {
                (Some(Reason::ConditionFailed(existing)), _) => {
                    already_inserted(account, existing.as_ref())?
                }
                (_, Some(Reason::ConditionFailed(_))) => Inserted::QuotaExceeded { quota },
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "TransactWriteItems (insert_account) on table {}: refused for no \
                         condition Purser set: {reasons:?}",
                        self.table
                    )));
                }
            },
        };
        tracing::debug!(
            table = %self.table,
            request_id = %account.id,
            team = %account.team,
            quota,
            outcome = outcome_name(&outcome),
            "insert_account"
        );
        Ok(outcome)
    }

    /// The key was taken (and has not expired): by this very request, or
    /// by another one.
    async fn replay(
        &self,
        key: &IdempotencyKey,
        held: Option<&Item>,
    ) -> Result<Inserted, StoreError> {
        let fetched;
        let held = match held {
            Some(item) => item,
            None => {
                fetched = self
                    .get(items::request_key(&key.storage_key()), "idempotency key")
                    .await?;
                fetched.as_ref().ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "idempotency key {} was taken, then vanished; try again",
                        key.storage_key()
                    ))
                })?
            }
        };
        if items::string(held, FINGERPRINT)? != key.fingerprint {
            return Ok(Inserted::KeyReused);
        }
        let id = items::string(held, KEY_ACCOUNT)?;
        match self.read_account(id).await? {
            Some(existing) => Ok(Inserted::Replayed(existing)),
            None => Err(StoreError::Corrupt(format!(
                "idempotency key {} names account {id}, which does not exist",
                key.storage_key()
            ))),
        }
    }

    /// One transaction: the account, if it is still in state `from` at the
    /// revision `next` was made from; the
    /// team's open accounts, when openness changes; a creation slot, when
    /// holding one changes (taking one only while fewer than
    /// `MAX_CONCURRENT_CREATIONS` are held).
    pub(super) async fn apply_transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        // Accounts stored before revisions were kept have no `version`: they
        // are revision 0.
        let Some(base) = next.base_version() else {
            return Ok(Transitioned::Stale(self.read_account(&next.id).await?));
        };
        let condition = if base == 0 {
            "#state = :from AND (attribute_not_exists(#version) OR #version = :base)"
        } else {
            "#state = :from AND #version = :base"
        };
        let mut transaction = vec![self.put_account(
            next,
            condition,
            &[("#state", STATE), ("#version", VERSION)],
            &[(":from", s(from.as_str())), (":base", n(base))],
        )?];
        match (from.is_open(), next.state.is_open()) {
            (false, true) => transaction.push(self.add_open(&next.team, 1)?),
            (true, false) => transaction.push(self.add_open(&next.team, -1)?),
            _ => {}
        }
        let slot_at = match (from.holds_creation_slot(), next.state.holds_creation_slot()) {
            (false, true) => {
                transaction.push(self.take_creation_slot()?);
                Some(transaction.len() - 1)
            }
            (true, false) => {
                transaction.push(self.release_creation_slot()?);
                None
            }
            _ => None,
        };

        let outcome = match self.transact("transition", transaction).await? {
            Transacted::Committed => Transitioned::Applied,
            Transacted::Refused(reasons) => match reasons.first() {
                Some(Reason::ConditionFailed(current)) => {
                    Transitioned::Stale(current.as_ref().map(items::account_from_item).transpose()?)
                }
                _ if slot_at
                    .and_then(|at| reasons.get(at))
                    .is_some_and(|r| matches!(r, Reason::ConditionFailed(_))) =>
                {
                    Transitioned::NoCreationSlot
                }
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "TransactWriteItems (transition) on table {}: refused for no \
                         condition Purser set: {reasons:?}",
                        self.table
                    )));
                }
            },
        };
        tracing::debug!(
            table = %self.table,
            request_id = %next.id,
            from = %from,
            to = %next.state,
            outcome = match &outcome {
                Transitioned::Applied => "applied",
                Transitioned::Stale(_) => "stale",
                Transitioned::NoCreationSlot => "no creation slot",
            },
            "transition"
        );
        Ok(outcome)
    }

    pub(super) async fn read_account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.get(items::account_key(id), "account")
            .await?
            .as_ref()
            .map(items::account_from_item)
            .transpose()
    }

    /// The account whose key in the sparse `index` is `value`: the index
    /// gives its id, the table gives the account as it stands now.
    pub(super) async fn account_by(
        &self,
        index: &Index,
        value: &str,
    ) -> Result<Option<Account>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression("#key = :value")
            .expression_attribute_names("#key", index.hash)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":value", s(value))
            .projection_expression("#pk")
            .send()
            .await
            .map_err(|e| unavailable(&format!("Query ({})", index.name), &self.table, &e))?;
        let found = output.items();
        if found.len() > 1 {
            tracing::warn!(
                table = %self.table,
                index = index.name,
                value,
                accounts = found.len(),
                "several accounts share a key that should be unique; taking the first"
            );
        }
        let Some(item) = found.first() else {
            return Ok(None);
        };
        let pk = items::string(item, PK)?;
        let id = pk.strip_prefix(ACCOUNT_PREFIX).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "index {} holds {pk}, which is not an account",
                index.name
            ))
        })?;
        self.read_account(id).await
    }

    /// The newest (by `created_at`, then id) of the accounts an index
    /// holds under `value`: an AWS account's requests are few (one per
    /// lease it served), so each is read.
    pub(super) async fn newest_by(
        &self,
        index: &Index,
        value: &str,
    ) -> Result<Option<Account>, StoreError> {
        let mut start = None;
        let mut ids = Vec::new();
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index.name)
                .key_condition_expression("#key = :value")
                .expression_attribute_names("#key", index.hash)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":value", s(value))
                .projection_expression("#pk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(&format!("Query ({})", index.name), &self.table, &e))?;
            for item in output.items() {
                let pk = items::string(item, PK)?;
                let id = pk.strip_prefix(ACCOUNT_PREFIX).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "index {} holds {pk}, which is not an account",
                        index.name
                    ))
                })?;
                ids.push(id.to_string());
            }
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        let mut newest: Option<Account> = None;
        for id in ids {
            if let Some(account) = self.read_account(&id).await?
                && newest
                    .as_ref()
                    .is_none_or(|n| (account.created_at, &account.id) > (n.created_at, &n.id))
            {
                newest = Some(account);
            }
        }
        Ok(newest)
    }

    /// A team's accounts, newest first.
    pub(super) async fn list_team(
        &self,
        team: &TeamName,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let partition = items::team_partition(team);
        let start = page
            .map(|token| page::decode(token, &TEAM_PAGE_KEY, &[(BY_TEAM.hash, &partition)]))
            .transpose()?;
        self.page(&Listing::Team(&partition), start, limit).await
    }

    /// Every team's accounts, by a filtered scan: in the table's order,
    /// which is not creation order (no index orders all accounts by time
    /// without putting them all in one partition).
    pub(super) async fn list_all(
        &self,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let start = page
            .map(|token| page::decode(token, &TABLE_PAGE_KEY, &[]))
            .transpose()?;
        self.page(&Listing::All, start, limit).await
    }

    /// Reads until more than `limit` accounts came back or the listing
    /// ended, so that a page says there is a next one only if there is.
    /// The token resumes after the last account returned, not after the
    /// last one read. A `limit` of 0 is taken as 1.
    async fn page(
        &self,
        listing: &Listing<'_>,
        mut start: Option<Item>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let limit = limit.max(1);
        let mut found: Vec<Item> = Vec::new();
        loop {
            let (items, last) = self.fetch(listing, start.take(), limit + 1).await?;
            found.extend(items);
            if found.len() > limit {
                break;
            }
            match last {
                Some(last) => start = Some(last),
                None => {
                    return Ok(Page {
                        items: accounts(&found)?,
                        next: None,
                    });
                }
            }
        }
        found.truncate(limit);
        let key: &[&str] = match listing {
            Listing::Team(_) => &TEAM_PAGE_KEY,
            Listing::All => &TABLE_PAGE_KEY,
        };
        let next = found
            .last()
            .map(|last| page::encode(last, key))
            .transpose()?;
        Ok(Page {
            items: accounts(&found)?,
            next,
        })
    }

    /// One call of a listing: its items and `LastEvaluatedKey`.
    async fn fetch(
        &self,
        listing: &Listing<'_>,
        start: Option<Item>,
        want: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        match listing {
            Listing::Team(partition) => {
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_TEAM.name)
                    .key_condition_expression("#team = :team")
                    .expression_attribute_names("#team", BY_TEAM.hash)
                    .expression_attribute_values(":team", s(*partition))
                    .scan_index_forward(false)
                    .limit(i32::try_from(want).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| unavailable("Query (by-team)", &self.table, &e))?;
                Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
            }
            Listing::All => {
                let output = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("begins_with(#pk, :accounts)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":accounts", s(ACCOUNT_PREFIX))
                    .limit(i32::try_from(want.max(SCAN_BATCH)).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| unavailable("Scan (accounts)", &self.table, &e))?;
                Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
            }
        }
    }

    /// Every account in `state`, oldest first, all pages.
    pub(super) async fn in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_STATE.name)
                .key_condition_expression("#state = :state")
                .expression_attribute_names("#state", BY_STATE.hash)
                .expression_attribute_values(":state", s(items::state_partition(state)))
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query (by-state)", &self.table, &e))?;
            found.extend(accounts(output.items())?);
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(found),
            }
        }
    }

    /// Closing and closed accounts whose `CloseAccount` was called at or
    /// after `since`, counted by DynamoDB (nothing but counts comes back).
    pub(super) async fn count_closures(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let mut total: u32 = 0;
        for state in [AccountState::Closing, AccountState::Closed] {
            let mut start = None;
            loop {
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_STATE.name)
                    .key_condition_expression("#state = :state")
                    .filter_expression("#closure >= :since")
                    .expression_attribute_names("#state", BY_STATE.hash)
                    .expression_attribute_names("#closure", CLOSURE_STARTED_AT)
                    .expression_attribute_values(":state", s(items::state_partition(state)))
                    .expression_attribute_values(":since", s(items::sortable(since)))
                    .select(Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| unavailable("Query (closures)", &self.table, &e))?;
                total = total.saturating_add(u32::try_from(output.count).unwrap_or(0));
                match output.last_evaluated_key {
                    Some(last) => start = Some(last),
                    None => break,
                }
            }
        }
        Ok(total)
    }

    // ------------------------------------------------------------ items of transactions

    /// Puts the account's item if `condition` holds, returning the item as
    /// it stood when it does not (so a refusal says how things are).
    fn put_account(
        &self,
        account: &Account,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::account_item(account)?))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in names {
            put = put.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            put = put.expression_attribute_values(*placeholder, value.clone());
        }
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// Takes the request's idempotency key, unless another request holds
    /// it: one that has not expired (TTL deletes expired items only
    /// eventually, so the condition does not count on it).
    fn put_request_key(
        &self,
        key: &IdempotencyKey,
        account: &Account,
    ) -> Result<TransactWriteItem, StoreError> {
        // The request's own time, not the host's, so the window is the
        // same whatever clock the caller runs on.
        let now = account.created_at;
        let mut item = items::request_key(&key.storage_key());
        item.insert(FINGERPRINT.to_owned(), s(&key.fingerprint));
        item.insert(KEY_ACCOUNT.to_owned(), s(&account.id));
        item.insert(EXPIRES_AT.to_owned(), n((now + KEY_LIFETIME).timestamp()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at < :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// Counts one more open account for the team, if it stays within
    /// `quota`. A counter not yet written is zero, which is within any
    /// quota but zero.
    fn take_quota(&self, team: &TeamName, quota: u32) -> Result<TransactWriteItem, StoreError> {
        let condition = if quota == 0 {
            "#open < :quota"
        } else {
            "attribute_not_exists(#open) OR #open < :quota"
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::counters_key(team)))
            .update_expression("ADD #open :one")
            .condition_expression(condition)
            .expression_attribute_names("#open", OPEN)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":quota", n(quota));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    fn add_open(&self, team: &TeamName, delta: i32) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::counters_key(team)))
            .update_expression("ADD #open :delta")
            .expression_attribute_names("#open", OPEN)
            .expression_attribute_values(":delta", n(delta));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    fn take_creation_slot(&self) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::creations_key()))
            .update_expression("ADD #in_flight :one")
            .condition_expression("attribute_not_exists(#in_flight) OR #in_flight < :max")
            .expression_attribute_names("#in_flight", IN_FLIGHT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_CONCURRENT_CREATIONS));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    fn release_creation_slot(&self) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::creations_key()))
            .update_expression("ADD #in_flight :minus_one")
            .expression_attribute_names("#in_flight", IN_FLIGHT)
            .expression_attribute_values(":minus_one", n(-1));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

/// The account's id is taken. Ids are fresh for each request, so this
/// is the same insert sent again after its answer was lost (it applied
/// in full, counter included): or a bug that must not pass silently.
fn already_inserted(account: &Account, existing: Option<&Item>) -> Result<Inserted, StoreError> {
    let existing = existing.map(items::account_from_item).transpose()?;
    if existing.as_ref() == Some(account) {
        Ok(Inserted::Created)
    } else {
        Err(StoreError::Corrupt(format!(
            "account id {} already holds another account",
            account.id
        )))
    }
}

fn accounts(found: &[Item]) -> Result<Vec<Account>, StoreError> {
    found.iter().map(items::account_from_item).collect()
}

/// A request the SDK would not build lacks a required field: a bug here,
/// reported rather than unwrapped.
fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Unavailable(format!("a DynamoDB request is incomplete: {e}")))
}

fn outcome_name(outcome: &Inserted) -> &'static str {
    match outcome {
        Inserted::Created => "created",
        Inserted::Replayed(_) => "replayed",
        Inserted::KeyReused => "key reused",
        Inserted::QuotaExceeded { .. } => "quota exceeded",
    }
}
