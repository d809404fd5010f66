//! Observation queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{Observation, StoredResult, interpretation_label};
use crate::auth::model::Scope;
use crate::ids::TimeRange;
use crate::storage::schema::observations;
use crate::storage::{AnyConnection, history};

/// The entity name of results among record identifiers (`record_identifiers.entity`).
pub const ENTITY: &str = "observation";

/// One row to insert. A fetal-sex finding has every value field None (the table's CHECK
/// refuses anything else).
pub struct NewObservation<'a> {
    pub id: &'a str,
    pub person_id: &'a str,
    pub pregnancy_id: Option<&'a str>,
    pub jurisdiction: &'a str,
    pub township_code: Option<&'a str>,
    pub code_system: &'a str,
    pub code: &'a str,
    pub code_text: &'a str,
    pub concept: Option<&'a str>,
    pub loinc: Option<&'a str>,
    pub value_type: &'a str,
    pub value_text: Option<&'a str>,
    pub value_num: Option<f64>,
    pub unit: Option<&'a str>,
    pub interpretation: Option<&'a str>,
    pub abnormal_flag: Option<&'a str>,
    pub effective_at: NaiveDateTime,
    pub source_message_id: &'a str,
    pub facility_id: &'a str,
    pub status: &'a str,
    pub flagged_fetal_sex: bool,
    pub created_at: NaiveDateTime,
    /// The document the result came as (a FHIR Observation), kept for what the columns do not hold.
    pub received: Option<&'a str>,
}

impl From<&NewObservation<'_>> for StoredResult {
    /// The result as [`insert`] stores it (what [`by_id`] reads back): the writer need not read
    /// its own insert again.
    fn from(o: &NewObservation<'_>) -> StoredResult {
        let owned = |v: Option<&str>| v.map(str::to_string);
        StoredResult {
            id: o.id.to_string(),
            person_id: o.person_id.to_string(),
            pregnancy_id: owned(o.pregnancy_id),
            jurisdiction: o.jurisdiction.to_string(),
            township_code: owned(o.township_code),
            code_system: o.code_system.to_string(),
            code: o.code.to_string(),
            code_text: o.code_text.to_string(),
            concept: owned(o.concept),
            loinc: owned(o.loinc),
            value_type: o.value_type.to_string(),
            value_text: owned(o.value_text),
            value_num: o.value_num,
            unit: owned(o.unit),
            interpretation: owned(o.interpretation),
            abnormal_flag: owned(o.abnormal_flag),
            effective_at: o.effective_at,
            source_message_id: o.source_message_id.to_string(),
            facility_id: o.facility_id.to_string(),
            status: o.status.to_string(),
            created_at: o.created_at,
            received: owned(o.received),
            identifiers: Vec::new(),
        }
    }
}

pub fn insert(conn: &mut AnyConnection, o: &NewObservation<'_>) -> QueryResult<()> {
    diesel::insert_into(observations::table)
        .values((
            observations::id.eq(o.id),
            observations::person_id.eq(o.person_id),
            observations::pregnancy_id.eq(o.pregnancy_id),
            observations::jurisdiction.eq(o.jurisdiction),
            observations::township_code.eq(o.township_code),
            observations::code_system.eq(o.code_system),
            observations::code.eq(o.code),
            observations::code_text.eq(o.code_text),
            observations::concept.eq(o.concept),
            observations::loinc.eq(o.loinc),
            observations::value_type.eq(o.value_type),
            observations::value_text.eq(o.value_text),
            observations::value_num.eq(o.value_num),
            observations::unit.eq(o.unit),
            observations::interpretation.eq(o.interpretation),
            observations::abnormal_flag.eq(o.abnormal_flag),
            observations::effective_at.eq(o.effective_at),
            observations::source_message_id.eq(o.source_message_id),
            observations::facility_id.eq(o.facility_id),
            observations::status.eq(o.status),
            observations::flagged_fetal_sex.eq(o.flagged_fetal_sex),
            observations::created_at.eq(o.created_at),
            observations::received.eq(o.received),
        ))
        .execute(conn)
        .map(|_| ())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = observations)]
struct Row {
    id: String,
    person_id: String,
    pregnancy_id: Option<String>,
    code_system: String,
    code: String,
    code_text: String,
    concept: Option<String>,
    loinc: Option<String>,
    value_text: Option<String>,
    value_num: Option<f64>,
    unit: Option<String>,
    interpretation: Option<String>,
    abnormal_flag: Option<String>,
    effective_at: NaiveDateTime,
    status: String,
    source_message_id: String,
}

