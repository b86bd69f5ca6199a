-- OAuth grants: authorization codes, refresh-token families, consents, revoked access tokens.
-- Every secret is stored as its SHA-256 digest.

CREATE TABLE oauth_codes (
    code_hash      BLOB PRIMARY KEY,
    client_id      TEXT NOT NULL,
    org_id         BLOB NOT NULL,
    project_id     BLOB NOT NULL,
    user_id        BLOB NOT NULL,
    session_id     BLOB,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    -- The refresh family minted from this code; a replayed code revokes it.
    family_id      BLOB
);

CREATE TABLE refresh_families (
    id             BLOB PRIMARY KEY,
    client_id      TEXT NOT NULL,
    org_id         BLOB NOT NULL,
    project_id     BLOB NOT NULL,
    user_id        BLOB NOT NULL,
    session_id     BLOB,
    scope          TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash     BLOB PRIMARY KEY,
    family_id      BLOB NOT NULL REFERENCES refresh_families (id),
    org_id         BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    -- Set when the token was rotated; its successor is the only token minted from it.
    used_at        INTEGER,
    successor_hash BLOB
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE oauth_consents (
    user_id    BLOB NOT NULL,
    client_id  TEXT NOT NULL,
    org_id     BLOB NOT NULL,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Access tokens are JWTs; revoking one before it expires puts its jti here until then.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
