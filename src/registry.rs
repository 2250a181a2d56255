//! The one place that maps each function of infra/template.yaml to the
//! handler that implements it, as each function's `main` builds it on AWS.
//! `purser up` refuses to start when the two disagree, and a test checks
//! them against the built-in template.

use std::sync::Arc;

use purser_local::{Build, Registry};

const HANDLERS: &[(&str, Build)] = &[
    ("ApiFunction", |p| {
        Ok(Arc::new(purser_api::Api::from_ports(p)?))
    }),
    ("VendFunction", |p| {
        Ok(Arc::new(purser_vend::Vend::from_ports(p)?))
    }),
    ("AccountEventsFunction", |p| {
        Ok(Arc::new(purser_account_events::AccountEvents::from_ports(
            p,
        )?))
    }),
    ("ReaperFunction", |p| {
        Ok(Arc::new(purser_reaper::Reaper::from_ports(p)?))
    }),
    ("BudgetsFunction", |p| {
        Ok(Arc::new(purser_budgets::BudgetsHandler::from_ports(p)?))
    }),
    ("SpendFunction", |p| {
        Ok(Arc::new(purser_spend::SpendHandler::from_ports(p)?))
    }),
    ("RecorderFunction", |p| {
        Ok(Arc::new(purser_recorder::RecorderHandler::from_ports(p)?))
    }),
    ("NotifyFunction", |p| {
        Ok(Arc::new(purser_notify::NotifyHandler::from_ports(p)?))
    }),
];

pub fn handlers() -> Registry {
    Registry::of(HANDLERS)
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
