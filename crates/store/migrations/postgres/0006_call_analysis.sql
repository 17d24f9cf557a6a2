-- What an end-of-call report says beyond the status: Vapi's analysis and the recording.
CREATE TABLE call_analysis (
    call_id            BIGINT PRIMARY KEY REFERENCES calls(id),
    summary            TEXT,
    success_evaluation TEXT,
    structured_data    TEXT,
    recording_url      TEXT,
    updated_at         TEXT NOT NULL
);
