//! `throttle-lambdas` end to end on the embedded backends: a team's
//! functions (one deployed with a reserved concurrency, one known from its
//! invocation reports) are throttled to 0 when the team goes over a budget
//! that asks for it, alongside the freeze; what they had is remembered, and
//! a raised budget gives it back. As a property, whatever the order and
//! repetition of evaluations and budget changes, the original settings come
//! back. The events archived meanwhile validate against their schemas.

use std::collections::BTreeMap;

use crate::common::local::{REGION, start};
use proptest::prelude::*;
use purser_core::TeamName;
use purser_core::budgets::Budget;
use purser_core::ports::{Marker, SpendAdd};
use serde_json::{Value, json};

fn validator(name: &str) -> jsonschema::Validator {
    let path = format!("{}/infra/schemas/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn names(detail: &Value) -> Vec<&str> {
    detail["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_budget_throttles_the_team_s_functions_and_a_raised_budget_restores_them() {
    let local = start().await;
    let (id, account) = local.ready_account().await;
    // A function deployed with a reserved concurrency of its own, and one
    // that Purser knows only from its invocation reports.
    local
        .running
        .lambdas()
        .create_function(&account, REGION, "steady", Some(5))
        .await
        .unwrap();
    let (status, budget) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "1.00", "thresholds": [50, 100],
            "actions": {"50": ["notify"], "100": ["notify", "freeze", "throttle-lambdas"]}})),
        )
        .await;
    assert_eq!(status, 200, "{budget}");

    local.report(&account, "runaway", "b1", 4).await; // 0.48: under
    local
        .until("the reporting function is known", async |l| {
            l.functions(&account).len() == 2
        })
        .await;
    assert_eq!(
        local.functions(&account),
        [
            ("runaway".to_string(), None),
            ("steady".to_string(), Some(5))
        ]
    );

    local.report(&account, "runaway", "b2", 5).await; // 1.08: over
    local
        .until("the functions are throttled", async |l| {
            l.functions(&account).iter().all(|(_, c)| *c == Some(0))
        })
        .await;
    local
        .until("the account is frozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "frozen"
        })
        .await;
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    assert_eq!(view["throttled"], 2, "{view}");
    assert_eq!(view["frozen"], true);
    let throttled = local.archived("LambdasThrottled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(names(&throttled[0]), ["runaway", "steady"]);
    assert_eq!(throttled[0]["account_id"], account.as_str());
    assert_eq!(throttled[0]["request_id"], id.as_str());
    assert_eq!(
        throttled[0]["functions"][1]["previous_reserved_concurrency"],
        5
    );

    // Evaluated again (an hourly run, a redelivery): the originals stand,
    // nothing is announced twice.
    let budgets = local.running.ports().budgets();
    let team = TeamName::parse("payments").unwrap();
    budgets.evaluate(&team).await.unwrap();
    budgets.evaluate(&team).await.unwrap();
    assert_eq!(local.archived("LambdasThrottled").len(), 1);

    // Raising the budget above spend gives every function what it had.
    let (status, _) = local
        .call(
            "PUT",
            "/teams/payments/budget",
            Some(json!({"amount": "5", "actions": {"100": ["notify", "freeze", "throttle-lambdas"]}})),
        )
        .await;
    assert_eq!(status, 200);
    local
        .until("the functions are restored", async |l| {
            l.functions(&account)
                == [
                    ("runaway".to_string(), None),
                    ("steady".to_string(), Some(5)),
                ]
        })
        .await;
    local
        .until("the account is unfrozen", async |l| {
            l.call("GET", &format!("/accounts/{id}"), None).await.1["state"] == "ready"
        })
        .await;
    local
        .until("the restoration is announced", async |l| {
            l.archived("LambdasRestored").len() == 1
        })
        .await;
    let restored = local.archived("LambdasRestored");
    assert_eq!(names(&restored[0]), ["runaway", "steady"]);
    assert_eq!(restored[0]["functions"][1]["reserved_concurrency"], 5);
    assert_eq!(
        restored[0]["functions"][0]["reserved_concurrency"],
        Value::Null
    );
    let (_, view) = local.call("GET", "/teams/payments/budget", None).await;
    assert_eq!(view["throttled"], 0);

    for (name, details) in [
        ("LambdasThrottled", throttled),
        ("LambdasRestored", restored),
    ] {
        let validator = validator(name);
        for detail in details {
            let errors: Vec<String> = validator
                .iter_errors(&detail)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{name} {detail}: {errors:?}");
        }
    }
    local.running.shutdown().await;
}

