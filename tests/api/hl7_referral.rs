//! Referrals over HL7 v2: a hospital opens one with REF^I12, a receiving hospital answers with
//! RRI^I12 — the same state machine, checks and audit as the pages and the JSON API.

use serde_json::{Value, json};

use crate::helpers::{TestApp, id_number, spawn_app};
use crate::hl7::{Conn, msa};
use crate::pregnancy::booked;

/// The township health centre's system (TWN-A) and the county hospital's (CTYHOSP), registered.
async fn app_with_hospitals() -> TestApp {
    let app = spawn_app().await;
    mch_chain::hl7::service::add_sender(&app.db, "TWNHIS", "DONGGUAN", "TWN-A", "utf8")
        .await
        .unwrap();
    mch_chain::hl7::service::add_sender(&app.db, "HIS", "COUNTYHOSP", "CTYHOSP", "utf8")
        .await
        .unwrap();
    mch_chain::hl7::service::add_sender(&app.db, "NBRHIS", "NBRHOSP", "NBR", "utf8")
        .await
        .unwrap();
    app
}

fn ref_i12(control: &str, their_id: &str, status: &str, id: &str, systolic: &str, to: &str) -> String {
    format!(
        "MSH|^~\\&|TWNHIS|DONGGUAN|MCH|CENTRE|20261124083000||REF^I12^REF_I12|{control}|P|2.5\r\
         RF1|{status}^^MCHSTATE|S^Stat^HL70280|maternal^孕产妇|||{their_id}^TWNHIS|20261124083000|||^产后出血 1500 ml，休克\r\
         PRD|RP|张^医生|||||TWN-A\r\
         PRD|RT||||||{to}\r\
         PID|1||{id}^^^^NNCHN||周^芳||19940601|F\r\
         DG1|1||O72.1^产后出血^I10|产后出血，失血性休克\r\
         OBX|1|NM|8480-6^收缩压^LN||{systolic}|mm[Hg]||||||F\r\
         OBX|2|NM|8867-4^脉搏^LN||128|/min||||||F\r\
         NTE|1||缩宫素 20U，晶体液 1000 ml\r"
    )
}

fn rri_i12(sender: (&str, &str), control: &str, our_id: &str, status: &str, extra: &str) -> String {
    format!(
        "MSH|^~\\&|{}|{}|MCH|CENTRE|20261124090000||RRI^I12^RRI_I12|{control}|P|2.5\r\
         RF1|{status}^^MCHSTATE|S|maternal|||{our_id}^MCH-CHAIN|20261124090000\r{extra}",
        sender.0, sender.1
    )
}

async fn state(app: &TestApp, rid: &str) -> Value {
    let mut c = app.login("clinician", "TWN-A").await;
    c.get_json(&format!("/api/referrals/{rid}")).await.1
}

