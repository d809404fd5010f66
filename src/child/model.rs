//! The child's own record from birth (出生情况, 出生医学证明), what makes a newborn high-risk, and the
//! child health visit, vaccination and service forms with their checks. Pure.
//!
//! The child's sex exists here, on the born child's own record, and nowhere before the birth
//! (RULES.md §9.1): the delivery record of the mother never holds it.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, ServiceError};
use crate::identity::model::Sex;
use crate::pregnancy::model::{opt_str, parse_date};
use crate::visits::model::{choice, integer, number, text};

/// Conditions a clinician ticks at birth that make a newborn high-risk besides the measured ones
/// (RULES.md §2.3 [R]: 中重度窒息、颅内出血、高胆红素血症、肺炎/败血症等).
pub const NEWBORN_CONDITIONS: &[(&str, &str)] = &[
    ("asphyxia", "中重度窒息"),
    ("intracranial_haemorrhage", "颅内出血"),
    ("hyperbilirubinaemia", "高胆红素血症"),
    ("pneumonia_sepsis", "肺炎、败血症"),
];

/// Sexes a birth record takes (GB/T 2261.1: 男, 女, 未知的性别 when it cannot be told at birth).
pub const SEXES: &[(&str, &str)] = &[("male", "男"), ("female", "女"), ("unknown", "未知")];

/// What the delivery form says of one live-born baby (strings as typed; empty = not known yet).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewbornInput {
    pub name: Option<String>,
    pub sex: Option<String>,
    /// `HH:MM` on the delivery day (China time).
    pub birth_time: Option<String>,
    pub weight_g: Option<String>,
    pub length_cm: Option<String>,
    pub apgar_1: Option<String>,
    pub apgar_5: Option<String>,
    pub malformations: Option<String>,
    /// Codes of [`NEWBORN_CONDITIONS`].
    pub conditions: Vec<String>,
}

/// One baby's checked birth facts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BirthFacts {
    pub name: Option<String>,
    pub sex: Option<Sex>,
    /// The birth time in China, when known.
    pub birth_time: Option<NaiveTime>,
    pub weight_g: Option<i32>,
    pub length_cm: Option<f64>,
    pub apgar_1: Option<i32>,
    pub apgar_5: Option<i32>,
    pub malformations: String,
    pub conditions: Vec<String>,
}

/// Plausible birth measurements (a typing error is refused, not recorded): 300–6,500 g,
/// 25–65 cm, Apgar 0–10.
pub const BIRTH_WEIGHT_G: (i32, i32) = (300, 6500);
pub const BIRTH_LENGTH_CM: (f64, f64) = (25.0, 65.0);

impl NewbornInput {
    /// Check one baby's facts; fields are named `babies[i].field` (i from 0).
    pub fn validate(&self, i: usize) -> Result<BirthFacts, Vec<FieldError>> {
        let f = |name: &str| format!("babies[{i}].{name}");
        let mut e = Vec::new();
        let sex = choice(&f("sex"), opt_str(&self.sex), SEXES, "性别", &mut e).map(|s| match s.as_str() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            _ => Sex::Unknown,
        });
        let birth_time = opt_str(&self.birth_time).and_then(|t| match NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(t) => Some(t),
            Err(_) => {
                e.push(FieldError::new(&f("birth_time"), "time", "出生时间格式应为 HH:MM"));
                None
            }
        });
        let weight_g = integer(
            &f("weight_g"),
            opt_str(&self.weight_g),
            BIRTH_WEIGHT_G.0,
            BIRTH_WEIGHT_G.1,
            "出生体重",
            " g",
            &mut e,
        );
        let length_cm = number(
            &f("length_cm"),
            opt_str(&self.length_cm),
            BIRTH_LENGTH_CM.0,
            BIRTH_LENGTH_CM.1,
            "出生身长",
            " cm",
            &mut e,
        );
        let apgar_1 = integer(
            &f("apgar_1"),
            opt_str(&self.apgar_1),
            0,
            10,
            "1分钟Apgar评分",
            "",
            &mut e,
        );
        let apgar_5 = integer(
            &f("apgar_5"),
            opt_str(&self.apgar_5),
            0,
            10,
            "5分钟Apgar评分",
            "",
            &mut e,
        );
        let malformations = text(&f("malformations"), &self.malformations, 500, "出生缺陷", &mut e);
        let mut conditions = Vec::new();
        for c in &self.conditions {
            let c = c.trim();
            if c.is_empty() {
                continue;
            }
            if NEWBORN_CONDITIONS.iter().any(|(k, _)| *k == c) {
                if !conditions.iter().any(|x: &String| x == c) {
                    conditions.push(c.to_string());
                }
            } else {
                e.push(FieldError::new(
                    &f("conditions"),
                    "choice",
                    format!("未知的新生儿情况：{c}"),
                ));
            }
        }
        let name = opt_str(&self.name).map(str::to_string);
        if let Some(n) = &name
            && !valid_child_name(n)
        {
            e.push(FieldError::new(
                &f("name"),
                "name",
                "姓名须为规范汉字（不含字母、数字和符号），最多 20 字",
            ));
        }
        if e.is_empty() {
            Ok(BirthFacts {
                name,
                sex,
                birth_time,
                weight_g,
                length_cm,
                apgar_1,
                apgar_5,
                malformations,
                conditions,
            })
        } else {
            Err(e)
        }
    }

    /// The free text of this baby's facts, for the fetal-sex check `(field, label, text)`.
    pub fn texts(&self, i: usize) -> Vec<(String, &'static str, String)> {
        vec![(
            format!("babies[{i}].malformations"),
            "出生缺陷",
            self.malformations.clone().unwrap_or_default(),
        )]
    }
}

/// 出生医学证明 names (RULES.md §6.2 [V]): 规范汉字, no pinyin, letters, digits or symbols.
pub fn valid_child_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=20).contains(&n) && name.chars().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c) || c == '·')
}

