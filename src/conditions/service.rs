//! Condition use cases, inside the caller's transaction (a FHIR transaction Bundle holds many):
//! recording one for a person, reading, searching, and everything of hers. Access follows the
//! person's record (area or access grant); every touch is audited.

use super::model::{Condition, ConditionInput};
use super::repo;
use crate::audit::service::{record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::service::{may_on_person, person_for, person_target};
use crate::ids::{TimeRange, new_id, now_utc};
use crate::storage::AnyConnection;

fn target(id: &str, person_id: &str) -> AuditTarget {
    AuditTarget {
        entity_type: "condition",
        entity_id: Some(id.to_string()),
        person_id: Some(person_id.to_string()),
    }
}

/// Record a condition for a person: hospitals and clinicians that may record results for her
/// ([`Action::RecordResult`]). It belongs to her active pregnancy, if any (a standing problem
/// recorded outside a pregnancy belongs to none). An identifier already held by another condition
/// is a conflict (field `identifier`).
pub fn record_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    input: &ConditionInput,
) -> Result<Condition, ServiceError> {
    let person = person_for(c, actor, Action::RecordResult, person_id)?;
    crate::privacy::service::refuse_fetal_sex_in_document(input.received.as_deref(), person_target(&person.id))?;
    input.validate()?;
    let id = new_id();
    for (system, value) in &input.identifiers {
        if !repo::claim_identifier(c, system, value, &id)? {
            return Err(ServiceError::Conflict(format!(
                "标识 {system}|{value} 已属于另一诊断记录"
            )));
        }
    }
    let pregnancy = crate::pregnancy::repo::active_for_person(c, &person.id)?;
    let cond = Condition {
        id: id.clone(),
        person_id: person.id.clone(),
        pregnancy_id: pregnancy.map(|p| p.id),
        jurisdiction: person.jurisdiction.clone(),
        township_code: person.township_code.clone(),
        code_system: input.code_system.trim().to_string(),
        code: input.code.trim().to_string(),
        code_text: input.code_text.trim().to_string(),
        clinical_status: input.clinical_status.clone(),
        verification_status: input.verification_status.clone(),
        onset: input.onset.clone(),
        recorded_date: input.recorded_date.clone(),
        facility_id: actor.facility.id.clone(),
        recorded_by: actor.name.clone(),
        received: input.received.clone(),
        created_at: now_utc(),
        identifiers: Vec::new(),
    };
    repo::insert(c, &cond)?;
    record(
        c,
        actor,
        "create",
        target(&id, &person.id),
        "condition recorded by interface",
    )?;
    let mut stored = repo::by_id(c, &id)?.ok_or(ServiceError::NotFound("没有找到该诊断记录"))?;
    stored.identifiers = repo::identifiers_of(c, &id)?;
    Ok(stored)
}

fn may_read(c: &mut AnyConnection, actor: &Actor, x: &Condition) -> Result<bool, ServiceError> {
    may_on_person(
        c,
        actor,
        Action::ReadRecord,
        &x.jurisdiction,
        x.township_code.as_deref(),
        &x.person_id,
        x.pregnancy_id.as_deref(),
    )
}

/// One condition, if the actor may read it (audited).
pub fn condition_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Condition, ServiceError> {
    let mut x = repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该诊断记录"))?;
    if !may_read(c, actor, &x)? {
        return Err(ServiceError::forbidden(target(&x.id, &x.person_id)));
    }
    x.identifiers = repo::identifiers_of(c, &x.id)?;
    record(c, actor, "read", target(&x.id, &x.person_id), "interface read")?;
    Ok(x)
}

/// What a search for conditions asks (every field optional; they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct ConditionQuery {
    pub person_id: Option<String>,
    /// (stored systems or None for any, code).
    pub code: Option<(Option<Vec<String>>, String)>,
    pub clinical_statuses: Option<Vec<String>>,
    pub identifier: Option<(Option<String>, String)>,
    pub created: TimeRange,
    pub ids: Option<Vec<String>>,
    pub offset: i64,
    pub limit: i64,
}

/// Conditions matching a query that the actor may read, newest first, and how many match in all
/// (each returned one audited). With a person: hers if the actor may read her record (else
/// nothing); by identifier or id: wherever, then the access check; otherwise the actor's area.
pub fn search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &ConditionQuery,
) -> Result<(Vec<Condition>, i64), ServiceError> {
    let held = match &q.identifier {
        Some((system, value)) => Some(repo::identifier_holders(c, system.as_deref(), value)?),
        None => None,
    };
    let Some(reach) =
        crate::identity::service::search_reach(c, actor, "condition", q.person_id.as_deref(), q.ids.clone(), held)?
    else {
        return Ok((Vec::new(), 0));
    };
    let filter = repo::ConditionFilter {
        ids: reach.ids.clone(),
        person_id: q.person_id.clone(),
        pregnancy_id: None,
        code: q.code.clone(),
        clinical_statuses: q.clinical_statuses.clone(),
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

/// Every condition of a person — with a pregnancy, that pregnancy's and her standing ones (of no
/// pregnancy) — if the actor may read her record (audited).
pub fn for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<Condition>, ServiceError> {
    let person = person_for(c, actor, Action::ReadRecord, person_id)?;
    let filter = repo::ConditionFilter {
        person_id: Some(person.id.clone()),
        pregnancy_id: pregnancy_id.map(str::to_string),
        ..repo::ConditionFilter::default()
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
