-- FHIR R4 façade (src/fhir/README.md).

-- Every version of a mutable record (person, pregnancy, referral), written by the feature's repo
-- in the same transaction as the change itself, whatever door made it (web, HL7, FHIR). FHIR
-- `vread` and `_history` read it; `snapshot` is the domain record as JSON at that version.
CREATE TABLE record_versions (
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (entity, entity_id, version)
);

-- Business identifiers of records other than persons (Observation, Condition, Immunization):
-- UNIQUE per system and value, so two concurrent conditional creates cannot both insert.
CREATE TABLE record_identifiers (
    entity TEXT NOT NULL,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (entity, system, value)
);
CREATE INDEX record_identifiers_entity ON record_identifiers (entity_id);

-- The interface document a record came in as (a FHIR resource), kept for the elements our model
-- does not hold so that it reads back equivalent; the columns stay the truth for what they hold.
ALTER TABLE persons ADD COLUMN received TEXT;
ALTER TABLE observations ADD COLUMN received TEXT;
CREATE INDEX observations_person_effective ON observations (person_id, effective_at);
-- A search without a patient looks in the caller's county, newest first.
CREATE INDEX observations_area_effective ON observations (jurisdiction, effective_at);
CREATE INDEX observations_created ON observations (created_at);
CREATE INDEX persons_updated ON persons (updated_at);

-- Diagnoses and problems (Condition), from hospitals and clinicians.
CREATE TABLE conditions (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    pregnancy_id TEXT REFERENCES pregnancies (id),
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    code_system TEXT NOT NULL,
    code TEXT NOT NULL,
    code_text TEXT NOT NULL,
    clinical_status TEXT,
    verification_status TEXT,
    onset TEXT,
    recorded_date TEXT,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    received TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX conditions_person ON conditions (person_id);

-- Vaccinations (Immunization): the mother's (tetanus, hepatitis B) and the child's. `occurrence` is
-- the time as given (a dateTime or a text such as "childhood"); `occurrence_at` its UTC start, NULL
-- when the text names no time.
CREATE TABLE immunizations (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    status TEXT NOT NULL CHECK (status IN ('completed', 'entered-in-error', 'not-done')),
    vaccine_system TEXT NOT NULL,
    vaccine_code TEXT NOT NULL,
    vaccine_text TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    occurrence_at TIMESTAMP,
    lot_number TEXT,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    received TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX immunizations_person ON immunizations (person_id, occurrence_at);
