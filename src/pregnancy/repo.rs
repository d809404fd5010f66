//! Pregnancy queries.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::model::{Dating, DatingMethod, DeliveredOn, GestationalAge, OnWorklist, Pregnancy, PregnancyStatus};
use crate::ids::now_utc;
use crate::storage::AnyConnection;
use crate::storage::schema::pregnancies;

#[derive(Queryable, Selectable)]
#[diesel(table_name = pregnancies)]
struct PregnancyRow {
    id: String,
    person_id: String,
    status: String,
    booking_date: NaiveDate,
    booking_facility_id: String,
    lmp: Option<NaiveDate>,
    ultrasound_date: Option<NaiveDate>,
    ultrasound_ga_days: Option<i32>,
    dating_method: String,
    edd: NaiveDate,
    gravidity: i32,
    parity: i32,
    jurisdiction: String,
    township_code: Option<String>,
    version: i32,
}

impl From<PregnancyRow> for Pregnancy {
    fn from(r: PregnancyRow) -> Pregnancy {
        Pregnancy {
            id: r.id,
            person_id: r.person_id,
            status: PregnancyStatus::parse(&r.status).unwrap_or(PregnancyStatus::Active),
            booking_date: r.booking_date,
            booking_facility_id: r.booking_facility_id,
            lmp: r.lmp,
            ultrasound_date: r.ultrasound_date,
            ultrasound_ga: r.ultrasound_ga_days.map(|d| GestationalAge { days: i64::from(d) }),
            dating: Dating {
                method: DatingMethod::parse(&r.dating_method).unwrap_or(DatingMethod::Lmp),
                edd: r.edd,
            },
            gravidity: r.gravidity,
            parity: r.parity,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            version: r.version,
        }
    }
}

