//! Antenatal visits: the fields of the national first-visit and follow-up records
//! (《第1次产前检查服务记录表》, 《第2~5次产前随访服务记录表》, RULES.md §2.2). Pure.
//!
//! Plausibility limits below are not clinical thresholds: they refuse values no living pregnant
//! woman can have (typing errors such as BP 400/10 or Hb 900 g/L) so that nothing absurd is saved.
//! Clinical grading of real values belongs to the risk rules.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, ServiceError};
use crate::pregnancy::model::{Dating, MAX_GESTATION_DAYS, opt_str, parse_date};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitKind {
    AntenatalFirst,
    Antenatal,
    /// 产后访视: a home visit within a week of discharge.
    PostpartumHome,
    /// 产后42天健康检查.
    Postpartum42d,
}

impl VisitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VisitKind::AntenatalFirst => "antenatal_first",
            VisitKind::Antenatal => "antenatal",
            VisitKind::PostpartumHome => "postpartum_home",
            VisitKind::Postpartum42d => "postpartum_42d",
        }
    }
    pub fn parse(s: &str) -> Option<VisitKind> {
        match s {
            "antenatal_first" => Some(VisitKind::AntenatalFirst),
            "antenatal" => Some(VisitKind::Antenatal),
            "postpartum_home" => Some(VisitKind::PostpartumHome),
            "postpartum_42d" => Some(VisitKind::Postpartum42d),
            _ => None,
        }
    }
    pub fn is_postpartum(self) -> bool {
        matches!(self, VisitKind::PostpartumHome | VisitKind::Postpartum42d)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            VisitKind::AntenatalFirst => "第1次产前检查",
            VisitKind::Antenatal => "产前随访",
            VisitKind::PostpartumHome => "产后访视",
            VisitKind::Postpartum42d => "产后42天检查",
        }
    }
}

pub const PRESENTATIONS: [(&str, &str); 4] = [
    ("cephalic", "头位"),
    ("breech", "臀位"),
    ("transverse", "横位"),
    ("unknown", "未查清"),
];
pub const OEDEMA: [(&str, &str); 4] = [
    ("none", "无"),
    ("mild", "轻度"),
    ("moderate", "中度"),
    ("severe", "重度"),
];
pub const URINE_PROTEIN: [(&str, &str); 6] = [
    ("negative", "阴性"),
    ("trace", "±"),
    ("1+", "+"),
    ("2+", "++"),
    ("3+", "+++"),
    ("4+", "++++"),
];

pub fn label_of(table: &[(&str, &'static str)], code: &str) -> &'static str {
    table.iter().find(|(c, _)| *c == code).map(|(_, l)| *l).unwrap_or("")
}

/// A recorded visit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Visit {
    pub id: String,
    pub pregnancy_id: String,
    pub person_id: String,
    pub kind: VisitKind,
    pub visit_date: NaiveDate,
    pub facility_id: String,
    pub weight_kg: Option<f64>,
    pub height_cm: Option<f64>,
    pub systolic_mmhg: Option<i32>,
    pub diastolic_mmhg: Option<i32>,
    pub fundal_height_cm: Option<f64>,
    pub abdominal_circumference_cm: Option<f64>,
    pub fetal_heart_rate_bpm: Option<i32>,
    pub fetal_presentation: Option<String>,
    pub oedema: Option<String>,
    pub hb_g_l: Option<i32>,
    pub urine_protein: Option<String>,
    pub complaints: String,
    pub advice: String,
    pub next_appointment: Option<NaiveDate>,
    pub recorded_by: String,
    /// 42-day check: recovered (已恢复) or not (未恢复).
    pub postpartum_recovered: Option<bool>,
    /// When the visit was recorded (UTC), which orders same-day records.
    pub recorded_at: chrono::NaiveDateTime,
}

/// BMI = weight / height² (kg/m²), derived, never stored.
pub fn bmi(weight_kg: Option<f64>, height_cm: Option<f64>) -> Option<f64> {
    match (weight_kg, height_cm) {
        (Some(w), Some(h)) if h > 0.0 => Some(w / (h / 100.0).powi(2)),
        _ => None,
    }
}

/// The visit form as typed (strings; empty = not measured).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct VisitInput {
    pub visit_date: Option<String>,
    pub weight_kg: Option<String>,
    pub height_cm: Option<String>,
    pub systolic_mmhg: Option<String>,
    pub diastolic_mmhg: Option<String>,
    pub fundal_height_cm: Option<String>,
    pub abdominal_circumference_cm: Option<String>,
    pub fetal_heart_rate_bpm: Option<String>,
    pub fetal_presentation: Option<String>,
    pub oedema: Option<String>,
    pub hb_g_l: Option<String>,
    pub urine_protein: Option<String>,
    pub complaints: Option<String>,
    pub advice: Option<String>,
    pub next_appointment: Option<String>,
    /// Postpartum only: `postpartum_home` or `postpartum_42d`.
    #[serde(default)]
    pub kind: Option<String>,
    /// 42-day check only: "1" recovered, "0" not recovered.
    #[serde(default)]
    pub postpartum_recovered: Option<String>,
}

/// Checked visit content (no ids yet).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitData {
    pub visit_date: NaiveDate,
    pub weight_kg: Option<f64>,
    pub height_cm: Option<f64>,
    pub systolic_mmhg: Option<i32>,
    pub diastolic_mmhg: Option<i32>,
    pub fundal_height_cm: Option<f64>,
    pub abdominal_circumference_cm: Option<f64>,
    pub fetal_heart_rate_bpm: Option<i32>,
    pub fetal_presentation: Option<String>,
    pub oedema: Option<String>,
    pub hb_g_l: Option<i32>,
    pub urine_protein: Option<String>,
    pub complaints: String,
    pub advice: String,
    pub next_appointment: Option<NaiveDate>,
    pub postpartum: Option<(VisitKind, Option<bool>)>,
}

