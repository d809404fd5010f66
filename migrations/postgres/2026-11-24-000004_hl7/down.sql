DROP TABLE hl7_messages;
DROP TABLE hl7_senders;
