//! Risk use cases: screening at booking, grading (proposed by the system, confirmed by a
//! clinician), automatic re-grading proposals when a visit changes the picture, high-risk cases
//! with their manager, plan, follow-ups, reports and escalation, and the district board.
//! Every call checks role and jurisdiction and audits in the same transaction.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::cases::{
    self, CaseAction, CaseEvent, CaseRecord, CaseReport, CaseStatus, CloseReason, ClosingFacts, Escalation,
};
use super::model::{
    Assessment, AssessmentRecord, AssessmentStatus, CatalogueItem, Facts, ItemColour, Plan, RemovedFactor, RiskColour,
    RiskFactor, SCREEN_FOLLOW_UP_DAYS, ScreeningFinding, ScreeningItem, ScreeningRecord, adds_risk,
    evaluate as grade_facts, facility_fits, management, plan_for, rule_set, screen as screen_facts, screening_table,
};
use super::repo::{self, Scope as RowScope};
use crate::audit::service::{guarded, record, record_many, record_system};
use crate::auth::model::{Action, Actor, Scope};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::identity::model::Person;
use crate::identity::service::{PersonSummary, person_for};
use crate::ids::{new_id, now_utc, today_china};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::pregnancy::service::pregnancy_for;
use crate::storage::{AnyConnection, Db};

/// Grade facts with a rule set; nothing is stored (`mch-chain risk evaluate`, `POST /api/risk/evaluate`).
pub fn evaluate(rule_set_id: &str, facts: &Facts) -> Result<Assessment, ServiceError> {
    let rules = rule_set(rule_set_id).map_err(|e| ServiceError::invalid("rule_set", "rule_set", e))?;
    grade_facts(rules, facts).map_err(|e| ServiceError::invalid("facts", "facts", e))
}

fn config_error(e: String) -> ServiceError {
    tracing::error!(error = %e, "risk rule data is invalid");
    ServiceError::invalid("rule_set", "rule_set", e)
}

fn row_scope(p: &Pregnancy) -> RowScope<'_> {
    RowScope {
        person_id: &p.person_id,
        jurisdiction: &p.jurisdiction,
        township_code: p.township_code.as_deref(),
    }
}

fn pregnancy_target(p: &Pregnancy, entity: &'static str, id: Option<&str>) -> AuditTarget {
    AuditTarget {
        entity_type: entity,
        entity_id: Some(id.unwrap_or(&p.id).to_string()),
        person_id: Some(p.person_id.clone()),
    }
}

fn case_target(c: &CaseRecord) -> AuditTarget {
    AuditTarget {
        entity_type: "risk_case",
        entity_id: Some(c.id.clone()),
        person_id: Some(c.person_id.clone()),
    }
}

/// What a request for this case (`report`: for this report, filed under its case as the report
/// actions' refusals are) refused before reaching the service — the JSON route table's gate — is
/// audited against, naming her. No access check: nothing leaves but the audit row's ids.
pub async fn refusal_target(db: &Db, id: String, report: bool) -> Result<Option<AuditTarget>, ServiceError> {
    db.read(move |c| {
        let case_id = if report {
            match repo::report_by_id(c, &id)? {
                Some(r) => r.case_id,
                None => return Ok(None),
            }
        } else {
            id
        };
        Ok(repo::case_by_id(c, &case_id)?.as_ref().map(case_target))
    })
    .await
}

fn years_between(birth: NaiveDate, on: NaiveDate) -> f64 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    f64::from(age)
}

/// Take a source's value for a fact unless a newer source decided it; true when taken.
fn pick<T: Copy>(slot: &mut Option<T>, done: &mut bool, value: Option<T>, newer: bool) -> bool {
    if let Some(v) = value
        && !*done
    {
        *done = true;
        if newer || slot.is_none() {
            *slot = Some(v);
            return true;
        }
    }
    false
}

/// What the record already shows about a woman: age at booking, the latest measured values from
/// visits and results, and what the last confirmed grading recorded (values entered on the grading
/// form and the items a clinician ticked). A visit or result newer than that grading wins for the
/// values it measured.
pub fn known_facts(conn: &mut AnyConnection, p: &Pregnancy, person: &Person) -> Result<Facts, ServiceError> {
    Ok(known_facts_dated(conn, p, person)?.0)
}

/// Which day and kind of source each measured value came from (fact name → date, "随访"/"检验").
type Dated = Vec<(&'static str, NaiveDate, &'static str)>;

/// One dated source of measured values: a visit or a result.
#[derive(Default)]
struct Measured {
    day: NaiveDate,
    at: chrono::NaiveDateTime,
    label: &'static str,
    weight_kg: Option<f64>,
    height_cm: Option<f64>,
    hb_g_l: Option<f64>,
    bp: Option<(f64, f64)>,
    platelets_10e9_l: Option<f64>,
    hiv: Option<super::model::TestResult>,
    syphilis: Option<super::model::TestResult>,
    hbsag: Option<super::model::TestResult>,
}

