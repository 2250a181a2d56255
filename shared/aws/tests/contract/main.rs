//! The AWS adapters' contract tests against moto's server (`scripts/test`
//! starts it), one module per port: `cargo test -p purser-aws --test
//! contract store::` runs one.

mod common;

mod blueprints;
mod cleaner;
mod dead_letters;
mod event_bus;
mod identity_center;
mod lake;
mod lambdas;
mod landing;
mod member_resources;
mod notifier;
mod organization;
mod query;
mod running;
mod store;
