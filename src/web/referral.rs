//! Referral pages and JSON: open, act, the live board (server-sent events), print with QR code,
//! measures, and the facility directory.

use std::time::Duration as StdDuration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{csrf, id};
use super::context::{ApiCtx, ApiError, Ctx, PageCtx, PageError, SESSION_COOKIE};
use super::pages::{check_id, see_other};
use super::risk::field;
use crate::auth::model::Action;
use crate::error::{FieldError, ServiceError};
use crate::facility::model::{CAPABILITIES, DirectoryUpdate};
use crate::facility::service as facility;
use crate::referral::model::{Details, PatientKind, Urgency, Verb, Vitals};
use crate::referral::service::{self as referral, ActionInput, NewReferral};

type PageResult = Result<HttpResponse, PageError>;

fn all(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn number<T: std::str::FromStr>(form: &[(String, String)], name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    let raw = field(form, name)?;
    match raw.parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError::new(name, "number", "须为数字"));
            None
        }
    }
}

/// The details part of the referral forms.
fn details_of(form: &[(String, String)]) -> Result<Details, ServiceError> {
    let mut errors = Vec::new();
    let text = |name: &str| field(form, name).unwrap_or("").to_string();
    let d = Details {
        diagnoses: text("diagnoses"),
        risk_colour: field(form, "risk_colour").map(str::to_string),
        gestational_weeks: number(form, "gestational_weeks", &mut errors),
        gestational_days: number(form, "gestational_days", &mut errors),
        days_postpartum: number(form, "days_postpartum", &mut errors),
        newborn_age_days: number(form, "newborn_age_days", &mut errors),
        vitals: Vitals {
            systolic_mmhg: number(form, "systolic_mmhg", &mut errors),
            diastolic_mmhg: number(form, "diastolic_mmhg", &mut errors),
            pulse_per_min: number(form, "pulse_per_min", &mut errors),
            resp_per_min: number(form, "resp_per_min", &mut errors),
            spo2_percent: number(form, "spo2_percent", &mut errors),
            temperature_c: number(form, "temperature_c", &mut errors),
            consciousness: field(form, "consciousness").map(str::to_string),
        },
        treatment: text("treatment"),
        escort: text("escort"),
        contact_phone: text("contact_phone"),
        near_miss: all(form, "near_miss"),
        danger_signs: all(form, "danger_signs"),
        needs: all(form, "needs"),
        called_at: None,
    };
    if errors.is_empty() {
        Ok(d)
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

fn kind_param(raw: Option<&str>) -> PatientKind {
    raw.and_then(PatientKind::parse).unwrap_or(PatientKind::Maternal)
}

// ------------------------------------------------------------------ pages

pub async fn list(st: web::Data<AppState>, PageCtx(ctx): PageCtx) -> PageResult {
    let rows = referral::list(&st.db, &ctx.actor)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/referrals",
        Some(&ctx),
        "转诊",
        json!({"rows": rows}),
    )
}

#[derive(Deserialize)]
pub struct NewQuery {
    person: Option<String>,
    kind: Option<String>,
}

pub async fn new_form(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<NewQuery>) -> PageResult {
    let person = q.person.clone().unwrap_or_default();
    check_id(&st, &ctx, &person)?;
    let kind = kind_param(q.kind.as_deref());
    let form = referral::form(&st.db, &ctx.actor, person, kind)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    render_new(&st, &ctx, StatusCode::OK, &form, json!({}), Vec::new())
}

fn render_new(
    st: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    form: &referral::ReferralForm,
    typed: Value,
    errors: Vec<FieldError>,
) -> PageResult {
    let title = format!("{} 转诊开单", form.person.name);
    let chosen = typed
        .get("to_facility")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| form.suggestions.first().map(|s| s.id.clone()))
        .unwrap_or_default();
    st.page(
        status,
        "pages/referral_new",
        Some(ctx),
        &title,
        json!({"form": form, "typed": typed, "errors": errors, "chosen": chosen,
               "capabilities": CAPABILITIES, "urgencies": urgencies(), "urgency": typed.get("urgency").and_then(Value::as_str).unwrap_or("emergency"),
               "reason": typed.get("reason").and_then(Value::as_str).unwrap_or("")}),
    )
}

