//! The page at a glance, in a real browser on a real server: the count
//! ("N online · M users") follows events, online users come first and move
//! between the groups live, the search box narrows the list, a polite live
//! region announces changes (batched: a burst is one or two announcements),
//! and every row still reads exactly `NAME: Online` or `NAME: Offline`.
//! Without JavaScript (plain HTTP) the count and the order are the server's.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use rollcall_tests::app::spawn_app;
use rollcall_tests::browser::{Chromedriver, log_in, wait_live};
use rollcall_tests::client::{Visitor, listed_users};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

async fn driver() -> Option<Chromedriver> {
    let driver = Chromedriver::start().await;
    if driver.is_none() {
        let required = std::env::var("ROLLCALL_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "ROLLCALL_REQUIRE_BROWSER=1 but chromium/chromedriver are missing"
        );
        eprintln!("SKIPPED: chromium or chromedriver not installed");
    }
    driver
}

/// Runs `script` (a function body returning JSON) until it returns `want`.
async fn wait_js(browser: &Client, script: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(v) = browser.execute(script, vec![]).await {
            if v == want {
                return;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{script} never returned {want} (last: {last})");
}

async fn js(browser: &Client, script: &str) -> Value {
    browser.execute(script, vec![]).await.expect("js")
}

async fn wait_count(browser: &Client, want: &str) {
    wait_js(
        browser,
        "return document.getElementById('count').textContent;",
        json!(want),
    )
    .await;
}

/// What the page shows, checked for its invariants on the way: every row
/// is exactly `NAME: Online` in the online list or `NAME: Offline` in the
/// offline one, the online list comes first in the document, and each
/// group is in name order. Returns (online names, offline names).
async fn groups(browser: &Client) -> (Vec<String>, Vec<String>) {
    let v = js(
        browser,
        r#"
        const rows = [...document.querySelectorAll('li[data-username]')];
        return rows.map(li => [li.dataset.username, li.textContent, li.parentNode.id]);"#,
    )
    .await;
    let mut online = Vec::new();
    let mut offline = Vec::new();
    for r in v.as_array().expect("rows") {
        let (name, text, list) = (
            r[0].as_str().expect("name"),
            r[1].as_str().expect("text"),
            r[2].as_str().expect("list"),
        );
        match list {
            "online" => {
                assert_eq!(text, format!("{name}: Online"), "the tutorial's text");
                assert!(offline.is_empty(), "online rows come first: {v}");
                online.push(name.to_owned());
            }
            "offline" => {
                assert_eq!(text, format!("{name}: Offline"), "the tutorial's text");
                offline.push(name.to_owned());
            }
            other => panic!("a row outside the two lists: {other}"),
        }
    }
    for g in [&online, &offline] {
        assert!(g.is_sorted(), "each group by name: {g:?}");
    }
    (online, offline)
}

async fn visible_rows(browser: &Client) -> Value {
    js(
        browser,
        "return [...document.querySelectorAll('li[data-username]')]\
         .filter(li => !li.hidden && li.offsetParent !== null).map(li => li.dataset.username);",
    )
    .await
}

/// Counts in `window.__said` every text the live region is given.
async fn watch_announcements(browser: &Client) {
    js(
        browser,
        r#"
        window.__said = [];
        const el = document.getElementById('announce');
        new MutationObserver(() => window.__said.push(el.textContent))
            .observe(el, { childList: true, characterData: true, subtree: true });
        return null;"#,
    )
    .await;
}

async fn announcements(browser: &Client) -> Vec<String> {
    serde_json::from_value(js(browser, "return window.__said;").await).expect("strings")
}

/// A server with three new users, the first logged in on a page that
/// shows "1 online · 3 users".
async fn three_users_one_logged_in(
    driver: &mut Chromedriver,
) -> (rollcall_tests::app::TestApp, Client, [String; 3]) {
    let app = spawn_app().await;
    let names = [
        unique_name("alice"),
        unique_name("bob"),
        unique_name("carol"),
    ];
    let http = Visitor::new(&app.base);
    for n in &names {
        http.sign_up(n, PASSWORD).await;
    }
    let page = driver.browser().await;
    log_in(&page, &app.base, &names[0], PASSWORD).await;
    wait_count(&page, "1 online · 3 users").await;
    (app, page, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_and_the_order_follow_events_and_changes_are_announced() {
    let Some(mut driver) = driver().await else {
        return;
    };
    let (app, page, [an, bn, cn]) = three_users_one_logged_in(&mut driver).await;
    let http = Visitor::new(&app.base);
    assert_eq!(
        groups(&page).await,
        (vec![an.clone()], vec![bn.clone(), cn.clone()])
    );
    // The region is there, polite, and says nothing yet about alice herself.
    page.find(Locator::Css("#announce[aria-live=polite]"))
        .await
        .expect("a polite live region");
    watch_announcements(&page).await;

    // Bob logs in elsewhere: counted, moved to the online group, announced.
    let bob = Visitor::new(&app.base);
    bob.log_in(&bn, PASSWORD).await;
    let socket = bob.socket().await;
    wait_count(&page, "2 online · 3 users").await;
    assert_eq!(
        groups(&page).await,
        (vec![an.clone(), bn.clone()], vec![cn.clone()])
    );
    wait_js(
        &page,
        "return document.getElementById('announce').textContent;",
        json!(format!("{bn} came online")),
    )
    .await;

    // The server's first render (no JavaScript at all) agrees.
    let html = bob.get("/").await.body;
    assert!(
        html.contains("<p id=\"count\" class=\"count\" data-total=\"3\">2 online · 3 users</p>"),
        "{html}"
    );
    let listed = listed_users(&html);
    assert_eq!(
        listed,
        vec![
            (an.clone(), "Online".to_owned()),
            (bn.clone(), "Online".to_owned()),
            (cn.clone(), "Offline".to_owned()),
        ]
    );

    // He logs out: back to one online, his row back among the offline ones.
    socket.close().await;
    bob.log_out().await;
    wait_count(&page, "1 online · 3 users").await;
    assert_eq!(
        groups(&page).await,
        (vec![an.clone()], vec![bn.clone(), cn.clone()])
    );
    wait_js(
        &page,
        "return document.getElementById('announce').textContent;",
        json!(format!("{bn} went offline")),
    )
    .await;

    // Someone new signs up: counted, offline, in name order.
    let dn = unique_name("dave");
    http.sign_up(&dn, PASSWORD).await;
    wait_count(&page, "1 online · 4 users").await;
    assert_eq!(
        groups(&page).await,
        (vec![an.clone()], vec![bn.clone(), cn.clone(), dn.clone()])
    );
    wait_live(&page).await;
    page.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_narrows_the_list_and_clearing_it_restores_it() {
    let Some(mut driver) = driver().await else {
        return;
    };
    let (app, page, [_, bn, _]) = three_users_one_logged_in(&mut driver).await;
    let http = Visitor::new(&app.base);
    let label = page
        .find(Locator::Css("label[for=search]"))
        .await
        .expect("a label for the search box");
    assert_eq!(label.text().await.expect("label"), "Search users");
    let search = page
        .find(Locator::Css("input[type=search]#search"))
        .await
        .expect("a search box");

    // Case-insensitive: "BOB" finds bob, only him.
    search.send_keys("BOB").await.expect("type");
    wait_count(&page, "1 of 3 users matches").await;
    assert_eq!(visible_rows(&page).await, json!([bn]));
    // The online group, empty now, is hidden with its heading.
    assert_eq!(
        js(
            &page,
            "return document.getElementById('online-group').hidden;"
        )
        .await,
        json!(true)
    );

    // A user who joins meanwhile is counted, and hidden unless they match.
    let bn2 = format!("{bn}x");
    http.sign_up(&bn2, PASSWORD).await;
    http.sign_up(&unique_name("erin"), PASSWORD).await;
    wait_count(&page, "2 of 5 users match").await;
    assert_eq!(visible_rows(&page).await, json!([bn, bn2]));

    // Bob comes online while filtered: still shown, now in the online group.
    let bob = Visitor::new(&app.base);
    bob.log_in(&bn, PASSWORD).await;
    let _socket = bob.socket().await;
    wait_js(
        &page,
        "return [...document.querySelectorAll('#online li')].filter(li => !li.hidden)\
         .map(li => li.textContent);",
        json!([format!("{bn}: Online")]),
    )
    .await;
    assert_eq!(visible_rows(&page).await, json!([bn, bn2]));

    // Clearing it shows everyone again.
    search.clear().await.expect("clear");
    wait_count(&page, "2 online · 5 users").await;
    let (online, offline) = groups(&page).await;
    assert_eq!((online.len(), offline.len()), (2, 3));
    assert_eq!(
        visible_rows(&page).await.as_array().map(Vec::len),
        Some(5),
        "every row shown again"
    );
    page.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_is_announced_at_most_twice() {
    let Some(mut driver) = driver().await else {
        return;
    };
    let app = spawn_app().await;
    let an = unique_name("alice");
    let http = Visitor::new(&app.base);
    http.sign_up(&an, PASSWORD).await;
    let mut others = Vec::new();
    for _ in 0..10 {
        let v = Visitor::new(&app.base);
        v.register(&unique_name("u")).await;
        others.push(v);
    }
    let page = driver.browser().await;
    log_in(&page, &app.base, &an, PASSWORD).await;
    wait_count(&page, "1 online · 11 users").await;
    watch_announcements(&page).await;

    // Ten users come online within a second.
    let started = Instant::now();
    let sockets = futures_util::future::join_all(others.iter().map(|v| v.socket())).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "the burst took {took:?}");
    wait_count(&page, "11 online · 11 users").await;
    // Long enough for a second batch, if there were one.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let said = announcements(&page).await;
    assert!(
        (1..=2).contains(&said.len()),
        "one or two announcements for the burst: {said:?}"
    );
    assert!(
        said.iter().any(|s| s.contains("people came online")),
        "summarised: {said:?}"
    );
    drop(sockets);
    page.close().await.expect("close");
}

/// A row's last seen as the page shows it: (text, title, ms, the title the
/// page's script writes for those ms, the row's own text).
async fn last_seen_of(browser: &Client, name: &str) -> Value {
    js(
        browser,
        &format!(
            r#"
            const li = document.querySelector('li[data-username="{name}"]');
            if (!li) return null;
            const ms = Number(li.dataset.lastSeen);
            return [li.dataset.ago || null, li.title || null, ms || null,
                    ms ? 'Last seen ' + new Date(ms).toLocaleString() : null, li.textContent];"#
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seen_shows_after_a_log_out_and_moves_with_time() {
    let Some(mut driver) = driver().await else {
        return;
    };
    let (app, page, [_, bn, cn]) = three_users_one_logged_in(&mut driver).await;
    // Nobody offline has been seen yet.
    assert_eq!(last_seen_of(&page, &bn).await[0], Value::Null);
    let bob = Visitor::new(&app.base);
    bob.log_in(&bn, PASSWORD).await;
    let socket = bob.socket().await;
    wait_count(&page, "2 online · 3 users").await;
    let before = rollcall::domain::Timestamp::now().as_millis();
    socket.close().await;
    bob.log_out().await;
    let after = rollcall::domain::Timestamp::now().as_millis();
    wait_count(&page, "1 online · 3 users").await;
    wait_js(
        &page,
        &format!(
            "return document.querySelector('li[data-username=\"{bn}\"]').dataset.ago || null;"
        ),
        json!("last seen just now"),
    )
    .await;
    let seen = last_seen_of(&page, &bn).await;
    let ms = seen[2].as_u64().expect("data-last-seen in ms");
    assert!(
        ms + 1000 >= before && ms <= after + 1000,
        "{ms} not within {before}..{after}"
    );
    assert_eq!(seen[1], seen[3], "the exact time in the title: {seen}");
    assert_eq!(
        seen[4],
        json!(format!("{bn}: Offline")),
        "the text is the tutorial's"
    );
    // Carol, never online, shows nothing.
    assert_eq!(last_seen_of(&page, &cn).await[0], Value::Null);
    groups(&page).await;

    // Five minutes later (the page's clock moved on; shown again).
    js(
        &page,
        r#"
        const real = Date.now.bind(Date);
        Date.now = () => real() + 5 * 60 * 1000 + 5000;
        document.dispatchEvent(new Event('visibilitychange'));
        return null;"#,
    )
    .await;
    let later = last_seen_of(&page, &bn).await;
    assert_eq!(later[0], json!("last seen 5 min ago"), "{later}");
    assert_eq!(later[1], seen[1], "the same exact time");

    // The server's own render (no script) says it too, exact time in UTC.
    let html = Visitor::new(&app.base);
    html.log_in(&cn, PASSWORD).await;
    let body = html.get("/").await.body;
    let t = rollcall::domain::Timestamp::from_millis(ms);
    assert!(
        body.contains(&format!(
            "<li data-username=\"{bn}\" data-seq=\"2\" data-last-seen=\"{ms}\" \
             data-ago=\"last seen just now\" title=\"Last seen {}\">{bn}: Offline</li>",
            t.to_human_utc()
        )),
        "{body}"
    );
    assert_eq!(
        listed_users(&body)
            .into_iter()
            .find(|(n, _)| *n == bn)
            .map(|(_, s)| s),
        Some("Offline".to_owned())
    );

    // Online again: no last seen.
    let _again = bob_online(&app.base, &bn).await;
    wait_count(&page, "2 online · 3 users").await;
    assert_eq!(last_seen_of(&page, &bn).await[0], Value::Null);
    page.close().await.expect("close");
}

async fn bob_online(base: &str, name: &str) -> (Visitor, rollcall_tests::client::Socket) {
    let v = Visitor::new(base);
    v.log_in(name, PASSWORD).await;
    let s = v.socket().await;
    (v, s)
}

/// The protocol: an offline event carries `last_seen` (ms), an online one
/// does not; `GET /api/users` lists it for offline users seen before (the
/// same time), never for online ones or users never online; a snapshot
/// (online users only) carries the registered total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_events_and_the_listing_carry_last_seen() {
    let app = spawn_app().await;
    let (an, bn, cn) = (
        unique_name("alice"),
        unique_name("bob"),
        unique_name("carol"),
    );
    let alice = Visitor::new(&app.base);
    alice.register(&an).await;
    Visitor::new(&app.base).sign_up(&cn, PASSWORD).await;
    let bob = Visitor::new(&app.base);
    bob.register(&bn).await;
    let mut watcher = alice.socket().await;
    let tab = bob.socket().await;
    let up = next_event_of(&mut watcher, &bn).await;
    assert_eq!(up.get("last_seen"), None, "online: no last seen: {up}");
    let before = rollcall::domain::Timestamp::now().as_millis();
    tab.close().await;
    let down = next_event_of(&mut watcher, &bn).await;
    let after = rollcall::domain::Timestamp::now().as_millis();
    assert_eq!(down["is_logged_in"], false, "{down}");
    let ms = down["last_seen"].as_u64().expect("last_seen in ms");
    assert!(ms + 1000 >= before && ms <= after + 1000, "{down}");

    let listed: Vec<Value> =
        serde_json::from_str(&alice.get("/api/users").await.body).expect("JSON");
    let of = |n: &str| {
        listed
            .iter()
            .find(|u| u["username"] == n)
            .cloned()
            .expect("listed")
    };
    assert_eq!(
        of(&bn)["last_seen"],
        json!(ms),
        "the event's time: {listed:?}"
    );
    assert_eq!(of(&an).get("last_seen"), None, "online: none");
    assert_eq!(of(&cn).get("last_seen"), None, "never online: none");
    assert_eq!(
        of(&cn).as_object().map(|o| o.len()),
        Some(3),
        "the old fields only, for a user never seen"
    );

    // A new socket's snapshot: the online users, and how many are registered.
    let (snapshot, _) = raw_snapshot(&app, &alice).await;
    assert_eq!(snapshot["total"], json!(3), "{snapshot}");
    assert!(
        snapshot["users"]
            .as_array()
            .expect("users")
            .iter()
            .all(|u| u.get("last_seen").is_none()),
        "{snapshot}"
    );
}

/// The next presence event about `name` (skipping everything else).
async fn next_event_of(socket: &mut rollcall_tests::client::Socket, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(m) = socket.next_json(Duration::from_millis(200)).await
            && m.get("type").is_none()
            && m["username"] == name
        {
            return m;
        }
    }
    panic!("no event for {name}");
}

/// The first message of a new socket of `who` as JSON, and the socket.
async fn raw_snapshot(
    app: &rollcall_tests::app::TestApp,
    who: &Visitor,
) -> (Value, rollcall_tests::client::Socket) {
    let s = rollcall_tests::client::Socket::connect(
        &app.ws_url(),
        Some(&who.cookie_header()),
        Some(&app.base),
    )
    .await
    .expect("socket");
    let snap = s.raw_snapshot().cloned().expect("a snapshot");
    (snap, s)
}

/// Waits until the page has applied its first snapshot (`data-ready`).
async fn wait_ready(browser: &Client) {
    wait_js(
        browser,
        "return document.getElementById('users').dataset.ready || null;",
        json!("true"),
    )
    .await;
}

async fn row_count(browser: &Client) -> usize {
    js(
        browser,
        "return document.querySelectorAll('li[data-username]').length;",
    )
    .await
    .as_u64()
    .expect("a number") as usize
}

/// Online users at the start and at the end of the name order, and
/// `seeded` offline ones between (`u00000`, …) straight in the store.
async fn a_big_user_base(
    driver: &mut Chromedriver,
    seeded: usize,
) -> (
    rollcall_tests::app::TestApp,
    Client,
    Vec<rollcall_tests::client::Socket>,
) {
    let app = spawn_app().await;
    let started = Instant::now();
    rollcall_tests::seed_users(&*app.ctx.store, (0..seeded).map(|i| format!("u{i:05}"))).await;
    eprintln!("seeded {seeded} users in {:?}", started.elapsed());
    let mut sockets = Vec::new();
    for n in ["aaron", "zoe", "zed"] {
        let v = Visitor::new(&app.base);
        v.register(n).await;
        sockets.push(v.socket().await);
    }
    Visitor::new(&app.base).sign_up("amy", PASSWORD).await;
    let page = driver.browser().await;
    page.set_window_size(720, 900).await.expect("size");
    log_in(&page, &app.base, "amy", PASSWORD).await;
    wait_ready(&page).await;
    (app, page, sockets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_users_render_one_page_and_load_more_as_one_scrolls() {
    let Some(mut driver) = driver().await else {
        return;
    };
    const SEEDED: usize = 10_000;
    const PAGE: usize = 100;
    let (app, page, _sockets) = a_big_user_base(&mut driver, SEEDED).await;
    let online = 4; // aaron, amy, zed, zoe
    wait_count(
        &page,
        &format!("{online} online · {} users", SEEDED + online),
    )
    .await;
    let (on, off) = groups(&page).await;
    assert_eq!(on, ["aaron", "amy", "zed", "zoe"]);
    // The offline ones among the first 100 names: u00000 … u00097.
    assert_eq!(off.len(), PAGE - 2, "{off:?}");
    let first = row_count(&page).await;
    assert!(first <= online + PAGE, "{first} rows");
    let more = page
        .find(Locator::Css("button#more"))
        .await
        .expect("a button for more");
    assert_eq!(more.text().await.expect("text"), "Show more users");

    // Without JavaScript: the same first page, and where the next starts.
    let http = Visitor::new(&app.base);
    http.log_in("aaron", PASSWORD).await;
    let body = http.get("/").await.body;
    assert_eq!(listed_users(&body).len(), online + PAGE - 2);
    assert!(body.contains("data-after=\"u00097\""), "the cursor");

    // Scrolled to the end of the list: the next page, no more.
    js(
        &page,
        "document.getElementById('more').scrollIntoView(); return null;",
    )
    .await;
    wait_js(
        &page,
        "return document.querySelectorAll('#offline li').length >= 198;",
        json!(true),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scrolled = row_count(&page).await;
    assert!(
        (online + 2 * PAGE - 2..=online + 3 * PAGE).contains(&scrolled),
        "one page more (a screenful at most besides): {scrolled}"
    );
    let (_, off) = groups(&page).await;
    assert_eq!(off.last().map(String::as_str), Some("u00197"));

    // The button works from the keyboard too: one more page.
    let before = row_count(&page).await;
    js(
        &page,
        "document.getElementById('more').focus(); return null;",
    )
    .await;
    page.find(Locator::Css("button#more"))
        .await
        .expect("button")
        .send_keys("\u{E007}")
        .await
        .expect("Enter");
    wait_js(
        &page,
        &format!(
            "return document.querySelectorAll('li[data-username]').length >= {};",
            before + PAGE
        ),
        json!(true),
    )
    .await;
    groups(&page).await;
    page.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_users_not_loaded_through_the_server() {
    let Some(mut driver) = driver().await else {
        return;
    };
    let (_app, page, _sockets) = a_big_user_base(&mut driver, 2_000).await;
    assert!(row_count(&page).await <= 4 + 100);
    let search = page
        .find(Locator::Css("input[type=search]#search"))
        .await
        .expect("a search box");
    // u01990 … u01999: far past the first page.
    search.send_keys("U0199").await.expect("type");
    wait_count(&page, "10 of 2004 users match").await;
    let shown = visible_rows(&page).await;
    assert_eq!(
        shown,
        json!((1990..2000).map(|i| format!("u{i:05}")).collect::<Vec<_>>()),
        "found by the server (lower-cased too), in name order"
    );
    groups(&page).await;
    // A user coming online while searched for shows up too; clearing the
    // search keeps the rows found (no reload), all in order.
    search.clear().await.expect("clear");
    wait_count(&page, "4 online · 2004 users").await;
    let (_, off) = groups(&page).await;
    assert!(off.contains(&"u01995".to_owned()));
    assert!(row_count(&page).await <= 4 + 100 + 10);
    page.close().await.expect("close");
}

/// `GET /api/users?q=`: names that start with it, paged with `q` kept in
/// the next link; a `q` or `limit` that cannot be is a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_list_is_searched_by_prefix_and_bad_input_is_refused() {
    let app = spawn_app().await;
    let me = Visitor::new(&app.base);
    me.register(&unique_name("me")).await;
    let p = unique_name("srch");
    rollcall_tests::seed_users(&*app.ctx.store, (0..5).map(|i| format!("{p}{i}"))).await;
    // The server lists from its presence view, which learns of sign-ups
    // from the store's log: wait until it has all five.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = me.get(&format!("/api/users?q={p}&limit=5")).await;
        let n = serde_json::from_str::<Vec<Value>>(&all.body).map_or(0, |v| v.len());
        if n == 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the view has {n} of 5"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = me.get(&format!("/api/users?q={p}&limit=3")).await;
    assert_eq!(r.status, 200);
    let got: Vec<Value> = serde_json::from_str(&r.body).expect("JSON");
    let names: Vec<&str> = got
        .iter()
        .map(|u| u["username"].as_str().expect("name"))
        .collect();
    assert_eq!(names, [format!("{p}0"), format!("{p}1"), format!("{p}2")]);
    let link = r.link.expect("a next link");
    assert_eq!(
        link,
        format!("</api/users?q={p}&after={p}2&limit=3>; rel=\"next\"")
    );
    let rest: Vec<Value> = serde_json::from_str(
        &me.get(&format!("/api/users?q={p}&after={p}2&limit=3"))
            .await
            .body,
    )
    .expect("JSON");
    assert_eq!(rest.len(), 2);
    for bad in [
        "q=a%20b",
        "q=%3Cscript%3E",
        "limit=0",
        "limit=5001",
        "limit=x",
        "after=%20",
    ] {
        let r = me.get(&format!("/api/users?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("\"error\""), "{bad}: {}", r.body);
    }
    assert!(
        me.get(&format!("/api/users?q={}", "x".repeat(151)))
            .await
            .status
            == 400
    );
    // An empty q is no filter.
    assert_eq!(me.get("/api/users?q=").await.status, 200);
}

/// Not part of the suite: the page's figures with 10,000 seeded users (4
/// online) — time to first render (`domContentLoadedEventEnd` of the
/// navigation timing) and to interactive (the `rollcall-ready` mark the
/// script sets once its socket's snapshot is applied), the median of 10
/// loads, and the rows rendered. Run with a release build:
/// `cargo test --release -p rollcall-tests --test it page::figures -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand (see the README's Benchmarks)"]
async fn figures() {
    let mut driver = driver().await.expect("a browser");
    let seeded: usize = std::env::var("ROLLCALL_PAGE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (app, page, _sockets) = a_big_user_base(&mut driver, seeded).await;
    let mut dcl = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..10 {
        page.goto(&format!("{}/", app.base)).await.expect("reload");
        wait_ready(&page).await;
        let t = js(
            &page,
            r#"
            const nav = performance.getEntriesByType('navigation')[0];
            const mark = performance.getEntriesByName('rollcall-ready')[0];
            return [nav.domContentLoadedEventEnd, mark ? mark.startTime : null,
                    document.querySelectorAll('li[data-username]').length, nav.transferSize];"#,
        )
        .await;
        dcl.push(t[0].as_f64().expect("ms"));
        ready.push(t[1].as_f64().expect("ms"));
        eprintln!("load: {t}");
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "| {} | {:.1} | {:.1} | {} |",
        seeded + 4,
        median(dcl),
        median(ready),
        row_count(&page).await
    );
    page.close().await.expect("close");
}

/// Not part of the suite: writes a screenshot of the page with a few users
/// to `$ROLLCALL_SCREENSHOT` (e.g. `docs/page.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a file; run by hand with ROLLCALL_SCREENSHOT=path"]
async fn screenshot() {
    let Ok(path) = std::env::var("ROLLCALL_SCREENSHOT") else {
        return;
    };
    let mut driver = driver().await.expect("a browser");
    let app = spawn_app().await;
    let http = Visitor::new(&app.base);
    for n in ["alice", "erin", "frank", "grace"] {
        http.sign_up(n, PASSWORD).await;
    }
    // Dave was here a moment ago: "last seen just now".
    let dave = Visitor::new(&app.base);
    dave.register("dave").await;
    dave.socket().await.close().await;
    let mut online = Vec::new();
    for n in ["bob", "carol", "heidi"] {
        let v = Visitor::new(&app.base);
        v.register(n).await;
        online.push(v.socket().await);
    }
    let page = driver.browser().await;
    page.set_window_size(720, 900).await.expect("size");
    log_in(&page, &app.base, "alice", PASSWORD).await;
    wait_count(&page, "4 online · 8 users").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = page.screenshot().await.expect("screenshot");
    std::fs::write(&path, png).expect("write the screenshot");
    page.close().await.expect("close");
}
