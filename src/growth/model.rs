//! WHO 2006 Child Growth Standards: z-scores, flags, classification, curves. Pure: numbers in,
//! numbers out; the LMS tables are embedded from `rules/growth/` and parsed once.
//!
//! Every rule below names its source. "R anthro" is WHO's R package `anthro` (the code WHO Anthro
//! and WHO's Anthro Survey Analyser run on, github.com/WorldHealthOrganization/anthro, files
//! `R/z-score-*.R`); "igrowup" is WHO's earlier igrowup macros (SAS/SPSS/Stata/R), whose R example
//! survey is the reference data of our comparison test; "TR" is WHO Multicentre Growth Reference
//! Study Group, *WHO Child Growth Standards: Methods and development* (2006), chapter 7
//! "Computation of centiles and z-scores".

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The oldest age the standards cover, in days (the WHO daily tables run 0–1856 days; igrowup
/// computes through 1856 days. R anthro ≥ 0.9.3 stops at < 60 months = 1826 days, see mod docs).
pub const MAX_AGE_DAYS: u32 = 1856;
/// From this age (24 months) the standards are height-based (standing), below it length-based
/// (lying): R anthro `adjust_lenhei` and the wfl/wfh choice (`age_in_days < 731`).
pub const HEIGHT_FROM_DAYS: u32 = 731;
/// Lying length is on average 0.7 cm more than standing height (TR §3.1; R anthro `adjust_lenhei`).
pub const LYING_MINUS_STANDING_CM: f64 = 0.7;
/// Days per month as R anthro converts (`age_in_days / 30.4375`).
const DAYS_PER_MONTH: f64 = 30.4375;
/// Weight-for-length covers 45–110 cm (lying), weight-for-height 65–120 cm (standing): the extent
/// of the WHO tables and R anthro's `valid_zscore` in `anthro_zscore_weight_for_lenhei`.
pub const WEIGHT_FOR_LENGTH_CM: (f64, f64) = (45.0, 110.0);
pub const WEIGHT_FOR_HEIGHT_CM: (f64, f64) = (65.0, 120.0);
/// Input guards (not clinical rules): a value beyond these is a unit or typing error (grams or
/// millimetres), refused rather than turned into an extreme z-score.
const MAX_WEIGHT_KG: f64 = 100.0;
const MAX_LENGTH_CM: f64 = 200.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Sex {
    Male,
    Female,
}

impl TryFrom<String> for Sex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "male" => Ok(Sex::Male),
            "female" => Ok(Sex::Female),
            _ => Err(format!("sex must be \"male\" or \"female\", got {s:?}")),
        }
    }
}

impl Sex {
    fn index(self) -> usize {
        match self {
            Sex::Male => 0,
            Sex::Female => 1,
        }
    }
}

/// How the length was measured: lying (recumbent length) or standing (height).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Position {
    Lying,
    Standing,
}

impl TryFrom<String> for Position {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "lying" => Ok(Position::Lying),
            "standing" => Ok(Position::Standing),
            _ => Err(format!("position must be \"lying\" or \"standing\", got {s:?}")),
        }
    }
}

/// The WHO indicators. Length-for-age is the length/height-for-age standard (length under 731
/// days, height from then on); weight-for-length and weight-for-height are separate tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    WeightForAge,
    LengthForAge,
    WeightForLength,
    WeightForHeight,
    BmiForAge,
}

impl Indicator {
    pub fn label_zh(self) -> &'static str {
        match self {
            Indicator::WeightForAge => "年龄别体重",
            Indicator::LengthForAge => "年龄别身长/身高",
            Indicator::WeightForLength => "身长别体重",
            Indicator::WeightForHeight => "身高别体重",
            Indicator::BmiForAge => "年龄别BMI",
        }
    }

    /// Weight-based indicators get the restricted computation beyond ±3 SD (TR ch. 7; R anthro
    /// `compute_zscore_adjusted` for wfa, wfl/wfh and BMI; length-for-age uses plain LMS, L = 1).
    fn restricted(self) -> bool {
        !matches!(self, Indicator::LengthForAge)
    }

    /// WHO's limits for implausible z-scores (R anthro: `flen` |z| > 6, `fwei` z < −6 or z > 5,
    /// `fwfl` and `fbmi` |z| > 5; the same as WHO Anthro and igrowup).
    pub fn plausible_range(self) -> (f64, f64) {
        match self {
            Indicator::LengthForAge => (-6.0, 6.0),
            Indicator::WeightForAge => (-6.0, 5.0),
            Indicator::WeightForLength | Indicator::WeightForHeight | Indicator::BmiForAge => (-5.0, 5.0),
        }
    }
}

/// One child's measurement. `length_cm` is the value as measured, lying or standing; `position`
/// says which (when absent: lying under 731 days, standing from then on, as R anthro imputes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub sex: Sex,
    #[serde(deserialize_with = "fields::age_days")]
    pub age_days: u32,
    #[serde(default, deserialize_with = "fields::weight_kg")]
    pub weight_kg: Option<f64>,
    #[serde(default, deserialize_with = "fields::length_cm")]
    pub length_cm: Option<f64>,
    #[serde(default)]
    pub position: Option<Position>,
    /// Bilateral pitting oedema: weight-based z-scores are not computed (R anthro `oedema`).
    #[serde(default)]
    pub oedema: bool,
}

/// Number fields whose errors name the field ("invalid type: string, expected weight_kg as a
/// number"), for the command line and JSON callers.
mod fields {
    use std::fmt;

    use serde::de::{self, Deserializer, Unexpected, Visitor};

    struct Number {
        field: &'static str,
        whole: bool,
    }