/// [`known_facts`] with the date each measured value came from.
fn known_facts_dated(conn: &mut AnyConnection, p: &Pregnancy, person: &Person) -> Result<(Facts, Dated), ServiceError> {
    use crate::observations::service::FactValue;
    let last = repo::assessments(conn, &p.id)?
        .into_iter()
        .rev()
        .find(|a| a.status == AssessmentStatus::Confirmed);
    let mut f = last.as_ref().map(|a| a.facts.clone()).unwrap_or_default();
    let since = last.as_ref().map(|a| (a.created_at.date(), a.created_at));
    f.age_years = Some(years_between(person.birth_date, p.booking_date));
    let mut sources: Vec<Measured> = crate::visits::repo::for_pregnancy(conn, &p.id)?
        .into_iter()
        .map(|v| Measured {
            day: v.visit_date,
            at: v.recorded_at,
            label: "随访",
            weight_kg: v.weight_kg,
            height_cm: v.height_cm,
            hb_g_l: v.hb_g_l.map(f64::from),
            bp: match (v.systolic_mmhg, v.diastolic_mmhg) {
                (Some(s), Some(d)) => Some((f64::from(s), f64::from(d))),
                _ => None,
            },
            ..Measured::default()
        })
        .collect();
    // Results (RULES.md §7.2 testing in pregnancy, §1.3 lab items of the grading table).
    for r in crate::observations::service::dated_facts(conn, &p.id)? {
        let mut m = Measured {
            day: r.day,
            at: r.at,
            label: "检验",
            ..Measured::default()
        };
        match (r.fact.as_str(), r.value) {
            ("hb_g_l", FactValue::Number(v)) => m.hb_g_l = Some(v),
            ("platelets_10e9_l", FactValue::Number(v)) => m.platelets_10e9_l = Some(v),
            ("hiv", FactValue::Test(t)) => m.hiv = Some(t),
            ("syphilis", FactValue::Test(t)) => m.syphilis = Some(t),
            ("hbsag", FactValue::Test(t)) => m.hbsag = Some(t),
            _ => continue,
        }
        sources.push(m);
    }
    // Newest first: the newest source that measured a value decides it, unless it is older than
    // the last grading and that grading recorded the value itself.
    sources.sort_by_key(|m| std::cmp::Reverse((m.day, m.at)));
    let mut done = [false; 8];
    let mut dated: Dated = Vec::new();
    for v in &sources {
        // Newer than the grading: a later day, or the same day but recorded after it.
        let newer = since.is_none_or(|(day, at)| v.day > day || (v.day == day && v.at > at));
        let mut took = |name: &'static str, taken: bool| {
            if taken {
                dated.push((name, v.day, v.label));
            }
        };
        took("weight_kg", pick(&mut f.weight_kg, &mut done[0], v.weight_kg, newer));
        took("height_cm", pick(&mut f.height_cm, &mut done[1], v.height_cm, newer));
        took("hb_g_l", pick(&mut f.hb_g_l, &mut done[2], v.hb_g_l, newer));
        took(
            "platelets_10e9_l",
            pick(&mut f.platelets_10e9_l, &mut done[4], v.platelets_10e9_l, newer),
        );
        took("hiv", pick(&mut f.hiv, &mut done[5], v.hiv, newer));
        took("syphilis", pick(&mut f.syphilis, &mut done[6], v.syphilis, newer));
        took("hbsag", pick(&mut f.hbsag, &mut done[7], v.hbsag, newer));
        if let Some((s, d)) = v.bp
            && !done[3]
        {
            done[3] = true;
            if newer || f.systolic_mmhg.is_none() {
                f.systolic_mmhg = Some(s);
                f.diastolic_mmhg = Some(d);
                dated.push(("systolic_mmhg", v.day, v.label));
                dated.push(("diastolic_mmhg", v.day, v.label));
            }
        }
    }
    Ok((f, dated))
}

/// Say when a data-decided factor was measured ("血红蛋白 58 g/L（…）· 2026-03-02 随访").
fn annotate_dates(
    a: &mut Assessment,
    rules: &super::model::RuleSet,
    facts: &Facts,
    dated: &[(&'static str, NaiveDate, &'static str)],
) {
    for f in &mut a.factors {
        let day = rules
            .bands
            .iter()
            .filter(|b| b.code == f.code && facts.numeric(&b.fact).is_some_and(|v| b.contains(v)))
            .map(|b| if b.fact == "bmi" { "weight_kg" } else { b.fact.as_str() })
            .find_map(|fact| {
                dated
                    .iter()
                    .find(|(name, _, _)| *name == fact)
                    .map(|(_, d, l)| (*d, *l))
            });
        if let Some((d, label)) = day {
            f.reason = format!("{} · {d} {label}", f.reason);
        }
    }
}

/// RULES.md §1.3 red 2.x "红色预警范畴疾病产后尚未稳定": after delivery, a woman graded red keeps
/// red until a clinician confirms she is stable (by removing this factor with a reason).
fn postpartum_red_carry_over(
    p: &Pregnancy,
    history: &[AssessmentRecord],
    rules: &super::model::RuleSet,
) -> Option<RiskFactor> {
    if p.status != PregnancyStatus::Delivered {
        return None;
    }
    let confirmed = || history.iter().filter(|a| a.status == AssessmentStatus::Confirmed);
    let was_red = confirmed().any(|a| a.colour == RiskColour::Red);
    let declared_stable = confirmed().any(|a| a.removed.iter().any(|r| r.code == "R2.3"));
    let item = rules.item("R2.3")?;
    (was_red && !declared_stable).then(|| RiskFactor {
        code: item.code.clone(),
        colour: item.colour,
        reason: "孕期评估为红色，产后尚未确认病情稳定".to_string(),
    })
}

