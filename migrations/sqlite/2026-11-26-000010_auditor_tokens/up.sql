-- Bearer tokens may belong to an auditor's reporting tool (FHIR AuditEvent, `mch-chain token issue
-- --role auditor`) as well as to a hospital system. SQLite cannot alter a CHECK: rebuild the table.
CREATE TABLE api_tokens_new (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    role TEXT NOT NULL CHECK (role IN ('hospital_system', 'auditor')),
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
INSERT INTO api_tokens_new (id, token_hash, name, facility_id, role, created_at, revoked_at)
    SELECT id, token_hash, name, facility_id, role, created_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
