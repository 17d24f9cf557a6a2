-- What an end-of-call report says beyond the status: Vapi's analysis and the recording.
-- Texts are bounded when stored (summary 4 kB, structured data 64 kB).
CREATE TABLE call_analysis (
    call_id            INTEGER PRIMARY KEY REFERENCES calls(id),
    summary            TEXT,
    success_evaluation TEXT,
    structured_data    TEXT,
    recording_url      TEXT,
    updated_at         TEXT NOT NULL
);
