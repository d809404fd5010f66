//! Persons and their identifiers (身份证号 GB 11643, 居民健康卡), card reads, duplicate prevention.
pub mod events;
pub mod model;
pub mod repo;
pub mod service;
