//! Reading FHIR JSON with the FHIRPath of every element at hand, so a refusal names the element
//! (`Observation.valueQuantity.value`), and the R4 datatypes we read (dates, codings, references).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value};

use super::outcome::FhirError;

/// A JSON element and its FHIRPath.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: &'a str,
}

/// Owned path text for child nodes (paths are short; allocation per element is fine).
pub struct At<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> At<'a> {
    pub fn root(value: &'a Value, resource_type: &str) -> At<'a> {
        At {
            value,
            path: resource_type.to_string(),
        }
    }

    fn node(&self) -> Node<'_> {
        Node {
            value: self.value,
            path: &self.path,
        }
    }

    pub fn path(&self) -> &str {
        self.node().path
    }

    pub fn child(&self, key: &str) -> Option<At<'a>> {
        self.value.get(key).filter(|v| !v.is_null()).map(|v| At {
            value: v,
            path: format!("{}.{key}", self.path),
        })
    }

    /// A list element (`name[0]` …); a single value where a list belongs is refused.
    pub fn list(&self, key: &str) -> Result<Vec<At<'a>>, FhirError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| At {
                    value: v,
                    path: format!("{}.{key}[{i}]", self.path),
                })
                .collect()),
            Some(_) => Err(FhirError::invalid(
                &format!("{}.{key}", self.path),
                format!("{}.{key} must be an array", self.path),
            )),
        }
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, FhirError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(FhirError::invalid(
                &format!("{}.{key}", self.path),
                format!("{}.{key} must not be empty", self.path),
            )),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(FhirError::invalid(
                &format!("{}.{key}", self.path),
                format!("{}.{key} must be a string", self.path),
            )),
        }
    }

    pub fn required_str(&self, key: &str) -> Result<&'a str, FhirError> {
        self.str(key)?.ok_or_else(|| {
            FhirError::new(422, "required", format!("{}.{key} is required", self.path))
                .at(format!("{}.{key}", self.path))
        })
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, FhirError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(FhirError::invalid(
                &format!("{}.{key}", self.path),
                format!("{}.{key} must be true or false", self.path),
            )),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, FhirError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Some).ok_or_else(|| {
                FhirError::invalid(
                    &format!("{}.{key}", self.path),
                    format!("{}.{key} is not a number", self.path),
                )
            }),
            Some(_) => Err(FhirError::invalid(
                &format!("{}.{key}", self.path),
                format!("{}.{key} must be a JSON number", self.path),
            )),
        }
    }

    pub fn error(&self, diagnostics: impl Into<String>) -> FhirError {
        FhirError::invalid(&self.path, diagnostics)
    }
}

/// Check the resource's shape before reading it: a JSON object of the expected type, only R4
/// elements of that type (a misspelt element is refused, never silently dropped), and no
/// `modifierExtension` (its meaning would change the record's and we cannot know it).
pub fn check_resource(v: &Value, resource_type: &str, elements: &[&str]) -> Result<(), FhirError> {
    let Some(obj) = v.as_object() else {
        return Err(FhirError::bad_request(
            "the body must be a JSON object (a FHIR resource)",
        ));
    };
    match obj.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == resource_type => {}
        Some(t) => {
            return Err(
                FhirError::bad_request(format!("resourceType is {t}, but the request is for {resource_type}"))
                    .at("resourceType"),
            );
        }
        None => return Err(FhirError::bad_request("resourceType is missing").at("resourceType")),
    }
    for key in obj.keys() {
        let base = key.strip_prefix('_').unwrap_or(key);
        if !elements.contains(&base) && !COMMON.contains(&base) {
            return Err(FhirError::new(
                422,
                "structure",
                format!("{resource_type}.{key} is not an element of {resource_type} (FHIR R4)"),
            )
            .at(format!("{resource_type}.{key}")));
        }
    }
    if obj.get("modifierExtension").is_some() {
        return Err(FhirError::unsupported(
            &format!("{resource_type}.modifierExtension"),
            "modifierExtension is not understood by this server, so the resource cannot be accepted",
        ));
    }
    if obj.get("contained").is_some() {
        return Err(FhirError::unsupported(
            &format!("{resource_type}.contained"),
            "contained resources are not supported; send them as their own resources (a transaction Bundle)",
        ));
    }
    Ok(())
}

