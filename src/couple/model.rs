//! Before pregnancy, pure: couples and their marriage facts, the findings of the marriage check
//! (婚前医学检查) and of the free pre-pregnancy screening (孕前优生健康检查, the 19 items of RULES.md
//! §3.2), the plausibility of each value, the couple's risk evaluation (一般人群 / 高风险人群,
//! §3.3) and the follow-up timing (§3.4) — all from `rules/couple/prepregnancy-2010.toml` or a
//! region's file of the same shape.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, ServiceError};
use crate::identity::model::clean;
use crate::observations::model::TestResult;

// ------------------------------------------------------------------ couples

/// Which partner of a couple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partner {
    Wife,
    Husband,
}

impl Partner {
    pub fn as_str(self) -> &'static str {
        match self {
            Partner::Wife => "wife",
            Partner::Husband => "husband",
        }
    }

    pub fn parse(s: &str) -> Option<Partner> {
        match s {
            "wife" => Some(Partner::Wife),
            "husband" => Some(Partner::Husband),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Partner::Wife => "女方",
            Partner::Husband => "男方",
        }
    }
}

/// The marriage facts typed at the desk.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarriageInput {
    pub marriage_date: Option<String>,
    pub marriage_cert_no: Option<String>,
    #[serde(default)]
    pub wife_remarriage: bool,
    #[serde(default)]
    pub husband_remarriage: bool,
    /// 2-digit province codes; when absent, the first two digits of the spouse's ID number.
    pub wife_province: Option<String>,
    pub husband_province: Option<String>,
}

/// Validated marriage facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marriage {
    pub marriage_date: Option<NaiveDate>,
    pub marriage_cert_no: Option<String>,
    pub wife_remarriage: bool,
    pub husband_remarriage: bool,
    pub wife_province: String,
    pub husband_province: String,
}

/// The legal marriage age (民法典 Art. 1047: men 22, women 20 full years).
pub fn legal_marriage_age(partner: Partner) -> i32 {
    match partner {
        Partner::Wife => 20,
        Partner::Husband => 22,
    }
}

/// The wife's own part of a couple's evaluation, for her record outside the couple (her FHIR
/// packet, her pregnancy forms): her factors only, and her class from them — his findings are
/// his and are read only in the couple's context.
pub fn her_part(factors: &[FoundFactor]) -> (RiskClass, Vec<&FoundFactor>) {
    let hers: Vec<&FoundFactor> = factors.iter().filter(|f| f.partner == Partner::Wife).collect();
    let class = if hers.is_empty() {
        RiskClass::General
    } else {
        RiskClass::High
    };
    (class, hers)
}

/// 户籍 provinces are GB/T 2260 province codes, as the policy engine reads them.
pub use crate::policy::model::PROVINCES;

impl MarriageInput {
    /// Check the facts; `wife_id_number` / `husband_id_number` give the default 户籍 provinces.
    pub fn validate(
        &self,
        today: NaiveDate,
        wife_id_number: Option<&str>,
        husband_id_number: Option<&str>,
    ) -> Result<Marriage, ServiceError> {
        let mut errors = Vec::new();
        let marriage_date = match clean(&self.marriage_date) {
            None => None,
            Some(d) => match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
                Ok(d) if d > today => {
                    errors.push(FieldError::new("marriage_date", "future", "结婚日期不能晚于今天"));
                    None
                }
                Ok(d) if d.year() < 1950 => {
                    errors.push(FieldError::new("marriage_date", "implausible", "结婚日期不合理"));
                    None
                }
                Ok(d) => Some(d),
                Err(_) => {
                    errors.push(FieldError::new(
                        "marriage_date",
                        "format",
                        "结婚日期格式应为 YYYY-MM-DD",
                    ));
                    None
                }
            },
        };
        let marriage_cert_no = clean(&self.marriage_cert_no);
        if let Some(n) = &marriage_cert_no
            && (n.chars().count() > 40 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            errors.push(FieldError::new(
                "marriage_cert_no",
                "format",
                "结婚证字号只能由字母、数字和“-”组成（不超过 40 位）",
            ));
        }
        if marriage_cert_no.is_some() && marriage_date.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "marriage_date",
                "required",
                "登记了结婚证字号时须填写结婚日期",
            ));
        }
        let mut province = |field: &'static str, given: &Option<String>, id: Option<&str>| -> String {
            let p = clean(given).or_else(|| id.map(|i| i.chars().take(2).collect()));
            match p {
                Some(p) if PROVINCES.contains(&p.as_str()) => p,
                Some(_) => {
                    errors.push(FieldError::new(
                        field,
                        "unknown",
                        "户籍省份代码不存在（GB/T 2260 两位代码）",
                    ));
                    String::new()
                }
                None => {
                    errors.push(FieldError::new(field, "required", "请填写户籍省份（无身份证号时必填）"));
                    String::new()
                }
            }
        };
        let wife_province = province("wife_province", &self.wife_province, wife_id_number);
        let husband_province = province("husband_province", &self.husband_province, husband_id_number);
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        Ok(Marriage {
            marriage_date,
            marriage_cert_no,
            wife_remarriage: self.wife_remarriage,
            husband_remarriage: self.husband_remarriage,
            wife_province,
            husband_province,
        })
    }
}

// ------------------------------------------------------------------ findings (19 items)

/// Normal or abnormal, for examinations recorded as such (体格检查、白带常规、尿常规、超声).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normality {
    Normal,
    Abnormal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Abo {
    A,
    B,
    AB,
    O,
}

/// One partner's findings, item by item (§3.2). Every field is optional: what was not done is
/// absent, never guessed. The marriage check records the same history, examination and labs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Findings {
    // 2 病史询问
    /// Chronic diseases (codes of the rule set's disease list).
    #[serde(default)]
    pub diseases: Vec<String>,
    #[serde(default)]
    pub genetic_disease: bool,
    #[serde(default)]
    pub consanguineous: bool,
    #[serde(default)]
    pub birth_defect_child: bool,
    pub miscarriages: Option<f64>,
    pub preterm_births: Option<f64>,
    pub stillbirths: Option<f64>,
    pub caesareans: Option<f64>,
    #[serde(default)]
    pub smoking: bool,
    #[serde(default)]
    pub alcohol: bool,
    /// 环境毒害物暴露 (pesticide, radiation, heavy_metal, solvent, other).
    #[serde(default)]
    pub toxic_exposures: Vec<String>,
    pub medications: Option<String>,
    // 3 体格检查
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub systolic_mmhg: Option<f64>,
    pub diastolic_mmhg: Option<f64>,
    pub genital_exam: Option<Normality>,
    // 4 阴道分泌物
    pub vaginal_discharge: Option<Normality>,
    pub gonorrhoea: Option<TestResult>,
    pub chlamydia: Option<TestResult>,
    // 5 血常规
    pub hb_g_l: Option<f64>,
    pub wbc_10e9_l: Option<f64>,
    pub platelets_10e9_l: Option<f64>,
    // 6 尿常规
    pub urine: Option<Normality>,
    // 7 血型
    pub abo: Option<Abo>,
    pub rh_negative: Option<bool>,
    // 8, 9
    pub glucose_mmol_l: Option<f64>,
    pub alt_u_l: Option<f64>,
    // 10 乙肝五项
    pub hbsag: Option<TestResult>,
    pub hbsab: Option<TestResult>,
    pub hbeag: Option<TestResult>,
    pub hbeab: Option<TestResult>,
    pub hbcab: Option<TestResult>,
    // 11, 12
    pub creatinine_umol_l: Option<f64>,
    pub tsh_miu_l: Option<f64>,
    // 13–16
    pub syphilis: Option<TestResult>,
    pub rubella_igg: Option<TestResult>,
    pub cmv_igm: Option<TestResult>,
    pub cmv_igg: Option<TestResult>,
    pub toxo_igm: Option<TestResult>,
    pub toxo_igg: Option<TestResult>,
    // 17 妇科超声
    pub ultrasound: Option<Normality>,
    pub fibroid_mm: Option<f64>,
    pub adnexal_cyst_mm: Option<f64>,
    /// Not one of the 19 items; recorded where tested (预防母婴传播 offers it, RULES.md §7.2).
    pub hiv: Option<TestResult>,
    pub note: Option<String>,
}

