//! [`DynamoStore`]'s running resources against moto's DynamoDB, on a table
//! shaped as in `infra/template.yaml`: the port's contract
//! (`purser_contract::running`, run against `SqliteStore` too). Its race
//! runs on a store that sends moto one request at a time (see `store.rs`:
//! moto does not lock conditional writes), so what it shows is that one
//! conditional `UpdateItem` decides.

use std::sync::Arc;

use purser_aws::DynamoStore;
use purser_contract::running::Fixture;

async fn fresh() -> Option<Fixture> {
    let config = crate::common::moto_config().await?;
    let (_, name) = crate::store::table(&config).await;
    let store = DynamoStore::from_config(&config, &name);
    let racing = DynamoStore::from_config(&crate::store::one_request_at_a_time(&config), &name);
    Some(Fixture::new(Arc::new(store)).racing_on(Arc::new(racing)))
}

purser_contract::running_contract!(fresh);
