//! The diesel table definitions, written by hand to stay within the types `MultiConnection`
//! supports on both backends (TEXT ids, TIMESTAMP in UTC, DATE, BOOL, INTEGER, BIGINT, DOUBLE).
//! Only `storage/` and the feature `repo.rs` files may import this module.

diesel::table! {
    facilities (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        level -> Text,
        kind -> Text,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        capabilities -> Text,
        created_at -> Timestamp,
        maternal_centre_id -> Nullable<Text>,
        neonatal_centre_id -> Nullable<Text>,
        duty_phone -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        facility_id -> Text,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_throttle (kind, username, address) {
        kind -> Text,
        username -> Text,
        address -> Text,
        failures -> Integer,
        last_failure_at -> Timestamp,
        not_before -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_known_addresses (user_id, address) {
        user_id -> Text,
        address -> Text,
        last_success_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        client_addr -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        token_hash -> Text,
        name -> Text,
        facility_id -> Text,
        role -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        actor_name -> Text,
        actor_role -> Text,
        facility_id -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        entity_type -> Text,
        entity_id -> Nullable<Text>,
        person_id -> Nullable<Text>,
        purpose -> Text,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    persons (id) {
        id -> Text,
        name -> Text,
        sex -> Text,
        birth_date -> Date,
        nation_code -> Nullable<Text>,
        id_number -> Nullable<Text>,
        phone -> Nullable<Text>,
        address -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_by_facility_id -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        received -> Nullable<Text>,
    }
}

diesel::table! {
    person_identifiers (id) {
        id -> Text,
        person_id -> Text,
        system -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    card_reads (id) {
        id -> Text,
        person_id -> Text,
        card_number -> Text,
        issuer_code -> Nullable<Text>,
        facility_id -> Text,
        read_by -> Text,
        read_at -> Timestamp,
        jurisdiction -> Text,
    }
}

diesel::table! {
    pregnancies (id) {
        id -> Text,
        person_id -> Text,
        status -> Text,
        booking_date -> Date,
        booking_facility_id -> Text,
        lmp -> Nullable<Date>,
        ultrasound_date -> Nullable<Date>,
        ultrasound_ga_days -> Nullable<Integer>,
        dating_method -> Text,
        edd -> Date,
        gravidity -> Integer,
        parity -> Integer,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    visits (id) {
        id -> Text,
        pregnancy_id -> Text,
        person_id -> Text,
        kind -> Text,
        visit_date -> Date,
        facility_id -> Text,
        weight_kg -> Nullable<Double>,
        height_cm -> Nullable<Double>,
        systolic_mmhg -> Nullable<Integer>,
        diastolic_mmhg -> Nullable<Integer>,
        fundal_height_cm -> Nullable<Double>,
        abdominal_circumference_cm -> Nullable<Double>,
        fetal_heart_rate_bpm -> Nullable<Integer>,
        fetal_presentation -> Nullable<Text>,
        oedema -> Nullable<Text>,
        hb_g_l -> Nullable<Integer>,
        urine_protein -> Nullable<Text>,
        complaints -> Text,
        advice -> Text,
        next_appointment -> Nullable<Date>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        recorded_by -> Text,
        created_at -> Timestamp,
        postpartum_recovered -> Nullable<Bool>,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        pregnancy_id -> Text,
        person_id -> Text,
        delivery_date -> Date,
        discharge_date -> Nullable<Date>,
        facility_name -> Text,
        mode -> Text,
        live_births -> Integer,
        stillbirths -> Integer,
        maternal_death -> Bool,
        complications -> Text,
        recorded_by -> Text,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    hl7_senders (id) {
        id -> Text,
        sending_app -> Text,
        sending_facility -> Text,
        facility_id -> Text,
        default_charset -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    hl7_messages (id) {
        id -> Text,
        sending_app -> Text,
        sending_facility -> Text,
        control_id -> Text,
        message_type -> Text,
        received_at -> Timestamp,
        raw -> Binary,
        content_hash -> Text,
        status -> Text,
        ack_code -> Text,
        ack -> Text,
        error -> Text,
        person_id -> Nullable<Text>,
        accept_code -> Nullable<Text>,
        replays -> Integer,
        replayed_at -> Nullable<Timestamp>,
        replayed_by -> Nullable<Text>,
    }
}

diesel::table! {
    observations (id) {
        id -> Text,
        person_id -> Text,
        pregnancy_id -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        code_system -> Text,
        code -> Text,
        code_text -> Text,
        concept -> Nullable<Text>,
        loinc -> Nullable<Text>,
        value_type -> Text,
        value_text -> Nullable<Text>,
        value_num -> Nullable<Double>,
        unit -> Nullable<Text>,
        interpretation -> Nullable<Text>,
        abnormal_flag -> Nullable<Text>,
        effective_at -> Timestamp,
        source_message_id -> Text,
        facility_id -> Text,
        status -> Text,
        flagged_fetal_sex -> Bool,
        created_at -> Timestamp,
        received -> Nullable<Text>,
    }
}

diesel::table! {
    person_merges (id) {
        id -> Text,
        survivor_id -> Text,
        merged_id -> Text,
        merged_snapshot -> Text,
        moved -> Text,
        actor_name -> Text,
        facility_id -> Text,
        source_message_id -> Nullable<Text>,
        jurisdiction -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> facilities (facility_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(login_known_addresses -> users (user_id));
diesel::joinable!(api_tokens -> facilities (facility_id));
diesel::joinable!(person_identifiers -> persons (person_id));
diesel::joinable!(pregnancies -> persons (person_id));
diesel::joinable!(visits -> pregnancies (pregnancy_id));
diesel::joinable!(card_reads -> persons (person_id));

diesel::allow_tables_to_appear_in_same_query!(
    facilities,
    users,
    login_throttle,
    login_known_addresses,
    sessions,
    api_tokens,
    audit_events,
    audit_head,
    persons,
    person_identifiers,
    card_reads,
    pregnancies,
    visits,
    risk_screenings,
    risk_assessments,
    risk_cases,
    risk_case_events,
    risk_case_reports,
    deliveries,
    hl7_senders,
    hl7_messages,
    referrals,
    referral_events,
    access_grants,
    app_secrets,
    observations,
    person_merges,
);

diesel::table! {
    risk_screenings (id) {
        id -> Text,
        pregnancy_id -> Text,
        person_id -> Text,
        positive -> Bool,
        items -> Text,
        screened_by -> Text,
        facility_id -> Text,
        follow_up_due -> Nullable<Date>,
        graded_at -> Nullable<Timestamp>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    risk_assessments (id) {
        id -> Text,
        pregnancy_id -> Text,
        person_id -> Text,
        status -> Text,
        colour -> Text,
        purple -> Bool,
        factors -> Text,
        removed -> Text,
        facts -> Text,
        rule_set -> Text,
        trigger -> Text,
        note -> Text,
        assessed_by -> Text,
        facility_id -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    risk_cases (id) {
        id -> Text,
        pregnancy_id -> Text,
        person_id -> Text,
        status -> Text,
        colour -> Text,
        purple -> Bool,
        case_manager_id -> Nullable<Text>,
        delivery_level -> Text,
        delivery_facility_id -> Nullable<Text>,
        follow_up_days -> Integer,
        next_follow_up -> Date,
        last_contact -> Nullable<Date>,
        opened_at -> Timestamp,
        opened_by -> Text,
        closed_at -> Nullable<Timestamp>,
        close_reason -> Nullable<Text>,
        moved_to -> Nullable<Text>,
        escalation -> Integer,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        version -> Integer,
    }
}

diesel::table! {
    risk_case_events (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        note -> Text,
        actor_name -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    risk_case_reports (id) {
        id -> Text,
        case_id -> Text,
        assessment_id -> Text,
        colour -> Text,
        purple -> Bool,
        due_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        sent_by -> Nullable<Text>,
        ack_due_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
        jurisdiction -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(risk_assessments -> pregnancies (pregnancy_id));
diesel::joinable!(risk_cases -> pregnancies (pregnancy_id));
diesel::joinable!(risk_case_events -> risk_cases (case_id));
diesel::joinable!(risk_case_reports -> risk_cases (case_id));

diesel::table! {
    referrals (id) {
        id -> Text,
        person_id -> Text,
        pregnancy_id -> Nullable<Text>,
        patient_kind -> Text,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        urgency -> Text,
        reason -> Text,
        state -> Text,
        from_facility_id -> Text,
        to_facility_id -> Text,
        opened_by -> Text,
        details -> Text,
        declined_by -> Text,
        handover -> Nullable<Text>,
        feedback -> Nullable<Text>,
        step_no -> Integer,
        step_started_at -> Timestamp,
        step_due_at -> Nullable<Timestamp>,
        escalation_level -> Integer,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        accepted_at -> Nullable<Timestamp>,
        departed_at -> Nullable<Timestamp>,
        arrived_at -> Nullable<Timestamp>,
        feedback_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        version -> Integer,
        external_ref -> Nullable<Text>,
    }
}

diesel::table! {
    referral_events (id) {
        id -> Text,
        referral_id -> Text,
        at -> Timestamp,
        kind -> Text,
        from_state -> Text,
        to_state -> Text,
        step_no -> Integer,
        actor_name -> Text,
        actor_display -> Text,
        facility_id -> Nullable<Text>,
        detail -> Text,
        notify_facility_id -> Nullable<Text>,
        escalation_level -> Nullable<Integer>,
    }
}

diesel::table! {
    access_grants (id) {
        id -> Text,
        facility_id -> Text,
        person_id -> Text,
        pregnancy_id -> Nullable<Text>,
        referral_id -> Nullable<Text>,
        granted_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(referral_events -> referrals (referral_id));

diesel::table! {
    hl7_destinations (id) {
        id -> Text,
        facility_id -> Text,
        host -> Text,
        port -> Integer,
        receiving_app -> Text,
        receiving_facility -> Text,
        charset -> Text,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    hl7_outbox (id) {
        id -> Text,
        destination_id -> Text,
        referral_id -> Text,
        person_id -> Text,
        message_type -> Text,
        control_id -> Text,
        raw -> Binary,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_id -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Text,
        ack_code -> Nullable<Text>,
        ack -> Text,
        created_at -> Timestamp,
        last_attempt_at -> Nullable<Timestamp>,
        acked_at -> Nullable<Timestamp>,
        dead_at -> Nullable<Timestamp>,
        replays -> Integer,
        replayed_at -> Nullable<Timestamp>,
        replayed_by -> Nullable<Text>,
    }
}

diesel::joinable!(hl7_outbox -> hl7_destinations (destination_id));
diesel::allow_tables_to_appear_in_same_query!(hl7_destinations, hl7_outbox);

diesel::table! {
    record_versions (entity, entity_id, version) {
        entity -> Text,
        entity_id -> Text,
        version -> Integer,
        recorded_at -> Timestamp,
        snapshot -> Text,
    }
}

diesel::table! {
    record_identifiers (entity, system, value) {
        entity -> Text,
        system -> Text,
        value -> Text,
        entity_id -> Text,
    }
}

diesel::table! {
    conditions (id) {
        id -> Text,
        person_id -> Text,
        pregnancy_id -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        code_system -> Text,
        code -> Text,
        code_text -> Text,
        clinical_status -> Nullable<Text>,
        verification_status -> Nullable<Text>,
        onset -> Nullable<Text>,
        recorded_date -> Nullable<Text>,
        facility_id -> Text,
        recorded_by -> Text,
        received -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    immunizations (id) {
        id -> Text,
        person_id -> Text,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        status -> Text,
        vaccine_system -> Text,
        vaccine_code -> Text,
        vaccine_text -> Text,
        occurrence -> Text,
        occurrence_at -> Nullable<Timestamp>,
        lot_number -> Nullable<Text>,
        facility_id -> Text,
        recorded_by -> Text,
        received -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    children (person_id) {
        person_id -> Text,
        mother_id -> Text,
        pregnancy_id -> Nullable<Text>,
        birth_at -> Timestamp,
        birth_time_known -> Bool,
        birth_order -> Integer,
        plurality -> Integer,
        gestation_days -> Nullable<Integer>,
        birth_weight_g -> Nullable<Integer>,
        birth_length_cm -> Nullable<Double>,
        apgar_1 -> Nullable<Integer>,
        apgar_5 -> Nullable<Integer>,
        malformations -> Text,
        conditions -> Text,
        exposures -> Text,
        discharge_date -> Nullable<Date>,
        birth_facility -> Text,
        certificate_number -> Nullable<Text>,
        certificate -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        recorded_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    child_visits (id) {
        id -> Text,
        child_id -> Text,
        visit_date -> Date,
        age_days -> Integer,
        weight_kg -> Nullable<Double>,
        length_cm -> Nullable<Double>,
        position -> Nullable<Text>,
        head_circumference_cm -> Nullable<Double>,
        feeding -> Nullable<Text>,
        development_warning -> Text,
        rickets_signs -> Text,
        exam -> Text,
        hb_g_l -> Nullable<Integer>,
        hearing -> Nullable<Text>,
        vision -> Nullable<Text>,
        illness -> Text,
        advice -> Text,
        referral -> Text,
        next_appointment -> Nullable<Date>,
        facility_id -> Text,
        recorded_by -> Text,
        recorded_at -> Timestamp,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
    }
}

diesel::table! {
    child_services (id) {
        id -> Text,
        child_id -> Text,
        code -> Text,
        done_at -> Timestamp,
        result -> Nullable<Text>,
        note -> Text,
        facility_id -> Text,
        recorded_by -> Text,
        recorded_at -> Timestamp,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
    }
}

diesel::table! {
    frail_cases (id) {
        id -> Text,
        child_id -> Text,
        status -> Text,
        reasons -> Text,
        case_manager_id -> Nullable<Text>,
        follow_up_days -> Integer,
        next_follow_up -> Date,
        last_contact -> Nullable<Date>,
        opened_at -> Timestamp,
        opened_by -> Text,
        closed_at -> Nullable<Timestamp>,
        close_reason -> Nullable<Text>,
        moved_to -> Nullable<Text>,
        escalation -> Integer,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        version -> Integer,
    }
}

diesel::table! {
    frail_case_events (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        note -> Text,
        actor_name -> Text,
        at -> Timestamp,
    }
}

diesel::joinable!(children -> persons (person_id));
diesel::allow_tables_to_appear_in_same_query!(children, persons, child_visits, child_services, immunizations);
diesel::allow_tables_to_appear_in_same_query!(frail_cases, frail_case_events);

diesel::table! {
    couples (id) {
        id -> Text,
        wife_id -> Text,
        husband_id -> Text,
        marriage_date -> Nullable<Date>,
        marriage_cert_no -> Nullable<Text>,
        wife_remarriage -> Bool,
        husband_remarriage -> Bool,
        wife_province -> Text,
        husband_province -> Text,
        status -> Text,
        ended_on -> Nullable<Date>,
        end_reason -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
        created_at -> Timestamp,
        created_by -> Text,
        version -> Integer,
    }
}

diesel::table! {
    premarital_exams (id) {
        id -> Text,
        couple_id -> Text,
        partner -> Text,
        exam_date -> Date,
        findings -> Text,
        advice -> Text,
        advice_reason -> Nullable<Text>,
        certificate_no -> Text,
        facility_id -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    prepregnancy_exams (id) {
        id -> Text,
        couple_id -> Text,
        exam_date -> Date,
        wife_findings -> Text,
        husband_findings -> Nullable<Text>,
        risk_class -> Text,
        factors -> Text,
        advice -> Text,
        rule_set -> Text,
        facility_id -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    prepregnancy_followups (id) {
        id -> Text,
        couple_id -> Text,
        exam_id -> Text,
        kind -> Text,
        due -> Date,
        done_on -> Nullable<Date>,
        result -> Nullable<Text>,
        note -> Nullable<Text>,
        pregnancy_id -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
    }
}

diesel::table! {
    birth_registrations (id) {
        id -> Text,
        couple_id -> Text,
        registration_no -> Text,
        handbook_no -> Text,
        registered_on -> Date,
        birth_order -> Integer,
        procedure -> Text,
        status -> Text,
        rule -> Text,
        source -> Text,
        province -> Text,
        decision_due -> Nullable<Date>,
        decided_on -> Nullable<Date>,
        children -> Text,
        explanation -> Text,
        pregnancy_id -> Nullable<Text>,
        facility_id -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
        jurisdiction -> Text,
        township_code -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    couples,
    premarital_exams,
    prepregnancy_exams,
    prepregnancy_followups,
    birth_registrations,
    persons
);
