use purser_spend::SpendHandler;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::init_tracing();
    let ports = purser_lambda::ports().await?;
    purser_lambda::serve(SpendHandler::new(ports.spend()?)).await
}
