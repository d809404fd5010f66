//! Five-colour grading through the API and the command line (nothing stored).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_evaluate_endpoint_grades_facts_with_the_contract_of_the_cli() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "COUNTY").await;
    let facts = json!({"age_years": 41, "hb_g_l": 58, "syphilis": "positive", "factors": ["Y3.12"]});
    let (s, a) = c.post_json("/api/risk/evaluate", &facts).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["colour"], "orange");
    assert_eq!(a["purple"], true);
    assert_eq!(a["rule_set"], "national-2017");
    let codes: Vec<&str> = a["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["O1.1", "O2.6", "P2", "Y3.12"]);
    assert!(a["factors"][1]["reason"].as_str().unwrap().contains("58 g/L"));
    // The command line gives the same answer for the same facts.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mch-chain"))
        .args(["risk", "evaluate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(facts.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, a);
}

#[tokio::test]
async fn bad_facts_get_a_clear_refusal() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "COUNTY").await;
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"hb_g_l": 900})).await;
    assert_eq!(s, 422);
    assert!(r["error"].as_str().unwrap().contains("hb_g_l"));
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"factors": ["X1.1"]})).await;
    assert_eq!(s, 422);
    assert!(r["error"].as_str().unwrap().contains("X1.1"));
    let (s, r) = c.post_json("/api/risk/evaluate", &json!({"hiv": "maybe"})).await;
    assert_eq!(s, 400, "{r}");
    let (s, _) = c.post_json("/api/risk/evaluate", &json!({"weight": 60})).await;
    assert_eq!(s, 400, "unknown facts are refused, not ignored");
    let mut anonymous = app.client();
    let (s, _) = anonymous.post_json("/api/risk/evaluate", &json!({})).await;
    assert_eq!(s, 401);
}

use crate::helpers::TestApp;
use crate::pregnancy::booked;

async fn case_of(c: &mut crate::helpers::Client, preg: &str) -> Value {
    let (s, rec) = c.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(s, 200);
    rec["risk"].clone()
}

async fn count_audit(app: &TestApp, entity_type: &str, detail: &str) -> usize {
    use diesel::prelude::*;
    use mch_chain::storage::schema::audit_events::dsl as a;
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    a::audit_events
        .filter(a::entity_type.eq(entity_type))
        .filter(a::detail.eq(detail))
        .count()
        .get_result::<i64>(&mut conn)
        .unwrap() as usize
}

