//! The `/fhir` routes: bearer-token authentication, content types (JSON only), headers (ETag,
//! Location, Last-Modified), and each request run as one [`Op`] in the group-commit writer.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::outcome::{FHIR_JSON, FhirError};
use super::{Answer, Op, bundle, capability, execute};
use crate::auth::model::Actor;
use crate::web::AppState;

/// Largest request body (a transaction Bundle of a pregnancy's records fits many times over).
const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/fhir")
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/metadata", web::get().to(metadata))
            .route("", web::post().to(post_bundle))
            .route("/", web::post().to(post_bundle))
            .route("/{ty}", web::get().to(search))
            .route("/{ty}", web::post().to(create))
            .route("/{ty}/_search", web::post().to(search_post))
            .route("/{ty}/{id}", web::get().to(read))
            .route("/{ty}/{id}", web::put().to(update))
            .route("/{ty}/{id}/$everything", web::get().to(everything))
            .route("/{ty}/{id}/_history", web::get().to(history))
            .route("/{ty}/{id}/_history/{vid}", web::get().to(vread))
            .default_service(web::to(unsupported)),
    );
}

/// The base URL links and full URLs are built on.
fn base(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}/fhir", info.scheme(), info.host())
}

/// Refuse a client that will not take JSON (FHIR XML and RDF are not offered).
fn check_accept(req: &HttpRequest) -> Result<(), FhirError> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let ok = accept.split(',').any(|a| {
        let m = a.split(';').next().unwrap_or("").trim();
        matches!(
            m,
            "*/*" | "application/*" | "application/fhir+json" | "application/json" | ""
        )
    });
    let format_ok = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| {
            q.iter()
                .filter(|(k, _)| k == "_format")
                .all(|(_, v)| matches!(v.as_str(), "json" | "application/fhir+json" | "application/json"))
        })
        .unwrap_or(true);
    if ok && format_ok {
        Ok(())
    } else {
        Err(FhirError::new(
            406,
            "not-supported",
            "only application/fhir+json is offered",
        ))
    }
}

/// A write's body must be FHIR JSON (RELIABILITY.md 21), and parse.
fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Value, FhirError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !matches!(mime.as_str(), "application/fhir+json" | "application/json") {
        return Err(FhirError::new(
            415,
            "not-supported",
            format!(
                "Content-Type must be application/fhir+json (got {})",
                if ct.is_empty() { "none" } else { ct }
            ),
        ));
    }
    serde_json::from_slice(body).map_err(|e| FhirError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The caller: a bearer token issued with `mch-chain token issue` (hospital system or auditor).
async fn actor(st: &AppState, req: &HttpRequest) -> Result<Actor, FhirError> {
    let unauth = || {
        FhirError::new(
            401,
            "login",
            "a bearer token is required (Authorization: Bearer <token from mch-chain token issue>)",
        )
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(unauth)?;
    let addr = st.client_addr(req);
    let actor = crate::auth::service::token_actor(&st.db, token, addr)
        .await?
        .ok_or_else(unauth)?;
    tracing::Span::current().record("actor", actor.name.as_str());
    Ok(actor)
}

/// The answer as HTTP. A write answered to `Prefer: return=OperationOutcome` carries its
/// OperationOutcome (the warnings of what was kept but not used) instead of the resource.
fn respond(a: Answer, want_outcome: bool) -> HttpResponse {
    let mut b =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(a.status).unwrap_or(actix_web::http::StatusCode::OK));
    b.content_type(FHIR_JSON);
    if let Some(e) = &a.etag {
        b.insert_header((header::ETAG, e.as_str()));
    }
    if let Some(l) = &a.location {
        b.insert_header((header::LOCATION, l.as_str()));
        if a.status == 201 {
            b.insert_header((header::CONTENT_LOCATION, l.as_str()));
        }
    }
    if let Some(t) = a.last_modified {
        b.insert_header((
            header::LAST_MODIFIED,
            t.and_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ));
    }
    if want_outcome && a.location.is_some() {
        return b.body(a.outcome().to_string());
    }
    b.body(a.body.to_string())
}

/// Run one interaction: a create or update in the writer (its audit rows commit with it), a read
/// or search on a pooled connection with its audit rows appended by the writer before the answer.
/// A refusal for lack of access, or by a rule whose refusals are audited
/// ([`FhirError::audited_refusal`]), is audited in a commit of its own. A conditional create that
/// lost a race with another instance (the unique key refused it) is run once more and finds the
/// winner.
async fn run(st: &AppState, req: &HttpRequest, actor: Actor, op: Op) -> Result<HttpResponse, FhirError> {
    let base = base(req);
    let want_outcome = prefers(req, "return=OperationOutcome");
    let action = op.audit_action();
    let conditional = matches!(
        &op,
        Op::Create {
            if_none_exist: Some(_),
            ..
        }
    );
    let attempt = |op: Op, actor: Actor, base: String| async move {
        let a2 = actor.clone();
        let r = if op.read_only() {
            crate::audit::service::read_audited(&st.db, move |c| execute(c, &a2, &base, &op)).await
        } else {
            st.db.write(move |c| execute(c, &a2, &base, &op)).await
        };
        if let Err(e) = &r
            && let Some(detail) = e.audited_refusal()
        {
            crate::audit::service::record_refused(&st.db, &actor, action, e.denied.clone(), &detail).await;
        }
        r
    };
    match attempt(op.clone(), actor.clone(), base.clone()).await {
        Err(e) if conditional && e.status == 409 => attempt(op, actor, base).await.map(|a| respond(a, want_outcome)),
        r => r.map(|a| respond(a, want_outcome)),
    }
}

fn lenient(req: &HttpRequest) -> bool {
    prefers(req, "handling=lenient")
}

/// Whether a `Prefer` header asks for this preference.
fn prefers(req: &HttpRequest, preference: &str) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(preference)))
}

