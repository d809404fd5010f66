//! Who is asking: the session cookie (pages, and the API from our own pages) or a bearer token
//! (hospital systems, card-reader bridges). Also the error answers of both kinds of route.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::auth::model::{Actor, ActorKind, Role};
use crate::auth::service;
use crate::error::{AuditTarget, ServiceError};

pub const SESSION_COOKIE: &str = "mch_session";

/// The authenticated caller of a request.
pub struct Ctx {
    pub actor: Actor,
    /// The session's CSRF token (cookie sessions only).
    pub csrf: Option<String>,
    /// The raw session token (cookie sessions only), for logout.
    pub session_token: Option<String>,
}

impl Ctx {
    /// Cookie-authenticated state changes must carry the session's CSRF token (form field or
    /// `X-CSRF-Token` header); bearer-token calls are not cookie-driven and need none.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ServiceError> {
        match &self.csrf {
            None => Ok(()),
            Some(expected) => {
                let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())));
                if ok {
                    Ok(())
                } else {
                    Err(ServiceError::Forbidden {
                        reason: "表单已过期或来源无效（CSRF 校验失败），请刷新页面后重试".into(),
                        target: None,
                    })
                }
            }
        }
    }
}

/// Resolve the caller, or None when not authenticated.
pub async fn resolve(req: &HttpRequest) -> Result<Option<Ctx>, ServiceError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(None);
    };
    let addr = state.client_addr(req);
    if let Some(auth) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
            return Ok(None);
        };
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        return Ok(service::token_actor(&state.db, token, addr).await?.map(|actor| Ctx {
            actor,
            csrf: None,
            session_token: None,
        }));
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value().to_string();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(service::session(&state.db, &token, addr)
        .await?
        .map(|(actor, csrf)| Ctx {
            actor,
            csrf: Some(csrf),
            session_token: Some(token),
        }))
}

pub(super) fn record_actor(ctx: &Ctx) {
    tracing::Span::current().record("actor", ctx.actor.name.as_str());
}

/// The login page, coming back to this page afterwards (a scanned QR code, a bookmarked
/// referral) when it is a plain GET of a local page other than the home page.
fn login_then(req: &HttpRequest) -> String {
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if req.method() != actix_web::http::Method::GET || target == "/" || safe_next(target).is_none() {
        return "/login".to_string();
    }
    let encoded: String = target
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("/login?next={encoded}")
}

/// A page to return to after login: only a path on this site (never `//host` or a scheme, which
/// would make the login page an open redirect).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

/// Extractor for pages: an unauthenticated visitor is sent to the login page.
pub struct PageCtx(pub Ctx);

impl FromRequest for PageCtx {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<PageCtx, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match resolve(&req).await {
                // Pages are for people: a hospital system (its bearer token, or an account with
                // that role) uses the JSON, FHIR and HL7 interfaces, which declare what it may do.
                Ok(Some(ctx)) if ctx.actor.kind == ActorKind::ApiToken || ctx.actor.role == Role::HospitalSystem => {
                    if let Some(state) = req.app_data::<web::Data<AppState>>() {
                        let page = AuditTarget {
                            entity_type: "page",
                            entity_id: Some(req.path().chars().take(200).collect()),
                            person_id: None,
                        };
                        crate::audit::service::record_denied(&state.db, &ctx.actor, "read", Some(page)).await;
                    }
                    Err(PageError::plain(&ServiceError::Forbidden {
                        reason: "网页仅供工作人员使用；接口账号请使用 JSON、FHIR 或 HL7 接口".into(),
                        target: None,
                    }))
                }
                Ok(Some(ctx)) => {
                    record_actor(&ctx);
                    Ok(PageCtx(ctx))
                }
                Ok(None) => Err(PageError::redirect(&login_then(&req))),
                Err(e) => Err(PageError::plain(&e)),
            }
        })
    }
}

/// Extractor for the JSON API: the caller the route table's gate let through
/// ([`super::routes::gate`]: 401 without credentials, 403 for a role the route does not serve).
/// A handler reached without the gate — a JSON route registered outside the table — refuses
/// everyone rather than serving an unchecked caller.
pub struct ApiCtx(pub Ctx);

impl FromRequest for ApiCtx {
    type Error = ApiError;
    type Future = std::future::Ready<Result<ApiCtx, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(req.extensions_mut().remove::<Ctx>().map(ApiCtx).ok_or_else(|| {
            tracing::error!(path = %req.path(), "JSON handler reached without the route table's gate");
            ApiError(ServiceError::Forbidden {
                reason: "该接口未在访问表中登记，拒绝访问".into(),
                target: None,
            })
        }))
    }
}

fn log_if_internal(e: &ServiceError) {
    if let ServiceError::Storage(cause) = e {
        tracing::error!(error = %cause, "storage failure");
    }
}

/// A JSON API error: `{"error": "…", "fields": [...]}` with a 4xx/5xx status.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        log_if_internal(&self.0);
        let fields = match &self.0 {
            ServiceError::Invalid(f) | ServiceError::Refused { fields: f, .. } => json!(f),
            _ => json!([]),
        };
        HttpResponse::build(self.status_code()).json(json!({"error": self.0.to_string(), "fields": fields}))
    }
}

/// A page error, already rendered (or a redirect).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    body: String,
    location: Option<String>,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)
    }
}

impl PageError {
    pub fn redirect(to: &str) -> PageError {
        PageError {
            status: StatusCode::SEE_OTHER,
            body: String::new(),
            location: Some(to.to_string()),
        }
    }

    /// Without templates (e.g. the state is missing): plain text.
    pub fn plain(e: &ServiceError) -> PageError {
        log_if_internal(e);
        PageError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: e.to_string(),
            location: None,
        }
    }

    pub fn rendered(status: StatusCode, body: String) -> PageError {
        PageError {
            status,
            body,
            location: None,
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if let Some(l) = &self.location {
            b.insert_header((header::LOCATION, l.as_str()));
        }
        b.content_type("text/html; charset=utf-8").body(self.body.clone())
    }
}