async fn referrals_of(app: &TestApp) -> Vec<Value> {
    let mut town = app.login("clinician", "TWN-A").await;
    let (s, list) = town.get_json("/api/referrals").await;
    assert_eq!(s, 200, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_hospital_opens_a_referral_with_ref_i12_and_updates_and_cancels_it_by_its_own_id() {
    let app = app_with_hospitals().await;
    let id = id_number("340524", "1994-06-01", 30);
    let mut conn = Conn::open(&app).await;
    // Required parts missing: refused naming the field, nothing opened.
    let no_centre = ref_i12("REF-0", "TWN-0001", "sent", &id, "78", "");
    let acks = conn.exchange(&no_centre).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("PRD^1^7"));
    let bad_bp = ref_i12("REF-00", "TWN-0001", "sent", &id, "七十八", "CTYHOSP");
    let acks = conn.exchange(&bad_bp).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("OBX^1^5"));
    assert!(referrals_of(&app).await.is_empty());

    let acks = conn
        .exchange(&ref_i12("REF-1", "TWN-0001", "sent", &id, "78", "CTYHOSP"))
        .await;
    assert_eq!(
        msa(&acks[0]),
        ("AA".to_string(), "REF-1".to_string()),
        "{:?}",
        acks[0].text()
    );
    let list = referrals_of(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "sent");
    assert_eq!(list[0]["urgency"], "emergency");
    assert_eq!(list[0]["to_facility"], "示范县人民医院");
    let rid = list[0]["id"].as_str().unwrap().to_string();
    let mut town = app.login("clinician", "TWN-A").await;
    let (_, r) = town.get_json(&format!("/api/referrals/{rid}")).await;
    assert_eq!(r["details"]["vitals"]["systolic_mmhg"], 78);
    assert_eq!(r["details"]["vitals"]["pulse_per_min"], 128);
    assert_eq!(r["details"]["diagnoses"], "产后出血，失血性休克");
    assert_eq!(r["opened_by"], "hl7:TWNHIS^DONGGUAN");
    assert_eq!(r["person"]["name"], "周芳");

    // The same hospital id again with new vitals: the same referral, details updated.
    let acks = conn
        .exchange(&ref_i12("REF-2", "TWN-0001", "sent", &id, "86", "CTYHOSP"))
        .await;
    assert_eq!(msa(&acks[0]).0, "AA");
    let (_, r) = town.get_json(&format!("/api/referrals/{rid}")).await;
    assert_eq!(r["details"]["vitals"]["systolic_mmhg"], 86);
    assert_eq!(referrals_of(&app).await.len(), 1, "one referral per hospital id");
    // Cancelled by the hospital, with its reason.
    let cancel = ref_i12("REF-3", "TWN-0001", "cancelled", &id, "86", "CTYHOSP")
        .replace("^产后出血 1500 ml，休克", "^家属要求就地治疗");
    let acks = conn.exchange(&cancel).await;
    assert_eq!(msa(&acks[0]).0, "AA");
    let (_, r) = town.get_json(&format!("/api/referrals/{rid}")).await;
    assert_eq!(r["state"], "cancelled");
    assert!(r["timeline"].to_string().contains("家属要求就地治疗"));
}

#[tokio::test]
async fn a_receiving_hospital_answers_with_rri_i12_through_the_same_state_machine() {
    let app = app_with_hospitals().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut town, "吴敏", 32, 30).await;
    let (s, r) = town
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "emergency", "reason": "子痫", "to_facility": "CTYHOSP", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    let hosp = ("HIS", "COUNTYHOSP");
    let mut conn = Conn::open(&app).await;

    // Unknown referral: AE 204.
    let acks = conn
        .exchange(&rri_i12(
            hosp,
            "RRI-0",
            "01a20000-0000-7000-8000-000000000000",
            "accepted",
            "",
        ))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("204"));
    // Accepted (HL7 table 0283 "A" works as well as our code).
    let acks = conn.exchange(&rri_i12(hosp, "RRI-1", &rid, "A", "")).await;
    assert_eq!(msa(&acks[0]), ("AA".to_string(), "RRI-1".to_string()));
    assert_eq!(state(&app, &rid).await["state"], "accepted");
    // The same answer under a new control id is recorded once, acknowledged with a warning.
    let acks = conn.exchange(&rri_i12(hosp, "RRI-2", &rid, "accepted", "")).await;
    assert_eq!(msa(&acks[0]).0, "AA");
    assert_eq!(acks[0].get("ERR-4").unwrap().as_deref(), Some("W"));
    // Feedback before arrival: refused with the reason, nothing changes.
    let early = "DG1|1||||子痫\rZFB|survived\r";
    let acks = conn
        .exchange(&rri_i12(hosp, "RRI-3", &rid, "feedback_returned", early))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("RF1^1^1"));
    assert_eq!(state(&app, &rid).await["state"], "accepted");
    let arrive = "PRD|RT|王^主治|||||CTYHOSP\rNTE|1||意识清\r";
    // Another county's hospital cannot answer it.
    let acks = conn
        .exchange(&rri_i12(("NBRHIS", "NBRHOSP"), "RRI-4", &rid, "rejected", ""))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
    // The township departs on the page; the hospital records arrival and feedback.
    let (s, _) = town
        .post_json(&format!("/api/referrals/{rid}/depart"), &json!({}))
        .await;
    assert_eq!(s, 200);
    let acks = conn.exchange(&rri_i12(hosp, "RRI-5", &rid, "arrived", arrive)).await;
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0].text());
    let feedback = "DG1|1||O15.0^子痫^I10|子痫，HELLP 综合征\rZFB|survived|硫酸镁、剖宫产|王主治|母婴平安\r";
    let acks = conn
        .exchange(&rri_i12(hosp, "RRI-6", &rid, "feedback_returned", feedback))
        .await;
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0].text());
    let r = state(&app, &rid).await;
    assert_eq!(r["state"], "feedback_returned");
    assert_eq!(r["handover"]["received_by"], "王主治");
    assert_eq!(r["feedback"]["outcome"], "survived");
    assert_eq!(r["feedback"]["diagnosis"], "子痫，HELLP 综合征");
    assert_eq!(r["feedback"]["signed_by"], "王主治");
    // Every step is in the timeline, signed by the interface.
    let actors: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(actors.contains(&"hl7:HIS^COUNTYHOSP"), "{actors:?}");
    // A bad outcome code is refused naming it.
    let bad = "DG1|1||||子痫\rZFB|recovered\r";
    let acks = conn
        .exchange(&rri_i12(hosp, "RRI-7", &rid, "feedback_returned", bad))
        .await;
    assert_eq!(msa(&acks[0]).0, "AE");
}

