//! Referral use cases: open, act, follow, escalate, measure, print. Every call checks role and
//! side (sending facility, receiving centre) or area, and writes its audit row in its transaction.

use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::model::{
    self, Catalogue, Command, CommandError, Details, Feedback, Handover, Intervals, Outcome, Party, PatientKind,
    Referral, ReferralRecord, State, Step, Urgency, Verb, clocks, suggest_centres,
};
use super::repo::{self, EventRow};
use crate::audit::service::{guarded, record, record_many, record_system};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::facility::model::{DirectoryEntry, Facility};
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::pregnancy::model::PregnancyStatus;
use crate::storage::{AnyConnection, Db};

/// How long accepting a referral lets the receiving centre at the patient's record (issue 4 §6).
static GRANT_DAYS: OnceLock<i64> = OnceLock::new();
pub const DEFAULT_GRANT_DAYS: i64 = 30;
/// A printed QR code opens the live referral for this long.
pub const QR_VALID_DAYS: i64 = 7;

/// Set the referral policy at start-up (clocks file, access-grant length).
pub fn configure(clocks_path: Option<&str>, grant_days: i64) -> Result<(), String> {
    model::configure(clocks_path)?;
    if !(1..=365).contains(&grant_days) {
        return Err("MCH_REFERRAL_GRANT_DAYS must be 1–365".into());
    }
    let _ = GRANT_DAYS.set(grant_days);
    Ok(())
}