    impl Visitor<'_> for Number {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            let kind = if self.whole { "a whole number" } else { "a number" };
            write!(f, "{} as {kind}", self.field)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if self.whole && v.fract() != 0.0 {
                return Err(E::invalid_value(Unexpected::Float(v), &self));
            }
            Ok(Some(v))
        }
    }

    pub fn weight_kg<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(Number {
            field: "weight_kg",
            whole: false,
        })
    }

    pub fn length_cm<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(Number {
            field: "length_cm",
            whole: false,
        })
    }

    pub fn age_days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let days = d
            .deserialize_any(Number {
                field: "age_days",
                whole: true,
            })?
            .ok_or_else(|| de::Error::custom("age_days is required"))?;
        if !(0.0..=f64::from(u32::MAX)).contains(&days) {
            return Err(de::Error::custom(format!("age_days must be 0 or more, got {days}")));
        }
        Ok(days as u32)
    }
}

/// WHO's nutritional findings from the z-scores (WHO Training Course on Child Growth Assessment,
/// 2008, "Interpreting growth indicators"; WHO/UNICEF prevalence cut-offs). Bands are exclusive:
/// a z of −3.4 is severe stunting only (it counts in "stunting < −2" prevalence as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    SevereUnderweight,
    Underweight,
    SevereStunting,
    Stunting,
    SevereWasting,
    Wasting,
    PossibleRiskOfOverweight,
    Overweight,
    Obesity,
}

impl Finding {
    pub fn label_zh(self) -> &'static str {
        match self {
            Finding::SevereUnderweight => "重度低体重",
            Finding::Underweight => "低体重",
            Finding::SevereStunting => "重度生长迟缓",
            Finding::Stunting => "生长迟缓",
            Finding::SevereWasting => "重度消瘦",
            Finding::Wasting => "消瘦",
            Finding::PossibleRiskOfOverweight => "可能有超重风险",
            Finding::Overweight => "超重",
            Finding::Obesity => "肥胖",
        }
    }
}

/// What a finding rests on: the z-score, or bilateral oedema (R anthro: oedema children count as
/// < −3 SD for the weight-based indicators in prevalence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    ZScore,
    Oedema,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub code: Finding,
    pub label: &'static str,
    pub indicator: Indicator,
    pub z: Option<f64>,
    pub basis: Basis,
}

/// Something to check before trusting the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Flag {
    /// The z-score is outside WHO's plausible range: most likely a measurement or entry error.
    ImplausibleZ {
        indicator: Indicator,
        z: f64,
        low: f64,
        high: f64,
    },
    /// Standing height under 9 months is implausible; R anthro (`c9mo_flag`) then ignores the
    /// stated position: the value is taken as lying length, without the +0.7 cm.
    StandingUnderNineMonths,
}

/// The z-scores (2 decimals, `None` where the indicator does not apply) and what follows from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub weight_for_age_z: Option<f64>,
    pub length_for_age_z: Option<f64>,
    /// Weight-for-length under 731 days, weight-for-height from 731 days: which one is
    /// `weight_for_length_indicator`.
    pub weight_for_length_z: Option<f64>,
    pub bmi_for_age_z: Option<f64>,
    pub weight_for_length_indicator: Option<Indicator>,
    /// The position the standards take the length in at this age (lying under 731 days).
    pub position: Option<Position>,
    /// The length after the ±0.7 cm correction: what length-for-age, weight-for-length/height
    /// and BMI use.
    pub adjusted_length_cm: Option<f64>,
    /// Weight / (adjusted length in m)², 2 decimals.
    pub bmi: Option<f64>,
    pub classification: Vec<Classification>,
    pub flags: Vec<Flag>,
}

