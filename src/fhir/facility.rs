//! Organization + Location ↔ the facility directory (`facility` feature): the facility as an
//! organisation and as the place a patient is brought to (with the green channel's duty phone).
//! Read-only; both ids = the facility's id. Not patient data: any valid token may read them, and
//! reads are not audited. See README.md "Organization and Location".

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::search::{ParamDef, Query, token};
use super::terms::{code_system, concept, extension, reference};
use super::{FhirError, Kind, Page, Res};
use crate::auth::model::Actor;
use crate::facility::model::{DirectoryEntry, Kind as FacilityKind};
use crate::storage::AnyConnection;

pub struct OrganizationKind;
pub struct LocationKind;

/// Identifier system of our facility codes.
pub const FACILITY_SYSTEM: &str = "urn:mch-chain:facility";
const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
const PHYSICAL_TYPE: &str = "http://terminology.hl7.org/CodeSystem/location-physical-type";

fn kind_label(k: FacilityKind) -> &'static str {
    match k {
        FacilityKind::Clinic => "诊所/村卫生室",
        FacilityKind::HealthCentre => "卫生院/社区卫生服务中心",
        FacilityKind::MchCentre => "妇幼保健院",
        FacilityKind::Hospital => "医院",
    }
}

fn kind_concept(e: &DirectoryEntry) -> Value {
    concept(
        &code_system("facility-kind"),
        e.facility.kind.as_str(),
        kind_label(e.facility.kind),
    )
}

fn level_concept(e: &DirectoryEntry) -> Value {
    concept(
        &code_system("facility-level"),
        e.facility.level.as_str(),
        e.facility.level.label_zh(),
    )
}

fn identifier(e: &DirectoryEntry) -> Value {
    json!([{"system": FACILITY_SYSTEM, "value": e.facility.code}])
}

/// Where it is: the GB/T 2260 county code (and township code) as extensions of the address.
fn address(e: &DirectoryEntry) -> Value {
    let mut ext = vec![json!({"url": extension("gb2260-division"), "valueCode": e.facility.jurisdiction})];
    if let Some(t) = &e.facility.township_code {
        ext.push(json!({"url": extension("township-code"), "valueCode": t}));
    }
    json!([{"extension": ext, "country": "CN"}])
}

fn meta(e: &DirectoryEntry, added: NaiveDateTime, body: Value) -> Res {
    Res {
        id: e.facility.id.clone(),
        version: 1,
        last_updated: added,
        body,
        patient: None,
    }
}

pub fn render_organization(e: &DirectoryEntry, added: NaiveDateTime) -> Res {
    let mut ext: Vec<Value> = e
        .facility
        .capabilities
        .iter()
        .map(|c| json!({"url": extension("facility-capability"), "valueCode": c}))
        .collect();
    if let Some(m) = &e.maternal_centre_id {
        ext.push(
            json!({"url": extension("responsible-maternal-centre"), "valueReference": reference("Organization", m)}),
        );
    }
    if let Some(n) = &e.neonatal_centre_id {
        ext.push(
            json!({"url": extension("responsible-neonatal-centre"), "valueReference": reference("Organization", n)}),
        );
    }
    let mut body = json!({
        "identifier": identifier(e),
        "active": true,
        "type": [concept(ORGANIZATION_TYPE, "prov", "Healthcare Provider"), kind_concept(e), level_concept(e)],
        "name": e.facility.name,
        "address": address(e),
    });
    if !ext.is_empty() {
        body["extension"] = Value::Array(ext);
    }
    meta(e, added, body)
}

pub fn render_location(e: &DirectoryEntry, added: NaiveDateTime) -> Res {
    let mut body = json!({
        "identifier": identifier(e),
        "status": "active",
        "name": e.facility.name,
        "mode": "instance",
        "type": [kind_concept(e)],
        "address": address(e).get(0).cloned().unwrap_or(Value::Null),
        "physicalType": concept(PHYSICAL_TYPE, "si", "Site"),
        "managingOrganization": reference("Organization", &e.facility.id),
    });
    if let Some(p) = e.duty_phone.as_deref().filter(|p| !p.trim().is_empty()) {
        body["telecom"] = json!([{"system": "phone", "value": p, "use": "work"}]);
    }
    meta(e, added, body)
}

const PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "name",
        kind: "string",
        doc: "the name starts with (:contains anywhere, :exact the whole name)",
    },
    ParamDef {
        name: "identifier",
        kind: "token",
        doc: "urn:mch-chain:facility|<code>, or the code alone",
    },
    ParamDef {
        name: "type",
        kind: "token",
        doc: "kind (clinic, health_centre, mch_centre, hospital) or level (village, township, county, city, province)",
    },
];

/// The directory entries a search names, in directory order (county, then code).
fn matching(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &Query,
) -> Result<Vec<(DirectoryEntry, NaiveDateTime)>, FhirError> {
    let mut all = crate::facility::service::directory_in(c, actor)?;
    if let Some(ids) = &q.ids {
        all.retain(|(e, _)| ids.contains(&e.facility.id));
    }
    if let Some(from) = q.last_updated.from {
        all.retain(|(_, t)| *t >= from);
    }
    if let Some(to) = q.last_updated.to {
        all.retain(|(_, t)| *t < to);
    }
    for (name, modifier, value) in &q.criteria {
        match name.as_str() {
            "name" => {
                let v = value.trim().to_lowercase();
                all.retain(|(e, _)| {
                    let n = e.facility.name.to_lowercase();
                    match modifier.as_deref() {
                        Some("exact") => e.facility.name == value.trim(),
                        Some("contains") => n.contains(&v),
                        _ => n.starts_with(&v),
                    }
                });
            }
            "identifier" => {
                let (system, code) = token(value);
                let system_ok = system.as_deref().is_none_or(|s| s == FACILITY_SYSTEM);
                all.retain(|(e, _)| system_ok && e.facility.code == code);
            }
            "type" => {
                let codes: Vec<String> = value.split(',').map(|v| token(v.trim()).1).collect();
                all.retain(|(e, _)| {
                    codes
                        .iter()
                        .any(|c| c == e.facility.kind.as_str() || c == e.facility.level.as_str() || c == "prov")
                });
            }
            _ => {}
        }
    }
    Ok(all)
}

fn page(
    all: Vec<(DirectoryEntry, NaiveDateTime)>,
    q: &Query,
    render: fn(&DirectoryEntry, NaiveDateTime) -> Res,
) -> Page {
    let total = all.len() as i64;
    let matches = all
        .iter()
        .skip(usize::try_from(q.offset).unwrap_or(0))
        .take(usize::try_from(q.count).unwrap_or(0))
        .map(|(e, t)| render(e, *t))
        .collect();
    Page { matches, total }
}

fn one(c: &mut AnyConnection, actor: &Actor, ty: &str, id: &str) -> Result<(DirectoryEntry, NaiveDateTime), FhirError> {
    crate::facility::service::directory_in(c, actor)?
        .into_iter()
        .find(|(e, _)| e.facility.id == id)
        .ok_or_else(|| FhirError::not_found(format!("{ty}/{id} does not exist")))
}

impl Kind for OrganizationKind {
    const TYPE: &'static str = "Organization";
    const DOC: &'static str = "A facility of the directory: identifier urn:mch-chain:facility|<code>, type kind and level (http://mch-chain.example/fhir/CodeSystem/facility-kind, facility-level), capabilities and responsible critical-care centres as extensions. Any token may read it.";
    const PARAMS: &'static [ParamDef] = PARAMS;

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let (e, t) = one(c, actor, Self::TYPE, id)?;
        Ok(render_organization(&e, t))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        Ok(page(matching(c, actor, q)?, q, render_organization))
    }
}

impl Kind for LocationKind {
    const TYPE: &'static str = "Location";
    const DOC: &'static str = "A facility as a place (id = the facility's id): name, type, the green channel's duty phone, managingOrganization the facility's Organization. Any token may read it.";
    const PARAMS: &'static [ParamDef] = PARAMS;

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let (e, t) = one(c, actor, Self::TYPE, id)?;
        Ok(render_location(&e, t))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        Ok(page(matching(c, actor, q)?, q, render_location))
    }
}