fn grant_days() -> i64 {
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

fn command_error(e: CommandError) -> ServiceError {
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
fn may_view(c: &mut AnyConnection, actor: &Actor, r: &ReferralRecord, to: &Facility) -> Result<bool, ServiceError> {
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

fn load(c: &mut AnyConnection, id: &str) -> Result<ReferralRecord, ServiceError> {
    repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该转诊"))
}

/// Load a referral the actor may see, or refuse (audited by `guarded`).
fn load_visible(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<ReferralRecord, ServiceError> {
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
fn require_centre(f: &Facility, kind: PatientKind) -> Result<(), ServiceError> {
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
fn centre_named(c: &mut AnyConnection, name: &str) -> Result<Facility, ServiceError> {
    let name = name.trim();
    let found = match crate::facility::repo::by_code(c, name)? {
        Some(f) => Some(f),
        None if crate::ids::is_id(name) => crate::facility::repo::by_id(c, name)?,
        None => None,
    };
    found.ok_or_else(|| ServiceError::invalid("to_facility", "unknown", "没有这个接收机构"))
}

// ------------------------------------------------------------------ views

#[derive(Debug, Clone, Serialize)]
pub struct FacilityBrief {
    pub id: String,
    pub code: String,
    pub name: String,
    pub level: &'static str,
    pub duty_phone: Option<String>,
}

fn brief(e: &DirectoryEntry) -> FacilityBrief {
    FacilityBrief {
        id: e.facility.id.clone(),
        code: e.facility.code.clone(),
        name: e.facility.name.clone(),
        level: e.facility.level.label_zh(),
        duty_phone: e.duty_phone.clone(),
    }
}

fn brief_of(dir: &[DirectoryEntry], id: &str) -> FacilityBrief {
    dir.iter()
        .find(|e| e.facility.id == id)
        .map(brief)
        .unwrap_or(FacilityBrief {
            id: id.to_string(),
            code: String::new(),
            name: "（未知机构）".into(),
            level: "",
            duty_phone: None,
        })
}

/// The running clock of the current step.
#[derive(Debug, Clone, Serialize)]
pub struct ClockView {
    pub step: Step,
    pub step_label: &'static str,
    /// Whose turn it is.
    pub party: Party,
    pub started_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub limit_minutes: i64,
    pub late: bool,
    /// Minutes past the limit (negative: time left).
    pub late_minutes: i64,
    pub escalation_level: i32,
}

fn clock_of(r: &Referral, now: NaiveDateTime) -> Option<ClockView> {
    let step = r.step()?;
    let due_at = r.step_due_at?;
    Some(ClockView {
        step,
        step_label: step.label_zh(),
        party: step.party(),
        started_at: r.step_started_at,
        due_at,
        limit_minutes: clocks().limit(r.urgency, step).num_minutes(),
        // Escalated means late, whatever this instance's clock says.
        late: now >= due_at || r.escalation_level > 0,
        late_minutes: (now - due_at).num_minutes(),
        escalation_level: r.escalation_level,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: NaiveDateTime,
    pub kind: String,
    pub label: String,
    pub from_state: String,
    pub to_state: String,
    pub to_label: &'static str,
    pub actor: String,
    pub facility: String,
    pub notify: Option<String>,
    pub detail: String,
    pub escalation_level: Option<i32>,
}

fn event_view(e: &EventRow, dir: &[DirectoryEntry]) -> EventView {
    let label = match e.kind.as_str() {
        "escalated" => format!("超时升级（第 {} 级）", e.escalation_level.unwrap_or(0)),
        "opened" => "开单".to_string(),
        "details" => "补充转诊信息".to_string(),
        "note" => "督办记录".to_string(),
        "hl7_failed" => "接口消息未送达".to_string(),
        k => Verb::parse(k)
            .map(|v| v.label_zh().to_string())
            .unwrap_or_else(|| k.to_string()),
    };
    EventView {
        at: e.at,
        kind: e.kind.clone(),
        label,
        from_state: e.from_state.clone(),
        to_state: e.to_state.clone(),
        to_label: State::parse(&e.to_state).map(State::label_zh).unwrap_or(""),
        actor: e.actor_display.clone(),
        facility: e
            .facility_id
            .as_deref()
            .map(|f| brief_of(dir, f).name)
            .unwrap_or_else(|| "系统".into()),
        notify: e.notify_facility_id.as_deref().map(|f| brief_of(dir, f).name),
        detail: e.detail.clone(),
        escalation_level: e.escalation_level,
    }
}

/// A referral as its pages and the JSON API show it.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralView {
    #[serde(flatten)]
    pub record: ReferralRecord,
    pub state_label: &'static str,
    pub urgency_label: &'static str,
    pub kind_label: &'static str,
    pub person: PersonSummary,
    pub from_facility: FacilityBrief,
    pub to_facility: FacilityBrief,
    pub clock: Option<ClockView>,
    pub timeline: Vec<EventView>,
    pub intervals: Intervals,
    /// The side of the asking actor's facility (`sender`, `receiver`), if any.
    pub my_side: Option<Party>,
    /// What the asking actor may do now.
    pub allowed: Vec<Verb>,
    /// Where the patient could go next (after a rejection, or for a redirect), best first.
    pub suggestions: Vec<FacilityBrief>,
    /// The sender may still add or correct details (open, before arrival).
    pub editable: bool,
    /// Every other centre that takes this kind of patient, suggestions first: a patient is never
    /// stuck because no centre has every capability she needs (those gaps are warnings).
    pub choices: Vec<FacilityBrief>,
    pub near_miss_labels: Vec<String>,
    pub danger_sign_labels: Vec<String>,
    pub outcome_label: Option<&'static str>,
    pub risk_colour_label: Option<&'static str>,
    /// What both sides should know before the transfer: needs the receiving centre has not
    /// declared. Never a reason to block an emergency (the centre can redirect).
    pub warnings: Vec<String>,
}

fn labels(codes: &[String], items: &[model::CatalogueItem]) -> Vec<String> {
    codes
        .iter()
        .map(|c| {
            items
                .iter()
                .find(|i| &i.code == c)
                .map(|i| i.label.clone())
                .unwrap_or_else(|| c.clone())
        })
        .collect()
}

fn build_view(
    c: &mut AnyConnection,
    actor: &Actor,
    r: ReferralRecord,
    now: NaiveDateTime,
) -> Result<ReferralView, ServiceError> {
    let dir = crate::facility::repo::directory(c)?;
    let person = crate::identity::repo::by_id(c, &r.person_id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))?;
    let events = repo::events(c, &r.lifecycle.id)?;
    let l = &r.lifecycle;
    let my_side = side(actor, l);
    let allowed = match my_side {
        Some(p) if actor.may(Action::Refer) => Verb::ALL
            .iter()
            .copied()
            .filter(|v| model::transition(l.state, *v, p).is_ok())
            .collect(),
        _ => Vec::new(),
    };
    let suggestions = if matches!(
        l.state,
        State::Rejected | State::Sent | State::Acknowledged | State::Redirected
    ) {
        suggestions_for(&dir, &r, &l.declined_by, std::slice::from_ref(&l.to_facility_id))
    } else {
        Vec::new()
    };
    let cap = model::centre_capability(r.patient_kind);
    let mut choices = suggestions.clone();
    choices.extend(
        dir.iter()
            .filter(|e| e.facility.capabilities.iter().any(|c| c == cap))
            .filter(|e| e.facility.id != l.from_facility_id && e.facility.id != l.to_facility_id)
            .filter(|e| !l.declined_by.contains(&e.facility.id))
            .filter(|e| !suggestions.iter().any(|s| s.id == e.facility.id))
            .map(brief),
    );
    let to_caps = dir
        .iter()
        .find(|e| e.facility.id == l.to_facility_id)
        .map(|e| e.facility.capabilities.clone())
        .unwrap_or_default();
    let warnings = r
        .details
        .needs
        .iter()
        .filter(|n| !to_caps.contains(n))
        .map(|n| format!("接收中心未登记所需救治能力：{n}"))
        .collect();
    let cat = model::catalogue();
    let signs = match r.patient_kind {
        PatientKind::Maternal => &cat.maternal_danger,
        PatientKind::Newborn => &cat.newborn_danger,
    };
    Ok(ReferralView {
        state_label: l.state.label_zh(),
        urgency_label: l.urgency.label_zh(),
        kind_label: r.patient_kind.label_zh(),
        person: PersonSummary::of(&person, today_china()),
        from_facility: brief_of(&dir, &l.from_facility_id),
        to_facility: brief_of(&dir, &l.to_facility_id),
        clock: clock_of(l, now),
        timeline: events.iter().map(|e| event_view(e, &dir)).collect(),
        intervals: l.intervals(),
        my_side,
        allowed,
        suggestions,
        near_miss_labels: labels(&r.details.near_miss, &cat.near_miss),
        danger_sign_labels: labels(&r.details.danger_signs, signs),
        outcome_label: l.feedback.as_ref().map(|f| f.outcome.label_zh()),
        risk_colour_label: r.details.risk_colour.as_deref().map(model::risk_colour_label),
        warnings,
        choices,
        editable: l.state.is_open() && l.arrived_at.is_none(),
        record: r,
    })
}

fn suggestions_for(
    dir: &[DirectoryEntry],
    r: &ReferralRecord,
    declined: &[String],
    also_exclude: &[String],
) -> Vec<FacilityBrief> {
    let Some(sender) = dir.iter().find(|e| e.facility.id == r.lifecycle.from_facility_id) else {
        return Vec::new();
    };
    let responsible = match r.patient_kind {
        PatientKind::Maternal => sender.maternal_centre_id.as_deref(),
        PatientKind::Newborn => sender.neonatal_centre_id.as_deref(),
    };
    let facilities: Vec<Facility> = dir.iter().map(|e| e.facility.clone()).collect();
    let mut excluded: Vec<String> = declined.to_vec();
    excluded.extend(also_exclude.iter().cloned());
    suggest_centres(
        &sender.facility,
        responsible,
        r.patient_kind,
        &r.details.needs,
        &excluded,
        &facilities,
    )
    .into_iter()
    .filter_map(|f| dir.iter().find(|e| e.facility.id == f.id))
    .map(brief)
    .collect()
}

// ------------------------------------------------------------------ opening

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
fn prefill(
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

/// A log entry written by the service itself (escalation, undelivered interface messages).
fn system_event(
    l: &Referral,
    at: NaiveDateTime,
    kind: &str,
    detail: String,
    notify: Option<String>,
    escalation_level: Option<i32>,
) -> EventRow {
    EventRow {
        id: new_id(),
        referral_id: l.id.clone(),
        at,
        kind: kind.to_string(),
        from_state: l.state.as_str().into(),
        to_state: l.state.as_str().into(),
        step_no: l.step_no,
        actor_name: "system".into(),
        actor_display: "系统".into(),
        facility_id: None,
        detail,
        notify_facility_id: notify,
        escalation_level,
    }
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

/// Typed details win over the prefilled ones; empty typed fields keep what the record knew.
fn merge_details(known: Details, typed: Details) -> Details {
    Details {
        risk_colour: typed.risk_colour.or(known.risk_colour),
        gestational_weeks: typed.gestational_weeks.or(known.gestational_weeks),
        gestational_days: typed.gestational_days.or(known.gestational_days),
        days_postpartum: typed.days_postpartum.or(known.days_postpartum),
        ..typed
    }
}

// ------------------------------------------------------------------ acting

/// Apply a command inside the caller's transaction: the state machine, the event (addressed to
/// the side that must act or be told), the access grant on acceptance, the audit row.
fn apply(
    c: &mut AnyConnection,
    actor: &Actor,
    mut r: ReferralRecord,
    cmd: Command,
    now: NaiveDateTime,
) -> Result<ReferralRecord, ServiceError> {
    let Some(party) = side(actor, &r.lifecycle) else {
        return Err(ServiceError::Conflict(
            "只有转出机构或接收中心的人员可以操作该转诊".into(),
        ));
    };
    // A new receiving centre must exist and be able to take this patient.
    let target = match &cmd {
        Command::Send { to: Some(t) } | Command::Redirect { to: t, .. } if !t.trim().is_empty() => {
            Some(centre_named(c, t)?)
        }
        _ => None,
    };
    if let Some(t) = &target {
        require_centre(t, r.patient_kind)?;
    }
    let cmd = match (cmd, &target) {
        (Command::Send { .. }, Some(t)) => Command::Send { to: Some(t.id.clone()) },
        (Command::Redirect { reason, .. }, Some(t)) => Command::Redirect {
            to: t.id.clone(),
            reason,
        },
        (cmd, _) => cmd,
    };
    let sender = r.lifecycle.from_facility_id.clone();
    let receiver_before = r.lifecycle.to_facility_id.clone();
    let t = r.lifecycle.apply(cmd, party, now, clocks()).map_err(command_error)?;
    // Who must act next or be told at once: a new receiver; otherwise the other side.
    let notify = t.new_receiver.clone().or_else(|| {
        Some(match party {
            Party::Sender => receiver_before.clone(),
            Party::Receiver => sender.clone(),
        })
    });
    if !repo::update(c, &r, now)? {
        return Err(ServiceError::Conflict("该转诊刚被他人更新，请刷新后重试".into()));
    }
    r.version += 1;
    r.updated_at = now;
    repo::add_event(
        c,
        &actor_event(
            &r,
            actor,
            now,
            t.verb.as_str(),
            (t.from, t.to),
            t.detail.clone(),
            notify,
        ),
    )?;
    crate::hl7::outbox::referral_changed(c, &r, t.verb, now)?;
    match t.verb {
        // Access follows the patient (issue 4 §6): the accepting centre may care for her — also
        // when she arrived before anyone pressed "accept".
        Verb::Accept => grant_access(c, actor, &r, now)?,
        Verb::Arrive if !matches!(t.from, State::Accepted | State::Departed) => grant_access(c, actor, &r, now)?,
        // A cancelled transfer never reaches the centre: its access ends now.
        Verb::Cancel => crate::auth::repo::end_grants_for_referral(c, &r.lifecycle.id, now)?,
        _ => {}
    }
    record(
        c,
        actor,
        "update",
        referral_target(&r),
        &format!("referral {} → {}", t.verb.as_str(), t.to.as_str()),
    )?;
    Ok(r)
}

/// A log entry for something an actor did to a referral.
fn actor_event(
    r: &ReferralRecord,
    actor: &Actor,
    now: NaiveDateTime,
    kind: &str,
    (from, to): (State, State),
    detail: String,
    notify: Option<String>,
) -> EventRow {
    EventRow {
        id: new_id(),
        referral_id: r.lifecycle.id.clone(),
        at: now,
        kind: kind.to_string(),
        from_state: from.as_str().into(),
        to_state: to.as_str().into(),
        step_no: r.lifecycle.step_no,
        actor_name: actor.name.clone(),
        actor_display: actor.display_name.clone(),
        facility_id: Some(actor.facility.id.clone()),
        detail,
        notify_facility_id: notify,
        escalation_level: None,
    }
}

/// The receiving centre's staff may read and care for her record for the configured days.
fn grant_access(
    c: &mut AnyConnection,
    actor: &Actor,
    r: &ReferralRecord,
    now: NaiveDateTime,
) -> Result<(), ServiceError> {
    crate::auth::repo::insert_grant(
        c,
        &crate::auth::repo::Grant {
            id: &new_id(),
            facility_id: &r.lifecycle.to_facility_id,
            person_id: &r.person_id,
            pregnancy_id: r.pregnancy_id.as_deref(),
            referral_id: Some(&r.lifecycle.id),
            granted_at: now,
            expires_at: now + Duration::days(grant_days()),
        },
    )?;
    record(
        c,
        actor,
        "grant",
        referral_target(r),
        &format!("record access for the receiving centre for {} days", grant_days()),
    )
}

/// The body of `POST /api/referrals/{id}/{action}` (fields the action needs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionInput {
    pub reason: Option<String>,
    pub to_facility: Option<String>,
    pub received_by: Option<String>,
    pub note: Option<String>,
    pub diagnosis: Option<String>,
    pub treatment: Option<String>,
    pub outcome: Option<String>,
    pub signed_by: Option<String>,
    /// Optimistic locking: the version the user saw (pages send it; stale → 409).
    pub version: Option<i32>,
}

impl ActionInput {
    pub fn command(self, verb: Verb) -> Result<Command, ServiceError> {
        let s = |o: Option<String>| o.unwrap_or_default();
        Ok(match verb {
            Verb::Send => Command::Send { to: self.to_facility },
            Verb::Acknowledge => Command::Acknowledge,
            Verb::Accept => Command::Accept,
            Verb::Reject => Command::Reject { reason: s(self.reason) },
            Verb::Redirect => {
                let to = s(self.to_facility);
                if to.trim().is_empty() {
                    return Err(ServiceError::invalid("to_facility", "required", "请选择改转的接收中心"));
                }
                Command::Redirect {
                    to,
                    reason: s(self.reason),
                }
            }
            Verb::Depart => Command::Depart,
            Verb::Arrive => Command::Arrive(Handover {
                received_by: s(self.received_by),
                note: s(self.note),
            }),
            Verb::Feedback => {
                let outcome = self
                    .outcome
                    .as_deref()
                    .map(str::trim)
                    .and_then(Outcome::parse)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "outcome",
                            "choice",
                            "转归须为 survived、died、in_treatment 或 referred_down",
                        )
                    })?;
                Command::Feedback(Feedback {
                    diagnosis: s(self.diagnosis),
                    treatment: s(self.treatment),
                    outcome,
                    note: s(self.note),
                    signed_by: s(self.signed_by),
                })
            }
            Verb::Close => Command::Close,
            Verb::Cancel => Command::Cancel { reason: s(self.reason) },
        })
    }
}

/// Do `verb` to a referral: refused with 409 and the reason when the state or the actor's side
/// does not allow it.
pub async fn act(
    db: &Db,
    actor: &Actor,
    id: String,
    verb: Verb,
    input: ActionInput,
) -> Result<ReferralView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let now = now_utc();
        let r = act_in(c, &actor2, &id, verb, input, now)?;
        build_view(c, &actor2, r, now)
    })
    .await
}

/// [`act`] inside the caller's transaction (the HL7 interface's RRI^I12).
pub fn act_in(
    c: &mut AnyConnection,
    actor: &Actor,
    id: &str,
    verb: Verb,
    input: ActionInput,
    now: NaiveDateTime,
) -> Result<ReferralRecord, ServiceError> {
    let seen_version = input.version;
    let cmd = input.command(verb)?;
    let r = load_visible(c, actor, id)?;
    if !actor.may(Action::Refer) {
        return Err(ServiceError::forbidden(referral_target(&r)));
    }
    if seen_version.is_some_and(|v| v != r.version) {
        return Err(ServiceError::Conflict(
            "该转诊已被他人更新，请查看最新状态后再操作".into(),
        ));
    }
    apply(c, actor, r, cmd, now)
}

/// The sender adds or corrects details while the transfer is under way (before arrival).
pub async fn update_details(
    db: &Db,
    actor: &Actor,
    id: String,
    details: Details,
) -> Result<ReferralView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let now = now_utc();
        let r = update_details_in(c, &actor2, &id, details, now)?;
        build_view(c, &actor2, r, now)
    })
    .await
}

