//! The local state: one SQLite file in the data directory, in WAL mode so
//! the CLI can read it while `purser up` writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub const DB_FILE: &str = "purser.db";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the local database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("local database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a local database task failed: {0}")]
    Task(String),
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many have run. Append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE archive (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    bus          TEXT NOT NULL,
    source       TEXT NOT NULL,
    detail_type  TEXT NOT NULL,
    account      TEXT NOT NULL,
    time         TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    envelope     TEXT NOT NULL
);
CREATE INDEX archive_received ON archive (received_ms);

-- Deliveries not yet acknowledged by their target. A row is deleted only
-- after the handler succeeded, so a crash re-delivers (at least once).
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL,
    target        TEXT NOT NULL,
    function      TEXT NOT NULL,
    payload       TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_retries   INTEGER NOT NULL,
    max_age_ms    INTEGER NOT NULL,
    first_ms      INTEGER NOT NULL,
    due_ms        INTEGER NOT NULL,
    in_flight     INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX deliveries_due ON deliveries (in_flight, due_ms);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    target      TEXT NOT NULL,
    function    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    error       TEXT NOT NULL,
    failed_ms   INTEGER NOT NULL
);

CREATE TABLE idempotency (
    key         TEXT PRIMARY KEY,
    expires_ms  INTEGER NOT NULL
);
"#,
    r#"
-- Purser's accounts: the whole Account as JSON in `data`; the columns
-- beside it are copies kept for lookups and ordering (times in epoch ms).
CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    team                TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    creation_id         TEXT,
    account_id          TEXT,
    closure_started_at  INTEGER,
    data                TEXT NOT NULL
);
CREATE INDEX accounts_team ON accounts (team, created_at, id);
CREATE INDEX accounts_state ON accounts (state, created_at, id);
CREATE INDEX accounts_creation ON accounts (creation_id);
CREATE INDEX accounts_account_id ON accounts (account_id);

CREATE TABLE teams (
    name     TEXT PRIMARY KEY,
    quota    INTEGER NOT NULL,
    members  TEXT NOT NULL
);

-- Open accounts per team, moved in the same transaction as the account.
CREATE TABLE team_counters (
    team  TEXT PRIMARY KEY,
    open  INTEGER NOT NULL
);

-- The organization's creations in flight (accounts in `creating`).
CREATE TABLE creation_slots (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    in_flight  INTEGER NOT NULL
);
INSERT INTO creation_slots (id, in_flight) VALUES (1, 0);

-- Idempotency-Key of account requests, with the request's fingerprint.
CREATE TABLE request_keys (
    key          TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    expires_ms   INTEGER NOT NULL
);

-- The simulated AWS Organization (see organization.rs).
CREATE TABLE org_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    root_id    TEXT NOT NULL,
    fail_next  TEXT
);

CREATE TABLE org_accounts (
    account_id  TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'PENDING_CLOSURE')),
    parent      TEXT NOT NULL
);

CREATE TABLE org_ous (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    parent  TEXT NOT NULL,
    UNIQUE (parent, name)
);

