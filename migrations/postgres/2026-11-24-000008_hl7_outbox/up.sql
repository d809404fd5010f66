-- HL7 outbound (hl7/README.md "Outbound"): where referral messages go, and the durable outbox.

-- One destination per facility of ours: the hospital system that speaks for it. A facility without
-- one takes part through the web pages or the JSON API, and no message is queued for it.
CREATE TABLE hl7_destinations (
    id TEXT PRIMARY KEY NOT NULL,
    facility_id TEXT NOT NULL UNIQUE REFERENCES facilities (id),
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    receiving_app TEXT NOT NULL,
    receiving_facility TEXT NOT NULL,
    charset TEXT NOT NULL CHECK (charset IN ('utf8', 'gb18030')),
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- The outbox: written in the referral's own transaction (the encoded bytes as the record said at
-- that moment), delivered per destination in (created_at, id) order, one message in flight per
-- destination. A claim is a lease (lease_id, lease_until) taken by a conditional UPDATE, so two
-- instances never send the same message at once; an expired lease makes the message claimable again.
CREATE TABLE hl7_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    destination_id TEXT NOT NULL REFERENCES hl7_destinations (id),
    referral_id TEXT NOT NULL REFERENCES referrals (id),
    person_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    control_id TEXT NOT NULL UNIQUE,
    raw BYTEA NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'acked', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_id TEXT,
    lease_until TIMESTAMP,
    last_error TEXT NOT NULL,
    ack_code TEXT,
    ack TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    acked_at TIMESTAMP,
    dead_at TIMESTAMP,
    replays INTEGER NOT NULL,
    replayed_at TIMESTAMP,
    replayed_by TEXT
);
CREATE INDEX hl7_outbox_queue ON hl7_outbox (destination_id, status, created_at, id);
CREATE INDEX hl7_outbox_referral ON hl7_outbox (referral_id);
