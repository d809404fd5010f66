//! 体弱儿专案管理: a child health visit or the birth meeting a criterion opens a frail-child case
//! in the same transaction (低体重, 贫血 by age and severity, 早产, growth faltering); the case's
//! follow-ups, escalation when overdue, closure; the district board; manual opening; access by
//! role and area, every refusal audited.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, days_ago, spawn_app};
use crate::pregnancy::booked;

/// A baby girl of 东关镇 born yesterday (term, 3,300 g unless `babies` says otherwise), her
/// birth then moved `age_days` back so she is that old today.
async fn child_aged(app: &TestApp, name: &str, seq: u32, age_days: i64) -> (Client, String) {
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c, name, seq, 39).await;
    let (s, birth) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "discharge_date": days_ago(0), "facility_name": "示范县人民医院",
                    "mode": "vaginal", "live_births": "1", "stillbirths": "0",
                    "babies": [{"sex": "female", "weight_g": "3300", "birth_time": "08:00"}]}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    if age_days > 1 {
        born_earlier(app, &id, age_days - 1);
    }
    (c, id)
}

/// Move a child's birth `days` further back (the dates a test cannot wait for).
fn born_earlier(app: &TestApp, child: &str, days: i64) {
    use diesel::prelude::*;
    use mch_chain::storage::schema::{children, persons};
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    let (at, born): (chrono::NaiveDateTime, chrono::NaiveDate) = children::table
        .inner_join(persons::table)
        .filter(children::person_id.eq(child))
        .select((children::birth_at, persons::birth_date))
        .first(&mut conn)
        .unwrap();
    let d = chrono::Duration::days(days);
    diesel::update(children::table.filter(children::person_id.eq(child)))
        .set(children::birth_at.eq(at - d))
        .execute(&mut conn)
        .unwrap();
    diesel::update(persons::table.filter(persons::id.eq(child)))
        .set(persons::birth_date.eq(born - d))
        .execute(&mut conn)
        .unwrap();
}

/// Put a case's next follow-up on another day (as if time had passed).
fn follow_up_due(app: &TestApp, case: &str, day: &str) {
    use diesel::prelude::*;
    use mch_chain::storage::schema::frail_cases;
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    diesel::update(frail_cases::table.filter(frail_cases::id.eq(case)))
        .set(frail_cases::next_follow_up.eq(day))
        .execute(&mut conn)
        .unwrap();
}

async fn visit(c: &mut Client, child: &str, body: Value) -> Value {
    let (s, v) = c.post_json(&format!("/api/children/{child}/visits"), &body).await;
    assert_eq!(s, 201, "{v}");
    v
}

