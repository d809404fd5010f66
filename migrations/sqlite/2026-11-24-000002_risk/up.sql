-- Five-colour risk management: screenings at booking, graded assessments (proposed by the system
-- or confirmed by a clinician), high-risk cases (专案) with their events and district reports.

CREATE TABLE risk_screenings (
    id TEXT PRIMARY KEY NOT NULL,
    pregnancy_id TEXT NOT NULL REFERENCES pregnancies (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    positive BOOLEAN NOT NULL,
    items TEXT NOT NULL,
    screened_by TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    follow_up_due DATE,
    graded_at TIMESTAMP,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX risk_screenings_pregnancy ON risk_screenings (pregnancy_id);
CREATE INDEX risk_screenings_open ON risk_screenings (positive, graded_at, jurisdiction);

CREATE TABLE risk_assessments (
    id TEXT PRIMARY KEY NOT NULL,
    pregnancy_id TEXT NOT NULL REFERENCES pregnancies (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    status TEXT NOT NULL CHECK (status IN ('proposed', 'confirmed', 'dismissed')),
    colour TEXT NOT NULL CHECK (colour IN ('green', 'yellow', 'orange', 'red')),
    purple BOOLEAN NOT NULL,
    factors TEXT NOT NULL,
    removed TEXT NOT NULL,
    facts TEXT NOT NULL,
    rule_set TEXT NOT NULL,
    trigger TEXT NOT NULL,
    note TEXT NOT NULL,
    assessed_by TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    decided_by TEXT,
    decided_at TIMESTAMP,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX risk_assessments_pregnancy ON risk_assessments (pregnancy_id, created_at);
CREATE INDEX risk_assessments_pending ON risk_assessments (status, jurisdiction);

CREATE TABLE risk_cases (
    id TEXT PRIMARY KEY NOT NULL,
    pregnancy_id TEXT NOT NULL REFERENCES pregnancies (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    status TEXT NOT NULL CHECK (status IN ('active', 'traced', 'lost_to_follow_up', 'moved_out', 'closed')),
    colour TEXT NOT NULL CHECK (colour IN ('green', 'yellow', 'orange', 'red')),
    purple BOOLEAN NOT NULL,
    case_manager_id TEXT REFERENCES users (id),
    delivery_level TEXT NOT NULL,
    delivery_facility_id TEXT REFERENCES facilities (id),
    follow_up_days INTEGER NOT NULL,
    next_follow_up DATE NOT NULL,
    last_contact DATE,
    opened_at TIMESTAMP NOT NULL,
    opened_by TEXT NOT NULL,
    closed_at TIMESTAMP,
    close_reason TEXT,
    moved_to TEXT CHECK (moved_to IS NULL OR length(moved_to) = 6),
    -- How far an overdue follow-up has been escalated: 0 none, 1 case manager, 2 supervisor, 3 district.
    escalation INTEGER NOT NULL DEFAULT 0,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX risk_cases_scope ON risk_cases (status, jurisdiction, township_code);
-- One open case per pregnancy (a closed one may be followed by a new case, e.g. after a hand-over).
CREATE UNIQUE INDEX risk_cases_one_open ON risk_cases (pregnancy_id) WHERE status <> 'closed';

CREATE TABLE risk_case_events (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES risk_cases (id),
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX risk_case_events_case ON risk_case_events (case_id, at);

-- 孕产妇妊娠风险评估分级报告单 (附件3) to the district MCH institution, with its deadlines.
CREATE TABLE risk_case_reports (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES risk_cases (id),
    assessment_id TEXT NOT NULL REFERENCES risk_assessments (id),
    colour TEXT NOT NULL,
    purple BOOLEAN NOT NULL,
    due_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    sent_by TEXT,
    ack_due_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    acknowledged_by TEXT,
    jurisdiction TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX risk_case_reports_case ON risk_case_reports (case_id);
CREATE INDEX risk_case_reports_open ON risk_case_reports (jurisdiction, acknowledged_at);
