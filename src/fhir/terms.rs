//! What the pathway resources (EpisodeOfCare, Encounter, RiskAssessment, Flag, ServiceRequest,
//! Task, Organization, Location, AuditEvent) share: our own code systems and extensions under
//! `http://mch-chain.example/fhir/` (each listed in README.md), references, dates, and reading the
//! search criteria they have in common.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use super::FhirError;
use super::json::instant;
use super::search::{Query, reference as reference_param, time_range, token};
use crate::error::ServiceError;
use crate::ids::TimeRange;

/// Where our code systems and extensions live (README.md "Our code systems and extensions").
pub const BASE: &str = "http://mch-chain.example/fhir";
/// UCUM, for every quantity.
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const LOINC: &str = "http://loinc.org";

/// One of our code systems: `http://mch-chain.example/fhir/CodeSystem/<name>`.
pub fn code_system(name: &str) -> String {
    format!("{BASE}/CodeSystem/{name}")
}

/// One of our extensions: `http://mch-chain.example/fhir/StructureDefinition/<name>`.
pub fn extension(name: &str) -> String {
    format!("{BASE}/StructureDefinition/{name}")
}

/// `{"reference": "Type/id"}`.
pub fn reference(ty: &str, id: &str) -> Value {
    json!({"reference": format!("{ty}/{id}")})
}

pub fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// A CodeableConcept of one coding, its display as the text.
pub fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [coding(system, code, display)], "text": display})
}

/// A clinical (local, China) date as a FHIR `date`.
pub fn date(d: NaiveDate) -> Value {
    json!(d.to_string())
}

/// A UTC time as a FHIR `dateTime`/`instant`.
pub fn time(t: NaiveDateTime) -> Value {
    json!(instant(t))
}

/// A UCUM quantity.
pub fn quantity(value: f64, ucum: &str, unit: &str) -> Value {
    json!({"value": value, "unit": unit, "system": UCUM, "code": ucum})
}

/// The China days a UTC range touches, as `[from, to)` (for date columns: visit dates, booking).
pub fn china_days(r: TimeRange) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let local = |t: NaiveDateTime| t + chrono::Duration::hours(8);
    let from = r.from.map(|t| local(t).date());
    let to = r.to.map(|t| {
        let l = local(t);
        if l.time() == chrono::NaiveTime::MIN {
            l.date()
        } else {
            l.date().succ_opt().unwrap_or(l.date())
        }
    });
    (from, to)
}

/// The patient a search names (`patient=Patient/…`, or another parameter of the same meaning such
/// as `subject`); two different patients in one search are refused.
pub fn patient_criterion(q: &Query, names: &[&str]) -> Result<Option<String>, FhirError> {
    let mut found: Option<String> = None;
    for (name, _, value) in q.criteria.iter().filter(|(n, _, _)| names.contains(&n.as_str())) {
        let id = reference_param(name, value, "Patient")?;
        if found.as_ref().is_some_and(|f| *f != id) {
            return Err(FhirError::bad_request(format!(
                "search parameter {name}: one patient per search"
            )));
        }
        found = Some(id);
    }
    Ok(found)
}

/// A reference criterion to one resource type (the last one given wins when several agree).
pub fn reference_criterion(q: &Query, name: &str, ty: &str) -> Result<Option<String>, FhirError> {
    let mut found: Option<String> = None;
    for (_, _, value) in q.criteria.iter().filter(|(n, _, _)| n == name) {
        let id = reference_param(name, value, ty)?;
        if found.as_ref().is_some_and(|f| *f != id) {
            return Err(FhirError::bad_request(format!(
                "search parameter {name}: one {ty} per search"
            )));
        }
        found = Some(id);
    }
    Ok(found)
}

/// Every occurrence of a date parameter, intersected.
pub fn date_criterion(q: &Query, name: &str) -> Result<TimeRange, FhirError> {
    let mut r = TimeRange::default();
    for (_, _, value) in q.criteria.iter().filter(|(n, _, _)| n == name) {
        r = r.and(time_range(name, value)?);
    }
    Ok(r)
}

/// The codes of a token parameter (`a,b` is either; `system|code` keeps the code), each
/// occurrence AND-ed: `None` when the parameter is absent, else the codes every occurrence allows.
pub fn token_criterion(q: &Query, name: &str) -> Option<Vec<String>> {
    let mut allowed: Option<Vec<String>> = None;
    for (_, _, value) in q.criteria.iter().filter(|(n, _, _)| n == name) {
        let codes: Vec<String> = value.split(',').map(|v| token(v.trim()).1).collect();
        allowed = Some(match allowed {
            Some(prev) => prev.into_iter().filter(|c| codes.contains(c)).collect(),
            None => codes,
        });
    }
    allowed
}

/// A service refusal as a FHIR answer: a missing record is 404 naming `Type/id`; a refusal for
/// lack of access stays 403 with its audit target.
pub fn not_found_as(e: ServiceError, ty: &str, id: &str) -> FhirError {
    match e {
        ServiceError::NotFound(_) => FhirError::not_found(format!("{ty}/{id} does not exist")),
        e => FhirError::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_days_cover_every_local_day_the_range_touches() {
        let r = time_range("date", "2026-03-01").unwrap();
        let (from, to) = china_days(r);
        assert_eq!(from.unwrap().to_string(), "2026-03-01");
        assert_eq!(to.unwrap().to_string(), "2026-03-02");
        let r = time_range("date", "gt2026-03-01T10:00:00Z").unwrap();
        assert_eq!(china_days(r).0.unwrap().to_string(), "2026-03-01");
        let r = time_range("date", "lt2026-03-01T10:00:00+08:00").unwrap();
        assert_eq!(china_days(r).1.unwrap().to_string(), "2026-03-02");
    }
}
