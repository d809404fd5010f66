//! The doctors' pages (zh-CN). Each handler: who is asking → one service call → a page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::context::{Ctx, PageCtx, PageError, SESSION_COOKIE};
use super::templates::Static;
use crate::audit::service as audit_service;
use crate::auth::model::Action;
use crate::auth::service::{self as auth_service, LoginError};
use crate::chart::service as chart;
use crate::child::model::NewbornInput;
use crate::error::{FieldError, ServiceError};
use crate::identity::model::PersonInput;
use crate::identity::service::{self as identity, Registration};
use crate::ids::is_id;
use crate::pregnancy::model::{BookingInput, DELIVERY_MODES, DeliveryInput, PregnancyStatus};
use crate::pregnancy::service as pregnancy;
use crate::visits::model::{OEDEMA, PRESENTATIONS, URINE_PROTEIN, VisitInput, VisitKind, label_of};
use crate::visits::service as visits;

type PageResult = Result<HttpResponse, PageError>;

impl AppState {
    fn me(ctx: &Ctx) -> Value {
        let a = &ctx.actor;
        json!({
            "name": a.name, "display_name": a.display_name, "role": a.role.as_str(), "role_label": a.role.label_zh(),
            "facility": a.facility.name, "facility_level": a.facility.level.label_zh(),
            "can_read": a.may(Action::ReadRecord), "can_register": a.may(Action::RegisterPerson),
            "can_book": a.may(Action::BookPregnancy), "can_visit": a.may(Action::RecordVisit), "can_audit": a.may(Action::ReadAudit),
            "can_screen": a.may(Action::Screen), "can_grade": a.may(Action::Grade),
            "can_refer": a.may(Action::Refer), "can_admin": a.may(Action::Administer),
            "can_hl7": a.may(Action::ReadMessageLog),
        })
    }

    /// Render a page with the common context (who I am, CSRF token) merged in.
    pub(super) fn page(
        &self,
        status: StatusCode,
        template: &str,
        ctx: Option<&Ctx>,
        title: &str,
        mut data: Value,
    ) -> PageResult {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("title".into(), json!(title));
            obj.insert("me".into(), ctx.map(Self::me).unwrap_or(Value::Null));
            obj.insert(
                "csrf".into(),
                json!(ctx.and_then(|c| c.csrf.clone()).unwrap_or_default()),
            );
        }
        match self.templates.render(template, &data) {
            Ok(html) => Ok(HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(html)),
            Err(e) => {
                tracing::error!(template, error = ?e, "template rendering failed");
                Err(PageError::rendered(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "页面渲染失败".into(),
                ))
            }
        }
    }

    /// The error page for a refused or failed service call.
    pub(super) fn error(&self, ctx: Option<&Ctx>, e: ServiceError) -> PageError {
        if matches!(e, ServiceError::Unauthenticated) {
            return PageError::redirect("/login");
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let ServiceError::Storage(cause) = &e {
            tracing::error!(error = %cause, "storage failure");
        }
        let title = match status.as_u16() {
            403 => "无权访问",
            404 => "未找到",
            409 => "操作冲突",
            _ => "出错了",
        };
        match self.page(
            status,
            "pages/error",
            ctx,
            title,
            json!({"message": e.to_string(), "status": status.as_u16()}),
        ) {
            Ok(resp) => PageError::rendered(status, body_of(resp)),
            Err(pe) => pe,
        }
    }
}

