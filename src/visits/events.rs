//! What the visits feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use chrono::NaiveDate;

use super::model::VisitKind;
use crate::auth::model::Actor;
use crate::events::Topic;
use crate::pregnancy::model::Pregnancy;

/// An antenatal or postpartum visit was stored for a pregnancy (in the transaction that stored it).
#[derive(Debug, Clone)]
pub struct VisitRecorded {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
    pub visit_id: String,
    pub visit_date: NaiveDate,
    pub kind: VisitKind,
}

/// Reacted to by risk: a new measurement may call for a re-grade proposal; the visit counts as a
/// follow-up of her high-risk case.
pub static VISIT_RECORDED: Topic<VisitRecorded> = Topic::new("visit recorded");
