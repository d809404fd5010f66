//! ServiceRequest + Task ↔ referral (转诊, `referral` feature): the request (who asks whom to take
//! which patient, how urgently, why) and its fulfilment (the state machine as Task.status and
//! businessStatus). Read-only; both ids = the referral's id; visible exactly as on the referral
//! pages. See README.md "ServiceRequest and Task".

use serde_json::{Value, json};

use super::search::{ParamDef, Query};
use super::terms::{code_system, concept, not_found_as, reference, time};
use super::{FhirError, Kind, Page, Res, terms};
use crate::auth::model::Actor;
use crate::referral::model::{PatientKind, ReferralRecord, State, Urgency};
use crate::referral::service::{self as referral, ReferralQuery};
use crate::storage::AnyConnection;

pub struct ServiceRequestKind;
pub struct TaskKind;

const SNOMED: &str = "http://snomed.info/sct";
const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";

/// Our referral state as ServiceRequest.status: the request stands (active) from sending until
/// the receiving centre's feedback fulfils it; a cancelled referral is revoked.
pub fn service_request_status(s: State) -> &'static str {
    match s {
        State::Draft => "draft",
        State::Sent
        | State::Acknowledged
        | State::Accepted
        | State::Rejected
        | State::Redirected
        | State::Departed
        | State::Arrived => "active",
        State::FeedbackReturned | State::Closed => "completed",
        State::Cancelled => "revoked",
    }
}

/// Our referral state as Task.status (businessStatus carries the state itself).
pub fn task_status(s: State) -> &'static str {
    match s {
        State::Draft => "draft",
        State::Sent => "requested",
        State::Acknowledged => "received",
        State::Accepted => "accepted",
        State::Rejected => "rejected",
        // Passed on to another centre, which has yet to answer.
        State::Redirected => "requested",
        State::Departed | State::Arrived => "in-progress",
        State::FeedbackReturned | State::Closed => "completed",
        State::Cancelled => "cancelled",
    }
}

const SERVICE_REQUEST_STATUSES: &[&str] = &[
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
];
const TASK_STATUSES: &[&str] = &[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
];

/// The states a status search names, through one of the mappings above.
fn states_for(
    q: &Query,
    param: &str,
    known: &[&str],
    map: fn(State) -> &'static str,
) -> Result<Option<Vec<State>>, FhirError> {
    let Some(codes) = terms::token_criterion(q, param) else {
        return Ok(None);
    };
    for c in &codes {
        if !known.contains(&c.as_str()) {
            return Err(FhirError::bad_request(format!(
                "search parameter {param}: {c} is not one of {}",
                known.join(", ")
            )));
        }
    }
    Ok(Some(
        State::ALL
            .iter()
            .copied()
            .filter(|s| codes.iter().any(|c| c == map(*s)))
            .collect(),
    ))
}

pub fn priority(u: Urgency) -> &'static str {
    match u {
        Urgency::Emergency => "stat",
        Urgency::Urgent => "urgent",
        Urgency::Planned => "routine",
    }
}

fn kind_concept(k: PatientKind) -> Value {
    match k {
        PatientKind::Maternal => concept(&code_system("referral-kind"), "maternal", "危重孕产妇转诊"),
        PatientKind::Newborn => concept(&code_system("referral-kind"), "newborn", "危重新生儿转诊"),
    }
}

pub fn render_service_request(r: &ReferralRecord) -> Res {
    let l = &r.lifecycle;
    let mut body = json!({
        "status": service_request_status(l.state),
        "intent": "order",
        "category": [concept(SNOMED, "3457005", "Patient referral")],
        "priority": priority(l.urgency),
        "code": kind_concept(r.patient_kind),
        "subject": reference("Patient", &r.person_id),
        "authoredOn": time(l.created_at),
        "requester": reference("Organization", &l.from_facility_id),
        "performer": [reference("Organization", &l.to_facility_id)],
        "reasonCode": [{"text": r.reason}],
    });
    if let Some(p) = &r.pregnancy_id {
        body["supportingInfo"] = json!([reference("EpisodeOfCare", p)]);
    }
    if !r.details.diagnoses.trim().is_empty() {
        body["note"] = json!([{"text": format!("诊断：{}", r.details.diagnoses.trim())}]);
    }
    Res {
        id: l.id.clone(),
        version: r.version,
        last_updated: r.updated_at,
        body,
        patient: Some(r.person_id.clone()),
    }
}

