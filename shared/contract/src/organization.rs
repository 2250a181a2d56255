//! The [`Organization`] port's contract: what every adapter
//! (`SimulatedOrganization`, `OrganizationsClient`) must do, each behaviour
//! one scenario, driven through the trait, and read back through an
//! [`Observer`] where the port itself does not tell (an account's parent,
//! email and tags, a policy's document).
//!
//! Every scenario uses names and emails of its own, so scenarios can share
//! one organization (moto keeps one per server), and waits for what
//! completes asynchronously (creations, closures) by polling, so it holds
//! both where that takes a moment (the simulation, AWS) and where it is
//! done at once (moto). Nothing depends on the day it runs.
//!
//! What only one adapter or backend does is tested beside it, not here:
//! the simulation's delays, failures, quotas, documents it refuses and
//! CloudTrail events (`shared/local/src/organization.rs`); the AWS
//! adapter's reading of AWS's answers, documents compared as JSON, and
//! the management account left out of the member count
//! (`shared/aws/tests/contract/organization.rs`).
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::organization::Fixture<MyObserver>> { … }
//!
//! purser_contract::organization_contract!(fresh);
//! ```

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use purser_core::accounts::{new_id, short_id};
use purser_core::ports::MAX_POLICIES_PER_TARGET;
use purser_core::{CreationState, CreationStatus, MemberStatus, Organization, OrganizationError};

/// What a scenario reads of the organization besides the port: each
/// adapter's test answers from its backend (the simulation's database,
/// Organizations' own API), and panics if it cannot.
pub trait Observer: Send + Sync {
    /// The email and name of member account `account_id`.
    fn account(&self, account_id: &str) -> impl Future<Output = (String, String)> + Send;
    /// The id of the parent (the root or an OU) of an account or an OU.
    fn parent(&self, child_id: &str) -> impl Future<Output = String> + Send;
    /// An account's tags, in any order.
    fn tags(&self, account_id: &str) -> impl Future<Output = Vec<(String, String)>> + Send;
    /// The document of service control policy `policy_id`, as stored.
    fn document(&self, policy_id: &str) -> impl Future<Output = String> + Send;
    /// The ids of the organization's service control policies named `name`.
    fn policies_named(&self, name: &str) -> impl Future<Output = Vec<String>> + Send;
    /// Lets a moment (about 10 ms) pass between two polls: this crate has
    /// no timer of its own.
    fn pause(&self) -> impl Future<Output = ()> + Send;
}

/// An organization for one scenario.
pub struct Fixture<O> {
    /// The adapter under test.
    pub organization: Arc<dyn Organization>,
    /// What the scenarios read besides the port.
    pub observer: O,
    /// The organization's management account.
    pub management_account: String,
    /// Whether other tests change the same organization meanwhile: then
    /// the member count is bounded instead of exact, and the management
    /// account (the one account scenarios do not make their own) may hold
    /// other tests' policies besides the ones a scenario expects.
    shared: bool,
    /// Whether the backend refuses a sixth SCP on one target, as AWS does.
    scp_limit: bool,
    /// What must outlive the organization (a temporary directory, its
    /// completion loop).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl<O: Observer> Fixture<O> {
    /// An organization of the scenario's own, enforcing AWS's five SCPs
    /// per target.
    pub fn new(
        organization: Arc<dyn Organization>,
        observer: O,
        management_account: impl Into<String>,
    ) -> Self {
        Self {
            organization,
            observer,
            management_account: management_account.into(),
            shared: false,
            scp_limit: true,
            _keep: None,
        }
    }

    /// The organization is shared with tests that run at the same time.
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// The backend attaches a sixth SCP to one target (moto does): the
    /// limit scenario then asserts that it does, so a backend that starts
    /// enforcing the limit fails it until its fixture says so.
    pub fn without_scp_limit(mut self) -> Self {
        self.scp_limit = false;
        self
    }