/// Grade the known facts, adding the postpartum carry-over of red.
fn assess(
    p: &Pregnancy,
    history: &[AssessmentRecord],
    rules: &super::model::RuleSet,
    facts: &Facts,
) -> Result<Assessment, ServiceError> {
    let mut a = grade_facts(rules, facts).map_err(|e| ServiceError::invalid("facts", "facts", e))?;
    if let Some(f) = postpartum_red_carry_over(p, history, rules)
        && !a.factors.iter().any(|x| x.code == f.code)
    {
        a.factors.push(f);
        a = Assessment::of(a.factors, &rules.id);
    }
    Ok(a)
}

// ------------------------------------------------------------------ screening

/// The screening form: the table, what data already shows.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningForm {
    pub pregnancy_id: String,
    pub person: PersonSummary,
    pub items: Vec<ScreeningItem>,
    pub facts: Facts,
    pub found: Vec<ScreeningFinding>,
    pub latest: Option<ScreeningRecord>,
}

pub async fn screening_form(db: &Db, actor: &Actor, pregnancy_id: String) -> Result<ScreeningForm, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let p = pregnancy_for(c, &actor2, Action::Screen, &pregnancy_id)?;
        let person = person_for(c, &actor2, Action::ReadRecord, &p.person_id)?;
        record(
            c,
            &actor2,
            "read",
            pregnancy_target(&p, "pregnancy", None),
            "risk screening form",
        )?;
        let facts = known_facts(c, &p, &person)?;
        let table = screening_table().map_err(config_error)?;
        let found = screen_facts(table, &facts, &[]).map_err(|e| ServiceError::invalid("facts", "facts", e))?;
        Ok(ScreeningForm {
            pregnancy_id: p.id.clone(),
            person: PersonSummary::of(&person, today_china()),
            items: table.items.clone(),
            facts,
            found,
            latest: repo::latest_screening(c, &p.id)?,
        })
    })
    .await
}

/// Screen at booking (附件1): positive if any item; a positive woman is marked for grading at a
/// 二级以上 facility and her township gets a follow-up due in two weeks.
pub async fn screen(
    db: &Db,
    actor: &Actor,
    pregnancy_id: String,
    ticked: Vec<String>,
) -> Result<ScreeningRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let p = pregnancy_for(c, actor, Action::Screen, &pregnancy_id)?;
        let person = person_for(c, actor, Action::ReadRecord, &p.person_id)?;
        let facts = known_facts(c, &p, &person)?;
        let table = screening_table().map_err(config_error)?;
        let items = screen_facts(table, &facts, &ticked).map_err(|e| ServiceError::invalid("items", "screening", e))?;
        let positive = !items.is_empty();
        let today = today_china();
        let s = ScreeningRecord {
            id: new_id(),
            pregnancy_id: p.id.clone(),
            positive,
            items,
            screened_by: actor.name.clone(),
            facility_id: actor.facility.id.clone(),
            follow_up_due: positive.then(|| today + chrono::Days::new(SCREEN_FOLLOW_UP_DAYS)),
            graded_at: None,
            created_at: now_utc(),
        };
        repo::insert_screening(c, &s, &row_scope(&p))?;
        record(
            c,
            actor,
            "create",
            pregnancy_target(&p, "risk_screening", Some(&s.id)),
            if positive { "screen positive" } else { "screen negative" },
        )?;
        Ok(s)
    })
    .await
}

// ------------------------------------------------------------------ grading

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

/// The risk part of the pregnancy page.
#[derive(Debug, Clone, Serialize)]
pub struct RiskSummary {
    pub current: Option<AssessmentRecord>,
    pub pending: Option<AssessmentRecord>,
    pub timeline: Vec<AssessmentRecord>,
    pub screening: Option<ScreeningRecord>,
    pub case: Option<CaseRecord>,
}

pub fn summary(c: &mut AnyConnection, pregnancy_id: &str) -> Result<RiskSummary, ServiceError> {
    let timeline = repo::assessments(c, pregnancy_id)?;
    Ok(RiskSummary {
        current: timeline
            .iter()
            .rev()
            .find(|a| a.status == AssessmentStatus::Confirmed)
            .cloned(),
        pending: timeline
            .iter()
            .rev()
            .find(|a| a.status == AssessmentStatus::Proposed)
            .cloned(),
        timeline,
        screening: repo::latest_screening(c, pregnancy_id)?,
        case: repo::cases_for_pregnancy(c, pregnancy_id)?.into_iter().next(),
    })
}

// ------------------------------------------------------------------ cases

#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    pub report: CaseReport,
    pub late: bool,
    pub ack_late: bool,
}

