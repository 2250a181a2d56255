//! Purser's embedded backends and the local runtime behind `purser up`:
//! SQLite for state, an in-process EventBridge that runs the SAM
//! template's rules and schedules, and the template's HTTP API routes.

pub mod blueprints;
pub mod bus;
pub mod cleaner;
pub mod db;
pub mod dispatch;
pub mod http;
pub mod identity_center;
pub mod inspect;
pub mod lake;
pub mod lambdas;
pub mod landing;
pub mod member_resources;
pub mod notifier;
pub mod organization;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod template;
pub mod timers;

pub use blueprints::SimulatedStackSets;
pub use bus::{LocalBus, PutEventsError, Rule};
pub use cleaner::SimulatedCleaner;
pub use db::Db;
pub use dispatch::RetryTiming;
pub use identity_center::SimulatedIdentityCenter;
pub use inspect::Unsettled;
pub use lake::LocalLakeSink;
pub use lambdas::SimulatedLambdas;
pub use member_resources::SimulatedResources;
pub use notifier::{LocalNotifier, SentNotification, sent};
pub use organization::{SimulatedOrganization, SimulationConfig};
pub use registry::{Build, Registry, RegistryError};
pub use runtime::{Running, RuntimeConfig, StartError, start};
pub use store::SqliteStore;
pub use template::{BUILTIN_TEMPLATE, LocalContext, Template};

/// The account Purser itself runs in locally (moto's default account).
pub const LOCAL_ACCOUNT: &str = "123456789012";
pub const LOCAL_REGION: &str = "us-east-1";
/// Who a local caller is when it does not say (`X-Purser-Principal`): a
/// platform admin of the local control plane.
pub const LOCAL_ADMIN: &str = "arn:aws:iam::123456789012:role/purser-local-admin";
