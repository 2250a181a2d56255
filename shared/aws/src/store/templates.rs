//! Lease templates: every version its own item in the template's partition
//! (`TEMPLATE#<name>` / `VERSION#<version, 20 digits>`), and the latest
//! version's copy in one listing partition (`TEMPLATES` / `TEMPLATE#<name>`)
//! with its `revision`. A change writes both in one transaction: the
//! listing copy on the condition that its revision is the one before (or
//! that there is none, for version 1), the version item on the condition
//! that it does not exist. So of two changes from one version one is
//! stored, the latest is one `GetItem`, the list one `Query` in name order,
//! and an account made from an earlier version still reads it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use purser_core::StoreError;
use purser_core::leases::{LeaseTemplate, TemplateName};

use super::DynamoStore;
use super::items::{DATA, Item, PK, REVISION, SK, n, s, string};
use super::transact::{Reason, Transacted, built};

const TEMPLATE_PREFIX: &str = "TEMPLATE#";
const TEMPLATES_PK: &str = "TEMPLATES";
const VERSION_PREFIX: &str = "VERSION#";

fn version_key(name: &TemplateName, version: u64) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{TEMPLATE_PREFIX}{name}"))),
        (SK.to_owned(), s(format!("{VERSION_PREFIX}{version:020}"))),
    ])
}

fn listing_key(name: &TemplateName) -> Item {
    HashMap::from([
        (PK.to_owned(), s(TEMPLATES_PK)),
        (SK.to_owned(), s(format!("{TEMPLATE_PREFIX}{name}"))),
    ])
}

fn with_data(mut key: Item, template: &LeaseTemplate) -> Result<Item, StoreError> {
    let data = serde_json::to_string(template)
        .map_err(|e| StoreError::Corrupt(format!("template {}: {e}", template.name)))?;
    key.insert(DATA.to_owned(), s(data));
    key.insert(REVISION.to_owned(), n(template.version));
    Ok(key)
}

fn template_from_item(item: &Item) -> Result<LeaseTemplate, StoreError> {
    serde_json::from_str(string(item, DATA)?).map_err(|e| {
        StoreError::Corrupt(format!(
            "template item {}: holds no template Purser can read: {e}",
            super::items::describe_key(item)
        ))
    })
}

impl DynamoStore {
    pub(super) async fn write_template(
        &self,
        template: &LeaseTemplate,
    ) -> Result<bool, StoreError> {
        if template.version == 0 {
            return Ok(false);
        }
        let listing = Put::builder()
            .table_name(&self.table)
            .set_item(Some(with_data(listing_key(&template.name), template)?));
        let listing = if template.version == 1 {
            listing
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            listing
                .condition_expression("#revision = :previous")
                .expression_attribute_names("#revision", REVISION)
                .expression_attribute_values(":previous", n(template.version - 1))
        };
        let version = Put::builder()
            .table_name(&self.table)
            .set_item(Some(with_data(
                version_key(&template.name, template.version),
                template,
            )?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK);
        let transaction = vec![
            TransactWriteItem::builder()
                .put(built(listing.build())?)
                .build(),
            TransactWriteItem::builder()
                .put(built(version.build())?)
                .build(),
        ];
        let stored = match self.transact("put_template", transaction).await? {
            Transacted::Committed => true,
            Transacted::Refused(reasons)
                if reasons
                    .iter()
                    .any(|r| matches!(r, Reason::ConditionFailed(_))) =>
            {
                false
            }
            Transacted::Refused(reasons) => {
                return Err(StoreError::Unavailable(format!(
                    "TransactWriteItems (put_template) on table {}: refused: {reasons:?}",
                    self.table
                )));
            }
        };
        tracing::debug!(table = %self.table, template = %template.name, version = template.version, stored, "put_template");
        Ok(stored)
    }

    pub(super) async fn read_template(
        &self,
        name: &TemplateName,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        self.get(listing_key(name), "template")
            .await?
            .as_ref()
            .map(template_from_item)
            .transpose()
    }

    pub(super) async fn read_template_version(
        &self,
        name: &TemplateName,
        version: u64,
    ) -> Result<Option<LeaseTemplate>, StoreError> {
        self.get(version_key(name, version), "template version")
            .await?
            .as_ref()
            .map(template_from_item)
            .transpose()
    }

    /// The listing partition, all pages, strongly consistent, in name order.
    pub(super) async fn all_templates(&self) -> Result<Vec<LeaseTemplate>, StoreError> {
        self.partition(TEMPLATES_PK, "templates")
            .await?
            .iter()
            .map(template_from_item)
            .collect()
    }
}
