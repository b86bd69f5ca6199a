-- The secret key behind a key-authenticated change, as its display prefix
-- (`sk_live_abcd1234`, never the key): the actor of events no person made.
ALTER TABLE audit_events ADD COLUMN actor_key TEXT;