/// One option of a select on the case page (a manager, a delivery facility).
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub id: String,
    pub label: String,
}

/// The case page.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub case: CaseRecord,
    pub person: PersonSummary,
    pub ga_today: String,
    pub edd: NaiveDate,
    pub days_overdue: i64,
    pub escalation_label: &'static str,
    pub plan: Option<Plan>,
    pub manager_name: Option<String>,
    pub delivery_facility_name: Option<String>,
    pub managers: Vec<Choice>,
    pub delivery_options: Vec<Choice>,
    pub events: Vec<CaseEvent>,
    pub reports: Vec<ReportView>,
    pub current: Option<AssessmentRecord>,
    pub may_acknowledge: bool,
    pub may_manage: bool,
}

fn case_for(c: &mut AnyConnection, actor: &Actor, action: Action, id: &str) -> Result<CaseRecord, ServiceError> {
    let case = repo::case_by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该专案"))?;
    let in_scope = actor.scope.covers(&case.jurisdiction, case.township_code.as_deref());
    let incoming =
        case.status == CaseStatus::MovedOut && case.moved_to.as_deref().is_some_and(|m| actor.scope.covers(m, None));
    if !(actor.may(action) && (in_scope || incoming)) {
        return Err(ServiceError::forbidden(case_target(&case)));
    }
    Ok(case)
}

fn build_case_view(c: &mut AnyConnection, actor: &Actor, case: CaseRecord) -> Result<CaseView, ServiceError> {
    let today = today_china();
    let m = management().map_err(config_error)?;
    let p =
        crate::pregnancy::repo::by_id(c, &case.pregnancy_id)?.ok_or(ServiceError::NotFound("没有找到该孕产期记录"))?;
    let person =
        crate::identity::repo::by_id(c, &case.person_id)?.ok_or(ServiceError::NotFound("没有找到该服务对象"))?;
    let plan = plan_for(m, case.colour, case.purple);
    let facilities = crate::facility::repo::all(c)?;
    let users = crate::auth::repo::users_all(c)?;
    let managers = users
        .iter()
        .filter(|u| u.active && u.role == "clinician")
        .filter_map(|u| facilities.iter().find(|f| f.id == u.facility_id).map(|f| (u, f)))
        .filter(|(_, f)| Scope::of_facility(f).covers(&case.jurisdiction, case.township_code.as_deref()))
        .map(|(u, f)| Choice {
            id: u.id.clone(),
            label: format!("{}（{}）", u.display_name, f.name),
        })
        .collect();
    let delivery_options = facilities
        .iter()
        .filter(|f| {
            plan.as_ref()
                .is_some_and(|pl| facility_fits(pl, f.level.as_str(), &f.capabilities))
        })
        .map(|f| Choice {
            id: f.id.clone(),
            label: format!("{}（{}级）", f.name, f.level.label_zh()),
        })
        .collect();
    let now = now_utc();
    let reports = repo::reports(c, &case.id)?
        .into_iter()
        .map(|r| ReportView {
            late: r.late(now),
            ack_late: r.ack_late(now),
            report: r,
        })
        .collect();
    let overdue = cases::days_overdue(case.status, case.next_follow_up, today);
    let esc = cases::escalation(
        case.status,
        overdue,
        m.escalate_supervisor_after_days,
        m.escalate_district_after_days,
    );
    Ok(CaseView {
        manager_name: case
            .case_manager_id
            .as_ref()
            .and_then(|id| users.iter().find(|u| &u.id == id))
            .map(|u| u.display_name.clone()),
        delivery_facility_name: case
            .delivery_facility_id
            .as_ref()
            .and_then(|id| facilities.iter().find(|f| &f.id == id))
            .map(|f| f.name.clone()),
        person: PersonSummary::of(&person, today),
        ga_today: p.dating.gestational_age_on(today).to_string(),
        edd: p.dating.edd,
        days_overdue: overdue,
        escalation_label: esc.label_zh(),
        plan,
        managers,
        delivery_options,
        events: repo::events(c, &case.id)?,
        reports,
        current: repo::assessments(c, &p.id)?
            .into_iter()
            .rev()
            .find(|a| a.status == AssessmentStatus::Confirmed),
        may_acknowledge: actor.may(Action::AcknowledgeReport) && actor.scope.covers(&case.jurisdiction, None),
        may_manage: actor.may(Action::ManageCase),
        case,
    })
}

pub async fn case_view(db: &Db, actor: &Actor, case_id: String) -> Result<CaseView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let case = case_for(c, &actor2, Action::ReadRecord, &case_id)?;
        record(c, &actor2, "read", case_target(&case), "case page")?;
        build_case_view(c, &actor2, case)
    })
    .await
}

/// A case action from the case page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaseActionInput {
    /// follow_up, traced, lost, move_out, close, assign_manager, choose_delivery
    pub action: String,
    pub date: Option<String>,
    pub note: Option<String>,
    pub close_reason: Option<String>,
    pub moved_to: Option<String>,
    pub manager_id: Option<String>,
    pub facility_id: Option<String>,
    /// On accepting a hand-over: the receiving township (9 digits), so its clinicians see her.
    pub township_code: Option<String>,
    pub version: Option<i32>,
}

