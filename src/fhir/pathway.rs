//! `$everything`: the packet a receiving hospital needs before a referred woman arrives.

use super::{FhirError, Kind, Res, patient::PatientKind};
use crate::auth::model::Actor;
use crate::storage::AnyConnection;

/// Everything about a patient (`Patient/$everything`) or one pregnancy (`EpisodeOfCare/$everything`).
pub fn everything(
    c: &mut AnyConnection,
    actor: &Actor,
    ty: &str,
    id: &str,
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    match ty {
        "Patient" => {
            let p = PatientKind::read(c, actor, id)?;
            let mut out = vec![("Patient", p)];
            out.extend(super::clinical::for_patient(c, actor, id, None)?);
            Ok(out)
        }
        _ => Err(FhirError::not_supported(
            404,
            format!("$everything is offered on Patient and EpisodeOfCare, not on {ty}"),
        )),
    }
}
