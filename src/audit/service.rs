//! Audit use cases: recording (inside the caller's transaction), guarded writes that audit
//! refusals, the chain check and the "who accessed this record" view.

use super::model::{AuditEvent, ChainReport, ChainVerifier, Outcome};
use super::repo;
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::ids::now_utc;
use crate::storage::{AnyConnection, Db, StorageError};

/// Build an audit event for `actor` touching `target`.
pub fn event(actor: &Actor, action: &str, outcome: Outcome, target: &AuditTarget, detail: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        at: now_utc(),
        actor_kind: actor.kind.as_str().to_string(),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        actor_role: actor.role.as_str().to_string(),
        facility_id: Some(actor.facility.id.clone()),
        client_addr: actor.client_addr.clone(),
        action: action.to_string(),
        outcome: outcome.as_str().to_string(),
        entity_type: target.entity_type.to_string(),
        entity_id: target.entity_id.clone(),
        person_id: target.person_id.clone(),
        purpose: actor.role.purpose_of_use().to_string(),
        detail: detail.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// An event done by the service itself (timers, escalation), not by a person.
pub fn record_system(
    conn: &mut AnyConnection,
    action: &str,
    target: AuditTarget,
    detail: &str,
) -> Result<(), ServiceError> {
    let e = AuditEvent {
        seq: 0,
        at: now_utc(),
        actor_kind: "system".into(),
        actor_id: None,
        actor_name: "system".into(),
        actor_role: "system".into(),
        facility_id: None,
        client_addr: None,
        action: action.to_string(),
        outcome: Outcome::Success.as_str().to_string(),
        entity_type: target.entity_type.to_string(),
        entity_id: target.entity_id,
        person_id: target.person_id,
        purpose: "operations".into(),
        detail: detail.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    repo::append(conn, e)?;
    Ok(())
}

/// Record, in the caller's transaction, what someone not (yet) signed in did: a login attempt, a
/// login wait that it started. The actor is named by the username they typed (at most 64
/// characters of it), whether or not such a user exists.
pub fn record_unauthenticated(
    conn: &mut AnyConnection,
    typed_username: &str,
    client_addr: Option<&str>,
    action: &str,
    outcome: Outcome,
    target: AuditTarget,
    detail: &str,
) -> Result<(), ServiceError> {
    let e = AuditEvent {
        seq: 0,
        at: now_utc(),
        actor_kind: "user".into(),
        actor_id: None,
        actor_name: typed_username.chars().take(64).collect(),
        actor_role: "unknown".into(),
        facility_id: None,
        client_addr: client_addr.map(str::to_string),
        action: action.to_string(),
        outcome: outcome.as_str().to_string(),
        entity_type: target.entity_type.to_string(),
        entity_id: target.entity_id,
        person_id: target.person_id,
        purpose: "operations".into(),
        detail: detail.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    repo::append(conn, e)?;
    Ok(())
}

/// Record a successful access in the caller's transaction (so data and audit commit together).
pub fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    target: AuditTarget,
    detail: &str,
) -> Result<(), ServiceError> {
    repo::append(conn, event(actor, action, Outcome::Success, &target, detail))?;
    Ok(())
}

/// Record the same access to many records at once (a list shows many women): one audit row per
/// record, appended together.
pub fn record_many(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    targets: Vec<AuditTarget>,
    detail: &str,
) -> Result<(), ServiceError> {
    let events = targets
        .iter()
        .map(|t| event(actor, action, Outcome::Success, t, detail))
        .collect();
    repo::append_many(conn, events)?;
    Ok(())
}

/// Audit a refusal inside the caller's transaction, after the refused work was rolled back to a
/// savepoint (one entry of a batch).
pub fn record_refusal_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    target: Option<AuditTarget>,
    detail: &str,
) -> Result<(), ServiceError> {
    let t = target.unwrap_or(AuditTarget {
        entity_type: "unknown",
        ..AuditTarget::default()
    });
    repo::append(conn, event(actor, action, Outcome::Denied, &t, detail))?;
    Ok(())
}

/// Run read-only work on a pooled connection instead of the group-commit writer, then append the
/// audit events it recorded through the writer: the answer still waits until they are durable
/// (RELIABILITY 29), but reading no longer queues behind every write. Pooled connections are
/// read-only ([`crate::storage::Db::read`]), so work that tries to write fails instead of
/// escaping the writer. If the work fails, nothing it recorded is kept (as a rolled-back unit);
/// refusals are audited by the caller, as after a write.
pub async fn read_audited<T, E, F>(db: &Db, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
{
    let (value, events) = db
        .read(move |c| {
            let collecting = repo::Deferred::start();
            let result = f(c);
            let events = collecting.finish();
            result.map(|v| (v, events))
        })
        .await?;
    if !events.is_empty() {
        db.write(move |c| repo::append_many(c, events).map(|_| ()).map_err(StorageError::from))
            .await?;
    }
    Ok(value)
}

/// Run a unit of work through the group-commit writer; if it is refused for lack of access or by
/// a rule that records the attempt (the fetal-sex ban), the refusal is audited (in a commit of its
/// own, since the refused work rolled back). A rule's refusal is answered as the field errors it
/// names (`Invalid`), as any other form error is.
pub async fn guarded<T, F>(db: &Db, actor: &Actor, action: &'static str, f: F) -> Result<T, ServiceError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    audit_refusal(db, actor, action, db.write(f).await).await
}

/// [`guarded`] for read-only work: it runs on a pooled connection ([`read_audited`]), so a long
/// list (the home page's worklists) neither waits behind writes nor holds them up, and lists read
/// side by side; what it read is audited durably before the answer, a refusal as after a write.
pub async fn guarded_read<T, F>(db: &Db, actor: &Actor, action: &'static str, f: F) -> Result<T, ServiceError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    audit_refusal(db, actor, action, read_audited(db, f).await).await
}

/// Audit the refusal of a unit of work, if it was refused (see [`guarded`]).
async fn audit_refusal<T>(
    db: &Db,
    actor: &Actor,
    action: &'static str,
    result: Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    match result {
        Err(ServiceError::Forbidden { reason, target }) => {
            record_denied(db, actor, action, target.clone()).await;
            Err(ServiceError::Forbidden { reason, target })
        }
        Err(ServiceError::Refused { fields, target }) => {
            record_refused(
                db,
                actor,
                action,
                target,
                &crate::privacy::service::refusal_detail(&fields),
            )
            .await;
            Err(ServiceError::Invalid(fields))
        }
        other => other,
    }
}

/// Audit a refused access inside the caller's transaction (a batch entry refused on its own while
/// the rest of the batch goes on).
pub fn record_denied_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    target: Option<AuditTarget>,
) -> Result<(), ServiceError> {
    let t = target.unwrap_or(AuditTarget {
        entity_type: "unknown",
        ..AuditTarget::default()
    });
    repo::append(conn, event(actor, action, Outcome::Denied, &t, "access refused"))?;
    Ok(())
}

/// Audit a refused access in a commit of its own (the refused work rolled back).
pub async fn record_denied(db: &Db, actor: &Actor, action: &str, target: Option<AuditTarget>) {
    record_refused(db, actor, action, target, "access refused").await;
}

/// Audit a refusal (for lack of access, or by a rule such as the fetal-sex ban, RULES.md §9.1) in
/// a commit of its own: the refused work rolled back, the attempt stays on record.
pub async fn record_refused(db: &Db, actor: &Actor, action: &str, target: Option<AuditTarget>, detail: &str) {
    let t = target.unwrap_or(AuditTarget {
        entity_type: "unknown",
        ..AuditTarget::default()
    });
    let e = event(actor, action, Outcome::Denied, &t, detail);
    if let Err(err) = db.write(move |c| repo::append(c, e).map_err(ServiceError::from)).await {
        tracing::error!(error = %err, "could not audit a refused access");
    }
}

/// Record an event that has no data change of its own (login, logout, failed login).
pub async fn record_event(
    db: &Db,
    actor: &Actor,
    action: &'static str,
    outcome: Outcome,
    detail: String,
) -> Result<(), ServiceError> {
    let e = event(
        actor,
        action,
        outcome,
        &AuditTarget {
            entity_type: "session",
            ..AuditTarget::default()
        },
        &detail,
    );
    db.write(move |c| repo::append(c, e).map(|_| ()).map_err(ServiceError::from))
        .await
}

/// Check the whole chain, page by page (bounded memory), up to the head read first: rows up to it
/// are committed and never change, so appends made while checking cannot look like tampering.
pub fn verify_chain(conn: &mut AnyConnection) -> Result<ChainReport, ServiceError> {
    let (head_seq, head_hash) = repo::head(conn)?;
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = repo::page(conn, after, head_seq, 5000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        page.iter().for_each(|e| v.feed(e));
    }
    Ok(v.finish(head_seq, &head_hash))
}

/// "Who accessed this person's record": for auditors (any person) — answered from the audit
/// table alone. Viewing the audit log is itself audited.
pub async fn person_access_log(
    db: &Db,
    actor: &Actor,
    person_id: String,
    from: Option<chrono::NaiveDateTime>,
    to: Option<chrono::NaiveDateTime>,
) -> Result<Vec<AuditEvent>, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let target = AuditTarget {
            entity_type: "audit_log",
            entity_id: None,
            person_id: Some(person_id.clone()),
        };
        if !actor2.may(Action::ReadAudit) {
            return Err(ServiceError::forbidden(target));
        }
        let rows = repo::for_person(c, &person_id, from, to, 1000)?;
        record(c, &actor2, "read", target, "person access log")?;
        Ok(rows)
    })
    .await
}

