//! HL7 v2 use cases: sender registration and receiving a message — stored durably with the ACK it
//! gets before that ACK is sent, processed once per (MSH-3, MSH-4, MSH-10), answered the same way
//! when resent.

use sha2::{Digest, Sha256};

use super::er7::{Charset, Message, ParseError};
use chrono::NaiveDateTime;

use super::model::{
    AckCode, AckMode, ErrorCode, Header, Issue, PidIdentifiers, Severity, Verdict, adt_person, fetal_sex_fields,
    mask_id_numbers, oru_results, responses, version_supported,
};
use serde::Serialize;

use super::repo::{self, MessageRow, StoredMessage};
use crate::audit::service::{guarded, record, record_many};
use crate::auth::model::{Action, Actor, ActorKind, Role};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::identity::model::HEALTH_CARD_SYSTEM;
use crate::ids::{new_id, now_utc, today_china};
use crate::storage::{AnyConnection, Db};

/// Register a sender (MSH-3/MSH-4) bound to one of our facilities (`hl7 sender add`).
/// The charset setting of a sender or destination (used when MSH-18 is empty).
pub fn charset_setting(charset: &str) -> Result<&'static str, ServiceError> {
    match charset {
        "utf8" | "UTF-8" | "" => Ok("utf8"),
        "gb18030" | "GB18030" => Ok("gb18030"),
        other => Err(ServiceError::invalid(
            "charset",
            "charset",
            format!("unknown charset {other} (utf8 or gb18030)"),
        )),
    }
}

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
    let charset = charset_setting(charset)?;
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
        accept_ack: get(15),
        application_ack: get(16),
    })
}

/// The stored answer of a message: its ACK messages in order, one per line.
fn join_answers(answers: &[String]) -> String {
    answers.join("\n")
}

