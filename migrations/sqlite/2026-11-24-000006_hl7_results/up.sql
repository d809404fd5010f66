-- HL7 results, merges and the message log (hl7/README.md).

-- Enhanced acknowledgement mode: the accept ACK code sent (CA/CE/CR), NULL in original mode.
-- A replay (message log) re-runs a failed message and records the new outcome here.
ALTER TABLE hl7_messages ADD COLUMN accept_code TEXT;
ALTER TABLE hl7_messages ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hl7_messages ADD COLUMN replayed_at TIMESTAMP;
ALTER TABLE hl7_messages ADD COLUMN replayed_by TEXT;
CREATE INDEX hl7_messages_person ON hl7_messages (person_id);

-- Laboratory and other results (ORU^R01 OBX). Codes are kept as sent; `concept` and `loinc` are
-- ours (rules/hl7/results.toml), NULL when the code is not in the mapping (stored, not
-- interpreted). A fetal-sex finding (RULES.md §9.1) is stored without any value: no column holds
-- it, and the CHECK makes sure none ever does.
CREATE TABLE observations (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    pregnancy_id TEXT REFERENCES pregnancies (id),
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    code_system TEXT NOT NULL,
    code TEXT NOT NULL,
    code_text TEXT NOT NULL,
    concept TEXT,
    loinc TEXT,
    value_type TEXT NOT NULL,
    value_text TEXT,
    value_num DOUBLE PRECISION,
    unit TEXT,
    interpretation TEXT CHECK (interpretation IN ('positive', 'negative')),
    abnormal_flag TEXT,
    effective_at TIMESTAMP NOT NULL,
    source_message_id TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    status TEXT NOT NULL,
    flagged_fetal_sex BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK (NOT flagged_fetal_sex OR (value_text IS NULL AND value_num IS NULL AND unit IS NULL
                                     AND interpretation IS NULL AND abnormal_flag IS NULL))
);
CREATE INDEX observations_pregnancy ON observations (pregnancy_id, effective_at);
CREATE INDEX observations_person ON observations (person_id);

-- ADT^A40 merges: the merged person's row is removed after everything she had was moved to the
-- survivor; this row keeps who, when, from which message, what was moved and what she was.
CREATE TABLE person_merges (
    id TEXT PRIMARY KEY NOT NULL,
    survivor_id TEXT NOT NULL REFERENCES persons (id),
    merged_id TEXT NOT NULL,
    merged_snapshot TEXT NOT NULL,
    moved TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    facility_id TEXT NOT NULL,
    source_message_id TEXT,
    jurisdiction TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX person_merges_survivor ON person_merges (survivor_id);
