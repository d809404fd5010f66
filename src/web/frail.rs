//! 体弱儿专案 pages and JSON: the district board, the case page with its actions, and opening a
//! case by hand from the child page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{csrf, id};
use super::context::{ApiCtx, ApiError, Ctx, PageCtx, PageError};
use super::pages::{check_id, see_other};
use crate::child::service::{self as child, FrailBoardFilter, FrailOpenInput};
use crate::error::{FieldError, ServiceError};
use crate::risk::service::CaseActionInput;

type PageResult = Result<HttpResponse, PageError>;

#[derive(Deserialize)]
pub struct BoardQuery {
    reason: Option<String>,
    overdue: Option<String>,
}

fn board_filter(q: &BoardQuery) -> FrailBoardFilter {
    let rules = crate::child::frail::rules();
    FrailBoardFilter {
        reason: q
            .reason
            .clone()
            .filter(|r| rules.conditions.iter().any(|c| &c.code == r)),
        overdue: q.overdue.as_deref() == Some("1"),
    }
}

pub async fn board(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<BoardQuery>) -> PageResult {
    let filter = board_filter(&q);
    let b = child::frail_board(&st.db, &ctx.actor, filter.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    // The district sees every 预防母婴传播 clock run out in its area (issue 11: late items go to the
    // worklist and the district board); the worklist lists them first.
    let w = child::worklist(&st.db, &ctx.actor, 500)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let pmtct_late: Vec<&child::ChildWorkItem> = w
        .items
        .iter()
        .filter(|i| i.overdue && i.item.kind == crate::child::schedule::ItemKind::Pmtct)
        .collect();
    st.page(
        StatusCode::OK,
        "pages/frail_board",
        Some(&ctx),
        "体弱儿专案管理看板",
        json!({"board": b, "pmtct_late_count": pmtct_late.len(), "pmtct_late": pmtct_late,
               "filter": {"reason": filter.reason.unwrap_or_default(), "overdue": filter.overdue}}),
    )
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub async fn case_page(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<Notice>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    case_page_with(&st, &ctx, id, StatusCode::OK, Vec::new(), q.done.is_some()).await
}

async fn case_page_with(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    errors: Vec<FieldError>,
    done: bool,
) -> PageResult {
    let view = child::frail_case_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = format!("{} 体弱儿专案", view.child.name);
    st.page(
        status,
        "pages/frail_case",
        Some(ctx),
        &title,
        json!({"view": view, "errors": errors, "done": done, "today": crate::ids::today_china()}),
    )
}

#[derive(Deserialize)]
pub struct CaseForm {
    csrf_token: Option<String>,
    action: String,
    date: Option<String>,
    note: Option<String>,
    close_reason: Option<String>,
    moved_to: Option<String>,
    manager_id: Option<String>,
    township_code: Option<String>,
    version: Option<i32>,
}

pub async fn case_action(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<CaseForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let f = form.into_inner();
    let input = CaseActionInput {
        action: f.action,
        date: f.date,
        note: f.note,
        close_reason: f.close_reason.filter(|r| !r.is_empty()),
        moved_to: f.moved_to,
        manager_id: f.manager_id,
        facility_id: None,
        township_code: f.township_code,
        version: f.version,
    };
    match child::frail_case_action(&st.db, &ctx.actor, id.clone(), input).await {
        Ok(_) => Ok(see_other(&format!("/child/frail/{id}?done=1"))),
        Err(ServiceError::Invalid(errors)) => {
            case_page_with(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, errors, false).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

/// The child page's "open a frail-child case" form: `reasons` (repeated) and `note`.
pub(super) fn open_input(form: &[(String, String)]) -> FrailOpenInput {
    FrailOpenInput {
        reasons: form
            .iter()
            .filter(|(k, _)| k == "reasons")
            .map(|(_, v)| v.clone())
            .collect(),
        note: form.iter().find(|(k, _)| k == "note").map(|(_, v)| v.clone()),
    }
}

/// The conditions a clinician may open a case for by hand, for the child page's form.
pub(super) fn manual_choices() -> Value {
    json!(
        crate::child::frail::rules()
            .enabled()
            .filter(|c| c.criterion != crate::child::frail::Criterion::Gestation
                && c.criterion != crate::child::frail::Criterion::BirthWeight)
            .map(|c| json!({"code": c.code, "label": c.label}))
            .collect::<Vec<_>>()
    )
}

// ------------------------------------------------------------------ JSON

type ApiResult = Result<HttpResponse, ApiError>;

pub async fn api_board(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, q: web::Query<BoardQuery>) -> ApiResult {
    Ok(HttpResponse::Ok().json(child::frail_board(&st.db, &ctx.actor, board_filter(&q)).await?))
}

pub async fn api_case(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, path: web::Path<String>) -> ApiResult {
    Ok(HttpResponse::Ok().json(child::frail_case_view(&st.db, &ctx.actor, id(path.into_inner())?).await?))
}

pub async fn api_case_action(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let input: CaseActionInput = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError(ServiceError::invalid("body", "json", e.to_string())))?;
    Ok(HttpResponse::Ok().json(child::frail_case_action(&st.db, &ctx.actor, id(path.into_inner())?, input).await?))
}

pub async fn api_open(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let input: FrailOpenInput = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError(ServiceError::invalid("body", "json", e.to_string())))?;
    let case = child::open_frail_case(&st.db, &ctx.actor, id(path.into_inner())?, input).await?;
    Ok(HttpResponse::Created().json(case))
}
