//! Teams and their counter of open accounts.

use purser_core::{StoreError, Team, TeamName};

use super::DynamoStore;
use super::items::{self, Item, OPEN, unavailable};

impl DynamoStore {
    /// Replaces the team's settings; its counters are other items, which
    /// this leaves alone.
    pub(super) async fn write_team(&self, team: &Team) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::team_item(team)?))
            .send()
            .await
            .map_err(|e| unavailable("PutItem (team)", &self.table, &e))?;
        tracing::debug!(table = %self.table, team = %team.name, quota = team.quota, "team written");
        Ok(())
    }

    pub(super) async fn read_team(&self, name: &TeamName) -> Result<Option<Team>, StoreError> {
        self.get(items::team_key(name), "team")
            .await?
            .as_ref()
            .map(items::team_from_item)
            .transpose()
    }

    /// The counter `insert_account` and `transition` keep, read strongly
    /// consistent: what the next insert's condition will see.
    pub(super) async fn open_counter(&self, team: &TeamName) -> Result<u32, StoreError> {
        let item = self.get(items::counters_key(team), "team counters").await?;
        items::counter(item.as_ref(), OPEN)
    }

    /// A strongly consistent `GetItem`: Purser reads its own writes.
    pub(super) async fn get(&self, key: Item, what: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem ({what})"), &self.table, &e))?;
        Ok(output.item)
    }
}
