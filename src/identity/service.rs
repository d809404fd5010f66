//! Identity use cases: card reads, registration with duplicate prevention, search, the person page.
//! Every call checks role and jurisdiction and writes its audit row in the same transaction.

use chrono::NaiveDate;
use serde::Serialize;

use super::model::{
    CardRead, HEALTH_CARD_SYSTEM, IdNumber, NewPerson, PERSON_ENTITY, Person, PersonInput, PersonVersion, Sex,
    mask_id_number,
};
use super::repo;
use crate::audit::service::{guarded, record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::ids::{new_id, now_utc, today_china};
use crate::storage::{AnyConnection, Db};

/// A person as shown in lists: the ID number masked.
#[derive(Debug, Clone, Serialize)]
pub struct PersonSummary {
    pub id: String,
    pub name: String,
    pub sex: &'static str,
    pub birth_date: NaiveDate,
    pub age: i32,
    pub id_number_masked: Option<String>,
}

impl PersonSummary {
    pub fn of(p: &Person, today: NaiveDate) -> PersonSummary {
        PersonSummary {
            id: p.id.clone(),
            name: p.name.clone(),
            sex: p.sex.label_zh(),
            birth_date: p.birth_date,
            age: p.age_on(today),
            id_number_masked: p.id_number.as_deref().map(mask_id_number),
        }
    }
}

pub fn person_target(person_id: &str) -> AuditTarget {
    AuditTarget {
        entity_type: "person",
        entity_id: Some(person_id.to_string()),
        person_id: Some(person_id.to_string()),
    }
}

/// Load a person the actor may act on, or refuse (the refusal is audited by `guarded`).
pub fn person_for(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    person_id: &str,
) -> Result<Person, ServiceError> {
    let person = repo::by_id(conn, person_id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))?;
    if !may_on_person(
        conn,
        actor,
        action,
        &person.jurisdiction,
        person.township_code.as_deref(),
        &person.id,
        None,
    )? {
        return Err(ServiceError::forbidden(person_target(person_id)));
    }
    Ok(person)
}

/// Role and jurisdiction — or, outside the area, a live access grant from an accepted referral
/// (issue 4 §6) for the actions a grant covers.
pub fn may_on_person(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    jurisdiction: &str,
    township_code: Option<&str>,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<bool, ServiceError> {
    if !actor.may(action) {
        return Ok(false);
    }
    if actor.scope.covers(jurisdiction, township_code) {
        return Ok(true);
    }
    Ok(action.follows_grant()
        && crate::auth::repo::has_grant(conn, &actor.facility.id, person_id, pregnancy_id, now_utc())?)
}

fn create(conn: &mut AnyConnection, actor: &Actor, new: NewPerson) -> Result<Person, ServiceError> {
    let person = Person {
        id: new_id(),
        name: new.name,
        sex: new.sex,
        birth_date: new.birth_date,
        nation_code: new.nation_code,
        id_number: new.id_number.map(|i| i.as_str().to_string()),
        phone: new.phone,
        address: new.address,
        jurisdiction: actor.facility.jurisdiction.clone(),
        township_code: actor.facility.township_code.clone(),
        version: 1,
    };
    repo::insert(conn, &person, &actor.facility.id, &[], None).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ServiceError::Conflict("该身份证号已建档".into())
        }
        e => e.into(),
    })?;
    record(conn, actor, "create", person_target(&person.id), "person registered")?;
    Ok(person)
}

/// Register a newborn at her birth (the child feature, from the delivery): no ID number yet; she
/// takes her mother's area, address and phone, so nothing is typed twice. Her ID number and health
/// card join this record later ([`complete_identity_in`]), never a second one. Runs inside the
/// caller's transaction and audits there.
pub fn register_newborn_in(
    c: &mut AnyConnection,
    actor: &Actor,
    mother: &Person,
    name: String,
    sex: Sex,
    birth_date: NaiveDate,
) -> Result<Person, ServiceError> {
    if !actor.may_on(
        Action::RegisterPerson,
        &mother.jurisdiction,
        mother.township_code.as_deref(),
    ) {
        return Err(ServiceError::forbidden(person_target(&mother.id)));
    }
    let person = Person {
        id: new_id(),
        name,
        sex,
        birth_date,
        nation_code: None,
        id_number: None,
        phone: mother.phone.clone(),
        address: mother.address.clone(),
        jurisdiction: mother.jurisdiction.clone(),
        township_code: mother.township_code.clone(),
        version: 1,
    };
    repo::insert(c, &person, &actor.facility.id, &[], None)?;
    record(
        c,
        actor,
        "create",
        person_target(&person.id),
        "newborn registered at delivery",
    )?;
    Ok(person)
}

