//! Antenatal visits, the national visit schedule, due/overdue contacts and the worklist.
pub mod events;
pub mod model;
pub mod repo;
pub mod schedule;
pub mod service;
pub mod weight_gain;
