//! HL7 senders and the message store.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::storage::AnyConnection;
use crate::storage::schema::{hl7_messages, hl7_senders};

/// (sender id, facility id, default charset)
pub fn sender(conn: &mut AnyConnection, app: &str, facility: &str) -> QueryResult<Option<(String, String, String)>> {
    hl7_senders::table
        .filter(hl7_senders::sending_app.eq(app))
        .filter(hl7_senders::sending_facility.eq(facility))
        .select((hl7_senders::id, hl7_senders::facility_id, hl7_senders::default_charset))
        .first(conn)
        .optional()
}

pub fn insert_sender(
    conn: &mut AnyConnection,
    id: &str,
    app: &str,
    facility: &str,
    facility_id: &str,
    charset: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(hl7_senders::table)
        .values((
            hl7_senders::id.eq(id),
            hl7_senders::sending_app.eq(app),
            hl7_senders::sending_facility.eq(facility),
            hl7_senders::facility_id.eq(facility_id),
            hl7_senders::default_charset.eq(charset),
            hl7_senders::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A stored message's content hash and the ACK it got, by its dedupe key.
pub fn stored(
    conn: &mut AnyConnection,
    app: &str,
    facility: &str,
    control_id: &str,
) -> QueryResult<Option<(String, String)>> {
    hl7_messages::table
        .filter(hl7_messages::sending_app.eq(app))
        .filter(hl7_messages::sending_facility.eq(facility))
        .filter(hl7_messages::control_id.eq(control_id))
        .select((hl7_messages::content_hash, hl7_messages::ack))
        .first(conn)
        .optional()
}

pub struct StoredMessage<'a> {
    pub id: &'a str,
    pub sending_app: &'a str,
    pub sending_facility: &'a str,
    pub control_id: &'a str,
    pub message_type: &'a str,
    pub raw: &'a [u8],
    pub content_hash: &'a str,
    pub status: &'a str,
    pub ack_code: &'a str,
    /// The accept acknowledgement code (CA/CE/CR) in enhanced mode.
    pub accept_code: Option<&'a str>,
    pub ack: &'a str,
    pub error: &'a str,
    pub person_id: Option<&'a str>,
    pub received_at: NaiveDateTime,
}

pub fn insert_message(conn: &mut AnyConnection, m: &StoredMessage<'_>) -> QueryResult<()> {
    diesel::insert_into(hl7_messages::table)
        .values((
            hl7_messages::id.eq(m.id),
            hl7_messages::sending_app.eq(m.sending_app),
            hl7_messages::sending_facility.eq(m.sending_facility),
            hl7_messages::control_id.eq(m.control_id),
            hl7_messages::message_type.eq(m.message_type),
            hl7_messages::received_at.eq(m.received_at),
            hl7_messages::raw.eq(m.raw),
            hl7_messages::content_hash.eq(m.content_hash),
            hl7_messages::status.eq(m.status),
            hl7_messages::ack_code.eq(m.ack_code),
            hl7_messages::accept_code.eq(m.accept_code),
            hl7_messages::ack.eq(m.ack),
            hl7_messages::error.eq(m.error),
            hl7_messages::person_id.eq(m.person_id),
        ))
        .execute(conn)
        .map(|_| ())
}

/// (control id, status, ack code) of stored messages, newest first (tests and the message log).
pub fn recent(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<(String, String, String)>> {
    hl7_messages::table
        .order(hl7_messages::received_at.desc())
        .limit(limit)
        .select((hl7_messages::control_id, hl7_messages::status, hl7_messages::ack_code))
        .load(conn)
}

/// One stored message as the message log lists it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = hl7_messages)]
pub struct MessageRow {
    pub id: String,
    pub sending_app: String,
    pub sending_facility: String,
    pub control_id: String,
    pub message_type: String,
    pub received_at: NaiveDateTime,
    pub status: String,
    pub ack_code: String,
    pub accept_code: Option<String>,
    pub error: String,
    pub person_id: Option<String>,
    pub replays: i32,
    pub replayed_at: Option<NaiveDateTime>,
    pub replayed_by: Option<String>,
}

/// Filters of the message log that the database applies.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub message_type: Option<String>,
    pub control_id: Option<String>,
    pub status: Option<String>,
    pub person_id: Option<String>,
}

/// Messages of the given senders matching the filter, newest first.
pub fn search(
    conn: &mut AnyConnection,
    apps: &[String],
    facilities: &[String],
    f: &LogFilter,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    let mut q = hl7_messages::table
        .filter(hl7_messages::sending_app.eq_any(apps))
        .filter(hl7_messages::sending_facility.eq_any(facilities))
        .into_boxed();
    if let Some(t) = &f.message_type {
        q = q.filter(hl7_messages::message_type.eq(t.clone()));
    }
    if let Some(c) = &f.control_id {
        q = q.filter(hl7_messages::control_id.eq(c.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(hl7_messages::status.eq(s.clone()));
    }
    if let Some(p) = &f.person_id {
        q = q.filter(hl7_messages::person_id.eq(p.clone()));
    }
    q.order(hl7_messages::received_at.desc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)
}

/// A message with its stored bytes and answer.
pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<(MessageRow, Vec<u8>, String)>> {
    hl7_messages::table
        .find(id)
        .select((MessageRow::as_select(), hl7_messages::raw, hl7_messages::ack))
        .first(conn)
        .optional()
}

/// Every registered sender: (MSH-3, MSH-4, facility id).
pub fn senders(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String, String)>> {
    hl7_senders::table
        .order((hl7_senders::sending_app, hl7_senders::sending_facility))
        .select((
            hl7_senders::sending_app,
            hl7_senders::sending_facility,
            hl7_senders::facility_id,
        ))
        .load(conn)
}

/// Message counts per sender and status: (MSH-3, MSH-4, status, count).
pub fn counts(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String, String, i64)>> {
    hl7_messages::table
        .group_by((
            hl7_messages::sending_app,
            hl7_messages::sending_facility,
            hl7_messages::status,
        ))
        .select((
            hl7_messages::sending_app,
            hl7_messages::sending_facility,
            hl7_messages::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// Record a replay's outcome on the message (its first ACK stays what the sender got).
pub fn record_replay(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    error: &str,
    person_id: Option<&str>,
    at: NaiveDateTime,
    by: &str,
) -> QueryResult<usize> {
    diesel::update(hl7_messages::table.find(id))
        .set((
            hl7_messages::status.eq(status),
            hl7_messages::error.eq(error),
            hl7_messages::person_id.eq(person_id),
            hl7_messages::replays.eq(hl7_messages::replays + 1),
            hl7_messages::replayed_at.eq(Some(at)),
            hl7_messages::replayed_by.eq(Some(by)),
        ))
        .execute(conn)
}