/// A child's identity completed once it exists: her name as the family registers it, her ID
/// number (checked as on the desk, and against her birth date and sex), her health card. One
/// person per ID number and per card: one already held by another record is a conflict. Runs
/// inside the caller's transaction and audits there.
pub fn complete_identity_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    name: Option<String>,
    id_number: Option<&str>,
    health_card: Option<&str>,
) -> Result<Person, ServiceError> {
    let mut person = person_for(c, actor, Action::RegisterPerson, person_id)?;
    let mut errors = Vec::new();
    let id = match id_number.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match IdNumber::parse(raw, today_china()) {
            Err(e) => {
                errors.push(crate::error::FieldError::new("id_number", e.code(), e.message_zh()));
                None
            }
            Ok(id) => {
                if id.birth_date() != person.birth_date {
                    errors.push(crate::error::FieldError::new(
                        "id_number",
                        "birth_date",
                        "身份证号中的出生日期与档案不一致",
                    ));
                }
                if person.sex != Sex::Unknown && id.sex() != person.sex {
                    errors.push(crate::error::FieldError::new(
                        "id_number",
                        "sex",
                        "身份证号中的性别与档案不一致",
                    ));
                }
                if person.id_number.as_deref().is_some_and(|n| n != id.as_str()) {
                    errors.push(crate::error::FieldError::new(
                        "id_number",
                        "id_number_fixed",
                        "身份证号已登记，如登记有误请在建档窗口更正",
                    ));
                }
                Some(id)
            }
        },
    };
    if let Some(n) = name.as_deref().map(str::trim).filter(|n| !n.is_empty())
        && (n.chars().count() > 50 || n.chars().any(char::is_control))
    {
        errors.push(crate::error::FieldError::new("name", "name", "姓名不合理，请核对"));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    if let Some(id) = &id
        && person.id_number.is_none()
    {
        if repo::by_id_number(c, id.as_str())?.is_some() {
            return Err(ServiceError::Conflict(
                "该身份证号已属于另一档案，请核对（不会建立第二份档案）".into(),
            ));
        }
        repo::set_id_number(c, &person.id, id.as_str())?;
        person.id_number = Some(id.as_str().to_string());
    }
    if let Some(card) = health_card.map(str::trim).filter(|s| !s.is_empty()) {
        match repo::holder_of(c, HEALTH_CARD_SYSTEM, card)? {
            Some(holder) if holder != person.id => {
                return Err(ServiceError::Conflict("该健康卡号已属于另一档案".into()));
            }
            Some(_) => {}
            None => repo::add_identifier(c, &person.id, HEALTH_CARD_SYSTEM, card)?,
        }
    }
    if let Some(n) = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
        && n != person.name
    {
        repo::set_name(c, &person.id, &n)?;
        person.name = n;
    }
    record(c, actor, "update", person_target(&person.id), "identity completed")?;
    Ok(person)
}

/// The answer to a card read.
#[derive(Debug, Clone, Serialize)]
pub struct CardReadResult {
    pub person_id: String,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// A card-reader bridge read a 居民健康卡: find the holder by ID number or create them, keep the
/// card number as its own identifier, and log the read. Never creates a second person for one ID.
pub async fn record_card_read(db: &Db, actor: &Actor, read: CardRead) -> Result<CardReadResult, ServiceError> {
    let checked = read.validate(today_china())?;
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        if !actor.may(Action::RegisterPerson) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "card_read",
                ..Default::default()
            }));
        }
        let id_number = checked
            .person
            .id_number
            .as_ref()
            .map(|i| i.as_str().to_string())
            .unwrap_or_default();
        let mut warnings = checked.warnings.clone();
        let (person, created) = match repo::by_id_number(c, &id_number)? {
            Some(existing) => {
                if !actor.may_on(
                    Action::RegisterPerson,
                    &existing.jurisdiction,
                    existing.township_code.as_deref(),
                ) {
                    return Err(ServiceError::forbidden(person_target(&existing.id)));
                }
                if existing.name != checked.person.name {
                    warnings.push("卡上姓名与档案姓名不一致，未自动修改，请核对".into());
                }
                (existing, false)
            }
            None => {
                for other in repo::by_name_and_birth_date(c, &checked.person.name, checked.person.birth_date)? {
                    if actor.scope.covers(&other.jurisdiction, other.township_code.as_deref()) {
                        record(c, actor, "search", person_target(&other.id), "near-duplicate check")?;
                        warnings.push(format!(
                            "存在同名同出生日期的档案（身份证号 {}），请核对是否重复",
                            other
                                .id_number
                                .as_deref()
                                .map(mask_id_number)
                                .unwrap_or_else(|| "未登记".into())
                        ));
                    }
                }
                (create(c, actor, checked.person.clone())?, true)
            }
        };
        match repo::holder_of(c, HEALTH_CARD_SYSTEM, &checked.card_number)? {
            Some(holder) if holder != person.id => {
                return Err(ServiceError::Conflict("该卡号已登记在另一服务对象名下，请核对".into()));
            }
            Some(_) => {}
            None => {
                repo::add_identifier(c, &person.id, HEALTH_CARD_SYSTEM, &checked.card_number).map_err(|e| match e {
                    diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                        ServiceError::Conflict("该卡号刚被另一次读卡登记，请重试".into())
                    }
                    e => e.into(),
                })?
            }
        }
        repo::insert_card_read(
            c,
            repo::CardReadRow {
                person_id: &person.id,
                card_number: &checked.card_number,
                issuer_code: checked.issuer_code.as_deref(),
                facility_id: &actor.facility.id,
                read_by: &actor.name,
                jurisdiction: &person.jurisdiction,
            },
        )?;
        record(c, actor, "read", person_target(&person.id), "health card read")?;
        Ok(CardReadResult {
            person_id: person.id,
            created,
            warnings,
        })
    })
    .await
}

