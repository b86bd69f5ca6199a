-- Verified domains and provider-keyed identities (account-takeover fixes).
-- The same columns and constraints as migrations/postgres/0008_domains_identities.sql.
--
-- org_domains: an org's claim on a DNS domain, proven by a TXT record carrying the claim's
-- own token (or vouched for by a platform admin). Several orgs may hold pending claims on
-- one domain; the partial unique index lets only one of them hold it verified.
CREATE TABLE org_domains (
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    domain      TEXT NOT NULL,
    token       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'verified')),
    method      TEXT CHECK (method IN ('dns', 'admin')),
    created_at  INTEGER NOT NULL,
    verified_at INTEGER,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified_once ON org_domains (domain) WHERE status = 'verified';

-- Identities are keyed by the provider they came through (its sign-in id: `google`, a
-- configured id, or `org_<uuid>`) as well as issuer and subject: an org's provider never
-- shares identities with another provider that happens to name the same issuer. Rows from
-- before this migration through an org provider get that provider's key; those through a
-- server-wide provider (no provider_id) get '' and are matched by server-wide providers only.
CREATE TABLE user_identities_keyed (
    provider    TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id),
    email       TEXT NOT NULL,
    provider_id BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (provider, issuer, subject)
);
INSERT INTO user_identities_keyed (provider, issuer, subject, user_id, email, provider_id, created_at)
SELECT CASE WHEN provider_id IS NULL THEN '' ELSE 'org_' || lower(
           substr(hex(provider_id), 1, 8) || '-' || substr(hex(provider_id), 9, 4) || '-' ||
           substr(hex(provider_id), 13, 4) || '-' || substr(hex(provider_id), 17, 4) || '-' ||
           substr(hex(provider_id), 21, 12)) END,
       issuer, subject, user_id, email, provider_id, created_at
FROM user_identities;
DROP TABLE user_identities;
ALTER TABLE user_identities_keyed RENAME TO user_identities;
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
CREATE INDEX user_identities_provider_id_idx ON user_identities (provider_id);
