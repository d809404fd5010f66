//! The ER7 parser against the public conformance corpus nobody here wrote
//! (../shared/conformance/hl7v2: 139 messages, 60 trigger events, escapes, repetitions, BOMs,
//! CR/LF/CRLF).

use mch_chain::hl7::er7::{Charset, Message};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/hl7v2/fhir-converter-samples");
    // The corpus lives beside the repository (shared/). CI always has it; a lone clone skips.
    if !dir.exists() && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!(
            "{} not found: conformance corpus test skipped (CI=true makes it required)",
            dir.display()
        );
        return Vec::new();
    }
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The documented normalisation: BOM removed, CR/LF/CRLF → CR, blank lines dropped, every
/// segment ended by CR.
fn normalised(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes).to_vec()).unwrap();
    text.split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\r"))
        .collect()
}

#[test]
fn every_conformance_message_parses_and_encodes_back_to_the_same_text() {
    let files = corpus();
    if files.is_empty() && std::env::var("CI").as_deref() != Ok("true") {
        return;
    }
    assert!(files.len() >= 139, "found {} samples", files.len());
    let mut types = std::collections::BTreeSet::new();
    for (name, bytes) in &files {
        let m = Message::parse(bytes, Charset::Utf8).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m.encode(),
            normalised(bytes),
            "{name}: parse → encode changed the message"
        );
        let kind = m.get("MSH-9.1").unwrap().unwrap_or_default();
        let event = m.get("MSH-9.2").unwrap().unwrap_or_default();
        assert!(!kind.is_empty(), "{name}: MSH-9.1 readable");
        assert!(
            m.get("MSH-10").unwrap().is_some_and(|v| !v.is_empty()),
            "{name}: MSH-10 readable"
        );
        assert_eq!(m.segments().next().map(|s| s.id()), Some("MSH"));
        types.insert(format!("{kind}^{event}"));
    }
    assert!(types.len() >= 55, "trigger events seen: {}", types.len());
}

#[test]
fn our_chinese_samples_parse_in_utf8_and_gb18030_alike() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hl7/samples");
    let utf8 = std::fs::read(dir.join("oru-r01-antenatal-utf8.hl7")).unwrap();
    let gb = std::fs::read(dir.join("oru-r01-antenatal-gb18030.hl7")).unwrap();
    assert!(
        std::str::from_utf8(&gb).is_err(),
        "the GB 18030 sample really is GB 18030"
    );
    let a = Message::parse(&utf8, Charset::Utf8).unwrap();
    let b = Message::parse(&gb, Charset::Utf8).unwrap();
    for path in [
        "PID-5.1",
        "PID-5.2",
        "PID-11.1",
        "OBX-3.5",
        "OBX[5]-5.2",
        "NTE-3",
        "ZMC-2",
    ] {
        assert_eq!(a.get(path).unwrap(), b.get(path).unwrap(), "{path}");
    }
    assert_eq!(a.get("PID-5.2").unwrap().as_deref(), Some("小红"));
    assert_eq!(a.get("PID-11.1").unwrap().as_deref(), Some("东关镇红星村&3组"));
    assert_eq!(
        a.get("NTE-3").unwrap().as_deref(),
        Some("复查|建议：一周内复查血常规\\.br\\已电话通知")
    );
    assert_eq!(a.get("PID-3[1].5").unwrap().as_deref(), Some("NNCHN"));
    assert_eq!(a.get("PID-3[2].5").unwrap().as_deref(), Some("HC"));
    assert_eq!(a.segments().count(), 14);
    assert_eq!(b.encode_bytes(), gb, "GB 18030 encodes back to the same bytes");
    assert_eq!(a.encode().as_bytes(), utf8.as_slice());
}

// ------------------------------------------------------------------ MLLP listener

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, id_number, spawn_app};

pub fn framed(msg: &str) -> Vec<u8> {
    mch_chain::hl7::mllp::frame(msg.as_bytes())
}

