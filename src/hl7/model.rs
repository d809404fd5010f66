//! HL7 v2 mapping and acknowledgements. Pure: messages in, domain inputs and ACK text out.

use chrono::NaiveDateTime;

use super::er7::{Delimiters, Message, escape, unescape};
use crate::error::FieldError;
use crate::identity::model::PersonInput;
use crate::observations::model::ResultInput;

/// Acknowledgement codes (HL7 v2 table 0008): original mode AA/AE/AR (and the application
/// acknowledgement of enhanced mode), enhanced mode's accept acknowledgement CA/CE/CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Processed.
    Aa,
    /// Content error: the message was understood but its content is wrong (reason in ERR).
    Ae,
    /// Rejected: unsupported type or version, unknown sender, unreadable header, system busy.
    Ar,
    /// Commit accept: the message is in safe storage.
    Ca,
    /// Commit error: the message could not be accepted (unreadable text, control id reused).
    Ce,
    /// Commit reject: unsupported type or version, unknown sender, system busy.
    Cr,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Aa => "AA",
            AckCode::Ae => "AE",
            AckCode::Ar => "AR",
            AckCode::Ca => "CA",
            AckCode::Ce => "CE",
            AckCode::Cr => "CR",
        }
    }
}

/// When an acknowledgement is wanted (MSH-15 / MSH-16, HL7 table 0155).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckWhen {
    /// AL: always.
    Always,
    /// NE: never.
    Never,
    /// ER: only after an error or rejection.
    OnError,
    /// SU: only after success.
    OnSuccess,
}

impl AckWhen {
    /// An empty or unknown value counts as AL: answering is always safe for the sender (a
    /// resend of what it did not expect to be answered is processed once anyway).
    fn parse(value: &str) -> AckWhen {
        match value.trim() {
            "NE" => AckWhen::Never,
            "ER" => AckWhen::OnError,
            "SU" => AckWhen::OnSuccess,
            _ => AckWhen::Always,
        }
    }

    fn wants(self, success: bool) -> bool {
        match self {
            AckWhen::Always => true,
            AckWhen::Never => false,
            AckWhen::OnError => !success,
            AckWhen::OnSuccess => success,
        }
    }
}

/// Original mode (MSH-15 and MSH-16 both empty) or enhanced mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    Original,
    Enhanced { accept: AckWhen, application: AckWhen },
}

impl AckMode {
    pub fn of(h: &Header) -> AckMode {
        if h.accept_ack.trim().is_empty() && h.application_ack.trim().is_empty() {
            AckMode::Original
        } else {
            AckMode::Enhanced {
                accept: AckWhen::parse(&h.accept_ack),
                application: AckWhen::parse(&h.application_ack),
            }
        }
    }
}

/// HL7 error codes used in ERR-3 (table 0357).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 100 segment sequence error (a required segment missing: no readable MSH).
    SegmentSequence,
    /// 101 required field missing.
    RequiredField,
    /// 102 data type error (a value that is not what its type says, or impossible).
    DataType,
    /// 103 table value not found (a code we do not know).
    TableValue,
    /// 200 unsupported message type.
    UnsupportedType,
    /// 203 unsupported version id.
    UnsupportedVersion,
    /// 204 unknown key identifier (the patient is not known).
    UnknownKey,
    /// 207 application internal error (content refused by a rule, system busy).
    Application,
}

impl ErrorCode {
    fn as_cwe(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "100^Segment sequence error^HL70357",
            ErrorCode::RequiredField => "101^Required field missing^HL70357",
            ErrorCode::DataType => "102^Data type error^HL70357",
            ErrorCode::TableValue => "103^Table value not found^HL70357",
            ErrorCode::UnsupportedType => "200^Unsupported message type^HL70357",
            ErrorCode::UnsupportedVersion => "203^Unsupported version id^HL70357",
            ErrorCode::UnknownKey => "204^Unknown key identifier^HL70357",
            ErrorCode::Application => "207^Application internal error^HL70357",
        }
    }
}

/// ERR-4 severity (HL7 table 0516).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One ERR segment: what, how bad, where (ERR-2: segment id, its sequence, field), in words
/// that never quote the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: ErrorCode,
    pub severity: Severity,
    /// (segment id, segment sequence, field position)
    pub location: Option<(String, usize, usize)>,
    pub message: String,
}

impl Issue {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Issue {
        Issue {
            code,
            severity: Severity::Error,
            location: None,
            message: message.into(),
        }
    }

    pub fn warning(code: ErrorCode, message: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, message)
        }
    }

    pub fn at(mut self, segment: &str, sequence: usize, field: usize) -> Issue {
        self.location = Some((segment.to_string(), sequence, field));
        self
    }
}

/// What a header says about a message (all empty when no MSH could be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub sending_app: String,
    pub sending_facility: String,
    pub receiving_app: String,
    pub receiving_facility: String,
    pub message_type: String,
    pub trigger: String,
    pub control_id: String,
    pub version: String,
    /// MSH-15 accept acknowledgement type.
    pub accept_ack: String,
    /// MSH-16 application acknowledgement type.
    pub application_ack: String,
}

fn first(m: &Message, path: &str) -> String {
    m.get(path).ok().flatten().unwrap_or_default()
}

impl Header {
    pub fn of(m: &Message) -> Header {
        Header {
            sending_app: first(m, "MSH-3.1"),
            sending_facility: first(m, "MSH-4.1"),
            receiving_app: first(m, "MSH-5.1"),
            receiving_facility: first(m, "MSH-6.1"),
            message_type: first(m, "MSH-9.1"),
            trigger: first(m, "MSH-9.2"),
            control_id: first(m, "MSH-10"),
            version: first(m, "MSH-12.1"),
            accept_ack: first(m, "MSH-15"),
            application_ack: first(m, "MSH-16"),
        }
    }
}

/// HL7 v2 versions this interface reads (MSH-12). 2.1 and 2.2 lack the segments we map.
pub const SUPPORTED_VERSIONS: [&str; 12] = [
    "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9",
];

