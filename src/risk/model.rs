//! Five-colour pregnancy risk grading (五色管理). Pure: facts in, assessment out.
//!
//! The grading table (附件2 of 国卫办妇幼发〔2017〕35号) and the band edges that decide items from
//! data are data files under `rules/risk/` (see `national-2017.toml` for sources and the
//! boundary choices). Combination rule (RULES.md §1.3, [V]): the colour is the highest of
//! green < yellow < orange < red over all factors; purple (infectious disease) is an independent
//! flag that can stand beside any colour.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The grade: green < yellow < orange < red (purple is separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskColour {
    Green,
    Yellow,
    Orange,
    Red,
}

impl RiskColour {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskColour::Green => "green",
            RiskColour::Yellow => "yellow",
            RiskColour::Orange => "orange",
            RiskColour::Red => "red",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            RiskColour::Green => "绿色",
            RiskColour::Yellow => "黄色",
            RiskColour::Orange => "橙色",
            RiskColour::Red => "红色",
        }
    }
}

/// The colour of one catalogue item: a grade, or purple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemColour {
    Yellow,
    Orange,
    Red,
    Purple,
}

impl ItemColour {
    pub fn grade(self) -> Option<RiskColour> {
        match self {
            ItemColour::Yellow => Some(RiskColour::Yellow),
            ItemColour::Orange => Some(RiskColour::Orange),
            ItemColour::Red => Some(RiskColour::Red),
            ItemColour::Purple => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            ItemColour::Yellow => "黄",
            ItemColour::Orange => "橙",
            ItemColour::Red => "红",
            ItemColour::Purple => "紫",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    pub code: String,
    pub colour: ItemColour,
    pub text: String,
    /// Certainty of the source: V, R or L (RULES.md).
    pub tag: String,
}

/// A numeric band that decides an item from data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub fact: String,
    pub code: String,
    pub from: Option<f64>,
    pub above: Option<f64>,
    pub upto: Option<f64>,
    pub below: Option<f64>,
    pub reason: String,
}

impl Band {
    pub fn contains(&self, v: f64) -> bool {
        self.from.is_none_or(|b| v >= b)
            && self.above.is_none_or(|b| v > b)
            && self.upto.is_none_or(|b| v <= b)
            && self.below.is_none_or(|b| v < b)
    }
}

/// A yes/no fact that decides an item when true.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    pub fact: String,
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    name: String,
    source: String,
    extends: Option<String>,
    #[serde(default, rename = "item")]
    items: Vec<CatalogueItem>,
    #[serde(default, rename = "band")]
    bands: Vec<Band>,
    #[serde(default, rename = "flag")]
    flags: Vec<FlagRule>,
    /// A laboratory test whose positive result decides an item.
    #[serde(default, rename = "test")]
    tests: Vec<FlagRule>,
}

/// A complete, checked rule set (a variant merged onto the set it extends).
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub id: String,
    pub name: String,
    pub source: String,
    pub items: Vec<CatalogueItem>,
    pub bands: Vec<Band>,
    pub flags: Vec<FlagRule>,
    pub tests: Vec<FlagRule>,
    index: HashMap<String, usize>,
}

impl RuleSet {
    pub fn item(&self, code: &str) -> Option<&CatalogueItem> {
        self.index.get(code).map(|&i| &self.items[i])
    }
}

const NUMERIC_FACTS: [&str; 12] = [
    "age_years",
    "height_cm",
    "weight_kg",
    "bmi",
    "hb_g_l",
    "platelets_10e9_l",
    "systolic_mmhg",
    "diastolic_mmhg",
    "fetuses",
    "previous_caesareans",
    "previous_uterine_surgeries",
    "months_since_last_uterine_surgery",
];
const FLAG_FACTS: [&str; 1] = ["assisted_reproduction"];
const TEST_FACTS: [&str; 3] = ["hiv", "syphilis", "hbsag"];

/// The embedded rule files, by id.
const RULE_FILES: [(&str, &str); 2] = [
    ("national-2017", include_str!("../../rules/risk/national-2017.toml")),
    ("zhejiang-2018", include_str!("../../rules/risk/zhejiang-2018.toml")),
];

pub const DEFAULT_RULE_SET: &str = "national-2017";

static ACTIVE_RULE_SET: OnceLock<String> = OnceLock::new();

