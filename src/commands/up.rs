//! `purser up`: the local control plane, until Ctrl-C.

use std::path::Path;

use anyhow::Context;
use purser_local::{RuntimeConfig, Template, inspect};

use crate::cli::UpArgs;

pub fn load_template(path: Option<&Path>) -> anyhow::Result<Template> {
    match path {
        None => Ok(Template::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the template {}", path.display()))?;
            Template::parse(&text).with_context(|| format!("{}", path.display()))
        }
    }
}

pub async fn run(args: UpArgs, template: Option<&Path>) -> anyhow::Result<()> {
    let template = load_template(template)?;
    let mut config = RuntimeConfig::new(&args.data_dir, args.port);
    config.allow_aws_sources = args.allow_aws_sources;
    config.openapi = Some(purser::OPENAPI.to_string());
    let running = purser_local::start(config, &template, &purser::registry::handlers(), None)
        .await
        .context("purser up could not start")?;
    let url = format!("http://{}", running.addr());
    let s = &running.summary;
    println!(
        "Purser is up at {url}  (data in {})",
        args.data_dir.display()
    );
    println!(
        "  {} functions, {} rules, {} schedules, {} routes from the template",
        s.functions.len(),
        s.rules.len(),
        s.timers.len(),
        s.routes.len()
    );
    for line in s.routes.iter().chain(&s.rules).chain(&s.timers) {
        println!("    {line}");
    }
    println!("  HTTP API:    curl {url}/health");
    println!(
        "  EventBridge: aws events put-events --endpoint-url {url} --entries '[{{\"Source\":\"ci\",\"DetailType\":\"Ping\",\"Detail\":\"{{}}\",\"EventBusName\":\"purser\"}}]'"
    );
    println!("  Press Ctrl-C to stop; queued deliveries survive a restart.");

    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    eprintln!("stopping: finishing in-flight deliveries…");
    let db = running.db().clone();
    running.shutdown().await;
    let queued = inspect::pending_deliveries(&db)?;
    if queued > 0 {
        println!("stopped; {queued} deliveries stay queued for the next `purser up`");
    } else {
        println!("stopped; nothing left to deliver");
    }
    Ok(())
}
