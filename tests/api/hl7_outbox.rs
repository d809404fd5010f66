//! Outbound referral messages: a fake hospital MLLP receiver registered as the destination of a
//! facility gets REF^I12 / RRI^I12 in order, one at a time; ACKs are matched on MSA-2; failures
//! back off and dead-letter; a dead letter is replayed from the queue page; two instances on one
//! database send each message once. The delivery worker is driven with an injected clock (the
//! background worker is off) except in the first test, which shows the running service delivers.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{Client, TestApp, id_number, spawn_app, spawn_app_with};
use crate::pregnancy::booked;
use mch_chain::auth::model::Role;
use mch_chain::hl7::er7::{Charset, Message};
use mch_chain::hl7::mllp::{Decoder, Event, frame};
use mch_chain::hl7::outbox::{self, DeliveryReport, Policy};
use mch_chain::ids::now_utc;

/// How the fake hospital answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Aa,
    Ae,
    /// AA, but for another message (MSA-2 not our MSH-10).
    WrongMsa2,
    /// Never answers.
    Silent,
}

/// A hospital system's MLLP listener: keeps every frame it receives, answers as told.
struct Hospital {
    port: u16,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Hospital {
    async fn start(answer: Answer) -> Hospital {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(answer));
        let (g, a) = (got.clone(), answer.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let (g, a) = (g.clone(), a.clone());
                tokio::spawn(async move {
                    let mut decoder = Decoder::new(1 << 20);
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        for event in decoder.feed(&buf[..n]) {
                            let Event::Frame(f) = event else { return };
                            g.lock().unwrap().push(f.clone());
                            let mode = *a.lock().unwrap();
                            let m = Message::parse(&f, Charset::Utf8).unwrap();
                            let control = m.get("MSH-10").unwrap().unwrap();
                            let (code, echo) = match mode {
                                Answer::Aa => ("AA", control),
                                Answer::Ae => ("AE", control),
                                Answer::WrongMsa2 => ("AA", "SOMEONE-ELSE".to_string()),
                                Answer::Silent => continue,
                            };
                            let ack = format!(
                                "MSH|^~\\&|HIS|HOSP|MCH-CHAIN|X|20261124120000||ACK^I12^ACK|ACK-{}|P|2.5\rMSA|{code}|{echo}|患者信息不完整\r",
                                uuid::Uuid::new_v4().simple()
                            );
                            let _ = s.write_all(&frame(ack.as_bytes())).await;
                        }
                    }
                });
            }
        });
        Hospital { port, got, answer }
    }

    fn set(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn received(&self) -> Vec<Message> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|f| Message::parse(f, Charset::Utf8).unwrap())
            .collect()
    }
}

fn get(m: &Message, path: &str) -> String {
    m.get(path).unwrap().unwrap_or_default()
}

fn policy() -> Policy {
    Policy {
        ack_timeout: StdDuration::from_millis(300),
        connect_timeout: StdDuration::from_secs(2),
        max_attempts: 3,
    }
}

/// The service with the background delivery worker off: tests drive `deliver_due` themselves.
async fn quiet_app() -> TestApp {
    spawn_app_with(|s| s.hl7_outbox_tick_ms = 0).await
}

async fn destination(app: &TestApp, facility: &str, h: &Hospital) {
    outbox::add_destination(
        &app.db,
        facility,
        "127.0.0.1",
        h.port,
        "HIS",
        &format!("{facility}-HIS"),
        "utf8",
    )
    .await
    .unwrap();
}

/// A township woman (TWN-A) at 30 weeks; returns the township clinician, her id and ID number.
async fn township_woman(app: &TestApp, seq: u32) -> (Client, String, String) {
    let mut c = app.login("clinician", "TWN-A").await;
    let (person, _) = booked(&mut c, "周芳", seq, 30).await;
    (c, person, id_number("340524", "1994-06-01", seq))
}

