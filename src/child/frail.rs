//! 体弱儿专案管理 (frail-child case management), pure: which findings of a child health visit or
//! of her birth make her a frail child (营养不良 — 低体重、生长迟缓、消瘦; 贫血 by age with its
//! severity; 维生素D缺乏性佝偻病 bone signs; 早产; 低出生体重; growth faltering; optionally 肥胖),
//! the plan per condition (follow-up interval and what to do), when a condition is resolved, and
//! the closing rule of a frail-child case. Rules and their sources are data:
//! `rules/child/frail-child-2012.toml`.
//!
//! The case itself is a 专案 of the same state machine as a high-risk pregnancy
//! ([`crate::risk::cases`]: active / traced / lost / moved out / closed, overdue derived from the
//! dates, escalation by days overdue); what is the child's own is the reasons, their plans and the
//! closing rule ([`FrailClosing`]).

use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::growth::model as growth;
use crate::risk::cases::{CaseStatus, CloseReason, ClosingRule, Escalation};

const FRAIL_2012: &str = include_str!("../../rules/child/frail-child-2012.toml");

/// How the record shows a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// A WHO z-score of the condition's indicator below or above a band's cut-off.
    Z,
    /// Haemoglobin below the age threshold, banded by severity.
    Haemoglobin,
    /// A bone sign of active rickets ticked on the visit form.
    Rickets,
    /// Gestation at birth below a band's days.
    Gestation,
    /// Birth weight below a band's grams.
    BirthWeight,
    /// Weight crossing two major centile lines down, or no weight gain, between two weighings.
    Faltering,
    /// Only a clinician opens it.
    Clinician,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub code: String,
    pub label: String,
    pub below: Option<f64>,
    pub above: Option<f64>,
    pub follow_up_days: Option<i64>,
    pub plan: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub code: String,
    pub label: String,
    pub group: String,
    pub criterion: Criterion,
    pub indicator: Option<String>,
    #[serde(default)]
    pub signs: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Faltering: the two weighings compared are at least this many days apart.
    #[serde(default)]
    pub min_gap_days: i64,
    pub follow_up_days: i64,
    pub plan: String,
    /// When the condition counts as resolved (the closing standard), in words.
    pub resolved: String,
    pub tag: String,
    pub source: String,
    #[serde(default, rename = "band")]
    pub bands: Vec<Band>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnaemiaThreshold {
    pub from_days: i64,
    pub to_days: i64,
    pub below: f64,
    pub tag: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Management {
    pub escalate_supervisor_after_days: i64,
    pub escalate_district_after_days: i64,
    pub age_out_years: i64,
    pub traced_within_days: i64,
}

/// The frail-child rules of one document set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrailRules {
    pub id: String,
    pub name: String,
    pub management: Management,
    #[serde(rename = "condition")]
    pub conditions: Vec<Condition>,
    #[serde(rename = "anaemia_threshold")]
    pub anaemia_thresholds: Vec<AnaemiaThreshold>,
}

/// The z-score of an indicator named in the data.
fn z_of(g: &growth::Evaluation, indicator: &str) -> Option<f64> {
    match indicator {
        "weight_for_age" => g.weight_for_age_z,
        "length_for_age" => g.length_for_age_z,
        "weight_for_length" => g.weight_for_length_z,
        "bmi_for_age" => g.bmi_for_age_z,
        _ => None,
    }
}

fn indicator_label(indicator: &str) -> &'static str {
    match indicator {
        "weight_for_age" => "年龄别体重",
        "length_for_age" => "年龄别身长/身高",
        "weight_for_length" => "身长/身高别体重",
        "bmi_for_age" => "年龄别BMI",
        _ => "",
    }
}

/// The rickets signs the visit form knows.
fn known_sign(code: &str) -> bool {
    super::model::RICKETS_SIGNS.iter().any(|(c, _)| *c == code)
}

