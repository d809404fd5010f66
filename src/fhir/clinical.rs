//! The clinical resources about one patient, for `$everything`.

use super::{FhirError, Res};
use crate::auth::model::Actor;
use crate::storage::AnyConnection;

/// Every clinical resource of a patient (optionally one pregnancy), each with its type.
pub fn for_patient(
    _c: &mut AnyConnection,
    _actor: &Actor,
    _person_id: &str,
    _pregnancy_id: Option<&str>,
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    Ok(Vec::new())
}
