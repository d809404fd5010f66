//! Visit use cases: recording an antenatal visit, and the worklist of due and overdue contacts.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::model::{Visit, VisitInput, VisitKind};
use super::repo;
use super::schedule::{self, ContactStatus};
use crate::audit::service::{guarded, guarded_read, record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::service::{PersonSummary, person_target};
use crate::ids::{new_id, today_china};
use crate::pregnancy::model::{OnWorklist, PregnancyStatus};
use crate::pregnancy::service::pregnancy_for;
use crate::storage::{AnyConnection, Db};

/// Record a visit: antenatal while the pregnancy is active (the first is its 第1次产前检查),
/// postpartum (产后访视, 产后42天检查) once the delivery is recorded.
pub async fn record_visit(
    db: &Db,
    actor: &Actor,
    pregnancy_id: String,
    input: VisitInput,
) -> Result<Visit, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let p = pregnancy_for(c, actor, Action::RecordVisit, &pregnancy_id)?;
        let delivered_on = match p.status {
            PregnancyStatus::Active | PregnancyStatus::Ended => None,
            PregnancyStatus::Delivered => crate::pregnancy::repo::delivery_for(c, &p.id)?.map(|d| d.delivery_date),
        };
        if p.status == PregnancyStatus::Ended || (p.status == PregnancyStatus::Delivered && delivered_on.is_none()) {
            return Err(ServiceError::Conflict("该孕产期档案已结束，不能再记录随访".into()));
        }
        // The 两非 ban (RULES.md §9.1) before anything else: refused and audited, never stored.
        crate::privacy::service::refuse_fetal_sex(
            &[
                ("complaints", "主诉", input.complaints.as_deref().unwrap_or("")),
                ("advice", "指导意见", input.advice.as_deref().unwrap_or("")),
            ],
            AuditTarget {
                entity_type: "visit",
                entity_id: None,
                person_id: Some(p.person_id.clone()),
            },
        )?;
        let data = input.validate(&p.dating, delivered_on, today_china())?;
        let kind = match data.postpartum {
            Some((k, _)) => k,
            None if repo::count_for_pregnancy(c, &p.id)? == 0 => VisitKind::AntenatalFirst,
            None => VisitKind::Antenatal,
        };
        let v = Visit {
            id: new_id(),
            pregnancy_id: p.id.clone(),
            person_id: p.person_id.clone(),
            kind,
            visit_date: data.visit_date,
            facility_id: actor.facility.id.clone(),
            weight_kg: data.weight_kg,
            height_cm: data.height_cm,
            systolic_mmhg: data.systolic_mmhg,
            diastolic_mmhg: data.diastolic_mmhg,
            fundal_height_cm: data.fundal_height_cm,
            abdominal_circumference_cm: data.abdominal_circumference_cm,
            fetal_heart_rate_bpm: data.fetal_heart_rate_bpm,
            fetal_presentation: data.fetal_presentation,
            oedema: data.oedema,
            hb_g_l: data.hb_g_l,
            urine_protein: data.urine_protein,
            complaints: data.complaints,
            advice: data.advice,
            next_appointment: data.next_appointment,
            recorded_by: actor.name.clone(),
            postpartum_recovered: data.postpartum.and_then(|(_, r)| r),
            recorded_at: crate::ids::now_utc(),
        };
        repo::insert(c, &v, &p.jurisdiction, p.township_code.as_deref())?;
        record(
            c,
            actor,
            "create",
            AuditTarget {
                entity_type: "visit",
                entity_id: Some(v.id.clone()),
                person_id: Some(v.person_id.clone()),
            },
            &format!("visit recorded for pregnancy {}", p.id),
        )?;
        // The features above react in this transaction (risk: re-grade proposal, case follow-up).
        super::events::VISIT_RECORDED.publish(
            c,
            &super::events::VisitRecorded {
                actor: actor.clone(),
                pregnancy: p,
                visit_id: v.id.clone(),
                visit_date: v.visit_date,
                kind,
            },
        )?;
        Ok(v)
    })
    .await
}

