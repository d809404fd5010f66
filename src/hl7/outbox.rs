//! Outbound referral messages (hl7/README.md "Outbound"): REF^I12 / RRI^I12 written to a database
//! outbox inside the referral's own transaction, delivered per destination in order with one
//! message in flight, matched to their ACK by MSA-2, retried with backoff, dead-lettered after N
//! failures, replayed from the queue page.
//!
//! * [`referral_changed`] reacts to the referral feature's `REFERRAL_CHANGED` event, published
//!   right after it writes a timeline entry (same transaction: the message exists exactly when the
//!   change does; wired in `reactions.rs`).
//! * [`deliver_due`] is one run of the delivery worker (`app.rs` runs it every second; tests call
//!   it with an injected `now`). Claims are leases taken by conditional UPDATEs, so several
//!   instances on one database never send one message at once; network I/O never happens inside
//!   a database transaction.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::er7::{Charset, Message};
use super::mllp::{Decoder, Event, frame};
use super::model::mask_id_numbers;
use super::outbound::{self, AckVerdict, Kind, Outbound, Patient};
use super::outbox_repo::{self as repo, DestinationRow, NewMessage, OutboxRow, Settle};
use crate::audit::service::{guarded, record, record_many, record_system};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::model::HEALTH_CARD_SYSTEM;
use crate::ids::{new_id, now_utc};
use crate::referral::events::ReferralChanged;
use crate::referral::model::{Party, Verb};
use crate::storage::{AnyConnection, Db};

fn charset_of(d: &DestinationRow) -> Charset {
    if d.charset == "gb18030" {
        Charset::Gb18030
    } else {
        Charset::Utf8
    }
}

// ------------------------------------------------------------------ destinations

/// Register the HL7 destination of one of our facilities (`hl7 destination add`): the hospital
/// system that receives its referral messages. One per facility.
pub async fn add_destination(
    db: &Db,
    facility_code: &str,
    host: &str,
    port: u16,
    receiving_app: &str,
    receiving_facility: &str,
    charset: &str,
) -> Result<String, ServiceError> {
    let (code, host, app, fac) = (
        facility_code.trim().to_string(),
        host.trim().to_string(),
        receiving_app.trim().to_string(),
        receiving_facility.trim().to_string(),
    );
    if host.is_empty() || app.is_empty() || fac.is_empty() || port == 0 {
        return Err(ServiceError::invalid(
            "host",
            "required",
            "host, port, MSH-5 and MSH-6 are required",
        ));
    }
    let charset = super::service::charset_setting(charset)?;
    db.write(move |c| {
        let f = crate::facility::repo::by_code(c, &code)?.ok_or(ServiceError::NotFound("没有这个机构代码"))?;
        if repo::destination_of_facility(c, &f.id)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "facility {code} already has an HL7 destination"
            )));
        }
        let id = new_id();
        repo::insert_destination(
            c,
            &DestinationRow {
                id: id.clone(),
                facility_id: f.id,
                host,
                port: i32::from(port),
                receiving_app: app,
                receiving_facility: fac,
                charset: charset.to_string(),
                active: true,
                created_at: now_utc(),
            },
        )?;
        Ok(id)
    })
    .await
}

// ------------------------------------------------------------------ enqueue

