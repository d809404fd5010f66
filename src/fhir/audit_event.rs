//! AuditEvent ↔ the audit log (`audit_events`): who read, searched, created or changed what, and
//! who was refused. Read-only, for auditor tokens only (`mch-chain token issue --role auditor`);
//! reading the log is itself audited. id = the row's sequence number. See README.md "AuditEvent".

use serde_json::{Value, json};

use super::search::{ParamDef, Query, token};
use super::terms::{code_system, concept, reference, time};
use super::{FhirError, Kind, Page, Res, terms};
use crate::audit::model::AuditEvent;
use crate::audit::repo::AuditFilter;
use crate::auth::model::{Actor, Role};
use crate::storage::AnyConnection;

pub struct AuditEventKind;

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// Our audit `action` as AuditEvent.action (C create, R read, U update, E execute — a search, a
/// sign-in, an access grant).
pub fn action_code(action: &str) -> &'static str {
    match action {
        "create" => "C",
        "read" => "R",
        "update" => "U",
        _ => "E",
    }
}

/// Our audit `outcome` as AuditEvent.outcome (0 success, 4 minor failure = refused, 8 failure).
pub fn outcome_code(outcome: &str) -> &'static str {
    match outcome {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    }
}

/// The FHIR type of a record our audit rows name, for `entity.what`.
fn fhir_type(entity_type: &str) -> Option<&'static str> {
    Some(match entity_type {
        "person" => "Patient",
        "pregnancy" => "EpisodeOfCare",
        "visit" => "Encounter",
        "risk_assessment" => "RiskAssessment",
        "risk_flag" => "Flag",
        "referral" => "ServiceRequest",
        "facility" => "Organization",
        _ => return None,
    })
}

/// Our entity types an `entity=Type/id` search names.
fn our_types(fhir: &str) -> Option<&'static [&'static str]> {
    Some(match fhir {
        "Patient" => &["person"],
        "EpisodeOfCare" => &["pregnancy"],
        "Encounter" => &["visit"],
        "RiskAssessment" => &["risk_assessment"],
        "Flag" => &["risk_flag"],
        "ServiceRequest" | "Task" => &["referral"],
        "Organization" | "Location" => &["facility"],
        "AuditEvent" => &["audit_log"],
        _ => return None,
    })
}

fn event_type(action: &str) -> (Value, Value) {
    match action {
        "read" | "search" | "create" | "update" => (
            terms::coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
            match action {
                "read" => terms::coding(RESTFUL_INTERACTION, "read", "read"),
                "search" => terms::coding(RESTFUL_INTERACTION, "search-type", "search type"),
                "create" => terms::coding(RESTFUL_INTERACTION, "create", "create"),
                _ => terms::coding(RESTFUL_INTERACTION, "update", "update"),
            },
        ),
        "login" | "logout" | "login_failed" => (
            terms::coding(DICOM, "110114", "User Authentication"),
            terms::coding(&code_system("audit-action"), action, action),
        ),
        other => (
            terms::coding(&code_system("audit-action"), other, other),
            terms::coding(&code_system("audit-action"), other, other),
        ),
    }
}

fn purpose(p: &str) -> Value {
    let mut codings = vec![terms::coding(&code_system("purpose-of-use"), p, p)];
    let v3 = match p {
        "treatment" => Some(("TREAT", "treatment")),
        "care_coordination" => Some(("CAREMGT", "care management")),
        "operations" => Some(("HOPERAT", "healthcare operations")),
        _ => None,
    };
    if let Some((code, display)) = v3 {
        codings.push(terms::coding(ACT_REASON, code, display));
    }
    json!({"coding": codings, "text": p})
}