/// The ACK messages of a stored answer (none when the sender asked for none).
pub fn split_answers(stored: &str) -> Vec<String> {
    stored
        .split('\n')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Receive one framed payload; the answer is the ACK messages to send in order (none when the
/// sender's MSH-15/MSH-16 ask for none). Nothing is answered before the message and its ACKs are
/// committed. A frame in which no MSH can be read is answered AR at once and not stored: there is
/// no sender to file it under and no control id to echo (MSA-2 empty), and the sender's
/// interface engine gets an answer instead of a dropped connection it would retry forever.
///
/// While `max_backlog` writes are already waiting to be stored, the message is refused with
/// AR (CR in enhanced mode) "system busy" and not stored: the sender resends later
/// (RELIABILITY.md 4).
pub async fn receive(db: &Db, bytes: Vec<u8>, max_backlog: u64) -> Result<Vec<String>, ServiceError> {
    let Some(header) = raw_header(&bytes) else {
        tracing::warn!(
            bytes = bytes.len(),
            "HL7 frame without a readable MSH: answered AR, not stored"
        );
        let v = Verdict::reject(Issue::error(
            ErrorCode::SegmentSequence,
            "no readable MSH segment at the start of the message; not accepted",
        ));
        return Ok(responses(&Header::default(), &v, new_id, now_utc()));
    };
    if header.control_id.is_empty() {
        let v = Verdict::reject(
            Issue::error(ErrorCode::RequiredField, "MSH-10 (message control id) is empty").at("MSH", 1, 10),
        );
        return Ok(responses(&header, &v, new_id, now_utc()));
    }
    if db.pending_writes() >= max_backlog {
        tracing::warn!(
            pending = db.pending_writes(),
            "HL7 message refused: the writer's backlog is full"
        );
        let v = Verdict::reject(Issue::error(
            ErrorCode::Application,
            "system busy: too many messages are waiting to be stored; not accepted, please resend later",
        ));
        return Ok(responses(&header, &v, new_id, now_utc()));
    }
    db.write(move |c| receive_in(c, header, bytes)).await
}

fn receive_in(c: &mut AnyConnection, header: Header, bytes: Vec<u8>) -> Result<Vec<String>, ServiceError> {
    let hash = hex::encode(Sha256::digest(&bytes));
    if let Some((stored_hash, stored_ack)) =
        repo::stored(c, &header.sending_app, &header.sending_facility, &header.control_id)?
    {
        if stored_hash == hash {
            return Ok(split_answers(&stored_ack)); // a resend: processed once, answered the same
        }
        tracing::warn!(control_id = %header.control_id, "MSH-10 reused with different content");
        let v = Verdict::commit_error(
            Issue::error(
                ErrorCode::Application,
                "MSH-10 already used for a different message from this sender; not processed",
            )
            .at("MSH", 1, 10),
        );
        return Ok(responses(&header, &v, new_id, now_utc()));
    }
    let now = now_utc();
    let message_id = new_id();
    let sender = repo::sender(c, &header.sending_app, &header.sending_facility)?;
    let done = match sender {
        None => Processed::rejected(
            &header,
            Issue::error(ErrorCode::Application, "unregistered sender (MSH-3/MSH-4)").at("MSH", 1, 3),
        ),
        Some((_, facility_id, charset)) => process(c, &header, &facility_id, &charset, &bytes, &message_id, now)?,
    };
    let answers = responses(&header, &done.verdict, new_id, now);
    let stored_ack = join_answers(&answers);
    let app = done.verdict.application;
    let (status, error) = outcome(&done.verdict);
    let accept_code = match AckMode::of(&header) {
        AckMode::Original => None,
        AckMode::Enhanced { .. } => Some(done.verdict.accept.as_str()),
    };
    repo::insert_message(
        c,
        &StoredMessage {
            id: &message_id,
            sending_app: &header.sending_app,
            sending_facility: &header.sending_facility,
            control_id: &header.control_id,
            message_type: &done.kind,
            raw: done.stored_raw.as_deref().unwrap_or(&bytes),
            content_hash: &hash,
            status,
            ack_code: app.as_str(),
            accept_code,
            ack: &stored_ack,
            error: &error,
            person_id: done.person_id.as_deref(),
            received_at: now,
        },
    )?;
    Ok(answers)
}

/// The stored status and error words of a verdict.
fn outcome(v: &Verdict) -> (&'static str, String) {
    let status = match v.application {
        AckCode::Aa => "processed",
        AckCode::Ar | AckCode::Cr => "rejected",
        _ => "error",
    };
    let error = v
        .issues
        .iter()
        .map(|i| i.message.as_str())
        .collect::<Vec<_>>()
        .join("；");
    (status, error)
}

/// What processing one message decided and touched.
struct Processed {
    verdict: Verdict,
    person_id: Option<String>,
    kind: String,
    /// The bytes to keep instead of the received ones (a fetal-sex finding removed, RULES.md §9.1).
    stored_raw: Option<Vec<u8>>,
}

impl Processed {
    fn rejected(h: &Header, issue: Issue) -> Processed {
        Processed {
            verdict: Verdict::reject(issue),
            person_id: None,
            kind: format!("{}^{}", h.message_type, h.trigger),
            stored_raw: None,
        }
    }
}

/// Why a mapping refused a message: an issue naming the field, or a rule of the service.
enum MappingError {
    Issues(Vec<Issue>),
    Service(ServiceError),
}

impl From<ServiceError> for MappingError {
    fn from(e: ServiceError) -> Self {
        MappingError::Service(e)
    }
}

impl From<diesel::result::Error> for MappingError {
    fn from(e: diesel::result::Error) -> Self {
        MappingError::Service(e.into())
    }
}

/// What a mapping produced: the woman it concerned, warnings for the ACK, and the bytes to keep
/// instead of the received ones when something had to be removed.
type Mapped = (Option<String>, Vec<Issue>, Option<Vec<u8>>);

/// The interface's actor: the registered sender, acting for its facility.
fn sender_actor(c: &mut AnyConnection, h: &Header, facility_id: &str) -> Result<Actor, ServiceError> {
    let facility =
        crate::facility::repo::by_id(c, facility_id)?.ok_or(ServiceError::NotFound("sender facility missing"))?;
    let name = format!("hl7:{}^{}", h.sending_app, h.sending_facility);
    Ok(Actor::new(
        ActorKind::ApiToken,
        None,
        &name,
        &name,
        Role::HospitalSystem,
        facility,
    ))
}

/// Parse and map one message from a registered sender (used on receipt and on replay).
fn process(
    c: &mut AnyConnection,
    header: &Header,
    facility_id: &str,
    charset: &str,
    bytes: &[u8],
    message_id: &str,
    received_at: NaiveDateTime,
) -> Result<Processed, ServiceError> {
    let default = if charset == "gb18030" {
        Charset::Gb18030
    } else {
        Charset::Utf8
    };
    let m = match Message::parse(bytes, default) {
        Ok(m) => m,
        Err(e @ (ParseError::InvalidText(_) | ParseError::UnsupportedCharset(_))) => {
            return Ok(Processed {
                verdict: Verdict::commit_error(Issue::error(ErrorCode::DataType, e.to_string()).at("MSH", 1, 18)),
                person_id: None,
                kind: String::new(),
                stored_raw: None,
            });
        }
        Err(e) => {
            return Ok(Processed::rejected(
                header,
                Issue::error(ErrorCode::Application, e.to_string()),
            ));
        }
    };
    let kind = format!("{}^{}", header.message_type, header.trigger);
    if !version_supported(&header.version) {
        let mut p = Processed::rejected(
            header,
            Issue::error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "HL7 version {} is not supported (MSH-12: 2.3 to 2.9)",
                    header.version.chars().take(12).collect::<String>()
                ),
            )
            .at("MSH", 1, 12),
        );
        p.kind = kind;
        return Ok(p);
    }
    let actor = sender_actor(c, header, facility_id)?;
    // Mapping runs in a savepoint: a content error undoes it, the message stays stored.
    let mapped: Result<Mapped, MappingError> = match kind.as_str() {
        "ADT^A01" | "ADT^A04" | "ADT^A08" => crate::storage::savepoint(c, |sp| {
            map_adt(sp, &actor, &m)
                .map(|pid| (Some(pid), Vec::new(), None))
                .map_err(MappingError::from)
        }),
        "ORU^R01" => crate::storage::savepoint(c, |sp| map_oru(sp, &actor, &m, message_id, received_at)),
        "ADT^A40" => crate::storage::savepoint(c, |sp| map_merge(sp, &actor, &m, message_id)),
        "REF^I12" => crate::storage::savepoint(c, |sp| map_ref(sp, &actor, header, &m, received_at)),
        "RRI^I12" => crate::storage::savepoint(c, |sp| map_rri(sp, &actor, &m, received_at)),
        "VXU^V04" => crate::storage::savepoint(c, |sp| map_vxu(sp, &actor, header, &m)),
        _ => {
            return Ok(Processed::rejected(
                header,
                Issue::error(
                    ErrorCode::UnsupportedType,
                    format!("message type {kind} is not supported by this interface"),
                )
                .at("MSH", 1, 9),
            ));
        }
    };
    // Whatever the mapping did, the stored copy never keeps a field that states fetal sex
    // (RULES.md §9.1); ORU^R01 also withholds the values of results flagged by code.
    let withheld = |stored_raw: Option<Vec<u8>>| {
        stored_raw.or_else(|| {
            let hide = fetal_sex_fields(&m, &[], crate::privacy::model::states_fetal_sex);
            (!hide.is_empty()).then(|| m.with_fields_replaced(&hide, WITHHELD))
        })
    };
    Ok(match mapped {
        Ok((person_id, warnings, stored_raw)) => Processed {
            verdict: Verdict::processed(warnings),
            person_id,
            kind,
            stored_raw: withheld(stored_raw),
        },
        Err(e) => {
            // A refusal is audited against the woman, like any other door's (a fetal-sex refusal
            // names the fields, never their text).
            let refused = match &e {
                MappingError::Service(ServiceError::Forbidden { target: Some(t), .. }) => {
                    Some((t.clone(), "interface access refused".to_string()))
                }
                MappingError::Service(ServiceError::Refused { fields, target }) => Some((
                    target.clone().unwrap_or_default(),
                    crate::privacy::service::refusal_detail(fields),
                )),
                _ => None,
            };
            if let Some((t, detail)) = refused {
                let ev =
                    crate::audit::service::event(&actor, "create", crate::audit::model::Outcome::Denied, &t, &detail);
                crate::audit::repo::append(c, ev)?;
            }
            let issues = match e {
                MappingError::Issues(i) => i,
                MappingError::Service(ServiceError::Invalid(fields) | ServiceError::Refused { fields, .. }) => {
                    fields.iter().map(|f| issue_of(f, Severity::Error)).collect()
                }
                MappingError::Service(e) => vec![Issue::error(ErrorCode::Application, e.to_string())],
            };
            Processed {
                verdict: Verdict::processed(issues),
                person_id: None,
                kind,
                stored_raw: withheld(None),
            }
        }
    })
}

