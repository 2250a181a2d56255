//! A simulated AWS Organization in the local database, for `purser up` and
//! the tests: creations and closures complete asynchronously after a delay,
//! fail for AWS's reasons, and announce themselves with the CloudTrail
//! service events AWS puts on the default bus (`CreateAccountResult`,
//! `CloseAccountResult`). moto completes creations at once and accepts
//! duplicate emails, so this is where Purser's handling of both is tested.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use purser_core::ports::{
    MAX_CONCURRENT_CREATIONS, MAX_POLICIES_PER_TARGET, MAX_POLICY_CHARS, closure_quota,
};
use purser_core::{
    CreationState, CreationStatus, EventEntry, MemberStatus, Organization, OrganizationError,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::LocalBus;
use crate::db::{Db, DbError, epoch_ms};

mod scp;
pub use scp::{Decision, ScpRequest};

/// Source and detail-type of the events AWS Organizations sends through CloudTrail.
pub const ORGANIZATIONS_SOURCE: &str = "aws.organizations";
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS Service Event via CloudTrail";

/// How often the completion loop looks for due work at the least.
const POLL: Duration = Duration::from_millis(100);
/// AWS's rolling window of the closure quota.
const CLOSURE_WINDOW_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// A closed account stays SUSPENDED, counting against the account quota,
/// for 90 days; then it is closed for good and no longer counts.
const POST_CLOSURE_MS: i64 = 90 * 24 * 60 * 60 * 1000;
/// OUs nest at most five deep under the root.
const MAX_OU_DEPTH: usize = 5;
const MAX_OUS: i64 = 1000;
const MAX_TAGS: i64 = 50;
/// The SCP AWS manages and attaches to every account when SCPs are enabled.
pub const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";
const FULL_AWS_ACCESS_NAME: &str = "FullAWSAccess";
/// AWS's bounds on a policy's name and description.
const MAX_POLICY_NAME_CHARS: usize = 128;
const MAX_POLICY_DESCRIPTION_CHARS: usize = 512;

#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// How long creations and closures take.
    pub delay: Duration,
    /// Accounts the organization may hold, the management account included
    /// (AWS's default quota is 10).
    pub account_limit: u32,
    pub management_account: String,
    pub region: String,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(2),
            account_limit: 10,
            management_account: crate::LOCAL_ACCOUNT.into(),
            region: crate::LOCAL_REGION.into(),
        }
    }
}

/// The organization. Its state is in the database (so it survives
/// restarts); `run` completes what is due.
pub struct SimulatedOrganization {
    db: Db,
    bus: LocalBus,
    config: SimulationConfig,
    /// The failure reason the next completing creation gets.
    fail_next: Mutex<Option<String>>,
    /// Wakes the completion loop when new work is queued.
    wake: Notify,
}

impl std::fmt::Debug for SimulatedOrganization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedOrganization")
            .field("config", &self.config)
            .finish()
    }
}

fn unavailable(e: DbError) -> OrganizationError {
    OrganizationError::Unavailable(e.to_string())
}

fn constraint(reason: &str, message: String) -> OrganizationError {
    OrganizationError::Constraint {
        reason: reason.into(),
        message,
    }
}

