//! The child's pages (儿童保健档案, the visit form, the printable 儿童保健手册 pages) and her JSON.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::api::{csrf, id};
use super::context::{ApiCtx, ApiError, Ctx, PageCtx, PageError};
use super::pages::{check_id, see_other};
use crate::child::model::{
    CertificateInput, ChildVisitInput, FEEDING, HEALTH_STATUS, HEARING, NEWBORN_CONDITIONS, NewbornInput, PLACE_TYPES,
    POSITIONS, RICKETS_SIGNS, SERVICE_RESULTS, SEXES, ServiceInput, VISION, VaccinationInput,
};
use crate::child::schedule;
use crate::child::service::{self as child, ChildChart};
use crate::error::{FieldError, ServiceError};

type PageResult = Result<HttpResponse, PageError>;

fn choices(table: &[(&str, &str)]) -> Value {
    json!(
        table
            .iter()
            .map(|(c, l)| json!({"code": c, "label": l}))
            .collect::<Vec<_>>()
    )
}

fn field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str())
}

fn opt(form: &[(String, String)], k: &str) -> Option<String> {
    field(form, k)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn all(form: &[(String, String)], k: &str) -> Vec<String> {
    form.iter().filter(|(f, _)| f == k).map(|(_, v)| v.clone()).collect()
}

fn form_csrf(ctx: &Ctx, form: &[(String, String)]) -> Result<(), ServiceError> {
    ctx.check_csrf(field(form, "csrf_token"))
}

/// The growth charts of her page, as SVG.
fn charts(chart: &ChildChart) -> Vec<Value> {
    chart
        .charts
        .iter()
        .map(|s| json!({"label": s.label, "svg": super::charts::growth_svg(s)}))
        .collect()
}

fn label_of(table: &'static [(&'static str, &'static str)], code: &Option<String>) -> Option<&'static str> {
    let code = code.as_deref()?;
    table.iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
}

/// The child page's forms with every field present (strict templates), what was typed kept.
const FORMS: &[(&str, &[&str])] = &[
    (
        "vaccinations",
        &[
            "vaccine",
            "given_at",
            "lot_number",
            "manufacturer",
            "expiry_date",
            "site",
            "checks_done",
            "from_certificate",
        ],
    ),
    ("services", &["code", "done_at", "result", "note"]),
    (
        "birth",
        &[
            "sex",
            "birth_time",
            "weight_g",
            "length_cm",
            "apgar_1",
            "apgar_5",
            "malformations",
        ],
    ),
    (
        "certificate",
        &[
            "number",
            "issued_on",
            "child_name",
            "birthplace",
            "place_type",
            "health_status",
            "father_name",
            "father_id_number",
            "midwife",
            "issuer",
        ],
    ),
    ("identity", &["name", "id_number", "health_card"]),
    ("frail", &["note"]),
];

fn filled_forms(typed: &Value) -> Value {
    let mut out = json!({});
    for (form, fields) in FORMS {
        let mut f = json!({});
        for k in *fields {
            f[*k] = typed.get(*form).and_then(|t| t.get(*k)).cloned().unwrap_or(json!(""));
        }
        out[*form] = f;
    }
    out
}

async fn child_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    notice: Option<&str>,
    forms: Value,
    errors: Vec<FieldError>,
) -> PageResult {
    let chart = child::open(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let visit_labels: Vec<Value> = chart
        .visits
        .iter()
        .map(|r| {
            json!({"feeding": label_of(FEEDING, &r.visit.feeding), "position": label_of(POSITIONS, &r.visit.position),
                   "hearing": label_of(HEARING, &r.visit.hearing), "vision": label_of(VISION, &r.visit.vision)})
        })
        .collect();
    let title = format!("{} 儿童保健档案", chart.person.person.name);
    let rules = schedule::rules();
    let vaccines: Vec<Value> = rules
        .vaccines()
        .iter()
        .map(|(c, n)| json!({"code": c, "label": n}))
        .collect();
    let services: Vec<Value> = rules
        .service_codes()
        .iter()
        .map(|(c, n)| json!({"code": c, "label": n}))
        .collect();
    st.page(
        status,
        "pages/child",
        Some(ctx),
        &title,
        json!({"chart": chart, "charts": charts(&chart), "visit_labels": visit_labels, "notice": notice,
               "vaccines": vaccines, "service_codes": services, "results": choices(SERVICE_RESULTS),
               "sexes": choices(SEXES), "conditions": choices(NEWBORN_CONDITIONS), "place_types": choices(PLACE_TYPES),
               "health_status": choices(HEALTH_STATUS), "forms": filled_forms(&forms), "errors": errors,
               "today": crate::ids::today_china(), "frail_conditions": super::frail::manual_choices()}),
    )
}

#[derive(Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

pub async fn show(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<Notice>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let notice = match q.saved.as_deref() {
        Some("visit") => Some("儿童健康检查已保存"),
        Some("vaccination") => Some("预防接种已登记"),
        Some("service") => Some("筛查/检测/预防措施已登记"),
        Some("birth") => Some("出生信息已更新"),
        Some("certificate") => Some("出生医学证明已登记"),
        Some("identity") => Some("身份信息已更新"),
        Some("frail") => Some("体弱儿专案已建立"),
        _ => None,
    };
    child_page(&st, &ctx, id, StatusCode::OK, notice, json!({}), Vec::new()).await
}

/// The child page's forms: each posts here, then back to the page (or the page again with the
/// refused form's errors, what was typed kept — but never a refused fetal-sex text).
pub async fn action(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let (id, what) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    form_csrf(&ctx, &form).map_err(|e| st.error(Some(&ctx), e))?;
    let actor = &ctx.actor;
    let result: Result<(), ServiceError> = match what.as_str() {
        "vaccinations" => child::record_vaccination(&st.db, actor, id.clone(), vaccination_of(&form))
            .await
            .map(|_| ()),
        "services" => child::record_service(&st.db, actor, id.clone(), service_of(&form))
            .await
            .map(|_| ()),
        "birth" => child::update_birth(
            &st.db,
            actor,
            id.clone(),
            newborn_of(&form),
            field(&form, "version").and_then(|v| v.parse().ok()),
        )
        .await
        .map(|_| ()),
        "certificate" => child::issue_certificate(&st.db, actor, id.clone(), certificate_of(&form))
            .await
            .map(|_| ()),
        "frail" => child::open_frail_case(&st.db, actor, id.clone(), super::frail::open_input(&form))
            .await
            .map(|_| ()),
        "identity" => child::complete_identity(
            &st.db,
            actor,
            id.clone(),
            opt(&form, "name"),
            opt(&form, "id_number"),
            opt(&form, "health_card"),
        )
        .await
        .map(|_| ()),
        _ => Err(ServiceError::NotFound("没有这个操作")),
    };
    match result {
        Ok(()) => {
            let saved = match what.as_str() {
                "vaccinations" => "vaccination",
                "services" => "service",
                other => other,
            };
            Ok(see_other(&format!("/children/{id}?saved={saved}")))
        }
        Err(ServiceError::Invalid(errors)) => {
            let shown = super::forget_refused(&form, &errors);
            let typed: serde_json::Map<String, Value> = shown
                .into_iter()
                .filter(|(k, _)| k != "csrf_token")
                .map(|(k, v)| (k, json!(v)))
                .collect();
            let forms = json!({ what.as_str(): typed });
            child_page(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, None, forms, errors).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

fn vaccination_of(form: &[(String, String)]) -> VaccinationInput {
    VaccinationInput {
        vaccine: opt(form, "vaccine"),
        given_at: opt(form, "given_at"),
        lot_number: opt(form, "lot_number"),
        manufacturer: opt(form, "manufacturer"),
        expiry_date: opt(form, "expiry_date"),
        site: opt(form, "site"),
        checks_done: opt(form, "checks_done"),
        from_certificate: opt(form, "from_certificate"),
    }
}

fn service_of(form: &[(String, String)]) -> ServiceInput {
    ServiceInput {
        code: opt(form, "code"),
        done_at: opt(form, "done_at"),
        result: opt(form, "result"),
        note: opt(form, "note"),
    }
}

fn newborn_of(form: &[(String, String)]) -> NewbornInput {
    NewbornInput {
        name: None,
        sex: opt(form, "sex"),
        birth_time: opt(form, "birth_time"),
        weight_g: opt(form, "weight_g"),
        length_cm: opt(form, "length_cm"),
        apgar_1: opt(form, "apgar_1"),
        apgar_5: opt(form, "apgar_5"),
        malformations: opt(form, "malformations"),
        conditions: all(form, "conditions"),
    }
}

fn certificate_of(form: &[(String, String)]) -> CertificateInput {
    CertificateInput {
        number: opt(form, "number"),
        issued_on: opt(form, "issued_on"),
        child_name: opt(form, "child_name"),
        birthplace: opt(form, "birthplace"),
        place_type: opt(form, "place_type"),
        health_status: opt(form, "health_status"),
        father_name: opt(form, "father_name"),
        father_id_number: opt(form, "father_id_number"),
        midwife: opt(form, "midwife"),
        issuer: opt(form, "issuer"),
    }
}

fn visit_of(form: &[(String, String)]) -> ChildVisitInput {
    ChildVisitInput {
        visit_date: opt(form, "visit_date"),
        weight_kg: opt(form, "weight_kg"),
        length_cm: opt(form, "length_cm"),
        position: opt(form, "position"),
        head_circumference_cm: opt(form, "head_circumference_cm"),
        feeding: opt(form, "feeding"),
        development_warning: opt(form, "development_warning"),
        rickets_signs: all(form, "rickets_signs"),
        exam: opt(form, "exam"),
        hb_g_l: opt(form, "hb_g_l"),
        hearing: opt(form, "hearing"),
        vision: opt(form, "vision"),
        illness: opt(form, "illness"),
        advice: opt(form, "advice"),
        referral: opt(form, "referral"),
        next_appointment: opt(form, "next_appointment"),
        confirm_implausible: opt(form, "confirm_implausible"),
    }
}

const VISIT_FIELDS: &[&str] = &[
    "visit_date",
    "weight_kg",
    "length_cm",
    "position",
    "head_circumference_cm",
    "feeding",
    "development_warning",
    "exam",
    "hb_g_l",
    "hearing",
    "vision",
    "illness",
    "advice",
    "referral",
    "next_appointment",
];

async fn visit_form_page(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    mut typed: Value,
    errors: Vec<FieldError>,
) -> PageResult {
    for k in VISIT_FIELDS {
        if typed.get(*k).is_none() {
            typed[*k] = json!("");
        }
    }
    if typed.get("rickets_signs").is_none() {
        typed["rickets_signs"] = json!([]);
    }
    let chart = child::open(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = format!("{} 儿童健康检查", chart.person.person.name);
    let implausible = errors.iter().any(|e| e.code == "implausible_z");
    st.page(
        status,
        "pages/child_visit_form",
        Some(ctx),
        &title,
        json!({"chart": chart, "form": typed, "errors": errors, "implausible": implausible,
               "today": crate::ids::today_china(), "positions": choices(POSITIONS), "feeding": choices(FEEDING),
               "rickets": choices(RICKETS_SIGNS), "hearing": choices(HEARING), "vision": choices(VISION)}),
    )
}

pub async fn new_visit(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    if !ctx.actor.may(crate::auth::model::Action::RecordVisit) {
        return Err(st.error(
            Some(&ctx),
            ServiceError::Forbidden {
                reason: "您的角色不能记录儿童健康检查".into(),
                target: None,
            },
        ));
    }
    let typed = json!({"visit_date": crate::ids::today_china(), "rickets_signs": []});
    visit_form_page(&st, &ctx, id, StatusCode::OK, typed, Vec::new()).await
}

pub async fn record_visit(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    form_csrf(&ctx, &form).map_err(|e| st.error(Some(&ctx), e))?;
    match child::record_visit(&st.db, &ctx.actor, id.clone(), visit_of(&form)).await {
        Ok(_) => Ok(see_other(&format!("/children/{id}?saved=visit"))),
        Err(ServiceError::Invalid(errors)) => {
            let shown = super::forget_refused(&form, &errors);
            let mut typed = json!({"rickets_signs": []});
            for (k, v) in shown {
                if k == "rickets_signs" {
                    if let Some(a) = typed["rickets_signs"].as_array_mut() {
                        a.push(json!(v));
                    }
                } else if k != "csrf_token" {
                    typed[k] = json!(v);
                }
            }
            visit_form_page(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, typed, errors).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

/// The printable 儿童保健手册 pages: birth, growth charts, the vaccination record (A4).
pub async fn print(st: web::Data<AppState>, PageCtx(ctx): PageCtx, path: web::Path<String>) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let chart = child::open(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    let title = format!("{} 儿童保健手册", chart.person.person.name);
    st.page(
        StatusCode::OK,
        "print/child_handbook",
        Some(&ctx),
        &title,
        json!({"chart": chart, "charts": charts(&chart), "printed_on": crate::ids::today_china()}),
    )
}

// ------------------------------------------------------------------ JSON

type ApiResult = Result<HttpResponse, ApiError>;

/// `GET /api/children/{id}`: her record, mother, schedule, visits with z-scores, vaccinations.
pub async fn api_show(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, path: web::Path<String>) -> ApiResult {
    let chart = child::open(&st.db, &ctx.actor, id(path.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(chart))
}

pub async fn api_visit(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<ChildVisitInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let v = child::record_visit(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(v))
}

pub async fn api_vaccination(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<VaccinationInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let v = child::record_vaccination(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(v))
}

pub async fn api_service(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<ServiceInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let v = child::record_service(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(v))
}

#[derive(Deserialize)]
pub struct BirthBody {
    #[serde(flatten)]
    facts: NewbornInput,
    version: Option<i32>,
}

pub async fn api_birth(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<BirthBody>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let b = body.into_inner();
    let v = child::update_birth(&st.db, &ctx.actor, id(path.into_inner())?, b.facts, b.version).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn api_certificate(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<CertificateInput>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let v = child::issue_certificate(&st.db, &ctx.actor, id(path.into_inner())?, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    name: Option<String>,
    id_number: Option<String>,
    health_card: Option<String>,
}

pub async fn api_identity(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    body: web::Json<IdentityBody>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let b = body.into_inner();
    let p = child::complete_identity(
        &st.db,
        &ctx.actor,
        id(path.into_inner())?,
        b.name,
        b.id_number,
        b.health_card,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"person_id": p.id, "name": p.name,
        "id_number_masked": p.id_number.as_deref().map(crate::identity::model::mask_id_number)})))
}
