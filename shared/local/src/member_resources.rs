//! Simulated EC2 instances and SageMaker endpoints of member accounts, in
//! the same SQLite file, for the runaway guard's `stop-resource` and the
//! recorder's instance types: what `purser up` stops, as AWS would.
//!
//! A resource exists locally once the member account told of it, as the
//! recorder hears of it: the local bus registers, in the transaction that
//! archives the event ([`register_resource`]), the instance of every
//! accepted EC2 state change (its state) and `RunInstances` or
//! `StartInstances` call event (its type), and the endpoint of every
//! SageMaker endpoint state change (its ARN, status and configuration, and
//! the instances of its production variants where an `InService` change
//! names them: a type only where it does, as AWS's own events name none),
//! read by the recorder's own parser (`purser_core::lake::resource_change`),
//! so the simulation knows exactly what the recorder counts. Tests and demos
//! may also launch them directly ([`SimulatedResources::run_instance`],
//! [`SimulatedResources::create_endpoint`]), as a team would.
//!
//! A stop does what AWS does: the instance's state becomes `stopped` (an
//! endpoint is deleted, its configuration kept), the stop is kept in
//! `sim_stops`, and EC2's `EC2 Instance State-change Notification`
//! (`stopping`, then `stopped`) or SageMaker's `SageMaker Endpoint State
//! Change` (`DELETING`) is put on the `purser` bus as the member account,
//! as its forwarding rules deliver them, so the recorder ends the run
//! exactly as on AWS. Locally every event is the bus's region's, so every
//! resource is in that region.

use std::sync::Arc;

use async_trait::async_trait;
use purser_core::lake::{
    EC2_STATE_CHANGE, ResourceChange, SAGEMAKER_ENDPOINT_STATE_CHANGE, resource_change,
};
use purser_core::ports::{RunWhat, SagemakerInstances, is_instance_id, is_sagemaker_name};
use purser_core::{
    Clock, Event, EventEntry, MemberResource, MemberResources, ResourcesError, StopOutcome,
    Stoppable,
};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::bus::LocalBus;
use crate::db::{Db, DbError, epoch_ms};

const INSTANCE: &str = "instance";
const ENDPOINT: &str = "endpoint";

/// The member accounts' instances and endpoints, simulated.
#[derive(Clone)]
pub struct SimulatedResources {
    db: Db,
    bus: LocalBus,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SimulatedResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedResources")
            .field("db", &self.db)
            .finish()
    }
}

/// A stop Purser made, as `purser` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulatedStop {
    pub account_id: String,
    pub region: String,
    /// `instance` or `endpoint`.
    pub kind: String,
    /// The instance id or endpoint name.
    pub id: String,
    /// What brings it back (an endpoint's configuration).
    pub restore: Option<String>,
    pub stopped_ms: i64,
}

fn unavailable(e: DbError) -> ResourcesError {
    ResourcesError::Unavailable(format!("the simulated member accounts: {e}"))
}

/// A simulated resource's row.
struct Row {
    /// An instance's type, an endpoint's configuration.
    detail: Option<String>,
    state: String,
    /// An endpoint's ARN, as its events name it.
    arn: Option<String>,
    /// An endpoint's instances (JSON), as its events or team told them.
    instances: Option<String>,
}

impl SimulatedResources {
    pub fn new(db: Db, bus: LocalBus, clock: Arc<dyn Clock>) -> Self {
        Self { db, bus, clock }
    }

