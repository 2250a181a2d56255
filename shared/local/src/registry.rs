//! Maps each function of the template to the handler that implements it.

use std::collections::BTreeMap;
use std::sync::Arc;

use purser_core::{Handler, Ports, Unwired};

use crate::template::Wiring;

/// How a handler is made from the composition root's ports.
pub type Build = fn(&Ports) -> Result<Arc<dyn Handler>, Unwired>;

type Factory = Box<dyn Fn(&Ports) -> Result<Arc<dyn Handler>, Unwired> + Send + Sync>;

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
    /// The registry of a table of (the function's logical id, its build).
    pub fn of(table: &[(&str, Build)]) -> Self {
        Self {
            factories: table
                .iter()
                .map(|(function, build)| (function.to_string(), Box::new(*build) as Factory))
                .collect(),
        }
    }

    /// Adds a handler made by any closure (the runtime's own tests register
    /// fakes this way).
    pub fn register<F>(mut self, function: &str, factory: F) -> Self
    where
        F: Fn(&Ports) -> Arc<dyn Handler> + Send + Sync + 'static,
    {
        self.factories.insert(
            function.to_string(),
            Box::new(move |ports: &Ports| Ok(factory(ports))),
        );
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
    pub fn build(&self, ports: &Ports) -> Result<BTreeMap<String, Arc<dyn Handler>>, Unwired> {
        self.factories
            .iter()
            .map(|(name, build)| Ok((name.clone(), build(ports)?)))
            .collect()
    }
}