/// The environmental exposures the history form offers.
pub const EXPOSURES: [(&str, &str); 5] = [
    ("pesticide", "农药"),
    ("radiation", "放射线"),
    ("heavy_metal", "重金属"),
    ("solvent", "有机溶剂"),
    ("other", "其他"),
];

/// Fields a man's findings cannot hold: the woman's examinations and history.
pub const WOMAN_ONLY: [&str; 13] = [
    "vaginal_discharge",
    "rubella_igg",
    "cmv_igm",
    "cmv_igg",
    "toxo_igm",
    "toxo_igg",
    "tsh_miu_l",
    "ultrasound",
    "fibroid_mm",
    "adnexal_cyst_mm",
    "miscarriages",
    "preterm_births",
    "caesareans",
];

impl Findings {
    /// A numeric value by fact name (`age_years` is the caller's; BMI is computed).
    pub fn number(&self, fact: &str) -> Option<f64> {
        match fact {
            "height_cm" => self.height_cm,
            "weight_kg" => self.weight_kg,
            "bmi" => match (self.weight_kg, self.height_cm) {
                (Some(w), Some(h)) if h > 0.0 => Some((w / (h / 100.0).powi(2) * 10.0).round() / 10.0),
                _ => None,
            },
            "systolic_mmhg" => self.systolic_mmhg,
            "diastolic_mmhg" => self.diastolic_mmhg,
            "hb_g_l" => self.hb_g_l,
            "wbc_10e9_l" => self.wbc_10e9_l,
            "platelets_10e9_l" => self.platelets_10e9_l,
            "glucose_mmol_l" => self.glucose_mmol_l,
            "alt_u_l" => self.alt_u_l,
            "creatinine_umol_l" => self.creatinine_umol_l,
            "tsh_miu_l" => self.tsh_miu_l,
            "fibroid_mm" => self.fibroid_mm,
            "adnexal_cyst_mm" => self.adnexal_cyst_mm,
            "miscarriages" => self.miscarriages,
            "preterm_births" => self.preterm_births,
            "stillbirths" => self.stillbirths,
            "caesareans" => self.caesareans,
            _ => None,
        }
    }

    pub fn test(&self, name: &str) -> Option<TestResult> {
        match name {
            "gonorrhoea" => self.gonorrhoea,
            "chlamydia" => self.chlamydia,
            "hbsag" => self.hbsag,
            "hbsab" => self.hbsab,
            "hbeag" => self.hbeag,
            "hbeab" => self.hbeab,
            "hbcab" => self.hbcab,
            "syphilis" => self.syphilis,
            "rubella_igg" => self.rubella_igg,
            "cmv_igm" => self.cmv_igm,
            "cmv_igg" => self.cmv_igg,
            "toxo_igm" => self.toxo_igm,
            "toxo_igg" => self.toxo_igg,
            "hiv" => self.hiv,
            _ => None,
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        match name {
            "genetic_disease" => self.genetic_disease,
            "consanguineous" => self.consanguineous,
            "birth_defect_child" => self.birth_defect_child,
            "smoking_or_alcohol" => self.smoking || self.alcohol,
            "toxic_exposure" => !self.toxic_exposures.is_empty(),
            _ => false,
        }
    }

    /// Whether a woman-only field is filled.
    fn filled(&self, field: &str) -> bool {
        self.number(field).is_some()
            || self.test(field).is_some()
            || match field {
                "vaginal_discharge" => self.vaginal_discharge.is_some(),
                "ultrasound" => self.ultrasound.is_some(),
                _ => false,
            }
    }

    /// Check each value against the rule set: plausible ranges, known disease and exposure
    /// codes, counts as whole numbers, no woman's item in a man's findings, a note without
    /// fetal sex (checked by the caller). `prefix` names the fields (`wife.hb_g_l`).
    pub fn check(&self, rules: &RuleSet, partner: Partner, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let field = |f: &str| format!("{prefix}.{f}");
        for (fact, [low, high]) in &rules.plausible {
            if let Some(v) = self.number(fact) {
                if !v.is_finite() || v < *low || v > *high {
                    errors.push(FieldError::new(
                        &field(fact),
                        "implausible",
                        format!("{} 的数值 {v} 不在合理范围 {low}–{high} 内，请核对", rules.label(fact)),
                    ));
                } else if ["miscarriages", "preterm_births", "stillbirths", "caesareans"].contains(&fact.as_str())
                    && v.fract() != 0.0
                {
                    errors.push(FieldError::new(&field(fact), "whole", "次数应为整数"));
                }
            }
        }
        if let (Some(s), Some(d)) = (self.systolic_mmhg, self.diastolic_mmhg)
            && d >= s
        {
            errors.push(FieldError::new(
                &field("diastolic_mmhg"),
                "implausible",
                "舒张压应低于收缩压",
            ));
        }
        for d in &self.diseases {
            if !rules.diseases.iter().any(|x| &x.code == d) {
                errors.push(FieldError::new(
                    &field("diseases"),
                    "unknown",
                    format!("未知的疾病代码 {d}"),
                ));
            }
        }
        for e in &self.toxic_exposures {
            if !EXPOSURES.iter().any(|(c, _)| c == e) {
                errors.push(FieldError::new(
                    &field("toxic_exposures"),
                    "unknown",
                    format!("未知的毒害物暴露代码 {e}"),
                ));
            }
        }
        if partner == Partner::Husband {
            for f in WOMAN_ONLY {
                if self.filled(f) {
                    errors.push(FieldError::new(
                        &field(f),
                        "woman_only",
                        "该项为女方检查项目，男方不填写",
                    ));
                }
            }
            if self.birth_defect_child {
                // The child's defect is recorded once, on the wife's history.
                errors.push(FieldError::new(
                    &field("birth_defect_child"),
                    "woman_only",
                    "出生缺陷儿生育史记录在女方病史中",
                ));
            }
        }
        if let Some(n) = &self.note
            && n.chars().count() > 2000
        {
            errors.push(FieldError::new(&field("note"), "too_long", "备注不超过 2000 字"));
        }
        if let Some(m) = &self.medications
            && m.chars().count() > 500
        {
            errors.push(FieldError::new(
                &field("medications"),
                "too_long",
                "用药史不超过 500 字",
            ));
        }
        errors
    }

    /// Whether anything at all was recorded.
    pub fn is_empty(&self) -> bool {
        *self == Findings::default()
    }
}

// ------------------------------------------------------------------ the rule set

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub number: u8,
    pub name: String,
    #[serde(default)]
    pub man: bool,
}

