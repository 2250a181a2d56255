#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_recorder::RecorderHandler::from_ports).await
}
