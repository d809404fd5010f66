//! HL7 v2: the ER7 parser and encoder (the MLLP listener, ACKs and message mapping build on it).
pub mod er7;
