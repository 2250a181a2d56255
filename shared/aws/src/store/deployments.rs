//! The recent deployments of teams' accounts: one item per mark in the
//! team's partition `DEPLOYMENTS#<team>`, sorted by `<at>#<id>`, so the
//! newest are one `Query` read backwards. A mark is keyed by what it is, so
//! writing it again (a redelivered event) puts the same item, and it
//! carries `expires_at` for TTL to delete it `DEPLOYMENTS_KEPT` after it.

use chrono::{DateTime, Utc};
use purser_core::{DeploymentMark, StoreError, TeamName};

use super::DynamoStore;
use super::items::{self, Item, PK, SK, s, unavailable};

impl DynamoStore {
    /// One unconditional `PutItem`: every write of a mark is the same item.
    pub(super) async fn put_deployment(&self, mark: &DeploymentMark) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::deployment_item(mark)))
            .send()
            .await
            .map_err(|e| unavailable("PutItem (deployment)", &self.table, &e))?;
        tracing::debug!(table = %self.table, team = %mark.team, id = mark.id, "deployment marked");
        Ok(())
    }

    /// The team's marks from `since` on, newest first, page after page
    /// until `limit` are read, strongly consistent. Marks TTL has not
    /// deleted yet are listed as the others: they are only older than
    /// `DEPLOYMENTS_KEPT`, which callers asking that far back accept.
    pub(super) async fn deployments_since(
        &self,
        team: &TeamName,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DeploymentMark>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < limit {
            let wanted = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk >= :since")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(items::deployments_partition(team)))
                // `<at>` alone sorts before every `<at>#<id>`: `since` is
                // inclusive.
                .expression_attribute_values(":since", s(items::sortable_nanos(since)))
                .consistent_read(true)
                .scan_index_forward(false)
                .limit(wanted)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query (deployments)", &self.table, &e))?;
            for item in output.items() {
                found.push(items::deployment_from_item(item)?);
            }
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}