/// A pregnancy's results, newest first — never a fetal-sex finding.
pub fn for_pregnancy(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<Observation>> {
    let rows: Vec<Row> = observations::table
        .filter(observations::pregnancy_id.eq(pregnancy_id))
        .filter(observations::flagged_fetal_sex.eq(false))
        .order((observations::effective_at.desc(), observations::created_at.desc()))
        .select(Row::as_select())
        .load(conn)?;
    let cat = super::model::catalogue();
    Ok(rows
        .into_iter()
        .map(|r| Observation {
            label: r
                .concept
                .as_deref()
                .and_then(|c| cat.concept(c))
                .map(|c| c.label.clone())
                .unwrap_or_else(|| r.code_text.clone()),
            interpretation_label: interpretation_label(r.interpretation.as_deref()),
            id: r.id,
            person_id: r.person_id,
            pregnancy_id: r.pregnancy_id,
            code_system: r.code_system,
            code: r.code,
            code_text: r.code_text,
            concept: r.concept,
            loinc: r.loinc,
            value_text: r.value_text,
            value_num: r.value_num,
            unit: r.unit,
            interpretation: r.interpretation,
            abnormal_flag: r.abnormal_flag,
            effective_at: r.effective_at,
            status: r.status,
            source_message_id: r.source_message_id,
        })
        .collect())
}

/// Interpreted results of a pregnancy that can decide a fact: (concept, number, positive/negative,
/// effective time, recorded time, status).
pub type FactRow = (
    String,
    Option<f64>,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    String,
);

pub fn fact_rows(conn: &mut AnyConnection, pregnancy_id: &str) -> QueryResult<Vec<FactRow>> {
    observations::table
        .filter(observations::pregnancy_id.eq(pregnancy_id))
        .filter(observations::flagged_fetal_sex.eq(false))
        .filter(observations::concept.is_not_null())
        .select((
            observations::concept.assume_not_null(),
            observations::value_num,
            observations::interpretation,
            observations::effective_at,
            observations::created_at,
            observations::status,
        ))
        .load(conn)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = observations)]
struct FullRow {
    id: String,
    person_id: String,
    pregnancy_id: Option<String>,
    jurisdiction: String,
    township_code: Option<String>,
    code_system: String,
    code: String,
    code_text: String,
    concept: Option<String>,
    loinc: Option<String>,
    value_type: String,
    value_text: Option<String>,
    value_num: Option<f64>,
    unit: Option<String>,
    interpretation: Option<String>,
    abnormal_flag: Option<String>,
    effective_at: NaiveDateTime,
    source_message_id: String,
    facility_id: String,
    status: String,
    created_at: NaiveDateTime,
    received: Option<String>,
}

impl From<FullRow> for StoredResult {
    fn from(r: FullRow) -> StoredResult {
        StoredResult {
            id: r.id,
            person_id: r.person_id,
            pregnancy_id: r.pregnancy_id,
            jurisdiction: r.jurisdiction,
            township_code: r.township_code,
            code_system: r.code_system,
            code: r.code,
            code_text: r.code_text,
            concept: r.concept,
            loinc: r.loinc,
            value_type: r.value_type,
            value_text: r.value_text,
            value_num: r.value_num,
            unit: r.unit,
            interpretation: r.interpretation,
            abnormal_flag: r.abnormal_flag,
            effective_at: r.effective_at,
            source_message_id: r.source_message_id,
            facility_id: r.facility_id,
            status: r.status,
            created_at: r.created_at,
            received: r.received,
            identifiers: Vec::new(),
        }
    }
}

/// One result by id — never a fetal-sex finding (it is as if it did not exist).
pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<StoredResult>> {
    Ok(observations::table
        .find(id)
        .filter(observations::flagged_fetal_sex.eq(false))
        .select(FullRow::as_select())
        .first(conn)
        .optional()?
        .map(StoredResult::from))
}

/// A code criterion: the code, and the stored code systems it may be in (None: any). With
/// `loinc`, a result whose concept maps to that LOINC code matches too (a local code `HB` is
/// found as LOINC 718-7).
#[derive(Debug, Clone, Default)]
pub struct CodeMatch {
    pub code: String,
    pub systems: Option<Vec<String>>,
    pub loinc: bool,
}