CREATE TABLE org_tags (
    account_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE org_creations (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    tags            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED')),
    account_id      TEXT,
    failure_reason  TEXT,
    requested_ms    INTEGER NOT NULL,
    complete_at_ms  INTEGER NOT NULL,
    completed_ms    INTEGER
);
CREATE INDEX org_creations_due ON org_creations (state, complete_at_ms);

CREATE TABLE org_closures (
    account_id      TEXT PRIMARY KEY,
    requested_ms    INTEGER NOT NULL,
    complete_at_ms  INTEGER NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX org_closures_due ON org_closures (done, complete_at_ms);
"#,
    r#"
-- Streamed spend per team or account and day (`YYYY-MM-DD`), in nano-units
-- of the currency; a batch adds to it once, with its idempotency claim.
CREATE TABLE spend (
    scope  TEXT NOT NULL CHECK (scope IN ('team', 'account')),
    key    TEXT NOT NULL,
    day    TEXT NOT NULL,
    nanos  INTEGER NOT NULL,
    PRIMARY KEY (scope, key, day)
);

-- Short-lived values kept between events (a stack operation's start).
CREATE TABLE markers (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL
);
"#,
    r#"
-- Teams' budgets: the whole Budget as JSON in `data`, with its revision
-- beside it for the conditional write.
CREATE TABLE budgets (
    team      TEXT PRIMARY KEY,
    revision  INTEGER NOT NULL,
    data      TEXT NOT NULL
);

-- The simulated organization's service control policies. AWS manages
-- `FullAWSAccess`, which every account has attached until it is detached.
CREATE TABLE org_policies (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL,
    content      TEXT NOT NULL,
    aws_managed  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO org_policies (id, name, description, content, aws_managed) VALUES (
    'p-FullAWSAccess',
    'FullAWSAccess',
    'Allows access to every operation',
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
    1
);

-- Policies attached to accounts, in the order they were attached. A target
-- without rows has never been changed and has `FullAWSAccess` alone (see
-- organization.rs); the first change writes that default down.
CREATE TABLE org_policy_attachments (
    policy_id  TEXT NOT NULL REFERENCES org_policies (id),
    target_id  TEXT NOT NULL,
    PRIMARY KEY (policy_id, target_id)
);
CREATE INDEX org_policy_attachments_target ON org_policy_attachments (target_id);
"#,
    r#"
-- What the spend function settled for a team's month (the whole
-- SettledSpend as JSON in `data`), with its time beside it for the
-- conditional write: a later settlement is never replaced by an earlier one.
CREATE TABLE settled_spend (
    team        TEXT NOT NULL,
    period      TEXT NOT NULL,
    settled_ms  INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (team, period)
);
"#,
    r#"
-- The simulated Lambda functions of member accounts (see lambdas.rs), with
-- their reserved concurrency (NULL: none), which throttle-lambdas sets.
CREATE TABLE sim_functions (
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    reserved    INTEGER CHECK (reserved IS NULL OR reserved >= 0),
    PRIMARY KEY (account_id, region, name)
);
"#,
    r#"
-- A dead letter keeps its rule's retry policy, so a redrive retries it as
-- the rule would (rows from before: EventBridge's defaults).
ALTER TABLE dead_letters ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 185;
ALTER TABLE dead_letters ADD COLUMN max_age_ms INTEGER NOT NULL DEFAULT 86400000;
"#,
    r#"
-- The lane a delivery waits in: its queue's message group (an SQS fair
-- queue's tenant, e.g. the sending account), '' for direct targets. The
-- dispatcher shares its slots among lanes, so one lane's backlog does not
-- delay another's events.
ALTER TABLE deliveries ADD COLUMN lane TEXT NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN lane TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_lane ON deliveries (in_flight, lane, due_ms);
"#,
    r#"
-- Who a team's notifications go to (emails, chat webhooks), as JSON.
ALTER TABLE teams ADD COLUMN notify TEXT NOT NULL DEFAULT '{}';
"#,
    r#"
-- The simulated IAM Identity Center (see identity_center.rs): its identity
-- store's users, the account assignments (a user given a permission set in
-- an account), and the creation and deletion requests, whose status can be
-- asked after they completed (at once).
CREATE TABLE sim_ic_users (
    user_id  TEXT PRIMARY KEY,
    email    TEXT NOT NULL UNIQUE
);

CREATE TABLE sim_ic_assignments (
    account_id      TEXT NOT NULL,
    permission_set  TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    PRIMARY KEY (account_id, permission_set, user_id)
);

CREATE TABLE sim_ic_requests (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('create', 'delete')),
    account_id      TEXT NOT NULL,
    permission_set  TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED')),
    failure_reason  TEXT,
    requested_ms    INTEGER NOT NULL
);
"#,
    r#"
-- Every notification sent or tried (see notifier.rs): who it went to as
-- `Recipient::describe` shows it (a webhook by its host, never its URL).
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    event_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    outcome    TEXT NOT NULL
);
CREATE INDEX notifications_event ON notifications (event_id);
"#,
    r#"
-- Streamed spend per team, month (`YYYY-MM`) and function of an account,
-- moved in the same transaction as the `spend` rows of the batch.
CREATE TABLE function_spend (
    team        TEXT NOT NULL,
    period      TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    function    TEXT NOT NULL,
    nanos       INTEGER NOT NULL,
    PRIMARY KEY (team, period, account_id, function)
);

-- Recent deployments of teams' accounts, for the console. `at` is RFC 3339
-- with nine fractional digits, so the text sorts as the times do; a mark
-- written again (a redelivered event) replaces itself.
CREATE TABLE deployments (
    team        TEXT NOT NULL,
    at          TEXT NOT NULL,
    id          TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    stack       TEXT NOT NULL,
    status      TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('ci', 'cloudformation')),
    PRIMARY KEY (team, at, id)
);
"#,
    r#"
-- A team's default lease template and approvers, as JSON.
ALTER TABLE teams ADD COLUMN leases TEXT NOT NULL DEFAULT '{}';

