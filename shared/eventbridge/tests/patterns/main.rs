//! EventBridge's event patterns: every example of EventBridge's
//! documentation (`docs`), and properties over generated events (`props`).

mod docs;
mod props;
