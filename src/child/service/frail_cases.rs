//! 体弱儿专案管理 use cases: a case opened by a visit's or the birth's findings (inside that
//! transaction) or by a clinician, its page and actions (follow-up, traced, lost, moved out,
//! manager hand-over, closure), the district board, and the escalation of overdue follow-ups.
//! The states, what each action may do, overdue and escalation are the 专案 machinery of
//! [`crate::risk::cases`]; the reasons, plans and closing rule are [`crate::child::frail`].
//! Access as the maternal cases: role, and the case's area (or the receiving county of a
//! moved-out case); every read and write audited in its transaction.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{ChildSummary, child_for, child_target, summary};
use crate::audit::service::{guarded, record, record_many, record_system};
use crate::auth::model::{Action, Actor, ActorKind, Role, Scope};
use crate::child::frail::{
    self, CLOSE_REASONS, CaseReason, EarlierWeighing, Finding, FrailCase, FrailClosing, VisitFacts,
};
use crate::child::model::{ChildRecord, ChildVisit};
use crate::child::repo;
use crate::error::{AuditTarget, ServiceError};
use crate::growth::model as growth;
use crate::identity::model::Sex;
use crate::ids::{new_id, now_utc, today_china};
use crate::risk::cases::{self, CaseAction, CaseEvent, CaseStatus, CloseReason, Escalation};
use crate::risk::service::{CaseActionInput, Choice};
use crate::storage::{AnyConnection, Db};

pub fn frail_target(c: &FrailCase) -> AuditTarget {
    AuditTarget {
        entity_type: "frail_case",
        entity_id: Some(c.id.clone()),
        person_id: Some(c.child_id.clone()),
    }
}

/// What a request for this case refused at the JSON route gate is audited against, naming the
/// child. No access check: nothing leaves but the audit row's ids.
pub async fn frail_refusal_target(db: &Db, id: String) -> Result<Option<AuditTarget>, ServiceError> {
    db.read(move |c| Ok(repo::frail_case_by_id(c, &id)?.as_ref().map(frail_target)))
        .await
}

/// A case the actor may act on: the role allows the action, and the case lies in her area (or it
/// was moved out to her county, to be accepted).
fn frail_for(c: &mut AnyConnection, actor: &Actor, action: Action, id: &str) -> Result<FrailCase, ServiceError> {
    let case = repo::frail_case_by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该体弱儿专案"))?;
    let in_scope = actor.scope.covers(&case.jurisdiction, case.township_code.as_deref());
    let incoming =
        case.status == CaseStatus::MovedOut && case.moved_to.as_deref().is_some_and(|m| actor.scope.covers(m, None));
    if !(actor.may(action) && (in_scope || incoming)) {
        return Err(ServiceError::forbidden(frail_target(&case)));
    }
    Ok(case)
}

fn labels(reasons: &[&CaseReason]) -> String {
    reasons
        .iter()
        .map(|r| r.finding.label.as_str())
        .collect::<Vec<_>>()
        .join("、")
}

/// The clinician who opens a case manages it when her facility covers the child.
fn default_manager(actor: &Actor, rec: &ChildRecord) -> Option<String> {
    (actor.kind == ActorKind::User
        && actor.role == Role::Clinician
        && actor.scope.covers(&rec.jurisdiction, rec.township_code.as_deref()))
    .then(|| actor.id.clone())
    .flatten()
}

