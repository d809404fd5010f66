//! Error policy.
//!
//! * Domain rules return [`ServiceError`]: what went wrong in words a user can act on (zh-CN,
//!   never containing another person's data) plus, for validation, the field it concerns.
//! * Storage failures are logged with their cause at the boundary and shown to users only as
//!   "系统暂时无法保存" — never with SQL or internals.
//! * Adapters choose the representation: an HTML page or form message for the web, `{"error"}`
//!   JSON for `/api`, an ACK for HL7. Every refusal leaves stored data unchanged.

use serde::Serialize;

use crate::storage::StorageError;

/// One problem with one input field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            code,
            message: message.into(),
        }
    }
}

/// What an audit row says was touched (for denied attempts as well as granted ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditTarget {
    pub entity_type: &'static str,
    pub entity_id: Option<String>,
    pub person_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{}", .0.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("；"))]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{reason}")]
    Forbidden {
        reason: String,
        target: Option<AuditTarget>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("未登录或登录已过期")]
    Unauthenticated,
    #[error("{0}")]
    TooManyAttempts(String),
    /// Refused by a rule that keeps a record of the attempt (the 两非 ban, RULES.md §9.1): named
    /// field by field like `Invalid`, and audited against `target` — never with the refused text —
    /// by the door that refused it (`audit::service::guarded` for the pages and JSON, which then
    /// answers it as `Invalid`; the FHIR and HL7 doors for their own transactions).
    #[error("{}", .fields.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("；"))]
    Refused {
        fields: Vec<FieldError>,
        target: Option<AuditTarget>,
    },
    #[error("系统暂时无法完成操作，请稍后重试")]
    Storage(#[from] StorageError),
    /// A defect of the service itself (e.g. started without its event reactions wired): nothing
    /// is stored, the cause is logged, the user sees a generic message.
    #[error("系统内部错误：{0}")]
    Internal(&'static str),
}

impl ServiceError {
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![FieldError::new(field, code, message)])
    }

    pub fn forbidden(target: AuditTarget) -> ServiceError {
        ServiceError::Forbidden {
            reason: "无权访问该记录（不在本机构辖区或角色无此权限）".to_string(),
            target: Some(target),
        }
    }

    /// The HTTP status an adapter should answer with.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::Invalid(_) => 422,
            ServiceError::NotFound(_) => 404,
            ServiceError::Forbidden { .. } => 403,
            ServiceError::Conflict(_) => 409,
            ServiceError::Unauthenticated => 401,
            ServiceError::TooManyAttempts(_) => 429,
            ServiceError::Refused { .. } => 422,
            ServiceError::Storage(_) => 503,
            ServiceError::Internal(_) => 500,
        }
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        ServiceError::Storage(StorageError::Query(e))
    }
}
