//! Recommended gestational weight gain for her pre-pregnancy BMI (WS/T 801—2022, as data in
//! `rules/visits/weight-gain-wst801-2022.toml`), for the pregnancy page's weight chart. Pure.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub label: String,
    /// The class holds BMI below this (the last class has none).
    pub bmi_below: Option<f64>,
    pub total_kg: [f64; 2],
    pub weekly_kg: [f64; 2],
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightGainRules {
    pub id: String,
    pub name: String,
    pub source: String,
    pub tag: String,
    pub first_trimester_kg: [f64; 2],
    pub first_trimester_weeks: f64,
    #[serde(rename = "band")]
    pub bands: Vec<Band>,
}

const WST801: &str = include_str!("../../rules/visits/weight-gain-wst801-2022.toml");

pub fn rules() -> &'static WeightGainRules {
    static R: OnceLock<WeightGainRules> = OnceLock::new();
    R.get_or_init(|| {
        toml::from_str(WST801).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded weight-gain rules are invalid");
            WeightGainRules {
                id: "invalid".into(),
                name: "invalid".into(),
                source: String::new(),
                tag: "?".into(),
                first_trimester_kg: [0.0, 0.0],
                first_trimester_weeks: 13.0,
                bands: Vec::new(),
            }
        })
    })
}

impl WeightGainRules {
    /// Her BMI class.
    pub fn band(&self, bmi: f64) -> Option<&Band> {
        self.bands.iter().find(|b| b.bmi_below.is_none_or(|x| bmi < x))
    }

    /// The recommended range of gain (kg) at `weeks` of gestation: 0 to the first-trimester
    /// maximum, growing linearly, then the weekly rates, capped by the total.
    pub fn range_at(&self, band: &Band, weeks: f64) -> (f64, f64) {
        let t = self.first_trimester_weeks;
        if weeks <= t {
            let f = (weeks / t).clamp(0.0, 1.0);
            return (self.first_trimester_kg[0] * f, self.first_trimester_kg[1] * f);
        }
        let after = weeks - t;
        let lo = (self.first_trimester_kg[0] + band.weekly_kg[0] * after).min(band.total_kg[0]);
        let hi = (self.first_trimester_kg[1] + band.weekly_kg[1] * after).min(band.total_kg[1]);
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_follow_china_s_bmi_cut_offs_and_the_band_grows_to_the_total() {
        let r = rules();
        assert_eq!(r.bands.len(), 4);
        assert!(r.band(18.4).unwrap().label.starts_with("低体重"));
        assert!(r.band(18.5).unwrap().label.starts_with("正常"));
        assert!(r.band(24.0).unwrap().label.starts_with("超重"));
        assert!(r.band(31.0).unwrap().label.starts_with("肥胖"));
        let normal = r.band(21.0).unwrap();
        assert_eq!(r.range_at(normal, 0.0), (0.0, 0.0));
        assert_eq!(r.range_at(normal, 13.0), (0.0, 2.0));
        let (lo, hi) = r.range_at(normal, 20.0);
        assert!((lo - 1.82).abs() < 1e-9 && (hi - 5.36).abs() < 1e-9, "{lo} {hi}");
        let (lo, hi) = r.range_at(normal, 40.0);
        assert!(
            (lo - 7.02).abs() < 1e-9 && hi == 14.0,
            "capped by the 8–14 kg total above: {lo} {hi}"
        );
        assert_eq!(r.range_at(normal, 45.0).1, 14.0);
    }
}
