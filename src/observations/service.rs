//! Result use cases: recording the results of one message for a woman (inside the interface's
//! transaction), and the dated facts they give risk grading.

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::events::{RESULTS_RECORDED, ResultsRecorded};
use super::model::{
    ResultInput, StoredResult, TestResult, catalogue, counts_as_final, document_states_fetal_sex, read, read_named,
};
use super::repo::{self, NewObservation};
use crate::audit::service::{record, record_many};
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::identity::model::Person;
use crate::identity::service::person_target;
use crate::ids::{new_id, now_utc};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::storage::AnyConnection;

/// What recording a message's results did.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub pregnancy_id: Option<String>,
    /// Results kept but not interpreted (code not in the mapping), and withheld fetal-sex findings:
    /// told to the sender as warnings.
    pub warnings: Vec<FieldError>,
    /// Positions (1-based) of the results that stated fetal sex.
    pub fetal_sex: Vec<usize>,
}

/// A warning about one field of the `index`-th result, named as `OBX[n]-f`.
fn obx_warning(index: usize, field: usize, code: &'static str, words: &str) -> FieldError {
    let path = format!("OBX[{index}]-{field}");
    FieldError::new(&path, code, format!("{path}: {words}"))
}

/// The pregnancy results belong to: the active one, else the most recent.
fn pregnancy_of(c: &mut AnyConnection, person_id: &str) -> Result<Option<Pregnancy>, ServiceError> {
    let all = crate::pregnancy::repo::for_person(c, person_id)?;
    let active = all.iter().find(|p| p.status == PregnancyStatus::Active).cloned();
    Ok(active.or_else(|| all.into_iter().next()))
}

