//! HL7 v2 use cases: sender registration and receiving a message — stored durably with the ACK it
//! gets before that ACK is sent, processed once per (MSH-3, MSH-4, MSH-10), answered the same way
//! when resent.

use sha2::{Digest, Sha256};

use super::er7::{Charset, Message, ParseError};
use super::model::{AckCode, Header, ack, adt_person};
use super::repo::{self, StoredMessage};
use crate::auth::model::{Actor, ActorKind, Role};
use crate::error::ServiceError;
use crate::identity::model::HEALTH_CARD_SYSTEM;
use crate::ids::{new_id, now_utc, today_china};
use crate::storage::{AnyConnection, Db};

/// Register a sender (MSH-3/MSH-4) bound to one of our facilities (`hl7 sender add`).
pub async fn add_sender(
    db: &Db,
    app: &str,
    facility: &str,
    facility_code: &str,
    charset: &str,
) -> Result<String, ServiceError> {
    let (app, facility, code) = (
        app.trim().to_string(),
        facility.trim().to_string(),
        facility_code.to_string(),
    );
    if app.is_empty() || facility.is_empty() {
        return Err(ServiceError::invalid(
            "sending_app",
            "required",
            "MSH-3 and MSH-4 are required",
        ));
    }
    let charset = match charset {
        "utf8" | "UTF-8" | "" => "utf8",
        "gb18030" | "GB18030" => "gb18030",
        other => {
            return Err(ServiceError::invalid(
                "charset",
                "charset",
                format!("unknown charset {other} (utf8 or gb18030)"),
            ));
        }
    };
    db.write(move |c| {
        let f = crate::facility::repo::by_code(c, &code)?.ok_or(ServiceError::NotFound("没有这个机构代码"))?;
        if repo::sender(c, &app, &facility)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "sender {app}/{facility} is already registered"
            )));
        }
        let id = new_id();
        repo::insert_sender(c, &id, &app, &facility, &f.id, charset, now_utc())?;
        Ok(id)
    })
    .await
}

