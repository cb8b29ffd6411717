//! One moto server (a DynamoDB emulator) for the whole test binary, and
//! [`DynamoStore`]s on fresh tables in it.
//!
//! The executable is `ROLLCALL_MOTO_SERVER`, else `.venv/bin/moto_server` at
//! the workspace root (`scripts/test.sh` installs it there), else
//! `moto_server` from `PATH`. It is started on first use on a free loopback
//! port, from a thread that lives as long as the test process, and is killed
//! with the process (`PR_SET_PDEATHSIG` on Linux). Tests share it safely:
//! each store gets its own, uniquely named tables.
//!
//! moto's own server runs requests concurrently without isolating
//! transactions, unlike DynamoDB; it is made to handle one request at a time
//! (see `SITECUSTOMIZE`) so the emulator keeps DynamoDB's guarantee, and its
//! transactions cost what DynamoDB's do (their items, not their tables).
//!
//! Without moto, [`dynamo_store`] says `SKIPPED` and returns `None` — unless
//! `ROLLCALL_REQUIRE_MOTO=1` (set by the test command, which installs moto),
//! which makes it a failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use rollcall::config::Tables;
use rollcall::store::dynamodb::DynamoStore;

/// How long moto may take to answer after starting.
const READY_WAIT: Duration = Duration::from_secs(60);

/// The shared moto server's endpoint (`http://127.0.0.1:PORT`), starting it
/// on first use; `None` if it cannot be started and `ROLLCALL_REQUIRE_MOTO`
/// is not `1` (then it panics).
pub fn endpoint() -> Option<&'static str> {
    static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
    match ENDPOINT.get_or_init(start) {
        Ok(url) => Some(url),
        Err(e) if required() => panic!("ROLLCALL_REQUIRE_MOTO=1 but moto cannot be started: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: moto (DynamoDB emulator) unavailable, DynamoDB not exercised: {e}");
            None
        }
    }
}

fn required() -> bool {
    std::env::var("ROLLCALL_REQUIRE_MOTO").is_ok_and(|v| v == "1")
}

/// A client of SDK crate `$sdk` for the shared moto server (region
/// `us-east-1`, dummy credentials), or `None` as [`endpoint`] says.
macro_rules! moto_client {
    ($sdk:ident) => {{
        let url = endpoint()?;
        let config = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .endpoint_url(url)
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "rollcall-tests",
            ))
            .build();
        Some($sdk::Client::from_conf(config))
    }};
}

/// A new DynamoDB client for the shared moto server, or `None` as
/// [`endpoint`] says.
pub fn client() -> Option<Client> {
    moto_client!(aws_sdk_dynamodb)
}

/// A DynamoDB Streams client for the shared moto server, or `None` as
/// [`endpoint`] says.
pub fn streams_client() -> Option<aws_sdk_dynamodbstreams::Client> {
    moto_client!(aws_sdk_dynamodbstreams)
}

/// An SQS client for the shared moto server, or `None` as [`endpoint`] says.
pub fn sqs_client() -> Option<aws_sdk_sqs::Client> {
    moto_client!(aws_sdk_sqs)
}

/// A store on `tables` of the shared moto server with clients of its own
/// (the log reader included), or `None` as [`endpoint`] says.
pub fn store_on(tables: Tables) -> Option<DynamoStore> {
    Some(DynamoStore::with_streams(
        client()?,
        streams_client()?,
        tables,
    ))
}

/// Table names no other test uses.
pub fn unique_tables() -> Tables {
    let id = crate::unique_name("");
    Tables {
        users: format!("rollcall-test-users-{id}"),
        presence: format!("rollcall-test-presence-{id}"),
        sessions: format!("rollcall-test-sessions-{id}"),
        connections: format!("rollcall-test-connections-{id}"),
    }
}

/// A store on fresh, empty tables (created) in the shared moto server, with
/// its own client; `None` (after saying `SKIPPED`) without moto.
pub async fn dynamo_store() -> Option<DynamoStore> {
    let store = store_on(unique_tables())?;
    store
        .create_tables()
        .await
        .expect("create the tables in moto");
    Some(store)
}

/// Like [`dynamo_store`] for tests that cannot do without DynamoDB: panics
/// if moto cannot be started.
pub async fn fresh_store() -> DynamoStore {
    match dynamo_store().await {
        Some(store) => store,
        None => panic!("this test needs moto_server (see scripts/test.sh)"),
    }
}

/// Evaluates to a ready future of a boxed [`dynamo_store`], or returns from
/// the enclosing test (which then passes, having said `SKIPPED`) when moto
/// is unavailable and not required. Made for
/// `rollcall::conformance_suite!(rollcall_tests::dynamo_store_or_skip!())`,
/// which awaits its argument inside each test's body.
#[macro_export]
macro_rules! dynamo_store_or_skip {
    () => {
        ::std::future::ready(::std::boxed::Box::new(
            match $crate::moto::dynamo_store().await {
                ::std::option::Option::Some(store) => store,
                ::std::option::Option::None => return,
            },
        ))
    };
}