/// Queue the HL7 messages a referral change calls for, inside the referral's transaction: the
/// reaction to [`crate::referral::events::REFERRAL_CHANGED`] (published right after the timeline
/// row is written: the newest entry names the acting facility and, for reject / redirect /
/// cancel, the reason).
///
/// The side that acted decides the message: the referring side → REF^I12 to the facility the
/// referral points at; the referred-to side → RRI^I12 to the referring facility, plus a REF^I12
/// to the new centre on a redirect ([`outbound::routes`]). A facility without an active
/// destination takes part through the web pages or the JSON API: nothing is queued for it.
/// A details update is passed as `Verb::Send`: a REF^I12 with the referral's current state.
pub fn referral_changed(c: &mut AnyConnection, e: &ReferralChanged) -> Result<(), ServiceError> {
    let (r, verb, now) = (&e.referral, e.verb, e.at);
    let l = &r.lifecycle;
    // Most facilities take part through the pages: no destination on either side, nothing to build.
    let mut any = false;
    for f in [&l.from_facility_id, &l.to_facility_id] {
        any |= repo::destination_of_facility(c, f)?.is_some_and(|d| d.active);
    }
    if !any {
        return Ok(());
    }
    let events = crate::referral::service::events_of(c, &l.id)?;
    let event = events.last();
    let acting = event.and_then(|e| e.facility_id.clone());
    let party = match acting.as_deref() {
        Some(f) if f == l.from_facility_id => Party::Sender,
        Some(_) => Party::Receiver,
        None => verb.party(),
    };
    let mut targets = Vec::new();
    for (kind, facility_id) in outbound::routes(verb, party, &l.from_facility_id, &l.to_facility_id) {
        if let Some(d) = repo::destination_of_facility(c, &facility_id)?.filter(|d| d.active) {
            targets.push((kind, d));
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    let person = crate::identity::repo::by_id(c, &r.person_id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))?;
    let health_card = crate::identity::repo::identifiers(c, &person.id)?
        .into_iter()
        .find(|(system, _)| system == HEALTH_CARD_SYSTEM)
        .map(|(_, v)| v);
    let mut code_of = |id: &str| -> Result<String, ServiceError> {
        Ok(crate::facility::repo::by_id(c, id)?.map(|f| f.code).unwrap_or_default())
    };
    let from_code = code_of(&l.from_facility_id)?;
    let to_code = code_of(&l.to_facility_id)?;
    let acting_code = match (acting.as_deref(), party) {
        (Some(f), _) => code_of(f)?,
        (None, Party::Sender) => from_code.clone(),
        (None, Party::Receiver) => to_code.clone(),
    };
    let reason = match (verb, event) {
        (Verb::Reject | Verb::Redirect | Verb::Cancel, Some(e)) if !e.detail.trim().is_empty() => e.detail.clone(),
        _ => r.reason.clone(),
    };
    let referring_name = events
        .iter()
        .find(|e| e.kind == "opened")
        .map(|e| e.actor_display.clone())
        .unwrap_or_default();
    let patient = Patient {
        person_id: person.id.clone(),
        id_number: person.id_number.clone(),
        health_card,
        name: person.name.clone(),
        birth_date: Some(person.birth_date),
        sex: person.sex.as_str().to_string(),
    };
    for (kind, d) in targets {
        let control_id = outbound::control_id(uuid::Uuid::now_v7().as_u128());
        let message = Outbound {
            kind,
            control_id: control_id.clone(),
            at: now,
            sending_facility: acting_code.clone(),
            receiving_app: d.receiving_app.clone(),
            receiving_facility: d.receiving_facility.clone(),
            charset: charset_of(&d),
            referral_id: l.id.clone(),
            state: l.state,
            urgency: l.urgency,
            patient_kind: r.patient_kind,
            reason: reason.clone(),
            from_code: from_code.clone(),
            referring_name: referring_name.clone(),
            to_code: to_code.clone(),
            received_by: l.handover.as_ref().map(|h| h.received_by.clone()).unwrap_or_default(),
            patient: patient.clone(),
            details: r.details.clone(),
            feedback: if kind == Kind::Rri && verb == Verb::Feedback {
                l.feedback.clone()
            } else {
                None
            },
        };
        repo::insert_message(
            c,
            &NewMessage {
                id: &new_id(),
                destination_id: &d.id,
                referral_id: &l.id,
                person_id: &r.person_id,
                message_type: kind.as_str(),
                control_id: &control_id,
                raw: &outbound::encode(&message),
                created_at: now,
            },
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------------ delivery

/// How the delivery worker behaves (`MCH_HL7_OUTBOX_*` settings).
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long to wait for the ACK after sending.
    pub ack_timeout: Duration,
    pub connect_timeout: Duration,
    /// Failed attempts after which a message is dead-lettered.
    pub max_attempts: i32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl Policy {
    /// How long a claim holds a message: the whole exchange plus a margin. A lease that runs out
    /// (the instance died mid-exchange) makes the message claimable again, and it is resent with
    /// the same MSH-10 (a resend the receiver answers once).
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.ack_timeout + self.connect_timeout + Duration::from_secs(30))
            .unwrap_or(chrono::Duration::minutes(5))
    }
}

/// What one delivery run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub acked: usize,
    pub retried: usize,
    pub dead: usize,
}

/// Deliver what is due at `now`: every destination with due work in parallel, each strictly in
/// order (the oldest unsettled message first; the next only after it is acked or dead). After an
/// ACK the destination's next message goes at once; after a failure the destination waits for
/// its backoff.
pub async fn deliver_due(db: &Db, now: NaiveDateTime, policy: &Policy) -> Result<DeliveryReport, ServiceError> {
    let destinations = db
        .read(|c| repo::destinations_with_work(c).map_err(ServiceError::from))
        .await?;
    let mut runs = tokio::task::JoinSet::new();
    for d in destinations {
        let (db, policy) = (db.clone(), policy.clone());
        runs.spawn(async move { drain(&db, d, now, &policy).await });
    }
    let mut report = DeliveryReport::default();
    while let Some(done) = runs.join_next().await {
        match done {
            Ok(Ok(r)) => {
                report.acked += r.acked;
                report.retried += r.retried;
                report.dead += r.dead;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "HL7 outbox: a destination's run failed; retrying next run"),
            Err(e) => tracing::error!(error = %e, "HL7 outbox: a destination's run panicked"),
        }
    }
    Ok(report)
}

/// At most this many messages per destination in one run (then the next run goes on).
const MAX_PER_RUN: usize = 100;

async fn drain(
    db: &Db,
    destination_id: String,
    now: NaiveDateTime,
    policy: &Policy,
) -> Result<DeliveryReport, ServiceError> {
    let started = Instant::now();
    // The injected `now` plus the time this run has taken (a 10 s timeout moves the clock too).
    let clock = move || now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    let mut report = DeliveryReport::default();
    for _ in 0..MAX_PER_RUN {
        let Some((m, d, lease)) = claim(db, &destination_id, clock(), policy).await? else {
            break;
        };
        let span = tracing::info_span!("hl7_out", control_id = %m.control_id, destination = %d.id);
        let answer = exchange(&d, &m.raw, policy).await;
        let verdict = match answer {
            Ok(frame) => outbound::judge_ack(&frame, &m.control_id, charset_of(&d)),
            Err(why) => AckVerdict::Retry(why, String::new()),
        };
        let acked = matches!(verdict, AckVerdict::Acked(..));
        let at = clock();
        let max = policy.max_attempts;
        let settled = db.write(move |c| settle(c, m, d, lease, verdict, at, max)).await?;
        match settled {
            Some(Settled::Acked) => report.acked += 1,
            Some(Settled::Retry) => report.retried += 1,
            Some(Settled::Dead) => report.dead += 1,
            None => span.in_scope(|| tracing::warn!("HL7 outbox: the lease ran out before the attempt was settled")),
        }
        if !acked {
            break;
        }
    }
    Ok(report)
}

/// Claim the head of a destination's queue if it is due and nothing else of that destination is
/// in flight: (message, destination, lease id).
async fn claim(
    db: &Db,
    destination_id: &str,
    at: NaiveDateTime,
    policy: &Policy,
) -> Result<Option<(repo::Claimed, DestinationRow, String)>, ServiceError> {
    let destination_id = destination_id.to_string();
    let lease_until = at + policy.lease();
    db.write(move |c| {
        let queue = repo::unsettled(c, &destination_id, 50)?;
        let Some(head) = queue.first() else {
            return Ok(None);
        };
        // One in flight per destination, even when a replayed older message jumped the queue.
        let in_flight = |s: &repo::QueueState| s.status == "sent" && s.lease_until.is_some_and(|u| u > at);
        if queue.iter().skip(1).any(in_flight) {
            return Ok(None);
        }
        let due = match head.status.as_str() {
            "pending" => head.next_attempt_at <= at,
            _ => !in_flight(head),
        };
        if !due {
            return Ok(None);
        }
        let Some(d) = repo::destination(c, &destination_id)?.filter(|d| d.active) else {
            return Ok(None);
        };
        let lease = new_id();
        if !repo::claim(c, head, &lease, lease_until, at)? {
            return Ok(None); // another instance took it first
        }
        Ok(Some((repo::claimed(c, &head.id)?, d, lease)))
    })
    .await
}

/// Send one framed message on a new connection and read one frame back, within the timeouts.
/// Errors are words without message content.
async fn exchange(d: &DestinationRow, payload: &[u8], policy: &Policy) -> Result<Vec<u8>, String> {
    let addr = format!("{}:{}", d.host, d.port);
    let mut stream = match tokio::time::timeout(policy.connect_timeout, TcpStream::connect(&addr)).await {
        Err(_) => return Err(format!("connecting to {addr} timed out")),
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}")),
        Ok(Ok(s)) => s,
    };
    if let Err(e) = stream.write_all(&frame(payload)).await {
        return Err(format!("sending to {addr} failed: {e}"));
    }
    let deadline = tokio::time::Instant::now() + policy.ack_timeout;
    let mut decoder = Decoder::new(super::server::MAX_FRAME);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                return Err(format!("no ACK within {} ms", policy.ack_timeout.as_millis()));
            }
            Ok(Err(e)) => return Err(format!("reading the ACK failed: {e}")),
            Ok(Ok(0)) => return Err("the receiver closed the connection without an ACK".into()),
            Ok(Ok(n)) => n,
        };
        // The first complete frame is the answer; anything after it is not read.
        match decoder.feed(buf.get(..n).unwrap_or_default()).into_iter().next() {
            Some(Event::Frame(f)) => return Ok(f),
            Some(Event::Garbage | Event::TooLarge) => return Err("the answer is not an MLLP frame".into()),
            None => {}
        }
    }
}

