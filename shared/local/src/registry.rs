//! Maps each function of the template to the handler that implements it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use purser_core::accounts::Accounts;
use purser_core::budgets::{Budgets, FreezeExemptions};
use purser_core::lake::Recorder;
use purser_core::ports::QueryEngine;
use purser_core::spend::Costs;
use purser_core::{Clock, EventBus, Handler, LakeSink, MemberLambdas, Organization, Store};

use crate::template::Wiring;

/// The ports a handler is built from; locally, the embedded backends.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub organization: Arc<dyn Organization>,
    pub lake: Arc<dyn LakeSink>,
    pub clock: Arc<dyn Clock>,
    /// Where the local lake and database live (the query engine reads it).
    pub data_dir: PathBuf,
    /// The member accounts' Lambda functions (simulated locally).
    pub lambdas: Arc<dyn MemberLambdas>,
}

impl Ports {
    /// The account service on these ports.
    pub fn accounts(&self) -> Accounts {
        Accounts::new(
            self.store.clone(),
            self.store.clone(),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        )
    }

    /// Budgets on these ports; locally the freeze exempts a `break-glass`
    /// role and the role Organizations creates in each account.
    pub fn budgets(&self) -> Budgets {
        Budgets::new(
            Arc::clone(&self.store),
            Arc::clone(&self.organization),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
            Arc::clone(&self.lambdas),
            FreezeExemptions {
                break_glass_roles: vec!["break-glass".into()],
                purser_role: "OrganizationAccountAccessRole".into(),
            },
        )
    }

    /// What teams spent, with costs by function from `lake`.
    pub fn costs(&self, lake: Arc<dyn QueryEngine>) -> Costs {
        Costs::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            lake,
            Arc::clone(&self.clock),
        )
    }

    /// The recorder on these ports.
    pub fn recorder(&self) -> Recorder {
        Recorder::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            Arc::clone(&self.lake),
            Arc::clone(&self.bus),
            Arc::clone(&self.clock),
        )
    }
}

type Factory = Box<dyn Fn(&Ports) -> Arc<dyn Handler> + Send + Sync>;

/// Handler factories by the function's logical id in the template.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "the template declares function(s) {} but no handler is registered for them: add them to the registry",
        .0.join(", ")
    )]
    MissingHandlers(Vec<String>),
    #[error(
        "handler(s) are registered for {} but the template declares no such function: add the function to infra/template.yaml or remove the handler",
        .0.join(", ")
    )]
    UnknownFunctions(Vec<String>),
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<F>(mut self, function: &str, factory: F) -> Self
    where
        F: Fn(&Ports) -> Arc<dyn Handler> + Send + Sync + 'static,
    {
        self.factories
            .insert(function.to_string(), Box::new(factory));
        self
    }

    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Checks that template and registry name the same functions, both ways.
    pub fn check(&self, wiring: &Wiring) -> Result<(), RegistryError> {
        let declared: Vec<&str> = wiring
            .functions
            .iter()
            .map(|f| f.logical_id.as_str())
            .collect();
        let missing: Vec<String> = declared
            .iter()
            .filter(|f| !self.factories.contains_key(**f))
            .map(|f| f.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(RegistryError::MissingHandlers(missing));
        }
        let unknown: Vec<String> = self
            .factories
            .keys()
            .filter(|f| !declared.contains(&f.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(RegistryError::UnknownFunctions(unknown));
        }
        Ok(())
    }

    /// Builds every handler from the ports.
    pub fn build(&self, ports: &Ports) -> BTreeMap<String, Arc<dyn Handler>> {
        self.factories
            .iter()
            .map(|(name, factory)| (name.clone(), factory(ports)))
            .collect()
    }
}