/// The identifiers besides the ID number that a message's PID-3 carries, as stored: the health
/// card number, and the MRN kept per sending facility.
fn interface_ids(actor: &Actor, ids: PidIdentifiers) -> Vec<(String, String)> {
    let mut extra = Vec::new();
    if let Some(hc) = ids.health_card {
        extra.push((HEALTH_CARD_SYSTEM.to_string(), hc));
    }
    if let Some(mrn) = ids.mrn {
        extra.push((format!("mrn:{}", actor.facility.code), mrn));
    }
    extra
}

fn map_adt(c: &mut AnyConnection, actor: &Actor, m: &Message) -> Result<String, ServiceError> {
    let (input, ids) = adt_person(m);
    let new = input.validate(today_china())?;
    let extra = interface_ids(actor, ids);
    let (person, _) = crate::identity::service::find_or_create(c, actor, new, &extra)?;
    Ok(person.id)
}

/// A field error of a service (`OBX[3]-5`, or a plain field name) as an ERR segment.
fn issue_of(f: &FieldError, severity: Severity) -> Issue {
    let code = match f.code {
        "unknown_code" => ErrorCode::TableValue,
        "fetal_sex_withheld" => ErrorCode::Application,
        "data_type" | "range" | "unit" | "future" => ErrorCode::DataType,
        _ => ErrorCode::Application,
    };
    let location = f.field.split_once('-').and_then(|(seg, field)| {
        let (id, n) = match seg.split_once('[') {
            Some((id, n)) => (id, n.trim_end_matches(']').parse().ok()?),
            None => (seg, 1),
        };
        Some((id.to_string(), n, field.parse().ok()?))
    });
    let location = match (location, f.field.as_str()) {
        (Some(l), _) => Some(l),
        (None, "id_number") => Some(("PID".to_string(), 1, 3)),
        (None, _) => None,
    };
    Issue {
        code,
        severity,
        location,
        message: f.message.clone(),
    }
}

/// ORU^R01: identify the woman (PID-3, never creating her), record every OBX (nothing if any
/// value is wrong), re-grade when a result may change her risk, and keep the message without any
/// fetal-sex finding (RULES.md §9.1).
fn map_oru(
    c: &mut AnyConnection,
    actor: &Actor,
    m: &Message,
    message_id: &str,
    received_at: NaiveDateTime,
) -> Result<Mapped, MappingError> {
    let (input, ids) = adt_person(m);
    let extra = interface_ids(actor, ids);
    let person =
        crate::identity::service::identify(c, actor, Action::RecordResult, &input, &extra).map_err(|e| match e {
            ServiceError::NotFound(words) => MappingError::Issues(vec![
                Issue::error(ErrorCode::UnknownKey, format!("PID-3: {words}")).at("PID", 1, 3),
            ]),
            e => MappingError::Service(e),
        })?;
    let results = oru_results(m)
        .map_err(|errs| MappingError::Issues(errs.iter().map(|f| issue_of(f, Severity::Error)).collect()))?;
    if results.is_empty() {
        return Err(MappingError::Issues(vec![Issue::error(
            ErrorCode::RequiredField,
            "ORU^R01 without any OBX segment",
        )]));
    }
    let recorded = crate::observations::service::record_results(c, actor, &person, &results, message_id, received_at)?;
    let hide = fetal_sex_fields(m, &recorded.fetal_sex, crate::privacy::model::states_fetal_sex);
    let stored_raw = (!hide.is_empty()).then(|| m.with_fields_replaced(&hide, WITHHELD));
    let warnings = recorded
        .warnings
        .iter()
        .map(|f| issue_of(f, Severity::Warning))
        .collect();
    Ok((Some(person.id), warnings, stored_raw))
}

