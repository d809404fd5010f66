//! Child health use cases: the birth (the delivery and one record per live-born baby), the child
//! page with her schedule and growth, visits, vaccinations, screening and 预防母婴传播 measures,
//! the 出生医学证明, her identity completed later, and the township worklist of children. Every
//! call checks role and area (her record follows her mother's at birth) and audits in its
//! transaction.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

mod frail_cases;

pub use frail_cases::*;

use super::model::{
    self, BirthFacts, CertificateInput, ChildRecord, ChildVisit, ChildVisitInput, HighRiskReason, NewbornInput,
    ServiceInput, ServiceRecord, VaccinationInput,
};
use super::repo;
use super::schedule::{self, ChildFacts, Item, ServiceDone, VisitSeen};
use crate::audit::service::{guarded, read_audited, record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::growth::model as growth;
use crate::identity::model::{Person, Sex};
use crate::identity::service::{PersonSummary, PersonView, person_for, person_target, view_of};
use crate::ids::{new_id, now_utc, today_china};
use crate::immunizations::model::{Immunization, ImmunizationInput};
use crate::pregnancy::model::{Delivery, DeliveryInput};
use crate::storage::{AnyConnection, Db};
use crate::visits::schedule::Status;

pub fn child_target(person_id: &str) -> AuditTarget {
    AuditTarget {
        entity_type: "child",
        entity_id: Some(person_id.to_string()),
        person_id: Some(person_id.to_string()),
    }
}

/// A child the actor may act on (her person record decides: area or an access grant), or refuse.
fn child_for(
    c: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    id: &str,
) -> Result<(ChildRecord, Person), ServiceError> {
    let person = person_for(c, actor, action, id).map_err(|e| match e {
        ServiceError::Forbidden { reason, .. } => ServiceError::Forbidden {
            reason,
            target: Some(child_target(id)),
        },
        e => e,
    })?;
    let rec = repo::by_id(c, &person.id)?.ok_or(ServiceError::NotFound("没有找到该儿童档案"))?;
    Ok((rec, person))
}

// ------------------------------------------------------------------ the birth

/// A child as lists show her.
#[derive(Debug, Clone, Serialize)]
pub struct ChildSummary {
    pub id: String,
    pub name: String,
    pub sex: &'static str,
    pub birth_date: NaiveDate,
    pub birth_order: i32,
    pub age: String,
    pub high_risk: bool,
}

fn summary(rec: &ChildRecord, person: &Person, today: NaiveDate) -> ChildSummary {
    ChildSummary {
        id: rec.person_id.clone(),
        name: person.name.clone(),
        sex: person.sex.label_zh(),
        birth_date: rec.birth_date(),
        birth_order: rec.birth_order,
        age: age_text(rec.birth_date(), today),
        high_risk: rec.is_high_risk(),
    }
}

/// Age as the clinic says it: `12天`, `3月12天`, `2岁3月`.
pub fn age_text(birth: NaiveDate, on: NaiveDate) -> String {
    let days = (on - birth).num_days();
    if days < 0 {
        return String::new();
    }
    let mut months = 0u32;
    while birth
        .checked_add_months(chrono::Months::new(months + 1))
        .is_some_and(|d| d <= on)
    {
        months += 1;
    }
    let since = birth.checked_add_months(chrono::Months::new(months)).unwrap_or(birth);
    let rest = (on - since).num_days();
    match months {
        0 => format!("{days}天"),
        m if m < 24 => format!("{m}月{rest}天"),
        m => format!("{}岁{}月", m / 12, m % 12),
    }
}

/// What recording a birth did: the delivery and the babies' new records.
#[derive(Debug, Clone, Serialize)]
pub struct Birth {
    pub delivery: Delivery,
    pub children: Vec<ChildSummary>,
}

/// Record a delivery and, in the same transaction, one record per live-born baby: her own person
/// (her mother's area, address and phone; no second typing) and her birth facts. Babies whose
/// facts were not given (`babies` shorter than the live births) get a record to complete later.
pub async fn record_birth(
    db: &Db,
    actor: &Actor,
    pregnancy_id: String,
    delivery: DeliveryInput,
    babies: Vec<NewbornInput>,
) -> Result<Birth, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let (p, d) = crate::pregnancy::service::record_delivery_in(c, actor, &pregnancy_id, &delivery)?;
        // The 两非 ban holds for the babies' free text too (RULES.md §9.1).
        let texts: Vec<(String, &str, String)> = babies.iter().enumerate().flat_map(|(i, b)| b.texts(i)).collect();
        let texts: Vec<(&str, &str, &str)> = texts.iter().map(|(f, l, t)| (f.as_str(), *l, t.as_str())).collect();
        crate::privacy::service::refuse_fetal_sex(&texts, crate::pregnancy::service::pregnancy_target(&p))?;
        let mut errors: Vec<FieldError> = Vec::new();
        if babies.len() > usize::try_from(d.live_births).unwrap_or(0) {
            errors.push(FieldError::new(
                "babies",
                "count",
                format!("填写了 {} 名新生儿，多于活产数 {}", babies.len(), d.live_births),
            ));
        }
        let mut facts: Vec<BirthFacts> = Vec::new();
        for (i, b) in babies.iter().enumerate() {
            match b.validate(i) {
                Ok(f) if model::birth_at(d.delivery_date, f.birth_time) > now_utc() + chrono::Duration::minutes(5) => {
                    errors.push(FieldError::new(
                        &format!("babies[{i}].birth_time"),
                        "future",
                        "出生时间不能晚于现在",
                    ))
                }
                Ok(f) => facts.push(f),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let mother = person_for(c, actor, Action::ReadRecord, &p.person_id)?;
        let plurality = (d.live_births + d.stillbirths).max(1);
        let gestation = p.dating.gestational_age_on(d.delivery_date).days;
        let exposures = exposures_for(c, &p, &mother)?;
        let now = now_utc();
        let today = today_china();
        let mut children = Vec::new();
        for order in 1..=d.live_births {
            let f = facts.get(order as usize - 1).cloned().unwrap_or_default();
            let birth_at = model::birth_at(d.delivery_date, f.birth_time);
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| model::placeholder_name(&mother.name, f.sex, order, d.live_births));
            let person = crate::identity::service::register_newborn_in(
                c,
                actor,
                &mother,
                name,
                f.sex.unwrap_or(Sex::Unknown),
                d.delivery_date,
            )?;
            let rec = ChildRecord {
                person_id: person.id.clone(),
                mother_id: mother.id.clone(),
                pregnancy_id: Some(p.id.clone()),
                birth_at,
                birth_time_known: f.birth_time.is_some(),
                birth_order: order,
                plurality,
                gestation_days: Some(gestation),
                birth_weight_g: f.weight_g,
                birth_length_cm: f.length_cm,
                apgar_1: f.apgar_1,
                apgar_5: f.apgar_5,
                malformations: f.malformations.clone(),
                conditions: f.conditions.clone(),
                exposures: exposures.clone(),
                discharge_date: d.discharge_date,
                birth_facility: d.facility_name.clone(),
                certificate: None,
                jurisdiction: person.jurisdiction.clone(),
                township_code: person.township_code.clone(),
                recorded_by: actor.name.clone(),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            repo::insert(c, &rec)?;
            record(c, actor, "create", child_target(&person.id), "child record at delivery")?;
            // 早产 and 低出生体重 open her frail-child case at birth.
            frail_cases::at_birth(c, actor, &rec)?;
            children.push(summary(&rec, &person, today));
        }
        Ok(Birth { delivery: d, children })
    })
    .await
}

