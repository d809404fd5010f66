DROP TABLE hl7_outbox;
DROP TABLE hl7_destinations;
