//! Queries of the before-pregnancy records: couples, marriage checks, screenings, follow-ups and
//! birth registrations. Findings, factors and rosters are stored as JSON documents of the model's
//! types (what was typed, field by field); everything a list filters on is a column.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::model::{
    BirthRegistration, Couple, CoupleStatus, EndReason, Findings, Followup, FollowupKind, FollowupResult, FoundFactor,
    Marriage, MarriageAdvice, Partner, PremaritalExam, PrepregnancyExam, RegistrationStatus, RiskClass,
};
use crate::policy::model::{Procedure, RosterChild};
use crate::storage::AnyConnection;
use crate::storage::schema::{
    birth_registrations, couples, persons, premarital_exams, prepregnancy_exams, prepregnancy_followups,
};

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A stored document read back; one that no longer parses (a hand-edited row) reads as the
/// default rather than losing the rest of the record.
fn parse<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

// ------------------------------------------------------------------ couples

#[derive(Queryable, Selectable)]
#[diesel(table_name = couples)]
struct CoupleRow {
    id: String,
    wife_id: String,
    husband_id: String,
    marriage_date: Option<NaiveDate>,
    marriage_cert_no: Option<String>,
    wife_remarriage: bool,
    husband_remarriage: bool,
    wife_province: String,
    husband_province: String,
    status: String,
    ended_on: Option<NaiveDate>,
    end_reason: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
    created_at: NaiveDateTime,
    created_by: String,
    version: i32,
}

impl From<CoupleRow> for Couple {
    fn from(r: CoupleRow) -> Couple {
        Couple {
            id: r.id,
            wife_id: r.wife_id,
            husband_id: r.husband_id,
            marriage: Marriage {
                marriage_date: r.marriage_date,
                marriage_cert_no: r.marriage_cert_no,
                wife_remarriage: r.wife_remarriage,
                husband_remarriage: r.husband_remarriage,
                wife_province: r.wife_province,
                husband_province: r.husband_province,
            },
            status: if r.status == "ended" {
                CoupleStatus::Ended
            } else {
                CoupleStatus::Current
            },
            ended_on: r.ended_on,
            end_reason: r.end_reason.as_deref().and_then(EndReason::parse),
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            created_at: r.created_at,
            created_by: r.created_by,
            version: r.version,
        }
    }
}