/// The answer to a registration attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Registration {
    Created {
        person_id: String,
    },
    /// The ID number is already registered in the actor's area: use that record.
    Existing {
        person_id: String,
    },
    /// Same name and birth date as these records: confirm before creating.
    NearDuplicates {
        candidates: Vec<PersonSummary>,
    },
}

/// Register a person typed in by a registrar or clinician.
pub async fn register(
    db: &Db,
    actor: &Actor,
    input: PersonInput,
    confirmed_not_duplicate: bool,
) -> Result<Registration, ServiceError> {
    let today = today_china();
    let new = input.validate(today)?;
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        if !actor.may(Action::RegisterPerson) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "person",
                ..Default::default()
            }));
        }
        if let Some(id) = &new.id_number
            && let Some(existing) = repo::by_id_number(c, id.as_str())?
        {
            if !actor.may_on(
                Action::ReadRecord,
                &existing.jurisdiction,
                existing.township_code.as_deref(),
            ) {
                // Telling the registrar is needed to arrange a transfer; the disclosure is audited.
                return Err(ServiceError::Forbidden {
                    reason: "该身份证号已在其他辖区建档，请联系原辖区办理迁入".into(),
                    target: Some(person_target(&existing.id)),
                });
            }
            record(
                c,
                actor,
                "search",
                person_target(&existing.id),
                "registration found the existing record",
            )?;
            return Ok(Registration::Existing { person_id: existing.id });
        }
        if !confirmed_not_duplicate {
            let candidates: Vec<PersonSummary> = repo::by_name_and_birth_date(c, &new.name, new.birth_date)?
                .iter()
                .filter(|p| actor.scope.covers(&p.jurisdiction, p.township_code.as_deref()))
                .map(|p| PersonSummary::of(p, today))
                .collect();
            if !candidates.is_empty() {
                for p in &candidates {
                    record(c, actor, "search", person_target(&p.id), "near-duplicate check")?;
                }
                return Ok(Registration::NearDuplicates { candidates });
            }
        }
        let person = create(c, actor, new)?;
        Ok(Registration::Created { person_id: person.id })
    })
    .await
}

/// At most this many persons answer one search (the page's results, the suggestions as typed).
pub const SEARCH_LIMIT: i64 = 50;

/// Look a person up within the actor's area: by ID number or 居民健康卡 number (either exact,
/// normalised; never by part of a number, which would let a caller walk through numbers) or by
/// part of the name; at most `limit` (≤ [`SEARCH_LIMIT`]) persons, each audited. A number that
/// is neither a card's nor a valid ID number is refused with the ID number's reason when it has
/// the shape of one (15 or more digits), so a mistyped ID number is named, not "not found".
pub async fn search(db: &Db, actor: &Actor, query: String, limit: i64) -> Result<Vec<PersonSummary>, ServiceError> {
    let actor2 = actor.clone();
    let today = today_china();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "person",
                ..Default::default()
            }));
        }
        let q = query.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, SEARCH_LIMIT);
        let is_number = q.chars().all(|ch| ch.is_ascii_alphanumeric()) && q.chars().any(|ch| ch.is_ascii_digit());
        let found: Vec<Person> = if is_number {
            let number = q.to_ascii_uppercase();
            let holder = match IdNumber::parse(&number, today) {
                Ok(id) => repo::by_id_number(c, id.as_str())?,
                Err(e) => match repo::holder_of(c, HEALTH_CARD_SYSTEM, &number)? {
                    Some(id) => repo::by_id(c, &id)?,
                    None if number.len() >= 15 && number[..number.len() - 1].bytes().all(|b| b.is_ascii_digit()) => {
                        return Err(ServiceError::invalid("q", e.code(), e.message_zh()));
                    }
                    None => None,
                },
            };
            holder
                .into_iter()
                .filter(|p| actor.scope.covers(&p.jurisdiction, p.township_code.as_deref()))
                .collect()
        } else {
            let (township, prefix) = actor.scope.filters();
            repo::search_by_name(c, q, township, prefix, limit)?
        };
        record_many(
            c,
            actor,
            "search",
            found.iter().map(|p| person_target(&p.id)).collect(),
            "person search",
        )?;
        Ok(found.iter().map(|p| PersonSummary::of(p, today)).collect())
    })
    .await
}

