//! HL7 v2: the ER7 parser and encoder, MLLP framing and listener, ACKs, the durable message store
//! with duplicate control, and inbound mapping (ADT A01/A04/A08 → persons); outbound referral
//! messages (REF^I12 / RRI^I12) through a database outbox.
pub mod er7;
pub mod mllp;
pub mod model;
pub mod outbound;
pub mod outbox;
mod outbox_repo;
pub mod repo;
pub mod server;
pub mod service;