pub async fn create(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    ctx.check_csrf(field(&form, "csrf_token"))
        .map_err(|e| st.error(Some(&ctx), e))?;
    let person_id = field(&form, "person_id").unwrap_or("").to_string();
    check_id(&st, &ctx, &person_id)?;
    let kind = kind_param(field(&form, "patient_kind"));
    let result = match details_of(&form) {
        Ok(details) => {
            referral::open(
                &st.db,
                &ctx.actor,
                NewReferral {
                    person_id: person_id.clone(),
                    urgency: field(&form, "urgency").unwrap_or("").to_string(),
                    reason: field(&form, "reason").unwrap_or("").to_string(),
                    to_facility: field(&form, "to_facility").unwrap_or("").to_string(),
                    patient_kind: Some(kind.as_str().to_string()),
                    details: Some(details),
                    send: field(&form, "send") == Some("1"),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => Ok(see_other(&format!("/referrals/{}", v.record.lifecycle.id))),
        Err(ServiceError::Invalid(errors)) => {
            let f = referral::form(&st.db, &ctx.actor, person_id, kind)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            let typed: serde_json::Map<String, Value> = super::forget_refused(&form, &errors)
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            render_new(
                &st,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                &f,
                Value::Object(typed),
                errors,
            )
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

fn outcomes() -> Value {
    json!(
        crate::referral::model::Outcome::ALL
            .iter()
            .map(|o| json!({"value": o.as_str(), "label": o.label_zh()}))
            .collect::<Vec<_>>()
    )
}

fn render_view(
    st: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    view: &referral::ReferralView,
    errors: Vec<FieldError>,
    message: Option<String>,
) -> PageResult {
    let title = format!("转诊 · {}", view.person.name);
    st.page(
        status,
        "pages/referral",
        Some(ctx),
        &title,
        json!({"r": view, "errors": errors, "message": message, "outcomes": outcomes(),
               "catalogue": crate::referral::model::catalogue(), "capabilities": CAPABILITIES,
               "is_sender": matches!(view.my_side, Some(crate::referral::model::Party::Sender))}),
    )
}

pub async fn show(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let view = referral::view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    render_view(&st, &ctx, StatusCode::OK, &view, Vec::new(), None)
}

fn action_input(form: &[(String, String)]) -> ActionInput {
    let s = |n: &str| field(form, n).map(str::to_string);
    ActionInput {
        reason: s("reason"),
        to_facility: s("to_facility"),
        received_by: s("received_by"),
        note: s("note"),
        diagnosis: s("diagnosis"),
        treatment: s("treatment"),
        outcome: s("outcome"),
        signed_by: s("signed_by"),
        version: field(form, "version").and_then(|v| v.parse().ok()),
    }
}

/// A form action on the referral page or a one-click action on the board.
pub async fn action(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let (id, action) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(field(&form, "csrf_token"))
        .map_err(|e| st.error(Some(&ctx), e))?;
    let back = match field(&form, "back") {
        Some("board") => "/referrals/board".to_string(),
        _ => format!("/referrals/{id}"),
    };
    let result = if action == "details" {
        match details_of(&form) {
            Ok(d) => referral::update_details(&st.db, &ctx.actor, id.clone(), d).await,
            Err(e) => Err(e),
        }
    } else {
        let Some(verb) = Verb::parse(&action) else {
            return Err(st.error(Some(&ctx), ServiceError::NotFound("没有这个转诊操作")));
        };
        referral::act(&st.db, &ctx.actor, id.clone(), verb, action_input(&form)).await
    };
    match result {
        Ok(_) => Ok(see_other(&back)),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => {
            let view = referral::view(&st.db, &ctx.actor, id)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            let (status, errors, message) = match e {
                ServiceError::Invalid(list) => (StatusCode::UNPROCESSABLE_ENTITY, list, None),
                other => (StatusCode::CONFLICT, Vec::new(), Some(other.to_string())),
            };
            render_view(&st, &ctx, status, &view, errors, message)
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

pub async fn board(st: web::Data<AppState>, PageCtx(ctx): PageCtx) -> PageResult {
    let b = referral::board(&st.db, &ctx.actor)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/referral_board",
        Some(&ctx),
        "转诊调度看板",
        json!({"board": b}),
    )
}

/// Server-sent events for the live board: when the referral log moves, the board's rows are
/// rendered again (same partial as the page) and pushed; a comment every 15 s keeps proxies from
/// closing the stream. The session is checked without refreshing it, so an unattended board
/// does not keep a session open; when it ends the page is told to log in again.
pub async fn board_stream(st: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(Some(actor)) = crate::auth::service::session_peek(&st.db, &token).await else {
        return HttpResponse::Unauthorized().finish();
    };
    // Only those the board is for get a stream (an administrator's would be refused every time);
    // pages are for people, never a hospital system's account (see `PageCtx`).
    if actor.role == crate::auth::model::Role::HospitalSystem
        || !(actor.may(Action::Refer) || actor.may(Action::ReadRecord))
    {
        return HttpResponse::Forbidden().finish();
    }
    let addr = st.client_addr(&req);
    struct S {
        st: web::Data<AppState>,
        token: String,
        addr: Option<String>,
        /// The log position last looked at, and a digest of the rows last pushed.
        seen: Option<String>,
        pushed: u64,
        ticks: u32,
        done: bool,
    }
    let state = S {
        st,
        token,
        addr,
        seen: None,
        pushed: 0,
        ticks: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            if s.ticks > 0 {
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
            s.ticks += 1;
            // A cheap check each second; the board itself only when the log moved, and every
            // 15 s anyway (a clock passing its limit turns a row red without any event).
            let version = referral::board_version(&s.st.db).await.ok().flatten();
            let moved = version != s.seen;
            if !moved && s.ticks % 15 != 0 {
                continue;
            }
            s.seen = version;
            let actor = match crate::auth::service::session_peek(&s.st.db, &s.token).await {
                Ok(Some(a)) => a.with_client_addr(s.addr.clone()),
                _ => {
                    s.done = true;
                    return Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(sse_event("expired", "", "1"))),
                        s,
                    ));
                }
            };
            let board = match referral::board_snapshot(&s.st.db, &actor).await {
                Ok(b) => b,
                Err(ServiceError::Forbidden { .. }) => {
                    s.done = true;
                    return Some((Ok(web::Bytes::from(sse_event("expired", "", "1"))), s));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live board: could not build the board; retrying");
                    continue;
                }
            };
            let html =
                s.st.templates
                    .render("partials/referral_board_rows", &json!({"board": board, "csrf": ""}))
                    .unwrap_or_default();
            let digest = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                html.hash(&mut h);
                h.finish()
            };
            if digest == s.pushed {
                if s.ticks % 15 == 0 {
                    return Some((Ok(web::Bytes::from(": ping\n\n")), s));
                }
                continue;
            }
            // What is pushed is a read of patient data: audited before it leaves.
            if let Err(e) = referral::audit_board(&s.st.db, &actor, &board).await {
                tracing::warn!(error = %e, "live board: could not audit; not pushed");
                continue;
            }
            s.pushed = digest;
            let msg = sse_event("board", board.version.as_deref().unwrap_or(""), &html);
            return Some((Ok(web::Bytes::from(msg)), s));
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// One server-sent event. Every line break the text may hold (`\n`, `\r`, `\r\n`) starts a new
/// `data:` line, so no content can end the event early or forge a field (`event:`, `retry:`).
fn sse_event(event: &str, id: &str, data: &str) -> String {
    let mut msg = String::with_capacity(data.len() + 64);
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    msg.push_str(&format!("id: {}\nevent: {}\n", clean(id), clean(event)));
    for line in data.split(['\r', '\n']) {
        msg.push_str("data: ");
        msg.push_str(line);
        msg.push('\n');
    }
    msg.push('\n');
    msg
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_text_can_break_out_of_an_event() {
        let e = super::sse_event("board", "1", "<td>x\r\revent: expired\rdata: 1</td>\nnext");
        let lines: Vec<&str> = e.split('\n').collect();
        assert!(
            lines
                .iter()
                .all(|l| l.is_empty() || l.starts_with("data: ") || l.starts_with("id: ") || l.starts_with("event: "))
        );
        assert_eq!(lines.iter().filter(|l| l.starts_with("event: ")).count(), 1);
        assert!(!e.contains('\r'));
        assert!(e.ends_with("\n\n"));
    }
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

pub async fn print(
    st: web::Data<AppState>,
    req: HttpRequest,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (id, which) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let (template, title) = match which.as_str() {
        "print" => ("print/referral", "危重孕产妇/新生儿转诊单"),
        "receipt" => ("print/referral_receipt", "转诊反馈单（回执）"),
        _ => return Err(st.error(Some(&ctx), ServiceError::NotFound("页面不存在"))),
    };
    let p = referral::printout(&st.db, &ctx.actor, id, base_url(&req))
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(StatusCode::OK, template, Some(&ctx), title, json!({"p": p}))
}

pub async fn scan(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let token = path.into_inner();
    if token.len() > 200 {
        return Err(st.error(Some(&ctx), ServiceError::NotFound("二维码无效或已过期")));
    }
    let id = referral::scan(&st.db, &ctx.actor, token)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    Ok(see_other(&format!("/referrals/{id}")))
}

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

fn month_of(q: &MonthQuery) -> Result<chrono::NaiveDate, ServiceError> {
    match q.month.as_deref().filter(|m| !m.is_empty()) {
        None => Ok(crate::ids::today_china()),
        Some(m) => chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
            .map_err(|_| ServiceError::invalid("month", "month", "月份格式须为 YYYY-MM")),
    }
}

pub async fn measures(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<MonthQuery>) -> PageResult {
    let month = month_of(&q).map_err(|e| st.error(Some(&ctx), e))?;
    let m = referral::measures(&st.db, &ctx.actor, month)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/referral_measures",
        Some(&ctx),
        "转诊质量指标",
        json!({"rows": m, "month": month.format("%Y-%m").to_string()}),
    )
}

// ------------------------------------------------------------------ facility directory

pub async fn directory(st: web::Data<AppState>, PageCtx(ctx): PageCtx) -> PageResult {
    render_directory(&st, &ctx, StatusCode::OK, Vec::new(), None).await
}

async fn render_directory(
    st: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    errors: Vec<FieldError>,
    saved: Option<String>,
) -> PageResult {
    let dir = facility::directory(&st.db).await.map_err(|e| st.error(Some(ctx), e))?;
    let name_of = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| dir.iter().find(|e| e.facility.id == id))
            .map(|e| e.facility.name.clone())
    };
    let rows: Vec<Value> = dir
        .iter()
        .map(|e| {
            json!({"e": e, "level_label": e.facility.level.label_zh(),
                   "maternal_centre": name_of(&e.maternal_centre_id), "neonatal_centre": name_of(&e.neonatal_centre_id)})
        })
        .collect();
    let maternal: Vec<&crate::facility::model::DirectoryEntry> = dir
        .iter()
        .filter(|e| e.facility.capabilities.iter().any(|c| c == "maternal_critical_care"))
        .collect();
    let neonatal: Vec<&crate::facility::model::DirectoryEntry> = dir
        .iter()
        .filter(|e| e.facility.capabilities.iter().any(|c| c == "neonatal_critical_care"))
        .collect();
    st.page(
        status,
        "pages/facilities",
        Some(ctx),
        "机构目录与救治网络",
        json!({"rows": rows, "maternal": maternal, "neonatal": neonatal, "capabilities": CAPABILITIES,
               "can_edit": ctx.actor.may(Action::Administer), "errors": errors, "saved": saved}),
    )
}

pub async fn update_facility(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(field(&form, "csrf_token"))
        .map_err(|e| st.error(Some(&ctx), e))?;
    let update = DirectoryUpdate {
        capabilities: all(&form, "capabilities"),
        maternal_centre_id: field(&form, "maternal_centre_id").map(str::to_string),
        neonatal_centre_id: field(&form, "neonatal_centre_id").map(str::to_string),
        duty_phone: field(&form, "duty_phone").map(str::to_string),
    };
    match facility::update_directory(&st.db, &ctx.actor, id, update).await {
        Ok(e) => render_directory(&st, &ctx, StatusCode::OK, Vec::new(), Some(e.facility.name)).await,
        Err(ServiceError::Invalid(errors)) => {
            render_directory(&st, &ctx, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

// ------------------------------------------------------------------ JSON

pub async fn api_open(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    body: web::Json<NewReferral>,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let v = referral::open(&st.db, &ctx.actor, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/referrals/{}", v.record.lifecycle.id)))
        .json(v))
}

pub async fn api_list(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(referral::list(&st.db, &ctx.actor).await?))
}

pub async fn api_board(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(referral::board(&st.db, &ctx.actor).await?))
}

pub async fn api_show(
    st: web::Data<AppState>,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id(path.into_inner())?;
    Ok(HttpResponse::Ok().json(referral::view(&st.db, &ctx.actor, id).await?))
}

/// `POST /api/referrals/{id}/{action}`; an empty body is fine for actions that need nothing.
pub async fn api_action(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    csrf(&req, &ctx)?;
    let (raw_id, action) = path.into_inner();
    let id = id(raw_id)?;
    let parse_err = |e: serde_json::Error| {
        ApiError(ServiceError::invalid(
            "body",
            "json",
            format!("JSON 格式或字段有误：{e}"),
        ))
    };
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    let v = if action == "details" {
        let d: Details = serde_json::from_slice(body).map_err(parse_err)?;
        referral::update_details(&st.db, &ctx.actor, id, d).await?
    } else {
        let verb = Verb::parse(&action).ok_or(ApiError(ServiceError::NotFound("没有这个转诊操作")))?;
        let input: ActionInput = serde_json::from_slice(body).map_err(parse_err)?;
        referral::act(&st.db, &ctx.actor, id, verb, input).await?
    };
    Ok(HttpResponse::Ok().json(v))
}

pub async fn api_measures(
    st: web::Data<AppState>,
    ApiCtx(ctx): ApiCtx,
    q: web::Query<MonthQuery>,
) -> Result<HttpResponse, ApiError> {
    let month = month_of(&q)?;
    Ok(HttpResponse::Ok().json(referral::measures(&st.db, &ctx.actor, month).await?))
}

pub async fn api_directory(st: web::Data<AppState>, ApiCtx(_ctx): ApiCtx) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(facility::directory(&st.db).await?))
}

/// The urgency choices of the forms.
fn urgencies() -> Value {
    json!(
        Urgency::ALL
            .iter()
            .map(|u| json!({"value": u.as_str(), "label": u.label_zh()}))
            .collect::<Vec<_>>()
    )
}
