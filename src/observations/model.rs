//! Result concepts, value interpretation and the fetal-sex rule. Pure.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::privacy::model::states_fetal_sex;

/// A qualitative test's answer (HIV, syphilis, HBsAg: RULES.md §7.2), as the risk facts use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    Positive,
    Negative,
    Unknown,
}

/// How a concept's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A number in one of the listed units, converted to the concept's unit.
    Numeric,
    /// Positive or negative.
    Qualitative,
    /// Kept as text (urine protein "2+", blood group "A").
    Text,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Concept {
    pub name: String,
    pub label: String,
    pub loinc: String,
    pub codes: Vec<String>,
    pub kind: Kind,
    pub unit: Option<String>,
    #[serde(default)]
    pub units: BTreeMap<String, f64>,
    pub plausible: Option<[f64; 2]>,
    /// The risk fact this result decides (ARCHITECTURE.md `risk evaluate` facts).
    pub fact: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FetalSexList {
    /// Result codes that name a fetal-sex finding; the phrases are the shared list
    /// (`rules/privacy/fetal-sex.toml`, read by `privacy::model`).
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Catalogue {
    pub id: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
    #[serde(rename = "concept")]
    pub concepts: Vec<Concept>,
    pub fetal_sex: FetalSexList,
}

const RESULTS: &str = include_str!("../../rules/hl7/results.toml");

fn parse_catalogue(text: &str) -> Result<Catalogue, String> {
    toml::from_str(text).map_err(|e| format!("rules/hl7/results.toml: {e}"))
}

/// The embedded mapping, parsed once (a unit test checks it parses). If it ever did not, no code
/// is interpreted — yet every fetal-sex phrase below still is, since that rule must hold always.
pub fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| {
        parse_catalogue(RESULTS).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded result mapping is invalid");
            Catalogue {
                id: "invalid".into(),
                positive: Vec::new(),
                negative: Vec::new(),
                concepts: Vec::new(),
                fetal_sex: FetalSexList {
                    codes: vec!["11883-0".into()],
                },
            }
        })
    })
}

impl Catalogue {
    pub fn concept(&self, name: &str) -> Option<&Concept> {
        self.concepts.iter().find(|c| c.name == name)
    }

    /// The concept a code (LOINC or a hospital's local code) stands for.
    pub fn by_code(&self, code: &str) -> Option<&Concept> {
        let code = code.trim();
        (!code.is_empty())
            .then(|| {
                self.concepts
                    .iter()
                    .find(|c| c.codes.iter().any(|k| k.eq_ignore_ascii_case(code)))
            })
            .flatten()
    }

    /// Whether a result states the sex of a fetus: by code, or by a phrase in its name or text.
    pub fn is_fetal_sex(&self, r: &ResultInput) -> bool {
        let code_hit = [&r.code, &r.alt_code]
            .iter()
            .any(|c| !c.trim().is_empty() && self.fetal_sex.codes.iter().any(|k| k.eq_ignore_ascii_case(c.trim())));
        let texts = [&r.code_text, &r.alt_text, &r.value, &r.value_text];
        code_hit || texts.iter().any(|t| states_fetal_sex(t))
    }

    fn reading(&self, value: &str) -> Option<&'static str> {
        let v = value.trim();
        let any = |list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(v));
        if v.is_empty() {
            None
        } else if any(&self.positive) {
            Some("positive")
        } else if any(&self.negative) {
            Some("negative")
        } else {
            None
        }
    }
}

/// One result as an interface sent it (an OBX), already unescaped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultInput {
    /// Position of the result in the message (1-based), to name it in errors.
    pub index: usize,
    /// OBX-2 (NM, CE, CWE, ST, TX, SN …).
    pub value_type: String,
    /// OBX-3.1, OBX-3.2, OBX-3.3 and the alternate OBX-3.4, OBX-3.5.
    pub code: String,
    pub code_text: String,
    pub code_system: String,
    pub alt_code: String,
    pub alt_text: String,
    /// OBX-5 (first component for coded values) and, for coded values, its text (OBX-5.2).
    pub value: String,
    pub value_text: String,
    /// OBX-6.1, OBX-8, OBX-11.
    pub unit: String,
    pub abnormal_flag: String,
    pub status: String,
    /// OBX-14 (or OBR-7) in UTC; None when not given.
    pub effective: Option<NaiveDateTime>,
}

/// What we make of one result.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Our concept name; None when the code is not in the mapping (stored, not interpreted).
    pub concept: Option<String>,
    pub loinc: Option<String>,
    pub value_text: Option<String>,
    pub value_num: Option<f64>,
    pub unit: Option<String>,
    pub interpretation: Option<&'static str>,
    /// A fetal-sex finding: nothing of its value is kept (RULES.md §9.1).
    pub fetal_sex: bool,
}