-- Lease templates, every version (the whole LeaseTemplate as JSON): a
-- change inserts the next version in an immediate transaction that reads
-- the latest first.
CREATE TABLE lease_templates (
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
"#,
    r#"
-- The simulated Identity Center's permission sets, by name (what a lease
-- template's permission_set names): the deployment's two
-- (runtime::local_access) and a data-science set to name in templates.
CREATE TABLE sim_ic_permission_sets (
    name  TEXT PRIMARY KEY,
    arn   TEXT NOT NULL UNIQUE
);
INSERT INTO sim_ic_permission_sets (name, arn) VALUES
    ('PurserDeveloper', 'arn:aws:sso:::permissionSet/ssoins-local/ps-developer'),
    ('PurserReadOnly', 'arn:aws:sso:::permissionSet/ssoins-local/ps-readonly'),
    ('PurserDataScience', 'arn:aws:sso:::permissionSet/ssoins-local/ps-datascience');
"#,
    r#"
-- Lease templates' blueprints, simulated: each StackSet instance deployed
-- into an account (by its operation's name, so a repeat records nothing
-- new), and the StackSets told to fail (tests, the demo).
CREATE TABLE sim_blueprint_deployments (
    operation    TEXT PRIMARY KEY,
    stack_set    TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    ou           TEXT NOT NULL,
    regions      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    deployed_at  TEXT NOT NULL
);
CREATE TABLE sim_failing_stack_sets (
    stack_set  TEXT PRIMARY KEY,
    reason     TEXT NOT NULL
);
"#,
    r#"
-- The simulated cleaner (see cleaner.rs): every run, finished as it
-- starts, and the accounts whose next runs are to fail (tests, the demo).
CREATE TABLE sim_cleaning_runs (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    pass        INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    config      TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    reason      TEXT
);
CREATE INDEX sim_cleaning_runs_key ON sim_cleaning_runs (account_id, pass, attempt, started_ms);
CREATE TABLE sim_cleaning_failures (
    account_id  TEXT PRIMARY KEY,
    remaining   INTEGER NOT NULL CHECK (remaining > 0)
);
"#,
    r#"
-- The landing area's files the watcher announced (landing.rs), so each
-- is announced once, as S3 announces each object.
CREATE TABLE sim_landed (
    key  TEXT PRIMARY KEY
);
"#,
    r#"
-- What runs in member accounts and costs by the second (store/running.rs):
-- one row a resource, `what` its kind as JSON (NULL on a tombstone: a stop
-- of no known run), times in epoch milliseconds; a stopped row expires at
-- expires_ms.
CREATE TABLE running_resources (
    account_id       TEXT NOT NULL,
    region           TEXT NOT NULL,
    service          TEXT NOT NULL,
    resource         TEXT NOT NULL,
    what             TEXT,
    started_ms       INTEGER NOT NULL,
    priced_until_ms  INTEGER NOT NULL,
    stopped_ms       INTEGER,
    expires_ms       INTEGER,
    PRIMARY KEY (account_id, region, service, resource)
);
"#,
    r#"
-- The member accounts' EC2 instances and SageMaker endpoints, simulated
-- (member_resources.rs): kind 'instance' (id its instance id, detail its
-- type, state EC2's) or 'endpoint' (id its name, detail its endpoint
-- configuration, state SageMaker's status, arn as its events name it);
-- and every stop Purser made (restore: what brings it back).
CREATE TABLE sim_resources (
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    detail      TEXT,
    state       TEXT NOT NULL,
    arn         TEXT,
    PRIMARY KEY (account_id, region, kind, id)
);
CREATE TABLE sim_stops (
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    restore     TEXT,
    stopped_ms  INTEGER NOT NULL
);
"#,
    r#"
-- Hourly spend per account ('' as resource) and per resource of it
-- (`<service>:<region>:<resource>`), moved in the same transaction as the
-- `spend` rows of the batch: what the runaway guard weighs. `hour` is
-- `YYYY-MM-DDTHH`, so the text sorts as the hours do.
CREATE TABLE hourly_spend (
    account_id  TEXT NOT NULL,
    hour        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    nanos       INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour, resource)
);
"#,
    r#"
-- A simulated endpoint's instances, as its events or its team told them
-- (member_resources.rs): JSON, a list of {instance_type, count}; NULL when
-- none did.
ALTER TABLE sim_resources ADD COLUMN instances TEXT;
"#,
];

/// A shared handle on the database. SQLite calls block, so they run on
/// tokio's blocking pool, one at a time on one connection.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |source| DbError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| {
            open_err(rusqlite::Error::InvalidPath(
                format!("{}: {e}", data_dir.display()).into(),
            ))
        })?;
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn).map_err(DbError::from)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` on the calling thread: for the CLI, which has no runtime to
    /// spare and reads a handful of rows.
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(DbError::from)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn epoch_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}
