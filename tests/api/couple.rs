//! Before pregnancy (issue 12), black-box on both backends: a couple found or registered by ID
//! number, the 19-item screening with its plausibility checks and risk class, the follow-ups that
//! close themselves with the booking and the delivery, the screening's findings pre-filling her
//! first risk screening and grading, birth registration with both numbers in one step
//! (多证合一), divorce and remarriage, access by the wife's area, and audit of both partners.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, days_ago, id_number, spawn_app};

/// Register a woman of 东关镇 (TWN-A) and a couple with a new husband; the couple's JSON.
pub async fn couple_of(c: &mut Client, name: &str, seq: u32, husband: &str, marriage: Value) -> (String, Value) {
    let (s, r) = c
        .post_json(
            "/api/persons",
            &json!({"name": name, "id_number": id_number("340524", "1995-04-02", seq)}),
        )
        .await;
    assert!(s == 201 || s == 200, "{r}");
    let wife = r["person_id"].as_str().unwrap().to_string();
    let (s, couple) = c
        .post_json(
            "/api/couples",
            &json!({"wife": {"person_id": wife},
                    "husband": {"person": {"name": husband, "id_number": id_number("340524", "1993-09-09", seq + 1)}},
                    "marriage": marriage}),
        )
        .await;
    assert_eq!(s, 201, "{couple}");
    (wife, couple)
}

fn screening() -> Value {
    json!({
        "exam_date": days_ago(300),
        "wife": {"height_cm": 160, "weight_kg": 70, "hb_g_l": 88, "hbsag": "positive", "syphilis": "negative",
                 "hiv": "negative", "caesareans": 1, "diseases": ["hypertension"], "systolic_mmhg": 128, "diastolic_mmhg": 82},
        "husband": {"smoking": true, "hbsag": "negative"}
    })
}

