//! Staff accounts, sessions, API tokens, roles and the access rules.
pub mod model;
pub mod password;
pub mod repo;
pub mod service;
