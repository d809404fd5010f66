//! Test harness: the real server on a random port against a fresh database — a new SQLite file,
//! or, when `MCH_TEST_DATABASE_URL` is a postgres URL, a new PostgreSQL database created for
//! this test and dropped after it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::sync::OnceLock;

use mch_chain::auth::model::Role;
use mch_chain::auth::service::system_actor;
use mch_chain::config::Settings;
use mch_chain::facility::model::NewFacility;
use mch_chain::storage::Db;
use mch_chain::{Application, auth, facility};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

pub const PASSWORD: &str = "test-password-123";

/// A database for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            let _ = pg_exec(admin_url, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

fn pg_exec(admin_url: &str, sql: &str) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let mut c = PgConnection::establish(admin_url).map_err(|e| e.to_string())?;
    c.batch_execute(sql).map_err(|e| e.to_string())
}

/// The test server on loopback without TLS. A test ends while its server's threads still hold
/// connections (the pool, the writer); with TLS on (libpq's default `sslmode=prefer`, and Debian's
/// server has `ssl = on`) a process exiting while another thread is inside OpenSSL can crash in
/// OpenSSL's exit-time clean-up — CI saw a test binary pass every test and then die of SIGSEGV.
/// An explicit `sslmode` in the URL is kept.
fn without_tls(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// A fresh, empty database (migrations run when the app opens it).
pub fn fresh_db() -> TestDb {
    match std::env::var("MCH_TEST_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let admin = without_tls(&admin);
            let name = format!("mch_test_{}", uuid::Uuid::new_v4().simple());
            pg_exec(&admin, &format!("CREATE DATABASE \"{name}\"")).expect("create test database");
            let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
            let base = base
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .expect("postgres URL with a database name");
            TestDb {
                url: format!("{base}/{name}?{query}"),
                _dir: None,
                pg_admin: Some((admin, name)),
            }
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("mch.db").display());
            TestDb {
                url,
                _dir: Some(dir),
                pg_admin: None,
            }
        }
    }
}

/// A running server with a small region: two townships of county 340524 (东关 101, 西河 102),
/// the county MCH centre, and a facility in the neighbouring county 340525.
pub struct TestApp {
    pub base: String,
    /// The MLLP listener's address (127.0.0.1:port).
    pub mllp: String,
    pub db: Db,
    pub test_db: TestDb,
}

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with some settings changed (limits, timeouts).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let test_db = fresh_db();
    let mut settings = Settings::for_url(&test_db.url);
    configure(&mut settings);
    let app = Application::build(&settings).expect("build app");
    let base = format!("http://127.0.0.1:{}", app.http_port());
    let mllp = format!("127.0.0.1:{}", app.mllp_port().unwrap_or(0));
    let db = app.db();
    tokio::spawn(app.run_until_stopped());
    let t = TestApp {
        base,
        mllp,
        db,
        test_db,
    };
    t.seed_region().await;
    t
}

/// Facilities: code, name, level, kind, county, township, capabilities. The county hospital
/// `CTYHOSP` is the county's critical-care centre (危重孕产妇/新生儿救治中心), `PROV` the province's.
const REGION: &[(&str, &str, &str, &str, &str, Option<&str>, &str)] = &[
    (
        "TWN-A",
        "东关镇卫生院",
        "township",
        "health_centre",
        "340524",
        Some("340524101"),
        "midwifery",
    ),
    (
        "TWN-B",
        "西河乡卫生院",
        "township",
        "health_centre",
        "340524",
        Some("340524102"),
        "",
    ),
    (
        "COUNTY",
        "示范县妇幼保健院",
        "county",
        "mch_centre",
        "340524",
        None,
        "midwifery",
    ),
    (
        "NBR",
        "邻县妇幼保健院",
        "county",
        "mch_centre",
        "340525",
        None,
        "maternal_critical_care,icu",
    ),
    (
        "PROV",
        "示范省妇幼保健院",
        "province",
        "mch_centre",
        "340000",
        None,
        "maternal_critical_care,neonatal_critical_care,icu,nicu,blood_bank",
    ),
    (
        "CTYHOSP",
        "示范县人民医院",
        "county",
        "hospital",
        "340524",
        None,
        "maternal_critical_care,neonatal_critical_care,icu,blood_bank,operating_theatre_24h",
    ),
];

/// Users: `<role>.<facility code lower-case>`, e.g. `clinician.twn-a`.
pub const USERS: &[(&str, &str)] = &[
    ("clinician", "TWN-A"),
    ("clinician", "TWN-B"),
    ("registrar", "TWN-A"),
    ("referral_coordinator", "COUNTY"),
    ("clinician", "COUNTY"),
    ("clinician", "NBR"),
    ("admin", "PROV"),
    ("auditor", "PROV"),
    ("clinician", "CTYHOSP"),
    ("referral_coordinator", "CTYHOSP"),
    ("clinician", "PROV"),
];

