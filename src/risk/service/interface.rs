//! Interface reads (FHIR RiskAssessment and Flag): inside the caller's transaction, each returned
//! record audited there.

use chrono::NaiveDate;
use serde::Serialize;

use crate::audit::service::{record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::pregnancy::service::pregnancy_for;
use crate::risk::model::{AssessmentRecord, AssessmentStatus, RiskColour};
use crate::risk::repo;
use crate::storage::AnyConnection;

use super::shared::pregnancy_target;
use super::summary::summary;

fn assessment_target(a: &AssessmentRecord) -> AuditTarget {
    AuditTarget {
        entity_type: "risk_assessment",
        entity_id: Some(a.id.clone()),
        person_id: Some(a.person_id.clone()),
    }
}

/// A refusal about a pregnancy, re-aimed at the record that was asked for (so the audit row names it).
fn refused_as(e: ServiceError, target: AuditTarget) -> ServiceError {
    match e {
        ServiceError::Forbidden { reason, .. } => ServiceError::Forbidden {
            reason,
            target: Some(target),
        },
        e => e,
    }
}

/// One assessment for an interface (audited read).
pub fn assessment_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<AssessmentRecord, ServiceError> {
    let a = repo::assessment_by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该风险评估"))?;
    pregnancy_for(c, actor, Action::ReadRecord, &a.pregnancy_id).map_err(|e| refused_as(e, assessment_target(&a)))?;
    record(c, actor, "read", assessment_target(&a), "interface read")?;
    Ok(a)
}

/// A person's assessments (or one pregnancy's) the actor may read, oldest first, for
/// `$everything` (audited reads).
pub fn assessments_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<AssessmentRecord>, ServiceError> {
    let mut out = Vec::new();
    for p in crate::pregnancy::service::readable_in(c, actor, person_id, pregnancy_id)? {
        out.extend(repo::assessments(c, &p.id)?);
    }
    record_many(
        c,
        actor,
        "read",
        out.iter().map(assessment_target).collect(),
        "interface read (everything)",
    )?;
    Ok(out)
}

/// What an interface search for assessments asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct AssessmentQuery {
    pub person_id: Option<String>,
    pub ids: Option<Vec<String>>,
    pub made: crate::ids::TimeRange,
    pub updated: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Assessments matching a query that the actor may read, oldest first, and how many match in all
/// (each returned one audited). A person or ids are looked up wherever they are managed, then the
/// access check decides; otherwise the actor's area is searched.
pub fn assessment_search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &AssessmentQuery,
) -> Result<(Vec<AssessmentRecord>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "risk_assessment",
            ..Default::default()
        }));
    }
    let pregnancy_ids = match &q.person_id {
        Some(person) => Some(
            crate::pregnancy::service::readable_in(c, actor, person, None)?
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let mut ids = None;
    if let Some(wanted) = &q.ids {
        let mut found = Vec::new();
        for id in wanted {
            if let Some(a) = repo::assessment_by_id(c, id)? {
                found.push((a.id, a.pregnancy_id));
            }
        }
        ids = Some(crate::pregnancy::service::keep_readable_by_pregnancy(c, actor, found)?);
    }
    let filter = repo::AssessmentFilter {
        scope: if ids.is_some() || pregnancy_ids.is_some() {
            None
        } else {
            Some(actor.scope.clone())
        },
        ids,
        pregnancy_ids,
        made: q.made,
        updated: q.updated,
    };
    let (found, total) = repo::find_assessments(c, &filter, q.offset, q.limit)?;
    record_many(
        c,
        actor,
        "search",
        found.iter().map(assessment_target).collect(),
        "interface search",
    )?;
    Ok((found, total))
}

/// The current five-colour grade of a pregnancy as a flag for hospital systems (高危妊娠标识):
/// derived from the latest confirmed assessment, the pregnancy's status and its high-risk case.
#[derive(Debug, Clone, Serialize)]
pub struct RiskFlag {
    pub pregnancy: Pregnancy,
    /// The confirmed grade it shows.
    pub current: AssessmentRecord,
    /// Shown as a live warning: the grade is above green (or purple) and she is still on the
    /// pregnancy pathway — pregnant, or delivered with her 专案 still open (a postpartum red
    /// woman stays flagged until her case closes, RULES.md §1.3–1.4: the safer reading).
    pub active: bool,
    /// Since when it shows this grade (the grade's confirmation).
    pub since: chrono::NaiveDateTime,
    /// When it stopped being a live warning because she left the pathway (delivery, case closed,
    /// pregnancy ended), as a China date.
    pub ended_on: Option<NaiveDate>,
    /// Rises with every change it is derived from: a new confirmed grade, the pregnancy's status,
    /// a case closing.
    pub version: i32,
    pub updated_at: chrono::NaiveDateTime,
}

impl RiskFlag {
    /// Above green, or purple (an infectious disease is managed as a case whatever the colour).
    pub fn high(&self) -> bool {
        self.current.colour > RiskColour::Green || self.current.purple
    }

    /// The zh-CN text of the flag, e.g. `高危妊娠：橙色`, `高危妊娠：红色+紫色`, `妊娠风险：绿色`.
    pub fn label_zh(&self) -> String {
        format!(
            "{}：{}{}",
            if self.high() { "高危妊娠" } else { "妊娠风险" },
            self.current.colour.label_zh(),
            if self.current.purple { "+紫色" } else { "" }
        )
    }
}

fn flag_target(p: &Pregnancy) -> AuditTarget {
    pregnancy_target(p, "risk_flag", None)
}

/// The flag of a pregnancy, if it has been graded (no access check: callers check).
fn flag_of(c: &mut AnyConnection, p: Pregnancy) -> Result<Option<RiskFlag>, ServiceError> {
    let s = summary(c, &p.id)?;
    let Some(current) = s.current else {
        return Ok(None);
    };
    let confirmed = s
        .timeline
        .iter()
        .filter(|a| a.status == AssessmentStatus::Confirmed)
        .count() as i32;
    let (closed, last_closed) = repo::closed_cases(c, &p.id)?;
    let case_open = s.case.as_ref().is_some_and(|k| k.status.is_open());
    let pregnancy_updated = crate::pregnancy::repo::updated_at(c, &p.id)?;
    let delivery = crate::pregnancy::repo::delivery_for(c, &p.id)?;
    let on_pathway = match p.status {
        PregnancyStatus::Active => true,
        PregnancyStatus::Delivered => case_open,
        PregnancyStatus::Ended => false,
    };
    let ended_on = match p.status {
        _ if on_pathway => None,
        PregnancyStatus::Delivered => last_closed
            .map(crate::ids::china_date)
            .into_iter()
            .chain(delivery.map(|d| d.delivery_date))
            .max(),
        _ => Some(crate::ids::china_date(pregnancy_updated)),
    };
    let since = current.decided_at.unwrap_or(current.created_at);
    let updated_at = [Some(pregnancy_updated), Some(since), last_closed]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(since);
    let mut flag = RiskFlag {
        version: p.version + confirmed - 1 + closed as i32,
        pregnancy: p,
        current,
        active: false,
        since,
        ended_on,
        updated_at,
    };
    flag.active = flag.high() && on_pathway;
    Ok(Some(flag))
}

/// The flag of one pregnancy for an interface (audited read); not found while she is ungraded.
pub fn flag_in(c: &mut AnyConnection, actor: &Actor, pregnancy_id: &str) -> Result<RiskFlag, ServiceError> {
    let p = pregnancy_for(c, actor, Action::ReadRecord, pregnancy_id)?;
    let target = flag_target(&p);
    let flag = flag_of(c, p)?.ok_or(ServiceError::NotFound("该孕产期尚未评估分级"))?;
    record(c, actor, "read", target, "interface read")?;
    Ok(flag)
}

/// The flags of a person's graded pregnancies (or one of them) the actor may read, for
/// `$everything` (audited reads).
pub fn flags_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<RiskFlag>, ServiceError> {
    let mut out = Vec::new();
    for p in crate::pregnancy::service::readable_in(c, actor, person_id, pregnancy_id)? {
        out.extend(flag_of(c, p)?);
    }
    record_many(
        c,
        actor,
        "read",
        out.iter().map(|f| flag_target(&f.pregnancy)).collect(),
        "interface read (everything)",
    )?;
    Ok(out)
}

/// What an interface search for flags asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct FlagQuery {
    pub person_id: Option<String>,
    /// Pregnancy ids (a flag's id is its pregnancy's).
    pub ids: Option<Vec<String>>,
    pub active: Option<bool>,
    pub updated: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Most flags a status or `_lastUpdated` search looks through (those are computed, not stored).
const FLAG_SCAN_LIMIT: i64 = 20_000;

/// Flags matching a query that the actor may read, in booking order, and how many match in all
/// (each returned flag audited). A person or ids are looked up wherever they are managed, then
/// the access check decides; otherwise the actor's area is searched.
pub fn flag_search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &FlagQuery,
) -> Result<(Vec<RiskFlag>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "risk_flag",
            ..Default::default()
        }));
    }
    let mut ids: Option<Vec<String>> = None;
    if let Some(person) = &q.person_id {
        ids = Some(
            crate::pregnancy::service::readable_in(c, actor, person, None)?
                .into_iter()
                .map(|p| p.id)
                .collect(),
        );
    }
    if let Some(wanted) = &q.ids {
        let allowed: Vec<String> = crate::pregnancy::service::readable_ids_in(c, actor, wanted)?
            .into_iter()
            .map(|p| p.id)
            .collect();
        ids = Some(match ids {
            Some(prev) => prev.into_iter().filter(|i| allowed.contains(i)).collect(),
            None => allowed,
        });
    }
    let scope = if ids.is_some() { None } else { Some(&actor.scope) };
    let computed_filter = q.active.is_some() || !q.updated.is_open();
    let (offset, limit) = if computed_filter {
        (0, FLAG_SCAN_LIMIT)
    } else {
        (q.offset, q.limit)
    };
    let (page_ids, mut total) = repo::graded_pregnancies(c, ids.as_deref(), scope, offset, limit)?;
    let mut flags = Vec::with_capacity(page_ids.len());
    for id in page_ids {
        if let Some(p) = crate::pregnancy::repo::by_id(c, &id)? {
            flags.extend(flag_of(c, p)?);
        }
    }
    if computed_filter {
        flags.retain(|f| {
            q.active.is_none_or(|a| f.active == a)
                && q.updated.from.is_none_or(|t| f.updated_at >= t)
                && q.updated.to.is_none_or(|t| f.updated_at < t)
        });
        total = flags.len() as i64;
        flags = flags
            .into_iter()
            .skip(usize::try_from(q.offset).unwrap_or(0))
            .take(usize::try_from(q.limit).unwrap_or(0))
            .collect();
    }
    record_many(
        c,
        actor,
        "search",
        flags.iter().map(|f| flag_target(&f.pregnancy)).collect(),
        "interface search",
    )?;
    Ok((flags, total))
}