/// Elements every resource has.
const COMMON: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "extension",
    "modifierExtension",
    "contained",
];

/// The document as received, for keeping beside the record: without `id`, `meta` (server
/// owned: a client's versionId/lastUpdated are ignored, RELIABILITY.md 18) and `text` (the
/// narrative is regenerated from the data rather than trusted).
pub fn received(v: &Value) -> Option<String> {
    let mut obj: Map<String, Value> = v.as_object()?.clone();
    obj.remove("id");
    obj.remove("meta");
    obj.remove("text");
    Some(Value::Object(obj).to_string())
}

/// A FHIR `date` (YYYY, YYYY-MM, YYYY-MM-DD): the first day it names, and its precision.
pub fn parse_date(s: &str) -> Option<(NaiveDate, usize)> {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize| {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [y] => NaiveDate::from_ymd_opt(num(y, 4)? as i32, 1, 1).map(|d| (d, 1)),
        [y, m] => NaiveDate::from_ymd_opt(num(y, 4)? as i32, num(m, 2)?, 1).map(|d| (d, 2)),
        [y, m, d] => NaiveDate::from_ymd_opt(num(y, 4)? as i32, num(m, 2)?, num(d, 2)?).map(|d| (d, 3)),
        _ => None,
    }
}

/// A FHIR `dateTime`/`instant` as the UTC period it names: `[start, end)`. A date alone (or a
/// time without zone, which R4 forbids but systems send) is read as China local time.
pub fn parse_datetime(s: &str) -> Option<(NaiveDateTime, NaiveDateTime)> {
    if let Some((d, precision)) = parse_date(s) {
        let start = d.and_time(NaiveTime::MIN);
        let end = match precision {
            1 => NaiveDate::from_ymd_opt(d.year_ce().1 as i32 + 1, 1, 1)?.and_time(NaiveTime::MIN),
            2 => d.checked_add_months(chrono::Months::new(1))?.and_time(NaiveTime::MIN),
            _ => d.succ_opt()?.and_time(NaiveTime::MIN),
        };
        let off = chrono::Duration::hours(8);
        return Some((start - off, end - off));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        let utc = dt.naive_utc();
        return Some((utc, utc + chrono::Duration::seconds(1)));
    }
    // Minutes only ("2026-01-02T10:30+08:00"), allowed in search values.
    for fmt in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%MZ"] {
        if let Ok(dt) = DateTime::parse_from_str(&s.replace('Z', "+00:00"), fmt) {
            let utc = dt.naive_utc();
            return Some((utc, utc + chrono::Duration::minutes(1)));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            // Local clinical time without a zone: China (UTC+8).
            let local = naive.and_local_timezone(FixedOffset::east_opt(8 * 3600)?).single()?;
            let utc = local.naive_utc();
            return Some((utc, utc + chrono::Duration::seconds(1)));
        }
    }
    None
}

use chrono::Datelike;

