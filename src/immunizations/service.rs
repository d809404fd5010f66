//! Immunization use cases, inside the caller's transaction: recording one for a person, reading,
//! searching, and all of hers. Access follows the person's record (area or access grant); every
//! touch is audited.

use super::model::{Immunization, ImmunizationInput};
use super::repo;
use crate::audit::service::{record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::service::{may_on_person, person_for, person_target};
use crate::ids::{TimeRange, new_id, now_utc};
use crate::storage::AnyConnection;

fn target(id: &str, person_id: &str) -> AuditTarget {
    AuditTarget {
        entity_type: "immunization",
        entity_id: Some(id.to_string()),
        person_id: Some(person_id.to_string()),
    }
}

/// Record a vaccination for a person: hospitals and clinicians that may record results for her
/// ([`Action::RecordResult`]). An identifier already held by another vaccination is a conflict.
pub fn record_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    input: &ImmunizationInput,
) -> Result<Immunization, ServiceError> {
    let person = person_for(c, actor, Action::RecordResult, person_id)?;
    crate::privacy::service::refuse_fetal_sex_in_document(input.received.as_deref(), person_target(&person.id))?;
    let now = now_utc();
    input.validate(now)?;
    let id = new_id();
    for (system, value) in &input.identifiers {
        if !repo::claim_identifier(c, system, value, &id)? {
            return Err(ServiceError::Conflict(format!(
                "标识 {system}|{value} 已属于另一接种记录"
            )));
        }
    }
    let imm = Immunization {
        id: id.clone(),
        person_id: person.id.clone(),
        jurisdiction: person.jurisdiction.clone(),
        township_code: person.township_code.clone(),
        status: input.status.clone(),
        vaccine_system: input.vaccine_system.trim().to_string(),
        vaccine_code: input.vaccine_code.trim().to_string(),
        vaccine_text: input.vaccine_text.trim().to_string(),
        occurrence: input.occurrence.trim().to_string(),
        occurrence_at: input.occurrence_at,
        lot_number: input.lot_number.clone(),
        facility_id: actor.facility.id.clone(),
        recorded_by: actor.name.clone(),
        received: input.received.clone(),
        created_at: now,
        identifiers: Vec::new(),
    };
    repo::insert(c, &imm)?;
    record(
        c,
        actor,
        "create",
        target(&id, &person.id),
        "immunization recorded by interface",
    )?;
    let mut stored = repo::by_id(c, &id)?.ok_or(ServiceError::NotFound("没有找到该接种记录"))?;
    stored.identifiers = repo::identifiers_of(c, &id)?;
    Ok(stored)
}

fn may_read(c: &mut AnyConnection, actor: &Actor, x: &Immunization) -> Result<bool, ServiceError> {
    may_on_person(
        c,
        actor,
        Action::ReadRecord,
        &x.jurisdiction,
        x.township_code.as_deref(),
        &x.person_id,
        None,
    )
}

/// One vaccination, if the actor may read it (audited).
pub fn immunization_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Immunization, ServiceError> {
    let mut x = repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该接种记录"))?;
    if !may_read(c, actor, &x)? {
        return Err(ServiceError::forbidden(target(&x.id, &x.person_id)));
    }
    x.identifiers = repo::identifiers_of(c, &x.id)?;
    record(c, actor, "read", target(&x.id, &x.person_id), "interface read")?;
    Ok(x)
}

/// What a search for vaccinations asks (every field optional; they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct ImmunizationQuery {
    pub person_id: Option<String>,
    pub occurrence: TimeRange,
    /// (stored systems or None for any, code).
    pub vaccine: Option<(Option<Vec<String>>, String)>,
    pub statuses: Option<Vec<String>>,
    pub identifier: Option<(Option<String>, String)>,
    pub created: TimeRange,
    pub ids: Option<Vec<String>>,
    pub offset: i64,
    pub limit: i64,
}

/// Vaccinations matching a query that the actor may read, most recent first, and how many match
/// in all (each returned one audited). With a person: hers if the actor may read her record (else
/// nothing); by identifier or id: wherever, then the access check; otherwise the actor's area.
pub fn search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &ImmunizationQuery,
) -> Result<(Vec<Immunization>, i64), ServiceError> {
    let held = match &q.identifier {
        Some((system, value)) => Some(repo::identifier_holders(c, system.as_deref(), value)?),
        None => None,
    };
    let Some(reach) =
        crate::identity::service::search_reach(c, actor, "immunization", q.person_id.as_deref(), q.ids.clone(), held)?
    else {
        return Ok((Vec::new(), 0));
    };
    let filter = repo::ImmunizationFilter {
        ids: reach.ids.clone(),
        person_id: q.person_id.clone(),
        occurrence: q.occurrence,
        vaccine: q.vaccine.clone(),
        statuses: q.statuses.clone(),
        created: q.created,
        scope: reach.scope.clone(),
    };
    let (found, total) = repo::find(c, &filter, q.offset, q.limit)?;
    let (mut out, total) = reach.keep_readable(found, total, |x| may_read(c, actor, x))?;
    repo::with_identifiers(c, &mut out)?;
    record_many(
        c,
        actor,
        "search",
        out.iter().map(|x| target(&x.id, &x.person_id)).collect(),
        "interface search",
    )?;
    Ok((out, total))
}

/// Every vaccination of a person, if the actor may read her record (audited). Vaccinations belong
/// to her, not to one pregnancy: a pregnancy's packet carries them all.
pub fn for_person_in(c: &mut AnyConnection, actor: &Actor, person_id: &str) -> Result<Vec<Immunization>, ServiceError> {
    let person = person_for(c, actor, Action::ReadRecord, person_id)?;
    let filter = repo::ImmunizationFilter {
        person_id: Some(person.id.clone()),
        ..repo::ImmunizationFilter::default()
    };
    let (mut found, _) = repo::find(c, &filter, 0, 10_000)?;
    repo::with_identifiers(c, &mut found)?;
    record_many(
        c,
        actor,
        "read",
        found.iter().map(|x| target(&x.id, &x.person_id)).collect(),
        "interface read (whole record)",
    )?;
    Ok(found)
}