/// Complete (or correct) a baby's birth facts after the delivery was recorded without them.
pub async fn update_birth(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: NewbornInput,
    version: Option<i32>,
) -> Result<ChildRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let (mut rec, person) = child_for(c, actor, Action::RecordVisit, &child_id)?;
        let texts: Vec<(String, &str, String)> = input.texts(0);
        crate::privacy::service::refuse_fetal_sex(
            &texts
                .iter()
                .map(|(f, l, t)| (f.as_str(), *l, t.as_str()))
                .collect::<Vec<_>>(),
            child_target(&rec.person_id),
        )?;
        if version.is_some_and(|v| v != rec.version) {
            return Err(ServiceError::Conflict("儿童档案已被他人更新，请刷新后重试".into()));
        }
        let f = input.validate(0).map_err(ServiceError::Invalid)?;
        if let Some(t) = f.birth_time {
            rec.birth_at = model::birth_at(rec.birth_date(), Some(t));
            rec.birth_time_known = true;
        }
        rec.birth_weight_g = f.weight_g.or(rec.birth_weight_g);
        rec.birth_length_cm = f.length_cm.or(rec.birth_length_cm);
        rec.apgar_1 = f.apgar_1.or(rec.apgar_1);
        rec.apgar_5 = f.apgar_5.or(rec.apgar_5);
        if !f.malformations.is_empty() {
            rec.malformations = f.malformations;
        }
        for cond in f.conditions {
            if !rec.conditions.contains(&cond) {
                rec.conditions.push(cond);
            }
        }
        // The sex is recorded at birth, on her own record; it is set once, when it was not known.
        if let Some(sex) = f.sex
            && person.sex == Sex::Unknown
            && sex != Sex::Unknown
        {
            crate::identity::repo::set_sex(c, &person.id, sex)?;
        }
        let now = now_utc();
        if !repo::update(c, &rec, now)? {
            return Err(ServiceError::Conflict("儿童档案已被他人更新，请刷新后重试".into()));
        }
        rec.version += 1;
        rec.updated_at = now;
        record(
            c,
            actor,
            "update",
            child_target(&rec.person_id),
            "birth facts completed",
        )?;
        frail_cases::at_birth(c, actor, &rec)?;
        Ok(rec)
    })
    .await
}