/// Choose the rule set this service grades with (MCH_RISK_RULE_SET), once at start-up. Every
/// instance of a deployment is configured alike, so this is configuration, not state.
pub fn configure(id: &str) -> Result<(), String> {
    rule_set(id)?;
    match ACTIVE_RULE_SET.get() {
        Some(existing) if existing != id => Err(format!("rule set already configured as {existing}")),
        Some(_) => Ok(()),
        None => {
            let _ = ACTIVE_RULE_SET.set(id.to_string());
            Ok(())
        }
    }
}

/// The rule set in force (the national table unless configured otherwise).
pub fn active_rule_set() -> &'static str {
    ACTIVE_RULE_SET.get().map(String::as_str).unwrap_or(DEFAULT_RULE_SET)
}

fn parse(id: &str) -> Result<RuleFile, String> {
    let text = RULE_FILES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("unknown rule set {id}"))?;
    toml::from_str(text).map_err(|e| format!("rules/risk/{id}.toml: {e}"))
}

/// Load a rule set by id, merging `extends` chains, and check it: unique codes, known facts,
/// every rule pointing at an item, and a reason template.
pub fn load(id: &str) -> Result<RuleSet, String> {
    let file = parse(id)?;
    if file.id != id {
        return Err(format!("rules/risk/{id}.toml declares id {}", file.id));
    }
    let (mut items, mut bands, mut flags, mut tests) = match &file.extends {
        Some(base) => {
            let b = load(base)?;
            (b.items, b.bands, b.flags, b.tests)
        }
        None => (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
    };
    items.extend(file.items);
    bands.extend(file.bands);
    flags.extend(file.flags);
    tests.extend(file.tests);
    let mut index = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let expected = match item.colour {
            ItemColour::Yellow => 'Y',
            ItemColour::Orange => 'O',
            ItemColour::Red => 'R',
            ItemColour::Purple => 'P',
        };
        if !item.code.starts_with(expected) {
            return Err(format!("{id}: item {} should start with {expected}", item.code));
        }
        if index.insert(item.code.clone(), i).is_some() {
            return Err(format!("{id}: item {} defined twice", item.code));
        }
    }
    for b in &bands {
        if !NUMERIC_FACTS.contains(&b.fact.as_str()) {
            return Err(format!("{id}: band on unknown fact {}", b.fact));
        }
        if b.from.is_none() && b.above.is_none() && b.upto.is_none() && b.below.is_none() {
            return Err(format!("{id}: band {} on {} has no bound", b.code, b.fact));
        }
    }
    for (rules, facts) in [(&flags, &FLAG_FACTS[..]), (&tests, &TEST_FACTS[..])] {
        if let Some(r) = rules.iter().find(|r| !facts.contains(&r.fact.as_str())) {
            return Err(format!("{id}: rule on unknown fact {}", r.fact));
        }
    }
    let codes = bands
        .iter()
        .map(|b| &b.code)
        .chain(flags.iter().map(|f| &f.code))
        .chain(tests.iter().map(|t| &t.code));
    for code in codes {
        if !index.contains_key(code) {
            return Err(format!("{id}: a rule points at unknown item {code}"));
        }
    }
    Ok(RuleSet {
        id: file.id,
        name: file.name,
        source: file.source,
        items,
        bands,
        flags,
        tests,
        index,
    })
}

/// All embedded rule sets, loaded once.
pub fn rule_set(id: &str) -> Result<&'static RuleSet, String> {
    static SETS: OnceLock<Vec<Result<RuleSet, String>>> = OnceLock::new();
    let sets = SETS.get_or_init(|| RULE_FILES.iter().map(|(id, _)| load(id)).collect());
    match RULE_FILES.iter().position(|(i, _)| *i == id) {
        Some(pos) => sets[pos].as_ref().map_err(Clone::clone),
        None => Err(format!(
            "未知的评估标准版本：{id}（可选：{}）",
            rule_set_ids().join("、")
        )),
    }
}

pub fn rule_set_ids() -> Vec<&'static str> {
    RULE_FILES.iter().map(|(i, _)| *i).collect()
}

/// A test's answer is the results feature's (below risk); facts use it as it is.
pub use crate::observations::model::TestResult;

/// What is known about a woman (ARCHITECTURE.md `risk evaluate` contract); all optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub age_years: Option<f64>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub hb_g_l: Option<f64>,
    pub platelets_10e9_l: Option<f64>,
    pub systolic_mmhg: Option<f64>,
    pub diastolic_mmhg: Option<f64>,
    pub fetuses: Option<f64>,
    pub assisted_reproduction: Option<bool>,
    pub previous_caesareans: Option<f64>,
    pub previous_uterine_surgeries: Option<f64>,
    pub months_since_last_uterine_surgery: Option<f64>,
    pub hiv: Option<TestResult>,
    pub syphilis: Option<TestResult>,
    pub hbsag: Option<TestResult>,
    /// Catalogue codes ticked by a clinician.
    #[serde(default)]
    pub factors: Vec<String>,
}

