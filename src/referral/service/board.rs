//! Referral lists, the coordinators' live board, and a person's referrals.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::audit::service::{guarded, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::ids::{now_utc, today_china};
use crate::referral::model::{self, Party, ReferralRecord, State, Urgency, Verb};
use crate::referral::repo;
use crate::storage::{AnyConnection, Db};

use super::access::side;
use super::views::{ClockView, brief_of, clock_of, event_view};

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

pub(super) fn rows(
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

pub(super) fn audit_rows(
    c: &mut AnyConnection,
    actor: &Actor,
    rows: &[ReferralRow],
    detail: &str,
) -> Result<(), ServiceError> {
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

pub(super) fn listing(
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

pub(super) fn board_in(c: &mut AnyConnection, actor: &Actor, now: NaiveDateTime) -> Result<Board, ServiceError> {
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
