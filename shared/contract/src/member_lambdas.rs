//! The [`MemberLambdas`] port's contract: what every adapter
//! (`SimulatedLambdas`, `MemberLambdasClient`) must do, each behaviour one
//! scenario, driven through the trait, with the member accounts' functions
//! made, read and deleted through an [`Observer`], as their teams would.
//!
//! Every scenario plays member accounts of its own fixture. What only one
//! adapter or backend does is tested beside it, not here: the simulation's
//! registration of functions from reported invocations
//! (`shared/local/src/lambdas.rs`, the local runtime's tests), and the AWS
//! adapter's assumed role, paging and errors (`shared/aws/src/lambdas.rs`,
//! `shared/aws/tests/contract/lambdas.rs`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::member_lambdas::Fixture<MyObserver>> { … }
//!
//! purser_contract::member_lambdas_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;

use purser_core::{LambdasError, MemberFunction, MemberLambdas};

/// The member accounts as their teams see them: each adapter's test acts
/// on its backend directly, and panics if it cannot.
pub trait Observer: Send + Sync {
    /// Creates function `name` in `account_id`'s `region`, with reserved
    /// concurrency `reserved` (none for `None`).
    fn create_function(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        reserved: Option<u32>,
    ) -> impl Future<Output = ()> + Send;
    /// The function's reserved concurrency, as its team reads it.
    fn reserved(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Option<u32>> + Send;
    /// Deletes the function.
    fn delete_function(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> impl Future<Output = ()> + Send;
}

/// Member accounts for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub lambdas: Arc<dyn MemberLambdas>,
    /// How the scenarios act as the accounts' teams.
    pub observer: O,
    /// Two member accounts of the scenario's own, with no functions yet.
    pub accounts: [String; 2],
    /// Two regions the adapter manages.
    pub regions: [String; 2],
    /// What must outlive the adapter (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    pub fn new(
        lambdas: Arc<dyn MemberLambdas>,
        observer: O,
        accounts: [String; 2],
        regions: [String; 2],
    ) -> Self {
        Self {
            lambdas,
            observer,
            accounts,
            regions,
            _keep: None,
        }
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

fn function(account_id: &str, region: &str, name: &str) -> MemberFunction {
    MemberFunction {
        account_id: account_id.into(),
        region: region.into(),
        name: name.into(),
        reserved_concurrency: None,
    }
}

// ------------------------------------------------------------ scenarios

/// An account's functions are listed in every managed region, by region
/// then name, with their reserved concurrency; throttled to 0 (twice over,
/// as a retried evaluation does) and restored to what they had, a setting
/// that was not there removed again (and removing it twice is no error).
pub async fn functions_are_listed_throttled_and_restored<O: Observer>(fixture: &Fixture<O>) {
    let (lambdas, team) = (&fixture.lambdas, &fixture.observer);
    let account = fixture.accounts[0].as_str();
    let (mut first, mut second) = (fixture.regions[0].as_str(), fixture.regions[1].as_str());
    if second < first {
        std::mem::swap(&mut first, &mut second);
    }
    team.create_function(account, second, "api", Some(5)).await;
    team.create_function(account, second, "worker", None).await;
    team.create_function(account, first, "etl", Some(2)).await;

    let functions = lambdas.functions(account).await.unwrap();
    let seen: Vec<(&str, &str, Option<u32>)> = functions
        .iter()
        .map(|f| (f.region.as_str(), f.name.as_str(), f.reserved_concurrency))
        .collect();
    assert_eq!(
        seen,
        [
            (first, "etl", Some(2)),
            (second, "api", Some(5)),
            (second, "worker", None)
        ],
        "every managed region, by region then name"
    );
    assert!(functions.iter().all(|f| f.account_id == account));

    for f in &functions {
        lambdas.set_reserved_concurrency(f, Some(0)).await.unwrap();
        lambdas.set_reserved_concurrency(f, Some(0)).await.unwrap();
    }
    assert_eq!(team.reserved(account, second, "api").await, Some(0));
    assert_eq!(team.reserved(account, second, "worker").await, Some(0));
    assert_eq!(team.reserved(account, first, "etl").await, Some(0));
    let listed = lambdas.functions(account).await.unwrap();
    assert!(listed.iter().all(|f| f.reserved_concurrency == Some(0)));

    for f in &functions {
        lambdas
            .set_reserved_concurrency(f, f.reserved_concurrency)
            .await
            .unwrap();
    }
    lambdas
        .set_reserved_concurrency(&function(account, second, "worker"), None)
        .await
        .unwrap();
    assert_eq!(team.reserved(account, second, "api").await, Some(5));
    assert_eq!(team.reserved(account, second, "worker").await, None);
    assert_eq!(team.reserved(account, first, "etl").await, Some(2));
    assert_eq!(lambdas.functions(account).await.unwrap(), functions);
}

/// The adapter lists and changes the functions of the account asked for
/// only: another account has none, and its function of the same name is
/// not found.
pub async fn only_the_account_asked_for_is_listed_and_changed<O: Observer>(fixture: &Fixture<O>) {
    let (lambdas, team) = (&fixture.lambdas, &fixture.observer);
    let [one, other] = &fixture.accounts;
    let region = fixture.regions[0].as_str();
    team.create_function(one, region, "mine", None).await;
    assert_eq!(lambdas.functions(one).await.unwrap().len(), 1);
    assert!(lambdas.functions(other).await.unwrap().is_empty());
    let err = lambdas
        .set_reserved_concurrency(&function(other, region, "mine"), Some(0))
        .await
        .unwrap_err();
    assert_eq!(err, LambdasError::NotFound("mine".into()));
    assert_eq!(team.reserved(one, region, "mine").await, None);
}

/// A function deleted since it was listed is not found, whatever it is set
/// to, and no longer listed.
pub async fn a_vanished_function_is_not_found<O: Observer>(fixture: &Fixture<O>) {
    let (lambdas, team) = (&fixture.lambdas, &fixture.observer);
    let account = fixture.accounts[0].as_str();
    let region = fixture.regions[0].as_str();
    team.create_function(account, region, "short-lived", Some(3))
        .await;
    let listed = lambdas.functions(account).await.unwrap();
    assert_eq!(listed.len(), 1);
    team.delete_function(account, region, "short-lived").await;
    for reserved in [Some(0), Some(3), None] {
        let err = lambdas
            .set_reserved_concurrency(&listed[0], reserved)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LambdasError::NotFound("short-lived".into()),
            "{reserved:?}"
        );
    }
    assert!(lambdas.functions(account).await.unwrap().is_empty());
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`member_lambdas`](self), each
/// named as its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<member_lambdas::Fixture<_>>` (`None` skips the
/// test, as the moto tests do when told to).
#[macro_export]
macro_rules! member_lambdas_contract {
    ($fresh:path) => {
        $crate::__member_lambdas_scenarios!(__contract_tests; member_lambdas, $fresh);
    };
}

/// The scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __member_lambdas_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                functions_are_listed_throttled_and_restored,
                only_the_account_asked_for_is_listed_and_changed,
                a_vanished_function_is_not_found,
            ]
        }
    };
}

/// The names of the scenarios, as `member_lambdas_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__member_lambdas_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("member_lambdas.rs"), super::SCENARIOS);
    }
}
