-- Referral green channel (转诊绿色通道): the facility directory's responsible centres (责任片区),
-- referrals with every step's time and actor, their event log (transitions and escalations),
-- time-limited access grants that follow the patient, and the key that signs printed QR codes.

ALTER TABLE facilities ADD COLUMN maternal_centre_id TEXT REFERENCES facilities (id);
ALTER TABLE facilities ADD COLUMN neonatal_centre_id TEXT REFERENCES facilities (id);
ALTER TABLE facilities ADD COLUMN duty_phone TEXT;

CREATE TABLE referrals (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    pregnancy_id TEXT REFERENCES pregnancies (id),
    patient_kind TEXT NOT NULL CHECK (patient_kind IN ('maternal', 'newborn')),
    jurisdiction TEXT NOT NULL CHECK (length(jurisdiction) = 6),
    township_code TEXT,
    urgency TEXT NOT NULL CHECK (urgency IN ('emergency', 'urgent', 'planned')),
    reason TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('draft', 'sent', 'acknowledged', 'accepted', 'rejected', 'redirected',
        'departed', 'arrived', 'feedback_returned', 'closed', 'cancelled')),
    from_facility_id TEXT NOT NULL REFERENCES facilities (id),
    to_facility_id TEXT NOT NULL REFERENCES facilities (id),
    opened_by TEXT NOT NULL,
    details TEXT NOT NULL,
    declined_by TEXT NOT NULL DEFAULT '',
    handover TEXT,
    feedback TEXT,
    step_no INTEGER NOT NULL DEFAULT 0,
    step_started_at TIMESTAMP NOT NULL,
    step_due_at TIMESTAMP,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    accepted_at TIMESTAMP,
    departed_at TIMESTAMP,
    arrived_at TIMESTAMP,
    feedback_at TIMESTAMP,
    ended_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX referrals_due ON referrals (step_due_at) WHERE step_due_at IS NOT NULL;
CREATE INDEX referrals_to ON referrals (to_facility_id, state);
CREATE INDEX referrals_from ON referrals (from_facility_id, state);
CREATE INDEX referrals_person ON referrals (person_id);
CREATE INDEX referrals_jurisdiction ON referrals (jurisdiction, state);

CREATE TABLE referral_events (
    id TEXT PRIMARY KEY NOT NULL,
    referral_id TEXT NOT NULL REFERENCES referrals (id),
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    step_no INTEGER NOT NULL,
    actor_name TEXT NOT NULL,
    actor_display TEXT NOT NULL,
    facility_id TEXT,
    detail TEXT NOT NULL,
    notify_facility_id TEXT REFERENCES facilities (id),
    escalation_level INTEGER
);
CREATE INDEX referral_events_referral ON referral_events (referral_id, at);
CREATE INDEX referral_events_notify ON referral_events (notify_facility_id, at);
-- A late step escalates once per level, however many instances run the timer.
CREATE UNIQUE INDEX referral_events_escalate_once ON referral_events (referral_id, step_no, escalation_level)
    WHERE kind = 'escalated';

CREATE TABLE access_grants (
    id TEXT PRIMARY KEY NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    pregnancy_id TEXT REFERENCES pregnancies (id),
    referral_id TEXT REFERENCES referrals (id),
    granted_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX access_grants_lookup ON access_grants (facility_id, person_id, expires_at);

CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
