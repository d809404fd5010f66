//! What the clinical resource types (Observation, Condition, Immunization) read and write alike:
//! business identifiers, CodeableConcepts and code systems, choice elements (`value[x]`), dates,
//! and the rule that merges our columns with the document as received (see README.md).

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use super::FhirError;
use super::json::{At, Coding, coding, parse_datetime, reference_id};

pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const UCUM: &str = "http://unitsofmeasure.org";
/// HL7 v2 coding systems without a URI of their own (a hospital's local `L`, `99xxx` …) are
/// written as this prefix and the v2 name.
pub const HL7_SYSTEM_PREFIX: &str = "urn:mch-chain:hl7:";

/// The FHIR system URI of a code system as stored (HL7 v2 names such as `LN` from messages, or
/// a URI from FHIR documents); None when no system was given.
pub fn fhir_system(stored: &str) -> Option<String> {
    let s = stored.trim();
    match s {
        "" => None,
        "LN" | "LOINC" => Some(LOINC.to_string()),
        "SCT" | "SNM" | "SNM3" | "SNOMED" | "SNOMEDCT" => Some(SNOMED.to_string()),
        "UCUM" => Some(UCUM.to_string()),
        "I10" | "ICD10" => Some("http://hl7.org/fhir/sid/icd-10".to_string()),
        s if s.contains(':') => Some(s.to_string()),
        s => Some(format!("{HL7_SYSTEM_PREFIX}{s}")),
    }
}

/// The stored forms a FHIR system URI may have (for a token search): the URI itself and the
/// HL7 v2 names that [`fhir_system`] writes as it.
pub fn stored_systems(uri: &str) -> Vec<String> {
    let mut out = vec![uri.to_string()];
    if let Some(name) = uri.strip_prefix(HL7_SYSTEM_PREFIX) {
        out.push(name.to_string());
    }
    for name in [
        "LN", "LOINC", "SCT", "SNM", "SNM3", "SNOMED", "SNOMEDCT", "UCUM", "I10", "ICD10",
    ] {
        if fhir_system(name).as_deref() == Some(uri) {
            out.push(name.to_string());
        }
    }
    out
}

/// The codings of a CodeableConcept that carry a code, and its text.
pub fn codings(cc: &At<'_>) -> Result<(Vec<Coding>, Option<String>), FhirError> {
    let mut out = Vec::new();
    for c in cc.list("coding")? {
        if !c.value.is_object() {
            return Err(c.error(format!("{} must be a Coding", c.path())));
        }
        let k = coding(&c)?;
        if k.code.is_some() {
            out.push(k);
        }
    }
    Ok((out, cc.str("text")?.map(str::to_string)))
}

/// A CodeableConcept as stored: (system, code, text) of its chosen coding — the first that
/// `prefer` accepts, else the first with a code — and the codes of the others. Refused (422)
/// when the element is missing and `required`, or has neither a code nor a text.
pub struct Concept {
    pub system: String,
    pub code: String,
    pub text: String,
    pub others: Vec<String>,
}

pub fn concept(
    root: &At<'_>,
    key: &str,
    required: bool,
    prefer: &dyn Fn(&Coding) -> bool,
) -> Result<Option<Concept>, FhirError> {
    let Some(cc) = root.child(key) else {
        if required {
            return Err(
                FhirError::new(422, "required", format!("{}.{key} is required", root.path()))
                    .at(format!("{}.{key}", root.path())),
            );
        }
        return Ok(None);
    };
    if !cc.value.is_object() {
        return Err(cc.error(format!("{} must be a CodeableConcept", cc.path())));
    }
    let (list, text) = codings(&cc)?;
    let chosen = list
        .iter()
        .position(prefer)
        .or(if list.is_empty() { None } else { Some(0) });
    let Some(i) = chosen else {
        return match text {
            Some(t) => Ok(Some(Concept {
                system: String::new(),
                code: String::new(),
                text: t,
                others: Vec::new(),
            })),
            None => Err(cc.error(format!("{} needs a coding with a code, or a text", cc.path()))),
        };
    };
    let c = &list[i];
    Ok(Some(Concept {
        system: c.system.clone().unwrap_or_default(),
        code: c.code.clone().unwrap_or_default(),
        text: c.display.clone().or(text).unwrap_or_default(),
        others: list
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .filter_map(|(_, k)| k.code.clone())
            .collect(),
    }))
}