/// Where the `moto_server` executable is.
fn executable() -> PathBuf {
    if let Some(p) = std::env::var_os("ROLLCALL_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    "moto_server".into()
}

/// Starts moto from a thread that outlives every test; the thread waits on
/// the child, so the child (PDEATHSIG is per forking thread) lives as long
/// as the process, and dies with it.
fn start() -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-moto".into())
        .spawn(move || match spawn_ready() {
            Ok((mut child, url)) => {
                let _ = tx.send(Ok(url));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| format!("cannot spawn the moto thread: {e}"))?;
    rx.recv()
        .unwrap_or_else(|_| Err("the moto thread died".into()))
}

/// Loaded by moto's interpreter at start-up (`sitecustomize` on
/// `PYTHONPATH`, from `moto_sitecustomize.py`). It changes two things:
///
/// * **One request at a time.** moto's DynamoDB backend takes no lock, and
///   a cancelled TransactWriteItems restores a copy of each table it
///   touches taken when it began — erasing whatever other requests
///   committed in between (seen here: a counter incremented 400 times in
///   transactions read 391 when other threads' transactions were being
///   cancelled; and the conformance suite's concurrency check failing under
///   CPU load). DynamoDB isolates every transaction; serving requests one
///   at a time gives the emulator that guarantee. Requests of different
///   clients still interleave freely.
/// * **A transaction costs its items, not its tables.** For that rollback
///   moto deep-copies every table a transaction names, with its stream's
///   records, before it starts: at 1,000 connections a `$connect`'s
///   transaction took 94 ms instead of 3, and grew with every item and
///   every stream record (`rollcall-bench cloud` measured `$connect` at
///   182 ms p50 with 1,000 watchers). The patch copies only the items the
///   transaction names, and on any failure puts exactly those back and
///   drops the stream records written since it began — what stock moto's
///   rollback leaves, at DynamoDB's cost (O(items in the transaction)).
const SITECUSTOMIZE: &str = include_str!("moto_sitecustomize.py");

/// What [`SITECUSTOMIZE`] prints once each change is in place.
const MARKERS: [&str; 2] = [
    "rollcall: moto_server handles one request at a time",
    "rollcall: moto's transactions roll back their own items",
];

/// Spawns moto on a free port (retrying if the port is taken meanwhile) and
/// waits until it answers HTTP.
fn spawn_ready() -> Result<(Child, String), String> {
    let exe = executable();
    let mut last = String::new();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        // Holds sitecustomize.py and moto's log until moto is up.
        let dir = std::env::temp_dir().join(format!("rollcall-moto-{}-{port}", std::process::id()));
        let attempt = spawn_in(&exe, port, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        match attempt {
            Ok(ready) => return Ok(ready),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One attempt of [`spawn_ready`] on `port`, with scratch files in `dir`.
fn spawn_in(exe: &Path, port: u16, dir: &Path) -> Result<(Child, String), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("sitecustomize.py"),
        SITECUSTOMIZE
            .replace("SERIAL_MARKER", &format!("{:?}", MARKERS[0]))
            .replace("JOURNAL_MARKER", &format!("{:?}", MARKERS[1])),
    )
    .map_err(|e| e.to_string())?;
    let log = dir.join("stderr.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut python_path = std::ffi::OsString::from(dir);
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        python_path.push(":");
        python_path.push(old);
    }
    let mut cmd = Command::new(exe);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("PYTHONPATH", python_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    rollcall_local_server::process::die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_WAIT;
    let stop = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        Err(format!("{} {why}: {}", exe.display(), tail.join(" | ")))
    };
    loop {
        if answers_http(addr) {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(missing) = MARKERS.iter().find(|m| !log_text.contains(**m)) {
                return stop(
                    &mut child,
                    format!("runs without its patch ({missing:?} missing)"),
                );
            }
            return Ok((child, format!("http://{addr}")));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return stop(&mut child, format!("exited ({status})"));
        }
        if Instant::now() > deadline {
            return stop(&mut child, format!("did not answer within {READY_WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether something at `addr` answers an HTTP request.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// Writes presence items of `names` as online (one connection each, first
/// transition) straight into the presence table `table`, 25 per
/// `BatchWriteItem`: far faster on moto than registering each through the
/// store (a transaction each), and announcing nothing to anyone.
pub async fn seed_online(client: &Client, table: &str, names: &[String]) {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use rollcall::domain::Username;
    use rollcall::store::dynamodb::schema;
    let s = |v: String| AttributeValue::S(v);
    let requests: Vec<WriteRequest> = names
        .iter()
        .map(|raw| {
            let name = Username::parse(raw).expect("name");
            let item = [
                (schema::PRESENCE_NAME, s(name.as_str().to_owned())),
                (schema::PRESENCE_SEQ, AttributeValue::N("1".into())),
                (schema::PRESENCE_CONNS, AttributeValue::N("1".into())),
                (schema::PRESENCE_ONLINE, s(schema::online_value(&name))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .expect("put");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in requests.chunks(25) {
        let out = client
            .batch_write_item()
            .request_items(table, chunk.to_vec())
            .send()
            .await
            .expect("BatchWriteItem");
        assert!(
            out.unprocessed_items().is_none_or(|u| u.is_empty()),
            "moto left items unwritten"
        );
    }
}