/// Open a case for what was found, or add it to her open case. `on` is the day it was found;
/// `contact` the day of a visit that counts as a follow-up; `base` the day the first follow-up
/// interval runs from when no contact does. Audited; the case's events say what changed.
#[allow(clippy::too_many_arguments)]
fn open_or_add(
    c: &mut AnyConnection,
    actor: &Actor,
    rec: &ChildRecord,
    found: &[Finding],
    visit: Option<&VisitFacts>,
    on: NaiveDate,
    base: NaiveDate,
    contact: Option<NaiveDate>,
    source: &str,
) -> Result<Option<FrailCase>, ServiceError> {
    let rules = frail::rules();
    let Some(mut case) = repo::open_frail_case_of(c, &rec.person_id)? else {
        if found.is_empty() {
            return Ok(None);
        }
        let mut reasons = Vec::new();
        frail::merge(&mut reasons, found, on, source);
        let days = frail::interval(&reasons);
        let case = FrailCase {
            id: new_id(),
            child_id: rec.person_id.clone(),
            status: CaseStatus::Active,
            status_label: CaseStatus::Active.label_zh(),
            case_manager_id: default_manager(actor, rec),
            follow_up_days: i32::try_from(days).unwrap_or(30),
            next_follow_up: contact.unwrap_or(base) + Duration::days(days),
            last_contact: contact,
            opened_at: now_utc(),
            opened_by: actor.name.clone(),
            closed_at: None,
            close_reason: None,
            moved_to: None,
            escalation: Escalation::None,
            jurisdiction: rec.jurisdiction.clone(),
            township_code: rec.township_code.clone(),
            version: 1,
            reasons,
        };
        repo::insert_frail_case(c, &case).map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                ServiceError::Conflict("该儿童的体弱儿专案刚由他人建立，请刷新后查看".into())
            }
            e => e.into(),
        })?;
        let why = labels(&case.reasons.iter().collect::<Vec<_>>());
        let detail: Vec<String> = case.reasons.iter().map(|r| r.finding.detail.clone()).collect();
        repo::add_frail_event(
            c,
            &case.id,
            "opened",
            &format!("建立体弱儿专案：{why}（{}）", detail.join("；")),
            &actor.name,
        )?;
        record(c, actor, "create", frail_target(&case), "frail-child case opened")?;
        return Ok(Some(case));
    };
    let added = frail::merge(&mut case.reasons, found, on, source);
    let resolved = visit
        .map(|v| frail::resolve(rules, &mut case.reasons, v, found, on))
        .unwrap_or_default();
    let days = frail::interval(&case.reasons);
    let today = today_china();
    let overdue = cases::days_overdue(case.status, case.next_follow_up, today) > 0;
    let closing = FrailClosing::default();
    // A child health visit is a follow-up contact of her case (not of one moved out: the
    // receiving county has not taken her yet).
    let follow_up = contact.filter(|_| cases::transition(case.status, &CaseAction::FollowUp, overdue, closing).is_ok());
    if added.is_empty() && resolved.is_empty() && follow_up.is_none() {
        return Ok(Some(case));
    }
    case.follow_up_days = i32::try_from(days).unwrap_or(case.follow_up_days);
    if let Some(day) = follow_up {
        case.last_contact = Some(case.last_contact.map_or(day, |d| d.max(day)));
        case.status = CaseStatus::Active;
        case.status_label = CaseStatus::Active.label_zh();
        case.escalation = Escalation::None;
    }
    let next = case.last_contact.unwrap_or(base) + Duration::days(days);
    if follow_up.is_some() || next < case.next_follow_up {
        case.next_follow_up = next;
    }
    if !repo::update_frail_case(c, &case)? {
        return Err(ServiceError::Conflict("体弱儿专案刚被他人修改，请刷新后重试".into()));
    }
    case.version += 1;
    if let Some(day) = follow_up {
        repo::add_frail_event(
            c,
            &case.id,
            "follow_up",
            &format!("{day} 儿童健康检查（计为随访）"),
            &actor.name,
        )?;
    }
    if !added.is_empty() {
        repo::add_frail_event(
            c,
            &case.id,
            "reason_added",
            &format!("新增/加重：{}；下次随访 {}", added.join("、"), case.next_follow_up),
            &actor.name,
        )?;
    }
    if !resolved.is_empty() {
        repo::add_frail_event(
            c,
            &case.id,
            "reason_resolved",
            &format!("{on} 检查：{} 已达结案标准", resolved.join("、")),
            &actor.name,
        )?;
    }
    record(
        c,
        actor,
        "update",
        frail_target(&case),
        "frail-child case updated by a finding",
    )?;
    Ok(Some(case))
}

