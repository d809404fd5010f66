//! Referral queries: referrals, their event log, the QR signing key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{Details, Feedback, Handover, LoggedEvent, PatientKind, Referral, ReferralRecord, State, Urgency};
use crate::storage::AnyConnection;
use crate::storage::schema::{app_secrets, referral_events, referrals};

#[derive(Queryable, Selectable)]
#[diesel(table_name = referrals)]
struct Row {
    id: String,
    person_id: String,
    pregnancy_id: Option<String>,
    patient_kind: String,
    jurisdiction: String,
    township_code: Option<String>,
    urgency: String,
    reason: String,
    state: String,
    from_facility_id: String,
    to_facility_id: String,
    opened_by: String,
    details: String,
    declined_by: String,
    handover: Option<String>,
    feedback: Option<String>,
    step_no: i32,
    step_started_at: NaiveDateTime,
    step_due_at: Option<NaiveDateTime>,
    escalation_level: i32,
    created_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
    acknowledged_at: Option<NaiveDateTime>,
    accepted_at: Option<NaiveDateTime>,
    departed_at: Option<NaiveDateTime>,
    arrived_at: Option<NaiveDateTime>,
    feedback_at: Option<NaiveDateTime>,
    ended_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
    version: i32,
    external_ref: Option<String>,
}

fn corrupt(what: &str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(format!("referral row: bad {what}").into())
}

