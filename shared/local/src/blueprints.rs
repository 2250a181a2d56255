//! Lease templates' blueprints on `purser up`: no CloudFormation runs, so a
//! StackSet instance is recorded as deployed into the account (in
//! `sim_blueprint_deployments`, which `purser up`'s users and tests read),
//! and succeeds at once, unless its StackSet was told to fail.

use async_trait::async_trait;
use purser_core::ports::{BlueprintDeployment, BlueprintError, BlueprintOutcome, Blueprints};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError};

/// The simulated StackSets.
#[derive(Clone)]
pub struct SimulatedStackSets {
    db: Db,
}

/// One recorded deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedBlueprint {
    pub operation: String,
    pub stack_set: String,
    pub account_id: String,
    pub regions: Vec<String>,
    pub outcome: String,
    pub reason: Option<String>,
}

fn unavailable(e: DbError) -> BlueprintError {
    BlueprintError::Unavailable(e.to_string())
}

impl SimulatedStackSets {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Every later deployment of `stack_set` fails with `reason`, as
    /// CloudFormation would report a stack that did not create.
    pub async fn fail(&self, stack_set: &str, reason: &str) -> Result<(), DbError> {
        let (stack_set, reason) = (stack_set.to_string(), reason.to_string());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_failing_stack_sets (stack_set, reason) VALUES (?1, ?2)
                     ON CONFLICT (stack_set) DO UPDATE SET reason = excluded.reason",
                    params![stack_set, reason],
                )
                .map(|_| ())
            })
            .await
    }

    /// The deployments into `account_id`, oldest first.
    pub async fn deployed_into(&self, account_id: &str) -> Result<Vec<DeployedBlueprint>, DbError> {
        let account_id = account_id.to_string();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT operation, stack_set, account_id, regions, outcome, reason
                     FROM sim_blueprint_deployments WHERE account_id = ?1 ORDER BY deployed_at",
                )?;
                stmt.query_map(params![account_id], |r| {
                    let regions: String = r.get(3)?;
                    Ok(DeployedBlueprint {
                        operation: r.get(0)?,
                        stack_set: r.get(1)?,
                        account_id: r.get(2)?,
                        regions: regions.split(',').map(String::from).collect(),
                        outcome: r.get(4)?,
                        reason: r.get(5)?,
                    })
                })?
                .collect()
            })
            .await
    }
}

#[async_trait]
impl Blueprints for SimulatedStackSets {
    async fn deploy(&self, d: &BlueprintDeployment<'_>) -> Result<String, BlueprintError> {
        let operation = d.operation.to_string();
        let row = (
            d.operation.to_string(),
            d.stack_set.to_string(),
            d.account_id.to_string(),
            d.ou.to_string(),
            d.regions.join(","),
        );
        self.db
            .call(move |conn| {
                let failing: Option<String> = conn
                    .query_row(
                        "SELECT reason FROM sim_failing_stack_sets WHERE stack_set = ?1",
                        params![row.1],
                        |r| r.get(0),
                    )
                    .optional()?;
                let (outcome, reason) = match failing {
                    Some(reason) => ("failed", Some(reason)),
                    None => ("succeeded", None),
                };
                // The operation's name is its key: a repeat records nothing.
                conn.execute(
                    "INSERT INTO sim_blueprint_deployments
                       (operation, stack_set, account_id, ou, regions, outcome, reason, deployed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                     ON CONFLICT (operation) DO NOTHING",
                    params![row.0, row.1, row.2, row.3, row.4, outcome, reason],
                )
                .map(|_| ())
            })
            .await
            .map_err(unavailable)?;
        Ok(operation)
    }

    async fn outcome(
        &self,
        stack_set: &str,
        operation_id: &str,
        account_id: &str,
    ) -> Result<BlueprintOutcome, BlueprintError> {
        let key = (
            operation_id.to_string(),
            stack_set.to_string(),
            account_id.to_string(),
        );
        let found: Option<(String, Option<String>)> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT outcome, reason FROM sim_blueprint_deployments
                     WHERE operation = ?1 AND stack_set = ?2 AND account_id = ?3",
                    params![key.0, key.1, key.2],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(unavailable)?;
        match found {
            None => Err(BlueprintError::NotFound(format!(
                "StackSet {stack_set} has no operation {operation_id} for account {account_id}"
            ))),
            Some((outcome, _)) if outcome == "succeeded" => Ok(BlueprintOutcome::Succeeded),
            Some((_, reason)) => Ok(BlueprintOutcome::Failed {
                reason: reason.unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stack_sets() -> (tempfile::TempDir, SimulatedStackSets) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        (dir, SimulatedStackSets::new(db))
    }

    fn deployment<'a>(
        operation: &'a str,
        stack_set: &'a str,
        regions: &'a [String],
    ) -> BlueprintDeployment<'a> {
        BlueprintDeployment {
            stack_set,
            account_id: "210987654321",
            ou: "ou-ab12-cd34ef56",
            regions,
            operation,
        }
    }

    #[tokio::test]
    async fn a_deployment_is_recorded_once_and_succeeds() {
        let (_dir, sets) = stack_sets().await;
        let regions = vec!["eu-west-1".to_string()];
        let d = deployment("purser-r-000000000001", "purser-baseline", &regions);
        let first = sets.deploy(&d).await.unwrap();
        let again = sets.deploy(&d).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(
            sets.outcome("purser-baseline", &first, "210987654321")
                .await,
            Ok(BlueprintOutcome::Succeeded)
        );
        let deployed = sets.deployed_into("210987654321").await.unwrap();
        assert_eq!(deployed.len(), 1);
        assert_eq!(deployed[0].regions, regions);
    }

    #[tokio::test]
    async fn a_stack_set_told_to_fail_fails_with_its_reason() {
        let (_dir, sets) = stack_sets().await;
        sets.fail(
            "purser-broken",
            "Resource handler returned message: \"Bucket exists\"",
        )
        .await
        .unwrap();
        let regions = vec!["us-east-1".to_string()];
        let id = sets
            .deploy(&deployment(
                "purser-r-000000000002",
                "purser-broken",
                &regions,
            ))
            .await
            .unwrap();
        assert_eq!(
            sets.outcome("purser-broken", &id, "210987654321").await,
            Ok(BlueprintOutcome::Failed {
                reason: "Resource handler returned message: \"Bucket exists\"".into()
            })
        );
        assert!(matches!(
            sets.outcome("purser-broken", "nope", "210987654321").await,
            Err(BlueprintError::NotFound(_))
        ));
    }
}
