//! Risk pages and JSON: screening, grading, cases, reports, the district board, print documents.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{csrf, id};
use super::context::{ApiCtx, ApiError, Ctx, PageCtx, PageError};
use super::pages::{check_id, see_other};
use crate::error::{FieldError, ServiceError};
use crate::risk::model::{Facts, RemovedFactor, TestResult, active_rule_set};
use crate::risk::service::{self as risk, BoardFilter, CaseActionInput, GradeInput};

type PageResult = Result<HttpResponse, PageError>;

/// Look a field up in a submitted form (forms with repeated or dynamic names arrive as pairs).
pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

const NUMERIC: [&str; 11] = [
    "age_years",
    "height_cm",
    "weight_kg",
    "hb_g_l",
    "platelets_10e9_l",
    "systolic_mmhg",
    "diastolic_mmhg",
    "fetuses",
    "previous_caesareans",
    "previous_uterine_surgeries",
    "months_since_last_uterine_surgery",
];

/// The grading form as a GradeInput (facts typed or carried over, ticks, removals with reasons).
fn grade_input(form: &[(String, String)]) -> Result<GradeInput, ServiceError> {
    let mut errors = Vec::new();
    let mut f = Facts::default();
    for name in NUMERIC {
        let Some(raw) = field(form, name) else { continue };
        match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => {
                let slot = match name {
                    "age_years" => &mut f.age_years,
                    "height_cm" => &mut f.height_cm,
                    "weight_kg" => &mut f.weight_kg,
                    "hb_g_l" => &mut f.hb_g_l,
                    "platelets_10e9_l" => &mut f.platelets_10e9_l,
                    "systolic_mmhg" => &mut f.systolic_mmhg,
                    "diastolic_mmhg" => &mut f.diastolic_mmhg,
                    "fetuses" => &mut f.fetuses,
                    "previous_caesareans" => &mut f.previous_caesareans,
                    "previous_uterine_surgeries" => &mut f.previous_uterine_surgeries,
                    _ => &mut f.months_since_last_uterine_surgery,
                };
                *slot = Some(v);
            }
            _ => errors.push(FieldError::new(name, "number", "须为数字")),
        }
    }
    f.assisted_reproduction = field(form, "assisted_reproduction").map(|v| v == "1");
    for (name, slot) in [
        ("hiv", &mut f.hiv),
        ("syphilis", &mut f.syphilis),
        ("hbsag", &mut f.hbsag),
    ] {
        *slot = match field(form, name) {
            Some("positive") => Some(TestResult::Positive),
            Some("negative") => Some(TestResult::Negative),
            Some("unknown") | None => None,
            Some(_) => {
                errors.push(FieldError::new(name, "choice", "检测结果取值无效"));
                None
            }
        };
    }
    f.factors = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("tick_").filter(|_| v == "1").map(str::to_string))
        .collect();
    let removed = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("remove_")
                .filter(|c| !c.starts_with("reason_") && v == "1")
        })
        .map(|code| RemovedFactor {
            code: code.to_string(),
            reason: field(form, &format!("remove_reason_{code}")).unwrap_or("").to_string(),
        })
        .collect();
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(GradeInput {
        facts: f,
        removed,
        note: field(form, "note").unwrap_or("").to_string(),
        confirm_downgrade: field(form, "confirm_downgrade") == Some("1"),
    })
}

fn csrf_of(form: &[(String, String)]) -> Option<&str> {
    field(form, "csrf_token")
}

// ------------------------------------------------------------------ screening

pub async fn screening_form(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let form = risk::screening_form(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let title = format!("{} 妊娠风险筛查", form.person.name);
    st.page(
        StatusCode::OK,
        "pages/risk_screen",
        Some(&ctx),
        &title,
        json!({"form": form, "errors": []}),
    )
}

pub async fn screen(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(csrf_of(&form)).map_err(|e| st.error(Some(&ctx), e))?;
    let ticked: Vec<String> = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("item_").filter(|_| v == "1").map(str::to_string))
        .collect();
    risk::screen(&st.db, &ctx.actor, id.clone(), ticked)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    Ok(see_other(&format!("/pregnancies/{id}?screened=1")))
}

// ------------------------------------------------------------------ grading

