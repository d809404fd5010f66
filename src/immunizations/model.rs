//! Immunizations: status value set and checks. Pure.

use chrono::{Duration, NaiveDateTime};

use crate::error::{FieldError, ServiceError};

/// `Immunization.status` (required value set).
pub const STATUSES: &[&str] = &["completed", "entered-in-error", "not-done"];

/// A vaccination to record, as an interface gave it.
#[derive(Debug, Clone, Default)]
pub struct ImmunizationInput {
    pub status: String,
    pub vaccine_system: String,
    pub vaccine_code: String,
    pub vaccine_text: String,
    /// When, as given (a FHIR dateTime, or a text).
    pub occurrence: String,
    /// Its UTC start when it names a time.
    pub occurrence_at: Option<NaiveDateTime>,
    pub lot_number: Option<String>,
    pub identifiers: Vec<(String, String)>,
    pub received: Option<String>,
}

impl ImmunizationInput {
    /// Status from the value set, a vaccine, a time not in the future. Fields: `status`,
    /// `vaccine`, `occurrence`, `lot_number`.
    pub fn validate(&self, now: NaiveDateTime) -> Result<(), ServiceError> {
        let mut errors = Vec::new();
        if !STATUSES.contains(&self.status.as_str()) {
            errors.push(FieldError::new(
                "status",
                "code_invalid",
                format!("status {} 不在规定值集内（{}）", self.status, STATUSES.join(", ")),
            ));
        }
        if self.vaccine_code.trim().is_empty() && self.vaccine_text.trim().is_empty() {
            errors.push(FieldError::new("vaccine", "required", "须写明疫苗（编码或名称）"));
        }
        if self.occurrence.trim().is_empty() {
            errors.push(FieldError::new("occurrence", "required", "须写明接种时间"));
        }
        if self.occurrence_at.is_some_and(|t| t > now + Duration::days(1)) {
            errors.push(FieldError::new("occurrence", "future", "接种时间不能晚于现在"));
        }
        if self.lot_number.as_ref().is_some_and(|l| l.chars().count() > 100) {
            errors.push(FieldError::new("lot_number", "too_long", "批号过长（最多 100 字）"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(errors))
        }
    }
}

/// A stored vaccination.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Immunization {
    pub id: String,
    pub person_id: String,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub status: String,
    pub vaccine_system: String,
    pub vaccine_code: String,
    pub vaccine_text: String,
    pub occurrence: String,
    pub occurrence_at: Option<NaiveDateTime>,
    pub lot_number: Option<String>,
    pub facility_id: String,
    pub recorded_by: String,
    pub received: Option<String>,
    pub created_at: NaiveDateTime,
    pub identifiers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_vaccine_and_time_are_checked() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let ok = ImmunizationInput {
            status: "completed".into(),
            vaccine_code: "J07CA02".into(),
            occurrence: "1998-06-04".into(),
            occurrence_at: Some(now - Duration::days(100)),
            ..ImmunizationInput::default()
        };
        assert!(ok.validate(now).is_ok());
        let mut bad = ok.clone();
        bad.status = "done".into();
        assert!(bad.validate(now).is_err());
        let mut future = ok.clone();
        future.occurrence_at = Some(now + Duration::days(3));
        assert!(future.validate(now).is_err());
    }
}
