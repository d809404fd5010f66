//! ORU^R01 results over MLLP: stored as observations, shown on the pregnancy page, re-grading;
//! bad values refused field by field; fetal sex never kept (RULES.md §9.1).

use serde_json::json;

use crate::helpers::{TestApp, days_ago, id_number};
use crate::hl7::{Conn, app_with_sender, audit_of, msa};
use crate::pregnancy::booked;

/// An ORU^R01 for the woman with this ID number, with the given OBX lines (without set ids).
pub fn oru(control: &str, id: &str, obx: &[&str]) -> String {
    // Taken yesterday at 07:00 China time.
    let taken = format!("{}070000", days_ago(1).replace('-', ""));
    let mut m = format!(
        "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124083000||ORU^R01^ORU_R01|{control}|P|2.5.1\r\
         PID|1||{id}^^^&2.16.156.10011.1.3&ISO^NNCHN\r\
         OBR|1|ORD-{control}|LAB-{control}|CBC^血常规^L|||{taken}\r"
    );
    for (i, line) in obx.iter().enumerate() {
        m.push_str(&format!("OBX|{}|{line}\r", i + 1));
    }
    m
}

async fn pregnancy_json(app: &TestApp, preg: &str) -> serde_json::Value {
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, r) = county.get_json(&format!("/api/pregnancies/{preg}")).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn results_are_stored_shown_and_a_worse_one_proposes_a_re_grade() {
    let app = app_with_sender().await;
    let (mut town, mut county, preg) = crate::risk::graded_yellow(&app, "陈静", 80).await;
    let id = id_number("340524", "1994-06-01", 80);
    let msg = oru(
        "LAB-1",
        &id,
        &[
            "NM|718-7^Hemoglobin^LN^HB^血红蛋白^L||58|g/L^^UCUM|110-150|L|||F",
            "CE|5196-1^HBsAg^LN||NEG^阴性^L||||||F",
            "ST|ZZ-42^某院自定项目^L||7 单位|||||F",
        ],
    );
    let mut s = Conn::open(&app).await;
    let acks = s.exchange(&msg).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(msa(&acks[0]), ("AA".to_string(), "LAB-1".to_string()));
    // The unknown code is kept, not interpreted, and the sender is told so (a warning, not an error).
    assert_eq!(acks[0].get("ERR-4").unwrap().as_deref(), Some("W"));
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("OBX^3^3"));
    assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("103"));
    let r = pregnancy_json(&app, &preg).await;
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{r}");
    let hb = results.iter().find(|o| o["concept"] == "hb").unwrap();
    assert_eq!(
        (hb["value_num"].as_f64(), hb["loinc"].as_str()),
        (Some(58.0), Some("718-7"))
    );
    let unknown = results.iter().find(|o| o["code"] == "ZZ-42").unwrap();
    assert!(unknown["concept"].is_null() && unknown["value_text"] == "7 单位");
    // Hb 58 from the laboratory proposes orange (O2.6) to the graders, dated as a result.
    assert_eq!(r["risk"]["current"]["colour"], "yellow");
    assert_eq!(r["risk"]["pending"]["colour"], "orange", "{}", r["risk"]);
    assert!(
        r["risk"]["pending"]["trigger"]
            .as_str()
            .unwrap()
            .starts_with("检验结果")
    );
    let reason = r["risk"]["pending"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "O2.6")
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains(&format!("{} 检验", days_ago(1))), "{reason}");
    let page = county.get(&format!("/pregnancies/{preg}")).await;
    assert!(page.body.contains("检验结果") && page.body.contains("血红蛋白"));
    assert!(page.body.contains("未识别代码，未判读"));
    assert_eq!(known_hb(&app, &preg).await, Some(58.0));
    // A newer visit with a normal Hb wins over the older result (newest dated value, same rule).
    let (st, v) = town
        .post_json(&format!("/api/pregnancies/{preg}/visits"), &json!({"hb_g_l": "120"}))
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(known_hb(&app, &preg).await, Some(120.0));
}

/// The Hb the record's facts hold now (what grading would start from).
async fn known_hb(app: &TestApp, preg: &str) -> Option<f64> {
    let preg = preg.to_string();
    app.db
        .read(move |c| {
            let p = mch_chain::pregnancy::repo::by_id(c, &preg)?.unwrap();
            let person = mch_chain::identity::repo::by_id(c, &p.person_id)?.unwrap();
            mch_chain::risk::service::known_facts(c, &p, &person)
        })
        .await
        .unwrap()
        .hb_g_l
}

