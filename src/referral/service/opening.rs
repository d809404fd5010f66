//! Opening a referral (开单): the form pre-filled from the record, the checks, the new referral.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::{FieldError, ServiceError};
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::pregnancy::model::PregnancyStatus;
use crate::referral::model::{
    self, Catalogue, Command, Details, PatientKind, Referral, ReferralRecord, State, Urgency,
};
use crate::referral::repo;
use crate::storage::{AnyConnection, Db};

use super::access::{centre_named, command_error, referral_target, refuse_fetal_sex_in, require_centre};
use super::steps::{actor_event, apply};
use super::views::{FacilityBrief, ReferralView, brief, build_view, suggestions_for};

/// The new-referral form: who, prefilled facts, suggested centres, the checklists.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralForm {
    pub person: PersonSummary,
    pub pregnancy_id: Option<String>,
    pub patient_kind: PatientKind,
    pub details: Details,
    pub suggestions: Vec<FacilityBrief>,
    pub centres: Vec<FacilityBrief>,
    pub catalogue: &'static Catalogue,
}

/// What the sender knows from the record: gestational age or days since delivery, the current
/// risk colour (purple wins as its own flag).
pub(super) fn prefill(
    c: &mut AnyConnection,
    person_id: &str,
    kind: PatientKind,
) -> Result<(Option<String>, Details), ServiceError> {
    let mut d = Details::default();
    if kind == PatientKind::Newborn {
        return Ok((None, d));
    }
    let Some(p) = crate::pregnancy::repo::for_person(c, person_id)?.into_iter().next() else {
        return Ok((None, d));
    };
    let today = today_china();
    match p.status {
        PregnancyStatus::Active => {
            // Only a plausible gestational age (a pregnancy never closed in the record is not).
            let ga = p.dating.gestational_age_on(today);
            if (0..=45 * 7).contains(&ga.days) {
                d.gestational_weeks = u16::try_from(ga.days / 7).ok();
                d.gestational_days = u16::try_from(ga.days % 7).ok();
            }
        }
        _ => {
            if let Some(del) = crate::pregnancy::repo::delivery_for(c, &p.id)? {
                d.days_postpartum = u16::try_from((today - del.delivery_date).num_days())
                    .ok()
                    .filter(|n| *n <= 365);
            }
        }
    }
    let risk = crate::risk::service::summary(c, &p.id)?;
    d.risk_colour = risk.current.map(|a| {
        if a.purple {
            "purple".to_string()
        } else {
            a.colour.as_str().to_string()
        }
    });
    // A pregnancy ended more than a year ago is not this referral's episode: nothing from it.
    let recent = p.status == PregnancyStatus::Active || d.days_postpartum.is_some();
    if !recent {
        return Ok((None, Details::default()));
    }
    Ok((Some(p.id), d))
}

pub async fn form(db: &Db, actor: &Actor, person_id: String, kind: PatientKind) -> Result<ReferralForm, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        if !actor.may(Action::Refer) {
            return Err(ServiceError::forbidden(crate::identity::service::person_target(
                &person_id,
            )));
        }
        let person = person_for(c, actor, Action::ReadRecord, &person_id)?;
        let (pregnancy_id, details) = prefill(c, &person.id, kind)?;
        let dir = crate::facility::repo::directory(c)?;
        let draft = ReferralRecord {
            lifecycle: Referral::draft(
                new_id(),
                Urgency::Emergency,
                actor.facility.id.clone(),
                String::new(),
                now_utc(),
            )
            .map_err(command_error)?,
            person_id: person.id.clone(),
            pregnancy_id: pregnancy_id.clone(),
            patient_kind: kind,
            jurisdiction: person.jurisdiction.clone(),
            township_code: person.township_code.clone(),
            reason: String::new(),
            opened_by: actor.name.clone(),
            details: details.clone(),
            version: 1,
            updated_at: now_utc(),
            external_ref: None,
        };
        let suggestions = suggestions_for(&dir, &draft, &[], &[]);
        let cap = model::centre_capability(kind);
        let centres = dir
            .iter()
            .filter(|e| e.facility.id != actor.facility.id && e.facility.capabilities.iter().any(|c| c == cap))
            .map(brief)
            .collect();
        record(
            c,
            actor,
            "read",
            crate::identity::service::person_target(&person.id),
            "referral form",
        )?;
        Ok(ReferralForm {
            person: PersonSummary::of(&person, today_china()),
            pregnancy_id,
            patient_kind: kind,
            details,
            suggestions,
            centres,
            catalogue: model::catalogue(),
        })
    })
    .await
}

/// `POST /api/referrals` (ARCHITECTURE.md): few required fields so an emergency is open in under
/// a minute; the rest can be added later.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    pub person_id: String,
    pub urgency: String,
    pub reason: String,
    /// A facility code (or id).
    pub to_facility: String,
    #[serde(default)]
    pub patient_kind: Option<String>,
    #[serde(default)]
    pub details: Option<Details>,
    /// Send at once (the emergency form's "开单并发出").
    #[serde(default)]
    pub send: bool,
}

