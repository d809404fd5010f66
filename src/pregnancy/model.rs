//! Pregnancy booking (建册) and dating. Pure.
//!
//! * EDD by Naegele's rule taken as LMP + 280 days (RULES.md §2.2 "预产期 (Naegele)"; the
//!   calendar form "month + 9, day + 7" can differ from +280 days by a day or two — the day
//!   count is used so that gestational age and EDD always agree).
//! * Gestational age is derived from the EDD for any date and never stored.
//! * Dating method: an early ultrasound (scan at ≤ 13+6 weeks, the first trimester boundary of
//!   the 2025 中国孕早期保健指南 quoted in RULES.md §2.2) takes precedence over the LMP; a later
//!   scan is recorded but does not re-date an LMP-dated pregnancy. RULES.md gives no national
//!   re-dating rule; this is the usual obstetric practice and the safer reading (a first-trimester
//!   scan is the most accurate dating), noted as such.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, ServiceError};

/// Days from the first day of the LMP to the EDD.
pub const TERM_DAYS: i64 = 280;
/// Last gestational day (13+6 weeks) at which an ultrasound counts as early dating.
pub const EARLY_ULTRASOUND_MAX_DAYS: i64 = 13 * 7 + 6;
/// Latest plausible gestational age for a pregnancy still being booked or visited (44+0 weeks).
pub const MAX_GESTATION_DAYS: i64 = 44 * 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatingMethod {
    Lmp,
    Ultrasound,
}

impl DatingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            DatingMethod::Lmp => "lmp",
            DatingMethod::Ultrasound => "ultrasound",
        }
    }
    pub fn parse(s: &str) -> Option<DatingMethod> {
        match s {
            "lmp" => Some(DatingMethod::Lmp),
            "ultrasound" => Some(DatingMethod::Ultrasound),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            DatingMethod::Lmp => "末次月经",
            DatingMethod::Ultrasound => "早孕期超声",
        }
    }
}

/// Gestational age in completed weeks and days (shown as `12+6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GestationalAge {
    pub days: i64,
}

impl GestationalAge {
    pub fn from_weeks_days(weeks: i64, days: i64) -> GestationalAge {
        GestationalAge { days: weeks * 7 + days }
    }
    pub fn weeks(self) -> i64 {
        self.days.div_euclid(7)
    }
    pub fn day_of_week(self) -> i64 {
        self.days.rem_euclid(7)
    }
    /// Parse `12+6`, `12 + 6` or `12` (weeks only).
    pub fn parse(s: &str) -> Option<GestationalAge> {
        let s = s.trim();
        let (w, d) = match s.split_once('+') {
            Some((w, d)) => (w.trim().parse::<i64>().ok()?, d.trim().parse::<i64>().ok()?),
            None => (s.parse::<i64>().ok()?, 0),
        };
        ((0..=45).contains(&w) && (0..7).contains(&d)).then(|| GestationalAge::from_weeks_days(w, d))
    }
}

impl std::fmt::Display for GestationalAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.weeks(), self.day_of_week())
    }
}

/// The dating of a pregnancy: everything else derives from its EDD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dating {
    pub method: DatingMethod,
    pub edd: NaiveDate,
}

impl Dating {
    /// The day that counts as gestational day 0 (the LMP, or the ultrasound-equivalent LMP).
    pub fn start(&self) -> NaiveDate {
        self.edd - Days::new(TERM_DAYS as u64)
    }

    /// Gestational age on `day` (negative before the start).
    pub fn gestational_age_on(&self, day: NaiveDate) -> GestationalAge {
        GestationalAge {
            days: (day - self.start()).num_days(),
        }
    }
}

pub fn edd_from_lmp(lmp: NaiveDate) -> NaiveDate {
    lmp + Days::new(TERM_DAYS as u64)
}

pub fn edd_from_ultrasound(scan_date: NaiveDate, ga_at_scan: GestationalAge) -> NaiveDate {
    scan_date + Days::new((TERM_DAYS - ga_at_scan.days) as u64)
}