/// Read one framed ACK and parse it.
async fn read_ack(s: &mut TcpStream) -> Message {
    let mut d = mch_chain::hl7::mllp::Decoder::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("ACK in time")
            .unwrap();
        assert!(n > 0, "connection closed without an ACK");
        if let Some(mch_chain::hl7::mllp::Event::Frame(f)) = d.feed(&buf[..n]).into_iter().next() {
            return Message::parse(&f, Charset::Utf8).unwrap();
        }
    }
}

pub fn adt(control: &str, id: &str, name: (&str, &str), birth: &str) -> String {
    format!(
        "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124083000||ADT^A04^ADT_A01|{control}|P|2.5.1|||||CHN|UNICODE UTF-8\r\
         EVN|A04|20261124083000\r\
         PID|1||{id}^^^&2.16.156.10011.1.3&ISO^NNCHN~M{control}^^^COUNTYHOSP^MR||{}^{}||{birth}|F|||东关镇^^示范县||13900000000\r\
         PV1|1|O\r",
        name.0, name.1
    )
}

/// The ID number with its check character changed (invalid).
fn wrong_check_character(id: &str) -> String {
    let mut bad = id.to_string();
    bad.replace_range(17..18, if id.ends_with('1') { "2" } else { "1" });
    bad
}

pub async fn app_with_sender() -> TestApp {
    let app = spawn_app().await;
    mch_chain::hl7::service::add_sender(&app.db, "HIS", "COUNTYHOSP", "COUNTY", "utf8")
        .await
        .unwrap();
    app
}

#[tokio::test]
async fn an_admission_over_mllp_registers_the_woman_once_and_a_resend_gets_the_same_ack() {
    let app = app_with_sender().await;
    let id = id_number("340524", "1993-03-08", 44);
    let msg = adt("CTRL-1", &id, ("王", "小红"), "19930308");
    let mut s = TcpStream::connect(&app.mllp).await.unwrap();
    s.write_all(&framed(&msg)).await.unwrap();
    let first = read_ack(&mut s).await;
    assert_eq!(first.get("MSA-1").unwrap().as_deref(), Some("AA"));
    assert_eq!(first.get("MSA-2").unwrap().as_deref(), Some("CTRL-1"));
    // Stored and processed before the ACK: the county sees her with her MRN.
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, found) = county.get_json(&format!("/api/persons?q={id}")).await;
    assert_eq!(found["persons"][0]["name"], "王小红");
    // A resend (same MSH-10, same bytes) is processed once and answered the same.
    s.write_all(&framed(&msg)).await.unwrap();
    let again = read_ack(&mut s).await;
    assert_eq!(again.text(), first.text());
    // The same MSH-10 with other content is flagged, not applied.
    let other = adt("CTRL-1", &id, ("王", "小花"), "19930308");
    s.write_all(&framed(&other)).await.unwrap();
    let clash = read_ack(&mut s).await;
    assert_eq!(clash.get("MSA-1").unwrap().as_deref(), Some("AE"));
    let (_, found) = county.get_json(&format!("/api/persons?q={id}")).await;
    assert_eq!(found["persons"].as_array().unwrap().len(), 1);
    assert_eq!(found["persons"][0]["name"], "王小红");
    let stored = app
        .db
        .read(|c| mch_chain::hl7::repo::recent(c, 10).map_err(mch_chain::storage::StorageError::from))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "one stored message for one control id");
}

#[tokio::test]
async fn frames_split_byte_by_byte_and_coalesced_are_each_acked_in_order() {
    let app = app_with_sender().await;
    let a = adt(
        "SPLIT-1",
        &id_number("340524", "1991-01-01", 46),
        ("李", "娜"),
        "19910101",
    );
    let b = adt(
        "SPLIT-2",
        &id_number("340524", "1992-02-02", 48),
        ("张", "丽"),
        "19920202",
    );
    let mut s = TcpStream::connect(&app.mllp).await.unwrap();
    for byte in framed(&a) {
        s.write_all(&[byte]).await.unwrap();
    }
    assert_eq!(read_ack(&mut s).await.get("MSA-2").unwrap().as_deref(), Some("SPLIT-1"));
    let c = adt(
        "SPLIT-3",
        &id_number("340524", "1990-03-03", 50),
        ("赵", "敏"),
        "19900303",
    );
    s.write_all(&[framed(&b), framed(&c)].concat()).await.unwrap();
    assert_eq!(read_ack(&mut s).await.get("MSA-2").unwrap().as_deref(), Some("SPLIT-2"));
    assert_eq!(read_ack(&mut s).await.get("MSA-2").unwrap().as_deref(), Some("SPLIT-3"));
}