    /// Launches instance `instance_id` of `instance_type`, running (as a
    /// team would; no event is put).
    pub async fn run_instance(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        instance_type: &str,
    ) -> Result<(), DbError> {
        let (a, r, i, t) = (
            account_id.to_owned(),
            region.to_owned(),
            instance_id.to_owned(),
            instance_type.to_owned(),
        );
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_resources (account_id, region, kind, id, detail, state)
                     VALUES (?1, ?2, 'instance', ?3, ?4, 'running')
                     ON CONFLICT (account_id, region, kind, id)
                     DO UPDATE SET detail = excluded.detail, state = excluded.state",
                    params![a, r, i, t],
                )
            })
            .await?;
        Ok(())
    }

    /// Creates endpoint `name` on configuration `config`, whose variants
    /// run on `instances`, in service (as a team would; no event is put).
    pub async fn create_endpoint(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        config: &str,
        instances: &[SagemakerInstances],
    ) -> Result<(), DbError> {
        let arn = endpoint_arn(account_id, region, name);
        let instances = serde_json::to_string(instances).unwrap_or_else(|_| "[]".into());
        let (a, r, n, c) = (
            account_id.to_owned(),
            region.to_owned(),
            name.to_owned(),
            config.to_owned(),
        );
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO sim_resources (account_id, region, kind, id, detail, state, arn, instances)
                     VALUES (?1, ?2, 'endpoint', ?3, ?4, 'InService', ?5, ?6)
                     ON CONFLICT (account_id, region, kind, id)
                     DO UPDATE SET detail = excluded.detail, state = excluded.state, arn = excluded.arn,
                         instances = excluded.instances",
                    params![a, r, n, c, arn, instances],
                )
            })
            .await?;
        Ok(())
    }

    /// An instance's state or an endpoint's status, `None` when there is
    /// no such resource.
    pub async fn state(
        &self,
        account_id: &str,
        region: &str,
        resource: &Stoppable,
    ) -> Result<Option<String>, DbError> {
        Ok(self
            .row(account_id, region, resource)
            .await?
            .map(|row| row.state))
    }

    async fn row(
        &self,
        account_id: &str,
        region: &str,
        resource: &Stoppable,
    ) -> Result<Option<Row>, DbError> {
        let (kind, id) = kind_and_id(resource);
        let (a, r, k, i) = (
            account_id.to_owned(),
            region.to_owned(),
            kind.to_owned(),
            id.to_owned(),
        );
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT detail, state, arn, instances FROM sim_resources
                     WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4",
                    params![a, r, k, i],
                    |row| {
                        Ok(Row {
                            detail: row.get(0)?,
                            state: row.get(1)?,
                            arn: row.get(2)?,
                            instances: row.get(3)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }

    /// Stops the resource in the database (an instance `stopped`, an
    /// endpoint gone) and keeps the stop, on the condition that it is in
    /// the state read: `false` when another stop came first.
    async fn mark_stopped(
        &self,
        account_id: &str,
        region: &str,
        resource: &Stoppable,
        state: &str,
        restore: Option<String>,
    ) -> Result<bool, DbError> {
        let (kind, id) = kind_and_id(resource);
        let (a, r, k, i, s) = (
            account_id.to_owned(),
            region.to_owned(),
            kind.to_owned(),
            id.to_owned(),
            state.to_owned(),
        );
        let now = epoch_ms(self.clock.now());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let changed = if k == INSTANCE {
                    tx.execute(
                        "UPDATE sim_resources SET state = 'stopped'
                         WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4 AND state = ?5",
                        params![a, r, k, i, s],
                    )?
                } else {
                    tx.execute(
                        "DELETE FROM sim_resources
                         WHERE account_id = ?1 AND region = ?2 AND kind = ?3 AND id = ?4 AND state = ?5",
                        params![a, r, k, i, s],
                    )?
                };
                if changed == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO sim_stops (account_id, region, kind, id, restore, stopped_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![a, r, k, i, restore, now],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// Puts `detail_type` from `source` on the `purser` bus as the member
    /// account, as its forwarding rules deliver AWS's events.
    async fn announce(
        &self,
        account_id: &str,
        source: &str,
        detail_type: &str,
        details: Vec<serde_json::Value>,
        resources: Vec<String>,
    ) -> Result<(), ResourcesError> {
        let now = self.clock.now();
        let entries = details
            .into_iter()
            .map(|detail| EventEntry {
                source: Some(source.into()),
                detail_type: Some(detail_type.into()),
                detail: Some(detail.to_string()),
                resources: resources.clone(),
                time: Some(now),
                event_bus_name: Some(purser_core::events::PURSER_BUS.into()),
                trace_header: None,
            })
            .collect();
        let results = self
            .bus
            .put_member_service_events(entries, account_id)
            .await
            .map_err(|e| ResourcesError::Unavailable(format!("the local bus: {e}")))?;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Err(ResourcesError::Unavailable(format!(
                "the local bus refused {detail_type}: {e}"
            )));
        }
        Ok(())
    }
}

/// Every stop Purser made, or one account's, oldest first.
pub fn stops(db: &Db, account_id: Option<&str>) -> Result<Vec<SimulatedStop>, DbError> {
    let account_id = account_id.map(str::to_owned);
    db.call_blocking(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT account_id, region, kind, id, restore, stopped_ms FROM sim_stops
             WHERE ?1 IS NULL OR account_id = ?1 ORDER BY stopped_ms, rowid",
        )?;
        stmt.query_map([account_id], |r| {
            Ok(SimulatedStop {
                account_id: r.get(0)?,
                region: r.get(1)?,
                kind: r.get(2)?,
                id: r.get(3)?,
                restore: r.get(4)?,
                stopped_ms: r.get(5)?,
            })
        })?
        .collect()
    })
}

fn kind_and_id(resource: &Stoppable) -> (&'static str, &str) {
    match resource {
        Stoppable::Ec2Instance { instance_id } => (INSTANCE, instance_id),
        Stoppable::SagemakerEndpoint { name } => (ENDPOINT, name),
    }
}

/// An endpoint's ARN as SageMaker writes it (the name in lower case).
fn endpoint_arn(account_id: &str, region: &str, name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{region}:{account_id}:endpoint/{}",
        name.to_lowercase()
    )
}

