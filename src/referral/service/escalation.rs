//! The escalation timer: a late step goes up the ladder, each level once.

use chrono::NaiveDateTime;

use crate::audit::service::record_system;
use crate::error::ServiceError;
use crate::facility::model::Facility;
use crate::referral::model::{self, Party, ReferralRecord, clocks};
use crate::referral::repo;
use crate::storage::{AnyConnection, Db};

use super::access::referral_target;
use super::steps::system_event;

/// Escalate every late step that has not yet reached its level at `now` (injected: tests move the
/// clock instead of sleeping). Each level fires once, whichever instance gets there first.
pub async fn escalate_late(db: &Db, now: NaiveDateTime) -> Result<usize, ServiceError> {
    db.write(move |c| {
        let due = repo::due(c, now, model::MAX_ESCALATION)?;
        if due.is_empty() {
            return Ok(0);
        }
        let dir = crate::facility::repo::all(c)?;
        let mut fired = 0;
        for r in due {
            // Each referral in its own savepoint: one that fails is retried next tick, the others
            // still escalate now.
            match crate::storage::savepoint(c, |sp| escalate_one(sp, &r, &dir, now)) {
                Ok(n) => fired += n,
                Err(e) => {
                    tracing::warn!(referral = %r.lifecycle.id, error = %e, "escalation failed; retried next tick")
                }
            }
        }
        Ok(fired)
    })
    .await
}

pub(super) fn escalate_one(
    c: &mut AnyConnection,
    r: &ReferralRecord,
    dir: &[Facility],
    now: NaiveDateTime,
) -> Result<usize, ServiceError> {
    let mut fired = 0;
    let l = &r.lifecycle;
    let (Some(step), Some(due_at)) = (l.step(), l.step_due_at) else {
        return Ok(0);
    };
    let limit = clocks().limit(l.urgency, step);
    let level = model::escalation_level(due_at, limit, now);
    if level <= l.escalation_level {
        return Ok(0);
    }
    if !repo::raise_escalation(c, &l.id, l.step_no, l.escalation_level, level)? {
        return Ok(0);
    }
    let responsible_id = match step.party() {
        Party::Sender => &l.from_facility_id,
        Party::Receiver => &l.to_facility_id,
    };
    let Some(responsible) = dir.iter().find(|f| &f.id == responsible_id) else {
        return Ok(0);
    };
    let rungs = model::ladder(responsible, dir);
    let late = (now - due_at).num_minutes();
    for lvl in (l.escalation_level + 1)..=level {
        let rung = rungs.get((lvl - 1) as usize).copied().flatten();
        let detail = format!(
            "「{}」超过时限 {} 分钟（{}，限 {} 分钟）{}",
            step.label_zh(),
            late,
            l.urgency.label_zh(),
            limit.num_minutes(),
            rung.map(|f| format!("，已通知 {}", f.name)).unwrap_or_default()
        );
        repo::add_event(
            c,
            &system_event(
                l,
                now,
                "escalated",
                detail.clone(),
                rung.map(|f| f.id.clone()),
                Some(lvl),
            ),
        )?;
        record_system(c, "escalate", referral_target(r), &format!("level {lvl}: {detail}"))?;
        fired += 1;
    }
    Ok(fired)
}
