//! Observation ↔ result (observations feature). See README.md "Observation".
//!
//! A posted Observation takes the same road as an HL7 OBX: the result catalogue
//! (`rules/hl7/results.toml`) recognises the code, the value is checked and converted, and a
//! result that decides a risk fact proposes a re-grade. A result that states fetal sex is refused
//! whole (RULES.md §9.1).

use serde_json::{Map, Value, json};

use super::clinical::{
    self, LOINC, UCUM, choice, codeable, concept, date_time, document, fill_from_document, has_coding, patient_of,
    render_identifiers, render_patient, same_instant,
};
use super::json::{At, check_resource, received};
use super::search::{ParamDef, Query, reference, time_range, token};
use super::{FhirError, Kind, Page, Res, Written};
use crate::auth::model::Actor;
use crate::child::model::Measure;
use crate::child::service::{self as child, GrowthQuery};
use crate::error::{AuditTarget, ServiceError};
use crate::observations::model::{ResultInput, StoredResult, UCUM_UNITS, catalogue};
use crate::observations::repo::CodeMatch;
use crate::observations::service::{self as results, DocumentResult, FETAL_SEX_REFUSED, ResultQuery};
use crate::storage::AnyConnection;

const ELEMENTS: &[&str] = &[
    "identifier",
    "basedOn",
    "partOf",
    "status",
    "category",
    "code",
    "subject",
    "focus",
    "encounter",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveTiming",
    "effectiveInstant",
    "issued",
    "performer",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
    "dataAbsentReason",
    "interpretation",
    "note",
    "bodySite",
    "method",
    "specimen",
    "device",
    "referenceRange",
    "hasMember",
    "derivedFrom",
    "component",
];

const VALUE_TYPES: &[&str] = &[
    "Quantity",
    "CodeableConcept",
    "String",
    "Boolean",
    "Integer",
    "Range",
    "Ratio",
    "SampledData",
    "Time",
    "DateTime",
    "Period",
];

const V3_INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

pub struct ObservationKind;

/// FHIR `Observation.status` → the stored status (HL7 table 0085). `unknown` has no place: a
/// result whose status nobody knows cannot be said to count or not.
pub fn status_letter(fhir: &str) -> Option<&'static str> {
    Some(match fhir {
        "final" => "F",
        "amended" | "corrected" => "C",
        "preliminary" => "P",
        "registered" => "I",
        "cancelled" => "X",
        "entered-in-error" => "W",
        _ => return None,
    })
}

/// The stored status (HL7 table 0085) → FHIR `Observation.status`.
pub fn status_fhir(letter: &str) -> &'static str {
    match letter.trim() {
        "F" | "U" | "" => "final",
        "C" => "corrected",
        "P" | "R" | "S" => "preliminary",
        "I" | "O" => "registered",
        "X" | "N" => "cancelled",
        "W" | "D" => "entered-in-error",
        _ => "unknown",
    }
}

/// The stored statuses a FHIR status search value finds.
fn letters_for(fhir: &str) -> Option<Vec<String>> {
    let l: &[&str] = match fhir {
        "final" => &["F", "U", ""],
        "amended" | "corrected" => &["C"],
        "preliminary" => &["P", "R", "S"],
        "registered" => &["I", "O"],
        "cancelled" => &["X", "N"],
        "entered-in-error" => &["W", "D"],
        _ => return None,
    };
    Some(l.iter().map(|s| s.to_string()).collect())
}

/// The unit a Quantity is read in: its UCUM code, else its text unit, else any code.
fn quantity_unit(q: &Value) -> Option<String> {
    let code = q.get("code").and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let unit = q.get("unit").and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    let ucum = q.get("system").and_then(Value::as_str) == Some(UCUM);
    match (ucum, code, unit) {
        (true, Some(c), _) => Some(c.to_string()),
        (_, _, Some(u)) => Some(u.to_string()),
        (_, Some(c), None) => Some(c.to_string()),
        _ => None,
    }
}

