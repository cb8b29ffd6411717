//! One real Redis server for the whole test binary.
//!
//! `ROLLCALL_TEST_REDIS_URL` points at an existing server; otherwise a
//! `redis-server` child is started on a free loopback port (from a thread
//! that lives as long as the test process, so the child dies with it).
//! Tests share it safely: each uses its own key prefix.

use std::sync::OnceLock;

use rollcall_local_server::dev_redis::DevRedis;

/// The shared server's URL, starting it on first use.
pub fn redis_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("ROLLCALL_TEST_REDIS_URL") {
            return url;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-redis".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                match rt.block_on(DevRedis::start_process()) {
                    Ok(redis) => {
                        let _ = tx.send(Ok(redis.url().to_owned()));
                        // Hold the server until the process exits.
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
            .expect("spawn the redis thread");
        match rx.recv().expect("redis thread answers") {
            Ok(url) => url,
            Err(e) => panic!("cannot start redis-server for the tests: {e}"),
        }
    })
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("{}:", crate::unique_name("test"))
}