/// Inside a visit's transaction: what the visit shows opens or adds to her case, and the visit
/// counts as a follow-up of an open case. Growth faltering compares the visit with her latest
/// weighing far enough before it.
pub(super) fn after_visit(
    c: &mut AnyConnection,
    actor: &Actor,
    rec: &ChildRecord,
    sex: Sex,
    v: &ChildVisit,
    g: Option<&growth::Evaluation>,
) -> Result<(), ServiceError> {
    let rules = frail::rules();
    let gap = rules.condition("faltering").map_or(14, |c| c.min_gap_days.max(1));
    let previous = repo::visits_of(c, std::slice::from_ref(&rec.person_id))?
        .into_iter()
        .filter(|p| p.id != v.id && p.age_days + gap <= v.age_days)
        .filter_map(|p| p.weight_kg.map(|w| (p, w)))
        .max_by_key(|(p, _)| (p.age_days, p.recorded_at))
        .map(|(p, w)| EarlierWeighing {
            age_days: p.age_days,
            weight_kg: w,
            growth: super::evaluate(sex, p.age_days, Some(w), p.length_cm, p.position.as_deref()),
        });
    let facts = VisitFacts {
        age_days: v.age_days,
        weight_kg: v.weight_kg,
        growth: g,
        hb_g_l: v.hb_g_l,
        rickets_signs: &v.rickets_signs,
        previous,
    };
    let found = rules.visit_findings(&facts);
    open_or_add(
        c,
        actor,
        rec,
        &found,
        Some(&facts),
        v.visit_date,
        v.visit_date,
        Some(v.visit_date),
        "visit",
    )?;
    Ok(())
}

/// Inside the birth's (or the completed birth facts') transaction: 早产 and 低出生体重 open her
/// case; the first follow-up counts from her discharge.
pub(super) fn at_birth(c: &mut AnyConnection, actor: &Actor, rec: &ChildRecord) -> Result<(), ServiceError> {
    let found = frail::rules().birth_findings(rec.gestation_days, rec.birth_weight_g);
    let born = rec.birth_date();
    open_or_add(
        c,
        actor,
        rec,
        &found,
        None,
        born,
        rec.discharge_date.unwrap_or(born),
        None,
        "birth",
    )?;
    Ok(())
}

/// A clinician opens a case by hand (or adds reasons to her open one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FrailOpenInput {
    /// Condition codes of the rules (`anaemia`, `other`, …).
    pub reasons: Vec<String>,
    /// What she bases it on (required).
    pub note: Option<String>,
}

pub async fn open_frail_case(
    db: &Db,
    actor: &Actor,
    child_id: String,
    input: FrailOpenInput,
) -> Result<FrailCase, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "create", move |c| {
        let actor = &actor2;
        let (rec, _) = child_for(c, actor, Action::ManageCase, &child_id)?;
        let note = input.note.clone().unwrap_or_default().trim().to_string();
        crate::privacy::service::refuse_fetal_sex(
            &[("note", "建案依据", note.as_str())],
            child_target(&rec.person_id),
        )?;
        let rules = frail::rules();
        let mut errors = Vec::new();
        if note.is_empty() {
            errors.push(crate::error::FieldError::new("note", "required", "请填写建案依据"));
        } else if note.chars().count() > 500 {
            errors.push(crate::error::FieldError::new("note", "too_long", "建案依据最多 500 字"));
        }
        let mut found = Vec::new();
        for code in input.reasons.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
            match rules.manual_finding(code, &note) {
                Some(f) if !found.iter().any(|x: &Finding| x.code == f.code) => found.push(f),
                Some(_) => {}
                None => errors.push(crate::error::FieldError::new(
                    "reasons",
                    "choice",
                    format!("未知的体弱儿专案原因：{code}"),
                )),
            }
        }
        if found.is_empty() && errors.is_empty() {
            errors.push(crate::error::FieldError::new("reasons", "required", "请选择专案原因"));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let today = today_china();
        let case = open_or_add(c, actor, &rec, &found, None, today, today, None, "manual")?;
        case.ok_or(ServiceError::NotFound("没有找到该体弱儿专案"))
    })
    .await
}