/// ADT^A40: merge the prior patient (`MRG-1`) into the surviving one (`PID-3`). Both must be
/// known; a merge that needs a person's judgement (two active pregnancies, different ID numbers)
/// is refused with AE and nothing changes.
fn map_merge(c: &mut AnyConnection, actor: &Actor, m: &Message, message_id: &str) -> Result<Mapped, MappingError> {
    let unknown = |seg: &str, field: usize, words: &str| {
        MappingError::Issues(vec![
            Issue::error(ErrorCode::UnknownKey, words.to_string()).at(seg, 1, field),
        ])
    };
    let (input, ids) = adt_person(m);
    let extra = interface_ids(actor, ids);
    let survivor =
        crate::identity::service::identify(c, actor, Action::RegisterPerson, &input, &extra).map_err(|e| match e {
            ServiceError::NotFound(_) => unknown("PID", 3, "PID-3: the surviving patient is not known"),
            e => MappingError::Service(e),
        })?;
    let prior_ids = super::model::identifiers_at(m, "MRG-1");
    let prior_number = prior_ids.id_number.clone();
    let prior_extra = interface_ids(actor, prior_ids);
    let prior = crate::identity::service::find_by_identifiers(c, prior_number.as_deref(), &prior_extra)?
        .filter(|p| p.id != survivor.id)
        .ok_or_else(|| unknown("MRG", 1, "MRG-1: the prior patient is not known (or already merged)"))?;
    crate::identity::service::merge(c, actor, &survivor, &prior, Some(message_id))?;
    Ok((Some(survivor.id), Vec::new(), None))
}

// ------------------------------------------------------------------ vaccinations

/// VXU^V04 from an immunisation information system: identify the child (PID-3, never creating
/// her: she must have a birth record), record each RXA as a reported dose through the child
/// feature — nothing if any value is wrong — and tell the sender which doses were already
/// recorded (the same vaccine the same day: recorded once), not given, or not programme vaccines.
fn map_vxu(c: &mut AnyConnection, actor: &Actor, h: &Header, m: &Message) -> Result<Mapped, MappingError> {
    use super::model::RxaDose;
    use crate::child::service::DoseOutcome;
    let unknown =
        |words: String| MappingError::Issues(vec![Issue::error(ErrorCode::UnknownKey, words).at("PID", 1, 3)]);
    let (input, ids) = adt_person(m);
    let extra = interface_ids(actor, ids);
    let person =
        crate::identity::service::identify(c, actor, Action::RecordResult, &input, &extra).map_err(|e| match e {
            ServiceError::NotFound(words) => unknown(format!("PID-3: {words}")),
            e => MappingError::Service(e),
        })?;
    let rules = crate::child::schedule::rules();
    let programme: Vec<&str> = rules.vaccines().into_iter().map(|(code, _)| code).collect();
    let source = format!("HL7 VXU^V04 {}^{}", h.sending_app, h.sending_facility);
    let doses =
        super::model::vxu_doses(m, super::model::vaccine_map(), &programme, &source).map_err(MappingError::Issues)?;
    if doses.is_empty() {
        return Err(MappingError::Issues(vec![Issue::error(
            ErrorCode::RequiredField,
            "VXU^V04 without any RXA segment",
        )]));
    }
    let mut warnings = Vec::new();
    for (n, dose) in doses {
        let (dose, mut notes) = match dose {
            RxaDose::NotGiven(w) => {
                warnings.push(w);
                continue;
            }
            RxaDose::Given(d, notes) => (d, notes),
        };
        match crate::child::service::record_reported_dose_in(c, actor, &person.id, &dose) {
            Ok(DoseOutcome::Recorded(_)) => warnings.append(&mut notes),
            Ok(DoseOutcome::AlreadyRecorded) => warnings.push(
                Issue::warning(
                    ErrorCode::Application,
                    format!("RXA[{n}]: this vaccine is already recorded for her on that day: recorded once"),
                )
                .at("RXA", n, 5),
            ),
            Err(ServiceError::NotFound(_)) => {
                return Err(unknown(
                    "PID-3: this person has no child health record (birth record)".into(),
                ));
            }
            Err(ServiceError::Invalid(fields)) => {
                return Err(MappingError::Issues(
                    fields
                        .iter()
                        .map(|f| {
                            let field = match f.field.as_str() {
                                "given_at" => 3,
                                "vaccine" => 5,
                                "lot_number" => 15,
                                "expiry_date" => 16,
                                "manufacturer" => 17,
                                _ => 5,
                            };
                            let code = match f.code {
                                "future" | "before_birth" => ErrorCode::DataType,
                                "unknown_code" => ErrorCode::TableValue,
                                _ => ErrorCode::Application,
                            };
                            Issue::error(code, format!("RXA[{n}]-{field}: {}", f.message)).at("RXA", n, field)
                        })
                        .collect(),
                ));
            }
            Err(e) => return Err(MappingError::Service(e)),
        }
    }
    Ok((Some(person.id), warnings, None))
}