pub fn render(e: &AuditEvent) -> Res {
    let (ty, subtype) = event_type(&e.action);
    let role_label = Role::parse(&e.actor_role).map_or("系统", |r| r.label_zh());
    let mut agent = json!({
        "who": {
            "identifier": {
                "system": format!("urn:mch-chain:actor:{}", e.actor_kind),
                "value": e.actor_id.clone().unwrap_or_else(|| e.actor_name.clone()),
            },
            "display": e.actor_name,
        },
        "name": e.actor_name,
        "requestor": true,
        "role": [concept(&code_system("role"), &e.actor_role, role_label)],
    });
    if let Some(f) = &e.facility_id {
        agent["location"] = reference("Location", f);
    }
    if let Some(a) = e.client_addr.as_deref().filter(|a| !a.is_empty()) {
        agent["network"] = json!({"address": a, "type": "2"});
    }
    let mut entities: Vec<Value> = Vec::new();
    if let Some(p) = &e.person_id {
        entities.push(json!({
            "what": reference("Patient", p),
            "type": terms::coding(ENTITY_TYPE, "1", "Person"),
            "role": terms::coding(OBJECT_ROLE, "1", "Patient"),
        }));
    }
    let same_as_person = e.entity_type == "person" && e.entity_id.is_some() && e.entity_id == e.person_id;
    if same_as_person {
        if let Some(first) = entities.first_mut()
            && !e.detail.is_empty()
        {
            first["description"] = json!(e.detail);
        }
    } else {
        let mut ent = json!({
            "type": terms::coding(ENTITY_TYPE, "2", "System Object"),
            "role": terms::coding(OBJECT_ROLE, "4", "Domain Resource"),
            "name": e.entity_type,
        });
        if let Some(id) = &e.entity_id {
            ent["what"] = match fhir_type(&e.entity_type) {
                Some(t) if super::valid_id(id) => reference(t, id),
                _ => json!({"identifier": {"system": format!("urn:mch-chain:entity:{}", e.entity_type), "value": id}}),
            };
        }
        if !e.detail.is_empty() {
            ent["description"] = json!(e.detail);
        }
        entities.push(ent);
    }
    let mut body = json!({
        "type": ty,
        "subtype": [subtype],
        "action": action_code(&e.action),
        "recorded": time(e.at),
        "outcome": outcome_code(&e.outcome),
        "purposeOfEvent": [purpose(&e.purpose)],
        "agent": [agent],
        "source": {
            "site": "mch-chain",
            "observer": {"display": "mch-chain 妇幼健康一条链"},
            "type": [terms::coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": entities,
    });
    if e.outcome != "success" {
        body["outcomeDesc"] = json!(if e.detail.is_empty() {
            e.outcome.as_str()
        } else {
            e.detail.as_str()
        });
    }
    Res {
        id: e.seq.to_string(),
        version: 1,
        last_updated: e.at,
        body,
        patient: e.person_id.clone(),
    }
}

fn seq_of(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n >= 1)
}

impl Kind for AuditEventKind {
    const TYPE: &'static str = "AuditEvent";
    const DOC: &'static str = "A row of the audit log (id = its sequence number): action C|R|U|E, outcome 0 (success) | 4 (refused), agent the user or interface (name, role, facility Location, network address), entity the Patient and the record touched. Auditor tokens only; every read of the log is itself audited.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "events about this person (Patient/<id>)",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "when it was recorded, with prefixes eq, gt, ge, lt, le",
        },
        ParamDef {
            name: "agent",
            kind: "string",
            doc: "the agent's name exactly (a user name or an interface token's name; our agents are not FHIR resources)",
        },
        ParamDef {
            name: "agent-name",
            kind: "string",
            doc: "the agent's name exactly",
        },
        ParamDef {
            name: "entity",
            kind: "reference",
            doc: "the record touched (Patient/<id>, EpisodeOfCare/<id>, Encounter/<id>, ServiceRequest/<id> …)",
        },
        ParamDef {
            name: "outcome",
            kind: "token",
            doc: "0 (success) | 4 (refused) | 8 (failure)",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let seq = seq_of(id).ok_or_else(|| FhirError::not_found(format!("{}/{id} does not exist", Self::TYPE)))?;
        let e = crate::audit::service::event_in(c, actor, seq).map_err(|e| terms::not_found_as(e, Self::TYPE, id))?;
        Ok(render(&e))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut f = AuditFilter {
            person_id: terms::patient_criterion(q, &["patient"])?,
            at: terms::date_criterion(q, "date")?.and(q.last_updated),
            ..AuditFilter::default()
        };
        if let Some(ids) = &q.ids {
            // An id that is not a sequence number names no event.
            f.seqs = Some(ids.iter().filter_map(|i| seq_of(i)).collect());
        }
        let mut nothing = false;
        for (name, modifier, value) in &q.criteria {
            match name.as_str() {
                "agent" | "agent-name" => {
                    if modifier.as_deref().is_some_and(|m| m != "exact") {
                        return Err(FhirError::bad_request(format!(
                            "search parameter {name}: only the exact name is supported"
                        )));
                    }
                    if f.actor_name.as_ref().is_some_and(|a| a != value.trim()) {
                        nothing = true;
                    }
                    f.actor_name = Some(value.trim().to_string());
                }
                "entity" => {
                    let (ty, id) = value.trim().split_once('/').ok_or_else(|| {
                        FhirError::bad_request("search parameter entity: must be Type/id (e.g. EpisodeOfCare/…)")
                    })?;
                    let ours = our_types(ty).ok_or_else(|| {
                        FhirError::bad_request(format!("search parameter entity: {ty} is not a type our log names"))
                    })?;
                    if !super::valid_id(id) {
                        return Err(FhirError::bad_request("search parameter entity: not a valid id"));
                    }
                    f.entity_type = ours.first().map(|t| (*t).to_string());
                    f.entity_id = Some(id.to_string());
                }
                "outcome" => {
                    let code = token(value).1;
                    f.outcome = Some(
                        match code.as_str() {
                            "0" => "success",
                            "4" => "denied",
                            "8" => "failure",
                            other => {
                                return Err(FhirError::bad_request(format!(
                                    "search parameter outcome: {other} is not 0, 4 or 8"
                                )));
                            }
                        }
                        .to_string(),
                    );
                }
                _ => {}
            }
        }
        if nothing {
            f.seqs = Some(Vec::new());
        }
        let (found, total) = crate::audit::service::search_in(c, actor, &f, q.offset, q.count)?;
        Ok(Page {
            matches: found.iter().map(render).collect(),
            total,
        })
    }
}