/// The eight risk categories of the 2013 study (RULES.md §3.3 [V]).
pub const CATEGORIES: [(&str, &str); 8] = [
    ("genetic", "遗传"),
    ("reproductive", "生殖"),
    ("chronic", "慢病"),
    ("infection", "感染"),
    ("nutrition", "营养"),
    ("behaviour", "行为"),
    ("environment", "环境"),
    ("psychosocial", "社会心理"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applies {
    Wife,
    Husband,
    Either,
}

/// One risk factor rule: present when its condition holds for a partner it applies to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    pub code: String,
    pub name: String,
    pub category: String,
    pub partner: Applies,
    pub fact: Option<String>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub at_least: Option<f64>,
    #[serde(default)]
    pub positive: Vec<String>,
    #[serde(default)]
    pub negative: Vec<String>,
    #[serde(default)]
    pub all_positive: Vec<String>,
    pub flag: Option<String>,
    pub disease: Option<String>,
    /// RULES.md certainty: V, R, L or ?.
    pub tag: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Disease {
    pub code: String,
    pub name: String,
    /// Five-colour catalogue codes a booking clinician chooses among (never ticked for her).
    #[serde(default)]
    pub grading_codes: Vec<String>,
}

/// Follow-up timing (§3.4: configuration in the national system).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FollowupRules {
    pub early_pregnancy_due_days: i64,
    pub recontact_days: i64,
    pub stop_after_days: i64,
    pub outcome_after_edd_days: i64,
    pub prefill_valid_days: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub id: String,
    pub name: String,
    pub source: String,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
    pub plausible: BTreeMap<String, [f64; 2]>,
    #[serde(rename = "risk")]
    pub risks: Vec<RiskRule>,
    #[serde(rename = "disease")]
    pub diseases: Vec<Disease>,
    pub followup: FollowupRules,
}

const TESTS: [&str; 14] = [
    "gonorrhoea",
    "chlamydia",
    "hbsag",
    "hbsab",
    "hbeag",
    "hbeab",
    "hbcab",
    "syphilis",
    "rubella_igg",
    "cmv_igm",
    "cmv_igg",
    "toxo_igm",
    "toxo_igg",
    "hiv",
];
const FLAGS: [&str; 5] = [
    "genetic_disease",
    "consanguineous",
    "birth_defect_child",
    "smoking_or_alcohol",
    "toxic_exposure",
];

/// The labels of numeric facts, for messages and pages.
const LABELS: [(&str, &str); 20] = [
    ("age_years", "年龄"),
    ("height_cm", "身高"),
    ("weight_kg", "体重"),
    ("systolic_mmhg", "收缩压"),
    ("diastolic_mmhg", "舒张压"),
    ("hb_g_l", "血红蛋白"),
    ("wbc_10e9_l", "白细胞"),
    ("platelets_10e9_l", "血小板"),
    ("glucose_mmol_l", "空腹血糖"),
    ("alt_u_l", "谷丙转氨酶"),
    ("creatinine_umol_l", "肌酐"),
    ("tsh_miu_l", "促甲状腺激素"),
    ("fibroid_mm", "子宫肌瘤最大径"),
    ("adnexal_cyst_mm", "附件囊肿最大径"),
    ("miscarriages", "自然流产次数"),
    ("preterm_births", "早产次数"),
    ("stillbirths", "死胎死产次数"),
    ("caesareans", "剖宫产次数"),
    ("bmi", "BMI"),
    ("hiv", "HIV"),
];

impl RuleSet {
    pub fn parse(text: &str) -> Result<RuleSet, String> {
        let r: RuleSet = toml::from_str(text).map_err(|e| format!("pre-pregnancy rules: {e}"))?;
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), String> {
        if self.items.len() != 19 || (1..=19).any(|n| !self.items.iter().any(|i| i.number == n)) {
            return Err("pre-pregnancy rules: the 19 items (numbers 1–19) must each be listed once".into());
        }
        for fact in self.plausible.keys() {
            if fact == "age_years" || !LABELS.iter().any(|(f, _)| f == fact) {
                return Err(format!("pre-pregnancy rules: plausible range for unknown fact {fact}"));
            }
        }
        let mut codes = Vec::new();
        for r in &self.risks {
            if codes.contains(&&r.code) {
                return Err(format!("pre-pregnancy rules: risk code {} twice", r.code));
            }
            codes.push(&r.code);
            if !CATEGORIES.iter().any(|(c, _)| *c == r.category) {
                return Err(format!("risk {}: unknown category {}", r.code, r.category));
            }
            if !["V", "R", "L", "?"].contains(&r.tag.as_str()) {
                return Err(format!("risk {}: tag must be V, R, L or ?", r.code));
            }
            let conditions = usize::from(r.fact.is_some())
                + usize::from(!r.positive.is_empty())
                + usize::from(!r.negative.is_empty())
                + usize::from(!r.all_positive.is_empty())
                + usize::from(r.flag.is_some())
                + usize::from(r.disease.is_some());
            if conditions != 1 {
                return Err(format!("risk {}: exactly one kind of condition", r.code));
            }
            if let Some(f) = &r.fact {
                if !LABELS.iter().any(|(l, _)| l == f) {
                    return Err(format!("risk {}: unknown fact {f}", r.code));
                }
                if r.above.is_none() && r.below.is_none() && r.at_least.is_none() {
                    return Err(format!("risk {}: a fact needs above, below or at_least", r.code));
                }
            }
            for t in r.positive.iter().chain(&r.negative).chain(&r.all_positive) {
                if !TESTS.contains(&t.as_str()) {
                    return Err(format!("risk {}: unknown test {t}", r.code));
                }
            }
            if let Some(f) = &r.flag
                && !FLAGS.contains(&f.as_str())
            {
                return Err(format!("risk {}: unknown flag {f}", r.code));
            }
            if let Some(d) = &r.disease
                && !self.diseases.iter().any(|x| &x.code == d)
            {
                return Err(format!("risk {}: unknown disease {d}", r.code));
            }
        }
        let f = &self.followup;
        if [
            f.early_pregnancy_due_days,
            f.recontact_days,
            f.stop_after_days,
            f.outcome_after_edd_days,
            f.prefill_valid_days,
        ]
        .iter()
        .any(|d| *d <= 0)
        {
            return Err("pre-pregnancy rules: follow-up days must be > 0".into());
        }
        Ok(())
    }

    pub fn label(&self, fact: &str) -> &'static str {
        LABELS.iter().find(|(f, _)| *f == fact).map_or("该项", |(_, l)| l)
    }

    pub fn disease_name(&self, code: &str) -> Option<&str> {
        self.diseases.iter().find(|d| d.code == code).map(|d| d.name.as_str())
    }
}

const DEFAULT_RULES: &str = include_str!("../../rules/couple/prepregnancy-2010.toml");

static RULES: OnceLock<RuleSet> = OnceLock::new();

/// Choose the rule set at start-up: the built-in regional default, or a region's file.
pub fn configure(path: Option<&str>) -> Result<(), String> {
    let rules = match path.filter(|p| !p.is_empty()) {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read pre-pregnancy rules {p}: {e}"))?;
            RuleSet::parse(&text)?
        }
        None => RuleSet::parse(DEFAULT_RULES)?,
    };
    match RULES.get() {
        Some(existing) if existing.id != rules.id => Err("pre-pregnancy rules already configured differently".into()),
        Some(_) => Ok(()),
        None => {
            let _ = RULES.set(rules);
            Ok(())
        }
    }
}

/// The rule set in force.
pub fn rules() -> &'static RuleSet {
    RULES.get_or_init(|| RuleSet::parse(DEFAULT_RULES).unwrap_or_else(|e| panic!("built-in rules: {e}")))
}

// ------------------------------------------------------------------ the risk evaluation