pub fn version_supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v.trim())
}

/// Build one ACK: MSA-2 echoes the inbound MSH-10; each issue becomes an ERR segment (and the
/// first error's words MSA-3). The ACK goes back with the sender and receiver swapped. ACKs of
/// enhanced mode ask for no acknowledgement of their own (MSH-15/16 = NE).
pub fn ack(
    h: &Header,
    code: AckCode,
    issues: &[Issue],
    enhanced: bool,
    ack_control_id: &str,
    at: NaiveDateTime,
) -> String {
    let d = Delimiters::default();
    let e = |s: &str| escape(s, &d);
    let version = if h.version.is_empty() {
        "2.5.1"
    } else {
        h.version.as_str()
    };
    let mut out = format!(
        "MSH|^~\\&|{}|{}|{}|{}|{}||ACK^{}^ACK|{}|P|{}{}\rMSA|{}|{}",
        e(&h.receiving_app),
        e(&h.receiving_facility),
        e(&h.sending_app),
        e(&h.sending_facility),
        at.format("%Y%m%d%H%M%S"),
        e(&h.trigger),
        e(ack_control_id),
        e(version),
        if enhanced { "|||NE|NE" } else { "" },
        code.as_str(),
        e(&h.control_id),
    );
    if let Some(first_error) = issues.iter().find(|i| i.severity == Severity::Error) {
        out.push_str(&format!("|{}", e(&first_error.message)));
    }
    for i in issues {
        let location = i
            .location
            .as_ref()
            .map(|(seg, n, f)| format!("{}^{n}^{f}", e(seg)))
            .unwrap_or_default();
        let severity = match i.severity {
            Severity::Error => "E",
            Severity::Warning => "W",
        };
        out.push_str(&format!(
            "\rERR||{location}|{}|{severity}||||{}",
            i.code.as_cwe(),
            e(&i.message)
        ));
    }
    out.push('\r');
    out
}

/// What the processing of one message decided: the accept code (enhanced mode) and the
/// application code with its issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub accept: AckCode,
    pub application: AckCode,
    pub issues: Vec<Issue>,
}

impl Verdict {
    /// Refused before processing: AR in original mode, CR in enhanced mode.
    pub fn reject(issue: Issue) -> Verdict {
        Verdict {
            accept: AckCode::Cr,
            application: AckCode::Ar,
            issues: vec![issue],
        }
    }

    /// Stored but not readable as a message (CE / AE).
    pub fn commit_error(issue: Issue) -> Verdict {
        Verdict {
            accept: AckCode::Ce,
            application: AckCode::Ae,
            issues: vec![issue],
        }
    }

    /// Stored and processed: AA (warnings allowed) or AE when any issue is an error.
    pub fn processed(issues: Vec<Issue>) -> Verdict {
        let failed = issues.iter().any(|i| i.severity == Severity::Error);
        Verdict {
            accept: AckCode::Ca,
            application: if failed { AckCode::Ae } else { AckCode::Aa },
            issues,
        }
    }
}

/// The answers to send, in order, for a verdict (hl7/README.md "Acknowledgements").
/// * Original mode: one ACK with AA/AE/AR.
/// * Enhanced mode: the accept ACK (CA/CE/CR) when MSH-15 asks for it, then — only when the
///   message was accepted — the application ACK (AA/AE) when MSH-16 asks for it, on the same
///   connection right after (processing happens in the same commit, so both are known at once).
pub fn responses(h: &Header, v: &Verdict, mut next_id: impl FnMut() -> String, at: NaiveDateTime) -> Vec<String> {
    match AckMode::of(h) {
        AckMode::Original => vec![ack(h, v.application, &v.issues, false, &next_id(), at)],
        AckMode::Enhanced { accept, application } => {
            let accepted = v.accept == AckCode::Ca;
            let mut out = Vec::new();
            if accept.wants(accepted) {
                let issues: &[Issue] = if accepted { &[] } else { &v.issues };
                out.push(ack(h, v.accept, issues, true, &next_id(), at));
            }
            if accepted && application.wants(v.application == AckCode::Aa) {
                out.push(ack(h, v.application, &v.issues, true, &next_id(), at));
            }
            out
        }
    }
}

/// Identifiers of PID-3 by type code (CX.5, table 0203; ARCHITECTURE.md "Identifiers").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidIdentifiers {
    pub id_number: Option<String>,
    pub health_card: Option<String>,
    pub mrn: Option<String>,
}

/// The identifiers of a CX list field (`PID-3`, `MRG-1`) by type code.
pub fn identifiers_at(m: &Message, field: &str) -> PidIdentifiers {
    let mut ids = PidIdentifiers::default();
    for rep in 1..=20 {
        let Some(value) = m.get(&format!("{field}[{rep}].1")).ok().flatten() else {
            break;
        };
        let kind = first(m, &format!("{field}[{rep}].5"));
        let slot = match kind.as_str() {
            "NNCHN" => &mut ids.id_number,
            "HC" => &mut ids.health_card,
            "MR" => &mut ids.mrn,
            _ => continue,
        };
        if slot.is_none() && !value.trim().is_empty() {
            *slot = Some(value.trim().to_string());
        }
    }
    ids
}

/// ADT A01/A04/A08: the patient's identity from PID.
pub fn adt_person(m: &Message) -> (PersonInput, PidIdentifiers) {
    let ids = identifiers_at(m, "PID-3");
    // Chinese names: family name (XPN.1) then given name (XPN.2), without a space.
    let name = format!("{}{}", first(m, "PID-5.1"), first(m, "PID-5.2"));
    let birth = first(m, "PID-7.1");
    let birth_date = (birth.len() >= 8).then(|| format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..8]));
    let sex = match first(m, "PID-8").as_str() {
        "F" => Some("female".to_string()),
        "M" => Some("male".to_string()),
        "" => None,
        _ => Some("unknown".to_string()),
    };
    let address = [first(m, "PID-11.1"), first(m, "PID-11.3")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("，");
    let phone = first(m, "PID-13.1");
    let person = PersonInput {
        name,
        id_number: ids.id_number.clone(),
        sex,
        birth_date: birth_date.filter(|b| b.chars().all(|c| c.is_ascii_digit() || c == '-')),
        nation_code: None,
        phone: (!phone.is_empty()).then_some(phone),
        address: (!address.is_empty()).then_some(address),
    };
    (person, ids)
}

