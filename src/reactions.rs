//! The wiring of events to reactions (`crate::events`): the one place that names both a lower
//! feature's topic and the higher feature that reacts to it. Part of the composition root (with
//! `app`, `cli`, `demo`): every entry point that runs services calls [`wire`] before the first
//! request, and publishing on an unwired topic is refused, so a reaction is never skipped.

use crate::{child, couple, hl7, identity, observations, pregnancy, referral, risk, visits};

/// Set every topic's reactions (idempotent: the first call wins, later calls change nothing).
pub fn wire() {
    // identity → pregnancy: two active pregnancies are not merged blindly.
    // identity → child: two children's birth records are not merged blindly either.
    identity::events::PERSONS_MERGING.subscribe(&[
        pregnancy::service::refuse_merging_two_active_pregnancies,
        child::service::refuse_merging_two_children,
        couple::service::refuse_merging_two_current_couples,
    ]);
    // pregnancy → couple: booking closes the 早孕随访 as 已孕 and links her registration.
    pregnancy::events::PREGNANCY_BOOKED.subscribe(&[couple::service::close_followup_on_booking]);
    // pregnancy → risk: a maternal death closes her high-risk case.
    // pregnancy → couple: a delivery answers her 妊娠结局随访 as 已分娩.
    pregnancy::events::DELIVERY_RECORDED.subscribe(&[
        risk::service::close_case_on_maternal_death,
        couple::service::close_outcome_on_delivery,
    ]);
    // visits, results → risk: new data may call for a re-grade proposal; a visit is a case follow-up.
    visits::events::VISIT_RECORDED.subscribe(&[risk::service::regrade_after_visit]);
    // results → risk (re-grade) and child (a positive HIV / syphilis / HBsAg result of the mother
    // starts her babies' 预防母婴传播 items); a confirmed grade's facts likewise → child.
    observations::events::RESULTS_RECORDED.subscribe(&[
        risk::service::regrade_after_results,
        child::service::refresh_exposures_after_results,
    ]);
    risk::events::GRADE_CONFIRMED.subscribe(&[child::service::refresh_exposures_after_grading]);
    // referral → the HL7 interface: the outbound REF^I12 / RRI^I12 are queued in the outbox.
    referral::events::REFERRAL_CHANGED.subscribe(&[hl7::outbox::referral_changed]);
}

/// The topics [`wire`] sets, by name (checked against every `Topic::new` in `src/` by a test).
pub fn wired_topics() -> Vec<&'static str> {
    vec![
        identity::events::PERSONS_MERGING.name(),
        pregnancy::events::DELIVERY_RECORDED.name(),
        pregnancy::events::PREGNANCY_BOOKED.name(),
        visits::events::VISIT_RECORDED.name(),
        observations::events::RESULTS_RECORDED.name(),
        referral::events::REFERRAL_CHANGED.name(),
        risk::events::GRADE_CONFIRMED.name(),
    ]
}

#[cfg(test)]
mod tests {
    /// Every topic declared anywhere in `src/` is wired: a new event cannot be published into the
    /// void (publishing on an unwired topic is refused at run time; this catches it at test time).
    #[test]
    fn every_declared_topic_is_wired() {
        super::wire();
        let mut declared = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("events.rs") {
                    continue;
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    for part in code.split("Topic::new(\"").skip(1) {
                        declared.push(part.split('"').next().unwrap_or("").to_string());
                    }
                }
            }
        }
        declared.sort();
        let mut wired: Vec<String> = super::wired_topics().into_iter().map(String::from).collect();
        wired.sort();
        assert_eq!(
            declared, wired,
            "declare topics in a feature's events.rs and wire them in reactions.rs"
        );
        for t in [
            &crate::identity::events::PERSONS_MERGING.is_wired(),
            &crate::pregnancy::events::DELIVERY_RECORDED.is_wired(),
            &crate::pregnancy::events::PREGNANCY_BOOKED.is_wired(),
            &crate::visits::events::VISIT_RECORDED.is_wired(),
            &crate::observations::events::RESULTS_RECORDED.is_wired(),
            &crate::referral::events::REFERRAL_CHANGED.is_wired(),
            &crate::risk::events::GRADE_CONFIRMED.is_wired(),
        ] {
            assert!(*t);
        }
    }
}