/// A step of the world: the budget set over or under spend, an
/// evaluation (as `TeamSpendUpdated`, `BudgetChanged` or the hourly
/// schedule make one, in any order and as often), a function deployed or
/// deleted by the team.
#[derive(Debug, Clone)]
enum Step {
    Budget { over: bool },
    Evaluate,
    Deploy { reserved: Option<u32> },
    Delete { function: usize },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            any::<bool>().prop_map(|over| Step::Budget { over }),
            Just(Step::Evaluate),
            Just(Step::Evaluate),
            prop::option::of(0u32..20).prop_map(|reserved| Step::Deploy { reserved }),
            (0usize..4).prop_map(|function| Step::Delete { function }),
        ],
        1..16,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the order and repetition of evaluations and budget
    /// changes, with functions coming and going: while the team is over
    /// budget every function is at 0 after an evaluation, and once it is
    /// under, every function has the setting the team gave it.
    #[test]
    fn evaluations_in_any_order_never_lose_an_original(steps in steps()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let local = start().await;
            let (_, account) = local.ready_account().await;
            let ports = local.running.ports().clone();
            let budgets = ports.budgets();
            let team = TeamName::parse("payments").unwrap();
            // $0.02 spent: 1 % of $1 is crossed, 100 % is not. Budgets are
            // written to the store directly, so no BudgetChanged starts an
            // evaluation this test does not order.
            let add = SpendAdd { team: Some(team.clone()), account_id: account.clone(), day: local.now().date_naive(), nanos: 20_000_000 };
            ports.store.record_spend_once(&Marker::SpendBatch { account_id: account.clone(), batch_id: "spend".into() }, local.now(), local.now() + chrono::Duration::days(1), &[add], &[]).await.unwrap();
            let set_budget = async |over: bool| {
                let threshold = if over { 1 } else { 100 };
                let body = json!({"amount": "1", "thresholds": [threshold], "actions": {threshold.to_string(): ["throttle-lambdas"]}});
                let mut budget = Budget::from_json(team.clone(), &body, local.now()).unwrap();
                budget.revision = ports.store.budget(&team).await.unwrap().map_or(1, |b| b.revision + 1);
                assert!(ports.store.put_budget(&budget).await.unwrap());
            };
            // What the team deployed, by function.
            let mut expected: BTreeMap<String, Option<u32>> = BTreeMap::new();
            let mut over = false;
            let sim = local.running.lambdas();
            for (i, step) in steps.iter().enumerate() {
                match step {
                    Step::Budget { over: o } => {
                        over = *o;
                        set_budget(over).await;
                    }
                    Step::Evaluate => budgets.evaluate(&team).await.unwrap(),
                    Step::Deploy { reserved } => {
                        let name = format!("f{i}");
                        sim.create_function(&account, REGION, &name, *reserved).await.unwrap();
                        expected.insert(name, *reserved);
                    }
                    Step::Delete { function } => {
                        let Some(name) = expected.keys().nth(*function).cloned() else { continue };
                        sim.delete_function(&account, REGION, &name).await.unwrap();
                        expected.remove(&name);
                    }
                }
            }
            budgets.evaluate(&team).await.unwrap();
            let now = local.functions(&account);
            if over {
                prop_assert!(now.iter().all(|(_, c)| *c == Some(0)), "{:?}", now);
                set_budget(false).await;
                budgets.evaluate(&team).await.unwrap();
            }
            let restored = local.functions(&account);
            local.running.shutdown().await;
            prop_assert_eq!(restored, expected.into_iter().collect::<Vec<_>>());
            Ok(())
        })?;
    }
}
