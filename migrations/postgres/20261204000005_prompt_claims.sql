-- rating_prompts.claimed_by: the instance that sends a rating question still unsent, as
-- turns.claimed_by is for replies; when that instance stops, another sends it instead.
ALTER TABLE rating_prompts ADD COLUMN claimed_by TEXT;