impl FrailRules {
    /// Parse and check the rules: unique codes, known indicators and signs, a cut-off on every
    /// measured band, positive intervals, escalation in order, anaemia thresholds in age order.
    pub fn parse(text: &str) -> Result<FrailRules, String> {
        let r: FrailRules = toml::from_str(text).map_err(|e| format!("frail-child rules: {e}"))?;
        let m = &r.management;
        if !(0 < m.escalate_supervisor_after_days && m.escalate_supervisor_after_days < m.escalate_district_after_days)
        {
            return Err(
                "escalate_supervisor_after_days must be positive and before escalate_district_after_days".into(),
            );
        }
        if m.age_out_years < 1 || m.traced_within_days < 1 {
            return Err("age_out_years and traced_within_days must be positive".into());
        }
        for (i, c) in r.conditions.iter().enumerate() {
            if r.conditions[..i].iter().any(|o| o.code == c.code) {
                return Err(format!("condition {} is listed twice", c.code));
            }
            if !matches!(c.tag.as_str(), "V" | "R" | "L" | "?") {
                return Err(format!("condition {}: tag must be V, R, L or ?", c.code));
            }
            if c.follow_up_days < 1 || c.bands.iter().any(|b| b.follow_up_days.is_some_and(|d| d < 1)) {
                return Err(format!("condition {}: follow-up intervals must be positive", c.code));
            }
            let known_indicator = c.indicator.as_deref().is_some_and(|i| !indicator_label(i).is_empty());
            if c.criterion == Criterion::Z && !known_indicator {
                return Err(format!("condition {}: a z condition needs a known indicator", c.code));
            }
            if c.criterion == Criterion::Rickets && (c.signs.is_empty() || !c.signs.iter().all(|s| known_sign(s))) {
                return Err(format!("condition {}: signs must be rickets signs of the form", c.code));
            }
            let needs_cut_off = matches!(
                c.criterion,
                Criterion::Z | Criterion::Gestation | Criterion::BirthWeight
            );
            if needs_cut_off && (c.bands.is_empty() || c.bands.iter().any(|b| b.below.is_none() && b.above.is_none())) {
                return Err(format!("condition {}: every band needs `below` or `above`", c.code));
            }
            if c.criterion == Criterion::Haemoglobin && !c.bands.iter().any(|b| b.below.is_none()) {
                return Err(format!(
                    "condition {}: one band must be the age threshold (no `below`)",
                    c.code
                ));
            }
        }
        let mut last = None;
        for t in &r.anaemia_thresholds {
            if t.from_days >= t.to_days || last.is_some_and(|l| l != t.from_days) {
                return Err("anaemia thresholds must follow each other in age order".into());
            }
            last = Some(t.to_days);
        }
        Ok(r)
    }

