//! Identifiers and clock helpers shared by every feature.

use chrono::{NaiveDateTime, SubsecRound, Utc};

/// A new time-ordered id (UUID v7) as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now in UTC, truncated to microseconds so values round-trip through both backends unchanged.
pub fn now_utc() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Today's date in China (UTC+8): clinical dates are local dates.
pub fn today_china() -> chrono::NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Whether a string is a syntactically valid id (used to refuse junk in paths early).
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The China (UTC+8) calendar date of a UTC time.
pub fn china_date(utc: NaiveDateTime) -> chrono::NaiveDate {
    (utc + chrono::Duration::hours(8)).date()
}

/// A half-open range of UTC times `[from, to)`, either end open (search criteria).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

impl TimeRange {
    /// The intersection with another range.
    pub fn and(self, other: TimeRange) -> TimeRange {
        TimeRange {
            from: match (self.from, other.from) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            to: match (self.to, other.to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}