// ------------------------------------------------------------------ referrals

fn required_issue(seg: &str, field: usize, words: &str) -> MappingError {
    MappingError::Issues(vec![
        Issue::error(ErrorCode::RequiredField, words.to_string()).at(seg, 1, field),
    ])
}

/// A refusal of the referral service as ERR segments: a state or side that does not allow the
/// action is an application error at `RF1-1`; bad fields name themselves.
fn referral_refusal(e: ServiceError) -> MappingError {
    match e {
        ServiceError::Conflict(words) => {
            MappingError::Issues(vec![Issue::error(ErrorCode::Application, words).at("RF1", 1, 1)])
        }
        ServiceError::NotFound(words) => MappingError::Issues(vec![
            Issue::error(ErrorCode::UnknownKey, words.to_string()).at("RF1", 1, 6),
        ]),
        e => MappingError::Service(e),
    }
}

/// The referral details a message carries: diagnoses (DG1), vital signs (OBX by LOINC), what was
/// given (NTE). A vital sign that is not a number is refused naming its OBX.
fn referral_details(msg: &super::model::ReferralMessage) -> Result<crate::referral::model::Details, MappingError> {
    use crate::referral::model::Details;
    let mut d = Details {
        diagnoses: msg.diagnoses.clone(),
        treatment: msg.notes.clone(),
        ..Details::default()
    };
    let mut issues = Vec::new();
    for (code, value, unit, n) in &msg.vitals {
        let Some((_, field, units)) = super::model::REFERRAL_VITALS.iter().find(|(c, _, _)| c == code) else {
            continue;
        };
        if !units.contains(&unit.as_str()) {
            issues.push(
                Issue::error(
                    ErrorCode::DataType,
                    format!(
                        "OBX[{n}]-6: unit {} is not one this field takes ({})",
                        unit.chars().take(20).collect::<String>(),
                        units[0]
                    ),
                )
                .at("OBX", *n, 6),
            );
            continue;
        }
        let bad = || Issue::error(ErrorCode::DataType, format!("OBX[{n}]-5: not a number")).at("OBX", *n, 5);
        let v = &mut d.vitals;
        if *field == "temperature_c" {
            match value.parse::<f32>() {
                Ok(t) if t.is_finite() => v.temperature_c = Some(t),
                _ => issues.push(bad()),
            }
            continue;
        }
        let Ok(x) = value.parse::<u16>() else {
            issues.push(bad());
            continue;
        };
        let slot = match *field {
            "systolic_mmhg" => &mut v.systolic_mmhg,
            "diastolic_mmhg" => &mut v.diastolic_mmhg,
            "pulse_per_min" => &mut v.pulse_per_min,
            "resp_per_min" => &mut v.resp_per_min,
            _ => &mut v.spo2_percent,
        };
        *slot = Some(x);
    }
    if issues.is_empty() {
        Ok(d)
    } else {
        Err(MappingError::Issues(issues))
    }
}

/// The state a verb leads to when it succeeds (to recognise a repeated answer).
fn state_after(verb: crate::referral::model::Verb) -> Option<crate::referral::model::State> {
    use crate::referral::model::{State, Verb};
    match verb {
        Verb::Acknowledge => Some(State::Acknowledged),
        Verb::Accept => Some(State::Accepted),
        Verb::Reject => Some(State::Rejected),
        Verb::Depart => Some(State::Departed),
        Verb::Arrive => Some(State::Arrived),
        Verb::Close => Some(State::Closed),
        Verb::Cancel => Some(State::Cancelled),
        Verb::Send | Verb::Redirect | Verb::Feedback => None,
    }
}

/// Do `verb` for the interface; the same answer twice (a hospital resending "accepted" under a
/// new control id) is recorded once and acknowledged with a warning.
fn referral_act(
    c: &mut AnyConnection,
    actor: &Actor,
    r: &crate::referral::model::ReferralRecord,
    verb: crate::referral::model::Verb,
    input: crate::referral::service::ActionInput,
    now: NaiveDateTime,
) -> Result<Vec<Issue>, MappingError> {
    match crate::referral::service::act_in(c, actor, &r.lifecycle.id, verb, input, now) {
        Ok(_) => Ok(Vec::new()),
        Err(ServiceError::Conflict(_))
            if state_after(verb) == Some(r.lifecycle.state)
                && crate::referral::service::last_done_by(c, &r.lifecycle.id, verb, &actor.facility.id)? =>
        {
            Ok(vec![
                Issue::warning(
                    ErrorCode::Application,
                    format!("referral already {}: recorded once", r.lifecycle.state.as_str()),
                )
                .at("RF1", 1, 1),
            ])
        }
        Err(e) => Err(referral_refusal(e)),
    }
}

