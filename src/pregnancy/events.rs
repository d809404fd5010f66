//! What the pregnancy feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use super::model::{Delivery, Pregnancy};
use crate::auth::model::Actor;
use crate::events::Topic;

/// A pregnancy was booked (建册).
#[derive(Debug, Clone)]
pub struct PregnancyBooked {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
}

/// Reacted to by couple: her open 早孕随访 closes itself as 已孕 and her birth registration's
/// 母子健康手册 number joins the pregnancy (issue 12).
pub static PREGNANCY_BOOKED: Topic<PregnancyBooked> = Topic::new("pregnancy booked");

/// The delivery (分娩) of a pregnancy was recorded; the pregnancy is now delivered.
#[derive(Debug, Clone)]
pub struct DeliveryRecorded {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
    pub delivery: Delivery,
}

/// Reacted to by risk: a maternal death closes her open high-risk case (reason: death).
pub static DELIVERY_RECORDED: Topic<DeliveryRecorded> = Topic::new("delivery recorded");
