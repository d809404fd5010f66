//! Risk use cases: screening at booking, grading (proposed by the system, confirmed by a
//! clinician), automatic re-grading proposals when a visit changes the picture, high-risk cases
//! with their manager, plan, follow-ups, reports and escalation, and the district board.
//! Every call checks role and jurisdiction and audits in the same transaction.
//!
//! One file per workflow: `facts` (what the record shows), `screening`, `grading` (and the plan a
//! grade calls for), `regrading` (proposals when a visit or result arrives — the reactions to
//! those events), `cases` (专案: the page, actions, escalation), `reports` (to the district),
//! `board` (the district board, home-page tasks), `summary` (her risk for other pages),
//! `interface` (FHIR RiskAssessment and Flag); `shared` holds what they all use.

use crate::error::ServiceError;
use crate::risk::model::{Assessment, Facts, evaluate as grade_facts, rule_set};

mod board;
mod cases;
mod facts;
mod grading;
mod interface;
mod regrading;
mod reports;
mod screening;
mod shared;
mod summary;

pub use board::*;
pub use cases::*;
pub use facts::*;
pub use grading::*;
pub use interface::*;
pub use regrading::*;
pub use reports::*;
pub use screening::*;
pub use summary::*;

/// Grade facts with a rule set; nothing is stored (`mch-chain risk evaluate`, `POST /api/risk/evaluate`).
pub fn evaluate(rule_set_id: &str, facts: &Facts) -> Result<Assessment, ServiceError> {
    let rules = rule_set(rule_set_id).map_err(|e| ServiceError::invalid("rule_set", "rule_set", e))?;
    grade_facts(rules, facts).map_err(|e| ServiceError::invalid("facts", "facts", e))
}
