//! HL7 v2 mapping and acknowledgements. Pure: messages in, domain inputs and ACK text out.

use chrono::NaiveDateTime;

use super::er7::{Delimiters, Message, escape};
use crate::identity::model::PersonInput;

/// Original-mode acknowledgement codes (HL7 v2 table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Processed.
    Aa,
    /// Content error: the message was understood but its content is wrong (reason in ERR).
    Ae,
    /// Rejected: unsupported type, unknown sender, unreadable header.
    Ar,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Aa => "AA",
            AckCode::Ae => "AE",
            AckCode::Ar => "AR",
        }
    }
}

/// What a header says about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub sending_app: String,
    pub sending_facility: String,
    pub receiving_app: String,
    pub receiving_facility: String,
    pub message_type: String,
    pub trigger: String,
    pub control_id: String,
    pub version: String,
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
        }
    }
}

/// Build an original-mode ACK: MSA-2 echoes the inbound MSH-10; an ERR segment carries the reason
/// of an AE/AR. The ACK goes back with the sender and receiver swapped.
pub fn ack(h: &Header, code: AckCode, reason: &str, ack_control_id: &str, at: NaiveDateTime) -> String {
    let d = Delimiters::default();
    let e = |s: &str| escape(s, &d);
    let version = if h.version.is_empty() {
        "2.5.1"
    } else {
        h.version.as_str()
    };
    let mut out = format!(
        "MSH|^~\\&|{}|{}|{}|{}|{}||ACK^{}^ACK|{}|P|{}\rMSA|{}|{}",
        e(&h.receiving_app),
        e(&h.receiving_facility),
        e(&h.sending_app),
        e(&h.sending_facility),
        at.format("%Y%m%d%H%M%S"),
        e(&h.trigger),
        e(ack_control_id),
        e(version),
        code.as_str(),
        e(&h.control_id),
    );
    if code != AckCode::Aa {
        // ERR-3 HL7 error code (table 0357: 100 segment sequence, 200 unsupported message type,
        // 207 application error), ERR-4 severity E, ERR-8 the user message.
        let hl7_code = if code == AckCode::Ar {
            "200^Unsupported message type^HL70357"
        } else {
            "207^Application internal error^HL70357"
        };
        out.push_str(&format!("|{}\rERR|||{}|E||||{}", e(reason), hl7_code, e(reason)));
    }
    out.push('\r');
    out
}

/// Identifiers of PID-3 by type code (CX.5, table 0203; ARCHITECTURE.md "Identifiers").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidIdentifiers {
    pub id_number: Option<String>,
    pub health_card: Option<String>,
    pub mrn: Option<String>,
}

/// ADT A01/A04/A08: the patient's identity from PID.
pub fn adt_person(m: &Message) -> (PersonInput, PidIdentifiers) {
    let mut ids = PidIdentifiers::default();
    for rep in 1..=20 {
        let Some(value) = m.get(&format!("PID-3[{rep}].1")).ok().flatten() else {
            break;
        };
        let kind = first(m, &format!("PID-3[{rep}].5"));
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
        let a = ack(&h, AckCode::Ae, "身份证号校验位不正确|请核对", "ACK-1", at);
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
        let ok = ack(&h, AckCode::Aa, "", "ACK-2", at);
        assert!(!ok.contains("ERR"));
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
