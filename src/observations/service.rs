//! Result use cases: recording the results of one message for a woman (inside the interface's
//! transaction), and the dated facts they give risk grading.

use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::model::{ResultInput, catalogue, counts_as_final, read};
use super::repo::{self, NewObservation};
use crate::audit::service::record;
use crate::auth::model::{Action, Actor};
use crate::error::{AuditTarget, FieldError, ServiceError};
use crate::identity::model::Person;
use crate::identity::service::person_target;
use crate::ids::{new_id, now_utc};
use crate::pregnancy::model::{Pregnancy, PregnancyStatus};
use crate::risk::model::TestResult;
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
        crate::risk::service::after_new_data(
            c,
            actor,
            crate::risk::model::active_rule_set(),
            p,
            &format!("检验结果 {day}"),
            None,
        )?;
    }
    Ok(out)
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