#[tokio::test]
async fn unknown_senders_unsupported_types_and_bad_content_get_ar_or_ae_with_a_reason() {
    let app = app_with_sender().await;
    let mut s = TcpStream::connect(&app.mllp).await.unwrap();
    let stranger =
        adt("X-1", &id_number("340524", "1991-01-01", 52), ("钱", "芳"), "19910101").replace("COUNTYHOSP", "ELSEWHERE");
    s.write_all(&framed(&stranger)).await.unwrap();
    let ack = read_ack(&mut s).await;
    assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AR"));
    assert!(ack.get("ERR-8").unwrap().unwrap().contains("unregistered sender"));
    let mdm = "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124||MDM^T02|X-2|P|2.5.1\rPID|1||1^^^^MR\rTXA|1|CN\r";
    s.write_all(&framed(mdm)).await.unwrap();
    let ack = read_ack(&mut s).await;
    assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AR"));
    assert!(ack.get("ERR-8").unwrap().unwrap().contains("MDM^T02"));
    // A wrong check character: AE with the reason, nothing registered.
    let bad_id = wrong_check_character(&id_number("340524", "1991-01-01", 54));
    let bad = adt("X-3", &bad_id, ("孙", "雪"), "19910101");
    s.write_all(&framed(&bad)).await.unwrap();
    let ack = read_ack(&mut s).await;
    assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AE"));
    assert!(ack.get("ERR-8").unwrap().unwrap().contains("校验位"));
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, found) = county.get_json("/api/persons?q=孙雪").await;
    assert_eq!(found["persons"].as_array().unwrap().len(), 0);
    // GB 18030 declared but sent as UTF-8 bytes with Chinese text: refused, never stored as mojibake.
    let lying = adt("X-4", &id_number("340524", "1991-01-01", 56), ("周", "婷"), "19910101")
        .replace("UNICODE UTF-8", "GB 18030-2000");
    s.write_all(&framed(&lying)).await.unwrap();
    assert_eq!(read_ack(&mut s).await.get("MSA-1").unwrap().as_deref(), Some("AE"));
    // Garbage without a start block closes the connection cleanly; other connections carry on.
    let mut junk = TcpStream::connect(&app.mllp).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), junk.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let ok = adt("X-5", &id_number("340524", "1994-04-04", 58), ("吴", "静"), "19940404");
    s.write_all(&framed(&ok)).await.unwrap();
    assert_eq!(read_ack(&mut s).await.get("MSA-1").unwrap().as_deref(), Some("AA"));
}

#[tokio::test]
async fn a_sender_outside_her_jurisdiction_is_refused_and_the_refusal_is_audited() {
    let app = app_with_sender().await;
    mch_chain::hl7::service::add_sender(&app.db, "NBRHIS", "NBRHOSP", "NBR", "utf8")
        .await
        .unwrap();
    let id = id_number("340524", "1995-05-05", 60);
    let mut s = TcpStream::connect(&app.mllp).await.unwrap();
    s.write_all(&framed(&adt("J-1", &id, ("郑", "慧"), "19950505")))
        .await
        .unwrap();
    assert_eq!(read_ack(&mut s).await.get("MSA-1").unwrap().as_deref(), Some("AA"));
    // The neighbouring county's hospital sends the same woman: refused, audited against her.
    let nbr = adt("J-2", &id, ("郑", "慧"), "19950505").replace("|HIS|COUNTYHOSP|", "|NBRHIS|NBRHOSP|");
    s.write_all(&framed(&nbr)).await.unwrap();
    let ack = read_ack(&mut s).await;
    assert_eq!(ack.get("MSA-1").unwrap().as_deref(), Some("AE"));
    let events = audit_of(&app, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor_name"] == "hl7:NBRHIS^NBRHOSP"),
        "{events:?}"
    );
}

