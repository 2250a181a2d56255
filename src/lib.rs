//! The `purser` CLI's library side: what the binary and the whole-system
//! tests share.

pub mod demo;
pub mod registry;

/// The HTTP API's OpenAPI 3 document (`purser up` serves it at /openapi.json).
pub const OPENAPI: &str = include_str!("../infra/openapi.json");