/// What [`find`] filters on (every field optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub ids: Option<Vec<String>>,
    pub person_id: Option<String>,
    pub pregnancy_id: Option<String>,
    pub effective: TimeRange,
    /// Any of these codes.
    pub codes: Option<Vec<CodeMatch>>,
    /// Any of these stored statuses.
    pub statuses: Option<Vec<String>>,
    pub created: TimeRange,
    pub scope: Option<Scope>,
}

type Backend = <AnyConnection as diesel::Connection>::Backend;
type Cond = Box<
    dyn BoxableExpression<observations::table, Backend, SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>>,
>;

fn code_condition(m: &CodeMatch) -> Cond {
    let code: Cond = match &m.systems {
        Some(systems) => Box::new(
            observations::code
                .eq(m.code.clone())
                .and(observations::code_system.eq_any(systems.clone()))
                .nullable(),
        ),
        None => Box::new(observations::code.eq(m.code.clone()).nullable()),
    };
    if m.loinc {
        Box::new(code.or(observations::loinc.eq(m.code.clone())))
    } else {
        code
    }
}

/// Results matching a filter, newest effective time first, one page of them, and how many match
/// in all — never a fetal-sex finding. With a person the `observations_person_effective` index
/// serves both the count and the page.
pub fn find(
    conn: &mut AnyConnection,
    f: &ResultFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<StoredResult>, i64)> {
    let build = || {
        let mut q = observations::table
            .filter(observations::flagged_fetal_sex.eq(false))
            .into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(observations::id.eq_any(ids.clone()));
        }
        if let Some(p) = &f.person_id {
            q = q.filter(observations::person_id.eq(p.clone()));
        }
        if let Some(p) = &f.pregnancy_id {
            q = q.filter(observations::pregnancy_id.eq(p.clone()));
        }
        if let Some(t) = f.effective.from {
            q = q.filter(observations::effective_at.ge(t));
        }
        if let Some(t) = f.effective.to {
            q = q.filter(observations::effective_at.lt(t));
        }
        if let Some(codes) = &f.codes {
            let mut any: Option<Cond> = None;
            for m in codes {
                let c = code_condition(m);
                any = Some(match any {
                    Some(prev) => Box::new(prev.or(c)),
                    None => c,
                });
            }
            match any {
                Some(c) => q = q.filter(c),
                None => q = q.filter(observations::id.ne(observations::id)),
            }
        }
        if let Some(s) = &f.statuses {
            q = q.filter(observations::status.eq_any(s.clone()));
        }
        if let Some(t) = f.created.from {
            q = q.filter(observations::created_at.ge(t));
        }
        if let Some(t) = f.created.to {
            q = q.filter(observations::created_at.lt(t));
        }
        match f.scope.as_ref().map(|s| s.filters()) {
            Some((Some(t), _)) => q = q.filter(observations::township_code.eq(t.to_string())),
            // A county's own code is matched whole (an index can serve it), a city or province by prefix.
            Some((None, Some(p))) if p.len() == 6 => q = q.filter(observations::jurisdiction.eq(p.to_string())),
            Some((None, Some(p))) => q = q.filter(observations::jurisdiction.like(format!("{p}%"))),
            _ => {}
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<FullRow> = build()
        .order((observations::effective_at.desc(), observations::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(FullRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(StoredResult::from).collect(), total))
}

/// Claim a business identifier for a result; false when another result holds it.
pub fn claim_identifier(conn: &mut AnyConnection, system: &str, value: &str, id: &str) -> QueryResult<bool> {
    history::claim_identifier(conn, ENTITY, system, value, id)
}

/// The results holding an identifier (system None: any system).
pub fn identifier_holders(conn: &mut AnyConnection, system: Option<&str>, value: &str) -> QueryResult<Vec<String>> {
    history::identifier_holder(conn, ENTITY, system, value)
}

pub fn identifiers_of(conn: &mut AnyConnection, id: &str) -> QueryResult<Vec<(String, String)>> {
    history::identifiers_of(conn, ENTITY, id)
}

/// Fill in the identifiers of a page of records (one query).
pub fn with_identifiers(conn: &mut AnyConnection, records: &mut [StoredResult]) -> QueryResult<()> {
    history::fill_identifiers(conn, ENTITY, records, |r| &r.id, |r| &mut r.identifiers)
}
