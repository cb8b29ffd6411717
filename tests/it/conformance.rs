//! The store conformance suite against real servers: a `redis-server`
//! process always, and Redis in a container through testcontainers when a
//! Docker engine is reachable.

mod redis {
    use rollcall::store::conformance;
    use rollcall::store::redis::RedisStore;
    use rollcall_tests::redis_server::{redis_url, unique_prefix};

    rollcall::conformance_suite!(async {
        Box::new(
            RedisStore::connect(redis_url(), &unique_prefix())
                .await
                .expect("connect to redis"),
        )
    });

    /// Three separate connections (as three server processes would have)
    /// race on one user's connections: still exactly one transition each way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transitions_stay_exact_across_separate_clients() {
        let prefix = unique_prefix();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(
                RedisStore::connect(redis_url(), &prefix)
                    .await
                    .expect("connect"),
            );
        }
        let stores: Vec<&dyn rollcall::store::Store> = clients.iter().map(|c| c as _).collect();
        conformance::concurrent_transitions_alternate_exactly(&stores).await;
    }
}

mod container {
    use rollcall::store::conformance;
    use rollcall::store::redis::RedisStore;
    use rollcall_local_server::dev_redis::{DevRedis, How, docker_configured};
    use rollcall_tests::redis_server::unique_prefix;

    /// The suite on Redis started through testcontainers — the development
    /// server's path on machines with Docker. Without an engine it says so
    /// and passes, unless `ROLLCALL_REQUIRE_DOCKER=1` (set by the test
    /// command when it could start one) makes that a failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_passes_on_redis_started_by_testcontainers() {
        let required = std::env::var("ROLLCALL_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
        if !docker_configured() {
            assert!(
                !required,
                "ROLLCALL_REQUIRE_DOCKER=1 but no Docker engine is configured"
            );
            eprintln!(
                "SKIPPED: no Docker engine reachable; the testcontainers path was not exercised"
            );
            return;
        }
        let redis = DevRedis::start_container()
            .await
            .expect("testcontainers starts redis");
        assert_eq!(redis.how(), How::Container);
        let url = redis.url().to_owned();
        // The development server's automatic choice takes the same path.
        assert_eq!(
            DevRedis::start().await.expect("auto start").how(),
            How::Container
        );
        conformance::run_all(async || {
            RedisStore::connect(&url, &unique_prefix())
                .await
                .expect("connect")
        })
        .await;
    }
}