/// [`update_details`] inside the caller's transaction (a hospital's updated REF^I12).
pub fn update_details_in(
    c: &mut AnyConnection,
    actor: &Actor,
    id: &str,
    details: Details,
    now: NaiveDateTime,
) -> Result<ReferralRecord, ServiceError> {
    let mut r = load(c, id)?;
    if !actor.may(Action::Refer) || side(actor, &r.lifecycle) != Some(Party::Sender) {
        return Err(ServiceError::forbidden(referral_target(&r)));
    }
    if !r.lifecycle.state.is_open() || r.lifecycle.arrived_at.is_some() {
        return Err(ServiceError::Conflict(
            "患者已到达或转诊已结束，转出信息不能再修改".into(),
        ));
    }
    let called_at = details.called_at.or(r.details.called_at);
    r.details = Details { called_at, ..details }
        .validate(r.patient_kind)
        .map_err(ServiceError::Invalid)?;
    if !repo::update(c, &r, now)? {
        return Err(ServiceError::Conflict("该转诊刚被他人更新，请刷新后重试".into()));
    }
    r.version += 1;
    r.updated_at = now;
    let state = r.lifecycle.state;
    let notify = Some(r.lifecycle.to_facility_id.clone());
    repo::add_event(
        c,
        &actor_event(&r, actor, now, "details", (state, state), String::new(), notify),
    )?;
    // Outbound HL7: a details update goes out as a REF^I12 with the current state (as a send).
    crate::hl7::outbox::referral_changed(c, &r, Verb::Send, now)?;
    record(c, actor, "update", referral_target(&r), "referral details")?;
    Ok(r)
}