enum Settled {
    Acked,
    Retry,
    Dead,
}

/// Write how an attempt ended (only while the lease is ours); a dead letter is audited and shown
/// on the referral's timeline so both sides know the hospital was not reached.
fn settle(
    c: &mut AnyConnection,
    m: repo::Claimed,
    d: DestinationRow,
    lease: String,
    verdict: AckVerdict,
    at: NaiveDateTime,
    max_attempts: i32,
) -> Result<Option<Settled>, ServiceError> {
    let attempts = m.attempts + 1;
    let (settled, error, ack, code) = match verdict {
        AckVerdict::Acked(code, text) => (Settled::Acked, String::new(), text, Some(code)),
        AckVerdict::Dead(why, text) => (Settled::Dead, why, text, None),
        AckVerdict::Retry(why, text) if attempts >= max_attempts => (
            Settled::Dead,
            format!("{why} (gave up after {attempts} attempts)"),
            text,
            None,
        ),
        AckVerdict::Retry(why, text) => (Settled::Retry, why, text, None),
    };
    let (status, next) = match settled {
        Settled::Acked => ("acked", at),
        Settled::Dead => ("dead", at),
        Settled::Retry => ("pending", at + outbound::backoff(attempts)),
    };
    let ok = repo::settle(
        c,
        &m.id,
        &lease,
        &Settle {
            status,
            attempts,
            next_attempt_at: next,
            last_error: &error,
            ack_code: code.as_deref(),
            ack: &ack,
            acked_at: matches!(settled, Settled::Acked).then_some(at),
            dead_at: matches!(settled, Settled::Dead).then_some(at),
        },
    )?;
    if !ok {
        return Ok(None);
    }
    match settled {
        Settled::Acked => tracing::info!(control_id = %m.control_id, attempts, "HL7 outbound message acknowledged"),
        Settled::Retry => {
            tracing::warn!(control_id = %m.control_id, attempts, error = %error, "HL7 outbound attempt failed; will retry")
        }
        Settled::Dead => {
            tracing::error!(control_id = %m.control_id, attempts, error = %error, "HL7 outbound message dead-lettered");
            dead_letter(c, &m, &d, &error, at)?;
        }
    }
    Ok(Some(settled))
}