/// An HL7 date/time (DTM: `YYYYMMDD[HH[MM[SS[.S…]]]][±ZZZZ]`) as UTC. Without an offset the
/// time is China time (UTC+8), as hospitals here send it.
pub fn parse_dtm(value: &str) -> Option<NaiveDateTime> {
    let v = value.trim();
    let (body, offset) = match v.find(['+', '-']) {
        Some(i) => (&v[..i], Some(&v[i..])),
        None => (v, None),
    };
    let body = body.split('.').next().unwrap_or("");
    if body.len() < 8 || body.len() > 14 || body.len() % 2 != 0 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{body:0<14}");
    let local = NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S").ok()?;
    let minutes = match offset {
        None => 8 * 60,
        Some(o) if o.len() == 5 && o[1..].bytes().all(|b| b.is_ascii_digit()) => {
            let h: i64 = o[1..3].parse().ok()?;
            let m: i64 = o[3..5].parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        Some(_) => return None,
    };
    Some(local - chrono::Duration::minutes(minutes))
}

/// ORU^R01: each OBX as a result input (OBR-7 stands in for a missing OBX-14). A date/time that
/// cannot be read is an error naming its field.
pub fn oru_results(m: &Message) -> Result<Vec<ResultInput>, Vec<FieldError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut obr_time: Option<NaiveDateTime> = None;
    let mut obr_n = 0;
    let mut obx_n = 0;
    for seg in m.segments() {
        match seg.id() {
            "OBR" => {
                obr_n += 1;
                let raw = first(m, &format!("OBR[{obr_n}]-7.1"));
                obr_time = parse_dtm(&raw);
                if obr_time.is_none() && !raw.trim().is_empty() {
                    errors.push(FieldError::new(
                        &format!("OBR[{obr_n}]-7"),
                        "data_type",
                        format!("OBR[{obr_n}]-7: not an HL7 date/time"),
                    ));
                }
            }
            "OBX" => {
                obx_n += 1;
                let f = |path: &str| first(m, &format!("OBX[{obx_n}]-{path}"));
                let raw_time = f("14.1");
                let effective = if raw_time.trim().is_empty() {
                    obr_time
                } else {
                    let t = parse_dtm(&raw_time);
                    if t.is_none() {
                        errors.push(FieldError::new(
                            &format!("OBX[{obx_n}]-14"),
                            "data_type",
                            format!("OBX[{obx_n}]-14: not an HL7 date/time"),
                        ));
                    }
                    t
                };
                let value_type = f("2");
                let coded = matches!(value_type.trim(), "CE" | "CWE" | "CNE" | "CF");
                out.push(ResultInput {
                    index: obx_n,
                    value_type,
                    code: f("3.1"),
                    code_text: f("3.2"),
                    code_system: f("3.3"),
                    alt_code: f("3.4"),
                    alt_text: f("3.5"),
                    value: if coded { f("5.1") } else { f("5") },
                    value_text: if coded { f("5.2") } else { String::new() },
                    unit: f("6.1"),
                    abnormal_flag: f("8"),
                    status: f("11"),
                    effective,
                });
            }
            _ => {}
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Where a message holds what must not be kept (RULES.md §9.1): OBX-5 of the results at the given
/// positions and NTE-3 of the notes that follow them, and any field of any segment (but MSH) whose
/// text states fetal sex — as (segment position in the message, field) for
/// [`Message::with_fields_replaced`].
pub fn fetal_sex_fields(m: &Message, flagged: &[usize], mentions: impl Fn(&str) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut obx_n = 0;
    let mut in_flagged = false;
    for (i, seg) in m.segments().enumerate() {
        match seg.id() {
            "OBX" => {
                obx_n += 1;
                in_flagged = flagged.contains(&obx_n);
                if in_flagged {
                    out.push((i, 5));
                }
            }
            "OBR" => in_flagged = false,
            "NTE" if in_flagged => out.push((i, 3)),
            _ => {}
        }
        if seg.id() == "MSH" {
            continue;
        }
        for f in 1..=seg.field_count() {
            let text = seg.field(f).map(|t| unescape(t, &m.delimiters)).unwrap_or_default();
            if !out.contains(&(i, f)) && mentions(&text) {
                out.push((i, f));
            }
        }
    }
    out
}

/// Mask every ID-number-like run in a text (18 characters: 17 digits and a digit or X; or 15
/// digits): the message log shows messages to roles that may not see ID numbers whole.
pub fn mask_id_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i - start == 17 && i < chars.len() && matches!(chars[i], 'X' | 'x') {
            i += 1;
        }
        let run: String = chars[start..i].iter().collect();
        if run.len() == 18 || run.len() == 15 {
            out.push_str(&crate::identity::model::mask_id_number(&run));
        } else {
            out.push_str(&run);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::er7::Charset;

    #[test]
    fn an_ack_echoes_the_control_id_and_carries_the_reason() {
        let m = Message::parse(
            b"MSH|^~\\&|HIS|HOSP|MCH|CENTRE|20261124||ADT^A04^ADT_A01|M-1|P|2.5.1\rPID|1||X^^^^NNCHN\r",
            Charset::Utf8,
        )
        .unwrap();
        let h = Header::of(&m);
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap();
        let a = ack(
            &h,
            AckCode::Ae,
            &[Issue::error(ErrorCode::Application, "身份证号校验位不正确|请核对").at("PID", 1, 3)],
            false,
            "ACK-1",
            at,
        );
        let parsed = Message::parse(a.as_bytes(), Charset::Utf8).unwrap();
        assert_eq!(parsed.get("MSA-1").unwrap().as_deref(), Some("AE"));
        assert_eq!(parsed.get("MSA-2").unwrap().as_deref(), Some("M-1"));
        assert_eq!(parsed.get("MSH-3").unwrap().as_deref(), Some("MCH"));
        assert_eq!(parsed.get("MSH-5").unwrap().as_deref(), Some("HIS"));
        assert_eq!(parsed.get("MSH-9.2").unwrap().as_deref(), Some("A04"));
        assert_eq!(
            parsed.get("ERR-8").unwrap().as_deref(),
            Some("身份证号校验位不正确|请核对")
        );
        assert_eq!(parsed.get("ERR-2").unwrap().as_deref(), Some("PID^1^3"));
        assert_eq!(parsed.get("ERR-4").unwrap().as_deref(), Some("E"));
        assert_eq!(
            parsed.get("MSH-15").unwrap(),
            None,
            "original mode ACKs carry no MSH-15"
        );
        let ok = ack(&h, AckCode::Aa, &[], false, "ACK-2", at);
        assert!(!ok.contains("ERR"));
    }

    #[test]
    fn msh15_and_msh16_decide_which_acks_are_sent() {
        let m = Message::parse(
            b"MSH|^~\\&|HIS|HOSP|MCH|CENTRE|20261124||ADT^A04|M-1|P|2.5.1|||AL|ER\r",
            Charset::Utf8,
        )
        .unwrap();
        let mut h = Header::of(&m);
        let at = chrono::NaiveDateTime::default();
        let codes = |h: &Header, v: &Verdict| -> Vec<String> {
            responses(h, v, || "X".into(), at)
                .iter()
                .map(|a| {
                    Message::parse(a.as_bytes(), Charset::Utf8)
                        .unwrap()
                        .get("MSA-1")
                        .unwrap()
                        .unwrap()
                })
                .collect()
        };
        let ok = Verdict::processed(vec![]);
        let bad = Verdict::processed(vec![Issue::error(ErrorCode::DataType, "x")]);
        let rejected = Verdict::reject(Issue::error(ErrorCode::UnsupportedType, "x"));
        assert_eq!(codes(&h, &ok), ["CA"]);
        assert_eq!(codes(&h, &bad), ["CA", "AE"]);
        assert_eq!(codes(&h, &rejected), ["CR"]);
        h.accept_ack = "NE".into();
        h.application_ack = "NE".into();
        assert!(codes(&h, &bad).is_empty());
        h.accept_ack.clear();
        h.application_ack.clear();
        assert_eq!(codes(&h, &ok), ["AA"]);
        assert_eq!(codes(&h, &rejected), ["AR"]);
        // One of the two valued is enhanced mode; the empty one means AL.
        h.application_ack = "SU".into();
        assert_eq!(codes(&h, &ok), ["CA", "AA"]);
        assert_eq!(codes(&h, &bad), ["CA"]);
    }

    #[test]
    fn id_numbers_are_masked_anywhere_in_a_text_and_other_numbers_are_not() {
        let t = "PID|1||34052419800101001X^^^^NNCHN~340524800101001^^^^NNCHN||王||19800101|F|||||13900000000";
        let m = mask_id_numbers(t);
        assert!(!m.contains("34052419800101001X") && !m.contains("340524800101001"));
        assert!(m.contains("19800101") && m.contains("13900000000"));
    }

    #[test]
    fn hl7_times_are_read_as_utc_with_china_time_by_default() {
        let t = |s: &str| parse_dtm(s).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string());
        assert_eq!(t("20261124083000").as_deref(), Some("2026-11-24 00:30:00"));
        assert_eq!(t("20261124").as_deref(), Some("2026-11-23 16:00:00"));
        assert_eq!(t("202611240830+0000").as_deref(), Some("2026-11-24 08:30:00"));
        assert_eq!(t("20261124083000.123-0500").as_deref(), Some("2026-11-24 13:30:00"));
        assert_eq!(t("2026-11-24"), None);
        assert_eq!(t("20261340"), None);
    }

    #[test]
    fn oru_results_read_each_obx_and_name_bad_times() {
        let sample = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/hl7/samples/oru-r01-antenatal-utf8.hl7"
        ))
        .unwrap();
        let m = Message::parse(&sample, Charset::Utf8).unwrap();
        let r = oru_results(&m).unwrap();
        assert_eq!(r.len(), 7);
        assert_eq!(
            (r[0].code.as_str(), r[0].value.as_str(), r[0].unit.as_str()),
            ("718-7", "58", "g/L")
        );
        assert_eq!(r[4].value, "POS");
        assert_eq!(r[4].value_text, "阳性");
        assert_eq!(r[1].index, 2);
        assert!(r[1].effective.is_some(), "OBR-7 stands in for OBX-14");
        let bad = Message::parse(
            b"MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBX|1|NM|718-7||5||||||F|||2026x\r",
            Charset::Utf8,
        )
        .unwrap();
        assert_eq!(oru_results(&bad).unwrap_err()[0].field, "OBX[1]-14");
    }

    #[test]
    fn pid_identifiers_are_read_by_type_code() {
        let m = Message::parse(
            "MSH|^~\\&|HIS|HOSP|MCH|CENTRE|20261124||ADT^A04|M-1|P|2.5.1\rPID|1||M001^^^HOSP^MR~34052419800101001X^^^^NNCHN~34052419800101001X^^^^HC||王^小红||19800101|F|||东关镇^^示范县||139\r"
                .as_bytes(),
            Charset::Utf8,
        )
        .unwrap();
        let (p, ids) = adt_person(&m);
        assert_eq!(p.name, "王小红");
        assert_eq!(p.birth_date.as_deref(), Some("1980-01-01"));
        assert_eq!(p.sex.as_deref(), Some("female"));
        assert_eq!(
            ids,
            PidIdentifiers {
                id_number: Some("34052419800101001X".into()),
                health_card: Some("34052419800101001X".into()),
                mrn: Some("M001".into())
            }
        );
    }
}

