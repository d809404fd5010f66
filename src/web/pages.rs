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
use crate::auth::service as auth_service;
use crate::error::{FieldError, ServiceError};
use crate::identity::model::PersonInput;
use crate::identity::service::{self as identity, Registration};
use crate::ids::is_id;
use crate::pregnancy::model::{BookingInput, DELIVERY_MODES, DeliveryInput, PregnancyStatus};
use crate::pregnancy::service as pregnancy;
use crate::visits::model::{OEDEMA, PRESENTATIONS, URINE_PROTEIN, VisitInput, label_of};
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

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

fn field_errors(e: &ServiceError) -> Option<Vec<FieldError>> {
    match e {
        ServiceError::Invalid(list) => Some(list.clone()),
        _ => None,
    }
}

fn check_id(st: &AppState, ctx: &Ctx, id: &str) -> Result<(), PageError> {
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
}

pub async fn login_form(st: web::Data<AppState>, q: web::Query<LoginQuery>) -> PageResult {
    st.page(
        StatusCode::OK,
        "pages/login",
        None,
        "登录",
        json!({"username": "", "error": Value::Null, "expired": q.expired.is_some()}),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login(st: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> PageResult {
    let addr = req.peer_addr().map(|a| a.ip().to_string());
    let form = form.into_inner();
    match auth_service::login(&st.db, &form.username, &form.password, addr).await {
        Ok(login) => {
            let cookie = Cookie::build(SESSION_COOKIE, login.token)
                .path("/")
                .http_only(true)
                .secure(true)
                .same_site(SameSite::Strict)
                .finish();
            Ok(HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((header::LOCATION, "/"))
                .finish())
        }
        Err(e @ (ServiceError::Invalid(_) | ServiceError::TooManyAttempts(_))) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
                StatusCode::UNAUTHORIZED
            } else {
                status
            };
            st.page(
                status,
                "pages/login",
                None,
                "登录",
                json!({"username": form.username, "error": e.to_string(), "expired": false}),
            )
        }
        Err(e) => Err(st.error(None, e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
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

pub async fn home(st: web::Data<AppState>, PageCtx(ctx): PageCtx) -> PageResult {
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
            json!({"worklist": [], "card_reads": [], "scope": scope_label(&ctx), "overdue": 0, "due": 0,
                   "risk": crate::risk::service::RiskTasks::default()}),
        );
    }
    let worklist = visits::worklist(&st.db, &ctx.actor, 100)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let card_reads = identity::recent_card_reads(&st.db, &ctx.actor)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let risk_tasks = crate::risk::service::tasks(&st.db, &ctx.actor)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let (overdue, due) = (worklist.overdue_total, worklist.due_total);
    let worklist = worklist.items;
    let cards: Vec<Value> = card_reads
        .iter()
        .map(|(at, p)| json!({"at": at, "person": p}))
        .collect();
    st.page(
        StatusCode::OK,
        "pages/home",
        Some(&ctx),
        "工作台",
        json!({"worklist": worklist, "card_reads": cards, "scope": scope_label(&ctx), "overdue": overdue, "due": due, "risk": risk_tasks}),
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
    let (results, errors) = match identity::search(&st.db, &ctx.actor, query.clone()).await {
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

#[derive(Deserialize, Serialize)]
pub struct PersonForm {
    csrf_token: Option<String>,
    name: String,
    id_number: Option<String>,
    sex: Option<String>,
    birth_date: Option<String>,
    nation_code: Option<String>,
    phone: Option<String>,
    address: Option<String>,
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
    let input = PersonInput {
        name: f.name.clone(),
        id_number: f.id_number.clone(),
        sex: f.sex.clone(),
        birth_date: f.birth_date.clone(),
        nation_code: f.nation_code.clone(),
        phone: f.phone.clone(),
        address: f.address.clone(),
    };
    let confirmed = f.confirm_not_duplicate.as_deref() == Some("1");
    let rerender = |status: StatusCode, errors: Vec<FieldError>, candidates: Value| {
        st.page(
            status,
            "pages/persons",
            Some(&ctx),
            "服务对象",
            json!({"q": "", "searched": false, "results": [], "search_errors": [], "form": {
                "name": f.name, "id_number": f.id_number.clone().unwrap_or_default(), "sex": f.sex.clone().unwrap_or_default(),
                "birth_date": f.birth_date.clone().unwrap_or_default(), "nation_code": f.nation_code.clone().unwrap_or_default(),
                "phone": f.phone.clone().unwrap_or_default(), "address": f.address.clone().unwrap_or_default()},
                "errors": errors, "candidates": candidates, "confirm": !candidates.as_array().is_none_or(|a| a.is_empty())}),
        )
    };
    match identity::register(&st.db, &ctx.actor, input, confirmed).await {
        Ok(Registration::Created { person_id }) => Ok(see_other(&format!("/persons/{person_id}?created=1"))),
        Ok(Registration::Existing { person_id }) => Ok(see_other(&format!("/persons/{person_id}?existing=1"))),
        Ok(Registration::NearDuplicates { candidates }) => rerender(StatusCode::OK, Vec::new(), json!(candidates)),
        Err(e) => match field_errors(&e) {
            Some(errors) => rerender(StatusCode::UNPROCESSABLE_ENTITY, errors, json!([])),
            None => Err(st.error(Some(&ctx), e)),
        },
    }
}

#[derive(Deserialize)]
pub struct PersonQuery {
    created: Option<String>,
    existing: Option<String>,
}

fn empty_booking() -> Value {
    json!({"booking_date": "", "lmp": "", "ultrasound_date": "", "ultrasound_ga": "", "gravidity": "", "parity": ""})
}

async fn person_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    notice: Value,
    booking: Value,
    errors: Vec<FieldError>,
) -> PageResult {
    let record = pregnancy::person_record(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = record.view.person.name.clone();
    st.page(
        status,
        "pages/person",
        Some(ctx),
        &title,
        json!({"record": record, "notice": notice, "booking": booking, "errors": errors}),
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
    person_page(&st, &ctx, id, StatusCode::OK, notice, empty_booking(), Vec::new()).await
}

#[derive(Deserialize)]
pub struct BookingForm {
    csrf_token: Option<String>,
    booking_date: Option<String>,
    lmp: Option<String>,
    ultrasound_date: Option<String>,
    ultrasound_ga: Option<String>,
    gravidity: Option<String>,
    parity: Option<String>,
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
    let f = form.into_inner();
    let input = BookingInput {
        booking_date: f.booking_date.clone(),
        lmp: f.lmp.clone(),
        ultrasound_date: f.ultrasound_date.clone(),
        ultrasound_ga: f.ultrasound_ga.clone(),
        gravidity: f.gravidity.clone(),
        parity: f.parity.clone(),
    };
    match pregnancy::book(&st.db, &ctx.actor, id.clone(), input).await {
        Ok(p) => Ok(see_other(&format!("/pregnancies/{}?booked=1", p.id))),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                let booking = json!({"booking_date": f.booking_date.unwrap_or_default(), "lmp": f.lmp.unwrap_or_default(),
                    "ultrasound_date": f.ultrasound_date.unwrap_or_default(), "ultrasound_ga": f.ultrasound_ga.unwrap_or_default(),
                    "gravidity": f.gravidity.unwrap_or_default(), "parity": f.parity.unwrap_or_default()});
                person_page(
                    &st,
                    &ctx,
                    id,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Value::Null,
                    booking,
                    errors,
                )
                .await
            }
            None => Err(st.error(Some(&ctx), e)),
        },
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
    let record = pregnancy::open(&st.db, &ctx.actor, id)
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
    st.page(
        status,
        "pages/pregnancy",
        Some(ctx),
        &title,
        json!({"record": record, "labels": visit_labels, "notice": notice, "dating_label": record.pregnancy.dating.method.label_zh(),
               "active": active, "delivered": delivered, "mode_label": mode_label, "delivery_form": delivery_form,
               "delivery_errors": delivery_errors, "delivery_modes": choices(&DELIVERY_MODES)}),
    )
}

#[derive(Deserialize, Serialize)]
pub struct DeliveryForm {
    csrf_token: Option<String>,
    delivery_date: Option<String>,
    discharge_date: Option<String>,
    facility_name: Option<String>,
    mode: Option<String>,
    live_births: Option<String>,
    stillbirths: Option<String>,
    maternal_death: Option<String>,
    complications: Option<String>,
}

pub async fn record_delivery(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<DeliveryForm>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    ctx.check_csrf(form.csrf_token.as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let f = form.into_inner();
    let input = DeliveryInput {
        delivery_date: f.delivery_date.clone(),
        discharge_date: f.discharge_date.clone(),
        facility_name: f.facility_name.clone(),
        mode: f.mode.clone(),
        live_births: f.live_births.clone(),
        stillbirths: f.stillbirths.clone(),
        maternal_death: f.maternal_death.clone(),
        complications: f.complications.clone(),
    };
    match pregnancy::record_delivery(&st.db, &ctx.actor, id.clone(), input).await {
        Ok(_) => Ok(see_other(&format!("/pregnancies/{id}?delivered=1"))),
        Err(ServiceError::Invalid(errors)) => {
            let mut form = serde_json::to_value(&f).unwrap_or_else(|_| empty_delivery_form());
            if let (Some(obj), Some(defaults)) = (form.as_object_mut(), empty_delivery_form().as_object()) {
                obj.remove("csrf_token");
                for (k, v) in defaults {
                    if obj.get(k).is_none_or(Value::is_null) {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            pregnancy_page(
                &st,
                &ctx,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Value::Null,
                form,
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
    record: &pregnancy::PregnancyRecord,
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

pub async fn new_visit_form(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
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
    let record = pregnancy::open(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    visit_form_page(&st, &ctx, StatusCode::OK, &record, empty_visit_form(), Vec::new())
}

#[derive(Deserialize, Serialize)]
pub struct VisitForm {
    csrf_token: Option<String>,
    #[serde(flatten)]
    input: VisitFields,
}

#[derive(Deserialize, Serialize, Clone, Default)]
pub struct VisitFields {
    visit_date: Option<String>,
    weight_kg: Option<String>,
    height_cm: Option<String>,
    systolic_mmhg: Option<String>,
    diastolic_mmhg: Option<String>,
    fundal_height_cm: Option<String>,
    abdominal_circumference_cm: Option<String>,
    fetal_heart_rate_bpm: Option<String>,
    fetal_presentation: Option<String>,
    oedema: Option<String>,
    hb_g_l: Option<String>,
    urine_protein: Option<String>,
    complaints: Option<String>,
    advice: Option<String>,
    next_appointment: Option<String>,
    kind: Option<String>,
    postpartum_recovered: Option<String>,
}

impl From<VisitFields> for VisitInput {
    fn from(f: VisitFields) -> VisitInput {
        VisitInput {
            visit_date: f.visit_date,
            weight_kg: f.weight_kg,
            height_cm: f.height_cm,
            systolic_mmhg: f.systolic_mmhg,
            diastolic_mmhg: f.diastolic_mmhg,
            fundal_height_cm: f.fundal_height_cm,
            abdominal_circumference_cm: f.abdominal_circumference_cm,
            fetal_heart_rate_bpm: f.fetal_heart_rate_bpm,
            fetal_presentation: f.fetal_presentation,
            oedema: f.oedema,
            hb_g_l: f.hb_g_l,
            urine_protein: f.urine_protein,
            complaints: f.complaints,
            advice: f.advice,
            next_appointment: f.next_appointment,
            kind: f.kind,
            postpartum_recovered: f.postpartum_recovered,
        }
    }
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
    let fields = form.into_inner().input;
    match visits::record_visit(&st.db, &ctx.actor, id.clone(), fields.clone().into()).await {
        Ok(_) => Ok(see_other(&format!("/pregnancies/{id}?saved=1"))),
        Err(e) => match field_errors(&e) {
            Some(errors) => {
                let record = pregnancy::open(&st.db, &ctx.actor, id)
                    .await
                    .map_err(|e| st.error(Some(&ctx), e))?;
                let mut form = serde_json::to_value(&fields).unwrap_or_else(|_| empty_visit_form());
                // Absent fields render as empty inputs (strict templates need every key).
                if let (Some(obj), Some(defaults)) = (form.as_object_mut(), empty_visit_form().as_object()) {
                    for (k, v) in defaults {
                        if obj.get(k).is_none_or(Value::is_null) {
                            obj.insert(k.clone(), if k == "visit_date" { json!("") } else { v.clone() });
                        }
                    }
                }
                visit_form_page(&st, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &record, form, errors)
            }
            None => Err(st.error(Some(&ctx), e)),
        },
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
