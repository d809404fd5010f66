//! The facility directory (levels, kinds, capabilities). Referral routing builds on it later.
pub mod model;
pub mod repo;
pub mod service;
