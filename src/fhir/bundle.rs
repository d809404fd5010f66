//! Bundles: search results, histories and `$everything` packets we send, and the batch and
//! transaction Bundles hospitals post to `/fhir`.
//!
//! A transaction runs every entry in one database transaction: all or nothing (RELIABILITY.md 8).
//! Entries are processed in the FHIR order (POST, then PUT, then GET); `urn:uuid:` full URLs of
//! created resources are resolved in every reference of the Bundle, in dependency order; two
//! entries naming the same resource fail the whole Bundle (RELIABILITY.md 9). A batch runs each
//! entry in its own savepoint: one entry's failure is its own.

use serde_json::{Value, json};

use super::json::instant;
use super::outcome::{FhirError, outcome_json};
use super::search::Query;
use super::{Answer, Op, Page, Res, execute, query_pairs};
use crate::auth::model::Actor;
use crate::ids::now_utc;
use crate::storage::{AnyConnection, savepoint};

fn entry(base: &str, ty: &str, r: &Res, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/{ty}/{}", r.id),
        "resource": r.to_json(ty),
        "search": {"mode": mode},
    })
}

/// A search's answer: the page, the included Patients, paging links and the total.
pub fn searchset(base: &str, ty: &str, q: &Query, page: &Page, includes: &[(&str, Res)]) -> Value {
    let qs = |offset: i64| {
        let mut pairs = q.applied.clone();
        pairs.push(("_count".into(), q.count.to_string()));
        pairs.push(("_offset".into(), offset.to_string()));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    };
    let link = |rel: &str, offset: i64| json!({"relation": rel, "url": format!("{base}/{ty}?{}", qs(offset))});
    let mut links = vec![link("self", q.offset)];
    if q.offset + (page.matches.len() as i64) < page.total {
        links.push(link("next", q.offset + q.count));
    }
    if q.offset > 0 {
        links.push(link("previous", (q.offset - q.count).max(0)));
    }
    let mut entries: Vec<Value> = page.matches.iter().map(|r| entry(base, ty, r, "match")).collect();
    entries.extend(includes.iter().map(|(t, r)| entry(base, t, r, "include")));
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "timestamp": instant(now_utc()),
        "link": links,
    });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    if !q.ignored.is_empty() {
        // Lenient handling: say what was not applied (RELIABILITY.md 19).
        let mut outcome = outcome_json(&[super::outcome::Issue {
            severity: "warning",
            code: "not-supported",
            diagnostics: format!("ignored search parameters: {}", q.ignored.join(", ")),
            expression: None,
        }]);
        outcome["id"] = json!("ignored-parameters");
        let e = json!({"resource": outcome, "search": {"mode": "outcome"}});
        match b.get_mut("entry").and_then(Value::as_array_mut) {
            Some(list) => list.push(e),
            None => b["entry"] = json!([e]),
        }
    }
    b
}

/// A resource's history, newest first.
pub fn history(base: &str, ty: &str, id: &str, versions: &[Res]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/{ty}/{}", r.id),
                "resource": r.to_json(ty),
                "request": {"method": if r.version == 1 { "POST" } else { "PUT" },
                            "url": if r.version == 1 { ty.to_string() } else { format!("{ty}/{}", r.id) }},
                "response": {"status": if r.version == 1 { "201 Created" } else { "200 OK" },
                             "etag": r.etag(), "lastModified": instant(r.last_updated)},
            })
        })
        .collect();
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": versions.len(),
        "timestamp": instant(now_utc()),
        "link": [{"relation": "self", "url": format!("{base}/{ty}/{id}/_history")}],
    });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    b
}

/// The `$everything` packet: a searchset of everything about the patient (or pregnancy).
pub fn everything(base: &str, resources: &[(&'static str, Res)]) -> Value {
    let entries: Vec<Value> = resources.iter().map(|(t, r)| entry(base, t, r, "match")).collect();
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": resources.len(),
        "timestamp": instant(now_utc()),
    });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    b
}

/// One entry of a posted Bundle, read.
struct Entry {
    index: usize,
    full_url: Option<String>,
    method: String,
    op: Op,
}

fn entry_error(index: usize, e: FhirError) -> FhirError {
    let mut e = e;
    for issue in &mut e.issues {
        issue.diagnostics = format!("Bundle.entry[{index}]: {}", issue.diagnostics);
        issue.expression = Some(match issue.expression.take() {
            Some(x) => format!(
                "Bundle.entry[{index}].resource.{}",
                x.split_once('.').map(|(_, r)| r).unwrap_or(&x)
            ),
            None => format!("Bundle.entry[{index}]"),
        });
    }
    e
}

