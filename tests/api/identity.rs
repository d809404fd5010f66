//! Identifying a woman: card reads, typed ID numbers, duplicates, masking, search.

use serde_json::json;

use crate::helpers::{id_number, spawn_app, urlencode};

fn card(id: &str, name: &str, birth: &str) -> serde_json::Value {
    json!({"card_number": id, "name": name, "sex_code": "2", "nation_code": "01", "birth_date": birth,
           "id_number": id, "issuer_code": "340500"})
}

async fn count(app: &crate::helpers::TestApp, table: &'static str) -> i64 {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = mch_chain::storage::establish(app.url()).unwrap();
    let rows: Vec<N> = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .load(&mut conn)
        .unwrap();
    rows[0].n
}

#[tokio::test]
async fn a_card_read_creates_the_person_once_and_then_finds_her() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1995-03-08", 22);
    let (status, first) = c.post_json("/api/card-reads", &card(&id, "王小红", "1995-03-08")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["created"], true);
    assert_eq!(first["warnings"].as_array().unwrap().len(), 0);
    let (status, again) = c.post_json("/api/card-reads", &card(&id, "王小红", "1995-03-08")).await;
    assert_eq!(status, 200);
    assert_eq!(again["created"], false);
    assert_eq!(again["person_id"], first["person_id"]);
    assert_eq!(count(&app, "persons").await, 1);
    assert_eq!(count(&app, "card_reads").await, 2);
    // The card number is kept as its own identifier, and the desk sees the read on the home page.
    let (_, person) = c
        .get_json(&format!("/api/persons/{}", first["person_id"].as_str().unwrap()))
        .await;
    assert_eq!(person["view"]["health_card_numbers"], json!([id]));
    assert_eq!(person["view"]["id_number_display"], json!(id));
    let home = c.get("/").await;
    assert!(home.body.contains("最近读卡") && home.body.contains("王小红"));
}

#[tokio::test]
async fn a_card_whose_holder_data_contradicts_its_id_number_is_refused_and_nothing_is_saved() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1995-03-08", 22);
    let (status, body) = c.post_json("/api/card-reads", &card(&id, "王小红", "1995-03-09")).await;
    assert_eq!(status, 422);
    assert_eq!(body["fields"][0]["field"], "birth_date");
    let mut bad_check = card(&id, "王小红", "1995-03-08");
    let mut wrong = id.clone();
    wrong.replace_range(17..18, if id.ends_with('1') { "2" } else { "1" });
    bad_check["id_number"] = json!(wrong);
    let (status, body) = c.post_json("/api/card-reads", &bad_check).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("校验位"));
    let (status, _) = c.post_json("/api/card-reads", &json!({"name": "x"})).await;
    assert_eq!(status, 400, "missing fields are a client error");
    assert_eq!(count(&app, "persons").await, 0);
    assert_eq!(count(&app, "card_reads").await, 0);
}

