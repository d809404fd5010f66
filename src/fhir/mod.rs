//! The FHIR R4 adapter (`/fhir`): hospital systems look a woman up, pull her pregnancy, push
//! results and follow referrals as FHIR JSON. It only translates: every read and write goes
//! through the features' services, so a FHIR write passes the same validation, grading and audit
//! as the pages and HL7. The mapping of each resource to our records, the search parameters and
//! the referral state mapping are in `src/fhir/README.md`.
//!
//! Every interaction is one [`Op`] run by [`execute`] on a connection inside the group-commit
//! writer, with its audit rows in the same transaction (RELIABILITY.md 29); a transaction Bundle
//! runs all its entries in one such transaction (`bundle.rs`).

mod bundle;
mod capability;
mod http;
pub mod json;
pub mod outcome;
pub mod search;

mod pathway;
// One module per resource type (or pair of types over one record), each implementing [`Kind`],
// listed in `with_kind!` and `TYPES` below.
mod audit_event;
mod child_visit;
mod clinical;
mod condition;
mod encounter;
mod episode_of_care;
mod facility;
mod flag;
mod immunization;
mod observation;
mod patient;
mod prepregnancy;
mod referral;
mod related_person;
mod risk_assessment;
mod terms;

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use crate::auth::model::Actor;
use crate::storage::AnyConnection;
pub use http::configure;
pub use outcome::FhirError;
use search::{ParamDef, Query};

/// Whether a string is a valid FHIR id (`[A-Za-z0-9\-\.]{1,64}`) — checked before any lookup, so
/// path and parameter payloads never reach a query as ids.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A resource as held now or at one version: its content without `resourceType`, `id` and `meta`
/// (added by [`Res::to_json`]), and what the meta says.
#[derive(Debug, Clone)]
pub struct Res {
    pub id: String,
    pub version: i32,
    pub last_updated: NaiveDateTime,
    pub body: Value,
    /// The patient it concerns (for `_include` and `$everything`).
    pub patient: Option<String>,
}

impl Res {
    pub fn to_json(&self, resource_type: &str) -> Value {
        let mut v = match &self.body {
            Value::Object(m) => Value::Object(m.clone()),
            _ => json!({}),
        };
        v["resourceType"] = json!(resource_type);
        v["id"] = json!(self.id);
        v["meta"] = json!({
            "versionId": self.version.to_string(),
            "lastUpdated": json::instant(self.last_updated),
        });
        v
    }

    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// A resource just written, with what of the document was kept but not used: the warnings of
/// the OperationOutcome a client gets with `Prefer: return=OperationOutcome`, or in its Bundle
/// entry's `response.outcome` (README.md "Accepting what is valid").
pub struct Written {
    pub res: Res,
    pub warnings: Vec<outcome::Issue>,
}

impl From<Res> for Written {
    fn from(res: Res) -> Written {
        Written {
            res,
            warnings: Vec::new(),
        }
    }
}

/// A page of search matches and how many match in all.
pub struct Page {
    pub matches: Vec<Res>,
    pub total: i64,
}

/// What one resource type supports. The defaults refuse, so a type offers only what it
/// implements — and the CapabilityStatement says exactly that.
pub trait Kind {
    const TYPE: &'static str;
    const PARAMS: &'static [ParamDef];
    const INCLUDES: &'static [&'static str] = &[];
    /// Which interactions the type offers (for the CapabilityStatement).
    const CREATE: bool = false;
    const UPDATE: bool = false;
    /// Whether earlier versions are kept (vread of an older version, `_history` of every change).
    const VERSIONED: bool = false;
    /// How we map it, one line for the CapabilityStatement.
    const DOC: &'static str;

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError>;

