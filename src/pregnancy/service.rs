//! Pregnancy use cases: booking (建册), the person page's pregnancies, the delivery, and the
//! interface reads of pregnancies. The pregnancy page, which shows what several features hold,
//! is assembled above them (`chart`).

use serde::Serialize;

use super::model::{BookingInput, Pregnancy, PregnancyStatus};
use super::repo;
use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::model::Sex;
use crate::identity::service::{PersonView, person_for, view_of};
use crate::ids::{new_id, today_china};
use crate::storage::{AnyConnection, Db};

pub fn pregnancy_target(p: &Pregnancy) -> AuditTarget {
    AuditTarget {
        entity_type: "pregnancy",
        entity_id: Some(p.id.clone()),
        person_id: Some(p.person_id.clone()),
    }
}

/// What a request for this pregnancy refused before reaching the service (the JSON route table's
/// gate) is audited against: the same target as this service's own refusals, naming her. No
/// access check — nothing of the record leaves but the ids the audit row keeps.
pub async fn refusal_target(db: &Db, pregnancy_id: String) -> Result<Option<AuditTarget>, ServiceError> {
    db.read(move |c| Ok(repo::by_id(c, &pregnancy_id)?.as_ref().map(pregnancy_target)))
        .await
}

/// Load a pregnancy the actor may act on, or refuse.
pub fn pregnancy_for(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    id: &str,
) -> Result<Pregnancy, ServiceError> {
    let p = repo::by_id(conn, id)?.ok_or(ServiceError::NotFound("没有找到该孕产期记录"))?;
    let allowed = crate::identity::service::may_on_person(
        conn,
        actor,
        action,
        &p.jurisdiction,
        p.township_code.as_deref(),
        &p.person_id,
        Some(&p.id),
    )?;
    if !allowed {
        return Err(ServiceError::forbidden(pregnancy_target(&p)));
    }
    Ok(p)
}

/// Book a pregnancy for a woman: one active pregnancy at a time.
pub async fn book(db: &Db, actor: &Actor, person_id: String, input: BookingInput) -> Result<Pregnancy, ServiceError> {
    let today = today_china();
    let booking = input.validate(today)?;
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let person = person_for(c, actor, Action::BookPregnancy, &person_id)?;
        if person.sex == Sex::Male {
            return Err(ServiceError::invalid(
                "person",
                "sex",
                "该服务对象性别为男，不能建立孕产期档案",
            ));
        }
        let age = person.age_on(booking.booking_date);
        if !(10..=60).contains(&age) {
            return Err(ServiceError::invalid(
                "person",
                "age",
                format!("建册时年龄 {age} 岁不合理，请核对出生日期"),
            ));
        }
        if repo::active_for_person(c, &person.id)?.is_some() {
            return Err(ServiceError::Conflict(
                "该孕妇已有正在管理的孕产期档案，不能重复建册".into(),
            ));
        }
        let p = Pregnancy {
            id: new_id(),
            person_id: person.id.clone(),
            status: PregnancyStatus::Active,
            booking_date: booking.booking_date,
            booking_facility_id: actor.facility.id.clone(),
            lmp: booking.lmp,
            ultrasound_date: booking.ultrasound.map(|u| u.0),
            ultrasound_ga: booking.ultrasound.map(|u| u.1),
            dating: booking.dating,
            gravidity: booking.gravidity,
            parity: booking.parity,
            jurisdiction: person.jurisdiction.clone(),
            township_code: person.township_code.clone(),
            version: 1,
        };
        repo::insert(c, &p, &actor.name).map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                ServiceError::Conflict("该孕妇已有正在管理的孕产期档案，不能重复建册".into())
            }
            e => e.into(),
        })?;
        record(c, actor, "create", pregnancy_target(&p), "pregnancy booked")?;
        // The features above react in this transaction (couple: the 早孕随访 closes as 已孕).
        super::events::PREGNANCY_BOOKED.publish(
            c,
            &super::events::PregnancyBooked {
                actor: actor.clone(),
                pregnancy: p.clone(),
            },
        )?;
        Ok(p)
    })
    .await
}

/// A pregnancy in the list on a person's page.
#[derive(Debug, Clone, Serialize)]
pub struct PregnancySummary {
    pub pregnancy: Pregnancy,
    pub status_label: &'static str,
    pub ga_today: Option<String>,
}

/// The person page: identity plus their pregnancies.
#[derive(Debug, Clone, Serialize)]
pub struct PersonRecord {
    pub view: PersonView,
    pub pregnancies: Vec<PregnancySummary>,
    pub has_active_pregnancy: bool,
    /// Records merged into this one (合并记录, HL7 ADT^A40).
    pub merges: Vec<crate::identity::service::MergeView>,
}

