//! Outbound referral messages (hl7/README.md "Outbound"), pure: which destinations an event goes
//! to, the REF^I12 / RRI^I12 layout, control ids, judging the ACK that comes back, and the retry
//! backoff. No I/O here: `outbox.rs` gathers the data, stores and delivers.

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::er7::{Charset, Delimiters, Message, escape};
use crate::referral::model::{Details, Feedback, Party, PatientKind, State, Urgency, Verb};

/// Our application name in MSH-3.
pub const SENDING_APP: &str = "MCH-CHAIN";
/// The assigning authority of our referral ids in RF1-6 and of our person ids in PID-3.
pub const AUTHORITY: &str = "MCH-CHAIN";

/// The two outbound messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// REF^I12: the referring side tells the referred-to side (send, depart, cancel, close, details).
    Ref,
    /// RRI^I12: the referred-to side answers (acknowledge, accept, reject, redirect, arrive, feedback).
    Rri,
}

impl Kind {
    /// MSH-9 as written.
    pub fn msh9(self) -> &'static str {
        match self {
            Kind::Ref => "REF^I12^REF_I12",
            Kind::Rri => "RRI^I12^RRI_I12",
        }
    }

    /// The message type as stored and listed (`REF^I12`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ref => "REF^I12",
            Kind::Rri => "RRI^I12",
        }
    }
}

/// Where one referral event goes: (message, facility id whose destination receives it).
///
/// * The referring side acted (send, depart, cancel, close, a details update) → REF^I12 to the
///   facility the referral now points at (after a rejection and a new send: the new receiver).
/// * The referred-to side acted → RRI^I12 to the referring facility; a redirect also sends a
///   REF^I12 to the new receiver (the referral's `to` after the redirect).
///
/// `party` is the side whose facility produced the event (close may come from either side).
pub fn routes(verb: Verb, party: Party, from_facility_id: &str, to_facility_id: &str) -> Vec<(Kind, String)> {
    match party {
        Party::Sender => vec![(Kind::Ref, to_facility_id.to_string())],
        Party::Receiver => {
            let mut out = vec![(Kind::Rri, from_facility_id.to_string())];
            if verb == Verb::Redirect {
                out.push((Kind::Ref, to_facility_id.to_string()));
            }
            out
        }
    }
}

/// A person as PID carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patient {
    pub person_id: String,
    pub id_number: Option<String>,
    pub health_card: Option<String>,
    pub name: String,
    pub birth_date: Option<NaiveDate>,
    /// `female`, `male` or anything else (unknown).
    pub sex: String,
}

/// Everything one outbound message says, gathered at enqueue time.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub kind: Kind,
    pub control_id: String,
    /// Event time (UTC); written in China time.
    pub at: NaiveDateTime,
    /// MSH-4: the code of our facility whose side produced the event.
    pub sending_facility: String,
    pub receiving_app: String,
    pub receiving_facility: String,
    pub charset: Charset,
    pub referral_id: String,
    pub state: State,
    pub urgency: Urgency,
    pub patient_kind: PatientKind,
    /// RF1-10: the event's reason (reject, redirect, cancel) or the referral's reason.
    pub reason: String,
    pub from_code: String,
    pub referring_name: String,
    pub to_code: String,
    /// The hand-over's receiving doctor, if the patient has arrived.
    pub received_by: String,
    pub patient: Patient,
    pub details: Details,
    /// Sent in RRI^I12 (DG1 + ZFB) when the event is the feedback.
    pub feedback: Option<Feedback>,
}

/// An HL7 DTM in China time (UTC+8), `YYYYMMDDHHMMSS`, no offset: the profile reads a time
/// without an offset as China time (`model::parse_dtm`).
pub fn china_dtm(utc: NaiveDateTime) -> String {
    (utc + Duration::hours(8)).format("%Y%m%d%H%M%S").to_string()
}