/// The person page: identity (ID number whole only for roles that may see it) and identifiers.
///
/// `person` holds the record as stored, for the code that works with it; shown (serialised for
/// a page or the JSON API) its `id_number` is what `id_number_display` says, so the whole number
/// never travels in a field beside the masked one — not to a role that may only see it masked,
/// nor on a page that masks it for everyone (the pregnancy page).
#[derive(Debug, Clone)]
pub struct PersonView {
    pub person: Person,
    pub age: i32,
    pub id_number_display: Option<String>,
    pub health_card_numbers: Vec<String>,
    pub other_identifiers: Vec<(String, String)>,
}

impl Serialize for PersonView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            person: Person,
            age: i32,
            id_number_display: &'a Option<String>,
            health_card_numbers: &'a [String],
            other_identifiers: &'a [(String, String)],
        }
        Shown {
            person: Person {
                id_number: self.id_number_display.clone(),
                ..self.person.clone()
            },
            age: self.age,
            id_number_display: &self.id_number_display,
            health_card_numbers: &self.health_card_numbers,
            other_identifiers: &self.other_identifiers,
        }
        .serialize(serializer)
    }
}

pub fn view_of(conn: &mut AnyConnection, actor: &Actor, person: Person) -> Result<PersonView, ServiceError> {
    let ids = repo::identifiers(conn, &person.id)?;
    let full = actor.may(Action::SeeFullIdNumber);
    let mask = |v: &str| {
        if full { v.to_string() } else { mask_id_number(v) }
    };
    let (cards, other): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(s, _)| s == HEALTH_CARD_SYSTEM);
    Ok(PersonView {
        age: person.age_on(today_china()),
        id_number_display: person.id_number.as_deref().map(mask),
        health_card_numbers: cards.into_iter().map(|(_, v)| mask(&v)).collect(),
        other_identifiers: other,
        person,
    })
}

/// Open a person's record (audited read).
pub async fn open(db: &Db, actor: &Actor, person_id: String) -> Result<PersonView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let person = person_for(c, &actor2, Action::ReadRecord, &person_id)?;
        record(c, &actor2, "read", person_target(&person.id), "person page")?;
        view_of(c, &actor2, person)
    })
    .await
}

/// Persons whose cards were read at the actor's facility in the last two hours (the desk's list).
pub async fn recent_card_reads(
    db: &Db,
    actor: &Actor,
) -> Result<Vec<(chrono::NaiveDateTime, PersonSummary)>, ServiceError> {
    let actor2 = actor.clone();
    let today = today_china();
    guarded(db, actor, "search", move |c| {
        if !actor2.may(Action::ReadRecord) {
            return Ok(Vec::new());
        }
        let since = now_utc() - chrono::Duration::hours(2);
        let rows = repo::recent_card_reads(c, &actor2.facility.id, since)?;
        let mut out = Vec::new();
        for (at, p) in rows {
            if actor2.scope.covers(&p.jurisdiction, p.township_code.as_deref())
                && !out.iter().any(|(_, s): &(_, PersonSummary)| s.id == p.id)
            {
                record(c, &actor2, "search", person_target(&p.id), "recent card reads")?;
                out.push((at, PersonSummary::of(&p, today)));
            }
        }
        Ok(out)
    })
    .await
}

/// The person an interface means: by ID number, else by the first other identifier someone holds.
fn lookup(
    c: &mut AnyConnection,
    id_number: Option<&str>,
    extra_ids: &[(String, String)],
) -> Result<Option<Person>, ServiceError> {
    if let Some(id) = id_number
        && let Some(p) = repo::by_id_number(c, id)?
    {
        return Ok(Some(p));
    }
    for (system, value) in extra_ids {
        if let Some(holder) = repo::holder_of(c, system, value)? {
            return Ok(repo::by_id(c, &holder)?);
        }
    }
    Ok(None)
}

/// The person an interface's identifiers name, if any (no access check: the caller decides).
pub fn find_by_identifiers(
    c: &mut AnyConnection,
    id_number: Option<&str>,
    extra_ids: &[(String, String)],
) -> Result<Option<Person>, ServiceError> {
    let id = id_number.and_then(|n| IdNumber::parse(n, today_china()).ok());
    lookup(c, id.as_ref().map(IdNumber::as_str), extra_ids)
}

