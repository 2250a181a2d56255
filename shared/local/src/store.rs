//! The Store port on the local SQLite database. Every write that must keep
//! a rule (a team's quota, the organization's five concurrent creations, an
//! idempotency key) runs in one `BEGIN IMMEDIATE` transaction, so SQLite
//! takes the write lock before reading what the rule depends on.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use purser_core::budgets::Budget;
use purser_core::leases::{LeaseTemplate, TemplateName};
use purser_core::ports::MAX_CONCURRENT_CREATIONS;
use purser_core::ports::TemplateStore;
use purser_core::ports::{
    AccountStore, BudgetStore, DEPLOYMENTS_KEPT, DeploymentLog, DeploymentMark, DeploymentSource,
    FunctionSpend, HourlySpend, Marker, Markers, RateAdd, SettlementStore, SpendCounters,
};
use purser_core::spend::SettledSpend;
use purser_core::{
    Account, AccountState, IdempotencyKey, Inserted, Page, SpendAdd, StoreError, Team, TeamName,
    Transitioned,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::db::{Db, DbError, epoch_ms};

mod running;

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

/// Adds nanos (?5) to the counter of a team (?1), month (?2), account (?3)
/// and function (?4).
const ADD_FUNCTION_SPEND: &str =
    "INSERT INTO function_spend (team, period, account_id, function, nanos)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (team, period, account_id, function) DO UPDATE SET nanos = nanos + excluded.nanos";

/// Adds nanos (?4) to the hourly counter of an account (?1), hour (?2) and
/// resource (?3, '' for the account's own).
const ADD_HOURLY_SPEND: &str = "INSERT INTO hourly_spend (account_id, hour, resource, nanos)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (account_id, hour, resource) DO UPDATE SET nanos = nanos + excluded.nanos";

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
    /// The stored revision a transition applies over.
    base_version: Option<i64>,
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
            base_version: account.base_version().and_then(|v| i64::try_from(v).ok()),
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

/// A `teams` row: name, quota, members, notification settings and lease
/// settings (JSON).
type TeamRow = (String, i64, String, String, String);

fn decode_team((name, quota, members, notify, leases): TeamRow) -> Result<Team, StoreError> {
    let name = TeamName::parse(&name)
        .map_err(|e| StoreError::Corrupt(format!("a team row named {name:?}: {e}")))?;
    Ok(Team {
        quota: count(quota)?,
        members: serde_json::from_str(&members)
            .map_err(|e| StoreError::Corrupt(format!("members of team {name}: {e}")))?,
        notify: serde_json::from_str(&notify).map_err(|e| {
            StoreError::Corrupt(format!("notification settings of team {name}: {e}"))
        })?,
        leases: serde_json::from_str(&leases)
            .map_err(|e| StoreError::Corrupt(format!("lease settings of team {name}: {e}")))?,
        name,
    })
}

/// A deployment's time as the `deployments` table keeps it: RFC 3339 in
/// UTC with nine fractional digits, a fixed width, so the text sorts as the
/// times do and reads back to the nanosecond.
fn deployment_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A `deployments` row: team, at, id, account, stack, status, source.
type DeploymentRow = (String, String, String, String, String, String, String);

fn decode_deployment(row: DeploymentRow) -> Result<DeploymentMark, StoreError> {
    let (team, at, id, account_id, stack, status, source) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("a deployment row {id:?}: {what}"));
    Ok(DeploymentMark {
        team: TeamName::parse(&team).map_err(corrupt)?,
        at: DateTime::parse_from_rfc3339(&at)
            .map_err(|e| corrupt(format!("at {at:?}: {e}")))?
            .to_utc(),
        source: DeploymentSource::parse(&source)
            .ok_or_else(|| corrupt(format!("source {source:?}")))?,
        account_id,
        stack,
        status,
        id,
    })
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
        let corrupt =
            |e: serde_json::Error| StoreError::Corrupt(format!("team {}: {e}", team.name));
        let members = serde_json::to_string(&team.members).map_err(corrupt)?;
        let notify = serde_json::to_string(&team.notify).map_err(corrupt)?;
        let leases = serde_json::to_string(&team.leases).map_err(corrupt)?;
        let (name, quota) = (team.name.to_string(), i64::from(team.quota));
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO teams (name, quota, members, notify, leases) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET quota = excluded.quota, members = excluded.members,
                         notify = excluded.notify, leases = excluded.leases",
                    params![name, quota, members, notify, leases],
                )
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        let key = name.to_string();
        let row: Option<TeamRow> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT name, quota, members, notify, leases FROM teams WHERE name = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        row.map(decode_team).transpose()
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let rows: Vec<TeamRow> = self
            .db
            .call(|conn| {
                conn.prepare(
                    "SELECT name, quota, members, notify, leases FROM teams ORDER BY name",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(decode_team).collect()
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

    /// The newest request holding it: an account lent again from a pool
    /// is held by its pooled request and by the one it serves now.
    async fn account_by_account_id(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        let account_id = account_id.to_string();
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT data FROM accounts WHERE account_id = ?1
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                    [account_id],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.as_deref().map(decode).transpose()
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

    /// One immediate transaction: the state and revision check, the
    /// counters and the write. The stored state equals `from` when the write happens, so the
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
                let current: Option<(String, String, String, i64)> = tx
                    .query_row(
                        "SELECT state, team, data, COALESCE(json_extract(data, '$.version'), 0)
                         FROM accounts WHERE id = ?1",
                        [&row.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((state, team, data, version)) = current else {
                    return Ok(TransitionOutcome::Stale(None));
                };
                if state != from.as_str() || row.base_version != Some(version) {
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
    async fn record_spend_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        self.add_spend_once(marker, now, expires_at, None, adds, rates)
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
        self.add_spend_once(
            marker,
            now,
            expires_at,
            Some(function.to_string()),
            adds,
            rates,
        )
        .await
    }

    async fn team_function_spend(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        let (team, period) = (team.to_string(), period.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |conn| {
                conn.prepare(
                    "SELECT account_id, function, nanos FROM function_spend
                     WHERE team = ?1 AND period = ?2
                     ORDER BY nanos DESC, account_id, function
                     LIMIT ?3",
                )?
                .query_map(params![team, period, limit], |r| {
                    Ok(FunctionSpend {
                        account_id: r.get(0)?,
                        function: r.get(1)?,
                        nanos: r.get(2)?,
                    })
                })?
                .collect()
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

    async fn hourly_spend(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError> {
        let (account_id, from, to) = (account_id.to_string(), hour_key(from), hour_key(to));
        let rows: Vec<(String, String, i64)> = self
            .db
            .call(move |conn| {
                conn.prepare(
                    "SELECT hour, resource, nanos FROM hourly_spend
                     WHERE account_id = ?1 AND hour BETWEEN ?2 AND ?3
                     ORDER BY hour, resource",
                )?
                .query_map(params![account_id, from, to], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(hour, resource, nanos)| {
                let hour = NaiveDateTime::parse_from_str(&format!("{hour}:00"), "%Y-%m-%dT%H:%M")
                    .map_err(|e| StoreError::Corrupt(format!("hourly_spend hour {hour:?}: {e}")))?
                    .and_utc();
                Ok(HourlySpend {
                    hour,
                    resource: (!resource.is_empty()).then_some(resource),
                    nanos,
                })
            })
            .collect()
    }
}

/// An hour as `hourly_spend` keys it: `YYYY-MM-DDTHH`.
fn hour_key(hour: DateTime<Utc>) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
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
impl TemplateStore for SqliteStore {
    /// One immediate transaction: the latest version, then the insert. Of
    /// concurrent puts of one version exactly one finds its predecessor.
    async fn put_template(&self, template: &LeaseTemplate) -> Result<bool, StoreError> {
        let name = template.name.to_string();
        let version = i64::try_from(template.version).map_err(|_| {
            StoreError::Corrupt(format!(
                "template {name}: version {} is out of range",
                template.version
            ))
        })?;
        if version < 1 {
            return Ok(false);
        }
        let data = serde_json::to_string(template)
            .map_err(|e| StoreError::Corrupt(format!("template {name}: {e}")))?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let latest: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM lease_templates WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )?;
                if latest != version - 1 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO lease_templates (name, version, data) VALUES (?1, ?2, ?3)",
                    params![name, version, data],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
            .map_err(unavailable)
    }

    async fn template(&self, name: &TemplateName) -> Result<Option<LeaseTemplate>, StoreError> {
        let name = name.to_string();
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT data FROM lease_templates WHERE name = ?1
                     ORDER BY version DESC LIMIT 1",
                    [name],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.as_deref().map(decode_template).transpose()
    }

    async fn template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        let name = name.to_string();
        let Ok(version) = i64::try_from(version) else {
            return Ok(None);
        };
        let data: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT data FROM lease_templates WHERE name = ?1 AND version = ?2",
                    params![name, version],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        data.as_deref().map(decode_template).transpose()
    }

    /// The latest version of each, by name.
    async fn templates(&self) -> Result<Vec<LeaseTemplate>, StoreError> {
        let rows: Vec<String> = self
            .db
            .call(|conn| {
                conn.prepare(
                    "SELECT t.data FROM lease_templates t
                     WHERE t.version = (SELECT MAX(version) FROM lease_templates WHERE name = t.name)
                     ORDER BY t.name",
                )?
                .query_map([], |r| r.get(0))?
                .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.iter().map(|data| decode_template(data)).collect()
    }
}

fn decode_template(data: &str) -> Result<LeaseTemplate, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("a template row: {e}")))
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
impl DeploymentLog for SqliteStore {
    /// An upsert: a mark written again replaces itself. Marks of the team
    /// older than `DEPLOYMENTS_KEPT` before this one are deleted on the way,
    /// as DynamoDB's TTL deletes them, so the table stays small.
    async fn record_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        let team = mark.team.to_string();
        let at = deployment_time(mark.at);
        let forgotten_before = deployment_time(mark.at - DEPLOYMENTS_KEPT);
        let row = (
            mark.id.clone(),
            mark.account_id.clone(),
            mark.stack.clone(),
            mark.status.clone(),
            mark.source.as_str(),
        );
        self.db
            .call(move |conn| {
                let (id, account_id, stack, status, source) = row;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "INSERT INTO deployments (team, at, id, account_id, stack, status, source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (team, at, id) DO UPDATE SET account_id = excluded.account_id,
                         stack = excluded.stack, status = excluded.status, source = excluded.source",
                    params![team, at, id, account_id, stack, status, source],
                )?;
                tx.execute(
                    "DELETE FROM deployments WHERE team = ?1 AND at < ?2",
                    params![team, forgotten_before],
                )?;
                tx.commit()
            })
            .await
            .map_err(unavailable)
    }

    async fn recent_deployments(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        let (team, since) = (team.to_string(), deployment_time(since));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<DeploymentRow> = self
            .db
            .call(move |conn| {
                conn.prepare(
                    "SELECT team, at, id, account_id, stack, status, source FROM deployments
                     WHERE team = ?1 AND at >= ?2
                     ORDER BY at DESC, id DESC
                     LIMIT ?3",
                )?
                .query_map(params![team, since, limit], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect()
            })
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(decode_deployment).collect()
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

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        let key = marker.key();
        self.db
            .call(move |conn| conn.execute("DELETE FROM idempotency WHERE key = ?1", [key]))
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
    /// One immediate transaction: the claim, then every add (and, with a
    /// function, its counters of a known team's month). A lost claim rolls
    /// back with nothing written.
    async fn add_spend_once(
        &self,
        marker: &Marker,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        function: Option<String>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        let key = marker.key();
        let rates: Vec<(String, String, String, i64)> = rates
            .iter()
            .flat_map(|r| {
                let own = (
                    r.account_id.clone(),
                    hour_key(r.hour),
                    String::new(),
                    r.nanos,
                );
                let resource = r
                    .resource
                    .clone()
                    .map(|res| (r.account_id.clone(), hour_key(r.hour), res, r.nanos));
                std::iter::once(own).chain(resource)
            })
            .collect();
        let (now, expires) = (epoch_ms(now), epoch_ms(expires_at));
        let adds: Vec<(Option<String>, String, NaiveDate, i64)> = adds
            .iter()
            .map(|a| {
                (
                    a.team.as_ref().map(TeamName::to_string),
                    a.account_id.clone(),
                    a.day,
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
                    let mut add_function = tx.prepare(ADD_FUNCTION_SPEND)?;
                    for (team, account_id, day, nanos) in &adds {
                        if let Some(team) = team {
                            add.execute(params![TEAM, team, day_key(*day), nanos])?;
                            if let Some(function) = &function {
                                let period = day.format("%Y-%m").to_string();
                                add_function
                                    .execute(params![team, period, account_id, function, nanos])?;
                            }
                        }
                        add.execute(params![ACCOUNT, account_id, day_key(*day), nanos])?;
                    }
                    let mut add_hourly = tx.prepare(ADD_HOURLY_SPEND)?;
                    for (account_id, hour, resource, nanos) in &rates {
                        add_hourly.execute(params![account_id, hour, resource, nanos])?;
                    }
                }
                tx.commit()?;
                Ok(true)
            })
            .await
            .map_err(unavailable)
    }

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
    //! The Store contract (`purser_contract::store`, shared with
    //! `DynamoStore`), then what only this adapter does: counting creations
    //! in the `in_flight` column, listing every team's accounts newest
    //! first, keeping expiries to the millisecond, its own rows and tokens.

    use std::sync::Arc;

    use chrono::{Duration, TimeZone};
    use purser_contract::store::{Fixture, add, day, marker, team};
    use purser_core::NewAccount;
    use purser_core::accounts::new_id;

    use super::*;

    async fn fresh() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        Some(Fixture::new(Arc::new(store)).keeping(dir))
    }

    purser_contract::store_contract!(fresh);

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(Db::open(dir.path()).unwrap());
        (dir, store)
    }

    /// `minutes` after 2026-11-20T10:00:00Z.
    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .unwrap()
            + Duration::minutes(minutes)
    }

    fn request(team: &str, created_at: DateTime<Utc>) -> Account {
        let input = NewAccount {
            team: TeamName::parse(team).unwrap(),
            owner: "ana@example.com".into(),
            purpose: "load tests".into(),
            lease_days: None,
            template: None,
        };
        Account::request(
            new_id(),
            input,
            "arn:aws:iam::123456789012:user/ana",
            created_at,
        )
        .unwrap()
    }

    fn moved(account: &Account, state: AccountState) -> Account {
        let mut next = account.next_revision();
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

    #[tokio::test]
    async fn the_in_flight_column_counts_the_creations_holding_a_slot() {
        let (_dir, store) = store();
        let account = request("payments", at(0));
        store.insert_account(&account, 10, None).await.unwrap();
        assert_eq!(in_flight(&store), 0);

        let creating = moved(&account, AccountState::Creating);
        assert_eq!(
            store
                .transition(AccountState::Requested, &creating)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 1);
        // A repeated event moves nothing.
        assert_eq!(
            store
                .transition(AccountState::Requested, &creating)
                .await
                .unwrap(),
            Transitioned::Stale(Some(creating.clone()))
        );
        assert_eq!(in_flight(&store), 1);
        // Nor does an update within the state.
        let mut started = creating.next_revision();
        started.creation_id = Some("car-0123456789abcdef0123456789abcdef".into());
        assert_eq!(
            store
                .transition(AccountState::Creating, &started)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 1);
        let ready = moved(&started, AccountState::Ready);
        assert_eq!(
            store
                .transition(AccountState::Creating, &ready)
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 0);

        let mut accounts = Vec::new();
        for m in 1..=6 {
            let a = request("payments", at(m));
            store.insert_account(&a, 10, None).await.unwrap();
            accounts.push(a);
        }
        for a in &accounts[..5] {
            assert_eq!(
                store
                    .transition(AccountState::Requested, &moved(a, AccountState::Creating))
                    .await
                    .unwrap(),
                Transitioned::Applied
            );
        }
        assert_eq!(in_flight(&store), 5);
        let sixth = moved(&accounts[5], AccountState::Creating);
        assert_eq!(
            store
                .transition(AccountState::Requested, &sixth)
                .await
                .unwrap(),
            Transitioned::NoCreationSlot
        );
        assert_eq!(in_flight(&store), 5);
        // Failing a request never held a slot; a failed creation frees one.
        let withdrawn = request("payments", at(7));
        store.insert_account(&withdrawn, 10, None).await.unwrap();
        assert_eq!(
            store
                .transition(
                    AccountState::Requested,
                    &moved(&withdrawn, AccountState::Failed)
                )
                .await
                .unwrap(),
            Transitioned::Applied
        );
        assert_eq!(in_flight(&store), 5);
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
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_6_concurrent_creations_the_in_flight_column_counts_5() {
        let (_dir, store) = store();
        let mut accounts = Vec::new();
        for m in 0..6 {
            let a = request("payments", at(m));
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
        for t in tasks {
            match t.await.unwrap() {
                Transitioned::Applied => applied += 1,
                Transitioned::NoCreationSlot => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(applied, 5);
        assert_eq!(in_flight(&store), 5);
    }

    /// The port asks for newest first in every listing; DynamoDB lists
    /// every team's accounts in the table's order, SQLite in creation order.
    #[tokio::test]
    async fn every_teams_accounts_are_listed_newest_first() {
        let (_dir, store) = store();
        let mut all = Vec::new();
        for (m, name) in ["payments", "search", "payments", "core", "search", "core"]
            .into_iter()
            .enumerate()
        {
            // Pairs share a creation time: the id breaks the tie.
            let a = request(name, at(i64::try_from(m / 2).unwrap()));
            store.insert_account(&a, 100, None).await.unwrap();
            all.push(a);
        }
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

        let listed = store.list_accounts(None, None, 100).await.unwrap();
        assert_eq!((&listed.items, listed.next), (&all, None));
        let mut seen = Vec::new();
        let mut page = None;
        loop {
            let got = store.list_accounts(None, page.as_deref(), 4).await.unwrap();
            seen.extend(got.items);
            match got.next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    /// DynamoDB keeps expiries in whole seconds (TTL's unit); SQLite to the
    /// millisecond.
    #[tokio::test]
    async fn expiries_are_kept_to_the_millisecond() {
        let (_dir, store) = store();
        let (now, later) = (at(0), at(60));
        let just_after = later + Duration::milliseconds(1);

        assert!(
            store
                .claim_once(&marker("claim"), now, later)
                .await
                .unwrap()
        );
        assert!(store.is_claimed(&marker("claim"), later).await.unwrap());
        assert!(
            !store
                .is_claimed(&marker("claim"), just_after)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_once(
                    &marker("claim"),
                    just_after,
                    just_after + Duration::hours(1)
                )
                .await
                .unwrap()
        );

        let adds = [add(Some("payments"), "111111111111", "2026-11-21", 1_500)];
        assert!(
            store
                .record_spend_once(&marker("batch#1"), now, later, &adds, &[])
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_claimed(&marker("batch#1"), just_after)
                .await
                .unwrap()
        );
        assert!(
            store
                .record_spend_once(
                    &marker("batch#1"),
                    just_after,
                    just_after + Duration::hours(1),
                    &adds,
                    &[]
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .account_spend("111111111111", day("2026-11-01"), day("2026-11-30"))
                .await
                .unwrap(),
            vec![(day("2026-11-21"), 3_000)]
        );

        assert!(
            store
                .remember(&marker("m"), "first", now, later)
                .await
                .unwrap()
        );
        assert_eq!(
            store.recall(&marker("m"), later).await.unwrap().as_deref(),
            Some("first")
        );
        assert_eq!(store.recall(&marker("m"), just_after).await.unwrap(), None);
        assert!(
            store
                .remember(
                    &marker("m"),
                    "second",
                    just_after,
                    just_after + Duration::hours(1)
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .recall(&marker("m"), just_after)
                .await
                .unwrap()
                .as_deref(),
            Some("second")
        );
    }

    #[tokio::test]
    async fn an_unknown_accounts_spend_goes_to_no_team_counter() {
        let (_dir, store) = store();
        let batches = [
            vec![
                add(Some("payments"), "111111111111", "2026-11-20", 100),
                add(None, "444444444444", "2026-11-21", 9_000),
            ],
            vec![add(Some("search"), "333333333333", "2026-11-21", 4)],
        ];
        for (i, adds) in batches.iter().enumerate() {
            assert!(
                store
                    .record_spend_once(&marker(&format!("batch#{i}")), at(0), at(60), adds, &[])
                    .await
                    .unwrap()
            );
        }
        let sum = |scope: &'static str| {
            store
                .db
                .call_blocking(move |c| {
                    c.query_row(
                        "SELECT COALESCE(SUM(nanos), 0) FROM spend WHERE scope = ?1",
                        [scope],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .unwrap()
        };
        assert_eq!(sum(TEAM), 104);
        assert_eq!(sum(ACCOUNT), 9_104);
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

    #[test]
    fn page_tokens_round_trip() {
        let token = page_token(1_700_000_000_000, "r-0123456789ab");
        assert_eq!(
            parse_page_token(&token).unwrap(),
            (1_700_000_000_000, "r-0123456789ab".to_string())
        );
    }
}
