//! FHIR batch and transaction Bundles and concurrency (RELIABILITY.md 7–9): a transaction is all
//! or nothing, names each resource once, resolves urn:uuid references; concurrent conditional
//! creates give one row; concurrent transactions on one Patient neither deadlock nor lose updates.

use serde_json::{Value, json};

use crate::fhir_support::{Fhir, patient};
use crate::helpers::{TestApp, id_number, spawn_app};

async fn count(app: &TestApp, table: &'static str) -> i64 {
    app.db
        .read(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                .get_result::<N>(c)
                .map(|r| r.n)
                .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

fn post_entry(full_url: &str, resource: Value) -> Value {
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

#[tokio::test]
async fn a_transaction_commits_whole_and_answers_each_entry() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let existing = his
        .post("Patient", &patient("周琳", &id_number("340524", "1990-01-01", 2)))
        .await;
    let existing_id = existing.body["id"].as_str().unwrap().to_string();
    let mut changed = existing.body.clone();
    changed["telecom"] = json!([{"system": "phone", "value": "13900000000"}]);
    let b = transaction(vec![
        post_entry(
            "urn:uuid:4f6a0c2e-1111-4c0b-9d55-000000000001",
            patient("吴静", &id_number("340524", "1991-01-01", 4)),
        ),
        post_entry(
            "urn:uuid:4f6a0c2e-1111-4c0b-9d55-000000000002",
            patient("郑洁", &id_number("340524", "1992-01-01", 6)),
        ),
        json!({"resource": changed, "request": {"method": "PUT", "url": format!("Patient/{existing_id}"), "ifMatch": "W/\"1\""}}),
        json!({"request": {"method": "GET", "url": format!("Patient/{existing_id}")}}),
    ]);
    let r = his.post("", &b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], "transaction-response");
    let entries = r.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert!(
        entries[0]["response"]["location"]
            .as_str()
            .unwrap()
            .starts_with("Patient/")
    );
    assert_eq!(entries[2]["response"]["status"], "200 OK");
    assert_eq!(entries[2]["response"]["etag"], "W/\"2\"");
    // The GET runs after the PUT (FHIR transaction order) and sees it.
    assert_eq!(entries[3]["resource"]["telecom"][0]["value"], "13900000000");
    assert_eq!(count(&app, "persons").await, 3);
}

#[tokio::test]
async fn a_transaction_with_one_bad_entry_stores_nothing() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let existing = his
        .post("Patient", &patient("周琳", &id_number("340524", "1990-01-01", 2)))
        .await;
    let existing_id = existing.body["id"].as_str().unwrap().to_string();
    let mut changed = existing.body.clone();
    changed["telecom"] = json!([{"system": "phone", "value": "13900000000"}]);
    let persons_before = count(&app, "persons").await;
    let audit_before = count(&app, "audit_events").await;
    let mut bad = patient("钱程", &id_number("340524", "1993-01-01", 8));
    bad["birthDate"] = json!("not-a-date");
    // RELIABILITY.md 8: the bad entry is last, after a create and an update that would succeed.
    let b = transaction(vec![
        post_entry(
            "urn:uuid:0d1e2f30-0000-4000-8000-000000000001",
            patient("吴静", &id_number("340524", "1991-01-01", 4)),
        ),
        json!({"resource": changed, "request": {"method": "PUT", "url": format!("Patient/{existing_id}"), "ifMatch": "W/\"1\""}}),
        post_entry("urn:uuid:0d1e2f30-0000-4000-8000-000000000002", bad),
    ]);
    let r = his.post("", &b).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.expression(), "Bundle.entry[2].resource.birthDate");
    assert!(r.diagnostics().starts_with("Bundle.entry[2]"));
    assert_eq!(
        count(&app, "persons").await,
        persons_before,
        "no entry of a failed transaction is kept"
    );
    assert_eq!(
        count(&app, "audit_events").await,
        audit_before,
        "nor its audit rows: nothing happened"
    );
    let after = his.get(&format!("Patient/{existing_id}")).await;
    assert_eq!(after.body["meta"]["versionId"], "1");
    assert!(after.body.get("telecom").is_none());

    // The same Bundle as a batch: each entry stands alone.
    let mut batch = b.clone();
    batch["type"] = json!("batch");
    let r = his.post("", &batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["type"], "batch-response");
    let statuses: Vec<&str> = r.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201 Created", "200 OK", "422"]);
    assert_eq!(
        r.body["entry"][2]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(count(&app, "persons").await, persons_before + 1);
}

