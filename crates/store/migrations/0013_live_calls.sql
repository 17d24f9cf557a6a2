-- Supervising live calls. No URL of a call's monitor is ever stored: the engine keeps them
-- in memory while the call is live and asks Vapi again when it needs one.

-- Why switchboard ended a call itself (model::live::EndCause) and what becomes of its
-- contact then (AfterEnd); set before the end is sent, read when the end arrives.
ALTER TABLE calls ADD COLUMN end_cause TEXT;
ALTER TABLE calls ADD COLUMN end_then TEXT;
-- A console shows this call's transcript until then: without webhooks the engine reads
-- the call from Vapi at a bounded rate while it is watched.
ALTER TABLE calls ADD COLUMN watch_until TEXT;

-- The runaway guard per campaign (0: off).
ALTER TABLE campaigns ADD COLUMN max_call_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN max_call_cost REAL NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN end_on_repeats INTEGER NOT NULL DEFAULT 0;

-- What operators asked of live calls (say, whisper, mute, transfer, end), carried out by
-- the engine that holds the call; the answer is Vapi's, in one line.
CREATE TABLE live_requests (
    id         INTEGER PRIMARY KEY,
    call_id    INTEGER NOT NULL REFERENCES calls(id),
    action     TEXT NOT NULL,          -- model::live::LiveAction as JSON
    actor      TEXT NOT NULL,          -- console / cli / engine
    status     TEXT NOT NULL,          -- model::live::RequestStatus
    taken_by   TEXT,                   -- the engine carrying it out
    answer     TEXT,
    created_at TEXT NOT NULL,
    done_at    TEXT
);
CREATE INDEX live_requests_open ON live_requests(status, id);

-- What was said on a call, newest lines kept (model::live::MAX_TRANSCRIPT_LINES).
CREATE TABLE call_transcripts (
    call_id INTEGER NOT NULL REFERENCES calls(id),
    line    INTEGER NOT NULL,
    speaker TEXT NOT NULL,             -- model::live::Speaker
    at_s    REAL NOT NULL,             -- seconds from the call's start
    text    TEXT NOT NULL,
    PRIMARY KEY (call_id, line)
);
