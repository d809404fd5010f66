//! Re-grading proposals when new data arrives (RULES.md §1.1 动态评估): the reactions to a recorded
//! visit or result (`crate::events`, wired in `reactions.rs`).

use chrono::{Duration, NaiveDate};

use crate::audit::service::record;
use crate::auth::model::Actor;
use crate::error::ServiceError;
use crate::ids::{new_id, now_utc};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::risk::cases::{CaseStatus, Escalation};
use crate::risk::model::{AssessmentRecord, AssessmentStatus, RiskColour, adds_risk, rule_set};
use crate::risk::repo;
use crate::storage::AnyConnection;

use super::facts::{annotate_dates, assess, known_facts_dated};
use super::shared::{config_error, pregnancy_target, row_scope};

/// After a visit or a result: if the picture now shows more risk than the current grade, propose
/// a re-grade for a clinician to confirm (never lowers anything), and count the visit as a case
/// follow-up. Runs inside the caller's transaction.
pub fn after_new_data(
    c: &mut AnyConnection,
    actor: &Actor,
    rule_set_id: &str,
    p: &Pregnancy,
    trigger: &str,
    contact: Option<NaiveDate>,
) -> Result<(), ServiceError> {
    let rules = rule_set(rule_set_id).map_err(config_error)?;
    let Some(person) = crate::identity::repo::by_id(c, &p.person_id)? else {
        return Ok(());
    };
    let (facts, dated) = known_facts_dated(c, p, &person)?;
    let history = repo::assessments(c, &p.id)?;
    let Ok(mut result) = assess(p, &history, rules, &facts) else {
        return Ok(());
    };
    annotate_dates(&mut result, rules, &facts, &dated);
    let current = history.iter().rev().find(|a| a.status == AssessmentStatus::Confirmed);
    let pending = history.iter().rev().find(|a| a.status == AssessmentStatus::Proposed);
    let already_proposed =
        pending.is_some_and(|q| q.colour == result.colour && q.purple == result.purple && q.factors == result.factors);
    // Risk is assessed again at the postpartum visit and the 42-day check (RULES.md §1.1).
    let postpartum_reassessment = p.status == PregnancyStatus::Delivered
        && (current.is_some() || result.colour > RiskColour::Green || result.purple);
    if (adds_risk(current, &result) || postpartum_reassessment) && !already_proposed {
        let now = now_utc();
        repo::dismiss_proposals(c, &p.id, "system", now)?;
        let a = AssessmentRecord {
            id: new_id(),
            pregnancy_id: p.id.clone(),
            person_id: p.person_id.clone(),
            status: AssessmentStatus::Proposed,
            status_label: AssessmentStatus::Proposed.label_zh(),
            colour: result.colour,
            colour_label: result.colour.label_zh(),
            purple: result.purple,
            factors: result.factors,
            removed: Vec::new(),
            facts,
            rule_set: rules.id.clone(),
            trigger: trigger.to_string(),
            note: String::new(),
            assessed_by: "system".into(),
            facility_id: actor.facility.id.clone(),
            decided_by: None,
            decided_at: None,
            created_at: now,
        };
        repo::insert_assessment(c, &a, &row_scope(p))?;
        record(
            c,
            actor,
            "create",
            pregnancy_target(p, "risk_assessment", Some(&a.id)),
            &format!("re-grade proposed after {trigger}"),
        )?;
    }
    if let (Some(day), Some(mut case)) = (contact, repo::open_case_for(c, &p.id)?)
        && matches!(
            case.status,
            CaseStatus::Active | CaseStatus::Traced | CaseStatus::LostToFollowUp
        )
    {
        case.status = CaseStatus::Active;
        case.last_contact = Some(case.last_contact.map_or(day, |d| d.max(day)));
        case.next_follow_up = case
            .next_follow_up
            .max(day + Duration::days(i64::from(case.follow_up_days)));
        case.escalation = Escalation::None;
        if repo::update_case(c, &case)? {
            repo::add_event(c, &case.id, "follow_up", &format!("{day} 产前随访"), &actor.name)?;
        }
    }
    Ok(())
}

/// Reaction to [`crate::visits::events::VISIT_RECORDED`]: a re-grade proposal if the visit shows
/// more risk, and the visit counts as a follow-up of her open case.
pub fn regrade_after_visit(
    c: &mut AnyConnection,
    e: &crate::visits::events::VisitRecorded,
) -> Result<(), ServiceError> {
    // What the page shows as the proposal's cause (zh-CN: users read it).
    let what = if e.kind.is_postpartum() {
        "产后访视"
    } else {
        "产前检查"
    };
    after_new_data(
        c,
        &e.actor,
        crate::risk::model::active_rule_set(),
        &e.pregnancy,
        &format!("{what} {}", e.visit_date),
        Some(e.visit_date),
    )
}

/// Reaction to [`crate::observations::events::RESULTS_RECORDED`]: a re-grade proposal if the
/// results show more risk.
pub fn regrade_after_results(
    c: &mut AnyConnection,
    e: &crate::observations::events::ResultsRecorded,
) -> Result<(), ServiceError> {
    after_new_data(
        c,
        &e.actor,
        crate::risk::model::active_rule_set(),
        &e.pregnancy,
        &format!("检验结果 {}", e.day),
        None,
    )
}
