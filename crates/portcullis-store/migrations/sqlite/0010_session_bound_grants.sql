-- Refresh families that end with the browser session they were granted in, and an absolute
-- end for every family.
--
-- ends_with_session: the family is bound to a session and its grant lacks offline_access, so
-- signing out, revoking the session or its expiry ends the family too (the store revokes
-- such families in the transaction that ends the session, and refuses them at refresh once
-- the session is no longer live).
-- expires_at: the family's absolute end (oidc_refresh_max_lifetime_secs after it began),
-- whatever its tokens' own expiry says; NULL for families without one.

ALTER TABLE refresh_families ADD COLUMN ends_with_session INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN expires_at INTEGER;

-- Grants made before this migration follow the same rule.
UPDATE refresh_families SET ends_with_session = 1
    WHERE session_id IS NOT NULL AND (' ' || scope || ' ') NOT LIKE '% offline_access %';

CREATE INDEX refresh_families_session_idx ON refresh_families (session_id);
