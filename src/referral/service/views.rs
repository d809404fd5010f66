//! A referral as its pages and the JSON API show it: facilities, the running clock, the timeline,
//! what the asking actor may do, where the patient could go next.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::auth::model::{Action, Actor};
use crate::error::ServiceError;
use crate::facility::model::{DirectoryEntry, Facility};
use crate::identity::service::PersonSummary;
use crate::ids::today_china;
use crate::referral::model::{
    self, Intervals, Party, PatientKind, Referral, ReferralRecord, State, Step, Verb, clocks, suggest_centres,
};
use crate::referral::repo::{self, EventRow};
use crate::storage::AnyConnection;

use super::access::side;

#[derive(Debug, Clone, Serialize)]
pub struct FacilityBrief {
    pub id: String,
    pub code: String,
    pub name: String,
    pub level: &'static str,
    pub duty_phone: Option<String>,
}

pub(super) fn brief(e: &DirectoryEntry) -> FacilityBrief {
    FacilityBrief {
        id: e.facility.id.clone(),
        code: e.facility.code.clone(),
        name: e.facility.name.clone(),
        level: e.facility.level.label_zh(),
        duty_phone: e.duty_phone.clone(),
    }
}

pub(super) fn brief_of(dir: &[DirectoryEntry], id: &str) -> FacilityBrief {
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

pub(super) fn clock_of(r: &Referral, now: NaiveDateTime) -> Option<ClockView> {
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

pub(super) fn event_view(e: &EventRow, dir: &[DirectoryEntry]) -> EventView {
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

pub(super) fn labels(codes: &[String], items: &[model::CatalogueItem]) -> Vec<String> {
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

pub(super) fn build_view(
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

pub(super) fn suggestions_for(
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
