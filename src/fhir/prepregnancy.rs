//! The pre-pregnancy screening (孕前优生健康检查, issue 12) in a woman's `$everything`: one
//! Observation per item recorded for her (`<exam id>.<item>`; LOINC where a code is certain, our
//! code system `prepregnancy-item` otherwise; UCUM units; qualitative results as SNOMED CT
//! positive / negative) and her risk class (`<exam id>.risk-class`: from her own factors, each
//! a component — the couple's class may rest on his). Her husband's findings stay in the couple's record: they are his,
//! not hers, and have no Patient here to hang from. Read-only.

use serde_json::{Value, json};

use super::terms::{LOINC, code_system, concept, date, quantity, reference};
use super::{FhirError, Res};
use crate::auth::model::Actor;
use crate::couple::model::{Findings, Normality, PrepregnancyExam};
use crate::observations::model::TestResult;
use crate::storage::AnyConnection;

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const SNOMED: &str = "http://snomed.info/sct";

/// (item, LOINC code or none, display, UCUM unit) of the numeric items.
const NUMBERS: [(&str, Option<&str>, &str, &str); 15] = [
    ("height_cm", Some("8302-2"), "身高", "cm"),
    ("weight_kg", Some("29463-7"), "体重", "kg"),
    ("systolic_mmhg", Some("8480-6"), "收缩压", "mm[Hg]"),
    ("diastolic_mmhg", Some("8462-4"), "舒张压", "mm[Hg]"),
    ("hb_g_l", Some("718-7"), "血红蛋白", "g/L"),
    ("wbc_10e9_l", Some("6690-2"), "白细胞计数", "10*9/L"),
    ("platelets_10e9_l", Some("777-3"), "血小板计数", "10*9/L"),
    ("glucose_mmol_l", Some("14771-0"), "空腹血糖", "mmol/L"),
    ("alt_u_l", Some("1742-6"), "谷丙转氨酶", "U/L"),
    ("creatinine_umol_l", Some("2160-0"), "血清肌酐", "umol/L"),
    ("tsh_miu_l", Some("3016-3"), "促甲状腺激素", "m[IU]/L"),
    ("fibroid_mm", None, "子宫肌瘤最大径", "mm"),
    ("adnexal_cyst_mm", None, "附件囊肿最大径", "mm"),
    ("miscarriages", None, "自然流产次数", "1"),
    ("caesareans", None, "剖宫产次数", "1"),
];

/// (item, LOINC code or none, display) of the qualitative tests.
const TESTS: [(&str, Option<&str>, &str); 14] = [
    ("hbsag", Some("5196-1"), "乙肝表面抗原"),
    ("hbsab", None, "乙肝表面抗体"),
    ("hbeag", None, "乙肝 e 抗原"),
    ("hbeab", None, "乙肝 e 抗体"),
    ("hbcab", None, "乙肝核心抗体"),
    ("syphilis", None, "梅毒螺旋体筛查"),
    ("hiv", None, "HIV 抗体筛查"),
    ("gonorrhoea", None, "淋球菌检测"),
    ("chlamydia", None, "沙眼衣原体检测"),
    ("rubella_igg", None, "风疹病毒 IgG 抗体"),
    ("cmv_igm", None, "巨细胞病毒 IgM 抗体"),
    ("cmv_igg", None, "巨细胞病毒 IgG 抗体"),
    ("toxo_igm", None, "弓形虫 IgM 抗体"),
    ("toxo_igg", None, "弓形虫 IgG 抗体"),
];

fn code(item: &str, loinc: Option<&str>, display: &str) -> Value {
    match loinc {
        Some(l) => json!({"coding": [{"system": LOINC, "code": l, "display": display},
                                     {"system": code_system("prepregnancy-item"), "code": item, "display": display}],
                          "text": display}),
        None => concept(&code_system("prepregnancy-item"), item, display),
    }
}

fn result_concept(r: TestResult) -> Option<Value> {
    match r {
        TestResult::Positive => Some(concept(SNOMED, "10828004", "阳性")),
        TestResult::Negative => Some(concept(SNOMED, "260385009", "阴性")),
        TestResult::Unknown => None,
    }
}