/// One referral with its clock and timeline (audited read).
pub async fn view(db: &Db, actor: &Actor, id: String) -> Result<ReferralView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        let r = load_visible(c, actor, &id)?;
        record(c, actor, "read", referral_target(&r), "referral")?;
        build_view(c, actor, r, now_utc())
    })
    .await
}

// ------------------------------------------------------------------ lists and the board

/// One row of a referral list or the board.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralRow {
    pub id: String,
    pub person_id: String,
    pub person_name: String,
    pub age: i32,
    pub kind_label: &'static str,
    pub urgency: Urgency,
    pub urgency_label: &'static str,
    pub state: State,
    pub state_label: &'static str,
    pub reason: String,
    pub risk_colour: Option<String>,
    pub risk_colour_label: Option<&'static str>,
    pub from_facility: String,
    pub to_facility: String,
    pub my_side: Option<Party>,
    pub clock: Option<ClockView>,
    pub allowed: Vec<Verb>,
    pub version: i32,
    pub created_at: NaiveDateTime,
    /// An emergency waiting for my facility to acknowledge it: the board sounds an alert.
    pub alert: bool,
}

fn rows(
    c: &mut AnyConnection,
    actor: &Actor,
    list: Vec<ReferralRecord>,
    now: NaiveDateTime,
) -> Result<Vec<ReferralRow>, ServiceError> {
    let dir = crate::facility::repo::directory(c)?;
    let ids: Vec<String> = list.iter().map(|r| r.person_id.clone()).collect();
    let persons = crate::identity::repo::by_ids(c, &ids)?;
    let today = today_china();
    Ok(list
        .into_iter()
        .filter_map(|r| {
            let person = persons.iter().find(|p| p.id == r.person_id)?;
            let l = &r.lifecycle;
            let my_side = side(actor, l);
            let allowed = match my_side {
                Some(p) if actor.may(Action::Refer) => [Verb::Acknowledge, Verb::Accept, Verb::Depart]
                    .into_iter()
                    .filter(|v| model::transition(l.state, *v, p).is_ok())
                    .collect(),
                _ => Vec::new(),
            };
            Some(ReferralRow {
                id: l.id.clone(),
                person_id: r.person_id.clone(),
                person_name: person.name.clone(),
                age: person.age_on(today),
                kind_label: r.patient_kind.label_zh(),
                urgency: l.urgency,
                urgency_label: l.urgency.label_zh(),
                state: l.state,
                state_label: l.state.label_zh(),
                reason: r.reason.clone(),
                risk_colour: r.details.risk_colour.clone(),
                risk_colour_label: r.details.risk_colour.as_deref().map(model::risk_colour_label),
                from_facility: brief_of(&dir, &l.from_facility_id).name,
                to_facility: brief_of(&dir, &l.to_facility_id).name,
                // An emergency waiting for me: a new one for the centre, a rejected one for the
                // sender (who must find the next centre within minutes).
                alert: l.urgency == Urgency::Emergency
                    && match my_side {
                        Some(Party::Receiver) => matches!(l.state, State::Sent | State::Redirected),
                        Some(Party::Sender) => l.state == State::Rejected,
                        None => false,
                    },
                my_side,
                clock: clock_of(l, now),
                allowed,
                version: r.version,
                created_at: l.created_at,
            })
        })
        .collect())
}

