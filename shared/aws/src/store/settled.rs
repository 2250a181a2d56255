//! Teams' settled spend: one item per team and month in the team's
//! partition, replaced whole by a `PutItem` conditioned on its settlement
//! time, so a slow run never overwrites what a later one settled.

use std::collections::HashMap;

use purser_core::spend::SettledSpend;
use purser_core::{StoreError, TeamName};

use super::DynamoStore;
use super::items::{self, DATA, Item, PK, SETTLED_AT, SK, n, s, unavailable};

/// The settlement's key: `TEAM#<team>`, `SETTLED#<YYYY-MM>`.
fn settled_key(team: &TeamName, period: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(items::team_partition(team))),
        (
            SK.to_owned(),
            s(format!("{}{period}", items::SETTLED_PREFIX)),
        ),
    ])
}

impl DynamoStore {
    pub(super) async fn write_settled_spend(
        &self,
        settled: &SettledSpend,
    ) -> Result<bool, StoreError> {
        let data = serde_json::to_string(settled).map_err(|e| {
            StoreError::Corrupt(format!(
                "the settled spend of team {} cannot be written: {e}",
                settled.team
            ))
        })?;
        let mut item = settled_key(&settled.team, &settled.period);
        item.insert(
            SETTLED_AT.to_owned(),
            n(settled.settled_at.timestamp_millis()),
        );
        item.insert(DATA.to_owned(), s(data));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #settled_at <= :settled_at")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#settled_at", SETTLED_AT)
            .expression_attribute_values(":settled_at", n(settled.settled_at.timestamp_millis()))
            .send()
            .await;
        let stored = match result {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(e) => return Err(unavailable("PutItem (settled spend)", &self.table, &e)),
        };
        tracing::debug!(table = %self.table, team = %settled.team, period = settled.period, stored, "put_settled_spend");
        Ok(stored)
    }

    pub(super) async fn read_settled_spend(
        &self,
        team: &TeamName,
        period: &str,
    ) -> Result<Option<SettledSpend>, StoreError> {
        let Some(item) = self.get(settled_key(team, period), "settled spend").await? else {
            return Ok(None);
        };
        let settled: SettledSpend =
            serde_json::from_str(items::string(&item, DATA)?).map_err(|e| {
                StoreError::Corrupt(format!(
                    "the settled spend of team {team} for {period} cannot be read: {e}"
                ))
            })?;
        if settled.team != *team || settled.period != period {
            return Err(StoreError::Corrupt(format!(
                "the item of team {team} for {period} holds team {}'s spend for {}",
                settled.team, settled.period
            )));
        }
        Ok(Some(settled))
    }
}
