//! The [`IdentityCenter`] port's contract: what every adapter
//! (`SimulatedIdentityCenter`, `IdentityCenterClient`) must do, each
//! behaviour one scenario, driven through the trait only. What the trait
//! cannot do (create users and permission sets) each adapter's test does
//! when it makes the [`Fixture`].
//!
//! Every scenario works in an account and on permission sets of its own
//! fixture, so scenarios run in parallel against one backend. A request
//! still in progress is polled until it is done (bounded). What only one
//! adapter does is tested beside it, not here: the simulation's users
//! (`shared/local/src/identity_center.rs`), and the AWS adapter's reading
//! of AWS's answers and errors (`shared/aws/src/identity_center.rs`,
//! `shared/aws/tests/contract/identity_center.rs`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::identity_center::Fixture> { … }
//!
//! purser_contract::identity_center_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use purser_core::access::PermissionSet;
use purser_core::ports::{
    AccessError, Assignment, AssignmentRequest, IdentityCenter, RequestState,
};

/// Polls of a request in progress before a scenario gives up (with the
/// pauses below, about a minute).
const POLLS: u32 = 70;

/// An Identity Center for one scenario.
pub struct Fixture {
    /// The adapter under test.
    pub center: Arc<dyn IdentityCenter>,
    /// An email address a user of the identity store has.
    pub user: String,
    /// The email address of another user.
    pub other_user: String,
    /// A permission set's ARN, assigned to nobody in `account_id` yet.
    pub permission_set: String,
    /// Another permission set's ARN, assigned to nobody in `account_id`.
    pub other_permission_set: String,
    /// The names of `permission_set` and `other_permission_set`.
    pub permission_set_names: [String; 2],
    /// The account assigned to, of this fixture's own.
    pub account_id: String,
    /// What must outlive the adapter (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    pub fn new(
        center: Arc<dyn IdentityCenter>,
        [user, other_user]: [String; 2],
        [permission_set, other_permission_set]: [PermissionSet; 2],
        account_id: String,
    ) -> Self {
        Self {
            center,
            user,
            other_user,
            permission_set_names: [permission_set.name, other_permission_set.name],
            permission_set: permission_set.arn,
            other_permission_set: other_permission_set.arn,
            account_id,
            _keep: None,
        }
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }

    /// The id of the user with `email` (who must exist).
    async fn user_id(&self, email: &str) -> String {
        self.center
            .user_by_email(email)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user has {email}"))
    }

    /// `email`'s user given `permission_set` in the fixture's account.
    async fn assignment(&self, email: &str, permission_set: &str) -> Assignment {
        Assignment {
            account_id: self.account_id.clone(),
            permission_set: permission_set.to_owned(),
            user_id: self.user_id(email).await,
        }
    }

    /// Assigns and waits until the request is done; it must succeed.
    async fn assign(&self, assignment: &Assignment) {
        let request = self.center.assign(assignment).await.unwrap();
        let done = done(self.center.as_ref(), request, Asked::Creation).await;
        assert_eq!(done.state, RequestState::Succeeded, "{assignment:?}");
    }

    /// Unassigns and waits until the request is done; it must succeed.
    async fn unassign(&self, assignment: &Assignment) {
        let request = self.center.unassign(assignment).await.unwrap();
        let done = done(self.center.as_ref(), request, Asked::Deletion).await;
        assert_eq!(done.state, RequestState::Succeeded, "{assignment:?}");
    }

    async fn listed(&self, permission_set: &str) -> Vec<Assignment> {
        self.center
            .assignments(&self.account_id, permission_set)
            .await
            .unwrap()
    }
}

/// Which of its requests a status is asked of.
#[derive(Clone, Copy)]
enum Asked {
    Creation,
    Deletion,
}

/// `request` once it is no longer in progress, its status asked as `asked`.
async fn done(
    center: &dyn IdentityCenter,
    mut request: AssignmentRequest,
    asked: Asked,
) -> AssignmentRequest {
    let mut pause = Duration::from_millis(20);
    for _ in 0..POLLS {
        if request.state != RequestState::InProgress {
            return request;
        }
        pause_for(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        let id = request.id.clone();
        request = match asked {
            Asked::Creation => center.assign_status(&id).await,
            Asked::Deletion => center.unassign_status(&id).await,
        }
        .unwrap();
        assert_eq!(request.id, id, "the status of another request");
    }
    panic!(
        "request {} still in progress after {POLLS} polls",
        request.id
    );
}

/// Lets `pause` pass (this crate's tokio has no timer: a blocking thread
/// sleeps instead).
async fn pause_for(pause: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(pause))
        .await
        .unwrap();
}

// ------------------------------------------------------------ scenarios

/// A user is found by email, always as the same id, and another user as
/// another id; an email no user has is `None`.
pub async fn a_user_is_found_by_email_and_an_unknown_email_is_none(fixture: &Fixture) {
    let center = &fixture.center;
    let id = fixture.user_id(&fixture.user).await;
    assert!(!id.is_empty());
    assert_eq!(
        center.user_by_email(&fixture.user).await.unwrap(),
        Some(id.clone())
    );
    assert_ne!(fixture.user_id(&fixture.other_user).await, id);
    let unknown = format!("nobody-{}", fixture.user);
    assert_eq!(center.user_by_email(&unknown).await.unwrap(), None);
}

