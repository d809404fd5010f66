//! What the results feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use chrono::NaiveDate;

use crate::auth::model::Actor;
use crate::events::Topic;
use crate::pregnancy::model::Pregnancy;

/// Final results that decide a clinical fact (a concept with a `fact` in `rules/hl7/results.toml`:
/// Hb, platelets, HIV, syphilis, HBsAg …) were stored for a woman during a pregnancy.
#[derive(Debug, Clone)]
pub struct ResultsRecorded {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
    /// The China day of the newest of them.
    pub day: NaiveDate,
}

/// Reacted to by risk: the new facts may call for a re-grade proposal (RULES.md §1.1 动态评估).
pub static RESULTS_RECORDED: Topic<ResultsRecorded> = Topic::new("results recorded");
