//! Helpers every risk workflow shares: rule-data errors, the row scope of new records, audit targets.

use crate::error::{AuditTarget, ServiceError};
use crate::pregnancy::model::Pregnancy;
use crate::risk::cases::CaseRecord;
use crate::risk::repo::Scope as RowScope;

pub(super) fn config_error(e: String) -> ServiceError {
    tracing::error!(error = %e, "risk rule data is invalid");
    ServiceError::invalid("rule_set", "rule_set", e)
}

pub(super) fn row_scope(p: &Pregnancy) -> RowScope<'_> {
    RowScope {
        person_id: &p.person_id,
        jurisdiction: &p.jurisdiction,
        township_code: p.township_code.as_deref(),
    }
}

pub(super) fn pregnancy_target(p: &Pregnancy, entity: &'static str, id: Option<&str>) -> AuditTarget {
    AuditTarget {
        entity_type: entity,
        entity_id: Some(id.unwrap_or(&p.id).to_string()),
        person_id: Some(p.person_id.clone()),
    }
}

pub(super) fn case_target(c: &CaseRecord) -> AuditTarget {
    AuditTarget {
        entity_type: "risk_case",
        entity_id: Some(c.id.clone()),
        person_id: Some(c.person_id.clone()),
    }
}