/// Her open case from her page (null when none).
async fn case_of(c: &mut Client, child: &str) -> Value {
    let (s, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(s, 200, "{chart}");
    chart["frail_case"].clone()
}

async fn view(c: &mut Client, case: &str) -> Value {
    let (s, v) = c.get_json(&format!("/api/child/frail/{case}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn codes(view: &Value) -> Vec<(String, String)> {
    view["case"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_string(),
                r["band"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_visit_with_waz_below_minus_two_opens_an_underweight_case_listed_on_the_board() {
    let app = spawn_app().await;
    let (mut c, id) = child_aged(&app, "李梅", 60, 90).await;
    assert!(
        case_of(&mut c, &id).await.is_null(),
        "a term 3,300 g baby opens no case"
    );
    // 90 days, 4.3 kg: WHO weight-for-age z ≈ −2.4.
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "weight_kg": "4.3"})).await;
    let open = case_of(&mut c, &id).await;
    assert!(open["reasons"].as_str().unwrap().contains("低体重（中度）"), "{open}");
    let case = open["id"].as_str().unwrap().to_string();
    let v = view(&mut c, &case).await;
    assert_eq!(codes(&v), [("underweight".to_string(), "moderate".to_string())]);
    assert_eq!(v["case"]["status"], "active");
    assert_eq!(v["case"]["follow_up_days"], 30, "营养不良: monthly");
    assert_eq!(v["case"]["next_follow_up"], days_ago(-30));
    assert_eq!(v["case"]["last_contact"], days_ago(0), "the visit is the first contact");
    assert!(
        v["case"]["case_manager_id"].is_string(),
        "the township clinician who saw her manages it"
    );
    assert!(
        v["reasons"][0]["reason"]["detail"]
            .as_str()
            .unwrap()
            .contains("年龄别体重 z")
    );
    assert_eq!(v["reasons"][0]["tag"], "R");
    // The district board counts it by reason; another township's board does not show it.
    let (s, b) = c.get_json("/api/child/frail/board").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["counts"]["underweight"], 1);
    assert_eq!(b["rows"][0]["child"]["id"], id.as_str());
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, b) = county.get_json("/api/child/frail/board?reason=underweight").await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 1);
    let (_, b) = county.get_json("/api/child/frail/board?reason=anaemia").await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 0);
    let mut registrar = app.login("registrar", "TWN-A").await;
    assert_eq!(
        registrar.get_json("/api/child/frail/board").await.0,
        200,
        "record staff read it"
    );
    let mut other = app.login("clinician", "TWN-B").await;
    let (_, b) = other.get_json("/api/child/frail/board").await;
    assert_eq!(b["total"], 0, "{b}");
    // The pages.
    let page = c.get("/child/frail/board").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("李梅之女") && page.body.contains("低体重 1"),
        "{}",
        page.body
    );
    let page = c.get(&format!("/child/frail/{case}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("每月测量体重") && page.body.contains("follow-up-form"),
        "{}",
        page.body
    );
    let page = c.get(&format!("/children/{id}")).await;
    assert!(
        page.body.contains(&format!("/child/frail/{case}")),
        "her page links her case"
    );
    // Another township is refused, and the refusal is in her access log.
    assert_eq!(other.get_json(&format!("/api/child/frail/{case}")).await.0, 403);
    assert_eq!(other.get(&format!("/child/frail/{case}")).await.status, 403);
    let (s, _) = other
        .post_json(
            &format!("/api/child/frail/{case}/actions"),
            &json!({"action": "follow_up"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = registrar
        .post_json(
            &format!("/api/child/frail/{case}/actions"),
            &json!({"action": "follow_up"}),
        )
        .await;
    assert_eq!(s, 403, "only clinicians manage cases");
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{id}")).await;
    let events = log["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["outcome"] == "denied"
            && e["actor_name"] == "clinician.twn-b"
            && e["entity_type"] == "frail_case"),
        "{log}"
    );
    assert!(events.iter().any(|e| e["detail"] == "frail-child case opened"));
    assert!(events.iter().any(|e| e["detail"] == "frail-child case page"));
    assert!(events.iter().any(|e| e["detail"] == "frail-child board"));
}

#[tokio::test]
async fn hb_95_at_eight_months_opens_mild_anaemia_hb_110_does_not_and_a_worse_finding_tightens_the_follow_up() {
    let app = spawn_app().await;
    let (mut c, anaemic) = child_aged(&app, "王丽", 62, 245).await;
    let (_, normal) = child_aged(&app, "张华", 64, 245).await;
    visit(&mut c, &normal, json!({"visit_date": days_ago(0), "hb_g_l": "110"})).await;
    assert!(
        case_of(&mut c, &normal).await.is_null(),
        "110 g/L is not anaemic at 6–59 months"
    );
    visit(&mut c, &anaemic, json!({"visit_date": days_ago(0), "hb_g_l": "95"})).await;
    let case = case_of(&mut c, &anaemic).await["id"].as_str().unwrap().to_string();
    let v = view(&mut c, &case).await;
    assert_eq!(codes(&v), [("anaemia".to_string(), "mild".to_string())]);
    assert_eq!(v["case"]["reasons"][0]["label"], "贫血（轻度）");
    assert_eq!(
        v["case"]["next_follow_up"],
        days_ago(-30),
        "re-check Hb after a month of iron"
    );
    // Found again, worse (Hb 55: 重度): the same reason, a tighter follow-up; one case only.
    visit(
        &mut c,
        &anaemic,
        json!({"visit_date": days_ago(0), "hb_g_l": "55", "weight_kg": "8.0"}),
    )
    .await;
    let v = view(&mut c, &case).await;
    assert_eq!(codes(&v), [("anaemia".to_string(), "severe".to_string())]);
    assert_eq!(v["case"]["follow_up_days"], 7);
    assert_eq!(v["case"]["next_follow_up"], days_ago(-7));
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "reason_added" && e["note"].as_str().unwrap().contains("贫血（重度）")),
        "{}",
        v["events"]
    );
    let (_, b) = c.get_json("/api/child/frail/board").await;
    assert_eq!(b["counts"]["anaemia"], 1);
    assert_eq!(b["total"], 1);
}

