//! Versions of mutable records and business identifiers of interface records — shared by the
//! features so every door (web, HL7, FHIR) keeps them the same way.
//!
//! A feature's repo calls [`record`] in the same transaction as each change to a versioned record
//! (person, pregnancy, referral) with the record as it now is; FHIR `vread` and `_history` read the
//! snapshots back. [`claim_identifier`] backs a business identifier with a primary key, so two
//! concurrent conditional creates cannot both insert (RELIABILITY.md 7).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::AnyConnection;
use super::schema::{record_identifiers, record_versions};

/// One stored version of a record.
#[derive(Debug, Clone, Queryable)]
pub struct Version {
    pub version: i32,
    pub recorded_at: NaiveDateTime,
    pub snapshot: String,
}

/// Keep `snapshot` as version `version` of `entity`/`id`. Writing the same version twice is an
/// error (a lost update would be), so callers bump the version before recording.
pub fn record<T: Serialize>(
    conn: &mut AnyConnection,
    entity: &str,
    id: &str,
    version: i32,
    at: NaiveDateTime,
    snapshot: &T,
) -> QueryResult<()> {
    let text = serde_json::to_string(snapshot).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    diesel::insert_into(record_versions::table)
        .values((
            record_versions::entity.eq(entity),
            record_versions::entity_id.eq(id),
            record_versions::version.eq(version),
            record_versions::recorded_at.eq(at),
            record_versions::snapshot.eq(text),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Every kept version of a record, newest first.
pub fn versions(conn: &mut AnyConnection, entity: &str, id: &str) -> QueryResult<Vec<Version>> {
    record_versions::table
        .filter(record_versions::entity.eq(entity))
        .filter(record_versions::entity_id.eq(id))
        .order(record_versions::version.desc())
        .select((
            record_versions::version,
            record_versions::recorded_at,
            record_versions::snapshot,
        ))
        .load(conn)
}

/// One kept version.
pub fn version(conn: &mut AnyConnection, entity: &str, id: &str, version: i32) -> QueryResult<Option<Version>> {
    record_versions::table
        .filter(record_versions::entity.eq(entity))
        .filter(record_versions::entity_id.eq(id))
        .filter(record_versions::version.eq(version))
        .select((
            record_versions::version,
            record_versions::recorded_at,
            record_versions::snapshot,
        ))
        .first(conn)
        .optional()
}

/// Remove the versions of a record that is itself removed (a merged person: `person_merges`
/// keeps what she was).
pub fn forget(conn: &mut AnyConnection, entity: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        record_versions::table
            .filter(record_versions::entity.eq(entity))
            .filter(record_versions::entity_id.eq(id)),
    )
    .execute(conn)
}

/// Claim a business identifier for a record. Returns `Ok(false)` when another record holds it
/// already (the unique key decides, so concurrent claims cannot both win).
pub fn claim_identifier(
    conn: &mut AnyConnection,
    entity: &str,
    system: &str,
    value: &str,
    id: &str,
) -> QueryResult<bool> {
    // In a savepoint: on PostgreSQL a failed statement would otherwise abort the whole transaction.
    let inserted = super::savepoint(conn, |c| {
        diesel::insert_into(record_identifiers::table)
            .values((
                record_identifiers::entity.eq(entity),
                record_identifiers::system.eq(system),
                record_identifiers::value.eq(value),
                record_identifiers::entity_id.eq(id),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The record holding an identifier, if any (`system` None: any system).
pub fn identifier_holder(
    conn: &mut AnyConnection,
    entity: &str,
    system: Option<&str>,
    value: &str,
) -> QueryResult<Vec<String>> {
    let mut q = record_identifiers::table
        .filter(record_identifiers::entity.eq(entity))
        .filter(record_identifiers::value.eq(value))
        .select(record_identifiers::entity_id)
        .into_boxed();
    if let Some(s) = system {
        q = q.filter(record_identifiers::system.eq(s));
    }
    q.limit(100).load(conn)
}

/// The identifiers of a record, as (system, value).
pub fn identifiers_of(conn: &mut AnyConnection, entity: &str, id: &str) -> QueryResult<Vec<(String, String)>> {
    record_identifiers::table
        .filter(record_identifiers::entity.eq(entity))
        .filter(record_identifiers::entity_id.eq(id))
        .order((record_identifiers::system, record_identifiers::value))
        .select((record_identifiers::system, record_identifiers::value))
        .load(conn)
}

/// The identifiers of several records of one entity, as (record id, system, value) — one query
/// for a page of search results.
pub fn identifiers_of_many(
    conn: &mut AnyConnection,
    entity: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    record_identifiers::table
        .filter(record_identifiers::entity.eq(entity))
        .filter(record_identifiers::entity_id.eq_any(ids))
        .order((
            record_identifiers::entity_id,
            record_identifiers::system,
            record_identifiers::value,
        ))
        .select((
            record_identifiers::entity_id,
            record_identifiers::system,
            record_identifiers::value,
        ))
        .load(conn)
}

/// Fill in the business identifiers of a page of records of one entity with one query: `id_of`
/// names a record, `identifiers` is where its (system, value) pairs go.
pub fn fill_identifiers<T>(
    conn: &mut AnyConnection,
    entity: &str,
    records: &mut [T],
    id_of: impl Fn(&T) -> &str,
    identifiers: impl Fn(&mut T) -> &mut Vec<(String, String)>,
) -> QueryResult<()> {
    let ids: Vec<String> = records.iter().map(|r| id_of(r).to_string()).collect();
    for (id, system, value) in identifiers_of_many(conn, entity, &ids)? {
        if let Some(r) = records.iter_mut().find(|r| id_of(r) == id) {
            identifiers(r).push((system, value));
        }
    }
    Ok(())
}
