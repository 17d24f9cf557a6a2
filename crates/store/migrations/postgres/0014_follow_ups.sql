-- Following the conversation: callbacks, lanes, outcome rules under one attempt cap, the
-- voicemail ladder and assistants side by side (model::policy::follow_up decides).

-- Which queue a waiting contact is in (model::Lane); the claim takes lanes in the campaign's
-- order. Imports write the default, so the index below costs them nothing: only contacts
-- with a due time (callbacks, redials, deferrals) are in it.
ALTER TABLE contacts ADD COLUMN lane TEXT NOT NULL DEFAULT 'FRESH';
CREATE INDEX contacts_due ON contacts(campaign_id, status, lane, eligible_at) WHERE eligible_at IS NOT NULL;
-- The arm (campaign_arms.position) a contact was assigned, kept for its follow-ups.
ALTER TABLE contacts ADD COLUMN arm BIGINT;

-- Per campaign: the lane order, the one attempt cap every rule shares (0: none), where a
-- callback is asked for, when the work is done and the delay after each outcome (NULL
-- done_when: outcome rules off), and the voicemail ladder (the message, left on attempt N;
-- 0: the last the cap allows).
ALTER TABLE campaigns ADD COLUMN lane_order TEXT NOT NULL DEFAULT 'callback,fresh,redial';
ALTER TABLE campaigns ADD COLUMN max_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN callback_field TEXT DEFAULT 'callback_at';
ALTER TABLE campaigns ADD COLUMN callback_tool TEXT;
ALTER TABLE campaigns ADD COLUMN done_when TEXT;
ALTER TABLE campaigns ADD COLUMN outcome_field TEXT NOT NULL DEFAULT 'outcome';
ALTER TABLE campaigns ADD COLUMN follow_ups TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN voicemail_message TEXT;
ALTER TABLE campaigns ADD COLUMN voicemail_on_attempt BIGINT NOT NULL DEFAULT 0;

-- Per call: what followed its conversation (decided once, when both its end and its
-- analysis are known), whether its request carried the voicemail message, and its arm's
-- assistant (NULL: the campaign's).
ALTER TABLE calls ADD COLUMN follow_up TEXT;
ALTER TABLE calls ADD COLUMN voicemail_message BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN assistant_id TEXT;
ALTER TABLE calls ADD COLUMN arm BIGINT;

-- The assistant's tool calls from the end-of-call report ([{name, arguments}] as JSON).
ALTER TABLE call_analysis ADD COLUMN tool_calls TEXT;

-- A campaign's arms: assistants tested side by side, each with a weight (model::ArmStatus).
CREATE TABLE campaign_arms (
    campaign_id  BIGINT NOT NULL REFERENCES campaigns(id),
    position     BIGINT NOT NULL,
    assistant_id TEXT NOT NULL,
    weight       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, position)
);