    /// Keeps `guard` alive as long as the fixture.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

// ------------------------------------------------------------ helpers

/// AWS's id of the policy it manages and attaches to every new account.
const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";

/// A deny-all document, as the freeze policy is (without its exemptions).
const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Freeze","Effect":"Deny","Action":"*","Resource":"*"}]}"#;

/// An account id no organization has.
const UNKNOWN_ACCOUNT: &str = "000000000000";

/// How long a creation or closure may take to complete.
const SETTLE: Duration = Duration::from_secs(10);

/// A name no other scenario uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", short_id(&new_id()))
}

/// An email no other account has.
fn email() -> String {
    format!("{}@example.com", unique("dev"))
}

fn tag(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// Whether `text` is `prefix` and then `min..=max` characters that `allowed`.
fn is_id(text: &str, prefix: &str, min: usize, max: usize, allowed: fn(u8) -> bool) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|rest| (min..=max).contains(&rest.len()) && rest.bytes().all(allowed))
}

fn lower_alphanumeric(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A root id as AWS documents it: `r-` and 4 to 32 of `[a-z0-9]`.
fn is_root_id(text: &str) -> bool {
    is_id(text, "r-", 4, 32, lower_alphanumeric)
}

/// An OU id of the organization whose root is `root`: `ou-`, the root's
/// id without its `r-`, `-` and 8 to 32 of `[a-z0-9]`.
fn is_ou_id(text: &str, root: &str) -> bool {
    let root = root.trim_start_matches("r-");
    is_id(text, &format!("ou-{root}-"), 8, 32, lower_alphanumeric)
}

/// A policy id: `p-` and 8 to 128 of `[0-9a-zA-Z_]`.
fn is_policy_id(text: &str) -> bool {
    is_id(text, "p-", 8, 128, |b| {
        b.is_ascii_alphanumeric() || b == b'_'
    })
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Asserts that `result` is `NotFound`, which is not worth a retry.
fn assert_not_found<T: std::fmt::Debug>(what: &str, result: Result<T, OrganizationError>) {
    match result {
        Err(err @ OrganizationError::NotFound(_)) => assert!(!err.is_retryable(), "{what}"),
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// Polls creation `id` until it is no longer in progress.
async fn settled<O: Observer>(fixture: &Fixture<O>, id: &str) -> CreationStatus {
    let deadline = Instant::now() + SETTLE;
    loop {
        let status = fixture.organization.creation_status(id).await.unwrap();
        assert_eq!(status.id, id);
        if status.state != CreationState::InProgress {
            return status;
        }
        assert!(Instant::now() < deadline, "creation {id} never completed");
        fixture.observer.pause().await;
    }
}

/// A new member account named `name`, created and settled.
async fn created<O: Observer>(fixture: &Fixture<O>, name: &str) -> String {
    let started = fixture
        .organization
        .create_account(&email(), name, &[])
        .await
        .unwrap();
    let done = settled(fixture, &started.id).await;
    assert_eq!(done.state, CreationState::Succeeded, "{done:?}");
    done.account_id
        .expect("a succeeded creation names its account")
}

/// Polls `account_id` until its status is `status`.
async fn until_status<O: Observer>(fixture: &Fixture<O>, account_id: &str, status: MemberStatus) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = fixture
            .organization
            .member_status(account_id)
            .await
            .unwrap();
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{account_id} stayed {now:?}, never {status:?}"
        );
        fixture.observer.pause().await;
    }
}

/// The policies attached to `account_id`, in order of their ids.
async fn policies<O: Observer>(fixture: &Fixture<O>, account_id: &str) -> Vec<String> {
    sorted(fixture.organization.policies_of(account_id).await.unwrap())
}

fn ids(ids: &[&str]) -> Vec<String> {
    sorted(ids.iter().map(|id| (*id).to_owned()).collect())
}

/// A service control policy of a name of its own, denying all.
async fn policy<O: Observer>(fixture: &Fixture<O>, prefix: &str) -> String {
    fixture
        .organization
        .ensure_policy(&unique(prefix), "Purser: contract tests", DENY_ALL)
        .await
        .unwrap()
}

// ------------------------------------------------------------ accounts

/// An account is created with the email, name and tags asked, its
/// creation polled to success: it starts in the root, active, with
/// `FullAWSAccess` alone, and counts as one more member.
pub async fn an_account_is_created_as_asked_into_the_root<O: Observer>(fixture: &Fixture<O>) {
    let org = &fixture.organization;
    let members_before = org.member_account_count().await.unwrap();
    let (email, name) = (email(), "payments-contract tests");
    let tags = vec![
        tag("purser:team", "payments"),
        tag("purser:owner", "ana@example.com"),
    ];

    let started = org.create_account(&email, name, &tags).await.unwrap();
    assert!(
        is_id(&started.id, "car-", 8, 32, lower_alphanumeric),
        "{started:?}"
    );
    assert_eq!(started.failure_reason, None);
    match started.state {
        // AWS and the simulation: no account yet.
        CreationState::InProgress => assert_eq!(started.account_id, None),
        // moto: done at once.
        CreationState::Succeeded => assert!(started.account_id.is_some(), "{started:?}"),
        CreationState::Failed => panic!("{started:?}"),
    }
    let done = settled(fixture, &started.id).await;
    assert_eq!(done.state, CreationState::Succeeded, "{done:?}");
    assert_eq!(done.failure_reason, None);
    if started.state == CreationState::Succeeded {
        assert_eq!(done, started);
    }
    assert_eq!(
        org.creation_status(&started.id).await.unwrap(),
        done,
        "a completed creation stays as it completed"
    );
    let account_id = done.account_id.clone().expect("an account id");
    assert!(is_account_id(&account_id), "{account_id}");
    assert_ne!(account_id, fixture.management_account);

    assert_eq!(
        fixture.observer.account(&account_id).await,
        (email, name.to_owned())
    );
    let root = org.ensure_ou(&[]).await.unwrap();
    assert!(is_root_id(&root), "{root}");
    assert_eq!(
        fixture.observer.parent(&account_id).await,
        root,
        "new accounts start in the root"
    );
    assert_eq!(
        sorted(fixture.observer.tags(&account_id).await),
        sorted(tags),
        "the tags given to CreateAccount are on the account"
    );
    assert_eq!(
        org.member_status(&account_id).await.unwrap(),
        MemberStatus::Active
    );
    assert_eq!(
        org.policies_of(&account_id).await.unwrap(),
        [FULL_AWS_ACCESS]
    );

    let members_after = org.member_account_count().await.unwrap();
    if fixture.shared {
        assert!(
            members_after > members_before,
            "{members_before} then {members_after} (other tests may add accounts, none removes one)"
        );
    } else {
        assert_eq!(members_after, members_before + 1);
    }
}

/// `ensure_ou` creates what is missing of a path below the root, once: the
/// second call finds what the first made, each OU under its parent.
pub async fn ensure_ou_creates_what_is_missing_once<O: Observer>(fixture: &Fixture<O>) {
    let org = &fixture.organization;
    let root = org.ensure_ou(&[]).await.unwrap();
    assert!(is_root_id(&root), "{root}");
    // A top-level OU of the scenario's own: moto creates a second OU of
    // one name, so scenarios sharing an organization never share one.
    let top = unique("purser");

    let payments = org.ensure_ou(&[&top, "payments"]).await.unwrap();
    assert!(is_ou_id(&payments, &root), "{payments} in {root}");
    assert_eq!(
        org.ensure_ou(&[&top, "payments"]).await.unwrap(),
        payments,
        "the second call finds what the first made"
    );
    let search = org.ensure_ou(&[&top, "search"]).await.unwrap();
    assert!(is_ou_id(&search, &root), "{search} in {root}");
    assert_ne!(search, payments);
    let top_id = org.ensure_ou(&[&top]).await.unwrap();
    assert!(is_ou_id(&top_id, &root), "{top_id} in {root}");
    assert_ne!(top_id, payments);
    assert_ne!(top_id, search);

    assert_eq!(fixture.observer.parent(&payments).await, top_id);
    assert_eq!(fixture.observer.parent(&search).await, top_id);
    assert_eq!(fixture.observer.parent(&top_id).await, root);
    assert_eq!(org.ensure_ou(&[]).await.unwrap(), root);
    assert_eq!(org.ensure_ou(&[&top]).await.unwrap(), top_id);
}

/// An account moves from the root to an OU, between OUs and back; moving
/// it where it is changes nothing, and an unknown account or OU is
/// `NotFound` and moves nothing.
pub async fn an_account_moves_between_ous_and_a_move_where_it_is_changes_nothing<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-moves").await;
    let top = unique("purser");
    let payments = org.ensure_ou(&[&top, "payments"]).await.unwrap();
    let core = org.ensure_ou(&[&top, "core"]).await.unwrap();
    let root = org.ensure_ou(&[]).await.unwrap();
    assert_eq!(fixture.observer.parent(&account).await, root);

    org.move_account(&account, &payments).await.unwrap();
    assert_eq!(fixture.observer.parent(&account).await, payments);
    org.move_account(&account, &payments)
        .await
        .expect("moving it where it is changes nothing");
    assert_eq!(fixture.observer.parent(&account).await, payments);
    org.move_account(&account, &core).await.unwrap();
    assert_eq!(fixture.observer.parent(&account).await, core);
    org.move_account(&account, &root).await.unwrap();
    assert_eq!(fixture.observer.parent(&account).await, root);

    assert_not_found(
        "an unknown account",
        org.move_account(UNKNOWN_ACCOUNT, &payments).await,
    );
    let nowhere = format!("ou-{}-zzzzzzzz", root.trim_start_matches("r-"));
    assert_not_found("an unknown OU", org.move_account(&account, &nowhere).await);
    assert_eq!(fixture.observer.parent(&account).await, root);
}

