//! RiskAssessment ↔ five-colour risk assessment (妊娠风险评估分级, `risk` feature). Read-only.
//! See README.md "RiskAssessment".

use serde_json::{Value, json};

use super::search::{ParamDef, Query};
use super::terms::{code_system, concept, extension, not_found_as, reference, time};
use super::{FhirError, Kind, Page, Res, terms};
use crate::auth::model::Actor;
use crate::risk::model::{AssessmentRecord, AssessmentStatus, ItemColour, RiskColour, RiskFactor};
use crate::risk::service::{self as risk, AssessmentQuery};
use crate::storage::AnyConnection;

pub struct RiskAssessmentKind;

/// Our assessment status as RiskAssessment.status (an ObservationStatus).
pub fn fhir_status(s: AssessmentStatus) -> &'static str {
    match s {
        // Computed by the system when new data came in; waits for a clinician.
        AssessmentStatus::Proposed => "preliminary",
        AssessmentStatus::Confirmed => "final",
        // A proposal a clinician's later grading replaced: it never became her grade.
        AssessmentStatus::Dismissed => "cancelled",
    }
}

/// The colour code system shared by RiskAssessment and Flag: green, yellow, orange, red, purple.
pub fn colour_coding(code: &str, display: &str) -> Value {
    terms::coding(&code_system("risk-colour"), code, display)
}

pub fn colour_concept(c: RiskColour) -> Value {
    concept(&code_system("risk-colour"), c.as_str(), c.label_zh())
}

fn item_colour(c: ItemColour) -> &'static str {
    match c {
        ItemColour::Yellow => "yellow",
        ItemColour::Orange => "orange",
        ItemColour::Red => "red",
        ItemColour::Purple => "purple",
    }
}

/// A catalogue item of the assessment's rule set (`O2.6` …) as a coding, with its text.
fn factor_coding(rule_set: &str, code: &str) -> Value {
    let text = crate::risk::model::rule_set(rule_set)
        .ok()
        .and_then(|r| r.item(code))
        .map(|i| i.text.clone());
    let mut c = json!({"system": code_system("risk-factor"), "version": rule_set, "code": code});
    if let Some(t) = text {
        c["display"] = json!(t);
    }
    c
}

fn rationale(factors: &[&RiskFactor]) -> Option<String> {
    (!factors.is_empty()).then(|| {
        factors
            .iter()
            .map(|f| format!("{} {}", f.code, f.reason))
            .collect::<Vec<_>>()
            .join("；")
    })
}

pub fn render(a: &AssessmentRecord) -> Res {
    let mut ext: Vec<Value> = a
        .factors
        .iter()
        .map(|f| {
            json!({
                "url": extension("risk-factor"),
                "extension": [
                    {"url": "code", "valueCoding": factor_coding(&a.rule_set, &f.code)},
                    {"url": "colour", "valueCode": item_colour(f.colour)},
                    {"url": "reason", "valueString": f.reason},
                ],
            })
        })
        .collect();
    ext.extend(a.removed.iter().map(|r| {
        json!({
            "url": extension("risk-factor-removed"),
            "extension": [
                {"url": "code", "valueCoding": factor_coding(&a.rule_set, &r.code)},
                {"url": "reason", "valueString": r.reason},
            ],
        })
    }));
    ext.push(json!({"url": extension("risk-assessing-organization"), "valueReference": reference("Organization", &a.facility_id)}));
    let graded: Vec<&RiskFactor> = a.factors.iter().filter(|f| f.colour != ItemColour::Purple).collect();
    let infectious: Vec<&RiskFactor> = a.factors.iter().filter(|f| f.colour == ItemColour::Purple).collect();
    let mut grade = json!({
        "outcome": {"text": "妊娠风险（五色分级）"},
        "qualitativeRisk": colour_concept(a.colour),
    });
    if let Some(r) = rationale(&graded) {
        grade["rationale"] = json!(r);
    }
    let mut predictions = vec![grade];
    if a.purple {
        let mut p = json!({
            "outcome": {"text": "妊娠合并传染性疾病（紫色）"},
            "qualitativeRisk": concept(&code_system("risk-colour"), "purple", "紫色"),
        });
        if let Some(r) = rationale(&infectious) {
            p["rationale"] = json!(r);
        }
        predictions.push(p);
    }
    let rule_set_text = format!("孕产妇妊娠风险评估表（{}）", a.rule_set);
    let mut body = json!({
        "extension": ext,
        "status": fhir_status(a.status),
        "method": {
            "coding": [{"system": code_system("risk-rule-set"), "code": a.rule_set, "display": rule_set_text}],
            "text": rule_set_text,
        },
        "code": concept(&code_system("assessment"), "pregnancy-risk-grade", "妊娠风险评估分级"),
        "subject": reference("Patient", &a.person_id),
        "occurrenceDateTime": time(a.created_at),
        // R4 performer may not be an Organization: the grader by name; the facility is the
        // risk-assessing-organization extension.
        "performer": {"display": a.assessed_by},
        "reasonCode": [{"text": a.trigger}],
        "basis": [reference("EpisodeOfCare", &a.pregnancy_id)],
        "prediction": predictions,
    });
    if !a.note.trim().is_empty() {
        body["note"] = json!([{"text": a.note}]);
    }
    let (version, last_updated) = match (a.status, a.decided_at) {
        (AssessmentStatus::Dismissed, Some(at)) => (2, at),
        _ => (1, a.created_at),
    };
    Res {
        id: a.id.clone(),
        version,
        last_updated,
        body,
        patient: Some(a.person_id.clone()),
    }
}

