//! The Store port on the local SQLite database. Every write that must keep
//! a rule (a team's quota, the organization's five concurrent creations, an
//! idempotency key) runs in one `BEGIN IMMEDIATE` transaction, so SQLite
//! takes the write lock before reading what the rule depends on.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use purser_core::budgets::Budget;
use purser_core::ports::MAX_CONCURRENT_CREATIONS;
use purser_core::ports::{
    AccountStore, BudgetStore, Marker, Markers, SettlementStore, SpendCounters,
};
use purser_core::spend::SettledSpend;
use purser_core::{
    Account, AccountState, IdempotencyKey, Inserted, Page, SpendAdd, StoreError, Team, TeamName,
    Transitioned,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::db::{Db, DbError, epoch_ms};

/// How long an `Idempotency-Key` stands for its request.
const KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Claims a key (?1) until ?2: inserts it, or takes over a claim that
/// expired before ?3 (now). A claim stands through its expiry instant. SQLite
/// serializes writers, so of concurrent claims exactly one changes a row.
const CLAIM: &str = "INSERT INTO idempotency (key, expires_ms) VALUES (?1, ?2)
     ON CONFLICT (key) DO UPDATE SET expires_ms = excluded.expires_ms
     WHERE idempotency.expires_ms < ?3";

/// Adds nanos (?4) to the counter of a scope (?1), key (?2) and day (?3).
const ADD_SPEND: &str = "INSERT INTO spend (scope, key, day, nanos) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (scope, key, day) DO UPDATE SET nanos = nanos + excluded.nanos";

/// The `spend` scopes.
const TEAM: &str = "team";
const ACCOUNT: &str = "account";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn unavailable(e: DbError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode(data: &str) -> Result<Account, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("an account row: {e}")))
}

/// An account as its row: the JSON and the columns queries use.
struct AccountRow {
    id: String,
    state: &'static str,
    team: String,
    created_at: i64,
    creation_id: Option<String>,
    account_id: Option<String>,
    closure_started_at: Option<i64>,
    data: String,
    open: bool,
    holds_slot: bool,
}

impl AccountRow {
    fn of(account: &Account) -> Result<Self, StoreError> {
        let data = serde_json::to_string(account)
            .map_err(|e| StoreError::Corrupt(format!("account {}: {e}", account.id)))?;
        Ok(Self {
            id: account.id.clone(),
            state: account.state.as_str(),
            team: account.team.to_string(),
            created_at: epoch_ms(account.created_at),
            creation_id: account.creation_id.clone(),
            account_id: account.account_id.clone(),
            closure_started_at: account.closure_started_at.map(epoch_ms),
            data,
            open: account.state.is_open(),
            holds_slot: account.state.holds_creation_slot(),
        })
    }
}

/// Adds `delta` to the team's open accounts, never below zero.
fn add_open(conn: &Connection, team: &str, delta: i64) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO team_counters (team, open) VALUES (?1, MAX(?2, 0))
         ON CONFLICT (team) DO UPDATE SET open = MAX(open + ?2, 0)",
        params![team, delta],
    )?;
    Ok(())
}

fn open_of(conn: &Connection, team: &str) -> Result<i64, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT open FROM team_counters WHERE team = ?1",
            [team],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// The page token: where the previous page stopped, opaque to callers.
fn page_token(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}|{id}"))
}

fn parse_page_token(token: &str) -> Result<(i64, String), StoreError> {
    let bad = |why: &str| StoreError::BadPageToken(format!("{token:?} {why}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("is not base64url"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("is not a page token"))?;
    let (created_at, id) = text
        .split_once('|')
        .ok_or_else(|| bad("is not a page token"))?;
    let created_at = created_at.parse().map_err(|_| bad("is not a page token"))?;
    if id.is_empty() {
        return Err(bad("is not a page token"));
    }
    Ok((created_at, id.to_string()))
}

fn decode_budget(data: &str) -> Result<Budget, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("a budget row: {e}")))
}

fn count(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("a count of {n}")))
}

enum InsertOutcome {
    Created,
    Replayed(String),
    /// The key names an account that is not there.
    ReplayedMissing(String),
    KeyReused,
    QuotaExceeded,
    Duplicate,
}

