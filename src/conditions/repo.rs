//! Condition queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::Condition;
use crate::auth::model::Scope;
use crate::ids::TimeRange;
use crate::storage::schema::conditions;
use crate::storage::{AnyConnection, history};

/// The entity name of conditions among record identifiers (`record_identifiers.entity`).
pub const ENTITY: &str = "condition";

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conditions)]
struct Row {
    id: String,
    person_id: String,
    pregnancy_id: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
    code_system: String,
    code: String,
    code_text: String,
    clinical_status: Option<String>,
    verification_status: Option<String>,
    onset: Option<String>,
    recorded_date: Option<String>,
    facility_id: String,
    recorded_by: String,
    received: Option<String>,
    created_at: NaiveDateTime,
}

impl From<Row> for Condition {
    fn from(r: Row) -> Condition {
        Condition {
            id: r.id,
            person_id: r.person_id,
            pregnancy_id: r.pregnancy_id,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            code_system: r.code_system,
            code: r.code,
            code_text: r.code_text,
            clinical_status: r.clinical_status,
            verification_status: r.verification_status,
            onset: r.onset,
            recorded_date: r.recorded_date,
            facility_id: r.facility_id,
            recorded_by: r.recorded_by,
            received: r.received,
            created_at: r.created_at,
            identifiers: Vec::new(),
        }
    }
}

pub fn insert(conn: &mut AnyConnection, c: &Condition) -> QueryResult<()> {
    diesel::insert_into(conditions::table)
        .values(Row {
            id: c.id.clone(),
            person_id: c.person_id.clone(),
            pregnancy_id: c.pregnancy_id.clone(),
            jurisdiction: c.jurisdiction.clone(),
            township_code: c.township_code.clone(),
            code_system: c.code_system.clone(),
            code: c.code.clone(),
            code_text: c.code_text.clone(),
            clinical_status: c.clinical_status.clone(),
            verification_status: c.verification_status.clone(),
            onset: c.onset.clone(),
            recorded_date: c.recorded_date.clone(),
            facility_id: c.facility_id.clone(),
            recorded_by: c.recorded_by.clone(),
            received: c.received.clone(),
            created_at: c.created_at,
        })
        .execute(conn)
        .map(|_| ())
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<Condition>> {
    Ok(conditions::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(Condition::from))
}

/// What [`find`] filters on (every field optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct ConditionFilter {
    pub ids: Option<Vec<String>>,
    pub person_id: Option<String>,
    /// Conditions of this pregnancy and those of no pregnancy (her standing problems).
    pub pregnancy_id: Option<String>,
    /// (stored systems or None for any, code).
    pub code: Option<(Option<Vec<String>>, String)>,
    pub clinical_statuses: Option<Vec<String>>,
    pub created: TimeRange,
    pub scope: Option<Scope>,
}

/// Conditions matching a filter, newest first, one page of them, and how many match in all.
pub fn find(
    conn: &mut AnyConnection,
    f: &ConditionFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<Condition>, i64)> {
    let build = || {
        let mut q = conditions::table.into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(conditions::id.eq_any(ids.clone()));
        }
        if let Some(p) = &f.person_id {
            q = q.filter(conditions::person_id.eq(p.clone()));
        }
        if let Some(p) = &f.pregnancy_id {
            q = q.filter(
                conditions::pregnancy_id
                    .eq(p.clone())
                    .or(conditions::pregnancy_id.is_null()),
            );
        }
        if let Some((systems, code)) = &f.code {
            q = q.filter(conditions::code.eq(code.clone()));
            if let Some(s) = systems {
                q = q.filter(conditions::code_system.eq_any(s.clone()));
            }
        }
        if let Some(s) = &f.clinical_statuses {
            q = q.filter(conditions::clinical_status.eq_any(s.clone()));
        }
        if let Some(t) = f.created.from {
            q = q.filter(conditions::created_at.ge(t));
        }
        if let Some(t) = f.created.to {
            q = q.filter(conditions::created_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(conditions::township_code.eq(t.to_string())),
            Some((None, Some(p))) if p.len() == 6 => q = q.filter(conditions::jurisdiction.eq(p.to_string())),
            Some((None, Some(p))) => q = q.filter(conditions::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<Row> = build()
        .order((conditions::created_at.desc(), conditions::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(Condition::from).collect(), total))
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
pub fn with_identifiers(conn: &mut AnyConnection, records: &mut [Condition]) -> QueryResult<()> {
    history::fill_identifiers(conn, ENTITY, records, |r| &r.id, |r| &mut r.identifiers)
}