/// The name a newborn is registered under until the family names her (identity's rule, so that
/// an interface naming her by her real name still finds her).
pub use crate::identity::model::newborn_placeholder_name as placeholder_name;

/// Why a newborn is high-risk (高危新生儿), each with the fact it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HighRiskReason {
    pub code: &'static str,
    pub label: String,
}

/// Gestation under 37 weeks is preterm (早产, RULES.md §2.3 [V]).
pub const PRETERM_DAYS: i64 = 37 * 7;
/// Birth weight under 2,500 g is low (低出生体重, RULES.md §2.3 [V]).
pub const LOW_BIRTH_WEIGHT_G: i32 = 2500;

/// RULES.md §2.3: 早产、低出生体重、双/多胎、出生缺陷 [V], and the [R] list (中重度窒息、颅内出血、
/// 高胆红素血症、肺炎/败血症). Asphyxia is also read from the Apgar scores: a score ≤ 7 at 1 or 5
/// minutes (the 2016 Chinese consensus's threshold for asphyxia, without the blood gas the record
/// does not hold: the safer reading flags more babies, not fewer).
pub fn high_risk_reasons(gestation_days: Option<i64>, plurality: i32, facts: &BirthFacts) -> Vec<HighRiskReason> {
    let mut out = Vec::new();
    if let Some(g) = gestation_days
        && g < PRETERM_DAYS
    {
        out.push(HighRiskReason {
            code: "preterm",
            label: format!("早产（出生孕周 {}+{}）", g / 7, g % 7),
        });
    }
    if let Some(w) = facts.weight_g
        && w < LOW_BIRTH_WEIGHT_G
    {
        out.push(HighRiskReason {
            code: "low_birth_weight",
            label: format!("低出生体重（{w} g）"),
        });
    }
    if plurality > 1 {
        out.push(HighRiskReason {
            code: "multiple",
            label: format!("多胎（{plurality} 胎）"),
        });
    }
    if !facts.malformations.trim().is_empty() {
        out.push(HighRiskReason {
            code: "birth_defect",
            label: "出生缺陷".into(),
        });
    }
    let low_apgar = [facts.apgar_1, facts.apgar_5].iter().flatten().any(|a| *a <= 7);
    for (code, label) in NEWBORN_CONDITIONS {
        let ticked = facts.conditions.iter().any(|c| c == code);
        if ticked || (*code == "asphyxia" && low_apgar) {
            out.push(HighRiskReason {
                code,
                label: if *code == "asphyxia" && !ticked {
                    format!(
                        "新生儿窒息（Apgar 1分钟 {}，5分钟 {}）",
                        facts.apgar_1.map_or("—".into(), |a| a.to_string()),
                        facts.apgar_5.map_or("—".into(), |a| a.to_string())
                    )
                } else {
                    label.to_string()
                },
            });
        }
    }
    out
}

/// The UTC time of a birth on `day` (China) at `time` (China), noon when the time is not known.
pub fn birth_at(day: NaiveDate, time: Option<NaiveTime>) -> NaiveDateTime {
    let local = day.and_time(time.unwrap_or(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN)));
    local - chrono::Duration::hours(8)
}

// ------------------------------------------------------------------ the child health visit

/// Feeding (喂养方式) as the national child health forms record it.
pub const FEEDING: &[(&str, &str)] = &[
    ("exclusive_breast", "纯母乳喂养"),
    ("mixed", "混合喂养"),
    ("formula", "人工喂养"),
    ("complementary", "母乳/配方奶＋辅食"),
    ("family_food", "家庭膳食"),
];

/// Rickets signs (佝偻病体征) the 1–8-month and 12–30-month forms list.
pub const RICKETS_SIGNS: &[(&str, &str)] = &[
    ("night_sweats", "夜惊/多汗"),
    ("occipital_alopecia", "枕秃"),
    ("craniotabes", "颅骨软化"),
    ("rachitic_rosary", "肋串珠"),
    ("harrison_groove", "肋软骨沟"),
    ("leg_deformity", "鸡胸/O型腿/X型腿"),
    ("wrist_widening", "手足镯"),
];

/// One child health visit as the form gives it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ChildVisitInput {
    pub visit_date: Option<String>,
    pub weight_kg: Option<String>,
    pub length_cm: Option<String>,
    /// `lying` (卧位身长) or `standing` (立位身高); empty: lying under 2 years, standing after.
    pub position: Option<String>,
    pub head_circumference_cm: Option<String>,
    pub feeding: Option<String>,
    /// 心理行为发育预警征象: the signs found (none ticked = passed).
    pub development_warning: Option<String>,
    pub rickets_signs: Vec<String>,
    pub exam: Option<String>,
    pub hb_g_l: Option<String>,
    /// `pass` / `refer`.
    pub hearing: Option<String>,
    /// `normal` / `abnormal`.
    pub vision: Option<String>,
    pub illness: Option<String>,
    pub advice: Option<String>,
    pub referral: Option<String>,
    pub next_appointment: Option<String>,
    /// Set when the clinician confirms a value the WHO standard flags as implausible.
    pub confirm_implausible: Option<String>,
}

/// The checked visit (no ids).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChildVisitData {
    pub visit_date: NaiveDate,
    pub age_days: i64,
    pub weight_kg: Option<f64>,
    pub length_cm: Option<f64>,
    pub position: Option<String>,
    pub head_circumference_cm: Option<f64>,
    pub feeding: Option<String>,
    pub development_warning: String,
    pub rickets_signs: Vec<String>,
    pub exam: String,
    pub hb_g_l: Option<i32>,
    pub hearing: Option<String>,
    pub vision: Option<String>,
    pub illness: String,
    pub advice: String,
    pub referral: String,
    pub next_appointment: Option<NaiveDate>,
    pub confirm_implausible: bool,
}

pub const POSITIONS: &[(&str, &str)] = &[("lying", "卧位（身长）"), ("standing", "立位（身高）")];
pub const HEARING: &[(&str, &str)] = &[("pass", "通过"), ("refer", "未通过")];
pub const VISION: &[(&str, &str)] = &[("normal", "正常"), ("abnormal", "异常")];
/// Children are followed to their seventh birthday (0–6 岁).
pub const MAX_AGE_DAYS: i64 = 7 * 366;