fn body_of(resp: HttpResponse) -> String {
    use actix_web::body::MessageBody;
    resp.into_body()
        .try_into_bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

/// What the user typed, for showing a refused form again: every key of `defaults` present (strict
/// templates need them), typed values kept.
fn typed_values(typed: &impl Serialize, defaults: Value) -> Value {
    let mut form = serde_json::to_value(typed).unwrap_or(Value::Null);
    let mut out = defaults;
    if let (Some(obj), Some(typed)) = (out.as_object_mut(), form.as_object_mut()) {
        for (k, v) in obj.iter_mut() {
            if let Some(t) = typed.remove(k).filter(|t| !t.is_null()) {
                *v = t;
            }
        }
    }
    out
}

fn field_errors(e: &ServiceError) -> Option<Vec<FieldError>> {
    match e {
        ServiceError::Invalid(list) | ServiceError::Refused { fields: list, .. } => Some(list.clone()),
        _ => None,
    }
}

pub(super) fn check_id(st: &AppState, ctx: &Ctx, id: &str) -> Result<(), PageError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(st.error(Some(ctx), ServiceError::NotFound("没有找到该记录")))
    }
}

pub async fn healthz(st: web::Data<AppState>) -> HttpResponse {
    match st.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .json(json!({"status": "ok", "database": format!("{:?}", st.db.backend()).to_lowercase()})),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}

pub async fn static_file(path: web::Path<String>) -> HttpResponse {
    let name = path.into_inner();
    match Static::get(&name) {
        Some(f) => {
            let ct = if name.ends_with(".css") {
                "text/css; charset=utf-8"
            } else if name.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            HttpResponse::Ok()
                .content_type(ct)
                .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                .body(f.data.into_owned())
        }
        None => HttpResponse::NotFound().finish(),
    }
}

pub async fn not_found(st: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let ctx = super::context::resolve(&req).await.ok().flatten();
    Err(st.error(ctx.as_ref(), ServiceError::NotFound("页面不存在")))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
    next: Option<String>,
}

pub async fn login_form(st: web::Data<AppState>, q: web::Query<LoginQuery>) -> PageResult {
    st.page(
        StatusCode::OK,
        "pages/login",
        None,
        "登录",
        json!({"username": "", "error": Value::Null, "expired": q.expired.is_some(),
               "next": q.next.as_deref().and_then(super::context::safe_next).unwrap_or("")}),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(st: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> PageResult {
    let addr = st.client_addr(&req);
    let form = form.into_inner();
    let (status, wait, message) =
        match auth_service::login(&st.db, st.login_policy, &form.username, &form.password, addr).await {
            Ok(login) => {
                let cookie = Cookie::build(SESSION_COOKIE, login.token)
                    .path("/")
                    .http_only(true)
                    .secure(true)
                    .same_site(SameSite::Strict)
                    .finish();
                let to = form.next.as_deref().and_then(super::context::safe_next).unwrap_or("/");
                return Ok(HttpResponse::SeeOther()
                    .cookie(cookie)
                    .insert_header((header::LOCATION, to))
                    .finish());
            }
            Err(e @ LoginError::Refused { retry_after_secs }) => (
                StatusCode::UNAUTHORIZED,
                retry_after_secs,
                match retry_after_secs {
                    Some(w) => format!("{e}；请 {w} 秒后再试"),
                    None => e.to_string(),
                },
            ),
            Err(e @ LoginError::Throttled { retry_after_secs }) => {
                (StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs), e.to_string())
            }
            Err(LoginError::Failed(e)) => return Err(st.error(None, e)),
        };
    let mut resp = st.page(
        status,
        "pages/login",
        None,
        "登录",
        json!({"username": form.username, "error": message, "expired": false,
               "next": form.next.as_deref().and_then(super::context::safe_next).unwrap_or("")}),
    )?;
    // The wait before the next attempt from here is checked (RFC 9110 §10.2.3).
    if let Some(w) = wait {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(w));
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub(super) csrf_token: Option<String>,
}

pub async fn logout(st: web::Data<AppState>, PageCtx(ctx): PageCtx, form: web::Form<CsrfForm>) -> PageResult {
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    if let Some(token) = &ctx.session_token {
        auth_service::logout(&st.db, token, &ctx.actor)
            .await
            .map_err(|e| st.error(Some(&ctx), e))?;
    }
    let gone = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::ZERO)
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "/login"))
        .finish())
}

/// The home page's paging: `proposals` is the page (from 1) of the grade confirmations.
#[derive(Deserialize)]
pub struct HomeQuery {
    proposals: Option<i64>,
}