/// Reaction to [`crate::identity::events::PERSONS_MERGING`]: two records that each are a child's
/// record (birth facts, visits) are not merged automatically — which birth is hers is a person's
/// decision.
pub fn refuse_merging_two_children(
    c: &mut AnyConnection,
    e: &crate::identity::events::PersonsMerging,
) -> Result<(), ServiceError> {
    if repo::by_id(c, &e.survivor.id)?.is_some() && repo::by_id(c, &e.merged.id)?.is_some() {
        return Err(ServiceError::Conflict(
            "两个档案都是儿童出生档案，不能自动合并，请人工核对".into(),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------ the child page

/// A visit with what the WHO standards say of it.
#[derive(Debug, Clone, Serialize)]
pub struct VisitRow {
    pub visit: ChildVisit,
    pub age: String,
    pub growth: Option<growth::Evaluation>,
    /// The findings as a line of text (`低体重；生长迟缓`), empty when none.
    pub findings: String,
    pub anaemia: bool,
}

/// A point of a growth chart: x (days of age, or cm for weight-for-length) and the value.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthSeries {
    pub indicator: growth::Indicator,
    pub label: &'static str,
    /// The WHO curves −3, −2, 0, +2, +3 SD, each as points.
    pub curves: Vec<(f64, Vec<(f64, f64)>)>,
    pub points: Vec<(f64, f64)>,
}

/// A service done, with its name.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    pub service: ServiceRecord,
    pub name: String,
    pub result_label: Option<&'static str>,
}

/// The child page (儿童保健档案).
#[derive(Debug, Clone, Serialize)]
pub struct ChildChart {
    pub person: PersonView,
    pub record: ChildRecord,
    pub mother: PersonSummary,
    pub sex_label: &'static str,
    pub age: String,
    pub gestation_text: Option<String>,
    pub high_risk: Vec<HighRiskReason>,
    /// The mother's positive results at the birth that start 预防母婴传播 clocks (`(code, name)`).
    pub exposures: Vec<(String, String)>,
    pub schedule: Vec<Item<'static>>,
    /// The schedule's sources: the child health norms and her cohort's immunisation programme.
    pub programme: Option<String>,
    pub to_chase: usize,
    pub visits: Vec<VisitRow>,
    pub vaccinations: Vec<Immunization>,
    pub services: Vec<ServiceRow>,
    /// Trend alerts: crossing down two major centile lines, no weight gain between two visits.
    pub alerts: Vec<String>,
    pub charts: Vec<GrowthSeries>,
    /// Her open frail-child case (体弱儿专案), if any.
    pub frail_case: Option<FrailSummary>,
    /// The 母子健康手册 number of the pregnancy she was born of (多证合一, RULES.md §6.1).
    pub handbook_no: Option<String>,
}

/// The mother's positive results (HBsAg, HIV, syphilis) as her record shows them (results and the
/// grading's facts; RULES.md §7.3 design note: the clock starts from the record).
fn exposures_for(
    c: &mut AnyConnection,
    p: &crate::pregnancy::model::Pregnancy,
    mother: &Person,
) -> Result<Vec<String>, ServiceError> {
    let f = crate::risk::service::known_facts(c, p, mother)?;
    use crate::observations::model::TestResult::Positive;
    Ok([("hbsag", f.hbsag), ("hiv", f.hiv), ("syphilis", f.syphilis)]
        .into_iter()
        .filter(|(_, r)| *r == Some(Positive))
        .map(|(c, _)| c.to_string())
        .collect())
}

/// Keep her babies' exposures as the mother's record now says (children of this pregnancy).
fn refresh_exposures(c: &mut AnyConnection, p: &crate::pregnancy::model::Pregnancy) -> Result<(), ServiceError> {
    let babies = repo::of_pregnancy(c, &p.id)?;
    if babies.is_empty() {
        return Ok(());
    }
    let Some(mother) = crate::identity::repo::by_id(c, &p.person_id)? else {
        return Ok(());
    };
    let now = exposures_for(c, p, &mother)?;
    for b in babies {
        if b.exposures != now {
            repo::set_exposures(c, &b.person_id, &now)?;
            record_system_note(c, &b.person_id, &now)?;
        }
    }
    Ok(())
}

fn record_system_note(c: &mut AnyConnection, child_id: &str, now: &[String]) -> Result<(), ServiceError> {
    crate::audit::service::record_system(
        c,
        "update",
        child_target(child_id),
        &format!("maternal exposures now [{}]", now.join(", ")),
    )
}

/// Reaction to [`crate::observations::events::RESULTS_RECORDED`]: a positive (or a corrected)
/// HIV / syphilis / HBsAg result of the mother changes her babies' 预防母婴传播 items.
pub fn refresh_exposures_after_results(
    c: &mut AnyConnection,
    e: &crate::observations::events::ResultsRecorded,
) -> Result<(), ServiceError> {
    refresh_exposures(c, &e.pregnancy)
}

/// Reaction to [`crate::risk::events::GRADE_CONFIRMED`]: the confirmed facts may say a test is
/// positive (or now negative).
pub fn refresh_exposures_after_grading(
    c: &mut AnyConnection,
    e: &crate::risk::events::GradeConfirmed,
) -> Result<(), ServiceError> {
    refresh_exposures(c, &e.pregnancy)
}

fn growth_sex(s: Sex) -> Option<growth::Sex> {
    match s {
        Sex::Male => Some(growth::Sex::Male),
        Sex::Female => Some(growth::Sex::Female),
        Sex::Unknown => None,
    }
}

/// The WHO evaluation of one visit's measurements (none for a child of unknown sex or past
/// 1,856 days, the standards' end).
fn evaluate(
    sex: Sex,
    age_days: i64,
    weight_kg: Option<f64>,
    length_cm: Option<f64>,
    position: Option<&str>,
) -> Option<growth::Evaluation> {
    let sex = growth_sex(sex)?;
    if weight_kg.is_none() && length_cm.is_none() {
        return None;
    }
    growth::evaluate(&growth::Measurement {
        sex,
        age_days: u32::try_from(age_days).ok()?,
        weight_kg,
        length_cm,
        position: position.and_then(|p| match p {
            "lying" => Some(growth::Position::Lying),
            "standing" => Some(growth::Position::Standing),
            _ => None,
        }),
        oedema: false,
    })
    .ok()
}

fn facts_for(
    rec: &ChildRecord,
    exposures: Vec<String>,
    visits: &[ChildVisit],
    services: &[ServiceRecord],
    doses: Vec<(String, NaiveDateTime)>,
) -> ChildFacts {
    ChildFacts {
        birth_at: rec.birth_at,
        birth_time_known: rec.birth_time_known,
        birth_date: rec.birth_date(),
        discharge_date: rec.discharge_date,
        high_risk: rec.is_high_risk(),
        birth_weight_g: rec.birth_weight_g,
        exposures,
        visits: visits
            .iter()
            .map(|v| VisitSeen {
                date: v.visit_date,
                hb: v.hb_g_l.is_some(),
                hearing: v.hearing.is_some(),
            })
            .collect(),
        doses,
        services: services
            .iter()
            .map(|s| ServiceDone {
                code: s.code.clone(),
                at: s.done_at,
                result: s.result.clone(),
            })
            .collect(),
    }
}

/// Trend alerts between consecutive measured visits (WHO Training Course on Child Growth
/// Assessment, "Interpreting growth indicators"): weight-for-age (or weight-for-length/height)
/// crossing down two major centile lines, and no weight gain.
fn trend_alerts(rows: &[VisitRow]) -> Vec<String> {
    let mut out = Vec::new();
    let measured: Vec<&VisitRow> = rows.iter().filter(|r| r.visit.weight_kg.is_some()).collect();
    for pair in measured.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if let (Some(ga), Some(gb)) = (&a.growth, &b.growth) {
            for (label, za, zb) in [
                ("年龄别体重", ga.weight_for_age_z, gb.weight_for_age_z),
                ("身长/身高别体重", ga.weight_for_length_z, gb.weight_for_length_z),
            ] {
                if let (Some(za), Some(zb)) = (za, zb)
                    && growth::crossed_down_two_major_centiles(za, zb)
                {
                    out.push(format!(
                        "{} 至 {}：{label}下降跨越两条主百分位线（z {za:.2} → {zb:.2}），请评估生长偏离",
                        a.visit.visit_date, b.visit.visit_date
                    ));
                }
            }
        }
        if let (Some(wa), Some(wb)) = (a.visit.weight_kg, b.visit.weight_kg)
            && let (Ok(da), Ok(db)) = (u32::try_from(a.visit.age_days), u32::try_from(b.visit.age_days))
            && growth::no_weight_gain(
                growth::Weighing {
                    age_days: da,
                    weight_kg: wa,
                },
                growth::Weighing {
                    age_days: db,
                    weight_kg: wb,
                },
            )
            .unwrap_or(false)
        {
            out.push(format!(
                "{} 至 {}：体重不增（{wa} kg → {wb} kg），请查找原因",
                a.visit.visit_date, b.visit.visit_date
            ));
        }
    }
    out
}

fn growth_charts(sex: Sex, rows: &[VisitRow]) -> Vec<GrowthSeries> {
    let Some(gs) = growth_sex(sex) else {
        return Vec::new();
    };
    let series = |indicator: growth::Indicator, points: Vec<(f64, f64)>| {
        let curves = [-3.0, -2.0, 0.0, 2.0, 3.0]
            .into_iter()
            .map(|z| {
                // Every 7th day (or 1 cm) is enough for a line at chart scale.
                let pts: Vec<(f64, f64)> = growth::curve(indicator, gs, z)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % 7 == 0)
                    .map(|(_, p)| p)
                    .collect();
                (z, pts)
            })
            .collect();
        GrowthSeries {
            indicator,
            label: indicator.label_zh(),
            curves,
            points,
        }
    };
    let wfa: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.visit.age_days <= 1856)
        .filter_map(|r| r.visit.weight_kg.map(|w| (r.visit.age_days as f64, w)))
        .collect();
    let lfa: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.visit.age_days <= 1856)
        .filter_map(|r| {
            r.growth
                .as_ref()
                .and_then(|g| g.adjusted_length_cm)
                .map(|l| (r.visit.age_days as f64, l))
        })
        .collect();
    vec![
        series(growth::Indicator::WeightForAge, wfa),
        series(growth::Indicator::LengthForAge, lfa),
    ]
}

fn visit_rows(sex: Sex, birth: NaiveDate, visits: Vec<ChildVisit>) -> Vec<VisitRow> {
    visits
        .into_iter()
        .map(|v| {
            let g = evaluate(sex, v.age_days, v.weight_kg, v.length_cm, v.position.as_deref());
            let findings = g
                .as_ref()
                .map(|g| g.classification.iter().map(|c| c.label).collect::<Vec<_>>().join("；"))
                .unwrap_or_default();
            VisitRow {
                age: age_text(birth, v.visit_date),
                anaemia: v.hb_g_l.is_some_and(|hb| model::anaemic(hb, v.age_days)),
                findings,
                growth: g,
                visit: v,
            }
        })
        .collect()
}

