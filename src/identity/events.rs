//! What the identity feature tells the features above it (`crate::events`; wired in
//! `reactions.rs`).

use super::model::Person;
use crate::auth::model::Actor;
use crate::events::Topic;

/// Two records of one person are about to be merged (HL7 ADT^A40), before anything moves. A
/// reaction that refuses (returns an error) stops the merge: nothing moves, the caller is told why.
#[derive(Debug, Clone)]
pub struct PersonsMerging {
    pub actor: Actor,
    pub survivor: Person,
    pub merged: Person,
}

/// Reacted to by pregnancy: two records that each hold an active pregnancy are not merged
/// automatically (a person must decide which episode is hers).
pub static PERSONS_MERGING: Topic<PersonsMerging> = Topic::new("persons merging");
