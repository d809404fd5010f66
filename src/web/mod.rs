//! The web adapter: actix app, middleware, the doctors' pages and the JSON API.
//! Handlers translate HTTP into service calls and service results into pages or JSON; they hold
//! no rules of their own.

mod admin;
mod api;
mod charts;
mod child;
mod context;
mod couple;
mod frail;
mod hl7;
mod pages;
mod referral;
mod risk;
pub mod routes;
mod templates;

use std::net::TcpListener;

use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use handlebars::Handlebars;
use tracing::Instrument;

use crate::storage::Db;

pub use context::{Ctx, SESSION_COOKIE};

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub templates: Handlebars<'static>,
    /// The login throttle's base delay (`MCH_LOGIN_BASE_DELAY_SECS`).
    pub login_policy: crate::auth::model::LoginPolicy,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`MCH_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AppState {
    /// The client's address: the TCP peer, or, when the peer is a trusted reverse proxy, the
    /// address `X-Forwarded-For` gives (see [`forwarded_client`]). Login throttling and the audit
    /// log key on it.
    pub fn client_addr(&self, req: &actix_web::HttpRequest) -> Option<String> {
        let peer = req.peer_addr()?.ip();
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        Some(forwarded_client(peer, &forwarded, &self.trusted_proxies).to_string())
    }
}

/// The client behind a chain of proxies: walking `X-Forwarded-For` (all its header lines, in
/// order) from the right, the first address that is not a trusted proxy. Only a trusted peer's
/// header is believed (anyone else may write anything there), and an entry that is not an
/// address ends the walk at the last trusted hop, so a client cannot choose its address.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    x_forwarded_for: &[&str],
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = x_forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// Refuse state-changing requests sent from another site (RELIABILITY.md 23): a foreign `Origin`
/// or `Sec-Fetch-Site: cross-site` gets 403 before any handler runs. CSRF tokens are checked in
/// addition by the handlers of cookie-authenticated requests.
async fn same_origin_only(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let unsafe_method = !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD | actix_web::http::Method::OPTIONS
    );
    if unsafe_method {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let fetch_site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
        // Browsers send Fetch Metadata; trust it first. Without it, a present Origin must be ours.
        // Clients that send neither (hospital systems, card-reader bridges) are not browsers and
        // cannot be driven by another site; cookie sessions still need the CSRF token.
        let allowed = match (fetch_site, origin) {
            (Some(site), _) => matches!(site, "same-origin" | "none"),
            (None, Some(o)) => o.split_once("://").is_some_and(|(_, h)| h == host),
            (None, None) => true,
        };
        if !allowed {
            tracing::warn!(path = %req.path(), "cross-site state-changing request refused");
            let res = HttpResponse::Forbidden()
                .content_type("text/plain; charset=utf-8")
                .body("跨站请求被拒绝 (cross-site request refused)");
            return Ok(req.into_response(res));
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// One span per request with a request id, the method and the route pattern (never the query
/// string, which may hold a name or ID number), and one log line at the end with status, actor
/// and latency (RELIABILITY.md 25).
async fn request_log(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("http", request_id = %uuid::Uuid::new_v4(), method = %req.method(), route = %route, actor = tracing::field::Empty);
    let res = next.call(req).instrument(span.clone()).await;
    let _g = span.enter();
    match &res {
        Ok(r) => tracing::info!(
            status = r.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        ),
        Err(e) => {
            tracing::warn!(error = %e, latency_ms = started.elapsed().as_secs_f64() * 1000.0, "request failed")
        }
    }
    res
}

/// Security headers on every response (RELIABILITY.md 26).
/// A field refused for stating fetal sex is not shown again on the re-rendered form, not even to
/// the one who typed it (RULES.md §9.1: never displayed); its error says why it is empty.
fn refused_for_fetal_sex(errors: &[crate::error::FieldError], field: &str) -> bool {
    errors
        .iter()
        .any(|e| e.field == field && e.code == crate::privacy::service::FETAL_SEX)
}

/// The typed form values to show again after a refusal (see [`refused_for_fetal_sex`]).
pub(super) fn forget_refused(typed: &[(String, String)], errors: &[crate::error::FieldError]) -> Vec<(String, String)> {
    typed
        .iter()
        .filter(|(k, _)| !refused_for_fetal_sex(errors, k))
        .cloned()
        .collect()
}

/// [`forget_refused`] for a form held as a JSON object of typed values.
pub(super) fn forget_refused_in(form: &mut serde_json::Value, errors: &[crate::error::FieldError]) {
    if let Some(obj) = form.as_object_mut() {
        for (k, v) in obj.iter_mut() {
            if refused_for_fetal_sex(errors, k) {
                *v = serde_json::Value::String(String::new());
            }
        }
    }
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=()"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(pages::healthz))
        .route("/static/{file}", web::get().to(pages::static_file))
        .route("/login", web::get().to(pages::login_form))
        .route("/login", web::post().to(pages::login))
        .route("/logout", web::post().to(pages::logout))
        .route("/", web::get().to(pages::home))
        .route("/persons", web::get().to(pages::persons))
        .route("/persons", web::post().to(pages::register_person))
        .route("/persons/{id}", web::get().to(pages::person))
        .route("/persons/{id}/pregnancies", web::post().to(pages::book_pregnancy))
        .route("/pregnancies/{id}", web::get().to(pages::pregnancy))
        .route("/pregnancies/{id}/visits/new", web::get().to(pages::new_visit_form))
        .route("/pregnancies/{id}/visits", web::post().to(pages::record_visit))
        .route("/pregnancies/{id}/delivery", web::post().to(pages::record_delivery))
        .route("/audit", web::get().to(pages::audit))
        .route("/hl7/messages", web::get().to(hl7::messages))
        .route("/hl7/messages/{id}", web::get().to(hl7::message))
        .route("/hl7/messages/{id}/replay", web::post().to(hl7::replay))
        .route("/hl7/outbox", web::get().to(hl7::outbox))
        .route("/hl7/outbox/{id}", web::get().to(hl7::outbox_message))
        .route("/hl7/outbox/{id}/replay", web::post().to(hl7::outbox_replay))
        .route("/pregnancies/{id}/risk/screen", web::get().to(risk::screening_form))
        .route("/pregnancies/{id}/risk/screen", web::post().to(risk::screen))
        .route("/pregnancies/{id}/risk/grade", web::get().to(risk::grading_form))
        .route("/pregnancies/{id}/risk/grade", web::post().to(risk::grade))
        .route("/risk/board", web::get().to(risk::board))
        .route("/risk/cases/{id}", web::get().to(risk::case_page))
        .route("/risk/cases/{id}", web::post().to(risk::case_action))
        .route("/risk/cases/{id}/card", web::get().to(risk::print_case_card))
        .route("/risk/cases/{id}/reports/{report}", web::get().to(risk::print_report))
        .route("/risk/reports/{id}/{action}", web::post().to(risk::report_action))
        .route("/referrals", web::get().to(referral::list))
        .route("/referrals", web::post().to(referral::create))
        .route("/referrals/new", web::get().to(referral::new_form))
        .route("/referrals/board", web::get().to(referral::board))
        .route("/referrals/board/stream", web::get().to(referral::board_stream))
        .route("/referrals/measures", web::get().to(referral::measures))
        .route("/referrals/scan/{token}", web::get().to(referral::scan))
        .route("/referrals/{id}", web::get().to(referral::show))
        .route("/referrals/{id}/{doc}", web::get().to(referral::print))
        .route("/referrals/{id}/{action}", web::post().to(referral::action))
        .route("/facilities", web::get().to(referral::directory))
        .route("/facilities/{id}", web::post().to(referral::update_facility))
        .route("/child/frail/board", web::get().to(frail::board))
        .route("/child/frail/{id}", web::get().to(frail::case_page))
        .route("/child/frail/{id}", web::post().to(frail::case_action))
        .route("/children/{id}", web::get().to(child::show))
        .route("/children/{id}/visits/new", web::get().to(child::new_visit))
        .route("/children/{id}/visits", web::post().to(child::record_visit))
        .route("/children/{id}/print", web::get().to(child::print))
        .route("/children/{id}/{action}", web::post().to(child::action))
        .route("/couples", web::get().to(couple::worklist))
        .route("/couples", web::post().to(couple::create))
        .route("/couples/{id}", web::get().to(couple::show))
        .route("/couples/{id}", web::post().to(couple::action))
        .route("/couples/{id}/{which}", web::get().to(couple::exam_form))
        .route("/couples/{id}/{which}", web::post().to(couple::record_exam))
        .route("/couples/{id}/{kind}/{item}/{doc}", web::get().to(couple::print))
        .route("/admin/login-locks", web::get().to(admin::login_locks))
        .route("/admin/login-locks/clear", web::post().to(admin::clear_login_locks))
        .service(api_scope())
        .default_service(web::to(pages::not_found));
}

/// `/api`, built from the one access table ([`routes::API`]): each route behind its gate, so no
/// JSON route exists without an entry naming the roles it serves.
fn api_scope() -> actix_web::Scope {
    let mut scope = web::scope("/api");
    for route in routes::API {
        scope = scope.service(
            web::resource(route.path.strip_prefix("/api").unwrap_or(route.path))
                .guard(actix_web::guard::Method(route.method.http()))
                .wrap(from_fn(
                    move |req: actix_web::dev::ServiceRequest, next: Next<actix_web::body::BoxBody>| {
                        routes::gate(route, req, next)
                    },
                ))
                .route((route.handler)()),
        );
    }
    scope.default_service(web::to(api::not_found))
}

/// What the HTTP server is started with (read from the settings by the composition root).
pub struct ServerOptions {
    /// Worker threads (None: one per core).
    pub workers: Option<usize>,
    pub login_policy: crate::auth::model::LoginPolicy,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Build the HTTP server on a bound listener.
pub fn server(listener: TcpListener, db: Db, options: ServerOptions) -> anyhow::Result<Server> {
    let workers = options.workers;
    let state = web::Data::new(AppState {
        db,
        templates: templates::registry()?,
        login_policy: options.login_policy,
        trusted_proxies: options.trusted_proxies,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .app_data(
                web::JsonConfig::default()
                    .limit(256 * 1024)
                    .error_handler(api::json_error),
            )
            .wrap(from_fn(same_origin_only))
            .wrap(security_headers())
            .wrap(from_fn(request_log))
            .configure(crate::fhir::configure)
            .configure(configure)
    })
    .listen(listener)?;
    if let Some(w) = workers {
        server = server.workers(w.max(1));
    }
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy = ip("127.0.0.1");
        let trusted = [proxy, ip("192.0.2.10")];
        // Not a trusted peer: its header is ignored.
        assert_eq!(
            forwarded_client(ip("198.51.100.4"), &["203.0.113.9"], &trusted),
            ip("198.51.100.4")
        );
        // The proxy names the client; what the client itself sent in front is ignored.
        assert_eq!(forwarded_client(proxy, &["203.0.113.9"], &trusted), ip("203.0.113.9"));
        assert_eq!(
            forwarded_client(proxy, &["1.2.3.4, 203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            forwarded_client(proxy, &["1.2.3.4", "203.0.113.9, 192.0.2.10"], &trusted),
            ip("203.0.113.9")
        );
        // No header, or garbage at the end: the last trusted hop.
        assert_eq!(forwarded_client(proxy, &[], &trusted), proxy);
        assert_eq!(forwarded_client(proxy, &["203.0.113.9, unknown"], &trusted), proxy);
        assert_eq!(forwarded_client(proxy, &["203.0.113.9", "192.0.2.10"], &[]), proxy);
    }
}
