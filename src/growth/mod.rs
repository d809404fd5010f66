//! WHO 2006 Child Growth Standards (0–5 years): z-scores, implausibility flags, nutritional
//! findings and chart curves. Pure and self-contained: no I/O, no database, no other module of
//! this crate; the LMS tables are data in `rules/growth/` (sources and checks in its README),
//! embedded at build time and parsed once into arrays indexed by day or by 0.1 cm.
//!
//! # API (for the child-health feature)
//!
//! - [`model::evaluate`]`(&Measurement { sex, age_days, weight_kg, length_cm, position, oedema })`
//!   → [`model::Evaluation`]: `weight_for_age_z`, `length_for_age_z`, `weight_for_length_z`
//!   (weight-for-length under 731 days, weight-for-height from 731 days — named by
//!   `weight_for_length_indicator`), `bmi_for_age_z`, each rounded to 2 decimals and `None` where
//!   it does not apply; the adjusted length, BMI, `classification` and `flags`. `Err` names the
//!   unusable input (age over 1856 days, a weight or length ≤ 0 or beyond a child's range).
//! - [`model::curve`]`(indicator, sex, z)` → `(x, value)` points of the z curve (−3…+3 SD, or
//!   any z such as ±1.88 for the 3rd/97th centiles) for drawing growth charts.
//! - [`model::crossed_down_two_major_centiles`]`(earlier_z, later_z)` and
//!   [`model::major_centiles_crossed_down`]: falling through the 3rd/15th/50th/85th/97th lines.
//! - [`model::no_weight_gain`]`(earlier, later)`: the later weighing is not heavier.
//!
//! # The WHO rules, as WHO's software applies them (where in `model.rs`)
//!
//! - z = ((X/M)^L − 1)/(L·S) (`Lms::z`); for the weight-based indicators (weight-for-age,
//!   weight-for-length/height, BMI-for-age) beyond ±3 SD the restricted computation
//!   z = ±3 + (X − SD±3)/SD23 with SD23 the SD2–SD3 distance on that side; length/height-for-age
//!   is plain LMS (L = 1). WHO technical report (2006) ch. 7; R anthro `compute_zscore_adjusted`.
//! - Lying/standing (`evaluate`): under 731 days the standards are length (lying), from 731 days
//!   height (standing); a standing value under 731 days gets +0.7 cm, a lying one from 731 days
//!   −0.7 cm; without `position` the value is taken as the position due at that age. The adjusted
//!   value feeds length-for-age, weight-for-length/height and BMI (R anthro `adjust_lenhei`,
//!   `cbmi`). A standing height under 9 months is implausible: as R anthro (`c9mo_flag`) the
//!   position is then ignored (no +0.7) and the flag `standing_under_nine_months` is raised.
//! - Weight-for-length (45–110 cm) under 731 days, weight-for-height (65–120 cm) from 731 days,
//!   chosen by age, bands inclusive, `None` outside (R anthro `anthro_zscore_weight_for_lenhei`).
//!   A length between two 0.1 cm rows takes L, M and S each linearly between the rows
//!   (`Table::at_length`, R anthro and igrowup alike — not the z, and not a rounded length).
//! - Age is whole days, 0–1856, the extent of WHO's daily tables and of igrowup, whose output we
//!   match (its survey has z-scores at 1852 days). R anthro since 0.9.3 and WHO Anthro return no
//!   z-scores from 60 months (1826.25 days) on: for 1827–1856 days we give igrowup's figures.
//! - Oedema (bilateral pitting): no weight-based z-scores; counted as severe underweight and
//!   severe wasting with `basis: oedema` (R anthro: "treated as being < −3 SD" in prevalence).
//! - Flags on the rounded z (R anthro, WHO Anthro, igrowup): length-for-age < −6 or > +6,
//!   weight-for-age < −6 or > +5, weight-for-length/height and BMI-for-age < −5 or > +5. A flagged
//!   value keeps its z-score and its finding: the clinician sees both and re-measures.
//! - Findings on the rounded z (WHO Training Course on Child Growth Assessment, 2008,
//!   "Interpreting growth indicators"): weight-for-age < −2 低体重, < −3 重度低体重;
//!   length/height-for-age < −2 生长迟缓, < −3 重度生长迟缓; weight-for-length/height < −2 消瘦,
//!   < −3 重度消瘦, > +1 可能有超重风险, > +2 超重, > +3 肥胖. One band per indicator. BMI-for-age
//!   is reported but not classified, so that one child does not get wasting twice.
//!
//! Tests against WHO's published numbers (`who_tests`): every −3…+3 SD value of WHO's expanded
//! tables (wfa, lhfa 0–1856 days; wfl 45–110 cm; wfh 65–120 cm; both sexes) and ±4 SD built from
//! them, and every row of igrowup's example survey.

pub mod model;

#[cfg(test)]
mod who_tests;
