//! The referral green channel end to end: township → county critical-care centre, every step
//! seen by the sender; rejection and re-routing; escalation of late steps (injected clock), once
//! even with two instances on one database; access that follows the patient; QR printouts;
//! measures; the live board stream; the facility directory.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, spawn_app};
use crate::pregnancy::booked;
use mch_chain::referral::service::escalate_late;

async fn facility_id(app: &TestApp, code: &str) -> String {
    mch_chain::facility::service::by_code(&app.db, code).await.unwrap().id
}

/// A township woman at 30 weeks and her township clinician's client.
async fn township_woman(app: &TestApp) -> (Client, String, String) {
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, pregnancy) = booked(&mut c, "周芳", 22, 30).await;
    (c, person, pregnancy)
}

async fn open_emergency(c: &mut Client, person: &str, to: &str, send: bool) -> Value {
    let (s, r) = c
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "emergency", "reason": "产后出血 1500 ml，休克", "to_facility": to, "send": send}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r
}

async fn act(c: &mut Client, id: &str, action: &str, body: Value) -> (u16, Value) {
    c.post_json(&format!("/api/referrals/{id}/{action}"), &body).await
}

async fn state_seen_by(c: &mut Client, id: &str) -> Value {
    let (s, r) = c.get_json(&format!("/api/referrals/{id}")).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn an_emergency_goes_from_the_township_to_the_county_centre_and_back_with_feedback() {
    let app = spawn_app().await;
    let (mut sender, person, pregnancy) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", false).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "draft");
    // Prefilled from the record: 30 weeks.
    assert_eq!(r["details"]["gestational_weeks"], 30);
    assert_eq!(r["pregnancy_id"], pregnancy.as_str());
    let mut centre = app.login("clinician", "CTYHOSP").await;

    let steps: &[(&str, bool, Value, &str)] = &[
        ("send", true, json!({}), "sent"),
        ("acknowledge", false, json!({}), "acknowledged"),
        ("accept", false, json!({}), "accepted"),
        ("depart", true, json!({}), "departed"),
        (
            "arrive",
            false,
            json!({"received_by": "王主治", "note": "意识清，BP 90/60"}),
            "arrived",
        ),
    ];
    for (i, (action, by_sender, body, expect)) in steps.iter().enumerate() {
        let c = if *by_sender { &mut sender } else { &mut centre };
        let (s, v) = act(c, &id, action, body.clone()).await;
        assert_eq!(s, 200, "{action}: {v}");
        assert_eq!(v["state"], *expect);
        // The sender sees each step at once, with its time and the running clock.
        let seen = state_seen_by(&mut sender, &id).await;
        assert_eq!(seen["state"], *expect, "sender's view after {action}");
        assert_eq!(
            seen["timeline"].as_array().unwrap().len(),
            i + 2,
            "opened + one event per step"
        );
    }
    let seen = state_seen_by(&mut sender, &id).await;
    assert_eq!(seen["clock"]["step"], "feedback");
    assert!(seen["sent_at"].is_string() && seen["acknowledged_at"].is_string() && seen["arrived_at"].is_string());
    assert!(seen["intervals"]["door_to_door"].is_number());

    // The centre reads her pregnancy record (audited like every read).
    let (s, _) = centre.get_json(&format!("/api/pregnancies/{pregnancy}")).await;
    assert_eq!(s, 200);

    // A received referral cannot be closed without feedback.
    let (s, v) = act(&mut centre, &id, "close", json!({})).await;
    assert_eq!(s, 409);
    assert!(v["error"].as_str().unwrap().contains("反馈"), "{v}");
    let (s, v) = act(
        &mut centre,
        &id,
        "feedback",
        json!({"diagnosis": "产后出血，失血性休克", "outcome": "maybe"}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = act(
        &mut centre,
        &id,
        "feedback",
        json!({"diagnosis": "产后出血，失血性休克", "treatment": "输血 6 U，子宫动脉栓塞", "outcome": "survived", "signed_by": "王主治"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "feedback_returned");
    let (s, v) = act(&mut sender, &id, "close", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "closed");
    assert_eq!(v["feedback"]["outcome"], "survived");
    // Closed is final.
    let (s, _) = act(&mut sender, &id, "cancel", json!({"reason": "x"})).await;
    assert_eq!(s, 409);

    // The woman's access log names the centre's reads (RELIABILITY 27).
    let mut auditor = app.login("auditor", "PROV").await;
    let (s, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert_eq!(s, 200, "{log}");
    let text = log.to_string();
    assert!(text.contains("clinician.ctyhosp"), "{text}");
    assert!(text.contains("grant"), "the access grant is audited: {text}");

    // Measures for the centre this month.
    let (s, m) = sender.get_json("/api/referrals/measures").await;
    assert_eq!(s, 200, "{m}");
    let ctyhosp = facility_id(&app, "CTYHOSP").await;
    let row = m
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["facility_id"] == ctyhosp.as_str())
        .cloned();
    let row = row.expect("the centre has a row");
    assert_eq!(row["received"], 1);
    assert_eq!(row["accepted"], 1);
    assert_eq!(row["feedback_completeness"], 100.0);
}

#[tokio::test]
async fn a_rejection_tells_the_sender_and_the_next_centre_takes_the_patient() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "sent");
    let mut centre = app.login("clinician", "CTYHOSP").await;
    let (s, v) = act(&mut centre, &id, "reject", json!({"reason": "  "})).await;
    assert_eq!(s, 422, "a rejection needs a reason: {v}");
    let (s, v) = act(&mut centre, &id, "reject", json!({"reason": "ICU 满床"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "rejected");
    // The sender is told at once and a next centre is suggested (never the one that refused).
    let seen = state_seen_by(&mut sender, &id).await;
    assert_eq!(seen["state"], "rejected");
    assert_eq!(seen["clock"]["step"], "reroute");
    let suggested: Vec<&str> = seen["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert!(
        !suggested.is_empty() && !suggested.contains(&"CTYHOSP"),
        "{suggested:?}"
    );
    let (s, board) = sender.get_json("/api/referrals/board").await;
    assert_eq!(s, 200);
    assert!(board["notices"].to_string().contains("拒收"), "{board}");
    // Not back to the centre that refused; on to the province.
    let (s, v) = act(&mut sender, &id, "send", json!({"to_facility": "CTYHOSP"})).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = act(&mut sender, &id, "send", json!({"to_facility": "TWN-B"})).await;
    assert_eq!(s, 422, "a township health centre is no critical-care centre: {v}");
    let (s, v) = act(&mut sender, &id, "send", json!({"to_facility": "PROV"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "sent");
    assert_eq!(v["to_facility"]["code"], "PROV");
    // The first centre is no longer a party and cannot act on it any more.
    let (s, _) = act(&mut centre, &id, "accept", json!({})).await;
    assert!(s == 403 || s == 409, "{s}");
    let mut prov = app.login("clinician", "PROV").await;
    let (s, v) = act(&mut prov, &id, "accept", json!({})).await;
    assert_eq!(s, 200, "{v}");
    // A redirect hands the patient on with a reason.
    let r2 = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id2 = r2["id"].as_str().unwrap();
    let (s, v) = act(
        &mut centre,
        id2,
        "redirect",
        json!({"to_facility": "PROV", "reason": "需 NICU"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "redirected");
    assert_eq!(v["to_facility"]["code"], "PROV");
}

#[tokio::test]
async fn illegal_transitions_and_strangers_are_refused_with_a_clear_reason() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    // The sender cannot accept its own referral; the centre cannot depart for it.
    let (s, v) = act(&mut sender, &id, "accept", json!({})).await;
    assert_eq!(s, 409);
    assert!(v["error"].as_str().unwrap().contains("接收中心"), "{v}");
    let mut centre = app.login("clinician", "CTYHOSP").await;
    let (s, v) = act(&mut centre, &id, "depart", json!({})).await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = act(
        &mut centre,
        &id,
        "feedback",
        json!({"diagnosis": "x", "outcome": "survived"}),
    )
    .await;
    assert_eq!(s, 409, "no feedback before arrival: {v}");
    assert!(v["error"].as_str().unwrap().contains("已发出"), "{v}");
    let (s, _) = act(&mut centre, &id, "fly", json!({})).await;
    assert_eq!(s, 404);
    let (s, v) = act(&mut centre, &id, "acknowledge", json!({"colour": "red"})).await;
    assert_eq!(s, 422, "unknown fields are refused: {v}");
    // Another county's clinician is neither party nor in the area (IDOR → 403); a registrar has no referral role.
    let mut stranger = app.login("clinician", "NBR").await;
    let (s, _) = stranger.get_json(&format!("/api/referrals/{id}")).await;
    assert_eq!(s, 403);
    let (s, _) = act(&mut stranger, &id, "accept", json!({})).await;
    assert_eq!(s, 403);
    let mut registrar = app.login("registrar", "TWN-A").await;
    let (s, _) = act(&mut registrar, &id, "cancel", json!({"reason": "x"})).await;
    assert_eq!(s, 403);
    let mut admin = app.login("admin", "PROV").await;
    let (s, _) = admin.get_json(&format!("/api/referrals/{id}")).await;
    assert_eq!(s, 403, "administrators do not read clinical records");
    // Unauthenticated: nothing (RELIABILITY 22).
    let mut anon = app.client();
    for path in [
        format!("/api/referrals/{id}"),
        "/api/referrals".to_string(),
        "/api/referrals/board".to_string(),
        "/api/referrals/measures".to_string(),
        "/api/facilities".to_string(),
    ] {
        let (s, _) = anon.get_json(&path).await;
        assert_eq!(s, 401, "{path}");
    }
    for path in [
        format!("/referrals/{id}"),
        "/referrals/board".into(),
        "/referrals".into(),
        format!("/referrals/{id}/print"),
        "/facilities".into(),
        "/referrals/measures".into(),
    ] {
        let p = anon.get(&path).await;
        assert_eq!(p.status, 303, "{path}");
        assert!(p.location.as_deref().unwrap().starts_with("/login"), "{path}");
    }
    let (s, _) = anon
        .post_json(&format!("/api/referrals/{id}/cancel"), &json!({"reason": "x"}))
        .await;
    assert_eq!(s, 401);
    let anon_stream = reqwest::get(format!("{}/referrals/board/stream", app.base))
        .await
        .unwrap();
    assert_eq!(anon_stream.status(), 401);
    // Cancelling needs a reason; then it is final. Nothing changed on the refusals above.
    let (s, _) = act(&mut sender, &id, "cancel", json!({})).await;
    assert_eq!(s, 422);
    let seen = state_seen_by(&mut sender, &id).await;
    assert_eq!(seen["state"], "sent");
    assert_eq!(seen["timeline"].as_array().unwrap().len(), 2);
    let (s, v) = act(&mut sender, &id, "cancel", json!({"reason": "家属拒绝转诊"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "cancelled");
}

#[tokio::test]
async fn a_late_acknowledgement_escalates_up_the_ladder_once_per_level() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    let due: chrono::NaiveDateTime = serde_json::from_value(r["step_due_at"].clone()).unwrap();
    // Emergency: 5 minutes to acknowledge. Not late yet: nothing.
    assert_eq!(escalate_late(&app.db, due - Duration::seconds(1)).await.unwrap(), 0);
    assert_eq!(escalate_late(&app.db, due + Duration::minutes(1)).await.unwrap(), 1);
    assert_eq!(
        escalate_late(&app.db, due + Duration::minutes(2)).await.unwrap(),
        0,
        "level 1 fires once"
    );
    // Twice the limit late: the county MCH institution; three times: the province (no city here).
    assert_eq!(escalate_late(&app.db, due + Duration::minutes(11)).await.unwrap(), 2);
    let seen = state_seen_by(&mut sender, &id).await;
    assert_eq!(seen["escalation_level"], 3);
    assert_eq!(seen["clock"]["late"], true);
    let escalations: Vec<&Value> = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .collect();
    assert_eq!(escalations.len(), 3);
    assert_eq!(escalations[0]["notify"], "示范县人民医院");
    assert_eq!(escalations[1]["notify"], "示范县妇幼保健院");
    assert_eq!(escalations[2]["notify"], "示范省妇幼保健院");
    // The county MCH institution sees it on its board (red: late) with the notice.
    let mut county = app.login("referral_coordinator", "COUNTY").await;
    let (s, board) = county.get_json("/api/referrals/board").await;
    assert_eq!(s, 200, "{board}");
    assert_eq!(board["late"], 1);
    assert_eq!(board["rows"][0]["clock"]["escalation_level"], 3);
    assert!(board["notices"].to_string().contains("超过时限"), "{board}");
    // Acting starts a new step with a fresh clock and no escalation.
    let mut centre = app.login("clinician", "CTYHOSP").await;
    let (s, v) = act(&mut centre, &id, "acknowledge", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["escalation_level"], 0);
    assert_eq!(v["clock"]["step"], "decide");
}

#[tokio::test]
async fn two_instances_on_one_database_fire_a_timer_once() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    let due: chrono::NaiveDateTime = serde_json::from_value(r["step_due_at"].clone()).unwrap();
    // A second service instance: its own pool and group-commit writer on the same database.
    let second = mch_chain::storage::Db::open(app.url(), 2).unwrap();
    let at = due + Duration::minutes(1);
    let (a, b) = tokio::join!(escalate_late(&app.db, at), escalate_late(&second, at));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "exactly one instance fired the escalation");
    let seen = state_seen_by(&mut sender, &id).await;
    let n = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .count();
    assert_eq!(n, 1);
    // The timer's state survives a restart: a fresh instance sees level 1 as done.
    let third = mch_chain::storage::Db::open(app.url(), 2).unwrap();
    assert_eq!(escalate_late(&third, at + Duration::seconds(30)).await.unwrap(), 0);
}

#[tokio::test]
async fn accepting_grants_the_centre_access_and_cancelling_ends_it() {
    let app = spawn_app().await;
    let (mut sender, person, pregnancy) = township_woman(&app).await;
    // A centre of the neighbouring county: outside her area, so no access until it accepts.
    let r = open_emergency(&mut sender, &person, "NBR", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    let mut centre = app.login("clinician", "NBR").await;
    assert_eq!(centre.get_json(&format!("/api/pregnancies/{pregnancy}")).await.0, 403);
    assert_eq!(act(&mut centre, &id, "accept", json!({})).await.0, 200);
    assert_eq!(
        centre.get_json(&format!("/api/pregnancies/{pregnancy}")).await.0,
        200,
        "access follows the patient after acceptance"
    );
    assert_eq!(centre.get_json(&format!("/api/persons/{person}")).await.0, 200);
    // The grant covers care, not re-registration: the centre cannot book for her.
    // (Arrival without any click before it grants access too: see the next test.)
    let (s, _) = centre
        .post_json(
            &format!("/api/persons/{person}/pregnancies"),
            &json!({"lmp": "2026-05-01", "gravidity": "2", "parity": "0"}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        act(&mut sender, &id, "cancel", json!({"reason": "病情稳定，就地治疗"}))
            .await
            .0,
        200
    );
    assert_eq!(centre.get_json(&format!("/api/pregnancies/{pregnancy}")).await.0, 403);
}

#[tokio::test]
async fn the_printed_form_carries_a_signed_qr_code_that_opens_the_live_referral() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let r = open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    let page = sender.get(&format!("/referrals/{id}/print")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg") && page.body.contains("转诊单"),
        "{}",
        page.body
    );
    let start = page.body.find("/referrals/scan/").unwrap();
    let token: String = page.body[start + "/referrals/scan/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '.')
        .collect();
    // Scanned at the receiving centre by a logged-in clinician: the live referral opens.
    let mut centre = app.login("clinician", "CTYHOSP").await;
    let p = centre.get(&format!("/referrals/scan/{token}")).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some(format!("/referrals/{id}").as_str()));
    // A tampered or foreign token opens nothing.
    let mut bad = token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert_eq!(centre.get(&format!("/referrals/scan/{bad}")).await.status, 404);
    assert_eq!(centre.get("/referrals/scan/nonsense").await.status, 404);
    // A valid token does not replace access control.
    let mut stranger = app.login("clinician", "NBR").await;
    assert_eq!(stranger.get(&format!("/referrals/scan/{token}")).await.status, 403);
    // Not logged in: to the login page, and after logging in straight back to the scanned referral.
    let mut anon = app.client();
    let p = anon.get(&format!("/referrals/scan/{token}")).await;
    assert_eq!(p.status, 303);
    assert_eq!(
        p.location.as_deref(),
        Some(format!("/login?next=/referrals/scan/{token}").as_str())
    );
    let login = anon.get(p.location.as_deref().unwrap()).await;
    assert!(
        login
            .body
            .contains(&format!("name=\"next\" value=\"/referrals/scan/{token}\"")),
        "{}",
        login.body
    );
    let r = anon
        .http
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", "clinician.ctyhosp"),
            ("password", crate::helpers::PASSWORD),
            ("next", &format!("/referrals/scan/{token}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/referrals/scan/{token}").as_str());
    // Never an open redirect.
    let r = anon
        .http
        .post(format!("{}/login", app.base))
        .form(&[
            ("username", "clinician.ctyhosp"),
            ("password", crate::helpers::PASSWORD),
            ("next", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn an_emergency_is_opened_and_sent_from_the_form_in_one_step() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let form = sender
        .get(&format!("/referrals/new?person={person}&kind=maternal"))
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("示范县人民医院"), "the county centre is suggested");
    let ctyhosp = facility_id(&app, "CTYHOSP").await;
    // Missing reason: the form again with the message, nothing stored.
    let p = sender
        .post_form(
            "/referrals",
            &[
                ("person_id", &person),
                ("urgency", "emergency"),
                ("to_facility", &ctyhosp),
                ("send", "1"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("请填写转诊原因"));
    let (_, list) = sender.get_json("/api/referrals").await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let p = sender
        .post_form(
            "/referrals",
            &[
                ("person_id", &person),
                ("urgency", "emergency"),
                ("to_facility", &ctyhosp),
                ("send", "1"),
                ("reason", "子痫抽搐"),
                ("systolic_mmhg", "170"),
                ("diastolic_mmhg", "115"),
                ("near_miss", "neuro_fits"),
                ("danger_signs", "eclampsia"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let page = sender.get(p.location.as_deref().unwrap()).await;
    assert!(page.body.contains("已发出"), "{}", page.body);
    assert!(page.body.contains("无法控制的抽搐"));
    // The centre answers from the page's form.
    let id = p.location.unwrap().trim_start_matches("/referrals/").to_string();
    let mut centre = app.login("clinician", "CTYHOSP").await;
    let page = centre.get(&format!("/referrals/{id}")).await;
    assert!(page.body.contains("do-accept"), "{}", page.body);
    let p = centre
        .post_form(&format!("/referrals/{id}/accept"), &[("version", "2")])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // A stale version (someone else acted meanwhile) is refused, nothing changes.
    sender.get(&format!("/referrals/{id}")).await;
    let p = sender
        .post_form(&format!("/referrals/{id}/depart"), &[("version", "2")])
        .await;
    assert_eq!(p.status, 409, "{}", p.body);
    assert!(p.body.contains("已被他人更新"));
    let p = sender
        .post_form(&format!("/referrals/{id}/depart"), &[("version", "3")])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // Without CSRF token: refused.
    let p = centre.post_form_raw(&format!("/referrals/{id}/close"), &[]).await;
    assert_eq!(p.status, 403);
}

#[tokio::test]
async fn the_board_streams_changes_to_a_logged_in_coordinator() {
    let app = spawn_app().await;
    let (mut sender, person, _) = township_woman(&app).await;
    let coordinator = app.login("referral_coordinator", "CTYHOSP").await;
    let cookie = coordinator.cookie.clone().unwrap();
    let mut stream = reqwest::Client::new()
        .get(format!("{}/referrals/board/stream", app.base))
        .header("cookie", format!("mch_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    open_emergency(&mut sender, &person, "CTYHOSP", true).await;
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !got.contains("周芳") && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await {
            got.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(got.contains("event: board"), "{got}");
    assert!(
        got.contains("周芳") && got.contains("data-alert=\"1\""),
        "a new emergency for the centre is flagged: {got}"
    );
}

#[tokio::test]
async fn administrators_keep_the_directory_and_its_responsible_centres() {
    let app = spawn_app().await;
    let twn = facility_id(&app, "TWN-A").await;
    let prov = facility_id(&app, "PROV").await;
    let county = facility_id(&app, "COUNTY").await;
    let mut admin = app.login("admin", "PROV").await;
    admin.get("/facilities").await;
    // A responsible centre must have the capability.
    let p = admin
        .post_form(
            &format!("/facilities/{twn}"),
            &[("maternal_centre_id", &county), ("capabilities", "midwifery")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("未登记为危重孕产妇救治中心"));
    let p = admin
        .post_form(
            &format!("/facilities/{twn}"),
            &[
                ("maternal_centre_id", &prov),
                ("capabilities", "midwifery"),
                ("duty_phone", "0551-1234567"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let (_, dir) = admin.get_json("/api/facilities").await;
    let entry = dir
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "TWN-A")
        .unwrap()
        .clone();
    assert_eq!(entry["maternal_centre_id"], prov.as_str());
    assert_eq!(entry["duty_phone"], "0551-1234567");
    // The responsible centre is now suggested first, even above a nearer one.
    let (mut sender, person, _) = township_woman(&app).await;
    let form = sender
        .get(&format!("/referrals/new?person={person}&kind=maternal"))
        .await;
    let first = form.body.find("示范省妇幼保健院").unwrap();
    let second = form.body.find("示范县人民医院").unwrap();
    assert!(first < second, "the responsible centre comes first in the suggestion");
    // Clinicians cannot edit the directory.
    let mut clinician = app.login("clinician", "COUNTY").await;
    clinician.get("/facilities").await;
    let p = clinician
        .post_form(&format!("/facilities/{twn}"), &[("capabilities", "icu")])
        .await;
    assert_eq!(p.status, 403);
}

#[tokio::test]
async fn a_hospital_without_hl7_answers_a_newborn_referral_with_its_bearer_token() {
    let app = spawn_app().await;
    // A newborn without an ID number yet, registered at the township.
    let mut sender = app.login("clinician", "TWN-A").await;
    let (s, r) = sender
        .post_json(
            "/api/persons",
            &json!({"name": "周芳之女", "sex": "female", "birth_date": crate::helpers::days_ago(3)}),
        )
        .await;
    assert!(s == 201 || s == 200, "{r}");
    let baby = r["person_id"].as_str().unwrap().to_string();
    let form = sender.get(&format!("/referrals/new?person={baby}&kind=newborn")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("严重胸凹陷") && !form.body.contains("流产严重并发症"),
        "the newborn checklist"
    );
    let (s, v) = sender
        .post_json(
            "/api/referrals",
            &json!({"person_id": baby, "urgency": "emergency", "reason": "新生儿窒息复苏后呼吸窘迫", "to_facility": "CTYHOSP",
                    "patient_kind": "newborn", "send": true,
                    "details": {"newborn_age_days": 3, "danger_signs": ["fast_breathing", "chest_indrawing"], "needs": ["nicu"]}}),
        )
        .await;
    // The county centre has no NICU: the referral goes (an emergency is never blocked) and both
    // sides see the gap; the province, which has one, is suggested.
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["kind_label"], "新生儿");
    assert_eq!(v["warnings"][0], "接收中心未登记所需救治能力：nicu");
    assert_eq!(v["suggestions"][0]["code"], "PROV");
    assert_eq!(v["danger_sign_labels"][0], "严重胸凹陷");
    let id = v["id"].as_str().unwrap().to_string();
    // A maternal danger sign on a newborn is refused field by field.
    let (s, v) = sender
        .post_json(
            &format!("/api/referrals/{id}/details"),
            &json!({"danger_signs": ["eclampsia"]}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["fields"][0]["field"], "danger_signs");
    // The county hospital's system answers with a bearer token (no cookie, no CSRF).
    mch_chain::auth::service::add_user(
        &app.db,
        "his.ctyhosp",
        "县医院 HIS",
        "hospital_system",
        "CTYHOSP",
        "x-very-long-pass-1".into(),
    )
    .await
    .unwrap();
    let token = mch_chain::auth::service::issue_token(&app.db, "CTYHOSP", "县医院 HIS")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for action in ["acknowledge", "accept"] {
        let r = http
            .post(format!("{}/api/referrals/{id}/{action}", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
    let r: Value = http
        .get(format!("{}/api/referrals/{id}", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "accepted");
    assert_eq!(r["timeline"][3]["actor"], "县医院 HIS");
}

#[tokio::test]
async fn the_patient_in_front_of_the_centre_is_received_even_if_nobody_clicked_before() {
    let app = spawn_app().await;
    let (mut sender, person, pregnancy) = township_woman(&app).await;
    // To the neighbouring county's centre (outside her area), accepted by phone, never clicked.
    let r = open_emergency(&mut sender, &person, "NBR", true).await;
    let id = r["id"].as_str().unwrap().to_string();
    let mut centre = app.login("clinician", "NBR").await;
    let (s, v) = act(
        &mut centre,
        &id,
        "arrive",
        json!({"received_by": "李主治", "note": "救护车送达"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "arrived");
    assert!(v["accepted_at"].is_string(), "arrival implies acceptance");
    assert!(v["departed_at"].is_null(), "an unrecorded departure stays unknown");
    // She can be cared for: the centre reads her record, and feedback closes the loop.
    assert_eq!(centre.get_json(&format!("/api/pregnancies/{pregnancy}")).await.0, 200);
    let (s, _) = act(
        &mut centre,
        &id,
        "feedback",
        json!({"diagnosis": "胎盘早剥", "outcome": "in_treatment"}),
    )
    .await;
    assert_eq!(s, 200);
    // A draft is the sender's alone: nobody else sees it, not even the centre it names.
    let draft = open_emergency(&mut sender, &person, "NBR", false).await;
    let did = draft["id"].as_str().unwrap();
    assert_eq!(centre.get_json(&format!("/api/referrals/{did}")).await.0, 403);
    let mut county = app.login("clinician", "COUNTY").await;
    assert_eq!(county.get_json(&format!("/api/referrals/{did}")).await.0, 403);
    let (_, list) = county.get_json("/api/referrals").await;
    assert!(!list.to_string().contains(did), "drafts are not listed for the area");
    assert_eq!(sender.get_json(&format!("/api/referrals/{did}")).await.0, 200);
}
