#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(|ports| {
        let console = purser_api::ConsoleSettings::from_env(&|name| std::env::var(name).ok());
        Ok(purser_api::Api::from_ports(ports)?.with_console(console))
    })
    .await
}