#[tokio::test]
async fn a_transaction_naming_one_resource_twice_fails_whole() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let existing = his
        .post("Patient", &patient("周琳", &id_number("340524", "1990-01-01", 2)))
        .await;
    let id = existing.body["id"].as_str().unwrap().to_string();
    let put = |phone: &str| {
        let mut p = existing.body.clone();
        p["telecom"] = json!([{"system": "phone", "value": phone}]);
        json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}})
    };
    // RELIABILITY.md 9: two updates of one Patient …
    let r = his
        .post("", &transaction(vec![put("13900000001"), put("13900000002")]))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.diagnostics().contains("same resource"));
    // … two entries with one fullUrl …
    let p = patient("吴静", &id_number("340524", "1991-01-01", 4));
    let r = his
        .post(
            "",
            &transaction(vec![
                post_entry("urn:uuid:0d1e2f30-0000-4000-8000-00000000000a", p.clone()),
                post_entry("urn:uuid:0d1e2f30-0000-4000-8000-00000000000a", p.clone()),
            ]),
        )
        .await;
    assert_eq!(r.status, 400);
    // … and two creates of one person (her ID number) fail whole too.
    let r = his
        .post(
            "",
            &transaction(vec![
                post_entry("urn:uuid:0d1e2f30-0000-4000-8000-00000000000b", p.clone()),
                post_entry("urn:uuid:0d1e2f30-0000-4000-8000-00000000000c", p),
            ]),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(count(&app, "persons").await, 1);
    assert_eq!(his.get(&format!("Patient/{id}")).await.body["meta"]["versionId"], "1");
    // Malformed Bundles are refused with a reason.
    assert_eq!(
        his.post("", &json!({"resourceType": "Bundle", "type": "collection"}))
            .await
            .status,
        400
    );
    assert_eq!(his.post("", &json!({"resourceType": "Patient"})).await.status, 400);
    let r = his
        .post(
            "",
            &transaction(vec![
                json!({"request": {"method": "DELETE", "url": format!("Patient/{id}")}}),
            ]),
        )
        .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn sixteen_concurrent_conditional_creates_make_one_patient() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let idn = id_number("340524", "1995-09-09", 14);
    let criteria = format!("identifier=urn:oid:2.16.156.10011.1.3|{idn}");
    let body = patient("冯雪", &idn);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (his, body, criteria) = (his.clone(), body.clone(), criteria.clone());
            tokio::spawn(async move { his.post_if_none_exist("Patient", &body, &criteria).await })
        })
        .collect();
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
    assert_eq!(ids.len(), 1, "every answer names the same Patient");
    assert_eq!(count(&app, "persons").await, 1);
    // Criteria that match several are refused rather than guessed.
    let second = his
        .post("Patient", &patient("冯雨", &id_number("340524", "1995-09-10", 16)))
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(his.get("Patient?name=冯").await.body["total"], 2);
    let r = his
        .post_if_none_exist(
            "Patient",
            &patient("冯霜", &id_number("340524", "1995-09-11", 18)),
            "name=冯",
        )
        .await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn eight_concurrent_transactions_on_one_patient_commit_or_fail_whole() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let existing = his
        .post("Patient", &patient("周琳", &id_number("340524", "1990-01-01", 2)))
        .await;
    let id = existing.body["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let mut p = existing.body.clone();
            p["telecom"] = json!([{"system": "phone", "value": format!("1390000000{i}")}]);
            let b = transaction(vec![
                post_entry(&format!("urn:uuid:0d1e2f30-0000-4000-8000-00000000010{i}"), patient("新生", &id_number("340524", "1996-01-01", 20 + 2 * i))),
                json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}),
            ]);
            let his = his.clone();
            tokio::spawn(async move { (i, his.post("", &b).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = tokio::time::timeout(std::time::Duration::from_secs(60), t)
            .await
            .expect("no deadlock")
            .unwrap();
        match r.status {
            200 => winners.push(i),
            412 | 409 => assert_eq!(r.body["resourceType"], "OperationOutcome"),
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transaction saw version 1");
    // The winner's create and update both landed; no loser left anything behind.
    assert_eq!(count(&app, "persons").await, 2);
    let now = his.get(&format!("Patient/{id}")).await;
    assert_eq!(now.body["meta"]["versionId"], "2");
    assert_eq!(now.body["telecom"][0]["value"], format!("1390000000{}", winners[0]));
    let history = his.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(history.body["total"], 2, "no lost or phantom versions");
}

/// A hospital sends a new woman and her first results in one transaction: the Observations name
/// the Patient by its `urn:uuid:` full URL, which the server resolves to the Patient it creates —
/// in dependency order even when the Observations come first in the Bundle.
#[tokio::test]
async fn urn_uuid_references_resolve_to_the_resources_the_transaction_creates() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let hb = |value: f64| {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
            "subject": {"reference": "urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000aaaa"},
            "effectiveDateTime": "2026-11-20T08:00:00+08:00",
            "valueQuantity": {"value": value, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}
        })
    };
    let b = transaction(vec![
        post_entry("urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000bbbb", hb(112.0)),
        post_entry(
            "urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000aaaa",
            patient("何静", &id_number("340524", "1993-03-03", 22)),
        ),
        post_entry("urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000cccc", hb(118.0)),
    ]);
    let r = his.post("", &b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let entries = r.body["entry"].as_array().unwrap();
    let patient_id = entries[1]["resource"]["id"].as_str().unwrap().to_string();
    for i in [0, 2] {
        assert_eq!(entries[i]["response"]["status"], "201 Created");
        assert_eq!(
            entries[i]["resource"]["subject"]["reference"],
            format!("Patient/{patient_id}")
        );
    }
    let found = his.get(&format!("Observation?patient={patient_id}")).await;
    assert_eq!(found.body["total"], 2);
    // A reference to a urn:uuid that no entry has is refused, and nothing is kept.
    let persons = count(&app, "persons").await;
    let mut dangling = hb(100.0);
    dangling["subject"]["reference"] = json!("urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000dddd");
    let r = his
        .post(
            "",
            &transaction(vec![
                post_entry(
                    "urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000eeee",
                    patient("何雯", &id_number("340524", "1993-03-04", 24)),
                ),
                post_entry("urn:uuid:5e1d7a52-3c1b-4a8e-9f0d-00000000ffff", dangling),
            ]),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.diagnostics().contains("names no entry"), "{}", r.diagnostics());
    assert_eq!(count(&app, "persons").await, persons);
    assert_eq!(count(&app, "observations").await, 2);
}