    fn history(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Vec<Res>, FhirError> {
        Ok(vec![Self::read(c, actor, id)?])
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError>;

    fn create(_c: &mut AnyConnection, _actor: &Actor, _body: &Value) -> Result<Written, FhirError> {
        Err(FhirError::not_supported(
            405,
            format!("{} cannot be created through this interface", Self::TYPE),
        ))
    }

    fn update(
        _c: &mut AnyConnection,
        _actor: &Actor,
        _id: &str,
        _body: &Value,
        _version: i32,
    ) -> Result<Written, FhirError> {
        Err(FhirError::not_supported(
            405,
            format!("{} cannot be updated through this interface", Self::TYPE),
        ))
    }

    /// Everything of this type about one patient (optionally one pregnancy), for `$everything`.
    fn for_patient(
        _c: &mut AnyConnection,
        _actor: &Actor,
        _person_id: &str,
        _pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(Vec::new())
    }

    /// What `$everything` takes from this type: its [`Kind::for_patient`] resources, plus
    /// resources of other types carried by the same records (a visit's vital signs are
    /// Observations), each with its type.
    fn everything(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<(&'static str, Res)>, FhirError> {
        Ok(Self::for_patient(c, actor, person_id, pregnancy_id)?
            .into_iter()
            .map(|r| (Self::TYPE, r))
            .collect())
    }
}

/// Run `$body` with `$k` bound to the [`Kind`] of a resource type name; unknown types are refused.
macro_rules! with_kind {
    ($ty:expr, $k:ident => $body:expr) => {
        match $ty {
            "Patient" => {
                type $k = $crate::fhir::patient::PatientKind;
                $body
            }
            "RelatedPerson" => {
                type $k = $crate::fhir::related_person::RelatedPersonKind;
                $body
            }
            "EpisodeOfCare" => {
                type $k = $crate::fhir::episode_of_care::EpisodeOfCareKind;
                $body
            }
            "Encounter" => {
                type $k = $crate::fhir::encounter::EncounterKind;
                $body
            }
            "RiskAssessment" => {
                type $k = $crate::fhir::risk_assessment::RiskAssessmentKind;
                $body
            }
            "Flag" => {
                type $k = $crate::fhir::flag::FlagKind;
                $body
            }
            "ServiceRequest" => {
                type $k = $crate::fhir::referral::ServiceRequestKind;
                $body
            }
            "Task" => {
                type $k = $crate::fhir::referral::TaskKind;
                $body
            }
            "Organization" => {
                type $k = $crate::fhir::facility::OrganizationKind;
                $body
            }
            "Location" => {
                type $k = $crate::fhir::facility::LocationKind;
                $body
            }
            "AuditEvent" => {
                type $k = $crate::fhir::audit_event::AuditEventKind;
                $body
            }
            "Observation" => {
                type $k = $crate::fhir::observation::ObservationKind;
                $body
            }
            "Condition" => {
                type $k = $crate::fhir::condition::ConditionKind;
                $body
            }
            "Immunization" => {
                type $k = $crate::fhir::immunization::ImmunizationKind;
                $body
            }
            _ => Err(FhirError::not_found(format!(
                "resource type {} is not supported here (see /fhir/metadata)",
                $ty
            ))),
        }
    };
}
pub(crate) use with_kind;

/// The resource types served, in CapabilityStatement order.
pub const TYPES: &[&str] = &[
    "Patient",
    "RelatedPerson",
    "EpisodeOfCare",
    "Encounter",
    "Observation",
    "Condition",
    "RiskAssessment",
    "Flag",
    "ServiceRequest",
    "Task",
    "Immunization",
    "Organization",
    "Location",
    "AuditEvent",
];

/// One FHIR interaction.
#[derive(Debug, Clone)]
pub enum Op {
    Read {
        ty: String,
        id: String,
    },
    VRead {
        ty: String,
        id: String,
        version: String,
    },
    History {
        ty: String,
        id: String,
    },
    Search {
        ty: String,
        pairs: Vec<(String, String)>,
        lenient: bool,
    },
    Create {
        ty: String,
        body: Value,
        if_none_exist: Option<String>,
    },
    Update {
        ty: String,
        id: String,
        body: Value,
        if_match: Option<String>,
    },
    Everything {
        ty: String,
        id: String,
    },
}

impl Op {
    /// The audit action the interaction is (for a refusal audited on its own).
    pub fn audit_action(&self) -> &'static str {
        match self {
            Op::Read { .. } | Op::VRead { .. } | Op::History { .. } | Op::Everything { .. } => "read",
            Op::Search { .. } => "search",
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
        }
    }

    /// Whether the interaction only reads (its only writes are audit rows): it may run on a
    /// pooled connection with its audit appended by the writer (`audit::service::read_audited`).
    pub fn read_only(&self) -> bool {
        !matches!(self, Op::Create { .. } | Op::Update { .. })
    }
}

/// What an interaction answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// `Type/id/_history/v` of a created or updated resource.
    pub location: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<NaiveDateTime>,
    /// What a write kept but did not use (see [`Written`]).
    pub warnings: Vec<outcome::Issue>,
}

impl Answer {
    fn resource(status: u16, ty: &str, r: &Res, location: bool) -> Answer {
        Answer {
            status,
            body: r.to_json(ty),
            location: location.then(|| format!("{ty}/{}/_history/{}", r.id, r.version)),
            etag: Some(r.etag()),
            last_modified: Some(r.last_updated),
            warnings: Vec::new(),
        }
    }

