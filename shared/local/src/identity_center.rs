//! A simulated IAM Identity Center, in the same SQLite file, for `purser
//! up`, the demo and the tests: an identity store of users (an id and an
//! email each) and the account assignments that give a user a permission
//! set in an account.
//!
//! Requests complete at once: `assign` and `unassign` answer a request
//! already `Succeeded`, under a fresh id whose status can be asked later, as
//! on AWS once it is done. Assigning a user the identity store does not
//! know fails the request (`Failed`, with the reason), as AWS does. An
//! assignment's permission set ARN is taken as it is given; what a name
//! finds is the simulation's table of permission sets (`permission_set`):
//! the deployment's two (`PurserDeveloper`, `PurserReadOnly`, as
//! `runtime::local_access` configures them) and `PurserDataScience`, seeded
//! by the database's migration, and any an admin (or a test) adds with
//! [`SimulatedIdentityCenter::add_permission_set`]. Any other name is none,
//! as on AWS, so a lease template naming a set nobody made is refused.
//!
//! Users come from the runtime: [`SimulatedIdentityCenter::add_user`] (a
//! user an admin creates), [`SimulatedIdentityCenter::ensure_user`] (the
//! member emails of teams, once each) or
//! [`SimulatedIdentityCenter::with_users`], which seeds them when the
//! simulation is made.

use async_trait::async_trait;
use chrono::Utc;
use purser_core::access::PermissionSet;
use purser_core::ports::{
    AccessError, Assignment, AssignmentRequest, IdentityCenter, RequestState,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::{Db, DbError, epoch_ms};

/// The identity store and account assignments, simulated.
#[derive(Debug, Clone)]
pub struct SimulatedIdentityCenter {
    db: Db,
    /// Whether every team member named by email is a user.
    team_members: bool,
}

/// A user of the simulated identity store, as `purser` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedUser {
    pub user_id: String,
    pub email: String,
}

fn unavailable(e: DbError) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

/// An id as AWS makes them (a UUID).
fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The user id of `email`, creating the user if there is none.
fn ensure(conn: &Connection, email: &str) -> Result<String, rusqlite::Error> {
    conn.execute(
        "INSERT INTO sim_ic_users (user_id, email) VALUES (?1, ?2) ON CONFLICT (email) DO NOTHING",
        params![fresh_id(), email],
    )?;
    conn.query_row(
        "SELECT user_id FROM sim_ic_users WHERE email = ?1",
        [email],
        |r| r.get(0),
    )
}

