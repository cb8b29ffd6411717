//! Lambda function: posts queued events to a group shard's connections (the push FIFO queue).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| {
        rollcall::lambda::push(ctx, event)
    }))
    .await
}
