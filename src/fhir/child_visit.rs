//! A child health visit (儿童健康检查, `child` feature) as an Encounter, and its measurements as
//! Observations `<visit id>.<measure>` with LOINC codes and UCUM units; the WHO 2006 z-scores are
//! components of the measurement they are computed from. Read-only. See README.md "Child health
//! visits". The Encounter and Observation types hand child visits to this module.

use serde_json::{Value, json};

use super::terms::{LOINC, code_system, concept, date, quantity, reference};
use super::{FhirError, Res, terms};
use crate::auth::model::Actor;
use crate::child::model::Measure;
use crate::child::service::{self as child, ChildVisitView};
use crate::growth::model::{Classification, Finding, Indicator};
use crate::storage::AnyConnection;

const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The Encounter of a child visit: class `HH` for the newborn home visits (新生儿家庭访视, at
/// home as the mother's 产后访视 is), `AMB` for every other contact; `type` the contact of the
/// schedule it was (`child-contact#<code>`), or `child-contact#other` for a visit between contacts.
pub fn encounter(v: &ChildVisitView) -> Res {
    let (code, name) = v
        .contact
        .clone()
        .unwrap_or_else(|| ("other".to_string(), "计划外儿童保健随访".to_string()));
    let class = if code.starts_with("newborn_") {
        terms::coding(V3_ACT_CODE, "HH", "home health")
    } else {
        terms::coding(V3_ACT_CODE, "AMB", "ambulatory")
    };
    let visit = &v.visit;
    let body = json!({
        "status": "finished",
        "class": class,
        "type": [concept(&code_system("child-contact"), &code, &name)],
        "subject": reference("Patient", &visit.child_id),
        "period": {"start": date(visit.visit_date), "end": date(visit.visit_date)},
        "serviceProvider": reference("Organization", &visit.facility_id),
    });
    Res {
        id: visit.id.clone(),
        version: 1,
        last_updated: visit.recorded_at,
        body,
        patient: Some(visit.child_id.clone()),
    }
}

/// The LOINC code, its display, our text and the UCUM unit of a measurement.
pub fn loinc_of(m: Measure) -> (&'static str, &'static str, &'static str, &'static str) {
    match m {
        Measure::Weight => ("29463-7", "Body weight", "体重", "kg"),
        Measure::Length => ("8306-3", "Body height --lying", "身长（卧位）", "cm"),
        Measure::Height => ("8302-2", "Body height", "身高（立位）", "cm"),
        Measure::HeadCircumference => ("9843-4", "Head Occipital-frontal circumference", "头围", "cm"),
        Measure::Bmi => ("39156-5", "Body mass index (BMI) [Ratio]", "体质指数（BMI）", "kg/m2"),
        Measure::Hb => ("718-7", "Hemoglobin [Mass/volume] in Blood", "血红蛋白", "g/L"),
    }
}

/// The measurement a LOINC code names, if it is one of ours.
pub fn measure_of_loinc(code: &str) -> Option<Measure> {
    Measure::ALL.into_iter().find(|m| loinc_of(*m).0 == code)
}

/// Our code of a WHO indicator's z-score (`who-growth-z`): no LOINC code for the WHO 2006
/// z-scores could be confirmed offline, so they are our own codes (README.md).
fn z_code(i: Indicator) -> (&'static str, &'static str) {
    match i {
        Indicator::WeightForAge => ("weight-for-age", "年龄别体重Z评分（WHO 2006）"),
        Indicator::LengthForAge => ("length-height-for-age", "年龄别身长/身高Z评分（WHO 2006）"),
        Indicator::WeightForLength => ("weight-for-length", "身长别体重Z评分（WHO 2006）"),
        Indicator::WeightForHeight => ("weight-for-height", "身高别体重Z评分（WHO 2006）"),
        Indicator::BmiForAge => ("bmi-for-age", "年龄别BMI Z评分（WHO 2006）"),
    }
}

/// The indicators a measurement carries the z-scores of.
fn indicators_of(m: Measure) -> &'static [Indicator] {
    match m {
        Measure::Weight => &[
            Indicator::WeightForAge,
            Indicator::WeightForLength,
            Indicator::WeightForHeight,
        ],
        Measure::Length | Measure::Height => &[Indicator::LengthForAge],
        Measure::Bmi => &[Indicator::BmiForAge],
        Measure::HeadCircumference | Measure::Hb => &[],
    }
}

