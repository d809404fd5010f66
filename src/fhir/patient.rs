//! Patient ↔ person (identity feature). See README.md "Patient".

use serde_json::{Map, Value, json};

use super::json::{At, check_resource, parse_date, received};
use super::outcome::Issue;
use super::search::{ParamDef, Query, date_range, token};
use super::{FhirError, Kind, Page, Res, Written};
use crate::auth::model::{Action, Actor};
use crate::identity::model::{HEALTH_CARD_SYSTEM, PersonInput, PersonVersion, Sex, mask_id_number, phone_format_ok};
use crate::identity::repo::NameMatch;
use crate::identity::service::{self as identity, ID_NUMBER_SYSTEM, PersonQuery};
use crate::ids::today_china;
use crate::storage::AnyConnection;

/// 身份证号 (national CDA OID, ARCHITECTURE.md "Identifiers").
pub const ID_NUMBER_OID: &str = "urn:oid:2.16.156.10011.1.3";
/// 居民健康卡号.
pub const HEALTH_CARD_OID: &str = "urn:oid:2.16.156.10011.1.19";
/// A facility's MRNs: this prefix and the facility code.
pub const MRN_PREFIX: &str = "urn:mch-chain:mrn:";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

const ELEMENTS: &[&str] = &[
    "identifier",
    "active",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "address",
    "maritalStatus",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "photo",
    "contact",
    "communication",
    "generalPractitioner",
    "managingOrganization",
    "link",
];

pub struct PatientKind;

/// Our identifier system for a FHIR one.
pub fn our_system(fhir: &str) -> String {
    match fhir {
        ID_NUMBER_OID => ID_NUMBER_SYSTEM.to_string(),
        HEALTH_CARD_OID => HEALTH_CARD_SYSTEM.to_string(),
        s => match s.strip_prefix(MRN_PREFIX) {
            Some(code) => format!("mrn:{code}"),
            None => s.to_string(),
        },
    }
}

pub(super) fn fhir_identifier(system: &str, value: &str, full: bool) -> Value {
    let typed = |sys: &str, code: &str, value: String| json!({"type": {"coding": [{"system": V2_0203, "code": code}]}, "system": sys, "value": value});
    let masked = |v: &str| if full { v.to_string() } else { mask_id_number(v) };
    if system == ID_NUMBER_SYSTEM {
        let mut v = typed(ID_NUMBER_OID, "NNCHN", masked(value));
        v["use"] = json!("official");
        v
    } else if system == HEALTH_CARD_SYSTEM {
        typed(HEALTH_CARD_OID, "HC", masked(value))
    } else if let Some(code) = system.strip_prefix("mrn:") {
        typed(&format!("{MRN_PREFIX}{code}"), "MR", value.to_string())
    } else {
        json!({"system": system, "value": value})
    }
}