/// Identify an existing woman for an interface (results, merges) without ever creating one: by
/// ID number (checked as on the desk), else health card or MRN. A name or birth date in the message
/// that contradicts the record is a conflict; a woman outside the actor's area is refused (audited
/// by the caller). Runs inside the caller's transaction; audits the identification there.
pub fn identify(
    c: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    input: &PersonInput,
    extra_ids: &[(String, String)],
) -> Result<Person, ServiceError> {
    let id_number = match input.id_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(
            IdNumber::parse(raw, today_china())
                .map_err(|e| ServiceError::invalid("id_number", e.code(), e.message_zh()))?,
        ),
        None => None,
    };
    let person = lookup(c, id_number.as_ref().map(IdNumber::as_str), extra_ids)?
        .ok_or(ServiceError::NotFound("没有找到该服务对象（请先发送 ADT 登记）"))?;
    if !may_on_person(
        c,
        actor,
        action,
        &person.jurisdiction,
        person.township_code.as_deref(),
        &person.id,
        None,
    )? {
        return Err(ServiceError::forbidden(person_target(&person.id)));
    }
    // A newborn still under her delivery-room name (李丽之女) is named by the message, not contradicted.
    let name_differs = !input.name.trim().is_empty()
        && input.name.trim() != person.name
        && !super::model::is_newborn_placeholder(&person.name);
    let birth_differs = input
        .birth_date
        .as_deref()
        .and_then(|b| NaiveDate::parse_from_str(b, "%Y-%m-%d").ok())
        .is_some_and(|b| b != person.birth_date);
    if name_differs || birth_differs {
        return Err(ServiceError::Conflict(
            "消息中的姓名或出生日期与档案不一致，请核对".into(),
        ));
    }
    record(c, actor, "read", person_target(&person.id), "interface identification")?;
    Ok(person)
}

/// Find a person by ID number, then by a hospital identifier (MRN), or create her — for
/// interfaces (HL7 ADT). Identifiers the message carries are added; an identifier already held by
/// someone else, or a name that contradicts the record, is a conflict: never a silent overwrite.
/// Runs inside the caller's transaction and audits there.
pub fn find_or_create(
    c: &mut AnyConnection,
    actor: &Actor,
    new: NewPerson,
    extra_ids: &[(String, String)],
) -> Result<(Person, bool), ServiceError> {
    if !actor.may(Action::RegisterPerson) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "person",
            ..Default::default()
        }));
    }
    let found = lookup(c, new.id_number.as_ref().map(IdNumber::as_str), extra_ids)?;
    let (person, created) = match found {
        Some(p) => {
            if !actor.may_on(Action::RegisterPerson, &p.jurisdiction, p.township_code.as_deref()) {
                return Err(ServiceError::forbidden(person_target(&p.id)));
            }
            if p.name != new.name || p.birth_date != new.birth_date {
                return Err(ServiceError::Conflict(
                    "消息中的姓名或出生日期与档案不一致，未覆盖档案，请核对".into(),
                ));
            }
            if let (Some(a), Some(b)) = (&p.id_number, &new.id_number)
                && a != b.as_str()
            {
                return Err(ServiceError::Conflict(
                    "消息中的身份证号与该病案号对应档案不一致".into(),
                ));
            }
            record(c, actor, "read", person_target(&p.id), "interface identification")?;
            (p, false)
        }
        None => (create(c, actor, new)?, true),
    };
    for (system, value) in extra_ids {
        match repo::holder_of(c, system, value)? {
            Some(holder) if holder != person.id => {
                return Err(ServiceError::Conflict(format!(
                    "标识 {system}:{value} 已属于另一服务对象"
                )));
            }
            Some(_) => {}
            None => repo::add_identifier(c, &person.id, system, value)?,
        }
    }
    Ok((person, created))
}

/// A merge as the survivor's page shows it (合并记录).
#[derive(Debug, Clone, Serialize)]
pub struct MergeView {
    pub at: chrono::NaiveDateTime,
    pub merged_id: String,
    pub merged_name: String,
    pub merged_id_number: Option<String>,
    pub moved: String,
    pub by: String,
    pub source_message_id: Option<String>,
}

/// The merges a person survived, ID numbers masked.
pub fn merges_of(c: &mut AnyConnection, person_id: &str) -> Result<Vec<MergeView>, ServiceError> {
    Ok(repo::merges_into(c, person_id)?
        .into_iter()
        .map(|m| {
            let snap: serde_json::Value = serde_json::from_str(&m.merged_snapshot).unwrap_or_default();
            let moved: serde_json::Value = serde_json::from_str(&m.moved).unwrap_or_default();
            let moved = moved
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0) || n.as_bool() == Some(true))
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join("，")
                })
                .unwrap_or_default();
            MergeView {
                at: m.created_at,
                merged_id: m.merged_id,
                merged_name: snap["name"].as_str().unwrap_or("").to_string(),
                merged_id_number: snap["id_number"].as_str().map(mask_id_number),
                moved,
                by: m.actor_name,
                source_message_id: m.source_message_id,
            }
        })
        .collect())
}