    pub fn condition(&self, code: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.code == code)
    }

    /// The conditions that open cases.
    pub fn enabled(&self) -> impl Iterator<Item = &Condition> {
        self.conditions.iter().filter(|c| c.enabled)
    }

    /// The Hb (g/L) under which a child of this age is anaemic, when one applies.
    pub fn anaemia_threshold(&self, age_days: i64) -> Option<f64> {
        self.anaemia_thresholds
            .iter()
            .find(|t| t.from_days <= age_days && age_days < t.to_days)
            .map(|t| t.below)
    }

    /// The band of a measured value (most severe first), if the condition applies.
    fn band_of<'a>(&self, c: &'a Condition, value: f64, threshold: Option<f64>) -> Option<&'a Band> {
        c.bands.iter().find(|b| {
            let below = b.below.or(threshold);
            below.is_some_and(|x| value < x) || b.above.is_some_and(|x| value > x)
        })
    }

    /// The finding of condition `c` in `band`, with what showed it.
    fn finding(c: &Condition, band: Option<&Band>, detail: String) -> Finding {
        let label = match band {
            Some(b) if b.label != c.label => format!("{}（{}）", c.label, b.label),
            _ => c.label.clone(),
        };
        Finding {
            code: c.code.clone(),
            label,
            band: band.map(|b| b.code.clone()),
            detail,
            follow_up_days: band.and_then(|b| b.follow_up_days).unwrap_or(c.follow_up_days),
            plan: band.and_then(|b| b.plan.clone()).unwrap_or_else(|| c.plan.clone()),
        }
    }

    /// What a visit shows. `previous` is her latest earlier weighing (with its evaluation), for
    /// growth faltering.
    pub fn visit_findings(&self, v: &VisitFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in self.enabled() {
            match c.criterion {
                Criterion::Z => {
                    let ind = c.indicator.as_deref().unwrap_or("");
                    if let Some(z) = v.growth.and_then(|g| z_of(g, ind))
                        && let Some(b) = self.band_of(c, z, None)
                    {
                        out.push(Self::finding(
                            c,
                            Some(b),
                            format!("{} z = {z:.2}", indicator_label(ind)),
                        ));
                    }
                }
                Criterion::Haemoglobin => {
                    if let (Some(hb), Some(t)) = (v.hb_g_l, self.anaemia_threshold(v.age_days))
                        && let Some(b) = self.band_of(c, f64::from(hb), Some(t))
                    {
                        out.push(Self::finding(
                            c,
                            Some(b),
                            format!("血红蛋白 {hb} g/L（该年龄 < {t} g/L 为贫血）"),
                        ));
                    }
                }
                Criterion::Rickets => {
                    let seen: Vec<&str> = super::model::RICKETS_SIGNS
                        .iter()
                        .filter(|(code, _)| {
                            c.signs.iter().any(|s| s == code) && v.rickets_signs.iter().any(|s| s == code)
                        })
                        .map(|(_, l)| *l)
                        .collect();
                    if !seen.is_empty() {
                        out.push(Self::finding(c, None, format!("活动期体征：{}", seen.join("、"))));
                    }
                }
                Criterion::Faltering => {
                    if let Some(detail) = self.faltering(c, v) {
                        out.push(Self::finding(c, None, detail));
                    }
                }
                Criterion::Gestation | Criterion::BirthWeight | Criterion::Clinician => {}
            }
        }
        out
    }

    fn faltering(&self, c: &Condition, v: &VisitFacts) -> Option<String> {
        let prev = v.previous.as_ref()?;
        let w = v.weight_kg?;
        if v.age_days - prev.age_days < c.min_gap_days.max(1) {
            return None;
        }
        if let (Some(a), Some(b)) = (prev.growth.as_ref(), v.growth) {
            for ind in ["weight_for_age", "weight_for_length"] {
                if let (Some(za), Some(zb)) = (z_of(a, ind), z_of(b, ind))
                    && growth::crossed_down_two_major_centiles(za, zb)
                {
                    return Some(format!(
                        "{}下降跨越两条主百分位线（z {za:.2} → {zb:.2}）",
                        indicator_label(ind)
                    ));
                }
            }
        }
        let (Ok(da), Ok(db)) = (u32::try_from(prev.age_days), u32::try_from(v.age_days)) else {
            return None;
        };
        let flat = growth::no_weight_gain(
            growth::Weighing {
                age_days: da,
                weight_kg: prev.weight_kg,
            },
            growth::Weighing {
                age_days: db,
                weight_kg: w,
            },
        )
        .unwrap_or(false);
        flat.then(|| {
            format!(
                "体重不增（{} kg → {w} kg，间隔 {} 天）",
                prev.weight_kg,
                v.age_days - prev.age_days
            )
        })
    }

    /// What her birth shows (早产, 低出生体重).
    pub fn birth_findings(&self, gestation_days: Option<i64>, birth_weight_g: Option<i32>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in self.enabled() {
            match c.criterion {
                Criterion::Gestation => {
                    if let Some(g) = gestation_days
                        && let Some(b) = self.band_of(c, g as f64, None)
                    {
                        out.push(Self::finding(c, Some(b), format!("出生孕周 {}+{}", g / 7, g % 7)));
                    }
                }
                Criterion::BirthWeight => {
                    if let Some(w) = birth_weight_g
                        && let Some(b) = self.band_of(c, f64::from(w), None)
                    {
                        out.push(Self::finding(c, Some(b), format!("出生体重 {w} g")));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// A condition a clinician names when she opens a case by hand (any enabled condition, or
    /// `other`), with her note as what showed it.
    pub fn manual_finding(&self, code: &str, note: &str) -> Option<Finding> {
        let c = self.enabled().find(|c| c.code == code)?;
        let mut f = Self::finding(c, None, format!("医生判断：{note}"));
        if c.criterion != Criterion::Clinician {
            f.label = format!("{}（医生判断）", c.label);
        }
        Some(f)
    }

    /// Whether a reason is still met at this visit: `Some(false)` when the visit measured what the
    /// condition needs and no longer shows it; `None` when it measured nothing that tells.
    /// 早产 and 低出生体重 are over with catch-up growth (weight- and length-for-age ≥ −2 SD at the
    /// same visit, chronological age: the safer reading keeps a preterm child longer).
    pub fn still_met(&self, code: &str, v: &VisitFacts, found: &[Finding]) -> Option<bool> {
        if found.iter().any(|f| f.code == code) {
            return Some(true);
        }
        let c = self.condition(code)?;
        match c.criterion {
            Criterion::Z => {
                let ind = c.indicator.as_deref().unwrap_or("");
                v.growth.and_then(|g| z_of(g, ind)).map(|_| false)
            }
            Criterion::Haemoglobin => v.hb_g_l.and(self.anaemia_threshold(v.age_days)).map(|_| false),
            // A visit form always tells the signs: none ticked of the active ones is "gone" only
            // when the visit examined her (a measurement was taken).
            Criterion::Rickets => (v.weight_kg.is_some() || v.growth.is_some()).then_some(false),
            Criterion::Faltering => (v.previous.is_some() && v.weight_kg.is_some()).then_some(false),
            Criterion::Gestation | Criterion::BirthWeight => {
                let g = v.growth?;
                match (g.weight_for_age_z, g.length_for_age_z) {
                    (Some(w), Some(l)) => Some(w < -2.0 || l < -2.0),
                    _ => None,
                }
            }
            Criterion::Clinician => None,
        }
    }
}

/// The embedded rules, parsed once (a unit test checks they parse).
pub fn rules() -> &'static FrailRules {
    static R: OnceLock<FrailRules> = OnceLock::new();
    R.get_or_init(|| {
        FrailRules::parse(FRAIL_2012).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded frail-child rules are invalid: no condition opens a case");
            FrailRules {
                id: "invalid".into(),
                name: "invalid".into(),
                management: Management {
                    escalate_supervisor_after_days: 7,
                    escalate_district_after_days: 14,
                    age_out_years: 6,
                    traced_within_days: 7,
                },
                conditions: Vec::new(),
                anaemia_thresholds: Vec::new(),
            }
        })
    })
}

/// A weighing before this visit.
#[derive(Debug, Clone)]
pub struct EarlierWeighing {
    pub age_days: i64,
    pub weight_kg: f64,
    pub growth: Option<growth::Evaluation>,
}

/// What one visit measured, for the rules.
#[derive(Debug, Clone, Default)]
pub struct VisitFacts<'a> {
    pub age_days: i64,
    pub weight_kg: Option<f64>,
    pub growth: Option<&'a growth::Evaluation>,
    pub hb_g_l: Option<i32>,
    pub rickets_signs: &'a [String],
    pub previous: Option<EarlierWeighing>,
}