impl Kind for RiskAssessmentKind {
    const TYPE: &'static str = "RiskAssessment";
    const DOC: &'static str = "A five-colour pregnancy risk assessment (妊娠风险评估分级): prediction[0].qualitativeRisk green|yellow|orange|red (http://mch-chain.example/fhir/CodeSystem/risk-colour), prediction[1] purple (传染性疾病) when present; status preliminary (system proposal) | final (confirmed) | cancelled (proposal replaced); method the rule table; factors as risk-factor extensions.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the woman (Patient/<id>)",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "when it was assessed, with prefixes eq, gt, ge, lt, le",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let a = risk::assessment_in(c, actor, id).map_err(|e| not_found_as(e, Self::TYPE, id))?;
        Ok(render(&a))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let aq = AssessmentQuery {
            person_id: terms::patient_criterion(q, &["patient"])?,
            ids: q.ids.clone(),
            made: terms::date_criterion(q, "date")?,
            updated: q.last_updated,
            offset: q.offset,
            limit: q.count,
        };
        let (found, total) = risk::assessment_search_in(c, actor, &aq)?;
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
        Ok(risk::assessments_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render)
            .collect())
    }
}

/// The risk factors of a confirmed assessment as Conditions (issue 6: "Condition … risk
/// factors"): id `<assessment id>.<factor code>`, clinical status active, verified (a clinician
/// confirmed the grade), category problem-list item, code the grading table's item, severity its
/// colour, evidence the RiskAssessment. A proposed or dismissed assessment's factors are not
/// conditions of hers. Read-only, version 1.
pub fn factor_conditions(a: &AssessmentRecord) -> Vec<Res> {
    if a.status != AssessmentStatus::Confirmed {
        return Vec::new();
    }
    a.factors
        .iter()
        .map(|f| {
            let mut code = factor_coding(&a.rule_set, &f.code);
            if code.get("display").is_none() {
                code["display"] = json!(f.reason);
            }
            let body = json!({
                "clinicalStatus": concept(super::condition::CLINICAL_SYSTEM, "active", "Active"),
                "verificationStatus": concept(super::condition::VERIFICATION_SYSTEM, "confirmed", "Confirmed"),
                "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")],
                "severity": {"coding": [colour_coding(item_colour(f.colour), item_colour(f.colour))], "text": format!("妊娠风险 {}", item_colour(f.colour))},
                "code": {"coding": [code], "text": f.reason},
                "subject": reference("Patient", &a.person_id),
                "recordedDate": super::json::instant(a.decided_at.unwrap_or(a.created_at)),
                "evidence": [{"detail": [reference("RiskAssessment", &a.id)]}],
            });
            Res {
                id: format!("{}.{}", a.id, f.code),
                version: 1,
                last_updated: a.created_at,
                body,
                patient: Some(a.person_id.clone()),
            }
        })
        .collect()
}

/// One risk-factor Condition by its id (`<assessment id>.<factor code>`), audited as a read of
/// the assessment; None when no confirmed assessment has that factor.
pub fn factor_condition(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Option<Res>, FhirError> {
    let Some((assessment_id, _)) = id.split_once('.') else {
        return Ok(None);
    };
    if !crate::ids::is_id(assessment_id) {
        return Ok(None);
    }
    let a = match risk::assessment_in(c, actor, assessment_id) {
        Err(crate::error::ServiceError::NotFound(_)) => return Ok(None),
        other => other?,
    };
    Ok(factor_conditions(&a).into_iter().find(|r| r.id == id))
}

/// The current risk factors of a woman (the latest confirmed assessment of each pregnancy, or of
/// one pregnancy) as Conditions, for `$everything`.
pub fn current_factor_conditions(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<Res>, FhirError> {
    let all = risk::assessments_for_person_in(c, actor, person_id, pregnancy_id)?;
    let mut latest: Vec<&AssessmentRecord> = Vec::new();
    for a in all.iter().filter(|a| a.status == AssessmentStatus::Confirmed) {
        match latest.iter_mut().find(|l| l.pregnancy_id == a.pregnancy_id) {
            Some(l) if a.created_at >= l.created_at => *l = a,
            Some(_) => {}
            None => latest.push(a),
        }
    }
    Ok(latest.into_iter().flat_map(factor_conditions).collect())
}