/// Merge the person `merged` into `survivor` (HL7 ADT^A40): everything she had — identifiers,
/// card reads, pregnancies with their visits, deliveries, risk records and results, messages — is
/// re-pointed to the survivor and takes the survivor's area; her row is removed and a
/// `person_merges` row keeps who, when, from which message, what moved and what she was.
/// Refused when both have an active pregnancy or their ID numbers differ (a person must decide).
/// Runs inside the caller's transaction and audits there.
pub fn merge(
    c: &mut AnyConnection,
    actor: &Actor,
    survivor: &Person,
    merged: &Person,
    source_message_id: Option<&str>,
) -> Result<(), ServiceError> {
    for p in [survivor, merged] {
        if !actor.may_on(Action::RegisterPerson, &p.jurisdiction, p.township_code.as_deref()) {
            return Err(ServiceError::forbidden(person_target(&p.id)));
        }
    }
    if survivor.id == merged.id {
        return Err(ServiceError::Conflict("合并双方是同一档案".into()));
    }
    if let (Some(a), Some(b)) = (&survivor.id_number, &merged.id_number)
        && a != b
    {
        return Err(ServiceError::Conflict(
            "两个档案的身份证号不一致，不能合并，请人工核对".into(),
        ));
    }
    // The features above may refuse (pregnancy: two active pregnancies are not merged blindly).
    super::events::PERSONS_MERGING.publish(
        c,
        &super::events::PersonsMerging {
            actor: actor.clone(),
            survivor: survivor.clone(),
            merged: merged.clone(),
        },
    )?;
    let mut moved: serde_json::Map<String, serde_json::Value> = repo::repoint(c, &merged.id, &survivor.id)?
        .into_iter()
        .map(|(k, n)| (k.to_string(), serde_json::json!(n)))
        .collect();
    repo::delete(c, &merged.id)?;
    if survivor.id_number.is_none()
        && let Some(n) = &merged.id_number
    {
        repo::set_id_number(c, &survivor.id, n)?;
        moved.insert("id_number".into(), serde_json::json!(true));
    }
    repo::move_to_jurisdiction(
        c,
        &survivor.id,
        &survivor.jurisdiction,
        survivor.township_code.as_deref(),
    )?;
    let snapshot = serde_json::json!({
        "name": merged.name, "sex": merged.sex.as_str(), "birth_date": merged.birth_date,
        "id_number": merged.id_number, "phone": merged.phone, "address": merged.address,
        "jurisdiction": merged.jurisdiction, "township_code": merged.township_code,
    });
    let row = repo::MergeRow {
        id: new_id(),
        survivor_id: survivor.id.clone(),
        merged_id: merged.id.clone(),
        merged_snapshot: snapshot.to_string(),
        moved: serde_json::Value::Object(moved).to_string(),
        actor_name: actor.name.clone(),
        source_message_id: source_message_id.map(str::to_string),
        created_at: now_utc(),
    };
    repo::insert_merge(c, &row, &actor.facility.id, &survivor.jurisdiction)?;
    let detail = format!("person {} merged into {} (merge {})", merged.id, survivor.id, row.id);
    record_many(
        c,
        actor,
        "merge",
        vec![person_target(&survivor.id), person_target(&merged.id)],
        &detail,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Interface use cases (FHIR Patient): versioned reads, search, registration and update with an
// optimistic lock. All run inside the caller's transaction (a FHIR transaction Bundle holds many)
// and audit there.

/// What a search for persons asks (every field optional; they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct PersonQuery {
    /// An identifier: (system in our terms — `id_number`, `health_card`, `mrn:CODE` or an
    /// external system URI — or None for any), value.
    pub identifier: Option<(Option<String>, String)>,
    pub name: Option<(repo::NameMatch, String)>,
    pub birth_from: Option<NaiveDate>,
    pub birth_to: Option<NaiveDate>,
    pub sex: Option<super::model::Sex>,
    pub updated: crate::ids::TimeRange,
    pub ids: Option<Vec<String>>,
    pub offset: i64,
    pub limit: i64,
}

/// The system name of the 18-digit ID number in [`PersonQuery::identifier`].
pub const ID_NUMBER_SYSTEM: &str = "id_number";

/// A person's current version, if the actor may read her (audited).
pub fn current_in(c: &mut AnyConnection, actor: &Actor, person_id: &str) -> Result<PersonVersion, ServiceError> {
    let person = person_for(c, actor, Action::ReadRecord, person_id)?;
    let v = repo::version_now(c, &person.id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))?;
    record(c, actor, "read", person_target(&person.id), "interface read")?;
    Ok(v)
}