/// 一般人群 (no risk factor) or 高风险人群 (one or more), §3.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskClass {
    General,
    High,
}

impl RiskClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskClass::General => "general",
            RiskClass::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<RiskClass> {
        match s {
            "general" => Some(RiskClass::General),
            "high" => Some(RiskClass::High),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            RiskClass::General => "一般人群",
            RiskClass::High => "高风险人群",
        }
    }
}

/// One risk factor found, with its category and the partner it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundFactor {
    pub code: String,
    pub name: String,
    pub category: String,
    pub category_label: String,
    pub partner: Partner,
    /// What was found (`血红蛋白 85 g/L`), for the 告知书.
    pub finding: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub class: RiskClass,
    pub factors: Vec<FoundFactor>,
    pub advice: String,
    pub rule_set: String,
}

fn test_label(t: &str) -> &'static str {
    match t {
        "gonorrhoea" => "淋球菌",
        "chlamydia" => "沙眼衣原体",
        "hbsag" => "乙肝表面抗原",
        "hbsab" => "乙肝表面抗体",
        "hbeag" => "乙肝 e 抗原",
        "hbeab" => "乙肝 e 抗体",
        "hbcab" => "乙肝核心抗体",
        "syphilis" => "梅毒",
        "rubella_igg" => "风疹 IgG",
        "cmv_igm" => "巨细胞病毒 IgM",
        "cmv_igg" => "巨细胞病毒 IgG",
        "toxo_igm" => "弓形虫 IgM",
        "toxo_igg" => "弓形虫 IgG",
        "hiv" => "HIV",
        _ => "检测",
    }
}

fn matches(rule: &RiskRule, f: &Findings, age: Option<f64>, rules: &RuleSet) -> Option<String> {
    if let Some(fact) = &rule.fact {
        let v = if fact == "age_years" { age } else { f.number(fact) }?;
        let hit = rule.above.is_some_and(|a| v > a)
            || rule.below.is_some_and(|b| v < b)
            || rule.at_least.is_some_and(|n| v >= n);
        return hit.then(|| format!("{} {v}", rules.label(fact)));
    }
    if !rule.positive.is_empty() {
        let hits: Vec<&str> = rule
            .positive
            .iter()
            .filter(|t| f.test(t) == Some(TestResult::Positive))
            .map(|t| test_label(t))
            .collect();
        return (!hits.is_empty()).then(|| format!("{} 阳性", hits.join("、")));
    }
    if !rule.negative.is_empty() {
        let hits: Vec<&str> = rule
            .negative
            .iter()
            .filter(|t| f.test(t) == Some(TestResult::Negative))
            .map(|t| test_label(t))
            .collect();
        return (!hits.is_empty()).then(|| format!("{} 阴性", hits.join("、")));
    }
    if !rule.all_positive.is_empty() {
        let all = rule
            .all_positive
            .iter()
            .all(|t| f.test(t) == Some(TestResult::Positive));
        return all.then(|| {
            let names: Vec<&str> = rule.all_positive.iter().map(|t| test_label(t)).collect();
            format!("{} 均阳性", names.join("、"))
        });
    }
    if let Some(flag) = &rule.flag {
        return f.flag(flag).then(|| rule.name.clone());
    }
    if let Some(d) = &rule.disease {
        return f
            .diseases
            .contains(d)
            .then(|| format!("疾病史：{}", rules.disease_name(d).unwrap_or(d)));
    }
    None
}

/// Evaluate a couple's findings (§3.3): every factor present for the partner it applies to;
/// 高风险人群 when there is one or more. A more specific factor does not hide a broader one
/// (大三阳 and HBsAg both show: each carries its own counselling).
pub fn evaluate(
    rules: &RuleSet,
    wife: &Findings,
    wife_age: Option<f64>,
    husband: Option<&Findings>,
    husband_age: Option<f64>,
) -> Evaluation {
    let mut factors = Vec::new();
    let partners = [
        (Partner::Wife, Some(wife), wife_age),
        (Partner::Husband, husband, husband_age),
    ];
    for rule in &rules.risks {
        for (p, f, age) in partners {
            let Some(f) = f else { continue };
            let applies = match rule.partner {
                Applies::Either => true,
                Applies::Wife => p == Partner::Wife,
                Applies::Husband => p == Partner::Husband,
            };
            if !applies {
                continue;
            }
            if let Some(finding) = matches(rule, f, age, rules) {
                factors.push(FoundFactor {
                    code: rule.code.clone(),
                    name: rule.name.clone(),
                    category: rule.category.clone(),
                    category_label: CATEGORIES
                        .iter()
                        .find(|(c, _)| *c == rule.category)
                        .map_or("", |(_, l)| l)
                        .to_string(),
                    partner: p,
                    finding: format!("{}：{finding}", p.label_zh()),
                    tag: rule.tag.clone(),
                });
            }
        }
    }
    let class = if factors.is_empty() {
        RiskClass::General
    } else {
        RiskClass::High
    };
    let advice = match class {
        // 增补叶酸 is one of the free services for couples (RULES.md §10 [V]).
        RiskClass::General => "未发现风险因素。建议计划怀孕，孕前 3 个月起每日增补叶酸 0.4 mg，保持健康生活方式，怀孕后及早到乡镇卫生院或社区卫生服务中心建册。".to_string(),
        RiskClass::High => {
            let cats: Vec<&str> = CATEGORIES
                .iter()
                .filter(|(c, _)| factors.iter().any(|f| f.category == *c))
                .map(|(_, l)| *l)
                .collect();
            format!(
                "发现{}方面的风险因素（见下）。建议针对风险因素进一步检查、治疗或咨询，必要时转诊；经医生评估后再计划怀孕，孕前 3 个月起每日增补叶酸。",
                cats.join("、")
            )
        }
    };
    Evaluation {
        class,
        factors,
        advice,
        rule_set: rules.id.clone(),
    }
}

// ------------------------------------------------------------------ follow-up

/// 早孕随访 or 妊娠结局随访 (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupKind {
    EarlyPregnancy,
    Outcome,
}

impl FollowupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowupKind::EarlyPregnancy => "early_pregnancy",
            FollowupKind::Outcome => "outcome",
        }
    }

    pub fn parse(s: &str) -> Option<FollowupKind> {
        match s {
            "early_pregnancy" => Some(FollowupKind::EarlyPregnancy),
            "outcome" => Some(FollowupKind::Outcome),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FollowupKind::EarlyPregnancy => "早孕随访",
            FollowupKind::Outcome => "妊娠结局随访",
        }
    }
}

/// The three-valued outcomes of the national system (§3.4 [V code]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowupResult {
    Pregnant,
    NotPregnant,
    Lost,
    Delivered,
    NotDelivered,
}

impl FollowupResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowupResult::Pregnant => "pregnant",
            FollowupResult::NotPregnant => "not_pregnant",
            FollowupResult::Lost => "lost",
            FollowupResult::Delivered => "delivered",
            FollowupResult::NotDelivered => "not_delivered",
        }
    }

    pub fn parse(s: &str) -> Option<FollowupResult> {
        [
            FollowupResult::Pregnant,
            FollowupResult::NotPregnant,
            FollowupResult::Lost,
            FollowupResult::Delivered,
            FollowupResult::NotDelivered,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FollowupResult::Pregnant => "已孕",
            FollowupResult::NotPregnant => "未孕",
            FollowupResult::Lost => "失访",
            FollowupResult::Delivered => "已分娩",
            FollowupResult::NotDelivered => "未分娩",
        }
    }

    /// The results a kind of follow-up may have.
    pub fn fits(self, kind: FollowupKind) -> bool {
        match kind {
            FollowupKind::EarlyPregnancy => matches!(
                self,
                FollowupResult::Pregnant | FollowupResult::NotPregnant | FollowupResult::Lost
            ),
            FollowupKind::Outcome => matches!(
                self,
                FollowupResult::Delivered | FollowupResult::NotDelivered | FollowupResult::Lost
            ),
        }
    }
}

