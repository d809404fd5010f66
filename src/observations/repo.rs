//! Observation queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{Observation, interpretation_label};
use crate::storage::AnyConnection;
use crate::storage::schema::observations;

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
