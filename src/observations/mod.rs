//! Results (laboratory and other observations) received from hospitals: the code mapping as data
//! (`rules/hl7/results.toml`), value checks, the fetal-sex ban (RULES.md §9.1), storage, and the
//! dated facts they give risk grading. ARCHITECTURE.md puts lab results with `visits/`; they have
//! their own folder because they arrive from interfaces, not from a visit form.
pub mod events;
pub mod model;
pub mod repo;
pub mod service;
