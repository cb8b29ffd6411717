//! Lambda function: ends grace periods (the settle queue's delayed messages).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        rollcall::lambda::settle(ctx, event)
    }))
    .await
}
