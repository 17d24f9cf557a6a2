-- Compliance rules enforced at claim time (src/policy decides, src/store/policy.rs records).
-- Standard SQL only (a PostgreSQL backend shares these statements).
--
-- Campaign rules. The column defaults are "always open, no caps" so that campaigns that
-- existed before this migration keep dialling as they did; `campaign create` writes the
-- compliance defaults (08:00-21:00, mon-sat, 3/24 h, 7/7 days) unless told otherwise.
ALTER TABLE campaigns ADD COLUMN call_window TEXT NOT NULL DEFAULT '00:00-24:00';
ALTER TABLE campaigns ADD COLUMN call_days TEXT NOT NULL DEFAULT 'all';
-- zone of contacts whose own zone is unknown (IANA name)
ALTER TABLE campaigns ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE campaigns ADD COLUMN cap_per_day INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN cap_per_week INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN require_consent INTEGER NOT NULL DEFAULT 0;
-- A structured-data field of the end-of-call analysis that, when true, puts the number on the
-- do-not-call list ("stop calling me" said to the assistant); NULL: no such rule.
ALTER TABLE campaigns ADD COLUMN dnc_field TEXT DEFAULT 'do_not_call';

-- Redial rules: ended reasons redialled (comma-separated), after how long, how many times
-- (0: never, the column default; `campaign create` writes 2 after 2 h on busy/no answer/voicemail).
ALTER TABLE campaigns ADD COLUMN redial_reasons TEXT NOT NULL DEFAULT 'customer-busy,customer-did-not-answer,voicemail';
ALTER TABLE campaigns ADD COLUMN redial_delay_s INTEGER NOT NULL DEFAULT 7200;
ALTER TABLE campaigns ADD COLUMN redial_count INTEGER NOT NULL DEFAULT 0;
-- A redial is a new attempt sequence linked to the call it follows.
ALTER TABLE calls ADD COLUMN redial_of INTEGER REFERENCES calls(id);
ALTER TABLE contacts ADD COLUMN redials INTEGER NOT NULL DEFAULT 0;

-- A contact's zone (NULL: the campaign's), consent, why it was skipped, and when it may be
-- claimed again after a deferral (a cap).
ALTER TABLE contacts ADD COLUMN timezone TEXT;
ALTER TABLE contacts ADD COLUMN consent_source TEXT;
ALTER TABLE contacts ADD COLUMN consent_at TEXT;
ALTER TABLE contacts ADD COLUMN skip_reason TEXT;
ALTER TABLE contacts ADD COLUMN eligible_at TEXT;
-- Every campaign's calls to one number (caps, `why`).
CREATE INDEX contacts_phone ON contacts(phone);

-- The distinct zones of a campaign's contacts, kept by the import: the claim computes which
-- are open now without scanning the contacts.
CREATE TABLE campaign_zones (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    timezone    TEXT NOT NULL,
    PRIMARY KEY (campaign_id, timezone)
);
-- '' stands for contacts without a zone of their own (they use the campaign's): every
-- contact imported before this migration.
INSERT INTO campaign_zones (campaign_id, timezone)
    SELECT DISTINCT campaign_id, coalesce(timezone, '') FROM contacts;

-- The do-not-call list, by E.164 number.
CREATE TABLE dnc (
    phone    TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    source   TEXT NOT NULL,
    added_at TEXT NOT NULL
);

-- Every decision of the claim about a number, with its reason (`switchboard why NUMBER`).
CREATE TABLE policy_decisions (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    phone       TEXT NOT NULL,
    campaign_id INTEGER,
    contact_id  INTEGER,
    call_id     INTEGER,
    decision    TEXT NOT NULL CHECK (decision IN ('DIAL', 'SKIP', 'DEFER', 'DNC_ADD', 'DNC_REMOVE')),
    reason      TEXT NOT NULL
);
CREATE INDEX policy_decisions_phone ON policy_decisions(phone, id);