#[tokio::test]
async fn grading_orange_through_the_form_opens_a_case_whose_report_the_district_acknowledges() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "王丽", 60, 20).await;
    // A township clinician may screen but not grade (二级以上 only).
    assert_eq!(town.get(&format!("/pregnancies/{preg}/risk/grade")).await.status, 403);
    let mut county = app.login("clinician", "COUNTY").await;
    let form = county.get(&format!("/pregnancies/{preg}/risk/grade")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("O3.7") && form.body.contains("尚未评估"));
    let graded = county
        .post_form(
            &format!("/pregnancies/{preg}/risk/grade"),
            &[("age_years", "32"), ("hb_g_l", "58"), ("note", "重度贫血")],
        )
        .await;
    assert_eq!(graded.status, 303, "{}", graded.body);
    let page = county.get(graded.location.as_deref().unwrap()).await;
    assert!(page.body.contains("妊娠风险评估分级已确认"));
    assert!(page.body.contains("id=\"risk-colour\">橙色"));
    let risk = case_of(&mut county, &preg).await;
    assert_eq!(risk["current"]["colour"], "orange");
    assert_eq!(risk["current"]["factors"][0]["code"], "O2.6");
    let case_id = risk["case"]["id"].as_str().unwrap().to_string();
    assert_eq!(risk["case"]["status"], "active");
    let (s, view) = county.get_json(&format!("/api/risk/cases/{case_id}")).await;
    assert_eq!(s, 200);
    assert_eq!(view["case"]["follow_up_days"], 14);
    let report = &view["reports"][0]["report"];
    let due =
        chrono::NaiveDateTime::parse_from_str(report["due_at"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    let created =
        chrono::NaiveDateTime::parse_from_str(report["created_at"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    assert_eq!((due - created).num_hours(), 72, "orange reports are due within 3 days");
    let report_id = report["id"].as_str().unwrap().to_string();
    // Acknowledging before it is sent is refused; sending works once.
    let (s, _) = county
        .post_json(&format!("/api/risk/reports/{report_id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(s, 409);
    let (s, sent) = town
        .post_json(&format!("/api/risk/reports/{report_id}/send"), &json!({}))
        .await;
    assert_eq!(s, 200, "{sent}");
    let (s, _) = town
        .post_json(&format!("/api/risk/reports/{report_id}/send"), &json!({}))
        .await;
    assert_eq!(s, 409);
    // Only the district MCH institution acknowledges (a township clinician is refused).
    let (s, _) = town
        .post_json(&format!("/api/risk/reports/{report_id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(s, 403);
    let ack = county
        .post_form(
            &format!("/risk/reports/{report_id}/acknowledge"),
            &[("case_id", &case_id)],
        )
        .await;
    assert_eq!(ack.status, 303);
    let (_, view) = county.get_json(&format!("/api/risk/cases/{case_id}")).await;
    assert!(view["reports"][0]["report"]["acknowledged_at"].is_string());
    assert_eq!(view["reports"][0]["late"], false);
    let kinds: Vec<&str> = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["opened", "report_due", "report_sent", "report_acknowledged"]
    );
    assert_eq!(count_audit(&app, "risk_case", "case report acknowledged").await, 1);
    assert_eq!(count_audit(&app, "risk_case", "high-risk case opened").await, 1);
    // Print documents render for the record's readers.
    let card = county.get(&format!("/risk/cases/{case_id}/card")).await;
    assert!(card.status == 200 && card.body.contains("高危孕产妇专案管理卡") && card.body.contains("王丽"));
    let sheet = county.get(&format!("/risk/cases/{case_id}/reports/{report_id}")).await;
    assert!(sheet.status == 200 && sheet.body.contains("孕产妇妊娠风险评估分级报告单") && sheet.body.contains("橙色"));
    let mut other = app.login("clinician", "TWN-B").await;
    assert_eq!(other.get(&format!("/risk/cases/{case_id}")).await.status, 403);
    assert_eq!(other.get(&format!("/risk/cases/{case_id}/card")).await.status, 403);
}

/// A woman booked at the township (16 weeks) and graded yellow (Y1.5) by the county: the
/// township's and the county's clinicians and her pregnancy.
pub async fn graded_yellow(
    app: &TestApp,
    name: &str,
    seq: u32,
) -> (crate::helpers::Client, crate::helpers::Client, String) {
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, preg) = booked(&mut town, name, seq, 16).await;
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["Y1.5"]}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["colour"], "yellow");
    (town, county, preg)
}

#[tokio::test]
async fn a_worse_result_at_a_visit_proposes_a_regrade_and_a_colour_never_drops_silently() {
    let app = spawn_app().await;
    let (mut town, mut county, preg) = graded_yellow(&app, "李敏", 62).await;
    // The township records a visit with Hb 58: a proposal (orange) waits for a grader; nothing changes by itself.
    let (s, _) = town
        .post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"hb_g_l": "58"}))
        .await;
    assert_eq!(s, 201);
    let risk = case_of(&mut town, &preg).await;
    assert_eq!(
        risk["current"]["colour"], "yellow",
        "the grade does not change without a clinician"
    );
    assert_eq!(risk["pending"]["colour"], "orange");
    assert!(
        risk["pending"]["trigger"].as_str().unwrap().starts_with("产前检查"),
        "{risk}"
    );
    let hb = risk["pending"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "O2.6")
        .unwrap();
    let reason = hb["reason"].as_str().unwrap();
    assert!(
        reason.contains("58 g/L") && reason.contains(&format!("{} 随访", mch_chain::ids::today_china())),
        "{reason}"
    );
    let home = county.get("/").await;
    assert!(
        home.body.contains("risk-proposals") && home.body.contains("李敏"),
        "the grader is notified"
    );
    // The worklist comes first; the confirmations are one paged table that says how many.
    let at = |id: &str| home.body.find(id).unwrap_or_else(|| panic!("{id} on the home page"));
    assert!(
        at("id=\"worklist-card\"") < at("id=\"risk-proposals\""),
        "the worklist first"
    );
    assert!(home.body.contains("第 1 / 1 页，共 1 项"), "{}", home.body);
    assert!(home.body.contains("待确认评估 1"), "counted at the top");
    assert!(!home.body.contains("visit 20"), "one language: {}", home.body);
    // The same visit data again does not pile up proposals.
    town.post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"weight_kg": "60"}))
        .await;
    let risk = case_of(&mut town, &preg).await;
    assert_eq!(
        risk["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "proposed")
            .count(),
        1
    );
    // Confirming takes the facts the system proposed.
    let facts = risk["pending"]["facts"].clone();
    let (s, a) = county
        .post_json(&format!("/api/pregnancies/{preg}/risk/grade"), &json!({"facts": facts}))
        .await;
    assert_eq!(s, 201);
    assert_eq!(a["colour"], "orange");
    let risk = case_of(&mut county, &preg).await;
    assert!(risk["pending"].is_null());
    assert!(risk["case"]["id"].is_string(), "orange opens a case");
    // Removing a data-decided factor needs a reason; going down needs explicit confirmation and a note.
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": facts, "removed": [{"code": "O2.6", "reason": ""}]}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("理由"));
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": facts, "removed": [{"code": "O2.6", "reason": "复查 Hb 112 g/L"}]}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("确认降级"));
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": facts, "removed": [{"code": "O2.6", "reason": "复查 Hb 112 g/L"}], "confirm_downgrade": true, "note": "贫血已纠正"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["colour"], "yellow");
    assert_eq!(a["removed"][0]["reason"], "复查 Hb 112 g/L");
    let risk = case_of(&mut county, &preg).await;
    let colours: Vec<&str> = risk["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "confirmed")
        .map(|a| a["colour"].as_str().unwrap())
        .collect();
    assert_eq!(
        colours,
        vec!["yellow", "orange", "yellow"],
        "every change is on the timeline"
    );
}

#[tokio::test]
async fn a_positive_screen_is_followed_up_by_the_township_until_graded() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "赵静", 64, 10).await;
    let form = town.get(&format!("/pregnancies/{preg}/risk/screen")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("S2.3") && form.body.contains("不孕史"));
    let saved = town
        .post_form(
            &format!("/pregnancies/{preg}/risk/screen"),
            &[("item_S2.3", "1"), ("item_S6.5", "1")],
        )
        .await;
    assert_eq!(saved.status, 303);
    let risk = case_of(&mut town, &preg).await;
    assert_eq!(risk["screening"]["positive"], true);
    let due = risk["screening"]["follow_up_due"].as_str().unwrap();
    assert_eq!(
        due,
        (mch_chain::ids::today_china() + chrono::Duration::days(14)).to_string()
    );
    let home = town.get("/").await;
    assert!(
        home.body.contains("risk-screenings") && home.body.contains("赵静"),
        "{} {}",
        home.status,
        home.body
    );
    let (s, _) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/screen"),
            &json!({"items": ["S9.9"]}),
        )
        .await;
    assert_eq!(s, 422);
    let mut county = app.login("clinician", "COUNTY").await;
    county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"hbsag": "positive"}}),
        )
        .await;
    let risk = case_of(&mut town, &preg).await;
    assert!(risk["screening"]["graded_at"].is_string());
    assert_eq!(risk["current"]["purple"], true, "HBsAg positive is purple");
    let home = town.get("/").await;
    assert!(!home.body.contains("risk-screenings"));
}