pub fn insert(conn: &mut AnyConnection, p: &Pregnancy, created_by: &str) -> QueryResult<()> {
    let now = now_utc();
    diesel::insert_into(pregnancies::table)
        .values((
            pregnancies::id.eq(&p.id),
            pregnancies::person_id.eq(&p.person_id),
            pregnancies::status.eq(p.status.as_str()),
            pregnancies::booking_date.eq(p.booking_date),
            pregnancies::booking_facility_id.eq(&p.booking_facility_id),
            pregnancies::lmp.eq(p.lmp),
            pregnancies::ultrasound_date.eq(p.ultrasound_date),
            pregnancies::ultrasound_ga_days.eq(p.ultrasound_ga.map(|g| g.days as i32)),
            pregnancies::dating_method.eq(p.dating.method.as_str()),
            pregnancies::edd.eq(p.dating.edd),
            pregnancies::gravidity.eq(p.gravidity),
            pregnancies::parity.eq(p.parity),
            pregnancies::jurisdiction.eq(&p.jurisdiction),
            pregnancies::township_code.eq(&p.township_code),
            pregnancies::created_by.eq(created_by),
            pregnancies::created_at.eq(now),
            pregnancies::updated_at.eq(now),
            pregnancies::version.eq(p.version),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Pregnancy>> {
    Ok(pregnancies::table
        .find(id)
        .select(PregnancyRow::as_select())
        .first(conn)
        .optional()?
        .map(Pregnancy::from))
}

pub fn for_person(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Vec<Pregnancy>> {
    Ok(pregnancies::table
        .filter(pregnancies::person_id.eq(person_id))
        .order(pregnancies::booking_date.desc())
        .select(PregnancyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Pregnancy::from)
        .collect())
}

pub fn active_for_person(conn: &mut AnyConnection, person_id: &str) -> QueryResult<Option<Pregnancy>> {
    Ok(pregnancies::table
        .filter(pregnancies::person_id.eq(person_id))
        .filter(pregnancies::status.eq("active"))
        .select(PregnancyRow::as_select())
        .first(conn)
        .optional()?
        .map(Pregnancy::from))
}

/// Active pregnancies in an area (a township code, or a GB/T 2260 prefix), as a worklist reads
/// them (only the columns its schedules need: at 10,000 women the width of the rows is the cost).
pub fn active_in_area(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
) -> QueryResult<Vec<OnWorklist>> {
    let mut q = pregnancies::table.filter(pregnancies::status.eq("active")).into_boxed();
    if let Some(t) = township {
        q = q.filter(pregnancies::township_code.eq(t.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(pregnancies::jurisdiction.like(format!("{p}%")));
    }
    Ok(q.select((
        pregnancies::id,
        pregnancies::person_id,
        pregnancies::dating_method,
        pregnancies::edd,
    ))
    .load::<(String, String, String, NaiveDate)>(conn)?
    .into_iter()
    .map(|(id, person_id, method, edd)| on_worklist(id, person_id, &method, edd, None))
    .collect())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = crate::storage::schema::deliveries)]
struct DeliveryRow {
    id: String,
    pregnancy_id: String,
    delivery_date: NaiveDate,
    discharge_date: Option<NaiveDate>,
    facility_name: String,
    mode: String,
    live_births: i32,
    stillbirths: i32,
    maternal_death: bool,
    complications: String,
    recorded_by: String,
}

impl From<DeliveryRow> for super::model::Delivery {
    fn from(r: DeliveryRow) -> Self {
        super::model::Delivery {
            id: r.id,
            pregnancy_id: r.pregnancy_id,
            delivery_date: r.delivery_date,
            discharge_date: r.discharge_date,
            facility_name: r.facility_name,
            mode: r.mode,
            live_births: r.live_births,
            stillbirths: r.stillbirths,
            maternal_death: r.maternal_death,
            complications: r.complications,
            recorded_by: r.recorded_by,
        }
    }
}

pub fn insert_delivery(conn: &mut AnyConnection, d: &super::model::Delivery, p: &Pregnancy) -> QueryResult<()> {
    use crate::storage::schema::deliveries as t;
    diesel::insert_into(t::table)
        .values((
            t::id.eq(&d.id),
            t::pregnancy_id.eq(&d.pregnancy_id),
            t::person_id.eq(&p.person_id),
            t::delivery_date.eq(d.delivery_date),
            t::discharge_date.eq(d.discharge_date),
            t::facility_name.eq(&d.facility_name),
            t::mode.eq(&d.mode),
            t::live_births.eq(d.live_births),
            t::stillbirths.eq(d.stillbirths),
            t::maternal_death.eq(d.maternal_death),
            t::complications.eq(&d.complications),
            t::recorded_by.eq(&d.recorded_by),
            t::jurisdiction.eq(&p.jurisdiction),
            t::township_code.eq(&p.township_code),
            t::created_at.eq(now_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn delivery_for(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Option<super::model::Delivery>> {
    use crate::storage::schema::deliveries as t;
    Ok(t::table
        .filter(t::pregnancy_id.eq(pregnancy_id))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?
        .map(super::model::Delivery::from))
}

/// Change the status of a pregnancy if nobody changed it meanwhile (optimistic lock).
pub fn set_status(conn: &mut AnyConnection, p: &Pregnancy, status: PregnancyStatus) -> QueryResult<bool> {
    let n = diesel::update(
        pregnancies::table
            .find(&p.id)
            .filter(pregnancies::version.eq(p.version)),
    )
    .set((
        pregnancies::status.eq(status.as_str()),
        pregnancies::updated_at.eq(now_utc()),
        pregnancies::version.eq(p.version + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Delivered pregnancies in an area whose delivery was on or after `since` (postpartum care).
pub fn delivered_since(
    conn: &mut AnyConnection,
    township: Option<&str>,
    prefix: Option<&str>,
    since: NaiveDate,
) -> QueryResult<Vec<OnWorklist>> {
    use crate::storage::schema::deliveries as t;
    let mut q = pregnancies::table
        .inner_join(t::table.on(t::pregnancy_id.eq(pregnancies::id)))
        .filter(pregnancies::status.eq("delivered"))
        .filter(t::delivery_date.ge(since))
        .into_boxed();
    if let Some(tc) = township {
        q = q.filter(pregnancies::township_code.eq(tc.to_string()));
    }
    if let Some(p) = prefix {
        q = q.filter(pregnancies::jurisdiction.like(format!("{p}%")));
    }
    Ok(q.select((
        pregnancies::id,
        pregnancies::person_id,
        pregnancies::dating_method,
        pregnancies::edd,
        t::delivery_date,
        t::discharge_date,
        t::maternal_death,
    ))
    .load::<(String, String, String, NaiveDate, NaiveDate, Option<NaiveDate>, bool)>(conn)?
    .into_iter()
    .map(
        |(id, person_id, method, edd, delivery_date, discharge_date, maternal_death)| {
            let delivery = DeliveredOn {
                delivery_date,
                discharge_date,
                maternal_death,
            };
            on_worklist(id, person_id, &method, edd, Some(delivery))
        },
    )
    .collect())
}

/// A worklist's pregnancy from its columns (the dating method as `PregnancyRow` reads it).
fn on_worklist(
    id: String,
    person_id: String,
    method: &str,
    edd: NaiveDate,
    delivery: Option<DeliveredOn>,
) -> OnWorklist {
    OnWorklist {
        id,
        person_id,
        dating: Dating {
            method: DatingMethod::parse(method).unwrap_or(DatingMethod::Lmp),
            edd,
        },
        delivery,
    }
}

/// When a pregnancy record last changed (its FHIR `meta.lastUpdated`).
pub fn updated_at(conn: &mut AnyConnection, id: &str) -> QueryResult<chrono::NaiveDateTime> {
    pregnancies::table.find(id).select(pregnancies::updated_at).first(conn)
}

/// What an interface search for pregnancies asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct PregnancyFilter {
    pub ids: Option<Vec<String>>,
    pub statuses: Option<Vec<&'static str>>,
    /// The episode (booking date to delivery date, open while not delivered) overlaps the China
    /// days `[from, to)`.
    pub period_from: Option<NaiveDate>,
    pub period_to: Option<NaiveDate>,
    pub updated: crate::ids::TimeRange,
    pub scope: Option<crate::auth::model::Scope>,
}

/// Pregnancies matching a filter in creation order (ids are time-ordered), one page of them with
/// when each last changed, and how many match in all.
pub fn find(
    conn: &mut AnyConnection,
    f: &PregnancyFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<(Pregnancy, chrono::NaiveDateTime)>, i64)> {
    use crate::storage::schema::deliveries as d;
    let build = || {
        let mut q = pregnancies::table
            .left_join(d::table.on(d::pregnancy_id.eq(pregnancies::id)))
            .into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(pregnancies::id.eq_any(ids.clone()));
        }
        if let Some(s) = &f.statuses {
            q = q.filter(pregnancies::status.eq_any(s.clone()));
        }
        if let Some(to) = f.period_to {
            q = q.filter(pregnancies::booking_date.lt(to));
        }
        if let Some(from) = f.period_from {
            q = q.filter(d::delivery_date.is_null().or(d::delivery_date.ge(from)));
        }
        if let Some(t) = f.updated.from {
            q = q.filter(pregnancies::updated_at.ge(t));
        }
        if let Some(t) = f.updated.to {
            q = q.filter(pregnancies::updated_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(pregnancies::township_code.eq(t.to_string())),
            Some((None, Some(p))) => q = q.filter(pregnancies::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order(pregnancies::id)
        .offset(offset)
        .limit(limit)
        .select((PregnancyRow::as_select(), pregnancies::updated_at))
        .load::<(PregnancyRow, chrono::NaiveDateTime)>(conn)?;
    Ok((rows.into_iter().map(|(p, u)| (Pregnancy::from(p), u)).collect(), total))
}
