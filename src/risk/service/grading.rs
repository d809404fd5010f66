//! Grading (附件2): the form pre-filled from the record, a clinician's confirmation (removals with
//! reasons, no silent downgrade), and the plan the grade calls for — opening or updating the
//! high-risk case (专案) and the report to the district.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::{FieldError, ServiceError};
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::pregnancy::service::pregnancy_for;
use crate::risk::cases::{CaseRecord, CaseReport, CaseStatus, Escalation};
use crate::risk::model::{
    Assessment, AssessmentRecord, AssessmentStatus, CatalogueItem, Facts, ItemColour, RemovedFactor, RiskColour,
    RiskFactor, management, plan_for, rule_set,
};
use crate::risk::repo;
use crate::storage::{AnyConnection, Db};

use super::facts::{annotate_dates, assess, known_facts, known_facts_dated, sources_of};
use super::shared::{case_target, config_error, pregnancy_target, row_scope};

/// The grading form: what data shows, proposed factors with their reasons, the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct GradingForm {
    pub pregnancy_id: String,
    pub person: PersonSummary,
    pub ga_today: String,
    pub facts: Facts,
    pub proposal: Assessment,
    pub current: Option<AssessmentRecord>,
    pub catalogue: Vec<CatalogueGroup>,
    pub rule_set_name: String,
    /// Where each pre-filled value came from (visit, result, pre-pregnancy screening).
    pub sources: Vec<super::facts::FactSource>,
    pub prepregnancy: Option<super::facts::PrepregnancyNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogueGroup {
    pub colour: ItemColour,
    pub label: &'static str,
    pub items: Vec<CatalogueItem>,
}

pub async fn grading_form(
    db: &Db,
    actor: &Actor,
    rule_set_id: String,
    pregnancy_id: String,
) -> Result<GradingForm, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let p = pregnancy_for(c, &actor2, Action::Grade, &pregnancy_id)?;
        let person = person_for(c, &actor2, Action::ReadRecord, &p.person_id)?;
        record(
            c,
            &actor2,
            "read",
            pregnancy_target(&p, "pregnancy", None),
            "risk grading form",
        )?;
        let rules = rule_set(&rule_set_id).map_err(config_error)?;
        let (facts, dated) = known_facts_dated(c, &p, &person)?;
        let (sources, prepregnancy) = sources_of(c, &p, &dated)?;
        let history = repo::assessments(c, &p.id)?;
        let mut proposal = assess(&p, &history, rules, &facts)?;
        annotate_dates(&mut proposal, rules, &facts, &dated);
        let current = history
            .into_iter()
            .rev()
            .find(|a| a.status == AssessmentStatus::Confirmed);
        let catalogue = [
            ItemColour::Yellow,
            ItemColour::Orange,
            ItemColour::Red,
            ItemColour::Purple,
        ]
        .into_iter()
        .map(|colour| CatalogueGroup {
            colour,
            label: match colour {
                ItemColour::Yellow => "黄色（一般风险）",
                ItemColour::Orange => "橙色（较高风险）",
                ItemColour::Red => "红色（高风险）",
                ItemColour::Purple => "紫色（传染性疾病）",
            },
            items: rules.items.iter().filter(|i| i.colour == colour).cloned().collect(),
        })
        .collect();
        Ok(GradingForm {
            pregnancy_id: p.id.clone(),
            person: PersonSummary::of(&person, today_china()),
            ga_today: p.dating.gestational_age_on(today_china()).to_string(),
            facts,
            proposal,
            current,
            catalogue,
            rule_set_name: rules.name.clone(),
            sources,
            prepregnancy,
        })
    })
    .await
}

/// A clinician's grading decision.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GradeInput {
    pub facts: Facts,
    /// Data-decided factors the clinician removes, each with a reason.
    #[serde(default)]
    pub removed: Vec<RemovedFactor>,
    #[serde(default)]
    pub note: String,
    /// Required to confirm a grade lower than the current one.
    #[serde(default)]
    pub confirm_downgrade: bool,
}

