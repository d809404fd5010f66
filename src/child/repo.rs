//! Child queries: birth records, child health visits, services; the vaccinations of children are
//! the immunizations feature's rows.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::model::{Certificate, ChildRecord, ChildVisit, ServiceRecord};
use crate::storage::AnyConnection;
use crate::storage::schema::{child_services, child_visits, children, immunizations};

#[derive(Queryable, Selectable)]
#[diesel(table_name = children)]
struct ChildRow {
    person_id: String,
    mother_id: String,
    pregnancy_id: Option<String>,
    birth_at: NaiveDateTime,
    birth_time_known: bool,
    birth_order: i32,
    plurality: i32,
    gestation_days: Option<i32>,
    birth_weight_g: Option<i32>,
    birth_length_cm: Option<f64>,
    apgar_1: Option<i32>,
    apgar_5: Option<i32>,
    malformations: String,
    conditions: String,
    exposures: String,
    discharge_date: Option<NaiveDate>,
    birth_facility: String,
    certificate: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
    recorded_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i32,
}

impl From<ChildRow> for ChildRecord {
    fn from(r: ChildRow) -> ChildRecord {
        ChildRecord {
            person_id: r.person_id,
            mother_id: r.mother_id,
            pregnancy_id: r.pregnancy_id,
            birth_at: r.birth_at,
            birth_time_known: r.birth_time_known,
            birth_order: r.birth_order,
            plurality: r.plurality,
            gestation_days: r.gestation_days.map(i64::from),
            birth_weight_g: r.birth_weight_g,
            birth_length_cm: r.birth_length_cm,
            apgar_1: r.apgar_1,
            apgar_5: r.apgar_5,
            malformations: r.malformations,
            conditions: serde_json::from_str(&r.conditions).unwrap_or_default(),
            exposures: serde_json::from_str(&r.exposures).unwrap_or_default(),
            discharge_date: r.discharge_date,
            birth_facility: r.birth_facility,
            certificate: r.certificate.and_then(|c| serde_json::from_str::<Certificate>(&c).ok()),
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

fn certificate_json(c: &Option<Certificate>) -> Option<String> {
    c.as_ref().and_then(|c| serde_json::to_string(c).ok())
}

pub fn insert(conn: &mut AnyConnection, c: &ChildRecord) -> QueryResult<()> {
    diesel::insert_into(children::table)
        .values((
            children::person_id.eq(&c.person_id),
            children::mother_id.eq(&c.mother_id),
            children::pregnancy_id.eq(&c.pregnancy_id),
            children::birth_at.eq(c.birth_at),
            children::birth_time_known.eq(c.birth_time_known),
            children::birth_order.eq(c.birth_order),
            children::plurality.eq(c.plurality),
            children::gestation_days.eq(c.gestation_days.and_then(|g| i32::try_from(g).ok())),
            children::birth_weight_g.eq(c.birth_weight_g),
            children::birth_length_cm.eq(c.birth_length_cm),
            children::apgar_1.eq(c.apgar_1),
            children::apgar_5.eq(c.apgar_5),
            children::malformations.eq(&c.malformations),
            children::conditions.eq(serde_json::to_string(&c.conditions).unwrap_or_else(|_| "[]".into())),
            children::exposures.eq(serde_json::to_string(&c.exposures).unwrap_or_else(|_| "[]".into())),
            children::discharge_date.eq(c.discharge_date),
            children::birth_facility.eq(&c.birth_facility),
            children::certificate_number.eq(c.certificate.as_ref().map(|x| x.number.clone())),
            children::certificate.eq(certificate_json(&c.certificate)),
            children::jurisdiction.eq(&c.jurisdiction),
            children::township_code.eq(&c.township_code),
            children::recorded_by.eq(&c.recorded_by),
            children::created_at.eq(c.created_at),
            children::updated_at.eq(c.updated_at),
            children::version.eq(c.version),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Write a child's birth facts and certificate if the row is still at `c.version`; true when it
/// was (the stored version becomes `c.version + 1`).
pub fn update(conn: &mut AnyConnection, c: &ChildRecord, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        children::table
            .filter(children::person_id.eq(&c.person_id))
            .filter(children::version.eq(c.version)),
    )
    .set((
        children::birth_at.eq(c.birth_at),
        children::birth_time_known.eq(c.birth_time_known),
        children::gestation_days.eq(c.gestation_days.and_then(|g| i32::try_from(g).ok())),
        children::birth_weight_g.eq(c.birth_weight_g),
        children::birth_length_cm.eq(c.birth_length_cm),
        children::apgar_1.eq(c.apgar_1),
        children::apgar_5.eq(c.apgar_5),
        children::malformations.eq(&c.malformations),
        children::conditions.eq(serde_json::to_string(&c.conditions).unwrap_or_else(|_| "[]".into())),
        children::discharge_date.eq(c.discharge_date),
        children::certificate_number.eq(c.certificate.as_ref().map(|x| x.number.clone())),
        children::certificate.eq(certificate_json(&c.certificate)),
        children::updated_at.eq(now),
        children::version.eq(c.version + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The mother's exposures as they now stand (no version change: derived from her record).
pub fn set_exposures(conn: &mut AnyConnection, person_id: &str, exposures: &[String]) -> QueryResult<()> {
    diesel::update(children::table.filter(children::person_id.eq(person_id)))
        .set(children::exposures.eq(serde_json::to_string(exposures).unwrap_or_else(|_| "[]".into())))
        .execute(conn)
        .map(|_| ())
}

pub fn by_id(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Option<ChildRecord>> {
    children::table
        .filter(children::person_id.eq(person_id))
        .select(ChildRow::as_select())
        .first(conn)
        .optional()
        .map(|r| r.map(Into::into))
}

/// A mother's children, oldest birth first.
pub fn of_mother(conn: &mut AnyConnection, mother_id: &str) -> QueryResult<Vec<ChildRecord>> {
    children::table
        .filter(children::mother_id.eq(mother_id))
        .order((children::birth_at.asc(), children::birth_order.asc()))
        .select(ChildRow::as_select())
        .load(conn)
        .map(|v| v.into_iter().map(Into::into).collect())
}

/// The children of one pregnancy, by birth order.
pub fn of_pregnancy(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<ChildRecord>> {
    children::table
        .filter(children::pregnancy_id.eq(pregnancy_id))
        .order(children::birth_order.asc())
        .select(ChildRow::as_select())
        .load(conn)
        .map(|v| v.into_iter().map(Into::into).collect())
}

/// Children of an area (a township, or a county/city/province prefix) born on or after `since`.
pub fn in_area(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    since: NaiveDateTime,
) -> QueryResult<Vec<ChildRecord>> {
    let mut q = children::table
        .filter(children::birth_at.ge(since))
        .select(ChildRow::as_select())
        .into_boxed();
    if let Some(t) = township {
        q = q.filter(children::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(children::jurisdiction.like(format!("{p}%")));
    }
    q.order(children::birth_at.asc())
        .load(conn)
        .map(|v| v.into_iter().map(Into::into).collect())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = child_visits)]
struct VisitRow {
    id: String,
    child_id: String,
    visit_date: NaiveDate,
    age_days: i32,
    weight_kg: Option<f64>,
    length_cm: Option<f64>,
    position: Option<String>,
    head_circumference_cm: Option<f64>,
    feeding: Option<String>,
    development_warning: String,
    rickets_signs: String,
    exam: String,
    hb_g_l: Option<i32>,
    hearing: Option<String>,
    vision: Option<String>,
    illness: String,
    advice: String,
    referral: String,
    next_appointment: Option<NaiveDate>,
    facility_id: String,
    recorded_by: String,
    recorded_at: NaiveDateTime,
}

impl From<VisitRow> for ChildVisit {
    fn from(r: VisitRow) -> ChildVisit {
        ChildVisit {
            id: r.id,
            child_id: r.child_id,
            visit_date: r.visit_date,
            age_days: i64::from(r.age_days),
            weight_kg: r.weight_kg,
            length_cm: r.length_cm,
            position: r.position,
            head_circumference_cm: r.head_circumference_cm,
            feeding: r.feeding,
            development_warning: r.development_warning,
            rickets_signs: serde_json::from_str(&r.rickets_signs).unwrap_or_default(),
            exam: r.exam,
            hb_g_l: r.hb_g_l,
            hearing: r.hearing,
            vision: r.vision,
            illness: r.illness,
            advice: r.advice,
            referral: r.referral,
            next_appointment: r.next_appointment,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
        }
    }
}

pub fn insert_visit(conn: &mut AnyConnection, v: &ChildVisit, child: &ChildRecord) -> QueryResult<()> {
    diesel::insert_into(child_visits::table)
        .values((
            child_visits::id.eq(&v.id),
            child_visits::child_id.eq(&v.child_id),
            child_visits::visit_date.eq(v.visit_date),
            child_visits::age_days.eq(i32::try_from(v.age_days).unwrap_or(i32::MAX)),
            child_visits::weight_kg.eq(v.weight_kg),
            child_visits::length_cm.eq(v.length_cm),
            child_visits::position.eq(&v.position),
            child_visits::head_circumference_cm.eq(v.head_circumference_cm),
            child_visits::feeding.eq(&v.feeding),
            child_visits::development_warning.eq(&v.development_warning),
            child_visits::rickets_signs.eq(serde_json::to_string(&v.rickets_signs).unwrap_or_else(|_| "[]".into())),
            child_visits::exam.eq(&v.exam),
            child_visits::hb_g_l.eq(v.hb_g_l),
            child_visits::hearing.eq(&v.hearing),
            child_visits::vision.eq(&v.vision),
            child_visits::illness.eq(&v.illness),
            child_visits::advice.eq(&v.advice),
            child_visits::referral.eq(&v.referral),
            child_visits::next_appointment.eq(v.next_appointment),
            child_visits::facility_id.eq(&v.facility_id),
            child_visits::recorded_by.eq(&v.recorded_by),
            child_visits::recorded_at.eq(v.recorded_at),
            child_visits::jurisdiction.eq(&child.jurisdiction),
            child_visits::township_code.eq(&child.township_code),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Visits of these children, oldest first.
pub fn visits_of(conn: &mut AnyConnection, child_ids: &[String]) -> QueryResult<Vec<ChildVisit>> {
    let mut out = Vec::new();
    for chunk in child_ids.chunks(500) {
        let rows: Vec<VisitRow> = child_visits::table
            .filter(child_visits::child_id.eq_any(chunk))
            .order((child_visits::visit_date.asc(), child_visits::recorded_at.asc()))
            .select(VisitRow::as_select())
            .load(conn)?;
        out.extend(rows.into_iter().map(ChildVisit::from));
    }
    Ok(out)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = child_services)]
struct ServiceRow {
    id: String,
    child_id: String,
    code: String,
    done_at: NaiveDateTime,
    result: Option<String>,
    note: String,
    facility_id: String,
    recorded_by: String,
    recorded_at: NaiveDateTime,
}

pub fn insert_service(conn: &mut AnyConnection, s: &ServiceRecord, child: &ChildRecord) -> QueryResult<()> {
    diesel::insert_into(child_services::table)
        .values((
            child_services::id.eq(&s.id),
            child_services::child_id.eq(&s.child_id),
            child_services::code.eq(&s.code),
            child_services::done_at.eq(s.done_at),
            child_services::result.eq(&s.result),
            child_services::note.eq(&s.note),
            child_services::facility_id.eq(&s.facility_id),
            child_services::recorded_by.eq(&s.recorded_by),
            child_services::recorded_at.eq(s.recorded_at),
            child_services::jurisdiction.eq(&child.jurisdiction),
            child_services::township_code.eq(&child.township_code),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Services of these children, oldest first.
pub fn services_of(conn: &mut AnyConnection, child_ids: &[String]) -> QueryResult<Vec<ServiceRecord>> {
    let mut out = Vec::new();
    for chunk in child_ids.chunks(500) {
        let rows: Vec<ServiceRow> = child_services::table
            .filter(child_services::child_id.eq_any(chunk))
            .order(child_services::done_at.asc())
            .select(ServiceRow::as_select())
            .load(conn)?;
        out.extend(rows.into_iter().map(|r| ServiceRecord {
            id: r.id,
            child_id: r.child_id,
            code: r.code,
            done_at: r.done_at,
            result: r.result,
            note: r.note,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
        }));
    }
    Ok(out)
}

/// Which children a schedule read is for: every child of a township (one indexed range on the
/// rows' own area columns), or named children.
#[derive(Debug, Clone, Copy)]
pub enum Among<'a> {
    Township(&'a str),
    Children(&'a [String]),
}

/// What the schedule needs of each visit: (child id, day, Hb measured, hearing checked).
pub fn visit_marks(conn: &mut AnyConnection, among: Among) -> QueryResult<Vec<(String, NaiveDate, bool, bool)>> {
    let cols = (
        child_visits::child_id,
        child_visits::visit_date,
        child_visits::hb_g_l,
        child_visits::hearing,
    );
    let rows: Vec<(String, NaiveDate, Option<i32>, Option<String>)> = match among {
        Among::Township(t) => child_visits::table
            .filter(child_visits::township_code.eq(t))
            .select(cols)
            .load(conn)?,
        Among::Children(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                out.extend(
                    child_visits::table
                        .filter(child_visits::child_id.eq_any(chunk))
                        .select(cols)
                        .load::<(String, NaiveDate, Option<i32>, Option<String>)>(conn)?,
                );
            }
            out
        }
    };
    Ok(rows
        .into_iter()
        .map(|(c, d, hb, h)| (c, d, hb.is_some(), h.is_some()))
        .collect())
}

/// What the schedule needs of each service: (child id, code, time, result).
pub type ServiceMark = (String, String, NaiveDateTime, Option<String>);

pub fn service_marks(conn: &mut AnyConnection, among: Among) -> QueryResult<Vec<ServiceMark>> {
    let cols = (
        child_services::child_id,
        child_services::code,
        child_services::done_at,
        child_services::result,
    );
    match among {
        Among::Township(t) => child_services::table
            .filter(child_services::township_code.eq(t))
            .select(cols)
            .load(conn),
        Among::Children(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                out.extend(
                    child_services::table
                        .filter(child_services::child_id.eq_any(chunk))
                        .select(cols)
                        .load::<ServiceMark>(conn)?,
                );
            }
            Ok(out)
        }
    }
}

/// The programme doses given: (person id, vaccine code, time) — completed doses of the programme's
/// code system with a time.
pub fn dose_marks(
    conn: &mut AnyConnection,
    among: Among,
    code_system: &str,
) -> QueryResult<Vec<(String, String, NaiveDateTime)>> {
    let rows: Vec<(String, String, Option<NaiveDateTime>)> = match among {
        Among::Township(t) => immunizations::table
            .filter(immunizations::township_code.eq(t))
            .filter(immunizations::vaccine_system.eq(code_system))
            .filter(immunizations::status.eq("completed"))
            .select((
                immunizations::person_id,
                immunizations::vaccine_code,
                immunizations::occurrence_at,
            ))
            .load(conn)?,
        Among::Children(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                out.extend(
                    immunizations::table
                        .filter(immunizations::person_id.eq_any(chunk))
                        .filter(immunizations::vaccine_system.eq(code_system))
                        .filter(immunizations::status.eq("completed"))
                        .select((
                            immunizations::person_id,
                            immunizations::vaccine_code,
                            immunizations::occurrence_at,
                        ))
                        .load::<(String, String, Option<NaiveDateTime>)>(conn)?,
                );
            }
            out
        }
    };
    Ok(rows.into_iter().filter_map(|(p, v, t)| t.map(|t| (p, v, t))).collect())
}

// ------------------------------------------------------------------ frail-child cases

use super::frail::{CaseReason, FrailCase};
use crate::risk::cases::{CaseEvent, CaseStatus, Escalation};
use crate::storage::schema::{frail_case_events, frail_cases};

#[derive(Queryable, Selectable)]
#[diesel(table_name = frail_cases)]
struct FrailRow {
    id: String,
    child_id: String,
    status: String,
    reasons: String,
    case_manager_id: Option<String>,
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

impl From<FrailRow> for FrailCase {
    fn from(r: FrailRow) -> FrailCase {
        // An unknown status can only come from a hand-edited row: shown as active, never lost.
        let status = CaseStatus::parse(&r.status).unwrap_or(CaseStatus::Active);
        FrailCase {
            id: r.id,
            child_id: r.child_id,
            status,
            status_label: status.label_zh(),
            reasons: serde_json::from_str::<Vec<CaseReason>>(&r.reasons).unwrap_or_default(),
            case_manager_id: r.case_manager_id,
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

fn reasons_json(c: &FrailCase) -> String {
    serde_json::to_string(&c.reasons).unwrap_or_else(|_| "[]".into())
}

pub fn insert_frail_case(conn: &mut AnyConnection, c: &FrailCase) -> QueryResult<()> {
    diesel::insert_into(frail_cases::table)
        .values((
            frail_cases::id.eq(&c.id),
            frail_cases::child_id.eq(&c.child_id),
            frail_cases::status.eq(c.status.as_str()),
            frail_cases::reasons.eq(reasons_json(c)),
            frail_cases::case_manager_id.eq(&c.case_manager_id),
            frail_cases::follow_up_days.eq(c.follow_up_days),
            frail_cases::next_follow_up.eq(c.next_follow_up),
            frail_cases::last_contact.eq(c.last_contact),
            frail_cases::opened_at.eq(c.opened_at),
            frail_cases::opened_by.eq(&c.opened_by),
            frail_cases::closed_at.eq(c.closed_at),
            frail_cases::close_reason.eq(&c.close_reason),
            frail_cases::moved_to.eq(&c.moved_to),
            frail_cases::escalation.eq(c.escalation.rank()),
            frail_cases::jurisdiction.eq(&c.jurisdiction),
            frail_cases::township_code.eq(&c.township_code),
            frail_cases::version.eq(c.version),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Write back a changed case if nobody changed it meanwhile (optimistic lock on `version`);
/// false when the stored version moved on. The caller bumps its copy's version.
pub fn update_frail_case(conn: &mut AnyConnection, c: &FrailCase) -> QueryResult<bool> {
    let n = diesel::update(
        frail_cases::table
            .find(&c.id)
            .filter(frail_cases::version.eq(c.version)),
    )
    .set((
        frail_cases::status.eq(c.status.as_str()),
        frail_cases::reasons.eq(reasons_json(c)),
        frail_cases::case_manager_id.eq(&c.case_manager_id),
        frail_cases::follow_up_days.eq(c.follow_up_days),
        frail_cases::next_follow_up.eq(c.next_follow_up),
        frail_cases::last_contact.eq(c.last_contact),
        frail_cases::closed_at.eq(c.closed_at),
        frail_cases::close_reason.eq(&c.close_reason),
        frail_cases::moved_to.eq(&c.moved_to),
        frail_cases::escalation.eq(c.escalation.rank()),
        frail_cases::jurisdiction.eq(&c.jurisdiction),
        frail_cases::township_code.eq(&c.township_code),
        frail_cases::version.eq(c.version + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn frail_case_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<FrailCase>> {
    Ok(frail_cases::table
        .find(id)
        .select(FrailRow::as_select())
        .first(conn)
        .optional()?
        .map(FrailCase::from))
}

/// Her open case, if any (one at most: a unique index).
pub fn open_frail_case_of(conn: &mut AnyConnection, child_id: &str) -> QueryResult<Option<FrailCase>> {
    Ok(frail_cases::table
        .filter(frail_cases::child_id.eq(child_id))
        .filter(frail_cases::status.ne("closed"))
        .select(FrailRow::as_select())
        .first(conn)
        .optional()?
        .map(FrailCase::from))
}

/// Her cases, newest first.
pub fn frail_cases_of(conn: &mut AnyConnection, child_id: &str) -> QueryResult<Vec<FrailCase>> {
    Ok(frail_cases::table
        .filter(frail_cases::child_id.eq(child_id))
        .order(frail_cases::opened_at.desc())
        .select(FrailRow::as_select())
        .load(conn)?
        .into_iter()
        .map(FrailCase::from)
        .collect())
}

/// Open cases in an area (a township code, or a GB/T 2260 prefix; neither: everywhere).
pub fn open_frail_cases(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
) -> QueryResult<Vec<FrailCase>> {
    let mut q = frail_cases::table.filter(frail_cases::status.ne("closed")).into_boxed();
    if let Some(t) = township {
        q = q.filter(frail_cases::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(frail_cases::jurisdiction.like(format!("{p}%")));
    }
    Ok(q.select(FrailRow::as_select())
        .load(conn)?
        .into_iter()
        .map(FrailCase::from)
        .collect())
}

/// Moved-out cases whose destination lies in an area (for the receiving side to accept).
pub fn incoming_frail_cases(conn: &mut AnyConnection, prefix: &str) -> QueryResult<Vec<FrailCase>> {
    Ok(frail_cases::table
        .filter(frail_cases::status.eq("moved_out"))
        .filter(frail_cases::moved_to.like(format!("{prefix}%")))
        .select(FrailRow::as_select())
        .load(conn)?
        .into_iter()
        .map(FrailCase::from)
        .collect())
}

pub fn add_frail_event(
    conn: &mut AnyConnection,
    case_id: &str,
    kind: &str,
    note: &str,
    actor_name: &str,
) -> QueryResult<()> {
    diesel::insert_into(frail_case_events::table)
        .values((
            frail_case_events::id.eq(crate::ids::new_id()),
            frail_case_events::case_id.eq(case_id),
            frail_case_events::kind.eq(kind),
            frail_case_events::note.eq(note),
            frail_case_events::actor_name.eq(actor_name),
            frail_case_events::at.eq(crate::ids::now_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn frail_events(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Vec<CaseEvent>> {
    Ok(frail_case_events::table
        .filter(frail_case_events::case_id.eq(case_id))
        .order((frail_case_events::at.asc(), frail_case_events::id.asc()))
        .select((
            frail_case_events::kind,
            frail_case_events::note,
            frail_case_events::actor_name,
            frail_case_events::at,
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

/// A child's record moves to another county (an accepted hand-over): her birth record, visits,
/// services and cases (her person row is identity's).
pub fn move_child_to(
    conn: &mut AnyConnection,
    child_id: &str,
    jurisdiction: &str,
    township: Option<&str>,
) -> QueryResult<()> {
    let t: Option<String> = township.map(str::to_string);
    diesel::update(children::table.filter(children::person_id.eq(child_id)))
        .set((children::jurisdiction.eq(jurisdiction), children::township_code.eq(&t)))
        .execute(conn)?;
    diesel::update(child_visits::table.filter(child_visits::child_id.eq(child_id)))
        .set((
            child_visits::jurisdiction.eq(jurisdiction),
            child_visits::township_code.eq(&t),
        ))
        .execute(conn)?;
    diesel::update(child_services::table.filter(child_services::child_id.eq(child_id)))
        .set((
            child_services::jurisdiction.eq(jurisdiction),
            child_services::township_code.eq(&t),
        ))
        .execute(conn)?;
    diesel::update(frail_cases::table.filter(frail_cases::child_id.eq(child_id)))
        .set((
            frail_cases::jurisdiction.eq(jurisdiction),
            frail_cases::township_code.eq(&t),
        ))
        .execute(conn)?;
    Ok(())
}

/// One child health visit by its id.
pub fn visit_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ChildVisit>> {
    child_visits::table
        .filter(child_visits::id.eq(id))
        .select(VisitRow::as_select())
        .first(conn)
        .optional()
        .map(|r| r.map(ChildVisit::from))
}

/// What an interface search for child visits narrows by (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    pub child_ids: Option<Vec<String>>,
    pub ids: Option<Vec<String>>,
    /// The area: a township, or a county/city/province prefix.
    pub township: Option<String>,
    pub prefix: Option<String>,
    /// Visit dates `[from, to)`.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub recorded: crate::ids::TimeRange,
}

/// Child visits matching a filter, by date (then id), one page, and how many match in all.
pub fn find_visits(
    conn: &mut AnyConnection,
    f: &VisitFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ChildVisit>, i64)> {
    let build = || {
        let mut q = child_visits::table.into_boxed();
        if let Some(ids) = &f.child_ids {
            q = q.filter(child_visits::child_id.eq_any(ids.clone()));
        }
        if let Some(ids) = &f.ids {
            q = q.filter(child_visits::id.eq_any(ids.clone()));
        }
        if let Some(t) = &f.township {
            q = q.filter(child_visits::township_code.eq(t.clone()));
        }
        if let Some(p) = &f.prefix {
            q = q.filter(child_visits::jurisdiction.like(format!("{p}%")));
        }
        if let Some(d) = f.date_from {
            q = q.filter(child_visits::visit_date.ge(d));
        }
        if let Some(d) = f.date_to {
            q = q.filter(child_visits::visit_date.lt(d));
        }
        if let Some(t) = f.recorded.from {
            q = q.filter(child_visits::recorded_at.ge(t));
        }
        if let Some(t) = f.recorded.to {
            q = q.filter(child_visits::recorded_at.lt(t));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<VisitRow> = build()
        .order((child_visits::visit_date.asc(), child_visits::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(VisitRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(ChildVisit::from).collect(), total))
}

/// Whether a completed dose of this vaccine (system and code) is recorded for her within
/// `[from, to)` (UTC): the same dose reported twice is recorded once.
pub fn dose_on(
    conn: &mut AnyConnection,
    person_id: &str,
    system: &str,
    code: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<bool> {
    let n: i64 = immunizations::table
        .filter(immunizations::person_id.eq(person_id))
        .filter(immunizations::vaccine_system.eq(system))
        .filter(immunizations::vaccine_code.eq(code))
        .filter(immunizations::status.eq("completed"))
        .filter(immunizations::occurrence_at.ge(from))
        .filter(immunizations::occurrence_at.lt(to))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// What a search for children's records narrows by (the FHIR RelatedPerson "mother" links).
#[derive(Debug, Clone, Default)]
pub struct ChildFilter {
    pub ids: Option<Vec<String>>,
    pub township: Option<String>,
    pub prefix: Option<String>,
    /// When the link last changed: the later of the child record's creation and her mother's
    /// record's last change (what the link shows of the mother comes from her record).
    pub changed: crate::ids::TimeRange,
}

/// Children's records matching a filter, newest birth first, one page, and how many in all.
pub fn find_children(
    conn: &mut AnyConnection,
    f: &ChildFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ChildRecord>, i64)> {
    use crate::storage::schema::persons;
    let build = || {
        let mut q = children::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(children::person_id.eq_any(ids.clone()));
        }
        if let Some(t) = &f.township {
            q = q.filter(children::township_code.eq(t.clone()));
        }
        if let Some(p) = &f.prefix {
            q = q.filter(children::jurisdiction.like(format!("{p}%")));
        }
        if let Some(t) = f.changed.from {
            q =
                q.filter(children::created_at.ge(t).or(
                    children::mother_id.eq_any(persons::table.filter(persons::updated_at.ge(t)).select(persons::id)),
                ));
        }
        if let Some(t) = f.changed.to {
            q = q.filter(children::created_at.lt(t)).filter(
                children::mother_id.eq_any(persons::table.filter(persons::updated_at.lt(t)).select(persons::id)),
            );
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<ChildRow> = build()
        .order((children::birth_at.desc(), children::person_id.asc()))
        .offset(offset)
        .limit(limit)
        .select(ChildRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}