/// Open the child page: one audited read of her record, schedule, visits, vaccinations, services.
pub async fn open(db: &Db, actor: &Actor, child_id: String) -> Result<ChildChart, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let actor = &actor2;
        let (rec, person) = child_for(c, actor, Action::ReadRecord, &child_id)?;
        record(c, actor, "read", child_target(&rec.person_id), "child page")?;
        let mother =
            crate::identity::repo::by_id(c, &rec.mother_id)?.ok_or(ServiceError::NotFound("没有找到母亲档案"))?;
        let today = today_china();
        let now = now_utc();
        let ids = [rec.person_id.clone()];
        let visits = repo::visits_of(c, &ids)?;
        let services = repo::services_of(c, &ids)?;
        let rules = schedule::rules();
        let vaccinations = crate::immunizations::service::for_person_in(c, actor, &rec.person_id)?;
        let doses: Vec<(String, NaiveDateTime)> = vaccinations
            .iter()
            .filter(|v| v.vaccine_system == rules.vaccine_code_system() && v.status == "completed")
            .filter_map(|v| v.occurrence_at.map(|t| (v.vaccine_code.clone(), t)))
            .collect();
        let exposures = rec.exposures.clone();
        let facts = facts_for(&rec, exposures.clone(), &visits, &services, doses);
        let items = schedule::items(rules, &facts, now);
        let to_chase = schedule::to_chase(&items).len();
        let rows = visit_rows(person.sex, rec.birth_date(), visits);
        let codes = rules.service_codes();
        let services = services
            .into_iter()
            .map(|s| ServiceRow {
                name: codes
                    .iter()
                    .find(|(c, _)| *c == s.code)
                    .map_or(s.code.clone(), |(_, n)| n.to_string()),
                result_label: s
                    .result
                    .as_deref()
                    .and_then(|r| model::SERVICE_RESULTS.iter().find(|(c, _)| *c == r).map(|(_, l)| *l)),
                service: s,
            })
            .collect();
        let frail_case = frail_cases::open_case_summary(c, &rec.person_id)?;
        let handbook_no = match rec.pregnancy_id.as_deref() {
            Some(p) => crate::couple::service::handbook_of_pregnancy(c, p)?,
            None => None,
        };
        Ok(ChildChart {
            handbook_no,
            frail_case,
            mother: PersonSummary::of(&mother, today),
            sex_label: person.sex.label_zh(),
            age: age_text(rec.birth_date(), today),
            gestation_text: rec.gestation_days.map(|g| format!("{}+{} 周", g / 7, g % 7)),
            high_risk: rec.high_risk_reasons(),
            exposures: exposures
                .iter()
                .map(|e| (e.clone(), rules.exposure_name(e).unwrap_or(e).to_string()))
                .collect(),
            schedule: items,
            programme: rules.programme(rec.birth_date()).map(|(_, name)| name.to_string()),
            to_chase,
            alerts: trend_alerts(&rows),
            charts: growth_charts(person.sex, &rows),
            visits: rows,
            vaccinations,
            services,
            person: view_of(c, actor, person)?,
            record: rec,
        })
    })
    .await
}

/// A mother's children, for her pages (inside the caller's audited read; each child audited).
pub fn children_of_in(
    c: &mut AnyConnection,
    actor: &Actor,
    mother_id: &str,
) -> Result<Vec<ChildSummary>, ServiceError> {
    let list = repo::of_mother(c, mother_id)?;
    summaries_in(c, actor, list)
}

/// The babies of one pregnancy, for its page (inside the caller's audited read).
pub fn children_of_pregnancy_in(
    c: &mut AnyConnection,
    actor: &Actor,
    pregnancy_id: &str,
) -> Result<Vec<ChildSummary>, ServiceError> {
    let list = repo::of_pregnancy(c, pregnancy_id)?;
    summaries_in(c, actor, list)
}

fn summaries_in(
    c: &mut AnyConnection,
    actor: &Actor,
    list: Vec<ChildRecord>,
) -> Result<Vec<ChildSummary>, ServiceError> {
    let today = today_china();
    let mut out = Vec::new();
    for rec in list {
        if let Some(p) = crate::identity::repo::by_id(c, &rec.person_id)? {
            out.push(summary(&rec, &p, today));
        }
    }
    record_many(
        c,
        actor,
        "read",
        out.iter().map(|s| child_target(&s.id)).collect(),
        "children on the mother's record",
    )?;
    Ok(out)
}

// ------------------------------------------------------------------ visits, vaccines, services

/// Record a child health visit. Values outside the forms' ranges are refused field by field; a
/// measurement the WHO standards flag as implausible (|z| beyond WHO's limits) is refused unless
/// the clinician confirms it (`confirm_implausible`).
pub async fn record_visit(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: ChildVisitInput,
) -> Result<ChildVisit, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let (rec, person) = child_for(c, actor, Action::RecordVisit, &child_id)?;
        crate::privacy::service::refuse_fetal_sex(&input.texts(), child_target(&rec.person_id))?;
        let data = input.validate(rec.birth_date(), today_china())?;
        let g = evaluate(
            person.sex,
            data.age_days,
            data.weight_kg,
            data.length_cm,
            data.position.as_deref(),
        );
        if let Some(g) = &g
            && !data.confirm_implausible
        {
            let errors: Vec<FieldError> = g
                .flags
                .iter()
                .filter_map(|f| match f {
                    growth::Flag::ImplausibleZ { indicator, z, .. } => Some(FieldError::new(
                        if *indicator == growth::Indicator::LengthForAge {
                            "length_cm"
                        } else {
                            "weight_kg"
                        },
                        "implausible_z",
                        format!(
                            "{} z = {z:.2}，超出世界卫生组织标准的合理范围，请核对测量值；确认无误请勾选“确认测量值”",
                            indicator.label_zh()
                        ),
                    )),
                    _ => None,
                })
                .collect();
            if !errors.is_empty() {
                return Err(ServiceError::Invalid(errors));
            }
        }
        let position = data.position.clone().or_else(|| {
            data.length_cm
                .map(|_| if data.age_days < 731 { "lying" } else { "standing" }.to_string())
        });
        let v = ChildVisit {
            id: new_id(),
            child_id: rec.person_id.clone(),
            visit_date: data.visit_date,
            age_days: data.age_days,
            weight_kg: data.weight_kg,
            length_cm: data.length_cm,
            position,
            head_circumference_cm: data.head_circumference_cm,
            feeding: data.feeding,
            development_warning: data.development_warning,
            rickets_signs: data.rickets_signs,
            exam: data.exam,
            hb_g_l: data.hb_g_l,
            hearing: data.hearing,
            vision: data.vision,
            illness: data.illness,
            advice: data.advice,
            referral: data.referral,
            next_appointment: data.next_appointment,
            facility_id: actor.facility.id.clone(),
            recorded_by: actor.name.clone(),
            recorded_at: now_utc(),
        };
        repo::insert_visit(c, &v, &rec)?;
        record(
            c,
            actor,
            "create",
            AuditTarget {
                entity_type: "child_visit",
                entity_id: Some(v.id.clone()),
                person_id: Some(rec.person_id.clone()),
            },
            "child health visit recorded",
        )?;
        // What the visit shows opens or adds to her frail-child case, in this transaction.
        frail_cases::after_visit(c, actor, &rec, person.sex, &v, g.as_ref())?;
        Ok(v)
    })
    .await
}