#[tokio::test]
async fn a_card_reader_bridge_with_a_bearer_token_can_post_card_reads() {
    let app = spawn_app().await;
    let token = mch_chain::auth::service::issue_token(&app.db, "TWN-A", "读卡器 1 号")
        .await
        .unwrap();
    let id = id_number("340524", "1990-12-31", 44);
    let r = reqwest::Client::new()
        .post(format!("{}/api/card-reads", app.base))
        .bearer_auth(&token)
        .json(&card(&id, "李娜", "1990-12-31"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A card number that differs from the ID number is kept and reported.
    let mut other = card(&id, "李娜", "1990-12-31");
    other["card_number"] = json!("H0012345");
    let r = reqwest::Client::new()
        .post(format!("{}/api/card-reads", app.base))
        .bearer_auth(&token)
        .json(&other)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["warnings"][0].as_str().unwrap().contains("卡号与身份证号不一致"));
    assert_eq!(count(&app, "persons").await, 1);
    assert_eq!(count(&app, "person_identifiers").await, 2);
}

#[tokio::test]
async fn typing_an_existing_id_number_opens_the_existing_record_instead_of_creating_a_second() {
    let app = spawn_app().await;
    let mut c = app.login("registrar", "TWN-A").await;
    let id = id_number("340524", "1992-07-01", 10);
    let created = c.post_form("/persons", &[("name", "张丽"), ("id_number", &id)]).await;
    assert_eq!(created.status, 303);
    let loc = created.location.unwrap();
    assert!(loc.ends_with("?created=1"));
    // The same number typed with a lower-case x or spaces, or as a 15-digit legacy number, is the same person.
    let again = c
        .post_form("/persons", &[("name", "张丽"), ("id_number", &format!("  {id} "))])
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.unwrap().split('?').next(), loc.split('?').next());
    assert_eq!(count(&app, "persons").await, 1);
    let page = c.get(loc.split('?').next().unwrap()).await;
    assert!(
        page.body.contains(&id),
        "the registrar sees the whole number on the person's own page"
    );
    // …and only there: the pregnancy page masks it.
    let person = loc
        .trim_start_matches("/persons/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let (s, _) = c
        .post_json(
            &format!("/api/persons/{person}/pregnancies"),
            &serde_json::json!({"lmp": crate::helpers::days_ago(60), "gravidity": "1"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, rec) = c.get_json(&format!("/api/persons/{person}")).await;
    let preg = rec["pregnancies"][0]["pregnancy"]["id"].as_str().unwrap().to_string();
    let page = c.get(&format!("/pregnancies/{preg}")).await;
    assert!(!page.body.contains(&id) && page.body.contains(&format!("{}********{}", &id[..6], &id[14..])));
}

#[tokio::test]
async fn a_fifteen_digit_number_is_upgraded_and_matches_the_eighteen_digit_one() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let (s, r) = c
        .post_json("/api/persons", &json!({"name": "刘芳", "id_number": "340524800101002"}))
        .await;
    assert_eq!(s, 201, "{r}");
    let full = id_number("340524", "1980-01-01", 2);
    let (s, again) = c
        .post_json("/api/persons", &json!({"name": "刘芳", "id_number": full}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(again["result"], "existing");
    assert_eq!(again["person_id"], r["person_id"]);
}

#[tokio::test]
async fn a_near_duplicate_is_shown_before_creating_and_created_only_when_confirmed() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let first = c
        .post_form(
            "/persons",
            &[("name", "陈静"), ("birth_date", "1991-05-05"), ("sex", "female")],
        )
        .await;
    assert_eq!(first.status, 303);
    let id = id_number("340524", "1991-05-05", 88);
    let warn = c.post_form("/persons", &[("name", "陈静"), ("id_number", &id)]).await;
    assert_eq!(warn.status, 200);
    assert!(warn.body.contains("duplicate-warning") && warn.body.contains("同名、同出生日期"));
    assert_eq!(count(&app, "persons").await, 1, "nothing created before confirmation");
    let confirmed = c
        .post_form(
            "/persons",
            &[("name", "陈静"), ("id_number", &id), ("confirm_not_duplicate", "1")],
        )
        .await;
    assert_eq!(confirmed.status, 303);
    assert_eq!(count(&app, "persons").await, 2);
}

#[tokio::test]
async fn bad_registration_input_is_refused_field_by_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1991-05-05", 88);
    let p = c
        .post_form(
            "/persons",
            &[
                ("name", "陈静"),
                ("id_number", &id),
                ("birth_date", "1991-05-06"),
                ("sex", "male"),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("出生日期与身份证号不一致"));
    assert!(p.body.contains("性别与身份证号不一致"));
    assert!(p.body.contains("value=\"陈静\""), "the form keeps what was typed");
    let p = c.post_form("/persons", &[("name", ""), ("id_number", "12345")]).await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("请填写姓名") && p.body.contains("身份证号应为 18 位"));
    let p = c
        .post_form(
            "/persons",
            &[("name", "<script>alert(1)</script>"), ("birth_date", "1990-01-01")],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(!p.body.contains("<script>alert(1)"), "input is escaped when shown back");
    assert_eq!(count(&app, "persons").await, 0);
}

#[tokio::test]
async fn lists_mask_id_numbers_and_search_stays_inside_my_township() {
    let app = spawn_app().await;
    let mut a = app.login("clinician", "TWN-A").await;
    let mut b = app.login("clinician", "TWN-B").await;
    let id_a = id_number("340524", "1993-02-14", 32);
    let id_b = id_number("340524", "1993-02-15", 34);
    a.post_json("/api/persons", &json!({"name": "黄婷", "id_number": id_a}))
        .await;
    b.post_json("/api/persons", &json!({"name": "黄婷", "id_number": id_b}))
        .await;
    let page = a.get("/persons?q=黄").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("{}********{}", &id_a[..6], &id_a[14..])));
    assert!(!page.body.contains(&id_a), "the whole number never appears in a list");
    assert!(
        !page.body.contains(&id_b[14..]),
        "the other township's woman is not listed"
    );
    let (_, r) = a.get_json(&format!("/api/persons?q={id_b}")).await;
    assert_eq!(r["persons"].as_array().unwrap().len(), 0);
    let (_, r) = a.get_json(&format!("/api/persons?q={}", id_a.to_lowercase())).await;
    assert_eq!(
        r["persons"].as_array().unwrap().len(),
        1,
        "search by ID number (lower-case x too)"
    );
    // The county sees both.
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, r) = county.get_json("/api/persons?q=黄婷").await;
    assert_eq!(r["persons"].as_array().unwrap().len(), 2);
    // A referral coordinator sees the person page with the number masked.
    let mut coord = app.login("referral_coordinator", "COUNTY").await;
    let (_, found) = coord.get_json("/api/persons?q=黄婷").await;
    let pid = found["persons"][0]["id"].as_str().unwrap().to_string();
    let page = coord.get(&format!("/persons/{pid}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("********"));
    assert!(!page.body.contains(&id_a) && !page.body.contains(&id_b));
}

/// The search box (issue 16): her 居民健康卡 number finds her (in any case), her whole ID number
/// finds her, a part of either finds no one (numbers are matched whole, so nobody can walk
/// through them), a mistyped ID number is named; names by part, at most `limit`; another
/// county's clinician finds her by none of them.
#[tokio::test]
async fn the_search_finds_her_by_card_number_whole_id_number_or_part_of_her_name_in_her_area_only() {
    let app = spawn_app().await;
    let mut c = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1995-03-08", 62);
    let read = json!({"card_number": "h1234567x9", "name": "卫晓红", "sex_code": "2", "nation_code": "01",
                      "birth_date": "1995-03-08", "id_number": id, "issuer_code": "340500"});
    let (status, first) = c.post_json("/api/card-reads", &read).await;
    assert_eq!(status, 201, "{first}");
    let person = first["person_id"].as_str().unwrap();
    for q in ["H1234567X9", "h1234567x9", id.as_str(), "卫晓"] {
        let (s, found) = c.get_json(&format!("/api/persons?q={}", urlencode(q))).await;
        assert_eq!(s, 200, "{q}: {found}");
        let ids: Vec<_> = found["persons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!(person)], "{q}");
    }
    for q in ["H1234567", &id[..12], "1234567"] {
        let (s, found) = c.get_json(&format!("/api/persons?q={q}")).await;
        assert_eq!(
            (s, found["persons"].clone()),
            (200, json!([])),
            "{q}: a part of a number"
        );
    }
    let mut wrong = id.clone();
    wrong.replace_range(17..18, if id.ends_with('1') { "2" } else { "1" });
    let (s, refused) = c.get_json(&format!("/api/persons?q={wrong}")).await;
    assert_eq!(s, 422, "{refused}");
    for n in 0..3 {
        let (s, r) = c
            .post_json(
                "/api/persons",
                &json!({"name": format!("卫晓{n}"), "birth_date": "1990-01-01", "sex": "female", "confirm_not_duplicate": true}),
            )
            .await;
        assert_eq!(s, 201, "{r}");
    }
    let (_, few) = c
        .get_json(&format!("/api/persons?limit=2&q={}", urlencode("卫晓")))
        .await;
    assert_eq!(few["persons"].as_array().unwrap().len(), 2, "{few}");
    let (_, all) = c.get_json(&format!("/api/persons?q={}", urlencode("卫晓"))).await;
    assert_eq!(all["persons"].as_array().unwrap().len(), 4, "{all}");
    let mut other = app.login("clinician", "NBR").await;
    for q in ["H1234567X9", id.as_str(), "卫晓红"] {
        let (s, found) = other.get_json(&format!("/api/persons?q={}", urlencode(q))).await;
        assert_eq!((s, found["persons"].clone()), (200, json!([])), "another county: {q}");
    }
}
