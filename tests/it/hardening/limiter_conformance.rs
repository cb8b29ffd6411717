//! The rate limiter conformance suite on a real `redis-server` and on
//! DynamoDB (moto), each also across separate clients (as separate
//! processes or Lambdas would have).

mod redis {
    use rollcall::limits::RateLimiter;
    use rollcall::limits::redis::RedisLimiter;
    use rollcall_tests::redis_server::{redis_url, unique_prefix};

    rollcall::limiter_conformance_suite!(async {
        Box::new(
            RedisLimiter::connect(redis_url(), &unique_prefix())
                .await
                .expect("connect to redis"),
        )
    });

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hits_are_counted_exactly_across_separate_clients() {
        let prefix = unique_prefix();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(
                RedisLimiter::connect(redis_url(), &prefix)
                    .await
                    .expect("connect"),
            );
        }
        let all: Vec<&dyn RateLimiter> = clients.iter().map(|c| c as _).collect();
        rollcall::limits::conformance::concurrent_hits_are_counted_exactly(&all).await;
    }
}

mod dynamodb {
    use rollcall::limits::RateLimiter;
    use rollcall::limits::dynamodb::DynamoLimiter;
    use rollcall_tests::moto;

    /// A limiter on the sessions table of fresh tables, or `None` (SKIPPED
    /// unless moto is required) without moto.
    async fn limiter() -> Option<DynamoLimiter> {
        let store = moto::dynamo_store().await?;
        Some(DynamoLimiter::new(
            moto::client()?,
            store.tables().sessions.clone(),
        ))
    }

    rollcall::limiter_conformance_suite!(std::future::ready(Box::new(match limiter().await {
        Some(l) => l,
        None => return,
    })));

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hits_are_counted_exactly_across_separate_clients() {
        let Some(first) = limiter().await else {
            return;
        };
        let mut clients = vec![first.clone()];
        for _ in 0..2 {
            clients.push(first.with_client(moto::client().expect("moto is running")));
        }
        let all: Vec<&dyn RateLimiter> = clients.iter().map(|c| c as _).collect();
        rollcall::limits::conformance::concurrent_hits_are_counted_exactly(&all).await;
    }
}