/// Registers the instance or endpoint an accepted event tells of, in the
/// transaction that archives it (see the module doc). Events the recorder
/// would refuse register nothing.
pub(crate) fn register_resource(
    tx: &Transaction<'_>,
    event: &Event,
) -> Result<(), rusqlite::Error> {
    if !matches!(event.source.as_str(), "aws.ec2" | "aws.sagemaker") {
        return Ok(());
    }
    let Ok(change) = resource_change(event) else {
        return Ok(());
    };
    let (account, region) = (&event.account, &event.region);
    match (event.detail_type.as_str(), change) {
        (_, ResourceChange::InstanceTypes(types)) => {
            for (id, instance_type) in types {
                tx.execute(
                    "INSERT INTO sim_resources (account_id, region, kind, id, detail, state)
                     VALUES (?1, ?2, 'instance', ?3, ?4, 'pending')
                     ON CONFLICT (account_id, region, kind, id) DO UPDATE SET detail = excluded.detail",
                    params![account, region, id, instance_type],
                )?;
            }
        }
        (EC2_STATE_CHANGE, _) => {
            let (Some(id), Some(state)) = (
                event.detail.get("instance-id").and_then(|v| v.as_str()),
                event.detail.get("state").and_then(|v| v.as_str()),
            ) else {
                return Ok(());
            };
            tx.execute(
                "INSERT INTO sim_resources (account_id, region, kind, id, state)
                 VALUES (?1, ?2, 'instance', ?3, ?4)
                 ON CONFLICT (account_id, region, kind, id) DO UPDATE SET state = excluded.state",
                params![account, region, id, state],
            )?;
        }
        (SAGEMAKER_ENDPOINT_STATE_CHANGE, change) => {
            let arn = match &change {
                ResourceChange::Start(run) => run.key.resource.clone(),
                ResourceChange::Stop { key, .. } => key.resource.clone(),
                _ => event
                    .detail
                    .get("EndpointArn")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            };
            let name = event
                .detail
                .get("EndpointName")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or_else(|| arn.rsplit('/').next().map(str::to_owned))
                .unwrap_or_default();
            if name.is_empty() || name.len() > 63 {
                return Ok(());
            }
            let status = event
                .detail
                .get("EndpointStatus")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if matches!(change, ResourceChange::Stop { .. })
                && status.replace('_', "").eq_ignore_ascii_case("deleting")
            {
                tx.execute(
                    "DELETE FROM sim_resources
                     WHERE account_id = ?1 AND region = ?2 AND kind = 'endpoint' AND id = ?3",
                    params![account, region, name],
                )?;
                return Ok(());
            }
            let config = event
                .detail
                .get("EndpointConfigName")
                .and_then(|v| v.as_str());
            // The variants' instances where the event names variants (the
            // parser's one instance of no type for an event that names
            // none is not the endpoint's).
            let names_variants = event
                .detail
                .get("ProductionVariants")
                .and_then(|v| v.as_array())
                .is_some_and(|v| !v.is_empty());
            let instances = match &change {
                ResourceChange::Start(run) if names_variants => match &run.what {
                    RunWhat::Sagemaker { instances, .. } => serde_json::to_string(instances).ok(),
                    _ => None,
                },
                _ => None,
            };
            tx.execute(
                "INSERT INTO sim_resources (account_id, region, kind, id, detail, state, arn, instances)
                 VALUES (?1, ?2, 'endpoint', ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (account_id, region, kind, id) DO UPDATE SET
                     detail = coalesce(excluded.detail, detail), state = excluded.state, arn = excluded.arn,
                     instances = coalesce(excluded.instances, instances)",
                params![account, region, name, config, endpoint_status(status), arn, instances],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// SageMaker's API spelling of a status its events may write otherwise
/// (`IN_SERVICE` is `InService`).
fn endpoint_status(status: &str) -> String {
    let squashed: String = status
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    match squashed.as_str() {
        "inservice" => "InService",
        "creating" => "Creating",
        "updating" => "Updating",
        "systemupdating" => "SystemUpdating",
        "rollingback" => "RollingBack",
        "outofservice" => "OutOfService",
        "deleting" => "Deleting",
        "failed" => "Failed",
        _ => return status.chars().take(40).collect(),
    }
    .to_string()
}

/// The same checks as the AWS adapter's, so both refuse alike.
fn check(account_id: &str, region: &str, resource: &Stoppable) -> Result<(), ResourcesError> {
    let (service, ok, what) = match resource {
        Stoppable::Ec2Instance { instance_id } => {
            ("EC2", is_instance_id(instance_id), "an instance id")
        }
        Stoppable::SagemakerEndpoint { name } => {
            ("SageMaker", is_sagemaker_name(name), "an endpoint name")
        }
    };
    let refused = |message: String| ResourcesError::Refused {
        service: service.into(),
        message,
    };
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(format!(
            "{:?} is not an account id",
            truncated(account_id)
        )));
    }
    if !purser_core::validation::is_region(region) {
        return Err(refused(format!("{:?} is not a region", truncated(region))));
    }
    if !ok {
        let (_, id) = kind_and_id(resource);
        return Err(refused(format!("{:?} is not {what}", truncated(id))));
    }
    Ok(())
}

fn truncated(text: &str) -> String {
    text.chars().take(80).collect()
}

fn is_stopped_state(state: &str) -> bool {
    matches!(
        state,
        "stopping" | "stopped" | "shutting-down" | "terminated"
    )
}

#[async_trait]
impl MemberResources for SimulatedResources {
    async fn stop(&self, resource: &MemberResource) -> Result<StopOutcome, ResourcesError> {
        let (account_id, region) = (&resource.account_id, &resource.region);
        let stoppable = &resource.resource;
        check(account_id, region, stoppable)?;
        let Some(row) = self
            .row(account_id, region, stoppable)
            .await
            .map_err(unavailable)?
        else {
            return Ok(StopOutcome::NotFound);
        };
        match stoppable {
            Stoppable::Ec2Instance { instance_id } => {
                if is_stopped_state(&row.state) {
                    return Ok(StopOutcome::AlreadyStopped);
                }
                if row.state == "pending" {
                    return Err(ResourcesError::Refused {
                        service: "EC2".into(),
                        message: format!(
                            "StopInstances: {instance_id} is pending: it can be stopped once it runs"
                        ),
                    });
                }
                if !self
                    .mark_stopped(account_id, region, stoppable, &row.state, None)
                    .await
                    .map_err(unavailable)?
                {
                    return Ok(StopOutcome::AlreadyStopped);
                }
                let details = ["stopping", "stopped"]
                    .map(|state| json!({"instance-id": instance_id, "state": state}))
                    .to_vec();
                let arn = format!("arn:aws:ec2:{region}:{account_id}:instance/{instance_id}");
                self.announce(account_id, "aws.ec2", EC2_STATE_CHANGE, details, vec![arn])
                    .await?;
                tracing::info!(
                    account_id,
                    region,
                    instance_id,
                    "simulated instance stopped"
                );
                Ok(StopOutcome::Stopped { restore: None })
            }
            Stoppable::SagemakerEndpoint { name } => {
                if row.state == "Deleting" {
                    return Ok(StopOutcome::AlreadyStopped);
                }
                let config = row.detail.clone();
                if !self
                    .mark_stopped(account_id, region, stoppable, &row.state, config.clone())
                    .await
                    .map_err(unavailable)?
                {
                    return Ok(StopOutcome::AlreadyStopped);
                }
                let arn = row
                    .arn
                    .unwrap_or_else(|| endpoint_arn(account_id, region, name));
                let detail = json!({
                    "EndpointName": name,
                    "EndpointArn": arn,
                    "EndpointConfigName": config,
                    "EndpointStatus": "DELETING",
                });
                self.announce(
                    account_id,
                    "aws.sagemaker",
                    SAGEMAKER_ENDPOINT_STATE_CHANGE,
                    vec![detail],
                    vec![arn.clone()],
                )
                .await?;
                tracing::info!(account_id, region, endpoint = %name, "simulated endpoint deleted");
                Ok(StopOutcome::Stopped { restore: config })
            }
        }
    }

    async fn instance_type(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<String>, ResourcesError> {
        let instance = Stoppable::Ec2Instance {
            instance_id: instance_id.into(),
        };
        check(account_id, region, &instance)?;
        Ok(self
            .row(account_id, region, &instance)
            .await
            .map_err(unavailable)?
            .and_then(|row| row.detail))
    }

    async fn endpoint_instances(
        &self,
        account_id: &str,
        region: &str,
        endpoint_name: &str,
    ) -> Result<Option<Vec<SagemakerInstances>>, ResourcesError> {
        let endpoint = Stoppable::SagemakerEndpoint {
            name: endpoint_name.into(),
        };
        check(account_id, region, &endpoint)?;
        let Some(row) = self
            .row(account_id, region, &endpoint)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        // What no event or team told is not known: no instances.
        let instances = match row.instances {
            None => Vec::new(),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                ResourcesError::Unavailable(format!(
                    "the simulated endpoint {endpoint_name}'s instances: {e}"
                ))
            })?,
        };
        Ok(Some(instances))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use purser_core::{ManualClock, Stoppable};
    use serde_json::{Value, json};
    use tokio::sync::Notify;

    use super::*;
    use crate::bus::{LocalBus, LocalBusConfig};

    const ACCOUNT: &str = "210987654321";
    const REGION: &str = "us-east-1";

    fn fresh() -> (tempfile::TempDir, Db, SimulatedResources) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 21, 10, 0, 0).unwrap(),
        ));
        let bus = LocalBus::new(
            db.clone(),
            LocalBusConfig {
                rules: vec![],
                buses: vec!["default".into(), purser_core::events::PURSER_BUS.into()],
                region: REGION.into(),
                own_account: "111111111111".into(),
                allow_aws_sources: false,
            },
            Arc::clone(&clock),
            Arc::new(Notify::new()),
        );
        let resources = SimulatedResources::new(db.clone(), bus, clock);
        (dir, db, resources)
    }

    /// What was archived from `source`, oldest first: (account, detail).
    fn archived(db: &Db, source: &str) -> Vec<(String, Value)> {
        let source = source.to_owned();
        db.call_blocking(move |conn| {
            let mut stmt = conn
                .prepare("SELECT account, envelope FROM archive WHERE source = ?1 ORDER BY seq")?;
            stmt.query_map([source], |r| {
                let envelope: String = r.get(1)?;
                let envelope: Value = serde_json::from_str(&envelope).unwrap();
                Ok((r.get(0)?, envelope["detail"].clone()))
            })?
            .collect()
        })
        .unwrap()
    }

    async fn put(resources: &SimulatedResources, source: &str, detail_type: &str, detail: Value) {
        resources
            .announce(ACCOUNT, source, detail_type, vec![detail], vec![])
            .await
            .unwrap();
    }

    /// The instances and endpoints the recorder hears of are the ones the
    /// simulation knows: a launch call tells the type, a state change the
    /// state, an endpoint's state change its ARN and configuration, its
    /// `DELETING` that it is gone.
    #[tokio::test]
    async fn what_the_bus_hears_of_exists() {
        let (_dir, _db, resources) = fresh();
        let id = "i-0123456789abcdef0";
        put(
            &resources,
            "aws.ec2",
            purser_core::lake::API_CALL,
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "responseElements": {"instancesSet": {"items": [
                    {"instanceId": id, "instanceType": "g5.xlarge"}]}}}),
        )
        .await;
        let instance = Stoppable::Ec2Instance {
            instance_id: id.into(),
        };
        assert_eq!(
            resources.state(ACCOUNT, REGION, &instance).await.unwrap(),
            Some("pending".into())
        );
        // As EC2 does (IncorrectInstanceState): it can be stopped once it runs.
        let pending = MemberResource {
            account_id: ACCOUNT.into(),
            region: REGION.into(),
            resource: instance.clone(),
        };
        assert!(matches!(
            resources.stop(&pending).await,
            Err(ResourcesError::Refused { .. })
        ));
        put(
            &resources,
            "aws.ec2",
            EC2_STATE_CHANGE,
            json!({"instance-id": id, "state": "running"}),
        )
        .await;
        assert_eq!(
            resources.state(ACCOUNT, REGION, &instance).await.unwrap(),
            Some("running".into())
        );
        assert_eq!(
            resources.instance_type(ACCOUNT, REGION, id).await.unwrap(),
            Some("g5.xlarge".into())
        );

        let arn = format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/chat");
        put(
            &resources,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            json!({"EndpointName": "Chat", "EndpointArn": arn, "EndpointConfigName": "chat-config",
                "EndpointStatus": "IN_SERVICE"}),
        )
        .await;
        let endpoint = Stoppable::SagemakerEndpoint {
            name: "Chat".into(),
        };
        assert_eq!(
            resources.state(ACCOUNT, REGION, &endpoint).await.unwrap(),
            Some("InService".into())
        );
        assert_eq!(
            resources
                .endpoint_instances(ACCOUNT, REGION, "Chat")
                .await
                .unwrap(),
            Some(vec![]),
            "no event named its variants"
        );
        // As AWS's events do: counts, no type; a type where one names it.
        put(
            &resources,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            json!({"EndpointName": "Chat", "EndpointArn": arn, "EndpointStatus": "IN_SERVICE",
                "ProductionVariants": [{"VariantName": "a", "CurrentInstanceCount": 2},
                    {"VariantName": "b", "InstanceType": "ml.g5.xlarge", "CurrentInstanceCount": 1}]}),
        )
        .await;
        assert_eq!(
            resources
                .endpoint_instances(ACCOUNT, REGION, "Chat")
                .await
                .unwrap(),
            Some(vec![
                SagemakerInstances {
                    instance_type: None,
                    count: 2
                },
                SagemakerInstances {
                    instance_type: Some("ml.g5.xlarge".into()),
                    count: 1
                }
            ])
        );
        put(
            &resources,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            json!({"EndpointName": "Chat", "EndpointArn": arn, "EndpointStatus": "UPDATING"}),
        )
        .await;
        assert_eq!(
            resources
                .endpoint_instances(ACCOUNT, REGION, "Chat")
                .await
                .unwrap()
                .map(|i| i.len()),
            Some(2),
            "kept through a change that names none"
        );
        put(
            &resources,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            json!({"EndpointName": "Chat", "EndpointArn": arn, "EndpointStatus": "DELETING"}),
        )
        .await;
        assert_eq!(
            resources.state(ACCOUNT, REGION, &endpoint).await.unwrap(),
            None
        );
        assert_eq!(
            resources
                .endpoint_instances(ACCOUNT, REGION, "Chat")
                .await
                .unwrap(),
            None
        );
    }

    /// A stop puts on the purser bus, as the member account, the state
    /// changes AWS sends for it, naming the resource as the recorder's run
    /// does, and keeps the stop.
    #[tokio::test]
    async fn a_stop_announces_what_aws_would() {
        let (_dir, db, resources) = fresh();
        let id = "i-0123456789abcdef0";
        resources
            .run_instance(ACCOUNT, REGION, id, "g5.xlarge")
            .await
            .unwrap();
        let arn = format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/chat");
        put(
            &resources,
            "aws.sagemaker",
            SAGEMAKER_ENDPOINT_STATE_CHANGE,
            json!({"EndpointName": "chat", "EndpointArn": arn, "EndpointConfigName": "chat-config",
                "EndpointStatus": "IN_SERVICE"}),
        )
        .await;
        let stop = |resource| MemberResource {
            account_id: ACCOUNT.into(),
            region: REGION.into(),
            resource,
        };
        assert_eq!(
            resources
                .stop(&stop(Stoppable::Ec2Instance {
                    instance_id: id.into()
                }))
                .await
                .unwrap(),
            StopOutcome::Stopped { restore: None }
        );
        assert_eq!(
            resources
                .stop(&stop(Stoppable::SagemakerEndpoint {
                    name: "chat".into()
                }))
                .await
                .unwrap(),
            StopOutcome::Stopped {
                restore: Some("chat-config".into())
            }
        );

        let ec2 = archived(&db, "aws.ec2");
        assert_eq!(
            ec2,
            [
                (
                    ACCOUNT.to_string(),
                    json!({"instance-id": id, "state": "stopping"})
                ),
                (
                    ACCOUNT.to_string(),
                    json!({"instance-id": id, "state": "stopped"})
                ),
            ]
        );
        let sagemaker = archived(&db, "aws.sagemaker");
        let (account, deleting) = sagemaker.last().unwrap();
        assert_eq!(account, ACCOUNT);
        assert_eq!(deleting["EndpointArn"], arn.as_str());
        assert_eq!(deleting["EndpointStatus"], "DELETING");
        for (_, detail) in ec2.iter().chain(&sagemaker) {
            let event = Event {
                version: "0".into(),
                id: "1".into(),
                detail_type: if detail.get("state").is_some() {
                    EC2_STATE_CHANGE.into()
                } else {
                    SAGEMAKER_ENDPOINT_STATE_CHANGE.into()
                },
                source: if detail.get("state").is_some() {
                    "aws.ec2".into()
                } else {
                    "aws.sagemaker".into()
                },
                account: ACCOUNT.into(),
                time: chrono::Utc::now(),
                region: REGION.into(),
                resources: vec![],
                detail: detail.clone(),
            };
            assert!(resource_change(&event).is_ok(), "{detail}");
        }
        let kept = stops(&db, Some(ACCOUNT)).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].id, id);
        assert_eq!(kept[1].restore.as_deref(), Some("chat-config"));
    }

    /// The MemberResources port's contract
    /// (`purser_contract::member_resources`), on the simulated resources
    /// of a fresh database, launched and read as a team (or a demo) does.
    mod contract {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        use purser_contract::member_resources::{Fixture, Observer};
        use purser_core::Stoppable;
        use purser_core::ports::SagemakerInstances;

        use super::fresh;
        use crate::member_resources::SimulatedResources;

        struct Teams(SimulatedResources, AtomicU64);

        impl Observer for Teams {
            async fn run_instance(&self, account_id: &str, region: &str, t: &str) -> String {
                let n = self.1.fetch_add(1, Ordering::Relaxed);
                let id = format!("i-{:017x}", 0xabc0_0000_0000 + n);
                self.0
                    .run_instance(account_id, region, &id, t)
                    .await
                    .unwrap();
                id
            }

            async fn instance_state(
                &self,
                account_id: &str,
                region: &str,
                id: &str,
            ) -> Option<String> {
                let instance = Stoppable::Ec2Instance {
                    instance_id: id.into(),
                };
                self.0.state(account_id, region, &instance).await.unwrap()
            }

            async fn create_endpoint(
                &self,
                account_id: &str,
                region: &str,
                name: &str,
                instance_type: &str,
                count: u32,
            ) -> String {
                let config = format!("{name}-config");
                let instances = [SagemakerInstances {
                    instance_type: Some(instance_type.into()),
                    count,
                }];
                self.0
                    .create_endpoint(account_id, region, name, &config, &instances)
                    .await
                    .unwrap();
                config
            }

            async fn endpoint_status(
                &self,
                account_id: &str,
                region: &str,
                name: &str,
            ) -> Option<String> {
                let endpoint = Stoppable::SagemakerEndpoint { name: name.into() };
                self.0.state(account_id, region, &endpoint).await.unwrap()
            }
        }

        async fn fresh_fixture() -> Option<Fixture<Teams>> {
            let (dir, _db, resources) = fresh();
            Some(
                Fixture::new(
                    Arc::new(resources.clone()),
                    Teams(resources, AtomicU64::new(1)),
                    ["111111111111".into(), "222222222222".into()],
                    super::REGION.into(),
                )
                .keeping(dir),
            )
        }

        purser_contract::member_resources_contract!(fresh_fixture);
    }
}
