//! The steps of a referral (发出 → 接收 … → 回执 → 结案): one command through the state machine, its
//! timeline entry, the access grant, the event that tells the features above.

use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;

use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::ServiceError;
use crate::ids::{new_id, now_utc};
use crate::referral::model::{
    Command, Details, Feedback, Handover, Outcome, Party, Referral, ReferralRecord, State, Verb, clocks,
};
use crate::referral::repo::{self, EventRow};
use crate::storage::{AnyConnection, Db};

use super::access::{
    centre_named, command_error, grant_days, load, load_visible, referral_target, refuse_fetal_sex_in, require_centre,
    side,
};
use super::views::{ReferralView, build_view};

/// Apply a command inside the caller's transaction: the state machine, the event (addressed to
/// the side that must act or be told), the access grant on acceptance, the audit row.
pub(super) fn apply(
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
    // The features above react in this transaction (the HL7 outbox queues its messages).
    crate::referral::events::REFERRAL_CHANGED.publish(
        c,
        &crate::referral::events::ReferralChanged {
            referral: r.clone(),
            verb: t.verb,
            at: now,
        },
    )?;
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
pub(super) fn actor_event(
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
pub(super) fn grant_access(
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
    let cmd = input.clone().command(verb)?;
    let r = load_visible(c, actor, id)?;
    refuse_fetal_sex_in(None, None, Some(&input), referral_target(&r))?;
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
    refuse_fetal_sex_in(None, Some(&details), None, referral_target(&r))?;
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
    // A details update goes out again with the current state (as a send).
    crate::referral::events::REFERRAL_CHANGED.publish(
        c,
        &crate::referral::events::ReferralChanged {
            referral: r.clone(),
            verb: Verb::Send,
            at: now,
        },
    )?;
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

/// A log entry written by the service itself (escalation, undelivered interface messages).
pub(super) fn system_event(
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
