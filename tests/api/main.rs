#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness code outside #[test] functions
//! Black-box tests: the real server on a random port, a fresh database per test
//! (SQLite by default; PostgreSQL when MCH_TEST_DATABASE_URL is a postgres URL).

mod fhir_support;
mod helpers;

mod access;
mod auth;
mod child;
mod child_exchange;
mod cli;
mod couple;
mod fetal_sex;
mod fhir;
mod fhir_bundle;
mod fhir_clinical;
mod fhir_examples;
mod fhir_pathway;
mod frail;
mod hl7;
mod hl7_outbox;
mod hl7_referral;
mod hl7_results;
mod identity;
mod postpartum;
mod pregnancy;
mod referral;
mod risk;
mod routes;
mod storage;