/// The next 早孕随访 after a 未孕 answer: `recontact_days` later, unless that passes
/// `stop_after_days` from the exam (then nothing more is due; a new screening starts again).
pub fn next_early_followup(rules: &FollowupRules, exam_date: NaiveDate, done_on: NaiveDate) -> Option<NaiveDate> {
    let next = done_on + chrono::Duration::days(rules.recontact_days);
    (next <= exam_date + chrono::Duration::days(rules.stop_after_days)).then_some(next)
}

/// The 妊娠结局随访 due date: `outcome_after_edd_days` after her due date.
pub fn outcome_due(rules: &FollowupRules, edd: NaiveDate) -> NaiveDate {
    edd + chrono::Duration::days(rules.outcome_after_edd_days)
}

// ------------------------------------------------------------------ stored records

/// A couple is current until divorce or widowhood ends it; an ended couple stays as history and
/// each partner may belong to a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoupleStatus {
    Current,
    Ended,
}

impl CoupleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CoupleStatus::Current => "current",
            CoupleStatus::Ended => "ended",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CoupleStatus::Current => "在婚",
            CoupleStatus::Ended => "婚姻已终止",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Divorce,
    Widowhood,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Divorce => "divorce",
            EndReason::Widowhood => "widowhood",
        }
    }

    pub fn parse(s: &str) -> Option<EndReason> {
        match s {
            "divorce" => Some(EndReason::Divorce),
            "widowhood" => Some(EndReason::Widowhood),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            EndReason::Divorce => "离婚",
            EndReason::Widowhood => "丧偶",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Couple {
    pub id: String,
    pub wife_id: String,
    pub husband_id: String,
    pub marriage: Marriage,
    pub status: CoupleStatus,
    pub ended_on: Option<NaiveDate>,
    pub end_reason: Option<EndReason>,
    /// The wife's area: who may see the couple (the man's findings are read only through it).
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub created_by: String,
    pub version: i32,
}

impl Couple {
    /// Either spouse remarried: the policy's remarriage rules apply (RULES.md §8.2).
    pub fn remarriage(&self) -> bool {
        self.marriage.wife_remarriage || self.marriage.husband_remarriage
    }
}

/// Ending a couple: the day and why.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndInput {
    pub ended_on: Option<String>,
    pub reason: Option<String>,
}

impl EndInput {
    pub fn validate(
        &self,
        today: NaiveDate,
        married: Option<NaiveDate>,
    ) -> Result<(NaiveDate, EndReason), ServiceError> {
        let mut errors = Vec::new();
        let on = match day(&self.ended_on, "ended_on", "终止日期", today, &mut errors) {
            Some(d) if married.is_some_and(|m| d < m) => {
                errors.push(FieldError::new(
                    "ended_on",
                    "before_marriage",
                    "终止日期不能早于结婚日期",
                ));
                None
            }
            d => d,
        };
        let reason = match clean(&self.reason).as_deref().map(EndReason::parse) {
            Some(Some(r)) => Some(r),
            _ => {
                errors.push(FieldError::new("reason", "required", "请选择终止原因（离婚或丧偶）"));
                None
            }
        };
        match (on, reason) {
            (Some(on), Some(r)) if errors.is_empty() => Ok((on, r)),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

/// A day typed as `YYYY-MM-DD`, not in the future and not before 1950; absent: today.
fn day(
    given: &Option<String>,
    field: &str,
    label: &str,
    today: NaiveDate,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDate> {
    let Some(text) = clean(given) else {
        return Some(today);
    };
    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(d) if d > today => {
            errors.push(FieldError::new(field, "future", format!("{label}不能晚于今天")));
            None
        }
        Ok(d) if d.year() < 1950 => {
            errors.push(FieldError::new(field, "implausible", format!("{label}不合理")));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "format", format!("{label}格式应为 YYYY-MM-DD")));
            None
        }
    }
}

// ------------------------------------------------------------------ the marriage check

/// The doctor's medical advice on the 婚前医学检查证明 (母婴保健法 Arts. 9–10; the four outcomes
/// of the national certificate, issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarriageAdvice {
    /// 未发现医学上不宜结婚的情形.
    NoContraindication,
    /// 建议暂缓结婚 (Art. 9: 指定传染病在传染期内、有关精神病在发病期内).
    Postpone,
    /// 建议不宜生育 (Art. 10: 严重遗传性疾病).
    NotAdvisedToBear,
    /// 建议采取医学措施，尊重受检者意愿.
    MedicalMeasures,
}

impl MarriageAdvice {
    pub const ALL: [MarriageAdvice; 4] = [
        MarriageAdvice::NoContraindication,
        MarriageAdvice::Postpone,
        MarriageAdvice::NotAdvisedToBear,
        MarriageAdvice::MedicalMeasures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MarriageAdvice::NoContraindication => "no_contraindication",
            MarriageAdvice::Postpone => "postpone",
            MarriageAdvice::NotAdvisedToBear => "not_advised_to_bear",
            MarriageAdvice::MedicalMeasures => "medical_measures",
        }
    }

    pub fn parse(s: &str) -> Option<MarriageAdvice> {
        MarriageAdvice::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            MarriageAdvice::NoContraindication => "未发现医学上不宜结婚的情形",
            MarriageAdvice::Postpone => "建议暂缓结婚",
            MarriageAdvice::NotAdvisedToBear => "建议不宜生育",
            MarriageAdvice::MedicalMeasures => "建议采取医学措施，尊重受检者意愿",
        }
    }
}

/// What the doctor records at a partner's marriage check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PremaritalInput {
    pub partner: Option<String>,
    pub exam_date: Option<String>,
    #[serde(default)]
    pub findings: Findings,
    pub advice: Option<String>,
    /// The medical reason: required for every advice but 未发现医学上不宜结婚的情形.
    pub advice_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPremarital {
    pub partner: Partner,
    pub exam_date: NaiveDate,
    pub findings: Findings,
    pub advice: MarriageAdvice,
    pub advice_reason: Option<String>,
}

