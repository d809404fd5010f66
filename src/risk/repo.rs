//! Risk queries: screenings, assessments, cases, case events and reports.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::cases::{CaseEvent, CaseRecord, CaseReport, CaseStatus, Escalation};
use super::model::{AssessmentRecord, AssessmentStatus, RiskColour, ScreeningRecord};
use crate::ids::{new_id, now_utc};
use crate::storage::AnyConnection;
use crate::storage::schema::{risk_assessments, risk_case_events, risk_case_reports, risk_cases, risk_screenings};

fn colour(s: &str) -> RiskColour {
    match s {
        "yellow" => RiskColour::Yellow,
        "orange" => RiskColour::Orange,
        "red" => RiskColour::Red,
        _ => RiskColour::Green,
    }
}

fn json_or_default<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

// ---------------------------------------------------------------- screenings

#[derive(Queryable, Selectable)]
#[diesel(table_name = risk_screenings)]
struct ScreeningRow {
    id: String,
    pregnancy_id: String,
    positive: bool,
    items: String,
    screened_by: String,
    facility_id: String,
    follow_up_due: Option<NaiveDate>,
    graded_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl From<ScreeningRow> for ScreeningRecord {
    fn from(r: ScreeningRow) -> Self {
        ScreeningRecord {
            id: r.id,
            pregnancy_id: r.pregnancy_id,
            positive: r.positive,
            items: json_or_default(&r.items),
            screened_by: r.screened_by,
            facility_id: r.facility_id,
            follow_up_due: r.follow_up_due,
            graded_at: r.graded_at,
            created_at: r.created_at,
        }
    }
}

pub struct Scope<'a> {
    pub person_id: &'a str,
    pub jurisdiction: &'a str,
    pub township_code: Option<&'a str>,
}

