-- Why a campaign or dispatch is paused, as a cause stored beside the sentence the operator
-- reads: the engine, the console and `--until-done` read the cause, never the wording. Rows
-- paused before this are classified by the words the engine used for its stops until now.
ALTER TABLE campaigns ADD COLUMN pause_cause TEXT;
ALTER TABLE engine_control ADD COLUMN pause_cause TEXT;
UPDATE campaigns SET pause_cause = CASE
    WHEN lower(pause_reason) LIKE 'paused by operator%' THEN 'OPERATOR'
    WHEN lower(pause_reason) LIKE '%rejected the api key%' THEN 'CREDENTIALS'
    WHEN lower(pause_reason) LIKE '%insufficient credits%'
      OR lower(pause_reason) LIKE '%insufficient-credits%'
      OR lower(pause_reason) LIKE '%subscription-frozen%' THEN 'CREDITS'
    WHEN lower(pause_reason) LIKE 'budget of $%' THEN 'BUDGET'
    WHEN lower(pause_reason) LIKE 'daily call limit of%' THEN 'DAILY_LIMIT'
    WHEN lower(pause_reason) LIKE 'vapi%'
      OR lower(pause_reason) LIKE '%then resume%'
      OR lower(pause_reason) LIKE '%fix the%'
      OR lower(pause_reason) LIKE '%in a row refused%'
      OR lower(pause_reason) LIKE '%use another number%'
      OR lower(pause_reason) LIKE 'every phone number%' THEN 'ENGINE'
    ELSE 'OPERATOR' END
    WHERE pause_reason IS NOT NULL;
UPDATE engine_control SET pause_cause = CASE
    WHEN lower(pause_reason) LIKE '%rejected the api key%' THEN 'CREDENTIALS'
    ELSE 'OPERATOR' END
    WHERE dispatch_paused <> 0;