#[tokio::test]
async fn a_preterm_birth_opens_a_case_at_birth() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut c, "赵雪", 66, 34).await;
    let (s, birth) = c
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "discharge_date": days_ago(0), "facility_name": "示范县人民医院",
                    "mode": "caesarean", "live_births": "1", "babies": [{"sex": "male", "weight_g": "2650"}]}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    let id = birth["children"][0]["id"].as_str().unwrap().to_string();
    let open = case_of(&mut c, &id).await;
    assert!(!open.is_null(), "早产 (33+6) opens her case at birth");
    let v = view(&mut c, open["id"].as_str().unwrap()).await;
    assert_eq!(codes(&v), [("preterm".to_string(), "preterm".to_string())]);
    assert_eq!(v["case"]["reasons"][0]["source"], "birth");
    assert_eq!(
        v["case"]["next_follow_up"],
        days_ago(-30),
        "monthly, counted from her discharge"
    );
    assert!(v["case"]["last_contact"].is_null());
    // Her county sees it on its board.
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, b) = county.get_json("/api/child/frail/board").await;
    assert_eq!(b["counts"]["preterm"], 1, "{b}");
}

#[tokio::test]
async fn growth_faltering_between_two_visits_opens_a_case() {
    let app = spawn_app().await;
    let (mut c, id) = child_aged(&app, "孙燕", 68, 120).await;
    // 90 days, 5.8 kg (z ≈ 0); a month later still 5.8 kg.
    visit(&mut c, &id, json!({"visit_date": days_ago(30), "weight_kg": "5.8"})).await;
    assert!(case_of(&mut c, &id).await.is_null());
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "weight_kg": "5.8"})).await;
    let open = case_of(&mut c, &id).await;
    let v = view(&mut c, open["id"].as_str().unwrap()).await;
    assert_eq!(codes(&v), [("faltering".to_string(), String::new())]);
    assert!(
        v["case"]["reasons"][0]["detail"].as_str().unwrap().contains("体重不增"),
        "{v}"
    );
}

