#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    purser_lambda::run(purser_budgets::BudgetsHandler::from_ports).await
}
