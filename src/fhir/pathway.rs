//! `$everything`: the packet a receiving hospital needs before a referred woman arrives — her
//! Patient and every resource of every type that has something about her (each type's
//! [`Kind::for_patient`]), or of one pregnancy for `EpisodeOfCare/$everything`.

use super::{FhirError, Kind, Res, TYPES, patient::PatientKind, with_kind};
use crate::auth::model::Actor;
use crate::storage::AnyConnection;

pub fn everything(
    c: &mut AnyConnection,
    actor: &Actor,
    ty: &str,
    id: &str,
) -> Result<Vec<(&'static str, Res)>, FhirError> {
    let (person_id, pregnancy_id) = match ty {
        "Patient" => (id.to_string(), None),
        "EpisodeOfCare" => {
            let episode = with_kind!("EpisodeOfCare", K => K::read(c, actor, id))?;
            let person = episode
                .patient
                .clone()
                .ok_or_else(|| FhirError::not_found(format!("EpisodeOfCare/{id} has no patient")))?;
            (person, Some(id.to_string()))
        }
        _ => {
            return Err(FhirError::not_supported(
                404,
                format!("$everything is offered on Patient and EpisodeOfCare, not on {ty}"),
            ));
        }
    };
    let mut out = vec![("Patient", PatientKind::read(c, actor, &person_id)?)];
    for t in TYPES.iter().filter(|t| **t != "Patient") {
        let found: Vec<(&'static str, Res)> = with_kind!(*t, K => K::for_patient(c, actor, &person_id, pregnancy_id.as_deref())
            .map(|list| list.into_iter().map(|r| (K::TYPE, r)).collect()))?;
        out.extend(found);
    }
    Ok(out)
}
