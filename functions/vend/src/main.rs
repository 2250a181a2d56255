#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_vend::Vend::from_ports).await
}
