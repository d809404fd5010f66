//! Immunization ↔ vaccination (immunizations feature). See README.md "Immunization".

use serde_json::{Map, Value, json};

use super::clinical::{
    self, choice, codeable, concept, date_time, document, fill_from_document, has_coding, patient_of,
    render_identifiers, render_patient, required_simple_code,
};
use super::json::{At, check_resource, received};
use super::search::{ParamDef, Query, reference, time_range, token};
use super::{FhirError, Kind, Page, Res, Written};
use crate::auth::model::Actor;
use crate::error::ServiceError;
use crate::immunizations::model::{Immunization, ImmunizationInput, STATUSES};
use crate::immunizations::service::{self as immunizations, ImmunizationQuery};
use crate::storage::AnyConnection;

const ELEMENTS: &[&str] = &[
    "identifier",
    "status",
    "statusReason",
    "vaccineCode",
    "patient",
    "encounter",
    "occurrenceDateTime",
    "occurrenceString",
    "recorded",
    "primarySource",
    "reportOrigin",
    "location",
    "manufacturer",
    "lotNumber",
    "expirationDate",
    "site",
    "route",
    "doseQuantity",
    "performer",
    "note",
    "reasonCode",
    "reasonReference",
    "isSubpotent",
    "subpotentReason",
    "education",
    "programEligibility",
    "fundingSource",
    "reaction",
    "protocolApplied",
];

pub struct ImmunizationKind;

fn incoming(body: &Value) -> Result<(String, ImmunizationInput), FhirError> {
    check_resource(body, "Immunization", ELEMENTS)?;
    let root = At::root(body, "Immunization");
    let status = required_simple_code(&root, "status", STATUSES)?
        .ok_or_else(|| FhirError::new(422, "required", "Immunization.status is required").at("Immunization.status"))?;
    let vaccine = concept(&root, "vaccineCode", true, &|_| false)?.ok_or_else(|| {
        FhirError::new(422, "required", "Immunization.vaccineCode is required").at("Immunization.vaccineCode")
    })?;
    let person_id = patient_of(&root, "patient")?;
    let (occurrence, occurrence_at) = match choice(&root, "occurrence", &["DateTime", "String"])? {
        Some((key, at)) if key == "occurrenceDateTime" => {
            let (text, start) = date_time(&at)?;
            (text, Some(start))
        }
        Some((_, at)) => (
            at.value
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| at.error("Immunization.occurrenceString must be a non-empty string"))?
                .to_string(),
            None,
        ),
        None => {
            return Err(FhirError::new(
                422,
                "required",
                "Immunization.occurrence[x] is required (occurrenceDateTime or occurrenceString)",
            )
            .at("Immunization.occurrence[x]"));
        }
    };
    Ok((
        person_id,
        ImmunizationInput {
            status,
            vaccine_system: vaccine.system,
            vaccine_code: vaccine.code,
            vaccine_text: vaccine.text,
            occurrence,
            occurrence_at,
            lot_number: root.str("lotNumber")?.map(|s| s.trim().to_string()),
            identifiers: clinical::identifiers(&root)?,
            received: received(body),
        },
    ))
}

fn path_of(field: &str) -> String {
    match field {
        "status" => "Immunization.status",
        "vaccine" => "Immunization.vaccineCode",
        "occurrence" => "Immunization.occurrence[x]",
        "lot_number" => "Immunization.lotNumber",
        _ => "Immunization",
    }
    .to_string()
}

