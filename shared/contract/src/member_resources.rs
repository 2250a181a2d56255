//! The [`MemberResources`] port's contract: what every adapter
//! (`SimulatedResources`, `MemberResourcesClient`) must do, each behaviour
//! one scenario, driven through the trait, with the member accounts'
//! instances and endpoints launched and read through an [`Observer`], as
//! their teams would.
//!
//! Every scenario plays member accounts of its own fixture. What only one
//! adapter does is tested beside it: the AWS adapter's signing, XML and
//! error mapping (`shared/aws/src/member_resources.rs`), the simulation's
//! state-change events on the local bus (`shared/local/src/member_resources.rs`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::member_resources::Fixture<MyObserver>> { … }
//!
//! purser_contract::member_resources_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;

use purser_core::ports::SagemakerInstances;
use purser_core::{MemberResource, MemberResources, ResourcesError, StopOutcome, Stoppable};

/// An instance id no account has.
pub const UNKNOWN_INSTANCE: &str = "i-0123456789abcdef0";
/// The type the scenarios launch.
pub const INSTANCE_TYPE: &str = "g5.xlarge";
/// The type of the scenarios' endpoints (moto's list of SageMaker types
/// predates ml.g5).
pub const ENDPOINT_INSTANCE_TYPE: &str = "ml.g4dn.xlarge";
/// How many instances the scenarios' endpoints run on.
pub const ENDPOINT_INSTANCE_COUNT: u32 = 2;

/// The member accounts as their teams see them: each adapter's test acts
/// on its backend directly, and panics if it cannot.
pub trait Observer: Send + Sync {
    /// Launches an instance of `instance_type` (running); its id.
    fn run_instance(
        &self,
        account_id: &str,
        region: &str,
        instance_type: &str,
    ) -> impl Future<Output = String> + Send;
    /// The instance's state as its team reads it (`running`, `stopping`,
    /// `stopped`, …), `None` when there is no such instance.
    fn instance_state(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
    ) -> impl Future<Output = Option<String>> + Send;
    /// Creates a model, an endpoint configuration of one production
    /// variant (`count` instances of `instance_type`) and endpoint `name`
    /// on it (in service); the configuration's name.
    fn create_endpoint(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        instance_type: &str,
        count: u32,
    ) -> impl Future<Output = String> + Send;
    /// The endpoint's status (`InService`, `Deleting`, …), `None` when
    /// there is no such endpoint.
    fn endpoint_status(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Option<String>> + Send;
}

/// Member accounts for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub resources: Arc<dyn MemberResources>,
    /// How the scenarios act as the accounts' teams.
    pub observer: O,
    /// Two member accounts of the scenario's own, with nothing running.
    pub accounts: [String; 2],
    /// A region where the adapter acts.
    pub region: String,
    /// What must outlive the adapter (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    pub fn new(
        resources: Arc<dyn MemberResources>,
        observer: O,
        accounts: [String; 2],
        region: String,
    ) -> Self {
        Self {
            resources,
            observer,
            accounts,
            region,
            _keep: None,
        }
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }

    fn instance(&self, account_id: &str, instance_id: &str) -> MemberResource {
        MemberResource {
            account_id: account_id.into(),
            region: self.region.clone(),
            resource: Stoppable::Ec2Instance {
                instance_id: instance_id.into(),
            },
        }
    }

    fn endpoint(&self, account_id: &str, name: &str) -> MemberResource {
        MemberResource {
            account_id: account_id.into(),
            region: self.region.clone(),
            resource: Stoppable::SagemakerEndpoint { name: name.into() },
        }
    }
}

/// An endpoint name no other scenario or run uses.
fn endpoint_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{nanos:x}")
}

// ------------------------------------------------------------ scenarios

