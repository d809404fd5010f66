//! Child health from birth to six: the newborn's own record made at delivery, her schedule, visits
//! with WHO z-scores, vaccinations, 预防母婴传播 clocks, her identity completed later, the
//! 出生医学证明, the worklist, access and audit.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, days_ago, id_number, spawn_app};
use crate::pregnancy::booked;

/// A woman of 东关镇 at 39 weeks delivers yesterday through the JSON API with `babies`.
pub async fn delivered(
    app: &TestApp,
    name: &str,
    seq: u32,
    live_births: u32,
    babies: Value,
) -> (Client, String, String, Value) {
    let mut c = app.login("clinician", "TWN-A").await;
    let (mother, preg) = booked(&mut c, name, seq, 39).await;
    let (s, birth) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "discharge_date": days_ago(0), "facility_name": "示范县人民医院",
                    "mode": "vaginal", "live_births": live_births.to_string(), "stillbirths": "0", "babies": babies}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    (c, mother, preg, birth)
}

fn item<'a>(chart: &'a Value, code: &str) -> &'a Value {
    chart["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap_or_else(|| panic!("{code} in {}", chart["schedule"]))
}

#[tokio::test]
async fn twins_get_their_own_records_at_delivery_linked_to_mother_and_pregnancy() {
    let app = spawn_app().await;
    let babies = json!([
        {"sex": "female", "birth_time": "08:10", "weight_g": "2400", "length_cm": "46", "apgar_1": "8", "apgar_5": "9"},
        {"sex": "male", "birth_time": "08:25", "weight_g": "2650", "length_cm": "48", "apgar_1": "9", "apgar_5": "10"},
    ]);
    let (mut c, mother, preg, birth) = delivered(&app, "赵敏", 40, 2, babies).await;
    let children = birth["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(birth["live_births"], 2);
    // The delivery record never holds a sex: it is on each child's own record.
    assert!(birth.get("sex").is_none() && !birth.to_string().contains("\"female\""));
    let first = children[0]["id"].as_str().unwrap();
    let (s, chart) = c.get_json(&format!("/api/children/{first}")).await;
    assert_eq!(s, 200, "{chart}");
    assert_eq!(chart["person"]["person"]["name"], "赵敏之女1");
    assert_eq!(chart["person"]["person"]["sex"], "female");
    assert_eq!(chart["mother"]["id"], mother.as_str());
    assert_eq!(chart["record"]["pregnancy_id"], preg.as_str());
    assert_eq!(chart["record"]["birth_order"], 1);
    assert_eq!(
        chart["gestation_text"], "38+6 周",
        "from the pregnancy's dating: LMP 39 weeks ago, born yesterday"
    );
    // Her mother's area: no second typing.
    assert_eq!(chart["person"]["person"]["jurisdiction"], "340524");
    assert_eq!(chart["person"]["person"]["township_code"], "340524101");
    // Twins, under 2,500 g: high-risk, with more and earlier home visits.
    let reasons: Vec<&str> = chart["high_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["low_birth_weight", "multiple"]);
    assert_eq!(item(&chart, "newborn_home")["due_to"], days_ago(-3));
    assert!(
        chart["schedule"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "newborn_extra_1")
    );
    let visits = chart["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "visit")
        .count();
    assert_eq!(visits, 15, "13 contacts and two more for a high-risk newborn");
    // The mother's pregnancy page lists both babies.
    let page = c.get(&format!("/pregnancies/{preg}")).await;
    assert!(
        page.body.contains("赵敏之女1") && page.body.contains("赵敏之子2"),
        "{}",
        page.body
    );
    let page = c.get(&format!("/children/{first}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("高危新生儿") && page.body.contains("<svg"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_delivery_without_the_babies_facts_still_makes_their_records_to_complete_later() {
    let app = spawn_app().await;
    let (mut c, _, _, birth) = delivered(&app, "钱芳", 42, 1, json!([])).await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let (_, chart) = c.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["person"]["person"]["sex"], "unknown");
    assert_eq!(chart["person"]["person"]["name"], "钱芳之婴");
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/birth"),
            &json!({"sex": "female", "weight_g": "32000"}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["fields"][0]["field"], "babies[0].weight_g");
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/birth"),
            &json!({"sex": "female", "weight_g": "3150", "birth_time": "22:40", "apgar_1": "6", "apgar_5": "8"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (_, chart) = c.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["person"]["person"]["sex"], "female");
    assert_eq!(chart["record"]["birth_weight_g"], 3150);
    assert_eq!(chart["high_risk"][0]["code"], "asphyxia", "Apgar ≤ 7 at 1 minute");
    // More babies than live births: refused, nothing stored.
    let mut c2 = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c2, "孙丽", 44, 39).await;
    let (s, r) = c2
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "facility_name": "示范县人民医院", "mode": "vaginal", "live_births": "1",
                    "babies": [{"sex": "female"}, {"sex": "male"}]}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    let (_, rec) = c2.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["pregnancy"]["status"], "active", "nothing of the delivery was kept");
}

#[tokio::test]
async fn a_child_visit_gets_who_z_scores_and_implausible_values_are_refused_field_by_field() {
    let app = spawn_app().await;
    let (mut c, _, _, birth) = delivered(&app, "周静", 46, 1, json!([{"sex": "female", "weight_g": "3200"}])).await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = c
        .post_json(
            &format!("/api/children/{id}/visits"),
            &json!({"visit_date": days_ago(0), "weight_kg": "3.3", "length_cm": "50.5", "head_circumference_cm": "34.5",
                    "feeding": "exclusive_breast", "advice": "按需哺乳"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["position"], "lying", "lying under two years");
    let (_, chart) = c.get_json(&format!("/api/children/{id}")).await;
    let g = &chart["visits"][0]["growth"];
    assert!(
        g["weight_for_age_z"].is_number() && g["length_for_age_z"].is_number(),
        "{g}"
    );
    assert_eq!(item(&chart, "newborn_home")["status"], "done");
    // Refused field by field, nothing stored.
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/visits"),
            &json!({"visit_date": days_ago(-2), "weight_kg": "-1", "hb_g_l": "900"}),
        )
        .await;
    assert_eq!(s, 422);
    let fields: Vec<&str> = r["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["visit_date", "weight_kg", "hb_g_l"], "{r}");
    // 30 kg at one day old is within the form's range but implausible by WHO: refused unless confirmed.
    let heavy = json!({"visit_date": days_ago(0), "weight_kg": "30"});
    let (s, r) = c.post_json(&format!("/api/children/{id}/visits"), &heavy).await;
    assert_eq!(
        (s, r["fields"][0]["code"].as_str()),
        (422, Some("implausible_z")),
        "{r}"
    );
    let mut confirmed = heavy.clone();
    confirmed["confirm_implausible"] = json!("1");
    let (s, _) = c.post_json(&format!("/api/children/{id}/visits"), &confirmed).await;
    assert_eq!(s, 201);
    // The 两非 ban holds on the child's forms too.
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/visits"),
            &json!({"visit_date": days_ago(0), "weight_kg": "3.3", "illness": "母亲孕期B超提示男胎"}),
        )
        .await;
    assert_eq!((s, r["fields"][0]["code"].as_str()), (422, Some("fetal_sex")), "{r}");
    let (_, chart) = c.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["visits"].as_array().unwrap().len(), 2);
    // The visit form.
    let p = c
        .post_form(
            &format!("/children/{id}/visits"),
            &[("visit_date", &days_ago(0)), ("weight_kg", "abc")],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("体重须为数字"), "{}", p.body);
    let p = c
        .post_form(
            &format!("/children/{id}/visits"),
            &[
                ("visit_date", &days_ago(0)),
                ("weight_kg", "3.4"),
                ("rickets_signs", "night_sweats"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
}

#[tokio::test]
async fn vaccinations_are_traceable_and_complete_the_schedule() {
    let app = spawn_app().await;
    let (mut c, _, _, birth) = delivered(
        &app,
        "吴丽",
        48,
        1,
        json!([{"sex": "female", "weight_g": "3300", "birth_time": "09:00"}]),
    )
    .await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let given = format!("{}T15:00", days_ago(1));
    let dose = json!({"vaccine": "HepB", "given_at": given, "lot_number": "202511A", "manufacturer": "某生物制品有限公司",
                      "expiry_date": days_ago(-300), "checks_done": "1", "site": "右上臂"});
    let mut expired = dose.clone();
    expired["expiry_date"] = json!(days_ago(30));
    let (s, r) = c.post_json(&format!("/api/children/{id}/vaccinations"), &expired).await;
    assert_eq!((s, r["fields"][0]["code"].as_str()), (422, Some("expired")), "{r}");
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/vaccinations"),
            &json!({"vaccine": "HepB", "given_at": given}),
        )
        .await;
    assert_eq!(s, 422, "lot, holder, expiry and the checks are required: {r}");
    let (s, imm) = c.post_json(&format!("/api/children/{id}/vaccinations"), &dose).await;
    assert_eq!(s, 201, "{imm}");
    let (_, chart) = c.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(item(&chart, "HepB-1")["status"], "done");
    assert_eq!(item(&chart, "HepB-1")["on_time"], true);
    assert_eq!(item(&chart, "BCG-1")["status"], "due");
    assert_eq!(chart["vaccinations"].as_array().unwrap().len(), 1);
    // The same dose as FHIR Immunization, with its traceability fields.
    let token = mch_chain::auth::service::issue_token(&app.db, "TWN-A", "卫生院 HIS")
        .await
        .unwrap();
    let fhir = crate::fhir_support::Fhir::with_token(&app, token);
    let r = fhir.get(&format!("Immunization?patient={id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let res = &r.body["entry"][0]["resource"];
    assert_eq!(res["lotNumber"], "202511A");
    assert_eq!(res["vaccineCode"]["coding"][0]["system"], "urn:mch-chain:nip-vaccine");
}

#[tokio::test]
async fn an_hbsag_positive_mother_starts_the_babys_12_hour_clock_and_a_late_one_leads_the_worklist() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "郑红", 50, 39).await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"hbsag": "positive"}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, birth) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "facility_name": "示范县人民医院", "mode": "vaginal", "live_births": "1",
                    "babies": [{"sex": "male", "weight_g": "3400", "birth_time": "06:00"}]}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let (_, chart) = town.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["exposures"][0][0], "hbsag");
    // Born yesterday at 06:00: the 12 hours are over, nothing given.
    let hbig = item(&chart, "hbig");
    assert_eq!(hbig["status"], "overdue", "{hbig}");
    assert!(hbig["hours_late"].as_i64().unwrap() >= 6);
    let (_, w) = town.get_json("/api/worklist").await;
    let first = &w["children"]["items"][0];
    assert_eq!(first["child"]["id"], id.as_str(), "{w}");
    assert_eq!(first["item"]["kind"], "pmtct");
    assert!(w["children"]["pmtct_late"].as_u64().unwrap() >= 1);
    let home = town.get("/").await;
    assert!(home.body.contains("预防母婴传播超时"), "{}", home.body);
    // The district board shows it too.
    let board = county.get("/child/frail/board").await;
    assert_eq!(board.status, 200, "{}", board.body);
    assert!(
        board.body.contains("pmtct-late") && board.body.contains(&format!("/children/{id}")),
        "{}",
        board.body
    );
    // Given late, it is done — and recorded as late.
    let (s, r) = town
        .post_json(
            &format!("/api/children/{id}/services"),
            &json!({"code": "hbig", "done_at": format!("{}T20:00", days_ago(1)), "result": "given"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (_, chart) = town.get_json(&format!("/api/children/{id}")).await;
    let hbig = item(&chart, "hbig");
    assert_eq!(
        (hbig["status"].as_str(), hbig["on_time"].as_bool()),
        (Some("done"), Some(false))
    );
}

#[tokio::test]
async fn her_id_number_joins_the_same_record_and_a_card_read_finds_her_not_a_second_one() {
    let app = spawn_app().await;
    let (mut c, _, _, birth) = delivered(&app, "王芳", 52, 1, json!([{"sex": "female", "weight_g": "3300"}])).await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let born = days_ago(1);
    let wrong = id_number("340524", &days_ago(30), 2);
    let (s, r) = c
        .post_json(&format!("/api/children/{id}/identity"), &json!({"id_number": wrong}))
        .await;
    assert_eq!((s, r["fields"][0]["code"].as_str()), (422, Some("birth_date")), "{r}");
    let hers = id_number("340524", &born, 2);
    let (s, r) = c
        .post_json(
            &format!("/api/children/{id}/identity"),
            &json!({"id_number": hers, "name": "王小雨", "health_card": "HC1234567"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["name"], "王小雨");
    let (s, read) = c
        .post_json(
            "/api/card-reads",
            &json!({"card_number": "HC1234567", "name": "王小雨", "sex_code": "2", "birth_date": born, "id_number": hers}),
        )
        .await;
    assert_eq!(s, 200, "found, not created: {read}");
    assert_eq!(read["person_id"], id.as_str());
    // The 出生医学证明: one capital letter and nine digits, once.
    let cert = json!({"number": "Q340000001", "issued_on": days_ago(0), "child_name": "王小雨", "birthplace": "示范县人民医院",
                      "place_type": "hospital", "health_status": "good", "midwife": "李医生", "issuer": "示范县人民医院"});
    let mut bad = cert.clone();
    bad["number"] = json!("Q34");
    bad["child_name"] = json!("Wang");
    let (s, r) = c.post_json(&format!("/api/children/{id}/certificate"), &bad).await;
    let fields: Vec<&str> = r["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!((s, fields), (422, vec!["number", "child_name"]));
    let (s, r) = c.post_json(&format!("/api/children/{id}/certificate"), &cert).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["certificate"]["number"], "Q340000001");
    let (s, _) = c.post_json(&format!("/api/children/{id}/certificate"), &cert).await;
    assert_eq!(s, 409, "issued once");
}

#[tokio::test]
async fn another_township_cannot_open_her_record_and_the_refusal_is_audited() {
    let app = spawn_app().await;
    let (_, _, _, birth) = delivered(&app, "冯丽", 54, 1, json!([{"sex": "female", "weight_g": "3300"}])).await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let mut other = app.login("clinician", "TWN-B").await;
    let (s, _) = other.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(s, 403);
    assert_eq!(other.get(&format!("/children/{id}")).await.status, 403);
    let mut county = app.login("clinician", "COUNTY").await;
    assert_eq!(
        county.get_json(&format!("/api/children/{id}")).await.0,
        200,
        "her county sees her"
    );
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{id}")).await;
    let events = log["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor_name"] == "clinician.twn-b"),
        "{log}"
    );
    assert!(events.iter().any(|e| e["detail"] == "child record at delivery"));
    assert!(
        events
            .iter()
            .any(|e| e["detail"] == "child page" && e["actor_name"] == "clinician.county")
    );
}

#[tokio::test]
async fn the_delivery_form_takes_each_babys_facts_and_keeps_them_when_one_is_refused() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c, "陈洁", 56, 39).await;
    let base = [
        ("delivery_date", days_ago(1)),
        ("facility_name", "示范县人民医院".to_string()),
        ("mode", "vaginal".to_string()),
        ("live_births", "1".to_string()),
        ("stillbirths", "0".to_string()),
        ("baby1_sex", "female".to_string()),
        ("baby1_birth_time", "07:45".to_string()),
    ];
    let mut bad: Vec<(&str, String)> = base.to_vec();
    bad.push(("baby1_weight_g", "99999".to_string()));
    let fields: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = c.post_form(&format!("/pregnancies/{preg}/delivery"), &fields).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("出生体重") && p.body.contains("07:45"),
        "what was typed is kept: {}",
        p.body
    );
    let mut good: Vec<(&str, String)> = base.to_vec();
    good.push(("baby1_weight_g", "3050".to_string()));
    good.push(("baby1_conditions", "hyperbilirubinaemia".to_string()));
    let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = c.post_form(&format!("/pregnancies/{preg}/delivery"), &fields).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, rec) = c.get_json(&format!("/api/pregnancies/{preg}")).await;
    let child = rec["children"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(rec["children"][0]["high_risk"], true, "高胆红素血症 ticked");
    let (_, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(chart["record"]["birth_weight_g"], 3050);
    assert_eq!(chart["person"]["person"]["sex"], "female");
}

#[tokio::test]
async fn a_positive_result_known_only_after_the_birth_starts_the_babys_items_then() {
    let app = spawn_app().await;
    let (mut town, _, preg, birth) = delivered(
        &app,
        "何静",
        58,
        1,
        json!([{"sex": "female", "weight_g": "3100", "birth_time": "10:00"}]),
    )
    .await;
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let (_, chart) = town.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["exposures"], json!([]));
    assert!(!chart["schedule"].as_array().unwrap().iter().any(|i| i["code"] == "arv"));
    // The rapid test at labour comes back positive and the county grades her postpartum.
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"hiv": "positive"}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (_, chart) = town.get_json(&format!("/api/children/{id}")).await;
    assert_eq!(chart["exposures"][0][0], "hiv", "{}", chart["exposures"]);
    assert_eq!(
        item(&chart, "arv")["status"],
        "overdue",
        "the 6 hours ran out before anyone knew"
    );
    assert_eq!(item(&chart, "hiv_nat_6w")["status"], "upcoming");
}
