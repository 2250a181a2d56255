//! Each port's contract, written once and run against every adapter of that
//! port: a scenario is an `async fn` that drives the port through its trait
//! only, and a macro turns every scenario into a named test of the adapter's
//! own test binary.
//!
//! The [`Store`](purser_core::Store) port's contract is [`store`], run by
//! `SqliteStore`'s unit tests (`shared/local/src/store.rs`) and by
//! `DynamoStore`'s contract tests against moto
//! (`shared/aws/tests/contract/store.rs`):
//!
//! ```ignore
//! async fn fresh() -> Option<purser_contract::store::Fixture> { … }
//!
//! purser_contract::store_contract!(fresh);
//! ```
//!
//! `fresh` makes a store on fresh state for each test (`None` skips the
//! test, as the moto tests do when told to); the calling crate needs tokio
//! with `macros` and `rt-multi-thread`.
//!
//! The other ports' contracts ([`organization`], [`event_bus`],
//! [`lake_sink`], [`member_lambdas`], [`member_resources`], [`identity_center`], [`notifier`]) are run the same
//! way, each by its macro (`organization_contract!`, …), on a fixture with
//! an `Observer` for what the port does not return (or, for
//! `identity_center`, with the users and permission sets made beforehand).

pub mod event_bus;
pub mod identity_center;
pub mod lake_sink;
pub mod member_lambdas;
pub mod member_resources;
pub mod notifier;
pub mod organization;
pub mod running;
pub mod store;

/// One `#[tokio::test]` per scenario of [`store`], each named as its
/// scenario and run on a fresh fixture from `$fresh`, an
/// `async fn() -> Option<store::Fixture>`; the concurrent scenarios run on
/// a multi-threaded runtime.
#[macro_export]
macro_rules! store_contract {
    ($fresh:path) => {
        $crate::__store_scenarios!(__store_tests; $fresh);
    };
}

/// The store's scenarios, listed once: the ones that run on one thread,
/// then the concurrent ones. Passes them to `$then` after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_scenarios {
    ($then:ident; $($args:tt)*) => {
        $crate::$then! {
            $($args)*;
            [
                a_claim_is_taken_once_until_it_expires,
                a_released_claim_can_be_taken_again,
                teams_read_back_as_written_and_unknown_ones_are_none,
                teams_are_listed_in_name_order_once_each,
                an_inserted_account_reads_back_and_counts_as_open,
                requests_count_against_the_team_quota_until_closed,
                a_quota_of_zero_refuses_the_first_request,
                closing_and_failing_give_back_the_teams_quota,
                a_replayed_key_returns_the_first_account_and_a_reused_one_is_refused,
                an_expired_key_can_be_used_again,
                transitions_are_conditional_and_move_the_counters,
                a_write_from_a_revision_no_longer_stored_is_refused,
                at_most_five_creations_are_in_flight,
                accounts_are_found_by_creation_and_by_account_id,
                closures_are_counted_from_when_close_account_was_called,
                a_teams_accounts_are_listed_newest_first_a_page_at_a_time,
                every_teams_accounts_are_listed_once_across_pages,
                a_mangled_page_token_is_refused,
                accounts_in_a_state_come_oldest_first,
                a_batch_recorded_twice_adds_once,
                spend_sums_per_team_account_and_day_across_batches,
                spend_ranges_are_inclusive_and_ordered,
                function_spend_is_counted_once_and_listed_costliest_first,
                a_range_of_99_days_reads_back_whole_and_in_order,
                hourly_spend_is_counted_once_per_account_and_resource,
                a_marker_is_remembered_once_recalled_until_it_expires_and_forgotten,
                markers_and_claims_do_not_share_keys,
                a_budget_is_stored_revision_after_revision_and_a_stale_one_refused,
                every_teams_budget_is_listed_in_team_order,
                a_settlement_is_replaced_by_a_later_one_only,
                deployments_are_kept_once_each_and_listed_newest_first,
                a_template_is_stored_version_after_version_and_each_kept,
                templates_are_listed_latest_version_in_name_order,
                a_pending_request_counts_against_the_quota_until_approved_or_closed,
                a_pooled_account_counts_for_no_team_and_its_newest_holder_is_found,
            ]
            [
                of_concurrent_claims_exactly_one_wins,
                of_8_concurrent_requests_against_quota_3_exactly_3_are_created,
                of_6_concurrent_creations_exactly_5_get_a_slot,
                concurrent_replays_of_one_key_create_one_account,
                of_8_concurrent_recordings_of_one_batch_one_adds,
                of_8_concurrent_changes_from_one_revision_one_is_stored,
                of_8_concurrent_claims_of_one_account_revision_one_applies,
                of_8_concurrent_changes_of_one_template_version_one_is_stored,
            ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests {
    ($fresh:path; [$($one:ident),* $(,)?] [$($many:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $one() {
                let Some(fixture) = $fresh().await else {
                    return;
                };
                $crate::store::$one(&fixture).await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $many() {
                let Some(fixture) = $fresh().await else {
                    return;
                };
                $crate::store::$many(&fixture).await;
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_names {
    (; [$($one:ident),* $(,)?] [$($many:ident),* $(,)?]) => {
        &[$(stringify!($one),)* $(stringify!($many),)*]
    };
}

/// The names of the store's scenarios, as `store_contract!` runs them.
pub const STORE_SCENARIOS: &[&str] = __store_scenarios!(__scenario_names;);

/// One `#[tokio::test]` per scenario of `$module`, each named as its
/// scenario and run on a fresh fixture from `$fresh` (`None` skips it).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    ($module:ident, $fresh:path; [$($scenario:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let Some(fixture) = $fresh().await else {
                    return;
                };
                $crate::$module::$scenario(&fixture).await;
            }
        )*
    };
}

/// The names of a list of scenarios.
#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_list {
    (; [$($scenario:ident),* $(,)?]) => {
        &[$(stringify!($scenario),)*]
    };
}

/// Every `pub async fn` of a contract module's `source` is listed once in
/// `listed`, and nothing else is: a scenario missing from its macro's list
/// would silently never run.
#[cfg(test)]
pub(crate) fn assert_every_scenario_listed(source: &str, listed: &[&str]) {
    use std::collections::BTreeSet;
    let defined: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .map(|rest| rest.split(['<', '(']).next().unwrap_or(rest))
        .collect();
    let names: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(names.len(), listed.len(), "listed twice");
    assert_eq!(defined.iter().copied().collect::<BTreeSet<_>>(), names);
    assert_eq!(defined.len(), names.len(), "defined twice");
}

#[cfg(test)]
mod tests {
    /// Every scenario of `store` runs, once.
    #[test]
    fn the_macro_runs_every_scenario_once() {
        crate::assert_every_scenario_listed(include_str!("store.rs"), super::STORE_SCENARIOS);
    }
}