/// Whether a result status counts for the record's facts (HL7 table 0085: F final, C corrected;
/// an empty status is taken as final). Preliminary, cancelled or deleted results are stored only.
pub fn counts_as_final(status: &str) -> bool {
    matches!(status.trim(), "F" | "C" | "")
}

fn path(r: &ResultInput, field: usize) -> String {
    format!("OBX[{}]-{field}", r.index)
}

/// Read one result: refuse a value that is not what it claims (a non-numeric NM, an impossible
/// number, a unit we cannot convert), withhold a fetal-sex finding, keep unknown codes as sent.
/// Errors name the OBX field (`OBX[2]-5`).
pub fn read(cat: &Catalogue, r: &ResultInput) -> Result<Reading, FieldError> {
    read_named(cat, r, &|field| path(r, field))
}

/// [`read`], with the fields at fault named by the door the result came through: `name` is given
/// the OBX field number the value would have in a message (3 code, 5 value, 6 unit, 14 time) and
/// answers the door's own name for it (`Observation.valueQuantity.value` for FHIR).
pub fn read_named(cat: &Catalogue, r: &ResultInput, name: &dyn Fn(usize) -> String) -> Result<Reading, FieldError> {
    if cat.is_fetal_sex(r) {
        return Ok(Reading {
            concept: Some("fetal_sex".into()),
            loinc: None,
            value_text: None,
            value_num: None,
            unit: None,
            interpretation: None,
            fetal_sex: true,
        });
    }
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    if r.value_type.trim() == "NM" && !r.value.trim().is_empty() && number(&r.value).is_none() {
        return Err(FieldError::new(
            &name(5),
            "data_type",
            format!(
                "{}: the value type is numeric (NM) but the value is not a number",
                name(5)
            ),
        ));
    }
    let concept = cat.by_code(&r.code).or_else(|| cat.by_code(&r.alt_code));
    let mut reading = Reading {
        concept: concept.map(|c| c.name.clone()),
        loinc: concept.map(|c| c.loinc.clone()),
        value_text: text(&r.value),
        value_num: number(&r.value).filter(|_| r.value_type.trim() == "NM"),
        unit: text(&r.unit),
        interpretation: None,
        fetal_sex: false,
    };
    let Some(c) = concept else { return Ok(reading) };
    match c.kind {
        Kind::Numeric => {
            let Some(v) = number(&r.value) else {
                if r.value.trim().is_empty() {
                    return Ok(reading);
                }
                return Err(FieldError::new(
                    &name(5),
                    "data_type",
                    format!("{}: {} must be a number", name(5), c.label),
                ));
            };
            let unit = r.unit.trim();
            let factor = if unit.is_empty() {
                Some(1.0)
            } else {
                c.units
                    .iter()
                    .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                    .map(|(_, f)| *f)
            };
            let Some(factor) = factor else {
                return Err(FieldError::new(
                    &name(6),
                    "unit",
                    format!(
                        "{}: unit {unit} not understood for {} (use {})",
                        name(6),
                        c.label,
                        c.units.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let value = v * factor;
            if let Some([lo, hi]) = c.plausible
                && !(lo..=hi).contains(&value)
            {
                return Err(FieldError::new(
                    &name(5),
                    "range",
                    format!(
                        "{}: {} outside the possible range {lo}–{hi} {}",
                        name(5),
                        c.label,
                        c.unit.as_deref().unwrap_or("")
                    ),
                ));
            }
            reading.value_num = Some(value);
            reading.unit = c.unit.clone().or(reading.unit);
        }
        Kind::Qualitative => {
            reading.value_num = None;
            reading.interpretation = cat.reading(&r.value).or_else(|| cat.reading(&r.value_text));
            if reading.value_text.is_none() {
                reading.value_text = text(&r.value_text);
            }
        }
        Kind::Text => reading.value_num = None,
    }
    Ok(reading)
}

/// Whether any text of a document (every string in it, at any depth) states fetal sex: a string
/// that is one of the fetal-sex codes, or states it in words (`privacy::model`). A document kept as received
/// must not carry the finding anywhere — in a note, a component, a display text.
pub fn document_states_fetal_sex(cat: &Catalogue, doc: &serde_json::Value) -> bool {
    use serde_json::Value;
    match doc {
        Value::String(s) => {
            let t = s.trim();
            cat.fetal_sex.codes.iter().any(|k| k.eq_ignore_ascii_case(t)) || states_fetal_sex(t)
        }
        Value::Array(items) => items.iter().any(|v| document_states_fetal_sex(cat, v)),
        Value::Object(m) => m.values().any(|v| document_states_fetal_sex(cat, v)),
        _ => false,
    }
}

/// UCUM (<https://ucum.org>) unit codes we write as `valueQuantity.code`: our concepts' units and
/// other common laboratory units. A unit not in the list is sent as text only (`unit`).
pub const UCUM_UNITS: &[&str] = &[
    "g/L", "g/dL", "mg/dL", "mg/L", "ug/L", "ng/mL", "mmol/L", "umol/L", "10*9/L", "10*12/L", "10*3/uL", "%", "U/L",
    "[IU]/L", "mm[Hg]", "kg", "g", "cm", "mm", "/min", "Cel", "fL", "pg", "s", "1",
];

/// A stored result with everything the record holds about it (interfaces render it in full).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub id: String,
    pub person_id: String,
    pub pregnancy_id: Option<String>,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub code_system: String,
    pub code: String,
    pub code_text: String,
    pub concept: Option<String>,
    pub loinc: Option<String>,
    pub value_type: String,
    pub value_text: Option<String>,
    pub value_num: Option<f64>,
    pub unit: Option<String>,
    pub interpretation: Option<String>,
    pub abnormal_flag: Option<String>,
    pub effective_at: NaiveDateTime,
    pub source_message_id: String,
    pub facility_id: String,
    /// HL7 table 0085 (F final, C corrected, P preliminary, X cancelled, W wrong, D deleted, I
    /// registered), or empty (taken as final).
    pub status: String,
    pub created_at: NaiveDateTime,
    /// The document it came as (a FHIR Observation), if any.
    pub received: Option<String>,
    /// Business identifiers (system, value).
    pub identifiers: Vec<(String, String)>,
}

/// A result as the pregnancy page shows it (never a fetal-sex finding).
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub id: String,
    pub person_id: String,
    pub pregnancy_id: Option<String>,
    pub code_system: String,
    pub code: String,
    pub code_text: String,
    pub concept: Option<String>,
    pub label: String,
    pub loinc: Option<String>,
    pub value_text: Option<String>,
    pub value_num: Option<f64>,
    pub unit: Option<String>,
    pub interpretation: Option<String>,
    pub interpretation_label: &'static str,
    pub abnormal_flag: Option<String>,
    pub effective_at: NaiveDateTime,
    pub status: String,
    pub source_message_id: String,
}

pub fn interpretation_label(i: Option<&str>) -> &'static str {
    match i {
        Some("positive") => "阳性",
        Some("negative") => "阴性",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obx(code: &str, vt: &str, value: &str, unit: &str) -> ResultInput {
        ResultInput {
            index: 2,
            value_type: vt.into(),
            code: code.into(),
            value: value.into(),
            unit: unit.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_embedded_mapping_parses_and_names_its_facts() {
        let c = parse_catalogue(RESULTS).unwrap();
        for fact in ["hb_g_l", "platelets_10e9_l", "hiv", "syphilis", "hbsag"] {
            assert!(c.concepts.iter().any(|x| x.fact.as_deref() == Some(fact)), "{fact}");
        }
        assert_eq!(c.concept("hb").unwrap().loinc, "718-7");
    }

    #[test]
    fn numbers_are_checked_converted_and_bounded() {
        let c = catalogue();
        let r = read(c, &obx("718-7", "NM", "5.8", "g/dL")).unwrap();
        assert_eq!((r.concept.as_deref(), r.value_num), (Some("hb"), Some(58.0)));
        assert_eq!(read(c, &obx("HB", "NM", "58", "")).unwrap().value_num, Some(58.0));
        let e = read(c, &obx("718-7", "NM", "abc", "g/L")).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("OBX[2]-5", "data_type"));
        assert_eq!(read(c, &obx("718-7", "NM", "900", "g/L")).unwrap_err().code, "range");
        assert_eq!(
            read(c, &obx("718-7", "NM", "58", "mmol/L")).unwrap_err().field,
            "OBX[2]-6"
        );
        // Unknown codes are kept as sent, not interpreted; a non-numeric NM is refused anyway.
        let u = read(c, &obx("99999-9", "NM", "7", "U")).unwrap();
        assert_eq!((u.concept, u.value_num), (None, Some(7.0)));
        assert!(read(c, &obx("99999-9", "NM", "seven", "U")).is_err());
    }

    #[test]
    fn qualitative_results_read_positive_or_negative() {
        let c = catalogue();
        let mut r = obx("5196-1", "CE", "POS", "");
        assert_eq!(read(c, &r).unwrap().interpretation, Some("positive"));
        r.value = "X1".into();
        r.value_text = "阴性".into();
        assert_eq!(read(c, &r).unwrap().interpretation, Some("negative"));
        r.value_text = "可疑".into();
        assert_eq!(read(c, &r).unwrap().interpretation, None);
    }

    #[test]
    fn fetal_sex_is_recognised_by_code_or_phrase_and_keeps_no_value() {
        let c = catalogue();
        let r = read(c, &obx("11883-0", "CE", "M", "")).unwrap();
        assert!(r.fetal_sex && r.value_text.is_none() && r.value_num.is_none());
        let mut t = obx("US-NOTE", "TX", "胎儿性别：男", "");
        assert!(read(c, &t).unwrap().fetal_sex);
        t.value = "双顶径 5.1 cm".into();
        t.code_text = "Fetal Sex US".into();
        assert!(read(c, &t).unwrap().fetal_sex);
    }
}