    /// A Bundle answered with 200 (search, history, `$everything`).
    fn bundle(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            location: None,
            etag: None,
            last_modified: None,
            warnings: Vec::new(),
        }
    }

    fn written(status: u16, ty: &str, w: Written) -> Answer {
        Answer {
            warnings: w.warnings,
            ..Answer::resource(status, ty, &w.res, true)
        }
    }

    /// The OperationOutcome of a write: its warnings, or that it was done.
    pub fn outcome(&self) -> Value {
        let done = [outcome::Issue {
            severity: "information",
            code: "informational",
            diagnostics: format!(
                "{} {}",
                self.location.as_deref().unwrap_or_default(),
                // 200: an update, or a conditional create that found her already registered.
                if self.status == 201 { "created" } else { "accepted" }
            ),
            expression: None,
        }];
        outcome::outcome_json(if self.warnings.is_empty() {
            &done
        } else {
            &self.warnings
        })
    }
}

fn check_id(id: &str) -> Result<(), FhirError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(FhirError::bad_request("not a valid FHIR id ([A-Za-z0-9-.]{1,64})").at("id"))
    }
}

/// A body's `id` must agree with the URL on update and is not allowed on create (the server
/// assigns ids); `meta` from the client is ignored either way (RELIABILITY.md 18).
fn check_body_id(body: &Value, ty: &str, url_id: Option<&str>) -> Result<(), FhirError> {
    let body_id = body.get("id").and_then(Value::as_str);
    match (url_id, body_id) {
        (Some(u), Some(b)) if u != b => Err(FhirError::bad_request(format!(
            "{ty}.id ({b}) does not match the id in the URL ({u})"
        ))
        .at(format!("{ty}.id"))),
        (Some(_), None) => Err(FhirError::bad_request(format!("{ty}.id is required on update")).at(format!("{ty}.id"))),
        _ => Ok(()),
    }
}

/// The version an `If-Match` header asks for (`W/"3"`, `"3"` or `3`).
pub fn parse_if_match(h: &str) -> Result<i32, FhirError> {
    let v = h.trim().trim_start_matches("W/").trim_matches('"');
    v.parse::<i32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| FhirError::bad_request(format!("If-Match must be a version ETag such as W/\"3\" (got {h})")))
}

