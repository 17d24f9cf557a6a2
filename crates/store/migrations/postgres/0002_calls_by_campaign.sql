-- The console's "All" list of one campaign, newest first, reads only its visible window.
CREATE INDEX calls_campaign_id ON calls(campaign_id, id);
