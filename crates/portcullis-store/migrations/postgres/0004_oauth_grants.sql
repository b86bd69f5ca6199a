-- OAuth grants: authorization codes, refresh-token families, consents, revoked access tokens.
-- Every secret is stored as its SHA-256 digest. Grant rows belong to the org of the client
-- they were issued to, and row-level security checks it like every tenant table.

CREATE TABLE oauth_codes (
    code_hash      bytea PRIMARY KEY,
    client_id      text NOT NULL,
    org_id         uuid NOT NULL,
    project_id     uuid NOT NULL,
    user_id        uuid NOT NULL,
    session_id     uuid,
    redirect_uri   text NOT NULL,
    scope          text NOT NULL,
    nonce          text,
    code_challenge text,
    auth_time      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    family_id      uuid
);

CREATE TABLE refresh_families (
    id             uuid PRIMARY KEY,
    client_id      text NOT NULL,
    org_id         uuid NOT NULL,
    project_id     uuid NOT NULL,
    user_id        uuid NOT NULL,
    session_id     uuid,
    scope          text NOT NULL,
    auth_time      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash     bytea PRIMARY KEY,
    family_id      uuid NOT NULL REFERENCES refresh_families (id),
    org_id         uuid NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    successor_hash bytea
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE oauth_consents (
    user_id    uuid NOT NULL,
    client_id  text NOT NULL,
    org_id     uuid NOT NULL,
    scope      text NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE revoked_access_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

ALTER TABLE oauth_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_codes_tenant ON oauth_codes FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE refresh_families ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_families FORCE ROW LEVEL SECURITY;
CREATE POLICY refresh_families_tenant ON refresh_families FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_tenant ON refresh_tokens FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- A user sees and withdraws their own consents from any context.
ALTER TABLE oauth_consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_consents FORCE ROW LEVEL SECURITY;
CREATE POLICY oauth_consents_tenant ON oauth_consents FOR ALL
    USING (app_platform() OR org_id = app_org_id() OR user_id = app_user_id())
    WITH CHECK (app_platform() OR org_id = app_org_id() OR user_id = app_user_id());

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON oauth_codes, refresh_families, refresh_tokens, oauth_consents, revoked_access_tokens
            TO portcullis_app;
    END IF;
END
$$;
