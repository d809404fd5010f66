//! The JSON API (ARCHITECTURE.md "JSON endpoints"): session cookie + `X-CSRF-Token`, or a
//! bearer token. Errors are `{"error": "…", "fields": [...]}` with a 4xx status.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::context::{ApiCtx, ApiError, Ctx};
use crate::audit::service as audit_service;
use crate::chart::service as chart;
use crate::error::ServiceError;
use crate::identity::model::{CardRead, PersonInput};
use crate::identity::service as identity;
use crate::ids::is_id;
use crate::pregnancy::model::BookingInput;
use crate::pregnancy::service as pregnancy;
use crate::risk::model::Facts;
use crate::risk::service as risk;
use crate::visits::model::VisitInput;
use crate::visits::service as visits;

type ApiResult = Result<HttpResponse, ApiError>;

pub(super) fn csrf(req: &HttpRequest, ctx: &Ctx) -> Result<(), ApiError> {
    let presented = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    ctx.check_csrf(presented).map_err(ApiError)
}

pub(super) fn id(raw: String) -> Result<String, ApiError> {
    if is_id(&raw) {
        Ok(raw)
    } else {
        Err(ApiError(ServiceError::NotFound("没有找到该记录")))
    }
}

/// Malformed JSON bodies get the same `{"error"}` shape as every other refusal.
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let message = match &err {
        actix_web::error::JsonPayloadError::ContentType => "请求须为 application/json".to_string(),
        actix_web::error::JsonPayloadError::Deserialize(e) => format!("JSON 格式或字段有误：{e}"),
        actix_web::error::JsonPayloadError::Overflow { .. }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => "请求体过大".to_string(),
        other => format!("请求体无法读取：{other}"),
    };
    let status = match err {
        actix_web::error::JsonPayloadError::ContentType => actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        actix_web::error::JsonPayloadError::Overflow { .. }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
        }
        _ => actix_web::http::StatusCode::BAD_REQUEST,
    };
    actix_web::error::InternalError::from_response(
        message.clone(),
        HttpResponse::build(status).json(json!({"error": message, "fields": []})),
    )
    .into()
}

pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": "没有这个接口", "fields": []}))
}

pub async fn card_read(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    body: web::Json<CardRead>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let r = identity::record_card_read(&st.db, &ctx.actor, body.into_inner()).await?;
    Ok(if r.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(r))
}

#[derive(Deserialize)]
pub struct Q {
    q: Option<String>,
    /// At most this many (the suggestions as typed ask for a few); default and cap
    /// `identity::SEARCH_LIMIT`.
    limit: Option<i64>,
}

pub async fn search_persons(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, q: web::Query<Q>) -> ApiResult {
    let limit = q.limit.unwrap_or(identity::SEARCH_LIMIT);
    let found = identity::search(&st.db, &ctx.actor, q.q.clone().unwrap_or_default(), limit).await?;
    Ok(HttpResponse::Ok().json(json!({"persons": found})))
}

#[derive(Deserialize)]
pub struct RegisterBody {
    #[serde(flatten)]
    person: PersonInput,
    #[serde(default)]
    confirm_not_duplicate: bool,
}

pub async fn register_person(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    body: web::Json<RegisterBody>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let b = body.into_inner();
    let r = identity::register(&st.db, &ctx.actor, b.person, b.confirm_not_duplicate).await?;
    Ok(match &r {
        identity::Registration::Created { .. } => HttpResponse::Created().json(r),
        identity::Registration::Existing { .. } => HttpResponse::Ok().json(r),
        identity::Registration::NearDuplicates { .. } => HttpResponse::Conflict().json(r),
    })
}

pub async fn person(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, path: web::Path<String>) -> ApiResult {
    let record = pregnancy::person_record(&st.db, &ctx.actor, id(path.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(record))
}

pub async fn book_pregnancy(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<BookingInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let p = pregnancy::book(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(p))
}

pub async fn pregnancy(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, path: web::Path<String>) -> ApiResult {
    let record = chart::pregnancy(&st.db, &ctx.actor, id(path.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(record))
}

pub async fn record_visit(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<VisitInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let v = visits::record_visit(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(v))
}

/// Grade facts without storing anything (any authenticated caller; the facts carry no identity).
pub async fn risk_evaluate(req: HttpRequest, ApiCtx(ctx): ApiCtx, body: web::Json<Facts>) -> ApiResult {
    csrf(&req, &ctx)?;
    Ok(HttpResponse::Ok().json(risk::evaluate(crate::risk::model::active_rule_set(), &body)?))
}

/// The delivery and, optionally, each live-born baby's birth facts (`babies`, in birth order).
#[derive(Deserialize)]
pub struct DeliveryBody {
    #[serde(flatten)]
    delivery: crate::pregnancy::model::DeliveryInput,
    #[serde(default)]
    babies: Vec<crate::child::model::NewbornInput>,
}

/// The delivery as before, plus `children`: the babies' new records.
pub async fn record_delivery(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<DeliveryBody>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let body = body.into_inner();
    let birth =
        crate::child::service::record_birth(&st.db, &ctx.actor, id(path.into_inner())?, body.delivery, body.babies)
            .await?;
    let mut answer = serde_json::to_value(&birth.delivery).unwrap_or_else(|_| json!({}));
    answer["children"] = json!(birth.children);
    Ok(HttpResponse::Created().json(answer))
}

pub async fn worklist(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx) -> ApiResult {
    let w = visits::worklist(&st.db, &ctx.actor, 500).await?;
    let children = crate::child::service::worklist(&st.db, &ctx.actor, 500).await?;
    Ok(HttpResponse::Ok().json(
        json!({"items": w.items, "overdue_total": w.overdue_total, "due_total": w.due_total, "children": children}),
    ))
}

#[derive(Deserialize)]
pub struct Period {
    from: Option<chrono::NaiveDateTime>,
    to: Option<chrono::NaiveDateTime>,
}

/// "Who accessed this person between from and to" (auditor role).
pub async fn person_access_log(
    st: web::Data<AppState>,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    q: web::Query<Period>,
) -> ApiResult {
    let events = audit_service::person_access_log(&st.db, &ctx.actor, id(path.into_inner())?, q.from, q.to).await?;
    Ok(HttpResponse::Ok().json(json!({"events": events})))
}
