//! Condition ↔ condition (conditions feature). See README.md "Condition".

use serde_json::{Map, Value, json};

use super::clinical::{
    self, choice, codeable, concept, date_time, document, fill_from_document, has_coding, patient_of,
    render_identifiers, render_patient, required_code,
};
use super::json::{At, check_resource, received};
use super::search::{ParamDef, Query, reference, token};
use super::{FhirError, Kind, Page, Res, Written};
use crate::auth::model::Actor;
use crate::conditions::model::{CLINICAL_STATUSES, Condition, ConditionInput, VERIFICATION_STATUSES};
use crate::conditions::service::{self as conditions, ConditionQuery};
use crate::error::ServiceError;
use crate::storage::AnyConnection;

pub const CLINICAL_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub const VERIFICATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";

const ELEMENTS: &[&str] = &[
    "identifier",
    "clinicalStatus",
    "verificationStatus",
    "category",
    "severity",
    "code",
    "bodySite",
    "subject",
    "encounter",
    "onsetDateTime",
    "onsetAge",
    "onsetPeriod",
    "onsetRange",
    "onsetString",
    "abatementDateTime",
    "abatementAge",
    "abatementPeriod",
    "abatementRange",
    "abatementString",
    "recordedDate",
    "recorder",
    "asserter",
    "stage",
    "evidence",
    "note",
];

const ONSET_TYPES: &[&str] = &["DateTime", "Age", "Period", "Range", "String"];

pub struct ConditionKind;

fn quantity_text(q: &Value) -> String {
    let value = q.get("value").map(|v| v.to_string()).unwrap_or_default();
    let unit = q
        .get("unit")
        .or_else(|| q.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{value} {unit}").trim().to_string()
}

/// An `onset[x]` as the text we keep: a dateTime or string as given, an age as "value unit", a
/// period as "start/end", a range as "low–high unit".
fn onset_text(key: &str, v: &Value) -> Option<String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(match key {
        "onsetDateTime" | "onsetString" => v.as_str()?.trim().to_string(),
        "onsetAge" => quantity_text(v),
        "onsetPeriod" => format!("{}/{}", s("start"), s("end")),
        "onsetRange" => format!(
            "{}–{}",
            v.get("low").map(quantity_text).unwrap_or_default(),
            v.get("high").map(quantity_text).unwrap_or_default()
        ),
        _ => return None,
    })
}

fn incoming(body: &Value) -> Result<(String, ConditionInput), FhirError> {
    check_resource(body, "Condition", ELEMENTS)?;
    let root = At::root(body, "Condition");
    let person_id = patient_of(&root, "subject")?;
    let code = concept(&root, "code", true, &|_| false)?
        .ok_or_else(|| FhirError::new(422, "required", "Condition.code is required").at("Condition.code"))?;
    let clinical_status = required_code(&root, "clinicalStatus", CLINICAL_SYSTEM, CLINICAL_STATUSES)?;
    let verification_status = required_code(&root, "verificationStatus", VERIFICATION_SYSTEM, VERIFICATION_STATUSES)?;
    let abated = choice(&root, "abatement", ONSET_TYPES)?.is_some();
    let onset = match choice(&root, "onset", ONSET_TYPES)? {
        Some((key, at)) => {
            if key == "onsetDateTime" {
                date_time(&at)?;
            }
            onset_text(&key, at.value)
        }
        None => None,
    };
    let recorded_date = match root.child("recordedDate") {
        Some(at) => Some(date_time(&at)?.0),
        None => None,
    };
    Ok((
        person_id,
        ConditionInput {
            code_system: code.system,
            code: code.code,
            code_text: code.text,
            clinical_status,
            verification_status,
            abated,
            onset,
            recorded_date,
            identifiers: clinical::identifiers(&root)?,
            received: received(body),
        },
    ))
}

fn path_of(field: &str) -> String {
    match field {
        "code" => "Condition.code",
        "clinical_status" => "Condition.clinicalStatus",
        "verification_status" => "Condition.verificationStatus",
        _ => "Condition",
    }
    .to_string()
}