pub async fn case_action(
    db: &Db,
    actor: &Actor,
    case_id: String,
    input: CaseActionInput,
) -> Result<CaseRecord, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let mut case = case_for(c, actor, Action::ManageCase, &case_id)?;
        if input.version.is_some_and(|v| v != case.version) {
            return Err(ServiceError::Conflict("专案已被他人更新，请刷新页面后重试".into()));
        }
        let today = today_china();
        let note = input.note.clone().unwrap_or_default().trim().to_string();
        let m = management().map_err(config_error)?;
        let overdue = cases::days_overdue(case.status, case.next_follow_up, today) > 0;
        let (kind, detail) = match input.action.as_str() {
            "assign_manager" => {
                let uid = input.manager_id.clone().unwrap_or_default();
                let user = crate::auth::repo::user_by_id(c, &uid)?.filter(|u| u.active && u.role == "clinician");
                let Some(user) = user else {
                    return Err(ServiceError::invalid(
                        "manager_id",
                        "manager",
                        "请选择一位本辖区的医生作为专案管理人",
                    ));
                };
                let f = crate::facility::repo::by_id(c, &user.facility_id)?
                    .ok_or(ServiceError::NotFound("没有找到该机构"))?;
                if !Scope::of_facility(&f).covers(&case.jurisdiction, case.township_code.as_deref()) {
                    return Err(ServiceError::invalid(
                        "manager_id",
                        "manager",
                        "专案管理人须为管辖该孕妇的机构的医生",
                    ));
                }
                let from = case.case_manager_id.clone().unwrap_or_else(|| "无".into());
                case.case_manager_id = Some(user.id.clone());
                (
                    "manager_assigned",
                    format!("专案管理人交接：{from} → {}（{}）", user.display_name, user.id),
                )
            }
            "choose_delivery" => {
                let fid = input.facility_id.clone().unwrap_or_default();
                let f = crate::facility::repo::by_id(c, &fid)?
                    .ok_or_else(|| ServiceError::invalid("facility_id", "facility", "请选择分娩机构"))?;
                let plan = plan_for(m, case.colour, case.purple);
                if !plan
                    .as_ref()
                    .is_some_and(|pl| facility_fits(pl, f.level.as_str(), &f.capabilities))
                {
                    return Err(ServiceError::invalid(
                        "facility_id",
                        "facility",
                        format!("{} 不满足该风险等级的分娩机构要求", f.name),
                    ));
                }
                case.delivery_facility_id = Some(f.id.clone());
                ("delivery_chosen", format!("确定分娩机构：{}", f.name))
            }
            other => {
                let action = match other {
                    "follow_up" => CaseAction::FollowUp,
                    "traced" => CaseAction::Traced,
                    "lost" => CaseAction::Lost,
                    "move_out" => CaseAction::MoveOut,
                    "close" => {
                        let r = input
                            .close_reason
                            .as_deref()
                            .and_then(CloseReason::parse)
                            .ok_or_else(|| ServiceError::invalid("close_reason", "reason", "请选择结案原因"))?;
                        CaseAction::Close(r)
                    }
                    _ => return Err(ServiceError::invalid("action", "action", "未知的专案操作")),
                };
                let facts = ClosingFacts {
                    delivered: crate::pregnancy::repo::delivery_for(c, &case.pregnancy_id)?.is_some(),
                    postpartum_42d_done: crate::visits::repo::for_pregnancy(c, &case.pregnancy_id)?
                        .iter()
                        .any(|v| v.kind == crate::visits::model::VisitKind::Postpartum42d),
                };
                let next = cases::transition(case.status, &action, overdue, facts).map_err(ServiceError::Conflict)?;
                let detail = match &action {
                    CaseAction::FollowUp => {
                        let day = match input.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                                .map_err(|_| ServiceError::invalid("date", "date", "日期格式应为 YYYY-MM-DD"))?,
                            None => today,
                        };
                        if day > today || day < case.opened_at.date() - Duration::days(1) {
                            return Err(ServiceError::invalid("date", "date", "随访日期须在建案之后、今天之前"));
                        }
                        case.last_contact = Some(case.last_contact.map_or(day, |d| d.max(day)));
                        case.next_follow_up = day + Duration::days(i64::from(case.follow_up_days));
                        case.escalation = Escalation::None;
                        format!("{day} 随访")
                    }
                    CaseAction::Traced => {
                        case.next_follow_up = today + Duration::days(i64::from(case.follow_up_days).min(7));
                        "已追踪到孕妇，已预约随访".to_string()
                    }
                    CaseAction::Lost => "多次追踪未果，标记失访".to_string(),
                    CaseAction::MoveOut => {
                        let to = input.moved_to.clone().unwrap_or_default().trim().to_string();
                        if !(to.len() == 6 && to.bytes().all(|b| b.is_ascii_digit())) || to == case.jurisdiction {
                            return Err(ServiceError::invalid(
                                "moved_to",
                                "jurisdiction",
                                "请填写迁入地的 6 位区划代码（与本辖区不同）",
                            ));
                        }
                        if !crate::facility::repo::all(c)?.iter().any(|f| f.jurisdiction == to) {
                            return Err(ServiceError::invalid(
                                "moved_to",
                                "jurisdiction",
                                format!("区划 {to} 没有登记的机构，无法交接"),
                            ));
                        }
                        case.moved_to = Some(to.clone());
                        format!("迁出至 {to}，待接收")
                    }
                    CaseAction::Close(r) => {
                        if *r == CloseReason::MoveOutAccepted {
                            let to = case.moved_to.clone().unwrap_or_default();
                            if !actor.scope.covers(&to, None) {
                                return Err(ServiceError::forbidden(case_target(&case)));
                            }
                        }
                        case.closed_at = Some(now_utc());
                        case.close_reason = Some(r.as_str().to_string());
                        format!("结案：{}", r.label_zh())
                    }
                };
                if note.is_empty() && matches!(action, CaseAction::Lost | CaseAction::MoveOut | CaseAction::Close(_)) {
                    return Err(ServiceError::invalid("note", "required", "此操作须填写说明"));
                }
                case.status = next;
                case.status_label = next.label_zh();
                (other_kind(&action), detail)
            }
        };
        let old_version = case.version;
        if !repo::update_case(c, &case)? {
            return Err(ServiceError::Conflict("专案已被他人更新，请刷新页面后重试".into()));
        }
        case.version = old_version + 1;
        // An accepted hand-over moves her record to the receiving county, which manages her from now on.
        if case.close_reason.as_deref() == Some(CloseReason::MoveOutAccepted.as_str())
            && let Some(to) = case.moved_to.clone()
        {
            let township = input.township_code.as_deref().map(str::trim).filter(|t| !t.is_empty());
            if let Some(t) = township
                && !(t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit()) && t.starts_with(&to))
            {
                return Err(ServiceError::invalid(
                    "township_code",
                    "township_code",
                    format!("乡镇代码须为以 {to} 开头的 9 位数字"),
                ));
            }
            crate::identity::repo::move_to_jurisdiction(c, &case.person_id, &to, township)?;
            let person = AuditTarget {
                entity_type: "person",
                entity_id: Some(case.person_id.clone()),
                person_id: Some(case.person_id.clone()),
            };
            record(c, actor, "update", person, &format!("jurisdiction handed over to {to}"))?;
        }
        let text = if note.is_empty() {
            detail.clone()
        } else {
            format!("{detail}。{note}")
        };
        repo::add_event(c, &case.id, kind, &text, &actor.name)?;
        record(c, actor, "update", case_target(&case), &format!("case {kind}"))?;
        Ok(case)
    })
    .await
}