impl PremaritalInput {
    pub fn validate(&self, rules: &RuleSet, today: NaiveDate) -> Result<CheckedPremarital, ServiceError> {
        let mut errors = Vec::new();
        let partner = clean(&self.partner).as_deref().and_then(Partner::parse);
        if partner.is_none() {
            errors.push(FieldError::new("partner", "required", "请选择受检者（女方或男方）"));
        }
        let exam_date = day(&self.exam_date, "exam_date", "检查日期", today, &mut errors);
        if let Some(p) = partner {
            errors.extend(self.findings.check(rules, p, "findings"));
        }
        let advice = clean(&self.advice).as_deref().and_then(MarriageAdvice::parse);
        if advice.is_none() {
            errors.push(FieldError::new("advice", "required", "请选择医学意见"));
        }
        let advice_reason = clean(&self.advice_reason);
        if advice.is_some_and(|a| a != MarriageAdvice::NoContraindication) && advice_reason.is_none() {
            errors.push(FieldError::new(
                "advice_reason",
                "required",
                "医学意见不是“未发现医学上不宜结婚的情形”时，须写明医学理由",
            ));
        }
        if advice_reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            errors.push(FieldError::new("advice_reason", "too_long", "医学理由不超过 500 字"));
        }
        match (partner, exam_date, advice) {
            (Some(partner), Some(exam_date), Some(advice)) if errors.is_empty() => Ok(CheckedPremarital {
                partner,
                exam_date,
                findings: self.findings.clone(),
                advice,
                advice_reason,
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PremaritalExam {
    pub id: String,
    pub couple_id: String,
    pub partner: Partner,
    pub exam_date: NaiveDate,
    pub findings: Findings,
    pub advice: MarriageAdvice,
    pub advice_reason: Option<String>,
    /// 婚前医学检查证明 number.
    pub certificate_no: String,
    pub facility_id: String,
    pub recorded_by: String,
    pub created_at: chrono::NaiveDateTime,
}

// ------------------------------------------------------------------ the screening

/// What the doctor records at the couple's 孕前优生健康检查: the wife's findings and, when he
/// came, the husband's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrepregnancyInput {
    pub exam_date: Option<String>,
    #[serde(default)]
    pub wife: Findings,
    pub husband: Option<Findings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPrepregnancy {
    pub exam_date: NaiveDate,
    pub wife: Findings,
    pub husband: Option<Findings>,
}

impl PrepregnancyInput {
    pub fn validate(&self, rules: &RuleSet, today: NaiveDate) -> Result<CheckedPrepregnancy, ServiceError> {
        let mut errors = Vec::new();
        let exam_date = day(&self.exam_date, "exam_date", "检查日期", today, &mut errors);
        errors.extend(self.wife.check(rules, Partner::Wife, "wife"));
        if self.wife.is_empty() {
            // An empty exam would be classed 一般人群 and advised to plan a pregnancy.
            errors.push(FieldError::new("wife", "required", "请至少填写女方的一项检查结果"));
        }
        if let Some(h) = &self.husband {
            errors.extend(h.check(rules, Partner::Husband, "husband"));
        }
        match exam_date {
            Some(exam_date) if errors.is_empty() => Ok(CheckedPrepregnancy {
                exam_date,
                wife: self.wife.clone(),
                husband: self.husband.clone().filter(|h| !h.is_empty()),
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PrepregnancyExam {
    pub id: String,
    pub couple_id: String,
    pub exam_date: NaiveDate,
    pub wife: Findings,
    pub husband: Option<Findings>,
    pub risk_class: RiskClass,
    pub factors: Vec<FoundFactor>,
    pub advice: String,
    pub rule_set: String,
    pub facility_id: String,
    pub recorded_by: String,
    pub created_at: chrono::NaiveDateTime,
}

// ------------------------------------------------------------------ follow-ups

#[derive(Debug, Clone, Serialize)]
pub struct Followup {
    pub id: String,
    pub couple_id: String,
    pub exam_id: String,
    pub kind: FollowupKind,
    pub due: NaiveDate,
    pub done_on: Option<NaiveDate>,
    pub result: Option<FollowupResult>,
    pub note: Option<String>,
    pub pregnancy_id: Option<String>,
    pub recorded_by: Option<String>,
    pub jurisdiction: String,
    pub township_code: Option<String>,
}

/// A follow-up answered by phone or visit.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupInput {
    pub result: Option<String>,
    pub done_on: Option<String>,
    /// For 已孕 when she has not booked with us: her expected date of delivery, if known.
    pub edd: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckedFollowup {
    pub result: FollowupResult,
    pub done_on: NaiveDate,
    pub edd: Option<NaiveDate>,
    pub note: Option<String>,
}

impl FollowupInput {
    pub fn validate(&self, kind: FollowupKind, today: NaiveDate) -> Result<CheckedFollowup, ServiceError> {
        let mut errors = Vec::new();
        let result = match clean(&self.result).as_deref().map(FollowupResult::parse) {
            Some(Some(r)) if r.fits(kind) => Some(r),
            Some(Some(r)) => {
                errors.push(FieldError::new(
                    "result",
                    "kind",
                    format!("“{}”不是{}的结果", r.label_zh(), kind.label_zh()),
                ));
                None
            }
            _ => {
                errors.push(FieldError::new("result", "required", "请选择随访结果"));
                None
            }
        };
        let done_on = day(&self.done_on, "done_on", "随访日期", today, &mut errors);
        let edd = match clean(&self.edd) {
            None => None,
            Some(t) => match NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
                Ok(e) if e < today - chrono::Duration::days(30) || e > today + chrono::Duration::days(300) => {
                    errors.push(FieldError::new("edd", "implausible", "预产期不合理，请核对"));
                    None
                }
                Ok(e) => Some(e),
                Err(_) => {
                    errors.push(FieldError::new("edd", "format", "预产期格式应为 YYYY-MM-DD"));
                    None
                }
            },
        };
        let note = clean(&self.note);
        if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
            errors.push(FieldError::new("note", "too_long", "备注不超过 1000 字"));
        }
        match (result, done_on) {
            (Some(result), Some(done_on)) if errors.is_empty() => Ok(CheckedFollowup {
                result,
                done_on,
                edd,
                note,
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

/// The 妊娠结局随访 due date when she reported 已孕 without a booked pregnancy or a known EDD: the
/// latest EDD if she was at least 6 weeks pregnant when she told us (pregnancy is rarely confirmed
/// earlier), so the follow-up is never due later than her real outcome allows — the safer
/// reading of §3.4's [?] timing.
pub fn assumed_edd(reported_on: NaiveDate) -> NaiveDate {
    reported_on + chrono::Duration::days(280 - 42)
}

// ------------------------------------------------------------------ birth registration

/// What became of a registration: 生育登记 is done at once; 再生育 waits on its approval;
/// a birth outside the policy is recorded as such — none of them ever gates care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Registered,
    AwaitingApproval,
    Approved,
    Refused,
    OutsidePolicy,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::AwaitingApproval => "awaiting_approval",
            RegistrationStatus::Approved => "approved",
            RegistrationStatus::Refused => "refused",
            RegistrationStatus::OutsidePolicy => "outside_policy",
        }
    }

    pub fn parse(s: &str) -> Option<RegistrationStatus> {
        [
            RegistrationStatus::Registered,
            RegistrationStatus::AwaitingApproval,
            RegistrationStatus::Approved,
            RegistrationStatus::Refused,
            RegistrationStatus::OutsidePolicy,
        ]
        .into_iter()
        .find(|s2| s2.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            RegistrationStatus::Registered => "已登记",
            RegistrationStatus::AwaitingApproval => "再生育审批中",
            RegistrationStatus::Approved => "再生育已批准",
            RegistrationStatus::Refused => "再生育未批准",
            RegistrationStatus::OutsidePolicy => "不符合生育政策（已记录，不影响保健服务）",
        }
    }

    pub fn of(procedure: crate::policy::model::Procedure) -> RegistrationStatus {
        use crate::policy::model::Procedure;
        match procedure {
            Procedure::Registration => RegistrationStatus::Registered,
            Procedure::Approval => RegistrationStatus::AwaitingApproval,
            Procedure::NotAllowed => RegistrationStatus::OutsidePolicy,
        }
    }
}

/// The desk's registration request: the day (default today) and the couple's child roster.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    pub date: Option<String>,
    #[serde(default)]
    pub children: Vec<crate::policy::model::RosterChild>,
    /// Override of the marriage facts' remarriage (either spouse remarried).
    pub remarriage: Option<bool>,
}

impl RegistrationInput {
    pub fn validate(&self, today: NaiveDate) -> Result<NaiveDate, ServiceError> {
        let mut errors = Vec::new();
        let on = day(&self.date, "date", "登记日期", today, &mut errors);
        for (i, c) in self.children.iter().enumerate() {
            if c.born > today {
                errors.push(FieldError::new(
                    &format!("children[{i}].born"),
                    "future",
                    "子女出生日期不能晚于今天",
                ));
            }
            if c.joint && c.before_remarriage_of.is_some() {
                errors.push(FieldError::new(
                    &format!("children[{i}].joint"),
                    "contradiction",
                    "同一子女不能既是夫妻共同生育又是再婚前一方所生",
                ));
            }
        }
        if self.children.len() > 20 {
            errors.push(FieldError::new("children", "too_many", "子女人数不合理"));
        }
        match on {
            Some(on) if errors.is_empty() => Ok(on),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BirthRegistration {
    pub id: String,
    pub couple_id: String,
    /// 生育服务登记 number.
    pub registration_no: String,
    /// 母子健康手册 number, issued in the same step (多证合一, RULES.md §6.1).
    pub handbook_no: String,
    pub registered_on: NaiveDate,
    pub birth_order: i32,
    pub procedure: crate::policy::model::Procedure,
    pub status: RegistrationStatus,
    pub rule: String,
    pub source: String,
    pub province: String,
    pub decision_due: Option<NaiveDate>,
    pub decided_on: Option<NaiveDate>,
    pub children: Vec<crate::policy::model::RosterChild>,
    /// How the order was counted and, across provinces, why this rule (for the desk and the print).
    pub explanation: Vec<String>,
    pub pregnancy_id: Option<String>,
    pub facility_id: String,
    pub recorded_by: String,
    pub created_at: chrono::NaiveDateTime,
}

/// The explanation lines of a decision: each child counted or not and why, the provinces compared.
pub fn explain(
    decision: &crate::policy::model::Decision,
    children: &[crate::policy::model::RosterChild],
) -> Vec<String> {
    let mut lines = Vec::new();
    for i in &decision.counted {
        if let Some(c) = children.get(*i) {
            lines.push(format!("第 {} 个子女（{} 出生）计入孩次", i + 1, c.born));
        }
    }
    for (i, why) in &decision.excluded {
        if let Some(c) = children.get(*i) {
            lines.push(format!("第 {} 个子女（{} 出生）不计入孩次：{why}", i + 1, c.born));
        }
    }
    lines.extend(decision.considered.iter().cloned());
    for s in &decision.steps {
        lines.push(format!(
            "审批环节：{}，{} 个{}日内",
            s.name,
            s.days,
            if s.working { "工作" } else { "自然" }
        ));
    }
    lines
}

/// A registry number: a two-letter kind, the 6-digit area, the year and a 5-digit serial —
/// `SY420704202600012` (生育服务登记), `MZ…` (母子健康手册), `HJ…` (婚前医学检查证明).
pub fn registry_number(kind: &str, area: &str, year: i32, serial: i64) -> String {
    let area: String = area.chars().take(6).collect();
    format!("{kind}{area:0<6}{year:04}{serial:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_built_in_rule_set_parses_and_lists_the_19_items() {
        let r = rules();
        assert_eq!(r.items.len(), 19);
        assert!(r.items.iter().find(|i| i.number == 10).unwrap().man);
        assert!(!r.items.iter().find(|i| i.number == 14).unwrap().man);
        // Every [L] threshold is data: the file carries each factor's certainty.
        assert!(r.risks.iter().filter(|x| x.tag == "L").count() >= 20);
    }

    #[test]
    fn a_couple_without_a_factor_is_general_and_each_factor_names_its_category() {
        let r = rules();
        let wife = Findings {
            height_cm: Some(160.0),
            hb_g_l: Some(125.0),
            rubella_igg: Some(TestResult::Positive),
            syphilis: Some(TestResult::Negative),
            ..Findings::default()
        };
        let e = evaluate(r, &wife, Some(28.0), Some(&Findings::default()), Some(30.0));
        assert_eq!(e.class, RiskClass::General, "{:?}", e.factors);
        // §3.3 [L]: Hb <90, woman over 40, the husband's syphilis.
        let wife = Findings {
            hb_g_l: Some(85.0),
            ..wife
        };
        let husband = Findings {
            syphilis: Some(TestResult::Positive),
            ..Findings::default()
        };
        let e = evaluate(r, &wife, Some(41.0), Some(&husband), Some(42.0));
        assert_eq!(e.class, RiskClass::High);
        let codes: Vec<(&str, Partner, &str)> = e
            .factors
            .iter()
            .map(|f| (f.code.as_str(), f.partner, f.category.as_str()))
            .collect();
        assert!(
            codes.contains(&("severe_anaemia", Partner::Wife, "nutrition")),
            "{codes:?}"
        );
        assert!(codes.contains(&("age_over_40", Partner::Wife, "reproductive")));
        assert!(codes.contains(&("sti_positive", Partner::Husband, "infection")));
        // The age rule is the woman's: a man over 40 is not a factor.
        assert!(!codes.contains(&("age_over_40", Partner::Husband, "reproductive")));
        assert!(e.advice.contains("营养") && e.advice.contains("感染"));
    }

    #[test]
    fn boundaries_are_strict_as_the_local_definitions_say() {
        let r = rules();
        let at = |f: Findings| evaluate(r, &f, Some(40.0), None, None).factors;
        // ">40 y", "<145 cm", "Hb <90", "TSH >8.6 or <0.002": the boundary value itself is not a factor.
        assert!(
            at(Findings {
                height_cm: Some(145.0),
                hb_g_l: Some(90.0),
                tsh_miu_l: Some(8.6),
                ..Findings::default()
            })
            .is_empty()
        );
        let found = at(Findings {
            tsh_miu_l: Some(0.001),
            ..Findings::default()
        });
        assert_eq!(found[0].code, "tsh_abnormal");
        let found = at(Findings {
            miscarriages: Some(2.0),
            caesareans: Some(2.0),
            ..Findings::default()
        });
        let codes: Vec<&str> = found.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["recurrent_miscarriage", "two_caesareans"]);
    }

    #[test]
    fn hbv_big_three_and_a_carrier_both_show() {
        let r = rules();
        let wife = Findings {
            hbsag: Some(TestResult::Positive),
            hbeag: Some(TestResult::Positive),
            hbcab: Some(TestResult::Positive),
            ..Findings::default()
        };
        let codes: Vec<String> = evaluate(r, &wife, None, None, None)
            .factors
            .into_iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, ["hbv_hbeag_positive", "hbsag_positive"]);
    }

    #[test]
    fn implausible_values_and_a_womans_item_on_a_man_are_refused() {
        let r = rules();
        let f = Findings {
            hb_g_l: Some(1250.0),
            systolic_mmhg: Some(80.0),
            diastolic_mmhg: Some(90.0),
            miscarriages: Some(1.5),
            diseases: vec!["flu".into()],
            ..Findings::default()
        };
        let fields: Vec<String> = f.check(r, Partner::Wife, "wife").into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "wife.hb_g_l",
                "wife.miscarriages",
                "wife.diastolic_mmhg",
                "wife.diseases"
            ]
        );
        let man = Findings {
            rubella_igg: Some(TestResult::Negative),
            ..Findings::default()
        };
        let errs = man.check(r, Partner::Husband, "husband");
        assert_eq!(errs[0].field, "husband.rubella_igg");
        assert_eq!(errs[0].code, "woman_only");
        assert!(Findings::default().check(r, Partner::Husband, "husband").is_empty());
    }

    #[test]
    fn a_region_file_must_hold_19_items_and_known_facts() {
        let broken = DEFAULT_RULES.replace("number = 19", "number = 20");
        assert!(RuleSet::parse(&broken).unwrap_err().contains("19 items"));
        let broken = DEFAULT_RULES.replace("fact = \"hb_g_l\"", "fact = \"haemoglobin\"");
        assert!(RuleSet::parse(&broken).unwrap_err().contains("unknown fact"));
        let broken = DEFAULT_RULES.replace("category = \"nutrition\"", "category = \"diet\"");
        assert!(RuleSet::parse(&broken).unwrap_err().contains("unknown category"));
        // A region may move a threshold: the data decides.
        let stricter = DEFAULT_RULES.replace("below = 90.0", "below = 100.0");
        let r = RuleSet::parse(&stricter).unwrap();
        let f = Findings {
            hb_g_l: Some(95.0),
            ..Findings::default()
        };
        assert_eq!(evaluate(&r, &f, None, None, None).class, RiskClass::High);
        assert_eq!(evaluate(rules(), &f, None, None, None).class, RiskClass::General);
    }

    #[test]
    fn follow_up_dates_come_from_the_rules() {
        let f = &rules().followup;
        assert_eq!(
            next_early_followup(f, d("2026-01-10"), d("2026-04-10")),
            Some(d("2026-07-09"))
        );
        // A year after the exam nothing more is due.
        assert_eq!(next_early_followup(f, d("2026-01-10"), d("2026-12-01")), None);
        assert_eq!(outcome_due(f, d("2026-09-01")), d("2026-10-13"));
        assert!(FollowupResult::Pregnant.fits(FollowupKind::EarlyPregnancy));
        assert!(!FollowupResult::Delivered.fits(FollowupKind::EarlyPregnancy));
        assert!(FollowupResult::Lost.fits(FollowupKind::Outcome));
    }

    #[test]
    fn marriage_facts_default_provinces_from_the_id_numbers() {
        let m = MarriageInput {
            marriage_date: Some("2020-05-20".into()),
            ..MarriageInput::default()
        };
        let ok = m
            .validate(d("2026-12-07"), Some("370102199001011234"), Some("420102198801011234"))
            .unwrap();
        assert_eq!((ok.wife_province.as_str(), ok.husband_province.as_str()), ("37", "42"));
        let err = m
            .validate(d("2026-12-07"), None, Some("990102198801011234"))
            .unwrap_err();
        let ServiceError::Invalid(fields) = err else { panic!() };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["wife_province", "husband_province"]);
        let future = MarriageInput {
            marriage_date: Some("2027-01-01".into()),
            wife_province: Some("33".into()),
            husband_province: Some("33".into()),
            ..MarriageInput::default()
        };
        assert!(future.validate(d("2026-12-07"), None, None).is_err());
    }

    fn fields(e: ServiceError) -> Vec<String> {
        match e {
            ServiceError::Invalid(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_marriage_ends_on_a_day_after_it_began_for_a_named_reason() {
        let today = d("2026-12-07");
        let ok = EndInput {
            ended_on: Some("2024-01-01".into()),
            reason: Some("widowhood".into()),
        };
        assert_eq!(
            ok.validate(today, Some(d("2020-01-01"))).unwrap(),
            (d("2024-01-01"), EndReason::Widowhood)
        );
        let before = EndInput {
            ended_on: Some("2019-01-01".into()),
            reason: Some("divorce".into()),
        };
        assert_eq!(
            fields(before.validate(today, Some(d("2020-01-01"))).unwrap_err()),
            ["ended_on"]
        );
        assert_eq!(
            fields(EndInput::default().validate(today, None).unwrap_err()),
            ["reason"]
        );
    }

    #[test]
    fn every_marriage_advice_but_no_contraindication_needs_its_reason() {
        let today = d("2026-12-07");
        let input = |advice: &str, reason: Option<&str>| PremaritalInput {
            partner: Some("husband".into()),
            advice: Some(advice.into()),
            advice_reason: reason.map(str::to_string),
            ..PremaritalInput::default()
        };
        assert!(input("no_contraindication", None).validate(rules(), today).is_ok());
        for a in ["postpone", "not_advised_to_bear", "medical_measures"] {
            assert_eq!(
                fields(input(a, None).validate(rules(), today).unwrap_err()),
                ["advice_reason"],
                "{a}"
            );
            assert!(input(a, Some("传染期内")).validate(rules(), today).is_ok(), "{a}");
        }
        assert_eq!(
            fields(input("maybe", None).validate(rules(), today).unwrap_err()),
            ["advice"]
        );
        // His marriage check holds none of the woman's items.
        let mut his = input("no_contraindication", None);
        his.findings.rubella_igg = Some(TestResult::Negative);
        assert_eq!(
            fields(his.validate(rules(), today).unwrap_err()),
            ["findings.rubella_igg"]
        );
    }

    #[test]
    fn a_follow_up_answer_fits_its_kind_and_a_given_edd_is_plausible() {
        let today = d("2026-12-07");
        let answer = |result: &str, edd: Option<&str>| FollowupInput {
            result: Some(result.into()),
            edd: edd.map(str::to_string),
            ..FollowupInput::default()
        };
        let ok = answer("pregnant", Some("2027-06-01"))
            .validate(FollowupKind::EarlyPregnancy, today)
            .unwrap();
        assert_eq!(
            (ok.result, ok.done_on, ok.edd),
            (FollowupResult::Pregnant, today, Some(d("2027-06-01")))
        );
        assert_eq!(
            fields(
                answer("delivered", None)
                    .validate(FollowupKind::EarlyPregnancy, today)
                    .unwrap_err()
            ),
            ["result"]
        );
        assert_eq!(
            fields(
                answer("pregnant", Some("2030-01-01"))
                    .validate(FollowupKind::EarlyPregnancy, today)
                    .unwrap_err()
            ),
            ["edd"]
        );
        // Without a known EDD the outcome follow-up is never due later than her real outcome allows.
        assert_eq!(assumed_edd(d("2026-01-01")), d("2026-08-27"));
    }

    #[test]
    fn a_registration_roster_is_checked_and_numbers_have_their_shape() {
        use crate::policy::model::{RosterChild, Spouse};
        let today = d("2026-12-07");
        let child = |born: &str| RosterChild {
            born: d(born),
            joint: true,
            before_remarriage_of: None,
            adopted: false,
            deceased: false,
            disabled_certified: false,
        };
        let ok = RegistrationInput {
            children: vec![child("2020-01-01")],
            ..RegistrationInput::default()
        };
        assert_eq!(ok.validate(today).unwrap(), today);
        let mut both = child("2019-01-01");
        both.before_remarriage_of = Some(Spouse::Wife);
        let bad = RegistrationInput {
            children: vec![child("2027-01-01"), both],
            ..RegistrationInput::default()
        };
        assert_eq!(
            fields(bad.validate(today).unwrap_err()),
            ["children[0].born", "children[1].joint"]
        );
        assert_eq!(registry_number("SY", "340524", 2026, 12), "SY340524202600012");
        assert_eq!(registry_number("MZ", "3405", 2026, 1), "MZ340500202600001");
        assert_eq!(
            RegistrationStatus::of(crate::policy::model::Procedure::Approval),
            RegistrationStatus::AwaitingApproval
        );
    }
}
