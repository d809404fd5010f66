//! The report of a case to the district MCH institution: sending it and its acknowledgement.

use chrono::Duration;

use crate::audit::service::{guarded, record};
use crate::auth::model::{Action, Actor};
use crate::error::ServiceError;
use crate::ids::now_utc;
use crate::risk::cases::CaseReport;
use crate::risk::model::management;
use crate::risk::repo;
use crate::storage::Db;

use super::cases::case_for;
use super::shared::{case_target, config_error};

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
