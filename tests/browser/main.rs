//! End-to-end tests in headless Chromium: a doctor's real paths through the pages, against the
//! real server (tests/api/helpers.rs) and a fresh database.
//!
//! Needs `apt-get install chromium chromium-driver fonts-wqy-microhei`; without chromedriver each
//! test is skipped, unless `MCH_REQUIRE_BROWSER=1` (CI), which makes that a failure.

// Test code: a failed setup step should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/helpers.rs"]
mod helpers;
mod webdriver;

use serde_json::json;

use helpers::TestApp;
use webdriver::Browser;

/// The address the browser uses: the server's own `http://127.0.0.1:PORT`. The session cookie
/// is `Secure`; Chromium treats 127.0.0.1 (like localhost) as a secure context and keeps it.
fn browser_base(app: &TestApp) -> String {
    app.base.clone()
}

/// Log in through the login form and land on the worklist.
async fn log_in(b: &Browser, base: &str, username: &str) {
    b.goto(&format!("{base}/login")).await;
    b.type_into("#username", username).await;
    b.type_into("#password", helpers::PASSWORD).await;
    b.click_and_wait("#login-submit").await;
    assert_eq!(b.text("h1").await, "我的工作台", "login did not land on the worklist");
    assert_eq!(b.current_url().await, format!("{base}/"));
}

/// Path of the current page (without the origin and query).
async fn path(b: &Browser, base: &str) -> String {
    let url = b.current_url().await;
    let rest = url.strip_prefix(base).unwrap_or(&url).to_string();
    rest.split('?').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_logs_in_registers_a_woman_books_a_pregnancy_and_records_a_visit() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let base = browser_base(&app);
    let b = Browser::start().await;

    log_in(&b, &base, "clinician.twn-a").await;
    assert!(b.source().await.contains("工作台"));

    // Register a woman.
    b.goto(&format!("{base}/persons")).await;
    let id_number = helpers::id_number("340524", "1996-04-18", 2);
    b.type_into("#person-form input[name=name]", "王小红").await;
    b.type_into("#person-form input[name=id_number]", &id_number).await;
    b.click_and_wait("#register-submit").await;
    assert_eq!(b.text("p.notice").await, "已建档");
    assert_eq!(b.text("h1").await, "王小红");
    assert!(path(&b, &base).await.starts_with("/persons/"));

    // Book the pregnancy: LMP 10 weeks ago.
    let lmp = helpers::days_ago(70);
    b.execute("document.querySelector('#lmp').value = arguments[0];", json!([lmp]))
        .await;
    b.type_into("#gravidity", "1").await;
    b.type_into("#parity", "0").await;
    b.click_and_wait("#booking-submit").await;
    assert_eq!(b.text("#notice").await, "建册成功");
    let pregnancy_path = path(&b, &base).await;
    assert!(pregnancy_path.starts_with("/pregnancies/"), "{pregnancy_path}");
    let edd = chrono::NaiveDate::parse_from_str(&lmp, "%Y-%m-%d").unwrap() + chrono::Duration::days(280);
    assert_eq!(b.text("#edd").await, edd.to_string());
    assert_eq!(b.text("#ga-today").await, "10+0 周");

    let png = b.screenshot_png().await;
    let shot = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(shot.path(), &png).unwrap();
    let saved = std::fs::read(shot.path()).unwrap();
    assert!(saved.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is not a PNG");
    assert!(
        saved.len() > 10_000,
        "screenshot suspiciously small: {} bytes",
        saved.len()
    );

    // Record an antenatal visit.
    b.click_and_wait("#new-visit").await;
    b.type_into("#weight_kg", "58.5").await;
    b.type_into("#systolic_mmhg", "118").await;
    b.type_into("#diastolic_mmhg", "76").await;
    b.type_into("#hb_g_l", "115").await;
    b.click_and_wait("#visit-submit").await;
    assert_eq!(b.text("#notice").await, "随访记录已保存");
    assert_eq!(path(&b, &base).await, pregnancy_path);
    let visits = b.text("#visits").await;
    assert!(visits.contains("58.5"), "{visits}");
    assert!(visits.contains("118/76"), "{visits}");

    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implausible_blood_pressure_is_refused_in_the_form_and_nothing_is_saved() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut api = app.login("clinician", "TWN-A").await;
    let id_number = helpers::id_number("340524", "1994-09-03", 4);
    let (status, person) = api
        .post_json("/api/persons", &json!({"name": "李春梅", "id_number": id_number}))
        .await;
    assert_eq!(status, 201, "{person}");
    assert_eq!(person["result"], "created");
    let person_id = person["person_id"].as_str().unwrap();
    let (status, pregnancy) = api
        .post_json(
            &format!("/api/persons/{person_id}/pregnancies"),
            &json!({"lmp": helpers::days_ago(84), "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(status, 201, "{pregnancy}");
    let pregnancy_id = pregnancy["id"].as_str().unwrap();

    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.twn-a").await;
    b.goto(&format!("{base}/pregnancies/{pregnancy_id}/visits/new")).await;
    b.type_into("#systolic_mmhg", "400").await;
    b.type_into("#diastolic_mmhg", "10").await;
    b.click_and_wait("#visit-submit").await;

    let error = b.text("#err-systolic").await;
    assert!(error.contains("不合理"), "systolic error: {error:?}");
    assert!(b.try_find("#form-errors").await.is_some(), "no form-level error");
    assert_eq!(path(&b, &base).await, format!("/pregnancies/{pregnancy_id}/visits"));
    // The refused values are kept in the form for correction.
    let kept = b
        .execute("return document.querySelector('#systolic_mmhg').value;", json!([]))
        .await;
    assert_eq!(kept, "400");

    b.goto(&format!("{base}/pregnancies/{pregnancy_id}")).await;
    b.find("#schedule").await;
    assert!(b.try_find("#visits").await.is_none(), "a visit was saved");
    let (_, record) = api.get_json(&format!("/api/pregnancies/{pregnancy_id}")).await;
    assert_eq!(record["visits"], json!([]), "{record}");

    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_rejects_a_wrong_password() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let base = browser_base(&app);
    let b = Browser::start().await;

    b.goto(&format!("{base}/login")).await;
    b.type_into("#username", "clinician.twn-a").await;
    b.type_into("#password", "not-the-password").await;
    b.click_and_wait("#login-submit").await;

    assert_eq!(b.text("#login-error").await, "用户名或密码错误");
    assert_eq!(path(&b, &base).await, "/login");
    // Still logged out: the worklist sends the browser back to the login page.
    b.goto(&format!("{base}/")).await;
    b.find("#login-form").await;
    assert_eq!(path(&b, &base).await, "/login");

    b.quit().await;
}
