-- Foundation schema: facilities, staff, sessions, tokens, audit chain, persons, pregnancies, visits.
-- Ids are UUID v7 text; event times are UTC TIMESTAMP; clinical dates are DATE (China local).
-- Every row that concerns a person carries `jurisdiction` (GB/T 2260 county code) and, where known,
-- `township_code` (9-digit township code) for access scoping.

CREATE TABLE facilities (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('village', 'township', 'county', 'city', 'province')),
    kind TEXT NOT NULL CHECK (kind IN ('clinic', 'health_centre', 'mch_centre', 'hospital')),
    jurisdiction TEXT NOT NULL CHECK (length(jurisdiction) = 6),
    township_code TEXT CHECK (township_code IS NULL OR length(township_code) = 9),
    capabilities TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clinician', 'referral_coordinator', 'registrar', 'hospital_system', 'admin', 'auditor')),
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);

-- Failed-login throttling keyed by the typed username, whether or not such a user exists.
CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP
);

-- Server-side sessions: the cookie holds a random token, the table only its SHA-256.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    client_addr TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Bearer tokens for hospital systems and card-reader bridges, stored hashed.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    role TEXT NOT NULL CHECK (role IN ('hospital_system')),
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

-- Append-only audit log; each row carries the SHA-256 of the previous row's hash and its own content.
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    facility_id TEXT,
    client_addr TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    entity_type TEXT NOT NULL,
    entity_id TEXT,
    person_id TEXT,
    purpose TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_person ON audit_events (person_id, at);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id);

-- The chain head: updating this single row first serialises appends across writers and instances.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE persons (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    sex TEXT NOT NULL CHECK (sex IN ('male', 'female', 'unknown')),
    birth_date DATE NOT NULL,
    nation_code TEXT,
    id_number TEXT UNIQUE,
    phone TEXT,
    address TEXT,
    jurisdiction TEXT NOT NULL CHECK (length(jurisdiction) = 6),
    township_code TEXT CHECK (township_code IS NULL OR length(township_code) = 9),
    created_by_facility_id TEXT NOT NULL REFERENCES facilities (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX persons_name ON persons (name);
CREATE INDEX persons_name_birth ON persons (name, birth_date);
CREATE INDEX persons_scope ON persons (jurisdiction, township_code);

-- Other identifiers of a person: resident health card, hospital MRNs. One holder per (system, value).
CREATE TABLE person_identifiers (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (system, value)
);
CREATE INDEX person_identifiers_person ON person_identifiers (person_id);

CREATE TABLE card_reads (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    card_number TEXT NOT NULL,
    issuer_code TEXT,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    read_by TEXT NOT NULL,
    read_at TIMESTAMP NOT NULL,
    jurisdiction TEXT NOT NULL
);
CREATE INDEX card_reads_facility ON card_reads (facility_id, read_at);

CREATE TABLE pregnancies (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    status TEXT NOT NULL CHECK (status IN ('active', 'delivered', 'ended')),
    booking_date DATE NOT NULL,
    booking_facility_id TEXT NOT NULL REFERENCES facilities (id),
    lmp DATE,
    ultrasound_date DATE,
    ultrasound_ga_days INTEGER CHECK (ultrasound_ga_days IS NULL OR (ultrasound_ga_days >= 0 AND ultrasound_ga_days <= 300)),
    dating_method TEXT NOT NULL CHECK (dating_method IN ('lmp', 'ultrasound')),
    edd DATE NOT NULL,
    gravidity INTEGER NOT NULL CHECK (gravidity >= 1),
    parity INTEGER NOT NULL CHECK (parity >= 0 AND parity < gravidity),
    jurisdiction TEXT NOT NULL CHECK (length(jurisdiction) = 6),
    township_code TEXT CHECK (township_code IS NULL OR length(township_code) = 9),
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX pregnancies_person ON pregnancies (person_id);
CREATE INDEX pregnancies_scope ON pregnancies (status, jurisdiction, township_code);
-- One active pregnancy per woman at a time.
CREATE UNIQUE INDEX pregnancies_one_active ON pregnancies (person_id) WHERE status = 'active';

CREATE TABLE visits (
    id TEXT PRIMARY KEY NOT NULL,
    pregnancy_id TEXT NOT NULL REFERENCES pregnancies (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    kind TEXT NOT NULL CHECK (kind IN ('antenatal_first', 'antenatal', 'postpartum_home', 'postpartum_42d', 'newborn_home', 'child_checkup')),
    visit_date DATE NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    weight_kg DOUBLE PRECISION,
    height_cm DOUBLE PRECISION,
    systolic_mmhg INTEGER,
    diastolic_mmhg INTEGER,
    fundal_height_cm DOUBLE PRECISION,
    abdominal_circumference_cm DOUBLE PRECISION,
    fetal_heart_rate_bpm INTEGER,
    fetal_presentation TEXT CHECK (fetal_presentation IS NULL OR fetal_presentation IN ('cephalic', 'breech', 'transverse', 'unknown')),
    oedema TEXT CHECK (oedema IS NULL OR oedema IN ('none', 'mild', 'moderate', 'severe')),
    hb_g_l INTEGER,
    urine_protein TEXT CHECK (urine_protein IS NULL OR urine_protein IN ('negative', 'trace', '1+', '2+', '3+', '4+')),
    complaints TEXT NOT NULL DEFAULT '',
    advice TEXT NOT NULL DEFAULT '',
    next_appointment DATE,
    jurisdiction TEXT NOT NULL CHECK (length(jurisdiction) = 6),
    township_code TEXT CHECK (township_code IS NULL OR length(township_code) = 9),
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX visits_pregnancy ON visits (pregnancy_id, visit_date);

-- The application never changes or removes an audit row; these triggers make that a database rule too.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
