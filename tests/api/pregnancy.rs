//! Booking (建册), dating, visits, the schedule and the worklist.

use serde_json::{Value, json};

use crate::helpers::{Client, days_ago, id_number, spawn_app};

/// Register a woman and book her pregnancy with an LMP `weeks` weeks ago; returns (person, pregnancy).
pub async fn booked(c: &mut Client, name: &str, seq: u32, weeks_ago: i64) -> (String, String) {
    let booking = json!({"lmp": days_ago(weeks_ago * 7), "gravidity": "1", "parity": "0"});
    booked_with(c, name, "1994-06-01", seq, booking).await
}

/// Register a woman born on `birth` and book her pregnancy with the given booking body.
pub async fn booked_with(c: &mut Client, name: &str, birth: &str, seq: u32, booking: Value) -> (String, String) {
    let id = id_number("340524", birth, seq);
    let (s, r) = c
        .post_json("/api/persons", &json!({"name": name, "id_number": id}))
        .await;
    assert!(s == 201 || s == 200, "{r}");
    let person = r["person_id"].as_str().unwrap().to_string();
    let (s, p) = c
        .post_json(&format!("/api/persons/{person}/pregnancies"), &booking)
        .await;
    assert_eq!(s, 201, "{p}");
    (person, p["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn booking_through_the_form_computes_the_edd_and_shows_the_gestational_age() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1994-06-01", 12);
    let (_, r) = c
        .post_json("/api/persons", &json!({"name": "杨雪", "id_number": id}))
        .await;
    let person = r["person_id"].as_str().unwrap();
    let lmp = days_ago(90); // 12+6 today
    let p = c
        .post_form(
            &format!("/persons/{person}/pregnancies"),
            &[("lmp", &lmp), ("gravidity", "2"), ("parity", "1")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let loc = p.location.unwrap();
    let page = c.get(&loc).await;
    assert_eq!(page.status, 200);
    let edd = (chrono::NaiveDate::parse_from_str(&lmp, "%Y-%m-%d").unwrap() + chrono::Duration::days(280)).to_string();
    assert!(
        page.body.contains(&format!("<dd id=\"edd\">{edd}</dd>")),
        "EDD = LMP + 280 days"
    );
    assert!(page.body.contains("<dd id=\"ga-today\">12+6 周</dd>"));
    assert!(page.body.contains("建册成功"));
    assert!(page.body.contains("G2P1"));
}

#[tokio::test]
async fn an_early_ultrasound_dates_the_pregnancy_and_the_method_is_recorded() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, r) = c
        .post_json(
            "/api/persons",
            &json!({"name": "罗敏", "id_number": id_number("340524", "1990-01-01", 2)}),
        )
        .await;
    let person = r["person_id"].as_str().unwrap();
    // LMP says 10+0 today, a scan 14 days ago said 7+0 → by the scan she is 9+0 today.
    let (s, p) = c
        .post_json(
            &format!("/api/persons/{person}/pregnancies"),
            &json!({"lmp": days_ago(70), "ultrasound_date": days_ago(14), "ultrasound_ga": "7+0", "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["dating"]["method"], "ultrasound");
    let (_, rec) = c
        .get_json(&format!("/api/pregnancies/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(rec["ga_today_text"], "9+0");
}

#[tokio::test]
async fn a_second_active_pregnancy_is_refused_and_bad_bookings_save_nothing() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut c, "周艳", 14, 10).await;
    let (s, r) = c
        .post_json(
            &format!("/api/persons/{person}/pregnancies"),
            &json!({"lmp": days_ago(20), "gravidity": "1"}),
        )
        .await;
    assert_eq!(s, 409, "{r}");
    let (_, r) = c
        .post_json(
            "/api/persons",
            &json!({"name": "吴娟", "id_number": id_number("340524", "1994-06-01", 16)}),
        )
        .await;
    let other = r["person_id"].as_str().unwrap().to_string();
    for bad in [
        json!({"gravidity": "1"}),                                     // no dating at all
        json!({"lmp": days_ago(-3), "gravidity": "1"}),                // LMP in the future
        json!({"lmp": days_ago(400), "gravidity": "1"}),               // over 44 weeks
        json!({"lmp": days_ago(30), "gravidity": "1", "parity": "1"}), // parity must be below gravidity
        json!({"lmp": "2026-13-01", "gravidity": "1"}),                // not a date
    ] {
        let (s, r) = c.post_json(&format!("/api/persons/{other}/pregnancies"), &bad).await;
        assert_eq!(s, 422, "{bad} → {r}");
    }
    let (_, rec) = c.get_json(&format!("/api/persons/{other}")).await;
    assert_eq!(rec["pregnancies"].as_array().unwrap().len(), 0);
    // A man cannot be booked.
    let (_, r) = c
        .post_json(
            "/api/persons",
            &json!({"name": "赵强", "id_number": id_number("340524", "1990-01-01", 13)}),
        )
        .await;
    let man = r["person_id"].as_str().unwrap();
    let (s, _) = c
        .post_json(
            &format!("/api/persons/{man}/pregnancies"),
            &json!({"lmp": days_ago(30), "gravidity": "1"}),
        )
        .await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_visit_is_recorded_with_derived_bmi_and_the_first_is_the_first_antenatal_check() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c, "孙慧", 18, 11).await;
    let form = c.get(&format!("/pregnancies/{preg}/visits/new")).await;
    assert_eq!(form.status, 200);
    let fields = [
        ("visit_date", days_ago(0)),
        ("weight_kg", "60".to_string()),
        ("height_cm", "160".to_string()),
        ("systolic_mmhg", "116".to_string()),
        ("diastolic_mmhg", "74".to_string()),
        ("hb_g_l", "112".to_string()),
        ("urine_protein", "negative".to_string()),
        ("oedema", "none".to_string()),
        ("complaints", "偶有恶心".to_string()),
        ("advice", "补充叶酸".to_string()),
        ("next_appointment", days_ago(-35)),
    ];
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = c.post_form(&format!("/pregnancies/{preg}/visits"), &f).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = c.get(saved.location.as_deref().unwrap()).await;
    assert!(page.body.contains("随访记录已保存"));
    assert!(page.body.contains("第1次产前检查"));
    assert!(page.body.contains("<td>23.4</td>"), "BMI 60 / 1.6² = 23.4");
    assert!(page.body.contains("116/74"));
    assert!(page.body.contains("补充叶酸"));
    // The schedule now shows contact 1 done.
    let (_, rec) = c.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["schedule"][0]["status"], "done");
    let (s, second) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"weight_kg": "60.5"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(second["kind"], "antenatal");
}

#[tokio::test]
async fn implausible_values_and_impossible_dates_are_refused_and_nothing_is_saved() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c, "马玲", 20, 20).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"systolic_mmhg": "400", "diastolic_mmhg": "10"}), "systolic_mmhg"),
        (json!({"hb_g_l": "900"}), "hb_g_l"),
        (json!({"visit_date": days_ago(21 * 7)}), "visit_date"), // before the LMP
        (json!({"visit_date": days_ago(-1)}), "visit_date"),     // in the future
        (json!({"weight_kg": "abc"}), "weight_kg"),
        (json!({"fetal_heart_rate_bpm": "20"}), "fetal_heart_rate_bpm"),
        (json!({"urine_protein": "5+"}), "urine_protein"),
        (json!({"systolic_mmhg": "120"}), "diastolic_mmhg"),
    ];
    for (body, field) in cases {
        let (s, r) = c.post_json(&format!("/api/pregnancies/{preg}/visits"), &body).await;
        assert_eq!(s, 422, "{body}");
        assert!(
            r["fields"].as_array().unwrap().iter().any(|f| f["field"] == field),
            "{body} → {r}"
        );
    }
    let page = c
        .post_form(
            &format!("/pregnancies/{preg}/visits"),
            &[("systolic_mmhg", "400"), ("diastolic_mmhg", "10"), ("weight_kg", "61")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("收缩压 400 mmHg 不合理"));
    assert!(page.body.contains("value=\"61\""), "what was typed is kept");
    let (_, rec) = c.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["visits"].as_array().unwrap().len(), 0, "nothing saved");
}