async fn send_referral(c: &mut Client, person: &str, to: &str) -> String {
    let (s, r) = c
        .post_json(
            "/api/referrals",
            &json!({"person_id": person, "urgency": "emergency", "reason": "产后出血 1500 ml，休克", "to_facility": to, "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_string()
}

async fn act(c: &mut Client, id: &str, action: &str, body: Value) {
    let (s, v) = c.post_json(&format!("/api/referrals/{id}/{action}"), &body).await;
    assert_eq!(s, 200, "{action}: {v}");
}

/// The outbound queue as the province administrator sees it (newest first).
async fn queue(app: &TestApp) -> Vec<Value> {
    let admin = app.system_actor("PROV", Role::Admin).await;
    let q = outbox::queue(&app.db, &admin, Default::default()).await.unwrap();
    serde_json::to_value(&q.messages).unwrap().as_array().unwrap().clone()
}

/// Later than anything queued so far (messages are due from the moment they are queued).
fn soon() -> NaiveDateTime {
    now_utc() + Duration::seconds(1)
}

#[tokio::test]
async fn a_sent_referral_reaches_the_hospital_as_ref_i12_and_the_running_service_gets_it_acked() {
    let app = spawn_app().await; // background worker on (every second)
    let hospital = Hospital::start(Answer::Aa).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, id_no) = township_woman(&app, 30).await;
    // A centre without a destination takes part through the pages: nothing is queued for it.
    send_referral(&mut c, &person, "PROV").await;
    assert!(queue(&app).await.is_empty());

    let id = send_referral(&mut c, &person, "CTYHOSP").await;
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = queue(&app).await;
        if rows.first().is_some_and(|r| r["status"] == "acked") {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "acked", "{rows:?}");
    assert_eq!(rows[0]["ack_code"], "AA");
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["message_type"], "REF^I12");

    let got = hospital.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(get(m, "MSH-3"), "MCH-CHAIN");
    assert_eq!(get(m, "MSH-4"), "TWN-A");
    assert_eq!(get(m, "MSH-5"), "HIS");
    assert_eq!(get(m, "MSH-6"), "CTYHOSP-HIS");
    assert_eq!(get(m, "MSH-9"), "REF^I12^REF_I12");
    assert_eq!(get(m, "MSH-10"), rows[0]["control_id"].as_str().unwrap());
    assert_eq!(get(m, "MSH-18"), "UNICODE UTF-8");
    assert_eq!(get(m, "RF1-1.1"), "sent");
    assert_eq!(get(m, "RF1-2"), "S");
    assert_eq!(get(m, "RF1-6.1"), id);
    assert_eq!(get(m, "RF1-10.2"), "产后出血 1500 ml，休克");
    assert_eq!(get(m, "PID-3[1].1"), id_no);
    assert_eq!(get(m, "PID-3[1].5"), "NNCHN");
    assert_eq!(get(m, "PID-5.1"), "周");
    assert_eq!(get(m, "PID-5.2"), "芳");
    assert_eq!(get(m, "PRD[1]-7"), "TWN-A");
    assert_eq!(get(m, "PRD[2]-7"), "CTYHOSP");
}

#[tokio::test]
async fn an_ack_for_another_message_is_not_ours_and_the_message_is_retried_after_the_backoff() {
    let app = quiet_app().await;
    let hospital = Hospital::start(Answer::WrongMsa2).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, _) = township_woman(&app, 32).await;
    send_referral(&mut c, &person, "CTYHOSP").await;
    let t0 = soon();
    let r = outbox::deliver_due(&app.db, t0, &policy()).await.unwrap();
    assert_eq!(
        r,
        DeliveryReport {
            acked: 0,
            retried: 1,
            dead: 0
        }
    );
    let row = &queue(&app).await[0];
    assert_eq!(row["status"], "pending");
    assert_eq!(row["attempts"], 1);
    assert!(row["last_error"].as_str().unwrap().contains("MSA-2"), "{row}");
    // Not due before the backoff (5 s after the first failure).
    hospital.set(Answer::Aa);
    let r = outbox::deliver_due(&app.db, t0 + Duration::seconds(2), &policy())
        .await
        .unwrap();
    assert_eq!(r, DeliveryReport::default());
    assert_eq!(hospital.received().len(), 1);
    let r = outbox::deliver_due(&app.db, t0 + Duration::seconds(6), &policy())
        .await
        .unwrap();
    assert_eq!(r.acked, 1);
    let got = hospital.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        get(&got[0], "MSH-10"),
        get(&got[1], "MSH-10"),
        "a resend: same control id"
    );
    assert_eq!(got[0].text(), got[1].text(), "a resend: the same bytes");
    assert_eq!(queue(&app).await[0]["status"], "acked");
}