// ------------------------------------------------------------------ vaccinations (VXU^V04)

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CvxRule {
    code: String,
    name: String,
    vaccine: String,
    certain: bool,
    #[serde(default)]
    note: Option<String>,
}

/// The vaccine codes of `rules/hl7/vaccines.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccineMap {
    id: String,
    programme_systems: Vec<String>,
    cvx_system: String,
    cvx: Vec<CvxRule>,
}

const VACCINES: &str = include_str!("../../rules/hl7/vaccines.toml");

impl VaccineMap {
    pub fn parse(text: &str) -> Result<VaccineMap, String> {
        toml::from_str(text).map_err(|e| format!("rules/hl7/vaccines.toml: {e}"))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The programme vaccine a CVX code stands for, and whether the mapping is certain.
    pub fn of_cvx(&self, code: &str) -> Option<(&str, bool)> {
        self.cvx
            .iter()
            .find(|r| r.code == code.trim())
            .map(|r| (r.vaccine.as_str(), r.certain))
    }

    /// Every mapped CVX code: (code, CDC short name, programme vaccine, certain, note).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &str, bool, Option<&str>)> {
        self.cvx.iter().map(|r| {
            (
                r.code.as_str(),
                r.name.as_str(),
                r.vaccine.as_str(),
                r.certain,
                r.note.as_deref(),
            )
        })
    }
}