/// A 20-character control id (MSH-10 is at most 20 characters up to v2.5) from a UUID v7:
/// its 48-bit millisecond time, its 12 `rand_a` bits and the top 40 of `rand_b` (where the uuid
/// crate keeps its per-millisecond counter) in Crockford base 32, so ids sort by time and do not
/// collide in practice (the outbox's UNIQUE constraint is the last word).
pub fn control_id(uuid_v7: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = uuid_v7 >> 80;
    let rand_a = (uuid_v7 >> 64) & 0xFFF;
    let rand_b = (uuid_v7 >> 22) & 0xFF_FFFF_FFFF;
    let value = (millis << 52) | (rand_a << 40) | rand_b;
    (0..20)
        .rev()
        .map(|i| char::from(ALPHABET[((value >> (i * 5)) & 31) as usize]))
        .collect()
}

/// Chinese names: the first character is the family name, the rest the given name (XPN.1^XPN.2),
/// as inbound `adt_person` joins them back.
fn xpn(name: &str, d: &Delimiters) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    match chars.next() {
        None => String::new(),
        Some(family) => {
            let given: String = chars.collect();
            format!("{}{}{}", escape(&family.to_string(), d), d.component, escape(&given, d))
        }
    }
}

fn priority(u: Urgency) -> &'static str {
    // HL7 table 0280: S stat, A asap, R routine.
    match u {
        Urgency::Emergency => "S",
        Urgency::Urgent => "A",
        Urgency::Planned => "R",
    }
}

fn msh18(c: Charset) -> &'static str {
    match c {
        Charset::Utf8 => "UNICODE UTF-8",
        Charset::Gb18030 => "GB 18030-2000",
    }
}

/// The message text (segments ended by CR), every value escaped.
pub fn text(m: &Outbound) -> String {
    let d = Delimiters::default();
    let e = |s: &str| escape(s.trim(), &d);
    let at = china_dtm(m.at);
    let mut segs: Vec<String> = Vec::new();
    segs.push(format!(
        "MSH|^~\\&|{SENDING_APP}|{}|{}|{}|{at}||{}|{}|P|2.5||||||{}",
        e(&m.sending_facility),
        e(&m.receiving_app),
        e(&m.receiving_facility),
        m.kind.msh9(),
        e(&m.control_id),
        msh18(m.charset),
    ));
    segs.push(format!(
        "RF1|{}^{}^MCHSTATE|{}|{}^{}|||{}^{AUTHORITY}|{at}|||^{}",
        m.state.as_str(),
        m.state.label_zh(),
        priority(m.urgency),
        m.patient_kind.as_str(),
        m.patient_kind.label_zh(),
        e(&m.referral_id),
        e(&m.reason),
    ));
    segs.push(format!("PRD|RP|{}|||||{}", xpn(&m.referring_name, &d), e(&m.from_code)));
    segs.push(format!("PRD|RT|{}|||||{}", xpn(&m.received_by, &d), e(&m.to_code)));
    let p = &m.patient;
    let mut ids = Vec::new();
    if let Some(n) = p.id_number.as_deref().filter(|n| !n.trim().is_empty()) {
        ids.push(format!("{}^^^^NNCHN", e(n)));
    }
    if let Some(n) = p.health_card.as_deref().filter(|n| !n.trim().is_empty()) {
        ids.push(format!("{}^^^^HC", e(n)));
    }
    // Our own person id last: a newborn may have neither number yet, and PID-3 is required.
    ids.push(format!("{}^^^{AUTHORITY}^PI", e(&p.person_id)));
    let sex = match p.sex.as_str() {
        "female" => "F",
        "male" => "M",
        _ => "U",
    };
    segs.push(format!(
        "PID|1||{}||{}||{}|{sex}",
        ids.join("~"),
        xpn(&p.name, &d),
        p.birth_date.map(|b| b.format("%Y%m%d").to_string()).unwrap_or_default(),
    ));
    match m.kind {
        Kind::Ref => {
            if !m.details.diagnoses.trim().is_empty() {
                segs.push(format!("DG1|1|||{}", e(&m.details.diagnoses)));
            }
            let v = &m.details.vitals;
            let vitals: [(&str, &str, &str, Option<String>); 6] = [
                ("8480-6", "收缩压", "mm[Hg]", v.systolic_mmhg.map(|x| x.to_string())),
                ("8462-4", "舒张压", "mm[Hg]", v.diastolic_mmhg.map(|x| x.to_string())),
                ("8867-4", "脉搏", "/min", v.pulse_per_min.map(|x| x.to_string())),
                ("9279-1", "呼吸", "/min", v.resp_per_min.map(|x| x.to_string())),
                ("59408-5", "血氧饱和度", "%", v.spo2_percent.map(|x| x.to_string())),
                ("8310-5", "体温", "Cel", v.temperature_c.map(|x| x.to_string())),
            ];
            for (n, (code, label, unit, value)) in vitals
                .into_iter()
                .filter_map(|(c, l, u, v)| v.map(|v| (c, l, u, v)))
                .enumerate()
            {
                segs.push(format!(
                    "OBX|{}|NM|{code}^{label}^LN||{}|{unit}|||||F",
                    n + 1,
                    e(&value)
                ));
            }
            let notes = [
                ("已给予处理：", m.details.treatment.as_str()),
                ("护送：", m.details.escort.as_str()),
            ];
            for (n, (label, value)) in notes.iter().filter(|(_, v)| !v.trim().is_empty()).enumerate() {
                segs.push(format!("NTE|{}||{}", n + 1, e(&format!("{label}{}", value.trim()))));
            }
        }
        Kind::Rri => {
            if let Some(f) = &m.feedback {
                segs.push(format!("DG1|1|||{}", e(&f.diagnosis)));
                segs.push(format!(
                    "ZFB|{}|{}|{}|{}",
                    f.outcome.as_str(),
                    e(&f.treatment),
                    e(&f.signed_by),
                    e(&f.note)
                ));
            }
        }
    }
    let mut out = segs.join("\r");
    out.push('\r');
    out
}