impl SimulatedIdentityCenter {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            team_members: false,
        }
    }

    /// As `purser up` plays Identity Center: every email address a team
    /// names as a member is a user (made when first asked for), so the
    /// owner of a local account signs in when they are a member of its team.
    pub fn with_team_members(mut self) -> Self {
        self.team_members = true;
        self
    }

    /// The simulation with a user for each of `emails` (those it has
    /// already are kept, with their ids).
    pub fn with_users<I, S>(db: Db, emails: I) -> Result<Self, DbError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let emails: Vec<String> = emails.into_iter().map(|e| e.as_ref().to_owned()).collect();
        db.call_blocking(|conn| {
            let tx = conn.transaction()?;
            for email in &emails {
                ensure(&tx, email)?;
            }
            tx.commit()
        })?;
        Ok(Self::new(db))
    }

    /// Creates a user with `email` (as an admin adding someone to the
    /// identity store) and answers its id. An email a user has already is
    /// refused (a unique constraint of the database).
    pub async fn add_user(&self, email: &str) -> Result<String, DbError> {
        let email = email.to_owned();
        let id = fresh_id();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_ic_users (user_id, email) VALUES (?1, ?2)",
                    params![id, email],
                )?;
                Ok(id)
            })
            .await
    }

    /// Makes `set` one of the instance's permission sets (as an admin
    /// creating one); a name there already keeps its ARN (idempotent).
    pub async fn add_permission_set(&self, set: &PermissionSet) -> Result<(), DbError> {
        let set = set.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_ic_permission_sets (name, arn) VALUES (?1, ?2)
                     ON CONFLICT (name) DO NOTHING",
                    params![set.name, set.arn],
                )
                .map(|_| ())
            })
            .await
    }

    /// The id of the user with `email`, created if there is none: the
    /// runtime calls it for every member email of every team. Idempotent.
    pub async fn ensure_user(&self, email: &str) -> Result<String, DbError> {
        let email = email.to_owned();
        self.db.call(move |conn| ensure(conn, &email)).await
    }

    /// Records a request that completed at once, and answers it.
    async fn request(
        &self,
        kind: &'static str,
        assignment: &Assignment,
    ) -> Result<AssignmentRequest, AccessError> {
        let a = assignment.clone();
        let id = fresh_id();
        let now = epoch_ms(Utc::now());
        let (id, state) = self
            .db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let known: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM sim_ic_users WHERE user_id = ?1)",
                    [&a.user_id],
                    |r| r.get(0),
                )?;
                let failure = match kind {
                    "create" if !known => Some(format!(
                        "no user {} in the identity store",
                        a.user_id
                    )),
                    "create" => {
                        tx.execute(
                            "INSERT OR IGNORE INTO sim_ic_assignments (account_id, permission_set, user_id)
                             VALUES (?1, ?2, ?3)",
                            params![a.account_id, a.permission_set, a.user_id],
                        )?;
                        None
                    }
                    _ => {
                        tx.execute(
                            "DELETE FROM sim_ic_assignments
                             WHERE account_id = ?1 AND permission_set = ?2 AND user_id = ?3",
                            params![a.account_id, a.permission_set, a.user_id],
                        )?;
                        None
                    }
                };
                let state = if failure.is_some() { "FAILED" } else { "SUCCEEDED" };
                tx.execute(
                    "INSERT INTO sim_ic_requests
                     (id, kind, account_id, permission_set, user_id, state, failure_reason, requested_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![id, kind, a.account_id, a.permission_set, a.user_id, state, failure, now],
                )?;
                tx.commit()?;
                Ok((id, state_of(state, failure)))
            })
            .await
            .map_err(unavailable)?;
        Ok(AssignmentRequest { id, state })
    }

    /// A request's status, if it is a request of `kind`.
    async fn status(
        &self,
        kind: &'static str,
        request_id: &str,
    ) -> Result<AssignmentRequest, AccessError> {
        let id = request_id.to_owned();
        let found = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT state, failure_reason FROM sim_ic_requests WHERE id = ?1 AND kind = ?2",
                    params![id, kind],
                    |r| Ok(state_of(&r.get::<_, String>(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        match found {
            Some(state) => Ok(AssignmentRequest {
                id: request_id.to_owned(),
                state,
            }),
            None => Err(AccessError::NotFound(request_id.to_owned())),
        }
    }
}

fn state_of(state: &str, failure: Option<String>) -> RequestState {
    match state {
        "IN_PROGRESS" => RequestState::InProgress,
        "SUCCEEDED" => RequestState::Succeeded,
        _ => RequestState::Failed(failure.unwrap_or_default()),
    }
}

/// Every user of the simulated identity store, by email.
pub fn users(db: &Db) -> Result<Vec<SimulatedUser>, DbError> {
    db.call_blocking(|conn| {
        let mut stmt = conn.prepare("SELECT user_id, email FROM sim_ic_users ORDER BY email")?;
        stmt.query_map([], |r| {
            Ok(SimulatedUser {
                user_id: r.get(0)?,
                email: r.get(1)?,
            })
        })?
        .collect()
    })
}

#[async_trait]
impl IdentityCenter for SimulatedIdentityCenter {
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, AccessError> {
        let email = email.to_owned();
        let team_members = self.team_members;
        self.db
            .call(move |conn| {
                let user = conn
                    .query_row(
                        "SELECT user_id FROM sim_ic_users WHERE email = ?1",
                        [&email],
                        |r| r.get(0),
                    )
                    .optional()?;
                if user.is_some() || !team_members {
                    return Ok(user);
                }
                let member: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM teams, json_each(teams.members)
                                    WHERE lower(json_each.value) = lower(?1))",
                    [&email],
                    |r| r.get(0),
                )?;
                if member {
                    ensure(conn, &email).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await
            .map_err(unavailable)
    }

    async fn assign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError> {
        self.request("create", assignment).await
    }

    async fn assign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError> {
        self.status("create", request_id).await
    }

    async fn unassign(&self, assignment: &Assignment) -> Result<AssignmentRequest, AccessError> {
        self.request("delete", assignment).await
    }

    async fn unassign_status(&self, request_id: &str) -> Result<AssignmentRequest, AccessError> {
        self.status("delete", request_id).await
    }

    async fn assignments(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, AccessError> {
        let (account, ps) = (account_id.to_owned(), permission_set.to_owned());
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT user_id FROM sim_ic_assignments
                     WHERE account_id = ?1 AND permission_set = ?2 ORDER BY user_id",
                )?;
                stmt.query_map(params![account, ps], |r| {
                    Ok(Assignment {
                        account_id: account.clone(),
                        permission_set: ps.clone(),
                        user_id: r.get(0)?,
                    })
                })?
                .collect()
            })
            .await
            .map_err(unavailable)
    }

    async fn permission_set(&self, name: &str) -> Result<Option<PermissionSet>, AccessError> {
        let name = name.to_owned();
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT arn FROM sim_ic_permission_sets WHERE name = ?1",
                    [&name],
                    |r| {
                        Ok(PermissionSet {
                            arn: r.get(0)?,
                            name: name.clone(),
                        })
                    },
                )
                .optional()
            })
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn ensure_user_is_idempotent_and_add_user_refuses_a_taken_email() {
        let (_dir, db) = fresh();
        let center = SimulatedIdentityCenter::new(db.clone());
        let id = center.ensure_user("ana@example.com").await.unwrap();
        assert_eq!(center.ensure_user("ana@example.com").await.unwrap(), id);
        assert_eq!(
            center.user_by_email("ana@example.com").await.unwrap(),
            Some(id.clone())
        );
        assert!(center.add_user("ana@example.com").await.is_err());
        let bo = center.add_user("bo@example.com").await.unwrap();
        assert_ne!(bo, id);
        assert_eq!(
            users(&db).unwrap(),
            [
                SimulatedUser {
                    user_id: id,
                    email: "ana@example.com".into()
                },
                SimulatedUser {
                    user_id: bo,
                    email: "bo@example.com".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn seeded_users_keep_their_ids_across_restarts() {
        let (dir, db) = fresh();
        let center =
            SimulatedIdentityCenter::with_users(db, ["ana@example.com", "bo@example.com"]).unwrap();
        let ana = center.user_by_email("ana@example.com").await.unwrap();
        assert!(ana.is_some());
        drop(center);
        let db = Db::open(dir.path()).unwrap();
        let center = SimulatedIdentityCenter::with_users(db.clone(), ["ana@example.com"]).unwrap();
        assert_eq!(center.user_by_email("ana@example.com").await.unwrap(), ana);
        assert_eq!(users(&db).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_seeded_sets_are_found_by_name_and_an_added_one_too() {
        let (_dir, db) = fresh();
        let center = SimulatedIdentityCenter::new(db);
        let local = crate::runtime::local_access();
        for set in [&local.developer, local.read_only.as_ref().unwrap()] {
            assert_eq!(
                center.permission_set(&set.name).await.unwrap().as_ref(),
                Some(set)
            );
        }
        assert!(
            center
                .permission_set("PurserDataScience")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(center.permission_set("PurserGpu").await.unwrap(), None);
        let gpu = PermissionSet {
            arn: "arn:aws:sso:::permissionSet/ssoins-local/ps-gpu".into(),
            name: "PurserGpu".into(),
        };
        center.add_permission_set(&gpu).await.unwrap();
        center.add_permission_set(&gpu).await.unwrap();
        assert_eq!(center.permission_set("PurserGpu").await.unwrap(), Some(gpu));
    }

    #[tokio::test]
    async fn assigning_a_user_the_store_does_not_know_fails_the_request() {
        let (_dir, db) = fresh();
        let center = SimulatedIdentityCenter::new(db);
        let assignment = Assignment {
            account_id: "210987654321".into(),
            permission_set: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".into(),
            user_id: "no-such-user".into(),
        };
        let request = center.assign(&assignment).await.unwrap();
        let failed = RequestState::Failed("no user no-such-user in the identity store".into());
        assert_eq!(request.state, failed);
        assert_eq!(
            center.assign_status(&request.id).await.unwrap().state,
            failed
        );
        assert!(
            center
                .assignments("210987654321", &assignment.permission_set)
                .await
                .unwrap()
                .is_empty()
        );
        // A creation's id is not a deletion's.
        assert_eq!(
            center.unassign_status(&request.id).await,
            Err(AccessError::NotFound(request.id.clone()))
        );
    }

    /// The IdentityCenter port's contract
    /// (`purser_contract::identity_center`), on a fresh database with two
    /// users.
    mod contract {
        use std::sync::Arc;

        use purser_contract::identity_center::Fixture;
        use purser_core::access::PermissionSet;

        use super::super::SimulatedIdentityCenter;
        use crate::db::Db;

        async fn fresh() -> Option<Fixture> {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path()).unwrap();
            let users = ["ana@example.com".to_owned(), "bo@example.com".to_owned()];
            let center = SimulatedIdentityCenter::with_users(db, &users).unwrap();
            let instance = "arn:aws:sso:::permissionSet/ssoins-7223a1b5e0b4c1d2";
            let sets = [
                PermissionSet {
                    arn: format!("{instance}/ps-0123456789abcdef"),
                    name: "ContractOne".into(),
                },
                PermissionSet {
                    arn: format!("{instance}/ps-fedcba9876543210"),
                    name: "ContractOther".into(),
                },
            ];
            for set in &sets {
                center.add_permission_set(set).await.unwrap();
            }
            Some(Fixture::new(Arc::new(center), users, sets, "210987654321".into()).keeping(dir))
        }

        purser_contract::identity_center_contract!(fresh);
    }
}