/// Choose the dating from what is known (the rule in the module comment).
pub fn date_pregnancy(lmp: Option<NaiveDate>, ultrasound: Option<(NaiveDate, GestationalAge)>) -> Option<Dating> {
    match (lmp, ultrasound) {
        (_, Some((scan, ga))) if ga.days <= EARLY_ULTRASOUND_MAX_DAYS => Some(Dating {
            method: DatingMethod::Ultrasound,
            edd: edd_from_ultrasound(scan, ga),
        }),
        (Some(lmp), _) => Some(Dating {
            method: DatingMethod::Lmp,
            edd: edd_from_lmp(lmp),
        }),
        (None, Some((scan, ga))) => Some(Dating {
            method: DatingMethod::Ultrasound,
            edd: edd_from_ultrasound(scan, ga),
        }),
        (None, None) => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PregnancyStatus {
    Active,
    Delivered,
    Ended,
}

impl PregnancyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PregnancyStatus::Active => "active",
            PregnancyStatus::Delivered => "delivered",
            PregnancyStatus::Ended => "ended",
        }
    }
    pub fn parse(s: &str) -> Option<PregnancyStatus> {
        match s {
            "active" => Some(PregnancyStatus::Active),
            "delivered" => Some(PregnancyStatus::Delivered),
            "ended" => Some(PregnancyStatus::Ended),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            PregnancyStatus::Active => "孕期管理中",
            PregnancyStatus::Delivered => "已分娩",
            PregnancyStatus::Ended => "已终止",
        }
    }
}

/// A pregnancy episode as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Pregnancy {
    pub id: String,
    pub person_id: String,
    pub status: PregnancyStatus,
    pub booking_date: NaiveDate,
    pub booking_facility_id: String,
    pub lmp: Option<NaiveDate>,
    pub ultrasound_date: Option<NaiveDate>,
    pub ultrasound_ga: Option<GestationalAge>,
    pub dating: Dating,
    pub gravidity: i32,
    pub parity: i32,
    pub jurisdiction: String,
    pub township_code: Option<String>,
    pub version: i32,
}

/// What a worklist reads of an open pregnancy: whose it is and its dating (the schedule derives
/// from the EDD), and, once delivered, the delivery facts the postpartum schedule runs from.
#[derive(Debug, Clone)]
pub struct OnWorklist {
    pub id: String,
    pub person_id: String,
    pub dating: Dating,
    pub delivery: Option<DeliveredOn>,
}

/// The delivery facts of a postpartum schedule.
#[derive(Debug, Clone, Copy)]
pub struct DeliveredOn {
    pub delivery_date: NaiveDate,
    pub discharge_date: Option<NaiveDate>,
    pub maternal_death: bool,
}

/// What a clinician typed at booking (form strings; empty = not given).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct BookingInput {
    pub booking_date: Option<String>,
    pub lmp: Option<String>,
    pub ultrasound_date: Option<String>,
    /// Gestational age at the scan, `weeks+days`.
    pub ultrasound_ga: Option<String>,
    pub gravidity: Option<String>,
    pub parity: Option<String>,
}

/// A checked booking.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub booking_date: NaiveDate,
    pub lmp: Option<NaiveDate>,
    pub ultrasound: Option<(NaiveDate, GestationalAge)>,
    pub dating: Dating,
    pub gravidity: i32,
    pub parity: i32,
}

pub(crate) fn opt_str(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn parse_date(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let raw = raw?;
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "date", "日期格式应为 YYYY-MM-DD"));
            None
        }
    }
}