/// A header's text; one that is present but not UTF-8 is refused, never taken as absent (an
/// unreadable If-None-Exist must not turn a conditional create into a plain one).
fn header_text(req: &HttpRequest, name: &str) -> Result<Option<String>, FhirError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.to_string()))
            .map_err(|_| FhirError::bad_request(format!("the {name} header is not valid UTF-8"))),
    }
}

async fn metadata(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    Ok(HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .body(capability::statement(&base(&req)).to_string()))
}

async fn search(st: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let pairs = super::query_pairs(req.query_string())?;
    let op = Op::Search {
        ty: path.into_inner(),
        pairs,
        lenient: lenient(&req),
    };
    run(&st, &req, actor, op).await
}

/// `POST [type]/_search` with form-encoded parameters.
async fn search_post(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let ct = header_text(&req, "content-type")?.unwrap_or_default();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(FhirError::new(
            415,
            "not-supported",
            "POST _search takes application/x-www-form-urlencoded parameters",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| FhirError::bad_request("the parameters are not UTF-8"))?;
    let mut pairs = super::query_pairs(req.query_string())?;
    pairs.extend(super::query_pairs(text)?);
    let op = Op::Search {
        ty: path.into_inner(),
        pairs,
        lenient: lenient(&req),
    };
    run(&st, &req, actor, op).await
}

async fn read(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let (ty, id) = path.into_inner();
    run(&st, &req, actor, Op::Read { ty, id }).await
}

async fn vread(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let (ty, id, version) = path.into_inner();
    run(&st, &req, actor, Op::VRead { ty, id, version }).await
}

async fn history(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let (ty, id) = path.into_inner();
    run(&st, &req, actor, Op::History { ty, id }).await
}

async fn everything(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let (ty, id) = path.into_inner();
    if !req.query_string().is_empty() {
        return Err(FhirError::bad_request(
            "$everything takes no parameters here (start, end, _since, _type are not supported)",
        ));
    }
    run(&st, &req, actor, Op::Everything { ty, id }).await
}

async fn create(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let body = json_body(&req, &body)?;
    let op = Op::Create {
        ty: path.into_inner(),
        body,
        if_none_exist: header_text(&req, "if-none-exist")?,
    };
    run(&st, &req, actor, op).await
}

async fn update(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let body = json_body(&req, &body)?;
    let (ty, id) = path.into_inner();
    let op = Op::Update {
        ty,
        id,
        body,
        if_match: header_text(&req, "if-match")?,
    };
    run(&st, &req, actor, op).await
}

async fn post_bundle(st: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, FhirError> {
    check_accept(&req)?;
    let actor = actor(&st, &req).await?;
    let bundle = json_body(&req, &body)?;
    let base = base(&req);
    let a2 = actor.clone();
    let r = st.db.write(move |c| bundle::run(c, &a2, &base, &bundle)).await;
    match r {
        Ok(v) => Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(v.to_string())),
        Err(e) => {
            if let Some(detail) = e.audited_refusal() {
                crate::audit::service::record_refused(&st.db, &actor, "transaction", e.denied.clone(), &detail).await;
            }
            Err(e)
        }
    }
}

async fn unsupported(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&unsupported_error(&req))
}

fn unsupported_error(req: &HttpRequest) -> FhirError {
    match *req.method() {
        actix_web::http::Method::DELETE | actix_web::http::Method::PATCH => FhirError::not_supported(
            405,
            format!(
                "{} is not supported: records are corrected, never deleted or patched",
                req.method()
            ),
        ),
        _ => FhirError::not_found(format!(
            "{} {} is not a FHIR interaction this server offers (see /fhir/metadata)",
            req.method(),
            req.path()
        )),
    }
}
