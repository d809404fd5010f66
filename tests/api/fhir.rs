//! FHIR R4 façade (issue 6): Patient interactions, HTTP semantics, errors, access and audit
//! (RELIABILITY.md 17–22). Every resource the server sends is schema-validated by the client.

use serde_json::json;

use crate::fhir_support::{Fhir, patient};
use crate::helpers::{id_number, spawn_app};

async fn audit_count(app: &crate::helpers::TestApp, action: &str, outcome: &str) -> i64 {
    let (action, outcome) = (action.to_string(), outcome.to_string());
    app.db
        .read(move |c| {
            use diesel::prelude::*;
            use mch_chain::storage::schema::audit_events::dsl as a;
            a::audit_events
                .filter(a::action.eq(action))
                .filter(a::outcome.eq(outcome))
                .filter(a::actor_kind.eq("api_token"))
                .count()
                .get_result::<i64>(c)
                .map_err(mch_chain::error::ServiceError::from)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hospital_registers_reads_updates_and_versions_a_patient() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let idn = id_number("340524", "1994-05-06", 10);
    let created = his.post("Patient", &patient("王芳", &idn)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(created.header("location"), Some(format!("Patient/{id}/_history/1")));
    assert_eq!(created.body["meta"]["versionId"], "1");
    // A hospital system never sees the whole ID number (RULES.md privacy; role matrix).
    let shown = created.body["identifier"][0]["value"].as_str().unwrap();
    assert!(
        shown.contains('*') && shown.starts_with("340524") && shown != idn,
        "{shown}"
    );

    let read = his.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(read.body["name"][0]["text"], "王芳");
    assert_eq!(read.body["birthDate"], "1994-05-06");

    // Update: If-Match is required; meta from the client is ignored; the version moves by one.
    let mut changed = read.body.clone();
    changed["telecom"] = json!([{"system": "phone", "value": "13800000001"}]);
    changed["meta"] = json!({"versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z"});
    let no_match = his.put(&format!("Patient/{id}"), &changed, None).await;
    assert_eq!(no_match.status, 428, "{}", no_match.diagnostics());
    let updated = his.put(&format!("Patient/{id}"), &changed, Some("W/\"1\"")).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["meta"]["versionId"], "2");
    assert_eq!(updated.header("etag").as_deref(), Some("W/\"2\""));
    assert_eq!(updated.body["telecom"][0]["value"], "13800000001");
    // The masked identifier we sent back is "unchanged", not a new number.
    let stale = his.put(&format!("Patient/{id}"), &changed, Some("W/\"1\"")).await;
    assert_eq!(stale.status, 412, "a stale If-Match must be refused: {}", stale.body);
    let after = his.get(&format!("Patient/{id}")).await;
    assert_eq!(after.body["meta"]["versionId"], "2", "a refused update changes nothing");

    let history = his.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 2);
    let versions: Vec<&str> = history.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"]);
    let v1 = his.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(v1.status, 200);
    assert!(v1.body.get("telecom").is_none(), "version 1 had no phone");
    assert_eq!(his.get(&format!("Patient/{id}/_history/3")).await.status, 404);

    // An ID number cannot be changed over the interface.
    let mut other = after.body.clone();
    other["identifier"] =
        json!([{"system": "urn:oid:2.16.156.10011.1.3", "value": id_number("340524", "1994-05-06", 12)}]);
    let refused = his.put(&format!("Patient/{id}"), &other, Some("W/\"2\"")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.expression().starts_with("Patient.identifier"));

    // Reads, searches and writes are audited against the token.
    assert!(audit_count(&app, "read", "success").await >= 3);
    assert!(audit_count(&app, "create", "success").await >= 1);
    assert!(audit_count(&app, "update", "success").await >= 1);
}

#[tokio::test]
async fn patient_search_by_identifier_name_birthdate_with_paging() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let mut ids = Vec::new();
    for i in 0..5u32 {
        let idn = id_number("340524", &format!("199{i}-01-0{}", i + 1), 20 + 2 * i);
        let r = his
            .post(
                "Patient",
                &patient(&format!("李{}", ["一", "二", "三", "四", "五"][i as usize]), &idn),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push((r.body["id"].as_str().unwrap().to_string(), idn));
    }
    let by_id = his
        .get(&format!("Patient?identifier=urn:oid:2.16.156.10011.1.3|{}", ids[2].1))
        .await;
    assert_eq!(by_id.body["total"], 1);
    assert_eq!(by_id.body["entry"][0]["resource"]["id"], ids[2].0.as_str());
    let by_value = his.get(&format!("Patient?identifier={}", ids[3].1)).await;
    assert_eq!(by_value.body["total"], 1);
    let by_name = his.get("Patient?name=李&_count=2").await;
    assert_eq!(by_name.body["total"], 5);
    assert_eq!(by_name.body["entry"].as_array().unwrap().len(), 2);
    let next = by_name.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let page2 = his.send(his.http.get(&next)).await;
    assert_eq!(page2.status, 200);
    assert_eq!(page2.body["entry"].as_array().unwrap().len(), 2);
    assert_ne!(
        page2.body["entry"][0]["resource"]["id"],
        by_name.body["entry"][0]["resource"]["id"]
    );
    let born = his.get("Patient?birthdate=ge1992&birthdate=lt1994-01-01").await;
    assert_eq!(born.body["total"], 2, "{}", born.body);
    let exact = his.get("Patient?name:exact=李三").await;
    assert_eq!(exact.body["total"], 1);
    let none = his.get("Patient?name=三").await;
    assert_eq!(
        none.body["total"], 0,
        "name matches from the start, like FHIR string search"
    );
    let contains = his.get("Patient?name:contains=三").await;
    assert_eq!(contains.body["total"], 1);
}

#[tokio::test]
async fn unknown_parameters_types_and_content_types_are_refused_with_an_operation_outcome() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    // RELIABILITY.md 19: strict by default, ignored and reported under lenient handling.
    let strict = his.get("Patient?colour=red").await;
    assert_eq!(strict.status, 400);
    assert!(strict.diagnostics().contains("colour"));
    let lenient = his
        .send(
            his.http
                .get(format!("{}/Patient?colour=red&name=王", his.base))
                .header("prefer", "handling=lenient"),
        )
        .await;
    assert_eq!(lenient.status, 200);
    let self_link = lenient.body["link"][0]["url"].as_str().unwrap();
    assert!(
        self_link.contains("name=") && !self_link.contains("colour"),
        "{self_link}"
    );
    assert!(
        lenient.body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["search"]["mode"] == "outcome")
    );
    assert_eq!(his.get("Medication/1").await.status, 404);
    assert_eq!(his.get("Patient/not%20an%20id").await.status, 400);
    // RELIABILITY.md 21: only FHIR JSON on writes.
    for ct in [
        "text/plain",
        "application/xml",
        "application/fhir+xml",
        "application/x-www-form-urlencoded",
    ] {
        let r = his
            .send(
                his.http
                    .post(format!("{}/Patient", his.base))
                    .header("content-type", ct)
                    .body(patient("王芳", &id_number("340524", "1990-01-01", 2)).to_string()),
            )
            .await;
        assert_eq!(r.status, 415, "{ct}");
    }
    let r = his
        .send(his.http.post(format!("{}/Patient", his.base)).body("{}"))
        .await;
    assert_eq!(r.status, 415, "no content type");
    let broken = his
        .send(
            his.http
                .post(format!("{}/Patient", his.base))
                .header("content-type", "application/fhir+json")
                .body("{\"resourceType\":"),
        )
        .await;
    assert_eq!(broken.status, 400);
    // A misspelt element is refused, never silently dropped.
    let mut typo = patient("王芳", &id_number("340524", "1990-01-01", 2));
    typo["gendr"] = json!("female");
    let r = his.post("Patient", &typo).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.expression(), "Patient.gendr");
    let mut bad_gender = patient("王芳", &id_number("340524", "1990-01-01", 2));
    bad_gender["gender"] = json!("f");
    let r = his.post("Patient", &bad_gender).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.expression(), "Patient.gender");
    let mut bad_id = patient("王芳", "340524199001010000");
    bad_id["birthDate"] = json!("1990-01-01");
    let r = his.post("Patient", &bad_id).await;
    assert_eq!(r.status, 422);
    assert!(r.expression().starts_with("Patient.identifier"), "{}", r.body);
    assert_eq!(
        his.send(his.http.delete(format!("{}/Patient/abc", his.base)))
            .await
            .status,
        405
    );
    let metadata = his.get("metadata").await;
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");
}