/// Tags are added to an account's; a key tagged again takes its new value,
/// and no tags change nothing.
pub async fn tags_are_added_and_a_key_tagged_again_takes_the_new_value<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-tags").await;
    assert_eq!(fixture.observer.tags(&account).await, []);

    org.tag_account(
        &account,
        &[tag("purser:team", "payments"), tag("purser:owner", "ana")],
    )
    .await
    .unwrap();
    org.tag_account(
        &account,
        &[
            tag("purser:owner", "bob"),
            tag("purser:request", "r-0123456789ab"),
        ],
    )
    .await
    .unwrap();
    let expected = vec![
        tag("purser:owner", "bob"),
        tag("purser:request", "r-0123456789ab"),
        tag("purser:team", "payments"),
    ];
    assert_eq!(sorted(fixture.observer.tags(&account).await), expected);
    org.tag_account(&account, &[]).await.unwrap();
    assert_eq!(sorted(fixture.observer.tags(&account).await), expected);
}

/// A closed account goes through `PENDING_CLOSURE` (or not, where closing
/// is done at once) to `SUSPENDED`; another account stays active. Closing
/// it again, while it closes or once closed, leaves it so: the answer is
/// success or a refusal not worth a retry, never a `NotFound` (the domain
/// then reads its status and takes the closure as under way).
pub async fn a_closed_account_ends_suspended_and_closing_it_again_leaves_it_so<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-closed").await;
    let other = created(fixture, "payments-open").await;

    let closing_again = |what: &str, result: Result<(), OrganizationError>| match result {
        Ok(()) => {}
        Err(err) => assert!(
            !err.is_retryable() && !matches!(err, OrganizationError::NotFound(_)),
            "closing an account {what}: {err:?}"
        ),
    };

    org.close_account(&account).await.unwrap();
    let status = org.member_status(&account).await.unwrap();
    assert!(
        matches!(
            status,
            MemberStatus::PendingClosure | MemberStatus::Suspended
        ),
        "{status:?}"
    );
    closing_again("that is closing", org.close_account(&account).await);
    let status = org.member_status(&account).await.unwrap();
    assert!(
        matches!(
            status,
            MemberStatus::PendingClosure | MemberStatus::Suspended
        ),
        "{status:?}"
    );

    until_status(fixture, &account, MemberStatus::Suspended).await;
    closing_again("that is closed", org.close_account(&account).await);
    assert_eq!(
        org.member_status(&account).await.unwrap(),
        MemberStatus::Suspended
    );
    assert_eq!(
        org.member_status(&other).await.unwrap(),
        MemberStatus::Active
    );
}