pub async fn open(db: &Db, actor: &Actor, new: NewReferral) -> Result<ReferralView, ServiceError> {
    let checked = new.check()?;
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let now = now_utc();
        let r = open_in(c, &actor2, checked, None, now)?;
        build_view(c, &actor2, r, now)
    })
    .await
}

/// A new referral's input after the checks that need no database.
#[derive(Debug, Clone)]
pub struct CheckedReferral {
    person_id: String,
    urgency: Urgency,
    kind: PatientKind,
    reason: String,
    to_facility: String,
    details: Option<Details>,
    send: bool,
}

impl NewReferral {
    /// Every field checked at once (a form shows all its problems together).
    pub fn check(self) -> Result<CheckedReferral, ServiceError> {
        let mut errors = Vec::new();
        let urgency = Urgency::parse(self.urgency.trim());
        if urgency.is_none() {
            errors.push(FieldError::new(
                "urgency",
                "choice",
                "紧急程度须为 emergency、urgent 或 planned",
            ));
        }
        let kind = match self.patient_kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => Some(PatientKind::Maternal),
            Some(k) => PatientKind::parse(k),
        };
        if kind.is_none() {
            errors.push(FieldError::new(
                "patient_kind",
                "choice",
                "转诊对象须为 maternal 或 newborn",
            ));
        }
        let reason = self.reason.trim().to_string();
        if reason.is_empty() {
            errors.push(FieldError::new("reason", "required", "请填写转诊原因"));
        } else if reason.chars().count() > 2000 {
            errors.push(FieldError::new("reason", "too_long", "转诊原因过长"));
        } else if model::has_control(&reason) {
            errors.push(FieldError::new("reason", "control", "转诊原因含有控制字符"));
        }
        if self.to_facility.trim().is_empty() {
            errors.push(FieldError::new("to_facility", "required", "请选择接收中心"));
        }
        let (Some(urgency), Some(kind), true) = (urgency, kind, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let details = self
            .details
            .map(|d| d.validate(kind))
            .transpose()
            .map_err(ServiceError::Invalid)?;
        Ok(CheckedReferral {
            person_id: self.person_id,
            urgency,
            kind,
            reason,
            to_facility: self.to_facility,
            details,
            send: self.send,
        })
    }
}

/// Open a referral inside the caller's transaction (the web and JSON doors through [`open`], the
/// HL7 interface from a REF^I12 with the hospital's own identifier).
pub fn open_in(
    c: &mut AnyConnection,
    actor: &Actor,
    new: CheckedReferral,
    external_ref: Option<String>,
    now: NaiveDateTime,
) -> Result<ReferralRecord, ServiceError> {
    if !actor.may(Action::Refer) {
        return Err(ServiceError::forbidden(crate::identity::service::person_target(
            &new.person_id,
        )));
    }
    let person = person_for(c, actor, Action::Refer, &new.person_id)?;
    refuse_fetal_sex_in(
        Some(&new.reason),
        new.details.as_ref(),
        None,
        crate::identity::service::person_target(&person.id),
    )?;
    let to = centre_named(c, &new.to_facility)?;
    require_centre(&to, new.kind)?;
    let (pregnancy_id, mut details) = prefill(c, &person.id, new.kind)?;
    if let Some(g) = new.details {
        details = merge_details(details, g);
    }
    let lifecycle =
        Referral::draft(new_id(), new.urgency, actor.facility.id.clone(), to.id.clone(), now).map_err(command_error)?;
    let mut r = ReferralRecord {
        lifecycle,
        person_id: person.id.clone(),
        pregnancy_id,
        patient_kind: new.kind,
        jurisdiction: person.jurisdiction.clone(),
        township_code: person.township_code.clone(),
        reason: new.reason,
        opened_by: actor.name.clone(),
        details,
        version: 1,
        updated_at: now,
        external_ref,
    };
    repo::insert(c, &r)?;
    repo::add_event(
        c,
        &actor_event(
            &r,
            actor,
            now,
            "opened",
            (State::Draft, State::Draft),
            format!("{} · {}", new.urgency.label_zh(), new.kind.label_zh()),
            None,
        ),
    )?;
    record(c, actor, "create", referral_target(&r), "referral opened")?;
    if new.send {
        r = apply(c, actor, r, Command::Send { to: None }, now)?;
    }
    Ok(r)
}

/// Typed details win over the prefilled ones; empty typed fields keep what the record knew.
pub(super) fn merge_details(known: Details, typed: Details) -> Details {
    Details {
        risk_colour: typed.risk_colour.or(known.risk_colour),
        gestational_weeks: typed.gestational_weeks.or(known.gestational_weeks),
        gestational_days: typed.gestational_days.or(known.gestational_days),
        days_postpartum: typed.days_postpartum.or(known.days_postpartum),
        ..typed
    }
}
