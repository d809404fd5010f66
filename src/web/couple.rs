//! Before pregnancy, pages and JSON (issue 12): the couple page with its forms (the marriage
//! check, the 19-item screening, follow-ups, birth registration, the end of a marriage), the
//! prints (婚前医学检查证明, 评估建议告知书, 生育服务登记 with the 母子健康手册 number), and the
//! before-pregnancy worklist. The forms' fields are the model's; this only translates.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::api::{csrf, id};
use super::context::{ApiCtx, ApiError, Ctx, PageCtx, PageError};
use super::pages::{check_id, see_other};
use crate::couple::model::{
    self, EXPOSURES, EndInput, Findings, FollowupInput, MarriageInput, Partner, PremaritalInput, PrepregnancyInput,
    RegistrationInput, WOMAN_ONLY,
};
use crate::couple::service::{self as couple, CoupleInput, DecisionInput, PartnerRef};
use crate::error::{FieldError, ServiceError};
use crate::identity::model::PersonInput;

type PageResult = Result<HttpResponse, PageError>;
type ApiResult = Result<HttpResponse, ApiError>;

// ------------------------------------------------------------------ JSON

fn body<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ApiError(ServiceError::invalid("body", "json", format!("JSON 字段有误：{e}"))))
}

pub async fn api_create(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let view = couple::create_couple(&st.db, &ctx.actor, body(b.into_inner())?).await?;
    Ok(HttpResponse::Created().json(view))
}

pub async fn api_show(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx, path: web::Path<String>) -> ApiResult {
    Ok(HttpResponse::Ok().json(couple::couple_view(&st.db, &ctx.actor, id(path.into_inner())?).await?))
}

pub async fn api_worklist(st: web::Data<AppState>, ApiCtx(ctx): ApiCtx) -> ApiResult {
    Ok(HttpResponse::Ok().json(couple::worklist(&st.db, &ctx.actor).await?))
}

pub async fn api_premarital(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let exam = couple::record_premarital(&st.db, &ctx.actor, id(path.into_inner())?, body(b.into_inner())?).await?;
    Ok(HttpResponse::Created().json(exam))
}

pub async fn api_prepregnancy(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let exam = couple::record_prepregnancy(&st.db, &ctx.actor, id(path.into_inner())?, body(b.into_inner())?).await?;
    Ok(HttpResponse::Created().json(exam))
}

