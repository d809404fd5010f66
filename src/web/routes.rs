//! The JSON API's one access table (RELIABILITY.md 22, README "Roles"): every `/api` route with
//! its method and the roles it serves. [`super::configure`] builds the `/api` router from this
//! table and puts each route behind [`gate`]: without credentials the answer is 401, and a role
//! the entry does not list gets 403 before any handler runs, audited against the woman whose
//! record the `{id}` names (the target the service's own refusal would name). So a JSON route cannot
//! exist without an entry, and a handler never sees a caller its entry does not name
//! ([`super::context::ApiCtx`] only hands over the caller the gate let through).
//!
//! This is the first and coarser door. The services still decide jurisdiction, the facility's
//! level (grading needs a county-level facility), the referral side and the record's state, and
//! answer 403 / 409 themselves. The black-box matrix test (`tests/api/routes.rs`) walks this same
//! table: every role against every entry.
//!
//! Where README's role table is silent, the safer reading was chosen and is written next to the
//! role sets below.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::context::{self, ApiError};
use super::{AppState, api, child, couple, frail, referral, risk};
use crate::audit::service as audit;
use crate::auth::model::Role::{self, *};
use crate::error::{AuditTarget, ServiceError};
use crate::storage::Db;

/// The HTTP methods the JSON API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }

    pub(super) fn http(self) -> actix_web::http::Method {
        match self {
            Method::Get => actix_web::http::Method::GET,
            Method::Post => actix_web::http::Method::POST,
        }
    }
}

/// One JSON route: method, path pattern, who may call it.
pub struct ApiRoute {
    pub method: Method,
    /// The whole path pattern in actix syntax (`/api/persons/{id}`).
    pub path: &'static str,
    /// The roles the route serves; everyone else gets 403.
    pub roles: &'static [Role],
    /// The audit action of a refusal (`read`, `search`, `create`, `update`, `execute`).
    pub action: &'static str,
    /// What the route's `{id}` names (without an `{id}`: what the route touches), as the audit
    /// log names records: a refusal is audited against it.
    pub record: &'static str,
    pub(super) handler: fn() -> actix_web::Route,
}

impl ApiRoute {
    pub fn allows(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `GET /api/worklist`.
    pub fn label(&self) -> String {
        format!("{} {}", self.method.as_str(), self.path)
    }

    /// What a refusal is audited against: the target the service's own refusal would name for
    /// the record `{id}` names — her, so "who tried to open her record" (RELIABILITY.md 27, 28)
    /// finds the attempt; without an `{id}`, or for a record that does not exist, the route's
    /// record kind and the id as asked.
    async fn refusal_target(&self, db: &Db, id: Option<&str>) -> AuditTarget {
        let id = id.filter(|i| crate::ids::is_id(i)).map(str::to_string);
        let asked = AuditTarget {
            entity_type: self.record,
            entity_id: id.clone(),
            person_id: None,
        };
        let Some(id) = id else { return asked };
        let found = match self.record {
            "person" => Ok(Some(crate::identity::service::person_target(&id))),
            "audit_log" => Ok(Some(AuditTarget {
                entity_type: "audit_log",
                entity_id: None,
                person_id: Some(id),
            })),
            "pregnancy" => crate::pregnancy::service::refusal_target(db, id).await,
            "risk_case" => crate::risk::service::refusal_target(db, id, false).await,
            "risk_report" => crate::risk::service::refusal_target(db, id, true).await,
            "referral" => crate::referral::service::refusal_target(db, id).await,
            "child" => Ok(Some(crate::child::service::child_target(&id))),
            "frail_case" => crate::child::service::frail_refusal_target(db, id).await,
            "couple" => crate::couple::service::refusal_target(db, id).await,
            _ => Ok(None),
        };
        found.ok().flatten().unwrap_or(asked)
    }
}

/// The record kinds an `{id}` may name: the gate knows whose record each is.
pub const RECORD_KINDS: [&str; 9] = [
    "person",
    "couple",
    "child",
    "frail_case",
    "audit_log",
    "pregnancy",
    "risk_case",
    "risk_report",
    "referral",
];

/// The route a method and path pattern name, if any.
pub fn find(method: Method, path: &str) -> Option<&'static ApiRoute> {
    API.iter().find(|r| r.method == method && r.path == path)
}

