-- Calls active at Vapi, least recently updated first: the poller's order.
CREATE INDEX calls_active ON calls(updated_at)
    WHERE provider_call_id IS NOT NULL
      AND status IN ('QUEUED','SCHEDULED','RINGING','IN_PROGRESS','FORWARDING');