/// Record the results of one message for `person`: every value is checked first and nothing is
/// stored if any is wrong (the errors name the OBX field); unknown codes are kept as sent; a
/// fetal-sex finding is kept without its value, flagged and audited (RULES.md §9.1). A result
/// that may change the risk picture proposes a re-grade (RULES.md §1.1 动态评估), in the same
/// transaction. `received_at` stands in for a missing OBX-14.
pub fn record_results(
    c: &mut AnyConnection,
    actor: &Actor,
    person: &Person,
    inputs: &[ResultInput],
    source_message_id: &str,
    received_at: NaiveDateTime,
) -> Result<Recorded, ServiceError> {
    // The receiving centre of an accepted referral records results for her too (access grant).
    if !crate::identity::service::may_on_person(
        c,
        actor,
        Action::RecordResult,
        &person.jurisdiction,
        person.township_code.as_deref(),
        &person.id,
        None,
    )? {
        return Err(ServiceError::forbidden(person_target(&person.id)));
    }
    let cat = catalogue();
    let mut readings = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    for r in inputs {
        match read(cat, r) {
            Ok(reading) => readings.push(reading),
            Err(e) => errors.push(e),
        }
        if let Some(at) = r.effective
            && at > received_at + Duration::days(1)
        {
            errors.push(FieldError::new(
                &format!("OBX[{}]-14", r.index),
                "future",
                format!("OBX[{}]-14: the observation time is in the future", r.index),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    let pregnancy = pregnancy_of(c, &person.id)?;
    let now = now_utc();
    let mut out = Recorded {
        pregnancy_id: pregnancy.as_ref().map(|p| p.id.clone()),
        ..Recorded::default()
    };
    let mut regrade = false;
    for (r, reading) in inputs.iter().zip(&readings) {
        let id = new_id();
        let (code_text, value_type) = if reading.fetal_sex {
            // The name of a fetal-sex test may itself say more than it should: keep the code only.
            ("", r.value_type.as_str())
        } else {
            (r.code_text.as_str(), r.value_type.as_str())
        };
        repo::insert(
            c,
            &NewObservation {
                id: &id,
                person_id: &person.id,
                pregnancy_id: out.pregnancy_id.as_deref(),
                jurisdiction: &person.jurisdiction,
                township_code: person.township_code.as_deref(),
                code_system: &r.code_system,
                code: &r.code,
                code_text,
                concept: reading.concept.as_deref(),
                loinc: reading.loinc.as_deref(),
                value_type,
                value_text: reading.value_text.as_deref(),
                value_num: reading.value_num,
                unit: reading.unit.as_deref(),
                interpretation: reading.interpretation,
                abnormal_flag: (!reading.fetal_sex && !r.abnormal_flag.trim().is_empty())
                    .then_some(r.abnormal_flag.trim()),
                effective_at: r.effective.unwrap_or(received_at),
                source_message_id,
                facility_id: &actor.facility.id,
                status: r.status.trim(),
                flagged_fetal_sex: reading.fetal_sex,
                created_at: now,
                received: None,
            },
        )?;
        let target = AuditTarget {
            entity_type: "observation",
            entity_id: Some(id.clone()),
            person_id: Some(person.id.clone()),
        };
        if reading.fetal_sex {
            out.fetal_sex.push(r.index);
            out.warnings.push(obx_warning(
                r.index,
                5,
                "fetal_sex_withheld",
                "a fetal-sex finding is not stored or shown (RULES.md §9.1 两非); the rest of the message was processed",
            ));
            record(
                c,
                actor,
                "create",
                target,
                "fetal-sex finding withheld, value not stored (RULES.md §9.1)",
            )?;
            continue;
        }
        if reading.concept.is_none() {
            out.warnings.push(obx_warning(
                r.index,
                3,
                "unknown_code",
                "code not in our mapping (rules/hl7/results.toml): stored as sent, not interpreted",
            ));
        }
        let decides_fact = reading
            .concept
            .as_deref()
            .and_then(|n| cat.concept(n))
            .is_some_and(|c| c.fact.is_some());
        regrade |= decides_fact && counts_as_final(&r.status);
        record(
            c,
            actor,
            "create",
            target,
            &format!("result recorded from HL7 message {source_message_id}"),
        )?;
    }
    if regrade && let Some(p) = &pregnancy {
        let day = crate::ids::china_date(inputs.iter().filter_map(|r| r.effective).max().unwrap_or(received_at));
        RESULTS_RECORDED.publish(
            c,
            &ResultsRecorded {
                actor: actor.clone(),
                pregnancy: p.clone(),
                day,
            },
        )?;
    }
    Ok(out)
}

/// A result that arrives as a document of its own (a FHIR Observation) rather than as one OBX of
/// a message: the same reading as [`record_results`] (codes, value checks, unit conversion,
/// re-grading), plus its business identifiers and the document as received.
#[derive(Debug, Clone, Default)]
pub struct DocumentResult {
    /// Code, value, unit, status (HL7 table 0085 letter) and time, as an OBX would give them. Its
    /// `value_type` is what the value is read as (`NM` for a number).
    pub input: ResultInput,
    /// How the value is stored (`NM`, `CWE`, `ST`, `DTM`, `boolean`, `integer`, `Range` …).
    pub value_type: String,
    /// Further codes the document gives the same result (more codings), checked for fetal sex.
    pub other_codes: Vec<String>,
    /// Business identifiers (system, value): each may name one result only.
    pub identifiers: Vec<(String, String)>,
    /// The document as received (JSON), scanned whole for fetal sex and kept for read-back.
    pub received: Option<String>,
    /// Where it came from, for the record (`FHIR`).
    pub source: String,
}

/// The field code of a refusal because the result states fetal sex (RULES.md §9.1): the door
/// answers it as a refusal and audits it (in a commit of its own, as nothing else is kept).
pub const FETAL_SEX_REFUSED: &str = "fetal_sex_refused";

fn result_target(id: &str, person_id: &str) -> AuditTarget {
    AuditTarget {
        entity_type: "observation",
        entity_id: Some(id.to_string()),
        person_id: Some(person_id.to_string()),
    }
}

/// Record one result sent as a document for person `person_id`. Unlike a message (where a
/// fetal-sex OBX is kept flagged and without value so the rest of the message can be processed),
/// a document that states fetal sex anywhere is refused whole and nothing of it is stored
/// ([`FETAL_SEX_REFUSED`]). Field errors are named by `name` (see [`read_named`]); field `code`
/// names the code, `identifier` an identifier already held by another result.
pub fn record_document_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    doc: &DocumentResult,
    name: &dyn Fn(usize) -> String,
) -> Result<StoredResult, ServiceError> {
    let person = crate::identity::service::person_for(c, actor, Action::RecordResult, person_id)?;
    let cat = catalogue();
    let r = &doc.input;
    let states_fetal_sex = cat.is_fetal_sex(r)
        || doc.other_codes.iter().any(|code| {
            cat.is_fetal_sex(&ResultInput {
                code: code.clone(),
                ..ResultInput::default()
            })
        })
        || doc
            .received
            .as_deref()
            .is_some_and(|d| match serde_json::from_str::<serde_json::Value>(d) {
                Ok(v) => document_states_fetal_sex(cat, &v),
                Err(_) => crate::privacy::model::states_fetal_sex(d),
            });
    if states_fetal_sex {
        return Err(ServiceError::invalid(
            &name(3),
            FETAL_SEX_REFUSED,
            "不接收胎儿性别结果（《人口与计划生育法》第三十九条，RULES.md §9.1 两非）：未保存任何内容，此次提交已记入审计日志",
        ));
    }
    let reading = read_named(cat, r, name).map_err(|e| ServiceError::Invalid(vec![e]))?;
    let now = now_utc();
    if let Some(at) = r.effective
        && at > now + Duration::days(1)
    {
        return Err(ServiceError::invalid(
            &name(14),
            "future",
            format!("{}: the observation time is in the future", name(14)),
        ));
    }
    let id = new_id();
    for (system, value) in &doc.identifiers {
        if !repo::claim_identifier(c, system, value, &id)? {
            return Err(ServiceError::Conflict(format!(
                "标识 {system}|{value} 已属于另一检验结果"
            )));
        }
    }
    let pregnancy = pregnancy_of(c, &person.id)?;
    let status = r.status.trim();
    let new = NewObservation {
        id: &id,
        person_id: &person.id,
        pregnancy_id: pregnancy.as_ref().map(|p| p.id.as_str()),
        jurisdiction: &person.jurisdiction,
        township_code: person.township_code.as_deref(),
        code_system: &r.code_system,
        code: &r.code,
        code_text: &r.code_text,
        concept: reading.concept.as_deref(),
        loinc: reading.loinc.as_deref(),
        value_type: &doc.value_type,
        value_text: reading.value_text.as_deref(),
        value_num: reading.value_num,
        unit: reading.unit.as_deref(),
        interpretation: reading.interpretation,
        abnormal_flag: Some(r.abnormal_flag.trim()).filter(|f| !f.is_empty()),
        // Microseconds, as PostgreSQL keeps them: what is answered is what a read returns.
        effective_at: r
            .effective
            .map(|t| chrono::SubsecRound::trunc_subsecs(t, 6))
            .unwrap_or(now),
        source_message_id: &doc.source,
        facility_id: &actor.facility.id,
        status,
        flagged_fetal_sex: false,
        created_at: now,
        received: doc.received.as_deref(),
    };
    repo::insert(c, &new)?;
    let mut stored = StoredResult::from(&new);
    stored.identifiers = doc.identifiers.clone();
    stored.identifiers.sort();
    stored.identifiers.dedup();
    record(
        c,
        actor,
        "create",
        result_target(&id, &person.id),
        &format!("result recorded from {}", doc.source),
    )?;
    let decides_fact = reading
        .concept
        .as_deref()
        .and_then(|n| cat.concept(n))
        .is_some_and(|c| c.fact.is_some());
    if decides_fact
        && counts_as_final(status)
        && let Some(p) = &pregnancy
    {
        let day = crate::ids::china_date(r.effective.unwrap_or(now));
        RESULTS_RECORDED.publish(
            c,
            &ResultsRecorded {
                actor: actor.clone(),
                pregnancy: p.clone(),
                day,
            },
        )?;
    }
    Ok(stored)
}

/// Whether the actor may read a result of this person (role, area, or an access grant).
fn may_read(c: &mut AnyConnection, actor: &Actor, o: &StoredResult) -> Result<bool, ServiceError> {
    crate::identity::service::may_on_person(
        c,
        actor,
        Action::ReadRecord,
        &o.jurisdiction,
        o.township_code.as_deref(),
        &o.person_id,
        o.pregnancy_id.as_deref(),
    )
}

/// One result, if the actor may read it (audited). A withheld fetal-sex finding does not exist here.
pub fn result_in(c: &mut AnyConnection, actor: &Actor, id: &str) -> Result<StoredResult, ServiceError> {
    let mut o = repo::by_id(c, id)?.ok_or(ServiceError::NotFound("没有找到该检验结果"))?;
    if !may_read(c, actor, &o)? {
        return Err(ServiceError::forbidden(result_target(&o.id, &o.person_id)));
    }
    o.identifiers = repo::identifiers_of(c, &o.id)?;
    record(c, actor, "read", result_target(&o.id, &o.person_id), "interface read")?;
    Ok(o)
}

/// What a search for results asks (every field optional; they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct ResultQuery {
    pub person_id: Option<String>,
    pub effective: crate::ids::TimeRange,
    /// Any of these codes.
    pub codes: Option<Vec<repo::CodeMatch>>,
    /// Any of these stored statuses (HL7 table 0085 letters; "" for none given).
    pub statuses: Option<Vec<String>>,
    /// An identifier: (system or None for any, value).
    pub identifier: Option<(Option<String>, String)>,
    pub created: crate::ids::TimeRange,
    pub ids: Option<Vec<String>>,
    pub offset: i64,
    pub limit: i64,
}

/// Results matching a query that the actor may read, newest first, and how many match in all
/// (each returned result is audited). With a person: hers, if the actor may read her record (else
/// nothing — a search does not reveal her); by identifier or id: wherever the result is, then the
/// access check; otherwise the actor's area. Never a fetal-sex finding.
pub fn search_in(
    c: &mut AnyConnection,
    actor: &Actor,
    q: &ResultQuery,
) -> Result<(Vec<StoredResult>, i64), ServiceError> {
    let held = match &q.identifier {
        Some((system, value)) => Some(repo::identifier_holders(c, system.as_deref(), value)?),
        None => None,
    };
    let Some(reach) =
        crate::identity::service::search_reach(c, actor, "observation", q.person_id.as_deref(), q.ids.clone(), held)?
    else {
        return Ok((Vec::new(), 0));
    };
    let filter = repo::ResultFilter {
        ids: reach.ids.clone(),
        person_id: q.person_id.clone(),
        pregnancy_id: None,
        effective: q.effective,
        codes: q.codes.clone(),
        statuses: q.statuses.clone(),
        created: q.created,
        scope: reach.scope.clone(),
    };
    let (found, total) = repo::find(c, &filter, q.offset, q.limit)?;
    let (mut out, total) = reach.keep_readable(found, total, |o| may_read(c, actor, o))?;
    repo::with_identifiers(c, &mut out)?;
    record_many(
        c,
        actor,
        "search",
        out.iter().map(|o| result_target(&o.id, &o.person_id)).collect(),
        "interface search",
    )?;
    Ok((out, total))
}

/// Every result of a person (optionally of one pregnancy), newest first, if the actor may read her
/// record (audited) — for a referral packet (`$everything`).
pub fn for_person_in(
    c: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    pregnancy_id: Option<&str>,
) -> Result<Vec<StoredResult>, ServiceError> {
    let person = crate::identity::service::person_for(c, actor, Action::ReadRecord, person_id)?;
    let filter = repo::ResultFilter {
        person_id: Some(person.id.clone()),
        pregnancy_id: pregnancy_id.map(str::to_string),
        ..repo::ResultFilter::default()
    };
    let (mut found, _) = repo::find(c, &filter, 0, 10_000)?;
    repo::with_identifiers(c, &mut found)?;
    record_many(
        c,
        actor,
        "read",
        found.iter().map(|o| result_target(&o.id, &o.person_id)).collect(),
        "interface read (whole record)",
    )?;
    Ok(found)
}

/// A fact value a result gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FactValue {
    Number(f64),
    Test(TestResult),
}

/// One fact from a result, dated by its observation day (China date) and recording time.
#[derive(Debug, Clone, PartialEq)]
pub struct DatedFact {
    pub fact: String,
    pub value: FactValue,
    pub day: NaiveDate,
    pub at: NaiveDateTime,
}

/// The facts a pregnancy's final results give (risk grading reads them with the visits').
pub fn dated_facts(c: &mut AnyConnection, pregnancy_id: &str) -> Result<Vec<DatedFact>, ServiceError> {
    let cat = catalogue();
    let mut out = Vec::new();
    for (concept, num, interp, effective, created, status) in repo::fact_rows(c, pregnancy_id)? {
        let Some(fact) = cat.concept(&concept).and_then(|c| c.fact.clone()) else {
            continue;
        };
        if !counts_as_final(&status) {
            continue;
        }
        let value = match (num, interp.as_deref()) {
            (Some(v), _) => FactValue::Number(v),
            (None, Some("positive")) => FactValue::Test(TestResult::Positive),
            (None, Some("negative")) => FactValue::Test(TestResult::Negative),
            _ => continue,
        };
        out.push(DatedFact {
            fact,
            value,
            day: crate::ids::china_date(effective),
            at: created,
        });
    }
    Ok(out)
}