/// The Immunization of a stored vaccination: our columns, the document as received for the rest
/// and for its own form of what still says the same (README.md).
pub fn render(x: &Immunization) -> Res {
    let doc = document(x.received.as_deref());
    let mut body = Map::new();
    if let Some(ids) = render_identifiers(&x.identifiers, doc.as_ref()) {
        body.insert("identifier".into(), ids);
    }
    body.insert("status".into(), json!(x.status));
    body.insert(
        "vaccineCode".into(),
        codeable(&x.vaccine_system, &x.vaccine_code, &x.vaccine_text),
    );
    body.insert("patient".into(), render_patient(&x.person_id, doc.as_ref(), "patient"));
    let key = if x.occurrence_at.is_some() && clinical::is_fhir_date_time(&x.occurrence) {
        "occurrenceDateTime"
    } else {
        "occurrenceString"
    };
    body.insert(key.into(), json!(x.occurrence));
    if let Some(l) = &x.lot_number {
        body.insert("lotNumber".into(), json!(l));
    }
    if let Some(d) = &doc {
        fill_from_document(
            &mut body,
            d,
            &[
                "identifier",
                "status",
                "vaccineCode",
                "patient",
                "occurrence",
                "lotNumber",
            ],
            &|key, v| match key {
                "status" => v.as_str() == Some(x.status.as_str()),
                "vaccineCode" => {
                    has_coding(v, &x.vaccine_system, &x.vaccine_code)
                        || (x.vaccine_code.is_empty()
                            && v.get("text").and_then(Value::as_str) == Some(x.vaccine_text.as_str()))
                }
                "occurrenceDateTime" | "occurrenceString" => v.as_str().map(str::trim) == Some(x.occurrence.as_str()),
                "lotNumber" => v.as_str().map(str::trim) == x.lot_number.as_deref(),
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
        ServiceError::NotFound(_) => FhirError::not_found(format!("Immunization/{id} does not exist")),
        e => FhirError::from(e),
    }
}

impl Kind for ImmunizationKind {
    const TYPE: &'static str = "Immunization";
    const CREATE: bool = true;
    const DOC: &'static str = "Vaccinations of a woman (tetanus, hepatitis B) or child (national immunisation programme): status completed | entered-in-error | not-done, vaccineCode as sent, occurrence (dateTime or text), lotNumber; the rest of the document kept as received.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the Patient (Patient/id or id)",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "when it was given, with prefixes eq, gt, ge, lt, le (a vaccination known only as a text has no date)",
        },
        ParamDef {
            name: "vaccine-code",
            kind: "token",
            doc: "system|code or code",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "completed | entered-in-error | not-done (comma-separated for any of several)",
        },
        ParamDef {
            name: "identifier",
            kind: "token",
            doc: "system|value, or value in any system",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let x = immunizations::immunization_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
        Ok(render(&x))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut iq = ImmunizationQuery {
            created: q.last_updated,
            ids: q.ids.clone(),
            offset: q.offset,
            limit: q.count,
            ..ImmunizationQuery::default()
        };
        for (name, _, value) in &q.criteria {
            match name.as_str() {
                "patient" => {
                    let id = reference(name, value, "Patient")?;
                    if iq.person_id.as_ref().is_some_and(|p| *p != id) {
                        return Ok(Page {
                            matches: Vec::new(),
                            total: 0,
                        });
                    }
                    iq.person_id = Some(id);
                }
                "date" => iq.occurrence = iq.occurrence.and(time_range("date", value)?),
                "vaccine-code" => {
                    let (system, code) = token(value);
                    if code.is_empty() || iq.vaccine.is_some() {
                        return Err(FhirError::bad_request(
                            "search parameter vaccine-code: give one code (system|code or code)",
                        ));
                    }
                    iq.vaccine = Some((system.map(|s| clinical::stored_systems(&s)), code));
                }
                "status" => {
                    let mut statuses = Vec::new();
                    for one in value.split(',') {
                        if !STATUSES.contains(&one) {
                            return Err(FhirError::bad_request(format!(
                                "search parameter status: {one} is not one of {}",
                                STATUSES.join(", ")
                            )));
                        }
                        statuses.push(one.to_string());
                    }
                    iq.statuses = Some(match iq.statuses.take() {
                        Some(prev) => prev.into_iter().filter(|s| statuses.contains(s)).collect(),
                        None => statuses,
                    });
                }
                "identifier" => iq.identifier = Some(super::search::one_identifier(value, iq.identifier.is_some())?),
                _ => {}
            }
        }
        let (found, total) = immunizations::search_in(c, actor, &iq)?;
        Ok(Page {
            matches: found.iter().map(render).collect(),
            total,
        })
    }

    fn create(c: &mut AnyConnection, actor: &Actor, body: &Value) -> Result<Written, FhirError> {
        let (person_id, input) = incoming(body)?;
        let x = immunizations::record_in(c, actor, &person_id, &input).map_err(|e| match e {
            ServiceError::NotFound(_) => FhirError::invalid(
                "Immunization.patient.reference",
                format!("Immunization.patient: Patient/{person_id} does not exist"),
            ),
            e => FhirError::from_service(e, &path_of),
        })?;
        Ok(render(&x).into())
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        _pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        let found = immunizations::for_person_in(c, actor, person_id)?;
        Ok(found.iter().map(render).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_vaccine_and_time_are_required() {
        let ok = json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07CA02"}]},
            "patient": {"reference": "Patient/p1"},
            "occurrenceString": "childhood"
        });
        let (_, i) = incoming(&ok).unwrap();
        assert_eq!((i.occurrence.as_str(), i.occurrence_at), ("childhood", None));
        let mut bad = ok.clone();
        bad["status"] = json!("done");
        assert_eq!(
            incoming(&bad).unwrap_err().issues[0].expression.as_deref(),
            Some("Immunization.status")
        );
        let mut none = ok.clone();
        none.as_object_mut().unwrap().remove("occurrenceString");
        assert_eq!(incoming(&none).unwrap_err().status, 422);
        let mut two = ok.clone();
        two["occurrenceDateTime"] = json!("2020-01-01");
        assert_eq!(incoming(&two).unwrap_err().status, 422);
    }
}
