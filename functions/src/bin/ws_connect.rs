//! Lambda function: `$connect` of the WebSocket API: authorize, register, announce.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_http::run(lambda_http::service_fn(|req| {
        rollcall::lambda::ws_connect(ctx, req)
    }))
    .await
}