#[tokio::test]
async fn the_worklist_shows_due_and_overdue_women_of_my_township_most_overdue_first() {
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    let (_, overdue_long) = booked(&mut a, "林芳", 40, 25).await; // 25 weeks, never seen: contacts 1–3 overdue
    let (_, overdue_short) = booked(&mut a, "何霞", 42, 14).await; // 14 weeks: contact 1 overdue by a week
    let (_, due) = booked(&mut a, "高颖", 44, 10).await; // 10 weeks: contact 1 due
    let (_, fine) = booked(&mut a, "郭静", 46, 6).await; // 6 weeks: contact 1 due (window open)
    a.post_json(&format!("/api/pregnancies/{fine}/visits"), &json!({"weight_kg": "55"}))
        .await; // done: nothing until 15 weeks
    let mut b = app.login("clinician", "TWN-B").await;
    let (_, elsewhere) = booked(&mut b, "罗娟", 48, 25).await;
    let (s, w) = a.get_json("/api/worklist").await;
    assert_eq!(s, 200);
    let order: Vec<&str> = w["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pregnancy_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec![overdue_long.as_str(), overdue_short.as_str(), due.as_str()]);
    assert!(!order.contains(&elsewhere.as_str()));
    assert_eq!(w["items"][0]["overdue"], true);
    assert_eq!(w["items"][2]["contact"]["status"], "due");
    let home = a.get("/").await;
    assert!(home.body.contains("林芳") && home.body.contains("逾期"));
    assert!(!home.body.contains("罗娟"));
}
