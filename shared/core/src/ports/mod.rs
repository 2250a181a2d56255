//! The ports through which the domain reaches the world, one file each.
//! Every port has an AWS adapter (`purser-aws`) and an embedded one
//! (`purser-local`), and the services take only the ports they use.

pub mod blueprints;
pub mod cleaner;
pub mod clock;
pub mod dead_letters;
pub mod event_bus;
pub mod identity_center;
pub mod lake_sink;
pub mod landing;
pub mod markers;
pub mod member_lambdas;
pub mod member_resources;
pub mod notifier;
pub mod organization;
pub mod query_engine;
pub mod running;
pub mod store;

pub use blueprints::*;
pub use cleaner::*;
pub use clock::*;
pub use dead_letters::*;
pub use event_bus::*;
pub use identity_center::*;
pub use lake_sink::*;
pub use landing::*;
pub use markers::*;
pub use member_lambdas::*;
pub use member_resources::*;
pub use notifier::*;
pub use organization::*;
pub use query_engine::*;
pub use running::*;
pub use store::*;
