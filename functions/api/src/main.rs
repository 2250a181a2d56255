use purser_api::Api;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::init_tracing();
    let ports = purser_lambda::ports().await?;
    purser_lambda::serve(Api::new(ports.accounts(), ports.admins.clone())).await
}