/// Read a posted Bundle's entries (type, method, URL, resource), refusing what we cannot run.
fn read_entries(bundle: &Value) -> Result<(bool, Vec<Entry>), FhirError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(
            FhirError::bad_request("POST /fhir takes a Bundle of type batch or transaction").at("resourceType"),
        );
    }
    let transaction = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(FhirError::bad_request(format!(
                "Bundle.type must be batch or transaction (got {})",
                other.unwrap_or("nothing")
            ))
            .at("Bundle.type"));
        }
    };
    let list = match bundle.get("entry") {
        None => return Ok((transaction, Vec::new())),
        Some(Value::Array(l)) => l,
        Some(_) => return Err(FhirError::bad_request("Bundle.entry must be an array").at("Bundle.entry")),
    };
    if list.len() > 1000 {
        return Err(FhirError::new(
            413,
            "too-costly",
            "a Bundle may hold at most 1000 entries",
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (index, e) in list.iter().enumerate() {
        let at = |m: &str| {
            FhirError::bad_request(format!("Bundle.entry[{index}]: {m}")).at(format!("Bundle.entry[{index}].request"))
        };
        let req = e.get("request").ok_or_else(|| at("request is required"))?;
        let method = req
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| at("request.method is required"))?;
        let url = req
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| at("request.url is required"))?;
        let (path, qs) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let resource = e.get("resource").cloned();
        let header = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
        let op = match (method, segs.as_slice()) {
            ("GET", [ty]) => Op::Search {
                ty: (*ty).to_string(),
                pairs: query_pairs(qs.unwrap_or(""))?,
                lenient: false,
            },
            ("GET", [ty, id]) => Op::Read {
                ty: (*ty).to_string(),
                id: (*id).to_string(),
            },
            ("GET", [ty, id, "_history"]) => Op::History {
                ty: (*ty).to_string(),
                id: (*id).to_string(),
            },
            ("GET", [ty, id, "_history", v]) => Op::VRead {
                ty: (*ty).to_string(),
                id: (*id).to_string(),
                version: (*v).to_string(),
            },
            ("POST", [ty]) if qs.is_none() => Op::Create {
                ty: (*ty).to_string(),
                body: resource.ok_or_else(|| at("a POST entry needs a resource"))?,
                if_none_exist: header("ifNoneExist"),
            },
            ("PUT", [ty, id]) if qs.is_none() => Op::Update {
                ty: (*ty).to_string(),
                id: (*id).to_string(),
                body: resource.ok_or_else(|| at("a PUT entry needs a resource"))?,
                if_match: header("ifMatch"),
            },
            ("PUT", _) => return Err(at("conditional update is not supported; PUT Type/id with ifMatch")),
            ("DELETE" | "PATCH" | "HEAD", _) => {
                return Err(FhirError::not_supported(
                    405,
                    format!("Bundle.entry[{index}]: {method} is not supported (records are corrected, never deleted)"),
                )
                .at(format!("Bundle.entry[{index}].request.method")));
            }
            _ => return Err(at(&format!("{method} {url} is not an interaction this server offers"))),
        };
        if let Op::Create { body, ty, .. } | Op::Update { body, ty, .. } = &op
            && body.get("resourceType").and_then(Value::as_str) != Some(ty.as_str())
        {
            return Err(at(&format!("the resource is not a {ty} as request.url says")));
        }
        out.push(Entry {
            index,
            full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
            method: method.to_string(),
            op,
        });
    }
    Ok((transaction, out))
}

/// Replace `urn:uuid:` references that name a created entry by the created resource.
fn resolve_refs(v: &mut Value, map: &[(String, String)]) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = val
                    && let Some((_, to)) = map.iter().find(|(from, _)| from == s)
                {
                    *s = to.clone();
                } else {
                    resolve_refs(val, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_refs(x, map)),
        _ => {}
    }
}

/// The `urn:uuid:` references a resource makes.
fn urn_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match val {
                    Value::String(s) if k == "reference" && s.starts_with("urn:uuid:") => out.push(s.clone()),
                    _ => urn_refs(val, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| urn_refs(x, out)),
        _ => {}
    }
}

fn response_entry(a: &Answer) -> Value {
    let status = match a.status {
        200 => "200 OK".to_string(),
        201 => "201 Created".to_string(),
        s => s.to_string(),
    };
    let mut resp = json!({"status": status});
    if let Some(l) = &a.location {
        resp["location"] = json!(l);
    }
    if let Some(e) = &a.etag {
        resp["etag"] = json!(e);
    }
    if let Some(t) = a.last_modified {
        resp["lastModified"] = json!(instant(t));
    }
    if !a.warnings.is_empty() {
        resp["outcome"] = a.outcome();
    }
    json!({"resource": a.body, "response": resp})
}

