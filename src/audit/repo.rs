//! Audit queries: append (serialised through the chain head) and reads.

use diesel::prelude::*;

use super::model::{AuditEvent, chain_hash};
use crate::storage::AnyConnection;
use crate::storage::schema::{audit_events, audit_head};

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    seq: i64,
    at: chrono::NaiveDateTime,
    actor_kind: String,
    actor_id: Option<String>,
    actor_name: String,
    actor_role: String,
    facility_id: Option<String>,
    client_addr: Option<String>,
    action: String,
    outcome: String,
    entity_type: String,
    entity_id: Option<String>,
    person_id: Option<String>,
    purpose: String,
    detail: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> AuditEvent {
        AuditEvent {
            seq: r.seq,
            at: r.at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            actor_role: r.actor_role,
            facility_id: r.facility_id,
            client_addr: r.client_addr,
            action: r.action,
            outcome: r.outcome,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            person_id: r.person_id,
            purpose: r.purpose,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Append one event. `e.seq`, `prev_hash` and `hash` are filled in here. Must run inside the
/// caller's transaction: the UPDATE of the head row locks it (PostgreSQL row lock; SQLite's
/// writer lock), so appends from several writers or instances form one chain.
pub fn append(conn: &mut AnyConnection, mut e: AuditEvent) -> QueryResult<AuditEvent> {
    diesel::update(audit_head::table.find(1))
        .set(audit_head::seq.eq(audit_head::seq + 1))
        .execute(conn)?;
    let (seq, prev_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    e.seq = seq;
    e.prev_hash = prev_hash;
    e.hash = chain_hash(&e);
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::seq.eq(e.seq),
            audit_events::at.eq(e.at),
            audit_events::actor_kind.eq(&e.actor_kind),
            audit_events::actor_id.eq(&e.actor_id),
            audit_events::actor_name.eq(&e.actor_name),
            audit_events::actor_role.eq(&e.actor_role),
            audit_events::facility_id.eq(&e.facility_id),
            audit_events::client_addr.eq(&e.client_addr),
            audit_events::action.eq(&e.action),
            audit_events::outcome.eq(&e.outcome),
            audit_events::entity_type.eq(&e.entity_type),
            audit_events::entity_id.eq(&e.entity_id),
            audit_events::person_id.eq(&e.person_id),
            audit_events::purpose.eq(&e.purpose),
            audit_events::detail.eq(&e.detail),
            audit_events::prev_hash.eq(&e.prev_hash),
            audit_events::hash.eq(&e.hash),
        ))
        .execute(conn)?;
    diesel::update(audit_head::table.find(1))
        .set(audit_head::hash.eq(&e.hash))
        .execute(conn)?;
    Ok(e)
}

pub fn head(conn: &mut AnyConnection) -> QueryResult<(i64, String)> {
    audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)
}

/// Rows in `seq` order from `after` (exclusive) up to `upto` (inclusive), at most `limit`.
pub fn page(conn: &mut AnyConnection, after: i64, upto: i64, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::seq.gt(after))
        .filter(audit_events::seq.le(upto))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}

/// Who touched this person's record (newest first), optionally within [from, to).
pub fn for_person(
    conn: &mut AnyConnection,
    person_id: &str,
    from: Option<chrono::NaiveDateTime>,
    to: Option<chrono::NaiveDateTime>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut q = audit_events::table
        .filter(audit_events::person_id.eq(person_id))
        .into_boxed();
    if let Some(from) = from {
        q = q.filter(audit_events::at.ge(from));
    }
    if let Some(to) = to {
        q = q.filter(audit_events::at.lt(to));
    }
    Ok(q.order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}

/// The newest events, optionally only those of one actor name.
pub fn recent(conn: &mut AnyConnection, actor: Option<&str>, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    let mut q = audit_events::table.into_boxed();
    if let Some(a) = actor {
        q = q.filter(audit_events::actor_name.eq(a.to_string()));
    }
    Ok(q.order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}