/// REF^I12 from a hospital (the referring side): a new referral to one of our centres (`PRD` RT),
/// or — for a referral it opened before (its `RF1-6` id) — a re-send after a rejection, a
/// departure, a cancellation, a close or updated details.
fn map_ref(
    c: &mut AnyConnection,
    actor: &Actor,
    h: &Header,
    m: &Message,
    now: NaiveDateTime,
) -> Result<Mapped, MappingError> {
    use crate::referral::model::{State, Verb};
    use crate::referral::service::{self as referral, ActionInput, NewReferral};
    let msg = super::model::referral_message(m);
    let ours = msg.originating_authority == "MCH-CHAIN";
    if msg.originating_id.is_empty() {
        return Err(required_issue(
            "RF1",
            6,
            "RF1-6: the originating referral identifier is required",
        ));
    }
    let external_ref = (!ours).then(|| format!("{}|{}|{}", h.sending_app, h.sending_facility, msg.originating_id));
    let our_id = ours.then_some(msg.originating_id.as_str());
    let details = referral_details(&msg)?;
    if let Some(r) = referral::find_for_interface(c, our_id, external_ref.as_deref())? {
        let verb = match msg.status.as_str() {
            "departed" => Some(Verb::Depart),
            "cancelled" | "C" => Some(Verb::Cancel),
            "closed" => Some(Verb::Close),
            "sent" | "" if matches!(r.lifecycle.state, State::Draft | State::Rejected) => Some(Verb::Send),
            _ => None,
        };
        let warnings = match verb {
            Some(v) => {
                let input = ActionInput {
                    reason: Some(msg.reason.clone()).filter(|s| !s.is_empty()),
                    to_facility: Some(msg.referred_to_facility.clone()).filter(|s| !s.is_empty()),
                    ..ActionInput::default()
                };
                referral_act(c, actor, &r, v, input, now)?
            }
            None => {
                // The message carries diagnoses, vital signs and treatment; what else the record
                // holds (risk colour, gestational age, checklists) stays.
                let merged = r.details.overlaid(details);
                referral::update_details_in(c, actor, &r.lifecycle.id, merged, now).map_err(referral_refusal)?;
                Vec::new()
            }
        };
        return Ok((Some(r.person_id), warnings, None));
    }
    if ours {
        return Err(MappingError::Issues(vec![
            Issue::error(ErrorCode::UnknownKey, "RF1-6: no such referral").at("RF1", 1, 6),
        ]));
    }
    let Some(urgency) = super::model::urgency_of_priority(&msg.priority) else {
        return Err(required_issue(
            "RF1",
            2,
            "RF1-2: priority S, A or R (HL7 table 0280) is required",
        ));
    };
    if msg.referred_to_facility.is_empty() {
        return Err(required_issue(
            "PRD",
            7,
            "PRD-7: the referred-to centre (PRD-1 = RT) is required",
        ));
    }
    if msg.reason.is_empty() {
        return Err(required_issue("RF1", 10, "RF1-10: the referral reason is required"));
    }
    let (input, ids) = adt_person(m);
    let new = input.validate(today_china())?;
    let extra = interface_ids(actor, ids);
    let (person, _) = crate::identity::service::find_or_create(c, actor, new, &extra)?;
    // RF1-3 is ours (`maternal` / `newborn`); a hospital's own type code (HL7 table 0281 `Med` …)
    // must not refuse an emergency: the patient's age decides, and the sender is told.
    let mut warnings = Vec::new();
    let kind = match msg.kind.as_str() {
        "maternal" | "newborn" => msg.kind.clone(),
        other => {
            let newborn = (today_china() - person.birth_date).num_days() < 365;
            if !other.is_empty() {
                warnings.push(
                    Issue::warning(
                        ErrorCode::TableValue,
                        format!(
                            "RF1-3: type {} read as {}",
                            other.chars().take(20).collect::<String>(),
                            if newborn { "newborn" } else { "maternal" }
                        ),
                    )
                    .at("RF1", 1, 3),
                );
            }
            if newborn { "newborn".into() } else { "maternal".into() }
        }
    };
    let checked = NewReferral {
        person_id: person.id.clone(),
        urgency: urgency.to_string(),
        reason: msg.reason.clone(),
        to_facility: msg.referred_to_facility.clone(),
        patient_kind: Some(kind),
        details: Some(details),
        send: msg.status != "draft",
    }
    .check()
    .map_err(referral_refusal)?;
    referral::open_in(c, actor, checked, external_ref, now).map_err(referral_refusal)?;
    Ok((Some(person.id), warnings, None))
}

