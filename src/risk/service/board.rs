//! The district high-risk board and the risk work on a user's home page.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::audit::service::{guarded_read, record, record_many};
use crate::auth::model::{Action, Actor, Scope};
use crate::error::{AuditTarget, ServiceError};
use crate::identity::service::PersonSummary;
use crate::ids::{now_utc, today_china};
use crate::risk::cases::{self, CaseRecord, CaseStatus, Escalation};
use crate::risk::model::{RiskColour, management};
use crate::risk::repo;
use crate::storage::{AnyConnection, Db};

use super::shared::{case_target, config_error};

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
    guarded_read(db, actor, "search", move |c| {
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
    /// Re-grade proposals to confirm (graders), one page of them, oldest first.
    pub proposals: Vec<TaskLine>,
    /// How many proposals wait in all.
    pub proposals_total: i64,
    /// Positive screenings waiting for a grading result (the township follows up), the first
    /// `shown` by due date.
    pub screenings: Vec<TaskLine>,
    /// How many such screenings there are in all.
    pub screenings_total: i64,
    /// Cases overdue or escalated to me (as case manager, supervisor or district), the `shown`
    /// most overdue.
    pub cases: Vec<TaskLine>,
    /// How many such cases there are in all.
    pub cases_total: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskLine {
    pub link: String,
    pub name: String,
    pub what: String,
    pub late: bool,
    /// The colour it concerns (a proposal's), for its badge.
    pub colour: Option<String>,
    /// Since when it waits.
    pub since: Option<chrono::NaiveDate>,
}

/// Proposals shown per page of the home page's table.
pub const PROPOSALS_PER_PAGE: i64 = 20;

/// The risk work on the home page; `proposals_page` (from 0) pages the proposals table, `shown`
/// bounds the screening and case lists (their totals are counted in full).
pub async fn tasks(db: &Db, actor: &Actor, proposals_page: i64, shown: usize) -> Result<RiskTasks, ServiceError> {
    let actor2 = actor.clone();
    guarded_read(db, actor, "search", move |c| {
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
            let (page, total) = repo::pending_proposals(
                c,
                township,
                prefix,
                proposals_page.max(0) * PROPOSALS_PER_PAGE,
                PROPOSALS_PER_PAGE,
            )?;
            out.proposals_total = total;
            for a in page {
                let name = name_of(c, &a.person_id)?;
                out.proposals.push(TaskLine {
                    link: format!("/pregnancies/{}/risk/grade", a.pregnancy_id),
                    name,
                    what: format!(
                        "系统建议{}{}（{}）",
                        a.colour_label,
                        if a.purple { "+紫色" } else { "" },
                        a.trigger
                    ),
                    late: false,
                    colour: Some(a.colour.as_str().to_string()),
                    since: Some((a.created_at + chrono::Duration::hours(8)).date()),
                });
            }
        }
        let (screenings, total) = repo::ungraded_positive_screenings(c, township, prefix, shown as i64)?;
        out.screenings_total = total;
        for s in screenings {
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
                colour: None,
                since: s.follow_up_due,
            });
        }
        // The cases that concern me, most overdue first; only the shown ones are named (and so
        // audited as read), the rest counted. A manager's facility is looked up once.
        let mut facility_of_manager: HashMap<String, Option<String>> = HashMap::new();
        let mut concerning = Vec::new();
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
                Some(mid) => {
                    if !facility_of_manager.contains_key(mid) {
                        let f = crate::auth::repo::user_by_id(c, mid)?.map(|u| u.facility_id);
                        facility_of_manager.insert(mid.clone(), f);
                    }
                    facility_of_manager[mid].as_deref() == Some(actor.facility.id.as_str())
                }
                None => true,
            };
            let district = actor.may(Action::AcknowledgeReport);
            let concerns_me = (mine && esc >= Escalation::CaseManager)
                || (my_facility_is_managers && esc >= Escalation::Supervisor)
                || (district && esc >= Escalation::District)
                || (mine && case.status == CaseStatus::MovedOut);
            if concerns_me {
                concerning.push((days, esc, case));
            }
        }
        concerning.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.id.cmp(&b.2.id)));
        out.cases_total = concerning.len() as i64;
        for (days, esc, case) in concerning.into_iter().take(shown) {
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
                colour: Some(case.colour.as_str().to_string()),
                since: Some(case.next_follow_up),
            });
        }
        Ok(out)
    })
    .await
}