/// A person's name from a HumanName: its text, else family and given names (Chinese order
/// without a space when the family name is Chinese, else "given family").
fn name_of(n: &At<'_>) -> Result<Option<String>, FhirError> {
    if let Some(t) = n.str("text")? {
        return Ok(Some(t.trim().to_string()));
    }
    let family = n.str("family")?.unwrap_or_default().trim().to_string();
    let mut given = Vec::new();
    for g in n.list("given")? {
        match g.value.as_str() {
            Some(s) => given.push(s.trim().to_string()),
            None => return Err(g.error(format!("{} must be a string", g.path()))),
        }
    }
    let cjk = family
        .chars()
        .next()
        .is_some_and(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let name = if cjk {
        format!("{family}{}", given.concat())
    } else {
        given
            .iter()
            .chain(std::iter::once(&family))
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok((!name.is_empty()).then_some(name))
}

fn gender_of(s: &str) -> Option<Sex> {
    match s {
        "male" => Some(Sex::Male),
        "female" => Some(Sex::Female),
        // FHIR "other" has no place in the register's sex (GB/T 2261.1): kept as unknown, and the
        // document as received keeps "other".
        "other" | "unknown" => Some(Sex::Unknown),
        _ => None,
    }
}

fn address_of(a: &At<'_>) -> Result<Option<String>, FhirError> {
    if let Some(t) = a.str("text")? {
        return Ok(Some(t.trim().to_string()));
    }
    let mut parts = Vec::new();
    for l in a.list("line")? {
        if let Some(s) = l.value.as_str() {
            parts.push(s.to_string());
        }
    }
    for key in ["city", "district", "state", "postalCode", "country"] {
        if let Some(s) = a.str(key)? {
            parts.push(s.to_string());
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// The first `telecom` with `system=phone` and a value: its path and value.
fn phone_of(p: &At<'_>) -> Result<Option<(String, String)>, FhirError> {
    for t in p.list("telecom")? {
        if t.str("system")? == Some("phone")
            && let Some(v) = t.str("value")?
        {
            return Ok(Some((t.path().to_string(), v.trim().to_string())));
        }
    }
    Ok(None)
}

/// The phone we keep of a Patient: her first phone, when it is in the register's format (a
/// foreign format stays in the document only).
fn kept_phone(p: &At<'_>) -> Result<Option<String>, FhirError> {
    Ok(phone_of(p)?.map(|(_, v)| v).filter(|v| phone_format_ok(v)))
}

/// The name a Patient without one is registered under: the ward's word for a person whose name
/// is not known (an unnamed newborn, an anonymous imaging patient), until her name is given.
pub const NAME_NOT_GIVEN: &str = "无名氏";

/// The elements of a Patient we map to the record; any other is kept in the document only.
const MAPPED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "identifier",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "address",
];

/// Whether an identifier of a document is one we use: it has a system and a value.
fn used_identifier(i: &Value) -> bool {
    let has = |k: &str| i.get(k).and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty());
    has("system") && has("value")
}

fn kept_only(expression: String, diagnostics: String) -> Issue {
    Issue {
        severity: "warning",
        code: "informational",
        diagnostics,
        expression: Some(expression),
    }
}

/// What a Patient resource asks us to record: identity fields, other identifiers, the document.
struct Incoming {
    input: PersonInput,
    identifiers: Vec<(String, String)>,
    received: Option<String>,
    /// What the document says that we keep but do not use.
    warnings: Vec<Issue>,
}

/// Read a Patient for registration or update. `current`: the record being updated, so masked
/// identifier values read back from us are taken as "unchanged".
fn incoming(actor: &Actor, body: &Value, current: Option<&PersonVersion>) -> Result<Incoming, FhirError> {
    check_resource(body, "Patient", ELEMENTS)?;
    let p = At::root(body, "Patient");
    let mut warnings = Vec::new();
    if let Some(obj) = body.as_object() {
        for key in obj.keys() {
            let base = key.strip_prefix('_').unwrap_or(key);
            if !MAPPED.contains(&base) {
                warnings.push(kept_only(
                    format!("Patient.{key}"),
                    format!("Patient.{key} is kept as received but not used by this service"),
                ));
            }
        }
    }
    let names = p.list("name")?;
    let name = match names.first() {
        Some(n) => name_of(n)?,
        None => None,
    };
    // Without a name she is registered under NAME_NOT_GIVEN; an update without one keeps the
    // name we hold (it is not taken as erasing it).
    let name = match (name, current) {
        (Some(n), _) => n,
        (None, Some(c)) => {
            warnings.push(kept_only(
                "Patient.name".into(),
                format!("Patient.name is missing: her recorded name ({}) is kept", c.person.name),
            ));
            c.person.name.clone()
        }
        (None, None) => {
            warnings.push(kept_only(
                "Patient.name".into(),
                format!("Patient.name is missing: registered as {NAME_NOT_GIVEN} until her name is given"),
            ));
            NAME_NOT_GIVEN.to_string()
        }
    };
    let gender = match p.str("gender")? {
        Some(g) => Some(gender_of(g).ok_or_else(|| {
            FhirError::invalid(
                "Patient.gender",
                format!("Patient.gender {g} is not one of male, female, other, unknown"),
            )
        })?),
        None => None,
    };
    let birth = match p.child("birthDate") {
        Some(b) => {
            let s = b
                .value
                .as_str()
                .ok_or_else(|| b.error("Patient.birthDate must be a string"))?;
            let (d, _) = parse_date(s).ok_or_else(|| b.error(format!("Patient.birthDate {s} is not a FHIR date")))?;
            Some(d.to_string())
        }
        None => None,
    };
    // A death the document states is kept in it (and read back) but not recorded: say so.
    let dead = p.bool("deceasedBoolean")? == Some(true) || p.child("deceasedDateTime").is_some();
    if dead
        && let Some(w) = warnings.iter_mut().find(|w| {
            w.expression
                .as_deref()
                .is_some_and(|e| e.starts_with("Patient.deceased"))
        })
    {
        w.diagnostics = format!(
            "{} is kept as received but her death is not recorded by it: a death is recorded on the pathway (delivery outcome, case closure)",
            w.expression.as_deref().unwrap_or_default()
        );
    }
    let mut id_number = None;
    let mut identifiers: Vec<(String, String)> = Vec::new();
    let full = actor.may(Action::SeeFullIdNumber);
    for ident in p.list("identifier")? {
        let (Some(system), Some(value)) = (ident.str("system")?, ident.str("value")?) else {
            warnings.push(kept_only(
                ident.path().to_string(),
                format!(
                    "{} has no system or no value: kept as received, not used to find her (身份证号 is urn:oid:2.16.156.10011.1.3, 健康卡号 urn:oid:2.16.156.10011.1.19)",
                    ident.path()
                ),
            ));
            continue;
        };
        let value = value.trim().to_string();
        let ours = our_system(system);
        // A value we sent masked comes back unchanged: keep what we hold.
        let held: Option<String> = current.and_then(|c| {
            if ours == ID_NUMBER_SYSTEM {
                c.person.id_number.clone()
            } else {
                c.identifiers
                    .iter()
                    .find(|(s, v)| *s == ours && (v == &value || (!full && mask_id_number(v) == value)))
                    .map(|(_, v)| v.clone())
            }
        });
        let value = match held {
            Some(h) if value.contains('*') && mask_id_number(&h) == value => h,
            _ if value.contains('*') => {
                return Err(FhirError::invalid(
                    &format!("{}.value", ident.path()),
                    "a masked identifier value can only be sent back unchanged",
                ));
            }
            _ => value,
        };
        if ours == ID_NUMBER_SYSTEM {
            if id_number.replace(value).is_some() {
                return Err(FhirError::invalid(
                    ident.path(),
                    "only one 身份证号 identifier is allowed",
                ));
            }
            continue;
        }
        if let Some(code) = ours.strip_prefix("mrn:")
            && code != actor.facility.code
        {
            return Err(FhirError::invalid(
                &format!("{}.system", ident.path()),
                format!(
                    "a hospital assigns MRNs only in its own system ({MRN_PREFIX}{})",
                    actor.facility.code
                ),
            ));
        }
        if system == "id_number" || system == HEALTH_CARD_SYSTEM || system.starts_with("mrn:") || !system.contains(':')
        {
            return Err(FhirError::invalid(
                &format!("{}.system", ident.path()),
                format!("identifier system {system} must be an absolute URI (urn:oid:…, http(s)://…)"),
            ));
        }
        if identifiers.iter().any(|(s, v)| *s == ours && *v == value) {
            continue;
        }
        identifiers.push((ours, value));
    }
    let phone = kept_phone(&p)?;
    if let Some((path, v)) = phone_of(&p)?
        && phone.is_none()
    {
        warnings.push(kept_only(
            path,
            format!("the phone number {v} is not in the register's format (digits, +, - and spaces, at most 20): kept as received, not recorded"),
        ));
    }
    let address = match p.list("address")?.first() {
        Some(a) => address_of(a)?,
        None => None,
    };
    Ok(Incoming {
        input: PersonInput {
            name,
            id_number,
            sex: gender.map(|g| g.as_str().to_string()),
            birth_date: birth,
            nation_code: None,
            phone,
            address,
        },
        identifiers,
        received: received(body),
        warnings,
    })
}

/// FHIRPath of a service field of a person.
fn path_of(field: &str) -> String {
    match field {
        "name" => "Patient.name[0]",
        "id_number" => "Patient.identifier",
        "birth_date" => "Patient.birthDate",
        "sex" => "Patient.gender",
        "phone" => "Patient.telecom",
        "address" => "Patient.address[0]",
        _ => "Patient",
    }
    .to_string()
}

/// The Patient of a person's version. Elements we do not hold come from the document she was
/// registered with; an element we hold comes from that document only while it still says the same
/// as our record (so a richer form — family/given, a partial birth date — reads back unchanged).
pub fn render(v: &PersonVersion, actor: &Actor) -> Res {
    let p = &v.person;
    let full = actor.may(Action::SeeFullIdNumber);
    let mut body = Map::new();
    let mut ids: Vec<Value> = Vec::new();
    if let Some(n) = &p.id_number {
        ids.push(fhir_identifier(ID_NUMBER_SYSTEM, n, full));
    }
    ids.extend(v.identifiers.iter().map(|(s, val)| fhir_identifier(s, val, full)));
    if !ids.is_empty() {
        body.insert("identifier".into(), Value::Array(ids));
    }
    let doc = v
        .received
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    // The document's identifiers (their order, use, type, assigner) while they are exactly the
    // ones we show — never when we mask a value the document holds whole.
    if let Some(theirs) = doc.as_ref().and_then(|d| d.get("identifier")).and_then(Value::as_array) {
        let ours = body
            .get("identifier")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let key = |i: &Value| {
            (
                i.get("system").and_then(Value::as_str).unwrap_or_default().to_string(),
                i.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        };
        let mut a: Vec<(String, String)> = theirs.iter().filter(|i| used_identifier(i)).map(key).collect();
        let mut b: Vec<(String, String)> = ours.iter().map(key).collect();
        a.sort();
        b.sort();
        let all = if a == b {
            theirs.clone()
        } else {
            // Ours (masked as the caller must see them), then the document's identifiers we do
            // not use (no system or no value), as sent.
            let mut all = ours;
            all.extend(theirs.iter().filter(|i| !used_identifier(i)).cloned());
            all
        };
        if !all.is_empty() {
            body.insert("identifier".into(), Value::Array(all));
        }
    }
    // A name we registered her under for want of one is not sent back as if it were hers.
    let doc_names = doc.as_ref().is_some_and(|d| {
        At::root(d, "Patient")
            .list("name")
            .ok()
            .and_then(|n| n.first().and_then(|n| name_of(n).ok().flatten()))
            .is_some()
    });
    if !(p.name == NAME_NOT_GIVEN && doc.is_some() && !doc_names) {
        body.insert("name".into(), json!([{"text": p.name}]));
    }
    body.insert("gender".into(), json!(p.sex.as_str()));
    body.insert("birthDate".into(), json!(p.birth_date.to_string()));
    if let Some(ph) = &p.phone {
        body.insert("telecom".into(), json!([{"system": "phone", "value": ph}]));
    }
    if let Some(a) = &p.address {
        body.insert("address".into(), json!([{"text": a}]));
    }
    if let Some(doc) = doc
        && let Some(obj) = doc.as_object()
    {
        let root = At::root(&doc, "Patient");
        for (key, val) in obj {
            let same = match key.as_str() {
                "resourceType" | "identifier" => false,
                "name" => {
                    root.list("name")
                        .ok()
                        .and_then(|n| n.first().and_then(|n| name_of(n).ok().flatten()))
                        .as_deref()
                        == Some(p.name.as_str())
                }
                "gender" => val.as_str().and_then(gender_of) == Some(p.sex),
                "birthDate" => val.as_str().and_then(parse_date).map(|(d, _)| d) == Some(p.birth_date),
                "telecom" => kept_phone(&root).ok().flatten() == p.phone,
                "address" => {
                    root.list("address")
                        .ok()
                        .and_then(|a| a.first().and_then(|a| address_of(a).ok().flatten()))
                        == p.address
                }
                _ => !body.contains_key(key),
            };
            if same {
                body.insert(key.clone(), val.clone());
            }
        }
    }
    Res {
        id: p.id.clone(),
        version: p.version,
        last_updated: v.updated_at,
        body: Value::Object(body),
        patient: Some(p.id.clone()),
    }
}

/// HL7 core extension on `Patient.birthDate`: the time of day of the birth.
pub const BIRTH_TIME: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthTime";

/// A child's birth facts on her Patient (README.md "Patient ↔ person", children): her birth time
/// as the `patient-birthTime` extension on `birthDate` (when known; China time with its offset),
/// and `multipleBirthInteger` = her birth order when she is one of several (twins …), else
/// `multipleBirthBoolean` false. They come from her birth record and replace what a document said.
pub fn with_birth(mut r: Res, birth: &crate::child::model::ChildRecord) -> Res {
    if let Some(b) = r.body.as_object_mut() {
        for key in ["_birthDate", "multipleBirthBoolean", "multipleBirthInteger"] {
            b.remove(key);
        }
        if birth.birth_time_known {
            let local = birth.birth_at + chrono::Duration::hours(8);
            b.insert(
                "_birthDate".into(),
                json!({"extension": [{"url": BIRTH_TIME, "valueDateTime": format!("{}+08:00", local.format("%Y-%m-%dT%H:%M:%S"))}]}),
            );
        }
        if birth.plurality > 1 {
            b.insert("multipleBirthInteger".into(), json!(birth.birth_order));
        } else {
            b.insert("multipleBirthBoolean".into(), json!(false));
        }
    }
    r
}

/// A person's Patient, with her birth facts when she is a child of the register.
fn render_person(c: &mut AnyConnection, actor: &Actor, v: &PersonVersion) -> Result<Res, FhirError> {
    let r = render(v, actor);
    Ok(
        match crate::child::service::birth_in(c, actor, &v.person.id).map_err(|e| not_found_as(e, &v.person.id))? {
            Some(b) => with_birth(r, &b),
            None => r,
        },
    )
}

/// The current Patient of a person the actor may read (audited), with her birth facts.
pub fn read_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
    let v = identity::current_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
    render_person(c, actor, &v)
}

impl Kind for PatientKind {
    const TYPE: &'static str = "Patient";
    const CREATE: bool = true;
    const UPDATE: bool = true;
    const VERSIONED: bool = true;
    const DOC: &'static str = "A person on the pathway (mother or child; a child born on the register has her birth time as the patient-birthTime extension on birthDate and multipleBirth[x], her mother as RelatedPerson). identifier: 身份证号 urn:oid:2.16.156.10011.1.3 (masked unless the role may see it), 健康卡号 urn:oid:2.16.156.10011.1.19, MRNs urn:mch-chain:mrn:<facility code>; update needs If-Match; the ID number, once recorded, is corrected only at the registration desk.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "identifier",
            kind: "token",
            doc: "system|value, or value in any system (ID numbers are matched whole, after the 18-digit check)",
        },
        ParamDef {
            name: "name",
            kind: "string",
            doc: "the name starts with (:contains anywhere, :exact the whole name)",
        },
        ParamDef {
            name: "birthdate",
            kind: "date",
            doc: "birth date, with prefixes eq, gt, ge, lt, le",
        },
        ParamDef {
            name: "gender",
            kind: "token",
            doc: "male | female | unknown",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        read_in(c, actor, id)
    }

    fn history(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Vec<Res>, FhirError> {
        let all = identity::history_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
        all.iter().map(|v| render_person(c, actor, v)).collect()
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut pq = PersonQuery {
            updated: q.last_updated,
            ids: q.ids.clone(),
            offset: q.offset,
            limit: q.count,
            ..PersonQuery::default()
        };
        for (name, modifier, value) in &q.criteria {
            match name.as_str() {
                "identifier" => {
                    let (system, v) = token(value);
                    if v.is_empty() {
                        return Err(FhirError::bad_request(
                            "search parameter identifier: a value is required",
                        ));
                    }
                    pq.identifier = Some((system.filter(|s| !s.is_empty()).map(|s| our_system(&s)), v));
                }
                "name" => {
                    let how = match modifier.as_deref() {
                        Some("exact") => NameMatch::Exact,
                        Some("contains") => NameMatch::Contains,
                        _ => NameMatch::Prefix,
                    };
                    pq.name = Some((how, value.trim().to_string()));
                }
                "birthdate" => {
                    let (from, to) = date_range("birthdate", value)?;
                    pq.birth_from = pq.birth_from.max(from);
                    pq.birth_to = match (pq.birth_to, to) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                "gender" => {
                    pq.sex = Some(gender_of(value).ok_or_else(|| {
                        FhirError::bad_request(format!(
                            "search parameter gender: {value} is not male, female, other or unknown"
                        ))
                    })?);
                }
                _ => {}
            }
        }
        let (found, total) = identity::search_in(c, actor, &pq)?;
        Ok(Page {
            matches: found
                .iter()
                .map(|v| render_person(c, actor, v))
                .collect::<Result<_, _>>()?,
            total,
        })
    }

    fn create(c: &mut AnyConnection, actor: &Actor, body: &Value) -> Result<Written, FhirError> {
        let inc = incoming(actor, body, None)?;
        let new = inc
            .input
            .validate(today_china())
            .map_err(|e| FhirError::from_service(e, &path_of))?;
        let v = identity::register_in(c, actor, new, &inc.identifiers, inc.received.as_deref())
            .map_err(|e| FhirError::from_service(e, &path_of))?;
        Ok(Written {
            res: render_person(c, actor, &v)?,
            warnings: inc.warnings,
        })
    }

    fn update(
        c: &mut AnyConnection,
        actor: &Actor,
        id: &str,
        body: &Value,
        version: i32,
    ) -> Result<Written, FhirError> {
        let current = identity::current_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
        let inc = incoming(actor, body, Some(&current))?;
        let new = inc
            .input
            .validate(today_china())
            .map_err(|e| FhirError::from_service(e, &path_of))?;
        let v = identity::update_in(c, actor, id, version, new, &inc.identifiers, inc.received.as_deref())
            .map_err(|e| FhirError::from_service(e, &path_of))?;
        Ok(Written {
            res: render_person(c, actor, &v)?,
            warnings: inc.warnings,
        })
    }
}

/// A missing person is 404 naming the id; a person outside the caller's area is 403 and the
/// refusal is audited, as on the pages.
fn not_found_as(e: crate::error::ServiceError, id: &str) -> FhirError {
    match e {
        crate::error::ServiceError::NotFound(_) => FhirError::not_found(format!("Patient/{id} does not exist")),
        e => FhirError::from_service(e, &path_of),
    }
}