/// RRI^I12 from a receiving hospital: its answer to a referral it was sent (our id in `RF1-6`, or
/// in `RF1-11`): acknowledged, accepted, rejected, redirected (to `PRD` RT), arrived (hand-over
/// to `PRD-2` of RT), feedback (`DG1-4`, `ZFB`), closed.
fn map_rri(c: &mut AnyConnection, actor: &Actor, m: &Message, now: NaiveDateTime) -> Result<Mapped, MappingError> {
    use crate::referral::model::Verb;
    use crate::referral::service::{self as referral, ActionInput};
    let msg = super::model::referral_message(m);
    let r = referral::find_for_interface(c, Some(msg.originating_id.as_str()), None)?
        .or(referral::find_for_interface(c, Some(msg.external_id.as_str()), None)?)
        .ok_or_else(|| {
            MappingError::Issues(vec![
                Issue::error(ErrorCode::UnknownKey, "RF1-6 / RF1-11: no such referral").at("RF1", 1, 6),
            ])
        })?;
    let verb = match msg.status.as_str() {
        "acknowledged" | "P" => Verb::Acknowledge,
        "accepted" | "A" => Verb::Accept,
        "rejected" | "R" => Verb::Reject,
        "redirected" => Verb::Redirect,
        "arrived" => Verb::Arrive,
        "feedback_returned" => Verb::Feedback,
        "closed" => Verb::Close,
        "" => return Err(required_issue("RF1", 1, "RF1-1: the referral status is required")),
        other => {
            return Err(MappingError::Issues(vec![
                Issue::error(
                    ErrorCode::TableValue,
                    format!(
                        "RF1-1: status {} is not one this interface takes",
                        other.chars().take(20).collect::<String>()
                    ),
                )
                .at("RF1", 1, 1),
            ]));
        }
    };
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let input = ActionInput {
        reason: text(&msg.reason),
        to_facility: text(&msg.referred_to_facility),
        received_by: text(&msg.referred_to_person),
        note: text(if verb == Verb::Feedback {
            &msg.feedback_note
        } else {
            &msg.notes
        }),
        diagnosis: text(&msg.diagnoses),
        treatment: text(&msg.treatment),
        outcome: text(&msg.outcome),
        signed_by: text(&msg.signed_by),
        version: None,
    };
    let warnings = referral_act(c, actor, &r, verb, input, now)?;
    Ok((Some(r.person_id), warnings, None))
}

/// What replaces a withheld value in a stored message.
pub const WITHHELD: &str = "[withheld: RULES.md 9.1]";

// ------------------------------------------------------------------ the message log

/// The message log of the senders in the actor's area.
#[derive(Debug, Clone, Serialize)]
pub struct MessageLog {
    pub messages: Vec<MessageRow>,
    pub senders: Vec<SenderStats>,
}

/// Counts and error rate of one sender (all its messages, not only those listed).
#[derive(Debug, Clone, Serialize)]
pub struct SenderStats {
    pub sending_app: String,
    pub sending_facility: String,
    pub total: i64,
    pub processed: i64,
    pub error: i64,
    pub rejected: i64,
    /// (error + rejected) / total, in percent with one decimal.
    pub error_rate: String,
}

/// What the message log is searched by: sender (MSH-3 or MSH-4), type, control id, patient
/// (person id or ID number), status.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct LogQuery {
    pub sender: Option<String>,
    pub message_type: Option<String>,
    pub control_id: Option<String>,
    pub patient: Option<String>,
    pub status: Option<String>,
}

fn log_target(entity_id: Option<String>, person_id: Option<String>) -> AuditTarget {
    AuditTarget {
        entity_type: "hl7_message",
        entity_id,
        person_id,
    }
}

/// The senders whose facility lies in the actor's area: (MSH-3, MSH-4, facility id, charset-less).
fn senders_in_scope(c: &mut AnyConnection, actor: &Actor) -> Result<Vec<(String, String, String)>, ServiceError> {
    let mut out = Vec::new();
    for (app, fac, facility_id) in repo::senders(c)? {
        if let Some(f) = crate::facility::repo::by_id(c, &facility_id)?
            && actor.scope.covers(&f.jurisdiction, f.township_code.as_deref())
        {
            out.push((app, fac, facility_id));
        }
    }
    Ok(out)
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Search the message log (admins and auditors, their area's senders). Every listed message that
/// concerns a woman is audited as a search of her record.
pub async fn message_log(db: &Db, actor: &Actor, q: LogQuery) -> Result<MessageLog, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadMessageLog) {
            return Err(ServiceError::forbidden(log_target(None, None)));
        }
        let senders: Vec<(String, String, String)> = senders_in_scope(c, actor)?
            .into_iter()
            .filter(|(app, fac, _)| {
                some(&q.sender).is_none_or(|s| s.eq_ignore_ascii_case(app) || s.eq_ignore_ascii_case(fac))
            })
            .collect();
        let person_id = match some(&q.patient) {
            Some(p) if crate::ids::is_id(&p) => Some(p),
            Some(p) => match crate::identity::model::IdNumber::parse(&p, today_china()) {
                Ok(n) => Some(
                    crate::identity::repo::by_id_number(c, n.as_str())?
                        .map(|x| x.id)
                        .unwrap_or_else(|| "none".into()),
                ),
                Err(e) => return Err(ServiceError::invalid("patient", e.code(), e.message_zh())),
            },
            None => None,
        };
        let filter = repo::LogFilter {
            message_type: some(&q.message_type),
            control_id: some(&q.control_id),
            status: some(&q.status),
            person_id,
        };
        let apps: Vec<String> = senders.iter().map(|s| s.0.clone()).collect();
        let facs: Vec<String> = senders.iter().map(|s| s.1.clone()).collect();
        let is_listed = |app: &str, fac: &str| senders.iter().any(|s| s.0 == app && s.1 == fac);
        let messages: Vec<MessageRow> = repo::search(c, &apps, &facs, &filter, 500)?
            .into_iter()
            .filter(|m| is_listed(&m.sending_app, &m.sending_facility))
            .take(200)
            .collect();
        let mut stats: Vec<SenderStats> = Vec::new();
        for (app, fac, status, n) in repo::counts(c)? {
            if !is_listed(&app, &fac) {
                continue;
            }
            let i = match stats
                .iter()
                .position(|s| s.sending_app == app && s.sending_facility == fac)
            {
                Some(i) => i,
                None => {
                    stats.push(SenderStats {
                        sending_app: app.clone(),
                        sending_facility: fac.clone(),
                        total: 0,
                        processed: 0,
                        error: 0,
                        rejected: 0,
                        error_rate: String::new(),
                    });
                    stats.len() - 1
                }
            };
            if let Some(s) = stats.get_mut(i) {
                s.total += n;
                match status.as_str() {
                    "processed" => s.processed += n,
                    "error" => s.error += n,
                    _ => s.rejected += n,
                }
            }
        }
        for s in &mut stats {
            let failed = (s.error + s.rejected) as f64;
            s.error_rate = format!(
                "{:.1}%",
                if s.total > 0 {
                    failed * 100.0 / s.total as f64
                } else {
                    0.0
                }
            );
        }
        let mut targets = vec![log_target(None, None)];
        targets.extend(
            messages
                .iter()
                .filter(|m| m.person_id.is_some())
                .map(|m| log_target(Some(m.id.clone()), m.person_id.clone())),
        );
        record_many(c, actor, "search", targets, "HL7 message log")?;
        Ok(MessageLog {
            messages,
            senders: stats,
        })
    })
    .await
}

