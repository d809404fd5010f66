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

thread_local! {
    /// The audit events of read-only work running on this thread's pooled connection, while a
    /// [`Deferred`] is alive: the writer appends them before the answer goes out.
    static DEFERRED: std::cell::RefCell<Option<Vec<AuditEvent>>> = const { std::cell::RefCell::new(None) };
}

/// While alive, [`append_many`] on this thread collects its events instead of writing them
/// (see `audit::service::read_audited`). Dropping it — a panic included — ends the collection,
/// so a pooled thread never keeps collecting for later work.
pub struct Deferred(());

impl Deferred {
    pub fn start() -> Deferred {
        DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
        Deferred(())
    }

    /// The events collected, in the order they were recorded.
    pub fn finish(self) -> Vec<AuditEvent> {
        DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.borrow_mut().take());
    }
}

/// Append one event. `e.seq`, `prev_hash` and `hash` are filled in here. Must run inside the
/// caller's transaction; see [`append_many`] for how the chain stays one chain.
pub fn append(conn: &mut AnyConnection, e: AuditEvent) -> QueryResult<AuditEvent> {
    let mut done = append_many(conn, vec![e])?;
    done.pop().ok_or(diesel::result::Error::NotFound)
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditRow<'a> {
    seq: i64,
    at: chrono::NaiveDateTime,
    actor_kind: &'a str,
    actor_id: Option<&'a str>,
    actor_name: &'a str,
    actor_role: &'a str,
    facility_id: Option<&'a str>,
    client_addr: Option<&'a str>,
    action: &'a str,
    outcome: &'a str,
    entity_type: &'a str,
    entity_id: Option<&'a str>,
    person_id: Option<&'a str>,
    purpose: &'a str,
    detail: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

impl<'a> From<&'a AuditEvent> for NewAuditRow<'a> {
    fn from(e: &'a AuditEvent) -> NewAuditRow<'a> {
        NewAuditRow {
            seq: e.seq,
            at: e.at,
            actor_kind: &e.actor_kind,
            actor_id: e.actor_id.as_deref(),
            actor_name: &e.actor_name,
            actor_role: &e.actor_role,
            facility_id: e.facility_id.as_deref(),
            client_addr: e.client_addr.as_deref(),
            action: &e.action,
            outcome: &e.outcome,
            entity_type: &e.entity_type,
            entity_id: e.entity_id.as_deref(),
            person_id: e.person_id.as_deref(),
            purpose: &e.purpose,
            detail: &e.detail,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }
    }
}

/// Append several events (a list page audits every woman it shows) after the chain head, then
/// move the head: one read of the head, the inserts, one update.
///
/// One chain however many writers: the head row is read locked. On PostgreSQL `FOR UPDATE`
/// holds it until the transaction ends (the group-commit writer already took it first in the
/// batch, so this costs nothing there); on SQLite the transaction holds the database's write lock
/// (the writer's `BEGIN IMMEDIATE`), and a deferred transaction that read an older head fails
/// with SQLITE_BUSY_SNAPSHOT at the update instead of forking the chain.
pub fn append_many(conn: &mut AnyConnection, mut events: Vec<AuditEvent>) -> QueryResult<Vec<AuditEvent>> {
    if events.is_empty() {
        return Ok(events);
    }
    let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(collected) => {
            collected.extend(events.iter().cloned());
            true
        }
        None => false,
    });
    if deferred {
        return Ok(events);
    }
    let head = audit_head::table.find(1).select((audit_head::seq, audit_head::hash));
    let (mut seq, mut prev): (i64, String) = match conn {
        AnyConnection::Sqlite(c) => head.first(c)?,
        AnyConnection::Postgresql(c) => head.for_update().first(c)?,
    };
    for e in events.iter_mut() {
        seq += 1;
        e.seq = seq;
        e.prev_hash = prev;
        e.hash = chain_hash(e);
        prev = e.hash.clone();
    }
    // One row at a time on SQLite: diesel runs a multi-row insert of rows with optional columns
    // there as a savepoint around one insert per row, so a cached single-row insert is cheaper.
    match conn {
        AnyConnection::Sqlite(c) => {
            for e in &events {
                diesel::insert_into(audit_events::table)
                    .values(NewAuditRow::from(e))
                    .execute(c)?;
            }
        }
        AnyConnection::Postgresql(c) => {
            for chunk in events.chunks(200) {
                let rows: Vec<NewAuditRow<'_>> = chunk.iter().map(NewAuditRow::from).collect();
                diesel::insert_into(audit_events::table).values(&rows).execute(c)?;
            }
        }
    }
    diesel::update(audit_head::table.find(1))
        .set((audit_head::seq.eq(seq), audit_head::hash.eq(&prev)))
        .execute(conn)?;
    Ok(events)
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

/// What an audit-log search asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub seqs: Option<Vec<i64>>,
    pub person_id: Option<String>,
    pub at: crate::ids::TimeRange,
    pub actor_name: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub outcome: Option<String>,
}

/// Audit events matching a filter, newest first, one page of them, and how many match in all.
pub fn find(conn: &mut AnyConnection, f: &AuditFilter, offset: i64, limit: i64) -> QueryResult<(Vec<AuditEvent>, i64)> {
    let build = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(s) = &f.seqs {
            q = q.filter(audit_events::seq.eq_any(s.clone()));
        }
        if let Some(p) = &f.person_id {
            q = q.filter(audit_events::person_id.eq(p.clone()));
        }
        if let Some(t) = f.at.from {
            q = q.filter(audit_events::at.ge(t));
        }
        if let Some(t) = f.at.to {
            q = q.filter(audit_events::at.lt(t));
        }
        if let Some(a) = &f.actor_name {
            q = q.filter(audit_events::actor_name.eq(a.clone()));
        }
        if let Some(t) = &f.entity_type {
            q = q.filter(audit_events::entity_type.eq(t.clone()));
        }
        if let Some(i) = &f.entity_id {
            q = q.filter(audit_events::entity_id.eq(i.clone()));
        }
        if let Some(o) = &f.outcome {
            q = q.filter(audit_events::outcome.eq(o.clone()));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order(audit_events::seq.desc())
        .offset(offset)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?;
    Ok((rows.into_iter().map(AuditEvent::from).collect(), total))
}