/// Run one interaction inside the caller's transaction.
pub fn execute(c: &mut AnyConnection, actor: &Actor, base: &str, op: &Op) -> Result<Answer, FhirError> {
    match op {
        Op::Read { ty, id } => {
            check_id(id)?;
            with_kind!(ty.as_str(), K => Ok(Answer::resource(200, K::TYPE, &K::read(c, actor, id)?, false)))
        }
        Op::VRead { ty, id, version } => {
            check_id(id)?;
            let wanted: i32 = version
                .parse()
                .map_err(|_| FhirError::bad_request("the version id must be a whole number"))?;
            with_kind!(ty.as_str(), K => {
                let all = K::history(c, actor, id)?;
                match all.iter().find(|r| r.version == wanted) {
                    Some(r) => Ok(Answer::resource(200, K::TYPE, r, false)),
                    None if all.iter().any(|r| r.version > wanted) && !K::VERSIONED => Err(FhirError::not_found(format!(
                        "{}/{id} version {wanted} is not kept: only the current version of a {} is (its changes are in our audit log and its own timeline)",
                        K::TYPE, K::TYPE
                    ))),
                    None => Err(FhirError::not_found(format!("{}/{id} has no version {wanted}", K::TYPE))),
                }
            })
        }
        Op::History { ty, id } => {
            check_id(id)?;
            with_kind!(ty.as_str(), K => {
                let versions = K::history(c, actor, id)?;
                Ok(Answer::bundle(bundle::history(base, K::TYPE, id, &versions)))
            })
        }
        Op::Search { ty, pairs, lenient } => with_kind!(ty.as_str(), K => {
            let q = search::parse(pairs, K::PARAMS, K::INCLUDES, *lenient)?;
            let page = K::search(c, actor, &q)?;
            let includes = if q.includes.is_empty() { Vec::new() } else { included_patients(c, actor, &page.matches)? };
            Ok(Answer::bundle(bundle::searchset(base, K::TYPE, &q, &page, &includes)))
        }),
        Op::Create {
            ty,
            body,
            if_none_exist,
        } => with_kind!(ty.as_str(), K => {
            if !K::CREATE {
                return Err(FhirError::not_supported(405, format!("{} cannot be created through this interface", K::TYPE)));
            }
            check_body_id(body, K::TYPE, None)?;
            if let Some(criteria) = if_none_exist {
                let pairs = query_pairs(criteria)?;
                if pairs.is_empty() {
                    return Err(FhirError::bad_request("If-None-Exist has no search criteria"));
                }
                let mut q = search::parse(&pairs, K::PARAMS, &[], false)?;
                q.count = 2;
                let found = K::search(c, actor, &q)?;
                match found.matches.as_slice() {
                    [] => {}
                    [one] => return Ok(Answer::resource(200, K::TYPE, one, true)),
                    _ => {
                        return Err(FhirError::new(
                            412,
                            "duplicate",
                            format!("If-None-Exist matches {} {} resources: the criteria must name one", found.total, K::TYPE),
                        ));
                    }
                }
            }
            Ok(Answer::written(201, K::TYPE, K::create(c, actor, body)?))
        }),
        Op::Update { ty, id, body, if_match } => {
            check_id(id)?;
            with_kind!(ty.as_str(), K => {
                if !K::UPDATE {
                    return Err(FhirError::not_supported(405, format!("{} cannot be updated through this interface", K::TYPE)));
                }
                check_body_id(body, K::TYPE, Some(id))?;
                let Some(h) = if_match else {
                    return Err(FhirError::new(
                        428,
                        "required",
                        "If-Match is required on update (the version you read, e.g. W/\"3\"), so no one overwrites a change they have not seen",
                    ));
                };
                let version = parse_if_match(h)?;
                Ok(Answer::written(200, K::TYPE, K::update(c, actor, id, body, version)?))
            })
        }
        Op::Everything { ty, id } => {
            check_id(id)?;
            let entries = pathway::everything(c, actor, ty, id)?;
            Ok(Answer::bundle(bundle::everything(base, &entries)))
        }
    }
}

/// The Patients the matches concern (`_include=…:patient`), each once.
fn included_patients(
    c: &mut AnyConnection,
    actor: &Actor,
    matches: &[Res],
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for m in matches {
        if let Some(p) = m.patient.as_deref()
            && !seen.contains(&p)
        {
            seen.push(p);
            out.push(("Patient", <patient::PatientKind as Kind>::read(c, actor, p)?));
        }
    }
    Ok(out)
}

/// A query string as (name, value) pairs, percent-decoded; malformed text is refused.
pub fn query_pairs(qs: &str) -> Result<Vec<(String, String)>, FhirError> {
    let qs = qs.trim_start_matches('?');
    serde_urlencoded::from_str::<Vec<(String, String)>>(qs)
        .map_err(|_| FhirError::bad_request("the query string is not valid (application/x-www-form-urlencoded)"))
}
