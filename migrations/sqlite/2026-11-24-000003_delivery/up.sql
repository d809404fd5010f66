-- The pregnancy outcome (分娩) and postpartum visits. No column anywhere holds fetal sex: a
-- child's sex belongs on the child's own birth record (RULES.md §9.1).
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    pregnancy_id TEXT NOT NULL UNIQUE REFERENCES pregnancies (id),
    person_id TEXT NOT NULL REFERENCES persons (id),
    delivery_date DATE NOT NULL,
    discharge_date DATE,
    facility_name TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('vaginal', 'assisted_vaginal', 'caesarean')),
    live_births INTEGER NOT NULL CHECK (live_births >= 0 AND live_births <= 8),
    stillbirths INTEGER NOT NULL CHECK (stillbirths >= 0 AND stillbirths <= 8),
    maternal_death BOOLEAN NOT NULL,
    complications TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    created_at TIMESTAMP NOT NULL
);

-- The 42-day check classifies the mother as recovered or not (已恢复 / 未恢复, RULES.md §2.2).
ALTER TABLE visits ADD COLUMN postpartum_recovered BOOLEAN;
