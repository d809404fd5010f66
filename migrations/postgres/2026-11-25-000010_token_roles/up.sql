-- Bearer tokens for auditors' reporting tools as well as hospital systems (FHIR AuditEvent).
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('hospital_system', 'auditor'));