/// A UTC time as a FHIR `instant`/`dateTime`.
pub fn instant(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A Coding as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

pub fn coding(at: &At<'_>) -> Result<Coding, FhirError> {
    Ok(Coding {
        system: at.str("system")?.map(str::to_string),
        code: at.str("code")?.map(str::to_string),
        display: at.str("display")?.map(str::to_string),
    })
}

/// The first coding of a CodeableConcept that has a code, with the concept's text as fallback
/// display; refused when nothing codes it.
pub fn first_coding(cc: &At<'_>) -> Result<(String, String, String), FhirError> {
    let text = cc.str("text")?.unwrap_or_default().to_string();
    for c in cc.list("coding")? {
        let Coding { system, code, display } = coding(&c)?;
        if let Some(code) = code {
            return Ok((system.unwrap_or_default(), code, display.unwrap_or(text)));
        }
    }
    Err(cc.error(format!("{} needs a coding with a code", cc.path())))
}

/// The id a reference (`Patient/123`, or a full URL ending so) names, for one resource type.
pub fn reference_id(at: &At<'_>, resource_type: &str) -> Result<String, FhirError> {
    let Some(r) = at.str("reference")? else {
        return Err(at.error(format!("{}.reference is required", at.path())));
    };
    let tail: Vec<&str> = r.trim_end_matches('/').rsplitn(3, '/').collect();
    match tail.as_slice() {
        [id, t, ..] if *t == resource_type && super::valid_id(id) => Ok((*id).to_string()),
        _ => Err(FhirError::invalid(
            &format!("{}.reference", at.path()),
            format!("{}.reference must be {resource_type}/<id> (got {r})", at.path()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn partial_dates_and_date_times() {
        assert_eq!(
            parse_date("1957").map(|(d, p)| (d.to_string(), p)),
            Some(("1957-01-01".into(), 1))
        );
        assert_eq!(
            parse_date("2026-02").map(|(d, p)| (d.to_string(), p)),
            Some(("2026-02-01".into(), 2))
        );
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("26-02-01").is_none());
        assert!(parse_date("2026-2-1").is_none());
        let (start, end) = parse_datetime("2017-11-10T08:20:00+01:00").unwrap();
        assert_eq!(start.to_string(), "2017-11-10 07:20:00");
        assert_eq!(end - start, chrono::Duration::seconds(1));
        // A date alone is a China local day.
        let (start, end) = parse_datetime("2026-03-01").unwrap();
        assert_eq!(
            (start.to_string(), end.to_string()),
            ("2026-02-28 16:00:00".into(), "2026-03-01 16:00:00".into())
        );
        assert!(parse_datetime("yesterday").is_none());
        assert_eq!(instant(start), "2026-02-28T16:00:00.000Z");
    }

    #[test]
    fn only_r4_elements_of_the_type_are_accepted() {
        let ok = json!({"resourceType": "Patient", "gender": "female", "_gender": {"extension": []}});
        assert!(check_resource(&ok, "Patient", &["gender"]).is_ok());
        let typo = json!({"resourceType": "Patient", "gendr": "female"});
        let e = check_resource(&typo, "Patient", &["gender"]).unwrap_err();
        assert_eq!(
            (e.status, e.issues[0].expression.as_deref()),
            (422, Some("Patient.gendr"))
        );
        let wrong_type = json!({"resourceType": "Observation"});
        assert_eq!(check_resource(&wrong_type, "Patient", &[]).unwrap_err().status, 400);
        let modifier = json!({"resourceType": "Patient", "modifierExtension": [{"url": "x"}]});
        assert_eq!(check_resource(&modifier, "Patient", &[]).unwrap_err().status, 422);
        assert_eq!(check_resource(&json!([1]), "Patient", &[]).unwrap_err().status, 400);
    }

    #[test]
    fn references_name_one_type_and_a_valid_id() {
        let v = json!({"subject": {"reference": "Patient/abc-1"}, "bad": {"reference": "Patient/../x"}, "other": {"reference": "Group/1"}});
        let root = At::root(&v, "Observation");
        assert_eq!(
            reference_id(&root.child("subject").unwrap(), "Patient").unwrap(),
            "abc-1"
        );
        assert!(reference_id(&root.child("bad").unwrap(), "Patient").is_err());
        let e = reference_id(&root.child("other").unwrap(), "Patient").unwrap_err();
        assert_eq!(e.issues[0].expression.as_deref(), Some("Observation.other.reference"));
    }

    #[test]
    fn the_received_document_drops_server_owned_elements() {
        let v = json!({"resourceType": "Patient", "id": "x", "meta": {"versionId": "9"}, "text": {"div": "<div/>"}, "gender": "female"});
        let kept: serde_json::Value = serde_json::from_str(&received(&v).unwrap()).unwrap();
        assert_eq!(kept, json!({"resourceType": "Patient", "gender": "female"}));
    }
}