impl Row {
    fn into_model(self) -> QueryResult<ReferralRecord> {
        let handover: Option<Handover> = match self.handover.as_deref() {
            Some(h) => Some(serde_json::from_str(h).map_err(|_| corrupt("handover"))?),
            None => None,
        };
        let feedback: Option<Feedback> = match self.feedback.as_deref() {
            Some(f) => Some(serde_json::from_str(f).map_err(|_| corrupt("feedback"))?),
            None => None,
        };
        Ok(ReferralRecord {
            lifecycle: Referral {
                id: self.id,
                urgency: Urgency::parse(&self.urgency).ok_or_else(|| corrupt("urgency"))?,
                state: State::parse(&self.state).ok_or_else(|| corrupt("state"))?,
                from_facility_id: self.from_facility_id,
                to_facility_id: self.to_facility_id,
                declined_by: self
                    .declined_by
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                handover,
                feedback,
                step_no: self.step_no,
                step_started_at: self.step_started_at,
                step_due_at: self.step_due_at,
                escalation_level: self.escalation_level,
                created_at: self.created_at,
                sent_at: self.sent_at,
                acknowledged_at: self.acknowledged_at,
                accepted_at: self.accepted_at,
                departed_at: self.departed_at,
                arrived_at: self.arrived_at,
                feedback_at: self.feedback_at,
                ended_at: self.ended_at,
            },
            person_id: self.person_id,
            pregnancy_id: self.pregnancy_id,
            patient_kind: PatientKind::parse(&self.patient_kind).ok_or_else(|| corrupt("patient kind"))?,
            jurisdiction: self.jurisdiction,
            township_code: self.township_code,
            reason: self.reason,
            opened_by: self.opened_by,
            details: serde_json::from_str::<Details>(&self.details).map_err(|_| corrupt("details"))?,
            version: self.version,
            updated_at: self.updated_at,
            external_ref: self.external_ref,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub fn insert(conn: &mut AnyConnection, r: &ReferralRecord) -> QueryResult<()> {
    let l = &r.lifecycle;
    diesel::insert_into(referrals::table)
        .values((
            (
                referrals::id.eq(&l.id),
                referrals::person_id.eq(&r.person_id),
                referrals::pregnancy_id.eq(&r.pregnancy_id),
                referrals::patient_kind.eq(r.patient_kind.as_str()),
                referrals::jurisdiction.eq(&r.jurisdiction),
                referrals::township_code.eq(&r.township_code),
                referrals::urgency.eq(l.urgency.as_str()),
                referrals::reason.eq(&r.reason),
                referrals::opened_by.eq(&r.opened_by),
                referrals::created_at.eq(l.created_at),
            ),
            (
                referrals::state.eq(l.state.as_str()),
                referrals::from_facility_id.eq(&l.from_facility_id),
                referrals::to_facility_id.eq(&l.to_facility_id),
                referrals::details.eq(to_json(&r.details)),
                referrals::declined_by.eq(l.declined_by.join(",")),
                referrals::step_no.eq(l.step_no),
                referrals::step_started_at.eq(l.step_started_at),
                referrals::step_due_at.eq(l.step_due_at),
                referrals::escalation_level.eq(l.escalation_level),
                referrals::updated_at.eq(r.updated_at),
                referrals::version.eq(r.version),
                referrals::external_ref.eq(&r.external_ref),
            ),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Write back a changed referral if nobody changed it since it was read (`version`); the new
/// version is `r.version + 1`. Returns false when another writer got there first.
pub fn update(conn: &mut AnyConnection, r: &ReferralRecord, now: NaiveDateTime) -> QueryResult<bool> {
    let l = &r.lifecycle;
    let n = diesel::update(
        referrals::table
            .filter(referrals::id.eq(&l.id))
            .filter(referrals::version.eq(r.version)),
    )
    .set((
        (
            referrals::urgency.eq(l.urgency.as_str()),
            referrals::reason.eq(&r.reason),
            referrals::state.eq(l.state.as_str()),
            referrals::to_facility_id.eq(&l.to_facility_id),
            referrals::details.eq(to_json(&r.details)),
            referrals::declined_by.eq(l.declined_by.join(",")),
            referrals::handover.eq(l.handover.as_ref().map(to_json)),
            referrals::feedback.eq(l.feedback.as_ref().map(to_json)),
            referrals::step_no.eq(l.step_no),
            referrals::step_started_at.eq(l.step_started_at),
            referrals::step_due_at.eq(l.step_due_at),
        ),
        (
            referrals::escalation_level.eq(l.escalation_level),
            referrals::sent_at.eq(l.sent_at),
            referrals::acknowledged_at.eq(l.acknowledged_at),
            referrals::accepted_at.eq(l.accepted_at),
            referrals::departed_at.eq(l.departed_at),
            referrals::arrived_at.eq(l.arrived_at),
            referrals::feedback_at.eq(l.feedback_at),
            referrals::ended_at.eq(l.ended_at),
            referrals::updated_at.eq(now),
            referrals::version.eq(r.version + 1),
        ),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReferralRecord>> {
    referrals::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(Row::into_model)
        .transpose()
}

/// Referrals an actor's facility or area is concerned with: sent by or to the facility, or for a
/// patient managed in the area (township code or GB/T 2260 prefix), newest first.
pub fn concerning(
    conn: &mut AnyConnection,
    facility_id: &str,
    township: Option<&str>,
    prefix: Option<&str>,
    open_only: bool,
    limit: i64,
) -> QueryResult<Vec<ReferralRecord>> {
    let mut q = referrals::table.select(Row::as_select()).into_boxed();
    let mine = referrals::from_facility_id
        .eq(facility_id.to_string())
        .or(referrals::to_facility_id.eq(facility_id.to_string()));
    q = match (township, prefix) {
        (Some(t), _) => q.filter(mine.or(referrals::township_code.eq(t.to_string()))),
        (None, Some(p)) => q.filter(mine.or(referrals::jurisdiction.like(format!("{p}%")))),
        (None, None) => q.filter(mine),
    };
    if open_only {
        q = q.filter(referrals::state.ne_all(["closed", "cancelled"]));
    }
    q.order(referrals::created_at.desc())
        .limit(limit)
        .load(conn)?
        .into_iter()
        .map(Row::into_model)
        .collect()
}

/// The referral a hospital opened under its own identifier (`app|facility|id`).
pub fn by_external_ref(conn: &mut AnyConnection, external_ref: &str) -> QueryResult<Option<ReferralRecord>> {
    referrals::table
        .filter(referrals::external_ref.eq(external_ref))
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(Row::into_model)
        .transpose()
}

/// Open referrals a late step was escalated to this facility for (the ladder's rungs follow them
/// on their board even outside their own area).
pub fn escalated_to(conn: &mut AnyConnection, facility_id: &str) -> QueryResult<Vec<ReferralRecord>> {
    let ids: Vec<String> = referral_events::table
        .filter(referral_events::kind.eq("escalated"))
        .filter(referral_events::notify_facility_id.eq(facility_id))
        .select(referral_events::referral_id)
        .distinct()
        .load(conn)?;
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        for row in referrals::table
            .filter(referrals::id.eq_any(chunk))
            .filter(referrals::state.ne_all(["closed", "cancelled"]))
            .select(Row::as_select())
            .load(conn)?
        {
            out.push(row.into_model()?);
        }
    }
    Ok(out)
}

/// The person's referrals, newest first.
pub fn for_person(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Vec<ReferralRecord>> {
    referrals::table
        .filter(referrals::person_id.eq(person_id))
        .select(Row::as_select())
        .order(referrals::created_at.desc())
        .load(conn)?
        .into_iter()
        .map(Row::into_model)
        .collect()
}

/// Open referrals whose current step is due, for the escalation timer.
pub fn due(conn: &mut AnyConnection, now: NaiveDateTime, max_level: i32) -> QueryResult<Vec<ReferralRecord>> {
    referrals::table
        .filter(referrals::step_due_at.le(now))
        .filter(referrals::escalation_level.lt(max_level))
        .filter(referrals::state.ne_all(["closed", "cancelled", "draft", "feedback_returned"]))
        .select(Row::as_select())
        .order(referrals::step_due_at)
        .load(conn)?
        .into_iter()
        .map(Row::into_model)
        .collect()
}

/// Raise a referral's escalation level, once: only the writer that still sees the level and
/// step it read gets a row (two instances racing on one database: the second updates nothing).
pub fn raise_escalation(
    conn: &mut AnyConnection,
    id: &str,
    step_no: i32,
    from_level: i32,
    to_level: i32,
) -> QueryResult<bool> {
    let n = diesel::update(
        referrals::table
            .filter(referrals::id.eq(id))
            .filter(referrals::step_no.eq(step_no))
            .filter(referrals::escalation_level.eq(from_level)),
    )
    .set(referrals::escalation_level.eq(to_level))
    .execute(conn)?;
    Ok(n == 1)
}

/// One event of a referral's log.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = referral_events)]
pub struct EventRow {
    pub id: String,
    pub referral_id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub from_state: String,
    pub to_state: String,
    pub step_no: i32,
    pub actor_name: String,
    pub actor_display: String,
    pub facility_id: Option<String>,
    pub detail: String,
    pub notify_facility_id: Option<String>,
    pub escalation_level: Option<i32>,
}

pub fn add_event(conn: &mut AnyConnection, e: &EventRow) -> QueryResult<()> {
    diesel::insert_into(referral_events::table)
        .values((
            referral_events::id.eq(&e.id),
            referral_events::referral_id.eq(&e.referral_id),
            referral_events::at.eq(e.at),
            referral_events::kind.eq(&e.kind),
            referral_events::from_state.eq(&e.from_state),
            referral_events::to_state.eq(&e.to_state),
            referral_events::step_no.eq(e.step_no),
            referral_events::actor_name.eq(&e.actor_name),
            referral_events::actor_display.eq(&e.actor_display),
            referral_events::facility_id.eq(&e.facility_id),
            referral_events::detail.eq(&e.detail),
            referral_events::notify_facility_id.eq(&e.notify_facility_id),
            referral_events::escalation_level.eq(e.escalation_level),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn events(conn: &mut AnyConnection, referral_id: &str) -> QueryResult<Vec<EventRow>> {
    referral_events::table
        .filter(referral_events::referral_id.eq(referral_id))
        .select(EventRow::as_select())
        .order((referral_events::at, referral_events::id))
        .load(conn)
}

/// Events addressed to a facility (escalations, new referrals) since a time, newest first.
pub fn notifications(
    conn: &mut AnyConnection,
    facility_id: &str,
    since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    referral_events::table
        .filter(referral_events::notify_facility_id.eq(facility_id))
        .filter(referral_events::at.ge(since))
        .select(EventRow::as_select())
        .order(referral_events::at.desc())
        .limit(limit)
        .load(conn)
}

/// The newest event id (UUID v7, time-ordered): the live board re-renders when it changes.
pub fn latest_event_id(conn: &mut AnyConnection) -> QueryResult<Option<String>> {
    referral_events::table
        .select(diesel::dsl::max(referral_events::id))
        .first(conn)
}

/// referral, time, kind, acting facility, addressed facility.
type LogRow = (String, NaiveDateTime, String, Option<String>, Option<String>);

/// The log of the referrals routed in a period, as the measures read it.
pub fn logged_events(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<LoggedEvent>> {
    let ids: Vec<String> = referral_events::table
        .filter(referral_events::kind.eq_any(["send", "redirect"]))
        .filter(referral_events::at.ge(from))
        .filter(referral_events::at.lt(to))
        .select(referral_events::referral_id)
        .distinct()
        .load(conn)?;
    let mut rows: Vec<LogRow> = Vec::new();
    for chunk in ids.chunks(500) {
        rows.extend(
            referral_events::table
                .filter(referral_events::referral_id.eq_any(chunk))
                .select((
                    referral_events::referral_id,
                    referral_events::at,
                    referral_events::kind,
                    referral_events::facility_id,
                    referral_events::notify_facility_id,
                ))
                .load::<LogRow>(conn)?,
        );
    }
    Ok(rows
        .into_iter()
        .map(|(referral_id, at, kind, facility_id, notify_facility_id)| LoggedEvent {
            referral_id,
            at,
            kind,
            facility_id,
            notify_facility_id,
        })
        .collect())
}

/// A named secret (the QR signing key), created on first use; the first writer wins so every
/// instance on one database signs with the same key.
pub fn secret(conn: &mut AnyConnection, name: &str, fresh: &str, now: NaiveDateTime) -> QueryResult<String> {
    if let Some(v) = app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first::<String>(conn)
        .optional()?
    {
        return Ok(v);
    }
    let inserted = crate::storage::savepoint(conn, |c| {
        diesel::insert_into(app_secrets::table)
            .values((
                app_secrets::name.eq(name),
                app_secrets::value.eq(fresh),
                app_secrets::created_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(fresh.to_string()),
        Err(_) => app_secrets::table.find(name).select(app_secrets::value).first(conn),
    }
}

/// Referrals a late step was ever escalated to this facility for (open or not).
pub fn escalated_ids(conn: &mut AnyConnection, facility_id: &str) -> QueryResult<Vec<String>> {
    referral_events::table
        .filter(referral_events::kind.eq("escalated"))
        .filter(referral_events::notify_facility_id.eq(facility_id))
        .select(referral_events::referral_id)
        .distinct()
        .load(conn)
}

/// Who may see which referrals, as query terms (the referral pages' rule, `service::may_view`):
/// the two sides; a patient in the area; a centre a late step was escalated to; a coordinator's
/// area's receiving centres — and a draft only by the facility writing it.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    pub facility_id: String,
    pub scope: Option<crate::auth::model::Scope>,
    pub escalated_ids: Vec<String>,
    pub receiving_facilities: Vec<String>,
}

/// What an interface search for referrals asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    pub ids: Option<Vec<String>>,
    pub person_id: Option<String>,
    pub states: Option<Vec<&'static str>>,
    pub updated: crate::ids::TimeRange,
    pub from_facility_id: Option<String>,
    pub to_facility_id: Option<String>,
    pub visible_to: Visibility,
}

/// Referrals matching a filter that the filter's viewer may see, oldest first, one page of them,
/// and how many match in all.
pub fn find(
    conn: &mut AnyConnection,
    f: &ReferralFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ReferralRecord>, i64)> {
    let v = &f.visible_to;
    let build = || {
        let mut q = referrals::table.into_boxed();
        let me = v.facility_id.clone();
        let mine = referrals::from_facility_id
            .eq(me.clone())
            .or(referrals::to_facility_id.eq(me.clone()))
            .or(referrals::id.eq_any(v.escalated_ids.clone()))
            .or(referrals::to_facility_id.eq_any(v.receiving_facilities.clone()));
        q = match v.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q.filter(mine.or(referrals::township_code.eq(t.to_string()))),
            Some((None, Some(p))) => q.filter(mine.or(referrals::jurisdiction.like(format!("{p}%")))),
            _ => q.filter(mine),
        };
        q = q.filter(referrals::state.ne("draft").or(referrals::from_facility_id.eq(me)));
        if let Some(ids) = &f.ids {
            q = q.filter(referrals::id.eq_any(ids.clone()));
        }
        if let Some(p) = &f.person_id {
            q = q.filter(referrals::person_id.eq(p.clone()));
        }
        if let Some(s) = &f.states {
            q = q.filter(referrals::state.eq_any(s.clone()));
        }
        if let Some(t) = f.updated.from {
            q = q.filter(referrals::updated_at.ge(t));
        }
        if let Some(t) = f.updated.to {
            q = q.filter(referrals::updated_at.lt(t));
        }
        if let Some(x) = &f.from_facility_id {
            q = q.filter(referrals::from_facility_id.eq(x.clone()));
        }
        if let Some(x) = &f.to_facility_id {
            q = q.filter(referrals::to_facility_id.eq(x.clone()));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((referrals::created_at.asc(), referrals::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?;
    let list = rows.into_iter().map(Row::into_model).collect::<QueryResult<Vec<_>>>()?;
    Ok((list, total))
}
