//! The `purser` CLI's library side: what the binary and the whole-system
//! tests share.

pub mod demo;
pub mod driver;
pub mod registry;

/// An HTTP client builder for the CLI and the demo: rustls on ring, the one
/// TLS crypto provider of every Purser binary (reqwest is built without one
/// of its own, so it must be installed before the first client is built).
pub fn http_client() -> reqwest::ClientBuilder {
    // Err only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The HTTP API's OpenAPI 3 document (`purser up` serves it at /openapi.json).
pub const OPENAPI: &str = include_str!("../infra/openapi.json");
