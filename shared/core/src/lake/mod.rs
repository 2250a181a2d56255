//! The data lake: its records and how events become them (`records`), the
//! recorder that writes them and keeps the spend counters (`recorder`), and
//! the named queries that read them (`named_queries`, used by module path:
//! `named_queries::all()`).

pub mod named_queries;
pub mod recorder;
pub mod records;

pub use recorder::*;
pub use records::*;
