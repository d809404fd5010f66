//! Conditions: the status value sets and their rules. Pure.

use chrono::NaiveDateTime;

use crate::error::{FieldError, ServiceError};

/// `Condition.clinicalStatus` (required value set, system
/// `http://terminology.hl7.org/CodeSystem/condition-clinical`).
pub const CLINICAL_STATUSES: &[&str] = &["active", "recurrence", "relapse", "inactive", "remission", "resolved"];
/// `Condition.verificationStatus` (required value set, system
/// `http://terminology.hl7.org/CodeSystem/condition-ver-status`).
pub const VERIFICATION_STATUSES: &[&str] = &[
    "unconfirmed",
    "provisional",
    "differential",
    "confirmed",
    "refuted",
    "entered-in-error",
];
/// Clinical statuses a condition that has abated may have (FHIR invariant con-4).
pub const ABATED_STATUSES: &[&str] = &["inactive", "resolved", "remission"];

/// A condition to record, as an interface gave it.
#[derive(Debug, Clone, Default)]
pub struct ConditionInput {
    pub code_system: String,
    pub code: String,
    pub code_text: String,
    pub clinical_status: Option<String>,
    pub verification_status: Option<String>,
    /// Whether the document says the condition has abated (any `abatement[x]`).
    pub abated: bool,
    /// Onset as given (a date, an age, a period, a text).
    pub onset: Option<String>,
    /// When it was first recorded (a FHIR dateTime as given).
    pub recorded_date: Option<String>,
    /// Business identifiers (system, value).
    pub identifiers: Vec<(String, String)>,
    /// The document as received.
    pub received: Option<String>,
}

impl ConditionInput {
    /// The value sets and the status rules (FHIR con-3 … con-5): a code from the required value
    /// sets only, no clinical status on an entered-in-error condition, and an abated condition is
    /// inactive, resolved or in remission. Fields: `code`, `clinical_status`, `verification_status`.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let mut errors = Vec::new();
        if self.code.trim().is_empty() && self.code_text.trim().is_empty() {
            errors.push(FieldError::new("code", "required", "诊断须有编码或文字"));
        }
        if self.code.chars().count() > 100 || self.code_text.chars().count() > 500 {
            errors.push(FieldError::new("code", "too_long", "诊断编码或名称过长"));
        }
        if let Some(s) = &self.clinical_status
            && !CLINICAL_STATUSES.contains(&s.as_str())
        {
            errors.push(FieldError::new(
                "clinical_status",
                "code_invalid",
                format!("clinicalStatus {s} 不在规定值集内（{}）", CLINICAL_STATUSES.join(", ")),
            ));
        }
        if let Some(s) = &self.verification_status
            && !VERIFICATION_STATUSES.contains(&s.as_str())
        {
            errors.push(FieldError::new(
                "verification_status",
                "code_invalid",
                format!(
                    "verificationStatus {s} 不在规定值集内（{}）",
                    VERIFICATION_STATUSES.join(", ")
                ),
            ));
        }
        if self.verification_status.as_deref() == Some("entered-in-error") && self.clinical_status.is_some() {
            errors.push(FieldError::new(
                "clinical_status",
                "invariant",
                "verificationStatus 为 entered-in-error 时不得有 clinicalStatus（FHIR con-5）",
            ));
        }
        if self.abated
            && let Some(s) = &self.clinical_status
            && !ABATED_STATUSES.contains(&s.as_str())
        {
            errors.push(FieldError::new(
                "clinical_status",
                "invariant",
                "已缓解/消退（abatement）的诊断，clinicalStatus 须为 inactive、resolved 或 remission（FHIR con-4）",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(errors))
        }
    }
}

/// A stored condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub id: String,
    pub person_id: String,
    pub pregnancy_id: Option<String>,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub code_system: String,
    pub code: String,
    pub code_text: String,
    pub clinical_status: Option<String>,
    pub verification_status: Option<String>,
    pub onset: Option<String>,
    pub recorded_date: Option<String>,
    pub facility_id: String,
    pub recorded_by: String,
    pub received: Option<String>,
    pub created_at: NaiveDateTime,
    pub identifiers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ConditionInput {
        ConditionInput {
            code_system: "http://snomed.info/sct".into(),
            code: "91861009".into(),
            code_text: "Acute myeloid leukemia".into(),
            clinical_status: Some("active".into()),
            ..ConditionInput::default()
        }
    }

    #[test]
    fn statuses_come_from_the_required_value_sets() {
        assert!(input().validate().is_ok());
        let mut bad = input();
        bad.clinical_status = Some("cured".into());
        let ServiceError::Invalid(e) = bad.validate().unwrap_err() else {
            panic!()
        };
        assert_eq!(e[0].field, "clinical_status");
        let mut bad = input();
        bad.verification_status = Some("maybe".into());
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_status_invariants_hold() {
        let mut e = input();
        e.verification_status = Some("entered-in-error".into());
        assert!(e.validate().is_err(), "con-5");
        e.clinical_status = None;
        assert!(e.validate().is_ok());
        let mut a = input();
        a.abated = true;
        assert!(a.validate().is_err(), "con-4");
        a.clinical_status = Some("resolved".into());
        assert!(a.validate().is_ok());
    }
}