pub async fn api_followup(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<(String, String)>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let (cid, fid) = path.into_inner();
    let f = couple::answer_followup(&st.db, &ctx.actor, id(cid)?, id(fid)?, body(b.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(f))
}

pub async fn api_register(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let r = couple::register_birth(&st.db, &ctx.actor, id(path.into_inner())?, body(b.into_inner())?).await?;
    Ok(HttpResponse::Created().json(r))
}

pub async fn api_decide(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<(String, String)>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    let (cid, rid) = path.into_inner();
    let r = couple::decide_registration(&st.db, &ctx.actor, id(cid)?, id(rid)?, body(b.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(r))
}

pub async fn api_end(
    st: web::Data<AppState>,
    req: HttpRequest,
    ApiCtx(ctx): ApiCtx,
    path: web::Path<String>,
    b: web::Json<Value>,
) -> ApiResult {
    csrf(&req, &ctx)?;
    Ok(HttpResponse::Ok()
        .json(couple::end_couple(&st.db, &ctx.actor, id(path.into_inner())?, body(b.into_inner())?).await?))
}

// ------------------------------------------------------------------ the findings form

const BOOLS: [(&str, &str); 5] = [
    ("genetic_disease", "本人或家族遗传病史"),
    ("consanguineous", "近亲结婚"),
    ("birth_defect_child", "曾生育出生缺陷儿"),
    ("smoking", "吸烟"),
    ("alcohol", "饮酒"),
];
/// The counts of the history (次), before the measured values.
const COUNTS: [&str; 4] = ["miscarriages", "preterm_births", "stillbirths", "caesareans"];
const NUMBERS: [(&str, &str); 13] = [
    ("height_cm", "cm"),
    ("weight_kg", "kg"),
    ("systolic_mmhg", "mmHg"),
    ("diastolic_mmhg", "mmHg"),
    ("hb_g_l", "g/L"),
    ("wbc_10e9_l", "×10⁹/L"),
    ("platelets_10e9_l", "×10⁹/L"),
    ("glucose_mmol_l", "mmol/L"),
    ("alt_u_l", "U/L"),
    ("creatinine_umol_l", "μmol/L"),
    ("tsh_miu_l", "mIU/L"),
    ("fibroid_mm", "mm"),
    ("adnexal_cyst_mm", "mm"),
];
const TESTS: [(&str, &str); 14] = [
    ("gonorrhoea", "淋球菌"),
    ("chlamydia", "沙眼衣原体"),
    ("hbsag", "乙肝表面抗原"),
    ("hbsab", "乙肝表面抗体"),
    ("hbeag", "乙肝 e 抗原"),
    ("hbeab", "乙肝 e 抗体"),
    ("hbcab", "乙肝核心抗体"),
    ("syphilis", "梅毒螺旋体"),
    ("rubella_igg", "风疹病毒 IgG"),
    ("cmv_igm", "巨细胞病毒 IgM"),
    ("cmv_igg", "巨细胞病毒 IgG"),
    ("toxo_igm", "弓形虫 IgM"),
    ("toxo_igg", "弓形虫 IgG"),
    ("hiv", "HIV 抗体（如检测）"),
];
const NORMALS: [(&str, &str); 4] = [
    ("genital_exam", "生殖系统检查"),
    ("vaginal_discharge", "阴道分泌物"),
    ("urine", "尿常规"),
    ("ultrasound", "妇科超声"),
];

/// The fields of one partner's findings form, in the form's order (a man's subset for him), each
/// with what was typed (`typed`: the refused form's fields, so nothing is typed twice).
fn findings_fields(partner: Partner, typed: &[(String, String)]) -> Value {
    let rules = model::rules();
    let prefix = partner.as_str();
    let keep = |f: &str| partner == Partner::Wife || !WOMAN_ONLY.contains(&f);
    let value = |f: &str| field(typed, &format!("{prefix}.{f}")).unwrap_or_default();
    let ticked = |f: &str, v: &str| typed.iter().any(|(k, x)| *k == format!("{prefix}.{f}") && x == v);
    let numbers: Vec<Value> = COUNTS
        .iter()
        .map(|f| (*f, "次"))
        .chain(NUMBERS.iter().copied())
        .filter(|(f, _)| keep(f))
        .map(|(f, unit)| json!({"name": f, "label": rules.label(f), "unit": unit, "value": value(f)}))
        .collect();
    let tests: Vec<Value> = TESTS
        .iter()
        .filter(|(f, _)| keep(f))
        .map(|(f, l)| json!({"name": f, "label": l, "value": value(f)}))
        .collect();
    let normals: Vec<Value> = NORMALS
        .iter()
        .filter(|(f, _)| keep(f))
        .map(|(f, l)| json!({"name": f, "label": l, "value": value(f)}))
        .collect();
    json!({
        "prefix": prefix,
        "label": partner.label_zh(),
        // The history of a child with a birth defect is the wife's (the model refuses it for him).
        "bools": BOOLS.iter()
            .filter(|(f, _)| partner == Partner::Wife || *f != "birth_defect_child")
            .map(|(f, l)| json!({"name": f, "label": l, "checked": !value(f).is_empty()}))
            .collect::<Vec<_>>(),
        "diseases": rules.diseases.iter()
            .map(|d| json!({"code": d.code, "name": d.name, "checked": ticked("diseases", &d.code)}))
            .collect::<Vec<_>>(),
        "exposures": EXPOSURES.iter()
            .map(|(c, l)| json!({"code": c, "name": l, "checked": ticked("toxic_exposures", c)}))
            .collect::<Vec<_>>(),
        "numbers": numbers,
        "tests": tests,
        "normals": normals,
        "abo": value("abo"),
        "rh_negative": value("rh_negative"),
        "medications": value("medications"),
        "note": value("note"),
    })
}

/// One partner's findings from form fields named `{prefix}.{field}`: empty fields are "not
/// done"; a number that is not one is named (nothing is guessed).
fn findings_from_form(form: &[(String, String)], prefix: &str) -> Result<Option<Findings>, Vec<FieldError>> {
    let mut obj = Map::new();
    let mut errors = Vec::new();
    let start = format!("{prefix}.");
    for (k, v) in form {
        let Some(field) = k.strip_prefix(&start) else { continue };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let value = match field {
            "diseases" | "toxic_exposures" => {
                if let Some(a) = obj
                    .entry(field.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()))
                    .as_array_mut()
                {
                    a.push(json!(v));
                }
                continue;
            }
            f if BOOLS.iter().any(|(b, _)| *b == f) => json!(true),
            "medications" | "note" | "abo" => json!(v),
            "rh_negative" => json!(v == "yes"),
            f if TESTS.iter().any(|(t, _)| *t == f) || NORMALS.iter().any(|(n, _)| *n == f) => json!(v),
            f => match v.parse::<f64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push(FieldError::new(&format!("{prefix}.{f}"), "number", "请填写数字"));
                    continue;
                }
            },
        };
        obj.insert(field.to_string(), value);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if obj.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(Value::Object(obj))
        .map(Some)
        .map_err(|e| vec![FieldError::new(prefix, "format", format!("检查结果有误：{e}"))])
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.trim().is_empty())
}