#[tokio::test]
async fn bad_values_are_refused_naming_the_field_and_nothing_of_the_message_is_stored() {
    let app = app_with_sender().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "林芳", 82, 12).await;
    let id = id_number("340524", "1994-06-01", 82);
    let mut s = Conn::open(&app).await;
    for (control, line, field) in [
        ("BAD-1", "NM|718-7^Hemoglobin^LN||abc|g/L|||||F", "OBX^2^5"),
        ("BAD-2", "NM|718-7^Hemoglobin^LN||900|g/L|||||F", "OBX^2^5"),
        ("BAD-3", "NM|777-3^Platelets^LN||150|mmol/L|||||F", "OBX^2^6"),
    ] {
        let msg = oru(control, &id, &["NM|HB^^L||110|g/L|||||F", line]);
        let acks = s.exchange(&msg).await;
        assert_eq!(msa(&acks[0]).0, "AE", "{control}");
        assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some(field), "{control}");
        assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("102"));
    }
    // A woman nobody registered: AE, unknown key at PID-3.
    let stranger = oru(
        "BAD-4",
        &id_number("340524", "1990-01-01", 84),
        &["NM|HB^^L||110|g/L|||||F"],
    );
    let acks = s.exchange(&stranger).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("204"));
    let r = pregnancy_json(&app, &preg).await;
    assert_eq!(
        r["results"].as_array().unwrap().len(),
        0,
        "nothing stored from refused messages"
    );
}

#[tokio::test]
async fn a_fetal_sex_finding_is_acknowledged_with_a_warning_and_its_value_is_nowhere() {
    const SECRET: &str = "男性胎儿QX7";
    let app = app_with_sender().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, preg) = booked(&mut town, "吴霞", 86, 20).await;
    let id = id_number("340524", "1994-06-01", 86);
    let msg = format!(
        "{}NTE|1||超声所见 {SECRET}\r",
        oru(
            "US-1",
            &id,
            &[
                &format!("CE|11883-0^Fetal sex US^LN||M^{SECRET}^L||||||F"),
                "NM|718-7^Hemoglobin^LN||118|g/L|||||F",
            ],
        )
    );
    let mut s = Conn::open(&app).await;
    let acks = s.exchange(&msg).await;
    assert_eq!(msa(&acks[0]).0, "AA");
    assert_eq!(acks[0].get("ERR-4").unwrap().as_deref(), Some("W"));
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("OBX^1^5"));
    assert!(!acks[0].text().contains(SECRET));
    // A resend is answered the same and changes nothing.
    assert_eq!(s.exchange(&msg).await[0].text(), acks[0].text());
    let r = pregnancy_json(&app, &preg).await;
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only the Hb is shown: {r}");
    let mut county = app.login("clinician", "COUNTY").await;
    for page in [format!("/pregnancies/{preg}"), "/hl7/messages".into(), "/".into()] {
        assert!(!county.get(&page).await.body.contains(SECRET), "{page}");
    }
    let mut admin = app.login("admin", "PROV").await;
    let list = admin.get("/hl7/messages").await;
    assert!(!list.body.contains(SECRET));
    for link in message_links(&list.body) {
        assert!(!admin.get(&link).await.body.contains(SECRET), "{link}");
    }
    assert_db_lacks(&app, SECRET).await;
}

/// Links to message pages in a message-log page.
pub fn message_links(html: &str) -> Vec<String> {
    html.split("href=\"/hl7/messages/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|id| format!("/hl7/messages/{id}"))
        .collect()
}

/// The value appears in no file of the SQLite database (main file and WAL), nor in any text or
/// binary column on PostgreSQL.
async fn assert_db_lacks(app: &TestApp, secret: &str) {
    if let Some(path) = app.url().strip_prefix("sqlite://") {
        let dir = std::path::Path::new(path).parent().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the value is in {}",
                path.display()
            );
        }
    } else {
        use diesel::prelude::*;
        let mut c = diesel::PgConnection::establish(app.url()).unwrap();
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n: N = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM (SELECT to_jsonb(t)::text AS x FROM observations t UNION ALL \
             SELECT encode(raw, 'escape') FROM hl7_messages UNION ALL SELECT ack FROM hl7_messages UNION ALL \
             SELECT detail FROM audit_events) s WHERE x LIKE '%{secret}%'"
        ))
        .get_result(&mut c)
        .unwrap();
        assert_eq!(n.n, 0);
    }
}

// ------------------------------------------------------------------ the message log

