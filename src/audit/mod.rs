//! The append-only, hash-chained audit log (who, when, what, from where, why).
pub mod model;
pub mod repo;
pub mod service;
