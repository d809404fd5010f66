DROP TABLE login_known_addresses;
DROP TABLE login_throttle;

-- Failed-login throttling keyed by the typed username, whether or not such a user exists.
CREATE TABLE login_throttle (
    username TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP
);
