-- Bearer tokens may belong to an auditor's reporting tool (FHIR AuditEvent, `mch-chain token issue
-- --role auditor`) as well as to a hospital system.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('hospital_system', 'auditor'));
