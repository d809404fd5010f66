//! FHIR R4 read-only resources of the pathway: EpisodeOfCare (pregnancy), Encounter (visit) and
//! its measurements as Observations, RiskAssessment, Flag, ServiceRequest + Task (referral),
//! Organization + Location (directory), AuditEvent (audit log); `$everything` for a woman and for
//! one pregnancy; access as on the pages (area, access grant after acceptance, drafts) and audit.
//! Every resource the server sends is schema-validated by the client (`fhir_support`).

use serde_json::{Value, json};

use crate::fhir_support::Fhir;
use crate::helpers::{Client, TestApp, days_ago, spawn_app};
use crate::pregnancy::booked;
use mch_chain::auth::model::Role;

async fn facility_id(app: &TestApp, code: &str) -> String {
    mch_chain::facility::service::by_code(&app.db, code).await.unwrap().id
}

/// A township woman booked 20 weeks after her LMP, seen once with every measurement, graded red
/// (凶险性前置胎盘) by the county: (township client, county client, person, pregnancy, visit).
async fn graded_red(app: &TestApp, name: &str, seq: u32) -> (Client, Client, String, String, String) {
    let mut town = app.login("clinician", "TWN-A").await;
    let (person, preg) = booked(&mut town, name, seq, 20).await;
    let (s, visit) = town
        .post_json(
            &format!("/api/pregnancies/{preg}/visits"),
            &json!({
                "weight_kg": "62.5", "height_cm": "158", "systolic_mmhg": "118", "diastolic_mmhg": "76",
                "fundal_height_cm": "20", "abdominal_circumference_cm": "85", "fetal_heart_rate_bpm": "145",
                "fetal_presentation": "cephalic", "oedema": "none", "hb_g_l": "105", "urine_protein": "1+"
            }),
        )
        .await;
    assert_eq!(s, 201, "{visit}");
    let mut county = app.login("clinician", "COUNTY").await;
    let (s, a) = county
        .post_json(
            &format!("/api/pregnancies/{preg}/risk/grade"),
            &json!({"facts": {"factors": ["R2.2"]}, "note": "凶险性前置胎盘"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["colour"], "red");
    let visit = visit["id"].as_str().unwrap().to_string();
    (town, county, person, preg, visit)
}

async fn refer(c: &mut Client, person: &str, to: &str, send: bool) -> String {
    let (s, r) = c
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "emergency", "reason": "阴道大量出血，凶险性前置胎盘", "to_facility": to, "send": send}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_string()
}

async fn act(c: &mut Client, id: &str, action: &str, body: Value) {
    let (s, v) = c.post_json(&format!("/api/referrals/{id}/{action}"), &body).await;
    assert_eq!(s, 200, "{action}: {v}");
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

fn resources_of(bundle: &Value, ty: &str) -> Vec<Value> {
    entries(bundle)
        .into_iter()
        .map(|e| e["resource"].clone())
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn ext<'a>(r: &'a Value, name: &str) -> &'a Value {
    let url = format!("http://mch-chain.example/fhir/StructureDefinition/{name}");
    r["extension"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["url"] == url.as_str()))
        .unwrap_or(&Value::Null)
}

fn by_id<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no resource {id} in {list:?}"))
}

