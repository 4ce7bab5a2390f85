-- Platform events written on receipt, before the platform is told they arrived (a Telegram
-- offset advanced, a webhook answered). A crash after that point loses nothing: unhandled
-- rows are handled at the next start. The key makes a redelivered event a no-op.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    event_key   TEXT    NOT NULL,
    -- The event as JSON until it has been handled; NULL afterwards, so no message text
    -- lingers here (the conversation itself lives in turns).
    payload     TEXT,
    received_at INTEGER NOT NULL,
    handled_at  INTEGER,
    UNIQUE (platform, event_key)
);
CREATE INDEX inbox_unhandled ON inbox (handled_at) WHERE handled_at IS NULL;