impl ChildVisitInput {
    pub fn validate(&self, birth: NaiveDate, today: NaiveDate) -> Result<ChildVisitData, ServiceError> {
        let mut e = Vec::new();
        let visit_date = parse_date("visit_date", opt_str(&self.visit_date), &mut e);
        if opt_str(&self.visit_date).is_none() {
            e.push(FieldError::new("visit_date", "required", "请填写随访日期"));
        }
        let mut age_days = 0;
        if let Some(d) = visit_date {
            age_days = (d - birth).num_days();
            if d > today {
                e.push(FieldError::new("visit_date", "future", "随访日期不能晚于今天"));
            } else if d < birth {
                e.push(FieldError::new(
                    "visit_date",
                    "before_birth",
                    "随访日期不能早于出生日期",
                ));
            } else if age_days > MAX_AGE_DAYS {
                e.push(FieldError::new("visit_date", "too_old", "儿童健康管理至7岁"));
            }
        }
        let weight_kg = number("weight_kg", opt_str(&self.weight_kg), 0.3, 60.0, "体重", " kg", &mut e);
        let length_cm = number(
            "length_cm",
            opt_str(&self.length_cm),
            25.0,
            150.0,
            "身长/身高",
            " cm",
            &mut e,
        );
        let position = choice("position", opt_str(&self.position), POSITIONS, "测量体位", &mut e);
        let head_circumference_cm = number(
            "head_circumference_cm",
            opt_str(&self.head_circumference_cm),
            20.0,
            60.0,
            "头围",
            " cm",
            &mut e,
        );
        let feeding = choice("feeding", opt_str(&self.feeding), FEEDING, "喂养方式", &mut e);
        let mut rickets_signs = Vec::new();
        for s in self.rickets_signs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if RICKETS_SIGNS.iter().any(|(c, _)| *c == s) {
                rickets_signs.push(s.to_string());
            } else {
                e.push(FieldError::new(
                    "rickets_signs",
                    "choice",
                    format!("未知的佝偻病体征：{s}"),
                ));
            }
        }
        let hb_g_l = integer("hb_g_l", opt_str(&self.hb_g_l), 30, 220, "血红蛋白", " g/L", &mut e);
        let hearing = choice("hearing", opt_str(&self.hearing), HEARING, "听力筛查结果", &mut e);
        let vision = choice("vision", opt_str(&self.vision), VISION, "视力/眼保健结果", &mut e);
        let development_warning = text(
            "development_warning",
            &self.development_warning,
            500,
            "发育预警征象",
            &mut e,
        );
        let exam = text("exam", &self.exam, 1000, "体格检查", &mut e);
        let illness = text("illness", &self.illness, 500, "两次随访间患病情况", &mut e);
        let advice = text("advice", &self.advice, 1000, "指导意见", &mut e);
        let referral = text("referral", &self.referral, 500, "转诊建议", &mut e);
        let next_appointment = parse_date("next_appointment", opt_str(&self.next_appointment), &mut e);
        if let (Some(n), Some(v)) = (next_appointment, visit_date)
            && n <= v
        {
            e.push(FieldError::new(
                "next_appointment",
                "range",
                "下次随访日期须晚于本次随访",
            ));
        }
        if weight_kg.is_none()
            && length_cm.is_none()
            && head_circumference_cm.is_none()
            && hb_g_l.is_none()
            && e.is_empty()
        {
            // A visit records at least one measurement (the forms' 体格检查).
            e.push(FieldError::new(
                "weight_kg",
                "required",
                "请至少填写体重、身长、头围或血红蛋白之一",
            ));
        }
        match (e.is_empty(), visit_date) {
            (true, Some(visit_date)) => Ok(ChildVisitData {
                visit_date,
                age_days,
                weight_kg,
                length_cm,
                position,
                head_circumference_cm,
                feeding,
                development_warning,
                rickets_signs,
                exam,
                hb_g_l,
                hearing,
                vision,
                illness,
                advice,
                referral,
                next_appointment,
                confirm_implausible: opt_str(&self.confirm_implausible).is_some_and(|v| v == "1" || v == "true"),
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }

    /// The visit's free text, for the fetal-sex check `(field, label, text)`.
    pub fn texts(&self) -> Vec<(&'static str, &'static str, &str)> {
        fn t(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        vec![
            ("development_warning", "发育预警征象", t(&self.development_warning)),
            ("exam", "体格检查", t(&self.exam)),
            ("illness", "两次随访间患病情况", t(&self.illness)),
            ("advice", "指导意见", t(&self.advice)),
            ("referral", "转诊建议", t(&self.referral)),
        ]
    }
}

/// Anaemia by age (WHO haemoglobin thresholds, 2011 / 2024: children 6–59 months < 110 g/L;
/// 5–11 years < 115 g/L; used by 儿童保健 in China, RULES.md §2.3 血常规). Under 6 months no
/// threshold applies.
pub fn anaemic(hb_g_l: i32, age_days: i64) -> bool {
    if age_days < 183 {
        false
    } else if age_days < 5 * 365 {
        hb_g_l < 110
    } else {
        hb_g_l < 115
    }
}

// ------------------------------------------------------------------ vaccination and services

/// A vaccination the clinic gives (or enters from the child's 预防接种证).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct VaccinationInput {
    /// A programme vaccine code (`HepB`, `BCG`, … of `rules/child/nip-*.toml`).
    pub vaccine: Option<String>,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (China time).
    pub given_at: Option<String>,
    pub lot_number: Option<String>,
    /// 上市许可持有人 (the marketing-authorisation holder).
    pub manufacturer: Option<String>,
    pub expiry_date: Option<String>,
    pub site: Option<String>,
    /// The pre-vaccination checks (疫苗管理法 Art. 45: 健康状况询问、禁忌核查、查对接种证) were done.
    pub checks_done: Option<String>,
    /// Entered afterwards from the child's vaccination certificate (补录): the traceability fields
    /// are then those the certificate holds.
    pub from_certificate: Option<String>,
}

/// A checked vaccination.
#[derive(Debug, Clone, PartialEq)]
pub struct Vaccination {
    pub vaccine: String,
    pub given_at: NaiveDateTime,
    pub lot_number: Option<String>,
    pub manufacturer: Option<String>,
    pub expiry_date: Option<NaiveDate>,
    pub site: Option<String>,
    pub from_certificate: bool,
}

/// Parse `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (China time) to UTC.
pub fn parse_china_time(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    let local = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN)))
        })?;
    Some(local - chrono::Duration::hours(8))
}

