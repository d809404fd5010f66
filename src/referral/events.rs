//! What the referral feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use chrono::NaiveDateTime;

use super::model::{ReferralRecord, Verb};
use crate::events::Topic;

/// A referral changed: a step of its state machine was taken (the newest timeline entry names
/// the acting facility and, for reject / redirect / cancel, the reason), or the sender updated
/// its details (passed as `Verb::Send`: the referral's current state goes out again).
#[derive(Debug, Clone)]
pub struct ReferralChanged {
    pub referral: ReferralRecord,
    pub verb: Verb,
    pub at: NaiveDateTime,
}

/// Reacted to by the HL7 interface: the REF^I12 / RRI^I12 messages the change calls for are
/// queued durably in its outbox, in this transaction, and delivered after commit.
pub static REFERRAL_CHANGED: Topic<ReferralChanged> = Topic::new("referral changed");