/// One line of the worklist.
#[derive(Debug, Clone, Serialize)]
pub struct WorklistItem {
    pub person: PersonSummary,
    pub pregnancy_id: String,
    /// Where she is on the pathway: `孕 12+3 周`, or `产后` once delivered.
    pub stage: String,
    pub edd: NaiveDate,
    pub contact: ContactStatus,
    pub overdue: bool,
}

/// Women of my area whose next contact is due within a week or overdue, most overdue first.
/// The worklist: the first `limit` lines, and the totals over all of them.
#[derive(Debug, Clone, Serialize)]
pub struct Worklist {
    pub items: Vec<WorklistItem>,
    pub overdue_total: usize,
    pub due_total: usize,
}

pub async fn worklist(db: &Db, actor: &Actor, limit: usize) -> Result<Worklist, ServiceError> {
    let actor2 = actor.clone();
    guarded_read(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "worklist",
                ..Default::default()
            }));
        }
        let today = today_china();
        let (township, prefix) = actor.scope.filters();
        let pregnancies = crate::pregnancy::repo::active_in_area(c, township, prefix)?;
        // Postpartum care runs to the 42-day check; an unfinished one stays listed for six months.
        let since = today - chrono::Days::new(180);
        let delivered = crate::pregnancy::repo::delivered_since(c, township, prefix, since)?;
        let dates = repo::worklist_dates(c, township, prefix, since)?;
        let mut antenatal: HashMap<String, Vec<NaiveDate>> = HashMap::with_capacity(pregnancies.len());
        for (pid, d) in dates.active {
            antenatal.entry(pid).or_default().push(d);
        }
        let mut postpartum: HashMap<String, Vec<(String, NaiveDate)>> = HashMap::new();
        for (pid, kind, d) in dates.delivered {
            postpartum.entry(pid).or_default().push((kind, d));
        }
        let mut items: Vec<(i64, NaiveDate, OnWorklist, ContactStatus)> = Vec::new();
        for p in pregnancies.into_iter().chain(delivered) {
            let st = match &p.delivery {
                None => {
                    let dates = antenatal.remove(&p.id).unwrap_or_default();
                    schedule::statuses(schedule::national(), &p.dating, &dates, today)
                }
                // No postpartum contacts are due for a mother who died.
                Some(d) if d.maternal_death => continue,
                Some(d) => {
                    let visits = postpartum.remove(&p.id).unwrap_or_default();
                    schedule::postpartum_statuses(
                        schedule::postpartum(),
                        d.delivery_date,
                        d.discharge_date,
                        &visits,
                        today,
                    )
                }
            };
            if let Some(next) = schedule::next_action(&st) {
                items.push((next.days_overdue, next.window_end, p, next.clone()));
            }
        }
        // Most overdue first; among due contacts, the one whose window closes soonest.
        items.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let overdue_total = items.iter().filter(|i| i.3.status == schedule::Status::Overdue).count();
        let due_total = items.len() - overdue_total;
        items.truncate(limit);
        let ids: Vec<String> = items.iter().map(|i| i.2.person_id.clone()).collect();
        let mut persons: HashMap<String, crate::identity::model::Person> = crate::identity::repo::by_ids(c, &ids)?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (_, _, p, contact) in items {
            let Some(person) = persons.remove(&p.person_id) else {
                continue;
            };
            out.push(WorklistItem {
                person: PersonSummary::of(&person, today),
                pregnancy_id: p.id,
                stage: if p.delivery.is_some() {
                    "产后".to_string()
                } else {
                    format!("孕 {} 周", p.dating.gestational_age_on(today))
                },
                edd: p.dating.edd,
                overdue: contact.status == schedule::Status::Overdue,
                contact,
            });
        }
        record_many(
            c,
            actor,
            "search",
            out.iter().map(|i| person_target(&i.person.id)).collect(),
            "worklist",
        )?;
        Ok(Worklist {
            items: out,
            overdue_total,
            due_total,
        })
    })
    .await
}

