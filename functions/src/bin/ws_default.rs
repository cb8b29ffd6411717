//! Lambda function: `$default` of the WebSocket API: pings (lease renewal) and snapshot requests.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_http::run(lambda_http::service_fn(|req| {
        rollcall::lambda::ws_default(ctx, req)
    }))
    .await
}