/// An account or a creation the organization does not have is `NotFound`,
/// whatever is asked of it.
pub async fn unknown_accounts_and_creations_are_not_found<O: Observer>(fixture: &Fixture<O>) {
    let org = &fixture.organization;
    let root = org.ensure_ou(&[]).await.unwrap();
    let ou = org.ensure_ou(&[&unique("purser")]).await.unwrap();
    assert_not_found("member_status", org.member_status(UNKNOWN_ACCOUNT).await);
    assert_not_found(
        "move_account to an OU",
        org.move_account(UNKNOWN_ACCOUNT, &ou).await,
    );
    assert_not_found(
        "move_account to the root",
        org.move_account(UNKNOWN_ACCOUNT, &root).await,
    );
    assert_not_found(
        "tag_account",
        org.tag_account(UNKNOWN_ACCOUNT, &[tag("purser:team", "payments")])
            .await,
    );
    assert_not_found("close_account", org.close_account(UNKNOWN_ACCOUNT).await);
    assert_not_found(
        "creation_status",
        org.creation_status("car-0123456789abcdef0123456789abcdef")
            .await,
    );
}

/// The management account is an active account of the organization, with
/// `FullAWSAccess`, and takes policies as members do (SCPs do not bind it).
pub async fn the_management_account_is_active_and_takes_policies<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let management = fixture.management_account.as_str();
    assert_eq!(
        org.member_status(management).await.unwrap(),
        MemberStatus::Active
    );
    // In a shared organization other tests may attach to it too: only
    // what this scenario attaches must be there, or gone.
    let holds = |held: Vec<String>, expected: &[&str]| {
        if fixture.shared {
            assert!(
                expected.iter().all(|id| held.iter().any(|h| h == id)),
                "{held:?} lacks some of {expected:?}"
            );
        } else {
            assert_eq!(sorted(held), ids(expected));
        }
    };
    holds(policies(fixture, management).await, &[FULL_AWS_ACCESS]);

    let freeze = policy(fixture, "purser-management").await;
    org.attach_policy(&freeze, management).await.unwrap();
    org.attach_policy(&freeze, management)
        .await
        .expect("attaching it again changes nothing");
    holds(
        policies(fixture, management).await,
        &[FULL_AWS_ACCESS, &freeze],
    );
    org.detach_policy(&freeze, management).await.unwrap();
    let held = policies(fixture, management).await;
    assert!(!held.contains(&freeze), "{held:?}");
    holds(held, &[FULL_AWS_ACCESS]);
}