/// A condition found, with its plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The condition's code (`underweight`, `anaemia`, …).
    pub code: String,
    /// `贫血（轻度）`.
    pub label: String,
    /// The severity band's code (`mild`, `moderate`, `severe`, …).
    pub band: Option<String>,
    /// What showed it (`血红蛋白 95 g/L …`).
    pub detail: String,
    pub follow_up_days: i64,
    pub plan: String,
}

/// A reason of a case: a finding, where it came from, when it was first and last found, and
/// whether it has resolved since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReason {
    #[serde(flatten)]
    pub finding: Finding,
    /// `birth`, `visit` or `manual`.
    pub source: String,
    pub first_found: NaiveDate,
    pub last_found: NaiveDate,
    pub resolved_on: Option<NaiveDate>,
}

/// Add what was found on `on` to a case's reasons (a reason found again takes its new band and
/// plan and is open again); returns the labels of the reasons that are new or changed band.
pub fn merge(reasons: &mut Vec<CaseReason>, found: &[Finding], on: NaiveDate, source: &str) -> Vec<String> {
    let mut changed = Vec::new();
    for f in found {
        match reasons.iter_mut().find(|r| r.finding.code == f.code) {
            Some(r) => {
                if r.finding.band != f.band || r.resolved_on.is_some() {
                    changed.push(f.label.clone());
                }
                if on >= r.last_found {
                    r.finding = f.clone();
                    r.last_found = on;
                    r.resolved_on = None;
                }
            }
            None => {
                changed.push(f.label.clone());
                reasons.push(CaseReason {
                    finding: f.clone(),
                    source: source.to_string(),
                    first_found: on,
                    last_found: on,
                    resolved_on: None,
                });
            }
        }
    }
    changed
}