/// One message as the log shows it: the parsed tree (paths and values) beside the raw text, both
/// with ID numbers masked for roles that may not see them whole, and the ACKs it got.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub message: MessageRow,
    pub raw: String,
    pub tree: Vec<(String, String)>,
    pub acks: Vec<String>,
    pub can_replay: bool,
}

fn message_in_scope(
    c: &mut AnyConnection,
    actor: &Actor,
    id: &str,
) -> Result<(MessageRow, Vec<u8>, String, String, String), ServiceError> {
    let (row, raw, ack) = repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该消息"))?;
    let sender = repo::sender(c, &row.sending_app, &row.sending_facility)?;
    let in_scope = match &sender {
        Some((_, facility_id, _)) => crate::facility::repo::by_id(c, facility_id)?
            .is_some_and(|f| actor.scope.covers(&f.jurisdiction, f.township_code.as_deref())),
        None => false,
    };
    if !in_scope {
        return Err(ServiceError::forbidden(log_target(
            Some(row.id.clone()),
            row.person_id.clone(),
        )));
    }
    let (facility_id, charset) = sender.map(|(_, f, cs)| (f, cs)).unwrap_or_default();
    Ok((row, raw, ack, facility_id, charset))
}

/// Open one message (audited as a read of the woman's record when it concerns one).
pub async fn message_view(db: &Db, actor: &Actor, id: String) -> Result<MessageView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadMessageLog) {
            return Err(ServiceError::forbidden(log_target(Some(id.clone()), None)));
        }
        let (row, raw, ack, _, charset) = message_in_scope(c, actor, &id)?;
        let default = if charset == "gb18030" {
            Charset::Gb18030
        } else {
            Charset::Utf8
        };
        let full = actor.may(Action::SeeFullIdNumber);
        let mask = |s: &str| if full { s.to_string() } else { mask_id_numbers(s) };
        let (text, tree) = match Message::parse(&raw, default) {
            Ok(m) => (
                m.text().to_string(),
                m.leaves().into_iter().map(|(p, v)| (p, mask(&v))).collect(),
            ),
            // Unreadable text is shown as far as it decodes, never guessed further.
            Err(_) => (String::from_utf8_lossy(&raw).into_owned(), Vec::new()),
        };
        record(
            c,
            actor,
            "read",
            log_target(Some(row.id.clone()), row.person_id.clone()),
            "HL7 message opened",
        )?;
        Ok(MessageView {
            raw: mask(&text.replace('\r', "\n")),
            tree,
            acks: split_answers(&ack).iter().map(|a| a.replace('\r', "\n")).collect(),
            can_replay: actor.may(Action::ReplayMessage) && row.status == "error",
            message: row,
        })
    })
    .await
}

/// Re-run a failed (AE) message after a mapping fix: processing runs again as its sender would,
/// the new outcome is recorded on the message (the ACK the sender got stays as it was), and the
/// replay is audited under the administrator who asked for it.
pub async fn replay(db: &Db, actor: &Actor, id: String) -> Result<MessageRow, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReplayMessage) {
            return Err(ServiceError::forbidden(log_target(Some(id.clone()), None)));
        }
        let (row, raw, _, facility_id, charset) = message_in_scope(c, actor, &id)?;
        if row.status != "error" {
            return Err(ServiceError::Conflict("只能重放处理出错（AE）的消息".into()));
        }
        let header = raw_header(&raw).ok_or(ServiceError::Conflict("该消息没有可读的 MSH 段".into()))?;
        let done = process(c, &header, &facility_id, &charset, &raw, &row.id, now_utc())?;
        let (status, error) = outcome(&done.verdict);
        let person = done.person_id.or(row.person_id.clone());
        repo::record_replay(c, &row.id, status, &error, person.as_deref(), now_utc(), &actor.name)?;
        record(
            c,
            actor,
            "update",
            log_target(Some(row.id.clone()), person.clone()),
            &format!("HL7 message replayed: {} → {status}", row.status),
        )?;
        let (row, _, _) = repo::by_id(c, &row.id)?.ok_or(ServiceError::NotFound("没有找到该消息"))?;
        Ok(row)
    })
    .await
}