/// Record a programme vaccination as an immunization of hers (the FHIR Immunization too), with the
/// traceability fields of 疫苗管理法 Art. 46 in the document kept with it.
pub async fn record_vaccination(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: VaccinationInput,
) -> Result<Immunization, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let (rec, _) = child_for(c, actor, Action::RecordVisit, &child_id)?;
        let rules = schedule::rules();
        let v = input.validate(&rules.vaccines(), rec.birth_at, now_utc())?;
        let name = rules.vaccine_name(&v.vaccine).unwrap_or(&v.vaccine).to_string();
        let occurrence = format!("{}+08:00", (v.given_at + chrono::Duration::hours(8)).format("%Y-%m-%dT%H:%M:%S"));
        let mut doc = serde_json::json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": rules.vaccine_code_system(), "code": v.vaccine, "display": name}], "text": name},
            "occurrenceDateTime": occurrence,
            "primarySource": !v.from_certificate,
            "performer": [{"actor": {"display": actor.display_name}}],
        });
        if let Some(m) = &v.manufacturer {
            doc["manufacturer"] = serde_json::json!({"display": m});
        }
        if let Some(l) = &v.lot_number {
            doc["lotNumber"] = serde_json::json!(l);
        }
        if let Some(x) = v.expiry_date {
            doc["expirationDate"] = serde_json::json!(x.to_string());
        }
        if let Some(s) = &v.site {
            doc["site"] = serde_json::json!({"text": s});
        }
        if v.from_certificate {
            doc["reportOrigin"] = serde_json::json!({"text": "预防接种证补录"});
        }
        let imm = ImmunizationInput {
            status: "completed".into(),
            vaccine_system: rules.vaccine_code_system().to_string(),
            vaccine_code: v.vaccine.clone(),
            vaccine_text: name,
            occurrence,
            occurrence_at: Some(v.given_at),
            lot_number: v.lot_number.clone(),
            identifiers: Vec::new(),
            received: Some(doc.to_string()),
        };
        crate::immunizations::service::record_in(c, actor, &rec.person_id, &imm)
    })
    .await
}

/// Record a screening, lab or 预防母婴传播 measure done for her.
pub async fn record_service(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: ServiceInput,
) -> Result<ServiceRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let (rec, _) = child_for(c, actor, Action::RecordVisit, &child_id)?;
        crate::privacy::service::refuse_fetal_sex(
            &[("note", "说明", input.note.as_deref().unwrap_or(""))],
            child_target(&rec.person_id),
        )?;
        let rules = schedule::rules();
        let d = input.validate(&rules.service_codes(), rec.birth_at, now_utc())?;
        let s = ServiceRecord {
            id: new_id(),
            child_id: rec.person_id.clone(),
            code: d.code,
            done_at: d.done_at,
            result: d.result,
            note: d.note,
            facility_id: actor.facility.id.clone(),
            recorded_by: actor.name.clone(),
            recorded_at: now_utc(),
        };
        repo::insert_service(c, &s, &rec)?;
        record(
            c,
            actor,
            "create",
            AuditTarget {
                entity_type: "child_service",
                entity_id: Some(s.id.clone()),
                person_id: Some(rec.person_id.clone()),
            },
            &format!("child service {}", s.code),
        )?;
        Ok(s)
    })
    .await
}

/// Issue the 出生医学证明 (once; its number is unique).
pub async fn issue_certificate(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: CertificateInput,
) -> Result<ChildRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let (mut rec, _) = child_for(c, actor, Action::RecordVisit, &child_id)?;
        if rec.certificate.is_some() {
            return Err(ServiceError::Conflict(
                "出生医学证明已签发；换发、补发请按规定办理".into(),
            ));
        }
        let cert = input.validate(rec.birth_date(), today_china())?;
        rec.certificate = Some(cert);
        let now = now_utc();
        let updated = repo::update(c, &rec, now).map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                ServiceError::invalid("number", "taken", "该出生医学证明编号已被使用")
            }
            e => e.into(),
        })?;
        if !updated {
            return Err(ServiceError::Conflict("儿童档案已被他人更新，请刷新后重试".into()));
        }
        rec.version += 1;
        record(
            c,
            actor,
            "update",
            child_target(&rec.person_id),
            "birth certificate issued",
        )?;
        Ok(rec)
    })
    .await
}

/// Her name, ID number and health card once the family has them: the same record, never a second.
pub async fn complete_identity(
    db: &Db,
    actor: &Actor,
    child_id: String,
    name: Option<String>,
    id_number: Option<String>,
    health_card: Option<String>,
) -> Result<Person, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let (rec, _) = child_for(c, actor, Action::RegisterPerson, &child_id)?;
        crate::identity::service::complete_identity_in(
            c,
            actor,
            &rec.person_id,
            name,
            id_number.as_deref(),
            health_card.as_deref(),
        )
    })
    .await
}

// ------------------------------------------------------------------ the worklist

/// A child on the worklist: her most urgent item and how many she has.
#[derive(Debug, Clone, Serialize)]
pub struct ChildWorkItem {
    pub child: ChildSummary,
    pub item: Item<'static>,
    pub open_items: usize,
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildWorklist {
    pub items: Vec<ChildWorkItem>,
    pub overdue_total: usize,
    pub due_total: usize,
    /// Of the overdue ones, 预防母婴传播 clocks run out (the most urgent).
    pub pmtct_late: usize,
}

/// The children of my area (under seven) with something due or overdue, most urgent first (a late
/// 预防母婴传播 clock, then the most overdue item), the first `limit` of them and the totals.
pub async fn worklist(db: &Db, actor: &Actor, limit: usize) -> Result<ChildWorklist, ServiceError> {
    let actor = actor.clone();
    read_audited(db, move |c| {
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "worklist",
                ..Default::default()
            }));
        }
        let now = now_utc();
        let today = today_china();
        let (township, prefix) = actor.scope.filters();
        let since = now - chrono::Duration::days(model::MAX_AGE_DAYS);
        let children = repo::in_area(c, township, prefix, since)?;
        let ids: Vec<String> = children.iter().map(|r| r.person_id.clone()).collect();
        let rules = schedule::rules();
        let among = match township {
            Some(t) => repo::Among::Township(t),
            None => repo::Among::Children(&ids),
        };
        let mut marks: std::collections::HashMap<String, ChildFacts> = std::collections::HashMap::new();
        for (child, date, hb, hearing) in repo::visit_marks(c, among)? {
            marks
                .entry(child)
                .or_default()
                .visits
                .push(VisitSeen { date, hb, hearing });
        }
        for (child, code, at, result) in repo::service_marks(c, among)? {
            marks
                .entry(child)
                .or_default()
                .services
                .push(ServiceDone { code, at, result });
        }
        for (child, vaccine, at) in repo::dose_marks(c, among, rules.vaccine_code_system())? {
            marks.entry(child).or_default().doses.push((vaccine, at));
        }
        let mut lines: Vec<(ChildRecord, Item<'static>, usize)> = Vec::new();
        for rec in children {
            let done = marks.remove(&rec.person_id).unwrap_or_default();
            let facts = ChildFacts {
                visits: done.visits,
                services: done.services,
                doses: done.doses,
                ..facts_for(&rec, rec.exposures.clone(), &[], &[], Vec::new())
            };
            let items = schedule::items(rules, &facts, now);
            let chase = schedule::to_chase(&items);
            if let Some(first) = chase.first() {
                let first = (*first).clone();
                let n = chase.len();
                lines.push((rec, first, n));
            }
        }
        let urgency = |i: &Item| {
            (
                i.status != Status::Overdue,
                !(i.kind == schedule::ItemKind::Pmtct && i.status == Status::Overdue),
                std::cmp::Reverse(i.days_overdue),
                i.due_to,
            )
        };
        lines.sort_by_key(|l| urgency(&l.1));
        let overdue_total = lines.iter().filter(|l| l.1.status == Status::Overdue).count();
        let pmtct_late = lines
            .iter()
            .filter(|l| l.1.status == Status::Overdue && l.1.kind == schedule::ItemKind::Pmtct)
            .count();
        let due_total = lines.len() - overdue_total;
        lines.truncate(limit);
        let ids: Vec<String> = lines.iter().map(|l| l.0.person_id.clone()).collect();
        let persons: std::collections::HashMap<String, Person> = crate::identity::repo::by_ids(c, &ids)?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut items = Vec::with_capacity(lines.len());
        for (rec, item, open_items) in lines {
            let Some(p) = persons.get(&rec.person_id) else {
                continue;
            };
            items.push(ChildWorkItem {
                child: summary(&rec, p, today),
                overdue: item.status == Status::Overdue,
                item,
                open_items,
            });
        }
        record_many(
            c,
            &actor,
            "search",
            items.iter().map(|i| person_target(&i.child.id)).collect(),
            "child worklist",
        )?;
        Ok(ChildWorklist {
            items,
            overdue_total,
            due_total,
            pmtct_late,
        })
    })
    .await
}

