//! The store conformance suite against real servers: a `redis-server`
//! process always, Redis in a container through testcontainers when a
//! Docker engine is reachable, and DynamoDB on a moto server.

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
    /// race on one user's connections: still exactly one transition each way,
    /// and racing connects never exceed the per-user cap.
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
        conformance::racing_connects_never_exceed_the_cap(&stores).await;
    }

    /// The presence state machine across simulated processes (see
    /// `rollcall::store::conformance::machine`; 64 cases on memory in
    /// `functions/src/proptests.rs`) on a real Redis: 16 cases, each on a
    /// fresh key prefix.
    #[test]
    fn presence_across_processes_keeps_its_invariants_on_redis() {
        use conformance::machine::{Step, run};
        use proptest::prelude::*;
        let url = redis_url();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        proptest!(ProptestConfig::with_cases(16), |(
            codes in proptest::collection::vec(any::<(u8, u8, u8)>(), 1..60),
        )| {
            let steps: Vec<Step> = codes.into_iter().map(Step::from_code).collect();
            rt.block_on(async {
                let store = RedisStore::connect(url, &unique_prefix())
                    .await
                    .expect("connect");
                run(&store, &steps).await;
            });
        });
    }

    mod log {
        use std::time::Duration;

        use rollcall::domain::{SessionToken, Timestamp, Username};
        use rollcall::store::redis::RedisStore;
        use rollcall::store::{LogCursor, LogRead, SessionRecord, Store, UserRecord};
        use rollcall_tests::redis_server::{redis_url, unique_prefix};

        fn user(i: usize) -> UserRecord {
            UserRecord {
                username: Username::parse(&format!("u{i}")).expect("name"),
                password_hash: "x".into(),
                created_at: Timestamp::now(),
            }
        }

        async fn read(store: &RedisStore, cursor: &LogCursor) -> LogRead {
            store
                .read_log(cursor, 1000, Duration::ZERO)
                .await
                .expect("read")
        }

        async fn raw(prefix: &str) -> (redis::aio::MultiplexedConnection, String) {
            let client = redis::Client::open(redis_url()).expect("url");
            let conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            (conn, prefix.to_owned())
        }

        /// A reader the trimmed log (`MAXLEN ~`) has left behind gets a gap;
        /// one that keeps up does not.
        #[tokio::test]
        async fn a_reader_the_trimmed_log_left_behind_gets_a_gap() {
            let store = RedisStore::connect_with(redis_url(), &unique_prefix(), 10)
                .await
                .expect("connect");
            let old = store.online_users().await.expect("cut").cursor;
            let mut keeping_up = old.clone();
            for i in 0..400 {
                store.create_user(&user(i)).await.expect("create");
                if i % 50 == 49 {
                    let LogRead::Entries { events, cursor } = read(&store, &keeping_up).await
                    else {
                        panic!("a reader that keeps up has no gap");
                    };
                    assert_eq!(events.len(), 50);
                    keeping_up = cursor;
                }
            }
            assert_eq!(read(&store, &old).await, LogRead::Gap);
        }

        /// A Redis that lost its data (restarted empty) or went back to an
        /// older state (restarted from an older file) is a gap for a reader
        /// that was further on.
        #[tokio::test]
        async fn a_rewound_or_emptied_redis_is_a_gap() {
            let prefix = unique_prefix();
            let store = RedisStore::connect(redis_url(), &prefix)
                .await
                .expect("connect");
            let start = store.online_users().await.expect("cut").cursor;
            store.create_user(&user(1)).await.expect("create");
            let older = match read(&store, &start).await {
                LogRead::Entries { cursor, .. } => cursor,
                LogRead::Gap => panic!("no gap yet"),
            };
            store.create_user(&user(2)).await.expect("create");
            store.create_user(&user(3)).await.expect("create");
            let newest = match read(&store, &older).await {
                LogRead::Entries { cursor, .. } => cursor,
                LogRead::Gap => panic!("no gap yet"),
            };
            // Back to the state after the first entry: its log and counter.
            let (mut conn, p) = raw(&prefix).await;
            let _: () = redis::cmd("XTRIM")
                .arg(format!("{p}log"))
                .arg("MAXLEN")
                .arg(1)
                .query_async(&mut conn)
                .await
                .expect("trim");
            let _: () = redis::cmd("SET")
                .arg(format!("{p}log:n"))
                .arg(1)
                .query_async(&mut conn)
                .await
                .expect("set");
            assert_eq!(read(&store, &newest).await, LogRead::Gap, "rewound");
            // Empty, as after a restart without persistence.
            let _: () = redis::cmd("DEL")
                .arg(format!("{p}log"))
                .arg(format!("{p}log:n"))
                .query_async(&mut conn)
                .await
                .expect("del");
            assert_eq!(read(&store, &newest).await, LogRead::Gap, "emptied");
            // A fresh cut reads on from there.
            let cut = store.online_users().await.expect("cut");
            let s = SessionRecord {
                key: SessionToken::generate().key(),
                username: Username::parse("u1").expect("name"),
                expires_at: Timestamp::now().plus(Duration::from_secs(60)),
            };
            store.create_session(&s).await.expect("session");
            store.create_user(&user(4)).await.expect("create");
            assert!(matches!(
                read(&store, &cut.cursor).await,
                LogRead::Entries { events, .. } if events.len() == 1
            ));
        }
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

mod dynamodb {
    use rollcall::store::conformance;
    use rollcall_tests::moto;

    // One test per check, each on fresh tables in the shared moto server;
    // without moto each says SKIPPED and passes, unless
    // ROLLCALL_REQUIRE_MOTO=1 (set by scripts/test.sh).
    rollcall::conformance_suite!(rollcall_tests::dynamo_store_or_skip!());

    /// Three separate SDK clients (as three Lambdas would have) race on one
    /// user's connections in the same tables: still exactly one transition
    /// each way, strictly alternating with consecutive numbers, and racing
    /// connects never exceed the per-user cap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transitions_stay_exact_across_separate_clients() {
        let Some(first) = moto::dynamo_store().await else {
            return;
        };
        let mut clients = vec![first.clone()];
        for _ in 0..2 {
            clients.push(moto::store_on(first.tables().clone()).expect("moto is running"));
        }
        let stores: Vec<&dyn rollcall::store::Store> = clients.iter().map(|c| c as _).collect();
        conformance::concurrent_transitions_alternate_exactly(&stores).await;
        conformance::racing_connects_never_exceed_the_cap(&stores).await;
    }

    /// `create_tables` makes exactly the documented schema and can run again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tables_have_the_documented_schema_and_creation_is_idempotent() {
        use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TimeToLiveStatus};
        use rollcall::store::dynamodb::schema;

        let Some(store) = moto::dynamo_store().await else {
            return;
        };
        store.create_tables().await.expect("creating again is fine");
        let client = store.client();
        let describe = |table: String| async move {
            client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .expect("describe")
                .table
                .expect("table")
        };
        let keys = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, KeyType)> {
            k.iter()
                .map(|e| (e.attribute_name().to_owned(), e.key_type().clone()))
                .collect()
        };
        let tables = store.tables().clone();
        let users = describe(tables.users.clone()).await;
        assert_eq!(
            keys(users.key_schema()),
            [(schema::USER_NAME.to_owned(), KeyType::Hash)]
        );
        let sessions = describe(tables.sessions.clone()).await;
        assert_eq!(
            keys(sessions.key_schema()),
            [(schema::SESSION_KEY.to_owned(), KeyType::Hash)]
        );
        let conns = describe(tables.connections.clone()).await;
        assert_eq!(
            keys(conns.key_schema()),
            [(schema::CONN_ID.to_owned(), KeyType::Hash)]
        );
        for table in [&users, &sessions, &conns] {
            assert_eq!(
                table
                    .billing_mode_summary()
                    .and_then(|b| b.billing_mode().cloned()),
                Some(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            );
        }
        type Index = (
            String,
            Vec<(String, KeyType)>,
            Option<ProjectionType>,
            Vec<String>,
        );
        let indexes_of = |t: &aws_sdk_dynamodb::types::TableDescription| -> Vec<Index> {
            let mut all: Vec<Index> = t
                .global_secondary_indexes()
                .iter()
                .map(|i| {
                    (
                        i.index_name().unwrap_or_default().to_owned(),
                        keys(i.key_schema()),
                        i.projection().and_then(|p| p.projection_type().cloned()),
                        i.projection()
                            .map(|p| p.non_key_attributes().to_vec())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            all.sort();
            all
        };
        let index = |name: &str, hash: &str, range: &str, include: &[&str]| {
            (
                name.to_owned(),
                vec![
                    (hash.to_owned(), KeyType::Hash),
                    (range.to_owned(), KeyType::Range),
                ],
                Some(if include.is_empty() {
                    ProjectionType::KeysOnly
                } else {
                    ProjectionType::Include
                }),
                include.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            indexes_of(&conns),
            [
                index(
                    schema::INDEX_BY_GROUP,
                    schema::CONN_SHARD,
                    schema::CONN_ID,
                    &[]
                ),
                index(
                    schema::INDEX_BY_LEASE,
                    schema::CONN_SHARD,
                    schema::CONN_LEASE_UNTIL,
                    &[]
                ),
                index(
                    schema::INDEX_BY_SESSION,
                    schema::CONN_SESSION,
                    schema::CONN_ID,
                    &[]
                ),
            ]
        );
        let presence = describe(tables.presence.clone()).await;
        assert_eq!(
            keys(presence.key_schema()),
            [(schema::PRESENCE_NAME.to_owned(), KeyType::Hash)]
        );
        assert_eq!(
            indexes_of(&presence),
            [
                index(
                    schema::INDEX_BY_CREATED,
                    schema::PRESENCE_DIR,
                    schema::PRESENCE_CREATED_AT,
                    &[]
                ),
                index(
                    schema::INDEX_BY_NAME,
                    schema::PRESENCE_DIR,
                    schema::PRESENCE_NAME,
                    &[schema::PRESENCE_SEQ, schema::PRESENCE_LAST_SEEN]
                ),
                index(
                    schema::INDEX_BY_ONLINE,
                    schema::PRESENCE_ONLINE,
                    schema::PRESENCE_NAME,
                    &[schema::PRESENCE_SEQ]
                ),
                index(
                    schema::INDEX_BY_PENDING,
                    schema::PRESENCE_PENDING,
                    schema::PRESENCE_OFFLINE_AT,
                    &[]
                ),
            ]
        );
        let stream = presence.stream_specification().expect("a stream");
        assert!(stream.stream_enabled());
        assert_eq!(
            stream.stream_view_type(),
            Some(&aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
        );
        assert!(
            presence.latest_stream_arn().is_some(),
            "the stream is the event log"
        );
        for table in [&tables.sessions, &tables.connections] {
            let ttl = client
                .describe_time_to_live()
                .table_name(table)
                .send()
                .await
                .expect("describe ttl");
            let ttl = ttl.time_to_live_description().expect("ttl description");
            assert_eq!(ttl.attribute_name(), Some(schema::TTL));
            assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
        }
    }
}
