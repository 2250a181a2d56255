//! [`IdentityCenterClient`] against moto's identitystore and sso-admin,
//! through the IdentityCenter port's contract
//! (`purser_contract::identity_center`, written once for every adapter).
//!
//! moto has one Identity Center instance per account and region, made with
//! the backend (`ListInstances` finds it, with its identity store id); each
//! test creates two users there with identitystore `CreateUser` (unique
//! emails), two permission sets with `CreatePermissionSet`, and an account
//! id of its own, so tests run in parallel against one server.
//!
//! Where moto 5.2.5 is not AWS:
//! - every request is `SUCCEEDED` at once, in the answer to
//!   `CreateAccountAssignment` and `DeleteAccountAssignment` and in the
//!   status calls: a request `IN_PROGRESS` or `FAILED` is never seen here
//!   (the adapter's reading of them is unit-tested in
//!   `shared/aws/src/identity_center.rs`, and the simulation's failed
//!   request in `shared/local/src/identity_center.rs`);
//! - `CreateAccountAssignment` of an assignment already there adds a second
//!   copy (listed twice, and `DeleteAccountAssignment` removes one copy at a
//!   time): the adapter lists each user once, which is all the contract
//!   shows of assigning twice;
//! - `DeleteAccountAssignment` of what is not assigned answers
//!   `ResourceNotFoundException` (with no message); the adapter then finds
//!   the assignment absent and answers a request already succeeded
//!   ([`ALREADY_ABSENT`](purser_aws::ALREADY_ABSENT));
//! - a request's creation status is forgotten once the assignment is
//!   deleted (AWS keeps it for a while);
//! - nothing is refused: no permissions, no check that the instance,
//!   permission set, principal or account exist, no throttling (the
//!   adapter's error mapping is unit-tested).

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_identitystore::types::{Email, Name};

use purser_aws::IdentityCenterClient;
use purser_contract::identity_center::Fixture;
use purser_core::access::PermissionSet;
use purser_core::ports::IdentityCenter;

/// moto's instance of the configuration's account and region: its ARN and
/// identity store id.
async fn instance(config: &SdkConfig) -> (String, String) {
    let listed = aws_sdk_ssoadmin::Client::new(config)
        .list_instances()
        .send()
        .await
        .expect("ListInstances");
    let instance = listed.instances().first().expect("moto's instance");
    (
        instance.instance_arn().expect("an ARN").to_owned(),
        instance
            .identity_store_id()
            .expect("an identity store")
            .to_owned(),
    )
}

/// A user of the identity store with a fresh email, which is answered.
async fn create_user(config: &SdkConfig, identity_store_id: &str) -> String {
    let name = crate::common::unique("user");
    let email = format!("{name}@example.com");
    aws_sdk_identitystore::Client::new(config)
        .create_user()
        .identity_store_id(identity_store_id)
        .user_name(&name)
        .display_name(&name)
        .name(
            Name::builder()
                .given_name("Test")
                .family_name(&name)
                .build(),
        )
        .emails(Email::builder().value(&email).primary(true).build())
        .send()
        .await
        .expect("CreateUser");
    email
}

/// A permission set of the instance, with a fresh name.
async fn create_permission_set(config: &SdkConfig, instance_arn: &str) -> PermissionSet {
    let name = crate::common::unique("ps")
        .chars()
        .take(32)
        .collect::<String>();
    let arn = aws_sdk_ssoadmin::Client::new(config)
        .create_permission_set()
        .instance_arn(instance_arn)
        .name(&name)
        // Without one, moto answers SessionDuration as the number 3600, which
        // the SDK cannot read (AWS: an ISO 8601 duration, "PT1H").
        .session_duration("PT1H")
        .send()
        .await
        .expect("CreatePermissionSet")
        .permission_set()
        .and_then(|p| p.permission_set_arn())
        .expect("a permission set ARN")
        .to_owned();
    PermissionSet { arn, name }
}

/// An account id no other test uses.
fn account_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

async fn fresh() -> Option<Fixture> {
    let config = crate::common::moto_config().await?;
    let (instance_arn, identity_store_id) = instance(&config).await;
    let users = [
        create_user(&config, &identity_store_id).await,
        create_user(&config, &identity_store_id).await,
    ];
    let permission_sets = [
        create_permission_set(&config, &instance_arn).await,
        create_permission_set(&config, &instance_arn).await,
    ];
    let adapter = IdentityCenterClient::from_config(&config, &instance_arn, &identity_store_id);
    Some(Fixture::new(
        Arc::new(adapter),
        users,
        permission_sets,
        account_id(),
    ))
}

purser_contract::identity_center_contract!(fresh);

/// An identity store moto has never seen is made empty on first use: an
/// email is simply not found there (AWS: `ResourceNotFoundException` with
/// resource type `IDENTITY_STORE`, which the adapter answers as `Denied`).
#[tokio::test]
async fn an_email_is_looked_up_in_the_configured_store_only() {
    let Some(config) = crate::common::moto_config().await else {
        return;
    };
    let (instance_arn, identity_store_id) = instance(&config).await;
    let email = create_user(&config, &identity_store_id).await;
    let elsewhere = IdentityCenterClient::from_config(&config, &instance_arn, "d-0000000000");
    assert_eq!(elsewhere.user_by_email(&email).await.unwrap(), None);
}