/// A CodeableConcept from stored columns: the coding (system written as a URI) and its display.
pub fn codeable(system: &str, code: &str, text: &str) -> Value {
    if code.is_empty() {
        return json!({"text": text});
    }
    let mut coding = json!({"code": code});
    if let Some(s) = fhir_system(system) {
        coding["system"] = json!(s);
    }
    if !text.is_empty() {
        coding["display"] = json!(text);
    }
    json!({"coding": [coding]})
}

/// Whether a CodeableConcept (as in a document) has a coding with this code in this stored system.
pub fn has_coding(cc: &Value, system: &str, code: &str) -> bool {
    let want = fhir_system(system);
    cc.get("coding").and_then(Value::as_array).is_some_and(|list| {
        list.iter().any(|c| {
            c.get("code").and_then(Value::as_str) == Some(code)
                && c.get("system").and_then(Value::as_str).map(str::to_string) == want
        })
    })
}

/// The business identifiers of a resource: every one needs an absolute-URI system and a value.
pub fn identifiers(root: &At<'_>) -> Result<Vec<(String, String)>, FhirError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for ident in root.list("identifier")? {
        let Some(system) = ident.str("system")? else {
            return Err(FhirError::invalid(
                &format!("{}.system", ident.path()),
                "every identifier needs a system (an absolute URI naming who assigned it)",
            ));
        };
        if !system.contains(':') {
            return Err(FhirError::invalid(
                &format!("{}.system", ident.path()),
                format!("identifier system {system} must be an absolute URI (urn:oid:…, http(s)://…)"),
            ));
        }
        let value = ident.required_str("value")?.trim().to_string();
        if value.chars().count() > 200 {
            return Err(FhirError::invalid(
                &format!("{}.value", ident.path()),
                "an identifier value may have at most 200 characters",
            ));
        }
        if !out.iter().any(|(s, v)| s == system && *v == value) {
            out.push((system.to_string(), value));
        }
    }
    Ok(out)
}

/// The identifiers we hold, as FHIR; the document's own list when it names the same ones (it keeps
/// `use`, `type`, `assigner`).
pub fn render_identifiers(ours: &[(String, String)], doc: Option<&Map<String, Value>>) -> Option<Value> {
    if ours.is_empty() {
        return None;
    }
    if let Some(list) = doc.and_then(|d| d.get("identifier")).and_then(Value::as_array) {
        let mut theirs: Vec<(String, String)> = list
            .iter()
            .filter_map(|i| {
                Some((
                    i.get("system")?.as_str()?.to_string(),
                    i.get("value")?.as_str()?.trim().to_string(),
                ))
            })
            .collect();
        theirs.sort();
        theirs.dedup();
        let mut mine = ours.to_vec();
        mine.sort();
        if theirs == mine && theirs.len() == list.len() {
            return Some(Value::Array(list.clone()));
        }
    }
    Some(Value::Array(
        ours.iter().map(|(s, v)| json!({"system": s, "value": v})).collect(),
    ))
}

/// The Patient a reference element names (required).
pub fn patient_of(root: &At<'_>, key: &str) -> Result<String, FhirError> {
    let Some(r) = root.child(key) else {
        return Err(FhirError::new(
            422,
            "required",
            format!("{}.{key} is required (a reference to the Patient)", root.path()),
        )
        .at(format!("{}.{key}", root.path())));
    };
    reference_id(&r, "Patient")
}

/// A reference to a Patient; the document's own (with its display) while it names the same one.
pub fn render_patient(person_id: &str, doc: Option<&Map<String, Value>>, key: &str) -> Value {
    let ours = format!("Patient/{person_id}");
    if let Some(d) = doc.and_then(|d| d.get(key))
        && d.get("reference").and_then(Value::as_str) == Some(ours.as_str())
    {
        return d.clone();
    }
    json!({"reference": ours})
}

