//! The `purser` CLI's library side: what the binary and the whole-system
//! tests share.

pub mod demo;
pub mod registry;
