-- switchboard schema. Table and column names are part of the interface (operators query them).
-- Times are ISO-8601 UTC text with milliseconds; statuses are upper-case text (see src/model.rs).

-- One row: facts about this database (instance id used in call references).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row: engine-wide controls, written by the console or the CLI, read by the engine each tick.
CREATE TABLE engine_control (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    dispatch_paused INTEGER NOT NULL DEFAULT 0,
    pause_reason    TEXT,
    rate_per_second REAL,               -- NULL: the config's rate
    updated_at      TEXT NOT NULL
);

CREATE TABLE campaigns (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    assistant_id        TEXT NOT NULL,
    phone_number_id     TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'DRAFT',
    pause_reason        TEXT,
    created_at          TEXT NOT NULL,
    started_at          TEXT,           -- set once, by the first call created
    completed_at        TEXT,
    -- counters, kept in the same transaction as the call rows they count
    active_calls        INTEGER NOT NULL DEFAULT 0,
    total_calls_created INTEGER NOT NULL DEFAULT 0,
    ended_calls         INTEGER NOT NULL DEFAULT 0,
    failed_calls        INTEGER NOT NULL DEFAULT 0,   -- FAILED and not re-queued
    cost_usd            REAL NOT NULL DEFAULT 0,
    contacts_total      INTEGER NOT NULL DEFAULT 0,
    contacts_done       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    name        TEXT,
    phone       TEXT NOT NULL,          -- E.164
    extension   TEXT,
    variables   TEXT NOT NULL DEFAULT '{}',  -- JSON object of the CSV's other columns
    status      TEXT NOT NULL DEFAULT 'PENDING',
    sequence    INTEGER NOT NULL DEFAULT 0,  -- attempt sequences started for this contact
    created_at  TEXT NOT NULL
);
-- Re-importing the same row adds nothing.
CREATE UNIQUE INDEX contacts_unique ON contacts(campaign_id, phone, ifnull(extension, ''));
CREATE INDEX contacts_claim ON contacts(campaign_id, status, id);

CREATE TABLE calls (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    sequence         INTEGER NOT NULL,   -- the contact's attempt sequence this call belongs to
    reference        TEXT NOT NULL UNIQUE,  -- sent to Vapi as `name`; found again by look-up
    status           TEXT NOT NULL,
    provider_call_id TEXT UNIQUE,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    ended_reason     TEXT,
    requeued         INTEGER NOT NULL DEFAULT 0,  -- quota-blocked: the contact went back to the queue
    retried          INTEGER NOT NULL DEFAULT 0,  -- an operator retried this failed call
    cost_usd         REAL,
    started_at       TEXT,
    ended_at         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    -- at most one call per attempt sequence: the database itself refuses a double dial
    UNIQUE (contact_id, sequence)
);
CREATE INDEX calls_campaign_status ON calls(campaign_id, status, id);
CREATE INDEX calls_status ON calls(status, id);

-- The persisted retry log: one row per HTTP attempt to create a call.
CREATE TABLE call_attempts (
    id             INTEGER PRIMARY KEY,
    call_id        INTEGER NOT NULL REFERENCES calls(id),
    attempt        INTEGER NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    http_status    INTEGER,
    outcome        TEXT NOT NULL,
    error          TEXT,
    retry_delay_ms INTEGER,
    UNIQUE (call_id, attempt)
);
CREATE INDEX call_attempts_outcome ON call_attempts(outcome);

-- Ended-reason histogram per campaign, kept with the call rows.
CREATE TABLE campaign_reasons (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    ended_reason TEXT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, ended_reason)
);