/// The message as bytes of the destination's character set.
pub fn encode(m: &Outbound) -> Vec<u8> {
    let t = text(m);
    match m.charset {
        Charset::Utf8 => t.into_bytes(),
        Charset::Gb18030 => encoding_rs::GB18030.encode(&t).0.into_owned(),
    }
}

/// What an ACK frame means for the message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckVerdict {
    /// AA / CA with MSA-2 = our MSH-10: delivered. (code, the ACK's text)
    Acked(String, String),
    /// Not (yet) delivered; try again after the backoff: AR / CR, an ACK for another message,
    /// an unreadable answer. (reason, the ACK's text)
    Retry(String, String),
    /// AE / CE: the receiver says the content is wrong — resending the same bytes cannot help.
    Dead(String, String),
}

/// Judge one ACK frame against the control id we sent.
pub fn judge_ack(frame: &[u8], sent_control_id: &str, default: Charset) -> AckVerdict {
    let m = match Message::parse(frame, default) {
        Ok(m) => m,
        Err(e) => {
            return AckVerdict::Retry(
                format!("unreadable answer: {e}"),
                String::from_utf8_lossy(frame).into_owned(),
            );
        }
    };
    let text = m.text().to_string();
    let get = |p: &str| m.get(p).ok().flatten().unwrap_or_default();
    let code = get("MSA-1").trim().to_ascii_uppercase();
    let answered = get("MSA-2");
    if code.is_empty() {
        return AckVerdict::Retry("the answer has no MSA segment".into(), text);
    }
    if answered.trim() != sent_control_id {
        return AckVerdict::Retry(
            format!(
                "MSA-2 {} does not match the sent MSH-10 {sent_control_id}: not our answer",
                answered.chars().take(40).collect::<String>()
            ),
            text,
        );
    }
    let why = [get("ERR-8"), get("MSA-3"), get("ERR-3.2")]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .unwrap_or_default();
    let why: String = why.chars().take(500).collect();
    match code.as_str() {
        "AA" | "CA" => AckVerdict::Acked(code, text),
        "AE" | "CE" => AckVerdict::Dead(format!("{code}: {why}"), text),
        "AR" | "CR" => AckVerdict::Retry(format!("{code}: {why}"), text),
        other => AckVerdict::Retry(
            format!("unknown MSA-1 {}", other.chars().take(8).collect::<String>()),
            text,
        ),
    }
}