fn other_kind(a: &CaseAction) -> &'static str {
    match a {
        CaseAction::FollowUp => "follow_up",
        CaseAction::Traced => "traced",
        CaseAction::Lost => "lost",
        CaseAction::MoveOut => "moved_out",
        CaseAction::Close(_) => "closed",
    }
}

/// A maternal death recorded with the delivery closes the open case (reason: death).
pub fn close_on_death(c: &mut AnyConnection, actor: &Actor, pregnancy_id: &str) -> Result<(), ServiceError> {
    if let Some(mut case) = repo::open_case_for(c, pregnancy_id)? {
        case.status = CaseStatus::Closed;
        case.closed_at = Some(now_utc());
        case.close_reason = Some(CloseReason::Death.as_str().to_string());
        if repo::update_case(c, &case)? {
            repo::add_event(c, &case.id, "closed", "结案：死亡（随分娩登记）", &actor.name)?;
            record(c, actor, "update", case_target(&case), "case closed: maternal death")?;
        }
    }
    Ok(())
}

/// The ids of a pregnancy's reports not yet sent.
pub async fn unsent_reports(db: &Db, pregnancy_id: String) -> Result<Vec<String>, ServiceError> {
    db.read(move |c| {
        let mut out = Vec::new();
        for case in repo::cases_for_pregnancy(c, &pregnancy_id)? {
            out.extend(
                repo::reports(c, &case.id)?
                    .into_iter()
                    .filter(|r| r.sent_at.is_none())
                    .map(|r| r.id),
            );
        }
        Ok(out)
    })
    .await
}

/// Send the report to the district (the grading side or the case manager).
pub async fn send_report(db: &Db, actor: &Actor, report_id: String) -> Result<CaseReport, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let r = repo::report_by_id(c, &report_id)?.ok_or(ServiceError::NotFound("没有找到该报告单"))?;
        let case = case_for(c, actor, Action::ManageCase, &r.case_id)?;
        let m = management().map_err(config_error)?;
        let now = now_utc();
        if !repo::mark_report_sent(c, &r.id, &actor.name, now, now + Duration::hours(m.acknowledge_hours))? {
            return Err(ServiceError::Conflict("该报告单已报送".into()));
        }
        let late = now > r.due_at;
        repo::add_event(
            c,
            &case.id,
            "report_sent",
            if late {
                "评估分级报告单已报送（超时）"
            } else {
                "评估分级报告单已报送"
            },
            &actor.name,
        )?;
        record(c, actor, "update", case_target(&case), "case report sent")?;
        repo::report_by_id(c, &r.id)?.ok_or(ServiceError::NotFound("没有找到该报告单"))
    })
    .await
}

