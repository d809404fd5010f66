//! mch-chain: the maternal and child health pathway ("一条链") for a region.
//!
//! Layout (ARCHITECTURE.md): feature folders (`identity`, `pregnancy`, `visits`, …) each with a
//! pure `model.rs`, `service.rs` (the only entry points) and `repo.rs` (its queries); `storage`
//! owns diesel; the adapters (`web`) only translate and call services.

pub mod app;
pub mod audit;
pub mod auth;
pub mod chart;
pub mod cli;
pub mod conditions;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod facility;
pub mod fhir;
pub mod hl7;
pub mod identity;
pub mod ids;
pub mod immunizations;
pub mod observations;
pub mod pregnancy;
pub mod reactions;
pub mod referral;
pub mod risk;
pub mod storage;
pub mod telemetry;
pub mod visits;
pub mod web;

pub use app::Application;

