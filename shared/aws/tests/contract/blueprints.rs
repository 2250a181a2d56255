//! [`CloudFormationStackSets`] against moto's CloudFormation: an instance of
//! a service-managed StackSet deployed into one account of an OU, its
//! operation read back, and a StackSet that is not there.
//!
//! Where moto is not AWS (moto 5.2.5): every operation succeeds at once, so
//! a failure's reason (from `ListStackSetOperationResults`) is not shown
//! here; moto ignores the `OperationId` Purser names and `CallAs`, and
//! makes its own id, which the adapter then answers (on AWS the id is the
//! name Purser gave, and a repeat answers `OperationIdAlreadyExists`).

use aws_sdk_cloudformation::types::PermissionModels;
use purser_aws::CloudFormationStackSets;
use purser_core::ports::{BlueprintDeployment, BlueprintError, BlueprintOutcome, Blueprints};

use crate::common::{moto_config, unique};

const TEMPLATE: &str = r#"{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}"#;

async fn stack_set(config: &aws_config::SdkConfig) -> String {
    let name = unique("purser-baseline");
    aws_sdk_cloudformation::Client::new(config)
        .create_stack_set()
        .stack_set_name(&name)
        .template_body(TEMPLATE)
        .permission_model(PermissionModels::ServiceManaged)
        .send()
        .await
        .expect("CreateStackSet");
    name
}

#[tokio::test]
async fn a_blueprint_is_deployed_into_one_account_of_its_ou_and_succeeds() {
    let Some(config) = moto_config().await else {
        return;
    };
    let name = stack_set(&config).await;
    let stack_sets = CloudFormationStackSets::from_config(&config);
    let regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
    let deployment = BlueprintDeployment {
        stack_set: &name,
        account_id: "210987654321",
        ou: "ou-ab12-cd34ef56",
        regions: &regions,
        operation: "purser-r-0123456789ab",
    };
    let operation = stack_sets.deploy(&deployment).await.expect("deploy");
    assert!(!operation.is_empty());
    assert_eq!(
        stack_sets
            .outcome(&name, &operation, "210987654321")
            .await
            .expect("outcome"),
        BlueprintOutcome::Succeeded
    );
}

#[tokio::test]
async fn a_stack_set_that_is_not_there_is_not_found() {
    let Some(config) = moto_config().await else {
        return;
    };
    let stack_sets = CloudFormationStackSets::from_config(&config);
    let regions = vec!["us-east-1".to_string()];
    let missing = unique("purser-missing");
    let err = stack_sets
        .deploy(&BlueprintDeployment {
            stack_set: &missing,
            account_id: "210987654321",
            ou: "ou-ab12-cd34ef56",
            regions: &regions,
            operation: "purser-r-000000000001",
        })
        .await
        .expect_err("no such StackSet");
    assert!(matches!(err, BlueprintError::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
    let err = stack_sets
        .outcome(&missing, "purser-r-000000000001", "210987654321")
        .await
        .expect_err("no such StackSet");
    assert!(matches!(err, BlueprintError::NotFound(_)), "{err:?}");
}
