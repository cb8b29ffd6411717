//! Lambda function: the fan-out (the presence table's DynamoDB stream): queues each event for every group shard.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        rollcall::lambda::fanout(ctx, event)
    }))
    .await
}