fn parse_int(
    field: &str,
    raw: Option<&str>,
    range: std::ops::RangeInclusive<i32>,
    label: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i32> {
    let raw = raw?;
    match raw.parse::<i32>() {
        Ok(v) if range.contains(&v) => Some(v),
        _ => {
            errors.push(FieldError::new(
                field,
                "range",
                format!("{label}须为 {}–{} 的整数", range.start(), range.end()),
            ));
            None
        }
    }
}

impl BookingInput {
    pub fn validate(&self, today: NaiveDate) -> Result<Booking, ServiceError> {
        let mut errors = Vec::new();
        let booking_date = parse_date("booking_date", opt_str(&self.booking_date), &mut errors).unwrap_or(today);
        if booking_date > today {
            errors.push(FieldError::new("booking_date", "future", "建册日期不能晚于今天"));
        }
        let lmp = parse_date("lmp", opt_str(&self.lmp), &mut errors);
        if let Some(l) = lmp {
            if l > booking_date {
                errors.push(FieldError::new("lmp", "after_booking", "末次月经不能晚于建册日期"));
            } else if (booking_date - l).num_days() > MAX_GESTATION_DAYS {
                errors.push(FieldError::new(
                    "lmp",
                    "too_early",
                    "按末次月经计算孕周已超过 44 周，请核对",
                ));
            }
        }
        let us_date = parse_date("ultrasound_date", opt_str(&self.ultrasound_date), &mut errors);
        let us_ga = match opt_str(&self.ultrasound_ga) {
            Some(raw) => match GestationalAge::parse(raw) {
                Some(ga) if ga.days >= 4 * 7 && ga.days <= 42 * 7 => Some(ga),
                _ => {
                    errors.push(FieldError::new(
                        "ultrasound_ga",
                        "ga",
                        "超声孕周格式应为 周+天（如 8+3），范围 4–42 周",
                    ));
                    None
                }
            },
            None => None,
        };
        let ultrasound = match (us_date, us_ga) {
            (Some(d), Some(ga)) => {
                if d > today {
                    errors.push(FieldError::new("ultrasound_date", "future", "超声日期不能晚于今天"));
                }
                Some((d, ga))
            }
            (Some(_), None) if !errors.iter().any(|e| e.field == "ultrasound_ga") => {
                errors.push(FieldError::new("ultrasound_ga", "required", "请填写超声检查时的孕周"));
                None
            }
            (None, Some(_)) => {
                errors.push(FieldError::new("ultrasound_date", "required", "请填写超声检查日期"));
                None
            }
            _ => None,
        };
        if lmp.is_none()
            && ultrasound.is_none()
            && !errors
                .iter()
                .any(|e| e.field == "lmp" || e.field.starts_with("ultrasound"))
        {
            errors.push(FieldError::new(
                "lmp",
                "required",
                "请填写末次月经，或早孕期超声日期和孕周",
            ));
        }
        let gravidity = parse_int("gravidity", opt_str(&self.gravidity), 1..=20, "孕次", &mut errors);
        if opt_str(&self.gravidity).is_none() {
            errors.push(FieldError::new("gravidity", "required", "请填写孕次（含本次）"));
        }
        let parity = parse_int(
            "parity",
            opt_str(&self.parity).or(Some("0")),
            0..=19,
            "产次",
            &mut errors,
        );
        if let (Some(g), Some(p)) = (gravidity, parity)
            && p >= g
        {
            errors.push(FieldError::new("parity", "parity", "产次须小于孕次（孕次含本次妊娠）"));
        }
        let dating = date_pregnancy(lmp, ultrasound);
        if let Some(d) = dating {
            let ga = d.gestational_age_on(booking_date);
            if ga.days < 0 || ga.days > MAX_GESTATION_DAYS {
                errors.push(FieldError::new(
                    "lmp",
                    "dating",
                    "推算的建册孕周不在 0–44 周之间，请核对末次月经或超声",
                ));
            }
        }
        match (dating, gravidity, parity, errors.is_empty()) {
            (Some(dating), Some(gravidity), Some(parity), true) => Ok(Booking {
                booking_date,
                lmp,
                ultrasound,
                dating,
                gravidity,
                parity,
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }
}

// ------------------------------------------------------------------ outcome (分娩)

/// Earliest gestation at which an outcome is recorded as a delivery here (20+0 weeks); earlier
/// losses are not deliveries.
pub const MIN_DELIVERY_GA_DAYS: i64 = 20 * 7;

pub const DELIVERY_MODES: [(&str, &str); 3] = [
    ("vaginal", "阴道分娩"),
    ("assisted_vaginal", "阴道助产"),
    ("caesarean", "剖宫产"),
];

/// A recorded delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: String,
    pub pregnancy_id: String,
    pub delivery_date: NaiveDate,
    pub discharge_date: Option<NaiveDate>,
    pub facility_name: String,
    pub mode: String,
    pub live_births: i32,
    pub stillbirths: i32,
    pub maternal_death: bool,
    pub complications: String,
    pub recorded_by: String,
}

impl Delivery {
    /// The day postpartum contacts count from for the home visit ("出院后1周内"): discharge, or
    /// the delivery day when discharge is not known (the earlier, safer anchor).
    pub fn home_visit_anchor(&self) -> NaiveDate {
        self.discharge_date.unwrap_or(self.delivery_date)
    }
}

/// The delivery form as typed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DeliveryInput {
    pub delivery_date: Option<String>,
    pub discharge_date: Option<String>,
    pub facility_name: Option<String>,
    pub mode: Option<String>,
    pub live_births: Option<String>,
    pub stillbirths: Option<String>,
    #[serde(default)]
    pub maternal_death: Option<String>,
    pub complications: Option<String>,
}

/// A checked delivery (no ids yet).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryData {
    pub delivery_date: NaiveDate,
    pub discharge_date: Option<NaiveDate>,
    pub facility_name: String,
    pub mode: String,
    pub live_births: i32,
    pub stillbirths: i32,
    pub maternal_death: bool,
    pub complications: String,
}

impl DeliveryInput {
    pub fn validate(&self, dating: &Dating, today: NaiveDate) -> Result<DeliveryData, ServiceError> {
        let mut e = Vec::new();
        let delivery_date = parse_date("delivery_date", opt_str(&self.delivery_date), &mut e);
        if opt_str(&self.delivery_date).is_none() {
            e.push(FieldError::new("delivery_date", "required", "请填写分娩日期"));
        }
        if let Some(d) = delivery_date {
            let ga = dating.gestational_age_on(d).days;
            if d > today {
                e.push(FieldError::new("delivery_date", "future", "分娩日期不能晚于今天"));
            } else if ga < MIN_DELIVERY_GA_DAYS {
                e.push(FieldError::new(
                    "delivery_date",
                    "too_early",
                    "分娩时孕周不足 20 周，请核对日期（流产不在此登记）",
                ));
            } else if ga > MAX_GESTATION_DAYS {
                e.push(FieldError::new(
                    "delivery_date",
                    "too_late",
                    "分娩时孕周超过 44 周，请核对日期或预产期",
                ));
            }
        }
        let discharge_date = parse_date("discharge_date", opt_str(&self.discharge_date), &mut e);
        if let (Some(dis), Some(del)) = (discharge_date, delivery_date)
            && (dis < del || dis > today || (dis - del).num_days() > 90)
        {
            e.push(FieldError::new(
                "discharge_date",
                "range",
                "出院日期须在分娩之后、今天之前（90 天内）",
            ));
        }
        let facility_name = opt_str(&self.facility_name).unwrap_or("").to_string();
        if facility_name.is_empty() || facility_name.chars().count() > 100 {
            e.push(FieldError::new(
                "facility_name",
                "required",
                "请填写分娩机构（100 字以内）",
            ));
        }
        let mode = opt_str(&self.mode).unwrap_or("").to_string();
        if !DELIVERY_MODES.iter().any(|(c, _)| *c == mode) {
            e.push(FieldError::new("mode", "choice", "请选择分娩方式"));
        }
        let live_births = parse_int(
            "live_births",
            opt_str(&self.live_births).or(Some("0")),
            0..=8,
            "活产数",
            &mut e,
        );
        let stillbirths = parse_int(
            "stillbirths",
            opt_str(&self.stillbirths).or(Some("0")),
            0..=8,
            "死胎死产数",
            &mut e,
        );
        if let (Some(l), Some(s)) = (live_births, stillbirths)
            && l + s == 0
        {
            e.push(FieldError::new("live_births", "none", "活产数与死胎死产数不能都为 0"));
        }
        let complications = opt_str(&self.complications).unwrap_or("").to_string();
        if complications.chars().count() > 500 {
            e.push(FieldError::new("complications", "too_long", "并发症说明最多 500 字"));
        }
        match (delivery_date, live_births, stillbirths, e.is_empty()) {
            (Some(delivery_date), Some(live_births), Some(stillbirths), true) => Ok(DeliveryData {
                delivery_date,
                discharge_date,
                facility_name,
                mode,
                live_births,
                stillbirths,
                maternal_death: opt_str(&self.maternal_death) == Some("1"),
                complications,
            }),
            _ => Err(ServiceError::Invalid(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn edd_is_lmp_plus_280_days_across_leap_years() {
        assert_eq!(edd_from_lmp(d(2023, 5, 25)), d(2024, 2, 29));
        assert_eq!(edd_from_lmp(d(2023, 5, 26)), d(2024, 3, 1));
        assert_eq!(edd_from_lmp(d(2024, 5, 26)), d(2025, 3, 2));
        assert_eq!(edd_from_lmp(d(2026, 1, 1)), d(2026, 10, 8));
    }

    #[test]
    fn gestational_age_turns_13_weeks_on_day_91() {
        let dating = date_pregnancy(Some(d(2026, 1, 1)), None).unwrap();
        assert_eq!(dating.gestational_age_on(d(2026, 4, 1)).to_string(), "12+6");
        assert_eq!(dating.gestational_age_on(d(2026, 4, 2)).to_string(), "13+0");
        assert_eq!(dating.gestational_age_on(d(2026, 1, 1)).to_string(), "0+0");
        assert_eq!(dating.gestational_age_on(dating.edd).to_string(), "40+0");
    }

    #[test]
    fn an_early_ultrasound_takes_precedence_over_the_lmp() {
        let lmp = d(2026, 1, 1);
        let early = (d(2026, 2, 26), GestationalAge::from_weeks_days(7, 0)); // LMP says 8+0
        let dating = date_pregnancy(Some(lmp), Some(early)).unwrap();
        assert_eq!(dating.method, DatingMethod::Ultrasound);
        assert_eq!(dating.edd, d(2026, 10, 15));
        // 13+6 is still early; 14+0 is not.
        let at_13_6 = (d(2026, 4, 10), GestationalAge::from_weeks_days(13, 6));
        assert_eq!(
            date_pregnancy(Some(lmp), Some(at_13_6)).unwrap().method,
            DatingMethod::Ultrasound
        );
        let at_14_0 = (d(2026, 4, 10), GestationalAge::from_weeks_days(14, 0));
        let late = date_pregnancy(Some(lmp), Some(at_14_0)).unwrap();
        assert_eq!(late.method, DatingMethod::Lmp);
        assert_eq!(late.edd, edd_from_lmp(lmp));
        // Without an LMP even a late scan dates the pregnancy.
        assert_eq!(
            date_pregnancy(None, Some(at_14_0)).unwrap().method,
            DatingMethod::Ultrasound
        );
    }

    #[test]
    fn gestational_age_parses_weeks_plus_days() {
        assert_eq!(GestationalAge::parse("12+6"), Some(GestationalAge { days: 90 }));
        assert_eq!(GestationalAge::parse(" 8 + 3 "), Some(GestationalAge { days: 59 }));
        assert_eq!(GestationalAge::parse("9"), Some(GestationalAge { days: 63 }));
        assert_eq!(GestationalAge::parse("12+7"), None);
        assert_eq!(GestationalAge::parse("x"), None);
    }

    #[test]
    fn a_booking_needs_lmp_or_ultrasound_and_consistent_history() {
        let today = d(2026, 11, 24);
        let ok = BookingInput {
            lmp: Some("2026-09-01".into()),
            gravidity: Some("2".into()),
            parity: Some("1".into()),
            ..Default::default()
        };
        let b = ok.validate(today).unwrap();
        assert_eq!(b.dating.method, DatingMethod::Lmp);
        assert_eq!(b.booking_date, today);
        let no_dating = BookingInput {
            lmp: None,
            ..ok.clone()
        };
        assert!(no_dating.validate(today).is_err());
        let parity_too_high = BookingInput {
            parity: Some("2".into()),
            ..ok.clone()
        };
        assert!(parity_too_high.validate(today).is_err());
        let future_lmp = BookingInput {
            lmp: Some("2026-12-01".into()),
            ..ok.clone()
        };
        assert!(future_lmp.validate(today).is_err());
        let ancient_lmp = BookingInput {
            lmp: Some("2025-09-01".into()),
            ..ok
        };
        assert!(ancient_lmp.validate(today).is_err());
    }

    #[test]
    fn a_delivery_must_fall_between_20_and_44_weeks_and_count_at_least_one_birth() {
        let dating = date_pregnancy(Some(d(2026, 1, 1)), None).unwrap();
        let today = d(2026, 11, 24);
        let ok = DeliveryInput {
            delivery_date: Some("2026-10-05".into()),
            discharge_date: Some("2026-10-08".into()),
            facility_name: Some("示范县人民医院".into()),
            mode: Some("caesarean".into()),
            live_births: Some("1".into()),
            ..Default::default()
        };
        let v = ok.validate(&dating, today).unwrap();
        assert_eq!((v.live_births, v.stillbirths, v.maternal_death), (1, 0, false));
        let early = DeliveryInput {
            delivery_date: Some("2026-05-01".into()),
            ..ok.clone()
        };
        assert!(early.validate(&dating, today).is_err());
        let none = DeliveryInput {
            live_births: Some("0".into()),
            ..ok.clone()
        };
        assert!(none.validate(&dating, today).is_err());
        let discharge_before = DeliveryInput {
            discharge_date: Some("2026-10-01".into()),
            ..ok.clone()
        };
        assert!(discharge_before.validate(&dating, today).is_err());
        let bad_mode = DeliveryInput {
            mode: Some("water".into()),
            ..ok
        };
        assert!(bad_mode.validate(&dating, today).is_err());
    }
}