fn outbox_target(id: &str, person_id: Option<String>) -> AuditTarget {
    AuditTarget {
        entity_type: "hl7_outbox",
        entity_id: Some(id.to_string()),
        person_id,
    }
}

fn dead_letter(
    c: &mut AnyConnection,
    m: &repo::Claimed,
    d: &DestinationRow,
    error: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let facility = crate::facility::repo::by_id(c, &d.facility_id)?;
    let name = facility.map(|f| f.name).unwrap_or_default();
    record_system(
        c,
        "hl7_dead_letter",
        outbox_target(&m.id, Some(m.person_id.clone())),
        &format!("{} {} to {name} not delivered: {error}", m.message_type, m.control_id),
    )?;
    crate::referral::service::note_undelivered(
        c,
        &m.referral_id,
        &d.facility_id,
        &format!(
            "{} 接口消息未能送达{name}（{}），请电话联系",
            m.message_type, m.control_id
        ),
        at,
    )?;
    Ok(())
}

// ------------------------------------------------------------------ the queue page

/// Counts of one destination's queue.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationStats {
    pub id: String,
    pub facility_code: String,
    pub facility_name: String,
    pub address: String,
    pub receiving_app: String,
    pub receiving_facility: String,
    pub charset: String,
    pub active: bool,
    pub pending: i64,
    pub sent: i64,
    pub acked: i64,
    pub dead: i64,
}

