//! Delivery, postpartum visits and the 42-day check; postpartum risk re-assessment; 结案.

use serde_json::json;

use crate::helpers::{days_ago, spawn_app};
use crate::pregnancy::booked;

#[tokio::test]
async fn a_red_woman_delivers_is_reassessed_postpartum_and_her_case_closes_after_the_42_day_check() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    // Booked at 14+2 weeks, 45 weeks ago by LMP: she delivers at 38+4, 45 days ago.
    let booking = json!({"lmp": days_ago(315), "booking_date": days_ago(215), "gravidity": "1"});
    let (_, preg) = crate::pregnancy::booked_with(&mut town, "产后案", "1994-06-01", 80, booking).await;
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["R2.2"]}}),
        )
        .await;
    assert_eq!((s, a["colour"].as_str()), (201, Some("red")), "凶险性前置胎盘");
    let (_, rec) = county.get_json(&format!("/api/pregnancies/{preg}")).await;
    let case_id = rec["risk"]["case"]["id"].as_str().unwrap().to_string();
    let close = json!({"action": "close", "close_reason": "postpartum_check_done", "note": "结案"});
    let (s, _) = town
        .post_json(&format!("/api/risk/cases/{case_id}/actions"), &close)
        .await;
    assert_eq!(s, 409, "no 结案 before delivery");

    // Delivery through the form, 45 days ago (38+4 weeks).
    let p = town
        .post_form(
            &format!("/pregnancies/{preg}/delivery"),
            &[
                ("delivery_date", &days_ago(45)),
                ("discharge_date", &days_ago(41)),
                ("facility_name", "示范县人民医院"),
                ("mode", "caesarean"),
                ("live_births", "1"),
                ("stillbirths", "0"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let page = town.get(p.location.as_deref().unwrap()).await;
    assert!(
        page.body.contains("分娩已登记") && page.body.contains("postpartum-schedule") && page.body.contains("剖宫产")
    );
    let (_, rec) = town.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["pregnancy"]["status"], "delivered");
    assert_eq!(
        rec["postpartum_schedule"][0]["status"], "overdue",
        "the home visit was due within a week of discharge"
    );
    let (_, w) = town.get_json("/api/worklist").await;
    let item = w["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pregnancy_id"] == preg.as_str())
        .unwrap();
    assert_eq!(item["stage"], "产后");
    // A second delivery is refused; a visit now must say which postpartum contact it is.
    let (s, _) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(40), "facility_name": "x", "mode": "vaginal", "live_births": "1"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, r) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(40)}),
        )
        .await;
    assert_eq!(s, 422, "{r}");
    let (s, v) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(40), "kind": "postpartum_home", "hb_g_l": "118"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["kind"], "postpartum_home");

    // The postpartum visit asks for a re-assessment; red stays red until a clinician says she is stable.
    let (_, rec) = county.get_json(&format!("/api/pregnancies/{preg}")).await;
    let pending = &rec["risk"]["pending"];
    assert_eq!(pending["colour"], "red");
    assert!(
        pending["factors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "R2.3")
    );
    assert!(
        pending["factors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "R2.2"),
        "ticked items carry over"
    );
    // After delivery the clinician unticks the placenta item and declares her stable.
    let mut facts = pending["facts"].clone();
    facts["factors"] = json!([]);
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": facts, "removed": [{"code": "R2.3", "reason": "产后复查 Hb 118，病情稳定"}]}),
        )
        .await;
    assert_eq!(s, 422, "going down from red needs an explicit confirmation: {r}");
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": facts, "removed": [{"code": "R2.3", "reason": "产后复查 Hb 118，病情稳定"}], "confirm_downgrade": true, "note": "产后贫血已纠正"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["colour"], "green");
    assert_eq!(a["trigger"], "postpartum grading");

    // The 42-day check must classify recovered / not recovered; then the case may close.
    let (s, _) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(2), "kind": "postpartum_42d"}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({"visit_date": days_ago(2), "kind": "postpartum_42d", "postpartum_recovered": "1"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, c) = town
        .post_json(&format!("/api/risk/cases/{case_id}/actions"), &close)
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "closed");
    let (_, rec) = town.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["postpartum_schedule"][1]["status"], "done");
    let (_, w) = town.get_json("/api/worklist").await;
    assert!(
        !w["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["pregnancy_id"] == preg.as_str()),
        "nothing left to do for her"
    );
}

#[tokio::test]
async fn impossible_deliveries_are_refused_and_a_maternal_death_closes_the_case() {
    let app = spawn_app().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, preg) = booked(&mut town, "分娩校验", 82, 30).await;
    for bad in [
        json!({"delivery_date": days_ago(200), "facility_name": "x", "mode": "vaginal", "live_births": "1"}), // before 20 weeks
        json!({"delivery_date": days_ago(-1), "facility_name": "x", "mode": "vaginal", "live_births": "1"}),  // future
        json!({"delivery_date": days_ago(1), "facility_name": "x", "mode": "vaginal", "live_births": "0"}), // nobody born
        json!({"delivery_date": days_ago(1), "facility_name": "", "mode": "vaginal", "live_births": "1"}), // no facility
    ] {
        let (s, r) = town.post_json(&format!("/api/pregnancies/{preg}/delivery"), &bad).await;
        assert_eq!(s, 422, "{bad} → {r}");
    }
    let page = town
        .post_form(
            &format!("/pregnancies/{preg}/delivery"),
            &[("delivery_date", &days_ago(1)), ("mode", "vaginal")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("请填写分娩机构"));
    let (_, rec) = town.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["pregnancy"]["status"], "active", "nothing saved");
    county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["R2.2"]}}),
        )
        .await;
    let (s, _) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/delivery"),
            &json!({"delivery_date": days_ago(1), "facility_name": "示范市危重孕产妇救治中心", "mode": "caesarean", "live_births": "1", "maternal_death": "1"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, rec) = town.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(rec["risk"]["case"]["status"], "closed");
    assert_eq!(rec["risk"]["case"]["close_reason"], "death");
}
