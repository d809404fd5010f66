//! Vaccinations (Immunization) of a woman (tetanus, hepatitis B) or child (国家免疫规划, RULES.md
//! §7.5) that hospitals and clinics report: status, vaccine code as sent, when, lot number, and
//! the document they came as.
pub mod model;
pub mod repo;
pub mod service;