fn number_text(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// What a posted Observation asks us to record, and the FHIRPaths of its value and time.
struct Incoming {
    person_id: String,
    doc: DocumentResult,
    value_path: String,
    unit_path: String,
    effective_path: String,
}

fn incoming(body: &Value) -> Result<Incoming, FhirError> {
    check_resource(body, "Observation", ELEMENTS)?;
    let root = At::root(body, "Observation");
    let status = root.required_str("status")?;
    let letter = status_letter(status).ok_or_else(|| {
        FhirError::new(
            422,
            "code-invalid",
            format!(
                "Observation.status {status} is not accepted (final, amended, corrected, preliminary, registered, cancelled, entered-in-error)"
            ),
        )
        .at("Observation.status")
    })?;
    let person_id = patient_of(&root, "subject")?;
    let cat = catalogue();
    let code = concept(&root, "code", true, &|c| {
        c.code.as_deref().is_some_and(|k| cat.by_code(k).is_some())
    })?
    .ok_or_else(|| FhirError::new(422, "required", "Observation.code is required").at("Observation.code"))?;
    let mut input = ResultInput {
        index: 1,
        code: code.code.clone(),
        code_text: code.text.clone(),
        code_system: code.system.clone(),
        alt_code: code.others.first().cloned().unwrap_or_default(),
        status: letter.to_string(),
        ..ResultInput::default()
    };
    let mut value_type = String::new();
    let mut value_path = "Observation.value[x]".to_string();
    let mut unit_path = "Observation.value[x]".to_string();
    if let Some((key, v)) = choice(&root, "value", VALUE_TYPES)? {
        value_path = v.path().to_string();
        unit_path = v.path().to_string();
        match key.as_str() {
            "valueQuantity" => {
                if !v.value.is_object() {
                    return Err(v.error("Observation.valueQuantity must be a Quantity"));
                }
                let number = v.number("value")?;
                v.str("unit")?;
                v.str("code")?;
                value_path = format!("{}.value", v.path());
                unit_path = if v.value.get("unit").is_some() || v.value.get("code").is_none() {
                    format!("{}.unit", v.path())
                } else {
                    format!("{}.code", v.path())
                };
                let text = number.map(|_| number_text(&v.value["value"])).unwrap_or_default();
                match v.str("comparator")? {
                    Some(cmp) => {
                        // "<5": not an exact number — kept as text, as HL7 keeps an SN.
                        input.value_type = "SN".into();
                        input.value = format!("{cmp}{text}");
                        value_type = "SN".into();
                    }
                    None => {
                        input.value_type = "NM".into();
                        input.value = text;
                        value_type = "NM".into();
                    }
                }
                input.unit = quantity_unit(v.value).unwrap_or_default();
            }
            "valueCodeableConcept" => {
                let c = concept(&root, "valueCodeableConcept", true, &|_| false)?;
                if let Some(c) = c {
                    input.value_type = "CWE".into();
                    if c.code.is_empty() {
                        input.value = c.text;
                    } else {
                        input.value = c.code;
                        input.value_text = c.text;
                    }
                }
                value_type = "CWE".into();
            }
            "valueString" => {
                input.value_type = "ST".into();
                input.value = root.required_str("valueString")?.to_string();
                value_type = "ST".into();
            }
            "valueBoolean" => {
                let b = root.bool("valueBoolean")?.unwrap_or_default();
                input.value_type = "boolean".into();
                input.value = b.to_string();
                value_type = "boolean".into();
            }
            "valueInteger" => {
                let n = v
                    .value
                    .as_i64()
                    .ok_or_else(|| v.error("Observation.valueInteger must be a whole number"))?;
                input.value_type = "NM".into();
                input.value = n.to_string();
                value_type = "integer".into();
            }
            "valueDateTime" => {
                let (text, _) = date_time(&v)?;
                input.value_type = "DTM".into();
                input.value = text;
                value_type = "DTM".into();
            }
            "valueTime" => {
                input.value_type = "TM".into();
                input.value = root.required_str("valueTime")?.to_string();
                value_type = "time".into();
            }
            other => {
                // Range, Ratio, Period, SampledData: kept in the document as received.
                value_type = other.trim_start_matches("value").to_string();
            }
        }
    }
    let mut effective_path = "Observation.effective[x]".to_string();
    if let Some((key, e)) = choice(&root, "effective", &["DateTime", "Instant", "Period", "Timing"])? {
        effective_path = e.path().to_string();
        input.effective = Some(match key.as_str() {
            "effectiveDateTime" | "effectiveInstant" => date_time(&e)?.1,
            "effectivePeriod" => {
                let part = e
                    .child("start")
                    .or_else(|| e.child("end"))
                    .ok_or_else(|| e.error("Observation.effectivePeriod needs a start or an end"))?;
                effective_path = part.path().to_string();
                date_time(&part)?.1
            }
            _ => {
                return Err(FhirError::unsupported(
                    "Observation.effectiveTiming",
                    "Observation.effectiveTiming is not supported: send effectiveDateTime or effectivePeriod",
                ));
            }
        });
    }
    if let Some(first) = root.list("interpretation")?.first() {
        let (list, _) = clinical::codings(first)?;
        input.abnormal_flag = list.first().and_then(|c| c.code.clone()).unwrap_or_default();
    }
    let identifiers = clinical::identifiers(&root)?;
    Ok(Incoming {
        person_id,
        doc: DocumentResult {
            input,
            value_type,
            other_codes: code.others,
            identifiers,
            received: received(body),
            source: "FHIR".into(),
        },
        value_path,
        unit_path,
        effective_path,
    })
}

/// Our value of a result, as a `value[x]` element.
fn our_value(o: &StoredResult) -> Option<(&'static str, Value)> {
    let text = o.value_text.clone();
    match o.value_type.as_str() {
        "NM" | "integer" | "SN" if o.value_num.is_some() => {
            let v = o.value_num.unwrap_or_default();
            if o.value_type == "integer" && o.unit.is_none() && v.fract() == 0.0 && v.abs() < 2e9 {
                return Some(("valueInteger", json!(v as i64)));
            }
            let mut q = json!({"value": v});
            if let Some(u) = &o.unit {
                q["unit"] = json!(u);
                if UCUM_UNITS.contains(&u.as_str()) {
                    q["system"] = json!(UCUM);
                    q["code"] = json!(u);
                }
            }
            Some(("valueQuantity", q))
        }
        "CE" | "CWE" | "CNE" | "CF" | "IS" | "ID" => text.map(|t| ("valueCodeableConcept", json!({"text": t}))),
        "boolean" => text.map(|t| ("valueBoolean", json!(t == "true"))),
        "DTM" | "DT" | "TS" => text.map(|t| {
            if clinical::is_fhir_date_time(&t) {
                ("valueDateTime", json!(t))
            } else {
                ("valueString", json!(t))
            }
        }),
        "time" => text.map(|t| ("valueTime", json!(t))),
        "Range" | "Ratio" | "Period" | "SampledData" => None,
        _ => text.map(|t| ("valueString", json!(t))),
    }
}

/// Whether the document's `value[x]` still says what our columns say.
fn value_agrees(key: &str, v: &Value, o: &StoredResult) -> bool {
    let text = o.value_text.as_deref();
    match key {
        "valueQuantity" => {
            let num = v.get("value").and_then(Value::as_f64);
            if let Some(cmp) = v.get("comparator").and_then(Value::as_str) {
                return o.value_type == "SN" && text == Some(format!("{cmp}{}", number_text(&v["value"])).as_str());
            }
            let same_num = match (num, o.value_num) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                (None, None) => true,
                _ => false,
            };
            same_num && quantity_unit(v) == o.unit
        }
        "valueCodeableConcept" => {
            let codes_match = v
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|c| c.get("code").and_then(Value::as_str) == text));
            o.value_type == "CWE" && (codes_match || v.get("text").and_then(Value::as_str) == text)
        }
        "valueString" | "valueDateTime" | "valueTime" => v.as_str().map(str::trim) == text,
        "valueBoolean" => v.as_bool().map(|b| b.to_string()).as_deref() == text,
        "valueInteger" => {
            let n = v.as_i64();
            n.is_some() && (n.map(|n| n as f64) == o.value_num || n.map(|n| n.to_string()).as_deref() == text)
        }
        _ => o.value_type == key.trim_start_matches("value"),
    }
}

