//! Risk use cases.

use super::model::{Assessment, Facts, evaluate as grade, rule_set};
use crate::error::ServiceError;

/// Grade facts with a rule set; nothing is stored (`mch-chain risk evaluate`, `POST /api/risk/evaluate`).
pub fn evaluate(rule_set_id: &str, facts: &Facts) -> Result<Assessment, ServiceError> {
    let rules = rule_set(rule_set_id).map_err(|e| ServiceError::invalid("rule_set", "rule_set", e))?;
    grade(rules, facts).map_err(|e| ServiceError::invalid("facts", "facts", e))
}
