-- Mobile sign-in: one-time tokens handed to the app through the deep link, and the device a
-- mobile session was signed in from. A one-time token is stored only as its SHA-256 digest;
-- so is the `state` it is bound to.

CREATE TABLE mobile_one_time_tokens (
    token_hash     BLOB PRIMARY KEY,
    state_hash     BLOB NOT NULL,
    code_challenge TEXT,
    user_id        BLOB NOT NULL REFERENCES users (id),
    org_id         BLOB NOT NULL,
    project_id     BLOB NOT NULL,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE INDEX mobile_one_time_tokens_expiry_idx ON mobile_one_time_tokens (expires_at);

ALTER TABLE sessions ADD COLUMN device_platform TEXT;
ALTER TABLE sessions ADD COLUMN device_model TEXT;
ALTER TABLE sessions ADD COLUMN app_version TEXT;
