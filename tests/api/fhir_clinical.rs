//! FHIR R4 Observation, Condition and Immunization: the IPS examples accepted and read back
//! equivalent, the same road as HL7 results (unit conversion, re-grading), the fetal-sex ban
//! (RULES.md §9.1), search, conditional create under concurrency (RELIABILITY.md 7) and access.
//! Every resource the server sends is schema-validated by the client (`fhir_support`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::fhir_support::{Fhir, Resp, patient};
use crate::helpers::{TestApp, days_ago, id_number, spawn_app};

const IPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance/fhir/ips-examples");

/// The IPS examples whose file name starts with `prefix`, as (file name, resource).
fn ips_examples(prefix: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(IPS)
        .expect("IPS examples (shared/conformance/fhir/ips-examples)")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .map(|n| {
            let text = std::fs::read_to_string(format!("{IPS}/{n}")).unwrap();
            (n, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {prefix} examples");
    out
}

/// An example as we post it: without `id` (the server assigns ids), its patient reference
/// rewritten to the Patient created from the example it names.
fn as_posted(example: &Value, key: &str, patients: &HashMap<String, String>) -> Value {
    let mut v = example.clone();
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    if let Some(r) = obj.get_mut(key) {
        let old = r["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/")
            .to_string();
        let new = patients.get(&old).unwrap_or_else(|| panic!("no Patient {old} created"));
        r["reference"] = json!(format!("Patient/{new}"));
    }
    v
}

/// Both strings name the same instant (FHIR dateTime with a time), or are equal.
fn same_text(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let inst = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    matches!((inst(a), inst(b)), (Some(x), Some(y)) if x == y)
}

/// `got` says what `want` says: the same elements (no more, no fewer), values equal, date-times
/// compared as instants.
fn assert_same(want: &Value, got: &Value, path: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in what was read back: {got}"));
                assert_same(wv, gv, &format!("{path}.{k}"));
            }
            for k in g.keys() {
                assert!(w.contains_key(k), "{path}.{k} read back but not sent: {got}");
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "{path}: {want} vs {got}");
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                assert_same(wv, gv, &format!("{path}[{i}]"));
            }
        }
        (Value::String(w), Value::String(g)) => assert!(same_text(w, g), "{path}: sent {w}, read back {g}"),
        (Value::Number(w), Value::Number(g)) => {
            assert_eq!(w.as_f64(), g.as_f64(), "{path}")
        }
        _ => assert_eq!(want, got, "{path}"),
    }
}

/// What was read back, minus what the server owns (id, meta), compared with what was posted
/// minus the narrative (`text` is regenerated, never trusted).
fn assert_reads_back(posted: &Value, read: &Value, what: &str) {
    let mut want = posted.clone();
    let w = want.as_object_mut().unwrap();
    w.remove("meta");
    w.remove("text");
    let mut got = read.clone();
    let g = got.as_object_mut().unwrap();
    g.remove("id");
    g.remove("meta");
    assert_same(&want, &got, what);
}