/// The z-scores, flags and findings of one measurement; `Err` names the first unusable input.
pub fn evaluate(m: &Measurement) -> Result<Evaluation, String> {
    let standards = standards()?;
    if m.age_days > MAX_AGE_DAYS {
        return Err(format!(
            "age_days {} is beyond the WHO 2006 standards (0–{MAX_AGE_DAYS} days)",
            m.age_days
        ));
    }
    let weight = m
        .weight_kg
        .map(|w| checked("weight_kg", w, MAX_WEIGHT_KG))
        .transpose()?;
    let length = m
        .length_cm
        .map(|l| checked("length_cm", l, MAX_LENGTH_CM))
        .transpose()?;
    let sex = m.sex.index();
    let age = m.age_days;
    let day = age as usize;
    let height_based = age >= HEIGHT_FROM_DAYS;
    let mut flags = Vec::new();

    // Position and the ±0.7 cm correction (R anthro `anthro_zscores` and `adjust_lenhei`).
    let mut measured = m.position;
    if length.is_some() && measured == Some(Position::Standing) && f64::from(age) / DAYS_PER_MONTH < 9.0 {
        flags.push(Flag::StandingUnderNineMonths);
        measured = None;
    }
    let adjusted = length
        .map(|l| match (measured, height_based) {
            (Some(Position::Standing), false) => l + LYING_MINUS_STANDING_CM,
            (Some(Position::Lying), true) => l - LYING_MINUS_STANDING_CM,
            _ => l,
        })
        // ±0.7 in binary floating point leaves noise (45.0 as 44.99999999999999) that would
        // move a value across a table edge; a micrometre grid removes it.
        .map(|l| (l * 1e4).round() / 1e4)
        // R anthro: a measure ≤ 0 gives no z-score.
        .filter(|l| *l > 0.0);
    let weight_z = weight.filter(|_| !m.oedema);

    let waz = weight_z.and_then(|w| standards.wfa[sex].at_day(day).map(|t| t.z(w, true)));
    let haz = adjusted.and_then(|l| standards.lhfa[sex].at_day(day).map(|t| t.z(l, false)));
    let wfl_indicator = if height_based {
        Indicator::WeightForHeight
    } else {
        Indicator::WeightForLength
    };
    let (wfl_table, (low_cm, high_cm)) = if height_based {
        (&standards.wfh[sex], WEIGHT_FOR_HEIGHT_CM)
    } else {
        (&standards.wfl[sex], WEIGHT_FOR_LENGTH_CM)
    };
    let in_band = adjusted.filter(|l| (low_cm..=high_cm).contains(l));
    let whz = match (weight_z, in_band) {
        (Some(w), Some(l)) => wfl_table.at_length(l).map(|t| t.z(w, true)),
        _ => None,
    };
    let bmi = match (weight, adjusted) {
        (Some(w), Some(l)) => Some(w / (l / 100.0).powi(2)),
        _ => None,
    };
    let bmiz = match (bmi, weight_z) {
        (Some(b), Some(_)) => standards.bmi[sex].at_day(day).map(|t| t.z(b, true)),
        _ => None,
    };

    let (waz, haz, whz, bmiz) = (waz.map(round2), haz.map(round2), whz.map(round2), bmiz.map(round2));
    // WHO flags and classifies the rounded z-scores (R anthro rounds before `flag_zscore`).
    for (indicator, z) in [
        (Indicator::LengthForAge, haz),
        (Indicator::WeightForAge, waz),
        (wfl_indicator, whz),
        (Indicator::BmiForAge, bmiz),
    ] {
        if let Some(z) = z {
            let (low, high) = indicator.plausible_range();
            if z < low || z > high {
                flags.push(Flag::ImplausibleZ {
                    indicator,
                    z,
                    low,
                    high,
                });
            }
        }
    }
    let mut classification = Vec::new();
    for (indicator, z) in [
        (Indicator::WeightForAge, waz),
        (Indicator::LengthForAge, haz),
        (wfl_indicator, whz),
    ] {
        if let Some(code) = z.and_then(|z| classify(indicator, z)) {
            classification.push(Classification {
                code,
                label: code.label_zh(),
                indicator,
                z,
                basis: Basis::ZScore,
            });
        }
    }
    if m.oedema {
        for (code, indicator) in [
            (Finding::SevereUnderweight, Indicator::WeightForAge),
            (Finding::SevereWasting, wfl_indicator),
        ] {
            classification.push(Classification {
                code,
                label: code.label_zh(),
                indicator,
                z: None,
                basis: Basis::Oedema,
            });
        }
    }
    Ok(Evaluation {
        weight_for_age_z: waz,
        length_for_age_z: haz,
        weight_for_length_z: whz,
        bmi_for_age_z: bmiz,
        weight_for_length_indicator: whz.map(|_| wfl_indicator),
        position: adjusted.map(|_| {
            if height_based {
                Position::Standing
            } else {
                Position::Lying
            }
        }),
        adjusted_length_cm: adjusted.map(round2),
        bmi: bmi.map(round2),
        classification,
        flags,
    })
}