// Interface reads (FHIR Encounter and the visit's vital signs): inside the caller's transaction,
// each returned visit audited there.

pub fn visit_target(v: &Visit) -> AuditTarget {
    AuditTarget {
        entity_type: "visit",
        entity_id: Some(v.id.clone()),
        person_id: Some(v.person_id.clone()),
    }
}

/// One visit for an interface (audited read); refused when its pregnancy is out of reach.
pub fn visit_in(c: &mut AnyConnection, actor: &Actor, visit_id: &str) -> Result<Visit, ServiceError> {
    let v = repo::by_id(c, visit_id)?.ok_or(ServiceError::NotFound("没有找到该随访记录"))?;
    pregnancy_for(c, actor, Action::ReadRecord, &v.pregnancy_id).map_err(|e| match e {
        ServiceError::Forbidden { reason, .. } => ServiceError::Forbidden {
            reason,
            target: Some(visit_target(&v)),
        },
        e => e,
    })?;
    record(c, actor, "read", visit_target(&v), "interface read")?;
    Ok(v)
}

/// A person's visits (or one pregnancy's) the actor may read, for `$everything` (audited reads).
pub fn visits_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<Visit>, ServiceError> {
    let mut out = Vec::new();
    for p in crate::pregnancy::service::readable_in(c, actor, person_id, pregnancy_id)? {
        out.extend(repo::for_pregnancy(c, &p.id)?);
    }
    record_many(
        c,
        actor,
        "read",
        out.iter().map(visit_target).collect(),
        "interface read (everything)",
    )?;
    Ok(out)
}

/// What an interface search for visits asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct VisitQuery {
    pub person_id: Option<String>,
    pub pregnancy_id: Option<String>,
    pub ids: Option<Vec<String>>,
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub recorded: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Visits matching a query that the actor may read, by date, and how many match in all (each
/// returned visit audited). A person, pregnancy or ids are looked up wherever they are managed,
/// then the access check decides; otherwise the actor's area is searched.
pub fn search_in(c: &mut AnyConnection, actor: &Actor, q: &VisitQuery) -> Result<(Vec<Visit>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "visit",
            ..Default::default()
        }));
    }
    let mut pregnancy_ids: Option<Vec<String>> = None;
    if q.person_id.is_some() || q.pregnancy_id.is_some() {
        let list = match (&q.person_id, &q.pregnancy_id) {
            (Some(person), pregnancy) => {
                crate::pregnancy::service::readable_in(c, actor, person, pregnancy.as_deref())?
            }
            (None, Some(pregnancy)) => vec![pregnancy_for(c, actor, Action::ReadRecord, pregnancy)?],
            (None, None) => Vec::new(),
        };
        pregnancy_ids = Some(list.into_iter().map(|p| p.id).collect());
    }
    let mut ids = None;
    if let Some(wanted) = &q.ids {
        let mut found = Vec::new();
        for id in wanted {
            if let Some(v) = repo::by_id(c, id)? {
                found.push((v.id, v.pregnancy_id));
            }
        }
        ids = Some(crate::pregnancy::service::keep_readable_by_pregnancy(c, actor, found)?);
    }
    let filter = repo::VisitFilter {
        scope: if ids.is_some() || pregnancy_ids.is_some() {
            None
        } else {
            Some(actor.scope.clone())
        },
        ids,
        pregnancy_ids,
        date_from: q.date_from,
        date_to: q.date_to,
        recorded: q.recorded,
    };
    let (found, total) = repo::find(c, &filter, q.offset, q.limit)?;
    record_many(
        c,
        actor,
        "search",
        found.iter().map(visit_target).collect(),
        "interface search",
    )?;
    Ok((found, total))
}