/// The shown part of a list the service bounded, with how many there are in all.
fn counted<T: Serialize>(shown: &[T], total: i64) -> Value {
    json!({"rows": shown, "total": total, "more": total > shown.len() as i64})
}

/// At most `n` of a list, with how many there are (every list on the home page is bounded and
/// says so).
fn bounded<T: Serialize>(items: &[T], n: usize) -> Value {
    json!({"rows": items.iter().take(n).collect::<Vec<_>>(), "total": items.len(), "more": items.len() > n})
}

pub async fn home(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<HomeQuery>) -> PageResult {
    if !ctx.actor.may(Action::ReadRecord) {
        let target = if ctx.actor.may(Action::ReadAudit) {
            "/audit"
        } else {
            "/persons"
        };
        if target == "/audit" {
            return Ok(see_other(target));
        }
        return st.page(
            StatusCode::OK,
            "pages/home",
            Some(&ctx),
            "工作台",
            json!({"worklist": [], "worklist_capped": false, "worklist_total": 0, "card_reads": [], "scope": scope_label(&ctx), "overdue": 0, "due": 0,
                   "children": {"items": [], "overdue_total": 0, "due_total": 0, "pmtct_late": 0},
                   "proposals": {"rows": [], "total": 0, "page": 1, "pages": 1, "prev": null, "next": null},
                   "screenings": bounded::<Value>(&[], 0), "cases": bounded::<Value>(&[], 0),
                   "frail_tasks": bounded::<Value>(&[], 0), "couple_tasks": bounded::<Value>(&[], 0)}),
        );
    }
    // The lists are independent reads, each on its own pooled connection: read side by side, the
    // page waits for the longest one, not for their sum (issue 16: < 100 ms with 10,000 women).
    let proposals_page = q.proposals.unwrap_or(1).clamp(1, 10_000);
    let (worklist, card_reads, risk_tasks, children, frail_tasks, couples) = tokio::join!(
        visits::worklist(&st.db, &ctx.actor, 100),
        identity::recent_card_reads(&st.db, &ctx.actor),
        crate::risk::service::tasks(&st.db, &ctx.actor, proposals_page - 1, 10),
        crate::child::service::worklist(&st.db, &ctx.actor, 100),
        crate::child::service::frail_tasks(&st.db, &ctx.actor),
        // Before pregnancy: overdue screening follow-ups and approvals past their deadline (issue 12).
        crate::couple::service::overdue_tasks(&st.db, &ctx.actor, 10),
    );
    let fail = |e| st.error(Some(&ctx), e);
    let (worklist, card_reads, risk_tasks) = (
        worklist.map_err(fail)?,
        card_reads.map_err(fail)?,
        risk_tasks.map_err(fail)?,
    );
    let (children, frail_tasks, couples) = (
        children.map_err(fail)?,
        frail_tasks.map_err(fail)?,
        couples.map_err(fail)?,
    );
    let couple_total = couples.followups_total + couples.registrations_total;
    let couple_tasks: Vec<Value> = couples
        .followups
        .iter()
        .map(|f| {
            json!({"link": format!("/couples/{}", f.followup.followup.couple_id), "name": f.wife_name,
                   "what": format!("{}逾期（应于 {}）", f.followup.kind_label, f.followup.followup.due)})
        })
        .chain(couples.registrations.iter().map(|r| {
            json!({"link": format!("/couples/{}", r.registration.registration.couple_id), "name": r.wife_name,
                   "what": "再生育审批已超过办理时限"})
        }))
        .collect();
    let (overdue, due) = (worklist.overdue_total, worklist.due_total);
    let worklist = worklist.items;
    let per = crate::risk::service::PROPOSALS_PER_PAGE;
    let pages = ((risk_tasks.proposals_total + per - 1) / per).max(1);
    let proposals = json!({
        "rows": risk_tasks.proposals, "total": risk_tasks.proposals_total,
        "page": proposals_page, "pages": pages,
        "prev": (proposals_page > 1).then(|| proposals_page - 1),
        "next": (proposals_page < pages).then(|| proposals_page + 1),
    });
    let cards: Vec<Value> = card_reads
        .iter()
        .map(|(at, p)| json!({"at": at, "person": p}))
        .collect();
    st.page(
        StatusCode::OK,
        "pages/home",
        Some(&ctx),
        "工作台",
        json!({"worklist_capped": worklist.len() >= 100, "worklist": worklist, "worklist_total": overdue + due, "card_reads": cards, "scope": scope_label(&ctx),
               "overdue": overdue, "due": due, "children": children, "proposals": proposals,
               "screenings": counted(&risk_tasks.screenings, risk_tasks.screenings_total),
               "cases": counted(&risk_tasks.cases, risk_tasks.cases_total),
               "frail_tasks": bounded(&frail_tasks, 10), "couple_tasks": counted(&couple_tasks, couple_total)}),
    )
}