enum TransitionOutcome {
    Applied,
    Stale(Option<String>),
    NoCreationSlot,
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn put_team(&self, team: &Team) -> Result<(), StoreError> {
        let members = serde_json::to_string(&team.members)
            .map_err(|e| StoreError::Corrupt(format!("team {}: {e}", team.name)))?;
        let (name, quota) = (team.name.to_string(), i64::from(team.quota));
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO teams (name, quota, members) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET quota = excluded.quota, members = excluded.members",
                    params![name, quota, members],
                )
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        let key = name.to_string();
        let row: Option<(i64, String)> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT quota, members FROM teams WHERE name = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        let Some((quota, members)) = row else {
            return Ok(None);
        };
        Ok(Some(Team {
            name: name.clone(),
            quota: count(quota)?,
            members: serde_json::from_str(&members)
                .map_err(|e| StoreError::Corrupt(format!("members of team {name}: {e}")))?,
        }))
    }

    async fn open_accounts(&self, team: &TeamName) -> Result<u32, StoreError> {
        let team = team.to_string();
        let open = self
            .db
            .call(move |conn| open_of(conn, &team))
            .await
            .map_err(unavailable)?;
        count(open)
    }

    /// The key is looked at first (a replay is no new request, whatever
    /// the quota says now), then the quota; the key expires after 24 hours
    /// of the request's `created_at`.
    async fn insert_account(
        &self,
        account: &Account,
        quota: u32,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted, StoreError> {
        let row = AccountRow::of(account)?;
        let now = row.created_at;
        let key = key.map(|k| (k.storage_key(), k.fingerprint.clone()));
        let outcome = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some((key, fingerprint)) = &key {
                    let held: Option<(String, String)> = tx
                        .query_row(
                            "SELECT fingerprint, account_id FROM request_keys
                             WHERE key = ?1 AND expires_ms > ?2",
                            params![key, now],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    if let Some((held_fingerprint, account_id)) = held {
                        if &held_fingerprint != fingerprint {
                            return Ok(InsertOutcome::KeyReused);
                        }
                        let data: Option<String> = tx
                            .query_row(
                                "SELECT data FROM accounts WHERE id = ?1",
                                [&account_id],
                                |r| r.get(0),
                            )
                            .optional()?;
                        return Ok(match data {
                            Some(data) => InsertOutcome::Replayed(data),
                            None => InsertOutcome::ReplayedMissing(account_id),
                        });
                    }
                }
                if row.open && open_of(&tx, &row.team)? >= i64::from(quota) {
                    return Ok(InsertOutcome::QuotaExceeded);
                }
                let inserted = tx.execute(
                    "INSERT INTO accounts (id, state, team, created_at, creation_id, account_id, closure_started_at, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                    params![
                        row.id,
                        row.state,
                        row.team,
                        row.created_at,
                        row.creation_id,
                        row.account_id,
                        row.closure_started_at,
                        row.data
                    ],
                )?;
                if inserted == 0 {
                    return Ok(InsertOutcome::Duplicate);
                }
                if row.open {
                    add_open(&tx, &row.team, 1)?;
                }
                if let Some((key, fingerprint)) = &key {
                    tx.execute(
                        "INSERT INTO request_keys (key, fingerprint, account_id, expires_ms)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                             account_id = excluded.account_id, expires_ms = excluded.expires_ms",
                        params![key, fingerprint, row.id, now + KEY_TTL_MS],
                    )?;
                }
                tx.commit()?;
                Ok(InsertOutcome::Created)
            })
            .await
            .map_err(unavailable)?;
        match outcome {
            InsertOutcome::Created => Ok(Inserted::Created),
            InsertOutcome::Replayed(data) => Ok(Inserted::Replayed(decode(&data)?)),
            InsertOutcome::ReplayedMissing(id) => Err(StoreError::Corrupt(format!(
                "an idempotency key names account {id}, which is not stored"
            ))),
            InsertOutcome::KeyReused => Ok(Inserted::KeyReused),
            InsertOutcome::QuotaExceeded => Ok(Inserted::QuotaExceeded { quota }),
            InsertOutcome::Duplicate => Err(StoreError::Corrupt(format!(
                "account {} already exists; request ids must be fresh",
                account.id
            ))),
        }
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.one("id", id).await
    }

    async fn account_by_creation(&self, creation_id: &str) -> Result<Option<Account>, StoreError> {
        self.one("creation_id", creation_id).await
    }

    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        self.one("account_id", account_id).await
    }

    /// Keyset pagination on (created_at, id), so pages stay right while
    /// accounts are added; `limit` is at least 1.
    async fn list_accounts(
        &self,
        team: Option<&TeamName>,
        page: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let after = page.map(parse_page_token).transpose()?;
        let team = team.map(TeamName::to_string);
        let limit = limit.max(1);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let rows: Vec<(i64, String, String)> = self
            .db
            .call(move |conn| {
                // Rows below the token in (created_at, id) order; the first
                // page starts above every row.
                let (at, id) = after.unwrap_or((i64::MAX, String::new()));
                let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
                match team {
                    Some(team) => conn
                        .prepare(
                            "SELECT created_at, id, data FROM accounts
                             WHERE team = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))
                             ORDER BY created_at DESC, id DESC LIMIT ?4",
                        )?
                        .query_map(params![team, at, id, fetch], row)?
                        .collect(),
                    None => conn
                        .prepare(
                            "SELECT created_at, id, data FROM accounts
                             WHERE created_at < ?1 OR (created_at = ?1 AND id < ?2)
                             ORDER BY created_at DESC, id DESC LIMIT ?3",
                        )?
                        .query_map(params![at, id, fetch], row)?
                        .collect(),
                }
            })
            .await
            .map_err(unavailable)?;
        let more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        let next = match rows.last() {
            Some((created_at, id, _)) if more => Some(page_token(*created_at, id)),
            _ => None,
        };
        let items = rows
            .iter()
            .map(|(_, _, data)| decode(data))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn accounts_in_state(&self, state: AccountState) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<String> = self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT data FROM accounts WHERE state = ?1 ORDER BY created_at, id",
                )?;
                stmt.query_map([state.as_str()], |r| r.get(0))?.collect()
            })
            .await
            .map_err(unavailable)?;
        rows.iter().map(|data| decode(data)).collect()
    }

    /// One immediate transaction: the state check, the counters and the
    /// write. The stored state equals `from` when the write happens, so the
    /// counters move by what `from` and `next.state` hold.
    async fn transition(
        &self,
        from: AccountState,
        next: &Account,
    ) -> Result<Transitioned, StoreError> {
        let row = AccountRow::of(next)?;
        let outcome = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current: Option<(String, String, String)> = tx
                    .query_row(
                        "SELECT state, team, data FROM accounts WHERE id = ?1",
                        [&row.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((state, team, data)) = current else {
                    return Ok(TransitionOutcome::Stale(None));
                };
                if state != from.as_str() {
                    return Ok(TransitionOutcome::Stale(Some(data)));
                }
                if row.holds_slot && !from.holds_creation_slot() {
                    let in_flight: i64 = tx.query_row(
                        "SELECT in_flight FROM creation_slots WHERE id = 1",
                        [],
                        |r| r.get(0),
                    )?;
                    if in_flight >= i64::from(MAX_CONCURRENT_CREATIONS) {
                        return Ok(TransitionOutcome::NoCreationSlot);
                    }
                    tx.execute(
                        "UPDATE creation_slots SET in_flight = in_flight + 1 WHERE id = 1",
                        [],
                    )?;
                } else if from.holds_creation_slot() && !row.holds_slot {
                    tx.execute(
                        "UPDATE creation_slots SET in_flight = MAX(in_flight - 1, 0) WHERE id = 1",
                        [],
                    )?;
                }
                let same_team = team == row.team;
                if from.is_open() && !(row.open && same_team) {
                    add_open(&tx, &team, -1)?;
                }
                if row.open && !(from.is_open() && same_team) {
                    add_open(&tx, &row.team, 1)?;
                }
                tx.execute(
                    "UPDATE accounts SET state = ?2, team = ?3, created_at = ?4, creation_id = ?5,
                         account_id = ?6, closure_started_at = ?7, data = ?8
                     WHERE id = ?1",
                    params![
                        row.id,
                        row.state,
                        row.team,
                        row.created_at,
                        row.creation_id,
                        row.account_id,
                        row.closure_started_at,
                        row.data
                    ],
                )?;
                tx.commit()?;
                Ok(TransitionOutcome::Applied)
            })
            .await
            .map_err(unavailable)?;
        Ok(match outcome {
            TransitionOutcome::Applied => Transitioned::Applied,
            TransitionOutcome::Stale(None) => Transitioned::Stale(None),
            TransitionOutcome::Stale(Some(data)) => Transitioned::Stale(Some(decode(&data)?)),
            TransitionOutcome::NoCreationSlot => Transitioned::NoCreationSlot,
        })
    }

    async fn closures_since(&self, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let since = epoch_ms(since);
        let n: i64 = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM accounts
                     WHERE state IN ('closing', 'closed') AND closure_started_at >= ?1",
                    [since],
                    |r| r.get(0),
                )
            })
            .await
            .map_err(unavailable)?;
        count(n)
    }
}

