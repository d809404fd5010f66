//! Encounter ↔ visit (`visits` feature), and the visit's measurements as vital-sign and exam
//! Observations (ids `<visit id>.<measurement>`) in `$everything`. Read-only. See README.md
//! "Encounter". Fetal sex is never a visit field (it has no column), so it can never appear here.

use serde_json::{Value, json};

use super::search::{ParamDef, Query};
use super::terms::{LOINC, code_system, concept, date, not_found_as, quantity, reference};
use super::{FhirError, Kind, Page, Res, terms};
use crate::auth::model::Actor;
use crate::child::service::{self as child, ChildVisitQuery};
use crate::pregnancy::model::Dating;
use crate::storage::AnyConnection;
use crate::visits::model::{OEDEMA, PRESENTATIONS, URINE_PROTEIN, Visit, VisitKind, label_of};
use crate::visits::service::{self as visits, VisitQuery};

pub struct EncounterKind;

const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

pub fn render(v: &Visit) -> Res {
    // The postpartum home visit (产后访视) happens at home; every other contact at the facility.
    let class = match v.kind {
        VisitKind::PostpartumHome => terms::coding(V3_ACT_CODE, "HH", "home health"),
        _ => terms::coding(V3_ACT_CODE, "AMB", "ambulatory"),
    };
    let body = json!({
        "status": "finished",
        "class": class,
        "type": [concept(&code_system("visit-kind"), v.kind.as_str(), v.kind.label_zh())],
        "subject": reference("Patient", &v.person_id),
        "episodeOfCare": [reference("EpisodeOfCare", &v.pregnancy_id)],
        "period": {"start": date(v.visit_date), "end": date(v.visit_date)},
        "serviceProvider": reference("Organization", &v.facility_id),
    });
    Res {
        id: v.id.clone(),
        version: 1,
        last_updated: v.recorded_at,
        body,
        patient: Some(v.person_id.clone()),
    }
}

/// One measurement of a visit: its id suffix, category, code and value elements.
struct Measurement {
    suffix: &'static str,
    category: (&'static str, &'static str),
    code: Value,
    value: Value,
}

const VITAL_SIGNS: (&str, &str) = ("vital-signs", "Vital Signs");
const LABORATORY: (&str, &str) = ("laboratory", "Laboratory");
const EXAM: (&str, &str) = ("exam", "Exam");

fn loinc(code: &str, display: &str, text: &str) -> Value {
    json!({"coding": [terms::coding(LOINC, code, display)], "text": text})
}

/// A finding we code ourselves (no LOINC code was verified for it; README.md "Encounter").
fn ours(code: &str, text: &str) -> Value {
    concept(&code_system("visit-finding"), code, text)
}