async fn audit_rows(app: &TestApp, person: &str) -> Vec<(String, String, String)> {
    let person = person.to_string();
    app.db
        .read(move |c| {
            use diesel::prelude::*;
            use mch_chain::storage::schema::audit_events::dsl as a;
            a::audit_events
                .filter(a::person_id.eq(person))
                .select((a::entity_type, a::action, a::outcome))
                .load::<(String, String, String)>(c)
                .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_screened_couple_is_followed_up_and_her_booking_starts_from_the_screening() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (wife, couple) = couple_of(
        &mut town,
        "赵春燕",
        40,
        "刘志强",
        json!({"marriage_date": "2024-05-20"}),
    )
    .await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        couple["couple"]["marriage"]["wife_province"],
        json!("34"),
        "from her ID number"
    );
    assert_eq!(couple["status_label"], json!("在婚"));

    // Implausible values are refused field by field and nothing is stored.
    let mut bad = screening();
    bad["wife"]["hb_g_l"] = json!(900);
    bad["husband"]["rubella_igg"] = json!("positive");
    let (s, r) = town
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &bad)
        .await;
    assert_eq!(s, 422, "{r}");
    let fields: Vec<&str> = r["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"wife.hb_g_l") && fields.contains(&"husband.rubella_igg"),
        "{r}"
    );
    // Fetal sex is never stored, not even in a note.
    let mut sex = screening();
    sex["wife"]["note"] = json!("孕前B超提示男胎");
    let (s, r) = town
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &sex)
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r.to_string().contains("fetal_sex"), "{r}");
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    assert_eq!(view["exams"], json!([]), "nothing stored: {view}");

    let (s, exam) = town
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &screening())
        .await;
    assert_eq!(s, 201, "{exam}");
    assert_eq!(exam["exam"]["risk_class"], json!("high"), "{exam}");
    assert_eq!(exam["class_label"], json!("高风险人群"));
    let factors = exam["exam"]["factors"].as_array().unwrap();
    let cats: Vec<(&str, &str)> = factors
        .iter()
        .map(|f| (f["category"].as_str().unwrap(), f["partner"].as_str().unwrap()))
        .collect();
    for want in [
        ("infection", "wife"),
        ("nutrition", "wife"),
        ("chronic", "wife"),
        ("behaviour", "husband"),
    ] {
        assert!(cats.contains(&want), "{want:?} in {cats:?}");
    }
    // The 早孕随访 is due from the exam, by the rule set's configuration.
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let f = &view["followups"][0];
    assert_eq!(f["followup"]["kind"], json!("early_pregnancy"), "{view}");
    assert_eq!(f["open"], json!(true));
    let (s, list) = town.get_json("/api/couples/worklist").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["townships"][0]["screened"], json!(1), "{list}");
    assert_eq!(list["townships"][0]["high_risk"], json!(1), "{list}");

    // Her screening is in her FHIR $everything as Observations (his findings are not).
    let his = crate::fhir_support::Fhir::new(&app, "COUNTY").await;
    let e = his.get(&format!("Patient/{wife}/$everything")).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let exam_id = exam["exam"]["id"].as_str().unwrap();
    let obs: Vec<Value> = e.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["resource"].clone())
        .filter(|r| r["resourceType"] == "Observation" && r["id"].as_str().unwrap_or("").starts_with(exam_id))
        .collect();
    let hb = obs
        .iter()
        .find(|o| o["id"] == json!(format!("{exam_id}.hb-g-l")))
        .expect("Hb");
    assert_eq!(hb["code"]["coding"][0]["code"], json!("718-7"));
    assert_eq!(hb["valueQuantity"]["value"], json!(88.0));
    let class = obs
        .iter()
        .find(|o| o["id"] == json!(format!("{exam_id}.risk-class")))
        .expect("class");
    assert_eq!(class["valueCodeableConcept"]["coding"][0]["code"], json!("high"));
    assert_eq!(
        class["component"].as_array().unwrap().len(),
        3,
        "her three factors, not his: {class}"
    );
    for o in &obs {
        crate::fhir_support::assert_valid(o);
        assert_eq!(o["subject"]["reference"], json!(format!("Patient/{wife}")));
    }
    assert!(
        !obs.iter().any(|o| o.to_string().contains("吸烟")),
        "the man's findings stay in the couple"
    );

    // She books: the follow-up closes itself as 已孕; the outcome follow-up is due from her EDD.
    let (s, p) = town
        .post_json(
            &format!("/api/persons/{wife}/pregnancies"),
            &json!({"lmp": days_ago(39 * 7), "gravidity": "2", "parity": "1"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let pregnancy = p["id"].as_str().unwrap().to_string();
    let edd = chrono::NaiveDate::parse_from_str(p["dating"]["edd"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let fs = view["followups"].as_array().unwrap();
    let early = fs
        .iter()
        .find(|f| f["followup"]["kind"] == json!("early_pregnancy"))
        .unwrap();
    assert_eq!(early["followup"]["result"], json!("pregnant"), "{view}");
    assert_eq!(early["followup"]["pregnancy_id"], json!(pregnancy));
    let outcome = fs.iter().find(|f| f["followup"]["kind"] == json!("outcome")).unwrap();
    let due = chrono::NaiveDate::parse_from_str(outcome["followup"]["due"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert!(
        due > edd && due <= edd + chrono::Duration::days(120),
        "{due} after {edd}"
    );
    assert_eq!(view["pregnancy_id"], json!(pregnancy));

    // Her record's access log speaks Chinese (issue 16: one language).
    let page = town.get(&format!("/pregnancies/{pregnancy}")).await;
    let log = &page.body[page.body.find("id=\"access-log\"").unwrap()..];
    assert!(
        log.contains("<td>查看</td><td>孕产期档案</td><td>成功</td>")
            && !log.contains("<td>success</td>")
            && !log.contains("pregnancy page"),
        "{log}"
    );

    // Her first screening and grading start from the screening's findings, each with its source.
    let page = town.get(&format!("/pregnancies/{pregnancy}/risk/screen")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("prepregnancy-prefill") && page.body.contains("孕前优生检查"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("高血压"),
        "her chronic disease is a prompt: {}",
        page.body
    );
    let mut county = app.login("clinician", "COUNTY").await;
    let page = county.get(&format!("/pregnancies/{pregnancy}/risk/grade")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"88\""), "Hb pre-filled: {}", page.body);
    assert!(page.body.contains("剖宫产次数 — 孕前优生检查"), "{}", page.body);

    // Her trends are drawn (issue 16): weight gain over the screening's weight in the band for
    // her BMI class, BP with its 140/90 lines, Hb with its lines.
    for (day, w, sbp, hb) in [(30, "72.5", "118", "105"), (0, "74", "142", "98")] {
        let (s, v) = town
            .post_json(
                &format!("/api/pregnancies/{pregnancy}/visits"),
                &json!({"visit_date": days_ago(day), "weight_kg": w, "systolic_mmhg": sbp, "diastolic_mmhg": "85", "hb_g_l": hb}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let page = town.get(&format!("/pregnancies/{pregnancy}")).await;
    for id in ["chart-weight", "chart-bp", "chart-hb"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}: {}", page.body);
    }
    assert!(
        page.body.contains("孕前体重 70 kg（孕前优生健康检查") && page.body.contains("WS/T 801"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("class=\"band\"") && page.body.contains("体重增长 34+5"),
        "{}",
        page.body
    );
    let (_, chart) = town.get_json(&format!("/api/pregnancies/{pregnancy}")).await;
    assert_eq!(chart["trends"]["weight_gain"][1][1], json!(4.0), "74 − 70 kg: {chart}");

    // The delivery answers the outcome follow-up as 已分娩.
    let (s, r) = town
        .post_json(
            &format!("/api/pregnancies/{pregnancy}/delivery"),
            &json!({"delivery_date": days_ago(0), "facility_name": "示范县人民医院", "mode": "vaginal",
                    "live_births": "1", "stillbirths": "0"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let outcome = view["followups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["followup"]["kind"] == json!("outcome"))
        .unwrap()
        .clone();
    assert_eq!(outcome["followup"]["result"], json!("delivered"), "{view}");

    // Both partners' records show the accesses.
    let husband = view["husband"]["id"].as_str().unwrap();
    for person in [wife.as_str(), husband] {
        let rows = audit_rows(&app, person).await;
        assert!(
            rows.iter().any(|(e, a, _)| e == "couple" && a == "read"),
            "{person}: {rows:?}"
        );
        assert!(
            rows.iter().any(|(e, a, _)| e == "couple" && a == "create"),
            "{person}: {rows:?}"
        );
    }
}

#[tokio::test]
async fn not_pregnant_schedules_the_next_follow_up_and_lost_closes_it() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, couple) = couple_of(&mut town, "孙丽", 44, "钱伟", json!({})).await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/prepregnancy-exams"),
            &json!({"exam_date": days_ago(100), "wife": {"hb_g_l": 125}}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["exam"]["risk_class"], json!("general"), "{r}");
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let fid = view["followups"][0]["followup"]["id"].as_str().unwrap().to_string();
    // A result of the other kind is refused by name.
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/followups/{fid}"),
            &json!({"result": "delivered"}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/followups/{fid}"),
            &json!({"result": "not_pregnant", "done_on": days_ago(10)}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["result_label"], json!("未孕"));
    // Answered twice: a conflict, not an overwrite.
    let (s, _) = town
        .post_json(
            &format!("/api/couples/{id}/followups/{fid}"),
            &json!({"result": "lost"}),
        )
        .await;
    assert_eq!(s, 409);
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let open: Vec<&Value> = view["followups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["open"] == json!(true))
        .collect();
    assert_eq!(open.len(), 1, "the next 早孕随访: {view}");
    let next = open[0]["followup"]["id"].as_str().unwrap().to_string();
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/followups/{next}"),
            &json!({"result": "lost"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (_, list) = town.get_json("/api/couples/worklist").await;
    assert_eq!(list["townships"][0]["lost"], json!(1), "{list}");
    assert_eq!(list["followups_total"], json!(0), "{list}");
}

#[tokio::test]
async fn registration_issues_both_numbers_at_once_and_an_approval_waits_on_its_deadline() {
    let app = spawn_app().await;
    let mut desk = app.login("registrar", "TWN-A").await;
    let (wife, couple) = couple_of(&mut desk, "周敏", 50, "吴刚", json!({"marriage_date": "2015-10-01"})).await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    let children = json!([{"born": "2012-03-01", "joint": true}, {"born": "2016-08-09", "joint": true}]);
    let (s, r) = desk
        .post_json(
            &format!("/api/couples/{id}/birth-registrations"),
            &json!({"children": children}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let reg = &r["registration"];
    assert_eq!(reg["birth_order"], json!(3));
    assert_eq!(
        reg["procedure"],
        json!("registration"),
        "three children since 2021: {r}"
    );
    assert!(reg["rule"].as_str().unwrap().contains("national-2021"), "{r}");
    assert!(reg["registration_no"].as_str().unwrap().starts_with("SY340524"), "{r}");
    assert!(reg["handbook_no"].as_str().unwrap().starts_with("MZ340524"), "{r}");
    let handbook = reg["handbook_no"].as_str().unwrap().to_string();
    // The same birth order again: a conflict.
    let (s, _) = desk
        .post_json(
            &format!("/api/couples/{id}/birth-registrations"),
            &json!({"children": children}),
        )
        .await;
    assert_eq!(s, 409);
    // She books afterwards: the handbook number appears on her pregnancy.
    let (s, p) = desk
        .post_json(
            &format!("/api/persons/{wife}/pregnancies"),
            &json!({"lmp": days_ago(60), "gravidity": "3", "parity": "2"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, chart) = desk
        .get_json(&format!("/api/pregnancies/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(chart["handbook_no"], json!(handbook), "{chart}");
    // The print carries both numbers.
    let page = desk
        .get(&format!(
            "/couples/{id}/registrations/{}/print",
            reg["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&handbook) && page.body.contains("SY340524"),
        "{}",
        page.body
    );

    // A remarried Shandong couple in 2019, her child and one together: 再生育审批 (Art. 20(4)) with
    // its deadline (乡镇 20 days, then 县级 10 days).
    let (_, couple) = couple_of(
        &mut desk,
        "郑红",
        60,
        "王强",
        json!({"marriage_date": "2016-01-01", "wife_remarriage": true, "wife_province": "37", "husband_province": "37"}),
    )
    .await;
    let id2 = couple["couple"]["id"].as_str().unwrap().to_string();
    let (s, r) = desk
        .post_json(
            &format!("/api/couples/{id2}/birth-registrations"),
            &json!({"date": "2019-06-01", "children": [{"born": "2012-03-01", "before_remarriage_of": "wife"},
                                                        {"born": "2016-08-09", "joint": true}]}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["registration"]["procedure"], json!("approval"), "{r}");
    assert_eq!(r["registration"]["status"], json!("awaiting_approval"));
    assert_eq!(r["registration"]["decision_due"], json!("2019-07-01"), "{r}");
    assert!(r["registration"]["source"].as_str().unwrap().contains("山东"), "{r}");
    let rid = r["registration"]["id"].as_str().unwrap().to_string();
    let page = desk.get(&format!("/couples/{id2}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("记录审批结果") && page.body.contains("2019-07-01"),
        "{}",
        page.body
    );
    let (_, list) = desk.get_json("/api/couples/worklist").await;
    assert_eq!(list["registrations_total"], json!(1), "{list}");
    assert_eq!(
        list["registrations"][0]["overdue"],
        json!(true),
        "a 2019 deadline has passed: {list}"
    );
    let (s, r) = desk
        .post_json(
            &format!("/api/couples/{id2}/birth-registrations/{rid}/decision"),
            &json!({"decision": "approved", "decided_on": "2019-07-01"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status_label"], json!("再生育已批准"));
    let (s, _) = desk
        .post_json(
            &format!("/api/couples/{id2}/birth-registrations/{rid}/decision"),
            &json!({"decision": "refused"}),
        )
        .await;
    assert_eq!(s, 409, "decided once");
}

#[tokio::test]
async fn a_partner_joins_a_later_couple_only_after_the_first_marriage_ends_and_history_is_kept() {
    let app = spawn_app().await;
    let mut desk = app.login("registrar", "TWN-A").await;
    let (wife, couple) = couple_of(&mut desk, "冯晓", 70, "陈军", json!({"marriage_date": "2016-03-03"})).await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    let second = json!({"wife": {"person_id": wife},
                        "husband": {"person": {"name": "褚明", "id_number": id_number("340524", "1990-01-01", 73)}}});
    let (s, r) = desk.post_json("/api/couples", &second).await;
    assert_eq!(s, 409, "one current couple per person: {r}");
    let (s, r) = desk
        .post_json(
            &format!("/api/couples/{id}/end"),
            &json!({"ended_on": "2014-01-01", "reason": "divorce"}),
        )
        .await;
    assert_eq!(s, 422, "not before the marriage: {r}");
    let (s, r) = desk
        .post_json(
            &format!("/api/couples/{id}/end"),
            &json!({"ended_on": "2020-01-01", "reason": "divorce"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["end_reason_label"], json!("离婚"));
    let (s, r) = desk.post_json("/api/couples", &second).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["other_couples"][0]["id"], json!(id), "history kept: {r}");
    // A man cannot be the wife; the same person cannot be both.
    let (s, r) = desk
        .post_json(
            "/api/couples",
            &json!({"wife": {"person": {"name": "蒋涛", "id_number": id_number("340524", "1990-01-01", 75)}},
                    "husband": {"person": {"name": "沈亮", "id_number": id_number("340524", "1990-01-01", 77)}}}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["fields"][0]["field"], json!("wife"), "{r}");
}

#[tokio::test]
async fn another_township_cannot_open_the_couple_and_the_refusal_names_her() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (wife, couple) = couple_of(&mut town, "韩梅", 80, "杨雷", json!({})).await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    let mut other = app.login("clinician", "TWN-B").await;
    let (s, r) = other.get_json(&format!("/api/couples/{id}")).await;
    assert_eq!(s, 403, "{r}");
    assert!(
        !r.to_string().contains("韩梅") && !r.to_string().contains("杨雷"),
        "{r}"
    );
    let (s, _) = other
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &screening())
        .await;
    assert_eq!(s, 403);
    let rows = audit_rows(&app, &wife).await;
    assert!(rows.iter().any(|(e, _, o)| e == "couple" && o == "denied"), "{rows:?}");
    // The county sees its townships.
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, _) = county.get_json(&format!("/api/couples/{id}")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_pages_register_screen_and_print() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (s, r) = town
        .post_json(
            "/api/persons",
            &json!({"name": "朱燕", "id_number": id_number("340524", "1996-02-02", 90)}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let wife = r["person_id"].as_str().unwrap().to_string();
    let page = town.get(&format!("/persons/{wife}")).await;
    assert!(page.body.contains("couple-form"), "{}", page.body);
    let husband_id = id_number("340524", "1994-02-02", 91);
    let page = town
        .post_form(
            "/couples",
            &[
                ("wife_id", &wife),
                ("husband_name", "秦刚"),
                ("husband_id_number", &husband_id),
                ("marriage_date", "2025-01-01"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let couple_path = page.location.unwrap();
    let page = town.get(&couple_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("秦刚") && page.body.contains("new-screening"),
        "{}",
        page.body
    );
    let page = town.get(&format!("{couple_path}/screening")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("husband.hb_g_l") && !page.body.contains("husband.rubella_igg"),
        "the man's subset"
    );
    // A refused form keeps what was typed.
    let page = town
        .post_form(
            &format!("{couple_path}/screening"),
            &[("wife.hb_g_l", "abc"), ("wife.weight_kg", "61")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("请填写数字") && page.body.contains("value=\"61\""),
        "{}",
        page.body
    );
    let page = town
        .post_form(
            &format!("{couple_path}/screening"),
            &[
                ("exam_date", &days_ago(100)),
                ("wife.hb_g_l", "85"),
                ("wife.weight_kg", "61"),
                ("husband.smoking", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = town.get(&page.location.unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("评估建议告知书") && page.body.contains("高风险人群"),
        "{}",
        page.body
    );
    // The marriage check prints its certificate with the advice.
    let page = town
        .post_form(
            &format!("{couple_path}/premarital"),
            &[
                ("partner", "wife"),
                ("advice", "medical_measures"),
                ("wife.hb_g_l", "85"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "a reason is required: {}", page.body);
    let page = town
        .post_form(
            &format!("{couple_path}/premarital"),
            &[
                ("partner", "wife"),
                ("advice", "medical_measures"),
                ("advice_reason", "中度贫血，建议治疗后再孕"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = town.get(&page.location.unwrap()).await;
    assert!(
        page.body.contains("建议采取医学措施") && page.body.contains("HJ340524"),
        "{}",
        page.body
    );
    let page = town.get("/couples").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("朱燕"),
        "her 早孕随访 is on the worklist: {}",
        page.body
    );
}

#[tokio::test]
async fn a_merge_moves_her_couples_to_the_survivor_but_not_two_current_marriages() {
    use mch_chain::auth::model::Role;
    let app = spawn_app().await;
    let mut desk = app.login("registrar", "TWN-A").await;
    let (survivor, _) = couple_of(&mut desk, "钱红", 20, "李明", json!({})).await;
    // The same woman registered again without her ID number, married to the same man's namesake.
    let (s, r) = desk
        .post_json(
            "/api/persons",
            &json!({"name": "钱小红", "sex": "female", "birth_date": "1995-04-02"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let merged = r["person_id"].as_str().unwrap().to_string();
    let (s, second) = desk
        .post_json(
            "/api/couples",
            &json!({"wife": {"person_id": merged},
                    "husband": {"person": {"name": "李明明", "id_number": id_number("340524", "1993-09-09", 23)}},
                    "marriage": {"wife_province": "34"}}),
        )
        .await;
    assert_eq!(s, 201, "{second}");
    let second = second["couple"]["id"].as_str().unwrap().to_string();
    let actor = app.system_actor("TWN-A", Role::Registrar).await;
    let merge = |actor: mch_chain::auth::model::Actor, survivor: String, merged: String| {
        app.db.write(move |c| {
            let s = mch_chain::identity::repo::by_id(c, &survivor)?.unwrap();
            let m = mch_chain::identity::repo::by_id(c, &merged)?.unwrap();
            mch_chain::identity::service::merge(c, &actor, &s, &m, None)
        })
    };
    let refused = merge(actor.clone(), survivor.clone(), merged.clone()).await;
    assert!(
        matches!(&refused, Err(mch_chain::error::ServiceError::Conflict(m)) if m.contains("在婚")),
        "{refused:?}"
    );
    let (s, r) = desk
        .post_json(&format!("/api/couples/{second}/end"), &json!({"reason": "divorce"}))
        .await;
    assert_eq!(s, 200, "{r}");
    merge(actor, survivor.clone(), merged).await.unwrap();
    let (s, moved) = desk.get_json(&format!("/api/couples/{second}")).await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(
        moved["wife"]["id"],
        json!(survivor),
        "her ended couple is now the survivor's: {moved}"
    );
    assert_eq!(moved["other_couples"].as_array().unwrap().len(), 1, "{moved}");
}

#[tokio::test]
async fn a_referral_grant_for_her_pregnancy_does_not_open_the_couple() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (wife, couple) = couple_of(&mut town, "严洁", 100, "华勇", json!({})).await;
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    let (s, r) = town
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &screening())
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, p) = town
        .post_json(
            &format!("/api/persons/{wife}/pregnancies"),
            &json!({"lmp": days_ago(200), "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    // An emergency referral accepted by a centre of the neighbouring county: it may now read
    // her pregnancy, never the couple's record (his findings) nor her screening by FHIR.
    let (s, r) = town
        .post_json(
            "/api/referrals",
            &json!({"person_id": wife, "urgency": "emergency", "reason": "产前出血", "to_facility": "NBR", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let mut centre = app.login("clinician", "NBR").await;
    let (s, _) = centre
        .post_json(
            &format!("/api/referrals/{}/accept", r["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        centre
            .get_json(&format!("/api/pregnancies/{}", p["id"].as_str().unwrap()))
            .await
            .0,
        200
    );
    let (s, body) = centre.get_json(&format!("/api/couples/{id}")).await;
    assert_eq!(s, 403, "{body}");
    assert!(!body.to_string().contains("华勇"), "{body}");
    let (s, _) = centre
        .post_json(&format!("/api/couples/{id}/prepregnancy-exams"), &screening())
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn the_legal_marriage_age_an_empty_screening_and_a_back_dated_one_are_handled_safely() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    // She was born 1995-04-02: 19 on 2015-01-01, under the legal age of 20 (民法典 Art. 1047).
    let (s, r) = town
        .post_json(
            "/api/persons",
            &json!({"name": "卫玲", "id_number": id_number("340524", "1995-04-02", 110)}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let wife = r["person_id"].as_str().unwrap().to_string();
    let husband = json!({"person": {"name": "沈涛", "id_number": id_number("340524", "1990-01-01", 111)}});
    let (s, r) = town
        .post_json(
            "/api/couples",
            &json!({"wife": {"person_id": wife}, "husband": husband, "marriage": {"marriage_date": "2015-01-01"}}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r.to_string().contains("法定婚龄"), "{r}");
    let (s, couple) = town
        .post_json(
            "/api/couples",
            &json!({"wife": {"person_id": wife}, "husband": husband, "marriage": {"marriage_date": "2016-01-01"}}),
        )
        .await;
    assert_eq!(s, 201, "{couple}");
    let id = couple["couple"]["id"].as_str().unwrap().to_string();
    // Nothing recorded for her: refused, not classed 一般人群.
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/prepregnancy-exams"),
            &json!({"husband": {"smoking": true}}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["fields"][0]["field"], json!("wife"), "{r}");
    // A screening, then a back-dated one: the follow-up stays due from the newer.
    let (s, _) = town
        .post_json(
            &format!("/api/couples/{id}/prepregnancy-exams"),
            &json!({"exam_date": days_ago(10), "wife": {"hb_g_l": 120}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = town
        .post_json(
            &format!("/api/couples/{id}/prepregnancy-exams"),
            &json!({"exam_date": days_ago(200), "wife": {"hb_g_l": 118}}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, view) = town.get_json(&format!("/api/couples/{id}")).await;
    let open: Vec<&Value> = view["followups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["open"] == json!(true))
        .collect();
    assert_eq!(open.len(), 1, "{view}");
    assert_eq!(open[0]["followup"]["due"], json!(days_ago(10 - 90)), "{view}");
    // The couple counts once on the worklist, though screened twice.
    let (_, list) = town.get_json("/api/couples/worklist").await;
    assert_eq!(list["townships"][0]["screened"], json!(1), "{list}");
    // When the marriage ends, its follow-up leaves the worklists (kept as history).
    let (s, _) = town
        .post_json(&format!("/api/couples/{id}/end"), &json!({"reason": "divorce"}))
        .await;
    assert_eq!(s, 200);
    let (s, r) = town
        .post_json(
            &format!("/api/couples/{id}/prepregnancy-exams"),
            &json!({"wife": {"hb_g_l": 120}}),
        )
        .await;
    assert_eq!(s, 409, "no screening of an ended marriage: {r}");
}