pub fn insert_couple(conn: &mut AnyConnection, c: &Couple) -> QueryResult<()> {
    let m = &c.marriage;
    diesel::insert_into(couples::table)
        .values((
            couples::id.eq(&c.id),
            couples::wife_id.eq(&c.wife_id),
            couples::husband_id.eq(&c.husband_id),
            couples::marriage_date.eq(m.marriage_date),
            couples::marriage_cert_no.eq(&m.marriage_cert_no),
            couples::wife_remarriage.eq(m.wife_remarriage),
            couples::husband_remarriage.eq(m.husband_remarriage),
            couples::wife_province.eq(&m.wife_province),
            couples::husband_province.eq(&m.husband_province),
            couples::status.eq(c.status.as_str()),
            couples::ended_on.eq(c.ended_on),
            couples::end_reason.eq(c.end_reason.map(EndReason::as_str)),
            couples::jurisdiction.eq(&c.jurisdiction),
            couples::township_code.eq(&c.township_code),
            couples::created_at.eq(c.created_at),
            couples::created_by.eq(&c.created_by),
            couples::version.eq(c.version),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn couple_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Couple>> {
    Ok(couples::table
        .find(id)
        .select(CoupleRow::as_select())
        .first(conn)
        .optional()?
        .map(Couple::from))
}

/// The person's current couple, as wife or husband (one at most: unique indexes).
pub fn current_couple_of(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Option<Couple>> {
    Ok(couples::table
        .filter(couples::status.eq("current"))
        .filter(couples::wife_id.eq(person_id).or(couples::husband_id.eq(person_id)))
        .select(CoupleRow::as_select())
        .first(conn)
        .optional()?
        .map(Couple::from))
}

/// Every couple the person belongs or belonged to, newest first.
pub fn couples_of(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Vec<Couple>> {
    Ok(couples::table
        .filter(couples::wife_id.eq(person_id).or(couples::husband_id.eq(person_id)))
        .order(couples::created_at.desc())
        .select(CoupleRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Couple::from)
        .collect())
}

/// End a current couple if it is still at `version`; false when it changed meanwhile.
pub fn end_couple(
    conn: &mut AnyConnection,
    id: &str,
    version: i32,
    on: NaiveDate,
    reason: EndReason,
) -> QueryResult<bool> {
    let n = diesel::update(
        couples::table
            .filter(couples::id.eq(id))
            .filter(couples::version.eq(version))
            .filter(couples::status.eq("current")),
    )
    .set((
        couples::status.eq("ended"),
        couples::ended_on.eq(Some(on)),
        couples::end_reason.eq(Some(reason.as_str())),
        couples::version.eq(version + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// How many numbers of a kind were issued in an area and year (`prefix`: kind + area + year).
pub fn issued_with_prefix(conn: &mut AnyConnection, prefix: &str) -> QueryResult<i64> {
    let pattern = format!("{prefix}%");
    if prefix.starts_with("HJ") {
        premarital_exams::table
            .filter(premarital_exams::certificate_no.like(pattern))
            .count()
            .get_result(conn)
    } else if prefix.starts_with("MZ") {
        birth_registrations::table
            .filter(birth_registrations::handbook_no.like(pattern))
            .count()
            .get_result(conn)
    } else {
        birth_registrations::table
            .filter(birth_registrations::registration_no.like(pattern))
            .count()
            .get_result(conn)
    }
}

// ------------------------------------------------------------------ marriage checks

#[derive(Queryable, Selectable)]
#[diesel(table_name = premarital_exams)]
struct PremaritalRow {
    id: String,
    couple_id: String,
    partner: String,
    exam_date: NaiveDate,
    findings: String,
    advice: String,
    advice_reason: Option<String>,
    certificate_no: String,
    facility_id: String,
    recorded_by: String,
    created_at: NaiveDateTime,
}

impl From<PremaritalRow> for PremaritalExam {
    fn from(r: PremaritalRow) -> PremaritalExam {
        PremaritalExam {
            id: r.id,
            couple_id: r.couple_id,
            partner: Partner::parse(&r.partner).unwrap_or(Partner::Wife),
            exam_date: r.exam_date,
            findings: parse(&r.findings),
            // A CHECK constraint keeps the advice to the four codes.
            advice: MarriageAdvice::parse(&r.advice).unwrap_or(MarriageAdvice::MedicalMeasures),
            advice_reason: r.advice_reason,
            certificate_no: r.certificate_no,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
        }
    }
}

pub fn insert_premarital(conn: &mut AnyConnection, e: &PremaritalExam) -> QueryResult<()> {
    diesel::insert_into(premarital_exams::table)
        .values((
            premarital_exams::id.eq(&e.id),
            premarital_exams::couple_id.eq(&e.couple_id),
            premarital_exams::partner.eq(e.partner.as_str()),
            premarital_exams::exam_date.eq(e.exam_date),
            premarital_exams::findings.eq(json(&e.findings)),
            premarital_exams::advice.eq(e.advice.as_str()),
            premarital_exams::advice_reason.eq(&e.advice_reason),
            premarital_exams::certificate_no.eq(&e.certificate_no),
            premarital_exams::facility_id.eq(&e.facility_id),
            premarital_exams::recorded_by.eq(&e.recorded_by),
            premarital_exams::created_at.eq(e.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn premaritals_of(conn: &mut AnyConnection, couple_id: &str) -> QueryResult<Vec<PremaritalExam>> {
    Ok(premarital_exams::table
        .filter(premarital_exams::couple_id.eq(couple_id))
        .order((premarital_exams::exam_date.desc(), premarital_exams::created_at.desc()))
        .select(PremaritalRow::as_select())
        .load(conn)?
        .into_iter()
        .map(PremaritalExam::from)
        .collect())
}

// ------------------------------------------------------------------ screenings

#[derive(Queryable, Selectable)]
#[diesel(table_name = prepregnancy_exams)]
struct ExamRow {
    id: String,
    couple_id: String,
    exam_date: NaiveDate,
    wife_findings: String,
    husband_findings: Option<String>,
    risk_class: String,
    factors: String,
    advice: String,
    rule_set: String,
    facility_id: String,
    recorded_by: String,
    created_at: NaiveDateTime,
}

impl From<ExamRow> for PrepregnancyExam {
    fn from(r: ExamRow) -> PrepregnancyExam {
        let factors: Vec<FoundFactor> = parse(&r.factors);
        PrepregnancyExam {
            id: r.id,
            couple_id: r.couple_id,
            exam_date: r.exam_date,
            wife: parse(&r.wife_findings),
            husband: r.husband_findings.as_deref().map(parse::<Findings>),
            // A row whose class is unreadable but holds factors is high risk (the safer reading).
            risk_class: RiskClass::parse(&r.risk_class).unwrap_or(if factors.is_empty() {
                RiskClass::General
            } else {
                RiskClass::High
            }),
            factors,
            advice: r.advice,
            rule_set: r.rule_set,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
        }
    }
}

pub fn insert_exam(conn: &mut AnyConnection, e: &PrepregnancyExam) -> QueryResult<()> {
    diesel::insert_into(prepregnancy_exams::table)
        .values((
            prepregnancy_exams::id.eq(&e.id),
            prepregnancy_exams::couple_id.eq(&e.couple_id),
            prepregnancy_exams::exam_date.eq(e.exam_date),
            prepregnancy_exams::wife_findings.eq(json(&e.wife)),
            prepregnancy_exams::husband_findings.eq(e.husband.as_ref().map(json)),
            prepregnancy_exams::risk_class.eq(e.risk_class.as_str()),
            prepregnancy_exams::factors.eq(json(&e.factors)),
            prepregnancy_exams::advice.eq(&e.advice),
            prepregnancy_exams::rule_set.eq(&e.rule_set),
            prepregnancy_exams::facility_id.eq(&e.facility_id),
            prepregnancy_exams::recorded_by.eq(&e.recorded_by),
            prepregnancy_exams::created_at.eq(e.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn exams_of(conn: &mut AnyConnection, couple_id: &str) -> QueryResult<Vec<PrepregnancyExam>> {
    Ok(prepregnancy_exams::table
        .filter(prepregnancy_exams::couple_id.eq(couple_id))
        .order((
            prepregnancy_exams::exam_date.desc(),
            prepregnancy_exams::created_at.desc(),
        ))
        .select(ExamRow::as_select())
        .load(conn)?
        .into_iter()
        .map(PrepregnancyExam::from)
        .collect())
}

pub fn exam_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<PrepregnancyExam>> {
    Ok(prepregnancy_exams::table
        .find(id)
        .select(ExamRow::as_select())
        .first(conn)
        .optional()?
        .map(PrepregnancyExam::from))
}

/// Her latest screening on or after `since`, in any couple she was the wife of.
pub fn latest_exam_of_wife(
    conn: &mut AnyConnection,
    wife_id: &str,
    since: NaiveDate,
) -> QueryResult<Option<PrepregnancyExam>> {
    Ok(prepregnancy_exams::table
        .inner_join(couples::table.on(couples::id.eq(prepregnancy_exams::couple_id)))
        .filter(couples::wife_id.eq(wife_id))
        .filter(prepregnancy_exams::exam_date.ge(since))
        .order((
            prepregnancy_exams::exam_date.desc(),
            prepregnancy_exams::created_at.desc(),
        ))
        .select(ExamRow::as_select())
        .first(conn)
        .optional()?
        .map(PrepregnancyExam::from))
}

// ------------------------------------------------------------------ follow-ups

#[derive(Queryable, Selectable)]
#[diesel(table_name = prepregnancy_followups)]
struct FollowupRow {
    id: String,
    couple_id: String,
    exam_id: String,
    kind: String,
    due: NaiveDate,
    done_on: Option<NaiveDate>,
    result: Option<String>,
    note: Option<String>,
    pregnancy_id: Option<String>,
    recorded_by: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
}

impl From<FollowupRow> for Followup {
    fn from(r: FollowupRow) -> Followup {
        Followup {
            id: r.id,
            couple_id: r.couple_id,
            exam_id: r.exam_id,
            kind: FollowupKind::parse(&r.kind).unwrap_or(FollowupKind::EarlyPregnancy),
            due: r.due,
            done_on: r.done_on,
            result: r.result.as_deref().and_then(FollowupResult::parse),
            note: r.note,
            pregnancy_id: r.pregnancy_id,
            recorded_by: r.recorded_by,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
        }
    }
}

pub fn insert_followup(conn: &mut AnyConnection, f: &Followup) -> QueryResult<()> {
    diesel::insert_into(prepregnancy_followups::table)
        .values((
            prepregnancy_followups::id.eq(&f.id),
            prepregnancy_followups::couple_id.eq(&f.couple_id),
            prepregnancy_followups::exam_id.eq(&f.exam_id),
            prepregnancy_followups::kind.eq(f.kind.as_str()),
            prepregnancy_followups::due.eq(f.due),
            prepregnancy_followups::done_on.eq(f.done_on),
            prepregnancy_followups::result.eq(f.result.map(FollowupResult::as_str)),
            prepregnancy_followups::note.eq(&f.note),
            prepregnancy_followups::pregnancy_id.eq(&f.pregnancy_id),
            prepregnancy_followups::recorded_by.eq(&f.recorded_by),
            prepregnancy_followups::jurisdiction.eq(&f.jurisdiction),
            prepregnancy_followups::township_code.eq(&f.township_code),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn followups_of(conn: &mut AnyConnection, couple_id: &str) -> QueryResult<Vec<Followup>> {
    Ok(prepregnancy_followups::table
        .filter(prepregnancy_followups::couple_id.eq(couple_id))
        .order(prepregnancy_followups::due.desc())
        .select(FollowupRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Followup::from)
        .collect())
}

/// The couple's open follow-up (one at most: a unique index).
pub fn open_followup_of(conn: &mut AnyConnection, couple_id: &str) -> QueryResult<Option<Followup>> {
    Ok(prepregnancy_followups::table
        .filter(prepregnancy_followups::couple_id.eq(couple_id))
        .filter(prepregnancy_followups::done_on.is_null())
        .select(FollowupRow::as_select())
        .first(conn)
        .optional()?
        .map(Followup::from))
}

/// Record a follow-up's result if it is still open; false when someone answered it meanwhile.
pub fn complete_followup(
    conn: &mut AnyConnection,
    id: &str,
    result: FollowupResult,
    done_on: NaiveDate,
    note: Option<&str>,
    pregnancy_id: Option<&str>,
    recorded_by: &str,
) -> QueryResult<bool> {
    let n = diesel::update(
        prepregnancy_followups::table
            .filter(prepregnancy_followups::id.eq(id))
            .filter(prepregnancy_followups::done_on.is_null()),
    )
    .set((
        prepregnancy_followups::result.eq(Some(result.as_str())),
        prepregnancy_followups::done_on.eq(Some(done_on)),
        prepregnancy_followups::note.eq(note),
        prepregnancy_followups::pregnancy_id.eq(pregnancy_id),
        prepregnancy_followups::recorded_by.eq(Some(recorded_by)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// A newer screening restarts the couple's open 早孕随访 from its date.
pub fn restart_followup(conn: &mut AnyConnection, id: &str, exam_id: &str, due: NaiveDate) -> QueryResult<()> {
    diesel::update(prepregnancy_followups::table.find(id))
        .set((
            prepregnancy_followups::exam_id.eq(exam_id),
            prepregnancy_followups::due.eq(due),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Link her open 妊娠结局随访 to the pregnancy she booked, due from its EDD.
pub fn link_followup(conn: &mut AnyConnection, id: &str, pregnancy_id: &str, due: NaiveDate) -> QueryResult<()> {
    diesel::update(prepregnancy_followups::table.find(id))
        .set((
            prepregnancy_followups::pregnancy_id.eq(Some(pregnancy_id)),
            prepregnancy_followups::due.eq(due),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An open follow-up on a worklist, with the couple's names.
#[derive(Debug, Clone)]
pub struct DueRow {
    pub followup: Followup,
    pub wife_name: String,
    pub wife_id: String,
}

/// Open follow-ups in an area due on or before `until`, earliest first, at most `limit`; and how
/// many there are in all.
pub fn due_followups(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    until: NaiveDate,
    limit: i64,
) -> QueryResult<(Vec<DueRow>, i64)> {
    macro_rules! scoped {
        () => {{
            let mut q = prepregnancy_followups::table
                .inner_join(couples::table.on(couples::id.eq(prepregnancy_followups::couple_id)))
                .inner_join(persons::table.on(persons::id.eq(couples::wife_id)))
                .filter(prepregnancy_followups::done_on.is_null())
                .filter(prepregnancy_followups::due.le(until))
                // An ended marriage's follow-up stays as history, off the worklists.
                .filter(couples::status.eq("current"))
                .into_boxed();
            if let Some(t) = township {
                q = q.filter(prepregnancy_followups::township_code.eq(t.to_string()));
            }
            if let Some(p) = prefix {
                q = q.filter(prepregnancy_followups::jurisdiction.like(format!("{p}%")));
            }
            q
        }};
    }
    let total: i64 = scoped!().count().get_result(conn)?;
    let rows: Vec<(FollowupRow, String, String)> = scoped!()
        .order((prepregnancy_followups::due.asc(), prepregnancy_followups::id.asc()))
        .limit(limit)
        .select((FollowupRow::as_select(), persons::name, persons::id))
        .load(conn)?;
    Ok((
        rows.into_iter()
            .map(|(f, wife_name, wife_id)| DueRow {
                followup: f.into(),
                wife_name,
                wife_id,
            })
            .collect(),
        total,
    ))
}

/// (township, couple id, screening date, its risk class, an answered 早孕随访's result).
pub type ScreeningCountRow = (Option<String>, String, NaiveDate, String, Option<String>);

/// The screenings dated in `[from, to]` in an area, each with every answered 早孕随访 of its
/// couple (the service counts couples: screened, high risk, pregnant, lost).
pub fn township_counts(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<ScreeningCountRow>> {
    let mut q = prepregnancy_exams::table
        .inner_join(couples::table.on(couples::id.eq(prepregnancy_exams::couple_id)))
        .left_join(
            prepregnancy_followups::table.on(prepregnancy_followups::couple_id
                .eq(prepregnancy_exams::couple_id)
                .and(prepregnancy_followups::kind.eq("early_pregnancy"))
                .and(prepregnancy_followups::done_on.is_not_null())),
        )
        .filter(prepregnancy_exams::exam_date.ge(from))
        .filter(prepregnancy_exams::exam_date.le(to))
        .into_boxed();
    if let Some(t) = township {
        q = q.filter(couples::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(couples::jurisdiction.like(format!("{p}%")));
    }
    q.select((
        couples::township_code,
        couples::id,
        prepregnancy_exams::exam_date,
        prepregnancy_exams::risk_class,
        prepregnancy_followups::result.nullable(),
    ))
    .load(conn)
}

// ------------------------------------------------------------------ birth registrations

#[derive(Queryable, Selectable)]
#[diesel(table_name = birth_registrations)]
struct RegistrationRow {
    id: String,
    couple_id: String,
    registration_no: String,
    handbook_no: String,
    registered_on: NaiveDate,
    birth_order: i32,
    procedure: String,
    status: String,
    rule: String,
    source: String,
    province: String,
    decision_due: Option<NaiveDate>,
    decided_on: Option<NaiveDate>,
    children: String,
    explanation: String,
    pregnancy_id: Option<String>,
    facility_id: String,
    recorded_by: String,
    created_at: NaiveDateTime,
}

impl From<RegistrationRow> for BirthRegistration {
    fn from(r: RegistrationRow) -> BirthRegistration {
        let procedure = match r.procedure.as_str() {
            "registration" => Procedure::Registration,
            "not_allowed" => Procedure::NotAllowed,
            _ => Procedure::Approval,
        };
        BirthRegistration {
            id: r.id,
            couple_id: r.couple_id,
            registration_no: r.registration_no,
            handbook_no: r.handbook_no,
            registered_on: r.registered_on,
            birth_order: r.birth_order,
            procedure,
            status: RegistrationStatus::parse(&r.status).unwrap_or(RegistrationStatus::of(procedure)),
            rule: r.rule,
            source: r.source,
            province: r.province,
            decision_due: r.decision_due,
            decided_on: r.decided_on,
            children: parse::<Vec<RosterChild>>(&r.children),
            explanation: parse(&r.explanation),
            pregnancy_id: r.pregnancy_id,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
        }
    }
}

pub fn insert_registration(
    conn: &mut AnyConnection,
    r: &BirthRegistration,
    jurisdiction: &str,
    township: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(birth_registrations::table)
        .values((
            birth_registrations::id.eq(&r.id),
            birth_registrations::couple_id.eq(&r.couple_id),
            birth_registrations::registration_no.eq(&r.registration_no),
            birth_registrations::handbook_no.eq(&r.handbook_no),
            birth_registrations::registered_on.eq(r.registered_on),
            birth_registrations::birth_order.eq(r.birth_order),
            birth_registrations::procedure.eq(r.procedure.as_str()),
            birth_registrations::status.eq(r.status.as_str()),
            birth_registrations::rule.eq(&r.rule),
            birth_registrations::source.eq(&r.source),
            birth_registrations::province.eq(&r.province),
            birth_registrations::decision_due.eq(r.decision_due),
            birth_registrations::decided_on.eq(r.decided_on),
            birth_registrations::children.eq(json(&r.children)),
            birth_registrations::explanation.eq(json(&r.explanation)),
            birth_registrations::pregnancy_id.eq(&r.pregnancy_id),
            birth_registrations::facility_id.eq(&r.facility_id),
            birth_registrations::recorded_by.eq(&r.recorded_by),
            birth_registrations::created_at.eq(r.created_at),
            birth_registrations::jurisdiction.eq(jurisdiction),
            birth_registrations::township_code.eq(township),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn registrations_of(conn: &mut AnyConnection, couple_id: &str) -> QueryResult<Vec<BirthRegistration>> {
    Ok(birth_registrations::table
        .filter(birth_registrations::couple_id.eq(couple_id))
        .order((
            birth_registrations::registered_on.desc(),
            birth_registrations::created_at.desc(),
        ))
        .select(RegistrationRow::as_select())
        .load(conn)?
        .into_iter()
        .map(BirthRegistration::from)
        .collect())
}

pub fn registration_by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<BirthRegistration>> {
    Ok(birth_registrations::table
        .find(id)
        .select(RegistrationRow::as_select())
        .first(conn)
        .optional()?
        .map(BirthRegistration::from))
}

/// The registration a pregnancy was booked under (its 母子健康手册 number).
pub fn registration_of_pregnancy(
    conn: &mut AnyConnection,
    pregnancy_id: &str,
) -> QueryResult<Option<BirthRegistration>> {
    Ok(birth_registrations::table
        .filter(birth_registrations::pregnancy_id.eq(pregnancy_id))
        .order(birth_registrations::created_at.desc())
        .select(RegistrationRow::as_select())
        .first(conn)
        .optional()?
        .map(BirthRegistration::from))
}

pub fn link_registration(conn: &mut AnyConnection, id: &str, pregnancy_id: &str) -> QueryResult<()> {
    diesel::update(birth_registrations::table.find(id))
        .set(birth_registrations::pregnancy_id.eq(Some(pregnancy_id)))
        .execute(conn)
        .map(|_| ())
}

/// Record the approval's decision if the request is still waiting; false otherwise.
pub fn decide_registration(
    conn: &mut AnyConnection,
    id: &str,
    status: RegistrationStatus,
    on: NaiveDate,
) -> QueryResult<bool> {
    let n = diesel::update(
        birth_registrations::table
            .filter(birth_registrations::id.eq(id))
            .filter(birth_registrations::status.eq("awaiting_approval")),
    )
    .set((
        birth_registrations::status.eq(status.as_str()),
        birth_registrations::decided_on.eq(Some(on)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// A waiting registration with the wife's name and id.
pub type WaitingRow = (BirthRegistration, String, String);

/// Requests waiting on an approval in an area, earliest deadline first (at most `limit`), and
/// how many in all; with the wife's name and id.
pub fn waiting_registrations(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    limit: i64,
) -> QueryResult<(Vec<WaitingRow>, i64)> {
    macro_rules! scoped {
        () => {{
            let mut q = birth_registrations::table
                .inner_join(couples::table.on(couples::id.eq(birth_registrations::couple_id)))
                .inner_join(persons::table.on(persons::id.eq(couples::wife_id)))
                .filter(birth_registrations::status.eq("awaiting_approval"))
                .into_boxed();
            if let Some(t) = township {
                q = q.filter(birth_registrations::township_code.eq(t.to_string()));
            }
            if let Some(p) = prefix {
                q = q.filter(birth_registrations::jurisdiction.like(format!("{p}%")));
            }
            q
        }};
    }
    let total: i64 = scoped!().count().get_result(conn)?;
    let rows: Vec<(RegistrationRow, String, String)> = scoped!()
        .order((birth_registrations::decision_due.asc(), birth_registrations::id.asc()))
        .limit(limit)
        .select((RegistrationRow::as_select(), persons::name, persons::id))
        .load(conn)?;
    Ok((rows.into_iter().map(|(r, n, i)| (r.into(), n, i)).collect(), total))
}