fn audit_rows(c: &mut AnyConnection, actor: &Actor, rows: &[ReferralRow], detail: &str) -> Result<(), ServiceError> {
    let targets = rows
        .iter()
        .map(|r| AuditTarget {
            entity_type: "referral",
            entity_id: Some(r.id.clone()),
            person_id: Some(r.person_id.clone()),
        })
        .collect();
    record_many(c, actor, "read", targets, detail)
}

fn listing(
    c: &mut AnyConnection,
    actor: &Actor,
    open_only: bool,
    limit: i64,
) -> Result<Vec<ReferralRecord>, ServiceError> {
    if !(actor.may(Action::ReadRecord) || actor.may(Action::Refer)) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "referral",
            ..AuditTarget::default()
        }));
    }
    let (township, prefix) = actor.scope.filters();
    let mut list = repo::concerning(c, &actor.facility.id, township, prefix, open_only, limit)?;
    // Late referrals escalated to my facility are mine to follow too.
    for r in repo::escalated_to(c, &actor.facility.id)? {
        if !list.iter().any(|x| x.lifecycle.id == r.lifecycle.id) {
            list.push(r);
        }
    }
    // A draft has not been sent: only its own facility sees it.
    Ok(list
        .into_iter()
        .filter(|r| r.lifecycle.state != State::Draft || r.lifecycle.from_facility_id == actor.facility.id)
        .collect())
}

