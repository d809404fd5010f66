CREATE TABLE api_tokens_old (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    role TEXT NOT NULL CHECK (role IN ('hospital_system')),
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
INSERT INTO api_tokens_old (id, token_hash, name, facility_id, role, created_at, revoked_at)
    SELECT id, token_hash, name, facility_id, role, created_at, revoked_at FROM api_tokens
    WHERE role = 'hospital_system';
DROP TABLE api_tokens;
ALTER TABLE api_tokens_old RENAME TO api_tokens;