/// Staff who find and open records of their area: the person and pregnancy pages, the worklist,
/// the boards, referral lists. Hospital systems read records through FHIR (masked, per
/// resource, audited) — these staff pages are not in README's list for them.
const RECORD_STAFF: &[Role] = &[Clinician, Registrar, ReferralCoordinator];
/// Lookups in one's area (`GET /api/persons`, ID numbers masked): the record staff and hospital
/// systems ("card reads and lookups for its facility's area").
const LOOKUP: &[Role] = &[Clinician, Registrar, ReferralCoordinator, HospitalSystem];
/// Card reads: who registers persons, and hospital systems' card-reader bridges.
const CARD_READERS: &[Role] = &[Clinician, Registrar, HospitalSystem];
/// The registration desk: registering a person by hand, booking a pregnancy. Hospital systems
/// register through card reads and FHIR `Patient` create (README is silent on this route for
/// them: the safer reading).
const DESK: &[Role] = &[Clinician, Registrar];
const CLINICIANS: &[Role] = &[Clinician];
/// High-risk reports: the case's clinicians send them, the district MCH institution's clinicians
/// and coordinators acknowledge them (the service tells which verb is whose).
const REPORTERS: &[Role] = &[Clinician, ReferralCoordinator];
/// Opening a referral: clinicians and coordinators. A hospital system answers referrals (README);
/// a referring hospital opens one with HL7 `REF^I12`, not here.
const REFERRERS: &[Role] = &[Clinician, ReferralCoordinator];
/// One referral: the record staff, and a hospital system for the referrals its facility is a
/// side of (the service decides which it may see).
const REFERRAL_READERS: &[Role] = &[Clinician, Registrar, ReferralCoordinator, HospitalSystem];
/// Acting on a referral: the staff who refer, and hospital systems answering for their facility.
const REFERRAL_ACTORS: &[Role] = &[Clinician, ReferralCoordinator, HospitalSystem];
/// Counts and response times per centre (no patient data): the record staff, and administrators,
/// who keep the directory of centres.
const MEASURES: &[Role] = &[Clinician, Registrar, ReferralCoordinator, Admin];
const AUDITORS: &[Role] = &[Auditor];
/// Routes that hold no patient data: the facility directory (as FHIR Organization/Location is
/// open to any token) and grading facts that are stored nowhere.
const EVERYONE: &[Role] = &Role::ALL;

macro_rules! route {
    ($method:ident $path:literal, $roles:expr, $action:literal on $record:literal => $handler:path) => {
        ApiRoute {
            method: Method::$method,
            path: $path,
            roles: $roles,
            action: $action,
            record: $record,
            handler: {
                fn handler() -> actix_web::Route {
                    web::to($handler)
                }
                handler
            },
        }
    };
}