#[tokio::test]
async fn no_token_no_data_and_another_area_is_refused_and_audited() {
    let app = spawn_app().await;
    let county = Fhir::new(&app, "COUNTY").await;
    let idn = id_number("340524", "1991-02-03", 32);
    let id = county.post("Patient", &patient("赵敏", &idn)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    // RELIABILITY.md 22: only metadata answers without a token.
    let anon = reqwest::Client::new();
    for path in [
        format!("Patient/{id}"),
        "Patient".to_string(),
        format!("Patient/{id}/_history"),
        format!("Patient/{id}/$everything"),
    ] {
        let r = anon.get(format!("{}/{path}", county.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = anon.get(format!("{}/metadata", county.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let forged = Fhir::with_token(&app, "a".repeat(64));
    assert_eq!(forged.get(&format!("Patient/{id}")).await.status, 401);
    // IDOR: a hospital of the neighbouring county cannot read her, and the attempt is audited.
    let neighbour = Fhir::new(&app, "NBR").await;
    let r = neighbour.get(&format!("Patient/{id}")).await;
    assert_eq!(r.status, 403);
    let found = neighbour.get(&format!("Patient?identifier={idn}")).await;
    assert_eq!(found.body["total"], 0, "a search does not reveal her either");
    let r = neighbour
        .put(
            &format!("Patient/{id}"),
            &json!({"resourceType": "Patient", "id": id, "name": [{"text": "x"}]}),
            Some("W/\"1\""),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(audit_count(&app, "read", "denied").await >= 1);
    assert!(audit_count(&app, "update", "denied").await >= 1);
}

/// RELIABILITY.md 20: injection and path payloads in every search parameter the server declares
/// (read from its own CapabilityStatement, so new types are covered as they are added), in
/// `_sort`, `_count`, `_include`, path ids and headers: a 4xx, or a 200 with no match — never a
/// 5xx, never data.
#[tokio::test]
async fn injection_payloads_in_every_parameter_id_and_header_get_4xx_or_nothing() {
    let app = spawn_app().await;
    let his = Fhir::new(&app, "COUNTY").await;
    let idn = id_number("340524", "1990-06-06", 40);
    let created = his.post("Patient", &patient("孙悦", &idn)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let long = "A".repeat(5000);
    let payloads = [
        "' OR '1'='1",
        "1; DROP TABLE persons;--",
        "' UNION SELECT id_number, name FROM persons--",
        "\" OR \"\"=\"",
        "{\"$gt\": \"\"}",
        "{\"$where\": \"1==1\"}",
        "../../../../etc/passwd",
        "%00",
        "%",
        "_",
        "\\",
        "*",
        "<script>alert(1)</script>",
        "${jndi:ldap://x/a}",
        "ge' OR 1=1--",
        "eq2026-01-01' OR '1'='1",
        "Patient/../../admin",
        "urn:oid:2.16.156.10011.1.3|' OR 1=1--",
        long.as_str(),
    ];
    let metadata = his.get("metadata").await;
    let mut checked = 0;
    for resource in metadata.body["rest"][0]["resource"].as_array().unwrap() {
        let ty = resource["type"].as_str().unwrap();
        let mut params: Vec<String> = resource["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        params.extend(["_sort", "_count", "_offset", "_include", "_elements", "_summary"].map(String::from));
        for param in &params {
            for payload in payloads {
                let url = reqwest::Url::parse_with_params(&format!("{}/{ty}", his.base), &[(param.as_str(), payload)])
                    .unwrap();
                let r = his.send(his.http.get(url)).await;
                checked += 1;
                assert!(r.status < 500, "{ty}?{param}={payload} gave {}", r.status);
                if r.status == 200 {
                    assert_eq!(r.body["total"], 0, "{ty}?{param}={payload} returned data: {}", r.body);
                } else {
                    assert!((400..500).contains(&r.status));
                }
            }
        }
        for payload in payloads {
            let enc: String = url_escape(payload);
            for path in [
                format!("{ty}/{enc}"),
                format!("{ty}/{enc}/_history"),
                format!("{ty}/{id}/_history/{enc}"),
            ] {
                let r = his.send(his.http.get(format!("{}/{path}", his.base))).await;
                assert!((400..500).contains(&r.status), "GET {path} gave {}", r.status);
            }
        }
    }
    assert!(checked > 100);
    // Headers.
    for payload in payloads.iter().filter(|p| !p.contains('\0') && p.len() < 1000) {
        let r = his
            .send(
                his.http
                    .put(format!("{}/Patient/{id}", his.base))
                    .header("content-type", "application/fhir+json")
                    .header("if-match", *payload)
                    .body(created.body.to_string()),
            )
            .await;
        assert!((400..500).contains(&r.status), "If-Match {payload}: {}", r.status);
        let r = his
            .send(
                his.http
                    .post(format!("{}/Patient", his.base))
                    .header("content-type", "application/fhir+json")
                    .header("if-none-exist", *payload)
                    .body(patient("孙悦", &idn).to_string()),
            )
            .await;
        assert!(r.status < 500, "If-None-Exist {payload}: {}", r.status);
        assert_ne!(r.status, 201, "If-None-Exist {payload} must not create a second record");
    }
    let r = reqwest::Client::new()
        .get(format!("{}/Patient/{id}", his.base))
        .header("authorization", "Bearer ' OR '1'='1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let after = his.get(&format!("Patient/{id}")).await;
    assert_eq!(after.body["meta"]["versionId"], "1", "nothing changed her record");
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// RELIABILITY.md 22 for `/fhir`: every type the CapabilityStatement declares × {no token, another
/// county's hospital, an auditor, the woman's own county hospital} × {search, read, history,
/// create, update, delete}. Patient data is for hospitals of her area only; the audit trail for
/// auditors only; the directory for any token; nothing without one.
#[tokio::test]
async fn the_fhir_access_matrix_holds_for_every_declared_type() {
    let app = spawn_app().await;
    let own = Fhir::new(&app, "COUNTY").await;
    let stranger = Fhir::new(&app, "NBR").await;
    let auditor_token =
        mch_chain::auth::service::issue_token_for(&app.db, "PROV", "审计报表", mch_chain::auth::model::Role::Auditor)
            .await
            .unwrap();
    let auditor = Fhir::with_token(&app, auditor_token);
    let anon = Fhir::with_token(&app, String::new());
    let person = own
        .post("Patient", &patient("孙悦", &id_number("340524", "1990-06-06", 40)))
        .await;
    let pid = person.body["id"].as_str().unwrap().to_string();
    let metadata = own.get("metadata").await;
    for resource in metadata.body["rest"][0]["resource"].as_array().unwrap() {
        let ty = resource["type"].as_str().unwrap();
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let directory = matches!(ty, "Organization" | "Location");
        let audit = ty == "AuditEvent";
        // No token: 401 everywhere.
        for path in [ty.to_string(), format!("{ty}/x1"), format!("{ty}/x1/_history")] {
            assert_eq!(anon.get(&path).await.status, 401, "anonymous GET {path}");
        }
        assert_eq!(
            anon.post(ty, &json!({"resourceType": ty})).await.status,
            401,
            "anonymous POST {ty}"
        );
        // Search by role.
        let search = |c: &Fhir| {
            let c = c.clone();
            let ty = ty.to_string();
            async move { c.get(&ty).await.status }
        };
        let expect_own = if audit { 403 } else { 200 };
        let expect_auditor = if audit || directory { 200 } else { 403 };
        assert_eq!(search(&own).await, expect_own, "hospital search {ty}");
        assert_eq!(search(&auditor).await, expect_auditor, "auditor search {ty}");
        // Writes a type does not offer are refused as such, whoever asks.
        if !interactions.contains(&"create") {
            assert_eq!(
                own.post(ty, &json!({"resourceType": ty})).await.status,
                405,
                "POST {ty}"
            );
        }
        if !interactions.contains(&"update") {
            assert_eq!(
                own.put(
                    &format!("{ty}/x1"),
                    &json!({"resourceType": ty, "id": "x1"}),
                    Some("W/\"1\"")
                )
                .await
                .status,
                405,
                "PUT {ty}"
            );
        }
        assert_eq!(
            own.send(own.http.delete(format!("{}/{ty}/x1", own.base))).await.status,
            405,
            "DELETE {ty}"
        );
        // Her data by patient: her county sees it; the neighbouring county's hospital finds nothing.
        if resource["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "patient")
        {
            let theirs = stranger.get(&format!("{ty}?patient={pid}")).await;
            assert!(
                theirs.status == 403 || theirs.body["total"] == 0,
                "{ty}?patient= by a stranger: {}",
                theirs.body
            );
        }
    }
    // IDOR on her record itself, every interaction.
    assert_eq!(stranger.get(&format!("Patient/{pid}")).await.status, 403);
    assert_eq!(stranger.get(&format!("Patient/{pid}/_history")).await.status, 403);
    assert_eq!(stranger.get(&format!("Patient/{pid}/_history/1")).await.status, 403);
    assert_eq!(stranger.get(&format!("Patient/{pid}/$everything")).await.status, 403);
    assert_eq!(
        auditor.get(&format!("Patient/{pid}")).await.status,
        403,
        "auditors do not read clinical records"
    );
}
