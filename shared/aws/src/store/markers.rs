//! Markers: a value kept under a key until it expires (which budget
//! thresholds fired this period, which stack operation started when).
//! Taken like claims: one conditional `PutItem` decides between writers.

use chrono::{DateTime, Utc};
use purser_core::StoreError;

use super::items::{self, EXPIRES_AT, PK, VALUE, n, s, unavailable};
use super::{CLAIM_CONDITION, DynamoStore};

impl DynamoStore {
    /// Puts the marker unless an unexpired one stands (TTL may not have
    /// deleted an expired one yet, so the condition compares the expiry).
    pub(super) async fn put_marker(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = items::marker_key(key);
        item.insert(VALUE.to_owned(), s(value));
        item.insert(EXPIRES_AT.to_owned(), n(expires_at.timestamp()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        let kept = match result {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(e) => return Err(unavailable("PutItem (marker)", &self.table, &e)),
        };
        tracing::debug!(table = %self.table, key, kept, "remember");
        Ok(kept)
    }

    /// The marker's value if it has not expired at `now`, read strongly
    /// consistent.
    pub(super) async fn read_marker(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let Some(item) = self.get(items::marker_key(key), "marker").await? else {
            return Ok(None);
        };
        if !items::unexpired(&item, now)? {
            return Ok(None);
        }
        Ok(Some(items::string(&item, VALUE)?.to_owned()))
    }

    /// Deletes the marker; forgetting one that is not there is no error.
    pub(super) async fn delete_marker(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::marker_key(key)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem (marker)", &self.table, &e))?;
        tracing::debug!(table = %self.table, key, "forget");
        Ok(())
    }
}
