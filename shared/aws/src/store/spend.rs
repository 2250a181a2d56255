//! Spend counters: a team's and an account's spend per day, added by
//! `record_spend_once` in one transaction with the claim of the batch they
//! come from, so a batch delivered twice (or twice at once) adds once.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};
use purser_core::{SpendAdd, StoreError, TeamName};

use super::items::{self, EXPIRES_AT, Item, NANOS, PK, SK, SPEND_TEAM, n, s, unavailable};
use super::transact::{Reason, Transacted};
use super::{CLAIM_CONDITION, DynamoStore, claim_item};

/// `TransactWriteItems` takes at most 100 items, one of which is the claim.
/// A batch spans a few days of one account: a few counters, far below this.
pub(super) const MAX_COUNTERS: usize = 99;

/// A counter an add moves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Counter<'a> {
    Team(&'a TeamName, NaiveDate),
    Account(&'a str, NaiveDate),
}

/// What one counter receives from a batch: the sum of its adds and, for an
/// account's counter, its team when Purser knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sum<'a> {
    nanos: i64,
    team: Option<&'a TeamName>,
}

/// The adds summed per counter: a transaction may not touch one item twice.
/// In key order, so concurrent batches write their counters in one order.
fn merge(adds: &[SpendAdd]) -> Result<BTreeMap<Counter<'_>, Sum<'_>>, StoreError> {
    let mut sums = BTreeMap::new();
    for a in adds {
        if let Some(team) = &a.team {
            add_to_sum(&mut sums, Counter::Team(team, a.day), a.nanos, None)?;
        }
        add_to_sum(
            &mut sums,
            Counter::Account(&a.account_id, a.day),
            a.nanos,
            a.team.as_ref(),
        )?;
    }
    Ok(sums)
}

fn add_to_sum<'a>(
    sums: &mut BTreeMap<Counter<'a>, Sum<'a>>,
    counter: Counter<'a>,
    nanos: i64,
    team: Option<&'a TeamName>,
) -> Result<(), StoreError> {
    let description = format!("{counter:?}");
    let sum = sums.entry(counter).or_insert(Sum {
        nanos: 0,
        team: None,
    });
    sum.nanos = sum.nanos.checked_add(nanos).ok_or_else(|| {
        StoreError::Unavailable(format!(
            "the spend of {description} overflows 64 bits of nano-units in one batch"
        ))
    })?;
    sum.team = sum.team.or(team);
    Ok(())
}

impl DynamoStore {
    /// One transaction: the claim first (so that its refusal is the one
    /// read), then an `ADD` per counter. Refused only by the claim's
    /// condition: the counters have none.
    pub(super) async fn add_spend_once(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        adds: &[SpendAdd],
    ) -> Result<bool, StoreError> {
        let sums = merge(adds)?;
        if sums.len() > MAX_COUNTERS {
            return Err(StoreError::Unavailable(format!(
                "record_spend_once of key {key}: the batch moves {} spend counters; one \
                 transaction moves at most {MAX_COUNTERS} (split the batch by day)",
                sums.len()
            )));
        }
        let mut transaction = Vec::with_capacity(sums.len() + 1);
        transaction.push(self.put_claim(key, now, expires_at)?);
        for (counter, sum) in &sums {
            transaction.push(self.add_to(counter, sum)?);
        }
        let counters = sums.len();
        match self.transact("record_spend_once", transaction).await? {
            Transacted::Committed => {
                tracing::debug!(table = %self.table, key, counters, recorded = true, "record_spend_once");
                Ok(true)
            }
            Transacted::Refused(reasons) => match reasons.first() {
                Some(Reason::ConditionFailed(_)) => {
                    tracing::debug!(table = %self.table, key, counters, recorded = false, "record_spend_once");
                    Ok(false)
                }
                _ => Err(StoreError::Unavailable(format!(
                    "TransactWriteItems (record_spend_once) on table {}: refused for no \
                     condition Purser set: {reasons:?}",
                    self.table
                ))),
            },
        }
    }