fn scope_label(ctx: &Ctx) -> String {
    match &ctx.actor.scope {
        crate::auth::model::Scope::Township(t) => format!("乡镇 {t}"),
        crate::auth::model::Scope::Area(p) => format!("区划 {p}"),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

fn empty_person_form() -> Value {
    json!({"name": "", "id_number": "", "sex": "", "birth_date": "", "nation_code": "", "phone": "", "address": ""})
}

pub async fn persons(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<SearchQuery>) -> PageResult {
    let query = q.q.clone().unwrap_or_default();
    let (results, errors) = match identity::search(&st.db, &ctx.actor, query.clone(), identity::SEARCH_LIMIT).await {
        Ok(r) => (r, Vec::new()),
        Err(e) => match field_errors(&e) {
            Some(f) => (Vec::new(), f),
            None => return Err(st.error(Some(&ctx), e)),
        },
    };
    st.page(
        StatusCode::OK,
        "pages/persons",
        Some(&ctx),
        "服务对象",
        json!({"q": query, "searched": !query.trim().is_empty(), "results": results, "search_errors": errors,
               "form": empty_person_form(), "errors": [], "candidates": [], "confirm": false}),
    )
}

#[derive(Deserialize)]
pub struct PersonForm {
    csrf_token: Option<String>,
    #[serde(flatten)]
    person: PersonInput,
    confirm_not_duplicate: Option<String>,
}

pub async fn register_person(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    form: web::Form<PersonForm>,
) -> PageResult {
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let f = form.into_inner();
    let confirmed = f.confirm_not_duplicate.as_deref() == Some("1");
    let typed = typed_values(&f.person, empty_person_form());
    let rerender = |status: StatusCode, errors: Vec<FieldError>, candidates: Value| {
        let confirm = candidates.as_array().is_some_and(|a| !a.is_empty());
        st.page(
            status,
            "pages/persons",
            Some(&ctx),
            "服务对象",
            json!({"q": "", "searched": false, "results": [], "search_errors": [], "form": typed,
                   "errors": errors, "candidates": candidates, "confirm": confirm}),
        )
    };
    match identity::register(&st.db, &ctx.actor, f.person.clone(), confirmed).await {
        Ok(Registration::Created { person_id }) => Ok(see_other(&format!("/persons/{person_id}?created=1"))),
        Ok(Registration::Existing { person_id }) => Ok(see_other(&format!("/persons/{person_id}?existing=1"))),
        Ok(Registration::NearDuplicates { candidates }) => rerender(StatusCode::OK, Vec::new(), json!(candidates)),
        Err(ServiceError::Invalid(errors)) => rerender(StatusCode::UNPROCESSABLE_ENTITY, errors, json!([])),
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

#[derive(Deserialize)]
pub struct PersonQuery {
    created: Option<String>,
    existing: Option<String>,
}

pub(super) fn empty_booking() -> Value {
    json!({"booking_date": "", "lmp": "", "ultrasound_date": "", "ultrasound_ga": "", "gravidity": "", "parity": ""})
}

/// The person page; `couple_error`: why her couple form was refused (`POST /couples`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn person_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    notice: Value,
    booking: Value,
    errors: Vec<FieldError>,
    couple_error: Option<String>,
) -> PageResult {
    let record = pregnancy::person_record(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let couples = crate::couple::service::couples_of_person(&st.db, &ctx.actor, record.view.person.id.clone())
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = record.view.person.name.clone();
    st.page(
        status,
        "pages/person",
        Some(ctx),
        &title,
        json!({"record": record, "notice": notice, "booking": booking, "errors": errors, "couples": couples,
               "couple_error": couple_error, "today": crate::ids::today_china()}),
    )
}

pub async fn person(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<PersonQuery>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let notice = if q.created.is_some() {
        json!("已建档")
    } else if q.existing.is_some() {
        json!("该身份证号已建档，已为您打开原档案")
    } else {
        Value::Null
    };
    person_page(&st, &ctx, id, StatusCode::OK, notice, empty_booking(), Vec::new(), None).await
}

#[derive(Deserialize)]
pub struct BookingForm {
    csrf_token: Option<String>,
    #[serde(flatten)]
    input: BookingInput,
}

pub async fn book_pregnancy(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<BookingForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let input = form.into_inner().input;
    match pregnancy::book(&st.db, &ctx.actor, id.clone(), input.clone()).await {
        Ok(p) => Ok(see_other(&format!("/pregnancies/{}?booked=1", p.id))),
        Err(ServiceError::Invalid(errors)) => {
            let booking = typed_values(&input, empty_booking());
            person_page(
                &st,
                &ctx,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Value::Null,
                booking,
                errors,
                None,
            )
            .await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

#[derive(Deserialize)]
pub struct PregnancyQuery {
    booked: Option<String>,
    saved: Option<String>,
    graded: Option<String>,
    screened: Option<String>,
    delivered: Option<String>,
}

pub async fn pregnancy(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<PregnancyQuery>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let notice = if q.booked.is_some() {
        json!("建册成功")
    } else if q.saved.is_some() {
        json!("随访记录已保存")
    } else if q.graded.is_some() {
        json!("妊娠风险评估分级已确认")
    } else if q.screened.is_some() {
        json!("妊娠风险筛查结果已保存")
    } else if q.delivered.is_some() {
        json!("分娩已登记")
    } else {
        Value::Null
    };
    pregnancy_page(&st, &ctx, id, StatusCode::OK, notice, empty_delivery_form(), Vec::new()).await
}

/// The babies' fieldsets of the delivery form: what was typed in each, and each field's error.
fn baby_slots(form: &Value, errors: &[FieldError]) -> Value {
    let fields = [
        "sex",
        "birth_time",
        "weight_g",
        "length_cm",
        "apgar_1",
        "apgar_5",
        "malformations",
        "name",
    ];
    let slots: Vec<Value> = (1..=FORM_BABIES)
        .map(|n| {
            let mut slot = json!({"n": n, "twin": n > 1});
            let mut e = json!({});
            for f in fields {
                let key = format!("baby{n}_{f}");
                slot[f] = form.get(&key).cloned().unwrap_or(json!(""));
                e[f] = json!(
                    errors
                        .iter()
                        .find(|x| x.field == key)
                        .map_or("", |err| err.message.as_str())
                );
            }
            slot["conditions"] = form.get(format!("baby{n}_conditions")).cloned().unwrap_or(json!([]));
            slot["e"] = e;
            slot
        })
        .collect();
    json!(slots)
}

fn empty_delivery_form() -> Value {
    json!({"delivery_date": "", "discharge_date": "", "facility_name": "", "mode": "", "live_births": "1", "stillbirths": "0", "complications": ""})
}

async fn pregnancy_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    notice: Value,
    delivery_form: Value,
    delivery_errors: Vec<FieldError>,
) -> PageResult {
    let record = chart::pregnancy(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let visit_labels: Vec<Value> = record
        .visits
        .iter()
        .map(|r| {
            json!({
                "presentation": r.visit.fetal_presentation.as_deref().map(|c| label_of(&PRESENTATIONS, c)),
                "oedema": r.visit.oedema.as_deref().map(|c| label_of(&OEDEMA, c)),
                "urine_protein": r.visit.urine_protein.as_deref().map(|c| label_of(&URINE_PROTEIN, c)),
                "kind": r.visit.kind.label_zh(),
            })
        })
        .collect();
    let title = format!("{} 的孕产期档案", record.person.person.name);
    let active = record.pregnancy.status == PregnancyStatus::Active;
    let delivered = record.pregnancy.status == PregnancyStatus::Delivered;
    let mode_label = record
        .delivery
        .as_ref()
        .map(|d| label_of(&DELIVERY_MODES, &d.mode))
        .unwrap_or("");
    let trend_charts = trend_charts(&record.trends);
    st.page(
        status,
        "pages/pregnancy",
        Some(ctx),
        &title,
        json!({"record": record, "labels": visit_labels, "trend_charts": trend_charts, "notice": notice, "dating_label": record.pregnancy.dating.method.label_zh(),
               "active": active, "delivered": delivered, "mode_label": mode_label, "delivery_form": delivery_form,
               "baby_slots": baby_slots(&delivery_form, &delivery_errors),
               "sexes": choices(crate::child::model::SEXES), "newborn_conditions": choices(crate::child::model::NEWBORN_CONDITIONS),
               "delivery_errors": delivery_errors, "delivery_modes": choices(&DELIVERY_MODES)}),
    )
}

/// The pregnancy page's trend charts (issue 16): weight gain against the band for her BMI class,
/// BP with the 140/90 lines, Hb with the 110/100/70 g/L lines (RULES.md §1.3 anaemia bands),
/// fundal height, and the five-colour timeline — each only when there is something to draw.
fn trend_charts(t: &chart::Trends) -> Vec<Value> {
    use super::charts::{Series, grade_strip_svg, trend_svg};
    let mut out = Vec::new();
    if !t.weight_gain.is_empty() {
        let note = match (&t.baseline, &t.band_label) {
            (Some((w, from)), Some(band)) => format!("孕前体重 {w} kg（{from}）；绿色区域为推荐增重范围：{band}"),
            (Some((w, from)), None) => format!("孕前体重 {w} kg（{from}）；缺身高，无法给出推荐范围"),
            _ => String::new(),
        };
        let series = [Series {
            name: "体重增长",
            colour: "#2b6cb0",
            points: &t.weight_gain,
        }];
        out.push(json!({"id": "chart-weight", "label": "孕期体重增长", "note": note,
                        "svg": trend_svg("孕期体重增长", "kg", &series, &[], &t.band)}));
    }
    if !t.systolic.is_empty() {
        let series = [
            Series {
                name: "收缩压",
                colour: "#c05621",
                points: &t.systolic,
            },
            Series {
                name: "舒张压",
                colour: "#2c7a7b",
                points: &t.diastolic,
            },
        ];
        out.push(json!({"id": "chart-bp", "label": "血压", "note": "虚线：140/90 mmHg",
                        "svg": trend_svg("血压", "mmHg", &series, &[(140.0, "140"), (90.0, "90")], &[])}));
    }
    if !t.hb.is_empty() {
        let series = [Series {
            name: "血红蛋白",
            colour: "#b83280",
            points: &t.hb,
        }];
        out.push(json!({"id": "chart-hb", "label": "血红蛋白", "note": "虚线：110 g/L（贫血）、100、70 g/L",
                        "svg": trend_svg("血红蛋白", "g/L", &series, &[(110.0, "110"), (100.0, "100"), (70.0, "70")], &[])}));
    }
    if !t.fundal_height.is_empty() {
        let series = [Series {
            name: "宫底高度",
            colour: "#4a5568",
            points: &t.fundal_height,
        }];
        out.push(json!({"id": "chart-fundal", "label": "宫底高度", "note": "",
                        "svg": trend_svg("宫底高度", "cm", &series, &[], &[])}));
    }
    if !t.grades.is_empty() {
        out.push(json!({"id": "chart-grades", "label": "五色分级", "note": "", "svg": grade_strip_svg(&t.grades)}));
    }
    out
}

/// How many babies the delivery form has fields for (more are completed on each child's page).
pub(super) const FORM_BABIES: usize = 2;

/// The delivery form: the delivery's fields and `baby{n}_{field}` for each baby (n from 1).
fn delivery_of(form: &[(String, String)]) -> (DeliveryInput, Vec<NewbornInput>) {
    let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let delivery = DeliveryInput {
        delivery_date: field("delivery_date"),
        discharge_date: field("discharge_date"),
        facility_name: field("facility_name"),
        mode: field("mode"),
        live_births: field("live_births"),
        stillbirths: field("stillbirths"),
        maternal_death: field("maternal_death"),
        complications: field("complications"),
    };
    let mut babies = Vec::new();
    for n in 1..=FORM_BABIES {
        let f = |name: &str| field(&format!("baby{n}_{name}")).filter(|v| !v.trim().is_empty());
        let b = NewbornInput {
            name: f("name"),
            sex: f("sex"),
            birth_time: f("birth_time"),
            weight_g: f("weight_g"),
            length_cm: f("length_cm"),
            apgar_1: f("apgar_1"),
            apgar_5: f("apgar_5"),
            malformations: f("malformations"),
            conditions: form
                .iter()
                .filter(|(k, _)| *k == format!("baby{n}_conditions"))
                .map(|(_, v)| v.clone())
                .collect(),
        };
        let empty = b.sex.is_none() && b.weight_g.is_none() && b.birth_time.is_none() && b.length_cm.is_none();
        if !empty {
            babies.push(b);
        }
    }
    (delivery, babies)
}

/// `babies[0].sex` (the service's name) → `baby1_sex` (the form's).
fn form_field(field: &str) -> String {
    match field.strip_prefix("babies[").and_then(|r| r.split_once("].")) {
        Some((i, name)) => format!("baby{}_{name}", i.parse::<usize>().unwrap_or(0) + 1),
        None => field.to_string(),
    }
}

pub async fn record_delivery(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let csrf = form.iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v.as_str());
    ctx.check_csrf(csrf).map_err(|e| st.error(Some(&ctx), e))?;
    let (input, babies) = delivery_of(&form);
    match crate::child::service::record_birth(&st.db, &ctx.actor, id.clone(), input, babies).await {
        Ok(_) => Ok(see_other(&format!("/pregnancies/{id}?delivered=1"))),
        Err(ServiceError::Invalid(errors)) => {
            let errors: Vec<FieldError> = errors
                .into_iter()
                .map(|e| FieldError {
                    field: form_field(&e.field),
                    ..e
                })
                .collect();
            let shown = super::forget_refused(&form, &errors);
            let mut typed = empty_delivery_form();
            if let Some(obj) = typed.as_object_mut() {
                for (k, v) in shown {
                    if k == "csrf_token" {
                        continue;
                    }
                    if k.ends_with("_conditions") {
                        let list = obj.entry(k).or_insert_with(|| json!([]));
                        if let Some(a) = list.as_array_mut() {
                            a.push(json!(v));
                        }
                    } else {
                        obj.insert(k, json!(v));
                    }
                }
            }
            pregnancy_page(
                &st,
                &ctx,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Value::Null,
                typed,
                errors,
            )
            .await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

fn choices(table: &[(&str, &str)]) -> Value {
    json!(
        table
            .iter()
            .map(|(c, l)| json!({"code": c, "label": l}))
            .collect::<Vec<_>>()
    )
}

fn visit_form_page(
    st: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    record: &chart::PregnancyChart,
    form: Value,
    errors: Vec<FieldError>,
) -> PageResult {
    let delivered = record.delivery.is_some();
    let title = format!(
        "{} {}",
        record.person.person.name,
        if delivered { "产后访视" } else { "产前随访" }
    );
    st.page(
        status,
        "pages/visit_form",
        Some(ctx),
        &title,
        json!({"record": record, "form": form, "errors": errors, "today": crate::ids::today_china(), "delivered": delivered,
               "presentations": choices(&PRESENTATIONS), "oedema_choices": choices(&OEDEMA), "urine_choices": choices(&URINE_PROTEIN)}),
    )
}

fn empty_visit_form() -> Value {
    json!({"visit_date": crate::ids::today_china(), "weight_kg": "", "height_cm": "", "systolic_mmhg": "", "diastolic_mmhg": "",
           "fundal_height_cm": "", "abdominal_circumference_cm": "", "fetal_heart_rate_bpm": "", "fetal_presentation": "",
           "oedema": "", "hb_g_l": "", "urine_protein": "", "complaints": "", "advice": "", "next_appointment": "",
           "kind": "", "postpartum_recovered": ""})
}

/// `?kind=postpartum_home`: the kind of visit the link (her page, the worklist) opens the form
/// for, so a home visit on a phone starts with it chosen; anything else is ignored.
#[derive(Deserialize)]
pub struct VisitFormQuery {
    kind: Option<String>,
}

pub async fn new_visit_form(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<VisitFormQuery>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    if !ctx.actor.may(Action::RecordVisit) {
        return Err(st.error(
            Some(&ctx),
            ServiceError::Forbidden {
                reason: "您的角色不能记录产前随访".into(),
                target: None,
            },
        ));
    }
    let record = chart::pregnancy(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let mut form = empty_visit_form();
    if let Some(kind) = q
        .kind
        .as_deref()
        .and_then(VisitKind::parse)
        .filter(|k| k.is_postpartum())
    {
        form["kind"] = json!(kind.as_str());
    }
    visit_form_page(&st, &ctx, StatusCode::OK, &record, form, Vec::new())
}

#[derive(Deserialize)]
pub struct VisitForm {
    csrf_token: Option<String>,
    #[serde(flatten)]
    input: VisitInput,
}

pub async fn record_visit(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<VisitForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let input = form.into_inner().input;
    match visits::record_visit(&st.db, &ctx.actor, id.clone(), input.clone()).await {
        Ok(_) => Ok(see_other(&format!("/pregnancies/{id}?saved=1"))),
        Err(ServiceError::Invalid(errors)) => {
            let record = chart::pregnancy(&st.db, &ctx.actor, id)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            let mut defaults = empty_visit_form();
            defaults["visit_date"] = json!("");
            let mut form = typed_values(&input, defaults);
            super::forget_refused_in(&mut form, &errors);
            visit_form_page(&st, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &record, form, errors)
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    person_id: Option<String>,
    actor: Option<String>,
    verify: Option<String>,
}

pub async fn audit(st: web::Data<AppState>, PageCtx(ctx): PageCtx, q: web::Query<AuditQuery>) -> PageResult {
    let person_id = q
        .person_id
        .clone()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    let actor_filter = q.actor.clone().map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
    let events = match &person_id {
        Some(pid) => audit_service::person_access_log(&st.db, &ctx.actor, pid.clone(), None, None).await,
        None => audit_service::recent(&st.db, &ctx.actor, actor_filter.clone()).await,
    }
    .map_err(|e| st.error(Some(&ctx), e))?;
    // Checking the whole chain reads every row: only on request.
    let report = match q.verify {
        Some(_) => Some(
            st.db
                .read(audit_service::verify_chain)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?,
        ),
        None => None,
    };
    st.page(
        StatusCode::OK,
        "pages/audit",
        Some(&ctx),
        "访问记录（审计）",
        json!({"events": events, "report": report, "person_id": person_id.unwrap_or_default(), "actor": actor_filter.unwrap_or_default()}),
    )
}