fn output(code: &str, label: &str, value: Value) -> Value {
    let mut o = json!({"type": concept(&code_system("referral-feedback"), code, label)});
    if let (Some(m), Some(v)) = (o.as_object_mut(), value.as_object()) {
        m.extend(v.clone());
    }
    o
}

pub fn render_task(r: &ReferralRecord) -> Res {
    let l = &r.lifecycle;
    let mut body = json!({
        "status": task_status(l.state),
        "businessStatus": concept(&code_system("referral-state"), l.state.as_str(), l.state.label_zh()),
        "intent": "order",
        "priority": priority(l.urgency),
        "code": concept(TASK_CODE, "fulfill", "Fulfill the focal request"),
        "focus": reference("ServiceRequest", &l.id),
        "for": reference("Patient", &r.person_id),
        "authoredOn": time(l.created_at),
        "lastModified": time(r.updated_at),
        "requester": reference("Organization", &l.from_facility_id),
        "owner": reference("Organization", &l.to_facility_id),
    });
    let end = l.ended_at.or(match l.state {
        State::FeedbackReturned => l.feedback_at,
        _ => None,
    });
    if l.sent_at.is_some() || end.is_some() {
        let mut period = json!({});
        if let Some(s) = l.sent_at {
            period["start"] = time(s);
        }
        if let Some(e) = end {
            period["end"] = time(e);
        }
        body["executionPeriod"] = period;
    }
    if let Some(f) = &l.feedback {
        let mut out = vec![
            output("diagnosis", "接诊诊断", json!({"valueString": f.diagnosis})),
            output(
                "outcome",
                "转归",
                json!({"valueCodeableConcept": concept(&code_system("referral-outcome"), f.outcome.as_str(), f.outcome.label_zh())}),
            ),
        ];
        if !f.treatment.trim().is_empty() {
            out.push(output("treatment", "处理", json!({"valueString": f.treatment})));
        }
        if !f.note.trim().is_empty() {
            out.push(output("note", "备注", json!({"valueString": f.note})));
        }
        body["output"] = Value::Array(out);
    }
    if let Some(h) = &l.handover {
        let text = [h.received_by.trim(), h.note.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("：");
        if !text.is_empty() {
            body["note"] = json!([{"text": format!("到达交接 {text}")}]);
        }
    }
    Res {
        id: l.id.clone(),
        version: r.version,
        last_updated: r.updated_at,
        body,
        patient: Some(r.person_id.clone()),
    }
}

/// The search both types share: `status` went through the type's own mapping.
fn query(q: &Query, states: Option<Vec<State>>, from_param: &str, to_param: &str) -> Result<ReferralQuery, FhirError> {
    Ok(ReferralQuery {
        ids: q.ids.clone(),
        person_id: terms::patient_criterion(q, &["patient"])?,
        states,
        updated: q.last_updated,
        from_facility_id: terms::reference_criterion(q, from_param, "Organization")?,
        to_facility_id: terms::reference_criterion(q, to_param, "Organization")?,
        offset: q.offset,
        limit: q.count,
    })
}

impl Kind for ServiceRequestKind {
    const TYPE: &'static str = "ServiceRequest";
    const DOC: &'static str = "A referral (转诊) as the request: intent order, priority stat|urgent|routine (紧急|急|择期), requester the sending facility, performer the receiving centre, reasonCode the reason; status draft|active|completed|revoked. Its progress is the Task with the same id.";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the patient referred (Patient/<id>)",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "draft | active | completed | revoked (README.md maps our referral states)",
        },
        ParamDef {
            name: "requester",
            kind: "reference",
            doc: "the sending facility (Organization/<id>)",
        },
        ParamDef {
            name: "performer",
            kind: "reference",
            doc: "the receiving centre (Organization/<id>)",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let r = referral::referral_in(c, actor, id).map_err(|e| not_found_as(e, Self::TYPE, id))?;
        Ok(render_service_request(&r))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let states = states_for(q, "status", SERVICE_REQUEST_STATUSES, service_request_status)?;
        let rq = query(q, states, "requester", "performer")?;
        let (found, total) = referral::search_in(c, actor, &rq)?;
        Ok(Page {
            matches: found.iter().map(render_service_request).collect(),
            total,
        })
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(referral::referrals_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render_service_request)
            .collect())
    }
}

