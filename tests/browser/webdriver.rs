//! A minimal W3C WebDriver client over reqwest, driving headless Chromium through chromedriver.
//! Only what the browser tests need: sessions, navigation, CSS lookup, typing, clearing, clicking,
//! reading text, scripts and screenshots.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser tests can run here. Without chromedriver they are skipped (so `cargo
/// test` works on a bare machine) unless `MCH_REQUIRE_BROWSER=1`, which makes that a failure.
/// WebDriver key codes (W3C WebDriver §17.4.2) for [`Browser::press`].
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const CONTROL: &str = "\u{E009}";
pub const ARROW_DOWN: &str = "\u{E015}";

pub fn available() -> bool {
    let present = std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !present {
        assert!(
            std::env::var("MCH_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "MCH_REQUIRE_BROWSER=1 but {CHROMEDRIVER} or {CHROMIUM} is missing \
             (apt-get install chromium chromium-driver chromium-l10n fonts-wqy-microhei)"
        );
        eprintln!("skipping browser test: {CHROMEDRIVER} or {CHROMIUM} not installed");
    }
    present
}

/// A chromedriver process, shut down (with its browsers) when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `/shutdown` closes chromedriver's browsers too; this also runs when a test panics.
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = write!(
                s,
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Driver,
}

/// A found element (its WebDriver reference).
pub struct Element(String);

impl Browser {
    /// Start chromedriver on a free port and open a headless Chromium session.
    pub async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Chromium on Linux takes its locale (date inputs' order among it) from these.
            .env("LANGUAGE", "zh_CN:zh")
            .env("LANG", "zh_CN.UTF-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = Driver {
            child,
            port,
            _profile: profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", "--lang=zh-CN", format!("--user-data-dir={}", driver._profile.path().display())],
            // As on a clinic's computer: a Chinese browser, whose date inputs read 年/月/日.
            "prefs": {"intl.accept_languages": "zh-CN,zh"}}}}});
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = http
                .post(format!("http://127.0.0.1:{port}/session"))
                .json(&caps)
                .send()
                .await;
            let last = match r {
                Ok(r) => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    match v["value"]["sessionId"].as_str() {
                        Some(id) => {
                            let session = format!("http://127.0.0.1:{port}/session/{id}");
                            return Browser {
                                http,
                                session,
                                _driver: driver,
                            };
                        }
                        None => v.to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            assert!(Instant::now() < deadline, "no WebDriver session within 10 s: {last}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One WebDriver command; `Err` holds the W3C error code and message.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let ok = r.status().is_success();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("{}: {}", v["value"]["error"], v["value"]["message"]))
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.cmd(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_string()
    }

    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap_or_default().to_string()
    }

    /// The element for a CSS selector, if the page has one.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        // The reference is the single value of `{"element-6066-…": "<id>"}`.
        v.as_object()?
            .values()
            .next()?
            .as_str()
            .map(|id| Element(id.to_string()))
    }

    /// The element for a CSS selector, waiting up to 5 s for it (pages load after a submit).
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element `{css}` on {}:\n{}",
                    self.current_url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// Empty an input (WebDriver Element Clear), e.g. before typing over a pre-filled value.
    pub async fn clear(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/clear", e.0), json!({})).await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/click", e.0), json!({})).await;
    }

    /// Click something that loads a new page (a submit button, a link) and wait until the new
    /// document has loaded, so that later lookups cannot hit the old page.
    pub async fn click_and_wait(&self, css: &str) {
        self.execute("document.documentElement.dataset.wdOld = '1';", json!([]))
            .await;
        self.click(css).await;
        let script = "return document.readyState === 'complete' && document.documentElement.dataset.wdOld !== '1';";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A script may fail while the navigation is under way; just ask again.
            let args = json!({ "script": script, "args": [] });
            if self.cmd(reqwest::Method::POST, "/execute/sync", Some(args)).await == Ok(json!(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking `{css}` (still on {})",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Press keys where the focus is (WebDriver key actions), as a user at the keyboard would:
    /// each of `keys` is a character or a WebDriver key code such as [`TAB`], [`ENTER`],
    /// [`ARROW_DOWN`]; `with` (e.g. [`CONTROL`]) is held down around them.
    pub async fn press(&self, with: Option<&str>, keys: &[&str]) {
        let mut actions = Vec::new();
        if let Some(m) = with {
            actions.push(json!({"type": "keyDown", "value": m}));
        }
        for k in keys {
            for ch in k.chars() {
                actions.push(json!({"type": "keyDown", "value": ch.to_string()}));
                actions.push(json!({"type": "keyUp", "value": ch.to_string()}));
            }
        }
        if let Some(m) = with {
            actions.push(json!({"type": "keyUp", "value": m}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
        let _ = self.cmd(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Resize the browser window (CSS pixels), e.g. to a phone's 390 px.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// A screenshot of the viewport as PNG bytes.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        base64_decode(self.get("/screenshot").await.as_str().unwrap_or_default())
    }

    /// End the session (closes the browser); chromedriver itself stops on drop.
    pub async fn quit(self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::with_capacity(s.len() * 3 / 4), 0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