// ------------------------------------------------------------------ the case page

/// A reason with what the rules say of it.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonView {
    pub reason: CaseReason,
    pub group: String,
    /// The condition's closing standard, in words.
    pub resolved_when: String,
    /// The rule's source and its tag (V / R / L / ?).
    pub source: String,
    pub tag: String,
}

/// A closing reason as the form offers it.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonChoice {
    pub code: &'static str,
    pub label: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrailCaseView {
    pub case: FrailCase,
    pub child: ChildSummary,
    pub days_overdue: i64,
    pub escalation_label: &'static str,
    pub close_reason_label: Option<&'static str>,
    pub reasons: Vec<ReasonView>,
    pub manager_name: Option<String>,
    pub managers: Vec<Choice>,
    pub events: Vec<CaseEvent>,
    /// Reasons the record shows unresolved (a 恢复/好转 closure waits for them).
    pub unresolved: Vec<String>,
    pub aged_out: bool,
    pub close_reasons: Vec<ReasonChoice>,
    pub may_manage: bool,
    /// The rules' document set.
    pub rules: String,
}

fn build_view(c: &mut AnyConnection, actor: &Actor, case: FrailCase) -> Result<FrailCaseView, ServiceError> {
    let today = today_china();
    let rules = frail::rules();
    let rec = repo::by_id(c, &case.child_id)?.ok_or(ServiceError::NotFound("没有找到该儿童档案"))?;
    let person = crate::identity::repo::by_id(c, &case.child_id)?.ok_or(ServiceError::NotFound("没有找到该儿童"))?;
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
    let days = cases::days_overdue(case.status, case.next_follow_up, today);
    let m = &rules.management;
    let esc = cases::escalation(
        case.status,
        days,
        m.escalate_supervisor_after_days,
        m.escalate_district_after_days,
    );
    let closing = FrailClosing::of(rules, &case.reasons, rec.birth_date(), today);
    Ok(FrailCaseView {
        child: summary(&rec, &person, today),
        days_overdue: days,
        escalation_label: esc.label_zh(),
        close_reason_label: case
            .close_reason
            .as_deref()
            .and_then(|r| CloseReason::parse_among(r, &CloseReason::ALL))
            .map(CloseReason::label_zh),
        reasons: case
            .reasons
            .iter()
            .map(|r| {
                let cond = rules.condition(&r.finding.code);
                ReasonView {
                    reason: r.clone(),
                    group: cond.map(|c| c.group.clone()).unwrap_or_default(),
                    resolved_when: cond.map(|c| c.resolved.clone()).unwrap_or_default(),
                    source: cond.map(|c| c.source.clone()).unwrap_or_default(),
                    tag: cond.map(|c| c.tag.clone()).unwrap_or_default(),
                }
            })
            .collect(),
        manager_name: case
            .case_manager_id
            .as_ref()
            .and_then(|id| users.iter().find(|u| &u.id == id))
            .map(|u| u.display_name.clone()),
        managers,
        events: repo::frail_events(c, &case.id)?,
        unresolved: closing.unresolved.clone(),
        aged_out: closing.aged_out,
        close_reasons: CLOSE_REASONS
            .iter()
            .map(|r| ReasonChoice {
                code: r.as_str(),
                label: r.label_zh(),
            })
            .collect(),
        may_manage: actor.may(Action::ManageCase),
        rules: rules.name.clone(),
        case,
    })
}