/// `n` characters of `[a-z0-9]`, the alphabet of AWS's root and OU ids.
fn random_id_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// The organization's root id, made on first use and fixed from then on.
fn root_id(conn: &Connection) -> Result<String, rusqlite::Error> {
    let read = |conn: &Connection| {
        conn.query_row("SELECT root_id FROM org_settings WHERE id = 1", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    };
    if let Some(root) = read(conn)? {
        return Ok(root);
    }
    conn.execute(
        "INSERT OR IGNORE INTO org_settings (id, root_id) VALUES (1, ?1)",
        [format!("r-{}", random_id_chars(4))],
    )?;
    conn.query_row("SELECT root_id FROM org_settings WHERE id = 1", [], |r| {
        r.get(0)
    })
}

/// CloudTrail's service events write times as "Nov 21, 2026 10:00:04 AM" (UTC).
pub fn cloudtrail_time(t: DateTime<Utc>) -> String {
    t.format("%b %-d, %Y %-I:%M:%S %p").to_string()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn creation_state(text: &str) -> Option<CreationState> {
    match text {
        "IN_PROGRESS" => Some(CreationState::InProgress),
        "SUCCEEDED" => Some(CreationState::Succeeded),
        "FAILED" => Some(CreationState::Failed),
        _ => None,
    }
}

fn member_status(text: &str) -> Option<MemberStatus> {
    match text {
        "ACTIVE" => Some(MemberStatus::Active),
        "SUSPENDED" => Some(MemberStatus::Suspended),
        "PENDING_CLOSURE" => Some(MemberStatus::PendingClosure),
        _ => None,
    }
}

/// Something that finished, to be announced on the bus.
#[derive(Debug)]
enum Completed {
    Creation {
        id: String,
        account_id: Option<String>,
        failure_reason: Option<String>,
        requested_ms: i64,
        completed_ms: i64,
    },
    Closure {
        account_id: String,
        requested_ms: i64,
        completed_ms: i64,
    },
}

struct Tick {
    completed: Vec<Completed>,
    used_failure: bool,
    next_due_ms: Option<i64>,
}

impl SimulatedOrganization {
    pub fn new(db: Db, bus: LocalBus, config: SimulationConfig) -> Self {
        Self {
            db,
            bus,
            config,
            fail_next: Mutex::new(None),
            wake: Notify::new(),
        }
    }

    pub fn config(&self) -> &SimulationConfig {
        &self.config
    }

    /// Makes the next creation that completes fail with AWS's `reason`
    /// (`EMAIL_ALREADY_EXISTS`, …), for tests and the demo.
    pub fn fail_next_creation(&self, reason: &str) {
        *self.fail_next.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
    }

    /// The organization's root id (`r-` and four characters).
    pub async fn root(&self) -> Result<String, OrganizationError> {
        self.db
            .call(|conn| root_id(conn))
            .await
            .map_err(unavailable)
    }

    fn delay_ms(&self) -> i64 {
        i64::try_from(self.config.delay.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Completes what is due until `stop`: creations and closures whose
    /// delay has passed, each announced on the default bus as AWS does.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let wait = match self.complete_due().await {
                Ok(Some(due_ms)) => {
                    let ahead = due_ms.saturating_sub(epoch_ms(Utc::now())).max(0);
                    Duration::from_millis(ahead.unsigned_abs()).min(POLL)
                }
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "the simulated organization could not complete its work");
                    POLL
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass of the completion loop; returns when the next work is due.
    async fn complete_due(&self) -> Result<Option<i64>, OrganizationError> {
        let now = epoch_ms(Utc::now());
        let failure = self
            .fail_next
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (limit, management) = (
            i64::from(self.config.account_limit),
            self.config.management_account.clone(),
        );
        let forced = failure.clone();
        let result = self
            .db
            .call(move |conn| complete(conn, now, limit, &management, forced))
            .await;
        let used = result.as_ref().is_ok_and(|tick| tick.used_failure);
        if !used && failure.is_some() {
            let mut slot = self.fail_next.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = failure;
            }
        }
        let tick = result.map_err(unavailable)?;
        if !tick.completed.is_empty() {
            self.announce(&tick.completed).await;
        }
        Ok(tick.next_due_ms)
    }

    /// Puts the CloudTrail events of what completed. Like CloudTrail's
    /// delivery to EventBridge this is best effort: Purser's poller is the
    /// fallback, so a refused event is logged, not retried.
    async fn announce(&self, completed: &[Completed]) {
        let entries: Vec<EventEntry> = completed.iter().map(|c| self.event(c)).collect();
        for batch in entries.chunks(purser_core::events::MAX_ENTRIES_PER_PUT) {
            match self.bus.put_service_events(batch.to_vec()).await {
                Ok(results) => {
                    for e in results.iter().filter_map(|r| r.as_ref().err()) {
                        tracing::warn!(error = %e, "the bus refused an Organizations event");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Organizations events were not put"),
            }
        }
    }

    fn event(&self, completed: &Completed) -> EventEntry {
        let (name, details, completed_ms) = match completed {
            Completed::Creation {
                id,
                account_id,
                failure_reason,
                requested_ms,
                completed_ms,
            } => {
                let mut status = json!({
                    "id": id,
                    "state": if account_id.is_some() { "SUCCEEDED" } else { "FAILED" },
                    // CloudTrail masks the account name.
                    "accountName": "****",
                    "requestedTimestamp": cloudtrail_time(from_ms(*requested_ms)),
                    "completedTimestamp": cloudtrail_time(from_ms(*completed_ms)),
                });
                if let Some(account_id) = account_id {
                    status["accountId"] = json!(account_id);
                }
                if let Some(reason) = failure_reason {
                    status["failureReason"] = json!(reason);
                }
                (
                    "CreateAccountResult",
                    json!({ "createAccountStatus": status }),
                    *completed_ms,
                )
            }
            Completed::Closure {
                account_id,
                requested_ms,
                completed_ms,
            } => (
                "CloseAccountResult",
                json!({ "closeAccountStatus": {
                    "accountId": account_id,
                    "state": "SUCCEEDED",
                    "requestedTimestamp": cloudtrail_time(from_ms(*requested_ms)),
                    "completedTimestamp": cloudtrail_time(from_ms(*completed_ms)),
                }}),
                *completed_ms,
            ),
        };
        let at = from_ms(completed_ms);
        let management = &self.config.management_account;
        let detail = json!({
            "eventVersion": "1.08",
            "userIdentity": {"accountId": management, "invokedBy": "AWS Internal"},
            "eventTime": at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "eventSource": "organizations.amazonaws.com",
            "eventName": name,
            "awsRegion": self.config.region,
            "sourceIPAddress": "AWS Internal",
            "userAgent": "AWS Internal",
            "requestParameters": Value::Null,
            "responseElements": Value::Null,
            "eventID": uuid::Uuid::new_v4().to_string(),
            "readOnly": false,
            "eventType": "AwsServiceEvent",
            "managementEvent": true,
            "eventCategory": "Management",
            "recipientAccountId": management,
            "serviceEventDetails": details,
        });
        EventEntry {
            source: Some(ORGANIZATIONS_SOURCE.into()),
            detail_type: Some(CLOUDTRAIL_DETAIL_TYPE.into()),
            detail: Some(detail.to_string()),
            event_bus_name: Some("default".into()),
            time: Some(at),
            ..EventEntry::default()
        }
    }
}

/// Completes due creations and closures in one transaction.
fn complete(
    conn: &mut Connection,
    now: i64,
    limit: i64,
    management: &str,
    mut failure: Option<String>,
) -> Result<Tick, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let root = root_id(&tx)?;
    let mut completed = Vec::new();
    let mut used_failure = false;
    let due: Vec<(String, String, String, String, i64)> = tx
        .prepare(
            "SELECT id, email, name, tags, requested_ms FROM org_creations
             WHERE state = 'IN_PROGRESS' AND complete_at_ms <= ?1
             ORDER BY complete_at_ms, requested_ms, id",
        )?
        .query_map([now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, email, name, tags, requested_ms) in due {
        let reason = if let Some(reason) = failure.take() {
            used_failure = true;
            Some(reason)
        } else if tx
            .query_row(
                "SELECT 1 FROM org_accounts WHERE email = ?1",
                [&email],
                |_| Ok(()),
            )
            .optional()?
            .is_some()
        {
            Some("EMAIL_ALREADY_EXISTS".to_string())
        } else if counted_accounts(&tx, now)? + 1 > limit {
            Some("ACCOUNT_LIMIT_EXCEEDED".to_string())
        } else {
            None
        };
        let account_id = match reason {
            Some(_) => None,
            None => {
                let account_id = fresh_account_id(&tx, management)?;
                tx.execute(
                    "INSERT INTO org_accounts (account_id, email, name, status, parent)
                     VALUES (?1, ?2, ?3, 'ACTIVE', ?4)",
                    params![account_id, email, name, root],
                )?;
                // Tags given to CreateAccount land on the new account.
                let tags: Vec<(String, String)> = match serde_json::from_str(&tags) {
                    Ok(tags) => tags,
                    Err(e) => {
                        tracing::warn!(creation_id = %id, error = %e, "unreadable tags of a creation; the account gets none");
                        Vec::new()
                    }
                };
                for (key, value) in tags {
                    tx.execute(
                        "INSERT INTO org_tags (account_id, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
                        params![account_id, key, value],
                    )?;
                }
                Some(account_id)
            }
        };
        tx.execute(
            "UPDATE org_creations SET state = ?2, account_id = ?3, failure_reason = ?4, completed_ms = ?5
             WHERE id = ?1",
            params![
                id,
                if account_id.is_some() { "SUCCEEDED" } else { "FAILED" },
                account_id,
                reason,
                now
            ],
        )?;
        completed.push(Completed::Creation {
            id,
            account_id,
            failure_reason: reason,
            requested_ms,
            completed_ms: now,
        });
    }
    let closures: Vec<(String, i64)> = tx
        .prepare(
            "SELECT account_id, requested_ms FROM org_closures
             WHERE done = 0 AND complete_at_ms <= ?1 ORDER BY complete_at_ms, account_id",
        )?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (account_id, requested_ms) in closures {
        tx.execute(
            "UPDATE org_accounts SET status = 'SUSPENDED' WHERE account_id = ?1",
            [&account_id],
        )?;
        tx.execute(
            "UPDATE org_closures SET done = 1, complete_at_ms = ?2 WHERE account_id = ?1",
            params![account_id, now],
        )?;
        completed.push(Completed::Closure {
            account_id,
            requested_ms,
            completed_ms: now,
        });
    }
    let next_due_ms: Option<i64> = tx.query_row(
        "SELECT MIN(due) FROM (
             SELECT MIN(complete_at_ms) AS due FROM org_creations WHERE state = 'IN_PROGRESS'
             UNION ALL
             SELECT MIN(complete_at_ms) FROM org_closures WHERE done = 0)",
        [],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(Tick {
        completed,
        used_failure,
        next_due_ms,
    })
}

/// Accounts that count against the organization's quota, the management
/// account included: every member but those closed for good (90 days
/// after their closure completed).
fn counted_accounts(conn: &Connection, now: i64) -> Result<i64, rusqlite::Error> {
    let members: i64 = conn.query_row(
        "SELECT COUNT(*) FROM org_accounts a LEFT JOIN org_closures c ON c.account_id = a.account_id
         WHERE a.status != 'SUSPENDED' OR c.complete_at_ms IS NULL OR c.complete_at_ms > ?1",
        [now - POST_CLOSURE_MS],
        |r| r.get(0),
    )?;
    Ok(members + 1)
}

/// A random 12-digit account id no account has.
fn fresh_account_id(conn: &Connection, management: &str) -> Result<String, rusqlite::Error> {
    loop {
        let id = format!("{:012}", fastrand::u64(..1_000_000_000_000));
        let taken = id == management
            || conn
                .query_row(
                    "SELECT 1 FROM org_accounts WHERE account_id = ?1",
                    [&id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
        if !taken {
            return Ok(id);
        }
    }
}

/// The status of a member account, `None` if it is not one.
fn status_of(conn: &Connection, account_id: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.query_row(
        "SELECT status FROM org_accounts WHERE account_id = ?1",
        [account_id],
        |r| r.get(0),
    )
    .optional()
}

fn no_policy(policy_id: &str) -> OrganizationError {
    OrganizationError::NotFound(format!(
        "no service control policy {policy_id} in the organization"
    ))
}

/// Whether a policy can be attached to `account_id`: a member account, or
/// the management account (where SCPs have no effect, as in AWS).
fn is_target(
    conn: &Connection,
    account_id: &str,
    management: &str,
) -> Result<bool, rusqlite::Error> {
    Ok(account_id == management || status_of(conn, account_id)?.is_some())
}

/// The policies attached to `account`, once both the policy and the
/// account are known to exist (else the NotFound AWS answers).
fn attachments_of(
    conn: &Connection,
    policy: &str,
    account: &str,
    management: &str,
) -> Result<Result<Vec<(String, String)>, OrganizationError>, rusqlite::Error> {
    if !policy_exists(conn, policy)? {
        return Ok(Err(no_policy(policy)));
    }
    if !is_target(conn, account, management)? {
        return Ok(Err(no_account(account)));
    }
    attached(conn, account).map(Ok)
}

fn policy_exists(conn: &Connection, policy_id: &str) -> Result<bool, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM org_policies WHERE id = ?1",
            [policy_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The policies attached to a target, ids and names, in the order they
/// were attached. AWS never leaves a target without an SCP, so a target
/// without rows was never changed and has its default, `FullAWSAccess`.
fn attached(conn: &Connection, target: &str) -> Result<Vec<(String, String)>, rusqlite::Error> {
    let rows: Vec<(String, String)> = conn
        .prepare(
            "SELECT a.policy_id, p.name FROM org_policy_attachments a
             JOIN org_policies p ON p.id = a.policy_id
             WHERE a.target_id = ?1 ORDER BY a.rowid",
        )?
        .query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Ok(vec![(
            FULL_AWS_ACCESS.to_string(),
            FULL_AWS_ACCESS_NAME.to_string(),
        )]);
    }
    Ok(rows)
}

/// Writes a target's default attachment down before its first change.
fn seed_attachments(conn: &Connection, target: &str) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO org_policy_attachments (policy_id, target_id)
         SELECT ?1, ?2 WHERE NOT EXISTS
             (SELECT 1 FROM org_policy_attachments WHERE target_id = ?2)",
        params![FULL_AWS_ACCESS, target],
    )?;
    Ok(())
}

/// Checks a policy as `CreatePolicy` and `UpdatePolicy` do: AWS counts the
/// document's characters (not bytes), and refuses what is not a policy
/// document, a JSON object.
fn check_policy(name: &str, description: &str, content: &str) -> Result<(), OrganizationError> {
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > MAX_POLICY_NAME_CHARS {
        return Err(constraint(
            "InvalidInputException",
            format!(
                "a policy's name has 1 to {MAX_POLICY_NAME_CHARS} characters; {name:?} has {name_chars}"
            ),
        ));
    }
    if description.chars().count() > MAX_POLICY_DESCRIPTION_CHARS {
        return Err(constraint(
            "InvalidInputException",
            format!("a policy's description has at most {MAX_POLICY_DESCRIPTION_CHARS} characters"),
        ));
    }
    let chars = content.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(constraint(
            "POLICY_CONTENT_LIMIT_EXCEEDED",
            format!("policy {name} is {chars} characters; an SCP holds at most {MAX_POLICY_CHARS}"),
        ));
    }
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(constraint(
            "MALFORMED_POLICY_DOCUMENT",
            format!("policy {name} is not a JSON object"),
        )),
        Err(e) => Err(constraint(
            "MALFORMED_POLICY_DOCUMENT",
            format!("policy {name} is not JSON: {e}"),
        )),
    }
}

/// A policy id no policy has: `p-` and eight of `[a-z0-9]`, as AWS's.
fn fresh_policy_id(conn: &Connection) -> Result<String, rusqlite::Error> {
    loop {
        let id = format!("p-{}", random_id_chars(8));
        if !policy_exists(conn, &id)? {
            return Ok(id);
        }
    }
}

fn no_account(account_id: &str) -> OrganizationError {
    OrganizationError::NotFound(format!(
        "account {account_id} is not a member of the organization"
    ))
}

#[async_trait]
impl Organization for SimulatedOrganization {
    /// Refuses a sixth creation in progress with `ConcurrentModification`:
    /// AWS allows five at once but does not document the error beyond it;
    /// what callers observe then is "another request is already in
    /// progress. Try again later", which is retryable, not a failure of
    /// the request.
    async fn create_account(
        &self,
        email: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<CreationStatus, OrganizationError> {
        let id = format!("car-{}", uuid::Uuid::new_v4().simple());
        let now = epoch_ms(Utc::now());
        let due = now.saturating_add(self.delay_ms());
        let tags = serde_json::to_string(tags)
            .map_err(|e| OrganizationError::Unavailable(format!("tags: {e}")))?;
        let (email, name, car) = (email.to_string(), name.to_string(), id.clone());
        let accepted = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let in_progress: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM org_creations WHERE state = 'IN_PROGRESS'",
                    [],
                    |r| r.get(0),
                )?;
                if in_progress >= i64::from(MAX_CONCURRENT_CREATIONS) {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO org_creations (id, email, name, tags, state, requested_ms, complete_at_ms)
                     VALUES (?1, ?2, ?3, ?4, 'IN_PROGRESS', ?5, ?6)",
                    params![car, email, name, tags, now, due],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
            .map_err(unavailable)?;
        if !accepted {
            return Err(OrganizationError::ConcurrentModification(format!(
                "AWS Organizations can't complete your request because another request is already in progress ({MAX_CONCURRENT_CREATIONS} account creations are). Try again later."
            )));
        }
        self.wake.notify_one();
        Ok(CreationStatus {
            id,
            state: CreationState::InProgress,
            account_id: None,
            failure_reason: None,
        })
    }

    async fn find_creation(
        &self,
        email: &str,
        name: &str,
    ) -> Result<Option<CreationStatus>, OrganizationError> {
        let (email, name) = (email.to_string(), name.to_string());
        let row: Option<(String, String, Option<String>)> = self
            .db
            .call(move |conn| {
                // As AWS answers it: the email only of an account that
                // exists, the name of a creation in progress.
                conn.query_row(
                    "SELECT c.id, c.state, c.account_id FROM org_creations c
                     LEFT JOIN org_accounts a ON a.account_id = c.account_id
                     WHERE (c.state = 'SUCCEEDED' AND a.email = ?1)
                        OR (c.state = 'IN_PROGRESS' AND c.name = ?2)
                     ORDER BY c.state = 'SUCCEEDED' DESC, c.requested_ms LIMIT 1",
                    params![email, name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        Ok(row.and_then(|(id, state, account_id)| {
            Some(CreationStatus {
                id,
                state: creation_state(&state)?,
                account_id,
                failure_reason: None,
            })
        }))
    }

    async fn creation_status(
        &self,
        creation_id: &str,
    ) -> Result<CreationStatus, OrganizationError> {
        let id = creation_id.to_string();
        let row: Option<(String, Option<String>, Option<String>)> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT state, account_id, failure_reason FROM org_creations WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        let Some((state, account_id, failure_reason)) = row else {
            return Err(OrganizationError::NotFound(format!(
                "no account creation request {creation_id}"
            )));
        };
        let state = creation_state(&state).ok_or_else(|| {
            OrganizationError::Unavailable(format!("creation {creation_id} is in state {state}"))
        })?;
        Ok(CreationStatus {
            id: creation_id.to_string(),
            state,
            account_id,
            failure_reason,
        })
    }

    async fn ensure_ou(&self, path: &[&str]) -> Result<String, OrganizationError> {
        if path.len() > MAX_OU_DEPTH {
            return Err(constraint(
                "OU_DEPTH_LIMIT_EXCEEDED",
                format!(
                    "OUs nest at most {MAX_OU_DEPTH} deep; {} is {} deep",
                    path.join("/"),
                    path.len()
                ),
            ));
        }
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let root = root_id(&tx)?;
                let root4 = root.trim_start_matches("r-").to_string();
                let mut parent = root;
                for name in &path {
                    let found: Option<String> = tx
                        .query_row(
                            "SELECT id FROM org_ous WHERE parent = ?1 AND name = ?2",
                            params![parent, name],
                            |r| r.get(0),
                        )
                        .optional()?;
                    parent = match found {
                        Some(id) => id,
                        None => {
                            let ous: i64 =
                                tx.query_row("SELECT COUNT(*) FROM org_ous", [], |r| r.get(0))?;
                            if ous >= MAX_OUS {
                                return Ok(Err(constraint(
                                    "OU_NUMBER_LIMIT_EXCEEDED",
                                    format!("the organization already has {MAX_OUS} OUs"),
                                )));
                            }
                            let id = format!("ou-{root4}-{}", random_id_chars(8));
                            tx.execute(
                                "INSERT INTO org_ous (id, name, parent) VALUES (?1, ?2, ?3)",
                                params![id, name, parent],
                            )?;
                            id
                        }
                    };
                }
                tx.commit()?;
                Ok(Ok(parent))
            })
            .await
            .map_err(unavailable)?
    }

    async fn move_account(&self, account_id: &str, ou_id: &str) -> Result<(), OrganizationError> {
        let (account, ou) = (account_id.to_string(), ou_id.to_string());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let parent: Option<String> = tx
                    .query_row(
                        "SELECT parent FROM org_accounts WHERE account_id = ?1",
                        [&account],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(parent) = parent else {
                    return Ok(Err(no_account(&account)));
                };
                let exists = ou == root_id(&tx)?
                    || tx
                        .query_row("SELECT 1 FROM org_ous WHERE id = ?1", [&ou], |_| Ok(()))
                        .optional()?
                        .is_some();
                if !exists {
                    return Ok(Err(OrganizationError::NotFound(format!(
                        "no OU or root {ou} in the organization"
                    ))));
                }
                if parent != ou {
                    tx.execute(
                        "UPDATE org_accounts SET parent = ?2 WHERE account_id = ?1",
                        params![account, ou],
                    )?;
                    tx.commit()?;
                }
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)?
    }

    async fn tag_account(
        &self,
        account_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), OrganizationError> {
        let (account, tags) = (account_id.to_string(), tags.to_vec());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if status_of(&tx, &account)?.is_none() {
                    return Ok(Err(no_account(&account)));
                }
                for (key, value) in &tags {
                    tx.execute(
                        "INSERT INTO org_tags (account_id, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
                        params![account, key, value],
                    )?;
                }
                let count: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM org_tags WHERE account_id = ?1",
                    [&account],
                    |r| r.get(0),
                )?;
                if count > MAX_TAGS {
                    // Dropping the transaction undoes the tags.
                    return Ok(Err(constraint(
                        "MAX_TAG_LIMIT_EXCEEDED",
                        format!("an account has at most {MAX_TAGS} tags"),
                    )));
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)?
    }

    /// AWS answers a closure of a closing account with `ConflictException`
    /// and of a closed one with `AccountAlreadyClosedException`; the port
    /// has no such variants, so they come as `Constraint` with the
    /// exception's name as the reason.
    async fn close_account(&self, account_id: &str) -> Result<(), OrganizationError> {
        if account_id == self.config.management_account {
            return Err(OrganizationError::NotFound(format!(
                "{account_id} is the management account; CloseAccount closes member accounts only"
            )));
        }
        let account = account_id.to_string();
        let now = epoch_ms(Utc::now());
        let due = now.saturating_add(self.delay_ms());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                match status_of(&tx, &account)?.as_deref() {
                    None => return Ok(Err(no_account(&account))),
                    Some("ACTIVE") => {}
                    Some("PENDING_CLOSURE") => {
                        return Ok(Err(constraint(
                            "ConflictException",
                            format!("account {account} is already being closed (PENDING_CLOSURE)"),
                        )));
                    }
                    Some(_) => {
                        return Ok(Err(constraint(
                            "AccountAlreadyClosedException",
                            format!("account {account} is already closed (SUSPENDED)"),
                        )));
                    }
                }
                let members = member_count(&tx)?;
                let quota = closure_quota(u32::try_from(members).unwrap_or(u32::MAX));
                let recent: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM org_closures WHERE requested_ms > ?1",
                    [now - CLOSURE_WINDOW_MS],
                    |r| r.get(0),
                )?;
                if recent >= i64::from(quota) {
                    return Ok(Err(constraint(
                        "CLOSE_ACCOUNT_QUOTA_EXCEEDED",
                        format!(
                            "{recent} accounts were closed in the last 30 days; the quota is {quota}"
                        ),
                    )));
                }
                tx.execute(
                    "UPDATE org_accounts SET status = 'PENDING_CLOSURE' WHERE account_id = ?1",
                    [&account],
                )?;
                tx.execute(
                    "INSERT INTO org_closures (account_id, requested_ms, complete_at_ms, done)
                     VALUES (?1, ?2, ?3, 0)
                     ON CONFLICT (account_id) DO UPDATE SET requested_ms = excluded.requested_ms,
                         complete_at_ms = excluded.complete_at_ms, done = 0",
                    params![account, now, due],
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)??;
        self.wake.notify_one();
        Ok(())
    }

    async fn member_status(&self, account_id: &str) -> Result<MemberStatus, OrganizationError> {
        if account_id == self.config.management_account {
            return Ok(MemberStatus::Active);
        }
        let account = account_id.to_string();
        let status = self
            .db
            .call(move |conn| status_of(conn, &account))
            .await
            .map_err(unavailable)?
            .ok_or_else(|| no_account(account_id))?;
        member_status(&status).ok_or_else(|| {
            OrganizationError::Unavailable(format!("account {account_id} has status {status}"))
        })
    }

    /// ACTIVE and PENDING_CLOSURE members, and the management account.
    async fn member_account_count(&self) -> Result<u32, OrganizationError> {
        let n = self
            .db
            .call(|conn| member_count(conn))
            .await
            .map_err(unavailable)?;
        u32::try_from(n).map_err(|_| OrganizationError::Unavailable(format!("{n} members")))
    }

    /// Policy names are unique, as `CreatePolicy` keeps them. AWS's own
    /// `FullAWSAccess` cannot be changed: a different content for it is
    /// refused with `PolicyChangesNotAllowedException` as the reason.
    async fn ensure_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, OrganizationError> {
        check_policy(name, description, content)?;
        let (name, description, content) = (
            name.to_string(),
            description.to_string(),
            content.to_string(),
        );
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let found: Option<(String, String, String, bool)> = tx
                    .query_row(
                        "SELECT id, description, content, aws_managed FROM org_policies
                         WHERE name = ?1",
                        [&name],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let id = match found {
                    Some((id, held_description, held_content, aws_managed)) => {
                        if held_content == content
                            && (held_description == description || aws_managed)
                        {
                            return Ok(Ok(id));
                        }
                        if aws_managed {
                            return Ok(Err(constraint(
                                "PolicyChangesNotAllowedException",
                                format!("{name} is managed by AWS and cannot be changed"),
                            )));
                        }
                        tx.execute(
                            "UPDATE org_policies SET description = ?2, content = ?3 WHERE id = ?1",
                            params![id, description, content],
                        )?;
                        id
                    }
                    None => {
                        let id = fresh_policy_id(&tx)?;
                        tx.execute(
                            "INSERT INTO org_policies (id, name, description, content)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![id, name, description, content],
                        )?;
                        id
                    }
                };
                tx.commit()?;
                Ok(Ok(id))
            })
            .await
            .map_err(unavailable)?
    }

    /// Counts `FullAWSAccess` while it is attached, as AWS does: a member
    /// account takes four more SCPs unless it was detached.
    async fn attach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        let (policy, account) = (policy_id.to_string(), account_id.to_string());
        let management = self.config.management_account.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let held = match attachments_of(&tx, &policy, &account, &management)? {
                    Ok(held) => held,
                    Err(missing) => return Ok(Err(missing)),
                };
                if held.iter().any(|(id, _)| *id == policy) {
                    return Ok(Ok(()));
                }
                if held.len() >= MAX_POLICIES_PER_TARGET {
                    let names: Vec<&str> = held.iter().map(|(_, name)| name.as_str()).collect();
                    return Ok(Err(constraint(
                        "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                        format!(
                            "account {account} has {MAX_POLICIES_PER_TARGET} SCPs attached already ({})",
                            names.join(", ")
                        ),
                    )));
                }
                seed_attachments(&tx, &account)?;
                tx.execute(
                    "INSERT INTO org_policy_attachments (policy_id, target_id) VALUES (?1, ?2)",
                    params![policy, account],
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)?
    }

    /// AWS keeps at least one SCP on every target: detaching the last is
    /// refused with `MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED`.
    async fn detach_policy(
        &self,
        policy_id: &str,
        account_id: &str,
    ) -> Result<(), OrganizationError> {
        let (policy, account) = (policy_id.to_string(), account_id.to_string());
        let management = self.config.management_account.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let held = match attachments_of(&tx, &policy, &account, &management)? {
                    Ok(held) => held,
                    Err(missing) => return Ok(Err(missing)),
                };
                if !held.iter().any(|(id, _)| *id == policy) {
                    return Ok(Ok(()));
                }
                if held.len() == 1 {
                    return Ok(Err(constraint(
                        "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                        format!(
                            "{policy} is the last SCP of account {account}; attach another first"
                        ),
                    )));
                }
                // Two or more attached: the target's rows are written down.
                tx.execute(
                    "DELETE FROM org_policy_attachments WHERE policy_id = ?1 AND target_id = ?2",
                    params![policy, account],
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
            .map_err(unavailable)?
    }

    async fn policies_of(&self, account_id: &str) -> Result<Vec<String>, OrganizationError> {
        Ok(self
            .attached_policies(account_id)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }
}

impl SimulatedOrganization {
    /// What the SCPs attached to `account_id` decide of `request`, as AWS
    /// does: a request passes when an attached policy allows it and none
    /// denies it (scp.rs). So a frozen account refuses everyone but the
    /// roles the freeze exempts, and a guardrail its denied actions,
    /// instance types and regions. SCPs never bind the management account
    /// nor service-linked roles.
    pub async fn authorize(
        &self,
        account_id: &str,
        request: &ScpRequest,
    ) -> Result<Decision, OrganizationError> {
        authorize(
            &self.db,
            &self.config.management_account,
            account_id,
            request,
        )
        .await
    }

    /// The ids and names of the SCPs attached to an account, in the order
    /// they were attached, for tests and the demo.
    pub async fn attached_policies(
        &self,
        account_id: &str,
    ) -> Result<Vec<(String, String)>, OrganizationError> {
        let account = account_id.to_string();
        let management = self.config.management_account.clone();
        self.db
            .call(move |conn| {
                if !is_target(conn, &account, &management)? {
                    return Ok(Err(no_account(&account)));
                }
                Ok(Ok(attached(conn, &account)?))
            })
            .await
            .map_err(unavailable)?
    }
}

/// [`SimulatedOrganization::authorize`] on the organization kept in `db`
/// whose management account is `management` (for `purser accounts may`,
/// which reads a data dir without starting `purser up`).
pub async fn authorize(
    db: &Db,
    management: &str,
    account_id: &str,
    request: &ScpRequest,
) -> Result<Decision, OrganizationError> {
    if account_id == management || request.principal_arn.contains(":role/aws-service-role/") {
        return Ok(Decision::Allowed);
    }
    let account = account_id.to_string();
    let management = management.to_string();
    let documents = db
        .call(move |conn| {
            if !is_target(conn, &account, &management)? {
                return Ok(Err(no_account(&account)));
            }
            let mut documents = Vec::new();
            for (id, name) in attached(conn, &account)? {
                let content: String = conn.query_row(
                    "SELECT content FROM org_policies WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )?;
                documents.push((name, content));
            }
            Ok(Ok(documents))
        })
        .await
        .map_err(unavailable)??;
    let mut policies = Vec::with_capacity(documents.len());
    for (name, content) in documents {
        let document = serde_json::from_str(&content)
            .map_err(|e| constraint("MALFORMED_POLICY_DOCUMENT", format!("policy {name}: {e}")))?;
        policies.push((name, document));
    }
    scp::evaluate(&policies, request).map_err(|e| constraint("MALFORMED_POLICY_DOCUMENT", e))
}

fn member_count(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM org_accounts WHERE status IN ('ACTIVE', 'PENDING_CLOSURE')",
        [],
        |r| r.get(0),
    )?;
    Ok(n + 1)
}

#[cfg(test)]
mod tests {
    //! The Organization contract (`purser_contract::organization`, shared
    //! with `OrganizationsClient` on moto), then what only the simulation
    //! does: creations and closures that take their delay and announce
    //! themselves as CloudTrail events, its failures (a duplicate email,
    //! the account limit, `fail_next_creation`, a sixth creation in
    //! progress, the closure quota), AWS's limits on OUs, tags, documents
    //! and the last SCP, the ids it makes, its own `attached_policies`, and
    //! its state outliving a restart.

    use super::*;
    use crate::bus::LocalBusConfig;
    use crate::inspect::{self, ArchiveFilter};
    use purser_contract::organization::{Fixture, Observer};
    use purser_core::SystemClock;
    use purser_core::ports::{ServiceEvent, parse_cloudtrail_time, parse_service_event};

    const MANAGEMENT: &str = "123456789012";

    /// Reads the organization's state from its database.
    struct Tables {
        db: Db,
    }

    impl Tables {
        async fn query<T: Send + 'static>(
            &self,
            sql: &'static str,
            key: &str,
            row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        ) -> Vec<T> {
            let key = key.to_string();
            self.db
                .call(move |c| c.prepare(sql)?.query_map([key], row)?.collect())
                .await
                .unwrap()
        }
    }

    impl Observer for Tables {
        async fn account(&self, account_id: &str) -> (String, String) {
            let found = self
                .query(
                    "SELECT email, name FROM org_accounts WHERE account_id = ?1",
                    account_id,
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .await;
            found
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no account {account_id}"))
        }

        async fn parent(&self, child_id: &str) -> String {
            let found: Vec<String> = self
                .query(
                    "SELECT parent FROM org_accounts WHERE account_id = ?1
                     UNION ALL SELECT parent FROM org_ous WHERE id = ?1",
                    child_id,
                    |r| r.get(0),
                )
                .await;
            let [parent] = found.as_slice() else {
                panic!("{child_id} has parents {found:?}");
            };
            parent.clone()
        }

        async fn tags(&self, account_id: &str) -> Vec<(String, String)> {
            self.query(
                "SELECT key, value FROM org_tags WHERE account_id = ?1",
                account_id,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .await
        }

        async fn document(&self, policy_id: &str) -> String {
            let found = self
                .query(
                    "SELECT content FROM org_policies WHERE id = ?1",
                    policy_id,
                    |r| r.get(0),
                )
                .await;
            found
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no policy {policy_id}"))
        }

        async fn policies_named(&self, name: &str) -> Vec<String> {
            self.query("SELECT id FROM org_policies WHERE name = ?1", name, |r| {
                r.get(0)
            })
            .await
        }

        async fn pause(&self) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The temporary directory and the completion loop, stopped when the
    /// fixture goes.
    struct Running {
        _dir: tempfile::TempDir,
        stop: CancellationToken,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    /// A fresh organization completing its work after 50 ms, with room
    /// for ten accounts.
    async fn fresh() -> Option<Fixture<Tables>> {
        let sim = start();
        let Sim {
            _dir,
            db,
            org,
            stop,
            ..
        } = sim;
        Some(Fixture::new(org, Tables { db }, MANAGEMENT).keeping(Running { _dir, stop }))
    }

    purser_contract::organization_contract!(fresh);

    struct Sim {
        _dir: tempfile::TempDir,
        db: Db,
        org: Arc<SimulatedOrganization>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    impl Sim {
        /// Stops the completion loop; the database stays for a restart.
        async fn stop(self) -> tempfile::TempDir {
            self.stop.cancel();
            self.task.await.unwrap();
            self._dir
        }
    }

    fn bus(db: &Db) -> LocalBus {
        LocalBus::new(
            db.clone(),
            LocalBusConfig {
                rules: vec![],
                buses: vec!["default".into()],
                region: "us-east-1".into(),
                own_account: MANAGEMENT.into(),
                allow_aws_sources: false,
            },
            Arc::new(SystemClock),
            Arc::new(Notify::new()),
        )
    }

    fn config(delay_ms: u64, account_limit: u32) -> SimulationConfig {
        SimulationConfig {
            delay: Duration::from_millis(delay_ms),
            account_limit,
            management_account: MANAGEMENT.into(),
            region: "us-east-1".into(),
        }
    }

    fn start_with(config: SimulationConfig) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let org = Arc::new(SimulatedOrganization::new(db.clone(), bus(&db), config));
        let stop = CancellationToken::new();
        let task = tokio::spawn(Arc::clone(&org).run(stop.clone()));
        Sim {
            _dir: dir,
            db,
            org,
            stop,
            task,
        }
    }

    fn start() -> Sim {
        start_with(config(50, 10))
    }

    /// The Organizations events on the archive named `event_name`.
    fn events(db: &Db, event_name: &str) -> Vec<Value> {
        inspect::archive(
            db,
            &ArchiveFilter {
                source: Some(ORGANIZATIONS_SOURCE.into()),
                limit: 1000,
                ..ArchiveFilter::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| e["detail"]["eventName"] == event_name)
        .collect()
    }

    async fn settled(org: &SimulatedOrganization, id: &str) -> CreationStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = org.creation_status(id).await.unwrap();
            if status.state != CreationState::InProgress {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never completed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn created(org: &SimulatedOrganization, email: &str) -> String {
        let started = org.create_account(email, "payments-x", &[]).await.unwrap();
        let done = settled(org, &started.id).await;
        assert_eq!(done.state, CreationState::Succeeded, "{done:?}");
        done.account_id.unwrap()
    }

    async fn until_status(org: &SimulatedOrganization, account_id: &str, status: MemberStatus) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while org.member_status(account_id).await.unwrap() != status {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{account_id} never became {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn tags_of(db: &Db, account_id: &str) -> Vec<(String, String)> {
        let account_id = account_id.to_string();
        db.call_blocking(move |c| {
            c.prepare("SELECT key, value FROM org_tags WHERE account_id = ?1 ORDER BY key")?
                .query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .unwrap()
    }

    fn is_id(text: &str, prefix: &str, len: usize) -> bool {
        text.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() == len
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    }

    #[test]
    fn cloudtrail_times_look_like_awss() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T10:00:04Z")
            .unwrap()
            .to_utc();
        assert_eq!(cloudtrail_time(t), "Nov 21, 2026 10:00:04 AM");
        let t = DateTime::parse_from_rfc3339("2020-09-06T21:20:50Z")
            .unwrap()
            .to_utc();
        assert_eq!(cloudtrail_time(t), "Sep 6, 2020 9:20:50 PM");
        assert_eq!(parse_cloudtrail_time(&cloudtrail_time(t)), Some(t));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_creation_completes_after_the_delay_and_says_so() {
        let sim = start();
        let began = Utc::now();
        let tags = [("purser:team".to_string(), "payments".to_string())];
        let started = sim
            .org
            .create_account("ana+purser-1@example.com", "payments-load tests", &tags)
            .await
            .unwrap();
        assert!(is_id(&started.id, "car-", 32), "{}", started.id);
        assert_eq!(started.state, CreationState::InProgress);
        assert_eq!(
            sim.org.creation_status(&started.id).await.unwrap().state,
            CreationState::InProgress
        );

        let done = settled(&sim.org, &started.id).await;
        assert!(Utc::now() - began >= chrono::Duration::milliseconds(50));
        assert_eq!(done.state, CreationState::Succeeded);
        let account_id = done.account_id.clone().unwrap();

        // The event is put right after the completion: allow it a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let events = events(&sim.db, "CreateAccountResult");
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event["source"], "aws.organizations");
        assert_eq!(event["detail-type"], "AWS Service Event via CloudTrail");
        assert_eq!(event["account"], MANAGEMENT);
        let detail = &event["detail"];
        assert_eq!(detail["eventSource"], "organizations.amazonaws.com");
        assert_eq!(detail["eventType"], "AwsServiceEvent");
        assert_eq!(detail["awsRegion"], "us-east-1");
        assert_eq!(detail["recipientAccountId"], MANAGEMENT);
        assert_eq!(detail["userIdentity"]["accountId"], MANAGEMENT);
        let status = &detail["serviceEventDetails"]["createAccountStatus"];
        assert_eq!(status["id"], started.id.as_str());
        assert_eq!(status["state"], "SUCCEEDED");
        assert_eq!(status["accountId"], account_id.as_str());
        assert_eq!(status["accountName"], "****");
        assert!(status.get("failureReason").is_none());
        let requested = parse_cloudtrail_time(status["requestedTimestamp"].as_str().unwrap());
        let completed = parse_cloudtrail_time(status["completedTimestamp"].as_str().unwrap());
        assert!(requested.is_some() && completed >= requested, "{status}");
        // The lead's parser in core reads what the simulation writes.
        match parse_service_event(detail).unwrap() {
            Some(ServiceEvent::CreateAccountResult { status, .. }) => assert_eq!(status, done),
            other => panic!("{other:?}"),
        }
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duplicate_email_fails_with_email_already_exists() {
        let sim = start();
        created(&sim.org, "ana@example.com").await;
        let again = sim
            .org
            .create_account("ana@example.com", "other", &[])
            .await
            .unwrap();
        let done = settled(&sim.org, &again.id).await;
        assert_eq!(done.state, CreationState::Failed);
        assert_eq!(done.account_id, None);
        assert_eq!(done.failure_reason.as_deref(), Some("EMAIL_ALREADY_EXISTS"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let failed: Vec<Value> = events(&sim.db, "CreateAccountResult")
            .into_iter()
            .filter(|e| {
                e["detail"]["serviceEventDetails"]["createAccountStatus"]["id"] == again.id.as_str()
            })
            .collect();
        assert_eq!(failed.len(), 1);
        let status = &failed[0]["detail"]["serviceEventDetails"]["createAccountStatus"];
        assert_eq!(status["state"], "FAILED");
        assert_eq!(status["failureReason"], "EMAIL_ALREADY_EXISTS");
        assert!(status.get("accountId").is_none());
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creations_beyond_the_account_limit_fail() {
        // Three accounts: the management account and two members.
        let sim = start_with(config(50, 3));
        created(&sim.org, "a@example.com").await;
        created(&sim.org, "b@example.com").await;
        let third = sim
            .org
            .create_account("c@example.com", "c", &[])
            .await
            .unwrap();
        let done = settled(&sim.org, &third.id).await;
        assert_eq!(
            done.failure_reason.as_deref(),
            Some("ACCOUNT_LIMIT_EXCEEDED")
        );
        assert_eq!(sim.org.member_account_count().await.unwrap(), 3);
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fail_next_creation_fails_only_the_next_one() {
        let sim = start();
        sim.org.fail_next_creation("INTERNAL_FAILURE");
        // Nothing is due yet: the failure waits for a creation.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let first = sim
            .org
            .create_account("a@example.com", "a", &[])
            .await
            .unwrap();
        let done = settled(&sim.org, &first.id).await;
        assert_eq!(done.state, CreationState::Failed);
        assert_eq!(done.failure_reason.as_deref(), Some("INTERNAL_FAILURE"));
        // The same email works afterwards: the failed one created nothing.
        created(&sim.org, "a@example.com").await;
        sim.stop().await;
    }

    #[tokio::test]
    async fn a_sixth_creation_in_progress_is_refused_as_retryable() {
        // A long delay: the creations stay in progress.
        let sim = start_with(config(60_000, 100));
        for i in 0..5 {
            sim.org
                .create_account(&format!("u{i}@example.com"), "x", &[])
                .await
                .unwrap();
        }
        let refused = sim
            .org
            .create_account("u5@example.com", "x", &[])
            .await
            .unwrap_err();
        assert!(
            matches!(refused, OrganizationError::ConcurrentModification(_)),
            "{refused:?}"
        );
        assert!(refused.is_retryable());
        sim.stop().await;
    }

    #[tokio::test]
    async fn ous_have_awss_ids_nest_five_deep_and_outlive_a_restart() {
        let sim = start_with(config(60_000, 10));
        let root = sim.org.root().await.unwrap();
        assert!(is_id(&root, "r-", 4), "{root}");
        assert_eq!(sim.org.ensure_ou(&[]).await.unwrap(), root);
        let payments = sim.org.ensure_ou(&["purser", "payments"]).await.unwrap();
        let root4 = &root[2..];
        assert!(is_id(&payments, &format!("ou-{root4}-"), 8), "{payments}");
        let five = sim.org.ensure_ou(&["a", "b", "c", "d", "e"]).await.unwrap();
        assert!(is_id(&five, &format!("ou-{root4}-"), 8), "{five}");
        let too_deep = sim
            .org
            .ensure_ou(&["a", "b", "c", "d", "e", "f"])
            .await
            .unwrap_err();
        assert!(matches!(
            too_deep,
            OrganizationError::Constraint { ref reason, .. } if reason == "OU_DEPTH_LIMIT_EXCEEDED"
        ));
        let dir = sim.stop().await;

        // The root is the database's: the same after a restart.
        let again = Db::open(dir.path()).unwrap();
        let org = SimulatedOrganization::new(again.clone(), bus(&again), config(50, 10));
        assert_eq!(org.root().await.unwrap(), root);
        assert_eq!(
            org.ensure_ou(&["purser", "payments"]).await.unwrap(),
            payments
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_account_takes_at_most_50_tags() {
        let sim = start();
        let account = created(&sim.org, "a@example.com").await;
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        sim.org
            .tag_account(
                &account,
                &[tag("purser:team", "payments"), tag("purser:owner", "ana")],
            )
            .await
            .unwrap();
        let many: Vec<_> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(matches!(
            sim.org.tag_account(&account, &many).await,
            Err(OrganizationError::Constraint { ref reason, .. }) if reason == "MAX_TAG_LIMIT_EXCEEDED"
        ));
        assert_eq!(
            tags_of(&sim.db, &account),
            vec![tag("purser:owner", "ana"), tag("purser:team", "payments")],
            "a refused call tags nothing"
        );
        // Exactly 50 fit.
        sim.org.tag_account(&account, &many[..48]).await.unwrap();
        assert_eq!(tags_of(&sim.db, &account).len(), 50);
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_account_is_pending_then_suspended_and_says_so() {
        let sim = start();
        let account = created(&sim.org, "a@example.com").await;
        created(&sim.org, "b@example.com").await;
        // The simulation counts the management account among the members.
        assert_eq!(sim.org.member_account_count().await.unwrap(), 3);

        sim.org.close_account(&account).await.unwrap();
        assert_eq!(
            sim.org.member_status(&account).await.unwrap(),
            MemberStatus::PendingClosure
        );
        assert_eq!(sim.org.member_account_count().await.unwrap(), 3);
        assert!(matches!(
            sim.org.close_account(&account).await,
            Err(OrganizationError::Constraint { ref reason, .. }) if reason == "ConflictException"
        ));

        until_status(&sim.org, &account, MemberStatus::Suspended).await;
        assert_eq!(sim.org.member_account_count().await.unwrap(), 2);
        assert!(matches!(
            sim.org.close_account(&account).await,
            Err(OrganizationError::Constraint { ref reason, .. }) if reason == "AccountAlreadyClosedException"
        ));
        assert!(matches!(
            sim.org.close_account(MANAGEMENT).await,
            Err(OrganizationError::NotFound(_))
        ));

        tokio::time::sleep(Duration::from_millis(50)).await;
        let closed = events(&sim.db, "CloseAccountResult");
        assert_eq!(closed.len(), 1);
        let status = &closed[0]["detail"]["serviceEventDetails"]["closeAccountStatus"];
        assert_eq!(status["accountId"], account.as_str());
        assert_eq!(status["state"], "SUCCEEDED");
        assert!(parse_cloudtrail_time(status["completedTimestamp"].as_str().unwrap()).is_some());
        assert_eq!(
            parse_service_event(&closed[0]["detail"]).unwrap(),
            Some(ServiceEvent::CloseAccountResult {
                account_id: account.clone(),
                succeeded: true
            })
        );
        // A suspended account still counts against the account limit and
        // keeps its email.
        let dup = sim
            .org
            .create_account("a@example.com", "a", &[])
            .await
            .unwrap();
        assert_eq!(
            settled(&sim.org, &dup.id).await.failure_reason.as_deref(),
            Some("EMAIL_ALREADY_EXISTS")
        );
        sim.stop().await;
    }

    #[tokio::test]
    async fn closures_stop_at_the_30_day_quota() {
        let sim = start_with(config(60_000, 100));
        let root = sim.org.root().await.unwrap();
        // Eleven members, put straight into the organization.
        let ids: Vec<String> = (0..11).map(|i| format!("{:012}", 100 + i)).collect();
        let rows = ids.clone();
        sim.db
            .call_blocking(move |c| {
                for id in &rows {
                    c.execute(
                        "INSERT INTO org_accounts (account_id, email, name, status, parent)
                         VALUES (?1, ?1 || '@example.com', 'x', 'ACTIVE', ?2)",
                        params![id, root],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(sim.org.member_account_count().await.unwrap(), 12);
        for id in &ids[..10] {
            sim.org.close_account(id).await.unwrap();
        }
        assert!(matches!(
            sim.org.close_account(&ids[10]).await,
            Err(OrganizationError::Constraint { ref reason, .. }) if reason == "CLOSE_ACCOUNT_QUOTA_EXCEEDED"
        ));
        assert_eq!(
            sim.org.member_status(&ids[10]).await.unwrap(),
            MemberStatus::Active
        );
        sim.stop().await;
    }

    /// Member accounts put straight into the organization.
    fn members(db: &Db, ids: &[&str]) {
        db.call_blocking(|c| {
            let root = root_id(c)?;
            for id in ids {
                c.execute(
                    "INSERT INTO org_accounts (account_id, email, name, status, parent)
                     VALUES (?1, ?1 || '@example.com', 'x', 'ACTIVE', ?2)",
                    params![id, root],
                )?;
            }
            Ok(())
        })
        .unwrap();
    }

    const DENY_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

    /// A policy document of exactly `chars` characters, some of them
    /// two bytes long, so it is longer in bytes.
    fn document_of(chars: usize) -> String {
        let head = r#"{"Version":"2012-10-17","Statement":[{"Sid":""#;
        let tail = r#"","Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        let pad = chars - head.len() - tail.len();
        let doc = format!("{head}{}{tail}", "é".repeat(pad));
        assert_eq!(doc.chars().count(), chars);
        doc
    }

    fn reason_of(result: Result<impl std::fmt::Debug, OrganizationError>) -> String {
        match result {
            Err(OrganizationError::Constraint { reason, .. }) => reason,
            other => panic!("not a constraint: {other:?}"),
        }
    }

    fn policy_rows(db: &Db) -> Vec<(String, String, String)> {
        db.call_blocking(|c| {
            c.prepare("SELECT id, name, content FROM org_policies ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn aws_manages_full_aws_access_and_policies_outlive_a_restart() {
        let sim = start_with(config(60_000, 10));
        let freeze = sim
            .org
            .ensure_policy("purser-freeze", "Purser: deny all", DENY_ALL)
            .await
            .unwrap();
        assert!(is_id(&freeze, "p-", 8), "{freeze}");
        let rows = policy_rows(&sim.db);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].0, FULL_AWS_ACCESS);
        assert_eq!(rows[0].1, "FullAWSAccess");
        assert_eq!(
            rows[1],
            (freeze.clone(), "purser-freeze".into(), DENY_ALL.into())
        );

        // AWS's own policy is there, and cannot be changed.
        let full = rows[0].2.clone();
        assert_eq!(
            sim.org
                .ensure_policy("FullAWSAccess", "anything", &full)
                .await
                .unwrap(),
            FULL_AWS_ACCESS
        );
        assert_eq!(
            reason_of(sim.org.ensure_policy("FullAWSAccess", "", DENY_ALL).await),
            "PolicyChangesNotAllowedException"
        );
        assert_eq!(
            reason_of(sim.org.ensure_policy("", "", DENY_ALL).await),
            "InvalidInputException"
        );
        assert_eq!(policy_rows(&sim.db), rows, "nothing refused was written");

        // Policies are the database's: the same after a restart.
        let dir = sim.stop().await;
        let again = Db::open(dir.path()).unwrap();
        let org = SimulatedOrganization::new(again.clone(), bus(&again), config(50, 10));
        assert_eq!(
            org.ensure_policy("purser-freeze", "Purser: deny all", DENY_ALL)
                .await
                .unwrap(),
            freeze
        );
    }

    #[tokio::test]
    async fn policy_documents_are_checked_for_size_and_form() {
        let sim = start_with(config(60_000, 10));
        // The limit is in characters: this one is longer in bytes.
        let largest = document_of(MAX_POLICY_CHARS);
        assert!(largest.len() > MAX_POLICY_CHARS);
        let id = sim
            .org
            .ensure_policy("purser-freeze", "", &largest)
            .await
            .unwrap();
        assert_eq!(
            reason_of(
                sim.org
                    .ensure_policy("purser-freeze", "", &document_of(MAX_POLICY_CHARS + 1))
                    .await
            ),
            "POLICY_CONTENT_LIMIT_EXCEEDED"
        );
        for bad in ["", "{", "not json", "[]", "\"Deny\""] {
            assert_eq!(
                reason_of(sim.org.ensure_policy("purser-freeze", "", bad).await),
                "MALFORMED_POLICY_DOCUMENT",
                "{bad:?}"
            );
            assert_eq!(
                reason_of(sim.org.ensure_policy("purser-new", "", bad).await),
                "MALFORMED_POLICY_DOCUMENT",
                "{bad:?}"
            );
        }
        // Nothing refused was written.
        let rows = policy_rows(&sim.db);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[1], (id, "purser-freeze".into(), largest));
        sim.stop().await;
    }

    #[tokio::test]
    async fn attached_policies_are_named_in_the_order_they_were_attached() {
        let sim = start_with(config(60_000, 10));
        members(&sim.db, &["111111111111"]);
        let account = "111111111111";
        let full = (FULL_AWS_ACCESS.to_string(), "FullAWSAccess".to_string());
        // Never changed: AWS's default, written down by the first change.
        assert_eq!(
            sim.org.attached_policies(account).await.unwrap(),
            std::slice::from_ref(&full)
        );
        assert_eq!(
            sim.org.attached_policies(MANAGEMENT).await.unwrap(),
            std::slice::from_ref(&full)
        );
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = sim
                .org
                .ensure_policy(&format!("policy-{i}"), "", DENY_ALL)
                .await
                .unwrap();
            ids.push(id);
        }
        for id in &ids[..4] {
            sim.org.attach_policy(id, account).await.unwrap();
        }
        sim.org.attach_policy(&ids[0], account).await.unwrap();
        sim.org
            .attach_policy(FULL_AWS_ACCESS, account)
            .await
            .unwrap();
        let named = |i: usize| (ids[i].clone(), format!("policy-{i}"));
        assert_eq!(
            sim.org.attached_policies(account).await.unwrap(),
            [full.clone(), named(0), named(1), named(2), named(3)]
        );
        sim.org.detach_policy(&ids[1], account).await.unwrap();
        sim.org.attach_policy(&ids[4], account).await.unwrap();
        assert_eq!(
            sim.org.attached_policies(account).await.unwrap(),
            [full, named(0), named(2), named(3), named(4)]
        );
        assert_eq!(
            sim.org.policies_of(account).await.unwrap(),
            [
                FULL_AWS_ACCESS,
                ids[0].as_str(),
                ids[2].as_str(),
                ids[3].as_str(),
                ids[4].as_str()
            ]
        );
        assert!(matches!(
            sim.org.attached_policies("000000000000").await,
            Err(OrganizationError::NotFound(_))
        ));
        sim.stop().await;
    }

    #[tokio::test]
    async fn the_last_scp_of_an_account_cannot_be_detached() {
        let sim = start_with(config(60_000, 10));
        members(&sim.db, &["111111111111"]);
        let account = "111111111111";
        let freeze = sim
            .org
            .ensure_policy("purser-freeze", "", DENY_ALL)
            .await
            .unwrap();

        // FullAWSAccess alone cannot go; beside another SCP it can, and
        // then five of others fit; the last SCP of an account cannot go.
        assert_eq!(
            reason_of(sim.org.detach_policy(FULL_AWS_ACCESS, account).await),
            "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
        );
        assert_eq!(
            sim.org.policies_of(account).await.unwrap(),
            [FULL_AWS_ACCESS]
        );
        sim.org.attach_policy(&freeze, account).await.unwrap();
        sim.org
            .detach_policy(FULL_AWS_ACCESS, account)
            .await
            .unwrap();
        assert_eq!(
            sim.org.policies_of(account).await.unwrap(),
            [freeze.as_str()]
        );
        assert_eq!(
            reason_of(sim.org.detach_policy(&freeze, account).await),
            "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
        );
        assert_eq!(
            sim.org.policies_of(account).await.unwrap(),
            [freeze.as_str()]
        );
        for i in 0..4 {
            let id = sim
                .org
                .ensure_policy(&format!("policy-{i}"), "", DENY_ALL)
                .await
                .unwrap();
            sim.org.attach_policy(&id, account).await.unwrap();
        }
        assert_eq!(sim.org.policies_of(account).await.unwrap().len(), 5);
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_attachments_only_four_fit_beside_full_aws_access() {
        let sim = start_with(config(60_000, 10));
        members(&sim.db, &["111111111111"]);
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(
                sim.org
                    .ensure_policy(&format!("policy-{i}"), "", DENY_ALL)
                    .await
                    .unwrap(),
            );
        }
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let org = Arc::clone(&sim.org);
                tokio::spawn(async move { org.attach_policy(&id, "111111111111").await })
            })
            .collect();
        let (mut attached, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => attached += 1,
                Err(OrganizationError::Constraint { reason, .. })
                    if reason == "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED" =>
                {
                    refused += 1
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!((attached, refused), (4, 4));
        let held = sim.org.policies_of("111111111111").await.unwrap();
        assert_eq!(held.len(), MAX_POLICIES_PER_TARGET);
        assert_eq!(held[0], FULL_AWS_ACCESS);
        sim.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_ensures_of_one_name_make_one_policy() {
        let sim = start_with(config(60_000, 10));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let org = Arc::clone(&sim.org);
                tokio::spawn(async move {
                    org.ensure_policy("purser-freeze", "", DENY_ALL)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(policy_rows(&sim.db).len(), 2);
        sim.stop().await;
    }

    async fn decision(org: &SimulatedOrganization, account: &str, request: ScpRequest) -> Decision {
        org.authorize(account, &request).await.unwrap()
    }

    fn denied_by(policy: &str, sid: &str) -> Decision {
        Decision::ExplicitlyDenied {
            policy: policy.into(),
            sid: Some(sid.into()),
        }
    }

    /// The SCPs attached to a member account decide what it may do, as on
    /// AWS: a guardrail refuses its denied actions, its largest instance
    /// types and other regions (but not global services), the freeze
    /// everything; both let the roles a freeze exempts through; nothing
    /// binds the management account or service-linked roles.
    #[tokio::test]
    async fn attached_scps_refuse_what_they_deny() {
        use purser_core::budgets::{FREEZE_POLICY, FreezeExemptions};
        use purser_core::guardrails::{GuardrailSettings, Guardrails};

        let sim = start_with(config(60_000, 10));
        let (guarded, frozen) = ("111111111111", "222222222222");
        members(&sim.db, &[guarded, frozen]);
        let org = sim.org.as_ref();
        let exemptions = FreezeExemptions {
            break_glass_roles: vec!["break-glass".into()],
            purser_role: "purser-lambda-throttle".into(),
            control_tower: false,
        };
        let dev = "arn:aws:iam::111111111111:role/developer";
        let glass = "arn:aws:iam::111111111111:role/break-glass";
        let ask = ScpRequest::new;
        let buy = || ask(dev, "ec2:PurchaseReservedInstancesOffering", "eu-west-1");
        assert_eq!(decision(org, guarded, buy()).await, Decision::Allowed);

        let guardrails = Guardrails::new(
            GuardrailSettings {
                regions: vec!["eu-west-1".into(), "eu-central-1".into()],
                ..GuardrailSettings::default()
            },
            exemptions.clone(),
        )
        .unwrap();
        let named = guardrails.named_policies("ou").unwrap();
        assert_eq!(named.len(), 1);
        for (name, document) in &named {
            let id = org.ensure_policy(name, "", document).await.unwrap();
            org.attach_policy(&id, guarded).await.unwrap();
        }
        let guardrail = named[0].0.as_str();
        let run = |who: &str, instance_type: &str| {
            ask(who, "ec2:RunInstances", "eu-west-1").with("ec2:InstanceType", instance_type)
        };
        let refused = [
            (buy(), "PurserDeniedActions"),
            (
                ask(dev, "aws-marketplace:Subscribe", "us-east-1"),
                "PurserDeniedActions",
            ),
            (
                ask(dev, "organizations:LeaveOrganization", "us-east-1"),
                "PurserDeniedActions",
            ),
            (run(dev, "p5.48xlarge"), "PurserLargestInstances"),
            (run(dev, "u-12tb1.112xlarge"), "PurserLargestInstances"),
            (ask(dev, "s3:PutObject", "us-west-2"), "PurserRegions"),
            (
                ask(dev, "lambda:CreateFunction", "us-east-1"),
                "PurserRegions",
            ),
        ];
        for (request, sid) in refused {
            let decided = decision(org, guarded, request.clone()).await;
            assert_eq!(decided, denied_by(guardrail, sid), "{request:?}");
            assert!(
                decided
                    .explain(&request)
                    .unwrap()
                    .contains("explicit deny in a service control policy"),
            );
        }
        let allowed = [
            run(dev, "t3.micro"),
            // RunInstances' other resources carry no instance type.
            ask(dev, "ec2:RunInstances", "eu-west-1"),
            ask(dev, "s3:PutObject", "eu-central-1"),
            ask(dev, "iam:CreateRole", "us-east-1"),
            ask(dev, "sts:AssumeRole", "us-east-1"),
            ask(dev, "support:CreateCase", "us-east-1"),
            ask(glass, "s3:PutObject", "us-west-2"),
            run(glass, "p5.48xlarge"),
            ask(
                "arn:aws:iam::111111111111:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                "ec2:RunInstances",
                "us-west-2",
            ),
        ];
        for request in allowed {
            assert_eq!(
                decision(org, guarded, request.clone()).await,
                Decision::Allowed,
                "{request:?}"
            );
        }
        // Another account, without the guardrail; the management account.
        assert_eq!(decision(org, frozen, buy()).await, Decision::Allowed);
        assert_eq!(decision(org, MANAGEMENT, buy()).await, Decision::Allowed);

        // The freeze: no one but the exempt roles.
        let freeze = org
            .ensure_policy(FREEZE_POLICY, "", &exemptions.policy().unwrap())
            .await
            .unwrap();
        org.attach_policy(&freeze, frozen).await.unwrap();
        let read = |who: &str| ask(who, "s3:GetObject", "eu-west-1");
        assert_eq!(
            decision(org, frozen, read("arn:aws:iam::222222222222:user/ana")).await,
            denied_by(FREEZE_POLICY, "PurserBudgetFreeze")
        );
        for exempt in [
            "arn:aws:iam::222222222222:role/break-glass",
            "arn:aws:iam::222222222222:role/purser-lambda-throttle",
            "arn:aws:iam::222222222222:role/stacksets-exec-0123456789abcdef",
        ] {
            assert_eq!(
                decision(org, frozen, read(exempt)).await,
                Decision::Allowed,
                "{exempt}"
            );
        }
        org.detach_policy(&freeze, frozen).await.unwrap();
        assert_eq!(
            decision(org, frozen, read("arn:aws:iam::222222222222:user/ana")).await,
            Decision::Allowed
        );
        // Without FullAWSAccess, nothing is allowed.
        org.attach_policy(&freeze, frozen).await.unwrap();
        org.detach_policy(FULL_AWS_ACCESS, frozen).await.unwrap();
        assert_eq!(
            decision(
                org,
                frozen,
                read("arn:aws:iam::222222222222:role/break-glass")
            )
            .await,
            Decision::ImplicitlyDenied
        );
        assert!(matches!(
            org.authorize("000000000000", &buy()).await,
            Err(OrganizationError::NotFound(_))
        ));
        sim.stop().await;
    }
}
