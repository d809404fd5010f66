-- Before pregnancy (issue 12; RULES.md §3, §6.1, §8): the couple and their marriage facts, the
-- marriage check (婚前医学检查) of each partner, the free pre-pregnancy screening (孕前优生健康检查)
-- with its risk evaluation, its follow-ups (早孕随访 / 妊娠结局随访), and the birth registration
-- (生育登记 / 再生育审批) issued with the 母子健康手册 number (多证合一). The couple lives where the
-- wife's record lives: her area decides who may see the couple, and the man's findings are read
-- only through the couple.
CREATE TABLE couples (
    id TEXT PRIMARY KEY NOT NULL,
    wife_id TEXT NOT NULL REFERENCES persons (id),
    husband_id TEXT NOT NULL REFERENCES persons (id),
    marriage_date DATE,
    marriage_cert_no TEXT,
    wife_remarriage BOOLEAN NOT NULL,
    husband_remarriage BOOLEAN NOT NULL,
    wife_province TEXT NOT NULL CHECK (length(wife_province) = 2),
    husband_province TEXT NOT NULL CHECK (length(husband_province) = 2),
    status TEXT NOT NULL CHECK (status IN ('current', 'ended')),
    ended_on DATE,
    end_reason TEXT CHECK (end_reason IS NULL OR end_reason IN ('divorce', 'widowhood')),
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    CHECK (wife_id <> husband_id),
    CHECK ((status = 'ended') = (ended_on IS NOT NULL))
);
-- A person belongs to one current couple at a time; ended couples stay as history.
CREATE UNIQUE INDEX couples_one_current_wife ON couples (wife_id) WHERE status = 'current';
CREATE UNIQUE INDEX couples_one_current_husband ON couples (husband_id) WHERE status = 'current';
CREATE INDEX couples_husband ON couples (husband_id);
CREATE INDEX couples_scope ON couples (jurisdiction, township_code);

CREATE TABLE premarital_exams (
    id TEXT PRIMARY KEY NOT NULL,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    partner TEXT NOT NULL CHECK (partner IN ('wife', 'husband')),
    exam_date DATE NOT NULL,
    findings TEXT NOT NULL,
    advice TEXT NOT NULL CHECK (advice IN ('no_contraindication', 'postpone', 'not_advised_to_bear', 'medical_measures')),
    advice_reason TEXT,
    certificate_no TEXT NOT NULL UNIQUE,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX premarital_exams_couple ON premarital_exams (couple_id, exam_date);

CREATE TABLE prepregnancy_exams (
    id TEXT PRIMARY KEY NOT NULL,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    exam_date DATE NOT NULL,
    wife_findings TEXT NOT NULL,
    husband_findings TEXT,
    risk_class TEXT NOT NULL CHECK (risk_class IN ('general', 'high')),
    factors TEXT NOT NULL,
    advice TEXT NOT NULL,
    rule_set TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX prepregnancy_exams_couple ON prepregnancy_exams (couple_id, exam_date);

CREATE TABLE prepregnancy_followups (
    id TEXT PRIMARY KEY NOT NULL,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    exam_id TEXT NOT NULL REFERENCES prepregnancy_exams (id),
    kind TEXT NOT NULL CHECK (kind IN ('early_pregnancy', 'outcome')),
    due DATE NOT NULL,
    done_on DATE,
    result TEXT CHECK (result IS NULL OR result IN ('pregnant', 'not_pregnant', 'lost', 'delivered', 'not_delivered')),
    note TEXT,
    pregnancy_id TEXT REFERENCES pregnancies (id),
    recorded_by TEXT,
    jurisdiction TEXT NOT NULL,
    township_code TEXT,
    CHECK ((done_on IS NULL) = (result IS NULL))
);
CREATE INDEX prepregnancy_followups_couple ON prepregnancy_followups (couple_id, due);
CREATE INDEX prepregnancy_followups_open ON prepregnancy_followups (jurisdiction, township_code, due) WHERE done_on IS NULL;
-- One open follow-up per couple at a time.
CREATE UNIQUE INDEX prepregnancy_followups_one_open ON prepregnancy_followups (couple_id) WHERE done_on IS NULL;

CREATE TABLE birth_registrations (
    id TEXT PRIMARY KEY NOT NULL,
    couple_id TEXT NOT NULL REFERENCES couples (id),
    registration_no TEXT NOT NULL UNIQUE,
    handbook_no TEXT NOT NULL UNIQUE,
    registered_on DATE NOT NULL,
    birth_order INTEGER NOT NULL CHECK (birth_order > 0),
    procedure TEXT NOT NULL CHECK (procedure IN ('registration', 'approval', 'not_allowed')),
    status TEXT NOT NULL CHECK (status IN ('registered', 'awaiting_approval', 'approved', 'refused', 'outside_policy')),
    rule TEXT NOT NULL,
    source TEXT NOT NULL,
    province TEXT NOT NULL,
    decision_due DATE,
    decided_on DATE,
    children TEXT NOT NULL,
    explanation TEXT NOT NULL,
    pregnancy_id TEXT REFERENCES pregnancies (id),
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    jurisdiction TEXT NOT NULL,
    township_code TEXT
);
CREATE INDEX birth_registrations_couple ON birth_registrations (couple_id, registered_on);
CREATE INDEX birth_registrations_pregnancy ON birth_registrations (pregnancy_id);
CREATE INDEX birth_registrations_waiting ON birth_registrations (jurisdiction, township_code, decision_due) WHERE status = 'awaiting_approval';