/// The audit trail of the woman with this ID number, as the province's auditor reads it.
pub async fn audit_of(app: &TestApp, id_number: &str) -> Vec<serde_json::Value> {
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, found) = county.get_json(&format!("/api/persons?q={id_number}")).await;
    let person = found["persons"][0]["id"].as_str().unwrap().to_string();
    let mut auditor = app.login("auditor", "PROV").await;
    let (_, log) = auditor.get_json(&format!("/api/audit/persons/{person}")).await;
    log["events"].as_array().unwrap().clone()
}

// ------------------------------------------------------------------ enhanced acknowledgement mode

/// A connection that keeps what it has read, so two ACKs arriving in one read are both seen.
pub struct Conn {
    pub stream: TcpStream,
    decoder: mch_chain::hl7::mllp::Decoder,
    frames: std::collections::VecDeque<Vec<u8>>,
}

impl Conn {
    pub async fn open(app: &TestApp) -> Conn {
        Conn {
            stream: TcpStream::connect(&app.mllp).await.unwrap(),
            decoder: mch_chain::hl7::mllp::Decoder::new(1 << 20),
            frames: Default::default(),
        }
    }

    pub async fn send(&mut self, msg: &str) {
        self.stream.write_all(&framed(msg)).await.unwrap();
    }

    /// The next ACK within `wait`, or None.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Some(Message::parse(&f, Charset::Utf8).unwrap());
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?
                .unwrap();
            assert!(n > 0, "connection closed");
            for e in self.decoder.feed(&buf[..n]) {
                if let mch_chain::hl7::mllp::Event::Frame(f) = e {
                    self.frames.push_back(f);
                }
            }
        }
    }

    pub async fn next(&mut self) -> Message {
        self.next_within(Duration::from_secs(10)).await.expect("an ACK in time")
    }

    /// Send and collect every answer that arrives within a short quiet period.
    pub async fn exchange(&mut self, msg: &str) -> Vec<Message> {
        self.send(msg).await;
        let mut out = Vec::new();
        while let Some(m) = self
            .next_within(Duration::from_millis(if out.is_empty() { 1500 } else { 400 }))
            .await
        {
            out.push(m);
        }
        out
    }
}

pub fn msa(m: &Message) -> (String, String) {
    (
        m.get("MSA-1").unwrap().unwrap_or_default(),
        m.get("MSA-2").unwrap().unwrap_or_default(),
    )
}

/// The ADT sample with MSH-15 / MSH-16 set (enhanced mode).
fn enhanced(msg: &str, accept: &str, application: &str) -> String {
    msg.replacen(
        "|P|2.5.1|||||CHN|",
        &format!("|P|2.5.1|||{accept}|{application}|CHN|"),
        1,
    )
}

fn codes(acks: &[Message]) -> Vec<String> {
    acks.iter().map(|a| msa(a).0).collect()
}

