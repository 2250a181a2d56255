use purser_account_events::AccountEvents;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::init_tracing();
    let ports = purser_lambda::ports().await?;
    purser_lambda::serve(AccountEvents::new(ports.accounts())).await
}