// ------------------------------------------------------------ policies

/// A policy is created once: the same name and document give the same id,
/// a changed document is written to the same policy, another name makes
/// another policy; one policy of each name.
pub async fn a_policy_is_ensured_once_and_updated_when_its_document_changes<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    // Policies are the organization's: names of the scenario's own.
    let name = unique("purser-freeze");
    let description = "Purser: denies everything while the team is over budget";

    let id = org
        .ensure_policy(&name, description, DENY_ALL)
        .await
        .unwrap();
    assert!(is_policy_id(&id), "{id}");
    assert_eq!(fixture.observer.document(&id).await, DENY_ALL);
    assert_eq!(
        org.ensure_policy(&name, description, DENY_ALL)
            .await
            .unwrap(),
        id,
        "the second call finds what the first made"
    );
    assert_eq!(fixture.observer.document(&id).await, DENY_ALL);

    let changed = DENY_ALL.replace("\"Freeze\"", "\"FreezeAgain\"");
    assert_eq!(
        org.ensure_policy(&name, description, &changed)
            .await
            .unwrap(),
        id,
        "a changed document is the same policy's"
    );
    assert_eq!(
        fixture.observer.document(&id).await,
        changed,
        "a changed document is written"
    );
    assert_eq!(
        fixture.observer.policies_named(&name).await,
        [id.as_str()],
        "one policy of the name"
    );

    let other_name = unique("purser-other");
    let other = org.ensure_policy(&other_name, "", DENY_ALL).await.unwrap();
    assert!(is_policy_id(&other), "{other}");
    assert_ne!(other, id);
    assert_eq!(
        fixture.observer.policies_named(&other_name).await,
        [other.as_str()]
    );
    assert_eq!(fixture.observer.document(&id).await, changed);
}

