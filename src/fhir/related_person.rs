//! RelatedPerson ↔ a child's mother as her birth record names her (`child` feature). Read-only;
//! id `<child id>.mother`. See README.md "RelatedPerson".
//!
//! R4 `Patient.link` joins records of the *same* person, so a mother and her child are linked the
//! way R4 provides for people in a relationship: a RelatedPerson whose `patient` is the child,
//! `relationship` v3-RoleCode `MTH`, with the mother's own details, and our extension pointing at
//! the mother's own Patient.

use serde_json::{Map, Value, json};

use super::search::{ParamDef, Query};
use super::terms::{extension, reference};
use super::{FhirError, Kind, Page, Res, patient, terms};
use crate::auth::model::{Action, Actor};
use crate::child::service::{self as child, LinkQuery, MotherLink};
use crate::identity::service::ID_NUMBER_SYSTEM;
use crate::storage::AnyConnection;

pub struct RelatedPersonKind;

const V3_ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const SUFFIX: &str = ".mother";

/// The RelatedPerson id of a child's mother.
pub fn id_of(child_id: &str) -> String {
    format!("{child_id}{SUFFIX}")
}

fn child_of(id: &str) -> Option<&str> {
    id.strip_suffix(SUFFIX).filter(|c| crate::ids::is_id(c))
}

pub fn render(l: &MotherLink, actor: &Actor) -> Res {
    let m = &l.mother.person;
    let full = actor.may(Action::SeeFullIdNumber);
    let mut body = Map::new();
    body.insert(
        "extension".into(),
        json!([{"url": extension("related-person-patient"), "valueReference": reference("Patient", &m.id)}]),
    );
    let mut ids: Vec<Value> = Vec::new();
    if let Some(n) = &m.id_number {
        ids.push(patient::fhir_identifier(ID_NUMBER_SYSTEM, n, full));
    }
    ids.extend(
        l.mother
            .identifiers
            .iter()
            .map(|(s, v)| patient::fhir_identifier(s, v, full)),
    );
    if !ids.is_empty() {
        body.insert("identifier".into(), Value::Array(ids));
    }
    body.insert("active".into(), json!(true));
    body.insert("patient".into(), reference("Patient", &l.child.person_id));
    body.insert(
        "relationship".into(),
        json!([{"coding": [terms::coding(V3_ROLE_CODE, "MTH", "mother")], "text": "母亲"}]),
    );
    body.insert("name".into(), json!([{"text": m.name}]));
    if let Some(ph) = &m.phone {
        body.insert("telecom".into(), json!([{"system": "phone", "value": ph}]));
    }
    body.insert("gender".into(), json!(m.sex.as_str()));
    body.insert("birthDate".into(), json!(m.birth_date.to_string()));
    if let Some(a) = &m.address {
        body.insert("address".into(), json!([{"text": a}]));
    }
    Res {
        id: id_of(&l.child.person_id),
        version: m.version,
        last_updated: l.changed_at(),
        body: Value::Object(body),
        patient: Some(l.child.person_id.clone()),
    }
}

impl Kind for RelatedPersonKind {
    const TYPE: &'static str = "RelatedPerson";
    const DOC: &'static str = "A child's mother as her birth record names her (id <child id>.mother): patient = the child, relationship v3-RoleCode MTH, the mother's name, identifiers (ID number masked unless the role may see it), birth date, phone and address from her own record, and the extension http://mch-chain.example/fhir/StructureDefinition/related-person-patient pointing at her own Patient. The mother's Patient/$everything carries her children's Patients and these RelatedPersons.";
    const PARAMS: &'static [ParamDef] = &[ParamDef {
        name: "patient",
        kind: "reference",
        doc: "the child (Patient/<id>)",
    }];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let Some(child_id) = child_of(id) else {
            return Err(FhirError::not_found(format!("RelatedPerson/{id} does not exist")));
        };
        let l = child::mother_link_in(c, actor, child_id).map_err(|e| terms::not_found_as(e, Self::TYPE, id))?;
        Ok(render(&l, actor))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let lq = LinkQuery {
            child_id: terms::patient_criterion(q, &["patient"])?,
            // An id that is not `<child id>.mother` names no RelatedPerson of ours.
            ids: q
                .ids
                .as_ref()
                .map(|ids| ids.iter().filter_map(|i| child_of(i)).map(str::to_string).collect()),
            changed: q.last_updated,
            offset: q.offset,
            limit: q.count,
        };
        let (found, total) = child::mother_link_search_in(c, actor, &lq)?;
        Ok(Page {
            matches: found.iter().map(|l| render(l, actor)).collect(),
            total,
        })
    }

    /// A child's packet has her mother as RelatedPerson; a mother's packet (or one pregnancy's)
    /// has her children's Patients and their RelatedPersons, so a receiving hospital sees the
    /// newborns. The children's own records (visits, vaccinations) are in their own packets.
    fn everything(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<(&'static str, Res)>, FhirError> {
        let mut out = Vec::new();
        for l in child::mother_links_for_person_in(c, actor, person_id, pregnancy_id)? {
            if l.child.person_id != person_id {
                let p = patient::read_in(c, actor, &l.child.person_id)?;
                out.push(("Patient", p));
            }
            out.push((Self::TYPE, render(&l, actor)));
        }
        Ok(out)
    }
}