#[tokio::test]
async fn enhanced_mode_sends_the_accept_ack_after_commit_and_the_application_ack_per_msh16() {
    let app = app_with_sender().await;
    let mut s = Conn::open(&app).await;
    // AL/NE: one CA, no application ACK; MSA-2 echoes MSH-10; a resend gets the same CA again.
    let a = enhanced(
        &adt(
            "ENH-1",
            &id_number("340524", "1990-01-01", 62),
            ("王", "一"),
            "19900101",
        ),
        "AL",
        "NE",
    );
    let first = s.exchange(&a).await;
    assert_eq!(codes(&first), ["CA"]);
    assert_eq!(msa(&first[0]).1, "ENH-1");
    assert_eq!(
        first[0].get("MSH-15").unwrap().as_deref(),
        Some("NE"),
        "our ACKs ask for no ACK"
    );
    let again = s.exchange(&a).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].text(), first[0].text(), "a resend gets the first answer");
    // AL/AL: CA then AA on the same connection.
    let b = enhanced(
        &adt(
            "ENH-2",
            &id_number("340524", "1990-02-02", 64),
            ("王", "二"),
            "19900202",
        ),
        "AL",
        "AL",
    );
    let acks = s.exchange(&b).await;
    assert_eq!(codes(&acks), ["CA", "AA"]);
    assert!(acks.iter().all(|m| msa(m).1 == "ENH-2"));
    // A content error: committed (CA), the application ACK says AE with the reason in ERR.
    let bad_id = wrong_check_character(&id_number("340524", "1990-03-03", 66));
    let c = enhanced(&adt("ENH-3", &bad_id, ("王", "三"), "19900303"), "AL", "ER");
    let acks = s.exchange(&c).await;
    assert_eq!(codes(&acks), ["CA", "AE"]);
    assert!(acks[1].get("ERR-8").unwrap().unwrap().contains("校验位"));
    assert!(acks[0].get("ERR-1").unwrap().is_none() && !acks[0].text().contains("ERR"));
    // NE/ER on success: nothing at all is sent, yet the message is stored and processed.
    let d = enhanced(
        &adt(
            "ENH-4",
            &id_number("340524", "1990-04-04", 68),
            ("王", "四"),
            "19900404",
        ),
        "NE",
        "ER",
    );
    assert!(s.exchange(&d).await.is_empty());
    // SU/SU after a content error: the accept ACK (CA, a success) is sent; the application ACK
    // (AE) is not, since SU asks only for successes.
    let bad2 = wrong_check_character(&id_number("340524", "1990-05-05", 70));
    let e = enhanced(&adt("ENH-5", &bad2, ("王", "五"), "19900505"), "SU", "SU");
    assert_eq!(codes(&s.exchange(&e).await), ["CA"]);
    let stored = app
        .db
        .read(|c| mch_chain::hl7::repo::recent(c, 10).map_err(mch_chain::storage::StorageError::from))
        .await
        .unwrap();
    let status_of = |id: &str| {
        stored
            .iter()
            .find(|(c, _, _)| c == id)
            .map(|(_, st, code)| (st.clone(), code.clone()))
    };
    assert_eq!(status_of("ENH-4"), Some(("processed".into(), "AA".into())));
    assert_eq!(status_of("ENH-3"), Some(("error".into(), "AE".into())));
    // An empty MSH-15/16 stays original mode.
    let f = adt(
        "ENH-6",
        &id_number("340524", "1990-06-06", 72),
        ("王", "六"),
        "19900606",
    );
    assert_eq!(codes(&s.exchange(&f).await), ["AA"]);
}

#[tokio::test]
async fn unknown_types_and_unsupported_versions_get_ar_in_original_and_cr_in_enhanced_mode_with_err() {
    let app = app_with_sender().await;
    let mut s = Conn::open(&app).await;
    let unknown = "MSH|^~\\&|HIS|COUNTYHOSP|MCH|CENTRE|20261124||ZZZ^Z99|V-1|P|2.5.1|||AL|AL\rPID|1\r";
    let acks = s.exchange(unknown).await;
    assert_eq!(codes(&acks), ["CR"], "rejected: no application ACK follows");
    assert_eq!(msa(&acks[0]).1, "V-1");
    assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("200"));
    let old =
        adt("V-2", &id_number("340524", "1990-07-07", 74), ("李", "一"), "19900707").replace("|P|2.5.1|", "|P|2.2|");
    let acks = s.exchange(&old).await;
    assert_eq!(codes(&acks), ["AR"]);
    assert_eq!(acks[0].get("ERR-3.1").unwrap().as_deref(), Some("203"));
    assert_eq!(acks[0].get("ERR-2").unwrap().as_deref(), Some("MSH^1^12"));
    let old_enh = enhanced(
        &adt("V-3", &id_number("340524", "1990-08-08", 76), ("李", "二"), "19900808"),
        "ER",
        "AL",
    )
    .replace("|P|2.5.1|", "|P|3.0|");
    let acks = s.exchange(&old_enh).await;
    assert_eq!(codes(&acks), ["CR"]);
    assert_eq!(msa(&acks[0]).1, "V-3");
    // An unregistered sender in enhanced mode: CR too.
    let stranger = enhanced(
        &adt("V-4", &id_number("340524", "1990-09-09", 78), ("李", "三"), "19900909"),
        "AL",
        "AL",
    )
    .replace("COUNTYHOSP", "ELSEWHERE");
    let acks = s.exchange(&stranger).await;
    assert_eq!(codes(&acks), ["CR"]);
    assert!(acks[0].get("ERR-8").unwrap().unwrap().contains("unregistered"));
}

