//! Immunization queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::Immunization;
use crate::auth::model::Scope;
use crate::ids::TimeRange;
use crate::storage::schema::immunizations;
use crate::storage::{AnyConnection, history};

/// The entity name of immunizations among record identifiers (`record_identifiers.entity`).
pub const ENTITY: &str = "immunization";

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = immunizations)]
struct Row {
    id: String,
    person_id: String,
    jurisdiction: String,
    township_code: Option<String>,
    status: String,
    vaccine_system: String,
    vaccine_code: String,
    vaccine_text: String,
    occurrence: String,
    occurrence_at: Option<NaiveDateTime>,
    lot_number: Option<String>,
    facility_id: String,
    recorded_by: String,
    received: Option<String>,
    created_at: NaiveDateTime,
}

impl From<Row> for Immunization {
    fn from(r: Row) -> Immunization {
        Immunization {
            id: r.id,
            person_id: r.person_id,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            status: r.status,
            vaccine_system: r.vaccine_system,
            vaccine_code: r.vaccine_code,
            vaccine_text: r.vaccine_text,
            occurrence: r.occurrence,
            occurrence_at: r.occurrence_at,
            lot_number: r.lot_number,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            received: r.received,
            created_at: r.created_at,
            identifiers: Vec::new(),
        }
    }
}

pub fn insert(conn: &mut AnyConnection, i: &Immunization) -> QueryResult<()> {
    diesel::insert_into(immunizations::table)
        .values(Row {
            id: i.id.clone(),
            person_id: i.person_id.clone(),
            jurisdiction: i.jurisdiction.clone(),
            township_code: i.township_code.clone(),
            status: i.status.clone(),
            vaccine_system: i.vaccine_system.clone(),
            vaccine_code: i.vaccine_code.clone(),
            vaccine_text: i.vaccine_text.clone(),
            occurrence: i.occurrence.clone(),
            occurrence_at: i.occurrence_at,
            lot_number: i.lot_number.clone(),
            facility_id: i.facility_id.clone(),
            recorded_by: i.recorded_by.clone(),
            received: i.received.clone(),
            created_at: i.created_at,
        })
        .execute(conn)
        .map(|_| ())
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Immunization>> {
    Ok(immunizations::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(Immunization::from))
}

/// What [`find`] filters on (every field optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct ImmunizationFilter {
    pub ids: Option<Vec<String>>,
    pub person_id: Option<String>,
    /// When given (a vaccination whose time is only a text matches no range).
    pub occurrence: TimeRange,
    /// (stored systems or None for any, code).
    pub vaccine: Option<(Option<Vec<String>>, String)>,
    pub statuses: Option<Vec<String>>,
    pub created: TimeRange,
    pub scope: Option<Scope>,
}

/// Vaccinations matching a filter, most recent first (those without a time last), one page of
/// them, and how many match in all.
pub fn find(
    conn: &mut AnyConnection,
    f: &ImmunizationFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Immunization>, i64)> {
    let build = || {
        let mut q = immunizations::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(immunizations::id.eq_any(ids.clone()));
        }
        if let Some(p) = &f.person_id {
            q = q.filter(immunizations::person_id.eq(p.clone()));
        }
        if let Some(t) = f.occurrence.from {
            q = q.filter(immunizations::occurrence_at.ge(t));
        }
        if let Some(t) = f.occurrence.to {
            q = q.filter(immunizations::occurrence_at.lt(t));
        }
        if let Some((systems, code)) = &f.vaccine {
            q = q.filter(immunizations::vaccine_code.eq(code.clone()));
            if let Some(s) = systems {
                q = q.filter(immunizations::vaccine_system.eq_any(s.clone()));
            }
        }
        if let Some(s) = &f.statuses {
            q = q.filter(immunizations::status.eq_any(s.clone()));
        }
        if let Some(t) = f.created.from {
            q = q.filter(immunizations::created_at.ge(t));
        }
        if let Some(t) = f.created.to {
            q = q.filter(immunizations::created_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(immunizations::township_code.eq(t.to_string())),
            Some((None, Some(p))) if p.len() == 6 => q = q.filter(immunizations::jurisdiction.eq(p.to_string())),
            Some((None, Some(p))) => q = q.filter(immunizations::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<Row> = build()
        .order((
            immunizations::occurrence_at.is_null(),
            immunizations::occurrence_at.desc(),
            immunizations::id.desc(),
        ))
        .offset(offset)
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(Immunization::from).collect(), total))
}

pub fn claim_identifier(conn: &mut AnyConnection, system: &str, value: &str, id: &str) -> QueryResult<bool> {
    history::claim_identifier(conn, ENTITY, system, value, id)
}

pub fn identifier_holders(conn: &mut AnyConnection, system: Option<&str>, value: &str) -> QueryResult<Vec<String>> {
    history::identifier_holder(conn, ENTITY, system, value)
}

pub fn identifiers_of(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<(String, String)>> {
    history::identifiers_of(conn, ENTITY, id)
}

/// Fill in the identifiers of a page of records (one query).
pub fn with_identifiers(conn: &mut AnyConnection, records: &mut [Immunization]) -> QueryResult<()> {
    history::fill_identifiers(conn, ENTITY, records, |r| &r.id, |r| &mut r.identifiers)
}