/// Confirm a grade. Removing a factor the data decided needs a reason; a lower colour than the
/// current one needs an explicit confirmation and a note (the colour never goes down silently).
/// Orange, red and purple open a case (or update the open one) and, for orange and red, a report
/// to the district with its deadline.
pub async fn grade(
    db: &Db,
    actor: &Actor,
    rule_set_id: String,
    pregnancy_id: String,
    input: GradeInput,
) -> Result<AssessmentRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let p = pregnancy_for(c, actor, Action::Grade, &pregnancy_id)?;
        // The 两非 ban (RULES.md §9.1) on the grading's free text: the note and removal reasons.
        let reasons: Vec<(String, &str)> = input
            .removed
            .iter()
            .map(|r| (format!("remove_reason_{}", r.code), r.reason.as_str()))
            .collect();
        let mut texts = vec![("note", "备注", input.note.as_str())];
        texts.extend(reasons.iter().map(|(field, text)| (field.as_str(), "移除理由", *text)));
        crate::privacy::service::refuse_fetal_sex(&texts, pregnancy_target(&p, "pregnancy", None))?;
        if p.status == PregnancyStatus::Ended {
            return Err(ServiceError::Conflict("该孕产期档案已结束".into()));
        }
        let rules = rule_set(&rule_set_id).map_err(config_error)?;
        let history = repo::assessments(c, &p.id)?;
        let person = person_for(c, actor, Action::ReadRecord, &p.person_id)?;
        let known = known_facts(c, &p, &person)?;
        // Age comes from the record (birth date and booking), never from what was typed.
        let mut facts = input.facts.clone();
        facts.age_years = known.age_years;
        let evaluated = assess(&p, &history, rules, &facts)?;
        // What the record shows must not disappear silently: a data-decided factor that the
        // submitted facts no longer produce (a value edited or left out) needs a reason, like an
        // explicit removal.
        let from_record = assess(
            &p,
            &history,
            rules,
            &Facts {
                factors: Vec::new(),
                ..known
            },
        )?;
        let mut errors = Vec::new();
        for f in &from_record.factors {
            let explained = input
                .removed
                .iter()
                .any(|r| r.code == f.code && r.reason.trim().chars().count() >= 2);
            // Only a drop that could lower the result needs a reason: a yellow anaemia item replaced
            // by an orange one (a newer, worse Hb) does not.
            let could_lower = match f.colour.grade() {
                Some(g) => g >= evaluated.colour,
                None => !evaluated.purple,
            };
            if !evaluated.factors.iter().any(|e| e.code == f.code) && could_lower && !explained {
                errors.push(FieldError::new(
                    &format!("remove_reason_{}", f.code),
                    "reason_required",
                    format!("档案数据提示 {}（{}），本次评估未纳入，须写明理由", f.code, f.reason),
                ));
            }
        }
        for r in &input.removed {
            let known_factor = evaluated
                .factors
                .iter()
                .chain(from_record.factors.iter())
                .any(|f| f.code == r.code);
            if !known_factor {
                errors.push(FieldError::new(
                    "removed",
                    "unknown_factor",
                    format!("要移除的因素 {} 不在本次评估中", r.code),
                ));
            } else if r.reason.trim().chars().count() < 2 {
                errors.push(FieldError::new(
                    &format!("remove_reason_{}", r.code),
                    "reason_required",
                    format!("移除 {} 须填写理由", r.code),
                ));
            }
        }
        let kept: Vec<RiskFactor> = evaluated
            .factors
            .into_iter()
            .filter(|f| !input.removed.iter().any(|r| r.code == f.code))
            .collect();
        let result = Assessment::of(kept, &rules.id);
        let current = history.iter().rev().find(|a| a.status == AssessmentStatus::Confirmed);
        if let Some(cur) = current {
            let lower = result.colour < cur.colour || (cur.purple && !result.purple);
            if lower && !(input.confirm_downgrade && input.note.trim().chars().count() >= 2) {
                errors.push(FieldError::new(
                    "confirm_downgrade",
                    "downgrade",
                    format!(
                        "本次评估低于当前的{}{}，须勾选“确认降级”并在备注中写明理由",
                        cur.colour_label,
                        if cur.purple { "+紫色" } else { "" }
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let now = now_utc();
        repo::dismiss_proposals(c, &p.id, &actor.name, now)?;
        let a = AssessmentRecord {
            id: new_id(),
            pregnancy_id: p.id.clone(),
            person_id: p.person_id.clone(),
            status: AssessmentStatus::Confirmed,
            status_label: AssessmentStatus::Confirmed.label_zh(),
            colour: result.colour,
            colour_label: result.colour.label_zh(),
            purple: result.purple,
            factors: result.factors,
            removed: input
                .removed
                .iter()
                .map(|r| RemovedFactor {
                    code: r.code.clone(),
                    reason: r.reason.trim().to_string(),
                })
                .collect(),
            facts,
            rule_set: rules.id.clone(),
            trigger: match (p.status, current.is_some()) {
                (PregnancyStatus::Delivered, _) => "postpartum grading".into(),
                (_, true) => "re-grading".into(),
                (_, false) => "grading".into(),
            },
            note: input.note.trim().to_string(),
            assessed_by: actor.name.clone(),
            facility_id: actor.facility.id.clone(),
            decided_by: Some(actor.name.clone()),
            decided_at: Some(now),
            created_at: now,
        };
        repo::insert_assessment(c, &a, &row_scope(&p))?;
        repo::mark_screenings_graded(c, &p.id, now)?;
        record(
            c,
            actor,
            "create",
            pregnancy_target(&p, "risk_assessment", Some(&a.id)),
            &format!("graded {}{}", a.colour.as_str(), if a.purple { "+purple" } else { "" }),
        )?;
        apply_plan(c, actor, &p, &a, current.map(|x| x.colour))?;
        // The features above react in this transaction (child: 预防母婴传播 exposure of her babies).
        crate::risk::events::GRADE_CONFIRMED.publish(
            c,
            &crate::risk::events::GradeConfirmed {
                actor: actor.clone(),
                pregnancy: p.clone(),
                assessment: a.clone(),
            },
        )?;
        Ok(a)
    })
    .await
}

/// Open or update the case a confirmed grade asks for, and create its report.
fn apply_plan(
    c: &mut AnyConnection,
    actor: &Actor,
    p: &Pregnancy,
    a: &AssessmentRecord,
    previous: Option<RiskColour>,
) -> Result<(), ServiceError> {
    let m = management().map_err(config_error)?;
    let plan = plan_for(m, a.colour, a.purple);
    // A grade that no longer calls for a case does not end one: the rule (and the safer
    // reading) keeps a case until the 42-day check, death or an accepted move-out. The case takes
    // the new colour and the calmer follow-up interval, so escalation follows the current risk.
    if !plan.as_ref().is_some_and(|pl| pl.case) {
        if let Some(mut case) = repo::open_case_for(c, &p.id)? {
            case.colour = a.colour;
            case.purple = a.purple;
            case.follow_up_days = plan.as_ref().map_or(m.yellow.follow_up_days, |pl| pl.follow_up_days) as i32;
            if !repo::update_case(c, &case)? {
                return Err(ServiceError::Conflict("专案刚被他人修改，请刷新后重试".into()));
            }
            let note = format!("重新评估为{}，专案继续管理至产后42天检查", a.colour_label);
            repo::add_event(c, &case.id, "regraded", &note, &actor.name)?;
            record(
                c,
                actor,
                "update",
                case_target(&case),
                "case re-graded below case level",
            )?;
        }
        return Ok(());
    }
    let Some(plan) = plan else {
        return Ok(());
    };
    let today = today_china();
    let existing = repo::open_case_for(c, &p.id)?;
    let case = match existing {
        None if plan.case => {
            let case = CaseRecord {
                id: new_id(),
                pregnancy_id: p.id.clone(),
                person_id: p.person_id.clone(),
                status: CaseStatus::Active,
                status_label: CaseStatus::Active.label_zh(),
                colour: a.colour,
                colour_label: a.colour.label_zh(),
                purple: a.purple,
                case_manager_id: (actor.kind == crate::auth::model::ActorKind::User)
                    .then(|| actor.id.clone())
                    .flatten(),
                delivery_level: plan.delivery_min_level.clone(),
                delivery_facility_id: None,
                follow_up_days: plan.follow_up_days as i32,
                next_follow_up: today + Duration::days(plan.follow_up_days),
                last_contact: Some(today),
                opened_at: now_utc(),
                opened_by: actor.name.clone(),
                closed_at: None,
                close_reason: None,
                moved_to: None,
                escalation: Escalation::None,
                jurisdiction: p.jurisdiction.clone(),
                township_code: p.township_code.clone(),
                version: 1,
            };
            repo::insert_case(c, &case).map_err(|e| match e {
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                    ServiceError::Conflict("该孕妇的专案刚由他人建立，请刷新后查看".into())
                }
                e => e.into(),
            })?;
            repo::add_event(
                c,
                &case.id,
                "opened",
                &format!(
                    "{}{} 评估，建立专案",
                    a.colour_label,
                    if a.purple { "+紫色" } else { "" }
                ),
                &actor.name,
            )?;
            record(c, actor, "create", case_target(&case), "high-risk case opened")?;
            Some(case)
        }
        Some(mut case) => {
            case.colour = a.colour;
            case.purple = a.purple;
            case.follow_up_days = plan.follow_up_days as i32;
            case.delivery_level = plan.delivery_min_level.clone();
            let next = today + Duration::days(plan.follow_up_days);
            if next < case.next_follow_up {
                case.next_follow_up = next;
            }
            if !repo::update_case(c, &case)? {
                return Err(ServiceError::Conflict("专案刚被他人修改，请刷新后重试".into()));
            }
            repo::add_event(
                c,
                &case.id,
                "regraded",
                &format!("重新评估为{}{}", a.colour_label, if a.purple { "+紫色" } else { "" }),
                &actor.name,
            )?;
            record(c, actor, "update", case_target(&case), "case re-graded")?;
            Some(case)
        }
        None => None,
    };
    // A report is due when a case reaches orange or red for the first time or goes up a colour.
    if let (Some(case), Some(hours)) = (case, plan.report_hours)
        && previous.is_none_or(|prev| a.colour > prev)
    {
        let now = now_utc();
        let report = CaseReport {
            id: new_id(),
            case_id: case.id.clone(),
            assessment_id: a.id.clone(),
            colour: a.colour,
            colour_label: a.colour.label_zh(),
            purple: a.purple,
            due_at: now + Duration::hours(hours),
            sent_at: None,
            sent_by: None,
            ack_due_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            created_at: now,
        };
        repo::insert_report(c, &report, &case.jurisdiction)?;
        repo::add_event(
            c,
            &case.id,
            "report_due",
            &format!("须在 {hours} 小时内向辖区妇幼保健机构报送评估分级报告单"),
            &actor.name,
        )?;
        record(c, actor, "create", case_target(&case), "case report created")?;
    }
    Ok(())
}