/// Plausible ranges: values outside are typing errors, refused rather than graded.
const PLAUSIBLE: [(&str, f64, f64); 11] = [
    ("age_years", 8.0, 70.0),
    ("height_cm", 100.0, 230.0),
    ("weight_kg", 25.0, 300.0),
    ("hb_g_l", 10.0, 250.0),
    ("platelets_10e9_l", 0.0, 2000.0),
    ("systolic_mmhg", 40.0, 300.0),
    ("diastolic_mmhg", 20.0, 200.0),
    ("fetuses", 1.0, 8.0),
    ("previous_caesareans", 0.0, 20.0),
    ("previous_uterine_surgeries", 0.0, 30.0),
    ("months_since_last_uterine_surgery", 0.0, 600.0),
];

impl Facts {
    pub fn numeric(&self, fact: &str) -> Option<f64> {
        match fact {
            "age_years" => self.age_years,
            "height_cm" => self.height_cm,
            "weight_kg" => self.weight_kg,
            "bmi" => match (self.weight_kg, self.height_cm) {
                (Some(w), Some(h)) if h > 0.0 => Some((w / (h / 100.0).powi(2) * 10.0).round() / 10.0),
                _ => None,
            },
            "hb_g_l" => self.hb_g_l,
            "platelets_10e9_l" => self.platelets_10e9_l,
            "systolic_mmhg" => self.systolic_mmhg,
            "diastolic_mmhg" => self.diastolic_mmhg,
            "fetuses" => self.fetuses,
            "previous_caesareans" => self.previous_caesareans,
            "previous_uterine_surgeries" => self.previous_uterine_surgeries,
            "months_since_last_uterine_surgery" => self.months_since_last_uterine_surgery,
            _ => None,
        }
    }

    fn flag(&self, fact: &str) -> bool {
        fact == "assisted_reproduction" && self.assisted_reproduction == Some(true)
    }

    fn test(&self, fact: &str) -> Option<TestResult> {
        match fact {
            "hiv" => self.hiv,
            "syphilis" => self.syphilis,
            "hbsag" => self.hbsag,
            _ => None,
        }
    }

    /// Refuse implausible numbers (a typing error must not grade a woman).
    pub fn check(&self) -> Result<(), String> {
        for (fact, min, max) in PLAUSIBLE {
            if let Some(v) = self.numeric(fact)
                && !(v.is_finite() && (min..=max).contains(&v))
            {
                return Err(format!("{fact} = {v} 不合理（应在 {min}–{max} 之间）"));
            }
        }
        Ok(())
    }
}

/// One reason behind a grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFactor {
    pub code: String,
    pub colour: ItemColour,
    pub reason: String,
}

/// A graded assessment (nothing stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub colour: RiskColour,
    pub purple: bool,
    pub factors: Vec<RiskFactor>,
    pub rule_set: String,
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The items decided from data by a table's rules, in rule order, as (code, reason).
fn decide(bands: &[Band], flags: &[FlagRule], tests: &[FlagRule], facts: &Facts) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in bands {
        if let Some(v) = facts.numeric(&b.fact)
            && b.contains(v)
        {
            out.push((b.code.clone(), b.reason.replace("{value}", &fmt_value(v))));
        }
    }
    for f in flags {
        if facts.flag(&f.fact) {
            out.push((f.code.clone(), f.reason.clone()));
        }
    }
    for t in tests {
        if facts.test(&t.fact) == Some(TestResult::Positive) {
            out.push((t.code.clone(), t.reason.clone()));
        }
    }
    out
}

/// Add a reason to a list of (code, reason) factors, merging reasons of one code.
fn merge(list: &mut Vec<(String, String)>, code: &str, reason: String) {
    match list.iter_mut().find(|(c, _)| c == code) {
        Some((_, r)) if !r.contains(&reason) => {
            r.push('；');
            r.push_str(&reason);
        }
        Some(_) => {}
        None => list.push((code.to_string(), reason)),
    }
}

