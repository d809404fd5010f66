//! Errors as FHIR `OperationOutcome`s: every 4xx/5xx answer of `/fhir` is one, with a
//! diagnostics text a person can act on and, where an element is at fault, its FHIRPath.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::error::{AuditTarget, ServiceError};
use crate::storage::StorageError;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// `fatal` | `error` | `warning` | `information`.
    pub severity: &'static str,
    /// The FHIR issue-type code (`invalid`, `not-found`, `conflict`, `not-supported` …).
    pub code: &'static str,
    pub diagnostics: String,
    /// FHIRPath of the element at fault.
    pub expression: Option<String>,
}

/// A refused or failed FHIR interaction.
#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: u16,
    pub issues: Vec<Issue>,
    /// When the refusal was for lack of access, or by a rule whose refusals are audited (fetal
    /// sex): what was asked for (the refusal is audited in a commit of its own).
    pub denied: Option<AuditTarget>,
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<&str> = self.issues.iter().map(|i| i.diagnostics.as_str()).collect();
        write!(f, "{} {}", self.status, texts.join("; "))
    }
}

impl FhirError {
    pub fn new(status: u16, code: &'static str, diagnostics: impl Into<String>) -> FhirError {
        FhirError {
            status,
            issues: vec![Issue {
                severity: "error",
                code,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
            denied: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> FhirError {
        if let Some(i) = self.issues.first_mut() {
            i.expression = Some(expression.into());
        }
        self
    }

    /// 400: the request itself is malformed (syntax, unknown parameter, bad id).
    pub fn bad_request(diagnostics: impl Into<String>) -> FhirError {
        FhirError::new(400, "invalid", diagnostics)
    }

    /// 422: a well-formed resource that breaks a rule (FHIR "Unprocessable Entity").
    pub fn invalid(expression: &str, diagnostics: impl Into<String>) -> FhirError {
        FhirError::new(422, "invalid", diagnostics).at(expression)
    }

    /// An element whose code or value we do not support.
    pub fn unsupported(expression: &str, diagnostics: impl Into<String>) -> FhirError {
        FhirError::new(422, "not-supported", diagnostics).at(expression)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> FhirError {
        FhirError::new(404, "not-found", diagnostics)
    }

    pub fn not_supported(status: u16, diagnostics: impl Into<String>) -> FhirError {
        FhirError::new(status, "not-supported", diagnostics)
    }

    /// Map a service refusal to its FHIR answer; `path` names the FHIRPath of a service field
    /// (`id_number` → `Patient.identifier…`).
    pub fn from_service(e: ServiceError, path: &dyn Fn(&str) -> String) -> FhirError {
        match e {
            ServiceError::Invalid(fields) => FhirError {
                status: 422,
                issues: fields
                    .into_iter()
                    .map(|f| Issue {
                        severity: "error",
                        code: if f.code == "required" { "required" } else { "invalid" },
                        diagnostics: f.message,
                        expression: Some(path(&f.field)),
                    })
                    .collect(),
                denied: None,
            },
            ServiceError::NotFound(m) => FhirError::not_found(m),
            ServiceError::Forbidden { reason, target } => FhirError {
                denied: target,
                ..FhirError::new(403, "forbidden", reason)
            },
            ServiceError::Conflict(m) if m == crate::identity::service::STALE_VERSION => {
                FhirError::new(412, "conflict", m)
            }
            ServiceError::Conflict(m) => FhirError::new(409, "conflict", m),
            ServiceError::Unauthenticated => FhirError::new(401, "login", "需要有效的接口令牌 (Authorization: Bearer)"),
            ServiceError::TooManyAttempts(m) => FhirError::new(429, "throttled", m),
            // The 两非 ban (RULES.md §9.1): refused and audited by the door, without the text.
            ServiceError::Refused { fields, target } => FhirError {
                status: 422,
                issues: fields
                    .into_iter()
                    .map(|f| Issue {
                        severity: "error",
                        code: "business-rule",
                        diagnostics: f.message,
                        expression: Some(path(&f.field)),
                    })
                    .collect(),
                denied: target.or(Some(AuditTarget {
                    entity_type: "unknown",
                    ..AuditTarget::default()
                })),
            },
            ServiceError::Storage(s) => FhirError::from(s),
            ServiceError::Internal(m) => FhirError::new(500, "exception", m),
        }
    }

    /// Whether the refusal is audited on its own (lack of access, or a rule that refuses and
    /// records the attempt, such as the fetal-sex ban), and the audit detail.
    pub fn audited_refusal(&self) -> Option<String> {
        if self.status == 403 {
            Some("access refused".to_string())
        } else if self.denied.is_some() {
            Some(format!(
                "refused: {}",
                self.issues.first().map(|i| i.diagnostics.as_str()).unwrap_or("")
            ))
        } else {
            None
        }
    }

    pub fn outcome(&self) -> Value {
        outcome_json(&self.issues)
    }
}

impl From<ServiceError> for FhirError {
    fn from(e: ServiceError) -> FhirError {
        FhirError::from_service(e, &|f| f.to_string())
    }
}

impl From<StorageError> for FhirError {
    fn from(e: StorageError) -> FhirError {
        tracing::error!(error = %e, "storage failure behind /fhir");
        FhirError::new(503, "transient", "系统暂时无法完成操作，请稍后重试（未保存任何内容）")
    }
}

impl From<diesel::result::Error> for FhirError {
    fn from(e: diesel::result::Error) -> FhirError {
        FhirError::from(StorageError::Query(e))
    }
}

/// An OperationOutcome resource.
pub fn outcome_json(issues: &[Issue]) -> Value {
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({"severity": i.severity, "code": i.code, "diagnostics": i.diagnostics});
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issue})
}

impl ResponseError for FhirError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status_code());
        b.content_type(FHIR_JSON);
        if self.status == 401 {
            b.insert_header(("WWW-Authenticate", "Bearer realm=\"mch-chain\""));
        }
        b.body(self.outcome().to_string())
    }
}