// ------------------------------------------------------------------ limits (RELIABILITY 4, 12, 13)

#[tokio::test]
async fn a_full_writer_backlog_gets_ar_or_cr_system_busy_and_nothing_is_stored() {
    let app = crate::helpers::spawn_app_with(|s| s.mllp_max_backlog = 1).await;
    mch_chain::hl7::service::add_sender(&app.db, "HIS", "COUNTYHOSP", "COUNTY", "utf8")
        .await
        .unwrap();
    // Hold the writer busy with one slow unit: the backlog is now at its bound of 1.
    let db = app.db.clone();
    let slow = tokio::spawn(async move {
        db.write(|_| {
            std::thread::sleep(Duration::from_millis(1500));
            Ok::<_, mch_chain::storage::StorageError>(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.db.pending_writes(), 1);
    let mut s = Conn::open(&app).await;
    let msg = adt(
        "BUSY-1",
        &id_number("340524", "1992-05-05", 88),
        ("许", "晴"),
        "19920505",
    );
    s.send(&msg).await;
    let busy = s.next().await;
    assert_eq!(msa(&busy), ("AR".to_string(), "BUSY-1".to_string()));
    assert!(busy.get("ERR-8").unwrap().unwrap().contains("busy"));
    let acks = s
        .exchange(&enhanced(&msg.replace("BUSY-1", "BUSY-2"), "AL", "AL"))
        .await;
    assert_eq!(codes(&acks), ["CR"], "enhanced mode: CR, and no application ACK");
    slow.await.unwrap().unwrap();
    let stored = app
        .db
        .read(|c| mch_chain::hl7::repo::recent(c, 10).map_err(mch_chain::storage::StorageError::from))
        .await
        .unwrap();
    assert!(stored.is_empty(), "a busy answer stores nothing");
    // Once the writer has caught up, the resend is accepted and processed. The server's own
    // periodic jobs (escalation sweeps) also write, so with a backlog bound of 1 a resend can
    // meet one of them: a sender resends after a busy answer, and so does this test.
    let mut acks = Vec::new();
    for _ in 0..20 {
        while app.db.pending_writes() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acks = s.exchange(&msg).await;
        if codes(&acks) != ["AR"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(codes(&acks), ["AA"], "{}", acks[0].text());
}

#[tokio::test]
async fn two_hundred_idle_connections_exhaust_nothing_and_idle_ones_are_closed() {
    let app = crate::helpers::spawn_app_with(|s| s.mllp_idle_secs = 2).await;
    mch_chain::hl7::service::add_sender(&app.db, "HIS", "COUNTYHOSP", "COUNTY", "utf8")
        .await
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(&app.mllp).await.unwrap());
    }
    // A slow-loris: half a frame, then nothing.
    let mut loris = TcpStream::connect(&app.mllp).await.unwrap();
    loris.write_all(b"\x0bMSH|^~\\&|HIS|COUNTYHOSP").await.unwrap();
    let mut s = Conn::open(&app).await;
    let msg = adt(
        "IDLE-1",
        &id_number("340524", "1993-06-06", 90),
        ("邓", "洁"),
        "19930606",
    );
    assert_eq!(codes(&s.exchange(&msg).await), ["AA"], "a 202nd connection is served");
    // Idle connections (and the slow-loris) are closed after the idle timeout.
    let mut buf = [0u8; 16];
    for c in idle.iter_mut().take(5).chain(std::iter::once(&mut loris)) {
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("closed within the idle timeout")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
}

#[tokio::test]
async fn other_delimiters_lf_terminators_and_a_bom_are_read_over_mllp() {
    let app = app_with_sender().await;
    let id = id_number("340524", "1994-07-07", 92);
    let msg = format!(
        "\u{feff}MSH#*!@%#HIS#COUNTYHOSP#MCH#CENTRE#20261124083000##ADT*A04*ADT_A01#DELIM-1#P#2.5.1#####CHN#UNICODE UTF-8\n\
         PID#1##{id}***@T@2.16.156.10011.1.3@T@ISO*NNCHN##何@F@林*芳##19940707#F\n"
    );
    let mut s = Conn::open(&app).await;
    let acks = s.exchange(&msg).await;
    assert_eq!(
        msa(&acks[0]),
        ("AA".to_string(), "DELIM-1".to_string()),
        "{}",
        acks[0].text()
    );
    let mut county = app.login("clinician", "COUNTY").await;
    let (_, found) = county.get_json(&format!("/api/persons?q={id}")).await;
    assert_eq!(
        found["persons"][0]["name"], "何#林芳",
        "escaped delimiters in a name come out as text"
    );
}

/// hl7/README.md "unreadable message → AR": a frame in which no MSH can be read (text that is
/// not HL7, an empty frame, an MSH cut short, binary bytes) is answered AR — MSA-2 empty, since
/// there is no control id to echo, our own MSH-10, an ERR naming the problem — nothing is stored,
/// and the connection stays open for the sender's next message. Bytes outside a frame and a
/// frame over the size limit still close the connection, with memory bounded (RELIABILITY 11).
#[tokio::test]
async fn a_frame_without_a_readable_msh_is_answered_ar_and_the_connection_carries_on() {
    let app = app_with_sender().await;
    let mut s = Conn::open(&app).await;
    let mut control_ids = std::collections::HashSet::new();
    let junk: [&[u8]; 5] = [
        b"hello, this is not HL7",
        b"",
        b"MSH|^",
        b"EVN|A04|20261124083000\rPID|1||x\r",
        &[0x00, 0xff, 0xfe, 0x80, 0x1c, 0x0b, 0x7f],
    ];
    for bytes in junk {
        s.stream.write_all(&mch_chain::hl7::mllp::frame(bytes)).await.unwrap();
        let ack = s.next().await;
        assert_eq!(
            msa(&ack),
            ("AR".to_string(), String::new()),
            "{bytes:?}: {}",
            ack.text()
        );
        assert_eq!(ack.get("MSH-9.1").unwrap().as_deref(), Some("ACK"));
        let ours = ack.get("MSH-10").unwrap().unwrap_or_default();
        assert!(
            !ours.is_empty() && control_ids.insert(ours),
            "each AR has its own MSH-10"
        );
        assert!(
            ack.get("ERR-3.1").unwrap().is_some_and(|c| !c.is_empty()),
            "{}",
            ack.text()
        );
        assert!(ack.get("ERR-8").unwrap().unwrap_or_default().contains("MSH"));
    }
    // The same connection carries the next message.
    let ok = adt(
        "AFTER-JUNK-1",
        &id_number("340524", "1995-05-05", 94),
        ("冯", "雪"),
        "19950505",
    );
    let acks = s.exchange(&ok).await;
    assert_eq!(codes(&acks), ["AA"]);
    let stored = app
        .db
        .read(|c| mch_chain::hl7::repo::recent(c, 10).map_err(mch_chain::storage::StorageError::from))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "the unreadable frames stored nothing");
    // A frame over the limit still closes its connection, and a new one is served.
    let mut big = TcpStream::connect(&app.mllp).await.unwrap();
    let mut oversized = vec![0x0b];
    oversized.extend(std::iter::repeat_n(b'A', mch_chain::hl7::server::MAX_FRAME + 1024));
    let _ = big.write_all(&oversized).await; // the server may close before all is written
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), big.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "an oversized frame gets no answer: the connection is closed");
    let mut fresh = Conn::open(&app).await;
    let next = adt(
        "AFTER-JUNK-2",
        &id_number("340524", "1995-06-06", 96),
        ("冯", "霜"),
        "19950606",
    );
    assert_eq!(codes(&fresh.exchange(&next).await), ["AA"]);
}