/// Every kept version of a person's record, newest first (audited).
pub fn history_in(c: &mut AnyConnection, actor: &Actor, person_id: &str) -> Result<Vec<PersonVersion>, ServiceError> {
    let person = person_for(c, actor, Action::ReadRecord, person_id)?;
    let mut out = Vec::new();
    for v in crate::storage::history::versions(c, PERSON_ENTITY, &person.id)? {
        out.push(serde_json::from_str::<PersonVersion>(&v.snapshot).map_err(|e| {
            crate::storage::StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e)))
        })?);
    }
    if out.is_empty() {
        out.extend(repo::version_now(c, &person.id)?);
    }
    record(c, actor, "read", person_target(&person.id), "interface history read")?;
    Ok(out)
}

/// Persons matching a query that the actor may read, in creation order, and how many match in
/// all (each returned person is audited). An identifier finds her wherever she is managed, then
/// the usual access check decides; other criteria search the actor's area.
pub fn search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &PersonQuery,
) -> Result<(Vec<PersonVersion>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "person",
            ..Default::default()
        }));
    }
    let mut narrowed: Option<Vec<String>> = q.ids.clone();
    if let Some((system, value)) = &q.identifier {
        let mut ids = Vec::new();
        if system.as_deref().is_none_or(|s| s == ID_NUMBER_SYSTEM)
            && let Some(p) = repo::by_id_number(c, value.trim())?
        {
            ids.push(p.id);
        }
        if system.as_deref() != Some(ID_NUMBER_SYSTEM) {
            ids.extend(repo::holders(c, system.as_deref(), value)?);
        }
        narrowed = Some(match narrowed {
            Some(prev) => ids.into_iter().filter(|i| prev.contains(i)).collect(),
            None => ids,
        });
    }
    let filter = repo::PersonFilter {
        ids: narrowed.clone(),
        name: q.name.clone(),
        birth_from: q.birth_from,
        birth_to: q.birth_to,
        sex: q.sex.map(|s| s.as_str()),
        updated: q.updated,
        scope: if narrowed.is_some() {
            None
        } else {
            Some(actor.scope.clone())
        },
    };
    let (mut found, mut total) = repo::find(c, &filter, q.offset, q.limit)?;
    if narrowed.is_some() {
        // Found by identifier or id: keep only those the actor may read (scope or access grant).
        let before = found.len();
        let mut kept = Vec::with_capacity(before);
        for p in found {
            if may_on_person(
                c,
                actor,
                Action::ReadRecord,
                &p.jurisdiction,
                p.township_code.as_deref(),
                &p.id,
                None,
            )? {
                kept.push(p);
            }
        }
        total -= (before - kept.len()) as i64;
        found = kept;
    }
    let mut out = Vec::with_capacity(found.len());
    for p in &found {
        out.extend(repo::version_now(c, &p.id)?);
    }
    record_many(
        c,
        actor,
        "search",
        out.iter().map(|v| person_target(&v.person.id)).collect(),
        "interface search",
    )?;
    Ok((out, total))
}

/// The other identifiers an interface gives a person must be free (never held by someone else).
fn check_identifiers_free(
    c: &mut AnyConnection,
    person_id: Option<&str>,
    identifiers: &[(String, String)],
) -> Result<(), ServiceError> {
    for (system, value) in identifiers {
        if let Some(holder) = repo::holder_of(c, system, value)?
            && Some(holder.as_str()) != person_id
        {
            return Err(ServiceError::Conflict(format!(
                "标识 {system}|{value} 已属于另一服务对象"
            )));
        }
    }
    Ok(())
}

/// Register a person from an interface document (FHIR Patient create): refused when her ID number
/// or one of her identifiers is already held (the interface should search or update instead).
pub fn register_in(
    c: &mut AnyConnection,
    actor: &Actor,
    new: NewPerson,
    identifiers: &[(String, String)],
    received: Option<&str>,
) -> Result<PersonVersion, ServiceError> {
    if !actor.may(Action::RegisterPerson) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "person",
            ..Default::default()
        }));
    }
    if let Some(n) = &new.id_number
        && repo::by_id_number(c, n.as_str())?.is_some()
    {
        return Err(ServiceError::Conflict("该身份证号已建档".into()));
    }
    check_identifiers_free(c, None, identifiers)?;
    crate::privacy::service::refuse_fetal_sex_in_document(
        received,
        AuditTarget {
            entity_type: "person",
            ..Default::default()
        },
    )?;
    let person = Person {
        id: new_id(),
        name: new.name,
        sex: new.sex,
        birth_date: new.birth_date,
        nation_code: new.nation_code,
        id_number: new.id_number.map(|i| i.as_str().to_string()),
        phone: new.phone,
        address: new.address,
        jurisdiction: actor.facility.jurisdiction.clone(),
        township_code: actor.facility.township_code.clone(),
        version: 1,
    };
    repo::insert(c, &person, &actor.facility.id, identifiers, received).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ServiceError::Conflict("该身份证号或标识已建档".into())
        }
        e => e.into(),
    })?;
    record(
        c,
        actor,
        "create",
        person_target(&person.id),
        "person registered by interface",
    )?;
    repo::version_now(c, &person.id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))
}