/// The district MCH institution acknowledges a sent report.
pub async fn acknowledge_report(db: &Db, actor: &Actor, report_id: String) -> Result<CaseReport, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let r = repo::report_by_id(c, &report_id)?.ok_or(ServiceError::NotFound("没有找到该报告单"))?;
        let case = case_for(c, actor, Action::AcknowledgeReport, &r.case_id)?;
        if r.sent_at.is_none() {
            return Err(ServiceError::Conflict("报告单尚未报送，不能签收".into()));
        }
        if !repo::mark_report_acknowledged(c, &r.id, &actor.name, now_utc())? {
            return Err(ServiceError::Conflict("该报告单已签收".into()));
        }
        repo::add_event(
            c,
            &case.id,
            "report_acknowledged",
            "辖区妇幼保健机构已签收报告单",
            &actor.name,
        )?;
        record(c, actor, "update", case_target(&case), "case report acknowledged")?;
        repo::report_by_id(c, &r.id)?.ok_or(ServiceError::NotFound("没有找到该报告单"))
    })
    .await
}

/// Record escalations of overdue follow-ups (run by the service every minute; `today` injected so
/// tests need no clock). Each step up is written once: the optimistic lock on the case makes a
/// second instance's update a no-op.
pub async fn escalate_overdue(db: &Db, today: NaiveDate) -> Result<usize, ServiceError> {
    db.write(move |c| {
        let m = management().map_err(config_error)?;
        let mut n = 0;
        for mut case in repo::open_cases(c, None, None)? {
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            if esc > case.escalation {
                case.escalation = esc;
                if repo::update_case(c, &case)? {
                    repo::add_event(
                        c,
                        &case.id,
                        "escalated",
                        &format!("随访逾期 {days} 天，{}", esc.label_zh()),
                        "system",
                    )?;
                    record_system(c, "update", case_target(&case), &format!("escalated to {esc:?}"))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    })
    .await
}

// ------------------------------------------------------------------ board and tasks

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BoardFilter {
    /// green, yellow, orange, red or purple.
    pub colour: Option<String>,
    pub ga_from: Option<i64>,
    pub ga_to: Option<i64>,
    #[serde(default)]
    pub overdue: bool,
    #[serde(default)]
    pub no_delivery: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardRow {
    pub case: CaseRecord,
    pub person: PersonSummary,
    pub ga_weeks: i64,
    pub ga_today: String,
    pub days_overdue: i64,
    pub escalation_label: &'static str,
    pub report_late: bool,
    pub report_unacknowledged: bool,
    pub score: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub rows: Vec<BoardRow>,
    pub counts: HashMap<String, usize>,
    /// Cases moved out of another county into mine, waiting for me to accept the hand-over.
    pub incoming: Vec<IncomingCase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncomingCase {
    pub case_id: String,
    pub name: String,
    pub from: String,
    pub colour_label: &'static str,
}

fn colour_weight(c: RiskColour, purple: bool) -> i64 {
    (match c {
        RiskColour::Green => 0,
        RiskColour::Yellow => 1,
        RiskColour::Orange => 3,
        RiskColour::Red => 5,
    }) + if purple { 2 } else { 0 }
}

/// The district high-risk board: open cases in my area, ordered by risk × lateness.
pub async fn board(db: &Db, actor: &Actor, filter: BoardFilter) -> Result<Board, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "risk_board",
                ..Default::default()
            }));
        }
        let today = today_china();
        let now = now_utc();
        let m = management().map_err(config_error)?;
        let (township, prefix) = actor.scope.filters();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        for case in repo::open_cases(c, township, prefix)? {
            *counts.entry(case.colour.as_str().to_string()).or_default() += 1;
            if case.purple {
                *counts.entry("purple".into()).or_default() += 1;
            }
            let Some(p) = crate::pregnancy::repo::by_id(c, &case.pregnancy_id)? else {
                continue;
            };
            let ga = p.dating.gestational_age_on(today);
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let reports = repo::reports(c, &case.id)?;
            let report_late = reports.iter().any(|r| r.late(now) || r.ack_late(now));
            let report_unacknowledged = reports.iter().any(|r| r.acknowledged_at.is_none());
            let keep = filter.colour.as_deref().is_none_or(|col| {
                if col == "purple" {
                    case.purple
                } else {
                    case.colour.as_str() == col
                }
            }) && filter.ga_from.is_none_or(|w| ga.weeks() >= w)
                && filter.ga_to.is_none_or(|w| ga.weeks() <= w)
                && (!filter.overdue || days > 0 || case.status == CaseStatus::LostToFollowUp)
                && (!filter.no_delivery || case.delivery_facility_id.is_none());
            if !keep {
                continue;
            }
            let Some(person) = crate::identity::repo::by_id(c, &case.person_id)? else {
                continue;
            };
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            let score = colour_weight(case.colour, case.purple)
                * (1 + days
                    + if report_late { 3 } else { 0 }
                    + if case.status == CaseStatus::LostToFollowUp {
                        14
                    } else {
                        0
                    });
            rows.push(BoardRow {
                person: PersonSummary::of(&person, today),
                ga_weeks: ga.weeks(),
                ga_today: ga.to_string(),
                days_overdue: days,
                escalation_label: esc.label_zh(),
                report_late,
                report_unacknowledged,
                score,
                case,
            });
        }
        rows.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then(b.case.colour.cmp(&a.case.colour))
                .then(a.case.next_follow_up.cmp(&b.case.next_follow_up))
        });
        let mut incoming = Vec::new();
        if let Scope::Area(prefix) = &actor.scope {
            for case in repo::incoming_cases(c, prefix)? {
                let Some(person) = crate::identity::repo::by_id(c, &case.person_id)? else {
                    continue;
                };
                record(c, actor, "search", case_target(&case), "incoming hand-over")?;
                incoming.push(IncomingCase {
                    case_id: case.id.clone(),
                    name: person.name,
                    from: case.jurisdiction.clone(),
                    colour_label: case.colour_label,
                });
            }
        }
        record_many(
            c,
            actor,
            "search",
            rows.iter().map(|r| case_target(&r.case)).collect(),
            "risk board",
        )?;
        Ok(Board { rows, counts, incoming })
    })
    .await
}

