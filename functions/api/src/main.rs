use purser_api::Api;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::init_tracing();
    let ports = purser_lambda::ports().await?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let api = Api::new(
        ports.accounts(),
        ports.recorder()?,
        ports.budgets(),
        // API Gateway gives up on an integration after 30 seconds.
        ports.costs(ports.athena(std::time::Duration::from_secs(25))?),
        ports.admins.clone(),
        region,
    );
    purser_lambda::serve(api).await
}
