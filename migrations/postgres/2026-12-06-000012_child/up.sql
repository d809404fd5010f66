-- Child health care from birth to six (0–6 岁儿童健康管理, RULES.md §2.3).
--
-- The child is a person of her own (persons), born of a delivery of her mother's pregnancy; this
-- row holds her birth facts (出生情况, and 出生医学证明 once issued). Her sex is on her own person
-- row: it exists only for a born child (RULES.md §9.1).
CREATE TABLE children (
    person_id TEXT PRIMARY KEY NOT NULL REFERENCES persons (id),
    mother_id TEXT NOT NULL REFERENCES persons (id),
    pregnancy_id TEXT REFERENCES pregnancies (id),
    birth_at TIMESTAMP NOT NULL,
    birth_time_known BOOLEAN NOT NULL,
    birth_order INTEGER NOT NULL CHECK (birth_order >= 1 AND birth_order <= 8),
    plurality INTEGER NOT NULL CHECK (plurality >= 1 AND plurality <= 8),
    gestation_days INTEGER,
    birth_weight_g INTEGER CHECK (birth_weight_g IS NULL OR (birth_weight_g >= 300 AND birth_weight_g <= 6500)),
    birth_length_cm DOUBLE PRECISION,
    apgar_1 INTEGER CHECK (apgar_1 IS NULL OR (apgar_1 >= 0 AND apgar_1 <= 10)),
    apgar_5 INTEGER CHECK (apgar_5 IS NULL OR (apgar_5 >= 0 AND apgar_5 <= 10)),
    malformations TEXT NOT NULL,
    conditions TEXT NOT NULL,
    -- The mother's positive HIV / syphilis / HBsAg results (RULES.md §7.3), kept up to date by the
    -- child feature when her results or a grade's facts change: what starts the PMTCT clocks.
    exposures TEXT NOT NULL,
    discharge_date DATE,
    birth_facility TEXT NOT NULL,
    certificate_number TEXT UNIQUE,
    certificate TEXT,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX children_mother ON children (mother_id);
CREATE INDEX children_area ON children (jurisdiction, township_code, birth_at);
CREATE INDEX children_township ON children (township_code, birth_at);
CREATE UNIQUE INDEX children_birth_order ON children (pregnancy_id, birth_order);

-- Child health visits (新生儿家庭访视, 满月 … 6岁): the national forms' fields.
CREATE TABLE child_visits (
    id TEXT PRIMARY KEY NOT NULL,
    child_id TEXT NOT NULL REFERENCES children (person_id),
    visit_date DATE NOT NULL,
    age_days INTEGER NOT NULL,
    weight_kg DOUBLE PRECISION,
    length_cm DOUBLE PRECISION,
    position TEXT CHECK (position IS NULL OR position IN ('lying', 'standing')),
    head_circumference_cm DOUBLE PRECISION,
    feeding TEXT,
    development_warning TEXT NOT NULL,
    rickets_signs TEXT NOT NULL,
    exam TEXT NOT NULL,
    hb_g_l INTEGER,
    hearing TEXT,
    vision TEXT,
    illness TEXT NOT NULL,
    advice TEXT NOT NULL,
    referral TEXT NOT NULL,
    next_appointment DATE,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    jurisdiction TEXT NOT NULL,
    township_code TEXT
);
CREATE INDEX child_visits_child ON child_visits (child_id, visit_date);
-- The township worklist reads a township's schedules in one range per table; the indexes hold
-- what it reads (covering), so the range never visits the table.
CREATE INDEX child_visits_township ON child_visits (township_code, child_id, visit_date, hb_g_l, hearing);

-- Screening, labs and 预防母婴传播 measures done for a child (足跟血, 听力, HBIG, ARV, follow-up
-- tests …), by the schedule's item code. Vaccinations are immunizations.
CREATE TABLE child_services (
    id TEXT PRIMARY KEY NOT NULL,
    child_id TEXT NOT NULL REFERENCES children (person_id),
    code TEXT NOT NULL,
    done_at TIMESTAMP NOT NULL,
    result TEXT,
    note TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    jurisdiction TEXT NOT NULL,
    township_code TEXT
);
CREATE INDEX child_services_child ON child_services (child_id, code);
CREATE INDEX child_services_township ON child_services (township_code, child_id, code, done_at, result);
CREATE INDEX immunizations_township ON immunizations (township_code, vaccine_system, status, person_id, vaccine_code, occurrence_at);