impl VaccinationInput {
    /// 疫苗管理法 Art. 46 (RULES.md §7.5 [V]): every dose traceable — vaccine, holder, lot, expiry,
    /// time, vaccinator; Art. 45: the pre-vaccination checks. A dose entered from the certificate
    /// needs only vaccine and date. An expired vaccine is refused.
    pub fn validate(
        &self,
        known: &[(&str, &str)],
        birth_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<Vaccination, ServiceError> {
        let mut e = Vec::new();
        let vaccine = opt_str(&self.vaccine).unwrap_or("").to_string();
        if !known.iter().any(|(c, _)| *c == vaccine) {
            e.push(FieldError::new("vaccine", "choice", "请选择国家免疫规划疫苗"));
        }
        let given_at = opt_str(&self.given_at).and_then(parse_china_time);
        match given_at {
            None => e.push(FieldError::new(
                "given_at",
                "required",
                "请填写接种日期（YYYY-MM-DD 或 YYYY-MM-DDTHH:MM）",
            )),
            Some(t) if t > now + chrono::Duration::minutes(5) => {
                e.push(FieldError::new("given_at", "future", "接种时间不能晚于现在"))
            }
            Some(t) if crate::ids::china_date(t) < crate::ids::china_date(birth_at) => {
                e.push(FieldError::new("given_at", "before_birth", "接种时间不能早于出生"))
            }
            _ => {}
        }
        let from_certificate = opt_str(&self.from_certificate).is_some_and(|v| v == "1" || v == "true");
        let lot_number = opt_str(&self.lot_number).map(str::to_string);
        let manufacturer = opt_str(&self.manufacturer).map(str::to_string);
        let expiry_date = parse_date("expiry_date", opt_str(&self.expiry_date), &mut e);
        if !from_certificate {
            if lot_number.is_none() {
                e.push(FieldError::new(
                    "lot_number",
                    "required",
                    "请填写疫苗批号（疫苗管理法第四十六条）",
                ));
            }
            if manufacturer.is_none() {
                e.push(FieldError::new(
                    "manufacturer",
                    "required",
                    "请填写上市许可持有人（生产企业）",
                ));
            }
            if expiry_date.is_none() && opt_str(&self.expiry_date).is_none() {
                e.push(FieldError::new("expiry_date", "required", "请填写疫苗有效期"));
            }
            if !opt_str(&self.checks_done).is_some_and(|v| v == "1" || v == "true") {
                e.push(FieldError::new(
                    "checks_done",
                    "required",
                    "接种前须询问健康状况、核查禁忌并查对预防接种证（疫苗管理法第四十五条）",
                ));
            }
        }
        if let (Some(x), Some(t)) = (expiry_date, given_at)
            && x < crate::ids::china_date(t)
        {
            e.push(FieldError::new("expiry_date", "expired", "疫苗已过有效期，不得接种"));
        }
        for (field, v, label) in [
            ("lot_number", &lot_number, "批号"),
            ("manufacturer", &manufacturer, "上市许可持有人"),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 100) {
                e.push(FieldError::new(field, "too_long", format!("{label}最多 100 字")));
            }
        }
        let site = opt_str(&self.site).map(str::to_string);
        match (e.is_empty(), given_at) {
            (true, Some(given_at)) => Ok(Vaccination {
                vaccine,
                given_at,
                lot_number,
                manufacturer,
                expiry_date,
                site,
                from_certificate,
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }
}

/// A coded value as another system sends it (a route or a site: HL7 table 0162 / 0163).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coded {
    /// A URI (`http://terminology.hl7.org/CodeSystem/v2-0162`) or empty when the sender named none.
    pub system: String,
    pub code: String,
    pub text: String,
}

/// The vaccine of a reported dose: one of the programme's (`HepB`, `BCG` …), or another one
/// kept as the sender coded it (it is not part of the schedule).
#[derive(Debug, Clone, PartialEq)]
pub enum ReportedVaccine {
    Programme(String),
    Other { system: String, code: String, text: String },
}

/// A dose another system reports for a child (an immunisation information system over HL7
/// VXU^V04). Such a dose was given elsewhere and is taken as a *reported* record, as a dose entered
/// from the 预防接种证 is (`from_certificate`): the vaccine and the time are required, the
/// traceability fields of 疫苗管理法 Art. 46 (lot, holder, expiry) are kept when sent, and the
/// Art. 45 pre-vaccination checks are the administering clinic's, not claimed here. It counts as the
/// administering provider's own record (FHIR `primarySource`) only when the sender says it is a
/// new record of a dose given (`administered`) **and** it is traceable (lot, holder and expiry all
/// present). An expired vaccine, a time in the future or before the birth are refused as on the form.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedDose {
    pub vaccine: ReportedVaccine,
    /// UTC.
    pub given_at: NaiveDateTime,
    /// Only the day was sent (the time is that day's start, China time).
    pub date_only: bool,
    /// The vaccine codings as the sender sent them (kept beside ours: a CVX code, say).
    pub sent_as: Vec<Coded>,
    pub lot_number: Option<String>,
    pub manufacturer: Option<String>,
    pub expiry_date: Option<NaiveDate>,
    pub route: Option<Coded>,
    pub site: Option<Coded>,
    /// The sender reports it as a new record of a dose given (not historical information).
    pub administered: bool,
    /// Who gave it, as the sender names them.
    pub performer: Option<String>,
    /// Where the report came from, in words (e.g. "HL7 VXU^V04 IIS^CDC340524").
    pub source: String,
}

impl ReportedDose {
    /// Lot, holder and expiry are all known (疫苗管理法 Art. 46).
    pub fn traceable(&self) -> bool {
        self.lot_number.is_some() && self.manufacturer.is_some() && self.expiry_date.is_some()
    }