/// The embedded vaccine map, parsed once (a unit test checks it parses and names programme
/// vaccines only).
pub fn vaccine_map() -> &'static VaccineMap {
    static M: std::sync::OnceLock<VaccineMap> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        VaccineMap::parse(VACCINES).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded vaccine map is invalid");
            VaccineMap {
                id: "invalid".into(),
                programme_systems: Vec::new(),
                cvx_system: String::new(),
                cvx: Vec::new(),
            }
        })
    })
}

/// A coded value's FHIR system for an HL7 coding system name (route, site: tables 0162, 0163).
fn coded_system(name: &str) -> String {
    match name.trim() {
        "" => String::new(),
        "HL70162" => "http://terminology.hl7.org/CodeSystem/v2-0162".into(),
        "HL70163" => "http://terminology.hl7.org/CodeSystem/v2-0163".into(),
        n if n.contains(':') => n.to_string(),
        n => format!("urn:mch-chain:hl7:{n}"),
    }
}

/// One RXA of a VXU^V04, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum RxaDose {
    /// A dose to record (with a warning for the ACK when its vaccine is not one of the
    /// programme's, or a new administration came without its traceability fields).
    Given(Box<crate::child::model::ReportedDose>, Vec<Issue>),
    /// RXA-20 says it was not given (`RE` refused, `NA` not administered): nothing to record.
    NotGiven(Issue),
}

