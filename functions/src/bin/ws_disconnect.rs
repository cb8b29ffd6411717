//! Lambda function: `$disconnect` of the WebSocket API: unregister, announce offline after the last connection.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_http::run(lambda_http::service_fn(|req| {
        rollcall::lambda::ws_disconnect(ctx, req)
    }))
    .await
}