#[tokio::test]
async fn an_overdue_case_escalates_once_per_step_is_followed_up_and_closes_when_she_has_recovered() {
    let app = spawn_app().await;
    let (mut c, id) = child_aged(&app, "周琳", 70, 90).await;
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "weight_kg": "4.3"})).await;
    let case = case_of(&mut c, &id).await["id"].as_str().unwrap().to_string();
    let act = |body: Value| (format!("/api/child/frail/{case}/actions"), body);
    let (p, b) = act(json!({"action": "traced"}));
    assert_eq!(c.post_json(&p, &b).await.0, 409, "not overdue: nothing to trace");
    // Thirty-five days on (monthly): 5 days overdue, the case manager is told; once.
    let later = |d: i64| mch_chain::ids::today_china() + chrono::Duration::days(d);
    let esc = |d| mch_chain::child::service::escalate_frail_overdue(&app.db, later(d));
    assert_eq!(esc(35).await.unwrap(), 1);
    assert_eq!(esc(35).await.unwrap(), 0, "each step is recorded once");
    assert_eq!(view(&mut c, &case).await["case"]["escalation"], "case_manager");
    assert_eq!(esc(38).await.unwrap(), 1);
    assert_eq!(view(&mut c, &case).await["case"]["escalation"], "supervisor");
    assert_eq!(esc(45).await.unwrap(), 1);
    let v = view(&mut c, &case).await;
    assert_eq!(v["case"]["escalation"], "district");
    assert_eq!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "escalated")
            .count(),
        3
    );
    // Really overdue (the dates moved back): on the board first and on her manager's home page.
    follow_up_due(&app, &case, &days_ago(20));
    let (_, b) = c.get_json("/api/child/frail/board?overdue=1").await;
    assert_eq!(b["rows"][0]["days_overdue"], 20, "{b}");
    assert!(b["rows"][0]["escalation_label"].as_str().unwrap().contains("辖区"));
    let home = c.get("/").await;
    assert!(
        home.body.contains("frail-tasks") && home.body.contains("周琳之女"),
        "{}",
        home.body
    );
    // Traced, then followed up: back on schedule, no escalation.
    let (p, b) = act(json!({"action": "traced", "note": "电话联系到母亲"}));
    let (s, r) = c.post_json(&p, &b).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("traced")), "{r}");
    assert_eq!(r["next_follow_up"], days_ago(-7));
    let (p, b) = act(json!({"action": "follow_up", "note": "入户随访，喂养指导"}));
    let (s, r) = c.post_json(&p, &b).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["status"].as_str(), r["escalation"].as_str()),
        (Some("active"), Some("none"))
    );
    assert_eq!(r["next_follow_up"], days_ago(-30));
    // Closing: a note is required, the 两非 ban holds, and 恢复 waits for the record to show it.
    let (p, b) = act(json!({"action": "close", "close_reason": "referred"}));
    assert_eq!(c.post_json(&p, &b).await.0, 422, "a closing note is required");
    let (p, b) = act(json!({"action": "follow_up", "note": "母亲孕期B超提示男胎"}));
    let (s, r) = c.post_json(&p, &b).await;
    assert_eq!((s, r["fields"][0]["code"].as_str()), (422, Some("fetal_sex")), "{r}");
    let (p, b) = act(json!({"action": "close", "close_reason": "recovered", "note": "体重已增"}));
    let (s, r) = c.post_json(&p, &b).await;
    assert_eq!(s, 409, "still underweight on the record: {r}");
    let (p, b) = act(json!({"action": "close", "close_reason": "postpartum_check_done", "note": "x"}));
    assert_eq!(c.post_json(&p, &b).await.0, 422, "not a reason of a child's case");
    let (p, b) = act(json!({"action": "close", "close_reason": "aged_out", "note": "x"}));
    assert_eq!(c.post_json(&p, &b).await.0, 409, "she is three months old");
    // A visit that shows her recovered (5.9 kg: z ≈ −0.1) resolves the reason and counts as a follow-up.
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "weight_kg": "5.9"})).await;
    let v = view(&mut c, &case).await;
    assert_eq!(v["case"]["reasons"][0]["resolved_on"], days_ago(0), "{v}");
    assert_eq!(v["unresolved"], json!([]));
    let (p, b) = act(json!({"action": "close", "close_reason": "recovered", "note": "体重恢复正常，结案"}));
    let (s, r) = c.post_json(&p, &b).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("closed")), "{r}");
    assert_eq!(r["close_reason"], "recovered");
    let (p, b) = act(json!({"action": "follow_up"}));
    assert_eq!(c.post_json(&p, &b).await.0, 409, "a closed case takes no more");
    let (_, b) = c.get_json("/api/child/frail/board").await;
    assert_eq!(b["total"], 0, "closed cases leave the board");
    assert!(case_of(&mut c, &id).await.is_null());
    // A new finding later opens a new case.
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "weight_kg": "4.2"})).await;
    let again = case_of(&mut c, &id).await;
    assert!(!again.is_null() && again["id"] != case.as_str());
}