/// An instance's type is what it was launched as (`DescribeInstances`);
/// an instance no account has, or another account's, has none.
pub async fn an_instance_s_type_is_described<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let [one, other] = &fixture.accounts;
    let region = fixture.region.as_str();
    let id = team.run_instance(one, region, INSTANCE_TYPE).await;
    assert_eq!(
        resources.instance_type(one, region, &id).await.unwrap(),
        Some(INSTANCE_TYPE.to_string())
    );
    assert_eq!(
        resources
            .instance_type(one, region, UNKNOWN_INSTANCE)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        resources.instance_type(other, region, &id).await.unwrap(),
        None,
        "another account's instance is not this one's"
    );
}

/// An endpoint's instances are its variant's type (its configuration's,
/// `DescribeEndpointConfig`) and count (`DescribeEndpoint`); an endpoint
/// no account has, or another account's, has none.
pub async fn an_endpoint_s_instances_are_described<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let [one, other] = &fixture.accounts;
    let region = fixture.region.as_str();
    let name = endpoint_name("described");
    team.create_endpoint(
        one,
        region,
        &name,
        ENDPOINT_INSTANCE_TYPE,
        ENDPOINT_INSTANCE_COUNT,
    )
    .await;
    assert_eq!(
        resources
            .endpoint_instances(one, region, &name)
            .await
            .unwrap(),
        Some(vec![SagemakerInstances {
            instance_type: Some(ENDPOINT_INSTANCE_TYPE.into()),
            count: ENDPOINT_INSTANCE_COUNT,
        }])
    );
    assert_eq!(
        resources
            .endpoint_instances(one, region, &endpoint_name("never"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        resources
            .endpoint_instances(other, region, &name)
            .await
            .unwrap(),
        None,
        "another account's endpoint is not this one's"
    );
}

/// A running instance is stopped (nothing to restore but `StartInstances`)
/// and its team sees it stopping or stopped; stopping it again says it was
/// stopped already, and its type is still described.
pub async fn an_instance_is_stopped_once<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let account = fixture.accounts[0].as_str();
    let region = fixture.region.as_str();
    let id = team.run_instance(account, region, INSTANCE_TYPE).await;
    let instance = fixture.instance(account, &id);
    assert_eq!(
        resources.stop(&instance).await.unwrap(),
        StopOutcome::Stopped { restore: None }
    );
    let state = team.instance_state(account, region, &id).await;
    assert!(
        matches!(state.as_deref(), Some("stopping" | "stopped")),
        "{state:?}"
    );
    assert_eq!(
        resources.stop(&instance).await.unwrap(),
        StopOutcome::AlreadyStopped
    );
    assert_eq!(
        resources.instance_type(account, region, &id).await.unwrap(),
        Some(INSTANCE_TYPE.to_string())
    );
}

/// An instance no account has, or another account's, is not found, and
/// the other account's instance keeps running.
pub async fn an_unknown_instance_is_not_found<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let [one, other] = &fixture.accounts;
    let region = fixture.region.as_str();
    assert_eq!(
        resources
            .stop(&fixture.instance(one, UNKNOWN_INSTANCE))
            .await
            .unwrap(),
        StopOutcome::NotFound
    );
    let id = team.run_instance(other, region, INSTANCE_TYPE).await;
    assert_eq!(
        resources.stop(&fixture.instance(one, &id)).await.unwrap(),
        StopOutcome::NotFound
    );
    assert_eq!(
        team.instance_state(other, region, &id).await.as_deref(),
        Some("running")
    );
}