fn measurements(v: &Visit, dating: Option<&Dating>) -> Vec<Measurement> {
    let mut out = Vec::new();
    // Gestational age on the visit day, derived from the pregnancy's EDD (never stored): LOINC
    // 18185-9 "Gestational age", in days, with the clinic's "24+3 周" as text.
    if let Some(d) = dating.filter(|_| !v.kind.is_postpartum()) {
        let ga = d.gestational_age_on(v.visit_date);
        if ga.days >= 0 {
            out.push(Measurement {
                suffix: "ga",
                category: EXAM,
                code: loinc("18185-9", "Gestational age", "孕周"),
                value: json!({
                    "valueQuantity": quantity(ga.days as f64, "d", "d"),
                    "note": [{"text": format!("孕 {}+{} 周（{}推算）", ga.days / 7, ga.days % 7, d.method.label_zh())}],
                }),
            });
        }
    }
    if v.systolic_mmhg.is_some() || v.diastolic_mmhg.is_some() {
        let mut components = Vec::new();
        if let Some(s) = v.systolic_mmhg {
            components.push(json!({
                "code": loinc("8480-6", "Systolic blood pressure", "收缩压"),
                "valueQuantity": quantity(f64::from(s), "mm[Hg]", "mmHg"),
            }));
        }
        if let Some(d) = v.diastolic_mmhg {
            components.push(json!({
                "code": loinc("8462-4", "Diastolic blood pressure", "舒张压"),
                "valueQuantity": quantity(f64::from(d), "mm[Hg]", "mmHg"),
            }));
        }
        out.push(Measurement {
            suffix: "bp",
            category: VITAL_SIGNS,
            code: loinc("85354-9", "Blood pressure panel with all children optional", "血压"),
            value: json!({"component": components}),
        });
    }
    if let Some(w) = v.weight_kg {
        out.push(Measurement {
            suffix: "weight",
            category: VITAL_SIGNS,
            code: loinc("29463-7", "Body weight", "体重"),
            value: json!({"valueQuantity": quantity(w, "kg", "kg")}),
        });
    }
    if let Some(h) = v.height_cm {
        out.push(Measurement {
            suffix: "height",
            category: VITAL_SIGNS,
            code: loinc("8302-2", "Body height", "身高"),
            value: json!({"valueQuantity": quantity(h, "cm", "cm")}),
        });
    }
    if let Some(f) = v.fundal_height_cm {
        out.push(Measurement {
            suffix: "fundal-height",
            category: EXAM,
            code: loinc("11881-0", "Uterus Fundal height by Tape measure", "宫底高度"),
            value: json!({"valueQuantity": quantity(f, "cm", "cm")}),
        });
    }
    if let Some(a) = v.abdominal_circumference_cm {
        out.push(Measurement {
            suffix: "abdominal-circumference",
            category: EXAM,
            code: ours("abdominal-circumference", "腹围"),
            value: json!({"valueQuantity": quantity(a, "cm", "cm")}),
        });
    }
    if let Some(r) = v.fetal_heart_rate_bpm {
        out.push(Measurement {
            suffix: "fetal-heart-rate",
            category: EXAM,
            code: loinc("55283-6", "Fetal Heart rate", "胎心率"),
            value: json!({"valueQuantity": quantity(f64::from(r), "/min", "beats/minute")}),
        });
    }
    if let Some(p) = &v.fetal_presentation {
        out.push(Measurement {
            suffix: "fetal-presentation",
            category: EXAM,
            code: ours("fetal-presentation", "胎位"),
            value: json!({"valueCodeableConcept": concept(&code_system("fetal-presentation"), p, label_of(&PRESENTATIONS, p))}),
        });
    }
    if let Some(o) = &v.oedema {
        out.push(Measurement {
            suffix: "oedema",
            category: EXAM,
            code: ours("oedema", "水肿"),
            value: json!({"valueCodeableConcept": concept(&code_system("oedema-grade"), o, label_of(&OEDEMA, o))}),
        });
    }
    if let Some(hb) = v.hb_g_l {
        out.push(Measurement {
            suffix: "hb",
            category: LABORATORY,
            code: loinc("718-7", "Hemoglobin [Mass/volume] in Blood", "血红蛋白"),
            value: json!({"valueQuantity": quantity(f64::from(hb), "g/L", "g/L")}),
        });
    }
    if let Some(u) = &v.urine_protein {
        out.push(Measurement {
            suffix: "urine-protein",
            category: LABORATORY,
            code: loinc("20454-5", "Protein [Presence] in Urine by Test strip", "尿蛋白"),
            value: json!({"valueCodeableConcept": concept(&code_system("urine-protein-dipstick"), u, label_of(&URINE_PROTEIN, u))}),
        });
    }
    out
}

/// The visit's measurements as Observations (`<visit id>.<measurement>`), each linked to the
/// visit's Encounter and performed by the visit's facility.
pub fn observations(v: &Visit, dating: Option<&Dating>) -> Vec<Res> {
    measurements(v, dating)
        .into_iter()
        .map(|m| {
            let mut body = json!({
                "status": "final",
                "category": [concept(OBSERVATION_CATEGORY, m.category.0, m.category.1)],
                "code": m.code,
                "subject": reference("Patient", &v.person_id),
                "encounter": reference("Encounter", &v.id),
                "effectiveDateTime": date(v.visit_date),
                "performer": [reference("Organization", &v.facility_id)],
            });
            if let (Some(b), Some(extra)) = (body.as_object_mut(), m.value.as_object()) {
                b.extend(extra.clone());
            }
            Res {
                id: format!("{}.{}", v.id, m.suffix),
                version: 1,
                last_updated: v.recorded_at,
                body,
                patient: Some(v.person_id.clone()),
            }
        })
        .collect()
}