/// The Observations of one screening, for the woman.
pub fn observations(e: &PrepregnancyExam, person_id: &str) -> Vec<Res> {
    let f: &Findings = &e.wife;
    let mut items: Vec<(String, &'static str, Value, Value)> = Vec::new();
    for (item, loinc, display, unit) in NUMBERS {
        if let Some(v) = f.number(item) {
            let category = if item.ends_with("_mmhg") || item == "height_cm" || item == "weight_kg" {
                "vital-signs"
            } else if item.ends_with("_mm") || item == "miscarriages" || item == "caesareans" {
                "exam"
            } else {
                "laboratory"
            };
            items.push((
                item.replace('_', "-"),
                category,
                code(item, loinc, display),
                json!({"valueQuantity": quantity(v, unit, unit)}),
            ));
        }
    }
    for (item, loinc, display) in TESTS {
        if let Some(v) = f.test(item).and_then(result_concept) {
            items.push((
                item.replace('_', "-"),
                "laboratory",
                code(item, loinc, display),
                json!({"valueCodeableConcept": v}),
            ));
        }
    }
    for (item, display, v) in [
        ("genital_exam", "生殖系统检查", f.genital_exam),
        ("vaginal_discharge", "阴道分泌物检查", f.vaginal_discharge),
        ("urine", "尿常规", f.urine),
        ("ultrasound", "妇科超声", f.ultrasound),
    ] {
        if let Some(n) = v {
            let (c, d) = match n {
                Normality::Normal => ("17621005", "未见异常"),
                Normality::Abnormal => ("263654008", "异常"),
            };
            items.push((
                item.replace('_', "-"),
                "exam",
                code(item, None, display),
                json!({"valueCodeableConcept": concept(SNOMED, c, d)}),
            ));
        }
    }
    let mut out: Vec<Res> = items
        .into_iter()
        .map(|(suffix, category, code, value)| {
            let mut body = json!({
                "status": "final",
                "category": [concept(CATEGORY, category, category)],
                "code": code,
                "subject": reference("Patient", person_id),
                "effectiveDateTime": date(e.exam_date),
                "performer": [reference("Organization", &e.facility_id)],
            });
            if let (Some(b), Some(v)) = (body.as_object_mut(), value.as_object()) {
                b.extend(v.clone());
            }
            Res {
                id: format!("{}.{suffix}", e.id),
                version: 1,
                last_updated: e.created_at,
                body,
                patient: Some(person_id.to_string()),
            }
        })
        .collect();
    // Her part only: her class from her own factors, and no couple advice (it names his).
    let (class, hers) = crate::couple::model::her_part(&e.factors);
    let components: Vec<Value> = hers
        .iter()
        .map(|x| {
            json!({"code": concept(&code_system("prepregnancy-risk-factor"), &x.code, &x.name),
                   "valueCodeableConcept": concept(&code_system("prepregnancy-risk-category"), &x.category, &x.category_label)})
        })
        .collect();
    out.push(Res {
        id: format!("{}.risk-class", e.id),
        version: 1,
        last_updated: e.created_at,
        body: json!({
            "status": "final",
            "category": [concept(CATEGORY, "survey", "Survey")],
            "code": concept(&code_system("prepregnancy-item"), "risk-class", "孕前优生健康检查风险评估"),
            "subject": reference("Patient", person_id),
            "effectiveDateTime": date(e.exam_date),
            "performer": [reference("Organization", &e.facility_id)],
            "valueCodeableConcept": concept(&code_system("prepregnancy-risk-class"), class.as_str(), class.label_zh()),
            "component": components,
        }),
        patient: Some(person_id.to_string()),
    });
    out
}

/// Her screenings' Observations for `$everything` (access checked and audited by the service).
pub fn everything(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    let mut out = Vec::new();
    for e in crate::couple::service::screenings_of_wife_in(c, actor, person_id)? {
        out.extend(observations(&e, person_id).into_iter().map(|o| ("Observation", o)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::couple::model::{FoundFactor, Partner};

    #[test]
    fn her_items_become_observations_with_loinc_where_certain_and_the_class_last() {
        let wife: Findings =
            serde_json::from_value(json!({"hb_g_l": 88, "hbsag": "positive", "urine": "normal", "caesareans": 1}))
                .unwrap();
        let e = PrepregnancyExam {
            id: "e1".into(),
            couple_id: "c1".into(),
            exam_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            wife,
            husband: None,
            risk_class: crate::couple::model::RiskClass::High,
            factors: [Partner::Wife, Partner::Husband]
                .into_iter()
                .map(|partner| FoundFactor {
                    code: "x".into(),
                    name: "因素".into(),
                    category: "infection".into(),
                    category_label: "感染".into(),
                    partner,
                    finding: String::new(),
                    tag: "R".into(),
                })
                .collect(),
            advice: "建议".into(),
            rule_set: "prepregnancy-2010".into(),
            facility_id: "f1".into(),
            recorded_by: "doc".into(),
            created_at: chrono::NaiveDateTime::default(),
        };
        let obs = observations(&e, "p1");
        let ids: Vec<&str> = obs.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["e1.hb-g-l", "e1.caesareans", "e1.hbsag", "e1.urine", "e1.risk-class"]
        );
        assert_eq!(obs[0].body["code"]["coding"][0]["code"], json!("718-7"));
        assert_eq!(obs[0].body["valueQuantity"]["value"], json!(88.0));
        assert_eq!(
            obs[2].body["valueCodeableConcept"]["coding"][0]["code"],
            json!("10828004")
        );
        assert_eq!(obs[4].body["valueCodeableConcept"]["coding"][0]["code"], json!("high"));
        assert_eq!(obs[4].body["component"].as_array().unwrap().len(), 1, "hers, not his");
        assert_eq!(obs[4].body["subject"]["reference"], json!("Patient/p1"));
    }
}