/// Grade `facts` against `rules`: data-decided items first (in table order of the rules), then
/// the clinician's ticks. A code both decided and ticked appears once, with the data's reason.
pub fn evaluate(rules: &RuleSet, facts: &Facts) -> Result<Assessment, String> {
    facts.check()?;
    let mut found: Vec<(String, String)> = Vec::new();
    for (code, reason) in decide(&rules.bands, &rules.flags, &rules.tests, facts) {
        merge(&mut found, &code, reason);
    }
    for code in &facts.factors {
        let code = code.trim();
        let item = rules
            .item(code)
            .ok_or_else(|| format!("评估表 {} 中没有条目 {code}", rules.id))?;
        if !found.iter().any(|(c, _)| c == code) {
            found.push((code.to_string(), format!("医生勾选：{}", item.text)));
        }
    }
    let factors: Vec<RiskFactor> = found
        .into_iter()
        .filter_map(|(code, reason)| {
            rules.item(&code).map(|i| RiskFactor {
                code,
                colour: i.colour,
                reason,
            })
        })
        .collect();
    Ok(Assessment::of(factors, &rules.id))
}

impl Assessment {
    /// Combine factors: the highest colour wins; purple stands beside it (RULES.md §1.3).
    pub fn of(factors: Vec<RiskFactor>, rule_set: &str) -> Assessment {
        let colour = factors
            .iter()
            .filter_map(|f| f.colour.grade())
            .max()
            .unwrap_or(RiskColour::Green);
        let purple = factors.iter().any(|f| f.colour == ItemColour::Purple);
        Assessment {
            colour,
            purple,
            factors,
            rule_set: rule_set.to_string(),
        }
    }
}

// ------------------------------------------------------------------ screening (附件1)

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningItem {
    pub code: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningTable {
    pub id: String,
    pub name: String,
    pub source: String,
    #[serde(rename = "item")]
    pub items: Vec<ScreeningItem>,
    #[serde(default, rename = "band")]
    pub bands: Vec<Band>,
    #[serde(default, rename = "flag")]
    pub flags: Vec<FlagRule>,
    #[serde(default, rename = "test")]
    pub tests: Vec<FlagRule>,
}

const SCREENING_2017: &str = include_str!("../../rules/risk/screening-2017.toml");

/// The national screening table, parsed and checked once.
pub fn screening_table() -> Result<&'static ScreeningTable, String> {
    static T: OnceLock<Result<ScreeningTable, String>> = OnceLock::new();
    T.get_or_init(|| {
        let t: ScreeningTable =
            toml::from_str(SCREENING_2017).map_err(|e| format!("rules/risk/screening-2017.toml: {e}"))?;
        let rule_codes = t
            .bands
            .iter()
            .map(|b| &b.code)
            .chain(t.flags.iter().map(|f| &f.code))
            .chain(t.tests.iter().map(|f| &f.code));
        for code in rule_codes {
            if !t.items.iter().any(|i| &i.code == code) {
                return Err(format!("screening rule points at unknown item {code}"));
            }
        }
        Ok(t)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// One screening finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreeningFinding {
    pub code: String,
    pub reason: String,
}

/// Screen facts plus the items a clinician ticked: positive if any item is present (RULES.md §1.1).
pub fn screen(table: &ScreeningTable, facts: &Facts, ticked: &[String]) -> Result<Vec<ScreeningFinding>, String> {
    facts.check()?;
    let mut found: Vec<(String, String)> = Vec::new();
    for (code, reason) in decide(&table.bands, &table.flags, &table.tests, facts) {
        merge(&mut found, &code, reason);
    }
    for code in ticked {
        let item = table
            .items
            .iter()
            .find(|i| &i.code == code)
            .ok_or_else(|| format!("筛查表中没有条目 {code}"))?;
        if !found.iter().any(|(c, _)| c == code) {
            found.push((code.clone(), format!("医生勾选：{}", item.text)));
        }
    }
    Ok(found
        .into_iter()
        .map(|(code, reason)| ScreeningFinding { code, reason })
        .collect())
}

// ------------------------------------------------------------------ management per colour (RULES.md §1.4)

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourPlan {
    pub case: bool,
    pub follow_up_days: i64,
    pub report_hours: Option<i64>,
    pub delivery_min_level: String,
    pub delivery_capability: Option<String>,
    pub delivery_label: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    pub id: String,
    pub acknowledge_hours: i64,
    pub escalate_supervisor_after_days: i64,
    pub escalate_district_after_days: i64,
    pub yellow: ColourPlan,
    pub orange: ColourPlan,
    pub red: ColourPlan,
    pub purple: ColourPlan,
}

const MANAGEMENT_2017: &str = include_str!("../../rules/risk/management-2017.toml");

pub fn management() -> Result<&'static Management, String> {
    static M: OnceLock<Result<Management, String>> = OnceLock::new();
    M.get_or_init(|| toml::from_str(MANAGEMENT_2017).map_err(|e| format!("rules/risk/management-2017.toml: {e}")))
        .as_ref()
        .map_err(Clone::clone)
}

/// What a grade asks for: a case or not, how often to follow up, when to report, where to deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub case: bool,
    pub follow_up_days: i64,
    pub report_hours: Option<i64>,
    pub delivery_min_level: String,
    pub delivery_capability: Option<String>,
    pub delivery_labels: Vec<String>,
}