/// Wait before the next attempt after `attempts` failed ones: 5 s · 2^(attempts−1), at most 10 min.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    Duration::seconds((5i64 << exp).min(600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::model::{Outcome, Vitals};

    fn sample(kind: Kind) -> Outbound {
        Outbound {
            kind,
            control_id: control_id(uuid::Uuid::now_v7().as_u128()),
            at: NaiveDate::from_ymd_opt(2026, 11, 24)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
            sending_facility: "TWN-A".into(),
            receiving_app: "HIS".into(),
            receiving_facility: "CTYHOSP".into(),
            charset: Charset::Utf8,
            referral_id: "0193a5b2-0000-7000-8000-000000000001".into(),
            state: State::Sent,
            urgency: Urgency::Emergency,
            patient_kind: PatientKind::Maternal,
            reason: "产后出血 1500 ml|休克".into(),
            from_code: "TWN-A".into(),
            referring_name: "李医生".into(),
            to_code: "CTYHOSP".into(),
            received_by: String::new(),
            patient: Patient {
                person_id: "0193a5b2-0000-7000-8000-0000000000aa".into(),
                id_number: Some("34052419950101002X".into()),
                health_card: Some("HC123".into()),
                name: "周芳".into(),
                birth_date: NaiveDate::from_ymd_opt(1995, 1, 1),
                sex: "female".into(),
            },
            details: Details {
                diagnoses: "G2P1 孕30周；产后出血".into(),
                treatment: "缩宫素 20 U\r\n输液".into(),
                escort: "助产士^王".into(),
                vitals: Vitals {
                    systolic_mmhg: Some(82),
                    diastolic_mmhg: Some(50),
                    pulse_per_min: Some(128),
                    temperature_c: Some(36.5),
                    ..Vitals::default()
                },
                ..Details::default()
            },
            feedback: None,
        }
    }

    fn parsed(m: &Outbound) -> Message {
        Message::parse(&encode(m), Charset::Utf8).unwrap()
    }

    fn get(m: &Message, p: &str) -> String {
        m.get(p).unwrap().unwrap_or_default()
    }

    #[test]
    fn a_ref_carries_the_referral_the_patient_and_the_vitals_and_reads_back_by_path() {
        let o = sample(Kind::Ref);
        let m = parsed(&o);
        assert_eq!(get(&m, "MSH-3"), "MCH-CHAIN");
        assert_eq!(get(&m, "MSH-4"), "TWN-A");
        assert_eq!(get(&m, "MSH-5"), "HIS");
        assert_eq!(get(&m, "MSH-6"), "CTYHOSP");
        assert_eq!(get(&m, "MSH-7"), "20261124090203", "China time");
        assert_eq!(get(&m, "MSH-9"), "REF^I12^REF_I12");
        assert_eq!(get(&m, "MSH-10"), o.control_id);
        assert_eq!(get(&m, "MSH-11"), "P");
        assert_eq!(get(&m, "MSH-12"), "2.5");
        assert_eq!(get(&m, "MSH-15"), "", "original mode");
        assert_eq!(get(&m, "MSH-16"), "");
        assert_eq!(get(&m, "MSH-18"), "UNICODE UTF-8");
        assert_eq!(get(&m, "RF1-1.1"), "sent");
        assert_eq!(get(&m, "RF1-1.2"), "已发出");
        assert_eq!(get(&m, "RF1-2"), "S");
        assert_eq!(get(&m, "RF1-3.1"), "maternal");
        assert_eq!(get(&m, "RF1-6.1"), o.referral_id);
        assert_eq!(get(&m, "RF1-6.2"), "MCH-CHAIN");
        assert_eq!(get(&m, "RF1-7"), "20261124090203");
        assert_eq!(get(&m, "RF1-10.2"), "产后出血 1500 ml|休克", "escaped and read back");
        assert_eq!(get(&m, "RF1-11"), "");
        assert_eq!(get(&m, "PRD[1]-1"), "RP");
        assert_eq!(get(&m, "PRD[1]-2.1"), "李");
        assert_eq!(get(&m, "PRD[1]-2.2"), "医生");
        assert_eq!(get(&m, "PRD[1]-7"), "TWN-A");
        assert_eq!(get(&m, "PRD[2]-1"), "RT");
        assert_eq!(get(&m, "PRD[2]-7"), "CTYHOSP");
        assert_eq!(get(&m, "PID-3[1].1"), "34052419950101002X");
        assert_eq!(get(&m, "PID-3[1].5"), "NNCHN");
        assert_eq!(get(&m, "PID-3[2].1"), "HC123");
        assert_eq!(get(&m, "PID-3[2].5"), "HC");
        assert_eq!(get(&m, "PID-3[3].5"), "PI");
        assert_eq!(get(&m, "PID-5.1"), "周");
        assert_eq!(get(&m, "PID-5.2"), "芳");
        assert_eq!(get(&m, "PID-7"), "19950101");
        assert_eq!(get(&m, "PID-8"), "F");
        // The inbound reader gets the same woman back.
        let (person, ids) = super::super::model::adt_person(&m);
        assert_eq!(person.name, "周芳");
        assert_eq!(ids.id_number.as_deref(), Some("34052419950101002X"));
        assert_eq!(get(&m, "DG1-1"), "1");
        assert_eq!(get(&m, "DG1-4"), "G2P1 孕30周；产后出血");
        assert_eq!(get(&m, "OBX[1]-3.1"), "8480-6");
        assert_eq!(get(&m, "OBX[1]-3.3"), "LN");
        assert_eq!(get(&m, "OBX[1]-2"), "NM");
        assert_eq!(get(&m, "OBX[1]-5"), "82");
        assert_eq!(get(&m, "OBX[1]-6"), "mm[Hg]");
        assert_eq!(get(&m, "OBX[1]-11"), "F");
        assert_eq!(get(&m, "OBX[3]-3.1"), "8867-4");
        assert_eq!(get(&m, "OBX[3]-6"), "/min");
        assert_eq!(get(&m, "OBX[4]-3.1"), "8310-5");
        assert_eq!(get(&m, "OBX[4]-5"), "36.5");
        assert_eq!(get(&m, "OBX[4]-6"), "Cel");
        assert!(m.segment("OBX", 5).is_none(), "only known vitals");
        assert_eq!(get(&m, "NTE[1]-3"), "已给予处理：缩宫素 20 U\r\n输液");
        assert_eq!(get(&m, "NTE[2]-3"), "护送：助产士^王");
        assert!(m.segment("ZFB", 1).is_none());
        assert!(!m.text().contains("胎儿性别"));
        // Every segment on its own line: CR/LF in values were escaped.
        assert_eq!(m.segments().count(), 12);
    }

    #[test]
    fn an_rri_with_feedback_carries_dg1_and_zfb_and_no_sender_details() {
        let mut o = sample(Kind::Rri);
        o.state = State::FeedbackReturned;
        o.sending_facility = "CTYHOSP".into();
        o.received_by = "王主治".into();
        o.feedback = Some(Feedback {
            diagnosis: "产后出血，失血性休克".into(),
            treatment: "输血 6 U".into(),
            outcome: Outcome::Survived,
            note: "转回随访".into(),
            signed_by: "王主治".into(),
        });
        let m = parsed(&o);
        assert_eq!(get(&m, "MSH-9"), "RRI^I12^RRI_I12");
        assert_eq!(get(&m, "MSH-4"), "CTYHOSP");
        assert_eq!(get(&m, "RF1-1.1"), "feedback_returned");
        assert_eq!(get(&m, "PRD[2]-2.1"), "王");
        assert_eq!(get(&m, "PRD[2]-2.2"), "主治");
        assert_eq!(get(&m, "DG1-4"), "产后出血，失血性休克");
        assert_eq!(get(&m, "ZFB-1"), "survived");
        assert_eq!(get(&m, "ZFB-2"), "输血 6 U");
        assert_eq!(get(&m, "ZFB-3"), "王主治");
        assert_eq!(get(&m, "ZFB-4"), "转回随访");
        assert!(m.segment("OBX", 1).is_none() && m.segment("NTE", 1).is_none());
    }

    #[test]
    fn gb18030_destinations_get_gb18030_bytes_that_read_back() {
        let mut o = sample(Kind::Ref);
        o.charset = Charset::Gb18030;
        let bytes = encode(&o);
        assert!(std::str::from_utf8(&bytes).is_err(), "not UTF-8");
        let m = Message::parse(&bytes, Charset::Utf8).unwrap();
        assert_eq!(get(&m, "MSH-18"), "GB 18030-2000");
        assert_eq!(get(&m, "PID-5.1"), "周");
    }

    #[test]
    fn routes_follow_the_side_that_acted() {
        let r = |v, p| routes(v, p, "from", "to");
        assert_eq!(r(Verb::Send, Party::Sender), vec![(Kind::Ref, "to".to_string())]);
        assert_eq!(r(Verb::Close, Party::Receiver), vec![(Kind::Rri, "from".to_string())]);
        assert_eq!(r(Verb::Accept, Party::Receiver), vec![(Kind::Rri, "from".to_string())]);
        assert_eq!(
            r(Verb::Redirect, Party::Receiver),
            vec![(Kind::Rri, "from".to_string()), (Kind::Ref, "to".to_string())]
        );
    }

    #[test]
    fn control_ids_are_20_characters_unique_and_time_ordered() {
        let ids: Vec<String> = (0..2000).map(|_| control_id(uuid::Uuid::now_v7().as_u128())).collect();
        assert!(ids.iter().all(|i| i.len() == 20 && i.is_ascii()));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert_eq!(&sorted, &ids, "UUID v7 order is kept");
    }

    #[test]
    fn acks_are_matched_on_msa2_and_judged_by_code() {
        let ack = |code: &str, ctl: &str| {
            format!("MSH|^~\\&|HIS|CTYHOSP|MCH-CHAIN|TWN-A|20261124||ACK^I12^ACK|A1|P|2.5\rMSA|{code}|{ctl}|原因\r")
        };
        assert!(
            matches!(judge_ack(ack("AA", "C1").as_bytes(), "C1", Charset::Utf8), AckVerdict::Acked(c, _) if c == "AA")
        );
        assert!(matches!(
            judge_ack(ack("CA", "C1").as_bytes(), "C1", Charset::Utf8),
            AckVerdict::Acked(..)
        ));
        assert!(
            matches!(judge_ack(ack("AA", "C2").as_bytes(), "C1", Charset::Utf8), AckVerdict::Retry(why, _) if why.contains("MSA-2"))
        );
        assert!(matches!(
            judge_ack(ack("AR", "C1").as_bytes(), "C1", Charset::Utf8),
            AckVerdict::Retry(..)
        ));
        assert!(
            matches!(judge_ack(ack("AE", "C1").as_bytes(), "C1", Charset::Utf8), AckVerdict::Dead(why, _) if why.contains("原因"))
        );
        assert!(matches!(
            judge_ack(b"garbage", "C1", Charset::Utf8),
            AckVerdict::Retry(..)
        ));
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(10));
        assert_eq!(backoff(4), Duration::seconds(40));
        assert_eq!(backoff(8), Duration::seconds(600));
        assert_eq!(backoff(100), Duration::seconds(600));
        assert_eq!(backoff(0), Duration::seconds(5));
    }
}