/// The newest audit events, for the auditor's page.
pub async fn recent(db: &Db, actor: &Actor, actor_filter: Option<String>) -> Result<Vec<AuditEvent>, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let target = AuditTarget {
            entity_type: "audit_log",
            ..AuditTarget::default()
        };
        if !actor2.may(Action::ReadAudit) {
            return Err(ServiceError::forbidden(target));
        }
        let rows = repo::recent(c, actor_filter.as_deref(), 200)?;
        record(c, &actor2, "search", target, "recent audit events")?;
        Ok(rows)
    })
    .await
}

// Interface reads of the log (FHIR AuditEvent): auditors only; reading the log is itself audited,
// in the caller's transaction.

fn audit_log_target(entity_id: Option<String>, person_id: Option<String>) -> AuditTarget {
    AuditTarget {
        entity_type: "audit_log",
        entity_id,
        person_id,
    }
}

/// One audit event (auditors only; the read is audited, naming the person it concerns).
pub fn event_in(conn: &mut AnyConnection, actor: &Actor, seq: i64) -> Result<AuditEvent, ServiceError> {
    if !actor.may(Action::ReadAudit) {
        return Err(ServiceError::forbidden(audit_log_target(Some(seq.to_string()), None)));
    }
    let filter = repo::AuditFilter {
        seqs: Some(vec![seq]),
        ..Default::default()
    };
    let e = repo::find(conn, &filter, 0, 1)?
        .0
        .pop()
        .ok_or(ServiceError::NotFound("没有这条操作日志"))?;
    record(
        conn,
        actor,
        "read",
        audit_log_target(Some(seq.to_string()), e.person_id.clone()),
        "interface audit event read",
    )?;
    Ok(e)
}

/// Audit events matching a search, newest first, and how many match in all (auditors only; the
/// search is audited, naming the person searched for).
pub fn search_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    filter: &repo::AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditEvent>, i64), ServiceError> {
    let target = audit_log_target(None, filter.person_id.clone());
    if !actor.may(Action::ReadAudit) {
        return Err(ServiceError::forbidden(target));
    }
    let found = repo::find(conn, filter, offset, limit)?;
    record(conn, actor, "search", target, "interface audit search")?;
    Ok(found)
}
