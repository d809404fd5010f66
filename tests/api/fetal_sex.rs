//! The 两非 ban (RULES.md §9.1) at every door and in every free-text field: a text stating fetal
//! sex is refused before anything is stored, the form names the field and why, and the attempt is
//! audited without the text. Ordinary clinical text is still accepted.

use serde_json::{Value, json};

use crate::fhir_support::Fhir;
use crate::helpers::{Client, TestApp, days_ago, spawn_app};
use crate::pregnancy::booked;

/// The fields a 422 answer names with the fetal-sex code.
fn refused_fields(body: &Value) -> Vec<String> {
    body["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter(|e| e["code"] == "fetal_sex")
                .map(|e| e["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The auditor's view of who touched her record: the denied rows, and whether any row (or any
/// answer) repeats the refused text.
async fn denied_rows(app: &TestApp, person: &str) -> Vec<Value> {
    let mut auditor = app.login("auditor", "PROV").await;
    let (s, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert_eq!(s, 200, "{log}");
    let text = log.to_string();
    // What the refused texts said (the refusal's own reason, "含有胎儿性别信息", may appear).
    for phrase in [
        "男胎",
        "女胎",
        "性别：",
        "性別",
        "nan tai",
        "fetal sex:",
        "fetal gender",
        "男 胎",
        "胎儿性别 ",
    ] {
        assert!(!text.contains(phrase), "the audit log repeats {phrase:?}: {text}");
    }
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .cloned()
        .collect()
}

async fn pregnancy_json(c: &mut Client, pregnancy: &str) -> Value {
    let (s, rec) = c.get_json(&format!("/api/pregnancies/{pregnancy}")).await;
    assert_eq!(s, 200, "{rec}");
    rec
}

#[tokio::test]
async fn a_visit_whose_free_text_states_fetal_sex_is_refused_field_by_field_and_audited_without_the_text() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut c, "钱芳", 36, 20).await;
    // The probe's request: 201 on the old main, both texts shown on the page and in the JSON.
    let (s, r) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(1), "weight_kg": "60", "complaints": "B超提示男胎", "advice": "胎儿性别：女"}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(refused_fields(&r), ["complaints", "advice"], "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("胎儿性别信息"),
        "the reason is given: {r}"
    );
    let rec = pregnancy_json(&mut c, &preg).await;
    assert_eq!(rec["visits"].as_array().unwrap().len(), 0, "nothing was stored: {rec}");
    assert!(!rec.to_string().contains("男胎"));

    // Spacing, full-width, traditional and pinyin forms are the same phrase.
    for text in ["男 胎", "ｆｅｔａｌ　ｓｅｘ: male", "胎兒性別 男", "B chao: nan tai"] {
        let (s, r) = c
            .post_json(
                &format!("/api/pregnancies/{preg}/visits"),
                &json!({"visit_date": days_ago(1), "complaints": text}),
            )
            .await;
        assert_eq!(
            (s, refused_fields(&r)),
            (422, vec!["complaints".to_string()]),
            "{text}: {r}"
        );
    }

    // The visit form says which field and why, and does not show the refused text again.
    let page = c
        .post_form(
            &format!("/pregnancies/{preg}/visits"),
            &[
                ("visit_date", &days_ago(1)),
                ("complaints", "头晕"),
                ("advice", "B超提示女胎"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("指导意见含有胎儿性别信息"), "{}", page.body);
    assert!(page.body.contains("头晕"), "what was typed elsewhere is kept");
    assert!(!page.body.contains("女胎"), "the refused text is not shown again");

    // Every refusal is on record against her, naming the fields but never the text.
    let denied = denied_rows(&app, &person).await;
    assert_eq!(denied.len(), 6, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|e| e["entity_type"] == "visit"
                && e["detail"].as_str().unwrap().starts_with("refused: fetal sex stated"))
    );
    assert!(
        denied[5]["detail"].as_str().unwrap().ends_with("complaints, advice"),
        "the oldest, the probe's"
    );

    // Ordinary clinical words are still saved.
    let (s, v) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(1), "complaints": "胎动好，男方乙肝阳性", "advice": "胎心 140 次/分，胎盘位置正常"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // A text stored before every door refused it (the probe's rows on an old database) is
    // withheld whole on her page, never shown.
    let visit = v["id"].as_str().unwrap().to_string();
    app.db
        .write(move |c| {
            use diesel::RunQueryDsl;
            diesel::sql_query(format!(
                "UPDATE visits SET complaints = 'B超提示男胎' WHERE id = '{visit}'"
            ))
            .execute(c)
            .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap();
    let rec = pregnancy_json(&mut c, &preg).await;
    assert_eq!(
        rec["visits"][0]["visit"]["complaints"],
        mch_chain::privacy::model::WITHHELD,
        "{rec}"
    );
    let page = c.get(&format!("/pregnancies/{preg}")).await;
    assert!(
        !page.body.contains("男胎") && page.body.contains("已隐去"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_delivery_record_may_not_carry_the_childs_sex_in_its_complications() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut c, "孙丽", 32, 39).await;
    let body = json!({"delivery_date": days_ago(1), "facility_name": "示范县人民医院", "mode": "vaginal",
                      "live_births": "1", "stillbirths": "0", "complications": "产前B超提示男胎"});
    let (s, r) = c.post_json(&format!("/api/pregnancies/{preg}/delivery"), &body).await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["complications".to_string()]), "{r}");
    assert_eq!(pregnancy_json(&mut c, &preg).await["pregnancy"]["status"], "active");
    let page = c
        .post_form(
            &format!("/pregnancies/{preg}/delivery"),
            &[
                ("delivery_date", &days_ago(1)),
                ("facility_name", "示范县人民医院"),
                ("mode", "vaginal"),
                ("live_births", "1"),
                ("stillbirths", "0"),
                ("complications", "胎儿性别 女"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("并发症含有胎儿性别信息") && !page.body.contains("胎儿性别 女"));
    assert_eq!(denied_rows(&app, &person).await.len(), 2);
    let mut ok = body.clone();
    ok["complications"] = json!("产后出血 600 ml");
    let (s, r) = c.post_json(&format!("/api/pregnancies/{preg}/delivery"), &ok).await;
    assert_eq!(s, 201, "{r}");
}

#[tokio::test]
async fn referral_reasons_details_and_step_notes_are_checked_at_every_step() {
    let app = spawn_app().await;
    let mut sender = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut sender, "周敏", 38, 30).await;
    let open = |reason: &str, details: Value| {
        json!({"person_id": person, "urgency": "emergency", "reason": reason, "to_facility": "CTYHOSP",
               "details": details, "send": true})
    };
    let (s, r) = sender
        .post_json("/api/referrals", &open("先兆早产，B超提示女胎", json!({})))
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["reason".to_string()]), "{r}");
    let (s, r) = sender
        .post_json(
            "/api/referrals",
            &open("先兆早产", json!({"diagnoses": "G1P0 孕30周 胎兒性別男"})),
        )
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["diagnoses".to_string()]), "{r}");
    let (s, list) = sender.get_json("/api/referrals").await;
    assert_eq!(
        (s, list.as_array().map(Vec::len)),
        (200, Some(0)),
        "nothing was opened: {list}"
    );

    let (s, r) = sender
        .post_json("/api/referrals", &open("先兆早产", json!({"diagnoses": "G1P0 孕30周"})))
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let mut centre = app.login("clinician", "CTYHOSP").await;
    for step in ["acknowledge", "accept", "depart"] {
        let actor = if step == "depart" { &mut sender } else { &mut centre };
        let (s, r) = actor
            .post_json(&format!("/api/referrals/{id}/{step}"), &json!({}))
            .await;
        assert_eq!(s, 200, "{step}: {r}");
    }
    let (s, r) = centre
        .post_json(
            &format!("/api/referrals/{id}/arrive"),
            &json!({"received_by": "王医生", "note": "交接：B超示 男胎"}),
        )
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["note".to_string()]), "{r}");
    assert_eq!(
        centre.get_json(&format!("/api/referrals/{id}")).await.1["state"],
        "departed"
    );
    let (s, r) = sender
        .post_json(
            &format!("/api/referrals/{id}/details"),
            &json!({"diagnoses": "孕30周", "treatment": "硫酸镁；fetal sex female"}),
        )
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["treatment".to_string()]), "{r}");
    let denied = denied_rows(&app, &person).await;
    assert_eq!(denied.len(), 4, "{denied:?}");
}

