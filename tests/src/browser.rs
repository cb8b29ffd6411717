//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), one independent browser per [`Chromedriver::browser`].

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// A `chromedriver` process on a free loopback port; killed when dropped.
pub struct Chromedriver {
    child: Child,
    url: String,
    profiles: Vec<std::path::PathBuf>,
}

/// Where Chromium lives (`ROLLCALL_CHROMIUM` overrides).
fn chromium_binary() -> String {
    std::env::var("ROLLCALL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Chromedriver {
    /// Starts chromedriver, or `None` if it or Chromium is not installed.
    pub async fn start() -> Option<Self> {
        let driver =
            std::env::var("ROLLCALL_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        if !std::path::Path::new(&chromium_binary()).exists() {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("http://127.0.0.1:{port}");
        let me = Self {
            child,
            url,
            profiles: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(me);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start on port {port}");
    }

    /// A new, independent headless browser (its own profile: no shared cookies).
    pub async fn browser(&mut self) -> Client {
        let profile = std::env::temp_dir().join(crate::unique_name("rollcall-chrome-"));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let args = serde_json::json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1024,768",
            format!("--user-data-dir={}", profile.display()),
        ]);
        self.profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium_binary(), "args": args }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for p in &self.profiles {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Polls the text of the list row of `name` until it equals `want`.
pub async fn wait_for_row(browser: &Client, name: &str, want: &str) {
    wait_for_row_within(browser, name, want, Duration::from_secs(15)).await;
}

/// [`wait_for_row`] with its own deadline.
pub async fn wait_for_row_within(browser: &Client, name: &str, want: &str, within: Duration) {
    let css = format!("li[data-username=\"{name}\"]");
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(el) = browser.find(Locator::Css(&css)).await
            && let Ok(text) = el.text().await
        {
            if text == want {
                return;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("row {name:?} never read {want:?} (last: {last:?})");
}

/// Logs in through the page's form and waits for the live list.
pub async fn log_in(browser: &Client, base: &str, name: &str, password: &str) {
    browser
        .goto(&format!("{base}/log_in/"))
        .await
        .expect("open log in");
    browser
        .find(Locator::Id("id_username"))
        .await
        .expect("field")
        .send_keys(name)
        .await
        .expect("type");
    browser
        .find(Locator::Id("id_password"))
        .await
        .expect("field")
        .send_keys(password)
        .await
        .expect("type");
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_live(browser).await;
}

/// Waits until the page's socket is open.
pub async fn wait_live(browser: &Client) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(el) = browser.find(Locator::Id("users")).await
            && el.attr("data-state").await.ok().flatten().as_deref() == Some("live")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = browser
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    panic!("the page never went live (at {url})");
}