fn finding_code(f: Finding) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One measurement of a visit as an Observation.
pub fn observation(v: &ChildVisitView, m: Measure, value: f64) -> Res {
    let visit = &v.visit;
    let (code, display, text, unit) = loinc_of(m);
    let category = if m == Measure::Hb {
        ("laboratory", "Laboratory")
    } else {
        ("vital-signs", "Vital Signs")
    };
    let mut body = json!({
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, category.0, category.1)],
        "code": {"coding": [terms::coding(LOINC, code, display)], "text": text},
        "subject": reference("Patient", &visit.child_id),
        "encounter": reference("Encounter", &visit.id),
        "effectiveDateTime": date(visit.visit_date),
        "performer": [reference("Organization", &visit.facility_id)],
        "valueQuantity": quantity(value, unit, unit),
    });
    let mut components = Vec::new();
    let mut interpretation = Vec::new();
    if let Some(g) = &v.growth {
        for i in indicators_of(m) {
            let z = match i {
                Indicator::WeightForAge => g.weight_for_age_z,
                Indicator::LengthForAge => g.length_for_age_z,
                Indicator::WeightForLength | Indicator::WeightForHeight
                    if g.weight_for_length_indicator == Some(*i) =>
                {
                    g.weight_for_length_z
                }
                Indicator::BmiForAge => g.bmi_for_age_z,
                _ => None,
            };
            if let Some(z) = z {
                let (zc, zt) = z_code(*i);
                components.push(json!({
                    "code": concept(&code_system("who-growth-z"), zc, zt),
                    "valueQuantity": {"value": z, "unit": "SD", "system": terms::UCUM, "code": "{Z-score}"},
                }));
            }
        }
        let here: Vec<&Classification> = g
            .classification
            .iter()
            .filter(|c| indicators_of(m).contains(&c.indicator))
            .collect();
        for c in here {
            interpretation.push(concept(
                &code_system("who-growth-finding"),
                &finding_code(c.code),
                c.label,
            ));
        }
    }
    if !components.is_empty() {
        body["component"] = Value::Array(components);
    }
    if !interpretation.is_empty() {
        body["interpretation"] = Value::Array(interpretation);
    }
    if m == Measure::Bmi {
        let length = v
            .measures()
            .into_iter()
            .find(|(x, _)| matches!(x, Measure::Length | Measure::Height))
            .map(|(x, _)| x);
        let mut from = vec![reference(
            "Observation",
            &format!("{}.{}", visit.id, Measure::Weight.suffix()),
        )];
        if let Some(l) = length {
            from.push(reference("Observation", &format!("{}.{}", visit.id, l.suffix())));
        }
        body["derivedFrom"] = Value::Array(from);
    }
    Res {
        id: format!("{}.{}", visit.id, m.suffix()),
        version: 1,
        last_updated: visit.recorded_at,
        body,
        patient: Some(visit.child_id.clone()),
    }
}

/// Every measurement of a visit as Observations.
pub fn observations(v: &ChildVisitView) -> Vec<Res> {
    v.measures().into_iter().map(|(m, x)| observation(v, m, x)).collect()
}

/// A child visit's Encounter, or None when the id is not a child visit.
pub fn read_encounter(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Option<Res>, FhirError> {
    match child::child_visit_in(c, actor, id) {
        Ok(v) => Ok(Some(encounter(&v))),
        Err(crate::error::ServiceError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One measurement of a child visit (`<visit id>.<measure>`), or None when it is not one.
pub fn read_observation(
    c: &mut AnyConnection,
    actor: &Actor,
    visit_id: &str,
    suffix: &str,
) -> Result<Option<Res>, FhirError> {
    let Some(m) = Measure::of_suffix(suffix) else {
        return Ok(None);
    };
    let v = match child::child_visit_in(c, actor, visit_id) {
        Ok(v) => v,
        Err(crate::error::ServiceError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(v.measures()
        .into_iter()
        .find(|(x, _)| *x == m)
        .map(|(x, value)| observation(&v, x, value)))
}

/// A child's visits and their measurements, for her `$everything`.
pub fn everything(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    let mut out = Vec::new();
    for v in child::child_visits_for_person_in(c, actor, person_id)? {
        out.push(("Encounter", encounter(&v)));
        out.extend(observations(&v).into_iter().map(|o| ("Observation", o)));
    }
    Ok(out)
}
