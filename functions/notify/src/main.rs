#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_notify::NotifyHandler::from_ports).await
}