/// `/referrals`: my facility's referrals (sent and received) and my area's, newest first.
pub async fn list(db: &Db, actor: &Actor) -> Result<Vec<ReferralRow>, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let now = now_utc();
        let list = listing(c, &actor2, false, 200)?;
        let rows = rows(c, &actor2, list, now)?;
        audit_rows(c, &actor2, &rows, "referral list")?;
        Ok(rows)
    })
    .await
}

/// What my facility was told (escalations to it, new referrals, answers) in the last day.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub referral_id: String,
    pub at: NaiveDateTime,
    pub label: String,
    pub detail: String,
    pub escalated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub rows: Vec<ReferralRow>,
    pub notices: Vec<Notice>,
    pub open: usize,
    pub late: usize,
    pub emergencies: usize,
    /// The log position the board was built at (the live stream re-renders when it moves).
    pub version: Option<String>,
    pub generated_at: NaiveDateTime,
}

/// The coordinators' board: all open referrals of my facility and area, most urgent and most
/// late first, with the clock of the current step and what I can do now.
pub async fn board(db: &Db, actor: &Actor) -> Result<Board, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let board = board_in(c, &actor2, now_utc())?;
        audit_rows(c, &actor2, &board.rows, "referral board")?;
        Ok(board)
    })
    .await
}

/// The board as it is now, not yet shown to anyone (no audit row): the live stream builds it to
/// see whether anything the actor would see changed, and audits with [`audit_board`] only what
/// it then pushes.
pub async fn board_snapshot(db: &Db, actor: &Actor) -> Result<Board, ServiceError> {
    let actor = actor.clone();
    db.read(move |c| board_in(c, &actor, now_utc())).await
}

/// Audit the rows of a board about to be pushed to the actor.
pub async fn audit_board(db: &Db, actor: &Actor, board: &Board) -> Result<(), ServiceError> {
    let actor2 = actor.clone();
    let rows = board.rows.clone();
    db.write(move |c| audit_rows(c, &actor2, &rows, "referral board (live)"))
        .await
}

fn board_in(c: &mut AnyConnection, actor: &Actor, now: NaiveDateTime) -> Result<Board, ServiceError> {
    let version = repo::latest_event_id(c)?;
    let list = listing(c, actor, true, 500)?;
    let mut rows = rows(c, actor, list, now)?;
    // Most urgent first, then most late (the furthest past its limit), then the oldest.
    rows.sort_by_key(|r| {
        (
            r.urgency,
            std::cmp::Reverse(r.clock.as_ref().map_or(i64::MIN, |k| k.late_minutes)),
            r.created_at,
        )
    });
    let dir = crate::facility::repo::directory(c)?;
    let notices = repo::notifications(c, &actor.facility.id, now - Duration::hours(24), 50)?
        .iter()
        .filter(|e| e.facility_id.as_deref() != Some(actor.facility.id.as_str()))
        .map(|e| {
            let v = event_view(e, &dir);
            Notice {
                referral_id: e.referral_id.clone(),
                at: e.at,
                label: v.label,
                detail: if e.detail.is_empty() {
                    format!("{} · {}", v.facility, v.to_label)
                } else {
                    e.detail.clone()
                },
                escalated: e.kind == "escalated",
            }
        })
        .collect();
    Ok(Board {
        open: rows.len(),
        late: rows.iter().filter(|r| r.clock.as_ref().is_some_and(|k| k.late)).count(),
        emergencies: rows.iter().filter(|r| r.urgency == Urgency::Emergency).count(),
        rows,
        notices,
        version,
        generated_at: now,
    })
}