/// The Observation of a stored result. Our columns say status, code, subject, time, value,
/// interpretation and identifiers; the document as received gives the rest, and its own form of
/// an element we hold while it still says the same (README.md).
pub fn render(o: &StoredResult) -> Res {
    let doc = document(o.received.as_deref());
    let mut body = Map::new();
    if let Some(ids) = render_identifiers(&o.identifiers, doc.as_ref()) {
        body.insert("identifier".into(), ids);
    }
    body.insert("status".into(), json!(status_fhir(&o.status)));
    if doc.is_none() && o.concept.is_some() {
        body.insert(
            "category".into(),
            json!([{"coding": [{"system": CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]),
        );
    }
    let mut code = codeable(&o.code_system, &o.code, &o.code_text);
    if let Some(d) = doc.as_ref().and_then(|d| d.get("code"))
        && (has_coding(d, &o.code_system, &o.code) || (o.code.is_empty() && d.get("text").is_some()))
    {
        code = d.clone();
    }
    if let Some(l) = &o.loinc
        && !has_coding(&code, LOINC, l)
    {
        let label = o
            .concept
            .as_deref()
            .and_then(|c| catalogue().concept(c))
            .map(|c| c.label.clone())
            .unwrap_or_default();
        let mut loinc = json!({"system": LOINC, "code": l});
        if !label.is_empty() {
            loinc["display"] = json!(label);
        }
        match code.get_mut("coding").and_then(Value::as_array_mut) {
            Some(list) => list.insert(0, loinc),
            None => code["coding"] = json!([loinc]),
        }
    }
    body.insert("code".into(), code);
    body.insert("subject".into(), render_patient(&o.person_id, doc.as_ref(), "subject"));
    // A document that gave no time gets none back (the time of receipt stood in for searching).
    if doc
        .as_ref()
        .is_none_or(|d| d.keys().any(|k| k.starts_with("effective")))
    {
        body.insert("effectiveDateTime".into(), json!(super::json::instant(o.effective_at)));
    }
    if let Some((k, v)) = our_value(o) {
        body.insert(k.into(), v);
    }
    match (&o.abnormal_flag, o.interpretation.as_deref()) {
        (Some(f), _) => {
            body.insert(
                "interpretation".into(),
                json!([{"coding": [{"system": V3_INTERPRETATION, "code": f}]}]),
            );
        }
        (None, Some(i)) => {
            let code = if i == "positive" { "POS" } else { "NEG" };
            body.insert(
                "interpretation".into(),
                json!([{"coding": [{"system": V3_INTERPRETATION, "code": code}]}]),
            );
        }
        _ => {}
    }
    if let Some(d) = &doc {
        let our_code = body.get("code").cloned().unwrap_or(Value::Null);
        let our_interpretation = body.get("interpretation").cloned();
        fill_from_document(
            &mut body,
            d,
            &[
                "identifier",
                "status",
                "code",
                "subject",
                "effective",
                "value",
                "interpretation",
            ],
            &|key, v| match key {
                "status" => {
                    v.as_str().and_then(status_letter) == Some(o.status.as_str())
                        || v.as_str() == Some(status_fhir(&o.status))
                }
                "effectiveDateTime" | "effectiveInstant" => same_instant(v, o.effective_at),
                "effectivePeriod" => same_instant(
                    v.get("start").or_else(|| v.get("end")).unwrap_or(&Value::Null),
                    o.effective_at,
                ),
                "interpretation" => {
                    let first = v
                        .get(0)
                        .and_then(|i| i.get("coding"))
                        .and_then(|c| c.get(0))
                        .and_then(|c| c.get("code"))
                        .and_then(Value::as_str);
                    first.is_some() && first == o.abnormal_flag.as_deref()
                        || our_interpretation.is_none() && first.is_none()
                }
                "code" => v == &our_code,
                "identifier" | "subject" => false,
                k if k.starts_with("value") => value_agrees(k, v, o),
                _ => false,
            },
        );
    }
    Res {
        id: o.id.clone(),
        version: 1,
        last_updated: o.created_at,
        body: Value::Object(body),
        patient: Some(o.person_id.clone()),
    }
}

fn not_found_as(e: ServiceError, id: &str) -> FhirError {
    match e {
        ServiceError::NotFound(_) => FhirError::not_found(format!("Observation/{id} does not exist")),
        e => FhirError::from(e),
    }
}

/// The growth-measurement part of an Observation search for one child: None when its criteria
/// exclude every visit measurement (a status other than final, codes none of them has).
fn growth_query(q: &Query, person_id: String) -> Result<Option<GrowthQuery>, FhirError> {
    let mut g = GrowthQuery {
        person_id,
        recorded: q.last_updated,
        ..GrowthQuery::default()
    };
    let mut effective = crate::ids::TimeRange::default();
    for (name, _, value) in &q.criteria {
        match name.as_str() {
            "date" => effective = effective.and(time_range("date", value)?),
            "code" => {
                let mut measures = Vec::new();
                for one in value.split(',') {
                    let (system, code) = token(one);
                    let loinc_ok = system.as_deref().is_none_or(|s| s == LOINC);
                    if let Some(m) = super::child_visit::measure_of_loinc(&code).filter(|_| loinc_ok) {
                        measures.push(m);
                    }
                }
                if measures.is_empty() {
                    return Ok(None);
                }
                g.measures = Some(match g.measures.take() {
                    Some(prev) => prev.into_iter().filter(|m| measures.contains(m)).collect(),
                    None => measures,
                });
            }
            "status" if !value.split(',').any(|s| s.trim() == "final") => return Ok(None),
            _ => {}
        }
    }
    let (from, to) = super::terms::china_days(effective);
    g.date_from = from;
    g.date_to = to;
    if let Some(ids) = &q.ids {
        g.ids = Some(
            ids.iter()
                .filter_map(|i| i.split_once('.'))
                .filter_map(|(v, s)| Measure::of_suffix(s).map(|m| (v.to_string(), m)))
                .collect(),
        );
    }
    Ok(Some(g))
}

impl Kind for ObservationKind {
    const TYPE: &'static str = "Observation";
    const CREATE: bool = true;
    const INCLUDES: &'static [&'static str] = &["Observation:patient", "Observation:subject"];
    const DOC: &'static str = "Results (laboratory and others) of a woman or child, the same records HL7 ORU^R01 results make; a search naming a child also finds her health visits' measurements (<visit id>.<measure>: body weight 29463-7, length 8306-3 / height 8302-2, head circumference 9843-4, BMI 39156-5, Hb 718-7, UCUM units, WHO 2006 z-scores as components) after her results. Results: codes recognised by the result catalogue (LOINC or local codes), values checked and converted to our units (a haemoglobin in g/dL is kept in g/L), a result that decides a risk fact proposes a re-grade. An Observation stating fetal sex is refused (RULES.md §9.1). Status maps to HL7 table 0085 (final F, amended/corrected C, preliminary P, registered I, cancelled X, entered-in-error W).";
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
            name: "date",
            kind: "date",
            doc: "effective time, with prefixes eq, gt, ge, lt, le (a date alone is a China day)",
        },
        ParamDef {
            name: "code",
            kind: "token",
            doc: "system|code or code, comma-separated for any of several; http://loinc.org|718-7 also finds results sent with a local code we map to that LOINC code",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "final | corrected (amended) | preliminary | registered | cancelled | entered-in-error",
        },
        ParamDef {
            name: "identifier",
            kind: "token",
            doc: "system|value, or value in any system",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        // A visit's measurement (`<visit id>.<measurement>`, as `$everything` lists them).
        if id.contains('.') {
            return super::encounter::observation(c, actor, id)?
                .ok_or_else(|| FhirError::not_found(format!("Observation/{id} does not exist")));
        }
        let o = results::result_in(c, actor, id).map_err(|e| not_found_as(e, id))?;
        Ok(render(&o))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut rq = ResultQuery {
            created: q.last_updated,
            ids: q.ids.clone(),
            offset: q.offset,
            limit: q.count,
            ..ResultQuery::default()
        };
        let once = |name: &str, seen: bool| {
            if seen {
                Err(FhirError::bad_request(format!(
                    "search parameter {name} may be given once (separate several values by commas)"
                )))
            } else {
                Ok(())
            }
        };
        for (name, _, value) in &q.criteria {
            match name.as_str() {
                "patient" | "subject" => {
                    let id = reference(name, value, "Patient")?;
                    if rq.person_id.as_ref().is_some_and(|p| *p != id) {
                        return Ok(Page {
                            matches: Vec::new(),
                            total: 0,
                        });
                    }
                    rq.person_id = Some(id);
                }
                "date" => rq.effective = rq.effective.and(time_range("date", value)?),
                "code" => {
                    once("code", rq.codes.is_some())?;
                    let mut codes = Vec::new();
                    for one in value.split(',') {
                        let (system, code) = token(one);
                        if code.is_empty() {
                            return Err(FhirError::bad_request("search parameter code: a code is required"));
                        }
                        codes.push(match system.as_deref() {
                            None => CodeMatch {
                                code,
                                systems: None,
                                loinc: true,
                            },
                            Some(s) => CodeMatch {
                                code,
                                systems: Some(if s.is_empty() {
                                    vec![String::new()]
                                } else {
                                    clinical::stored_systems(s)
                                }),
                                loinc: s == LOINC,
                            },
                        });
                    }
                    rq.codes = Some(codes);
                }
                "status" => {
                    once("status", rq.statuses.is_some())?;
                    let mut letters = Vec::new();
                    for one in value.split(',') {
                        letters.extend(letters_for(one.trim()).ok_or_else(|| {
                            FhirError::bad_request(format!(
                                "search parameter status: {one} is not an Observation status"
                            ))
                        })?);
                    }
                    rq.statuses = Some(letters);
                }
                "identifier" => rq.identifier = Some(super::search::one_identifier(value, rq.identifier.is_some())?),
                _ => {}
            }
        }
        let (found, total) = results::search_in(c, actor, &rq)?;
        let mut matches: Vec<Res> = found.iter().map(render).collect();
        // A child's visit measurements follow her results (one sequence, paged as one) when the
        // search names her; they have no business identifier.
        if let Some(person_id) = rq.person_id.clone()
            && rq.identifier.is_none()
            && let Some(gq) = growth_query(q, person_id)?
        {
            let gq = GrowthQuery {
                offset: (q.offset - total).max(0),
                limit: (q.count - matches.len() as i64).max(0),
                ..gq
            };
            let (page, growth_total) = child::growth_search_in(c, actor, &gq)?;
            matches.extend(page.iter().map(|(v, m, x)| super::child_visit::observation(v, *m, *x)));
            return Ok(Page {
                matches,
                total: total + growth_total,
            });
        }
        Ok(Page { matches, total })
    }

    fn create(c: &mut AnyConnection, actor: &Actor, body: &Value) -> Result<Written, FhirError> {
        let inc = incoming(body)?;
        let (value_path, unit_path, effective_path) = (
            inc.value_path.clone(),
            inc.unit_path.clone(),
            inc.effective_path.clone(),
        );
        let name = move |field: usize| match field {
            5 => value_path.clone(),
            6 => unit_path.clone(),
            14 => effective_path.clone(),
            _ => "Observation.code".to_string(),
        };
        let o = results::record_document_in(c, actor, &inc.person_id, &inc.doc, &name).map_err(|e| match e {
            ServiceError::Invalid(fields) if fields.iter().any(|f| f.code == FETAL_SEX_REFUSED) => {
                let message = fields
                    .iter()
                    .find(|f| f.code == FETAL_SEX_REFUSED)
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                FhirError {
                    // The refusal is audited by the door in a commit of its own (nothing else is kept).
                    denied: Some(AuditTarget {
                        entity_type: "observation",
                        entity_id: None,
                        person_id: Some(inc.person_id.clone()),
                    }),
                    ..FhirError::new(
                        422,
                        "business-rule",
                        format!("An Observation stating fetal sex is not accepted: {message}"),
                    )
                    .at("Observation")
                }
            }
            ServiceError::NotFound(_) => FhirError::invalid(
                "Observation.subject.reference",
                format!("Observation.subject: Patient/{} does not exist", inc.person_id),
            ),
            e => FhirError::from_service(e, &|f| f.to_string()),
        })?;
        Ok(render(&o).into())
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        let found = results::for_person_in(c, actor, person_id, pregnancy_id)?;
        Ok(found.iter().map(render).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_both_ways() {
        for s in [
            "final",
            "corrected",
            "preliminary",
            "registered",
            "cancelled",
            "entered-in-error",
        ] {
            assert_eq!(status_fhir(status_letter(s).unwrap()), s);
            assert!(letters_for(s).unwrap().contains(&status_letter(s).unwrap().to_string()));
        }
        assert_eq!(status_letter("amended"), Some("C"));
        assert_eq!(status_letter("unknown"), None);
        assert_eq!(status_fhir(""), "final");
    }

    #[test]
    fn quantities_are_read_in_their_ucum_code() {
        assert_eq!(
            quantity_unit(&json!({"value": 1, "unit": "grams per decilitre", "system": UCUM, "code": "g/dL"}))
                .as_deref(),
            Some("g/dL")
        );
        assert_eq!(
            quantity_unit(&json!({"value": 1, "unit": "g/dL"})).as_deref(),
            Some("g/dL")
        );
        assert_eq!(
            quantity_unit(&json!({"value": 1, "system": UCUM, "code": "1"})).as_deref(),
            Some("1")
        );
    }
}