#[tokio::test]
async fn the_home_page_names_the_first_ten_screenings_counts_all_and_audits_only_whom_it_shows() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    for i in 0..12u32 {
        let (_, preg) = booked(&mut town, &format!("阳性{i}"), 100 + 2 * i, 10).await;
        let (s, r) = town
            .post_json(
                &format!("/api/pregnancies/{preg}/risk/screen"),
                &json!({"items": ["S2.3"]}),
            )
            .await;
        assert!(s == 200 || s == 201, "{r}");
    }
    let before = count_audit(&app, "person", "risk tasks").await;
    let home = town.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("筛查阳性待随访 12"), "all counted: {}", home.body);
    let section = &home.body[home.body.find("id=\"risk-screenings\"").expect("the section")..];
    let section = &section[..section.find("</section>").unwrap()];
    assert_eq!(section.matches("<li>").count(), 10, "ten named: {section}");
    assert!(section.contains("显示前 10 项"));
    assert_eq!(
        count_audit(&app, "person", "risk tasks").await - before,
        10,
        "only the women shown are read, so only they are in the access log"
    );
}

#[tokio::test]
async fn overdue_case_follow_ups_escalate_once_and_the_board_orders_by_risk_and_lateness() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, red) = booked(&mut town, "红案", 66, 24).await;
    let (_, orange) = booked(&mut town, "橙案", 68, 30).await;
    let (_, other_township) = booked(&mut app.login("clinician", "TWN-B").await, "西河案", 70, 20).await;
    for (p, facts) in [
        (&red, json!({"hb_g_l": 35})),
        (&orange, json!({"factors": ["O3.2"]})),
        (&other_township, json!({"factors": ["R2.2"]})),
    ] {
        let (s, a) = county
            .post_json(&format!("/api/pregnancies/{p}/risk/grade"), &json!({"facts": facts}))
            .await;
        assert_eq!(s, 201, "{a}");
    }
    let (_, b) = town.get_json("/api/risk/board").await;
    let names: Vec<&str> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["person"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["红案", "橙案"],
        "red before orange; the other township is not on my board"
    );
    let (_, b) = county.get_json("/api/risk/board?colour=red").await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 2);
    assert_eq!(b["counts"]["red"], 2);
    assert_eq!(b["counts"]["orange"], 1);
    let (_, b) = county.get_json("/api/risk/board?no_delivery=1&overdue=1").await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 0, "nothing overdue yet");
    // Ten days on (the red case follows up every 7 days): escalated to the district, once.
    let later = mch_chain::ids::today_china() + chrono::Duration::days(10);
    let n = mch_chain::risk::service::escalate_overdue(&app.db, later)
        .await
        .unwrap();
    assert_eq!(
        n, 2,
        "the two red cases (7-day follow-up) are overdue by then; orange (14 days) is not"
    );
    assert_eq!(
        mch_chain::risk::service::escalate_overdue(&app.db, later)
            .await
            .unwrap(),
        0,
        "each step is recorded once"
    );
    let risk = case_of(&mut county, &red).await;
    let case_id = risk["case"]["id"].as_str().unwrap().to_string();
    let (_, view) = county.get_json(&format!("/api/risk/cases/{case_id}")).await;
    assert_eq!(
        view["case"]["escalation"], "supervisor",
        "3 days overdue: the supervisor (district after 7)"
    );
    let later = mch_chain::ids::today_china() + chrono::Duration::days(20);
    mch_chain::risk::service::escalate_overdue(&app.db, later)
        .await
        .unwrap();
    let (_, view) = county.get_json(&format!("/api/risk/cases/{case_id}")).await;
    assert_eq!(view["case"]["escalation"], "district");
    assert!(
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "escalated")
            .count()
            >= 2
    );
    // A follow-up puts the case back on schedule.
    let (s, c) = town
        .post_json(
            &format!("/api/risk/cases/{case_id}/actions"),
            &json!({"action": "follow_up", "note": "电话随访"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["escalation"], "none");
}

#[tokio::test]
async fn case_actions_follow_the_state_rules_and_managers_and_delivery_must_fit() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, preg) = booked(&mut town, "状态案", 72, 22).await;
    county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["O3.2"]}}),
        )
        .await;
    let case_id = case_of(&mut county, &preg).await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let act = |body: Value| (format!("/api/risk/cases/{case_id}/actions"), body);
    let (p, b) = act(json!({"action": "traced"}));
    assert_eq!(town.post_json(&p, &b).await.0, 409, "not overdue: nothing to trace");
    let (p, b) = act(json!({"action": "lost", "note": "x"}));
    assert_eq!(town.post_json(&p, &b).await.0, 409);
    let (p, b) = act(json!({"action": "close", "close_reason": "postpartum_check_done", "note": "x"}));
    assert_eq!(
        town.post_json(&p, &b).await.0,
        409,
        "no 结案 before delivery and the 42-day check"
    );
    // The manager must be a clinician whose facility covers her; the delivery facility must fit orange.
    let (_, view) = town.get_json(&format!("/api/risk/cases/{case_id}")).await;
    let managers: Vec<String> = view["managers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_str().unwrap().to_string())
        .collect();
    assert!(
        managers.iter().any(|m| m.contains("东关镇卫生院")) && !managers.iter().any(|m| m.contains("西河乡卫生院"))
    );
    let town_b_user = {
        use diesel::prelude::*;
        use mch_chain::storage::schema::users::dsl as u;
        let mut conn = mch_chain::storage::establish(app.url()).unwrap();
        u::users
            .filter(u::username.eq("clinician.twn-b"))
            .select(u::id)
            .first::<String>(&mut conn)
            .unwrap()
    };
    let (p, b) = act(json!({"action": "assign_manager", "manager_id": town_b_user}));
    assert_eq!(town.post_json(&p, &b).await.0, 422);
    let manager = view["managers"][0]["id"].as_str().unwrap();
    let (p, b) = act(json!({"action": "assign_manager", "manager_id": manager}));
    assert_eq!(town.post_json(&p, &b).await.0, 200);
    assert!(
        view["delivery_options"].to_string().contains("示范县人民医院"),
        "a red woman delivers at a facility with maternal critical care: {}",
        view["delivery_options"]
    );
    // Stale version → conflict; death closes; a closed case refuses more.
    let (p, b) = act(json!({"action": "follow_up", "version": 1}));
    assert_eq!(town.post_json(&p, &b).await.0, 409);
    let (p, b) = act(json!({"action": "close", "close_reason": "death", "note": "孕产妇死亡，已个案报告"}));
    let (s, c) = town.post_json(&p, &b).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "closed");
    let (p, b) = act(json!({"action": "follow_up"}));
    assert_eq!(town.post_json(&p, &b).await.0, 409);
    let (_, board) = county.get_json("/api/risk/board").await;
    assert_eq!(
        board["rows"].as_array().unwrap().len(),
        0,
        "closed cases leave the board"
    );
}