fn failed_entry(e: &FhirError) -> Value {
    json!({"response": {"status": e.status.to_string(), "outcome": e.outcome()}})
}

/// The identity an entry writes or reads, to find two entries naming the same resource.
fn identity_of(e: &Entry) -> Option<String> {
    match &e.op {
        Op::Update { ty, id, .. } => Some(format!("{ty}/{id}")),
        Op::Create {
            ty,
            if_none_exist: Some(c),
            ..
        } => Some(format!("{ty}?{c}")),
        _ => None,
    }
}

/// Run a posted batch or transaction Bundle inside the caller's transaction. A transaction's
/// error is the whole answer (and the caller rolls everything back); a batch answers per entry.
pub fn run(c: &mut AnyConnection, actor: &Actor, base: &str, bundle: &Value) -> Result<Value, FhirError> {
    let (transaction, entries) = read_entries(bundle)?;
    if !transaction {
        let answers: Vec<Value> = entries
            .iter()
            .map(|e| match savepoint(c, |c| execute(c, actor, base, &e.op)) {
                Ok(a) => Ok(response_entry(&a)),
                Err(err) => {
                    // The entry rolled back alone; a refusal that is audited is recorded here.
                    if let Some(detail) = err.audited_refusal() {
                        crate::audit::service::record_refusal_in(
                            c,
                            actor,
                            e.op.audit_action(),
                            err.denied.clone(),
                            &detail,
                        )?;
                    }
                    Ok(failed_entry(&entry_error(e.index, err)))
                }
            })
            .collect::<Result<_, FhirError>>()?;
        return Ok(json!({"resourceType": "Bundle", "type": "batch-response", "entry": answers}));
    }
    // Two entries naming one resource (the same fullUrl, PUT target or conditional create).
    let mut seen: Vec<String> = Vec::new();
    for e in &entries {
        for key in e.full_url.iter().cloned().chain(identity_of(e)) {
            if seen.contains(&key) {
                return Err(FhirError::bad_request(format!(
                    "Bundle.entry[{}] names the same resource as an earlier entry ({key}); a transaction must name each resource once",
                    e.index
                ))
                .at(format!("Bundle.entry[{}]", e.index)));
            }
            seen.push(key);
        }
    }
    let mut answers: Vec<Option<Value>> = vec![None; entries.len()];
    let mut resolved: Vec<(String, String)> = Vec::new();
    let rank = |m: &str| match m {
        "POST" => 0,
        "PUT" => 1,
        _ => 2,
    };
    let mut pending: Vec<&Entry> = entries.iter().collect();
    pending.sort_by_key(|e| rank(&e.method));
    while !pending.is_empty() {
        // The next entry whose urn:uuid references are all resolved (creates in dependency order).
        let ready = pending.iter().position(|e| {
            let mut refs = Vec::new();
            if let Op::Create { body, .. } | Op::Update { body, .. } = &e.op {
                urn_refs(body, &mut refs);
            }
            refs.iter().all(|r| {
                resolved.iter().any(|(from, _)| from == r) || !entries.iter().any(|x| x.full_url.as_deref() == Some(r))
            })
        });
        let Some(pos) = ready else {
            return Err(FhirError::bad_request("the Bundle's urn:uuid references form a cycle").at("Bundle.entry"));
        };
        let e = pending.remove(pos);
        let mut op = e.op.clone();
        if let Op::Create { body, .. } | Op::Update { body, .. } = &mut op {
            resolve_refs(body, &resolved);
            let mut left = Vec::new();
            urn_refs(body, &mut left);
            if let Some(r) = left.first() {
                return Err(FhirError::invalid(
                    &format!("Bundle.entry[{}].resource", e.index),
                    format!("Bundle.entry[{}]: reference {r} names no entry of this Bundle", e.index),
                ));
            }
        }
        let a = execute(c, actor, base, &op).map_err(|err| entry_error(e.index, err))?;
        if let (Some(full), Some(loc)) = (&e.full_url, &a.location) {
            let target = loc.split("/_history").next().unwrap_or(loc).to_string();
            resolved.push((full.clone(), target));
        }
        answers[e.index] = Some(response_entry(&a));
    }
    Ok(json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": answers.into_iter().map(|a| a.unwrap_or(Value::Null)).collect::<Vec<_>>(),
    }))
}