    /// Whether it counts as the administering provider's own record (FHIR `primarySource`).
    pub fn primary_source(&self) -> bool {
        self.administered && self.traceable()
    }

    /// The checks of the form that apply to a reported dose; fields are named as on the form
    /// (`vaccine`, `given_at`, `expiry_date`, `lot_number`, `manufacturer`).
    pub fn validate(
        &self,
        known: &[(&str, &str)],
        birth_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<(), ServiceError> {
        let mut e = Vec::new();
        match &self.vaccine {
            ReportedVaccine::Programme(code) if !known.iter().any(|(c, _)| c == code) => {
                e.push(FieldError::new("vaccine", "unknown_code", "不是国家免疫规划疫苗"));
            }
            ReportedVaccine::Other { code, text, .. } if code.trim().is_empty() && text.trim().is_empty() => {
                e.push(FieldError::new("vaccine", "required", "请填写疫苗"));
            }
            _ => {}
        }
        if self.given_at > now + chrono::Duration::minutes(5) {
            e.push(FieldError::new("given_at", "future", "接种时间不能晚于现在"));
        } else if crate::ids::china_date(self.given_at) < crate::ids::china_date(birth_at) {
            e.push(FieldError::new("given_at", "before_birth", "接种时间不能早于出生"));
        }
        if let Some(x) = self.expiry_date
            && x < crate::ids::china_date(self.given_at)
        {
            e.push(FieldError::new("expiry_date", "expired", "疫苗已过有效期，不得接种"));
        }
        for (field, v, label) in [
            ("lot_number", &self.lot_number, "批号"),
            ("manufacturer", &self.manufacturer, "上市许可持有人"),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 100) {
                e.push(FieldError::new(field, "too_long", format!("{label}最多 100 字")));
            }
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(e))
        }
    }
}

/// What a child health visit measured that interfaces show one by one (FHIR Observations
/// `<visit id>.<suffix>`): the growth measurements, the BMI derived from them, and the Hb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Weight,
    /// Recumbent length (卧位身长), under two years or when measured lying.
    Length,
    /// Standing height (立位身高).
    Height,
    HeadCircumference,
    /// Weight / (length or height in m)², with the WHO ±0.7 cm lying/standing correction when
    /// the WHO evaluation applies.
    Bmi,
    Hb,
}

impl Measure {
    pub const ALL: [Measure; 6] = [
        Measure::Weight,
        Measure::Length,
        Measure::Height,
        Measure::HeadCircumference,
        Measure::Bmi,
        Measure::Hb,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            Measure::Weight => "weight",
            Measure::Length => "length",
            Measure::Height => "height",
            Measure::HeadCircumference => "head-circumference",
            Measure::Bmi => "bmi",
            Measure::Hb => "hb",
        }
    }

    pub fn of_suffix(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.suffix() == s)
    }
}

/// The measurements of a visit with their values (kg, cm, kg/m², g/L), in [`Measure::ALL`]
/// order. `bmi` is the WHO evaluation's when there is one; else it is computed from the length as
/// measured (2 decimals).
pub fn measures_of(v: &ChildVisit, bmi: Option<f64>) -> Vec<(Measure, f64)> {
    let mut out = Vec::new();
    if let Some(w) = v.weight_kg {
        out.push((Measure::Weight, w));
    }
    if let Some(l) = v.length_cm {
        let standing = v.position.as_deref() == Some("standing");
        out.push((if standing { Measure::Height } else { Measure::Length }, l));
    }
    if let Some(h) = v.head_circumference_cm {
        out.push((Measure::HeadCircumference, h));
    }
    let computed = match (v.weight_kg, v.length_cm) {
        (Some(w), Some(l)) if l > 0.0 => Some((w / (l / 100.0).powi(2) * 100.0).round() / 100.0),
        _ => None,
    };
    if let Some(b) = bmi.or(computed) {
        out.push((Measure::Bmi, b));
    }
    if let Some(hb) = v.hb_g_l {
        out.push((Measure::Hb, f64::from(hb)));
    }
    out
}

/// Results a service takes: screening (`pass` / `refer`), tests (`negative` / `positive`), or
/// `given` for a prophylaxis.
pub const SERVICE_RESULTS: &[(&str, &str)] = &[
    ("pass", "通过/未见异常"),
    ("refer", "未通过/可疑阳性"),
    ("negative", "阴性"),
    ("positive", "阳性"),
    ("given", "已实施"),
];

/// A screening, lab or 预防母婴传播 item done.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceInput {
    pub code: Option<String>,
    pub done_at: Option<String>,
    pub result: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceData {
    pub code: String,
    pub done_at: NaiveDateTime,
    pub result: Option<String>,
    pub note: String,
}