/// Mark the reasons a visit on `on` shows resolved; returns their labels.
pub fn resolve(
    rules: &FrailRules,
    reasons: &mut [CaseReason],
    v: &VisitFacts,
    found: &[Finding],
    on: NaiveDate,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in reasons.iter_mut() {
        if r.resolved_on.is_none() && on >= r.last_found && rules.still_met(&r.finding.code, v, found) == Some(false) {
            r.resolved_on = Some(on);
            out.push(r.finding.label.clone());
        }
    }
    out
}

/// The case's follow-up interval: the shortest of its open reasons (of all when every one has
/// resolved, until it is closed).
pub fn interval(reasons: &[CaseReason]) -> i64 {
    let open = reasons.iter().filter(|r| r.resolved_on.is_none());
    open.map(|r| r.finding.follow_up_days)
        .min()
        .or_else(|| reasons.iter().map(|r| r.finding.follow_up_days).min())
        .unwrap_or(30)
}

/// The closing rule of a frail-child case.
#[derive(Debug, Clone, Default)]
pub struct FrailClosing {
    /// Reasons measured by the record that have not resolved (a clinician's own reason is hers
    /// to judge and never blocks).
    pub unresolved: Vec<String>,
    /// She has reached the programme's end (满6岁).
    pub aged_out: bool,
}

impl FrailClosing {
    pub fn of(rules: &FrailRules, reasons: &[CaseReason], birth: NaiveDate, today: NaiveDate) -> FrailClosing {
        let years = u32::try_from(rules.management.age_out_years).unwrap_or(6);
        let aged_out = birth
            .checked_add_months(chrono::Months::new(12 * years))
            .is_some_and(|d| d <= today);
        FrailClosing {
            unresolved: reasons
                .iter()
                .filter(|r| r.resolved_on.is_none())
                .filter(|r| {
                    rules
                        .condition(&r.finding.code)
                        .is_none_or(|c| c.criterion != Criterion::Clinician)
                })
                .map(|r| r.finding.label.clone())
                .collect(),
            aged_out,
        }
    }
}

impl ClosingRule for FrailClosing {
    fn may_close(&self, reason: CloseReason) -> Result<(), String> {
        match reason {
            CloseReason::Recovered if self.unresolved.is_empty() => Ok(()),
            CloseReason::Recovered => Err(format!(
                "尚未达到结案标准：{}（以最近一次检查为准；转诊、失访等请选相应结案原因）",
                self.unresolved.join("、")
            )),
            CloseReason::Referred | CloseReason::LostToFollowUp | CloseReason::Death | CloseReason::MoveOutAccepted => {
                Ok(())
            }
            CloseReason::AgedOut if self.aged_out => Ok(()),
            CloseReason::AgedOut => Err("儿童未满6岁，不能以“满6岁”结案".into()),
            CloseReason::PostpartumCheckDone => Err("体弱儿专案不能以“产后42天检查完成”结案".into()),
        }
    }
}

/// The reasons a frail-child case closes for (恢复/好转, 转诊, 失访, 迁出, 死亡, 满6岁).
pub const CLOSE_REASONS: [CloseReason; 6] = [
    CloseReason::Recovered,
    CloseReason::Referred,
    CloseReason::LostToFollowUp,
    CloseReason::MoveOutAccepted,
    CloseReason::Death,
    CloseReason::AgedOut,
];

/// A frail-child case as stored.
#[derive(Debug, Clone, Serialize)]
pub struct FrailCase {
    pub id: String,
    pub child_id: String,
    pub status: CaseStatus,
    pub status_label: &'static str,
    pub reasons: Vec<CaseReason>,
    pub case_manager_id: Option<String>,
    pub follow_up_days: i32,
    pub next_follow_up: NaiveDate,
    pub last_contact: Option<NaiveDate>,
    pub opened_at: NaiveDateTime,
    pub opened_by: String,
    pub closed_at: Option<NaiveDateTime>,
    pub close_reason: Option<String>,
    pub moved_to: Option<String>,
    pub escalation: Escalation,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub version: i32,
}

