-- Named filters (`switchboard filters`, the console's `F` and its tabs), shared by every
-- console and the CLI of the database: the expression as typed, checked when saved.
CREATE TABLE saved_filters (
    name       TEXT PRIMARY KEY,
    expression TEXT NOT NULL,
    saved_by   TEXT NOT NULL,
    saved_at   TEXT NOT NULL
);

-- Number health: a pool number whose answer rate falls below this share of its peers' is
-- benched for the cool-down (`campaign rules --rest-numbers-below 0.5`); 0 = only flagged.
ALTER TABLE campaigns ADD COLUMN rest_numbers_below DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Number health reads a campaign's calls that ended in the last day, every minute.
CREATE INDEX calls_campaign_ended ON calls(campaign_id, ended_at);