pub async fn person_record(db: &Db, actor: &Actor, person_id: String) -> Result<PersonRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let person = person_for(c, &actor2, Action::ReadRecord, &person_id)?;
        record(
            c,
            &actor2,
            "read",
            crate::identity::service::person_target(&person.id),
            "person page",
        )?;
        let today = today_china();
        let pregnancies: Vec<PregnancySummary> = repo::for_person(c, &person.id)?
            .into_iter()
            .map(|p| PregnancySummary {
                status_label: p.status.label_zh(),
                ga_today: (p.status == PregnancyStatus::Active).then(|| p.dating.gestational_age_on(today).to_string()),
                pregnancy: p,
            })
            .collect();
        let has_active_pregnancy = pregnancies
            .iter()
            .any(|p| p.pregnancy.status == PregnancyStatus::Active);
        Ok(PersonRecord {
            merges: crate::identity::service::merges_of(c, &person.id)?,
            view: view_of(c, &actor2, person)?,
            pregnancies,
            has_active_pregnancy,
        })
    })
    .await
}

/// Record the delivery (分娩) inside the caller's transaction: the pregnancy becomes delivered and
/// postpartum care begins; the features above are told ([`super::events::DELIVERY_RECORDED`]).
/// The babies' own records are the child feature's, which calls this (a birth is both).
pub fn record_delivery_in(
    c: &mut AnyConnection,
    actor: &Actor,
    pregnancy_id: &str,
    input: &super::model::DeliveryInput,
) -> Result<(Pregnancy, super::model::Delivery), ServiceError> {
    let p = pregnancy_for(c, actor, Action::RecordVisit, pregnancy_id)?;
    if p.status != PregnancyStatus::Active {
        return Err(ServiceError::Conflict("该孕产期档案已结束或已登记分娩".into()));
    }
    // The 两非 ban (RULES.md §9.1): the child's sex belongs on the child's own record.
    crate::privacy::service::refuse_fetal_sex(
        &[
            ("complications", "并发症", input.complications.as_deref().unwrap_or("")),
            (
                "facility_name",
                "分娩机构",
                input.facility_name.as_deref().unwrap_or(""),
            ),
        ],
        pregnancy_target(&p),
    )?;
    let data = input.validate(&p.dating, today_china())?;
    let d = super::model::Delivery {
        id: new_id(),
        pregnancy_id: p.id.clone(),
        delivery_date: data.delivery_date,
        discharge_date: data.discharge_date,
        facility_name: data.facility_name,
        mode: data.mode,
        live_births: data.live_births,
        stillbirths: data.stillbirths,
        maternal_death: data.maternal_death,
        complications: data.complications,
        recorded_by: actor.name.clone(),
    };
    repo::insert_delivery(c, &d, &p).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            ServiceError::Conflict("该孕产期已登记分娩".into())
        }
        e => e.into(),
    })?;
    if !repo::set_status(c, &p, PregnancyStatus::Delivered)? {
        return Err(ServiceError::Conflict("孕产期档案刚被他人修改，请刷新后重试".into()));
    }
    record(c, actor, "create", pregnancy_target(&p), "delivery recorded")?;
    // The features above react in this transaction (risk: a maternal death closes her case).
    super::events::DELIVERY_RECORDED.publish(
        c,
        &super::events::DeliveryRecorded {
            actor: actor.clone(),
            pregnancy: p.clone(),
            delivery: d.clone(),
        },
    )?;
    Ok((p, d))
}

/// Reaction to [`crate::identity::events::PERSONS_MERGING`]: two records that each hold an active
/// pregnancy are not merged automatically — which episode is hers is a person's decision.
pub fn refuse_merging_two_active_pregnancies(
    c: &mut AnyConnection,
    e: &crate::identity::events::PersonsMerging,
) -> Result<(), ServiceError> {
    if repo::active_for_person(c, &e.survivor.id)?.is_some() && repo::active_for_person(c, &e.merged.id)?.is_some() {
        return Err(ServiceError::Conflict(
            "两个档案都有进行中的孕产期，不能自动合并，请人工核对".into(),
        ));
    }
    Ok(())
}

// Interface reads (FHIR EpisodeOfCare, and the pregnancy part of every other pathway resource):
// inside the caller's transaction, each returned record audited there.

/// A pregnancy as an interface shows it: the record, when it last changed, and its delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    pub pregnancy: Pregnancy,
    pub updated_at: chrono::NaiveDateTime,
    pub delivery: Option<super::model::Delivery>,
}

fn episode_of(
    c: &mut AnyConnection,
    pregnancy: Pregnancy,
    updated_at: chrono::NaiveDateTime,
) -> Result<Episode, ServiceError> {
    let delivery = repo::delivery_for(c, &pregnancy.id)?;
    Ok(Episode {
        pregnancy,
        updated_at,
        delivery,
    })
}

