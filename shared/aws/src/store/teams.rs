//! Teams, their listing and their counter of open accounts.
//!
//! A team's item sits in its own partition (`TEAM#<team>`), beside its
//! counters and budget. To list the teams without scanning the table, each
//! team has a copy in one partition, `TEAMS`, written in the same
//! transaction as the team's item, so the two never differ and a listing
//! is one `Query` in name order with no second read per team. Team writes
//! are rare (an admin's), so the one partition is never hot.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use purser_core::{StoreError, Team, TeamName};

use super::DynamoStore;
use super::items::{self, Item, OPEN, TEAMS_PK, unavailable};
use super::transact::{Transacted, built};

impl DynamoStore {
    /// Replaces the team's settings and its listing copy, in one
    /// transaction; its counters are other items, which this leaves alone.
    pub(super) async fn write_team(&self, team: &Team) -> Result<(), StoreError> {
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build(),
            )?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let transaction = vec![
            put(items::team_item(team)?)?,
            put(items::team_listing_item(team)?)?,
        ];
        match self.transact("put_team", transaction).await? {
            Transacted::Committed => {}
            Transacted::Refused(reasons) => {
                return Err(StoreError::Unavailable(format!(
                    "TransactWriteItems (put_team) on table {}: refused for no condition \
                     Purser set: {reasons:?}",
                    self.table
                )));
            }
        }
        tracing::debug!(table = %self.table, team = %team.name, quota = team.quota, "team written");
        Ok(())
    }

    /// Every team, from the listing partition: all pages, strongly
    /// consistent, in the sort key's order (`TEAM#<team>`), which is the
    /// names'. Teams written before the listing copies existed are listed
    /// once they are written again.
    pub(super) async fn all_teams(&self) -> Result<Vec<Team>, StoreError> {
        let teams = self
            .partition(TEAMS_PK, "teams")
            .await?
            .iter()
            .map(items::team_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(table = %self.table, teams = teams.len(), "teams");
        Ok(teams)
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
