//! Flag ↔ the current five-colour grade of a pregnancy (高危妊娠标识, `risk` feature), for the
//! banner of a hospital system. Read-only; id = the pregnancy's id. See README.md "Flag".

use serde_json::json;

use super::risk_assessment::colour_coding;
use super::search::{ParamDef, Query};
use super::terms::{date, extension, not_found_as, reference, time};
use super::{FhirError, Kind, Page, Res, terms};
use crate::auth::model::Actor;
use crate::risk::service::{self as risk, FlagQuery, RiskFlag};
use crate::storage::AnyConnection;

pub struct FlagKind;

const FLAG_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/flag-category";
/// Core R4 extension pointing at the record behind a flag.
const FLAG_DETAIL: &str = "http://hl7.org/fhir/StructureDefinition/flag-detail";

pub fn render(f: &RiskFlag) -> Res {
    let a = &f.current;
    let mut ext = vec![json!({"url": FLAG_DETAIL, "valueReference": reference("RiskAssessment", &a.id)})];
    if a.purple {
        ext.push(json!({"url": extension("risk-purple"), "valueBoolean": true}));
    }
    let mut period = json!({"start": time(f.since)});
    if let Some(end) = f.ended_on {
        period["end"] = date(end);
    }
    let body = json!({
        "extension": ext,
        "status": if f.active { "active" } else { "inactive" },
        "category": [terms::concept(FLAG_CATEGORY, "clinical", "Clinical")],
        "code": {"coding": [colour_coding(a.colour.as_str(), a.colour.label_zh())], "text": f.label_zh()},
        "subject": reference("Patient", &f.pregnancy.person_id),
        "period": period,
        "author": reference("Organization", &a.facility_id),
    });
    Res {
        id: f.pregnancy.id.clone(),
        version: f.version,
        last_updated: f.updated_at,
        body,
        patient: Some(f.pregnancy.person_id.clone()),
    }
}

impl Kind for FlagKind {
    const TYPE: &'static str = "Flag";
    const DOC: &'static str = "The current risk colour of a graded pregnancy (id = the pregnancy's id), e.g. code red, text 高危妊娠：红色; active while the colour is above green (or purple) and she is pregnant, or delivered with her high-risk case still open; author the grading facility; flag-detail points to the RiskAssessment.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the woman (Patient/<id>)",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "active | inactive",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let f = risk::flag_in(c, actor, id).map_err(|e| not_found_as(e, Self::TYPE, id))?;
        Ok(render(&f))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let active = match terms::token_criterion(q, "status") {
            None => None,
            Some(codes) => {
                for code in &codes {
                    if !matches!(code.as_str(), "active" | "inactive" | "entered-in-error") {
                        return Err(FhirError::bad_request(format!(
                            "search parameter status: {code} is not a Flag status"
                        )));
                    }
                }
                match (
                    codes.iter().any(|c| c == "active"),
                    codes.iter().any(|c| c == "inactive"),
                ) {
                    (true, true) => None,
                    (true, false) => Some(true),
                    (false, true) => Some(false),
                    (false, false) => {
                        return Ok(Page {
                            matches: Vec::new(),
                            total: 0,
                        });
                    }
                }
            }
        };
        let fq = FlagQuery {
            person_id: terms::patient_criterion(q, &["patient"])?,
            ids: q.ids.clone(),
            active,
            updated: q.last_updated,
            offset: q.offset,
            limit: q.count,
        };
        let (found, total) = risk::flag_search_in(c, actor, &fq)?;
        Ok(Page {
            matches: found.iter().map(render).collect(),
            total,
        })
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(risk::flags_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render)
            .collect())
    }
}
