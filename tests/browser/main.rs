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

/// A woman (`seq` makes her ID number unique) with a pregnancy booked `weeks_ago` weeks ago,
/// through the JSON API as `api`'s user; returns the pregnancy id.
async fn booked(api: &mut helpers::Client, name: &str, seq: u32, weeks_ago: i64) -> String {
    let id_number = helpers::id_number("340524", "1993-05-12", seq);
    let (status, person) = api
        .post_json("/api/persons", &json!({"name": name, "id_number": id_number}))
        .await;
    assert_eq!(status, 201, "{person}");
    let person_id = person["person_id"].as_str().unwrap();
    let (status, pregnancy) = api
        .post_json(
            &format!("/api/persons/{person_id}/pregnancies"),
            &json!({"lmp": helpers::days_ago(weeks_ago * 7), "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(status, 201, "{pregnancy}");
    pregnancy["id"].as_str().unwrap().to_string()
}

/// Tick a catalogue item of the grading form, opening its `<details>` group first if closed.
async fn tick_catalogue_item(b: &Browser, code: &str) {
    let css = format!("[id=\"tick-{code}\"]");
    let opened = b
        .execute(
            "const d = document.querySelector(arguments[0]).closest('details'); \
             if (!d.open) { d.querySelector('summary').click(); } return d.open;",
            json!([css]),
        )
        .await;
    assert_eq!(opened, true, "the catalogue group of {code} did not open");
    b.click(&css).await;
    let checked = b
        .execute("return document.querySelector(arguments[0]).checked;", json!([css]))
        .await;
    assert_eq!(checked, true, "{code} is not ticked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_clinician_grades_a_woman_orange_in_the_form_and_sees_the_case_and_report() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let pregnancy_id = booked(&mut town, "周晓燕", 20, 20).await;

    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.county").await;
    b.goto(&format!("{base}/pregnancies/{pregnancy_id}/risk/grade")).await;
    b.find("#grade-form").await;
    assert!(b.text("h1").await.contains("周晓燕"));

    // Hb 58 g/L (O2.6) and a clinician-ticked orange item (O3.7).
    b.clear("#hb_g_l").await;
    b.type_into("#hb_g_l", "58").await;
    let hb = b
        .execute("return document.querySelector('#hb_g_l').value;", json!([]))
        .await;
    assert_eq!(hb, "58");
    tick_catalogue_item(&b, "O3.7").await;

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

    b.click_and_wait("#grade-submit").await;
    assert_eq!(path(&b, &base).await, format!("/pregnancies/{pregnancy_id}"));
    assert_eq!(b.text("#risk-colour").await, "橙色");
    let factors = b.text("#risk").await;
    assert!(factors.contains("O2.6") && factors.contains("O3.7"), "{factors}");

    // The case page: orange, with a report to send and (as the county MCH centre) acknowledge.
    b.click_and_wait("#case-link").await;
    assert!(path(&b, &base).await.starts_with("/risk/cases/"));
    assert_eq!(b.text("#case-colour").await, "橙色");
    let reports = b.text("#reports").await;
    assert!(reports.contains("未报送"), "{reports}");
    b.click_and_wait(".send-report").await;
    assert_eq!(b.text("#notice").await, "已保存");
    assert!(b.try_find(".send-report").await.is_none(), "still unsent");
    b.click_and_wait(".ack-report").await;
    assert_eq!(b.text("#notice").await, "已保存");
    assert!(b.try_find(".ack-report").await.is_none(), "still unacknowledged");
    // The 签收 column now shows when and by whom (no button, no 待签收).
    let ack_cell = b.text("#reports tbody tr td:nth-child(5)").await;
    assert!(
        ack_cell.contains("（clinician.county）") && !ack_cell.contains("待签收"),
        "no acknowledgement in the reports table: {ack_cell:?}"
    );
    let sent_cell = b.text("#reports tbody tr td:nth-child(3)").await;
    assert!(sent_cell.contains("（clinician.county）"), "{sent_cell:?}");
    let events = b.text("#case-events").await;
    assert!(events.contains("report_acknowledged"), "{events}");

    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_data_factor_without_a_reason_is_refused_in_the_form() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let pregnancy_id = booked(&mut town, "孙丽娟", 22, 18).await;
    let (status, visit) = town
        .post_json(
            &format!("/api/pregnancies/{pregnancy_id}/visits"),
            &json!({"hb_g_l": "58"}),
        )
        .await;
    assert_eq!(status, 201, "{visit}");

    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.county").await;
    let form_path = format!("/pregnancies/{pregnancy_id}/risk/grade");
    b.goto(&format!("{base}{form_path}")).await;
    let proposed = b.text("#proposed-factors").await;
    assert!(proposed.contains("O2.6"), "{proposed}");
    assert_eq!(b.text("#proposal-colour").await, "橙色");

    b.click("input[name=\"remove_O2.6\"]").await;
    b.click_and_wait("#grade-submit").await;

    let errors = b.text("#grade-errors").await;
    assert!(errors.contains("理由"), "{errors}");
    assert_eq!(path(&b, &base).await, form_path);
    b.find("#grade-form").await;
    assert!(
        b.try_find("#risk-colour").await.is_none(),
        "landed on the pregnancy page"
    );
    // The error also sits next to the reason field, and the facts are kept for correction.
    let field_error = b.text("#proposed-factors .field-error").await;
    assert!(field_error.contains("理由"), "{field_error:?}");
    let hb = b
        .execute("return document.querySelector('#hb_g_l').value;", json!([]))
        .await;
    assert_eq!(hb, "58");

    let mut county = app.login("clinician", "COUNTY").await;
    let (status, record) = county.get_json(&format!("/api/pregnancies/{pregnancy_id}")).await;
    assert_eq!(status, 200, "{record}");
    assert!(record["risk"]["current"].is_null(), "a grade was confirmed: {record}");
    assert!(record["risk"]["case"].is_null(), "a case was opened: {record}");
    assert_eq!(
        record["risk"]["pending"]["colour"], "orange",
        "the system's proposal is still waiting: {record}"
    );

    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_board_lists_open_cases_and_filters_by_colour() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    // Booked and graded orange first, so a board in insertion order would list her first.
    let orange = booked(&mut town, "钱橙橙", 24, 26).await;
    let red = booked(&mut town, "赵红红", 26, 22).await;
    for (p, facts, colour) in [
        (&orange, json!({"factors": ["O3.2"]}), "orange"),
        (&red, json!({"hb_g_l": 35}), "red"),
    ] {
        let (status, a) = county
            .post_json(&format!("/api/pregnancies/{p}/risk/grade"), &json!({"facts": facts}))
            .await;
        assert_eq!(status, 201, "{a}");
        assert_eq!(a["colour"], colour, "{a}");
    }

    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.county").await;
    b.goto(&format!("{base}/risk/board")).await;
    let board = b.text("#board").await;
    let (at_red, at_orange) = (board.find("赵红红"), board.find("钱橙橙"));
    assert!(at_red.is_some() && at_orange.is_some(), "{board}");
    assert!(at_red < at_orange, "red is not listed first:\n{board}");
    let counts = b.text("#board-counts").await;
    assert!(counts.contains("红色 1") && counts.contains("橙色 1"), "{counts}");
    let rows = "return document.querySelectorAll('#board tbody tr').length;";
    assert_eq!(b.execute(rows, json!([])).await, 2);

    b.click("#board-filter select[name=colour] option[value=red]").await;
    b.click_and_wait("#board-filter button[type=submit]").await;
    assert_eq!(path(&b, &base).await, "/risk/board");
    assert!(b.current_url().await.contains("colour=red"));
    let board = b.text("#board").await;
    assert!(board.contains("赵红红") && !board.contains("钱橙橙"), "{board}");
    assert_eq!(b.execute(rows, json!([])).await, 1);
    let selected = b
        .execute(
            "return document.querySelector('#board-filter select[name=colour]').value;",
            json!([]),
        )
        .await;
    assert_eq!(selected, "red", "the filter does not keep its choice");

    // The name links to the case.
    b.click_and_wait("#board tbody a").await;
    assert!(path(&b, &base).await.starts_with("/risk/cases/"));
    assert_eq!(b.text("#case-colour").await, "红色");

    b.quit().await;
}

/// Poll a script until it returns `want` (the board updates by itself; no reload, no sleep-and-hope).
async fn wait_for(b: &Browser, script: &str, want: serde_json::Value, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    loop {
        let got = b.execute(script, json!([])).await;
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: still {got}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_referral_board_updates_without_reload_when_another_user_accepts() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let base = browser_base(&app);
    // A township clinician registers a woman at 32 weeks.
    let mut sender = app.login("clinician", "TWN-A").await;
    let id_number = helpers::id_number("340524", "1993-02-11", 6);
    let (s, person) = sender
        .post_json("/api/persons", &json!({"name": "孙晓燕", "id_number": id_number}))
        .await;
    assert_eq!(s, 201, "{person}");
    let person_id = person["person_id"].as_str().unwrap().to_string();
    let (s, p) = sender
        .post_json(
            &format!("/api/persons/{person_id}/pregnancies"),
            &json!({"lmp": helpers::days_ago(224), "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");

    // The county centre's coordinator watches the board.
    let b = Browser::start().await;
    log_in(&b, &base, "referral_coordinator.ctyhosp").await;
    b.goto(&format!("{base}/referrals/board")).await;
    assert_eq!(
        b.text("h1").await.split_whitespace().next().unwrap_or(""),
        "转诊调度看板"
    );
    assert!(b.try_find("#board-empty").await.is_some());
    b.execute("window.__sameDocument = 1;", json!([])).await;

    // An emergency arrives: the row appears, flagged, with the alert banner.
    let (s, r) = sender
        .post_json(
            "/api/referrals",
            &json!({"person_id": person_id, "urgency": "emergency", "reason": "胎盘早剥，阴道大量出血", "to_facility": "CTYHOSP", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    wait_for(
        &b,
        "var r = document.querySelector('tr.board-row .state'); return r ? r.textContent : '';",
        json!("已发出"),
        "the new referral appears on the board",
    )
    .await;
    let banner_hidden = b
        .execute("return document.getElementById('alert-banner').hidden;", json!([]))
        .await;
    assert_eq!(banner_hidden, json!(false), "a new emergency raises the alert");
    let timer = b.text("tr.board-row .timer").await;
    assert!(timer.contains("已用"), "the step's clock runs: {timer}");

    // Another user of the centre accepts it through the API: the board follows by itself.
    let mut doctor = app.login("clinician", "CTYHOSP").await;
    let (s, v) = doctor
        .post_json(&format!("/api/referrals/{id}/accept"), &json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    wait_for(
        &b,
        "var r = document.querySelector('tr.board-row .state'); return r ? r.textContent : '';",
        json!("已接诊"),
        "the acceptance shows without reload",
    )
    .await;
    assert_eq!(
        b.execute("return window.__sameDocument;", json!([])).await,
        json!(1),
        "the page was not reloaded"
    );

    // One click on the board acknowledges a second emergency.
    let (s, r2) = sender
        .post_json(
            "/api/referrals",
            &json!({"person_id": person_id, "urgency": "emergency", "reason": "新生儿窒息复苏后", "to_facility": "CTYHOSP", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r2}");
    let id2 = r2["id"].as_str().unwrap().to_string();
    let button = format!("tr.board-row[data-id='{id2}'] button.act-acknowledge");
    wait_for(
        &b,
        &format!("return !!document.querySelector(\"{button}\");"),
        json!(true),
        "the second referral's one-click action",
    )
    .await;
    b.click_and_wait(&button).await;
    wait_for(
        &b,
        &format!(
            "var r = document.querySelector(\"tr.board-row[data-id='{id2}'] .state\"); return r ? r.textContent : '';"
        ),
        json!("已接收"),
        "acknowledged from the board",
    )
    .await;
    let (_, seen) = sender.get_json(&format!("/api/referrals/{id2}")).await;
    assert_eq!(seen["state"], "acknowledged");
    b.quit().await;
}

/// The delivery form makes the baby's own record; her page shows her schedule and, after a visit
/// recorded through the child visit form, her point on the WHO growth chart (SVG). The screenshot
/// is kept under `target/screenshots/` for review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_makes_the_babys_record_and_her_page_draws_her_on_the_who_growth_chart() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let base = browser_base(&app);
    let mut api = app.login("clinician", "TWN-A").await;
    let pregnancy = booked(&mut api, "孙小梅", 62, 39).await;
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.twn-a").await;
    b.goto(&format!("{base}/pregnancies/{pregnancy}")).await;
    b.type_into("#delivery_date", &helpers::days_ago(1).replace('-', ""))
        .await;
    b.execute(
        "document.querySelector('#delivery-form input[name=facility_name]').value = '示范县人民医院';
         document.querySelector('#delivery-form select[name=mode]').value = 'vaginal';
         document.querySelector('#delivery-form input[name=delivery_date]').value = arguments[0];",
        json!([helpers::days_ago(1)]),
    )
    .await;
    b.execute("document.querySelector('#baby1_sex').value = 'female';", json!([]))
        .await;
    b.type_into("#baby1_weight_g", "3250").await;
    b.click_and_wait("#delivery-submit").await;
    assert_eq!(b.text("p.notice").await, "分娩已登记", "{}", b.source().await);
    b.click_and_wait("a.child-link").await;
    assert_eq!(b.text("#child-name").await, "孙小梅之女 · 儿童保健档案");
    assert!(b.source().await.contains("新生儿家庭访视"));
    b.click_and_wait("#new-child-visit").await;
    b.type_into("#weight_kg", "3.3").await;
    b.type_into("#length_cm", "50").await;
    b.click_and_wait("#child-visit-submit").await;
    assert_eq!(b.text("p.notice").await, "儿童健康检查已保存");
    let points: serde_json::Value = b
        .execute(
            "return document.querySelectorAll('svg.growth-chart circle.child-point').length;",
            json!([]),
        )
        .await;
    assert!(points.as_u64().unwrap_or(0) >= 2, "her point on both charts: {points}");
    let curves: serde_json::Value = b
        .execute(
            "return document.querySelectorAll('svg.growth-chart polyline.sd').length;",
            json!([]),
        )
        .await;
    assert_eq!(curves, json!(10), "five WHO curves on each of the two charts");
    let png = b.screenshot_png().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("child-page.png"), &png).unwrap();
    b.quit().await;
}

/// Issue 12: a township doctor registers the couple on her page, records the pre-pregnancy
/// screening in the 19-item form, books her pregnancy; the 早孕随访 closes itself as 已孕 and the
/// county's grading form opens pre-filled from the screening, each value's source shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screened_woman_books_and_her_grading_form_starts_from_the_screening() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (status, person) = town
        .post_json(
            "/api/persons",
            &json!({"name": "陶慧", "id_number": helpers::id_number("340524", "1996-07-07", 30)}),
        )
        .await;
    assert_eq!(status, 201, "{person}");
    let person_id = person["person_id"].as_str().unwrap().to_string();

    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.twn-a").await;
    b.goto(&format!("{base}/persons/{person_id}")).await;
    b.type_into("#couple-form input[name=husband_name]", "常浩").await;
    b.type_into(
        "#couple-form input[name=husband_id_number]",
        &helpers::id_number("340524", "1994-01-01", 31),
    )
    .await;
    b.click_and_wait("#couple-submit").await;
    assert!(path(&b, &base).await.starts_with("/couples/"), "on the couple page");
    let couple_path = path(&b, &base).await;
    assert!(b.text("#husband").await.contains("常浩"));

    // The screening, 200 days ago: Hb 86 g/L, HBsAg positive, his smoking.
    b.click_and_wait("#new-screening").await;
    b.execute(
        "document.querySelector('#exam-form input[name=exam_date]').value = arguments[0];",
        json!([helpers::days_ago(200)]),
    )
    .await;
    b.type_into("#wife-hb_g_l", "86").await;
    b.type_into("#wife-height_cm", "158").await;
    b.type_into("#wife-weight_kg", "52").await;
    b.execute("document.querySelector('#wife-hbsag').value = 'positive';", json!([]))
        .await;
    b.click("#findings-husband input[name='husband.smoking']").await;
    b.click_and_wait("#exam-submit").await;
    assert_eq!(b.text("#advice-class").await, "高风险人群");

    // She books at her township.
    b.goto(&format!("{base}/persons/{person_id}")).await;
    b.execute(
        "document.querySelector('#lmp').value = arguments[0];",
        json!([helpers::days_ago(63)]),
    )
    .await;
    b.type_into("#gravidity", "1").await;
    b.type_into("#parity", "0").await;
    b.click_and_wait("#booking-submit").await;
    let pregnancy_path = path(&b, &base).await;
    assert!(pregnancy_path.starts_with("/pregnancies/"), "{pregnancy_path}");
    b.goto(&format!("{base}{couple_path}")).await;
    let followups = b.text("#followups").await;
    assert!(followups.contains("已孕"), "the 早孕随访 closed itself: {followups}");
    assert!(followups.contains("妊娠结局随访"), "{followups}");
    b.quit().await;

    // The county grades: the form starts from the screening, each value's source named.
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.county").await;
    b.goto(&format!("{base}{pregnancy_path}/risk/grade")).await;
    b.find("#grade-form").await;
    let hb = b
        .execute("return document.querySelector('#hb_g_l').value;", json!([]))
        .await;
    assert_eq!(hb, "86");
    assert!(b.text("#prepregnancy-prefill").await.contains("高风险人群"));
    let sources = b.text("#prefill-sources").await;
    assert!(sources.contains("血红蛋白 — 孕前优生检查"), "{sources}");
    let proposed = b.text("#proposed-factors").await;
    assert!(
        proposed.contains("孕前优生检查"),
        "the factor says where its value came from: {proposed}"
    );
    b.quit().await;
}

/// The English words a user reads on the page (issue 16: one language): runs of three or more
/// Latin letters in the text of the page, leaving out what is not our wording — the signed-in
/// user's and other users' names (`.who`, `.user-name`), `<code>` and keycaps (`<kbd>`) — and codes a clinician expects: abbreviations with two or more
/// capitals (HBsAg, BMI, LMP, HIV), units and the Apgar score.
const ENGLISH_WORDS_JS: &str = r#"
const page = document.body.cloneNode(true);
page.querySelectorAll('.who, .user-name, code, kbd, script, style').forEach(e => e.remove());
const codes = new Set(['mmHg', 'mmol', 'Apgar', 'kg', 'cm']);
const words = (page.innerText.match(/[A-Za-z]+(?:-[A-Za-z]+)*/g) || [])
  .filter(w => w.length >= 3 && !/[A-Z].*[A-Z]/.test(w) && !codes.has(w));
return [...new Set(words)];
"#;

/// The elements that push the page wider than the window (not those inside a box that scrolls
/// or clips), named for the failure message.
const WIDER_THAN_THE_SCREEN_JS: &str = r#"
const clipped = e => {
  for (let p = e.parentElement; p; p = p.parentElement) {
    if (['auto', 'hidden', 'scroll'].includes(getComputedStyle(p).overflowX)) return true;
  }
  return false;
};
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !clipped(e))
  .slice(0, 8)
  .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${Math.round(e.getBoundingClientRect().right)} px`);
"#;

/// Issue 16: the pages a clinic day needs, at a desk (1366 px) and on a phone (390 px): nothing
/// wider than the screen (a wide table scrolls inside itself), the worklist in the first screen,
/// no English words outside codes. Screenshots go to `target/screenshots/` for review (CI keeps the folder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clinic_day_pages_fit_a_desk_and_a_phone() {
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let pregnancy_id = booked(&mut town, "邱静", 40, 12).await;
    let (s, v) = town
        .post_json(
            &format!("/api/pregnancies/{pregnancy_id}/visits"),
            &json!({"visit_date": helpers::days_ago(7), "weight_kg": "58", "systolic_mmhg": "118", "diastolic_mmhg": "76", "hb_g_l": "112"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // A mother home from hospital: her postpartum and her baby's newborn home visits.
    let delivered = booked(&mut town, "柯雨", 42, 40).await;
    let (s, birth) = town
        .post_json(
            &format!("/api/pregnancies/{delivered}/delivery"),
            &json!({"delivery_date": helpers::days_ago(3), "discharge_date": helpers::days_ago(1), "facility_name": "示范县人民医院",
                    "mode": "vaginal", "live_births": "1", "stillbirths": "0",
                    "babies": [{"sex": "male", "birth_time": "09:20", "weight_g": "3300", "length_cm": "50", "apgar_1": "9", "apgar_5": "10"}]}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    let child = birth["children"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{birth}"))
        .to_string();
    let (_, chart) = town.get_json(&format!("/api/children/{child}")).await;
    let mother = chart["mother"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{chart}"))
        .to_string();
    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.twn-a").await;
    // A clinic's browser is Chinese: its date inputs read 年/月/日 (chromium-l10n in CI).
    assert_eq!(
        b.execute("return navigator.language;", json!([])).await,
        json!("zh-CN"),
        "the test browser runs in zh-CN (install chromium-l10n)"
    );
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let pages = [
        ("home", "/".to_string()),
        ("pregnancy", format!("/pregnancies/{pregnancy_id}")),
        ("visit-form", format!("/pregnancies/{pregnancy_id}/visits/new")),
        ("risk-board", "/risk/board".to_string()),
        ("referral-board", "/referrals/board".to_string()),
        ("couples", "/couples".to_string()),
        ("find-her", "/persons?q=柯雨".to_string()),
        ("person", format!("/persons/{mother}")),
        (
            "postpartum-form",
            format!("/pregnancies/{delivered}/visits/new?kind=postpartum_home"),
        ),
        ("child", format!("/children/{child}")),
        ("newborn-visit-form", format!("/children/{child}/visits/new")),
    ];
    for (width, height) in [(1366u32, 900u32), (390, 844)] {
        b.set_window_size(width, height).await;
        for (name, path) in &pages {
            b.goto(&format!("{base}{path}")).await;
            b.find("main").await;
            let (page_width, viewport) = (
                b.execute("return document.documentElement.scrollWidth;", json!([]))
                    .await,
                b.execute("return window.innerWidth;", json!([])).await,
            );
            let (page_width, viewport) = (page_width.as_i64().unwrap(), viewport.as_i64().unwrap());
            assert!(viewport <= i64::from(width), "{name}: the window is {viewport} px");
            if page_width > viewport {
                let wide = b.execute(WIDER_THAN_THE_SCREEN_JS, json!([])).await;
                panic!("{name} at {width} px scrolls sideways: {page_width} px of content in {viewport}: {wide}");
            }
            std::fs::write(shots.join(format!("{name}-{width}.png")), b.screenshot_png().await).unwrap();
            let words = b.execute(ENGLISH_WORDS_JS, json!([])).await;
            assert_eq!(words, json!([]), "{name}: English words a user reads");
        }
        b.goto(&format!("{base}/")).await;
        let top = b
            .execute(
                "return document.querySelector('#worklist-card').getBoundingClientRect().top;",
                json!([]),
            )
            .await;
        assert!(
            top.as_f64().unwrap() < f64::from(height),
            "the worklist in the first screen at {width} px: {top}"
        );
    }
    // Her page opens the home visit's form with its kind chosen.
    b.goto(&format!("{base}/pregnancies/{delivered}")).await;
    b.click_and_wait("#new-visit").await;
    assert_eq!(
        b.execute("return document.querySelector('#kind').value;", json!([]))
            .await,
        json!("postpartum_home")
    );
    // Touch targets on the phone: the visit form's save button is at least 44 px high.
    b.goto(&format!("{base}/pregnancies/{pregnancy_id}/visits/new")).await;
    let h = b
        .execute(
            "return document.querySelector('#visit-submit').getBoundingClientRect().height;",
            json!([]),
        )
        .await;
    assert!(h.as_f64().unwrap() >= 44.0, "{h}");
    b.quit().await;
}

/// Issue 16, keyboard: "/" from any page puts the cursor in the search box, which suggests her
/// as her name is typed (arrow down and Enter open her page) and finds her by her whole ID
/// number; the visit form is filled with Tab and saved with Ctrl+Enter, no mouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_finds_her_as_typed_and_a_visit_is_saved_from_the_keyboard() {
    use webdriver::{ARROW_DOWN, CONTROL, ENTER, TAB};
    if !webdriver::available() {
        return;
    }
    let app = helpers::spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let pregnancy_id = booked(&mut town, "欧阳晓岚", 44, 20).await;
    booked(&mut town, "欧阳晓", 46, 10).await;
    let base = browser_base(&app);
    let b = Browser::start().await;
    log_in(&b, &base, "clinician.twn-a").await;

    b.goto(&format!("{base}/risk/board")).await;
    b.find("main").await;
    b.press(None, &["/"]).await;
    assert_eq!(
        b.execute("return document.activeElement.id;", json!([])).await,
        json!("quick-find")
    );
    b.type_into("#quick-find", "欧阳晓").await;
    let suggestions = "return [...document.querySelectorAll('#quick-find-results [role=option]')].map(o => o.textContent.split(' · ')[0]);";
    wait_for(&b, suggestions, json!(["欧阳晓", "欧阳晓岚"]), "both women suggested").await;
    b.type_into("#quick-find", "岚").await;
    wait_for(&b, suggestions, json!(["欧阳晓岚"]), "one woman as more is typed").await;
    b.press(None, &[ARROW_DOWN, ENTER]).await;
    wait_for(
        &b,
        "return document.readyState === 'complete' && location.pathname.startsWith('/persons/') && !!document.querySelector('main h1');",
        json!(true),
        "her person page opened from the suggestion",
    )
    .await;
    assert!(b.text("main h1").await.contains("欧阳晓岚"));

    // Her whole ID number finds her; a part of it finds no one (numbers match whole only).
    let id_number = helpers::id_number("340524", "1993-05-12", 44);
    b.clear("#quick-find").await;
    b.type_into("#quick-find", &id_number[..10]).await;
    wait_for(
        &b,
        "return document.querySelector('#quick-find-results li.note')?.textContent ?? '';",
        json!("请输入完整的身份证号或健康卡号"),
        "a part of a number asks for the whole",
    )
    .await;
    b.type_into("#quick-find", &id_number[10..]).await;
    wait_for(&b, suggestions, json!(["欧阳晓岚"]), "her whole ID number").await;

    // The visit form from the keyboard: the cursor starts in the weight, Tab moves on.
    b.goto(&format!("{base}/pregnancies/{pregnancy_id}/visits/new")).await;
    b.find("#visit-form").await;
    assert_eq!(
        b.execute("return document.activeElement.id;", json!([])).await,
        json!("weight_kg")
    );
    b.press(None, &["61.5", TAB, "160", TAB, "124", TAB, "78"]).await;
    b.execute("document.documentElement.dataset.wdOld = '1';", json!([]))
        .await;
    b.press(Some(CONTROL), &[ENTER]).await;
    wait_for(
        &b,
        "return document.readyState === 'complete' && document.documentElement.dataset.wdOld !== '1' && !!document.querySelector('#notice');",
        json!(true),
        "the visit saved",
    )
    .await;
    assert_eq!(b.text("#notice").await, "随访记录已保存");
    let visits = b.text("#visits").await;
    assert!(visits.contains("61.5") && visits.contains("124/78"), "{visits}");
    b.quit().await;
}