#[async_trait]
impl SpendCounters for SqliteStore {
    /// One immediate transaction: the claim, then every add. A lost claim
    /// rolls back with nothing written.
    async fn record_spend_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let key = key.to_string();
        let (now, expires) = (epoch_ms(now), epoch_ms(expires_at));
        let adds: Vec<(Option<String>, String, String, i64)> = adds
            .iter()
            .map(|a| {
                (
                    a.team.as_ref().map(TeamName::to_string),
                    a.account_id.clone(),
                    day_key(a.day),
                    a.nanos,
                )
            })
            .collect();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if tx.execute(CLAIM, params![key, expires, now])? != 1 {
                    return Ok(false);
                }
                {
                    let mut add = tx.prepare(ADD_SPEND)?;
                    for (team, account_id, day, nanos) in &adds {
                        if let Some(team) = team {
                            add.execute(params![TEAM, team, day, nanos])?;
                        }
                        add.execute(params![ACCOUNT, account_id, day, nanos])?;
                    }
                }
                tx.commit()?;
                Ok(true)
            })
            .await
            .map_err(unavailable)
    }

    async fn team_spend(
        &self,
        team: &TeamName,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.spend(TEAM, team.to_string(), from, to).await
    }

    async fn account_spend(
        &self,
        account_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        self.spend(ACCOUNT, account_id.to_string(), from, to).await
    }
}

#[async_trait]
impl BudgetStore for SqliteStore {
    /// One immediate transaction: the stored revision, then the write. Of
    /// concurrent puts of one revision exactly one finds its predecessor.
    async fn put_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        let team = budget.team.to_string();
        let out_of_range = || {
            StoreError::Corrupt(format!(
                "budget of team {team}: revision {} is out of range",
                budget.revision
            ))
        };
        let revision = i64::try_from(budget.revision).map_err(|_| out_of_range())?;
        if revision < 1 {
            // Revisions start at 1: there is no stored revision 0 to follow.
            return Ok(false);
        }
        let data = serde_json::to_string(budget)
            .map_err(|e| StoreError::Corrupt(format!("budget of team {team}: {e}")))?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT revision FROM budgets WHERE team = ?1",
                        [&team],
                        |r| r.get(0),
                    )
                    .optional()?;
                let follows = match stored {
                    Some(stored) => stored == revision - 1,
                    None => revision == 1,
                };
                if !follows {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO budgets (team, revision, data) VALUES (?1, ?2, ?3)
                     ON CONFLICT (team) DO UPDATE SET revision = excluded.revision,
                         data = excluded.data",
                    params![team, revision, data],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
            .map_err(unavailable)
    }

    async fn budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        let team = team.to_string();
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row("SELECT data FROM budgets WHERE team = ?1", [team], |r| {
                    r.get(0)
                })
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.as_deref().map(decode_budget).transpose()
    }

    /// By team name.
    async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        let rows: Vec<String> = self
            .db
            .call(|conn| {
                conn.prepare("SELECT data FROM budgets ORDER BY team")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.iter().map(|data| decode_budget(data)).collect()
    }
}

#[async_trait]
impl SettlementStore for SqliteStore {
    /// One upsert whose `WHERE` keeps a later settlement.
    async fn put_settled_spend(&self, settled: &SettledSpend) -> Result<bool, StoreError> {
        let team = settled.team.to_string();
        let period = settled.period.clone();
        let settled_ms = epoch_ms(settled.settled_at);
        let data = serde_json::to_string(settled)
            .map_err(|e| StoreError::Corrupt(format!("settled spend of team {team}: {e}")))?;
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO settled_spend (team, period, settled_ms, data) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (team, period) DO UPDATE SET settled_ms = excluded.settled_ms,
                         data = excluded.data
                     WHERE settled_spend.settled_ms <= excluded.settled_ms",
                    params![team, period, settled_ms, data],
                )
            })
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        let (team, period) = (team.to_string(), period.to_string());
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT data FROM settled_spend WHERE team = ?1 AND period = ?2",
                    [team, period],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.map(|data| {
            serde_json::from_str(&data)
                .map_err(|e| StoreError::Corrupt(format!("a settled spend row: {e}")))
        })
        .transpose()
    }
}

