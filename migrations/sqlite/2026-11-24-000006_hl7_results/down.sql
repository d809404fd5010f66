DROP TABLE person_merges;
DROP TABLE observations;
DROP INDEX hl7_messages_person;
ALTER TABLE hl7_messages DROP COLUMN replayed_by;
ALTER TABLE hl7_messages DROP COLUMN replayed_at;
ALTER TABLE hl7_messages DROP COLUMN replays;
ALTER TABLE hl7_messages DROP COLUMN accept_code;
