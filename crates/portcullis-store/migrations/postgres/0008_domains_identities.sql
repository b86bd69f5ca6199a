-- Verified domains and provider-keyed identities (account-takeover fixes).
-- The same columns and constraints as migrations/sqlite/0008_domains_identities.sql, in
-- native types.
--
-- org_domains: an org's claim on a DNS domain, proven by a TXT record carrying the claim's
-- own token (or vouched for by a platform admin). Several orgs may hold pending claims on
-- one domain; the partial unique index lets only one of them hold it verified (indexes are
-- not filtered by row-level security, so it holds across tenants). Rows are tenant-owned:
-- an org's context sees its own claims; sign-in asks "who verified this domain" in the
-- platform context.
CREATE TABLE org_domains (
    org_id      uuid NOT NULL REFERENCES orgs (id),
    domain      text NOT NULL,
    token       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'verified')),
    method      text CHECK (method IN ('dns', 'admin')),
    created_at  timestamptz NOT NULL,
    verified_at timestamptz,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified_once ON org_domains (domain) WHERE status = 'verified';

ALTER TABLE org_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY org_domains_tenant ON org_domains FOR ALL
    USING (app_platform() OR org_id = app_org_id())
    WITH CHECK (app_platform() OR org_id = app_org_id());

-- Identities are keyed by the provider they came through (its sign-in id: `google`, a
-- configured id, or `org_<uuid>`) as well as issuer and subject: an org's provider never
-- shares identities with another provider that happens to name the same issuer. Rows from
-- before this migration through an org provider get that provider's key; those through a
-- server-wide provider (no provider_id) get '' and are matched by server-wide providers only.
ALTER TABLE user_identities ADD COLUMN provider text NOT NULL DEFAULT '';
UPDATE user_identities SET provider = 'org_' || provider_id::text WHERE provider_id IS NOT NULL;
ALTER TABLE user_identities ALTER COLUMN provider DROP DEFAULT;
ALTER TABLE user_identities DROP CONSTRAINT user_identities_pkey;
ALTER TABLE user_identities ADD PRIMARY KEY (provider, issuer, subject);
CREATE INDEX user_identities_provider_id_idx ON user_identities (provider_id);

-- 0001's default privileges cover new tables only when the same role migrates; say it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON org_domains TO portcullis_app;
    END IF;
END
$$;