#[async_trait]
impl Markers for SqliteStore {
    async fn claim_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let key = key.to_string();
        let (now, expires) = (epoch_ms(now), epoch_ms(expires_at));
        // One statement: insert, or take over an expired claim.
        let changed = self
            .db
            .call(move |conn| conn.execute(CLAIM, params![key, expires, now]))
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn is_claimed(&self, marker: &Marker, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let (key, now) = (key.to_string(), epoch_ms(now));
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = ?1 AND expires_ms >= ?2)",
                    params![key, now],
                    |r| r.get(0),
                )
            })
            .await
            .map_err(unavailable)
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
        let (key, value) = (key.to_string(), value.to_string());
        let (now, expires) = (epoch_ms(now), epoch_ms(expires_at));
        // As a claim: insert, or take over an expired value, in one statement.
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO markers (key, value, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                         expires_ms = excluded.expires_ms
                     WHERE markers.expires_ms < ?4",
                    params![key, value, expires, now],
                )
            })
            .await
            .map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn recall(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let (key, now) = (key.to_string(), epoch_ms(now));
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT value FROM markers WHERE key = ?1 AND expires_ms >= ?2",
                    params![key, now],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)
    }

    async fn forget(&self, marker: &Marker) -> Result<(), StoreError> {
        let key = marker.key();
        let key = key.as_str();
        let key = key.to_string();
        self.db
            .call(move |conn| conn.execute("DELETE FROM markers WHERE key = ?1", [key]))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// A day as the `spend` table keeps it: `YYYY-MM-DD`, which sorts as dates do.
fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

impl SqliteStore {
    /// The counters of one `scope` and `key` from `from` to `to`, in day order.
    async fn spend(
        &self,
        scope: &'static str,
        key: String,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        let (from, to) = (day_key(from), day_key(to));
        let rows: Vec<(String, i64)> = self
            .db
            .call(move |conn| {
                conn.prepare(
                    "SELECT day, nanos FROM spend
                     WHERE scope = ?1 AND key = ?2 AND day BETWEEN ?3 AND ?4
                     ORDER BY day",
                )?
                .query_map(params![scope, key, from, to], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(day, nanos)| {
                NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map(|day| (day, nanos))
                    .map_err(|e| StoreError::Corrupt(format!("a spend day {day:?}: {e}")))
            })
            .collect()
    }

    /// The account whose `column` equals `value`. `column` is one of this
    /// file's literals, never input.
    async fn one(&self, column: &'static str, value: &str) -> Result<Option<Account>, StoreError> {
        let value = value.to_string();
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    &format!("SELECT data FROM accounts WHERE {column} = ?1 LIMIT 1"),
                    [value],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.as_deref().map(decode).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A marker named `name`: which kind does not matter to a store, only the
    /// key it is stored under.
    fn marker(name: &str) -> Marker {
        Marker::Closing {
            account_id: name.into(),
        }
    }
    use chrono::Duration;
    use purser_core::NewAccount;
    use purser_core::accounts::new_id;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        (dir, store)
    }

    fn request(team: &str, at: DateTime<Utc>) -> Account {
        let input = NewAccount {
            team: TeamName::parse(team).unwrap(),
            owner: "ana@example.com".into(),
            purpose: "load tests".into(),
            lease_days: None,
        };
        Account::request(new_id(), input, "arn:aws:iam::123456789012:user/ana", at).unwrap()
    }

    fn key(scope: &str, key: &str, fingerprint: &str) -> IdempotencyKey {
        IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
            fingerprint: fingerprint.into(),
        }
    }

    fn moved(account: &Account, state: AccountState) -> Account {
        let mut next = account.clone();
        next.state = state;
        next.updated_at = account.updated_at + Duration::seconds(1);
        next
    }

    fn in_flight(store: &SqliteStore) -> i64 {
        store
            .db
            .call_blocking(|c| {
                c.query_row("SELECT in_flight FROM creation_slots", [], |r| r.get(0))
            })
            .unwrap()
    }

    fn team(name: &str) -> TeamName {
        TeamName::parse(name).unwrap()
    }

    #[tokio::test]
    async fn a_key_is_claimed_once_until_it_expires() {
        let (_dir, store) = store();
        let now = Utc::now();
        let later = now + Duration::hours(1);
        assert!(store.claim_once(&marker("k"), now, later).await.unwrap());
        assert!(!store.claim_once(&marker("k"), now, later).await.unwrap());
        assert!(
            store
                .claim_once(&marker("other"), now, later)
                .await
                .unwrap()
        );
        let after_expiry = later + Duration::seconds(1);
        assert!(
            store
                .claim_once(
                    &marker("k"),
                    after_expiry,
                    after_expiry + Duration::hours(1)
                )
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_claims_exactly_one_wins() {
        let (_dir, store) = store();
        let now = Utc::now();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .claim_once(&marker("same"), now, now + Duration::minutes(5))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    }

    #[tokio::test]
    async fn teams_round_trip() {
        let (_dir, store) = store();
        assert_eq!(store.team(&team("payments")).await.unwrap(), None);
        let mut t = Team {
            name: team("payments"),
            quota: 3,
            members: vec!["arn:aws:iam::123456789012:user/ana".into()],
        };
        store.put_team(&t).await.unwrap();
        assert_eq!(store.team(&t.name).await.unwrap(), Some(t.clone()));
        t.quota = 7;
        t.members.clear();
        store.put_team(&t).await.unwrap();
        assert_eq!(store.team(&t.name).await.unwrap(), Some(t));
    }

    #[tokio::test]
    async fn requests_count_against_the_team_quota_until_closed() {
        let (_dir, store) = store();
        let now = Utc::now();
        let first = request("payments", now);
        let second = request("payments", now);
        assert_eq!(
            store.insert_account(&first, 2, None).await.unwrap(),
            Inserted::Created
        );
        assert_eq!(
            store.insert_account(&second, 2, None).await.unwrap(),
            Inserted::Created
        );
        let third = request("payments", now);
        assert_eq!(
            store.insert_account(&third, 2, None).await.unwrap(),
            Inserted::QuotaExceeded { quota: 2 }
        );
        assert_eq!(store.account(&third.id).await.unwrap(), None);
        // Another team has its own quota.
        assert_eq!(
            store
                .insert_account(&request("search", now), 2, None)
                .await
                .unwrap(),
            Inserted::Created
        );
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 2);
        assert_eq!(store.open_accounts(&team("nobody")).await.unwrap(), 0);
        // A withdrawn request no longer counts.
        let withdrawn = moved(&first, AccountState::Closed);
        assert_eq!(
            store
                .transition(AccountState::Requested, &withdrawn)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
        assert_eq!(
            store.insert_account(&third, 2, None).await.unwrap(),
            Inserted::Created
        );
        assert_eq!(store.account(&third.id).await.unwrap(), Some(third));
    }

    #[tokio::test]
    async fn idempotency_keys_replay_refuse_and_expire() {
        let (_dir, store) = store();
        let now = Utc::now();
        let first = request("payments", now);
        let k = key("arn:aws:iam::1:user/ana", "k1", "fp-a");
        assert_eq!(
            store.insert_account(&first, 5, Some(&k)).await.unwrap(),
            Inserted::Created
        );
        // The same request again: the first account, nothing new.
        let again = request("payments", now + Duration::minutes(1));
        assert_eq!(
            store.insert_account(&again, 5, Some(&k)).await.unwrap(),
            Inserted::Replayed(first.clone())
        );
        assert_eq!(store.account(&again.id).await.unwrap(), None);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
        // A replay is answered even when the quota is now full.
        assert_eq!(
            store.insert_account(&again, 1, Some(&k)).await.unwrap(),
            Inserted::Replayed(first.clone())
        );
        // The same key with another request.
        let other = key("arn:aws:iam::1:user/ana", "k1", "fp-b");
        assert_eq!(
            store.insert_account(&again, 5, Some(&other)).await.unwrap(),
            Inserted::KeyReused
        );
        // Keys are per caller.
        let bob = key("arn:aws:iam::1:user/bob", "k1", "fp-b");
        assert_eq!(
            store.insert_account(&again, 5, Some(&bob)).await.unwrap(),
            Inserted::Created
        );
        // After 24 hours the key is free again.
        let later = request("payments", now + Duration::hours(24) + Duration::seconds(1));
        assert_eq!(
            store.insert_account(&later, 5, Some(&other)).await.unwrap(),
            Inserted::Created
        );
        assert_eq!(
            store
                .insert_account(&request("payments", later.created_at), 5, Some(&other))
                .await
                .unwrap(),
            Inserted::Replayed(later)
        );
    }

    #[tokio::test]
    async fn transitions_are_conditional_and_move_the_counters() {
        let (_dir, store) = store();
        let now = Utc::now();
        let account = request("payments", now);
        store.insert_account(&account, 5, None).await.unwrap();

        let creating = moved(&account, AccountState::Creating);
        assert_eq!(
            store
                .transition(AccountState::Requested, &creating)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 1);
        // A repeated event finds the account moved on.
        assert_eq!(
            store
                .transition(AccountState::Requested, &creating)
                .await
                .unwrap(),
            Transitioned::Stale(Some(creating.clone()))
        );
        assert_eq!(in_flight(&store), 1);

        // Same-state updates record what happened without moving counters.
        let mut started = creating.clone();
        started.creation_id = Some("car-0123456789abcdef0123456789abcdef".into());
        assert_eq!(
            store
                .transition(AccountState::Creating, &started)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 1);
        assert_eq!(
            store
                .account_by_creation("car-0123456789abcdef0123456789abcdef")
                .await
                .unwrap(),
            Some(started.clone())
        );

        let mut ready = moved(&started, AccountState::Ready);
        ready.account_id = Some("210987654321".into());
        assert_eq!(
            store
                .transition(AccountState::Creating, &ready)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 0);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
        assert_eq!(
            store.account_by_account_id("210987654321").await.unwrap(),
            Some(ready.clone())
        );
        assert_eq!(
            store.account_by_account_id("000000000000").await.unwrap(),
            None
        );

        let mut closing = moved(&ready, AccountState::Closing);
        assert_eq!(
            store
                .transition(AccountState::Ready, &closing)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 0);
        assert_eq!(store.closures_since(now).await.unwrap(), 0);
        closing.closure_started_at = Some(now + Duration::minutes(5));
        store
            .transition(AccountState::Closing, &closing)
            .await
            .unwrap();
        assert_eq!(store.closures_since(now).await.unwrap(), 1);
        assert_eq!(
            store
                .closures_since(now + Duration::minutes(6))
                .await
                .unwrap(),
            0
        );
        let closed = moved(&closing, AccountState::Closed);
        store
            .transition(AccountState::Closing, &closed)
            .await
            .unwrap();
        assert_eq!(store.closures_since(now).await.unwrap(), 1);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 0);

        let unknown = request("payments", now);
        assert_eq!(
            store
                .transition(AccountState::Requested, &unknown)
                .await
                .unwrap(),
            Transitioned::Stale(None)
        );
    }

    #[tokio::test]
    async fn a_sixth_creation_waits_for_a_free_slot() {
        let (_dir, store) = store();
        let now = Utc::now();
        let mut accounts = Vec::new();
        for _ in 0..6 {
            let a = request("payments", now);
            store.insert_account(&a, 10, None).await.unwrap();
            accounts.push(a);
        }
        for a in &accounts[..5] {
            let next = moved(a, AccountState::Creating);
            assert_eq!(
                store
                    .transition(AccountState::Requested, &next)
                    .await
                    .unwrap(),
                Transitioned::Applied
            );
        }
        let sixth = moved(&accounts[5], AccountState::Creating);
        assert_eq!(
            store
                .transition(AccountState::Requested, &sixth)
                .await
                .unwrap(),
            Transitioned::NoCreationSlot
        );
        assert_eq!(
            store.account(&sixth.id).await.unwrap(),
            Some(accounts[5].clone())
        );
        // A failed creation frees its slot; failing a request never held one.
        let failed = moved(
            &moved(&accounts[0], AccountState::Creating),
            AccountState::Failed,
        );
        assert_eq!(
            store
                .transition(AccountState::Creating, &failed)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 4);
        assert_eq!(
            store
                .transition(AccountState::Requested, &sixth)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 5);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn lists_page_newest_first_by_team() {
        let (_dir, store) = store();
        let t0 = Utc::now();
        let mut payments = Vec::new();
        for i in 0..7 {
            // Two accounts share a creation time: the id breaks the tie.
            let at = t0 + Duration::seconds(i.min(5));
            let a = request("payments", at);
            store.insert_account(&a, 100, None).await.unwrap();
            payments.push(a);
        }
        let search = request("search", t0 + Duration::seconds(3));
        store.insert_account(&search, 100, None).await.unwrap();
        payments.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

        let mut seen = Vec::new();
        let mut page = None;
        let mut pages = 0;
        loop {
            let got = store
                .list_accounts(Some(&team("payments")), page.as_deref(), 3)
                .await
                .unwrap();
            assert!(got.items.len() <= 3);
            seen.extend(got.items);
            pages += 1;
            match got.next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, payments);

        let all = store.list_accounts(None, None, 100).await.unwrap();
        assert_eq!(all.items.len(), 8);
        assert_eq!(all.next, None);
        assert!(
            all.items
                .windows(2)
                .all(|w| w[0].created_at >= w[1].created_at)
        );
        // An exact fit has no next page.
        let six = store
            .list_accounts(Some(&team("payments")), None, 7)
            .await
            .unwrap();
        assert_eq!((six.items.len(), six.next), (7, None));

        for bad in ["%%%", "bm90LWEtdG9rZW4", ""] {
            assert!(
                matches!(
                    store.list_accounts(None, Some(bad), 3).await,
                    Err(StoreError::BadPageToken(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn accounts_in_a_state_come_oldest_first() {
        let (_dir, store) = store();
        let t0 = Utc::now();
        let newer = request("payments", t0 + Duration::seconds(2));
        let older = request("search", t0);
        let creating = request("payments", t0 + Duration::seconds(1));
        for a in [&newer, &older, &creating] {
            store.insert_account(a, 5, None).await.unwrap();
        }
        store
            .transition(
                AccountState::Requested,
                &moved(&creating, AccountState::Creating),
            )
            .await
            .unwrap();
        let waiting = store
            .accounts_in_state(AccountState::Requested)
            .await
            .unwrap();
        assert_eq!(waiting, vec![older, newer]);
        assert_eq!(
            store
                .accounts_in_state(AccountState::Creating)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .accounts_in_state(AccountState::Ready)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_8_concurrent_requests_against_quota_3_exactly_3_are_created() {
        let (_dir, store) = store();
        let now = Utc::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .insert_account(&request("payments", now), 3, None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Inserted::Created => created += 1,
                Inserted::QuotaExceeded { quota: 3 } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(created, 3);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 3);
        let listed = store.list_accounts(None, None, 100).await.unwrap();
        assert_eq!(listed.items.len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_6_concurrent_creations_exactly_5_get_a_slot() {
        let (_dir, store) = store();
        let now = Utc::now();
        let mut accounts = Vec::new();
        for _ in 0..6 {
            let a = request("payments", now);
            store.insert_account(&a, 10, None).await.unwrap();
            accounts.push(a);
        }
        let tasks: Vec<_> = accounts
            .into_iter()
            .map(|a| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .transition(AccountState::Requested, &moved(&a, AccountState::Creating))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut applied = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Transitioned::Applied => applied += 1,
                Transitioned::NoCreationSlot => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((applied, refused), (5, 1));
        assert_eq!(in_flight(&store), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_replays_of_one_key_create_one_account() {
        let (_dir, store) = store();
        let now = Utc::now();
        let k = key("arn:aws:iam::1:user/ana", "same", "fp");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, k) = (store.clone(), k.clone());
                tokio::spawn(async move {
                    store
                        .insert_account(&request("payments", now), 5, Some(&k))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Inserted::Created => created += 1,
                Inserted::Replayed(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(store.open_accounts(&team("payments")).await.unwrap(), 1);
    }

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    fn add(team_name: Option<&str>, account_id: &str, d: &str, nanos: i64) -> SpendAdd {
        SpendAdd {
            team: team_name.map(team),
            account_id: account_id.into(),
            day: day(d),
            nanos,
        }
    }

    #[tokio::test]
    async fn a_spend_key_adds_once() {
        let (_dir, store) = store();
        let now = Utc::now();
        let later = now + Duration::hours(1);
        let adds = [add(Some("payments"), "111111111111", "2026-11-21", 1_500)];
        assert!(!store.is_claimed(&marker("batch#1"), now).await.unwrap());
        assert!(
            store
                .record_spend_once(&marker("batch#1"), now, later, &adds)
                .await
                .unwrap()
        );
        assert!(store.is_claimed(&marker("batch#1"), now).await.unwrap());
        assert!(store.is_claimed(&marker("batch#1"), later).await.unwrap());
        assert!(
            !store
                .record_spend_once(&marker("batch#1"), now, later, &adds)
                .await
                .unwrap()
        );
        let (from, to) = (day("2026-11-01"), day("2026-11-30"));
        assert_eq!(
            store.team_spend(&team("payments"), from, to).await.unwrap(),
            vec![(day("2026-11-21"), 1_500)]
        );
        assert_eq!(
            store.account_spend("111111111111", from, to).await.unwrap(),
            vec![(day("2026-11-21"), 1_500)]
        );
        // A key taken by `claim_once` counts as claimed too, and the two
        // share one namespace.
        assert!(
            store
                .claim_once(&marker("batch#2"), now, later)
                .await
                .unwrap()
        );
        assert!(store.is_claimed(&marker("batch#2"), now).await.unwrap());
        assert!(
            !store
                .record_spend_once(&marker("batch#2"), now, later, &adds)
                .await
                .unwrap()
        );
        // Once the claim expired, the key is free and adds again.
        let after = later + Duration::milliseconds(1);
        assert!(!store.is_claimed(&marker("batch#1"), after).await.unwrap());
        assert!(
            store
                .record_spend_once(&marker("batch#1"), after, after + Duration::hours(1), &adds)
                .await
                .unwrap()
        );
        assert_eq!(
            store.account_spend("111111111111", from, to).await.unwrap(),
            vec![(day("2026-11-21"), 3_000)]
        );
        // An empty batch still takes its key.
        assert!(
            store
                .record_spend_once(&marker("batch#3"), now, later, &[])
                .await
                .unwrap()
        );
        assert!(store.is_claimed(&marker("batch#3"), now).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_8_concurrent_recordings_of_one_key_one_adds() {
        let (_dir, store) = store();
        let now = Utc::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let adds = [
                        add(Some("payments"), "111111111111", "2026-11-21", 7),
                        add(Some("payments"), "111111111111", "2026-11-22", 11),
                    ];
                    store
                        .record_spend_once(&marker("same"), now, now + Duration::minutes(5), &adds)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
        let (from, to) = (day("2026-11-01"), day("2026-11-30"));
        let expected = vec![(day("2026-11-21"), 7), (day("2026-11-22"), 11)];
        assert_eq!(
            store.team_spend(&team("payments"), from, to).await.unwrap(),
            expected
        );
        assert_eq!(
            store.account_spend("111111111111", from, to).await.unwrap(),
            expected
        );
    }

    #[tokio::test]
    async fn spend_sums_per_team_account_and_day() {
        let (_dir, store) = store();
        let now = Utc::now();
        let later = now + Duration::hours(1);
        let batches = [
            vec![
                add(Some("payments"), "111111111111", "2026-11-20", 100),
                add(Some("payments"), "111111111111", "2026-11-21", 200),
            ],
            vec![
                add(Some("payments"), "222222222222", "2026-11-21", 30),
                add(Some("search"), "333333333333", "2026-11-21", 4),
            ],
            // One account in another batch, the same day: it adds up.
            vec![add(Some("payments"), "111111111111", "2026-11-21", 5)],
            // An account Purser does not know: only the account counts it.
            vec![add(None, "444444444444", "2026-11-21", 9_000)],
        ];
        for (i, adds) in batches.iter().enumerate() {
            assert!(
                store
                    .record_spend_once(&marker(&format!("batch#{i}")), now, later, adds)
                    .await
                    .unwrap()
            );
        }
        let (from, to) = (day("2026-11-01"), day("2026-11-30"));
        assert_eq!(
            store.team_spend(&team("payments"), from, to).await.unwrap(),
            vec![(day("2026-11-20"), 100), (day("2026-11-21"), 235)]
        );
        assert_eq!(
            store.team_spend(&team("search"), from, to).await.unwrap(),
            vec![(day("2026-11-21"), 4)]
        );
        assert_eq!(
            store.account_spend("111111111111", from, to).await.unwrap(),
            vec![(day("2026-11-20"), 100), (day("2026-11-21"), 205)]
        );
        assert_eq!(
            store.account_spend("222222222222", from, to).await.unwrap(),
            vec![(day("2026-11-21"), 30)]
        );
        assert_eq!(
            store.account_spend("444444444444", from, to).await.unwrap(),
            vec![(day("2026-11-21"), 9_000)]
        );
        // The unknown account's spend went to no team; team and account
        // counters of the same name do not mix.
        let teams: i64 = store
            .db
            .call_blocking(|c| {
                c.query_row(
                    "SELECT COALESCE(SUM(nanos), 0) FROM spend WHERE scope = 'team'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(teams, 339);
        assert!(
            store
                .team_spend(&team("nobody"), from, to)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .account_spend("payments", from, to)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn spend_ranges_are_inclusive_and_ordered() {
        let (_dir, store) = store();
        let now = Utc::now();
        let later = now + Duration::hours(1);
        // Out of order, across a month and a year, with a gap.
        let adds = [
            add(Some("payments"), "111111111111", "2027-01-01", 3),
            add(Some("payments"), "111111111111", "2026-12-31", 2),
            add(Some("payments"), "111111111111", "2026-11-30", 1),
            add(Some("payments"), "111111111111", "2027-01-03", 4),
        ];
        store
            .record_spend_once(&marker("k"), now, later, &adds)
            .await
            .unwrap();
        let payments = team("payments");
        let spend = |from: &str, to: &str| {
            let (store, payments) = (store.clone(), payments.clone());
            let (from, to) = (day(from), day(to));
            async move { store.team_spend(&payments, from, to).await.unwrap() }
        };
        assert_eq!(
            spend("2026-01-01", "2027-12-31").await,
            vec![
                (day("2026-11-30"), 1),
                (day("2026-12-31"), 2),
                (day("2027-01-01"), 3),
                (day("2027-01-03"), 4)
            ]
        );
        assert_eq!(
            spend("2026-12-31", "2027-01-01").await,
            vec![(day("2026-12-31"), 2), (day("2027-01-01"), 3)]
        );
        assert_eq!(
            spend("2027-01-03", "2027-01-03").await,
            vec![(day("2027-01-03"), 4)]
        );
        assert!(spend("2027-01-02", "2027-01-02").await.is_empty());
        assert!(spend("2027-01-04", "2027-12-31").await.is_empty());
        // An empty range (from after to) has nothing.
        assert!(spend("2027-01-03", "2026-11-30").await.is_empty());
        assert_eq!(
            store
                .account_spend("111111111111", day("2026-12-01"), day("2027-01-02"))
                .await
                .unwrap(),
            vec![(day("2026-12-31"), 2), (day("2027-01-01"), 3)]
        );
    }

    #[tokio::test]
    async fn markers_are_kept_until_they_expire() {
        let (_dir, store) = store();
        let now = Utc::now();
        let later = now + Duration::hours(1);
        assert_eq!(store.recall(&marker("stack#1"), now).await.unwrap(), None);
        assert!(
            store
                .remember(&marker("stack#1"), "first", now, later)
                .await
                .unwrap()
        );
        // An unexpired value stays.
        assert!(
            !store
                .remember(&marker("stack#1"), "second", now, later)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .recall(&marker("stack#1"), now)
                .await
                .unwrap()
                .as_deref(),
            Some("first")
        );
        assert_eq!(
            store
                .recall(&marker("stack#1"), later)
                .await
                .unwrap()
                .as_deref(),
            Some("first")
        );
        assert!(
            store
                .remember(&marker("stack#2"), "other", now, later)
                .await
                .unwrap()
        );
        // Expired: not recalled, and a new value takes its place.
        let after = later + Duration::milliseconds(1);
        assert_eq!(store.recall(&marker("stack#1"), after).await.unwrap(), None);
        assert!(
            store
                .remember(
                    &marker("stack#1"),
                    "third",
                    after,
                    after + Duration::hours(1)
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .recall(&marker("stack#1"), after)
                .await
                .unwrap()
                .as_deref(),
            Some("third")
        );
        // Forgotten: gone at once, and free to remember again.
        store.forget(&marker("stack#1")).await.unwrap();
        store.forget(&marker("never-there")).await.unwrap();
        assert_eq!(store.recall(&marker("stack#1"), after).await.unwrap(), None);
        assert!(
            store
                .remember(&marker("stack#1"), "fourth", now, later)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .recall(&marker("stack#2"), now)
                .await
                .unwrap()
                .as_deref(),
            Some("other")
        );
        // Markers and claims are separate namespaces.
        assert!(!store.is_claimed(&marker("stack#2"), now).await.unwrap());
    }

    fn budget(team_name: &str, amount: &str, revision: u64) -> Budget {
        let mut b = Budget::from_json(
            team(team_name),
            &serde_json::json!({ "amount": amount }),
            Utc::now(),
        )
        .unwrap();
        b.revision = revision;
        b
    }

    #[tokio::test]
    async fn budgets_are_written_revision_by_revision() {
        let (_dir, store) = store();
        let payments = team("payments");
        assert_eq!(store.budget(&payments).await.unwrap(), None);
        // Nothing stored: only revision 1 may be written.
        assert!(
            !store
                .put_budget(&budget("payments", "10", 0))
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_budget(&budget("payments", "10", 2))
                .await
                .unwrap()
        );
        assert_eq!(store.budget(&payments).await.unwrap(), None);

        let first = budget("payments", "10", 1);
        assert!(store.put_budget(&first).await.unwrap());
        assert_eq!(store.budget(&payments).await.unwrap(), Some(first.clone()));
        // Revision 1 again is a change that lost: refused, the first stays.
        assert!(
            !store
                .put_budget(&budget("payments", "99", 1))
                .await
                .unwrap()
        );
        assert_eq!(store.budget(&payments).await.unwrap(), Some(first));

        let second = budget("payments", "20.50", 2);
        assert!(store.put_budget(&second).await.unwrap());
        assert_eq!(store.budget(&payments).await.unwrap(), Some(second.clone()));
        // Stale, repeated and skipped revisions are all refused.
        for stale in [1, 2, 4] {
            assert!(
                !store
                    .put_budget(&budget("payments", "1", stale))
                    .await
                    .unwrap(),
                "revision {stale}"
            );
        }
        assert_eq!(store.budget(&payments).await.unwrap(), Some(second));
        assert!(
            store
                .put_budget(&budget("payments", "30", 3))
                .await
                .unwrap()
        );
        assert_eq!(store.budget(&payments).await.unwrap().unwrap().revision, 3);
        // Another team counts its own revisions.
        assert_eq!(store.budget(&team("search")).await.unwrap(), None);
        assert!(store.put_budget(&budget("search", "5", 1)).await.unwrap());
    }

    #[tokio::test]
    async fn budgets_are_listed_by_team_name() {
        let (_dir, store) = store();
        assert!(store.budgets().await.unwrap().is_empty());
        for name in ["search", "ops", "payments"] {
            assert!(store.put_budget(&budget(name, "10", 1)).await.unwrap());
        }
        let latest = budget("ops", "12", 2);
        assert!(store.put_budget(&latest).await.unwrap());
        let all = store.budgets().await.unwrap();
        let names: Vec<String> = all.iter().map(|b| b.team.to_string()).collect();
        assert_eq!(names, ["ops", "payments", "search"]);
        assert_eq!(all[0], latest);
    }

    #[tokio::test]
    async fn an_unreadable_budget_is_reported_as_corrupt() {
        let (_dir, store) = store();
        store
            .db
            .call_blocking(|c| {
                c.execute(
                    "INSERT INTO budgets (team, revision, data) VALUES ('payments', 1, '{')",
                    [],
                )
            })
            .unwrap();
        assert!(matches!(
            store.budget(&team("payments")).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(store.budgets().await, Err(StoreError::Corrupt(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_puts_of_one_revision_exactly_one_wins() {
        let (_dir, store) = store();
        for revision in [1, 2] {
            let tasks: Vec<_> = (1..=8)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let b = budget("payments", &format!("{i}"), revision);
                        let won = store.put_budget(&b).await.unwrap();
                        (won, b)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                let (won, b) = t.await.unwrap();
                if won {
                    winners.push(b);
                }
            }
            assert_eq!(winners.len(), 1, "revision {revision}");
            assert_eq!(
                store.budget(&team("payments")).await.unwrap().as_ref(),
                winners.first()
            );
        }
    }

    #[test]
    fn page_tokens_round_trip() {
        let token = page_token(1_700_000_000_000, "r-0123456789ab");
        assert_eq!(
            parse_page_token(&token).unwrap(),
            (1_700_000_000_000, "r-0123456789ab".to_string())
        );
    }

    fn settlement(team: &str, total: i64, at: DateTime<Utc>) -> SettledSpend {
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        SettledSpend {
            team: TeamName::parse(team).unwrap(),
            period: "2026-11".into(),
            source: purser_core::spend::SpendSource::Cur,
            accounts: [(
                "111111111111".to_string(),
                [(
                    day,
                    purser_core::spend::DayFigures {
                        missed: 7_000,
                        cur: None,
                    },
                )]
                .into(),
            )]
            .into(),
            total,
            settled_at: at,
            announced: false,
        }
    }

    #[tokio::test]
    async fn a_later_settlement_is_never_replaced_by_an_earlier_one() {
        let (_dir, store) = store();
        let now = Utc::now();
        let payments = TeamName::parse("payments").unwrap();
        assert_eq!(
            store.settled_spend(&payments, "2026-11").await.unwrap(),
            None
        );
        let first = settlement("payments", 10, now);
        assert!(store.put_settled_spend(&first).await.unwrap());
        assert_eq!(
            store.settled_spend(&payments, "2026-11").await.unwrap(),
            Some(first.clone())
        );
        // The same settlement again, announced: same time, replaced.
        let announced = SettledSpend {
            announced: true,
            ..first.clone()
        };
        assert!(store.put_settled_spend(&announced).await.unwrap());
        // A later one replaces it; an earlier one then does not.
        let later = settlement("payments", 20, now + Duration::minutes(15));
        assert!(store.put_settled_spend(&later).await.unwrap());
        assert!(!store.put_settled_spend(&first).await.unwrap());
        assert_eq!(
            store.settled_spend(&payments, "2026-11").await.unwrap(),
            Some(later)
        );
        // Teams and periods are apart.
        assert_eq!(
            store.settled_spend(&payments, "2026-10").await.unwrap(),
            None
        );
        assert_eq!(
            store
                .settled_spend(&TeamName::parse("search").unwrap(), "2026-11")
                .await
                .unwrap(),
            None
        );
    }
}
