-- HL7 v2 senders (MSH-3/MSH-4 bound to one of our facilities) and the durable message store:
-- every message is stored, with the ACK it got, before that ACK is sent.
CREATE TABLE hl7_senders (
    id TEXT PRIMARY KEY NOT NULL,
    sending_app TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    default_charset TEXT NOT NULL CHECK (default_charset IN ('utf8', 'gb18030')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (sending_app, sending_facility)
);

CREATE TABLE hl7_messages (
    id TEXT PRIMARY KEY NOT NULL,
    sending_app TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    control_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    raw BYTEA NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processed', 'error', 'rejected')),
    ack_code TEXT NOT NULL CHECK (ack_code IN ('AA', 'AE', 'AR')),
    ack TEXT NOT NULL,
    error TEXT NOT NULL,
    person_id TEXT,
    UNIQUE (sending_app, sending_facility, control_id)
);
CREATE INDEX hl7_messages_received ON hl7_messages (received_at);