impl ServiceInput {
    pub fn validate(
        &self,
        codes: &[(&str, &str)],
        birth_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<ServiceData, ServiceError> {
        let mut e = Vec::new();
        let code = opt_str(&self.code).unwrap_or("").to_string();
        if !codes.iter().any(|(c, _)| *c == code) {
            e.push(FieldError::new("code", "choice", "请选择筛查、检测或预防措施项目"));
        }
        let done_at = opt_str(&self.done_at).and_then(parse_china_time);
        match done_at {
            None => e.push(FieldError::new(
                "done_at",
                "required",
                "请填写完成时间（YYYY-MM-DD 或 YYYY-MM-DDTHH:MM）",
            )),
            Some(t) if t > now + chrono::Duration::minutes(5) => {
                e.push(FieldError::new("done_at", "future", "完成时间不能晚于现在"))
            }
            Some(t) if t < birth_at - chrono::Duration::hours(12) => {
                e.push(FieldError::new("done_at", "before_birth", "完成时间不能早于出生"))
            }
            _ => {}
        }
        let result = choice("result", opt_str(&self.result), SERVICE_RESULTS, "结果", &mut e);
        let note = text("note", &self.note, 500, "说明", &mut e);
        match (e.is_empty(), done_at) {
            (true, Some(done_at)) => Ok(ServiceData {
                code,
                done_at,
                result,
                note,
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }
}

// ------------------------------------------------------------------ 出生医学证明

/// The 出生医学证明 fields the record does not already hold (RULES.md §6.2, HRB01.01): the rest
/// (the child's sex, birth time, gestation, weight and length, the mother's name and ID) come from
/// the birth and the mother's record when it is issued.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct CertificateInput {
    pub number: Option<String>,
    pub issued_on: Option<String>,
    pub child_name: Option<String>,
    pub birthplace: Option<String>,
    /// 出生地点类别: `hospital`, `maternity_home`, `home`, `on_the_way`, `other`.
    pub place_type: Option<String>,
    /// 新生儿健康状况: `good`, `fair`, `poor`.
    pub health_status: Option<String>,
    pub father_name: Option<String>,
    pub father_id_number: Option<String>,
    pub midwife: Option<String>,
    pub issuer: Option<String>,
}

pub const PLACE_TYPES: &[(&str, &str)] = &[
    ("hospital", "医院"),
    ("maternity_home", "妇幼保健院"),
    ("home", "家庭"),
    ("on_the_way", "途中"),
    ("other", "其他"),
];
pub const HEALTH_STATUS: &[(&str, &str)] = &[("good", "良好"), ("fair", "一般"), ("poor", "差")];

/// A checked certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub number: String,
    pub issued_on: NaiveDate,
    pub child_name: String,
    pub birthplace: String,
    pub place_type: String,
    pub health_status: String,
    pub father_name: Option<String>,
    pub father_id_number: Option<String>,
    pub midwife: String,
    pub issuer: String,
}

/// 第七版出生医学证明 (2023-04-01) numbers: one capital letter and nine digits (RULES.md §6.2 [V]).
pub fn valid_certificate_number(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() == 10 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

impl CertificateInput {
    pub fn validate(&self, birth: NaiveDate, today: NaiveDate) -> Result<Certificate, ServiceError> {
        let mut e = Vec::new();
        let number = opt_str(&self.number).unwrap_or("").to_uppercase();
        if !valid_certificate_number(&number) {
            e.push(FieldError::new(
                "number",
                "format",
                "出生医学证明编号应为 1 个大写字母加 9 位数字",
            ));
        }
        let issued_on = parse_date("issued_on", opt_str(&self.issued_on), &mut e);
        match issued_on {
            None if opt_str(&self.issued_on).is_none() => {
                e.push(FieldError::new("issued_on", "required", "请填写签发日期"))
            }
            Some(d) if d < birth || d > today => {
                e.push(FieldError::new("issued_on", "range", "签发日期须在出生之后、今天之前"))
            }
            _ => {}
        }
        let child_name = opt_str(&self.child_name).unwrap_or("").to_string();
        if !valid_child_name(&child_name) {
            e.push(FieldError::new(
                "child_name",
                "name",
                "新生儿姓名须为规范汉字（不含拼音、字母、数字和符号），最多 20 字",
            ));
        }
        let required = |field: &str, raw: &Option<String>, label: &str, e: &mut Vec<FieldError>| {
            let t = text(field, raw, 200, label, e);
            if t.is_empty() {
                e.push(FieldError::new(field, "required", format!("请填写{label}")));
            }
            t
        };
        let birthplace = required("birthplace", &self.birthplace, "出生地点", &mut e);
        let midwife = required("midwife", &self.midwife, "接生人员", &mut e);
        let issuer = required("issuer", &self.issuer, "签证机构", &mut e);
        let place_type = choice(
            "place_type",
            opt_str(&self.place_type),
            PLACE_TYPES,
            "出生地点类别",
            &mut e,
        )
        .unwrap_or_else(|| {
            if opt_str(&self.place_type).is_none() {
                e.push(FieldError::new("place_type", "required", "请选择出生地点类别"));
            }
            String::new()
        });
        let health_status = choice(
            "health_status",
            opt_str(&self.health_status),
            HEALTH_STATUS,
            "新生儿健康状况",
            &mut e,
        )
        .unwrap_or_else(|| {
            if opt_str(&self.health_status).is_none() {
                e.push(FieldError::new("health_status", "required", "请选择新生儿健康状况"));
            }
            String::new()
        });
        let father_name = opt_str(&self.father_name).map(str::to_string);
        // The father's fields stay blank when he is not known (RULES.md §6.2: the mother's statement).
        let father_id_number = match opt_str(&self.father_id_number) {
            None => None,
            Some(raw) => match crate::identity::model::IdNumber::parse(raw, today) {
                Ok(id) => Some(id.as_str().to_string()),
                Err(err) => {
                    e.push(FieldError::new("father_id_number", err.code(), err.message_zh()));
                    None
                }
            },
        };
        match (e.is_empty(), issued_on) {
            (true, Some(issued_on)) => Ok(Certificate {
                number,
                issued_on,
                child_name,
                birthplace,
                place_type,
                health_status,
                father_name,
                father_id_number,
                midwife,
                issuer,
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }
}

// ------------------------------------------------------------------ stored records

/// A child's record: who she was born to, and her birth.
#[derive(Debug, Clone, Serialize)]
pub struct ChildRecord {
    pub person_id: String,
    pub mother_id: String,
    pub pregnancy_id: Option<String>,
    /// UTC.
    pub birth_at: NaiveDateTime,
    pub birth_time_known: bool,
    pub birth_order: i32,
    pub plurality: i32,
    pub gestation_days: Option<i64>,
    pub birth_weight_g: Option<i32>,
    pub birth_length_cm: Option<f64>,
    pub apgar_1: Option<i32>,
    pub apgar_5: Option<i32>,
    pub malformations: String,
    pub conditions: Vec<String>,
    /// The mother's positive results that start 预防母婴传播 items (`hbsag`, `hiv`, `syphilis`).
    pub exposures: Vec<String>,
    pub discharge_date: Option<NaiveDate>,
    pub birth_facility: String,
    pub certificate: Option<Certificate>,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub recorded_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
}

impl ChildRecord {
    /// Her China date of birth.
    pub fn birth_date(&self) -> NaiveDate {
        crate::ids::china_date(self.birth_at)
    }

    pub fn birth_facts(&self) -> BirthFacts {
        BirthFacts {
            name: None,
            sex: None,
            birth_time: None,
            weight_g: self.birth_weight_g,
            length_cm: self.birth_length_cm,
            apgar_1: self.apgar_1,
            apgar_5: self.apgar_5,
            malformations: self.malformations.clone(),
            conditions: self.conditions.clone(),
        }
    }

    pub fn high_risk_reasons(&self) -> Vec<HighRiskReason> {
        high_risk_reasons(self.gestation_days, self.plurality, &self.birth_facts())
    }

    /// Whether any reason of [`high_risk_reasons`] applies (without building their texts).
    pub fn is_high_risk(&self) -> bool {
        self.gestation_days.is_some_and(|g| g < PRETERM_DAYS)
            || self.birth_weight_g.is_some_and(|w| w < LOW_BIRTH_WEIGHT_G)
            || self.plurality > 1
            || !self.malformations.trim().is_empty()
            || !self.conditions.is_empty()
            || [self.apgar_1, self.apgar_5].iter().flatten().any(|a| *a <= 7)
    }

    /// Birth facts still to be completed (a delivery recorded without them).
    pub fn incomplete(&self) -> bool {
        self.birth_weight_g.is_none() || !self.birth_time_known
    }
}

/// A stored child health visit.
#[derive(Debug, Clone, Serialize)]
pub struct ChildVisit {
    pub id: String,
    pub child_id: String,
    pub visit_date: NaiveDate,
    pub age_days: i64,
    pub weight_kg: Option<f64>,
    pub length_cm: Option<f64>,
    pub position: Option<String>,
    pub head_circumference_cm: Option<f64>,
    pub feeding: Option<String>,
    pub development_warning: String,
    pub rickets_signs: Vec<String>,
    pub exam: String,
    pub hb_g_l: Option<i32>,
    pub hearing: Option<String>,
    pub vision: Option<String>,
    pub illness: String,
    pub advice: String,
    pub referral: String,
    pub next_appointment: Option<NaiveDate>,
    pub facility_id: String,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

/// A stored screening, lab or 预防母婴传播 measure.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRecord {
    pub id: String,
    pub child_id: String,
    pub code: String,
    pub done_at: NaiveDateTime,
    pub result: Option<String>,
    pub note: String,
    pub facility_id: String,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baby(weight: &str, a1: &str, a5: &str) -> BirthFacts {
        NewbornInput {
            sex: Some("female".into()),
            weight_g: Some(weight.into()),
            apgar_1: Some(a1.into()),
            apgar_5: Some(a5.into()),
            ..NewbornInput::default()
        }
        .validate(0)
        .unwrap()
    }

    #[test]
    fn impossible_birth_facts_are_refused_field_by_field() {
        let e = NewbornInput {
            sex: Some("girl".into()),
            weight_g: Some("32000".into()),
            apgar_1: Some("11".into()),
            birth_time: Some("25:61".into()),
            name: Some("Baby1".into()),
            ..NewbornInput::default()
        }
        .validate(1)
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "babies[1].sex",
                "babies[1].birth_time",
                "babies[1].weight_g",
                "babies[1].apgar_1",
                "babies[1].name"
            ]
        );
    }

    #[test]
    fn a_newborn_is_high_risk_for_each_reason_of_the_regulation() {
        let term = baby("3200", "9", "10");
        assert!(high_risk_reasons(Some(275), 1, &term).is_empty());
        let codes = |r: Vec<HighRiskReason>| r.into_iter().map(|r| r.code).collect::<Vec<_>>();
        assert_eq!(codes(high_risk_reasons(Some(258), 1, &term)), ["preterm"], "36+6");
        assert!(high_risk_reasons(Some(259), 1, &term).is_empty(), "37+0 is term");
        assert_eq!(
            codes(high_risk_reasons(Some(275), 1, &baby("2499", "9", "10"))),
            ["low_birth_weight"]
        );
        assert!(high_risk_reasons(Some(275), 1, &baby("2500", "9", "10")).is_empty());
        assert_eq!(codes(high_risk_reasons(Some(275), 2, &term)), ["multiple"]);
        assert_eq!(
            codes(high_risk_reasons(Some(275), 1, &baby("3200", "6", "8"))),
            ["asphyxia"]
        );
        let mut defect = term.clone();
        defect.malformations = "唇腭裂".into();
        defect.conditions = vec!["hyperbilirubinaemia".into()];
        assert_eq!(
            codes(high_risk_reasons(Some(275), 1, &defect)),
            ["birth_defect", "hyperbilirubinaemia"]
        );
    }

    #[test]
    fn the_quick_high_risk_check_agrees_with_the_reasons() {
        let t = NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let base = ChildRecord {
            person_id: String::new(),
            mother_id: String::new(),
            pregnancy_id: None,
            birth_at: t,
            birth_time_known: true,
            birth_order: 1,
            plurality: 1,
            gestation_days: Some(275),
            birth_weight_g: Some(3200),
            birth_length_cm: None,
            apgar_1: Some(9),
            apgar_5: Some(10),
            malformations: String::new(),
            conditions: Vec::new(),
            exposures: Vec::new(),
            discharge_date: None,
            birth_facility: String::new(),
            certificate: None,
            jurisdiction: String::new(),
            township_code: None,
            recorded_by: String::new(),
            created_at: t,
            updated_at: t,
            version: 1,
        };
        let variants: [fn(&mut ChildRecord); 8] = [
            |_| {},
            |r| r.gestation_days = Some(250),
            |r| r.birth_weight_g = Some(2400),
            |r| r.plurality = 2,
            |r| r.malformations = "多指".into(),
            |r| r.conditions = vec!["pneumonia_sepsis".into()],
            |r| r.apgar_5 = Some(7),
            |r| r.apgar_1 = None,
        ];
        for v in variants {
            let mut r = base.clone();
            v(&mut r);
            assert_eq!(r.is_high_risk(), !r.high_risk_reasons().is_empty(), "{r:?}");
        }
    }

    #[test]
    fn names_and_certificate_numbers_follow_the_certificate_rules() {
        assert!(valid_child_name("王小雨") && valid_child_name("阿依·买买提"));
        assert!(!valid_child_name("Wang") && !valid_child_name("王2") && !valid_child_name(""));
        assert!(valid_certificate_number("Q340000001"));
        assert!(!valid_certificate_number("q340000001") && !valid_certificate_number("Q34000000"));
        assert_eq!(placeholder_name("李丽", Some(Sex::Female), 1, 1), "李丽之女");
        assert_eq!(placeholder_name("李丽", Some(Sex::Male), 2, 2), "李丽之子2");
    }

    #[test]
    fn an_expired_or_untraceable_vaccine_is_refused() {
        let birth = birth_at(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), None);
        let now = birth + chrono::Duration::days(40);
        let known = [("HepB", "乙肝疫苗")];
        let base = VaccinationInput {
            vaccine: Some("HepB".into()),
            given_at: Some("2026-02-01".into()),
            lot_number: Some("202511A".into()),
            manufacturer: Some("某生物制品有限公司".into()),
            expiry_date: Some("2027-06-30".into()),
            checks_done: Some("1".into()),
            ..VaccinationInput::default()
        };
        assert!(base.validate(&known, birth, now).is_ok());
        let mut expired = base.clone();
        expired.expiry_date = Some("2026-01-31".into());
        let Err(ServiceError::Invalid(e)) = expired.validate(&known, birth, now) else {
            panic!()
        };
        assert_eq!(e[0].code, "expired");
        let untraceable = VaccinationInput {
            vaccine: Some("HepB".into()),
            given_at: Some("2026-02-01".into()),
            ..VaccinationInput::default()
        };
        let Err(ServiceError::Invalid(e)) = untraceable.validate(&known, birth, now) else {
            panic!()
        };
        assert_eq!(e.len(), 4, "{e:?}");
        let mut certificate = untraceable.clone();
        certificate.from_certificate = Some("1".into());
        assert!(
            certificate.validate(&known, birth, now).is_ok(),
            "entered from the 接种证"
        );
    }

    #[test]
    fn a_reported_dose_needs_no_lot_but_an_expired_or_future_one_is_refused() {
        let birth = birth_at(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), None);
        let now = birth + chrono::Duration::days(40);
        let known = [("HepB", "乙肝疫苗")];
        let dose = ReportedDose {
            vaccine: ReportedVaccine::Programme("HepB".into()),
            given_at: birth + chrono::Duration::hours(2),
            date_only: false,
            sent_as: Vec::new(),
            lot_number: None,
            manufacturer: None,
            expiry_date: None,
            route: None,
            site: None,
            administered: true,
            performer: None,
            source: "test".into(),
        };
        assert!(dose.validate(&known, birth, now).is_ok());
        assert!(!dose.primary_source(), "a dose without its lot is a reported one");
        let mut traceable = dose.clone();
        traceable.lot_number = Some("L1".into());
        traceable.manufacturer = Some("某生物".into());
        traceable.expiry_date = Some(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
        assert!(traceable.primary_source());
        let mut bad = traceable.clone();
        bad.expiry_date = Some(NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
        bad.given_at = now + chrono::Duration::days(1);
        bad.vaccine = ReportedVaccine::Programme("XYZ".into());
        let Err(ServiceError::Invalid(e)) = bad.validate(&known, birth, now) else {
            panic!()
        };
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["vaccine", "given_at", "expiry_date"]);
    }

    #[test]
    fn a_visit_reads_as_its_measurements_lying_or_standing() {
        let mut v = ChildVisit {
            id: "v".into(),
            child_id: "c".into(),
            visit_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            age_days: 30,
            weight_kg: Some(4.0),
            length_cm: Some(50.0),
            position: Some("lying".into()),
            head_circumference_cm: Some(36.0),
            feeding: None,
            development_warning: String::new(),
            rickets_signs: Vec::new(),
            exam: String::new(),
            hb_g_l: None,
            hearing: None,
            vision: None,
            illness: String::new(),
            advice: String::new(),
            referral: String::new(),
            next_appointment: None,
            facility_id: "f".into(),
            recorded_by: "r".into(),
            recorded_at: NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        };
        let m = measures_of(&v, None);
        assert_eq!(
            m.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            [
                Measure::Weight,
                Measure::Length,
                Measure::HeadCircumference,
                Measure::Bmi
            ]
        );
        assert_eq!(m[3].1, 16.0, "4 kg / 0.5 m²");
        v.position = Some("standing".into());
        assert_eq!(measures_of(&v, Some(15.5))[1].0, Measure::Height);
        assert_eq!(measures_of(&v, Some(15.5))[3].1, 15.5, "the WHO evaluation's BMI wins");
        assert_eq!(
            Measure::of_suffix("head-circumference"),
            Some(Measure::HeadCircumference)
        );
    }

    #[test]
    fn anaemia_thresholds_follow_age() {
        assert!(!anaemic(100, 150), "no threshold under 6 months");
        assert!(anaemic(109, 200) && !anaemic(110, 200));
        assert!(anaemic(114, 6 * 365) && !anaemic(115, 6 * 365));
    }
}
