//! The 两非 ban (RULES.md §9.1): no fetal sex in any text the service stores or shows. One
//! detector for every door and every feature; its phrase list is data (`rules/privacy/fetal-sex.toml`).
pub mod model;
pub mod service;
