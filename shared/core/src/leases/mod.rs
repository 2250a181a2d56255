//! Lease templates, approvals and extensions: what kind of account a
//! developer asks for (`template`: its lease, budget, permissions, regions
//! and who may use it), whether someone must say yes first (`approval`:
//! never, always, or rules that are data), what was decided and by whom
//! (`decision`), and a longer lease asked for later (`extension`). The
//! service that applies them is `accounts::Accounts` (`accounts/leasing.rs`).

pub mod approval;
pub mod decision;
pub mod extension;
pub mod template;

pub use approval::*;
pub use decision::*;
pub use extension::*;
pub use template::*;