#[tokio::test]
async fn the_message_log_is_for_admins_and_auditors_masks_id_numbers_and_escapes_html() {
    let app = app_with_sender().await;
    let id = id_number("340524", "1991-02-03", 90);
    let evil = crate::hl7::adt("LOG-1", &id, ("<script>alert(1)</script>", "丽"), "19910203");
    let mut s = Conn::open(&app).await;
    // The name is refused as a name, but the message is stored and shown as received.
    s.exchange(&evil).await;
    let ok = crate::hl7::adt("LOG-2", &id, ("赵", "丽"), "19910203");
    assert_eq!(msa(&s.exchange(&ok).await[0]).0, "AA");
    for (role, fac) in [("clinician", "COUNTY"), ("registrar", "TWN-A")] {
        let mut c = app.login(role, fac).await;
        assert_eq!(c.get("/hl7/messages").await.status, 403, "{role}");
    }
    let mut auditor = app.login("auditor", "PROV").await;
    let list = auditor.get("/hl7/messages").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("LOG-1") && list.body.contains("LOG-2"));
    assert!(list.body.contains("HIS / COUNTYHOSP"), "per-sender counts");
    let filtered = auditor.get("/hl7/messages?control_id=LOG-2").await;
    assert!(filtered.body.contains("LOG-2") && !filtered.body.contains(">LOG-1<"));
    let by_patient = auditor.get(&format!("/hl7/messages?patient={id}")).await;
    assert!(by_patient.body.contains("LOG-2"));
    for link in message_links(&list.body) {
        let page = auditor.get(&link).await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains(&id),
            "ID numbers are masked in the tree and the raw text"
        );
        assert!(!page.body.contains("<script>alert(1)"), "content is escaped");
        assert!(page.body.contains("PID-3[1].1"), "values are named by their path");
        assert!(!page.body.contains("id=\"replay\""), "auditors do not replay");
    }
    // Opening a message that concerns her is audited against her record.
    let events = audit_of(&app, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e["entity_type"] == "hl7_message" && e["action"] == "read" && e["actor_role"] == "auditor"),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_admin_replays_a_failed_message_and_the_new_outcome_is_recorded_and_audited() {
    let app = app_with_sender().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let id = id_number("340524", "1994-06-01", 92);
    let mut s = Conn::open(&app).await;
    // Results for a woman the centre does not know yet: AE.
    let msg = oru("RPL-1", &id, &["NM|718-7^Hemoglobin^LN||96|g/L|||||F"]);
    assert_eq!(msa(&s.exchange(&msg).await[0]).0, "AE");
    // She is registered and booked; the administrator replays the message.
    let (_, preg) = booked(&mut town, "孙梅", 92, 14).await;
    let mut admin = app.login("admin", "PROV").await;
    let list = admin.get("/hl7/messages?status=error").await;
    let link = message_links(&list.body)
        .into_iter()
        .next()
        .expect("the failed message is listed");
    let page = admin.get(&link).await;
    assert!(page.body.contains("id=\"replay\""));
    // Others may not replay.
    let mut auditor = app.login("auditor", "PROV").await;
    auditor.get("/hl7/messages").await;
    let refused = auditor.post_form(&format!("{link}/replay"), &[]).await;
    assert_eq!(refused.status, 403);
    let done = admin.post_form(&format!("{link}/replay"), &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = admin.get(&link).await;
    assert!(page.body.contains("<dd id=\"status\">processed</dd>"), "{}", page.body);
    assert!(page.body.contains("1 次"), "the replay is counted");
    let r = pregnancy_json(&app, &preg).await;
    assert_eq!(
        r["results"].as_array().unwrap().len(),
        1,
        "the replay stored the result"
    );
    // A processed message cannot be replayed again.
    let again = admin.post_form(&format!("{link}/replay"), &[]).await;
    assert_eq!(again.status, 409);
    let events = audit_of(&app, &id).await;
    assert!(
        events.iter().any(|e| e["action"] == "update"
            && e["actor_role"] == "admin"
            && e["detail"].as_str().unwrap().contains("replayed")),
        "{events:?}"
    );
}

// ------------------------------------------------------------------ ADT^A40 merge

/// An ADT^A04 for a woman known to the hospital only by its MRN.
fn adt_mrn_only(control: &str, mrn: &str, name: (&str, &str), birth: &str) -> String {
    format!(
        "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124083000||ADT^A04^ADT_A01|{control}|P|2.5.1\r\
         PID|1||{mrn}^^^COUNTYHOSP^MR||{}^{}||{birth}|F\r",
        name.0, name.1
    )
}

/// ADT^A40: PID-3 the survivor (by ID number), MRG-1 the prior record (by ID number or MRN).
fn a40(control: &str, survivor_id: &str, prior: &str) -> String {
    format!(
        "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124083000||ADT^A40^ADT_A39|{control}|P|2.5.1\r\
         EVN|A40|20261124083000\r\
         PID|1||{survivor_id}^^^&2.16.156.10011.1.3&ISO^NNCHN\r\
         MRG|{prior}\r"
    )
}

#[tokio::test]
async fn a40_merges_the_prior_record_into_the_survivor_and_refuses_what_needs_a_person() {
    let app = app_with_sender().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let mut s = Conn::open(&app).await;
    // The survivor: registered and booked at the township, with her ID number.
    let (survivor, preg) = booked(&mut town, "钱红", 94, 15).await;
    let id = id_number("340524", "1994-06-01", 94);
    // The same woman registered by the hospital under an MRN only, with a result of her own.
    assert_eq!(
        msa(&s
            .exchange(&adt_mrn_only("M-1", "OLD-7", ("钱", "红"), "19940601"))
            .await[0])
        .0,
        "AA"
    );
    let mut oru_old = oru("M-2", "X", &["NM|718-7^Hemoglobin^LN||101|g/L|||||F"]);
    oru_old = oru_old.replace("X^^^&2.16.156.10011.1.3&ISO^NNCHN", "OLD-7^^^COUNTYHOSP^MR");
    assert_eq!(msa(&s.exchange(&oru_old).await[0]).0, "AA");
    // A prior record nobody knows: AE at MRG-1.
    let acks = s.exchange(&a40("M-3", &id, "NOPE^^^COUNTYHOSP^MR")).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("MRG^1^1"));
    // The merge: AA, the survivor's page shows it, the MRN now finds her.
    let acks = s.exchange(&a40("M-4", &id, "OLD-7^^^COUNTYHOSP^MR")).await;
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0].text());
    let page = town.get(&format!("/persons/{survivor}")).await;
    assert!(
        page.body.contains("合并记录") && page.body.contains("observations 1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("hl7:HIS^COUNTYHOSP"));
    let oru_new = oru_old.replace("|M-2|", "|M-5|").replace("||101|", "||99|");
    assert_eq!(msa(&s.exchange(&oru_new).await[0]).0, "AA");
    let r = pregnancy_json(&app, &preg).await;
    assert_eq!(
        r["results"].as_array().unwrap().len(),
        1,
        "the new result lands on her pregnancy: {r}"
    );
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, found) = county.get_json("/api/persons?q=钱红").await;
    assert_eq!(found["persons"].as_array().unwrap().len(), 1, "one record left");
    // Two records that both have an active pregnancy: refused, nothing changes.
    let (_, _) = booked(&mut town, "冯雨", 96, 10).await;
    assert_eq!(
        msa(&s
            .exchange(&adt_mrn_only("M-6", "OLD-9", ("冯", "小雨"), "19940601"))
            .await[0])
        .0,
        "AA"
    );
    let (_, found) = county.get_json("/api/persons?q=冯小雨").await;
    let prior = found["persons"][0]["id"].as_str().unwrap().to_string();
    let (st, b) = county
        .post_json(
            &format!("/api/persons/{prior}/pregnancies"),
            &json!({"lmp": days_ago(70), "gravidity": "1", "parity": "0"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let survivor2 = id_number("340524", "1994-06-01", 96);
    let acks = s.exchange(&a40("M-7", &survivor2, "OLD-9^^^COUNTYHOSP^MR")).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert!(acks[0].get("ERR-8").unwrap().unwrap().contains("进行中的孕产期"));
    // Two different ID numbers: refused.
    let (_, _) = crate::pregnancy::booked_with(
        &mut town,
        "蒋丽",
        "1994-06-01",
        98,
        json!({"lmp": days_ago(30), "gravidity": "1", "parity": "0"}),
    )
    .await;
    let other = format!("{}^^^^NNCHN", id_number("340524", "1994-06-01", 98));
    let acks = s.exchange(&a40("M-8", &survivor2, &other)).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert!(acks[0].get("ERR-8").unwrap().unwrap().contains("身份证号不一致"));
    let (_, found) = county.get_json("/api/persons?q=冯").await;
    assert_eq!(found["persons"].as_array().unwrap().len(), 2, "nothing merged");
}