/// The board's change marker (no patient data): the newest log entry.
pub async fn board_version(db: &Db) -> Result<Option<String>, ServiceError> {
    db.read(|c| Ok(repo::latest_event_id(c)?)).await
}

/// A person's referrals, for her pregnancy page (inside the caller's audited read).
pub fn for_person(c: &mut AnyConnection, person_id: &str) -> Result<Vec<ReferralSummary>, ServiceError> {
    Ok(repo::for_person(c, person_id)?
        .into_iter()
        .map(|r| ReferralSummary {
            id: r.lifecycle.id.clone(),
            urgency_label: r.lifecycle.urgency.label_zh(),
            state_label: r.lifecycle.state.label_zh(),
            reason: r.reason,
            created_at: r.lifecycle.created_at,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferralSummary {
    pub id: String,
    pub urgency_label: &'static str,
    pub state_label: &'static str,
    pub reason: String,
    pub created_at: NaiveDateTime,
}

// ------------------------------------------------------------------ escalation timer

/// Escalate every late step that has not yet reached its level at `now` (injected: tests move the
/// clock instead of sleeping). Each level fires once, whichever instance gets there first.
pub async fn escalate_late(db: &Db, now: NaiveDateTime) -> Result<usize, ServiceError> {
    db.write(move |c| {
        let due = repo::due(c, now, model::MAX_ESCALATION)?;
        if due.is_empty() {
            return Ok(0);
        }
        let dir = crate::facility::repo::all(c)?;
        let mut fired = 0;
        for r in due {
            // Each referral in its own savepoint: one that fails is retried next tick, the others
            // still escalate now.
            match crate::storage::savepoint(c, |sp| escalate_one(sp, &r, &dir, now)) {
                Ok(n) => fired += n,
                Err(e) => {
                    tracing::warn!(referral = %r.lifecycle.id, error = %e, "escalation failed; retried next tick")
                }
            }
        }
        Ok(fired)
    })
    .await
}

fn escalate_one(
    c: &mut AnyConnection,
    r: &ReferralRecord,
    dir: &[Facility],
    now: NaiveDateTime,
) -> Result<usize, ServiceError> {
    let mut fired = 0;
    let l = &r.lifecycle;
    let (Some(step), Some(due_at)) = (l.step(), l.step_due_at) else {
        return Ok(0);
    };
    let limit = clocks().limit(l.urgency, step);
    let level = model::escalation_level(due_at, limit, now);
    if level <= l.escalation_level {
        return Ok(0);
    }
    if !repo::raise_escalation(c, &l.id, l.step_no, l.escalation_level, level)? {
        return Ok(0);
    }
    let responsible_id = match step.party() {
        Party::Sender => &l.from_facility_id,
        Party::Receiver => &l.to_facility_id,
    };
    let Some(responsible) = dir.iter().find(|f| &f.id == responsible_id) else {
        return Ok(0);
    };
    let rungs = model::ladder(responsible, dir);
    let late = (now - due_at).num_minutes();
    for lvl in (l.escalation_level + 1)..=level {
        let rung = rungs.get((lvl - 1) as usize).copied().flatten();
        let detail = format!(
            "「{}」超过时限 {} 分钟（{}，限 {} 分钟）{}",
            step.label_zh(),
            late,
            l.urgency.label_zh(),
            limit.num_minutes(),
            rung.map(|f| format!("，已通知 {}", f.name)).unwrap_or_default()
        );
        repo::add_event(
            c,
            &system_event(
                l,
                now,
                "escalated",
                detail.clone(),
                rung.map(|f| f.id.clone()),
                Some(lvl),
            ),
        )?;
        record_system(c, "escalate", referral_target(r), &format!("level {lvl}: {detail}"))?;
        fired += 1;
    }
    Ok(fired)
}

// ------------------------------------------------------------------ measures

#[derive(Debug, Clone, Serialize)]
pub struct CentreMeasures {
    #[serde(flatten)]
    pub m: model::CentreMonth,
    pub facility_name: String,
}

/// Per centre and month: received, accepted, rejected, median / 90th-percentile times, feedback
/// completeness (issue 4 §8). Aggregates only; centres within the actor's area.
pub async fn measures(db: &Db, actor: &Actor, month: NaiveDate) -> Result<Vec<CentreMeasures>, ServiceError> {
    let actor = actor.clone();
    db.read(move |c| {
        if !(actor.may(Action::Refer) || actor.may(Action::ReadRecord) || actor.may(Action::Administer)) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "referral_measures",
                ..AuditTarget::default()
            }));
        }
        let start = month.with_day0(0).unwrap_or(month);
        let next = start
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(start + Duration::days(31));
        // The month in China time, as stored UTC.
        let from = start.and_time(chrono::NaiveTime::MIN) - Duration::hours(8);
        let to = next.and_time(chrono::NaiveTime::MIN) - Duration::hours(8);
        let events = repo::logged_events(c, from, to)?;
        let dir = crate::facility::repo::all(c)?;
        let month_key = start.format("%Y-%m").to_string();
        // Aggregates are not patient data: a township sees its county's centres.
        let area = match &actor.scope {
            crate::auth::model::Scope::Township(_) => actor.facility.jurisdiction.as_str(),
            crate::auth::model::Scope::Area(p) => p.as_str(),
        };
        Ok(model::centre_measures(&events)
            .into_iter()
            .filter(|m| m.month == month_key)
            .filter_map(|m| {
                let f = dir.iter().find(|f| f.id == m.facility_id)?;
                (actor.may(Action::Administer) || f.jurisdiction.starts_with(area)).then(|| CentreMeasures {
                    facility_name: f.name.clone(),
                    m,
                })
            })
            .collect())
    })
    .await
}