/// The one element of a choice (`value[x]`) present, refusing two; `allowed` are the type
/// suffixes we read (`Quantity`, `String` …).
pub fn choice<'a>(root: &At<'a>, prefix: &str, allowed: &[&str]) -> Result<Option<(String, At<'a>)>, FhirError> {
    let Some(obj) = root.value.as_object() else {
        return Ok(None);
    };
    let mut found: Option<(String, At<'a>)> = None;
    for key in obj.keys() {
        let Some(suffix) = key.strip_prefix(prefix) else {
            continue;
        };
        if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        if obj.get(key).is_some_and(Value::is_null) {
            continue;
        }
        if !allowed.contains(&suffix) {
            return Err(FhirError::unsupported(
                &format!("{}.{key}", root.path()),
                format!(
                    "{}.{key} is not supported here (use {})",
                    root.path(),
                    allowed
                        .iter()
                        .map(|a| format!("{prefix}{a}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some((other, _)) = &found {
            return Err(FhirError::invalid(
                &format!("{}.{key}", root.path()),
                format!(
                    "{}.{prefix}[x] may have one type only ({other} and {key} given)",
                    root.path()
                ),
            ));
        }
        if let Some(at) = root.child(key) {
            found = Some((key.clone(), at));
        }
    }
    Ok(found)
}

/// A FHIR `dateTime` element: its text and the UTC instant it starts at; refused when not one.
pub fn date_time(at: &At<'_>) -> Result<(String, NaiveDateTime), FhirError> {
    let s = at
        .value
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| at.error(format!("{} must be a FHIR dateTime string", at.path())))?;
    if !is_fhir_date_time(s) {
        return Err(at.error(format!(
            "{} {s} is not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone)",
            at.path()
        )));
    }
    let (start, _) = parse_datetime(s).ok_or_else(|| at.error(format!("{} {s} is not a valid date", at.path())))?;
    Ok((s.to_string(), start))
}

/// Whether text is a FHIR R4 `dateTime`: a date of 1–3 parts, or a full time with seconds and a zone.
pub fn is_fhir_date_time(s: &str) -> bool {
    if super::json::parse_date(s).is_some() {
        return true;
    }
    s.contains('T') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Whether a document's element names the same instant as ours (a date as its first moment).
pub fn same_instant(v: &Value, at: NaiveDateTime) -> bool {
    v.as_str().and_then(parse_datetime).map(|(s, _)| s) == Some(at)
}

/// The document kept beside a record, as a JSON object.
pub fn document(received: Option<&str>) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(received?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Fill `body` (what our columns say) from the document: an element we hold (`held`, a choice
/// by its prefix such as `value`) replaces ours only when `agrees` says the document still says
/// the same as our record; every other element of the document fills a gap. A primitive's
/// extension (`_status`) follows its element.
pub fn fill_from_document(
    body: &mut Map<String, Value>,
    doc: &Map<String, Value>,
    held: &[&str],
    agrees: &dyn Fn(&str, &Value) -> bool,
) {
    let is_held = |key: &str| {
        held.iter().any(|h| {
            key == *h
                || key
                    .strip_prefix(h)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
    };
    for (key, val) in doc {
        if key == "resourceType" || key.starts_with('_') {
            continue;
        }
        if is_held(key) {
            if agrees(key, val) {
                // The document's form of the element (its choice type too) replaces ours.
                let prefix = held
                    .iter()
                    .find(|h| key.starts_with(**h))
                    .copied()
                    .unwrap_or(key.as_str());
                body.retain(|k, _| {
                    !(k == prefix
                        || (k.starts_with(prefix) && k[prefix.len()..].starts_with(|c: char| c.is_ascii_uppercase())))
                });
                body.insert(key.clone(), val.clone());
            }
        } else if !body.contains_key(key) {
            body.insert(key.clone(), val.clone());
        }
    }
    for (key, val) in doc {
        if let Some(base) = key.strip_prefix('_')
            && body.get(base).is_some()
            && body.get(base) == doc.get(base)
        {
            body.insert(key.clone(), val.clone());
        }
    }
}

/// A required code from a FHIR required value set (`system` fixed): the code, or 422 naming the
/// element and the codes allowed.
pub fn required_code(root: &At<'_>, key: &str, system: &str, allowed: &[&str]) -> Result<Option<String>, FhirError> {
    let Some(cc) = root.child(key) else { return Ok(None) };
    if !cc.value.is_object() {
        return Err(cc.error(format!("{} must be a CodeableConcept", cc.path())));
    }
    let list = cc.list("coding")?;
    let mut found: Option<String> = None;
    for c in &list {
        let k = coding(c)?;
        let (Some(s), Some(code)) = (k.system.as_deref(), k.code.as_deref()) else {
            continue;
        };
        if s != system {
            continue;
        }
        if !allowed.contains(&code) {
            return Err(FhirError::new(
                422,
                "code-invalid",
                format!(
                    "{}: {code} is not a code of {system} (one of {})",
                    c.path(),
                    allowed.join(", ")
                ),
            )
            .at(format!("{}.code", c.path())));
        }
        if found.as_deref().is_some_and(|f| f != code) {
            return Err(FhirError::invalid(
                cc.path(),
                format!("{} gives two different codes of {system}", cc.path()),
            ));
        }
        found = Some(code.to_string());
    }
    match found {
        Some(f) => Ok(Some(f)),
        None => Err(FhirError::new(
            422,
            "code-invalid",
            format!(
                "{} must have a coding from {system} (required value set: {})",
                cc.path(),
                allowed.join(", ")
            ),
        )
        .at(cc.path().to_string())),
    }
}

/// The code of a required-binding `code` element (a plain string), checked against its value set.
pub fn required_simple_code(root: &At<'_>, key: &str, allowed: &[&str]) -> Result<Option<String>, FhirError> {
    let Some(s) = root.str(key)? else { return Ok(None) };
    if !allowed.contains(&s) {
        return Err(FhirError::new(
            422,
            "code-invalid",
            format!("{}.{key} {s} is not one of {}", root.path(), allowed.join(", ")),
        )
        .at(format!("{}.{key}", root.path())));
    }
    Ok(Some(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_round_trip_between_hl7_names_and_uris() {
        assert_eq!(fhir_system("LN").as_deref(), Some(LOINC));
        assert_eq!(fhir_system("L").as_deref(), Some("urn:mch-chain:hl7:L"));
        assert_eq!(fhir_system(""), None);
        assert!(stored_systems(LOINC).contains(&"LN".to_string()));
        assert!(stored_systems("urn:mch-chain:hl7:L").contains(&"L".to_string()));
    }

    #[test]
    fn the_document_fills_gaps_and_replaces_only_what_agrees() {
        let mut body = Map::new();
        body.insert("status".into(), json!("final"));
        body.insert("valueQuantity".into(), json!({"value": 95.0, "unit": "g/L"}));
        let doc = json!({"status": "final", "_status": {"id": "s"}, "valueQuantity": {"value": 9.5, "unit": "g/dL"}, "note": [{"text": "x"}]});
        let doc = doc.as_object().unwrap();
        fill_from_document(&mut body, doc, &["status", "value"], &|k, _| k == "status");
        assert_eq!(body["valueQuantity"]["value"], 95.0);
        assert_eq!(body["note"][0]["text"], "x");
        assert_eq!(body["_status"]["id"], "s");
        let mut body2 = Map::new();
        body2.insert("valueQuantity".into(), json!({"value": 3}));
        fill_from_document(
            &mut body2,
            json!({"valueInteger": 3}).as_object().unwrap(),
            &["value"],
            &|_, _| true,
        );
        assert!(body2.get("valueQuantity").is_none());
        assert_eq!(body2["valueInteger"], 3);
    }

    #[test]
    fn fhir_date_times_are_recognised() {
        assert!(is_fhir_date_time("2014"));
        assert!(is_fhir_date_time("2017-11-10T08:20:00+01:00"));
        assert!(!is_fhir_date_time("2017-11-10T08:20"));
        assert!(!is_fhir_date_time("yesterday"));
    }
}
