-- A campaign's scheduled start and end (model::policy::schedule), as stored times (UTC,
-- text/format_time); NULL: none. The claim dials nothing before starts_at nor from ends_by.
ALTER TABLE campaigns ADD COLUMN starts_at TEXT;
ALTER TABLE campaigns ADD COLUMN ends_by TEXT;