async fn grading_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    errors: Vec<FieldError>,
    submitted: Option<&[(String, String)]>,
) -> PageResult {
    let mut form = risk::grading_form(&st.db, &ctx.actor, active_rule_set().to_string(), id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    if let Some(sub) = submitted
        && let Ok(input) = grade_input(sub)
    {
        form.facts = input.facts;
    }
    let ticked: Vec<String> = form.facts.factors.clone();
    // Each proposed factor with what the clinician chose for it, so a refused form keeps the removals.
    let removed: Vec<RemovedFactor> = submitted
        .and_then(|s| grade_input(s).ok())
        .map(|i| i.removed)
        .unwrap_or_default();
    let proposal_rows: Vec<Value> = form
        .proposal
        .factors
        .iter()
        .map(|f| {
            let r = removed.iter().find(|r| r.code == f.code);
            json!({"code": f.code, "colour": f.colour, "colour_label": f.colour.label_zh(), "reason": f.reason,
                   "removed": r.is_some(), "remove_reason": r.map(|r| r.reason.as_str()).unwrap_or("")})
        })
        .collect();
    let title = format!("{} 妊娠风险评估分级", form.person.name);
    st.page(
        status,
        "pages/risk_grade",
        Some(ctx),
        &title,
        json!({"form": form, "errors": errors, "ticked": ticked, "proposal_rows": proposal_rows,
               "confirm_downgrade": submitted.and_then(|s| field(s, "confirm_downgrade")) == Some("1"),
               "note": submitted.and_then(|s| field(s, "note")).unwrap_or("")}),
    )
}

pub async fn grading_form(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    grading_page(&st, &ctx, id, StatusCode::OK, Vec::new(), None).await
}

pub async fn grade(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(csrf_of(&form)).map_err(|e| st.error(Some(&ctx), e))?;
    let result = match grade_input(&form) {
        Ok(input) => risk::grade(&st.db, &ctx.actor, active_rule_set().to_string(), id.clone(), input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/pregnancies/{id}?graded=1"))),
        Err(ServiceError::Invalid(errors)) => {
            let shown = super::forget_refused(&form, &errors);
            grading_page(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, errors, Some(&shown)).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

// ------------------------------------------------------------------ cases and reports

pub async fn case_page(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<Notice>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    case_page_with(&st, &ctx, id, StatusCode::OK, Vec::new(), q.done.clone()).await
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

async fn case_page_with(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    errors: Vec<FieldError>,
    done: Option<String>,
) -> PageResult {
    let view = risk::case_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = format!("{} 高危孕产妇专案", view.person.name);
    st.page(
        status,
        "pages/risk_case",
        Some(ctx),
        &title,
        json!({"view": view, "errors": errors, "done": done.is_some(), "today": crate::ids::today_china()}),
    )
}

#[derive(Deserialize)]
pub struct CaseForm {
    csrf_token: Option<String>,
    #[serde(flatten)]
    input: CaseFields,
}

#[derive(Deserialize)]
pub struct CaseFields {
    action: String,
    date: Option<String>,
    note: Option<String>,
    close_reason: Option<String>,
    moved_to: Option<String>,
    manager_id: Option<String>,
    facility_id: Option<String>,
    township_code: Option<String>,
    version: Option<i32>,
}

impl From<CaseFields> for CaseActionInput {
    fn from(f: CaseFields) -> Self {
        CaseActionInput {
            action: f.action,
            date: f.date,
            note: f.note,
            close_reason: f.close_reason,
            moved_to: f.moved_to,
            manager_id: f.manager_id,
            facility_id: f.facility_id,
            township_code: f.township_code,
            version: f.version,
        }
    }
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
    let form = form.into_inner();
    match risk::case_action(&st.db, &ctx.actor, id.clone(), form.input.into()).await {
        Ok(_) => Ok(see_other(&format!("/risk/cases/{id}?done=1"))),
        Err(ServiceError::Invalid(errors)) => {
            case_page_with(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

#[derive(Deserialize)]
pub struct ReportForm {
    csrf_token: Option<String>,
    case_id: String,
}

pub async fn report_action(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
    form: web::Form<ReportForm>,
) -> PageResult {
    let (id, action) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    check_id(&st, &ctx, &form.case_id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let r = match action.as_str() {
        "send" => risk::send_report(&st.db, &ctx.actor, id).await,
        "acknowledge" => risk::acknowledge_report(&st.db, &ctx.actor, id).await,
        _ => Err(ServiceError::NotFound("页面不存在")),
    };
    r.map_err(|e| st.error(Some(&ctx), e))?;
    Ok(see_other(&format!("/risk/cases/{}?done=1", form.case_id)))
}

// ------------------------------------------------------------------ board

#[derive(Deserialize)]
pub struct BoardQuery {
    colour: Option<String>,
    ga_from: Option<String>,
    ga_to: Option<String>,
    overdue: Option<String>,
    no_delivery: Option<String>,
}

fn board_filter(q: &BoardQuery) -> BoardFilter {
    let num = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
    BoardFilter {
        colour: q
            .colour
            .clone()
            .filter(|c| ["green", "yellow", "orange", "red", "purple"].contains(&c.as_str())),
        ga_from: num(&q.ga_from),
        ga_to: num(&q.ga_to),
        overdue: q.overdue.as_deref() == Some("1"),
        no_delivery: q.no_delivery.as_deref() == Some("1"),
    }
}

pub async fn board(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<BoardQuery>) -> PageResult {
    let filter = board_filter(&q);
    let b = risk::board(&st.db, &ctx.actor, filter.clone())
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let count = |k: &str| b.counts.get(k).copied().unwrap_or(0);
    st.page(
        StatusCode::OK,
        "pages/risk_board",
        Some(&ctx),
        "高危孕产妇管理看板",
        json!({"rows": b.rows, "incoming": b.incoming, "counts": {"green": count("green"), "yellow": count("yellow"), "orange": count("orange"), "red": count("red"), "purple": count("purple")},
               "filter": {"colour": filter.colour.unwrap_or_default(), "ga_from": filter.ga_from, "ga_to": filter.ga_to, "overdue": filter.overdue, "no_delivery": filter.no_delivery}}),
    )
}

// ------------------------------------------------------------------ print documents

pub async fn print_case_card(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let view = risk::case_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "print/case_card",
        Some(&ctx),
        "高危孕产妇专案管理卡",
        json!({"view": view, "printed": crate::ids::today_china()}),
    )
}

pub async fn print_report(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (case_id, report_id) = path.into_inner();
    check_id(&st, &ctx, &case_id)?;
    let view = risk::case_view(&st.db, &ctx.actor, case_id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let Some(report) = view.reports.iter().find(|r| r.report.id == report_id).cloned() else {
        return Err(st.error(Some(&ctx), ServiceError::NotFound("没有找到该报告单")));
    };
    st.page(
        StatusCode::OK,
        "print/risk_report",
        Some(&ctx),
        "孕产妇妊娠风险评估分级报告单",
        json!({"view": view, "report": report}),
    )
}

// ------------------------------------------------------------------ JSON

#[derive(Deserialize)]
pub struct ScreenBody {
    #[serde(default)]
    items: Vec<String>,
}

pub async fn api_screen(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<ScreenBody>,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let s = risk::screen(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner().items).await?;
    Ok(HttpResponse::Created().json(s))
}

pub async fn api_grade(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let input: GradeInput = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError(ServiceError::invalid("body", "json", e.to_string())))?;
    let a = risk::grade(
        &st.db,
        &ctx.actor,
        active_rule_set().to_string(),
        id(path.into_inner())?,
        input,
    )
    .await?;
    Ok(HttpResponse::Created().json(a))
}

pub async fn api_case(
    st: web::Data<AppState>,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(risk::case_view(&st.db, &ctx.actor, id(path.into_inner())?).await?))
}

pub async fn api_case_action(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let input: CaseActionInput = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError(ServiceError::invalid("body", "json", e.to_string())))?;
    Ok(HttpResponse::Ok().json(risk::case_action(&st.db, &ctx.actor, id(path.into_inner())?, input).await?))
}

pub async fn api_report_action(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let (raw_id, action) = path.into_inner();
    let id = id(raw_id)?;
    let r = match action.as_str() {
        "send" => risk::send_report(&st.db, &ctx.actor, id).await?,
        "acknowledge" => risk::acknowledge_report(&st.db, &ctx.actor, id).await?,
        _ => return Err(ApiError(ServiceError::NotFound("没有这个接口"))),
    };
    Ok(HttpResponse::Ok().json(r))
}

pub async fn api_board(
    st: web::Data<AppState>,
    ApiCtx(ctx): ApiCtx,
    q: web::Query<BoardQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(risk::board(&st.db, &ctx.actor, board_filter(&q)).await?))
}