const LEVEL_ORDER: [&str; 5] = ["village", "township", "county", "city", "province"];

fn level_rank(level: &str) -> usize {
    LEVEL_ORDER.iter().position(|l| *l == level).unwrap_or(0)
}

/// The plan for a colour with or without purple: the stricter of the two on every point.
pub fn plan_for(m: &Management, colour: RiskColour, purple: bool) -> Option<Plan> {
    let mut plans: Vec<&ColourPlan> = Vec::new();
    match colour {
        RiskColour::Green => {}
        RiskColour::Yellow => plans.push(&m.yellow),
        RiskColour::Orange => plans.push(&m.orange),
        RiskColour::Red => plans.push(&m.red),
    }
    if purple {
        plans.push(&m.purple);
    }
    let first = plans.first()?;
    let strictest_level = plans
        .iter()
        .map(|p| p.delivery_min_level.as_str())
        .max_by_key(|l| level_rank(l))
        .unwrap_or("county");
    Some(Plan {
        case: plans.iter().any(|p| p.case),
        follow_up_days: plans
            .iter()
            .map(|p| p.follow_up_days)
            .min()
            .unwrap_or(first.follow_up_days),
        report_hours: plans.iter().filter_map(|p| p.report_hours).min(),
        delivery_min_level: strictest_level.to_string(),
        delivery_capability: plans.iter().find_map(|p| p.delivery_capability.clone()),
        delivery_labels: plans.iter().map(|p| p.delivery_label.clone()).collect(),
    })
}

/// Whether a facility of `level` with `capabilities` meets a plan's delivery requirement.
pub fn facility_fits(plan: &Plan, level: &str, capabilities: &[String]) -> bool {
    level_rank(level) >= level_rank(&plan.delivery_min_level)
        && plan
            .delivery_capability
            .as_ref()
            .is_none_or(|c| capabilities.iter().any(|x| x == c))
}

// ------------------------------------------------------------------ stored assessments

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentStatus {
    /// Computed by the system when the picture changed; waits for a clinician.
    Proposed,
    /// Confirmed by a clinician: the woman's grade.
    Confirmed,
    /// A proposal a clinician's later grading replaced.
    Dismissed,
}

impl AssessmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AssessmentStatus::Proposed => "proposed",
            AssessmentStatus::Confirmed => "confirmed",
            AssessmentStatus::Dismissed => "dismissed",
        }
    }
    pub fn parse(s: &str) -> Option<AssessmentStatus> {
        [
            AssessmentStatus::Proposed,
            AssessmentStatus::Confirmed,
            AssessmentStatus::Dismissed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            AssessmentStatus::Proposed => "系统建议（待确认）",
            AssessmentStatus::Confirmed => "已确认",
            AssessmentStatus::Dismissed => "已被后续评估取代",
        }
    }
}

/// A data-decided factor the clinician removed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemovedFactor {
    pub code: String,
    pub reason: String,
}

/// An assessment as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AssessmentRecord {
    pub id: String,
    pub pregnancy_id: String,
    pub person_id: String,
    pub status: AssessmentStatus,
    pub status_label: &'static str,
    pub colour: RiskColour,
    pub colour_label: &'static str,
    pub purple: bool,
    pub factors: Vec<RiskFactor>,
    pub removed: Vec<RemovedFactor>,
    pub facts: Facts,
    pub rule_set: String,
    /// What caused it: `booking`, `grading`, `visit <id>` …
    pub trigger: String,
    pub note: String,
    pub assessed_by: String,
    pub facility_id: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::NaiveDateTime>,
    pub created_at: chrono::NaiveDateTime,
}

