-- See migrations/sqlite/20261204000002_send_retries.sql.
ALTER TABLE turns ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE turns ADD COLUMN next_attempt_at BIGINT;
CREATE INDEX turns_retry_due ON turns (next_attempt_at) WHERE delivery = 'failed';
