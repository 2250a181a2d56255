#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_reaper::Reaper::from_ports).await
}
