-- A send the platform refused is tried again later, for hours, not given up at once
-- (crisis resources included): how many times it failed, and when to try next (NULL:
-- not to be tried again).
ALTER TABLE turns ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE turns ADD COLUMN next_attempt_at INTEGER;
CREATE INDEX turns_retry_due ON turns (next_attempt_at) WHERE delivery = 'failed';
