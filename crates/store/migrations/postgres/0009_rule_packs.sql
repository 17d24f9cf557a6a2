-- PostgreSQL twin of migrations/0009_rule_packs.sql (INTEGER → BIGINT, as in 0001).
--
-- A pack narrows the campaign's window and caps (NULL: none).
ALTER TABLE campaigns ADD COLUMN rule_pack TEXT;
-- A number called by another campaign in the last this-many days is skipped (0: off).
ALTER TABLE campaigns ADD COLUMN suppress_days BIGINT NOT NULL DEFAULT 0;
