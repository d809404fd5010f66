//! Who may see and act on a referral (the two sides, the area, escalation rungs), the receiving
//! centre a referral may name, and the policy set at start-up.

use std::sync::OnceLock;

use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::facility::model::Facility;
use crate::referral::model::{self, CommandError, Details, Party, PatientKind, Referral, ReferralRecord, State};

use super::steps::ActionInput;
use crate::referral::repo;
use crate::storage::{AnyConnection, Db};

/// How long accepting a referral lets the receiving centre at the patient's record (issue 4 §6).
pub(super) static GRANT_DAYS: OnceLock<i64> = OnceLock::new();
pub const DEFAULT_GRANT_DAYS: i64 = 30;

/// Set the referral policy at start-up (clocks file, access-grant length).
pub fn configure(clocks_path: Option<&str>, grant_days: i64) -> Result<(), String> {
    model::configure(clocks_path)?;
    if !(1..=365).contains(&grant_days) {
        return Err("MCH_REFERRAL_GRANT_DAYS must be 1–365".into());
    }
    let _ = GRANT_DAYS.set(grant_days);
    Ok(())
}

pub(super) fn grant_days() -> i64 {
    *GRANT_DAYS.get().unwrap_or(&DEFAULT_GRANT_DAYS)
}

pub fn referral_target(r: &ReferralRecord) -> AuditTarget {
    AuditTarget {
        entity_type: "referral",
        entity_id: Some(r.lifecycle.id.clone()),
        person_id: Some(r.person_id.clone()),
    }
}

/// What a request for this referral refused before reaching the service (the JSON route table's
/// gate) is audited against: the same target as this service's own refusals, naming her. No
/// access check — nothing of the record leaves but the ids the audit row keeps.
pub async fn refusal_target(db: &Db, referral_id: String) -> Result<Option<AuditTarget>, ServiceError> {
    db.read(move |c| Ok(repo::by_id(c, &referral_id)?.as_ref().map(referral_target)))
        .await
}

pub(super) fn command_error(e: CommandError) -> ServiceError {
    match e {
        CommandError::Refused(r) => ServiceError::Conflict(r.0),
        CommandError::Invalid(f) => ServiceError::Invalid(f),
    }
}

/// The side the actor's facility is on, if any.
pub fn side(actor: &Actor, r: &Referral) -> Option<Party> {
    if actor.facility.id == r.from_facility_id {
        Some(Party::Sender)
    } else if actor.facility.id == r.to_facility_id {
        Some(Party::Receiver)
    } else {
        None
    }
}

/// May the actor see this referral? The two sides; staff whose area covers the patient or the
/// receiving centre (coordinators, escalation rungs); and a centre a late step escalated to.
pub(super) fn may_view(
    c: &mut AnyConnection,
    actor: &Actor,
    r: &ReferralRecord,
    to: &Facility,
) -> Result<bool, ServiceError> {
    if !(actor.may(Action::ReadRecord) || actor.may(Action::Refer)) {
        return Ok(false);
    }
    // A draft has not been sent: only the facility writing it sees it.
    if r.lifecycle.state == State::Draft {
        return Ok(actor.facility.id == r.lifecycle.from_facility_id);
    }
    if side(actor, &r.lifecycle).is_some() || actor.scope.covers(&r.jurisdiction, r.township_code.as_deref()) {
        return Ok(true);
    }
    // Coordinators of the receiving centre's area follow what comes into their centres.
    if actor.role == crate::auth::model::Role::ReferralCoordinator
        && actor.scope.covers(&to.jurisdiction, to.township_code.as_deref())
    {
        return Ok(true);
    }
    Ok(repo::events(c, &r.lifecycle.id)?
        .iter()
        .any(|e| e.kind == "escalated" && e.notify_facility_id.as_deref() == Some(actor.facility.id.as_str())))
}

pub(super) fn load(c: &mut AnyConnection, id: &str) -> Result<ReferralRecord, ServiceError> {
    repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该转诊"))
}

/// Load a referral the actor may see, or refuse (audited by `guarded`).
pub(super) fn load_visible(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<ReferralRecord, ServiceError> {
    let r = load(c, id)?;
    let to =
        crate::facility::repo::by_id(c, &r.lifecycle.to_facility_id)?.ok_or(ServiceError::NotFound("没有这个机构"))?;
    if !may_view(c, actor, &r, &to)? {
        return Err(ServiceError::forbidden(referral_target(&r)));
    }
    Ok(r)
}

/// Only a critical-care centre for this kind of patient receives a referral (a mistyped code must
/// not send an emergency to a township clinic).
pub(super) fn require_centre(f: &Facility, kind: PatientKind) -> Result<(), ServiceError> {
    if f.capabilities.iter().any(|c| c == model::centre_capability(kind)) {
        return Ok(());
    }
    Err(ServiceError::invalid(
        "to_facility",
        "capability",
        format!(
            "{} 不是{}",
            f.name,
            match kind {
                PatientKind::Maternal => "危重孕产妇救治中心",
                PatientKind::Newborn => "危重新生儿救治中心",
            }
        ),
    ))
}

/// A receiving centre named by its code (hospitals, the contract) or its id (our forms).
pub(super) fn centre_named(c: &mut AnyConnection, name: &str) -> Result<Facility, ServiceError> {
    let name = name.trim();
    let found = match crate::facility::repo::by_code(c, name)? {
        Some(f) => Some(f),
        None if crate::ids::is_id(name) => crate::facility::repo::by_id(c, name)?,
        None => None,
    };
    found.ok_or_else(|| ServiceError::invalid("to_facility", "unknown", "没有这个接收机构"))
}

fn text(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

/// The 两非 ban (RULES.md §9.1) on a referral's free text: its reason and the texts of its details
/// (and, for a step, what the step's form says). Refused and audited against `target`.
pub(super) fn refuse_fetal_sex_in(
    reason: Option<&str>,
    details: Option<&Details>,
    step: Option<&ActionInput>,
    target: AuditTarget,
) -> Result<(), ServiceError> {
    let mut texts: Vec<(&str, &str, &str)> = Vec::new();
    if let Some(r) = reason {
        texts.push(("reason", "转诊原因", r));
    }
    if let Some(d) = details {
        texts.push(("diagnoses", "诊断", &d.diagnoses));
        texts.push(("treatment", "已给予的处理", &d.treatment));
        texts.push(("escort", "护送人员", &d.escort));
    }
    if let Some(a) = step {
        texts.extend([
            ("reason", "原因", text(&a.reason)),
            ("received_by", "接收医生", text(&a.received_by)),
            ("note", "说明", text(&a.note)),
            ("diagnosis", "接收诊断", text(&a.diagnosis)),
            ("treatment", "处理", text(&a.treatment)),
            ("signed_by", "签名", text(&a.signed_by)),
        ]);
    }
    crate::privacy::service::refuse_fetal_sex(&texts, target)
}