/// The whole chain through the pages a person uses: screen → grade → case → report → overdue → escalated.
#[tokio::test]
async fn screen_grade_case_report_overdue_and_escalation_through_the_web_pages() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "全流程", 90, 18).await;
    let p = town
        .post_form(&format!("/pregnancies/{preg}/risk/screen"), &[("item_S7.1", "1")])
        .await;
    assert_eq!(p.status, 303);
    let mut county = app.login("clinician", "COUNTY").await;
    let p = county
        .post_form(
            &format!("/pregnancies/{preg}/risk/grade"),
            &[("age_years", "32"), ("tick_O3.7", "1")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let page = county.get(&format!("/pregnancies/{preg}")).await;
    let case_link = page
        .body
        .split("href=\"/risk/cases/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let case_page = county.get(&format!("/risk/cases/{case_link}")).await;
    assert_eq!(case_page.status, 200);
    assert!(case_page.body.contains("id=\"case-colour\">橙色"));
    let report_id = case_page
        .body
        .split("/risk/reports/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // The township (case area) sends the report; the county MCH centre acknowledges it.
    let mut town_case = town.get(&format!("/risk/cases/{case_link}")).await;
    assert_eq!(town_case.status, 200);
    let sent = town
        .post_form(&format!("/risk/reports/{report_id}/send"), &[("case_id", &case_link)])
        .await;
    assert_eq!(sent.status, 303);
    let ack = county
        .post_form(
            &format!("/risk/reports/{report_id}/acknowledge"),
            &[("case_id", &case_link)],
        )
        .await;
    assert_eq!(ack.status, 303);
    town_case = town.get(&format!("/risk/cases/{case_link}")).await;
    assert!(town_case.body.contains("辖区妇幼保健机构已签收报告单"));
    // Seventeen days on, nobody has followed her up (orange: every 14 days): 3 days overdue, escalated
    // by the timer to her case manager's facility (the supervisor).
    let later = mch_chain::ids::today_china() + chrono::Duration::days(17);
    assert_eq!(
        mch_chain::risk::service::escalate_overdue(&app.db, later)
            .await
            .unwrap(),
        1
    );
    let case_page = county.get(&format!("/risk/cases/{case_link}")).await;
    assert!(
        case_page.body.contains("随访逾期 3 天，已上报机构负责人"),
        "the escalation is on the case record"
    );
    let board = county.get("/risk/board").await;
    assert!(board.body.contains("全流程"));
    // A follow-up recorded on the case page puts her back on schedule.
    let f = town
        .post_form(
            &format!("/risk/cases/{case_link}"),
            &[("action", "follow_up"), ("note", "入户随访")],
        )
        .await;
    assert_eq!(f.status, 303, "{}", f.body);
    let case_page = town.get(&format!("/risk/cases/{case_link}")).await;
    assert!(case_page.body.contains("入户随访"));
}

#[tokio::test]
async fn a_woman_who_moves_is_handed_over_and_the_receiving_county_manages_her() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let mut nbr = app.login("clinician", "NBR").await;
    let (person, preg) = booked(&mut town, "迁出案", 92, 20).await;
    county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["O3.2"]}}),
        )
        .await;
    let case_id = case_of(&mut county, &preg).await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let act = format!("/api/risk/cases/{case_id}/actions");
    assert_eq!(
        nbr.get_json(&format!("/api/risk/cases/{case_id}")).await.0,
        403,
        "not hers yet"
    );
    assert_eq!(
        town.post_json(&act, &json!({"action": "move_out", "moved_to": "999999", "note": "x"}))
            .await
            .0,
        422,
        "unknown area"
    );
    let (s, c) = town
        .post_json(
            &act,
            &json!({"action": "move_out", "moved_to": "340525", "note": "随丈夫迁居邻县"}),
        )
        .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("moved_out")));
    // The receiving county sees the incoming case, may open it, and accepts the hand-over.
    let (_, board) = nbr.get_json("/api/risk/board").await;
    assert_eq!(board["incoming"][0]["case_id"], case_id.as_str());
    assert_eq!(nbr.get_json(&format!("/api/risk/cases/{case_id}")).await.0, 200);
    assert_eq!(
        town.post_json(
            &act,
            &json!({"action": "close", "close_reason": "move_out_accepted", "note": "x"})
        )
        .await
        .0,
        403,
        "only the receiver accepts"
    );
    let (s, c) = nbr
        .post_json(
            &act,
            &json!({"action": "close", "close_reason": "move_out_accepted", "note": "已接收"}),
        )
        .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("closed")), "{c}");
    // Her record now belongs to the receiving county: they see her, her old township does not.
    assert_eq!(nbr.get_json(&format!("/api/persons/{person}")).await.0, 200);
    assert_eq!(nbr.get_json(&format!("/api/pregnancies/{preg}")).await.0, 200);
    assert_eq!(town.get_json(&format!("/api/pregnancies/{preg}")).await.0, 403);
    // …and can open a new case for her with its own grading.
    let (s, a) = nbr
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["O3.2"]}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let risk = case_of(&mut nbr, &preg).await;
    assert_ne!(risk["case"]["id"], case_id.as_str());
    assert_eq!(risk["case"]["jurisdiction"], "340525");
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_risk_access_matrix_allows() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, preg) = booked(&mut town, "权限案", 94, 20).await;
    county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["O3.2"]}}),
        )
        .await;
    let case_id = case_of(&mut county, &preg).await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // (role, facility, read case+board, screen, grade, manage case)
    let matrix = [
        ("clinician", "TWN-A", true, true, false, true),
        ("clinician", "TWN-B", false, false, false, false),
        ("clinician", "COUNTY", true, true, true, true),
        ("registrar", "TWN-A", true, false, false, false),
        ("referral_coordinator", "COUNTY", true, false, false, false),
        ("clinician", "NBR", false, false, false, false),
        ("admin", "PROV", false, false, false, false),
        ("auditor", "PROV", false, false, false, false),
    ];
    for (role, fac, read, screen, grade, manage) in matrix {
        let mut c = app.login(role, fac).await;
        let who = format!("{role}@{fac}");
        assert_eq!(
            c.get_json(&format!("/api/risk/cases/{case_id}")).await.0 == 200,
            read,
            "{who} case"
        );
        assert_eq!(
            c.get(&format!("/risk/cases/{case_id}/card")).await.status == 200,
            read,
            "{who} print"
        );
        let (s, _) = c.get_json("/api/risk/board").await;
        assert_eq!(s == 200, role != "admin" && role != "auditor", "{who} board");
        assert_eq!(
            c.post_json(&format!("/api/pregnancies/{preg}/risk/screen"), &json!({"items": []}))
                .await
                .0
                == 201,
            screen,
            "{who} screen"
        );
        let (s, _) = c
            .post_json(
                &format!("/api/pregnancies/{preg}/risk/grade"),
                &json!({"facts": {"factors": ["O3.2"]}}),
            )
            .await;
        assert_eq!(s == 201, grade, "{who} grade → {s}");
        let (s, _) = c
            .post_json(
                &format!("/api/risk/cases/{case_id}/actions"),
                &json!({"action": "follow_up", "note": "x"}),
            )
            .await;
        assert_eq!(s == 200, manage, "{who} manage → {s}");
        if !manage {
            assert_eq!(s, 403, "{who}");
        }
    }
    // Every refusal above is in the audit log.
    let mut auditor = app.login("auditor", "PROV").await;
    let person = case_of(&mut county, &preg).await["case"]["person_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    let denied: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .map(|e| e["actor_name"].as_str().unwrap())
        .collect();
    for who in [
        "clinician.twn-b",
        "clinician.nbr",
        "admin.prov",
        "auditor.prov",
        "registrar.twn-a",
    ] {
        assert!(denied.contains(&who), "{who} refusal audited: {denied:?}");
    }
}