/// Attaching a policy again, and detaching what is not attached, change
/// nothing; an attached policy is listed once, beside `FullAWSAccess`.
pub async fn attaching_and_detaching_are_idempotent_and_listed_once<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-freeze").await;
    let freeze = policy(fixture, "purser-freeze").await;
    let other = policy(fixture, "purser-other").await;
    assert_eq!(policies(fixture, &account).await, [FULL_AWS_ACCESS]);

    // Before the account's first change, and after.
    org.detach_policy(&freeze, &account)
        .await
        .expect("detaching what is not attached changes nothing");
    assert_eq!(policies(fixture, &account).await, [FULL_AWS_ACCESS]);

    org.attach_policy(&freeze, &account).await.unwrap();
    org.attach_policy(&freeze, &account)
        .await
        .expect("attaching it again changes nothing");
    org.attach_policy(FULL_AWS_ACCESS, &account)
        .await
        .expect("FullAWSAccess is attached already");
    assert_eq!(
        policies(fixture, &account).await,
        ids(&[FULL_AWS_ACCESS, &freeze]),
        "listed once"
    );
    org.attach_policy(&other, &account).await.unwrap();
    assert_eq!(
        policies(fixture, &account).await,
        ids(&[FULL_AWS_ACCESS, &freeze, &other])
    );

    org.detach_policy(&freeze, &account).await.unwrap();
    org.detach_policy(&freeze, &account)
        .await
        .expect("detaching what is not attached changes nothing");
    assert_eq!(
        policies(fixture, &account).await,
        ids(&[FULL_AWS_ACCESS, &other])
    );
    org.detach_policy(&other, &account).await.unwrap();
    assert_eq!(policies(fixture, &account).await, [FULL_AWS_ACCESS]);
}

/// An account takes five SCPs, `FullAWSAccess` among them: a sixth is
/// refused with `MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED` and changes
/// nothing, another account has five of its own, and a detach frees a
/// place. Attaching one of the five again is no sixth. Where the backend
/// does not enforce the limit (moto), the sixth is attached, as its
/// fixture says.
pub async fn at_most_five_scps_are_attached_to_one_account<O: Observer>(fixture: &Fixture<O>) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-limit").await;
    let prefix = unique("purser-limit");
    let mut policies_made = Vec::new();
    for i in 0..MAX_POLICIES_PER_TARGET {
        policies_made.push(
            org.ensure_policy(&format!("{prefix}-{i}"), "limit test", DENY_ALL)
                .await
                .unwrap(),
        );
    }
    let p: Vec<&str> = policies_made.iter().map(String::as_str).collect();
    // FullAWSAccess and four more: the five AWS allows.
    for id in &p[..MAX_POLICIES_PER_TARGET - 1] {
        org.attach_policy(id, &account).await.unwrap();
    }
    let five = ids(&[FULL_AWS_ACCESS, p[0], p[1], p[2], p[3]]);
    assert_eq!(five.len(), MAX_POLICIES_PER_TARGET);
    assert_eq!(policies(fixture, &account).await, five);
    org.attach_policy(p[0], &account)
        .await
        .expect("attaching one of the five again is no sixth");
    org.attach_policy(FULL_AWS_ACCESS, &account)
        .await
        .expect("attaching one of the five again is no sixth");
    assert_eq!(policies(fixture, &account).await, five);

    let sixth = org.attach_policy(p[4], &account).await;
    if !fixture.scp_limit {
        sixth.expect("this backend does not enforce the limit (see its fixture)");
        assert_eq!(
            policies(fixture, &account).await.len(),
            MAX_POLICIES_PER_TARGET + 1
        );
        return;
    }
    match sixth {
        Err(OrganizationError::Constraint { reason, .. }) => {
            assert_eq!(reason, "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED");
        }
        other => panic!("expected the limit's constraint, got {other:?}"),
    }
    assert_eq!(policies(fixture, &account).await, five, "nothing attached");

    let another = created(fixture, "payments-limit-other").await;
    org.attach_policy(p[4], &another).await.unwrap();
    assert_eq!(
        policies(fixture, &another).await,
        ids(&[FULL_AWS_ACCESS, p[4]])
    );

    org.detach_policy(p[1], &account).await.unwrap();
    org.attach_policy(p[4], &account).await.unwrap();
    assert_eq!(
        policies(fixture, &account).await,
        ids(&[FULL_AWS_ACCESS, p[0], p[2], p[3], p[4]])
    );
}

