-- PostgreSQL twin of migrations/0008_number_pool.sql (INTEGER → BIGINT, as in 0001).
--
-- Every number a campaign may call from, used in turn by weight: the claim takes the usable
-- number with the fewest picks per unit of weight. A number is benched (not used) until
-- `benched_until` after Vapi's daily limit for it, or after several never-rang ends or
-- refusals naming it in a row (counted by the engine).
CREATE TABLE campaign_numbers (
    campaign_id     BIGINT NOT NULL REFERENCES campaigns(id),
    phone_number_id TEXT NOT NULL,
    weight          BIGINT NOT NULL DEFAULT 1 CHECK (weight >= 1),
    picks           BIGINT NOT NULL DEFAULT 0,
    -- calls made from it on the UTC day `day` (the quota pane)
    calls_today     BIGINT NOT NULL DEFAULT 0,
    day             TEXT,
    benched_until   TEXT,
    bench_reason    TEXT,
    PRIMARY KEY (campaign_id, phone_number_id)
);
INSERT INTO campaign_numbers (campaign_id, phone_number_id)
    SELECT id, phone_number_id FROM campaigns;

-- The number a call was created from (NULL for calls made before the pool: the campaign's).
ALTER TABLE calls ADD COLUMN phone_number_id TEXT;
-- When the pre-dial hook allowed the call (NULL: not asked yet, or no hook configured).
ALTER TABLE calls ADD COLUMN predial_at TEXT;
