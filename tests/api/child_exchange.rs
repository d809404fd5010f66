//! The child's record leaving and arriving (issue 11, item 7): the child as a FHIR Patient with her
//! birth time and birth order, her mother as RelatedPerson, her health visits as Encounters with
//! LOINC/UCUM growth Observations and WHO z-scores, her vaccinations as Immunizations, the
//! newborns in the mother's `$everything`; doses from an immunisation information system over HL7
//! VXU^V04, recorded once, refused field by field. Every FHIR resource is schema-validated by the
//! client (`fhir_support`).

use serde_json::{Value, json};

use crate::child::delivered;
use crate::fhir_support::Fhir;
use crate::helpers::{TestApp, days_ago, id_number};
use crate::hl7::{Conn, msa};

fn resources_of(bundle: &Value, ty: &str) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn by_id<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list:?}"))
}

fn coding(v: &Value) -> (String, String) {
    (
        v["coding"][0]["system"].as_str().unwrap_or("").to_string(),
        v["coding"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

/// Twins born yesterday in 东关镇 (the first seen today with her measurements and given HepB):
/// (township clinician, mother, pregnancy, first baby, second baby, the visit).
async fn twins(app: &TestApp) -> (crate::helpers::Client, String, String, String, String, String) {
    let babies = json!([
        {"sex": "female", "birth_time": "08:10", "weight_g": "2400", "length_cm": "46", "apgar_1": "8", "apgar_5": "9"},
        {"sex": "male", "birth_time": "08:25", "weight_g": "2650", "length_cm": "48", "apgar_1": "9", "apgar_5": "10"},
    ]);
    let (mut c, mother, preg, birth) = delivered(app, "赵敏", 60, 2, babies).await;
    let first = birth["children"][0]["id"].as_str().unwrap().to_string();
    let second = birth["children"][1]["id"].as_str().unwrap().to_string();
    let (s, v) = c
        .post_json(
            &format!("/api/children/{first}/visits"),
            &json!({"visit_date": days_ago(0), "weight_kg": "2.4", "length_cm": "46.5", "head_circumference_cm": "33",
                    "feeding": "exclusive_breast"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let visit = v["id"].as_str().unwrap().to_string();
    let (s, imm) = c
        .post_json(
            &format!("/api/children/{first}/vaccinations"),
            &json!({"vaccine": "HepB", "given_at": format!("{}T15:00", days_ago(1)), "lot_number": "202511A",
                    "manufacturer": "某生物制品有限公司", "expiry_date": days_ago(-300), "checks_done": "1"}),
        )
        .await;
    assert_eq!(s, 201, "{imm}");
    (c, mother, preg, first, second, visit)
}

#[tokio::test]
async fn a_childs_everything_has_her_birth_her_mother_her_growth_visits_and_vaccinations() {
    let app = crate::helpers::spawn_app().await;
    let (_c, mother, preg, first, second, visit) = twins(&app).await;
    let his = Fhir::new(&app, "COUNTY").await;

    // Her Patient: the birth time on birthDate (HL7 core extension), first of twins.
    let p = his.get(&format!("Patient/{first}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["birthDate"], days_ago(1));
    assert_eq!(
        p.body["_birthDate"]["extension"][0]["url"],
        "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    );
    assert_eq!(
        p.body["_birthDate"]["extension"][0]["valueDateTime"],
        format!("{}T08:10:00+08:00", days_ago(1))
    );
    assert_eq!(p.body["multipleBirthInteger"], 1);
    assert_eq!(p.body["gender"], "female");
    let p2 = his.get(&format!("Patient/{second}")).await;
    assert_eq!(p2.body["multipleBirthInteger"], 2);
    // A woman (no birth record here) has neither.
    let m = his.get(&format!("Patient/{mother}")).await;
    assert!(m.body.get("_birthDate").is_none() && m.body.get("multipleBirthInteger").is_none());

    // Her packet.
    let e = his.get(&format!("Patient/{first}/$everything")).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let b = &e.body;
    let patients = resources_of(b, "Patient");
    assert_eq!(patients.len(), 1, "only her own Patient: {patients:?}");
    assert_eq!(patients[0]["id"], first.as_str());
    let related = resources_of(b, "RelatedPerson");
    assert_eq!(related.len(), 1);
    let rp = &related[0];
    assert_eq!(rp["id"], format!("{first}.mother"));
    assert_eq!(rp["patient"]["reference"], format!("Patient/{first}"));
    assert_eq!(
        coding(&rp["relationship"][0]),
        ("http://terminology.hl7.org/CodeSystem/v3-RoleCode".into(), "MTH".into())
    );
    assert_eq!(rp["name"][0]["text"], "赵敏");
    assert_eq!(
        rp["extension"][0]["valueReference"]["reference"],
        format!("Patient/{mother}")
    );
    assert!(
        rp["identifier"][0]["value"].as_str().unwrap().contains('*'),
        "the mother's ID number masked for a hospital system: {rp}"
    );
    // The health visit: an Encounter of the newborn home visit contact.
    let encounters = resources_of(b, "Encounter");
    assert_eq!(encounters.len(), 1, "{encounters:?}");
    let enc = &encounters[0];
    assert_eq!(enc["id"], visit.as_str());
    assert_eq!(enc["class"]["code"], "HH", "新生儿家庭访视 is a home visit");
    assert_eq!(
        coding(&enc["type"][0]),
        (
            "http://mch-chain.example/fhir/CodeSystem/child-contact".into(),
            "newborn_home".into()
        )
    );
    assert_eq!(enc["subject"]["reference"], format!("Patient/{first}"));
    assert!(enc.get("episodeOfCare").is_none());
    // Growth Observations: LOINC codes, UCUM units, WHO z-scores as components.
    let obs = resources_of(b, "Observation");
    let ids: Vec<&str> = obs.iter().map(|o| o["id"].as_str().unwrap()).collect();
    for suffix in ["weight", "length", "head-circumference", "bmi"] {
        assert!(
            ids.contains(&format!("{visit}.{suffix}").as_str()),
            "{suffix} in {ids:?}"
        );
    }
    for (suffix, code, unit, value) in [
        ("weight", "29463-7", "kg", 2.4),
        ("length", "8306-3", "cm", 46.5),
        ("head-circumference", "9843-4", "cm", 33.0),
    ] {
        let o = by_id(&obs, &format!("{visit}.{suffix}"));
        assert_eq!(coding(&o["code"]), (LOINC.into(), code.into()), "{suffix}");
        assert_eq!(o["valueQuantity"]["system"], UCUM);
        assert_eq!(o["valueQuantity"]["code"], unit);
        assert_eq!(o["valueQuantity"]["value"], value);
        assert_eq!(o["encounter"]["reference"], format!("Encounter/{visit}"));
        assert_eq!(o["effectiveDateTime"], days_ago(0));
        assert_eq!(o["status"], "final");
    }
    let weight = by_id(&obs, &format!("{visit}.weight"));
    let wfa = weight["component"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"]["coding"][0]["code"] == "weight-for-age")
        .unwrap_or_else(|| panic!("{weight}"));
    assert!(
        wfa["valueQuantity"]["value"].as_f64().unwrap() < -1.0,
        "2.4 kg at 1 day: {wfa}"
    );
    let length = by_id(&obs, &format!("{visit}.length"));
    assert_eq!(
        length["component"][0]["code"]["coding"][0]["code"],
        "length-height-for-age"
    );
    let bmi = by_id(&obs, &format!("{visit}.bmi"));
    assert_eq!(coding(&bmi["code"]), (LOINC.into(), "39156-5".into()));
    assert_eq!(bmi["valueQuantity"]["code"], "kg/m2");
    assert_eq!(
        bmi["derivedFrom"][0]["reference"],
        format!("Observation/{visit}.weight")
    );
    // Her vaccination, in her packet (and only hers).
    let imms = resources_of(b, "Immunization");
    assert_eq!(imms.len(), 1);
    assert_eq!(
        coding(&imms[0]["vaccineCode"]),
        ("urn:mch-chain:nip-vaccine".into(), "HepB".into())
    );

    // Each of them reads on its own, and searches find them by her.
    for path in [
        format!("Encounter/{visit}"),
        format!("Observation/{visit}.weight"),
        format!("Observation/{visit}.bmi"),
        format!("RelatedPerson/{first}.mother"),
    ] {
        let r = his.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(
        his.get(&format!("Observation/{visit}.hb")).await.status,
        404,
        "no Hb measured"
    );
    assert_eq!(his.get(&format!("RelatedPerson/{first}.father")).await.status, 404);
    for (query, total) in [
        (format!("Observation?patient={first}"), 4),
        (format!("Observation?patient={first}&code=http://loinc.org|8306-3"), 1),
        (format!("Observation?patient={first}&code=29463-7,9843-4"), 2),
        (format!("Observation?subject=Patient/{first}&date={}", days_ago(0)), 4),
        (format!("Observation?patient={first}&date=lt{}", days_ago(0)), 0),
        (format!("Observation?patient={first}&status=preliminary"), 0),
        (format!("Observation?patient={first}&_id={visit}.weight"), 1),
        (format!("Encounter?patient={first}"), 1),
        (format!("Encounter?_id={visit}"), 1),
        (format!("Encounter?patient={mother}"), 0),
        (format!("RelatedPerson?patient={first}"), 1),
        (format!("RelatedPerson?_id={second}.mother"), 1),
        ("RelatedPerson".to_string(), 2),
    ] {
        let r = his.get(&query).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        assert_eq!(r.body["total"], total, "{query}: {}", r.body);
    }
    // One sequence, paged as one.
    let page = his.get(&format!("Observation?patient={first}&_count=3")).await;
    assert_eq!(resources_of(&page.body, "Observation").len(), 3);
    let page2 = his
        .get(&format!("Observation?patient={first}&_count=3&_offset=3"))
        .await;
    assert_eq!(resources_of(&page2.body, "Observation").len(), 1);

    // The mother's packet shows her newborns (their Patients and the RelatedPerson links), not
    // their own records.
    let e = his.get(&format!("Patient/{mother}/$everything")).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let patients: Vec<String> = resources_of(&e.body, "Patient")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(patients, [mother.clone(), first.clone(), second.clone()]);
    let links: Vec<String> = resources_of(&e.body, "RelatedPerson")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(links, [format!("{first}.mother"), format!("{second}.mother")]);
    let child_patient = by_id(&resources_of(&e.body, "Patient"), &second).clone();
    assert_eq!(child_patient["multipleBirthInteger"], 2);
    assert!(resources_of(&e.body, "Immunization").is_empty());
    assert!(
        resources_of(&e.body, "Encounter")
            .iter()
            .all(|x| x["subject"]["reference"] == format!("Patient/{mother}"))
    );
    // The pregnancy's packet carries its babies too.
    let e = his.get(&format!("EpisodeOfCare/{preg}/$everything")).await;
    assert_eq!(resources_of(&e.body, "RelatedPerson").len(), 2);

    // Another county sees none of it; its searches find nothing.
    let stranger = Fhir::new(&app, "NBR").await;
    // Refused (403, audited) like the other pathway types when the search names her; the clinical
    // types' searches answer nothing instead (README "Rules of the clinical types").
    for path in [
        format!("Patient/{first}/$everything"),
        format!("RelatedPerson/{first}.mother"),
        format!("Encounter/{visit}"),
        format!("Observation/{visit}.weight"),
        format!("RelatedPerson?patient={first}"),
        format!("Encounter?patient={first}"),
    ] {
        assert_eq!(stranger.get(&path).await.status, 403, "{path}");
    }
    for query in [
        format!("Observation?patient={first}"),
        format!("RelatedPerson?_id={first}.mother"),
        "RelatedPerson".to_string(),
    ] {
        let r = stranger.get(&query).await;
        assert_eq!((r.status, r.body["total"].as_i64()), (200, Some(0)), "{query}");
    }

    // Every record shown is audited: the mother's details read through her child's link too.
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{mother}")).await;
    let events = log["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["detail"] == "interface read (mother of a child)"),
        "{log}"
    );
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{first}")).await;
    let events = log["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["entity_type"] == "child_visit"), "{log}");
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor_name"].as_str().unwrap_or("").contains("NBR")),
        "the other county's refusals: {log}"
    );
}

// ------------------------------------------------------------------ HL7 VXU^V04

/// One segment with the given fields at their positions.
fn segment(id: &str, fields: &[(usize, &str)]) -> String {
    let last = fields.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let mut out = id.to_string();
    for n in 1..=last {
        out.push('|');
        if let Some((_, v)) = fields.iter().find(|(k, _)| *k == n) {
            out.push_str(v);
        }
    }
    out
}

fn hl7_day(day: &str) -> String {
    day.replace('-', "")
}

/// A VXU^V04 from the county's immunisation information system for the child with this ID
/// number, with the given RXA (and RXR) segments.
fn vxu(control: &str, id: &str, birth: &str, doses: &[String]) -> String {
    vxu_named(control, id, "", birth, doses)
}

/// [`vxu`] with PID-5 naming the child.
fn vxu_named(control: &str, id: &str, name: &str, birth: &str, doses: &[String]) -> String {
    let mut m = format!(
        "MSH|^~\\&|IIS|CDC340524|MCH|CENTRE|20260215093000||VXU^V04^VXU_V04|{control}|P|2.5.1\r\
         PID|1||{id}^^^^NNCHN||{name}||{}|F\r",
        hl7_day(birth)
    );
    for d in doses {
        m.push_str(&format!("ORC|RE||IIS-{control}\r{d}\r"));
    }
    m
}

/// HepB at 10:00 on the birth day, a new record with lot, expiry, holder, route and site.
fn hepb(birth: &str) -> String {
    let given = format!("{}1000", hl7_day(birth));
    let expiry = hl7_day(&days_ago(-300));
    format!(
        "{}\rRXR|IM^肌内注射^HL70162|RD^右三角肌^HL70163",
        segment(
            "RXA",
            &[
                (1, "0"),
                (2, "1"),
                (3, &given),
                (5, "HepB^乙肝疫苗^99NIP"),
                (6, "0.5"),
                (7, "mL^^UCUM"),
                (9, "00^新接种记录^NIP001"),
                (15, "202511A"),
                (16, &expiry),
                (17, "^某生物制品有限公司"),
                (20, "CP"),
                (21, "A"),
            ],
        )
    )
}

/// BCG by its CVX code, historical information (no lot), known by its day.
fn bcg(day: &str) -> String {
    segment(
        "RXA",
        &[
            (1, "0"),
            (2, "1"),
            (3, &hl7_day(day)),
            (5, "19^BCG^CVX"),
            (6, "999"),
            (9, "01^历史记录^NIP001"),
            (20, "CP"),
        ],
    )
}

fn errors(ack: &mch_chain::hl7::er7::Message) -> Vec<(String, String, String)> {
    (1..=10)
        .map_while(|i| {
            let at = ack.get(&format!("ERR[{i}]-2")).unwrap()?;
            Some((
                at,
                ack.get(&format!("ERR[{i}]-3.1")).unwrap().unwrap_or_default(),
                ack.get(&format!("ERR[{i}]-4")).unwrap().unwrap_or_default(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_vxu_from_the_immunisation_system_records_each_dose_once_and_refuses_bad_values_by_field() {
    let app = crate::helpers::spawn_app().await;
    mch_chain::hl7::service::add_sender(&app.db, "IIS", "CDC340524", "COUNTY", "utf8")
        .await
        .unwrap();
    let (mut c, mother, _, birth) = delivered(
        &app,
        "吴丽",
        62,
        1,
        json!([{"sex": "female", "weight_g": "3300", "birth_time": "08:00"}]),
    )
    .await;
    let child = birth["children"][0]["id"].as_str().unwrap().to_string();
    let born = days_ago(1);
    let id = id_number("340524", &born, 2);
    let (s, r) = c
        .post_json(&format!("/api/children/{child}/identity"), &json!({"id_number": id}))
        .await;
    assert_eq!(s, 200, "{r}");

    let mut conn = Conn::open(&app).await;
    // The system knows her by her registered name; the record still has her delivery-room name
    // (吴丽之女): that names her, it does not contradict her.
    let first = vxu_named("VXU-1", &id, "王^小雨", &born, &[hepb(&born), bcg(&days_ago(0))]);
    let acks = conn.exchange(&first).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(msa(&acks[0]), ("AA".to_string(), "VXU-1".to_string()));
    assert!(errors(&acks[0]).is_empty(), "{}", acks[0].text());
    // Stored and processed before the ACK: the child page shows both doses done.
    let (_, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(chart["vaccinations"].as_array().unwrap().len(), 2, "{chart}");
    let status = |chart: &Value, code: &str| {
        chart["schedule"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .map(|i| i["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(&chart, "HepB-1").as_deref(), Some("done"));
    assert_eq!(status(&chart, "BCG-1").as_deref(), Some("done"));

    // A resend (same MSH-10, same bytes) gets the first answer; nothing is recorded twice.
    let again = conn.exchange(&first).await;
    assert_eq!(again[0].text(), acks[0].text());
    // The same doses under a new control id: recorded once, and the sender is told.
    let acks = conn
        .exchange(&vxu("VXU-2", &id, &born, &[hepb(&born), bcg(&days_ago(0))]))
        .await;
    assert_eq!(msa(&acks[0]).0, "AA");
    let errs = errors(&acks[0]);
    assert_eq!(
        errs.iter().map(|e| (e.0.as_str(), e.2.as_str())).collect::<Vec<_>>(),
        [("RXA^1^5", "W"), ("RXA^2^5", "W")],
        "{}",
        acks[0].text()
    );
    let (_, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(chart["vaccinations"].as_array().unwrap().len(), 2);

    // A date that is not one: AE naming RXA-3, nothing of the message kept (the good dose with it).
    let bad_time = segment("RXA", &[(1, "0"), (2, "1"), (3, "20261345"), (5, "MMR^麻腮风^99NIP")]);
    let acks = conn
        .exchange(&vxu(
            "VXU-3",
            &id,
            &born,
            &[bcg(&days_ago(0)).replace("19^BCG", "10^IPV"), bad_time],
        ))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(
        errors(&acks[0])[0],
        ("RXA^2^3".to_string(), "102".to_string(), "E".to_string())
    );
    // A dose in the future, or an expired vaccine: refused by the same rules as the form.
    let future = bcg(&days_ago(-3)).replace("19^BCG", "10^IPV");
    let acks = conn.exchange(&vxu("VXU-4", &id, &born, &[future])).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(errors(&acks[0])[0].0, "RXA^1^3");
    let expired = hepb(&born)
        .replace("HepB^乙肝疫苗", "DTaP^百白破")
        .replace(&hl7_day(&days_ago(-300)), &hl7_day(&days_ago(30)));
    let acks = conn.exchange(&vxu("VXU-5", &id, &born, &[expired])).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(errors(&acks[0])[0].0, "RXA^1^16");
    let (_, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(
        chart["vaccinations"].as_array().unwrap().len(),
        2,
        "nothing of refused messages"
    );

    // A child nobody registered, and a woman who is nobody's child record: AE, unknown key at PID-3.
    let stranger = id_number("340524", &born, 8);
    let acks = conn
        .exchange(&vxu("VXU-6", &stranger, &born, &[bcg(&days_ago(0))]))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(
        errors(&acks[0])[0],
        ("PID^1^3".to_string(), "204".to_string(), "E".to_string())
    );
    let mother_id = id_number("340524", "1994-06-01", 62);
    let acks = conn
        .exchange(&vxu("VXU-7", &mother_id, "1994-06-01", &[bcg(&days_ago(0))]))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(errors(&acks[0])[0].1, "204");
    // Not given (RXA-20 RE): nothing recorded, the sender is told; a non-programme vaccine is kept
    // as sent with a warning and does not count in the schedule.
    let refused = bcg(&days_ago(0)).replace("19^BCG", "10^IPV").replace("|CP", "|RE");
    let flu = bcg(&days_ago(0)).replace("19^BCG", "141^Influenza, seasonal, injectable");
    let acks = conn.exchange(&vxu("VXU-8", &id, &born, &[refused, flu])).await;
    assert_eq!(msa(&acks[0]).0, "AA");
    assert_eq!(
        errors(&acks[0])
            .iter()
            .map(|e| (e.0.as_str(), e.1.as_str()))
            .collect::<Vec<_>>(),
        [("RXA^1^20", "207"), ("RXA^2^5", "103")]
    );
    let (_, chart) = c.get_json(&format!("/api/children/{child}")).await;
    assert_eq!(chart["vaccinations"].as_array().unwrap().len(), 3);
    assert_eq!(status(&chart, "IPV-1").as_deref().map(|s| s != "done"), Some(true));

    // Another county's system may not record for her: AE, and the refusal is audited.
    mch_chain::hl7::service::add_sender(&app.db, "IIS", "CDC340525", "NBR", "utf8")
        .await
        .unwrap();
    let other =
        vxu("VXU-9", &id, &born, &[bcg(&days_ago(0)).replace("19^BCG", "10^IPV")]).replace("CDC340524", "CDC340525");
    let acks = conn.exchange(&other).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{child}")).await;
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor_name"] == "hl7:IIS^CDC340525"),
        "{log}"
    );

    // Over FHIR: the reported BCG is not the provider's own record; the HepB keeps its lot,
    // route and site, and the CVX coding it was sent with.
    let his = Fhir::new(&app, "COUNTY").await;
    let r = his
        .get(&format!(
            "Immunization?patient={child}&vaccine-code=urn:mch-chain:nip-vaccine|BCG"
        ))
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    let bcg_imm = &r.body["entry"][0]["resource"];
    assert_eq!(bcg_imm["primarySource"], false);
    assert!(
        bcg_imm["reportOrigin"]["text"]
            .as_str()
            .unwrap()
            .contains("免疫规划信息系统报告"),
        "{bcg_imm}"
    );
    assert_eq!(bcg_imm["occurrenceDateTime"], days_ago(0));
    assert_eq!(
        bcg_imm["vaccineCode"]["coding"][1]["system"],
        "http://hl7.org/fhir/sid/cvx"
    );
    let r = his
        .get(&format!("Immunization?patient={child}&vaccine-code=HepB"))
        .await;
    let hepb_imm = &r.body["entry"][0]["resource"];
    assert_eq!(hepb_imm["primarySource"], true);
    assert_eq!(hepb_imm["lotNumber"], "202511A");
    assert_eq!(hepb_imm["route"]["coding"][0]["code"], "IM");
    assert_eq!(hepb_imm["site"]["coding"][0]["code"], "RD");
    assert_eq!(hepb_imm["occurrenceDateTime"], format!("{born}T10:00:00+08:00"));
    // The mother's record is untouched by her child's doses.
    let r = his.get(&format!("Immunization?patient={mother}")).await;
    assert_eq!(r.body["total"], 0);
}