/// VXU^V04: every RXA (with the RXR that follows it) as a dose of the child's, numbered from 1.
/// A value that cannot be read refuses the message, naming its field: RXA-3 (time given,
/// required), RXA-5 (the vaccine, required), RXA-16 (expiry), RXA-21 `D` (a dose is corrected at
/// the clinic, never deleted by a message). `programme` is the programme's vaccine codes;
/// `programme_system` the FHIR system of our codes; `source` names the sender for the record.
pub fn vxu_doses(
    m: &Message,
    map: &VaccineMap,
    programme: &[&str],
    source: &str,
) -> Result<Vec<(usize, RxaDose)>, Vec<Issue>> {
    use crate::child::model::{Coded, ReportedDose, ReportedVaccine};
    let mut out: Vec<(usize, RxaDose)> = Vec::new();
    let mut errors = Vec::new();
    let (mut rxa, mut rxr) = (0usize, 0usize);
    for seg in m.segments() {
        match seg.id() {
            "RXA" => {
                rxa += 1;
                let n = rxa;
                let f = |path: &str| first(m, &format!("RXA[{n}]-{path}")).trim().to_string();
                let err = |code: ErrorCode, field: usize, words: String| Issue::error(code, words).at("RXA", n, field);
                let mut warnings = Vec::new();
                // RXA-21 action code: A add, U update (recorded once: the same dose again is no
                // second dose), D delete.
                if f("21.1").eq_ignore_ascii_case("D") {
                    errors.push(err(
                        ErrorCode::Application,
                        21,
                        format!("RXA[{n}]-21: a dose is not deleted by message; the clinic marks a wrong record entered-in-error"),
                    ));
                    continue;
                }
                let status = f("20.1").to_ascii_uppercase();
                if status == "RE" || status == "NA" {
                    out.push((
                        n,
                        RxaDose::NotGiven(
                            Issue::warning(
                                ErrorCode::Application,
                                format!("RXA[{n}]-20: not administered ({status}); nothing recorded"),
                            )
                            .at("RXA", n, 20),
                        ),
                    ));
                    continue;
                }
                let raw_time = f("3.1");
                let body_len = raw_time
                    .split(['+', '-'])
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .len();
                let given_at = if raw_time.is_empty() {
                    errors.push(err(
                        ErrorCode::RequiredField,
                        3,
                        format!("RXA[{n}]-3: the date/time of administration is required"),
                    ));
                    None
                } else {
                    let t = parse_dtm(&raw_time);
                    if t.is_none() {
                        errors.push(err(ErrorCode::DataType, 3, format!("RXA[{n}]-3: not an HL7 date/time")));
                    }
                    t
                };
                // RXA-5: the identifier, then the alternate identifier.
                let codings: Vec<(String, String, String)> = [(1, 2, 3), (4, 5, 6)]
                    .into_iter()
                    .map(|(a, b, c)| (f(&format!("5.{a}")), f(&format!("5.{b}")), f(&format!("5.{c}"))))
                    .filter(|(code, text, _)| !code.is_empty() || !text.is_empty())
                    .collect();
                if codings.is_empty() {
                    errors.push(err(
                        ErrorCode::RequiredField,
                        5,
                        format!("RXA[{n}]-5: the administered vaccine is required"),
                    ));
                }
                let ours = |(code, _, system): &(String, String, String)| {
                    let local =
                        system.is_empty() || map.programme_systems.iter().any(|s| s.eq_ignore_ascii_case(system));
                    programme
                        .iter()
                        .find(|p| local && p.eq_ignore_ascii_case(code))
                        .map(|p| (p.to_string(), true))
                };
                let cvx = |(code, _, system): &(String, String, String)| {
                    if system.eq_ignore_ascii_case("CVX") {
                        map.of_cvx(code).map(|(v, certain)| (v.to_string(), certain))
                    } else {
                        None
                    }
                };
                let sent_as: Vec<Coded> = codings
                    .iter()
                    .map(|(code, text, system)| Coded {
                        system: if system.eq_ignore_ascii_case("CVX") {
                            map.cvx_system.clone()
                        } else {
                            coded_system(system)
                        },
                        code: code.clone(),
                        text: text.clone(),
                    })
                    .collect();
                let vaccine = match codings.iter().find_map(ours).or_else(|| codings.iter().find_map(cvx)) {
                    Some((code, certain)) => {
                        if !certain {
                            warnings.push(
                                Issue::warning(
                                    ErrorCode::TableValue,
                                    format!("RXA[{n}]-5: CVX code taken as {code}, a mapping still to be confirmed (rules/hl7/vaccines.toml)"),
                                )
                                .at("RXA", n, 5),
                            );
                        }
                        ReportedVaccine::Programme(code)
                    }
                    None => {
                        let (code, text, system) = codings.first().cloned().unwrap_or_default();
                        if !codings.is_empty() {
                            warnings.push(
                                Issue::warning(
                                    ErrorCode::TableValue,
                                    format!("RXA[{n}]-5: not a vaccine of the national programme in our mapping (rules/hl7/vaccines.toml): kept as sent, not counted in the schedule"),
                                )
                                .at("RXA", n, 5),
                            );
                        }
                        ReportedVaccine::Other {
                            system: sent_as
                                .first()
                                .map(|s| s.system.clone())
                                .unwrap_or_else(|| coded_system(&system)),
                            code,
                            text,
                        }
                    }
                };
                let raw_expiry = f("16.1");
                let expiry_date = if raw_expiry.is_empty() {
                    None
                } else {
                    let d = raw_expiry
                        .get(..8)
                        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok());
                    if d.is_none() {
                        errors.push(err(ErrorCode::DataType, 16, format!("RXA[{n}]-16: not an HL7 date")));
                    }
                    d
                };
                let some = |s: String| (!s.is_empty()).then_some(s);
                let manufacturer = some(f("17.2")).or_else(|| some(f("17.1")));
                let performer = some(format!("{}{}", f("10.2"), f("10.3")));
                let administered = f("9.1") == "00";
                let Some(given_at) = given_at else {
                    continue;
                };
                let dose = ReportedDose {
                    vaccine,
                    given_at,
                    date_only: body_len == 8,
                    sent_as,
                    lot_number: some(f("15.1")),
                    manufacturer,
                    expiry_date,
                    route: None,
                    site: None,
                    administered,
                    performer,
                    source: source.to_string(),
                };
                if dose.administered && !dose.traceable() {
                    warnings.push(
                        Issue::warning(
                            ErrorCode::RequiredField,
                            format!("RXA[{n}]-15/16/17: a new administration without lot, expiry or manufacturer is kept as a reported dose, not as the administering clinic's traceable record"),
                        )
                        .at("RXA", n, 15),
                    );
                }
                out.push((n, RxaDose::Given(Box::new(dose), warnings)));
            }
            "RXR" => {
                rxr += 1;
                let k = rxr;
                let g = |path: &str| first(m, &format!("RXR[{k}]-{path}")).trim().to_string();
                let coded = |field: usize| {
                    let (code, text, system) = (
                        g(&format!("{field}.1")),
                        g(&format!("{field}.2")),
                        g(&format!("{field}.3")),
                    );
                    (!code.is_empty() || !text.is_empty()).then(|| Coded {
                        system: coded_system(&system),
                        code,
                        text,
                    })
                };
                // The route and site of the RXA this RXR follows.
                if let Some((i, RxaDose::Given(d, _))) = out.last_mut()
                    && *i == rxa
                {
                    d.route = coded(1);
                    d.site = coded(2);
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

// ------------------------------------------------------------------ referrals (REF^I12, RRI^I12)

/// What a REF^I12 or RRI^I12 says about a referral (hl7/README.md "Referrals"). Pure reading:
/// the mapping decides what it means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferralMessage {
    /// `RF1-1.1`: our state code (`sent`, `accepted`, …) or an HL7 table 0283 code (`P`, `A`, `R`).
    pub status: String,
    /// `RF1-2.1`: HL7 table 0280 (`S` stat, `A` ASAP, `R` routine).
    pub priority: String,
    /// `RF1-3.1`: `maternal` or `newborn`.
    pub kind: String,
    /// `RF1-6`: the originating referral identifier and its assigning authority.
    pub originating_id: String,
    pub originating_authority: String,
    /// `RF1-11.1`: the other party's identifier (ours, when a hospital answers our REF).
    pub external_id: String,
    /// `RF1-10`: the reason (text, else code).
    pub reason: String,
    /// `PRD` with role `RP` / `RT`: the facility code (`PRD-7.1`) and the person (`PRD-2`).
    pub referring_facility: String,
    pub referred_to_facility: String,
    pub referred_to_person: String,
    /// `DG1-4` of every DG1, joined.
    pub diagnoses: String,
    /// Vital signs from OBX by LOINC: (code, value as sent, unit `OBX-6.1`, OBX index); OBX with
    /// result status `X` (cannot be obtained) or `D` (deleted) are left out.
    pub vitals: Vec<(String, String, String, usize)>,
    /// `NTE-3` of every NTE, joined.
    pub notes: String,
    /// `ZFB`: outcome code, treatment, signed by, note (feedback on an RRI).
    pub outcome: String,
    pub treatment: String,
    pub signed_by: String,
    pub feedback_note: String,
}

/// Read a REF^I12 / RRI^I12.
pub fn referral_message(m: &Message) -> ReferralMessage {
    let text_or_code = |path: &str| {
        let text = first(m, &format!("{path}.2"));
        if text.trim().is_empty() {
            first(m, &format!("{path}.1"))
        } else {
            text
        }
    };
    let mut r = ReferralMessage {
        status: first(m, "RF1-1.1").trim().to_string(),
        priority: first(m, "RF1-2.1").trim().to_string(),
        kind: first(m, "RF1-3.1").trim().to_string(),
        originating_id: first(m, "RF1-6.1").trim().to_string(),
        originating_authority: first(m, "RF1-6.2").trim().to_string(),
        external_id: first(m, "RF1-11.1").trim().to_string(),
        reason: text_or_code("RF1-10").trim().to_string(),
        ..ReferralMessage::default()
    };
    let (mut prd, mut dg1, mut obx, mut nte) = (0, 0, 0, 0);
    let mut diagnoses = Vec::new();
    let mut notes = Vec::new();
    for seg in m.segments() {
        match seg.id() {
            "PRD" => {
                prd += 1;
                let role = first(m, &format!("PRD[{prd}]-1.1"));
                let code = first(m, &format!("PRD[{prd}]-7.1")).trim().to_string();
                match role.trim() {
                    "RP" => r.referring_facility = code,
                    "RT" => {
                        r.referred_to_facility = code;
                        let name = format!(
                            "{}{}",
                            first(m, &format!("PRD[{prd}]-2.1")),
                            first(m, &format!("PRD[{prd}]-2.2"))
                        );
                        r.referred_to_person = name.trim().to_string();
                    }
                    _ => {}
                }
            }
            "DG1" => {
                dg1 += 1;
                let d = text_or_code(&format!("DG1[{dg1}]-3"));
                let text = first(m, &format!("DG1[{dg1}]-4"));
                let t = if text.trim().is_empty() { d } else { text };
                if !t.trim().is_empty() {
                    diagnoses.push(t.trim().to_string());
                }
            }
            "OBX" => {
                obx += 1;
                let code = first(m, &format!("OBX[{obx}]-3.1")).trim().to_string();
                let value = first(m, &format!("OBX[{obx}]-5")).trim().to_string();
                let unit = first(m, &format!("OBX[{obx}]-6.1")).trim().to_string();
                let status = first(m, &format!("OBX[{obx}]-11"));
                if !code.is_empty() && !value.is_empty() && !matches!(status.trim(), "X" | "D") {
                    r.vitals.push((code, value, unit, obx));
                }
            }
            "NTE" => {
                nte += 1;
                let t = first(m, &format!("NTE[{nte}]-3"));
                if !t.trim().is_empty() {
                    notes.push(t.trim().to_string());
                }
            }
            "ZFB" => {
                r.outcome = first(m, "ZFB-1.1").trim().to_string();
                r.treatment = first(m, "ZFB-2").trim().to_string();
                r.signed_by = first(m, "ZFB-3").trim().to_string();
                r.feedback_note = first(m, "ZFB-4").trim().to_string();
            }
            _ => {}
        }
    }
    r.diagnoses = diagnoses.join("；");
    r.notes = notes.join("；");
    r
}

/// HL7 table 0280 referral priority → our urgency code.
pub fn urgency_of_priority(p: &str) -> Option<&'static str> {
    match p {
        "S" => Some("emergency"),
        "A" => Some("urgent"),
        "R" => Some("planned"),
        _ => None,
    }
}

/// The LOINC codes of the vital signs a referral carries, the details field each fills and the
/// units accepted for it (UCUM first; empty = the field's own unit). Any other unit is refused,
/// never stored as if it were ours (a blood pressure in kPa is not one in mmHg).
pub const REFERRAL_VITALS: [(&str, &str, &[&str]); 6] = [
    ("8480-6", "systolic_mmhg", &["mm[Hg]", "mmHg", ""]),
    ("8462-4", "diastolic_mmhg", &["mm[Hg]", "mmHg", ""]),
    ("8867-4", "pulse_per_min", &["/min", "{beats}/min", "次/分", ""]),
    ("9279-1", "resp_per_min", &["/min", "{breaths}/min", "次/分", ""]),
    ("59408-5", "spo2_percent", &["%", ""]),
    ("8310-5", "temperature_c", &["Cel", "℃", "°C", ""]),
];

#[cfg(test)]
mod referral_sample_tests {
    use super::*;
    use crate::hl7::er7::Charset;

    #[test]
    fn the_referral_samples_read_as_the_profile_says() {
        let m = Message::parse(include_bytes!("../../hl7/samples/ref-i12-emergency.hl7"), Charset::Utf8).unwrap();
        let r = referral_message(&m);
        assert_eq!(
            (r.status.as_str(), r.priority.as_str(), r.kind.as_str()),
            ("sent", "S", "maternal")
        );
        assert_eq!(
            (r.originating_id.as_str(), r.originating_authority.as_str()),
            ("TWN-REF-0001", "TWNHIS")
        );
        assert_eq!(r.reason, "产后出血 1500 ml，休克");
        assert_eq!(
            (r.referring_facility.as_str(), r.referred_to_facility.as_str()),
            ("TWN-DONGGUAN", "COUNTY-HOSP")
        );
        assert_eq!(r.diagnoses, "产后出血，失血性休克");
        assert_eq!(r.vitals.len(), 3);
        assert_eq!(
            r.vitals[0],
            ("8480-6".to_string(), "78".to_string(), "mm[Hg]".to_string(), 1)
        );
        assert_eq!(urgency_of_priority(&r.priority), Some("emergency"));
        let m = Message::parse(include_bytes!("../../hl7/samples/rri-i12-feedback.hl7"), Charset::Utf8).unwrap();
        let r = referral_message(&m);
        assert_eq!(r.status, "feedback_returned");
        assert_eq!(r.originating_authority, "MCH-CHAIN");
        assert_eq!(r.referred_to_person, "王主治");
        assert_eq!((r.outcome.as_str(), r.signed_by.as_str()), ("survived", "王主治"));
        assert_eq!(r.treatment, "输红细胞 6 U，子宫动脉栓塞");
    }
}

#[cfg(test)]
mod vaccination_tests {
    use super::*;
    use crate::child::model::ReportedVaccine;
    use crate::hl7::er7::Charset;

    fn programme() -> Vec<&'static str> {
        crate::child::schedule::rules()
            .vaccines()
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    #[test]
    fn the_vaccine_map_parses_and_names_programme_vaccines_only() {
        let map = VaccineMap::parse(VACCINES).unwrap();
        let ours = programme();
        let mut seen = std::collections::HashSet::new();
        for (code, name, vaccine, _, _) in map.entries() {
            assert!(
                ours.contains(&vaccine),
                "CVX {code} ({name}) → {vaccine}: not a programme vaccine"
            );
            assert!(seen.insert(code.to_string()), "CVX {code} listed twice");
        }
        for v in ["HepB", "BCG", "IPV", "DTaP", "MMR"] {
            assert!(map.entries().any(|e| e.2 == v && e.3), "{v} has a certain CVX code");
        }
        assert_eq!(map.of_cvx("08"), Some(("HepB", true)));
        assert_eq!(map.of_cvx("28"), Some(("DT", false)));
        assert_eq!(map.of_cvx("141"), None, "influenza is not in the programme");
    }

    #[test]
    fn the_vxu_sample_reads_as_the_profile_says() {
        let m = Message::parse(include_bytes!("../../hl7/samples/vxu-v04-child.hl7"), Charset::Utf8).unwrap();
        let doses = vxu_doses(&m, vaccine_map(), &programme(), "test").unwrap();
        assert_eq!(doses.len(), 2);
        let RxaDose::Given(hepb, warnings) = &doses[0].1 else {
            panic!("{doses:?}")
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(hepb.vaccine, ReportedVaccine::Programme("HepB".into()));
        assert_eq!(hepb.given_at.to_string(), "2026-01-10 01:30:00", "09:30 China time");
        assert!(!hepb.date_only && hepb.administered && hepb.traceable());
        assert_eq!(hepb.lot_number.as_deref(), Some("202511A"));
        assert_eq!(hepb.manufacturer.as_deref(), Some("某生物制品有限公司"));
        assert_eq!(hepb.expiry_date.map(|d| d.to_string()).as_deref(), Some("2027-06-30"));
        assert_eq!(hepb.performer.as_deref(), Some("刘护士"));
        assert_eq!(hepb.route.as_ref().map(|r| r.code.as_str()), Some("IM"));
        assert_eq!(
            hepb.site.as_ref().map(|r| r.system.as_str()),
            Some("http://terminology.hl7.org/CodeSystem/v2-0163")
        );
        assert_eq!(hepb.sent_as[1].system, "http://hl7.org/fhir/sid/cvx");
        let RxaDose::Given(bcg, _) = &doses[1].1 else { panic!() };
        assert_eq!(bcg.vaccine, ReportedVaccine::Programme("BCG".into()), "CVX 19");
        assert!(bcg.date_only && !bcg.administered && !bcg.primary_source());
    }

    fn vxu(rxa: &str) -> Message {
        let text = format!("MSH|^~\\&|IIS|CDC|MCH|C|20260215||VXU^V04|X1|P|2.5.1\rPID|1||1^^^^NNCHN\r{rxa}\r");
        Message::parse(text.as_bytes(), Charset::Utf8).unwrap()
    }

    #[test]
    fn bad_rxa_values_are_refused_naming_their_field_and_refusals_are_not_recorded() {
        let e = vxu_doses(
            &vxu("RXA|0|1|2026-01-10||HepB^^99NIP\rRXA|0|1|20260110||\rRXA|0|1|20260110||BCG|||||||||||2027|||||D"),
            vaccine_map(),
            &programme(),
            "t",
        )
        .unwrap_err();
        let at: Vec<(usize, usize)> = e
            .iter()
            .map(|i| i.location.as_ref().map(|l| (l.1, l.2)).unwrap())
            .collect();
        assert_eq!(at, [(1, 3), (2, 5), (3, 21)], "{e:?}");
        let ok = vxu_doses(
            &vxu("RXA|0|1|20260110||HepB|||||||||||||||RE\rRXA|0|1|20260110||141^Influenza^CVX\rRXA|0|1|20260110||28^DT^CVX||||00"),
            vaccine_map(),
            &programme(),
            "t",
        )
        .unwrap();
        assert!(matches!(&ok[0].1, RxaDose::NotGiven(i) if i.location == Some(("RXA".into(), 1, 20))));
        let RxaDose::Given(flu, w) = &ok[1].1 else { panic!() };
        assert!(
            matches!(&flu.vaccine, ReportedVaccine::Other { system, code, .. } if system == "http://hl7.org/fhir/sid/cvx" && code == "141")
        );
        assert_eq!((w[0].code, w[0].severity), (ErrorCode::TableValue, Severity::Warning));
        let RxaDose::Given(dt, w) = &ok[2].1 else { panic!() };
        assert_eq!(dt.vaccine, ReportedVaccine::Programme("DT".into()));
        assert_eq!(
            w.len(),
            2,
            "an uncertain mapping and an untraceable new administration: {w:?}"
        );
    }
}