impl FrailCase {
    /// The labels of the reasons not yet resolved (all of them when every one has).
    pub fn open_reasons(&self) -> Vec<&CaseReason> {
        let open: Vec<&CaseReason> = self.reasons.iter().filter(|r| r.resolved_on.is_none()).collect();
        if open.is_empty() {
            self.reasons.iter().collect()
        } else {
            open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn eval(sex: growth::Sex, age_days: u32, weight_kg: Option<f64>, length_cm: Option<f64>) -> growth::Evaluation {
        growth::evaluate(&growth::Measurement {
            sex,
            age_days,
            weight_kg,
            length_cm,
            position: None,
            oedema: false,
        })
        .unwrap()
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Option<&str>)> {
        f.iter().map(|f| (f.code.as_str(), f.band.as_deref())).collect()
    }

    #[test]
    fn the_embedded_rules_parse_and_every_condition_names_its_source_and_tag() {
        let r = FrailRules::parse(FRAIL_2012).unwrap();
        assert_eq!(r.id, "frail-child-2012");
        for c in &r.conditions {
            assert!(
                !c.source.is_empty() && !c.plan.is_empty() && !c.resolved.is_empty(),
                "{}",
                c.code
            );
        }
        assert!(
            !r.condition("obesity").unwrap().enabled,
            "肥胖 is a local option [L], off by default"
        );
        assert_eq!(rules().conditions.len(), r.conditions.len());
    }

    #[test]
    fn anaemia_by_age_with_the_severity_bands() {
        let r = rules();
        let at = |hb: i32, age_days: i64| {
            let v = VisitFacts {
                age_days,
                hb_g_l: Some(hb),
                ..VisitFacts::default()
            };
            r.visit_findings(&v)
        };
        let eight_months = 8 * 30 + 3;
        assert_eq!(codes(&at(95, eight_months)), [("anaemia", Some("mild"))]);
        assert_eq!(at(95, eight_months)[0].label, "贫血（轻度）");
        assert_eq!(
            at(95, eight_months)[0].follow_up_days,
            30,
            "re-check after a month of iron"
        );
        assert!(
            at(110, eight_months).is_empty(),
            "110 g/L is not anaemic at 6–59 months"
        );
        assert_eq!(codes(&at(109, eight_months)), [("anaemia", Some("mild"))]);
        assert_eq!(codes(&at(90, eight_months)), [("anaemia", Some("mild"))]);
        assert_eq!(codes(&at(89, eight_months)), [("anaemia", Some("moderate"))]);
        assert_eq!(codes(&at(60, eight_months)), [("anaemia", Some("moderate"))]);
        assert_eq!(codes(&at(59, eight_months)), [("anaemia", Some("severe"))]);
        assert_eq!(at(59, eight_months)[0].follow_up_days, 7);
        // From five years the threshold is 115 g/L (WHO; the safer reading).
        assert_eq!(codes(&at(112, 5 * 365 + 10)), [("anaemia", Some("mild"))]);
        assert!(at(112, 4 * 365).is_empty());
        // Under a month no threshold applies; 1–4 months < 90, 4–6 months < 100 [R].
        assert!(at(80, 20).is_empty());
        assert_eq!(codes(&at(89, 60)), [("anaemia", Some("moderate"))]);
        assert!(at(95, 60).is_empty());
        assert_eq!(codes(&at(95, 150)), [("anaemia", Some("mild"))]);
    }

    #[test]
    fn malnutrition_is_read_from_the_who_z_scores_with_moderate_and_severe() {
        let r = rules();
        // A girl of 90 days: WHO median ≈ 5.8 kg, −2 SD ≈ 4.5 kg, −3 SD ≈ 4.0 kg.
        for (w, want) in [(5.8, None), (4.3, Some("moderate")), (3.8, Some("severe"))] {
            let g = eval(growth::Sex::Female, 90, Some(w), None);
            let v = VisitFacts {
                age_days: 90,
                weight_kg: Some(w),
                growth: Some(&g),
                ..VisitFacts::default()
            };
            let f = r.visit_findings(&v);
            assert_eq!(
                codes(&f),
                want.map(|b| vec![("underweight", Some(b))]).unwrap_or_default(),
                "{w} kg"
            );
        }
        // Length too short for age and weight too low for length.
        let g = eval(growth::Sex::Male, 365, Some(7.0), Some(68.0));
        let v = VisitFacts {
            age_days: 365,
            weight_kg: Some(7.0),
            growth: Some(&g),
            ..VisitFacts::default()
        };
        let found: Vec<String> = r.visit_findings(&v).into_iter().map(|f| f.code).collect();
        assert!(
            found.contains(&"underweight".to_string()) && found.contains(&"stunting".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn rickets_opens_on_bone_signs_and_not_on_sweating_alone() {
        let r = rules();
        let signs = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let sweat = signs(&["night_sweats", "occipital_alopecia"]);
        let v = VisitFacts {
            age_days: 200,
            weight_kg: Some(7.5),
            rickets_signs: &sweat,
            ..VisitFacts::default()
        };
        assert!(r.visit_findings(&v).is_empty());
        let bone = signs(&["night_sweats", "rachitic_rosary"]);
        let v = VisitFacts {
            rickets_signs: &bone,
            ..v
        };
        let f = r.visit_findings(&v);
        assert_eq!(codes(&f), [("rickets", None)]);
        assert!(f[0].detail.contains("肋串珠"), "{}", f[0].detail);
    }

    #[test]
    fn preterm_and_low_birth_weight_open_at_birth_and_the_smallest_are_seen_most_often() {
        let r = rules();
        assert!(r.birth_findings(Some(259), Some(2500)).is_empty(), "37+0 and 2,500 g");
        assert_eq!(
            codes(&r.birth_findings(Some(258), Some(3000))),
            [("preterm", Some("preterm"))]
        );
        let f = r.birth_findings(Some(210), Some(1400));
        assert_eq!(
            codes(&f),
            [("preterm", Some("high_risk")), ("low_birth_weight", Some("very_low"))]
        );
        assert!(f.iter().all(|f| f.follow_up_days == 14));
        assert_eq!(r.birth_findings(None, Some(2400))[0].follow_up_days, 30);
    }

    #[test]
    fn growth_faltering_between_two_weighings_far_enough_apart() {
        let r = rules();
        let sex = growth::Sex::Male;
        let a = eval(sex, 120, Some(7.0), None);
        let b = eval(sex, 150, Some(7.0), None);
        let prev = EarlierWeighing {
            age_days: 120,
            weight_kg: 7.0,
            growth: Some(a.clone()),
        };
        let v = VisitFacts {
            age_days: 150,
            weight_kg: Some(7.0),
            growth: Some(&b),
            previous: Some(prev.clone()),
            ..VisitFacts::default()
        };
        let f = r.visit_findings(&v);
        assert_eq!(codes(&f), [("faltering", None)]);
        assert!(f[0].detail.contains("体重不增"), "{}", f[0].detail);
        // Two weighings a few days apart tell nothing (scale noise).
        let close = EarlierWeighing {
            age_days: 145,
            ..prev.clone()
        };
        let v2 = VisitFacts {
            previous: Some(close),
            ..v.clone()
        };
        assert!(r.visit_findings(&v2).is_empty());
        // Crossing two major centile lines: from +1 to below −1 SD.
        let hi = eval(sex, 90, Some(6.5), None);
        let lo = eval(sex, 180, Some(7.0), None);
        let v3 = VisitFacts {
            age_days: 180,
            weight_kg: Some(7.0),
            growth: Some(&lo),
            previous: Some(EarlierWeighing {
                age_days: 90,
                weight_kg: 6.5,
                growth: Some(hi.clone()),
            }),
            ..VisitFacts::default()
        };
        let f = r.visit_findings(&v3);
        assert_eq!(codes(&f), [("faltering", None)], "gaining, but too slowly: {f:?}");
        assert!(f[0].detail.contains("主百分位线"), "{}", f[0].detail);
    }

    #[test]
    fn reasons_merge_tighten_the_interval_and_resolve_on_a_later_visit() {
        let r = rules();
        let mut reasons = Vec::new();
        let mild = r.visit_findings(&VisitFacts {
            age_days: 240,
            hb_g_l: Some(95),
            ..VisitFacts::default()
        });
        assert_eq!(merge(&mut reasons, &mild, d("2026-06-01"), "visit"), ["贫血（轻度）"]);
        assert_eq!(interval(&reasons), 30);
        let severe = r.visit_findings(&VisitFacts {
            age_days: 250,
            hb_g_l: Some(55),
            ..VisitFacts::default()
        });
        assert_eq!(merge(&mut reasons, &severe, d("2026-06-11"), "visit"), ["贫血（重度）"]);
        assert_eq!(reasons.len(), 1);
        assert_eq!(interval(&reasons), 7, "a worse band tightens the follow-up");
        let closing = FrailClosing::of(r, &reasons, d("2025-10-01"), d("2026-06-11"));
        assert!(closing.may_close(CloseReason::Recovered).is_err());
        let ok = VisitFacts {
            age_days: 280,
            hb_g_l: Some(118),
            ..VisitFacts::default()
        };
        let found = r.visit_findings(&ok);
        assert_eq!(resolve(r, &mut reasons, &ok, &found, d("2026-07-11")), ["贫血（重度）"]);
        let closing = FrailClosing::of(r, &reasons, d("2025-10-01"), d("2026-07-11"));
        assert_eq!(closing.may_close(CloseReason::Recovered), Ok(()));
        assert!(closing.may_close(CloseReason::AgedOut).is_err());
        assert!(FrailClosing::of(r, &reasons, d("2020-01-01"), d("2026-01-01")).aged_out);
        // A visit that measured no Hb tells nothing of anaemia.
        let mut again = reasons.clone();
        again[0].resolved_on = None;
        let no_hb = VisitFacts {
            age_days: 300,
            weight_kg: Some(8.0),
            ..VisitFacts::default()
        };
        assert!(resolve(r, &mut again, &no_hb, &[], d("2026-08-01")).is_empty());
    }

    #[test]
    fn a_clinician_opens_any_enabled_condition_by_hand_and_her_judgement_never_blocks_closing() {
        let r = rules();
        let f = r.manual_finding("other", "先天性心脏病（室间隔缺损）").unwrap();
        assert_eq!(f.label, "其他（医生判断）");
        assert_eq!(
            r.manual_finding("anaemia", "外院 Hb 92").unwrap().label,
            "贫血（医生判断）"
        );
        assert!(r.manual_finding("obesity", "x").is_none(), "not enabled");
        assert!(r.manual_finding("nonsense", "x").is_none());
        let mut reasons = Vec::new();
        merge(&mut reasons, &[f], d("2026-01-01"), "manual");
        let closing = FrailClosing::of(r, &reasons, d("2025-01-01"), d("2026-02-01"));
        assert_eq!(closing.may_close(CloseReason::Recovered), Ok(()));
        assert!(closing.may_close(CloseReason::PostpartumCheckDone).is_err());
    }

    #[test]
    fn a_province_switches_obesity_on_in_its_data() {
        let text = FRAIL_2012.replace("enabled = false", "enabled = true");
        let r = FrailRules::parse(&text).unwrap();
        let g = eval(growth::Sex::Female, 365, Some(12.0), Some(72.0));
        let v = VisitFacts {
            age_days: 365,
            weight_kg: Some(12.0),
            growth: Some(&g),
            ..VisitFacts::default()
        };
        assert!(r.visit_findings(&v).iter().any(|f| f.code == "obesity"), "{:?}", g);
        assert!(rules().visit_findings(&v).iter().all(|f| f.code != "obesity"));
    }

    #[test]
    fn broken_rule_data_is_refused() {
        let bad = FRAIL_2012.replace("indicator = \"weight_for_age\"", "indicator = \"weight\"");
        assert!(FrailRules::parse(&bad).unwrap_err().contains("indicator"));
        let bad = FRAIL_2012.replace("escalate_district_after_days = 14", "escalate_district_after_days = 3");
        assert!(FrailRules::parse(&bad).is_err());
        let bad = FRAIL_2012.replace("\"wrist_widening\"", "\"wrist\"");
        assert!(FrailRules::parse(&bad).is_err());
    }
}