async fn count_rows(app: &TestApp, table: &'static str) -> i64 {
    app.db
        .read(move |c| {
            use diesel::prelude::*;
            use mch_chain::storage::schema::{conditions, immunizations, observations};
            let n = match table {
                "observations" => observations::table.count().get_result::<i64>(c),
                "conditions" => conditions::table.count().get_result::<i64>(c),
                _ => immunizations::table.count().get_result::<i64>(c),
            };
            n.map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

/// Audit rows of a token's actions on one kind of record with one outcome.
async fn audits(app: &TestApp, action: &str, outcome: &str, entity: &str) -> Vec<(Option<String>, String)> {
    let (action, outcome, entity) = (action.to_string(), outcome.to_string(), entity.to_string());
    app.db
        .read(move |c| {
            use diesel::prelude::*;
            use mch_chain::storage::schema::audit_events::dsl as a;
            a::audit_events
                .filter(a::action.eq(action))
                .filter(a::outcome.eq(outcome))
                .filter(a::entity_type.eq(entity))
                .filter(a::actor_kind.eq("api_token"))
                .select((a::person_id, a::detail))
                .load::<(Option<String>, String)>(c)
                .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

/// A woman registered over FHIR (ID number in county 340524); her Patient id.
async fn woman(his: &Fhir, name: &str, seq: u32) -> String {
    let r = his
        .post("Patient", &patient(name, &id_number("340524", "1993-03-03", seq)))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn hb_observation(person: &str, value: f64, unit: &str, when: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": format!("Patient/{person}")},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    })
}

fn link(r: &Resp, relation: &str) -> Option<String> {
    r.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

fn ids_of(r: &Resp, mode: &str) -> Vec<String> {
    r.body["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_ips_patient_observation_condition_and_immunization_is_accepted_and_reads_back_equivalent() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    // Patients first: IPS Patients carry foreign identifiers, no 身份证号, one a partial birth date
    // (1957) and one is a man — all accepted as they are.
    let mut patients: HashMap<String, String> = HashMap::new();
    for (file, example) in ips_examples("Patient-") {
        let mut posted = example.clone();
        posted.as_object_mut().unwrap().remove("id");
        let created = his.post("Patient", &posted).await;
        assert_eq!(created.status, 201, "{file}: {}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        let read = his.get(&format!("Patient/{id}")).await;
        assert_eq!(read.status, 200, "{file}");
        assert_reads_back(&posted, &read.body, &file);
        patients.insert(example["id"].as_str().unwrap().to_string(), id);
    }
    for (prefix, ty, key) in [
        ("Observation-", "Observation", "subject"),
        ("Condition-", "Condition", "subject"),
        ("Immunization-", "Immunization", "patient"),
    ] {
        for (file, example) in ips_examples(prefix) {
            let posted = as_posted(&example, key, &patients);
            let created = his.post(ty, &posted).await;
            assert_eq!(created.status, 201, "{file}: {}", created.body);
            assert_reads_back(&posted, &created.body, &format!("{file} (as created)"));
            let id = created.body["id"].as_str().unwrap();
            let read = his.get(&format!("{ty}/{id}")).await;
            assert_eq!(read.status, 200, "{file}");
            assert_reads_back(&posted, &read.body, &file);
            assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
        }
    }
    // Everything about one of them, in one packet.
    let heig = &patients["eumfh-39-07"];
    let all = his.get(&format!("Patient/{heig}/$everything")).await;
    assert_eq!(all.status, 200);
    let types: Vec<&str> = all.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"Observation") && types.contains(&"Condition"),
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| **t == "Observation").count(), 7, "{types:?}");
}

#[tokio::test]
async fn a_fetal_sex_observation_is_refused_nothing_is_stored_and_the_refusal_is_audited() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "周燕", 40).await;
    let before = count_rows(&app, "observations").await;
    let by_code = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "11883-0"}]},
        "subject": {"reference": format!("Patient/{her}")},
        "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": "male"}]},
    });
    let by_text = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "urn:oid:1.2.3.4", "code": "US-17"}], "text": "B超"},
        "subject": {"reference": format!("Patient/{her}")},
        "valueString": "胎儿性别：女",
    });
    // A haemoglobin whose note says more than it should: the document is kept whole, so no.
    let mut in_a_note = hb_observation(&her, 120.0, "g/L", &format!("{}T08:00:00+08:00", days_ago(1)));
    in_a_note["note"] = json!([{"text": "Fetal sex: male"}]);
    for (what, body) in [("code", by_code), ("value text", by_text), ("note", in_a_note)] {
        let r = his.post("Observation", &body).await;
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        assert!(r.diagnostics().contains("fetal sex"), "{what}: {}", r.diagnostics());
        assert!(
            !r.body.to_string().contains("女") && !r.body.to_string().contains("male\""),
            "{what}"
        );
    }
    assert_eq!(count_rows(&app, "observations").await, before, "nothing is stored");
    let refused = audits(&app, "create", "denied", "observation").await;
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|(p, d)| p.as_deref() == Some(her.as_str()) && d.contains("fetal sex"))
    );
    // In a batch too: the entry is refused, the refusal audited, the rest goes through.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "11883-0"}]},
                "subject": {"reference": format!("Patient/{her}")}, "valueString": "M"},
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": hb_observation(&her, 118.0, "g/L", &format!("{}T08:00:00+08:00", days_ago(1))),
             "request": {"method": "POST", "url": "Observation"}},
        ]
    });
    let r = his.post("", &bundle).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["entry"][0]["response"]["status"], "422");
    assert_eq!(r.body["entry"][1]["response"]["status"], "201 Created");
    assert_eq!(count_rows(&app, "observations").await, before + 1);
    assert_eq!(audits(&app, "create", "denied", "observation").await.len(), 4);
}

