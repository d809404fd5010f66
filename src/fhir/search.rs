//! Search parameters: parsing the query string into typed criteria and refusing what we do not
//! support (RELIABILITY.md 19–20). Each resource declares its parameters (name, type, meaning);
//! the CapabilityStatement lists the same declarations, so the two cannot disagree.

use chrono::NaiveDate;

use super::json::{parse_date, parse_datetime};
use super::outcome::FhirError;
use crate::ids::TimeRange;

/// A search parameter a resource supports.
pub struct ParamDef {
    pub name: &'static str,
    /// FHIR search parameter type: `token`, `string`, `date`, `reference`.
    pub kind: &'static str,
    pub doc: &'static str,
}

/// Parameters every search understands besides the resource's own.
pub const RESULT_PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "_count",
        kind: "number",
        doc: "page size, 1–200 (default 50); larger values are reduced to 200",
    },
    ParamDef {
        name: "_offset",
        kind: "number",
        doc: "position of the page's first match (the next/previous links carry it); at most 100000",
    },
    ParamDef {
        name: "_include",
        kind: "special",
        doc: "Encounter:patient, Observation:patient, Observation:subject (the Patient, as an include entry)",
    },
    ParamDef {
        name: "_lastUpdated",
        kind: "date",
        doc: "when the record last changed, with prefixes eq, gt, ge, lt, le",
    },
    ParamDef {
        name: "_id",
        kind: "token",
        doc: "the resource id (comma-separated for several)",
    },
];

/// One parsed query: the resource's own criteria still to be taken, and the result controls.
#[derive(Debug, Default)]
pub struct Query {
    /// (name, modifier, value) of the resource's criteria.
    pub criteria: Vec<(String, Option<String>, String)>,
    pub count: i64,
    pub offset: i64,
    pub includes: Vec<String>,
    pub last_updated: TimeRange,
    pub ids: Option<Vec<String>>,
    /// Parameters ignored under `Prefer: handling=lenient` (reported in the self link).
    pub ignored: Vec<String>,
    /// The parameters applied, for the self link.
    pub applied: Vec<(String, String)>,
}

pub const DEFAULT_COUNT: i64 = 50;
pub const MAX_COUNT: i64 = 200;
const MAX_OFFSET: i64 = 100_000;

fn bad(param: &str, why: impl std::fmt::Display) -> FhirError {
    FhirError::bad_request(format!("search parameter {param}: {why}"))
}

