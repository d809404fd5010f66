//! High-risk cases (专案管理): the case page, the manager's actions, closing on a maternal death,
//! and the escalation of overdue follow-ups.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::audit::service::{guarded, record, record_system};
use crate::auth::model::{Action, Actor, Scope};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::service::PersonSummary;
use crate::ids::{now_utc, today_china};
use crate::risk::cases::{
    self, CaseAction, CaseEvent, CaseRecord, CaseReport, CaseStatus, CloseReason, ClosingFacts, Escalation,
};
use crate::risk::model::{AssessmentRecord, AssessmentStatus, Plan, facility_fits, management, plan_for};
use crate::risk::repo;
use crate::storage::{AnyConnection, Db};

use super::shared::{case_target, config_error};

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

pub(super) fn case_for(
    c: &mut AnyConnection,
    actor: &Actor,
    action: Action,
    id: &str,
) -> Result<CaseRecord, ServiceError> {
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
        // The 两非 ban (RULES.md §9.1) on what a follow-up or hand-over note says.
        crate::privacy::service::refuse_fetal_sex(
            &[("note", "说明", input.note.as_deref().unwrap_or(""))],
            case_target(&case),
        )?;
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
                        let to = move_destination(c, input.moved_to.as_deref(), &case.jurisdiction)?;
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

/// Where a case moving out goes: a 6-digit GB/T 2260 code other than her own jurisdiction,
/// with at least one registered facility there to take the case over (shared by every
/// 专案 kind: high-risk pregnancy and 体弱儿).
pub fn move_destination(c: &mut AnyConnection, moved_to: Option<&str>, own: &str) -> Result<String, ServiceError> {
    let to = moved_to.unwrap_or_default().trim().to_string();
    if !(to.len() == 6 && to.bytes().all(|b| b.is_ascii_digit())) || to == own {
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
    Ok(to)
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

/// Reaction to [`crate::pregnancy::events::DELIVERY_RECORDED`]: a maternal death recorded with
/// the delivery closes the open case (reason: death).
pub fn close_case_on_maternal_death(
    c: &mut AnyConnection,
    e: &crate::pregnancy::events::DeliveryRecorded,
) -> Result<(), ServiceError> {
    if !e.delivery.maternal_death {
        return Ok(());
    }
    let actor = &e.actor;
    if let Some(mut case) = repo::open_case_for(c, &e.pregnancy.id)? {
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