#[tokio::test]
async fn a_fhir_haemoglobin_takes_the_hl7_road_converted_and_re_graded_alike() {
    let app = crate::hl7::app_with_sender().await;
    let (_t1, _c1, fhir_preg) = crate::risk::graded_yellow(&app, "孙丽", 90).await;
    let (_t2, _c2, hl7_preg) = crate::risk::graded_yellow(&app, "钱红", 92).await;
    let his = Fhir::new(&app, "COUNTY").await;
    let found = his
        .get(&format!("Patient?identifier={}", id_number("340524", "1994-06-01", 90)))
        .await;
    let her = found.body["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    let taken = format!("{}T07:00:00+08:00", days_ago(1));
    let created = his
        .post("Observation", &hb_observation(&her, 9.5, "g/dL", &taken))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Kept in our unit, as an HL7 result is: 9.5 g/dL is 95 g/L.
    assert_eq!(created.body["valueQuantity"]["value"].as_f64(), Some(95.0));
    assert_eq!(created.body["valueQuantity"]["code"], "g/L");
    assert_eq!(created.body["valueQuantity"]["system"], "http://unitsofmeasure.org");
    // The same result over HL7, sent with a local code only.
    let msg = crate::hl7_results::oru(
        "LAB-HB",
        &id_number("340524", "1994-06-01", 92),
        &["NM|HB^血红蛋白^L||9.5|g/dL|||||F"],
    );
    let mut s = crate::hl7::Conn::open(&app).await;
    let acks = s.exchange(&msg).await;
    assert_eq!(crate::hl7::msa(&acks[0]).0, "AA");
    let mut county = app.login("clinician", "COUNTY").await;
    let mut pending = Vec::new();
    for preg in [&fhir_preg, &hl7_preg] {
        let (st, p) = county.get_json(&format!("/api/pregnancies/{preg}")).await;
        assert_eq!(st, 200);
        let hb = p["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["concept"] == "hb")
            .cloned()
            .unwrap();
        assert_eq!(hb["value_num"].as_f64(), Some(95.0), "{p}");
        let risk = p["risk"]["pending"].clone();
        assert!(risk["trigger"].as_str().unwrap().starts_with("检验结果"), "{risk}");
        let factors: Vec<(String, String)> = risk["factors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        pending.push((risk["colour"].clone(), factors));
    }
    assert_eq!(pending[0], pending[1], "the same re-grade proposal from either door");
    assert!(
        pending[0]
            .1
            .iter()
            .any(|(code, reason)| code == "Y2.6" && reason.contains("95")),
        "{pending:?}"
    );
    // The HL7 result sent as local code HB is found by its LOINC code, and rendered with both codings.
    let hl7_woman = his
        .get(&format!("Patient?identifier={}", id_number("340524", "1994-06-01", 92)))
        .await
        .body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_loinc = his
        .get(&format!("Observation?patient={hl7_woman}&code=http://loinc.org|718-7"))
        .await;
    assert_eq!(by_loinc.body["total"], 1, "{}", by_loinc.body);
    let o = &by_loinc.body["entry"][0]["resource"];
    let codings = o["code"]["coding"].as_array().unwrap();
    assert!(
        codings
            .iter()
            .any(|c| c["system"] == "http://loinc.org" && c["code"] == "718-7")
    );
    assert!(codings.iter().any(|c| c["code"] == "HB"));
    assert_eq!(o["valueQuantity"]["value"].as_f64(), Some(95.0));
    assert_eq!(o["status"], "final");
    assert_eq!(
        his.get(&format!("Observation?patient={hl7_woman}&code=718-7"))
            .await
            .body["total"],
        1
    );
    assert_eq!(
        his.get(&format!("Observation?patient={hl7_woman}&code=http://loinc.org|777-3"))
            .await
            .body["total"],
        0
    );
}

#[tokio::test]
async fn invalid_values_are_refused_naming_the_element_and_unknown_codes_are_kept() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "冯静", 42).await;
    let when = format!("{}T08:00:00+08:00", days_ago(2));
    let mut text_value = hb_observation(&her, 100.0, "g/L", &when);
    text_value["valueQuantity"]["value"] = json!("abc");
    let mut cases = vec![
        ("not a number", text_value, "Observation.valueQuantity.value"),
        (
            "impossible",
            hb_observation(&her, 900.0, "g/L", &when),
            "Observation.valueQuantity.value",
        ),
        (
            "unit",
            hb_observation(&her, 100.0, "mmol/L", &when),
            "Observation.valueQuantity.unit",
        ),
    ];
    let mut no_subject = hb_observation(&her, 100.0, "g/L", &when);
    no_subject.as_object_mut().unwrap().remove("subject");
    cases.push(("no subject", no_subject, "Observation.subject"));
    let mut bad_status = hb_observation(&her, 100.0, "g/L", &when);
    bad_status["status"] = json!("done");
    cases.push(("status", bad_status, "Observation.status"));
    let mut two_values = hb_observation(&her, 100.0, "g/L", &when);
    two_values["valueString"] = json!("100");
    cases.push(("two values", two_values, "Observation.value"));
    let future = hb_observation(&her, 100.0, "g/L", "2099-01-01T00:00:00Z");
    cases.push(("future", future, "Observation.effectiveDateTime"));
    for (what, body, path) in cases {
        let r = his.post("Observation", &body).await;
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        assert!(r.expression().starts_with(path), "{what}: {}", r.body);
    }
    let stranger = hb_observation("0190a0a0-0000-7000-8000-000000000000", 100.0, "g/L", &when);
    let r = his.post("Observation", &stranger).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.expression(), "Observation.subject.reference");
    assert_eq!(
        count_rows(&app, "observations").await,
        0,
        "nothing of a refused Observation is kept"
    );
    // An unknown code is kept as sent, value and all.
    let unknown = json!({
        "resourceType": "Observation",
        "status": "preliminary",
        "code": {"coding": [{"system": "urn:oid:1.2.156.99", "code": "ZZ-42", "display": "某院自定项目"}]},
        "subject": {"reference": format!("Patient/{her}")},
        "effectiveDateTime": when,
        "valueQuantity": {"value": 7, "unit": "单位"},
    });
    let r = his.post("Observation", &unknown).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["valueQuantity"], json!({"value": 7, "unit": "单位"}));
    assert_eq!(r.body["status"], "preliminary");
    let found = his
        .get("Observation?code=urn:oid:1.2.156.99|ZZ-42&status=preliminary")
        .await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(his.get("Observation?code=ZZ-42&status=final").await.body["total"], 0);
}