/// The dating of the visit's pregnancy (for its gestational age), if the actor may read it.
fn dating_of(c: &mut AnyConnection, actor: &Actor, v: &Visit) -> Result<Option<Dating>, FhirError> {
    match crate::pregnancy::service::pregnancy_for(c, actor, crate::auth::model::Action::ReadRecord, &v.pregnancy_id) {
        Ok(p) => Ok(Some(p.dating)),
        Err(crate::error::ServiceError::NotFound(_) | crate::error::ServiceError::Forbidden { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One visit measurement by its Observation id (`<visit id>.<measurement>`), audited as a read
/// of the visit. For `Observation/{id}` reads, which belong to the Observation module.
pub fn observation(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Option<Res>, FhirError> {
    let Some((visit_id, _)) = id.split_once('.') else {
        return Ok(None);
    };
    if !crate::ids::is_id(visit_id) {
        return Ok(None);
    }
    let v = match visits::visit_in(c, actor, visit_id) {
        Err(crate::error::ServiceError::NotFound(_)) => {
            let suffix = id.split_once('.').map_or("", |(_, s)| s);
            return super::child_visit::read_observation(c, actor, visit_id, suffix);
        }
        other => other?,
    };
    let dating = dating_of(c, actor, &v)?;
    Ok(observations(&v, dating.as_ref()).into_iter().find(|o| o.id == id))
}

impl Kind for EncounterKind {
    const TYPE: &'static str = "Encounter";
    const INCLUDES: &'static [&'static str] = &["Encounter:patient"];
    const DOC: &'static str = "A visit: antenatal (产前检查), postpartum home visit (产后访视, class HH) or 42-day check, type codes http://mch-chain.example/fhir/CodeSystem/visit-kind, episodeOfCare the pregnancy; or a child health visit (儿童健康检查, class AMB, HH for the newborn home visits), type the contact of the schedule (http://mch-chain.example/fhir/CodeSystem/child-contact). Its measurements (BP panel 85354-9, weight, height, fundal height, fetal heart rate, Hb, urine protein; a child's weight, length/height, head circumference, BMI with WHO z-scores …) come in $everything as Observations <visit id>.<measurement>.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the woman (Patient/<id>)",
        },
        ParamDef {
            name: "subject",
            kind: "reference",
            doc: "the woman (Patient/<id>), as patient",
        },
        ParamDef {
            name: "episode-of-care",
            kind: "reference",
            doc: "the pregnancy (EpisodeOfCare/<id>)",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "the visit date, with prefixes eq, gt, ge, lt, le",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        match visits::visit_in(c, actor, id) {
            Ok(v) => Ok(render(&v)),
            // Not an antenatal or postpartum visit: perhaps a child health visit.
            Err(crate::error::ServiceError::NotFound(_)) => super::child_visit::read_encounter(c, actor, id)?
                .ok_or_else(|| FhirError::not_found(format!("Encounter/{id} does not exist"))),
            Err(e) => Err(not_found_as(e, Self::TYPE, id)),
        }
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let (date_from, date_to) = terms::china_days(terms::date_criterion(q, "date")?);
        let vq = VisitQuery {
            person_id: terms::patient_criterion(q, &["patient", "subject"])?,
            pregnancy_id: terms::reference_criterion(q, "episode-of-care", "EpisodeOfCare")?,
            ids: q.ids.clone(),
            date_from,
            date_to,
            recorded: q.last_updated,
            offset: q.offset,
            limit: q.count,
        };
        let (found, total) = visits::search_in(c, actor, &vq)?;
        let mut matches: Vec<Res> = found.iter().map(render).collect();
        // Child health visits follow the pregnancy visits (they belong to no EpisodeOfCare): one
        // sequence, paged as one.
        if vq.pregnancy_id.is_none() {
            let cq = ChildVisitQuery {
                person_id: vq.person_id.clone(),
                ids: q.ids.clone(),
                date_from,
                date_to,
                recorded: q.last_updated,
                offset: (q.offset - total).max(0),
                limit: (q.count - matches.len() as i64).max(0),
            };
            let (children, child_total) = child::child_visit_search_in(c, actor, &cq)?;
            matches.extend(children.iter().map(super::child_visit::encounter));
            return Ok(Page {
                matches,
                total: total + child_total,
            });
        }
        Ok(Page { matches, total })
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(visits::visits_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render)
            .collect())
    }

    fn everything(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<(&'static str, Res)>, FhirError> {
        let list = visits::visits_for_person_in(c, actor, person_id, pregnancy_id)?;
        let mut out: Vec<(&'static str, Res)> = list.iter().map(|v| (Self::TYPE, render(v))).collect();
        let mut datings: Vec<(String, Option<Dating>)> = Vec::new();
        for v in &list {
            let dating = match datings.iter().find(|(p, _)| *p == v.pregnancy_id) {
                Some((_, d)) => *d,
                None => {
                    let d = dating_of(c, actor, v)?;
                    datings.push((v.pregnancy_id.clone(), d));
                    d
                }
            };
            out.extend(observations(v, dating.as_ref()).into_iter().map(|o| ("Observation", o)));
        }
        // A child's own packet: her health visits and their measurements; a woman's: her
        // pre-pregnancy screenings (before any pregnancy, so not in a pregnancy's packet).
        if pregnancy_id.is_none() {
            out.extend(super::child_visit::everything(c, actor, person_id)?);
            out.extend(super::prepregnancy::everything(c, actor, person_id)?);
        }
        Ok(out)
    }
}
