-- Invitations to join an org, and the password-setup links of admin-created (managed)
-- accounts. Both secrets are stored only as SHA-256 digests.
-- The same columns and constraints as migrations/postgres/0009_invitations.sql.

CREATE TABLE invitations (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    project_ids TEXT NOT NULL DEFAULT '[]',
    token_hash  BLOB NOT NULL,
    invited_by  BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    accepted_by BLOB,
    revoked_at  INTEGER,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX invitations_org_idx ON invitations (org_id, created_at);

CREATE TABLE password_setup_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id),
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX password_setup_tokens_user_idx ON password_setup_tokens (user_id);