#[tokio::test]
async fn observations_are_searched_by_patient_date_code_with_paging_and_included_patients() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "韩梅", 44).await;
    let other = woman(&his, "韩雪", 46).await;
    for d in 1..=5 {
        let r = his
            .post(
                "Observation",
                &hb_observation(
                    &her,
                    100.0 + d as f64,
                    "g/L",
                    &format!("{}T09:00:00+08:00", days_ago(d)),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let plt = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
        "subject": {"reference": format!("Patient/{her}")},
        "effectiveDateTime": format!("{}T09:00:00+08:00", days_ago(1)),
        "valueQuantity": {"value": 180, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"},
    });
    assert_eq!(his.post("Observation", &plt).await.status, 201);
    assert_eq!(
        his.post("Observation", &hb_observation(&other, 120.0, "g/L", &days_ago(1)))
            .await
            .status,
        201
    );
    let all = his.get(&format!("Observation?patient={her}")).await;
    assert_eq!(all.body["total"], 6);
    // Newest first.
    let first = &all.body["entry"][0]["resource"];
    assert!(first["effectiveDateTime"].as_str().unwrap().starts_with(&days_ago(1)));
    let since = his
        .get(&format!("Observation?patient=Patient/{her}&date=ge{}", days_ago(3)))
        .await;
    assert_eq!(since.body["total"], 4, "3 Hb and the platelets");
    let before = his
        .get(&format!(
            "Observation?subject=Patient/{her}&date=lt{}&code=http://loinc.org|718-7",
            days_ago(3)
        ))
        .await;
    assert_eq!(before.body["total"], 2);
    let between = his
        .get(&format!(
            "Observation?patient={her}&date=ge{}&date=le{}",
            days_ago(4),
            days_ago(2)
        ))
        .await;
    assert_eq!(between.body["total"], 3);
    let day = his
        .get(&format!("Observation?patient={her}&date={}", days_ago(2)))
        .await;
    assert_eq!(day.body["total"], 1);
    assert_eq!(
        day.body["entry"][0]["resource"]["valueQuantity"]["value"].as_f64(),
        Some(102.0)
    );
    let hb_only = his
        .get(&format!("Observation?patient={her}&code=http://loinc.org|718-7"))
        .await;
    assert_eq!(hb_only.body["total"], 5);
    let either = his
        .get(&format!(
            "Observation?patient={her}&code=http://loinc.org|718-7,http://loinc.org|777-3"
        ))
        .await;
    assert_eq!(either.body["total"], 6);
    // Paging: _count and the next link, which carries the criteria.
    let page1 = his.get(&format!("Observation?patient={her}&_count=4")).await;
    assert_eq!(ids_of(&page1, "match").len(), 4);
    let next = link(&page1, "next").expect("a next link");
    assert!(next.contains("patient=") && next.contains("_offset=4"), "{next}");
    let page2 = his.send(his.http.get(&next)).await;
    assert_eq!(ids_of(&page2, "match").len(), 2);
    assert!(link(&page2, "next").is_none());
    assert!(link(&page2, "previous").is_some());
    let mut seen = ids_of(&page1, "match");
    seen.extend(ids_of(&page2, "match"));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "pages do not overlap");
    // _include: the Patient once, as an include entry.
    for inc in ["Observation:patient", "Observation:subject"] {
        let with = his.get(&format!("Observation?patient={her}&_include={inc}")).await;
        assert_eq!(ids_of(&with, "include"), vec![her.clone()], "{inc}");
        assert_eq!(ids_of(&with, "match").len(), 6);
    }
    // Without a patient: the token's area; _lastUpdated and _id work.
    let area = his.get("Observation").await;
    assert_eq!(area.body["total"], 7);
    let recent = his.get("Observation?_lastUpdated=ge2020-01-01").await;
    assert_eq!(recent.body["total"], 7);
    let one = first["id"].as_str().unwrap();
    assert_eq!(his.get(&format!("Observation?_id={one}")).await.body["total"], 1);
    // Strict parameters.
    for bad in [
        "Observation?foo=bar",
        "Observation?_include=Observation:performer",
        "Observation?date=ap2026",
        "Observation?patient=Encounter/1",
        "Observation?status=done",
        "Observation?code:text=Hb",
    ] {
        assert_eq!(his.get(bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn sixteen_concurrent_conditional_creates_make_one_observation() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "曹颖", 48).await;
    let mut body = hb_observation(&her, 115.0, "g/L", &format!("{}T10:00:00+08:00", days_ago(1)));
    body["identifier"] = json!([{"system": "urn:oid:1.2.156.112606.1.2", "value": "LAB-2026-0001"}]);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (his, body) = (his.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            his.post_if_none_exist(
                "Observation",
                &body,
                "identifier=urn:oid:1.2.156.112606.1.2|LAB-2026-0001",
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        statuses.push(r.status);
        ids.push(r.body["id"].as_str().unwrap_or_default().to_string());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 15, "{statuses:?}");
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the one Observation");
    assert_eq!(count_rows(&app, "observations").await, 1);
    let found = his
        .get("Observation?identifier=urn:oid:1.2.156.112606.1.2|LAB-2026-0001")
        .await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["entry"][0]["resource"]["identifier"], body["identifier"]);
    // Without If-None-Exist, the identifier cannot name a second Observation.
    let again = his.post("Observation", &body).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(count_rows(&app, "observations").await, 1);
}

#[tokio::test]
async fn another_county_cannot_read_or_write_her_clinical_records_and_searches_show_nothing() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "贾敏", 50).await;
    let obs = his
        .post("Observation", &hb_observation(&her, 112.0, "g/L", &days_ago(1)))
        .await;
    assert_eq!(obs.status, 201);
    let cond = his
        .post(
            "Condition",
            &json!({
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "O99.0", "display": "妊娠合并贫血"}]},
                "subject": {"reference": format!("Patient/{her}")},
            }),
        )
        .await;
    assert_eq!(cond.status, 201, "{}", cond.body);
    let imm = his
        .post(
            "Immunization",
            &json!({
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "115", "display": "Tdap"}]},
                "patient": {"reference": format!("Patient/{her}")},
                "occurrenceDateTime": days_ago(20),
            }),
        )
        .await;
    assert_eq!(imm.status, 201, "{}", imm.body);
    let neighbour = Fhir::new(&app, "NBR").await;
    for (ty, r) in [("Observation", &obs), ("Condition", &cond), ("Immunization", &imm)] {
        let id = r.body["id"].as_str().unwrap();
        assert_eq!(neighbour.get(&format!("{ty}/{id}")).await.status, 403, "{ty}");
        let key = if ty == "Immunization" { "patient" } else { "subject" };
        let mut again = r.body.clone();
        let o = again.as_object_mut().unwrap();
        o.remove("id");
        o.remove("meta");
        o.remove("identifier");
        assert_eq!(again[key]["reference"], format!("Patient/{her}"));
        let w = neighbour.post(ty, &again).await;
        assert_eq!(w.status, 403, "{ty}: {}", w.body);
        let s = neighbour.get(&format!("{ty}?patient={her}")).await;
        assert_eq!(s.status, 200);
        assert_eq!(s.body["total"], 0, "{ty}");
        assert_eq!(neighbour.get(ty).await.body["total"], 0, "{ty}");
        assert_eq!(neighbour.get(&format!("{ty}?_id={id}")).await.body["total"], 0, "{ty}");
    }
    assert_eq!(count_rows(&app, "observations").await, 1);
    assert_eq!(count_rows(&app, "conditions").await, 1);
    assert_eq!(count_rows(&app, "immunizations").await, 1);
    assert!(!audits(&app, "read", "denied", "observation").await.is_empty());
    assert!(!audits(&app, "read", "denied", "condition").await.is_empty());
    assert!(!audits(&app, "create", "denied", "person").await.is_empty());
    // The county still sees all three in her packet.
    let all = his.get(&format!("Patient/{her}/$everything")).await;
    assert_eq!(all.body["total"], 4);
}