#[tokio::test]
async fn the_receiving_centres_laboratory_may_send_results_once_it_has_accepted_her() {
    let app = app_with_hospitals().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut town, "郑雪", 34, 30).await;
    let id = id_number("340524", "1994-06-01", 34);
    let lab = |control: &str| {
        crate::hl7_results::oru(control, &id, &["NM|718-7^Hemoglobin^LN||62|g/L^^UCUM|110-150|L|||F"])
            .replace("|HIS|COUNTYHOSP|", "|NBRHIS|NBRHOSP|")
    };
    let mut conn = Conn::open(&app).await;
    // The neighbouring county's hospital: outside her area, refused.
    let acks = conn.exchange(&lab("NBR-LAB-1")).await;
    assert_eq!(msa(&acks[0]).0, "AE", "{}", acks[0].text());
    // Referred to it and accepted: its laboratory's results are taken.
    let (s, r) = town
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "urgent", "reason": "重度贫血", "to_facility": "NBR", "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let rid = r["id"].as_str().unwrap();
    let acks = conn
        .exchange(&rri_i12(("NBRHIS", "NBRHOSP"), "NBR-RRI-1", rid, "accepted", ""))
        .await;
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0].text());
    let acks = conn.exchange(&lab("NBR-LAB-2")).await;
    assert_eq!(msa(&acks[0]).0, "AA", "{}", acks[0].text());
}

#[tokio::test]
async fn a_ref_i12_whose_note_states_fetal_sex_is_answered_ae_nothing_is_opened_and_the_refusal_is_audited() {
    let app = app_with_hospitals().await;
    let mut town = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut town, "周芳", 30, 30).await;
    let id = id_number("340524", "1994-06-01", 30);
    let mut conn = Conn::open(&app).await;
    // RULES.md §9.1: the NTE (treatment) says what the ultrasound showed.
    let msg = ref_i12("REF-FS", "TWN-0099", "sent", &id, "78", "CTYHOSP")
        .replace("NTE|1||缩宫素 20U，晶体液 1000 ml", "NTE|1||缩宫素 20U；B超提示男胎");
    let acks = conn.exchange(&msg).await;
    assert_eq!(msa(&acks[0]).0, "AE");
    let err = acks[0].get("ERR-8").unwrap().unwrap_or_default();
    assert!(err.contains("胎儿性别信息") && !err.contains("男胎"), "{err}");
    assert!(referrals_of(&app).await.is_empty());
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert!(!log.to_string().contains("男胎"));
    assert!(
        log["events"].as_array().unwrap().iter().any(
            |e| e["outcome"] == "denied" && e["detail"] == "refused: fetal sex stated (RULES.md §9.1) in treatment"
        ),
        "{log}"
    );
    // The stored copy of the message withholds the field too: the message log never shows it.
    let mut admin = app.login("admin", "PROV").await;
    let list = admin.get("/hl7/messages").await;
    let links = crate::hl7_results::message_links(&list.body);
    assert!(!links.is_empty(), "{}", list.body);
    for link in links {
        let page = admin.get(&link).await.body;
        assert!(!page.contains("男胎"), "{link}: {page}");
    }
}