/// Every JSON route, in the order the router tries them (a literal segment before an `{id}` in
/// the same place: `/api/referrals/board` before `/api/referrals/{id}`).
pub static API: &[ApiRoute] = &[
    route!(Post "/api/card-reads", CARD_READERS, "create" on "card_read" => api::card_read),
    route!(Get "/api/persons", LOOKUP, "search" on "person" => api::search_persons),
    route!(Post "/api/persons", DESK, "create" on "person" => api::register_person),
    route!(Get "/api/persons/{id}", RECORD_STAFF, "read" on "person" => api::person),
    route!(Post "/api/persons/{id}/pregnancies", DESK, "create" on "person" => api::book_pregnancy),
    route!(Post "/api/couples", DESK, "create" on "couple" => couple::api_create),
    route!(Get "/api/couples/worklist", RECORD_STAFF, "search" on "couple_worklist" => couple::api_worklist),
    route!(Get "/api/couples/{id}", RECORD_STAFF, "read" on "couple" => couple::api_show),
    route!(Post "/api/couples/{id}/premarital-exams", CLINICIANS, "create" on "couple" => couple::api_premarital),
    route!(Post "/api/couples/{id}/prepregnancy-exams", CLINICIANS, "create" on "couple" => couple::api_prepregnancy),
    route!(Post "/api/couples/{id}/followups/{followup}", CLINICIANS, "update" on "couple" => couple::api_followup),
    route!(Post "/api/couples/{id}/birth-registrations", DESK, "create" on "couple" => couple::api_register),
    route!(Post "/api/couples/{id}/birth-registrations/{registration}/decision", DESK, "update" on "couple" => couple::api_decide),
    route!(Post "/api/couples/{id}/end", DESK, "update" on "couple" => couple::api_end),
    route!(Get "/api/pregnancies/{id}", RECORD_STAFF, "read" on "pregnancy" => api::pregnancy),
    route!(Post "/api/pregnancies/{id}/visits", CLINICIANS, "create" on "pregnancy" => api::record_visit),
    route!(Post "/api/pregnancies/{id}/delivery", CLINICIANS, "create" on "pregnancy" => api::record_delivery),
    route!(Post "/api/pregnancies/{id}/risk/screen", CLINICIANS, "create" on "pregnancy" => risk::api_screen),
    route!(Post "/api/pregnancies/{id}/risk/grade", CLINICIANS, "create" on "pregnancy" => risk::api_grade),
    route!(Get "/api/children/{id}", RECORD_STAFF, "read" on "child" => child::api_show),
    route!(Post "/api/children/{id}/visits", CLINICIANS, "create" on "child" => child::api_visit),
    route!(Post "/api/children/{id}/vaccinations", CLINICIANS, "create" on "child" => child::api_vaccination),
    route!(Post "/api/children/{id}/services", CLINICIANS, "create" on "child" => child::api_service),
    route!(Post "/api/children/{id}/birth", CLINICIANS, "update" on "child" => child::api_birth),
    route!(Post "/api/children/{id}/certificate", CLINICIANS, "update" on "child" => child::api_certificate),
    route!(Post "/api/children/{id}/identity", DESK, "update" on "child" => child::api_identity),
    route!(Post "/api/children/{id}/frail", CLINICIANS, "create" on "child" => frail::api_open),
    route!(Get "/api/child/frail/board", RECORD_STAFF, "search" on "frail_board" => frail::api_board),
    route!(Get "/api/child/frail/{id}", RECORD_STAFF, "read" on "frail_case" => frail::api_case),
    route!(Post "/api/child/frail/{id}/actions", CLINICIANS, "update" on "frail_case" => frail::api_case_action),
    route!(Get "/api/worklist", RECORD_STAFF, "search" on "worklist" => api::worklist),
    route!(Post "/api/risk/evaluate", EVERYONE, "execute" on "risk_evaluation" => api::risk_evaluate),
    route!(Get "/api/risk/board", RECORD_STAFF, "search" on "risk_board" => risk::api_board),
    route!(Get "/api/risk/cases/{id}", RECORD_STAFF, "read" on "risk_case" => risk::api_case),
    route!(Post "/api/risk/cases/{id}/actions", CLINICIANS, "update" on "risk_case" => risk::api_case_action),
    route!(Post "/api/risk/reports/{id}/{action}", REPORTERS, "update" on "risk_report" => risk::api_report_action),
    route!(Get "/api/audit/persons/{id}", AUDITORS, "read" on "audit_log" => api::person_access_log),
    route!(Post "/api/referrals", REFERRERS, "create" on "referral" => referral::api_open),
    route!(Get "/api/referrals", RECORD_STAFF, "search" on "referral" => referral::api_list),
    route!(Get "/api/referrals/board", RECORD_STAFF, "search" on "referral_board" => referral::api_board),
    route!(Get "/api/referrals/measures", MEASURES, "read" on "referral_measures" => referral::api_measures),
    route!(Get "/api/referrals/{id}", REFERRAL_READERS, "read" on "referral" => referral::api_show),
    route!(Post "/api/referrals/{id}/{action}", REFERRAL_ACTORS, "update" on "referral" => referral::api_action),
    route!(Get "/api/facilities", EVERYONE, "read" on "facility" => referral::api_directory),
];