// ------------------------------------------------------------------ interfaces (FHIR, HL7)
//
// Inside the caller's transaction; every record returned is audited there. Access follows the
// child's own person record (her area, or an access grant), as on her page.

fn visit_target(v: &ChildVisit) -> AuditTarget {
    AuditTarget {
        entity_type: "child_visit",
        entity_id: Some(v.id.clone()),
        person_id: Some(v.child_id.clone()),
    }
}

/// Whether the actor may read this child's record (no refusal: for searches and `$everything`,
/// which leave out what the caller may not see).
fn may_read_child(c: &mut AnyConnection, actor: &Actor, child_id: &str) -> Result<bool, ServiceError> {
    let Some(p) = crate::identity::repo::by_id(c, child_id)? else {
        return Ok(false);
    };
    crate::identity::service::may_on_person(
        c,
        actor,
        Action::ReadRecord,
        &p.jurisdiction,
        p.township_code.as_deref(),
        &p.id,
        None,
    )
}

/// A person's birth record if she is a child of the register (her birth time, birth order and
/// plurality for FHIR `Patient`), None for anyone else. Audited as a read of the child record.
pub fn birth_in(c: &mut AnyConnection, actor: &Actor, person_id: &str) -> Result<Option<ChildRecord>, ServiceError> {
    if repo::by_id(c, person_id)?.is_none() {
        return Ok(None);
    }
    let (rec, _) = child_for(c, actor, Action::ReadRecord, person_id)?;
    record(c, actor, "read", child_target(&rec.person_id), "interface read (birth)")?;
    Ok(Some(rec))
}

/// A child and her mother as her record names her (FHIR `RelatedPerson`, relationship mother).
#[derive(Debug, Clone)]
pub struct MotherLink {
    pub child: ChildRecord,
    /// The mother's record now (her name, birth date, phone, address, identifiers).
    pub mother: crate::identity::model::PersonVersion,
}

impl MotherLink {
    /// When what the link shows last changed: the child's record made, or the mother's changed.
    pub fn changed_at(&self) -> NaiveDateTime {
        self.child.created_at.max(self.mother.updated_at)
    }
}

/// The link of a child the actor may read, audited as a read of the child's record and of her
/// mother's (whose details it shows).
fn link_of(
    c: &mut AnyConnection,
    actor: &Actor,
    rec: ChildRecord,
    detail: &str,
) -> Result<Option<MotherLink>, ServiceError> {
    let Some(mother) = crate::identity::repo::version_now(c, &rec.mother_id)? else {
        return Ok(None);
    };
    record_many(
        c,
        actor,
        "read",
        vec![child_target(&rec.person_id), person_target(&rec.mother_id)],
        detail,
    )?;
    Ok(Some(MotherLink { child: rec, mother }))
}

/// A child's link to her mother, if the actor may read the child's record (her record names
/// her mother; the mother's details are part of it, as on the child page).
pub fn mother_link_in(c: &mut AnyConnection, actor: &Actor, child_id: &str) -> Result<MotherLink, ServiceError> {
    let (rec, _) = child_for(c, actor, Action::ReadRecord, child_id)?;
    link_of(c, actor, rec, "interface read (mother of a child)")?.ok_or(ServiceError::NotFound("没有找到母亲档案"))
}

/// For `$everything` of a person: her own link to her mother when she is a child, and her
/// children's links when she is a mother (only the babies of `pregnancy_id` when given) — those
/// the actor may read.
pub fn mother_links_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<MotherLink>, ServiceError> {
    let mut records = Vec::new();
    if pregnancy_id.is_none()
        && let Some(own) = repo::by_id(c, person_id)?
    {
        records.push(own);
    }
    records.extend(match pregnancy_id {
        Some(p) => repo::of_pregnancy(c, p)?
            .into_iter()
            .filter(|r| r.mother_id == person_id)
            .collect(),
        None => repo::of_mother(c, person_id)?,
    });
    let mut out = Vec::new();
    for rec in records {
        if may_read_child(c, actor, &rec.person_id)?
            && let Some(l) = link_of(c, actor, rec, "interface read (everything)")?
        {
            out.push(l);
        }
    }
    Ok(out)
}

/// What a search for children's links to their mothers asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct LinkQuery {
    pub child_id: Option<String>,
    /// Child ids.
    pub ids: Option<Vec<String>>,
    pub changed: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Links matching a query that the actor may read, newest birth first, and how many match in all.
/// A child named is looked up wherever she is managed, then her record's access decides — refused
/// (audited by the door) when the actor may not read her, as the pathway searches are; ids are
/// looked up wherever they are and each checked; otherwise the actor's area.
pub fn mother_link_search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &LinkQuery,
) -> Result<(Vec<MotherLink>, i64), ServiceError> {
    if let Some(child) = &q.child_id
        && crate::identity::repo::by_id(c, child)?.is_some()
    {
        person_for(c, actor, Action::ReadRecord, child).map_err(|e| match e {
            ServiceError::Forbidden { reason, .. } => ServiceError::Forbidden {
                reason,
                target: Some(child_target(child)),
            },
            e => e,
        })?;
    }
    let Some(reach) =
        crate::identity::service::search_reach(c, actor, "child", q.child_id.as_deref(), q.ids.clone(), None)?
    else {
        return Ok((Vec::new(), 0));
    };
    let ids = match (&q.child_id, reach.ids.clone()) {
        (Some(child), Some(ids)) => Some(ids.into_iter().filter(|i| i == child).collect()),
        (Some(child), None) => Some(vec![child.clone()]),
        (None, ids) => ids,
    };
    let (township, prefix) = reach
        .scope
        .as_ref()
        .map(|s| s.filters())
        .map_or((None, None), |(t, p)| (t.map(str::to_string), p.map(str::to_string)));
    let filter = repo::ChildFilter {
        ids,
        township,
        prefix,
        changed: q.changed,
    };
    let (found, total) = repo::find_children(c, &filter, q.offset, q.limit)?;
    let (found, total) = reach.keep_readable(found, total, |r| may_read_child(c, actor, &r.person_id))?;
    let mut out = Vec::new();
    for rec in found {
        out.extend(link_of(c, actor, rec, "interface search")?);
    }
    Ok((out, total))
}