/// The header fields readable from raw bytes even when the whole message is not (for the AR).
fn raw_header(bytes: &[u8]) -> Option<Header> {
    let start = bytes.iter().position(|b| *b == b'M')?;
    let line = bytes.get(start..)?.split(|b| *b == b'\r' || *b == b'\n').next()?;
    if !line.starts_with(b"MSH") || line.len() < 8 {
        return None;
    }
    let sep = line[3];
    let comp = line[4];
    let fields: Vec<String> = line
        .split(|b| *b == sep)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let get = |n: usize| {
        fields
            .get(n - 1)
            .map(|f| f.split(comp as char).next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    let t: Vec<String> = fields
        .get(8)
        .map(|f| f.split(comp as char).map(str::to_string).collect())
        .unwrap_or_default();
    Some(Header {
        sending_app: get(3),
        sending_facility: get(4),
        receiving_app: get(5),
        receiving_facility: get(6),
        message_type: t.first().cloned().unwrap_or_default(),
        trigger: t.get(1).cloned().unwrap_or_default(),
        control_id: get(10),
        version: get(12),
    })
}

/// Receive one framed payload; the answer is the ACK to send, or None to close the connection
/// (no MSH could be read). Nothing is answered before the message and its ACK are committed.
pub async fn receive(db: &Db, bytes: Vec<u8>) -> Result<Option<String>, ServiceError> {
    let Some(header) = raw_header(&bytes) else {
        tracing::warn!("HL7 frame without a readable MSH: connection closed");
        return Ok(None);
    };
    if header.control_id.is_empty() {
        return Ok(Some(ack(
            &header,
            AckCode::Ar,
            "MSH-10 (message control id) is empty",
            &new_id(),
            now_utc(),
        )));
    }
    db.write(move |c| receive_in(c, header, bytes)).await.map(Some)
}

fn receive_in(c: &mut AnyConnection, header: Header, bytes: Vec<u8>) -> Result<String, ServiceError> {
    let hash = hex::encode(Sha256::digest(&bytes));
    if let Some((stored_hash, stored_ack)) =
        repo::stored(c, &header.sending_app, &header.sending_facility, &header.control_id)?
    {
        if stored_hash == hash {
            return Ok(stored_ack); // a resend: processed once, answered the same
        }
        tracing::warn!(control_id = %header.control_id, "MSH-10 reused with different content");
        return Ok(ack(
            &header,
            AckCode::Ae,
            "MSH-10 already used for a different message from this sender; not processed",
            &new_id(),
            now_utc(),
        ));
    }
    let now = now_utc();
    let sender = repo::sender(c, &header.sending_app, &header.sending_facility)?;
    let (code, reason, person_id, kind) = match sender {
        None => (
            AckCode::Ar,
            "unregistered sender (MSH-3/MSH-4)".to_string(),
            None,
            format!("{}^{}", header.message_type, header.trigger),
        ),
        Some((_, facility_id, charset)) => {
            let default = if charset == "gb18030" {
                Charset::Gb18030
            } else {
                Charset::Utf8
            };
            match Message::parse(&bytes, default) {
                Err(e @ (ParseError::InvalidText(_) | ParseError::UnsupportedCharset(_))) => {
                    (AckCode::Ae, e.to_string(), None, String::new())
                }
                Err(e) => (AckCode::Ar, e.to_string(), None, String::new()),
                Ok(m) => {
                    let kind = format!("{}^{}", header.message_type, header.trigger);
                    let facility = crate::facility::repo::by_id(c, &facility_id)?
                        .ok_or(ServiceError::NotFound("sender facility missing"))?;
                    let name = format!("hl7:{}^{}", header.sending_app, header.sending_facility);
                    let actor = Actor::new(ActorKind::ApiToken, None, &name, &name, Role::HospitalSystem, facility);
                    match kind.as_str() {
                        "ADT^A01" | "ADT^A04" | "ADT^A08" => {
                            // Mapping runs in a savepoint: a content error undoes it, the message stays stored.
                            match crate::storage::savepoint(c, |sp| map_adt(sp, &actor, &m)) {
                                Ok(pid) => (AckCode::Aa, String::new(), Some(pid), kind),
                                Err(e) => {
                                    // A refusal is audited against the woman, like any other door's.
                                    if let ServiceError::Forbidden { target: Some(t), .. } = &e {
                                        let ev = crate::audit::service::event(
                                            &actor,
                                            "create",
                                            crate::audit::model::Outcome::Denied,
                                            t,
                                            "interface access refused",
                                        );
                                        crate::audit::repo::append(c, ev)?;
                                    }
                                    (AckCode::Ae, e.to_string(), None, kind)
                                }
                            }
                        }
                        _ => (
                            AckCode::Ar,
                            format!("message type {kind} is not supported by this interface"),
                            None,
                            kind,
                        ),
                    }
                }
            }
        }
    };
    let ack_text = ack(&header, code, &reason, &new_id(), now);
    let status = match code {
        AckCode::Aa => "processed",
        AckCode::Ae => "error",
        AckCode::Ar => "rejected",
    };
    repo::insert_message(
        c,
        &StoredMessage {
            id: &new_id(),
            sending_app: &header.sending_app,
            sending_facility: &header.sending_facility,
            control_id: &header.control_id,
            message_type: &kind,
            raw: &bytes,
            content_hash: &hash,
            status,
            ack_code: code.as_str(),
            ack: &ack_text,
            error: &reason,
            person_id: person_id.as_deref(),
            received_at: now,
        },
    )?;
    Ok(ack_text)
}

fn map_adt(c: &mut AnyConnection, actor: &Actor, m: &Message) -> Result<String, ServiceError> {
    let (input, ids) = adt_person(m);
    let new = input.validate(today_china())?;
    let mut extra = Vec::new();
    if let Some(hc) = ids.health_card {
        extra.push((HEALTH_CARD_SYSTEM.to_string(), hc));
    }
    if let Some(mrn) = ids.mrn {
        extra.push((format!("mrn:{}", actor.facility.code), mrn));
    }
    let (person, _) = crate::identity::service::find_or_create(c, actor, new, &extra)?;
    Ok(person.id)
}
