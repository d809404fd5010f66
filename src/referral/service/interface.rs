//! What the interfaces ask of referrals: the HL7 outbox and inbound mapping (the log, who did a
//! step, a referral by our id or the hospital's), and the FHIR reads (ServiceRequest and Task:
//! visible exactly as on the referral pages; inside the caller's transaction, each returned
//! referral audited there).

use chrono::NaiveDateTime;

use crate::audit::service::{record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::referral::model::{ReferralRecord, State, Verb};
use crate::referral::repo::{self, EventRow};
use crate::storage::AnyConnection;

use super::access::{load_visible, may_view, referral_target};
use super::steps::system_event;

/// A referral's log, oldest first (for the HL7 outbox building its messages).
pub fn events_of(c: &mut AnyConnection, referral_id: &str) -> Result<Vec<EventRow>, ServiceError> {
    Ok(repo::events(c, referral_id)?)
}

/// An outbound message to `unreachable` was dead-lettered: the other side of the referral is told
/// in its timeline and notices, so it reaches that hospital another way (by phone).
pub fn note_undelivered(
    c: &mut AnyConnection,
    referral_id: &str,
    unreachable: &str,
    detail: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let Some(r) = repo::by_id(c, referral_id)? else {
        return Ok(());
    };
    let l = &r.lifecycle;
    let notify = if unreachable == l.from_facility_id {
        &l.to_facility_id
    } else {
        &l.from_facility_id
    };
    repo::add_event(
        c,
        &system_event(l, at, "hl7_failed", detail.to_string(), Some(notify.clone()), None),
    )?;
    Ok(())
}

/// Whether the last `verb` on this referral came from this facility (a hospital resending an
/// answer it already gave).
pub fn last_done_by(
    c: &mut AnyConnection,
    referral_id: &str,
    verb: Verb,
    facility_id: &str,
) -> Result<bool, ServiceError> {
    Ok(repo::events(c, referral_id)?
        .iter()
        .rev()
        .find(|e| e.kind == verb.as_str())
        .is_some_and(|e| e.facility_id.as_deref() == Some(facility_id)))
}

/// The referral an interface message names: our id, or the hospital's own identifier.
pub fn find_for_interface(
    c: &mut AnyConnection,
    our_id: Option<&str>,
    external_ref: Option<&str>,
) -> Result<Option<ReferralRecord>, ServiceError> {
    if let Some(id) = our_id.filter(|i| crate::ids::is_id(i))
        && let Some(r) = repo::by_id(c, id)?
    {
        return Ok(Some(r));
    }
    match external_ref {
        Some(e) => Ok(repo::by_external_ref(c, e)?),
        None => Ok(None),
    }
}

/// Whether the actor may see a loaded referral (the pages' rule).
pub(super) fn visible(c: &mut AnyConnection, actor: &Actor, r: &ReferralRecord) -> Result<bool, ServiceError> {
    let to =
        crate::facility::repo::by_id(c, &r.lifecycle.to_facility_id)?.ok_or(ServiceError::NotFound("没有这个机构"))?;
    may_view(c, actor, r, &to)
}

/// One referral for an interface (audited read).
pub fn referral_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<ReferralRecord, ServiceError> {
    let r = load_visible(c, actor, id)?;
    record(c, actor, "read", referral_target(&r), "interface read")?;
    Ok(r)
}

/// A person's referrals (or those of one pregnancy) the actor may see, oldest first, for
/// `$everything` (audited reads).
pub fn referrals_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<ReferralRecord>, ServiceError> {
    let mut out = Vec::new();
    for r in repo::for_person(c, person_id)?.into_iter().rev() {
        if pregnancy_id.is_some_and(|p| r.pregnancy_id.as_deref() != Some(p)) {
            continue;
        }
        if visible(c, actor, &r)? {
            out.push(r);
        }
    }
    record_many(
        c,
        actor,
        "read",
        out.iter().map(referral_target).collect(),
        "interface read (everything)",
    )?;
    Ok(out)
}

/// What an interface search for referrals asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct ReferralQuery {
    pub ids: Option<Vec<String>>,
    pub person_id: Option<String>,
    pub states: Option<Vec<State>>,
    pub updated: crate::ids::TimeRange,
    pub from_facility_id: Option<String>,
    pub to_facility_id: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// Referrals matching a query that the actor may see (as on the referral pages), oldest first,
/// and how many match in all (each returned one audited).
pub fn search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &ReferralQuery,
) -> Result<(Vec<ReferralRecord>, i64), ServiceError> {
    if !(actor.may(Action::ReadRecord) || actor.may(Action::Refer)) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "referral",
            ..Default::default()
        }));
    }
    let receiving_facilities = if actor.role == crate::auth::model::Role::ReferralCoordinator {
        crate::facility::repo::all(c)?
            .into_iter()
            .filter(|f| actor.scope.covers(&f.jurisdiction, f.township_code.as_deref()))
            .map(|f| f.id)
            .collect()
    } else {
        Vec::new()
    };
    let filter = repo::ReferralFilter {
        ids: q.ids.clone(),
        person_id: q.person_id.clone(),
        states: q.states.as_ref().map(|s| s.iter().map(|x| x.as_str()).collect()),
        updated: q.updated,
        from_facility_id: q.from_facility_id.clone(),
        to_facility_id: q.to_facility_id.clone(),
        visible_to: repo::Visibility {
            facility_id: actor.facility.id.clone(),
            scope: Some(actor.scope.clone()),
            escalated_ids: repo::escalated_ids(c, &actor.facility.id)?,
            receiving_facilities,
        },
    };
    let (found, mut total) = repo::find(c, &filter, q.offset, q.limit)?;
    // The query states the pages' rule; the rule itself has the last word.
    let mut kept = Vec::with_capacity(found.len());
    for r in found {
        if visible(c, actor, &r)? {
            kept.push(r);
        } else {
            total -= 1;
        }
    }
    record_many(
        c,
        actor,
        "search",
        kept.iter().map(referral_target).collect(),
        "interface search",
    )?;
    Ok((kept, total))
}