impl Kind for TaskKind {
    const TYPE: &'static str = "Task";
    const DOC: &'static str = "A referral's progress: focus the ServiceRequest (same id), for the patient, requester the sending facility, owner the receiving centre; status and businessStatus from our state (README.md table: sent→requested, acknowledged→received, accepted→accepted, departed/arrived→in-progress, feedback_returned/closed→completed …); output the feedback (diagnosis, outcome).";
    const PARAMS: &'static [ParamDef] = &[
        ParamDef {
            name: "patient",
            kind: "reference",
            doc: "the patient referred (Patient/<id>)",
        },
        ParamDef {
            name: "status",
            kind: "token",
            doc: "Task.status (README.md maps our referral states)",
        },
        ParamDef {
            name: "business-status",
            kind: "token",
            doc: "our referral state: draft, sent, acknowledged, accepted, rejected, redirected, departed, arrived, feedback_returned, closed, cancelled",
        },
        ParamDef {
            name: "requester",
            kind: "reference",
            doc: "the sending facility (Organization/<id>)",
        },
        ParamDef {
            name: "owner",
            kind: "reference",
            doc: "the receiving centre (Organization/<id>)",
        },
    ];

    fn read(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<Res, FhirError> {
        let r = referral::referral_in(c, actor, id).map_err(|e| not_found_as(e, Self::TYPE, id))?;
        Ok(render_task(&r))
    }

    fn search(c: &mut AnyConnection, actor: &Actor, q: &Query) -> Result<Page, FhirError> {
        let mut states = states_for(q, "status", TASK_STATUSES, task_status)?;
        if let Some(codes) = terms::token_criterion(q, "business-status") {
            let mut named = Vec::new();
            for code in codes {
                named.push(State::parse(&code).ok_or_else(|| {
                    FhirError::bad_request(format!(
                        "search parameter business-status: {code} is not a referral state"
                    ))
                })?);
            }
            states = Some(match states {
                Some(prev) => prev.into_iter().filter(|s| named.contains(s)).collect(),
                None => named,
            });
        }
        let rq = query(q, states, "requester", "owner")?;
        let (found, total) = referral::search_in(c, actor, &rq)?;
        Ok(Page {
            matches: found.iter().map(render_task).collect(),
            total,
        })
    }

    fn for_patient(
        c: &mut AnyConnection,
        actor: &Actor,
        person_id: &str,
        pregnancy_id: Option<&str>,
    ) -> Result<Vec<Res>, FhirError> {
        Ok(referral::referrals_for_person_in(c, actor, person_id, pregnancy_id)?
            .iter()
            .map(render_task)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in README.md "ServiceRequest and Task", state by state.
    #[test]
    fn every_referral_state_has_its_documented_task_and_request_status() {
        let table = [
            (State::Draft, "draft", "draft"),
            (State::Sent, "requested", "active"),
            (State::Acknowledged, "received", "active"),
            (State::Accepted, "accepted", "active"),
            (State::Rejected, "rejected", "active"),
            (State::Redirected, "requested", "active"),
            (State::Departed, "in-progress", "active"),
            (State::Arrived, "in-progress", "active"),
            (State::FeedbackReturned, "completed", "completed"),
            (State::Closed, "completed", "completed"),
            (State::Cancelled, "cancelled", "revoked"),
        ];
        assert_eq!(table.len(), State::ALL.len(), "every state is in the table");
        for (state, task, request) in table {
            assert_eq!(task_status(state), task, "{state:?}");
            assert!(TASK_STATUSES.contains(&task));
            assert_eq!(service_request_status(state), request, "{state:?}");
            assert!(SERVICE_REQUEST_STATUSES.contains(&request));
        }
        assert_eq!(priority(Urgency::Emergency), "stat");
        assert_eq!(priority(Urgency::Urgent), "urgent");
        assert_eq!(priority(Urgency::Planned), "routine");
    }
}
