//! Purser's whole-system tests, one binary with a module per area: the local
//! control plane end to end (accounts, budgets, throttle, lake, demo, the CLI),
//! the AWS paths on moto (aws_*), the template, schemas, queries and OpenAPI.
//! `scripts/test` starts moto; `cargo test --test system <module>::` runs one
//! area.

mod common;

mod access;
mod accounts;
mod aws_spend;
mod aws_vending;
mod budgets;
mod cli;
mod cli_access;
mod cli_api;
mod console;
#[cfg(unix)]
mod crash;
mod demo;
mod faults;
mod guardrails;
mod handlers_never_panic;
mod lake;
mod leases;
mod local_runtime;
mod member_account;
mod openapi;
mod queries;
mod recycling;
mod redrive_aws;
mod resources;
mod runaway;
mod schemas;
mod template;
mod throttle;
mod usage;
