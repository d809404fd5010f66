DROP TABLE immunizations;
DROP TABLE conditions;
DROP INDEX persons_updated;
DROP INDEX observations_created;
DROP INDEX observations_person_effective;
ALTER TABLE observations DROP COLUMN received;
ALTER TABLE persons DROP COLUMN received;
DROP TABLE record_identifiers;
DROP TABLE record_versions;