// ------------------------------------------------------------------ pages

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub async fn show(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    q: web::Query<Notice>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    show_with(&st, &ctx, id, StatusCode::OK, Vec::new(), q.done.clone()).await
}

async fn show_with(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    status: StatusCode,
    errors: Vec<FieldError>,
    done: Option<String>,
) -> PageResult {
    let view = couple::couple_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let title = format!("{} 与 {} 夫妻档案", view.wife.name, view.husband.name);
    st.page(
        status,
        "pages/couple",
        Some(ctx),
        &title,
        json!({"view": view, "errors": errors, "done": done,
               "today": crate::ids::today_china()}),
    )
}

/// The screening form (`/couples/{id}/screening`) and the marriage-check form
/// (`/couples/{id}/premarital?partner=wife`).
#[derive(Deserialize)]
pub struct FormQuery {
    partner: Option<String>,
}

pub async fn exam_form(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
    q: web::Query<FormQuery>,
) -> PageResult {
    let (id, which) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let partner = q.partner.as_deref().and_then(Partner::parse).unwrap_or(Partner::Wife);
    exam_form_with(&st, &ctx, id, &which, partner, StatusCode::OK, Vec::new(), &[]).await
}

#[allow(clippy::too_many_arguments)]
async fn exam_form_with(
    st: &AppState,
    ctx: &Ctx,
    id: String,
    which: &str,
    partner: Partner,
    status: StatusCode,
    errors: Vec<FieldError>,
    typed: &[(String, String)],
) -> PageResult {
    let view = couple::couple_view(&st.db, &ctx.actor, id)
        .await
        .map_err(|e| st.error(Some(ctx), e))?;
    let (title, partners) = match which {
        "screening" => (
            "孕前优生健康检查",
            vec![
                findings_fields(Partner::Wife, typed),
                findings_fields(Partner::Husband, typed),
            ],
        ),
        "premarital" => ("婚前医学检查", vec![findings_fields(partner, typed)]),
        _ => return Err(st.error(Some(ctx), ServiceError::NotFound("页面不存在"))),
    };
    st.page(
        status,
        "pages/couple_exam",
        Some(ctx),
        title,
        json!({"view": view, "which": which, "partner": partner.as_str(), "partner_label": partner.label_zh(),
               "partners": partners, "advice": couple::advice_choices(), "errors": errors,
               "exam_date": field(typed, "exam_date").unwrap_or_else(|| crate::ids::today_china().to_string()),
               "advice_typed": field(typed, "advice").unwrap_or_default(),
               "advice_reason": field(typed, "advice_reason").unwrap_or_default(),
               "today": crate::ids::today_china(), "rule_set": model::rules().name}),
    )
}