pub async fn frail_case_view(db: &Db, actor: &Actor, case_id: String) -> Result<FrailCaseView, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "read", move |c| {
        let case = frail_for(c, &actor2, Action::ReadRecord, &case_id)?;
        record(c, &actor2, "read", frail_target(&case), "frail-child case page")?;
        build_view(c, &actor2, case)
    })
    .await
}

/// Her open case for her page (inside the page's audited read).
#[derive(Debug, Clone, Serialize)]
pub struct FrailSummary {
    pub id: String,
    pub status_label: &'static str,
    pub reasons: String,
    pub next_follow_up: NaiveDate,
    pub days_overdue: i64,
}

pub(super) fn open_case_summary(c: &mut AnyConnection, child_id: &str) -> Result<Option<FrailSummary>, ServiceError> {
    let today = today_china();
    Ok(repo::open_frail_case_of(c, child_id)?.map(|case| FrailSummary {
        reasons: labels(&case.open_reasons()),
        days_overdue: cases::days_overdue(case.status, case.next_follow_up, today),
        id: case.id,
        status_label: case.status_label,
        next_follow_up: case.next_follow_up,
    }))
}

/// A case action: `follow_up`, `traced`, `lost`, `move_out`, `close` (`close_reason` one of
/// `recovered`, `referred`, `lost_to_follow_up`, `move_out_accepted`, `death`, `aged_out`),
/// `assign_manager` — the same body as the maternal case actions.
pub async fn frail_case_action(
    db: &Db,
    actor: &Actor,
    case_id: String,
    input: CaseActionInput,
) -> Result<FrailCase, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "update", move |c| {
        let actor = &actor2;
        let mut case = frail_for(c, actor, Action::ManageCase, &case_id)?;
        // The 两非 ban (RULES.md §9.1) on what a follow-up or hand-over note says.
        crate::privacy::service::refuse_fetal_sex(
            &[("note", "说明", input.note.as_deref().unwrap_or(""))],
            frail_target(&case),
        )?;
        if input.version.is_some_and(|v| v != case.version) {
            return Err(ServiceError::Conflict("专案已被他人更新，请刷新页面后重试".into()));
        }
        let today = today_china();
        let rules = frail::rules();
        let note = input.note.clone().unwrap_or_default().trim().to_string();
        if note.chars().count() > 500 {
            return Err(ServiceError::invalid("note", "too_long", "说明最多 500 字"));
        }
        let overdue = cases::days_overdue(case.status, case.next_follow_up, today) > 0;
        let (kind, detail) = if input.action == "assign_manager" {
            if case.status == CaseStatus::Closed {
                return Err(ServiceError::Conflict("专案已结案，不能再操作".into()));
            }
            let uid = input.manager_id.clone().unwrap_or_default();
            let user = crate::auth::repo::user_by_id(c, &uid)?.filter(|u| u.active && u.role == "clinician");
            let Some(user) = user else {
                return Err(ServiceError::invalid(
                    "manager_id",
                    "manager",
                    "请选择一位本辖区的医生作为专案管理人",
                ));
            };
            let f =
                crate::facility::repo::by_id(c, &user.facility_id)?.ok_or(ServiceError::NotFound("没有找到该机构"))?;
            if !Scope::of_facility(&f).covers(&case.jurisdiction, case.township_code.as_deref()) {
                return Err(ServiceError::invalid(
                    "manager_id",
                    "manager",
                    "专案管理人须为管辖该儿童的乡镇或县级机构的医生",
                ));
            }
            let from = case.case_manager_id.clone().unwrap_or_else(|| "无".into());
            case.case_manager_id = Some(user.id.clone());
            (
                "manager_assigned",
                format!("专案管理人交接：{from} → {}（{}）", user.display_name, user.id),
            )
        } else {
            let action = match input.action.as_str() {
                "follow_up" => CaseAction::FollowUp,
                "traced" => CaseAction::Traced,
                "lost" => CaseAction::Lost,
                "move_out" => CaseAction::MoveOut,
                "close" => {
                    let r = input
                        .close_reason
                        .as_deref()
                        .and_then(|r| CloseReason::parse_among(r, &CLOSE_REASONS))
                        .ok_or_else(|| ServiceError::invalid("close_reason", "reason", "请选择结案原因"))?;
                    CaseAction::Close(r)
                }
                _ => return Err(ServiceError::invalid("action", "action", "未知的专案操作")),
            };
            let rec = repo::by_id(c, &case.child_id)?.ok_or(ServiceError::NotFound("没有找到该儿童档案"))?;
            let closing = FrailClosing::of(rules, &case.reasons, rec.birth_date(), today);
            let next = cases::transition(case.status, &action, overdue, closing).map_err(ServiceError::Conflict)?;
            if note.is_empty() && matches!(action, CaseAction::Lost | CaseAction::MoveOut | CaseAction::Close(_)) {
                return Err(ServiceError::invalid("note", "required", "此操作须填写说明"));
            }
            let detail = match &action {
                CaseAction::FollowUp => {
                    let day = match input.date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
                            .map_err(|_| ServiceError::invalid("date", "date", "日期格式应为 YYYY-MM-DD"))?,
                        None => today,
                    };
                    if day > today || day < crate::ids::china_date(case.opened_at) - Duration::days(1) {
                        return Err(ServiceError::invalid("date", "date", "随访日期须在建案之后、今天之前"));
                    }
                    case.last_contact = Some(case.last_contact.map_or(day, |d| d.max(day)));
                    case.next_follow_up =
                        case.last_contact.unwrap_or(day) + Duration::days(i64::from(case.follow_up_days));
                    case.escalation = Escalation::None;
                    format!("{day} 随访")
                }
                CaseAction::Traced => {
                    let within = i64::from(case.follow_up_days).min(rules.management.traced_within_days);
                    case.next_follow_up = today + Duration::days(within);
                    "已追踪到儿童及家长，已预约随访".to_string()
                }
                CaseAction::Lost => "多次追踪未果，标记失访".to_string(),
                CaseAction::MoveOut => {
                    let to = crate::risk::service::move_destination(c, input.moved_to.as_deref(), &case.jurisdiction)?;
                    case.moved_to = Some(to.clone());
                    format!("迁出至 {to}，待接收")
                }
                CaseAction::Close(r) => {
                    if *r == CloseReason::MoveOutAccepted {
                        let to = case.moved_to.clone().unwrap_or_default();
                        if !actor.scope.covers(&to, None) {
                            return Err(ServiceError::forbidden(frail_target(&case)));
                        }
                    }
                    case.closed_at = Some(now_utc());
                    case.close_reason = Some(r.as_str().to_string());
                    format!("结案：{}", r.label_zh())
                }
            };
            case.status = next;
            case.status_label = next.label_zh();
            let kind = match action {
                CaseAction::FollowUp => "follow_up",
                CaseAction::Traced => "traced",
                CaseAction::Lost => "lost",
                CaseAction::MoveOut => "moved_out",
                CaseAction::Close(_) => "closed",
            };
            (kind, detail)
        };
        // An accepted hand-over moves her record to the receiving county, which manages her from now on.
        let accepted = case.close_reason.as_deref() == Some(CloseReason::MoveOutAccepted.as_str());
        if accepted && let Some(to) = case.moved_to.clone() {
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
            crate::identity::repo::move_to_jurisdiction(c, &case.child_id, &to, township)?;
            repo::move_child_to(c, &case.child_id, &to, township)?;
            record(
                c,
                actor,
                "update",
                child_target(&case.child_id),
                &format!("jurisdiction handed over to {to}"),
            )?;
            case.jurisdiction = to;
            case.township_code = township.map(str::to_string);
        }
        if !repo::update_frail_case(c, &case)? {
            return Err(ServiceError::Conflict("专案已被他人更新，请刷新页面后重试".into()));
        }
        case.version += 1;
        let text = if note.is_empty() {
            detail
        } else {
            format!("{detail}。{note}")
        };
        repo::add_frail_event(c, &case.id, kind, &text, &actor.name)?;
        record(
            c,
            actor,
            "update",
            frail_target(&case),
            &format!("frail-child case {kind}"),
        )?;
        Ok(case)
    })
    .await
}