/// Parse a search's query string for a resource with the given parameters. An unknown parameter
/// or modifier is refused (400) unless `lenient`, where it is ignored and reported.
pub fn parse(
    pairs: &[(String, String)],
    own: &[ParamDef],
    includes: &[&str],
    lenient: bool,
) -> Result<Query, FhirError> {
    let mut q = Query {
        count: DEFAULT_COUNT,
        ..Query::default()
    };
    for (raw_name, value) in pairs {
        if raw_name.len() > 64 || value.len() > 512 {
            return Err(bad(raw_name.get(..64).unwrap_or(raw_name), "too long"));
        }
        let (name, modifier) = match raw_name.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (raw_name.as_str(), None),
        };
        let mut applied = true;
        match name {
            "_count" => {
                let n: i64 = value.parse().map_err(|_| bad("_count", "must be a whole number"))?;
                if n < 1 {
                    return Err(bad("_count", "must be at least 1"));
                }
                q.count = n.min(MAX_COUNT);
            }
            "_offset" => {
                let n: i64 = value.parse().map_err(|_| bad("_offset", "must be a whole number"))?;
                if !(0..=MAX_OFFSET).contains(&n) {
                    return Err(bad("_offset", format!("must be between 0 and {MAX_OFFSET}")));
                }
                q.offset = n;
            }
            "_include" => {
                if !includes.contains(&value.as_str()) {
                    if lenient {
                        q.ignored.push(format!("_include={value}"));
                        applied = false;
                    } else {
                        return Err(bad(
                            "_include",
                            format!("{value} is not supported here (supported: {})", includes.join(", ")),
                        ));
                    }
                } else {
                    q.includes.push(value.clone());
                }
            }
            "_lastUpdated" => {
                q.last_updated = q.last_updated.and(time_range("_lastUpdated", value)?);
            }
            "_id" => {
                let ids: Vec<String> = value.split(',').map(str::trim).map(str::to_string).collect();
                if ids.iter().any(|i| !super::valid_id(i)) {
                    return Err(bad("_id", "not a valid id"));
                }
                q.ids = Some(ids);
            }
            "_format" if matches!(value.as_str(), "json" | "application/fhir+json" | "application/json") => {}
            _ if own.iter().any(|p| p.name == name) && modifier_ok(own, name, modifier) => {
                q.criteria
                    .push((name.to_string(), modifier.map(str::to_string), value.clone()));
            }
            _ => {
                let why = if own.iter().any(|p| p.name == name) {
                    format!("modifier :{} is not supported", modifier.unwrap_or(""))
                } else {
                    format!(
                        "not supported for this resource (supported: {})",
                        own.iter()
                            .chain(RESULT_PARAMS)
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                if lenient {
                    q.ignored.push(raw_name.clone());
                    applied = false;
                } else {
                    return Err(bad(raw_name, why));
                }
            }
        }
        if applied && !matches!(name, "_count" | "_offset") {
            q.applied.push((raw_name.clone(), value.clone()));
        }
    }
    Ok(q)
}

fn modifier_ok(own: &[ParamDef], name: &str, modifier: Option<&str>) -> bool {
    let Some(m) = modifier else { return true };
    let kind = own.iter().find(|p| p.name == name).map(|p| p.kind).unwrap_or("");
    match kind {
        "string" => matches!(m, "exact" | "contains"),
        _ => false,
    }
}

/// Split a date search value into its prefix and the date.
fn prefix(param: &str, value: &str) -> Result<(&'static str, String), FhirError> {
    let p = value.get(..2).unwrap_or("");
    if p.chars().all(|c| c.is_ascii_lowercase()) && p.len() == 2 {
        let known = match p {
            "eq" => "eq",
            "gt" => "gt",
            "ge" => "ge",
            "lt" => "lt",
            "le" => "le",
            other => {
                return Err(bad(
                    param,
                    format!("prefix {other} is not supported (use eq, gt, ge, lt, le)"),
                ));
            }
        };
        Ok((known, value.get(2..).unwrap_or("").to_string()))
    } else {
        Ok(("eq", value.to_string()))
    }
}

/// A date/dateTime search value with its prefix as a UTC range (dates are China local days).
pub fn time_range(param: &str, value: &str) -> Result<TimeRange, FhirError> {
    let (p, rest) = prefix(param, value)?;
    let (start, end) = parse_datetime(&rest).ok_or_else(|| {
        bad(
            param,
            "not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)",
        )
    })?;
    Ok(match p {
        "eq" => TimeRange {
            from: Some(start),
            to: Some(end),
        },
        "ge" => TimeRange {
            from: Some(start),
            to: None,
        },
        "gt" => TimeRange {
            from: Some(end),
            to: None,
        },
        "le" => TimeRange {
            from: None,
            to: Some(end),
        },
        _ => TimeRange {
            from: None,
            to: Some(start),
        },
    })
}

/// A date search value on a calendar date (birthdate): `[from, to)` days.
pub fn date_range(param: &str, value: &str) -> Result<(Option<NaiveDate>, Option<NaiveDate>), FhirError> {
    let (p, rest) = prefix(param, value)?;
    let (start, precision) =
        parse_date(&rest).ok_or_else(|| bad(param, "not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"))?;
    let end = match precision {
        1 => NaiveDate::from_ymd_opt(chrono::Datelike::year(&start) + 1, 1, 1),
        2 => start.checked_add_months(chrono::Months::new(1)),
        _ => start.succ_opt(),
    }
    .ok_or_else(|| bad(param, "date out of range"))?;
    Ok(match p {
        "eq" => (Some(start), Some(end)),
        "ge" => (Some(start), None),
        "gt" => (Some(end), None),
        "le" => (None, Some(end)),
        _ => (None, Some(start)),
    })
}

/// A token search value: (system, code); `system|code`, `|code` (no system), `code` (any).
pub fn token(value: &str) -> (Option<String>, String) {
    match value.split_once('|') {
        Some((s, c)) => (Some(s.to_string()), c.to_string()),
        None => (None, value.to_string()),
    }
}

/// The `identifier` criterion of the clinical types: one identifier, `system|value` or `value`
/// (system None: any system).
pub fn one_identifier(value: &str, already: bool) -> Result<(Option<String>, String), FhirError> {
    let (system, v) = token(value);
    if v.is_empty() || already {
        return Err(FhirError::bad_request(
            "search parameter identifier: give one identifier (system|value or value)",
        ));
    }
    Ok((system.filter(|s| !s.is_empty()), v))
}

/// A reference search value for one type (`Patient/123`, `123`, or a full URL) as an id.
pub fn reference(param: &str, value: &str, resource_type: &str) -> Result<String, FhirError> {
    let parts: Vec<&str> = value.trim_end_matches('/').rsplitn(3, '/').collect();
    let id = match parts.as_slice() {
        [id] => *id,
        [id, t, ..] if *t == resource_type => *id,
        _ => return Err(bad(param, format!("must reference a {resource_type}"))),
    };
    if !super::valid_id(id) {
        return Err(bad(param, "not a valid id"));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    const OWN: &[ParamDef] = &[
        ParamDef {
            name: "name",
            kind: "string",
            doc: "",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "",
        },
    ];

    #[test]
    fn unknown_parameters_are_refused_unless_lenient() {
        assert_eq!(parse(&p(&[("foo", "1")]), OWN, &[], false).unwrap_err().status, 400);
        let q = parse(&p(&[("foo", "1"), ("name", "王")]), OWN, &[], true).unwrap();
        assert_eq!(q.ignored, vec!["foo"]);
        assert_eq!(q.criteria.len(), 1);
        assert_eq!(
            parse(&p(&[("date:exact", "2026")]), OWN, &[], false)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn count_and_offset_are_checked() {
        assert_eq!(parse(&p(&[("_count", "0")]), OWN, &[], false).unwrap_err().status, 400);
        assert_eq!(
            parse(&p(&[("_count", "1;DROP")]), OWN, &[], false).unwrap_err().status,
            400
        );
        assert_eq!(
            parse(&p(&[("_count", "5000")]), OWN, &[], false).unwrap().count,
            MAX_COUNT
        );
        assert_eq!(
            parse(&p(&[("_offset", "-1")]), OWN, &[], false).unwrap_err().status,
            400
        );
    }

    #[test]
    fn date_prefixes_give_half_open_ranges_in_china_time() {
        let r = time_range("date", "ge2026-03-01").unwrap();
        assert_eq!(r.from.unwrap().to_string(), "2026-02-28 16:00:00");
        assert!(r.to.is_none());
        let r = time_range("date", "lt2026-03").unwrap();
        assert_eq!(r.to.unwrap().to_string(), "2026-02-28 16:00:00");
        let r = time_range("date", "2026").unwrap();
        assert_eq!(r.to.unwrap().to_string(), "2026-12-31 16:00:00");
        let r = time_range("date", "gt2026-03-01T10:00:00Z").unwrap();
        assert_eq!(r.from.unwrap().to_string(), "2026-03-01 10:00:01");
        assert_eq!(time_range("date", "ap2026").unwrap_err().status, 400);
        assert_eq!(time_range("date", "' OR 1=1 --").unwrap_err().status, 400);
        assert_eq!(
            date_range("birthdate", "1990").unwrap().1.unwrap().to_string(),
            "1991-01-01"
        );
    }

    #[test]
    fn references_and_tokens() {
        assert_eq!(
            token("http://loinc.org|718-7"),
            (Some("http://loinc.org".into()), "718-7".into())
        );
        assert_eq!(token("718-7"), (None, "718-7".into()));
        assert_eq!(
            reference("patient", "Patient/0190a0a0-0000-7000-8000-000000000000", "Patient").unwrap(),
            "0190a0a0-0000-7000-8000-000000000000"
        );
        assert!(reference("patient", "Observation/abc", "Patient").is_err());
        assert!(reference("patient", "../../etc/passwd", "Patient").is_err());
    }
}