#[tokio::test]
async fn a_clinician_opens_a_case_by_hand_hands_it_over_and_closes_it_as_referred() {
    let app = spawn_app().await;
    let (mut c, id) = child_aged(&app, "吴芳", 72, 200).await;
    let path = format!("/api/children/{id}/frail");
    let (s, r) = c.post_json(&path, &json!({"reasons": ["other"]})).await;
    assert_eq!((s, r["fields"][0]["field"].as_str()), (422, Some("note")), "{r}");
    let (s, r) = c.post_json(&path, &json!({"reasons": ["nonsense"], "note": "x"})).await;
    assert_eq!((s, r["fields"][0]["field"].as_str()), (422, Some("reasons")), "{r}");
    let mut other = app.login("clinician", "TWN-B").await;
    let body = json!({"reasons": ["other"], "note": "先天性心脏病（室间隔缺损），心脏专科随访"});
    assert_eq!(other.post_json(&path, &body).await.0, 403);
    let mut registrar = app.login("registrar", "TWN-A").await;
    assert_eq!(registrar.post_json(&path, &body).await.0, 403);
    let (s, case) = c.post_json(&path, &body).await;
    assert_eq!(s, 201, "{case}");
    assert_eq!(case["reasons"][0]["source"], "manual");
    let case_id = case["id"].as_str().unwrap().to_string();
    // A second opening adds to the same case.
    let (s, again) = c
        .post_json(&path, &json!({"reasons": ["rickets"], "note": "外院诊断活动期佝偻病"}))
        .await;
    assert_eq!((s, again["id"].as_str()), (201, Some(case_id.as_str())));
    assert_eq!(again["reasons"].as_array().unwrap().len(), 2);
    // The manager must be a clinician whose facility covers her.
    let v = view(&mut c, &case_id).await;
    let managers = v["managers"].to_string();
    assert!(
        managers.contains("东关镇卫生院") && !managers.contains("西河乡卫生院"),
        "{managers}"
    );
    let county_manager = v["managers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["label"].as_str().unwrap().contains("示范县妇幼保健院"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let act = format!("/api/child/frail/{case_id}/actions");
    let (s, r) = c
        .post_json(&act, &json!({"action": "assign_manager", "manager_id": county_manager}))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["case_manager_id"], county_manager.as_str());
    // Referred to a specialist: closed with that reason.
    let (s, r) = c
        .post_json(
            &act,
            &json!({"action": "close", "close_reason": "referred", "note": "转诊至省妇幼保健院心脏专科"}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("closed")), "{r}");
    let v = view(&mut c, &case_id).await;
    assert_eq!(v["close_reason_label"], "转诊");
    let (s, _) = c
        .post_json(&act, &json!({"action": "assign_manager", "manager_id": county_manager}))
        .await;
    assert_eq!(s, 409, "a closed case takes no hand-over");
    // The page form opens one too.
    let p = c
        .post_form(
            &format!("/children/{id}/frail"),
            &[("reasons", "anaemia"), ("note", "外院血常规 Hb 92 g/L")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(!case_of(&mut c, &id).await.is_null());
}

#[tokio::test]
async fn a_child_who_moves_is_handed_over_and_the_receiving_county_manages_her() {
    let app = spawn_app().await;
    let (mut c, id) = child_aged(&app, "郑洁", 74, 245).await;
    visit(&mut c, &id, json!({"visit_date": days_ago(0), "hb_g_l": "85"})).await;
    let case = case_of(&mut c, &id).await["id"].as_str().unwrap().to_string();
    let act = format!("/api/child/frail/{case}/actions");
    let (s, r) = c
        .post_json(
            &act,
            &json!({"action": "move_out", "moved_to": "340525", "note": "随父母迁居邻县"}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("moved_out")), "{r}");
    let mut nbr = app.login("clinician", "NBR").await;
    let (_, b) = nbr.get_json("/api/child/frail/board").await;
    assert_eq!(b["incoming"][0]["case_id"], case.as_str(), "{b}");
    let (s, r) = nbr
        .post_json(
            &act,
            &json!({"action": "close", "close_reason": "move_out_accepted", "note": "已接收"}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("closed")), "{r}");
    assert_eq!(r["jurisdiction"], "340525");
    assert_eq!(
        nbr.get_json(&format!("/api/children/{id}")).await.0,
        200,
        "her record is theirs now"
    );
    assert_eq!(c.get_json(&format!("/api/children/{id}")).await.0, 403);
}
