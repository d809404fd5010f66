//! What the pregnancy feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use super::model::{Delivery, Pregnancy};
use crate::auth::model::Actor;
use crate::events::Topic;

/// The delivery (分娩) of a pregnancy was recorded; the pregnancy is now delivered.
#[derive(Debug, Clone)]
pub struct DeliveryRecorded {
    pub actor: Actor,
    pub pregnancy: Pregnancy,
    pub delivery: Delivery,
}

/// Reacted to by risk: a maternal death closes her open high-risk case (reason: death).
pub static DELIVERY_RECORDED: Topic<DeliveryRecorded> = Topic::new("delivery recorded");
