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