pub fn insert_screening(conn: &mut AnyConnection, s: &ScreeningRecord, scope: &Scope<'_>) -> QueryResult<()> {
    diesel::insert_into(risk_screenings::table)
        .values((
            risk_screenings::id.eq(&s.id),
            risk_screenings::pregnancy_id.eq(&s.pregnancy_id),
            risk_screenings::person_id.eq(scope.person_id),
            risk_screenings::positive.eq(s.positive),
            risk_screenings::items.eq(to_json(&s.items)),
            risk_screenings::screened_by.eq(&s.screened_by),
            risk_screenings::facility_id.eq(&s.facility_id),
            risk_screenings::follow_up_due.eq(s.follow_up_due),
            risk_screenings::graded_at.eq(s.graded_at),
            risk_screenings::jurisdiction.eq(scope.jurisdiction),
            risk_screenings::township_code.eq(scope.township_code),
            risk_screenings::created_at.eq(s.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn latest_screening(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Option<ScreeningRecord>> {
    Ok(risk_screenings::table
        .filter(risk_screenings::pregnancy_id.eq(pregnancy_id))
        .order(risk_screenings::created_at.desc())
        .select(ScreeningRow::as_select())
        .first(conn)
        .optional()?
        .map(ScreeningRecord::from))
}

/// Positive screenings of a pregnancy not yet followed by a confirmed grading are now graded.
pub fn mark_screenings_graded(conn: &mut AnyConnection, pregnancy_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        risk_screenings::table
            .filter(risk_screenings::pregnancy_id.eq(pregnancy_id))
            .filter(risk_screenings::positive.eq(true))
            .filter(risk_screenings::graded_at.is_null()),
    )
    .set(risk_screenings::graded_at.eq(at))
    .execute(conn)
    .map(|_| ())
}

/// Positive screenings still waiting for their grading result, the `limit` whose follow-up is due
/// soonest, and how many there are in all.
pub fn ungraded_positive_screenings(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    limit: i64,
) -> QueryResult<(Vec<ScreeningRecord>, i64)> {
    macro_rules! scoped {
        () => {{
            let mut q = risk_screenings::table
                .filter(risk_screenings::positive.eq(true))
                .filter(risk_screenings::graded_at.is_null())
                .into_boxed();
            if let Some(t) = township {
                q = q.filter(risk_screenings::township_code.eq(t.to_string()));
            }
            if let Some(p) = prefix {
                q = q.filter(risk_screenings::jurisdiction.like(format!("{p}%")));
            }
            q
        }};
    }
    let total: i64 = scoped!().count().get_result(conn)?;
    let rows = scoped!()
        .order((risk_screenings::follow_up_due.asc(), risk_screenings::id.asc()))
        .limit(limit)
        .select(ScreeningRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ScreeningRecord::from)
        .collect();
    Ok((rows, total))
}

// ---------------------------------------------------------------- assessments

#[derive(Queryable, Selectable)]
#[diesel(table_name = risk_assessments)]
struct AssessmentRow {
    id: String,
    pregnancy_id: String,
    person_id: String,
    status: String,
    colour: String,
    purple: bool,
    factors: String,
    removed: String,
    facts: String,
    rule_set: String,
    trigger: String,
    note: String,
    assessed_by: String,
    facility_id: String,
    decided_by: Option<String>,
    decided_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

impl From<AssessmentRow> for AssessmentRecord {
    fn from(r: AssessmentRow) -> Self {
        let status = AssessmentStatus::parse(&r.status).unwrap_or(AssessmentStatus::Proposed);
        let c = colour(&r.colour);
        AssessmentRecord {
            id: r.id,
            pregnancy_id: r.pregnancy_id,
            person_id: r.person_id,
            status,
            status_label: status.label_zh(),
            colour: c,
            colour_label: c.label_zh(),
            purple: r.purple,
            factors: json_or_default(&r.factors),
            removed: json_or_default(&r.removed),
            facts: json_or_default(&r.facts),
            rule_set: r.rule_set,
            trigger: r.trigger,
            note: r.note,
            assessed_by: r.assessed_by,
            facility_id: r.facility_id,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            created_at: r.created_at,
        }
    }
}

pub fn insert_assessment(conn: &mut AnyConnection, a: &AssessmentRecord, scope: &Scope<'_>) -> QueryResult<()> {
    diesel::insert_into(risk_assessments::table)
        .values((
            risk_assessments::id.eq(&a.id),
            risk_assessments::pregnancy_id.eq(&a.pregnancy_id),
            risk_assessments::person_id.eq(&a.person_id),
            risk_assessments::status.eq(a.status.as_str()),
            risk_assessments::colour.eq(a.colour.as_str()),
            risk_assessments::purple.eq(a.purple),
            risk_assessments::factors.eq(to_json(&a.factors)),
            risk_assessments::removed.eq(to_json(&a.removed)),
            risk_assessments::facts.eq(to_json(&a.facts)),
            risk_assessments::rule_set.eq(&a.rule_set),
            risk_assessments::trigger.eq(&a.trigger),
            risk_assessments::note.eq(&a.note),
            risk_assessments::assessed_by.eq(&a.assessed_by),
            risk_assessments::facility_id.eq(&a.facility_id),
            risk_assessments::decided_by.eq(&a.decided_by),
            risk_assessments::decided_at.eq(a.decided_at),
            risk_assessments::jurisdiction.eq(scope.jurisdiction),
            risk_assessments::township_code.eq(scope.township_code),
            risk_assessments::created_at.eq(a.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Every assessment of a pregnancy, oldest first (the grade timeline).
pub fn assessments(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<AssessmentRecord>> {
    Ok(risk_assessments::table
        .filter(risk_assessments::pregnancy_id.eq(pregnancy_id))
        .order(risk_assessments::created_at.asc())
        .select(AssessmentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AssessmentRecord::from)
        .collect())
}

/// Pending proposals are dismissed when a clinician grades or a newer proposal replaces them.
pub fn dismiss_proposals(conn: &mut AnyConnection, pregnancy_id: &str, by: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        risk_assessments::table
            .filter(risk_assessments::pregnancy_id.eq(pregnancy_id))
            .filter(risk_assessments::status.eq("proposed")),
    )
    .set((
        risk_assessments::status.eq("dismissed"),
        risk_assessments::decided_by.eq(by),
        risk_assessments::decided_at.eq(at),
    ))
    .execute(conn)
    .map(|_| ())
}

/// Proposals waiting for a clinician in an area.
/// Re-grade proposals waiting for a grader in an area, oldest first: `limit` of them from
/// `offset`, and how many there are in all.
pub fn pending_proposals(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AssessmentRecord>, i64)> {
    macro_rules! scoped {
        () => {{
            let mut q = risk_assessments::table
                .filter(risk_assessments::status.eq("proposed"))
                .into_boxed();
            if let Some(t) = township {
                q = q.filter(risk_assessments::township_code.eq(t.to_string()));
            }
            if let Some(p) = prefix {
                q = q.filter(risk_assessments::jurisdiction.like(format!("{p}%")));
            }
            q
        }};
    }
    let total: i64 = scoped!().count().get_result(conn)?;
    let rows = scoped!()
        .order((risk_assessments::created_at.asc(), risk_assessments::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(AssessmentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AssessmentRecord::from)
        .collect();
    Ok((rows, total))
}

// ---------------------------------------------------------------- cases

#[derive(Queryable, Selectable)]
#[diesel(table_name = risk_cases)]
struct CaseRow {
    id: String,
    pregnancy_id: String,
    person_id: String,
    status: String,
    colour: String,
    purple: bool,
    case_manager_id: Option<String>,
    delivery_level: String,
    delivery_facility_id: Option<String>,
    follow_up_days: i32,
    next_follow_up: NaiveDate,
    last_contact: Option<NaiveDate>,
    opened_at: NaiveDateTime,
    opened_by: String,
    closed_at: Option<NaiveDateTime>,
    close_reason: Option<String>,
    moved_to: Option<String>,
    escalation: i32,
    jurisdiction: String,
    township_code: Option<String>,
    version: i32,
}

impl From<CaseRow> for CaseRecord {
    fn from(r: CaseRow) -> Self {
        let status = CaseStatus::parse(&r.status).unwrap_or(CaseStatus::Active);
        let c = colour(&r.colour);
        CaseRecord {
            id: r.id,
            pregnancy_id: r.pregnancy_id,
            person_id: r.person_id,
            status,
            status_label: status.label_zh(),
            colour: c,
            colour_label: c.label_zh(),
            purple: r.purple,
            case_manager_id: r.case_manager_id,
            delivery_level: r.delivery_level,
            delivery_facility_id: r.delivery_facility_id,
            follow_up_days: r.follow_up_days,
            next_follow_up: r.next_follow_up,
            last_contact: r.last_contact,
            opened_at: r.opened_at,
            opened_by: r.opened_by,
            closed_at: r.closed_at,
            close_reason: r.close_reason,
            moved_to: r.moved_to,
            escalation: Escalation::from_rank(r.escalation),
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            version: r.version,
        }
    }
}

pub fn insert_case(conn: &mut AnyConnection, c: &CaseRecord) -> QueryResult<()> {
    diesel::insert_into(risk_cases::table)
        .values((
            risk_cases::id.eq(&c.id),
            risk_cases::pregnancy_id.eq(&c.pregnancy_id),
            risk_cases::person_id.eq(&c.person_id),
            risk_cases::status.eq(c.status.as_str()),
            risk_cases::colour.eq(c.colour.as_str()),
            risk_cases::purple.eq(c.purple),
            risk_cases::case_manager_id.eq(&c.case_manager_id),
            risk_cases::delivery_level.eq(&c.delivery_level),
            risk_cases::delivery_facility_id.eq(&c.delivery_facility_id),
            risk_cases::follow_up_days.eq(c.follow_up_days),
            risk_cases::next_follow_up.eq(c.next_follow_up),
            risk_cases::last_contact.eq(c.last_contact),
            risk_cases::opened_at.eq(c.opened_at),
            risk_cases::opened_by.eq(&c.opened_by),
            risk_cases::closed_at.eq(c.closed_at),
            risk_cases::close_reason.eq(&c.close_reason),
            risk_cases::moved_to.eq(&c.moved_to),
            risk_cases::escalation.eq(c.escalation.rank()),
            risk_cases::jurisdiction.eq(&c.jurisdiction),
            risk_cases::township_code.eq(&c.township_code),
            risk_cases::version.eq(c.version),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Write back a changed case if nobody changed it meanwhile (optimistic lock on `version`).
/// Returns false when the stored version moved on.
pub fn update_case(conn: &mut AnyConnection, c: &CaseRecord) -> QueryResult<bool> {
    let n = diesel::update(risk_cases::table.find(&c.id).filter(risk_cases::version.eq(c.version)))
        .set((
            risk_cases::status.eq(c.status.as_str()),
            risk_cases::colour.eq(c.colour.as_str()),
            risk_cases::purple.eq(c.purple),
            risk_cases::case_manager_id.eq(&c.case_manager_id),
            risk_cases::delivery_level.eq(&c.delivery_level),
            risk_cases::delivery_facility_id.eq(&c.delivery_facility_id),
            risk_cases::follow_up_days.eq(c.follow_up_days),
            risk_cases::next_follow_up.eq(c.next_follow_up),
            risk_cases::last_contact.eq(c.last_contact),
            risk_cases::closed_at.eq(c.closed_at),
            risk_cases::close_reason.eq(&c.close_reason),
            risk_cases::moved_to.eq(&c.moved_to),
            risk_cases::escalation.eq(c.escalation.rank()),
            risk_cases::version.eq(c.version + 1),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn case_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CaseRecord>> {
    Ok(risk_cases::table
        .find(id)
        .select(CaseRow::as_select())
        .first(conn)
        .optional()?
        .map(CaseRecord::from))
}

pub fn open_case_for(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Option<CaseRecord>> {
    Ok(risk_cases::table
        .filter(risk_cases::pregnancy_id.eq(pregnancy_id))
        .filter(risk_cases::status.ne("closed"))
        .select(CaseRow::as_select())
        .first(conn)
        .optional()?
        .map(CaseRecord::from))
}

pub fn cases_for_pregnancy(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<CaseRecord>> {
    Ok(risk_cases::table
        .filter(risk_cases::pregnancy_id.eq(pregnancy_id))
        .order(risk_cases::opened_at.desc())
        .select(CaseRow::as_select())
        .load(conn)?
        .into_iter()
        .map(CaseRecord::from)
        .collect())
}

/// Open cases in an area (a township code, or a GB/T 2260 prefix).
pub fn open_cases(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
) -> QueryResult<Vec<CaseRecord>> {
    let mut q = risk_cases::table.filter(risk_cases::status.ne("closed")).into_boxed();
    if let Some(t) = township {
        q = q.filter(risk_cases::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(risk_cases::jurisdiction.like(format!("{p}%")));
    }
    Ok(q.select(CaseRow::as_select())
        .load(conn)?
        .into_iter()
        .map(CaseRecord::from)
        .collect())
}

/// Moved-out cases whose destination lies in an area (for the receiving side to accept).
pub fn incoming_cases(conn: &mut AnyConnection, prefix: &str) -> QueryResult<Vec<CaseRecord>> {
    Ok(risk_cases::table
        .filter(risk_cases::status.eq("moved_out"))
        .filter(risk_cases::moved_to.like(format!("{prefix}%")))
        .select(CaseRow::as_select())
        .load(conn)?
        .into_iter()
        .map(CaseRecord::from)
        .collect())
}

pub fn add_event(conn: &mut AnyConnection, case_id: &str, kind: &str, note: &str, actor_name: &str) -> QueryResult<()> {
    diesel::insert_into(risk_case_events::table)
        .values((
            risk_case_events::id.eq(new_id()),
            risk_case_events::case_id.eq(case_id),
            risk_case_events::kind.eq(kind),
            risk_case_events::note.eq(note),
            risk_case_events::actor_name.eq(actor_name),
            risk_case_events::at.eq(now_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn events(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Vec<CaseEvent>> {
    Ok(risk_case_events::table
        .filter(risk_case_events::case_id.eq(case_id))
        .order(risk_case_events::at.asc())
        .select((
            risk_case_events::kind,
            risk_case_events::note,
            risk_case_events::actor_name,
            risk_case_events::at,
        ))
        .load::<(String, String, String, NaiveDateTime)>(conn)?
        .into_iter()
        .map(|(kind, note, actor_name, at)| CaseEvent {
            kind,
            note,
            actor_name,
            at,
        })
        .collect())
}

// ---------------------------------------------------------------- reports

#[derive(Queryable, Selectable)]
#[diesel(table_name = risk_case_reports)]
struct ReportRow {
    id: String,
    case_id: String,
    assessment_id: String,
    colour: String,
    purple: bool,
    due_at: NaiveDateTime,
    sent_at: Option<NaiveDateTime>,
    sent_by: Option<String>,
    ack_due_at: Option<NaiveDateTime>,
    acknowledged_at: Option<NaiveDateTime>,
    acknowledged_by: Option<String>,
    created_at: NaiveDateTime,
}

impl From<ReportRow> for CaseReport {
    fn from(r: ReportRow) -> Self {
        let c = colour(&r.colour);
        CaseReport {
            id: r.id,
            case_id: r.case_id,
            assessment_id: r.assessment_id,
            colour: c,
            colour_label: c.label_zh(),
            purple: r.purple,
            due_at: r.due_at,
            sent_at: r.sent_at,
            sent_by: r.sent_by,
            ack_due_at: r.ack_due_at,
            acknowledged_at: r.acknowledged_at,
            acknowledged_by: r.acknowledged_by,
            created_at: r.created_at,
        }
    }
}

pub fn insert_report(conn: &mut AnyConnection, r: &CaseReport, jurisdiction: &str) -> QueryResult<()> {
    diesel::insert_into(risk_case_reports::table)
        .values((
            risk_case_reports::id.eq(&r.id),
            risk_case_reports::case_id.eq(&r.case_id),
            risk_case_reports::assessment_id.eq(&r.assessment_id),
            risk_case_reports::colour.eq(r.colour.as_str()),
            risk_case_reports::purple.eq(r.purple),
            risk_case_reports::due_at.eq(r.due_at),
            risk_case_reports::sent_at.eq(r.sent_at),
            risk_case_reports::sent_by.eq(&r.sent_by),
            risk_case_reports::ack_due_at.eq(r.ack_due_at),
            risk_case_reports::acknowledged_at.eq(r.acknowledged_at),
            risk_case_reports::acknowledged_by.eq(&r.acknowledged_by),
            risk_case_reports::jurisdiction.eq(jurisdiction),
            risk_case_reports::created_at.eq(r.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn reports(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Vec<CaseReport>> {
    Ok(risk_case_reports::table
        .filter(risk_case_reports::case_id.eq(case_id))
        .order(risk_case_reports::created_at.asc())
        .select(ReportRow::as_select())
        .load(conn)?
        .into_iter()
        .map(CaseReport::from)
        .collect())
}

pub fn report_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CaseReport>> {
    Ok(risk_case_reports::table
        .find(id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()?
        .map(CaseReport::from))
}

/// Mark sent; only an unsent report changes (returns false otherwise).
pub fn mark_report_sent(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    at: NaiveDateTime,
    ack_due: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        risk_case_reports::table
            .find(id)
            .filter(risk_case_reports::sent_at.is_null()),
    )
    .set((
        risk_case_reports::sent_at.eq(at),
        risk_case_reports::sent_by.eq(by),
        risk_case_reports::ack_due_at.eq(ack_due),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Mark acknowledged; only a sent, unacknowledged report changes.
pub fn mark_report_acknowledged(conn: &mut AnyConnection, id: &str, by: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        risk_case_reports::table
            .find(id)
            .filter(risk_case_reports::sent_at.is_not_null())
            .filter(risk_case_reports::acknowledged_at.is_null()),
    )
    .set((
        risk_case_reports::acknowledged_at.eq(at),
        risk_case_reports::acknowledged_by.eq(by),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

// ---------------------------------------------------------------- interface searches

pub fn assessment_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<AssessmentRecord>> {
    Ok(risk_assessments::table
        .find(id)
        .select(AssessmentRow::as_select())
        .first(conn)
        .optional()?
        .map(AssessmentRecord::from))
}

/// What an interface search for assessments asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct AssessmentFilter {
    pub ids: Option<Vec<String>>,
    pub pregnancy_ids: Option<Vec<String>>,
    /// When it was made.
    pub made: crate::ids::TimeRange,
    /// When it last changed: its decision (a proposal dismissed later), else when it was made.
    pub updated: crate::ids::TimeRange,
    pub scope: Option<crate::auth::model::Scope>,
}

/// Assessments matching a filter, oldest first, one page of them, and how many match in all.
pub fn find_assessments(
    conn: &mut AnyConnection,
    f: &AssessmentFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AssessmentRecord>, i64)> {
    use risk_assessments as ra;
    let build = || {
        let mut q = ra::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(ra::id.eq_any(ids.clone()));
        }
        if let Some(ids) = &f.pregnancy_ids {
            q = q.filter(ra::pregnancy_id.eq_any(ids.clone()));
        }
        if let Some(t) = f.made.from {
            q = q.filter(ra::created_at.ge(t));
        }
        if let Some(t) = f.made.to {
            q = q.filter(ra::created_at.lt(t));
        }
        if let Some(t) = f.updated.from {
            q = q.filter(
                ra::decided_at
                    .is_null()
                    .and(ra::created_at.ge(t))
                    .or(ra::decided_at.ge(t)),
            );
        }
        if let Some(t) = f.updated.to {
            q = q.filter(
                ra::decided_at
                    .is_null()
                    .and(ra::created_at.lt(t))
                    .or(ra::decided_at.lt(t)),
            );
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(ra::township_code.eq(t.to_string())),
            Some((None, Some(p))) => q = q.filter(ra::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((ra::created_at.asc(), ra::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(AssessmentRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(AssessmentRecord::from).collect(), total))
}

/// Pregnancies with at least one confirmed grade (each has a risk flag), in booking order: one page
/// of their ids and how many there are in all.
pub fn graded_pregnancies(
    conn: &mut AnyConnection,
    pregnancy_ids: Option<&[String]>,
    scope: Option<&crate::auth::model::Scope>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<String>, i64)> {
    use risk_assessments as ra;
    let build = || {
        let mut q = ra::table.filter(ra::status.eq("confirmed")).into_boxed();
        if let Some(ids) = pregnancy_ids {
            q = q.filter(ra::pregnancy_id.eq_any(ids.to_vec()));
        }
        match scope.map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(ra::township_code.eq(t.to_string())),
            Some((None, Some(p))) => q = q.filter(ra::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build()
        .select(diesel::dsl::count(ra::pregnancy_id).aggregate_distinct())
        .get_result(conn)?;
    let ids = build()
        .select(ra::pregnancy_id)
        .distinct()
        .order(ra::pregnancy_id.asc())
        .offset(offset)
        .limit(limit)
        .load::<String>(conn)?;
    Ok((ids, total))
}

/// How many of a pregnancy's cases are closed, and when the last one closed.
pub fn closed_cases(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let closed: Vec<Option<NaiveDateTime>> = risk_cases::table
        .filter(risk_cases::pregnancy_id.eq(pregnancy_id))
        .filter(risk_cases::status.eq(CaseStatus::Closed.as_str()))
        .select(risk_cases::closed_at)
        .load(conn)?;
    Ok((closed.len() as i64, closed.into_iter().flatten().max()))
}
