//! Visit queries.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::model::{Visit, VisitKind};
use crate::storage::AnyConnection;
use crate::storage::schema::visits;

#[derive(Queryable, Selectable)]
#[diesel(table_name = visits)]
struct VisitRow {
    id: String,
    pregnancy_id: String,
    person_id: String,
    kind: String,
    visit_date: NaiveDate,
    facility_id: String,
    weight_kg: Option<f64>,
    height_cm: Option<f64>,
    systolic_mmhg: Option<i32>,
    diastolic_mmhg: Option<i32>,
    fundal_height_cm: Option<f64>,
    abdominal_circumference_cm: Option<f64>,
    fetal_heart_rate_bpm: Option<i32>,
    fetal_presentation: Option<String>,
    oedema: Option<String>,
    hb_g_l: Option<i32>,
    urine_protein: Option<String>,
    complaints: String,
    advice: String,
    next_appointment: Option<NaiveDate>,
    recorded_by: String,
    postpartum_recovered: Option<bool>,
    created_at: chrono::NaiveDateTime,
}

impl From<VisitRow> for Visit {
    fn from(r: VisitRow) -> Visit {
        Visit {
            id: r.id,
            pregnancy_id: r.pregnancy_id,
            person_id: r.person_id,
            kind: VisitKind::parse(&r.kind).unwrap_or(VisitKind::Antenatal),
            visit_date: r.visit_date,
            facility_id: r.facility_id,
            weight_kg: r.weight_kg,
            height_cm: r.height_cm,
            systolic_mmhg: r.systolic_mmhg,
            diastolic_mmhg: r.diastolic_mmhg,
            fundal_height_cm: r.fundal_height_cm,
            abdominal_circumference_cm: r.abdominal_circumference_cm,
            fetal_heart_rate_bpm: r.fetal_heart_rate_bpm,
            fetal_presentation: r.fetal_presentation,
            oedema: r.oedema,
            hb_g_l: r.hb_g_l,
            urine_protein: r.urine_protein,
            complaints: r.complaints,
            advice: r.advice,
            next_appointment: r.next_appointment,
            recorded_by: r.recorded_by,
            recorded_at: r.created_at,
            postpartum_recovered: r.postpartum_recovered,
        }
    }
}