fn coding(v: &Value) -> (String, String) {
    (
        v["coding"][0]["system"].as_str().unwrap_or("").to_string(),
        v["coding"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn a_pregnancy_reads_as_episode_encounter_observations_risk_assessment_and_flag() {
    let app = spawn_app().await;
    let (_town, _county, person, preg, visit) = graded_red(&app, "孙丽", 40).await;
    let twn_a = facility_id(&app, "TWN-A").await;
    let county_id = facility_id(&app, "COUNTY").await;
    let his = Fhir::new(&app, "COUNTY").await;

    // EpisodeOfCare ↔ pregnancy.
    let e = his.get(&format!("EpisodeOfCare/{preg}")).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let ep = &e.body;
    assert_eq!(ep["status"], "active");
    assert_eq!(ep["patient"]["reference"], format!("Patient/{person}"));
    assert_eq!(ep["managingOrganization"]["reference"], format!("Organization/{twn_a}"));
    assert_eq!(ep["period"]["start"], days_ago(0));
    assert!(ep["period"].get("end").is_none());
    assert_eq!(
        coding(&ep["type"][0]),
        (
            "http://mch-chain.example/fhir/CodeSystem/episode-type".into(),
            "pregnancy".into()
        )
    );
    let lmp = days_ago(140);
    let edd = (chrono::NaiveDate::parse_from_str(&lmp, "%Y-%m-%d").unwrap() + chrono::Duration::days(280)).to_string();
    assert_eq!(ext(ep, "pregnancy-lmp")["valueDate"], lmp);
    assert_eq!(ext(ep, "pregnancy-edd")["valueDate"], edd);
    assert_eq!(ext(ep, "pregnancy-dating-method")["valueCoding"]["code"], "lmp");
    assert_eq!(ext(ep, "pregnancy-gravidity")["valueUnsignedInt"], 1);
    assert_eq!(ext(ep, "pregnancy-parity")["valueUnsignedInt"], 0);
    assert_eq!(ep["meta"]["versionId"], "1");
    assert_eq!(e.header("etag").as_deref(), Some("W/\"1\""));
    for (query, total) in [
        (format!("EpisodeOfCare?patient=Patient/{person}"), 1),
        (format!("EpisodeOfCare?patient={person}&status=active"), 1),
        (format!("EpisodeOfCare?patient={person}&status=finished"), 0),
        (format!("EpisodeOfCare?patient={person}&date={}", days_ago(0)), 1),
        (format!("EpisodeOfCare?patient={person}&date=lt{}", days_ago(1)), 0),
        (format!("EpisodeOfCare?_id={preg}"), 1),
        ("EpisodeOfCare?status=active".to_string(), 1),
    ] {
        let r = his.get(&query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}");
    }
    assert_eq!(his.get("EpisodeOfCare?status=bogus").await.status, 400);

    // Encounter ↔ visit, with the Patient included on request.
    let r = his
        .get(&format!("Encounter?patient={person}&_include=Encounter:patient"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1);
    let found = entries(&r.body);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["search"]["mode"], "match");
    assert_eq!(found[1]["search"]["mode"], "include");
    assert_eq!(found[1]["resource"]["resourceType"], "Patient");
    assert_eq!(found[1]["resource"]["id"], person.as_str());
    let enc = &found[0]["resource"];
    assert_eq!(enc["id"], visit.as_str());
    assert_eq!(enc["status"], "finished");
    assert_eq!(enc["class"]["code"], "AMB");
    assert_eq!(
        coding(&enc["type"][0]),
        (
            "http://mch-chain.example/fhir/CodeSystem/visit-kind".into(),
            "antenatal_first".into()
        )
    );
    assert_eq!(enc["subject"]["reference"], format!("Patient/{person}"));
    assert_eq!(enc["episodeOfCare"][0]["reference"], format!("EpisodeOfCare/{preg}"));
    assert_eq!(enc["period"]["start"], days_ago(0));
    assert_eq!(enc["serviceProvider"]["reference"], format!("Organization/{twn_a}"));
    assert_eq!(his.get(&format!("Encounter/{visit}")).await.body["id"], visit.as_str());
    for (query, total) in [
        (format!("Encounter?subject=Patient/{person}"), 1),
        (format!("Encounter?episode-of-care=EpisodeOfCare/{preg}"), 1),
        (format!("Encounter?patient={person}&date=ge{}", days_ago(0)), 1),
        (format!("Encounter?patient={person}&date=lt{}", days_ago(0)), 0),
        (format!("Encounter?_id={visit}"), 1),
    ] {
        let r = his.get(&query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}");
    }

    // RiskAssessment: the visit's Hb 105 made the system propose yellow; the county's red grade
    // replaced that proposal (cancelled, a second version) and is final.
    let r = his.get(&format!("RiskAssessment?patient={person}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let assessments = resources_of(&r.body, "RiskAssessment");
    let statuses: Vec<&str> = assessments.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["cancelled", "final"], "{}", r.body);
    let proposal = &assessments[0];
    assert_eq!(proposal["meta"]["versionId"], "2");
    assert_eq!(
        proposal["prediction"][0]["qualitativeRisk"]["coding"][0]["code"],
        "yellow"
    );
    let red = &assessments[1];
    assert_eq!(
        coding(&red["prediction"][0]["qualitativeRisk"]),
        (
            "http://mch-chain.example/fhir/CodeSystem/risk-colour".into(),
            "red".into()
        )
    );
    assert_eq!(red["prediction"][0]["qualitativeRisk"]["text"], "红色");
    assert!(red["prediction"].as_array().unwrap().len() == 1, "no purple");
    assert!(red["prediction"][0]["rationale"].as_str().unwrap().starts_with("R2.2 "));
    assert_eq!(ext(red, "risk-factor")["extension"][0]["valueCoding"]["code"], "R2.2");
    assert_eq!(ext(red, "risk-factor")["extension"][1]["valueCode"], "red");
    assert_eq!(
        ext(red, "risk-assessing-organization")["valueReference"]["reference"],
        format!("Organization/{county_id}")
    );
    assert_eq!(red["method"]["coding"][0]["code"], "national-2017");
    assert_eq!(red["subject"]["reference"], format!("Patient/{person}"));
    assert_eq!(red["basis"][0]["reference"], format!("EpisodeOfCare/{preg}"));
    assert_eq!(red["note"][0]["text"], "凶险性前置胎盘");
    let red_id = red["id"].as_str().unwrap().to_string();
    assert_eq!(
        his.get(&format!("RiskAssessment/{red_id}")).await.body["status"],
        "final"
    );
    let today = his
        .get(&format!("RiskAssessment?patient={person}&date={}", days_ago(0)))
        .await;
    assert_eq!(today.body["total"], 2);

    // Flag: the current grade, for the hospital's banner.
    let f = his.get(&format!("Flag/{preg}")).await;
    assert_eq!(f.status, 200, "{}", f.body);
    let flag = &f.body;
    assert_eq!(flag["status"], "active");
    assert_eq!(
        coding(&flag["code"]),
        (
            "http://mch-chain.example/fhir/CodeSystem/risk-colour".into(),
            "red".into()
        )
    );
    assert_eq!(flag["code"]["text"], "高危妊娠：红色");
    assert_eq!(flag["category"][0]["coding"][0]["code"], "clinical");
    assert_eq!(flag["subject"]["reference"], format!("Patient/{person}"));
    assert_eq!(flag["author"]["reference"], format!("Organization/{county_id}"));
    assert!(flag["period"]["start"].is_string());
    assert_eq!(
        flag["extension"][0]["valueReference"]["reference"],
        format!("RiskAssessment/{red_id}")
    );
    for (query, total) in [
        (format!("Flag?patient={person}"), 1),
        (format!("Flag?patient={person}&status=active"), 1),
        (format!("Flag?patient={person}&status=inactive"), 0),
        ("Flag?status=active".to_string(), 1),
        (format!("Flag?_id={preg}"), 1),
    ] {
        let r = his.get(&query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}");
    }
    // An ungraded pregnancy has no flag.
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, ungraded) = booked(&mut town, "周燕", 42, 10).await;
    assert_eq!(his.get(&format!("Flag/{ungraded}")).await.status, 404);
    assert_eq!(his.get("Flag?status=active").await.body["total"], 1);
}

#[tokio::test]
async fn a_referral_reads_as_service_request_and_task_through_every_state() {
    let app = spawn_app().await;
    let (mut town, _county, person, preg, _) = graded_red(&app, "钱红", 44).await;
    let twn_a = facility_id(&app, "TWN-A").await;
    let ctyhosp = facility_id(&app, "CTYHOSP").await;
    let his = Fhir::new(&app, "COUNTY").await;
    let sender_his = Fhir::new(&app, "TWN-A").await;
    let mut centre = app.login("clinician", "CTYHOSP").await;

    // A draft is seen only by the facility writing it (as on the referral pages).
    let id = refer(&mut town, &person, "CTYHOSP", false).await;
    let draft = sender_his.get(&format!("Task/{id}")).await;
    assert_eq!(draft.status, 200, "{}", draft.body);
    assert_eq!(draft.body["status"], "draft");
    assert_eq!(
        sender_his.get(&format!("ServiceRequest/{id}")).await.body["status"],
        "draft"
    );
    assert_eq!(his.get(&format!("Task/{id}")).await.status, 403);
    assert_eq!(his.get(&format!("Task?patient={person}")).await.body["total"], 0);

    let sr = |r: &Value| r["status"].as_str().unwrap().to_string();
    let steps: &[(&str, bool, Value, &str, &str, &str)] = &[
        ("send", true, json!({}), "requested", "sent", "active"),
        ("acknowledge", false, json!({}), "received", "acknowledged", "active"),
        ("accept", false, json!({}), "accepted", "accepted", "active"),
        ("depart", true, json!({}), "in-progress", "departed", "active"),
        (
            "arrive",
            false,
            json!({"received_by": "王主治", "note": "BP 90/60"}),
            "in-progress",
            "arrived",
            "active",
        ),
        (
            "feedback",
            false,
            json!({"diagnosis": "凶险性前置胎盘，失血性休克", "treatment": "剖宫产，输血 6 U", "outcome": "survived", "signed_by": "王主治"}),
            "completed",
            "feedback_returned",
            "completed",
        ),
        ("close", true, json!({}), "completed", "closed", "completed"),
    ];
    let mut version = 1;
    for (action, by_sender, body, task_status, state, sr_status) in steps {
        let c = if *by_sender { &mut town } else { &mut centre };
        act(c, &id, action, body.clone()).await;
        version += 1;
        let t = his.get(&format!("Task/{id}")).await;
        assert_eq!(t.status, 200, "{action}: {}", t.body);
        assert_eq!(t.body["status"], *task_status, "Task.status after {action}");
        assert_eq!(
            coding(&t.body["businessStatus"]),
            (
                "http://mch-chain.example/fhir/CodeSystem/referral-state".into(),
                state.to_string()
            )
        );
        assert_eq!(t.body["meta"]["versionId"], version.to_string(), "{action}");
        let s = his.get(&format!("ServiceRequest/{id}")).await;
        assert_eq!(sr(&s.body), *sr_status, "ServiceRequest.status after {action}");
        assert_eq!(s.body["meta"]["versionId"], version.to_string());
    }
    let task = his.get(&format!("Task/{id}")).await.body;
    assert_eq!(task["businessStatus"]["text"], "结束");
    assert_eq!(task["intent"], "order");
    assert_eq!(task["priority"], "stat");
    assert_eq!(task["focus"]["reference"], format!("ServiceRequest/{id}"));
    assert_eq!(task["for"]["reference"], format!("Patient/{person}"));
    assert_eq!(task["requester"]["reference"], format!("Organization/{twn_a}"));
    assert_eq!(task["owner"]["reference"], format!("Organization/{ctyhosp}"));
    assert!(task["executionPeriod"]["start"].is_string() && task["executionPeriod"]["end"].is_string());
    let outputs = task["output"].as_array().unwrap();
    assert_eq!(outputs[0]["type"]["coding"][0]["code"], "diagnosis");
    assert_eq!(outputs[0]["valueString"], "凶险性前置胎盘，失血性休克");
    assert_eq!(outputs[1]["valueCodeableConcept"]["coding"][0]["code"], "survived");
    assert_eq!(outputs[2]["valueString"], "剖宫产，输血 6 U");
    assert!(task["note"][0]["text"].as_str().unwrap().contains("王主治"));
    let req = his.get(&format!("ServiceRequest/{id}")).await.body;
    assert_eq!(req["intent"], "order");
    assert_eq!(req["priority"], "stat");
    assert_eq!(req["category"][0]["coding"][0]["code"], "3457005");
    assert_eq!(req["code"]["coding"][0]["code"], "maternal");
    assert_eq!(req["subject"]["reference"], format!("Patient/{person}"));
    assert_eq!(req["requester"]["reference"], format!("Organization/{twn_a}"));
    assert_eq!(req["performer"][0]["reference"], format!("Organization/{ctyhosp}"));
    assert_eq!(req["reasonCode"][0]["text"], "阴道大量出血，凶险性前置胎盘");
    assert_eq!(req["supportingInfo"][0]["reference"], format!("EpisodeOfCare/{preg}"));
    assert!(req["authoredOn"].is_string());

    // Rejected, then cancelled (revoked); an urgent one is "urgent".
    let second = refer(&mut town, &person, "CTYHOSP", true).await;
    act(&mut centre, &second, "reject", json!({"reason": "ICU 满床"})).await;
    let t = his.get(&format!("Task/{second}")).await.body;
    assert_eq!(
        (t["status"].as_str(), t["businessStatus"]["text"].as_str()),
        (Some("rejected"), Some("拒收"))
    );
    act(&mut town, &second, "cancel", json!({"reason": "病情稳定，就地治疗"})).await;
    assert_eq!(his.get(&format!("Task/{second}")).await.body["status"], "cancelled");
    assert_eq!(
        his.get(&format!("ServiceRequest/{second}")).await.body["status"],
        "revoked"
    );

    // Searches: by patient, status, business status, owner, requester.
    for (query, total) in [
        (format!("Task?patient={person}"), 2),
        (format!("Task?patient={person}&status=completed"), 1),
        (format!("Task?patient={person}&status=cancelled,draft"), 1),
        (format!("Task?business-status=closed&owner=Organization/{ctyhosp}"), 1),
        (format!("Task?requester=Organization/{twn_a}&status=requested"), 0),
        (format!("ServiceRequest?patient={person}&status=revoked"), 1),
        (format!("ServiceRequest?performer=Organization/{ctyhosp}"), 2),
        (format!("ServiceRequest?_id={id}"), 1),
    ] {
        let r = his.get(&query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}: {}", r.body);
    }
    assert_eq!(his.get("Task?status=done").await.status, 400);

    // Redirected to another centre: requested again, now of the new owner.
    let third = refer(&mut town, &person, "CTYHOSP", true).await;
    act(
        &mut centre,
        &third,
        "redirect",
        json!({"to_facility": "PROV", "reason": "需 NICU"}),
    )
    .await;
    let t = his.get(&format!("Task/{third}")).await.body;
    assert_eq!(t["status"], "requested");
    assert_eq!(t["businessStatus"]["coding"][0]["code"], "redirected");
    assert_eq!(
        t["owner"]["reference"],
        format!("Organization/{}", facility_id(&app, "PROV").await)
    );
    assert_eq!(
        his.get(&format!("ServiceRequest/{third}")).await.body["status"],
        "active"
    );
}

#[tokio::test]
async fn everything_is_the_packet_a_receiving_hospital_needs() {
    let app = spawn_app().await;
    let (mut town, _county, person, preg, visit) = graded_red(&app, "吴静", 46).await;
    let id = refer(&mut town, &person, "CTYHOSP", true).await;
    let his = Fhir::new(&app, "COUNTY").await;
    for path in [
        format!("Patient/{person}/$everything"),
        format!("EpisodeOfCare/{preg}/$everything"),
    ] {
        let r = his.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let b = &r.body;
        assert_eq!(b["type"], "searchset");
        let mut types: Vec<String> = entries(b)
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string())
            .collect();
        types.dedup();
        assert_eq!(
            types,
            [
                "Patient",
                "EpisodeOfCare",
                "Encounter",
                "Observation",
                "Condition",
                "RiskAssessment",
                "Flag",
                "ServiceRequest",
                "Task"
            ],
            "{path}"
        );
        // The confirmed red grade's risk factor is a Condition of hers, pointing at its assessment.
        let factors = resources_of(b, "Condition");
        assert_eq!(factors.len(), 1, "{factors:?}");
        let factor = &factors[0];
        assert_eq!(factor["code"]["coding"][0]["code"], "R2.2");
        assert_eq!(factor["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(factor["severity"]["coding"][0]["code"], "red");
        let evidence = factor["evidence"][0]["detail"][0]["reference"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(evidence.starts_with("RiskAssessment/"));
        let fid = factor["id"].as_str().unwrap().to_string();
        assert_eq!(fid, format!("{}.R2.2", evidence.trim_start_matches("RiskAssessment/")));
        let read = his.get(&format!("Condition/{fid}")).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.body["code"]["coding"][0]["code"], "R2.2");
        assert_eq!(resources_of(b, "Patient")[0]["id"], person.as_str());
        assert_eq!(resources_of(b, "EpisodeOfCare")[0]["id"], preg.as_str());
        assert_eq!(resources_of(b, "Encounter")[0]["id"], visit.as_str());
        assert_eq!(resources_of(b, "Flag")[0]["code"]["text"], "高危妊娠：红色");
        assert_eq!(resources_of(b, "ServiceRequest")[0]["id"], id.as_str());
        assert_eq!(resources_of(b, "Task")[0]["status"], "requested");

        // The visit's measurements, LOINC-coded with UCUM units, each pointing at the visit.
        let obs = resources_of(b, "Observation");
        let ids: Vec<&str> = obs.iter().map(|o| o["id"].as_str().unwrap()).collect();
        let suffixes = [
            "ga",
            "bp",
            "weight",
            "height",
            "fundal-height",
            "abdominal-circumference",
            "fetal-heart-rate",
            "fetal-presentation",
            "oedema",
            "hb",
            "urine-protein",
        ];
        assert_eq!(
            ids,
            suffixes.iter().map(|s| format!("{visit}.{s}")).collect::<Vec<_>>(),
            "{path}"
        );
        for o in &obs {
            assert_eq!(o["status"], "final");
            assert_eq!(o["subject"]["reference"], format!("Patient/{person}"));
            assert_eq!(o["encounter"]["reference"], format!("Encounter/{visit}"));
            assert_eq!(o["effectiveDateTime"], days_ago(0));
        }
        // Gestational age on the visit day, from the EDD (LMP 20 weeks ago, visit today).
        let ga = by_id(&obs, &format!("{visit}.ga"));
        assert_eq!(coding(&ga["code"]).1, "18185-9");
        assert_eq!(ga["valueQuantity"]["value"].as_f64(), Some(140.0));
        assert_eq!(ga["valueQuantity"]["code"], "d");
        assert!(ga["note"][0]["text"].as_str().unwrap().contains("20+0"));
        let bp = by_id(&obs, &format!("{visit}.bp"));
        assert_eq!(coding(&bp["code"]), ("http://loinc.org".into(), "85354-9".into()));
        assert_eq!(bp["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(bp["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(bp["component"][0]["valueQuantity"]["value"].as_f64(), Some(118.0));
        assert_eq!(bp["component"][0]["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(
            bp["component"][0]["valueQuantity"]["system"],
            "http://unitsofmeasure.org"
        );
        assert_eq!(bp["component"][1]["code"]["coding"][0]["code"], "8462-4");
        assert_eq!(bp["component"][1]["valueQuantity"]["value"].as_f64(), Some(76.0));
        for (suffix, loinc, value, ucum) in [
            ("weight", "29463-7", 62.5, "kg"),
            ("height", "8302-2", 158.0, "cm"),
            ("fundal-height", "11881-0", 20.0, "cm"),
            ("fetal-heart-rate", "55283-6", 145.0, "/min"),
            ("hb", "718-7", 105.0, "g/L"),
        ] {
            let o = by_id(&obs, &format!("{visit}.{suffix}"));
            assert_eq!(
                coding(&o["code"]),
                ("http://loinc.org".into(), loinc.into()),
                "{suffix}"
            );
            assert_eq!(o["valueQuantity"]["value"].as_f64(), Some(value), "{suffix}");
            assert_eq!(o["valueQuantity"]["code"], ucum, "{suffix}");
            assert_eq!(o["valueQuantity"]["system"], "http://unitsofmeasure.org");
        }
        assert_eq!(
            by_id(&obs, &format!("{visit}.weight"))["category"][0]["coding"][0]["code"],
            "vital-signs"
        );
        assert_eq!(
            by_id(&obs, &format!("{visit}.hb"))["category"][0]["coding"][0]["code"],
            "laboratory"
        );
        let urine = by_id(&obs, &format!("{visit}.urine-protein"));
        assert_eq!(coding(&urine["code"]).1, "20454-5");
        assert_eq!(urine["valueCodeableConcept"]["coding"][0]["code"], "1+");
        let presentation = by_id(&obs, &format!("{visit}.fetal-presentation"));
        assert_eq!(presentation["valueCodeableConcept"]["text"], "头位");
        // Fetal sex is never part of the record, so never part of the packet.
        let text = b.to_string();
        assert!(!text.contains("性别") && !text.contains("fetal-sex") && !text.contains("11882-8"));
    }
    // Every Observation in the packet can be read on its own, by the id the packet gives.
    let bp = his.get(&format!("Observation/{visit}.bp")).await;
    assert_eq!(bp.status, 200, "{}", bp.body);
    assert_eq!(bp.body["encounter"]["reference"], format!("Encounter/{visit}"));
    assert_eq!(
        his.get(&format!("Observation/{visit}.no-such-measurement"))
            .await
            .status,
        404
    );
    // The pregnancy's packet holds that one pregnancy; an unknown one is not found.
    let one = his.get(&format!("EpisodeOfCare/{preg}/$everything")).await;
    assert_eq!(resources_of(&one.body, "EpisodeOfCare").len(), 1);
    assert_eq!(his.get("EpisodeOfCare/not-there/$everything").await.status, 404);
}

#[tokio::test]
async fn a_centre_outside_her_county_sees_her_packet_only_after_accepting() {
    let app = spawn_app().await;
    let (mut town, _county, person, preg, visit) = graded_red(&app, "郑敏", 48).await;
    let id = refer(&mut town, &person, "NBR", true).await;
    let nbr = Fhir::new(&app, "NBR").await;
    // The request itself is addressed to the centre: it sees it before deciding.
    let t = nbr.get(&format!("Task/{id}")).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["status"], "requested");
    assert_eq!(
        nbr.get(&format!("Task?owner=Organization/{}", facility_id(&app, "NBR").await))
            .await
            .body["total"],
        1
    );
    // Her record is not open to it yet.
    for path in [
        format!("Patient/{person}/$everything"),
        format!("EpisodeOfCare/{preg}/$everything"),
        format!("EpisodeOfCare/{preg}"),
        format!("Encounter/{visit}"),
        format!("Flag/{preg}"),
        format!("Encounter?patient={person}"),
    ] {
        let r = nbr.get(&path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let mut centre = app.login("clinician", "NBR").await;
    act(&mut centre, &id, "accept", json!({})).await;
    let r = nbr.get(&format!("Patient/{person}/$everything")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for ty in [
        "EpisodeOfCare",
        "Encounter",
        "Observation",
        "RiskAssessment",
        "Flag",
        "ServiceRequest",
        "Task",
    ] {
        assert!(
            !resources_of(&r.body, ty).is_empty(),
            "{ty} in the packet after acceptance"
        );
    }
    assert_eq!(resources_of(&r.body, "Task")[0]["status"], "accepted");
    let r = nbr.get(&format!("EpisodeOfCare/{preg}/$everything")).await;
    assert_eq!(r.status, 200);
    assert_eq!(nbr.get(&format!("Encounter?patient={person}")).await.body["total"], 1);
    // Without a patient, a search covers only the centre's own county: she is not listed there.
    assert_eq!(nbr.get("EpisodeOfCare?status=active").await.body["total"], 0);
    // Cancelling ends the grant.
    act(&mut town, &id, "cancel", json!({"reason": "病情稳定"})).await;
    assert_eq!(nbr.get(&format!("EpisodeOfCare/{preg}")).await.status, 403);
}

#[tokio::test]
async fn another_county_is_refused_every_record_and_the_refusals_are_audited() {
    let app = spawn_app().await;
    let (mut town, _county, person, preg, visit) = graded_red(&app, "冯雪", 50).await;
    let id = refer(&mut town, &person, "CTYHOSP", true).await;
    let his = Fhir::new(&app, "COUNTY").await;
    let assessment = his.get(&format!("RiskAssessment?patient={person}")).await.body["entry"][1]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Her own county's hospital finds the assessment and the visit by id (the neighbour, below, does not).
    for path in [
        format!("RiskAssessment?_id={assessment}"),
        format!("Encounter?_id={visit}"),
    ] {
        assert_eq!(his.get(&path).await.body["total"], 1, "{path}");
    }
    let nbr = Fhir::new(&app, "NBR").await;
    for path in [
        format!("EpisodeOfCare/{preg}"),
        format!("Encounter/{visit}"),
        format!("RiskAssessment/{assessment}"),
        format!("Flag/{preg}"),
        format!("ServiceRequest/{id}"),
        format!("Task/{id}"),
        format!("EpisodeOfCare?patient={person}"),
        format!("RiskAssessment?patient={person}"),
        format!("Flag?patient={person}"),
        format!("Patient/{person}/$everything"),
    ] {
        let r = nbr.get(&path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    // Searches without a patient stay in the caller's county; by id they find nothing of hers.
    for path in [
        "EpisodeOfCare".to_string(),
        "Encounter".to_string(),
        "RiskAssessment".to_string(),
        "Flag".to_string(),
        "Task".to_string(),
        format!("ServiceRequest?patient={person}"),
        format!("EpisodeOfCare?_id={preg}"),
        format!("Encounter?_id={visit}"),
        format!("RiskAssessment?_id={assessment}"),
    ] {
        let r = nbr.get(&path).await;
        assert_eq!((r.status, r.body["total"].as_i64()), (200, Some(0)), "{path}");
    }
    let auditor = Fhir::with_token(
        &app,
        mch_chain::auth::service::issue_token_for(&app.db, "PROV", "审计工具", Role::Auditor)
            .await
            .unwrap(),
    );
    let denied = auditor
        .get(&format!("AuditEvent?patient={person}&outcome=4&agent=NBR HIS"))
        .await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert!(denied.body["total"].as_i64().unwrap() >= 10, "{}", denied.body);
    for e in entries(&denied.body) {
        assert_eq!(e["resource"]["outcome"], "4");
        assert_eq!(
            e["resource"]["entity"][0]["what"]["reference"],
            format!("Patient/{person}")
        );
    }
}

#[tokio::test]
async fn the_audit_log_is_for_auditors_and_shows_who_read_her_record() {
    let app = spawn_app().await;
    let (_town, _county, person, preg, _) = graded_red(&app, "陈芳", 52).await;
    let his = Fhir::new(&app, "COUNTY").await;
    assert_eq!(his.get(&format!("Patient/{person}")).await.status, 200);
    assert_eq!(his.get(&format!("EpisodeOfCare/{preg}")).await.status, 200);
    // A hospital system may not read the audit log (and the attempt is itself audited).
    let r = his.get("AuditEvent").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(his.get("AuditEvent/1").await.status, 403);

    let token = mch_chain::auth::service::issue_token_for(&app.db, "PROV", "省审计工具", Role::Auditor)
        .await
        .unwrap();
    let auditor = Fhir::with_token(&app, token);
    // An auditor reads no clinical record.
    assert_eq!(auditor.get(&format!("Patient/{person}")).await.status, 403);
    let r = auditor
        .get(&format!("AuditEvent?patient=Patient/{person}&agent=COUNTY HIS"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = resources_of(&r.body, "AuditEvent");
    assert_eq!(events.len(), 2, "{}", r.body);
    // Newest first: the EpisodeOfCare read, then the Patient read.
    let pregnancy_read = &events[0];
    assert_eq!(pregnancy_read["type"]["code"], "rest");
    assert_eq!(pregnancy_read["subtype"][0]["code"], "read");
    assert_eq!(pregnancy_read["action"], "R");
    assert_eq!(pregnancy_read["outcome"], "0");
    assert_eq!(pregnancy_read["agent"][0]["name"], "COUNTY HIS");
    assert_eq!(pregnancy_read["agent"][0]["requestor"], true);
    assert_eq!(
        pregnancy_read["agent"][0]["role"][0]["coding"][0]["code"],
        "hospital_system"
    );
    assert_eq!(
        pregnancy_read["agent"][0]["location"]["reference"],
        format!("Location/{}", facility_id(&app, "COUNTY").await)
    );
    assert_eq!(
        pregnancy_read["entity"][0]["what"]["reference"],
        format!("Patient/{person}")
    );
    assert_eq!(
        pregnancy_read["entity"][1]["what"]["reference"],
        format!("EpisodeOfCare/{preg}")
    );
    assert_eq!(
        pregnancy_read["source"]["observer"]["display"],
        "mch-chain 妇幼健康一条链"
    );
    assert_eq!(events[1]["entity"][0]["what"]["reference"], format!("Patient/{person}"));
    assert_eq!(events[1]["entity"][0]["description"], "interface read");
    // One event by its id; the same by entity.
    let id = pregnancy_read["id"].as_str().unwrap();
    let one = auditor.get(&format!("AuditEvent/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["recorded"], pregnancy_read["recorded"]);
    let by_entity = auditor
        .get(&format!("AuditEvent?entity=EpisodeOfCare/{preg}&agent=COUNTY HIS"))
        .await;
    assert_eq!(by_entity.body["total"], 1);
    assert_eq!(auditor.get("AuditEvent/999999").await.status, 404);
    // The hospital's refused attempt is there, refused.
    let refused = auditor.get("AuditEvent?agent=COUNTY HIS&outcome=4").await;
    assert_eq!(refused.body["total"], 2, "{}", refused.body);
    // Paging.
    let page = auditor.get(&format!("AuditEvent?patient={person}&_count=2")).await;
    assert_eq!(entries(&page.body).len(), 2);
    assert!(page.body["link"].to_string().contains("next"));
    // Reading the log is itself audited, naming whose log was read.
    let own = auditor.get("AuditEvent?agent=省审计工具").await;
    let searches = resources_of(&own.body, "AuditEvent");
    assert!(
        searches
            .iter()
            .any(|e| e["entity"][0]["what"]["reference"] == format!("Patient/{person}")
                && e["subtype"][0]["code"] == "search-type"),
        "{}",
        own.body
    );
    assert!(
        searches
            .iter()
            .any(|e| e["subtype"][0]["code"] == "read" && e["entity"].to_string().contains("audit_log"))
    );
}

#[tokio::test]
async fn the_directory_reads_as_organizations_and_locations_for_any_token() {
    let app = spawn_app().await;
    let ctyhosp = facility_id(&app, "CTYHOSP").await;
    let admin = app.system_actor("PROV", Role::Admin).await;
    mch_chain::facility::service::update_directory(
        &app.db,
        &admin,
        ctyhosp.clone(),
        mch_chain::facility::model::DirectoryUpdate {
            capabilities: vec![
                "maternal_critical_care".into(),
                "neonatal_critical_care".into(),
                "icu".into(),
                "blood_bank".into(),
            ],
            duty_phone: Some("0550-1234567".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let his = Fhir::new(&app, "TWN-B").await;
    let auditor = Fhir::with_token(
        &app,
        mch_chain::auth::service::issue_token_for(&app.db, "PROV", "审计", Role::Auditor)
            .await
            .unwrap(),
    );
    for client in [&his, &auditor] {
        let o = client.get(&format!("Organization/{ctyhosp}")).await;
        assert_eq!(o.status, 200, "{}", o.body);
        assert_eq!(o.body["name"], "示范县人民医院");
        assert_eq!(o.body["identifier"][0]["system"], "urn:mch-chain:facility");
        assert_eq!(o.body["identifier"][0]["value"], "CTYHOSP");
        assert_eq!(o.body["type"][1]["coding"][0]["code"], "hospital");
        assert_eq!(o.body["type"][2]["coding"][0]["code"], "county");
        assert!(o.body["extension"].to_string().contains("maternal_critical_care"));
        assert_eq!(ext(&o.body["address"][0], "gb2260-division")["valueCode"], "340524");
        let l = client.get(&format!("Location/{ctyhosp}")).await;
        assert_eq!(l.status, 200, "{}", l.body);
        assert_eq!(l.body["telecom"][0]["value"], "0550-1234567");
        assert_eq!(
            l.body["managingOrganization"]["reference"],
            format!("Organization/{ctyhosp}")
        );
        assert_eq!(l.body["physicalType"]["coding"][0]["code"], "si");
    }
    for (query, total) in [
        ("Organization?name=示范县", 2),
        ("Organization?name:exact=示范县人民医院", 1),
        ("Organization?name:contains=妇幼", 3),
        ("Organization?identifier=urn:mch-chain:facility|NBR", 1),
        ("Organization?identifier=NBR", 1),
        ("Organization?identifier=urn:other|NBR", 0),
        ("Organization?type=hospital", 1),
        ("Organization?type=township", 2),
        ("Location?name=邻县", 1),
        ("Organization", 6),
    ] {
        let r = his.get(query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}");
    }
    assert_eq!(his.get("Organization/nope").await.status, 404);
    // The CapabilityStatement lists every type served.
    let meta = his.get("metadata").await;
    let types: Vec<&str> = meta.body["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    for t in [
        "Patient",
        "EpisodeOfCare",
        "Encounter",
        "RiskAssessment",
        "Flag",
        "ServiceRequest",
        "Task",
        "Organization",
        "Location",
        "AuditEvent",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
}
