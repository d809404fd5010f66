//! Who may see what through the JSON API (RELIABILITY.md 22): ID numbers come back whole only
//! where the role may see them.

use serde_json::json;

use crate::helpers::{Client, TestApp, id_number, spawn_app};
use crate::pregnancy::booked;

/// Records of one woman of 东关镇 (township of TWN-A, county 340524) along the pathway: booked,
/// graded orange at the county (a case with its report), and referred as an emergency to the
/// county hospital CTYHOSP.
pub struct Fixture {
    pub name: &'static str,
    pub id_number: String,
    pub person: String,
    pub pregnancy: String,
    pub case: String,
    pub report: String,
    pub referral: String,
}

pub async fn fixture(app: &TestApp) -> Fixture {
    let name = "钱秀兰";
    let mut town = app.login("clinician", "TWN-A").await;
    let (person, pregnancy) = booked(&mut town, name, 70, 20).await;
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, r) = county
        .post_json(
            &format!("/api/pregnancies/{pregnancy}/risk/grade"),
            &json!({"facts": {"factors": ["O3.2"]}}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (_, record) = county.get_json(&format!("/api/pregnancies/{pregnancy}")).await;
    let case = record["risk"]["case"]["id"].as_str().unwrap().to_string();
    let (_, view) = county.get_json(&format!("/api/risk/cases/{case}")).await;
    let report = view["reports"][0]["report"]["id"].as_str().unwrap().to_string();
    let (s, r) = town
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "emergency", "reason": "产前出血", "to_facility": "CTYHOSP", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    Fixture {
        name,
        id_number: id_number("340524", "1994-06-01", 70),
        person,
        pregnancy,
        case,
        report,
        referral: r["id"].as_str().unwrap().to_string(),
    }
}

/// The whole ID number is shown on a person's own page to the roles that may see it (clinician,
/// registrar); a coordinator sees it masked, and the pregnancy page masks it for everyone —
/// in every field of the JSON, not only the one the page displays.
#[tokio::test]
async fn the_whole_id_number_is_only_on_the_person_page_of_roles_that_may_see_it() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let masked = mch_chain::identity::model::mask_id_number(&f.id_number);
    for (role, facility, whole_on_person_page) in [
        ("clinician", "TWN-A", true),
        ("registrar", "TWN-A", true),
        ("referral_coordinator", "COUNTY", false),
    ] {
        let mut c: Client = app.login(role, facility).await;
        let (s, person) = c.get_json(&format!("/api/persons/{}", f.person)).await;
        assert_eq!(s, 200, "{role}: {person}");
        let text = person.to_string();
        if whole_on_person_page {
            assert_eq!(person["view"]["id_number_display"], json!(f.id_number), "{role}");
        } else {
            assert!(!text.contains(&f.id_number), "{role} person page: {text}");
            assert_eq!(person["view"]["id_number_display"], json!(masked), "{role}");
            assert_eq!(person["view"]["person"]["id_number"], json!(masked), "{role}");
        }
        let (s, record) = c.get_json(&format!("/api/pregnancies/{}", f.pregnancy)).await;
        assert_eq!(s, 200, "{role}: {record}");
        assert!(
            !record.to_string().contains(&f.id_number),
            "{role} pregnancy page: {record}"
        );
        assert_eq!(record["person"]["person"]["id_number"], json!(masked), "{role}");
    }
}