/// An endpoint in service is deleted (SageMaker has no stop), its
/// configuration's name given back to bring it back; stopping it again
/// finds it gone or going; an endpoint no account has is not found.
pub async fn an_endpoint_is_deleted_keeping_its_configuration<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let account = fixture.accounts[0].as_str();
    let region = fixture.region.as_str();
    let name = endpoint_name("guarded");
    let config = team
        .create_endpoint(
            account,
            region,
            &name,
            ENDPOINT_INSTANCE_TYPE,
            ENDPOINT_INSTANCE_COUNT,
        )
        .await;
    assert_eq!(
        team.endpoint_status(account, region, &name)
            .await
            .as_deref(),
        Some("InService")
    );
    let endpoint = fixture.endpoint(account, &name);
    assert_eq!(
        resources.stop(&endpoint).await.unwrap(),
        StopOutcome::Stopped {
            restore: Some(config)
        }
    );
    let status = team.endpoint_status(account, region, &name).await;
    assert!(
        matches!(status.as_deref(), None | Some("Deleting")),
        "{status:?}"
    );
    let again = resources.stop(&endpoint).await.unwrap();
    assert!(
        matches!(again, StopOutcome::NotFound | StopOutcome::AlreadyStopped),
        "{again:?}"
    );
    assert_eq!(
        resources
            .stop(&fixture.endpoint(account, &endpoint_name("never")))
            .await
            .unwrap(),
        StopOutcome::NotFound
    );
}

/// Another account's endpoint of the same name is not this account's: it
/// is not found, and stays in service.
pub async fn only_the_account_asked_for_is_stopped<O: Observer>(fixture: &Fixture<O>) {
    let (resources, team) = (&fixture.resources, &fixture.observer);
    let [one, other] = &fixture.accounts;
    let region = fixture.region.as_str();
    let name = endpoint_name("theirs");
    team.create_endpoint(
        other,
        region,
        &name,
        ENDPOINT_INSTANCE_TYPE,
        ENDPOINT_INSTANCE_COUNT,
    )
    .await;
    assert_eq!(
        resources.stop(&fixture.endpoint(one, &name)).await.unwrap(),
        StopOutcome::NotFound
    );
    assert_eq!(
        team.endpoint_status(other, region, &name).await.as_deref(),
        Some("InService")
    );
}

/// What is not an instance id, an endpoint name, an account or a region is
/// refused before anything is asked of AWS.
pub async fn what_is_not_an_id_is_refused<O: Observer>(fixture: &Fixture<O>) {
    let resources = &fixture.resources;
    let account = fixture.accounts[0].as_str();
    let region = fixture.region.as_str();
    fn refused<T>(r: Result<T, ResourcesError>) -> bool {
        matches!(r, Err(ResourcesError::Refused { .. }))
    }
    for id in [
        "i-xyz",
        "i-0123",
        "sg-01234567",
        "i-01234567&InstanceId.2=i-89abcdef",
    ] {
        assert!(
            refused(resources.stop(&fixture.instance(account, id)).await),
            "{id}"
        );
        assert!(
            refused(resources.instance_type(account, region, id).await),
            "{id}"
        );
    }
    for name in ["bad_name", "-leading", "trailing-", "", &"a".repeat(64)] {
        assert!(
            refused(resources.stop(&fixture.endpoint(account, name)).await),
            "{name}"
        );
        assert!(
            refused(resources.endpoint_instances(account, region, name).await),
            "{name}"
        );
    }
    assert!(refused(
        resources.endpoint_instances("12345", region, "chat").await
    ));
    assert!(refused(
        resources
            .instance_type("12345", region, UNKNOWN_INSTANCE)
            .await
    ));
    assert!(refused(
        resources
            .instance_type(account, "not a region", UNKNOWN_INSTANCE)
            .await
    ));
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`member_resources`](self), each
/// named as its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<member_resources::Fixture<_>>` (`None` skips the
/// test, as the moto tests do when told to).
#[macro_export]
macro_rules! member_resources_contract {
    ($fresh:path) => {
        $crate::__member_resources_scenarios!(__contract_tests; member_resources, $fresh);
    };
}

/// The scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __member_resources_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                an_instance_s_type_is_described,
                an_endpoint_s_instances_are_described,
                an_instance_is_stopped_once,
                an_unknown_instance_is_not_found,
                an_endpoint_is_deleted_keeping_its_configuration,
                only_the_account_asked_for_is_stopped,
                what_is_not_an_id_is_refused,
            ]
        }
    };
}

/// The names of the scenarios, as `member_resources_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__member_resources_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("member_resources.rs"), super::SCENARIOS);
    }
}
