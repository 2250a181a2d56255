#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_account_events::AccountEvents::from_ports).await
}