#[tokio::test]
async fn a_content_error_dead_letters_at_once() {
    let app = quiet_app().await;
    let hospital = Hospital::start(Answer::Ae).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, _) = township_woman(&app, 38).await;
    send_referral(&mut c, &person, "CTYHOSP").await;
    let r = outbox::deliver_due(&app.db, soon(), &policy()).await.unwrap();
    assert_eq!(r.dead, 1);
    let row = &queue(&app).await[0];
    assert_eq!(row["status"], "dead");
    assert_eq!(row["attempts"], 1);
    assert!(row["last_error"].as_str().unwrap().contains("AE"), "{row}");
}

#[tokio::test]
async fn a_silent_hospital_is_retried_with_backoff_then_dead_lettered_and_replayed_from_the_queue_page() {
    let app = quiet_app().await;
    let hospital = Hospital::start(Answer::Silent).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, id_no) = township_woman(&app, 34).await;
    let referral = send_referral(&mut c, &person, "CTYHOSP").await;
    let t0 = soon();
    let p = policy();
    assert_eq!(outbox::deliver_due(&app.db, t0, &p).await.unwrap().retried, 1);
    // attempt 1 failed: next after 5 s; attempt 2: after 10 s more; attempt 3 is the last (N = 3).
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::seconds(4), &p)
            .await
            .unwrap(),
        DeliveryReport::default()
    );
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::seconds(6), &p)
            .await
            .unwrap()
            .retried,
        1
    );
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::seconds(15), &p)
            .await
            .unwrap(),
        DeliveryReport::default()
    );
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::seconds(17), &p)
            .await
            .unwrap()
            .dead,
        1
    );
    assert_eq!(hospital.received().len(), 3);
    let row = queue(&app).await[0].clone();
    assert_eq!(row["status"], "dead");
    assert_eq!(row["attempts"], 3);
    assert!(row["last_error"].as_str().unwrap().contains("no ACK"), "{row}");
    // Dead is dead: later runs leave it alone.
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::hours(1), &p).await.unwrap(),
        DeliveryReport::default()
    );

    // The referral's timeline says the hospital was not reached; the dead letter is audited.
    let (_, seen) = c.get_json(&format!("/api/referrals/{referral}")).await;
    let failed: Vec<&Value> = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "hl7_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{seen}");
    assert_eq!(failed[0]["label"], "接口消息未送达");
    let mut auditor = app.login("auditor", "PROV").await;
    let (s, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert_eq!(s, 200, "{log}");
    assert!(log.to_string().contains("hl7_dead_letter"), "{log}");

    // The queue page: counts per destination, the message with its ID number masked.
    let mut admin = app.login("admin", "PROV").await;
    let page = admin.get("/hl7/outbox").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("示范县人民医院"), "{}", page.body);
    assert!(page.body.contains("<td class=\"dead\">1</td>"), "{}", page.body);
    let id = row["id"].as_str().unwrap();
    let page = admin.get(&format!("/hl7/outbox/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("REF^I12^REF_I12"));
    assert!(!page.body.contains(&id_no), "ID numbers are masked");
    assert!(
        page.body.contains("id=\"replay\""),
        "an administrator may replay a dead letter"
    );
    // Auditors see the queue but may not replay; clinicians see nothing.
    let page = auditor.get(&format!("/hl7/outbox/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"replay\""));
    let r = auditor.post_form(&format!("/hl7/outbox/{id}/replay"), &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(c.get("/hl7/outbox").await.status, 403);
    // Without the CSRF token: refused.
    let r = admin.post_form_raw(&format!("/hl7/outbox/{id}/replay"), &[]).await;
    assert_eq!(r.status, 403);

    // Replay: back in the queue, attempts from 0, delivered once the hospital answers.
    admin.get(&format!("/hl7/outbox/{id}")).await;
    let r = admin.post_form(&format!("/hl7/outbox/{id}/replay"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let row = queue(&app).await[0].clone();
    assert_eq!(row["status"], "pending");
    assert_eq!(row["attempts"], 0);
    assert_eq!(row["replays"], 1);
    // A second replay of a message that is no longer dead is a conflict.
    admin.get(&format!("/hl7/outbox/{id}")).await;
    assert_eq!(
        admin.post_form(&format!("/hl7/outbox/{id}/replay"), &[]).await.status,
        409
    );
    hospital.set(Answer::Aa);
    assert_eq!(outbox::deliver_due(&app.db, soon(), &p).await.unwrap().acked, 1);
    assert_eq!(queue(&app).await[0]["status"], "acked");
    assert_eq!(hospital.received().len(), 4);
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    assert!(log.to_string().contains("re-queued"), "the replay is audited: {log}");
}

#[tokio::test]
async fn one_destination_gets_its_messages_strictly_in_order_one_at_a_time() {
    let app = quiet_app().await;
    let hospital = Hospital::start(Answer::Silent).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, _) = township_woman(&app, 40).await;
    let first = send_referral(&mut c, &person, "CTYHOSP").await;
    let second = send_referral(&mut c, &person, "CTYHOSP").await;
    let t0 = soon();
    let p = policy();
    assert_eq!(outbox::deliver_due(&app.db, t0, &p).await.unwrap().retried, 1);
    let got = hospital.received();
    assert_eq!(got.len(), 1, "the second waits while the first is unacked");
    assert_eq!(get(&got[0], "RF1-6.1"), first);
    // Even when the first's backoff has not run out, the second does not jump the queue.
    assert_eq!(
        outbox::deliver_due(&app.db, t0 + Duration::seconds(2), &p)
            .await
            .unwrap(),
        DeliveryReport::default()
    );
    assert_eq!(hospital.received().len(), 1);
    hospital.set(Answer::Aa);
    let r = outbox::deliver_due(&app.db, t0 + Duration::seconds(6), &p)
        .await
        .unwrap();
    assert_eq!(r.acked, 2, "after the first is acked the next goes at once");
    let order: Vec<String> = hospital.received().iter().map(|m| get(m, "RF1-6.1")).collect();
    assert_eq!(order, vec![first.clone(), first, second]);
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_once() {
    let app = quiet_app().await;
    let hospital = Hospital::start(Answer::Aa).await;
    destination(&app, "CTYHOSP", &hospital).await;
    let (mut c, person, _) = township_woman(&app, 36).await;
    for _ in 0..3 {
        send_referral(&mut c, &person, "CTYHOSP").await;
    }
    // A second service instance: its own pool and group-commit writer on the same database.
    let second = mch_chain::storage::Db::open(app.url(), 2).unwrap();
    let p = policy();
    let mut acked = 0;
    for _ in 0..5 {
        let t = soon();
        let (a, b) = tokio::join!(outbox::deliver_due(&app.db, t, &p), outbox::deliver_due(&second, t, &p));
        // A run may lose a race for the write lock (SQLite) and stop early; the next run goes on.
        acked += a.map(|r| r.acked).unwrap_or(0) + b.map(|r| r.acked).unwrap_or(0);
        if acked == 3 {
            break;
        }
    }
    assert_eq!(acked, 3);
    let mut controls: Vec<String> = hospital.received().iter().map(|m| get(m, "MSH-10")).collect();
    assert_eq!(controls.len(), 3, "each message sent exactly once");
    controls.sort();
    controls.dedup();
    assert_eq!(controls.len(), 3);
    assert!(
        queue(&app)
            .await
            .iter()
            .all(|r| r["status"] == "acked" && r["attempts"] == 1)
    );
}

#[tokio::test]
async fn the_centre_answering_sends_rri_i12_to_the_sending_facility() {
    let app = quiet_app().await;
    let centre_his = Hospital::start(Answer::Aa).await;
    let township_his = Hospital::start(Answer::Aa).await;
    destination(&app, "CTYHOSP", &centre_his).await;
    destination(&app, "TWN-A", &township_his).await;
    let (mut sender, person, id_no) = township_woman(&app, 42).await;
    let id = send_referral(&mut sender, &person, "CTYHOSP").await;
    let mut centre = app.login("clinician", "CTYHOSP").await;
    act(&mut centre, &id, "accept", json!({})).await;
    let p = policy();
    let r = outbox::deliver_due(&app.db, soon(), &p).await.unwrap();
    assert_eq!(r.acked, 2, "{r:?}");
    let rri = township_his.received();
    assert_eq!(rri.len(), 1);
    let m = &rri[0];
    assert_eq!(get(m, "MSH-9"), "RRI^I12^RRI_I12");
    assert_eq!(get(m, "MSH-4"), "CTYHOSP", "the centre's side produced the event");
    assert_eq!(get(m, "MSH-6"), "TWN-A-HIS");
    assert_eq!(get(m, "RF1-1.1"), "accepted");
    assert_eq!(get(m, "RF1-6.1"), id);
    assert_eq!(get(m, "PID-3[1].1"), id_no);
    assert_eq!(centre_his.received().len(), 1, "the REF of the send");

    // Departure goes to the centre; arrival and feedback come back with the hand-over and outcome.
    act(&mut sender, &id, "depart", json!({})).await;
    act(
        &mut centre,
        &id,
        "arrive",
        json!({"received_by": "王主治", "note": "意识清"}),
    )
    .await;
    act(
        &mut centre,
        &id,
        "feedback",
        json!({"diagnosis": "产后出血，失血性休克", "treatment": "输血 6 U", "outcome": "survived", "signed_by": "王主治"}),
    )
    .await;
    let r = outbox::deliver_due(&app.db, soon(), &p).await.unwrap();
    assert_eq!(r.acked, 3, "{r:?}");
    let centre_got = centre_his.received();
    assert_eq!(get(&centre_got[1], "MSH-9"), "REF^I12^REF_I12");
    assert_eq!(get(&centre_got[1], "RF1-1.1"), "departed");
    let rri = township_his.received();
    let states: Vec<String> = rri.iter().map(|m| get(m, "RF1-1.1")).collect();
    assert_eq!(states, ["accepted", "arrived", "feedback_returned"]);
    let fb = &rri[2];
    assert_eq!(get(fb, "PRD[2]-2.1"), "王");
    assert_eq!(get(fb, "PRD[2]-2.2"), "主治");
    assert_eq!(get(fb, "DG1-4"), "产后出血，失血性休克");
    assert_eq!(get(fb, "ZFB-1"), "survived");
    assert_eq!(get(fb, "ZFB-2"), "输血 6 U");
    assert_eq!(get(fb, "ZFB-3"), "王主治");
}

#[test]
fn a_destination_is_registered_from_the_command_line_once_per_facility() {
    let db = crate::helpers::fresh_db();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mch-chain"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let facility = [
        "facility",
        "add",
        "--code",
        "HOSP",
        "--name",
        "县医院",
        "--level",
        "county",
        "--kind",
        "hospital",
        "--jurisdiction",
        "340524",
    ];
    assert_eq!(run(&facility).0, 0);
    let add = [
        "hl7",
        "destination",
        "add",
        "--facility",
        "HOSP",
        "--host",
        "10.0.0.5",
        "--port",
        "2575",
        "--receiving-app",
        "HIS",
        "--receiving-facility",
        "COUNTYHOSP",
        "--charset",
        "gb18030",
    ];
    let (code, out) = run(&add);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["facility"], "HOSP");
    assert_eq!(v["port"], 2575);
    assert_ne!(run(&add).0, 0, "one destination per facility");
    let mut unknown = add;
    unknown[4] = "NOPE";
    assert_ne!(run(&unknown).0, 0);
}

#[tokio::test]
async fn a_redirect_answers_the_sender_and_refers_the_patient_to_the_new_centre() {
    let app = quiet_app().await;
    let township_his = Hospital::start(Answer::Aa).await;
    let province_his = Hospital::start(Answer::Aa).await;
    destination(&app, "TWN-A", &township_his).await;
    destination(&app, "PROV", &province_his).await;
    let (mut sender, person, id_no) = township_woman(&app, 44).await;
    // CTYHOSP has no destination: the send queues nothing.
    let id = send_referral(&mut sender, &person, "CTYHOSP").await;
    assert!(queue(&app).await.is_empty());
    let mut centre = app.login("clinician", "CTYHOSP").await;
    act(
        &mut centre,
        &id,
        "redirect",
        json!({"to_facility": "PROV", "reason": "需 ECMO"}),
    )
    .await;
    let r = outbox::deliver_due(&app.db, soon(), &policy()).await.unwrap();
    assert_eq!(r.acked, 2, "{r:?}");
    let rri = &township_his.received()[0];
    assert_eq!(get(rri, "MSH-9"), "RRI^I12^RRI_I12");
    assert_eq!(get(rri, "MSH-4"), "CTYHOSP");
    assert_eq!(get(rri, "RF1-1.1"), "redirected");
    assert_eq!(get(rri, "RF1-10.2"), "需 ECMO", "the event's reason");
    let refm = &province_his.received()[0];
    assert_eq!(get(refm, "MSH-9"), "REF^I12^REF_I12");
    assert_eq!(get(refm, "MSH-6"), "PROV-HIS");
    assert_eq!(get(refm, "RF1-6.1"), id);
    assert_eq!(get(refm, "PRD[1]-7"), "TWN-A");
    assert_eq!(get(refm, "PRD[2]-7"), "PROV");
    assert_eq!(get(refm, "PID-3[1].1"), id_no);
}