// ------------------------------------------------------------------ the board

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FrailBoardFilter {
    /// A condition code: only cases with that open reason.
    pub reason: Option<String>,
    /// Only overdue or lost cases.
    #[serde(default)]
    pub overdue: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrailBoardRow {
    pub case: FrailCase,
    pub child: ChildSummary,
    pub reasons: String,
    pub days_overdue: i64,
    pub escalation_label: &'static str,
    pub manager_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReasonCount {
    pub code: String,
    pub label: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncomingFrail {
    pub case_id: String,
    pub name: String,
    pub from: String,
    pub reasons: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrailBoard {
    pub rows: Vec<FrailBoardRow>,
    /// Open cases in my area by open reason (condition code → cases).
    pub counts: BTreeMap<String, usize>,
    /// The same, in the rules' order with labels, for the page.
    pub reason_counts: Vec<ReasonCount>,
    pub total: usize,
    /// Cases moved out of another county into mine, waiting for me to accept the hand-over.
    pub incoming: Vec<IncomingFrail>,
}

/// The district's frail-child board: the open cases of my area, counted by reason, the lost and
/// the most overdue first.
pub async fn frail_board(db: &Db, actor: &Actor, filter: FrailBoardFilter) -> Result<FrailBoard, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Err(ServiceError::forbidden(AuditTarget {
                entity_type: "frail_board",
                ..Default::default()
            }));
        }
        let today = today_china();
        let rules = frail::rules();
        let m = &rules.management;
        let (township, prefix) = actor.scope.filters();
        let users = crate::auth::repo::users_all(c)?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let open = repo::open_frail_cases(c, township, prefix)?;
        let total = open.len();
        let mut rows = Vec::new();
        for case in open {
            let open_reasons = case.open_reasons();
            for r in &open_reasons {
                *counts.entry(r.finding.code.clone()).or_default() += 1;
            }
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let keep = filter
                .reason
                .as_deref()
                .is_none_or(|code| open_reasons.iter().any(|r| r.finding.code == code))
                && (!filter.overdue || days > 0 || case.status == CaseStatus::LostToFollowUp);
            if !keep {
                continue;
            }
            let (Some(rec), Some(person)) = (
                repo::by_id(c, &case.child_id)?,
                crate::identity::repo::by_id(c, &case.child_id)?,
            ) else {
                continue;
            };
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            rows.push(FrailBoardRow {
                child: summary(&rec, &person, today),
                reasons: labels(&open_reasons),
                days_overdue: days,
                escalation_label: esc.label_zh(),
                manager_name: case
                    .case_manager_id
                    .as_ref()
                    .and_then(|id| users.iter().find(|u| &u.id == id))
                    .map(|u| u.display_name.clone()),
                case,
            });
        }
        rows.sort_by(|a, b| {
            let lost = |r: &FrailBoardRow| r.case.status == CaseStatus::LostToFollowUp;
            lost(b)
                .cmp(&lost(a))
                .then(b.days_overdue.cmp(&a.days_overdue))
                .then(a.case.next_follow_up.cmp(&b.case.next_follow_up))
        });
        let mut incoming = Vec::new();
        if let Scope::Area(prefix) = &actor.scope {
            for case in repo::incoming_frail_cases(c, prefix)? {
                let Some(person) = crate::identity::repo::by_id(c, &case.child_id)? else {
                    continue;
                };
                record(
                    c,
                    actor,
                    "search",
                    frail_target(&case),
                    "incoming frail-child hand-over",
                )?;
                incoming.push(IncomingFrail {
                    case_id: case.id.clone(),
                    name: person.name,
                    from: case.jurisdiction.clone(),
                    reasons: labels(&case.open_reasons()),
                });
            }
        }
        record_many(
            c,
            actor,
            "search",
            rows.iter().map(|r| frail_target(&r.case)).collect(),
            "frail-child board",
        )?;
        let reason_counts = rules
            .conditions
            .iter()
            .filter(|c| c.enabled || counts.contains_key(&c.code))
            .map(|c| ReasonCount {
                code: c.code.clone(),
                label: c.label.clone(),
                count: counts.get(&c.code).copied().unwrap_or(0),
            })
            .collect();
        Ok(FrailBoard {
            rows,
            counts,
            reason_counts,
            total,
            incoming,
        })
    })
    .await
}

