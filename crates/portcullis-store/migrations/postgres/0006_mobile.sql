-- Mobile sign-in: one-time tokens handed to the app through the deep link, and the device a
-- mobile session was signed in from. A one-time token is stored only as its SHA-256 digest;
-- so is the `state` it is bound to. Tokens belong to the org their grant will be for, and
-- row-level security checks that like every tenant table (redemption looks a bare token up
-- in platform scope: the token itself is the capability).

CREATE TABLE mobile_one_time_tokens (
    token_hash     bytea PRIMARY KEY,
    state_hash     bytea NOT NULL,
    code_challenge text,
    user_id        uuid NOT NULL REFERENCES users (id),
    org_id         uuid NOT NULL,
    project_id     uuid NOT NULL,
    auth_time      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX mobile_one_time_tokens_expiry_idx ON mobile_one_time_tokens (expires_at);

ALTER TABLE mobile_one_time_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE mobile_one_time_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY mobile_one_time_tokens_tenant ON mobile_one_time_tokens FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

ALTER TABLE sessions ADD COLUMN device_platform text;
ALTER TABLE sessions ADD COLUMN device_model text;
ALTER TABLE sessions ADD COLUMN app_version text;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON mobile_one_time_tokens TO portcullis_app;
    END IF;
END
$$;