/// Whether `new` shows more risk than `old`: a higher colour, purple appearing, or a factor
/// that was not there (a re-grade is then proposed; RULES.md §1.1 动态评估).
pub fn adds_risk(old: Option<&AssessmentRecord>, new: &Assessment) -> bool {
    match old {
        None => new.colour > RiskColour::Green || new.purple,
        Some(o) => {
            new.colour > o.colour
                || (new.purple && !o.purple)
                || new
                    .factors
                    .iter()
                    .any(|f| !o.factors.iter().any(|g| g.code == f.code) && !o.removed.iter().any(|r| r.code == f.code))
        }
    }
}

/// A screening as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningRecord {
    pub id: String,
    pub pregnancy_id: String,
    pub positive: bool,
    pub items: Vec<ScreeningFinding>,
    pub screened_by: String,
    pub facility_id: String,
    /// Screen-positive: the date by which the township follows up the grading result (2 weeks,
    /// 基本公卫规范 "2周内随访转诊结果", RULES.md §1.1).
    pub follow_up_due: Option<chrono::NaiveDate>,
    pub graded_at: Option<chrono::NaiveDateTime>,
    pub created_at: chrono::NaiveDateTime,
}

/// Days within which the township follows up a positive screen (RULES.md §1.1, 基本公卫 [V]).
pub const SCREEN_FOLLOW_UP_DAYS: u64 = 14;

#[cfg(test)]
mod tests {
    use super::*;