// ------------------------------------------------------------------ printed QR codes

type HmacSha256 = Hmac<Sha256>;

fn signing_key(c: &mut AnyConnection) -> Result<String, ServiceError> {
    use rand::RngCore;
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    Ok(repo::secret(c, "referral_qr", &hex::encode(fresh), now_utc())?)
}

fn sign(key: &str, payload: &str) -> Result<String, ServiceError> {
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).map_err(|_| ServiceError::Conflict("签名密钥无效".into()))?;
    mac.update(payload.as_bytes());
    Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
}

/// A token for the printed form's QR code: the referral id, an expiry, an HMAC over both.
pub fn qr_token(c: &mut AnyConnection, referral_id: &str, now: NaiveDateTime) -> Result<String, ServiceError> {
    let expires = (now + Duration::days(QR_VALID_DAYS)).and_utc().timestamp();
    let payload = format!("{referral_id}.{expires}");
    let sig = sign(&signing_key(c)?, &payload)?;
    Ok(format!("{payload}.{sig}"))
}

/// Check a scanned token; the referral it names (the actor must still be allowed to see it).
pub async fn scan(db: &Db, actor: &Actor, token: String) -> Result<String, ServiceError> {
    let bad = || ServiceError::NotFound("二维码无效或已过期");
    let parts: Vec<&str> = token.split('.').collect();
    let [id, expires, sig] = parts.as_slice() else {
        return Err(bad());
    };
    if !crate::ids::is_id(id) || sig.len() != 32 {
        return Err(bad());
    }
    let expires: i64 = expires.parse().map_err(|_| bad())?;
    if expires < now_utc().and_utc().timestamp() {
        return Err(bad());
    }
    let (id, payload, sig) = (id.to_string(), format!("{id}.{expires}"), sig.to_string());
    let key = db.write(signing_key).await?;
    let expected = sign(&key, &payload)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sig.as_bytes())) {
        return Err(bad());
    }
    // Opening the referral checks access and audits the read.
    view(db, actor, id.clone()).await?;
    Ok(id)
}

/// The printable 转诊单 / 回执: the referral and a QR code (SVG) that opens it.
#[derive(Debug, Clone, Serialize)]
pub struct Printout {
    pub referral: ReferralView,
    pub qr_svg: String,
    pub scan_path: String,
    pub printed_at: NaiveDateTime,
}

pub async fn printout(db: &Db, actor: &Actor, id: String, base_url: String) -> Result<Printout, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        let r = load_visible(c, actor, &id)?;
        let now = now_utc();
        let token = qr_token(c, &r.lifecycle.id, now)?;
        let scan_path = format!("/referrals/scan/{token}");
        let qr = qrcode::QrCode::with_error_correction_level(
            format!("{base_url}{scan_path}").as_bytes(),
            qrcode::EcLevel::M,
        )
        .map_err(|_| ServiceError::Conflict("二维码生成失败".into()))?;
        let qr_svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(160, 160)
            .quiet_zone(true)
            .build();
        record(c, actor, "print", referral_target(&r), "referral printout")?;
        Ok(Printout {
            referral: build_view(c, actor, r, now)?,
            qr_svg,
            scan_path,
            printed_at: now,
        })
    })
    .await
}

// ------------------------------------------------------------------ interface reads (FHIR)
// ServiceRequest and Task: visible exactly as on the referral pages ([`may_view`]); inside the
// caller's transaction, each returned referral audited there.

/// Whether the actor may see a loaded referral (the pages' rule).
fn visible(c: &mut AnyConnection, actor: &Actor, r: &ReferralRecord) -> Result<bool, ServiceError> {
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
