-- Login throttling (auth::model "login throttling"): growing delays per (username, address) pair,
-- per client address and, much later and capped, per account; never a lock-out of the right
-- password from an address the user signed in from. Replaces the per-username lock, whose runs
-- are not carried over (a lock in force when this migration runs ends early).
DROP TABLE login_throttle;

CREATE TABLE login_throttle (
    kind TEXT NOT NULL CHECK (kind IN ('pair', 'address', 'account')),
    -- the username as typed, lower-cased, whether or not such a user exists ('' for an address)
    username TEXT NOT NULL,
    -- the client address ('' for an account)
    address TEXT NOT NULL,
    -- failures in the current run (a run ends after an hour without failures)
    failures INTEGER NOT NULL,
    last_failure_at TIMESTAMP NOT NULL,
    -- no attempt counted against this entry is checked before this time
    not_before TIMESTAMP,
    PRIMARY KEY (kind, username, address)
);
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure_at);

-- Addresses each user signed in from: from one used in the last 30 days the account-wide delay
-- does not apply (an attacker elsewhere cannot slow her down on her own machine).
CREATE TABLE login_known_addresses (
    user_id TEXT NOT NULL REFERENCES users (id),
    address TEXT NOT NULL,
    last_success_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, address)
);
