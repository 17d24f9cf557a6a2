-- State rule packs and cross-campaign duplicate suppression (src/policy/packs.rs,
-- src/policy/mod.rs). Standard SQL only (a PostgreSQL twin lives in migrations/postgres).
--
-- A pack narrows the campaign's window and caps (NULL: none).
ALTER TABLE campaigns ADD COLUMN rule_pack TEXT;
-- A number called by another campaign in the last this-many days is skipped (0: off).
ALTER TABLE campaigns ADD COLUMN suppress_days INTEGER NOT NULL DEFAULT 0;