fn status_concept(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// The Condition of a stored condition: our columns, the document as received for the rest and
/// for its own form of what still says the same (README.md).
pub fn render(x: &Condition) -> Res {
    let doc = document(x.received.as_deref());
    let mut body = Map::new();
    if let Some(ids) = render_identifiers(&x.identifiers, doc.as_ref()) {
        body.insert("identifier".into(), ids);
    }
    if let Some(s) = &x.clinical_status {
        body.insert("clinicalStatus".into(), status_concept(CLINICAL_SYSTEM, s));
    }
    if let Some(s) = &x.verification_status {
        body.insert("verificationStatus".into(), status_concept(VERIFICATION_SYSTEM, s));
    }
    body.insert("code".into(), codeable(&x.code_system, &x.code, &x.code_text));
    body.insert("subject".into(), render_patient(&x.person_id, doc.as_ref(), "subject"));
    if let Some(o) = &x.onset {
        let key = if clinical::is_fhir_date_time(o) {
            "onsetDateTime"
        } else {
            "onsetString"
        };
        body.insert(key.into(), json!(o));
    }
    if let Some(r) = &x.recorded_date {
        body.insert("recordedDate".into(), json!(r));
    }
    if let Some(d) = &doc {
        fill_from_document(
            &mut body,
            d,
            &[
                "identifier",
                "clinicalStatus",
                "verificationStatus",
                "code",
                "subject",
                "onset",
                "recordedDate",
            ],
            &|key, v| match key {
                "clinicalStatus" => x
                    .clinical_status
                    .as_deref()
                    .is_some_and(|s| has_coding(v, CLINICAL_SYSTEM, s)),
                "verificationStatus" => x
                    .verification_status
                    .as_deref()
                    .is_some_and(|s| has_coding(v, VERIFICATION_SYSTEM, s)),
                "code" => {
                    has_coding(v, &x.code_system, &x.code)
                        || (x.code.is_empty() && v.get("text").and_then(Value::as_str) == Some(x.code_text.as_str()))
                }
                "recordedDate" => v.as_str() == x.recorded_date.as_deref(),
                k if k.starts_with("onset") => onset_text(k, v) == x.onset,
                _ => false,
            },
        );
    }
    Res {
        id: x.id.clone(),
        version: 1,
        last_updated: x.created_at,
        body: Value::Object(body),
        patient: Some(x.person_id.clone()),
    }
}

fn not_found_as(e: ServiceError, id: &str) -> FhirError {
    match e {
        ServiceError::NotFound(_) => FhirError::not_found(format!("Condition/{id} does not exist")),
        e => FhirError::from(e),
    }
}

impl Kind for ConditionKind {
    const TYPE: &'static str = "Condition";
    const CREATE: bool = true;
    const DOC: &'static str = "Diagnoses and problems of a woman or child (from hospitals): code as sent, clinicalStatus and verificationStatus from the FHIR required value sets (anything else is refused), onset kept as given, the rest of the document kept as received. A condition recorded during a pregnancy belongs to it.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the Patient (Patient/id or id)",
        },
        ParamDef {
            name: "subject",
            kind: "reference",
            doc: "the subject, a Patient (Patient/id)",
        },
        ParamDef {
            name: "code",
            kind: "token",
            doc: "system|code or code",
        },
        ParamDef {
            name: "clinical-status",
            kind: "token",
            doc: "active | recurrence | relapse | inactive | remission | resolved (comma-separated for any of several)",
        },
        ParamDef {
            name: "identifier",
            kind: "token",
            doc: "system|value, or value in any system",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        // A risk factor of a confirmed grade (`<assessment id>.<factor code>`, as `$everything` lists them).
        if id.contains('.') {
            return super::risk_assessment::factor_condition(c, actor, id)?
                .ok_or_else(|| FhirError::not_found(format!("Condition/{id} does not exist")));
        }
        let x = conditions::condition_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
        Ok(render(&x))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut cq = ConditionQuery {
            created: q.last_updated,
            ids: q.ids.clone(),
            offset: q.offset,
            limit: q.count,
            ..ConditionQuery::default()
        };
        for (name, _, value) in &q.criteria {
            match name.as_str() {
                "patient" | "subject" => {
                    let id = reference(name, value, "Patient")?;
                    if cq.person_id.as_ref().is_some_and(|p| *p != id) {
                        return Ok(Page {
                            matches: Vec::new(),
                            total: 0,
                        });
                    }
                    cq.person_id = Some(id);
                }
                "code" => {
                    let (system, code) = token(value);
                    if code.is_empty() || cq.code.is_some() {
                        return Err(FhirError::bad_request(
                            "search parameter code: give one code (system|code or code)",
                        ));
                    }
                    cq.code = Some((system.map(|s| clinical::stored_systems(&s)), code));
                }
                "clinical-status" => {
                    let mut statuses = Vec::new();
                    for one in value.split(',') {
                        let (system, code) = token(one);
                        if system.as_deref().is_some_and(|s| s != CLINICAL_SYSTEM)
                            || !CLINICAL_STATUSES.contains(&code.as_str())
                        {
                            return Err(FhirError::bad_request(format!(
                                "search parameter clinical-status: {one} is not one of {}",
                                CLINICAL_STATUSES.join(", ")
                            )));
                        }
                        statuses.push(code);
                    }
                    cq.clinical_statuses = Some(match cq.clinical_statuses.take() {
                        Some(prev) => prev.into_iter().filter(|s| statuses.contains(s)).collect(),
                        None => statuses,
                    });
                }
                "identifier" => cq.identifier = Some(super::search::one_identifier(value, cq.identifier.is_some())?),
                _ => {}
            }
        }
        let (found, total) = conditions::search_in(c, actor, &cq)?;
        Ok(Page {
            matches: found.iter().map(render).collect(),
            total,
        })
    }

    fn create(c: &mut AnyConnection, actor: &Actor, body: &Value) -> Result<Written, FhirError> {
        let (person_id, input) = incoming(body)?;
        let x = conditions::record_in(c, actor, &person_id, &input).map_err(|e| match e {
            ServiceError::NotFound(_) => FhirError::invalid(
                "Condition.subject.reference",
                format!("Condition.subject: Patient/{person_id} does not exist"),
            ),
            e => FhirError::from_service(e, &path_of),
        })?;
        Ok(render(&x).into())
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        let found = conditions::for_person_in(c, actor, person_id, pregnancy_id)?;
        let mut out: Vec<Res> = found.iter().map(render).collect();
        out.extend(super::risk_assessment::current_factor_conditions(
            c,
            actor,
            person_id,
            pregnancy_id,
        )?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_are_kept_as_text() {
        assert_eq!(onset_text("onsetDateTime", &json!("2014")).as_deref(), Some("2014"));
        assert_eq!(
            onset_text("onsetAge", &json!({"value": 30, "unit": "a"})).as_deref(),
            Some("30 a")
        );
        assert_eq!(
            onset_text("onsetPeriod", &json!({"start": "2020-01"})).as_deref(),
            Some("2020-01/")
        );
    }

    #[test]
    fn a_status_outside_the_value_set_is_refused() {
        let body = json!({
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "x"},
            "clinicalStatus": {"coding": [{"system": CLINICAL_SYSTEM, "code": "cured"}]}
        });
        let e = incoming(&body).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(
            e.issues[0].expression.as_deref(),
            Some("Condition.clinicalStatus.coding[0].code")
        );
        let other = json!({
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "x"},
            "verificationStatus": {"coding": [{"system": "http://example.org", "code": "confirmed"}]}
        });
        assert_eq!(
            incoming(&other).unwrap_err().status,
            422,
            "a coding of another system only"
        );
    }
}