#[tokio::test]
async fn conditions_keep_to_the_required_value_sets_and_are_searched() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "魏华", 52).await;
    let condition = |status: &str, code: &str| {
        json!({
            "resourceType": "Condition",
            "identifier": [{"system": "urn:oid:1.2.156.112606.9", "value": format!("DX-{code}-{status}")}],
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
            "subject": {"reference": format!("Patient/{her}")},
            "onsetString": "孕 20 周",
            "recordedDate": format!("{}T10:00:00+08:00", days_ago(3)),
        })
    };
    for (s, c) in [("active", "O24.4"), ("resolved", "O99.0"), ("active", "O13")] {
        let r = his.post("Condition", &condition(s, c)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["onsetString"], "孕 20 周");
    }
    // Codes outside the required value sets are refused, never ignored.
    let mut bad = condition("cured", "O10");
    let r = his.post("Condition", &bad).await;
    assert_eq!(r.status, 422);
    assert!(r.expression().starts_with("Condition.clinicalStatus"), "{}", r.body);
    bad = condition("active", "O10");
    bad["verificationStatus"]["coding"][0]["code"] = json!("likely");
    let r = his.post("Condition", &bad).await;
    assert_eq!(r.status, 422);
    assert!(r.expression().starts_with("Condition.verificationStatus"), "{}", r.body);
    bad = condition("active", "O10");
    bad["clinicalStatus"]["coding"][0]["system"] = json!("http://example.org/status");
    assert_eq!(
        his.post("Condition", &bad).await.status,
        422,
        "a status in another system"
    );
    bad = condition("active", "O10");
    bad["abatementDateTime"] = json!(days_ago(1));
    let r = his.post("Condition", &bad).await;
    assert_eq!(r.status, 422, "abated yet active (con-4): {}", r.body);
    bad = condition("active", "O10");
    bad["verificationStatus"]["coding"][0]["code"] = json!("entered-in-error");
    assert_eq!(his.post("Condition", &bad).await.status, 422, "con-5");
    assert_eq!(count_rows(&app, "conditions").await, 3);
    assert_eq!(his.get(&format!("Condition?patient={her}")).await.body["total"], 3);
    assert_eq!(
        his.get(&format!("Condition?patient={her}&clinical-status=active"))
            .await
            .body["total"],
        2
    );
    assert_eq!(
        his.get(&format!(
            "Condition?subject=Patient/{her}&clinical-status=active,resolved"
        ))
        .await
        .body["total"],
        3
    );
    assert_eq!(
        his.get(&format!(
            "Condition?patient={her}&code=http://hl7.org/fhir/sid/icd-10|O24.4"
        ))
        .await
        .body["total"],
        1
    );
    assert_eq!(his.get("Condition?identifier=DX-O13-active").await.body["total"], 1);
    assert_eq!(his.get("Condition?clinical-status=cured").await.status, 400);
    let dup = his
        .post_if_none_exist(
            "Condition",
            &condition("active", "O13"),
            "identifier=urn:oid:1.2.156.112606.9|DX-O13-active",
        )
        .await;
    assert_eq!(dup.status, 200);
    assert_eq!(count_rows(&app, "conditions").await, 3);
}

