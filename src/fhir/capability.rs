//! `GET /fhir/metadata`: the CapabilityStatement, built from the same declarations the server
//! runs on (each [`Kind`]'s interactions and search parameters), so it says only what is true.

use serde_json::{Value, json};

use super::search::RESULT_PARAMS;
use super::{FhirError, Kind, TYPES, with_kind};

fn resource<K: Kind>() -> Value {
    let mut interactions = vec![
        json!({"code": "read"}),
        json!({"code": "vread"}),
        json!({"code": "history-instance"}),
        json!({"code": "search-type"}),
    ];
    if K::CREATE {
        interactions.push(json!({"code": "create"}));
    }
    if K::UPDATE {
        interactions.push(json!({"code": "update"}));
    }
    let params: Vec<Value> = K::PARAMS
        .iter()
        .chain(
            RESULT_PARAMS
                .iter()
                .filter(|p| p.name == "_lastUpdated" || p.name == "_id"),
        )
        .map(|p| json!({"name": p.name, "type": p.kind, "documentation": p.doc}))
        .collect();
    let mut r = json!({
        "type": K::TYPE,
        "documentation": K::DOC,
        "interaction": interactions,
        "versioning": if K::VERSIONED { "versioned-update" } else { "versioned" },
        "readHistory": K::VERSIONED,
        "updateCreate": false,
        "conditionalCreate": K::CREATE,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": params,
    });
    if !K::INCLUDES.is_empty() {
        r["searchInclude"] = json!(K::INCLUDES);
    }
    if matches!(K::TYPE, "Patient" | "EpisodeOfCare") {
        r["operation"] = json!([{
            "name": "everything",
            "definition": format!("http://hl7.org/fhir/OperationDefinition/{}-everything", K::TYPE),
            "documentation": "the whole record a receiving hospital needs (no parameters)"
        }]);
    }
    r
}

pub fn statement(base: &str) -> Value {
    let resources: Vec<Value> = TYPES
        .iter()
        .filter_map(|t| with_kind!(*t, K => Ok::<Value, FhirError>(resource::<K>())).ok())
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "mch-chain",
        "kind": "instance",
        "software": {"name": "mch-chain", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "妇幼健康一条链 FHIR R4 接口", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "JSON only. Bearer tokens from `mch-chain token issue`, bound to a facility and its jurisdiction. Unknown search parameters are refused (400) unless the request says Prefer: handling=lenient. A valid resource whose content we do not map is accepted and that content kept; a write answered to Prefer: return=OperationOutcome (or a Bundle entry's response.outcome) names it in warnings. Records are corrected, never deleted: DELETE and PATCH are not offered.",
            "security": {
                "cors": false,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth", "display": "Bearer token"}]}],
                "description": "Authorization: Bearer <token>; every read and write is audited (AuditEvent)"
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }],
    })
}