#[tokio::test]
async fn grading_cannot_silently_drop_what_the_record_shows_and_age_comes_from_the_record() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    // A woman of 42 at booking (O1.1) whose visit shows Hb 58 (O2.6).
    let booking = json!({"lmp": crate::helpers::days_ago(100), "gravidity": "1"});
    let (_, preg) = crate::pregnancy::booked_with(&mut town, "高龄案", "1984-01-15", 98, booking).await;
    town.post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"hb_g_l": "58"}))
        .await;
    // Typing a younger age and leaving Hb out does not make her green.
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"age_years": 30}}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("O2.6"), "{r}");
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"age_years": 30}, "removed": [{"code": "O2.6", "reason": "当日复查 Hb 105 g/L"}]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["colour"], "orange", "O1.1 from the record's age stands");
    assert_eq!(a["facts"]["age_years"], 42.0);
    // Graded down to yellow (with confirmation), the case stays open with the new colour and pace.
    let case_id = case_of(&mut county, &preg).await["case"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {}, "removed": [{"code": "O2.6", "reason": "贫血已纠正"}, {"code": "O1.1", "reason": "核对"}],
                    "confirm_downgrade": true, "note": "复评"}),
        )
        .await;
    assert_eq!((s, a["colour"].as_str()), (201, Some("green")), "{a}");
    let (_, view) = county.get_json(&format!("/api/risk/cases/{case_id}")).await;
    assert_eq!(view["case"]["status"], "active", "a case runs until the 42-day check");
    assert_eq!(view["case"]["colour"], "green");
    assert_eq!(view["case"]["follow_up_days"], 28);
}