/// The pregnancies of a person the actor may read: one named pregnancy (it must be hers), or all
/// of hers that her area or an access grant opens to the actor. Refused (audited by the caller)
/// when the actor may not read her at all. Nothing is audited here: callers audit what they show.
pub fn readable_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<Pregnancy>, ServiceError> {
    if let Some(id) = pregnancy_id {
        let p = pregnancy_for(c, actor, Action::ReadRecord, id)?;
        if p.person_id != person_id {
            return Err(ServiceError::NotFound("没有找到该孕产期记录"));
        }
        return Ok(vec![p]);
    }
    let person = person_for(c, actor, Action::ReadRecord, person_id)?;
    let mut out = Vec::new();
    for p in repo::for_person(c, &person.id)? {
        if crate::identity::service::may_on_person(
            c,
            actor,
            Action::ReadRecord,
            &p.jurisdiction,
            p.township_code.as_deref(),
            &p.person_id,
            Some(&p.id),
        )? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Of the named pregnancies, those the actor may read (by area or access grant); unknown ids are
/// dropped. For `_id` searches: an id outside the actor's reach is simply not found.
pub fn readable_ids_in(c: &mut AnyConnection, actor: &Actor, ids: &[String]) -> Result<Vec<Pregnancy>, ServiceError> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(p) = repo::by_id(c, id)?
            && crate::identity::service::may_on_person(
                c,
                actor,
                Action::ReadRecord,
                &p.jurisdiction,
                p.township_code.as_deref(),
                &p.person_id,
                Some(&p.id),
            )?
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Of records that each belong to a pregnancy, given as (record id, pregnancy id), the ids of
/// those whose pregnancy the actor may read, in the given order; each pregnancy is checked once.
/// For `_id` searches of visits and assessments: a record outside the actor's reach is not found.
pub fn keep_readable_by_pregnancy(
    c: &mut AnyConnection,
    actor: &Actor,
    records: Vec<(String, String)>,
) -> Result<Vec<String>, ServiceError> {
    let mut pregnancies: Vec<String> = records.iter().map(|(_, p)| p.clone()).collect();
    pregnancies.sort();
    pregnancies.dedup();
    let readable: std::collections::HashSet<String> = readable_ids_in(c, actor, &pregnancies)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    Ok(records
        .into_iter()
        .filter(|(_, p)| readable.contains(p))
        .map(|(id, _)| id)
        .collect())
}

/// One pregnancy for an interface (audited read).
pub fn episode_in(c: &mut AnyConnection, actor: &Actor, pregnancy_id: &str) -> Result<Episode, ServiceError> {
    let p = pregnancy_for(c, actor, Action::ReadRecord, pregnancy_id)?;
    record(c, actor, "read", pregnancy_target(&p), "interface read")?;
    let updated = repo::updated_at(c, &p.id)?;
    episode_of(c, p, updated)
}

/// A person's pregnancies (or one of them) the actor may read, for `$everything` (audited reads).
pub fn episodes_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<Episode>, ServiceError> {
    let list = readable_in(c, actor, person_id, pregnancy_id)?;
    crate::audit::service::record_many(
        c,
        actor,
        "read",
        list.iter().map(pregnancy_target).collect(),
        "interface read (everything)",
    )?;
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let updated = repo::updated_at(c, &p.id)?;
        out.push(episode_of(c, p, updated)?);
    }
    Ok(out)
}

/// What an interface search for pregnancies asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct EpisodeQuery {
    pub person_id: Option<String>,
    pub ids: Option<Vec<String>>,
    pub statuses: Option<Vec<PregnancyStatus>>,
    /// The episode overlaps the China days `[from, to)`.
    pub period_from: Option<chrono::NaiveDate>,
    pub period_to: Option<chrono::NaiveDate>,
    pub updated: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Pregnancies matching a query that the actor may read, in booking order, and how many match in
/// all (each returned pregnancy audited). A person or ids are looked up wherever they are managed,
/// then the access check decides; otherwise the actor's area is searched.
pub fn search_in(c: &mut AnyConnection, actor: &Actor, q: &EpisodeQuery) -> Result<(Vec<Episode>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "pregnancy",
            ..Default::default()
        }));
    }
    let mut ids: Option<Vec<String>> = None;
    if let Some(person) = &q.person_id {
        ids = Some(readable_in(c, actor, person, None)?.into_iter().map(|p| p.id).collect());
    }
    if let Some(wanted) = &q.ids {
        let allowed: Vec<String> = readable_ids_in(c, actor, wanted)?.into_iter().map(|p| p.id).collect();
        ids = Some(match ids {
            Some(prev) => prev.into_iter().filter(|i| allowed.contains(i)).collect(),
            None => allowed,
        });
    }
    let filter = repo::PregnancyFilter {
        scope: if ids.is_some() { None } else { Some(actor.scope.clone()) },
        ids,
        statuses: q.statuses.as_ref().map(|s| s.iter().map(|x| x.as_str()).collect()),
        period_from: q.period_from,
        period_to: q.period_to,
        updated: q.updated,
    };
    let (found, total) = repo::find(c, &filter, q.offset, q.limit)?;
    crate::audit::service::record_many(
        c,
        actor,
        "search",
        found.iter().map(|(p, _)| pregnancy_target(p)).collect(),
        "interface search",
    )?;
    let mut out = Vec::with_capacity(found.len());
    for (p, updated) in found {
        out.push(episode_of(c, p, updated)?);
    }
    Ok((out, total))
}
