//! EpisodeOfCare ↔ pregnancy (孕产期, `pregnancy` feature). Read-only. See README.md
//! "EpisodeOfCare".

use serde_json::{Value, json};

use super::search::{ParamDef, Query};
use super::terms::{code_system, concept, date, extension, not_found_as, reference};
use super::{FhirError, Kind, Page, Res, terms};
use crate::auth::model::Actor;
use crate::pregnancy::model::{DatingMethod, PregnancyStatus};
use crate::pregnancy::service::{self as pregnancy, Episode, EpisodeQuery};
use crate::storage::AnyConnection;

pub struct EpisodeOfCareKind;

/// Our pregnancy status as EpisodeOfCare.status: the episode is the pregnancy, which ends with
/// the delivery (or the end of the pregnancy); postpartum contacts stay linked to it.
pub fn fhir_status(s: PregnancyStatus) -> &'static str {
    match s {
        PregnancyStatus::Active => "active",
        PregnancyStatus::Delivered | PregnancyStatus::Ended => "finished",
    }
}

/// The pregnancy statuses a FHIR status code stands for (an R4 code we never use matches
/// nothing; an unknown code is refused).
fn statuses_of(code: &str) -> Result<Vec<PregnancyStatus>, FhirError> {
    match code {
        "active" => Ok(vec![PregnancyStatus::Active]),
        "finished" => Ok(vec![PregnancyStatus::Delivered, PregnancyStatus::Ended]),
        "planned" | "waitlist" | "onhold" | "cancelled" | "entered-in-error" => Ok(Vec::new()),
        other => Err(FhirError::bad_request(format!(
            "search parameter status: {other} is not an EpisodeOfCare status"
        ))),
    }
}

pub fn render(e: &Episode) -> Res {
    let p = &e.pregnancy;
    let mut ext: Vec<Value> = Vec::new();
    if let Some(lmp) = p.lmp {
        ext.push(json!({"url": extension("pregnancy-lmp"), "valueDate": date(lmp)}));
    }
    ext.push(json!({"url": extension("pregnancy-edd"), "valueDate": date(p.dating.edd)}));
    ext.push(json!({
        "url": extension("pregnancy-dating-method"),
        "valueCoding": terms::coding(&code_system("dating-method"), p.dating.method.as_str(), p.dating.method.label_zh()),
    }));
    if p.dating.method == DatingMethod::Ultrasound
        && let (Some(d), Some(ga)) = (p.ultrasound_date, p.ultrasound_ga)
    {
        ext.push(json!({
            "url": extension("pregnancy-dating-ultrasound"),
            "extension": [
                {"url": "date", "valueDate": date(d)},
                {"url": "gestationalAge", "valueQuantity": terms::quantity(ga.days as f64, "d", "d")},
            ],
        }));
    }
    ext.push(json!({"url": extension("pregnancy-gravidity"), "valueUnsignedInt": p.gravidity.max(0)}));
    ext.push(json!({"url": extension("pregnancy-parity"), "valueUnsignedInt": p.parity.max(0)}));
    let end = match p.status {
        PregnancyStatus::Active => None,
        PregnancyStatus::Delivered => e.delivery.as_ref().map(|d| d.delivery_date),
        PregnancyStatus::Ended => Some(crate::ids::china_date(e.updated_at)),
    };
    let mut period = json!({"start": date(p.booking_date)});
    if let Some(end) = end {
        period["end"] = date(end);
    }
    let body = json!({
        "extension": ext,
        "status": fhir_status(p.status),
        "type": [concept(&code_system("episode-type"), "pregnancy", "孕产期保健")],
        "patient": reference("Patient", &p.person_id),
        "managingOrganization": reference("Organization", &p.booking_facility_id),
        "period": period,
    });
    Res {
        id: p.id.clone(),
        version: p.version,
        last_updated: e.updated_at,
        body,
        patient: Some(p.person_id.clone()),
    }
}

impl Kind for EpisodeOfCareKind {
    const TYPE: &'static str = "EpisodeOfCare";
    const DOC: &'static str = "A pregnancy (孕产期) from booking (建册) to delivery: status active|finished, managingOrganization the booking facility, LMP/EDD/dating method/gravidity/parity as extensions (http://mch-chain.example/fhir/StructureDefinition/pregnancy-*). $everything gives the pregnancy's packet.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the woman (Patient/<id>)",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "active (pregnant) | finished (delivered or ended)",
        },
        ParamDef {
            name: "date",
            kind: "date",
            doc: "the episode (booking to delivery) overlaps this date or range",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let e = pregnancy::episode_in(c, actor, id).map_err(|e| not_found_as(e, Self::TYPE, id))?;
        Ok(render(&e))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let statuses = match terms::token_criterion(q, "status") {
            Some(codes) => {
                let mut all = Vec::new();
                for code in codes {
                    all.extend(statuses_of(&code)?);
                }
                Some(all)
            }
            None => None,
        };
        let (period_from, period_to) = terms::china_days(terms::date_criterion(q, "date")?);
        let eq = EpisodeQuery {
            person_id: terms::patient_criterion(q, &["patient"])?,
            ids: q.ids.clone(),
            statuses,
            period_from,
            period_to,
            updated: q.last_updated,
            offset: q.offset,
            limit: q.count,
        };
        let (found, total) = pregnancy::search_in(c, actor, &eq)?;
        Ok(Page {
            matches: found.iter().map(render).collect(),
            total,
        })
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(pregnancy::episodes_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render)
            .collect())
    }
}