#[tokio::test]
async fn grading_notes_removal_reasons_and_case_notes_are_checked() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (person, preg) = booked(&mut town, "吴静", 34, 24).await;
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["R2.2"]}, "note": "超声：女胎，凶险性前置胎盘"}),
        )
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["note".to_string()]), "{r}");
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["R2.2"]}, "note": "凶险性前置胎盘"}),
        )
        .await;
    assert_eq!((s, a["colour"].as_str()), (201, Some("red")), "{a}");
    let rec = pregnancy_json(&mut town, &preg).await;
    let case_id = rec["risk"]["case"]["id"].as_str().unwrap().to_string();
    let (s, r) = town
        .post_json(
            &format!("/api/risk/cases/{case_id}/actions"),
            &json!({"action": "follow_up", "note": "家访，孕妇称外院查胎儿性别为男"}),
        )
        .await;
    assert_eq!((s, refused_fields(&r)), (422, vec!["note".to_string()]), "{r}");
    let (s, r) = town
        .post_json(
            &format!("/api/risk/cases/{case_id}/actions"),
            &json!({"action": "follow_up", "note": "家访，胎动好"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let denied = denied_rows(&app, &person).await;
    assert_eq!(
        denied
            .iter()
            .map(|e| e["entity_type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["risk_case", "pregnancy"],
        "newest first: {denied:?}"
    );
}

#[tokio::test]
async fn fhir_documents_stating_fetal_sex_anywhere_are_refused_for_every_type() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let r = his
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"text": "郑洁"}], "gender": "female",
                    "birthDate": "1993-03-03"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let her = r.body["id"].as_str().unwrap().to_string();
    let condition = json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"text": "妊娠期糖尿病"},
        "subject": {"reference": format!("Patient/{her}")},
        "note": [{"text": "超声 男胎"}],
    });
    let r = his.post("Condition", &condition).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["issue"][0]["code"], "business-rule", "{}", r.body);
    let immunization = json!({
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "乙肝疫苗"},
        "patient": {"reference": format!("Patient/{her}")},
        "occurrenceDateTime": format!("{}T10:00:00+08:00", days_ago(2)),
        "note": [{"text": "fetal gender: male"}],
    });
    assert_eq!(his.post("Immunization", &immunization).await.status, 422);
    let mut ok = condition.clone();
    ok["note"] = json!([{"text": "饮食控制"}]);
    let r = his.post("Condition", &ok).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let denied = denied_rows(&app, &her).await;
    assert_eq!(denied.len(), 2, "{denied:?}");
}
