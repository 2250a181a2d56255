//! The telemetry extension's tests: the pipeline on a fake PutEvents, and the
//! binary through a Lambda lifecycle.

mod support;

mod lifecycle;
mod pipeline;