#[tokio::test]
async fn immunizations_are_recorded_and_searched_by_date_vaccine_and_status() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let her = woman(&his, "蒋丽", 54).await;
    let shot = |code: &str, status: &str, when: Value| {
        let mut v = json!({
            "resourceType": "Immunization",
            "status": status,
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code}]},
            "patient": {"reference": format!("Patient/{her}")},
            "lotNumber": "LOT-1",
        });
        match when {
            Value::String(s) if s.starts_with("20") => v["occurrenceDateTime"] = json!(s),
            other => v["occurrenceString"] = other,
        }
        v
    };
    for (code, status, when) in [
        ("115", "completed", json!(days_ago(30))),
        ("08", "completed", json!(days_ago(10))),
        ("08", "not-done", json!(days_ago(5))),
        ("08", "completed", json!("童年，具体日期不详")),
    ] {
        let r = his.post("Immunization", &shot(code, status, when)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let all = his.get(&format!("Immunization?patient={her}")).await;
    assert_eq!(all.body["total"], 4);
    assert_eq!(
        all.body["entry"][3]["resource"]["occurrenceString"],
        "童年，具体日期不详"
    );
    assert_eq!(
        his.get(&format!("Immunization?patient={her}&date=ge{}", days_ago(12)))
            .await
            .body["total"],
        2
    );
    assert_eq!(
        his.get(&format!(
            "Immunization?patient={her}&vaccine-code=http://hl7.org/fhir/sid/cvx|08"
        ))
        .await
        .body["total"],
        3
    );
    assert_eq!(
        his.get(&format!("Immunization?patient={her}&status=completed"))
            .await
            .body["total"],
        3
    );
    assert_eq!(his.get("Immunization?status=given").await.status, 400);
    let mut bad = shot("08", "done", json!(days_ago(1)));
    let r = his.post("Immunization", &bad).await;
    assert_eq!((r.status, r.expression().as_str()), (422, "Immunization.status"));
    bad = shot("08", "completed", json!(days_ago(1)));
    bad.as_object_mut().unwrap().remove("vaccineCode");
    assert_eq!(his.post("Immunization", &bad).await.status, 422);
    assert_eq!(count_rows(&app, "immunizations").await, 4);
}
