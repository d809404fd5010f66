//! Diagnoses and problems (Condition) a hospital or clinician records for a woman or child: the
//! code as sent, clinical and verification status from the FHIR required value sets, onset and
//! recorded date as given, and the document they came as.
pub mod model;
pub mod repo;
pub mod service;