pub fn insert(conn: &mut AnyConnection, v: &Visit, jurisdiction: &str, township_code: Option<&str>) -> QueryResult<()> {
    diesel::insert_into(visits::table)
        .values((
            visits::id.eq(&v.id),
            visits::pregnancy_id.eq(&v.pregnancy_id),
            visits::person_id.eq(&v.person_id),
            visits::kind.eq(v.kind.as_str()),
            visits::visit_date.eq(v.visit_date),
            visits::facility_id.eq(&v.facility_id),
            visits::weight_kg.eq(v.weight_kg),
            visits::height_cm.eq(v.height_cm),
            visits::systolic_mmhg.eq(v.systolic_mmhg),
            visits::diastolic_mmhg.eq(v.diastolic_mmhg),
            visits::fundal_height_cm.eq(v.fundal_height_cm),
            visits::abdominal_circumference_cm.eq(v.abdominal_circumference_cm),
            visits::fetal_heart_rate_bpm.eq(v.fetal_heart_rate_bpm),
            visits::fetal_presentation.eq(&v.fetal_presentation),
            visits::oedema.eq(&v.oedema),
            visits::hb_g_l.eq(v.hb_g_l),
            visits::urine_protein.eq(&v.urine_protein),
            visits::complaints.eq(&v.complaints),
            visits::advice.eq(&v.advice),
            visits::next_appointment.eq(v.next_appointment),
            visits::jurisdiction.eq(jurisdiction),
            visits::township_code.eq(township_code),
            visits::recorded_by.eq(&v.recorded_by),
            visits::postpartum_recovered.eq(v.postpartum_recovered),
            visits::created_at.eq(v.recorded_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn for_pregnancy(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<Visit>> {
    Ok(visits::table
        .filter(visits::pregnancy_id.eq(pregnancy_id))
        .order((visits::visit_date.asc(), visits::created_at.asc()))
        .select(VisitRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Visit::from)
        .collect())
}

/// The visits of the worklist's pregnancies: those of the active pregnancies in the area and of
/// the ones delivered since `delivered_since` — the same sets as `pregnancy::repo::active_in_area`
/// and `delivered_since`, read by a join on the covering index `visits (pregnancy_id, visit_date,
/// kind)` instead of one lookup per pregnancy.
pub fn worklist_dates(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    delivered_since: NaiveDate,
) -> QueryResult<WorklistDates> {
    use crate::storage::schema::{deliveries, pregnancies};
    let mut active = visits::table
        .inner_join(pregnancies::table)
        .filter(pregnancies::status.eq("active"))
        .into_boxed();
    let mut delivered = visits::table
        .inner_join(pregnancies::table)
        .inner_join(deliveries::table.on(deliveries::pregnancy_id.eq(visits::pregnancy_id)))
        .filter(pregnancies::status.eq("delivered"))
        .filter(deliveries::delivery_date.ge(delivered_since))
        .into_boxed();
    if let Some(t) = township {
        active = active.filter(pregnancies::township_code.eq(t.to_string()));
        delivered = delivered.filter(pregnancies::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        active = active.filter(pregnancies::jurisdiction.like(format!("{p}%")));
        delivered = delivered.filter(pregnancies::jurisdiction.like(format!("{p}%")));
    }
    Ok(WorklistDates {
        // An antenatal schedule matches contacts by date alone.
        active: active.select((visits::pregnancy_id, visits::visit_date)).load(conn)?,
        delivered: delivered
            .select((visits::pregnancy_id, visits::kind, visits::visit_date))
            .load(conn)?,
    })
}

/// The visit dates a worklist needs: of active pregnancies (pregnancy, date) and of recently
/// delivered ones (pregnancy, kind, date).
pub struct WorklistDates {
    pub active: Vec<(String, NaiveDate)>,
    pub delivered: Vec<(String, String, NaiveDate)>,
}

pub fn count_for_pregnancy(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<i64> {
    visits::table
        .filter(visits::pregnancy_id.eq(pregnancy_id))
        .count()
        .get_result(conn)
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Visit>> {
    Ok(visits::table
        .find(id)
        .select(VisitRow::as_select())
        .first(conn)
        .optional()?
        .map(Visit::from))
}

/// What an interface search for visits asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct VisitFilter {
    pub ids: Option<Vec<String>>,
    pub pregnancy_ids: Option<Vec<String>>,
    /// Visit dates in `[from, to)`.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    /// When the visit was recorded (visits are never changed afterwards).
    pub recorded: crate::ids::TimeRange,
    pub scope: Option<crate::auth::model::Scope>,
}

/// Visits matching a filter by date (then recording order), one page of them, and how many
/// match in all.
pub fn find(conn: &mut AnyConnection, f: &VisitFilter, offset: i64, limit: i64) -> QueryResult<(Vec<Visit>, i64)> {
    let build = || {
        let mut q = visits::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(visits::id.eq_any(ids.clone()));
        }
        if let Some(ids) = &f.pregnancy_ids {
            q = q.filter(visits::pregnancy_id.eq_any(ids.clone()));
        }
        if let Some(d) = f.date_from {
            q = q.filter(visits::visit_date.ge(d));
        }
        if let Some(d) = f.date_to {
            q = q.filter(visits::visit_date.lt(d));
        }
        if let Some(t) = f.recorded.from {
            q = q.filter(visits::created_at.ge(t));
        }
        if let Some(t) = f.recorded.to {
            q = q.filter(visits::created_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(visits::township_code.eq(t.to_string())),
            Some((None, Some(p))) => q = q.filter(visits::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order((visits::visit_date.asc(), visits::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(VisitRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(Visit::from).collect(), total))
}