    /// The counters of the partition `pk` from `from` to `to`, inclusive,
    /// in day order, all pages, read strongly consistent.
    pub(super) async fn spend_between(
        &self,
        pk: String,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        if from > to {
            // DynamoDB refuses a BETWEEN whose bounds are reversed.
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(items::day_sort_key(from)))
                .expression_attribute_values(":to", s(items::day_sort_key(to)))
                .consistent_read(true)
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Query (spend)", &self.table, &e))?;
            for item in output.items() {
                found.push(items::spend_from_item(item)?);
            }
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(found),
            }
        }
    }

    /// The claim of `key`, on `claim_once`'s condition.
    fn put_claim(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(claim_item(key, expires_at)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()));
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// `ADD` of a sum to its counter (which `ADD` creates at zero), and the
    /// account's team when known.
    fn add_to(
        &self,
        counter: &Counter<'_>,
        sum: &Sum<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let key: Item = match counter {
            Counter::Team(team, day) => items::team_spend_key(team, *day),
            Counter::Account(account_id, day) => items::account_spend_key(account_id, *day),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_names("#nanos", NANOS)
            .expression_attribute_values(":nanos", n(sum.nanos));
        update = match sum.team {
            Some(team) => update
                .update_expression("ADD #nanos :nanos SET #team = :team")
                .expression_attribute_names("#team", SPEND_TEAM)
                .expression_attribute_values(":team", s(team.as_str())),
            None => update.update_expression("ADD #nanos :nanos"),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

/// A request the SDK would not build lacks a required field: a bug here,
/// reported rather than unwrapped.
fn built<T>(result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Unavailable(format!("a DynamoDB request is incomplete: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(name: &str) -> TeamName {
        TeamName::parse(name).unwrap()
    }

    fn day(d: &str) -> NaiveDate {
        NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
    }

    fn add(team: Option<&TeamName>, account: &str, d: &str, nanos: i64) -> SpendAdd {
        SpendAdd {
            team: team.cloned(),
            account_id: account.into(),
            day: day(d),
            nanos,
        }
    }

    #[test]
    fn adds_to_one_counter_are_summed_before_they_are_sent() {
        let payments = team("payments");
        let adds = [
            add(Some(&payments), "111111111111", "2026-11-21", 5),
            add(Some(&payments), "111111111111", "2026-11-21", 7),
            add(Some(&payments), "222222222222", "2026-11-21", 1),
            add(None, "333333333333", "2026-11-22", 2),
        ];
        let sums = merge(&adds).unwrap();
        let nanos: Vec<_> = sums.iter().map(|(c, s)| (c.clone(), s.nanos)).collect();
        assert_eq!(
            nanos,
            [
                (Counter::Team(&payments, day("2026-11-21")), 13),
                (Counter::Account("111111111111", day("2026-11-21")), 12),
                (Counter::Account("222222222222", day("2026-11-21")), 1),
                (Counter::Account("333333333333", day("2026-11-22")), 2),
            ]
        );
        assert_eq!(
            sums[&Counter::Account("111111111111", day("2026-11-21"))].team,
            Some(&payments)
        );
        assert_eq!(
            sums[&Counter::Account("333333333333", day("2026-11-22"))].team,
            None,
            "an unknown account's counter names no team"
        );
        assert!(
            sums[&Counter::Team(&payments, day("2026-11-21"))]
                .team
                .is_none()
        );
    }

    #[test]
    fn a_sum_that_overflows_is_refused() {
        let adds = [
            add(None, "111111111111", "2026-11-21", i64::MAX),
            add(None, "111111111111", "2026-11-21", 1),
        ];
        assert!(matches!(merge(&adds), Err(StoreError::Unavailable(m)) if m.contains("overflows")));
    }
}
