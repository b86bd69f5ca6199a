-- Upstream SSO (federation): OIDC providers an org registers for its members, and the
-- upstream identities (issuer + subject) linked to local users. The client secret is kept
-- only sealed with the master key (AES-256-GCM, associated data = the provider id).
-- The same columns and constraints as migrations/sqlite/0005_sso.sql, in native types.
-- Providers are tenant-owned: row-level security admits an org's rows to that org's
-- context, and all rows to the platform context (the sign-in routes find a provider by its
-- id alone). Identities belong to users, like the users table (no tenant).

CREATE TABLE sso_providers (
    id                   uuid PRIMARY KEY,
    org_id               uuid NOT NULL REFERENCES orgs (id),
    name                 text NOT NULL,
    issuer               text NOT NULL,
    client_id            text NOT NULL,
    client_secret_sealed bytea NOT NULL,
    scopes               jsonb NOT NULL DEFAULT '[]',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX sso_providers_org_idx ON sso_providers (org_id, created_at);

CREATE TABLE user_identities (
    issuer      text NOT NULL,
    subject     text NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    email       text NOT NULL,
    provider_id uuid,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);

ALTER TABLE sso_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY sso_providers_tenant ON sso_providers FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- 0001's default privileges cover new tables only when the same role migrates; say it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON sso_providers, user_identities TO portcullis_app;
    END IF;
END
$$;
