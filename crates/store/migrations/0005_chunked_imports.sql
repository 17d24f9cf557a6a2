-- Imports commit in bounded chunks (a long import never holds the write lock for long) and
-- stay invisible to the claim until complete: rows carry their import's id, and the claim
-- skips rows of an import still IMPORTING. A crashed import's rows are deleted by the next
-- import or start (its heartbeat stops).
CREATE TABLE imports (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    status       TEXT NOT NULL CHECK (status IN ('IMPORTING', 'COMPLETE')),
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);
ALTER TABLE contacts ADD COLUMN import_id INTEGER REFERENCES imports(id);
CREATE INDEX contacts_import ON contacts(import_id) WHERE import_id IS NOT NULL;
