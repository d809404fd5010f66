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