/// The guardrails' SCPs (`purser_core::guardrails`) are taken as they
/// are, documents a backend keeps as written, and as many as the domain
/// ever makes for one target (`MAX_GUARDRAIL_POLICIES`, long lists spread
/// over them) fit on an account beside `FullAWSAccess` with room left for
/// the freeze.
pub async fn guardrail_policies_fit_beside_full_aws_access_and_the_freeze<O: Observer>(
    fixture: &Fixture<O>,
) {
    use purser_core::budgets::FreezeExemptions;
    use purser_core::guardrails::{GuardrailSettings, Guardrails, MAX_GUARDRAIL_POLICIES};

    let org = &fixture.organization;
    let account = created(fixture, "payments-guardrail").await;
    let exemptions = FreezeExemptions {
        break_glass_roles: vec!["break-glass".into()],
        purser_role: "purser-lambda-throttle".into(),
        control_tower: false,
    };
    let mut settings = GuardrailSettings {
        regions: vec!["eu-west-1".into(), "eu-central-1".into()],
        ..GuardrailSettings::default()
    };
    // Enough made-up actions to fill every document the domain allows.
    settings
        .denied_actions
        .extend((0..250).map(|i| format!("service{i:03}:SomeRatherLongActionName{i:04}")));
    let guardrails = Guardrails::new(settings, exemptions.clone()).unwrap();
    let scope = unique("contract");
    let named = guardrails.named_policies(&scope).unwrap();
    assert_eq!(named.len(), MAX_GUARDRAIL_POLICIES);
    let mut attached = vec![FULL_AWS_ACCESS.to_string()];
    for (name, document) in &named {
        let id = org
            .ensure_policy(name, "Purser: contract tests", document)
            .await
            .unwrap();
        assert!(is_policy_id(&id), "{id}");
        let kept: serde_json::Value =
            serde_json::from_str(&fixture.observer.document(&id).await).unwrap();
        let ours: serde_json::Value = serde_json::from_str(document).unwrap();
        assert_eq!(kept, ours, "{name}");
        org.attach_policy(&id, &account).await.unwrap();
        attached.push(id);
    }
    let freeze = org
        .ensure_policy(
            &unique("purser-budget-freeze"),
            "Purser: contract tests",
            &exemptions.policy().unwrap(),
        )
        .await
        .unwrap();
    org.attach_policy(&freeze, &account)
        .await
        .expect("the freeze finds room beside the guardrails");
    attached.push(freeze);
    assert_eq!(attached.len(), MAX_POLICIES_PER_TARGET);
    assert_eq!(policies(fixture, &account).await, sorted(attached));
}

/// A policy or a target the organization does not have is `NotFound`, and
/// nothing is attached or detached.
pub async fn unknown_policies_and_targets_are_not_found<O: Observer>(fixture: &Fixture<O>) {
    let org = &fixture.organization;
    let account = created(fixture, "payments-unknown").await;
    let freeze = policy(fixture, "purser-unknown").await;
    let unknown_policy = "p-0123456789";
    assert_not_found(
        "attaching an unknown policy",
        org.attach_policy(unknown_policy, &account).await,
    );
    assert_not_found(
        "detaching an unknown policy",
        org.detach_policy(unknown_policy, &account).await,
    );
    assert_not_found(
        "attaching to an unknown account",
        org.attach_policy(&freeze, UNKNOWN_ACCOUNT).await,
    );
    assert_not_found(
        "detaching from an unknown account",
        org.detach_policy(&freeze, UNKNOWN_ACCOUNT).await,
    );
    assert_not_found(
        "an unknown account's policies",
        org.policies_of(UNKNOWN_ACCOUNT).await,
    );
    assert_eq!(policies(fixture, &account).await, [FULL_AWS_ACCESS]);
}

