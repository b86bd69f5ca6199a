-- Foundation: users, orgs, projects, memberships, sessions, audit.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC), so they compare and sort
-- numerically; ids are 16-byte UUID blobs.

CREATE TABLE posix_ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
-- AUTOINCREMENT never hands out a number twice, even after deletes; start above system ids.
INSERT INTO sqlite_sequence (name, seq) VALUES ('posix_ids', 9999);

CREATE TABLE users (
    id                BLOB PRIMARY KEY,
    email             TEXT NOT NULL,
    name              TEXT,
    password_hash     TEXT,
    posix_uid         INTEGER NOT NULL,
    posix_gid         INTEGER NOT NULL,
    is_platform_admin INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    deleted_at        INTEGER,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_posix_uid_key UNIQUE (posix_uid)
);

CREATE TABLE orgs (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL,
    personal   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    CONSTRAINT orgs_slug_key UNIQUE (slug)
);

CREATE TABLE projects (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES orgs (id),
    name            TEXT NOT NULL,
    is_default      INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    redirect_uris   TEXT NOT NULL DEFAULT '[]',
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX projects_org_idx ON projects (org_id);

CREATE TABLE memberships (
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    user_id    BLOB NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at INTEGER NOT NULL,
    deleted_at INTEGER,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE project_memberships (
    project_id BLOB NOT NULL REFERENCES projects (id),
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    user_id    BLOB NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_memberships_user_idx ON project_memberships (user_id);

CREATE TABLE sessions (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id),
    token_hash   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    ip           TEXT,
    user_agent   TEXT,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE audit_events (
    id             BLOB PRIMARY KEY,
    org_id         BLOB,
    at             INTEGER NOT NULL,
    actor_id       BLOB,
    action         TEXT NOT NULL,
    target         TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    ip             TEXT,
    user_agent     TEXT,
    correlation_id TEXT NOT NULL,
    details        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_org_idx ON audit_events (org_id, id);
CREATE INDEX audit_events_correlation_idx ON audit_events (correlation_id);