/// An assignment, once its request succeeded (its status asked, if it was
/// still in progress), is listed; its request's status can be asked.
pub async fn an_assignment_succeeds_and_is_listed(fixture: &Fixture) {
    let assignment = fixture
        .assignment(&fixture.user, &fixture.permission_set)
        .await;
    assert!(fixture.listed(&fixture.permission_set).await.is_empty());
    let request = fixture.center.assign(&assignment).await.unwrap();
    assert!(!request.id.is_empty());
    let done = done(fixture.center.as_ref(), request.clone(), Asked::Creation).await;
    assert_eq!(done.state, RequestState::Succeeded);
    let asked = fixture.center.assign_status(&request.id).await.unwrap();
    assert_eq!(asked, done, "asked again once done");
    assert_eq!(fixture.listed(&fixture.permission_set).await, [assignment]);
}

/// Assigning what is assigned already succeeds, and the user is listed
/// once.
pub async fn assigning_twice_keeps_one(fixture: &Fixture) {
    let assignment = fixture
        .assignment(&fixture.user, &fixture.permission_set)
        .await;
    fixture.assign(&assignment).await;
    fixture.assign(&assignment).await;
    assert_eq!(fixture.listed(&fixture.permission_set).await, [assignment]);
}

/// Unassigning removes the assignment; unassigning what is not assigned
/// (any more) succeeds too.
pub async fn unassigning_removes_it_and_unassigning_again_succeeds(fixture: &Fixture) {
    let assignment = fixture
        .assignment(&fixture.user, &fixture.permission_set)
        .await;
    fixture.assign(&assignment).await;
    fixture.unassign(&assignment).await;
    assert!(fixture.listed(&fixture.permission_set).await.is_empty());
    fixture.unassign(&assignment).await;
    assert!(fixture.listed(&fixture.permission_set).await.is_empty());
}

/// Each permission set is assigned and unassigned on its own.
pub async fn two_permission_sets_are_independent(fixture: &Fixture) {
    let (one, other) = (&fixture.permission_set, &fixture.other_permission_set);
    let first = fixture.assignment(&fixture.user, one).await;
    let second = fixture.assignment(&fixture.user, other).await;
    fixture.assign(&first).await;
    assert_eq!(fixture.listed(one).await, std::slice::from_ref(&first));
    assert!(fixture.listed(other).await.is_empty());
    fixture.assign(&second).await;
    fixture.unassign(&first).await;
    assert!(fixture.listed(one).await.is_empty());
    assert_eq!(fixture.listed(other).await, [second]);
}

/// Every user given a permission set is listed, in user id order.
pub async fn users_are_listed_in_user_id_order(fixture: &Fixture) {
    let ps = &fixture.permission_set;
    let mut both = [
        fixture.assignment(&fixture.user, ps).await,
        fixture.assignment(&fixture.other_user, ps).await,
    ];
    both.sort_by(|a, b| b.user_id.cmp(&a.user_id));
    for assignment in &both {
        fixture.assign(assignment).await;
    }
    both.reverse();
    assert_eq!(fixture.listed(ps).await, both);
    assert!(
        fixture
            .listed(&fixture.other_permission_set)
            .await
            .is_empty()
    );
}

/// A permission set is found by its name, as its ARN; a name the instance
/// has no set of is `None`.
pub async fn a_permission_set_is_found_by_name_and_an_unknown_name_is_none(fixture: &Fixture) {
    let [one, other] = &fixture.permission_set_names;
    let found = fixture.center.permission_set(one).await.unwrap();
    assert_eq!(
        found,
        Some(PermissionSet {
            arn: fixture.permission_set.clone(),
            name: one.clone(),
        })
    );
    let found = fixture.center.permission_set(other).await.unwrap();
    assert_eq!(
        found.map(|s| s.arn),
        Some(fixture.other_permission_set.clone())
    );
    let unknown = format!("{one}Nobody");
    assert_eq!(fixture.center.permission_set(&unknown).await.unwrap(), None);
}

/// A request that was never made is not found, asked as a creation or as a
/// deletion.
pub async fn an_unknown_request_is_not_found(fixture: &Fixture) {
    let id = "9c5c1b2e-6f0a-4c1e-9f53-2f8d3c7b1a40";
    assert_eq!(
        fixture.center.assign_status(id).await,
        Err(AccessError::NotFound(id.into()))
    );
    assert_eq!(
        fixture.center.unassign_status(id).await,
        Err(AccessError::NotFound(id.into()))
    );
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`identity_center`](self), each
/// named as its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<identity_center::Fixture>` (`None` skips the
/// test, as the moto tests do when told to).
#[macro_export]
macro_rules! identity_center_contract {
    ($fresh:path) => {
        $crate::__identity_center_scenarios!(__contract_tests; identity_center, $fresh);
    };
}

/// The scenarios, listed once. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __identity_center_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                a_user_is_found_by_email_and_an_unknown_email_is_none,
                an_assignment_succeeds_and_is_listed,
                assigning_twice_keeps_one,
                unassigning_removes_it_and_unassigning_again_succeeds,
                two_permission_sets_are_independent,
                users_are_listed_in_user_id_order,
                an_unknown_request_is_not_found,
                a_permission_set_is_found_by_name_and_an_unknown_name_is_none,
            ]
        }
    };
}

/// The names of the scenarios, as `identity_center_contract!` runs them.
pub const SCENARIOS: &[&str] = crate::__identity_center_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("identity_center.rs"), super::SCENARIOS);
    }
}