/// WHO cut-offs on a (rounded) z-score: below −2 / −3, above +1 / +2 / +3 (strict, as WHO's
/// "below −2 SD"). Length-for-age and weight-for-age have no upper findings (WHO: a high
/// weight-for-age is judged from weight-for-length/height or BMI).
pub fn classify(indicator: Indicator, z: f64) -> Option<Finding> {
    match indicator {
        Indicator::WeightForAge if z < -3.0 => Some(Finding::SevereUnderweight),
        Indicator::WeightForAge if z < -2.0 => Some(Finding::Underweight),
        Indicator::LengthForAge if z < -3.0 => Some(Finding::SevereStunting),
        Indicator::LengthForAge if z < -2.0 => Some(Finding::Stunting),
        Indicator::WeightForLength | Indicator::WeightForHeight => {
            if z < -3.0 {
                Some(Finding::SevereWasting)
            } else if z < -2.0 {
                Some(Finding::Wasting)
            } else if z > 3.0 {
                Some(Finding::Obesity)
            } else if z > 2.0 {
                Some(Finding::Overweight)
            } else if z > 1.0 {
                Some(Finding::PossibleRiskOfOverweight)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The curve of one indicator at z-score `z` (e.g. −3…+3 SD, or ±1.88 for the 3rd/97th centile)
/// for drawing charts: `(x, value)` per table row, x in days of age (wfa, lhfa, BMI) or cm (wfl
/// 45–110, wfh 65–120, by 0.1). Values are from the LMS: M·(1 + L·S·z)^(1/L) (TR ch. 7); beyond
/// ±3 SD the weight-based curves continue linearly by the SD2–SD3 distance, as the restricted
/// z-score computation does, so a child plotted at its z lies on the curve. Empty when the
/// tables do not load.
pub fn curve(indicator: Indicator, sex: Sex, z: f64) -> Vec<(f64, f64)> {
    let Ok(standards) = standards() else {
        return Vec::new();
    };
    let sex = sex.index();
    let table = match indicator {
        Indicator::WeightForAge => &standards.wfa[sex],
        Indicator::LengthForAge => &standards.lhfa[sex],
        Indicator::WeightForLength => &standards.wfl[sex],
        Indicator::WeightForHeight => &standards.wfh[sex],
        Indicator::BmiForAge => &standards.bmi[sex],
    };
    let restricted = indicator.restricted();
    table
        .rows
        .iter()
        .enumerate()
        .map(|(i, lms)| (table.x(i), lms.value_at(z, restricted)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// WHO's major centile lines of the growth charts, as z-scores: 3rd, 15th, 50th, 85th, 97th
/// (WHO Child Growth Standards charts; z = Φ⁻¹(p)).
pub const MAJOR_CENTILES_Z: [f64; 5] = [-1.880_794, -1.036_433, 0.0, 1.036_433, 1.880_794];

/// How many major centile lines a child's z-score fell through between two measurements (a line
/// counts when the earlier z was on or above it and the later one below it).
pub fn major_centiles_crossed_down(earlier_z: f64, later_z: f64) -> usize {
    MAJOR_CENTILES_Z
        .iter()
        .filter(|&&line| earlier_z >= line && later_z < line)
        .count()
}

/// "Crossing down two major centile lines" between two measurements of the same indicator (WHO
/// Training Course on Child Growth Assessment, "Interpreting growth indicators": a growth line
/// crossing lines downwards may indicate a problem; two major lines is the usual referral point
/// of centile charts).
pub fn crossed_down_two_major_centiles(earlier_z: f64, later_z: f64) -> bool {
    major_centiles_crossed_down(earlier_z, later_z) >= 2
}

/// A weighing: the child's age in days and the weight.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weighing {
    pub age_days: u32,
    pub weight_kg: f64,
}

/// No weight gain between two visits (a flat or falling weight line: WHO Training Course on Child
/// Growth Assessment, "Interpreting growth indicators"; 体重不增 in the child health service
/// norms). `Err` when the weighings are not in time order or a weight is not usable.
pub fn no_weight_gain(earlier: Weighing, later: Weighing) -> Result<bool, String> {
    if later.age_days <= earlier.age_days {
        return Err(format!(
            "the later weighing (day {}) must come after the earlier one (day {})",
            later.age_days, earlier.age_days
        ));
    }
    let before = checked("weight_kg", earlier.weight_kg, MAX_WEIGHT_KG)?;
    let after = checked("weight_kg", later.weight_kg, MAX_WEIGHT_KG)?;
    // Weights are recorded to 0.01 kg at best; a difference below a microgram is float noise.
    Ok(after - before <= 1e-9)
}

fn checked(field: &str, value: f64, max: f64) -> Result<f64, String> {
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("{field} must be a positive number, got {value}"));
    }
    if value > max {
        return Err(format!(
            "{field} {value} is not plausible for a child under 5 (more than {max})"
        ));
    }
    Ok(value)
}

/// Two decimals, half away from zero, never −0.
fn round2(x: f64) -> f64 {
    let r = (x * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

/// The Box-Cox power, median and coefficient of variation at one age or length (TR ch. 7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lms {
    pub l: f64,
    pub m: f64,
    pub s: f64,
}

impl Lms {
    /// The measurement at z-score `z`: M·(1 + L·S·z)^(1/L) (TR ch. 7, "SD" curves).
    fn sd(self, z: f64) -> f64 {
        if self.l == 0.0 {
            self.m * (self.s * z).exp()
        } else {
            self.m * (1.0 + self.l * self.s * z).powf(1.0 / self.l)
        }
    }

    /// The z-score of `y`: ((y/M)^L − 1)/(L·S); with `restricted` beyond ±3 SD the distance from
    /// SD3 is measured in SD2–SD3 units: z = 3 + (y − SD3)/(SD3 − SD2), and below −3 likewise
    /// (TR ch. 7 "restricted application of the LMS method"; R anthro `compute_zscore_adjusted`).
    pub(crate) fn z(self, y: f64, restricted: bool) -> f64 {
        let z = if self.l == 0.0 {
            (y / self.m).ln() / self.s
        } else {
            ((y / self.m).powf(self.l) - 1.0) / (self.l * self.s)
        };
        if !restricted {
            z
        } else if z > 3.0 {
            let sd3 = self.sd(3.0);
            3.0 + (y - sd3) / (sd3 - self.sd(2.0))
        } else if z < -3.0 {
            let sd3neg = self.sd(-3.0);
            -3.0 + (y - sd3neg) / (self.sd(-2.0) - sd3neg)
        } else {
            z
        }
    }

    /// The inverse of `z`: the measurement whose z-score is `z`.
    fn value_at(self, z: f64, restricted: bool) -> f64 {
        if restricted && z > 3.0 {
            let sd3 = self.sd(3.0);
            sd3 + (z - 3.0) * (sd3 - self.sd(2.0))
        } else if restricted && z < -3.0 {
            let sd3neg = self.sd(-3.0);
            sd3neg + (z + 3.0) * (self.sd(-2.0) - sd3neg)
        } else {
            self.sd(z)
        }
    }
}

/// One LMS table: row i is at x = `first + i·step` (days, or 0.1 cm in tenths of a cm).
#[derive(Debug)]
pub(crate) struct Table {
    first: u32,
    tenths: bool,
    rows: Vec<Lms>,
}

impl Table {
    fn x(&self, i: usize) -> f64 {
        let x = f64::from(self.first) + i as f64;
        if self.tenths { x / 10.0 } else { x }
    }

    pub(crate) fn at_day(&self, day: usize) -> Option<Lms> {
        self.rows.get(day).copied()
    }

    /// L, M and S at a length between two rows, each linear between the rows either side
    /// (R anthro `anthro_zscore_weight_for_lenhei`: low = trunc(10x)/10, upp = low + 0.1,
    /// diff = (x − low)/0.1; the row itself when diff = 0). O(1).
    pub(crate) fn at_length(&self, cm: f64) -> Option<Lms> {
        let tenths = cm * 10.0;
        let low = tenths.trunc();
        let diff = tenths - low;
        let i = usize::try_from(low as i64 - i64::from(self.first)).ok()?;
        let a = *self.rows.get(i)?;
        if diff <= 0.0 {
            return Some(a);
        }
        let b = *self.rows.get(i + 1)?;
        Some(Lms {
            l: a.l + diff * (b.l - a.l),
            m: a.m + diff * (b.m - a.m),
            s: a.s + diff * (b.s - a.s),
        })
    }
}

/// The embedded WHO tables, `[male, female]` each.
#[derive(Debug)]
pub(crate) struct Standards {
    pub wfa: [Table; 2],
    pub lhfa: [Table; 2],
    pub wfl: [Table; 2],
    pub wfh: [Table; 2],
    pub bmi: [Table; 2],
}

const TABLES: [(&str, &str); 10] = [
    ("wfa-male", include_str!("../../rules/growth/wfa-male.csv")),
    ("wfa-female", include_str!("../../rules/growth/wfa-female.csv")),
    ("lhfa-male", include_str!("../../rules/growth/lhfa-male.csv")),
    ("lhfa-female", include_str!("../../rules/growth/lhfa-female.csv")),
    ("wfl-male", include_str!("../../rules/growth/wfl-male.csv")),
    ("wfl-female", include_str!("../../rules/growth/wfl-female.csv")),
    ("wfh-male", include_str!("../../rules/growth/wfh-male.csv")),
    ("wfh-female", include_str!("../../rules/growth/wfh-female.csv")),
    ("bmi-male", include_str!("../../rules/growth/bmi-male.csv")),
    ("bmi-female", include_str!("../../rules/growth/bmi-female.csv")),
];

pub(crate) fn standards() -> Result<&'static Standards, String> {
    static STANDARDS: OnceLock<Result<Standards, String>> = OnceLock::new();
    STANDARDS.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Standards, String> {
    let mut tables = Vec::with_capacity(TABLES.len());
    for (name, text) in TABLES {
        let (first, last, tenths) = match name.split('-').next() {
            Some("wfl") => (450, 1100, true),
            Some("wfh") => (650, 1200, true),
            _ => (0, MAX_AGE_DAYS, false),
        };
        tables.push(parse(name, text, first, last, tenths)?);
    }
    let mut t = tables.into_iter();
    let mut pair = || -> Result<[Table; 2], String> {
        match (t.next(), t.next()) {
            (Some(male), Some(female)) => Ok([male, female]),
            _ => Err("growth tables: a table is missing".to_string()),
        }
    };
    Ok(Standards {
        wfa: pair()?,
        lhfa: pair()?,
        wfl: pair()?,
        wfh: pair()?,
        bmi: pair()?,
    })
}

/// `x,l,m,s` rows after `#` comments and a header; x must run from `first` to `last` without a
/// gap (days, or cm by 0.1 when `tenths`), so that the row index is the lookup key.
fn parse(name: &str, text: &str, first: u32, last: u32, tenths: bool) -> Result<Table, String> {
    let mut rows = Vec::with_capacity((last - first + 1) as usize);
    let lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1);
    for (i, line) in lines.enumerate() {
        let bad = || format!("rules/growth/{name}.csv: bad row {line:?}");
        let mut cells = line.split(',');
        let mut next =
            || -> Result<f64, String> { cells.next().and_then(|c| c.trim().parse::<f64>().ok()).ok_or_else(bad) };
        let (x, l, m, s) = (next()?, next()?, next()?, next()?);
        let expected = f64::from(first) + i as f64;
        let key = if tenths { x * 10.0 } else { x };
        if (key - expected).abs() > 1e-6 || !(m > 0.0 && s > 0.0 && l.is_finite()) {
            return Err(format!(
                "{} (expected x = {})",
                bad(),
                if tenths { expected / 10.0 } else { expected }
            ));
        }
        rows.push(Lms { l, m, s });
    }
    if rows.len() != (last - first + 1) as usize {
        return Err(format!(
            "rules/growth/{name}.csv: {} rows, expected {}",
            rows.len(),
            last - first + 1
        ));
    }
    Ok(Table { first, tenths, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(sex: Sex, age_days: u32) -> Measurement {
        Measurement {
            sex,
            age_days,
            weight_kg: None,
            length_cm: None,
            position: None,
            oedema: false,
        }
    }

    fn with(m: Measurement, weight: Option<f64>, length: Option<f64>, position: Option<Position>) -> Evaluation {
        evaluate(&Measurement {
            weight_kg: weight,
            length_cm: length,
            position,
            ..m
        })
        .unwrap()
    }

    #[test]
    fn the_embedded_tables_load_whole() {
        let s = standards().unwrap();
        for i in 0..2 {
            assert_eq!(s.wfa[i].rows.len(), 1857);
            assert_eq!(s.lhfa[i].rows.len(), 1857);
            assert_eq!(s.bmi[i].rows.len(), 1857);
            assert_eq!(s.wfl[i].rows.len(), 651);
            assert_eq!(s.wfh[i].rows.len(), 551);
        }
        // First rows as WHO publishes them (wfa boys day 0; wfl girls 45.0 cm).
        assert_eq!(
            s.wfa[0].rows[0],
            Lms {
                l: 0.3487,
                m: 3.3464,
                s: 0.14602
            }
        );
        assert_eq!(
            s.wfl[1].rows[0],
            Lms {
                l: -0.3833,
                m: 2.4607,
                s: 0.09029
            }
        );
    }

    #[test]
    fn a_table_with_a_gap_is_refused() {
        let text = "# c\nday,l,m,s\n0,1,2,0.1\n2,1,2,0.1\n";
        assert!(parse("t", text, 0, 1, false).unwrap_err().contains("expected x = 1"));
        let short = "day,l,m,s\n0,1,2,0.1\n";
        assert!(
            parse("t", short, 0, 1, false)
                .unwrap_err()
                .contains("1 rows, expected 2")
        );
    }

    #[test]
    fn the_contract_example_gives_who_figures() {
        let e = with(child(Sex::Female, 365), Some(8.9), Some(74.0), Some(Position::Lying));
        // A girl on the medians at one year; WHO's published SD values and WHO's own z-scores are
        // checked against the same code in who_tests.
        assert_eq!(e.weight_for_age_z, Some(-0.04));
        assert_eq!(e.length_for_age_z, Some(0.0));
        assert_eq!(e.weight_for_length_z, Some(-0.07));
        assert_eq!(e.bmi_for_age_z, Some(-0.07));
        assert_eq!(e.bmi, Some(16.25));
        assert_eq!(e.weight_for_length_indicator, Some(Indicator::WeightForLength));
        assert_eq!(e.adjusted_length_cm, Some(74.0));
        assert!(e.classification.is_empty() && e.flags.is_empty());
    }

    /// Expectations from WHO's R anthro tests (tests/testthat/test-zscores.R).
    #[test]
    fn r_anthro_expectations_hold() {
        // "length for age uses adjusted lenhei": boy, 987 days, 72.86 cm lying → −6.09, flagged.
        let e = with(child(Sex::Male, 987), None, Some(72.86), Some(Position::Lying));
        assert_eq!(e.adjusted_length_cm, Some(72.16));
        assert_eq!(e.length_for_age_z, Some(-6.09));
        assert!(e.flags.contains(&Flag::ImplausibleZ {
            indicator: Indicator::LengthForAge,
            z: -6.09,
            low: -6.0,
            high: 6.0
        }));
        // "height measurements are used for age 24 months": girl, 24 months, 77.5 cm → −2.55.
        let e = with(child(Sex::Female, 731), None, Some(77.5), None);
        assert_eq!(e.length_for_age_z, Some(-2.55));
        assert_eq!(e.position, Some(Position::Standing));
        // "young children with measured standing will be adjusted": boy 60 cm standing at 8 months
        // (244 days) is taken as lying (−4.81, c9mo flag), at 9 months (274 days) gets +0.7 (−5.02).
        let e = with(child(Sex::Male, 244), None, Some(60.0), Some(Position::Standing));
        assert_eq!(e.adjusted_length_cm, Some(60.0));
        assert!((e.length_for_age_z.unwrap() + 4.81).abs() <= 0.01);
        assert!(e.flags.contains(&Flag::StandingUnderNineMonths));
        let e = with(child(Sex::Male, 274), None, Some(60.0), Some(Position::Standing));
        assert_eq!(e.adjusted_length_cm, Some(60.7));
        assert!((e.length_for_age_z.unwrap() + 5.02).abs() <= 0.01);
        assert!(!e.flags.contains(&Flag::StandingUnderNineMonths));
        // "adds adjusted lenhei": 730 days standing +0.7, 800 days lying −0.7, else unchanged.
        for (age, position, adjusted) in [
            (730, Position::Standing, 100.7),
            (800, Position::Standing, 100.0),
            (730, Position::Lying, 100.0),
            (800, Position::Lying, 99.3),
        ] {
            let e = with(child(Sex::Male, age), None, Some(100.0), Some(position));
            assert_eq!(e.adjusted_length_cm, Some(adjusted), "{age} {position:?}");
        }
    }

    #[test]
    fn the_corrected_length_feeds_weight_for_length_and_bmi() {
        // 84.3 cm standing at 700 days is 85.0 cm lying: same figures as 85.0 measured lying.
        let standing = with(child(Sex::Male, 700), Some(11.0), Some(84.3), Some(Position::Standing));
        let lying = with(child(Sex::Male, 700), Some(11.0), Some(85.0), Some(Position::Lying));
        assert_eq!(standing.adjusted_length_cm, Some(85.0));
        assert_eq!(standing.weight_for_length_z, lying.weight_for_length_z);
        assert_eq!(standing.bmi_for_age_z, lying.bmi_for_age_z);
        assert_eq!(standing.bmi, Some(15.22));
    }

    #[test]
    fn weight_for_length_or_height_is_chosen_by_age_within_its_band() {
        let at = |age, cm, position| with(child(Sex::Female, age), Some(9.0), Some(cm), Some(position));
        assert_eq!(
            at(730, 80.0, Position::Lying).weight_for_length_indicator,
            Some(Indicator::WeightForLength)
        );
        assert_eq!(
            at(731, 80.0, Position::Standing).weight_for_length_indicator,
            Some(Indicator::WeightForHeight)
        );
        // Band edges are inclusive (R anthro `lenhei >= 45 & lenhei <= 110`).
        assert!(at(10, 45.0, Position::Lying).weight_for_length_z.is_some());
        assert!(at(10, 44.9, Position::Lying).weight_for_length_z.is_none());
        assert!(at(700, 110.0, Position::Lying).weight_for_length_z.is_some());
        assert!(at(700, 110.1, Position::Lying).weight_for_length_z.is_none());
        assert!(at(800, 65.0, Position::Standing).weight_for_length_z.is_some());
        assert!(at(800, 64.9, Position::Standing).weight_for_length_z.is_none());
        assert!(at(800, 120.0, Position::Standing).weight_for_length_z.is_some());
        assert!(at(800, 120.1, Position::Standing).weight_for_length_z.is_none());
        // 44.3 cm standing at 300 days is 45.0 cm lying, inside the band despite float noise.
        let e = at(300, 44.3, Position::Standing);
        assert_eq!(e.adjusted_length_cm, Some(45.0));
        assert!(e.weight_for_length_z.is_some());
        // Outside the band the other z-scores still stand.
        let e = at(10, 44.0, Position::Lying);
        assert!(e.weight_for_length_z.is_none() && e.weight_for_length_indicator.is_none());
        assert!(e.length_for_age_z.is_some() && e.weight_for_age_z.is_some() && e.bmi_for_age_z.is_some());
    }

    #[test]
    fn lengths_between_rows_interpolate_l_m_and_s() {
        let t = &standards().unwrap().wfl[0];
        let (a, b) = (t.at_length(74.0).unwrap(), t.at_length(74.1).unwrap());
        let mid = t.at_length(74.05).unwrap();
        assert!((mid.m - (a.m + b.m) / 2.0).abs() < 1e-9);
        assert!((mid.s - (a.s + b.s) / 2.0).abs() < 1e-9);
        assert!((mid.l - (a.l + b.l) / 2.0).abs() < 1e-9);
        // Continuous at the rows, no step from rounding the length.
        let just_below = t.at_length(74.099_999_9).unwrap();
        assert!((just_below.m - b.m).abs() < 1e-6);
        assert!(t.at_length(110.05).is_none() && t.at_length(44.95).is_none());
        assert_eq!(t.at_length(110.0), Some(*t.rows.last().unwrap()));
    }

    #[test]
    fn weight_based_z_beyond_three_uses_the_sd23_distance() {
        let lms = standards().unwrap().wfa[0].at_day(365).unwrap();
        let (sd2, sd3) = (lms.sd(2.0), lms.sd(3.0));
        assert!((lms.z(sd3 + 0.5 * (sd3 - sd2), true) - 3.5).abs() < 1e-9);
        let (sd2neg, sd3neg) = (lms.sd(-2.0), lms.sd(-3.0));
        assert!((lms.z(sd3neg - (sd2neg - sd3neg), true) + 4.0).abs() < 1e-9);
        // Plain LMS would say otherwise (−4.12 for the −4 weight here).
        assert!((lms.z(sd3neg - (sd2neg - sd3neg), false) + 4.0).abs() > 0.1);
        // Within ±3 both agree.
        assert!((lms.z(lms.sd(1.5), true) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn flags_use_whos_limits_on_the_rounded_z() {
        let flagged = |ind: Indicator, z: f64| {
            let (low, high) = ind.plausible_range();
            z < low || z > high
        };
        assert!(flagged(Indicator::WeightForAge, -6.01) && !flagged(Indicator::WeightForAge, -6.0));
        assert!(flagged(Indicator::WeightForAge, 5.01) && !flagged(Indicator::WeightForAge, 5.0));
        assert!(flagged(Indicator::LengthForAge, 6.01) && !flagged(Indicator::LengthForAge, 5.5));
        assert!(flagged(Indicator::WeightForHeight, -5.01) && flagged(Indicator::BmiForAge, 5.01));
        // An absurd weight for a 1-year-old: flagged, and still classified.
        let e = with(child(Sex::Male, 365), Some(25.0), Some(75.0), Some(Position::Lying));
        let codes: Vec<_> = e.flags.iter().collect();
        assert!(codes.iter().any(|f| matches!(
            f,
            Flag::ImplausibleZ {
                indicator: Indicator::WeightForAge,
                ..
            }
        )));
        assert!(codes.iter().any(|f| matches!(
            f,
            Flag::ImplausibleZ {
                indicator: Indicator::WeightForLength,
                ..
            }
        )));
        assert!(e.classification.iter().any(|c| c.code == Finding::Obesity));
    }

    #[test]
    fn classification_bands_follow_who_cut_offs() {
        use Finding::*;
        let wfa = |z| classify(Indicator::WeightForAge, z);
        let hfa = |z| classify(Indicator::LengthForAge, z);
        let wfh = |z| classify(Indicator::WeightForHeight, z);
        assert_eq!(
            (wfa(-2.0), wfa(-2.01), wfa(-3.0), wfa(-3.01)),
            (None, Some(Underweight), Some(Underweight), Some(SevereUnderweight))
        );
        assert_eq!(
            (hfa(-2.01), hfa(-3.01), hfa(3.5)),
            (Some(Stunting), Some(SevereStunting), None)
        );
        assert_eq!(
            (wfh(-2.01), wfh(-3.01), wfh(1.0), wfh(1.01)),
            (Some(Wasting), Some(SevereWasting), None, Some(PossibleRiskOfOverweight))
        );
        assert_eq!(
            (wfh(2.0), wfh(2.01), wfh(3.0), wfh(3.01)),
            (
                Some(PossibleRiskOfOverweight),
                Some(Overweight),
                Some(Overweight),
                Some(Obesity)
            )
        );
        assert_eq!(classify(Indicator::WeightForLength, -2.5), Some(Wasting));
        assert_eq!(classify(Indicator::BmiForAge, -4.0), None);
        assert_eq!(
            (Underweight.label_zh(), SevereStunting.label_zh(), Obesity.label_zh()),
            ("低体重", "重度生长迟缓", "肥胖")
        );
    }

    #[test]
    fn a_wasted_stunted_child_gets_each_finding_once() {
        // Boy, 18 months (548 days), 71 cm lying, 6.8 kg: waz −4.11, haz −4.18, whz −3.04.
        let e = with(child(Sex::Male, 548), Some(6.8), Some(71.0), Some(Position::Lying));
        let codes: Vec<_> = e.classification.iter().map(|c| (c.code, c.label)).collect();
        assert_eq!(
            codes,
            [
                (Finding::SevereUnderweight, "重度低体重"),
                (Finding::SevereStunting, "重度生长迟缓"),
                (Finding::SevereWasting, "重度消瘦")
            ]
        );
        assert!(
            e.classification
                .iter()
                .all(|c| c.basis == Basis::ZScore && c.z.is_some())
        );
    }

    #[test]
    fn oedema_suppresses_weight_based_z_and_counts_as_severe() {
        let e = evaluate(&Measurement {
            weight_kg: Some(7.0),
            length_cm: Some(70.0),
            position: Some(Position::Lying),
            oedema: true,
            ..child(Sex::Female, 400)
        })
        .unwrap();
        assert_eq!(
            (e.weight_for_age_z, e.weight_for_length_z, e.bmi_for_age_z),
            (None, None, None)
        );
        assert!(e.length_for_age_z.is_some() && e.bmi.is_some());
        let found: Vec<_> = e
            .classification
            .iter()
            .filter(|c| c.basis == Basis::Oedema)
            .map(|c| c.code)
            .collect();
        assert_eq!(found, [Finding::SevereUnderweight, Finding::SevereWasting]);
    }

    #[test]
    fn unusable_input_is_refused_with_the_field_named() {
        let err = |m: Measurement| evaluate(&m).unwrap_err();
        assert!(err(child(Sex::Male, 1857)).contains("age_days 1857"));
        assert!(evaluate(&child(Sex::Male, 1856)).is_ok());
        let m = child(Sex::Male, 100);
        assert!(
            err(Measurement {
                weight_kg: Some(-1.0),
                ..m.clone()
            })
            .contains("weight_kg must be a positive number")
        );
        assert!(
            err(Measurement {
                weight_kg: Some(0.0),
                ..m.clone()
            })
            .contains("weight_kg")
        );
        assert!(
            err(Measurement {
                weight_kg: Some(f64::NAN),
                ..m.clone()
            })
            .contains("weight_kg")
        );
        assert!(
            err(Measurement {
                weight_kg: Some(8900.0),
                ..m.clone()
            })
            .contains("not plausible")
        );
        assert!(
            err(Measurement {
                length_cm: Some(0.0),
                ..m.clone()
            })
            .contains("length_cm")
        );
        assert!(
            err(Measurement {
                length_cm: Some(740.0),
                ..m
            })
            .contains("length_cm")
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = |j: &str| serde_json::from_str::<Measurement>(j).unwrap_err().to_string();
        assert!(err(r#"{"sex":"x","age_days":1}"#).contains(r#"sex must be "male" or "female", got "x""#));
        assert!(err(r#"{"sex":"male","age_days":1,"position":"up"}"#).contains("position must be"));
        assert!(err(r#"{"sex":"male","age_days":-1}"#).contains("age_days must be 0 or more"));
        assert!(err(r#"{"sex":"male","age_days":1.5}"#).contains("expected age_days as a whole number"));
        assert!(err(r#"{"sex":"male","age_days":"1"}"#).contains("age_days"));
        assert!(err(r#"{"sex":"male","age_days":null}"#).contains("age_days is required"));
        assert!(err(r#"{"sex":"male"}"#).contains("missing field `age_days`"));
        assert!(err(r#"{"sex":"male","age_days":1,"weight_kg":"8"}"#).contains("expected weight_kg as a number"));
        assert!(err(r#"{"sex":"male","age_days":1,"weight":8}"#).contains("unknown field `weight`"));
        let m: Measurement =
            serde_json::from_str(r#"{"sex":"male","age_days":30.0,"weight_kg":4,"length_cm":null}"#).unwrap();
        assert_eq!(
            (m.age_days, m.weight_kg, m.length_cm, m.oedema),
            (30, Some(4.0), None, false)
        );
    }

    #[test]
    fn nothing_measured_gives_nulls_not_errors() {
        let e = evaluate(&child(Sex::Female, 0)).unwrap();
        assert_eq!(e.weight_for_age_z, None);
        assert_eq!(e.length_for_age_z, None);
        assert_eq!(e.position, None);
        let e = with(child(Sex::Female, 0), Some(3.2322), None, None);
        assert_eq!(e.weight_for_age_z, Some(0.0));
        assert_eq!((e.weight_for_length_z, e.bmi_for_age_z, e.bmi), (None, None, None));
    }

    #[test]
    fn round2_never_gives_negative_zero() {
        assert_eq!(round2(-0.001).to_string(), "0");
        assert_eq!(round2(-0.005), -0.01);
        assert_eq!(round2(1.234), 1.23);
    }

    #[test]
    fn curves_give_the_lms_values_and_extend_linearly_past_three() {
        let median = curve(Indicator::WeightForAge, Sex::Male, 0.0);
        assert_eq!(median.len(), 1857);
        assert_eq!(median[0], (0.0, 3.3464));
        let wfl = curve(Indicator::WeightForLength, Sex::Female, 0.0);
        assert_eq!((wfl.len(), wfl[0], wfl[650].0), (651, (45.0, 2.4607), 110.0));
        assert_eq!(curve(Indicator::WeightForHeight, Sex::Male, 0.0)[0].0, 65.0);
        let sd3 = curve(Indicator::WeightForAge, Sex::Female, 3.0);
        let sd2 = curve(Indicator::WeightForAge, Sex::Female, 2.0);
        let sd4 = curve(Indicator::WeightForAge, Sex::Female, 4.0);
        assert!((sd4[100].1 - (2.0 * sd3[100].1 - sd2[100].1)).abs() < 1e-9);
        // A point plotted at its z lies on the curve (the curve inverts the z-score).
        let lms = standards().unwrap().wfa[1].at_day(100).unwrap();
        assert!((lms.z(sd4[100].1, true) - 4.0).abs() < 1e-9);
        // Length-for-age is plain LMS at any z.
        let lhfa = curve(Indicator::LengthForAge, Sex::Male, -4.0);
        let l = standards().unwrap().lhfa[0].at_day(0).unwrap();
        assert!((lhfa[0].1 - l.m * (1.0 - 4.0 * l.s)).abs() < 1e-9);
    }

    #[test]
    fn crossing_down_two_major_centile_lines_is_detected() {
        assert_eq!(major_centiles_crossed_down(0.5, -1.2), 2);
        assert!(crossed_down_two_major_centiles(0.5, -1.2));
        assert!(crossed_down_two_major_centiles(2.0, 1.0)); // 97th and 85th
        assert!(!crossed_down_two_major_centiles(0.0, -1.0)); // the 50th only
        assert!(!crossed_down_two_major_centiles(-1.2, 0.5)); // rising
        assert_eq!(major_centiles_crossed_down(2.5, -2.5), 5);
        assert_eq!(major_centiles_crossed_down(-1.03, -1.04), 1); // the 15th line is at −1.036
        assert_eq!(major_centiles_crossed_down(-1.04, -1.85), 0); // between the 15th and 3rd lines
    }

    #[test]
    fn no_weight_gain_compares_two_visits_in_order() {
        let w = |age_days, weight_kg| Weighing { age_days, weight_kg };
        assert_eq!(no_weight_gain(w(90, 6.0), w(120, 6.0)), Ok(true));
        assert_eq!(no_weight_gain(w(90, 6.0), w(120, 5.8)), Ok(true));
        assert_eq!(no_weight_gain(w(90, 6.0), w(120, 6.1)), Ok(false));
        assert!(no_weight_gain(w(120, 6.0), w(90, 6.1)).unwrap_err().contains("after"));
        assert!(no_weight_gain(w(90, 6.0), w(90, 6.1)).is_err());
        assert!(no_weight_gain(w(90, -1.0), w(120, 6.1)).is_err());
    }
}