/// Risk work waiting for this user on the home page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RiskTasks {
    /// Re-grade proposals to confirm (graders) — pregnancy ids with names.
    pub proposals: Vec<TaskLine>,
    /// Positive screenings waiting for a grading result (the township follows up).
    pub screenings: Vec<TaskLine>,
    /// Cases overdue or escalated to me (as case manager, supervisor or district).
    pub cases: Vec<TaskLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskLine {
    pub link: String,
    pub name: String,
    pub what: String,
    pub late: bool,
}

pub async fn tasks(db: &Db, actor: &Actor) -> Result<RiskTasks, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Ok(RiskTasks::default());
        }
        let today = today_china();
        let (township, prefix) = actor.scope.filters();
        let m = management().map_err(config_error)?;
        let mut out = RiskTasks::default();
        let mut seen: Vec<String> = Vec::new();
        let mut name_of = |c: &mut AnyConnection, person_id: &str| -> Result<String, ServiceError> {
            let p = crate::identity::repo::by_id(c, person_id)?;
            if !seen.iter().any(|s| s == person_id) {
                seen.push(person_id.to_string());
                record(
                    c,
                    actor,
                    "search",
                    AuditTarget {
                        entity_type: "person",
                        entity_id: Some(person_id.to_string()),
                        person_id: Some(person_id.to_string()),
                    },
                    "risk tasks",
                )?;
            }
            Ok(p.map(|p| p.name).unwrap_or_default())
        };
        if actor.may(Action::Grade) {
            for a in repo::pending_proposals(c, township, prefix)? {
                let name = name_of(c, &a.person_id)?;
                out.proposals.push(TaskLine {
                    link: format!("/pregnancies/{}/risk/grade", a.pregnancy_id),
                    name,
                    what: format!(
                        "系统建议{}{}，待确认（{}）",
                        a.colour_label,
                        if a.purple { "+紫色" } else { "" },
                        a.trigger
                    ),
                    late: false,
                });
            }
        }
        for s in repo::ungraded_positive_screenings(c, township, prefix)? {
            let Some(p) = crate::pregnancy::repo::by_id(c, &s.pregnancy_id)? else {
                continue;
            };
            let name = name_of(c, &p.person_id)?;
            out.screenings.push(TaskLine {
                link: format!("/pregnancies/{}", p.id),
                name,
                what: format!(
                    "筛查阳性，待二级以上机构评估；随访评估结果截止 {}",
                    s.follow_up_due.map(|d| d.to_string()).unwrap_or_default()
                ),
                late: s.follow_up_due.is_some_and(|d| d < today),
            });
        }
        for case in repo::open_cases(c, township, prefix)? {
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            let mine = case.case_manager_id.as_deref() == actor.id.as_deref();
            let my_facility_is_managers = match &case.case_manager_id {
                Some(mid) => crate::auth::repo::user_by_id(c, mid)?.is_some_and(|u| u.facility_id == actor.facility.id),
                None => true,
            };
            let district = actor.may(Action::AcknowledgeReport);
            let concerns_me = (mine && esc >= Escalation::CaseManager)
                || (my_facility_is_managers && esc >= Escalation::Supervisor)
                || (district && esc >= Escalation::District)
                || (mine && case.status == CaseStatus::MovedOut);
            if concerns_me {
                let name = name_of(c, &case.person_id)?;
                out.cases.push(TaskLine {
                    link: format!("/risk/cases/{}", case.id),
                    name,
                    what: format!(
                        "{}专案 {}，随访逾期 {days} 天 {}",
                        case.colour_label,
                        case.status_label,
                        esc.label_zh()
                    ),
                    late: true,
                });
            }
        }
        Ok(out)
    })
    .await
}

// ------------------------------------------------------------------ interface reads (FHIR)
// RiskAssessment and Flag: inside the caller's transaction, each returned record audited there.

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