/// A child health visit as interfaces show it: the visit, what the WHO standards say of it, and
/// which of the 13 contacts it was (`(code, name)` of `rules/child/schedule-2017.toml`; None for
/// a visit between contacts).
#[derive(Debug, Clone)]
pub struct ChildVisitView {
    pub visit: ChildVisit,
    pub growth: Option<growth::Evaluation>,
    pub contact: Option<(String, String)>,
}

impl ChildVisitView {
    /// Its measurements one by one (FHIR Observations `<visit id>.<suffix>`).
    pub fn measures(&self) -> Vec<(model::Measure, f64)> {
        model::measures_of(&self.visit, self.growth.as_ref().and_then(|g| g.bmi))
    }
}

/// Views of some of one child's visits: contacts are judged against all of her visits.
fn views_of(
    c: &mut AnyConnection,
    rec: &ChildRecord,
    person: &Person,
    visits: Vec<ChildVisit>,
) -> Result<Vec<ChildVisitView>, ServiceError> {
    let all = repo::visits_of(c, std::slice::from_ref(&rec.person_id))?;
    let facts = facts_for(rec, Vec::new(), &all, &[], Vec::new());
    let dates: Vec<NaiveDate> = all.iter().map(|v| v.visit_date).collect();
    let contacts = schedule::contacts(schedule::rules(), &facts, &dates);
    Ok(visits
        .into_iter()
        .map(|v| {
            let contact = all
                .iter()
                .position(|a| a.id == v.id)
                .and_then(|i| contacts.get(i).cloned().flatten());
            ChildVisitView {
                growth: evaluate(person.sex, v.age_days, v.weight_kg, v.length_cm, v.position.as_deref()),
                contact,
                visit: v,
            }
        })
        .collect())
}

/// One child health visit (FHIR `Encounter`), if the actor may read the child's record (audited).
pub fn child_visit_in(c: &mut AnyConnection, actor: &Actor, visit_id: &str) -> Result<ChildVisitView, ServiceError> {
    let v = repo::visit_by_id(c, visit_id)?.ok_or(ServiceError::NotFound("没有找到该儿童随访记录"))?;
    let (rec, person) = child_for(c, actor, Action::ReadRecord, &v.child_id).map_err(|e| match e {
        ServiceError::Forbidden { reason, .. } => ServiceError::Forbidden {
            reason,
            target: Some(visit_target(&v)),
        },
        e => e,
    })?;
    record(c, actor, "read", visit_target(&v), "interface read")?;
    let mut views = views_of(c, &rec, &person, vec![v])?;
    views.pop().ok_or(ServiceError::NotFound("没有找到该儿童随访记录"))
}

/// Every visit of a child (none for a person who is not one), for `$everything` (audited reads).
pub fn child_visits_for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
) -> Result<Vec<ChildVisitView>, ServiceError> {
    if repo::by_id(c, person_id)?.is_none() {
        return Ok(Vec::new());
    }
    let (rec, person) = child_for(c, actor, Action::ReadRecord, person_id)?;
    let visits = repo::visits_of(c, std::slice::from_ref(&rec.person_id))?;
    record_many(
        c,
        actor,
        "read",
        visits.iter().map(visit_target).collect(),
        "interface read (everything)",
    )?;
    views_of(c, &rec, &person, visits)
}

/// What an interface search for child visits asks (every field optional; AND).
#[derive(Debug, Clone, Default)]
pub struct ChildVisitQuery {
    pub person_id: Option<String>,
    pub ids: Option<Vec<String>>,
    /// Visit dates `[from, to)`.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub recorded: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// Child visits matching a query that the actor may read, by date, and how many match in all
/// (each returned one audited). A child named, or ids, are looked up wherever they are, then her
/// record's access decides; otherwise the actor's area.
pub fn child_visit_search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &ChildVisitQuery,
) -> Result<(Vec<ChildVisitView>, i64), ServiceError> {
    let Some(reach) =
        crate::identity::service::search_reach(c, actor, "child_visit", q.person_id.as_deref(), q.ids.clone(), None)?
    else {
        return Ok((Vec::new(), 0));
    };
    let (township, prefix) = reach
        .scope
        .as_ref()
        .map(|s| s.filters())
        .map_or((None, None), |(t, p)| (t.map(str::to_string), p.map(str::to_string)));
    let filter = repo::VisitFilter {
        child_ids: q.person_id.clone().map(|p| vec![p]),
        ids: reach.ids.clone(),
        township,
        prefix,
        date_from: q.date_from,
        date_to: q.date_to,
        recorded: q.recorded,
    };
    let (found, total) = repo::find_visits(c, &filter, q.offset, q.limit)?;
    let (found, total) = reach.keep_readable(found, total, |v| may_read_child(c, actor, &v.child_id))?;
    record_many(
        c,
        actor,
        "search",
        found.iter().map(visit_target).collect(),
        "interface search",
    )?;
    let mut out: Vec<ChildVisitView> = Vec::with_capacity(found.len());
    let mut by_child: Vec<(String, Vec<ChildVisit>)> = Vec::new();
    for v in found {
        match by_child.iter_mut().find(|(id, _)| *id == v.child_id) {
            Some((_, list)) => list.push(v),
            None => by_child.push((v.child_id.clone(), vec![v])),
        }
    }
    for (child_id, visits) in by_child {
        let (Some(rec), Some(person)) = (repo::by_id(c, &child_id)?, crate::identity::repo::by_id(c, &child_id)?)
        else {
            continue;
        };
        out.extend(views_of(c, &rec, &person, visits)?);
    }
    out.sort_by(|a, b| (a.visit.visit_date, &a.visit.id).cmp(&(b.visit.visit_date, &b.visit.id)));
    Ok((out, total))
}

/// What a search for one child's growth measurements asks.
#[derive(Debug, Clone, Default)]
pub struct GrowthQuery {
    pub person_id: String,
    /// `(visit id, measure)` pairs (FHIR ids `<visit id>.<suffix>`).
    pub ids: Option<Vec<(String, model::Measure)>>,
    pub measures: Option<Vec<model::Measure>>,
    /// Visit dates `[from, to)`.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub recorded: crate::ids::TimeRange,
    pub offset: i64,
    pub limit: i64,
}

/// A visit measurement: the visit, which measure, its value.
pub type MeasureRow = (ChildVisitView, model::Measure, f64);

