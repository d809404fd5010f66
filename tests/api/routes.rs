//! Who may call which JSON route (RELIABILITY.md 22): the findings of a black-box probe written
//! out by hand — a hospital token read staff-only JSON, and ID numbers came back whole where the
//! role may only see them masked — and the whole role × route × method matrix walked from the
//! library's own route table (`mch_chain::web::routes::API`), so a new route is covered as soon
//! as it exists.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, id_number, spawn_app, urlencode};
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
    /// A baby of another woman of 东关镇, born yesterday (her own child record).
    pub child: String,
    /// The baby's frail-child case (a visit found her underweight).
    pub frail_case: String,
    /// Her couple (husband 周建国), screened before the pregnancy.
    pub couple: String,
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
    let (_, other) = booked(&mut town, "孙秀梅", 72, 39).await;
    let (s, birth) = town
        .post_json(
            &format!("/api/pregnancies/{other}/delivery"),
            &json!({"delivery_date": crate::helpers::days_ago(1), "facility_name": "示范县人民医院", "mode": "vaginal",
                    "live_births": "1", "stillbirths": "0", "babies": [{"sex": "female", "weight_g": "3300", "birth_time": "08:30"}]}),
        )
        .await;
    assert_eq!(s, 201, "{birth}");
    let child = birth["children"][0]["id"].as_str().unwrap().to_string();
    // 2.3 kg on her second day: weight-for-age z < −2, a 低体重 case.
    let (s, v) = town
        .post_json(
            &format!("/api/children/{child}/visits"),
            &json!({"visit_date": crate::helpers::days_ago(0), "weight_kg": "2.3"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, chart) = town.get_json(&format!("/api/children/{child}")).await;
    let frail_case = chart["frail_case"]["id"].as_str().unwrap().to_string();
    let (s, couple) = town
        .post_json(
            "/api/couples",
            &json!({"wife": {"person_id": person},
                    "husband": {"person": {"name": "周建国", "id_number": id_number("340524", "1992-03-01", 71)}}}),
        )
        .await;
    assert_eq!(s, 201, "{couple}");
    Fixture {
        couple: couple["couple"]["id"].as_str().unwrap().to_string(),
        child,
        frail_case,
        name,
        id_number: id_number("340524", "1994-06-01", 70),
        person,
        pregnancy,
        case,
        report,
        referral: r["id"].as_str().unwrap().to_string(),
    }
}

/// A JSON call with a bearer token (no cookie, no CSRF); the answer as status and text.
pub async fn with_token(app: &TestApp, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", app.base);
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Denied audit rows of one actor (a user's name or a token's name).
pub async fn denied_rows(app: &TestApp, actor: &str) -> Vec<(String, Option<String>, Option<String>, String)> {
    let actor = actor.to_string();
    app.db
        .read(move |c| {
            use diesel::prelude::*;
            use mch_chain::storage::schema::audit_events::dsl as a;
            a::audit_events
                .filter(a::actor_name.eq(actor))
                .filter(a::outcome.eq("denied"))
                .select((a::entity_type, a::entity_id, a::person_id, a::detail))
                .load::<(String, Option<String>, Option<String>, String)>(c)
                .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

/// The probe's findings, by hand: a county hospital's token, whose area she lives in, gets none
/// of the staff JSON (the worklist, the boards, the measures, her person and pregnancy pages) —
/// each refusal audited — and keeps what README's role table gives it: card reads, lookups in
/// its area and the referral it answers, with her ID number masked in every answer.
#[tokio::test]
async fn a_hospital_token_reads_no_staff_json_and_never_a_whole_id_number() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let token = mch_chain::auth::service::issue_token(&app.db, "CTYHOSP", "县医院 HIS")
        .await
        .unwrap();
    let staff_only = [
        "/api/worklist".to_string(),
        "/api/risk/board".to_string(),
        "/api/referrals/board".to_string(),
        "/api/referrals/measures".to_string(),
        format!("/api/persons/{}", f.person),
        format!("/api/pregnancies/{}", f.pregnancy),
    ];
    for path in &staff_only {
        let (s, body) = with_token(&app, &token, "GET", path, None).await;
        assert_eq!(s, 403, "GET {path} with a hospital token: {body}");
        assert!(!body.contains(f.name) && !body.contains(&f.id_number), "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(error["error"].is_string() && error["fields"].is_array(), "{body}");
    }
    let denied = denied_rows(&app, "县医院 HIS").await;
    for path in &staff_only {
        let pattern = path.replace(&f.person, "{id}").replace(&f.pregnancy, "{id}");
        assert!(
            denied
                .iter()
                .any(|(_, _, _, detail)| detail.ends_with(&format!("GET {pattern}"))),
            "refusal of {path} audited: {denied:?}"
        );
    }
    for (kind, id) in [("person", &f.person), ("pregnancy", &f.pregnancy)] {
        assert!(
            denied.iter().any(|(k, i, person, _)| k == kind
                && i.as_deref() == Some(id.as_str())
                && person.as_deref() == Some(f.person.as_str())),
            "the refused {kind} page is audited against her: {denied:?}"
        );
    }
    // What it keeps, never with her whole ID number.
    for q in [f.id_number.clone(), f.name.to_string()] {
        let path = format!("/api/persons?q={}", urlencode(&q));
        let (s, body) = with_token(&app, &token, "GET", &path, None).await;
        assert_eq!(s, 200, "{body}");
        assert!(body.contains(&f.person), "the lookup finds her: {body}");
        assert!(!body.contains(&f.id_number), "masked in the lookup: {body}");
    }
    let card = json!({"card_number": f.id_number, "name": f.name, "sex_code": "2", "birth_date": "1994-06-01",
                      "id_number": f.id_number});
    let (s, body) = with_token(&app, &token, "POST", "/api/card-reads", Some(&card)).await;
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains(&f.id_number), "{body}");
    let (s, body) = with_token(&app, &token, "GET", &format!("/api/referrals/{}", f.referral), None).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(f.name) && !body.contains(&f.id_number), "{body}");
    let (s, body) = with_token(
        &app,
        &token,
        "POST",
        &format!("/api/referrals/{}/acknowledge", f.referral),
        Some(&json!({})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains(&f.id_number), "{body}");
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

/// One caller per role, as each really calls: staff with a session cookie and CSRF token,
/// hospital systems with a bearer token; and nobody at all.
enum Caller {
    Session(Client),
    Token(String),
    Nobody,
}

impl Caller {
    async fn call(&mut self, app: &TestApp, method: &str, path: &str, body: &Value) -> (u16, String) {
        match self {
            Caller::Session(c) if method == "GET" => {
                let (s, v) = c.get_json(path).await;
                (s, v.to_string())
            }
            Caller::Session(c) if method == "POST" => {
                let (s, v) = c.post_json(path, body).await;
                (s, v.to_string())
            }
            Caller::Session(c) => {
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let r = c
                    .http
                    .request(m, format!("{}{path}", app.base))
                    .header(
                        "cookie",
                        format!("mch_session={}", c.cookie.clone().unwrap_or_default()),
                    )
                    .header("x-csrf-token", c.csrf.clone().unwrap_or_default())
                    .json(body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            }
            Caller::Token(t) => with_token_method(app, t, method, path, body).await,
            Caller::Nobody => with_token_method(app, "", method, path, body).await,
        }
    }
}

async fn with_token_method(app: &TestApp, token: &str, method: &str, path: &str, body: &Value) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(m, format!("{}{path}", app.base))
        .json(body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A route's path with its parameters filled from the fixture: `{id}` by what the table says it
/// names (a record kind the fixture lacks gets an id that exists nowhere), `{action}` by a verb
/// the route knows; a search gets its query.
fn fill(route: &mch_chain::web::routes::ApiRoute, f: &Fixture) -> String {
    let id = match route.record {
        "person" | "audit_log" => f.person.clone(),
        "child" => f.child.clone(),
        "frail_case" => f.frail_case.clone(),
        "pregnancy" => f.pregnancy.clone(),
        "risk_case" => f.case.clone(),
        "risk_report" => f.report.clone(),
        "referral" => f.referral.clone(),
        "couple" => f.couple.clone(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    let mut path = route.path.replace("{id}", &id).replace("{action}", "acknowledge");
    while let (Some(a), Some(b)) = (path.find('{'), path.find('}')) {
        path.replace_range(a..=b, "x");
    }
    if route.path == "/api/persons" && route.method.as_str() == "GET" {
        path.push_str(&format!("?q={}", urlencode(f.name)));
    }
    path
}

/// RELIABILITY.md 22 for the JSON API, driven by the library's own table: every declared route
/// and method × every role (and no credentials). A role the entry names is let through (never
/// 401/403; a read answers 200 — the callers were chosen inside her area, at facilities whose
/// level and kind the services ask for); any other role gets 403 in the JSON error shape, and
/// the refusal is in the audit log naming the route; without credentials, 401. Methods a path
/// does not declare are served to nobody.
#[tokio::test]
async fn every_role_gets_exactly_what_the_route_table_allows_on_every_json_route() {
    use mch_chain::auth::model::Role;
    use mch_chain::web::routes::{API, RECORD_KINDS};
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let token = mch_chain::auth::service::issue_token(&app.db, "CTYHOSP", "县医院 HIS")
        .await
        .unwrap();
    let mut callers: Vec<(Role, String, Caller)> = Vec::new();
    for (role, facility) in [
        (Role::Clinician, "COUNTY"),
        (Role::Registrar, "TWN-A"),
        (Role::ReferralCoordinator, "COUNTY"),
        (Role::Admin, "PROV"),
        (Role::Auditor, "PROV"),
    ] {
        let c = app.login(role.as_str(), facility).await;
        callers.push((
            role,
            crate::helpers::username(role.as_str(), facility),
            Caller::Session(c),
        ));
    }
    callers.push((Role::HospitalSystem, "县医院 HIS".into(), Caller::Token(token.clone())));
    for role in Role::ALL {
        assert!(callers.iter().any(|(r, _, _)| *r == role), "a caller for {role:?}");
    }
    let mut nobody = Caller::Nobody;
    let mut cells = 0;
    for route in API {
        let path = fill(route, &f);
        let method = route.method.as_str();
        let label = route.label();
        for (role, actor, caller) in callers.iter_mut() {
            let before = denied_rows(&app, actor).await;
            let (s, body) = caller.call(&app, method, &path, &json!({})).await;
            cells += 1;
            if route.allows(*role) {
                assert!(
                    s != 401 && s != 403,
                    "{role:?} {label} ({path}) let through, got {s}: {body}"
                );
                if method == "GET" {
                    assert_eq!(s, 200, "{role:?} {label} ({path}): {body}");
                }
            } else {
                assert_eq!(s, 403, "{role:?} {label} ({path}) refused: {body}");
                let error: Value = serde_json::from_str(&body).unwrap();
                assert!(error["error"].is_string() && error["fields"] == json!([]), "{body}");
                assert!(!body.contains(f.name), "nothing of hers in a refusal: {body}");
                let after = denied_rows(&app, actor).await;
                // A record of hers: the refusal names her, so her access log shows the attempt.
                let hers = route.path.contains("{id}") && RECORD_KINDS.contains(&route.record);
                let whose = if matches!(route.record, "child" | "frail_case") {
                    &f.child
                } else {
                    &f.person
                };
                assert!(
                    after.len() > before.len()
                        && after.iter().any(|(_, _, person, d)| d.ends_with(&label)
                            && (!hers || person.as_deref() == Some(whose.as_str()))),
                    "{role:?} refused {label}: audited against her ({after:?})"
                );
            }
        }
        let (s, body) = nobody.call(&app, method, &path, &json!({})).await;
        assert_eq!(s, 401, "no credentials, {label}: {body}");
        // Methods the path does not declare are no route at all, whoever asks.
        for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let declared = API.iter().any(|r| r.path == route.path && r.method.as_str() == other);
            if declared {
                continue;
            }
            let (s, body) = nobody.call(&app, other, &path, &json!({})).await;
            assert_eq!(s, 404, "{other} {} is not a route: {body}", route.path);
            for (role, _, caller) in callers.iter_mut() {
                let (s, body) = caller.call(&app, other, &path, &json!({})).await;
                assert_eq!(s, 404, "{role:?}: {other} {} is not a route: {body}", route.path);
            }
        }
    }
    assert!(cells >= API.len() * 6);
}

/// The pages are for people: a hospital system's bearer token, or an account with that role,
/// opens none of them (the probe found the staff worklist and boards as pages too); each refusal
/// audited. Its interfaces stay open to it.
#[tokio::test]
async fn a_hospital_system_opens_no_staff_page_with_its_token_or_an_account() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let token = mch_chain::auth::service::issue_token(&app.db, "CTYHOSP", "县医院 HIS")
        .await
        .unwrap();
    mch_chain::auth::service::add_user(
        &app.db,
        "his.ctyhosp",
        "县医院接口",
        "hospital_system",
        "CTYHOSP",
        crate::helpers::PASSWORD.to_string(),
    )
    .await
    .unwrap();
    let mut account = app.client();
    assert_eq!(
        account.login("his.ctyhosp", crate::helpers::PASSWORD).await.status(),
        303
    );
    let pages = [
        "/".to_string(),
        "/risk/board".to_string(),
        "/referrals/board".to_string(),
        "/referrals/board/stream".to_string(),
        format!("/persons/{}", f.person),
        format!("/pregnancies/{}", f.pregnancy),
        format!("/referrals/{}", f.referral),
    ];
    for path in &pages {
        let (s, body) = with_token(&app, &token, "GET", path, None).await;
        // The live stream takes a session cookie only: a token is not even a caller there.
        let refused = if path.ends_with("/stream") { 401 } else { 403 };
        assert_eq!(s, refused, "GET {path} with a hospital token: {body}");
        assert!(!body.contains(f.name), "{path}: {body}");
        let page = account.get(path).await;
        assert_eq!(
            page.status, 403,
            "GET {path} as a hospital_system account: {}",
            page.body
        );
        assert!(!page.body.contains(f.name), "{path}");
    }
    let denied = denied_rows(&app, "县医院 HIS").await;
    assert_eq!(
        denied.iter().filter(|(kind, ..)| kind == "page").count(),
        pages.len() - 1,
        "{denied:?}"
    );
    // Its interfaces are unchanged: a lookup in its area still answers.
    let (s, body) = with_token(&app, &token, "GET", &format!("/api/referrals/{}", f.referral), None).await;
    assert_eq!(s, 200, "{body}");
}