/// The door of every JSON route: who is calling, and does the route's entry name their role?
/// A refused role is audited (as the services audit their refusals) and answered 403 in the
/// JSON error shape; the caller let through is handed to the handler's [`context::ApiCtx`].
pub(super) async fn gate(
    route: &'static ApiRoute,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let ctx = match context::resolve(req.request()).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return Ok(req.error_response(ApiError(ServiceError::Unauthenticated))),
        Err(e) => return Ok(req.error_response(ApiError(e))),
    };
    context::record_actor(&ctx);
    if !route.allows(ctx.actor.role) {
        if let Some(st) = req.app_data::<web::Data<AppState>>() {
            let target = route.refusal_target(&st.db, req.match_info().get("id")).await;
            let detail = format!(
                "access refused: route not open to role {}: {}",
                ctx.actor.role.as_str(),
                route.label()
            );
            audit::record_refused(&st.db, &ctx.actor, route.action, Some(target), &detail).await;
        }
        tracing::info!(route = %route.label(), role = ctx.actor.role.as_str(), "JSON route refused to role");
        return Ok(req.error_response(ApiError(ServiceError::Forbidden {
            reason: format!("「{}」角色无权使用该接口", ctx.actor.role.label_zh()),
            target: None,
        })));
    }
    req.extensions_mut().insert(ctx);
    next.call(req).await
}

/// The matrix as a Markdown table (README "Roles" shows it; a test keeps the two equal).
pub fn matrix_markdown() -> String {
    let mut out = String::from("| method and path |");
    for role in Role::ALL {
        out.push_str(&format!(" `{}` |", role.as_str()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for r in API {
        out.push_str(&format!("| `{}` |", r.label()));
        for role in Role::ALL {
            out.push_str(if r.allows(role) { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `earlier` would take requests meant for `later` (the router tries routes in
    /// table order): same method, same number of segments, each segment equal or a `{…}`.
    fn shadows(earlier: &ApiRoute, later: &ApiRoute) -> bool {
        let a: Vec<&str> = earlier.path.split('/').collect();
        let b: Vec<&str> = later.path.split('/').collect();
        earlier.method == later.method
            && a.len() == b.len()
            && a.iter().zip(&b).all(|(x, y)| x == y || x.starts_with('{'))
    }

    #[test]
    fn every_route_is_under_api_named_once_serves_someone_and_is_not_shadowed() {
        for (i, r) in API.iter().enumerate() {
            assert!(r.path.starts_with("/api/"), "{}", r.label());
            assert!(!r.roles.is_empty(), "{}", r.label());
            if r.path.contains("{id}") {
                assert!(
                    RECORD_KINDS.contains(&r.record),
                    "{}: whose is {}?",
                    r.label(),
                    r.record
                );
            }
            assert!(
                matches!(r.action, "read" | "search" | "create" | "update" | "execute"),
                "{}",
                r.label()
            );
            for earlier in &API[..i] {
                assert!(
                    !shadows(earlier, r),
                    "{} comes after {}, which takes its requests",
                    r.label(),
                    earlier.label()
                );
            }
        }
    }

    /// The findings of the black-box probe: none of these may be granted to hospital systems
    /// (nor to administrators and auditors, who do not read clinical records).
    #[test]
    fn machine_tokens_and_non_clinical_roles_get_no_staff_page() {
        for path in [
            "/api/worklist",
            "/api/risk/board",
            "/api/child/frail/board",
            "/api/referrals/board",
            "/api/referrals/measures",
            "/api/persons/{id}",
            "/api/pregnancies/{id}",
        ] {
            let r = find(Method::Get, path).expect("declared");
            assert!(!r.allows(HospitalSystem), "{path}");
            assert!(!r.allows(Auditor), "{path}");
        }
        for r in API
            .iter()
            .filter(|r| r.path.contains("/persons/{id}") || r.path.contains("/pregnancies/"))
        {
            assert!(!r.allows(Admin), "{}", r.label());
            if r.path != "/api/audit/persons/{id}" {
                assert!(!r.allows(Auditor), "{}", r.label());
            }
        }
    }

    #[test]
    fn the_readme_shows_this_matrix() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&matrix_markdown()),
            "README.md \"Roles\" must show the route table as it is:\n{}",
            matrix_markdown()
        );
    }
}
