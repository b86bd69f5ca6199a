-- Upstream SSO (federation): OIDC providers an org registers for its members, and the
-- upstream identities (issuer + subject) linked to local users. The client secret is kept
-- only sealed with the master key (AES-256-GCM, associated data = the provider id).
-- The same columns and constraints as migrations/postgres/0005_sso.sql.

CREATE TABLE sso_providers (
    id                   BLOB PRIMARY KEY,
    org_id               BLOB NOT NULL REFERENCES orgs (id),
    name                 TEXT NOT NULL,
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    scopes               TEXT NOT NULL DEFAULT '[]',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX sso_providers_org_idx ON sso_providers (org_id, created_at);

-- Users own their identities; an upstream account links to at most one local user.
CREATE TABLE user_identities (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id),
    email       TEXT NOT NULL,
    provider_id BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