/// One child's visit measurements matching a query, oldest visit first (in [`model::Measure::ALL`]
/// order within a visit), one page and how many match in all; the visits shown are audited. A
/// person who is not a child, or whose record the actor may not read, has none (never a refusal).
pub fn growth_search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &GrowthQuery,
) -> Result<(Vec<MeasureRow>, i64), ServiceError> {
    if !actor.may(Action::ReadRecord) {
        return Err(ServiceError::forbidden(AuditTarget {
            entity_type: "child_visit",
            ..Default::default()
        }));
    }
    let Some(rec) = repo::by_id(c, &q.person_id)? else {
        return Ok((Vec::new(), 0));
    };
    if !may_read_child(c, actor, &rec.person_id)? {
        return Ok((Vec::new(), 0));
    }
    let Some(person) = crate::identity::repo::by_id(c, &rec.person_id)? else {
        return Ok((Vec::new(), 0));
    };
    let visits: Vec<ChildVisit> = repo::visits_of(c, std::slice::from_ref(&rec.person_id))?
        .into_iter()
        .filter(|v| q.date_from.is_none_or(|d| v.visit_date >= d) && q.date_to.is_none_or(|d| v.visit_date < d))
        .filter(|v| {
            q.recorded.from.is_none_or(|t| v.recorded_at >= t) && q.recorded.to.is_none_or(|t| v.recorded_at < t)
        })
        .collect();
    let mut all = Vec::new();
    for view in views_of(c, &rec, &person, visits)? {
        for (m, value) in view.measures() {
            let wanted = q.measures.as_ref().is_none_or(|l| l.contains(&m))
                && q.ids
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|(v, x)| *v == view.visit.id && *x == m));
            if wanted {
                all.push((view.clone(), m, value));
            }
        }
    }
    let total = all.len() as i64;
    let page: Vec<MeasureRow> = all
        .into_iter()
        .skip(usize::try_from(q.offset).unwrap_or(0))
        .take(usize::try_from(q.limit).unwrap_or(0))
        .collect();
    let mut shown: Vec<AuditTarget> = Vec::new();
    for (v, _, _) in &page {
        if !shown
            .iter()
            .any(|t| t.entity_id.as_deref() == Some(v.visit.id.as_str()))
        {
            shown.push(visit_target(&v.visit));
        }
    }
    record_many(c, actor, "search", shown, "interface search (measurements)")?;
    Ok((page, total))
}

/// What recording a reported dose did.
#[derive(Debug, Clone)]
pub enum DoseOutcome {
    Recorded(Box<Immunization>),
    /// The same vaccine is already recorded as given to her that day: recorded once.
    AlreadyRecorded,
}

/// Record a dose another system reports (HL7 VXU^V04 from an immunisation information system) as
/// an immunization of the child, inside the caller's transaction: the interface must be allowed
/// to record results for her ([`Action::RecordResult`], as for any result it sends); the dose is
/// checked as on the form ([`model::ReportedDose`]); a completed dose of the same vaccine on the
/// same day (China time) already recorded — from any door — is not recorded again.
pub fn record_reported_dose_in(
    c: &mut AnyConnection,
    actor: &Actor,
    child_id: &str,
    dose: &model::ReportedDose,
) -> Result<DoseOutcome, ServiceError> {
    use model::ReportedVaccine;
    let (rec, _) = child_for(c, actor, Action::RecordResult, child_id)?;
    let rules = schedule::rules();
    dose.validate(&rules.vaccines(), rec.birth_at, now_utc())?;
    let (system, code, text) = match &dose.vaccine {
        ReportedVaccine::Programme(code) => (
            rules.vaccine_code_system().to_string(),
            code.clone(),
            rules.vaccine_name(code).unwrap_or(code).to_string(),
        ),
        ReportedVaccine::Other { system, code, text } => (
            system.clone(),
            code.clone(),
            if text.trim().is_empty() {
                code.clone()
            } else {
                text.clone()
            },
        ),
    };
    let day = crate::ids::china_date(dose.given_at);
    let day_start = day.and_time(chrono::NaiveTime::MIN) - chrono::Duration::hours(8);
    if repo::dose_on(
        c,
        &rec.person_id,
        &system,
        &code,
        day_start,
        day_start + chrono::Duration::days(1),
    )? {
        return Ok(DoseOutcome::AlreadyRecorded);
    }
    let local = dose.given_at + chrono::Duration::hours(8);
    let occurrence = if dose.date_only {
        local.format("%Y-%m-%d").to_string()
    } else {
        format!("{}+08:00", local.format("%Y-%m-%dT%H:%M:%S"))
    };
    let mut coding = vec![serde_json::json!({"system": system, "code": code, "display": text})];
    for s in dose.sent_as.iter().filter(|s| !(s.system == system && s.code == code)) {
        let mut one = serde_json::json!({"code": s.code});
        if !s.system.is_empty() {
            one["system"] = serde_json::json!(s.system);
        }
        if !s.text.is_empty() {
            one["display"] = serde_json::json!(s.text);
        }
        coding.push(one);
    }
    let primary = dose.primary_source();
    let mut doc = serde_json::json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": coding, "text": text},
        "occurrenceDateTime": occurrence,
        "primarySource": primary,
    });
    if !primary {
        doc["reportOrigin"] = serde_json::json!({"text": format!("免疫规划信息系统报告（{}）", dose.source)});
    }
    if dose.administered && !dose.traceable() {
        doc["note"] = serde_json::json!([{"text": "报告为新接种记录，但未附批号、上市许可持有人或有效期：按报告记录保存，不作为本机构追溯记录"}]);
    }
    if let Some(m) = &dose.manufacturer {
        doc["manufacturer"] = serde_json::json!({"display": m});
    }
    if let Some(l) = &dose.lot_number {
        doc["lotNumber"] = serde_json::json!(l);
    }
    if let Some(x) = dose.expiry_date {
        doc["expirationDate"] = serde_json::json!(x.to_string());
    }
    for (key, coded) in [("route", &dose.route), ("site", &dose.site)] {
        if let Some(k) = coded {
            let mut concept = serde_json::json!({});
            if !k.code.is_empty() {
                let mut one = serde_json::json!({"code": k.code});
                if !k.system.is_empty() {
                    one["system"] = serde_json::json!(k.system);
                }
                if !k.text.is_empty() {
                    one["display"] = serde_json::json!(k.text);
                }
                concept["coding"] = serde_json::json!([one]);
            }
            if !k.text.is_empty() {
                concept["text"] = serde_json::json!(k.text);
            }
            if concept.as_object().is_some_and(|o| !o.is_empty()) {
                doc[key] = concept;
            }
        }
    }
    if let Some(p) = &dose.performer {
        doc["performer"] = serde_json::json!([{"actor": {"display": p}}]);
    }
    let imm = ImmunizationInput {
        status: "completed".into(),
        vaccine_system: system,
        vaccine_code: code,
        vaccine_text: text,
        occurrence,
        occurrence_at: Some(dose.given_at),
        lot_number: dose.lot_number.clone(),
        identifiers: Vec::new(),
        received: Some(doc.to_string()),
    };
    let x = crate::immunizations::service::record_in(c, actor, &rec.person_id, &imm)?;
    Ok(DoseOutcome::Recorded(Box::new(x)))
}

/// `mch-chain child schedule --birth-date`: the standard schedule of a child born that day (no
/// exposure, not high-risk, nothing done yet), as of her birth.
pub fn standard_schedule(birth_date: NaiveDate) -> Vec<Item<'static>> {
    let birth_at = model::birth_at(birth_date, None);
    let facts = ChildFacts {
        birth_at,
        birth_date,
        ..ChildFacts::default()
    };
    schedule::items(schedule::rules(), &facts, birth_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_the_clinic_says_them() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(age_text(d("2026-01-10"), d("2026-01-22")), "12天");
        assert_eq!(age_text(d("2026-01-10"), d("2026-04-22")), "3月12天");
        assert_eq!(age_text(d("2024-01-10"), d("2026-04-22")), "2岁3月");
    }
}