/// Record escalations of overdue frail-child follow-ups (the service's minute timer; `today`
/// injected so tests need no clock). Each step up is written once: the optimistic lock makes a
/// second instance's update a no-op.
pub async fn escalate_frail_overdue(db: &Db, today: NaiveDate) -> Result<usize, ServiceError> {
    db.write(move |c| {
        let m = &frail::rules().management;
        let mut n = 0;
        for mut case in repo::open_frail_cases(c, None, None)? {
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            if esc > case.escalation {
                case.escalation = esc;
                if repo::update_frail_case(c, &case)? {
                    repo::add_frail_event(
                        c,
                        &case.id,
                        "escalated",
                        &format!("随访逾期 {days} 天，{}", esc.label_zh()),
                        "system",
                    )?;
                    record_system(c, "update", frail_target(&case), &format!("escalated to {esc:?}"))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    })
    .await
}

/// Overdue frail-child follow-ups for this user's home page, the same steps as the maternal
/// cases: the case manager from the first day overdue, her facility from the supervisor step,
/// the district MCH institution from the district step (and a lost child stays with it).
pub async fn frail_tasks(db: &Db, actor: &Actor) -> Result<Vec<crate::risk::service::TaskLine>, ServiceError> {
    let actor2 = actor.clone();
    guarded(db, actor, "search", move |c| {
        let actor = &actor2;
        if !actor.may(Action::ReadRecord) {
            return Ok(Vec::new());
        }
        let today = today_china();
        let m = &frail::rules().management;
        let (township, prefix) = actor.scope.filters();
        let mut out = Vec::new();
        let mut targets = Vec::new();
        for case in repo::open_frail_cases(c, township, prefix)? {
            let days = cases::days_overdue(case.status, case.next_follow_up, today);
            let esc = cases::escalation(
                case.status,
                days,
                m.escalate_supervisor_after_days,
                m.escalate_district_after_days,
            );
            if esc == Escalation::None {
                continue;
            }
            let mine = case.case_manager_id.is_some() && case.case_manager_id == actor.id;
            let my_facility = match &case.case_manager_id {
                Some(mid) => crate::auth::repo::user_by_id(c, mid)?.is_some_and(|u| u.facility_id == actor.facility.id),
                None => true,
            };
            let district = actor.may(Action::AcknowledgeReport);
            if !(mine || (my_facility && esc >= Escalation::Supervisor) || (district && esc >= Escalation::District)) {
                continue;
            }
            let name = crate::identity::repo::by_id(c, &case.child_id)?
                .map(|p| p.name)
                .unwrap_or_default();
            out.push(crate::risk::service::TaskLine {
                link: format!("/child/frail/{}", case.id),
                name,
                what: format!(
                    "体弱儿专案（{}）{}，随访逾期 {days} 天 {}",
                    labels(&case.open_reasons()),
                    case.status_label,
                    esc.label_zh()
                ),
                late: true,
                colour: None,
                since: Some(case.next_follow_up),
            });
            targets.push(frail_target(&case));
        }
        record_many(c, actor, "search", targets, "frail-child tasks")?;
        Ok(out)
    })
    .await
}
