-- 体弱儿专案管理 (frail-child cases, rules/child/frail-child-2012.toml): a child whose visit or birth
-- shows 营养不良, 贫血, 佝偻病, 早产, 低出生体重 or growth faltering is managed case by case, with the
-- same states as a high-risk pregnancy case (risk::cases). One open case per child; its reasons
-- (each with its plan, when first and last found and when resolved) are a JSON list.
CREATE TABLE frail_cases (
    id TEXT PRIMARY KEY NOT NULL,
    child_id TEXT NOT NULL REFERENCES children (person_id),
    status TEXT NOT NULL CHECK (status IN ('active', 'traced', 'lost_to_follow_up', 'moved_out', 'closed')),
    reasons TEXT NOT NULL,
    case_manager_id TEXT REFERENCES users (id),
    follow_up_days INTEGER NOT NULL CHECK (follow_up_days > 0),
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
CREATE INDEX frail_cases_scope ON frail_cases (status, jurisdiction, township_code);
CREATE INDEX frail_cases_child ON frail_cases (child_id, opened_at);
CREATE UNIQUE INDEX frail_cases_one_open ON frail_cases (child_id) WHERE status <> 'closed';

CREATE TABLE frail_case_events (
    id TEXT PRIMARY KEY NOT NULL,
    case_id TEXT NOT NULL REFERENCES frail_cases (id),
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX frail_case_events_case ON frail_case_events (case_id, at);
