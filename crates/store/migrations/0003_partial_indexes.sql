-- Calls active at Vapi, least recently updated first: the poller's order, read every round
-- (named with INDEXED BY in Store::active_calls so the planner cannot pick a full sort).
CREATE INDEX calls_active ON calls(updated_at)
    WHERE provider_call_id IS NOT NULL
      AND status IN ('QUEUED','SCHEDULED','RINGING','IN_PROGRESS','FORWARDING');