/// A listed message with its destination's name.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    #[serde(flatten)]
    pub row: OutboxRow,
    pub destination: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub destinations: Vec<DestinationStats>,
    pub messages: Vec<QueueRow>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueQuery {
    /// A destination id.
    pub destination: Option<String>,
    pub status: Option<String>,
}

/// Destinations whose facility lies in the actor's area, with the facility's code and name.
fn destinations_in_scope(
    c: &mut AnyConnection,
    actor: &Actor,
) -> Result<Vec<(DestinationRow, String, String)>, ServiceError> {
    let mut out = Vec::new();
    for d in repo::destinations(c)? {
        if let Some(f) = crate::facility::repo::by_id(c, &d.facility_id)?
            && actor.scope.covers(&f.jurisdiction, f.township_code.as_deref())
        {
            out.push((d, f.code, f.name));
        }
    }
    Ok(out)
}

fn trimmed(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The outbound queue of the actor's area (admins and auditors): counts per destination and the
/// newest 200 messages. Listing messages is audited against each woman they concern.
pub async fn queue(db: &Db, actor: &Actor, q: QueueQuery) -> Result<Queue, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadMessageLog) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "hl7_outbox",
                ..AuditTarget::default()
            }));
        }
        let dests = destinations_in_scope(c, actor)?;
        let counts = repo::counts(c)?;
        let destinations: Vec<DestinationStats> = dests
            .iter()
            .map(|(d, code, name)| {
                let n = |s: &str| {
                    counts
                        .iter()
                        .filter(|(id, st, _)| *id == d.id && st == s)
                        .map(|(_, _, n)| *n)
                        .sum()
                };
                DestinationStats {
                    id: d.id.clone(),
                    facility_code: code.clone(),
                    facility_name: name.clone(),
                    address: format!("{}:{}", d.host, d.port),
                    receiving_app: d.receiving_app.clone(),
                    receiving_facility: d.receiving_facility.clone(),
                    charset: d.charset.clone(),
                    active: d.active,
                    pending: n("pending"),
                    sent: n("sent"),
                    acked: n("acked"),
                    dead: n("dead"),
                }
            })
            .collect();
        let wanted = trimmed(&q.destination);
        let ids: Vec<String> = dests
            .iter()
            .map(|(d, _, _)| d.id.clone())
            .filter(|id| wanted.as_ref().is_none_or(|w| w == id))
            .collect();
        let status = trimmed(&q.status);
        let messages: Vec<QueueRow> = repo::list(c, &ids, status.as_deref(), 200)?
            .into_iter()
            .map(|row| {
                let destination = dests
                    .iter()
                    .find(|(d, _, _)| d.id == row.destination_id)
                    .map(|(_, _, name)| name.clone())
                    .unwrap_or_default();
                QueueRow { row, destination }
            })
            .collect();
        let mut targets = vec![AuditTarget {
            entity_type: "hl7_outbox",
            ..AuditTarget::default()
        }];
        targets.extend(
            messages
                .iter()
                .map(|m| outbox_target(&m.row.id, Some(m.row.person_id.clone()))),
        );
        record_many(c, actor, "search", targets, "HL7 outbound queue")?;
        Ok(Queue { destinations, messages })
    })
    .await
}