/// Why an update was refused for its version.
pub const STALE_VERSION: &str = "该记录已被他人修改（版本已变化），请重新读取后再修改";

/// Update a person's identity data from an interface document (FHIR Patient update) if her record
/// is still at `expected_version`; a stale version changes nothing. The ID number, once recorded,
/// is only corrected on the desk (a change here is refused), and her area stays where it is.
pub fn update_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    expected_version: i32,
    new: NewPerson,
    identifiers: &[(String, String)],
    received: Option<&str>,
) -> Result<PersonVersion, ServiceError> {
    let current = person_for(c, actor, Action::RegisterPerson, person_id)?;
    crate::privacy::service::refuse_fetal_sex_in_document(received, person_target(&current.id))?;
    if current.version != expected_version {
        return Err(ServiceError::Conflict(STALE_VERSION.into()));
    }
    let id_number = new.id_number.map(|i| i.as_str().to_string());
    if current.id_number.is_some() && id_number != current.id_number {
        return Err(ServiceError::invalid(
            "id_number",
            "id_number_fixed",
            "身份证号已登记，接口不能修改或删除；如登记有误请在建档窗口更正",
        ));
    }
    if let Some(n) = &id_number
        && current.id_number.is_none()
        && repo::by_id_number(c, n)?.is_some()
    {
        return Err(ServiceError::Conflict("该身份证号已属于另一服务对象".into()));
    }
    check_identifiers_free(c, Some(&current.id), identifiers)?;
    let updated = Person {
        name: new.name,
        sex: new.sex,
        birth_date: new.birth_date,
        nation_code: new.nation_code,
        id_number,
        phone: new.phone,
        address: new.address,
        ..current
    };
    if !repo::update(c, &updated, expected_version, identifiers, received)? {
        return Err(ServiceError::Conflict(STALE_VERSION.into()));
    }
    record(
        c,
        actor,
        "update",
        person_target(&updated.id),
        "identity updated by interface",
    )?;
    repo::version_now(c, &updated.id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))
}

/// Where a search of a person's records may look — the rule every interface search of clinical
/// records shares (results, conditions, vaccinations).
#[derive(Debug, Clone)]
pub struct SearchReach {
    /// Only these records (by id, or the holders of the identifier asked for).
    pub ids: Option<Vec<String>>,
    /// The actor's area when no person and no id narrows the search.
    pub scope: Option<crate::auth::model::Scope>,
    /// Found by id or identifier outside a checked person: each record's access is checked.
    pub check_each: bool,
}

impl SearchReach {
    /// The records a search found that the actor may read, and the total less those left out:
    /// every one when found by id or identifier outside a checked person, else all of them.
    pub fn keep_readable<T>(
        &self,
        found: Vec<T>,
        total: i64,
        mut may_read: impl FnMut(&T) -> Result<bool, ServiceError>,
    ) -> Result<(Vec<T>, i64), ServiceError> {
        if !self.check_each {
            return Ok((found, total));
        }
        let before = found.len();
        let mut kept = Vec::with_capacity(before);
        for x in found {
            if may_read(&x)? {
                kept.push(x);
            }
        }
        let left_out = (before - kept.len()) as i64;
        Ok((kept, total - left_out))
    }
}

/// The reach of a search for `entity_type` records: refused without `ReadRecord`; None (an empty
/// answer, never a refusal that would reveal her) when the person named does not exist or the
/// actor may not read her record; by id or identifier wherever the records are, each then checked;
/// otherwise the actor's area.
pub fn search_reach(
    c: &mut AnyConnection,
    actor: &Actor,
    entity_type: &'static str,
    person_id: Option<&str>,
    ids: Option<Vec<String>>,
    identifier_holders: Option<Vec<String>>,
) -> Result<Option<SearchReach>, ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type,
            ..Default::default()
        }));
    }
    let ids = match (ids, identifier_holders) {
        (Some(prev), Some(held)) => Some(held.into_iter().filter(|i| prev.contains(i)).collect()),
        (prev, held) => held.or(prev),
    };
    let mut person_checked = false;
    if let Some(pid) = person_id {
        let Some(p) = repo::by_id(c, pid)? else {
            return Ok(None);
        };
        if !may_on_person(
            c,
            actor,
            Action::ReadRecord,
            &p.jurisdiction,
            p.township_code.as_deref(),
            &p.id,
            None,
        )? {
            return Ok(None);
        }
        person_checked = true;
    }
    Ok(Some(SearchReach {
        scope: (!person_checked && ids.is_none()).then(|| actor.scope.clone()),
        check_each: !person_checked && ids.is_some(),
        ids,
    }))
}
