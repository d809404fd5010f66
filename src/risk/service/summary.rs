//! The risk part of a pregnancy as other pages and interfaces show it.

use serde::Serialize;

use crate::error::ServiceError;
use crate::risk::cases::CaseRecord;
use crate::risk::model::{AssessmentRecord, AssessmentStatus, ScreeningRecord};
use crate::risk::repo;
use crate::storage::AnyConnection;

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