/// One outbound message as the queue page shows it: the text and its parsed tree with ID numbers
/// masked, the ACK it got.
#[derive(Debug, Clone, Serialize)]
pub struct QueueMessageView {
    pub message: QueueRow,
    pub raw: String,
    pub tree: Vec<(String, String)>,
    pub ack: String,
    pub can_replay: bool,
}

fn message_in_scope(
    c: &mut AnyConnection,
    actor: &Actor,
    id: &str,
) -> Result<(OutboxRow, Vec<u8>, String, DestinationRow, String), ServiceError> {
    let (row, raw, ack) = repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该消息"))?;
    let found = destinations_in_scope(c, actor)?
        .into_iter()
        .find(|(d, _, _)| d.id == row.destination_id);
    match found {
        Some((d, _, name)) => Ok((row, raw, ack, d, name)),
        None => Err(ServiceError::forbidden(outbox_target(
            &row.id,
            Some(row.person_id.clone()),
        ))),
    }
}

/// Open one outbound message (audited as a read of the woman's record).
pub async fn queue_message(db: &Db, actor: &Actor, id: String) -> Result<QueueMessageView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadMessageLog) {
            return Err(ServiceError::forbidden(outbox_target(&id, None)));
        }
        let (row, raw, ack, d, name) = message_in_scope(c, actor, &id)?;
        let full = actor.may(Action::SeeFullIdNumber);
        let mask = |s: &str| if full { s.to_string() } else { mask_id_numbers(s) };
        let (text, tree) = match Message::parse(&raw, charset_of(&d)) {
            Ok(m) => (
                m.text().to_string(),
                m.leaves().into_iter().map(|(p, v)| (p, mask(&v))).collect(),
            ),
            Err(_) => (String::from_utf8_lossy(&raw).into_owned(), Vec::new()),
        };
        record(
            c,
            actor,
            "read",
            outbox_target(&row.id, Some(row.person_id.clone())),
            "HL7 outbound message opened",
        )?;
        Ok(QueueMessageView {
            raw: mask(&text.replace('\r', "\n")),
            tree,
            ack: mask(&ack.replace('\r', "\n")),
            can_replay: actor.may(Action::ReplayMessage) && row.status == "dead",
            message: QueueRow { row, destination: name },
        })
    })
    .await
}

/// Put a dead message back in its destination's queue (admins): pending, attempts 0, due now, at
/// its place in the order (so it goes before anything of that destination queued after it).
pub async fn replay(db: &Db, actor: &Actor, id: String) -> Result<OutboxRow, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReplayMessage) {
            return Err(ServiceError::forbidden(outbox_target(&id, None)));
        }
        let (row, _, _, _, _) = message_in_scope(c, actor, &id)?;
        let now = now_utc();
        if !repo::requeue(c, &row.id, now, &actor.name)? {
            return Err(ServiceError::Conflict("只能重发已放弃（dead）的消息".into()));
        }
        record(
            c,
            actor,
            "update",
            outbox_target(&row.id, Some(row.person_id.clone())),
            &format!("HL7 outbound message {} re-queued", row.control_id),
        )?;
        let (row, _, _) = repo::by_id(c, &row.id)?.ok_or(ServiceError::NotFound("没有找到该消息"))?;
        Ok(row)
    })
    .await
}
