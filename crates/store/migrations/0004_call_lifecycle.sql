-- no-transaction
-- The explicit call lifecycle (src/model.rs, CallStatus): states that used to hide in
-- `provider_call_id IS NULL`, `requeued` and `retried` become statuses of their own, and every
-- status column gets a CHECK. SQLite cannot add a CHECK to a table, so calls, contacts and
-- call_attempts are rebuilt (the documented procedure: foreign keys off, one transaction).
-- Also: the engine lease (one engine dispatches from a database at a time).
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE contacts_new (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    name        TEXT,
    phone       TEXT NOT NULL,          -- E.164
    extension   TEXT,
    variables   TEXT NOT NULL DEFAULT '{}',  -- JSON object of the CSV's other columns
    status      TEXT NOT NULL DEFAULT 'PENDING'
                CHECK (status IN ('PENDING','DIALING','DONE','SKIPPED')),
    sequence    INTEGER NOT NULL DEFAULT 0,  -- attempt sequences started for this contact
    never_rang  INTEGER NOT NULL DEFAULT 0,  -- calls that ended before the phone rang
    created_at  TEXT NOT NULL
);
INSERT INTO contacts_new (id, campaign_id, name, phone, extension, variables, status, sequence, created_at)
    SELECT id, campaign_id, name, phone, extension, variables, status, sequence, created_at FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_new RENAME TO contacts;
CREATE UNIQUE INDEX contacts_unique ON contacts(campaign_id, phone, ifnull(extension, ''));
CREATE INDEX contacts_claim ON contacts(campaign_id, status, id);

CREATE TABLE calls_new (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    sequence         INTEGER NOT NULL,   -- the contact's attempt sequence this call belongs to
    reference        TEXT NOT NULL UNIQUE,  -- sent to Vapi as `name`; found again by look-up
    status           TEXT NOT NULL CHECK (status IN ('CREATING','UNKNOWN','QUEUED','SCHEDULED',
                         'RINGING','IN_PROGRESS','FORWARDING','ENDED','FAILED','REQUEUED','RETRIED')),
    provider_call_id TEXT UNIQUE,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    ended_reason     TEXT,
    -- an operator asked for this call to be dialled again once its outcome is settled
    retry_requested  INTEGER NOT NULL DEFAULT 0,
    -- the engine (lease holder) that claimed the call
    engine_id        TEXT,
    cost_usd         REAL,
    started_at       TEXT,
    ended_at         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    -- a call at Vapi has its id; a call being created or settled has none
    CHECK ((status IN ('CREATING','UNKNOWN')) = (provider_call_id IS NULL)
           OR status IN ('FAILED','REQUEUED','RETRIED','ENDED')),
    -- at most one call per attempt sequence: the database itself refuses a double dial
    UNIQUE (contact_id, sequence)
);
INSERT INTO calls_new (id, campaign_id, contact_id, sequence, reference, status, provider_call_id,
    attempt_count, ended_reason, cost_usd, started_at, ended_at, created_at, updated_at)
    SELECT id, campaign_id, contact_id, sequence, reference,
        CASE
            WHEN provider_call_id IS NULL AND status = 'QUEUED' THEN 'CREATING'
            WHEN status = 'FAILED' AND requeued = 1 THEN 'REQUEUED'
            WHEN status = 'FAILED' AND retried = 1 THEN 'RETRIED'
            ELSE status
        END,
        provider_call_id, attempt_count, ended_reason, cost_usd, started_at, ended_at,
        created_at, updated_at
    FROM calls;
DROP TABLE calls;
ALTER TABLE calls_new RENAME TO calls;
CREATE INDEX calls_campaign_status ON calls(campaign_id, status, id);
CREATE INDEX calls_status ON calls(status, id);
CREATE INDEX calls_campaign_id ON calls(campaign_id, id);
CREATE INDEX calls_active ON calls(updated_at)
    WHERE status IN ('QUEUED','SCHEDULED','RINGING','IN_PROGRESS','FORWARDING');

CREATE TABLE call_attempts_new (
    id             INTEGER PRIMARY KEY,
    call_id        INTEGER NOT NULL REFERENCES calls(id),
    attempt        INTEGER NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    http_status    INTEGER,
    outcome        TEXT NOT NULL CHECK (outcome IN ('IN_FLIGHT','CREATED','ADOPTED','REFUSED',
                       'RATE_LIMITED','AMBIGUOUS','NOT_CREATED','REJECTED','AUTH_FAILED')),
    error          TEXT,
    retry_delay_ms INTEGER,
    UNIQUE (call_id, attempt)
);
INSERT INTO call_attempts_new (id, call_id, attempt, started_at, finished_at, http_status, outcome,
    error, retry_delay_ms)
    SELECT id, call_id, attempt, started_at, finished_at, http_status,
        CASE
            WHEN outcome = 'TRANSIENT' AND http_status = 429 THEN 'RATE_LIMITED'
            WHEN outcome = 'TRANSIENT' THEN 'REFUSED'
            -- an old AMBIGUOUS attempt of a call that went on was settled by the old look-up
            WHEN outcome = 'AMBIGUOUS' AND EXISTS (SELECT 1 FROM call_attempts b
                WHERE b.call_id = call_attempts.call_id AND b.attempt > call_attempts.attempt)
                THEN 'NOT_CREATED'
            ELSE outcome
        END,
        error, retry_delay_ms
    FROM call_attempts;
DROP TABLE call_attempts;
ALTER TABLE call_attempts_new RENAME TO call_attempts;
CREATE INDEX call_attempts_outcome ON call_attempts(outcome);
CREATE INDEX call_attempts_call ON call_attempts(call_id, attempt);

-- A FAILED call whose last attempt was AMBIGUOUS was never settled (the old engine gave up on
-- its look-up): it may exist at Vapi, so it goes back to being settled.
UPDATE calls SET status = 'UNKNOWN'
    WHERE status = 'FAILED' AND provider_call_id IS NULL AND EXISTS (SELECT 1 FROM call_attempts a
        WHERE a.call_id = calls.id AND a.attempt = calls.attempt_count AND a.outcome = 'AMBIGUOUS');
UPDATE contacts SET status = 'DIALING'
    WHERE id IN (SELECT contact_id FROM calls WHERE status = 'UNKNOWN');

-- One engine dispatches from a database at a time: it holds this lease and renews its
-- heartbeat; a lease whose heartbeat is older than the timeout (or whose process is gone) is
-- taken over, and the new holder settles the old one's requests in flight.
CREATE TABLE engine_lease (
    name         TEXT PRIMARY KEY,       -- 'dispatch'
    holder       TEXT,                   -- the engine's id (random per process); NULL: free
    host         TEXT,
    pid          INTEGER,
    acquired_at  TEXT,
    heartbeat_ms INTEGER,                -- unix milliseconds of the last renewal
    status       TEXT                    -- JSON: the holder's live state (breaker, cap, rates)
);
INSERT INTO engine_lease (name) VALUES ('dispatch');

-- The retry log, kept (the newest 10,000) so that an attached or restarted console shows the
-- history, and operators' actions from the CLI appear in it.
CREATE TABLE engine_events (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    kind          TEXT NOT NULL,
    call_id       INTEGER,
    attempt       INTEGER,
    message       TEXT NOT NULL,
    next_delay_ms INTEGER
);

-- A campaign's share of the concurrency when several dial at once (weighted fair share).
ALTER TABLE campaigns ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000);

PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