pub async fn record_exam(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let (id, which) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let form = form.into_inner();
    ctx.check_csrf(field(&form, "csrf_token").as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let partner = field(&form, "partner")
        .as_deref()
        .and_then(Partner::parse)
        .unwrap_or(Partner::Wife);
    let refuse = |errors: Vec<FieldError>| (StatusCode::UNPROCESSABLE_ENTITY, errors);
    let outcome = match which.as_str() {
        "screening" => {
            let wife = findings_from_form(&form, "wife");
            let husband = findings_from_form(&form, "husband");
            match (wife, husband) {
                (Ok(w), Ok(h)) => {
                    let input = PrepregnancyInput {
                        exam_date: field(&form, "exam_date"),
                        wife: w.unwrap_or_default(),
                        husband: h,
                    };
                    couple::record_prepregnancy(&st.db, &ctx.actor, id.clone(), input)
                        .await
                        .map(|e| format!("/couples/{id}/exams/{}/advice", e.exam.id))
                }
                (w, h) => Err(ServiceError::Invalid(
                    w.err()
                        .unwrap_or_default()
                        .into_iter()
                        .chain(h.err().unwrap_or_default())
                        .collect(),
                )),
            }
        }
        "premarital" => match findings_from_form(&form, partner.as_str()) {
            Ok(f) => {
                let input = PremaritalInput {
                    partner: Some(partner.as_str().to_string()),
                    exam_date: field(&form, "exam_date"),
                    findings: f.unwrap_or_default(),
                    advice: field(&form, "advice"),
                    advice_reason: field(&form, "advice_reason"),
                };
                couple::record_premarital(&st.db, &ctx.actor, id.clone(), input)
                    .await
                    .map(|e| format!("/couples/{id}/premarital/{}/certificate", e.id))
            }
            Err(errors) => Err(ServiceError::Invalid(errors)),
        },
        _ => return Err(st.error(Some(&ctx), ServiceError::NotFound("页面不存在"))),
    };
    match outcome {
        Ok(to) => Ok(see_other(&to)),
        Err(ServiceError::Invalid(errors)) => {
            let (status, errors) = refuse(errors);
            exam_form_with(&st, &ctx, id, &which, partner, status, errors, &form).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

/// The couple page's other forms, by `action`: `followup`, `register`, `decide`, `end`.
pub async fn action(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let id = path.into_inner();
    check_id(&st, &ctx, &id)?;
    let form = form.into_inner();
    ctx.check_csrf(field(&form, "csrf_token").as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let target = |what: &str| field(&form, what).filter(|v| crate::ids::is_id(v)).unwrap_or_default();
    let act = field(&form, "action").unwrap_or_default();
    let result = match act.as_str() {
        "followup" => couple::answer_followup(
            &st.db,
            &ctx.actor,
            id.clone(),
            target("followup_id"),
            FollowupInput {
                result: field(&form, "result"),
                done_on: field(&form, "done_on"),
                edd: field(&form, "edd"),
                note: field(&form, "note"),
            },
        )
        .await
        .map(|_| "followup".to_string()),
        "register" => match roster(&form) {
            Ok(children) => couple::register_birth(
                &st.db,
                &ctx.actor,
                id.clone(),
                RegistrationInput {
                    date: field(&form, "date"),
                    children,
                    remarriage: Some(field(&form, "remarriage").is_some()),
                },
            )
            .await
            .map(|r| format!("registered&registration={}", r.registration.id)),
            Err(errors) => Err(ServiceError::Invalid(errors)),
        },
        "decide" => couple::decide_registration(
            &st.db,
            &ctx.actor,
            id.clone(),
            target("registration_id"),
            DecisionInput {
                decision: field(&form, "decision"),
                decided_on: field(&form, "decided_on"),
            },
        )
        .await
        .map(|_| "decided".to_string()),
        "end" => couple::end_couple(
            &st.db,
            &ctx.actor,
            id.clone(),
            EndInput {
                ended_on: field(&form, "ended_on"),
                reason: field(&form, "reason"),
            },
        )
        .await
        .map(|_| "ended".to_string()),
        _ => Err(ServiceError::invalid("action", "unknown", "未知操作")),
    };
    match result {
        Ok(done) => Ok(see_other(&format!("/couples/{id}?done={done}"))),
        Err(ServiceError::Invalid(errors)) => {
            show_with(&st, &ctx, id, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

/// The registration form's child roster: rows `child{n}.born` with their flags.
fn roster(form: &[(String, String)]) -> Result<Vec<crate::policy::model::RosterChild>, Vec<FieldError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in 0..6 {
        let f = |k: &str| field(form, &format!("child{n}.{k}"));
        let Some(born) = f("born") else { continue };
        let Ok(born) = chrono::NaiveDate::parse_from_str(born.trim(), "%Y-%m-%d") else {
            errors.push(FieldError::new(
                &format!("child{n}.born"),
                "format",
                "出生日期格式应为 YYYY-MM-DD",
            ));
            continue;
        };
        let origin = f("origin").unwrap_or_else(|| "joint".into());
        let child = json!({
            "born": born,
            "joint": origin == "joint",
            "before_remarriage_of": match origin.as_str() { "wife" => json!("wife"), "husband" => json!("husband"), _ => Value::Null },
            "adopted": f("adopted").is_some(),
            "deceased": f("deceased").is_some(),
            "disabled_certified": f("disabled_certified").is_some(),
        });
        match serde_json::from_value(child) {
            Ok(c) => out.push(c),
            Err(e) => errors.push(FieldError::new(&format!("child{n}.born"), "format", e.to_string())),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// `POST /couples` from the person page: she is the wife; the husband is found by ID number or
/// registered.
pub async fn create(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let form = form.into_inner();
    ctx.check_csrf(field(&form, "csrf_token").as_deref())
        .map_err(|e| st.error(Some(&ctx), e))?;
    let wife_id = field(&form, "wife_id")
        .filter(|v| crate::ids::is_id(v))
        .unwrap_or_default();
    let input = CoupleInput {
        wife: PartnerRef {
            person_id: Some(wife_id.clone()),
            person: None,
        },
        husband: PartnerRef {
            person_id: None,
            person: Some(PersonInput {
                name: field(&form, "husband_name").unwrap_or_default(),
                id_number: field(&form, "husband_id_number"),
                sex: Some("male".into()),
                birth_date: field(&form, "husband_birth_date"),
                phone: field(&form, "husband_phone"),
                ..PersonInput::default()
            }),
        },
        marriage: MarriageInput {
            marriage_date: field(&form, "marriage_date"),
            marriage_cert_no: field(&form, "marriage_cert_no"),
            wife_remarriage: field(&form, "wife_remarriage").is_some(),
            husband_remarriage: field(&form, "husband_remarriage").is_some(),
            wife_province: field(&form, "wife_province"),
            husband_province: field(&form, "husband_province"),
        },
    };
    match couple::create_couple(&st.db, &ctx.actor, input).await {
        Ok(v) => Ok(see_other(&format!("/couples/{}", v.couple.id))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) if crate::ids::is_id(&wife_id) => {
            super::pages::person_page(
                &st,
                &ctx,
                wife_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Value::Null,
                super::pages::empty_booking(),
                Vec::new(),
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => Err(st.error(Some(&ctx), e)),
    }
}

/// The prints: `/couples/{id}/exams/{eid}/advice` (评估建议告知书),
/// `/couples/{id}/premarital/{pid}/certificate` (婚前医学检查证明),
/// `/couples/{id}/registrations/{rid}/print` (生育服务登记 + 母子健康手册, 多证合一).
pub async fn print(
    st: web::Data<AppState>,
    PageCtx(ctx): PageCtx,
    path: web::Path<(String, String, String, String)>,
) -> PageResult {
    let (id, kind, item, doc) = path.into_inner();
    check_id(&st, &ctx, &id)?;
    check_id(&st, &ctx, &item)?;
    let printed_on = crate::ids::today_china();
    match (kind.as_str(), doc.as_str()) {
        ("exams", "advice") => {
            let (view, exam) = couple::exam_view(&st.db, &ctx.actor, id, item)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            st.page(
                StatusCode::OK,
                "print/prepregnancy_advice",
                Some(&ctx),
                "孕前优生健康检查评估建议告知书",
                json!({"view": view, "exam": exam, "printed_on": printed_on}),
            )
        }
        ("premarital", "certificate") | ("registrations", "print") => {
            let view = couple::couple_view(&st.db, &ctx.actor, id)
                .await
                .map_err(|e| st.error(Some(&ctx), e))?;
            let not_found = || st.error(Some(&ctx), ServiceError::NotFound("没有找到该记录"));
            if kind == "premarital" {
                let exam = view
                    .premarital
                    .iter()
                    .find(|e| e.exam.id == item)
                    .ok_or_else(not_found)?
                    .clone();
                st.page(
                    StatusCode::OK,
                    "print/premarital_certificate",
                    Some(&ctx),
                    "婚前医学检查证明",
                    json!({"view": view, "exam": exam, "printed_on": printed_on}),
                )
            } else {
                let reg = view
                    .registrations
                    .iter()
                    .find(|r| r.registration.id == item)
                    .ok_or_else(not_found)?
                    .clone();
                st.page(
                    StatusCode::OK,
                    "print/birth_registration",
                    Some(&ctx),
                    "生育服务登记 · 母子健康手册",
                    json!({"view": view, "reg": reg, "printed_on": printed_on}),
                )
            }
        }
        _ => Err(st.error(Some(&ctx), ServiceError::NotFound("页面不存在"))),
    }
}

/// `/couples`: the before-pregnancy worklist.
pub async fn worklist(st: web::Data<AppState>, PageCtx(ctx): PageCtx) -> PageResult {
    let w = couple::worklist(&st.db, &ctx.actor)
        .await
        .map_err(|e| st.error(Some(&ctx), e))?;
    st.page(
        StatusCode::OK,
        "pages/couples",
        Some(&ctx),
        "婚前孕前保健与生育登记",
        json!({"w": w, "today": crate::ids::today_china()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_findings_form_becomes_the_model_s_findings_and_names_a_bad_number() {
        let f = findings_from_form(
            &pairs(&[
                ("wife.hb_g_l", "98"),
                ("wife.hbsag", "positive"),
                ("wife.diseases", "hypertension"),
                ("wife.diseases", "diabetes"),
                ("wife.smoking", "1"),
                ("wife.rh_negative", "no"),
                ("wife.note", ""),
                ("husband.hb_g_l", "150"),
            ]),
            "wife",
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.hb_g_l, Some(98.0));
        assert_eq!(f.hbsag, Some(crate::observations::model::TestResult::Positive));
        assert_eq!(f.diseases, vec!["hypertension", "diabetes"]);
        assert!(f.smoking);
        assert_eq!(f.rh_negative, Some(false));
        let bad = findings_from_form(&pairs(&[("husband.hb_g_l", "一百")]), "husband").unwrap_err();
        assert_eq!(bad[0].field, "husband.hb_g_l");
        assert_eq!(
            findings_from_form(&pairs(&[("wife.note", " ")]), "husband").unwrap(),
            None
        );
    }

    #[test]
    fn a_man_s_form_has_none_of_the_woman_s_items() {
        let man = findings_fields(Partner::Husband, &[]).to_string();
        for f in WOMAN_ONLY {
            assert!(!man.contains(&format!("\"{f}\"")), "{f}");
        }
        let woman = findings_fields(Partner::Wife, &pairs(&[("wife.hb_g_l", "101")])).to_string();
        assert!(woman.contains("\"value\":\"101\""), "what was typed is shown again");
        assert!(woman.contains("\"rubella_igg\"") && woman.contains("\"caesareans\""));
        assert!(woman.contains("\"birth_defect_child\"") && !man.contains("\"birth_defect_child\""));
    }
}