/// Postpartum visits may be recorded up to this many days after delivery.
pub const POSTPARTUM_MAX_DAYS: i64 = 120;

pub(crate) fn number(
    field: &str,
    raw: Option<&str>,
    min: f64,
    max: f64,
    label: &str,
    unit: &str,
    errors: &mut Vec<FieldError>,
) -> Option<f64> {
    let raw = raw?;
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && (min..=max).contains(&v) => Some((v * 10.0).round() / 10.0),
        Ok(_) => {
            errors.push(FieldError::new(
                field,
                "implausible",
                format!("{label} {raw}{unit} 不合理（应在 {min}–{max}{unit} 之间），请核对"),
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(field, "number", format!("{label}须为数字")));
            None
        }
    }
}

pub(crate) fn integer(
    field: &str,
    raw: Option<&str>,
    min: i32,
    max: i32,
    label: &str,
    unit: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i32> {
    let raw = raw?;
    match raw.parse::<i32>() {
        Ok(v) if (min..=max).contains(&v) => Some(v),
        Ok(_) => {
            errors.push(FieldError::new(
                field,
                "implausible",
                format!("{label} {raw}{unit} 不合理（应在 {min}–{max}{unit} 之间），请核对"),
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(field, "integer", format!("{label}须为整数")));
            None
        }
    }
}

pub(crate) fn choice(
    field: &str,
    raw: Option<&str>,
    table: &[(&str, &str)],
    label: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let raw = raw?;
    if table.iter().any(|(c, _)| *c == raw) {
        Some(raw.to_string())
    } else {
        errors.push(FieldError::new(field, "choice", format!("{label}的取值无效")));
        None
    }
}

pub(crate) fn text(field: &str, raw: &Option<String>, max: usize, label: &str, errors: &mut Vec<FieldError>) -> String {
    let t = raw.as_deref().unwrap_or("").trim().to_string();
    if t.chars().count() > max {
        errors.push(FieldError::new(field, "too_long", format!("{label}最多 {max} 字")));
    }
    t
}

impl VisitInput {
    /// Validate against the pregnancy's dating: the visit must fall between the dating start and
    /// today, within 44 weeks of gestation.
    /// Validate an antenatal visit (`delivered_on` None) against the pregnancy's dating — between
    /// the dating start and today, within 44 weeks — or a postpartum visit against the delivery date.
    pub fn validate(
        &self,
        dating: &Dating,
        delivered_on: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<VisitData, ServiceError> {
        let mut e = Vec::new();
        let visit_date = parse_date("visit_date", opt_str(&self.visit_date), &mut e)
            .or_else(|| opt_str(&self.visit_date).is_none().then_some(today));
        match (visit_date, delivered_on) {
            (Some(d), _) if d > today => e.push(FieldError::new("visit_date", "future", "随访日期不能晚于今天")),
            (Some(d), None) if d < dating.start() => e.push(FieldError::new(
                "visit_date",
                "before_lmp",
                "随访日期早于末次月经（孕期开始），请核对",
            )),
            (Some(d), None) if dating.gestational_age_on(d).days > MAX_GESTATION_DAYS => e.push(FieldError::new(
                "visit_date",
                "after_term",
                "随访日期时孕周已超过 44 周，请核对日期或预产期",
            )),
            (Some(d), Some(del)) if d < del || (d - del).num_days() > POSTPARTUM_MAX_DAYS => e.push(FieldError::new(
                "visit_date",
                "postpartum_range",
                format!("产后访视日期须在分娩（{del}）之后 {POSTPARTUM_MAX_DAYS} 天内"),
            )),
            _ => {}
        }
        let postpartum = match delivered_on {
            None => None,
            Some(_) => match opt_str(&self.kind)
                .and_then(VisitKind::parse)
                .filter(|k| k.is_postpartum())
            {
                Some(kind) => {
                    let recovered = match (kind, opt_str(&self.postpartum_recovered)) {
                        (VisitKind::Postpartum42d, Some("1")) => Some(true),
                        (VisitKind::Postpartum42d, Some("0")) => Some(false),
                        (VisitKind::Postpartum42d, _) => {
                            e.push(FieldError::new(
                                "postpartum_recovered",
                                "required",
                                "产后42天检查须判断“已恢复”或“未恢复”",
                            ));
                            None
                        }
                        _ => None,
                    };
                    Some((kind, recovered))
                }
                None => {
                    e.push(FieldError::new(
                        "kind",
                        "required",
                        "已分娩：请选择“产后访视”或“产后42天检查”",
                    ));
                    None
                }
            },
        };
        let weight_kg = number(
            "weight_kg",
            opt_str(&self.weight_kg),
            30.0,
            200.0,
            "体重",
            " kg",
            &mut e,
        );
        let height_cm = number(
            "height_cm",
            opt_str(&self.height_cm),
            120.0,
            200.0,
            "身高",
            " cm",
            &mut e,
        );
        let systolic = integer(
            "systolic_mmhg",
            opt_str(&self.systolic_mmhg),
            60,
            260,
            "收缩压",
            " mmHg",
            &mut e,
        );
        let diastolic = integer(
            "diastolic_mmhg",
            opt_str(&self.diastolic_mmhg),
            30,
            160,
            "舒张压",
            " mmHg",
            &mut e,
        );
        match (opt_str(&self.systolic_mmhg), opt_str(&self.diastolic_mmhg)) {
            (Some(_), None) | (None, Some(_)) => e.push(FieldError::new(
                "diastolic_mmhg",
                "pair",
                "血压须同时填写收缩压和舒张压",
            )),
            _ => {}
        }
        if let (Some(s), Some(d)) = (systolic, diastolic)
            && s <= d
        {
            e.push(FieldError::new(
                "systolic_mmhg",
                "bp_order",
                "收缩压须高于舒张压，请核对",
            ));
        }
        let fundal = number(
            "fundal_height_cm",
            opt_str(&self.fundal_height_cm),
            5.0,
            50.0,
            "宫底高度",
            " cm",
            &mut e,
        );
        let abdominal = number(
            "abdominal_circumference_cm",
            opt_str(&self.abdominal_circumference_cm),
            50.0,
            160.0,
            "腹围",
            " cm",
            &mut e,
        );
        let fhr = integer(
            "fetal_heart_rate_bpm",
            opt_str(&self.fetal_heart_rate_bpm),
            60,
            220,
            "胎心率",
            " 次/分",
            &mut e,
        );
        let presentation = choice(
            "fetal_presentation",
            opt_str(&self.fetal_presentation),
            &PRESENTATIONS,
            "胎位",
            &mut e,
        );
        let oedema = choice("oedema", opt_str(&self.oedema), &OEDEMA, "水肿", &mut e);
        let hb = integer("hb_g_l", opt_str(&self.hb_g_l), 30, 200, "血红蛋白", " g/L", &mut e);
        let urine_protein = choice(
            "urine_protein",
            opt_str(&self.urine_protein),
            &URINE_PROTEIN,
            "尿蛋白",
            &mut e,
        );
        let complaints = text("complaints", &self.complaints, 500, "主诉", &mut e);
        let advice = text("advice", &self.advice, 1000, "指导意见", &mut e);
        let next_appointment = parse_date("next_appointment", opt_str(&self.next_appointment), &mut e);
        if let (Some(n), Some(v)) = (next_appointment, visit_date)
            && (n <= v || (n - v).num_days() > 120)
        {
            e.push(FieldError::new(
                "next_appointment",
                "range",
                "下次随访日期须在本次随访之后 120 天内",
            ));
        }
        match (visit_date, e.is_empty()) {
            (Some(visit_date), true) => Ok(VisitData {
                visit_date,
                weight_kg,
                height_cm,
                systolic_mmhg: systolic,
                diastolic_mmhg: diastolic,
                fundal_height_cm: fundal,
                abdominal_circumference_cm: abdominal,
                fetal_heart_rate_bpm: fhr,
                fetal_presentation: presentation,
                oedema,
                hb_g_l: hb,
                urine_protein,
                complaints,
                advice,
                next_appointment,
                postpartum,
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pregnancy::model::date_pregnancy;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn fields(r: Result<VisitData, ServiceError>) -> Vec<String> {
        match r {
            Err(ServiceError::Invalid(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_normal_visit_is_accepted() {
        let dating = date_pregnancy(Some(d(2026, 6, 1)), None).unwrap();
        let v = VisitInput {
            visit_date: Some("2026-11-20".into()),
            weight_kg: Some("62.5".into()),
            height_cm: Some("160".into()),
            systolic_mmhg: Some("118".into()),
            diastolic_mmhg: Some("76".into()),
            hb_g_l: Some("118".into()),
            fetal_heart_rate_bpm: Some("142".into()),
            urine_protein: Some("negative".into()),
            next_appointment: Some("2026-12-18".into()),
            ..Default::default()
        }
        .validate(&dating, None, d(2026, 11, 24))
        .unwrap();
        assert_eq!(v.weight_kg, Some(62.5));
        assert!((bmi(v.weight_kg, v.height_cm).unwrap() - 24.4).abs() < 0.1);
    }

    #[test]
    fn implausible_values_are_refused_by_field() {
        let dating = date_pregnancy(Some(d(2026, 6, 1)), None).unwrap();
        let today = d(2026, 11, 24);
        let bp = VisitInput {
            systolic_mmhg: Some("400".into()),
            diastolic_mmhg: Some("10".into()),
            ..Default::default()
        };
        assert_eq!(
            fields(bp.validate(&dating, None, today)),
            vec!["systolic_mmhg", "diastolic_mmhg"]
        );
        let hb = VisitInput {
            hb_g_l: Some("900".into()),
            ..Default::default()
        };
        assert_eq!(fields(hb.validate(&dating, None, today)), vec!["hb_g_l"]);
        let before = VisitInput {
            visit_date: Some("2026-05-01".into()),
            ..Default::default()
        };
        assert_eq!(fields(before.validate(&dating, None, today)), vec!["visit_date"]);
        let future = VisitInput {
            visit_date: Some("2026-11-25".into()),
            ..Default::default()
        };
        assert_eq!(fields(future.validate(&dating, None, today)), vec!["visit_date"]);
        let inverted = VisitInput {
            systolic_mmhg: Some("80".into()),
            diastolic_mmhg: Some("90".into()),
            ..Default::default()
        };
        assert_eq!(fields(inverted.validate(&dating, None, today)), vec!["systolic_mmhg"]);
        let half = VisitInput {
            systolic_mmhg: Some("120".into()),
            ..Default::default()
        };
        assert_eq!(fields(half.validate(&dating, None, today)), vec!["diastolic_mmhg"]);
    }

    #[test]
    fn a_postpartum_visit_needs_its_kind_a_date_after_delivery_and_at_42_days_a_classification() {
        let dating = date_pregnancy(Some(d(2026, 1, 1)), None).unwrap();
        let today = d(2026, 11, 24);
        let delivered = Some(d(2026, 10, 5));
        let home = VisitInput {
            visit_date: Some("2026-10-10".into()),
            kind: Some("postpartum_home".into()),
            ..Default::default()
        };
        assert_eq!(
            home.validate(&dating, delivered, today).unwrap().postpartum,
            Some((VisitKind::PostpartumHome, None))
        );
        let no_kind = VisitInput {
            visit_date: Some("2026-10-10".into()),
            ..Default::default()
        };
        assert_eq!(fields(no_kind.validate(&dating, delivered, today)), vec!["kind"]);
        let before = VisitInput {
            visit_date: Some("2026-10-01".into()),
            kind: Some("postpartum_home".into()),
            ..Default::default()
        };
        assert_eq!(fields(before.validate(&dating, delivered, today)), vec!["visit_date"]);
        let check = VisitInput {
            visit_date: Some("2026-11-16".into()),
            kind: Some("postpartum_42d".into()),
            ..Default::default()
        };
        assert_eq!(
            fields(check.validate(&dating, delivered, today)),
            vec!["postpartum_recovered"]
        );
        let check = VisitInput {
            postpartum_recovered: Some("1".into()),
            ..check
        };
        assert_eq!(
            check.validate(&dating, delivered, today).unwrap().postpartum,
            Some((VisitKind::Postpartum42d, Some(true)))
        );
    }
}