// ------------------------------------------------------------ the macro

/// One `#[tokio::test]` per scenario of [`organization`](self), each named
/// as its scenario and run on a fixture from `$fresh`, an
/// `async fn() -> Option<organization::Fixture<_>>` (`None` skips the
/// test, as the moto tests do when told to).
#[macro_export]
macro_rules! organization_contract {
    ($fresh:path) => {
        $crate::__organization_scenarios!(__contract_tests; organization, $fresh);
    };
}

/// The organization's scenarios, listed once. Passes them to `$then`
/// after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __organization_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                an_account_is_created_as_asked_into_the_root,
                ensure_ou_creates_what_is_missing_once,
                an_account_moves_between_ous_and_a_move_where_it_is_changes_nothing,
                tags_are_added_and_a_key_tagged_again_takes_the_new_value,
                a_closed_account_ends_suspended_and_closing_it_again_leaves_it_so,
                unknown_accounts_and_creations_are_not_found,
                a_creation_whose_answer_was_lost_is_found_again_by_its_email,
                the_management_account_is_active_and_takes_policies,
                a_policy_is_ensured_once_and_updated_when_its_document_changes,
                attaching_and_detaching_are_idempotent_and_listed_once,
                at_most_five_scps_are_attached_to_one_account,
                guardrail_policies_fit_beside_full_aws_access_and_the_freeze,
                unknown_policies_and_targets_are_not_found,
            ]
        }
    };
}

/// A `CreateAccount` whose answer was lost is found again, as Purser looks
/// before asking twice: by the new account's root email once it exists
/// (the simulation answers in progress first, moto at once), never by
/// another email or name.
pub async fn a_creation_whose_answer_was_lost_is_found_again_by_its_email<O: Observer>(
    fixture: &Fixture<O>,
) {
    let org = &fixture.organization;
    let (email, name) = (email(), unique("lost"));
    let started = org.create_account(&email, &name, &[]).await.unwrap();
    let found = org.find_creation(&email, &name).await.unwrap();
    assert_eq!(
        found.as_ref().map(|f| f.id.as_str()),
        Some(started.id.as_str()),
        "found while in progress (by name) or once done (by email): {found:?}"
    );
    let done = settled(fixture, &started.id).await;
    assert_eq!(done.state, CreationState::Succeeded, "{done:?}");
    let found = org
        .find_creation(&email, &unique("renamed"))
        .await
        .unwrap()
        .expect("a succeeded creation is found by its account's email");
    assert_eq!(found.id, started.id);
    assert_eq!(found.state, CreationState::Succeeded);
    assert_eq!(found.account_id, done.account_id);
    assert_eq!(
        org.find_creation(&self::email(), &unique("other"))
            .await
            .unwrap(),
        None,
        "another email and name find nothing"
    );
}

/// The names of the organization's scenarios, as `organization_contract!`
/// runs them.
pub const SCENARIOS: &[&str] = crate::__organization_scenarios!(__scenario_list;);

#[cfg(test)]
mod tests {
    /// Every scenario runs, once: a scenario missing from the macro's list
    /// would silently never run.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("organization.rs"), super::SCENARIOS);
    }

    #[test]
    fn ids_are_told_apart_as_aws_documents_them() {
        use super::*;
        assert!(is_root_id("r-ab12") && !is_root_id("r-ab1") && !is_root_id("r-AB12"));
        assert!(is_ou_id("ou-ab12-abcdefgh", "r-ab12"));
        assert!(!is_ou_id("ou-ab12-abcdefgh", "r-cd34"));
        assert!(!is_ou_id("ou-ab12-abcdefg", "r-ab12"));
        assert!(is_policy_id("p-FullAWSAccess") && is_policy_id("p-abcd1234"));
        assert!(!is_policy_id("p-abc") && !is_policy_id("x-abcd1234"));
        assert!(is_account_id("123456789012") && !is_account_id("12345678901a"));
        assert!(!is_account_id("1234567890123"));
        assert!(unique("purser") != unique("purser"));
    }
}
