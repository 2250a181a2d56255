//! Spend counters: a team's and an account's spend per day, and a team's
//! per function of an account and month, added by `record_spend_once` (or
//! `record_function_spend_once`) in one transaction with the claim of the
//! batch they come from, so a batch delivered twice (or twice at once) adds
//! once.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use purser_core::ports::HOURLY_KEPT_DAYS;
use purser_core::{FunctionSpend, HourlySpend, RateAdd, SpendAdd, StoreError, TeamName};

use super::items::{
    self, ACCOUNT_ID, EXPIRES_AT, FUNCTION, Item, NANOS, PK, SK, SPEND_TEAM, n, s, unavailable,
};
use super::transact::{Reason, Transacted, built};
use super::{CLAIM_CONDITION, DynamoStore, claim_item};

/// `TransactWriteItems` takes at most 100 items, one of which is the claim.
/// A batch spans a few days of one account: a few counters, far below this.
/// The recorder's batches span at most 42 days (reports 40 days old to 5
/// minutes ahead), so at most 42 team, 42 account and 3 function counters.
pub(super) const MAX_COUNTERS: usize = 99;

/// A counter an add moves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Counter<'a> {
    Team(&'a TeamName, NaiveDate),
    Account(&'a str, NaiveDate),
    /// A team's function of an account, in the month of the first day.
    Function {
        team: &'a TeamName,
        month: NaiveDate,
        account_id: &'a str,
        function: &'a str,
    },
    /// An account's (`resource: None`) or its resource's spend in an hour.
    Hourly {
        account_id: &'a str,
        hour: DateTime<Utc>,
        resource: Option<&'a str>,
    },
}

/// `YYYY-MM`, as function counters' partitions name a month.
fn period(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
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
/// With a function, each add of a known team also adds to the team's
/// counter of that function of its account, in its month.
fn merge<'a>(
    adds: &'a [SpendAdd],
    function: Option<&'a str>,
    rates: &'a [RateAdd],
) -> Result<BTreeMap<Counter<'a>, Sum<'a>>, StoreError> {
    let mut sums = BTreeMap::new();
    for r in rates {
        let own = Counter::Hourly {
            account_id: &r.account_id,
            hour: r.hour,
            resource: None,
        };
        add_to_sum(&mut sums, own, r.nanos, None)?;
        if let Some(resource) = &r.resource {
            let counter = Counter::Hourly {
                account_id: &r.account_id,
                hour: r.hour,
                resource: Some(resource),
            };
            add_to_sum(&mut sums, counter, r.nanos, None)?;
        }
    }
    for a in adds {
        if let Some(team) = &a.team {
            add_to_sum(&mut sums, Counter::Team(team, a.day), a.nanos, None)?;
            if let Some(function) = function {
                let month = a.day.with_day(1).unwrap_or(a.day);
                let counter = Counter::Function {
                    team,
                    month,
                    account_id: &a.account_id,
                    function,
                };
                add_to_sum(&mut sums, counter, a.nanos, None)?;
            }
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
        function: Option<&str>,
        adds: &[SpendAdd],
        rates: &[RateAdd],
    ) -> Result<bool, StoreError> {
        let sums = merge(adds, function, rates)?;
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
        let (low, high) = (items::day_sort_key(from), items::day_sort_key(to));
        self.sort_range(&pk, &low, &high, "Query (spend)", items::spend_from_item)
            .await
    }

    /// An account's hourly counters from `from` to `to` (whole hours), all
    /// pages, strongly consistent: the runaway guard reads an hour or two,
    /// or a week of one account.
    pub(super) async fn hourly_between(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlySpend>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let pk = items::hourly_spend_partition(account_id);
        let (low, high) = items::hourly_sort_range(from, to);
        self.sort_range(
            &pk,
            &low,
            &high,
            "Query (hourly spend)",
            items::hourly_spend_from_item,
        )
        .await
    }

    /// The items of partition `pk` whose sort key is from `low` to `high`,
    /// in sort key order, all pages, read strongly consistent, each read
    /// by `read`.
    async fn sort_range<T>(
        &self,
        pk: &str,
        low: &str,
        high: &str,
        what: &str,
        read: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
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
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":from", s(low))
                .expression_attribute_values(":to", s(high))
                .consistent_read(true)
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(what, &self.table, &e))?;
            for item in output.items() {
                found.push(read(item)?);
            }
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(found),
            }
        }
    }

    /// The team's function counters of `period`: the whole partition (all
    /// pages, strongly consistent; a team runs tens or hundreds of
    /// functions, not millions), the costliest `limit` of them.
    pub(super) async fn top_functions(
        &self,
        team: &TeamName,
        period: &str,
        limit: usize,
    ) -> Result<Vec<FunctionSpend>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pk = items::function_spend_partition(team, period);
        let found = self
            .partition(&pk, "function spend")
            .await?
            .iter()
            .map(items::function_spend_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(costliest(found, limit))
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
            Counter::Function {
                team,
                month,
                account_id,
                function,
            } => items::function_spend_key(team, &period(*month), account_id, function),
            Counter::Hourly {
                account_id,
                hour,
                resource,
            } => items::hourly_spend_key(account_id, *hour, *resource),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_names("#nanos", NANOS)
            .expression_attribute_values(":nanos", n(sum.nanos));
        update = match (counter, sum.team) {
            // What reads take, and the TTL: a week and a day after the hour.
            (
                Counter::Hourly {
                    hour, resource, ..
                },
                _,
            ) => update
                .update_expression(
                    "ADD #nanos :nanos SET #hour = :hour, #resource = :resource, #expires_at = :expires_at",
                )
                .expression_attribute_names("#hour", items::HOUR)
                .expression_attribute_names("#resource", items::RESOURCE)
                .expression_attribute_names("#expires_at", EXPIRES_AT)
                .expression_attribute_values(":hour", s(items::hour_text(*hour)))
                .expression_attribute_values(":resource", s(resource.unwrap_or_default()))
                .expression_attribute_values(
                    ":expires_at",
                    n((*hour + chrono::Duration::days(HOURLY_KEPT_DAYS)).timestamp()),
                ),
            // What reads take, beside the key they never parse.
            (
                Counter::Function {
                    account_id,
                    function,
                    ..
                },
                _,
            ) => update
                .update_expression(
                    "ADD #nanos :nanos SET #account_id = :account_id, #function = :function",
                )
                .expression_attribute_names("#account_id", ACCOUNT_ID)
                .expression_attribute_names("#function", FUNCTION)
                .expression_attribute_values(":account_id", s(*account_id))
                .expression_attribute_values(":function", s(*function)),
            (_, Some(team)) => update
                .update_expression("ADD #nanos :nanos SET #team = :team")
                .expression_attribute_names("#team", SPEND_TEAM)
                .expression_attribute_values(":team", s(team.as_str())),
            (_, None) => update.update_expression("ADD #nanos :nanos"),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

/// The costliest `limit` counters, by nanos descending, then account id
/// and function name (as SQLite orders them).
fn costliest(mut found: Vec<FunctionSpend>, limit: usize) -> Vec<FunctionSpend> {
    found.sort_by(|a, b| {
        b.nanos
            .cmp(&a.nanos)
            .then_with(|| a.account_id.cmp(&b.account_id))
            .then_with(|| a.function.cmp(&b.function))
    });
    found.truncate(limit);
    found
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
        let sums = merge(&adds, None, &[]).unwrap();
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
        assert!(
            matches!(merge(&adds, None, &[]), Err(StoreError::Unavailable(m)) if m.contains("overflows"))
        );
    }

    #[test]
    fn a_functions_counters_are_a_known_teams_per_account_and_month() {
        let payments = team("payments");
        let adds = [
            add(Some(&payments), "111111111111", "2026-11-29", 5),
            add(Some(&payments), "111111111111", "2026-11-30", 7),
            add(Some(&payments), "111111111111", "2026-12-01", 1),
            add(Some(&payments), "222222222222", "2026-12-01", 2),
            add(None, "333333333333", "2026-12-01", 100),
        ];
        let sums = merge(&adds, Some("checkout"), &[]).unwrap();
        let functions: Vec<_> = sums
            .iter()
            .filter_map(|(c, s)| match c {
                Counter::Function {
                    team,
                    month,
                    account_id,
                    function,
                } => Some((
                    team.as_str(),
                    period(*month),
                    *account_id,
                    *function,
                    s.nanos,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            functions,
            [
                ("payments", "2026-11".into(), "111111111111", "checkout", 12),
                ("payments", "2026-12".into(), "111111111111", "checkout", 1),
                ("payments", "2026-12".into(), "222222222222", "checkout", 2),
            ],
            "an unknown account's spend counts for no team's function"
        );
        assert_eq!(
            merge(&adds, None, &[]).unwrap().len() + 3,
            sums.len(),
            "the day counters are as without a function"
        );
    }

    #[test]
    fn the_recorders_widest_batch_fits_one_transaction() {
        // Reports from 40 days before to 5 minutes after 23:58 on the 2nd
        // of a month: 42 days over three months, of one known account.
        let payments = team("payments");
        let last = day("2026-03-03");
        let adds: Vec<SpendAdd> = (0..42)
            .map(|i| SpendAdd {
                team: Some(payments.clone()),
                account_id: "111111111111".into(),
                day: last - chrono::Duration::days(i),
                nanos: 1,
            })
            .collect();
        let longest_name = "f".repeat(purser_core::ports::MAX_FUNCTION_NAME);
        let sums = merge(&adds, Some(&longest_name), &[]).unwrap();
        assert_eq!(sums.len(), 42 + 42 + 3);
        assert!(sums.len() <= MAX_COUNTERS);
    }

    #[test]
    fn the_costliest_functions_come_first_and_ties_by_account_and_name() {
        let spend = |account: &str, function: &str, nanos| FunctionSpend {
            account_id: account.into(),
            function: function.into(),
            nanos,
        };
        let found = vec![
            spend("2", "a", 5),
            spend("1", "b", 5),
            spend("1", "a", 5),
            spend("3", "z", 9),
            spend("1", "c", 1),
        ];
        assert_eq!(
            costliest(found.clone(), 3),
            [spend("3", "z", 9), spend("1", "a", 5), spend("1", "b", 5)]
        );
        assert_eq!(costliest(found.clone(), 10).len(), 5);
        assert!(costliest(found, 0).is_empty());
    }
}
