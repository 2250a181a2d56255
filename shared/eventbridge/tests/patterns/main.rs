//! EventBridge's event patterns: every example of EventBridge's
//! documentation (`docs`), properties over generated events (`props`), and
//! what EventBridge and event-ruler do beyond the documentation (`ruler`).

mod docs;
mod props;
mod ruler;