    fn national() -> &'static RuleSet {
        rule_set("national-2017").unwrap()
    }

    fn grade(facts: Facts) -> Assessment {
        evaluate(national(), &facts).unwrap()
    }

    fn codes(a: &Assessment) -> Vec<&str> {
        a.factors.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn every_embedded_rule_set_loads_and_checks() {
        for id in rule_set_ids() {
            let rs = rule_set(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(!rs.items.is_empty());
        }
        assert!(rule_set("nowhere-1999").is_err());
        // The variant keeps every national item and adds its own.
        let zj = rule_set("zhejiang-2018").unwrap();
        assert!(zj.item("R1.1").is_some() && zj.item("R1.15").is_some());
        assert!(national().item("R1.15").is_none());
    }

    #[test]
    fn nothing_known_is_green() {
        let a = grade(Facts::default());
        assert_eq!((a.colour, a.purple, a.factors.len()), (RiskColour::Green, false, 0));
        assert_eq!(a.rule_set, "national-2017");
    }

    /// (fact value, expected code or none) for each automatic band, at and around every edge.
    #[test]
    fn every_automatic_band_at_and_around_its_edges() {
        let age: [(f64, Option<&str>); 8] = [
            (17.0, Some("Y1.1")),
            (18.0, Some("Y1.1")),
            (19.0, None),
            (34.0, None),
            (35.0, Some("Y1.1")),
            (39.0, Some("Y1.1")),
            (40.0, Some("O1.1")),
            (45.0, Some("O1.1")),
        ];
        for (v, want) in age {
            let a = grade(Facts {
                age_years: Some(v),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "age {v}");
        }
        let hb: [(f64, Option<&str>); 9] = [
            (110.0, None),
            (109.0, Some("Y2.6")),
            (61.0, Some("Y2.6")),
            (60.0, Some("O2.6")),
            (58.0, Some("O2.6")),
            (41.0, Some("O2.6")),
            (40.0, Some("R1.6")),
            (35.0, Some("R1.6")),
            (130.0, None),
        ];
        for (v, want) in hb {
            let a = grade(Facts {
                hb_g_l: Some(v),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "Hb {v}");
        }
        let plt: [(f64, Option<&str>); 8] = [
            (101.0, None),
            (100.0, Some("Y2.6")),
            (51.0, Some("Y2.6")),
            (50.0, Some("O2.6")),
            (30.0, Some("O2.6")),
            (29.0, Some("R1.6")),
            (5.0, Some("R1.6")),
            (250.0, None),
        ];
        for (v, want) in plt {
            let a = grade(Facts {
                platelets_10e9_l: Some(v),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "PLT {v}");
        }
        // BMI from height 160 cm: 64.0 kg → 25.0 (none), 64.3 → 25.1 (Y), 71.7 → 28.0 (O), 47.3 → 18.5 (none), 47.1 → 18.4 (Y).
        let bmi: [(f64, Option<&str>); 5] = [
            (64.0, None),
            (64.3, Some("Y1.2")),
            (71.7, Some("O1.2")),
            (47.3, None),
            (47.1, Some("Y1.2")),
        ];
        for (w, want) in bmi {
            let a = grade(Facts {
                height_cm: Some(160.0),
                weight_kg: Some(w),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "weight {w}");
        }
        let bp: [(f64, f64, Option<&str>); 4] = [
            (139.0, 89.0, None),
            (140.0, 80.0, Some("Y3.5")),
            (130.0, 90.0, Some("Y3.5")),
            (160.0, 110.0, Some("Y3.5")),
        ];
        for (s, d, want) in bp {
            let a = grade(Facts {
                systolic_mmhg: Some(s),
                diastolic_mmhg: Some(d),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "BP {s}/{d}");
            assert!(a.factors.len() <= 1, "one factor for one blood pressure");
        }
        let fetuses: [(f64, Option<&str>); 3] = [(1.0, None), (2.0, Some("Y3.1")), (3.0, Some("O3.1"))];
        for (v, want) in fetuses {
            let a = grade(Facts {
                fetuses: Some(v),
                ..Default::default()
            });
            assert_eq!(codes(&a).first().copied(), want, "fetuses {v}");
        }
    }

    #[test]
    fn a_scarred_uterus_is_yellow_and_orange_when_recent_or_repeated() {
        let one = grade(Facts {
            previous_caesareans: Some(1.0),
            months_since_last_uterine_surgery: Some(18.0),
            ..Default::default()
        });
        assert_eq!((one.colour, codes(&one)), (RiskColour::Yellow, vec!["Y1.6"]));
        let recent = grade(Facts {
            previous_caesareans: Some(1.0),
            months_since_last_uterine_surgery: Some(17.0),
            ..Default::default()
        });
        assert_eq!(recent.colour, RiskColour::Orange);
        assert!(codes(&recent).contains(&"O3.3"));
        let two = grade(Facts {
            previous_caesareans: Some(2.0),
            ..Default::default()
        });
        assert_eq!(two.colour, RiskColour::Orange);
        assert!(codes(&two).contains(&"O3.5"));
        let surgeries = grade(Facts {
            previous_uterine_surgeries: Some(2.0),
            ..Default::default()
        });
        assert!(codes(&surgeries).contains(&"O3.5"));
        let none = grade(Facts {
            previous_caesareans: Some(0.0),
            ..Default::default()
        });
        assert_eq!(none.colour, RiskColour::Green);
    }

    #[test]
    fn infections_are_purple_beside_any_colour() {
        let hiv = grade(Facts {
            hiv: Some(TestResult::Positive),
            ..Default::default()
        });
        assert_eq!((hiv.colour, hiv.purple), (RiskColour::Green, true));
        let hbv = grade(Facts {
            hbsag: Some(TestResult::Positive),
            ..Default::default()
        });
        assert_eq!(
            (hbv.colour, hbv.purple),
            (RiskColour::Yellow, true),
            "HBsAg is also Y2.3 carrier"
        );
        let red_purple = grade(Facts {
            syphilis: Some(TestResult::Positive),
            hb_g_l: Some(38.0),
            ..Default::default()
        });
        assert_eq!((red_purple.colour, red_purple.purple), (RiskColour::Red, true));
        let negative = grade(Facts {
            hiv: Some(TestResult::Negative),
            syphilis: Some(TestResult::Unknown),
            ..Default::default()
        });
        assert_eq!((negative.colour, negative.purple), (RiskColour::Green, false));
        let assisted = grade(Facts {
            assisted_reproduction: Some(true),
            ..Default::default()
        });
        assert_eq!(codes(&assisted), vec!["Y1.9"]);
    }

    #[test]
    fn the_highest_colour_wins_and_clinician_ticks_count() {
        let a = grade(Facts {
            age_years: Some(36.0),
            factors: vec!["O3.7".into()],
            ..Default::default()
        });
        assert_eq!(a.colour, RiskColour::Orange, "yellow + orange → orange");
        assert_eq!(codes(&a), vec!["Y1.1", "O3.7"]);
        let b = grade(Facts {
            factors: vec!["Y3.12".into(), "R2.2".into(), "P4".into()],
            ..Default::default()
        });
        assert_eq!((b.colour, b.purple), (RiskColour::Red, true));
        // A ticked code that data also decided appears once.
        let c = grade(Facts {
            age_years: Some(41.0),
            factors: vec!["O1.1".into()],
            ..Default::default()
        });
        assert_eq!(codes(&c), vec!["O1.1"]);
        assert!(
            evaluate(
                national(),
                &Facts {
                    factors: vec!["Z9.9".into()],
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn implausible_facts_are_refused() {
        assert!(
            evaluate(
                national(),
                &Facts {
                    hb_g_l: Some(900.0),
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert!(
            evaluate(
                national(),
                &Facts {
                    age_years: Some(-3.0),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn the_zhejiang_variant_adds_its_own_items() {
        let zj = rule_set("zhejiang-2018").unwrap();
        let a = evaluate(
            zj,
            &Facts {
                height_cm: Some(145.0),
                previous_caesareans: Some(3.0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.colour, RiskColour::Red);
        assert!(codes(&a).contains(&"Y1.10") && codes(&a).contains(&"R1.15"));
        assert_eq!(a.rule_set, "zhejiang-2018");
        let n = grade(Facts {
            height_cm: Some(145.0),
            previous_caesareans: Some(3.0),
            ..Default::default()
        });
        assert_eq!(n.colour, RiskColour::Orange);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn facts() -> impl Strategy<Value = Facts> {
            (
                proptest::option::of(14.0..55.0f64),
                proptest::option::of(30.0..160.0f64),
                proptest::option::of(10.0..300.0f64),
                proptest::option::of(1.0..5.0f64),
                proptest::option::of(0.0..4.0f64),
                proptest::collection::vec(0usize..200, 0..4),
            )
                .prop_map(|(age, hb, plt, fetuses, cs, picks)| {
                    let items = &national().items;
                    Facts {
                        age_years: age.map(f64::round),
                        hb_g_l: hb.map(f64::round),
                        platelets_10e9_l: plt.map(f64::round),
                        fetuses: fetuses.map(f64::floor),
                        previous_caesareans: cs.map(f64::floor),
                        factors: picks.into_iter().map(|i| items[i % items.len()].code.clone()).collect(),
                        ..Default::default()
                    }
                })
        }

        proptest! {
            #[test]
            fn adding_a_factor_never_lowers_the_colour(f in facts(), extra in 0usize..200) {
                let before = evaluate(national(), &f).unwrap();
                let mut more = f.clone();
                let items = &national().items;
                more.factors.push(items[extra % items.len()].code.clone());
                let after = evaluate(national(), &more).unwrap();
                prop_assert!(after.colour >= before.colour);
                prop_assert!(after.purple || !before.purple);
            }

            #[test]
            fn the_colour_is_the_highest_factor_colour(f in facts()) {
                let a = evaluate(national(), &f).unwrap();
                let max = a.factors.iter().filter_map(|x| x.colour.grade()).max().unwrap_or(RiskColour::Green);
                prop_assert_eq!(a.colour, max);
            }
        }
    }

    #[test]
    fn screening_is_positive_on_any_item_from_data_or_ticked() {
        let t = screening_table().unwrap();
        assert!(screen(t, &Facts::default(), &[]).unwrap().is_empty());
        let f = screen(
            t,
            &Facts {
                height_cm: Some(145.0),
                hb_g_l: Some(109.0),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        let codes: Vec<&str> = f.iter().map(|x| x.code.as_str()).collect();
        assert_eq!(codes, vec!["S1.2", "S6.1"]);
        let ticked = screen(t, &Facts::default(), &["S2.3".to_string()]).unwrap();
        assert_eq!(ticked.len(), 1);
        assert!(screen(t, &Facts::default(), &["S9.9".to_string()]).is_err());
        assert!(
            screen(
                t,
                &Facts {
                    hb_g_l: Some(110.0),
                    platelets_10e9_l: Some(101.0),
                    ..Default::default()
                },
                &[]
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn the_plan_follows_the_colour_and_purple_adds_its_own_demands() {
        let m = management().unwrap();
        assert!(plan_for(m, RiskColour::Green, false).is_none());
        let yellow = plan_for(m, RiskColour::Yellow, false).unwrap();
        assert!(!yellow.case && yellow.report_hours.is_none());
        let orange = plan_for(m, RiskColour::Orange, false).unwrap();
        assert!(orange.case);
        assert_eq!(orange.report_hours, Some(72));
        let red = plan_for(m, RiskColour::Red, false).unwrap();
        assert_eq!((red.report_hours, red.delivery_min_level.as_str()), (Some(24), "city"));
        let purple_only = plan_for(m, RiskColour::Green, true).unwrap();
        assert!(purple_only.case && purple_only.report_hours.is_none());
        let red_purple = plan_for(m, RiskColour::Red, true).unwrap();
        assert_eq!(red_purple.follow_up_days, 7);
        assert_eq!(red_purple.delivery_labels.len(), 2);
        assert!(facility_fits(&red, "province", &["maternal_critical_care".into()]));
        assert!(!facility_fits(&red, "county", &["maternal_critical_care".into()]));
        assert!(!facility_fits(&orange, "county", &[]));
    }
}
