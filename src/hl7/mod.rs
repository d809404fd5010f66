//! HL7 v2: the ER7 parser and encoder, MLLP framing and listener, ACKs, the durable message store
//! with duplicate control, and inbound mapping (ADT A01/A04/A08 → persons).
pub mod er7;
pub mod mllp;
pub mod model;
pub mod repo;
pub mod server;
pub mod service;
