//! The development Redis keeps its data in its data directory.

use std::path::PathBuf;

use rollcall::domain::{Timestamp, Username};
use rollcall::store::redis::RedisStore;
use rollcall::store::{Store, UserRecord};
use rollcall_local_server::dev_redis::{DevRedis, DevRedisError, How, docker_configured};
use rollcall_tests::unique_name;

fn temp_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("rollcall-data-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Creates a user through the store on `redis`.
async fn create(redis: &DevRedis, name: &Username) {
    let store = RedisStore::connect(redis.url(), "rollcall:")
        .await
        .expect("connect");
    store
        .create_user(&UserRecord {
            username: name.clone(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
            created_at: Timestamp::now(),
        })
        .await
        .expect("create");
}

async fn found(redis: &DevRedis, name: &Username) -> bool {
    let store = RedisStore::connect(redis.url(), "rollcall:")
        .await
        .expect("connect");
    store.find_user(name).await.expect("find").is_some()
}

#[tokio::test]
async fn a_second_run_on_the_same_data_dir_finds_the_accounts_of_the_first() {
    let dir = temp_data_dir();
    let name = Username::parse(&unique_name("kept")).expect("valid");
    let first = DevRedis::start_process_with(Some(&dir))
        .await
        .expect("start");
    assert_eq!(first.how(), How::Process);
    create(&first, &name).await;
    // A second server cannot take the same directory while the first runs.
    assert!(matches!(
        DevRedis::start_process_with(Some(&dir)).await,
        Err(DevRedisError::DataDir { .. })
    ));
    // Stopped as the server stops it (SIGTERM: Redis writes its file out).
    drop(first);
    assert!(
        dir.join("redis/appendonlydir").is_dir(),
        "an append-only file was written"
    );
    let second = DevRedis::start_process_with(Some(&dir))
        .await
        .expect("restart");
    assert!(
        found(&second, &name).await,
        "the account survived the restart"
    );
    drop(second);
    // Without a data directory nothing is kept (what tests use).
    let scratch = DevRedis::start_process().await.expect("start");
    assert!(!found(&scratch, &name).await);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same through testcontainers, with the directory bind-mounted; passes
/// saying SKIPPED without a Docker engine unless `ROLLCALL_REQUIRE_DOCKER=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_path_keeps_its_data_in_the_mounted_dir() {
    if !docker_configured() {
        assert!(
            !std::env::var("ROLLCALL_REQUIRE_DOCKER").is_ok_and(|v| v == "1"),
            "ROLLCALL_REQUIRE_DOCKER=1 but no Docker engine is configured"
        );
        eprintln!("SKIPPED: no Docker engine reachable; the container data dir was not exercised");
        return;
    }
    let dir = temp_data_dir();
    let name = Username::parse(&unique_name("boxed")).expect("valid");
    let first = DevRedis::start_container_with(Some(&dir))
        .await
        .expect("start");
    assert_eq!(first.how(), How::Container);
    create(&first, &name).await;
    // The container is removed, not stopped gently: wait for the
    // once-a-second fsync.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(first);
    assert!(
        dir.join("redis/appendonlydir").is_dir(),
        "written in the mounted dir"
    );
    let second = DevRedis::start_container_with(Some(&dir))
        .await
        .expect("restart");
    assert!(
        found(&second, &name).await,
        "the account survived the restart"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the issue saw: run the program with its default store, sign up,
/// stop it (SIGTERM, as Ctrl-C), run it again on the same data directory:
/// the account logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_program_keeps_its_accounts_across_a_restart() {
    use rollcall_tests::client::Visitor;
    use rollcall_tests::node_process::NodeProcess;

    let dir = temp_data_dir();
    let dir_s = dir.to_string_lossy().into_owned();
    let mut settings: Vec<(&str, &str)> = rollcall_tests::app::FAST.to_vec();
    settings.extend([
        ("ROLLCALL_STORE", "auto"),
        ("ROLLCALL_DATA_DIR", dir_s.as_str()),
    ]);
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_rollcall-node"));
    let name = unique_name("tutorial");
    let mut first = NodeProcess::start(exe, &settings).await;
    Visitor::new(&first.base)
        .sign_up(&name, rollcall_tests::PASSWORD)
        .await;
    first.signal("-TERM");
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), first.child.wait())
        .await
        .expect("stops")
        .expect("exit status");
    assert!(status.success(), "{status:?}");
    let second = NodeProcess::start(exe, &settings).await;
    Visitor::new(&second.base)
        .log_in(&name, rollcall_tests::PASSWORD)
        .await;
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
