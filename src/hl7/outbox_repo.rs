//! HL7 outbound: destinations and the outbox queue (diesel). Claims and outcomes are conditional
//! UPDATEs, so two instances on one database never both send or both settle one message.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::storage::AnyConnection;
use crate::storage::schema::{hl7_destinations, hl7_outbox};

/// Statuses of an outbox message that still wait for delivery.
pub const UNSETTLED: [&str; 2] = ["pending", "sent"];

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = hl7_destinations)]
pub struct DestinationRow {
    pub id: String,
    pub facility_id: String,
    pub host: String,
    pub port: i32,
    pub receiving_app: String,
    pub receiving_facility: String,
    pub charset: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

pub fn destination_of_facility(conn: &mut AnyConnection, facility_id: &str) -> QueryResult<Option<DestinationRow>> {
    hl7_destinations::table
        .filter(hl7_destinations::facility_id.eq(facility_id))
        .select(DestinationRow::as_select())
        .first(conn)
        .optional()
}

pub fn destination(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<DestinationRow>> {
    hl7_destinations::table
        .find(id)
        .select(DestinationRow::as_select())
        .first(conn)
        .optional()
}

pub fn destinations(conn: &mut AnyConnection) -> QueryResult<Vec<DestinationRow>> {
    hl7_destinations::table
        .order(hl7_destinations::created_at)
        .select(DestinationRow::as_select())
        .load(conn)
}

pub fn insert_destination(conn: &mut AnyConnection, d: &DestinationRow) -> QueryResult<()> {
    diesel::insert_into(hl7_destinations::table)
        .values((
            hl7_destinations::id.eq(&d.id),
            hl7_destinations::facility_id.eq(&d.facility_id),
            hl7_destinations::host.eq(&d.host),
            hl7_destinations::port.eq(d.port),
            hl7_destinations::receiving_app.eq(&d.receiving_app),
            hl7_destinations::receiving_facility.eq(&d.receiving_facility),
            hl7_destinations::charset.eq(&d.charset),
            hl7_destinations::active.eq(d.active),
            hl7_destinations::created_at.eq(d.created_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub struct NewMessage<'a> {
    pub id: &'a str,
    pub destination_id: &'a str,
    pub referral_id: &'a str,
    pub person_id: &'a str,
    pub message_type: &'a str,
    pub control_id: &'a str,
    pub raw: &'a [u8],
    pub created_at: NaiveDateTime,
}

pub fn insert_message(conn: &mut AnyConnection, m: &NewMessage<'_>) -> QueryResult<()> {
    diesel::insert_into(hl7_outbox::table)
        .values((
            hl7_outbox::id.eq(m.id),
            hl7_outbox::destination_id.eq(m.destination_id),
            hl7_outbox::referral_id.eq(m.referral_id),
            hl7_outbox::person_id.eq(m.person_id),
            hl7_outbox::message_type.eq(m.message_type),
            hl7_outbox::control_id.eq(m.control_id),
            hl7_outbox::raw.eq(m.raw),
            hl7_outbox::status.eq("pending"),
            hl7_outbox::attempts.eq(0),
            hl7_outbox::next_attempt_at.eq(m.created_at),
            hl7_outbox::last_error.eq(""),
            hl7_outbox::ack.eq(""),
            hl7_outbox::created_at.eq(m.created_at),
            hl7_outbox::replays.eq(0),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Active destinations that have messages waiting.
pub fn destinations_with_work(conn: &mut AnyConnection) -> QueryResult<Vec<String>> {
    hl7_outbox::table
        .inner_join(hl7_destinations::table)
        .filter(hl7_destinations::active.eq(true))
        .filter(hl7_outbox::status.eq_any(UNSETTLED))
        .select(hl7_outbox::destination_id)
        .distinct()
        .load(conn)
}

/// The queue state of one message, as a claim sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hl7_outbox)]
pub struct QueueState {
    pub id: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_id: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
}

/// The unsettled messages of a destination in delivery order (created_at, then the time-ordered id).
pub fn unsettled(conn: &mut AnyConnection, destination_id: &str, limit: i64) -> QueryResult<Vec<QueueState>> {
    hl7_outbox::table
        .filter(hl7_outbox::destination_id.eq(destination_id))
        .filter(hl7_outbox::status.eq_any(UNSETTLED))
        .order((hl7_outbox::created_at, hl7_outbox::id))
        .limit(limit)
        .select(QueueState::as_select())
        .load(conn)
}

/// Take the lease on a message if it is still exactly as observed (status, attempts, lease).
pub fn claim(
    conn: &mut AnyConnection,
    seen: &QueueState,
    lease_id: &str,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = hl7_outbox::table
        .filter(hl7_outbox::id.eq(&seen.id))
        .filter(hl7_outbox::status.eq(&seen.status))
        .filter(hl7_outbox::attempts.eq(seen.attempts));
    let set = (
        hl7_outbox::status.eq("sent"),
        hl7_outbox::lease_id.eq(Some(lease_id)),
        hl7_outbox::lease_until.eq(Some(lease_until)),
        hl7_outbox::last_attempt_at.eq(Some(now)),
    );
    let n = match &seen.lease_id {
        Some(l) => diesel::update(target.filter(hl7_outbox::lease_id.eq(l)))
            .set(set)
            .execute(conn)?,
        None => diesel::update(target.filter(hl7_outbox::lease_id.is_null()))
            .set(set)
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// What delivery needs of a claimed message.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hl7_outbox)]
pub struct Claimed {
    pub id: String,
    pub referral_id: String,
    pub person_id: String,
    pub message_type: String,
    pub control_id: String,
    pub raw: Vec<u8>,
    pub attempts: i32,
}

pub fn claimed(conn: &mut AnyConnection, id: &str) -> QueryResult<Claimed> {
    hl7_outbox::table.find(id).select(Claimed::as_select()).first(conn)
}

/// How an attempt ended, as written to the row.
pub struct Settle<'a> {
    pub status: &'a str,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: &'a str,
    pub ack_code: Option<&'a str>,
    pub ack: &'a str,
    pub acked_at: Option<NaiveDateTime>,
    pub dead_at: Option<NaiveDateTime>,
}

/// Settle an attempt, only while we still hold the lease (a lease that expired and was taken by
/// another instance is theirs to settle).
pub fn settle(conn: &mut AnyConnection, id: &str, lease_id: &str, s: &Settle<'_>) -> QueryResult<bool> {
    let n = diesel::update(
        hl7_outbox::table
            .filter(hl7_outbox::id.eq(id))
            .filter(hl7_outbox::status.eq("sent"))
            .filter(hl7_outbox::lease_id.eq(lease_id)),
    )
    .set((
        hl7_outbox::status.eq(s.status),
        hl7_outbox::attempts.eq(s.attempts),
        hl7_outbox::next_attempt_at.eq(s.next_attempt_at),
        hl7_outbox::lease_id.eq(None::<String>),
        hl7_outbox::lease_until.eq(None::<NaiveDateTime>),
        hl7_outbox::last_error.eq(s.last_error),
        hl7_outbox::ack_code.eq(s.ack_code),
        hl7_outbox::ack.eq(s.ack),
        hl7_outbox::acked_at.eq(s.acked_at),
        hl7_outbox::dead_at.eq(s.dead_at),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// One outbox message as the queue page lists it.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = hl7_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub destination_id: String,
    pub referral_id: String,
    pub person_id: String,
    pub message_type: String,
    pub control_id: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: String,
    pub ack_code: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub acked_at: Option<NaiveDateTime>,
    pub dead_at: Option<NaiveDateTime>,
    pub replays: i32,
    pub replayed_at: Option<NaiveDateTime>,
    pub replayed_by: Option<String>,
}

/// Messages of the given destinations (optionally one status), newest first.
pub fn list(
    conn: &mut AnyConnection,
    destination_ids: &[String],
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let mut q = hl7_outbox::table
        .filter(hl7_outbox::destination_id.eq_any(destination_ids))
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(hl7_outbox::status.eq(s.to_string()));
    }
    q.order((hl7_outbox::created_at.desc(), hl7_outbox::id.desc()))
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)
}

/// Counts per destination and status: (destination id, status, count).
pub fn counts(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String, i64)>> {
    hl7_outbox::table
        .group_by((hl7_outbox::destination_id, hl7_outbox::status))
        .select((
            hl7_outbox::destination_id,
            hl7_outbox::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// A message with its bytes and the ACK it got.
pub fn by_id(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<(OutboxRow, Vec<u8>, String)>> {
    hl7_outbox::table
        .find(id)
        .select((OutboxRow::as_select(), hl7_outbox::raw, hl7_outbox::ack))
        .first(conn)
        .optional()
}

/// Put a dead message back in its queue (at its place: the order is created_at, id).
pub fn requeue(conn: &mut AnyConnection, id: &str, now: NaiveDateTime, by: &str) -> QueryResult<bool> {
    let n = diesel::update(
        hl7_outbox::table
            .filter(hl7_outbox::id.eq(id))
            .filter(hl7_outbox::status.eq("dead")),
    )
    .set((
        hl7_outbox::status.eq("pending"),
        hl7_outbox::attempts.eq(0),
        hl7_outbox::next_attempt_at.eq(now),
        hl7_outbox::lease_id.eq(None::<String>),
        hl7_outbox::lease_until.eq(None::<NaiveDateTime>),
        hl7_outbox::dead_at.eq(None::<NaiveDateTime>),
        hl7_outbox::replays.eq(hl7_outbox::replays + 1),
        hl7_outbox::replayed_at.eq(Some(now)),
        hl7_outbox::replayed_by.eq(Some(by)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