pub fn username(role: &str, facility: &str) -> String {
    format!("{role}.{}", facility.to_lowercase())
}

impl TestApp {
    async fn seed_region(&self) {
        for (code, name, level, kind, j, t, caps) in REGION {
            facility::service::add(
                &self.db,
                NewFacility {
                    code: code.to_string(),
                    name: name.to_string(),
                    level: level.to_string(),
                    kind: kind.to_string(),
                    jurisdiction: j.to_string(),
                    township_code: t.map(str::to_string),
                    capabilities: caps.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                },
            )
            .await
            .expect("facility");
        }
        for (role, fac) in USERS {
            auth::service::add_user(
                &self.db,
                &username(role, fac),
                "测试用户",
                role,
                fac,
                PASSWORD.to_string(),
            )
            .await
            .expect("user");
        }
    }

    pub async fn system_actor(&self, code: &str, role: Role) -> mch_chain::auth::model::Actor {
        let f = facility::service::by_code(&self.db, code).await.expect("facility");
        system_actor(f, role)
    }

    /// A client with its own cookie jar (no redirects followed).
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: self.base.clone(),
            cookie: None,
            csrf: None,
        }
    }

    /// A client whose connections come from another loopback address (127.0.0.2, …): another
    /// machine, as far as the server can tell (Linux routes all of 127.0.0.0/8 to loopback).
    pub fn client_from(&self, addr: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(addr.parse::<std::net::IpAddr>().expect("an IP address"))
                .build()
                .expect("client"),
            base: self.base.clone(),
            cookie: None,
            csrf: None,
        }
    }

    /// A logged-in client for `<role>.<facility>`.
    pub async fn login(&self, role: &str, facility: &str) -> Client {
        let mut c = self.client();
        let r = c.login(&username(role, facility), PASSWORD).await;
        assert_eq!(r.status(), 303, "login of {role}.{facility} failed");
        c
    }

    pub fn url(&self) -> &str {
        &self.test_db.url
    }
}

/// A browser-like client: keeps the session cookie itself (the cookie is `Secure`, which a
/// generic cookie jar would not send over plain http to 127.0.0.1) and the CSRF token of the
/// last page it read.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Client {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.cookie {
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("mch_session={c}")).expect("cookie"),
            );
        }
        h
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap_or("");
            if let Some(rest) = s.strip_prefix("mch_session=") {
                let value = rest.split(';').next().unwrap_or("");
                self.cookie = if value.is_empty() {
                    None
                } else {
                    Some(value.to_string())
                };
            }
        }
    }

    pub async fn login(&mut self, username: &str, password: &str) -> reqwest::Response {
        let r = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login request");
        self.keep_cookie(&r);
        if r.status() == 303 {
            // Read a page to learn the session's CSRF token.
            self.get("/persons").await;
        }
        r
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .expect("GET");
        self.keep_cookie(&r);
        let page = to_page(r).await;
        if let Some(t) = extract_csrf(&page.body) {
            self.csrf = Some(t);
        }
        page
    }

    /// Submit a form with the session's CSRF token added.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone().unwrap_or_default();
        all.push(("csrf_token", &csrf));
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(self.headers())
            .form(&all)
            .send()
            .await
            .expect("POST");
        self.keep_cookie(&r);
        to_page(r).await
    }

    /// Submit a form exactly as given (no CSRF token added).
    pub async fn post_form_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(self.headers())
            .form(fields)
            .send()
            .await
            .expect("POST");
        to_page(r).await
    }

    /// JSON POST with the CSRF header of the session.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let mut h = self.headers();
        if let Some(t) = &self.csrf {
            h.insert("x-csrf-token", HeaderValue::from_str(t).expect("csrf"));
        }
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(h)
            .json(body)
            .send()
            .await
            .expect("POST json");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&mut self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .expect("GET json");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn to_page(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        location,
        body: r.text().await.unwrap_or_default(),
    }
}

/// The `Retry-After` seconds of an answer, when it has one.
pub fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub fn extract_csrf(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let v = &html[i..i + 64.min(html.len() - i)];
    (v.len() == 64).then(|| v.to_string())
}

/// A valid 18-digit ID number for a birth date and sequence (odd = male, even = female).
pub fn id_number(area: &str, birth: &str, seq: u32) -> String {
    let body = format!("{area}{}{:03}", birth.replace('-', ""), seq);
    let w = [7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

/// Days ago as YYYY-MM-DD (China date).
pub fn days_ago(n: i64) -> String {
    (mch_chain::ids::today_china() - chrono::Duration::days(n)).to_string()
}

/// A query-string value, percent-encoded (names are Chinese).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
