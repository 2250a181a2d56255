//! The one place that maps each function of infra/template.yaml to the
//! handler that implements it. `purser up` refuses to start when the two
//! disagree, and a test checks them against the built-in template.

use std::sync::Arc;

use purser_core::spend::SpendSettler;
use purser_local::{LOCAL_ADMIN, LOCAL_REGION, Registry};
use purser_query::LocalLake;

pub fn handlers() -> Registry {
    Registry::new()
        .register("ApiFunction", |ports| {
            Arc::new(purser_api::Api::new(
                ports.accounts(),
                ports.recorder(),
                ports.budgets(),
                ports.costs(Arc::new(LocalLake::new(&ports.data_dir))),
                vec![LOCAL_ADMIN.to_string()],
                LOCAL_REGION.to_string(),
            ))
        })
        .register("VendFunction", |ports| {
            Arc::new(purser_vend::Vend::new(ports.accounts()))
        })
        .register("AccountEventsFunction", |ports| {
            Arc::new(purser_account_events::AccountEvents::new(ports.accounts()))
        })
        .register("ReaperFunction", |ports| {
            Arc::new(purser_reaper::Reaper::new(ports.accounts()))
        })
        .register("BudgetsFunction", |ports| {
            Arc::new(purser_budgets::BudgetsHandler::new(ports.budgets()))
        })
        .register("SpendFunction", |ports| {
            Arc::new(purser_spend::SpendHandler::new(SpendSettler::new(
                ports.store.clone(),
                ports.store.clone(),
                ports.store.clone(),
                Arc::new(LocalLake::new(&ports.data_dir)),
                Arc::clone(&ports.bus),
                Arc::clone(&ports.clock),
                // Locally the CUR is whatever <data-dir>/lake/cur/ holds
                // (an empty table without it).
                true,
            )))
        })
        .register("RecorderFunction", |ports| {
            Arc::new(purser_recorder::RecorderHandler::new(ports.recorder()))
        })
}

#[cfg(test)]
mod tests {
    use purser_local::{LocalContext, Template};

    #[test]
    fn every_function_of_the_template_has_a_handler_and_back() {
        let wiring = Template::builtin()
            .wiring(&LocalContext::default())
            .expect("the built-in template is valid");
        super::handlers()
            .check(&wiring)
            .expect("registry and template agree");
    }
}
