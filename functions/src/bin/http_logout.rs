//! Lambda function: `POST /log_out/` and `POST /api/log_out` of the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rollcall::lambda::init_tracing();
    let ctx = &rollcall::lambda::context_from_env().await?;
    lambda_http::run(lambda_http::service_fn(|req| {
        rollcall::lambda::http(ctx, req)
    }))
    .await
}
