//! Teams' budgets: one item per team, next to its settings in the team's
//! partition, replaced whole by a conditional `PutItem` on its revision so
//! that of two changes made from the same revision one is stored.

use purser_core::budgets::Budget;
use purser_core::{StoreError, TeamName};

use super::DynamoStore;
use super::items::{self, BUDGET_SK, Item, PK, REVISION, SK, n, s, unavailable};

/// What must stand for revision `revision` to be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    /// Revision 1: no budget yet.
    NoBudget,
    /// A later one: the revision before it.
    Revision(u64),
    /// Revision 0, which no stored budget can precede.
    Impossible,
}

impl Precondition {
    fn of(revision: u64) -> Self {
        match revision {
            0 => Self::Impossible,
            1 => Self::NoBudget,
            r => Self::Revision(r - 1),
        }
    }
}

impl DynamoStore {
    /// Replaces the team's budget if its stored revision is the one before
    /// `budget.revision` (or, for revision 1, if it has none). A refused
    /// condition is the answer `false`: another change came first.
    pub(super) async fn write_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::budget_item(budget)?));
        let put = match Precondition::of(budget.revision) {
            Precondition::NoBudget => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Precondition::Revision(previous) => put
                .condition_expression("#revision = :previous")
                .expression_attribute_names("#revision", REVISION)
                .expression_attribute_values(":previous", n(previous)),
            Precondition::Impossible => {
                tracing::debug!(table = %self.table, team = %budget.team, revision = 0, stored = false, "put_budget");
                return Ok(false);
            }
        };
        let stored = match put.send().await {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(e) => return Err(unavailable("PutItem (budget)", &self.table, &e)),
        };
        tracing::debug!(table = %self.table, team = %budget.team, revision = budget.revision, stored, "put_budget");
        Ok(stored)
    }

    /// The team's budget, read strongly consistent: what the next
    /// `put_budget`'s condition will see.
    pub(super) async fn read_budget(&self, team: &TeamName) -> Result<Option<Budget>, StoreError> {
        self.get(items::budget_key(team), "budget")
            .await?
            .as_ref()
            .map(items::budget_from_item)
            .transpose()
    }

    /// Every team's budget, by a scan of the table filtered on the sort key
    /// (all pages, strongly consistent), in team order. Budgets are few, one
    /// per team, and this runs at the start of a period.
    pub(super) async fn all_budgets(&self) -> Result<Vec<Budget>, StoreError> {
        let mut budgets = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :budget")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":budget", s(BUDGET_SK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Scan (budgets)", &self.table, &e))?;
            for item in output.items() {
                budgets.push(items::budget_from_item(item)?);
            }
            match output.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        budgets.sort_by(|a, b| a.team.as_str().cmp(b.team.as_str()));
        tracing::debug!(table = %self.table, budgets = budgets.len(), "budgets");
        Ok(budgets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_revision_needs_no_budget_and_the_next_its_predecessor() {
        assert_eq!(Precondition::of(0), Precondition::Impossible);
        assert_eq!(Precondition::of(1), Precondition::NoBudget);
        assert_eq!(Precondition::of(2), Precondition::Revision(1));
        assert_eq!(
            Precondition::of(u64::MAX),
            Precondition::Revision(u64::MAX - 1)
        );
    }
}
